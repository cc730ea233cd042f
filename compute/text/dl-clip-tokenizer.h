/* dl-clip-tokenizer.h: CLIP's byte-level BPE tokenizer, as SD 1.x uses it
 * (transformers tokenization_clip.py CLIPTokenizer; CompVis
 * ldm/modules/encoders/modules.py FrozenCLIPEmbedder for the 77-token padding;
 * docs/formats.md, “CLIP tokenizer”): clean-up and pre-tokenising
 * (dl-clip-normalize.h), bytes -> unicode characters, BPE by merge rank, `</w>`
 * ending each word, start 49406 and end 49407, truncation to 77 and SD 1.x
 * padding with 49407.
 *
 * The vocabulary is openai's bpe_simple_vocab_16e6.txt.gz (gzip or plain) or
 * a diffusers tokenizer/ folder (vocab.json + merges.txt).  Added tokens
 * (Textual Inversion placeholders such as "<s*>") are matched in the raw
 * prompt, case-sensitively, before anything else and become one id each, as in
 * transformers; so are "<|startoftext|>" and "<|endoftext|>".
 *
 * SDXL has two tokenizers over this one vocabulary: `tokenizer` is this one
 * as it is; `tokenizer_2` (for OpenCLIP ViT-bigG) differs in its padding and,
 * in diffusers, in its handling of “!” (DlClipPadStyle).
 *
 * Encoding is thread-safe; adding tokens and changing the padding are not (do
 * both before sharing). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DL_CLIP_MAX_LENGTH 77

typedef struct _DlClipTokenizer DlClipTokenizer;

/* `path`: a bpe_simple_vocab file (gzip or plain text), a vocab.json (its
 * merges.txt beside it) or a folder holding vocab.json + merges.txt.  Errors
 * name the file and what is wrong. */
DlClipTokenizer *dl_clip_tokenizer_new_from_path (const char *path, GError **error);

/* The vocabulary Dreamloom uses, first found of:
 *   1. `explicit_path` (--vocab), when given;
 *   2. the model's own tokenizer folder `model_tokenizer_dir` (may be NULL);
 *   3. $DREAMLOOM_CLIP_VOCAB;
 *   4. the installed copy (meson -Dclip_vocab=..., the Flatpak);
 *   5. the Hugging Face cache of openai/clip-vit-large-patch14.
 * A source that exists but is broken is an error; none at all is an error
 * that lists every place looked at. */
DlClipTokenizer *dl_clip_tokenizer_find (const char *model_tokenizer_dir, const char *explicit_path, GError **error);
/* Where dl_clip_tokenizer_find looks, as text (one place per line). */
char *dl_clip_tokenizer_describe_search (const char *model_tokenizer_dir);

void dl_clip_tokenizer_free (DlClipTokenizer *tok);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlClipTokenizer, dl_clip_tokenizer_free)

/* The file or folder it was loaded from. */
const char *dl_clip_tokenizer_get_source (DlClipTokenizer *tok);
/* Vocabulary entries plus added tokens. */
guint dl_clip_tokenizer_get_n_tokens (DlClipTokenizer *tok);
/* Of those, the ones the vocabulary file defines (ids 0 .. n-1; the rest were
 * added with dl_clip_tokenizer_add_token). */
guint dl_clip_tokenizer_get_n_vocab (DlClipTokenizer *tok);
/* The BPE merges in rank order, as merges.txt lists them ("a b"; g_ptr_array_unref). */
GPtrArray *dl_clip_tokenizer_dup_merges (DlClipTokenizer *tok);
gint32 dl_clip_tokenizer_get_bos (DlClipTokenizer *tok);
gint32 dl_clip_tokenizer_get_eos (DlClipTokenizer *tok);
/* A copy sharing nothing with `tok` (vocabulary, merges, added tokens,
 * padding): SDXL's second tokenizer from the first without reading the files
 * again. */
DlClipTokenizer *dl_clip_tokenizer_copy (DlClipTokenizer *tok);

/* SD 1.x pads with the end id (the default); SD 2.x with 0.  Setting a pad id
 * here leaves every prompt's ids as they are (no special pad token: style
 * DL_CLIP_PAD_SD1 for the end id, otherwise DL_CLIP_PAD_ZERO's rule). */
