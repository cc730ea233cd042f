/* dl-caption.h: captions as kohya-ss sd-scripts and AUTOMATIC1111 keep them, in a
 * sidecar text file next to the image (`dog1.png` -> `dog1.txt`), and the caption
 * template that fills empty ones. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The template a new project starts with. */
#define DL_CAPTION_DEFAULT_TEMPLATE "a photo of {token} {class}"

/* `dir/name.ext` -> `dir/name.txt` (for `dir/name` without an extension, `dir/name.txt`). */
char *dl_caption_sidecar_path (const char *image_path);

/* The sidecar's caption with surrounding white space removed and line breaks
 * folded into spaces; invalid UTF-8 is repaired.  Returns NULL without an error
 * when there is no sidecar.  Blocking: call it from a worker thread. */
char *dl_caption_read_sidecar (const char *image_path, GError **error);

/* The template with `{token}` and `{class}` replaced and runs of spaces collapsed
 * ("a photo of {token} {class}", "sks", "dog" -> "a photo of sks dog"). */
char *dl_caption_expand_template (const char *template_text, const char *token, const char *class_word);

G_END_DECLS
