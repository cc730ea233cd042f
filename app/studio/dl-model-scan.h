/* dl-model-scan.h: find Stable Diffusion checkpoints where people keep them.
 *
 * The Hugging Face cache (diffusers folders: a snapshot with model_index.json),
 * AUTOMATIC1111's and ComfyUI's checkpoint folders (.safetensors and .ckpt files,
 * subfolders included) and Dreamloom's own models folder (both kinds).  Nothing
 * here opens a checkpoint: which family a file is, the model-files code says. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  DL_MODEL_PLACE_DREAMLOOM,
  DL_MODEL_PLACE_HF_CACHE,
  DL_MODEL_PLACE_A1111,
  DL_MODEL_PLACE_COMFYUI,
  DL_MODEL_PLACE_OTHER, /* picked by hand */
} DlModelPlace;

typedef struct
{
  DlModelPlace place;
  char *dir;
} DlModelRoot;

typedef struct
{
  char *path; /* the checkpoint file, or the diffusers folder */
  char *name; /* for people: the file name without extension, or "org/name" */
  DlModelPlace place;
  gboolean diffusers; /* a diffusers folder rather than one file */
  guint64 size;       /* bytes (a folder: all its files) */
  char *family;       /* "Stable Diffusion 1.x" once the model-files code looked at it, else NULL */
} DlModelEntry;

void dl_model_entry_free (DlModelEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlModelEntry, dl_model_entry_free)
void dl_model_root_free (DlModelRoot *root);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlModelRoot, dl_model_root_free)

/* "Hugging Face cache", "AUTOMATIC1111", ... */
const char *dl_model_place_name (DlModelPlace place);

/* Where Dreamloom keeps models: $XDG_DATA_HOME/dreamloom/models. */
char *dl_model_scan_own_dir (void);

/* The usual places on this computer (DlModelRoot), whether they exist or not:
 * $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub;
 * ~/stable-diffusion-webui/models/Stable-diffusion; ~/ComfyUI/models/checkpoints;
 * Dreamloom's own folder. */
GPtrArray *dl_model_scan_default_roots (void);

/* Every checkpoint under `roots` (DlModelEntry), by place then name.  Blocking. */
GPtrArray *dl_model_scan (GPtrArray *roots, GCancellable *cancellable);
void dl_model_scan_async (GPtrArray *roots, GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data);
GPtrArray *dl_model_scan_finish (GAsyncResult *result, GError **error);

/* Describe a checkpoint the user picked: a .safetensors/.ckpt file or a folder
 * with model_index.json (or a model_index.json itself).  Blocking. */
DlModelEntry *dl_model_entry_for_path (const char *path, GError **error);

/* dl_model_entry_for_path, then open the checkpoint with the model-files code to
 * learn its family: a model Dreamloom cannot train (another family, a damaged or
 * incomplete file) fails with that code's message.  Blocking: a worker thread's. */
DlModelEntry *dl_model_entry_inspect (const char *path, GError **error);

G_END_DECLS
