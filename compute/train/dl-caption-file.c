/* dl-caption-file.c: see dl-caption-file.h. */
#include "dl-config.h"

#include "train/dl-caption-file.h"

#include <gio/gio.h>
#include <string.h>

/* A caption is a line of text; a bigger file is not a caption file. */
#define MAX_SIDECAR_BYTES (1024 * 1024)

/* Where the extension of `base` starts, or NULL: the last dot that follows a
 * character other than a dot (os.path.splitext ignores leading dots). */
static char *
extension_dot (char *base)
{
  char *dot = strrchr (base, '.');
  if (!dot)
    return NULL;
  for (const char *p = base; p < dot; p++)
    if (*p != '.')
      return dot;
  return NULL;
}

char *
dl_caption_file_path (const char *image_path, const char *extension)
{
  g_return_val_if_fail (image_path != NULL, NULL);
  g_autofree char *dir = g_path_get_dirname (image_path);
  g_autofree char *base = g_path_get_basename (image_path);
  char *dot = extension_dot (base);
  if (dot)
    *dot = '\0';
  g_autofree char *name = g_strconcat (base, extension ? extension : ".txt", NULL);
  return g_build_filename (dir, name, NULL);
}

char *
dl_caption_normalize (const char *text, gssize len)
{
  g_return_val_if_fail (text != NULL || len == 0, NULL);
  g_autofree char *valid = g_utf8_make_valid (text ? text : "", len);
  GString *out = g_string_new (NULL);
  gboolean space = FALSE;
  for (const char *p = valid; *p; p++)
    {
      if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ')
        {
          space = TRUE;
        }
      else
        {
          if (space && out->len > 0)
            g_string_append_c (out, ' ');
          space = FALSE;
          g_string_append_c (out, *p);
        }
    }
  return g_string_free (out, FALSE);
}

char *
dl_caption_file_read (const char *image_path, const char *extension, DlCaptionUtf8 utf8, GError **error)
{
  g_return_val_if_fail (image_path != NULL, NULL);
  g_autofree char *path = dl_caption_file_path (image_path, extension);
  g_autofree char *display = g_filename_display_name (path);
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  if (!g_file_get_contents (path, &contents, &len, &local))
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "Could not read the caption file: ");
      return NULL;
    }
  if (len > MAX_SIDECAR_BYTES)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   "The caption file “%s” is too large (%" G_GSIZE_FORMAT " bytes) to be a caption", display, len);
      return NULL;
    }
  /* a UTF-8 byte order mark is not part of the caption */
  const char *text = contents;
  if (len >= 3 && memcmp (text, "\xEF\xBB\xBF", 3) == 0)
    {
      text += 3;
      len -= 3;
    }
  const char *end = NULL;
  if (utf8 == DL_CAPTION_UTF8_STRICT && !g_utf8_validate (text, (gssize)len, &end))
    {
      /* the user's words must not be guessed */
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "The caption file “%s” is not UTF-8 text (byte %" G_GSIZE_FORMAT "); save it as UTF-8", display,
                   (gsize)(end - contents));
      return NULL;
    }
  return dl_caption_normalize (text, (gssize)len);
}

char *
dl_caption_from_file_name (const char *image_path)
{
  g_return_val_if_fail (image_path != NULL, NULL);
  g_autofree char *base = g_path_get_basename (image_path);
  char *dot = extension_dot (base);
  if (dot)
    *dot = '\0';
  g_autofree char *stem = g_filename_to_utf8 (base, -1, NULL, NULL, NULL);
  if (!stem)
    stem = g_utf8_make_valid (base, -1);
  /* Python's \d is any decimal digit, \s any white space */
  const char *p = stem;
  while (*p && (*p == '-' || g_unichar_isdigit (g_utf8_get_char (p))))
    p = g_utf8_next_char (p);
  if (p != stem)
    while (*p && g_unichar_isspace (g_utf8_get_char (p)))
      p = g_utf8_next_char (p);
  return g_strdup (p);
}
