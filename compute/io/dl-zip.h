/* dl-zip.h: the ZIP container of PyTorch files (PyTorch
 * caffe2/serialize/inline_container.cc PyTorchStreamWriter/PyTorchStreamReader;
 * docs/formats.md, “PyTorch zip files”).
 *
 * Reading: the central directory (ZIP64 records included, as torch always
 * writes them), stored and deflated entries, every size, offset and CRC-32
 * checked before an entry is exposed.  Encrypted, multi-disk and other
 * compression methods are refused with an error naming the file.
 *
 * Writing: stored entries, each record's data aligned to 64 bytes the way
 * torch.save does, written atomically. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DlZip DlZip;

typedef struct
{
  const char *name;
  guint64 size;        /* uncompressed */
  guint64 stored_size; /* in the file */
  gboolean deflated;
} DlZipEntry;

/* `bytes` is the whole file (a mapping); it is referenced, not copied. */
DlZip *dl_zip_open_bytes (GBytes *bytes, const char *display_name, GError **error);
void dl_zip_free (DlZip *zip);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlZip, dl_zip_free)

guint dl_zip_get_n_entries (DlZip *zip);
const DlZipEntry *dl_zip_get_entry (DlZip *zip, guint index);
const DlZipEntry *dl_zip_find (DlZip *zip, const char *name);
/* The entry's contents: a slice of the file for stored entries, inflated once
 * (and kept) for deflated ones; CRC-checked.  Valid while the zip is open. */
GBytes *dl_zip_read (DlZip *zip, const DlZipEntry *entry, GError **error);

/* ---- writing ---- */

typedef struct _DlZipWriter DlZipWriter;

DlZipWriter *dl_zip_writer_new (void);
void dl_zip_writer_free (DlZipWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlZipWriter, dl_zip_writer_free)
/* Stored (method 0); the data is referenced. */
void dl_zip_writer_add (DlZipWriter *w, const char *name, GBytes *data);
/* Deflated (method 8), for tests of the reader's inflate path. */
void dl_zip_writer_add_deflated (DlZipWriter *w, const char *name, GBytes *data);
gboolean dl_zip_writer_write (DlZipWriter *w, const char *path, GError **error);

G_END_DECLS
