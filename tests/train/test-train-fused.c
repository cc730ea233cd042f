/* test-train-fused.c: --fused-backward-pass (each tensor's AdamW step applied
 * during the backward, kohya sd-scripts' --fused_backward_pass) against the
 * ordinary step, on the golden tiny models:
 *  - without clipping the two give the same run to the bit: every trained
 *    tensor, AdamW moment and step count of the state file, every step's loss,
 *    and the gradient norm (summed in another order: to 1e-5) — for DreamBooth
 *    with and without gradient checkpointing and the text encoder, LoRA with
 *    LoCon through checkpointed blocks, SDXL DreamBooth with the 24 GB recipe
 *    (f16 weights with f32 masters, checkpointing, 8-bit AdamW), and Textual
 *    Inversion with clipping on (one trained tensor: per-tensor clipping is
 *    the global one);
 *  - the fused run makes no gradient buffers;
 *  - clipping is per tensor: with several tensors and a low --max-grad-norm the
 *    runs differ (the norms before clipping still agree);
 *  - a poisoned step leaves every tensor as it was and says so;
 *  - --grad-accum is refused with it;
 *  - the memory plan of a full SDXL fine-tune at 1024²: 4 bytes less a trained
 *    parameter, under 24 GiB with the 24 GB recipe, the text encoders in host
 *    memory unless they train or tags are shuffled. */
#include "train-test-util.h"

#include <math.h>
#include <string.h>

#include "io/dl-safetensors.h"
#include "nn/dl-vae.h"
#include "train/dl-optimizer.h"
#include "train/dl-train-plan.h"
#include "train/dl-trainer-private.h" /* t->opt: the gradient buffers a run made */

typedef struct
{
  TrainLog *log;
  char *state; /* the state file after the last step */
  guint64 gradient_bytes;
} Run;

static void
run_clear (Run *r)
{
  g_clear_pointer (&r->log, train_log_free);
  g_free (r->state);
}

/* `steps` steps of `method` on `model` with `opts` (+ fused) in `tmp`/`tag` */
static void
run_steps (const char *tmp, const char *tag, DlTrainMethod method, const char *model, const char *images,
           const char *const *opts, gboolean fused, int steps, Run *r)
{
  g_autoptr (GError) error = NULL;
  const char *ext = method == DL_TRAIN_TEXTUAL_INVERSION ? ".pt" : ".safetensors";
  g_autofree char *out = g_strdup_printf ("%s/%s-%s%s", tmp, tag, fused ? "fused" : "plain", ext);
  g_autoptr (DlTrainSettings) s = train_test_settings (method, model, images, out, opts);
  if (fused)
    g_assert_true (dl_train_settings_set (s, "fused-backward-pass", NULL, &error));
  g_assert_no_error (error);
  g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  r->log = train_log_new ();
  train_test_attach (t, r->log);
  g_assert_true (dl_trainer_prepare (t, NULL, &error));
  g_assert_no_error (error);
  for (int k = 0; k < steps; k++)
    {
      g_assert_true (dl_trainer_step (t, &error));
      g_assert_no_error (error);
    }
  r->gradient_bytes = dl_optimizer_get_gradient_bytes (t->opt);
  r->state = g_strdup_printf ("%s/%s-%s.state.safetensors", tmp, tag, fused ? "fused" : "plain");
  g_assert_true (dl_trainer_write_state (t, r->state, &error));
  g_assert_no_error (error);
}

static void
assert_norms_agree (Run *a, Run *b, guint steps)
{
  g_assert_cmpuint (a->log->grad_norm->len, ==, steps);
  g_assert_cmpuint (b->log->grad_norm->len, ==, steps);
  for (guint i = 0; i < steps; i++)
    {
      double na = g_array_index (a->log->grad_norm, double, i), nb = g_array_index (b->log->grad_norm, double, i);
      g_assert_true (isfinite (na) && na > 0);
      g_assert_cmpfloat (fabs (na - nb), <=, 1e-5 * na);
    }
}

