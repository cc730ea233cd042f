/* dl-project.h: a Dreamloom project, saved as one JSON file (`*.dreamloom`).
 *
 * It holds the dataset (image paths and captions), the concept (token and class
 * word), the base model, the preview set-up and the training settings (typed:
 * DlTrainSettings).  Image paths are absolute, so the project file can live
 * anywhere.  Every change is saved automatically a moment later, atomically, and
 * each caption is also kept in the image's sidecar text file.
 *
 * GIO, json-glib and the engine only, no GTK: `dreamloom train PROJECT` reads it
 * headless (dl_project_read) and the window shows it.  Autosaves and the images'
 * decoding report back through the thread-default main context.
 *
 * File format (version 1):
 *   { "format": "dreamloom-project", "version": 1,
 *     "concept": { "token": "sks", "class": "dog" },
 *     "base_model": { "path": "/…/v1-5-pruned-emaonly.safetensors" } | null,
 *     "dataset": { "resolution": 512, "caption_template": "a photo of {token} {class}",
 *                  "images": [ { "path": "/…/dog1.png", "caption": "a photo of sks dog" } ] },
 *     "previews": { "prompts": [ "…" ], "negative_prompt": "…", "templates": [ 0, 3 ],
 *                   "loras": [ { "path": "/…/dog.safetensors", "strength": 0.8 } ] },
 *     "training": { "version": 2, "method": "lora", "steps": 1500, … } }
 * "training" has one member per `dreamloom train` option (dl_train_settings_to_json),
 * less those the project itself decides (DL_PROJECT_TRAIN_DERIVED).  An older file's
 * "training" (version 1, which held no settings) or none reads as the defaults
 * for LoRA.  Keys a version does not know, at the top and in "training", are kept
 * as they are when it saves. */
#pragma once

#include <gio/gio.h>

#include "dl-dataset-image.h"
#include "train/dl-train-settings.h"

G_BEGIN_DECLS

#define DL_PROJECT_FORMAT "dreamloom-project"
#define DL_PROJECT_VERSION 1
#define DL_PROJECT_EXTENSION ".dreamloom"
#define DL_PROJECT_DEFAULT_RESOLUTION 512
/* The version of the "training" section: 2, typed settings. */
#define DL_PROJECT_TRAINING_VERSION 2
/* The training options the project decides (dl_project_fill_train_settings); the
 * "training" section does not keep them. */
#define DL_PROJECT_TRAIN_DERIVED                                            \
  {                                                                         \
    "model", "images", "resolution", "placeholder", "instance-prompt", NULL \
  }
/* How long after a change the project is saved. */
#define DL_PROJECT_AUTOSAVE_MS 700

typedef struct
{
  char *path;
  double strength;
} DlProjectLora;

#define DL_TYPE_PROJECT (dl_project_get_type ())
G_DECLARE_FINAL_TYPE (DlProject, dl_project, DL, PROJECT, GObject)

/* A new, empty project that will be saved at `file`. */
DlProject *dl_project_new (GFile *file);
/* Read a project file.  Errors name the file and what is wrong in it.  Call on the
 * main thread: the images start loading (on worker threads) at once. */
