/* ZIP reading and writing (PKWARE APPNOTE.TXT section 4.3; PyTorch
 * caffe2/serialize/inline_container.cc; docs/formats.md, “PyTorch zip files”). */
#include "dl-zip.h"

#include <string.h>
#include <zlib.h>

#include "dl-error.h"
#include "io/dl-atomic-file.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u

/* the most a deflate stream expands (RFC 1951 blocks of 258-byte matches) */
#define MAX_DEFLATE_RATIO 1032

typedef struct
{
  DlZipEntry pub;
  char *name;
  guint32 crc;
  guint64 local_offset;
  guint64 data_offset;
  gboolean verified;
  GBytes *inflated;
} Entry;

struct _DlZip
{
  char *path;
  GBytes *bytes;
  const guint8 *data;
  guint64 len;
  Entry *entries;
  guint n_entries;
  GHashTable *by_name;
};

static guint16
rd16 (const guint8 *p)
{
  return (guint16)(p[0] | p[1] << 8);
}

static guint32
rd32 (const guint8 *p)
{
  return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

static guint64
rd64 (const guint8 *p)
{
  return (guint64)rd32 (p) | (guint64)rd32 (p + 4) << 32;
}

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Invalid ZIP file “%s”: %s", path, msg);
  return FALSE;
}

void
dl_zip_free (DlZip *zip)
{
  if (!zip)
    return;
  for (guint i = 0; i < zip->n_entries; i++)
    {
      g_free (zip->entries[i].name);
      g_clear_pointer (&zip->entries[i].inflated, g_bytes_unref);
    }
  g_free (zip->entries);
  g_clear_pointer (&zip->by_name, g_hash_table_unref);
  g_clear_pointer (&zip->bytes, g_bytes_unref);
  g_free (zip->path);
  g_free (zip);
}

/* The central directory's place and size, from the (ZIP64) end records. */
static gboolean
find_central_directory (DlZip *z, guint64 *cd_offset, guint64 *cd_size, guint64 *n_entries, GError **error)
{
  const guint8 *d = z->data;
  if (z->len < 22)
    return bad (error, z->path, "%" G_GUINT64_FORMAT " bytes is too short for a ZIP archive", z->len);
  guint64 stop = z->len > 22 + 65535 ? z->len - 22 - 65535 : 0;
  guint64 eocd = G_MAXUINT64;
  for (guint64 p = z->len - 22 + 1; p-- > stop;)
    if (rd32 (d + p) == SIG_EOCD && p + 22 + rd16 (d + p + 20) <= z->len)
      {
        eocd = p;
        break;
      }
  if (eocd == G_MAXUINT64)
    return bad (error, z->path, "no end-of-central-directory record (truncated file?)");
  const guint8 *e = d + eocd;
  if (rd16 (e + 4) != 0 || rd16 (e + 6) != 0 || rd16 (e + 8) != rd16 (e + 10))
    return bad (error, z->path, "multi-disk archives are not supported");
  *n_entries = rd16 (e + 10);
  *cd_size = rd32 (e + 12);
  *cd_offset = rd32 (e + 16);
  if (eocd >= 20 && rd32 (d + eocd - 20) == SIG_LOCATOR64)
    {
      const guint8 *loc = d + eocd - 20;
      guint64 off64 = rd64 (loc + 8);
      if (rd32 (loc + 4) != 0 || rd32 (loc + 16) > 1)
        return bad (error, z->path, "multi-disk archives are not supported");
      if (off64 > eocd - 20 || eocd - 20 - off64 < 56 || rd32 (d + off64) != SIG_EOCD64)
        return bad (error, z->path, "the ZIP64 end-of-central-directory locator points nowhere");
      const guint8 *r = d + off64;
      if (rd32 (r + 16) != 0 || rd32 (r + 20) != 0 || rd64 (r + 24) != rd64 (r + 32))
        return bad (error, z->path, "multi-disk archives are not supported");
      *n_entries = rd64 (r + 32);
      *cd_size = rd64 (r + 40);
      *cd_offset = rd64 (r + 48);
      eocd = off64; /* the central directory ends before the ZIP64 record */
    }
  else if (*n_entries == 0xffff || *cd_size == 0xffffffffu || *cd_offset == 0xffffffffu)
    return bad (error, z->path, "ZIP64 values without a ZIP64 end record");
  if (*cd_offset > eocd || *cd_size > eocd - *cd_offset)
    return bad (error, z->path,
                "the central directory (offset %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                " bytes) lies outside the file",
                *cd_offset, *cd_size);
  if (*n_entries > *cd_size / 46)
    return bad (error, z->path,
                "%" G_GUINT64_FORMAT " entries cannot fit in a %" G_GUINT64_FORMAT "-byte central directory",
                *n_entries, *cd_size);
  return TRUE;
}

