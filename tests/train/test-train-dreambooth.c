/* test-train-dreambooth.c: DreamBooth runs on the golden tiny model, beyond
 * the replay against PyTorch (test-train-replay.c):
 *  - prior preservation's class images: generated into an empty class folder
 *    (PNGs with A1111's parameters: the class prompt and seed), reused by the
 *    next run without generating anything, an unreadable file warned about by
 *    name and replaced, the user's own images used as they are;
 *  - the written model, as an LDM single file (f16 by default, --save-dtype
 *    f32) and as a diffusers folder (--out DIR/, and dl_trainer_export to a
 *    folder), with --train-text-encoder and with --fp16 (f32 masters, f16
 *    copies): read back by the engine's checkpoint reader, the trained tensors
 *    are the run's final f32 masters (the state file's param.*) exactly, or
 *    their f16 rounding; the rest is the base model's; checkpoint folders are
 *    rotated like files.
 * Class images are generated with $DREAMLOOM_TEST_CLASS_STEPS=2 sampler steps
 * (the trainer's 25 take minutes on a CPU).  Under $DREAMLOOM_TEST_QUICK (the
 * sanitizer build) the folder run with the text encoder is left out. */
#include "train-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "dl-half.h"
#include "image/dl-png.h"
#include "io/dl-checkpoint.h"
#include "io/dl-safetensors.h"
#include "train/dl-trainer-private.h" /* t->class_images: the images a run trains its prior on */

#define CLASS_PROMPT "a photo of dog"

typedef struct
{
  guint generating; /* "Generating class image" status events */
  GPtrArray *warnings;
} ClassLog;

static void
on_class_event (const DlTrainEvent *ev, gpointer data)
{
  ClassLog *log = data;
  if (ev->kind == DL_TRAIN_EVENT_STATUS && g_str_has_prefix (ev->message, "Generating class image"))
    log->generating++;
  if (ev->kind == DL_TRAIN_EVENT_WARNING)
    {
      g_test_message ("warning: %s", ev->message);
      g_ptr_array_add (log->warnings, g_strdup (ev->message));
    }
}

static char *
read_file (const char *path, gsize *len)
{
  g_autoptr (GError) error = NULL;
  char *data = NULL;
  g_assert_true (g_file_get_contents (path, &data, len, &error));
  g_assert_no_error (error);
  return data;
}

/* Prepare (no step) a DreamBooth run with prior preservation from `class_dir`;
 * the file names of the class images it will train on, sorted, into *used. */
static void
prepare_with_classes (const char *model, const char *images, const char *out, const char *class_dir, ClassLog *log,
                      GPtrArray **used)
{
  g_autofree char *cls = g_strconcat ("class-images=", class_dir, NULL);
  g_autofree char *dir = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *config = g_strconcat ("config=", dir, NULL);
  const char *const opts[] = { "steps=1", "class-prompt=" CLASS_PROMPT, "num-class-images=3", cls, config, NULL };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out, opts);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  dl_trainer_set_event_func (t, on_class_event, log, NULL);
  g_assert_true (dl_trainer_prepare (t, NULL, &error));
  g_assert_no_error (error);
  *used = g_ptr_array_new_with_free_func (g_free);
  g_assert_nonnull (t->class_images);
  for (guint i = 0; i < dl_train_images_get_n (t->class_images); i++)
    g_ptr_array_add (*used, g_strdup (dl_train_images_get (t->class_images, i)->name));
  g_ptr_array_sort (*used, (GCompareFunc)g_strcmp0);
}

static gboolean
has_name (GPtrArray *names, const char *name)
{
  for (guint i = 0; i < names->len; i++)
    if (g_str_equal (names->pdata[i], name))
      return TRUE;
  return FALSE;
}

/* A generated class image: 32x32, A1111's parameters with the class prompt
 * and seed 42 + k (--seed's default). */
