#include "dl-checkpoint.h"

#include <string.h>

#include "dl-error.h"
#include "io/dl-config-resolve.h"
#include "io/dl-json-strict.h"
#include "io/dl-keymap.h"
#include "io/dl-torch-ckpt.h"

/* One file of tensors. */
typedef struct
{
  char *path;
  int component; /* DlComponent for a diffusers file, -1 for a single file */
  DlSafetensors *st;
  DlTorchCkpt *pt;
} Container;

/* A file tensor under its internal name.  Most are a file's tensor as it is;
 * OpenCLIP's fused q/k/v (a third of the rows each: contiguous, so a view of
 * the file's bytes) and its text_projection (stored transposed: a copy, made
 * once the parameter list is built) are synthetic tensors in the internal
 * orientation, named by their file key. */
typedef struct
{
  const DlStTensor *t; /* what the internal name reads */
  const Container *c;
  const DlStTensor *src; /* the file's tensor (t itself unless synthetic) */
  DlLdmPart part;
  DlStTensor own; /* t when synthetic */
  guint8 *own_data;
} Mapped;

static void
mapped_free (Mapped *m)
{
  g_free (m->own_data);
  g_free (m);
}

struct _DlCheckpoint
{
  char *path;
  DlCheckpointLayout layout;
  DlModelFamily family;
  GPtrArray *containers; /* Container* */
  GHashTable *mapped;    /* internal name (owned) -> Mapped* (owned) */
  DlConfigResolver *resolver;
  GPtrArray *params;   /* DlCheckpointParam* */
  GHashTable *by_name; /* internal name -> DlCheckpointParam* */
  GPtrArray *unknown;
  GPtrArray *ignored;
  char *tokenizer_dir;
};

static void
container_free (Container *c)
{
  g_free (c->path);
  g_clear_pointer (&c->st, dl_safetensors_free);
  g_clear_pointer (&c->pt, dl_torch_ckpt_free);
  g_free (c);
}

static guint
container_n (const Container *c)
{
  return c->st ? dl_safetensors_get_n_tensors (c->st) : dl_torch_ckpt_get_n_tensors (c->pt);
}

static const DlStTensor *
container_get (const Container *c, guint i)
{
  return c->st ? dl_safetensors_get_tensor (c->st, i) : dl_torch_ckpt_get_tensor (c->pt, i);
}

static const DlStTensor *
container_find (const Container *c, const char *name)
{
  return c->st ? dl_safetensors_find (c->st, name) : dl_torch_ckpt_find (c->pt, name);
}

static void
param_free (DlCheckpointParam *p)
{
  g_free ((char *)p->name);
  g_free (p);
}

void
dl_checkpoint_free (DlCheckpoint *ck)
{
  if (!ck)
    return;
  g_clear_pointer (&ck->by_name, g_hash_table_unref);
  g_clear_pointer (&ck->params, g_ptr_array_unref);
  g_clear_pointer (&ck->mapped, g_hash_table_unref);
  g_clear_pointer (&ck->containers, g_ptr_array_unref);
  g_clear_pointer (&ck->resolver, dl_config_resolver_free);
  g_clear_pointer (&ck->unknown, g_ptr_array_unref);
  g_clear_pointer (&ck->ignored, g_ptr_array_unref);
  g_free (ck->tokenizer_dir);
  g_free (ck->path);
  g_free (ck);
}

/* ---- opening files ---- */

static Container *
open_container (const char *path, int component, GError **error)
{
  Container *c = g_new0 (Container, 1);
  c->path = g_strdup (path);
  c->component = component;
  guint8 head[9] = { 0 };
  g_autoptr (GFile) f = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) in = g_file_read (f, NULL, NULL);
  gsize got = 0;
  if (in)
    g_input_stream_read_all (G_INPUT_STREAM (in), head, sizeof head, &got, NULL, NULL);
  /* A safetensors header length is at most 100 MB and the JSON starts with
   * '{' (or JSON white space); checked first because the length's low byte
   * may well be 0x80, PROTO.  A zip (PyTorch) starts with PK\3\4, a legacy
   * torch pickle with PROTO; anything else is read as safetensors, whose
   * reader gives the precise complaint. */
  guint64 n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | head[i];
  gboolean safetensors = got == sizeof head && n <= 100000000 && strchr ("{ \t\r\n", head[8]) && head[8];
  if (!safetensors && ((got >= 4 && memcmp (head, "PK\3\4", 4) == 0) || (got >= 2 && head[0] == 0x80 && head[1] <= 5)))
    c->pt = dl_torch_ckpt_open (path, error);
  else
    c->st = dl_safetensors_open (path, error);
  if (!c->st && !c->pt)
    {
      container_free (c);
      return NULL;
    }
  return c;
}

static char *
shape_string (int ndim, const int64_t *shape)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* `part` of the file tensor t as a synthetic tensor in `m` (its data: a view
 * for q/k/v, none yet for a transpose). */
