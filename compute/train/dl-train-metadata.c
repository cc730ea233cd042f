/* dl-train-metadata.c: see dl-train-metadata.h. */
#include "train/dl-train-metadata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dl-json-write.h"

/* ---- Python spellings ---- */

void
dl_python_json_string (GString *out, const char *utf8)
{
  dl_json_append_string_ascii (out, utf8);
}

/* str.isspace() */
static gboolean
python_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* str.strip() of [start, end) */
static char *
python_strip (const char *start, const char *end)
{
  while (start < end && python_space (g_utf8_get_char (start)))
    start = g_utf8_next_char (start);
  while (end > start)
    {
      const char *prev = g_utf8_prev_char (end);
      if (!python_space (g_utf8_get_char (prev)))
        break;
      end = prev;
    }
  return g_strndup (start, end - start);
}

char **
dl_python_caption_tags (const char *caption)
{
  g_return_val_if_fail (caption != NULL, NULL);
  g_autofree char *valid = g_utf8_validate (caption, -1, NULL) ? NULL : g_utf8_make_valid (caption, -1);
  if (valid)
    caption = valid;
  GPtrArray *tags = g_ptr_array_new ();
  const char *start = caption;
  for (;;)
    {
      const char *comma = strchr (start, ',');
      const char *end = comma ? comma : start + strlen (start);
      g_autofree char *tag = python_strip (start, end);
      if (*tag)
        g_ptr_array_add (tags, g_utf8_strdown (tag, -1));
      if (!comma)
        break;
      start = comma + 1;
    }
  g_ptr_array_add (tags, NULL);
  return (char **)g_ptr_array_free (tags, FALSE);
}

/* ---- the facts ---- */

void
dl_train_facts_init (DlTrainFacts *f)
{
  g_return_if_fail (f != NULL);
  memset (f, 0, sizeof *f);
  f->session_id = f->epoch = f->steps = f->num_epochs = f->max_train_steps = DL_FACT_NONE;
  f->num_batches_per_epoch = f->num_train_images = f->num_reg_images = DL_FACT_NONE;
  f->lr_warmup_steps = f->gradient_accumulation_steps = f->seed = f->batch_size_per_device = DL_FACT_NONE;
  f->network_dim = f->conv_dim = f->clip_skip = DL_FACT_NONE;
  f->caption_dropout_every_n_epochs = f->keep_tokens = DL_FACT_NONE;
  f->resolution_width = f->resolution_height = f->min_bucket_reso = f->max_bucket_reso = DL_FACT_NONE;
  f->started_at = f->finished_at = NAN;
  f->learning_rate = f->unet_lr = f->text_encoder_lr = f->max_grad_norm = NAN;
  f->network_alpha = f->network_dropout = f->conv_alpha = NAN;
  f->noise_offset = f->min_snr_gamma = NAN;
  f->caption_dropout_rate = f->caption_tag_dropout_rate = f->mean_img_ar_error = NAN;
}

static void
put (GHashTable *t, const char *key, char *value /* taken */)
{
  g_hash_table_replace (t, g_strdup (key), value);
}

static void
put_str (GHashTable *t, const char *key, const char *value)
{
  if (value)
    put (t, key, g_strdup (value));
}

/* A string kohya writes as None when unset. */
static void
put_opt_str (GHashTable *t, const char *key, const char *value)
{
  put (t, key, g_strdup (value ? value : "None"));
}

static void
put_bool (GHashTable *t, const char *key, gboolean value)
{
  put (t, key, g_strdup (value ? "True" : "False"));
}

static void
put_int (GHashTable *t, const char *key, gint64 value)
{
  if (value != DL_FACT_NONE)
    put (t, key, g_strdup_printf ("%" G_GINT64_FORMAT, value));
}

static void
put_opt_int (GHashTable *t, const char *key, gint64 value)
{
  if (value == DL_FACT_NONE)
    put (t, key, g_strdup ("None"));
  else
    put_int (t, key, value);
}

