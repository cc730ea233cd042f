/* Runs a libFuzzer target over corpus files, one TAP line per file, so that the
 * normal suite (gcc, optionally ASan) checks every seed and every past crash.
 * usage: fuzz-replay DIR_OR_FILE... */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static guint n_run;

static int
compare_paths (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *)a, *(const char *const *)b);
}

static void
replay_file (const char *path)
{
  g_autoptr (GError) error = NULL;
  char *contents;
  gsize len;
  n_run++;
  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      printf ("not ok %u - %s: %s\n", n_run, path, error->message);
      return;
    }
  /* an exact-size copy, so that ASan sees any read past the end */
  g_autofree guint8 *copy = g_memdup2 (contents, len);
  g_free (contents);
  LLVMFuzzerTestOneInput (copy, len);
  printf ("ok %u - %s\n", n_run, path);
  fflush (stdout);
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    {
      if (!g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        {
          replay_file (argv[i]);
          continue;
        }
      g_autoptr (GDir) dir = g_dir_open (argv[i], 0, NULL);
      g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)))
        g_ptr_array_add (names, g_build_filename (argv[i], name, NULL));
      g_ptr_array_sort (names, compare_paths);
      for (guint k = 0; k < names->len; k++)
        replay_file (names->pdata[k]);
    }
  if (n_run == 0)
    {
      printf ("not ok 1 - no corpus files found\n1..1\n");
      return 1;
    }
  printf ("1..%u\n", n_run);
  return 0;
}
