/* dl-train-lora.c: LoRA (and LoCon) training as kohya sd-scripts does it
 * (networks/lora.py: create_modules, LoRAModule): which modules get adapters,
 * their initialisation, and the kohya file the run writes. */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "dl-philox.h"
#include "nn/dl-lora.h"
#include "ops/dl-ops.h"
#include "train/dl-lora-export.h"
#include "train/dl-train-metadata.h"

typedef struct
{
  char *name;   /* kohya module name */
  char *target; /* internal module name */
  DlTensor *down, *up;
  int rank;
  float alpha;
  gboolean text;
} Module;

typedef struct
{
  GPtrArray *modules; /* Module* */
} LoraRun;

static void
module_free (gpointer p)
{
  Module *m = p;
  g_free (m->name);
  g_free (m->target);
  dl_tensor_unref (m->down);
  dl_tensor_unref (m->up);
  g_free (m);
}

static void
lora_free (gpointer data)
{
  LoraRun *r = data;
  g_ptr_array_unref (r->modules);
  g_free (r);
}

/* kohya's targets (networks/lora.py LoRANetwork.*_TARGET_REPLACE_MODULE):
 * CLIPAttention/CLIPMLP linears of the text encoder; every Linear and 1x1 conv
 * inside a Transformer2DModel of the UNet; with LoCon also the ResnetBlock2D,
 * Downsample2D and Upsample2D convs (3x3 at the conv rank, the linear time
 * projection and 1x1 shortcut at the normal rank).  Returns the rank to use, 0
 * for no adapter. */
static int
target_rank (const char *module, const DlTensor *w, const DlTrainSettings *s, gboolean *conv3x3)
{
  *conv3x3 = w->ndim == 4 && (w->shape[2] > 1 || w->shape[3] > 1);
  gboolean linear_like = w->ndim == 2 || (w->ndim == 4 && !*conv3x3);
  /* both of SDXL's encoders (kohya's lora_te1_ and lora_te2_; not text_projection) */
  if (g_str_has_prefix (module, "text_encoder.text_model.encoder.layers.") ||
      g_str_has_prefix (module, "text_encoder_2.text_model.encoder.layers."))
    {
      if (s->no_text_encoder)
        return 0;
      return (strstr (module, ".self_attn.") || strstr (module, ".mlp.")) && w->ndim == 2 ? s->rank : 0;
    }
  if (!g_str_has_prefix (module, "unet."))
    return 0;
  if (strstr (module, ".attentions.") && linear_like)
    return s->rank;
  if (s->conv_rank > 0 &&
      (strstr (module, ".resnets.") || strstr (module, ".downsamplers.") || strstr (module, ".upsamplers.")))
    {
      if (*conv3x3)
        return s->conv_rank;
      return linear_like ? s->rank : 0;
    }
  return 0;
}

/* lora_down: torch.nn.init.kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) (PyTorch's Linear default); lora_up: zeros, so training starts
 * from the base model exactly. */
static gboolean
new_module (DlTrainer *t, DlRecorder *rec, guint index, const char *target, const DlTensor *w, int rank, float alpha,
            Module **out, GError **error)
{
  gboolean conv = w->ndim == 4;
  int64_t dshape[4] = { rank, w->shape[1], conv ? w->shape[2] : 1, conv ? w->shape[3] : 1 };
  int64_t ushape[4] = { w->shape[0], rank, 1, 1 };
  int nd = conv ? 4 : 2;
  g_autoptr (DlTensor) down = dl_tensor_new (t->device, "lora_down", DL_DTYPE_F32, nd, dshape, error);
  g_autoptr (DlTensor) up = down ? dl_tensor_new (t->device, "lora_up", DL_DTYPE_F32, nd, ushape, error) : NULL;
  if (!up)
    return FALSE;
  int64_t n = dl_tensor_numel (down);
  double fan_in = (double)n / rank;
  float bound = (float)(1.0 / sqrt (fan_in));
  g_autofree float *v = g_new (float, n);
  for (int64_t k = 0; k < n; k++)
    v[k] = (2.0f * dl_philox_uniform ((guint64)t->settings->seed, G_GUINT64_CONSTANT (0x4c6f5241) + index, k) - 1.0f) *
           bound;
  if (!dl_tensor_upload_f32 (down, v, error) || !dl_op_fill (rec, up, 0.0, error))
    return FALSE;
  Module *m = g_new0 (Module, 1);
  m->target = g_strdup (target);
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  if (dl_model_config_is_sdxl (cfg))
    {
      /* kohya's SDXL names: lora_te1_, lora_te2_, and the UNet by its SGM
       * module paths (sdxl_train_network.py trains sdxl_original_unet) */
      DlLdmLayout layout;
      dl_ldm_layout_from_config (cfg, &layout);
      m->name = dl_lora_kohya_name_sdxl (target, &layout);
    }
  else
    {
      m->name = dl_lora_kohya_name (target);
    }
  m->down = g_steal_pointer (&down);
  m->up = g_steal_pointer (&up);
  m->rank = rank;
  m->alpha = alpha;
  m->text = dl_component_is_text_encoder_param (target);
  *out = m;
  return TRUE;
}

