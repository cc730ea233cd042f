/* dl-kohya-job.c: see dl-kohya-job.h.
 *
 * Every flag and config key below is kohya sd-scripts' own: train_network.py,
 * train_db.py and train_textual_inversion.py setup_parser; library/train_util.py
 * add_sd_models_arguments, add_dataset_arguments, add_training_arguments,
 * add_sd_saving_arguments, add_optimizer_arguments;
 * library/custom_train_functions.py add_custom_train_arguments;
 * library/config_util.py ConfigSanitizer (the dataset config's keys). */
#include "dl-config.h"

#include "train/dl-kohya-job.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dl-error.h"
#include "dl-float-repr.h"
#include "io/dl-file-util.h"
#include "io/dl-json-write.h"
#include "train/dl-caption-file.h"
#include "train/dl-prompt-templates.h"
#include "train/dl-train-images.h"

/* Dreamloom's previews (dl-trainer-preview.c): seed and CFG scale */

typedef struct
{
  const DlTrainSettings *s;
  const char *script; /* "train_network.py", ... */
  GPtrArray *argv;    /* the script's arguments, unquoted */
  GString *unmapped;  /* "#   --name value: why" lines */
  GString *notes;     /* "#   ..." lines: the same setting run differently */
  gboolean has_class; /* a class subset (DreamBooth with a class prompt) */
  guint n_class;      /* class images copied */
  char *class_source; /* where they came from */
  gboolean wildcard;  /* caption files hold one prompt per line (TI templates) */
  char *output_name;
  char *prompts_file; /* sample_prompts.txt / .json, or NULL */
} Job;

static void
job_clear (Job *j)
{
  g_clear_pointer (&j->argv, g_ptr_array_unref);
  if (j->unmapped)
    g_string_free (j->unmapped, TRUE);
  if (j->notes)
    g_string_free (j->notes, TRUE);
  g_free (j->class_source);
  g_free (j->output_name);
  g_free (j->prompts_file);
}

static char *
fmt_double (double v)
{
  return dl_python_float_repr (v);
}

/* ---- the command line ---- */

static void
arg (Job *j, const char *flag)
{
  g_ptr_array_add (j->argv, g_strdup (flag));
}

static void
arg_str (Job *j, const char *flag, const char *value)
{
  g_ptr_array_add (j->argv, g_strconcat (flag, "=", value, NULL));
}

static void
arg_int (Job *j, const char *flag, gint64 value)
{
  g_ptr_array_add (j->argv, g_strdup_printf ("%s=%" G_GINT64_FORMAT, flag, value));
}

static void
arg_double (Job *j, const char *flag, double value)
{
  g_autofree char *v = fmt_double (value);
  arg_str (j, flag, v);
}

