/* dl-preview-page.h: side-by-side previews: prompts (the Textual Inversion
 * templates with the project's token, and the user's own) down the side, one
 * column per model (the base, then base + each LoRA at its strength), made on a
 * worker thread by the application's DlPreviewBackend. */
#pragma once

#include <gtk/gtk.h>

#include "dl-dataset-strip.h"
#include "dl-preview-backend.h"
#include "dl-preview-cell.h"
#include "dl-project.h"

G_BEGIN_DECLS

#define DL_TYPE_PREVIEW_PAGE (dl_preview_page_get_type ())
G_DECLARE_FINAL_TYPE (DlPreviewPage, dl_preview_page, DL, PREVIEW_PAGE, GtkWidget)

void dl_preview_page_set_project (DlPreviewPage *self, DlProject *project);
/* Sampling defaults and the GPU come from here (nullable). */
void dl_preview_page_set_settings (DlPreviewPage *self, GSettings *settings);
/* Look again whether a backend is registered (the application calls this when it
 * registers one). */
void dl_preview_page_refresh (DlPreviewPage *self);

/* The prompts a run would use, in order (a new array of strings). */
GPtrArray *dl_preview_page_get_prompts (DlPreviewPage *self);
/* The page the results area shows: "unavailable", "no-model", "no-prompts", "ready" or "results". */
const char *dl_preview_page_get_state (DlPreviewPage *self);
/* Start a run (as the Generate button does); FALSE when one cannot start. */
gboolean dl_preview_page_generate (DlPreviewPage *self);
void dl_preview_page_cancel (DlPreviewPage *self);
gboolean dl_preview_page_get_running (DlPreviewPage *self);
/* A result cell of the last run (NULL outside the grid). */
DlPreviewCell *dl_preview_page_get_cell (DlPreviewPage *self, guint row, guint column);
/* The texture in a result cell, NULL if none (yet). */
GdkTexture *dl_preview_page_get_result (DlPreviewPage *self, guint row, guint column);
/* Whether the file of LoRA column `index` (0: the first LoRA) is there, as its row
 * shows it: "checking" (asked off the main thread, no answer yet), "found" or
 * "missing"; NULL past the last one. */
const char *dl_preview_page_get_lora_check (DlPreviewPage *self, guint index);
/* The row of training images above the results. */
DlDatasetStrip *dl_preview_page_get_dataset_strip (DlPreviewPage *self);

G_END_DECLS
