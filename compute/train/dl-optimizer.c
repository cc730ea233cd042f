/* dl-optimizer.c: see dl-optimizer.h. */
#include "dl-config.h"

#include "train/dl-optimizer.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "ops/dl-ops.h"
#include "ops/dl-op-adamw8bit.h"
#include "train/dl-adamw8bit-io.h"

typedef struct
{
  char *name;
  double weight_decay;
} Group;

typedef struct
{
  char *name;
  DlTensor *param, *grad, *m, *v;
  DlTensor *model;     /* the f16 tensor the forward reads, or NULL (param itself) */
  DlAdamW8bitState *q; /* 8-bit moments instead of m and v, or NULL */
  guint group;
  guint64 steps;    /* AdamW steps applied to this tensor (torch's state["step"]) */
  gboolean reached; /* the loss reached it since the last zero_grad */
  guint index;      /* in entries */
  DlTensor *hyper;  /* the fused step's constants (not referenced: one of hypers) */
} Entry;

/* one buffer of per-step constants per (group, step count) used in a step */
typedef struct
{
  guint group;
  guint64 step;
  DlTensor *hyper;
} Hyper;

struct _DlOptimizer
{
  DlDevice *device;
  double beta1, beta2, eps;
  GPtrArray *grad_blocks; /* the gradients live in a few large buffers (views into them) */
  GArray *groups;         /* Group */
  GPtrArray *entries;     /* Entry */
  GHashTable *by_name;
  GPtrArray *hypers; /* Hyper*, reused between steps */
  gboolean eightbit;
  DlTensor *codebook; /* the 8-bit maps, once */
  /* the fused step: each tensor's gradient norm and clip coefficient (f32 [2 n]),
   * the entries by the tensor the tape gives gradients to, and the clip norm */
  DlTensor *fused_norms;
  GHashTable *by_tensor;
  double fused_max_norm;
};

static void
entry_free (gpointer p)
{
  Entry *e = p;
  g_free (e->name);
  g_clear_pointer (&e->param, dl_tensor_unref);
  g_clear_pointer (&e->grad, dl_tensor_unref);
  g_clear_pointer (&e->m, dl_tensor_unref);
  g_clear_pointer (&e->v, dl_tensor_unref);
  g_clear_pointer (&e->model, dl_tensor_unref);
  g_clear_pointer (&e->q, dl_adamw8bit_state_free);
  g_free (e);
}

static void
hyper_free (gpointer p)
{
  Hyper *h = p;
  dl_tensor_unref (h->hyper);
  g_free (h);
}

static void
group_clear (gpointer p)
{
  g_free (((Group *)p)->name);
}

DlOptimizer *
dl_optimizer_new (DlDevice *device, double beta1, double beta2, double eps)
{
  g_return_val_if_fail (device != NULL, NULL);
  DlOptimizer *opt = g_new0 (DlOptimizer, 1);
  opt->device = device;
  opt->beta1 = beta1;
  opt->beta2 = beta2;
  opt->eps = eps;
  opt->groups = g_array_new (FALSE, TRUE, sizeof (Group));
  g_array_set_clear_func (opt->groups, group_clear);
  opt->entries = g_ptr_array_new_with_free_func (entry_free);
  opt->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  opt->hypers = g_ptr_array_new_with_free_func (hyper_free);
  opt->grad_blocks = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  return opt;
}

void
dl_optimizer_free (DlOptimizer *opt)
{
  if (!opt)
    return;
  g_hash_table_unref (opt->by_name);
  g_clear_pointer (&opt->by_tensor, g_hash_table_unref);
  g_clear_pointer (&opt->fused_norms, dl_tensor_unref);
  g_ptr_array_unref (opt->entries);
  g_ptr_array_unref (opt->hypers);
  g_ptr_array_unref (opt->grad_blocks);
  g_clear_pointer (&opt->codebook, dl_tensor_unref);
  g_array_unref (opt->groups);
  g_free (opt);
}

