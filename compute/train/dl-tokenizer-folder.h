/* dl-tokenizer-folder.h: a CLIP tokenizer written as the tokenizer/ folder of
 * a diffusers model (vocab.json, merges.txt, tokenizer_config.json,
 * special_tokens_map.json), as transformers' CLIPTokenizer.save_pretrained
 * writes them (tokenization_clip.py save_vocabulary: vocab.json with
 * json.dumps(indent=2, sort_keys=True, ensure_ascii=False), merges.txt from
 * "#version: 0.2" in rank order).  Only the vocabulary file's tokens: added
 * ones (a Textual Inversion placeholder) are not part of a base model.  SDXL's
 * tokenizer_2/ is the same vocabulary with another pad token. */
#pragma once

#include "io/dl-checkpoint-writer.h"
#include "text/dl-clip-tokenizer.h"

G_BEGIN_DECLS

/* Into `dir` (it must exist).  Errors name the file.  The padding of `tok`
 * picks the configuration: DL_CLIP_PAD_SD1 writes SD 1.x's tokenizer/ (and
 * SDXL's first tokenizer/, the same files); DL_CLIP_PAD_SDXL_DIFFUSERS and
 * DL_CLIP_PAD_ZERO write SDXL's published tokenizer_2/ (pad_token "!", id 0,
 * a special token in added_tokens_decoder), what diffusers
 * StableDiffusionXLPipeline loads as tokenizer_2 — there is no transformers
 * configuration for kohya's pad id 0 with "!" left ordinary (kohya sd-scripts
 * sets pad_token_id in code), so a kohya-style tokenizer gets diffusers'
 * folder.  Another pad id from dl_clip_tokenizer_set_pad is written the same
 * way, its vocabulary entry as the pad token. */
gboolean dl_tokenizer_folder_write (DlClipTokenizer *tok, const char *dir, GError **error);

/* A temporary folder holding `tok`, or when NULL the tokenizer Dreamloom uses
 * for SD 1.x (dl_clip_tokenizer_find without a model folder): for a model
 * written without a tokenizer of its own.  Remove it with
 * dl_file_remove_tree and g_free the path.  NULL with *error set when no
 * vocabulary is found. */
char *dl_tokenizer_folder_make_temporary (DlClipTokenizer *tok, GError **error);

/* dl_checkpoint_write, where a diffusers folder always gets a tokenizer/:
 * options->tokenizer_dir or the base's own when there is one, else `tok`
 * (NULL: the one dl_clip_tokenizer_find gives) through a temporary folder
 * that is gone afterwards; an SDXL folder also a tokenizer_2/: the one
 * dl_checkpoint_write_find_tokenizer_2 finds, else a copy of that tokenizer
 * with diffusers' tokenizer_2 padding (DL_CLIP_PAD_SDXL_DIFFUSERS). */
gboolean dl_tokenizer_folder_write_checkpoint (DlCheckpoint *base, DlCheckpointSourceFunc source, gpointer user_data,
                                               const DlCheckpointWriteOptions *options, DlClipTokenizer *tok,
                                               const char *path, GError **error);

G_END_DECLS
