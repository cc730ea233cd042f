/* nn-test-util.c: see nn-test-util.h. */
#include "dl-config.h"

#include "nn-test-util.h"

#include <math.h>

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
