/* Thumbnails of dataset images: decoded at their final size where the format
 * allows it (JPEG), on a few worker threads, and remade when the image's content
 * hash changes. */
#include "dl-config.h"

#include "dl-thumbnail.h"

#include <glib/gi18n.h>

#define READ_CHUNK (64 * 1024)

struct _DlThumbnail
{
  GObject parent_instance;
  GdkTexture *texture;
  char *hash;   /* the content hash the texture (or the decode under way) is of */
  guint serial; /* of the decode under way; a newer one makes older results stale */
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (DlThumbnail, dl_thumbnail, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_TEXTURE,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

/* ---- decoding ---- */

static void
size_prepared (GdkPixbufLoader *loader, int width, int height, gpointer data)
{
  int longest = MAX (width, height);
  if (longest <= DL_THUMBNAIL_SIZE)
    return;
  double scale = (double)DL_THUMBNAIL_SIZE / longest;
  gdk_pixbuf_loader_set_size (loader, MAX (1, (int)(width * scale + 0.5)), MAX (1, (int)(height * scale + 0.5)));
}

static GdkTexture *
texture_from_pixbuf (GdkPixbuf *pixbuf)
{
  /* GdkMemoryTexture is immutable and may be made on any thread */
  g_autoptr (GBytes) bytes = gdk_pixbuf_read_pixel_bytes (pixbuf);
  gboolean alpha = gdk_pixbuf_get_has_alpha (pixbuf);
  return gdk_memory_texture_new (gdk_pixbuf_get_width (pixbuf), gdk_pixbuf_get_height (pixbuf),
                                 alpha ? GDK_MEMORY_R8G8B8A8 : GDK_MEMORY_R8G8B8, bytes,
                                 (gsize)gdk_pixbuf_get_rowstride (pixbuf));
}

GdkTexture *
dl_thumbnail_decode (const char *path, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) in = g_file_read (file, cancellable, error);
  if (!in)
    return NULL;
  g_autoptr (GdkPixbufLoader) loader = gdk_pixbuf_loader_new ();
  g_signal_connect (loader, "size-prepared", G_CALLBACK (size_prepared), NULL);
  g_autofree guchar *buf = g_malloc (READ_CHUNK);
  for (;;)
    {
      gssize n = g_input_stream_read (G_INPUT_STREAM (in), buf, READ_CHUNK, cancellable, error);
      if (n < 0 || (n > 0 && !gdk_pixbuf_loader_write (loader, buf, (gsize)n, error)))
        {
          gdk_pixbuf_loader_close (loader, NULL);
          return NULL;
        }
      if (n == 0)
        break;
    }
  if (!gdk_pixbuf_loader_close (loader, error))
    return NULL;
  GdkPixbuf *pixbuf = gdk_pixbuf_loader_get_pixbuf (loader);
  if (!pixbuf)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _ ("No picture in the file"));
      return NULL;
    }
  g_autoptr (GdkPixbuf) oriented = gdk_pixbuf_apply_embedded_orientation (pixbuf);
  if (!oriented)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("Out of memory making the thumbnail"));
      return NULL;
    }
  return texture_from_pixbuf (oriented);
}

static void
run_decode (gpointer data, gpointer user_data)
{
  GTask *task = data;
  g_autoptr (GError) error = NULL;
  if (!g_task_return_error_if_cancelled (task))
    {
      GdkTexture *texture = dl_thumbnail_decode (g_task_get_task_data (task), g_task_get_cancellable (task), &error);
      if (texture)
        g_task_return_pointer (task, texture, g_object_unref);
      else
        g_task_return_error (task, g_steal_pointer (&error));
    }
  g_object_unref (task);
}

/* A few threads (a thumbnail of a PNG or WebP decodes it whole); the project decodes
 * on its own ones. */
static GThreadPool *
decode_pool (void)
{
  static GThreadPool *pool;
  if (g_once_init_enter (&pool))
    {
      int n = CLAMP ((int)g_get_num_processors () / 2, 1, 2);
      g_once_init_leave (&pool, g_thread_pool_new (run_decode, NULL, n, FALSE, NULL));
    }
  return pool;
}

