#include "dl-config.h"

#include "dl-preview-cell.h"

struct _DlPreviewCell {
  GtkButton parent_instance;
  GtkPicture *picture;
  GtkSpinner *spinner;
  GtkImage *error_icon;
  guint row, column;
  GdkTexture *texture;
};

G_DEFINE_FINAL_TYPE (DlPreviewCell, dl_preview_cell, GTK_TYPE_BUTTON)

static void
show (DlPreviewCell *self, gboolean busy, gboolean error, const char *tooltip)
{
  gtk_widget_set_visible (GTK_WIDGET (self->spinner), busy);
  gtk_spinner_set_spinning (self->spinner, busy);
  gtk_widget_set_visible (GTK_WIDGET (self->error_icon), error);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self), tooltip);
  gtk_widget_set_sensitive (GTK_WIDGET (self), self->texture != NULL);
}

void
dl_preview_cell_set_waiting (DlPreviewCell *self)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  if (!self->texture)
    show (self, FALSE, FALSE, "Waiting");
}

void
dl_preview_cell_set_busy (DlPreviewCell *self)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  show (self, TRUE, FALSE, "Being made…");
}

void
dl_preview_cell_set_texture (DlPreviewCell *self, GdkTexture *texture)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  g_set_object (&self->texture, texture);
  gtk_picture_set_paintable (self->picture, GDK_PAINTABLE (texture));
  show (self, FALSE, FALSE, "Click to enlarge");
}

void
dl_preview_cell_set_error (DlPreviewCell *self, const char *message)
{
  g_return_if_fail (DL_IS_PREVIEW_CELL (self));
  g_clear_object (&self->texture);
  gtk_picture_set_paintable (self->picture, NULL);
  show (self, FALSE, TRUE, message);
  /* keep the reason readable: insensitive widgets show no tooltip */
  gtk_widget_set_sensitive (GTK_WIDGET (self), TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self), "dl-failed");
}

GdkTexture *
dl_preview_cell_get_texture (DlPreviewCell *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_CELL (self), NULL);
  return self->texture;
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
dl_preview_cell_class_init (DlPreviewCellClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_preview_cell_dispose;
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-preview-cell.ui");
  gtk_widget_class_bind_template_child (widget_class, DlPreviewCell, picture);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewCell, spinner);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewCell, error_icon);
}

static void
dl_preview_cell_init (DlPreviewCell *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

GtkWidget *
dl_preview_cell_new (guint row, guint column)
{
  DlPreviewCell *self = g_object_new (DL_TYPE_PREVIEW_CELL, NULL);
  self->row = row;
  self->column = column;
  return GTK_WIDGET (self);
}
