/* dl-nn-lora.c: see dl-nn-lora.h.
 *
 * Why one tape entry for the module and its adapters: the tape keys gradients
 * by tensor.  An adapter that added into y in place as an entry of its own
 * would share the output y with the base op's entry; the later entry (the
 * adapter's) would take y's gradient when the backward reaches it and would
 * have to hand it back for the base op's entry, and the adapter's input
 * gradient (dh · down) would reach x as a tensor of its own that the tape sums
 * with the base op's dx (one more [rows, in] allocation and add per adapter).
 * A single entry gets dy once, has the base op write dx, and lets every
 * adapter add into that same dx.  Adding into y in place is safe because y is
 * new here: nothing has read or saved it before the adapters add their terms
 * (the base op's backward needs x, w and dy, never y).
 *
 * The rank-r intermediate is kept scaled, H = scale · x downᵀ (f32, [rows, r]:
 * small), so that matmul's alpha carries every scale:
 *   forward    H = scale · x downᵀ;   y += H upᵀ
 *   backward   dup   += dyᵀ H
 *              dh     = scale · dy up
 *              ddown += dhᵀ x
 *              dx    += dh down
 *
 * Convolutions (NCHW) run the same algebra per image on [channels, pixels]
 * slices: the 1x1 up convolution is up [out, r] · H [N, r, P] batched over
 * the images, and so is a 1x1, stride-1, unpadded down convolution; any other
 * down kernel (LoCon's k×k) runs as a convolution, followed by one in-place
 * scaling of H, and its input gradient goes through a scratch tensor added
 * into dx.  The conv adapters' weight gradients use the convolution weight
 * gradient, which sums over the images in one pass. */
#include "dl-config.h"

#include "nn/dl-nn-lora.h"

#include "dl-error.h"
#include "ops/dl-op-util.h"
#include "ops/dl-ops.h"

#define REC(tape) dl_tape_get_recorder (tape)

typedef struct
{
  DlTensor *down, *up;
  DlTensor *down2, *up2; /* [r, in · kh · kw] and [out, r] views for the matrix products */
  DlTensor *h;           /* scale · down(x), f32; kept for the backward when up needs a gradient */
  float scale;
  gboolean pointwise; /* conv: a 1x1, stride-1, unpadded down, run as a matrix product */
} SavedAdapter;

typedef struct
{
  DlTensor *x, *w, *b;
  gboolean conv;
  int stride, padding;
  guint n;
  SavedAdapter *a;
} Saved;

static void
saved_free (gpointer p)
{
  Saved *s = p;
  if (!s)
    return;
  g_clear_pointer (&s->x, dl_tensor_unref);
  g_clear_pointer (&s->w, dl_tensor_unref);
  g_clear_pointer (&s->b, dl_tensor_unref);
  for (guint i = 0; i < s->n; i++)
    {
      SavedAdapter *a = &s->a[i];
      g_clear_pointer (&a->down, dl_tensor_unref);
      g_clear_pointer (&a->up, dl_tensor_unref);
      g_clear_pointer (&a->down2, dl_tensor_unref);
      g_clear_pointer (&a->up2, dl_tensor_unref);
      g_clear_pointer (&a->h, dl_tensor_unref);
    }
  g_free (s->a);
  g_free (s);
}

typedef Saved LoraSaved;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (LoraSaved, saved_free)

static Saved *
saved_new (DlTensor *x, DlTensor *w, DlTensor *b, const DlLoraAdapter *adapters, guint n, gboolean conv, int stride,
           int padding, GError **error)
{
  g_autoptr (LoraSaved) s = g_new0 (Saved, 1);
  s->x = dl_tensor_ref (x);
  s->w = dl_tensor_ref (w);
  s->b = b ? dl_tensor_ref (b) : NULL;
  s->conv = conv;
  s->stride = stride;
  s->padding = padding;
  s->a = g_new0 (SavedAdapter, n);
  s->n = n;
  for (guint i = 0; i < n; i++)
    {
      SavedAdapter *a = &s->a[i];
      DlTensor *down = adapters[i].down, *up = adapters[i].up;
      int64_t r = down->shape[0];
      int64_t d2[2] = { r, dl_tensor_numel (down) / r }, u2[2] = { w->shape[0], r };
      a->down = dl_tensor_ref (down);
      a->up = dl_tensor_ref (up);
      a->scale = adapters[i].scale;
      a->pointwise = conv && down->shape[2] == 1 && down->shape[3] == 1 && stride == 1 && padding == 0;
      if (!(a->down2 = dl_tensor_reshape (down, 2, d2, error)) || !(a->up2 = dl_tensor_reshape (up, 2, u2, error)))
        return NULL;
    }
  return g_steal_pointer (&s);
}

