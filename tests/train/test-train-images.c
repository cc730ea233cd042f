/* The training images: listing and sorting, skipped files and their warnings,
 * captions (sidecar files, file names, kohya's shuffle and dropout), kohya's
 * buckets and crops, the resize filters, EXIF orientation, and the pixels as the
 * VAE takes them, down to the golden instance images. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "image/dl-png.h"
#include "train/dl-caption-file.h"
#include "train/dl-image-file.h"
#include "train/dl-image-resize.h"
#include "train/dl-train-images.h"

static char *base_tmp_dir;

/* A fresh folder under the test's temporary folder. */
static char *
make_dir (const char *name)
{
  char *dir = g_build_filename (base_tmp_dir, name, NULL);
  dl_test_remove_tree (dir);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  return dir;
}

static void
write_bytes (const char *path, const void *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, data, (gssize)len, &error));
  g_assert_no_error (error);
}

static void
write_text (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  write_bytes (path, text, strlen (text));
}

typedef void (*PixelFunc) (int x, int y, uint8_t rgb[3]);

static void
flat_grey (int x, int y, uint8_t rgb[3])
{
  (void)x;
  (void)y;
  rgb[0] = rgb[1] = rgb[2] = 128;
}

/* r = x, g = y, b = 7: every pixel says where it came from */
static void
coordinates (int x, int y, uint8_t rgb[3])
{
  rgb[0] = (uint8_t)x;
  rgb[1] = (uint8_t)y;
  rgb[2] = 7;
}

static uint8_t *
make_pixels (int w, int h, PixelFunc f)
{
  uint8_t *rgb = g_new (uint8_t, (gsize)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      f (x, y, rgb + ((gsize)y * w + x) * 3);
  return rgb;
}

static char *
write_png (const char *dir, const char *name, int w, int h, PixelFunc f)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autofree uint8_t *rgb = make_pixels (w, h, f);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_png_write (path, rgb, w, h, 3, NULL, &error));
  g_assert_no_error (error);
  return path;
}

static char *
write_flat_png (const char *dir, const char *name, int w, int h)
{
  return write_png (dir, name, w, h, flat_grey);
}

/* A JPEG of `pixbuf` with an EXIF APP1 segment holding only the orientation
 * tag (0x0112), written right after the start-of-image marker. */
static char *
write_jpeg (const char *dir, const char *name, GdkPixbuf *pixbuf, int orientation)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *jpeg = NULL;
  gsize len = 0;
  g_assert_true (gdk_pixbuf_save_to_buffer (pixbuf, &jpeg, &len, "jpeg", &error, "quality", "100", NULL));
  g_assert_no_error (error);
  const guint8 app1[] = {
    0xFF,
    0xE1,
    0x00,
    0x22, /* APP1, 34 bytes */
    'E',
    'x',
    'i',
    'f',
    0,
    0, /* EXIF header */
    'I',
    'I',
    0x2A,
    0x00,
    0x08,
    0x00,
    0x00,
    0x00, /* TIFF, little-endian, IFD at 8 */
    0x01,
    0x00, /* one entry */
    0x12,
    0x01,
    0x03,
    0x00,
    0x01,
    0x00,
    0x00,
    0x00, /* Orientation, SHORT, count 1 */
    (guint8)orientation,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00, /* value; no next IFD */
  };
  GByteArray *out = g_byte_array_new ();
  g_byte_array_append (out, (const guint8 *)jpeg, 2);
  if (orientation > 0)
    g_byte_array_append (out, app1, sizeof app1);
  g_byte_array_append (out, (const guint8 *)jpeg + 2, (guint)len - 2);
  char *path = g_build_filename (dir, name, NULL);
  write_bytes (path, out->data, out->len);
  g_byte_array_unref (out);
  return path;
}

static DlTrainImagesOptions
options_for (int resolution)
{
  return (DlTrainImagesOptions){ .resolution = resolution };
}