/* A text for a comment line: line breaks would end the comment */
static char *
comment_text (const char *text)
{
  char *t = g_strdup (text ? text : "(none)");
  for (char *p = t; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  return t;
}

static char *
absolute_path (const char *path)
{
  return g_path_is_absolute (path) ? g_strdup (path) : g_canonicalize_filename (path, NULL);
}

/* A Dreamloom setting that sd-scripts has no equivalent of, with its value */
static void
unmapped (Job *j, const char *option, const char *why)
{
  g_autofree char *value = dl_train_settings_get (j->s, option);
  g_autofree char *v = comment_text (value);
  g_string_append_printf (j->unmapped, "#   --%s %s: %s\n", option, v, why);
}

static void
note (Job *j, const char *text)
{
  g_autofree char *t = comment_text (text);
  g_string_append_printf (j->notes, "#   %s\n", t);
}

/* pretrained model, dataset, output, schedule, optimizer, loss, precision,
 * checkpoints and samples: the flags the three scripts share */
static gboolean
common_args (Job *j, GError **error)
{
  const DlTrainSettings *s = j->s;
  /* relative paths would break with train.sh's cd */
  g_autofree char *model = absolute_path (s->model);
  arg_str (j, "--pretrained_model_name_or_path", model);
  arg_str (j, "--dataset_config", "dataset.toml");
  arg_str (j, "--output_dir", "output");
  arg_str (j, "--output_name", j->output_name);
  arg_int (j, "--max_train_steps", s->steps);
  arg_int (j, "--seed", s->seed);

  /* learning-rate schedule: diffusers' names, as Dreamloom's (library/train_util.py get_scheduler_fix) */
  arg_str (j, "--lr_scheduler", dl_lr_schedule_name (s->lr_scheduler));
  if (s->lr_scheduler != DL_LR_CONSTANT)
    {
      /* get_scheduler_fix stretches the schedule to max_train_steps x processes (accelerate steps it once per
     * process) but not a whole-number warm-up; a fraction (< 1) of the training steps scales with it */
      if (s->lr_warmup > 0 && s->lr_warmup < s->steps)
        {
          double ratio = (double)s->lr_warmup / (double)s->steps;
          while ((gint64)(ratio * (double)s->steps) < s->lr_warmup) /* int(ratio * steps) as Python takes it */
            ratio = nextafter (ratio, 1.0);
          arg_double (j, "--lr_warmup_steps", ratio);
        }
      else
        {
          arg_int (j, "--lr_warmup_steps", s->lr_warmup);
        }
    }
  else if (s->lr_warmup > 0)
    {
      unmapped (j, "lr-warmup", "the constant schedule has no warm-up (sd-scripts refuses one)");
    }
  if (s->lr_scheduler == DL_LR_COSINE_WITH_RESTARTS)
    {
      if (s->lr_cycles != floor (s->lr_cycles))
        {
          g_autofree char *v = fmt_double (s->lr_cycles);
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "--lr-cycles %s: sd-scripts' --lr_scheduler_num_cycles takes a whole number", v);
          return FALSE;
        }
      arg_int (j, "--lr_scheduler_num_cycles", (gint64)s->lr_cycles);
    }
  if (s->lr_scheduler == DL_LR_POLYNOMIAL)
    arg_double (j, "--lr_scheduler_power", s->lr_power);

  /* optimizer: get_optimizer reads optimizer_args as key=value, each value ast.literal_eval'ed */
  arg_str (j, "--optimizer_type", s->adamw8bit ? "AdamW8bit" : "AdamW");
  g_autofree char *wd = fmt_double (s->weight_decay);
  g_autofree char *b1 = fmt_double (s->adam_beta1);
  g_autofree char *b2 = fmt_double (s->adam_beta2);
  g_autofree char *eps = fmt_double (s->adam_eps);
  arg (j, "--optimizer_args");
  g_ptr_array_add (j->argv, g_strconcat ("weight_decay=", wd, NULL));
  g_ptr_array_add (j->argv, g_strconcat ("betas=", b1, ",", b2, NULL));
  g_ptr_array_add (j->argv, g_strconcat ("eps=", eps, NULL));
  arg_double (j, "--max_grad_norm", s->max_grad_norm); /* 0: no clipping, as Dreamloom */
  arg_int (j, "--gradient_accumulation_steps", s->grad_accum);
  if (s->fused_backward_pass)
    unmapped (j, "fused-backward-pass",
              "sd-scripts fuses the step into the backward with Adafactor only (validate_optimizer_choice): the job "
              "takes AdamW's ordinary step, with a gradient buffer for every trained tensor");

  /* loss */
  if (s->min_snr_gamma > 0)
    arg_double (j, "--min_snr_gamma", s->min_snr_gamma);
  if (s->noise_offset > 0)
    arg_double (j, "--noise_offset", s->noise_offset);
  arg_int (j, "--clip_skip", s->clip_skip);

  /* precision and memory; attention through PyTorch's scaled_dot_product_attention (exact, as
   * Dreamloom's, and part of PyTorch >= 2.0: no xformers build to match the GPU and CUDA) */
  arg_str (j, "--mixed_precision", s->fp16 ? "fp16" : "no");
  arg_str (j, "--save_precision", s->save_dtype == DL_ST_F16 ? "fp16" : "float");
  if (s->checkpointing)
    arg (j, "--gradient_checkpointing");
  arg (j, "--sdpa");

  /* checkpoints: STEP_FILE_NAME "<name>-step%08d" every N steps; get_remove_step_no deletes those older than
   * --save_last_n_steps, so (K - 1) x N keeps the last K */
  if (s->save_every > 0)
    {
      arg_int (j, "--save_every_n_steps", s->save_every);
      arg_int (j, "--save_last_n_steps", (gint64)(s->keep - 1) * s->save_every);
      unmapped (j, "keep", "besides the last ones, Dreamloom keeps the best checkpoint by validation loss");
      note (j, "checkpoints: sd-scripts saves the weights only; add --save_state to resume from them (--resume), as "
               "Dreamloom's hold the optimizer state");
    }
  else
    {
      unmapped (j, "keep", "no checkpoints in between (--save-every 0)");
    }
  unmapped (j, "validate-every",
            "validation loss on the training images at fixed timesteps; sd-scripts validates a held-out "
            "split only (--validation_split)");

  /* samples: the prompt file's options (line_to_prompt_dict: --w --h --s --d --l) */
  if (j->prompts_file && s->sample_every > 0)
    {
      arg_int (j, "--sample_every_n_steps", s->sample_every);
      arg_str (j, "--sample_prompts", j->prompts_file);
      /* sd-scripts train_util.get_my_scheduler: ddim, euler, euler_a, dpmsolver++ (DPMSolverMultistepScheduler,
     * diffusers' default sigmas) */
      g_autofree char *sampler = dl_train_settings_get (s, "sample-sampler");
      gboolean dpm = g_str_has_prefix (sampler, "dpmpp_2m");
      arg_str (j, "--sample_sampler", dpm ? "dpmsolver++" : sampler);
      if (s->sample_first)
        arg (j, "--sample_at_first");
      if (g_str_equal (sampler, "dpmpp_2m_karras"))
        note (j, "samples: DPM++ 2M (sd-scripts' dpmsolver++) without Karras sigmas; Dreamloom previews with Karras");
    }
  else if (s->sample_every > 0)
    {
      unmapped (j, "sample-every",
                "previews of template prompts or captions; sd-scripts samples only the prompts of --sample_prompts "
                "(--sample-prompt)");
    }
  if (!j->prompts_file || s->sample_every == 0)
    {
      unmapped (j, "sample-steps", "no samples");
      if (s->sample_first)
        unmapped (j, "sample-first", "no samples");
    }

  /* files of this machine's run only */
  static const char *const local_options[] = { "config", "run-dir", "replay", "vocab" };
  static const char *const local_why[] = {
    "sd-scripts takes an SD 1.x model unless train.sh says --v2",
    "sd-scripts writes checkpoints and samples into output/",
    "the random draws are sd-scripts' own",
    "sd-scripts loads its own CLIP tokenizer",
  };
  for (guint i = 0; i < G_N_ELEMENTS (local_options); i++)
    {
      g_autofree char *v = dl_train_settings_get (s, local_options[i]);
      if (v)
        unmapped (j, local_options[i], local_why[i]);
    }
  return TRUE;
}

