/* dl-op-adamw8bit.c: see dl-op-adamw8bit.h.  Host side of adamw8bit.comp. */
#include "dl-op-adamw8bit.h"

#include "dl-op-eltwise.h"
#include "dl-op-util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* threads per workgroup in adamw8bit.comp (each owns 2 words = 8 elements) */
#define WG 256

typedef struct
{
  uint32_t n, n_blocks;
  uint32_t off_p, off_g, off_cm, off_cv, off_am, off_av, off_q, off_h, off_c, off_d;
  uint32_t has_clip;
} Adamw8bitPush;

/* float32 torch.linspace(start, end, steps) as the CPU kernel computes it
 * (PyTorch aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp linspace_kernel:
 * the first half from start, the second half back from end). */
static void
linspace_f32 (float *out, float start, float end, int steps)
{
  float step = (end - start) / (float)(steps - 1);
  int halfway = steps / 2;
  for (int i = 0; i < steps; i++)
    out[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

void
dl_adamw8bit_dynamic_map (float out[DL_ADAMW8BIT_MAP_LEN], gboolean is_signed)
{
  g_return_if_fail (out != NULL);
  /* bitsandbytes functional.py create_dynamic_map with max_exponent_bits 7,
   * total_bits 8: no "additional items" (2^(7 - 7) - 1 = 0), so 254 fraction
   * values, then 0 and 1.0; the arithmetic is float32 as torch does it. */
  int n = 0;
  for (int i = 0; i < 7; i++)
    {
      int items = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
      float bounds[129];
      linspace_f32 (bounds, 0.1f, 1.0f, items);
      float scale = (float)pow (10.0, i - 6);
      for (int j = 0; j + 1 < items; j++)
        {
          float mean = (bounds[j] + bounds[j + 1]) / 2.0f;
          out[n++] = scale * mean;
          if (is_signed)
            out[n++] = -(scale * mean);
        }
    }
  out[n++] = 0.0f;
  out[n++] = 1.0f;
  g_assert (n == DL_ADAMW8BIT_MAP_LEN);
  qsort (out, DL_ADAMW8BIT_MAP_LEN, sizeof (float), cmp_float);
}

DlTensor *
dl_adamw8bit_codebook_new (DlDevice *device, GError **error)
{
  g_return_val_if_fail (device != NULL, NULL);
  float maps[2 * DL_ADAMW8BIT_MAP_LEN];
  dl_adamw8bit_dynamic_map (maps, TRUE);
  dl_adamw8bit_dynamic_map (maps + DL_ADAMW8BIT_MAP_LEN, FALSE);
  g_autoptr (DlTensor) t =
    dl_tensor_new_2d (device, "adamw8bit codebook", DL_DTYPE_F32, 2, DL_ADAMW8BIT_MAP_LEN, error);
  if (!t || !dl_tensor_upload_f32 (t, maps, error))
    return NULL;
  return g_steal_pointer (&t);
}

int64_t
dl_adamw8bit_n_blocks (int64_t numel)
{
  return (MAX (numel, 0) + DL_ADAMW8BIT_BLOCK - 1) / DL_ADAMW8BIT_BLOCK;
}

static int64_t
code_words (int64_t numel)
{
  return (MAX (numel, 0) + 3) / 4;
}

guint64
dl_adamw8bit_state_bytes (int64_t numel)
{
  return 2 * 4 * (guint64)code_words (numel) + 2 * sizeof (float) * (guint64)dl_adamw8bit_n_blocks (numel);
}

guint64
dl_adamw8bit_state_device_bytes (DlDevice *device, int64_t numel)
{
  guint64 codes = 4 * (guint64)MAX (code_words (numel), 1),
          absmax = 4 * (guint64)MAX (dl_adamw8bit_n_blocks (numel), 1);
  return 2 * dl_device_allocation_size (device, codes) + 2 * dl_device_allocation_size (device, absmax);
}

void
dl_adamw8bit_state_free (DlAdamW8bitState *s)
{
  if (!s)
    return;
  g_clear_pointer (&s->m_codes, dl_tensor_unref);
  g_clear_pointer (&s->v_codes, dl_tensor_unref);
  g_clear_pointer (&s->m_absmax, dl_tensor_unref);
  g_clear_pointer (&s->v_absmax, dl_tensor_unref);
  g_free (s);
}

static DlTensor *
state_tensor (DlDevice *device, const char *what, const char *name, DlDType dtype, int64_t n, GError **error)
{
  g_autofree char *tname = g_strconcat (what, ".", name, NULL);
  /* a zero-element tensor still gets one element, so that it can be bound */
  return dl_tensor_new_1d (device, tname, dtype, MAX (n, 1), error);
}

DlAdamW8bitState *
dl_adamw8bit_state_new (DlDevice *device, const char *name, int64_t numel, GError **error)
{
  g_return_val_if_fail (device != NULL && name != NULL && numel >= 0, NULL);
  g_autoptr (DlAdamW8bitState) s = g_new0 (DlAdamW8bitState, 1);
  s->numel = numel;
  int64_t words = code_words (numel), blocks = dl_adamw8bit_n_blocks (numel);
  if (!(s->m_codes = state_tensor (device, "adam8_m", name, DL_DTYPE_I32, words, error)) ||
      !(s->v_codes = state_tensor (device, "adam8_v", name, DL_DTYPE_I32, words, error)) ||
      !(s->m_absmax = state_tensor (device, "adam8_m_absmax", name, DL_DTYPE_F32, blocks, error)) ||
      !(s->v_absmax = state_tensor (device, "adam8_v_absmax", name, DL_DTYPE_F32, blocks, error)))
    return NULL;
  return g_steal_pointer (&s);
}

gboolean
dl_adamw8bit_state_zero (DlRecorder *rec, DlAdamW8bitState *s, GError **error)
{
  g_return_val_if_fail (rec != NULL && s != NULL, FALSE);
  return dl_op_fill (rec, s->m_codes, 0, error) && dl_op_fill (rec, s->v_codes, 0, error) &&
         dl_op_fill (rec, s->m_absmax, 0, error) && dl_op_fill (rec, s->v_absmax, 0, error);
}

static gboolean
download_codes (DlTensor *t, int64_t numel, guint8 *out, GError **error)
{
  if (!out || numel == 0)
    return TRUE;
  g_autofree guint8 *words = g_try_malloc (dl_tensor_nbytes (t));
  if (!words)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory downloading “%s”", t->name);
      return FALSE;
    }
  if (!dl_tensor_download (t, words, DL_DTYPE_I32, error))
    return FALSE;
  memcpy (out, words, numel);
  return TRUE;
}

static gboolean
upload_codes (DlTensor *t, int64_t numel, const guint8 *in, GError **error)
{
  if (!in || numel == 0)
    return TRUE;
  g_autofree guint8 *words = g_try_malloc0 (dl_tensor_nbytes (t));
  if (!words)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory uploading “%s”", t->name);
      return FALSE;
    }
  memcpy (words, in, numel);
  return dl_tensor_upload (t, words, DL_DTYPE_I32, error);
}

