/* dl-loss-log.c: see dl-loss-log.h. */
#include "dl-config.h"

#include "dl-loss-log.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-atomic-file.h"

GArray *
dl_loss_log_new (void)
{
  return g_array_new (FALSE, FALSE, sizeof (DlLossEntry));
}

void
dl_loss_log_truncate (GArray *log, gint64 step)
{
  while (log->len && g_array_index (log, DlLossEntry, log->len - 1).step > step)
    g_array_set_size (log, log->len - 1);
}

void
dl_loss_log_add (GArray *log, gint64 step, double loss, double lr)
{
  dl_loss_log_truncate (log, step - 1);
  DlLossEntry e = { step, loss, lr };
  g_array_append_val (log, e);
}

static void
append_number (GString *s, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  if (isnan (v))
    g_string_append (s, "nan");
  else if (isinf (v))
    g_string_append (s, v > 0 ? "inf" : "-inf");
  else
    {
      /* the shortest form that reads back to the same double */
      static const char *const formats[] = { "%.9g", "%.15g", "%.17g" };
      for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
        {
          g_ascii_formatd (buf, sizeof buf, formats[i], v);
          if (g_ascii_strtod (buf, NULL) == v)
            break;
        }
      g_string_append (s, buf);
    }
}

char *
dl_loss_log_format (const GArray *log)
{
  GString *s = g_string_new ("step,loss,lr\n");
  for (guint i = 0; i < log->len; i++)
    {
      const DlLossEntry *e = &g_array_index (log, DlLossEntry, i);
      g_string_append_printf (s, "%" G_GINT64_FORMAT ",", e->step);
      append_number (s, e->loss);
      g_string_append_c (s, ',');
      append_number (s, e->lr);
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

gboolean
dl_loss_log_write (const GArray *log, const char *dir, GError **error)
{
  g_autofree char *text = dl_loss_log_format (log);
  g_autofree char *path = g_build_filename (dir, DL_LOSS_LOG_NAME, NULL);
  g_autoptr (DlAtomicFile) f = dl_atomic_file_begin (path, error);
  if (!f || !dl_atomic_file_write (f, text, strlen (text), error))
    return FALSE;
  return dl_atomic_file_commit (g_steal_pointer (&f), error);
}

/* One number of a line: the whole field, else FALSE. */
static gboolean
parse_number (const char *field, double *out)
{
  char *end = NULL;
  if (!*field)
    return FALSE;
  *out = g_ascii_strtod (field, &end);
  return end && *end == '\0';
}

GArray *
dl_loss_log_read (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, DL_LOSS_LOG_NAME, NULL);
  g_autoptr (GArray) log = dl_loss_log_new ();
  g_autofree char *text = NULL;
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, &text, NULL, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&log);
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "“%s”: %s", path, local->message);
      return NULL;
    }
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_strchomp (lines[i]);
      g_auto (GStrv) f = g_strsplit (lines[i], ",", -1);
      if (g_strv_length (f) != 3)
        continue;
      char *end = NULL;
      gint64 step = g_ascii_strtoll (f[0], &end, 10);
      double loss, lr;
      if (!*f[0] || !end || *end || step < 0 || !parse_number (f[1], &loss) || !parse_number (f[2], &lr))
        continue;
      dl_loss_log_add (log, step, loss, lr);
    }
  return g_steal_pointer (&log);
}
