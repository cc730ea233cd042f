/* Host side of attn_fwd.comp, attn_delta.comp, attn_bwd_q.comp and
 * attn_bwd_kv.comp: shape checks, tile choice against the device's shared
 * memory, dispatch. */
#include "dl-op-attention.h"

#include "dl-op-eltwise.h"
#include "dl-op-util.h"

#include <math.h>
#include <stdio.h>

#define THREADS_PER_ROW 8u
#define MAX_HEAD_DIM 256

enum
{
  FLAG_CAUSAL = 1,
  FLAG_WRITE_LSE = 2,
};

typedef struct
{
  uint32_t B, H, Nq, Nk;
  uint32_t off_q, off_k, off_v, off_o;
  uint32_t off_l, off_dl;
  uint32_t off_g0, off_g1;
  float scale_log2;
  float scale;
  uint32_t flags;
} AttnPush;

typedef struct
{
  uint32_t rows, H, Nq, D;
  uint32_t off_o, off_g, off_dl;
} DeltaPush;

/* Shared floats of each pass; must match the shared arrays of the shaders. */
static guint
shared_floats (DlAttentionPass pass, guint br, guint bc, guint D)
{
  guint dp = D + 1;
  switch (pass)
    {
    case DL_ATTENTION_PASS_FORWARD:
      return br * dp + bc * dp + br * (bc + 1) + br * THREADS_PER_ROW;
    case DL_ATTENTION_PASS_BACKWARD_Q:
      return 2 * br * dp + 2 * bc * dp + br * (bc + 1);
    case DL_ATTENTION_PASS_BACKWARD_KV:
    default:
      return 2 * bc * dp + 2 * br * dp + 2 * bc * (br + 1) + 2 * br;
    }
}

/* threads of a workgroup: T per query row, or per key in the dK/dV pass */
static guint
pass_threads (DlAttentionPass pass, guint br, guint bc)
{
  return (pass == DL_ATTENTION_PASS_BACKWARD_KV ? bc : br) * THREADS_PER_ROW;
}

gboolean
dl_attention_tiles (DlDevice *device, DlAttentionPass pass, int64_t D, const DlAttentionParams *params, guint *block_q,
                    guint *block_k, guint *shared_bytes)
{
  g_return_val_if_fail (device != NULL && params != NULL, FALSE);
  /* largest first: more rows per tile = more reuse of each K/V (or Q/dO) load */
  static const guint cand[][2] = { { 64, 64 }, { 32, 64 }, { 64, 32 }, { 32, 32 }, { 16, 32 },
                                   { 32, 16 }, { 16, 16 }, { 8, 16 },  { 16, 8 },  { 8, 8 } };
  const DlDeviceInfo *info = dl_device_get_info (device);
  /* the device's tuning ($DREAMLOOM_ATTN_TILE=<block_q>x<block_k>) forces a
   * tile, like $DREAMLOOM_MATMUL_TILE; explicit params win */
  guint env_q = dl_device_get_tuning (device)->attn_block_q, env_k = dl_device_get_tuning (device)->attn_block_k;
  for (guint c = 0; c < G_N_ELEMENTS (cand); c++)
    {
      guint br = params->block_q ? params->block_q : env_q ? env_q : cand[c][0];
      guint bc = params->block_k ? params->block_k : env_k ? env_k : cand[c][1];
      guint bytes = shared_floats (pass, br, bc, (guint)D) * 4;
      guint threads = pass_threads (pass, br, bc);
      gboolean fits = bytes <= info->max_shared_memory && threads <= info->max_workgroup_invocations &&
                      threads <= info->max_workgroup_size[0] && br % THREADS_PER_ROW == 0 && bc % THREADS_PER_ROW == 0;
      if (fits)
        {
          *block_q = br;
          *block_k = bc;
          if (shared_bytes)
            *shared_bytes = bytes;
          return TRUE;
        }
      if ((params->block_q && params->block_k) || (env_q && env_k))
        break; /* the caller's choice does not fit */
    }
  return FALSE;
}

typedef struct
{
  int64_t B, Nq, Nk, C, H, D;
} Dims;

static gboolean
dims_error (GError **error, const char *op, DlTensor *t, const char *why)
{
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s: %s", op, d, why);
  return FALSE;
}

/* [B, N, C] (or [N, C]) → batch, tokens, channels */
static gboolean
token_dims (const char *op, DlTensor *t, int64_t *B, int64_t *N, int64_t *C, GError **error)
{
  if (t->ndim != 2 && t->ndim != 3)
    return dims_error (error, op, t, "expected [B, tokens, heads*head_dim] or [tokens, heads*head_dim]");
  *B = t->ndim == 3 ? t->shape[0] : 1;
  *N = t->shape[t->ndim - 2];
  *C = t->shape[t->ndim - 1];
  return TRUE;
}

