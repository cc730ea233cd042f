/* dl-image-resize.c: see dl-image-resize.h.  The area filter follows OpenCV's
 * imgproc/src/resize.cpp (resizeAreaFast_ for whole-number factors, else
 * computeResizeAreaTab and ResizeArea_Invoker, float sums, round half to even);
 * the Lanczos filter follows Pillow's src/libImaging/Resample.c (double
 * coefficients rounded to 22 fraction bits, horizontal pass first, each pass
 * rounded to 8 bits). */
#include "dl-config.h"

#include "train/dl-image-resize.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define CN 3

static uint8_t
round_u8 (float v)
{
  /* OpenCV saturate_cast<uchar>(float): cvRound (to nearest, ties to even), clamped */
  float r = rintf (v);
  return r <= 0.0f ? 0 : r >= 255.0f ? 255 : (uint8_t)r;
}

/* ---- area (shrinking) ---- */

typedef struct
{
  int di, si; /* destination and source index along the axis (pixels) */
  float alpha;
} AreaTap;

/* computeResizeAreaTab: which source pixels cover each destination pixel, and
 * with what share. */
static AreaTap *
area_taps (int ssize, int dsize, double scale, int *n_taps)
{
  AreaTap *tab = g_new (AreaTap, (gsize)ssize * 2 + 2);
  int k = 0;
  for (int dx = 0; dx < dsize; dx++)
    {
      double fsx1 = dx * scale;
      double fsx2 = fsx1 + scale;
      double cell = MIN (scale, ssize - fsx1);
      int sx1 = (int)ceil (fsx1), sx2 = (int)floor (fsx2);
      sx2 = MIN (sx2, ssize - 1);
      sx1 = MIN (sx1, sx2);
      if (sx1 - fsx1 > 1e-3)
        tab[k++] = (AreaTap){ dx, sx1 - 1, (float)((sx1 - fsx1) / cell) };
      for (int sx = sx1; sx < sx2; sx++)
        tab[k++] = (AreaTap){ dx, sx, (float)(1.0 / cell) };
      if (fsx2 - sx2 > 1e-3)
        tab[k++] = (AreaTap){ dx, sx2, (float)(MIN (MIN (fsx2 - sx2, 1.0), cell) / cell) };
    }
  *n_taps = k;
  return tab;
}

/* Whole-number factors fx x fy: the mean of each block. */
static void
area_fast (const uint8_t *src, int sw, uint8_t *dst, int dw, int dh, int fx, int fy)
{
  int area = fx * fy;
  float scale = 1.0f / (float)area;
  for (int dy = 0; dy < dh; dy++)
    for (int dx = 0; dx < dw; dx++)
      for (int c = 0; c < CN; c++)
        {
          int sum = 0;
          for (int y = 0; y < fy; y++)
            for (int x = 0; x < fx; x++)
              sum += src[((gsize)(dy * fy + y) * sw + (gsize)(dx * fx + x)) * CN + c];
          uint8_t *d = &dst[((gsize)dy * dw + dx) * CN + c];
          /* ResizeAreaFastVec rounds 2 x 2 blocks half up, the others go through float */
          *d = area == 4 && fx == 2 ? (uint8_t)((sum + 2) >> 2) : round_u8 ((float)sum * scale);
        }
}

uint8_t *
dl_image_resize_area_rgb8 (const uint8_t *src, int src_width, int src_height, int width, int height)
{
  g_return_val_if_fail (src != NULL && width > 0 && height > 0, NULL);
  g_return_val_if_fail (width <= src_width && height <= src_height, NULL);
  uint8_t *dst = g_new (uint8_t, (gsize)width * height * CN);
  double scale_x = 1.0 / ((double)width / src_width), scale_y = 1.0 / ((double)height / src_height);
  int ix = (int)lrint (scale_x), iy = (int)lrint (scale_y);
  if (fabs (scale_x - ix) < DBL_EPSILON && fabs (scale_y - iy) < DBL_EPSILON)
    {
      area_fast (src, src_width, dst, width, height, ix, iy);
      return dst;
    }

  int nx, ny;
  g_autofree AreaTap *xtab = area_taps (src_width, width, scale_x, &nx);
  g_autofree AreaTap *ytab = area_taps (src_height, height, scale_y, &ny);
  gsize row = (gsize)width * CN;
  g_autofree float *buf = g_new (float, row);
  g_autofree float *sum = g_new0 (float, row);
  int prev_dy = ytab[0].di;
  for (int j = 0; j < ny; j++)
    {
      float beta = ytab[j].alpha;
      const uint8_t *s = src + (gsize)ytab[j].si * src_width * CN;
      memset (buf, 0, row * sizeof (float));
      for (int k = 0; k < nx; k++)
        {
          float alpha = xtab[k].alpha;
          for (int c = 0; c < CN; c++)
            buf[xtab[k].di * CN + c] = buf[xtab[k].di * CN + c] + (float)s[xtab[k].si * CN + c] * alpha;
        }
      if (ytab[j].di != prev_dy)
        {
          uint8_t *d = dst + (gsize)prev_dy * row;
          for (gsize x = 0; x < row; x++)
            {
              d[x] = round_u8 (sum[x]);
              sum[x] = beta * buf[x];
            }
          prev_dy = ytab[j].di;
        }
      else
        {
          for (gsize x = 0; x < row; x++)
            sum[x] = sum[x] + beta * buf[x];
        }
    }
  uint8_t *d = dst + (gsize)prev_dy * row;
  for (gsize x = 0; x < row; x++)
    d[x] = round_u8 (sum[x]);
  return dst;
}

