#include "dl-atomic-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "dl-error.h"

struct _DlAtomicFile
{
  char *path;
  char *tmp_path;
  int fd;
};

static void
set_errno_error (GError **error, int err, const char *what, const char *path)
{
  g_set_error (error, DL_ERROR, DL_ERROR_IO, "%s “%s”: %s", what, path, g_strerror (err));
}

DlAtomicFile *
dl_atomic_file_begin (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  DlAtomicFile *f = g_new0 (DlAtomicFile, 1);
  f->path = g_strdup (path);
  f->tmp_path = g_strdup_printf ("%s.XXXXXX", path);
  /* mode 0666 less the umask, as for any new file */
  f->fd = g_mkstemp_full (f->tmp_path, O_RDWR | O_CLOEXEC, 0666);
  if (f->fd < 0)
    {
      set_errno_error (error, errno, "Cannot create a temporary file to write", path);
      g_free (f->tmp_path);
      f->tmp_path = NULL;
      dl_atomic_file_abort (f);
      return NULL;
    }
  return f;
}

gboolean
dl_atomic_file_write (DlAtomicFile *f, const void *data, gsize len, GError **error)
{
  g_return_val_if_fail (f != NULL && f->fd >= 0, FALSE);
  const guint8 *p = data;
  while (len > 0)
    {
      ssize_t n = write (f->fd, p, MIN (len, (gsize)1 << 30));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          set_errno_error (error, n < 0 ? errno : ENOSPC, "Cannot write", f->path);
          return FALSE;
        }
      p += n;
      len -= (gsize)n;
    }
  return TRUE;
}

gboolean
dl_atomic_file_commit (DlAtomicFile *f, GError **error)
{
  g_return_val_if_fail (f != NULL, FALSE);
  int err = 0;
  if (fsync (f->fd) != 0)
    err = errno;
  if (close (f->fd) != 0 && !err)
    err = errno;
  f->fd = -1;
  if (err)
    {
      set_errno_error (error, err, "Cannot write", f->path);
      dl_atomic_file_abort (f);
      return FALSE;
    }
  if (g_rename (f->tmp_path, f->path) != 0)
    {
      set_errno_error (error, errno, "Cannot replace", f->path);
      dl_atomic_file_abort (f);
      return FALSE;
    }
  /* make the rename itself durable */
  g_autofree char *dir = g_path_get_dirname (f->path);
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    {
      fsync (dfd);
      close (dfd);
    }
  g_clear_pointer (&f->tmp_path, g_free);
  dl_atomic_file_abort (f);
  return TRUE;
}

void
dl_atomic_file_abort (DlAtomicFile *f)
{
  if (!f)
    return;
  if (f->fd >= 0)
    close (f->fd);
  if (f->tmp_path)
    g_unlink (f->tmp_path);
  g_free (f->tmp_path);
  g_free (f->path);
  g_free (f);
}