/* kohya sd-scripts train_network.py with networks/lora.py (create_network reads conv_dim and conv_alpha
 * from --network_args) */
static void
lora_args (Job *j)
{
  const DlTrainSettings *s = j->s;
  arg_str (j, "--network_module", "networks.lora");
  arg_int (j, "--network_dim", s->rank);
  arg_double (j, "--network_alpha", s->alpha);
  if (s->conv_rank > 0)
    {
      g_autofree char *ca = fmt_double (s->conv_alpha);
      arg (j, "--network_args");
      g_ptr_array_add (j->argv, g_strdup_printf ("conv_dim=%d", s->conv_rank));
      g_ptr_array_add (j->argv, g_strconcat ("conv_alpha=", ca, NULL));
    }
  if (s->init_from)
    {
      g_autofree char *w = absolute_path (s->init_from);
      arg_str (j, "--network_weights", w);
    }
  arg_double (j, "--learning_rate", s->lr);
  arg_double (j, "--unet_lr", s->lr);
  if (s->no_text_encoder)
    arg (j, "--network_train_unet_only");
  else
    arg_double (j, "--text_encoder_lr", s->text_encoder_lr);
  arg_str (j, "--save_model_as", "safetensors");
}

/* kohya sd-scripts train_db.py: the text encoder trains unless --stop_text_encoder_training is -1; its own
 * learning rate is --learning_rate_te */
static void
dreambooth_args (Job *j)
{
  const DlTrainSettings *s = j->s;
  arg_double (j, "--learning_rate", s->lr);
  if (s->train_text_encoder)
    arg_double (j, "--learning_rate_te", s->text_encoder_lr);
  else
    arg_int (j, "--stop_text_encoder_training", -1);
  gboolean folder = s->out && (g_str_has_suffix (s->out, "/") || !g_str_has_suffix (s->out, ".safetensors"));
  arg_str (j, "--save_model_as", folder ? "diffusers_safetensors" : "safetensors");
  if (j->has_class)
    {
      arg_double (j, "--prior_loss_weight", s->prior_weight);
      g_autofree char *why = g_strdup_printf ("sd-scripts generates no class images: it trains with the %u in class/%s",
                                              j->n_class, j->n_class ? "" : " (none: no prior preservation)");
      unmapped (j, "num-class-images", why);
      note (j, "prior preservation: sd-scripts mixes class images into the batch (batch_size is twice --batch) and "
               "averages the loss over the whole batch, where Dreamloom adds the two halves' means");
      if (s->min_snr_gamma > 0)
        note (j, "min-SNR weighting: sd-scripts weights the class images' loss too, Dreamloom the instance half only");
    }
}

/* kohya sd-scripts train_textual_inversion.py */
static void
ti_args (Job *j, const char *token)
{
  const DlTrainSettings *s = j->s;
  arg_str (j, "--token_string", token);
  if (s->init_text && *s->init_text)
    arg_str (j, "--init_word", s->init_text);
  arg_int (j, "--num_vectors_per_token", s->vectors);
  arg_double (j, "--learning_rate", s->lr);
  arg_str (j, "--save_model_as", s->out && g_str_has_suffix (s->out, ".safetensors") ? "safetensors" : "pt");
  if (s->caption_dropout > 0)
    unmapped (j, "caption-dropout", "train_textual_inversion.py takes no caption dropout");
  if (s->out_diffusers)
    unmapped (j, "out-diffusers", "sd-scripts writes one embedding file");
  if (s->vectors > 1)
    note (j, "initial vectors: sd-scripts repeats the init word's tokens (vector i = token i mod k); A1111 and "
             "Dreamloom spread them (token i * k / n)");
  note (j, "templates: every caption file holds the templates, one per line, with [name] and [filewords] filled "
           "in; enable_wildcard makes sd-scripts pick one line at random per sample, as A1111's templates (not "
           "--use_object_template, which drops the captions)");
}

/* ---- dataset.toml ---- */

/* A TOML basic string: TOML's escapes are JSON's */
static void
toml_string (GString *out, const char *text)
{
  dl_json_append_string (out, text);
}

