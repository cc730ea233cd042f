/* dl-preview-cell.h: one preview image in the side-by-side grid: waiting, being
 * made, made (click to enlarge), failed (the reason in its tooltip) or not made
 * (the run was cancelled first). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef enum
{
  DL_PREVIEW_CELL_WAITING,
  DL_PREVIEW_CELL_BUSY,
  DL_PREVIEW_CELL_DONE,
  DL_PREVIEW_CELL_FAILED,
  DL_PREVIEW_CELL_NOT_MADE,
} DlPreviewCellState;

#define DL_TYPE_PREVIEW_CELL (dl_preview_cell_get_type ())
G_DECLARE_FINAL_TYPE (DlPreviewCell, dl_preview_cell, DL, PREVIEW_CELL, GtkButton)

GtkWidget *dl_preview_cell_new (guint row, guint column);
guint dl_preview_cell_get_row (DlPreviewCell *self);
guint dl_preview_cell_get_column (DlPreviewCell *self);
void dl_preview_cell_set_busy (DlPreviewCell *self);
void dl_preview_cell_set_texture (DlPreviewCell *self, GdkTexture *texture);
void dl_preview_cell_set_error (DlPreviewCell *self, const char *message);
/* The run ended before this image was made (`reason`: "Cancelled"); a made or
 * failed cell keeps what it shows. */
void dl_preview_cell_set_not_made (DlPreviewCell *self, const char *reason);
DlPreviewCellState dl_preview_cell_get_state (DlPreviewCell *self);
GdkTexture *dl_preview_cell_get_texture (DlPreviewCell *self);
/* Why the image failed or was not made; NULL otherwise. */
const char *dl_preview_cell_get_message (DlPreviewCell *self);

G_END_DECLS