static DlTrainImages *
load (GPtrArray *paths, const DlTrainImagesOptions *options, GPtrArray *warnings)
{
  g_autoptr (GError) error = NULL;
  DlTrainImages *images =
    dl_train_images_new ((const char *const *)paths->pdata, paths->len, options, warnings, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (images);
  return images;
}

static GPtrArray *
path_list (void)
{
  return g_ptr_array_new_with_free_func (g_free);
}

/* ---- buckets ---- */

static void
test_buckets_for_resolution (void)
{
  /* kohya make_bucket_resolutions((512, 512), 256, 1024, 64), by hand:
   * width 256 -> 1024, 320 -> 768, 384 -> 640, 448 -> 576, 512 -> 512, 576 -> 448,
   * 640 -> 384, 704 -> 320, 768 -> 320, 832..1024 -> 256; each also transposed */
  static const int want[][2] = {
    { 256, 832 }, { 256, 896 }, { 256, 960 }, { 256, 1024 }, { 320, 704 },  { 320, 768 },
    { 384, 640 }, { 448, 576 }, { 512, 512 }, { 576, 448 },  { 640, 384 },  { 704, 320 },
    { 768, 320 }, { 832, 256 }, { 896, 256 }, { 960, 256 },  { 1024, 256 },
  };
  g_autoptr (GArray) b512 = dl_train_buckets_for_resolution (512);
  g_assert_cmpuint (b512->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < MIN (b512->len, G_N_ELEMENTS (want)); i++)
    {
      g_assert_cmpint (g_array_index (b512, DlTrainBucket, i).width, ==, want[i][0]);
      g_assert_cmpint (g_array_index (b512, DlTrainBucket, i).height, ==, want[i][1]);
    }

  /* at 256 no other pair reaches 256 on both sides */
  g_autoptr (GArray) b256 = dl_train_buckets_for_resolution (256);
  g_assert_cmpuint (b256->len, ==, 1);
  g_assert_cmpint (g_array_index (b256, DlTrainBucket, 0).width, ==, 256);

  /* below kohya's minimum: the one square bucket */
  g_autoptr (GArray) b64 = dl_train_buckets_for_resolution (64);
  g_assert_cmpuint (b64->len, ==, 1);
  g_assert_cmpint (g_array_index (b64, DlTrainBucket, 0).width, ==, 64);
  g_assert_cmpint (g_array_index (b64, DlTrainBucket, 0).height, ==, 64);

  /* 768 (kohya's SD2 size): 768 x 768 is one, 1024 x 576 the widest landscape
   * (589824 // 1024 = 576), and every bucket within the area and the limits */
  g_autoptr (GArray) b768 = dl_train_buckets_for_resolution (768);
  gboolean square = FALSE, wide = FALSE;
  for (guint i = 0; i < b768->len; i++)
    {
      const DlTrainBucket *b = &g_array_index (b768, DlTrainBucket, i);
      square |= b->width == 768 && b->height == 768;
      wide |= b->width == 1024 && b->height == 576;
      g_assert_cmpint ((gint64)b->width * b->height, <=, 768 * 768);
      g_assert_cmpint (b->width % 64, ==, 0);
      g_assert_cmpint (b->height % 64, ==, 0);
      g_assert_cmpint (MIN (b->width, b->height), >=, 256);
      g_assert_cmpint (MAX (b->width, b->height), <=, 1024);
      if (i > 0)
        g_assert_cmpint (g_array_index (b768, DlTrainBucket, i - 1).width, <=, b->width);
    }
  g_assert_true (square);
  g_assert_true (wide);
}

static void
test_buckets_select (void)
{
  g_autoptr (GArray) b = dl_train_buckets_for_resolution (512);
  const DlTrainBucket *all = (const DlTrainBucket *)(gconstpointer)b->data;
  /* image w, h -> bucket w, h, resized w, h (kohya select_bucket, worked by hand) */
  static const int cases[][6] = {
    { 1024, 512, 704, 320, 704, 352 },   /* 2.0: 704/320 = 2.2 is nearest; widths match */
    { 512, 1024, 320, 704, 352, 704 },   /* 0.5: 320/704 = 0.4545 */
    { 600, 400, 640, 384, 640, 427 },    /* 1.5: 640/384 = 1.667 beats 576/448 = 1.286; 400*640/600 = 426.7 */
    { 300, 300, 512, 512, 512, 512 },    /* enlarged */
    { 2000, 500, 1024, 256, 1024, 256 }, /* exactly 4:1 */
    { 576, 448, 576, 448, 576, 448 },    /* a bucket's own size */
    { 1000, 1000, 512, 512, 512, 512 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      int rw = 0, rh = 0;
      guint k = dl_train_buckets_select (all, b->len, cases[i][0], cases[i][1], &rw, &rh);
      g_assert_cmpint (all[k].width, ==, cases[i][2]);
      g_assert_cmpint (all[k].height, ==, cases[i][3]);
      g_assert_cmpint (rw, ==, cases[i][4]);
      g_assert_cmpint (rh, ==, cases[i][5]);
    }
  /* without buckets: the one square, the shorter side scaled to it */
  DlTrainBucket square = { 32, 32 };
  int rw, rh;
  g_assert_cmpuint (dl_train_buckets_select (&square, 1, 48, 32, &rw, &rh), ==, 0);
  g_assert_cmpint (rw, ==, 48);
  g_assert_cmpint (rh, ==, 32);
  dl_train_buckets_select (&square, 1, 100, 300, &rw, &rh);
  g_assert_cmpint (rw, ==, 32);
  g_assert_cmpint (rh, ==, 96);
}

/* Wide, tall and square images at 512 land in kohya's buckets, which the set
 * lists sorted; pixels come out at the bucket's size. */
static void
test_dataset_buckets (void)
{
  g_autofree char *dir = make_dir ("buckets");
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, write_flat_png (dir, "wide.png", 1024, 512));
  g_ptr_array_add (paths, write_flat_png (dir, "tall.png", 512, 1024));
  g_ptr_array_add (paths, write_flat_png (dir, "square.png", 600, 600));
  DlTrainImagesOptions options = options_for (512);
  options.buckets = TRUE;
  g_autoptr (DlTrainImages) images = load (paths, &options, NULL);
  if (!images)
    return;
  g_assert_cmpuint (dl_train_images_get_n (images), ==, 3);
  g_assert_cmpuint (dl_train_images_get_n_buckets (images), ==, 3);
  static const int want_buckets[3][2] = { { 320, 704 }, { 512, 512 }, { 704, 320 } };
  for (guint b = 0; b < 3; b++)
    {
      int w, h;
      dl_train_images_get_bucket (images, b, &w, &h);
      g_assert_cmpint (w, ==, want_buckets[b][0]);
      g_assert_cmpint (h, ==, want_buckets[b][1]);
    }
  /* sorted: square, tall, wide */
  const DlTrainImage *sq = dl_train_images_get (images, 0), *tall = dl_train_images_get (images, 1),
                     *wide = dl_train_images_get (images, 2);
  g_assert_cmpstr (sq->name, ==, "square.png");
  g_assert_cmpuint (dl_train_images_get_bucket_of (images, 0), ==, 1);
  g_assert_cmpuint (dl_train_images_get_bucket_of (images, 1), ==, 0);
  g_assert_cmpuint (dl_train_images_get_bucket_of (images, 2), ==, 2);
  g_assert_cmpint (tall->resized_width, ==, 352);
  g_assert_cmpint (tall->resized_height, ==, 704);
  g_assert_cmpint (tall->crop_x, ==, 16);
  g_assert_cmpint (tall->crop_y, ==, 0);
  g_assert_cmpint (wide->bucket_width, ==, 704);
  g_assert_cmpint (wide->bucket_height, ==, 320);
  g_assert_cmpint (wide->crop_x, ==, 0);
  g_assert_cmpint (wide->crop_y, ==, 16);

  g_autoptr (GError) error = NULL;
  g_autofree float *px = dl_train_images_load_pixels (images, 2, FALSE, &error);
  g_assert_no_error (error);
  if (!px)
    return;
  /* flat 128 stays 128 through the area filter, in every one of 704 x 320 x 3 */
  float want = 128.0f / 127.5f - 1.0f;
  gsize bad = 0;
  for (gsize i = 0; i < (gsize)704 * 320 * 3; i++)
    bad += px[i] != want;
  g_assert_cmpuint (bad, ==, 0);
}

/* ---- the folder, sorting, skipping ---- */

static void
test_list_folder (void)
{
  g_autofree char *dir = make_dir ("list");
  g_autofree char *p1 = write_flat_png (dir, "b.png", 8, 8);
  g_autofree char *p2 = write_flat_png (dir, "A.PNG", 8, 8);
  g_autofree char *p3 = write_flat_png (dir, "c.JpEg", 8, 8);
  g_autofree char *p4 = write_flat_png (dir, "d.webp", 8, 8);
  g_autofree char *p5 = write_flat_png (dir, ".hidden.png", 8, 8);
  g_autofree char *p6 = write_flat_png (dir, "e.gif", 8, 8);
  g_autofree char *p7 = write_flat_png (dir, "f.jpg", 8, 8);
  write_text (dir, "b.txt", "a caption");
  g_autofree char *sub = g_build_filename (dir, "folder.png", NULL);
  g_assert_cmpint (g_mkdir (sub, 0700), ==, 0);

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) paths = dl_train_images_list_folder (dir, &error);
  g_assert_no_error (error);
  if (!paths)
    return;
  static const char *const want[] = { "A.PNG", "b.png", "c.JpEg", "d.webp", "f.jpg" };
  g_assert_cmpuint (paths->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < MIN (paths->len, G_N_ELEMENTS (want)); i++)
    {
      g_autofree char *expected = g_build_filename (dir, want[i], NULL);
      g_assert_cmpstr (g_ptr_array_index (paths, i), ==, expected);
    }

  g_autofree char *missing = g_build_filename (dir, "absent", NULL);
  g_autoptr (GPtrArray) none = dl_train_images_list_folder (missing, &error);
  g_assert_null (none);
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  g_assert_nonnull (error ? strstr (error->message, "absent") : NULL);
}

