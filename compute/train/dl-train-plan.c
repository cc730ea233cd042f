/* dl-train-plan.c: see dl-train-plan.h.
 *
 * Activations are counted from the architecture: what the tape keeps for each
 * block's backward, in units of one [C, N] activation (C channels, N latent
 * pixels of that level).  Without checkpointing every block's saved tensors
 * live until the backward reaches it; with checkpointing only block inputs are
 * kept and one block at a time is rerun.  The per-block counts below come from
 * the ops the blocks are made of (compute/nn/dl-sd-blocks.c) and were checked
 * against the arena's measured peak (`dreamloom bench train`). */
#include "dl-config.h"

#include "train/dl-train-plan.h"

#include "dl-error.h"
#include "io/dl-checkpoint.h"
#include "io/dl-model-params.h"
#include "nn/dl-params.h"
#include "nn/dl-vae.h"
#include "train/dl-optimizer.h"

/* saved [C, N] tensors per ResnetBlock2D (GroupNorm+SiLU in and out, two convs'
 * inputs, the time-embedding sum) and per Transformer2DModel block (GroupNorm,
 * proj_in, three LayerNorms, q/k/v/out of self-attention, q/out of cross-
 * attention, the 8C feed-forward projection and its 4C GEGLU output, residuals) */
#define RES_SAVED 6.0
#define ATTN_SAVED 30.0
/* gradients and temporaries alive at the peak of one block's backward */
#define BLOCK_WORKING 4.0
/* the text encoder per layer: [77, hidden] units (LayerNorms, q/k/v/out, 4x MLP, GELU) */
#define TEXT_SAVED 14.0

struct _DlTrainPlan
{
  DlDevice *device;
  DlTrainSettings *settings;
  DlModelConfig config;
  /* per parameter: numel and its module */
  GPtrArray *names;
  GArray *numel;
  GArray *ndim;
  GArray *shapes; /* int64[4] per parameter */
  DlTrainPlanFigures figures;
};

static guint64
round_up (guint64 v, guint64 to)
{
  return to ? (v + to - 1) / to * to : v;
}

/* The trained tensors of a run, counted one by one as the optimizer
 * allocates them (dl_optimizer_tensor_bytes) */
typedef struct
{
  DlDevice *device;
  const DlTrainSettings *settings;
  gint64 params;
  gint64 largest;
  guint64 bytes;
} Trained;

static void
trained_tensor (Trained *tr, int64_t numel, gboolean value)
{
  const DlTrainSettings *s = tr->settings;
  tr->params += numel;
  tr->largest = MAX (tr->largest, numel);
  tr->bytes += dl_optimizer_tensor_bytes (tr->device, numel, s->adamw8bit, value, !s->fused_backward_pass);
}

/* LoRA's down and up tensors for the settings: what dl-train-lora.c attaches */
static void
lora_tensors (DlTrainPlan *p, const DlTrainSettings *s, Trained *tr)
{
  for (guint i = 0; i < p->names->len; i++)
    {
      const char *name = p->names->pdata[i];
      if (!g_str_has_suffix (name, ".weight"))
        continue;
      int nd = g_array_index (p->ndim, int, i);
      const int64_t *sh = &g_array_index (p->shapes, int64_t, 4 * i);
      gboolean conv3 = nd == 4 && (sh[2] > 1 || sh[3] > 1);
      gboolean linear_like = nd == 2 || (nd == 4 && !conv3);
      int rank = 0;
      /* both of SDXL's encoders */
      if (g_str_has_prefix (name, "text_encoder.text_model.encoder.layers.") ||
          g_str_has_prefix (name, "text_encoder_2.text_model.encoder.layers."))
        {
          if (!s->no_text_encoder && (strstr (name, ".self_attn.") || strstr (name, ".mlp.")) && nd == 2)
            rank = s->rank;
        }
      else if (g_str_has_prefix (name, "unet."))
        {
          if (strstr (name, ".attentions.") && linear_like)
            rank = s->rank;
          else if (s->conv_rank > 0 && (strstr (name, ".resnets.") || strstr (name, "samplers.")))
            rank = conv3 ? s->conv_rank : linear_like ? s->rank : 0;
        }
      if (!rank)
        continue;
      gint64 fan_in = nd == 4 ? sh[1] * sh[2] * sh[3] : sh[1];
      trained_tensor (tr, rank * fan_in, TRUE);
      trained_tensor (tr, rank * sh[0], TRUE);
    }
}

