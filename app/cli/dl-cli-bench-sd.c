/* dl-cli-bench-sd.c: `dreamloom bench sample` and `dreamloom bench train-step`
 * on a full-size SD 1.5 architecture (or SDXL's, --family sdxl) with random
 * weights (no checkpoint needed): seconds per iteration, peak device memory,
 * and the per-op time breakdown from the GPU profiler.  Benchmarks, never
 * tests. */
#include "dl-config.h"

#include "dl-cli.h"
#include "dl-error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/dl-model-params.h"
#include "nn/dl-text-encoder.h"
#include "nn/dl-nn.h"
#include "nn/dl-sd-model.h"
#include "nn/dl-sdxl-conditioning.h"
#include "nn/dl-unet.h"
#include "nn/dl-vae.h"
#include "ops/dl-ops.h"
#include "vk/dl-device.h"

static DlTensor *
random_tensor_as (DlDevice *device, DlRecorder *rec, const char *name, DlDType dtype, int ndim, const int64_t *shape,
                  guint64 seed, GError **error)
{
  g_autoptr (DlTensor) t = dl_tensor_new (device, name, dtype, ndim, shape, error);
  if (!t || !dl_op_random_normal (rec, t, DL_RANDOM_PHILOX, seed, 0, 0.0f, 1.0f, error))
    return NULL;
  return g_steal_pointer (&t);
}

typedef struct
{
  int resolution;
  int batch;
  int iters;
  int steps;
  gboolean checkpoint;
  gboolean profile;
  gboolean half;
  int lora_rank;
  gboolean sdxl;
  DlModelConfig config; /* the architecture: SD 1.5's or SDXL base 1.0's */
  const char *arch;     /* its name */
} BenchOptions;

/* --family: sd15 (the default) or sdxl, the published shapes of each
 * (dl_model_config_init_sd15, dl_model_config_init_sdxl) */
static gboolean
family_config (const char *name, BenchOptions *o)
{
  o->sdxl = g_strcmp0 (name, "sdxl") == 0;
  if (name && !o->sdxl && g_strcmp0 (name, "sd15") != 0)
    return FALSE;
  if (o->sdxl)
    dl_model_config_init_sdxl (&o->config);
  else
    dl_model_config_init_sd15 (&o->config);
  o->arch = o->sdxl ? "SDXL" : "SD 1.5";
  return TRUE;
}