typedef struct
{
  const char *tag;
  const char *model; /* golden path */
  DlTrainMethod method;
  const char *opts[12];
  int steps;
  gboolean slow; /* left out under $DREAMLOOM_TEST_QUICK (the sanitizer build) */
} Case;

static const Case cases[] = {
  { "dreambooth", "tiny-sd15-diffusers", DL_TRAIN_DREAMBOOTH, { "lr=1e-4", "max-grad-norm=0" }, 3, FALSE },
  { "dreambooth-checkpointing-text",
    "tiny-sd15-diffusers",
    DL_TRAIN_DREAMBOOTH,
    { "lr=1e-4", "max-grad-norm=0", "checkpointing", "train-text-encoder", "text-encoder-lr=2e-4" },
    2,
    TRUE },
  { "lora-locon-checkpointing",
    "tiny-sd15-diffusers",
    DL_TRAIN_LORA,
    { "rank=4", "conv-rank=4", "lr=1e-3", "max-grad-norm=0", "checkpointing" },
    3,
    FALSE },
  { "sdxl-dreambooth-24gb-recipe",
    "sdxl/tiny-sdxl-diffusers",
    DL_TRAIN_DREAMBOOTH,
    { "lr=1e-4", "max-grad-norm=0", "fp16", "checkpointing", "optimizer=adamw8bit" },
    2,
    TRUE },
  { "ti-clipped", "tiny-sd15-diffusers", DL_TRAIN_TEXTUAL_INVERSION, { "lr=5e-3", "max-grad-norm=1e-4" }, 3, FALSE },
};

static void
test_same_run (gconstpointer data)
{
  const Case *c = data;
  if (c->slow && g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      g_test_skip ("$DREAMLOOM_TEST_QUICK");
      return;
    }
  g_autofree char *tmp = train_test_make_tmp ("dl-fused-XXXXXX");
  g_autofree char *model = dl_test_golden_path (c->model);
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  Run plain = { 0 }, fused = { 0 };
  run_steps (tmp, c->tag, c->method, model, images, c->opts, FALSE, c->steps, &plain);
  gint64 t1 = g_get_monotonic_time ();
  run_steps (tmp, c->tag, c->method, model, images, c->opts, TRUE, c->steps, &fused);
  g_test_message ("%s: %d steps plain %.1f s, fused %.1f s; gradient buffers %" G_GUINT64_FORMAT
                  " bytes plain, %" G_GUINT64_FORMAT " fused",
                  c->tag, c->steps, (t1 - t0) / 1e6, (g_get_monotonic_time () - t1) / 1e6, plain.gradient_bytes,
                  fused.gradient_bytes);
  g_assert_cmpuint (plain.gradient_bytes, >, 0);
  g_assert_cmpuint (fused.gradient_bytes, ==, 0);
  g_assert_cmpuint (fused.log->warnings->len, ==, 0);
  for (int k = 1; k <= c->steps; k++)
    g_assert_cmpfloat (train_log_loss_at (plain.log, k), ==, train_log_loss_at (fused.log, k));
  assert_norms_agree (&plain, &fused, c->steps);
  train_test_assert_same_tensors (plain.state, fused.state);
  run_clear (&plain);
  run_clear (&fused);
  dl_test_remove_tree (tmp);
}

/* The first `n` bytes of the trained tensors (param.*) that differ between two state files. */
static guint
params_differing (const char *a, const char *b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) fa = dl_safetensors_open (a, &error);
  g_autoptr (DlSafetensors) fb = dl_safetensors_open (b, &error);
  g_assert_no_error (error);
  guint n = 0;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (fa); i++)
    {
      const DlStTensor *ta = dl_safetensors_get_tensor (fa, i);
      if (!g_str_has_prefix (ta->name, "param."))
        continue;
      const DlStTensor *tb = dl_safetensors_find (fb, ta->name);
      g_assert_nonnull (tb);
      g_assert_cmpuint (ta->nbytes, ==, tb->nbytes);
      n += memcmp (ta->data, tb->data, ta->nbytes) != 0;
    }
  return n;
}

