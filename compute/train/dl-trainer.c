/* dl-trainer.c: see dl-trainer.h.  The step follows the reference training
 * scripts (diffusers examples/text_to_image/train_text_to_image.py and
 * train_text_to_image_lora.py, kohya sd-scripts train_network.py): posterior
 * sample of the cached VAE moments, noise (+ offset), DDPM noising, text
 * encoding, UNet, MSE (min-SNR weighted), backward into the trained tensors,
 * clipping over all of them, AdamW per group, schedule advanced after. */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "dl-error.h"
#include "nn/dl-sdxl-conditioning.h"
#include "nn/dl-text-encoder.h"
#include "nn/dl-nn.h"
#include "nn/dl-unet.h"
#include "ops/dl-ops.h"
#include "tensor/dl-arena.h"
#include "train/dl-prompt-templates.h"
#include "train/dl-train-step.h"

const char *
dl_train_event_kind_name (DlTrainEventKind kind)
{
  static const char *const names[] = { "status",     "step",    "validation", "preview",
                                       "checkpoint", "warning", "error",      "finished" };
  return kind < G_N_ELEMENTS (names) ? names[kind] : "unknown";
}

/* ---- events ---- */

void
dl_trainer_emit (DlTrainer *t, const DlTrainEvent *ev)
{
  if (t->event_func)
    t->event_func (ev, t->event_data);
}

void
dl_trainer_warn (DlTrainer *t, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  DlTrainEvent ev = {
    .kind = DL_TRAIN_EVENT_WARNING, .step = t->step, .total_steps = t->settings->steps, .message = msg
  };
  dl_trainer_emit (t, &ev);
}

void
dl_trainer_status (DlTrainer *t, double progress, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  DlTrainEvent ev = { .kind = DL_TRAIN_EVENT_STATUS,
                      .step = t->step,
                      .total_steps = t->settings->steps,
                      .message = msg,
                      .progress = progress };
  dl_trainer_emit (t, &ev);
}

/* ---- creation ---- */

static const DlTrainMethodOps *
method_ops (DlTrainMethod m)
{
  switch (m)
    {
    case DL_TRAIN_LORA:
      return &dl_train_method_lora;
    case DL_TRAIN_TEXTUAL_INVERSION:
      return &dl_train_method_textual_inversion;
    case DL_TRAIN_DREAMBOOTH:
      return &dl_train_method_dreambooth;
    case DL_TRAIN_HYPERNETWORK:
      return &dl_train_method_hypernetwork;
    default:
      return NULL;
    }
}

/* $DREAMLOOM_TEST_INJECT_NAN=STEP or A-B (steps numbered from 1, as the step
 * events and warnings number them): the gradients of those steps become NaN,
 * each step once (a step run again after a rollback is clean), for the tests
 * of the non-finite handling; read once per trainer */
static void
read_inject_nan (DlTrainer *t)
{
  const char *v = g_getenv ("DREAMLOOM_TEST_INJECT_NAN");
  char *end = NULL;
  t->inject_nan_from = t->inject_nan_to = -1;
  t->inject_nan_done = 0;
  if (!v || !*v)
    return;
  t->inject_nan_from = t->inject_nan_to = g_ascii_strtoll (v, &end, 10);
  if (end && *end == '-')
    t->inject_nan_to = g_ascii_strtoll (end + 1, NULL, 10);
}

DlTrainer *
dl_trainer_new (DlDevice *device, DlSdModel *model, const DlTrainSettings *settings, GError **error)
{
  g_return_val_if_fail (device != NULL && settings != NULL, NULL);
  if (!dl_train_settings_validate (settings, error))
    return NULL;
  if (model && (dl_sd_model_get_dtype (model) == DL_DTYPE_F16) != settings->fp16)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "the loaded model's weights are %s, the run wants %s",
                   dl_sd_model_get_dtype (model) == DL_DTYPE_F16 ? "f16" : "f32", settings->fp16 ? "f16" : "f32");
      return NULL;
    }
  DlTrainer *t = g_new0 (DlTrainer, 1);
  t->device = device;
  t->settings = dl_train_settings_copy (settings);
  t->run_dir = dl_train_settings_run_dir (settings);
  t->model = model;
  t->method = method_ops (settings->method);
  t->lr_scale = 1.0;
  t->best_step = -1;
  t->best_val = INFINITY;
  t->last_val = NAN;
  t->checkpoints = g_array_new (FALSE, FALSE, sizeof (gint64));
  t->validations = g_array_new (FALSE, FALSE, sizeof (DlTrainValidation));
  t->losses = dl_loss_log_new ();
  read_inject_nan (t);
  t->started_at = g_get_real_time ();
  g_mutex_init (&t->pause_lock);
  g_cond_init (&t->pause_cond);
  return t;
}

void
dl_trainer_free (DlTrainer *t)
{
  if (!t)
    return;
  if (t->method && t->method->free && t->method_data)
    t->method->free (t->method_data);
  if (t->model)
    {
      DlParams *p = dl_sd_model_get_params (t->model);
      dl_params_clear_adapters (p);
      dl_params_clear_hypernetworks (p);
      dl_params_clear_added_tokens (p);
    }
  if (t->moments)
    {
      for (guint i = 0; i < dl_train_images_get_n (t->images); i++)
        dl_latent_moments_clear (&t->moments[i]);
      g_free (t->moments);
    }
  if (t->class_moments)
    {
      for (guint i = 0; i < dl_train_images_get_n (t->class_images); i++)
        dl_latent_moments_clear (&t->class_moments[i]);
      g_free (t->class_moments);
    }
  g_clear_pointer (&t->class_images, dl_train_images_free);
  g_clear_pointer (&t->text_cache, g_hash_table_unref);
  g_clear_pointer (&t->opt, dl_optimizer_free);
  g_clear_pointer (&t->draws, dl_draws_free);
  g_clear_pointer (&t->replay, dl_replay_free);
  g_clear_pointer (&t->images, dl_train_images_free);
  g_clear_pointer (&t->image_paths, g_ptr_array_unref);
  g_clear_pointer (&t->image_captions, g_hash_table_unref);
  g_strfreev (t->templates);
  g_clear_pointer (&t->tok, dl_clip_tokenizer_free);
  g_clear_pointer (&t->tok2, dl_clip_tokenizer_free);
  g_clear_pointer (&t->owned_model, dl_sd_model_free);
  g_array_unref (t->checkpoints);
  g_array_unref (t->validations);
  g_array_unref (t->losses);
  g_free (t->model_hash);
  dl_model_hashes_clear (&t->hashes);
  g_free (t->run_dir);
  dl_train_settings_free (t->settings);
  g_mutex_clear (&t->pause_lock);
  g_cond_clear (&t->pause_cond);
  if (t->event_destroy)
    t->event_destroy (t->event_data);
  g_free (t);
}

void
dl_trainer_set_event_func (DlTrainer *t, DlTrainEventFunc func, gpointer user_data, GDestroyNotify destroy)
{
  if (t->event_destroy)
    t->event_destroy (t->event_data);
  t->event_func = func;
  t->event_data = user_data;
  t->event_destroy = destroy;
}

