/* dl-op-util.h: helpers shared by the host side of the ops (not public API). */
#pragma once

#include "dl-error.h"
#include "tensor/dl-tensor.h"
#include "vk/dl-pipeline.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* Bind a tensor for a dispatch and keep it alive until the recorder finishes. */
DlBinding dl_op_bind (DlRecorder *rec, DlTensor *t, gboolean write);
DlBinding dl_op_bind_range (DlRecorder *rec, DlTensor *t, int64_t start, int64_t count, gboolean write);

/* The pipeline whose name is printf-formatted, without specialization constants. */
DlPipeline *dl_op_pipeline (DlRecorder *rec, GError **error, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* Workgroups for a grid-stride loop over n items with `wg` threads per group. */
guint32 dl_op_groups (DlRecorder *rec, int64_t n, guint wg);

/* Elements of `dtype` that one binding may span on this recorder's device (a
 * multiple of DL_BINDING_ALIGN bytes, less than dl_recorder_get_max_binding_range()
 * by the alignment slack), for ops that split huge tensors into several dispatches. */
int64_t dl_op_max_binding_elems (DlRecorder *rec, DlDType dtype);
/* Whether `count` elements of `t` from element `start` fit one binding
 * exactly: the range plus the slack of aligning its start down to
 * DL_BINDING_ALIGN (dl_op_max_binding_elems assumes the worst slack; a range
 * that starts aligned may be up to the device's whole limit). */
gboolean dl_op_range_fits_binding (DlRecorder *rec, DlTensor *t, int64_t start, int64_t count);

/* Rows (slices along shape[0]) of `t` that one binding may span on this recorder;
 * 0 when not even one row fits.  dl_op_bind_rows() binds rows [first, first +
 * count): with dl_binding_shader_offset() the shader indexes them from 0. */
int64_t dl_op_max_binding_rows (DlRecorder *rec, DlTensor *t);
DlBinding dl_op_bind_rows (DlRecorder *rec, DlTensor *t, int64_t first, int64_t count, gboolean write);

gboolean dl_op_check_same_numel (const char *op, DlTensor *a, DlTensor *b, GError **error);
gboolean dl_op_check_same_shape (const char *op, DlTensor *a, DlTensor *b, GError **error);
gboolean dl_op_check_dtype (const char *op, DlTensor *t, guint allowed_mask, GError **error);
gboolean dl_op_check_fits_u32 (const char *op, DlTensor *t, GError **error);

#define DL_DT_BIT(d) (1u << (d))
#define DL_DT_FLOATS (DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16) | DL_DT_BIT (DL_DTYPE_BF16))

G_END_DECLS
