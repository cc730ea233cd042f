/* test-nn-lora.c: the fused LoRA op (dl_nn_lora_linear, dl_nn_lora_conv2d)
 * against the same module built from separate taped ops (base op, down, up,
 * scale, add: how adapters ran before the fused op), with two adapters on one
 * module: the output, the input's gradient and every parameter gradient (added
 * into buffers that already hold something), and which parameters the backward
 * reached.  Cases: linear with several leading dimensions; 1x1 convolutions
 * (the matrix-product path); 3x3 LoCon downs with stride 2 and with stride 1;
 * f16 activations and base weights with f32 adapters; a trained base weight;
 * frozen adapters and an input without gradient; activations cut into several
 * bindings; frozen adapters on a disabled tape (previews); misfit adapters. */
#include "dl-test-util.h"

#include "nn/dl-nn-lora.h"
#include "nn/dl-nn.h"

#include <math.h>

/* trained tensors: bit i of Case.train (w, b, down0, up0, down1, up1) */
enum
{
  P_W,
  P_B,
  P_DOWN0,
  P_UP0,
  P_DOWN1,
  P_UP1,
  N_PARAMS
};
#define ADAPTERS_TRAINED ((1u << P_DOWN0) | (1u << P_UP0) | (1u << P_DOWN1) | (1u << P_UP1))
#define BASE_TRAINED ((1u << P_W) | (1u << P_B))

typedef struct
{
  const char *name;
  gboolean conv;
  int xndim;
  int64_t xshape[4];
  int64_t out;            /* output features or channels */
  int k, stride, padding; /* conv: base kernel and geometry */
  int down_k;             /* conv: adapter down kernel */
  int64_t ranks[2];
  float scales[2];
  DlDType act; /* activations and base weight */
  guint train; /* P_* bits */
  gboolean watch_x;
  guint64 max_binding; /* the fused run's binding limit (0: the device's) */
} Case;

static const Case cases[] = {
  { "linear",
    FALSE,
    3,
    { 2, 5, 12 },
    7,
    0,
    1,
    0,
    0,
    { 3, 4 },
    { 0.5f, -1.25f },
    DL_DTYPE_F32,
    ADAPTERS_TRAINED | BASE_TRAINED,
    TRUE,
    0 },
  { "linear-partly-frozen",
    FALSE,
    2,
    { 9, 12 },
    7,
    0,
    1,
    0,
    0,
    { 3, 2 },
    { 2.0f, 0.75f },
    DL_DTYPE_F32,
    (1u << P_UP0) | (1u << P_DOWN1),
    FALSE,
    0 },
  { "linear-frozen-up",
    FALSE,
    2,
    { 9, 12 },
    7,
    0,
    1,
    0,
    0,
    { 3, 2 },
    { 2.0f, 0.75f },
    DL_DTYPE_F32,
    (1u << P_DOWN0) | (1u << P_DOWN1),
    TRUE,
    0 },
  { "linear-f16",
    FALSE,
    3,
    { 2, 5, 12 },
    7,
    0,
    1,
    0,
    0,
    { 3, 4 },
    { 0.5f, -1.25f },
    DL_DTYPE_F16,
    ADAPTERS_TRAINED,
    TRUE,
    0 },
  { "linear-sliced",
    FALSE,
    3,
    { 3, 10, 24 },
    7,
    0,
    1,
    0,
    0,
    { 3, 4 },
    { 0.5f, -1.25f },
    DL_DTYPE_F32,
    ADAPTERS_TRAINED | BASE_TRAINED,
    TRUE,
    1024 },
  { "conv1x1",
    TRUE,
    4,
    { 2, 6, 5, 5 },
    8,
    1,
    1,
    0,
    1,
    { 3, 4 },
    { 0.5f, -1.25f },
    DL_DTYPE_F32,
    ADAPTERS_TRAINED | BASE_TRAINED,
    TRUE,
    0 },
  { "conv1x1-f16",
    TRUE,
    4,
    { 2, 6, 5, 5 },
    8,
    1,
    1,
    0,
    1,
    { 3, 4 },
    { 0.5f, -1.25f },
    DL_DTYPE_F16,
    ADAPTERS_TRAINED,
    TRUE,
    0 },
  { "conv1x1-sliced",
    TRUE,
    4,
    { 3, 6, 5, 5 },
    4,
    1,
    1,
    0,
    1,
    { 3, 2 },
    { 0.5f, -1.25f },
    DL_DTYPE_F32,
    ADAPTERS_TRAINED,
    TRUE,
    1024 },
  { "conv1x1-no-dx",
    TRUE,
    4,
    { 2, 6, 5, 5 },
    8,
    1,
    1,
    0,
    1,
    { 3, 4 },
    { 0.5f, -1.25f },
    DL_DTYPE_F32,
    (1u << P_UP0) | (1u << P_DOWN1),
    FALSE,
    0 },
  { "locon3x3-stride2",
    TRUE,
    4,
    { 2, 4, 7, 7 },
    5,
    3,
    2,
    1,
    3,
    { 3, 2 },
    { 0.5f, -1.25f },
    DL_DTYPE_F32,
    ADAPTERS_TRAINED | BASE_TRAINED,
    TRUE,
    0 },
  { "locon3x3-frozen-up",
    TRUE,
    4,
    { 2, 4, 6, 6 },
    5,
    3,
    1,
    1,
    3,
    { 2, 3 },
    { 1.0f, 0.25f },
    DL_DTYPE_F32,
    (1u << P_DOWN0) | (1u << P_DOWN1),
    TRUE,
    0 },
  { "locon3x3-f16",
    TRUE,
    4,
    { 2, 4, 6, 6 },
    5,
    3,
    1,
    1,
    3,
    { 2, 3 },
    { 1.0f, 0.25f },
    DL_DTYPE_F16,
    ADAPTERS_TRAINED,
    TRUE,
    0 },
};

