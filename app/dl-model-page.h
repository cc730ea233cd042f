/* dl-model-page.h: choosing the base model: checkpoints found in the usual places
 * (scanned on a worker thread) and "Open…". */
#pragma once

#include <gtk/gtk.h>

#include "dl-project.h"

G_BEGIN_DECLS

#define DL_TYPE_MODEL_PAGE (dl_model_page_get_type ())
G_DECLARE_FINAL_TYPE (DlModelPage, dl_model_page, DL, MODEL_PAGE, GtkWidget)

void dl_model_page_set_project (DlModelPage *self, DlProject *project);
/* Look through the usual places again ("scan-finished" when done). */
void dl_model_page_rescan (DlModelPage *self);
gboolean dl_model_page_get_scanning (DlModelPage *self);
/* What the last scan found (DlModelEntry, owned by the page). */
GPtrArray *dl_model_page_get_entries (DlModelPage *self);
/* Make `path` the project's base model, as choosing it in the list or with Open does. */
void dl_model_page_choose (DlModelPage *self, const char *path);

G_END_DECLS
