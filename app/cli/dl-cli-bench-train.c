/* dl-cli-bench-train.c: `dreamloom bench train --method lora|textual-inversion|dreambooth|hypernetwork`
 * — the trainer's own step (the one `dreamloom train` runs) on SD 1.5-shaped
 * random weights (SDXL base 1.0's with --family sdxl: no hypernetworks, as
 * the trainer) and synthetic images: seconds per step, images per second,
 * the memory plan's prediction against the measured peak, and the per-op GPU
 * time.  A benchmark, never a test. */
#include "dl-config.h"

#include "dl-cli.h"

#include <math.h>
#include <stdio.h>

#include "dl-error.h"
#include "dl-philox.h"
#include "image/dl-png.h"
#include "io/dl-file-util.h"
#include "train/dl-train-plan.h"
#include "train/dl-trainer.h"
#include "vk/dl-device.h"

/* a few smooth random images with captions, as a small dataset is */
static gboolean
write_images (const char *dir, int size, int n, GError **error)
{
  g_autofree guint8 *rgb = g_new (guint8, (gsize)size * size * 3);
  for (int i = 0; i < n; i++)
    {
      for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
          for (int c = 0; c < 3; c++)
            {
              double v = 0.5 + 0.25 * sin ((x + 7 * i) * (0.05 + 0.01 * c)) +
                         0.25 * cos ((y - 3 * i) * (0.07 - 0.01 * c)) +
                         0.05 * (dl_philox_uniform (i, c, (guint64)y * size + x) - 0.5);
              rgb[((gsize)y * size + x) * 3 + c] = (guint8)CLAMP (v * 255.0, 0, 255);
            }
      g_autofree char *name = g_strdup_printf ("%02d.png", i);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *cap_name = g_strdup_printf ("%02d.txt", i);
      g_autofree char *cap = g_build_filename (dir, cap_name, NULL);
      if (!dl_png_write (path, rgb, size, size, 3, NULL, error) ||
          !g_file_set_contents (cap, "a photo of sks dog, studio lighting", -1, error))
        return FALSE;
    }
  return TRUE;
}

static void
count_steps (const DlTrainEvent *ev, gpointer data)
{
  if (ev->kind == DL_TRAIN_EVENT_WARNING)
    fprintf (stderr, "dreamloom bench: warning: %s\n", ev->message);
}

