/* dl-op-eltwise.h: fill, copy/cast/permute, broadcasting binary ops, scaling. */
#pragma once

#include "tensor/dl-tensor.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* dst[:] = value (any dtype; integers take the value truncated). */
gboolean dl_op_fill (DlRecorder *rec, DlTensor *dst, double value, GError **error);

/* dst = src converted to dst's dtype; shapes may differ if the element counts match.
 * f32/f16/bf16 in any combination, i32 -> i32 and i32 -> f32. */
gboolean dl_op_copy (DlRecorder *rec, DlTensor *dst, DlTensor *src, GError **error);

/* dst (contiguous, its own shape) gathers src[src_offset + sum_i idx_i * src_strides[i]]
 * (element strides, one per dst dimension): transposes, slices, permutes. */
gboolean dl_op_copy_strided (DlRecorder *rec, DlTensor *dst, DlTensor *src, int64_t src_offset,
                             const int64_t *src_strides, GError **error);

/* dst.shape[i] = src.shape[perm[i]]; dst[idx] = src[idx permuted]. */
gboolean dl_op_permute (DlRecorder *rec, DlTensor *dst, DlTensor *src, const int *perm, GError **error);

typedef enum
{
  DL_BINARY_ADD,
  DL_BINARY_SUB,
  DL_BINARY_MUL,
  DL_BINARY_DIV,
} DlBinaryOp;

/* dst = a (op) b with numpy broadcasting (shapes right-aligned, size-1 dimensions
 * stretch).  All three share one float dtype (f32 or f16); dst may be a or b. */
gboolean dl_op_binary (DlRecorder *rec, DlBinaryOp op, DlTensor *dst, DlTensor *a, DlTensor *b, GError **error);
gboolean dl_op_add (DlRecorder *rec, DlTensor *dst, DlTensor *a, DlTensor *b, GError **error);
gboolean dl_op_mul (DlRecorder *rec, DlTensor *dst, DlTensor *a, DlTensor *b, GError **error);

/* dst = alpha * src */
gboolean dl_op_scale (DlRecorder *rec, DlTensor *dst, DlTensor *src, float alpha, GError **error);
/* dst = alpha * src + beta * dst (gradient accumulation is beta = 1) */
gboolean dl_op_axpby (DlRecorder *rec, DlTensor *dst, DlTensor *src, float alpha, float beta, GError **error);

G_END_DECLS
