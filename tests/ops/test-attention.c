/* Memory-efficient attention against the naive softmax(q kᵀ s) v reference:
 * the reference backward against finite differences, then the shaders (forward,
 * log-sum-exp, dq, dk, dv) for self- and cross-attention, causal masks, SD's head
 * sizes (40, 64, 80, 160) and the tiny models' (8, 16), head sizes that are no
 * multiple of the thread split, forced tile sizes, batch 1 and 2, f32 and f16,
 * up to 1024 tokens. */
#include "dl-test-util.h"

#include "ref-attention.h"

#include <math.h>

/* ---- reference against finite differences ---- */

typedef struct
{
  float *q, *k, *v, *r;
  int64_t B, H, Nq, Nk, D;
  float scale;
  gboolean causal;
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  int64_t no = c->B * c->Nq * c->H * c->D;
  g_autofree float *o = g_new (float, no);
  ref_attention_forward (o, NULL, c->q, c->k, c->v, c->B, c->H, c->Nq, c->Nk, c->D, c->scale, c->causal);
  double l = 0;
  for (int64_t i = 0; i < no; i++)
    l += (double)o[i] * c->r[i];
  return l;
}

static void
test_reference_gradient (void)
{
  static const int64_t shapes[][5] = { { 1, 1, 1, 1, 3 }, { 1, 2, 3, 5, 4 }, { 2, 2, 6, 6, 3 } };
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int causal = 0; causal < 2; causal++)
      {
        int64_t B = shapes[s][0], H = shapes[s][1], Nq = shapes[s][2], Nk = causal ? Nq : shapes[s][3],
                D = shapes[s][4];
        int64_t nq = B * Nq * H * D, nk = B * Nk * H * D;
        g_autofree float *q = dl_test_random (nq, 1 + s, -1.5, 1.5);
        g_autofree float *k = dl_test_random (nk, 2 + s, -1.5, 1.5);
        g_autofree float *v = dl_test_random (nk, 3 + s, -1, 1);
        g_autofree float *r = dl_test_random (nq, 4 + s, -1, 1);
        g_autofree float *dq = g_new (float, nq);
        g_autofree float *dk = g_new (float, nk);
        g_autofree float *dv = g_new (float, nk);
        float scale = 0.7f;
        ref_attention_backward (dq, dk, dv, q, k, v, r, B, H, Nq, Nk, D, scale, causal);
        FdCtx c = { q, k, v, r, B, H, Nq, Nk, D, scale, causal };
        /* the reference stores o in float: ~1e-7 noise in L, divided by 2 eps = 0.04 */
        dl_test_assert_fd ("attention dq", q, nq, dq, fd_loss, &c, 2e-2, 1e-5, 1e-3, 100, TRUE);
        dl_test_assert_fd ("attention dk", k, nk, dk, fd_loss, &c, 2e-2, 1e-5, 1e-3, 100, TRUE);
        dl_test_assert_fd ("attention dv", v, nk, dv, fd_loss, &c, 2e-2, 1e-5, 1e-3, 100, TRUE);
      }
  /* a bigger case through one random direction per input */
  int64_t B = 2, H = 3, N = 40, D = 16, n = B * N * H * D;
  g_autofree float *q = dl_test_random (n, 11, -2, 2);
  g_autofree float *k = dl_test_random (n, 12, -2, 2);
  g_autofree float *v = dl_test_random (n, 13, -1, 1);
  g_autofree float *r = dl_test_random (n, 14, -1, 1);
  g_autofree float *dq = g_new (float, n);
  g_autofree float *dk = g_new (float, n);
  g_autofree float *dv = g_new (float, n);
  ref_attention_backward (dq, dk, dv, q, k, v, r, B, H, N, N, D, 0.25f, TRUE);
  FdCtx c = { q, k, v, r, B, H, N, N, D, 0.25f, TRUE };
  g_assert_true (dl_test_fd_directional ("attention dq (directional)", q, n, dq, fd_loss, &c, 1e-2, 1e-3, 21));
  g_assert_true (dl_test_fd_directional ("attention dk (directional)", k, n, dk, fd_loss, &c, 1e-2, 1e-3, 22));
  g_assert_true (dl_test_fd_directional ("attention dv (directional)", v, n, dv, fd_loss, &c, 1e-2, 1e-3, 23));
}

