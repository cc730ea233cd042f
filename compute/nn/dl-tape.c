/* dl-tape.c: see dl-tape.h. */
#include "dl-config.h"

#include "nn/dl-tape.h"

#include "dl-error.h"
#include "ops/dl-ops.h"

typedef struct
{
  DlTensor **outputs; /* referenced */
  guint n_outputs;
  DlTapeBackwardFunc backward;
  gpointer data;
  GDestroyNotify destroy;
} TapeEntry;

struct _DlTape
{
  DlTape *root; /* where parameter gradients live (itself, or a checkpoint's parent) */
  DlRecorder *rec;
  DlArena *arena;
  gboolean enabled;
  DlDType act_dtype;
  GPtrArray *entries;  /* TapeEntry */
  GHashTable *needs;   /* DlTensor* set (referenced) */
  GHashTable *grads;   /* DlTensor* -> gradient DlTensor* (both referenced) */
  GHashTable *params;  /* param DlTensor* -> persistent gradient (both referenced) */
  GHashTable *reached; /* params whose gradient buffer a backward wrote (root only; not referenced) */
};

static void
entry_free (gpointer p)
{
  TapeEntry *e = p;
  for (guint i = 0; i < e->n_outputs; i++)
    dl_tensor_unref (e->outputs[i]);
  g_free (e->outputs);
  if (e->destroy && e->data)
    e->destroy (e->data);
  g_free (e);
}

static DlTape *
tape_new (DlRecorder *rec, DlArena *arena, DlTape *root)
{
  DlTape *t = g_new0 (DlTape, 1);
  t->root = root ? root : t;
  t->rec = rec;
  t->arena = dl_arena_ref (arena);
  t->enabled = TRUE;
  t->act_dtype = root ? root->act_dtype : DL_DTYPE_F32;
  t->entries = g_ptr_array_new_with_free_func (entry_free);
  t->needs = g_hash_table_new_full (NULL, NULL, (GDestroyNotify)dl_tensor_unref, NULL);
  t->grads = g_hash_table_new_full (NULL, NULL, (GDestroyNotify)dl_tensor_unref, (GDestroyNotify)dl_tensor_unref);
  t->params =
    root ? NULL : g_hash_table_new_full (NULL, NULL, (GDestroyNotify)dl_tensor_unref, (GDestroyNotify)dl_tensor_unref);
  t->reached = root ? NULL : g_hash_table_new (NULL, NULL);
  return t;
}

DlTape *
dl_tape_new (DlRecorder *rec, DlArena *arena)
{
  g_return_val_if_fail (rec != NULL && arena != NULL, NULL);
  return tape_new (rec, arena, NULL);
}

void
dl_tape_free (DlTape *tape)
{
  if (!tape)
    return;
  g_ptr_array_unref (tape->entries);
  g_hash_table_unref (tape->grads);
  g_hash_table_unref (tape->needs);
  if (tape->params)
    g_hash_table_unref (tape->params);
  if (tape->reached)
    g_hash_table_unref (tape->reached);
  dl_arena_unref (tape->arena);
  g_free (tape);
}

DlRecorder *
dl_tape_get_recorder (DlTape *tape)
{
  return tape->rec;
}

DlArena *
dl_tape_get_arena (DlTape *tape)
{
  return tape->arena;
}

DlDevice *
dl_tape_get_device (DlTape *tape)
{
  return dl_recorder_get_device (tape->rec);
}

void
dl_tape_set_enabled (DlTape *tape, gboolean enabled)
{
  tape->enabled = enabled;
}

gboolean
dl_tape_get_enabled (DlTape *tape)
{
  return tape->enabled;
}

void
dl_tape_set_activation_dtype (DlTape *tape, DlDType dtype)
{
  g_return_if_fail (dtype == DL_DTYPE_F32 || dtype == DL_DTYPE_F16);
  tape->act_dtype = dtype;
}

DlDType
dl_tape_get_activation_dtype (DlTape *tape)
{
  return tape->act_dtype;
}

/* The device's tuning.no_arena ($DREAMLOOM_NO_ARENA=1) gives every activation
 * its own allocation (no_arena_for: those whose name contains it): slower,
 * but it tells a memory-reuse hazard from an arithmetic bug. */
DlTensor *
dl_tape_tensor (DlTape *tape, const char *name, DlDType dtype, int ndim, const int64_t *shape, GError **error)
{
  const DlDeviceTuning *tuning = dl_device_get_tuning (dl_tape_get_device (tape));
  if (tuning->no_arena || (*tuning->no_arena_for && name && strstr (name, tuning->no_arena_for)))
    return dl_tensor_new (dl_tape_get_device (tape), name, dtype, ndim, shape, error);
  return dl_arena_tensor (tape->arena, name, dtype, ndim, shape, error);
}

DlTensor *
dl_tape_tensor_like (DlTape *tape, const char *name, const DlTensor *like, GError **error)
{
  return dl_tape_tensor (tape, name, like->dtype, like->ndim, like->shape, error);
}

