/* The 8-bit AdamW step (bitsandbytes AdamW8bit, block-wise dynamic
 * quantisation): the two dynamic maps and their quantisation error; the shader
 * against the CPU reference over several steps and awkward sizes (codes and
 * absmax bit for bit, parameters to a few ulp), with f16 gradients, clipping,
 * model copies, NaN/infinite gradients, all-zero blocks and a tensor split over
 * many dispatches; the first step against fp32 AdamW; a toy regression trained
 * 200 steps with fp32 and with 8-bit AdamW from the same start; the state's
 * host API, state file round trip and errors. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "ref-adamw8bit.h"
#include "ref-optim.h"
#include "train/dl-adamw8bit-io.h"

#define BLOCK DL_ADAMW8BIT_BLOCK

/* toy problem: 8-bit against fp32 AdamW, relative loss differences */
#define TOY_FINAL_TOL 0.12
#define TOY_CURVE_TOL 0.12

static char *base_tmp_dir;

static RefAdamW8bitHyper
ref_hyper (const float hv[DL_ADAMW_HYPER_LEN], float clip)
{
  return (RefAdamW8bitHyper){
    .decay = hv[DL_ADAMW_H_DECAY],
    .beta1 = hv[DL_ADAMW_H_BETA1],
    .one_minus_beta1 = hv[DL_ADAMW_H_ONE_MINUS_BETA1],
    .beta2 = hv[DL_ADAMW_H_BETA2],
    .one_minus_beta2 = hv[DL_ADAMW_H_ONE_MINUS_BETA2],
    .step_size = hv[DL_ADAMW_H_STEP_SIZE],
    .bc2_sqrt = hv[DL_ADAMW_H_BC2_SQRT],
    .eps = hv[DL_ADAMW_H_EPS],
    .grad_scale = hv[DL_ADAMW_H_GRAD_SCALE] * clip, /* as the shader multiplies them */
  };
}

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

static DlTensor *
codebook (void)
{
  g_autoptr (GError) error = NULL;
  DlTensor *t = dl_adamw8bit_codebook_new (dl_test_device (), &error);
  g_assert_no_error (error);
  return t;
}

static DlAdamW8bitState *
zeroed_state (int64_t n)
{
  g_autoptr (GError) error = NULL;
  DlAdamW8bitState *s = dl_adamw8bit_state_new (dl_test_device (), "test", n, &error);
  g_assert_no_error (error);
  g_assert_true (dl_adamw8bit_state_zero (dl_test_recorder (), s, &error));
  g_assert_no_error (error);
  return s;
}

/* ---- the maps ---- */

static void
test_maps (void)
{
  float sm[256], um[256];
  dl_adamw8bit_dynamic_map (sm, TRUE);
  dl_adamw8bit_dynamic_map (um, FALSE);
  for (int k = 0; k < 255; k++)
    {
      g_assert_cmpfloat (sm[k], <, sm[k + 1]);
      g_assert_cmpfloat (um[k], <, um[k + 1]);
    }
  /* signed: 127 negatives mirroring the 127 positives, 0 at 127, then 1 */
  g_assert_cmpfloat (sm[127], ==, 0.0f);
  g_assert_cmpfloat (sm[255], ==, 1.0f);
  for (int k = 1; k < 128; k++)
    g_assert_cmpfloat (sm[127 - k], ==, -sm[127 + k]);
  /* the ends: the mean of the last linspace(0.1, 1, 65) interval; 10^-6 times
   * the mean of linspace(0.1, 1, 2) */
  g_assert_cmpfloat (fabs (sm[0] + 0.99296875), <, 1e-7);
  g_assert_cmpfloat (fabs (sm[128] - 0.55e-6), <, 1e-12);
  /* unsigned: 0, 254 positives, 1 */
  g_assert_cmpfloat (um[0], ==, 0.0f);
  g_assert_cmpfloat (um[255], ==, 1.0f);
  g_assert_cmpfloat (fabs (um[254] - 0.996484375), <, 1e-7);
  g_assert_cmpfloat (fabs (um[1] - 0.325e-6), <, 1e-12);
  /* codes per decade [10^(i-7), 10^(i-6)): 2^i signed, 2^(i+1) unsigned */
  for (int i = 0; i < 7; i++)
    {
      double lo = pow (10, i - 7), hi = pow (10, i - 6);
      int ns = 0, nu = 0;
      for (int k = 0; k < 256; k++)
        {
          ns += sm[k] > lo && sm[k] < hi;
          nu += um[k] > lo && um[k] < hi;
        }
      g_assert_cmpint (ns, ==, 1 << i);
      g_assert_cmpint (nu, ==, 1 << (i + 1));
    }
  /* the device codebook holds both */
  g_autoptr (DlTensor) cb = codebook ();
  g_assert_cmpint (dl_tensor_numel (cb), ==, 512);
  g_autofree float *got = dl_test_download (cb);
  g_assert_cmpmem (got, 256 * 4, sm, 256 * 4);
  g_assert_cmpmem (got + 256, 256 * 4, um, 256 * 4);
}