static double
unet_activation_units (const DlUNetConfig *u, int lh, int lw, gboolean checkpointing, double *largest_block)
{
  double total = 0, largest = 0, boundaries = 0;
  for (int l = 0; l < u->n_levels; l++)
    {
      double n = (double)(lh >> l) * (lw >> l);
      double cn = n * u->block_out_channels[l];
      /* down: layers_per_block resnets (+ transformers); up: one more of each, wider inputs */
      int blocks = 2 * u->layers_per_block + 1;
      double res = blocks * RES_SAVED * cn * 1.25;
      double attn = u->level_has_attention[l] ? blocks * ATTN_SAVED * u->transformer_depth[l] * cn : 0;
      total += res + attn;
      boundaries += blocks * (u->level_has_attention[l] ? 2 : 1) * cn * 1.5;
      double block = MAX (RES_SAVED * 1.5, u->level_has_attention[l] ? ATTN_SAVED * u->transformer_depth[l] : 0) * cn;
      largest = MAX (largest, block);
    }
  /* the mid block: two resnets and a transformer at the last level */
  int L = u->n_levels - 1;
  double cn_mid = (double)(lh >> L) * (lw >> L) * u->block_out_channels[L];
  total += (2 * RES_SAVED + ATTN_SAVED * u->mid_transformer_depth) * cn_mid;
  *largest_block = largest;
  if (checkpointing)
    return boundaries + largest * (1.0 + BLOCK_WORKING / RES_SAVED);
  return total + largest * BLOCK_WORKING / ATTN_SAVED;
}

