/* test-train-plan.c: the memory plan against the device memory a run uses.
 *
 * A run on a golden tiny model is measured from before its model is loaded to
 * the end of its second step (dl_device_get_memory_peak) and planned from the
 * same settings and file (dl_train_plan_new); the weights are counted to the
 * byte.  On these models the arena's 256 MiB chunks are most of it, so a
 * phase that kept the chunks of encoding, or encoders left on the device, shows
 * over the plan.  The plan must not be below what the run used, nor above it
 * by more than what it counts and the run frees (the VAE's weights: the
 * trainer drops them when nothing samples), and its peak must be in the phase
 * it says.  After dl_trainer_prepare the arena holds nothing: the step grows
 * it to its own needs.  The trained tensors are counted one by one, as the
 * optimizer allocates them (small ones keep f32 moments under 8-bit AdamW;
 * every allocation is aligned): dl_optimizer_tensor_bytes is what
 * dl_optimizer_add takes from the device. */
#include "train-test-util.h"

#include <math.h>
#include <unistd.h>

#include "dl-error.h"
#include "nn/dl-sd-model.h"
#include "tensor/dl-arena.h"
#include "train/dl-optimizer.h"
#include "train/dl-train-plan.h"

/* what the plan leaves out: small tensors ops make outside the arena and the
 * recording holds until it ends (GroupNorm's statistics, 768 bytes or more a
 * call; the fused pass's norms): 110 KiB in the tiny SDXL DreamBooth step */
#define SCRATCH (256u << 10)

typedef enum
{
  PEAK_TRAINING,
  PEAK_ENCODING,
  PEAK_ENCODERS_BACK,
} Peak;

typedef struct
{
  const char *tag;
  const char *model; /* golden path */
  DlTrainMethod method;
  const char *opts[8];
  Peak peak;
  gboolean init_from; /* --init-from the golden train/lora-init.safetensors */
  gboolean previews;  /* a preview after the steps (dl_trainer_preview) */
} Case;

static const Case cases[] = {
  /* the encoders go to the host before the LoRA is made: encoding is the peak */
  { "sdxl-lora-frozen-encoders",
    "sdxl/tiny-sdxl-diffusers",
    DL_TRAIN_LORA,
    { "rank=4", "no-text-encoder" },
    PEAK_ENCODING },
  /* the UNet's f32 masters and moments outweigh the tiny encoders */
  { "sdxl-dreambooth-24gb-recipe",
    "sdxl/tiny-sdxl-diffusers",
    DL_TRAIN_DREAMBOOTH,
    { "fp16", "checkpointing", "optimizer=adamw8bit", "fused-backward-pass" },
    PEAK_TRAINING },
  /* the encoders train and stay on the device; LoRA's step is the peak,
   * Textual Inversion's (a few vectors) is below the images' encoding */
  { "sd15-lora", "tiny-sd15-diffusers", DL_TRAIN_LORA, { "rank=4" }, PEAK_TRAINING },
  { "sd15-ti", "tiny-sd15-diffusers", DL_TRAIN_TEXTUAL_INVERSION, { "lr=5e-3", "placeholder=<plan>" }, PEAK_ENCODING },
  /* the file's text-encoder modules attach in the LoRA's setup: the prompts
   * are encoded after it, next to the trained tensors */
  { "sd15-lora-init-from-frozen-encoders",
    "tiny-sd15-diffusers",
    DL_TRAIN_LORA,
    { "rank=4", "alpha=2", "no-text-encoder" },
    PEAK_ENCODERS_BACK,
    TRUE },
  /* a preview brings the encoders back next to the LoRA (and the arena's
   * chunks go first) */
  { "sdxl-lora-previews",
    "sdxl/tiny-sdxl-diffusers",
    DL_TRAIN_LORA,
    { "rank=4", "no-text-encoder", "sample-every=2", "sample-steps=2" },
    PEAK_ENCODERS_BACK,
    FALSE,
    TRUE },
};

static guint64
vae_bytes (DlSdModel *m)
{
  /* what the plan counts for the VAE: the loaded model's own tensors */
  g_autoptr (GPtrArray) names = dl_params_names (dl_sd_model_get_params (m));
  guint64 n = 0;
  for (guint i = 0; i < names->len; i++)
    if (g_str_has_prefix (names->pdata[i], "vae."))
      n += dl_tensor_nbytes (dl_params_lookup (dl_sd_model_get_params (m), names->pdata[i]));
  return n;
}

