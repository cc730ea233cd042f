/* Embedding lookups: token + position forward and the scatter-add backward
 * (against the reference, against an in-order float sum bit for bit, run to
 * run), tables whose first id is not 0 and lookups added onto out (Textual
 * Inversion's table of new tokens), tables split over several bindings (bit for
 * bit the unsplit result), the timestep embedding against PyTorch's float32
 * sequence, and both against the golden tiny models (text_encoder
 * hidden_states.0, unet time_proj). */
#include "dl-test-util.h"

#include "io/dl-safetensors.h"
#include "ref-embed.h"

#include <math.h>
#include <string.h>

typedef struct
{
  int32_t *ids;
  float *table, *pos, *r;
  int64_t B, T, C, V, off;
} FdCtx;

static double
fd_loss (gpointer data)
{
  FdCtx *c = data;
  int64_t n = c->B * c->T * c->C;
  g_autofree float *o = g_new (float, n);
  ref_embedding_forward (o, c->ids, c->table, c->pos, c->B, c->T, c->C, c->V, c->off);
  double l = 0;
  for (int64_t i = 0; i < n; i++)
    l += (double)o[i] * c->r[i];
  return l;
}

static void
test_reference_gradient (void)
{
  int64_t B = 2, T = 5, C = 3, V = 6, P = 8, off = 2;
  int32_t ids[10] = { 1, 4, 4, 0, 5, 4, 1, 2, -1, 6 }; /* repeats and two invalid ids */
  g_autofree float *table = dl_test_random (V * C, 1, -1, 1);
  g_autofree float *pos = dl_test_random (P * C, 2, -1, 1);
  g_autofree float *r = dl_test_random (B * T * C, 3, -1, 1);
  g_autofree float *dt = g_new0 (float, V *C);
  g_autofree float *dp = g_new0 (float, P *C);
  ref_embedding_backward (dt, dp, ids, r, B, T, C, V, off);
  FdCtx c = { ids, table, pos, r, B, T, C, V, off };
  /* the loss is linear in both tables */
  dl_test_assert_fd ("embedding dtable", table, V * C, dt, fd_loss, &c, 1e-2, 1e-5, 1e-4, 1000, FALSE);
  dl_test_assert_fd ("embedding dpos", pos, P * C, dp, fd_loss, &c, 1e-2, 1e-5, 1e-4, 1000, FALSE);
}

typedef struct
{
  int64_t B, T, C, V, P, off;
  gboolean with_pos;
} Case;

static int32_t *
make_ids (const Case *c, guint32 seed)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  int32_t *ids = g_new (int32_t, c->B * c->T);
  for (int64_t i = 0; i < c->B * c->T; i++)
    ids[i] = g_rand_int_range (r, 0, (gint32)MIN (c->V, 12)); /* few distinct ids: many repeats */
  if (c->B * c->T > 3)
    {
      ids[1] = -3;            /* out of range: a zero row, no gradient */
      ids[2] = (int32_t)c->V; /* one past the end */
      ids[3] = (int32_t)c->V - 1;
    }
  return ids;
}

static DlTensor *
ids_tensor (const Case *c, const int32_t *ids)
{
  g_autoptr (GError) error = NULL;
  int64_t shape[2] = { c->B, c->T };
  DlTensor *t = dl_test_tensor ("ids", DL_DTYPE_I32, 2, shape, NULL);
  dl_tensor_upload (t, ids, DL_DTYPE_I32, &error);
  g_assert_no_error (error);
  return t;
}

/* ids of make_ids() moved to a table whose first id is id_base: the invalid ones
 * land below it and one past its end */
static void
shift_ids (int32_t *ids, int64_t n, int64_t id_base)
{
  for (int64_t i = 0; i < n; i++)
    ids[i] = (int32_t)(ids[i] + id_base);
}

