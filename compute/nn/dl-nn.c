/* dl-nn.c: see dl-nn.h.  Each op: check, compute, and if a gradient must flow,
 * push its backward with exactly what that backward reads. */
#include "dl-config.h"

#include "nn/dl-nn.h"

#include <math.h>

#include "dl-error.h"
#include "ops/dl-op-conv2d.h"
#include "ops/dl-op-linear.h"
#include "ops/dl-op-norm.h"
#include "ops/dl-op-resample.h"
#include "ops/dl-ops.h"

/* What a backward reads is kept in a struct of the op's own (FooSaved, made by
 * foo_saved_new): tensors held by reference, NULL where the op had none, and
 * the scalars it ran with.  The tape releases it with foo_saved_free once the
 * backward has run (or with the tape). */

static DlTensor *
keep (DlTensor *t)
{
  return t ? dl_tensor_ref (t) : NULL;
}

static DlTensor *
new_tensor (DlTape *tape, const char *name, DlDType dtype, int ndim, const int64_t *shape, GError **error)
{
  return dl_tape_tensor (tape, name, dtype, ndim, shape, error);
}

static DlTensor *
new_like (DlTape *tape, const char *name, const DlTensor *like, GError **error)
{
  return dl_tape_tensor_like (tape, name, like, error);
}

/* A fresh tensor for an input's gradient that the op overwrites, or NULL. */
static gboolean
grad_input (DlTape *tape, DlTensor *t, DlTensor **out, GError **error)
{
  *out = NULL;
  if (!t || !dl_tape_needs_grad (tape, t))
    return TRUE;
  *out = new_like (tape, "dx", t, error);
  return *out != NULL;
}

static gboolean
give_grad (DlTape *tape, DlTensor *t, DlTensor *g, GError **error)
{
  if (!g)
    return TRUE;
  gboolean ok = dl_tape_add_grad (tape, t, g, error);
  dl_tensor_unref (g);
  return ok;
}

#define REC(tape) dl_tape_get_recorder (tape)

/* The backward of an op with an input x and two parameters a, b (weight and
 * bias, gamma and beta): gradient tensors are prepared, `run` computes them
 * from what the op saved (adding into the parameter ones), and they are handed
 * on. */
typedef gboolean (*ThreeGradFunc) (DlTape *tape, gconstpointer saved, DlTensor *dx, DlTensor *da, DlTensor *db,
                                   DlTensor *dy, GError **error);

static gboolean
three_grad_backward (DlTape *tape, DlTensor *x, DlTensor *a, DlTensor *b, gconstpointer saved, DlTensor *dy,
                     ThreeGradFunc run, GError **error)
{
  DlTensor *dx = NULL, *da = NULL, *db = NULL;
  gboolean ok = grad_input (tape, x, &dx, error) && dl_tape_grad_begin (tape, a, &da, error) &&
                dl_tape_grad_begin (tape, b, &db, error) && run (tape, saved, dx, da, db, dy, error);
  ok = give_grad (tape, x, dx, ok ? error : NULL) && ok;
  ok = dl_tape_grad_finish (tape, a, da, ok ? error : NULL) && ok;
  ok = dl_tape_grad_finish (tape, b, db, ok ? error : NULL) && ok;
  return ok;
}

/* ---- linear ---- */

typedef struct
{
  DlTensor *x, *w, *b; /* b may be NULL */
} LinearSaved;

static LinearSaved *
linear_saved_new (DlTensor *x, DlTensor *w, DlTensor *b)
{
  LinearSaved *s = g_new0 (LinearSaved, 1);
  s->x = keep (x);
  s->w = keep (w);
  s->b = keep (b);
  return s;
}

static void
linear_saved_free (gpointer p)
{
  LinearSaved *s = p;
  dl_tensor_unref (s->x);
  dl_tensor_unref (s->w);
  dl_tensor_unref (s->b);
  g_free (s);
}

static gboolean
linear_run (DlTape *tape, gconstpointer saved, DlTensor *dx, DlTensor *dw, DlTensor *db, DlTensor *dy, GError **error)
{
  const LinearSaved *s = saved;
  return dl_op_linear_backward (REC (tape), dx, dw, db, s->x, s->w, dy, TRUE, error);
}

static gboolean
linear_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  LinearSaved *s = data;
  return three_grad_backward (tape, s->x, s->w, s->b, s, dout[0], linear_run, error);
}

DlTensor *
dl_nn_linear (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, GError **error)
{
  g_return_val_if_fail (tape && x && w, NULL);
  if (w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
    {
      g_autofree char *xs = dl_tensor_describe (x);
      g_autofree char *ws = dl_tensor_describe (w);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "linear: input %s does not fit weight %s", xs, ws);
      return NULL;
    }
  int64_t shape[DL_MAX_DIMS];
  memcpy (shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = w->shape[0];
  g_autoptr (DlTensor) y = new_tensor (tape, w->name, x->dtype, x->ndim, shape, error);
  if (!y || !dl_op_linear (REC (tape), y, x, w, b, error))
    return NULL;
  DlTensor *in[] = { x, w, b };
  if (dl_tape_should_record (tape, in, 3))
    dl_tape_push (tape, &y, 1, linear_backward, linear_saved_new (x, w, b), linear_saved_free);
  return g_steal_pointer (&y);
}

/* ---- conv2d ---- */

typedef struct
{
  DlTensor *x, *w, *b; /* b may be NULL */
  DlConv2dParams params;
} Conv2dSaved;

static Conv2dSaved *
conv2d_saved_new (DlTensor *x, DlTensor *w, DlTensor *b, const DlConv2dParams *params)
{
  Conv2dSaved *s = g_new0 (Conv2dSaved, 1);
  s->x = keep (x);
  s->w = keep (w);
  s->b = keep (b);
  s->params = *params;
  return s;
}

static void
conv2d_saved_free (gpointer p)
{
  Conv2dSaved *s = p;
  dl_tensor_unref (s->x);
  dl_tensor_unref (s->w);
  dl_tensor_unref (s->b);
  g_free (s);
}

static gboolean
conv2d_run (DlTape *tape, gconstpointer saved, DlTensor *dx, DlTensor *dw, DlTensor *db, DlTensor *dy, GError **error)
{
  const Conv2dSaved *s = saved;
  return dl_op_conv2d_backward (REC (tape), dx, dw, db, s->x, s->w, dy, &s->params, TRUE, error);
}

static gboolean
conv2d_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  Conv2dSaved *s = data;
  return three_grad_backward (tape, s->x, s->w, s->b, s, dout[0], conv2d_run, error);
}

