#include "dl-config.h"

#include "dl-caption.h"

#include <string.h>

#include "train/dl-caption-file.h"

char *
dl_caption_sidecar_path (const char *image_path)
{
  g_return_val_if_fail (image_path != NULL, NULL);
  return dl_caption_file_path (image_path, NULL);
}

char *
dl_caption_read_sidecar (const char *image_path, GError **error)
{
  g_return_val_if_fail (image_path != NULL, NULL);
  return dl_caption_file_read (image_path, NULL, DL_CAPTION_UTF8_REPAIR, error);
}

char *
dl_caption_expand_template (const char *template_text, const char *token, const char *class_word)
{
  g_return_val_if_fail (template_text != NULL, NULL);
  GString *s = g_string_new (template_text);
  g_string_replace (s, "{token}", token ? token : "", 0);
  g_string_replace (s, "{class}", class_word ? class_word : "", 0);
  g_autofree char *raw = g_string_free (s, FALSE);
  return dl_caption_normalize (raw, (gssize)strlen (raw));
}
