/* dl-caption-file.h: captions as kohya-ss sd-scripts and AUTOMATIC1111 keep
 * them, in a sidecar text file next to the image (`dog1.png` -> `dog1.txt`), and
 * A1111's caption made from a file name. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* `dir/name.ext` -> `dir/name<extension>` (".txt" when NULL); a name without an
 * extension (or only a leading dot, as Python's os.path.splitext sees it) gets
 * the extension appended. */
char *dl_caption_file_path (const char *image_path, const char *extension);

typedef enum
{
  DL_CAPTION_UTF8_STRICT, /* text that is not UTF-8 is an error naming the file */
  DL_CAPTION_UTF8_REPAIR, /* invalid bytes become U+FFFD (for showing and editing) */
} DlCaptionUtf8;

/* The sidecar's caption (dl_caption_file_path), a UTF-8 byte order mark dropped,
 * normalized as dl_caption_normalize.  Returns NULL without an error when there
 * is no sidecar; a sidecar that cannot be read or is over 1 MiB is an error
 * naming it.  Blocking. */
char *dl_caption_file_read (const char *image_path, const char *extension, DlCaptionUtf8 utf8, GError **error);

/* Surrounding white space removed, runs of spaces, tabs and line breaks folded
 * into one space; invalid UTF-8 repaired. */
char *dl_caption_normalize (const char *text, gssize len);

/* The file stem of `image_path` with a leading run of digits and dashes and the
 * white space after it removed, as AUTOMATIC1111 makes a caption from a file
 * name (modules/textual_inversion/dataset.py, regex ^[-\d]+\s*): "03-sks dog.png"
 * -> "sks dog".  UTF-8 (a name in another encoding is converted or repaired). */
char *dl_caption_from_file_name (const char *image_path);

G_END_DECLS