guint
dl_optimizer_add_group (DlOptimizer *opt, const char *name, double weight_decay)
{
  Group g = { .name = g_strdup (name), .weight_decay = weight_decay };
  g_array_append_val (opt->groups, g);
  return opt->groups->len - 1;
}

guint
dl_optimizer_get_n_groups (DlOptimizer *opt)
{
  return opt->groups->len;
}

const char *
dl_optimizer_get_group_name (DlOptimizer *opt, guint group)
{
  g_return_val_if_fail (group < opt->groups->len, NULL);
  return g_array_index (opt->groups, Group, group).name;
}

static DlTensor *
zeroed_like (DlOptimizer *opt, DlRecorder *rec, const char *what, const char *name, DlTensor *like, GError **error)
{
  g_autofree char *tname = g_strconcat (what, ".", name, NULL);
  g_autoptr (DlTensor) t = dl_tensor_new (opt->device, tname, DL_DTYPE_F32, like->ndim, like->shape, error);
  if (!t || !dl_op_fill (rec, t, 0.0, error))
    return NULL;
  return g_steal_pointer (&t);
}

void
dl_optimizer_set_8bit (DlOptimizer *opt, gboolean eightbit)
{
  opt->eightbit = eightbit;
}

gboolean
dl_optimizer_get_8bit (DlOptimizer *opt)
{
  return opt->eightbit;
}

/* bitsandbytes optim/optimizer.py: tensors smaller than min_8bit_size keep 32-bit state */
#define MIN_8BIT_SIZE 4096

guint64
dl_optimizer_tensor_bytes (DlDevice *device, int64_t numel, gboolean eightbit, gboolean value, gboolean gradient)
{
  guint64 n = (guint64)MAX (numel, 0), f32 = dl_device_allocation_size (device, 4 * n);
  guint64 moments = eightbit && numel >= MIN_8BIT_SIZE ? dl_adamw8bit_state_device_bytes (device, numel) : 2 * f32;
  /* the gradients share blocks (grad_block_elems): no rounding per tensor */
  return moments + (value ? f32 : 0) + (gradient ? 4 * n : 0);
}

gboolean
dl_optimizer_add_with_copy (DlOptimizer *opt, DlRecorder *rec, const char *name, DlTensor *param, DlTensor *model,
                            guint group, GError **error)
{
  g_return_val_if_fail (opt != NULL && name != NULL && param != NULL, FALSE);
  g_return_val_if_fail (group < opt->groups->len, FALSE);
  g_return_val_if_fail (param->dtype == DL_DTYPE_F32, FALSE);
  g_return_val_if_fail (!model || dl_tensor_numel (model) == dl_tensor_numel (param), FALSE);
  if (g_hash_table_contains (opt->by_name, name))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "the trained tensor %s is listed twice", name);
      return FALSE;
    }
  Entry *e = g_new0 (Entry, 1);
  e->name = g_strdup (name);
  e->param = dl_tensor_ref (param);
  e->model = model && model != param ? dl_tensor_ref (model) : NULL;
  e->group = group;
  int64_t n = dl_tensor_numel (param);
  gboolean ok;
  if (opt->eightbit && n >= MIN_8BIT_SIZE)
    {
      if (!opt->codebook && !(opt->codebook = dl_adamw8bit_codebook_new (opt->device, error)))
        {
          entry_free (e);
          return FALSE;
        }
      ok = (e->q = dl_adamw8bit_state_new (opt->device, name, n, error)) && dl_adamw8bit_state_zero (rec, e->q, error);
    }
  else
    {
      ok = (e->m = zeroed_like (opt, rec, "adam_m", name, param, error)) &&
           (e->v = zeroed_like (opt, rec, "adam_v", name, param, error));
    }
  if (!ok)
    {
      entry_free (e);
      return FALSE;
    }
  e->index = opt->entries->len;
  g_ptr_array_add (opt->entries, e);
  g_hash_table_insert (opt->by_name, e->name, e);
  g_clear_pointer (&opt->by_tensor, g_hash_table_unref);
  g_clear_pointer (&opt->fused_norms, dl_tensor_unref);
  return TRUE;
}