static void
test_sorting (void)
{
  g_autofree char *dir = make_dir ("sorting");
  g_autofree char *d1 = make_dir ("sorting/one");
  g_autofree char *d2 = make_dir ("sorting/two");
  g_autoptr (GPtrArray) paths = path_list ();
  /* given in an order that is none of the sorted ones */
  g_ptr_array_add (paths, write_flat_png (d2, "x.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "a.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "2.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (d1, "x.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "B.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "10.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "a-b.png", 16, 16));
  g_ptr_array_add (paths, g_build_filename (dir, "a.png", NULL)); /* twice: counts once */
  DlTrainImagesOptions options = options_for (16);
  g_autoptr (DlTrainImages) images = load (paths, &options, NULL);
  if (!images)
    return;
  /* byte order: digits < upper case < '-' ... '.' < lower case; "a-b" < "a." */
  static const char *const want[] = { "10.png", "2.png", "B.png", "a-b.png", "a.png", "x.png", "x.png" };
  g_assert_cmpuint (dl_train_images_get_n (images), ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < MIN (dl_train_images_get_n (images), G_N_ELEMENTS (want)); i++)
    g_assert_cmpstr (dl_train_images_get (images, i)->name, ==, want[i]);
  if (dl_train_images_get_n (images) == G_N_ELEMENTS (want))
    {
      g_autofree char *first_x = g_build_filename (d1, "x.png", NULL);
      g_assert_cmpstr (dl_train_images_get (images, 5)->path, ==, first_x);
    }
}

static void
test_skipped (void)
{
  g_autofree char *dir = make_dir ("skipped");
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, write_flat_png (dir, "ok.png", 64, 64));
  g_ptr_array_add (paths, write_flat_png (dir, "half.png", 32, 90)); /* exactly half: kept */
  g_ptr_array_add (paths, write_flat_png (dir, "small.png", 31, 90));
  g_autofree char *fake = g_build_filename (dir, "fake.png", NULL);
  write_text (dir, "fake.png", "this is not a picture\n");
  g_ptr_array_add (paths, g_strdup (fake));
  write_text (dir, "empty.png", "");
  g_ptr_array_add (paths, g_build_filename (dir, "empty.png", NULL));
  g_ptr_array_add (paths, g_build_filename (dir, "gone.png", NULL));

  /* a JPEG cut short decodes without an error in libjpeg: refused here */
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 64, 64);
  gdk_pixbuf_fill (pb, 0x336699ff);
  g_autofree char *jpeg_path = write_jpeg (dir, "cut.jpg", pb, 0);
  g_autofree char *jpeg = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (jpeg_path, &jpeg, &len, NULL));
  write_bytes (jpeg_path, jpeg, len * 2 / 3);
  g_ptr_array_add (paths, g_strdup (jpeg_path));
  /* and a WebP cut short */
  g_autofree char *webp = NULL;
  gsize webp_len = 0;
  g_autoptr (GError) error = NULL;
  if (gdk_pixbuf_save_to_buffer (pb, &webp, &webp_len, "webp", &error, NULL))
    {
      g_autofree char *webp_path = g_build_filename (dir, "cut.webp", NULL);
      write_bytes (webp_path, webp, webp_len - 10);
      g_ptr_array_add (paths, g_steal_pointer (&webp_path));
    }
  else
    {
      g_test_message ("no WebP saver (%s): the WebP case is not checked", error->message);
      g_clear_error (&error);
    }

  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  DlTrainImagesOptions options = options_for (64);
  g_autoptr (DlTrainImages) images = load (paths, &options, warnings);
  if (!images)
    return;
  g_assert_cmpuint (dl_train_images_get_n (images), ==, 2);
  g_assert_cmpstr (dl_train_images_get (images, 0)->name, ==, "half.png");
  g_assert_cmpstr (dl_train_images_get (images, 1)->name, ==, "ok.png");
  g_assert_cmpuint (warnings->len, ==, paths->len - 2);
  /* one line each, naming the file, in name order */
  static const char *const want[][2] = {
    { "“cut.jpg”: ", "damaged" },
    { "“cut.webp”: ", "damaged" },
    { "“empty.png”: ", "empty" },
    { "“fake.png”: ", "not a PNG, JPEG or WebP image" },
    { "“gone.png”: ", "not there" },
    { "“small.png”: ", "31 × 90 pixels, smaller than half the training resolution (64)" },
  };
  guint w = 0;
  for (guint i = 0; i < G_N_ELEMENTS (want) && w < warnings->len; i++)
    {
      const char *line = g_ptr_array_index (warnings, w);
      if (!webp && i == 1)
        continue;
      g_test_message ("%s", line);
      g_assert_true (g_str_has_prefix (line, want[i][0]));
      g_assert_nonnull (strstr (line, want[i][1]));
      g_assert_true (g_str_has_suffix (line, "; skipped"));
      g_assert_null (strchr (line, '\n'));
      w++;
    }
}