/* ---- shaders against the reference ---- */

typedef struct
{
  int64_t B, H, Nq, Nk, D;
  gboolean causal;
  guint block_q, block_k; /* 0: automatic */
  float range;            /* q and k uniform in [-range, range] */
} Case;

/* max|got - want| <= rel * max|want| (+ a tiny floor) */
static void
assert_close_scaled (const char *what, const float *got, const float *want, gsize n, double rel)
{
  double mx = 0;
  for (gsize i = 0; i < n; i++)
    mx = MAX (mx, fabs (want[i]));
  dl_test_assert_close (what, got, want, n, rel * mx + 1e-30, 0);
}

static void
run_case (const Case *c, DlDType dt, gboolean with_lse)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t C = c->H * c->D;
  int64_t nq = c->B * c->Nq * C, nk = c->B * c->Nk * C, ns = c->B * c->H * c->Nq;
  guint32 seed = (guint32)(c->Nq * 7 + c->Nk * 131 + c->D * 17 + c->B);
  g_autofree float *q = dl_test_random (nq, seed, -c->range, c->range);
  g_autofree float *k = dl_test_random (nk, seed + 1, -c->range, c->range);
  g_autofree float *v = dl_test_random (nk, seed + 2, -1, 1);
  g_autofree float *g = dl_test_random (nq, seed + 3, -1, 1);
  ref_round_to_dtype (q, nq, dt);
  ref_round_to_dtype (k, nk, dt);
  ref_round_to_dtype (v, nk, dt);
  ref_round_to_dtype (g, nq, dt);
  int64_t sq[3] = { c->B, c->Nq, C }, sk[3] = { c->B, c->Nk, C }, ss[3] = { c->B, c->H, c->Nq };
  g_autoptr (DlTensor) tq = dl_test_tensor ("q", dt, 3, sq, q);
  g_autoptr (DlTensor) tk = dl_test_tensor ("k", dt, 3, sk, k);
  g_autoptr (DlTensor) tv = dl_test_tensor ("v", dt, 3, sk, v);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dout", dt, 3, sq, g);
  g_autoptr (DlTensor) to = dl_test_tensor ("o", dt, 3, sq, NULL);
  g_autoptr (DlTensor) tl = dl_test_tensor ("lse", DL_DTYPE_F32, 3, ss, NULL);
  g_autoptr (DlTensor) tdq = dl_test_tensor ("dq", dt, 3, sq, NULL);
  g_autoptr (DlTensor) tdk = dl_test_tensor ("dk", dt, 3, sk, NULL);
  g_autoptr (DlTensor) tdv = dl_test_tensor ("dv", dt, 3, sk, NULL);
  DlAttentionParams prm = { .n_heads = (int)c->H, .causal = c->causal, .block_q = c->block_q, .block_k = c->block_k };
  g_assert_true (dl_op_attention (rec, to, with_lse ? tl : NULL, tq, tk, tv, &prm, &error));
  g_assert_no_error (error);
  if (with_lse)
    {
      g_assert_true (dl_op_attention_backward (rec, tdq, tdk, tdv, tq, tk, tv, to, tl, tg, &prm, &error));
      g_assert_no_error (error);
    }
  dl_test_finish ();

  float scale = (float)(1.0 / sqrt ((double)c->D));
  g_autofree float *want_o = g_new (float, nq);
  g_autofree float *want_l = g_new (float, ns);
  ref_attention_forward (want_o, want_l, q, k, v, c->B, c->H, c->Nq, c->Nk, c->D, scale, c->causal);
  g_autofree char *what = g_strdup_printf ("attention B%" G_GINT64_FORMAT " H%" G_GINT64_FORMAT " Nq%" G_GINT64_FORMAT
                                           " Nk%" G_GINT64_FORMAT " D%" G_GINT64_FORMAT "%s tiles %ux%u %s",
                                           c->B, c->H, c->Nq, c->Nk, c->D, c->causal ? " causal" : "", c->block_q,
                                           c->block_k, dl_dtype_name (dt));
  gboolean f16 = dt == DL_DTYPE_F16;
  g_autofree float *o = dl_test_download (to);
  g_autofree char *wo = g_strconcat (what, " o", NULL);
  /* f32: a few ulp of exp2 and f32 sums of <= 1024 terms; f16: one rounding of o */
  assert_close_scaled (wo, o, want_o, nq, f16 ? 1e-3 : 1e-5);
  if (!with_lse)
    return;
  g_autofree float *l = dl_test_download (tl);
  g_autofree char *wl = g_strconcat (what, " lse", NULL);
  dl_test_assert_close (wl, l, want_l, ns, 1e-5, 1e-5);

  g_autofree float *want_dq = g_new (float, nq);
  g_autofree float *want_dk = g_new (float, nk);
  g_autofree float *want_dv = g_new (float, nk);
  ref_attention_backward (want_dq, want_dk, want_dv, q, k, v, g, c->B, c->H, c->Nq, c->Nk, c->D, scale, c->causal);
  g_autofree float *dq = dl_test_download (tdq);
  g_autofree float *dk = dl_test_download (tdk);
  g_autofree float *dv = dl_test_download (tdv);
  g_autofree char *w1 = g_strconcat (what, " dq", NULL);
  g_autofree char *w2 = g_strconcat (what, " dk", NULL);
  g_autofree char *w3 = g_strconcat (what, " dv", NULL);
  /* f16: the device's delta comes from the f16-rounded o, and the gradients are
   * rounded to f16 themselves */
  double rel = f16 ? 5e-3 : 2e-5;
  assert_close_scaled (w1, dq, want_dq, nq, rel);
  assert_close_scaled (w2, dk, want_dk, nk, rel);
  assert_close_scaled (w3, dv, want_dv, nk, rel);
}