static gboolean
make_part (Mapped *m, const DlStTensor *t, DlLdmPart part, const char *path, GError **error)
{
  DlStTensor *o = &m->own;
  *o = *t;
  g_autofree char *have = shape_string (t->ndim, t->shape);
  if (part == DL_LDM_PART_TRANSPOSED)
    {
      if (t->ndim != 2)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: tensor “%s” has shape %s; OpenCLIP's text projection is a matrix", path, t->name, have);
          return FALSE;
        }
      o->shape[0] = t->shape[1];
      o->shape[1] = t->shape[0];
      o->data = NULL;
    }
  else
    {
      /* rows k·n/3 .. (k+1)·n/3 - 1 of a row-major tensor are contiguous */
      int k = part - DL_LDM_PART_Q;
      gsize es = dl_st_dtype_size (t->dtype);
      if (t->ndim < 1 || t->shape[0] % 3 != 0 || t->shape[0] == 0 || es == 0)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: tensor “%s” has shape %s (%s); OpenCLIP's fused q, k, v projection stacks three "
                       "equal blocks of rows",
                       path, t->name, have, dl_st_dtype_name (t->dtype));
          return FALSE;
        }
      o->shape[0] = t->shape[0] / 3;
      o->numel = t->numel / 3;
      o->nbytes = t->nbytes / 3;
      o->data = t->data ? t->data + (gsize)k * o->nbytes : NULL;
    }
  m->t = o;
  return TRUE;
}

/* Takes `internal`. */
static gboolean
add_mapping (DlCheckpoint *ck, char *internal, const DlStTensor *t, DlLdmPart part, const Container *c, GError **error)
{
  Mapped *prev = g_hash_table_lookup (ck->mapped, internal);
  if (prev)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: both “%s” and “%s” hold the parameter %s", c->path,
                   prev->t->name, t->name, internal);
      g_free (internal);
      return FALSE;
    }
  Mapped *m = g_new0 (Mapped, 1);
  m->t = m->src = t;
  m->c = c;
  m->part = part;
  if (part != DL_LDM_PART_WHOLE && !make_part (m, t, part, c->path, error))
    {
      mapped_free (m);
      g_free (internal);
      return FALSE;
    }
  g_hash_table_insert (ck->mapped, internal, m);
  return TRUE;
}

static char *
display_key (const Container *c, const char *key)
{
  if (c->component < 0)
    return g_strdup (key);
  return g_strdup_printf ("%s/%s", dl_component_name ((DlComponent)c->component), key);
}

static void
note_unmapped (DlCheckpoint *ck, const Container *c, const char *key)
{
  g_ptr_array_add (dl_keymap_is_known_extra (key) ? ck->ignored : ck->unknown, display_key (c, key));
}

static gboolean
map_single_file (DlCheckpoint *ck, Container *c, GError **error)
{
  guint n = container_n (c);
  g_autofree const char **keys = g_new (const char *, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    keys[i] = container_get (c, i)->name;
  DlLdmLayout layout;
  g_autofree char *problem = NULL;
  if (!dl_ldm_layout_probe (keys, n, &layout, &problem))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: not a Stable Diffusion checkpoint: %s", c->path,
                   problem);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      /* position_ids has a text_model. name but is a buffer, not a parameter */
      DlLdmTarget to[3];
      guint nt = dl_keymap_is_known_extra (keys[i]) ? 0 : dl_keymap_ldm_to_internal_parts (keys[i], &layout, to);
      if (nt == 0)
        note_unmapped (ck, c, keys[i]);
      for (guint k = 0; k < nt; k++)
        if (!add_mapping (ck, to[k].name, container_get (c, i), to[k].part, c, error))
          {
            for (guint j = k + 1; j < nt; j++)
              g_free (to[j].name);
            return FALSE;
          }
    }
  return TRUE;
}

static gboolean
map_diffusers_file (DlCheckpoint *ck, Container *c, GError **error)
{
  for (guint i = 0; i < container_n (c); i++)
    {
      const DlStTensor *t = container_get (c, i);
      if (g_str_has_suffix (t->name, "embeddings.position_ids"))
        {
          note_unmapped (ck, c, t->name);
          continue;
        }
      char *internal = dl_keymap_diffusers_to_internal ((DlComponent)c->component, t->name);
      if (!add_mapping (ck, internal, t, DL_LDM_PART_WHOLE, c, error))
        return FALSE;
    }
  return TRUE;
}

/* The weights file of a diffusers component: safetensors first (plain, then
 * the fp16 variant), then the PyTorch .bin. */
static char *
find_component_file (const char *dir, DlComponent comp, GString *looked)
{
  static const char *const unet_vae[] = { "diffusion_pytorch_model.safetensors",
                                          "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin",
                                          "diffusion_pytorch_model.fp16.bin" };
  static const char *const text[] = { "model.safetensors", "model.fp16.safetensors", "pytorch_model.bin",
                                      "pytorch_model.fp16.bin" };
  const char *const *names = comp == DL_COMPONENT_TEXT_ENCODER || comp == DL_COMPONENT_TEXT_ENCODER_2 ? text : unet_vae;
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *p = g_build_filename (dir, dl_component_name (comp), names[i], NULL);
      if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&p);
      g_string_append_printf (looked, "%s%s/%s", looked->len ? ", " : "", dl_component_name (comp), names[i]);
    }
  return NULL;
}

