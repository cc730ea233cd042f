/* dl-safetensors.h: read and write .safetensors files (safetensors format spec,
 * README.md and src/tensor.rs; docs/formats.md, “safetensors files”).
 *
 * Reading maps the file and validates everything before any tensor is exposed:
 * header length bounds, UTF-8 JSON of the right schema, known dtypes, shape x
 * dtype size == byte span, spans inside the file, contiguous, no overlaps, no
 * duplicate names.  Every failure is a GError (DL_ERROR_INVALID_FILE) naming the
 * file and what is wrong; no input crashes the reader. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "dl-dtype.h"
#include "tensor/dl-tensor.h"

G_BEGIN_DECLS

#define DL_ST_MAX_DIMS 8

/* dtypes as spelled in the file, in the reference enum order (ascending
 * alignment), which is also the writer's sort key (safetensors src/tensor.rs:
 * enum Dtype, prepare). */
typedef enum
{
  DL_ST_BOOL,
  DL_ST_F4,
  DL_ST_F6_E2M3,
  DL_ST_F6_E3M2,
  DL_ST_U8,
  DL_ST_I8,
  DL_ST_F8_E5M2,
  DL_ST_F8_E4M3,
  DL_ST_F8_E8M0,
  DL_ST_F8_E4M3FNUZ,
  DL_ST_F8_E5M2FNUZ,
  DL_ST_I16,
  DL_ST_U16,
  DL_ST_F16,
  DL_ST_BF16,
  DL_ST_I32,
  DL_ST_U32,
  DL_ST_F32,
  DL_ST_C64,
  DL_ST_F64,
  DL_ST_I64,
  DL_ST_U64,
  DL_ST_N_DTYPES
} DlStDType;

const char *dl_st_dtype_name (DlStDType dtype); /* "F16" */
/* Bytes per element; 0 for the sub-byte types F4, F6_E2M3, F6_E3M2. */
gsize dl_st_dtype_size (DlStDType dtype);
/* Bits per element (4, 6, 8, ... 64). */
guint dl_st_dtype_bits (DlStDType dtype);
/* "F16" -> DL_ST_F16; FALSE for an unknown name. */
gboolean dl_st_dtype_from_name (const char *name, DlStDType *out);
/* The engine dtype with the same bits (F32, F16, BF16, I32), if any. */
gboolean dl_st_dtype_to_dl (DlStDType dtype, DlDType *out);

typedef struct
{
  const char *name;
  DlStDType dtype;
  int ndim;
  int64_t shape[DL_ST_MAX_DIMS];
  int64_t numel;
  guint64 nbytes;
  const guint8 *data; /* inside the mapping; valid while the file is open */
} DlStTensor;

typedef struct _DlSafetensors DlSafetensors;

DlSafetensors *dl_safetensors_open (const char *path, GError **error);
/* The same from memory (the bytes must outlive the object): fuzzing, tests. */
DlSafetensors *dl_safetensors_open_bytes (GBytes *bytes, const char *display_name, GError **error);
void dl_safetensors_free (DlSafetensors *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlSafetensors, dl_safetensors_free)

const char *dl_safetensors_get_path (DlSafetensors *st);
/* N, the JSON header's length in bytes; tensor data starts at file offset 8 + N. */
guint64 dl_safetensors_get_header_length (DlSafetensors *st);
guint dl_safetensors_get_n_tensors (DlSafetensors *st);
/* Tensors in header order; NULL past the end. */
const DlStTensor *dl_safetensors_get_tensor (DlSafetensors *st, guint index);
const DlStTensor *dl_safetensors_find (DlSafetensors *st, const char *name);
/* __metadata__ (string -> string); NULL when the key or the table is absent. */
const char *dl_safetensors_get_metadata (DlSafetensors *st, const char *key);
/* Whether the file has a __metadata__ table (possibly empty). */
gboolean dl_safetensors_has_metadata (DlSafetensors *st);
/* All metadata keys, sorted (free the container only). */
GPtrArray *dl_safetensors_get_metadata_keys (DlSafetensors *st);

