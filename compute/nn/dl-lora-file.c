#include "dl-lora-file.h"

#include "dl-error.h"

#include <string.h>

struct _DlLoraFile
{
  DlSafetensors *st;
  GPtrArray *modules; /* DlLoraModule* */
};

static void
module_free (DlLoraModule *m)
{
  g_free (m->file_name);
  g_free (m->target);
  g_free (m);
}

char *
dl_lora_kohya_name (const char *internal)
{
  const char *prefix;
  const char *rest;
  if (g_str_has_prefix (internal, "unet."))
    prefix = "lora_unet_", rest = internal + 5;
  else if (g_str_has_prefix (internal, "text_encoder."))
    prefix = "lora_te_", rest = internal + 13;
  else
    return NULL;
  char *s = g_strconcat (prefix, rest, NULL);
  for (char *p = s; *p; p++)
    if (*p == '.')
      *p = '_';
  return s;
}

/* Split "N.lora_down.weight" into N and the role; FALSE for keys that are not LoRA
 * tensors. */
static gboolean
split_key (const char *key, char **module, int *role)
{
  static const struct
  {
    const char *suffix;
    int role; /* 0 down, 1 up, 2 alpha */
  } suffixes[] = {
    { ".lora_down.weight", 0 }, { ".lora_up.weight", 1 }, { ".alpha", 2 },
    { ".lora_A.weight", 0 },    { ".lora_B.weight", 1 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    if (g_str_has_suffix (key, suffixes[i].suffix))
      {
        *module = g_strndup (key, strlen (key) - strlen (suffixes[i].suffix));
        *role = suffixes[i].role;
        return TRUE;
      }
  return FALSE;
}

DlLoraFile *
dl_lora_file_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, error);
  if (!st)
    return NULL;
  g_autoptr (GHashTable) by_name = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, NULL);
  g_autoptr (GPtrArray) modules = g_ptr_array_new_with_free_func ((GDestroyNotify)module_free);
  g_autofree char *base = g_path_get_basename (path);

  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      char *mname = NULL;
      int role;
      if (!split_key (t->name, &mname, &role))
        {
          if (g_str_has_prefix (t->name, "bundle_emb."))
            continue; /* embeddings bundled in a LoRA: not ours to apply */
          g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                       "%s: tensor “%s” is not part of a LoRA (LoHa, LoKr and other network types are not "
                       "supported)",
                       base, t->name);
          return NULL;
        }
      DlLoraModule *m = g_hash_table_lookup (by_name, mname);
      if (!m)
        {
          m = g_new0 (DlLoraModule, 1);
          m->file_name = mname;
          m->alpha = -1;
          g_hash_table_insert (by_name, m->file_name, m);
          g_ptr_array_add (modules, m);
        }
      else
        g_free (mname);
      gboolean is_float = t->dtype == DL_ST_F32 || t->dtype == DL_ST_F16 || t->dtype == DL_ST_BF16;
      if (!is_float)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "%s: “%s” has dtype %s, not a float", base, t->name,
                       dl_st_dtype_name (t->dtype));
          return NULL;
        }
      if (role == 0)
        m->down = t;
      else if (role == 1)
        m->up = t;
      else
        {
          if (t->numel != 1)
            {
              g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "%s: “%s” should hold one number", base, t->name);
              return NULL;
            }
          int64_t n1;
          g_autofree float *v = dl_safetensors_read_f32 (st, t->name, &n1, error);
          if (!v)
            return NULL;
          m->alpha = v[0];
        }
    }

  for (guint i = 0; i < modules->len; i++)
    {
      DlLoraModule *m = g_ptr_array_index (modules, i);
      if (!m->down || !m->up)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "%s: module “%s” lacks its %s matrix", base,
                       m->file_name, m->down ? "up" : "down");
          return NULL;
        }
      gboolean down_ok = m->down->ndim == 2 || m->down->ndim == 4;
      gboolean up_ok = m->up->ndim == 2 || (m->up->ndim == 4 && m->up->shape[2] == 1 && m->up->shape[3] == 1);
      if (!down_ok || !up_ok || m->down->shape[0] != m->up->shape[1] || m->down->shape[0] < 1)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "%s: module “%s” has incompatible down/up shapes", base,
                       m->file_name);
          return NULL;
        }
      m->rank = (int)m->down->shape[0];
      m->conv = m->down->ndim == 4;
      if (m->alpha <= 0)
        m->alpha = (float)m->rank; /* no alpha (or 0): scale 1, as kohya */
    }
  if (modules->len == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "%s holds no LoRA modules", base);
      return NULL;
    }

  DlLoraFile *f = g_new0 (DlLoraFile, 1);
  f->st = g_steal_pointer (&st);
  f->modules = g_steal_pointer (&modules);
  return f;
}

void
dl_lora_file_free (DlLoraFile *f)
{
  if (!f)
    return;
  g_ptr_array_unref (f->modules);
  dl_safetensors_free (f->st);
  g_free (f);
}

gboolean
dl_lora_file_resolve (DlLoraFile *f, GHashTable *model_modules, GPtrArray **unmatched, GError **error)
{
  g_return_val_if_fail (f != NULL && model_modules != NULL, FALSE);
  /* kohya name -> internal name, built from the model's own modules */
  g_autoptr (GHashTable) kohya = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, model_modules);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      char *k = dl_lora_kohya_name (key);
      if (k)
        g_hash_table_insert (kohya, k, key);
    }

  GPtrArray *missed = g_ptr_array_new_with_free_func (g_free);
  for (guint i = f->modules->len; i > 0; i--)
    {
      DlLoraModule *m = g_ptr_array_index (f->modules, i - 1);
      const char *target = g_hash_table_lookup (kohya, m->file_name);
      if (!target && g_hash_table_contains (model_modules, m->file_name))
        target = m->file_name; /* diffusers/PEFT spelling is already internal */
      if (target)
        {
          g_free (m->target);
          m->target = g_strdup (target);
        }
      else
        {
          g_ptr_array_add (missed, g_strdup (m->file_name));
          g_ptr_array_remove_index (f->modules, i - 1);
        }
    }
  if (f->modules->len == 0)
    {
      g_autofree char *base = g_path_get_basename (dl_safetensors_get_path (f->st));
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "%s: none of its %u modules matches this model (is it for another model family?)", base,
                   missed->len);
      g_ptr_array_unref (missed);
      return FALSE;
    }
  if (unmatched)
    *unmatched = missed;
  else
    g_ptr_array_unref (missed);
  return TRUE;
}

guint
dl_lora_file_get_n_modules (DlLoraFile *f)
{
  return f->modules->len;
}

const DlLoraModule *
dl_lora_file_get_module (DlLoraFile *f, guint i)
{
  return i < f->modules->len ? g_ptr_array_index (f->modules, i) : NULL;
}

DlSafetensors *
dl_lora_file_get_safetensors (DlLoraFile *f)
{
  return f->st;
}

const char *
dl_lora_file_get_path (DlLoraFile *f)
{
  return dl_safetensors_get_path (f->st);
}