static gboolean
open_diffusers (DlCheckpoint *ck, GError **error)
{
  for (int comp = 0; comp < DL_N_COMPONENTS; comp++)
    {
      /* only SDXL has a second text encoder */
      g_autofree char *te2 = g_build_filename (ck->path, "text_encoder_2", NULL);
      if (comp == DL_COMPONENT_TEXT_ENCODER_2 && !g_file_test (te2, G_FILE_TEST_IS_DIR))
        continue;
      /* an SDXL refiner has only text_encoder_2; detect_family names it */
      g_autofree char *te1 = g_build_filename (ck->path, "text_encoder", NULL);
      if (comp == DL_COMPONENT_TEXT_ENCODER && !g_file_test (te1, G_FILE_TEST_IS_DIR) &&
          g_file_test (te2, G_FILE_TEST_IS_DIR))
        continue;
      g_autoptr (GString) looked = g_string_new (NULL);
      g_autofree char *file = find_component_file (ck->path, (DlComponent)comp, looked);
      if (!file)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: no %s weights (looked for %s)", ck->path,
                       dl_component_name ((DlComponent)comp), looked->str);
          return FALSE;
        }
      Container *c = open_container (file, comp, error);
      if (!c)
        return FALSE;
      g_ptr_array_add (ck->containers, c);
      if (!map_diffusers_file (ck, c, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- family ---- */

static const DlStTensor *
mapped_tensor (DlCheckpoint *ck, const char *name)
{
  Mapped *m = g_hash_table_lookup (ck->mapped, name);
  return m ? m->t : NULL;
}

static gboolean
any_container_key (DlCheckpoint *ck, const char *prefix, const char *suffix, const DlStTensor **found)
{
  for (guint k = 0; k < ck->containers->len; k++)
    {
      Container *c = ck->containers->pdata[k];
      for (guint i = 0; i < container_n (c); i++)
        {
          const DlStTensor *t = container_get (c, i);
          if ((!prefix || g_str_has_prefix (t->name, prefix)) && (!suffix || g_str_has_suffix (t->name, suffix)))
            {
              if (found)
                *found = t;
              return TRUE;
            }
        }
    }
  return FALSE;
}

/* prediction_type of <dir>/scheduler/scheduler_config.json, if it says */
static gboolean
scheduler_prediction (const char *config_dir, DlPredictionType *out)
{
  g_autofree char *path = g_build_filename (config_dir, "scheduler", "scheduler_config.json", NULL);
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (path, &text, &len, NULL) || len > (1 << 20))
    return FALSE;
  g_autofree char *problem = NULL;
  g_autoptr (JsonParser) parser = dl_json_parse_strict (text, len, 32, &problem);
  JsonNode *root = parser ? json_parser_get_root (parser) : NULL;
  JsonNode *p = root && JSON_NODE_HOLDS_OBJECT (root)
                  ? json_object_get_member (json_node_get_object (root), "prediction_type")
                  : NULL;
  if (!p || !JSON_NODE_HOLDS_VALUE (p) || json_node_get_value_type (p) != G_TYPE_STRING)
    return FALSE;
  *out = strcmp (json_node_get_string (p), "v_prediction") == 0 ? DL_PREDICTION_TYPE_V : DL_PREDICTION_TYPE_EPSILON;
  return TRUE;
}

/* The prediction type --config, a folder's own configs or a yaml states (in
 * that order), for naming SD 2.x "v" models.  Only the scheduler's own entry
 * is read here: the rest of an SD 2.x config (head counts per level, ...)
 * cannot be judged before the shapes are known, and errors in those files are
 * reported later by the real resolution. */
static DlPredictionType
stated_prediction (const char *config_dir, const char *own_config, const char *yaml)
{
  DlPredictionType p;
  if ((config_dir && scheduler_prediction (config_dir, &p)) || (own_config && scheduler_prediction (own_config, &p)))
    return p;
  if (yaml)
    {
      g_autoptr (DlConfigResolver) r = dl_config_resolver_new ();
      dl_config_resolver_apply_ldm_yaml (r, yaml, NULL);
      if (dl_config_resolver_is_set (r, "scheduler.prediction_type"))
        return dl_config_resolver_get_config (r)->scheduler.prediction_type;
    }
  return DL_PREDICTION_TYPE_EPSILON;
}

/* Whether `dir` holds any of the config files a diffusers folder has. */
static gboolean
has_diffusers_config (const char *dir)
{
  const char *files[] = { "unet/config.json", "vae/config.json", "text_encoder/config.json",
                          "scheduler/scheduler_config.json" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *p = g_build_filename (dir, files[i], NULL);
      if (g_file_test (p, G_FILE_TEST_EXISTS))
        return TRUE;
    }
  return FALSE;
}

static gboolean
detect_family (DlCheckpoint *ck, const char *config_dir, const char *own_config, const char *yaml, GError **error)
{
  gboolean single = ck->layout != DL_CHECKPOINT_DIFFUSERS;
  const DlStTensor *t;
  int in_ch = -1, ctx = -1;
  gboolean sdxl, openclip, refiner;
  if (single)
    {
      /* SGM's conditioner (diffusers single_file_utils CHECKPOINT_KEY_NAMES:
       * xl_base has conditioner.embedders.1.model.*, xl_refiner OpenCLIP alone
       * as conditioner.embedders.0.model.*); label_emb is the added
       * conditioning of any SDXL UNet */
      sdxl = any_container_key (ck, DL_SGM_PREFIX, NULL, NULL) ||
             any_container_key (ck, DL_LDM_UNET_PREFIX "label_emb.", NULL, NULL);
      openclip = any_container_key (ck, "cond_stage_model.model.", NULL, NULL);
      refiner = any_container_key (ck, DL_SGM_PREFIX "0.model.", NULL, NULL);
      if (any_container_key (ck, DL_LDM_UNET_PREFIX "input_blocks.0.0.weight", NULL, &t) && t->ndim == 4)
        in_ch = (int)t->shape[1];
      if (any_container_key (ck, DL_LDM_UNET_PREFIX, "attn2.to_k.weight", &t) && t->ndim == 2)
        ctx = (int)t->shape[1];
    }
  else
    {
      g_autofree char *te2 = g_build_filename (ck->path, "text_encoder_2", NULL);
      g_autofree char *te1 = g_build_filename (ck->path, "text_encoder", NULL);
      sdxl = g_file_test (te2, G_FILE_TEST_IS_DIR) || mapped_tensor (ck, "unet.add_embedding.linear_1.weight");
      refiner = sdxl && !g_file_test (te1, G_FILE_TEST_IS_DIR);
      t = mapped_tensor (ck, "text_encoder.text_model.embeddings.token_embedding.weight");
      openclip = t && t->ndim == 2 && t->shape[1] == 1024;
      if ((t = mapped_tensor (ck, "unet.conv_in.weight")) && t->ndim == 4)
        in_ch = (int)t->shape[1];
      if ((t = mapped_tensor (ck, "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight")) &&
          t->ndim == 2)
        ctx = (int)t->shape[1];
    }
  if (sdxl)
    ck->family = in_ch == 9 ? DL_FAMILY_SDXL_INPAINT : DL_FAMILY_SDXL;
  else if (openclip || ctx == 1024)
    ck->family = in_ch == 9                                                                 ? DL_FAMILY_SD2_INPAINT
                 : stated_prediction (config_dir, own_config, yaml) == DL_PREDICTION_TYPE_V ? DL_FAMILY_SD2_V
                                                                                            : DL_FAMILY_SD2;
  else if (in_ch == 9)
    ck->family = DL_FAMILY_SD1_INPAINT;
  else
    ck->family = DL_FAMILY_SD1;
  if (refiner)
    {
      /* the refiner conditions on OpenCLIP bigG alone, with an aesthetic score
       * among its time ids (diffusers single_file_utils: the refiner's marker
       * is conditioner.embedders.0.model.*; StableDiffusionXLImg2ImgPipeline) */
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "“%s”: recognised as an SDXL refiner (one OpenCLIP text encoder, aesthetic-score conditioning); "
                   "only SDXL base models and their fine-tunes are supported",
                   ck->path);
      return FALSE;
    }
  if (ck->family != DL_FAMILY_SD1 && ck->family != DL_FAMILY_SDXL)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "“%s”: recognised as %s, not supported yet", ck->path,
                   dl_model_family_name (ck->family));
      return FALSE;
    }
  dl_config_resolver_set_family (ck->resolver, ck->family);
  if (in_ch != -1 && in_ch != 4)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "“%s”: a UNet with %d input channels (SD 1.x and SDXL have 4) is "
                   "not supported yet",
                   ck->path, in_ch);
      return FALSE;
    }
  return TRUE;
}