static void
put_float (GHashTable *t, const char *key, double value)
{
  if (!isnan (value))
    put (t, key, dl_python_float_repr (value));
}

static void
put_opt_float (GHashTable *t, const char *key, double value)
{
  put (t, key, isnan (value) ? g_strdup ("None") : dl_python_float_repr (value));
}

/* json.dumps of a float */
static void
json_float (GString *s, double v)
{
  if (isnan (v))
    g_string_append (s, "NaN");
  else if (isinf (v))
    g_string_append (s, v < 0 ? "-Infinity" : "Infinity");
  else
    {
      g_autofree char *r = dl_python_float_repr (v);
      g_string_append (s, r);
    }
}

/* A Python dict of dicts being filled in insertion order: a key seen again keeps
 * its place and gets the new value (dict[key] = value). */
typedef struct
{
  GPtrArray *keys;    /* char*, owned */
  GHashTable *values; /* key -> GString* (the value's JSON) */
} OrderedJson;

static void
gstring_free (gpointer s)
{
  g_string_free (s, TRUE);
}

static void
ordered_init (OrderedJson *o)
{
  o->keys = g_ptr_array_new_with_free_func (g_free);
  o->values = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, gstring_free);
}

static GString *
ordered_slot (OrderedJson *o, const char *key)
{
  GString *v = g_hash_table_lookup (o->values, key);
  if (!v)
    {
      char *k = g_strdup (key);
      g_ptr_array_add (o->keys, k);
      v = g_string_new (NULL);
      g_hash_table_insert (o->values, k, v);
    }
  return v;
}

/* The JSON object; frees o. */
static char *
ordered_finish (OrderedJson *o)
{
  GString *s = g_string_new ("{");
  for (guint i = 0; i < o->keys->len; i++)
    {
      const char *k = o->keys->pdata[i];
      if (i)
        g_string_append (s, ", ");
      dl_python_json_string (s, k);
      g_string_append (s, ": ");
      g_string_append (s, ((GString *)g_hash_table_lookup (o->values, k))->str);
    }
  g_string_append_c (s, '}');
  g_hash_table_unref (o->values);
  g_ptr_array_unref (o->keys);
  return g_string_free (s, FALSE);
}

/* {dir: {"n_repeats": r, "img_count": n}} over the folders with is_reg == reg. */
static char *
dataset_dirs_json (const DlTrainFacts *f, gboolean reg)
{
  OrderedJson o;
  ordered_init (&o);
  for (guint i = 0; i < f->n_dirs; i++)
    {
      const DlTrainFactsDir *d = &f->dirs[i];
      if (!d->is_reg != !reg || !d->name)
        continue;
      GString *v = ordered_slot (&o, d->name);
      g_string_printf (v, "{\"n_repeats\": %" G_GINT64_FORMAT ", \"img_count\": %" G_GINT64_FORMAT "}", d->n_repeats,
                       d->img_count);
    }
  return ordered_finish (&o);
}

/* kohya's BaseDataset.set_tag_frequency over every folder with captions (a
 * folder named twice adds to the same counts). */