static void
test_no_usable_image (void)
{
  g_autofree char *dir = make_dir ("unusable");
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, write_flat_png (dir, "tiny.png", 8, 8));
  write_text (dir, "text.png", "hello");
  g_ptr_array_add (paths, g_build_filename (dir, "text.png", NULL));
  DlTrainImagesOptions options = options_for (64);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (DlTrainImages) images =
    dl_train_images_new ((const char *const *)paths->pdata, paths->len, &options, warnings, NULL, &error);
  g_assert_null (images);
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_autofree char *display = g_filename_display_name (dir);
  g_autofree char *want = g_strdup_printf ("No usable training image in “%s”: 2 files skipped", display);
  g_assert_cmpstr (error ? error->message : NULL, ==, want);
  g_assert_cmpuint (warnings->len, ==, 2);
}

static void
test_bad_options (void)
{
  g_autofree char *dir = make_dir ("options");
  g_autofree char *path = write_flat_png (dir, "a.png", 64, 64);
  const char *paths[] = { path };
  struct
  {
    DlTrainImagesOptions options;
    guint n;
    const char *message;
  } cases[] = {
    { { .resolution = 60 }, 1, "Training resolution 60: it must be a positive multiple of 8" },
    { { .resolution = 0 }, 1, "Training resolution 0: it must be a positive multiple of 8" },
    { { .resolution = 96, .buckets = TRUE }, 1, "with aspect-ratio buckets it must be a multiple of 64" },
    { { .resolution = 64, .caption_extension = "" }, 1, "Caption extension “”" },
    { { .resolution = 64 }, 0, "No training image given" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (DlTrainImages) images = dl_train_images_new (paths, cases[i].n, &cases[i].options, NULL, NULL, &error);
      g_assert_null (images);
      g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (error ? strstr (error->message, cases[i].message) : NULL);
    }
  /* cancelled before it starts */
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  DlTrainImagesOptions options = options_for (64);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTrainImages) images = dl_train_images_new (paths, 1, &options, NULL, cancellable, &error);
  g_assert_null (images);
  g_assert_error (error, DL_ERROR, DL_ERROR_CANCELLED);
}

/* ---- captions ---- */

static void
test_captions (void)
{
  g_autofree char *dir = make_dir ("captions");
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, write_flat_png (dir, "03-12 sks dog.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "cat.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "empty.png", 16, 16));
  g_ptr_array_add (paths, write_flat_png (dir, "photo.of.png", 16, 16));
  write_text (dir, "cat.txt", "\xEF\xBB\xBF  a photo of\r\n\tsks  cat \n\n");
  write_text (dir, "empty.txt", "");
  write_text (dir, "photo.of.txt", "dotted");
  write_text (dir, "photo.txt", "not this one");
  write_text (dir, "cat.caption", "the other extension");
  DlTrainImagesOptions options = options_for (16);
  g_autoptr (DlTrainImages) images = load (paths, &options, NULL);
  if (!images)
    return;
  const DlTrainImage *dog = dl_train_images_get (images, 0), *cat = dl_train_images_get (images, 1),
                     *empty = dl_train_images_get (images, 2), *dotted = dl_train_images_get (images, 3);
  g_assert_null (dog->caption);
  g_assert_cmpstr (dog->filename_caption, ==, "sks dog");
  g_assert_cmpstr (cat->caption, ==, "a photo of sks cat");
  g_assert_cmpstr (cat->filename_caption, ==, "cat");
  g_assert_cmpstr (empty->caption, ==, "");
  g_assert_cmpstr (dotted->caption, ==, "dotted");
  g_assert_cmpstr (dotted->filename_caption, ==, "photo.of");

  options.caption_extension = ".caption";
  g_autoptr (DlTrainImages) other = load (paths, &options, NULL);
  if (other)
    {
      g_assert_cmpstr (dl_train_images_get (other, 1)->caption, ==, "the other extension");
      g_assert_null (dl_train_images_get (other, 2)->caption);
    }

  /* a caption that is not UTF-8 stops the run, naming its file */
  write_text (dir, "empty.txt", "caf\xE9 au lait");
  options.caption_extension = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTrainImages) bad =
    dl_train_images_new ((const char *const *)paths->pdata, paths->len, &options, NULL, NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_autofree char *txt = g_build_filename (dir, "empty.txt", NULL);
  g_autofree char *display = g_filename_display_name (txt);
  g_autofree char *want =
    g_strdup_printf ("The caption file “%s” is not UTF-8 text (byte 3); save it as UTF-8", display);
  g_assert_cmpstr (error ? error->message : NULL, ==, want);
  /* the window repairs it instead, to show and edit */
  g_clear_error (&error);
  g_autofree char *img = g_build_filename (dir, "empty.png", NULL);
  g_autofree char *repaired = dl_caption_file_read (img, NULL, DL_CAPTION_UTF8_REPAIR, &error);
  g_assert_cmpstr (repaired, ==, "caf\xEF\xBF\xBD au lait");
}