const DlTrainSettings *
dl_trainer_get_settings (DlTrainer *t)
{
  return t->settings;
}

DlSdModel *
dl_trainer_get_model (DlTrainer *t)
{
  return t->model;
}

gint64
dl_trainer_get_step (DlTrainer *t)
{
  return t->step;
}

void
dl_trainer_set_between_steps_func (DlTrainer *t, DlTrainBetweenStepsFunc func, gpointer user_data)
{
  t->between_func = func;
  t->between_data = user_data;
}

void
dl_trainer_pause (DlTrainer *t)
{
  g_mutex_lock (&t->pause_lock);
  t->paused = TRUE;
  g_mutex_unlock (&t->pause_lock);
}

void
dl_trainer_unpause (DlTrainer *t)
{
  g_mutex_lock (&t->pause_lock);
  t->paused = FALSE;
  g_cond_broadcast (&t->pause_cond);
  g_mutex_unlock (&t->pause_lock);
}

/* ---- preparing ---- */

static gboolean
load_templates (DlTrainer *t, GError **error)
{
  t->templates = dl_ti_templates_load (t->settings->template_file, error);
  t->n_templates = t->templates ? g_strv_length (t->templates) : 0;
  return t->templates != NULL;
}

void
dl_trainer_set_images (DlTrainer *t, const char *const *paths, const char *const *captions, guint n)
{
  g_return_if_fail (t != NULL && !t->prepared);
  g_return_if_fail (paths != NULL || n == 0);
  g_clear_pointer (&t->image_paths, g_ptr_array_unref);
  g_clear_pointer (&t->image_captions, g_hash_table_unref);
  t->image_paths = g_ptr_array_new_full (n, g_free);
  t->image_captions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < n; i++)
    {
      g_ptr_array_add (t->image_paths, g_strdup (paths[i]));
      if (captions && captions[i] && *captions[i])
        g_hash_table_replace (t->image_captions, g_strdup (paths[i]), g_strdup (captions[i]));
    }
}

static gboolean
load_images (DlTrainer *t, GCancellable *cancellable, GError **error)
{
  const DlTrainSettings *s = t->settings;
  /* the list dl_trainer_set_images gave, or the folder's files */
  g_autoptr (GPtrArray) paths =
    t->image_paths ? g_ptr_array_ref (t->image_paths) : dl_train_images_list_folder (s->images, error);
  if (!paths)
    return FALSE;
  if (!paths->len && !t->image_paths)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "--images %s: no training image in this folder (PNG, JPEG or WebP files)", s->images);
      return FALSE;
    }
  DlTrainImagesOptions o = {
    .resolution = s->resolution,
    .buckets = s->buckets,
    .random_crop = s->random_crop,
    .seed = (guint64)s->seed,
  };
  g_autoptr (GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  t->images = dl_train_images_new ((const char *const *)paths->pdata, paths->len, &o, warnings, cancellable, error);
  for (guint i = 0; i < warnings->len; i++)
    dl_trainer_warn (t, "%s", (char *)warnings->pdata[i]);
  return t->images != NULL;
}

static gboolean
make_draws (DlTrainer *t, GError **error)
{
  const DlTrainSettings *s = t->settings;
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  if (s->replay)
    {
      t->replay = dl_replay_open (s->replay, s, cfg->unet.in_channels, s->resolution >> (cfg->vae.n_levels - 1), error);
      if (!t->replay)
        return FALSE;
      /* every index must name an image of this run */
      DlSafetensors *st = dl_replay_get_file (t->replay);
      guint n = dl_train_images_get_n (t->images);
      for (gint64 k = 0; k < s->steps; k++)
        {
          g_autofree char *name = g_strdup_printf ("step%" G_GINT64_FORMAT ".images", k);
          int64_t cnt = 0;
          g_autofree float *v = dl_safetensors_read_f32 (st, name, &cnt, error);
          if (!v)
            return FALSE;
          for (int64_t i = 0; i < cnt; i++)
            if (v[i] < 0 || v[i] >= n)
              {
                g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "replay “%s”: %s names image %g; the run has %u",
                             s->replay, name, v[i], n);
                return FALSE;
              }
          g_autofree char *cname = g_strdup_printf ("step%" G_GINT64_FORMAT ".class_images", k);
          if (!dl_safetensors_find (st, cname))
            continue;
          guint nc = t->class_images ? dl_train_images_get_n (t->class_images) : 0;
          g_autofree float *cv = dl_safetensors_read_f32 (st, cname, &cnt, error);
          if (!cv)
            return FALSE;
          for (int64_t i = 0; i < cnt; i++)
            if (cv[i] < 0 || cv[i] >= nc)
              {
                g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                             "replay “%s”: %s names class image %g; the run has %u (--class-images)", s->replay, cname,
                             cv[i], nc);
                return FALSE;
              }
        }
      return TRUE;
    }
  guint n = dl_train_images_get_n (t->images);
  guint nb = dl_train_images_get_n_buckets (t->images);
  g_autofree guint *bucket_of = g_new (guint, n);
  for (guint i = 0; i < n; i++)
    bucket_of[i] = dl_train_images_get_bucket_of (t->images, i);
  int f = 1 << (cfg->vae.n_levels - 1);
  g_autofree int *hw = g_new (int, 2 * nb);
  for (guint b = 0; b < nb; b++)
    {
      int w, h;
      dl_train_images_get_bucket (t->images, b, &w, &h);
      hw[2 * b] = h / f;
      hw[2 * b + 1] = w / f;
    }
  DlDrawsConfig c = {
    .seed = (guint64)s->seed,
    .n_images = n,
    .repeats = (guint)s->repeats,
    .batch = (guint)s->batch,
    .n_templates = s->method == DL_TRAIN_TEXTUAL_INVERSION || s->method == DL_TRAIN_HYPERNETWORK ? t->n_templates : 0,
    .n_class_images = t->class_images ? dl_train_images_get_n (t->class_images) : 0,
    .flip = s->flip,
    .noise_offset = s->noise_offset,
    .n_timesteps = dl_sd_model_get_schedule (t->model)->n,
    .latent_channels = cfg->unet.in_channels,
    .bucket_of = bucket_of,
    .n_buckets = nb,
    .bucket_latent_hw = hw,
  };
  t->draws = dl_draws_new (&c);
  return TRUE;
}

const char *
dl_trainer_image_caption (DlTrainer *t, guint image)
{
  const DlTrainImage *im = dl_train_images_get (t->images, image);
  const char *given = t->image_captions ? g_hash_table_lookup (t->image_captions, im->path) : NULL;
  if (given)
    return given;
  if (im->caption)
    return im->caption;
  if (t->settings->instance_prompt)
    return t->settings->instance_prompt;
  return im->filename_caption;
}

/* A diffusers folder's identity (its name says nothing of its weights): the
 * sha256 over each component's config.json and weights file, taken in the
 * order the loader prefers them (dl-checkpoint.c find_component_file). */