/* Quantising x against absmax 1: the nearest code; the error bounds. */
static void
check_map_error (const float map[256], gboolean is_signed)
{
  const char *which = is_signed ? "signed" : "unsigned";
  enum
  {
    N = 200000
  };
  g_autofree float *u = dl_test_random (N, is_signed ? 11 : 12, 0, 1);
  g_autofree float *e = dl_test_random (N, is_signed ? 13 : 14, -7, 0);
  double max_abs = 0, max_rel[7] = { 0 };
  for (int i = 0; i < N; i++)
    {
      /* half uniform over the range, half log-uniform down to 1e-7 */
      float x = i % 2 ? u[i] : powf (10.0f, e[i]);
      if (is_signed && i % 4 >= 2)
        x = -x;
      uint8_t c = ref_quantize_code (map, x, 1.0f, FALSE);
      double d = fabs ((double)map[c] - x), best = INFINITY;
      for (int k = 0; k < 256; k++)
        best = MIN (best, fabs ((double)map[k] - x));
      if (d > best * (1 + 1e-6) + 1e-12)
        g_error ("%s map: x %.9g quantised to %.9g (code %d), nearest is %.9g away", which, x, map[c], c, best);
      max_abs = MAX (max_abs, d);
      int decade = (int)floor (log10 (fabs (x))) + 7; /* [10^(i-7), 10^(i-6)) */
      if (decade >= 0 && decade < 7)
        max_rel[decade] = MAX (max_rel[decade], d / fabs (x));
    }
  /* the widest gap, in the top decade, is 0.9 / 64 (signed) or 0.9 / 128 */
  double gap = is_signed ? 0.9 / 64 : 0.9 / 128;
  g_test_message ("%s map: max |q(x) - x| = %.5f absmax (bound %.5f); max relative error per decade "
                  "[1e-1,1) %.4f [1e-2,1e-1) %.4f [1e-3,1e-2) %.4f [1e-4,1e-3) %.4f",
                  which, max_abs, gap / 2, max_rel[6], max_rel[5], max_rel[4], max_rel[3]);
  g_assert_cmpfloat (max_abs, <=, gap / 2 * (1 + 1e-5));
  /* within decade i, codes lie 0.9 10^(i-6) / 2^i (signed) apart: relative
   * error at most half that over the decade's low end, 4.5 / 2^i (2.25 / 2^i) */
  for (int i = 2; i < 7; i++)
    g_assert_cmpfloat (max_rel[i], <=, (is_signed ? 4.5 : 2.25) / (1 << i));
}

static void
test_quantization_error (void)
{
  float sm[256], um[256];
  dl_adamw8bit_dynamic_map (sm, TRUE);
  dl_adamw8bit_dynamic_map (um, FALSE);
  check_map_error (sm, TRUE);
  check_map_error (um, FALSE);

  /* block-wise: per-block scales, the error relative to the block's absmax;
   * the signed map keeps the sign (never the opposite sign; negatives stay
   * negative) */
  int64_t n = 3 * BLOCK + 17;
  g_autofree float *x = dl_test_random (n, 21, -1, 1);
  for (int64_t i = 0; i < n; i++)
    x[i] *= powf (10.0f, -(float)((i / BLOCK) * 2));
  for (int64_t i = BLOCK; i < 2 * BLOCK; i++)
    x[i] = 0; /* an all-zero block */
  g_autofree uint8_t *codes = g_new (uint8_t, n);
  g_autofree float *absmax = g_new (float, 4);
  g_autofree float *back = g_new (float, n);
  for (int s = 0; s < 2; s++)
    {
      const float *map = s ? um : sm;
      g_autofree float *xs = g_memdup2 (x, n * sizeof (float));
      if (s)
        for (int64_t i = 0; i < n; i++)
          xs[i] = fabsf (xs[i]);
      ref_quantize_blockwise (codes, absmax, xs, n, BLOCK, map, !s);
      ref_dequantize_blockwise (back, codes, absmax, n, BLOCK, map);
      g_assert_cmpfloat (absmax[1], ==, 0.0f);
      for (int64_t i = 0; i < n; i++)
        {
          float a = absmax[i / BLOCK];
          g_assert_cmpfloat (fabsf (back[i] - xs[i]), <=, (s ? 0.9 / 256 : 0.9 / 128) * a * (1 + 1e-5) + 1e-30);
          if (!s && xs[i] < 0)
            g_assert_cmpfloat (back[i], <, 0);
          if (!s && xs[i] > 0)
            g_assert_cmpfloat (back[i], >=, 0);
          if (i / BLOCK == 1)
            g_assert_cmpfloat (map[codes[i]], ==, 0.0f); /* the zero block stores the code of 0 */
        }
    }
}

/* ---- against the reference ---- */

typedef struct
{
  int64_t n;
  DlDType grad_dt;
  gboolean clip;
  DlDType copy_dt; /* F32: no copy */
  double grad_scale;
  gboolean non_finite; /* a NaN and an infinity in the gradient of step 2 (clipped: the whole step is left out) */
  int64_t view_offset; /* param and grad are views this many elements into a larger tensor */
  guint64 max_binding; /* 0: the device's */
  int steps;
} Case;

