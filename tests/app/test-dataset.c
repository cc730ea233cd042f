/* The dataset page in a real window under Xvfb: files dropped on the window (a real
 * GdkFileList with good, rotated, broken and foreign pictures and a folder),
 * captions edited in the grid and written to their sidecar files, the project file
 * written and read back, images that went missing, and undoing a removal.  Every
 * picture is made by the test itself. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "app-test-util.h"
#include "dl-application.h"
#include "dl-error.h"
#include "dl-file-writer.h"
#include "dl-image-tile.h"
#include "dl-thumbnail.h"
#include "dl-window.h"

static DlApplication *app;

typedef struct
{
  char *dir;
  DlWindow *win;
  DlDatasetPage *page;
  DlProject *project; /* the window's */
} Fixture;

static char *
path_in (Fixture *f, const char *name)
{
  return g_build_filename (f->dir, name, NULL);
}

static void
setup (Fixture *f, gconstpointer data)
{
  f->dir = app_test_make_dir ("dataset");
  f->win = dl_window_new (app);
  gtk_window_present (GTK_WINDOW (f->win));
  f->page = dl_window_get_dataset_page (f->win);
  g_autofree char *path = path_in (f, "Dogs.dreamloom");
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_assert_true (dl_window_create_project (f->win, file, "sks", "dog"));
  f->project = dl_window_get_project (f->win);
  g_assert_nonnull (f->project);
  g_assert_cmpstr (dl_window_get_view (f->win), ==, "project");
}

static void
teardown (Fixture *f, gconstpointer data)
{
  gpointer weak = f->win;
  g_object_add_weak_pointer (G_OBJECT (f->win), &weak);
  gtk_window_destroy (GTK_WINDOW (f->win));
  /* the GPU probe holds the window until it reports */
  APP_TEST_WAIT_UNTIL (weak == NULL, 30);
  dl_file_writer_wait ();
  app_test_run_for (20);
  app_test_rmtree (f->dir);
  g_free (f->dir);
}

static gboolean
import_done (gpointer data)
{
  Fixture *f = data;
  return dl_dataset_page_get_n_importing (f->page) == 0 && dl_project_get_n_loading (f->project) == 0;
}

static void
wait_import (Fixture *f)
{
  g_assert_true (app_test_wait (import_done, f, 30));
}

static DlDatasetImage *
image_at (Fixture *f, guint i)
{
  GListModel *images = dl_project_get_images (f->project);
  g_assert_cmpuint (i, <, g_list_model_get_n_items (images));
  DlDatasetImage *image = g_list_model_get_item (images, i);
  g_object_unref (image); /* the project keeps it */
  return image;
}

static DlDatasetImage *
image_named (Fixture *f, const char *name)
{
  GListModel *images = dl_project_get_images (f->project);
  for (guint i = 0; i < g_list_model_get_n_items (images); i++)
    if (g_str_equal (dl_dataset_image_get_display_name (image_at (f, i)), name))
      return image_at (f, i);
  g_error ("no image named %s in the project", name);
}

static gboolean
tile_shows (GtkWidget *tile, gconstpointer image)
{
  return dl_image_tile_get_image (DL_IMAGE_TILE (tile)) == image;
}

static DlImageTile *
find_tile_in (GtkWidget *widget, DlDatasetImage *image)
{
  return (DlImageTile *)app_test_find_widget (widget, DL_TYPE_IMAGE_TILE, tile_shows, image);
}

typedef struct
{
  Fixture *f;
  DlDatasetImage *image;
  DlImageTile *tile;
} TileSearch;

static gboolean
tile_shown (gpointer data)
{
  TileSearch *s = data;
  s->tile = find_tile_in (GTK_WIDGET (s->f->page), s->image);
  return s->tile != NULL;
}

/* The grid makes tiles when it lays out. */
static DlImageTile *
tile_for (Fixture *f, DlDatasetImage *image)
{
  TileSearch s = { f, image, NULL };
  g_assert_true (app_test_wait (tile_shown, &s, 10));
  return s.tile;
}

static char *
read_file (const char *path)
{
  char *contents = NULL;
  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  return contents;
}

static gboolean
file_has (const char *path, const char *text)
{
  g_autofree char *contents = read_file (path);
  return contents && strstr (contents, text);
}

static void
note_loaded (DlWindow *win, DlProject *project, gpointer data)
{
  *(gboolean *)data = TRUE;
}

/* Open through the window, as Open and the recent list do, and wait for it. */
static void
open_and_wait (Fixture *f, GFile *file)
{
  gboolean loaded = FALSE;
  gulong id = g_signal_connect (f->win, "project-loaded", G_CALLBACK (note_loaded), &loaded);
  dl_window_open_file (f->win, file);
  APP_TEST_WAIT_UNTIL (loaded, 10);
  g_signal_handler_disconnect (f->win, id);
  f->project = dl_window_get_project (f->win);
}

/* ---- dropping ---- */

