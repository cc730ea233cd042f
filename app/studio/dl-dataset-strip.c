#include "dl-config.h"

#include "dl-dataset-strip.h"

#include <glib/gi18n.h>

#include "dl-dataset-image.h"
#include "dl-thumbnail.h"

struct _DlDatasetStrip
{
  GtkWidget parent_instance;
  GtkLabel *count_label;
  GtkListView *list;
  GListModel *images;
  GSignalGroup *images_signals; /* the images' */
  char *count_text;
};

G_DEFINE_FINAL_TYPE (DlDatasetStrip, dl_dataset_strip, GTK_TYPE_WIDGET)

/* ---- one thumbnail ---- */

static void
sync_item (GtkWidget *item)
{
  DlDatasetImage *image = g_object_get_data (G_OBJECT (item), "dl-image");
  GtkPicture *picture = g_object_get_data (G_OBJECT (item), "dl-picture");
  GtkImage *icon = g_object_get_data (G_OBJECT (item), "dl-icon");
  GtkSpinner *spinner = g_object_get_data (G_OBJECT (item), "dl-spinner");
  DlImageState state = image ? dl_dataset_image_get_state (image) : DL_IMAGE_STATE_LOADING;
  GdkTexture *thumb = image ? dl_thumbnail_get_texture (dl_thumbnail_for_image (image)) : NULL;
  gtk_picture_set_paintable (picture, state == DL_IMAGE_STATE_READY ? GDK_PAINTABLE (thumb) : NULL);
  gboolean loading = image && state == DL_IMAGE_STATE_LOADING;
  gtk_widget_set_visible (GTK_WIDGET (spinner), loading);
  gtk_spinner_set_spinning (spinner, loading);
  const char *icon_name = state == DL_IMAGE_STATE_MISSING      ? "image-missing-symbolic"
                          : state == DL_IMAGE_STATE_UNREADABLE ? "dialog-error-symbolic"
                                                               : NULL;
  gtk_image_set_from_icon_name (icon, icon_name);
  gtk_widget_set_visible (GTK_WIDGET (icon), icon_name != NULL);
  const char *warning = image ? dl_dataset_image_get_warning (image) : NULL;
  gtk_widget_set_visible (g_object_get_data (G_OBJECT (item), "dl-badge"), warning != NULL);

  if (!image)
    {
      gtk_widget_set_tooltip_text (item, NULL);
      return;
    }
  const char *caption = dl_dataset_image_get_caption (image);
  const char *name = dl_dataset_image_get_display_name (image);
  const char *problem = dl_dataset_image_get_error (image);
  GString *tip = g_string_new (NULL);
  if (!problem && caption && *caption)
    g_string_append_printf (tip, "%s\n", caption);
  g_string_append (tip, name);
  if (problem || warning)
    g_string_append_printf (tip, "\n%s", problem ? problem : warning);
  gtk_widget_set_tooltip_text (item, tip->str);
  g_string_free (tip, TRUE);
  /* named by its file; the caption describes it */
  gtk_accessible_update_property (GTK_ACCESSIBLE (item), GTK_ACCESSIBLE_PROPERTY_LABEL, name,
                                  GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, caption ? caption : "", -1);
}

