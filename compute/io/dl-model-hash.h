/* dl-model-hash.h: the hashes that identify a base model in a LoRA's or an
 * embedding's metadata, as kohya sd-scripts (library/train_util.py model_hash,
 * calculate_sha256) and AUTOMATIC1111 (modules/hashes.py, modules/sd_models.py
 * model_hash, CheckpointInfo.shorthash) compute them.  Files are streamed, never
 * read whole, and every loop checks a GCancellable: a full hash of a 4 GB
 * checkpoint takes seconds. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A1111's old model hash (kohya's ss_sd_model_hash): sha256 of the 0x10000 bytes
 * at file offset 0x100000, first 8 hex digits.  A shorter file hashes what is
 * there, possibly nothing (Python's seek + read do the same). */
char *dl_model_hash_legacy (const char *path, GCancellable *cancellable, GError **error);

/* sha256 of the whole file, 64 lowercase hex digits (kohya's
 * ss_new_sd_model_hash, A1111's "sha256"). */
char *dl_model_hash_sha256 (const char *path, GCancellable *cancellable, GError **error);

/* A1111's short hash: the first 10 hex digits of the sha256 (what a Textual
 * Inversion .pt stores as sd_checkpoint). */
char *dl_model_hash_short (const char *sha256_hex);

/* What a training run records about its base model. */
typedef struct
{
  char *name;   /* ss_sd_model_name: the file's or folder's base name */
  char *legacy; /* ss_sd_model_hash; NULL for a folder */
  char *sha256; /* ss_new_sd_model_hash; NULL for a folder */
  gboolean is_folder;
} DlModelHashes;

/* Fill `out` for the base model at `path` (a single checkpoint file or a
 * diffusers folder).  kohya hashes whatever path exists with open(), which fails
 * on a folder and stores the words "IsADirectory" in both hash keys; we record no
 * hash for a folder instead (the name only), since no tool can match that text
 * to a model.  Clear `out` with dl_model_hashes_clear. */
gboolean dl_model_hashes_compute (const char *path, DlModelHashes *out, GCancellable *cancellable, GError **error);
void dl_model_hashes_clear (DlModelHashes *h);

G_END_DECLS