static char *
folder_identity (const char *dir, GCancellable *cancellable, GError **error)
{
  static const char *const components[] = { "text_encoder", "unet", "vae" };
  static const char *const unet_vae[] = { "config.json",
                                          "diffusion_pytorch_model.safetensors",
                                          "diffusion_pytorch_model.fp16.safetensors",
                                          "diffusion_pytorch_model.bin",
                                          "diffusion_pytorch_model.fp16.bin",
                                          NULL };
  static const char *const text[] = { "config.json",       "model.safetensors",      "model.fp16.safetensors",
                                      "pytorch_model.bin", "pytorch_model.fp16.bin", NULL };
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  for (guint c = 0; c < G_N_ELEMENTS (components); c++)
    {
      const char *const *names = c == 0 ? text : unet_vae;
      gboolean weights = FALSE;
      for (guint i = 0; names[i] && !weights; i++)
        {
          g_autofree char *p = g_build_filename (dir, components[c], names[i], NULL);
          if (!g_file_test (p, G_FILE_TEST_IS_REGULAR))
            continue;
          g_autofree char *sha = dl_model_hash_sha256 (p, cancellable, error);
          if (!sha)
            return NULL;
          g_autofree char *line = g_strdup_printf ("%s/%s %s\n", components[c], names[i], sha);
          g_checksum_update (sum, (const guchar *)line, -1);
          weights = i > 0;
        }
    }
  return g_strdup (g_checksum_get_string (sum));
}

/* SDXL: captions go to both encoders; the second pads with 0 and keeps “!” as
 * text, as OpenCLIP (which SDXL was trained with), kohya sd-scripts, A1111 and
 * ComfyUI tokenize (diffusers' tokenizer_2 would split it out).  A copy of the
 * first: the tokens Textual Inversion adds have the same ids in both. */
static void
make_tokenizer_2 (DlTrainer *t)
{
  if (!dl_model_config_is_sdxl (dl_sd_model_get_config (t->model)))
    return;
  g_clear_pointer (&t->tok2, dl_clip_tokenizer_free);
  t->tok2 = dl_clip_tokenizer_copy (t->tok);
  dl_clip_tokenizer_set_pad_style (t->tok2, DL_CLIP_PAD_ZERO);
}

static gboolean prepare_run (DlTrainer *t, GCancellable *cancellable, gboolean *made_run_dir, GError **error);
static gboolean text_encoders_away (DlTrainer *t, GError **error);

gboolean
dl_trainer_prepare (DlTrainer *t, GCancellable *cancellable, GError **error)
{
  if (t->prepared)
    return TRUE;
  gboolean made_run_dir = FALSE;
  if (prepare_run (t, cancellable, &made_run_dir, error))
    return TRUE;
  /* a run that failed to start leaves no empty run folder behind (one holding
   * generated class images stays: the next run uses them) */
  if (made_run_dir)
    {
      g_autofree char *class_dir = g_build_filename (t->run_dir, "class", NULL);
      g_rmdir (class_dir);
      g_rmdir (t->run_dir);
    }
  return FALSE;
}

static gboolean
prepare_run (DlTrainer *t, GCancellable *cancellable, gboolean *made_run_dir, GError **error)
{
  const DlTrainSettings *s = t->settings;
  t->cancellable = cancellable;
  /* a new run never writes over another run's checkpoints */
  g_autofree char *run_json = g_build_filename (t->run_dir, "run.json", NULL);
  if (!t->resuming && g_file_test (run_json, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "the run folder “%s” already holds a run: continue it with --resume, or choose another --out or "
                   "--run-dir",
                   t->run_dir);
      return FALSE;
    }
  if (!t->model)
    {
      dl_trainer_status (t, -1, "Loading %s", s->model);
      t->owned_model =
        dl_sd_model_load_as (t->device, s->model, s->config, s->fp16 ? DL_DTYPE_F16 : DL_DTYPE_F32, error);
      if (!t->owned_model)
        return FALSE;
      t->model = t->owned_model;
    }
  /* a shared model's encoders may wait on the host after a failed preview */
  if (!dl_sd_model_text_encoders_to_device (t->model, error))
    return FALSE;
  /* every method but hypernetworks trains SDXL */
  if (dl_model_config_is_sdxl (dl_sd_model_get_config (t->model)) && strcmp (t->method->name, "hypernetwork") == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "“%s” is a Stable Diffusion XL model: hypernetworks are for Stable Diffusion 1.x models "
                   "(AUTOMATIC1111 has none for SDXL); train a LoRA instead",
                   s->model);
      return FALSE;
    }
  DlCheckpoint *ck = dl_sd_model_get_checkpoint (t->model);
  /* the base model's identity: the exports' metadata, and no resuming onto
   * another (a model of random weights, for benchmarks, has no file) */
  if (ck)
    {
      dl_trainer_status (t, -1, "Hashing %s", s->model);
      if (!dl_model_hashes_compute (s->model, &t->hashes, cancellable, error))
        return FALSE;
    }
  else
    {
      t->hashes.name = g_strdup (s->model);
    }
  if (t->hashes.is_folder)
    {
      t->model_hash = folder_identity (s->model, cancellable, error);
      if (!t->model_hash)
        return FALSE;
    }
  else
    {
      t->model_hash = g_strdup (t->hashes.sha256 ? t->hashes.sha256 : t->hashes.name);
    }
  t->tok = dl_clip_tokenizer_find (ck ? dl_checkpoint_get_tokenizer_dir (ck) : NULL, s->vocab, error);
  if (!t->tok)
    return FALSE;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  dl_trainer_status (t, -1, "Reading the images in %s", s->images);
  if (!load_images (t, cancellable, error))
    return FALSE;
  if ((s->method == DL_TRAIN_TEXTUAL_INVERSION || s->method == DL_TRAIN_HYPERNETWORK) && !load_templates (t, error))
    return FALSE;
  *made_run_dir = !t->resuming && !g_file_test (t->run_dir, G_FILE_TEST_EXISTS);
  if (!t->resuming && g_mkdir_with_parents (t->run_dir, 0755) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot create the run folder “%s”: %s", t->run_dir,
                   g_strerror (errno));
      return FALSE;
    }
  /* before anything is attached to the model: class images come from the base model */
  if (!dl_trainer_prepare_class_images (t, error))
    return FALSE;
  if (!dl_trainer_cache_latents (t, error))
    return FALSE;
  /* encoders that train nothing: every prompt of the run through them now and
   * they to host memory, before the trained tensors are made (the plan's
   * peak_encoding); a LoRA from --init-from attaches the file's text-encoder
   * modules in its setup, so its prompts wait for it */
  gboolean off_device = dl_train_settings_text_encoders_off_device (s);
  gboolean prompts_first = off_device && !(s->method == DL_TRAIN_LORA && s->init_from);
  if (prompts_first)
    {
      make_tokenizer_2 (t);
      t->text_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      if (!text_encoders_away (t, error))
        return FALSE;
    }
  t->opt = dl_optimizer_new (t->device, s->adam_beta1, s->adam_beta2, s->adam_eps);
  dl_optimizer_set_8bit (t->opt, s->adamw8bit);
  /* group 0 is the UNet's (--lr), group 1 the text encoder's (--text-encoder-lr) */
  dl_optimizer_add_group (t->opt, "unet", s->weight_decay);
  dl_optimizer_add_group (t->opt, "text_encoder", s->weight_decay);
  if (!t->method->setup (t, error) || !dl_recorder_finish (dl_sd_model_get_recorder (t->model), error))
    return FALSE;
  /* again: it needs the tokens Textual Inversion added */
  make_tokenizer_2 (t);
  if (!make_draws (t, error))
    return FALSE;
  if (!t->train_text && !t->text_cache)
    t->text_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (t->resuming)
    {
      dl_trainer_list_checkpoints (t);
      g_autofree char *state = dl_trainer_latest_state (t);
      if (!state)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: no saved state to resume from", t->run_dir);
          return FALSE;
        }
      dl_trainer_status (t, -1, "Resuming from %s", state);
      if (!dl_trainer_read_state (t, state, error))
        return FALSE;
    }
  else
    {
      /* the state at step 0: what a rollback before the first checkpoint returns to */
      g_autofree char *p0 = dl_trainer_state_path (t, 0);
      if (!dl_trainer_write_state (t, p0, error) || !dl_trainer_write_run_json (t, error))
        return FALSE;
    }
  if (off_device && !prompts_first && !text_encoders_away (t, error))
    return FALSE;
  t->prepared = TRUE;
  return TRUE;
}