static void
setup_item (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer data)
{
  gtk_list_item_set_activatable (list_item, FALSE);
  gtk_list_item_set_selectable (list_item, FALSE);
  GtkWidget *overlay = gtk_overlay_new ();
  /* a fixed square: the picture is an overlay, so its own size does not count */
  GtkWidget *frame = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_size_request (frame, DL_DATASET_STRIP_THUMB_SIZE, DL_DATASET_STRIP_THUMB_SIZE);
  gtk_widget_add_css_class (frame, "dl-thumbnail");
  gtk_overlay_set_child (GTK_OVERLAY (overlay), frame);
  GtkWidget *picture = gtk_picture_new ();
  gtk_picture_set_can_shrink (GTK_PICTURE (picture), TRUE);
  gtk_picture_set_content_fit (GTK_PICTURE (picture), GTK_CONTENT_FIT_COVER);
  gtk_widget_set_overflow (picture, GTK_OVERFLOW_HIDDEN);
  gtk_widget_add_css_class (picture, "dl-thumbnail-picture");
  gtk_overlay_add_overlay (GTK_OVERLAY (overlay), picture);
  GtkWidget *spinner = gtk_spinner_new ();
  gtk_widget_set_halign (spinner, GTK_ALIGN_CENTER);
  gtk_widget_set_valign (spinner, GTK_ALIGN_CENTER);
  gtk_overlay_add_overlay (GTK_OVERLAY (overlay), spinner);
  GtkWidget *icon = gtk_image_new ();
  gtk_image_set_pixel_size (GTK_IMAGE (icon), 32);
  gtk_widget_set_halign (icon, GTK_ALIGN_CENTER);
  gtk_widget_set_valign (icon, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (icon, "dim-label");
  gtk_overlay_add_overlay (GTK_OVERLAY (overlay), icon);
  /* too small or a duplicate: the Dataset page says which */
  GtkWidget *badge = gtk_image_new_from_icon_name ("dialog-warning-symbolic");
  gtk_widget_set_halign (badge, GTK_ALIGN_END);
  gtk_widget_set_valign (badge, GTK_ALIGN_START);
  gtk_widget_set_margin_top (badge, 4);
  gtk_widget_set_margin_end (badge, 4);
  gtk_widget_add_css_class (badge, "dl-badge");
  gtk_widget_add_css_class (badge, "warning");
  gtk_overlay_add_overlay (GTK_OVERLAY (overlay), badge);
  g_object_set_data (G_OBJECT (overlay), "dl-badge", badge);
  g_object_set_data (G_OBJECT (overlay), "dl-picture", picture);
  g_object_set_data (G_OBJECT (overlay), "dl-spinner", spinner);
  g_object_set_data (G_OBJECT (overlay), "dl-icon", icon);
  gtk_list_item_set_child (list_item, overlay);
  sync_item (overlay);
}

static void
bind_item (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer data)
{
  GtkWidget *item = gtk_list_item_get_child (list_item);
  DlDatasetImage *image = gtk_list_item_get_item (list_item);
  g_object_set_data_full (G_OBJECT (item), "dl-image", g_object_ref (image), g_object_unref);
  /* the thumbnail arrives from a worker thread; the caption changes as it is edited */
  g_signal_connect_object (image, "notify", G_CALLBACK (sync_item), item, G_CONNECT_SWAPPED);
  g_signal_connect_object (dl_thumbnail_for_image (image), "notify::texture", G_CALLBACK (sync_item), item,
                           G_CONNECT_SWAPPED);
  sync_item (item);
}

static void
unbind_item (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer data)
{
  GtkWidget *item = gtk_list_item_get_child (list_item);
  DlDatasetImage *image = g_object_get_data (G_OBJECT (item), "dl-image");
  if (image)
    {
      g_signal_handlers_disconnect_by_data (image, item);
      g_signal_handlers_disconnect_by_data (dl_thumbnail_for_image (image), item);
    }
  g_object_set_data (G_OBJECT (item), "dl-image", NULL);
  sync_item (item);
}

/* ---- the strip ---- */

static void
sync_count (DlDatasetStrip *self)
{
  guint n = self->images ? g_list_model_get_n_items (self->images) : 0;
  g_free (self->count_text);
  self->count_text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u image", "%u images", n), n);
  gtk_label_set_text (self->count_label, self->count_text);
  gtk_widget_set_visible (GTK_WIDGET (self), n > 0);
}

void
dl_dataset_strip_set_images (DlDatasetStrip *self, GListModel *images)
{
  g_return_if_fail (DL_IS_DATASET_STRIP (self));
  g_return_if_fail (images == NULL || G_IS_LIST_MODEL (images));
  if (self->images == images)
    return;
  g_set_object (&self->images, images);
  g_signal_group_set_target (self->images_signals, images);
  if (images)
    {
      g_autoptr (GtkNoSelection) model = gtk_no_selection_new (g_object_ref (images));
      gtk_list_view_set_model (self->list, GTK_SELECTION_MODEL (model));
    }
  else
    gtk_list_view_set_model (self->list, NULL);
  sync_count (self);
}

const char *
dl_dataset_strip_get_count_text (DlDatasetStrip *self)
{
  g_return_val_if_fail (DL_IS_DATASET_STRIP (self), NULL);
  return self->count_text;
}

GtkWidget *
dl_dataset_strip_new (void)
{
  return g_object_new (DL_TYPE_DATASET_STRIP, NULL);
}

static void
dl_dataset_strip_dispose (GObject *object)
{
  DlDatasetStrip *self = DL_DATASET_STRIP (object);
  if (self->list)
    dl_dataset_strip_set_images (self, NULL);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))))
    gtk_widget_unparent (child);
  self->list = NULL;
  self->count_label = NULL;
  G_OBJECT_CLASS (dl_dataset_strip_parent_class)->dispose (object);
}

