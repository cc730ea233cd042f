/* dl-dataset-page.h: the dataset: the grid of images with their captions, the
 * concept and caption template, and every way of adding pictures (drop, paste,
 * dialog). */
#pragma once

#include <adwaita.h>

#include "dl-project.h"

G_BEGIN_DECLS

#define DL_TYPE_DATASET_PAGE (dl_dataset_page_get_type ())
G_DECLARE_FINAL_TYPE (DlDatasetPage, dl_dataset_page, DL, DATASET_PAGE, GtkWidget)

void dl_dataset_page_set_project (DlDatasetPage *self, DlProject *project);
DlProject *dl_dataset_page_get_project (DlDatasetPage *self);
/* For remembering the last image folder (nullable). */
void dl_dataset_page_set_settings (DlDatasetPage *self, GSettings *settings);

/* The files of a drop or paste, in order (GFile, a new array). */
GPtrArray *dl_files_from_file_list (GdkFileList *list);
/* Add files and folders (GFile): folders are searched on a worker thread, then
 * the images are added and decoded.  Emits "import-finished" (guint n_added). */
void dl_dataset_page_add_files (DlDatasetPage *self, GPtrArray *files);
/* Imports still being collected. */
guint dl_dataset_page_get_n_importing (DlDatasetPage *self);
/* The title of the last toast shown (NULL if none), and the toast itself while it
 * is shown, for tests. */
const char *dl_dataset_page_get_last_toast (DlDatasetPage *self);
AdwToast *dl_dataset_page_get_toast (DlDatasetPage *self);

G_END_DECLS