static void
mark_needs (DlTape *tape, DlTensor *t)
{
  if (!g_hash_table_contains (tape->needs, t))
    g_hash_table_add (tape->needs, dl_tensor_ref (t));
}

void
dl_tape_watch (DlTape *tape, DlTensor *leaf)
{
  g_return_if_fail (tape != NULL && leaf != NULL);
  mark_needs (tape, leaf);
}

void
dl_tape_set_param_grad (DlTape *tape, DlTensor *param, DlTensor *grad)
{
  g_return_if_fail (tape != NULL && param != NULL && grad != NULL);
  g_return_if_fail (dl_tensor_numel (param) == dl_tensor_numel (grad));
  g_hash_table_replace (tape->root->params, dl_tensor_ref (param), dl_tensor_ref (grad));
}

DlTensor *
dl_tape_param_grad (DlTape *tape, DlTensor *param)
{
  if (!param)
    return NULL;
  return g_hash_table_lookup (tape->root->params, param);
}

DlTensor *
dl_tape_claim_param_grad (DlTape *tape, DlTensor *param)
{
  DlTensor *g = dl_tape_param_grad (tape, param);
  if (g)
    g_hash_table_add (tape->root->reached, param);
  return g;
}

gboolean
dl_tape_param_reached (DlTape *tape, DlTensor *param)
{
  return param && g_hash_table_contains (tape->root->reached, param);
}

gboolean
dl_tape_grad_begin (DlTape *tape, DlTensor *t, DlTensor **out, GError **error)
{
  *out = NULL;
  if (!t || !dl_tape_needs_grad (tape, t))
    return TRUE;
  DlTensor *buffer = dl_tape_claim_param_grad (tape, t);
  if (buffer)
    {
      *out = dl_tensor_ref (buffer);
      return TRUE;
    }
  g_autoptr (DlTensor) fresh = dl_tape_tensor_like (tape, "grad", t, error);
  if (!fresh || !dl_op_fill (tape->rec, fresh, 0.0, error))
    return FALSE;
  *out = g_steal_pointer (&fresh);
  return TRUE;
}

gboolean
dl_tape_grad_finish (DlTape *tape, DlTensor *t, DlTensor *g, GError **error)
{
  if (!g)
    return TRUE;
  gboolean ok = TRUE;
  if (dl_tape_param_grad (tape, t) != g)
    ok = dl_tape_add_grad (tape, t, g, error);
  dl_tensor_unref (g);
  return ok;
}

gboolean
dl_tape_needs_grad (DlTape *tape, DlTensor *t)
{
  if (!t)
    return FALSE;
  return g_hash_table_contains (tape->needs, t) || g_hash_table_contains (tape->root->params, t);
}

gboolean
dl_tape_should_record (DlTape *tape, DlTensor *const *inputs, guint n_inputs)
{
  if (!tape->enabled)
    return FALSE;
  for (guint i = 0; i < n_inputs; i++)
    if (dl_tape_needs_grad (tape, inputs[i]))
      return TRUE;
  return FALSE;
}

void
dl_tape_push (DlTape *tape, DlTensor *const *outputs, guint n_outputs, DlTapeBackwardFunc backward, gpointer data,
              GDestroyNotify destroy)
{
  g_return_if_fail (tape != NULL && backward != NULL && n_outputs > 0);
  TapeEntry *e = g_new0 (TapeEntry, 1);
  e->outputs = g_new0 (DlTensor *, n_outputs);
  e->n_outputs = n_outputs;
  for (guint i = 0; i < n_outputs; i++)
    {
      e->outputs[i] = dl_tensor_ref (outputs[i]);
      mark_needs (tape, outputs[i]);
    }
  e->backward = backward;
  e->data = data;
  e->destroy = destroy;
  g_ptr_array_add (tape->entries, e);
}

gboolean
dl_tape_add_grad (DlTape *tape, DlTensor *t, DlTensor *grad, GError **error)
{
  if (!t || !grad || !dl_tape_needs_grad (tape, t))
    return TRUE;
  DlTensor *param_grad = dl_tape_claim_param_grad (tape, t);
  if (param_grad)
    return dl_op_axpby (tape->rec, param_grad, grad, 1.0f, 1.0f, error);
  if (!dl_tensor_same_shape (t, grad))
    {
      g_autofree char *a = dl_tensor_describe (t);
      g_autofree char *b = dl_tensor_describe (grad);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "gradient %s does not fit tensor %s", b, a);
      return FALSE;
    }
  DlTensor *old = g_hash_table_lookup (tape->grads, t);
  if (!old)
    {
      g_hash_table_insert (tape->grads, dl_tensor_ref (t), dl_tensor_ref (grad));
      return TRUE;
    }
  /* never in place: a backward may hand the same tensor to several inputs */
  g_autoptr (DlTensor) sum = dl_tape_tensor_like (tape, "grad-sum", old, error);
  if (!sum || !dl_op_add (tape->rec, sum, old, grad, error))
    return FALSE;
  g_hash_table_replace (tape->grads, dl_tensor_ref (t), g_steal_pointer (&sum));
  return TRUE;
}

