#include "dl-config.h"

#include "dl-image-viewer.h"

#include <glib/gi18n.h>

#include "dl-file-dialog.h"
#include "dl-toast.h"
#include "image/dl-png.h"
#include "io/dl-file-util.h"

#include <string.h>

struct _DlImageViewer
{
  AdwWindow parent_instance;
  AdwToastOverlay *toast_overlay;
  AdwWindowTitle *window_title;
  GtkPicture *picture;
  GtkLabel *parameters_label;
  GdkTexture *texture;
  DlPreviewRequest *request; /* NULL for a PNG file shown as it is */
  char *source_path;         /* that file */
};

G_DEFINE_FINAL_TYPE (DlImageViewer, dl_image_viewer, ADW_TYPE_WINDOW)

/* 8-bit RGBA, straight alpha, rows of width * 4 bytes.  Main thread: a texture
 * may live on the GPU. */
static GBytes *
texture_to_rgba (GdkTexture *texture)
{
  int w = gdk_texture_get_width (texture), h = gdk_texture_get_height (texture);
  gsize stride = (gsize)w * 4;
  guchar *rgba = g_malloc (stride * (gsize)h);
#if GTK_CHECK_VERSION(4, 10, 0)
  GdkTextureDownloader *downloader = gdk_texture_downloader_new (texture);
  gdk_texture_downloader_set_format (downloader, GDK_MEMORY_R8G8B8A8);
  gdk_texture_downloader_download_into (downloader, rgba, stride);
  gdk_texture_downloader_free (downloader);
#else
  /* GTK 4.8 downloads cairo's premultiplied native-endian ARGB32 only */
  gdk_texture_download (texture, rgba, stride);
  for (gsize i = 0; i < (gsize)w * (gsize)h; i++)
    {
      guint32 px;
      memcpy (&px, rgba + i * 4, 4);
      guint a = px >> 24, r = (px >> 16) & 0xff, g = (px >> 8) & 0xff, b = px & 0xff;
      if (a && a != 255)
        {
          r = MIN (255u, (r * 255 + a / 2) / a);
          g = MIN (255u, (g * 255 + a / 2) / a);
          b = MIN (255u, (b * 255 + a / 2) / a);
        }
      rgba[i * 4 + 0] = (guchar)r;
      rgba[i * 4 + 1] = (guchar)g;
      rgba[i * 4 + 2] = (guchar)b;
      rgba[i * 4 + 3] = (guchar)a;
    }
#endif
  return g_bytes_new_take (rgba, stride * (gsize)h);
}

/* Any thread. */
static gboolean
write_png (GBytes *rgba, int width, int height, const DlPreviewRequest *request, const char *path, GError **error)
{
  g_autoptr (GHashTable) text = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert (text, (gpointer) "parameters", dl_preview_request_to_parameters (request));
  g_hash_table_insert (text, (gpointer) "Software", g_strdup ("Dreamloom " DL_VERSION));
  return dl_png_write (path, g_bytes_get_data (rgba, NULL), width, height, 4, text, error);
}

