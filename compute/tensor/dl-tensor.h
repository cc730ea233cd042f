/* dl-tensor.h: an n-D (n <= 4), row-major, contiguous array in device memory.
 *
 * A tensor is a named view of a range of a device memory block.  Views share the
 * memory of their base tensor and keep it alive.  Shapes are in PyTorch order:
 * shape[0] is the outermost dimension. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "dl-dtype.h"
#include "vk/dl-device.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

#define DL_MAX_DIMS 4

typedef struct _DlAllocation DlAllocation;
typedef struct _DlTensor DlTensor;

struct _DlTensor
{
  /* read-only for users */
  DlDevice *device;
  char *name;
  DlDType dtype;
  int ndim;
  int64_t shape[DL_MAX_DIMS];

  /*< private >*/
  gint ref_count;
  void (*release) (DlTensor *t, gpointer data); /* called once, before a view goes away */
  gpointer release_data;
  DlAllocation *alloc; /* owned by the base tensor */
  DlTensor *base;      /* non-NULL for views: the storage */
  DlTensor *owner;     /* a view of a view whose range is lent (an arena's): kept alive */
  DlMemBlock *block;
  guint64 offset; /* bytes from the block start */
};

/* A new tensor with uninitialised contents.  Fails with DL_ERROR_OUT_OF_DEVICE_MEMORY
 * naming the tensor and the sizes when memory runs out. */
DlTensor *dl_tensor_new (DlDevice *device, const char *name, DlDType dtype, int ndim, const int64_t *shape,
                         GError **error);
/* Convenience: shape given as arguments, e.g. dl_tensor_new_2d (dev, "w", F16, 320, 768, &err). */
DlTensor *dl_tensor_new_1d (DlDevice *device, const char *name, DlDType dtype, int64_t d0, GError **error);
DlTensor *dl_tensor_new_2d (DlDevice *device, const char *name, DlDType dtype, int64_t d0, int64_t d1, GError **error);
DlTensor *dl_tensor_new_4d (DlDevice *device, const char *name, DlDType dtype, int64_t d0, int64_t d1, int64_t d2,
                            int64_t d3, GError **error);

/* A contiguous view of `base` starting `elem_offset` elements in, with a new
 * shape (its element count must fit inside base). */
DlTensor *dl_tensor_view (DlTensor *base, const char *name, int64_t elem_offset, int ndim, const int64_t *shape,
                          GError **error);
/* A view reinterpreting `base`'s bytes from `byte_offset` (a multiple of the new
 * dtype's size) as `dtype` with `shape`. */
DlTensor *dl_tensor_view_as (DlTensor *base, const char *name, guint64 byte_offset, DlDType dtype, int ndim,
                             const int64_t *shape, GError **error);
/* The tensor that owns the memory (itself unless it is a view). */
DlTensor *dl_tensor_get_storage (DlTensor *t);
/* Same memory and element count, another shape. */
DlTensor *dl_tensor_reshape (DlTensor *t, int ndim, const int64_t *shape, GError **error);

DlTensor *dl_tensor_ref (DlTensor *t);
void dl_tensor_unref (DlTensor *t);
/* Whether more than one reference holds `t` (a view, a recorder, an
 * optimizer...): dropping one's own would not free its memory. */
gboolean dl_tensor_is_shared (const DlTensor *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTensor, dl_tensor_unref)

int64_t dl_tensor_numel (const DlTensor *t);
gsize dl_tensor_nbytes (const DlTensor *t);
gboolean dl_tensor_same_shape (const DlTensor *a, const DlTensor *b);
/* "name [2, 320, 64, 64] f16" */
char *dl_tensor_describe (const DlTensor *t);
char *dl_shape_to_string (int ndim, const int64_t *shape);

/* Copy host data in (`src_dtype` is the host layout; it is converted to the
 * tensor's dtype on the way) / out (converted to `dst_dtype`).  Synchronous: waits
 * for earlier GPU work, so do not call while a recorder is still recording work
 * on this tensor. */
gboolean dl_tensor_upload (DlTensor *t, const void *data, DlDType src_dtype, GError **error);
gboolean dl_tensor_download (DlTensor *t, void *data, DlDType dst_dtype, GError **error);
gboolean dl_tensor_upload_f32 (DlTensor *t, const float *data, GError **error);
/* A newly allocated float copy of the tensor (g_free it). */
float *dl_tensor_download_f32 (DlTensor *t, GError **error);

/* How a shader sees this tensor (or a range of its elements). */
DlBinding dl_tensor_binding (DlTensor *t, gboolean write);
DlBinding dl_tensor_binding_range (DlTensor *t, int64_t elem_start, int64_t elem_count, gboolean write);
/* Elements between the descriptor start and the tensor start: pass it in push constants. */
guint32 dl_tensor_shader_offset (const DlTensor *t);

G_END_DECLS
