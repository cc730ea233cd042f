#include "dl-lora-file.h"

#include "dl-error.h"

#include <string.h>

struct _DlLoraFile
{
  DlSafetensors *st;
  GPtrArray *modules; /* DlLoraModule* */
  DlLoraFamily family;
  char *evidence; /* what says which family, for messages */
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

/* "lora_unet_" + path with dots as underscores */
static char *
underscored (const char *prefix, const char *path, gsize len)
{
  char *s = g_strdup_printf ("%s%.*s", prefix, (int)len, path);
  for (char *p = s + strlen (prefix); *p; p++)
    if (*p == '.')
      *p = '_';
  return s;
}

/* A UNet module's kohya name from its LDM (SGM) path, as kohya sd-scripts names
 * the modules of its SDXL UNet (library/sdxl_original_unet.py, whose module tree
 * is SGM's) and ComfyUI accepts for every model (comfy/lora.py
 * model_lora_keys_unet): "unet.down_blocks.1.attentions.0.proj_in" ->
 * "lora_unet_input_blocks_4_1_proj_in". */
static char *
ldm_kohya_name (const char *internal, const DlLdmLayout *layout)
{
  if (!layout || !g_str_has_prefix (internal, "unet."))
    return NULL;
  g_autofree char *weight = g_strconcat (internal, ".weight", NULL);
  g_autofree char *ldm = dl_keymap_internal_to_ldm (weight, layout);
  if (!ldm || !g_str_has_prefix (ldm, DL_LDM_UNET_PREFIX) || !g_str_has_suffix (ldm, ".weight"))
    return NULL;
  const char *path = ldm + strlen (DL_LDM_UNET_PREFIX);
  return underscored ("lora_unet_", path, strlen (path) - strlen (".weight"));
}

char *
dl_lora_kohya_name_sdxl (const char *internal, const DlLdmLayout *layout)
{
  g_return_val_if_fail (internal != NULL, NULL);
  /* kohya sd-scripts networks/lora.py: LORA_PREFIX_TEXT_ENCODER1 "lora_te1",
   * LORA_PREFIX_TEXT_ENCODER2 "lora_te2", LORA_PREFIX_UNET "lora_unet" */
  if (g_str_has_prefix (internal, "text_encoder_2."))
    return underscored ("lora_te2_", internal + 15, strlen (internal + 15));
  if (g_str_has_prefix (internal, "text_encoder."))
    return underscored ("lora_te1_", internal + 13, strlen (internal + 13));
  return ldm_kohya_name (internal, layout);
}

/* A decimal index at s ended by `sep` (or the end of s); -1 otherwise.  *rest
 * (may be NULL) points after the separator. */
static int
index_then (const char *s, char sep, const char **rest)
{
  int v = 0, n = 0;
  while (g_ascii_isdigit (s[n]) && n < 6)
    v = v * 10 + (s[n++] - '0');
  if (n == 0 || (s[n] != sep && s[n] != '\0'))
    return -1;
  if (rest)
    *rest = s[n] ? s + n + 1 : s + n;
  return v;
}

gboolean
dl_lora_ldm_layout_from_modules (GHashTable *model_modules, DlLdmLayout *layout)
{
  g_return_val_if_fail (model_modules != NULL && layout != NULL, FALSE);
  memset (layout, 0, sizeof *layout);
  int levels = 0, lpb = 0;
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, model_modules);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      const char *k = key, *rest;
      if (!g_str_has_prefix (k, "unet.down_blocks."))
        continue;
      int b = index_then (k + strlen ("unet.down_blocks."), '.', &rest);
      if (b < 0 || b >= DL_MODEL_MAX_LEVELS)
        continue;
      levels = MAX (levels, b + 1);
      if (g_str_has_prefix (rest, "resnets."))
        {
          int j = index_then (rest + strlen ("resnets."), '.', NULL);
          lpb = MAX (lpb, j + 1);
        }
      else if (g_str_has_prefix (rest, "attentions."))
        layout->unet_level_attention[b] = TRUE;
    }
  if (levels == 0 || lpb == 0)
    {
      memset (layout, 0, sizeof *layout);
      return FALSE;
    }
  layout->unet_levels = levels;
  layout->unet_layers_per_block = lpb;
  return TRUE;
}