static void
run_forward (const Case *c, DlDType table_dt, DlDType out_dt, int64_t id_base, gboolean accumulate)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  guint32 seed = (guint32)(c->B * 100 + c->T * 10 + c->C);
  int64_t n = c->B * c->T * c->C;
  g_autofree int32_t *ids = make_ids (c, seed);
  shift_ids (ids, c->B * c->T, id_base);
  g_autofree float *table = dl_test_random (c->V * c->C, seed + 1, -1, 1);
  g_autofree float *pos = dl_test_random (c->P * c->C, seed + 2, -1, 1);
  g_autofree float *out0 = dl_test_random (n, seed + 3, -1, 1);
  ref_round_to_dtype (table, c->V * c->C, table_dt);
  ref_round_to_dtype (pos, c->P * c->C, table_dt);
  ref_round_to_dtype (out0, n, out_dt);
  int64_t st[2] = { c->V, c->C }, sp[2] = { c->P, c->C }, so[3] = { c->B, c->T, c->C };
  g_autoptr (DlTensor) tids = ids_tensor (c, ids);
  g_autoptr (DlTensor) ttab = dl_test_tensor ("table", table_dt, 2, st, table);
  g_autoptr (DlTensor) tpos = dl_test_tensor ("pos", table_dt, 2, sp, pos);
  g_autoptr (DlTensor) tout = dl_test_tensor ("out", out_dt, 3, so, out0);
  if (id_base == 0 && !accumulate)
    g_assert_true (dl_op_embedding (rec, tout, tids, ttab, c->with_pos ? tpos : NULL, c->off, &error));
  else
    g_assert_true (
      dl_op_embedding_ex (rec, tout, tids, ttab, id_base, c->with_pos ? tpos : NULL, c->off, accumulate, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (tout);
  g_autofree float *want = g_memdup2 (out0, n * sizeof (float));
  ref_embedding_forward_ex (want, ids, table, id_base, c->with_pos ? pos : NULL, c->B, c->T, c->C, c->V, c->off,
                            accumulate);
  ref_round_to_dtype (want, n, out_dt);
  g_autofree char *what = g_strdup_printf ("embedding %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                                           " %s->%s%s first id %" G_GINT64_FORMAT "%s",
                                           c->B, c->T, c->C, dl_dtype_name (table_dt), dl_dtype_name (out_dt),
                                           c->with_pos ? " +pos" : "", id_base, accumulate ? " accumulate" : "");
  /* one or two float additions, each correctly rounded on both sides */
  dl_test_assert_close (what, got, want, n, 0, 0);
}

static const Case cases[] = {
  { 1, 1, 1, 5, 1, 0, TRUE },     { 2, 7, 33, 50, 10, 3, TRUE },   { 2, 77, 64, 1000, 77, 0, TRUE },
  { 1, 9, 129, 20, 9, 0, FALSE }, { 3, 16, 768, 30, 20, 4, TRUE },
};

static void
test_forward (void)
{
  static const DlDType fl[] = { DL_DTYPE_F32, DL_DTYPE_F16 };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 2; b++)
        run_forward (&cases[i], fl[a], fl[b], 0, FALSE);
}

/* tables whose first id is not 0 (49408: Textual Inversion's new tokens), and
 * out += lookup, in every table/out dtype pair */
static void
test_forward_id_base (void)
{
  static const DlDType fl[] = { DL_DTYPE_F32, DL_DTYPE_F16 };
  static const int64_t bases[] = { 0, 3, 49408 };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 2; b++)
        for (guint k = 0; k < G_N_ELEMENTS (bases); k++)
          for (int acc = 0; acc < 2; acc++)
            if (bases[k] != 0 || acc)
              run_forward (&cases[i], fl[a], fl[b], bases[k], acc);
}

