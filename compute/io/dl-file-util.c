/* dl-file-util.c: see dl-file-util.h. */
#include "dl-config.h"

#include "io/dl-file-util.h"

#include "dl-error.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

void
dl_file_remove_tree (const char *path)
{
  g_return_if_fail (path != NULL);
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)))
        {
          g_autofree char *p = g_build_filename (path, name, NULL);
          dl_file_remove_tree (p);
        }
      g_rmdir (path);
    }
  else
    {
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

char *
dl_file_tilde_path (const char *path)
{
  const char *home = g_get_home_dir ();
  gsize n = strlen (home);
  if (n > 1 && g_str_has_prefix (path, home) && path[n] == '/')
    return g_strconcat ("~", path + n, NULL);
  return g_strdup (path);
}

gboolean
dl_file_copy_atomically (const char *source, const char *dest, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (dest);
  g_autofree char *base = g_path_get_basename (dest);
  g_autofree char *tmp_name = g_strdup_printf (".%s.partial-%u", base, g_random_int ());
  g_autofree char *tmp = g_build_filename (dir, tmp_name, NULL);
  g_autoptr (GFile) from = g_file_new_for_path (source);
  g_autoptr (GFile) to = g_file_new_for_path (tmp);
  g_autoptr (GError) local = NULL;
  if (!g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &local))
    {
      g_unlink (tmp);
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot write “%s”: %s", dest, local->message);
      return FALSE;
    }
  if (g_rename (tmp, dest) != 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot write “%s”: %s", dest, g_strerror (e));
      return FALSE;
    }
  return TRUE;
}