static void
test_caption_file_names (void)
{
  static const char *const cases[][3] = {
    /* image path, sidecar, caption from the file name */
    { "/d/dog1.png", "/d/dog1.txt", "dog1" },
    { "/d/12-3 -4  a dog.jpg", "/d/12-3 -4  a dog.txt", "-4  a dog" }, /* one run only */
    { "/d/12-3-4  a dog.jpg", "/d/12-3-4  a dog.txt", "a dog" },
    { "/d/2024-01-01.png", "/d/2024-01-01.txt", "" },
    { "/d/noext", "/d/noext.txt", "noext" },
    { "/d/.hidden", "/d/.hidden.txt", ".hidden" },
    { "/d/a.b.webp", "/d/a.b.txt", "a.b" },
    { "/d/٣ arabic digit.png", "/d/٣ arabic digit.txt", "arabic digit" },
    { "/d/x-y 1.png", "/d/x-y 1.txt", "x-y 1" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *sidecar = dl_caption_file_path (cases[i][0], NULL);
      g_autofree char *from_name = dl_caption_from_file_name (cases[i][0]);
      g_assert_cmpstr (sidecar, ==, cases[i][1]);
      g_assert_cmpstr (from_name, ==, cases[i][2]);
    }
  g_autofree char *caption = dl_caption_file_path ("/d/dog1.png", ".caption");
  g_assert_cmpstr (caption, ==, "/d/dog1.caption");
  g_autofree char *folded = dl_caption_normalize ("  a\n\n b\t c  ", -1);
  g_assert_cmpstr (folded, ==, "a b c");
}

static void
test_caption_augment (void)
{
  const guint32 zero = 0, top = G_MAXUINT32;
  guint32 u[8] = { 0 };
  g_assert_cmpuint (dl_caption_augment_n_random ("a, b, c"), ==, 4);
  g_assert_cmpuint (dl_caption_augment_n_random (""), ==, 2);

  /* nothing asked: the caption as it is */
  g_autofree char *same = dl_caption_augment ("a,b ,  c", FALSE, 0, 0.0, u, 8);
  g_assert_cmpstr (same, ==, "a,b ,  c");
  /* dropout: u[0] / 2^32 below the rate drops it; a rate of 0 never does */
  u[0] = zero;
  g_autofree char *dropped = dl_caption_augment ("a, b", TRUE, 0, 0.5, u, 8);
  g_assert_cmpstr (dropped, ==, "");
  g_autofree char *never = dl_caption_augment ("a, b", FALSE, 0, 0.0, u, 8);
  g_assert_cmpstr (never, ==, "a, b");
  u[0] = 0x7FFFFF00u; /* just under 0.5 */
  g_autofree char *under = dl_caption_augment ("a, b", FALSE, 0, 0.5, u, 8);
  g_assert_cmpstr (under, ==, "");
  u[0] = 0x80000000u; /* exactly 0.5: kept */
  g_autofree char *kept = dl_caption_augment ("a, b", FALSE, 0, 0.5, u, 8);
  g_assert_cmpstr (kept, ==, "a, b");

  /* shuffling joins the stripped tags with ", " */
  u[0] = top;
  u[1] = top;
  u[2] = top;
  g_autofree char *joined = dl_caption_augment (" a,b ,  c", TRUE, 0, 0.1, u, 8);
  g_assert_cmpstr (joined, ==, "a, b, c"); /* j = i every time: no swap */
  /* keep 1: flex [b, c, d]; i = 2: j = (u1 * 3) >> 32, i = 1: j = (u2 * 2) >> 32 */
  u[1] = zero; /* swap d and b */
  u[2] = top;  /* stay */
  g_autofree char *s1 = dl_caption_augment ("a, b, c, d", TRUE, 1, 0.0, u, 8);
  g_assert_cmpstr (s1, ==, "a, d, c, b");
  u[1] = top;  /* stay */
  u[2] = zero; /* swap c and b */
  g_autofree char *s2 = dl_caption_augment ("a, b, c, d", TRUE, 1, 0.0, u, 8);
  g_assert_cmpstr (s2, ==, "a, c, b, d");
  u[1] = 0x55555556u;
  u[2] = top;
  g_autofree char *s3 = dl_caption_augment ("a, b, c, d", TRUE, 0, 0.0, u, 8);
  /* keep 0: flex [a, b, c, d]; i = 3: j = (u1 * 4) >> 32 = 1 -> [a, d, c, b]; i = 2: (top * 3) >> 32 = 2;
   * i = 1: (u3 = 0) -> 0 -> [d, a, c, b] */
  g_assert_cmpstr (s3, ==, "d, a, c, b");
  /* keep more than there are: nothing moves */
  g_autofree char *all_kept = dl_caption_augment ("x, y", TRUE, 5, 0.0, u, 8);
  g_assert_cmpstr (all_kept, ==, "x, y");

  /* more tags than words: still a shuffle, the same for the same words, and
   * the words given are used first */
  GString *long_caption = g_string_new ("t0");
  for (int i = 1; i < 100; i++)
    g_string_append_printf (long_caption, ", t%d", i);
  guint32 few[8] = { top, 11u << 24, 99u << 24, 5u << 24, 123456789u, 987654321u, 42u, 7u };
  g_autofree char *l1 = dl_caption_augment (long_caption->str, TRUE, 0, 0.0, few, 8);
  g_autofree char *l2 = dl_caption_augment (long_caption->str, TRUE, 0, 0.0, few, 8);
  g_autofree guint32 *many = g_new0 (guint32, dl_caption_augment_n_random (long_caption->str));
  memcpy (many, few, sizeof few);
  g_autofree char *l3 = dl_caption_augment (long_caption->str, TRUE, 0, 0.0, many, 101);
  g_assert_cmpstr (l1, ==, l2);
  g_assert_cmpstr (l1, !=, long_caption->str);
  {
    g_auto (GStrv) parts = g_strsplit (l1, ", ", -1);
    g_auto (GStrv) parts3 = g_strsplit (l3, ", ", -1);
    g_assert_cmpuint (g_strv_length (parts), ==, 100);
    for (int i = 0; i < 100; i++)
      {
        g_autofree char *tag = g_strdup_printf ("t%d", i);
        g_assert_true (g_strv_contains ((const char *const *)parts, tag));
      }
    /* the last 7 positions are settled by the first 7 swaps, from the words given */
    for (int i = 93; i < 100; i++)
      g_assert_cmpstr (parts[i], ==, parts3[i]);
  }
  g_string_free (long_caption, TRUE);

  /* a permutation for any words, using no more words than promised */
  g_autoptr (GRand) r = g_rand_new_with_seed (7);
  for (int t = 0; t < 200; t++)
    {
      const char *caption = "one, two, three, four, five, six";
      gsize n = dl_caption_augment_n_random (caption);
      guint32 words[8];
      for (gsize i = 0; i < n; i++)
        words[i] = g_rand_int (r);
      g_autofree char *s = dl_caption_augment (caption, TRUE, 2, 0.0, words, n);
      g_assert_true (g_str_has_prefix (s, "one, two, "));
      g_auto (GStrv) parts = g_strsplit (s, ", ", -1);
      g_assert_cmpuint (g_strv_length (parts), ==, 6);
      for (const char *const *w = (const char *const[]){ "three", "four", "five", "six", NULL }; *w; w++)
        g_assert_true (g_strv_contains ((const char *const *)parts, *w));
    }
}

/* ---- resizing ---- */

static void
test_resize_area (void)
{
  /* 2 x 2 blocks as OpenCV's fast path, (sum + 2) >> 2: red 7 / 4 -> 2, green 2 / 4 -> 1
   * (an exact half goes up, where rounding to even would give 0), blue 100 / 4 = 25 */
  const uint8_t src[2 * 4 * 3] = {
    1, 0, 10, 2, 1, 20, 9, 9, 9, 9, 9, 9, 2, 0, 30, 2, 1, 40, 9, 9, 9, 9, 9, 9,
  };
  g_autofree uint8_t *half = dl_image_resize_area_rgb8 (src, 4, 2, 2, 1);
  g_assert_cmpuint (half[0], ==, 2);
  g_assert_cmpuint (half[1], ==, 1);
  g_assert_cmpuint (half[2], ==, 25);
  g_assert_cmpuint (half[3], ==, 9);

  /* 3 -> 2 along x: shares 2/3 + 1/3 and 1/3 + 2/3 */
  uint8_t row[3 * 3 * 3];
  for (int y = 0; y < 3; y++)
    for (int c = 0; c < 3; c++)
      {
        row[(y * 3 + 0) * 3 + c] = 0;
        row[(y * 3 + 1) * 3 + c] = 90;
        row[(y * 3 + 2) * 3 + c] = 180;
      }
  g_autofree uint8_t *two = dl_image_resize_area_rgb8 (row, 3, 3, 2, 2);
  for (int y = 0; y < 2; y++)
    {
      g_assert_cmpuint (two[(y * 2 + 0) * 3], ==, 30);
      g_assert_cmpuint (two[(y * 2 + 1) * 3], ==, 150);
    }
  /* 3 x 3 blocks average through float: (sum / 9) rounded */
  uint8_t nine[3 * 3 * 3];
  for (int i = 0; i < 27; i++)
    nine[i] = (uint8_t)(i / 3 == 4 ? 100 : 0); /* the centre pixel 100: 11.1 -> 11 */
  g_autofree uint8_t *one = dl_image_resize_rgb8 (nine, 3, 3, 1, 1);
  g_assert_cmpuint (one[0], ==, 11);
}

/* Lanczos-3 in double, Pillow's sampling positions, rounded at the end */
static double
ref_lanczos (double x)
{
  if (x <= -3 || x >= 3)
    return 0;
  if (x == 0)
    return 1;
  return 3 * sin (G_PI * x) * sin (G_PI * x / 3) / (G_PI * G_PI * x * x);
}

static void
test_resize_lanczos (void)
{
  /* a ramp enlarged 4 x 1 -> 10 x 1 in x (y stays): within 1 of the exact filter */
  const int in_w = 4, out_w = 10;
  const uint8_t vals[4] = { 0, 60, 200, 255 };
  uint8_t src[4 * 3];
  for (int x = 0; x < in_w; x++)
    src[x * 3] = src[x * 3 + 1] = src[x * 3 + 2] = vals[x];
  g_autofree uint8_t *big = dl_image_resize_lanczos_rgb8 (src, in_w, 1, out_w, 1);
  double scale = (double)in_w / out_w;
  for (int x = 0; x < out_w; x++)
    {
      double center = (x + 0.5) * scale, sum = 0, wsum = 0;
      for (int i = 0; i < in_w; i++)
        {
          double w = ref_lanczos (i + 0.5 - center);
          sum += w * vals[i];
          wsum += w;
        }
      double want = CLAMP (sum / wsum, 0, 255);
      g_assert_cmpfloat (fabs (big[x * 3] - want), <=, 1.0);
      g_assert_cmpuint (big[x * 3], ==, big[x * 3 + 2]);
    }
  /* a flat picture stays exactly flat, enlarged or mixed (one side shrinks) */
  g_autofree uint8_t *flat = make_pixels (37, 23, flat_grey);
  g_autofree uint8_t *up = dl_image_resize_rgb8 (flat, 37, 23, 64, 40);
  g_autofree uint8_t *mixed = dl_image_resize_rgb8 (flat, 37, 23, 20, 40);
  g_autofree uint8_t *down = dl_image_resize_rgb8 (flat, 37, 23, 20, 13);
  for (int i = 0; i < 64 * 40 * 3; i++)
    g_assert_cmpuint (up[i], ==, 128);
  for (int i = 0; i < 20 * 40 * 3; i++)
    g_assert_cmpuint (mixed[i], ==, 128);
  for (int i = 0; i < 20 * 13 * 3; i++)
    g_assert_cmpuint (down[i], ==, 128);
  /* the same size is a copy */
  g_autofree uint8_t *coords = make_pixels (5, 4, coordinates);
  g_autofree uint8_t *copy = dl_image_resize_rgb8 (coords, 5, 4, 5, 4);
  g_assert_cmpmem (copy, 5 * 4 * 3, coords, 5 * 4 * 3);
}

/* ---- pixels ---- */

static void
test_pixels_flat (void)
{
  g_autofree char *dir = make_dir ("flat");
  g_autoptr (GPtrArray) paths = path_list ();
  g_autofree char *a = g_build_filename (dir, "a.png", NULL);
  /* red 0, green 255, blue 51, with an alpha of 0 that is dropped, not composited */
  uint8_t rgba[40 * 40 * 4];
  for (int i = 0; i < 40 * 40; i++)
    {
      rgba[i * 4] = 0;
      rgba[i * 4 + 1] = 255;
      rgba[i * 4 + 2] = 51;
      rgba[i * 4 + 3] = 0;
    }
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_png_write (a, rgba, 40, 40, 4, NULL, &error));
  g_ptr_array_add (paths, g_strdup (a));
  g_autoptr (DlTrainImages) images = load (paths, &(DlTrainImagesOptions){ .resolution = 64 }, NULL);
  if (!images)
    return;
  g_autofree float *px = dl_train_images_load_pixels (images, 0, FALSE, &error); /* enlarged 40 -> 64 */
  g_assert_no_error (error);
  if (!px)
    return;
  const float want[3] = { -1.0f, 1.0f, 51.0f / 127.5f - 1.0f };
  gsize bad = 0;
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 64 * 64; i++)
      bad += px[c * 64 * 64 + i] != want[c];
  g_assert_cmpuint (bad, ==, 0);
  g_assert_cmpfloat (px[0], ==, -1.0f);
  g_assert_cmpfloat (px[64 * 64], ==, 1.0f);
}

