/* matmul against the double-precision reference: awkward sizes that are multiples
 * of no tile, both transpositions, every tile configuration, f32/f16 inputs and
 * outputs, bias, accumulation, and batches with broadcast operands; the
 * automatic tile choice. */
#include "dl-test-util.h"

#include <math.h>

typedef struct
{
  int64_t m, n, k;
} Size;

static const Size sizes[] = {
  { 1, 1, 1 },     { 7, 129, 33 },    { 129, 7, 1000 }, { 1000, 1, 7 },
  { 65, 67, 129 }, { 128, 128, 128 }, { 33, 200, 17 },  { 5, 3, 0 },
};

typedef struct
{
  DlDType da, db, dd;
  gboolean ta, tb;
  DlMatmulTile tile;
  int64_t batch, batch_a, batch_b;
  gboolean bias;
  float alpha, beta;
} Case;

static void
run_case (const Size *s, const Case *c)
{
  DlRecorder *rec = dl_test_recorder ();
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  if (c->tile != DL_MATMUL_TILE_AUTO && !dl_matmul_tile_supported (dev, c->tile))
    return;
  int64_t M = s->m, N = s->n, K = s->k;
  int64_t na = c->batch_a * M * K, nb = c->batch_b * K * N, nd = c->batch * M * N;
  guint32 seed = (guint32)(M * 7919 + N * 31 + K);
  g_autofree float *xa = dl_test_random (na, seed, -1, 1);
  g_autofree float *xb = dl_test_random (nb, seed + 1, -1, 1);
  g_autofree float *xd = dl_test_random (nd, seed + 2, -1, 1);
  g_autofree float *xbias = dl_test_random (N, seed + 3, -1, 1);
  ref_round_to_dtype (xa, na, c->da);
  ref_round_to_dtype (xb, nb, c->db);
  ref_round_to_dtype (xd, nd, c->dd);
  ref_round_to_dtype (xbias, N, c->db);

  int64_t sa[3] = { c->batch_a, c->ta ? K : M, c->ta ? M : K };
  int64_t sb[3] = { c->batch_b, c->tb ? N : K, c->tb ? K : N };
  int64_t sd[3] = { c->batch, M, N };
  /* unbatched operands are plain matrices */
  g_autoptr (DlTensor) a = dl_test_tensor ("a", c->da, c->batch_a > 1 ? 3 : 2, c->batch_a > 1 ? sa : sa + 1, xa);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", c->db, c->batch_b > 1 ? 3 : 2, c->batch_b > 1 ? sb : sb + 1, xb);
  g_autoptr (DlTensor) d = dl_test_tensor ("d", c->dd, c->batch > 1 ? 3 : 2, c->batch > 1 ? sd : sd + 1, xd);
  g_autoptr (DlTensor) bias = c->bias ? dl_test_tensor ("bias", c->db, 1, &N, xbias) : NULL;

  DlMatmulParams prm = { .alpha = c->alpha, .beta = c->beta, .tile = c->tile };
  g_assert_true (dl_op_matmul (rec, d, a, c->ta, b, c->tb, bias, &prm, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (d);

  g_autofree float *want = g_memdup2 (xd, nd * sizeof (float));
  ref_matmul (want, xa, c->ta, xb, c->tb, c->bias ? xbias : NULL, c->batch, c->batch_a, c->batch_b, M, N, K, c->alpha,
              c->beta);
  ref_round_to_dtype (want, nd, c->dd);

  g_autofree char *what = g_strdup_printf (
    "matmul %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT
    " (a %" G_GINT64_FORMAT ", b %" G_GINT64_FORMAT ") %s%s·%s%s->%s tile %s%s alpha %g beta %g",
    M, N, K, c->batch, c->batch_a, c->batch_b, dl_dtype_name (c->da), c->ta ? "ᵀ" : "", dl_dtype_name (c->db),
    c->tb ? "ᵀ" : "", dl_dtype_name (c->dd), dl_matmul_tile_name (c->tile), c->bias ? " +bias" : "", c->alpha, c->beta);
  /* fp32 accumulation of K products of numbers in [-1, 1] */
  double atol = 4e-7 * (1 + sqrt ((double)K)) * 4;
  double rtol = c->dd == DL_DTYPE_F16 ? 1e-3 : 1e-5;
  if (c->dd == DL_DTYPE_F16)
    atol += 1e-3;
  dl_test_assert_close (what, got, want, nd, atol, rtol);
}

static void
test_f32_all_tiles (void)
{
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (int t = DL_MATMUL_TILE_AUTO; t < DL_MATMUL_N_TILES; t++)
      for (int tr = 0; tr < 4; tr++)
        {
          Case c = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, tr & 1, tr >> 1, (DlMatmulTile)t, 1, 1, 1, FALSE, 1, 0 };
          run_case (&sizes[s], &c);
        }
}

static void
test_dtypes (void)
{
  static const DlDType fl[] = { DL_DTYPE_F32, DL_DTYPE_F16 };
  for (guint s = 1; s < 5; s++)
    for (int ia = 0; ia < 2; ia++)
      for (int ib = 0; ib < 2; ib++)
        for (int id = 0; id < 2; id++)
          {
            Case c = { fl[ia], fl[ib], fl[id], FALSE, TRUE, DL_MATMUL_TILE_AUTO, 1, 1, 1, TRUE, 1, 0 };
            run_case (&sizes[s], &c);
          }
}

static void
test_bias_and_accumulate (void)
{
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      Case c = { DL_DTYPE_F32, DL_DTYPE_F32, DL_DTYPE_F32, FALSE, TRUE, DL_MATMUL_TILE_M, 1, 1, 1, TRUE, 1, 0 };
      run_case (&sizes[s], &c);
      c.bias = FALSE;
      c.alpha = 0.5f;
      c.beta = 1.0f; /* gradient accumulation: d += 0.5 * a·bᵀ */
      run_case (&sizes[s], &c);
      c.bias = TRUE;
      c.ta = TRUE;
      c.beta = -2.0f;
      c.tile = DL_MATMUL_TILE_S;
      run_case (&sizes[s], &c);
    }
}

