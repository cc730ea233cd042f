/* test-train-replay.c: whole training runs checked step by step against the
 * PyTorch reference runs of ../shared/golden/train/ (diffusers + transformers):
 * every random draw is taken from the replay file; loss, learning rate and
 * gradient norm per step and every trained tensor at the end must agree
 * (tolerances of the replay check: loss rel 1e-4, lr rel 1e-5, grad norm rel
 * 1e-3, final change max|Δ_ours − Δ_ref| ≤ 1e-2 · max|Δ_ref|). */
#include "dl-test-util.h"

#include <math.h>

#include "io/dl-checkpoint.h"
#include "io/dl-safetensors.h"
#include "nn/dl-hypernetwork.h"
#include "train/dl-train-draws.h"
#include "train/dl-trainer.h"

typedef struct
{
  GArray *loss, *lr, *norm;
} Log;

static void
on_event (const DlTrainEvent *ev, gpointer data)
{
  Log *log = data;
  if (ev->kind == DL_TRAIN_EVENT_STEP)
    {
      g_array_append_val (log->loss, ev->loss);
      g_array_append_val (log->lr, ev->lr);
      g_array_append_val (log->norm, ev->grad_norm);
    }
  else if (ev->kind == DL_TRAIN_EVENT_WARNING)
    {
      g_test_message ("warning: %s", ev->message);
    }
}

static double
scalar (DlSafetensors *st, const char *what, gint64 step)
{
  g_autofree char *name = g_strdup_printf ("step%" G_GINT64_FORMAT ".%s", step, what);
  int64_t n = 0;
  g_autoptr (GError) error = NULL;
  g_autofree float *v = dl_safetensors_read_f32 (st, name, &n, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 1);
  return v[0];
}

static gboolean
within (const char *what, gint64 step, double got, double want, double rel)
{
  double err = fabs (got - want);
  gboolean ok = err <= rel * fabs (want) || (want == 0 && got == 0);
  g_test_message ("step %" G_GINT64_FORMAT " %s: ours %.8g, reference %.8g (rel %.2e, bound %.0e)%s", step, what, got,
                  want, want ? err / fabs (want) : err, rel, ok ? "" : "  FAILS");
  return ok;
}

/* Where our trained tensors are read from: the file the method wrote (a
 * safetensors file, an A1111 hypernetwork, a whole model), and where their
 * start is when the replay has no init.<name> (DreamBooth: the model). */
typedef struct
{
  DlSafetensors *st;
  DlHypernetwork *hn;
  DlCheckpoint *model_out;
  DlCheckpoint *model_in;
} Ours;

static float *
ours_read (Ours *o, const char *name, int64_t *n, GError **error)
{
  if (o->st)
    return dl_safetensors_find (o->st, name) ? dl_safetensors_read_f32 (o->st, name, n, error) : NULL;
  if (o->hn)
    {
      DlTensor *t = dl_hypernetwork_find_tensor (o->hn, name);
      if (!t)
        return NULL;
      *n = dl_tensor_numel (t);
      return dl_tensor_download_f32 (t, error);
    }
  return dl_checkpoint_find (o->model_out, name) ? dl_checkpoint_read_f32 (o->model_out, name, n, error) : NULL;
}

/* the trained tensors at the end: change from the start against the reference's */
static gboolean
check_finals (DlSafetensors *ref, Ours *ours, const char *zero_grad_json)
{
  gboolean ok = TRUE;
  guint checked = 0;
  double worst = 0;
  const char *worst_name = NULL;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (ref); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (ref, i);
      if (!g_str_has_prefix (t->name, "final."))
        continue;
      const char *name = t->name + 6;
      g_autofree char *init_name = g_strconcat ("init.", name, NULL);
      g_autoptr (GError) error = NULL;
      int64_t n = 0, n0 = 0, n1 = 0;
      g_autofree float *fin = dl_safetensors_read_f32 (ref, t->name, &n, &error);
      g_assert_no_error (error);
      g_autofree float *init = dl_safetensors_find (ref, init_name)
                                 ? dl_safetensors_read_f32 (ref, init_name, &n0, &error)
                                 : dl_checkpoint_read_f32 (ours->model_in, name, &n0, &error);
      g_assert_no_error (error);
      g_autofree float *got = ours_read (ours, name, &n1, &error);
      g_assert_no_error (error);
      if (!got)
        {
          g_test_message ("%s: missing from our file", name);
          ok = FALSE;
          continue;
        }
      g_assert_cmpint (n, ==, n1);
      g_assert_cmpint (n, ==, n0);
      gboolean zero = zero_grad_json && strstr (zero_grad_json, name) != NULL;
      double max_ref = 0, max_err = 0;
      gboolean finite = TRUE;
      for (int64_t k = 0; k < n; k++)
        {
          finite &= isfinite (got[k]);
          double dref = (double)fin[k] - init[k], dours = (double)got[k] - init[k];
          max_ref = MAX (max_ref, fabs (dref));
          max_err = MAX (max_err, fabs (dours - dref));
        }
      checked++;
      if (zero)
        {
          if (!finite)
            {
              g_test_message ("%s: not finite", name);
              ok = FALSE;
            }
          continue;
        }
      double rel = max_ref > 0 ? max_err / max_ref : max_err;
      if (rel > worst)
        {
          worst = rel;
          worst_name = t->name + 6;
        }
      if (!(max_err <= 1e-2 * max_ref))
        {
          g_test_message ("%s: max|Δ_ours − Δ_ref| = %.3e > 1e-2 · max|Δ_ref| = %.3e", name, max_err, 1e-2 * max_ref);
          ok = FALSE;
        }
    }
  g_test_message ("%u final tensors checked; worst relative change error %.3e (%s)", checked, worst,
                  worst_name ? worst_name : "-");
  g_assert_cmpuint (checked, >, 0);
  return ok;
}