/* A file that is not a model at all gets a hint about what it might be. */
static gboolean
check_is_model (DlCheckpoint *ck, GError **error)
{
  if (ck->layout == DL_CHECKPOINT_DIFFUSERS)
    return TRUE;
  gboolean unet = any_container_key (ck, DL_LDM_UNET_PREFIX, NULL, NULL);
  if (unet)
    return TRUE;
  const char *what = NULL;
  if (any_container_key (ck, "lora_unet_", NULL, NULL) || any_container_key (ck, "lora_te_", NULL, NULL))
    what = "it looks like a LoRA (lora_unet_* / lora_te_* keys)";
  else if (any_container_key (ck, "encoder.down.", NULL, NULL) || any_container_key (ck, "decoder.up.", NULL, NULL))
    what = "it looks like a standalone VAE";
  else if (any_container_key (ck, "emb_params", NULL, NULL) || any_container_key (ck, "string_to_param", NULL, NULL))
    what = "it looks like a textual-inversion embedding";
  else if (any_container_key (ck, "down_blocks.", NULL, NULL))
    what = "it has diffusers names: pass the diffusers folder that holds it";
  else
    what = "it has no " DL_LDM_UNET_PREFIX "* tensors";
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: not a Stable Diffusion checkpoint: %s", ck->path, what);
  return FALSE;
}

/* OpenCLIP's text_projection is [width, projection] (in, out); one stored as
 * transformers' Linear weight [projection, width] (kohya sd-scripts' SDXL
 * saver copies it so; golden README, item 5) would be read transposed, and a
 * square one cannot be told apart: a non-square one is named here rather than
 * left to a puzzling configuration error. */
static gboolean
check_projection (DlCheckpoint *ck, GError **error)
{
  Mapped *m = g_hash_table_lookup (ck->mapped, "text_encoder_2.text_projection.weight");
  const DlStTensor *tok = mapped_tensor (ck, "text_encoder_2.text_model.embeddings.token_embedding.weight");
  if (!m || m->part != DL_LDM_PART_TRANSPOSED || !tok || tok->ndim != 2)
    return TRUE;
  if (m->src->shape[0] != tok->shape[1])
    {
      g_autofree char *have = shape_string (m->src->ndim, m->src->shape);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "“%s”: tensor “%s” has shape %s; OpenCLIP's text projection is stored (in, out), its first "
                   "dimension the text encoder's width %" G_GINT64_FORMAT "%s",
                   m->c->path, m->src->name, have, tok->shape[1],
                   m->src->shape[1] == tok->shape[1] ? " (this one is stored as a Linear weight, out × in)" : "");
      return FALSE;
    }
  return TRUE;
}

/* ---- configuration ---- */

