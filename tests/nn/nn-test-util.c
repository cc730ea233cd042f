/* nn-test-util.c: see nn-test-util.h. */
#include "dl-config.h"

#include "nn-test-util.h"

#include <math.h>
#include <string.h>

#include "ops/dl-ops.h"

char *nn_golden_dir;

DlSafetensors *
nn_golden_open (const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (nn_golden_dir, name, NULL);
  DlSafetensors *st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  return st;
}

float *
nn_golden_f32 (DlSafetensors *st, const char *name, int64_t *numel)
{
  g_autoptr (GError) error = NULL;
  float *v = dl_safetensors_read_f32 (st, name, numel, &error);
  g_assert_no_error (error);
  return v;
}

DlTensor *
nn_golden_upload (DlSafetensors *st, const char *name, DlDType dtype)
{
  g_autoptr (GError) error = NULL;
  const DlStTensor *t = dl_safetensors_find (st, name);
  g_assert_nonnull (t);
  int64_t n = 0;
  g_autofree float *v = nn_golden_f32 (st, name, &n);
  DlTensor *d = dl_tensor_new (dl_test_device (), name, dtype, t->ndim, t->shape, &error);
  g_assert_no_error (error);
  if (dtype == DL_DTYPE_I32)
    {
      g_autofree gint32 *iv = g_new (gint32, n);
      for (int64_t i = 0; i < n; i++)
        iv[i] = (gint32)v[i];
      g_assert_true (dl_tensor_upload (d, iv, DL_DTYPE_I32, &error));
    }
  else
    {
      g_assert_true (dl_tensor_upload_f32 (d, v, &error));
    }
  g_assert_no_error (error);
  return d;
}

gboolean
nn_check_scaled (const char *what, const float *got, const float *want, int64_t n, double atol, double rtol)
{
  double maxw = 0, maxd = 0;
  int64_t worst = 0;
  for (int64_t i = 0; i < n; i++)
    {
      maxw = fmax (maxw, fabs (want[i]));
      double d = fabs ((double)got[i] - want[i]);
      if (!(d <= maxd))
        {
          maxd = d;
          worst = i;
        }
    }
  double bound = atol + rtol * maxw;
  gboolean ok = maxd <= bound;
  if (!ok || g_test_verbose ())
    g_printerr ("%s %s: max err %.3g (bound %.3g, max |golden| %.3g) worst [%" G_GINT64_FORMAT "] got %.8g want %.8g\n",
                ok ? "ok" : "FAIL", what, maxd, bound, maxw, worst, n ? got[worst] : 0.0, n ? want[worst] : 0.0);
  return ok;
}

gboolean
nn_compare_tensor (DlTensor *t, DlSafetensors *st, const char *golden_name, double atol, double rtol)
{
  int64_t n = 0;
  g_autofree float *want = nn_golden_f32 (st, golden_name, &n);
  g_assert_cmpint (n, ==, dl_tensor_numel (t));
  g_autofree float *got = dl_test_download (t);
  return nn_check_scaled (golden_name, got, want, n, atol, rtol);
}

gint32 *
nn_golden_ids (DlSafetensors *st, const char *name, int64_t *n_out)
{
  int64_t n = 0;
  g_autofree float *v = nn_golden_f32 (st, name, &n);
  gint32 *ids = g_new (gint32, MAX (n, 1));
  for (int64_t i = 0; i < n; i++)
    ids[i] = (gint32)v[i];
  if (n_out)
    *n_out = n;
  return ids;
}

DlTape *
nn_new_tape (void)
{
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-activations", 64 << 20);
  return dl_tape_new (dl_test_recorder (), arena);
}

GHashTable *
nn_make_param_grads (DlParams *params, DlTape *tape, const char *prefix)
{
  g_autoptr (GError) error = NULL;
  GHashTable *grads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  g_autoptr (GPtrArray) names = dl_params_names (params);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      if (!g_str_has_prefix (name, prefix))
        continue;
      DlTensor *p = dl_params_lookup (params, name);
      DlTensor *g = dl_tensor_new (dl_test_device (), name, DL_DTYPE_F32, p->ndim, p->shape, &error);
      g_assert_no_error (error);
      g_assert_true (dl_op_fill (dl_test_recorder (), g, 0.0, &error));
      dl_tape_set_param_grad (tape, p, g);
      g_hash_table_insert (grads, g_strdup (name), g);
    }
  return grads;
}

guint
nn_compare_param_grads (GHashTable *grads, DlSafetensors *st, const char *golden_prefix, const char *param_prefix,
                        const char *const *skip, double atol, double rtol, double k_bias_atol, gboolean *ok)
{
  guint n_checked = 0;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      gboolean skipped = !g_str_has_prefix (t->name, golden_prefix);
      for (guint s = 0; !skipped && skip && skip[s]; s++)
        skipped = strstr (t->name, skip[s]) != NULL;
      if (skipped)
        continue;
      g_autofree char *pname = g_strconcat (param_prefix, t->name + strlen (golden_prefix), NULL);
      DlTensor *g = g_hash_table_lookup (grads, pname);
      if (!g)
        g_error ("no gradient for %s (golden %s)", pname, t->name);
      int64_t n = 0;
      g_autofree float *want = nn_golden_f32 (st, t->name, &n);
      double peak = 0;
      for (int64_t k = 0; k < n; k++)
        peak = fmax (peak, fabs (want[k]));
      if (g_str_has_suffix (pname, "k_proj.bias"))
        *ok &= nn_compare_tensor (g, st, t->name, k_bias_atol, 0);
      else if (peak == 0)
        *ok &= nn_compare_tensor (g, st, t->name, 1e-5, 0);
      else
        *ok &= nn_compare_tensor (g, st, t->name, atol, rtol);
      n_checked++;
    }
  return n_checked;
}

void
nn_check_token_rows (DlSafetensors *st, DlTensor *grad, const char *golden, gboolean *ok)
{
  g_autofree char *rid = g_strconcat (golden, ".row_ids", NULL);
  g_autofree char *rws = g_strconcat (golden, ".rows", NULL);
  int64_t nrows = 0, nvals = 0;
  g_autofree float *row_ids = nn_golden_f32 (st, rid, &nrows);
  g_autofree float *rows = nn_golden_f32 (st, rws, &nvals);
  g_autofree float *all = dl_test_download (grad);
  int64_t C = grad->shape[1];
  g_autofree float *got_rows = g_new (float, nvals);
  for (int64_t r = 0; r < nrows; r++)
    memcpy (got_rows + r * C, all + (int64_t)row_ids[r] * C, C * sizeof (float));
  *ok &= nn_check_scaled (rws, got_rows, rows, nvals, 1e-7, 1e-3);
  double other = 0;
  for (int64_t v = 0; v < grad->shape[0]; v++)
    {
      gboolean used = FALSE;
      for (int64_t r = 0; r < nrows && !used; r++)
        used = (int64_t)row_ids[r] == v;
      for (int64_t k = 0; !used && k < C; k++)
        other = fmax (other, fabs (all[v * C + k]));
    }
  if (other != 0.0)
    {
      g_printerr ("FAIL %s: an unused row's gradient reaches %g\n", golden, other);
      *ok = FALSE;
    }
}
