/* dl-hypernetwork-file.c: A1111 hypernetwork .pt files (dl_hypernetwork_read,
 * dl_hypernetwork_write in dl-hypernetwork.h).  The rules are those of A1111
 * modules/hypernetworks/hypernetwork.py (Hypernetwork.save, Hypernetwork.load,
 * parse_dropout_structure, HypernetworkModule.fix_old_state_dict) and, for the
 * size keys, ComfyUI comfy_extras/nodes_hypernetwork.py (load_hypernetwork_patch). */
#include "dl-config.h"

#include "nn/dl-hypernetwork.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-pickle.h"
#include "io/dl-torch-ckpt.h"
#include "io/dl-torch-writer.h"
#include "io/dl-file-util.h"

/* sizes beyond any model's width are a broken file */
#define MAX_SIZE (1 << 16)

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Hypernetwork “%s”: %s", path, msg);
  return FALSE;
}

/* "a dict", "an int" */
static char *
a_type (const DlPickleValue *v)
{
  const char *name = dl_pickle_type_name (v->type);
  return g_strdup_printf ("%s %s", strchr ("aeiou", name[0]) ? "an" : "a", name);
}

static gboolean
wrong_type (GError **error, const char *path, const char *key, const DlPickleValue *v, const char *wanted)
{
  g_autofree char *what = a_type (v);
  return bad (error, path, "“%s” is %s, not %s", key, what, wanted);
}

/* ---- metadata, with A1111's defaults (state_dict.get(key, default)) ---- */

static gboolean
get_bool (const DlPickleValue *root, const char *key, gboolean dflt, gboolean *out, const char *path, GError **error)
{
  const DlPickleValue *v = dl_pickle_dict_get (root, key);
  if (!v)
    *out = dflt;
  else if (v->type == DL_PK_BOOL)
    *out = v->b;
  else if (v->type == DL_PK_INT) /* Python truthiness, as A1111 uses the value */
    *out = v->i != 0;
  else if (v->type == DL_PK_NONE)
    *out = FALSE;
  else
    return wrong_type (error, path, key, v, "a bool");
  return TRUE;
}

/* *out points into the pickle (NULL for None) */
static gboolean
get_str (const DlPickleValue *root, const char *key, const char *dflt, const char **out, const char *path,
         GError **error)
{
  const DlPickleValue *v = dl_pickle_dict_get (root, key);
  if (!v)
    *out = dflt;
  else if (v->type == DL_PK_STRING)
    *out = v->str.data;
  else if (v->type == DL_PK_NONE)
    *out = NULL;
  else
    return wrong_type (error, path, key, v, "a str");
  return TRUE;
}

/* A list of numbers; *n = -1 when absent or None. */
static gboolean
get_numbers (const DlPickleValue *root, const char *key, double *out, int *n, const char *path, GError **error)
{
  const DlPickleValue *v = dl_pickle_dict_get (root, key);
  *n = -1;
  if (!v || v->type == DL_PK_NONE)
    return TRUE;
  if (v->type != DL_PK_LIST && v->type != DL_PK_TUPLE)
    return wrong_type (error, path, key, v, "a list of numbers");
  if (v->items->len > DL_HYPERNETWORK_MAX_LAYERS)
    return bad (error, path, "“%s” has %u entries (at most %d are supported)", key, v->items->len,
                DL_HYPERNETWORK_MAX_LAYERS);
  for (guint i = 0; i < v->items->len; i++)
    {
      const DlPickleValue *e = v->items->pdata[i];
      if (e->type == DL_PK_INT)
        out[i] = (double)e->i;
      else if (e->type == DL_PK_FLOAT)
        out[i] = e->f;
      else if (e->type == DL_PK_BOOL)
        out[i] = e->b;
      else
        {
          g_autofree char *what = a_type (e);
          return bad (error, path, "“%s” entry %u is %s, not a number", key, i, what);
        }
    }
  *n = (int)v->items->len;
  return TRUE;
}

