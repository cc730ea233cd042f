/* dl-checkpoint-list.h: a run's saved checkpoints, newest first, each with
 * its step and validation loss (the best one marked) and buttons: Export…,
 * Use in Previews (LoRA), Delete.  The page does the work:
 *   "export" (const char *file), "use" (const char *file),
 *   "delete" (gint64 step, const char *file, const char *state) */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define DL_TYPE_CHECKPOINT_LIST (dl_checkpoint_list_get_type ())
G_DECLARE_FINAL_TYPE (DlCheckpointList, dl_checkpoint_list, DL, CHECKPOINT_LIST, GtkWidget)

DlCheckpointList *dl_checkpoint_list_new (void);
void dl_checkpoint_list_clear (DlCheckpointList *self);
/* A checkpoint (a step already listed is replaced). `state` may be NULL. */
void dl_checkpoint_list_add (DlCheckpointList *self, gint64 step, const char *file, const char *state, double val_loss);
/* Mark the best (lowest validation loss) checkpoint. */
void dl_checkpoint_list_set_best (DlCheckpointList *self, gint64 step);
void dl_checkpoint_list_remove (DlCheckpointList *self, gint64 step);
/* Whether rows offer "Use in Previews" (LoRA runs). */
void dl_checkpoint_list_set_can_use (DlCheckpointList *self, gboolean can_use);
/* While a run writes into the folder, nothing may be deleted. */
void dl_checkpoint_list_set_can_delete (DlCheckpointList *self, gboolean can_delete);
guint dl_checkpoint_list_get_n_items (DlCheckpointList *self);
/* The file of the checkpoint at `step`, or NULL. */
const char *dl_checkpoint_list_get_file (DlCheckpointList *self, gint64 step);

G_END_DECLS
