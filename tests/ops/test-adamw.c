/* The optimizer step: AdamW against torch.optim.AdamW (golden optimizer case,
 * constant and cosine-warmup learning rates, three steps, per tensor and as one
 * arena), against the double reference over awkward sizes with f16 gradients,
 * clipping and model copies; the global gradient norm and clip coefficient;
 * gradient accumulation through dl_op_axpby; diffusers' learning-rate schedules
 * against the golden table. */
#include "dl-test-util.h"

#include "dl-half.h"
#include "io/dl-safetensors.h"
#include "ref-optim.h"
#include "train/dl-lr-schedule.h"

#include <math.h>
#include <string.h>

static DlTensor *
hyper_tensor (const DlAdamWParams *prm, guint64 step)
{
  g_autoptr (GError) error = NULL;
  int64_t n = DL_ADAMW_HYPER_LEN;
  DlTensor *h = dl_test_tensor ("hyper", DL_DTYPE_F32, 1, &n, NULL);
  g_assert_true (dl_adamw_hyper_upload (h, prm, step, &error));
  g_assert_no_error (error);
  return h;
}

/* ---- against the reference ---- */

typedef struct
{
  int64_t n;
  DlDType grad_dt;
  gboolean clip;
  DlDType copy_dt; /* F32: no copy */
  double grad_scale;
} Case;

static void
run_case (const Case *c)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  guint32 seed = (guint32)c->n * 7 + c->grad_dt;
  g_autofree float *p = dl_test_random (c->n, seed, -1, 1);
  g_autofree float *m = g_new0 (float, c->n);
  g_autofree float *v = g_new0 (float, c->n);
  g_autoptr (DlTensor) tp = dl_test_tensor ("param", DL_DTYPE_F32, 1, &c->n, p);
  g_autoptr (DlTensor) tm = dl_test_tensor ("m", DL_DTYPE_F32, 1, &c->n, m);
  g_autoptr (DlTensor) tv = dl_test_tensor ("v", DL_DTYPE_F32, 1, &c->n, v);
  g_autoptr (DlTensor) tg = dl_test_tensor ("grad", c->grad_dt, 1, &c->n, NULL);
  int64_t two = 2;
  g_autoptr (DlTensor) tc = dl_test_tensor ("clip", DL_DTYPE_F32, 1, &two, NULL);
  g_autoptr (DlTensor) tcopy = c->copy_dt != DL_DTYPE_F32 ? dl_test_tensor ("copy", c->copy_dt, 1, &c->n, NULL) : NULL;
  DlAdamWParams prm = {
    .lr = 2e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.05, .grad_scale = c->grad_scale
  };
  for (guint64 step = 1; step <= 3; step++)
    {
      g_autofree float *g = dl_test_random (c->n, seed + (guint32)step * 13, -0.5f, 0.5f);
      ref_round_to_dtype (g, c->n, c->grad_dt);
      g_assert_true (dl_tensor_upload_f32 (tg, g, &error));
      g_autoptr (DlTensor) th = hyper_tensor (&prm, step);
      if (c->clip)
        {
          DlTensor *gs[1] = { tg };
          g_assert_true (dl_op_grad_norm (rec, tc, gs, 1, 1.5f, &error));
        }
      g_assert_true (dl_op_adamw (rec, tp, tg, tm, tv, th, c->clip ? tc : NULL, tcopy, &error));
      g_assert_no_error (error);
      dl_test_finish ();
      double clip = 1;
      if (c->clip)
        {
          const float *arr[1] = { g };
          double norm = ref_global_norm (arr, &c->n, 1);
          clip = MIN (1.0, 1.5 / (norm + 1e-6));
        }
      ref_adamw_step (p, m, v, g, c->n, prm.lr, prm.beta1, prm.beta2, prm.eps, prm.weight_decay, prm.grad_scale, clip,
                      (int64_t)step);
    }
  g_autofree float *gp = dl_test_download (tp);
  g_autofree float *gm = dl_test_download (tm);
  g_autofree float *gv = dl_test_download (tv);
  g_autofree char *what = g_strdup_printf (
    "adamw n %" G_GINT64_FORMAT " grad %s%s copy %s scale %g", c->n, dl_dtype_name (c->grad_dt),
    c->clip ? " clipped" : "", c->copy_dt != DL_DTYPE_F32 ? dl_dtype_name (c->copy_dt) : "none", c->grad_scale);
  /* f32 arithmetic on the device, double in the reference: parameters move by
   * <= 3 lr, so their error is a few ulp of |p| <= 1; the moments a few ulp */
  dl_test_assert_close (what, gp, p, c->n, 2e-7, 1e-6);
  dl_test_assert_close ("adamw m", gm, m, c->n, 1e-9, 1e-5);
  dl_test_assert_close ("adamw v", gv, v, c->n, 1e-11, 1e-5);
  if (tcopy)
    {
      g_autofree float *copy = dl_test_download (tcopy);
      /* the copy is the device's own new parameter, rounded once */
      ref_round_to_dtype (gp, c->n, c->copy_dt);
      dl_test_assert_close ("adamw model copy", copy, gp, c->n, 0, 0);
    }
}