static void
test_replay (gconstpointer data)
{
  const char *method = data;
  if (g_getenv ("DREAMLOOM_TEST_QUICK"))
    {
      /* the sanitizer build: the trainer's code goes through train-run's LoRA
       * resume there; the replays compare numbers, which the plain build does */
      g_test_skip ("DREAMLOOM_TEST_QUICK: the replays run in the plain build");
      return;
    }
  g_autofree char *rel = g_strdup_printf ("train/%s.safetensors", method);
  g_autofree char *replay = dl_test_golden_path (rel);
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *images = dl_test_golden_path ("train/data/instance");
  if (!replay || !model || !images)
    {
      g_test_skip ("no golden training runs");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) args = dl_replay_read_args (replay, &error);
  g_assert_no_error (error);
  DlTrainMethod m;
  g_assert_true (dl_train_method_from_name (method, &m));
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (m);
  for (guint i = 0; args[i]; i++)
    {
      g_assert_true (g_str_has_prefix (args[i], "--"));
      gboolean flag = FALSE;
      g_assert_true (dl_train_settings_has_option (args[i] + 2, &flag, NULL));
      g_assert_true (dl_train_settings_set (s, args[i] + 2, flag ? NULL : args[i + 1], &error));
      g_assert_no_error (error);
      if (!flag)
        i++;
    }
  g_autofree char *dir = g_dir_make_tmp ("dl-replay-XXXXXX", &error);
  g_assert_no_error (error);
  const char *out_name = m == DL_TRAIN_LORA                ? "lora.safetensors"
                         : m == DL_TRAIN_TEXTUAL_INVERSION ? "embedding.safetensors"
                         : m == DL_TRAIN_HYPERNETWORK      ? "hypernetwork.pt"
                                                           : "model.safetensors";
  g_autofree char *out = g_build_filename (dir, out_name, NULL);
  g_autofree char *classes = dl_test_golden_path ("train/data/class");
  if (m == DL_TRAIN_DREAMBOOTH)
    g_assert_true (dl_train_settings_set (s, "class-images", classes, &error));
  g_assert_true (dl_train_settings_set (s, "model", model, &error));
  g_assert_true (dl_train_settings_set (s, "images", images, &error));
  g_assert_true (dl_train_settings_set (s, "out", out, &error));
  g_assert_true (dl_train_settings_set (s, "replay", replay, &error));
  g_assert_true (dl_train_settings_set (s, "sample-every", "0", &error));
  g_assert_true (dl_train_settings_set (s, "save-dtype", "f32", &error));
  g_assert_no_error (error);

  Log log = { g_array_new (FALSE, FALSE, sizeof (double)), g_array_new (FALSE, FALSE, sizeof (double)),
              g_array_new (FALSE, FALSE, sizeof (double)) };
  g_autoptr (DlTrainer) t = dl_trainer_new (dl_test_device (), NULL, s, &error);
  g_assert_no_error (error);
  dl_trainer_set_event_func (t, on_event, &log, NULL);
  gboolean ran = dl_trainer_run (t, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (ran);

  g_autoptr (DlSafetensors) ref = dl_safetensors_open (replay, &error);
  g_assert_no_error (error);
  gboolean ok = TRUE;
  g_assert_cmpuint (log.loss->len, ==, s->steps);
  for (gint64 k = 0; k < s->steps; k++)
    {
      ok &= within ("loss", k, g_array_index (log.loss, double, k), scalar (ref, "loss", k), 1e-4);
      ok &= within ("lr", k, g_array_index (log.lr, double, k), scalar (ref, "lr", k), 1e-5);
      ok &= within ("grad_norm", k, g_array_index (log.norm, double, k), scalar (ref, "grad_norm", k), 1e-3);
    }
  Ours ours = { 0 };
  if (m == DL_TRAIN_HYPERNETWORK)
    ours.hn = dl_hypernetwork_read (dl_test_device (), out, &error);
  else if (m == DL_TRAIN_DREAMBOOTH)
    ours.model_out = dl_checkpoint_open (out, model, &error); /* the tiny shapes need their configs */
  else
    ours.st = dl_safetensors_open (out, &error);
  g_assert_no_error (error);
  ours.model_in = dl_checkpoint_open (model, NULL, &error);
  g_assert_no_error (error);
  ok &= check_finals (ref, &ours, dl_safetensors_get_metadata (ref, "zero_grad"));
  if (m == DL_TRAIN_LORA)
    {
      /* every module keeps its alpha */
      guint alphas = 0;
      for (guint i = 0; i < dl_safetensors_get_n_tensors (ours.st); i++)
        alphas += g_str_has_suffix (dl_safetensors_get_tensor (ours.st, i)->name, ".alpha");
      g_assert_cmpuint (alphas * 3, ==, dl_safetensors_get_n_tensors (ours.st));
    }
  g_clear_pointer (&ours.st, dl_safetensors_free);
  g_clear_pointer (&ours.hn, dl_hypernetwork_unref);
  g_clear_pointer (&ours.model_out, dl_checkpoint_free);
  g_clear_pointer (&ours.model_in, dl_checkpoint_free);
  g_assert_true (ok);
  g_array_unref (log.loss);
  g_array_unref (log.lr);
  g_array_unref (log.norm);
  dl_test_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add_data ("/train/replay/lora", "lora", test_replay);
  dl_test_add_data ("/train/replay/textual-inversion", "textual-inversion", test_replay);
  dl_test_add_data ("/train/replay/hypernetwork", "hypernetwork", test_replay);
  dl_test_add_data ("/train/replay/dreambooth", "dreambooth", test_replay);
  return dl_test_run ();
}