static gboolean
dim (DlCheckpoint *ck, const char *name, int ndim, int axis, int *out)
{
  const DlStTensor *t = mapped_tensor (ck, name);
  if (!t || t->ndim != ndim || t->shape[axis] < 1 || t->shape[axis] > G_MAXINT)
    return FALSE;
  *out = (int)t->shape[axis];
  return TRUE;
}

/* Count i = 0, 1, ... while "<prefix><i><suffix>" exists. */
static int
count_indexed (DlCheckpoint *ck, const char *prefix, const char *suffix)
{
  int n = 0;
  for (;; n++)
    {
      g_autofree char *name = g_strdup_printf ("%s%d%s", prefix, n, suffix);
      if (!mapped_tensor (ck, name) || n >= 1000)
        return n;
    }
}

static void
config_from_shapes (DlCheckpoint *ck)
{
  DlConfigResolver *r = ck->resolver;
  const char *W = DL_CONFIG_SOURCE_WEIGHTS;
  int v, c0, levels[DL_MODEL_MAX_LEVELS], attn[DL_MODEL_MAX_LEVELS];

  /* UNet */
  if (dim (ck, "unet.conv_in.weight", 4, 1, &v))
    dl_config_resolver_set_int (r, "unet.in_channels", v, W);
  if (dim (ck, "unet.conv_out.weight", 4, 0, &v))
    dl_config_resolver_set_int (r, "unet.out_channels", v, W);
  int L = 0;
  while (L < DL_MODEL_MAX_LEVELS)
    {
      g_autofree char *n = g_strdup_printf ("unet.down_blocks.%d.resnets.0.conv1.weight", L);
      g_autofree char *a = g_strdup_printf ("unet.down_blocks.%d.attentions.0.norm.weight", L);
      if (!dim (ck, n, 4, 0, &levels[L]))
        break;
      attn[L] = mapped_tensor (ck, a) != NULL;
      L++;
    }
  if (L > 0)
    {
      dl_config_resolver_set_int (r, "unet.n_levels", L, W);
      dl_config_resolver_set_levels (r, "unet.block_out_channels", levels, L, W);
      dl_config_resolver_set_levels (r, "unet.level_has_attention", attn, L, W);
      int lpb = count_indexed (ck, "unet.down_blocks.0.resnets.", ".conv1.weight");
      dl_config_resolver_set_int (r, "unet.layers_per_block", lpb, W);
    }
  if (L > 0)
    {
      int depth[DL_MODEL_MAX_LEVELS] = { 0 };
      for (int i = 0; i < L; i++)
        {
          g_autofree char *prefix = g_strdup_printf ("unet.down_blocks.%d.attentions.0.transformer_blocks.", i);
          /* a level without attention keeps diffusers' 1 (SDXL's config says
           * [1, 2, 10] with no transformer at the first level) */
          depth[i] = attn[i] ? count_indexed (ck, prefix, ".norm1.weight") : 1;
        }
      dl_config_resolver_set_levels (r, "unet.transformer_depth", depth, L, W);
    }
  int depth = count_indexed (ck, "unet.mid_block.attentions.0.transformer_blocks.", ".norm1.weight");
  if (depth > 0)
    dl_config_resolver_set_int (r, "unet.mid_transformer_depth", depth, W);
  if (dim (ck, "unet.add_embedding.linear_1.weight", 2, 1, &v))
    dl_config_resolver_set_int (r, "unet.projection_class_embeddings_input_dim", v, W);
  else
    dl_config_resolver_set_int (r, "unet.addition_time_embed_dim", 0, W);
  if (dim (ck, "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight", 2, 1, &v))
    dl_config_resolver_set_int (r, "unet.cross_attention_dim", v, W);
  const DlStTensor *pin = mapped_tensor (ck, "unet.mid_block.attentions.0.proj_in.weight");
  if (pin)
    dl_config_resolver_set_bool (r, "unet.use_linear_projection", pin->ndim == 2, W);
  if (dim (ck, "unet.time_embedding.linear_1.weight", 2, 0, &v) &&
      dim (ck, "unet.time_embedding.linear_1.weight", 2, 1, &c0))
    {
      dl_config_resolver_set_int (r, "unet.time_embed_dim", v, W);
      dl_config_resolver_set_int (r, "unet.time_proj_dim", c0, W);
    }

  /* VAE */
  if (dim (ck, "vae.encoder.conv_in.weight", 4, 1, &v))
    dl_config_resolver_set_int (r, "vae.in_channels", v, W);
  if (dim (ck, "vae.decoder.conv_out.weight", 4, 0, &v))
    dl_config_resolver_set_int (r, "vae.out_channels", v, W);
  if (dim (ck, "vae.post_quant_conv.weight", 4, 0, &v))
    dl_config_resolver_set_int (r, "vae.latent_channels", v, W);
  L = 0;
  while (L < DL_MODEL_MAX_LEVELS)
    {
      g_autofree char *n = g_strdup_printf ("vae.encoder.down_blocks.%d.resnets.0.conv1.weight", L);
      if (!dim (ck, n, 4, 0, &levels[L]))
        break;
      L++;
    }
  if (L > 0)
    {
      dl_config_resolver_set_int (r, "vae.n_levels", L, W);
      dl_config_resolver_set_levels (r, "vae.block_out_channels", levels, L, W);
      dl_config_resolver_set_int (r, "vae.layers_per_block",
                                  count_indexed (ck, "vae.encoder.down_blocks.0.resnets.", ".conv1.weight"), W);
    }

  /* text encoders */
  for (int k = 0; k < 2; k++)
    {
      const char *te = k == 0 ? "text_encoder" : "text_encoder_2";
      g_autofree char *tok = g_strdup_printf ("%s.text_model.embeddings.token_embedding.weight", te);
      g_autofree char *pos = g_strdup_printf ("%s.text_model.embeddings.position_embedding.weight", te);
      g_autofree char *layers_prefix = g_strdup_printf ("%s.text_model.encoder.layers.", te);
      g_autofree char *fc1 = g_strdup_printf ("%s.text_model.encoder.layers.0.mlp.fc1.weight", te);
      g_autofree char *proj = g_strdup_printf ("%s.text_projection.weight", te);
      g_autofree char *f_vocab = g_strdup_printf ("%s.vocab_size", te);
      g_autofree char *f_hidden = g_strdup_printf ("%s.hidden_size", te);
      g_autofree char *f_pos = g_strdup_printf ("%s.max_positions", te);
      g_autofree char *f_layers = g_strdup_printf ("%s.n_layers", te);
      g_autofree char *f_inter = g_strdup_printf ("%s.intermediate_size", te);
      g_autofree char *f_proj = g_strdup_printf ("%s.projection_dim", te);
      if (dim (ck, tok, 2, 0, &v))
        dl_config_resolver_set_int (r, f_vocab, v, W);
      if (dim (ck, tok, 2, 1, &v))
        dl_config_resolver_set_int (r, f_hidden, v, W);
      if (dim (ck, pos, 2, 0, &v))
        dl_config_resolver_set_int (r, f_pos, v, W);
      int layers = count_indexed (ck, layers_prefix, ".mlp.fc1.weight");
      if (layers > 0 || k == 1)
        dl_config_resolver_set_int (r, f_layers, layers, W);
      if (dim (ck, fc1, 2, 0, &v))
        dl_config_resolver_set_int (r, f_inter, v, W);
      /* CLIPTextModel has no projection; text_encoder_2 must have one (a
       * missing one is then reported as the missing tensor it is) */
      if (dim (ck, proj, 2, 0, &v))
        dl_config_resolver_set_int (r, f_proj, v, W);
      else if (k == 0)
        dl_config_resolver_set_int (r, f_proj, 0, W);
    }
  /* add_embedding takes the pooled text embedding and 6 sinusoidal time-id
   * embeddings (diffusers UNet2DConditionModel, addition_embed_type
   * "text_time"): their width follows */
  int add_in, pooled;
  if (dim (ck, "unet.add_embedding.linear_1.weight", 2, 1, &add_in) &&
      dim (ck, "text_encoder_2.text_projection.weight", 2, 0, &pooled) && add_in > pooled && (add_in - pooled) % 6 == 0)
    dl_config_resolver_set_int (r, "unet.addition_time_embed_dim", (add_in - pooled) / 6, W);

  /* the LDM schedule buffers give the number of training steps */
  const DlStTensor *betas =
    ck->layout != DL_CHECKPOINT_DIFFUSERS ? container_find (ck->containers->pdata[0], "betas") : NULL;
  if (betas && betas->ndim == 1 && betas->shape[0] > 1 && betas->shape[0] <= 100000)
    dl_config_resolver_set_int (r, "scheduler.num_train_timesteps", (int)betas->shape[0], W);
}