static char *
tag_frequency_json (const DlTrainFacts *f)
{
  /* dir -> (tag order, tag -> count) */
  g_autoptr (GPtrArray) dir_names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) dir_tags =
    g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_ptr_array_unref);
  g_autoptr (GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < f->n_dirs; i++)
    {
      const DlTrainFactsDir *d = &f->dirs[i];
      if (!d->name || !d->captions)
        continue;
      GPtrArray *order = g_hash_table_lookup (dir_tags, d->name);
      if (!order)
        {
          char *name = g_strdup (d->name);
          g_ptr_array_add (dir_names, name);
          order = g_ptr_array_new_with_free_func (g_free);
          g_hash_table_insert (dir_tags, name, order);
        }
      for (const char *const *c = d->captions; *c; c++)
        {
          g_auto (GStrv) tags = dl_python_caption_tags (*c);
          for (char **t = tags; *t; t++)
            {
              /* the count's key: "<dir>\n<tag>"; a dir name has no newline */
              char *key = g_strconcat (d->name, "\n", *t, NULL);
              gint64 *n = g_hash_table_lookup (counts, key);
              if (n)
                {
                  (*n)++;
                  g_free (key);
                }
              else
                {
                  n = g_new (gint64, 1);
                  *n = 1;
                  g_hash_table_insert (counts, key, n);
                  g_ptr_array_add (order, g_strdup (*t));
                }
            }
        }
    }
  GString *s = g_string_new ("{");
  for (guint i = 0; i < dir_names->len; i++)
    {
      const char *dir = dir_names->pdata[i];
      GPtrArray *order = g_hash_table_lookup (dir_tags, dir);
      if (i)
        g_string_append (s, ", ");
      dl_python_json_string (s, dir);
      g_string_append (s, ": {");
      for (guint j = 0; j < order->len; j++)
        {
          g_autofree char *key = g_strconcat (dir, "\n", order->pdata[j], NULL);
          if (j)
            g_string_append (s, ", ");
          dl_python_json_string (s, order->pdata[j]);
          g_string_append_printf (s, ": %" G_GINT64_FORMAT, *(gint64 *)g_hash_table_lookup (counts, key));
        }
      g_string_append_c (s, '}');
    }
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

/* {"buckets": {"0": {"resolution": [w, h], "count": n}, ...}, "mean_img_ar_error": e},
 * or null without buckets. */
static char *
bucket_info_json (const DlTrainFacts *f)
{
  if (!f->enable_bucket)
    return g_strdup ("null");
  GString *s = g_string_new ("{\"buckets\": {");
  for (guint i = 0; i < f->n_buckets; i++)
    {
      const DlTrainFactsBucket *b = &f->buckets[i];
      g_string_append_printf (s,
                              "%s\"%" G_GINT64_FORMAT "\": {\"resolution\": [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                              "], \"count\": %" G_GINT64_FORMAT "}",
                              i ? ", " : "", b->index, b->width, b->height, b->count);
    }
  g_string_append (s, "}, \"mean_img_ar_error\": ");
  if (isnan (f->mean_img_ar_error))
    g_string_append_c (s, '0'); /* kohya's value with no images */
  else
    json_float (s, f->mean_img_ar_error);
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

/* json.dumps of the --network_args dict kohya builds: every value the string the
 * user gave, then "dropout" (network_dropout) added by train_network.py. */