/* ---- matrix products over activations cut to fit one binding ---- */

/* An operand: an activation cut into slices along its first dimension (rows of
 * a linear's input, images of a convolution's), each slice [c] (p == 0) or
 * [c, p] (channels × pixels); or, with c == 0, a weight used whole. */
typedef struct
{
  DlTensor *t;
  int64_t c, p;
} Operand;

static Operand
act (DlTensor *t, int64_t c, int64_t p)
{
  return (Operand){ t, c, p };
}

static Operand
whole (DlTensor *t)
{
  return (Operand){ t, 0, 0 };
}

static int64_t
slice_elems (const Operand *o)
{
  return o->c * MAX (o->p, 1);
}

/* Slices [first, first + n) of o as [n, c] or [n, c, p]; o itself when whole. */
static DlTensor *
piece (const Operand *o, int64_t first, int64_t n, GError **error)
{
  if (!o->c)
    return dl_tensor_ref (o->t);
  int64_t shape[3] = { n, o->c, o->p };
  return dl_tensor_view (o->t, o->t->name, first * slice_elems (o), o->p ? 3 : 2, shape, error);
}

/* d = alpha · op(a) · op(b) + beta · d over `n_slices` slices, in blocks whose
 * sliced operands each fit one binding.  A whole d is a weight gradient summed
 * over the slices (a and b sliced [n, c]): every block adds into it (beta 1). */