gboolean
dl_optimizer_add (DlOptimizer *opt, DlRecorder *rec, const char *name, DlTensor *param, guint group, GError **error)
{
  return dl_optimizer_add_with_copy (opt, rec, name, param, NULL, group, error);
}

#define ENTRY(opt, i) ((Entry *)g_ptr_array_index ((opt)->entries, (i)))

/* elements per gradient buffer: one binding's worth, at most 64 MiB */
static int64_t
grad_block_elems (DlOptimizer *opt)
{
  guint64 range = dl_device_get_info (opt->device)->max_storage_buffer_range;
  return (int64_t)MIN (range / 4, G_GUINT64_CONSTANT (16) << 20);
}

/* Every gradient as a view into a few large buffers, packed in order, so that
 * zeroing them and their norm take a handful of dispatches instead of several
 * per tensor (a LoRA has hundreds).  Done once, when the gradients are first
 * needed (all tensors are added by then). */
static gboolean
ensure_grads (DlOptimizer *opt, GError **error)
{
  guint n = opt->entries->len;
  if (n == 0 || ENTRY (opt, n - 1)->grad)
    return TRUE;
  int64_t cap = grad_block_elems (opt);
  guint first = 0;
  while (first < n)
    {
      /* entries [first, last) share one buffer; a tensor larger than a buffer has its own */
      int64_t total = dl_tensor_numel (ENTRY (opt, first)->param);
      guint last = first + 1;
      while (last < n && total + dl_tensor_numel (ENTRY (opt, last)->param) <= cap)
        total += dl_tensor_numel (ENTRY (opt, last++)->param);
      g_autoptr (DlTensor) block = dl_tensor_new (opt->device, "gradients", DL_DTYPE_F32, 1, &total, error);
      if (!block)
        return FALSE;
      int64_t off = 0;
      for (guint i = first; i < last; i++)
        {
          Entry *e = ENTRY (opt, i);
          g_autofree char *name = g_strconcat ("grad.", e->name, NULL);
          e->grad = dl_tensor_view (block, name, off, e->param->ndim, e->param->shape, error);
          if (!e->grad)
            return FALSE;
          off += dl_tensor_numel (e->param);
        }
      g_ptr_array_add (opt->grad_blocks, g_steal_pointer (&block));
      first = last;
    }
  return TRUE;
}

guint
dl_optimizer_get_n (DlOptimizer *opt)
{
  return opt->entries->len;
}

const char *
dl_optimizer_get_name (DlOptimizer *opt, guint i)
{
  return ENTRY (opt, i)->name;
}

DlTensor *
dl_optimizer_get_param (DlOptimizer *opt, guint i)
{
  return ENTRY (opt, i)->param;
}

DlTensor *
dl_optimizer_get_grad (DlOptimizer *opt, guint i)
{
  if (!ensure_grads (opt, NULL))
    return NULL;
  return ENTRY (opt, i)->grad;
}

guint
dl_optimizer_get_group (DlOptimizer *opt, guint i)
{
  return ENTRY (opt, i)->group;
}

gint64
dl_optimizer_get_numel (DlOptimizer *opt)
{
  gint64 n = 0;
  for (guint i = 0; i < opt->entries->len; i++)
    n += dl_tensor_numel (ENTRY (opt, i)->param);
  return n;
}

guint64
dl_optimizer_get_gradient_bytes (DlOptimizer *opt)
{
  guint64 n = 0;
  for (guint b = 0; b < opt->grad_blocks->len; b++)
    n += dl_tensor_nbytes (opt->grad_blocks->pdata[b]);
  return n;
}