static const Case small_cases[] = {
  { 1, 1, 1, 1, 8, FALSE, 0, 0, 1 },      /* one token */
  { 2, 2, 7, 77, 40, FALSE, 0, 0, 2 },    /* cross-attention to 77 context tokens */
  { 1, 4, 77, 77, 8, TRUE, 0, 0, 2 },     /* the tiny CLIP: 4 heads of 8, causal */
  { 2, 3, 129, 129, 64, TRUE, 0, 0, 2 },  /* CLIP-like head size, causal, batch 2 */
  { 1, 2, 256, 77, 80, FALSE, 0, 0, 2 },  /* SD level-2 cross-attention head size */
  { 2, 1, 64, 64, 160, FALSE, 0, 0, 2 },  /* SD level-3 head size */
  { 1, 2, 33, 50, 20, FALSE, 0, 0, 2 },   /* head size not a multiple of the thread split */
  { 2, 2, 30, 30, 12, TRUE, 0, 0, 2 },    /* same, causal */
  { 1, 4, 16, 16, 16, FALSE, 0, 0, 3 },   /* the tiny UNet's level-2 heads, peaky softmax */
  { 1, 1, 5, 300, 8, FALSE, 8, 8, 3 },    /* many key tiles, one query tile */
  { 1, 2, 100, 100, 40, TRUE, 8, 16, 2 }, /* forced small tiles across a causal diagonal */
  { 2, 2, 70, 70, 64, TRUE, 16, 8, 2 },
};

static void
test_f32 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (small_cases); i++)
    run_case (&small_cases[i], DL_DTYPE_F32, TRUE);
}

static void
test_f16 (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (small_cases); i++)
    run_case (&small_cases[i], DL_DTYPE_F16, TRUE);
}

/* inference: no log-sum-exp requested */
static void
test_without_lse (void)
{
  run_case (&small_cases[1], DL_DTYPE_F32, FALSE);
  run_case (&small_cases[3], DL_DTYPE_F16, FALSE);
}

/* 1024 tokens: SD's 32x32 latent level, head size 40, and a causal 1000 */
static void
test_long (void)
{
  static const Case cases[] = {
    { 1, 2, 1024, 1024, 40, FALSE, 0, 0, 2 },
    { 1, 1, 1000, 1000, 64, TRUE, 0, 0, 2 },
    { 2, 1, 1024, 77, 80, FALSE, 0, 0, 2 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i], DL_DTYPE_F32, TRUE);
  run_case (&cases[0], DL_DTYPE_F16, TRUE);
}