static const char *
toml_bool (gboolean v)
{
  return v ? "true" : "false";
}

static char *
dataset_toml (Job *j)
{
  const DlTrainSettings *s = j->s;
  GString *t = g_string_new (NULL);
  g_string_append (t, "# kohya sd-scripts dataset config (library/config_util.py), written by Dreamloom.\n"
                      "# Paths are relative to this folder (train.sh runs from here).\n\n");
  g_string_append (t, "[general]\n");
  int keep = s->keep_tags;
  /* the built-in templates are "<template> [name], [filewords]": the template part stays in place */
  gboolean builtin =
    !s->template_file || g_str_equal (s->template_file, "object") || g_str_equal (s->template_file, "style");
  if (j->wildcard && s->shuffle_tags && builtin)
    keep += 1;
  g_string_append_printf (t, "shuffle_caption = %s\n", toml_bool (s->shuffle_tags));
  g_string_append_printf (t, "keep_tokens = %d\n", keep);
  g_string_append (t, "caption_extension = \".txt\"\n");
  g_string_append_printf (t, "flip_aug = %s\n", toml_bool (s->flip));
  g_string_append_printf (t, "random_crop = %s\n", toml_bool (s->random_crop));
  if (s->method != DL_TRAIN_TEXTUAL_INVERSION)
    { /* ConfigSanitizer(support_dropout=False) there */
      g_autofree char *cd = fmt_double (s->caption_dropout);
      g_string_append_printf (t, "caption_dropout_rate = %s\n", cd);
    }
  g_string_append (t, "\n[[datasets]]\n");
  g_string_append_printf (t, "resolution = %d\n", s->resolution);
  g_string_append_printf (t, "batch_size = %d\n", j->has_class ? 2 * s->batch : s->batch);
  g_string_append_printf (t, "enable_bucket = %s\n", toml_bool (s->buckets));
  if (s->buckets) /* Dreamloom's buckets: sides multiples of 64 from 256 to 1024 (kohya's defaults) */
    g_string_append (t, "min_bucket_reso = 256\nmax_bucket_reso = 1024\nbucket_reso_steps = 64\n");
  g_string_append (t, "\n  [[datasets.subsets]]\n  image_dir = \"train\"\n");
  g_string_append_printf (t, "  num_repeats = %d\n", s->repeats);
  if (j->wildcard)
    g_string_append (t, "  enable_wildcard = true\n");
  if (s->instance_prompt && *s->instance_prompt && !j->wildcard)
    {
      g_string_append (t, "  class_tokens = ");
      toml_string (t, s->instance_prompt);
      g_string_append_c (t, '\n');
    }
  if (j->has_class)
    {
      g_string_append (t, "\n  [[datasets.subsets]]\n  image_dir = \"class\"\n  is_reg = true\n  class_tokens = ");
      toml_string (t, s->class_prompt);
      g_string_append (t, "\n  num_repeats = 1\n");
    }
  return g_string_free (t, FALSE);
}

/* ---- the prompt file ---- */

/* Whether a prompt survives a line of sample_prompts.txt: load_prompts drops lines starting with #, and
 * line_to_prompt_dict splits at " --" and matches its options (w h d s l g n ss cn ctr rcfg fs, then a space)
 * against every part, the prompt included */
static gboolean
prompt_fits_line (const char *line)
{
  static const char *const options[] = { "w", "h", "d", "s", "l", "g", "n", "ss", "cn", "ctr", "rcfg", "fs", NULL };
  if (!*line || line[0] == '#' || strstr (line, " --"))
    return FALSE;
  const char *space = strchr (line, ' ');
  if (space)
    {
      g_autofree char *first = g_ascii_strdown (line, space - line);
      if (g_strv_contains (options, first))
        return FALSE;
    }
  return TRUE;
}

/* sample_prompts.txt: one prompt a line, options after " --"; prompts that a line cannot hold go into
 * sample_prompts.json instead (load_prompts reads both) */