static void
test_drop (Fixture *f, gconstpointer data)
{
  g_autofree char *a = path_in (f, "a.png");
  g_autofree char *a_txt = path_in (f, "a.txt");
  g_autofree char *b = path_in (f, "b.jpg");
  g_autofree char *broken = path_in (f, "broken.png");
  g_autofree char *gif = path_in (f, "really-a-gif.png");
  g_autofree char *notes = path_in (f, "notes.txt");
  g_autofree char *sub = path_in (f, "sub");
  g_autofree char *c = g_build_filename (sub, "c.png", NULL);
  g_autofree char *d = g_build_filename (sub, "d.png", NULL);
  g_autofree char *hidden = g_build_filename (sub, ".hidden.png", NULL);
  g_autofree char *readme = g_build_filename (sub, "readme.txt", NULL);
  g_mkdir (sub, 0755);
  app_test_write_png (a, 600, 600, 1);
  /* written by another tool: white space and a line break in it */
  app_test_write_file (a_txt, "  a photo\nof sks dog \n");
  /* 400 × 200 as stored, held upright: EXIF orientation 6 (rotate 90°) */
  app_test_write_jpeg (b, 400, 200, 2, 6);
  app_test_write_file (broken, "this is not a picture at all");
  static const guint8 gif89[] = { 'G',  'I', 'F', '8', '9',  'a',  1, 0, 1, 0,    0x80, 0, 0,    0xFF, 0xFF,
                                  0xFF, 0,   0,   0,   0x21, 0xF9, 4, 1, 0, 0,    0,    0, 0x2C, 0,    0,
                                  0,    0,   1,   0,   1,    0,    0, 2, 2, 0x44, 1,    0, 0x3B };
  g_assert_true (g_file_set_contents (gif, (const char *)gif89, sizeof gif89, NULL));
  app_test_write_file (notes, "not an image");
  app_test_write_png (c, 64, 64, 3);
  g_autofree char *a_bytes = NULL;
  gsize a_len;
  g_assert_true (g_file_get_contents (a, &a_bytes, &a_len, NULL));
  g_assert_true (g_file_set_contents (d, a_bytes, (gssize)a_len, NULL)); /* the same picture again */
  app_test_write_png (hidden, 600, 600, 4);
  app_test_write_file (readme, "about these pictures");

  g_assert_true (app_test_drop_files (dl_window_get_drop_target (f->win), a, b, broken, gif, notes, sub, NULL));
  wait_import (f);

  /* as dropped, then the folder's pictures by name; hidden files and text skipped */
  GListModel *images = dl_project_get_images (f->project);
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 6);
  const char *order[] = { "a.png", "b.jpg", "broken.png", "really-a-gif.png", "c.png", "d.png" };
  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, i)), ==, order[i]);
  g_assert_cmpstr (dl_dataset_page_get_last_toast (f->page), ==,
                   "Added 6 images · 1 file skipped: not a PNG, JPEG or WebP image");

  DlDatasetImage *ia = image_named (f, "a.png");
  g_assert_cmpint (dl_dataset_image_get_state (ia), ==, DL_IMAGE_STATE_READY);
  g_assert_cmpint (dl_dataset_image_get_width (ia), ==, 600);
  g_assert_cmpstr (dl_dataset_image_get_caption (ia), ==, "a photo of sks dog");
  g_assert_null (dl_dataset_image_get_warning (ia));
  /* the window's thumbnail of it: made once the project has decoded it */
  DlThumbnail *ta = dl_thumbnail_for_image (ia);
  APP_TEST_WAIT_UNTIL (dl_thumbnail_get_texture (ta) != NULL, 10);
  g_assert_cmpint (gdk_texture_get_width (dl_thumbnail_get_texture (ta)), ==, 320);
  g_assert_true (dl_thumbnail_for_image (ia) == ta);

  DlDatasetImage *ib = image_named (f, "b.jpg");
  g_assert_cmpint (dl_dataset_image_get_state (ib), ==, DL_IMAGE_STATE_READY);
  g_assert_cmpint (dl_dataset_image_get_width (ib), ==, 200);
  g_assert_cmpint (dl_dataset_image_get_height (ib), ==, 400);
  DlThumbnail *tb = dl_thumbnail_for_image (ib);
  APP_TEST_WAIT_UNTIL (dl_thumbnail_get_texture (tb) != NULL, 10);
  /* upright as the EXIF orientation says, at most 320 px */
  g_assert_cmpint (gdk_texture_get_height (dl_thumbnail_get_texture (tb)), ==, 320);
  g_assert_cmpint (gdk_texture_get_width (dl_thumbnail_get_texture (tb)), ==, 160);
  /* shorter side 200 < 512 */
  g_assert_true (dl_dataset_image_get_too_small (ib));

  DlDatasetImage *ibroken = image_named (f, "broken.png");
  g_assert_cmpint (dl_dataset_image_get_state (ibroken), ==, DL_IMAGE_STATE_UNREADABLE);
  g_assert_cmpstr (dl_dataset_image_get_error (ibroken), ==, "Not a PNG, JPEG or WebP image");
  DlDatasetImage *igif = image_named (f, "really-a-gif.png");
  g_assert_cmpint (dl_dataset_image_get_state (igif), ==, DL_IMAGE_STATE_UNREADABLE);
  g_assert_cmpstr (dl_dataset_image_get_error (igif), ==, "GIF images are not supported; use PNG, JPEG or WebP");

  DlDatasetImage *ic = image_named (f, "c.png");
  g_assert_cmpstr (dl_dataset_image_get_warning (ic), ==, "Too small for 512 px training (shorter side 64 px)");
  DlDatasetImage *id = image_named (f, "d.png");
  g_assert_cmpstr (dl_dataset_image_get_duplicate_of (id), ==, "a.png");

  g_assert_cmpuint (dl_project_get_n_unreadable (f->project), ==, 2);
  g_assert_cmpuint (dl_project_get_n_warnings (f->project), ==, 3); /* b, c, d */
  g_assert_cmpuint (dl_project_get_n_missing (f->project), ==, 0);

  /* the grid says it too */
  DlImageTile *tile = tile_for (f, ibroken);
  g_assert_cmpstr (dl_image_tile_get_problem_text (tile), ==, "Not a PNG, JPEG or WebP image");
  tile = tile_for (f, ib);
  g_assert_cmpstr (dl_image_tile_get_meta_text (tile), ==, "200 × 400 · JPEG");

  /* the training resolution decides what is too small */
  dl_project_set_resolution (f->project, 128);
  app_test_run_for (10);
  g_assert_false (dl_dataset_image_get_too_small (ib));
  g_assert_cmpstr (dl_dataset_image_get_warning (ic), ==, "Too small for 128 px training (shorter side 64 px)");

  /* dropped again: nothing twice */
  g_assert_true (app_test_drop_files (dl_window_get_drop_target (f->win), a, b, NULL));
  wait_import (f);
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 6);
  g_assert_cmpstr (dl_dataset_page_get_last_toast (f->page), ==, "2 already in the dataset");

  /* dropping a project file opens it rather than adding it */
  g_autofree char *other = path_in (f, "Other.dreamloom");
  {
    g_autoptr (GFile) other_file = g_file_new_for_path (other);
    g_autoptr (DlProject) p = dl_project_new (other_file);
    dl_project_set_token (p, "zwx");
    g_assert_true (dl_project_save (p, NULL));
  }
  g_assert_true (app_test_drop_files (dl_window_get_drop_target (f->win), other, NULL));
  APP_TEST_WAIT_UNTIL (g_strcmp0 (dl_project_get_token (dl_window_get_project (f->win)), "zwx") == 0, 10);
  f->project = dl_window_get_project (f->win);
}