static void
test_crop_and_flip (void)
{
  g_autofree char *dir = make_dir ("crop");
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, write_png (dir, "a-wide.png", 96, 64, coordinates));
  g_ptr_array_add (paths, write_png (dir, "b-tall.png", 64, 81, coordinates));
  g_autoptr (DlTrainImages) images = load (paths, &(DlTrainImagesOptions){ .resolution = 64 }, NULL);
  if (!images)
    return;
  const DlTrainImage *wide = dl_train_images_get (images, 0), *tall = dl_train_images_get (images, 1);
  /* no resize (the shorter side is 64 already); centred: (96 - 64) / 2, (81 - 64) // 2 */
  g_assert_cmpint (wide->resized_width, ==, 96);
  g_assert_cmpint (wide->crop_x, ==, 16);
  g_assert_cmpint (wide->crop_y, ==, 0);
  g_assert_cmpint (tall->resized_height, ==, 81);
  g_assert_cmpint (tall->crop_x, ==, 0);
  g_assert_cmpint (tall->crop_y, ==, 8);

  g_autoptr (GError) error = NULL;
  g_autofree float *plain = dl_train_images_load_pixels (images, 0, FALSE, &error);
  g_autofree float *flipped = dl_train_images_load_pixels (images, 0, TRUE, &error);
  g_autofree float *tall_px = dl_train_images_load_pixels (images, 1, FALSE, &error);
  g_assert_no_error (error);
  if (!plain || !flipped || !tall_px)
    return;
  gsize bad = 0;
  const gsize plane = 64 * 64;
  for (int y = 0; y < 64; y++)
    for (int x = 0; x < 64; x++)
      {
        gsize i = (gsize)y * 64 + x;
        bad += plain[i] != (float)(x + 16) / 127.5f - 1.0f;
        bad += plain[plane + i] != (float)y / 127.5f - 1.0f;
        bad += plain[2 * plane + i] != 7.0f / 127.5f - 1.0f;
        bad += flipped[i] != (float)(63 - x + 16) / 127.5f - 1.0f;
        bad += flipped[plane + i] != plain[plane + i];
        bad += tall_px[i] != (float)x / 127.5f - 1.0f;
        bad += tall_px[plane + i] != (float)(y + 8) / 127.5f - 1.0f;
      }
  g_assert_cmpuint (bad, ==, 0);
}