/* The sidecar LDM config A1111 reads: "model.yaml" next to "model.safetensors"
 * (also accepted: "model.safetensors.yaml"). */
static char *
find_sidecar_yaml (const char *path)
{
  g_autofree char *base = g_strdup (path);
  char *dot = strrchr (base, '.');
  char *slash = strrchr (base, G_DIR_SEPARATOR);
  if (dot && (!slash || dot > slash))
    *dot = '\0';
  char *candidates[2] = { g_strconcat (base, ".yaml", NULL), g_strconcat (path, ".yaml", NULL) };
  char *found = NULL;
  for (int i = 0; i < 2; i++)
    {
      if (!found && g_file_test (candidates[i], G_FILE_TEST_IS_REGULAR))
        found = g_strdup (candidates[i]);
      g_free (candidates[i]);
    }
  return found;
}

/* ---- the parameter list ---- */

static gboolean
shape_matches (const DlParamSpec *spec, const DlStTensor *t)
{
  int nd = t->ndim;
  /* a Linear weight stored as a 1x1 conv ([out, in, 1, 1], or [out, in, 1] in
   * old diffusers files) */
  if (spec->conv1x1_in_ldm)
    while (nd > spec->ndim && t->shape[nd - 1] == 1)
      nd--;
  if (nd != spec->ndim)
    return FALSE;
  for (int i = 0; i < nd; i++)
    if (t->shape[i] != spec->shape[i])
      return FALSE;
  return TRUE;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* The transposed copy of a file matrix a synthetic tensor reads. */
static gboolean
transpose_into (Mapped *m, GError **error)
{
  const DlStTensor *src = m->src;
  gsize es = dl_st_dtype_size (src->dtype);
  gsize rows = (gsize)src->shape[0], cols = (gsize)src->shape[1];
  if (m->own_data || src->nbytes == 0)
    return TRUE;
  if (es == 0 || !src->data || src->nbytes != rows * cols * es)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: tensor “%s” cannot be read as a %zu × %zu matrix",
                   m->c->path, src->name, rows, cols);
      return FALSE;
    }
  m->own_data = g_try_malloc (src->nbytes);
  if (!m->own_data)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory reading “%s” from “%s”", src->name,
                   m->c->path);
      return FALSE;
    }
  for (gsize i = 0; i < rows; i++)
    for (gsize j = 0; j < cols; j++)
      memcpy (m->own_data + (j * rows + i) * es, src->data + (i * cols + j) * es, es);
  m->own.data = m->own_data;
  return TRUE;
}