static void
check_generated (const char *dir, guint k)
{
  g_autofree char *name = g_strdup_printf ("class-%05u.png", k);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) text = NULL;
  int w = 0, h = 0;
  g_autofree guint8 *rgba = dl_png_read_rgba (path, &w, &h, &text, &error);
  g_assert_no_error (error);
  g_assert_cmpint (w, ==, 32);
  g_assert_cmpint (h, ==, 32);
  const char *params = text ? g_hash_table_lookup (text, "parameters") : NULL;
  g_assert_nonnull (params);
  g_test_message ("%s: %s", name, params);
  g_assert_true (g_str_has_prefix (params, CLASS_PROMPT "\n"));
  g_autofree char *seed = g_strdup_printf ("Seed: %u,", 42 + k);
  g_assert_nonnull (strstr (params, seed));
  g_assert_nonnull (strstr (params, "Size: 32x32"));
  g_assert_nonnull (strstr (params, "Sampler: DPM++ 2M Karras"));
  g_assert_nonnull (strstr (params, "Model: tiny-sd15-ldm,")); /* A1111's model name: no extension */
}

static void
test_class_images (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-db-class-XXXXXX");
  /* the LDM single file (with the tiny configs): the parameters name it */
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-ldm.safetensors");
  g_autofree char *configs = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model && configs, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  g_autofree char *cls = g_build_filename (tmp, "class", NULL);
  g_assert_cmpint (g_mkdir (cls, 0755), ==, 0);

  /* an empty class folder: three generated */
  g_autofree char *out_a = g_build_filename (tmp, "a.safetensors", NULL);
  ClassLog la = { 0, g_ptr_array_new_with_free_func (g_free) };
  g_autoptr (GPtrArray) used_a = NULL;
  prepare_with_classes (model, images, out_a, cls, &la, &used_a);
  g_assert_cmpuint (la.generating, ==, 3);
  g_assert_cmpuint (la.warnings->len, ==, 0);
  g_assert_cmpuint (used_a->len, ==, 3);
  for (guint k = 0; k < 3; k++)
    check_generated (cls, k);
  g_autoptr (GDir) d = g_dir_open (cls, 0, &error);
  g_assert_no_error (error);
  guint files = 0;
  while (g_dir_read_name (d))
    files++;
  g_assert_cmpuint (files, ==, 3); /* no temporary file left */
  GStatBuf before[3];
  char *bytes[3] = { NULL };
  gsize lens[3];
  for (guint k = 0; k < 3; k++)
    {
      g_autofree char *p = g_strdup_printf ("%s/class-%05u.png", cls, k);
      g_assert_cmpint (g_stat (p, &before[k]), ==, 0);
      bytes[k] = read_file (p, &lens[k]);
    }
  g_test_message ("generating 3 class images: %.1f s", (g_get_monotonic_time () - t0) / 1e6);

  /* the next run uses them: nothing generated, nothing rewritten */
  g_autofree char *out_b = g_build_filename (tmp, "b.safetensors", NULL);
  ClassLog lb = { 0, g_ptr_array_new_with_free_func (g_free) };
  g_autoptr (GPtrArray) used_b = NULL;
  prepare_with_classes (model, images, out_b, cls, &lb, &used_b);
  g_assert_cmpuint (lb.generating, ==, 0);
  g_assert_cmpuint (used_b->len, ==, 3);
  for (guint k = 0; k < 3; k++)
    {
      g_autofree char *p = g_strdup_printf ("%s/class-%05u.png", cls, k);
      GStatBuf now;
      gsize len = 0;
      g_assert_cmpint (g_stat (p, &now), ==, 0);
      g_assert_cmpint (now.st_mtime, ==, before[k].st_mtime);
      g_assert_cmpint (now.st_ino, ==, before[k].st_ino);
      g_autofree char *again = read_file (p, &len);
      g_assert_cmpmem (again, len, bytes[k], lens[k]);
    }

  /* the user's own image (of another size, without parameters) and an
   * unreadable file: the bad one is named in a warning and two are generated;
   * the user's is trained on as it is and left untouched */
  g_autofree char *mine_dir = g_build_filename (tmp, "mine", NULL);
  g_assert_cmpint (g_mkdir (mine_dir, 0755), ==, 0);
  g_autofree char *mine = g_build_filename (mine_dir, "my-dog.png", NULL);
  g_autofree char *broken = g_build_filename (mine_dir, "broken.png", NULL);
  g_autofree guint8 *pixels = g_new (guint8, 48 * 40 * 3);
  for (int i = 0; i < 48 * 40 * 3; i++)
    pixels[i] = (guint8)(i * 7 % 251);
  g_assert_true (dl_png_write (mine, pixels, 48, 40, 3, NULL, &error));
  g_assert_true (g_file_set_contents (broken, "not a picture\n", -1, &error));
  g_assert_no_error (error);
  gsize mine_len = 0;
  g_autofree char *mine_bytes = read_file (mine, &mine_len);
  g_autofree char *out_c = g_build_filename (tmp, "c.safetensors", NULL);
  ClassLog lc = { 0, g_ptr_array_new_with_free_func (g_free) };
  g_autoptr (GPtrArray) used_c = NULL;
  prepare_with_classes (model, images, out_c, mine_dir, &lc, &used_c);
  g_assert_cmpuint (lc.generating, ==, 2);
  g_assert_cmpuint (lc.warnings->len, ==, 1);
  g_assert_nonnull (strstr (lc.warnings->pdata[0], "broken.png"));
  g_assert_cmpuint (used_c->len, ==, 3);
  g_assert_true (has_name (used_c, "my-dog.png"));
  g_assert_true (has_name (used_c, "class-00000.png"));
  g_assert_true (has_name (used_c, "class-00001.png"));
  check_generated (mine_dir, 0);
  check_generated (mine_dir, 1);
  gsize len = 0;
  g_autofree char *mine_after = read_file (mine, &len);
  g_assert_cmpmem (mine_after, len, mine_bytes, mine_len);
  g_assert_true (g_file_test (broken, G_FILE_TEST_EXISTS)); /* the user's file, left alone */

  g_ptr_array_unref (la.warnings);
  g_ptr_array_unref (lb.warnings);
  g_ptr_array_unref (lc.warnings);
  for (guint k = 0; k < 3; k++)
    g_free (bytes[k]);
  g_test_message ("class images: %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

/* ---- the written model ---- */

static float
f16_round (float v)
{
  return dl_f16_to_f32 (dl_f32_to_f16 (v));
}

typedef struct
{
  guint trained;  /* trained tensors compared with their masters */
  guint changed;  /* of those, differing from the base model */
  guint base;     /* tensors compared with the base model */
  gint64 not_f16; /* trained values that no f16 holds */
} Written;

/* The model at `out` (single file: with the tiny model's configs) against the
 * final masters in `state` (param.<name>) for the trained components (the
 * UNet; the text encoder with `te_trained`), stored as `dtype`, and against the
 * base model for the rest, stored as the base stores them. */
static Written
check_written (const char *out, const char *base, const char *state, gboolean te_trained, DlStDType dtype)
{
  g_autoptr (GError) error = NULL;
  gboolean folder = g_file_test (out, G_FILE_TEST_IS_DIR);
  g_autoptr (DlCheckpoint) w = dl_checkpoint_open (out, folder ? NULL : base, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_checkpoint_get_layout (w), ==, folder ? DL_CHECKPOINT_DIFFUSERS : DL_CHECKPOINT_SINGLE_FILE);
  g_autoptr (DlCheckpoint) b = dl_checkpoint_open (base, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (state, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_checkpoint_get_n_params (w), ==, dl_checkpoint_get_n_params (b));
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (w)->len, ==, 0);
  Written r = { 0 };
  guint bad = 0;
  for (guint i = 0; i < dl_checkpoint_get_n_params (w); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (w, i);
      gboolean trained =
        g_str_has_prefix (p->name, "unet.") || (te_trained && g_str_has_prefix (p->name, "text_encoder."));
      const DlCheckpointParam *bp = dl_checkpoint_find (b, p->name);
      g_assert_nonnull (bp);
      int64_t n = 0, nb = 0, nm = 0;
      g_autofree float *got = dl_checkpoint_read_f32 (w, p->name, &n, &error);
      g_assert_no_error (error);
      g_autofree float *orig = dl_checkpoint_read_f32 (b, p->name, &nb, &error);
      g_assert_no_error (error);
      g_assert_cmpint (n, ==, nb);
      g_autofree char *key = g_strconcat ("param.", p->name, NULL);
      g_autofree float *master = trained ? dl_safetensors_read_f32 (st, key, &nm, &error) : NULL;
      g_assert_no_error (error);
      if (trained)
        g_assert_cmpint (nm, ==, n);
      /* what must be there: the master (or the base) as stored */
      DlStDType want_dtype = trained ? dtype : bp->dtype;
      if (p->dtype != want_dtype)
        {
          if (bad++ < 5)
            g_test_message ("%s stored as %s, expected %s", p->name, dl_st_dtype_name (p->dtype),
                            dl_st_dtype_name (want_dtype));
          continue;
        }
      const float *ref = trained ? master : orig;
      gint64 differ = 0, first = -1;
      gboolean changed = FALSE;
      for (int64_t k = 0; k < n; k++)
        {
          float want = want_dtype == DL_ST_F16 ? f16_round (ref[k]) : ref[k];
          if (memcmp (&got[k], &want, sizeof (float)) != 0 && !(got[k] == 0 && want == 0))
            {
              if (first < 0)
                first = k;
              differ++;
            }
          changed |= trained && got[k] != orig[k];
          if (trained && f16_round (ref[k]) != ref[k])
            r.not_f16++;
        }
      if (differ)
        {
          if (bad++ < 5)
            g_test_message ("%s: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT
                            " values differ from the %s (first [%" G_GINT64_FORMAT "]: %.9g, expected %.9g)",
                            p->name, differ, n, trained ? "master" : "base", first, got[first], ref[first]);
          continue;
        }
      if (trained)
        {
          r.trained++;
          r.changed += changed;
        }
      else
        {
          r.base++;
        }
    }
  g_test_message ("%s: %u trained tensors as the masters (%u changed by training), %u as the base; %u wrong", out,
                  r.trained, r.changed, r.base, bad);
  g_assert_cmpuint (bad, ==, 0);
  return r;
}

/* the state file of the run's last checkpoint: its masters */
static char *
final_state (const char *tmp, const char *run_name, gint64 steps)
{
  g_autofree char *name = g_strdup_printf ("state-%08" G_GINT64_FORMAT ".safetensors", steps);
  return g_build_filename (tmp, run_name, name, NULL);
}

static void
run_ok (DlTrainSettings *s, TrainLog *log, DlTrainer **keep)
{
  g_autoptr (GError) error = NULL;
  DlTrainer *t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  g_assert_true (train_test_run (t, log, &error));
  g_assert_no_error (error);
  if (keep)
    *keep = t;
  else
    dl_trainer_free (t);
}

static guint
count_entries (const char *dir, const char *prefix)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name (d)))
    n += g_str_has_prefix (name, prefix);
  return n;
}