static void
test_random_crop (void)
{
  g_autofree char *dir = make_dir ("random-crop");
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, write_png (dir, "wide.png", 200, 64, coordinates));
  DlTrainImagesOptions options = { .resolution = 64, .random_crop = TRUE, .seed = 1 };
  g_autoptr (DlTrainImages) a = load (paths, &options, NULL);
  g_autoptr (DlTrainImages) again = load (paths, &options, NULL);
  if (!a || !again)
    return;
  int x = dl_train_images_get (a, 0)->crop_x;
  g_assert_cmpint (dl_train_images_get (again, 0)->crop_x, ==, x);
  g_assert_cmpint (dl_train_images_get (a, 0)->crop_y, ==, 0);
  g_assert_cmpint (x, >=, 0);
  g_assert_cmpint (x, <=, 136);
  /* other seeds give other offsets */
  gboolean differs = FALSE;
  for (guint64 seed = 2; seed < 10; seed++)
    {
      options.seed = seed;
      g_autoptr (DlTrainImages) other = load (paths, &options, NULL);
      if (other)
        differs |= dl_train_images_get (other, 0)->crop_x != x;
    }
  g_assert_true (differs);
  /* and the pixels follow the offset */
  g_autoptr (GError) error = NULL;
  g_autofree float *px = dl_train_images_load_pixels (a, 0, FALSE, &error);
  g_assert_no_error (error);
  if (px)
    g_assert_cmpfloat (px[5], ==, (float)(x + 5) / 127.5f - 1.0f);
}

/* A JPEG whose EXIF says "rotate 90° clockwise to view" (6) is used upright:
 * the stored left half (red) ends up on top. */
static void
test_exif_orientation (void)
{
  g_autofree char *dir = make_dir ("exif");
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 48, 24);
  gdk_pixbuf_fill (pb, 0x0000ffff);
  g_autoptr (GdkPixbuf) left = gdk_pixbuf_new_subpixbuf (pb, 0, 0, 24, 24);
  gdk_pixbuf_fill (left, 0xff0000ff);
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, write_jpeg (dir, "rotated.jpg", pb, 6));
  g_ptr_array_add (paths, write_jpeg (dir, "upright.jpg", pb, 1));
  g_autoptr (DlTrainImages) images = load (paths, &(DlTrainImagesOptions){ .resolution = 24 }, NULL);
  if (!images)
    return;
  const DlTrainImage *rotated = dl_train_images_get (images, 0), *upright = dl_train_images_get (images, 1);
  g_assert_cmpint (rotated->width, ==, 24);
  g_assert_cmpint (rotated->height, ==, 48);
  g_assert_cmpint (rotated->crop_y, ==, 12);
  g_assert_cmpint (upright->width, ==, 48);
  g_assert_cmpint (upright->height, ==, 24);

  g_autoptr (GError) error = NULL;
  g_autofree float *px = dl_train_images_load_pixels (images, 0, FALSE, &error);
  g_assert_no_error (error);
  if (!px)
    return;
  const gsize plane = 24 * 24;
  /* crop rows 12..35 of 48: red above row 24, blue below (JPEG: nearly) */
  gsize top = 2 * 24 + 12, bottom = 21 * 24 + 12;
  g_assert_cmpfloat (px[top], >, 0.9f);
  g_assert_cmpfloat (px[2 * plane + top], <, -0.9f);
  g_assert_cmpfloat (px[bottom], <, -0.9f);
  g_assert_cmpfloat (px[2 * plane + bottom], >, 0.9f);
}