static gboolean
build_params (DlCheckpoint *ck, GError **error)
{
  DlModelConfig *config = dl_config_resolver_get_config (ck->resolver);
  g_autoptr (GPtrArray) specs = dl_model_param_specs (config);
  DlLdmLayout layout;
  dl_ldm_layout_from_config (config, &layout);
  ck->params = g_ptr_array_new_with_free_func ((GDestroyNotify)param_free);
  ck->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < specs->len; i++)
    {
      const DlParamSpec *spec = specs->pdata[i];
      Mapped *m = g_hash_table_lookup (ck->mapped, spec->name);
      if (!m)
        {
          g_autofree char *ldm = dl_keymap_internal_to_ldm (spec->name, &layout);
          const char *sub = spec->name + strlen (dl_component_name (spec->component)) + 1;
          if (ck->layout == DL_CHECKPOINT_DIFFUSERS)
            g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: missing tensor “%s” in %s/", ck->path, sub,
                         dl_component_name (spec->component));
          else
            g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: missing tensor “%s” (%s)", ck->path,
                         ldm ? ldm : spec->name, spec->name);
          return FALSE;
        }
      if (!shape_matches (spec, m->t))
        {
          /* both in the file's terms: q, k and v stacked, text_projection (in, out) */
          int64_t file_shape[4];
          memcpy (file_shape, spec->shape, sizeof file_shape);
          if (m->part == DL_LDM_PART_TRANSPOSED && spec->ndim == 2)
            {
              file_shape[0] = spec->shape[1];
              file_shape[1] = spec->shape[0];
            }
          else if (m->part != DL_LDM_PART_WHOLE && spec->ndim >= 1)
            file_shape[0] = 3 * spec->shape[0];
          g_autofree char *want = shape_string (spec->ndim, file_shape);
          g_autofree char *have = shape_string (m->src->ndim, m->src->shape);
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: tensor “%s” has shape %s; the model "
                       "configuration needs %s",
                       m->c->path, m->t->name, have, want);
          return FALSE;
        }
      DlStDType dt = m->t->dtype;
      if (dt != DL_ST_F32 && dt != DL_ST_F16 && dt != DL_ST_BF16 && dt != DL_ST_F64)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                       "“%s”: tensor “%s” is stored as %s; model weights must "
                       "be F32, F16, BF16 or F64",
                       m->c->path, m->t->name, dl_st_dtype_name (m->t->dtype));
          return FALSE;
        }
      if (m->part == DL_LDM_PART_TRANSPOSED && !transpose_into (m, error))
        return FALSE;
      DlCheckpointParam *p = g_new0 (DlCheckpointParam, 1);
      p->name = g_strdup (spec->name);
      p->component = spec->component;
      p->file_key = m->t->name;
      p->file_path = m->c->path;
      p->dtype = m->t->dtype;
      p->ndim = spec->ndim;
      memcpy (p->shape, spec->shape, sizeof p->shape);
      p->numel = dl_param_spec_numel (spec);
      g_ptr_array_add (ck->params, p);
      g_hash_table_insert (ck->by_name, (gpointer)p->name, p);
    }
  /* mapped names the architecture does not have */
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, ck->mapped);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (!g_hash_table_contains (ck->by_name, k))
      {
        Mapped *m = v;
        g_ptr_array_add (ck->unknown, display_key (m->c, m->t->name));
      }
  g_ptr_array_sort (ck->unknown, compare_strings);
  g_ptr_array_sort (ck->ignored, compare_strings);
  return TRUE;
}

/* ---- open ---- */

static char *
tokenizer_in (const char *dir)
{
  if (!dir)
    return NULL;
  g_autofree char *t = g_build_filename (dir, "tokenizer", NULL);
  g_autofree char *vocab = g_build_filename (t, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (t, "merges.txt", NULL);
  if (g_file_test (vocab, G_FILE_TEST_IS_REGULAR) && g_file_test (merges, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&t);
  return NULL;
}

DlCheckpoint *
dl_checkpoint_open (const char *path, const char *config_dir, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_autoptr (DlCheckpoint) ck = g_new0 (DlCheckpoint, 1);
  ck->path = g_strdup (path);
  ck->containers = g_ptr_array_new_with_free_func ((GDestroyNotify)container_free);
  ck->mapped = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)mapped_free);
  ck->unknown = g_ptr_array_new_with_free_func (g_free);
  ck->ignored = g_ptr_array_new_with_free_func (g_free);
  ck->resolver = dl_config_resolver_new ();

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "“%s”: no such file or folder", path);
      return NULL;
    }
  g_autofree char *yaml = NULL;
  const char *own_config = NULL;
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *index = g_build_filename (path, "model_index.json", NULL);
      g_autofree char *unet = g_build_filename (path, "unet", NULL);
      if (!g_file_test (index, G_FILE_TEST_EXISTS) && !g_file_test (unet, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s” is a folder but not a diffusers model (no "
                       "model_index.json, no unet/)",
                       path);
          return NULL;
        }
      ck->layout = DL_CHECKPOINT_DIFFUSERS;
      if (!open_diffusers (ck, error))
        return NULL;
      /* a folder's own configs come after --config (which may correct them) */
      if (has_diffusers_config (path))
        own_config = path;
      ck->tokenizer_dir = tokenizer_in (path);
    }
  else
    {
      Container *c = open_container (path, -1, error);
      if (!c)
        return NULL;
      g_ptr_array_add (ck->containers, c);
      ck->layout = c->pt ? DL_CHECKPOINT_SINGLE_FILE_PT : DL_CHECKPOINT_SINGLE_FILE;
      if (!check_is_model (ck, error))
        return NULL;
      yaml = find_sidecar_yaml (path);
    }
  if (!ck->tokenizer_dir)
    ck->tokenizer_dir = tokenizer_in (config_dir);

  /* the family first: other families' keys would not map */
  if (!detect_family (ck, config_dir, own_config, yaml, error))
    return NULL;
  if (ck->layout != DL_CHECKPOINT_DIFFUSERS &&
      (!map_single_file (ck, ck->containers->pdata[0], error) || !check_projection (ck, error)))
    return NULL;

  config_from_shapes (ck);
  if (config_dir && !dl_config_resolver_apply_diffusers_dir (ck->resolver, config_dir, error))
    return NULL;
  if (own_config && !dl_config_resolver_apply_diffusers_dir (ck->resolver, own_config, error))
    return NULL;
  if (yaml && !dl_config_resolver_apply_ldm_yaml (ck->resolver, yaml, error))
    return NULL;
  if (!dl_config_resolver_finish (ck->resolver, error))
    {
      g_prefix_error (error, "“%s”: ", path);
      return NULL;
    }
  if (!build_params (ck, error))
    return NULL;
  return g_steal_pointer (&ck);
}

