/* dl-train-facts.c: what a run knows about itself, as the metadata of the
 * files it writes (dl-train-metadata.h spells it as kohya sd-scripts does). */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <math.h>

#include "train/dl-train-metadata.h"

GHashTable *
dl_trainer_metadata (DlTrainer *t, const char *kind)
{
  const DlTrainSettings *s = t->settings;
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  DlTrainFacts f;
  dl_train_facts_init (&f);
  g_autofree char *out_base = g_path_get_basename (s->out);
  char *dot = strrchr (out_base, '.');
  if (dot)
    *dot = '\0';
  guint n = dl_train_images_get_n (t->images);
  gint64 per_epoch = (n * (gint64)s->repeats + s->batch - 1) / s->batch;
  /* a session id from the run's identity, so checkpoints of one run share it */
  f.session_id = (gint64)(g_str_hash (t->run_dir) ^ (guint)t->started_at) & G_MAXUINT32;
  f.started_at = t->started_at / 1e6;
  f.finished_at = g_get_real_time () / 1e6;
  f.output_name = out_base;
  f.steps = t->step;
  f.max_train_steps = s->steps;
  f.num_batches_per_epoch = per_epoch;
  f.num_epochs = (s->steps * s->grad_accum + per_epoch - 1) / per_epoch;
  f.epoch = (t->step * s->grad_accum) / per_epoch;
  f.num_train_images = n * (gint64)s->repeats;
  f.num_reg_images = 0;
  f.v2 = cfg->text_encoder.hidden_size == 1024;
  f.sdxl = dl_model_config_is_sdxl (cfg);
  f.v_parameterization = dl_sd_model_get_schedule (t->model)->config.prediction == DL_PREDICTION_V;
  f.sd_model_name = t->hashes.name;
  f.sd_model_hash = t->hashes.legacy;
  f.new_sd_model_hash = t->hashes.sha256;
  f.learning_rate = s->lr;
  f.unet_lr = s->lr;
  if (s->method == DL_TRAIN_LORA && !s->no_text_encoder)
    f.text_encoder_lr = s->text_encoder_lr;
  f.optimizer = "torch.optim.adamw.AdamW";
  g_autofree char *wd = dl_python_float_repr (s->weight_decay);
  g_autofree char *b1 = dl_python_float_repr (s->adam_beta1);
  g_autofree char *b2 = dl_python_float_repr (s->adam_beta2);
  g_autofree char *opt_args = g_strdup_printf ("weight_decay=%s,betas=(%s, %s)", wd, b1, b2);
  f.optimizer_args = opt_args;
  f.lr_scheduler = dl_lr_schedule_name (s->lr_scheduler);
  f.lr_warmup_steps = s->lr_warmup;
  f.max_grad_norm = s->max_grad_norm;
  f.gradient_accumulation_steps = s->grad_accum;
  f.gradient_checkpointing = s->checkpointing;
  f.mixed_precision = s->fp16 ? "fp16" : "no";
  f.seed = s->seed;
  f.batch_size_per_device = s->batch;
  if (s->method == DL_TRAIN_LORA)
    {
      f.network_dim = s->rank;
      f.network_alpha = s->alpha;
      if (s->conv_rank > 0)
        {
          f.conv_dim = s->conv_rank;
          f.conv_alpha = s->conv_alpha;
        }
    }
  f.clip_skip = s->clip_skip > 1 ? s->clip_skip : DL_FACT_NONE;
  f.noise_offset = s->noise_offset > 0 ? s->noise_offset : NAN;
  f.min_snr_gamma = s->min_snr_gamma > 0 ? s->min_snr_gamma : NAN;
  f.cache_latents = TRUE;
  f.caption_dropout_rate = s->caption_dropout;
  f.caption_dropout_every_n_epochs = 0;
  f.caption_tag_dropout_rate = 0;
  f.flip_aug = s->flip;
  f.random_crop = s->random_crop;
  f.shuffle_caption = s->shuffle_tags;
  f.keep_tokens = s->keep_tags;
  f.resolution_width = f.resolution_height = s->resolution;
  f.enable_bucket = s->buckets;
  if (s->buckets)
    {
      f.min_bucket_reso = 256;
      f.max_bucket_reso = 1024;
    }
  /* the folder with its captions (training tags) and bucket counts */
  g_autofree const char **captions = g_new0 (const char *, n + 1);
  for (guint i = 0; i < n; i++)
    captions[i] = dl_trainer_image_caption (t, i);
  g_autofree char *dir_name = g_path_get_basename (s->images);
  DlTrainFactsDir dir = { .name = dir_name, .n_repeats = s->repeats, .img_count = n, .captions = captions };
  f.dirs = &dir;
  f.n_dirs = 1;
  guint nb = dl_train_images_get_n_buckets (t->images);
  g_autofree DlTrainFactsBucket *buckets = g_new0 (DlTrainFactsBucket, MAX (nb, 1));
  for (guint b = 0; b < nb; b++)
    {
      int w, h;
      dl_train_images_get_bucket (t->images, b, &w, &h);
      buckets[b] = (DlTrainFactsBucket){ .index = b, .width = w, .height = h };
    }
  for (guint i = 0; i < n; i++)
    buckets[dl_train_images_get_bucket_of (t->images, i)].count += s->repeats;
  if (s->buckets)
    {
      f.buckets = buckets;
      f.n_buckets = nb;
    }
  g_autofree char *trigger = t->method->trigger (t);
  f.trigger_phrase = trigger;
  f.implementation_version = "dreamloom/" DL_VERSION;
  if (g_str_equal (kind, "textual-inversion"))
    return dl_train_metadata_textual_inversion (&f);
  return dl_train_metadata_lora (&f);
}