gboolean
dl_image_viewer_save_png (GdkTexture *texture, const DlPreviewRequest *request, const char *path, GError **error)
{
  g_return_val_if_fail (GDK_IS_TEXTURE (texture), FALSE);
  g_return_val_if_fail (request != NULL, FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_autoptr (GBytes) rgba = texture_to_rgba (texture);
  return write_png (rgba, gdk_texture_get_width (texture), gdk_texture_get_height (texture), request, path, error);
}

typedef struct
{
  GBytes *rgba;
  int width, height;
  DlPreviewRequest *request;
  char *path;
} SaveJob;

static void
save_job_free (SaveJob *job)
{
  g_bytes_unref (job->rgba);
  dl_preview_request_free (job->request);
  g_free (job->path);
  g_free (job);
}

static void
save_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  SaveJob *job = data;
  GError *error = NULL;
  if (write_png (job->rgba, job->width, job->height, job->request, job->path, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GWeakRef *ref = user_data;
  g_autoptr (DlImageViewer) self = g_weak_ref_get (ref);
  g_weak_ref_clear (ref);
  g_free (ref);
  g_autoptr (GError) error = NULL;
  SaveJob *job = g_task_get_task_data (G_TASK (result));
  g_autofree char *name = g_path_get_basename (job->path);
  gboolean ok = g_task_propagate_boolean (G_TASK (result), &error);
  if (!self)
    return;
  g_autofree char *title = ok ? g_strdup_printf (_ ("Saved “%s”"), name)
                              : g_strdup_printf (_ ("Could not save “%s”: %s"), name, error->message);
  adw_toast_overlay_add_toast (self->toast_overlay, dl_toast_new (title));
}

static void
save_picked (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  DlImageViewer *self = DL_IMAGE_VIEWER (owner);
  if (!files || files->len == 0)
    return;
  g_autofree char *path = g_file_get_path (files->pdata[0]);
  if (!path)
    {
      adw_toast_overlay_add_toast (self->toast_overlay, dl_toast_new (_ ("Pick a place on this computer")));
      return;
    }
  if (self->source_path)
    {
      /* a file shown as it is: copied with its metadata, byte for byte */
      g_autoptr (GError) error = NULL;
      g_autofree char *name = g_path_get_basename (path);
      g_autofree char *title = dl_file_copy_atomically (self->source_path, path, &error)
                                 ? g_strdup_printf (_ ("Saved “%s”"), name)
                                 : g_strdup_printf (_ ("Could not save “%s”: %s"), name, error->message);
      adw_toast_overlay_add_toast (self->toast_overlay, dl_toast_new (title));
      return;
    }
  SaveJob *job = g_new0 (SaveJob, 1);
  job->rgba = texture_to_rgba (self->texture);
  job->width = gdk_texture_get_width (self->texture);
  job->height = gdk_texture_get_height (self->texture);
  job->request = dl_preview_request_copy (self->request);
  job->path = g_steal_pointer (&path);
  GWeakRef *ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, self);
  g_autoptr (GTask) task = g_task_new (NULL, NULL, saved, ref);
  g_task_set_task_data (task, job, (GDestroyNotify)save_job_free);
  g_task_run_in_thread (task, save_thread);
}

static void
viewer_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  DlImageViewer *self = DL_IMAGE_VIEWER (widget);
  g_autoptr (GListStore) filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  g_autoptr (GtkFileFilter) png = gtk_file_filter_new ();
  gtk_file_filter_set_name (png, _ ("PNG Images"));
  gtk_file_filter_add_mime_type (png, "image/png");
  g_list_store_append (filters, png);
  g_autofree char *name = self->source_path
                            ? g_path_get_basename (self->source_path)
                            : g_strdup_printf ("preview-%" G_GUINT64_FORMAT ".png", self->request->seed);
  dl_file_dialog_run (widget, DL_FILE_DIALOG_SAVE, _ ("Save Preview"), _ ("_Save"), G_LIST_MODEL (filters), NULL, name,
                      save_picked, NULL);
}

static void
dl_image_viewer_dispose (GObject *object)
{
  DlImageViewer *self = DL_IMAGE_VIEWER (object);
  g_clear_object (&self->texture);
  g_clear_pointer (&self->request, dl_preview_request_free);
  g_clear_pointer (&self->source_path, g_free);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_IMAGE_VIEWER);
  G_OBJECT_CLASS (dl_image_viewer_parent_class)->dispose (object);
}

