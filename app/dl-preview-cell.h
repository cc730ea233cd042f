/* dl-preview-cell.h: one preview image in the side-by-side grid: waiting, being
 * made, made (click to enlarge) or failed (the reason in its tooltip). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define DL_TYPE_PREVIEW_CELL (dl_preview_cell_get_type ())
G_DECLARE_FINAL_TYPE (DlPreviewCell, dl_preview_cell, DL, PREVIEW_CELL, GtkButton)

GtkWidget *dl_preview_cell_new (guint row, guint column);
guint dl_preview_cell_get_row (DlPreviewCell *self);
guint dl_preview_cell_get_column (DlPreviewCell *self);
void dl_preview_cell_set_busy (DlPreviewCell *self);
void dl_preview_cell_set_texture (DlPreviewCell *self, GdkTexture *texture);
void dl_preview_cell_set_error (DlPreviewCell *self, const char *message);
/* A cancelled run: the cell goes back to waiting. */
void dl_preview_cell_set_waiting (DlPreviewCell *self);
GdkTexture *dl_preview_cell_get_texture (DlPreviewCell *self);

G_END_DECLS