static gboolean
write_prompts (Job *j, const char *root, GError **error)
{
  const DlTrainSettings *s = j->s;
  if (!s->sample_prompts || !s->sample_prompts[0])
    return TRUE;
  gboolean as_json = FALSE;
  for (char **p = s->sample_prompts; *p; p++)
    {
      g_autofree char *line = comment_text (*p);
      g_strstrip (line);
      if (!prompt_fits_line (line))
        as_json = TRUE;
    }
  GString *text = g_string_new (NULL);
  if (as_json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_array (b);
      for (char **p = s->sample_prompts; *p; p++)
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "prompt");
          json_builder_add_string_value (b, *p);
          json_builder_set_member_name (b, "width");
          json_builder_add_int_value (b, s->resolution);
          json_builder_set_member_name (b, "height");
          json_builder_add_int_value (b, s->resolution);
          json_builder_set_member_name (b, "sample_steps");
          json_builder_add_int_value (b, s->sample_steps);
          json_builder_set_member_name (b, "seed");
          json_builder_add_int_value (b, s->sample_seed);
          json_builder_set_member_name (b, "scale");
          json_builder_add_double_value (b, s->sample_cfg);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      g_autoptr (JsonNode) root_node = json_builder_get_root (b);
      g_autofree char *json = dl_json_write (root_node, TRUE, NULL); /* not json-glib's generator: its doubles */
      g_string_append (text, json);
      g_string_append_c (text, '\n');
      j->prompts_file = g_strdup ("sample_prompts.json");
    }
  else
    {
      for (char **p = s->sample_prompts; *p; p++)
        {
          g_autofree char *line = comment_text (*p);
          g_strstrip (line);
          g_autofree char *cfg = dl_python_float_repr (s->sample_cfg);
          g_string_append_printf (text, "%s --w %d --h %d --s %d --d %" G_GINT64_FORMAT " --l %s\n", line,
                                  s->resolution, s->resolution, s->sample_steps, s->sample_seed, cfg);
        }
      j->prompts_file = g_strdup ("sample_prompts.txt");
    }
  g_autofree char *path = g_build_filename (root, j->prompts_file, NULL);
  gboolean ok = g_file_set_contents (path, text->str, (gssize)text->len, error);
  g_string_free (text, TRUE);
  return ok;
}

/* ---- images and captions ---- */

/* sd-scripts globs these, in lower or upper case (library/train_util.py IMAGE_EXTENSIONS, glob_images) */
static const char *const kohya_extensions[] = { ".png", ".jpg", ".jpeg", ".webp", ".bmp", NULL };

static gboolean
copy_file (const char *from, const char *to, GError **error)
{
  /* a hard link where the file system allows (the target of a symbolic link, not the link) */
  if (linkat (AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW) == 0)
    return TRUE;
  FILE *in = fopen (from, "rb");
  if (!in)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "image “%s”: cannot read it: %s", from, g_strerror (errno));
      return FALSE;
    }
  FILE *out = fopen (to, "wb");
  if (!out)
    {
      int e = errno;
      fclose (in);
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "“%s”: cannot write it: %s", to, g_strerror (e));
      return FALSE;
    }
  char buf[65536];
  size_t n;
  gboolean ok = TRUE;
  while (ok && (n = fread (buf, 1, sizeof buf, in)) > 0)
    ok = fwrite (buf, 1, n, out) == n;
  int read_error = ferror (in);
  fclose (in);
  if (fclose (out) != 0)
    ok = FALSE;
  if (read_error || !ok)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "copying “%s” to “%s” failed: %s", from, to,
                   g_strerror (errno ? errno : EIO));
      return FALSE;
    }
  return TRUE;
}

/* The name of `path`'s copy in a folder: its file name with a lower-case extension and no leading dots (glob
 * skips hidden files), "2-", "3-", ... in front when the stem is taken (its caption file would be shared);
 * stems compare case-insensitively, for file systems that do. */
static char *
copy_name (const char *path, GHashTable *stems, GError **error)
{
  g_autofree char *base = g_path_get_basename (path);
  const char *name = base;
  while (*name == '.')
    name++;
  const char *dot = strrchr (name, '.');
  g_autofree char *ext = dot ? g_ascii_strdown (dot, -1) : NULL;
  if (!ext || !g_strv_contains (kohya_extensions, ext))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "image “%s”: sd-scripts reads .png, .jpg, .jpeg, .webp and .bmp files only", path);
      return NULL;
    }
  g_autofree char *stem = g_strndup (name, (gsize)(dot - name));
  if (!*stem)
    {
      g_free (stem);
      stem = g_strdup ("image");
    }
  for (guint k = 1;; k++)
    {
      g_autofree char *candidate = k == 1 ? g_strdup (stem) : g_strdup_printf ("%u-%s", k, stem);
      char *key = g_utf8_casefold (candidate, -1);
      if (!g_hash_table_contains (stems, key))
        {
          g_hash_table_add (stems, key);
          return g_strconcat (candidate, ext, NULL);
        }
      g_free (key);
    }
}

/* Image i's caption as Dreamloom trains it: the given one, else the instance prompt, else none */
static const char *
image_caption (const DlTrainSettings *s, const char *const *captions, guint i)
{
  if (captions && captions[i] && *captions[i])
    return captions[i];
  if (s->instance_prompt && *s->instance_prompt)
    return s->instance_prompt;
  return NULL;
}

/* Textual Inversion: every template line with [name] -> the token string (sd-scripts replaces it by its n
 * tokens) and [filewords] -> the caption, braces doubled (process_caption's wildcard escapes) */
static char *
ti_caption_lines (const char *const *templates, const char *token, const char *caption)
{
  GString *out = g_string_new (NULL);
  for (guint i = 0; templates[i]; i++)
    {
      GString *line = g_string_new (templates[i]);
      g_string_replace (line, "[name]", token, 0);
      g_string_replace (line, "[filewords]", caption ? caption : "", 0);
      g_string_replace (line, "{", "{{", 0);
      g_string_replace (line, "}", "}}", 0);
      g_autofree char *l = comment_text (line->str);
      g_string_free (line, TRUE);
      g_strstrip (l);
      if (*l)
        g_string_append_printf (out, "%s\n", l);
    }
  return g_string_free (out, FALSE);
}

