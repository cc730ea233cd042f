#include "dl-config.h"

#include "dl-preview-cell.h"

#include <glib/gi18n.h>

struct _DlPreviewCell
{
  GtkButton parent_instance;
  GtkPicture *picture;
  GtkSpinner *spinner;
  GtkImage *status_icon;
  guint row, column;
  DlPreviewCellState state;
  GdkTexture *texture;
  char *message;
};

G_DEFINE_FINAL_TYPE (DlPreviewCell, dl_preview_cell, GTK_TYPE_BUTTON)

static void
show (DlPreviewCell *self, DlPreviewCellState state, const char *message)
{
  self->state = state;
  g_free (self->message);
  self->message = g_strdup (message);

  gboolean busy = state == DL_PREVIEW_CELL_BUSY;
  gtk_widget_set_visible (GTK_WIDGET (self->spinner), busy);
  gtk_spinner_set_spinning (self->spinner, busy);

  const char *icon = state == DL_PREVIEW_CELL_FAILED     ? "dialog-error-symbolic"
                     : state == DL_PREVIEW_CELL_NOT_MADE ? "process-stop-symbolic"
                                                         : NULL;
  gtk_image_set_from_icon_name (self->status_icon, icon);
  gtk_widget_set_visible (GTK_WIDGET (self->status_icon), icon != NULL);
  if (state == DL_PREVIEW_CELL_FAILED)
    gtk_widget_add_css_class (GTK_WIDGET (self), "dl-failed");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self), "dl-failed");

  const char *tooltip = state == DL_PREVIEW_CELL_WAITING ? _ ("Waiting")
                        : state == DL_PREVIEW_CELL_BUSY  ? _ ("Being made…")
                        : state == DL_PREVIEW_CELL_DONE  ? _ ("Click to enlarge")
                                                         : message;
  gtk_widget_set_tooltip_text (GTK_WIDGET (self), tooltip);
  /* a failed cell stays sensitive: insensitive widgets show no tooltip, and the
   * tooltip is where the reason is */
  gtk_widget_set_sensitive (GTK_WIDGET (self), state == DL_PREVIEW_CELL_DONE || state == DL_PREVIEW_CELL_FAILED);
  gtk_accessible_update_state (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_STATE_BUSY, busy, -1);
}

void
dl_preview_cell_set_busy (DlPreviewCell *self)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  show (self, DL_PREVIEW_CELL_BUSY, NULL);
}

void
dl_preview_cell_set_texture (DlPreviewCell *self, GdkTexture *texture)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  g_return_if_fail (GDK_IS_TEXTURE (texture));
  g_set_object (&self->texture, texture);
  gtk_picture_set_paintable (self->picture, GDK_PAINTABLE (texture));
  show (self, DL_PREVIEW_CELL_DONE, NULL);
}

void
dl_preview_cell_set_error (DlPreviewCell *self, const char *message)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  g_clear_object (&self->texture);
  gtk_picture_set_paintable (self->picture, NULL);
  show (self, DL_PREVIEW_CELL_FAILED, message ? message : _ ("The image could not be made"));
}

void
dl_preview_cell_set_not_made (DlPreviewCell *self, const char *reason)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  if (self->state == DL_PREVIEW_CELL_WAITING || self->state == DL_PREVIEW_CELL_BUSY)
    show (self, DL_PREVIEW_CELL_NOT_MADE, reason ? reason : _ ("Not made"));
}

DlPreviewCellState
dl_preview_cell_get_state (DlPreviewCell *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_CELL (self), DL_PREVIEW_CELL_WAITING);
  return self->state;
}

GdkTexture *
dl_preview_cell_get_texture (DlPreviewCell *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_CELL (self), NULL);
  return self->texture;
}

const char *
dl_preview_cell_get_message (DlPreviewCell *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_CELL (self), NULL);
  return self->message;
}

guint
dl_preview_cell_get_row (DlPreviewCell *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_CELL (self), 0);
  return self->row;
}

guint
dl_preview_cell_get_column (DlPreviewCell *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_CELL (self), 0);
  return self->column;
}

static void
dl_preview_cell_dispose (GObject *object)
{
  DlPreviewCell *self = DL_PREVIEW_CELL (object);
  g_clear_object (&self->texture);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_PREVIEW_CELL);
  G_OBJECT_CLASS (dl_preview_cell_parent_class)->dispose (object);
}

static void
dl_preview_cell_finalize (GObject *object)
{
  DlPreviewCell *self = DL_PREVIEW_CELL (object);
  g_free (self->message);
  G_OBJECT_CLASS (dl_preview_cell_parent_class)->finalize (object);
}

static void
dl_preview_cell_class_init (DlPreviewCellClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_preview_cell_dispose;
  object_class->finalize = dl_preview_cell_finalize;
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-preview-cell.ui");
  gtk_widget_class_bind_template_child (widget_class, DlPreviewCell, picture);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewCell, spinner);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewCell, status_icon);
}

static void
dl_preview_cell_init (DlPreviewCell *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  show (self, DL_PREVIEW_CELL_WAITING, NULL);
}

GtkWidget *
dl_preview_cell_new (guint row, guint column)
{
  DlPreviewCell *self = g_object_new (DL_TYPE_PREVIEW_CELL, NULL);
  self->row = row;
  self->column = column;
  return GTK_WIDGET (self);
}