DlProject *dl_project_load (GFile *file, GError **error);
void dl_project_load_async (GFile *file, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
DlProject *dl_project_load_finish (GAsyncResult *result, GError **error);
/* Read a project file without decoding its images (they stay
 * DL_IMAGE_STATE_LOADING until dl_project_reload_images): for the headless
 * commands, which need only the paths and captions.  Needs no main loop. */
DlProject *dl_project_read (GFile *file, GError **error);

GFile *dl_project_get_file (DlProject *self);
/* "Save As": the project lives at `file` from now on (saved at once). */
void dl_project_set_file (DlProject *self, GFile *file);
/* The file name without ".dreamloom". */
char *dl_project_dup_title (DlProject *self);

const char *dl_project_get_token (DlProject *self);
void dl_project_set_token (DlProject *self, const char *token);
const char *dl_project_get_class_word (DlProject *self);
void dl_project_set_class_word (DlProject *self, const char *class_word);
const char *dl_project_get_caption_template (DlProject *self);
void dl_project_set_caption_template (DlProject *self, const char *template_text);
int dl_project_get_resolution (DlProject *self);
void dl_project_set_resolution (DlProject *self, int resolution);
/* NULL when none is chosen. */
const char *dl_project_get_base_model (DlProject *self);
void dl_project_set_base_model (DlProject *self, const char *path);

/* ---- dataset ---- */

/* The images, in training order (a GListModel of DlDatasetImage). */
GListModel *dl_project_get_images (DlProject *self);
/* Append the files (GFile) that are not in the project yet, read their sidecar
 * captions and start decoding them.  Returns how many were added; *n_already (nullable)
 * receives how many were in the project already. */
guint dl_project_add_files (DlProject *self, GPtrArray *files, guint *n_already);
gboolean dl_project_contains (DlProject *self, GFile *file);
/* Remove the images at these positions (any order).  The removal can be undone
 * until the next one. */
void dl_project_remove (DlProject *self, const guint *positions, guint n_positions);
gboolean dl_project_can_undo_remove (DlProject *self);
/* Put the last removed images back where they were.  Returns how many. */
guint dl_project_undo_remove (DlProject *self);
/* Move the image at `from` so that it ends up at `to`. */
void dl_project_move (DlProject *self, guint from, guint to);
/* The caption template with this project's token and class word. */
char *dl_project_expand_caption_template (DlProject *self);
/* Give every image without a caption the expanded template.  Returns how many. */
guint dl_project_fill_empty_captions (DlProject *self);
/* Decode every image again (after files changed on disk). */
void dl_project_reload_images (DlProject *self);
/* The images whose files are missing (DlDatasetImage, a new array). */
GPtrArray *dl_project_get_missing (DlProject *self);
/* Give missing images a new home: a candidate (GFile) with the same file name
 * replaces the missing one at its position, keeping its caption.  Returns how many
 * were found. */
guint dl_project_relocate_missing (DlProject *self, GPtrArray *candidates);
/* Remove every missing image (one removal, so it can be undone).  Returns how many. */
guint dl_project_remove_missing (DlProject *self);

guint dl_project_get_n_loading (DlProject *self);
guint dl_project_get_n_missing (DlProject *self);
guint dl_project_get_n_unreadable (DlProject *self);
/* Images with a warning (too small, duplicate). */
guint dl_project_get_n_warnings (DlProject *self);

/* ---- previews ---- */

/* User prompts, in order. */
const char *const *dl_project_get_preview_prompts (DlProject *self);
void dl_project_set_preview_prompts (DlProject *self, const char *const *prompts);
const char *dl_project_get_negative_prompt (DlProject *self);
void dl_project_set_negative_prompt (DlProject *self, const char *negative_prompt);
/* Indices into the template list that are switched on. */
GArray *dl_project_get_preview_templates (DlProject *self);
void dl_project_set_preview_templates (DlProject *self, const guint *indices, guint n);
/* The preview prompts as they are sampled: the templates switched on with S* -> the concept
 * token, then the user's prompts (NULL-ended; empty when there are none). */
char **dl_project_dup_preview_texts (DlProject *self);
/* LoRA columns (DlProjectLora, owned by the project). */
GPtrArray *dl_project_get_loras (DlProject *self);
void dl_project_set_loras (DlProject *self, GPtrArray *loras);
DlProjectLora *dl_project_lora_new (const char *path, double strength);
void dl_project_lora_free (DlProjectLora *lora);

/* ---- training ---- */

/* The training settings kept in the project (method, steps, learning rate…).
 * The options in DL_PROJECT_TRAIN_DERIVED are unset in them (model, images,
 * placeholder and instance prompt NULL, the resolution the default): a run's
 * come from the project (dl_project_make_train_settings). */
const DlTrainSettings *dl_project_get_train_settings (DlProject *self);
/* Keep a copy of `settings` (less the derived options) and save it. */
void dl_project_set_train_settings (DlProject *self, const DlTrainSettings *settings);
/* Set the options the project decides: model = the base model (NULL when none
 * is chosen), resolution = the dataset's, images = the project file (the images
 * themselves are the project's list: dl_project_dup_training_images), for
 * Textual Inversion the concept token as the placeholder, the expanded caption
 * template as the caption of images without one, when unset the preview
 * prompts of the Previews page (dl_project_dup_preview_texts) as the run's
 * sample prompts, and, when unset, out =
 * <project folder>/<title>-<method>.safetensors.  Relative out and run-dir
 * paths are taken from the project file's folder. */
void dl_project_fill_train_settings (DlProject *self, DlTrainSettings *settings);
/* A copy of the kept settings, filled in (dl_project_fill_train_settings). */
DlTrainSettings *dl_project_make_train_settings (DlProject *self);
/* The images to train on, in the dataset's order: their paths and captions (""
 * for none), two NULL-terminated lists of the same length.  An empty dataset or
 * missing files (named, up to a few) fail with one line. */
gboolean dl_project_dup_training_images (DlProject *self, GStrv *paths, GStrv *captions, GError **error);

/* ---- saving ---- */

/* The project as JSON text. */
char *dl_project_to_json (DlProject *self);
/* Save now, blocking, atomically.  Also writes pending caption sidecars. */
gboolean dl_project_save (DlProject *self, GError **error);
/* Whether there are changes not yet on disk. */
gboolean dl_project_get_dirty (DlProject *self);
/* Write everything pending now and wait for it (closing, quitting, tests). */
gboolean dl_project_flush (DlProject *self, GError **error);
/* Save now, blocking, at `file`, where the project lives from then on; when that
 * fails it stays where it was. */
gboolean dl_project_save_as (DlProject *self, GFile *file, GError **error);
/* Forget the changes not on disk yet (closing without saving): nothing more is
 * written to the project file for them.  Caption sidecars still are. */
void dl_project_discard_changes (DlProject *self);

G_END_DECLS