/* ---- WebP ---- */

static void
test_webp (Fixture *f, gconstpointer data)
{
  g_autofree char *w = path_in (f, "w.webp");
  if (!app_test_write_webp (w, 768, 576, 5))
    {
      /* without the loader WebP cannot work at all: say so, never pass */
      g_test_skip ("gdk-pixbuf has no WebP loader here (Debian: webp-pixbuf-loader)");
      return;
    }
  /* the same picture cut short, as an interrupted download leaves it */
  g_autofree char *w_bytes = NULL;
  gsize w_len = 0;
  g_assert_true (g_file_get_contents (w, &w_bytes, &w_len, NULL));
  g_assert_true (w_len > 64 && memcmp (w_bytes, "RIFF", 4) == 0 && memcmp (w_bytes + 8, "WEBP", 4) == 0);
  g_autofree char *cut = path_in (f, "cut.webp");
  g_assert_true (g_file_set_contents (cut, w_bytes, (gssize)(w_len / 2), NULL));

  g_assert_true (app_test_drop_files (dl_window_get_drop_target (f->win), w, cut, NULL));
  wait_import (f);
  g_assert_cmpuint (g_list_model_get_n_items (dl_project_get_images (f->project)), ==, 2);

  DlDatasetImage *iw = image_named (f, "w.webp");
  g_assert_cmpint (dl_dataset_image_get_state (iw), ==, DL_IMAGE_STATE_READY);
  g_assert_cmpint (dl_dataset_image_get_width (iw), ==, 768);
  g_assert_cmpint (dl_dataset_image_get_height (iw), ==, 576);
  g_assert_null (dl_dataset_image_get_warning (iw));
  DlThumbnail *tw = dl_thumbnail_for_image (iw);
  APP_TEST_WAIT_UNTIL (dl_thumbnail_get_texture (tw) != NULL, 10);
  GdkTexture *thumb = dl_thumbnail_get_texture (tw);
  g_assert_cmpint (gdk_texture_get_width (thumb), ==, 320);
  g_assert_cmpint (gdk_texture_get_height (thumb), ==, 240);
  g_assert_true (app_test_texture_has_content (thumb));
  /* its alpha kept: opaque on the left, mostly see-through on the right */
  g_autofree guchar *rgba = app_test_texture_rgba (thumb);
  for (int y = 10; y < 240; y += 50)
    {
      g_assert_cmpint (rgba[(y * 320 + 40) * 4 + 3], ==, 255);
      g_assert_cmpint (ABS ((int)rgba[(y * 320 + 280) * 4 + 3] - 64), <=, 4);
    }
  DlImageTile *tile = tile_for (f, iw);
  g_assert_cmpstr (dl_image_tile_get_meta_text (tile), ==, "768 × 576 · WebP");

  /* the cut one is listed with its reason, nothing more */
  DlDatasetImage *icut = image_named (f, "cut.webp");
  g_assert_cmpint (dl_dataset_image_get_state (icut), ==, DL_IMAGE_STATE_UNREADABLE);
  g_test_message ("cut.webp: %s", dl_dataset_image_get_error (icut));
  g_assert_true (g_str_has_prefix (dl_dataset_image_get_error (icut), "The image is damaged"));
  g_assert_cmpuint (dl_project_get_n_unreadable (f->project), ==, 1);
}

/* ---- JPEG cut short ---- */

