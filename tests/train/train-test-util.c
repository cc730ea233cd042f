/* train-test-util.c: see train-test-util.h. */
#include "train-test-util.h"

#include <math.h>
#include <string.h>

#include "io/dl-safetensors.h"

TrainLog *
train_log_new (void)
{
  TrainLog *log = g_new0 (TrainLog, 1);
  log->steps = g_array_new (FALSE, FALSE, sizeof (gint64));
  log->loss = g_array_new (FALSE, FALSE, sizeof (double));
  log->lr = g_array_new (FALSE, FALSE, sizeof (double));
  log->grad_norm = g_array_new (FALSE, FALSE, sizeof (double));
  log->val_steps = g_array_new (FALSE, FALSE, sizeof (gint64));
  log->val = g_array_new (FALSE, FALSE, sizeof (double));
  log->checkpoints = g_array_new (FALSE, FALSE, sizeof (gint64));
  log->warnings = g_ptr_array_new_with_free_func (g_free);
  return log;
}

void
train_log_free (TrainLog *log)
{
  if (!log)
    return;
  g_array_unref (log->steps);
  g_array_unref (log->loss);
  g_array_unref (log->lr);
  g_array_unref (log->grad_norm);
  g_array_unref (log->val_steps);
  g_array_unref (log->val);
  g_array_unref (log->checkpoints);
  g_ptr_array_unref (log->warnings);
  g_clear_object (&log->cancel);
  g_free (log);
}

double
train_log_loss_at (TrainLog *log, gint64 step)
{
  for (guint i = 0; i < log->steps->len; i++)
    if (g_array_index (log->steps, gint64, i) == step)
      return g_array_index (log->loss, double, i);
  g_test_message ("no step event for step %" G_GINT64_FORMAT, step);
  g_test_fail ();
  return NAN;
}

static void
on_event (const DlTrainEvent *ev, gpointer data)
{
  TrainLog *log = data;
  switch (ev->kind)
    {
    case DL_TRAIN_EVENT_STEP:
      g_array_append_val (log->steps, ev->step);
      g_array_append_val (log->loss, ev->loss);
      g_array_append_val (log->lr, ev->lr);
      g_array_append_val (log->grad_norm, ev->grad_norm);
      g_test_message ("step %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT ": loss %.9g lr %.6g grad norm %.6g", ev->step,
                      ev->total_steps, ev->loss, ev->lr, ev->grad_norm);
      if (log->cancel && ev->step == log->cancel_after)
        g_cancellable_cancel (log->cancel);
      break;
    case DL_TRAIN_EVENT_VALIDATION:
      g_array_append_val (log->val_steps, ev->step);
      g_array_append_val (log->val, ev->val_loss);
      g_test_message ("validation at step %" G_GINT64_FORMAT ": %.6f%s", ev->step, ev->val_loss,
                      ev->best ? " (best)" : "");
      break;
    case DL_TRAIN_EVENT_CHECKPOINT:
      g_array_append_val (log->checkpoints, ev->step);
      break;
    case DL_TRAIN_EVENT_WARNING:
      g_test_message ("warning: %s", ev->message);
      g_ptr_array_add (log->warnings, g_strdup (ev->message));
      break;
    default:
      break;
    }
}

DlTrainSettings *
train_test_settings (DlTrainMethod method, const char *model, const char *images, const char *out,
                     const char *const *options)
{
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (method);
  g_autoptr (GError) error = NULL;
  const char *const base[] = { "resolution=32", "batch=1", "sample-every=0", "validate-every=0", NULL };
  g_assert_true (dl_train_settings_set (s, "model", model, &error));
  g_assert_true (dl_train_settings_set (s, "images", images, &error));
  g_assert_true (dl_train_settings_set (s, "out", out, &error));
  for (int pass = 0; pass < 2; pass++)
    for (const char *const *o = pass ? options : base; o && *o; o++)
      {
        g_auto (GStrv) kv = g_strsplit (*o, "=", 2);
        dl_train_settings_set (s, kv[0], kv[1], &error);
        g_assert_no_error (error);
      }
  return g_steal_pointer (&s);
}

void
train_test_attach (DlTrainer *t, TrainLog *log)
{
  dl_trainer_set_event_func (t, on_event, log, NULL);
}

gboolean
train_test_run (DlTrainer *t, TrainLog *log, GError **error)
{
  dl_trainer_set_event_func (t, on_event, log, NULL);
  return dl_trainer_run (t, log->cancel, error);
}