void
dl_optimizer_attach (DlOptimizer *opt, DlTape *tape)
{
  if (!ensure_grads (opt, NULL))
    return; /* out of memory: the next zero_grad reports it */
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      dl_tape_set_param_grad (tape, e->model ? e->model : e->param, e->grad);
    }
}

gboolean
dl_optimizer_zero_grad (DlOptimizer *opt, DlRecorder *rec, GError **error)
{
  if (!ensure_grads (opt, error))
    return FALSE;
  for (guint i = 0; i < opt->entries->len; i++)
    ENTRY (opt, i)->reached = FALSE;
  for (guint b = 0; b < opt->grad_blocks->len; b++)
    if (!dl_op_fill (rec, opt->grad_blocks->pdata[b], 0.0, error))
      return FALSE;
  return TRUE;
}

void
dl_optimizer_collect_reached (DlOptimizer *opt, DlTape *tape)
{
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      if (dl_tape_param_reached (tape, e->model ? e->model : e->param))
        e->reached = TRUE;
    }
}

gboolean
dl_optimizer_reached (DlOptimizer *opt, guint i)
{
  return ENTRY (opt, i)->reached;
}

gboolean
dl_optimizer_grad_norm (DlOptimizer *opt, DlRecorder *rec, DlTensor *out, double max_norm, gboolean *none,
                        GError **error)
{
  gboolean any = FALSE;
  for (guint i = 0; i < opt->entries->len; i++)
    any |= ENTRY (opt, i)->reached;
  *none = !any;
  if (*none)
    return FALSE;
  /* over whole buffers: the gradients not reached are zero (zero_grad), so the
   * norm is that of the reached ones */
  return dl_op_grad_norm (rec, out, (DlTensor *const *)opt->grad_blocks->pdata, opt->grad_blocks->len, (float)max_norm,
                          error);
}

static DlTensor *
hyper_for (DlOptimizer *opt, guint group, guint64 step, double lr, guint *used, GError **error)
{
  for (guint k = 0; k < *used; k++)
    {
      Hyper *h = opt->hypers->pdata[k];
      if (h->group == group && h->step == step)
        return h->hyper;
    }
  if (*used == opt->hypers->len)
    {
      int64_t n = DL_ADAMW_HYPER_LEN;
      DlTensor *t = dl_tensor_new (opt->device, "adamw-hyper", DL_DTYPE_F32, 1, &n, error);
      if (!t)
        return NULL;
      Hyper *h = g_new0 (Hyper, 1);
      h->hyper = t;
      g_ptr_array_add (opt->hypers, h);
    }
  Hyper *h = opt->hypers->pdata[(*used)++];
  h->group = group;
  h->step = step;
  DlAdamWParams p = {
    .lr = lr,
    .beta1 = opt->beta1,
    .beta2 = opt->beta2,
    .eps = opt->eps,
    .weight_decay = g_array_index (opt->groups, Group, group).weight_decay,
    .grad_scale = 1.0,
  };
  if (!dl_adamw_hyper_upload (h->hyper, &p, step, error))
    return NULL;
  return h->hyper;
}

gboolean
dl_optimizer_step (DlOptimizer *opt, DlRecorder *rec, const double *group_lr, DlTensor *clip, GError **error)
{
  g_return_val_if_fail (opt != NULL && rec != NULL && group_lr != NULL, FALSE);
  guint used = 0;
  /* the constants first: uploads must not come between recorded dispatches that read them */
  g_autofree DlTensor **hy = g_new0 (DlTensor *, opt->entries->len);
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      if (!e->reached)
        continue;
      if (!(hy[i] = hyper_for (opt, e->group, e->steps + 1, group_lr[e->group], &used, error)))
        return FALSE;
    }
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      if (!e->reached)
        continue;
      gboolean ok = e->q ? dl_op_adamw8bit (rec, e->param, e->grad, e->q, opt->codebook, hy[i], clip, e->model, error)
                         : dl_op_adamw (rec, e->param, e->grad, e->m, e->v, hy[i], clip, e->model, error);
      if (!ok)
        return FALSE;
      e->steps++;
    }
  return TRUE;
}