/* The configuration as Hypernetwork.load derives it; strings point into the
 * pickle or `stem`. */
static gboolean
read_config (const DlPickleValue *root, const char *stem, DlHypernetworkConfig *c, const char *path, GError **error)
{
  dl_hypernetwork_config_init (c);
  int n;
  if (!get_numbers (root, "layer_structure", c->layer_structure, &n, path, error))
    return FALSE;
  if (n < 0)
    {
      if (dl_pickle_dict_get (root, "layer_structure"))
        return bad (error, path, "“layer_structure” is None");
      n = 3; /* [1, 2, 1] from dl_hypernetwork_config_init */
    }
  else if (n < 2)
    {
      return bad (error, path, "“layer_structure” has %d entr%s (at least 2: it starts and ends with 1)", n,
                  n == 1 ? "y" : "ies");
    }
  c->n_layers = n;
  if (!get_str (root, "activation_func", NULL, &c->activation_func, path, error) ||
      !get_str (root, "weight_initialization", "Normal", &c->weight_initialization, path, error) ||
      !get_bool (root, "is_layer_norm", FALSE, &c->is_layer_norm, path, error) ||
      !get_bool (root, "activate_output", TRUE, &c->activate_output, path, error) ||
      !get_bool (root, "use_dropout", FALSE, &c->use_dropout, path, error) ||
      !get_bool (root, "last_layer_dropout", FALSE, &c->last_layer_dropout, path, error) ||
      !get_str (root, "name", stem, &c->name, path, error) ||
      !get_str (root, "sd_checkpoint", NULL, &c->sd_checkpoint, path, error) ||
      !get_str (root, "sd_checkpoint_name", NULL, &c->sd_checkpoint_name, path, error) ||
      !get_str (root, "optional_info", NULL, &c->optional_info, path, error))
    return FALSE;
  /* A1111 treats None as "linear" (no activation); ComfyUI refuses None */
  if (!c->activation_func)
    c->activation_func = "linear";

  const DlPickleValue *step = dl_pickle_dict_get (root, "step");
  if (step && step->type == DL_PK_INT)
    c->step = step->i;
  else if (step && step->type != DL_PK_NONE)
    return wrong_type (error, path, "step", step, "an int");

  double ds[DL_HYPERNETWORK_MAX_LAYERS];
  int nd;
  if (!get_numbers (root, "dropout_structure", ds, &nd, path, error))
    return FALSE;
  if (nd >= 0)
    {
      if (nd < n)
        return bad (error, path, "“dropout_structure” has %d entries for a layer_structure of %d", nd, n);
      gboolean any = FALSE;
      for (int i = 0; i < n; i++)
        {
          c->dropout_structure[i] = ds[i];
          any |= ds[i] != 0;
        }
      /* use_dropout = True if any(dropout_structure) else state_dict.get('use_dropout', False) */
      c->use_dropout |= any;
    }
  else if (c->use_dropout)
    {
      /* parse_dropout_structure: [0] + [0.3] * (n - 3) + [0.3 if last_layer_dropout else 0] + [0]; for n = 2
     * that is 3 entries, of which the module reads [1] */
      for (int i = 1; i < n - 2; i++)
        c->dropout_structure[i] = 0.3;
      c->dropout_structure[MAX (n - 2, 1)] = c->last_layer_dropout ? 0.3 : 0;
    }
  return TRUE;
}

/* ---- the modules ---- */

/* The size a key of the top-level dict stands for, or 0 (metadata). */
static gint64
size_key (const DlPickleValue *k)
{
  if (k->type == DL_PK_INT)
    return k->i;
  /* ComfyUI: int(key) for every key */
  if (k->type == DL_PK_STRING && k->str.len > 0 && k->str.len < 8)
    {
      for (gsize i = 0; i < k->str.len; i++)
        if (!g_ascii_isdigit (k->str.data[i]))
          return 0;
      return g_ascii_strtoll (k->str.data, NULL, 10);
    }
  return 0;
}