static gboolean
write_text (const char *dir, const char *name, const char *text, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  return g_file_set_contents (path, text, -1, error);
}

static gboolean
copy_images (Job *j, const char *root, const char *const *paths, const char *const *captions, guint n,
             const char *token, GError **error)
{
  const DlTrainSettings *s = j->s;
  g_autofree char *train = g_build_filename (root, "train", NULL);
  if (g_mkdir (train, 0755) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot create “%s”: %s", train, g_strerror (errno));
      return FALSE;
    }
  g_auto (GStrv) templates = NULL;
  if (j->wildcard && !(templates = dl_ti_templates_load (s->template_file, error)))
    return FALSE;
  g_autoptr (GHashTable) stems = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    {
      if (!g_hash_table_add (seen, (gpointer)paths[i]))
        continue; /* a path given twice counts once, as in Dreamloom's run */
      g_autofree char *name = copy_name (paths[i], stems, error);
      if (!name)
        return FALSE;
      g_autofree char *to = g_build_filename (train, name, NULL);
      if (!copy_file (paths[i], to, error))
        return FALSE;
      const char *caption = image_caption (s, captions, i);
      g_autofree char *text = NULL;
      if (j->wildcard)
        {
          text = ti_caption_lines ((const char *const *)templates, token, caption);
        }
      else if (caption)
        {
          g_autofree char *line = comment_text (caption); /* sd-scripts reads the first line */
          text = g_strconcat (g_strstrip (line), "\n", NULL);
        }
      if (text)
        {
          g_autofree char *txt = dl_caption_file_path (to, ".txt");
          if (!g_file_set_contents (txt, text, -1, error))
            return FALSE;
        }
    }
  return TRUE;
}

/* DreamBooth's class images: copied from the settings' class folder (default <run>/class, where the
 * trainer generates them) when it exists */
static gboolean
copy_class_images (Job *j, const char *root, GError **error)
{
  const DlTrainSettings *s = j->s;
  g_autofree char *class_dir = g_build_filename (root, "class", NULL);
  if (g_mkdir (class_dir, 0755) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot create “%s”: %s", class_dir, g_strerror (errno));
      return FALSE;
    }
  if (s->class_images)
    {
      j->class_source = g_strdup (s->class_images);
    }
  else
    {
      g_autofree char *run = dl_train_settings_run_dir (s);
      j->class_source = run ? g_build_filename (run, "class", NULL) : NULL;
    }
  if (!j->class_source || !g_file_test (j->class_source, G_FILE_TEST_IS_DIR))
    return TRUE;
  g_autoptr (GPtrArray) paths = dl_train_images_list_folder (j->class_source, error);
  if (!paths)
    return FALSE;
  g_autoptr (GHashTable) stems = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < paths->len; i++)
    {
      g_autofree char *name = copy_name (paths->pdata[i], stems, error);
      if (!name)
        return FALSE;
      g_autofree char *to = g_build_filename (class_dir, name, NULL);
      if (!copy_file (paths->pdata[i], to, error))
        return FALSE;
    }
  j->n_class = paths->len;
  return TRUE;
}

/* ---- train.sh and README.txt ---- */

static gboolean
shell_safe (const char *word)
{
  if (!*word)
    return FALSE;
  for (const char *p = word; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr ("_-./,:=+@%", *p))
      return FALSE;
  return TRUE;
}

/* One word of the command: "--flag=value" keeps its flag bare and quotes the value; single quotes with each
 * embedded ' as '\'' (g_shell_quote) */
static void
append_word (GString *out, const char *word)
{
  const char *eq = g_str_has_prefix (word, "--") ? strchr (word, '=') : NULL;
  const char *value = eq ? eq + 1 : word;
  if (eq)
    g_string_append_len (out, word, eq + 1 - word);
  if (shell_safe (value))
    {
      g_string_append (out, value);
    }
  else
    {
      g_autofree char *q = g_shell_quote (value);
      g_string_append (out, q);
    }
}

static const char *
method_title (DlTrainMethod m)
{
  switch (m)
    {
    case DL_TRAIN_LORA:
      return "LoRA";
    case DL_TRAIN_TEXTUAL_INVERSION:
      return "Textual Inversion";
    case DL_TRAIN_DREAMBOOTH:
      return "DreamBooth";
    default:
      return "?";
    }
}