static gboolean
check_like (const char *op, DlTensor *t, DlTensor *ref, GError **error)
{
  if (!dl_op_check_same_shape (op, t, ref, error))
    return FALSE;
  if (t->dtype != ref->dtype)
    {
      g_autofree char *a = dl_tensor_describe (t);
      g_autofree char *b = dl_tensor_describe (ref);
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s and %s must share a dtype", op, a, b);
      return FALSE;
    }
  return dl_op_check_fits_u32 (op, t, error);
}

static gboolean
check_stats (const char *op, DlTensor *t, const Dims *d, GError **error)
{
  if (t->dtype != DL_DTYPE_F32 || dl_tensor_numel (t) != d->B * d->H * d->Nq)
    {
      g_autofree char *s = g_strdup_printf ("expected %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                                            " f32 elements ([B, heads, Nq])",
                                            d->B, d->H, d->Nq);
      return dims_error (error, op, t, s);
    }
  return TRUE;
}

static gboolean
check_inputs (const char *op, DlTensor *q, DlTensor *k, DlTensor *v, const DlAttentionParams *prm, Dims *d,
              GError **error)
{
  int64_t bk, ck, bv, nv, cv;
  if (!token_dims (op, q, &d->B, &d->Nq, &d->C, error) || !token_dims (op, k, &bk, &d->Nk, &ck, error) ||
      !token_dims (op, v, &bv, &nv, &cv, error))
    return FALSE;
  if (!dl_op_check_dtype (op, q, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error) ||
      !dl_op_check_fits_u32 (op, q, error))
    return FALSE;
  if (k->dtype != q->dtype || v->dtype != q->dtype)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: q, k and v must share a dtype (%s, %s, %s)", op,
                   dl_dtype_name (q->dtype), dl_dtype_name (k->dtype), dl_dtype_name (v->dtype));
      return FALSE;
    }
  if (bk != d->B || bv != d->B || ck != d->C || cv != d->C || nv != d->Nk)
    {
      g_autofree char *a = dl_tensor_describe (q);
      g_autofree char *b = dl_tensor_describe (k);
      g_autofree char *c = dl_tensor_describe (v);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: q %s, k %s and v %s disagree (batch and channels must match, k and v tokens too)", op, a, b, c);
      return FALSE;
    }
  if (prm->n_heads <= 0 || d->C % prm->n_heads != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: %" G_GINT64_FORMAT " channels do not split into %d heads", op, d->C, prm->n_heads);
      return FALSE;
    }
  d->H = prm->n_heads;
  d->D = d->C / d->H;
  if (d->D > MAX_HEAD_DIM)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: head size %" G_GINT64_FORMAT " is above %d", op, d->D,
                   MAX_HEAD_DIM);
      return FALSE;
    }
  if (d->Nk == 0 && d->Nq > 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: no keys to attend to", op);
      return FALSE;
    }
  if (!isfinite (prm->scale))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: scale %g is not finite", op, prm->scale);
      return FALSE;
    }
  if (d->B > 65535 || d->H > 65535)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: more than 65535 batches or heads", op);
      return FALSE;
    }
  return dl_op_check_fits_u32 (op, k, error) && dl_op_check_fits_u32 (op, v, error);
}

static AttnPush
base_push (const Dims *d, const DlAttentionParams *prm)
{
  float scale = prm->scale != 0.0f ? prm->scale : (float)(1.0 / sqrt ((double)d->D));
  AttnPush pc = {
    .B = (uint32_t)d->B,
    .H = (uint32_t)d->H,
    .Nq = (uint32_t)d->Nq,
    .Nk = (uint32_t)d->Nk,
    .scale_log2 = (float)(scale * M_LOG2E),
    .scale = scale,
    .flags = prm->causal ? FLAG_CAUSAL : 0,
  };
  return pc;
}

