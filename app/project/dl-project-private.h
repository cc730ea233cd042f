/* dl-project-private.h: DlProject internals shared by the dl-project*.c files
 * (state, properties and setters in dl-project.c, the dataset in dl-project-dataset.c,
 * the file format in dl-project-json.c, saving and caption sidecars in
 * dl-project-save.c, the training settings in dl-project-train.c).  Not
 * installed; nothing else includes it. */
#pragma once

#include <json-glib/json-glib.h>

#include "dl-project.h"

G_BEGIN_DECLS

struct _DlProject
{
  GObject parent_instance;

  GFile *file;
  char *token;
  char *class_word;
  char *caption_template;
  int resolution;
  char *base_model;

  GListStore *images;
  GHashTable *paths; /* path -> count, for "already in the project" */

  char **prompts;
  char *negative_prompt;
  GArray *templates;               /* guint */
  GPtrArray *loras;                /* DlProjectLora */
  DlTrainSettings *train_settings; /* less DL_PROJECT_TRAIN_DERIVED */
  JsonObject *training_unknown;    /* members of "training" this version does not know, or NULL */
  JsonObject *unknown;             /* top-level keys this version does not know */

  /* the last removal, for undo */
  GPtrArray *removed;        /* DlDatasetImage */
  GArray *removed_positions; /* guint, ascending */

  /* counts, recomputed in an idle after changes */
  guint n_loading, n_missing, n_unreadable, n_warnings;
  guint recount_id;
  GCancellable *cancellable;

  /* saving */
  guint64 change_serial, saved_serial;
  guint autosave_id;
  GHashTable *pending_sidecars; /* DlDatasetImage -> itself (ref) */
  guint sidecar_id;
  gboolean applying_sidecar; /* a caption read from its sidecar is not written back */
  gboolean quiet;            /* while loading: changes are not changes */
};

typedef enum
{
  PROP_0,
  PROP_FILE,
  PROP_TOKEN,
  PROP_CLASS_WORD,
  PROP_CAPTION_TEMPLATE,
  PROP_RESOLUTION,
  PROP_BASE_MODEL,
  PROP_N_LOADING,
  PROP_N_MISSING,
  PROP_N_UNREADABLE,
  PROP_N_WARNINGS,
  PROP_DIRTY,
  PROP_CAN_UNDO_REMOVE,
  N_PROPS
} DlProjectProp;

/* dl-project.c: property notification and signals. */
void dl_project_notify (DlProject *self, DlProjectProp prop);
void dl_project_emit_save_failed (DlProject *self, GError *error);
void dl_project_emit_sidecar_failed (DlProject *self, DlDatasetImage *image, const char *message);

/* dl-project-save.c: a change to save (nothing while loading), and the handler every
 * image of the project has on its caption (marks a change, queues the sidecar). */
void dl_project_mark_changed (DlProject *self);
void dl_project_caption_changed (DlDatasetImage *image, GParamSpec *pspec, DlProject *self);

/* dl-project-dataset.c: recount the images now (counts and warnings), and take an
 * image into the project's bookkeeping before it goes into the list. */
void dl_project_recount (DlProject *self);
void dl_project_track_image (DlProject *self, DlDatasetImage *image);

/* dl-project-train.c: unset the options the project decides (keeping them). */
void dl_project_clear_train_derived (DlTrainSettings *settings);

G_END_DECLS
