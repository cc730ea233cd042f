/* `dreamloom inspect PATH [--config DIR]`: what a model file or folder holds —
 * family, parameters and dtypes per component (SDXL's text_encoder_2 too),
 * configuration, metadata, keys that are not parameters.  A bad file: exit
 * status 1 and one line. */
#include "dl-cli.h"

#include <stdio.h>
#include <string.h>

#include "io/dl-checkpoint.h"

static const char *
layout_name (DlCheckpointLayout l, gboolean sdxl)
{
  switch (l)
    {
    case DL_CHECKPOINT_SINGLE_FILE:
      return sdxl ? "single file, safetensors (Stability's SGM names)"
                  : "single file, safetensors (original LDM names)";
    case DL_CHECKPOINT_SINGLE_FILE_PT:
      return sdxl ? "single file, PyTorch checkpoint (Stability's SGM names)"
                  : "single file, PyTorch checkpoint (original LDM names)";
    case DL_CHECKPOINT_DIFFUSERS:
    default:
      return "diffusers folder";
    }
}

/* 859520964 -> "859,520,964" */
static char *
grouped (guint64 v)
{
  g_autofree char *digits = g_strdup_printf ("%" G_GUINT64_FORMAT, v);
  GString *s = g_string_new (NULL);
  gsize n = strlen (digits);
  for (gsize i = 0; i < n; i++)
    {
      if (i > 0 && (n - i) % 3 == 0)
        g_string_append_c (s, ',');
      g_string_append_c (s, digits[i]);
    }
  return g_string_free (s, FALSE);
}

static void
print_components (DlCheckpoint *ck)
{
  guint64 params[DL_N_COMPONENTS] = { 0 };
  guint tensors[DL_N_COMPONENTS] = { 0 };
  guint dtypes[DL_N_COMPONENTS][DL_ST_N_DTYPES] = { { 0 } };
  for (guint i = 0; i < dl_checkpoint_get_n_params (ck); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (ck, i);
      params[p->component] += (guint64)p->numel;
      tensors[p->component]++;
      dtypes[p->component][p->dtype]++;
    }
  guint64 total = 0;
  printf ("components:\n");
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    {
      /* only SDXL has a second text encoder */
      if (c == DL_COMPONENT_TEXT_ENCODER_2 && tensors[c] == 0)
        continue;
      g_autofree char *n = grouped (params[c]);
      GString *d = g_string_new (NULL);
      for (int t = 0; t < DL_ST_N_DTYPES; t++)
        if (dtypes[c][t])
          g_string_append_printf (d, "%s%s ×%u", d->len ? ", " : "", dl_st_dtype_name ((DlStDType)t), dtypes[c][t]);
      printf ("  %-14s %15s parameters in %4u tensors  (%s)\n", dl_component_name ((DlComponent)c), n, tensors[c],
              d->str);
      g_string_free (d, TRUE);
      total += params[c];
    }
  g_autofree char *t = grouped (total);
  printf ("  %-14s %15s parameters\n", "total", t);
}

static void
print_config (DlCheckpoint *ck, gboolean all)
{
  static const char *const brief[] = { "unet.block_out_channels",       "unet.attention_heads",
                                       "unet.transformer_depth",        "unet.cross_attention_dim",
                                       "vae.block_out_channels",        "vae.scaling_factor",
                                       "text_encoder.hidden_size",      "text_encoder.n_layers",
                                       "text_encoder.n_heads",          "text_encoder_2.hidden_size",
                                       "text_encoder_2.n_layers",       "text_encoder_2.n_heads",
                                       "text_encoder_2.projection_dim", "scheduler.prediction_type" };
  const DlModelConfig *config = dl_checkpoint_get_config (ck);
  gboolean sdxl = dl_model_config_is_sdxl (config);
  printf ("configuration%s:\n", all ? "" : " (--all-config for every field)");
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    {
      const char *name = dl_model_config_field_name (i);
      gboolean wanted = all;
      /* SDXL's fields only for SDXL, unless all are asked for */
      gboolean xl_only = g_str_has_prefix (name, "text_encoder_2.") || strcmp (name, "unet.transformer_depth") == 0;
      for (guint k = 0; k < G_N_ELEMENTS (brief) && !wanted; k++)
        wanted = strcmp (brief[k], name) == 0 && (sdxl || !xl_only);
      if (!wanted)
        continue;
      g_autofree char *v = dl_model_config_field_to_string (config, i);
      printf ("  %-32s %-24s (%s)\n", name, v, dl_checkpoint_get_config_source (ck, name));
    }
  GPtrArray *warnings = dl_checkpoint_get_config_warnings (ck);
  for (guint i = 0; i < warnings->len; i++)
    printf ("  warning: %s\n", (const char *)warnings->pdata[i]);
}