static void
run_backward (const Case *c, DlDType g_dt, gboolean accumulate, int64_t id_base)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  guint32 seed = (guint32)(c->B * 300 + c->T * 10 + c->C);
  g_autofree int32_t *ids = make_ids (c, seed);
  shift_ids (ids, c->B * c->T, id_base);
  int64_t n = c->B * c->T * c->C;
  g_autofree float *g = dl_test_random (n, seed + 1, -1, 1);
  ref_round_to_dtype (g, n, g_dt);
  g_autofree float *t0 = dl_test_random (c->V * c->C, seed + 2, -1, 1);
  g_autofree float *p0 = dl_test_random (c->P * c->C, seed + 3, -1, 1);
  int64_t st[2] = { c->V, c->C }, sp[2] = { c->P, c->C }, so[3] = { c->B, c->T, c->C };
  g_autoptr (DlTensor) tids = ids_tensor (c, ids);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dout", g_dt, 3, so, g);
  g_autoptr (DlTensor) tdt = dl_test_tensor ("dtable", DL_DTYPE_F32, 2, st, t0);
  g_autoptr (DlTensor) tdp = dl_test_tensor ("dpos", DL_DTYPE_F32, 2, sp, p0);
  if (id_base == 0)
    g_assert_true (dl_op_embedding_backward (rec, tdt, c->with_pos ? tdp : NULL, tids, tg, c->off, accumulate, &error));
  else
    g_assert_true (
      dl_op_embedding_backward_ex (rec, tdt, id_base, c->with_pos ? tdp : NULL, tids, tg, c->off, accumulate, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *dt = dl_test_download (tdt);
  g_autofree float *dp = dl_test_download (tdp);

  g_autofree float *wt = accumulate ? g_memdup2 (t0, c->V * c->C * sizeof (float)) : g_new0 (float, c->V * c->C);
  g_autofree float *wp = g_memdup2 (p0, c->P * c->C * sizeof (float));
  if (c->with_pos && !accumulate)
    memset (wp, 0, c->P * c->C * sizeof (float));
  ref_embedding_backward_ex (wt, id_base, c->with_pos ? wp : NULL, ids, g, c->B, c->T, c->C, c->V, c->off);
  g_autofree char *what = g_strdup_printf (
    "embedding backward %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " %s%s first id %" G_GINT64_FORMAT,
    c->B, c->T, c->C, dl_dtype_name (g_dt), accumulate ? " accumulate" : "", id_base);
  /* f32 sums of at most B*T terms of magnitude <= 1 against double */
  double atol = 1.2e-7 * (c->B * c->T + 2);
  dl_test_assert_close (what, dt, wt, c->V * c->C, atol, 1e-6);
  if (c->with_pos)
    dl_test_assert_close ("position backward", dp, wp, c->P * c->C, atol, 1e-6);

  /* exactly the in-order float sum: row by row, position by position */
  g_autofree float *exact = accumulate ? g_memdup2 (t0, c->V * c->C * sizeof (float)) : g_new0 (float, c->V * c->C);
  for (int64_t id = 0; id < c->V; id++)
    for (int64_t ch = 0; ch < c->C; ch++)
      {
        float s = 0;
        gboolean used = FALSE;
        for (int64_t q = 0; q < c->B * c->T; q++)
          if (ids[q] == id + id_base)
            {
              s += g[q * c->C + ch];
              used = TRUE;
            }
        if (used)
          exact[id * c->C + ch] += s;
      }
  g_autofree char *ewhat = g_strconcat (what, " (in-order float sum)", NULL);
  dl_test_assert_close (ewhat, dt, exact, c->V * c->C, 0, 0);

  /* the same bits again (a Textual Inversion row must not depend on scheduling) */
  if (!accumulate)
    {
      g_assert_true (dl_op_embedding_backward_ex (rec, tdt, id_base, NULL, tids, tg, c->off, FALSE, &error));
      dl_test_finish ();
      g_autofree float *again = dl_test_download (tdt);
      g_assert_cmpmem (again, c->V * c->C * sizeof (float), dt, c->V * c->C * sizeof (float));
    }
}

static void
test_backward (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int f16 = 0; f16 < 2; f16++)
      for (int acc = 0; acc < 2; acc++)
        run_backward (&cases[i], f16 ? DL_DTYPE_F16 : DL_DTYPE_F32, acc, 0);
}

static void
test_backward_id_base (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    for (int f16 = 0; f16 < 2; f16++)
      for (int acc = 0; acc < 2; acc++)
        {
          run_backward (&cases[i], f16 ? DL_DTYPE_F16 : DL_DTYPE_F32, acc, 3);
          run_backward (&cases[i], f16 ? DL_DTYPE_F16 : DL_DTYPE_F32, acc, 49408);
        }
}

/* ---- Textual Inversion: new tokens from a second, trained table ---- */

/* The frozen table (ids 0..V0-1, with positions) and then, accumulating, a small
 * f32 table of new tokens (ids V0..V0+V1-1): against the reference of the same
 * two steps, and, where nothing is rounded in between (f32 throughout), bit for
 * bit against one lookup in the concatenated table.  Backward: the new table's
 * gradient is exactly the concatenated table gradient's last rows. */
