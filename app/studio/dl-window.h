/* dl-window.h: the studio window: a start page (new, open, recent projects) and,
 * with a project open, its Dataset, Base Model and Previews pages. */
#pragma once

#include <adwaita.h>

#include "dl-application.h"
#include "dl-dataset-page.h"
#include "dl-model-page.h"
#include "dl-preview-page.h"
#include "dl-project.h"
#include "dl-train-page.h"

G_BEGIN_DECLS

#define DL_TYPE_WINDOW (dl_window_get_type ())
G_DECLARE_FINAL_TYPE (DlWindow, dl_window, DL, WINDOW, AdwApplicationWindow)

DlWindow *dl_window_new (DlApplication *app);
/* What the window says about the GPU (for tests). */
const char *dl_window_get_device_text (DlWindow *self);

/* Show `project` (NULL: back to the start page).  The previous one is saved. */
void dl_window_set_project (DlWindow *self, DlProject *project);
DlProject *dl_window_get_project (DlWindow *self);
/* Open a project file; failures are shown in a dialog.  Emits "project-loaded". */
void dl_window_open_file (DlWindow *self, GFile *file);
/* Make a new project at `file` and show it; FALSE (and a dialog) if it cannot be saved there. */
gboolean dl_window_create_project (DlWindow *self, GFile *file, const char *token, const char *class_word);
/* Where new projects go: ~/Documents/Dreamloom (or ~/Dreamloom). */
char *dl_window_default_project_dir (void);

/* Closing the window or the project first saves it.  When that fails the window
 * stays and asks (AdwMessageDialog): Cancel, Discard (the changes since the last
 * save), or Save As… (then the closing goes on).  The dialog while it asks: */
AdwMessageDialog *dl_window_get_unsaved_dialog (DlWindow *self);
/* What Save As… does with the file picked (".dreamloom" added if missing): save
 * there and go on closing, or ask again if that fails too. */
void dl_window_save_unsaved_as (DlWindow *self, GFile *file);

/* Files dropped anywhere on the window (GdkFileList): a .dreamloom file opens, other
 * files and folders are added to the open project's dataset. */
GtkDropTarget *dl_window_get_drop_target (DlWindow *self);

DlDatasetPage *dl_window_get_dataset_page (DlWindow *self);
DlModelPage *dl_window_get_model_page (DlWindow *self);
DlPreviewPage *dl_window_get_preview_page (DlWindow *self);
DlTrainPage *dl_window_get_train_page (DlWindow *self);
/* The dialog that asks what to do with a run in progress, while it asks (tests). */
AdwMessageDialog *dl_window_get_training_dialog (DlWindow *self);
/* "start" or "project" */
const char *dl_window_get_view (DlWindow *self);

G_END_DECLS
