/* dl-cli-sample.c: `dreamloom sample` — text to image with a Stable Diffusion
 * checkpoint, optional LoRA files, A1111 hypernetworks and Textual Inversion
 * embeddings, PNG with AUTOMATIC1111's parameters text. */
#include "dl-config.h"

#include "dl-cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "dl-error.h"
#include "image/dl-infotext.h"
#include "image/dl-png.h"
#include "io/dl-safetensors.h"
#include "nn/dl-hypernetwork.h"
#include "nn/dl-lora.h"
#include "nn/dl-prompt-embeddings.h"
#include "nn/dl-sd-model.h"
#include "text/dl-clip-tokenizer.h"
#include "vk/dl-device.h"
#include "io/dl-file-util.h"

/* a --lora or --hypernetwork argument */
typedef struct
{
  char *path;
  float strength;
} LoraArg;

static void
lora_arg_free (gpointer p)
{
  LoraArg *a = p;
  g_free (a->path);
  g_free (a);
}

static gboolean
parse_network (const char *option, const char *arg, LoraArg *out, GError **error)
{
  /* FILE[:STRENGTH]; a colon inside a Windows-style path is not our concern */
  const char *colon = strrchr (arg, ':');
  char *end = NULL;
  double s = 1.0;
  if (colon && colon[1])
    {
      s = g_ascii_strtod (colon + 1, &end);
      if (end && *end == '\0')
        {
          out->path = g_strndup (arg, colon - arg);
          out->strength = (float)s;
          return TRUE;
        }
    }
  if (colon && !colon[1])
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s %s: missing strength after ':'", option, arg);
      return FALSE;
    }
  out->path = g_strdup (arg);
  out->strength = 1.0f;
  return TRUE;
}

/* The infotext entries of `args` (LoraArg*): the names A1111 lists them by
 * (`name_of` the path), with their strengths; the names go into `names`. */
static DlInfotextNetwork *
infotext_networks (GPtrArray *args, char *(*name_of) (const char *path), GPtrArray *names)
{
  DlInfotextNetwork *nets = g_new0 (DlInfotextNetwork, args ? args->len + 1 : 1);
  for (guint i = 0; args && i < args->len; i++)
    {
      LoraArg *l = args->pdata[i];
      char *name = name_of (l->path);
      g_ptr_array_add (names, name);
      nets[i] = (DlInfotextNetwork){ .name = name, .strength = l->strength };
    }
  return nets;
}

/* AUTOMATIC1111's "parameters" text of one image. */
static char *
a1111_parameters (const char *prompt, const char *negative, GPtrArray *loras, GPtrArray *hypernets, int steps,
                  const char *sampler, double cfg, guint64 seed, int width, int height, const char *model,
                  int clip_skip)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autofree DlInfotextNetwork *lnets = infotext_networks (loras, dl_model_name, names);
  g_autofree DlInfotextNetwork *hnets = infotext_networks (hypernets, dl_file_stem, names);
  DlInfotext info = {
    .prompt = prompt,
    .negative = negative,
    .loras = lnets,
    .n_loras = loras ? loras->len : 0,
    .hypernets = hnets,
    .n_hypernets = hypernets ? hypernets->len : 0,
    .steps = steps,
    .sampler = sampler,
    .cfg_scale = cfg,
    .seed = seed,
    .width = width,
    .height = height,
    .model = model,
    .clip_skip = clip_skip,
  };
  return dl_infotext_format (&info);
}

/* "1024x768" (sep 'x') or "0,64" (sep ','): two non-negative integers */
static gboolean
parse_pair (const char *option, const char *arg, char sep, int out[2], GError **error)
{
  g_auto (GStrv) parts = g_strsplit (arg, (char[]){ sep, 0 }, 2);
  for (int i = 0; i < 2; i++)
    {
      guint64 v = 0;
      if (!parts[0] || !parts[1] || !g_ascii_string_to_unsigned (parts[i], 10, 0, 1 << 16, &v, NULL))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s %s: expected two numbers as N%cN", option,
                       arg, sep);
          return FALSE;
        }
      out[i] = (int)v;
    }
  return TRUE;
}

