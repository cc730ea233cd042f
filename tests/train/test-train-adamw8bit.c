/* test-train-adamw8bit.c: --optimizer adamw8bit in whole DreamBooth runs on
 * the golden tiny model (no prior preservation, fixed seed), and in a LoRA's
 * (the option is every method's):
 *  - the loss curve and the final validation loss against the same run with
 *    fp32 AdamW.  The bound comes from the quantisation error of the 8-bit
 *    moments (dl-op-adamw8bit.h; tests/ops/test-adamw8bit.c checks the maps):
 *    an element's first moment within 0.1-1 of its block's absmax is stored
 *    to at most 4.5/64 = 7% relative error, its second moment to 2.25/64 = 3.5%
 *    (1.8% on the square root), so each update m/(sqrt(v) + eps) is off by at
 *    most ~9% (smaller elements, with larger relative errors, move their
 *    weights less).  The weights' change from the start then differs from
 *    fp32's by at most ~9% of it, and the loss, to first order, by at most ~9%
 *    of what training changed it by: we allow 10% of the fp32 run's
 *    validation-loss drop, for every step's loss (relative to the drop's
 *    relative size) and for the final validation loss.  Measured on lavapipe
 *    over 12 steps: 4.7e-5 relative at worst (step losses) and 7.3e-7
 *    (validation), against a bound of 2.3e-2 (the drop is 23%); 8-bit must differ from fp32
 *    somewhere (the option is in effect), and the run must learn (validation
 *    loss down by 10% or more) for the comparison to mean anything;
 *  - the state file keeps the 8-bit moments (adam8_m/_v codes and absmax for
 *    every tensor of 4096 elements or more, fp32 moments for the smaller ones,
 *    as bitsandbytes' min_8bit_size): a run stopped through a GCancellable in
 *    its step event and resumed with dl_trainer_new_resume ends with the same
 *    masters, moments and losses, bit for bit, as the run that never stopped.
 * Under $DREAMLOOM_TEST_QUICK (the sanitizer build) the 12-step curves are
 * skipped; the resume check runs. */
#include "train-test-util.h"

#include <math.h>
#include <string.h>

#include "io/dl-safetensors.h"

#define CURVE_STEPS 12
#define CURVE_BOUND 0.1 /* of the fp32 run's validation-loss drop: see above */

static void
run_to_end (DlTrainSettings *s, TrainLog *log)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  g_assert_true (train_test_run (t, log, &error));
  g_assert_no_error (error);
}

/* The optimizer state of `path`: tensors (and their elements) with 8-bit
 * moments and with fp32 ones; fp32 moments of tensors of 4096 elements or
 * more (which an 8-bit run must not have). */
typedef struct
{
  guint eightbit, fp32, large_fp32;
  gint64 eightbit_numel, fp32_numel;
} Moments;

static Moments
count_moments (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  Moments m = { 0 };
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      if (g_str_has_prefix (t->name, "adam8_m."))
        {
          g_assert_cmpint (t->dtype, ==, DL_ST_U8);
          g_assert_cmpint (t->numel, >=, 4096);
          m.eightbit++;
          m.eightbit_numel += t->numel;
          g_autofree char *absmax = g_strconcat ("adam8_v_absmax.", t->name + 8, NULL);
          g_assert_nonnull (dl_safetensors_find (st, absmax));
        }
      else if (g_str_has_prefix (t->name, "adam_m."))
        {
          m.fp32++;
          m.fp32_numel += t->numel;
          m.large_fp32 += t->numel >= 4096;
        }
    }
  return m;
}

