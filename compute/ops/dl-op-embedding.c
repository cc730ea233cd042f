/* Host side of embedding.comp, embedding_bwd.comp, position_bwd.comp and
 * timestep.comp. */
#include "dl-op-embedding.h"

#include "dl-op-eltwise.h"
#include "dl-op-util.h"

#include <math.h>

typedef struct
{
  uint32_t n, T, C;
  uint32_t first_id, rows;
  uint32_t table_first, table_rows;
  uint32_t off_ids, off_table, off_pos, off_o;
  uint32_t pos_offset, has_pos, strays, accumulate;
} EmbedPush;

typedef struct
{
  uint32_t P, C;
  uint32_t first_id, rows;
  uint32_t off_ids, off_g, off_table;
} EmbedBwdPush;

typedef struct
{
  uint32_t B, T, C;
  uint32_t off_g, off_pos;
  uint32_t pos_offset;
  uint32_t accumulate;
} PosBwdPush;

typedef struct
{
  uint32_t B, dim, half;
  uint32_t off_t, off_o;
  float neg_log_period, denom, scale;
  uint32_t flip;
} TimestepPush;

static gboolean
arg_error (GError **error, const char *op, DlTensor *t, const char *why)
{
  g_autofree char *d = dl_tensor_describe (t);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %s: %s", op, d, why);
  return FALSE;
}

/* ids [B, T] or [T] */
static gboolean
ids_dims (const char *op, DlTensor *ids, int64_t *B, int64_t *T, GError **error)
{
  if (!dl_op_check_dtype (op, ids, DL_DT_BIT (DL_DTYPE_I32), error))
    return FALSE;
  if (ids->ndim != 1 && ids->ndim != 2)
    return arg_error (error, op, ids, "ids must be [B, T] or [T]");
  *B = ids->ndim == 2 ? ids->shape[0] : 1;
  *T = ids->shape[ids->ndim - 1];
  return TRUE;
}

/* x must be [B, T, C] (or [T, C] when ids are 1-D) */
static gboolean
check_tokens (const char *op, DlTensor *x, DlTensor *ids, int64_t B, int64_t T, int64_t C, GError **error)
{
  gboolean ok = x->ndim == ids->ndim + 1 && x->shape[x->ndim - 1] == C && x->shape[x->ndim - 2] == T &&
                (x->ndim == 2 || x->shape[0] == B);
  if (!ok)
    {
      g_autofree char *s = g_strdup_printf (
        "expected [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] to match the ids", B, T, C);
      return arg_error (error, op, x, s);
    }
  return dl_op_check_fits_u32 (op, x, error);
}

static gboolean
check_pos (const char *op, DlTensor *pos, int64_t C, int64_t T, int64_t pos_offset, GError **error)
{
  if (pos->ndim != 2 || pos->shape[1] != C)
    return arg_error (error, op, pos, "position table must be [positions, channels]");
  if (pos_offset < 0 || pos_offset + T > pos->shape[0])
    {
      g_autofree char *s = g_strdup_printf ("positions %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT " do not exist",
                                            pos_offset, pos_offset + T - 1);
      return arg_error (error, op, pos, s);
    }
  return TRUE;
}

/* Ids are i32: the table's first id must be one, and an int32 a shader can hold. */
static gboolean
check_id_base (const char *op, DlTensor *table, int64_t id_base, GError **error)
{
  if (id_base >= 0 && id_base <= G_MAXINT32)
    return TRUE;
  g_autofree char *s = g_strdup_printf ("first id %" G_GINT64_FORMAT " is outside 0..%d", id_base, G_MAXINT32);
  return arg_error (error, op, table, s);
}

/* Rows of a table starting at id_base that an i32 id can reach (so that the
 * shaders' first id + rows stays below 2^32). */
static int64_t
reachable_rows (int64_t V, int64_t id_base)
{
  return MIN (V, (int64_t)G_MAXINT32 + 1 - id_base);
}

