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

/* A trained parameter whose gradient is made when first written and handed
 * over when complete (dl_tape_set_param_done_func): `first` is the index of
 * the first entry of its tape that may use it. */
typedef struct
{
  DlTensor *param; /* not referenced: the root's params holds it */
  guint first;
} FirstUse;

struct _DlTape
{
  DlTape *root;       /* where parameter gradients live (itself, or a checkpoint's parent) */
  DlTape *parent;     /* the tape whose checkpoint entry this one reruns (NULL: the root) */
  guint parent_entry; /* that entry's index in the parent */
  DlRecorder *rec;
  DlArena *arena;
  gboolean enabled;
  DlDType act_dtype;
  GPtrArray *entries;  /* TapeEntry */
  GHashTable *needs;   /* DlTensor* set (referenced) */
  GHashTable *grads;   /* DlTensor* -> gradient DlTensor* (both referenced) */
  GHashTable *params;  /* param DlTensor* -> persistent gradient (both referenced) */
  GHashTable *reached; /* params whose gradient buffer a backward wrote (root only; not referenced) */
  guint running_entry; /* the index of the entry whose backward runs */
  int in_checkpoint;   /* > 0 while a checkpointed block runs unrecorded */
  /* the fused step: the root's done function; every tape's first uses (param
   * -> index + 1, and the same in order of index) */
  DlTapeParamDoneFunc done;
  gpointer done_data;
  GHashTable *first_use;
  GArray *uses;            /* FirstUse */
  GHashTable *fused;       /* the root's fused parameters (not referenced) */
  GHashTable *done_params; /* the root's parameters handed over (not referenced) */
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
  t->first_use = g_hash_table_new (NULL, NULL);
  t->uses = g_array_new (FALSE, FALSE, sizeof (FirstUse));
  t->fused = root ? NULL : g_hash_table_new (NULL, NULL);
  t->done_params = root ? NULL : g_hash_table_new (NULL, NULL);
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
  if (tape->done_params)
    g_hash_table_unref (tape->done_params);
  if (tape->fused)
    g_hash_table_unref (tape->fused);
  g_hash_table_unref (tape->first_use);
  g_array_unref (tape->uses);
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

void
dl_tape_set_param_fused (DlTape *tape, DlTensor *param)
{
  g_return_if_fail (tape != NULL && param != NULL);
  g_hash_table_replace (tape->root->params, dl_tensor_ref (param), NULL);
  g_hash_table_add (tape->root->fused, param);
}

void
dl_tape_set_param_done_func (DlTape *tape, DlTapeParamDoneFunc func, gpointer user_data)
{
  g_return_if_fail (tape != NULL && tape->root == tape);
  tape->done = func;
  tape->done_data = user_data;
}

DlTensor *
dl_tape_param_grad (DlTape *tape, DlTensor *param)
{
  if (!param)
    return NULL;
  return g_hash_table_lookup (tape->root->params, param);
}

/* The gradient buffer of `param` for a backward about to add into it, noted as
 * reached (a trained tensor the loss never reaches has no gradient, as in
 * torch, where .grad stays None: the optimizer skips it); a fused parameter's
 * is made (zeroed) on its first write.  *out NULL: not a trained parameter. */
static gboolean
claim_param_grad (DlTape *tape, DlTensor *param, DlTensor **out, GError **error)
{
  DlTape *root = tape->root;
  gpointer g = NULL;
  *out = NULL;
  if (!param || !g_hash_table_lookup_extended (root->params, param, NULL, &g))
    return TRUE;
  if (!g)
    {
      if (g_hash_table_contains (root->done_params, param))
        {
          /* its step was taken: a use the first-use count missed (an op that
           * asks whether to record only after pushing); never silently */
          g_set_error (error, DL_ERROR, DL_ERROR_FAILED,
                       "fused backward pass: a gradient of %s arrived after its optimizer step",
                       param->name ? param->name : "a trained tensor");
          return FALSE;
        }
      g_autoptr (DlTensor) fresh = dl_tape_tensor (root, "param-grad", DL_DTYPE_F32, param->ndim, param->shape, error);
      if (!fresh || !dl_op_fill (root->rec, fresh, 0.0, error))
        return FALSE;
      g = fresh;
      g_hash_table_replace (root->params, dl_tensor_ref (param), g_steal_pointer (&fresh));
    }
  g_hash_table_add (root->reached, param);
  *out = g;
  return TRUE;
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
  DlTensor *buffer = NULL;
  if (!claim_param_grad (tape, t, &buffer, error))
    return FALSE;
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

/* The fused step: note the trained parameters among an op's inputs with the
 * index of the entry it will push (or of the checkpoint entry of the block that
 * runs unrecorded).  Asked before an op pushes, so the index is never past the
 * parameter's first entry.  In a checkpoint's rerun, a parameter first used by
 * that checkpoint's entry in the parent is noted again, at its index here: its
 * gradient is complete before the whole block's is. */
static void
note_first_uses (DlTape *tape, DlTensor *const *inputs, guint n_inputs)
{
  DlTape *root = tape->root;
  if (!root->done || (!tape->enabled && !tape->in_checkpoint))
    return;
  for (guint i = 0; i < n_inputs; i++)
    {
      DlTensor *t = inputs[i];
      if (!t || !g_hash_table_contains (root->fused, t) || g_hash_table_contains (tape->first_use, t))
        continue;
      if (tape->parent && GPOINTER_TO_UINT (g_hash_table_lookup (tape->parent->first_use, t)) != tape->parent_entry + 1)
        continue;
      FirstUse u = { .param = t, .first = tape->entries->len };
      g_hash_table_insert (tape->first_use, t, GUINT_TO_POINTER (u.first + 1));
      g_array_append_val (tape->uses, u);
    }
}

gboolean
dl_tape_should_record (DlTape *tape, DlTensor *const *inputs, guint n_inputs)
{
  note_first_uses (tape, inputs, n_inputs);
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
  DlTensor *param_grad = NULL;
  if (!claim_param_grad (tape, t, &param_grad, error))
    return FALSE;
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

/* The fused step: hand every parameter of this tape first used at entry
 * `index` or later to the done function (the backward has run every entry that
 * uses it) and drop the tape's reference to its gradient.  A parameter the loss
 * never reached gets no step (torch: its .grad stays None). */
static gboolean
hand_over_from (DlTape *tape, guint index, GError **error)
{
  DlTape *root = tape->root;
  while (tape->uses->len > 0)
    {
      FirstUse u = g_array_index (tape->uses, FirstUse, tape->uses->len - 1);
      if (u.first < index)
        break;
      g_array_set_size (tape->uses, tape->uses->len - 1);
      if (g_hash_table_contains (root->done_params, u.param))
        continue;
      g_hash_table_add (root->done_params, u.param);
      DlTensor *g = g_hash_table_lookup (root->params, u.param);
      if (!g)
        continue;
      g_autoptr (DlTensor) grad = dl_tensor_ref (g);
      g_hash_table_replace (root->params, dl_tensor_ref (u.param), NULL);
      if (!root->done (root, u.param, grad, root->done_data, error))
        return FALSE;
    }
  return TRUE;
}

/* After the root's backward: a gradient made but never handed over would be a
 * step silently lost. */
static gboolean
check_all_handed_over (DlTape *tape, GError **error)
{
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, tape->params);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (value && g_hash_table_contains (tape->fused, key))
      {
        DlTensor *param = key;
        g_set_error (error, DL_ERROR, DL_ERROR_FAILED,
                     "fused backward pass: the gradient of %s was written but no use of it was noted",
                     param->name ? param->name : "a trained tensor");
        return FALSE;
      }
  return TRUE;
}

static gboolean
run_backward (DlTape *tape, GError **error)
{
  gboolean fused = tape->root->done != NULL;
  while (tape->entries->len > 0)
    {
      guint index = tape->entries->len - 1;
      tape->running_entry = index;
      TapeEntry *e = g_ptr_array_steal_index (tape->entries, index);
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
      if (!ok || (fused && !hand_over_from (tape, index, error)))
        return FALSE;
    }
  if (fused && (!hand_over_from (tape, 0, error) || (tape->root == tape && !check_all_handed_over (tape, error))))
    return FALSE;
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
  sub->parent = tape;
  sub->parent_entry = tape->running_entry;
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
  tape->in_checkpoint += was_enabled;
  gboolean ok = block (tape, data, inputs, outputs, error);
  tape->in_checkpoint -= was_enabled;
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
