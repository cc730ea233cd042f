/* bench ops: attention (forward and backward at SD 1.5's shapes), softmax,
 * embeddings, the loss, random numbers and the optimizer step; and a check that
 * attention's device memory grows linearly with the token count. */
#include "dl-bench-ops.h"

#include "dl-error.h"

#include <stdio.h>

/* ---- attention ---- */

typedef struct
{
  DlTensor *q, *k, *v, *o, *lse, *g, *dq, *dk, *dv;
  DlAttentionParams prm;
} Attn;

static void
attn_clear (Attn *a)
{
  DlTensor **all[] = { &a->q, &a->k, &a->v, &a->o, &a->lse, &a->g, &a->dq, &a->dk, &a->dv };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], dl_tensor_unref);
}

static gboolean
attn_alloc (DlBenchOps *b, Attn *a, int64_t B, int64_t Nq, int64_t Nk, int64_t H, int64_t D, gboolean causal,
            GError **error)
{
  int64_t C = H * D, sq[3] = { B, Nq, C }, sk[3] = { B, Nk, C }, ss[3] = { B, H, Nq };
  DlDType dt = DL_DTYPE_F16;
  a->prm = (DlAttentionParams){ .n_heads = (int)H, .causal = causal };
  return (a->q = dl_bench_ops_tensor (b, "q", dt, 3, sq, error)) &&
         (a->k = dl_bench_ops_tensor (b, "k", dt, 3, sk, error)) &&
         (a->v = dl_bench_ops_tensor (b, "v", dt, 3, sk, error)) &&
         (a->o = dl_bench_ops_tensor (b, "o", dt, 3, sq, error)) &&
         (a->lse = dl_bench_ops_tensor (b, "lse", DL_DTYPE_F32, 3, ss, error)) &&
         (a->g = dl_bench_ops_tensor (b, "dout", dt, 3, sq, error)) &&
         (a->dq = dl_bench_ops_tensor (b, "dq", dt, 3, sq, error)) &&
         (a->dk = dl_bench_ops_tensor (b, "dk", dt, 3, sk, error)) &&
         (a->dv = dl_bench_ops_tensor (b, "dv", dt, 3, sk, error));
}

static gboolean
rec_attn_fwd (DlRecorder *rec, gpointer data, GError **error)
{
  Attn *a = data;
  return dl_op_attention (rec, a->o, a->lse, a->q, a->k, a->v, &a->prm, error);
}

static gboolean
rec_attn_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Attn *a = data;
  return dl_op_attention_backward (rec, a->dq, a->dk, a->dv, a->q, a->k, a->v, a->o, a->lse, a->g, &a->prm, error);
}

