/* dl-params.c: see dl-params.h. */
#include "dl-config.h"

#include "nn/dl-params.h"

#include <stdarg.h>

#include "dl-error.h"
#include "nn/dl-hypernetwork.h"
#include "nn/dl-nn-lora.h"
#include "nn/dl-nn.h"
#include "ops/dl-ops.h"

struct _DlParams
{
  DlDevice *device;
  GHashTable *tensors;      /* name -> DlTensor */
  GHashTable *adapters;     /* module name -> GArray of DlLoraAdapter */
  GHashTable *added_tokens; /* component -> AddedTokens, NULL until some are set */
  GArray *hypernetworks;    /* AttachedHypernetwork, NULL until one is attached */
};

typedef struct
{
  DlTensor *table;
  int64_t base;
} AddedTokens;

static void
added_tokens_free (gpointer data)
{
  AddedTokens *a = data;
  g_clear_pointer (&a->table, dl_tensor_unref);
  g_free (a);
}

static void
adapter_clear (gpointer p)
{
  DlLoraAdapter *a = p;
  g_clear_pointer (&a->down, dl_tensor_unref);
  g_clear_pointer (&a->up, dl_tensor_unref);
}

DlParams *
dl_params_new (DlDevice *device)
{
  g_return_val_if_fail (device != NULL, NULL);
  DlParams *p = g_new0 (DlParams, 1);
  p->device = device;
  p->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  p->adapters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_array_unref);
  return p;
}

void
dl_params_free (DlParams *p)
{
  if (!p)
    return;
  g_hash_table_unref (p->adapters);
  g_hash_table_unref (p->tensors);
  g_clear_pointer (&p->added_tokens, g_hash_table_unref);
  g_clear_pointer (&p->hypernetworks, g_array_unref);
  g_free (p);
}

DlDevice *
dl_params_get_device (DlParams *p)
{
  return p->device;
}

DlDType
dl_params_embedding_dtype (DlDevice *device, int64_t token_embedding_numel, DlDType wanted)
{
  guint64 limit = dl_device_get_info (device)->max_storage_buffer_range;
  if ((guint64)token_embedding_numel * dl_dtype_size (wanted) > limit && wanted == DL_DTYPE_F32)
    return DL_DTYPE_F16;
  return wanted;
}

gboolean
dl_params_load_checkpoint (DlParams *p, DlCheckpoint *ckpt, DlComponent component, DlDType dtype, GError **error)
{
  g_return_val_if_fail (p != NULL && ckpt != NULL, FALSE);
  guint n = dl_checkpoint_get_n_params (ckpt);
  const char *cname = dl_component_name (component);
  g_autofree char *tok_name = g_strconcat (cname, ".text_model.embeddings.token_embedding.weight", NULL);
  g_autofree char *emb_prefix = g_strconcat (cname, ".text_model.embeddings.", NULL);
  const DlCheckpointParam *tok = dl_checkpoint_find (ckpt, tok_name);
  DlDType emb_dtype = tok ? dl_params_embedding_dtype (p->device, tok->numel, dtype) : dtype;
  for (guint i = 0; i < n; i++)
    {
      const DlCheckpointParam *cp = dl_checkpoint_get_param (ckpt, i);
      if (cp->component != component)
        continue;
      gboolean emb = tok && g_str_has_prefix (cp->name, emb_prefix);
      g_autoptr (DlTensor) t = dl_checkpoint_upload (ckpt, cp->name, p->device, emb ? emb_dtype : dtype, error);
      if (!t)
        return FALSE;
      dl_params_insert (p, cp->name, t);
    }
  return TRUE;
}

void
dl_params_insert (DlParams *p, const char *name, DlTensor *t)
{
  g_return_if_fail (p != NULL && name != NULL && t != NULL);
  g_hash_table_replace (p->tensors, g_strdup (name), dl_tensor_ref (t));
}

