/* dl-image-resize.h: resizing 8-bit RGB pictures for training as kohya
 * sd-scripts does (library/utils.py resize_image): when neither side grows, an
 * average over each output pixel's area (OpenCV's INTER_AREA), else Pillow's
 * Lanczos (a = 3, Pillow's fixed-point arithmetic).
 *
 * gdk-pixbuf's own filters are not used: its best one (GDK_INTERP_HYPER) is a
 * bilinear-box filter sampled at 16 phases, softer and less exact than either. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* Packed RGB (3 bytes a pixel, rows without padding) src_width x src_height ->
 * a new width x height picture; a copy when the size is the same. */
uint8_t *dl_image_resize_rgb8 (const uint8_t *src, int src_width, int src_height, int width, int height);

/* The two filters on their own (same layout). */
uint8_t *dl_image_resize_area_rgb8 (const uint8_t *src, int src_width, int src_height, int width, int height);
uint8_t *dl_image_resize_lanczos_rgb8 (const uint8_t *src, int src_width, int src_height, int width, int height);

G_END_DECLS