static DlPipeline *
pass_pipeline (DlRecorder *rec, DlAttentionPass pass, const char *shader, const Dims *d, const DlAttentionParams *prm,
               guint *br, guint *bc, GError **error)
{
  DlDevice *dev = dl_recorder_get_device (rec);
  if (!dl_attention_tiles (dev, pass, d->D, prm, br, bc, NULL))
    {
      g_set_error (
        error, DL_ERROR, DL_ERROR_UNSUPPORTED,
        "attention: no tile of head size %" G_GINT64_FORMAT " (blocks %u x %u) fits %s's %u bytes of shared memory",
        d->D, prm->block_q, prm->block_k, dl_device_get_info (dev)->name, dl_device_get_info (dev)->max_shared_memory);
      return NULL;
    }
  uint32_t spec[5] = { pass_threads (pass, *br, *bc), *br, *bc, (uint32_t)d->D, THREADS_PER_ROW };
  return dl_device_get_pipeline (dev, shader, spec, G_N_ELEMENTS (spec), error);
}

static guint32
tiles_of (int64_t n, guint block)
{
  return (guint32)((n + block - 1) / block);
}

gboolean
dl_op_attention (DlRecorder *rec, DlTensor *o, DlTensor *lse, DlTensor *q, DlTensor *k, DlTensor *v,
                 const DlAttentionParams *params, GError **error)
{
  g_return_val_if_fail (rec != NULL && o != NULL && q != NULL && k != NULL && v != NULL && params != NULL, FALSE);
  Dims d;
  if (!check_inputs ("attention", q, k, v, params, &d, error) || !check_like ("attention", o, q, error) ||
      (lse && !check_stats ("attention", lse, &d, error)))
    return FALSE;
  if (d.B == 0 || d.Nq == 0)
    return TRUE;
  guint br, bc;
  g_autofree char *name = g_strdup_printf ("attn_fwd_%s", dl_dtype_name (q->dtype));
  DlPipeline *p = pass_pipeline (rec, DL_ATTENTION_PASS_FORWARD, name, &d, params, &br, &bc, error);
  if (!p)
    return FALSE;
  if (tiles_of (d.Nq, br) > 65535)
    return dims_error (error, "attention", q, "too many query tiles for one dispatch");
  gsize es = dl_dtype_size (q->dtype);
  AttnPush pc = base_push (&d, params);
  DlBinding b[5] = {
    dl_op_bind (rec, q, FALSE),
    dl_op_bind (rec, k, FALSE),
    dl_op_bind (rec, v, FALSE),
    dl_op_bind (rec, o, TRUE),
    /* without lse the shader writes none; o stands in for the binding */
    lse ? dl_op_bind (rec, lse, TRUE) : dl_op_bind (rec, o, TRUE),
  };
  pc.off_q = dl_binding_shader_offset (&b[0], es);
  pc.off_k = dl_binding_shader_offset (&b[1], es);
  pc.off_v = dl_binding_shader_offset (&b[2], es);
  pc.off_o = dl_binding_shader_offset (&b[3], es);
  pc.off_l = lse ? dl_binding_shader_offset (&b[4], 4) : 0;
  if (lse)
    pc.flags |= FLAG_WRITE_LSE;
  return dl_recorder_dispatch (rec, p, b, 5, &pc, sizeof pc, tiles_of (d.Nq, br), (guint32)d.H, (guint32)d.B, error);
}