static void
run_case (const Case *c)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = c->n, nb = dl_adamw8bit_n_blocks (n), total = n + c->view_offset;
  guint32 seed = (guint32)n * 7 + c->grad_dt;
  g_autofree float *p = dl_test_random (n, seed, -1, 1);
  g_autofree float *p_full = g_new0 (float, total);
  memcpy (p_full + c->view_offset, p, n * sizeof (float));
  g_autoptr (DlTensor) tp_base = dl_test_tensor ("param base", DL_DTYPE_F32, 1, &total, p_full);
  g_autoptr (DlTensor) tg_base = dl_test_tensor ("grad base", c->grad_dt, 1, &total, NULL);
  g_autoptr (DlTensor) tp = dl_tensor_view (tp_base, "param", c->view_offset, 1, &n, &error);
  g_autoptr (DlTensor) tg = dl_tensor_view (tg_base, "grad", c->view_offset, 1, &n, &error);
  g_assert_no_error (error);
  g_autoptr (DlAdamW8bitState) st = zeroed_state (n);
  g_autoptr (DlTensor) cb = codebook ();
  int64_t two = 2;
  g_autoptr (DlTensor) tc = dl_test_tensor ("clip", DL_DTYPE_F32, 1, &two, NULL);
  g_autoptr (DlTensor) tcopy = c->copy_dt != DL_DTYPE_F32 ? dl_test_tensor ("copy", c->copy_dt, 1, &n, NULL) : NULL;
  float sm[256], um[256];
  dl_adamw8bit_dynamic_map (sm, TRUE);
  dl_adamw8bit_dynamic_map (um, FALSE);
  g_autofree uint8_t *mc = g_new0 (uint8_t, n);
  g_autofree uint8_t *vc = g_new0 (uint8_t, n);
  g_autofree float *ma = g_new0 (float, nb);
  g_autofree float *va = g_new0 (float, nb);
  g_autofree uint8_t *gmc = g_new0 (uint8_t, n);
  g_autofree uint8_t *gvc = g_new0 (uint8_t, n);
  g_autofree float *gma = g_new0 (float, nb);
  g_autofree float *gva = g_new0 (float, nb);
  DlAdamWParams prm = {
    .lr = 2e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.05, .grad_scale = c->grad_scale
  };
  g_autofree char *what =
    g_strdup_printf ("adamw8bit n %" G_GINT64_FORMAT " grad %s%s copy %s scale %g%s view %" G_GINT64_FORMAT
                     " binding %" G_GUINT64_FORMAT,
                     n, dl_dtype_name (c->grad_dt), c->clip ? " clipped" : "",
                     c->copy_dt != DL_DTYPE_F32 ? dl_dtype_name (c->copy_dt) : "none", c->grad_scale,
                     c->non_finite ? " non-finite" : "", c->view_offset, c->max_binding);
  for (int step = 1; step <= c->steps; step++)
    {
      g_autofree float *g = dl_test_random (n, seed + (guint32)step * 13, -0.5f, 0.5f);
      for (int64_t i = 0; i < n; i++)
        {
          int64_t b = i / BLOCK;
          g[i] *= powf (10.0f, -(float)(b % 3)); /* blocks of different scales */
          if (b == 2)
            g[i] = 0; /* an all-zero block: absmax stays 0 */
        }
      /* per block, one large gradient next to tiny ones of both signs and a -0:
     * first moments far below the block's absmax, nearest to the code of 0,
     * which bitsandbytes moves to the smallest code of the moment's sign */
      for (int64_t b0 = 0; b0 < n; b0 += BLOCK)
        {
          static const struct
          {
            int at;
            float g;
          } special[] = { { 11, 1000 }, { 13, -1e-4f }, { 17, 1e-4f }, { 19, -0.0f } };
          for (guint k = 0; k < G_N_ELEMENTS (special); k++)
            if (b0 / BLOCK != 2 && b0 + special[k].at < n)
              g[b0 + special[k].at] = special[k].g;
        }
      if (c->non_finite && step == 2)
        {
          g[n / 2] = NAN;
          g[n - 1] = INFINITY;
        }
      ref_round_to_dtype (g, n, c->grad_dt);
      g_autofree float *g_full = g_new0 (float, total);
      memcpy (g_full + c->view_offset, g, n * sizeof (float));
      g_assert_true (dl_tensor_upload_f32 (tg_base, g_full, &error));
      g_autoptr (DlTensor) th = hyper_tensor (&prm, step);
      dl_recorder_set_max_binding_range (rec, c->max_binding);
      if (c->clip)
        {
          DlTensor *gs[1] = { tg };
          g_assert_true (dl_op_grad_norm (rec, tc, gs, 1, 1.5f, &error));
        }
      guint64 before = dl_recorder_get_dispatch_count (rec);
      g_assert_true (dl_op_adamw8bit (rec, tp, tg, st, cb, th, c->clip ? tc : NULL, tcopy, &error));
      g_assert_no_error (error);
      guint64 dispatches = dl_recorder_get_dispatch_count (rec) - before;
      dl_test_finish ();
      dl_recorder_set_max_binding_range (rec, 0);
      if (c->max_binding)
        {
          int64_t per = (int64_t)((c->max_binding - DL_BINDING_ALIGN) / DL_BINDING_ALIGN * DL_BINDING_ALIGN / 4);
          per -= per % BLOCK;
          g_assert_cmpuint (dispatches, ==, (guint64)((n + per - 1) / per));
        }
      else
        g_assert_cmpuint (dispatches, ==, 1);

      float clip = 1.0f;
      gboolean left = FALSE;
      if (c->clip)
        {
          g_autofree float *cv = dl_test_download (tc);
          clip = cv[1];             /* the device's coefficient, as the shader reads it */
          left = !isfinite (cv[0]); /* a norm that is not finite: the tensor is left as it is */
        }
      float hv[DL_ADAMW_HYPER_LEN];
      dl_adamw_hyper_values (hv, &prm, step);
      RefAdamW8bitHyper h = ref_hyper (hv, clip);
      if (!left)
        ref_adamw8bit_step (p, mc, vc, ma, va, g, n, BLOCK, sm, um, &h);

      g_assert_true (dl_adamw8bit_state_download (st, gmc, gvc, gma, gva, &error));
      g_assert_no_error (error);
      /* the moments use only correctly rounded products and sums: the same
     * codes and absmax to the bit */
      g_autofree char *label = g_strdup_printf ("%s step %d", what, step);
      if (memcmp (gma, ma, nb * 4) != 0 || memcmp (gva, va, nb * 4) != 0)
        g_error ("%s: absmax differs from the reference", label);
      for (int64_t i = 0; i < n; i++)
        if (gmc[i] != mc[i] || gvc[i] != vc[i])
          g_error ("%s: element %" G_GINT64_FORMAT ": codes m %d v %d, reference %d %d", label, i, gmc[i], gvc[i],
                   mc[i], vc[i]);
      if (nb > 2) /* the all-zero block */
        g_assert_true (ma[2] == 0.0f && va[2] == 0.0f);
      g_autofree float *gp_full = dl_test_download (tp_base);
      float *gp = gp_full + c->view_offset;
      /* sqrt and division may be 2.5 ulp off on a device; |p| <= ~1 */
      dl_test_assert_close (label, gp, p, n, 1e-6, 1e-6);
      if (tcopy)
        {
          g_autofree float *copy = dl_test_download (tcopy);
          ref_round_to_dtype (gp, n, c->copy_dt);
          dl_test_assert_close ("adamw8bit model copy", copy, gp, n, 0, 0);
        }
      /* the elements with a non-finite gradient kept their value */
      if (c->non_finite && step == 2)
        g_assert_true (isfinite (gp[n / 2]) && isfinite (gp[n - 1]));
      /* the rest of the base tensor is untouched */
      for (int64_t i = 0; i < c->view_offset; i++)
        g_assert_cmpfloat (gp_full[i], ==, 0.0f);
    }
}