static void
test_curve (void)
{
  if (g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      g_test_skip ("DREAMLOOM_TEST_QUICK: the 12-step curves run in the plain build");
      return;
    }
  g_autofree char *tmp = train_test_make_tmp ("dl-8bit-curve-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  /* lr 2e-4 (DreamBooth's 5e-6 hardly moves the tiny model in 12 steps);
   * validation before the first step and after the last */
  g_autofree char *steps = g_strdup_printf ("steps=%d", CURVE_STEPS);
  g_autofree char *every = g_strdup_printf ("validate-every=%d", CURVE_STEPS);
  const char *const fp32_opts[] = { steps, every, "lr=2e-4", "seed=7", "save-dtype=f32", NULL };
  const char *const q_opts[] = { steps, every, "lr=2e-4", "seed=7", "save-dtype=f32", "optimizer=adamw8bit", NULL };
  g_autofree char *out32 = g_build_filename (tmp, "fp32.safetensors", NULL);
  g_autofree char *out8 = g_build_filename (tmp, "8bit.safetensors", NULL);
  g_autoptr (TrainLog) l32 = train_log_new ();
  g_autoptr (TrainLog) l8 = train_log_new ();
  g_autoptr (DlTrainSettings) s32 = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out32, fp32_opts);
  g_autoptr (DlTrainSettings) s8 = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out8, q_opts);
  g_assert_false (s32->adamw8bit);
  g_assert_true (s8->adamw8bit);
  run_to_end (s32, l32);
  double t32 = (g_get_monotonic_time () - t0) / 1e6;
  run_to_end (s8, l8);
  g_test_message ("fp32 run %.1f s, 8-bit run %.1f s", t32, (g_get_monotonic_time () - t0) / 1e6 - t32);

  g_assert_cmpuint (l32->loss->len, ==, CURVE_STEPS);
  g_assert_cmpuint (l8->loss->len, ==, CURVE_STEPS);
  g_assert_cmpuint (l32->val->len, ==, 2);
  g_assert_cmpuint (l8->val->len, ==, 2);
  double v0 = g_array_index (l32->val, double, 0), v32 = g_array_index (l32->val, double, 1);
  double v8 = g_array_index (l8->val, double, 1);
  g_assert_cmpfloat (g_array_index (l8->val, double, 0), ==, v0); /* the same start */
  double drop = v0 - v32;
  double max_dev = 0;
  gint64 worst = 0;
  gboolean any_differs = FALSE;
  for (guint k = 0; k < CURVE_STEPS; k++)
    {
      double a = g_array_index (l32->loss, double, k), b = g_array_index (l8->loss, double, k);
      double dev = fabs (b - a) / a;
      any_differs |= a != b;
      if (dev > max_dev)
        {
          max_dev = dev;
          worst = k + 1;
        }
    }
  double curve_bound = CURVE_BOUND * drop / v0;
  g_test_message ("%d steps at lr 2e-4: validation loss %.6f -> fp32 %.6f, 8-bit %.6f (%+.2e relative); "
                  "step losses: max relative deviation %.3e at step %" G_GINT64_FORMAT " (bound %.3e = %.0f%% of the "
                  "relative drop %.3f)",
                  CURVE_STEPS, v0, v32, v8, (v8 - v32) / v32, max_dev, worst, curve_bound, 100 * CURVE_BOUND,
                  drop / v0);
  g_assert_cmpfloat (drop, >, 0.1 * v0); /* the run learns */
  g_assert_true (any_differs);           /* 8-bit moments are in effect */
  g_assert_cmpfloat (max_dev, <=, curve_bound);
  g_assert_cmpfloat (fabs (v8 - v32), <=, CURVE_BOUND * drop);

  /* the states: fp32 moments only / 8-bit ones for every large tensor */
  g_autofree char *st32 = g_strdup_printf ("%s/fp32.run/state-%08d.safetensors", tmp, CURVE_STEPS);
  g_autofree char *st8 = g_strdup_printf ("%s/8bit.run/state-%08d.safetensors", tmp, CURVE_STEPS);
  Moments m32 = count_moments (st32), m8 = count_moments (st8);
  g_assert_cmpuint (m32.eightbit, ==, 0);
  g_assert_cmpuint (m32.fp32, ==, 684);
  g_test_message ("8-bit run's state: %u tensors (%" G_GINT64_FORMAT
                  " elements) with 8-bit moments, %u (%" G_GINT64_FORMAT
                  " elements, each tensor under 4096) with fp32 ones",
                  m8.eightbit, m8.eightbit_numel, m8.fp32, m8.fp32_numel);
  g_assert_cmpuint (m8.eightbit + m8.fp32, ==, 684);
  g_assert_cmpuint (m8.large_fp32, ==, 0);
  g_assert_cmpint (m8.eightbit_numel, >, 9 * m8.fp32_numel); /* most of the UNet */
  g_test_message ("curves: %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

static void
test_resume (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-8bit-resume-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  /* 6 steps, checkpoints at 2, 4, 6; the stopped run stops after step 3 and
   * so goes back to 2 */
  const char *const opts[] = { "steps=6", "save-every=2", "lr=1e-4", "optimizer=adamw8bit", "save-dtype=f32", NULL };
  g_autofree char *out_a = g_build_filename (tmp, "a.safetensors", NULL);
  g_autofree char *out_b = g_build_filename (tmp, "b.safetensors", NULL);
  g_autofree char *run_b = g_build_filename (tmp, "b.run", NULL);
  g_autoptr (DlTrainSettings) sa = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out_a, opts);
  g_autoptr (DlTrainSettings) sb = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out_b, opts);
  g_autoptr (TrainLog) la = train_log_new ();
  run_to_end (sa, la);

  g_autoptr (TrainLog) lb = train_log_new ();
  lb->cancel = g_cancellable_new ();
  lb->cancel_after = 3;
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, sb, &error);
    g_assert_no_error (error);
    g_assert_false (train_test_run (t, lb, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
  }
  g_assert_cmpuint (lb->steps->len, ==, 3);
  g_autofree char *state2 = g_build_filename (run_b, "state-00000002.safetensors", NULL);
  g_assert_true (g_file_test (state2, G_FILE_TEST_EXISTS));
  Moments m2 = count_moments (state2);
  g_assert_cmpuint (m2.eightbit, >, 100);
  g_assert_cmpuint (m2.large_fp32, ==, 0);

  g_autoptr (TrainLog) lr = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new_resume (dl_test_device (), NULL, run_b, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (dl_trainer_get_settings (t)->adamw8bit);
    g_assert_true (train_test_run (t, lr, &error));
    g_assert_no_error (error);
  }
  /* steps 3..6 again, each with the loss the uninterrupted run had */
  g_assert_cmpuint (lr->steps->len, ==, 4);
  g_assert_cmpint (g_array_index (lr->steps, gint64, 0), ==, 3);
  for (guint i = 0; i < lr->steps->len; i++)
    {
      gint64 step = g_array_index (lr->steps, gint64, i);
      g_assert_cmpfloat (g_array_index (lr->loss, double, i), ==, train_log_loss_at (la, step));
    }
  /* the final masters (written in f32) and the final states (masters, codes,
   * absmax, fp32 moments, step counts) the same, byte for byte */
  train_test_assert_same_tensors (out_a, out_b);
  g_autofree char *final_a = g_build_filename (tmp, "a.run", "state-00000006.safetensors", NULL);
  g_autofree char *final_b = g_build_filename (run_b, "state-00000006.safetensors", NULL);
  train_test_assert_same_tensors (final_a, final_b);
  g_test_message ("resume: %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

/* --optimizer adamw8bit is every method's: a LoRA's tensors of 4096 elements
 * or more (rank 128 on the tiny model) keep 8-bit moments too */
static void
test_lora (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-8bit-lora-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  g_autoptr (GError) error = NULL;
  const char *const opts[] = { "steps=1", "rank=128", "alpha=128", "optimizer=adamw8bit", NULL };
  g_autofree char *out = g_build_filename (tmp, "l.safetensors", NULL);
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_LORA, model, images, out, opts);
  g_autoptr (TrainLog) log = train_log_new ();
  run_to_end (s, log);
  g_autofree char *state = g_build_filename (tmp, "l.run", "state-00000001.safetensors", NULL);
  Moments m = count_moments (state);
  g_test_message ("LoRA rank 128: %u tensors with 8-bit moments (%" G_GINT64_FORMAT " elements), %u with f32",
                  m.eightbit, m.eightbit_numel, m.fp32);
  g_assert_cmpuint (m.eightbit, >, 0);
  g_assert_cmpuint (m.large_fp32, ==, 0);
  dl_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/train/adamw8bit/curve", test_curve);
  dl_test_add ("/train/adamw8bit/resume", test_resume);
  dl_test_add ("/train/adamw8bit/lora", test_lora);
  return dl_test_run ();
}
