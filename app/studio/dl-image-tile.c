#include "dl-config.h"

#include "dl-image-tile.h"

#include <glib/gi18n.h>
#include <string.h>

#include "dl-thumbnail.h"

struct _DlImageTile
{
  GtkWidget parent_instance;
  GtkPicture *picture;
  GtkSpinner *spinner;
  GtkImage *status_icon;
  GtkImage *warning_icon;
  GtkMenuButton *menu_button;
  GtkEntry *caption_entry;
  GtkLabel *meta_label;
  GtkLabel *problem_label;

  DlDatasetImage *image;
  gboolean syncing; /* the entry is being set from the image */
};

G_DEFINE_FINAL_TYPE (DlImageTile, dl_image_tile, GTK_TYPE_WIDGET)

enum
{
  SIGNAL_REMOVE_REQUESTED,
  SIGNAL_MOVE_REQUESTED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void
sync_caption (DlImageTile *self)
{
  const char *caption = self->image ? dl_dataset_image_get_caption (self->image) : "";
  if (g_strcmp0 (gtk_editable_get_text (GTK_EDITABLE (self->caption_entry)), caption) == 0)
    return;
  self->syncing = TRUE;
  gtk_editable_set_text (GTK_EDITABLE (self->caption_entry), caption);
  self->syncing = FALSE;
}

static const char *
format_label (const char *path)
{
  const char *dot = path ? strrchr (path, '.') : NULL;
  if (!dot)
    return "";
  if (g_ascii_strcasecmp (dot, ".png") == 0)
    return "PNG";
  if (g_ascii_strcasecmp (dot, ".jpg") == 0 || g_ascii_strcasecmp (dot, ".jpeg") == 0)
    return "JPEG";
  if (g_ascii_strcasecmp (dot, ".webp") == 0)
    return "WebP";
  return "";
}

static void
sync_state (DlImageTile *self)
{
  DlDatasetImage *image = self->image;
  DlImageState state = image ? dl_dataset_image_get_state (image) : DL_IMAGE_STATE_LOADING;
  gboolean loading = image && state == DL_IMAGE_STATE_LOADING;
  gtk_widget_set_visible (GTK_WIDGET (self->spinner), loading);
  gtk_spinner_set_spinning (self->spinner, loading);

  GdkTexture *thumb = image ? dl_thumbnail_get_texture (dl_thumbnail_for_image (image)) : NULL;
  gtk_picture_set_paintable (self->picture, GDK_PAINTABLE (thumb));

  const char *name = image ? dl_dataset_image_get_display_name (image) : "";
  g_autofree char *meta = NULL;
  const char *problem = NULL;
  const char *icon = NULL;
  gboolean is_error = FALSE;
  switch (state)
    {
    case DL_IMAGE_STATE_LOADING:
      meta = g_strdup (name);
      break;
    case DL_IMAGE_STATE_READY:
      meta = g_strdup_printf ("%d × %d · %s", dl_dataset_image_get_width (image), dl_dataset_image_get_height (image),
                              format_label (dl_dataset_image_get_path (image)));
      problem = dl_dataset_image_get_warning (image);
      break;
    case DL_IMAGE_STATE_UNREADABLE:
      meta = g_strdup (name);
      problem = dl_dataset_image_get_error (image);
      icon = "image-missing-symbolic";
      is_error = TRUE;
      break;
    case DL_IMAGE_STATE_MISSING:
      meta = g_strdup (name);
      problem = _ ("Missing: the file was moved or deleted");
      icon = "dialog-question-symbolic";
      is_error = TRUE;
      break;
    }
  gtk_label_set_text (self->meta_label, meta ? meta : "");
  g_autofree char *tooltip = image ? g_strdup (dl_dataset_image_get_path (image)) : NULL;
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->meta_label), tooltip);
  gtk_label_set_text (self->problem_label, problem ? problem : "");
  gtk_widget_set_visible (GTK_WIDGET (self->problem_label), problem != NULL);
  if (is_error)
    {
      gtk_widget_remove_css_class (GTK_WIDGET (self->problem_label), "warning");
      gtk_widget_add_css_class (GTK_WIDGET (self->problem_label), "error");
    }
  else
    {
      gtk_widget_remove_css_class (GTK_WIDGET (self->problem_label), "error");
      gtk_widget_add_css_class (GTK_WIDGET (self->problem_label), "warning");
    }
  gtk_image_set_from_icon_name (self->status_icon, icon);
  gtk_widget_set_visible (GTK_WIDGET (self->status_icon), icon != NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->warning_icon), !is_error && problem != NULL);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->warning_icon), problem);

  g_autofree char *a11y = g_strdup_printf ("%s%s%s", name, problem ? ": " : "", problem ? problem : "");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y, -1);
}