/* Only some gradients wanted: the other passes are skipped, results unchanged. */
static void
test_partial_gradients (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t B = 1, H = 2, N = 20, D = 8, C = H * D, n = B * N * C;
  g_autofree float *q = dl_test_random (n, 1, -1, 1);
  g_autofree float *k = dl_test_random (n, 2, -1, 1);
  g_autofree float *v = dl_test_random (n, 3, -1, 1);
  g_autofree float *g = dl_test_random (n, 4, -1, 1);
  int64_t sh[3] = { B, N, C }, ss[3] = { B, H, N };
  g_autoptr (DlTensor) tq = dl_test_tensor ("q", DL_DTYPE_F32, 3, sh, q);
  g_autoptr (DlTensor) tk = dl_test_tensor ("k", DL_DTYPE_F32, 3, sh, k);
  g_autoptr (DlTensor) tv = dl_test_tensor ("v", DL_DTYPE_F32, 3, sh, v);
  g_autoptr (DlTensor) tg = dl_test_tensor ("g", DL_DTYPE_F32, 3, sh, g);
  g_autoptr (DlTensor) to = dl_test_tensor ("o", DL_DTYPE_F32, 3, sh, NULL);
  g_autoptr (DlTensor) tl = dl_test_tensor ("lse", DL_DTYPE_F32, 3, ss, NULL);
  g_autoptr (DlTensor) tdq = dl_test_tensor ("dq", DL_DTYPE_F32, 3, sh, NULL);
  g_autoptr (DlTensor) tdk = dl_test_tensor ("dk", DL_DTYPE_F32, 3, sh, NULL);
  g_autoptr (DlTensor) tdv = dl_test_tensor ("dv", DL_DTYPE_F32, 3, sh, NULL);
  DlAttentionParams prm = DL_ATTENTION_PARAMS (H);
  g_assert_true (dl_op_fill (rec, tdq, 7.0, &error));
  g_assert_true (dl_op_attention (rec, to, tl, tq, tk, tv, &prm, &error));
  g_assert_true (dl_op_attention_backward (rec, NULL, tdk, tdv, tq, tk, tv, to, tl, tg, &prm, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *dq_untouched = dl_test_download (tdq);
  for (int64_t i = 0; i < n; i++)
    g_assert_cmpfloat (dq_untouched[i], ==, 7.0f);
  g_assert_true (dl_op_attention_backward (rec, tdq, NULL, NULL, tq, tk, tv, to, tl, tg, &prm, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *dq = dl_test_download (tdq);
  g_autofree float *dk = dl_test_download (tdk);
  g_autofree float *wq = g_new (float, n);
  g_autofree float *wk = g_new (float, n);
  ref_attention_backward (wq, wk, NULL, q, k, v, g, B, H, N, N, D, (float)(1 / sqrt (D)), FALSE);
  assert_close_scaled ("dq alone", dq, wq, n, 2e-5);
  assert_close_scaled ("dk without dq", dk, wk, n, 2e-5);
}

/* Every pass finds a tile for SD's head sizes within the device's shared memory. */
static void
test_tiles_fit (void)
{
  DlDevice *dev = dl_test_device ();
  const DlDeviceInfo *info = dl_device_get_info (dev);
  static const int64_t dims[] = { 8, 16, 40, 64, 80, 160 };
  static const char *names[] = { "forward", "backward dq", "backward dk/dv" };
  DlAttentionParams prm = DL_ATTENTION_PARAMS (1);
  for (guint i = 0; i < G_N_ELEMENTS (dims); i++)
    for (int pass = 0; pass < 3; pass++)
      {
        guint bq, bk, bytes;
        g_assert_true (dl_attention_tiles (dev, (DlAttentionPass)pass, dims[i], &prm, &bq, &bk, &bytes));
        g_assert_cmpuint (bytes, <=, info->max_shared_memory);
        g_test_message ("head size %3" G_GINT64_FORMAT " %-15s tiles %2u x %2u, %5u bytes of %u shared", dims[i],
                        names[pass], bq, bk, bytes, info->max_shared_memory);
      }
  /* head size 256 still runs forward (inference); its backward needs more than 32 KiB */
  guint bq, bk, bytes;
  g_assert_true (dl_attention_tiles (dev, DL_ATTENTION_PASS_FORWARD, 256, &prm, &bq, &bk, &bytes));
  g_assert_cmpuint (bytes, <=, info->max_shared_memory);
  /* a forced tile that cannot fit is refused, not clamped */
  DlAttentionParams huge = { .n_heads = 1, .block_q = 512, .block_k = 512 };
  g_assert_false (dl_attention_tiles (dev, DL_ATTENTION_PASS_FORWARD, 160, &huge, &bq, &bk, NULL));
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t s1[3] = { 1, 4, 16 }, s2[3] = { 1, 5, 16 }, s3[3] = { 2, 4, 16 }, s4[3] = { 1, 4, 12 },
          big[3] = { 1, 2, 600 }, ss[3] = { 1, 2, 4 }, s0[3] = { 1, 0, 16 };
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 3, s1, NULL);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", DL_DTYPE_F32, 3, s2, NULL);
  g_autoptr (DlTensor) c = dl_test_tensor ("c", DL_DTYPE_F32, 3, s3, NULL);
  g_autoptr (DlTensor) d = dl_test_tensor ("d", DL_DTYPE_F32, 3, s4, NULL);
  g_autoptr (DlTensor) h = dl_test_tensor ("h", DL_DTYPE_F16, 3, s1, NULL);
  g_autoptr (DlTensor) w = dl_test_tensor ("wide", DL_DTYPE_F32, 3, big, NULL);
  g_autoptr (DlTensor) l = dl_test_tensor ("lse", DL_DTYPE_F32, 3, ss, NULL);
  g_autoptr (DlTensor) l2 = dl_test_tensor ("lse2", DL_DTYPE_F32, 3, s1, NULL);
  g_autoptr (DlTensor) e = dl_test_tensor ("empty", DL_DTYPE_F32, 3, s0, NULL);
  DlAttentionParams p2 = DL_ATTENTION_PARAMS (2), p3 = DL_ATTENTION_PARAMS (3), p1 = DL_ATTENTION_PARAMS (1);
  struct
  {
    DlTensor *o, *l, *q, *k, *v;
    DlAttentionParams *p;
    int code;
  } bad[] = {
    { a, l, a, b, a, &p2, DL_ERROR_INVALID_ARGUMENT },  /* k and v token counts differ */
    { a, l, a, c, c, &p2, DL_ERROR_INVALID_ARGUMENT },  /* batch mismatch */
    { a, l, a, d, d, &p2, DL_ERROR_INVALID_ARGUMENT },  /* channel mismatch */
    { a, l, a, a, a, &p3, DL_ERROR_INVALID_ARGUMENT },  /* 16 channels in 3 heads */
    { a, l, a, h, a, &p2, DL_ERROR_UNSUPPORTED },       /* mixed dtypes */
    { a, l2, a, a, a, &p2, DL_ERROR_INVALID_ARGUMENT }, /* lse of the wrong size */
    { b, l, a, a, a, &p2, DL_ERROR_INVALID_ARGUMENT },  /* o of the wrong shape */
    { w, NULL, w, w, w, &p1, DL_ERROR_UNSUPPORTED },    /* head size 600 */
    { a, l, a, e, e, &p2, DL_ERROR_INVALID_ARGUMENT },  /* no keys */
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_false (dl_op_attention (rec, bad[i].o, bad[i].l, bad[i].q, bad[i].k, bad[i].v, bad[i].p, &error));
      g_assert_error (error, DL_ERROR, bad[i].code);
      g_test_message ("expected error: %s", error->message);
      g_clear_error (&error);
    }
  DlAttentionParams nan_scale = { .n_heads = 2, .scale = NAN };
  g_assert_false (dl_op_attention (rec, a, l, a, a, a, &nan_scale, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_attention_backward (rec, a, a, NULL, a, a, a, a, l, a, &p2, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_attention_backward (rec, a, a, a, a, a, a, a, l, b, &p2, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/attention/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/attention/tiles-fit", test_tiles_fit);
  dl_test_add ("/ops/attention/f32", test_f32);
  dl_test_add ("/ops/attention/f16", test_f16);
  dl_test_add ("/ops/attention/without-lse", test_without_lse);
  dl_test_add ("/ops/attention/partial-gradients", test_partial_gradients);
  dl_test_add ("/ops/attention/long", test_long);
  dl_test_add ("/ops/attention/errors", test_errors);
  return dl_test_run ();
}