static void
run_textual_inversion (DlDType base_dt, DlDType out_dt, DlDType g_dt)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t B = 2, T = 11, C = 24, V0 = 40, V1 = 3, P = 11, n = B * T * C;
  int32_t ids[22] = { 0,  40, 5, 41, 42, 39, 43, 40, 7, 7, 2, /* 43: past the new table */
                      40, 40, 1, 42, -1, 3,  41, 0,  0, 0, 0 };
  g_autofree float *base = dl_test_random (V0 * C, 11, -1, 1);
  g_autofree float *extra = dl_test_random (V1 * C, 12, -1, 1);
  g_autofree float *pos = dl_test_random (P * C, 13, -1, 1);
  g_autofree float *g = dl_test_random (n, 14, -1, 1);
  ref_round_to_dtype (base, V0 * C, base_dt);
  ref_round_to_dtype (pos, P * C, base_dt);
  ref_round_to_dtype (g, n, g_dt);
  int64_t sb[2] = { V0, C }, se[2] = { V1, C }, sp[2] = { P, C }, so[3] = { B, T, C }, sc[2] = { V0 + V1, C };
  Case c = { B, T, C, V0, P, 0, TRUE };
  g_autoptr (DlTensor) tids = ids_tensor (&c, ids);
  g_autoptr (DlTensor) tbase = dl_test_tensor ("frozen table", base_dt, 2, sb, base);
  g_autoptr (DlTensor) textra = dl_test_tensor ("new tokens", DL_DTYPE_F32, 2, se, extra);
  g_autoptr (DlTensor) tpos = dl_test_tensor ("pos", base_dt, 2, sp, pos);
  g_autoptr (DlTensor) tout = dl_test_tensor ("out", out_dt, 3, so, NULL);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dout", g_dt, 3, so, g);
  g_autoptr (DlTensor) tdextra = dl_test_tensor ("dnew", DL_DTYPE_F32, 2, se, NULL);
  g_autoptr (DlTensor) tdcat = dl_test_tensor ("dcat", DL_DTYPE_F32, 2, sc, NULL);
  g_assert_true (dl_op_embedding_ex (rec, tout, tids, tbase, 0, tpos, 0, FALSE, &error));
  g_assert_true (dl_op_embedding_ex (rec, tout, tids, textra, V0, NULL, 0, TRUE, &error));
  g_assert_true (dl_op_embedding_backward_ex (rec, tdextra, V0, NULL, tids, tg, 0, FALSE, &error));
  g_assert_true (dl_op_embedding_backward_ex (rec, tdcat, 0, NULL, tids, tg, 0, FALSE, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (tout);
  g_autofree float *dextra = dl_test_download (tdextra);
  g_autofree float *dcat = dl_test_download (tdcat);

  g_autofree char *what = g_strdup_printf ("textual inversion %s table + f32 new tokens -> %s", dl_dtype_name (base_dt),
                                           dl_dtype_name (out_dt));
  g_autofree float *want = g_new (float, n);
  ref_embedding_forward_ex (want, ids, base, 0, pos, B, T, C, V0, 0, FALSE);
  ref_round_to_dtype (want, n, out_dt);
  ref_embedding_forward_ex (want, ids, extra, V0, NULL, B, T, C, V1, 0, TRUE);
  ref_round_to_dtype (want, n, out_dt);
  dl_test_assert_close (what, got, want, n, 0, 0);
  if (base_dt == DL_DTYPE_F32 && out_dt == DL_DTYPE_F32)
    {
      g_autofree float *cat = g_new (float, (V0 + V1) * C);
      memcpy (cat, base, V0 * C * sizeof (float));
      memcpy (cat + V0 * C, extra, V1 * C * sizeof (float));
      g_autofree float *one = g_new (float, n);
      ref_embedding_forward (one, ids, cat, pos, B, T, C, V0 + V1, 0);
      g_autofree char *w1 = g_strconcat (what, " (as one concatenated table)", NULL);
      dl_test_assert_close (w1, got, one, n, 0, 0);
    }

  g_autofree float *wd = g_new0 (float, V1 *C);
  ref_embedding_backward_ex (wd, V0, NULL, ids, g, B, T, C, V1, 0);
  g_autofree char *wb = g_strdup_printf ("textual inversion backward %s", dl_dtype_name (g_dt));
  dl_test_assert_close (wb, dextra, wd, V1 * C, 1.2e-7 * (B * T + 2), 1e-6);
  g_assert_cmpmem (dextra, V1 * C * sizeof (float), dcat + V0 * C, V1 * C * sizeof (float));
}

static void
test_textual_inversion (void)
{
  static const DlDType fl[] = { DL_DTYPE_F32, DL_DTYPE_F16 };
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++)
      run_textual_inversion (fl[a], fl[b], fl[(a + b) % 2]);
}

/* ---- tables larger than one binding ---- */

/* A recorder whose bindings may span only `bytes`: the ops must split. */
static DlRecorder *
small_binding_recorder (guint64 bytes)
{
  g_autoptr (GError) error = NULL;
  DlRecorder *rec = dl_recorder_new (dl_test_device (), &error);
  g_assert_no_error (error);
  dl_recorder_set_max_binding_range (rec, bytes);
  g_assert_cmpuint (dl_recorder_get_max_binding_range (rec), ==, bytes);
  return rec;
}

/* A [V, C] table starting 3 elements into its memory (not at a binding
 * boundary), so that every range of rows starts inside an aligned block. */