int
dl_cli_bench_train (int argc, char **argv)
{
  g_autofree char *method_name = NULL, *optimizer = NULL, *family = NULL;
  int resolution = 0, batch = 1, iters = 3, rank = 16, vectors = 1;
  gboolean half = FALSE, checkpointing = FALSE, no_profile = FALSE, no_text = FALSE, fused = FALSE;
  GOptionEntry entries[] = {
    { "method", 'm', 0, G_OPTION_ARG_STRING, &method_name,
      "lora (default), textual-inversion, dreambooth or hypernetwork", "M" },
    { "family", 0, 0, G_OPTION_ARG_STRING, &family, "Architecture: sd15 (default) or sdxl (SDXL base 1.0 shapes)",
      "F" },
    { "optimizer", 0, 0, G_OPTION_ARG_STRING, &optimizer, "adamw (default) or adamw8bit", "O" },
    { "resolution", 'r', 0, G_OPTION_ARG_INT, &resolution, "Image size in pixels (512 on a GPU, 128 on a CPU)", "N" },
    { "batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Images per step (1)", "N" },
    { "iters", 'n', 0, G_OPTION_ARG_INT, &iters, "Timed steps (3)", "N" },
    { "rank", 0, 0, G_OPTION_ARG_INT, &rank, "LoRA rank (16)", "R" },
    { "vectors", 0, 0, G_OPTION_ARG_INT, &vectors, "Textual Inversion vectors (1)", "N" },
    { "no-text-encoder", 0, 0, G_OPTION_ARG_NONE, &no_text, "LoRA: UNet modules only", NULL },
    { "fp16", 0, 0, G_OPTION_ARG_NONE, &half, "f16 weights and activations", NULL },
    { "checkpointing", 0, 0, G_OPTION_ARG_NONE, &checkpointing, "Gradient checkpointing", NULL },
    { "fused-backward-pass", 0, 0, G_OPTION_ARG_NONE, &fused, "Each tensor's step during the backward", NULL },
    { "no-profile", 0, 0, G_OPTION_ARG_NONE, &no_profile, "Skip the per-op breakdown run", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- time the trainer's step on SD 1.5- or SDXL-shaped weights");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!dl_cli_parse (ctx, &argc, &argv, "bench"))
    return 2;
  g_autoptr (GError) error = NULL;
  DlTrainMethod method = DL_TRAIN_LORA;
  if (method_name && !dl_train_method_from_name (method_name, &method))
    {
      fprintf (stderr, "dreamloom bench: --method %s: lora, textual-inversion, dreambooth or hypernetwork\n",
               method_name);
      return 2;
    }
  gboolean sdxl = g_strcmp0 (family, "sdxl") == 0;
  if (family && !sdxl && g_strcmp0 (family, "sd15") != 0)
    {
      fprintf (stderr, "dreamloom bench: --family %s: sd15 or sdxl\n", family);
      return 2;
    }
  if (sdxl && method == DL_TRAIN_HYPERNETWORK)
    {
      fprintf (stderr, "dreamloom bench: --family sdxl: hypernetworks are for SD 1.x (lora, textual-inversion or "
                       "dreambooth)\n");
      return 2;
    }
  if (iters < 1 || batch < 1)
    {
      fprintf (stderr, "dreamloom bench: --iters and --batch must be at least 1\n");
      return 2;
    }
  g_autoptr (DlDevice) device = dl_device_new (NULL, &error);
  if (!device)
    return dl_cli_fail ("bench", error);
  const DlDeviceInfo *info = dl_device_get_info (device);
  if (resolution <= 0)
    resolution = info->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 128 : 512;
  if (resolution % 64)
    {
      fprintf (stderr, "dreamloom bench: --resolution must be a multiple of 64\n");
      return 2;
    }

  g_autofree char *dir = g_dir_make_tmp ("dreamloom-bench-XXXXXX", &error);
  if (!dir)
    return dl_cli_fail ("bench", error);
  g_autofree char *images = g_build_filename (dir, "images", NULL);
  g_autofree char *out = g_build_filename (
    dir,
    method == DL_TRAIN_TEXTUAL_INVERSION || method == DL_TRAIN_HYPERNETWORK ? "dlbench-out.pt" : "bench.safetensors",
    NULL);
  g_mkdir_with_parents (images, 0755);
  int exit_status = 1;
  if (!write_images (images, resolution, MAX (4, batch), &error))
    {
      dl_cli_fail ("bench", error);
      goto out;
    }
  {
    g_autoptr (DlTrainSettings) s = dl_train_settings_new (method);
    g_autofree char *res_text = g_strdup_printf ("%d", resolution);
    g_autofree char *batch_text = g_strdup_printf ("%d", batch);
    g_autofree char *steps_text = g_strdup_printf ("%d", iters + 2);
    g_autofree char *rank_text = g_strdup_printf ("%d", rank);
    g_autofree char *vec_text = g_strdup_printf ("%d", vectors);
    gboolean ok = dl_train_settings_set (s, "model", sdxl ? "random SDXL weights" : "random SD 1.5 weights", &error) &&
                  dl_train_settings_set (s, "images", images, &error) &&
                  dl_train_settings_set (s, "out", out, &error) &&
                  dl_train_settings_set (s, "resolution", res_text, &error) &&
                  dl_train_settings_set (s, "batch", batch_text, &error) &&
                  dl_train_settings_set (s, "steps", steps_text, &error) &&
                  dl_train_settings_set (s, "sample-every", "0", &error) &&
                  dl_train_settings_set (s, "validate-every", "0", &error) &&
                  dl_train_settings_set (s, "save-every", "0", &error) &&
                  (!half || dl_train_settings_set (s, "fp16", NULL, &error)) &&
                  (!checkpointing || dl_train_settings_set (s, "checkpointing", NULL, &error)) &&
                  (!fused || dl_train_settings_set (s, "fused-backward-pass", NULL, &error)) &&
                  (method != DL_TRAIN_LORA || dl_train_settings_set (s, "rank", rank_text, &error)) &&
                  (method != DL_TRAIN_LORA || !no_text || dl_train_settings_set (s, "no-text-encoder", NULL, &error)) &&
                  (method != DL_TRAIN_TEXTUAL_INVERSION || dl_train_settings_set (s, "vectors", vec_text, &error)) &&
                  (!optimizer || dl_train_settings_set (s, "optimizer", optimizer, &error));
    if (!ok)
      {
        dl_cli_fail ("bench", error);
        goto out;
      }
    DlModelConfig cfg;
    if (sdxl)
      dl_model_config_init_sdxl (&cfg);
    else
      dl_model_config_init_sd15 (&cfg);
    g_autoptr (DlTrainPlan) plan = dl_train_plan_new_for_config (device, s, &cfg);
    const DlTrainPlanFigures *pf = dl_train_plan_get_figures (plan);

    int full = sdxl ? 1024 : 512;
    g_autofree char *reduced =
      resolution < full ? g_strdup_printf (" (reduced size: full %dx%d is too slow on this device)", full, full)
                        : g_strdup ("");
    printf ("device: %s (%s)\n%s architecture, random weights, %s%s, %dx%d, batch %d, %s%s\n", info->name,
            dl_device_type_name (info->type), sdxl ? "SDXL" : "SD 1.5", half ? "f16" : "f32",
            half && sdxl ? " (VAE f32: force_upcast)" : "", resolution, resolution, batch,
            dl_train_method_name (method), reduced);
    dl_device_reset_memory_peak (device);
    gint64 t0 = g_get_monotonic_time ();
    g_autoptr (DlSdModel) model =
      dl_sd_model_new_random (device, &cfg, half ? DL_DTYPE_F16 : DL_DTYPE_F32, 1234, &error);
    if (!model)
      {
        dl_cli_fail ("bench", error);
        goto out;
      }
    g_autoptr (DlTrainer) trainer = dl_trainer_new (device, model, s, &error);
    if (!trainer || !(dl_trainer_set_event_func (trainer, count_steps, NULL, NULL), TRUE) ||
        !dl_trainer_prepare (trainer, NULL, &error))
      {
        dl_cli_fail ("bench", error);
        goto out;
      }
    double prep_s = (g_get_monotonic_time () - t0) / 1e6;
    guint64 state = dl_device_get_memory_in_use (device);
    /* warm-up: pipelines compiled, arena grown */
    if (!dl_trainer_step (trainer, &error))
      {
        dl_cli_fail ("bench", error);
        goto out;
      }
    g_autofree double *times = g_new (double, iters);
    for (int i = 0; i < iters; i++)
      {
        gint64 s0 = g_get_monotonic_time ();
        if (!dl_trainer_step (trainer, &error))
          {
            dl_cli_fail ("bench", error);
            goto out;
          }
        times[i] = (g_get_monotonic_time () - s0) / 1e6;
      }
    guint64 peak = dl_device_get_memory_peak (device);
    DlArena *arena = dl_sd_model_get_arena (model);
    double step_s = dl_cli_median (times, iters);
    printf ("model + images prepared in %.1f s (random weights, %d images encoded)\n", prep_s, MAX (4, batch));
    printf ("train step (%s; %.2f M trained parameters; %s%s): %.3f s/it (median of %d), %.2f images/s\n",
            dl_train_method_name (method), pf->trained_params / 1e6,
            checkpointing ? "gradient checkpointing" : "no checkpointing", fused ? ", fused backward pass" : "", step_s,
            iters, batch / step_s);
    printf ("device memory: weights + trained state %.1f MiB, activations peak %.1f MiB (arena)\n", state / 1048576.0,
            dl_arena_get_peak (arena) / 1048576.0);
    printf ("memory plan:   weights %.1f MiB, trained %.1f MiB, activations %.1f MiB, encode %.1f MiB\n",
            pf->weights / 1048576.0, pf->trained / 1048576.0, pf->activations / 1048576.0, pf->encode / 1048576.0);
    printf ("peak: predicted %.1f MiB, measured %.1f MiB (predicted/measured %.3f)\n", pf->total / 1048576.0,
            peak / 1048576.0, (double)pf->total / MAX (peak, 1));
    if (!no_profile)
      {
        DlRecorder *rec = dl_sd_model_get_recorder (model);
        dl_recorder_set_profiling (rec, TRUE);
        if (!dl_trainer_step (trainer, &error))
          {
            dl_cli_fail ("bench", error);
            goto out;
          }
        g_autofree char *prof = dl_recorder_format_profile (rec);
        printf ("per-op GPU time (one step, serialised by the profiler):\n%s", prof);
      }
    exit_status = 0;
  }
out:
  dl_file_remove_tree (dir);
  return exit_status;
}
