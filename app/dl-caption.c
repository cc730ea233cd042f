#include "dl-config.h"

#include "dl-caption.h"

#include <string.h>

/* A caption is a line of text; a bigger file is not a caption file. */
#define MAX_SIDECAR_BYTES (1024 * 1024)

char *
dl_caption_sidecar_path (const char *image_path)
{
  g_return_val_if_fail (image_path != NULL, NULL);
  g_autofree char *dir = g_path_get_dirname (image_path);
  g_autofree char *base = g_path_get_basename (image_path);
  char *dot = strrchr (base, '.');
  if (dot && dot != base)
    *dot = '\0';
  g_autofree char *name = g_strconcat (base, ".txt", NULL);
  return g_build_filename (dir, name, NULL);
}

static char *
normalize_caption (const char *text, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid (text, (gssize) len);
  GString *out = g_string_new (NULL);
  gboolean space = FALSE;
  for (const char *p = valid; *p; p++)
    {
      if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ')
        space = TRUE;
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
dl_caption_read_sidecar (const char *image_path, GError **error)
{
  g_return_val_if_fail (image_path != NULL, NULL);
  g_autofree char *path = dl_caption_sidecar_path (image_path);
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
      g_autofree char *name = g_path_get_basename (path);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "The caption file “%s” is too large (%" G_GSIZE_FORMAT
                   " bytes) to be a caption", name, len);
      return NULL;
    }
  /* a UTF-8 byte order mark is not part of the caption */
  const char *text = contents;
  if (len >= 3 && memcmp (text, "\xEF\xBB\xBF", 3) == 0)
    {
      text += 3;
      len -= 3;
    }
  return normalize_caption (text, len);
}

char *
dl_caption_expand_template (const char *template_text, const char *token, const char *class_word)
{
  g_return_val_if_fail (template_text != NULL, NULL);
  GString *s = g_string_new (template_text);
  g_string_replace (s, "{token}", token ? token : "", 0);
  g_string_replace (s, "{class}", class_word ? class_word : "", 0);
  g_autofree char *raw = g_string_free (s, FALSE);
  return normalize_caption (raw, strlen (raw));
}