/* The entry of the state dict `sd` for `key` ("linear.0.weight"), after
 * fix_old_state_dict's renames (linear1.* -> linear.0.*, linear2.* -> linear.1.*;
 * the old name wins, as the rename overwrites). */
static const DlPickleValue *
state_entry (const DlPickleValue *sd, const char *key, const char **found_key)
{
  static const char *const renames[][2] = {
    { "linear.0.weight", "linear1.weight" },
    { "linear.0.bias", "linear1.bias" },
    { "linear.1.weight", "linear2.weight" },
    { "linear.1.bias", "linear2.bias" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (renames); i++)
    if (strcmp (key, renames[i][0]) == 0)
      {
        const DlPickleValue *v = dl_pickle_dict_get (sd, renames[i][1]);
        if (v)
          {
            *found_key = renames[i][1];
            return v;
          }
      }
  *found_key = key;
  return dl_pickle_dict_get (sd, key);
}

static char *
shape_text (int ndim, const int64_t *shape)
{
  return dl_shape_to_string (ndim, shape);
}

/* load_state_dict (strict) of module `kv` of `size` from the state dict `sd`. */
static gboolean
load_module (DlHypernetwork *hn, DlTorchCkpt *ck, const DlPickleValue *sd, int size, int kv, const char *path,
             GError **error)
{
  const char *which = kv ? "v" : "k";
  if (sd->type != DL_PK_DICT)
    {
      g_autofree char *what = a_type (sd);
      return bad (error, path, "the %s module of size %d is %s, not a state dict", which, size, what);
    }
  g_autofree char *prefix = g_strdup_printf ("%d.%d.", size, kv);
  g_autoptr (GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < dl_hypernetwork_get_n_tensors (hn); i++)
    {
      const char *name;
      DlTensor *t = dl_hypernetwork_get_tensor (hn, i, &name);
      if (!g_str_has_prefix (name, prefix))
        continue;
      const char *key = name + strlen (prefix), *found;
      const DlPickleValue *v = state_entry (sd, key, &found);
      if (!v)
        return bad (error, path,
                    "the %s module of size %d has no “%s” (the file's layer_structure, activation, "
                    "layer norm and dropout settings call for it)",
                    which, size, key);
      g_hash_table_add (used, (gpointer)found);
      g_autofree char *what = g_strdup_printf ("%d[%d][%s]", size, kv, found);
      DlStTensor st;
      if (!dl_torch_ckpt_resolve_tensor (ck, v, what, &st, error))
        return FALSE;
      gboolean same = st.ndim == t->ndim;
      for (int d = 0; same && d < t->ndim; d++)
        same = st.shape[d] == t->shape[d];
      if (!same)
        {
          g_autofree char *got = shape_text (st.ndim, st.shape);
          g_autofree char *want = shape_text (t->ndim, t->shape);
          return bad (error, path, "“%s” of the %s module of size %d has shape %s where the file's settings make it %s",
                      found, which, size, got, want);
        }
      g_autofree float *data = g_new (float, MAX (st.numel, 1));
      if (!dl_st_convert_to_f32 (&st, data, path, error) || !dl_tensor_upload_f32 (t, data, error))
        return FALSE;
    }
  for (guint i = 0; i + 1 < sd->items->len; i += 2)
    {
      const DlPickleValue *k = sd->items->pdata[i];
      const char *ks = k->type == DL_PK_STRING ? k->str.data : NULL;
      if (!ks || !g_hash_table_contains (used, ks))
        return bad (error, path,
                    "the %s module of size %d has an unexpected entry “%s” (not part of the module the "
                    "file's settings describe)",
                    which, size, ks ? ks : "(not a str)");
    }
  return TRUE;
}

/* safetensors: an 8-byte header length, then the JSON header's "{" */
static gboolean
looks_like_safetensors (const char *path)
{
  guint8 head[9];
  FILE *f = fopen (path, "rb");
  if (!f)
    return FALSE;
  gboolean st = fread (head, 1, sizeof head, f) == sizeof head && head[8] == '{' && head[7] == 0 && head[6] == 0;
  fclose (f);
  return st;
}

DlHypernetwork *
dl_hypernetwork_read (DlDevice *device, const char *path, GError **error)
{
  g_return_val_if_fail (device != NULL && path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  if (looks_like_safetensors (path))
    {
      bad (error, path,
           "a safetensors file; hypernetworks are PyTorch .pt files (neither A1111 nor ComfyUI reads "
           "them from safetensors)");
      return NULL;
    }
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, error);
  if (!ck)
    return NULL;
  const DlPickleValue *root = dl_torch_ckpt_get_root (ck);
  if (root->type != DL_PK_DICT)
    {
      g_autofree char *what = a_type (root);
      bad (error, path, "the file holds %s, not a hypernetwork's dict", what);
      return NULL;
    }
  g_autofree char *stem = dl_file_stem (path);
  DlHypernetworkConfig config;
  if (!read_config (root, stem, &config, path, error))
    return NULL;

  g_autoptr (GArray) sizes = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr (GPtrArray) pairs = g_ptr_array_new ();
  for (guint i = 0; i + 1 < root->items->len; i += 2)
    {
      gint64 size = size_key (root->items->pdata[i]);
      if (!size)
        continue;
      const DlPickleValue *pair = root->items->pdata[i + 1];
      if (size < 0 || size > MAX_SIZE)
        {
          bad (error, path, "size %" G_GINT64_FORMAT " is not a plausible attention width", size);
          return NULL;
        }
      if ((pair->type != DL_PK_TUPLE && pair->type != DL_PK_LIST) || pair->items->len < 2)
        {
          g_autofree char *what = a_type (pair);
          bad (error, path, "size %" G_GINT64_FORMAT " maps to %s, not a (k, v) pair of state dicts", size, what);
          return NULL;
        }
      int s = (int)size;
      for (guint j = 0; j < sizes->len; j++)
        if (g_array_index (sizes, int, j) == s)
          {
            bad (error, path, "size %d appears twice", s);
            return NULL;
          }
      g_array_append_val (sizes, s);
      g_ptr_array_add (pairs, (gpointer)pair);
    }
  if (sizes->len == 0)
    {
      bad (error, path, "no module pairs (int keys such as 768); not a hypernetwork");
      return NULL;
    }
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_new (device, &config, (const int *)sizes->data, sizes->len, error);
  if (!hn)
    {
      g_prefix_error (error, "Hypernetwork “%s”: ", path);
      return NULL;
    }
  for (guint i = 0; i < sizes->len; i++)
    {
      const DlPickleValue *pair = pairs->pdata[i];
      for (int kv = 0; kv < 2; kv++)
        if (!load_module (hn, ck, pair->items->pdata[kv], g_array_index (sizes, int, i), kv, path, error))
          return NULL;
    }
  return g_steal_pointer (&hn);
}

/* ---- writing ---- */

/* A1111 keeps what the UI or the file gave; ints where whole are what
 * layer_structure [1, 2, 1] looks like in the files A1111 writes by default */
static DlTorchValue *
number (double v)
{
  if (v == nearbyint (v) && fabs (v) < 1e15)
    return dl_torch_int ((gint64)v);
  return dl_torch_float (v);
}

static DlTorchValue *
number_list (const double *v, int n)
{
  DlTorchValue *l = dl_torch_list ();
  for (int i = 0; i < n; i++)
    dl_torch_append (l, number (v[i]));
  return l;
}

static gboolean
check_text (const char *text, const char *what, const char *path, GError **error)
{
  if (text && !g_utf8_validate (text, -1, NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "Cannot write hypernetwork “%s”: the %s is not valid "
                   "UTF-8",
                   path, what);
      return FALSE;
    }
  return TRUE;
}

/* (state_dict_k, state_dict_v) of `size`: OrderedDicts in Sequential order */
static DlTorchValue *
module_pair (DlHypernetwork *hn, int size, GError **error)
{
  g_autoptr (DlTorchValue) pair = dl_torch_tuple ();
  for (int kv = 0; kv < 2; kv++)
    {
      g_autofree char *prefix = g_strdup_printf ("%d.%d.", size, kv);
      DlTorchValue *sd = dl_torch_ordered_dict ();
      dl_torch_append (pair, sd);
      for (guint i = 0; i < dl_hypernetwork_get_n_tensors (hn); i++)
        {
          const char *name;
          DlTensor *t = dl_hypernetwork_get_tensor (hn, i, &name);
          if (!g_str_has_prefix (name, prefix))
            continue;
          g_autofree float *data = dl_tensor_download_f32 (t, error);
          if (!data)
            return NULL;
          dl_torch_dict_set (sd, name + strlen (prefix), dl_torch_tensor_f32 (DL_ST_F32, t->ndim, t->shape, data));
        }
    }
  return g_steal_pointer (&pair);
}

gboolean
dl_hypernetwork_write (DlHypernetwork *hn, const char *path, GError **error)
{
  g_return_val_if_fail (hn != NULL && path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  const DlHypernetworkConfig *c = dl_hypernetwork_get_config (hn);
  if (!check_text (c->name, "name", path, error) || !check_text (c->activation_func, "activation", path, error) ||
      !check_text (c->weight_initialization, "weight initialization", path, error) ||
      !check_text (c->sd_checkpoint, "checkpoint hash", path, error) ||
      !check_text (c->sd_checkpoint_name, "checkpoint name", path, error) ||
      !check_text (c->optional_info, "optional info", path, error))
    return FALSE;
  g_autoptr (DlTorchValue) root = dl_torch_dict ();
  /* Hypernetwork.save: the sizes, then the metadata in this order */
  for (guint i = 0; i < dl_hypernetwork_get_n_sizes (hn); i++)
    {
      int size = dl_hypernetwork_get_size (hn, i);
      DlTorchValue *pair = module_pair (hn, size, error);
      if (!pair)
        return FALSE;
      dl_torch_dict_set_int (root, size, pair);
    }
  dl_torch_dict_set (root, "step", dl_torch_int (c->step));
  dl_torch_dict_set (root, "name", dl_torch_str_or_none (c->name));
  dl_torch_dict_set (root, "layer_structure", number_list (c->layer_structure, c->n_layers));
  dl_torch_dict_set (root, "activation_func", dl_torch_str (c->activation_func));
  dl_torch_dict_set (root, "is_layer_norm", dl_torch_bool (c->is_layer_norm));
  dl_torch_dict_set (root, "weight_initialization", dl_torch_str_or_none (c->weight_initialization));
  dl_torch_dict_set (root, "sd_checkpoint", dl_torch_str_or_none (c->sd_checkpoint));
  dl_torch_dict_set (root, "sd_checkpoint_name", dl_torch_str_or_none (c->sd_checkpoint_name));
  dl_torch_dict_set (root, "activate_output", dl_torch_bool (c->activate_output));
  dl_torch_dict_set (root, "use_dropout", dl_torch_bool (c->use_dropout));
  dl_torch_dict_set (root, "dropout_structure", number_list (c->dropout_structure, c->n_layers));
  /* (dropout_structure[-2] != 0) */
  dl_torch_dict_set (root, "last_layer_dropout", dl_torch_bool (c->dropout_structure[c->n_layers - 2] != 0));
  /* self.optional_info if self.optional_info else None */
  dl_torch_dict_set (root, "optional_info",
                     dl_torch_str_or_none (c->optional_info && *c->optional_info ? c->optional_info : NULL));
  return dl_torch_save (path, root, error);
}
