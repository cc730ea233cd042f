#include "dl-config.h"

#include "app-test-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

void
app_test_init (int *argc, char ***argv)
{
  /* whatever the environment says: a test never writes the user's settings */
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  gtk_test_init (argc, argv, NULL);
  adw_init ();
}

void
app_test_iterate (void)
{
  /* block at most a moment: worker threads report through idles */
  if (!g_main_context_iteration (NULL, FALSE))
    g_usleep (2000);
}

gboolean
app_test_wait (gboolean (*cond) (gpointer data), gpointer data, double seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)(seconds * G_USEC_PER_SEC);
  while (!cond (data))
    {
      if (g_get_monotonic_time () >= deadline)
        return FALSE;
      app_test_iterate ();
    }
  return TRUE;
}

void
app_test_run_for (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64)ms * 1000;
  while (g_get_monotonic_time () < until)
    app_test_iterate ();
}

char *
app_test_make_dir (const char *name)
{
  const char *base = g_getenv ("DL_TEST_SCRATCH_DIR");
  if (!base || !*base)
    base = g_get_tmp_dir ();
  if (g_mkdir_with_parents (base, 0755) != 0)
    g_error ("cannot make %s: %s", base, g_strerror (errno));
  char *tmpl = g_strdup_printf ("%s/%s-XXXXXX", base, name);
  if (!g_mkdtemp (tmpl))
    g_error ("cannot make a folder in %s: %s", base, g_strerror (errno));
  return tmpl;
}

void
app_test_rmtree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  if (dir)
    {
      const char *name;
      while ((name = g_dir_read_name (dir)))
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
            app_test_rmtree (child);
          else
            g_unlink (child);
        }
    }
  g_rmdir (path);
}

static GdkPixbuf *
make_pixbuf (int width, int height, guint seed)
{
  GdkPixbuf *pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, width, height);
  guchar *pixels = gdk_pixbuf_get_pixels (pixbuf);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);
  /* a gradient with a seed-dependent tint: never one flat colour */
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        guchar *p = pixels + y * stride + x * 3;
        p[0] = (guchar)((x * 255 / MAX (1, width - 1) + seed * 53) & 0xff);
        p[1] = (guchar)((y * 255 / MAX (1, height - 1) + seed * 97) & 0xff);
        p[2] = (guchar)((seed * 31 + (x ^ y)) & 0xff);
      }
  return pixbuf;
}

void
app_test_write_png (const char *path, int width, int height, guint seed)
{
  g_autoptr (GdkPixbuf) pixbuf = make_pixbuf (width, height, seed);
  g_autoptr (GError) error = NULL;
  if (!gdk_pixbuf_save (pixbuf, path, "png", &error, NULL))
    g_error ("cannot write %s: %s", path, error->message);
}

void
app_test_write_jpeg (const char *path, int width, int height, guint seed, int exif_orientation)
{
  g_autoptr (GdkPixbuf) pixbuf = make_pixbuf (width, height, seed);
  g_autoptr (GError) error = NULL;
  g_autofree char *jpeg = NULL;
  gsize len = 0;
  if (!gdk_pixbuf_save_to_buffer (pixbuf, &jpeg, &len, "jpeg", &error, "quality", "90", NULL))
    g_error ("cannot encode a JPEG: %s", error->message);
  g_assert_true (len > 2 && (guchar)jpeg[0] == 0xFF && (guchar)jpeg[1] == 0xD8);
  GByteArray *out = g_byte_array_new ();
  g_byte_array_append (out, (const guint8 *)jpeg, 2); /* SOI */
  if (exif_orientation > 0)
    {
      /* APP1 "Exif": a little-endian TIFF header and one IFD with one entry,
       * Orientation (0x0112, SHORT) */
      const guint8 app1[] = {
        0xFF,
        0xE1,
        0x00,
        34, /* marker, length (includes itself) */
        'E',
        'x',
        'i',
        'f',
        0,
        0, /* */
        'I',
        'I',
        0x2A,
        0x00,
        8,
        0,
        0,
        0, /* TIFF header, IFD0 at 8 */
        1,
        0, /* one entry */
        0x12,
        0x01,
        3,
        0,
        1,
        0,
        0,
        0, /* Orientation, SHORT, count 1 */
        (guint8)exif_orientation,
        0,
        0,
        0, /* value */
        0,
        0,
        0,
        0, /* no next IFD */
      };
      G_STATIC_ASSERT (sizeof app1 == 36);
      g_byte_array_append (out, app1, sizeof app1);
    }
  g_byte_array_append (out, (const guint8 *)jpeg + 2, (guint)(len - 2));
  if (!g_file_set_contents (path, (const char *)out->data, out->len, &error))
    g_error ("cannot write %s: %s", path, error->message);
  g_byte_array_unref (out);
}

