/* dl-png.h: PNG files with text chunks (generation parameters), via libpng. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Write an 8-bit RGB (channels 3) or RGBA (4) image atomically (temporary file +
 * rename).  `text` holds key/value pairs stored as tEXt chunks (Latin-1 text) or,
 * when a value is not Latin-1, as iTXt (UTF-8); may be NULL. */
gboolean dl_png_write (const char *path, const uint8_t *pixels, int width, int height, int channels, GHashTable *text,
                       GError **error);

/* Read an 8-bit (or expanded to 8-bit) image as RGBA; *text (nullable) receives the
 * text chunks (string -> string). */
uint8_t *dl_png_read_rgba (const char *path, int *width, int *height, GHashTable **text, GError **error);

/* Float image [3, H, W] in [-1, 1] (the VAE decoder's output) to 8-bit RGB, as
 * diffusers and AUTOMATIC1111 do: clamp((x + 1) / 2, 0, 1) * 255, rounded. */
void dl_image_chw_to_rgb8 (const float *chw, int width, int height, uint8_t *rgb);

G_END_DECLS