static void
test_jpeg_cut (Fixture *f, gconstpointer data)
{
  g_autofree char *whole = path_in (f, "whole.jpg");
  app_test_write_jpeg (whole, 640, 480, 3, 1);
  g_autofree char *bytes = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (whole, &bytes, &len, NULL));
  g_assert_true (len > 1000 && (guchar)bytes[len - 2] == 0xFF && (guchar)bytes[len - 1] == 0xD9);

  /* cut at three quarters: libjpeg alone would show it with a grey bottom */
  g_autofree char *cut = path_in (f, "cut.jpg");
  g_assert_true (g_file_set_contents (cut, bytes, (gssize)(len * 3 / 4), NULL));
  /* cut just before the end marker */
  g_autofree char *no_eoi = path_in (f, "no-eoi.jpg");
  g_assert_true (g_file_set_contents (no_eoi, bytes, (gssize)(len - 2), NULL));

  /* whole, with a comment segment holding an end marker and bytes after the
   * real end, as some cameras write: still whole */
  GByteArray *odd = g_byte_array_new ();
  g_byte_array_append (odd, (const guint8 *)bytes, 2);
  const guint8 com[] = { 0xFF, 0xFE, 0x00, 0x06, 0xFF, 0xD9, 'h', 'i' };
  g_byte_array_append (odd, com, sizeof com);
  g_byte_array_append (odd, (const guint8 *)bytes + 2, (guint)(len - 2));
  const guint8 trailer[] = { 'C', 'A', 'M', 0, 1, 2, 3 };
  g_byte_array_append (odd, trailer, sizeof trailer);
  g_autofree char *tail = path_in (f, "tail.jpg");
  g_assert_true (g_file_set_contents (tail, (const char *)odd->data, odd->len, NULL));
  /* and the same cut inside the scan, where the comment's end marker must not count */
  g_autofree char *tail_cut = path_in (f, "tail-cut.jpg");
  g_assert_true (g_file_set_contents (tail_cut, (const char *)odd->data, (gssize)(odd->len / 2), NULL));
  g_byte_array_unref (odd);

  g_assert_true (app_test_drop_files (dl_window_get_drop_target (f->win), whole, cut, no_eoi, tail, tail_cut, NULL));
  wait_import (f);
  g_assert_cmpuint (g_list_model_get_n_items (dl_project_get_images (f->project)), ==, 5);
  const char *good[] = { "whole.jpg", "tail.jpg" };
  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      DlDatasetImage *img = image_named (f, good[i]);
      g_assert_cmpint (dl_dataset_image_get_state (img), ==, DL_IMAGE_STATE_READY);
      g_assert_cmpint (dl_dataset_image_get_width (img), ==, 640);
    }
  const char *bad[] = { "cut.jpg", "no-eoi.jpg", "tail-cut.jpg" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      DlDatasetImage *img = image_named (f, bad[i]);
      g_assert_cmpint (dl_dataset_image_get_state (img), ==, DL_IMAGE_STATE_UNREADABLE);
      g_test_message ("%s: %s", bad[i], dl_dataset_image_get_error (img));
      g_assert_true (g_str_has_prefix (dl_dataset_image_get_error (img), "The image is damaged"));
    }
  g_assert_cmpuint (dl_project_get_n_unreadable (f->project), ==, 3);
}

static void
test_drop_without_project (Fixture *f, gconstpointer data)
{
  dl_window_set_project (f->win, NULL);
  g_assert_cmpstr (dl_window_get_view (f->win), ==, "start");
  g_autofree char *a = path_in (f, "a.png");
  app_test_write_png (a, 32, 32, 1);
  g_assert_false (app_test_drop_files (dl_window_get_drop_target (f->win), a, NULL));
  g_assert_cmpstr (dl_window_get_view (f->win), ==, "start");
}

/* ---- pasting ---- */

static guint
n_images (Fixture *f)
{
  return g_list_model_get_n_items (dl_project_get_images (f->project));
}

static void
test_paste (Fixture *f, gconstpointer data)
{
  GdkClipboard *clipboard = gtk_widget_get_clipboard (GTK_WIDGET (f->page));
  g_autofree char *a = path_in (f, "a.png");
  g_autofree char *b = path_in (f, "b.jpg");
  app_test_write_png (a, 512, 512, 1);
  app_test_write_jpeg (b, 600, 520, 2, 0);

  /* files copied in a file manager */
  GSList *files = g_slist_prepend (NULL, g_file_new_for_path (a));
  GdkFileList *list = gdk_file_list_new_from_list (files);
  g_slist_free_full (files, g_object_unref);
  gdk_clipboard_set (clipboard, GDK_TYPE_FILE_LIST, list);
  g_boxed_free (GDK_TYPE_FILE_LIST, list);
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.paste", NULL);
  APP_TEST_WAIT_UNTIL (n_images (f) == 1, 10);
  wait_import (f);
  g_assert_cmpstr (dl_dataset_image_get_path (image_at (f, 0)), ==, a);

  /* a picture copied in an image editor: saved next to the project, then added */
  g_autoptr (GError) error = NULL;
  g_autoptr (GdkTexture) texture = gdk_texture_new_from_filename (b, &error);
  g_assert_no_error (error);
  gdk_clipboard_set_texture (clipboard, texture);
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.paste", NULL);
  APP_TEST_WAIT_UNTIL (n_images (f) == 2, 10);
  wait_import (f);
  DlDatasetImage *pasted = image_at (f, 1);
  g_autofree char *pasted_dir = g_path_get_dirname (dl_dataset_image_get_path (pasted));
  g_autofree char *expected_dir = path_in (f, "Dogs pasted images");
  g_assert_cmpstr (pasted_dir, ==, expected_dir);
  g_assert_true (g_str_has_prefix (dl_dataset_image_get_display_name (pasted), "pasted-"));
  g_assert_cmpint (dl_dataset_image_get_state (pasted), ==, DL_IMAGE_STATE_READY);
  g_assert_cmpint (dl_dataset_image_get_width (pasted), ==, 600);
  g_assert_cmpint (dl_dataset_image_get_height (pasted), ==, 520);

  /* paths as text, one a line; what is not there is left out */
  g_autofree char *text = g_strdup_printf ("/no/such/picture.png\n%s\n", b);
  gdk_clipboard_set_text (clipboard, text);
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.paste", NULL);
  APP_TEST_WAIT_UNTIL (n_images (f) == 3, 10);
  wait_import (f);
  g_assert_cmpstr (dl_dataset_image_get_path (image_at (f, 2)), ==, b);

  /* and text that is nothing of the kind */
  gdk_clipboard_set_text (clipboard, "just some words");
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.paste", NULL);
  APP_TEST_WAIT_UNTIL (
    g_strcmp0 (dl_dataset_page_get_last_toast (f->page), "The clipboard holds no images or image files") == 0, 10);
  g_assert_cmpuint (n_images (f), ==, 3);
}

