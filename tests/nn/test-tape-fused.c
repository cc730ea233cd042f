/* test-tape-fused.c: the tape's fused parameters (dl_tape_set_param_fused,
 * the optimizer step of kohya's --fused_backward_pass) on a small graph of
 * linear layers, one of them reused and two in a checkpointed block:
 *  - each parameter is handed over exactly once, after every entry that uses
 *    it has run (W1, used first at the start and again inside the block, comes
 *    last), with the same gradient bits as a persistent gradient buffer gets;
 *  - with and without checkpointing;
 *  - a parameter the loss never reaches is not handed over;
 *  - a gradient that arrives after its parameter was handed over, or one
 *    written without the op noting the use, fails the backward with a message
 *    naming the tensor (never a silently lost or half-applied step). */
#include "dl-test-util.h"

#include <string.h>

#include "nn/dl-nn.h"
#include "ops/dl-ops.h"

enum
{
  W1,
  W2,
  W3,
  W4,
  UNUSED,
  N_PARAMS
};
static const char *const param_names[N_PARAMS] = { "W1", "W2", "W3", "W4", "unused" };

#define D 8
#define ROWS 4

typedef struct
{
  DlTensor *w[N_PARAMS];
  DlTensor *x, *dy;
} Graph;

static void
graph_init (Graph *g)
{
  int64_t wshape[2] = { D, D }, xshape[2] = { ROWS, D };
  for (int i = 0; i < N_PARAMS; i++)
    {
      g_autofree float *v = dl_test_random (D * D, 100 + i, -0.5f, 0.5f);
      g->w[i] = dl_test_tensor (param_names[i], DL_DTYPE_F32, 2, wshape, v);
    }
  g_autofree float *x = dl_test_random (ROWS * D, 7, -1.0f, 1.0f);
  g_autofree float *dy = dl_test_random (ROWS * D, 8, -1.0f, 1.0f);
  g->x = dl_test_tensor ("x", DL_DTYPE_F32, 2, xshape, x);
  g->dy = dl_test_tensor ("dy", DL_DTYPE_F32, 2, xshape, dy);
}

static void
graph_clear (Graph *g)
{
  for (int i = 0; i < N_PARAMS; i++)
    dl_tensor_unref (g->w[i]);
  dl_tensor_unref (g->x);
  dl_tensor_unref (g->dy);
}

/* the block: a = h W2^T, then c = a W1^T (W1 again), then c W4^T */
static gboolean
block (DlTape *tape, gpointer data, DlTensor *const *in, DlTensor **out, GError **error)
{
  Graph *g = data;
  g_autoptr (DlTensor) a = dl_nn_linear (tape, in[0], g->w[W2], NULL, error);
  g_autoptr (DlTensor) c = a ? dl_nn_linear (tape, a, g->w[W1], NULL, error) : NULL;
  *out = c ? dl_nn_linear (tape, c, g->w[W4], NULL, error) : NULL;
  return *out != NULL;
}

/* y = block(x W1^T) W3^T; the unused parameter is trainable but not in the graph */
static DlTensor *
forward (DlTape *tape, Graph *g, gboolean checkpoint, GError **error)
{
  g_autoptr (DlTensor) h = dl_nn_linear (tape, g->x, g->w[W1], NULL, error);
  if (!h)
    return NULL;
  g_autoptr (DlTensor) b = NULL;
  DlTensor *in[1] = { h };
  if (checkpoint ? !dl_tape_checkpoint (tape, block, g, NULL, in, 1, &b, 1, error) : !block (tape, g, in, &b, error))
    return NULL;
  return dl_nn_linear (tape, b, g->w[W3], NULL, error);
}

static DlTape *
new_tape (void)
{
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-tape-fused", 1u << 20);
  return dl_tape_new (dl_test_recorder (), arena);
}