guint
dl_params_remove_prefix (DlParams *p, const char *prefix)
{
  g_return_val_if_fail (p != NULL && prefix != NULL, 0);
  guint n = 0;
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, p->tensors);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (g_str_has_prefix (key, prefix))
      {
        g_hash_table_iter_remove (&it);
        n++;
      }
  return n;
}

DlTensor *
dl_params_lookup (DlParams *p, const char *name)
{
  return g_hash_table_lookup (p->tensors, name);
}

DlTensor *
dl_params_lookupf (DlParams *p, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return dl_params_lookup (p, name);
}

DlTensor *
dl_params_getf (DlParams *p, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  DlTensor *t = dl_params_lookup (p, name);
  if (!t)
    g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "the model has no parameter %s", name);
  return t;
}

static int
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
dl_params_names (DlParams *p)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, p->tensors);
  while (g_hash_table_iter_next (&it, &key, NULL))
    g_ptr_array_add (names, g_strdup (key));
  g_ptr_array_sort (names, cmp_str);
  return names;
}

GHashTable *
dl_params_module_names (DlParams *p)
{
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, p->tensors);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      const char *dot = strrchr (key, '.');
      if (dot)
        g_hash_table_add (set, g_strndup (key, dot - (const char *)key));
    }
  return set;
}

void
dl_params_set_added_tokens_for (DlParams *p, const char *component, DlTensor *table, int64_t id_base)
{
  g_return_if_fail (p != NULL && component != NULL);
  g_return_if_fail (!table || (table->ndim == 2 && id_base >= 0));
  if (!table)
    {
      if (p->added_tokens)
        g_hash_table_remove (p->added_tokens, component);
      return;
    }
  if (!p->added_tokens)
    p->added_tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, added_tokens_free);
  AddedTokens *a = g_new0 (AddedTokens, 1);
  a->table = dl_tensor_ref (table);
  a->base = id_base;
  g_hash_table_replace (p->added_tokens, g_strdup (component), a);
}

DlTensor *
dl_params_get_added_tokens_for (DlParams *p, const char *component, int64_t *id_base)
{
  g_return_val_if_fail (p != NULL && component != NULL, NULL);
  AddedTokens *a = p->added_tokens ? g_hash_table_lookup (p->added_tokens, component) : NULL;
  if (id_base)
    *id_base = a ? a->base : 0;
  return a ? a->table : NULL;
}

void
dl_params_set_added_tokens (DlParams *p, DlTensor *table, int64_t id_base)
{
  dl_params_set_added_tokens_for (p, "text_encoder", table, id_base);
}

DlTensor *
dl_params_get_added_tokens (DlParams *p, int64_t *id_base)
{
  return dl_params_get_added_tokens_for (p, "text_encoder", id_base);
}

void
dl_params_clear_added_tokens (DlParams *p)
{
  g_return_if_fail (p != NULL);
  g_clear_pointer (&p->added_tokens, g_hash_table_unref);
}

void
dl_params_add_adapter (DlParams *p, const char *target, DlTensor *down, DlTensor *up, float scale)
{
  g_return_if_fail (p != NULL && target != NULL && down != NULL && up != NULL);
  GArray *list = g_hash_table_lookup (p->adapters, target);
  if (!list)
    {
      list = g_array_new (FALSE, TRUE, sizeof (DlLoraAdapter));
      g_array_set_clear_func (list, adapter_clear);
      g_hash_table_insert (p->adapters, g_strdup (target), list);
    }
  DlLoraAdapter a = { dl_tensor_ref (down), dl_tensor_ref (up), scale };
  g_array_append_val (list, a);
}

void
dl_params_clear_adapters (DlParams *p)
{
  g_hash_table_remove_all (p->adapters);
}

guint
dl_params_n_adapters (DlParams *p)
{
  guint n = 0;
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, p->adapters);
  while (g_hash_table_iter_next (&it, NULL, &value))
    n += ((GArray *)value)->len;
  return n;
}

/* The adapters attached to the module `name`: NULL when none. */
static const DlLoraAdapter *
adapters_of (DlParams *p, const char *name, guint *n)
{
  GArray *list = g_hash_table_lookup (p->adapters, name);
  *n = list ? list->len : 0;
  return *n ? (const DlLoraAdapter *)list->data : NULL;
}