static void
test_measured (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-train-plan-XXXXXX");
  g_autofree char *model = dl_test_golden_path (c->model);
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model or images");
  if (!images)
    return;
  /* the model under a new path: a new VAE identity, so the images are
   * encoded, not read from the latent cache of an earlier run */
  g_autofree char *link = g_build_filename (tmp, "model", NULL);
  g_assert_cmpint (symlink (model, link), ==, 0);
  const char *ext = c->method == DL_TRAIN_TEXTUAL_INVERSION ? ".pt" : ".safetensors";
  g_autofree char *out = g_strdup_printf ("%s/out%s", tmp, ext);
  g_autoptr (DlTrainSettings) s = train_test_settings (c->method, link, images, out, c->opts);
  g_autofree char *init = c->init_from ? dl_test_golden_path ("train/lora-init.safetensors") : NULL;
  if (c->init_from && !init)
    {
      g_test_skip ("no golden train/lora-init.safetensors");
      dl_test_remove_tree (tmp);
      return;
    }
  if (init)
    {
      g_assert_true (dl_train_settings_set (s, "init-from", init, &error));
      g_assert_no_error (error);
    }
  DlDevice *dev = dl_test_device ();

  g_autoptr (DlTrainPlan) plan = dl_train_plan_new (dev, s, &error);
  g_assert_no_error (error);
  const DlTrainPlanFigures *f = dl_train_plan_get_figures (plan);
  const guint64 peaks[] = { f->peak_training, f->peak_encoding, f->peak_encoders_back };
  g_assert_cmpuint (f->total, ==, MAX (peaks[0], MAX (peaks[1], peaks[2])));
  g_assert_cmpuint (f->total, ==, peaks[c->peak]);

  g_assert_true (dl_device_trim_memory (dev, &error));
  guint64 base = dl_device_get_memory_in_use (dev);
  dl_device_reset_memory_peak (dev);
  g_autoptr (DlTrainer) t = dl_trainer_new (dev, NULL, s, &error);
  g_assert_no_error (error);
  g_assert_true (dl_trainer_prepare (t, NULL, &error));
  g_assert_no_error (error);
  DlSdModel *m = dl_trainer_get_model (t);
  g_assert_cmpuint (dl_arena_get_reserved (dl_sd_model_get_arena (m)), ==, 0);
  for (int k = 0; k < 2; k++)
    {
      g_assert_true (dl_trainer_step (t, &error));
      g_assert_no_error (error);
    }
  if (c->previews)
    {
      g_assert_true (dl_trainer_preview (t, &error));
      g_assert_no_error (error);
    }
  guint64 measured = dl_device_get_memory_peak (dev) - base;
  /* the VAE as loaded: what the plan counts for it throughout */
  guint64 loading = dl_device_get_memory_in_use (dev);
  g_autoptr (DlSdModel) fresh = dl_sd_model_load_as (dev, model, NULL, s->fp16 ? DL_DTYPE_F16 : DL_DTYPE_F32, &error);
  g_assert_no_error (error);
  /* the weights to the byte */
  g_assert_cmpuint (dl_device_get_memory_in_use (dev) - loading, ==, f->weights + f->text_encoders_on_host);
  g_assert_no_error (error);
  guint64 vae = vae_bytes (fresh);
  g_test_message ("%s: predicted %.2f MiB (encoding %.2f, training %.2f, encoders back %.2f), measured %.2f MiB, "
                  "VAE %.2f MiB",
                  c->tag, f->total / 1048576.0, f->peak_encoding / 1048576.0, f->peak_training / 1048576.0,
                  f->peak_encoders_back / 1048576.0, measured / 1048576.0, vae / 1048576.0);
  g_assert_cmpuint (measured, <=, f->total + SCRATCH);
  g_assert_cmpuint (f->total, <=, measured + vae + (1u << 20));
  dl_test_remove_tree (tmp);
}