static char *
nth_output (const char *out, int i)
{
  if (i == 0)
    return g_strdup (out);
  const char *dot = strrchr (out, '.');
  const char *slash = strrchr (out, G_DIR_SEPARATOR);
  if (!dot || (slash && dot < slash))
    return g_strdup_printf ("%s-%d", out, i);
  return g_strdup_printf ("%.*s-%d%s", (int)(dot - out), out, i, dot);
}

static gboolean
write_latents (const char *path, const float *latents, int batch, int64_t c, int64_t h, int64_t w, GError **error)
{
  g_autoptr (DlSafetensorsWriter) wr = dl_safetensors_writer_new ();
  int64_t shape[4] = { batch, c, h, w };
  return dl_safetensors_writer_add_f32 (wr, "latents", DL_ST_F32, 4, shape, latents, error) &&
         dl_safetensors_writer_write (wr, path, error);
}

static void
report_step (int step, int n_steps, const float *latents, gpointer data)
{
  (void)latents;
  if (*(gboolean *)data)
    fprintf (stderr, "\rstep %d/%d", step + 1, n_steps);
}

int
dl_cli_sample (int argc, char **argv)
{
  g_autofree char *model = NULL, *config = NULL, *prompt = NULL, *negative = NULL, *sampler_name = NULL;
  g_autofree char *sampler_names = dl_sampler_names_joined (", ");
  g_autofree char *sampler_help = g_strdup_printf ("One of %s (default euler_a)", sampler_names);
  g_autofree char *out = NULL, *init_latents = NULL, *out_latents = NULL, *vocab = NULL;
  g_auto (GStrv) lora_args = NULL, embedding_args = NULL, hypernetwork_args = NULL;
  int steps = 20, width = 0, height = 0, batch = 1, clip_skip = 1;
  gboolean half = FALSE, zero_negative = FALSE, te_on_host = FALSE;
  g_autofree char *original_size = NULL, *crop = NULL, *target_size = NULL;
  double cfg = 7.5;
  gint64 seed = -1;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Checkpoint file or diffusers folder", "M" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "diffusers-style config folder for a single-file model", "DIR" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "What to draw", "P" },
    { "negative", 'n', 0, G_OPTION_ARG_STRING, &negative, "What to avoid", "N" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &steps, "Sampling steps (20)", "N" },
    { "sampler", 0, 0, G_OPTION_ARG_STRING, &sampler_name, sampler_help, "S" },
    { "cfg", 0, 0, G_OPTION_ARG_DOUBLE, &cfg, "Classifier-free guidance scale (7.5)", "F" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed (random when not given)", "S" },
    { "width", 0, 0, G_OPTION_ARG_INT, &width, "Width in pixels (512; SDXL 1024)", "W" },
    { "height", 0, 0, G_OPTION_ARG_INT, &height, "Height in pixels (512; SDXL 1024)", "H" },
    { "zero-negative", 0, 0, G_OPTION_ARG_NONE, &zero_negative,
      "SDXL without --negative: all-zero negative conditioning (diffusers) instead of the empty prompt's (A1111, "
      "ComfyUI)",
      NULL },
    { "original-size", 0, 0, G_OPTION_ARG_STRING, &original_size, "SDXL size conditioning (the image size)", "WxH" },
    { "crop", 0, 0, G_OPTION_ARG_STRING, &crop, "SDXL crop conditioning, top-left corner (0,0)", "LEFT,TOP" },
    { "target-size", 0, 0, G_OPTION_ARG_STRING, &target_size, "SDXL target size conditioning (the image size)", "WxH" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &batch, "Images, with seeds S, S+1, … (1)", "N" },
    { "text-encoders-on-host", 0, 0, G_OPTION_ARG_NONE, &te_on_host,
      "Keep the text encoders in host memory while the UNet runs (automatic when device memory is short)", NULL },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &lora_args, "LoRA file, with a strength (1)", "FILE[:STRENGTH]" },
    { "hypernetwork", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &hypernetwork_args,
      "AUTOMATIC1111 hypernetwork (.pt; repeatable, applied in the order given), with a strength (1)",
      "FILE[:STRENGTH]" },
    { "embedding", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &embedding_args,
      "Textual Inversion embedding (.pt, .bin, .safetensors; repeatable): its file name without the extension, "
      "as a whole word in the prompts, stands for its vectors",
      "FILE" },
    { "clip-skip", 0, 0, G_OPTION_ARG_INT, &clip_skip, "Use the text encoder's N-th layer from the end (1)", "N" },
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab, "CLIP vocabulary when the model has no tokenizer/", "F" },
    { "init-latents", 0, 0, G_OPTION_ARG_FILENAME, &init_latents, "Starting noise (tensor `latents`)", "F" },
    { "out-latents", 0, 0, G_OPTION_ARG_FILENAME, &out_latents, "Write the final latents here", "F" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "PNG to write", "OUT.png" },
    { "fp16", 0, 0, G_OPTION_ARG_NONE, &half, "Half-precision weights and activations (fp32 arithmetic)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- draw images with a Stable Diffusion model");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!dl_cli_parse (ctx, &argc, &argv, "sample"))
    return 2;
  g_autoptr (GError) error = NULL;
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
  if (!model || !prompt || !out)
    {
      g_set_error_literal (&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "--model, --prompt and --out are required");
      return dl_cli_fail ("sample", error);
    }
  if (!dl_sampler_kind_from_name (sampler_name ? sampler_name : "euler_a", &kind, &sigmas))
    {
      g_autofree char *known = dl_sampler_names_joined (", ");
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "unknown sampler “%s” (%s)", sampler_name, known);
      return dl_cli_fail ("sample", error);
    }
  if (steps < 1 || steps > 1000 || batch < 1 || batch > 64 || clip_skip < 1)
    {
      g_set_error_literal (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--steps must be 1..1000, --batch 1..64 and --clip-skip at least 1");
      return dl_cli_fail ("sample", error);
    }
  int sizes[3][2] = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
  const char *size_args[3] = { original_size, crop, target_size };
  const char *size_names[3] = { "--original-size", "--crop", "--target-size" };
  for (int i = 0; i < 3; i++)
    if (size_args[i] && !parse_pair (size_names[i], size_args[i], i == 1 ? ',' : 'x', sizes[i], &error))
      {
        dl_cli_fail ("sample", error);
        return 2; /* a usage error */
      }
  if (seed < 0)
    seed = g_random_int ();
  g_autoptr (GPtrArray) loras = g_ptr_array_new_with_free_func (lora_arg_free);
  for (guint i = 0; lora_args && lora_args[i]; i++)
    {
      LoraArg *a = g_new0 (LoraArg, 1);
      g_ptr_array_add (loras, a);
      if (!parse_network ("--lora", lora_args[i], a, &error))
        {
          dl_cli_fail ("sample", error);
          return 2; /* a usage error, as a bad option value */
        }
    }
  g_autoptr (GPtrArray) hypernets = g_ptr_array_new_with_free_func (lora_arg_free);
  for (guint i = 0; hypernetwork_args && hypernetwork_args[i]; i++)
    {
      LoraArg *a = g_new0 (LoraArg, 1);
      g_ptr_array_add (hypernets, a);
      if (!parse_network ("--hypernetwork", hypernetwork_args[i], a, &error))
        {
          dl_cli_fail ("sample", error);
          return 2; /* a usage error, as a bad option value */
        }
    }

  g_autoptr (DlDevice) device = dl_device_new (NULL, &error);
  if (!device)
    return dl_cli_fail ("sample", error);
  g_autoptr (DlSdModel) m = dl_sd_model_load_as (device, model, config, half ? DL_DTYPE_F16 : DL_DTYPE_F32, &error);
  if (!m)
    return dl_cli_fail ("sample", error);
  const DlModelConfig *mc = dl_sd_model_get_config (m);
  gboolean sdxl = dl_model_config_is_sdxl (mc);
  if (width == 0)
    width = sdxl ? 1024 : 512;
  if (height == 0)
    height = sdxl ? 1024 : 512;
  if (sdxl && hypernets->len)
    {
      g_set_error_literal (&error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                           "hypernetworks are for Stable Diffusion 1.x models (AUTOMATIC1111 has none for SDXL)");
      return dl_cli_fail ("sample", error);
    }
  if (!sdxl && (zero_negative || original_size || crop || target_size))
    {
      g_set_error_literal (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--zero-negative, --original-size, --crop and --target-size are for SDXL models");
      return dl_cli_fail ("sample", error);
    }
  g_autoptr (DlClipTokenizer) tok =
    dl_clip_tokenizer_find (dl_checkpoint_get_tokenizer_dir (dl_sd_model_get_checkpoint (m)), vocab, &error);
  if (!tok)
    return dl_cli_fail ("sample", error);
  for (guint i = 0; i < loras->len; i++)
    {
      LoraArg *l = loras->pdata[i];
      g_autoptr (DlLoraFile) lf = dl_lora_file_open (l->path, &error);
      g_autoptr (GPtrArray) unmatched = NULL;
      if (!lf || !dl_lora_attach (dl_sd_model_get_params (m), lf, l->strength, NULL, &unmatched, &error))
        return dl_cli_fail ("sample", error);
      if (unmatched && unmatched->len)
        fprintf (stderr, "dreamloom sample: %s: %u modules match nothing in the model; ignored\n", l->path,
                 unmatched->len);
    }
  for (guint i = 0; i < hypernets->len; i++)
    {
      LoraArg *h = hypernets->pdata[i];
      g_autoptr (DlHypernetwork) hn = dl_hypernetwork_read (device, h->path, &error);
      if (!hn)
        return dl_cli_fail ("sample", error);
      g_autoptr (GArray) unused = dl_hypernetwork_unused_sizes (hn, &dl_sd_model_get_config (m)->unet);
      if (unused->len == dl_hypernetwork_get_n_sizes (hn))
        {
          g_set_error (&error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: none of the hypernetwork's sizes is the width "
                       "of an attention of this model (a hypernetwork made for another model)",
                       h->path);
          return dl_cli_fail ("sample", error);
        }
      for (guint k = 0; k < unused->len; k++)
        fprintf (stderr, "dreamloom sample: %s: no attention of the model is %d wide; its size-%d modules are unused\n",
                 h->path, g_array_index (unused, int, k), g_array_index (unused, int, k));
      dl_params_add_hypernetwork (dl_sd_model_get_params (m), hn, h->strength);
    }

  /* embeddings by name (A1111): the PNG keeps the prompts as typed */
  g_autofree char *prompt_text = NULL, *negative_text = NULL;
  g_autoptr (DlPromptEmbeddings) embeddings = NULL;
  if (embedding_args)
    {
      embeddings =
        dl_prompt_embeddings_load (tok, dl_sd_model_get_params (m), (const char *const *)embedding_args, &error);
      if (!embeddings)
        return dl_cli_fail ("sample", error);
      guint n = dl_prompt_embeddings_get_n (embeddings);
      g_autofree guint *in_prompt = g_new0 (guint, n), *in_negative = g_new0 (guint, n);
      prompt_text = dl_prompt_embeddings_rewrite (embeddings, prompt, in_prompt);
      negative_text = dl_prompt_embeddings_rewrite (embeddings, negative ? negative : "", in_negative);
      for (guint i = 0; i < n; i++)
        {
          int nv = dl_prompt_embeddings_get_n_vectors (embeddings, i);
          fprintf (stderr, "dreamloom sample: embedding “%s” (%d vector%s): %s\n",
                   dl_prompt_embeddings_get_name (embeddings, i), nv, nv == 1 ? "" : "s",
                   in_prompt[i] && in_negative[i] ? "in the prompt and the negative prompt"
                   : in_prompt[i]                 ? "in the prompt"
                   : in_negative[i]               ? "in the negative prompt"
                                                  : "in neither prompt (unused)");
        }
    }
  const char *neg_text = negative_text ? negative_text : negative;
  DlPromptIds ids;
  if (!dl_prompt_ids_encode (&ids, m, tok, prompt_text ? prompt_text : prompt, neg_text, batch, &error))
    return dl_cli_fail ("sample", error);
  int f = 1 << (mc->vae.n_levels - 1);
  int64_t lc = mc->unet.in_channels, lh = height / f, lw = width / f;
  g_autofree float *init = NULL;
  if (init_latents)
    {
      g_autoptr (DlSafetensors) st = dl_safetensors_open (init_latents, &error);
      int64_t n = 0;
      init = st ? dl_safetensors_read_f32 (st, "latents", &n, &error) : NULL;
      if (!init)
        return dl_cli_fail ("sample", error);
      if (n != (int64_t)batch * lc * lh * lw)
        {
          g_set_error (&error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: latents hold %" G_GINT64_FORMAT " values; %d×%" G_GINT64_FORMAT "×%" G_GINT64_FORMAT
                       "×%" G_GINT64_FORMAT " expected",
                       init_latents, n, batch, lc, lh, lw);
          return dl_cli_fail ("sample", error);
        }
    }
  gboolean tty = isatty (fileno (stderr));
  DlSampleParams sp = {
    .zero_negative = zero_negative && !negative,
    .text_encoders_on_host = te_on_host,
    .original_width = sizes[0][0],
    .original_height = sizes[0][1],
    .crop_left = sizes[1][0],
    .crop_top = sizes[1][1],
    .target_width = sizes[2][0],
    .target_height = sizes[2][1],
    .batch = batch,
    .width = width,
    .height = height,
    .steps = steps,
    .sampler = kind,
    .sigmas = sigmas,
    .cfg_scale = (float)cfg,
    .seed = (guint64)seed,
    .clip_skip = clip_skip,
    .init_latents = init,
    .on_step = report_step,
    .on_step_data = &tty,
  };
  dl_sample_params_set_prompt_ids (&sp, &ids);
  g_autofree float *latents = NULL, *images = NULL;
  /* $DREAMLOOM_PROFILE=1: GPU time per shader (serialises the work) */
  gboolean profile = g_strcmp0 (g_getenv ("DREAMLOOM_PROFILE"), "1") == 0;
  dl_recorder_set_profiling (dl_sd_model_get_recorder (m), profile);
  gboolean sampled = dl_sd_sample (m, &sp, &latents, &images, &error);
  dl_prompt_ids_clear (&ids);
  if (!sampled)
    return dl_cli_fail ("sample", error);
  if (profile)
    {
      g_autofree char *prof = dl_recorder_format_profile (dl_sd_model_get_recorder (m));
      fprintf (stderr, "%s", prof);
    }
  if (tty)
    fputc ('\n', stderr);
  if (out_latents && !write_latents (out_latents, latents, batch, lc, lh, lw, &error))
    return dl_cli_fail ("sample", error);

  g_autofree char *model_name = dl_model_name (model);
  g_autofree guint8 *rgb = g_new (guint8, (gsize)width * height * 3);
  for (int b = 0; b < batch; b++)
    {
      dl_image_chw_to_rgb8 (images + (gsize)b * 3 * width * height, width, height, rgb);
      g_autofree char *params =
        a1111_parameters (prompt, negative, loras, hypernets, steps, dl_sampler_a1111_name (kind, sigmas), cfg,
                          (guint64)seed + b, width, height, model_name, clip_skip);
      g_autoptr (GHashTable) text = g_hash_table_new (g_str_hash, g_str_equal);
      g_hash_table_insert (text, "parameters", params);
      g_autofree char *path = nth_output (out, b);
      if (!dl_png_write (path, rgb, width, height, 3, text, &error))
        return dl_cli_fail ("sample", error);
      printf ("%s\n", path);
    }
  return 0;
}
