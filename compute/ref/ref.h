/* ref.h: CPU reference implementations of the ops, the oracle every shader is
 * tested against.  Plain loops with double accumulators, written from the PyTorch
 * definitions; speed is not a goal.  All arrays are row-major float. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "dl-dtype.h"

G_BEGIN_DECLS

/* Round every element as storing it in `dtype` would (f16/bf16 round to nearest even). */
void ref_round_to_dtype (float *x, gsize n, DlDType dtype);

/* reference: torch.matmul / torch.baddbmm.
 * d[p, m, n] = alpha * sum_k A[p, m, k] B[p, k, n] + bias[n] + beta * d[p, m, n]
 * with A = a ([M, K]) or aᵀ (a stored [K, M]), B = b ([K, N]) or bᵀ (b stored [N, K]);
 * batch_a / batch_b are `batch` or 1 (broadcast). */
void ref_matmul (float *d, const float *a, gboolean trans_a, const float *b, gboolean trans_b, const float *bias,
                 int64_t batch, int64_t batch_a, int64_t batch_b, int64_t M, int64_t N, int64_t K, float alpha,
                 float beta);

/* reference: torch.add/sub/mul/div with broadcasting.  Shapes right-aligned;
 * op: 0 add, 1 sub, 2 mul, 3 div (DlBinaryOp order). */
void ref_binary (int op, float *d, int d_ndim, const int64_t *d_shape, const float *a, int a_ndim,
                 const int64_t *a_shape, const float *b, int b_ndim, const int64_t *b_shape);

/* d (contiguous, shape) = src[offset + sum idx_i * strides_i] */
void ref_copy_strided (float *d, int ndim, const int64_t *shape, const float *src, int64_t offset,
                       const int64_t *strides);

/* d[o, i] = scale * sum_r src[o, r, i] */
void ref_sum (float *d, const float *src, int64_t outer, int64_t R, int64_t inner, double scale);

G_END_DECLS