/* The ZIP64 extra field replaces the 32-bit fields that hold 0xffffffff, in
 * this order. */
static gboolean
read_zip64_extra (const guint8 *extra, guint16 len, guint64 *usize, guint64 *csize, guint64 *lho)
{
  guint64 *fields[3] = { usize, csize, lho };
  for (guint16 p = 0; p + 4 <= len;)
    {
      guint16 id = rd16 (extra + p), sz = rd16 (extra + p + 2);
      if (sz > len - p - 4)
        return FALSE;
      if (id == 0x0001)
        {
          guint16 q = 0;
          for (int i = 0; i < 3; i++)
            if (*fields[i] == 0xffffffffu)
              {
                if (q + 8 > sz)
                  return FALSE;
                *fields[i] = rd64 (extra + p + 4 + q);
                q += 8;
              }
          return TRUE;
        }
      p += 4 + sz;
    }
  return *usize != 0xffffffffu && *csize != 0xffffffffu && *lho != 0xffffffffu;
}

static int
entry_by_offset (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(Entry *const *)a, *y = *(Entry *const *)b;
  return x->local_offset < y->local_offset ? -1 : x->local_offset > y->local_offset;
}

static gboolean
read_entries (DlZip *z, guint64 cd_offset, guint64 cd_size, guint64 n, GError **error)
{
  const guint8 *d = z->data;
  z->entries = g_new0 (Entry, MAX (n, 1));
  guint64 p = cd_offset, end = cd_offset + cd_size;
  for (guint64 i = 0; i < n; i++)
    {
      if (end - p < 46 || rd32 (d + p) != SIG_CENTRAL)
        return bad (error, z->path, "central directory entry %" G_GUINT64_FORMAT " is damaged", i);
      const guint8 *c = d + p;
      guint16 flags = rd16 (c + 8), method = rd16 (c + 10), nlen = rd16 (c + 28), elen = rd16 (c + 30),
              clen = rd16 (c + 32);
      if ((guint64)46 + nlen + elen + clen > end - p)
        return bad (error, z->path, "central directory entry %" G_GUINT64_FORMAT " runs past its end", i);
      Entry *e = &z->entries[z->n_entries];
      if (memchr (c + 46, 0, nlen) || !g_utf8_validate_len ((const char *)c + 46, nlen, NULL))
        return bad (error, z->path, "entry %" G_GUINT64_FORMAT " has an invalid name", i);
      e->name = g_strndup ((const char *)c + 46, nlen);
      z->n_entries++;
      e->pub.name = e->name;
      if (flags & 0x41)
        return bad (error, z->path, "entry “%s” is encrypted", e->name);
      if (method != 0 && method != 8)
        return bad (error, z->path,
                    "entry “%s” uses compression method %u (only stored and deflate are "
                    "supported)",
                    e->name, method);
      if (rd16 (c + 34) != 0)
        return bad (error, z->path, "multi-disk archives are not supported");
      e->pub.deflated = method == 8;
      e->crc = rd32 (c + 16);
      e->pub.stored_size = rd32 (c + 20);
      e->pub.size = rd32 (c + 24);
      e->local_offset = rd32 (c + 42);
      if (!read_zip64_extra (c + 46 + nlen, elen, &e->pub.size, &e->pub.stored_size, &e->local_offset))
        return bad (error, z->path, "entry “%s” has a damaged ZIP64 extra field", e->name);
      if (!g_hash_table_insert (z->by_name, e->name, e))
        return bad (error, z->path, "the entry “%s” appears twice", e->name);
      p += 46 + nlen + elen + clen;

      /* the local header must agree, and the data lie before the directory */
      guint64 lo = e->local_offset;
      if (lo > cd_offset || cd_offset - lo < 30 || rd32 (d + lo) != SIG_LOCAL)
        return bad (error, z->path, "entry “%s”: no local header at offset %" G_GUINT64_FORMAT, e->name, lo);
      guint16 lnlen = rd16 (d + lo + 26), lelen = rd16 (d + lo + 28);
      if (rd16 (d + lo + 8) != method || lnlen != nlen || cd_offset - lo - 30 < (guint64)lnlen + lelen ||
          memcmp (d + lo + 30, c + 46, nlen) != 0)
        return bad (error, z->path, "entry “%s”: the local header does not match the central directory", e->name);
      e->data_offset = lo + 30 + lnlen + lelen;
      if (e->pub.stored_size > cd_offset - e->data_offset)
        return bad (error, z->path, "entry “%s”: its %" G_GUINT64_FORMAT " bytes run past the end of the data", e->name,
                    e->pub.stored_size);
      if (!e->pub.deflated && e->pub.size != e->pub.stored_size)
        return bad (error, z->path,
                    "stored entry “%s” has different sizes (%" G_GUINT64_FORMAT " and %" G_GUINT64_FORMAT ")", e->name,
                    e->pub.size, e->pub.stored_size);
      if (e->pub.deflated && e->pub.size / MAX_DEFLATE_RATIO > e->pub.stored_size)
        return bad (error, z->path,
                    "deflated entry “%s” claims %" G_GUINT64_FORMAT " bytes from %" G_GUINT64_FORMAT
                    ", more than deflate can expand",
                    e->name, e->pub.size, e->pub.stored_size);
    }
  /* entries must not overlap (overlapping entries are how zip bombs multiply) */
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  for (guint i = 0; i < z->n_entries; i++)
    g_ptr_array_add (sorted, &z->entries[i]);
  g_ptr_array_sort (sorted, entry_by_offset);
  for (guint i = 1; i < sorted->len; i++)
    {
      Entry *a = sorted->pdata[i - 1], *b = sorted->pdata[i];
      if (a->data_offset + a->pub.stored_size > b->local_offset)
        return bad (error, z->path, "entries “%s” and “%s” overlap", a->name, b->name);
    }
  return TRUE;
}