DlTensor *
dl_nn_conv2d (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, int stride, int padding, GError **error)
{
  DlConv2dParams p = DL_CONV2D_PARAMS (stride, padding);
  return dl_nn_conv2d_with (tape, x, w, b, &p, error);
}

DlTensor *
dl_nn_conv2d_with (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, const DlConv2dParams *params, GError **error)
{
  g_return_val_if_fail (tape && x && w && params, NULL);
  DlConv2dParams p = *params;
  if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1])
    {
      g_autofree char *xs = dl_tensor_describe (x);
      g_autofree char *ws = dl_tensor_describe (w);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "conv2d: input %s does not fit weight %s", xs, ws);
      return NULL;
    }
  int64_t shape[4] = { x->shape[0], w->shape[0], dl_conv2d_out_size (x->shape[2], w->shape[2], &p),
                       dl_conv2d_out_size (x->shape[3], w->shape[3], &p) };
  g_autoptr (DlTensor) y = new_tensor (tape, w->name, x->dtype, 4, shape, error);
  if (!y || !dl_op_conv2d (REC (tape), y, x, w, b, &p, error))
    return NULL;
  DlTensor *in[] = { x, w, b };
  if (dl_tape_should_record (tape, in, 3))
    {
      dl_tape_push (tape, &y, 1, conv2d_backward, conv2d_saved_new (x, w, b, &p), conv2d_saved_free);
    }
  return g_steal_pointer (&y);
}

/* ---- normalisation ---- */

typedef struct
{
  DlTensor *x, *gamma, *beta; /* gamma, beta may be NULL */
  DlTensor *mean, *rstd;      /* per (sample, group), from the forward */
  int groups;
  gboolean silu;
} GroupNormSaved;

static GroupNormSaved *
group_norm_saved_new (DlTensor *x, DlTensor *gamma, DlTensor *beta, DlTensor *mean, DlTensor *rstd, int groups,
                      gboolean silu)
{
  GroupNormSaved *s = g_new0 (GroupNormSaved, 1);
  s->x = keep (x);
  s->gamma = keep (gamma);
  s->beta = keep (beta);
  s->mean = keep (mean);
  s->rstd = keep (rstd);
  s->groups = groups;
  s->silu = silu;
  return s;
}

static void
group_norm_saved_free (gpointer p)
{
  GroupNormSaved *s = p;
  dl_tensor_unref (s->x);
  dl_tensor_unref (s->gamma);
  dl_tensor_unref (s->beta);
  dl_tensor_unref (s->mean);
  dl_tensor_unref (s->rstd);
  g_free (s);
}

static gboolean
group_norm_run (DlTape *tape, gconstpointer saved, DlTensor *dx, DlTensor *dg, DlTensor *db, DlTensor *dy,
                GError **error)
{
  const GroupNormSaved *s = saved;
  return dl_op_group_norm_backward (REC (tape), dx, dg, db, s->x, s->gamma, s->beta, s->mean, s->rstd, dy, s->groups,
                                    s->silu, TRUE, error);
}

static gboolean
group_norm_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  GroupNormSaved *s = data;
  return three_grad_backward (tape, s->x, s->gamma, s->beta, s, dout[0], group_norm_run, error);
}

DlTensor *
dl_nn_group_norm (DlTape *tape, DlTensor *x, DlTensor *gamma, DlTensor *beta, int groups, float eps, gboolean silu,
                  GError **error)
{
  g_return_val_if_fail (tape && x && groups > 0, NULL);
  DlTensor *in[] = { x, gamma, beta };
  gboolean record = dl_tape_should_record (tape, in, 3);
  g_autoptr (DlTensor) y = new_like (tape, "group_norm", x, error);
  if (!y)
    return NULL;
  g_autoptr (DlTensor) mean = NULL, rstd = NULL;
  if (record)
    {
      int64_t st[2] = { x->shape[0], groups };
      mean = new_tensor (tape, "gn-mean", DL_DTYPE_F32, 2, st, error);
      rstd = mean ? new_tensor (tape, "gn-rstd", DL_DTYPE_F32, 2, st, error) : NULL;
      if (!rstd)
        return NULL;
    }
  if (!dl_op_group_norm (REC (tape), y, mean, rstd, x, gamma, beta, groups, eps, silu, error))
    return NULL;
  if (record)
    {
      GroupNormSaved *s = group_norm_saved_new (x, gamma, beta, mean, rstd, groups, silu);
      dl_tape_push (tape, &y, 1, group_norm_backward, s, group_norm_saved_free);
    }
  return g_steal_pointer (&y);
}

typedef struct
{
  DlTensor *x, *gamma, *beta; /* gamma, beta may be NULL */
  DlTensor *mean, *rstd;      /* per row, from the forward */
} LayerNormSaved;