static void
entry_changed (DlImageTile *self)
{
  if (self->syncing || !self->image)
    return;
  dl_dataset_image_set_caption (self->image, gtk_editable_get_text (GTK_EDITABLE (self->caption_entry)));
}

void
dl_image_tile_set_image (DlImageTile *self, DlDatasetImage *image)
{
  g_return_if_fail (DL_IS_IMAGE_TILE (self));
  g_return_if_fail (image == NULL || DL_IS_DATASET_IMAGE (image));
  if (self->image == image)
    return;
  if (self->image)
    {
      g_signal_handlers_disconnect_by_data (self->image, self);
      g_signal_handlers_disconnect_by_data (dl_thumbnail_for_image (self->image), self);
    }
  g_set_object (&self->image, image);
  if (image)
    {
      g_signal_connect_swapped (image, "notify::caption", G_CALLBACK (sync_caption), self);
      g_signal_connect_swapped (image, "notify::state", G_CALLBACK (sync_state), self);
      g_signal_connect_swapped (dl_thumbnail_for_image (image), "notify::texture", G_CALLBACK (sync_state), self);
      g_signal_connect_swapped (image, "notify::warning", G_CALLBACK (sync_state), self);
      g_signal_connect_swapped (image, "notify::error", G_CALLBACK (sync_state), self);
    }
  sync_caption (self);
  sync_state (self);
}

DlDatasetImage *
dl_image_tile_get_image (DlImageTile *self)
{
  g_return_val_if_fail (DL_IS_IMAGE_TILE (self), NULL);
  return self->image;
}

GtkEditable *
dl_image_tile_get_caption_editable (DlImageTile *self)
{
  g_return_val_if_fail (DL_IS_IMAGE_TILE (self), NULL);
  return GTK_EDITABLE (self->caption_entry);
}

const char *
dl_image_tile_get_meta_text (DlImageTile *self)
{
  g_return_val_if_fail (DL_IS_IMAGE_TILE (self), NULL);
  return gtk_label_get_text (self->meta_label);
}

const char *
dl_image_tile_get_problem_text (DlImageTile *self)
{
  g_return_val_if_fail (DL_IS_IMAGE_TILE (self), NULL);
  return gtk_label_get_text (self->problem_label);
}

static void
tile_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  DlImageTile *self = DL_IMAGE_TILE (widget);
  if (g_str_equal (action_name, "tile.remove"))
    g_signal_emit (self, signals[SIGNAL_REMOVE_REQUESTED], 0);
  else if (g_str_equal (action_name, "tile.move-earlier"))
    g_signal_emit (self, signals[SIGNAL_MOVE_REQUESTED], 0, -1);
  else if (g_str_equal (action_name, "tile.move-later"))
    g_signal_emit (self, signals[SIGNAL_MOVE_REQUESTED], 0, 1);
}

static void
dl_image_tile_dispose (GObject *object)
{
  DlImageTile *self = DL_IMAGE_TILE (object);
  if (self->image)
    {
      g_signal_handlers_disconnect_by_data (self->image, self);
      g_signal_handlers_disconnect_by_data (dl_thumbnail_for_image (self->image), self);
    }
  g_clear_object (&self->image);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_IMAGE_TILE);
  /* the template's top box is ours to unparent (it is not a bound child) */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))))
    gtk_widget_unparent (child);
  G_OBJECT_CLASS (dl_image_tile_parent_class)->dispose (object);
}

static void
dl_image_tile_class_init (DlImageTileClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_image_tile_dispose;

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-image-tile.ui");
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, picture);
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, spinner);
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, status_icon);
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, warning_icon);
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, menu_button);
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, caption_entry);
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, meta_label);
  gtk_widget_class_bind_template_child (widget_class, DlImageTile, problem_label);
  gtk_widget_class_bind_template_callback (widget_class, entry_changed);

  gtk_widget_class_install_action (widget_class, "tile.remove", NULL, tile_action);
  gtk_widget_class_install_action (widget_class, "tile.move-earlier", NULL, tile_action);
  gtk_widget_class_install_action (widget_class, "tile.move-later", NULL, tile_action);

  gtk_widget_class_set_css_name (widget_class, "dl-image-tile");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_GROUP);

  signals[SIGNAL_REMOVE_REQUESTED] = g_signal_new ("remove-requested", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                                   NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_MOVE_REQUESTED] = g_signal_new ("move-requested", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                                 NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
}

static void
dl_image_tile_init (DlImageTile *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  sync_state (self);
}

GtkWidget *
dl_image_tile_new (void)
{
  return g_object_new (DL_TYPE_IMAGE_TILE, NULL);
}