/* ---- one step ---- */

static DlTensor *
upload_as (DlDevice *device, const char *name, DlDType dtype, int ndim, const int64_t *shape, const void *data,
           DlDType src, GError **error)
{
  g_autoptr (DlTensor) t = dl_tensor_new (device, name, dtype, ndim, shape, error);
  if (!t || !dl_tensor_upload (t, data, src, error))
    return NULL;
  return g_steal_pointer (&t);
}

/* The prompts of a micro-batch as token ids [rows, 77], through `tok`. */
static gint32 *
batch_ids (DlTrainer *t, DlClipTokenizer *tok, const DlStepDraws *d, gboolean augment, GError **error)
{
  const DlTrainSettings *s = t->settings;
  g_autofree gint32 *ids = g_new (gint32, (gsize)d->n_rows * DL_CLIP_MAX_LENGTH);
  for (int r = 0; r < d->n; r++)
    {
      guint img = (guint)d->images[r];
      const char *caption = dl_trainer_image_caption (t, img);
      g_autofree char *aug = NULL;
      if (augment && (s->shuffle_tags || s->caption_dropout > 0))
        aug = dl_caption_augment (caption, s->shuffle_tags, (guint)s->keep_tags, s->caption_dropout,
                                  d->caption_random + (gsize)r * DL_DRAWS_CAPTION_WORDS, DL_DRAWS_CAPTION_WORDS);
      g_autofree char *prompt = t->method->prompt (t, img, d->templates ? d->templates[r] : -1, aug ? aug : caption);
      if (!dl_clip_tokenizer_encode_77 (tok, prompt, ids + (gsize)r * DL_CLIP_MAX_LENGTH, error))
        return NULL;
    }
  /* prior preservation: the class half trains on the class prompt */
  for (int r = d->n; r < d->n_rows; r++)
    if (!dl_clip_tokenizer_encode_77 (tok, s->class_prompt ? s->class_prompt : "", ids + (gsize)r * DL_CLIP_MAX_LENGTH,
                                      error))
      return NULL;
  return g_steal_pointer (&ids);
}

/* Text-encoder outputs of `ids` (and, for SDXL, `ids2`) when nothing in the
 * encoders trains: computed once per distinct prompt and kept on the host.
 * *context [rows, 77, C]; for SDXL also *pooled [rows, P]. */
static gboolean
cached_conditioning (DlTrainer *t, DlTape *tape, const gint32 *ids, const gint32 *ids2, int rows, DlTensor **context,
                     DlTensor **pooled, GError **error)
{
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  gboolean sdxl = ids2 != NULL;
  int C = cfg->text_encoder.hidden_size + (sdxl ? cfg->text_encoder_2.hidden_size : 0);
  int P = sdxl ? cfg->text_encoder_2.projection_dim : 0;
  gsize per = (gsize)DL_CLIP_MAX_LENGTH * C;
  g_autofree float *ctx = g_new (float, per *rows);
  g_autofree float *pool = g_new (float, (gsize)MAX (P, 1) * rows);
  for (int r = 0; r < rows; r++)
    {
      const gint32 *row = ids + (gsize)r * DL_CLIP_MAX_LENGTH;
      const gint32 *row2 = sdxl ? ids2 + (gsize)r * DL_CLIP_MAX_LENGTH : NULL;
      gint32 both[2 * DL_CLIP_MAX_LENGTH];
      memcpy (both, row, sizeof (gint32) * DL_CLIP_MAX_LENGTH);
      if (sdxl)
        memcpy (both + DL_CLIP_MAX_LENGTH, row2, sizeof (gint32) * DL_CLIP_MAX_LENGTH);
      g_autofree char *key =
        g_base64_encode ((const guchar *)both, sizeof (gint32) * DL_CLIP_MAX_LENGTH * (sdxl ? 2 : 1));
      float *hit = g_hash_table_lookup (t->text_cache, key);
      if (!hit)
        {
          int64_t shape[2] = { 1, DL_CLIP_MAX_LENGTH };
          g_autoptr (DlTape) off = dl_tape_new (dl_tape_get_recorder (tape), dl_tape_get_arena (tape));
          dl_tape_set_enabled (off, FALSE);
          dl_tape_set_activation_dtype (off, dl_tape_get_activation_dtype (tape));
          DlParams *params = dl_sd_model_get_params (t->model);
          g_autoptr (DlTensor) it =
            upload_as (t->device, "input_ids", DL_DTYPE_I32, 2, shape, row, DL_DTYPE_I32, error);
          g_autoptr (DlTensor) c = NULL, pl = NULL;
          /* a preview may have left them on the host (dl_sd_sample) */
          if (!it || !dl_sd_model_text_encoders_to_device (t->model, error))
            return FALSE;
          if (sdxl)
            {
              g_autoptr (DlTensor) it2 =
                upload_as (t->device, "input_ids_2", DL_DTYPE_I32, 2, shape, row2, DL_DTYPE_I32, error);
              DlSdxlEncodeOptions o = { .clip_skip = MAX (t->settings->clip_skip, 2) };
              if (!it2 || !dl_sdxl_encode_prompt (params, cfg, off, it, it2, row2, &o, &c, &pl, error))
                return FALSE;
            }
          else
            {
              DlTextEncoderOptions o = { .clip_skip = t->settings->clip_skip };
              c = dl_text_encoder_forward (params, &cfg->text_encoder, off, it, &o, error);
              if (!c)
                return FALSE;
            }
          if (!dl_recorder_finish (dl_tape_get_recorder (tape), error))
            return FALSE;
          g_autofree float *cv = dl_tensor_download_f32 (c, error);
          g_autofree float *pv = cv && pl ? dl_tensor_download_f32 (pl, error) : NULL;
          if (!cv || (pl && !pv))
            return FALSE;
          hit = g_new (float, per + P);
          memcpy (hit, cv, per * sizeof (float));
          if (P)
            memcpy (hit + per, pv, P * sizeof (float));
          g_hash_table_insert (t->text_cache, g_steal_pointer (&key), hit);
          /* a prompt no one foresaw (a replay's): back to the host */
          if (t->text_encoders_away && !dl_sd_model_text_encoders_to_host (t->model, NULL, error))
            return FALSE;
        }
      memcpy (ctx + per * r, hit, per * sizeof (float));
      if (P)
        memcpy (pool + (gsize)P * r, hit + per, P * sizeof (float));
    }
  DlDType act = dl_tape_get_activation_dtype (tape);
  int64_t shape[3] = { rows, DL_CLIP_MAX_LENGTH, C }, pshape[2] = { rows, P };
  *context = upload_as (t->device, "context", act, 3, shape, ctx, DL_DTYPE_F32, error);
  if (*context && sdxl)
    *pooled = upload_as (t->device, "text_embeds", act, 2, pshape, pool, DL_DTYPE_F32, error);
  return *context && (!sdxl || *pooled);
}