typedef struct
{
  float *y, *dx;
  int64_t ny, nx;
  float *grads[N_PARAMS];
  int64_t ngrad[N_PARAMS];
  gboolean reached[N_PARAMS];
} Result;

static void
result_clear (Result *r)
{
  g_free (r->y);
  g_free (r->dx);
  for (int i = 0; i < N_PARAMS; i++)
    g_free (r->grads[i]);
}

/* The module's tensors, the same for both runs (seeded). */
typedef struct
{
  DlTensor *x, *t[N_PARAMS], *R;
} Inputs;

static void
inputs_clear (Inputs *in)
{
  g_clear_pointer (&in->x, dl_tensor_unref);
  g_clear_pointer (&in->R, dl_tensor_unref);
  for (int i = 0; i < N_PARAMS; i++)
    g_clear_pointer (&in->t[i], dl_tensor_unref);
}

static DlTensor *
random_tensor (const char *name, DlDType dtype, int ndim, const int64_t *shape, guint32 seed)
{
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  g_autofree float *data = dl_test_random (n, seed, -1, 1);
  return dl_test_tensor (name, dtype, ndim, shape, data);
}

/* y's shape for the case */
static int
out_shape (const Case *c, int64_t *shape)
{
  memcpy (shape, c->xshape, sizeof c->xshape);
  if (!c->conv)
    {
      shape[c->xndim - 1] = c->out;
      return c->xndim;
    }
  shape[1] = c->out;
  for (int d = 2; d < 4; d++)
    shape[d] = (c->xshape[d] + 2 * c->padding - c->k) / c->stride + 1;
  return 4;
}

static void
inputs_make (const Case *c, Inputs *in)
{
  int64_t in_f = c->conv ? c->xshape[1] : c->xshape[c->xndim - 1];
  in->x = random_tensor ("x", c->act, c->xndim, c->xshape, 1);
  int64_t ys[4];
  int yn = out_shape (c, ys);
  in->R = random_tensor ("R", c->act, yn, ys, 2);
  if (c->conv)
    {
      int64_t ws[4] = { c->out, in_f, c->k, c->k };
      in->t[P_W] = random_tensor ("w", c->act, 4, ws, 3);
    }
  else
    {
      int64_t ws[2] = { c->out, in_f };
      in->t[P_W] = random_tensor ("w", c->act, 2, ws, 3);
    }
  in->t[P_B] = random_tensor ("b", c->act, 1, &c->out, 4);
  for (int i = 0; i < 2; i++)
    {
      int64_t r = c->ranks[i];
      int64_t ds[4] = { r, in_f, c->down_k, c->down_k }, us[4] = { c->out, r, 1, 1 };
      int nd = c->conv ? 4 : 2;
      in->t[P_DOWN0 + 2 * i] = random_tensor ("down", DL_DTYPE_F32, nd, ds, 5 + 2 * i);
      in->t[P_UP0 + 2 * i] = random_tensor ("up", DL_DTYPE_F32, nd, us, 6 + 2 * i);
    }
}

