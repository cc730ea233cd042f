/* dl-tokenizer-folder.h: a CLIP tokenizer written as the tokenizer/ folder of
 * a diffusers model (vocab.json, merges.txt, tokenizer_config.json,
 * special_tokens_map.json), as transformers' CLIPTokenizer.save_pretrained
 * writes them (tokenization_clip.py save_vocabulary: vocab.json with
 * json.dumps(indent=2, sort_keys=True, ensure_ascii=False), merges.txt from
 * "#version: 0.2" in rank order).  Only the vocabulary file's tokens: added
 * ones (a Textual Inversion placeholder) are not part of a base model. */
#pragma once

#include "io/dl-checkpoint-writer.h"
#include "text/dl-clip-tokenizer.h"

G_BEGIN_DECLS

/* Into `dir` (it must exist).  Errors name the file. */
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
 * that is gone afterwards. */
gboolean dl_tokenizer_folder_write_checkpoint (DlCheckpoint *base, DlCheckpointSourceFunc source, gpointer user_data,
                                               const DlCheckpointWriteOptions *options, DlClipTokenizer *tok,
                                               const char *path, GError **error);

G_END_DECLS