static gboolean
setup_new (DlTrainer *t, LoraRun *r, GError **error)
{
  const DlTrainSettings *s = t->settings;
  DlParams *p = dl_sd_model_get_params (t->model);
  DlRecorder *rec = dl_sd_model_get_recorder (t->model);
  g_autoptr (GPtrArray) names = dl_params_names (p);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      if (!g_str_has_suffix (name, ".weight"))
        continue;
      DlTensor *w = dl_params_lookup (p, name);
      g_autofree char *target = g_strndup (name, strlen (name) - strlen (".weight"));
      gboolean conv3x3;
      int rank = target_rank (target, w, s, &conv3x3);
      if (!rank)
        continue;
      float alpha = (float)(conv3x3 ? s->conv_alpha : s->alpha);
      Module *m = NULL;
      if (!new_module (t, rec, r->modules->len, target, w, rank, alpha, &m, error))
        return FALSE;
      g_ptr_array_add (r->modules, m);
    }
  return TRUE;
}

/* --init-from: exactly the file's modules, whose ranks and alphas must be the
 * run's (kohya networks/lora.py create_network_from_weights). */
static gboolean
setup_from_file (DlTrainer *t, LoraRun *r, GError **error)
{
  const DlTrainSettings *s = t->settings;
  DlParams *p = dl_sd_model_get_params (t->model);
  g_autoptr (DlLoraFile) f = dl_lora_file_open (s->init_from, error);
  if (!f)
    return FALSE;
  g_autoptr (GHashTable) model_modules = dl_params_module_names (p);
  g_autoptr (GPtrArray) unmatched = NULL;
  if (!dl_lora_file_resolve (f, model_modules, &unmatched, error))
    return FALSE;
  if (unmatched && unmatched->len)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "--init-from “%s”: module %s matches nothing in this model (%u of the file's modules do not)",
                   s->init_from, (char *)unmatched->pdata[0], unmatched->len);
      return FALSE;
    }
  for (guint i = 0; i < dl_lora_file_get_n_modules (f); i++)
    {
      const DlLoraModule *lm = dl_lora_file_get_module (f, i);
      gboolean conv3x3 = lm->down->ndim == 4 && (lm->down->shape[2] > 1 || lm->down->shape[3] > 1);
      int want_rank = conv3x3 ? s->conv_rank : s->rank;
      double want_alpha = conv3x3 ? s->conv_alpha : s->alpha;
      if (lm->rank != want_rank || fabs (lm->alpha - want_alpha) > 1e-6 * MAX (1.0, fabs (want_alpha)))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "--init-from “%s”: module %s has rank %d and alpha %g, the run --%s %d --%s %g", s->init_from,
                       lm->file_name, lm->rank, lm->alpha, conv3x3 ? "conv-rank" : "rank", want_rank,
                       conv3x3 ? "conv-alpha" : "alpha", want_alpha);
          return FALSE;
        }
    }
  g_autoptr (GHashTable) tensors =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  if (!dl_lora_attach (p, f, 1.0f, tensors, NULL, error))
    return FALSE;
  for (guint i = 0; i < dl_lora_file_get_n_modules (f); i++)
    {
      const DlLoraModule *lm = dl_lora_file_get_module (f, i);
      Module *m = g_new0 (Module, 1);
      m->name = g_strdup (lm->file_name);
      m->target = g_strdup (lm->target);
      m->down = dl_tensor_ref (g_hash_table_lookup (tensors, lm->down->name));
      m->up = dl_tensor_ref (g_hash_table_lookup (tensors, lm->up->name));
      m->rank = lm->rank;
      m->alpha = lm->alpha;
      m->text = dl_component_is_text_encoder_param (lm->target);
      g_ptr_array_add (r->modules, m);
    }
  return TRUE;
}