static void
test_batched (void)
{
  static const Size bs[] = { { 7, 129, 33 }, { 65, 67, 20 }, { 1, 5, 9 } };
  for (guint s = 0; s < G_N_ELEMENTS (bs); s++)
    for (int tr = 0; tr < 4; tr++)
      {
        /* weights broadcast over the batch (the common Linear case, folded into one tall product) */
        Case c = {
          DL_DTYPE_F32, DL_DTYPE_F16, DL_DTYPE_F32, tr & 1, tr >> 1, DL_MATMUL_TILE_AUTO, 3, 3, 1, TRUE, 1, 0
        };
        run_case (&bs[s], &c);
        /* both operands batched (attention scores) */
        c.batch_b = 3;
        c.bias = FALSE;
        run_case (&bs[s], &c);
        /* a broadcast, b batched */
        c.batch_a = 1;
        c.tile = DL_MATMUL_TILE_S;
        run_case (&bs[s], &c);
      }
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTensor) a = dl_test_tensor ("a", DL_DTYPE_F32, 2, (int64_t[]){ 4, 5 }, NULL);
  g_autoptr (DlTensor) b = dl_test_tensor ("b", DL_DTYPE_F32, 2, (int64_t[]){ 6, 7 }, NULL);
  g_autoptr (DlTensor) d = dl_test_tensor ("d", DL_DTYPE_F32, 2, (int64_t[]){ 4, 7 }, NULL);
  g_assert_false (dl_op_matmul (rec, d, a, FALSE, b, FALSE, NULL, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_autoptr (DlTensor) i = dl_test_tensor ("ints", DL_DTYPE_I32, 2, (int64_t[]){ 5, 7 }, NULL);
  g_assert_false (dl_op_matmul (rec, d, a, FALSE, i, FALSE, NULL, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_autoptr (DlTensor) b2 = dl_test_tensor ("b2", DL_DTYPE_F32, 2, (int64_t[]){ 5, 7 }, NULL);
  g_autoptr (DlTensor) bias = dl_test_tensor ("bias", DL_DTYPE_F32, 1, (int64_t[]){ 6 }, NULL);
  g_assert_false (dl_op_matmul (rec, d, a, FALSE, b2, FALSE, bias, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

/* The automatic tile: a product with few rows (the tokens of the inner UNet
 * levels at small sizes) or few columns (a LoRA's rank) gets a tile short in
 * that dimension, not a 128 x 128 one computing up to 128x the useful work;
 * a large product keeps a tile of at least 64 x 64.  Device-independent bounds:
 * the choice depends on the device's busy_workgroups. */
static void
test_tile_choice (void)
{
  DlDevice *dev = dl_test_device ();
  if (*dl_device_get_tuning (dev)->matmul_tile)
    {
      g_test_skip ("DREAMLOOM_MATMUL_TILE forces a tile");
      return;
    }
  static const struct
  {
    int64_t m, n;
    double max_waste; /* tiles' elements / M N */
  } cases[] = {
    { 1, 1280, 4 }, { 4, 640, 2 }, { 16, 1280, 2 }, { 64, 1280, 2 }, { 64, 16, 8 }, { 4096, 16, 2 }, { 77, 320, 2 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      int64_t M = cases[i].m, N = cases[i].n;
      DlMatmulTile t = dl_matmul_auto_tile (dev, M, N, 1);
      g_assert_cmpint (t, !=, DL_MATMUL_TILE_AUTO);
      guint bm, bn, bk;
      dl_matmul_tile_dims (t, &bm, &bn, &bk);
      double waste = (double)((M + bm - 1) / bm * bm) * (double)((N + bn - 1) / bn * bn) / ((double)M * N);
      if (g_test_verbose () || waste > cases[i].max_waste)
        g_printerr ("%" G_GINT64_FORMAT " x %" G_GINT64_FORMAT ": tile %s, %.2fx the useful work\n", M, N,
                    dl_matmul_tile_name (t), waste);
      g_assert_cmpfloat (waste, <=, cases[i].max_waste);
    }
  guint bm, bn, bk;
  dl_matmul_tile_dims (dl_matmul_auto_tile (dev, 4096, 1280, 1), &bm, &bn, &bk);
  g_assert_cmpuint (bm * bn, >=, 64 * 64);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/matmul/f32-all-tiles", test_f32_all_tiles);
  dl_test_add ("/ops/matmul/dtypes", test_dtypes);
  dl_test_add ("/ops/matmul/bias-and-accumulate", test_bias_and_accumulate);
  dl_test_add ("/ops/matmul/batched", test_batched);
  dl_test_add ("/ops/matmul/errors", test_errors);
  dl_test_add ("/ops/matmul/tile-choice", test_tile_choice);
  return dl_test_run ();
}