/* ---- accessors ---- */

const char *
dl_checkpoint_get_path (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return ck->path;
}

DlCheckpointLayout
dl_checkpoint_get_layout (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, DL_CHECKPOINT_SINGLE_FILE);
  return ck->layout;
}

DlModelFamily
dl_checkpoint_get_family (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, DL_FAMILY_UNKNOWN);
  return ck->family;
}

const DlModelConfig *
dl_checkpoint_get_config (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return dl_config_resolver_get_config (ck->resolver);
}

const char *
dl_checkpoint_get_config_source (DlCheckpoint *ck, const char *field)
{
  g_return_val_if_fail (ck != NULL && field != NULL, NULL);
  return dl_config_resolver_get_source (ck->resolver, field);
}

GPtrArray *
dl_checkpoint_get_config_warnings (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return dl_config_resolver_get_warnings (ck->resolver);
}

guint
dl_checkpoint_get_n_params (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, 0);
  return ck->params->len;
}

const DlCheckpointParam *
dl_checkpoint_get_param (DlCheckpoint *ck, guint index)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return index < ck->params->len ? ck->params->pdata[index] : NULL;
}

const DlCheckpointParam *
dl_checkpoint_find (DlCheckpoint *ck, const char *name)
{
  g_return_val_if_fail (ck != NULL && name != NULL, NULL);
  return g_hash_table_lookup (ck->by_name, name);
}

static const Mapped *
lookup (DlCheckpoint *ck, const char *name, GError **error)
{
  const Mapped *m = dl_checkpoint_find (ck, name) ? g_hash_table_lookup (ck->mapped, name) : NULL;
  if (!m)
    g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "“%s” has no parameter “%s”", ck->path, name);
  return m;
}

float *
dl_checkpoint_read_f32 (DlCheckpoint *ck, const char *name, int64_t *numel, GError **error)
{
  g_return_val_if_fail (ck != NULL && name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  const Mapped *m = lookup (ck, name, error);
  if (!m)
    return NULL;
  float *out = g_try_new (float, MAX (m->t->numel, 1));
  if (!out)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory reading “%s” from “%s”", name,
                   m->c->path);
      return NULL;
    }
  if (!dl_st_convert_to_f32 (m->t, out, m->c->path, error))
    {
      g_free (out);
      return NULL;
    }
  if (numel)
    *numel = m->t->numel;
  return out;
}

const DlStTensor *
dl_checkpoint_get_stored (DlCheckpoint *ck, const char *name)
{
  g_return_val_if_fail (ck != NULL && name != NULL, NULL);
  const Mapped *m = dl_checkpoint_find (ck, name) ? g_hash_table_lookup (ck->mapped, name) : NULL;
  return m ? m->t : NULL;
}

DlTensor *
dl_checkpoint_upload (DlCheckpoint *ck, const char *name, DlDevice *device, DlDType dtype, GError **error)
{
  g_return_val_if_fail (ck != NULL && name != NULL && device != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  const Mapped *m = lookup (ck, name, error);
  if (!m)
    return NULL;
  const DlCheckpointParam *p = dl_checkpoint_find (ck, name);
  return dl_st_tensor_upload (m->t, m->c->path, name, p->ndim, p->shape, device, dtype, error);
}

GPtrArray *
dl_checkpoint_get_unknown_keys (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return ck->unknown;
}

GPtrArray *
dl_checkpoint_get_ignored_keys (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return ck->ignored;
}

const char *
dl_checkpoint_get_tokenizer_dir (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  return ck->tokenizer_dir;
}

DlSafetensors *
dl_checkpoint_get_safetensors (DlCheckpoint *ck)
{
  g_return_val_if_fail (ck != NULL, NULL);
  if (ck->layout != DL_CHECKPOINT_SINGLE_FILE)
    return NULL;
  return ((Container *)ck->containers->pdata[0])->st;
}
