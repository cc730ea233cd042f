/* dl-clip-normalize.h: what CLIP's tokenizer does to a prompt before BPE
 * (transformers tokenization_clip.py CLIPTokenizer._tokenize, whitespace_clean
 * and its `pat` regex; docs/formats.md, “CLIP tokenizer”), as transformers'
 * CLIPTokenizer does it with ftfy installed — the way SD tools normally run it:
 *
 *  1. clean-up (a subset of ftfy.fix_text's default fixes, applied in its order
 *     until nothing changes): HTML entities (only when the line has no '<';
 *     numeric references, the XML and Latin-1 names and common typographic
 *     ones, also in capitals), C1 controls read as Windows-1252, Latin
 *     ligatures, full/half-width forms, curly quotes, line breaks, terminal
 *     escapes, control characters, NFC.  Not done: ftfy's mojibake repair
 *     ("cafÃ©" stays as typed) and the rarer HTML5 entity names;
 *  2. every run of Unicode white space becomes one space, ends stripped;
 *  3. lower case (full mapping: "İ" gives "i̇", final sigma);
 *  4. the pre-tokenising pattern <|startoftext|> | <|endoftext|> | 's 't 're
 *     've 'm 'll 'd | letters+ | one number character | other characters+,
 *     white space dropped.
 *
 * Input must be valid UTF-8. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Steps 1-3. */
char *dl_clip_normalize_clean (const char *text);
/* Step 1 alone. */
char *dl_clip_normalize_fix (const char *text);
/* Step 4 on cleaned text: the pieces, in order (free with g_ptr_array_unref). */
GPtrArray *dl_clip_normalize_split (const char *cleaned);

G_END_DECLS
