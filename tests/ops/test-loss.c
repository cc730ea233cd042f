/* MSE loss with per-sample weights: the reference gradient against finite
 * differences, the shaders against the reference (awkward sizes, several
 * partial-sum chunks, f16 operands), run-to-run bit equality, and the DreamBooth
 * golden case's instance/prior losses, plain and with min-SNR-5 weights. */
#include "dl-test-util.h"

#include "io/dl-safetensors.h"
#include "ref-loss.h"

#include <math.h>

typedef struct
{
  float *pred, *target, *w;
  int64_t B, M;
  float gs;
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  return c->gs * ref_mse_loss (NULL, c->pred, c->target, c->w, c->B, c->M);
}

static void
test_reference_gradient (void)
{
  int64_t B = 3, M = 7;
  g_autofree float *pred = dl_test_random (B * M, 1, -1, 1);
  g_autofree float *target = dl_test_random (B * M, 2, -1, 1);
  float w[3] = { 0.25f, 1.0f, 3.0f };
  g_autofree float *g = g_new (float, B *M);
  for (int weighted = 0; weighted < 2; weighted++)
    {
      ref_mse_loss_backward (g, pred, target, weighted ? w : NULL, B, M, 2.0f);
      FdCtx c = { pred, target, weighted ? w : NULL, B, M, 2.0f };
      /* quadratic: central differences are exact up to rounding */
      dl_test_assert_fd ("mse dpred", pred, B * M, g, fd_loss, &c, 1e-2, 1e-7, 1e-5, 100, FALSE);
    }
}

typedef struct
{
  int64_t B, M;
  gboolean weighted;
  DlDType pred_dt, target_dt, grad_dt;
} Case;

static void
run_case (const Case *c)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = c->B * c->M;
  guint32 seed = (guint32)(c->B * 1000 + c->M);
  g_autofree float *pred = dl_test_random (n, seed, -2, 2);
  g_autofree float *target = dl_test_random (n, seed + 1, -2, 2);
  g_autofree float *w = dl_test_random (c->B, seed + 2, 0.1f, 2.0f);
  ref_round_to_dtype (pred, n, c->pred_dt);
  ref_round_to_dtype (target, n, c->target_dt);
  int64_t shape[2] = { c->B, c->M }, one = 1;
  g_autoptr (DlTensor) tp = dl_test_tensor ("pred", c->pred_dt, 2, shape, pred);
  g_autoptr (DlTensor) tt = dl_test_tensor ("target", c->target_dt, 2, shape, target);
  g_autoptr (DlTensor) tw = dl_test_tensor ("w", DL_DTYPE_F32, 1, &c->B, w);
  g_autoptr (DlTensor) tl = dl_test_tensor ("loss", DL_DTYPE_F32, 1, &one, NULL);
  g_autoptr (DlTensor) ts = dl_test_tensor ("per_sample", DL_DTYPE_F32, 1, &c->B, NULL);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dpred", c->grad_dt, 2, shape, NULL);
  DlTensor *wt = c->weighted ? tw : NULL;
  g_assert_true (dl_op_mse_loss (rec, tl, ts, tp, tt, wt, &error));
  g_assert_true (dl_op_mse_loss_backward (rec, tg, tp, tt, wt, 0.5f, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *loss = dl_test_download (tl);
  g_autofree float *ps = dl_test_download (ts);
  g_autofree float *g = dl_test_download (tg);
  g_autofree float *wps = g_new (float, c->B);
  float wl = (float)ref_mse_loss (wps, pred, target, c->weighted ? w : NULL, c->B, c->M);
  g_autofree char *what = g_strdup_printf ("mse %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "%s %s/%s->%s", c->B, c->M,
                                           c->weighted ? " weighted" : "", dl_dtype_name (c->pred_dt),
                                           dl_dtype_name (c->target_dt), dl_dtype_name (c->grad_dt));
  /* f32 sums of M positive terms: relative error ~ 1e-7 * log2(M) at worst */
  dl_test_assert_close (what, loss, &wl, 1, 0, 2e-6);
  dl_test_assert_close ("per-sample loss", ps, wps, c->B, 0, 2e-6);
  g_autofree float *wg = g_new (float, n);
  ref_mse_loss_backward (wg, pred, target, c->weighted ? w : NULL, c->B, c->M, 0.5f);
  ref_round_to_dtype (wg, n, c->grad_dt);
  gboolean f16 = c->grad_dt == DL_DTYPE_F16;
  /* a handful of float roundings; f16 gradients may be subnormal (absolute floor) */
  dl_test_assert_close ("mse dpred", g, wg, n, f16 ? 1e-7 : 1e-12, f16 ? 1e-3 : 1e-6);
}

static void
test_against_reference (void)
{
  static const Case cases[] = {
    { 1, 1, FALSE, DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32 },
    { 1, 7, TRUE, DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32 },
    { 2, 1024, TRUE, DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32 },   /* the tiny UNet's latents */
    { 2, 16384, FALSE, DL_DTYPE_F16, DL_DTYPE_F32, DL_DTYPE_F32 }, /* SD 1.5 latents: one full chunk */
    { 3, 40001, TRUE, DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F16 },  /* three chunks, the last short */
    { 5, 129, TRUE, DL_DTYPE_F16, DL_DTYPE_F16, DL_DTYPE_F16 },
    { 70, 33, TRUE, DL_DTYPE_F32, DL_DTYPE_F16, DL_DTYPE_F32 }, /* more samples than one thread row */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i]);
}