static gboolean
download_absmax (DlTensor *t, int64_t blocks, float *out, GError **error)
{
  if (!out || blocks == 0)
    return TRUE;
  g_autofree float *all = dl_tensor_download_f32 (t, error);
  if (!all)
    return FALSE;
  memcpy (out, all, blocks * sizeof (float));
  return TRUE;
}

static gboolean
upload_absmax (DlTensor *t, int64_t blocks, const float *in, GError **error)
{
  if (!in || blocks == 0)
    return TRUE;
  for (int64_t b = 0; b < blocks; b++)
    if (!(isfinite (in[b]) && in[b] >= 0))
      {
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: block %" G_GINT64_FORMAT " has absmax %g",
                     t->name, b, in[b]);
        return FALSE;
      }
  return dl_tensor_upload_f32 (t, in, error); /* blocks == numel of t unless empty */
}

gboolean
dl_adamw8bit_state_download (DlAdamW8bitState *s, guint8 *m_codes, guint8 *v_codes, float *m_absmax, float *v_absmax,
                             GError **error)
{
  g_return_val_if_fail (s != NULL, FALSE);
  int64_t blocks = dl_adamw8bit_n_blocks (s->numel);
  return download_codes (s->m_codes, s->numel, m_codes, error) &&
         download_codes (s->v_codes, s->numel, v_codes, error) &&
         download_absmax (s->m_absmax, blocks, m_absmax, error) &&
         download_absmax (s->v_absmax, blocks, v_absmax, error);
}

gboolean
dl_adamw8bit_state_upload (DlAdamW8bitState *s, const guint8 *m_codes, const guint8 *v_codes, const float *m_absmax,
                           const float *v_absmax, GError **error)
{
  g_return_val_if_fail (s != NULL, FALSE);
  int64_t blocks = dl_adamw8bit_n_blocks (s->numel);
  return upload_codes (s->m_codes, s->numel, m_codes, error) && upload_codes (s->v_codes, s->numel, v_codes, error) &&
         upload_absmax (s->m_absmax, blocks, m_absmax, error) && upload_absmax (s->v_absmax, blocks, v_absmax, error);
}

static gboolean
check_state (const char *op, DlAdamW8bitState *s, DlTensor *param, GError **error)
{
  int64_t n = dl_tensor_numel (param);
  gboolean ok = s->numel == n && s->m_codes->dtype == DL_DTYPE_I32 && s->v_codes->dtype == DL_DTYPE_I32 &&
                dl_tensor_numel (s->m_codes) >= code_words (n) && dl_tensor_numel (s->v_codes) >= code_words (n) &&
                s->m_absmax->dtype == DL_DTYPE_F32 && s->v_absmax->dtype == DL_DTYPE_F32 &&
                dl_tensor_numel (s->m_absmax) >= dl_adamw8bit_n_blocks (n) &&
                dl_tensor_numel (s->v_absmax) >= dl_adamw8bit_n_blocks (n);
  if (!ok)
    {
      g_autofree char *d = dl_tensor_describe (param);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: the state of %" G_GINT64_FORMAT " elements does not fit parameter %s", op, s->numel, d);
    }
  return ok;
}