/* The image files themselves: a missing file says so; the hash is the file's. */
static void
test_image_file (void)
{
  g_autofree char *dir = make_dir ("file");
  g_autofree char *path = write_flat_png (dir, "a.png", 5, 4);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlImageFile) file = dl_image_file_read (path, NULL, &error);
  g_assert_no_error (error);
  if (!file)
    return;
  g_assert_cmpstr (file->format, ==, "png");
  g_assert_cmpint (gdk_pixbuf_get_width (file->pixbuf), ==, 5);
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *)contents, len);
  g_assert_cmpstr (file->content_hash, ==, sha);

  g_autofree char *gone = g_build_filename (dir, "gone.png", NULL);
  g_autoptr (DlImageFile) none = dl_image_file_read (gone, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* files cut short: a JPEG without its end marker (anywhere in its last scan),
   * a WebP shorter than its RIFF header says; whole files and other formats pass */
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 16, 16);
  gdk_pixbuf_fill (pb, 0x808080ff);
  g_autofree char *jpeg = NULL;
  gsize jlen = 0;
  g_assert_true (gdk_pixbuf_save_to_buffer (pb, &jpeg, &jlen, "jpeg", &error, NULL));
  const guint8 *j = (const guint8 *)jpeg;
  g_assert_true (dl_image_file_is_whole ("jpeg", j, jlen, &error));
  g_assert_no_error (error);
  for (gsize cut = jlen - 2; cut > jlen / 2; cut -= 7)
    {
      g_assert_false (dl_image_file_is_whole ("jpeg", j, cut, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_clear_error (&error);
    }
  g_assert_true (dl_image_file_is_whole ("png", j, jlen - 2, &error));
  const guint8 riff[16] = { 'R', 'I', 'F', 'F', 100, 0, 0, 0, 'W', 'E', 'B', 'P', 0, 0, 0, 0 };
  g_assert_false (dl_image_file_is_whole ("webp", riff, sizeof riff, &error));
  g_assert_nonnull (error ? strstr (error->message, "16 of 108 bytes") : NULL);
  g_clear_error (&error);

  /* a file changed after the dataset was read is not used with stale sizes */
  g_autoptr (GPtrArray) paths = path_list ();
  g_ptr_array_add (paths, g_strdup (path));
  g_autoptr (DlTrainImages) images = load (paths, &(DlTrainImagesOptions){ .resolution = 8 }, NULL);
  if (!images)
    return;
  g_free (write_flat_png (dir, "a.png", 9, 9));
  g_autofree float *px = dl_train_images_load_pixels (images, 0, FALSE, &error);
  g_assert_null (px);
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_assert_nonnull (error ? strstr (error->message, "a.png") : NULL);
}

/* The reference runs' instance images: names in order, captions, and pixels
 * exactly libpng's bytes / 127.5 - 1. */
static void
test_golden_instance_images (void)
{
  g_autofree char *dir = dl_test_golden_path ("train/data/instance");
  if (!dir)
    {
      g_test_skip ("../shared/golden/train/data/instance is absent");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) paths = dl_train_images_list_folder (dir, &error);
  g_assert_no_error (error);
  if (!paths)
    return;
  g_assert_cmpuint (paths->len, ==, 4);
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (DlTrainImages) images = load (paths, &(DlTrainImagesOptions){ .resolution = 32 }, warnings);
  if (!images)
    return;
  g_assert_cmpuint (warnings->len, ==, 0);
  g_assert_cmpuint (dl_train_images_get_n (images), ==, 4);
  g_assert_cmpuint (dl_train_images_get_n_buckets (images), ==, 1);
  static const char *const captions[] = { "a photo of sks dog", "sks dog on grass", "a sks dog in the snow",
                                          "close-up photo of sks dog" };
  for (guint i = 0; i < MIN (4, dl_train_images_get_n (images)); i++)
    {
      const DlTrainImage *image = dl_train_images_get (images, i);
      g_autofree char *name = g_strdup_printf ("%02u.png", i);
      g_assert_cmpstr (image->name, ==, name);
      g_assert_cmpstr (image->caption, ==, captions[i]);
      g_assert_cmpint (image->width, ==, 32);
      g_assert_cmpint (image->bucket_width, ==, 32);
      g_assert_cmpint (image->crop_x, ==, 0);

      int w = 0, h = 0;
      g_autofree uint8_t *rgba = dl_png_read_rgba (image->path, &w, &h, NULL, &error);
      g_assert_no_error (error);
      g_autofree float *px = dl_train_images_load_pixels (images, i, FALSE, &error);
      g_assert_no_error (error);
      if (!rgba || !px || w != 32 || h != 32)
        continue;
      gsize bad = 0;
      for (int c = 0; c < 3; c++)
        for (int p = 0; p < 32 * 32; p++)
          bad += px[c * 32 * 32 + p] != (float)rgba[p * 4 + c] / 127.5f - 1.0f;
      g_assert_cmpuint (bad, ==, 0);
    }
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  base_tmp_dir = g_dir_make_tmp ("dl-test-train-images-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  dl_test_add ("/train/images/buckets-for-resolution", test_buckets_for_resolution);
  dl_test_add ("/train/images/buckets-select", test_buckets_select);
  dl_test_add ("/train/images/dataset-buckets", test_dataset_buckets);
  dl_test_add ("/train/images/list-folder", test_list_folder);
  dl_test_add ("/train/images/sorting", test_sorting);
  dl_test_add ("/train/images/skipped", test_skipped);
  dl_test_add ("/train/images/no-usable-image", test_no_usable_image);
  dl_test_add ("/train/images/bad-options", test_bad_options);
  dl_test_add ("/train/images/captions", test_captions);
  dl_test_add ("/train/images/caption-file-names", test_caption_file_names);
  dl_test_add ("/train/images/caption-augment", test_caption_augment);
  dl_test_add ("/train/images/resize-area", test_resize_area);
  dl_test_add ("/train/images/resize-lanczos", test_resize_lanczos);
  dl_test_add ("/train/images/pixels-flat", test_pixels_flat);
  dl_test_add ("/train/images/crop-and-flip", test_crop_and_flip);
  dl_test_add ("/train/images/random-crop", test_random_crop);
  dl_test_add ("/train/images/exif-orientation", test_exif_orientation);
  dl_test_add ("/train/images/image-file", test_image_file);
  dl_test_add ("/train/images/golden-instance-images", test_golden_instance_images);
  int ret = dl_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  return ret;
}