static char *
network_args_json (const DlTrainFacts *f)
{
  GString *s = g_string_new ("{");
  g_string_append_printf (s, "\"conv_dim\": \"%" G_GINT64_FORMAT "\"", f->conv_dim);
  if (!isnan (f->conv_alpha))
    {
      g_autofree char *a = dl_python_float_repr (f->conv_alpha);
      g_string_append_printf (s, ", \"conv_alpha\": \"%s\"", a);
    }
  g_string_append (s, ", \"dropout\": ");
  if (isnan (f->network_dropout))
    g_string_append (s, "null");
  else
    json_float (s, f->network_dropout);
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

/* library/sai_model_spec.py build_metadata (determine_architecture,
 * determine_implementation, determine_resolution) for SD1, SD2 and SDXL. */
static void
put_modelspec (GHashTable *t, const DlTrainFacts *f, gboolean lora)
{
  put_str (t, "modelspec.sai_model_spec", "1.0.1");
  const char *arch = f->sdxl                 ? "stable-diffusion-xl-v1-base"
                     : !f->v2                ? "stable-diffusion-v1"
                     : f->v_parameterization ? "stable-diffusion-v2-768-v"
                                             : "stable-diffusion-v2-512";
  put (t, "modelspec.architecture", g_strconcat (arch, lora ? "/lora" : "/textual-inversion", NULL));
  put_str (t, "modelspec.implementation",
           lora && !f->sdxl ? "diffusers" : "https://github.com/Stability-AI/generative-models");

  if (f->title)
    put_str (t, "modelspec.title", f->title);
  else if (f->output_name)
    put_str (t, "modelspec.title", f->output_name);
  else
    {
      const char *what = lora ? "LoRA" : "TextualInversion";
      if (isnan (f->finished_at))
        put_str (t, "modelspec.title", what);
      else
        {
          g_autofree char *ts = dl_python_float_repr (f->finished_at);
          put (t, "modelspec.title", g_strconcat (what, "@", ts, NULL));
        }
    }

  gint64 w = f->resolution_width, h = f->resolution_height;
  if (w == DL_FACT_NONE || h == DL_FACT_NONE)
    w = h = f->sdxl ? 1024 : f->v2 && f->v_parameterization ? 768 : 512; /* determine_resolution's defaults */
  put (t, "modelspec.resolution", g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, w, h));

  if (!isnan (f->finished_at) && fabs (f->finished_at) < 1e15)
    {
      /* datetime.fromtimestamp(int(ts)).isoformat(): local time, no zone */
      g_autoptr (GDateTime) dt = g_date_time_new_from_unix_local ((gint64)f->finished_at);
      if (dt)
        put (t, "modelspec.date", g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S"));
    }
  put_str (t, "modelspec.prediction_type", f->v_parameterization ? "v" : "epsilon");
  if (f->clip_skip != DL_FACT_NONE)
    put_int (t, "modelspec.encoder_layer", f->clip_skip);
  put_str (t, "modelspec.author", f->author);
  put_str (t, "modelspec.description", f->description);
  put_str (t, "modelspec.license", f->license);
  put_str (t, "modelspec.tags", f->tags);
  put_str (t, "modelspec.trigger_phrase", f->trigger_phrase);
  put_str (t, "modelspec.usage_hint", f->usage_hint);
  put_str (t, "modelspec.implementation_version", f->implementation_version);
}

static GHashTable *
new_table (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

GHashTable *
dl_train_metadata_lora (const DlTrainFacts *f)
{
  g_return_val_if_fail (f != NULL, NULL);
  GHashTable *t = new_table ();

  /* the minimum set (SS_METADATA_MINIMUM_KEYS) */
  put_bool (t, "ss_v2", f->v2);
  /* sdxl_model_util.MODEL_VERSION_SDXL_BASE_V1_0 for SDXL */
  put (t, "ss_base_model_version",
       f->sdxl ? g_strdup ("sdxl_base_v1-0")
               : g_strconcat ("sd", f->v2 ? "_v2" : "_v1", f->v_parameterization ? "_v" : "", NULL));
  put_str (t, "ss_network_module", "networks.lora");
  put_opt_int (t, "ss_network_dim", f->network_dim);
  put_opt_float (t, "ss_network_alpha", f->network_alpha);
  if (f->conv_dim != DL_FACT_NONE)
    put (t, "ss_network_args", network_args_json (f));

  /* the run */
  put_int (t, "ss_session_id", f->session_id);
  put_float (t, "ss_training_started_at", f->started_at);
  put_float (t, "ss_training_finished_at", f->finished_at);
  put_str (t, "ss_output_name", f->output_name);
  put_opt_str (t, "ss_training_comment", f->training_comment);
  put_int (t, "ss_epoch", f->epoch);
  put_int (t, "ss_steps", f->steps);
  put_int (t, "ss_num_epochs", f->num_epochs);
  put_int (t, "ss_max_train_steps", f->max_train_steps);
  put_int (t, "ss_num_batches_per_epoch", f->num_batches_per_epoch);
  put_int (t, "ss_num_train_images", f->num_train_images);
  put_int (t, "ss_num_reg_images", f->num_reg_images);

  /* the base model */
  put_str (t, "ss_sd_model_name", f->sd_model_name);
  put_str (t, "ss_sd_model_hash", f->sd_model_hash);
  put_str (t, "ss_new_sd_model_hash", f->new_sd_model_hash);

  /* optimisation */
  put_float (t, "ss_learning_rate", f->learning_rate);
  put_opt_float (t, "ss_unet_lr", f->unet_lr);
  put_opt_float (t, "ss_text_encoder_lr", f->text_encoder_lr);
  if (f->optimizer)
    {
      if (f->optimizer_args && *f->optimizer_args)
        put (t, "ss_optimizer", g_strdup_printf ("%s(%s)", f->optimizer, f->optimizer_args));
      else
        put_str (t, "ss_optimizer", f->optimizer);
    }
  put_str (t, "ss_lr_scheduler", f->lr_scheduler);
  put_int (t, "ss_lr_warmup_steps", f->lr_warmup_steps);
  put_float (t, "ss_max_grad_norm", f->max_grad_norm);
  put_int (t, "ss_gradient_accumulation_steps", f->gradient_accumulation_steps);
  put_bool (t, "ss_gradient_checkpointing", f->gradient_checkpointing);
  put_str (t, "ss_mixed_precision", f->mixed_precision);
  put_opt_int (t, "ss_seed", f->seed);
  put_int (t, "ss_batch_size_per_device", f->batch_size_per_device);
  if (f->batch_size_per_device != DL_FACT_NONE && f->gradient_accumulation_steps != DL_FACT_NONE)
    put_int (t, "ss_total_batch_size", f->batch_size_per_device * f->gradient_accumulation_steps);
  put_opt_float (t, "ss_network_dropout", f->network_dropout);

  /* loss, noise, text */
  put_opt_int (t, "ss_clip_skip", f->clip_skip);
  put_opt_float (t, "ss_noise_offset", f->noise_offset);
  put_opt_float (t, "ss_min_snr_gamma", f->min_snr_gamma);

  /* data */
  put_bool (t, "ss_cache_latents", f->cache_latents);
  put_float (t, "ss_caption_dropout_rate", f->caption_dropout_rate);
  put_int (t, "ss_caption_dropout_every_n_epochs", f->caption_dropout_every_n_epochs);
  put_float (t, "ss_caption_tag_dropout_rate", f->caption_tag_dropout_rate);
  put_bool (t, "ss_color_aug", f->color_aug);
  put_bool (t, "ss_flip_aug", f->flip_aug);
  put_bool (t, "ss_random_crop", f->random_crop);
  put_bool (t, "ss_shuffle_caption", f->shuffle_caption);
  put_int (t, "ss_keep_tokens", f->keep_tokens);
  if (f->resolution_width != DL_FACT_NONE && f->resolution_height != DL_FACT_NONE)
    put (t, "ss_resolution",
         g_strdup_printf ("(%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", f->resolution_width, f->resolution_height));
  put_bool (t, "ss_enable_bucket", f->enable_bucket);
  put_bool (t, "ss_bucket_no_upscale", f->bucket_no_upscale);
  put_opt_int (t, "ss_min_bucket_reso", f->enable_bucket ? f->min_bucket_reso : DL_FACT_NONE);
  put_opt_int (t, "ss_max_bucket_reso", f->enable_bucket ? f->max_bucket_reso : DL_FACT_NONE);
  put (t, "ss_bucket_info", bucket_info_json (f));
  if (f->n_dirs > 0)
    {
      put (t, "ss_dataset_dirs", dataset_dirs_json (f, FALSE));
      put (t, "ss_reg_dataset_dirs", dataset_dirs_json (f, TRUE));
      put (t, "ss_tag_frequency", tag_frequency_json (f));
    }

  put_modelspec (t, f, TRUE);
  return t;
}

GHashTable *
dl_train_metadata_textual_inversion (const DlTrainFacts *f)
{
  g_return_val_if_fail (f != NULL, NULL);
  GHashTable *t = new_table ();
  put_modelspec (t, f, FALSE);
  return t;
}