/* ---- captions ---- */

static void
test_caption_sidecar (Fixture *f, gconstpointer data)
{
  g_autofree char *a = path_in (f, "a.png");
  g_autofree char *b = path_in (f, "b.png");
  g_autofree char *a_txt = path_in (f, "a.txt");
  g_autofree char *b_txt = path_in (f, "b.txt");
  app_test_write_png (a, 512, 512, 1);
  app_test_write_png (b, 512, 512, 2);
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (files, g_file_new_for_path (a));
  g_ptr_array_add (files, g_file_new_for_path (b));
  dl_dataset_page_add_files (f->page, files);
  wait_import (f);
  g_assert_false (g_file_test (a_txt, G_FILE_TEST_EXISTS));

  /* typed into the tile's caption entry */
  DlImageTile *tile = tile_for (f, image_named (f, "a.png"));
  gtk_editable_set_text (dl_image_tile_get_caption_editable (tile), "a photo of sks dog on the grass");
  g_assert_cmpstr (dl_dataset_image_get_caption (image_named (f, "a.png")), ==, "a photo of sks dog on the grass");
  /* one line, newline-terminated, as kohya's scripts write it */
  APP_TEST_WAIT_UNTIL (file_has (a_txt, "a photo of sks dog on the grass\n"), 10);
  g_autofree char *sidecar = read_file (a_txt);
  g_assert_cmpstr (sidecar, ==, "a photo of sks dog on the grass\n");

  /* the project file follows (autosave) */
  g_autofree char *project_path = g_file_get_path (dl_project_get_file (f->project));
  APP_TEST_WAIT_UNTIL (!dl_project_get_dirty (f->project) && file_has (project_path, "on the grass"), 10);

  /* the template fills the empty one */
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.fill-captions", NULL);
  g_assert_cmpstr (dl_dataset_image_get_caption (image_named (f, "b.png")), ==, "a photo of sks dog");
  g_assert_cmpstr (dl_dataset_image_get_caption (image_named (f, "a.png")), ==, "a photo of sks dog on the grass");
  g_assert_cmpstr (dl_dataset_page_get_last_toast (f->page), ==, "Filled 1 caption");
  APP_TEST_WAIT_UNTIL (file_has (b_txt, "a photo of sks dog\n"), 10);
  /* the tile shows what the project has */
  DlImageTile *btile = tile_for (f, image_named (f, "b.png"));
  g_assert_cmpstr (gtk_editable_get_text (dl_image_tile_get_caption_editable (btile)), ==, "a photo of sks dog");

  /* closing the project right after typing loses nothing */
  gtk_editable_set_text (dl_image_tile_get_caption_editable (tile), "last words & more");
  dl_window_set_project (f->win, NULL);
  dl_file_writer_wait ();
  g_autofree char *last = read_file (a_txt);
  g_assert_cmpstr (last, ==, "last words & more\n");
  g_assert_true (file_has (project_path, "last words & more"));
}