/* A newly allocated float copy of a floating-point or integer tensor (F32, F16,
 * BF16, F64, I64, I32, ...), with *numel set.  Errors name the file and tensor. */
float *dl_safetensors_read_f32 (DlSafetensors *st, const char *name, int64_t *numel, GError **error);
/* Convert t's numel elements to float into `out`; errors (a dtype with no float
 * conversion: F4, F6_*, C64) name `path` and the tensor. */
gboolean dl_st_convert_to_f32 (const DlStTensor *t, float *out, const char *path, GError **error);
/* Upload a tensor to the device as `dtype` (converting), with the file's shape
 * (at most 4 dimensions). */
DlTensor *dl_safetensors_upload (DlSafetensors *st, const char *name, DlDevice *device, DlDType dtype, GError **error);
/* The same for one tensor, under another shape with the same element count and
 * another name (the checkpoint loader's view of a file tensor). */
DlTensor *dl_st_tensor_upload (const DlStTensor *t, const char *path, const char *tensor_name, int ndim,
                               const int64_t *shape, DlDevice *device, DlDType dtype, GError **error);

/* ---- writing ---- */

typedef struct _DlSafetensorsWriter DlSafetensorsWriter;

DlSafetensorsWriter *dl_safetensors_writer_new (void);
void dl_safetensors_writer_free (DlSafetensorsWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlSafetensorsWriter, dl_safetensors_writer_free)
/* The data is copied.  Fails on a duplicate name or a size that does not match. */
gboolean dl_safetensors_writer_add (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim,
                                    const int64_t *shape, const void *data, gsize nbytes, GError **error);
/* The same without a copy: holds a reference to `data`. */
gboolean dl_safetensors_writer_add_bytes (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim,
                                          const int64_t *shape, GBytes *data, GError **error);
/* Fills `out` with a deferred tensor's `nbytes` bytes, as stored; FALSE (with
 * *error set) stops the write. */
typedef gboolean (*DlStFillFunc) (gpointer out, gsize nbytes, gpointer user_data, GError **error);
/* The same without holding the data: `fill` is called for it each time it is
 * needed (once per write, and by the sha256 functions), in layout order, one
 * tensor at a time into a buffer the writer owns, so a file of several GB is
 * written without being held in memory.  `destroy` (may be NULL) frees
 * user_data with the writer (or at once when this fails). */
gboolean dl_safetensors_writer_add_deferred (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim,
                                             const int64_t *shape, DlStFillFunc fill, gpointer user_data,
                                             GDestroyNotify destroy, GError **error);
/* Convenience: float data stored as `dtype` (F32, F16 or BF16). */
gboolean dl_safetensors_writer_add_f32 (DlSafetensorsWriter *w, const char *name, DlStDType dtype, int ndim,
                                        const int64_t *shape, const float *data, GError **error);
void dl_safetensors_writer_set_metadata (DlSafetensorsWriter *w, const char *key, const char *value);
/* Write atomically (temporary file in the same directory, then rename), laid out
 * as the reference writer does: JSON starting with {" and padded with spaces to a
 * multiple of 8, __metadata__ first, tensors ordered by dtype alignment
 * (descending) then name.  On any failure (a fill function's included) `path`
 * is left as it was. */
gboolean dl_safetensors_writer_write (DlSafetensorsWriter *w, const char *path, GError **error);
/* sha256 (64 lowercase hex digits) of the byte buffer after the header, laid
 * out as dl_safetensors_writer_write writes it; it does not depend on the
 * metadata (kohya's "sshs_model_hash").  NULL when a deferred tensor's fill
 * function fails (also for range_sha256). */
char *dl_safetensors_writer_data_sha256 (DlSafetensorsWriter *w);
/* sha256 (hex) of bytes [offset, offset + length) of the file that
 * dl_safetensors_writer_write would write, clipped to its end (an empty range
 * hashes nothing).  With `metadata` (string -> string) not NULL the file is laid
 * out with that table instead of the writer's own, and the table is written even
 * when empty, as a serializer handed an empty dict does. */
char *dl_safetensors_writer_range_sha256 (DlSafetensorsWriter *w, GHashTable *metadata, guint64 offset, guint64 length);

G_END_DECLS
