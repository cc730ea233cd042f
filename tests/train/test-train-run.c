/* test-train-run.c: whole runs of the trainer on the golden tiny model —
 * stopping and resuming (bit for bit), what resuming refuses, non-finite steps
 * and the rollback, and the files a run writes (exports read back by our own
 * readers, checkpoints with rotation, run.json).  Non-finite steps are made
 * with $DREAMLOOM_TEST_INJECT_NAN=STEP or A-B (dl-trainer.c: those steps'
 * gradients become NaN, each step once). */
#include "train-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "io/dl-safetensors.h"
#include "nn/dl-embedding-file.h"
#include "nn/dl-lora-file.h"
#include "train/dl-run-info.h"

#define TI_PLACEHOLDER "<dl-test>"

static gboolean
has_file (const char *dir, const char *name)
{
  g_autofree char *p = g_build_filename (dir, name, NULL);
  return g_file_test (p, G_FILE_TEST_EXISTS);
}

/* Change one weight of the model copy's UNet: the file stays a valid model,
 * with other weights. */
static void
edit_model (const char *model)
{
  g_autofree char *path = g_build_filename (model, "unet", "diffusion_pytorch_model.safetensors", NULL);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &data, &len, &error));
  float v;
  memcpy (&v, data + len - 4, 4);
  v = v * 0.5f + 0.25f;
  memcpy (data + len - 4, &v, 4);
  g_assert_true (g_file_set_contents (path, data, (gssize)len, &error));
  g_assert_no_error (error);
}

/* ---- stop, resume, compare with the run that never stopped ---- */