gboolean
dl_train_plan_compute (DlTrainPlan *p, const DlTrainSettings *s, DlTrainPlanFigures *f)
{
  const DlModelConfig *c = &p->config;
  memset (f, 0, sizeof *f);
  gsize wsize = s->fp16 ? 2 : 4, asize = s->fp16 ? 2 : 4;
  gboolean sdxl = dl_model_config_is_sdxl (c);
  /* SDXL's VAE stays f32 unless it is f16-safe (force_upcast: dl_sd_model_get_vae_dtype) */
  DlDType wdtype = s->fp16 ? DL_DTYPE_F16 : DL_DTYPE_F32;
  DlDType vdtype = sdxl && c->vae.force_upcast ? DL_DTYPE_F32 : wdtype;
  gsize vsize = dl_dtype_size (vdtype);
  /* weights as the loader stores them (each encoder's embeddings by the size
   * of its own token table) */
  gsize emb1 = dl_dtype_size (
    dl_params_embedding_dtype (p->device, (int64_t)c->text_encoder.vocab_size * c->text_encoder.hidden_size, wdtype));
  gsize emb2 = dl_dtype_size (dl_params_embedding_dtype (
    p->device, (int64_t)c->text_encoder_2.vocab_size * c->text_encoder_2.hidden_size, wdtype));
  gboolean te_away = dl_train_settings_text_encoders_off_device (s);
  g_autofree gsize *stored = g_new (gsize, MAX (p->names->len, 1));
  for (guint i = 0; i < p->names->len; i++)
    {
      const char *name = p->names->pdata[i];
      gint64 n = g_array_index (p->numel, gint64, i);
      gsize es = wsize;
      if (g_str_has_prefix (name, "text_encoder.text_model.embeddings."))
        es = emb1;
      else if (g_str_has_prefix (name, "text_encoder_2.text_model.embeddings."))
        es = emb2;
      else if (g_str_has_prefix (name, "vae."))
        es = vsize;
      stored[i] = es;
      guint64 bytes = dl_device_allocation_size (p->device, (guint64)n * es);
      if (te_away && dl_component_is_text_encoder_param (name))
        f->text_encoders_on_host += bytes;
      else
        f->weights += bytes;
    }
  /* trained tensors: value, gradient, AdamW m and v (f32; 8-bit moments with
   * --optimizer adamw8bit); the fused backward pass keeps no gradients, but
   * the few whose parameters' uses the backward is between (the largest tensor,
   * twice: dl-tape.h hands each over after its first use's backward) */
  Trained tr = { .device = p->device, .settings = s };
  if (s->method == DL_TRAIN_LORA)
    {
      lora_tensors (p, s, &tr);
    }
  else if (s->method == DL_TRAIN_TEXTUAL_INVERSION)
    {
      /* SDXL: a vector set per encoder (clip_l and clip_g) */
      trained_tensor (&tr, (int64_t)s->vectors * c->text_encoder.hidden_size, TRUE);
      if (sdxl)
        trained_tensor (&tr, (int64_t)s->vectors * c->text_encoder_2.hidden_size, TRUE);
    }
  else if (s->method == DL_TRAIN_DREAMBOOTH)
    {
      for (guint i = 0; i < p->names->len; i++)
        {
          const char *name = p->names->pdata[i];
          /* --train-text-encoder on SDXL trains both encoders; the model's own
           * f32 weights are the values, f16 ones (a token table too large
           * for f32 too) get f32 masters */
          if (g_str_has_prefix (name, "unet.") || (s->train_text_encoder && dl_component_is_text_encoder_param (name)))
            trained_tensor (&tr, g_array_index (p->numel, gint64, i), stored[i] != 4);
        }
    }
  else if (s->method == DL_TRAIN_HYPERNETWORK)
    {
      g_auto (GStrv) sizes = g_strsplit (s->hn_sizes ? s->hn_sizes : "", ",", -1);
      g_auto (GStrv) layers = g_strsplit (s->hn_layers ? s->hn_layers : "1,2,1", ",", -1);
      for (char **d = sizes; *d; d++)
        {
          double dim = g_ascii_strtod (*d, NULL);
          for (guint k = 0; layers[k] && layers[k + 1]; k++)
            {
              double a = dim * g_ascii_strtod (layers[k], NULL), b = dim * g_ascii_strtod (layers[k + 1], NULL);
              /* the k and the v module: a weight and a bias each, and a
               * LayerNorm's with --hn-layer-norm (dl-hypernetwork.c) */
              for (int kv = 0; kv < 2; kv++)
                {
                  trained_tensor (&tr, (int64_t)(a * b), TRUE);
                  trained_tensor (&tr, (int64_t)b, TRUE);
                  if (s->hn_layer_norm)
                    {
                      trained_tensor (&tr, (int64_t)b, TRUE);
                      trained_tensor (&tr, (int64_t)b, TRUE);
                    }
                }
            }
        }
    }
  f->trained_params = tr.params;
  f->trained = tr.bytes;
  /* LoRA, TI, hypernetworks: all their (small) gradients, to be safe */
  guint64 in_flight = !s->fused_backward_pass            ? 0
                      : s->method == DL_TRAIN_DREAMBOOTH ? 8 * (guint64)tr.largest
                                                         : 4 * (guint64)tr.params;
  /* one step's activations */
  int f8 = 1 << (c->vae.n_levels - 1);
  int lh = s->resolution / f8, lw = s->resolution / f8;
  double largest = 0;
  double units = unet_activation_units (&c->unet, lh, lw, s->checkpointing, &largest);
  double rows = (double)s->batch;
  double act = units * rows * asize;
  gboolean text_trained = s->method == DL_TRAIN_TEXTUAL_INVERSION ||
                          (s->method == DL_TRAIN_LORA && !s->no_text_encoder) ||
                          (s->method == DL_TRAIN_DREAMBOOTH && s->train_text_encoder);
  /* prior preservation doubles the rows */
  if (s->method == DL_TRAIN_DREAMBOOTH && s->class_prompt)
    {
      rows *= 2;
      act *= 2;
    }
  if (text_trained)
    act += TEXT_SAVED * c->text_encoder.n_layers * 77.0 * c->text_encoder.hidden_size * rows * asize;
  /* SDXL's second encoder trains with the first (LoRA) */
  if (text_trained && sdxl)
    act += TEXT_SAVED * c->text_encoder_2.n_layers * 77.0 * c->text_encoder_2.hidden_size * rows * asize;
  /* inputs, targets and the context the step uploads */
  act += rows * (3.0 * c->unet.in_channels * lh * lw + 77.0 * c->unet.cross_attention_dim) * asize;
  f->activations = (guint64)act + in_flight;
  /* encoding one image (dl-latent-cache.c) */
  f->encode = dl_vae_encode_activation_bytes (&c->vae, 1, s->resolution, s->resolution, vdtype);
  f->arena_chunk = 256u << 20;
  /* a run's phases, in order (dl-trainer.c prepare_run); the arena gives its
   * chunks back after the first, so the step does not inherit its memory.
   * Encoding: the whole model, an image and the VAE encoder's working memory;
   * then, with frozen encoders, every prompt (their activations fit one
   * chunk), before the encoders go to the host and anything trained is made */
  guint64 chunk = f->arena_chunk;
  guint64 pixels = dl_device_allocation_size (p->device, 3 * (guint64)s->resolution * s->resolution * vsize);
  f->peak_encoding = f->weights + f->text_encoders_on_host + pixels + MAX (round_up (f->encode, chunk), chunk);
  f->peak_training = f->weights + f->trained + MAX (round_up (f->activations, chunk), chunk);
  /* the encoders back on the device next to the trained tensors: previews
   * (dl_sd_sample gives the arena's chunks back first), or the prompts of a
   * LoRA from --init-from, whose text-encoder modules attach in its setup */
  gboolean back = s->sample_every > 0 || (s->method == DL_TRAIN_LORA && s->init_from);
  if (f->text_encoders_on_host && back)
    f->peak_encoders_back = f->weights + f->text_encoders_on_host + f->trained + chunk;
  f->total = MAX (MAX (f->peak_encoding, f->peak_training), f->peak_encoders_back);
  f->budget = dl_device_get_memory_budget (p->device, &f->budget_from_driver);
  guint64 limit = dl_device_get_memory_limit (p->device);
  f->budget_is_limit = limit && f->budget == limit;
  f->budget_is_host = !f->budget_is_limit && !f->budget_from_driver &&
                      dl_device_get_info (p->device)->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  return TRUE;
}