static char *
train_sh (Job *j)
{
  GString *t = g_string_new ("#!/bin/sh\n");
  g_string_append_printf (t,
                          "# Dreamloom's %s run as kohya sd-scripts takes it (%s), for `accelerate launch`\n"
                          "# on one or more GPUs: SD_SCRIPTS=/path/to/sd-scripts sh train.sh (see README.txt).\n"
                          "#\n"
                          "# Dreamloom settings without an sd-scripts equivalent (not applied):\n",
                          method_title (j->s->method), j->script);
  if (j->unmapped->len)
    g_string_append (t, j->unmapped->str);
  else
    g_string_append (t, "#   (none)\n");
  if (j->notes->len)
    {
      g_string_append (t, "# Settings that sd-scripts runs differently:\n");
      g_string_append (t, j->notes->str);
    }
  g_string_append (t, "#\n# Flags: kohya sd-scripts ");
  g_string_append (t, j->script);
  g_string_append (t, " setup_parser, library/train_util.py add_*_arguments,\n"
                      "# library/custom_train_functions.py add_custom_train_arguments.\n\n");
  g_string_append (t, "cd \"$(dirname \"$0\")\" || exit 1\n");
  g_string_append (t, ": \"${SD_SCRIPTS:?set SD_SCRIPTS to the folder of kohya sd-scripts (an absolute path)}\"\n");
  g_string_append_printf (t, "exec accelerate launch --num_cpu_threads_per_process 1 \"$SD_SCRIPTS/%s\"", j->script);
  for (guint i = 0; i < j->argv->len; i++)
    {
      const char *w = j->argv->pdata[i];
      /* a new line for each flag; a list's values follow it on its line */
      g_string_append (t, g_str_has_prefix (w, "--") ? " \\\n  " : " ");
      append_word (t, w);
    }
  g_string_append_c (t, '\n');
  return g_string_free (t, FALSE);
}

static char *
readme (Job *j, const char *token)
{
  const DlTrainSettings *s = j->s;
  const char *ext = "safetensors";
  for (guint i = 0; i < j->argv->len; i++)
    if (g_str_has_prefix (j->argv->pdata[i], "--save_model_as="))
      ext = strchr (j->argv->pdata[i], '=') + 1;
  gboolean folder = g_str_has_prefix (ext, "diffusers");
  g_autofree char *result = folder ? g_strdup_printf ("output/%s/ (a diffusers folder)", j->output_name)
                                   : g_strdup_printf ("output/%s.%s", j->output_name, ext);
  GString *t = g_string_new (NULL);
  g_string_append_printf (t, "Dreamloom %s training job for kohya sd-scripts (%s)\n\n", method_title (s->method),
                          j->script);
  g_string_append (t, "To run it:\n"
                      "  1. Copy this whole folder to the GPU machine.\n"
                      "  2. Install kohya sd-scripts there (https://github.com/kohya-ss/sd-scripts: clone, make a\n"
                      "     Python venv, install PyTorch and requirements.txt) and activate its venv.\n"
                      "  3. Run `accelerate config` once: \"This machine\", multi-GPU, the number of GPUs.\n"
                      "  4. Check the base model's path in train.sh (--pretrained_model_name_or_path): it is\n"
                      "     this computer's path.\n"
                      "  5. SD_SCRIPTS=/absolute/path/to/sd-scripts sh train.sh\n\n");
  g_string_append (t, "What is in this folder:\n"
                      "  train/         the training images, each caption in <name>.txt\n");
  if (j->has_class)
    g_string_append_printf (t, "  class/         the class images of prior preservation (%u copied from %s)\n",
                            j->n_class, j->class_source ? j->class_source : "(none)");
  g_string_append (t, "  dataset.toml   sd-scripts' dataset config\n");
  if (j->prompts_file)
    g_string_append_printf (t, "  %s  the sample prompts\n", j->prompts_file);
  g_string_append (t, "  train.sh       the command line; its first lines list the settings sd-scripts has no\n"
                      "                 equivalent for\n\n");
  g_string_append_printf (t, "What it writes, into output/:\n  %s   the result\n", result);
  if (s->save_every > 0)
    g_string_append_printf (
      t, "  output/%s-stepNNNNNNNN.*   a checkpoint every %" G_GINT64_FORMAT " steps (the last %d kept)\n",
      j->output_name, s->save_every, s->keep);
  if (j->prompts_file && s->sample_every > 0)
    g_string_append_printf (t, "  output/sample/   sample images every %" G_GINT64_FORMAT " steps\n", s->sample_every);
  if (token)
    g_string_append_printf (t, "\nUse the embedding in prompts by its file name; it was trained as “%s”.\n", token);
  if (j->has_class)
    g_string_append_printf (t,
                            "\nPrior preservation: sd-scripts generates no class images; it trains with those in\n"
                            "class/ (without any it warns \"no regularization images\" and trains without prior\n"
                            "preservation). class/ holds %u; Dreamloom's run uses at least %d: add images of\n"
                            "“%s” there (Dreamloom generates the missing ones into its class folder).\n",
                            j->n_class, s->num_class_images, s->class_prompt);
  g_string_append (t, "\nAn SD 2.x base model needs --v2 in train.sh (and --v_parameterization for a 768-v model):\n"
                      "sd-scripts does not tell them from SD 1.x by itself.\n");
  g_string_append_printf (t,
                          "\nOn N GPUs each step takes N x batch images: %" G_GINT64_FORMAT " steps then see N times "
                          "the images of\nDreamloom's run; divide --max_train_steps by N to see as many.\n",
                          s->steps);
  return g_string_free (t, FALSE);
}

/* ---- the folder ---- */