static DlTensor *
offset_table (const char *name, DlDType dt, int64_t V, int64_t C, const float *data)
{
  g_autoptr (GError) error = NULL;
  int64_t total = V * C + 3;
  g_autofree float *all = g_new0 (float, total);
  if (data)
    memcpy (all + 3, data, V * C * sizeof (float));
  g_autoptr (DlTensor) mem = dl_test_tensor (name, dt, 1, &total, all);
  int64_t shape[2] = { V, C };
  DlTensor *t = dl_tensor_view (mem, name, 3, 2, shape, &error);
  g_assert_no_error (error);
  return t;
}

static void
finish (DlRecorder *rec)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_recorder_finish (rec, &error));
  g_assert_no_error (error);
}

static void
run_split (DlDType table_dt, DlDType out_dt, int64_t id_base, gboolean accumulate)
{
  /* 768 bytes a binding: 16 rows of 8 f32 (32 of f16) per range, the 50 rows in 4 (2) */
  g_autoptr (DlRecorder) split = small_binding_recorder (768);
  DlRecorder *whole = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  Case c = { 2, 7, 8, 50, 9, 2, TRUE };
  int64_t n = c.B * c.T * c.C, nt = c.V * c.C, so[3] = { c.B, c.T, c.C }, sp[2] = { c.P, c.C };
  g_autofree int32_t *ids = make_ids (&c, 77);
  shift_ids (ids, c.B * c.T, id_base);
  ids[4] = (int32_t)(id_base + 17); /* in the second range of rows */
  ids[5] = (int32_t)(id_base + 33); /* in the third (second for f16) */
  ids[6] = (int32_t)(id_base + 48);
  ids[7] = ids[5];
  g_autofree float *table = dl_test_random (nt, 78, -1, 1);
  g_autofree float *pos = dl_test_random (c.P * c.C, 79, -1, 1);
  g_autofree float *out0 = dl_test_random (n, 80, -1, 1);
  g_autofree float *g = dl_test_random (n, 81, -1, 1);
  g_autofree float *dt0 = dl_test_random (nt, 82, -1, 1);
  g_autoptr (DlTensor) tids = ids_tensor (&c, ids);
  g_autoptr (DlTensor) ttab = offset_table ("table", table_dt, c.V, c.C, table);
  g_autoptr (DlTensor) tpos = dl_test_tensor ("pos", table_dt, 2, sp, pos);
  g_autoptr (DlTensor) out_whole = dl_test_tensor ("out", out_dt, 3, so, out0);
  g_autoptr (DlTensor) out_split = dl_test_tensor ("out split", out_dt, 3, so, out0);
  g_autoptr (DlTensor) tg = dl_test_tensor ("dout", out_dt, 3, so, g);
  g_autoptr (DlTensor) dt_whole = offset_table ("dtable", DL_DTYPE_F32, c.V, c.C, dt0);
  g_autoptr (DlTensor) dt_split = offset_table ("dtable split", DL_DTYPE_F32, c.V, c.C, dt0);

  g_assert_true (dl_op_embedding_ex (whole, out_whole, tids, ttab, id_base, tpos, c.off, accumulate, &error));
  g_assert_true (dl_op_embedding_backward_ex (whole, dt_whole, id_base, NULL, tids, tg, c.off, accumulate, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  guint64 before = dl_recorder_get_dispatch_count (split);
  g_assert_true (dl_op_embedding_ex (split, out_split, tids, ttab, id_base, tpos, c.off, accumulate, &error));
  g_assert_no_error (error);
  guint64 fwd = dl_recorder_get_dispatch_count (split) - before;
  g_assert_true (dl_op_embedding_backward_ex (split, dt_split, id_base, NULL, tids, tg, c.off, accumulate, &error));
  g_assert_no_error (error);
  finish (split);
  g_assert_cmpuint (fwd, ==, table_dt == DL_DTYPE_F32 ? 4 : 2);
  g_assert_cmpuint (dl_recorder_get_dispatch_count (split) - before - fwd, >=, 4); /* (a fill and) 4 ranges */

  g_autofree float *ow = dl_test_download (out_whole);
  g_autofree float *os = dl_test_download (out_split);
  g_autofree float *dw = dl_test_download (dt_whole);
  g_autofree float *ds = dl_test_download (dt_split);
  g_assert_cmpmem (os, n * sizeof (float), ow, n * sizeof (float));
  g_assert_cmpmem (ds, nt * sizeof (float), dw, nt * sizeof (float));
  /* and both are right */
  ref_round_to_dtype (table, nt, table_dt);
  ref_round_to_dtype (pos, c.P * c.C, table_dt);
  ref_round_to_dtype (out0, n, out_dt);
  ref_embedding_forward_ex (out0, ids, table, id_base, pos, c.B, c.T, c.C, c.V, c.off, accumulate);
  ref_round_to_dtype (out0, n, out_dt);
  g_autofree char *what =
    g_strdup_printf ("split embedding %s->%s first id %" G_GINT64_FORMAT "%s", dl_dtype_name (table_dt),
                     dl_dtype_name (out_dt), id_base, accumulate ? " accumulate" : "");
  dl_test_assert_close (what, os, out0, n, 0, 0);
  ref_round_to_dtype (g, n, out_dt);
  if (!accumulate)
    memset (dt0, 0, nt * sizeof (float));
  ref_embedding_backward_ex (dt0, id_base, NULL, ids, g, c.B, c.T, c.C, c.V, c.off);
  dl_test_assert_close ("split embedding backward", ds, dt0, nt, 1.2e-7 * (c.B * c.T + 2), 1e-6);
}

static void
test_split (void)
{
  static const DlDType fl[] = { DL_DTYPE_F32, DL_DTYPE_F16 };
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++)
      for (int acc = 0; acc < 2; acc++)
        {
          run_split (fl[a], fl[b], 0, acc);
          run_split (fl[a], fl[b], 1000, acc);
        }
}

/* The lowered limit holds for every op, and a row larger than one binding is
 * refused with a clear error. */
static void
test_split_limits (void)
{
  g_autoptr (DlRecorder) rec = small_binding_recorder (2 * DL_BINDING_ALIGN);
  g_autoptr (GError) error = NULL;
  int64_t si[1] = { 4 }, st[2] = { 4, 200 }, so[2] = { 4, 200 };
  g_autoptr (DlTensor) ids = dl_test_tensor ("ids", DL_DTYPE_I32, 1, si, NULL);
  g_autoptr (DlTensor) tab = dl_test_tensor ("wide table", DL_DTYPE_F32, 2, st, NULL);
  g_autoptr (DlTensor) out = dl_test_tensor ("out", DL_DTYPE_F32, 2, so, NULL);
  g_assert_false (dl_op_add (rec, out, out, out, &error)); /* 3200 bytes in one binding */
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "maxStorageBufferRange"));
  g_clear_error (&error);
  g_assert_false (dl_op_embedding_ex (rec, out, ids, tab, 0, NULL, 0, FALSE, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "wide table"));
  g_clear_error (&error);
  g_assert_false (dl_op_embedding_backward_ex (rec, tab, 0, NULL, ids, out, 0, TRUE, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  dl_recorder_set_max_binding_range (rec, 0);
  g_assert_cmpuint (dl_recorder_get_max_binding_range (rec), ==,
                    dl_device_get_info (dl_test_device ())->max_storage_buffer_range);
}

/* ---- timestep embedding ---- */

static void
run_timestep (const float *ts, int64_t B, int64_t dim, gboolean flip, float shift, float scale, DlDType t_dt,
              DlDType out_dt)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTensor) tt = dl_test_tensor ("t", t_dt, 1, &B, ts);
  int64_t so[2] = { B, dim };
  g_autoptr (DlTensor) to = dl_test_tensor ("emb", out_dt, 2, so, NULL);
  DlTimestepEmbeddingParams prm = { .flip_sin_to_cos = flip, .freq_shift = shift, .scale = scale, .max_period = 10000 };
  g_assert_true (dl_op_timestep_embedding (rec, to, tt, &prm, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (to);
  g_autofree float *want = g_new (float, B *dim);
  g_autofree float *tr = g_memdup2 (ts, B * sizeof (float));
  ref_round_to_dtype (tr, B, t_dt);
  ref_timestep_embedding (want, tr, B, dim, flip, shift, scale, 10000);
  ref_round_to_dtype (want, B * dim, out_dt);
  double tmax = 0;
  for (int64_t b = 0; b < B; b++)
    tmax = MAX (tmax, fabs (tr[b] * scale));
  g_autofree char *what = g_strdup_printf ("timestep embedding B%" G_GINT64_FORMAT " dim %" G_GINT64_FORMAT
                                           " flip %d shift %g scale %g %s->%s",
                                           B, dim, flip, shift, scale, dl_dtype_name (t_dt), dl_dtype_name (out_dt));
  /* The argument t*f carries ~1 ulp of exp's own error on each side (ours and
   * libm's), i.e. 6e-8 * |t| radians, plus ~1e-7 from sin/cos themselves. */
  double atol = 2e-7 + 1.2e-7 * tmax + (out_dt == DL_DTYPE_F16 ? 4.9e-4 : 0);
  dl_test_assert_close (what, got, want, B * dim, atol, 0);
}

static void
test_timestep (void)
{
  static const float ts[] = { 0, 1, 50, 999, 654.5f, 1000, 0.25f, 37 };
  run_timestep (ts, 8, 320, TRUE, 0, 1, DL_DTYPE_F32, DL_DTYPE_F32);   /* SD 1.5 */
  run_timestep (ts, 8, 320, FALSE, 1, 1, DL_DTYPE_F32, DL_DTYPE_F32);  /* diffusers default order and shift */
  run_timestep (ts, 6, 32, TRUE, 0, 1, DL_DTYPE_I32, DL_DTYPE_F32);    /* the tiny UNet, integer timesteps */
  run_timestep (ts, 5, 7, TRUE, 0, 1, DL_DTYPE_F32, DL_DTYPE_F32);     /* odd width: zero pad column */
  run_timestep (ts, 2, 2, FALSE, 0, 2.5f, DL_DTYPE_F32, DL_DTYPE_F16); /* one frequency, scaled, f16 out */
  run_timestep (ts + 3, 1, 1280, TRUE, 0, 1, DL_DTYPE_I32, DL_DTYPE_F16);
}

/* ---- golden ---- */

static void
test_golden_text_embeddings (gconstpointer dir)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autofree char *cpath = g_build_filename (dir, "text_encoder.safetensors", NULL);
  g_autofree char *wpath = g_build_filename (dir, "tiny-sd15-diffusers", "text_encoder", "model.safetensors", NULL);
  g_autoptr (DlSafetensors) cs = dl_safetensors_open (cpath, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) ws = dl_safetensors_open (wpath, &error);
  g_assert_no_error (error);
  if (!cs || !ws)
    return;
  int64_t n_ids = 0, n_h0 = 0;
  g_autofree float *idsf = dl_safetensors_read_f32 (cs, "input_ids", &n_ids, &error);
  g_assert_no_error (error);
  g_autofree float *h0 = dl_safetensors_read_f32 (cs, "hidden_states.0", &n_h0, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) table =
    dl_safetensors_upload (ws, "text_model.embeddings.token_embedding.weight", dl_test_device (), DL_DTYPE_F32, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) pos = dl_safetensors_upload (ws, "text_model.embeddings.position_embedding.weight",
                                                    dl_test_device (), DL_DTYPE_F32, &error);
  g_assert_no_error (error);
  if (!idsf || !h0 || !table || !pos)
    return;
  int64_t T = 77, B = n_ids / T, C = table->shape[1];
  g_assert_cmpint (n_h0, ==, B * T * C);
  g_autofree int32_t *ids = g_new (int32_t, n_ids);
  for (int64_t i = 0; i < n_ids; i++)
    ids[i] = (int32_t)idsf[i];
  Case c = { B, T, C, 0, 0, 0, TRUE };
  g_autoptr (DlTensor) tids = ids_tensor (&c, ids);
  int64_t so[3] = { B, T, C };
  g_autoptr (DlTensor) out = dl_test_tensor ("h0", DL_DTYPE_F32, 3, so, NULL);
  g_assert_true (dl_op_embedding (rec, out, tids, table, pos, 0, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (out);
  /* PyTorch adds the two float rows once, as we do: bit for bit */
  dl_test_assert_close ("golden hidden_states.0", got, h0, n_h0, 0, 0);
}

static void
test_golden_time_proj (gconstpointer dir)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, "unet.safetensors", NULL);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  int64_t B = 0, n = 0;
  g_autofree float *ts = dl_safetensors_read_f32 (st, "timesteps", &B, &error);
  g_assert_no_error (error);
  g_autofree float *want = dl_safetensors_read_f32 (st, "act.time_proj", &n, &error);
  g_assert_no_error (error);
  if (!ts || !want)
    return;
  int64_t dim = n / B;
  g_autoptr (DlTensor) tt = dl_test_tensor ("t", DL_DTYPE_I32, 1, &B, ts);
  int64_t so[2] = { B, dim };
  g_autoptr (DlTensor) to = dl_test_tensor ("emb", DL_DTYPE_F32, 2, so, NULL);
  DlTimestepEmbeddingParams prm = DL_TIMESTEP_EMBEDDING_SD;
  g_assert_true (dl_op_timestep_embedding (rec, to, tt, &prm, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *got = dl_test_download (to);
  g_test_message ("timesteps %g %g, dim %" G_GINT64_FORMAT, ts[0], B > 1 ? ts[1] : 0, dim);
  /* measured 6e-8 (one ulp of a value near 1); model activations elsewhere get rtol 1e-4 */
  dl_test_assert_close ("golden time_proj", got, want, n, 1e-6, 0);
  /* and our own reference mirrors PyTorch's float32 steps more closely */
  g_autofree float *ref = g_new (float, n);
  ref_timestep_embedding (ref, ts, B, dim, TRUE, 0, 1, 10000);
  dl_test_assert_close ("reference time_proj vs golden", ref, want, n, 2e-6, 0);
}

static void
test_errors (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  int64_t si[2] = { 2, 4 }, st[2] = { 10, 8 }, sp[2] = { 5, 8 }, so[3] = { 2, 4, 8 }, bad[3] = { 2, 5, 8 };
  g_autoptr (DlTensor) ids = dl_test_tensor ("ids", DL_DTYPE_I32, 2, si, NULL);
  g_autoptr (DlTensor) fids = dl_test_tensor ("fids", DL_DTYPE_F32, 2, si, NULL);
  g_autoptr (DlTensor) tab = dl_test_tensor ("table", DL_DTYPE_F32, 2, st, NULL);
  g_autoptr (DlTensor) pos = dl_test_tensor ("pos", DL_DTYPE_F32, 2, sp, NULL);
  g_autoptr (DlTensor) hpos = dl_test_tensor ("hpos", DL_DTYPE_F16, 2, sp, NULL);
  g_autoptr (DlTensor) out = dl_test_tensor ("out", DL_DTYPE_F32, 3, so, NULL);
  g_autoptr (DlTensor) wrong = dl_test_tensor ("wrong", DL_DTYPE_F32, 3, bad, NULL);
  g_assert_false (dl_op_embedding (rec, out, fids, tab, pos, 0, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_clear_error (&error);
  g_assert_false (dl_op_embedding (rec, wrong, ids, tab, pos, 0, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_embedding (rec, out, ids, tab, pos, 2, &error)); /* positions 2..5 of 5 */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_embedding (rec, out, ids, tab, hpos, 0, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_embedding_backward (rec, out, NULL, ids, out, 0, FALSE, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* ids are i32: a table cannot start below 0 or past 2^31 - 1 */
  g_assert_false (dl_op_embedding_ex (rec, out, ids, tab, -1, pos, 0, FALSE, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "first id -1"));
  g_clear_error (&error);
  g_assert_false (dl_op_embedding_ex (rec, out, ids, tab, (int64_t)G_MAXINT32 + 1, NULL, 0, TRUE, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_embedding_backward_ex (rec, tab, -5, NULL, ids, out, 0, TRUE, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  int64_t two = 2;
  g_autoptr (DlTensor) t2 = dl_test_tensor ("t", DL_DTYPE_F32, 1, &two, NULL);
  int64_t se[2] = { 2, 2 };
  g_autoptr (DlTensor) e2 = dl_test_tensor ("e", DL_DTYPE_F32, 2, se, NULL);
  DlTimestepEmbeddingParams prm = { .freq_shift = 1, .scale = 1, .max_period = 10000 };
  g_assert_false (dl_op_timestep_embedding (rec, e2, t2, &prm, &error)); /* 1 frequency, shift 1 */
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_op_timestep_embedding (rec, out, t2, &prm, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

static void
skip_no_golden (void)
{
  g_test_skip ("golden data not found");
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/ops/embedding/reference-gradient", test_reference_gradient);
  dl_test_add ("/ops/embedding/forward", test_forward);
  dl_test_add ("/ops/embedding/backward", test_backward);
  dl_test_add ("/ops/embedding/forward-id-base", test_forward_id_base);
  dl_test_add ("/ops/embedding/backward-id-base", test_backward_id_base);
  dl_test_add ("/ops/embedding/textual-inversion", test_textual_inversion);
  dl_test_add ("/ops/embedding/split", test_split);
  dl_test_add ("/ops/embedding/split-limits", test_split_limits);
  dl_test_add ("/ops/embedding/timestep", test_timestep);
  dl_test_add ("/ops/embedding/errors", test_errors);
  g_autofree char *golden = dl_test_golden_path ("text_encoder.safetensors");
  g_autofree char *dir = golden ? g_path_get_dirname (golden) : NULL;
  if (dir)
    {
      dl_test_add_data ("/ops/embedding/golden-text-embeddings", dir, test_golden_text_embeddings);
      dl_test_add_data ("/ops/embedding/golden-time-proj", dir, test_golden_time_proj);
    }
  else
    {
      dl_test_add ("/ops/embedding/golden-text-embeddings", skip_no_golden);
      dl_test_add ("/ops/embedding/golden-time-proj", skip_no_golden);
    }
  return dl_test_run ();
}