static void
test_deterministic (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t shape[4] = { 2, 4, 64, 64 }, one = 1, n = 2 * 4 * 64 * 64;
  g_autofree float *pred = dl_test_random (n, 5, -3, 3);
  g_autofree float *target = dl_test_random (n, 6, -3, 3);
  g_autoptr (DlTensor) tp = dl_test_tensor ("pred", DL_DTYPE_F32, 4, shape, pred);
  g_autoptr (DlTensor) tt = dl_test_tensor ("target", DL_DTYPE_F32, 4, shape, target);
  g_autoptr (DlTensor) tl = dl_test_tensor ("loss", DL_DTYPE_F32, 1, &one, NULL);
  float first = 0;
  for (int run = 0; run < 3; run++)
    {
      g_assert_true (dl_op_mse_loss (rec, tl, NULL, tp, tt, NULL, &error));
      g_assert_no_error (error);
      dl_test_finish ();
      g_autofree float *l = dl_test_download (tl);
      if (run == 0)
        first = l[0];
      else
        g_assert_cmpmem (&first, 4, l, 4);
    }
}

/* diffusers' compute_snr for SD's scaled_linear schedule */
static double
snr_at (int t)
{
  double ac = 1;
  double a = sqrt (0.00085), b = sqrt (0.012);
  for (int i = 0; i <= t; i++)
    {
      double beta = a + (b - a) * i / 999.0;
      ac *= 1 - beta * beta;
    }
  return ac / (1 - ac);
}