static LayerNormSaved *
layer_norm_saved_new (DlTensor *x, DlTensor *gamma, DlTensor *beta, DlTensor *mean, DlTensor *rstd)
{
  LayerNormSaved *s = g_new0 (LayerNormSaved, 1);
  s->x = keep (x);
  s->gamma = keep (gamma);
  s->beta = keep (beta);
  s->mean = keep (mean);
  s->rstd = keep (rstd);
  return s;
}

static void
layer_norm_saved_free (gpointer p)
{
  LayerNormSaved *s = p;
  dl_tensor_unref (s->x);
  dl_tensor_unref (s->gamma);
  dl_tensor_unref (s->beta);
  dl_tensor_unref (s->mean);
  dl_tensor_unref (s->rstd);
  g_free (s);
}

static gboolean
layer_norm_run (DlTape *tape, gconstpointer saved, DlTensor *dx, DlTensor *dg, DlTensor *db, DlTensor *dy,
                GError **error)
{
  const LayerNormSaved *s = saved;
  return dl_op_layer_norm_backward (REC (tape), dx, dg, db, s->x, s->gamma, s->mean, s->rstd, dy, TRUE, error);
}

static gboolean
layer_norm_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  LayerNormSaved *s = data;
  return three_grad_backward (tape, s->x, s->gamma, s->beta, s, dout[0], layer_norm_run, error);
}

DlTensor *
dl_nn_layer_norm (DlTape *tape, DlTensor *x, DlTensor *gamma, DlTensor *beta, float eps, GError **error)
{
  g_return_val_if_fail (tape && x, NULL);
  DlTensor *in[] = { x, gamma, beta };
  gboolean record = dl_tape_should_record (tape, in, 3);
  g_autoptr (DlTensor) y = new_like (tape, "layer_norm", x, error);
  if (!y)
    return NULL;
  g_autoptr (DlTensor) mean = NULL, rstd = NULL;
  if (record)
    {
      int64_t rows = dl_tensor_numel (x) / x->shape[x->ndim - 1];
      mean = new_tensor (tape, "ln-mean", DL_DTYPE_F32, 1, &rows, error);
      rstd = mean ? new_tensor (tape, "ln-rstd", DL_DTYPE_F32, 1, &rows, error) : NULL;
      if (!rstd)
        return NULL;
    }
  if (!dl_op_layer_norm (REC (tape), y, mean, rstd, x, gamma, beta, eps, error))
    return NULL;
  if (record)
    dl_tape_push (tape, &y, 1, layer_norm_backward, layer_norm_saved_new (x, gamma, beta, mean, rstd),
                  layer_norm_saved_free);
  return g_steal_pointer (&y);
}

/* ---- activations ---- */

/* The input alone (geglu, upsampling, reshaping). */
typedef struct
{
  DlTensor *x;
} InputSaved;

static InputSaved *
input_saved_new (DlTensor *x)
{
  InputSaved *s = g_new0 (InputSaved, 1);
  s->x = keep (x);
  return s;
}

static void
input_saved_free (gpointer p)
{
  InputSaved *s = p;
  dl_tensor_unref (s->x);
  g_free (s);
}

typedef struct
{
  DlTensor *x;
  DlActivation act;
} ActivationSaved;

static ActivationSaved *
activation_saved_new (DlTensor *x, DlActivation act)
{
  ActivationSaved *s = g_new0 (ActivationSaved, 1);
  s->x = keep (x);
  s->act = act;
  return s;
}

static void
activation_saved_free (gpointer p)
{
  ActivationSaved *s = p;
  dl_tensor_unref (s->x);
  g_free (s);
}

static gboolean
activation_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  ActivationSaved *s = data;
  g_autoptr (DlTensor) dx = new_like (tape, "dact", s->x, error);
  return dx && dl_op_activation_backward (REC (tape), dx, s->x, dout[0], s->act, error) &&
         dl_tape_add_grad (tape, s->x, dx, error);
}

DlTensor *
dl_nn_activation (DlTape *tape, DlTensor *x, DlActivation act, GError **error)
{
  g_return_val_if_fail (tape && x, NULL);
  g_autoptr (DlTensor) y = new_like (tape, "act", x, error);
  if (!y || !dl_op_activation (REC (tape), y, x, act, error))
    return NULL;
  if (dl_tape_should_record (tape, &x, 1))
    {
      dl_tape_push (tape, &y, 1, activation_backward, activation_saved_new (x, act), activation_saved_free);
    }
  return g_steal_pointer (&y);
}

static gboolean
geglu_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  InputSaved *s = data;
  g_autoptr (DlTensor) dx = new_like (tape, "dgeglu", s->x, error);
  return dx && dl_op_geglu_backward (REC (tape), dx, s->x, dout[0], error) && dl_tape_add_grad (tape, s->x, dx, error);
}

DlTensor *
dl_nn_geglu (DlTape *tape, DlTensor *x, GError **error)
{
  g_return_val_if_fail (tape && x, NULL);
  int64_t shape[DL_MAX_DIMS];
  memcpy (shape, x->shape, sizeof shape);
  shape[x->ndim - 1] /= 2;
  g_autoptr (DlTensor) y = new_tensor (tape, "geglu", x->dtype, x->ndim, shape, error);
  if (!y || !dl_op_geglu (REC (tape), y, x, error))
    return NULL;
  if (dl_tape_should_record (tape, &x, 1))
    dl_tape_push (tape, &y, 1, geglu_backward, input_saved_new (x), input_saved_free);
  return g_steal_pointer (&y);
}

/* Single-head attention wider than the flash kernels take (the VAE's mid
 * block: one head of 512): scores materialised, B x Nq x Nk floats. */
#define FLASH_MAX_HEAD_DIM 256