static void
copy_config (DlTrainPlan *p, const DlModelConfig *c)
{
  p->config = *c;
}

DlTrainPlan *
dl_train_plan_new_for_config (DlDevice *device, const DlTrainSettings *settings, const DlModelConfig *config)
{
  g_return_val_if_fail (device != NULL && settings != NULL && config != NULL, NULL);
  DlTrainPlan *p = g_new0 (DlTrainPlan, 1);
  p->device = device;
  p->settings = dl_train_settings_copy (settings);
  copy_config (p, config);
  p->names = g_ptr_array_new_with_free_func (g_free);
  p->numel = g_array_new (FALSE, FALSE, sizeof (gint64));
  p->ndim = g_array_new (FALSE, FALSE, sizeof (int));
  p->shapes = g_array_new (FALSE, TRUE, sizeof (int64_t));
  g_autoptr (GPtrArray) specs = dl_model_param_specs (config);
  for (guint i = 0; i < specs->len; i++)
    {
      const DlParamSpec *sp = specs->pdata[i];
      g_ptr_array_add (p->names, g_strdup (sp->name));
      gint64 n = dl_param_spec_numel (sp);
      g_array_append_val (p->numel, n);
      g_array_append_val (p->ndim, sp->ndim);
      int64_t sh[4] = { 1, 1, 1, 1 };
      for (int k = 0; k < sp->ndim && k < 4; k++)
        sh[k] = sp->shape[k];
      g_array_append_vals (p->shapes, sh, 4);
    }
  dl_train_plan_compute (p, settings, &p->figures);
  return p;
}

DlTrainPlan *
dl_train_plan_new (DlDevice *device, const DlTrainSettings *settings, GError **error)
{
  g_return_val_if_fail (device != NULL && settings != NULL, NULL);
  if (!settings->model)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "--model: the base model is required");
      return NULL;
    }
  g_autoptr (DlCheckpoint) ck = dl_checkpoint_open (settings->model, settings->config, error);
  if (!ck)
    return NULL;
  return dl_train_plan_new_for_config (device, settings, dl_checkpoint_get_config (ck));
}

void
dl_train_plan_free (DlTrainPlan *p)
{
  if (!p)
    return;
  dl_train_settings_free (p->settings);
  g_ptr_array_unref (p->names);
  g_array_unref (p->numel);
  g_array_unref (p->ndim);
  g_array_unref (p->shapes);
  g_free (p);
}

const DlTrainPlanFigures *
dl_train_plan_get_figures (DlTrainPlan *p)
{
  return &p->figures;
}

const DlModelConfig *
dl_train_plan_get_config (DlTrainPlan *p)
{
  g_return_val_if_fail (p != NULL, NULL);
  return &p->config;
}

gboolean
dl_train_plan_fits (DlTrainPlan *p)
{
  return p->figures.budget == 0 || p->figures.total <= p->figures.budget;
}

