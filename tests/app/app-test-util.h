/* app-test-util.h: what the window tests share: waiting on the main loop with a
 * deadline, a scratch folder, test pictures made on the spot with gdk-pixbuf, and
 * dropping files the way GTK delivers a drop. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

/* gtk_test_init + adw_init, and a GSettings backend in memory (never the user's). */
void app_test_init (int *argc, char ***argv);

/* Run the main loop until `cond (data)` holds or `seconds` pass; FALSE on timeout. */
gboolean app_test_wait (gboolean (*cond) (gpointer data), gpointer data, double seconds);
/* The same for an expression; a timeout fails the test, naming the expression. */
#define APP_TEST_WAIT_UNTIL(expr, seconds)                                                                \
  G_STMT_START                                                                                            \
  {                                                                                                       \
    gint64 deadline_ = g_get_monotonic_time () + (gint64)((seconds)*G_USEC_PER_SEC);                      \
    while (!(expr) && g_get_monotonic_time () < deadline_)                                                \
      app_test_iterate ();                                                                                \
    if (!(expr))                                                                                          \
      g_error ("%s:%d: gave up after %g s waiting for %s", __FILE__, __LINE__, (double)(seconds), #expr); \
  }                                                                                                       \
  G_STMT_END
/* One round of the main loop without blocking for long. */
void app_test_iterate (void);
/* Let pending idles and timeouts of the next `ms` milliseconds run. */
void app_test_run_for (guint ms);

/* A new empty folder under the build tree's scratch space; removed by app_test_rmtree. */
char *app_test_make_dir (const char *name);
void app_test_rmtree (const char *path);

/* Test pictures.  `seed` changes the colours, so that two pictures differ. */
void app_test_write_png (const char *path, int width, int height, guint seed);
/* A JPEG whose EXIF says how the camera was held (1..8; 0: no EXIF at all). */
void app_test_write_jpeg (const char *path, int width, int height, guint seed, int exif_orientation);
void app_test_write_file (const char *path, const char *contents);
/* A WebP with alpha: opaque on the left half, alpha 64 on the right.  FALSE (and
 * nothing written) when gdk-pixbuf has no WebP saver (the webp-pixbuf-loader package
 * is not installed). */
gboolean app_test_write_webp (const char *path, int width, int height, guint seed);

/* Drop these paths (NULL-terminated) on `target`: a GdkFileList handed to its
 * "drop" handler exactly as GTK does at the end of a drag.  The handler's answer. */
gboolean app_test_drop_files (GtkDropTarget *target, const char *first_path, ...) G_GNUC_NULL_TERMINATED;

/* Whether the texture has more than one colour (a picture, not a blank). */
gboolean app_test_texture_has_content (GdkTexture *texture);
/* Mean absolute difference of the RGB channels, 0..255 (same size required). */
double app_test_texture_difference (GdkTexture *a, GdkTexture *b);
/* 8-bit RGBA, straight alpha, width * 4 bytes a row. */
guchar *app_test_texture_rgba (GdkTexture *texture);

/* The first widget under `root` (itself included, depth first) of `type` for
 * which `match` holds (NULL `match`: any of that type); NULL if none. */
typedef gboolean (*AppTestMatch) (GtkWidget *widget, gconstpointer data);
GtkWidget *app_test_find_widget (GtkWidget *root, GType type, AppTestMatch match, gconstpointer data);

/* Render `widget` as it is on screen and write it as a PNG. */
void app_test_save_screenshot (GtkWidget *widget, const char *path);

G_END_DECLS