gboolean
dl_op_attention_backward (DlRecorder *rec, DlTensor *dq, DlTensor *dk, DlTensor *dv, DlTensor *q, DlTensor *k,
                          DlTensor *v, DlTensor *o, DlTensor *lse, DlTensor *dout, const DlAttentionParams *params,
                          GError **error)
{
  g_return_val_if_fail (rec != NULL && q != NULL && k != NULL && v != NULL && o != NULL && lse != NULL &&
                          dout != NULL && params != NULL,
                        FALSE);
  const char *op = "attention_backward";
  if ((dk == NULL) != (dv == NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: dk and dv must both be given or both be NULL", op);
      return FALSE;
    }
  Dims d;
  if (!check_inputs (op, q, k, v, params, &d, error) || !check_like (op, o, q, error) ||
      !check_like (op, dout, q, error) || (dq && !check_like (op, dq, q, error)) ||
      (dk && (!check_like (op, dk, k, error) || !check_like (op, dv, v, error))) || !check_stats (op, lse, &d, error))
    return FALSE;
  if (d.B == 0 || (d.Nq == 0 && d.Nk == 0))
    return TRUE;
  DlDevice *dev = dl_recorder_get_device (rec);
  gsize es = dl_dtype_size (q->dtype);
  const char *dt = dl_dtype_name (q->dtype);

  if (d.Nq == 0)
    {
      /* no queries: the key gradients are zero */
      return !dk || (dl_op_fill (rec, dk, 0.0, error) && dl_op_fill (rec, dv, 0.0, error));
    }

  /* delta = rowsum(dO * O) */
  int64_t sshape[3] = { d.B, d.H, d.Nq };
  g_autoptr (DlTensor) delta = dl_tensor_new (dev, "attention delta", DL_DTYPE_F32, 3, sshape, error);
  if (!delta)
    return FALSE;
  {
    g_autofree char *name = g_strdup_printf ("attn_delta_%s", dt);
    DlPipeline *p = dl_op_pipeline (rec, error, "%s", name);
    if (!p)
      return FALSE;
    DlBinding b[3] = { dl_op_bind (rec, o, FALSE), dl_op_bind (rec, dout, FALSE), dl_op_bind (rec, delta, TRUE) };
    int64_t rows = d.B * d.Nq * d.H;
    DeltaPush pc = {
      .rows = (uint32_t)rows,
      .H = (uint32_t)d.H,
      .Nq = (uint32_t)d.Nq,
      .D = (uint32_t)d.D,
      .off_o = dl_binding_shader_offset (&b[0], es),
      .off_g = dl_binding_shader_offset (&b[1], es),
      .off_dl = dl_binding_shader_offset (&b[2], 4),
    };
    if (!dl_recorder_dispatch (rec, p, b, 3, &pc, sizeof pc, dl_op_groups (rec, rows, 256), 1, 1, error))
      return FALSE;
  }

  AttnPush base = base_push (&d, params);
  guint br, bc;
  if (dq)
    {
      g_autofree char *name = g_strdup_printf ("attn_bwd_q_%s", dt);
      DlPipeline *p = pass_pipeline (rec, DL_ATTENTION_PASS_BACKWARD_Q, name, &d, params, &br, &bc, error);
      if (!p)
        return FALSE;
      if (tiles_of (d.Nq, br) > 65535)
        return dims_error (error, op, q, "too many query tiles for one dispatch");
      DlBinding b[7] = {
        dl_op_bind (rec, q, FALSE),    dl_op_bind (rec, k, FALSE),   dl_op_bind (rec, v, FALSE),
        dl_op_bind (rec, dout, FALSE), dl_op_bind (rec, lse, FALSE), dl_op_bind (rec, delta, FALSE),
        dl_op_bind (rec, dq, TRUE),
      };
      AttnPush pc = base;
      pc.off_q = dl_binding_shader_offset (&b[0], es);
      pc.off_k = dl_binding_shader_offset (&b[1], es);
      pc.off_v = dl_binding_shader_offset (&b[2], es);
      pc.off_o = dl_binding_shader_offset (&b[3], es);
      pc.off_l = dl_binding_shader_offset (&b[4], 4);
      pc.off_dl = dl_binding_shader_offset (&b[5], 4);
      pc.off_g0 = dl_binding_shader_offset (&b[6], es);
      if (!dl_recorder_dispatch (rec, p, b, 7, &pc, sizeof pc, tiles_of (d.Nq, br), (guint32)d.H, (guint32)d.B, error))
        return FALSE;
    }
  if (dk)
    {
      g_autofree char *name = g_strdup_printf ("attn_bwd_kv_%s", dt);
      DlPipeline *p = pass_pipeline (rec, DL_ATTENTION_PASS_BACKWARD_KV, name, &d, params, &br, &bc, error);
      if (!p)
        return FALSE;
      if (tiles_of (d.Nk, bc) > 65535)
        return dims_error (error, op, k, "too many key tiles for one dispatch");
      DlBinding b[8] = {
        dl_op_bind (rec, q, FALSE),    dl_op_bind (rec, k, FALSE),   dl_op_bind (rec, v, FALSE),
        dl_op_bind (rec, dout, FALSE), dl_op_bind (rec, lse, FALSE), dl_op_bind (rec, delta, FALSE),
        dl_op_bind (rec, dk, TRUE),    dl_op_bind (rec, dv, TRUE),
      };
      AttnPush pc = base;
      pc.off_q = dl_binding_shader_offset (&b[0], es);
      pc.off_k = dl_binding_shader_offset (&b[1], es);
      pc.off_v = dl_binding_shader_offset (&b[2], es);
      pc.off_o = dl_binding_shader_offset (&b[3], es);
      pc.off_l = dl_binding_shader_offset (&b[4], 4);
      pc.off_dl = dl_binding_shader_offset (&b[5], 4);
      pc.off_g0 = dl_binding_shader_offset (&b[6], es);
      pc.off_g1 = dl_binding_shader_offset (&b[7], es);
      if (!dl_recorder_dispatch (rec, p, b, 8, &pc, sizeof pc, tiles_of (d.Nk, bc), (guint32)d.H, (guint32)d.B, error))
        return FALSE;
    }
  return TRUE;
}