static gboolean
build (Job *j, const char *root, const char *const *paths, const char *const *captions, guint n, GError **error)
{
  const DlTrainSettings *s = j->s;
  g_autofree char *token = NULL;
  if (s->method == DL_TRAIN_TEXTUAL_INVERSION)
    token = s->placeholder ? g_strdup (s->placeholder) : s->out ? dl_file_stem (s->out) : g_strdup ("embedding");
  if (!copy_images (j, root, paths, captions, n, token, error))
    return FALSE;
  if (j->has_class && !copy_class_images (j, root, error))
    return FALSE;
  if (!write_prompts (j, root, error) || !common_args (j, error))
    return FALSE;
  switch (s->method)
    {
    case DL_TRAIN_LORA:
      lora_args (j);
      break;
    case DL_TRAIN_DREAMBOOTH:
      dreambooth_args (j);
      break;
    case DL_TRAIN_TEXTUAL_INVERSION:
      ti_args (j, token);
      break;
    default:
      g_return_val_if_reached (FALSE);
    }
  g_autofree char *toml = dataset_toml (j);
  g_autofree char *sh = train_sh (j);
  g_autofree char *text = readme (j, token);
  if (!write_text (root, "dataset.toml", toml, error) || !write_text (root, "train.sh", sh, error) ||
      !write_text (root, "README.txt", text, error))
    return FALSE;
  g_autofree char *sh_path = g_build_filename (root, "train.sh", NULL);
  if (g_chmod (sh_path, 0755) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "“%s”: %s", sh_path, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static char *
output_name (const DlTrainSettings *s)
{
  if (!s->out)
    return g_strdup (dl_train_method_name (s->method));
  g_autofree char *out = g_strdup (s->out);
  gsize n = strlen (out);
  while (n > 1 && out[n - 1] == '/')
    out[--n] = '\0';
  if (s->method == DL_TRAIN_DREAMBOOTH && !g_str_has_suffix (out, ".safetensors"))
    return g_path_get_basename (out);
  return dl_file_stem (out);
}

gboolean
dl_kohya_job_write (const DlTrainSettings *s, const char *const *image_paths, const char *const *captions,
                    guint n_images, const char *dir, GError **error)
{
  g_return_val_if_fail (s != NULL && dir != NULL && *dir, FALSE);
  g_return_val_if_fail (image_paths != NULL || n_images == 0, FALSE);
  if (s->method == DL_TRAIN_HYPERNETWORK)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                           "--method hypernetwork: kohya sd-scripts has no trainer for A1111's hypernetworks "
                           "(fine_tune.py dropped hypernetwork training); train it in Dreamloom");
      return FALSE;
    }
  if (!s->model || !*s->model)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "--model: the base model is required");
      return FALSE;
    }
  if (n_images == 0)
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "no training images to write");
      return FALSE;
    }

  /* the target: new, or an empty folder */
  g_autofree char *target = g_strdup (dir);
  gsize len = strlen (target);
  while (len > 1 && target[len - 1] == '/')
    target[--len] = '\0';
  if (g_file_test (target, G_FILE_TEST_EXISTS))
    {
      if (!g_file_test (target, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "“%s” exists and is not a folder", target);
          return FALSE;
        }
      g_autoptr (GDir) d = g_dir_open (target, 0, error);
      if (!d)
        return FALSE;
      if (g_dir_read_name (d))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "“%s” is not empty: choose a new or empty folder for the job", target);
          return FALSE;
        }
    }
  g_autofree char *parent = g_path_get_dirname (target);
  g_autofree char *name = g_path_get_basename (target);
  if (g_mkdir_with_parents (parent, 0755) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot create “%s”: %s", parent, g_strerror (errno));
      return FALSE;
    }
  g_autofree char *partial_name = g_strconcat (".", name, ".partial", NULL);
  g_autofree char *partial = g_build_filename (parent, partial_name, NULL);
  dl_file_remove_tree (partial); /* a crashed earlier try's */
  if (g_mkdir (partial, 0755) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot create “%s”: %s", partial, g_strerror (errno));
      return FALSE;
    }

  Job j = {
    .s = s,
    .argv = g_ptr_array_new_with_free_func (g_free),
    .unmapped = g_string_new (NULL),
    .notes = g_string_new (NULL),
    .has_class = s->method == DL_TRAIN_DREAMBOOTH && s->class_prompt && *s->class_prompt,
    .wildcard = s->method == DL_TRAIN_TEXTUAL_INVERSION,
    .output_name = output_name (s),
  };
  j.script = s->method == DL_TRAIN_LORA         ? "train_network.py"
             : s->method == DL_TRAIN_DREAMBOOTH ? "train_db.py"
                                                : "train_textual_inversion.py";
  gboolean ok = build (&j, partial, image_paths, captions, n_images, error);
  job_clear (&j);
  if (ok && g_rename (partial, target) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot rename “%s” to “%s”: %s", partial, target, g_strerror (errno));
      ok = FALSE;
    }
  if (!ok)
    dl_file_remove_tree (partial);
  return ok;
}
