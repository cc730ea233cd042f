/* dl-prompt-embeddings.h: Textual Inversion embeddings used in prompts by
 * name, as AUTOMATIC1111 does it (A1111 modules/textual_inversion/
 * textual_inversion.py and modules/sd_hijack.py).
 *
 * Each embedding is known by its name (the file stem: "mydog.pt" is "mydog").
 * Its n vectors become n new tokens of the tokenizer, and all embeddings'
 * vectors one table of added tokens in the parameters (rows in the order the
 * embeddings were given, consecutive ids from the text encoder's vocabulary
 * size on).  A prompt is then rewritten so that each occurrence of a name
 * becomes its n token strings: an n-vector embedding takes n of the 75
 * positions, as in A1111.
 *
 * Matching a name in a prompt:
 *  - whole words only: the character before the occurrence and the one after
 *    it must not be word characters (letters, digits, combining marks, "_"),
 *    so "cat" matches in "a cat," and "(cat:1.2)" but not in "catalog",
 *    "bobcat" or "cat_2".  (A1111 compares token ids, which can also hit the
 *    last piece of a longer word; whole words are what a user means.)  A name
 *    that starts or ends with a non-word character has no condition on that
 *    side;
 *  - case-insensitively, character by character (CLIP lowercases the prompt
 *    anyway, so A1111 too matches "MyDog" for "mydog");
 *  - white space in a name matches any run of white space;
 *  - the longest name first where several match at one place (as A1111
 *    prefers the longest token sequence); occurrences do not overlap.
 * A name that is a word of the vocabulary ("dog.pt") still means the
 * embedding, as in A1111: the embedding wins over the word.
 *
 * The token strings are "⟨name#k⟩" (k = 0 .. n-1): U+27E8/U+27E9 are outside
 * CLIP's byte alphabet, so no vocabulary entry equals them; text that holds
 * them literally is read as those tokens too.
 *
 * SDXL: its second tokenizer is a copy of the first made after the tokens are
 * added (dl_prompt_ids_encode), so the ids are the same in both; an SDXL
 * embedding's clip_l vectors are text_encoder's added tokens and its clip_g
 * vectors text_encoder_2's (as A1111 and ComfyUI sd1_clip.py use them).  An
 * embedding of one text encoder on SDXL, or an SDXL one on SD 1.x, is an
 * error naming the widths. */
#pragma once

#include "nn/dl-embedding-file.h"
#include "nn/dl-params.h"
#include "text/dl-clip-tokenizer.h"

G_BEGIN_DECLS

typedef struct _DlPromptEmbeddings DlPromptEmbeddings;

/* Registers the tokens of `embeddings[0..n)` in `tok` and sets their vectors
 * as the added tokens of `params` (f32 [total vectors, width], id base = the
 * token table's rows; SDXL: `vectors` for text_encoder, `vectors_2` for
 * text_encoder_2).  `tok` must have exactly the text encoder's vocabulary
 * (no added tokens yet) and `params` no added tokens.  The embeddings are
 * only read (the caller keeps them).  Bad input changes nothing.  Errors: a
 * width other than the text encoder's (or an embedding of the other family:
 * one set of vectors for SDXL, two for SD 1.x), two embeddings with the same
 * name (compared case-insensitively), a name that is empty, not UTF-8 or over
 * 200 bytes. */
DlPromptEmbeddings *dl_prompt_embeddings_new (DlClipTokenizer *tok, DlParams *params, DlEmbedding *const *embeddings,
                                              guint n, GError **error);
/* The same from files (NULL-terminated), read with
 * dl_embedding_read_for_model at the text encoders' widths; errors name the
 * file. */
DlPromptEmbeddings *dl_prompt_embeddings_load (DlClipTokenizer *tok, DlParams *params, const char *const *paths,
                                               GError **error);
/* Leaves the tokenizer and the parameters as they are. */
void dl_prompt_embeddings_free (DlPromptEmbeddings *pe);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlPromptEmbeddings, dl_prompt_embeddings_free)

guint dl_prompt_embeddings_get_n (DlPromptEmbeddings *pe);
/* The i-th embedding's name, vector count and first token id. */
const char *dl_prompt_embeddings_get_name (DlPromptEmbeddings *pe, guint i);
int dl_prompt_embeddings_get_n_vectors (DlPromptEmbeddings *pe, guint i);
gint32 dl_prompt_embeddings_get_first_id (DlPromptEmbeddings *pe, guint i);

/* `prompt` (UTF-8) with every occurrence of an embedding's name replaced by its
 * token strings, for dl_clip_tokenizer_encode.  `hits` (may be NULL) has one
 * counter per embedding, incremented for each occurrence. */
char *dl_prompt_embeddings_rewrite (DlPromptEmbeddings *pe, const char *prompt, guint *hits);

G_END_DECLS