static gboolean
f32_at_least (const char *op, const char *what, DlTensor *t, int64_t min_numel, GError **error)
{
  if (t->dtype == DL_DTYPE_F32 && dl_tensor_numel (t) >= min_numel)
    return TRUE;
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
               "%s: %s %s must be f32 with at least %" G_GINT64_FORMAT " elements", op, what, d, min_numel);
  return FALSE;
}

gboolean
dl_op_adamw8bit (DlRecorder *rec, DlTensor *param, DlTensor *grad, DlAdamW8bitState *state, DlTensor *codebook,
                 DlTensor *hyper, DlTensor *clip, DlTensor *model_copy, GError **error)
{
  g_return_val_if_fail (
    rec != NULL && param != NULL && grad != NULL && state != NULL && codebook != NULL && hyper != NULL, FALSE);
  const char *op = "adamw8bit";
  int64_t n = dl_tensor_numel (param);
  if (!f32_at_least (op, "parameter", param, 0, error) ||
      !f32_at_least (op, "codebook", codebook, 2 * DL_ADAMW8BIT_MAP_LEN, error) ||
      !f32_at_least (op, "hyper buffer", hyper, DL_ADAMW_HYPER_LEN, error) ||
      (clip && !f32_at_least (op, "clip buffer", clip, 2, error)) ||
      !dl_op_check_dtype (op, grad, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error) ||
      !dl_op_check_same_numel (op, param, grad, error) || !check_state (op, state, param, error) ||
      (model_copy &&
       (!dl_op_check_dtype (op, model_copy, DL_DT_BIT (DL_DTYPE_F16) | DL_DT_BIT (DL_DTYPE_BF16), error) ||
        !dl_op_check_same_numel (op, param, model_copy, error))))
    return FALSE;
  if (n == 0)
    return TRUE;
  /* whole blocks per dispatch; f32 parameters are the widest per-element binding */
  int64_t step = dl_op_max_binding_elems (rec, DL_DTYPE_F32);
  step -= step % DL_ADAMW8BIT_BLOCK;
  if (step <= 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "%s: a binding of %" G_GUINT64_FORMAT " bytes cannot hold one block of %d f32 elements", op,
                   dl_recorder_get_max_binding_range (rec), DL_ADAMW8BIT_BLOCK);
      return FALSE;
    }
  DlPipeline *p = model_copy ? dl_op_pipeline (rec, error, "adamw8bit_%s_copy_%s", dl_dtype_name (grad->dtype),
                                               dl_dtype_name (model_copy->dtype))
                             : dl_op_pipeline (rec, error, "adamw8bit_%s", dl_dtype_name (grad->dtype));
  if (!p)
    return FALSE;
  for (int64_t start = 0; start < n; start += step)
    {
      int64_t len = MIN (step, n - start);
      int64_t blocks = dl_adamw8bit_n_blocks (len), block0 = start / DL_ADAMW8BIT_BLOCK;
      DlBinding b[10] = {
        dl_op_bind_range (rec, param, start, len, TRUE),
        dl_op_bind_range (rec, grad, start, len, FALSE),
        dl_op_bind_range (rec, state->m_codes, start / 4, code_words (len), TRUE),
        dl_op_bind_range (rec, state->v_codes, start / 4, code_words (len), TRUE),
        dl_op_bind_range (rec, state->m_absmax, block0, blocks, TRUE),
        dl_op_bind_range (rec, state->v_absmax, block0, blocks, TRUE),
        dl_op_bind (rec, codebook, FALSE),
        dl_op_bind (rec, hyper, FALSE),
        dl_op_bind (rec, clip ? clip : hyper, FALSE),
      };
      guint nb = 9;
      if (model_copy)
        b[nb++] = dl_op_bind_range (rec, model_copy, start, len, TRUE);
      Adamw8bitPush pc = {
        .n = (uint32_t)len,
        .n_blocks = (uint32_t)blocks,
        .off_p = dl_binding_shader_offset (&b[0], 4),
        .off_g = dl_binding_shader_offset (&b[1], dl_dtype_size (grad->dtype)),
        .off_cm = dl_binding_shader_offset (&b[2], 4),
        .off_cv = dl_binding_shader_offset (&b[3], 4),
        .off_am = dl_binding_shader_offset (&b[4], 4),
        .off_av = dl_binding_shader_offset (&b[5], 4),
        .off_q = dl_binding_shader_offset (&b[6], 4),
        .off_h = dl_binding_shader_offset (&b[7], 4),
        .off_c = dl_binding_shader_offset (&b[8], 4),
        .off_d = model_copy ? dl_binding_shader_offset (&b[9], dl_dtype_size (model_copy->dtype)) : 0,
        .has_clip = clip != NULL,
      };
      /* one workgroup per block; the shader loops when the group count is capped */
      if (!dl_recorder_dispatch (rec, p, b, nb, &pc, sizeof pc, dl_op_groups (rec, blocks, 1), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}