DlZip *
dl_zip_open_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_return_val_if_fail (bytes != NULL, NULL);
  g_autoptr (DlZip) z = g_new0 (DlZip, 1);
  z->path = g_strdup (display_name ? display_name : "(memory)");
  z->bytes = g_bytes_ref (bytes);
  gsize len;
  z->data = g_bytes_get_data (bytes, &len);
  z->len = len;
  z->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  guint64 cd_offset = 0, cd_size = 0, n = 0;
  if (!find_central_directory (z, &cd_offset, &cd_size, &n, error) || !read_entries (z, cd_offset, cd_size, n, error))
    return NULL;
  return g_steal_pointer (&z);
}

guint
dl_zip_get_n_entries (DlZip *zip)
{
  g_return_val_if_fail (zip != NULL, 0);
  return zip->n_entries;
}

const DlZipEntry *
dl_zip_get_entry (DlZip *zip, guint index)
{
  g_return_val_if_fail (zip != NULL, NULL);
  return index < zip->n_entries ? &zip->entries[index].pub : NULL;
}

const DlZipEntry *
dl_zip_find (DlZip *zip, const char *name)
{
  g_return_val_if_fail (zip != NULL && name != NULL, NULL);
  Entry *e = g_hash_table_lookup (zip->by_name, name);
  return e ? &e->pub : NULL;
}

static guint32
crc_of (const guint8 *p, guint64 n)
{
  uLong crc = crc32 (0, Z_NULL, 0);
  while (n > 0)
    {
      uInt chunk = (uInt)MIN (n, (guint64)1 << 30);
      crc = crc32 (crc, p, chunk);
      p += chunk;
      n -= chunk;
    }
  return (guint32)crc;
}