/* ---- the fused backward pass ---- */

static gboolean
fused_step_one (DlTape *tape, DlTensor *tensor, DlTensor *grad, gpointer user_data, GError **error)
{
  DlOptimizer *opt = user_data;
  DlRecorder *rec = dl_tape_get_recorder (tape);
  Entry *e = g_hash_table_lookup (opt->by_tensor, tensor);
  g_return_val_if_fail (e != NULL && e->hyper != NULL, FALSE);
  int64_t two = 2;
  g_autoptr (DlTensor) norm = dl_tensor_view (opt->fused_norms, "grad_norm", 2 * (int64_t)e->index, 1, &two, error);
  /* kohya's hook: clip_grad_norm_ over this tensor alone, then its step */
  if (!norm || !dl_op_grad_norm (rec, norm, &grad, 1, (float)opt->fused_max_norm, error))
    return FALSE;
  gboolean ok = e->q ? dl_op_adamw8bit (rec, e->param, grad, e->q, opt->codebook, e->hyper, norm, e->model, error)
                     : dl_op_adamw (rec, e->param, grad, e->m, e->v, e->hyper, norm, e->model, error);
  if (!ok)
    return FALSE;
  e->reached = TRUE;
  e->steps++; /* taken back by fused_end when the norm was not finite */
  return TRUE;
}

gboolean
dl_optimizer_fused_begin (DlOptimizer *opt, DlTape *tape, const double *group_lr, double max_norm, GError **error)
{
  g_return_val_if_fail (opt != NULL && tape != NULL && group_lr != NULL, FALSE);
  guint n = opt->entries->len;
  if (!opt->by_tensor)
    {
      opt->by_tensor = g_hash_table_new (NULL, NULL);
      for (guint i = 0; i < n; i++)
        {
          Entry *e = ENTRY (opt, i);
          g_hash_table_insert (opt->by_tensor, e->model ? e->model : e->param, e);
        }
    }
  if (!opt->fused_norms &&
      !(opt->fused_norms = dl_tensor_new_1d (opt->device, "fused gradient norms", DL_DTYPE_F32, 2 * MAX (n, 1), error)))
    return FALSE;
  /* the constants first: uploads must not come between recorded dispatches that read them */
  guint used = 0;
  for (guint i = 0; i < n; i++)
    {
      Entry *e = ENTRY (opt, i);
      e->reached = FALSE;
      if (!(e->hyper = hyper_for (opt, e->group, e->steps + 1, group_lr[e->group], &used, error)))
        return FALSE;
    }
  if (!dl_op_fill (dl_tape_get_recorder (tape), opt->fused_norms, 0.0, error))
    return FALSE;
  opt->fused_max_norm = max_norm;
  for (guint i = 0; i < n; i++)
    {
      Entry *e = ENTRY (opt, i);
      dl_tape_set_param_fused (tape, e->model ? e->model : e->param);
    }
  dl_tape_set_param_done_func (tape, fused_step_one, opt);
  return TRUE;
}

gboolean
dl_optimizer_fused_end (DlOptimizer *opt, guint *n_stepped, guint *n_left, const char **first_left, double *grad_norm,
                        GError **error)
{
  g_return_val_if_fail (opt != NULL && opt->fused_norms != NULL, FALSE);
  *n_stepped = *n_left = 0;
  *first_left = NULL;
  *grad_norm = 0;
  g_autofree float *norms = dl_tensor_download_f32 (opt->fused_norms, error);
  if (!norms)
    return FALSE;
  double sum = 0;
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      e->hyper = NULL;
      if (!e->reached)
        continue;
      double v = norms[2 * i];
      sum += v * v;
      if (isfinite (v))
        {
          (*n_stepped)++;
          continue;
        }
      e->steps--; /* the shader left it as it was */
      if (!(*n_left)++)
        *first_left = e->name;
    }
  *grad_norm = sqrt (sum);
  return TRUE;
}