/* ---- following the image ---- */

static void
set_texture (DlThumbnail *self, GdkTexture *texture)
{
  if (g_set_object (&self->texture, texture))
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_TEXTURE]);
}

static void
decode_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DlThumbnail *self = DL_THUMBNAIL (source);
  guint serial = GPOINTER_TO_UINT (user_data);
  g_autoptr (GError) error = NULL;
  g_autoptr (GdkTexture) texture = g_task_propagate_pointer (G_TASK (result), &error);
  if (serial != self->serial || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* the project has decoded the file, so this rarely fails (it changed since): no picture */
  if (!texture)
    g_debug ("No thumbnail: %s", error->message);
  set_texture (self, texture);
}

static void
image_state_changed (DlDatasetImage *image, GParamSpec *pspec, DlThumbnail *self)
{
  switch (dl_dataset_image_get_state (image))
    {
    case DL_IMAGE_STATE_LOADING:
      /* the old picture stays until the new one is known */
      return;
    case DL_IMAGE_STATE_UNREADABLE:
    case DL_IMAGE_STATE_MISSING:
      g_cancellable_cancel (self->cancellable);
      g_clear_pointer (&self->hash, g_free);
      self->serial++;
      set_texture (self, NULL);
      return;
    case DL_IMAGE_STATE_READY:
      break;
    }
  const char *hash = dl_dataset_image_get_content_hash (image);
  const char *path = dl_dataset_image_get_path (image);
  if (!path || (hash && g_strcmp0 (hash, self->hash) == 0))
    return;
  g_cancellable_cancel (self->cancellable);
  g_set_object (&self->cancellable, g_cancellable_new ());
  g_free (self->hash);
  self->hash = g_strdup (hash);
  guint serial = ++self->serial;
  GTask *task = g_task_new (self, self->cancellable, decode_done, GUINT_TO_POINTER (serial));
  g_task_set_source_tag (task, image_state_changed);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_thread_pool_push (decode_pool (), task, NULL);
}

DlThumbnail *
dl_thumbnail_for_image (DlDatasetImage *image)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (image), NULL);
  DlThumbnail *self = g_object_get_data (G_OBJECT (image), "dl-thumbnail");
  if (self)
    return self;
  self = g_object_new (DL_TYPE_THUMBNAIL, NULL);
  g_object_set_data_full (G_OBJECT (image), "dl-thumbnail", self, g_object_unref);
  /* the image owns the thumbnail: the handler goes with the image */
  g_signal_connect (image, "notify::state", G_CALLBACK (image_state_changed), self);
  image_state_changed (image, NULL, self);
  return self;
}

GdkTexture *
dl_thumbnail_get_texture (DlThumbnail *self)
{
  g_return_val_if_fail (DL_IS_THUMBNAIL (self), NULL);
  return self->texture;
}

/* ---- GObject ---- */

static void
dl_thumbnail_dispose (GObject *object)
{
  DlThumbnail *self = DL_THUMBNAIL (object);
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->texture);
  G_OBJECT_CLASS (dl_thumbnail_parent_class)->dispose (object);
}

static void
dl_thumbnail_finalize (GObject *object)
{
  DlThumbnail *self = DL_THUMBNAIL (object);
  g_clear_object (&self->cancellable);
  g_free (self->hash);
  G_OBJECT_CLASS (dl_thumbnail_parent_class)->finalize (object);
}

static void
dl_thumbnail_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DlThumbnail *self = DL_THUMBNAIL (object);
  switch (prop_id)
    {
    case PROP_TEXTURE:
      g_value_set_object (value, self->texture);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_thumbnail_class_init (DlThumbnailClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = dl_thumbnail_dispose;
  object_class->finalize = dl_thumbnail_finalize;
  object_class->get_property = dl_thumbnail_get_property;
  props[PROP_TEXTURE] = g_param_spec_object ("texture", NULL, NULL, GDK_TYPE_TEXTURE,
                                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
dl_thumbnail_init (DlThumbnail *self)
{
  self->cancellable = g_cancellable_new ();
}