static void
test_golden_dreambooth (gconstpointer path)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  DlDevice *dev = dl_test_device ();
  g_autoptr (DlTensor) pred = dl_safetensors_upload (st, "model_pred", dev, DL_DTYPE_F32, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) noise = dl_safetensors_upload (st, "noise", dev, DL_DTYPE_F32, &error);
  g_assert_no_error (error);
  int64_t nt = 0;
  g_autofree float *ts = dl_safetensors_read_f32 (st, "timesteps", &nt, &error);
  g_assert_no_error (error);
  g_autofree float *g_inst = dl_safetensors_read_f32 (st, "loss.instance", NULL, &error);
  g_autofree float *g_prior = dl_safetensors_read_f32 (st, "loss.prior", NULL, &error);
  g_autofree float *g_loss = dl_safetensors_read_f32 (st, "loss", NULL, &error);
  g_autofree float *g_snr_inst = dl_safetensors_read_f32 (st, "snr5.loss.instance", NULL, &error);
  g_autofree float *g_snr_loss = dl_safetensors_read_f32 (st, "snr5.loss", NULL, &error);
  g_assert_no_error (error);
  if (!pred || !noise || !ts || !g_snr_loss)
    return;
  int64_t one = 1, two = 2;
  g_autoptr (DlTensor) per = dl_test_tensor ("per_sample", DL_DTYPE_F32, 1, &two, NULL);
  g_autoptr (DlTensor) loss = dl_test_tensor ("loss", DL_DTYPE_F32, 1, &one, NULL);
  /* one call: per-sample means are the instance and prior terms */
  g_assert_true (dl_op_mse_loss (rec, loss, per, pred, noise, NULL, &error));
  g_assert_no_error (error);
  /* min-SNR-5 instance term: the script's l_inst * (w0 + w1) / 2 is one sample
   * weighted by the mean of both weights */
  double w0 = MIN (snr_at ((int)ts[0]), 5) / snr_at ((int)ts[0]);
  double w1 = MIN (snr_at ((int)ts[1]), 5) / snr_at ((int)ts[1]);
  float wmean = (float)((w0 + w1) / 2);
  int64_t half_shape[4] = { 1, 4, 16, 16 };
  g_autoptr (DlTensor) pi = dl_tensor_view (pred, "pred[0]", 0, 4, half_shape, &error);
  g_autoptr (DlTensor) ni = dl_tensor_view (noise, "noise[0]", 0, 4, half_shape, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) tw = dl_test_tensor ("w", DL_DTYPE_F32, 1, &one, &wmean);
  g_autoptr (DlTensor) snr_loss = dl_test_tensor ("snr loss", DL_DTYPE_F32, 1, &one, NULL);
  g_assert_true (dl_op_mse_loss (rec, snr_loss, NULL, pi, ni, tw, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *p = dl_test_download (per);
  g_autofree float *l = dl_test_download (loss);
  g_autofree float *sl = dl_test_download (snr_loss);
  g_test_message ("instance %.9g (golden %.9g), prior %.9g (%.9g), snr weights %.4f %.4f, snr instance %.9g (%.9g)",
                  p[0], g_inst[0], p[1], g_prior[0], w0, w1, sl[0], g_snr_inst[0]);
  /* scalar losses to rtol 1e-5 */
  dl_test_assert_close ("golden loss.instance", &p[0], g_inst, 1, 0, 1e-5);
  dl_test_assert_close ("golden loss.prior", &p[1], g_prior, 1, 0, 1e-5);
  float total = p[0] + p[1];
  dl_test_assert_close ("golden loss", &total, g_loss, 1, 0, 1e-5);
  /* the mean over both samples is half the sum */
  float mean = g_loss[0] / 2;
  dl_test_assert_close ("golden mean loss", l, &mean, 1, 0, 1e-5);
  dl_test_assert_close ("golden snr5.loss.instance", sl, g_snr_inst, 1, 0, 1e-5);
  float snr_total = sl[0] + p[1];
  dl_test_assert_close ("golden snr5.loss", &snr_total, g_snr_loss, 1, 0, 1e-5);
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t s1[2] = { 2, 3 }, s2[2] = { 3, 2 }, one = 1, three = 3, s0[2] = { 0, 3 };
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 2, s1, NULL);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", DL_DTYPE_F32, 2, s2, NULL);
  g_autoptr (DlTensor) l = dl_test_tensor ("l", DL_DTYPE_F32, 1, &one, NULL);
  g_autoptr (DlTensor) w3 = dl_test_tensor ("w3", DL_DTYPE_F32, 1, &three, NULL);
  g_autoptr (DlTensor) e = dl_test_tensor ("empty", DL_DTYPE_F32, 2, s0, NULL);
  g_assert_false (dl_op_mse_loss (rec, l, NULL, a, b, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_mse_loss (rec, l, NULL, a, a, w3, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_mse_loss (rec, w3, NULL, a, a, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_mse_loss (rec, l, NULL, e, e, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_mse_loss_backward (rec, b, a, a, NULL, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

static void
skip_no_golden (void)
{
  g_test_skip ("golden dreambooth.safetensors not found");
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/loss/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/loss/mse", test_against_reference);
  dl_test_add ("/ops/loss/deterministic", test_deterministic);
  dl_test_add ("/ops/loss/errors", test_errors);
  g_autofree char *golden = dl_test_golden_path ("dreambooth.safetensors");
  if (golden)
    dl_test_add_data ("/ops/loss/golden-dreambooth", golden, test_golden_dreambooth);
  else
    dl_test_add ("/ops/loss/golden-dreambooth", skip_no_golden);
  return dl_test_run ();
}