static gboolean
bench_attention (DlBenchOps *b, GError **error)
{
  gboolean small = dl_bench_ops_is_small (b);
  /* SD 1.5 at 512²: self-attention per UNet level (8 heads), cross-attention to
   * the 77 text tokens, and CLIP's causal 77 (12 heads of 64).  On a CPU device
   * the UNet levels have a quarter of the tokens. */
  static const struct
  {
    int64_t n, nk, heads, d;
    gboolean causal;
    const char *what;
  } shapes[] = {
    { 4096, 0, 8, 40, FALSE, "self" }, { 1024, 0, 8, 80, FALSE, "self" },   { 256, 0, 8, 160, FALSE, "self" },
    { 64, 0, 8, 160, FALSE, "self" },  { 4096, 77, 8, 40, FALSE, "cross" }, { 77, 0, 12, 64, TRUE, "CLIP" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      int64_t n = shapes[i].n, H = shapes[i].heads, D = shapes[i].d, B = 1;
      if (small && !shapes[i].causal)
        n = MAX (n / 4, 16);
      int64_t nk = shapes[i].nk ? shapes[i].nk : n;
      Attn a = { 0 };
      g_autofree char *shape =
        g_strdup_printf ("%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " h%" G_GINT64_FORMAT " d%" G_GINT64_FORMAT " f16",
                         shapes[i].what, n, nk, H, D);
      /* useful FLOPs as FlashAttention counts them: two products forward, five
       * backward (ours recomputes two more: S and dP in both backward passes) */
      double pairs = (double)B * H * n * nk * (shapes[i].causal ? 0.5 : 1.0);
      double io = 2.0 * B * (2.0 * n + 2.0 * nk) * H * D;
      gboolean ok = attn_alloc (b, &a, B, n, nk, H, D, shapes[i].causal, error) &&
                    dl_bench_ops_case (b, "attention fwd", shape, 4.0 * pairs * D, io, rec_attn_fwd, &a, error) &&
                    dl_bench_ops_case (b, "attention bwd", shape, 10.0 * pairs * D, 2 * io, rec_attn_bwd, &a, error);
      attn_clear (&a);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* Peak device memory of one forward + backward at 1024, 2048 and 4096 tokens
 * (SD's 64² level: 8 heads of 40): it should grow like N, with no N² term. */
static gboolean
bench_attention_memory (DlBenchOps *b, GError **error)
{
  const char *op = "attention memory";
  if (!dl_bench_ops_wants (b, op))
    return TRUE;
  DlDevice *dev = dl_bench_ops_get_device (b);
  g_autoptr (DlRecorder) rec = dl_recorder_new (dev, error);
  if (!rec)
    return FALSE;
  printf ("%s: peak device memory of one forward + backward, 8 heads x 40, f16\n", op);
  for (int64_t n = 1024; n <= 4096; n *= 2)
    {
      Attn a = { 0 };
      guint64 before = dl_device_get_memory_in_use (dev);
      if (!attn_alloc (b, &a, 1, n, n, 8, 40, FALSE, error))
        {
          attn_clear (&a);
          return FALSE;
        }
      guint64 tensors = dl_device_get_memory_in_use (dev) - before;
      dl_device_reset_memory_peak (dev);
      gint64 t0 = g_get_monotonic_time ();
      gboolean ok = rec_attn_fwd (rec, &a, error) && rec_attn_bwd (rec, &a, error) && dl_recorder_finish (rec, error);
      gint64 t1 = g_get_monotonic_time ();
      guint64 peak = dl_device_get_memory_peak (dev) - before;
      attn_clear (&a);
      if (!ok)
        return FALSE;
      double scores = 8.0 * n * n * 2; /* one f16 score matrix per head */
      printf (
        "  N %5" G_GINT64_FORMAT ": peak %8.2f MiB (q, k, v, o, dO, dq, dk, dv, lse: %8.2f MiB; op scratch %6.3f MiB)"
        "; a materialised P would be %8.1f MiB; %.2f s wall\n",
        n, peak / 1048576.0, tensors / 1048576.0, (peak - tensors) / 1048576.0, scores / 1048576.0, (t1 - t0) * 1e-6);
      fflush (stdout);
    }
  return TRUE;
}

/* ---- softmax ---- */

typedef struct
{
  DlTensor *x, *y, *g, *dx;
} Soft;

static gboolean
rec_softmax (DlRecorder *rec, gpointer data, GError **error)
{
  Soft *s = data;
  return dl_op_softmax (rec, s->y, s->x, 0.125f, error);
}

static gboolean
rec_softmax_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Soft *s = data;
  return dl_op_softmax_backward (rec, s->dx, s->y, s->g, 0.125f, error);
}

static gboolean
bench_softmax (DlBenchOps *b, GError **error)
{
  gboolean small = dl_bench_ops_is_small (b);
  /* naive cross-attention scores [heads * tokens, 77] and a 1024-token self-attention */
  int64_t shapes[2][2] = { { 8 * (small ? 1024 : 4096), 77 }, { 8 * (small ? 256 : 1024), small ? 256 : 1024 } };
  for (int i = 0; i < 2; i++)
    {
      Soft s = { 0 };
      g_autofree char *shape =
        g_strdup_printf ("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] f16", shapes[i][0], shapes[i][1]);
      double n = (double)shapes[i][0] * shapes[i][1];
      gboolean ok = (s.x = dl_bench_ops_tensor (b, "x", DL_DTYPE_F16, 2, shapes[i], error)) &&
                    (s.y = dl_bench_ops_tensor (b, "y", DL_DTYPE_F16, 2, shapes[i], error)) &&
                    (s.g = dl_bench_ops_tensor (b, "g", DL_DTYPE_F16, 2, shapes[i], error)) &&
                    (s.dx = dl_bench_ops_tensor (b, "dx", DL_DTYPE_F16, 2, shapes[i], error)) &&
                    dl_bench_ops_case (b, "softmax", shape, 0, 4.0 * n, rec_softmax, &s, error) &&
                    dl_bench_ops_case (b, "softmax bwd", shape, 0, 6.0 * n, rec_softmax_bwd, &s, error);
      g_clear_pointer (&s.x, dl_tensor_unref);
      g_clear_pointer (&s.y, dl_tensor_unref);
      g_clear_pointer (&s.g, dl_tensor_unref);
      g_clear_pointer (&s.dx, dl_tensor_unref);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* ---- embeddings, loss, random ---- */

typedef struct
{
  DlTensor *ids, *table, *pos, *out, *dtable, *dpos, *t, *temb;
  DlTensor *pred, *target, *w, *loss, *dpred;
  DlTensor *noise, *act;
} Misc;

static void
misc_clear (Misc *m)
{
  DlTensor **all[] = { &m->ids,  &m->table,  &m->pos, &m->out,  &m->dtable, &m->dpos,  &m->t,  &m->temb,
                       &m->pred, &m->target, &m->w,   &m->loss, &m->dpred,  &m->noise, &m->act };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], dl_tensor_unref);
}

static gboolean
rec_embed (DlRecorder *rec, gpointer data, GError **error)
{
  Misc *m = data;
  return dl_op_embedding (rec, m->out, m->ids, m->table, m->pos, 0, error);
}

static gboolean
rec_embed_bwd (DlRecorder *rec, gpointer data, GError **error)
{
  Misc *m = data;
  return dl_op_embedding_backward (rec, m->dtable, m->dpos, m->ids, m->out, 0, TRUE, error);
}

static gboolean
rec_timestep (DlRecorder *rec, gpointer data, GError **error)
{
  Misc *m = data;
  DlTimestepEmbeddingParams prm = DL_TIMESTEP_EMBEDDING_SD;
  return dl_op_timestep_embedding (rec, m->temb, m->t, &prm, error);
}

static gboolean
rec_mse (DlRecorder *rec, gpointer data, GError **error)
{
  Misc *m = data;
  return dl_op_mse_loss (rec, m->loss, NULL, m->pred, m->target, m->w, error) &&
         dl_op_mse_loss_backward (rec, m->dpred, m->pred, m->target, m->w, 1.0f, error);
}

static gboolean
rec_noise (DlRecorder *rec, gpointer data, GError **error)
{
  Misc *m = data;
  return dl_op_random_normal (rec, m->noise, DL_RANDOM_PHILOX, 1234, 0, 0.0f, 1.0f, error);
}

static gboolean
rec_dropout (DlRecorder *rec, gpointer data, GError **error)
{
  Misc *m = data;
  return dl_op_dropout (rec, m->act, m->act, 0.1f, 1234, 1, error);
}

static gboolean
bench_misc (DlBenchOps *b, GError **error)
{
  gboolean small = dl_bench_ops_is_small (b);
  Misc m = { 0 };
  /* CLIP ViT-L/14's input: 2 prompts x 77 tokens from a 49408 x 768 table */
  int64_t si[2] = { 2, 77 }, st[2] = { 49408, 768 }, sp[2] = { 77, 768 }, so[3] = { 2, 77, 768 };
  int64_t two = 2, stemb[2] = { 2, 320 };
  int64_t lat[4] = { 2, 4, 64, 64 }, one = 1;
  int64_t act[3] = { 2, small ? 1024 : 4096, 320 };
  double lat_n = 2.0 * 4 * 64 * 64, act_n = (double)act[0] * act[1] * act[2];
  gboolean ok =
    (m.ids = dl_bench_ops_tensor (b, "ids", DL_DTYPE_I32, 2, si, error)) &&
    (m.table = dl_bench_ops_tensor (b, "token table", DL_DTYPE_F16, 2, st, error)) &&
    (m.pos = dl_bench_ops_tensor (b, "positions", DL_DTYPE_F16, 2, sp, error)) &&
    (m.out = dl_bench_ops_tensor (b, "embeddings", DL_DTYPE_F16, 3, so, error)) &&
    (m.dtable = dl_bench_ops_tensor (b, "dtable", DL_DTYPE_F32, 2, st, error)) &&
    (m.dpos = dl_bench_ops_tensor (b, "dpos", DL_DTYPE_F32, 2, sp, error)) &&
    (m.t = dl_bench_ops_tensor (b, "t", DL_DTYPE_F32, 1, &two, error)) &&
    (m.temb = dl_bench_ops_tensor (b, "temb", DL_DTYPE_F32, 2, stemb, error)) &&
    (m.pred = dl_bench_ops_tensor (b, "pred", DL_DTYPE_F16, 4, lat, error)) &&
    (m.target = dl_bench_ops_tensor (b, "target", DL_DTYPE_F32, 4, lat, error)) &&
    (m.w = dl_bench_ops_tensor (b, "w", DL_DTYPE_F32, 1, &two, error)) &&
    (m.loss = dl_bench_ops_tensor (b, "loss", DL_DTYPE_F32, 1, &one, error)) &&
    (m.dpred = dl_bench_ops_tensor (b, "dpred", DL_DTYPE_F16, 4, lat, error)) &&
    (m.noise = dl_bench_ops_tensor (b, "noise", DL_DTYPE_F32, 4, lat, error)) &&
    (m.act = dl_bench_ops_tensor (b, "activation", DL_DTYPE_F16, 3, act, error)) &&
    dl_bench_ops_case (b, "embedding", "[2, 77] from [49408, 768] f16 +pos", 0, 2.0 * 2 * 2 * 77 * 768, rec_embed, &m,
                       error) &&
    dl_bench_ops_case (b, "embedding bwd", "[2, 77, 768] -> f32 table +pos", 0, (2.0 + 4 + 4) * 2 * 77 * 768,
                       rec_embed_bwd, &m, error) &&
    dl_bench_ops_case (b, "timestep embedding", "[2] -> [2, 320]", 0, 4.0 * 2 * 320, rec_timestep, &m, error) &&
    dl_bench_ops_case (b, "mse loss fwd+bwd", "[2, 4, 64, 64] f16/f32 weighted", 0, lat_n * (2 + 4) * 2, rec_mse, &m,
                       error) &&
    dl_bench_ops_case (b, "random normal", "[2, 4, 64, 64] f32 philox", 0, lat_n * 4, rec_noise, &m, error);
  g_autofree char *dshape = g_strdup_printf ("[2, %" G_GINT64_FORMAT ", 320] f16 p 0.1", act[1]);
  ok = ok && dl_bench_ops_case (b, "dropout", dshape, 0, act_n * 4, rec_dropout, &m, error);
  misc_clear (&m);
  return ok;
}

/* ---- optimizer ---- */

typedef struct
{
  DlTensor *p, *g, *m, *v, *hyper, *clip, *copy;
} Opt;

static gboolean
rec_adamw (DlRecorder *rec, gpointer data, GError **error)
{
  Opt *o = data;
  return dl_op_adamw (rec, o->p, o->g, o->m, o->v, o->hyper, o->clip, o->copy, error);
}

static gboolean
rec_grad_norm (DlRecorder *rec, gpointer data, GError **error)
{
  Opt *o = data;
  return dl_op_grad_norm (rec, o->clip, &o->g, 1, 1.0f, error);
}

static gboolean
bench_optimizer (DlBenchOps *b, GError **error)
{
  gboolean small = dl_bench_ops_is_small (b);
  /* the full SD 1.5 UNet (859.5 M parameters, a DreamBooth run) or 8 M on a CPU */
  int64_t n = small ? 8 * 1000 * 1000 : 859520964, two = 2;
  Opt o = { 0 };
  g_autofree char *shape = g_strdup_printf ("%.1f M params, f16 grads + copy", n / 1e6);
  DlAdamWParams prm = DL_ADAMW_PARAMS_DEFAULT;
  int64_t hn = DL_ADAMW_HYPER_LEN;
  gboolean ok = (o.p = dl_bench_ops_tensor (b, "master", DL_DTYPE_F32, 1, &n, error)) &&
                (o.g = dl_bench_ops_tensor (b, "grad", DL_DTYPE_F16, 1, &n, error)) &&
                (o.m = dl_bench_ops_tensor (b, "m", DL_DTYPE_F32, 1, &n, error)) &&
                (o.v = dl_bench_ops_tensor (b, "v", DL_DTYPE_F32, 1, &n, error)) &&
                (o.copy = dl_bench_ops_tensor (b, "model", DL_DTYPE_F16, 1, &n, error)) &&
                (o.hyper = dl_bench_ops_tensor (b, "hyper", DL_DTYPE_F32, 1, &hn, error)) &&
                (o.clip = dl_bench_ops_tensor (b, "clip", DL_DTYPE_F32, 1, &two, error)) &&
                dl_adamw_hyper_upload (o.hyper, &prm, 1, error) &&
                /* reads p, m, v, g; writes p, m, v, copy */
                dl_bench_ops_case (b, "adamw", shape, 0, n * (12.0 + 2 + 12 + 2), rec_adamw, &o, error) &&
                dl_bench_ops_case (b, "grad norm", shape, 0, n * 2.0, rec_grad_norm, &o, error);
  DlTensor **all[] = { &o.p, &o.g, &o.m, &o.v, &o.hyper, &o.clip, &o.copy };
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    g_clear_pointer (all[i], dl_tensor_unref);
  return ok;
}

gboolean
dl_bench_ops_attn (DlBenchOps *b, GError **error)
{
  return bench_attention (b, error) && bench_softmax (b, error) && bench_misc (b, error) &&
         bench_optimizer (b, error) && bench_attention_memory (b, error);
}