static gboolean
sliced_matmul (DlRecorder *rec, int64_t n_slices, Operand d, Operand a, gboolean trans_a, Operand b, gboolean trans_b,
               float alpha, float beta, GError **error)
{
  g_return_val_if_fail (d.c || beta == 1.0f, FALSE);
  const Operand *all[3] = { &d, &a, &b };
  int64_t step = MAX (n_slices, 1);
  for (guint i = 0; i < 3; i++)
    if (all[i]->c)
      step = MIN (step, dl_op_max_binding_elems (rec, all[i]->t->dtype) / slice_elems (all[i]));
  if (step < 1)
    {
      g_autofree char *ds = dl_tensor_describe (d.t);
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "lora: one slice of %s is larger than this device can bind",
                   ds);
      return FALSE;
    }
  for (int64_t first = 0; first < n_slices; first += step)
    {
      int64_t n = MIN (step, n_slices - first);
      g_autoptr (DlTensor) dp = piece (&d, first, n, error);
      g_autoptr (DlTensor) ap = dp ? piece (&a, first, n, error) : NULL;
      g_autoptr (DlTensor) bp = ap ? piece (&b, first, n, error) : NULL;
      DlMatmulParams prm = DL_MATMUL_PARAMS_DEFAULT;
      prm.alpha = alpha;
      prm.beta = beta;
      if (!bp || !dl_op_matmul (rec, dp, ap, trans_a, bp, trans_b, NULL, &prm, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- gradients ---- */

/* g seen with t's shape (a gradient buffer need only match in element count) */
static DlTensor *
shaped_like (DlTensor *g, DlTensor *t, GError **error)
{
  return dl_tensor_reshape (g, t->ndim, t->shape, error);
}

/* The up matrix's gradient: dup += dyᵀ H (summed over rows or images). */
static gboolean
up_backward (DlTape *tape, Saved *s, SavedAdapter *a, DlTensor *dy, GError **error)
{
  DlTensor *g = NULL;
  if (!dl_tape_grad_begin (tape, a->up, &g, error))
    return FALSE;
  gboolean ok;
  if (s->conv)
    {
      int64_t shape[4] = { a->up2->shape[0], a->up2->shape[1], 1, 1 };
      DlConv2dParams p = DL_CONV2D_PARAMS (1, 0);
      g_autoptr (DlTensor) g4 = dl_tensor_reshape (g, 4, shape, error);
      ok = g4 && dl_op_conv2d_backward (REC (tape), NULL, g4, NULL, a->h, NULL, dy, &p, TRUE, error);
    }
  else
    {
      int64_t out = a->up2->shape[0], r = a->up2->shape[1];
      g_autoptr (DlTensor) g2 = shaped_like (g, a->up2, error);
      ok = g2 && sliced_matmul (REC (tape), dl_tensor_numel (dy) / out, whole (g2), act (dy, out, 0), TRUE,
                                act (a->h, r, 0), FALSE, 1.0f, 1.0f, error);
    }
  return dl_tape_grad_finish (tape, a->up, g, ok ? error : NULL) && ok;
}

/* The down matrix's gradient: ddown += dhᵀ x. */
static gboolean
down_backward (DlTape *tape, Saved *s, SavedAdapter *a, DlTensor *dh, GError **error)
{
  DlTensor *g = NULL;
  if (!dl_tape_grad_begin (tape, a->down, &g, error))
    return FALSE;
  gboolean ok;
  if (s->conv)
    {
      DlConv2dParams p = DL_CONV2D_PARAMS (s->stride, s->padding);
      g_autoptr (DlTensor) g4 = shaped_like (g, a->down, error);
      ok = g4 && dl_op_conv2d_backward (REC (tape), NULL, g4, NULL, s->x, NULL, dh, &p, TRUE, error);
    }
  else
    {
      int64_t r = a->down2->shape[0], in = a->down2->shape[1];
      g_autoptr (DlTensor) g2 = shaped_like (g, a->down2, error);
      ok = g2 && sliced_matmul (REC (tape), dl_tensor_numel (s->x) / in, whole (g2), act (dh, r, 0), TRUE,
                                act (s->x, in, 0), FALSE, 1.0f, 1.0f, error);
    }
  return dl_tape_grad_finish (tape, a->down, g, ok ? error : NULL) && ok;
}

/* dx += dh down: straight into the base op's dx, except for a k×k down
 * (its transposed convolution overwrites, so it goes through a scratch tensor). */
static gboolean
input_backward (DlTape *tape, Saved *s, SavedAdapter *a, DlTensor *dh, DlTensor *dx, GError **error)
{
  DlRecorder *rec = REC (tape);
  int64_t r = a->down2->shape[0];
  if (!s->conv)
    {
      int64_t in = a->down2->shape[1];
      return sliced_matmul (rec, dl_tensor_numel (dx) / in, act (dx, in, 0), act (dh, r, 0), FALSE, whole (a->down2),
                            FALSE, 1.0f, 1.0f, error);
    }
  if (a->pointwise)
    {
      int64_t P = dx->shape[2] * dx->shape[3];
      return sliced_matmul (rec, dx->shape[0], act (dx, dx->shape[1], P), whole (a->down2), TRUE, act (dh, r, P), FALSE,
                            1.0f, 1.0f, error);
    }
  DlConv2dParams p = DL_CONV2D_PARAMS (s->stride, s->padding);
  g_autoptr (DlTensor) part = dl_tape_tensor_like (tape, "lora-dx", dx, error);
  return part && dl_op_conv2d_backward (rec, part, NULL, NULL, NULL, a->down, dh, &p, FALSE, error) &&
         dl_op_axpby (rec, dx, part, 1.0f, 1.0f, error);
}

static gboolean
adapter_backward (DlTape *tape, Saved *s, SavedAdapter *a, DlTensor *dy, DlTensor *dx, GError **error)
{
  if (a->h && dl_tape_needs_grad (tape, a->up) && !up_backward (tape, s, a, dy, error))
    return FALSE;
  gboolean down_grad = dl_tape_needs_grad (tape, a->down);
  if (!down_grad && !dx)
    return TRUE;
  /* dh = scale · dy up, shaped like H */
  int64_t out = a->up2->shape[0], r = a->up2->shape[1];
  int64_t shape[4] = { dy->shape[0], r, 0, 0 };
  int ndim = 4;
  if (s->conv)
    {
      shape[2] = dy->shape[2];
      shape[3] = dy->shape[3];
    }
  else
    {
      shape[0] = dl_tensor_numel (dy) / out;
      ndim = 2;
    }
  g_autoptr (DlTensor) dh = dl_tape_tensor (tape, "lora-dh", DL_DTYPE_F32, ndim, shape, error);
  if (!dh)
    return FALSE;
  gboolean ok = s->conv ? sliced_matmul (REC (tape), shape[0], act (dh, r, shape[2] * shape[3]), whole (a->up2), TRUE,
                                         act (dy, out, shape[2] * shape[3]), FALSE, a->scale, 0.0f, error)
                        : sliced_matmul (REC (tape), shape[0], act (dh, r, 0), act (dy, out, 0), FALSE, whole (a->up2),
                                         FALSE, a->scale, 0.0f, error);
  return ok && (!down_grad || down_backward (tape, s, a, dh, error)) &&
         (!dx || input_backward (tape, s, a, dh, dx, error));
}

static gboolean
base_backward (DlTape *tape, Saved *s, DlTensor *dx, DlTensor *dw, DlTensor *db, DlTensor *dy, GError **error)
{
  if (!dx && !dw && !db)
    return TRUE;
  if (!s->conv)
    return dl_op_linear_backward (REC (tape), dx, dw, db, s->x, s->w, dy, TRUE, error);
  DlConv2dParams p = DL_CONV2D_PARAMS (s->stride, s->padding);
  return dl_op_conv2d_backward (REC (tape), dx, dw, db, s->x, s->w, dy, &p, TRUE, error);
}

static gboolean
lora_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  Saved *s = data;
  DlTensor *dy = dout[0];
  DlTensor *dw = NULL, *db = NULL;
  g_autoptr (DlTensor) dx = NULL;
  /* the base op overwrites dx; the adapters add into it */
  if (dl_tape_needs_grad (tape, s->x) && !(dx = dl_tape_tensor_like (tape, "dx", s->x, error)))
    return FALSE;
  gboolean ok = dl_tape_grad_begin (tape, s->w, &dw, error) && dl_tape_grad_begin (tape, s->b, &db, error) &&
                base_backward (tape, s, dx, dw, db, dy, error);
  for (guint i = 0; ok && i < s->n; i++)
    ok = adapter_backward (tape, s, &s->a[i], dy, dx, error);
  ok = (!ok || !dx || dl_tape_add_grad (tape, s->x, dx, error)) && ok;
  ok = dl_tape_grad_finish (tape, s->w, dw, ok ? error : NULL) && ok;
  ok = dl_tape_grad_finish (tape, s->b, db, ok ? error : NULL) && ok;
  return ok;
}

/* ---- forward ---- */

static gboolean
should_record (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, const DlLoraAdapter *adapters, guint n)
{
  /* every input asked, none skipped: the tape notes the trained ones (the
   * fused step hands a parameter over after its first use, dl-tape.h) */
  DlTensor *in[] = { x, w, b };
  gboolean record = dl_tape_should_record (tape, in, 3);
  for (guint i = 0; i < n; i++)
    {
      DlTensor *ad[] = { adapters[i].down, adapters[i].up };
      record |= dl_tape_should_record (tape, ad, 2);
    }
  return record;
}

static void
misfit (const DlLoraAdapter *a, guint i, DlTensor *w, GError **error)
{
  g_autofree char *ds = dl_tensor_describe (a->down);
  g_autofree char *us = dl_tensor_describe (a->up);
  g_autofree char *ws = dl_tensor_describe (w);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "lora: adapter %u (down %s, up %s) does not fit weight %s",
               i, ds, us, ws);
}

/* H = scale · down(x) for one adapter, then y += up(H); returns H. */
static DlTensor *
add_adapter (DlTape *tape, Saved *s, SavedAdapter *a, DlTensor *y, GError **error)
{
  DlRecorder *rec = REC (tape);
  DlTensor *x = s->x;
  int64_t out = a->up2->shape[0], r = a->up2->shape[1];
  if (!s->conv)
    {
      int64_t in = a->down2->shape[1], rows = dl_tensor_numel (x) / in;
      int64_t shape[2] = { rows, r };
      g_autoptr (DlTensor) h = dl_tape_tensor (tape, "lora-h", DL_DTYPE_F32, 2, shape, error);
      if (!h ||
          !sliced_matmul (rec, rows, act (h, r, 0), act (x, in, 0), FALSE, whole (a->down2), TRUE, a->scale, 0.0f,
                          error) ||
          !sliced_matmul (rec, rows, act (y, out, 0), act (h, r, 0), FALSE, whole (a->up2), TRUE, 1.0f, 1.0f, error))
        return NULL;
      return g_steal_pointer (&h);
    }
  int64_t N = y->shape[0], P = y->shape[2] * y->shape[3];
  int64_t shape[4] = { N, r, y->shape[2], y->shape[3] };
  g_autoptr (DlTensor) h = dl_tape_tensor (tape, "lora-h", DL_DTYPE_F32, 4, shape, error);
  if (!h)
    return NULL;
  if (a->pointwise)
    {
      if (!sliced_matmul (rec, N, act (h, r, P), whole (a->down2), FALSE, act (x, x->shape[1], P), FALSE, a->scale,
                          0.0f, error))
        return NULL;
    }
  else
    {
      DlConv2dParams p = DL_CONV2D_PARAMS (s->stride, s->padding);
      /* the scaling in place: each element reads and writes only itself */
      if (!dl_op_conv2d (rec, h, x, a->down, NULL, &p, error) ||
          (a->scale != 1.0f && !dl_op_scale (rec, h, h, a->scale, error)))
        return NULL;
    }
  if (!sliced_matmul (rec, N, act (y, out, P), whole (a->up2), FALSE, act (h, r, P), FALSE, 1.0f, 1.0f, error))
    return NULL;
  return g_steal_pointer (&h);
}

/* y (the base op's fresh output) plus every adapter's term; records one entry. */
static DlTensor *
add_adapters (DlTape *tape, DlTensor *y, DlTensor *x, DlTensor *w, DlTensor *b, const DlLoraAdapter *adapters, guint n,
              gboolean conv, int stride, int padding, GError **error)
{
  gboolean record = should_record (tape, x, w, b, adapters, n);
  g_autoptr (LoraSaved) s = saved_new (x, w, b, adapters, n, conv, stride, padding, error);
  if (!s)
    return NULL;
  for (guint i = 0; i < n; i++)
    {
      SavedAdapter *a = &s->a[i];
      g_autoptr (DlTensor) h = add_adapter (tape, s, a, y, error);
      if (!h)
        return NULL;
      if (record && dl_tape_needs_grad (tape, a->up))
        a->h = g_steal_pointer (&h);
    }
  if (record)
    dl_tape_push (tape, &y, 1, lora_backward, g_steal_pointer (&s), saved_free);
  return dl_tensor_ref (y);
}

DlTensor *
dl_nn_lora_linear (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, const DlLoraAdapter *adapters, guint n_adapters,
                   GError **error)
{
  g_return_val_if_fail (tape && x && w && (adapters || !n_adapters), NULL);
  if (w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
    {
      g_autofree char *xs = dl_tensor_describe (x);
      g_autofree char *ws = dl_tensor_describe (w);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "linear: input %s does not fit weight %s", xs, ws);
      return NULL;
    }
  for (guint i = 0; i < n_adapters; i++)
    {
      DlTensor *down = adapters[i].down, *up = adapters[i].up;
      g_return_val_if_fail (down && up, NULL);
      if (down->ndim != 2 || down->shape[0] < 1 || down->shape[1] != w->shape[1] || up->ndim != 2 ||
          up->shape[0] != w->shape[0] || up->shape[1] != down->shape[0])
        {
          misfit (&adapters[i], i, w, error);
          return NULL;
        }
    }
  int64_t shape[DL_MAX_DIMS];
  memcpy (shape, x->shape, sizeof shape);
  shape[x->ndim - 1] = w->shape[0];
  g_autoptr (DlTensor) y = dl_tape_tensor (tape, w->name, x->dtype, x->ndim, shape, error);
  if (!y || !dl_op_linear (REC (tape), y, x, w, b, error))
    return NULL;
  return add_adapters (tape, y, x, w, b, adapters, n_adapters, FALSE, 1, 0, error);
}

DlTensor *
dl_nn_lora_conv2d (DlTape *tape, DlTensor *x, DlTensor *w, DlTensor *b, int stride, int padding,
                   const DlLoraAdapter *adapters, guint n_adapters, GError **error)
{
  g_return_val_if_fail (tape && x && w && (adapters || !n_adapters), NULL);
  DlConv2dParams p = DL_CONV2D_PARAMS (stride, padding);
  if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1])
    {
      g_autofree char *xs = dl_tensor_describe (x);
      g_autofree char *ws = dl_tensor_describe (w);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "conv2d: input %s does not fit weight %s", xs, ws);
      return NULL;
    }
  int64_t shape[4] = { x->shape[0], w->shape[0], dl_conv2d_out_size (x->shape[2], w->shape[2], &p),
                       dl_conv2d_out_size (x->shape[3], w->shape[3], &p) };
  for (guint i = 0; i < n_adapters; i++)
    {
      DlTensor *down = adapters[i].down, *up = adapters[i].up;
      g_return_val_if_fail (down && up, NULL);
      int64_t r = down->ndim == 4 ? down->shape[0] : 0;
      if (down->ndim != 4 || r < 1 || down->shape[1] != x->shape[1] || up->shape[0] != w->shape[0] ||
          dl_tensor_numel (up) != w->shape[0] * r || dl_conv2d_out_size (x->shape[2], down->shape[2], &p) != shape[2] ||
          dl_conv2d_out_size (x->shape[3], down->shape[3], &p) != shape[3])
        {
          misfit (&adapters[i], i, w, error);
          return NULL;
        }
    }
  g_autoptr (DlTensor) y = dl_tape_tensor (tape, w->name, x->dtype, 4, shape, error);
  if (!y || !dl_op_conv2d (REC (tape), y, x, w, b, &p, error))
    return NULL;
  return add_adapters (tape, y, x, w, b, adapters, n_adapters, TRUE, stride, padding, error);
}