/* With many tensors and clipping that bites, each tensor is clipped by its own
 * norm: the runs part after the first step, whose norm before clipping agrees. */
static void
test_clipping_per_tensor (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-fused-clip-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  /* AdamW's first step hardly depends on the gradient's scale: two steps */
  const char *const opts[] = { "rank=4", "lr=1e-3", "max-grad-norm=1e-3", NULL };
  Run plain = { 0 }, fused = { 0 };
  run_steps (tmp, "clip", DL_TRAIN_LORA, model, images, opts, FALSE, 2, &plain);
  run_steps (tmp, "clip", DL_TRAIN_LORA, model, images, opts, TRUE, 2, &fused);
  double na = g_array_index (plain.log->grad_norm, double, 0), nb = g_array_index (fused.log->grad_norm, double, 0);
  g_test_message ("step 1 gradient norm %.9g plain, %.9g fused (clipped to 1e-3)", na, nb);
  g_assert_cmpfloat (na, >, 1e-2);
  g_assert_cmpfloat (fabs (na - nb), <=, 1e-5 * na);
  guint differ = params_differing (plain.state, fused.state);
  g_test_message ("%u trained tensors differ after 2 steps", differ);
  g_assert_cmpuint (differ, >, 0);
  run_clear (&plain);
  run_clear (&fused);
  dl_test_remove_tree (tmp);
}

static gboolean
warned (TrainLog *log, const char *a, const char *b)
{
  for (guint i = 0; i < log->warnings->len; i++)
    if (strstr (log->warnings->pdata[i], a) && strstr (log->warnings->pdata[i], b))
      return TRUE;
  return FALSE;
}

/* A poisoned step: no tensor changes (each one's gradient is NaN), the step
 * count of each stays, and the warning says what happened. */
static void
test_non_finite (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-fused-nan-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  const char *const opts[] = { "rank=4", "lr=1e-3", "lr-scheduler=constant", NULL };
  Run one = { 0 }, poisoned = { 0 };
  run_steps (tmp, "one", DL_TRAIN_LORA, model, images, opts, TRUE, 1, &one);
  g_setenv ("DREAMLOOM_TEST_INJECT_NAN", "2", TRUE);
  run_steps (tmp, "poisoned", DL_TRAIN_LORA, model, images, opts, TRUE, 2, &poisoned);
  g_unsetenv ("DREAMLOOM_TEST_INJECT_NAN");
  g_assert_cmpuint (poisoned.log->warnings->len, ==, 1);
  g_assert_true (warned (poisoned.log, "step 2: the gradient is not finite (lora_", "weight)"));
  g_assert_true (warned (poisoned.log, "step 2:", "fused backward pass left"));
  g_assert_true (warned (poisoned.log, "step 2:", "as they were and updated 0"));
  /* the tensors, moments and step counts after the poisoned step: those of step 1 */
  train_test_assert_same_tensors (one.state, poisoned.state);
  run_clear (&one);
  run_clear (&poisoned);
  dl_test_remove_tree (tmp);
}

static void
test_refuses_grad_accum (void)
{
  g_autoptr (GError) error = NULL;
  const char *const opts[] = { "fused-backward-pass", "grad-accum=2", NULL };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, "m", "i", "o.safetensors", opts);
  g_assert_false (dl_train_settings_validate (s, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "--grad-accum: "));
  g_assert_nonnull (strstr (error->message, "--fused-backward-pass"));
}

/* The memory plan of a full SDXL fine-tune at 1024² (the shapes of SDXL base
 * 1.0, no file read): the fused pass takes the gradients (4 bytes a trained
 * parameter) out and brings the 24 GB recipe under 24 GiB. */