static gboolean
parse_options (int argc, char **argv, const char *what, BenchOptions *o, DlDevice **device_out)
{
  o->resolution = 0;
  o->batch = 1;
  o->iters = 3;
  o->steps = 0;
  o->profile = TRUE;
  o->half = FALSE;
  o->lora_rank = 0;
  gboolean no_profile = FALSE;
  g_autofree char *family = NULL;
  GOptionEntry entries[] = {
    { "family", 0, 0, G_OPTION_ARG_STRING, &family, "Architecture: sd15 (default) or sdxl (SDXL base 1.0 shapes)",
      "F" },
    { "resolution", 'r', 0, G_OPTION_ARG_INT, &o->resolution, "Image size in pixels (512 on a GPU, 128 on a CPU)",
      "N" },
    { "batch", 'b', 0, G_OPTION_ARG_INT, &o->batch, "Images per iteration (1)", "N" },
    { "iters", 'n', 0, G_OPTION_ARG_INT, &o->iters, "Timed iterations (3)", "N" },
    { "checkpointing", 0, 0, G_OPTION_ARG_NONE, &o->checkpoint, "Gradient checkpointing (train-step)", NULL },
    { "no-profile", 0, 0, G_OPTION_ARG_NONE, &no_profile, "Skip the per-op breakdown run", NULL },
    { "fp16", 0, 0, G_OPTION_ARG_NONE, &o->half, "f16 weights and activations (sample)", NULL },
    { "lora", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &o->lora_rank, "replaced by `bench train --method lora`",
      "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (what);
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!dl_cli_parse (ctx, &argc, &argv, "bench"))
    return FALSE;
  o->profile = !no_profile;
  if (!family_config (family, o))
    {
      fprintf (stderr, "dreamloom bench: --family %s: sd15 or sdxl\n", family);
      return FALSE;
    }
  g_autoptr (GError) error = NULL;
  *device_out = dl_device_new (NULL, &error);
  if (!*device_out)
    {
      dl_cli_fail ("bench", error);
      return FALSE;
    }
  const DlDeviceInfo *info = dl_device_get_info (*device_out);
  if (o->resolution <= 0)
    o->resolution = info->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 128 : 512;
  if (o->lora_rank < 0)
    {
      fprintf (stderr, "dreamloom bench: --lora takes a rank of 1 or more\n");
      return FALSE;
    }
  if (o->resolution % 64)
    {
      fprintf (stderr, "dreamloom bench: --resolution must be a multiple of 64\n");
      return FALSE;
    }
  int full = o->sdxl ? 1024 : 512;
  g_autofree char *reduced = o->resolution < full
                               ? g_strdup_printf (" (reduced size: full %dx%d is too slow on this device)", full, full)
                               : g_strdup ("");
  printf ("device: %s (%s)\n%s architecture, random weights, %s%s, %dx%d, batch %d%s\n", info->name,
          dl_device_type_name (info->type), o->arch, o->half ? "f16" : "f32",
          o->half && o->sdxl ? " (VAE f32: force_upcast)" : "", o->resolution, o->resolution, o->batch, reduced);
  return TRUE;
}

static void
print_profile (DlRecorder *rec)
{
  g_autofree char *prof = dl_recorder_format_profile (rec);
  printf ("per-op GPU time (one iteration, serialised by the profiler):\n%s", prof);
}

/* One guided UNet evaluation (batch 2B) = one sampling step; `uo` has SDXL's
 * pooled text embedding and time ids (NULL for SD 1.5). */
static gboolean
sample_step (DlParams *p, const DlModelConfig *c, DlTape *tape, DlDevice *device, DlRecorder *rec,
             const BenchOptions *o, DlTensor *ctx, const DlUNetOptions *uo, GError **error)
{
  int64_t lat = o->resolution / 8;
  int64_t xs[4] = { 2 * o->batch, 4, lat, lat };
  int64_t tn = 2 * o->batch;
  DlDType act = dl_tape_get_activation_dtype (tape);
  g_autoptr (DlTensor) x = random_tensor_as (device, rec, "sample", act, 4, xs, 7, error);
  g_autoptr (DlTensor) t = x ? dl_tensor_new (device, "t", DL_DTYPE_F32, 1, &tn, error) : NULL;
  if (!t || !dl_op_fill (rec, t, 500.0, error))
    return FALSE;
  g_autoptr (DlTensor) eps = dl_unet_forward (p, &c->unet, tape, x, t, ctx, uo, error);
  return eps && dl_recorder_finish (rec, error);
}

static int
bench_sample (int argc, char **argv)
{
  BenchOptions o;
  g_autoptr (DlDevice) device = NULL;
  if (!parse_options (argc, argv, "- time sampling steps, text encoding and VAE decoding", &o, &device))
    return 2;
  g_autoptr (GError) error = NULL;
  DlModelConfig c = o.config;
  DlDType dtype = o.half ? DL_DTYPE_F16 : DL_DTYPE_F32;
  g_autoptr (DlSdModel) model = dl_sd_model_new_random (device, &c, dtype, 1234, &error);
  if (!model)
    return dl_cli_fail ("bench", error);
  DlParams *p = dl_sd_model_get_params (model);
  DlRecorder *rec = dl_sd_model_get_recorder (model);
  g_autoptr (DlTape) tape = dl_tape_new (rec, dl_sd_model_get_arena (model));
  dl_tape_set_enabled (tape, FALSE);
  dl_tape_set_activation_dtype (tape, dtype);
  guint64 weights = dl_device_get_memory_in_use (device);

  int64_t ids_shape[2] = { 2 * o.batch, 77 };
  g_autoptr (DlTensor) ids = dl_tensor_new (device, "ids", DL_DTYPE_I32, 2, ids_shape, &error);
  if (!ids || !dl_op_fill (rec, ids, 49407, &error))
    return dl_cli_fail ("bench", error);
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (DlTensor) ctx = NULL, pooled = NULL, time_ids = NULL;
  if (o.sdxl)
    {
      /* both encoders; text_encoder_2's ids: start, end, then its pad 0 */
      gsize n_ids = (gsize)ids_shape[0] * 77;
      g_autofree gint32 *ids2 = g_new0 (gint32, n_ids);
      for (gsize r = 0; r < n_ids; r += 77)
        ids2[r] = 49406, ids2[r + 1] = 49407;
      g_autoptr (DlTensor) ids2_t = dl_tensor_new (device, "ids_2", DL_DTYPE_I32, 2, ids_shape, &error);
      if (!ids2_t || !dl_tensor_upload (ids2_t, ids2, DL_DTYPE_I32, &error) ||
          !dl_sdxl_encode_prompt (p, &c, tape, ids, ids2_t, ids2, NULL, &ctx, &pooled, &error))
        return dl_cli_fail ("bench", error);
      g_autofree float *tid = g_new (float, (gsize)ids_shape[0] * 6);
      for (int64_t r = 0; r < ids_shape[0]; r++)
        dl_sdxl_time_ids (tid + 6 * r, o.resolution, o.resolution, 0, 0, o.resolution, o.resolution);
      int64_t ts[2] = { ids_shape[0], 6 };
      time_ids = dl_tensor_new (device, "time_ids", DL_DTYPE_F32, 2, ts, &error);
      if (!time_ids || !dl_tensor_upload (time_ids, tid, DL_DTYPE_F32, &error))
        return dl_cli_fail ("bench", error);
    }
  else
    {
      ctx = dl_text_encoder_forward (p, &c.text_encoder, tape, ids, NULL, &error);
    }
  if (!ctx || !dl_recorder_finish (rec, &error))
    return dl_cli_fail ("bench", error);
  double text_s = (g_get_monotonic_time () - t0) / 1e6;
  DlUNetOptions uo = { .text_embeds = pooled, .time_ids = time_ids };
  const DlUNetOptions *uop = o.sdxl ? &uo : NULL;
  dl_device_reset_memory_peak (device);
  /* warm-up (pipelines) */
  if (!sample_step (p, &c, tape, device, rec, &o, ctx, uop, &error))
    return dl_cli_fail ("bench", error);
  g_autofree double *times = g_new (double, o.iters);
  for (int i = 0; i < o.iters; i++)
    {
      t0 = g_get_monotonic_time ();
      if (!sample_step (p, &c, tape, device, rec, &o, ctx, uop, &error))
        return dl_cli_fail ("bench", error);
      times[i] = (g_get_monotonic_time () - t0) / 1e6;
    }
  double step_s = dl_cli_median (times, o.iters);
  guint64 unet_peak = dl_device_get_memory_peak (device);
  /* the decode as sampling runs it (dl_sd_sample): in the VAE's dtype, tiled
   * when the whole would not fit the free memory */
  int64_t lat = o.resolution / 8;
  int64_t zs[4] = { o.batch, 4, lat, lat };
  DlDType vae_dtype = dl_sd_model_get_vae_dtype (model);
  g_autoptr (DlTape) vae_tape = dl_tape_new (rec, dl_sd_model_get_arena (model));
  dl_tape_set_enabled (vae_tape, FALSE);
  dl_tape_set_activation_dtype (vae_tape, vae_dtype);
  g_autoptr (DlTensor) z = random_tensor_as (device, rec, "z", vae_dtype, 4, zs, 9, &error);
  if (!z || !dl_recorder_finish (rec, &error))
    return dl_cli_fail ("bench", error);
  int overlap = 0, tile = dl_vae_decode_auto_tile (&c.vae, vae_tape, z, &overlap);
  guint64 vae_act = dl_vae_decode_activation_bytes (&c.vae, o.batch, tile ? MIN (tile, lat) : lat,
                                                    tile ? MIN (tile, lat) : lat, vae_dtype);
  DlArena *arena = dl_sd_model_get_arena (model);
  dl_arena_reset_peak (arena);
  guint64 arena_base = dl_arena_get_in_use (arena);
  t0 = g_get_monotonic_time ();
  g_autoptr (DlTensor) img = dl_vae_decode_auto (p, &c.vae, vae_tape, z, &error);
  if (!img || !dl_recorder_finish (rec, &error))
    return dl_cli_fail ("bench", error);
  double vae_s = (g_get_monotonic_time () - t0) / 1e6;
  guint64 vae_peak = dl_arena_get_peak (arena) - arena_base;
  printf ("text encoder%s (batch %d):   %.3f s\n", o.sdxl ? "s" : "", 2 * o.batch, text_s);
  printf ("sampling step (CFG, UNet batch %d): %.3f s/it (median of %d), %.2f it/s\n", 2 * o.batch, step_s, o.iters,
          1.0 / step_s);
  g_autofree char *how =
    tile ? g_strdup_printf ("tiles of %d latent pixels, overlap %d", tile, overlap) : g_strdup ("whole");
  printf ("VAE decode (%s, %s):  %.3f s, activations %.1f MiB (estimate %.1f MiB)\n", dl_dtype_name (vae_dtype), how,
          vae_s, vae_peak / 1048576.0, vae_act / 1048576.0);
  printf ("20-step image estimate:    %.2f s\n", text_s + 20 * step_s + vae_s);
  printf ("device memory: weights %.1f MiB, peak %.1f MiB (sampling steps), %.1f MiB (with the VAE decode)\n",
          weights / 1048576.0, unet_peak / 1048576.0, dl_device_get_memory_peak (device) / 1048576.0);
  if (o.profile)
    {
      dl_recorder_set_profiling (rec, TRUE);
      if (!sample_step (p, &c, tape, device, rec, &o, ctx, uop, &error))
        return dl_cli_fail ("bench", error);
      print_profile (rec);
    }
  return 0;
}

static gboolean
train_step (DlParams *p, const DlModelConfig *c, DlArena *arena, DlDevice *device, DlRecorder *rec,
            const BenchOptions *o, GPtrArray *grads, GPtrArray *params_list, GPtrArray *moments, DlTensor *hyper,
            GError **error)
{
  g_autoptr (DlTape) tape = dl_tape_new (rec, arena);
  DlDType act = o->half ? DL_DTYPE_F16 : DL_DTYPE_F32;
  dl_tape_set_activation_dtype (tape, act);
  for (guint i = 0; i < params_list->len; i++)
    {
      if (!dl_op_fill (rec, grads->pdata[i], 0.0, error))
        return FALSE;
      dl_tape_set_param_grad (tape, params_list->pdata[i], grads->pdata[i]);
    }
  int64_t lat = o->resolution / 8;
  int64_t xs[4] = { o->batch, 4, lat, lat };
  int64_t cs[3] = { o->batch, 77, c->unet.cross_attention_dim };
  int64_t tn = o->batch;
  g_autoptr (DlTensor) x = random_tensor_as (device, rec, "noisy", act, 4, xs, 1, error);
  g_autoptr (DlTensor) y = x ? random_tensor_as (device, rec, "target", act, 4, xs, 2, error) : NULL;
  g_autoptr (DlTensor) ctx = y ? random_tensor_as (device, rec, "context", act, 3, cs, 3, error) : NULL;
  g_autoptr (DlTensor) t = ctx ? dl_tensor_new (device, "t", DL_DTYPE_F32, 1, &tn, error) : NULL;
  if (!t || !dl_op_fill (rec, t, 500.0, error))
    return FALSE;
  DlUNetOptions uo = { .checkpoint = o->checkpoint };
  g_autoptr (DlTensor) pooled = NULL, time_ids = NULL;
  if (o->sdxl)
    {
      /* SDXL's added conditioning: a random pooled embedding, time ids of the size */
      int64_t ps[2] = { o->batch, c->text_encoder_2.projection_dim }, ts[2] = { o->batch, 6 };
      pooled = random_tensor_as (device, rec, "pooled", act, 2, ps, 4, error);
      time_ids = pooled ? dl_tensor_new (device, "time_ids", DL_DTYPE_F32, 2, ts, error) : NULL;
      if (!time_ids || !dl_op_fill (rec, time_ids, o->resolution, error))
        return FALSE;
      uo.text_embeds = pooled;
      uo.time_ids = time_ids;
    }
  g_autoptr (DlTensor) eps = dl_unet_forward (p, &c->unet, tape, x, t, ctx, &uo, error);
  g_autoptr (DlTensor) deps = NULL;
  g_autoptr (DlTensor) loss = eps ? dl_nn_mse_loss (tape, eps, y, NULL, 1.0f, &deps, error) : NULL;
  if (!loss || !dl_tape_backward (tape, eps, deps, error))
    return FALSE;
  for (guint i = 0; i < params_list->len; i++)
    if (!dl_op_adamw (rec, params_list->pdata[i], grads->pdata[i], moments->pdata[2 * i], moments->pdata[2 * i + 1],
                      hyper, NULL, NULL, error))
      return FALSE;
  return dl_recorder_finish (rec, error);
}

/* Full fine-tuning of the UNet (what DreamBooth trains): every parameter, fp32.
 * LoRA and Textual Inversion steps are timed by `bench train`, through the
 * trainer itself. */
static int
bench_train_step (int argc, char **argv)
{
  BenchOptions o;
  g_autoptr (DlDevice) device = NULL;
  if (!parse_options (argc, argv, "- time a full UNet training step (forward, backward, AdamW)", &o, &device))
    return 2;
  g_autoptr (GError) error = NULL;
  if (o.half || o.lora_rank)
    {
      fprintf (stderr, "dreamloom bench: train-step is full fp32 fine-tuning; for LoRA and embeddings (also with "
                       "--fp16) use `dreamloom bench train --method lora|textual-inversion`\n");
      return 2;
    }
  DlModelConfig c = o.config;
  c.text_encoder.n_layers = 0; /* not used: the step takes a random context */
  g_autoptr (DlSdModel) model = dl_sd_model_new_random (device, &c, DL_DTYPE_F32, 1234, &error);
  if (!model)
    return dl_cli_fail ("bench", error);
  DlParams *p = dl_sd_model_get_params (model);
  DlRecorder *rec = dl_sd_model_get_recorder (model);
  /* what AdamW updates: every UNet parameter */
  g_autoptr (GPtrArray) plist = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  g_autoptr (GPtrArray) names = dl_params_names (p);
  for (guint i = 0; i < names->len; i++)
    if (g_str_has_prefix (names->pdata[i], "unet."))
      g_ptr_array_add (plist, dl_tensor_ref (dl_params_lookup (p, names->pdata[i])));
  g_autoptr (GPtrArray) grads = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  g_autoptr (GPtrArray) moments = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  int64_t n_trained = 0;
  for (guint i = 0; i < plist->len; i++)
    {
      DlTensor *w = plist->pdata[i];
      n_trained += dl_tensor_numel (w);
      for (int k = 0; k < 3; k++)
        {
          DlTensor *t = dl_tensor_new (device, k ? "adam-moment" : "grad", DL_DTYPE_F32, w->ndim, w->shape, &error);
          if (!t || (k && !dl_op_fill (rec, t, 0.0, &error)))
            return dl_cli_fail ("bench", error);
          g_ptr_array_add (k ? moments : grads, t);
        }
    }
  int64_t hl = DL_ADAMW_HYPER_LEN;
  g_autoptr (DlTensor) hyper = dl_tensor_new (device, "adamw-hyper", DL_DTYPE_F32, 1, &hl, &error);
  DlAdamWParams ap = DL_ADAMW_PARAMS_DEFAULT;
  ap.lr = 1e-6;
  if (!hyper || !dl_adamw_hyper_upload (hyper, &ap, 1, &error) || !dl_recorder_finish (rec, &error))
    return dl_cli_fail ("bench", error);
  guint64 state = dl_device_get_memory_in_use (device);
  DlArena *arena = dl_sd_model_get_arena (model);
  dl_device_reset_memory_peak (device);
  if (!train_step (p, &c, arena, device, rec, &o, grads, plist, moments, hyper, &error))
    return dl_cli_fail ("bench", error);
  g_autofree double *times = g_new (double, o.iters);
  for (int i = 0; i < o.iters; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      if (!train_step (p, &c, arena, device, rec, &o, grads, plist, moments, hyper, &error))
        return dl_cli_fail ("bench", error);
      times[i] = (g_get_monotonic_time () - t0) / 1e6;
    }
  printf ("train step (UNet fwd+bwd+AdamW; all parameters, fp32; %.1f M trained parameters; %s): %.3f s/it "
          "(median of %d)\n",
          n_trained / 1e6, o.checkpoint ? "gradient checkpointing" : "no checkpointing", dl_cli_median (times, o.iters),
          o.iters);
  printf ("device memory: weights + trained state %.1f MiB, peak %.1f MiB (activations peak %.1f MiB)\n",
          state / 1048576.0, dl_device_get_memory_peak (device) / 1048576.0, dl_arena_get_peak (arena) / 1048576.0);
  if (o.profile)
    {
      dl_recorder_set_profiling (rec, TRUE);
      if (!train_step (p, &c, arena, device, rec, &o, grads, plist, moments, hyper, &error))
        return dl_cli_fail ("bench", error);
      print_profile (rec);
    }
  return 0;
}

int
dl_cli_bench_sd (int argc, char **argv, const char *what)
{
  if (g_str_equal (what, "sample"))
    return bench_sample (argc, argv);
  return bench_train_step (argc, argv);
}