static void
dl_dataset_strip_finalize (GObject *object)
{
  DlDatasetStrip *self = DL_DATASET_STRIP (object);
  g_clear_object (&self->images_signals);
  g_free (self->count_text);
  G_OBJECT_CLASS (dl_dataset_strip_parent_class)->finalize (object);
}

static void
dl_dataset_strip_class_init (DlDatasetStripClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_dataset_strip_dispose;
  object_class->finalize = dl_dataset_strip_finalize;
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "dl-dataset-strip");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_GROUP);
}

static void
dl_dataset_strip_init (DlDatasetStrip *self)
{
  self->images_signals = g_signal_group_new (G_TYPE_LIST_MODEL);
  g_signal_group_connect_swapped (self->images_signals, "items-changed", G_CALLBACK (sync_count), self);
  GtkBoxLayout *layout = GTK_BOX_LAYOUT (gtk_widget_get_layout_manager (GTK_WIDGET (self)));
  gtk_orientable_set_orientation (GTK_ORIENTABLE (layout), GTK_ORIENTATION_VERTICAL);

  GtkWidget *header = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_margin_start (header, 18);
  gtk_widget_set_margin_end (header, 18);
  gtk_widget_set_margin_top (header, 6);
  GtkWidget *title = gtk_label_new (_ ("Training Images"));
  gtk_widget_add_css_class (title, "heading");
  gtk_box_append (GTK_BOX (header), title);
  GtkWidget *count = gtk_label_new (NULL);
  gtk_widget_add_css_class (count, "dim-label");
  gtk_widget_add_css_class (count, "numeric");
  gtk_widget_set_hexpand (count, TRUE);
  gtk_label_set_xalign (GTK_LABEL (count), 0);
  gtk_box_append (GTK_BOX (header), count);
  self->count_label = GTK_LABEL (count);
  GtkWidget *edit = gtk_button_new_with_mnemonic (_ ("_Edit Dataset"));
  gtk_widget_add_css_class (edit, "flat");
  gtk_widget_set_tooltip_text (edit, _ ("Go to the Dataset page"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (edit), "win.show-page");
  gtk_actionable_set_action_target (GTK_ACTIONABLE (edit), "s", "dataset");
  gtk_box_append (GTK_BOX (header), edit);
  gtk_widget_set_parent (header, GTK_WIDGET (self));

  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_item), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_item), NULL);
  g_signal_connect (factory, "unbind", G_CALLBACK (unbind_item), NULL);
  GtkWidget *list = gtk_list_view_new (NULL, factory);
  gtk_orientable_set_orientation (GTK_ORIENTABLE (list), GTK_ORIENTATION_HORIZONTAL);
  gtk_accessible_update_property (GTK_ACCESSIBLE (list), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Training Images"), -1);
  self->list = GTK_LIST_VIEW (list);
  GtkWidget *scroller = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (scroller), GTK_POLICY_AUTOMATIC, GTK_POLICY_NEVER);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scroller), list);
  gtk_widget_set_margin_start (scroller, 12);
  gtk_widget_set_margin_end (scroller, 12);
  gtk_widget_set_margin_bottom (scroller, 6);
  gtk_widget_set_parent (scroller, GTK_WIDGET (self));

  gtk_widget_set_parent (gtk_separator_new (GTK_ORIENTATION_HORIZONTAL), GTK_WIDGET (self));
  sync_count (self);
}