static const char *
family_name (DlLoraFamily family)
{
  return family == DL_LORA_FAMILY_SDXL ? "SDXL" : "Stable Diffusion 1.x/2.x";
}

/* UNet module names (the path after lora_unet_ or unet., with underscores) that
 * only a Stable Diffusion 1.x/2.x UNet has (four levels, attention from the
 * first level on: input_blocks 1 to 11 in LDM terms) or only SDXL's (three
 * levels, none with attention at the first, transformer depth above 1). */
static DlLoraFamily
unet_name_family (const char *path)
{
  static const char *const sd_only[] = {
    "down_blocks_3_", "up_blocks_3_", "down_blocks_0_attentions_", "input_blocks_1_1_", "input_blocks_2_1_",
  };
  for (guint i = 0; i < G_N_ELEMENTS (sd_only); i++)
    if (g_str_has_prefix (path, sd_only[i]))
      return DL_LORA_FAMILY_SD;
  const char *r = NULL;
  if (g_str_has_prefix (path, "input_blocks_"))
    r = path + strlen ("input_blocks_");
  else if (g_str_has_prefix (path, "output_blocks_"))
    r = path + strlen ("output_blocks_");
  if (r && index_then (r, '_', NULL) >= 9)
    return DL_LORA_FAMILY_SD;
  const char *t = strstr (path, "transformer_blocks_");
  if (t && index_then (t + strlen ("transformer_blocks_"), '_', NULL) >= 1)
    return DL_LORA_FAMILY_SDXL;
  return DL_LORA_FAMILY_UNKNOWN;
}

/* Which family the file was made for: the text-encoder prefixes first (kohya
 * sd-scripts networks/lora.py writes lora_te_ for SD 1.x/2.x, lora_te1_ and
 * lora_te2_ for SDXL), then the metadata kohya (ss_base_model_version,
 * library/sdxl_model_util.py MODEL_VERSION_SDXL_BASE_V1_0 "sdxl_base_v1-0", or
 * "sd_v1"/"sd_v2") and the Stability model spec (modelspec.architecture) write,
 * then UNet names only one family has. */
static void
detect_family (DlLoraFile *f)
{
  gboolean te12 = FALSE, te2_peft = FALSE, te = FALSE;
  const char *sd_unet = NULL, *xl_unet = NULL;
  for (guint i = 0; i < f->modules->len; i++)
    {
      const DlLoraModule *m = g_ptr_array_index (f->modules, i);
      const char *n = m->file_name;
      if (g_str_has_prefix (n, "lora_te1_") || g_str_has_prefix (n, "lora_te2_"))
        te12 = TRUE;
      else if (g_str_has_prefix (n, "lora_te_"))
        te = TRUE;
      else if (g_str_has_prefix (n, "text_encoder_2."))
        te2_peft = TRUE;
      else if (g_str_has_prefix (n, "lora_unet_") || g_str_has_prefix (n, "unet."))
        {
          const char *path = n + (n[0] == 'l' ? strlen ("lora_unet_") : strlen ("unet."));
          g_autofree char *u = underscored ("", path, strlen (path));
          DlLoraFamily fam = unet_name_family (u);
          if (fam == DL_LORA_FAMILY_SD && !sd_unet)
            sd_unet = n;
          else if (fam == DL_LORA_FAMILY_SDXL && !xl_unet)
            xl_unet = n;
        }
    }
  const char *version = dl_safetensors_get_metadata (f->st, "ss_base_model_version");
  const char *arch = dl_safetensors_get_metadata (f->st, "modelspec.architecture");
  f->family = DL_LORA_FAMILY_UNKNOWN;
  if (te12 != te)
    {
      f->family = te12 ? DL_LORA_FAMILY_SDXL : DL_LORA_FAMILY_SD;
      f->evidence = g_strdup (te12 ? "lora_te1_/lora_te2_ modules" : "lora_te_ modules");
    }
  else if (te2_peft)
    {
      f->family = DL_LORA_FAMILY_SDXL;
      f->evidence = g_strdup ("text_encoder_2 modules");
    }
  else if (version && (g_str_has_prefix (version, "sdxl") || g_str_has_prefix (version, "sd_v")))
    {
      f->family = g_str_has_prefix (version, "sdxl") ? DL_LORA_FAMILY_SDXL : DL_LORA_FAMILY_SD;
      f->evidence = g_strdup_printf ("ss_base_model_version “%s”", version);
    }
  else if (arch && (g_str_has_prefix (arch, "stable-diffusion-xl") || g_str_has_prefix (arch, "stable-diffusion-v1") ||
                    g_str_has_prefix (arch, "stable-diffusion-v2")))
    {
      f->family = g_str_has_prefix (arch, "stable-diffusion-xl") ? DL_LORA_FAMILY_SDXL : DL_LORA_FAMILY_SD;
      f->evidence = g_strdup_printf ("modelspec.architecture “%s”", arch);
    }
  else if ((sd_unet != NULL) != (xl_unet != NULL))
    {
      f->family = sd_unet ? DL_LORA_FAMILY_SD : DL_LORA_FAMILY_SDXL;
      f->evidence = g_strdup_printf ("UNet module %s", sd_unet ? sd_unet : xl_unet);
    }
}