typedef struct
{
  DlTensor *q, *k, *v;
  DlTensor *probs; /* P = softmax(q kᵀ · scale): [B, Nq, Nk] */
  float scale;
} NaiveAttentionSaved;

static NaiveAttentionSaved *
naive_attention_saved_new (DlTensor *q, DlTensor *k, DlTensor *v, DlTensor *probs, float scale)
{
  NaiveAttentionSaved *s = g_new0 (NaiveAttentionSaved, 1);
  s->q = keep (q);
  s->k = keep (k);
  s->v = keep (v);
  s->probs = keep (probs);
  s->scale = scale;
  return s;
}

static void
naive_attention_saved_free (gpointer p)
{
  NaiveAttentionSaved *s = p;
  dl_tensor_unref (s->q);
  dl_tensor_unref (s->k);
  dl_tensor_unref (s->v);
  dl_tensor_unref (s->probs);
  g_free (s);
}

static gboolean
naive_attention_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  NaiveAttentionSaved *s = data;
  DlTensor *q = s->q, *k = s->k, *v = s->v, *P = s->probs;
  DlRecorder *rec = REC (tape);
  float scale = s->scale;
  g_autoptr (DlTensor) dP = new_like (tape, "attn-dP", P, error);
  g_autoptr (DlTensor) dS = dP ? new_like (tape, "attn-dS", P, error) : NULL;
  if (!dS || !dl_op_matmul (rec, dP, dout[0], FALSE, v, TRUE, NULL, NULL, error) ||
      !dl_op_softmax_backward (rec, dS, P, dP, scale, error))
    return FALSE;
  if (dl_tape_needs_grad (tape, q))
    {
      g_autoptr (DlTensor) dq = new_like (tape, "dq", q, error);
      if (!dq || !dl_op_matmul (rec, dq, dS, FALSE, k, FALSE, NULL, NULL, error) ||
          !dl_tape_add_grad (tape, q, dq, error))
        return FALSE;
    }
  if (dl_tape_needs_grad (tape, k))
    {
      g_autoptr (DlTensor) dk = new_like (tape, "dk", k, error);
      if (!dk || !dl_op_matmul (rec, dk, dS, TRUE, q, FALSE, NULL, NULL, error) ||
          !dl_tape_add_grad (tape, k, dk, error))
        return FALSE;
    }
  if (dl_tape_needs_grad (tape, v))
    {
      g_autoptr (DlTensor) dv = new_like (tape, "dv", v, error);
      if (!dv || !dl_op_matmul (rec, dv, P, TRUE, dout[0], FALSE, NULL, NULL, error) ||
          !dl_tape_add_grad (tape, v, dv, error))
        return FALSE;
    }
  return TRUE;
}

static DlTensor *
naive_attention (DlTape *tape, DlTensor *q, DlTensor *k, DlTensor *v, GError **error)
{
  DlRecorder *rec = REC (tape);
  int64_t B = q->ndim == 3 ? q->shape[0] : 1, Nq = q->shape[q->ndim - 2], Nk = k->shape[k->ndim - 2];
  float scale = 1.0f / sqrtf ((float)q->shape[q->ndim - 1]);
  int64_t sshape[3] = { B, Nq, Nk };
  g_autoptr (DlTensor) S = new_tensor (tape, "attn-scores", DL_DTYPE_F32, 3, sshape, error);
  g_autoptr (DlTensor) P = S ? new_tensor (tape, "attn-probs", DL_DTYPE_F32, 3, sshape, error) : NULL;
  g_autoptr (DlTensor) o = P ? new_like (tape, "attn", q, error) : NULL;
  if (!o || !dl_op_matmul (rec, S, q, FALSE, k, TRUE, NULL, NULL, error) || !dl_op_softmax (rec, P, S, scale, error) ||
      !dl_op_matmul (rec, o, P, FALSE, v, FALSE, NULL, NULL, error))
    return NULL;
  DlTensor *in[] = { q, k, v };
  if (dl_tape_should_record (tape, in, 3))
    {
      NaiveAttentionSaved *s = naive_attention_saved_new (q, k, v, P, scale);
      dl_tape_push (tape, &o, 1, naive_attention_backward, s, naive_attention_saved_free);
    }
  return g_steal_pointer (&o);
}

/* ---- attention ---- */

typedef struct
{
  DlTensor *q, *k, *v;
  DlTensor *out, *lse; /* the forward's output o and lse [B, n_heads, Nq] */
  int n_heads;
  gboolean causal;
} AttentionSaved;

static AttentionSaved *
attention_saved_new (DlTensor *q, DlTensor *k, DlTensor *v, DlTensor *out, DlTensor *lse, int n_heads, gboolean causal)
{
  AttentionSaved *s = g_new0 (AttentionSaved, 1);
  s->q = keep (q);
  s->k = keep (k);
  s->v = keep (v);
  s->out = keep (out);
  s->lse = keep (lse);
  s->n_heads = n_heads;
  s->causal = causal;
  return s;
}

static void
attention_saved_free (gpointer p)
{
  AttentionSaved *s = p;
  dl_tensor_unref (s->q);
  dl_tensor_unref (s->k);
  dl_tensor_unref (s->v);
  dl_tensor_unref (s->out);
  dl_tensor_unref (s->lse);
  g_free (s);
}