/* ---- the project file ---- */

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  g_autofree char *a = path_in (f, "a.png");
  g_autofree char *b = path_in (f, "b.jpg");
  app_test_write_png (a, 512, 512, 1);
  app_test_write_jpeg (b, 512, 640, 2, 0);
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (files, g_file_new_for_path (a));
  g_ptr_array_add (files, g_file_new_for_path (b));
  dl_dataset_page_add_files (f->page, files);
  wait_import (f);

  DlProject *p = f->project;
  dl_project_set_token (p, "  ohwx  "); /* kept trimmed */
  dl_project_set_class_word (p, "cat");
  dl_project_set_caption_template (p, "{token} {class}, photo");
  dl_project_set_resolution (p, 768);
  dl_project_set_base_model (p, "/models/v1-5 “pruned”.safetensors");
  dl_dataset_image_set_caption (image_at (f, 0), "first, with \"quotes\" and ünïcödé");
  const char *prompts[] = { "a photo of ohwx cat on a sofa", "ohwx cat, oil painting", NULL };
  dl_project_set_preview_prompts (p, prompts);
  dl_project_set_negative_prompt (p, "blurry");
  const guint templates[] = { 0, 3, 26 };
  dl_project_set_preview_templates (p, templates, G_N_ELEMENTS (templates));
  g_autoptr (GPtrArray) loras = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  g_ptr_array_add (loras, dl_project_lora_new ("/loras/cat.safetensors", 0.75));
  g_ptr_array_add (loras, dl_project_lora_new ("/loras/style.safetensors", -0.5));
  dl_project_set_loras (p, loras);
  g_assert_cmpstr (dl_project_get_token (p), ==, "ohwx");
  g_assert_true (dl_project_get_dirty (p));

  g_autoptr (GError) error = NULL;
  g_assert_true (dl_project_save (p, &error));
  g_assert_no_error (error);
  g_assert_false (dl_project_get_dirty (p));

  /* a later version's keys survive a save by this one; the training settings are
   * typed (edited as text: json-glib 1.6's generator would write 1e-08 as "1e-08.0") */
  g_autofree char *path = g_file_get_path (dl_project_get_file (p));
  {
    g_autofree char *text = NULL;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    g_autoptr (GString) edited = g_string_new (text);
    g_assert_cmpuint (g_string_replace (edited, "{", "{\n  \"future_feature\": \"kept\",", 1), ==, 1);
    g_assert_cmpuint (g_string_replace (edited, "\"training\": {", "\"training\": {\n    \"future_knob\": true,", 1),
                      ==, 1);
    /* the steps as saved (the Train page fits them to the dataset's size), edited to 1234 */
    g_autofree char *steps =
      g_strdup_printf ("\"steps\": %" G_GINT64_FORMAT ",", dl_project_get_train_settings (p)->steps);
    g_assert_cmpuint (g_string_replace (edited, steps, "\"steps\": 1234,", 1), ==, 1);
    g_assert_true (g_file_set_contents (path, edited->str, -1, NULL));
  }
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (DlProject) q = dl_project_load (file, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (dl_project_get_token (q), ==, "ohwx");
  g_assert_cmpstr (dl_project_get_class_word (q), ==, "cat");
  g_assert_cmpstr (dl_project_get_caption_template (q), ==, "{token} {class}, photo");
  g_assert_cmpint (dl_project_get_resolution (q), ==, 768);
  g_assert_cmpstr (dl_project_get_base_model (q), ==, "/models/v1-5 “pruned”.safetensors");
  g_assert_true (g_strv_equal (dl_project_get_preview_prompts (q), prompts));
  g_assert_cmpstr (dl_project_get_negative_prompt (q), ==, "blurry");
  GArray *qt = dl_project_get_preview_templates (q);
  g_assert_cmpuint (qt->len, ==, 3);
  g_assert_cmpuint (g_array_index (qt, guint, 2), ==, 26);
  GPtrArray *ql = dl_project_get_loras (q);
  g_assert_cmpuint (ql->len, ==, 2);
  g_assert_cmpstr (((DlProjectLora *)ql->pdata[1])->path, ==, "/loras/style.safetensors");
  g_assert_cmpfloat (((DlProjectLora *)ql->pdata[1])->strength, ==, -0.5);
  GListModel *qi = dl_project_get_images (q);
  g_assert_cmpuint (g_list_model_get_n_items (qi), ==, 2);
  g_autoptr (DlDatasetImage) q0 = g_list_model_get_item (qi, 0);
  g_assert_cmpstr (dl_dataset_image_get_path (q0), ==, a);
  g_assert_cmpstr (dl_dataset_image_get_caption (q0), ==, "first, with \"quotes\" and ünïcödé");
  g_assert_false (dl_project_get_dirty (q));
  g_autofree char *saved_again = dl_project_to_json (q);
  g_assert_nonnull (strstr (saved_again, "\"future_feature\": \"kept\""));
  g_assert_nonnull (strstr (saved_again, "\"future_knob\": true"));
  g_assert_cmpint (dl_project_get_train_settings (q)->steps, ==, 1234);
  g_assert_nonnull (strstr (saved_again, "\"steps\": 1234"));
  /* the images load on worker threads, as in the window */
  APP_TEST_WAIT_UNTIL (dl_project_get_n_loading (q) == 0, 20);
  g_assert_cmpint (dl_dataset_image_get_height (q0), ==, 512);

  /* through the window: Open puts it on screen */
  dl_window_set_project (f->win, NULL);
  open_and_wait (f, file);
  g_assert_cmpstr (dl_project_get_token (f->project), ==, "ohwx");
  g_assert_cmpstr (dl_window_get_view (f->win), ==, "project");
}

static void
check_load_error (Fixture *f, const char *contents, int code, const char *message)
{
  g_autofree char *path = path_in (f, "bad.dreamloom");
  app_test_write_file (path, contents);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlProject) p = dl_project_load (file, &error);
  g_assert_null (p);
  g_assert_error (error, DL_ERROR, code);
  if (message)
    g_assert_cmpstr (error->message, ==, message);
  else
    g_assert_true (g_str_has_prefix (error->message, "“bad.dreamloom” is not a valid project: "));
}

static void
test_bad_project_files (Fixture *f, gconstpointer data)
{
  check_load_error (f, "{ not json", DL_ERROR_INVALID_FILE, NULL);
}