DlLoraFamily
dl_lora_file_get_family (DlLoraFile *f, const char **evidence)
{
  g_return_val_if_fail (f != NULL, DL_LORA_FAMILY_UNKNOWN);
  if (evidence)
    *evidence = f->evidence;
  return f->family;
}

/* SDXL when the model has a second text encoder or SDXL's added (text_time)
 * conditioning; Stable Diffusion 1.x/2.x when it has other UNet or text-encoder
 * modules. */
static DlLoraFamily
model_family (GHashTable *model_modules)
{
  DlLoraFamily family = DL_LORA_FAMILY_UNKNOWN;
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, model_modules);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      if (g_str_has_prefix (key, "text_encoder_2.") || g_str_has_prefix (key, "unet.add_embedding."))
        return DL_LORA_FAMILY_SDXL;
      if (g_str_has_prefix (key, "unet.") || g_str_has_prefix (key, "text_encoder."))
        family = DL_LORA_FAMILY_SD;
    }
  return family;
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
  detect_family (f);
  return f;
}

void
dl_lora_file_free (DlLoraFile *f)
{
  if (!f)
    return;
  g_ptr_array_unref (f->modules);
  dl_safetensors_free (f->st);
  g_free (f->evidence);
  g_free (f);
}

gboolean
dl_lora_file_resolve (DlLoraFile *f, GHashTable *model_modules, GPtrArray **unmatched, GError **error)
{
  g_return_val_if_fail (f != NULL && model_modules != NULL, FALSE);
  DlLoraFamily mf = model_family (model_modules);
  if (f->family != DL_LORA_FAMILY_UNKNOWN && mf != DL_LORA_FAMILY_UNKNOWN && f->family != mf)
    {
      g_autofree char *base = g_path_get_basename (dl_safetensors_get_path (f->st));
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %s %s LoRA (%s) cannot be applied to %s %s model", base,
                   f->family == DL_LORA_FAMILY_SDXL ? "an" : "a", family_name (f->family), f->evidence,
                   mf == DL_LORA_FAMILY_SDXL ? "an" : "a", family_name (mf));
      return FALSE;
    }
  /* kohya name -> internal name, built from the model's own modules: SD 1.x/2.x
   * text encoders as lora_te_, SDXL's as lora_te1_/lora_te2_, UNet modules by
   * their diffusers path (kohya's SD 1.x/2.x UNet) and by their LDM/SGM path
   * (kohya's SDXL UNet; ComfyUI reads both for every model) */
  DlLdmLayout layout;
  gboolean have_layout = dl_lora_ldm_layout_from_modules (model_modules, &layout);
  g_autoptr (GHashTable) kohya = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, model_modules);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      gboolean unet = g_str_has_prefix (key, "unet.");
      char *names[2] = {
        mf == DL_LORA_FAMILY_SDXL && !unet ? dl_lora_kohya_name_sdxl (key, NULL) : dl_lora_kohya_name (key),
        ldm_kohya_name (key, have_layout ? &layout : NULL),
      };
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        if (names[i])
          g_hash_table_insert (kohya, names[i], key);
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