static char *
size_text (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

GPtrArray *
dl_train_plan_suggestions (DlTrainPlan *p)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  if (dl_train_plan_fits (p))
    return out;
  const DlTrainSettings *s = p->settings;
  /* cumulative: 8-bit moments and the fused backward pass (full fine-tuning), f16, checkpointing, halving the
   * batch, the rank */
  g_autoptr (DlTrainSettings) t = dl_train_settings_copy (s);
  GString *opts = g_string_new (NULL);
  for (int stage = -2; stage < 8; stage++)
    {
      gboolean changed = FALSE;
      if (stage == -2 && t->method == DL_TRAIN_DREAMBOOTH && !t->adamw8bit)
        {
          t->adamw8bit = TRUE;
          g_string_append (opts, " --optimizer adamw8bit");
          changed = TRUE;
        }
      else if (stage == -1 && t->method == DL_TRAIN_DREAMBOOTH && !t->fused_backward_pass && t->grad_accum == 1)
        {
          /* after 8-bit moments, before f16: the step is the same one, only clipped per tensor */
          t->fused_backward_pass = TRUE;
          g_string_append (opts, " --fused-backward-pass");
          changed = TRUE;
        }
      else if (stage == 0 && !t->fp16)
        {
          t->fp16 = TRUE;
          g_string_append (opts, " --fp16");
          changed = TRUE;
        }
      else if (stage == 1 && !t->checkpointing)
        {
          t->checkpointing = TRUE;
          g_string_append (opts, " --checkpointing");
          changed = TRUE;
        }
      else if (stage >= 2 && stage < 5 && t->batch > 1)
        {
          t->batch = MAX (1, t->batch / 2);
          g_string_append_printf (opts, " --batch %d", t->batch);
          changed = TRUE;
        }
      else if (stage >= 5 && t->method == DL_TRAIN_LORA && t->rank > 4)
        {
          t->rank = MAX (4, t->rank / 2);
          g_string_append_printf (opts, " --rank %d", t->rank);
          changed = TRUE;
        }
      if (!changed)
        continue;
      DlTrainPlanFigures f;
      dl_train_plan_compute (p, t, &f);
      if (f.total <= f.budget)
        {
          g_autofree char *need = size_text (f.total);
          g_ptr_array_add (out, g_strdup_printf ("%s (needs %s)", opts->str + 1, need));
          break;
        }
    }
  g_string_free (opts, TRUE);
  return out;
}

char *
dl_train_plan_describe (DlTrainPlan *p)
{
  const DlTrainPlanFigures *f = &p->figures;
  const DlTrainSettings *s = p->settings;
  g_autofree char *w = size_text (f->weights), *tr = size_text (f->trained), *a = size_text (f->activations);
  g_autofree char *e = size_text (f->encode), *ch = size_text (f->arena_chunk), *tot = size_text (f->total);
  g_autofree char *b = size_text (f->budget);
  GString *str = g_string_new (NULL);
  g_string_append_printf (str, "memory plan: %s, %dx%d, batch %d, %s weights%s%s\n", dl_train_method_name (s->method),
                          s->resolution, s->resolution, s->batch, s->fp16 ? "f16" : "f32",
                          s->checkpointing ? ", gradient checkpointing" : "",
                          s->fused_backward_pass ? ", fused backward pass" : "");
  g_string_append_printf (str, "  weights (frozen):            %s\n", w);
  if (f->text_encoders_on_host)
    {
      g_autofree char *te = size_text (f->text_encoders_on_host);
      g_string_append_printf (str, "  text encoders (in host memory once the prompts are encoded): %s\n", te);
    }
  gboolean own_values = s->method == DL_TRAIN_DREAMBOOTH && !s->fp16;
  g_string_append_printf (str, "  trained tensors (%.2f M; %s%s%s AdamW moments): %s\n", f->trained_params / 1e6,
                          own_values ? "" : "f32 values, ", s->fused_backward_pass ? "" : "gradients, ",
                          s->adamw8bit ? "8-bit" : "f32", tr);
  g_string_append_printf (str, "  activations (one step):      %s\n", a);
  g_string_append_printf (str, "  encoding the images (once):  %s\n", e);
  g_string_append_printf (str, "  activation memory comes in chunks of %s\n", ch);
  const char *when = f->total == f->peak_training        ? "training"
                     : f->total == f->peak_encoders_back ? "the text encoders are back for previews or prompts"
                     : f->text_encoders_on_host          ? "encoding the images and prompts"
                                                         : "encoding the images";
  g_string_append_printf (str, "  predicted peak:              %s (while %s)\n", tot, when);
  g_string_append_printf (str, "  device budget:               %s (%s)\n", b,
                          f->budget_is_limit      ? "the memory limit"
                          : f->budget_from_driver ? "VK_EXT_memory_budget"
                          : f->budget_is_host     ? "the host's free memory"
                                                  : "heap size");
  if (dl_train_plan_fits (p))
    {
      g_string_append (str, "  fits\n");
    }
  else
    {
      g_autoptr (GPtrArray) sug = dl_train_plan_suggestions (p);
      g_string_append (str, "  does not fit\n");
      for (guint i = 0; i < sug->len; i++)
        g_string_append_printf (str, "  would fit with: %s\n", (char *)sug->pdata[i]);
      if (!sug->len)
        g_string_append (str, "  no setting of this model fits this device\n");
    }
  return g_string_free (str, FALSE);
}
