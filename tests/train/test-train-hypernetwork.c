/* test-train-hypernetwork.c: hypernetwork runs on the golden tiny model,
 * beyond the replay against PyTorch (test-train-replay.c):
 *  - from scratch (--hn-sizes 32, the tiny model's text and first levels'
 *    width, --hn-layers 1,2,1 --hn-activation relu) on the LDM single file: the
 *    .pt written reads back with every field A1111 saves (name = the file's
 *    stem, step, layer structure, activation, dropout, initialisation, the
 *    base model's short hash and name) and the trained tensors (= the final
 *    state's), which started from the seeded initialisation;
 *  - from --init-from golden train/hn-init.pt: its structure kept, its tensors
 *    trained, renamed after the file written (A1111's save_hypernetwork);
 *  - sizes no attention of the model has: a warning naming each, an error when
 *    none is left (and no run folder left behind);
 *  - an --init-from whose pickle calls os.system: refused with one line naming
 *    the option and the file, and nothing run.
 * `dreamloom sample --hypernetwork` with a trained file: tests/cli/test-cli.sh. */
#include "train-test-util.h"

#include <string.h>

#include "../io/torch-writer.h"
#include "io/dl-checkpoint.h"
#include "io/dl-safetensors.h"
#include "nn/dl-hypernetwork.h"

static DlHypernetwork *
read_hn (const char *path)
{
  g_autoptr (GError) error = NULL;
  DlHypernetwork *hn = dl_hypernetwork_read (dl_test_device (), path, &error);
  g_assert_no_error (error);
  return hn;
}

/* Every tensor of `hn` equals the final state's param.<name>; returns how
 * many differ from `start` (NULL: not compared). */
static guint
check_tensors (DlHypernetwork *hn, const char *state, DlHypernetwork *start)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (state, &error);
  g_assert_no_error (error);
  guint n = dl_hypernetwork_get_n_tensors (hn), changed = 0;
  g_assert_cmpuint (n, >, 0);
  for (guint i = 0; i < n; i++)
    {
      const char *name = NULL;
      DlTensor *t = dl_hypernetwork_get_tensor (hn, i, &name);
      g_autofree float *got = dl_test_download (t);
      g_autofree char *key = g_strconcat ("param.", name, NULL);
      int64_t numel = 0;
      g_autofree float *want = dl_safetensors_read_f32 (st, key, &numel, &error);
      g_assert_no_error (error);
      g_assert_cmpint (numel, ==, dl_tensor_numel (t));
      g_assert_cmpmem (got, numel * sizeof (float), want, numel * sizeof (float));
      if (start)
        {
          DlTensor *s0 = dl_hypernetwork_find_tensor (start, name);
          g_assert_nonnull (s0);
          g_autofree float *v0 = dl_test_download (s0);
          changed += memcmp (v0, got, numel * sizeof (float)) != 0;
        }
    }
  return changed;
}

static void
assert_structure (const DlHypernetworkConfig *c, int n, const double *layers)
{
  g_assert_cmpint (c->n_layers, ==, n);
  for (int i = 0; i < n; i++)
    {
      g_assert_cmpfloat (c->layer_structure[i], ==, layers[i]);
      g_assert_cmpfloat (c->dropout_structure[i], ==, 0);
    }
}