static gboolean
attention_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  AttentionSaved *s = data;
  DlTensor *q = s->q, *k = s->k, *v = s->v;
  DlAttentionParams p = DL_ATTENTION_PARAMS (s->n_heads);
  p.causal = s->causal;
  g_autoptr (DlTensor) dq = NULL, dk = NULL, dv = NULL;
  if (dl_tape_needs_grad (tape, q) && !(dq = new_like (tape, "dq", q, error)))
    return FALSE;
  if (dl_tape_needs_grad (tape, k) || dl_tape_needs_grad (tape, v))
    {
      dk = new_like (tape, "dk", k, error);
      dv = dk ? new_like (tape, "dv", v, error) : NULL;
      if (!dv)
        return FALSE;
    }
  return dl_op_attention_backward (REC (tape), dq, dk, dv, q, k, v, s->out, s->lse, dout[0], &p, error) &&
         (!dq || dl_tape_add_grad (tape, q, dq, error)) && (!dk || dl_tape_add_grad (tape, k, dk, error)) &&
         (!dv || dl_tape_add_grad (tape, v, dv, error));
}

static gboolean
takes_naive_attention (int n_heads, int64_t head_dim, gboolean causal)
{
  return n_heads == 1 && !causal && head_dim > FLASH_MAX_HEAD_DIM;
}

guint64
dl_nn_attention_scores_bytes (int64_t batch, int64_t nq, int64_t nk, int n_heads, int64_t head_dim, gboolean causal)
{
  if (!takes_naive_attention (n_heads, head_dim, causal))
    return 0;
  /* S and P = softmax (S), both alive through the second product */
  return 2 * (guint64)batch * (guint64)nq * (guint64)nk * sizeof (float);
}

DlTensor *
dl_nn_attention (DlTape *tape, DlTensor *q, DlTensor *k, DlTensor *v, int n_heads, gboolean causal, GError **error)
{
  g_return_val_if_fail (tape && q && k && v && n_heads > 0, NULL);
  if (takes_naive_attention (n_heads, q->shape[q->ndim - 1], causal))
    return naive_attention (tape, q, k, v, error);
  DlTensor *in[] = { q, k, v };
  gboolean record = dl_tape_should_record (tape, in, 3);
  DlAttentionParams p = DL_ATTENTION_PARAMS (n_heads);
  p.causal = causal;
  g_autoptr (DlTensor) o = new_like (tape, "attn", q, error);
  if (!o)
    return NULL;
  g_autoptr (DlTensor) lse = NULL;
  if (record)
    {
      int64_t B = q->ndim == 3 ? q->shape[0] : 1, Nq = q->shape[q->ndim - 2];
      int64_t shape[3] = { B, n_heads, Nq };
      if (!(lse = new_tensor (tape, "attn-lse", DL_DTYPE_F32, 3, shape, error)))
        return NULL;
    }
  if (!dl_op_attention (REC (tape), o, lse, q, k, v, &p, error))
    return NULL;
  if (record)
    {
      AttentionSaved *s = attention_saved_new (q, k, v, o, lse, n_heads, causal);
      dl_tape_push (tape, &o, 1, attention_backward, s, attention_saved_free);
    }
  return g_steal_pointer (&o);
}

/* ---- arithmetic ---- */

/* The two inputs of an elementwise add or a concatenation. */
typedef struct
{
  DlTensor *a, *b;
} PairSaved;

static PairSaved *
pair_saved_new (DlTensor *a, DlTensor *b)
{
  PairSaved *s = g_new0 (PairSaved, 1);
  s->a = keep (a);
  s->b = keep (b);
  return s;
}

static void
pair_saved_free (gpointer p)
{
  PairSaved *s = p;
  dl_tensor_unref (s->a);
  dl_tensor_unref (s->b);
  g_free (s);
}

static gboolean
add_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  PairSaved *s = data;
  return dl_tape_add_grad (tape, s->a, dout[0], error) && dl_tape_add_grad (tape, s->b, dout[0], error);
}

DlTensor *
dl_nn_add (DlTape *tape, DlTensor *a, DlTensor *b, GError **error)
{
  g_return_val_if_fail (tape && a && b, NULL);
  if (!dl_tensor_same_shape (a, b))
    {
      g_autofree char *as = dl_tensor_describe (a);
      g_autofree char *bs = dl_tensor_describe (b);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "add: %s and %s differ in shape", as, bs);
      return NULL;
    }
  g_autoptr (DlTensor) y = new_like (tape, "add", a, error);
  if (!y || !dl_op_add (REC (tape), y, a, b, error))
    return NULL;
  DlTensor *in[] = { a, b };
  if (dl_tape_should_record (tape, in, 2))
    dl_tape_push (tape, &y, 1, add_backward, pair_saved_new (a, b), pair_saved_free);
  return g_steal_pointer (&y);
}

typedef struct
{
  DlTensor *x;
  DlTensor *b; /* [N, C], one value per sample and channel */
} AddChannelSaved;

static AddChannelSaved *
add_channel_saved_new (DlTensor *x, DlTensor *b)
{
  AddChannelSaved *s = g_new0 (AddChannelSaved, 1);
  s->x = keep (x);
  s->b = keep (b);
  return s;
}

static void
add_channel_saved_free (gpointer p)
{
  AddChannelSaved *s = p;
  dl_tensor_unref (s->x);
  dl_tensor_unref (s->b);
  g_free (s);
}

static gboolean
add_channel_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  AddChannelSaved *s = data;
  DlTensor *x = s->x, *b = s->b;
  if (!dl_tape_add_grad (tape, x, dout[0], error))
    return FALSE;
  if (!dl_tape_needs_grad (tape, b))
    return TRUE;
  int64_t shape[3] = { x->shape[0], x->shape[1], x->shape[2] * x->shape[3] };
  g_autoptr (DlTensor) flat = dl_tensor_reshape (dout[0], 3, shape, error);
  g_autoptr (DlTensor) db = flat ? new_like (tape, "dchannel", b, error) : NULL;
  return db && dl_op_sum (REC (tape), db, flat, 2, error) && dl_tape_add_grad (tape, b, db, error);
}