/* Rows of `t` per dispatch: one binding's worth, at least one row. */
static gboolean
rows_per_binding (const char *op, DlRecorder *rec, DlTensor *t, int64_t *rows, GError **error)
{
  *rows = dl_op_max_binding_rows (rec, t);
  if (*rows > 0)
    return TRUE;
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: one row of %s is larger than one binding", op,
               t->name ? t->name : "the table");
  return FALSE;
}

gboolean
dl_op_embedding_ex (DlRecorder *rec, DlTensor *out, DlTensor *ids, DlTensor *table, int64_t id_base, DlTensor *pos,
                    int64_t pos_offset, gboolean accumulate, GError **error)
{
  g_return_val_if_fail (rec != NULL && out != NULL && ids != NULL && table != NULL, FALSE);
  const char *op = "embedding";
  guint fl = DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16);
  int64_t B, T;
  if (!ids_dims (op, ids, &B, &T, error) || !dl_op_check_dtype (op, table, fl, error) ||
      !dl_op_check_dtype (op, out, fl, error) || !dl_op_check_fits_u32 (op, table, error))
    return FALSE;
  if (table->ndim != 2)
    return arg_error (error, op, table, "table must be [vocabulary, channels]");
  int64_t V = table->shape[0], C = table->shape[1];
  if (!check_id_base (op, table, id_base, error) || !check_tokens (op, out, ids, B, T, C, error) ||
      (pos && !check_pos (op, pos, C, T, pos_offset, error)))
    return FALSE;
  if (pos && pos->dtype != table->dtype)
    return arg_error (error, op, pos, "the position table must have the token table's dtype");
  int64_t n = dl_tensor_numel (out);
  if (n == 0)
    return TRUE;
  DlPipeline *p =
    dl_op_pipeline (rec, error, "embedding_%s_%s", dl_dtype_name (table->dtype), dl_dtype_name (out->dtype));
  int64_t step;
  if (!p || !rows_per_binding (op, rec, table, &step, error))
    return FALSE;
  gsize et = dl_dtype_size (table->dtype);
  int64_t reach = reachable_rows (V, id_base);
  /* one dispatch per binding-sized range of rows (an empty table: one, for the strays) */
  for (int64_t r0 = 0; r0 == 0 || r0 < reach; r0 += step)
    {
      int64_t rows = MIN (step, reach - r0);
      DlBinding b[4] = { dl_op_bind (rec, ids, FALSE), dl_op_bind_rows (rec, table, r0, rows, FALSE) };
      b[2] = pos ? dl_op_bind (rec, pos, FALSE) : b[1]; /* unused without positions */
      b[3] = dl_op_bind (rec, out, TRUE);
      EmbedPush pc = {
        .n = (uint32_t)n,
        .T = (uint32_t)T,
        .C = (uint32_t)C,
        .first_id = (uint32_t)(id_base + r0),
        .rows = (uint32_t)rows,
        .table_first = (uint32_t)id_base,
        .table_rows = (uint32_t)reach,
        .off_ids = dl_binding_shader_offset (&b[0], 4),
        .off_table = dl_binding_shader_offset (&b[1], et),
        .off_pos = dl_binding_shader_offset (&b[2], et),
        .off_o = dl_binding_shader_offset (&b[3], dl_dtype_size (out->dtype)),
        .pos_offset = (uint32_t)(pos ? pos_offset : 0),
        .has_pos = pos != NULL,
        .strays = r0 == 0,
        .accumulate = accumulate != FALSE,
      };
      if (!dl_recorder_dispatch (rec, p, b, 4, &pc, sizeof pc, dl_op_groups (rec, n, 256), 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_op_embedding (DlRecorder *rec, DlTensor *out, DlTensor *ids, DlTensor *table, DlTensor *pos, int64_t pos_offset,
                 GError **error)
{
  return dl_op_embedding_ex (rec, out, ids, table, 0, pos, pos_offset, FALSE, error);
}

/* dtable rows [0, V) += the gradients of ids id_base .. id_base + V - 1, one
 * dispatch per binding-sized range of rows: each row keeps its one writer and
 * its sum order, so the split changes no bit. */
static gboolean
table_backward (DlRecorder *rec, DlTensor *dtable, int64_t id_base, DlTensor *ids, DlTensor *dout, int64_t P, int64_t C,
                GError **error)
{
  const char *op = "embedding_backward";
  int64_t reach = reachable_rows (dtable->shape[0], id_base), step;
  DlPipeline *p = dl_op_pipeline (rec, error, "embedding_bwd_%s", dl_dtype_name (dout->dtype));
  if (!p || !rows_per_binding (op, rec, dtable, &step, error))
    return FALSE;
  for (int64_t r0 = 0; r0 < reach; r0 += step)
    {
      int64_t rows = MIN (step, reach - r0);
      DlBinding b[3] = { dl_op_bind (rec, ids, FALSE), dl_op_bind (rec, dout, FALSE),
                         dl_op_bind_rows (rec, dtable, r0, rows, TRUE) };
      EmbedBwdPush pc = {
        .P = (uint32_t)P,
        .C = (uint32_t)C,
        .first_id = (uint32_t)(id_base + r0),
        .rows = (uint32_t)rows,
        .off_ids = dl_binding_shader_offset (&b[0], 4),
        .off_g = dl_binding_shader_offset (&b[1], dl_dtype_size (dout->dtype)),
        .off_table = dl_binding_shader_offset (&b[2], 4),
      };
      /* one workgroup per position: a few per core on a CPU device is plenty */
      guint32 groups = (guint32)MIN (P, 65535);
      if (!dl_recorder_dispatch (rec, p, b, 3, &pc, sizeof pc, groups, 1, 1, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_op_embedding_backward_ex (DlRecorder *rec, DlTensor *dtable, int64_t id_base, DlTensor *dpos, DlTensor *ids,
                             DlTensor *dout, int64_t pos_offset, gboolean accumulate, GError **error)
{
  g_return_val_if_fail (rec != NULL && ids != NULL && dout != NULL, FALSE);
  const char *op = "embedding_backward";
  guint fl = DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16);
  int64_t B, T;
  if (!ids_dims (op, ids, &B, &T, error) || !dl_op_check_dtype (op, dout, fl, error))
    return FALSE;
  if (dout->ndim < 1)
    return arg_error (error, op, dout, "expected [B, T, C]");
  int64_t C = dout->shape[dout->ndim - 1];
  if (!check_tokens (op, dout, ids, B, T, C, error))
    return FALSE;
  gsize eg = dl_dtype_size (dout->dtype);
  if (dtable)
    {
      if (!dl_op_check_dtype (op, dtable, DL_DT_BIT (DL_DTYPE_F32), error) || !dl_op_check_fits_u32 (op, dtable, error))
        return FALSE;
      if (dtable->ndim != 2 || dtable->shape[1] != C)
        return arg_error (error, op, dtable, "table gradient must be [vocabulary, channels]");
      if (!check_id_base (op, dtable, id_base, error))
        return FALSE;
      if (!accumulate && !dl_op_fill (rec, dtable, 0.0, error))
        return FALSE;
      int64_t P = B * T;
      if (P > 0 && C > 0 && !table_backward (rec, dtable, id_base, ids, dout, P, C, error))
        return FALSE;
    }
  if (dpos)
    {
      if (!dl_op_check_dtype (op, dpos, DL_DT_BIT (DL_DTYPE_F32), error) ||
          !check_pos (op, dpos, C, T, pos_offset, error))
        return FALSE;
      if (!accumulate && (pos_offset > 0 || pos_offset + T < dpos->shape[0]) && !dl_op_fill (rec, dpos, 0.0, error))
        return FALSE;
      if (T > 0 && C > 0)
        {
          DlPipeline *p = dl_op_pipeline (rec, error, "position_bwd_%s", dl_dtype_name (dout->dtype));
          if (!p)
            return FALSE;
          DlBinding b[2] = { dl_op_bind (rec, dout, FALSE), dl_op_bind (rec, dpos, TRUE) };
          PosBwdPush pc = {
            .B = (uint32_t)B,
            .T = (uint32_t)T,
            .C = (uint32_t)C,
            .off_g = dl_binding_shader_offset (&b[0], eg),
            .off_pos = dl_binding_shader_offset (&b[1], 4),
            .pos_offset = (uint32_t)pos_offset,
            .accumulate = accumulate,
          };
          if (!dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, T * C, 256), 1, 1, error))
            return FALSE;
        }
    }
  return TRUE;
}

gboolean
dl_op_embedding_backward (DlRecorder *rec, DlTensor *dtable, DlTensor *dpos, DlTensor *ids, DlTensor *dout,
                          int64_t pos_offset, gboolean accumulate, GError **error)
{
  return dl_op_embedding_backward_ex (rec, dtable, 0, dpos, ids, dout, pos_offset, accumulate, error);
}

gboolean
dl_op_timestep_embedding (DlRecorder *rec, DlTensor *out, DlTensor *timesteps, const DlTimestepEmbeddingParams *params,
                          GError **error)
{
  g_return_val_if_fail (rec != NULL && out != NULL && timesteps != NULL && params != NULL, FALSE);
  const char *op = "timestep_embedding";
  if (!dl_op_check_dtype (op, timesteps, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_I32), error) ||
      !dl_op_check_dtype (op, out, DL_DT_BIT (DL_DTYPE_F32) | DL_DT_BIT (DL_DTYPE_F16), error) ||
      !dl_op_check_fits_u32 (op, out, error))
    return FALSE;
  int64_t B = dl_tensor_numel (timesteps);
  if (timesteps->ndim > 1)
    return arg_error (error, op, timesteps, "timesteps must be [B]");
  if (out->ndim != 2 || out->shape[0] != B)
    return arg_error (error, op, out, "expected [B, dim] with B timesteps");
  int64_t dim = out->shape[1], half = dim / 2;
  double denom = (double)half - params->freq_shift;
  if (half > 0 && !(denom > 0))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "%s: frequency shift %g leaves no positive denominator for %" G_GINT64_FORMAT " frequencies", op,
                   params->freq_shift, half);
      return FALSE;
    }
  if (!(params->max_period > 0) || !isfinite (params->scale))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: max period %g / scale %g are not usable", op,
                   params->max_period, params->scale);
      return FALSE;
    }
  int64_t n = B * dim;
  if (n == 0)
    return TRUE;
  DlPipeline *p =
    dl_op_pipeline (rec, error, "timestep_%s_%s", dl_dtype_name (timesteps->dtype), dl_dtype_name (out->dtype));
  if (!p)
    return FALSE;
  DlBinding b[2] = { dl_op_bind (rec, timesteps, FALSE), dl_op_bind (rec, out, TRUE) };
  TimestepPush pc = {
    .B = (uint32_t)B,
    .dim = (uint32_t)dim,
    .half = (uint32_t)half,
    .off_t = dl_binding_shader_offset (&b[0], 4),
    .off_o = dl_binding_shader_offset (&b[1], dl_dtype_size (out->dtype)),
    /* the Python doubles become float32 scalars, as in PyTorch */
    .neg_log_period = (float)-log (params->max_period),
    .denom = (float)denom,
    .scale = params->scale,
    .flip = params->flip_sin_to_cos,
  };
  return dl_recorder_dispatch (rec, p, b, 2, &pc, sizeof pc, dl_op_groups (rec, n, 256), 1, 1, error);
}