/* SDXL's time ids of each row, as kohya sd-scripts' training loader passes them
 * (library/train_util.py: original size, the crop's top-left in the resized
 * image, the bucket; sdxl_train_util.get_size_embeddings): f32 [rows, 6]. */
static float *
batch_time_ids (DlTrainer *t, const DlStepDraws *d)
{
  float *v = g_new (float, (gsize)d->n_rows * 6);
  for (int r = 0; r < d->n_rows; r++)
    {
      gboolean cls = r >= d->n;
      DlTrainImages *set = cls ? t->class_images : t->images;
      const DlTrainImage *im = dl_train_images_get (set, (guint)(cls ? d->class_images[r - d->n] : d->images[r]));
      dl_sdxl_time_ids (v + 6 * r, im->width, im->height, im->crop_x, im->crop_y, im->bucket_width, im->bucket_height);
    }
  return v;
}

/* Latents, noisy latents and targets of a micro-batch (host, f32). */
static gboolean
batch_latents (DlTrainer *t, const DlStepDraws *d, float **noisy_out, float **target_out, GError **error)
{
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  const DlNoiseSchedule *sched = dl_sd_model_get_schedule (t->model);
  int L = cfg->unet.in_channels, h = d->latent_h, w = d->latent_w;
  gsize hw = (gsize)h * w, per = (gsize)L * hw;
  float scale = (float)cfg->vae.scaling_factor;
  g_autofree float *lat = g_new (float, per * d->n_rows);
  for (int r = 0; r < d->n_rows; r++)
    {
      gboolean cls = r >= d->n;
      guint img = (guint)(cls ? d->class_images[r - d->n] : d->images[r]);
      const DlLatentMoments *m = cls ? &t->class_moments[img] : &t->moments[img];
      if (m->h != h || m->w != w)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "image %u has %dx%d latents, the step draws %dx%d (different sizes in one batch)", img, m->w,
                       m->h, w, h);
          return FALSE;
        }
      gboolean flip = d->flips && !cls && d->flips[r];
      const float *mean = flip ? m->mean_flipped : m->mean, *std = flip ? m->std_flipped : m->std;
      const float *eps = d->latent_eps + per * r;
      for (gsize i = 0; i < per; i++)
        lat[per * r + i] = (mean[i] + std[i] * eps[i]) * scale;
    }
  g_autofree float *noise = g_memdup2 (d->noise, per * d->n_rows * sizeof (float));
  if (d->offset_eps)
    {
      float o = (float)t->settings->noise_offset;
      for (int r = 0; r < d->n_rows; r++)
        for (int c = 0; c < L; c++)
          for (gsize k = 0; k < hw; k++)
            noise[per * r + hw * c + k] += o * d->offset_eps[r * L + c];
    }
  float *noisy = g_new (float, per * d->n_rows), *target = g_new (float, per * d->n_rows);
  for (int r = 0; r < d->n_rows; r++)
    {
      int ts = (int)d->timesteps[r];
      dl_noise_schedule_add_noise (sched, ts, lat + per * r, noise + per * r, noisy + per * r, per);
      if (sched->config.prediction == DL_PREDICTION_V)
        dl_noise_schedule_velocity (sched, ts, lat + per * r, noise + per * r, target + per * r, per);
      else
        memcpy (target + per * r, noise + per * r, per * sizeof (float));
    }
  *noisy_out = noisy;
  *target_out = target;
  return TRUE;
}

/* Min-SNR-γ weights per row (diffusers training_utils.compute_snr and the
 * weighting of train_text_to_image.py), or NULL when off. */
static float *
batch_weights (DlTrainer *t, const DlStepDraws *d)
{
  double gamma = t->settings->min_snr_gamma;
  gboolean prior = d->n_rows > d->n;
  if (gamma <= 0 && !prior)
    return NULL;
  const DlNoiseSchedule *sched = dl_sd_model_get_schedule (t->model);
  /* the loss averages over all rows: with prior preservation the instance half's
   * mean plus λ times the class half's (diffusers train_dreambooth.py) is the
   * mean over rows with weights 2 and 2λ (no SNR weight on the prior term: in
   * train_dreambooth.py the prior loss is a plain F.mse_loss) */
  double scale = prior ? (double)d->n_rows / d->n : 1.0;
  float *w = g_new (float, d->n_rows);
  for (int r = 0; r < d->n_rows; r++)
    {
      if (r >= d->n)
        w[r] = (float)(scale * t->settings->prior_weight);
      else if (gamma > 0)
        w[r] = (float)(scale *
                       dl_noise_schedule_min_snr_weight (sched, (int)d->timesteps[r], gamma, sched->config.prediction));
      else
        w[r] = (float)scale;
    }
  return w;
}

static DlTape *
new_tape (DlTrainer *t)
{
  DlTape *tape = dl_tape_new (dl_sd_model_get_recorder (t->model), dl_sd_model_get_arena (t->model));
  dl_tape_set_activation_dtype (tape, t->settings->fp16 ? DL_DTYPE_F16 : DL_DTYPE_F32);
  return tape;
}

/* Every prompt of the run through the text encoders, then the encoders to
 * host memory (their device memory goes to the UNet's training): the images'
 * captions, the empty one that caption dropout trains with, the class prompt.
 * A preview brings them back (dl_sd_sample); the run sends them away again. */
static gboolean
text_encoders_away (DlTrainer *t, GError **error)
{
  const DlTrainSettings *s = t->settings;
  g_autoptr (GPtrArray) prompts = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < dl_train_images_get_n (t->images); i++)
    {
      g_ptr_array_add (prompts, t->method->prompt (t, i, -1, dl_trainer_image_caption (t, i)));
      if (s->caption_dropout > 0)
        g_ptr_array_add (prompts, t->method->prompt (t, i, -1, ""));
    }
  if (t->class_images)
    g_ptr_array_add (prompts, g_strdup (s->class_prompt ? s->class_prompt : ""));
  g_autoptr (DlTape) tape = new_tape (t);
  dl_tape_set_enabled (tape, FALSE);
  for (guint i = 0; i < prompts->len; i++)
    {
      gint32 ids[DL_CLIP_MAX_LENGTH], ids2[DL_CLIP_MAX_LENGTH];
      g_autoptr (DlTensor) context = NULL, pooled = NULL;
      if (!dl_clip_tokenizer_encode_77 (t->tok, prompts->pdata[i], ids, error) ||
          (t->tok2 && !dl_clip_tokenizer_encode_77 (t->tok2, prompts->pdata[i], ids2, error)) ||
          !cached_conditioning (t, tape, ids, t->tok2 ? ids2 : NULL, 1, &context, &pooled, error))
        return FALSE;
    }
  /* the step grows the arena to its own needs (the plan's peak_training) */
  dl_arena_trim (dl_sd_model_get_arena (t->model));
  gboolean moved = FALSE;
  if (!dl_sd_model_text_encoders_to_host (t->model, &moved, error))
    return FALSE;
  t->text_encoders_away = moved;
  return TRUE;
}