/* the gradients through persistent buffers, downloaded */
static void
reference_grads (Graph *g, gboolean checkpoint, float *grads[N_PARAMS])
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTape) tape = new_tape ();
  DlTensor *buf[N_PARAMS];
  for (int i = 0; i < N_PARAMS; i++)
    {
      buf[i] = dl_tensor_new (dl_test_device (), "grad", DL_DTYPE_F32, 2, g->w[i]->shape, &error);
      g_assert_no_error (error);
      g_assert_true (dl_op_fill (dl_test_recorder (), buf[i], 0.0, &error));
      dl_tape_set_param_grad (tape, g->w[i], buf[i]);
    }
  g_autoptr (DlTensor) y = forward (tape, g, checkpoint, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_backward (tape, y, g->dy, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  for (int i = 0; i < N_PARAMS; i++)
    {
      grads[i] = dl_test_download (buf[i]);
      dl_tensor_unref (buf[i]);
    }
}

typedef struct
{
  Graph *g;
  GString *order;             /* names handed over, in order */
  DlTensor *copies[N_PARAMS]; /* what each gradient held */
} Handed;

static gboolean
on_done (DlTape *tape, DlTensor *param, DlTensor *grad, gpointer user_data, GError **error)
{
  Handed *h = user_data;
  int i = 0;
  while (i < N_PARAMS && h->g->w[i] != param)
    i++;
  g_assert_cmpint (i, <, N_PARAMS);
  g_assert_null (h->copies[i]); /* once */
  g_string_append_printf (h->order, "%s%s", h->order->len ? " " : "", param_names[i]);
  /* copy it out: the tape drops it once this returns */
  h->copies[i] = dl_tensor_new (dl_tape_get_device (tape), "copy", DL_DTYPE_F32, 2, grad->shape, error);
  return h->copies[i] && dl_op_copy (dl_tape_get_recorder (tape), h->copies[i], grad, error);
}

static void
check_fused (gboolean checkpoint)
{
  g_autoptr (GError) error = NULL;
  Graph g;
  graph_init (&g);
  float *want[N_PARAMS];
  reference_grads (&g, checkpoint, want);

  Handed h = { .g = &g, .order = g_string_new (NULL) };
  {
    g_autoptr (DlTape) tape = new_tape ();
    for (int i = 0; i < N_PARAMS; i++)
      dl_tape_set_param_fused (tape, g.w[i]);
    dl_tape_set_param_done_func (tape, on_done, &h);
    g_autoptr (DlTensor) y = forward (tape, &g, checkpoint, &error);
    g_assert_no_error (error);
    for (int i = 0; i < N_PARAMS; i++)
      g_assert_null (dl_tape_param_grad (tape, g.w[i])); /* nothing made yet */
    g_assert_true (dl_tape_backward (tape, y, g.dy, &error));
    g_assert_no_error (error);
    for (int i = 0; i < N_PARAMS; i++)
      g_assert_null (dl_tape_param_grad (tape, g.w[i])); /* every gradient dropped */
    g_assert_false (dl_tape_param_reached (tape, g.w[UNUSED]));
  }
  dl_test_finish ();
  g_test_message ("handed over (checkpointing %s): %s", checkpoint ? "on" : "off", h.order->str);
  /* backward order: W3, then the block's W4 and W2, W1 last (its first use is the first op) */
  g_assert_cmpstr (h.order->str, ==, "W3 W4 W2 W1");
  for (int i = 0; i < N_PARAMS; i++)
    {
      if (i == UNUSED)
        {
          g_assert_null (h.copies[i]);
        }
      else
        {
          g_autofree float *got = dl_test_download (h.copies[i]);
          g_assert_cmpmem (got, D * D * sizeof (float), want[i], D * D * sizeof (float));
          dl_tensor_unref (h.copies[i]);
        }
      g_free (want[i]);
    }
  g_string_free (h.order, TRUE);
  graph_clear (&g);
}

static void
test_handed_over (void)
{
  check_fused (FALSE);
}

static void
test_handed_over_checkpointed (void)
{
  check_fused (TRUE);
}

/* an entry whose backward adds into a parameter's gradient without its op
 * having noted the use: pushed first, it runs last */
static gboolean
sneaky_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  (void)dout;
  DlTensor *w = data;
  return dl_tape_add_grad (tape, w, w, error);
}

static void
check_unnoted (int param, const char *message)
{
  g_autoptr (GError) error = NULL;
  Graph g;
  graph_init (&g);
  Handed h = { .g = &g, .order = g_string_new (NULL) };
  {
    g_autoptr (DlTape) tape = new_tape ();
    for (int i = 0; i < N_PARAMS; i++)
      dl_tape_set_param_fused (tape, g.w[i]);
    dl_tape_set_param_done_func (tape, on_done, &h);
    /* the sneaky entry's output feeds x's consumer: give x a gradient */
    dl_tape_watch (tape, g.x);
    dl_tape_push (tape, &g.x, 1, sneaky_backward, g.w[param], NULL);
    g_autoptr (DlTensor) y = forward (tape, &g, FALSE, &error);
    g_assert_no_error (error);
    g_assert_false (dl_tape_backward (tape, y, g.dy, &error));
    g_assert_nonnull (error);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, message));
    g_assert_nonnull (strstr (error->message, param_names[param]));
  }
  dl_test_finish ();
  for (int i = 0; i < N_PARAMS; i++)
    g_clear_pointer (&h.copies[i], dl_tensor_unref);
  g_string_free (h.order, TRUE);
  graph_clear (&g);
}

static void
test_late_gradient (void)
{
  check_unnoted (W1, "arrived after its optimizer step");
}

static void
test_unnoted_gradient (void)
{
  check_unnoted (UNUSED, "no use of it was noted");
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/tape-fused/handed-over", test_handed_over);
  dl_test_add ("/tape-fused/handed-over-checkpointed", test_handed_over_checkpointed);
  dl_test_add ("/tape-fused/late-gradient", test_late_gradient);
  dl_test_add ("/tape-fused/unnoted-gradient", test_unnoted_gradient);
  return dl_test_run ();
}
