/* dl-file-util.c: see dl-file-util.h. */
#include "dl-config.h"

#include "io/dl-file-util.h"

#include <glib/gstdio.h>
#include <string.h>

void
dl_file_remove_tree (const char *path)
{
  g_return_if_fail (path != NULL);
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *p = g_build_filename (path, name, NULL);
      dl_file_remove_tree (p);
    }
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

char *
dl_file_stem (const char *path)
{
  g_return_val_if_fail (path != NULL, NULL);
  char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');
  if (dot && dot != base)
    *dot = '\0';
  return base;
}

char *
dl_model_name (const char *path)
{
  g_return_val_if_fail (path != NULL, NULL);
  char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');
  if (dot && (g_str_equal (dot, ".safetensors") || g_str_equal (dot, ".ckpt")))
    *dot = '\0';
  return base;
}
