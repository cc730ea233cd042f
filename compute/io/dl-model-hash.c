/* dl-model-hash.c: see dl-model-hash.h. */
#include "io/dl-model-hash.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "dl-error.h"

#define BLOCK ((gsize)1 << 20)
#define LEGACY_OFFSET 0x100000
#define LEGACY_LENGTH 0x10000

static int
open_for_hash (const char *path, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int err = errno;
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot read “%s” to hash it: %s", path, g_strerror (err));
    }
  return fd;
}

static gboolean
cancelled (GCancellable *cancellable, const char *path, GError **error)
{
  if (!g_cancellable_is_cancelled (cancellable))
    return FALSE;
  g_set_error (error, DL_ERROR, DL_ERROR_CANCELLED, "Hashing “%s” was cancelled", path);
  return TRUE;
}

/* Feed up to `length` bytes from `offset` (G_MAXUINT64: to the end) to `sum`,
 * block by block; stops quietly at the end of the file. */
static gboolean
hash_range (const char *path, guint64 offset, guint64 length, GChecksum *sum, GCancellable *cancellable, GError **error)
{
  int fd = open_for_hash (path, error);
  if (fd < 0)
    return FALSE;
  g_autofree guchar *buf = g_malloc (BLOCK);
  gboolean ok = TRUE;
  while (length > 0)
    {
      if (cancelled (cancellable, path, error))
        {
          ok = FALSE;
          break;
        }
      gsize want = (gsize)MIN ((guint64)BLOCK, length);
      ssize_t n = pread (fd, buf, want, (off_t)offset);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int err = errno;
          g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot read “%s” to hash it: %s", path, g_strerror (err));
          ok = FALSE;
          break;
        }
      if (n == 0)
        break;
      g_checksum_update (sum, buf, n);
      offset += (guint64)n;
      length -= (guint64)n;
    }
  close (fd);
  return ok;
}

char *
dl_model_hash_legacy (const char *path, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  if (!hash_range (path, LEGACY_OFFSET, LEGACY_LENGTH, sum, cancellable, error))
    return NULL;
  return g_strndup (g_checksum_get_string (sum), 8);
}

char *
dl_model_hash_sha256 (const char *path, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  if (!hash_range (path, 0, G_MAXUINT64, sum, cancellable, error))
    return NULL;
  return g_strdup (g_checksum_get_string (sum));
}

char *
dl_model_hash_short (const char *sha256_hex)
{
  g_return_val_if_fail (sha256_hex != NULL && strlen (sha256_hex) >= 10, NULL);
  return g_strndup (sha256_hex, 10);
}

gboolean
dl_model_hashes_compute (const char *path, DlModelHashes *out, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (path != NULL && out != NULL, FALSE);
  memset (out, 0, sizeof *out);
  GStatBuf st;
  if (g_stat (path, &st) != 0)
    {
      int err = errno;
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Base model “%s”: %s", path, g_strerror (err));
      return FALSE;
    }
  g_autofree char *trimmed = g_strdup (path);
  gsize len = strlen (trimmed);
  while (len > 1 && G_IS_DIR_SEPARATOR (trimmed[len - 1]))
    trimmed[--len] = '\0'; /* like os.path.basename, but "dir/" names "dir" */
  if (S_ISDIR (st.st_mode))
    {
      out->is_folder = TRUE;
      out->name = g_path_get_basename (trimmed);
      return TRUE;
    }
  g_autofree char *legacy = dl_model_hash_legacy (path, cancellable, error);
  if (!legacy)
    return FALSE;
  g_autofree char *sha = dl_model_hash_sha256 (path, cancellable, error);
  if (!sha)
    return FALSE;
  out->name = g_path_get_basename (trimmed);
  out->legacy = g_steal_pointer (&legacy);
  out->sha256 = g_steal_pointer (&sha);
  return TRUE;
}

void
dl_model_hashes_clear (DlModelHashes *h)
{
  if (!h)
    return;
  g_clear_pointer (&h->name, g_free);
  g_clear_pointer (&h->legacy, g_free);
  g_clear_pointer (&h->sha256, g_free);
  h->is_folder = FALSE;
}