/* The UNet's loss on a micro-batch; with `train`, its gradients (scaled by
 * grad_scale) are added into the optimizer's buffers, or with `fused_lr` (the
 * groups' rates) each tensor's step is applied during the backward.
 * *per_sample (may be NULL) receives each row's weighted loss. */
static gboolean
forward_loss (DlTrainer *t, const DlStepDraws *d, gboolean train, float grad_scale, const double *fused_lr,
              double *loss_out, float **per_sample, GError **error)
{
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  int rows = d->n_rows;
  int64_t xshape[4] = { rows, cfg->unet.in_channels, d->latent_h, d->latent_w };

  g_autofree float *noisy = NULL, *target = NULL;
  g_autofree gint32 *ids = batch_ids (t, t->tok, d, train, error);
  g_autofree gint32 *ids2 = ids && t->tok2 ? batch_ids (t, t->tok2, d, train, error) : NULL;
  if (!ids || (t->tok2 && !ids2) || !batch_latents (t, d, &noisy, &target, error))
    return FALSE;
  g_autofree float *time_ids = t->tok2 ? batch_time_ids (t, d) : NULL;
  g_autofree float *weights = batch_weights (t, d);
  g_autofree float *tsteps = g_new (float, rows);
  for (int r = 0; r < rows; r++)
    tsteps[r] = (float)d->timesteps[r];

  if (t->method->begin_forward)
    t->method->begin_forward (t, train);
  g_autoptr (DlTape) tape = new_tape (t);
  dl_tape_set_enabled (tape, train);
  if (train && fused_lr && !dl_optimizer_fused_begin (t->opt, tape, fused_lr, t->settings->max_grad_norm, error))
    return FALSE;
  if (train && !fused_lr)
    dl_optimizer_attach (t->opt, tape);
  DlDType act = dl_tape_get_activation_dtype (tape);
  int64_t n_rows = rows;
  int64_t ishape[2] = { rows, DL_CLIP_MAX_LENGTH };
  g_autoptr (DlTensor) context = NULL, pooled = NULL, it = NULL, it2 = NULL, tid = NULL;
  if (t->text_cache && !cached_conditioning (t, tape, ids, ids2, rows, &context, &pooled, error))
    return FALSE;
  if (!t->text_cache &&
      (!(it = upload_as (t->device, "input_ids", DL_DTYPE_I32, 2, ishape, ids, DL_DTYPE_I32, error)) ||
       (ids2 && !(it2 = upload_as (t->device, "input_ids_2", DL_DTYPE_I32, 2, ishape, ids2, DL_DTYPE_I32, error)))))
    return FALSE;
  int64_t tshape[2] = { rows, 6 };
  if (time_ids && !(tid = upload_as (t->device, "time_ids", DL_DTYPE_F32, 2, tshape, time_ids, DL_DTYPE_F32, error)))
    return FALSE;
  g_autoptr (DlTensor) xt = upload_as (t->device, "noisy_latents", act, 4, xshape, noisy, DL_DTYPE_F32, error);
  g_autoptr (DlTensor) tt =
    xt ? upload_as (t->device, "timesteps", DL_DTYPE_F32, 1, &n_rows, tsteps, DL_DTYPE_F32, error) : NULL;
  g_autoptr (DlTensor) yt = tt ? upload_as (t->device, "target", act, 4, xshape, target, DL_DTYPE_F32, error) : NULL;
  g_autoptr (DlTensor) wt =
    yt && weights ? upload_as (t->device, "loss_weights", DL_DTYPE_F32, 1, &n_rows, weights, DL_DTYPE_F32, error)
                  : NULL;
  if (!yt || (weights && !wt))
    return FALSE;
  gint64 nth = t->step + 1;
  gboolean poison = train && nth >= t->inject_nan_from && nth <= t->inject_nan_to && nth > t->inject_nan_done;
  if (poison)
    t->inject_nan_done = nth; /* once per step */
  DlTrainBatch batch = {
    .noisy = xt,
    .timesteps = tt,
    .target = yt,
    .weights = wt,
    .input_ids = it,
    .context = context,
    .input_ids_2 = it2,
    .host_ids_2 = ids2,
    .text_embeds = pooled,
    .time_ids = tid,
    .clip_skip = t->settings->clip_skip,
    .checkpointing = t->settings->checkpointing,
    .grad_scale = grad_scale,
    .backward = train,
    .poison = poison,
  };
  g_autoptr (DlTensor) loss = NULL;
  g_autoptr (DlTensor) ps = NULL;
  if (!dl_train_batch_run (t->model, tape, &batch, &loss, &ps, error))
    return FALSE;
  if (train)
    dl_optimizer_collect_reached (t->opt, tape);
  g_autofree float *lv = dl_tensor_download_f32 (loss, error);
  if (!lv)
    return FALSE;
  *loss_out = lv[0];
  if (per_sample && !(*per_sample = dl_tensor_download_f32 (ps, error)))
    return FALSE;
  return TRUE;
}

static double
schedule_factor (const DlTrainSettings *s, gint64 step)
{
  /* diffusers get_scheduler builds a LambdaLR: one factor scales every group's
   * initial rate; polynomial computes it from the first group's rate */
  double base = s->lr > 0 ? s->lr : 1.0;
  DlLrSchedule sched = dl_lr_schedule_init (s->lr_scheduler, base, s->lr_warmup, s->steps);
  if (s->lr_scheduler == DL_LR_COSINE_WITH_RESTARTS)
    sched.num_cycles = s->lr_cycles;
  sched.power = s->lr_power;
  return dl_lr_schedule_at (&sched, step) / base;
}

static double
group_base_lr (const DlTrainSettings *s, guint group)
{
  return group == 1 ? s->text_encoder_lr : s->lr;
}

static gboolean rollback (DlTrainer *t, const char *why, GError **error);
static gboolean check_trained_finite (DlTrainer *t, gboolean *rolled_back, GError **error);