gint32 dl_clip_tokenizer_get_pad (DlClipTokenizer *tok);
void dl_clip_tokenizer_set_pad (DlClipTokenizer *tok, gint32 pad);

/* How the 77 ids are padded, and what that does to the prompt's own ids:
 *
 * DL_CLIP_PAD_SD1: pad with the end id 49407 (<|endoftext|>), as the SD 1.x
 *   tokenizer and SDXL's first `tokenizer` (diffusers
 *   StableDiffusionXLPipeline tokenizer).
 * DL_CLIP_PAD_SDXL_DIFFUSERS: SDXL's `tokenizer_2` as diffusers loads it
 *   (StableDiffusionXLPipeline tokenizer_2; its published tokenizer_2/
 *   configuration and diffusers' single-file loader both build a
 *   transformers CLIPTokenizer with pad_token="!").  The pad token "!" (id 0,
 *   without </w>) is a special token there, so transformers cuts every “!” out
 *   of the raw prompt before clean-up and BPE, as it does added tokens: each
 *   one becomes id 0, and the text on either side is encoded on its own
 *   ("world!" is world</w> + 0; "!!!" is 0 0 0), where the other styles give
 *   the BPE ids 256 !</w>, 748 !!</w>, 995 !!!</w> (diffusers issue #4153;
 *   so “!!!” takes three of the 75 places, not one).  Padding is id 0.  Added tokens containing “!” (a placeholder "<s!>") still
 *   win where they match: the longest match at a position counts.
 * DL_CLIP_PAD_ZERO: pad with id 0 and keep “!” ordinary text: OpenCLIP's own
 *   tokenizer, which SDXL's second text encoder was trained with, and kohya
 *   sd-scripts (library/sdxl_train_util.py load_tokenizers: a plain
 *   CLIPTokenizer with pad_token_id = 0).  Also SD 2.x as OpenCLIP pads.
 *
 * The three give the same ids for a prompt without “!”: the end id, then 49407
 * (SD1) or 0 (the others) up to 77. */
typedef enum
{
  DL_CLIP_PAD_SD1,
  DL_CLIP_PAD_SDXL_DIFFUSERS,
  DL_CLIP_PAD_ZERO,
} DlClipPadStyle;

void dl_clip_tokenizer_set_pad_style (DlClipTokenizer *tok, DlClipPadStyle style);
/* DL_CLIP_PAD_SD1 when the pad is the end id, DL_CLIP_PAD_SDXL_DIFFUSERS when
 * it is the special "!", otherwise DL_CLIP_PAD_ZERO (0, or another id given
 * to dl_clip_tokenizer_set_pad). */
DlClipPadStyle dl_clip_tokenizer_get_pad_style (DlClipTokenizer *tok);

/* The id of a vocabulary string ("cat</w>"), or -1. */
gint32 dl_clip_tokenizer_lookup (DlClipTokenizer *tok, const char *token);
/* The vocabulary string of an id (byte-level alphabet), or NULL. */
const char *dl_clip_tokenizer_get_token (DlClipTokenizer *tok, gint32 id);

/* Make `text` one token: its id (an existing one if `text` is already a
 * vocabulary entry or an added token).  -1 and an error for empty or invalid
 * UTF-8 text. */
gint32 dl_clip_tokenizer_add_token (DlClipTokenizer *tok, const char *text, GError **error);

/* [start] + the prompt's ids + [end], neither truncated nor padded (gint32).
 * NULL and an error only for a prompt that is not valid UTF-8. */
GArray *dl_clip_tokenizer_encode (DlClipTokenizer *tok, const char *prompt, GError **error);
/* The SD 1.x text-encoder input: start, the first 75 ids, end, padding. */
gboolean dl_clip_tokenizer_encode_77 (DlClipTokenizer *tok, const char *prompt, gint32 ids[DL_CLIP_MAX_LENGTH],
                                      GError **error);
/* Text back from ids (</w> becomes a space; the start and end ids are
 * dropped; an added token, or the special pad "!" of
 * DL_CLIP_PAD_SDXL_DIFFUSERS, is its text and a space); bytes that do not form
 * UTF-8 become U+FFFD.  Padding other than the end id is not dropped: decode
 * the ids up to the end id. */
char *dl_clip_tokenizer_decode (DlClipTokenizer *tok, const gint32 *ids, gsize n);

G_END_DECLS
