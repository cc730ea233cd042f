#include "dl-log.h"

#include <stdio.h>

static FILE *log_file;

char *
dl_log_file_path (void)
{
  const char *state = g_getenv ("XDG_STATE_HOME");
  g_autofree char *fallback = g_build_filename (g_get_home_dir (), ".local", "state", NULL);
  return g_build_filename (state && *state ? state : fallback, "dreamloom", "dreamloom.log", NULL);
}

static GLogWriterOutput
writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if (log_file && !g_log_writer_default_would_drop (level, NULL))
    {
      g_autofree char *line = g_log_writer_format_fields (level, fields, n_fields, FALSE);
      g_autoptr (GDateTime) now = g_date_time_new_now_local ();
      g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%d %H:%M:%S");
      const char *text = line;
      while (*text == '\n')
        text++;
      fprintf (log_file, "%s %s\n", stamp, text);
      fflush (log_file);
    }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

void
dl_log_init_gui (void)
{
  g_autofree char *path = dl_log_file_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0700) == 0)
    log_file = fopen (path, "a");
  g_log_set_writer_func (writer, NULL, NULL);
}