const char *
dl_optimizer_find_non_finite (DlOptimizer *opt, gboolean grads, GError **error)
{
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      if (grads && !e->reached)
        continue;
      g_autofree float *v = dl_tensor_download_f32 (grads ? e->grad : e->param, error);
      if (!v)
        return NULL;
      int64_t n = dl_tensor_numel (e->param);
      for (int64_t k = 0; k < n; k++)
        if (!isfinite (v[k]))
          return e->name;
    }
  return NULL;
}

static gboolean
save_tensor (DlSafetensorsWriter *w, const char *prefix, const char *name, DlTensor *t, GError **error)
{
  g_autofree float *v = dl_tensor_download_f32 (t, error);
  g_autofree char *key = g_strconcat (prefix, name, NULL);
  return v && dl_safetensors_writer_add_f32 (w, key, DL_ST_F32, t->ndim, t->shape, v, error);
}

gboolean
dl_optimizer_save (DlOptimizer *opt, DlSafetensorsWriter *w, GError **error)
{
  g_autofree gint64 *steps = g_new0 (gint64, MAX (opt->entries->len, 1));
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      steps[i] = (gint64)e->steps;
      if (!save_tensor (w, "param.", e->name, e->param, error))
        return FALSE;
      if (e->q
            ? !dl_adamw8bit_state_save (e->q, w, e->name, error)
            : (!save_tensor (w, "adam_m.", e->name, e->m, error) || !save_tensor (w, "adam_v.", e->name, e->v, error)))
        return FALSE;
    }
  int64_t n = opt->entries->len;
  return dl_safetensors_writer_add (w, "adam_steps", DL_ST_I64, 1, &n, steps, sizeof (gint64) * n, error);
}

static gboolean
load_tensor (DlSafetensors *st, const char *prefix, const char *name, DlTensor *t, GError **error)
{
  g_autofree char *key = g_strconcat (prefix, name, NULL);
  const DlStTensor *s = dl_safetensors_find (st, key);
  if (!s || s->numel != dl_tensor_numel (t) || s->ndim != t->ndim)
    {
      g_autofree char *d = dl_tensor_describe (t);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: %s for %s", dl_safetensors_get_path (st),
                   s ? "a tensor of another shape" : "no tensor", key);
      return FALSE;
    }
  int64_t n = 0;
  g_autofree float *v = dl_safetensors_read_f32 (st, key, &n, error);
  return v && dl_tensor_upload_f32 (t, v, error);
}

gboolean
dl_optimizer_load (DlOptimizer *opt, DlSafetensors *st, GError **error)
{
  const DlStTensor *steps = dl_safetensors_find (st, "adam_steps");
  if (!steps || steps->dtype != DL_ST_I64 || steps->numel != (int64_t)opt->entries->len)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "“%s”: the optimizer state does not hold the %u tensors this run trains",
                   dl_safetensors_get_path (st), opt->entries->len);
      return FALSE;
    }
  for (guint i = 0; i < opt->entries->len; i++)
    {
      Entry *e = ENTRY (opt, i);
      if (!load_tensor (st, "param.", e->name, e->param, error))
        return FALSE;
      if (e->q ? !dl_adamw8bit_state_load (e->q, st, e->name, error)
               : (!load_tensor (st, "adam_m.", e->name, e->m, error) ||
                  !load_tensor (st, "adam_v.", e->name, e->v, error)))
        return FALSE;
      /* the model's copy follows the master */
      if (e->model)
        {
          g_autofree float *v = dl_tensor_download_f32 (e->param, error);
          if (!v || !dl_tensor_upload_f32 (e->model, v, error))
            return FALSE;
        }
      gint64 count;
      memcpy (&count, steps->data + 8 * i, sizeof count);
      e->steps = (guint64)MAX (count, 0);
    }
  return TRUE;
}