gboolean
dl_trainer_step (DlTrainer *t, GError **error)
{
  g_return_val_if_fail (t->prepared, FALSE);
  const DlTrainSettings *s = t->settings;
  DlRecorder *rec = dl_sd_model_get_recorder (t->model);
  gint64 t0 = g_get_monotonic_time ();
  if (!t->t_first_step)
    t->t_first_step = t0;
  double factor = schedule_factor (s, t->step);
  double lrs[2] = { group_base_lr (s, 0) * factor * t->lr_scale, group_base_lr (s, 1) * factor * t->lr_scale };
  /* the fused backward pass applies each tensor's step during the backward
   * (one micro-batch: the settings refuse --grad-accum with it) */
  gboolean fused = s->fused_backward_pass;
  if (!fused && !dl_optimizer_zero_grad (t->opt, rec, error))
    return FALSE;
  int k = s->grad_accum, samples = 0;
  double loss = 0;
  for (int j = 0; j < k; j++)
    {
      DlStepDraws d;
      gboolean ok = t->replay ? dl_replay_make (t->replay, t->step, &d, error)
                              : (dl_draws_make (t->draws, (guint64)t->step * k + j, &d), TRUE);
      if (!ok)
        return FALSE;
      double lj = 0;
      ok = forward_loss (t, &d, TRUE, 1.0f / k, fused ? lrs : NULL, &lj, NULL, error);
      samples += d.n;
      dl_step_draws_clear (&d);
      if (!ok)
        return FALSE;
      loss += lj / k;
    }

  double grad_norm = 0.0;
  gboolean none = FALSE;
  const char *fused_bad = NULL;
  guint stepped = 0, left = 0;
  g_autoptr (DlTensor) norm = NULL;
  if (fused)
    {
      if (!dl_optimizer_fused_end (t->opt, &stepped, &left, &fused_bad, &grad_norm, error))
        return FALSE;
      none = stepped == 0 && left == 0;
    }
  else
    {
      /* the total norm before clipping, over every gradient the loss reached */
      int64_t two = 2;
      norm = dl_tensor_new (t->device, "grad_norm", DL_DTYPE_F32, 1, &two, error);
      if (!norm)
        return FALSE;
      gboolean recorded = dl_optimizer_grad_norm (t->opt, rec, norm, s->max_grad_norm, &none, error);
      if (!recorded && !none)
        return FALSE;
      g_autofree float *nv = NULL;
      if (recorded && (!dl_recorder_finish (rec, error) || !(nv = dl_tensor_download_f32 (norm, error))))
        return FALSE;
      grad_norm = nv ? nv[0] : 0.0;
    }

  if (!isfinite (loss) || !isfinite (grad_norm))
    {
      g_autoptr (GError) e = NULL;
      const char *bad = fused ? fused_bad : dl_optimizer_find_non_finite (t->opt, TRUE, &e);
      /* the fused pass cannot hold the step back: its finite tensors were updated */
      g_autofree char *outcome = fused ? g_strdup_printf ("the fused backward pass left %u tensors as they were and "
                                                          "updated %u",
                                                          left, stepped)
                                       : g_strdup ("the step is not applied");
      t->non_finite_streak++;
      dl_trainer_warn (t, "step %" G_GINT64_FORMAT ": the %s is not finite (%s); %s", t->step + 1,
                       isfinite (loss) ? "gradient" : "loss",
                       bad               ? bad
                       : isfinite (loss) ? "no tensor found"
                                         : "loss",
                       outcome);
      t->step++;
      if (t->non_finite_streak >= 3)
        return rollback (t, "three steps in a row were not finite", error);
    }
  else
    {
      if (none)
        {
          dl_trainer_warn (t, "step %" G_GINT64_FORMAT ": the loss reaches no trained tensor", t->step + 1);
        }
      else if (!fused && (!dl_optimizer_step (t->opt, rec, lrs, s->max_grad_norm > 0 ? norm : NULL, error) ||
                          !dl_recorder_finish (rec, error)))
        {
          return FALSE;
        }
      t->non_finite_streak = 0;
      t->step++;
    }

  t->steps_this_session++;
  double elapsed = (g_get_monotonic_time () - t->t_first_step) / 1e6;
  double per_step = elapsed / t->steps_this_session;
  DlTrainEvent ev = {
    .kind = DL_TRAIN_EVENT_STEP,
    .step = t->step,
    .total_steps = s->steps,
    .loss = loss,
    .lr = lrs[0],
    .grad_norm = grad_norm,
    .images_per_s = samples / MAX ((g_get_monotonic_time () - t0) / 1e6, 1e-9),
    .eta_s = per_step * (double)(s->steps - t->step),
    .memory = dl_device_get_memory_in_use (t->device),
  };
  dl_loss_log_add (t->losses, ev.step, ev.loss, ev.lr);
  dl_trainer_emit (t, &ev);
  return TRUE;
}

/* A trained tensor that became NaN or infinite cannot be trained on: roll back.
 * (AdamW on finite gradients keeps finite values finite, so this is checked when
 * the run validates or saves, not every step: it costs a pass over every trained
 * tensor.)  *rolled_back tells whether it did. */
static gboolean
check_trained_finite (DlTrainer *t, gboolean *rolled_back, GError **error)
{
  *rolled_back = FALSE;
  DlRecorder *rec = dl_sd_model_get_recorder (t->model);
  guint n = dl_optimizer_get_n (t->opt);
  if (n == 0)
    return TRUE;
  g_autoptr (GPtrArray) ps = g_ptr_array_new ();
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (ps, dl_optimizer_get_param (t->opt, i));
  int64_t two = 2;
  g_autoptr (DlTensor) norm = dl_tensor_new (t->device, "param_norm", DL_DTYPE_F32, 1, &two, error);
  g_autofree float *pn = NULL;
  if (!norm || !dl_op_grad_norm (rec, norm, (DlTensor *const *)ps->pdata, ps->len, 0.0f, error) ||
      !dl_recorder_finish (rec, error) || !(pn = dl_tensor_download_f32 (norm, error)))
    return FALSE;
  if (isfinite (pn[0]))
    return TRUE;
  g_autoptr (GError) e = NULL;
  const char *bad = dl_optimizer_find_non_finite (t->opt, FALSE, &e);
  g_autofree char *why = g_strdup_printf ("the trained tensor %s is no longer finite", bad ? bad : "(?)");
  *rolled_back = TRUE;
  return rollback (t, why, error);
}

static gboolean
rollback (DlTrainer *t, const char *why, GError **error)
{
  g_autofree char *state = dl_trainer_latest_state (t);
  if (!state)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "%s, and there is no saved state to go back to", why);
      return FALSE;
    }
  double scale = t->lr_scale * 0.5;
  gint64 failed_at = t->step;
  if (!dl_trainer_read_state (t, state, error))
    return FALSE;
  t->lr_scale = scale;
  t->non_finite_streak = 0;
  dl_trainer_warn (t,
                   "step %" G_GINT64_FORMAT ": %s; rolled back to step %" G_GINT64_FORMAT
                   " with the learning rate halved (×%g of the set rate)",
                   failed_at, why, t->step, t->lr_scale);
  return TRUE;
}

/* ---- validation ---- */

/* the fixed validation set: every image at these timesteps, noise from a fixed
 * seed (independent of --seed, so runs with other seeds compare) */
static const int validation_timesteps[] = { 100, 350, 600, 850 };
#define VALIDATION_SEED G_GUINT64_CONSTANT (0x76616c6964)