static void
test_export (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = train_test_make_tmp ("dl-db-export-XXXXXX");
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = train_test_images_or_skip (tmp, 1, model != NULL, "no golden tiny model");
  if (!images)
    return;
  gint64 t0 = g_get_monotonic_time ();
  /* lr 1e-4: the masters move away from values an f16 holds */
  const char *const common[] = { "steps=2", "lr=1e-4", NULL };

  /* (a) the default: one LDM file in f16; the same run exported to a folder */
  g_autofree char *out_a = g_build_filename (tmp, "a.safetensors", NULL);
  g_autofree char *dir_a = g_build_filename (tmp, "a-folder/", NULL);
  {
    g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out_a, common);
    g_assert_cmpint (s->save_dtype, ==, DL_ST_F16);
    g_autoptr (TrainLog) log = train_log_new ();
    g_autoptr (DlTrainer) t = NULL;
    run_ok (s, log, &t);
    g_assert_true (dl_trainer_export (t, dir_a, &error));
    g_assert_no_error (error);
  }
  g_autofree char *state_a = final_state (tmp, "a.run", 2);
  Written wa = check_written (out_a, model, state_a, FALSE, DL_ST_F16);
  g_assert_cmpuint (wa.trained, ==, 684);
  g_assert_cmpuint (wa.changed, >, 600);
  Written wa2 = check_written (dir_a, model, state_a, FALSE, DL_ST_F16);
  g_assert_cmpuint (wa2.trained, ==, 684);
  g_test_message ("(a) %.1f s", (g_get_monotonic_time () - t0) / 1e6);

  /* (b) --out DIR/ in f32 with the text encoder trained, a checkpoint every
   * step and one kept: the masters exactly; older checkpoint folders removed
   * (not under $DREAMLOOM_TEST_QUICK: the sanitizer build's time) */
  g_autofree char *out_b = g_build_filename (tmp, "b/", NULL);
  if (!g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      const char *const opts[] = {
        "steps=3", "lr=1e-4", "save-dtype=f32", "train-text-encoder", "text-encoder-lr=1e-4", "save-every=1",
        "keep=1",  NULL
      };
      g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out_b, opts);
      g_autoptr (TrainLog) log = train_log_new ();
      run_ok (s, log, NULL);
      g_assert_cmpuint (log->checkpoints->len, ==, 3);
      g_autofree char *state_b = final_state (tmp, "b.run", 3);
      Written wb = check_written (out_b, model, state_b, TRUE, DL_ST_F32);
      g_assert_cmpuint (wb.trained, ==, 684 + 52);
      g_assert_cmpuint (wb.changed, >, 600 + 40);
      g_autofree char *run_b = g_build_filename (tmp, "b.run", NULL);
      g_autofree char *ck_b = g_build_filename (run_b, "b-step000003", NULL);
      g_assert_true (g_file_test (ck_b, G_FILE_TEST_IS_DIR));
      check_written (ck_b, model, state_b, TRUE, DL_ST_F32);
      /* the checkpoints of steps 1 and 2 are gone, folders and states */
      g_assert_cmpuint (count_entries (run_b, "b-step"), ==, 1);
      g_assert_cmpuint (count_entries (run_b, "state-"), ==, 1);
      g_test_message ("(a, b) %.1f s", (g_get_monotonic_time () - t0) / 1e6);
    }

  /* (c) --fp16: the forward reads f16 copies; what is written in f32 is the
   * f32 masters, values no f16 holds, and the base's f32 tensors, not their
   * f16 copies */
  g_autofree char *out_c = g_build_filename (tmp, "c.safetensors", NULL);
  {
    const char *const opts[] = { "steps=2", "lr=1e-4", "fp16", "save-dtype=f32", NULL };
    g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_DREAMBOOTH, model, images, out_c, opts);
    g_autoptr (TrainLog) log = train_log_new ();
    run_ok (s, log, NULL);
  }
  g_autofree char *state_c = final_state (tmp, "c.run", 2);
  Written wc = check_written (out_c, model, state_c, FALSE, DL_ST_F32);
  g_assert_cmpuint (wc.trained, ==, 684);
  g_assert_cmpuint (wc.changed, >, 600);
  g_assert_cmpint (wc.not_f16, >, 1000000);
  g_test_message ("exports: %.1f s", (g_get_monotonic_time () - t0) / 1e6);
  dl_test_remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_setenv ("DREAMLOOM_TEST_CLASS_STEPS", "2", TRUE);
  dl_test_add ("/train/dreambooth/class-images", test_class_images);
  dl_test_add ("/train/dreambooth/export", test_export);
  return dl_test_run ();
}
