/* dl-model-page.h: choosing the base model: checkpoints found in the usual places
 * (scanned on a worker thread) and "Open…". */
#pragma once

#include <gtk/gtk.h>

#include "dl-model-scan.h"
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
/* The project's base model as the model-files code described it (family, size);
 * NULL until it has, or when it cannot be used. */
const DlModelEntry *dl_model_page_get_current (DlModelPage *self);
/* Make `path` the project's base model, as choosing it in the list or with Open does:
 * on a worker thread, the model-files code opens it first and a model Dreamloom
 * cannot use is refused with its message ("chosen" (path or NULL, error)). */
void dl_model_page_choose (DlModelPage *self, const char *path);

G_END_DECLS