static DlTensor *
base_op (DlTape *tape, const Case *c, DlTensor *x, DlTensor *w, DlTensor *b, int stride, int padding, GError **error)
{
  return c->conv ? dl_nn_conv2d (tape, x, w, b, stride, padding, error) : dl_nn_linear (tape, x, w, b, error);
}

/* The module as separate taped ops. */
static DlTensor *
unfused (DlTape *tape, const Case *c, const Inputs *in, GError **error)
{
  g_autoptr (DlTensor) y = base_op (tape, c, in->x, in->t[P_W], in->t[P_B], c->stride, c->padding, error);
  for (int i = 0; y && i < 2; i++)
    {
      g_autoptr (DlTensor) h = base_op (tape, c, in->x, in->t[P_DOWN0 + 2 * i], NULL, c->stride, c->padding, error);
      g_autoptr (DlTensor) u = h ? base_op (tape, c, h, in->t[P_UP0 + 2 * i], NULL, 1, 0, error) : NULL;
      g_autoptr (DlTensor) s = u ? dl_nn_scale (tape, u, c->scales[i], error) : NULL;
      g_autoptr (DlTensor) sum = s ? dl_nn_add (tape, y, s, error) : NULL;
      g_clear_pointer (&y, dl_tensor_unref);
      y = g_steal_pointer (&sum);
    }
  return g_steal_pointer (&y);
}

static DlTensor *
fused (DlTape *tape, const Case *c, const Inputs *in, GError **error)
{
  DlLoraAdapter a[2] = {
    { in->t[P_DOWN0], in->t[P_UP0], c->scales[0] },
    { in->t[P_DOWN1], in->t[P_UP1], c->scales[1] },
  };
  return c->conv ? dl_nn_lora_conv2d (tape, in->x, in->t[P_W], in->t[P_B], c->stride, c->padding, a, 2, error)
                 : dl_nn_lora_linear (tape, in->x, in->t[P_W], in->t[P_B], a, 2, error);
}

static void
run (const Case *c, const Inputs *in, gboolean use_fused, Result *res)
{
  g_autoptr (GError) error = NULL;
  DlDevice *dev = dl_test_device ();
  g_autoptr (DlRecorder) rec = dl_recorder_new (dev, &error);
  g_assert_no_error (error);
  if (use_fused && c->max_binding)
    dl_recorder_set_max_binding_range (rec, c->max_binding);
  g_autoptr (DlArena) arena = dl_arena_new (dev, "lora-test", 4 << 20);
  g_autoptr (DlTape) tape = dl_tape_new (rec, arena);
  DlTensor *grads[N_PARAMS] = { NULL };
  for (int i = 0; i < N_PARAMS; i++)
    {
      if (!(c->train & (1u << i)))
        continue;
      DlTensor *p = in->t[i];
      grads[i] = dl_tensor_new (dev, "grad", DL_DTYPE_F32, p->ndim, p->shape, &error);
      g_assert_no_error (error);
      /* the backward adds into what the buffer holds */
      g_assert_true (dl_op_fill (rec, grads[i], 0.25, &error));
      dl_tape_set_param_grad (tape, p, grads[i]);
    }
  if (c->watch_x)
    dl_tape_watch (tape, in->x);
  g_autoptr (DlTensor) y = use_fused ? fused (tape, c, in, &error) : unfused (tape, c, in, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_needs_grad (tape, y));
  g_assert_true (dl_tape_backward (tape, y, in->R, &error));
  g_assert_no_error (error);
  g_assert_true (dl_recorder_finish (rec, &error));
  g_assert_no_error (error);

  res->y = dl_test_download (y);
  res->ny = dl_tensor_numel (y);
  if (c->watch_x)
    {
      g_autoptr (DlTensor) dx = dl_tape_get_grad (tape, in->x);
      g_assert_nonnull (dx);
      g_assert_true (dl_tensor_same_shape (dx, in->x));
      res->dx = dl_test_download (dx);
      res->nx = dl_tensor_numel (dx);
    }
  for (int i = 0; i < N_PARAMS; i++)
    {
      if (!grads[i])
        continue;
      res->grads[i] = dl_test_download (grads[i]);
      res->ngrad[i] = dl_tensor_numel (grads[i]);
      res->reached[i] = dl_tape_param_reached (tape, in->t[i]);
      dl_tensor_unref (grads[i]);
    }
}