gboolean
dl_trainer_validate (DlTrainer *t, double *loss_out, GError **error)
{
  g_return_val_if_fail (t->prepared, FALSE);
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  int L = cfg->unet.in_channels, nt = G_N_ELEMENTS (validation_timesteps);
  guint n = dl_train_images_get_n (t->images);
  double sum = 0;
  int count = 0;
  for (guint i = 0; i < n; i++)
    {
      const DlLatentMoments *m = &t->moments[i];
      gsize per = (gsize)L * m->h * m->w;
      DlStepDraws d = { .n = nt, .n_rows = nt, .latent_h = m->h, .latent_w = m->w };
      d.images = g_new (gint64, nt);
      d.timesteps = g_new (gint64, nt);
      if (t->n_templates)
        {
          d.templates = g_new0 (gint64, nt); /* the first template line */
        }
      d.latent_eps = g_new (float, per *nt);
      d.noise = g_new (float, per *nt);
      for (int k = 0; k < nt; k++)
        {
          d.images[k] = i;
          d.timesteps[k] = validation_timesteps[k];
        }
      dl_philox_fill_normal (d.latent_eps, per * nt, DL_RANDOM_PHILOX, VALIDATION_SEED, 2 * (guint64)i, 0, 0, 1);
      dl_philox_fill_normal (d.noise, per * nt, DL_RANDOM_PHILOX, VALIDATION_SEED, 2 * (guint64)i + 1, 0, 0, 1);
      double l = 0;
      gboolean ok = forward_loss (t, &d, FALSE, 1.0f, NULL, &l, NULL, error);
      dl_step_draws_clear (&d);
      if (!ok)
        return FALSE;
      sum += l * nt;
      count += nt;
    }
  *loss_out = sum / MAX (count, 1);
  return TRUE;
}

static gboolean
validate_and_report (DlTrainer *t, GError **error)
{
  double v = 0;
  dl_trainer_status (t, -1, "Validation loss at step %" G_GINT64_FORMAT, t->step);
  if (!dl_trainer_validate (t, &v, error))
    return FALSE;
  t->last_val = v;
  /* a rollback may validate a step again: the newer value replaces the older */
  while (t->validations->len &&
         g_array_index (t->validations, DlTrainValidation, t->validations->len - 1).step >= t->step)
    g_array_set_size (t->validations, t->validations->len - 1);
  DlTrainValidation val = { t->step, v };
  g_array_append_val (t->validations, val);
  gboolean best = v < t->best_val;
  if (best)
    {
      t->best_val = v;
      t->best_step = t->step;
    }
  DlTrainEvent ev = {
    .kind = DL_TRAIN_EVENT_VALIDATION, .step = t->step, .total_steps = t->settings->steps, .val_loss = v, .best = best
  };
  dl_trainer_emit (t, &ev);
  return TRUE;
}

/* ---- the whole run ---- */

static gboolean
wait_if_paused (DlTrainer *t, GCancellable *cancellable, GError **error)
{
  g_mutex_lock (&t->pause_lock);
  while (t->paused && !g_cancellable_is_cancelled (cancellable))
    {
      gint64 until = g_get_monotonic_time () + G_TIME_SPAN_SECOND / 5;
      g_cond_wait_until (&t->pause_cond, &t->pause_lock, until);
      if (t->between_func)
        {
          /* work that shares the model goes on while the run is paused */
          g_mutex_unlock (&t->pause_lock);
          t->between_func (t, t->between_data);
          g_mutex_lock (&t->pause_lock);
        }
    }
  g_mutex_unlock (&t->pause_lock);
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

static gboolean
every (gint64 step, gint64 n)
{
  return n > 0 && step % n == 0;
}

gboolean
dl_trainer_export (DlTrainer *t, const char *path, GError **error)
{
  g_return_val_if_fail (t->prepared, FALSE);
  return t->method->export(t, path, error);
}

/* "step N: <what happened>", and when the device gave out (out of memory,
 * lost): what is kept and how to go on */
static void
explain_step_error (DlTrainer *t, GError **error)
{
  if (!error || !*error)
    return;
  GError *e = *error;
  g_autofree char *where = g_strdup_printf ("step %" G_GINT64_FORMAT, t->step + 1);
  GString *msg = g_string_new (NULL);
  g_string_append_printf (msg, "%s: %s", where, e->message);
  if (e->domain == DL_ERROR && (e->code == DL_ERROR_OUT_OF_DEVICE_MEMORY || e->code == DL_ERROR_DEVICE_LOST))
    {
      gint64 last = t->checkpoints->len ? g_array_index (t->checkpoints, gint64, t->checkpoints->len - 1) : 0;
      g_string_append_printf (msg,
                              ". The run stopped; its state at step %" G_GINT64_FORMAT
                              " is kept in %s: `dreamloom train --resume %s` continues it",
                              last, t->run_dir, t->run_dir);
      if (e->code == DL_ERROR_OUT_OF_DEVICE_MEMORY && !t->settings->checkpointing)
        g_string_append (msg, " (add --checkpointing to use less memory)");
    }
  g_free (e->message);
  e->message = g_string_free (msg, FALSE);
}

gboolean
dl_trainer_run (DlTrainer *t, GCancellable *cancellable, GError **error)
{
  const DlTrainSettings *s = t->settings;
  if (!dl_trainer_prepare (t, cancellable, error))
    return FALSE;
  if (t->step == 0 && s->validate_every > 0 && !validate_and_report (t, error))
    return FALSE;
  if (t->step == 0 && s->sample_first && !dl_trainer_preview (t, error))
    return FALSE;
  if (t->text_encoders_away && !dl_sd_model_text_encoders_to_host (t->model, NULL, error))
    return FALSE;
  while (t->step < s->steps)
    {
      if (t->between_func)
        t->between_func (t, t->between_data);
      if (!wait_if_paused (t, cancellable, error))
        return FALSE;
      if (!dl_trainer_step (t, error))
        {
          explain_step_error (t, error);
          return FALSE;
        }
      gboolean last = t->step == s->steps;
      gboolean saves = every (t->step, s->save_every) || last;
      if (saves || every (t->step, s->validate_every))
        {
          gboolean rolled_back = FALSE;
          if (!check_trained_finite (t, &rolled_back, error))
            return FALSE;
          if (rolled_back)
            continue;
        }
      if ((every (t->step, s->validate_every) || last) && !validate_and_report (t, error))
        return FALSE;
      if (every (t->step, s->sample_every) && !dl_trainer_preview (t, error))
        return FALSE;
      /* the preview brought the text encoders back */
      if (t->text_encoders_away && !dl_sd_model_text_encoders_to_host (t->model, NULL, error))
        return FALSE;
      if (saves && !dl_trainer_save_checkpoint (t, error))
        return FALSE;
    }
  dl_trainer_status (t, -1, "Writing %s", s->out);
  if (!dl_trainer_export (t, s->out, error))
    return FALSE;
  t->finished = TRUE;
  if (!dl_trainer_write_run_json (t, error))
    return FALSE;
  DlTrainEvent ev = {
    .kind = DL_TRAIN_EVENT_FINISHED, .step = t->step, .total_steps = s->steps, .path = s->out, .val_loss = t->last_val
  };
  dl_trainer_emit (t, &ev);
  return TRUE;
}