static void
test_against_reference (void)
{
  static const Case cases[] = {
    { 1, DL_DTYPE_F32, FALSE, DL_DTYPE_F32, 1.0 },     { 7, DL_DTYPE_F16, FALSE, DL_DTYPE_F16, 1.0 },
    { 1000, DL_DTYPE_F32, TRUE, DL_DTYPE_BF16, 0.25 }, { 70001, DL_DTYPE_F16, TRUE, DL_DTYPE_F32, 1.0 },
    { 4099, DL_DTYPE_F32, TRUE, DL_DTYPE_F16, 1.0 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i]);
}

/* A clip input whose norm is not finite (a gradient with a NaN or an
 * infinity, the fused backward pass's per-tensor norm) leaves the parameter,
 * its moments and its model copy as they were; a finite one moves them. */
static void
test_non_finite_norm (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = 3000, two = 2;
  g_autofree float *p = dl_test_random (n, 5, -1, 1);
  g_autofree float *mv = dl_test_random (n, 6, 0, 0.1f);
  g_autofree float *g = dl_test_random (n, 7, -0.5f, 0.5f);
  g_autoptr (DlTensor) tp = dl_test_tensor ("param", DL_DTYPE_F32, 1, &n, p);
  g_autoptr (DlTensor) tm = dl_test_tensor ("m", DL_DTYPE_F32, 1, &n, mv);
  g_autoptr (DlTensor) tv = dl_test_tensor ("v", DL_DTYPE_F32, 1, &n, mv);
  g_autoptr (DlTensor) tg = dl_test_tensor ("grad", DL_DTYPE_F32, 1, &n, g);
  g_autoptr (DlTensor) tcopy = dl_test_tensor ("copy", DL_DTYPE_F16, 1, &n, NULL);
  g_autoptr (DlTensor) tc = dl_test_tensor ("clip", DL_DTYPE_F32, 1, &two, NULL);
  g_autoptr (DlTensor) th = hyper_tensor (&DL_ADAMW_PARAMS_DEFAULT, 3);
  g_assert_true (dl_op_fill (rec, tcopy, 0.0, &error));
  const float norms[][2] = { { NAN, 1.0f }, { INFINITY, 0.5f }, { -INFINITY, 1.0f }, { 2.0f, 0.5f } };
  for (guint k = 0; k < G_N_ELEMENTS (norms); k++)
    {
      g_assert_true (dl_tensor_upload_f32 (tc, norms[k], &error));
      g_assert_true (dl_op_adamw (rec, tp, tg, tm, tv, th, tc, tcopy, &error));
      g_assert_no_error (error);
      dl_test_finish ();
      g_autofree float *gp = dl_test_download (tp);
      g_autofree float *gm = dl_test_download (tm);
      g_autofree float *gc = dl_test_download (tcopy);
      gboolean finite = isfinite (norms[k][0]);
      g_test_message ("norm %g: %s", norms[k][0], finite ? "applied" : "left as it was");
      g_assert_true ((memcmp (gp, p, n * 4) == 0) == !finite);
      g_assert_true ((memcmp (gm, mv, n * 4) == 0) == !finite);
      g_assert_true ((gc[0] == 0.0f && gc[n - 1] == 0.0f) == !finite);
    }
}