DlTensor *
dl_nn_add_channel (DlTape *tape, DlTensor *x, DlTensor *b, GError **error)
{
  g_return_val_if_fail (tape && x && b, NULL);
  if (x->ndim != 4 || b->ndim != 2 || b->shape[0] != x->shape[0] || b->shape[1] != x->shape[1])
    {
      g_autofree char *xs = dl_tensor_describe (x);
      g_autofree char *bs = dl_tensor_describe (b);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "add_channel: %s does not fit %s", bs, xs);
      return NULL;
    }
  int64_t bshape[4] = { b->shape[0], b->shape[1], 1, 1 };
  g_autoptr (DlTensor) b4 = dl_tensor_reshape (b, 4, bshape, error);
  g_autoptr (DlTensor) y = b4 ? new_like (tape, "add_channel", x, error) : NULL;
  if (!y || !dl_op_add (REC (tape), y, x, b4, error))
    return NULL;
  DlTensor *in[] = { x, b };
  if (dl_tape_should_record (tape, in, 2))
    dl_tape_push (tape, &y, 1, add_channel_backward, add_channel_saved_new (x, b), add_channel_saved_free);
  return g_steal_pointer (&y);
}

typedef struct
{
  DlTensor *x;
  float alpha;
} ScaleSaved;

static ScaleSaved *
scale_saved_new (DlTensor *x, float alpha)
{
  ScaleSaved *s = g_new0 (ScaleSaved, 1);
  s->x = keep (x);
  s->alpha = alpha;
  return s;
}

static void
scale_saved_free (gpointer p)
{
  ScaleSaved *s = p;
  dl_tensor_unref (s->x);
  g_free (s);
}

static gboolean
scale_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  ScaleSaved *s = data;
  g_autoptr (DlTensor) dx = new_like (tape, "dscale", s->x, error);
  return dx && dl_op_scale (REC (tape), dx, dout[0], s->alpha, error) && dl_tape_add_grad (tape, s->x, dx, error);
}

DlTensor *
dl_nn_scale (DlTape *tape, DlTensor *x, float alpha, GError **error)
{
  g_return_val_if_fail (tape && x, NULL);
  g_autoptr (DlTensor) y = new_like (tape, "scale", x, error);
  if (!y || !dl_op_scale (REC (tape), y, x, alpha, error))
    return NULL;
  if (dl_tape_should_record (tape, &x, 1))
    {
      dl_tape_push (tape, &y, 1, scale_backward, scale_saved_new (x, alpha), scale_saved_free);
    }
  return g_steal_pointer (&y);
}

/* ---- resampling and layout ---- */

static gboolean
upsample_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  InputSaved *s = data;
  g_autoptr (DlTensor) dx = new_like (tape, "dupsample", s->x, error);
  return dx && dl_op_upsample_nearest2x_backward (REC (tape), dx, dout[0], error) &&
         dl_tape_add_grad (tape, s->x, dx, error);
}

DlTensor *
dl_nn_upsample2x (DlTape *tape, DlTensor *x, GError **error)
{
  g_return_val_if_fail (tape && x && x->ndim == 4, NULL);
  int64_t shape[4] = { x->shape[0], x->shape[1], 2 * x->shape[2], 2 * x->shape[3] };
  g_autoptr (DlTensor) y = new_tensor (tape, "upsample", x->dtype, 4, shape, error);
  if (!y || !dl_op_upsample_nearest2x (REC (tape), y, x, error))
    return NULL;
  if (dl_tape_should_record (tape, &x, 1))
    dl_tape_push (tape, &y, 1, upsample_backward, input_saved_new (x), input_saved_free);
  return g_steal_pointer (&y);
}

static gboolean
concat_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  PairSaved *s = data;
  DlTensor *a = s->a, *b = s->b;
  g_autoptr (DlTensor) da = NULL, db = NULL;
  if (dl_tape_needs_grad (tape, a) && !(da = new_like (tape, "dconcat", a, error)))
    return FALSE;
  if (dl_tape_needs_grad (tape, b) && !(db = new_like (tape, "dconcat", b, error)))
    return FALSE;
  if (!da && !db)
    return TRUE;
  if (!da)
    {
      /* split needs a's width: hand it through a throwaway view of dout */
      int64_t shape[DL_MAX_DIMS];
      memcpy (shape, a->shape, sizeof shape);
      g_autoptr (DlTensor) tmp = new_tensor (tape, "dconcat-unused", a->dtype, a->ndim, shape, error);
      if (!tmp || !dl_op_split_channels (REC (tape), tmp, db, dout[0], error))
        return FALSE;
    }
  else if (!dl_op_split_channels (REC (tape), da, db, dout[0], error))
    {
      return FALSE;
    }
  return (!da || dl_tape_add_grad (tape, a, da, error)) && (!db || dl_tape_add_grad (tape, b, db, error));
}

DlTensor *
dl_nn_concat_channels (DlTape *tape, DlTensor *a, DlTensor *b, GError **error)
{
  g_return_val_if_fail (tape && a && b, NULL);
  int64_t shape[DL_MAX_DIMS];
  memcpy (shape, a->shape, sizeof shape);
  shape[1] = a->shape[1] + b->shape[1];
  g_autoptr (DlTensor) y = new_tensor (tape, "concat", a->dtype, a->ndim, shape, error);
  if (!y || !dl_op_concat_channels (REC (tape), y, a, b, error))
    return NULL;
  DlTensor *in[] = { a, b };
  if (dl_tape_should_record (tape, in, 2))
    dl_tape_push (tape, &y, 1, concat_backward, pair_saved_new (a, b), pair_saved_free);
  return g_steal_pointer (&y);
}

