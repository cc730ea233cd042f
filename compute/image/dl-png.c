#include "dl-png.h"

#include "dl-error.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
on_png_error (png_structp png, png_const_charp msg)
{
  char *buf = png_get_error_ptr (png);
  g_strlcpy (buf, msg, 256);
  png_longjmp (png, 1);
}

static void
on_png_warning (png_structp png, png_const_charp msg)
{
}

static gboolean
is_latin1 (const char *s)
{
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p >= 0x80)
      return FALSE;
  return TRUE;
}

/* libpng needs setjmp in the function that owns the png struct; everything that
 * may longjmp lives here, with no automatic variables modified after setjmp. */
static gboolean
write_stream (FILE *f, const uint8_t *pixels, int width, int height, int channels, png_textp texts, int n_texts,
              char *errbuf)
{
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, errbuf, on_png_error, on_png_warning);
  if (!png)
    return FALSE;
  png_infop info = png_create_info_struct (png);
  if (!info || setjmp (png_jmpbuf (png)))
    {
      png_destroy_write_struct (&png, &info);
      return FALSE;
    }
  png_init_io (png, f);
  png_set_IHDR (png, info, (png_uint_32)width, (png_uint_32)height, 8,
                channels == 4 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (n_texts)
    png_set_text (png, info, texts, n_texts);
  png_write_info (png, info);
  for (int y = 0; y < height; y++)
    png_write_row (png, pixels + (gsize)y * width * channels);
  png_write_end (png, info);
  png_destroy_write_struct (&png, &info);
  return TRUE;
}

gboolean
dl_png_write (const char *path, const uint8_t *pixels, int width, int height, int channels, GHashTable *text,
              GError **error)
{
  g_return_val_if_fail (path && pixels && width > 0 && height > 0, FALSE);
  g_return_val_if_fail (channels == 3 || channels == 4, FALSE);

  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  int fd = g_mkstemp (tmp);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not create %s: %s", path, g_strerror (e));
      return FALSE;
    }
  FILE *f = fdopen (fd, "wb");
  if (!f)
    {
      close (fd);
      g_unlink (tmp);
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not write %s", path);
      return FALSE;
    }

  guint n_texts = text ? g_hash_table_size (text) : 0;
  g_autofree png_text *texts = g_new0 (png_text, MAX (n_texts, 1));
  if (text)
    {
      /* sorted keys: the file does not depend on hash order */
      g_autoptr (GList) keys = g_list_sort (g_hash_table_get_keys (text), (GCompareFunc)strcmp);
      guint i = 0;
      for (GList *l = keys; l; l = l->next, i++)
        {
          const char *v = g_hash_table_lookup (text, l->data);
          texts[i].compression = is_latin1 (v) ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
          texts[i].key = l->data;
          texts[i].text = (char *)v;
          texts[i].text_length = strlen (v);
        }
    }
  char errbuf[256] = "libpng error";
  gboolean ok = write_stream (f, pixels, width, height, channels, texts, (int)n_texts, errbuf);
  ok = (fflush (f) == 0) && ok;
  ok = (fsync (fileno (f)) == 0) && ok;
  ok = (fclose (f) == 0) && ok;
  if (!ok || g_rename (tmp, path) != 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not write %s: %s", path, ok ? g_strerror (e) : errbuf);
      return FALSE;
    }
  return TRUE;
}

static uint8_t *
read_stream (FILE *f, int *w, int *h, GHashTable *text, char *errbuf)
{
  png_structp png = png_create_read_struct (PNG_LIBPNG_VER_STRING, errbuf, on_png_error, on_png_warning);
  if (!png)
    return NULL;
  png_infop info = png_create_info_struct (png);
  uint8_t *volatile pixels = NULL;
  if (!info || setjmp (png_jmpbuf (png)))
    {
      png_destroy_read_struct (&png, &info, NULL);
      g_free (pixels);
      return NULL;
    }
  png_init_io (png, f);
  png_read_info (png, info);
  png_uint_32 width = png_get_image_width (png, info), height = png_get_image_height (png, info);
  if (width == 0 || height == 0 || width > 65536 || height > 65536)
    png_error (png, "unsupported image size");
  png_set_expand (png);
  png_set_strip_16 (png);
  png_set_gray_to_rgb (png);
  png_set_add_alpha (png, 0xff, PNG_FILLER_AFTER);
  png_set_interlace_handling (png);
  png_read_update_info (png, info);
  pixels = g_malloc ((gsize)width * height * 4);
  g_autofree png_bytep *rows = g_new (png_bytep, height);
  for (png_uint_32 y = 0; y < height; y++)
    rows[y] = pixels + (gsize)y * width * 4;
  png_read_image (png, rows);
  png_read_end (png, info);
  if (text)
    {
      png_textp t;
      int n = 0;
      png_get_text (png, info, &t, &n);
      for (int i = 0; i < n; i++)
        g_hash_table_insert (text, g_strdup (t[i].key), g_strndup (t[i].text, t[i].text_length));
    }
  png_destroy_read_struct (&png, &info, NULL);
  *w = (int)width;
  *h = (int)height;
  return pixels;
}

uint8_t *
dl_png_read_rgba (const char *path, int *width, int *height, GHashTable **text, GError **error)
{
  FILE *f = g_fopen (path, "rb");
  if (!f)
    {
      int e = errno;
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not open %s: %s", path, g_strerror (e));
      return NULL;
    }
  GHashTable *t = text ? g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free) : NULL;
  char errbuf[256] = "not a PNG file";
  uint8_t *px = read_stream (f, width, height, t, errbuf);
  fclose (f);
  if (!px)
    {
      if (t)
        g_hash_table_unref (t);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "%s: %s", path, errbuf);
      return NULL;
    }
  if (text)
    *text = t;
  return px;
}

void
dl_image_chw_to_rgb8 (const float *chw, int width, int height, uint8_t *rgb)
{
  gsize plane = (gsize)width * height;
  for (gsize p = 0; p < plane; p++)
    for (int c = 0; c < 3; c++)
      {
        float v = chw[c * plane + p] * 0.5f + 0.5f;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        /* diffusers rounds ((x * 255).round()); A1111 truncates: rounding is the unbiased choice */
        rgb[p * 3 + c] = (uint8_t)lrintf (v * 255.0f);
      }
}
