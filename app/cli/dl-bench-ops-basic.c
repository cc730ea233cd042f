/* bench ops: the foundation ops (matmul, elementwise, reductions). */
#include "dl-bench-ops.h"

typedef struct
{
  DlTensor *d, *a, *b;
} Three;

static gboolean
rec_matmul (DlRecorder *rec, gpointer data, GError **error)
{
  Three *t = data;
  return dl_op_matmul (rec, t->d, t->a, FALSE, t->b, TRUE, NULL, NULL, error);
}

static gboolean
rec_add (DlRecorder *rec, gpointer data, GError **error)
{
  Three *t = data;
  return dl_op_add (rec, t->d, t->d, t->a, error); /* residual: y += x */
}

static gboolean
rec_copy (DlRecorder *rec, gpointer data, GError **error)
{
  Three *t = data;
  return dl_op_copy (rec, t->d, t->a, error);
}

static gboolean
rec_sum (DlRecorder *rec, gpointer data, GError **error)
{
  Three *t = data;
  return dl_op_sum (rec, t->d, t->a, 0, error);
}

static void
three_clear (Three *t)
{
  g_clear_pointer (&t->d, dl_tensor_unref);
  g_clear_pointer (&t->a, dl_tensor_unref);
  g_clear_pointer (&t->b, dl_tensor_unref);
}

gboolean
dl_bench_ops_basic (DlBenchOps *b, GError **error)
{
  gboolean small = dl_bench_ops_is_small (b);
  int64_t tokens = small ? 1024 : 4096; /* 64x64 latent tokens at 512² (32x32 when small) */
  int64_t C = 320;
  Three t = { 0 };
  gboolean ok = FALSE;
  g_autofree char *shape = NULL;

  /* linear projection: [tokens, C] x [C, C]^T in f16 storage */
  int64_t xs[2] = { tokens, C }, ws[2] = { C, C };
  if (!(t.a = dl_bench_ops_tensor (b, "x", DL_DTYPE_F16, 2, xs, error)) ||
      !(t.b = dl_bench_ops_tensor (b, "w", DL_DTYPE_F16, 2, ws, error)) ||
      !(t.d = dl_bench_ops_tensor (b, "y", DL_DTYPE_F16, 2, xs, error)))
    goto out;
  shape = g_strdup_printf ("[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "]x[%" G_GINT64_FORMAT "]ᵀ f16", tokens, C, C);
  if (!dl_bench_ops_case (b, "matmul", shape, 2.0 * tokens * C * C, 2.0 * (2 * tokens * C + C * C), rec_matmul, &t,
                          error))
    goto out;
  g_clear_pointer (&shape, g_free);

  /* residual add and a cast over a UNet activation [1, 320, 64, 64] */
  shape = g_strdup_printf ("[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "] f16", tokens, C);
  if (!dl_bench_ops_case (b, "add (residual)", shape, 0, 3.0 * 2 * tokens * C, rec_add, &t, error))
    goto out;
  three_clear (&t);
  if (!(t.a = dl_bench_ops_tensor (b, "x", DL_DTYPE_F32, 2, xs, error)) ||
      !(t.d = dl_bench_ops_tensor (b, "y", DL_DTYPE_F16, 2, xs, error)))
    goto out;
  g_clear_pointer (&shape, g_free);
  shape = g_strdup_printf ("[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "] f32->f16", tokens, C);
  if (!dl_bench_ops_case (b, "copy (cast)", shape, 0, 6.0 * tokens * C, rec_copy, &t, error))
    goto out;

  /* bias gradient: sum over tokens */
  g_clear_pointer (&t.d, dl_tensor_unref);
  int64_t cs[1] = { C };
  if (!(t.d = dl_bench_ops_tensor (b, "db", DL_DTYPE_F32, 1, cs, error)))
    goto out;
  g_clear_pointer (&shape, g_free);
  shape = g_strdup_printf ("[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "] axis 0", tokens, C);
  if (!dl_bench_ops_case (b, "sum", shape, 0, 4.0 * tokens * C, rec_sum, &t, error))
    goto out;
  ok = TRUE;
out:
  three_clear (&t);
  return ok;
}