static void
test_bad_project_files_messages (Fixture *f, gconstpointer data)
{
  check_load_error (f, "[1, 2]", DL_ERROR_INVALID_FILE,
                    "“bad.dreamloom” is not a valid project: the file does not hold a JSON object");
  check_load_error (f, "{\"format\": \"something-else\"}", DL_ERROR_INVALID_FILE,
                    "“bad.dreamloom” is not a Dreamloom project (it has no \"format\": \"dreamloom-project\")");
  check_load_error (
    f, "{\"format\": \"dreamloom-project\", \"version\": 9}", DL_ERROR_UNSUPPORTED,
    "“bad.dreamloom” was saved by a newer version of Dreamloom (project format 9; this version reads up to 1)");
  check_load_error (
    f, "{\"format\": \"dreamloom-project\", \"version\": 1, \"dataset\": {\"images\": [{\"caption\": \"x\"}]}}",
    DL_ERROR_INVALID_FILE, "“bad.dreamloom” is not a valid project: dataset.images[0] has no path");
  check_load_error (
    f, "{\"format\": \"dreamloom-project\", \"version\": 1, \"dataset\": {\"resolution\": 5}}", DL_ERROR_INVALID_FILE,
    "“bad.dreamloom” is not a valid project: dataset.resolution should be a whole number of pixels from 32 to 4096");

  /* the window says so and stays as it was */
  g_autofree char *path = path_in (f, "bad.dreamloom");
  g_autoptr (GFile) file = g_file_new_for_path (path);
  DlProject *before = dl_window_get_project (f->win);
  open_and_wait (f, file);
  g_assert_true (dl_window_get_project (f->win) == before);
}

/* ---- missing images ---- */

static void
test_missing (Fixture *f, gconstpointer data)
{
  g_autofree char *here = path_in (f, "here.png");
  g_autofree char *gone = path_in (f, "gone.png");
  g_autofree char *lost = path_in (f, "lost.png");
  app_test_write_png (here, 512, 512, 1);
  g_autofree char *project_path = path_in (f, "Moved.dreamloom");
  g_autofree char *json = g_strdup_printf (
    "{\"format\": \"dreamloom-project\", \"version\": 1, \"concept\": {\"token\": \"sks\", \"class\": \"dog\"},"
    " \"dataset\": {\"images\": [{\"path\": \"%s\", \"caption\": \"one\"}, {\"path\": \"%s\", \"caption\": \"two\"},"
    " {\"path\": \"%s\", \"caption\": \"three\"}]}}",
    here, gone, lost);
  app_test_write_file (project_path, json);

  /* opening does not fail: the missing ones are listed */
  g_autoptr (GFile) file = g_file_new_for_path (project_path);
  open_and_wait (f, file);
  g_assert_true (g_file_equal (dl_project_get_file (f->project), file));
  wait_import (f);
  g_assert_cmpuint (dl_project_get_n_missing (f->project), ==, 2);
  g_autoptr (GPtrArray) missing = dl_project_get_missing (f->project);
  g_assert_cmpuint (missing->len, ==, 2);
  g_assert_cmpstr (dl_dataset_image_get_display_name (missing->pdata[0]), ==, "gone.png");
  g_assert_cmpint (dl_dataset_image_get_state (image_named (f, "here.png")), ==, DL_IMAGE_STATE_READY);
  GtkRevealer *banner = GTK_REVEALER (app_test_find_widget (GTK_WIDGET (f->page), GTK_TYPE_REVEALER, NULL, NULL));
  g_assert_nonnull (banner);
  g_assert_true (gtk_revealer_get_reveal_child (banner));
  DlImageTile *tile = tile_for (f, image_named (f, "gone.png"));
  g_assert_cmpstr (dl_image_tile_get_problem_text (tile), ==, "Missing: the file was moved or deleted");
  /* nothing changed, nothing to save */
  g_assert_false (dl_project_get_dirty (f->project));

  /* the window's thumbnails: none for a missing file; remade when a file changes */
  g_assert_null (dl_thumbnail_get_texture (dl_thumbnail_for_image (image_named (f, "gone.png"))));
  DlThumbnail *thumb = dl_thumbnail_for_image (image_named (f, "here.png"));
  APP_TEST_WAIT_UNTIL (dl_thumbnail_get_texture (thumb) != NULL, 10);
  g_assert_cmpint (gdk_texture_get_width (dl_thumbnail_get_texture (thumb)), ==, 320);
  app_test_write_png (here, 256, 512, 3);
  dl_project_reload_images (f->project);
  wait_import (f);
  APP_TEST_WAIT_UNTIL (gdk_texture_get_width (dl_thumbnail_get_texture (thumb)) == 160, 10);
  g_assert_cmpint (gdk_texture_get_height (dl_thumbnail_get_texture (thumb)), ==, 320);

  /* found in another folder: same place in the list, same caption */
  g_autofree char *moved_dir = path_in (f, "moved");
  g_mkdir (moved_dir, 0755);
  g_autofree char *moved = g_build_filename (moved_dir, "gone.png", NULL);
  app_test_write_png (moved, 512, 512, 2);
  g_autoptr (GPtrArray) candidates = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (candidates, g_file_new_for_path (moved));
  g_assert_cmpuint (dl_project_relocate_missing (f->project, candidates), ==, 1);
  wait_import (f);
  DlDatasetImage *found = image_at (f, 1);
  g_assert_cmpstr (dl_dataset_image_get_path (found), ==, moved);
  g_assert_cmpstr (dl_dataset_image_get_caption (found), ==, "two");
  g_assert_cmpint (dl_dataset_image_get_state (found), ==, DL_IMAGE_STATE_READY);
  g_assert_cmpuint (dl_project_get_n_missing (f->project), ==, 1);

  /* the rest removed from the banner's action, which can be undone */
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.remove-missing", NULL);
  g_assert_cmpuint (g_list_model_get_n_items (dl_project_get_images (f->project)), ==, 2);
  g_assert_cmpstr (dl_dataset_page_get_last_toast (f->page), ==, "Removed 1 missing image");
  app_test_run_for (10);
  g_assert_false (gtk_revealer_get_reveal_child (banner));
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.undo-remove", NULL);
  g_assert_cmpuint (g_list_model_get_n_items (dl_project_get_images (f->project)), ==, 3);
  g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, 2)), ==, "lost.png");
}

