/* Host side of random.comp. */
#include "dl-op-random.h"

#include "dl-op-eltwise.h"
#include "dl-op-util.h"

#include <math.h>

#define WG 256

typedef struct
{
  uint32_t n, off_a, off_d;
  uint32_t seed_lo, seed_hi;
  uint32_t offset_lo, offset_hi;
  uint32_t first_lo, first_hi;
  uint32_t a1111;
  uint32_t threshold;
  float p0, p1;
} RandomPush;

static gboolean
check_float (const char *op, DlTensor *t, GError **error)
{
  return dl_op_check_dtype (op, t, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error);
}

/* One dispatch per binding-sized chunk; `first` tells the shader where it is. */
static gboolean
dispatch_chunks (DlRecorder *rec, DlPipeline *pipe, DlTensor *dst, DlTensor *src, RandomPush pc, GError **error)
{
  int64_t total = dl_tensor_numel (dst);
  int64_t step = dl_op_max_binding_elems (rec, dst->dtype);
  for (int64_t start = 0; start < total; start += step)
    {
      int64_t n = MIN (step, total - start);
      DlBinding b[2];
      guint nb = 0;
      if (src)
        {
          b[nb] = dl_op_bind_range (rec, src, start, n, FALSE);
          pc.off_a = dl_binding_shader_offset (&b[nb], dl_dtype_size (src->dtype));
          nb++;
        }
      b[nb] = dl_op_bind_range (rec, dst, start, n, TRUE);
      pc.off_d = dl_binding_shader_offset (&b[nb], dl_dtype_size (dst->dtype));
      nb++;
      pc.n = (uint32_t)n;
      pc.first_lo = (uint32_t)start;
      pc.first_hi = (uint32_t)((guint64)start >> 32);
      if (!dl_recorder_dispatch (rec, pipe, b, nb, &pc, sizeof pc, dl_op_groups (rec, n, WG), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

static RandomPush
push_for (guint64 seed, guint64 offset)
{
  RandomPush pc = {
    .seed_lo = (uint32_t)seed,
    .seed_hi = (uint32_t)(seed >> 32),
    .offset_lo = (uint32_t)offset,
    .offset_hi = (uint32_t)(offset >> 32),
  };
  return pc;
}

gboolean
dl_op_random_normal (DlRecorder *rec, DlTensor *dst, DlRandomMode mode, guint64 seed, guint64 offset, float mean,
                     float std, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL, FALSE);
  g_return_val_if_fail (mode == DL_RANDOM_PHILOX || mode == DL_RANDOM_A1111, FALSE);
  if (!check_float ("random_normal", dst, error))
    return FALSE;
  if (mode == DL_RANDOM_A1111 && (dl_tensor_numel (dst) > (int64_t)G_MAXUINT32 + 1 || offset > G_MAXUINT32))
    {
      g_autofree char *d = dl_tensor_describe (dst);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "random_normal: the A1111 stream has 32-bit counters (%s, draw %" G_GUINT64_FORMAT ")", d, offset);
      return FALSE;
    }
  DlPipeline *pipe = dl_op_pipeline (rec, error, "random_normal_%s", dl_dtype_name (dst->dtype));
  if (!pipe)
    return FALSE;
  RandomPush pc = push_for (seed, offset);
  pc.a1111 = mode == DL_RANDOM_A1111;
  pc.p0 = mean;
  pc.p1 = std;
  return dispatch_chunks (rec, pipe, dst, NULL, pc, error);
}

gboolean
dl_op_random_uniform (DlRecorder *rec, DlTensor *dst, guint64 seed, guint64 offset, float lo, float hi, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL, FALSE);
  if (!check_float ("random_uniform", dst, error))
    return FALSE;
  DlPipeline *pipe = dl_op_pipeline (rec, error, "random_uniform_%s", dl_dtype_name (dst->dtype));
  if (!pipe)
    return FALSE;
  RandomPush pc = push_for (seed, offset);
  pc.p0 = lo;
  pc.p1 = hi;
  return dispatch_chunks (rec, pipe, dst, NULL, pc, error);
}

void
dl_dropout_params (float p, uint32_t *threshold, float *scale)
{
  double t = ldexp ((double)p, 32);
  *threshold = t >= 4294967295.0 ? G_MAXUINT32 : (uint32_t)llround (t);
  *scale = (float)(1.0 / (1.0 - (double)p));
}

gboolean
dl_op_dropout (DlRecorder *rec, DlTensor *dst, DlTensor *src, float p, guint64 seed, guint64 offset, GError **error)
{
  g_return_val_if_fail (rec != NULL && dst != NULL && src != NULL, FALSE);
  if (!check_float ("dropout", dst, error) || !dl_op_check_same_numel ("dropout", dst, src, error))
    return FALSE;
  if (src->dtype != dst->dtype)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "dropout: src (%s) and dst (%s) must share a dtype",
                   dl_dtype_name (src->dtype), dl_dtype_name (dst->dtype));
      return FALSE;
    }
  if (!(p >= 0.0f && p <= 1.0f))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "dropout: probability %g is not in [0, 1]", p);
      return FALSE;
    }
  if (p == 1.0f)
    return dl_op_fill (rec, dst, 0.0, error);
  if (p == 0.0f)
    return dst == src || dl_op_copy (rec, dst, src, error);
  DlPipeline *pipe = dl_op_pipeline (rec, error, "dropout_%s", dl_dtype_name (dst->dtype));
  if (!pipe)
    return FALSE;
  RandomPush pc = push_for (seed, offset);
  dl_dropout_params (p, &pc.threshold, &pc.p0);
  return dispatch_chunks (rec, pipe, dst, src, pc, error);
}