static DlTensor *
permute3 (DlTape *tape, DlTensor *x3, const char *name, GError **error)
{
  static const int perm[3] = { 0, 2, 1 };
  int64_t shape[3] = { x3->shape[0], x3->shape[2], x3->shape[1] };
  g_autoptr (DlTensor) y = new_tensor (tape, name, x3->dtype, 3, shape, error);
  if (!y || !dl_op_permute (REC (tape), y, x3, perm, error))
    return NULL;
  return g_steal_pointer (&y);
}

/* [N, A, B] <-> [N, B, A] presented with the caller's shapes */
typedef struct
{
  DlTensor *x;
  int out_rows, out_cols; /* dout seen as [N, out_rows, out_cols] */
} TransposeSaved;

static TransposeSaved *
transpose_saved_new (DlTensor *x, int out_rows, int out_cols)
{
  TransposeSaved *s = g_new0 (TransposeSaved, 1);
  s->x = keep (x);
  s->out_rows = out_rows;
  s->out_cols = out_cols;
  return s;
}

static void
transpose_saved_free (gpointer p)
{
  TransposeSaved *s = p;
  dl_tensor_unref (s->x);
  g_free (s);
}

static gboolean
transpose_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  TransposeSaved *s = data;
  DlTensor *x = s->x;
  int64_t shape3[3] = { dout[0]->shape[0], s->out_rows, s->out_cols };
  g_autoptr (DlTensor) d3 = dl_tensor_reshape (dout[0], 3, shape3, error);
  g_autoptr (DlTensor) t = d3 ? permute3 (tape, d3, "dtranspose", error) : NULL;
  g_autoptr (DlTensor) dx = t ? dl_tensor_reshape (t, x->ndim, x->shape, error) : NULL;
  return dx && dl_tape_add_grad (tape, x, dx, error);
}

static DlTensor *
transpose_nn (DlTape *tape, DlTensor *x, int64_t A, int64_t B, int out_ndim, const int64_t *out_shape, const char *name,
              GError **error)
{
  int64_t shape3[3] = { x->shape[0], A, B };
  g_autoptr (DlTensor) x3 = dl_tensor_reshape (x, 3, shape3, error);
  g_autoptr (DlTensor) t = x3 ? permute3 (tape, x3, name, error) : NULL;
  g_autoptr (DlTensor) y = t ? dl_tensor_reshape (t, out_ndim, out_shape, error) : NULL;
  if (!y)
    return NULL;
  if (dl_tape_should_record (tape, &x, 1))
    {
      /* dout is [N, B, A] */
      dl_tape_push (tape, &y, 1, transpose_backward, transpose_saved_new (x, (int)B, (int)A), transpose_saved_free);
    }
  return g_steal_pointer (&y);
}

DlTensor *
dl_nn_nchw_to_tokens (DlTape *tape, DlTensor *x, GError **error)
{
  g_return_val_if_fail (tape && x && x->ndim == 4, NULL);
  int64_t C = x->shape[1], HW = x->shape[2] * x->shape[3];
  int64_t out[3] = { x->shape[0], HW, C };
  return transpose_nn (tape, x, C, HW, 3, out, "tokens", error);
}

DlTensor *
dl_nn_tokens_to_nchw (DlTape *tape, DlTensor *x, int64_t H, int64_t W, GError **error)
{
  g_return_val_if_fail (tape && x && x->ndim == 3 && x->shape[1] == H * W, NULL);
  int64_t C = x->shape[2];
  int64_t out[4] = { x->shape[0], C, H, W };
  return transpose_nn (tape, x, H * W, C, 4, out, "nchw", error);
}

static gboolean
reshape_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  InputSaved *s = data;
  g_autoptr (DlTensor) dx = dl_tensor_reshape (dout[0], s->x->ndim, s->x->shape, error);
  return dx && dl_tape_add_grad (tape, s->x, dx, error);
}

DlTensor *
dl_nn_reshape (DlTape *tape, DlTensor *x, int ndim, const int64_t *shape, GError **error)
{
  g_return_val_if_fail (tape && x, NULL);
  g_autoptr (DlTensor) y = dl_tensor_reshape (x, ndim, shape, error);
  if (!y)
    return NULL;
  if (dl_tape_should_record (tape, &x, 1))
    dl_tape_push (tape, &y, 1, reshape_backward, input_saved_new (x), input_saved_free);
  return g_steal_pointer (&y);
}

/* ---- embeddings ---- */

typedef struct
{
  DlTensor *ids, *table;
  DlTensor *pos, *added; /* may be NULL */
  int added_base;        /* the id of added's first row */
} EmbeddingSaved;

static EmbeddingSaved *
embedding_saved_new (DlTensor *ids, DlTensor *table, DlTensor *pos, DlTensor *added, int added_base)
{
  EmbeddingSaved *s = g_new0 (EmbeddingSaved, 1);
  s->ids = keep (ids);
  s->table = keep (table);
  s->pos = keep (pos);
  s->added = keep (added);
  s->added_base = added_base;
  return s;
}

static void
embedding_saved_free (gpointer p)
{
  EmbeddingSaved *s = p;
  dl_tensor_unref (s->ids);
  dl_tensor_unref (s->table);
  dl_tensor_unref (s->pos);
  dl_tensor_unref (s->added);
  g_free (s);
}

/* dtable (+ dpos) += the lookup's gradients.  The op accumulates into f32
 * tables only; an f16 "table" is an activation looked up by rows (the text
 * encoder's pooled output picks the end-token row of its f16 last hidden state
 * this way), so its gradient is summed in f32 first and then added in f16. */