/* ---- removing and undoing ---- */

static void
test_undo_removal (Fixture *f, gconstpointer data)
{
  const char *names[] = { "a.png", "b.png", "c.png", "d.png" };
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = path_in (f, names[i]);
      app_test_write_png (p, 512, 512, i + 1);
      g_ptr_array_add (files, g_file_new_for_path (p));
    }
  dl_dataset_page_add_files (f->page, files);
  wait_import (f);
  GListModel *images = dl_project_get_images (f->project);
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 4);
  dl_dataset_image_set_caption (image_at (f, 2), "the third");

  /* select b and c in the grid, press Delete (the action it is bound to) */
  DlImageTile *tile = tile_for (f, image_at (f, 0));
  GtkGridView *grid = GTK_GRID_VIEW (gtk_widget_get_ancestor (GTK_WIDGET (tile), GTK_TYPE_GRID_VIEW));
  GtkSelectionModel *selection = gtk_grid_view_get_model (grid);
  gtk_selection_model_select_item (selection, 1, TRUE);
  gtk_selection_model_select_item (selection, 2, FALSE);
  g_assert_false (dl_project_can_undo_remove (f->project));
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.remove-selected", NULL);
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 2);
  g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, 1)), ==, "d.png");
  g_assert_cmpstr (dl_dataset_page_get_last_toast (f->page), ==, "Removed 2 images");
  g_assert_true (dl_project_can_undo_remove (f->project));

  /* the toast's Undo button */
  AdwToast *toast = dl_dataset_page_get_toast (f->page);
  g_assert_nonnull (toast);
  g_assert_cmpstr (adw_toast_get_button_label (toast), ==, "_Undo");
  g_signal_emit_by_name (toast, "button-clicked");
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 4);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, i)), ==, names[i]);
  g_assert_cmpstr (dl_dataset_image_get_caption (image_at (f, 2)), ==, "the third");
  g_assert_cmpstr (dl_dataset_page_get_last_toast (f->page), ==, "Restored 2 images");
  g_assert_false (dl_project_can_undo_remove (f->project));
  /* a restored image is in the project again: adding it once more adds nothing */
  g_autoptr (GFile) b = g_file_new_for_path (dl_dataset_image_get_path (image_at (f, 1)));
  g_assert_true (dl_project_contains (f->project, b));

  /* only the last removal comes back: the tile's own menu item, twice */
  g_signal_emit_by_name (tile_for (f, image_at (f, 0)), "remove-requested");
  g_assert_cmpstr (dl_dataset_page_get_last_toast (f->page), ==, "Removed “a.png”");
  g_signal_emit_by_name (tile_for (f, image_at (f, 2)), "remove-requested");
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 2);
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.undo-remove", NULL);
  g_assert_cmpuint (g_list_model_get_n_items (images), ==, 3);
  g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, 0)), ==, "b.png");
  g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, 2)), ==, "d.png");

  /* reorder: move the first one later */
  gtk_selection_model_select_item (selection, 0, TRUE);
  gtk_widget_activate_action (GTK_WIDGET (f->page), "dataset.move-later", NULL);
  g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, 0)), ==, "c.png");
  g_assert_cmpstr (dl_dataset_image_get_display_name (image_at (f, 1)), ==, "b.png");

  /* and it is all in the file */
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_project_flush (f->project, &error));
  g_autoptr (DlProject) reread = dl_project_load (dl_project_get_file (f->project), &error);
  g_assert_no_error (error);
  g_autoptr (DlDatasetImage) first = g_list_model_get_item (dl_project_get_images (reread), 0);
  g_assert_cmpstr (dl_dataset_image_get_display_name (first), ==, "c.png");
  g_assert_cmpstr (dl_dataset_image_get_caption (first), ==, "the third");
  APP_TEST_WAIT_UNTIL (dl_project_get_n_loading (reread) == 0, 20);
}

int
main (int argc, char **argv)
{
  app_test_init (&argc, &argv);
  app = dl_application_new ();
  g_application_register (G_APPLICATION (app), NULL, NULL);

  g_test_add ("/app/dataset/drop", Fixture, NULL, setup, test_drop, teardown);
  g_test_add ("/app/dataset/webp", Fixture, NULL, setup, test_webp, teardown);
  g_test_add ("/app/dataset/jpeg-cut", Fixture, NULL, setup, test_jpeg_cut, teardown);
  g_test_add ("/app/dataset/drop-without-project", Fixture, NULL, setup, test_drop_without_project, teardown);
  g_test_add ("/app/dataset/paste", Fixture, NULL, setup, test_paste, teardown);
  g_test_add ("/app/dataset/caption-sidecar", Fixture, NULL, setup, test_caption_sidecar, teardown);
  g_test_add ("/app/dataset/round-trip", Fixture, NULL, setup, test_round_trip, teardown);
  g_test_add ("/app/dataset/bad-project-file", Fixture, NULL, setup, test_bad_project_files, teardown);
  g_test_add ("/app/dataset/bad-project-messages", Fixture, NULL, setup, test_bad_project_files_messages, teardown);
  g_test_add ("/app/dataset/missing", Fixture, NULL, setup, test_missing, teardown);
  g_test_add ("/app/dataset/undo-removal", Fixture, NULL, setup, test_undo_removal, teardown);
  int ret = g_test_run ();
  g_object_unref (app);
  return ret;
}