DlTensor *
dl_params_linear (DlParams *p, DlTape *tape, DlTensor *x, const char *name, GError **error)
{
  DlTensor *w = dl_params_getf (p, error, "%s.weight", name);
  if (!w)
    return NULL;
  DlTensor *b = dl_params_lookupf (p, "%s.bias", name);
  guint n = 0;
  const DlLoraAdapter *adapters = adapters_of (p, name, &n);
  return n ? dl_nn_lora_linear (tape, x, w, b, adapters, n, error) : dl_nn_linear (tape, x, w, b, error);
}

DlTensor *
dl_params_conv2d (DlParams *p, DlTape *tape, DlTensor *x, const char *name, int stride, int padding, GError **error)
{
  DlTensor *w = dl_params_getf (p, error, "%s.weight", name);
  if (!w)
    return NULL;
  DlTensor *b = dl_params_lookupf (p, "%s.bias", name);
  guint n = 0;
  const DlLoraAdapter *adapters = adapters_of (p, name, &n);
  return n ? dl_nn_lora_conv2d (tape, x, w, b, stride, padding, adapters, n, error)
           : dl_nn_conv2d (tape, x, w, b, stride, padding, error);
}

DlTensor *
dl_params_conv2d_with (DlParams *p, DlTape *tape, DlTensor *x, const char *name, const DlConv2dParams *params,
                       GError **error)
{
  if (params->padding_end == 0)
    return dl_params_conv2d (p, tape, x, name, params->stride, params->padding, error);
  guint n = 0;
  adapters_of (p, name, &n);
  if (n)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: adapters on a convolution with end padding", name);
      return NULL;
    }
  DlTensor *w = dl_params_getf (p, error, "%s.weight", name);
  return w ? dl_nn_conv2d_with (tape, x, w, dl_params_lookupf (p, "%s.bias", name), params, error) : NULL;
}

DlTensor *
dl_params_layer_norm (DlParams *p, DlTape *tape, DlTensor *x, const char *name, float eps, GError **error)
{
  DlTensor *g = dl_params_getf (p, error, "%s.weight", name);
  DlTensor *b = g ? dl_params_getf (p, error, "%s.bias", name) : NULL;
  return b ? dl_nn_layer_norm (tape, x, g, b, eps, error) : NULL;
}

/* ---- hypernetworks ---- */

typedef struct
{
  DlHypernetwork *hn;
  float strength;
} AttachedHypernetwork;

static void
attached_hypernetwork_clear (gpointer p)
{
  g_clear_pointer (&((AttachedHypernetwork *)p)->hn, dl_hypernetwork_unref);
}

void
dl_params_add_hypernetwork (DlParams *p, DlHypernetwork *hn, float strength)
{
  g_return_if_fail (p != NULL && hn != NULL);
  if (!p->hypernetworks)
    {
      p->hypernetworks = g_array_new (FALSE, TRUE, sizeof (AttachedHypernetwork));
      g_array_set_clear_func (p->hypernetworks, attached_hypernetwork_clear);
    }
  AttachedHypernetwork a = { dl_hypernetwork_ref (hn), strength };
  g_array_append_val (p->hypernetworks, a);
}

void
dl_params_clear_hypernetworks (DlParams *p)
{
  g_return_if_fail (p != NULL);
  g_clear_pointer (&p->hypernetworks, g_array_unref);
}

guint
dl_params_n_hypernetworks (DlParams *p)
{
  return p->hypernetworks ? p->hypernetworks->len : 0;
}

DlHypernetwork *
dl_params_get_hypernetwork (DlParams *p, guint index, float *strength)
{
  g_return_val_if_fail (p != NULL && index < dl_params_n_hypernetworks (p), NULL);
  const AttachedHypernetwork *a = &g_array_index (p->hypernetworks, AttachedHypernetwork, index);
  if (strength)
    *strength = a->strength;
  return a->hn;
}