static int
module_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(Module *const *)a)->name, (*(Module *const *)b)->name);
}

static gboolean
lora_setup (DlTrainer *t, GError **error)
{
  const DlTrainSettings *s = t->settings;
  LoraRun *r = g_new0 (LoraRun, 1);
  r->modules = g_ptr_array_new_with_free_func (module_free);
  t->method_data = r;
  if (s->init_from ? !setup_from_file (t, r, error) : !setup_new (t, r, error))
    return FALSE;
  if (!r->modules->len)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "no module of this model takes a LoRA");
      return FALSE;
    }
  g_ptr_array_sort (r->modules, module_cmp);
  DlParams *p = dl_sd_model_get_params (t->model);
  DlRecorder *rec = dl_sd_model_get_recorder (t->model);
  for (guint i = 0; i < r->modules->len; i++)
    {
      Module *m = r->modules->pdata[i];
      if (!s->init_from)
        dl_params_add_adapter (p, m->target, m->down, m->up, m->alpha / (float)m->rank);
      if (m->text && s->no_text_encoder)
        continue; /* attached (a file's own), not trained */
      g_autofree char *dn = g_strconcat (m->name, ".lora_down.weight", NULL);
      g_autofree char *un = g_strconcat (m->name, ".lora_up.weight", NULL);
      guint group = m->text ? 1 : 0;
      if (!dl_optimizer_add (t->opt, rec, dn, m->down, group, error) ||
          !dl_optimizer_add (t->opt, rec, un, m->up, group, error))
        return FALSE;
      if (m->text)
        t->train_text = TRUE;
    }
  return TRUE;
}

static char *
lora_prompt (DlTrainer *t, guint image, gint64 template_line, const char *caption)
{
  return g_strdup (caption);
}

static char *
lora_trigger (DlTrainer *t)
{
  return NULL;
}

static gboolean
lora_export (DlTrainer *t, const char *path, GError **error)
{
  LoraRun *r = t->method_data;
  const DlTrainSettings *s = t->settings;
  g_autofree DlLoraExportModule *mods = g_new0 (DlLoraExportModule, r->modules->len);
  g_autoptr (GPtrArray) hold = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < r->modules->len; i++)
    {
      Module *m = r->modules->pdata[i];
      float *down = dl_tensor_download_f32 (m->down, error);
      if (!down)
        return FALSE;
      g_ptr_array_add (hold, down);
      float *up = dl_tensor_download_f32 (m->up, error);
      if (!up)
        return FALSE;
      g_ptr_array_add (hold, up);
      DlLoraExportModule *e = &mods[i];
      e->name = m->name;
      e->down_ndim = m->down->ndim;
      memcpy (e->down_shape, m->down->shape, sizeof (int64_t) * m->down->ndim);
      e->down = down;
      e->up_ndim = m->up->ndim;
      memcpy (e->up_shape, m->up->shape, sizeof (int64_t) * m->up->ndim);
      e->up = up;
      e->alpha = m->alpha;
    }
  g_autoptr (GHashTable) meta = dl_trainer_metadata (t, "lora");
  return dl_lora_export_write (path, mods, r->modules->len, s->save_dtype, meta, error);
}

const DlTrainMethodOps dl_train_method_lora = {
  .name = "lora",
  .setup = lora_setup,
  .prompt = lora_prompt,
  .export = lora_export,
  .trigger = lora_trigger,
  .free = lora_free,
};