static void
test_optimizer_bytes (void)
{
  g_autoptr (GError) error = NULL;
  DlDevice *dev = dl_test_device ();
  /* around bitsandbytes' min_8bit_size (4096), and sizes off the alignment */
  const int64_t sizes[] = { 1, 33, 300, 4095, 4096, 4097, 5000, 70001 };
  for (int eightbit = 0; eightbit <= 1; eightbit++)
    {
      g_autoptr (DlRecorder) rec = dl_recorder_new (dev, &error);
      g_assert_no_error (error);
      g_autoptr (DlOptimizer) opt = dl_optimizer_new (dev, 0.9, 0.999, 1e-8);
      dl_optimizer_set_8bit (opt, eightbit);
      dl_optimizer_add_group (opt, "all", 0.0);
      g_autoptr (GPtrArray) params = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
      gint64 all = 0;
      if (eightbit)
        {
          /* the first 8-bit tensor brings the quantile maps (2 KiB, once) */
          DlTensor *p = dl_tensor_new_1d (dev, "first", DL_DTYPE_F32, 8192, &error);
          g_assert_no_error (error);
          g_ptr_array_add (params, p);
          g_assert_true (dl_optimizer_add (opt, rec, "first", p, 0, &error));
          g_assert_no_error (error);
          all += 8192;
        }
      for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
        {
          guint64 before = dl_device_get_memory_in_use (dev);
          DlTensor *p = dl_tensor_new_1d (dev, "param", DL_DTYPE_F32, sizes[i], &error);
          g_assert_no_error (error);
          g_ptr_array_add (params, p);
          g_autofree char *name = g_strdup_printf ("t%u", i);
          g_assert_true (dl_optimizer_add (opt, rec, name, p, 0, &error));
          g_assert_no_error (error);
          guint64 took = dl_device_get_memory_in_use (dev) - before;
          g_assert_cmpuint (took, ==, dl_optimizer_tensor_bytes (dev, sizes[i], eightbit, TRUE, FALSE));
          g_assert_cmpuint (took - dl_device_allocation_size (dev, 4 * (guint64)sizes[i]), ==,
                            dl_optimizer_tensor_bytes (dev, sizes[i], eightbit, FALSE, FALSE));
          all += sizes[i];
        }
      /* the gradients, in shared blocks: 4 bytes an element */
      guint64 before = dl_device_get_memory_in_use (dev);
      g_assert_true (dl_optimizer_zero_grad (opt, rec, &error) && dl_recorder_finish (rec, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (dl_device_get_memory_in_use (dev) - before, ==,
                        dl_device_allocation_size (dev, 4 * (guint64)all));
      guint64 sum = 0;
      for (guint i = 0; i < params->len; i++)
        {
          int64_t n = dl_tensor_numel (params->pdata[i]);
          sum += dl_optimizer_tensor_bytes (dev, n, eightbit, FALSE, TRUE) -
                 dl_optimizer_tensor_bytes (dev, n, eightbit, FALSE, FALSE);
        }
      g_assert_cmpuint (sum, ==, 4 * (guint64)all);
    }
}

/* step 1's loss of a LoRA from --init-from (so `tag`'s options) */
static double
first_loss (const char *tmp, const char *tag, const char *model, const char *images, const char *init,
            const char *const *opts)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = g_strdup_printf ("%s/%s.safetensors", tmp, tag);
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_LORA, model, images, out, opts);
  g_assert_true (dl_train_settings_set (s, "init-from", init, &error));
  g_assert_no_error (error);
  g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  g_autoptr (TrainLog) log = train_log_new ();
  train_test_attach (t, log);
  g_assert_true (dl_trainer_prepare (t, NULL, &error) && dl_trainer_step (t, &error));
  g_assert_no_error (error);
  return train_log_loss_at (log, 1);
}

/* A LoRA from --init-from whose text-encoder modules are not trained
 * (--no-text-encoder) still conditions on them: its prompts are encoded after
 * the file's modules attach, so its first loss is the one of the same run
 * training them (the same weights at step 1). */
static void
test_init_from_conditioning (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-train-plan-init-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *init = dl_test_golden_path ("train/lora-init.safetensors");
  g_autofree char *images =
    train_test_images_or_skip (tmp, 1, model && init, "no golden tiny model or train/lora-init.safetensors");
  if (!images)
    return;
  const char *const frozen[] = { "rank=4", "alpha=2", "seed=3", "no-text-encoder", NULL };
  const char *const trained[] = { "rank=4", "alpha=2", "seed=3", NULL };
  double a = first_loss (tmp, "frozen", model, images, init, frozen);
  double b = first_loss (tmp, "trained", model, images, init, trained);
  g_test_message ("step 1: %.9g with the encoders' modules frozen, %.9g trained", a, b);
  g_assert_cmpfloat (fabs (a - b), <=, 1e-6 * fabs (b));
  dl_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/train/plan/optimizer-bytes", test_optimizer_bytes);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/train/plan/measured/%s", cases[i].tag);
      dl_test_add_data (path, &cases[i], test_measured);
    }
  dl_test_add ("/train/plan/init-from-conditioning", test_init_from_conditioning);
  return dl_test_run ();
}