static gboolean
table_grad (DlTape *tape, DlTensor *dtable, DlTensor *dpos, DlTensor *ids, DlTensor *dout, GError **error)
{
  if (!dtable && !dpos)
    return TRUE;
  if (!dtable || dtable->dtype == DL_DTYPE_F32)
    return dl_op_embedding_backward_ex (REC (tape), dtable, 0, dpos, ids, dout, 0, TRUE, error);
  g_autoptr (DlTensor) sum = new_tensor (tape, "dtable-f32", DL_DTYPE_F32, dtable->ndim, dtable->shape, error);
  g_autoptr (DlTensor) half = sum ? new_like (tape, "dtable-cast", dtable, error) : NULL;
  return half && dl_op_embedding_backward_ex (REC (tape), sum, 0, NULL, ids, dout, 0, FALSE, error) &&
         (!dpos || dl_op_embedding_backward_ex (REC (tape), NULL, 0, dpos, ids, dout, 0, TRUE, error)) &&
         dl_op_copy (REC (tape), half, sum, error) && dl_op_axpby (REC (tape), dtable, half, 1.0f, 1.0f, error);
}

static gboolean
embedding_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  EmbeddingSaved *s = data;
  DlTensor *ids = s->ids, *table = s->table, *pos = s->pos, *added = s->added;
  int64_t added_base = s->added_base;
  DlTensor *dtable = NULL, *dpos = NULL, *dadded = NULL;
  gboolean ok =
    dl_tape_grad_begin (tape, table, &dtable, error) && dl_tape_grad_begin (tape, pos, &dpos, error) &&
    dl_tape_grad_begin (tape, added, &dadded, error) && table_grad (tape, dtable, dpos, ids, dout[0], error) &&
    (!dadded || dl_op_embedding_backward_ex (REC (tape), dadded, added_base, NULL, ids, dout[0], 0, TRUE, error));
  ok = dl_tape_grad_finish (tape, table, dtable, ok ? error : NULL) && ok;
  ok = dl_tape_grad_finish (tape, pos, dpos, ok ? error : NULL) && ok;
  ok = dl_tape_grad_finish (tape, added, dadded, ok ? error : NULL) && ok;
  return ok;
}

DlTensor *
dl_nn_embedding (DlTape *tape, DlTensor *ids, DlTensor *table, DlTensor *pos, DlTensor *added, int64_t added_base,
                 GError **error)
{
  g_return_val_if_fail (tape && ids && table, NULL);
  int64_t shape[3] = { ids->ndim == 2 ? ids->shape[0] : 1, ids->shape[ids->ndim - 1], table->shape[1] };
  /* the tape's activation dtype, whatever the table's (an f16 table may only be
   * there to fit one binding) */
  g_autoptr (DlTensor) y = new_tensor (tape, "embedding", dl_tape_get_activation_dtype (tape), 3, shape, error);
  if (!y || !dl_op_embedding_ex (REC (tape), y, ids, table, 0, pos, 0, FALSE, error))
    return NULL;
  if (added && !dl_op_embedding_ex (REC (tape), y, ids, added, added_base, NULL, 0, TRUE, error))
    return NULL;
  DlTensor *in[] = { table, pos, added };
  if (dl_tape_should_record (tape, in, 3))
    {
      EmbeddingSaved *s = embedding_saved_new (ids, table, pos, added, (int)added_base);
      dl_tape_push (tape, &y, 1, embedding_backward, s, embedding_saved_free);
    }
  return g_steal_pointer (&y);
}

/* ---- slicing ---- */

DlTensor *
dl_nn_slice_channels (DlTape *tape, DlTensor *x, int64_t start, int64_t count, GError **error)
{
  g_return_val_if_fail (tape && x && x->ndim >= 2, NULL);
  if (dl_tape_should_record (tape, &x, 1))
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "slice_channels has no backward");
      return NULL;
    }
  int64_t C = x->shape[1];
  if (start < 0 || count <= 0 || start + count > C)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "slice_channels: [%" G_GINT64_FORMAT ", +%" G_GINT64_FORMAT ") outside %" G_GINT64_FORMAT
                   " channels",
                   start, count, C);
      return NULL;
    }
  int64_t inner = dl_tensor_numel (x) / (x->shape[0] * C);
  int64_t shape[DL_MAX_DIMS];
  memcpy (shape, x->shape, sizeof shape);
  shape[1] = count;
  g_autoptr (DlTensor) y = new_tensor (tape, "slice", x->dtype, x->ndim, shape, error);
  /* gather as [N, count, inner] */
  int64_t strides3[3] = { C * inner, inner, 1 };
  int64_t s3[3] = { x->shape[0], count, inner };
  g_autoptr (DlTensor) y3 = y ? dl_tensor_reshape (y, 3, s3, error) : NULL;
  if (!y3 || !dl_op_copy_strided (REC (tape), y3, x, start * inner, strides3, error))
    return NULL;
  return g_steal_pointer (&y);
}

/* ---- loss ---- */

DlTensor *
dl_nn_mse_loss (DlTape *tape, DlTensor *pred, DlTensor *target, DlTensor *weights, float grad_scale, DlTensor **dpred,
                GError **error)
{
  g_return_val_if_fail (tape && pred && target, NULL);
  int64_t one = 1;
  g_autoptr (DlTensor) loss = new_tensor (tape, "loss", DL_DTYPE_F32, 1, &one, error);
  if (!loss || !dl_op_mse_loss (REC (tape), loss, NULL, pred, target, weights, error))
    return NULL;
  if (dpred)
    {
      g_autoptr (DlTensor) d = new_like (tape, "dloss", pred, error);
      if (!d || !dl_op_mse_loss_backward (REC (tape), d, pred, target, weights, grad_scale, error))
        return NULL;
      *dpred = g_steal_pointer (&d);
    }
  return g_steal_pointer (&loss);
}