static gboolean
run_backward (DlTape *tape, GError **error)
{
  while (tape->entries->len > 0)
    {
      TapeEntry *e = g_ptr_array_steal_index (tape->entries, tape->entries->len - 1);
      g_autofree DlTensor **dout = g_new0 (DlTensor *, e->n_outputs);
      gboolean any = FALSE;
      for (guint i = 0; i < e->n_outputs; i++)
        {
          gpointer key = NULL, value = NULL;
          if (g_hash_table_steal_extended (tape->grads, e->outputs[i], &key, &value))
            {
              dl_tensor_unref (key);
              dout[i] = value;
              any = TRUE;
            }
        }
      gboolean ok = !any || e->backward (tape, e->data, dout, error);
      for (guint i = 0; i < e->n_outputs; i++)
        if (dout[i])
          dl_tensor_unref (dout[i]);
      entry_free (e);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

gboolean
dl_tape_backward_multi (DlTape *tape, DlTensor *const *outputs, DlTensor *const *grads, guint n, GError **error)
{
  g_return_val_if_fail (tape != NULL, FALSE);
  for (guint i = 0; i < n; i++)
    if (grads[i] && !dl_tape_add_grad (tape, outputs[i], grads[i], error))
      return FALSE;
  return run_backward (tape, error);
}

gboolean
dl_tape_backward (DlTape *tape, DlTensor *output, DlTensor *grad_output, GError **error)
{
  return dl_tape_backward_multi (tape, &output, &grad_output, 1, error);
}

DlTensor *
dl_tape_get_grad (DlTape *tape, DlTensor *leaf)
{
  DlTensor *g = g_hash_table_lookup (tape->grads, leaf);
  return g ? dl_tensor_ref (g) : NULL;
}

/* ---- gradient checkpointing ---- */

typedef struct
{
  DlTapeBlockFunc block;
  gpointer block_data;
  GDestroyNotify block_destroy;
  DlTensor **inputs; /* referenced */
  guint n_inputs;
  guint n_outputs;
} CheckpointData;

static void
checkpoint_data_free (gpointer p)
{
  CheckpointData *c = p;
  for (guint i = 0; i < c->n_inputs; i++)
    if (c->inputs[i])
      dl_tensor_unref (c->inputs[i]);
  g_free (c->inputs);
  if (c->block_destroy && c->block_data)
    c->block_destroy (c->block_data);
  g_free (c);
}

static void
unref_outputs (DlTensor **outputs, guint n)
{
  for (guint i = 0; i < n; i++)
    g_clear_pointer (&outputs[i], dl_tensor_unref);
}

static gboolean
checkpoint_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  CheckpointData *c = data;
  DlTape *sub = tape_new (tape->rec, tape->arena, tape->root);
  for (guint i = 0; i < c->n_inputs; i++)
    if (dl_tape_needs_grad (tape, c->inputs[i]))
      dl_tape_watch (sub, c->inputs[i]);
  g_autofree DlTensor **outputs = g_new0 (DlTensor *, c->n_outputs);
  gboolean ok = c->block (sub, c->block_data, c->inputs, outputs, error) &&
                dl_tape_backward_multi (sub, outputs, dout, c->n_outputs, error);
  unref_outputs (outputs, c->n_outputs);
  for (guint i = 0; ok && i < c->n_inputs; i++)
    {
      g_autoptr (DlTensor) g = c->inputs[i] ? dl_tape_get_grad (sub, c->inputs[i]) : NULL;
      if (g)
        ok = dl_tape_add_grad (tape, c->inputs[i], g, error);
    }
  dl_tape_free (sub);
  return ok;
}

gboolean
dl_tape_checkpoint (DlTape *tape, DlTapeBlockFunc block, gpointer data, GDestroyNotify destroy, DlTensor *const *inputs,
                    guint n_inputs, DlTensor **outputs, guint n_outputs, GError **error)
{
  g_return_val_if_fail (tape != NULL && block != NULL && outputs != NULL, FALSE);
  gboolean was_enabled = tape->enabled;
  tape->enabled = FALSE;
  gboolean ok = block (tape, data, inputs, outputs, error);
  tape->enabled = was_enabled;
  if (!ok || !was_enabled)
    {
      if (!ok)
        unref_outputs (outputs, n_outputs);
      if (destroy && data)
        destroy (data);
      return ok;
    }
  CheckpointData *c = g_new0 (CheckpointData, 1);
  c->block = block;
  c->block_data = data;
  c->block_destroy = destroy;
  c->n_inputs = n_inputs;
  c->n_outputs = n_outputs;
  c->inputs = g_new0 (DlTensor *, n_inputs);
  for (guint i = 0; i < n_inputs; i++)
    c->inputs[i] = inputs[i] ? dl_tensor_ref (inputs[i]) : NULL;
  dl_tape_push (tape, outputs, n_outputs, checkpoint_backward, c, checkpoint_data_free);
  return TRUE;
}