static void
test_against_reference (void)
{
  static const Case cases[] = {
    { .n = 1, .grad_dt = DL_DTYPE_F32, .copy_dt = DL_DTYPE_F32, .grad_scale = 1, .steps = 4 },
    { .n = 2047, .grad_dt = DL_DTYPE_F16, .copy_dt = DL_DTYPE_F16, .grad_scale = 1, .steps = 4 },
    { .n = 2048, .grad_dt = DL_DTYPE_F32, .clip = TRUE, .copy_dt = DL_DTYPE_BF16, .grad_scale = 0.25, .steps = 4 },
    { .n = 2049, .grad_dt = DL_DTYPE_F32, .copy_dt = DL_DTYPE_F32, .grad_scale = 1, .non_finite = TRUE, .steps = 4 },
    { .n = 10000,
      .grad_dt = DL_DTYPE_F16,
      .clip = TRUE,
      .copy_dt = DL_DTYPE_F16,
      .grad_scale = 1,
      .non_finite = TRUE,
      .view_offset = 3,
      .steps = 4 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i]);
}

/* 49 blocks through bindings of 3 blocks: 17 dispatches, views at odd offsets. */
static void
test_split (void)
{
  static const Case cases[] = {
    { .n = 100003,
      .grad_dt = DL_DTYPE_F16,
      .clip = TRUE,
      .copy_dt = DL_DTYPE_BF16,
      .grad_scale = 0.5,
      .non_finite = TRUE,
      .view_offset = 7,
      .max_binding = 3 * BLOCK * 4 + 2 * DL_BINDING_ALIGN,
      .steps = 3 },
    { .n = 2 * BLOCK + 1,
      .grad_dt = DL_DTYPE_F32,
      .copy_dt = DL_DTYPE_F32,
      .grad_scale = 1,
      .max_binding = BLOCK * 4 + DL_BINDING_ALIGN,
      .steps = 2 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    run_case (&cases[i]);
}

/* From the zero state, the first step's moments are exact before they are
 * quantised: the parameters move as fp32 AdamW's (torch semantics) do, but
 * for where the weight decay applies (after the update: lr^2 wd apart). */
static void
test_first_step (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = 5000;
  g_autofree float *p = dl_test_random (n, 31, -1, 1);
  g_autofree float *g = dl_test_random (n, 32, -1e-3f, 1e-3f);
  g_autoptr (DlTensor) tp = dl_test_tensor ("p", DL_DTYPE_F32, 1, &n, p);
  g_autoptr (DlTensor) tg = dl_test_tensor ("g", DL_DTYPE_F32, 1, &n, g);
  g_autoptr (DlAdamW8bitState) st = zeroed_state (n);
  g_autoptr (DlTensor) cb = codebook ();
  DlAdamWParams prm = DL_ADAMW_PARAMS_DEFAULT;
  g_autoptr (DlTensor) th = hyper_tensor (&prm, 1);
  g_assert_true (dl_op_adamw8bit (rec, tp, tg, st, cb, th, NULL, NULL, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *gp = dl_test_download (tp);
  g_autofree float *m = g_new0 (float, n);
  g_autofree float *v = g_new0 (float, n);
  ref_adamw_step (p, m, v, g, n, prm.lr, prm.beta1, prm.beta2, prm.eps, prm.weight_decay, 1, 1, 1);
  dl_test_assert_close ("adamw8bit first step vs fp32 AdamW", gp, p, n, 2e-7 + prm.lr * prm.lr * prm.weight_decay,
                        1e-6);
  /* and the stored moments dequantise to (1 - b1) g and (1 - b2) g^2 within the maps' error */
  g_autofree uint8_t *mc = g_new (uint8_t, n);
  g_autofree uint8_t *vc = g_new (uint8_t, n);
  int64_t nb = dl_adamw8bit_n_blocks (n);
  g_autofree float *ma = g_new (float, nb);
  g_autofree float *va = g_new (float, nb);
  g_assert_true (dl_adamw8bit_state_download (st, mc, vc, ma, va, &error));
  float sm[256], um[256];
  dl_adamw8bit_dynamic_map (sm, TRUE);
  dl_adamw8bit_dynamic_map (um, FALSE);
  g_autofree float *dm = g_new (float, n);
  g_autofree float *dv = g_new (float, n);
  ref_dequantize_blockwise (dm, mc, ma, n, BLOCK, sm);
  ref_dequantize_blockwise (dv, vc, va, n, BLOCK, um);
  for (int64_t i = 0; i < n; i++)
    {
      g_assert_cmpfloat (fabsf (dm[i] - m[i]), <=, 0.9 / 128 * ma[i / BLOCK] * 1.00001);
      g_assert_cmpfloat (fabsf (dv[i] - v[i]), <=, 0.9 / 256 * va[i / BLOCK] * 1.00001);
    }
}

/* ---- a toy problem: fp32 AdamW against 8-bit AdamW ---- */

/* A 8-64-64-1 tanh MLP regressing a smooth function of 8 inputs, full batch of
 * 256, mean squared error; gradients on the CPU in double, the optimizer steps
 * on the device. */
enum
{
  TOY_IN = 8,
  TOY_H = 64,
  TOY_N = 256,
  TOY_P = 6,
  TOY_STEPS = 200
};

static const int64_t toy_sizes[TOY_P] = { TOY_H * TOY_IN, TOY_H, TOY_H *TOY_H, TOY_H, TOY_H, 1 };

static double
toy_target (const float *x)
{
  return sin (2.0 * x[0]) * cos (x[1]) + 0.5 * x[2] * x[3] - 0.3 * x[4] + 0.2 * tanh (3.0 * x[5] * x[6]) + 0.1 * x[7];
}

/* Loss, and its gradient into grad[k] (same layout as the parameters). */
static double
toy_loss (float *const *w, float *const *grad, const float *x, const double *t)
{
  const float *W1 = w[0], *b1 = w[1], *W2 = w[2], *b2 = w[3], *W3 = w[4], *b3 = w[5];
  double *gacc[TOY_P];
  for (int k = 0; k < TOY_P; k++)
    gacc[k] = g_new0 (double, toy_sizes[k]);
  double loss = 0;
  for (int s = 0; s < TOY_N; s++)
    {
      const float *xs = x + s * TOY_IN;
      double h1[TOY_H], h2[TOY_H], d1[TOY_H], d2[TOY_H];
      for (int j = 0; j < TOY_H; j++)
        {
          double a = b1[j];
          for (int i = 0; i < TOY_IN; i++)
            a += (double)W1[j * TOY_IN + i] * xs[i];
          h1[j] = tanh (a);
        }
      for (int j = 0; j < TOY_H; j++)
        {
          double a = b2[j];
          for (int i = 0; i < TOY_H; i++)
            a += (double)W2[j * TOY_H + i] * h1[i];
          h2[j] = tanh (a);
        }
      double y = b3[0];
      for (int i = 0; i < TOY_H; i++)
        y += (double)W3[i] * h2[i];
      double r = y - t[s];
      loss += r * r / TOY_N;
      double dy = 2 * r / TOY_N;
      gacc[5][0] += dy;
      for (int i = 0; i < TOY_H; i++)
        {
          gacc[4][i] += dy * h2[i];
          d2[i] = dy * W3[i] * (1 - h2[i] * h2[i]);
        }
      for (int j = 0; j < TOY_H; j++)
        {
          gacc[3][j] += d2[j];
          for (int i = 0; i < TOY_H; i++)
            gacc[2][j * TOY_H + i] += d2[j] * h1[i];
        }
      for (int i = 0; i < TOY_H; i++)
        {
          double a = 0;
          for (int j = 0; j < TOY_H; j++)
            a += d2[j] * W2[j * TOY_H + i];
          d1[i] = a * (1 - h1[i] * h1[i]);
        }
      for (int j = 0; j < TOY_H; j++)
        {
          gacc[1][j] += d1[j];
          for (int i = 0; i < TOY_IN; i++)
            gacc[0][j * TOY_IN + i] += d1[j] * xs[i];
        }
    }
  if (grad)
    for (int k = 0; k < TOY_P; k++)
      for (int64_t i = 0; i < toy_sizes[k]; i++)
        grad[k][i] = (float)gacc[k][i];
  for (int k = 0; k < TOY_P; k++)
    g_free (gacc[k]);
  return loss;
}

/* Runs: 0 fp32 AdamW, 1 8-bit AdamW (every tensor, even the 1-element bias),
 * 2 fp32 AdamW at 1.05 lr, the control: how far a 5% learning-rate change
 * moves this curve. */
enum
{
  TOY_RUNS = 3
};

static double
curve_max_dev (const double *a, const double *ref, int *worst)
{
  double max_dev = 0;
  for (int s = 0; s <= TOY_STEPS; s++)
    {
      double d = fabs (a[s] - ref[s]) / ref[s];
      if (d > max_dev)
        {
          max_dev = d;
          *worst = s;
        }
    }
  return max_dev;
}

static void
test_toy_problem (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autofree float *x = dl_test_random (TOY_N * TOY_IN, 41, -1, 1);
  g_autofree double *t = g_new (double, TOY_N);
  for (int s = 0; s < TOY_N; s++)
    t[s] = toy_target (x + s * TOY_IN);
  float *w[TOY_RUNS][TOY_P], *gr[TOY_RUNS][TOY_P];
  DlTensor *tw[TOY_RUNS][TOY_P], *tgr[TOY_RUNS][TOY_P], *tm[TOY_RUNS][TOY_P], *tv[TOY_RUNS][TOY_P];
  DlAdamW8bitState *st[TOY_P];
  /* torch.nn.Linear's default init range, 1/sqrt(fan_in) */
  static const int fan_in[TOY_P] = { TOY_IN, TOY_IN, TOY_H, TOY_H, TOY_H, TOY_H };
  for (int k = 0; k < TOY_P; k++)
    {
      float bound = 1.0f / sqrtf ((float)fan_in[k]);
      g_autofree float *init = dl_test_random (toy_sizes[k], 50 + k, -bound, bound);
      g_autofree float *zeros = g_new0 (float, toy_sizes[k]);
      for (int o = 0; o < TOY_RUNS; o++)
        {
          w[o][k] = g_memdup2 (init, toy_sizes[k] * sizeof (float));
          gr[o][k] = g_new0 (float, toy_sizes[k]);
          tw[o][k] = dl_test_tensor ("w", DL_DTYPE_F32, 1, &toy_sizes[k], init);
          tgr[o][k] = dl_test_tensor ("g", DL_DTYPE_F32, 1, &toy_sizes[k], NULL);
          tm[o][k] = o != 1 ? dl_test_tensor ("m", DL_DTYPE_F32, 1, &toy_sizes[k], zeros) : NULL;
          tv[o][k] = o != 1 ? dl_test_tensor ("v", DL_DTYPE_F32, 1, &toy_sizes[k], zeros) : NULL;
        }
      st[k] = zeroed_state (toy_sizes[k]);
    }
  g_autoptr (DlTensor) cb = codebook ();
  DlAdamWParams prm = DL_ADAMW_PARAMS_DEFAULT, prm_control;
  prm.lr = 3e-3;
  prm_control = prm;
  prm_control.lr *= 1.05;
  int64_t hn = DL_ADAMW_HYPER_LEN;
  g_autoptr (DlTensor) hyper = dl_test_tensor ("hyper", DL_DTYPE_F32, 1, &hn, NULL);
  g_autoptr (DlTensor) hyper_control = dl_test_tensor ("hyper", DL_DTYPE_F32, 1, &hn, NULL);
  double curve[TOY_RUNS][TOY_STEPS + 1];
  for (int step = 0; step <= TOY_STEPS; step++)
    {
      for (int o = 0; o < TOY_RUNS; o++)
        {
          curve[o][step] = toy_loss (w[o], step < TOY_STEPS ? gr[o] : NULL, x, t);
          if (step < TOY_STEPS)
            for (int k = 0; k < TOY_P; k++)
              g_assert_true (dl_tensor_upload_f32 (tgr[o][k], gr[o][k], &error));
        }
      if (step == TOY_STEPS)
        break;
      g_assert_true (dl_adamw_hyper_upload (hyper, &prm, step + 1, &error));
      g_assert_true (dl_adamw_hyper_upload (hyper_control, &prm_control, step + 1, &error));
      g_assert_no_error (error);
      for (int k = 0; k < TOY_P; k++)
        {
          g_assert_true (dl_op_adamw (rec, tw[0][k], tgr[0][k], tm[0][k], tv[0][k], hyper, NULL, NULL, &error));
          g_assert_true (dl_op_adamw8bit (rec, tw[1][k], tgr[1][k], st[k], cb, hyper, NULL, NULL, &error));
          g_assert_true (dl_op_adamw (rec, tw[2][k], tgr[2][k], tm[2][k], tv[2][k], hyper_control, NULL, NULL, &error));
          g_assert_no_error (error);
        }
      dl_test_finish ();
      for (int o = 0; o < TOY_RUNS; o++)
        for (int k = 0; k < TOY_P; k++)
          g_assert_true (dl_tensor_download (tw[o][k], w[o][k], DL_DTYPE_F32, &error));
    }
  int worst = 0, worst_control = 0;
  double max_dev = curve_max_dev (curve[1], curve[0], &worst);
  double max_dev_control = curve_max_dev (curve[2], curve[0], &worst_control);
  double final_dev = (curve[1][TOY_STEPS] - curve[0][TOY_STEPS]) / curve[0][TOY_STEPS];
  g_test_message ("toy MLP, %d AdamW steps at lr %g: loss %.5f -> fp32 %.6f, 8-bit %.6f (final %+.2f%%); "
                  "curve max relative deviation %.2f%% at step %d (fp32 at 1.05 lr: %.2f%% at step %d); "
                  "at steps 50/100/150 fp32/8-bit: %.5f/%.5f, %.5f/%.5f, %.5f/%.5f",
                  TOY_STEPS, prm.lr, curve[0][0], curve[0][TOY_STEPS], curve[1][TOY_STEPS], 100 * final_dev,
                  100 * max_dev, worst, 100 * max_dev_control, worst_control, curve[0][50], curve[1][50], curve[0][100],
                  curve[1][100], curve[0][150], curve[1][150]);
  /* the problem is learnt (the loss falls ~50x), and the 8-bit curve stays about as
   * close to fp32's as a 5% change of learning rate does (measured on
   * lavapipe: 8-bit final -8.4%, curve 8.5%; control 7.4%) */
  g_assert_cmpfloat (curve[0][TOY_STEPS], <, 0.03 * curve[0][0]);
  g_assert_cmpfloat (fabs (final_dev), <, TOY_FINAL_TOL);
  g_assert_cmpfloat (max_dev, <, TOY_CURVE_TOL);
  g_assert_cmpfloat (max_dev, <, 1.5 * max_dev_control);
  for (int k = 0; k < TOY_P; k++)
    {
      for (int o = 0; o < TOY_RUNS; o++)
        {
          g_free (w[o][k]);
          g_free (gr[o][k]);
          dl_tensor_unref (tw[o][k]);
          dl_tensor_unref (tgr[o][k]);
          g_clear_pointer (&tm[o][k], dl_tensor_unref);
          g_clear_pointer (&tv[o][k], dl_tensor_unref);
        }
      dl_adamw8bit_state_free (st[k]);
    }
}

/* ---- the state's host API ---- */

static void
test_state_api (void)
{
  g_autoptr (GError) error = NULL;
  /* memory: 2 code bytes per element (whole words) + 2 absmax floats per block */
  g_assert_cmpuint (dl_adamw8bit_state_bytes (0), ==, 0);
  g_assert_cmpuint (dl_adamw8bit_state_bytes (1), ==, 2 * 4 + 2 * 4);
  g_assert_cmpuint (dl_adamw8bit_state_bytes (2048), ==, 2 * 2048 + 2 * 4);
  g_assert_cmpuint (dl_adamw8bit_state_bytes (2049), ==, 2 * 2052 + 2 * 2 * 4);
  g_assert_cmpuint (dl_adamw8bit_state_bytes ((int64_t)1 << 30), ==, ((guint64)2 << 30) + 8 * ((1 << 30) / 2048));
  g_assert_cmpint (dl_adamw8bit_n_blocks (4097), ==, 3);

  int64_t n = 5003, nb = dl_adamw8bit_n_blocks (n);
  g_autoptr (DlAdamW8bitState) st = zeroed_state (n);
  dl_test_finish ();
  g_autofree uint8_t *mc = g_new (uint8_t, n);
  g_autofree uint8_t *vc = g_new (uint8_t, n);
  g_autofree float *ma = g_new (float, nb);
  g_autofree float *va = g_new (float, nb);
  memset (mc, 0xab, n);
  g_assert_true (dl_adamw8bit_state_download (st, mc, vc, ma, va, &error));
  g_assert_no_error (error);
  for (int64_t i = 0; i < n; i++)
    g_assert_true (mc[i] == 0 && vc[i] == 0);
  for (int64_t b = 0; b < nb; b++)
    g_assert_true (ma[b] == 0 && va[b] == 0);

  /* upload / download round trip, then the state file */
  for (int64_t i = 0; i < n; i++)
    {
      mc[i] = (uint8_t)(i * 7);
      vc[i] = (uint8_t)(i * 13 + 1);
    }
  for (int64_t b = 0; b < nb; b++)
    {
      ma[b] = 0.5f + b;
      va[b] = 1e-6f * (b + 1);
    }
  g_assert_true (dl_adamw8bit_state_upload (st, mc, vc, ma, va, &error));
  g_assert_no_error (error);
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_assert_true (dl_adamw8bit_state_save (st, w, "unet.w", &error));
  g_assert_no_error (error);
  g_autofree char *path = g_build_filename (base_tmp_dir, "state.safetensors", NULL);
  g_assert_true (dl_safetensors_writer_write (w, path, &error));
  g_assert_no_error (error);

  g_autoptr (DlSafetensors) sf = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  const DlStTensor *tmc = dl_safetensors_find (sf, "adam8_m.unet.w");
  g_assert_nonnull (tmc);
  g_assert_cmpint (tmc->dtype, ==, DL_ST_U8);
  g_assert_cmpint (tmc->numel, ==, n);
  g_assert_cmpmem (tmc->data, n, mc, n);
  const DlStTensor *tva = dl_safetensors_find (sf, "adam8_v_absmax.unet.w");
  g_assert_nonnull (tva);
  g_assert_cmpint (tva->dtype, ==, DL_ST_F32);
  g_assert_cmpmem (tva->data, nb * 4, va, nb * 4);

  g_autoptr (DlAdamW8bitState) st2 = zeroed_state (n);
  dl_test_finish ();
  g_assert_true (dl_adamw8bit_state_load (st2, sf, "unet.w", &error));
  g_assert_no_error (error);
  g_autofree uint8_t *mc2 = g_new (uint8_t, n);
  g_autofree uint8_t *vc2 = g_new (uint8_t, n);
  g_autofree float *ma2 = g_new (float, nb);
  g_autofree float *va2 = g_new (float, nb);
  g_assert_true (dl_adamw8bit_state_download (st2, mc2, vc2, ma2, va2, &error));
  g_assert_cmpmem (mc2, n, mc, n);
  g_assert_cmpmem (vc2, n, vc, n);
  g_assert_cmpmem (ma2, nb * 4, ma, nb * 4);
  g_assert_cmpmem (va2, nb * 4, va, nb * 4);

  /* errors: a missing tensor, another size, a bad absmax */
  g_assert_false (dl_adamw8bit_state_load (st2, sf, "unet.other", &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "adam8_m.unet.other"));
  g_clear_error (&error);
  g_autoptr (DlAdamW8bitState) st3 = zeroed_state (n + 1);
  g_assert_false (dl_adamw8bit_state_load (st3, sf, "unet.w", &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_clear_error (&error);
  ma[1] = -1;
  g_assert_false (dl_adamw8bit_state_upload (st, NULL, NULL, ma, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  ma[1] = NAN;
  int64_t nbl = nb;
  g_autoptr (DlSafetensorsWriter) w3 = dl_safetensors_writer_new ();
  g_assert_true (dl_safetensors_writer_add (w3, "adam8_m.x", DL_ST_U8, 1, &n, mc, n, &error));
  g_assert_true (dl_safetensors_writer_add (w3, "adam8_v.x", DL_ST_U8, 1, &n, vc, n, &error));
  g_assert_true (dl_safetensors_writer_add (w3, "adam8_m_absmax.x", DL_ST_F32, 1, &nbl, ma, nb * 4, &error));
  g_assert_true (dl_safetensors_writer_add (w3, "adam8_v_absmax.x", DL_ST_F32, 1, &nbl, va, nb * 4, &error));
  g_autofree char *bad = g_build_filename (base_tmp_dir, "bad.safetensors", NULL);
  g_assert_true (dl_safetensors_writer_write (w3, bad, &error));
  g_autoptr (DlSafetensors) sb = dl_safetensors_open (bad, &error);
  g_assert_no_error (error);
  g_assert_false (dl_adamw8bit_state_load (st2, sb, "x", &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "absmax"));
  g_clear_error (&error);
  g_unlink (path);
  g_unlink (bad);
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t n = 10, one = 1;
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 1, &n, NULL);
  g_autoptr (DlTensor) h16 = dl_test_tensor ("h16", DL_DTYPE_F16, 1, &n, NULL);
  g_autoptr (DlTensor) small = dl_test_tensor ("small", DL_DTYPE_F32, 1, &one, NULL);
  g_autoptr (DlAdamW8bitState) st = zeroed_state (n);
  g_autoptr (DlAdamW8bitState) st11 = zeroed_state (n + 1);
  g_autoptr (DlTensor) cb = codebook ();
  DlAdamWParams prm = DL_ADAMW_PARAMS_DEFAULT;
  g_autoptr (DlTensor) hyper = hyper_tensor (&prm, 1);
  g_assert_false (dl_op_adamw8bit (rec, a, a, st11, cb, hyper, NULL, NULL, &error)); /* state of another size */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_adamw8bit (rec, h16, a, st, cb, hyper, NULL, NULL, &error)); /* f16 master weights */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_adamw8bit (rec, a, a, st, small, hyper, NULL, NULL, &error)); /* codebook too short */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_adamw8bit (rec, a, a, st, cb, small, NULL, NULL, &error)); /* hyper too short */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_adamw8bit (rec, a, a, st, cb, hyper, NULL, a, &error)); /* f32 model copy */
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  /* a binding too small for one block of f32 parameters */
  dl_recorder_set_max_binding_range (rec, 4096);
  g_assert_false (dl_op_adamw8bit (rec, a, a, st, cb, hyper, NULL, NULL, &error));
  dl_recorder_set_max_binding_range (rec, 0);
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  dl_test_finish ();
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  base_tmp_dir = g_dir_make_tmp ("dl-test-adamw8bit-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  dl_test_add ("/ops/adamw8bit/maps", test_maps);
  dl_test_add ("/ops/adamw8bit/quantization-error", test_quantization_error);
  dl_test_add ("/ops/adamw8bit/reference", test_against_reference);
  dl_test_add ("/ops/adamw8bit/split", test_split);
  dl_test_add ("/ops/adamw8bit/first-step", test_first_step);
  dl_test_add ("/ops/adamw8bit/toy-problem", test_toy_problem);
  dl_test_add ("/ops/adamw8bit/state-api", test_state_api);
  dl_test_add ("/ops/adamw8bit/errors", test_errors);
  int rc = dl_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  return rc;
}