/* ---- Lanczos (any size) ---- */

#define PRECISION_BITS (32 - 8 - 2)

static double
sinc (double x)
{
  if (x == 0.0)
    return 1.0;
  x = x * G_PI;
  return sin (x) / x;
}

static double
lanczos (double x)
{
  return -3.0 <= x && x < 3.0 ? sinc (x) * sinc (x / 3) : 0.0;
}

typedef struct
{
  int ksize;
  int *bounds; /* [out][2]: first source pixel, count */
  gint32 *k;   /* [out][ksize], fixed point */
} Kernel;

static void
kernel_clear (Kernel *kernel)
{
  g_free (kernel->bounds);
  g_free (kernel->k);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Kernel, kernel_clear)

/* precompute_coeffs + normalize_coeffs_8bpc */
static Kernel
lanczos_kernel (int in_size, int out_size)
{
  double scale = (double)in_size / out_size;
  double filterscale = MAX (scale, 1.0);
  double support = 3.0 * filterscale;
  Kernel kernel = { (int)ceil (support) * 2 + 1, g_new (int, (gsize)out_size * 2), NULL };
  kernel.k = g_new0 (gint32, (gsize)out_size * kernel.ksize);
  g_autofree double *w = g_new (double, kernel.ksize);
  for (int xx = 0; xx < out_size; xx++)
    {
      double center = (xx + 0.5) * scale;
      double ss = 1.0 / filterscale, ww = 0.0;
      int xmin = (int)(center - support + 0.5);
      if (xmin < 0)
        xmin = 0;
      int xmax = (int)(center + support + 0.5);
      if (xmax > in_size)
        xmax = in_size;
      xmax -= xmin;
      for (int x = 0; x < xmax; x++)
        {
          w[x] = lanczos ((x + xmin - center + 0.5) * ss);
          ww += w[x];
        }
      gint32 *k = &kernel.k[(gsize)xx * kernel.ksize];
      for (int x = 0; x < xmax; x++)
        {
          double v = ww != 0.0 ? w[x] / ww : w[x];
          k[x] = v < 0 ? (gint32)(-0.5 + v * (1 << PRECISION_BITS)) : (gint32)(0.5 + v * (1 << PRECISION_BITS));
        }
      kernel.bounds[xx * 2] = xmin;
      kernel.bounds[xx * 2 + 1] = xmax;
    }
  return kernel;
}

static uint8_t
clip8 (gint64 v)
{
  if (v >= (gint64)1 << PRECISION_BITS << 8)
    return 255;
  if (v <= 0)
    return 0;
  return (uint8_t)(v >> PRECISION_BITS);
}

uint8_t *
dl_image_resize_lanczos_rgb8 (const uint8_t *src, int src_width, int src_height, int width, int height)
{
  g_return_val_if_fail (src != NULL && src_width > 0 && src_height > 0 && width > 0 && height > 0, NULL);
  g_autofree uint8_t *tmp = NULL;
  const uint8_t *in = src;
  int in_w = src_width;

  if (width != src_width)
    {
      g_auto (Kernel) kx = lanczos_kernel (src_width, width);
      tmp = g_new (uint8_t, (gsize)width * src_height * CN);
      for (int y = 0; y < src_height; y++)
        {
          const uint8_t *s = src + (gsize)y * src_width * CN;
          uint8_t *d = tmp + (gsize)y * width * CN;
          for (int x = 0; x < width; x++)
            {
              const gint32 *k = &kx.k[(gsize)x * kx.ksize];
              int xmin = kx.bounds[x * 2], n = kx.bounds[x * 2 + 1];
              for (int c = 0; c < CN; c++)
                {
                  gint64 ss = 1 << (PRECISION_BITS - 1);
                  for (int i = 0; i < n; i++)
                    ss += (gint64)s[(xmin + i) * CN + c] * k[i];
                  d[x * CN + c] = clip8 (ss);
                }
            }
        }
      in = tmp;
      in_w = width;
    }
  if (height == src_height)
    return tmp ? g_steal_pointer (&tmp) : g_memdup2 (src, (gsize)width * height * CN);

  uint8_t *dst = g_new (uint8_t, (gsize)width * height * CN);
  g_auto (Kernel) ky = lanczos_kernel (src_height, height);
  for (int y = 0; y < height; y++)
    {
      const gint32 *k = &ky.k[(gsize)y * ky.ksize];
      int ymin = ky.bounds[y * 2], n = ky.bounds[y * 2 + 1];
      for (gsize x = 0; x < (gsize)in_w * CN; x++)
        {
          gint64 ss = 1 << (PRECISION_BITS - 1);
          for (int i = 0; i < n; i++)
            ss += (gint64)in[(gsize)(ymin + i) * in_w * CN + x] * k[i];
          dst[(gsize)y * width * CN + x] = clip8 (ss);
        }
    }
  return dst;
}

uint8_t *
dl_image_resize_rgb8 (const uint8_t *src, int src_width, int src_height, int width, int height)
{
  g_return_val_if_fail (src != NULL && src_width > 0 && src_height > 0 && width > 0 && height > 0, NULL);
  if (width == src_width && height == src_height)
    return g_memdup2 (src, (gsize)width * height * CN);
  if (src_width >= width && src_height >= height)
    return dl_image_resize_area_rgb8 (src, src_width, src_height, width, height);
  return dl_image_resize_lanczos_rgb8 (src, src_width, src_height, width, height);
}