static GBytes *
inflate_entry (DlZip *z, Entry *e, GError **error)
{
  if (e->pub.size > G_MAXSIZE)
    {
      bad (error, z->path, "entry “%s” is too large to inflate", e->name);
      return NULL;
    }
  guint8 *out = g_try_malloc (MAX (e->pub.size, 1));
  if (!out)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY,
                   "Out of memory inflating “%s” of “%s” (%" G_GUINT64_FORMAT " bytes)", e->name, z->path, e->pub.size);
      return NULL;
    }
  z_stream s = { 0 };
  if (inflateInit2 (&s, -15) != Z_OK)
    {
      g_free (out);
      g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "zlib failed to start inflating “%s”", z->path);
      return NULL;
    }
  const guint8 *in = z->data + e->data_offset;
  guint64 in_left = e->pub.stored_size, out_done = 0;
  int rc = Z_OK;
  while (rc == Z_OK)
    {
      uInt in_chunk = (uInt)MIN (in_left, (guint64)1 << 30);
      uInt out_chunk = (uInt)MIN (e->pub.size - out_done, (guint64)1 << 30);
      s.next_in = (Bytef *)in;
      s.avail_in = in_chunk;
      s.next_out = out + out_done;
      s.avail_out = out_chunk;
      rc = inflate (&s, Z_NO_FLUSH);
      in += in_chunk - s.avail_in;
      in_left -= in_chunk - s.avail_in;
      out_done += out_chunk - s.avail_out;
      if (rc == Z_OK && s.avail_out == out_chunk && s.avail_in == in_chunk)
        rc = Z_BUF_ERROR; /* no progress: truncated input or more output than declared */
    }
  inflateEnd (&s);
  if (rc != Z_STREAM_END || out_done != e->pub.size)
    {
      g_free (out);
      bad (error, z->path,
           "entry “%s”: the deflate data is damaged or does not give the declared %" G_GUINT64_FORMAT " bytes", e->name,
           e->pub.size);
      return NULL;
    }
  return g_bytes_new_take (out, e->pub.size);
}

GBytes *
dl_zip_read (DlZip *zip, const DlZipEntry *entry, GError **error)
{
  g_return_val_if_fail (zip != NULL && entry != NULL, NULL);
  Entry *e = (Entry *)entry;
  g_return_val_if_fail (e >= zip->entries && e < zip->entries + zip->n_entries, NULL);
  GBytes *b;
  if (e->pub.deflated)
    {
      if (!e->inflated)
        {
          e->inflated = inflate_entry (zip, e, error);
          if (!e->inflated)
            return NULL;
        }
      b = g_bytes_ref (e->inflated);
    }
  else
    b = g_bytes_new_from_bytes (zip->bytes, e->data_offset, e->pub.size);
  if (!e->verified)
    {
      gsize n;
      const guint8 *p = g_bytes_get_data (b, &n);
      guint32 crc = crc_of (p, n);
      if (crc != e->crc)
        {
          g_bytes_unref (b);
          bad (error, zip->path, "entry “%s” is damaged (CRC-32 %08x, expected %08x)", e->name, crc, e->crc);
          return NULL;
        }
      e->verified = TRUE;
    }
  return b;
}

/* ---- writing ---- */

typedef struct
{
  char *name;
  GBytes *data;
  gboolean deflate;
} WEntry;

struct _DlZipWriter
{
  GPtrArray *entries;
};

static void
wentry_free (WEntry *e)
{
  g_free (e->name);
  g_bytes_unref (e->data);
  g_free (e);
}

DlZipWriter *
dl_zip_writer_new (void)
{
  DlZipWriter *w = g_new0 (DlZipWriter, 1);
  w->entries = g_ptr_array_new_with_free_func ((GDestroyNotify)wentry_free);
  return w;
}

void
dl_zip_writer_free (DlZipWriter *w)
{
  if (!w)
    return;
  g_ptr_array_unref (w->entries);
  g_free (w);
}

static void
add_entry (DlZipWriter *w, const char *name, GBytes *data, gboolean deflate)
{
  g_return_if_fail (w != NULL && name != NULL && data != NULL);
  WEntry *e = g_new0 (WEntry, 1);
  e->name = g_strdup (name);
  e->data = g_bytes_ref (data);
  e->deflate = deflate;
  g_ptr_array_add (w->entries, e);
}

void
dl_zip_writer_add (DlZipWriter *w, const char *name, GBytes *data)
{
  add_entry (w, name, data, FALSE);
}

void
dl_zip_writer_add_deflated (DlZipWriter *w, const char *name, GBytes *data)
{
  add_entry (w, name, data, TRUE);
}