static void
test_resume (gconstpointer data)
{
  DlTrainMethod method = GPOINTER_TO_INT (data);
  gboolean lora = method == DL_TRAIN_LORA;
  if (!lora && g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      g_test_skip ("DREAMLOOM_TEST_QUICK: the Textual Inversion resume runs in the plain build (the LoRA one takes "
                   "the same saving and resuming code through the sanitizers)");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-train-resume-XXXXXX");
  g_autofree char *model = train_test_copy_model (tmp);
  g_autofree char *images = train_test_images_or_skip (tmp, 2, model != NULL, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  /* 5 steps, checkpoints at 2 and 4; the stopped run stops after step 3 and
   * so goes back to 2 and does step 3 again */
  const char *const lora_opts[] = { "steps=5", "save-every=2", "rank=4", "alpha=4", "lr=1e-3", "save-dtype=f32", NULL };
  const char *const ti_opts[] = { "steps=5",       "save-every=2", "placeholder=" TI_PLACEHOLDER,
                                  "init-text=dog", "lr=5e-3",      NULL };
  const char *const *opts = lora ? lora_opts : ti_opts;
  g_autofree char *out_a = g_build_filename (tmp, "a.safetensors", NULL);
  /* TI: the stopped run writes the A1111 .pt and diffusers' form, so the three
   * forms are compared too */
  g_autofree char *out_b = g_build_filename (tmp, lora ? "b.safetensors" : "b.pt", NULL);
  g_autofree char *out_b_diffusers = g_build_filename (tmp, "b-diffusers.safetensors", NULL);
  g_autofree char *run_b = g_build_filename (tmp, "b.run", NULL);

  g_autoptr (DlTrainSettings) sa = train_test_settings (method, model, images, out_a, opts);
  g_autoptr (TrainLog) la = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, sa, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, la, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (la->steps->len, ==, 5);

  /* the same run, cancelled from the event of step 3 */
  g_autoptr (DlTrainSettings) sb = train_test_settings (method, model, images, out_b, opts);
  if (!lora)
    g_assert_true (dl_train_settings_set (sb, "out-diffusers", out_b_diffusers, &error));
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
  g_assert_true (has_file (run_b, "state-00000002.safetensors"));
  g_assert_false (has_file (run_b, "state-00000003.safetensors"));
  g_assert_false (has_file (run_b, "state-00000000.safetensors"));
  g_assert_false (g_file_test (out_b, G_FILE_TEST_EXISTS));
  {
    /* what the window offers to continue */
    g_autoptr (DlRunInfo) info = dl_run_info_read (run_b, &error);
    g_assert_no_error (error);
    g_assert_false (info->finished);
    g_assert_true (dl_run_info_can_continue (info));
    g_assert_cmpint (info->step, ==, 2);
    /* the loss curve up to that checkpoint, as the steps reported it */
    g_assert_cmpuint (info->losses->len, ==, 2);
    for (guint i = 0; i < 2; i++)
      {
        const DlLossEntry *e = &g_array_index (info->losses, DlLossEntry, i);
        g_assert_cmpint (e->step, ==, i + 1);
        g_assert_cmpfloat (e->loss, ==, train_log_loss_at (la, i + 1));
        g_assert_cmpfloat (e->lr, ==, g_array_index (la->lr, double, i));
      }
  }

  /* options given again must agree; the one that does not is named */
  {
    g_autoptr (DlTrainSettings) given = dl_train_settings_new (method);
    g_assert_true (dl_train_settings_set (given, "lr", "0.125", &error));
    const char *const names[] = { "lr", NULL };
    g_autoptr (DlTrainer) t = dl_trainer_new_resume (dl_test_device (), NULL, run_b, given, names, &error);
    g_assert_null (t);
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
    g_test_message ("resume with another --lr: %s", error->message);
    g_assert_nonnull (strstr (error->message, "--lr"));
    g_assert_nonnull (strstr (error->message, "0.125"));
    g_clear_error (&error);
    g_assert_true (dl_train_settings_set (given, "lr", lora ? "1e-3" : "5e-3", &error));
    g_autoptr (DlTrainer) same = dl_trainer_new_resume (dl_test_device (), NULL, run_b, given, names, &error);
    g_assert_no_error (error);
    g_assert_nonnull (same);
  }
  /* a new run never writes over another's checkpoints */
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, sb, &error);
    g_assert_no_error (error);
    g_assert_false (dl_trainer_prepare (t, NULL, &error));
    g_assert_nonnull (error);
    g_test_message ("a new run into the folder of another: %s", error->message);
    g_assert_nonnull (strstr (error->message, "already holds a run"));
    g_clear_error (&error);
    g_assert_true (has_file (run_b, "state-00000002.safetensors"));
    g_assert_false (has_file (run_b, "state-00000000.safetensors"));
  }

  g_autoptr (TrainLog) lr = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new_resume (dl_test_device (), NULL, run_b, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, lr, &error));
    g_assert_no_error (error);
  }
  /* it went on from the checkpoint of step 2: steps 3, 4, 5 with the losses of
   * the run that never stopped, to the last bit */
  g_assert_cmpuint (lr->steps->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      gint64 step = g_array_index (lr->steps, gint64, i);
      g_assert_cmpint (step, ==, 3 + i);
      double got = g_array_index (lr->loss, double, i), want = train_log_loss_at (la, step);
      g_test_message ("step %" G_GINT64_FORMAT ": loss resumed %.9g, straight through %.9g", step, got, want);
      g_assert_true (memcmp (&got, &want, sizeof got) == 0);
      g_assert_cmpfloat (g_array_index (lr->lr, double, i), ==, g_array_index (la->lr, double, step - 1));
    }
  /* the step redone after the stop has the loss it had before the stop */
  g_assert_cmpfloat (train_log_loss_at (lb, 3), ==, train_log_loss_at (la, 3));
  /* and the run folder's loss log is the uninterrupted run's, line for line */
  {
    g_autofree char *csv_a = g_build_filename (tmp, "a.run", DL_LOSS_LOG_NAME, NULL);
    g_autofree char *csv_b = g_build_filename (run_b, DL_LOSS_LOG_NAME, NULL);
    g_autofree char *text_a = NULL, *text_b = NULL;
    g_assert_true (g_file_get_contents (csv_a, &text_a, NULL, NULL));
    g_assert_true (g_file_get_contents (csv_b, &text_b, NULL, NULL));
    g_assert_cmpstr (text_b, ==, text_a);
    g_autoptr (GArray) log_a = dl_loss_log_read (run_b, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (log_a->len, ==, 5);
    for (guint i = 0; i < 5; i++)
      g_assert_cmpfloat (g_array_index (log_a, DlLossEntry, i).loss, ==, train_log_loss_at (la, i + 1));
  }

  if (lora)
    {
      train_test_assert_same_tensors (out_a, out_b);
    }
  else
    {
      /* emb_params (a), A1111 .pt (b) and diffusers' form (b): the same vectors */
      g_autoptr (DlSafetensors) fa = dl_safetensors_open (out_a, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (dl_safetensors_get_n_tensors (fa), ==, 1);
      const DlStTensor *emb = dl_safetensors_find (fa, "emb_params");
      g_assert_nonnull (emb);
      g_assert_cmpint (emb->dtype, ==, DL_ST_F32);
      g_assert_cmpint (emb->ndim, ==, 2);
      g_assert_cmpint (emb->shape[0], ==, 1);
      g_assert_cmpint (emb->shape[1], ==, 32);
      /* kohya's embedding metadata: the model spec */
      g_assert_cmpstr (dl_safetensors_get_metadata (fa, "modelspec.sai_model_spec"), ==, "1.0.1");
      g_assert_cmpstr (dl_safetensors_get_metadata (fa, "modelspec.architecture"), ==,
                       "stable-diffusion-v1/textual-inversion");
      g_assert_cmpstr (dl_safetensors_get_metadata (fa, "modelspec.trigger_phrase"), ==, TI_PLACEHOLDER);
      g_assert_cmpstr (dl_safetensors_get_metadata (fa, "modelspec.resolution"), ==, "32x32");

      g_autoptr (DlEmbedding) pt = dl_embedding_read (out_b, 32, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (pt->name, ==, "b");
      g_assert_cmpstr (pt->stored_name, ==, "b");
      g_assert_cmpint (pt->step, ==, 5);
      g_assert_cmpint (pt->n_vectors, ==, 1);
      g_assert_cmpint (pt->dim, ==, 32);
      g_assert_nonnull (pt->sd_checkpoint);
      g_assert_true (memcmp (pt->vectors, emb->data, emb->nbytes) == 0);

      g_autoptr (DlEmbedding) dif = dl_embedding_read (out_b_diffusers, 32, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (dif->key, ==, TI_PLACEHOLDER);
      g_assert_cmpint (dif->n_vectors, ==, 1);
      g_assert_true (memcmp (dif->vectors, emb->data, emb->nbytes) == 0);
      /* and the vectors did train since step 2 */
      gboolean moved = FALSE;
      const float *v = (const float *)emb->data;
      g_autofree char *ck = g_build_filename (run_b, "b-step000002.pt", NULL);
      g_autoptr (DlEmbedding) at2 = dl_embedding_read (ck, 32, &error);
      g_assert_no_error (error);
      g_assert_cmpint (at2->step, ==, 2);
      for (int k = 0; k < 32; k++)
        moved |= at2->vectors[k] != v[k];
      g_assert_true (moved);
    }

  /* resuming refuses a folder that is not a run */
  {
    g_autoptr (DlTrainer) t = dl_trainer_new_resume (dl_test_device (), NULL, images, NULL, NULL, &error);
    g_assert_null (t);
    g_assert_nonnull (error);
    g_test_message ("resume a folder of images: %s", error->message);
    g_assert_nonnull (strstr (error->message, "not a run folder"));
    g_clear_error (&error);
    g_autofree char *fake = g_build_filename (tmp, "fake.run", NULL);
    g_autofree char *fake_json = g_build_filename (fake, "run.json", NULL);
    g_assert_cmpint (g_mkdir (fake, 0755), ==, 0);
    g_assert_true (g_file_set_contents (fake_json, "{\"format\": \"something else\"}", -1, &error));
    t = dl_trainer_new_resume (dl_test_device (), NULL, fake, NULL, NULL, &error);
    g_assert_null (t);
    g_assert_nonnull (error);
    g_test_message ("resume a folder with another run.json: %s", error->message);
    g_assert_nonnull (strstr (error->message, "not a Dreamloom run"));
    g_clear_error (&error);
  }
  /* ... and a run whose base model changed since */
  edit_model (model);
  {
    g_autoptr (TrainLog) lx = train_log_new ();
    g_autoptr (DlTrainer) t = dl_trainer_new_resume (dl_test_device (), NULL, run_b, NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_false (train_test_run (t, lx, &error));
    g_assert_nonnull (error);
    g_test_message ("resume onto an edited model: %s", error->message);
    g_assert_nonnull (strstr (error->message, "another base model"));
    g_clear_error (&error);
    g_assert_cmpuint (lx->steps->len, ==, 0);
  }
  g_test_message ("%s: resume test took %.1f s", dl_train_method_name (method), (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

/* ---- non-finite steps ---- */

static gboolean
warned (TrainLog *log, const char *a, const char *b)
{
  for (guint i = 0; i < log->warnings->len; i++)
    {
      const char *w = log->warnings->pdata[i];
      if (strstr (w, a) && (!b || strstr (w, b)))
        return TRUE;
    }
  return FALSE;
}

static guint
count_warnings (TrainLog *log, const char *a)
{
  guint n = 0;
  for (guint i = 0; i < log->warnings->len; i++)
    n += strstr (log->warnings->pdata[i], a) != NULL;
  return n;
}

static void
test_non_finite (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-train-nan-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  const char *const opts[] = { "rank=4",         "alpha=4", "no-text-encoder", "lr=1e-3", "lr-scheduler=constant",
                               "save-dtype=f32", "steps=7", "save-every=2",    NULL };

  /* one poisoned step: not applied, and named with a tensor */
  {
    g_autofree char *out = g_build_filename (tmp, "one.safetensors", NULL);
    g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_LORA, model, images, out, opts);
    g_setenv ("DREAMLOOM_TEST_INJECT_NAN", "2", TRUE);
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
    g_unsetenv ("DREAMLOOM_TEST_INJECT_NAN");
    g_assert_no_error (error);
    g_autoptr (TrainLog) log = train_log_new ();
    train_test_attach (t, log);
    g_assert_true (dl_trainer_prepare (t, NULL, &error));
    g_assert_no_error (error);
    char *after[4] = { NULL };
    for (int k = 1; k <= 3; k++)
      {
        g_assert_true (dl_trainer_step (t, &error));
        g_assert_no_error (error);
        g_assert_cmpint (dl_trainer_get_step (t), ==, k);
        after[k] = g_strdup_printf ("%s/after-%d.safetensors", tmp, k);
        g_assert_true (dl_trainer_export (t, after[k], &error));
        g_assert_no_error (error);
        g_assert_true (train_test_all_finite (after[k]));
      }
    g_assert_cmpuint (log->warnings->len, ==, 1);
    g_assert_true (warned (log, "step 2:", "lora_unet_"));
    g_assert_true (warned (log, "step 2:", "not applied"));
    train_test_assert_same_tensors (after[1], after[2]);
    g_test_message ("step 3 changes the tensors again:");
    g_autoptr (DlSafetensors) f2 = dl_safetensors_open (after[2], &error);
    g_autoptr (DlSafetensors) f3 = dl_safetensors_open (after[3], &error);
    g_assert_no_error (error);
    guint changed = 0;
    for (guint i = 0; i < dl_safetensors_get_n_tensors (f2); i++)
      {
        const DlStTensor *a = dl_safetensors_get_tensor (f2, i), *b = dl_safetensors_find (f3, a->name);
        changed += memcmp (a->data, b->data, a->nbytes) != 0;
      }
    g_assert_cmpuint (changed, >, 0);
    /* the step events went on: 1, 2 (skipped), 3 */
    g_assert_cmpuint (log->steps->len, ==, 3);
    for (int k = 1; k <= 3; k++)
      g_free (after[k]);
  }

  /* three in a row: back to the last saved state with half the rate; each
   * step is poisoned once, so the steps done again are clean */
  {
    g_autofree char *out = g_build_filename (tmp, "three.safetensors", NULL);
    g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_LORA, model, images, out, opts);
    g_setenv ("DREAMLOOM_TEST_INJECT_NAN", "3-5", TRUE);
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
    g_unsetenv ("DREAMLOOM_TEST_INJECT_NAN");
    g_assert_no_error (error);
    g_autoptr (TrainLog) log = train_log_new ();
    g_assert_true (train_test_run (t, log, &error));
    g_assert_no_error (error);
    for (int k = 3; k <= 5; k++)
      {
        g_autofree char *what = g_strdup_printf ("step %d: the gradient is not finite", k);
        g_assert_true (warned (log, what, "lora_unet_"));
      }
    g_assert_cmpuint (count_warnings (log, "not finite"), ==, 4);
    g_assert_cmpuint (count_warnings (log, "halved"), ==, 1);
    g_assert_true (warned (log, "rolled back to step 4", "halved"));
    /* step events: 1-4 at the set rate, the third poisoned step (5) none, then
     * 5, 6, 7 at half of it */
    const gint64 want_steps[] = { 1, 2, 3, 4, 5, 6, 7 };
    const double want_lr[] = { 1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4 };
    g_assert_cmpuint (log->steps->len, ==, G_N_ELEMENTS (want_steps));
    for (guint i = 0; i < G_N_ELEMENTS (want_steps); i++)
      {
        g_assert_cmpint (g_array_index (log->steps, gint64, i), ==, want_steps[i]);
        g_assert_cmpfloat_with_epsilon (g_array_index (log->lr, double, i), want_lr[i], 1e-12);
      }
    g_assert_cmpint (dl_trainer_get_step (t), ==, 7);
    g_assert_true (train_test_all_finite (out));
  }
  g_test_message ("non-finite test took %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

/* ---- the files of a run ---- */

static GHashTable *
module_names (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlLoraFile) f = dl_lora_file_open (path, &error);
  g_assert_no_error (error);
  GHashTable *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < dl_lora_file_get_n_modules (f); i++)
    g_hash_table_add (names, g_strdup (dl_lora_file_get_module (f, i)->file_name));
  return names;
}

static void
test_lora_files (void)
{
  if (g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      /* the sanitizer build: lora-export takes the metadata writer through the
       * sanitizers, the resume test the checkpoints */
      g_test_skip ("DREAMLOOM_TEST_QUICK: the LoRA files run in the plain build");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-train-files-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *golden_lora = dl_test_golden_path ("train/lora-init.safetensors");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model && golden_lora, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  /* every step a checkpoint and a validation; one kept besides the best */
  /* lr 0.1 overshoots: on lavapipe the best is step 3, older than the last */
  const char *const opts[] = { "rank=4",  "alpha=2",      "lr=0.1", "lr-scheduler=constant",
                               "steps=4", "save-every=1", "keep=1", "validate-every=1",
                               NULL };
  g_autofree char *out = g_build_filename (tmp, "mine.safetensors", NULL);
  g_autofree char *run = g_build_filename (tmp, "mine.run", NULL);
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_LORA, model, images, out, opts);
  g_autoptr (TrainLog) log = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, log, &error));
    g_assert_no_error (error);
  }

  /* the LoRA as our reader takes it: kohya's modules for this model (the
   * golden set of the same rule), rank, alpha, f16 by default */
  g_autoptr (DlLoraFile) f = dl_lora_file_open (out, &error);
  g_assert_no_error (error);
  g_autoptr (GHashTable) want = module_names (golden_lora);
  g_assert_cmpuint (dl_lora_file_get_n_modules (f), ==, g_hash_table_size (want));
  guint te = 0;
  for (guint i = 0; i < dl_lora_file_get_n_modules (f); i++)
    {
      const DlLoraModule *m = dl_lora_file_get_module (f, i);
      if (!g_hash_table_contains (want, m->file_name))
        g_test_message ("module %s is not one of kohya's", m->file_name);
      g_assert_true (g_hash_table_contains (want, m->file_name));
      te += g_str_has_prefix (m->file_name, "lora_te_");
      g_assert_cmpint (m->rank, ==, 4);
      g_assert_cmpfloat (m->alpha, ==, 2.0f);
      g_assert_cmpint (m->down->dtype, ==, DL_ST_F16);
      g_assert_cmpint (m->up->dtype, ==, DL_ST_F16);
    }
  g_assert_cmpuint (te, >, 0);
  DlSafetensors *st = dl_lora_file_get_safetensors (f);
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    g_assert_cmpint (dl_safetensors_get_tensor (st, i)->dtype, ==, DL_ST_F16);
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_network_module"), ==, "networks.lora");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_network_dim"), ==, "4");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_network_alpha"), ==, "2.0");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_steps"), ==, "4");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_output_name"), ==, "mine");
  g_assert_true (train_test_all_finite (out));

  /* checkpoints: the newest and the best (the lowest validation loss, first
   * reached) survive, with their states; run.json lists exactly those */
  gint64 best = -1;
  double best_val = INFINITY;
  for (guint i = 0; i < log->val->len; i++)
    if (g_array_index (log->val, double, i) < best_val)
      {
        best_val = g_array_index (log->val, double, i);
        best = g_array_index (log->val_steps, gint64, i);
      }
  g_assert_cmpuint (log->val->len, ==, 5); /* steps 0 to 4 */
  g_assert_cmpuint (log->checkpoints->len, ==, 4);
  g_test_message ("best validation loss %.6f at step %" G_GINT64_FORMAT, best_val, best);
  GArray *kept = g_array_new (FALSE, FALSE, sizeof (gint64));
  if (best > 0 && best < 4)
    g_array_append_val (kept, best);
  gint64 last = 4;
  g_array_append_val (kept, last);
  g_autoptr (GHashTable) files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_add (files, g_strdup ("run.json"));
  g_hash_table_add (files, g_strdup (DL_LOSS_LOG_NAME));
  for (guint i = 0; i < kept->len; i++)
    {
      gint64 k = g_array_index (kept, gint64, i);
      g_hash_table_add (files, g_strdup_printf ("state-%08" G_GINT64_FORMAT ".safetensors", k));
      g_hash_table_add (files, g_strdup_printf ("mine-step%06" G_GINT64_FORMAT ".safetensors", k));
    }
  g_autoptr (GDir) dir = g_dir_open (run, 0, &error);
  g_assert_no_error (error);
  const char *name;
  guint seen = 0;
  while ((name = g_dir_read_name (dir)))
    {
      if (!g_hash_table_contains (files, name))
        g_test_message ("%s: left in the run folder", name);
      g_assert_true (g_hash_table_contains (files, name));
      seen++;
    }
  g_assert_cmpuint (seen, ==, g_hash_table_size (files));

  g_autofree char *json_path = g_build_filename (run, "run.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, json_path, &error));
  g_assert_no_error (error);
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (root, "format"), ==, "dreamloom-run");
  g_assert_cmpint (json_object_get_int_member (root, "step"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (root, "best_step"), ==, best);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (root, "best_validation_loss"), best_val,
                                  1e-9 * best_val);
  JsonArray *cks = json_object_get_array_member (root, "checkpoints");
  g_assert_cmpuint (json_array_get_length (cks), ==, kept->len);
  for (guint i = 0; i < kept->len; i++)
    {
      JsonObject *c = json_array_get_object_element (cks, i);
      gint64 k = g_array_index (kept, gint64, i);
      g_assert_cmpint (json_object_get_int_member (c, "step"), ==, k);
      g_assert_true (json_object_get_boolean_member (c, "best") == (k == best));
      g_assert_true (g_file_test (json_object_get_string_member (c, "file"), G_FILE_TEST_IS_REGULAR));
      g_assert_true (g_file_test (json_object_get_string_member (c, "state"), G_FILE_TEST_IS_REGULAR));
    }
  /* the validation losses and the end, as the window reads them */
  g_assert_true (json_object_get_boolean_member (root, "finished"));
  g_autoptr (DlRunInfo) info = dl_run_info_read (run, &error);
  g_assert_no_error (error);
  g_assert_true (info->finished);
  g_assert_false (dl_run_info_can_continue (info));
  g_assert_cmpint (info->step, ==, 4);
  g_assert_cmpint (info->best_step, ==, best);
  g_assert_cmpuint (info->validations->len, ==, log->val->len);
  for (guint i = 0; i < log->val->len; i++)
    {
      const DlTrainValidation *v = &g_array_index (info->validations, DlTrainValidation, i);
      g_assert_cmpint (v->step, ==, g_array_index (log->val_steps, gint64, i));
      g_assert_cmpfloat (v->loss, ==, g_array_index (log->val, double, i));
    }
  g_assert_cmpuint (info->checkpoints->len, ==, kept->len);
  for (guint i = 0; i < kept->len; i++)
    {
      const DlRunCheckpoint *c = info->checkpoints->pdata[i];
      g_assert_cmpint (c->step, ==, g_array_index (kept, gint64, i));
      g_assert_true (c->best == (c->step == best));
      g_assert_true (isfinite (c->val_loss));
    }
  /* the last checkpoint is the final file */
  g_autofree char *ck4 = g_build_filename (run, "mine-step000004.safetensors", NULL);
  train_test_assert_same_tensors (out, ck4);
  g_array_unref (kept);
  g_test_message ("LoRA files test took %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

/* The device runs out of memory in the middle of a run: the run stops with an
 * error that says so, the last checkpoint is intact, and resuming finishes the
 * run exactly as one that never stopped. */
typedef struct
{
  gint64 at_step;
  guint64 limit;
} OomPlan;

static void
oom_event (const DlTrainEvent *ev, gpointer data)
{
  OomPlan *plan = data;
  /* after the checkpoint of step 2: nothing more than what is held now */
  if (ev->kind == DL_TRAIN_EVENT_CHECKPOINT && ev->step == plan->at_step)
    dl_device_set_memory_limit (dl_test_device (), dl_device_get_memory_in_use (dl_test_device ()) + 4096);
}

static void
test_out_of_memory (void)
{
  if (g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      g_test_skip ("DREAMLOOM_TEST_QUICK: runs in the plain build (its code paths are the resume test's)");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-train-oom-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 2, model != NULL, "no golden tiny model");
  if (!images)
    return;
  const char *const opts[] = { "steps=4", "save-every=2", "rank=4", "alpha=4", "lr=1e-3", "save-dtype=f32", NULL };
  g_autofree char *out_a = g_build_filename (tmp, "a.safetensors", NULL);
  g_autofree char *out_b = g_build_filename (tmp, "b.safetensors", NULL);
  g_autofree char *run_b = g_build_filename (tmp, "b.run", NULL);
  g_autofree char *state2 = g_build_filename (run_b, "state-00000002.safetensors", NULL);
  g_autoptr (DlTrainSettings) sa = train_test_settings (DL_TRAIN_LORA, model, images, out_a, opts);
  g_autoptr (TrainLog) la = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, sa, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, la, &error));
    g_assert_no_error (error);
  }
  g_autoptr (DlTrainSettings) sb = train_test_settings (DL_TRAIN_LORA, model, images, out_b, opts);
  OomPlan plan = { .at_step = 2 };
  g_autofree char *state2_bytes = NULL;
  gsize state2_len = 0;
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, sb, &error);
    g_assert_no_error (error);
    dl_trainer_set_event_func (t, oom_event, &plan, NULL);
    gboolean ok = dl_trainer_run (t, NULL, &error);
    dl_device_set_memory_limit (dl_test_device (), 0);
    g_assert_false (ok);
    g_assert_error (error, DL_ERROR, DL_ERROR_OUT_OF_DEVICE_MEMORY);
    g_test_message ("out of memory at step 3: %s", error->message);
    g_clear_error (&error);
  }
  g_assert_true (g_file_get_contents (state2, &state2_bytes, &state2_len, NULL));
  g_assert_false (g_file_test (out_b, G_FILE_TEST_EXISTS));
  {
    g_autoptr (DlTrainer) t = dl_trainer_new_resume (dl_test_device (), NULL, run_b, NULL, NULL, &error);
    g_assert_no_error (error);
    g_autoptr (TrainLog) lb = train_log_new ();
    g_assert_true (train_test_run (t, lb, &error));
    g_assert_no_error (error);
    g_assert_cmpfloat (train_log_loss_at (lb, 4), ==, train_log_loss_at (la, 4));
  }
  train_test_assert_same_tensors (out_a, out_b);
  dl_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add_data ("/train/run/resume/lora", GINT_TO_POINTER (DL_TRAIN_LORA), test_resume);
  dl_test_add_data ("/train/run/resume/textual-inversion", GINT_TO_POINTER (DL_TRAIN_TEXTUAL_INVERSION), test_resume);
  dl_test_add ("/train/run/non-finite", test_non_finite);
  dl_test_add ("/train/run/out-of-memory", test_out_of_memory);
  dl_test_add ("/train/run/files/lora", test_lora_files);
  return dl_test_run ();
}