/* max |got - want| <= rtol · max |want| */
static void
check (const char *what, const float *got, const float *want, int64_t n, double rtol)
{
  double scale = 0;
  for (int64_t i = 0; i < n; i++)
    scale = MAX (scale, fabs (want[i]));
  g_assert_cmpfloat (scale, >, 0);
  dl_test_assert_close (what, got, want, n, rtol * scale, 0);
}

static void
test_case (gconstpointer data)
{
  const Case *c = data;
  static const char *const names[N_PARAMS] = { "w", "b", "down0", "up0", "down1", "up1" };
  double rtol = c->act == DL_DTYPE_F16 ? 2e-2 : 1e-5;
  Inputs in = { 0 };
  inputs_make (c, &in);
  Result want = { 0 }, got = { 0 };
  run (c, &in, FALSE, &want);
  run (c, &in, TRUE, &got);

  g_assert_cmpint (got.ny, ==, want.ny);
  check ("y", got.y, want.y, got.ny, rtol);
  if (c->watch_x)
    check ("dx", got.dx, want.dx, got.nx, rtol);
  for (int i = 0; i < N_PARAMS; i++)
    {
      if (!(c->train & (1u << i)))
        continue;
      g_autofree char *what = g_strdup_printf ("d%s", names[i]);
      check (what, got.grads[i], want.grads[i], got.ngrad[i], rtol);
      g_assert_true (want.reached[i]);
      g_assert_true (got.reached[i]);
    }
  result_clear (&want);
  result_clear (&got);
  inputs_clear (&in);
}

/* Previews: adapters on a disabled tape record nothing, even trained ones. */
static void
test_disabled_tape (void)
{
  g_autoptr (GError) error = NULL;
  const Case *c = &cases[5]; /* conv1x1 */
  Inputs in = { 0 };
  inputs_make (c, &in);
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "lora-test", 4 << 20);
  g_autoptr (DlTape) tape = dl_tape_new (dl_test_recorder (), arena);
  g_autoptr (DlTensor) g =
    dl_tensor_new (dl_test_device (), "grad", DL_DTYPE_F32, in.t[P_UP0]->ndim, in.t[P_UP0]->shape, &error);
  g_assert_no_error (error);
  dl_tape_set_param_grad (tape, in.t[P_UP0], g);
  dl_tape_set_enabled (tape, FALSE);
  g_autoptr (DlTensor) y = fused (tape, c, &in, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) want = unfused (tape, c, &in, &error);
  g_assert_no_error (error);
  g_assert_false (dl_tape_needs_grad (tape, y));
  dl_test_finish ();
  g_autofree float *a = dl_test_download (y);
  g_autofree float *b = dl_test_download (want);
  check ("y (disabled tape)", a, b, dl_tensor_numel (y), 1e-5);
  inputs_clear (&in);
}

/* Adapters whose matrices do not fit the module fail with a message. */
static void
test_misfit (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "lora-test", 4 << 20);
  g_autoptr (DlTape) tape = dl_tape_new (dl_test_recorder (), arena);
  Inputs in = { 0 };
  inputs_make (&cases[0], &in);
  DlLoraAdapter bad[2] = { { in.t[P_DOWN0], in.t[P_UP0], 1.0f }, { in.t[P_DOWN0], in.t[P_UP1], 1.0f } };
  g_assert_null (dl_nn_lora_linear (tape, in.x, in.t[P_W], in.t[P_B], bad, 2, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "adapter 1"));
  g_clear_error (&error);
  inputs_clear (&in);

  /* a 3x3 down on an unpadded 1x1 module: its output is smaller than y */
  Case c = cases[5];
  c.down_k = 3;
  inputs_make (&c, &in);
  DlLoraAdapter k3[1] = { { in.t[P_DOWN0], in.t[P_UP0], 1.0f } };
  g_assert_null (dl_nn_lora_conv2d (tape, in.x, in.t[P_W], in.t[P_B], 1, 0, k3, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  inputs_clear (&in);
  dl_test_finish ();
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/nn/lora/%s", cases[i].name);
      dl_test_add_data (path, &cases[i], test_case);
    }
  dl_test_add ("/nn/lora/disabled-tape", test_disabled_tape);
  dl_test_add ("/nn/lora/misfit", test_misfit);
  return dl_test_run ();
}