static void
put16 (GByteArray *a, guint v)
{
  guint8 b[2] = { v & 0xff, (v >> 8) & 0xff };
  g_byte_array_append (a, b, 2);
}

static void
put32 (GByteArray *a, guint32 v)
{
  guint8 b[4] = { v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24 };
  g_byte_array_append (a, b, 4);
}

static GBytes *
deflate_bytes (GBytes *in)
{
  gsize n;
  const guint8 *p = g_bytes_get_data (in, &n);
  z_stream s = { 0 };
  deflateInit2 (&s, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  uLong cap = deflateBound (&s, n);
  guint8 *out = g_malloc (cap);
  s.next_in = (Bytef *)p;
  s.avail_in = (uInt)n;
  s.next_out = out;
  s.avail_out = (uInt)cap;
  deflate (&s, Z_FINISH);
  gsize used = s.total_out;
  deflateEnd (&s);
  return g_bytes_new_take (out, used);
}

gboolean
dl_zip_writer_write (DlZipWriter *w, const char *path, GError **error)
{
  g_return_val_if_fail (w != NULL && path != NULL, FALSE);
  g_autoptr (GByteArray) file = g_byte_array_new ();
  g_autoptr (GByteArray) cd = g_byte_array_new ();
  for (guint i = 0; i < w->entries->len; i++)
    {
      WEntry *e = w->entries->pdata[i];
      gsize usize;
      const guint8 *udata = g_bytes_get_data (e->data, &usize);
      g_autoptr (GBytes) stored = e->deflate ? deflate_bytes (e->data) : g_bytes_ref (e->data);
      gsize csize;
      const guint8 *cdata = g_bytes_get_data (stored, &csize);
      guint32 crc = crc_of (udata, usize);
      gsize nlen = strlen (e->name);
      if (file->len + usize + csize + 1024 > 0xffffffffu || nlen > 0xffff)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Cannot write “%s”: larger than 4 GiB", path);
          return FALSE;
        }
      /* torch aligns record data to 64 bytes with an "FB" extra field of Z's */
      guint32 offset = file->len;
      gsize pad = (64 - (offset + 30 + nlen + 4) % 64) % 64;
      guint method = e->deflate ? 8 : 0;
      put32 (file, SIG_LOCAL);
      put16 (file, 20);
      put16 (file, 0);
      put16 (file, method);
      put16 (file, 0);
      put16 (file, 0x21); /* 1980-01-01: reproducible */
      put32 (file, crc);
      put32 (file, (guint32)csize);
      put32 (file, (guint32)usize);
      put16 (file, (guint)nlen);
      put16 (file, (guint)(4 + pad));
      g_byte_array_append (file, (const guint8 *)e->name, nlen);
      put16 (file, 0x4246);
      put16 (file, (guint)pad);
      for (gsize k = 0; k < pad; k++)
        g_byte_array_append (file, (const guint8 *)"Z", 1);
      g_byte_array_append (file, cdata, csize);

      put32 (cd, SIG_CENTRAL);
      put16 (cd, 20);
      put16 (cd, 20);
      put16 (cd, 0);
      put16 (cd, method);
      put16 (cd, 0);
      put16 (cd, 0x21);
      put32 (cd, crc);
      put32 (cd, (guint32)csize);
      put32 (cd, (guint32)usize);
      put16 (cd, (guint)nlen);
      put16 (cd, 0);
      put16 (cd, 0);
      put16 (cd, 0);
      put16 (cd, 0);
      put32 (cd, 0);
      put32 (cd, offset);
      g_byte_array_append (cd, (const guint8 *)e->name, nlen);
    }
  guint32 cd_offset = file->len;
  g_byte_array_append (file, cd->data, cd->len);
  put32 (file, SIG_EOCD);
  put16 (file, 0);
  put16 (file, 0);
  put16 (file, w->entries->len);
  put16 (file, w->entries->len);
  put32 (file, cd->len);
  put32 (file, cd_offset);
  put16 (file, 0);
  g_autoptr (DlAtomicFile) f = dl_atomic_file_begin (path, error);
  if (!f || !dl_atomic_file_write (f, file->data, file->len, error))
    return FALSE;
  return dl_atomic_file_commit (g_steal_pointer (&f), error);
}