static void
print_metadata (DlCheckpoint *ck)
{
  DlSafetensors *st = dl_checkpoint_get_safetensors (ck);
  if (!st)
    return;
  g_autoptr (GPtrArray) keys = dl_safetensors_get_metadata_keys (st);
  printf ("metadata (%u):\n", keys->len);
  for (guint i = 0; i < keys->len; i++)
    {
      const char *v = dl_safetensors_get_metadata (st, keys->pdata[i]);
      /* long JSON values (kohya's tag frequencies) are cut, on a character boundary */
      glong n = g_utf8_strlen (v, -1);
      g_autofree char *shown = n > 200 ? g_utf8_substring (v, 0, 200) : g_strdup (v);
      g_strdelimit (shown, "\n\r\t", ' ');
      printf ("  %s = %s%s\n", (const char *)keys->pdata[i], shown, n > 200 ? "…" : "");
    }
}

int
dl_cli_inspect (int argc, char **argv)
{
  g_autofree char *config = NULL;
  gboolean all_config = FALSE, list_ignored = FALSE;
  GOptionEntry entries[] = {
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config,
      "diffusers-style config folder (unet/ vae/ text_encoder/ scheduler/) for a single-file model", "DIR" },
    { "all-config", 0, 0, G_OPTION_ARG_NONE, &all_config, "Print every configuration field and its source", NULL },
    { "ignored", 0, 0, G_OPTION_ARG_NONE, &list_ignored,
      "List the keys skipped on purpose (schedule buffers, EMA copies, position_ids)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("PATH - describe a Stable Diffusion model file or folder");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!dl_cli_parse (ctx, &argc, &argv, "inspect"))
    return 2;
  if (argc != 2)
    {
      fprintf (stderr, "dreamloom inspect: give one model file or folder (see --help)\n");
      return 2;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (DlCheckpoint) ck = dl_checkpoint_open (argv[1], config, &error);
  if (!ck)
    {
      /* one line, whatever the message */
      g_strdelimit (error->message, "\n\r", ' ');
      return dl_cli_fail ("inspect", error);
    }

  printf ("file:     %s\n", dl_checkpoint_get_path (ck));
  printf ("layout:   %s\n",
          layout_name (dl_checkpoint_get_layout (ck), dl_model_config_is_sdxl (dl_checkpoint_get_config (ck))));
  printf ("family:   %s\n", dl_model_family_name (dl_checkpoint_get_family (ck)));
  const char *tok = dl_checkpoint_get_tokenizer_dir (ck);
  printf ("tokenizer: %s\n", tok ? tok : "none in the model (the CLIP vocabulary is searched for)");
  print_components (ck);
  print_config (ck, all_config);
  print_metadata (ck);

  GPtrArray *unknown = dl_checkpoint_get_unknown_keys (ck);
  printf ("unknown keys (%u)%s\n", unknown->len, unknown->len ? ": not used" : "");
  for (guint i = 0; i < unknown->len; i++)
    printf ("  %s\n", (const char *)unknown->pdata[i]);
  GPtrArray *ignored = dl_checkpoint_get_ignored_keys (ck);
  printf ("ignored keys (%u)%s\n", ignored->len,
          ignored->len && !list_ignored ? ": schedule buffers, EMA copies, position_ids (--ignored lists them)" : "");
  for (guint i = 0; list_ignored && i < ignored->len; i++)
    printf ("  %s\n", (const char *)ignored->pdata[i]);
  return 0;
}