gboolean
app_test_write_webp (const char *path, int width, int height, guint seed)
{
  gboolean writable = FALSE;
  GSList *formats = gdk_pixbuf_get_formats ();
  for (GSList *l = formats; l; l = l->next)
    {
      g_autofree char *name = gdk_pixbuf_format_get_name (l->data);
      writable |= g_strcmp0 (name, "webp") == 0 && gdk_pixbuf_format_is_writable (l->data);
    }
  g_slist_free (formats);
  if (!writable)
    return FALSE;
  g_autoptr (GdkPixbuf) opaque = make_pixbuf (width, height, seed);
  g_autoptr (GdkPixbuf) pixbuf = gdk_pixbuf_add_alpha (opaque, FALSE, 0, 0, 0);
  guchar *pixels = gdk_pixbuf_get_pixels (pixbuf);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);
  for (int y = 0; y < height; y++)
    for (int x = width / 2; x < width; x++)
      pixels[y * stride + x * 4 + 3] = 64;
  g_autoptr (GError) error = NULL;
  if (!gdk_pixbuf_save (pixbuf, path, "webp", &error, "quality", "95", NULL))
    g_error ("cannot write %s: %s", path, error->message);
  return TRUE;
}

void
app_test_write_file (const char *path, const char *contents)
{
  g_autoptr (GError) error = NULL;
  if (!g_file_set_contents (path, contents, -1, &error))
    g_error ("cannot write %s: %s", path, error->message);
}

gboolean
app_test_drop_files (GtkDropTarget *target, const char *first_path, ...)
{
  GSList *files = NULL;
  va_list ap;
  va_start (ap, first_path);
  for (const char *p = first_path; p; p = va_arg (ap, const char *))
    files = g_slist_prepend (files, g_file_new_for_path (p));
  va_end (ap);
  files = g_slist_reverse (files);
  GdkFileList *list = gdk_file_list_new_from_list (files);
  g_slist_free_full (files, g_object_unref);

  g_auto (GValue) value = G_VALUE_INIT;
  g_value_init (&value, GDK_TYPE_FILE_LIST);
  g_value_take_boxed (&value, list);
  gboolean accepted = FALSE;
  g_signal_emit_by_name (target, "drop", &value, 10.0, 10.0, &accepted);
  return accepted;
}

guchar *
app_test_texture_rgba (GdkTexture *texture)
{
  int w = gdk_texture_get_width (texture), h = gdk_texture_get_height (texture);
  gsize stride = (gsize)w * 4;
  guchar *argb = g_malloc (stride * (gsize)h);
  /* GTK 4.8 downloads premultiplied native-endian ARGB32; the textures compared
   * here are opaque, so no division is needed */
  gdk_texture_download (texture, argb, stride);
  guchar *rgba = g_malloc (stride * (gsize)h);
  for (gsize i = 0; i < (gsize)w * (gsize)h; i++)
    {
      guint32 px;
      memcpy (&px, argb + i * 4, 4);
      rgba[i * 4 + 0] = (px >> 16) & 0xff;
      rgba[i * 4 + 1] = (px >> 8) & 0xff;
      rgba[i * 4 + 2] = px & 0xff;
      rgba[i * 4 + 3] = px >> 24;
    }
  g_free (argb);
  return rgba;
}

gboolean
app_test_texture_has_content (GdkTexture *texture)
{
  int w = gdk_texture_get_width (texture), h = gdk_texture_get_height (texture);
  g_autofree guchar *rgba = app_test_texture_rgba (texture);
  for (gsize i = 1; i < (gsize)w * (gsize)h; i++)
    if (memcmp (rgba + i * 4, rgba, 4) != 0)
      return TRUE;
  return FALSE;
}

double
app_test_texture_difference (GdkTexture *a, GdkTexture *b)
{
  int w = gdk_texture_get_width (a), h = gdk_texture_get_height (a);
  g_assert_cmpint (w, ==, gdk_texture_get_width (b));
  g_assert_cmpint (h, ==, gdk_texture_get_height (b));
  g_autofree guchar *pa = app_test_texture_rgba (a);
  g_autofree guchar *pb = app_test_texture_rgba (b);
  double sum = 0;
  for (gsize i = 0; i < (gsize)w * (gsize)h; i++)
    for (int c = 0; c < 3; c++)
      sum += ABS ((int)pa[i * 4 + c] - (int)pb[i * 4 + c]);
  return sum / ((double)w * h * 3);
}

void
app_test_save_screenshot (GtkWidget *widget, const char *path)
{
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  g_assert_cmpint (w, >, 0);
  g_assert_cmpint (h, >, 0);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  GtkSnapshot *snapshot = gtk_snapshot_new ();
  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
  g_autoptr (GskRenderNode) node = gtk_snapshot_free_to_node (snapshot);
  g_assert_nonnull (node);
  /* the window's own renderer: the one that draws it on screen */
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (widget));
  g_assert_nonnull (renderer);
  g_autoptr (GdkTexture) texture = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, w, h));
  g_autofree char *dir = g_path_get_dirname (path);
  g_mkdir_with_parents (dir, 0755);
  if (!gdk_texture_save_to_png (texture, path))
    g_error ("cannot write the screenshot %s", path);
}

GtkWidget *
app_test_find_widget (GtkWidget *root, GType type, AppTestMatch match, gconstpointer data)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE (root, type) && (!match || match (root, data)))
    return root;
  for (GtkWidget *c = gtk_widget_get_first_child (root); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = app_test_find_widget (c, type, match, data);
      if (found)
        return found;
    }
  return NULL;
}