/* ---- gradient norm ---- */

static void
test_grad_norm (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  static const int64_t sizes[] = { 1, 7, 16384, 16385, 100003, 320 * 768 };
  enum
  {
    N = G_N_ELEMENTS (sizes)
  };
  DlTensor *t[N];
  float *host[N];
  for (int i = 0; i < N; i++)
    {
      DlDType dt = i % 2 ? DL_DTYPE_F16 : DL_DTYPE_F32;
      host[i] = dl_test_random (sizes[i], 40 + i, -0.1f, 0.1f);
      ref_round_to_dtype (host[i], sizes[i], dt);
      t[i] = dl_test_tensor ("g", dt, 1, &sizes[i], host[i]);
    }
  double norm = ref_global_norm ((const float *const *)host, sizes, N);
  int64_t two = 2;
  g_autoptr (DlTensor) out = dl_test_tensor ("norm", DL_DTYPE_F32, 1, &two, NULL);
  const float maxes[] = { (float)(norm / 2), (float)(norm * 2), 0.0f };
  float first_norm = 0;
  for (guint k = 0; k < G_N_ELEMENTS (maxes); k++)
    {
      g_assert_true (dl_op_grad_norm (rec, out, t, N, maxes[k], &error));
      g_assert_no_error (error);
      dl_test_finish ();
      g_autofree float *r = dl_test_download (out);
      float want[2] = { (float)norm, maxes[k] > 0 ? (float)MIN (1.0, maxes[k] / (norm + 1e-6)) : 1.0f };
      g_autofree char *what = g_strdup_printf ("grad norm, max %g", maxes[k]);
      /* f32 partial sums of 16384 squares each, then of ~30 partials */
      dl_test_assert_close (what, r, want, 2, 0, 2e-6);
      if (k == 0)
        first_norm = r[0];
      else
        g_assert_cmpmem (&first_norm, 4, r, 4); /* the same bits every time */
    }
  /* no tensors at all: norm 0, nothing to clip */
  g_assert_true (dl_op_grad_norm (rec, out, NULL, 0, 1.0f, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *z = dl_test_download (out);
  float zero_want[2] = { 0, 1 };
  dl_test_assert_close ("grad norm of nothing", z, zero_want, 2, 0, 0);
  for (int i = 0; i < N; i++)
    {
      dl_tensor_unref (t[i]);
      g_free (host[i]);
    }
}

/* Three micro-batches added into one gradient (dl_op_axpby, beta = 1), then a
 * step with grad_scale 1/3: the same as one step on the mean gradient. */
static void
test_accumulation (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = 1001;
  g_autofree float *p0 = dl_test_random (n, 1, -1, 1);
  g_autofree float *zeros = g_new0 (float, n);
  g_autofree float *mean = g_new0 (float, n);
  g_autoptr (DlTensor) acc = dl_test_tensor ("acc", DL_DTYPE_F32, 1, &n, zeros);
  g_autoptr (DlTensor) micro = dl_test_tensor ("micro", DL_DTYPE_F32, 1, &n, NULL);
  g_autofree double *sum = g_new0 (double, n);
  for (int k = 0; k < 3; k++)
    {
      g_autofree float *g = dl_test_random (n, 10 + k, -1, 1);
      g_assert_true (dl_tensor_upload_f32 (micro, g, &error));
      g_assert_true (dl_op_axpby (rec, acc, micro, 1.0f, 1.0f, &error));
      g_assert_no_error (error);
      dl_test_finish ();
      for (int64_t i = 0; i < n; i++)
        sum[i] += g[i];
    }
  g_autofree float *gacc = dl_test_download (acc);
  g_autofree float *fsum = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    {
      fsum[i] = (float)sum[i];
      mean[i] = (float)(sum[i] / 3);
    }
  dl_test_assert_close ("accumulated gradient", gacc, fsum, n, 3e-7, 1e-6);
  g_autoptr (DlTensor) tp = dl_test_tensor ("p", DL_DTYPE_F32, 1, &n, p0);
  g_autoptr (DlTensor) tm = dl_test_tensor ("m", DL_DTYPE_F32, 1, &n, zeros);
  g_autoptr (DlTensor) tv = dl_test_tensor ("v", DL_DTYPE_F32, 1, &n, zeros);
  DlAdamWParams prm = DL_ADAMW_PARAMS_DEFAULT;
  prm.grad_scale = 1.0 / 3;
  g_autoptr (DlTensor) th = hyper_tensor (&prm, 1);
  g_assert_true (dl_op_adamw (rec, tp, acc, tm, tv, th, NULL, NULL, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gp = dl_test_download (tp);
  g_autofree float *wm = g_new0 (float, n);
  g_autofree float *wv = g_new0 (float, n);
  ref_adamw_step (p0, wm, wv, mean, n, prm.lr, prm.beta1, prm.beta2, prm.eps, prm.weight_decay, 1.0, 1.0, 1);
  dl_test_assert_close ("step on accumulated gradient", gp, p0, n, 2e-7, 1e-6);
}

/* ---- golden: torch.optim.AdamW and diffusers' schedules ---- */

static float *
read_f32 (DlSafetensors *st, const char *name, int64_t *n)
{
  g_autoptr (GError) error = NULL;
  float *x = dl_safetensors_read_f32 (st, name, n, &error);
  g_assert_no_error (error);
  return x;
}

static void
golden_run (DlSafetensors *st, const char *variant, gboolean arena)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  static const char *names[3] = { "p0", "p1", "p2" };
  float *p[3];
  int64_t len[3], total = 0;
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *k = g_strdup_printf ("%s.init", names[i]);
      p[i] = read_f32 (st, k, &len[i]);
      total += len[i];
    }
  /* one tensor per parameter, or all three in one arena (one dispatch) */
  int n_t = arena ? 1 : 3;
  DlTensor *tp[3], *tg[3], *tm[3], *tv[3];
  for (int i = 0; i < n_t; i++)
    {
      int64_t n = arena ? total : len[i];
      g_autofree float *init = g_new (float, n);
      if (arena)
        for (int j = 0, at = 0; j < 3; at += (int)len[j], j++)
          memcpy (init + at, p[j], len[j] * sizeof (float));
      else
        memcpy (init, p[i], n * sizeof (float));
      g_autofree float *zeros = g_new0 (float, n);
      tp[i] = dl_test_tensor ("p", DL_DTYPE_F32, 1, &n, init);
      tg[i] = dl_test_tensor ("g", DL_DTYPE_F32, 1, &n, NULL);
      tm[i] = dl_test_tensor ("m", DL_DTYPE_F32, 1, &n, zeros);
      tv[i] = dl_test_tensor ("v", DL_DTYPE_F32, 1, &n, zeros);
    }
  g_autofree char *lr_name = g_strdup_printf ("%s.lr_used", variant);
  g_autofree float *lr_used = read_f32 (st, lr_name, NULL);
  gboolean cosine = g_str_has_prefix (variant, "cosine");
  DlLrSchedule sched = dl_lr_schedule_init (cosine ? DL_LR_COSINE : DL_LR_CONSTANT, 1e-3, 2, 10);
  int64_t hn = DL_ADAMW_HYPER_LEN;
  g_autoptr (DlTensor) hyper = dl_test_tensor ("hyper", DL_DTYPE_F32, 1, &hn, NULL);
  for (int step = 0; step < 3; step++)
    {
      double lr = dl_lr_schedule_at (&sched, step);
      float lrf = (float)lr;
      dl_test_assert_close ("golden lr_used", &lrf, &lr_used[step], 1, 0, 1e-7);
      DlAdamWParams prm = {
        .lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-2, .grad_scale = 1
      };
      /* the same recorded work each step; only the hyper buffer changes */
      g_assert_true (dl_adamw_hyper_upload (hyper, &prm, step + 1, &error));
      g_assert_no_error (error);
      g_autofree float *garena = g_new (float, total);
      for (int i = 0, at = 0; i < 3; at += (int)len[i], i++)
        {
          g_autofree char *k = g_strdup_printf ("%s.grad.step%d", names[i], step);
          g_autofree float *g = read_f32 (st, k, NULL);
          if (arena)
            memcpy (garena + at, g, len[i] * sizeof (float));
          else
            g_assert_true (dl_tensor_upload_f32 (tg[i], g, &error));
        }
      if (arena)
        g_assert_true (dl_tensor_upload_f32 (tg[0], garena, &error));
      g_assert_no_error (error);
      for (int i = 0; i < n_t; i++)
        g_assert_true (dl_op_adamw (rec, tp[i], tg[i], tm[i], tv[i], hyper, NULL, NULL, &error));
      g_assert_no_error (error);
      dl_test_finish ();

      for (int i = 0; i < n_t; i++)
        {
          g_autofree float *gp = dl_test_download (tp[i]);
          g_autofree float *gm = dl_test_download (tm[i]);
          g_autofree float *gv = dl_test_download (tv[i]);
          for (int j = arena ? 0 : i, at = 0; j < (arena ? 3 : i + 1); at += (int)len[j], j++)
            {
              static const char *what[3] = { "", ".exp_avg", ".exp_avg_sq" };
              float *got[3] = { gp + at, gm + at, gv + at };
              for (int w = 0; w < 3; w++)
                {
                  g_autofree char *k = g_strdup_printf ("%s.%s%s.step%d", variant, names[j], what[w], step);
                  int64_t n = 0;
                  g_autofree float *want = read_f32 (st, k, &n);
                  g_assert_cmpint (n, ==, len[j]);
                  double mx = 0;
                  for (int64_t e = 0; e < n; e++)
                    mx = MAX (mx, fabs (want[e]));
                  g_autofree char *label = g_strdup_printf ("golden %s%s", k, arena ? " (arena)" : "");
                  /* float32 on both sides, operation order may differ (fused
                   * multiply-adds): a few ulp of the tensor's scale */
                  dl_test_assert_close (label, got[w], want, n, 4e-7 * mx, 1e-6);
                }
            }
        }
    }
  for (int i = 0; i < 3; i++)
    g_free (p[i]);
  for (int i = 0; i < n_t; i++)
    {
      dl_tensor_unref (tp[i]);
      dl_tensor_unref (tg[i]);
      dl_tensor_unref (tm[i]);
      dl_tensor_unref (tv[i]);
    }
}

static void
test_golden_adamw (gconstpointer path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  const char *meta = dl_safetensors_get_metadata (st, "adamw");
  g_test_message ("golden AdamW: %s", meta ? meta : "(no metadata)");
  for (int arena = 0; arena < 2; arena++)
    {
      golden_run (st, "const", arena);
      golden_run (st, "cosine_warmup", arena);
    }
}

static void
test_golden_lr_schedules (gconstpointer path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  for (int k = 0; k < DL_LR_N_SCHEDULES; k++)
    {
      DlLrSchedule s = dl_lr_schedule_init ((DlLrScheduleKind)k, 1e-3, 10, 100);
      if (k == DL_LR_COSINE_WITH_RESTARTS)
        s.num_cycles = 3;
      g_assert_true (dl_lr_schedule_validate (&s, &error));
      g_assert_no_error (error);
      g_autofree char *name = g_strdup_printf ("lr.%s", dl_lr_schedule_name ((DlLrScheduleKind)k));
      int64_t n = 0;
      g_autofree float *want = read_f32 (st, name, &n);
      g_assert_cmpint (n, ==, 101);
      g_autofree float *got = g_new (float, n);
      for (int64_t i = 0; i < n; i++)
        got[i] = (float)dl_lr_schedule_at (&s, i);
      /* the same double formulas, stored as float32: equal to the last bit but
       * for libm's cos */
      dl_test_assert_close (name, got, want, n, 1e-12, 1e-6);
    }
}

static void
test_lr_schedule_api (void)
{
  g_autoptr (GError) error = NULL;
  DlLrScheduleKind k;
  g_assert_true (dl_lr_schedule_kind_from_name ("cosine_with_restarts", &k));
  g_assert_cmpint (k, ==, DL_LR_COSINE_WITH_RESTARTS);
  g_assert_false (dl_lr_schedule_kind_from_name ("cosine_annealing", &k));
  DlLrSchedule s = dl_lr_schedule_init (DL_LR_POLYNOMIAL, 1e-8, 0, 10); /* lr_end above lr */
  g_assert_false (dl_lr_schedule_validate (&s, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  s = dl_lr_schedule_init (DL_LR_LINEAR, 1e-3, -1, 10);
  g_assert_false (dl_lr_schedule_validate (&s, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* past the end: linear and the restarts reach 0, polynomial holds lr_end */
  s = dl_lr_schedule_init (DL_LR_LINEAR, 1e-3, 0, 10);
  g_assert_cmpfloat (dl_lr_schedule_at (&s, 20), ==, 0);
  s = dl_lr_schedule_init (DL_LR_POLYNOMIAL, 1e-3, 5, 5); /* no decay steps at all */
  g_assert_cmpfloat (fabs (dl_lr_schedule_at (&s, 7) - 1e-7), <, 1e-15);
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = 10, m = 11, one = 1;
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 1, &n, NULL);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", DL_DTYPE_F32, 1, &m, NULL);
  g_autoptr (DlTensor) h16 = dl_test_tensor ("h16", DL_DTYPE_F16, 1, &n, NULL);
  g_autoptr (DlTensor) small = dl_test_tensor ("small", DL_DTYPE_F32, 1, &one, NULL);
  DlAdamWParams prm = DL_ADAMW_PARAMS_DEFAULT;
  g_autoptr (DlTensor) hyper = hyper_tensor (&prm, 1);
  g_assert_false (dl_op_adamw (rec, a, b, a, a, hyper, NULL, NULL, &error)); /* sizes differ */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_adamw (rec, h16, a, a, a, hyper, NULL, NULL, &error)); /* f16 master weights */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_adamw (rec, a, a, a, a, small, NULL, NULL, &error)); /* hyper too short */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_adamw (rec, a, a, a, a, hyper, NULL, a, &error)); /* f32 model copy */
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  prm.beta2 = 1.0;
  g_assert_false (dl_adamw_hyper_upload (hyper, &prm, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  DlTensor *gs[1] = { a };
  g_assert_false (dl_op_grad_norm (rec, small, gs, 1, 1.0f, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

static void
skip_no_golden (void)
{
  g_test_skip ("golden optimizer.safetensors not found");
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/adamw/reference", test_against_reference);
  dl_test_add ("/ops/adamw/non-finite-norm", test_non_finite_norm);
  dl_test_add ("/ops/adamw/grad-norm", test_grad_norm);
  dl_test_add ("/ops/adamw/accumulation", test_accumulation);
  dl_test_add ("/ops/adamw/lr-schedule-api", test_lr_schedule_api);
  dl_test_add ("/ops/adamw/errors", test_errors);
  g_autofree char *golden = dl_test_golden_path ("optimizer.safetensors");
  if (golden)
    {
      dl_test_add_data ("/ops/adamw/golden-adamw", golden, test_golden_adamw);
      dl_test_add_data ("/ops/adamw/golden-lr-schedules", golden, test_golden_lr_schedules);
    }
  else
    {
      dl_test_add ("/ops/adamw/golden-adamw", skip_no_golden);
      dl_test_add ("/ops/adamw/golden-lr-schedules", skip_no_golden);
    }
  return dl_test_run ();
}