static void
spawn_ok (const char *const *argv)
{
  g_autoptr (GError) error = NULL;
  int status = 0;
  g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_spawn_check_wait_status (status, &error);
  g_assert_no_error (error);
}

char *
train_test_copy_model (const char *tmp)
{
  g_autofree char *src = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!src)
    return NULL;
  char *dst = g_build_filename (tmp, "tiny-model", NULL);
  const char *const cp[] = { "cp", "-R", src, dst, NULL };
  const char *const chmod[] = { "chmod", "-R", "u+w", dst, NULL };
  spawn_ok (cp);
  spawn_ok (chmod);
  return dst;
}

char *
train_test_copy_images (const char *tmp, guint n)
{
  g_autofree char *src = dl_test_golden_path ("train/data/instance");
  if (!src)
    return NULL;
  char *dst = g_build_filename (tmp, "images", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  for (guint i = 0; i < n; i++)
    for (int k = 0; k < 2; k++)
      {
        g_autofree char *name = g_strdup_printf ("%02u.%s", i, k ? "txt" : "png");
        g_autofree char *from = g_build_filename (src, name, NULL);
        g_autofree char *to = g_build_filename (dst, name, NULL);
        g_autofree char *data = NULL;
        gsize len = 0;
        g_autoptr (GError) error = NULL;
        g_assert_true (g_file_get_contents (from, &data, &len, &error));
        g_assert_true (g_file_set_contents (to, data, (gssize)len, &error));
        g_assert_no_error (error);
      }
  return dst;
}

void
train_test_assert_same_tensors (const char *a, const char *b)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) fa = dl_safetensors_open (a, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) fb = dl_safetensors_open (b, &error);
  g_assert_no_error (error);
  guint n = dl_safetensors_get_n_tensors (fa);
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (n, ==, dl_safetensors_get_n_tensors (fb));
  guint differ = 0;
  for (guint i = 0; i < n; i++)
    {
      const DlStTensor *ta = dl_safetensors_get_tensor (fa, i);
      const DlStTensor *tb = dl_safetensors_find (fb, ta->name);
      if (!tb)
        {
          g_test_message ("%s: in %s, not in %s", ta->name, a, b);
          differ++;
          continue;
        }
      g_assert_cmpint (ta->dtype, ==, tb->dtype);
      g_assert_cmpint (ta->ndim, ==, tb->ndim);
      for (int d = 0; d < ta->ndim; d++)
        g_assert_cmpint (ta->shape[d], ==, tb->shape[d]);
      g_assert_cmpuint (ta->nbytes, ==, tb->nbytes);
      if (memcmp (ta->data, tb->data, ta->nbytes) != 0)
        {
          gsize at = 0;
          while (at < ta->nbytes && ta->data[at] == tb->data[at])
            at++;
          if (differ < 5)
            g_test_message ("%s: differs (first at byte %" G_GSIZE_FORMAT " of %" G_GUINT64_FORMAT ")", ta->name, at,
                            ta->nbytes);
          differ++;
        }
    }
  if (differ)
    g_test_message ("%u of %u tensors differ between %s and %s", differ, n, a, b);
  g_assert_cmpuint (differ, ==, 0);
}

gboolean
train_test_all_finite (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) f = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < dl_safetensors_get_n_tensors (f); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (f, i);
      if (t->dtype != DL_ST_F32 && t->dtype != DL_ST_F16)
        continue;
      int64_t n = 0;
      g_autofree float *v = dl_safetensors_read_f32 (f, t->name, &n, &error);
      g_assert_no_error (error);
      for (int64_t k = 0; k < n; k++)
        if (!isfinite (v[k]))
          {
            g_test_message ("%s: %s[%" G_GINT64_FORMAT "] = %g", path, t->name, k, v[k]);
            return FALSE;
          }
    }
  return TRUE;
}

char *
train_test_make_tmp (const char *templ)
{
  g_autoptr (GError) error = NULL;
  char *tmp = g_dir_make_tmp (templ, &error);
  g_assert_no_error (error);
  return tmp;
}

char *
train_test_images_or_skip (const char *tmp, guint n, gboolean have_inputs, const char *why)
{
  char *images = have_inputs ? train_test_copy_images (tmp, n) : NULL;
  if (!images)
    {
      g_test_skip (why);
      dl_test_remove_tree (tmp);
    }
  return images;
}