static void
dl_image_viewer_class_init (DlImageViewerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_image_viewer_dispose;
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-image-viewer.ui");
  gtk_widget_class_bind_template_child (widget_class, DlImageViewer, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, DlImageViewer, window_title);
  gtk_widget_class_bind_template_child (widget_class, DlImageViewer, picture);
  gtk_widget_class_bind_template_child (widget_class, DlImageViewer, parameters_label);
  gtk_widget_class_install_action (widget_class, "viewer.save", NULL, viewer_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_s, GDK_CONTROL_MASK, "viewer.save", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
dl_image_viewer_init (DlImageViewer *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

DlImageViewer *
dl_image_viewer_new (GtkWindow *parent, GdkTexture *texture, const DlPreviewRequest *request, const char *column_title)
{
  g_return_val_if_fail (GDK_IS_TEXTURE (texture), NULL);
  g_return_val_if_fail (request != NULL, NULL);
  DlImageViewer *self = g_object_new (DL_TYPE_IMAGE_VIEWER, "transient-for", parent, "destroy-with-parent", TRUE, NULL);
  self->texture = g_object_ref (texture);
  self->request = dl_preview_request_copy (request);
  gtk_picture_set_paintable (self->picture, GDK_PAINTABLE (texture));
  /* Translators: the enlarged preview, for screen readers: its prompt, then its column */
  g_autofree char *a11y = column_title && *column_title ? g_strdup_printf (_ ("%s, %s"), request->prompt, column_title)
                                                        : g_strdup (request->prompt);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->picture), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y, -1);
  adw_window_title_set_title (self->window_title, request->prompt);
  adw_window_title_set_subtitle (self->window_title, column_title);
  gtk_window_set_title (GTK_WINDOW (self), request->prompt);
  g_autofree char *params = dl_preview_request_to_parameters (request);
  gtk_label_set_text (self->parameters_label, params);
  return self;
}

DlImageViewer *
dl_image_viewer_new_for_file (GtkWindow *parent, const char *path, const char *title, const char *subtitle,
                              GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  /* one decode: the pixels, and the generation parameters the file carries
   * (A1111's "parameters" chunk) */
  g_autoptr (GHashTable) text = NULL;
  int w = 0, h = 0;
  uint8_t *pixels = dl_png_read_rgba (path, &w, &h, &text, error);
  if (!pixels)
    return NULL;
  g_autoptr (GBytes) bytes = g_bytes_new_take (pixels, (gsize)w * h * 4);
  g_autoptr (GdkTexture) texture = gdk_memory_texture_new (w, h, GDK_MEMORY_R8G8B8A8, bytes, (gsize)w * 4);
  const char *params = text ? g_hash_table_lookup (text, "parameters") : NULL;
  DlImageViewer *self = g_object_new (DL_TYPE_IMAGE_VIEWER, "transient-for", parent, "destroy-with-parent", TRUE, NULL);
  self->texture = g_steal_pointer (&texture);
  self->source_path = g_strdup (path);
  gtk_picture_set_paintable (self->picture, GDK_PAINTABLE (self->texture));
  g_autofree char *a11y = subtitle && *subtitle ? g_strdup_printf (_ ("%s, %s"), title, subtitle) : g_strdup (title);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->picture), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y, -1);
  adw_window_title_set_title (self->window_title, title);
  adw_window_title_set_subtitle (self->window_title, subtitle);
  gtk_window_set_title (GTK_WINDOW (self), title);
  gtk_label_set_text (self->parameters_label, params ? params : "");
  return self;
}

const char *
dl_image_viewer_get_source_path (DlImageViewer *self)
{
  g_return_val_if_fail (DL_IS_IMAGE_VIEWER (self), NULL);
  return self->source_path;
}

const DlPreviewRequest *
dl_image_viewer_get_request (DlImageViewer *self)
{
  g_return_val_if_fail (DL_IS_IMAGE_VIEWER (self), NULL);
  return self->request;
}

GdkTexture *
dl_image_viewer_get_texture (DlImageViewer *self)
{
  g_return_val_if_fail (DL_IS_IMAGE_VIEWER (self), NULL);
  return self->texture;
}
