/* dl-file-dialog.h: open/save/folder dialogs through GtkFileDialog where GTK has it
 * (4.10 and later) and GtkFileChooserNative otherwise (Debian 12's GTK 4.8); both
 * go through the portal inside Flatpak. */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef enum
{
  DL_FILE_DIALOG_OPEN,          /* one file */
  DL_FILE_DIALOG_OPEN_MULTIPLE, /* files */
  DL_FILE_DIALOG_FOLDER,        /* one folder */
  DL_FILE_DIALOG_SAVE,          /* a file name to write */
} DlFileDialogKind;

/* `files` (GFile) is NULL when the user cancelled.  Not called when `owner` was
 * destroyed meanwhile. */
typedef void (*DlFileDialogDone) (GtkWidget *owner, GPtrArray *files, gpointer user_data);

/* `filters`: GtkFileFilters (nullable; the first is the default).  `initial_folder`
 * and `initial_name` are nullable. */
void dl_file_dialog_run (GtkWidget *owner, DlFileDialogKind kind, const char *title, const char *accept_label,
                         GListModel *filters, GFile *initial_folder, const char *initial_name, DlFileDialogDone done,
                         gpointer user_data);

/* A filter for PNG, JPEG and WebP images. */
GtkFileFilter *dl_file_filter_images (void);

G_END_DECLS