static void
test_scratch (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-hn-scratch-XXXXXX");
  g_autofree char *ldm = dl_test_golden_path ("tiny-sd15-ldm.safetensors");
  g_autofree char *config = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 2, ldm && config, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  g_autofree char *out = g_build_filename (tmp, "my-style.pt", NULL);
  g_autofree char *cfg = g_strconcat ("config=", config, NULL);
  const char *const opts[] = {
    cfg, "steps=3", "lr=1e-3", "hn-sizes=32", "hn-layers=1,2,1", "hn-activation=relu", NULL
  };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_HYPERNETWORK, ldm, images, out, opts);
  g_autoptr (TrainLog) log = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, log, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (log->warnings->len, ==, 0); /* 32 is a width of the model */
  g_assert_cmpuint (log->steps->len, ==, 3);

  g_autoptr (DlHypernetwork) hn = read_hn (out);
  const DlHypernetworkConfig *c = dl_hypernetwork_get_config (hn);
  static const double layers[] = { 1, 2, 1 };
  assert_structure (c, 3, layers);
  g_assert_cmpstr (c->name, ==, "my-style");
  g_assert_cmpint (c->step, ==, 3);
  g_assert_cmpstr (c->activation_func, ==, "relu");
  g_assert_false (c->is_layer_norm);
  g_assert_false (c->activate_output);
  g_assert_false (c->use_dropout);
  g_assert_false (c->last_layer_dropout);
  g_assert_cmpstr (c->weight_initialization, ==, "Normal");
  g_assert_null (c->optional_info);
  /* the base model: A1111's short hash (sha256, 10 hex digits) and name */
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (ldm, &data, &len, &error));
  g_autofree char *sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *)data, len);
  sha[10] = '\0';
  g_assert_cmpstr (c->sd_checkpoint, ==, sha);
  g_assert_cmpstr (c->sd_checkpoint_name, ==, "tiny-sd15-ldm");
  g_assert_cmpuint (dl_hypernetwork_get_n_sizes (hn), ==, 1);
  g_assert_cmpint (dl_hypernetwork_get_size (hn, 0), ==, 32);
  g_assert_cmpuint (dl_hypernetwork_get_n_tensors (hn), ==, 8); /* (k, v) x 2 Linear x (weight, bias) */

  /* trained from the seeded initialisation (--seed 42) */
  DlHypernetworkConfig c0;
  dl_hypernetwork_config_init (&c0);
  c0.activation_func = "relu";
  int size = 32;
  g_autoptr (DlHypernetwork) start = dl_hypernetwork_new (dl_test_device (), &c0, &size, 1, &error);
  g_assert_no_error (error);
  g_assert_true (dl_hypernetwork_init_weights (start, 42, &error));
  g_assert_no_error (error);
  g_autofree char *state = g_build_filename (tmp, "my-style.run", "state-00000003.safetensors", NULL);
  g_assert_cmpuint (check_tensors (hn, state, start), ==, 8);

  /* the tiny model's attentions: 32 wide (text, levels 0-1) and 64 (level 2, mid) */
  g_autoptr (DlCheckpoint) ck = dl_checkpoint_open (ldm, config, &error);
  g_assert_no_error (error);
  const DlUNetConfig *unet = &dl_checkpoint_get_config (ck)->unet;
  g_autoptr (GArray) none = dl_hypernetwork_unused_sizes (hn, unet);
  g_assert_cmpuint (none->len, ==, 0);
  int sizes[] = { 32, 48, 64, 768 };
  g_autoptr (DlHypernetwork) wide = dl_hypernetwork_new (dl_test_device (), &c0, sizes, 4, &error);
  g_assert_no_error (error);
  g_autoptr (GArray) unused = dl_hypernetwork_unused_sizes (wide, unet);
  g_assert_cmpuint (unused->len, ==, 2);
  g_assert_cmpint (g_array_index (unused, int, 0), ==, 48);
  g_assert_cmpint (g_array_index (unused, int, 1), ==, 768);

  /* the checkpoint in the run folder is named after its own file, as A1111's */
  g_autofree char *ck3 = g_build_filename (tmp, "my-style.run", "my-style-step000003.pt", NULL);
  g_autoptr (DlHypernetwork) hn3 = read_hn (ck3);
  g_assert_cmpstr (dl_hypernetwork_get_config (hn3)->name, ==, "my-style-step000003");
  g_test_message ("from scratch: %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

static void
test_init_from (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-hn-init-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *init = dl_test_golden_path ("train/hn-init.pt");
  g_autofree char *images = train_test_images_or_skip (tmp, 2, model && init, "no golden tiny model or hn-init.pt");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  g_autofree char *out = g_build_filename (tmp, "continued.pt", NULL);
  g_autofree char *from = g_strconcat ("init-from=", init, NULL);
  const char *const opts[] = { from, "steps=2", "lr=1e-3", NULL };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_HYPERNETWORK, model, images, out, opts);
  g_autoptr (TrainLog) log = train_log_new ();
  {
    g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
    g_assert_no_error (error);
    g_assert_true (train_test_run (t, log, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (log->warnings->len, ==, 0);
  g_autoptr (DlHypernetwork) before = read_hn (init);
  g_autoptr (DlHypernetwork) hn = read_hn (out);
  const DlHypernetworkConfig *c0 = dl_hypernetwork_get_config (before), *c = dl_hypernetwork_get_config (hn);
  g_test_message ("init: name %s, step %" G_GINT64_FORMAT ", activation %s, activate_output %d", c0->name, c0->step,
                  c0->activation_func, c0->activate_output);
  static const double layers[] = { 1, 2, 1 };
  assert_structure (c, 3, layers);
  g_assert_cmpstr (c->name, ==, "continued");
  g_assert_cmpint (c->step, ==, 2);
  g_assert_cmpstr (c->activation_func, ==, c0->activation_func);
  g_assert_cmpint (c->activate_output, ==, c0->activate_output);
  g_assert_cmpint (c->is_layer_norm, ==, c0->is_layer_norm);
  g_assert_cmpint (c->use_dropout, ==, c0->use_dropout);
  g_assert_cmpstr (c->weight_initialization, ==, c0->weight_initialization);
  g_assert_null (c->sd_checkpoint); /* a diffusers folder has no A1111 hash */
  g_assert_cmpstr (c->sd_checkpoint_name, ==, "tiny-sd15-diffusers");
  g_assert_cmpuint (dl_hypernetwork_get_n_sizes (hn), ==, dl_hypernetwork_get_n_sizes (before));
  g_assert_cmpint (dl_hypernetwork_get_size (hn, 0), ==, 32);
  g_autofree char *state = g_build_filename (tmp, "continued.run", "state-00000002.safetensors", NULL);
  g_assert_cmpuint (check_tensors (hn, state, before), ==, dl_hypernetwork_get_n_tensors (before));
  g_test_message ("from --init-from: %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

/* Prepare a run with these sizes: its warnings, or its error. */
static gboolean
prepare_sizes (const char *tmp, const char *model, const char *images, const char *sizes, TrainLog *log, GError **error)
{
  g_autofree char *out = g_strdup_printf ("%s/sizes-%s.pt", tmp, sizes);
  g_autofree char *opt = g_strconcat ("hn-sizes=", sizes, NULL);
  const char *const opts[] = { opt, "steps=1", NULL };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_HYPERNETWORK, model, images, out, opts);
  g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, error);
  g_assert_nonnull (t);
  train_test_attach (t, log);
  return dl_trainer_prepare (t, NULL, error);
}

static void
test_sizes (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-hn-sizes-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  g_autoptr (GError) error = NULL;
  g_autoptr (TrainLog) log = train_log_new ();
  g_assert_true (prepare_sizes (tmp, model, images, "32,48,64", log, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (log->warnings->len, ==, 1);
  g_assert_nonnull (strstr (log->warnings->pdata[0], "size 48 matches no attention"));

  /* none left: an error, and the run folder it made is gone again */
  g_autoptr (TrainLog) log2 = train_log_new ();
  g_assert_false (prepare_sizes (tmp, model, images, "48,100", log2, &error));
  g_assert_nonnull (error);
  g_test_message ("only sizes the model lacks: %s", error->message);
  g_assert_nonnull (strstr (error->message, "none of the hypernetwork's sizes"));
  g_assert_cmpuint (log2->warnings->len, ==, 2);
  g_autofree char *run = g_strdup_printf ("%s/sizes-48,100.run", tmp);
  g_assert_false (g_file_test (run, G_FILE_TEST_EXISTS));
  dl_test_remove_tree (tmp);
}

/* A torch.save archive whose pickle calls os.system (it would create
 * `marker`): what a hypernetwork .pt from the internet may hold. */
static void
write_evil_pt (const char *path, const char *marker)
{
  TwPickle p;
  tw_pickle_init (&p, FALSE);
  tw_op (&p, 0x80); /* PROTO 2 */
  tw_op (&p, 2);
  tw_global (&p, "os", "system");
  g_autofree char *cmd = g_strdup_printf ("touch '%s'", marker);
  tw_str (&p, cmd);
  tw_op (&p, 0x85); /* TUPLE1 */
  tw_op (&p, 'R');  /* REDUCE */
  tw_op (&p, '.');
  g_autoptr (GBytes) pickle = tw_pickle_finish (&p);
  g_autoptr (GError) error = NULL;
  g_assert_true (tw_write_raw (path, NULL, pickle, NULL, NULL, FALSE, &error));
  g_assert_no_error (error);
}

static void
test_refused_init (void)
{
  g_autofree char *tmp = train_test_make_tmp ("dl-hn-evil-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  g_autoptr (GError) error = NULL;
  g_autofree char *evil = g_build_filename (tmp, "free-style.pt", NULL);
  g_autofree char *marker = g_build_filename (tmp, "pwned", NULL);
  write_evil_pt (evil, marker);
  g_autofree char *out = g_build_filename (tmp, "out.pt", NULL);
  g_autofree char *from = g_strconcat ("init-from=", evil, NULL);
  const char *const opts[] = { from, "steps=1", NULL };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_HYPERNETWORK, model, images, out, opts);
  g_autoptr (TrainLog) log = train_log_new ();
  g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  g_assert_false (train_test_run (t, log, &error));
  g_assert_nonnull (error);
  g_test_message ("--init-from with os.system: %s", error->message);
  g_assert_null (strchr (error->message, '\n'));
  g_assert_true (g_str_has_prefix (error->message, "--init-from"));
  g_assert_nonnull (strstr (error->message, "free-style.pt"));
  g_assert_nonnull (strstr (error->message, "system"));
  g_assert_cmpuint (log->steps->len, ==, 0);
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_autofree char *run = g_build_filename (tmp, "out.run", NULL);
  g_assert_false (g_file_test (run, G_FILE_TEST_EXISTS));
  dl_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/train/hypernetwork/scratch", test_scratch);
  dl_test_add ("/train/hypernetwork/init-from", test_init_from);
  dl_test_add ("/train/hypernetwork/sizes", test_sizes);
  dl_test_add ("/train/hypernetwork/refused-init", test_refused_init);
  return dl_test_run ();
}