static void
test_plan_sdxl (void)
{
  g_autoptr (GError) error = NULL;
  const char *const opts[] = { "resolution=1024", "fp16", "checkpointing", "optimizer=adamw8bit", NULL };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, "sdxl", "i", "o.safetensors", opts);
  DlModelConfig cfg;
  dl_model_config_init_sdxl (&cfg);
  g_autoptr (DlTrainPlan) plan = dl_train_plan_new_for_config (dl_test_device (), s, &cfg);
  DlTrainPlanFigures plain, fused;
  g_assert_true (dl_train_plan_compute (plan, s, &plain));
  g_assert_true (dl_train_settings_set (s, "fused-backward-pass", NULL, &error));
  g_assert_true (dl_train_plan_compute (plan, s, &fused));
  const double gib = 1024.0 * 1024 * 1024;
  g_test_message ("SDXL DreamBooth 1024², f16, checkpointing, 8-bit AdamW: %.2f M trained; trained %.2f -> %.2f GiB, "
                  "activations %.2f -> %.2f GiB, total %.2f -> %.2f GiB",
                  plain.trained_params / 1e6, plain.trained / gib, fused.trained / gib, plain.activations / gib,
                  fused.activations / gib, plain.total / gib, fused.total / gib);
  g_assert_cmpint (plain.trained_params, ==, fused.trained_params);
  g_assert_cmpuint (plain.trained - fused.trained, ==, (guint64)(4 * plain.trained_params));
  g_assert_cmpuint (fused.activations, >, plain.activations); /* the gradients in flight */
  g_assert_cmpfloat (plain.total / gib, >, 24.0);
  g_assert_cmpfloat (fused.total / gib, <, 24.0);
  /* the images are encoded by SDXL's f32 VAE (whose mid block's attention
   * holds 2.2 GiB at 1024²) */
  g_assert_cmpuint (fused.encode, ==, dl_vae_encode_activation_bytes (&cfg.vae, 1, 1024, 1024, DL_DTYPE_F32));
  g_test_message ("encoding a 1024² image: %.2f GiB", fused.encode / gib);
  /* its working memory, and the encoders, are given back before the trained
   * tensors are made: the peak is the step's */
  g_test_message ("peaks: encoding %.2f GiB, training %.2f GiB", fused.peak_encoding / gib, fused.peak_training / gib);
  g_assert_cmpuint (fused.total, ==, fused.peak_training);
  g_assert_cmpfloat (fused.peak_encoding / gib, <, 10.0);
  /* a CPU device's budget is the host's free memory, and the plan says so */
  gboolean host = !fused.budget_from_driver && !dl_device_get_memory_limit (dl_test_device ()) &&
                  dl_device_get_info (dl_test_device ())->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  g_assert_cmpint (fused.budget_is_host, ==, host);
  g_autofree char *described = dl_train_plan_describe (plan);
  g_assert_cmpint (strstr (described, "the host's free memory") != NULL, ==, host);
  /* both text encoders wait in host memory (1.6 GiB in f16) unless they train
   * or tag shuffling makes new prompts every step */
  g_test_message ("text encoders in host memory: %.2f GiB", fused.text_encoders_on_host / gib);
  g_assert_cmpfloat (fused.text_encoders_on_host / gib, >, 1.5);
  g_assert_cmpfloat (fused.text_encoders_on_host / gib, <, 1.7);
  const char *const keep[] = { "shuffle-tags", "train-text-encoder" };
  for (guint i = 0; i < G_N_ELEMENTS (keep); i++)
    {
      g_autoptr (DlTrainSettings) k = dl_train_settings_copy (s);
      g_assert_true (dl_train_settings_set (k, keep[i], NULL, &error));
      DlTrainPlanFigures f;
      g_assert_true (dl_train_plan_compute (plan, k, &f));
      g_assert_cmpuint (f.text_encoders_on_host, ==, 0);
      g_assert_cmpuint (f.weights, ==, fused.weights + fused.text_encoders_on_host);
    }
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/train/fused/same-run/%s", cases[i].tag);
      dl_test_add_data (path, &cases[i], test_same_run);
    }
  dl_test_add ("/train/fused/clipping-per-tensor", test_clipping_per_tensor);
  dl_test_add ("/train/fused/non-finite", test_non_finite);
  dl_test_add ("/train/fused/refuses-grad-accum", test_refuses_grad_accum);
  dl_test_add ("/train/fused/plan-sdxl", test_plan_sdxl);
  return dl_test_run ();
}
