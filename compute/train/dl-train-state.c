/* dl-train-state.c: the run folder — state files (everything a run needs to
 * continue bit for bit, as llm.c's versioned state file: a format name and
 * version, the step, the settings, the base model's identity, the trained
 * tensors with their AdamW moments), checkpoints with rotation, and run.json.
 * Every file is written atomically: a crash or a full disk leaves the previous
 * one whole. */
#include "dl-config.h"

#include "train/dl-trainer-private.h"
#include "train/dl-run-info.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-atomic-file.h"
#include "io/dl-file-util.h"
#include "io/dl-json-write.h"

#define STATE_FORMAT "dreamloom-train-state"
#define STATE_VERSION 1

char *
dl_trainer_state_path (DlTrainer *t, gint64 step)
{
  g_autofree char *name = g_strdup_printf ("state-%08" G_GINT64_FORMAT ".safetensors", step);
  return g_build_filename (t->run_dir, name, NULL);
}

char *
dl_trainer_checkpoint_export_path (DlTrainer *t, gint64 step)
{
  g_autofree char *base = g_path_get_basename (t->settings->out);
  const char *dot = strrchr (base, '.');
  g_autofree char *stem = dot ? g_strndup (base, dot - base) : g_strdup (base);
  g_autofree char *name = g_strdup_printf ("%s-step%06" G_GINT64_FORMAT "%s", stem, step, dot ? dot : "");
  return g_build_filename (t->run_dir, name, NULL);
}

static char *
dtostr (double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup (g_ascii_dtostr (buf, sizeof buf, v));
}

static char *
image_list_json (DlTrainer *t)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_array (b);
  for (guint i = 0; i < dl_train_images_get_n (t->images); i++)
    json_builder_add_string_value (b, dl_train_images_get (t->images, i)->content_hash);
  json_builder_end_array (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return dl_json_write (root, FALSE, NULL);
}

static void
set_meta (DlSafetensorsWriter *w, const char *key, char *value)
{
  dl_safetensors_writer_set_metadata (w, key, value);
  g_free (value);
}

gboolean
dl_trainer_write_state (DlTrainer *t, const char *path, GError **error)
{
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  if (!dl_optimizer_save (t->opt, w, error))
    return FALSE;
  dl_safetensors_writer_set_metadata (w, "format", STATE_FORMAT);
  set_meta (w, "version", g_strdup_printf ("%d", STATE_VERSION));
  set_meta (w, "step", g_strdup_printf ("%" G_GINT64_FORMAT, t->step));
  set_meta (w, "settings", dl_train_settings_to_json_string (t->settings));
  dl_safetensors_writer_set_metadata (w, "base_model", t->model_hash ? t->model_hash : "");
  set_meta (w, "images", image_list_json (t));
  set_meta (w, "lr_scale", dtostr (t->lr_scale));
  set_meta (w, "non_finite_streak", g_strdup_printf ("%d", t->non_finite_streak));
  set_meta (w, "best_step", g_strdup_printf ("%" G_GINT64_FORMAT, t->best_step));
  set_meta (w, "best_val", dtostr (t->best_val));
  set_meta (w, "last_val", dtostr (t->last_val));
  set_meta (w, "started_at", g_strdup_printf ("%" G_GINT64_FORMAT, t->started_at));
  return dl_safetensors_writer_write (w, path, error);
}

static gboolean
state_error (GError **error, const char *path, const char *why)
{
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: %s", path, why);
  return FALSE;
}

gboolean
dl_trainer_read_state (DlTrainer *t, const char *path, GError **error)
{
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, error);
  if (!st)
    return FALSE;
  if (g_strcmp0 (dl_safetensors_get_metadata (st, "format"), STATE_FORMAT) != 0)
    return state_error (error, path, "not a Dreamloom training state");
  const char *version = dl_safetensors_get_metadata (st, "version");
  if (!version || atoi (version) != STATE_VERSION)
    return state_error (error, path, "a training state of another version of Dreamloom");
  const char *base = dl_safetensors_get_metadata (st, "base_model");
  if (t->model_hash && base && *base && g_strcmp0 (base, t->model_hash) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "“%s”: the run was trained on another base model (sha256 %.12s…, this one is %.12s…)", path, base,
                   t->model_hash);
      return FALSE;
    }
  g_autofree char *images = image_list_json (t);
  if (g_strcmp0 (dl_safetensors_get_metadata (st, "images"), images) != 0)
    return state_error (error, path, "the training images changed since this run started (added, removed or edited)");
  const char *settings = dl_safetensors_get_metadata (st, "settings");
  g_autoptr (DlTrainSettings) saved = settings ? dl_train_settings_from_json_string (settings, error) : NULL;
  if (!saved)
    return settings ? FALSE : state_error (error, path, "no settings");
  g_autofree char *diff = dl_train_settings_diff_results (saved, t->settings);
  if (diff)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "“%s”: the state is of a run with other settings (%s)",
                   path, diff);
      return FALSE;
    }
  if (!dl_optimizer_load (t->opt, st, error))
    return FALSE;
  const char *v;
  t->step = (v = dl_safetensors_get_metadata (st, "step")) ? g_ascii_strtoll (v, NULL, 10) : 0;
  t->lr_scale = (v = dl_safetensors_get_metadata (st, "lr_scale")) ? g_ascii_strtod (v, NULL) : 1.0;
  t->non_finite_streak = (v = dl_safetensors_get_metadata (st, "non_finite_streak")) ? atoi (v) : 0;
  t->best_step = (v = dl_safetensors_get_metadata (st, "best_step")) ? g_ascii_strtoll (v, NULL, 10) : -1;
  t->best_val = (v = dl_safetensors_get_metadata (st, "best_val")) ? g_ascii_strtod (v, NULL) : INFINITY;
  t->last_val = (v = dl_safetensors_get_metadata (st, "last_val")) ? g_ascii_strtod (v, NULL) : NAN;
  if ((v = dl_safetensors_get_metadata (st, "started_at")))
    t->started_at = g_ascii_strtoll (v, NULL, 10);
  /* validations after this state belong to steps that will run again */
  while (t->validations->len &&
         g_array_index (t->validations, DlTrainValidation, t->validations->len - 1).step > t->step)
    g_array_set_size (t->validations, t->validations->len - 1);
  dl_loss_log_truncate (t->losses, t->step);
  return TRUE;
}

static int
cmp_step (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

/* steps of the state files in the run folder, ascending */
static GArray *
list_states (DlTrainer *t)
{
  GArray *steps = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GDir) dir = g_dir_open (t->run_dir, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name (dir)))
    {
      gint64 step;
      char tail[32];
      if (sscanf (name, "state-%" G_GINT64_MODIFIER "d%31s", &step, tail) == 2 && g_str_equal (tail, ".safetensors"))
        g_array_append_val (steps, step);
    }
  g_array_sort (steps, cmp_step);
  return steps;
}

void
dl_trainer_list_checkpoints (DlTrainer *t)
{
  g_autoptr (GArray) steps = list_states (t);
  g_array_set_size (t->checkpoints, 0);
  for (guint i = 0; i < steps->len; i++)
    if (g_array_index (steps, gint64, i) > 0)
      g_array_append_val (t->checkpoints, g_array_index (steps, gint64, i));
}

char *
dl_trainer_latest_state (DlTrainer *t)
{
  g_autoptr (GArray) steps = list_states (t);
  if (!steps->len)
    return NULL;
  return dl_trainer_state_path (t, g_array_index (steps, gint64, steps->len - 1));
}

gboolean
dl_trainer_write_run_json (DlTrainer *t, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, "dreamloom-run");
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "settings");
  json_builder_add_value (b, dl_train_settings_to_json (t->settings));
  json_builder_set_member_name (b, "step");
  json_builder_add_int_value (b, t->step);
  json_builder_set_member_name (b, "checkpoints");
  json_builder_begin_array (b);
  for (guint i = 0; i < t->checkpoints->len; i++)
    {
      gint64 step = g_array_index (t->checkpoints, gint64, i);
      g_autofree char *exp = dl_trainer_checkpoint_export_path (t, step);
      g_autofree char *state = dl_trainer_state_path (t, step);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "step");
      json_builder_add_int_value (b, step);
      json_builder_set_member_name (b, "file");
      json_builder_add_string_value (b, exp);
      json_builder_set_member_name (b, "state");
      json_builder_add_string_value (b, state);
      json_builder_set_member_name (b, "best");
      json_builder_add_boolean_value (b, step == t->best_step);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "validation");
  json_builder_begin_array (b);
  for (guint i = 0; i < t->validations->len; i++)
    {
      const DlTrainValidation *v = &g_array_index (t->validations, DlTrainValidation, i);
      if (!isfinite (v->loss))
        continue;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "step");
      json_builder_add_int_value (b, v->step);
      json_builder_set_member_name (b, "loss");
      json_builder_add_double_value (b, v->loss);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "finished");
  json_builder_add_boolean_value (b, t->finished);
  json_builder_set_member_name (b, "best_step");
  if (t->best_step >= 0)
    json_builder_add_int_value (b, t->best_step);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "best_validation_loss");
  if (isfinite (t->best_val))
    json_builder_add_double_value (b, t->best_val);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  gsize len = 0;
  g_autofree char *text = dl_json_write (root, TRUE, &len);
  /* the steps' losses first: run.json names the checkpoint they lead to */
  if (!dl_loss_log_write (t->losses, t->run_dir, error))
    return FALSE;
  g_autofree char *path = g_build_filename (t->run_dir, "run.json", NULL);
  g_autoptr (DlAtomicFile) f = dl_atomic_file_begin (path, error);
  if (!f || !dl_atomic_file_write (f, text, len, error))
    return FALSE;
  return dl_atomic_file_commit (g_steal_pointer (&f), error);
}

static void
remove_checkpoint (DlTrainer *t, gint64 step)
{
  g_autofree char *state = dl_trainer_state_path (t, step);
  g_autofree char *exp = dl_trainer_checkpoint_export_path (t, step);
  g_unlink (state);
  dl_file_remove_tree (exp); /* a file, or a DreamBooth model's folder */
}

gboolean
dl_trainer_save_checkpoint (DlTrainer *t, GError **error)
{
  g_return_val_if_fail (t->prepared, FALSE);
  gint64 step = t->step;
  g_autofree char *exp = dl_trainer_checkpoint_export_path (t, step);
  g_autofree char *state = dl_trainer_state_path (t, step);
  dl_trainer_status (t, -1, "Saving the checkpoint at step %" G_GINT64_FORMAT, step);
  /* the export first: a state file means its checkpoint is complete */
  if (!dl_trainer_export (t, exp, error) || !dl_trainer_write_state (t, state, error))
    {
      g_prefix_error (error, "checkpoint at step %" G_GINT64_FORMAT " not saved (the previous one is intact): ", step);
      dl_file_remove_tree (exp);
      return FALSE;
    }
  gboolean known = FALSE;
  for (guint i = 0; i < t->checkpoints->len; i++)
    known |= g_array_index (t->checkpoints, gint64, i) == step;
  if (!known)
    g_array_append_val (t->checkpoints, step);
  /* keep the newest `keep` and the best; the step-0 state once a real one exists */
  guint keep = (guint)t->settings->keep;
  for (guint i = 0; i < t->checkpoints->len;)
    {
      gint64 s = g_array_index (t->checkpoints, gint64, i);
      gboolean recent = i + keep >= t->checkpoints->len;
      if (!recent && s != t->best_step)
        {
          remove_checkpoint (t, s);
          g_array_remove_index (t->checkpoints, i);
        }
      else
        {
          i++;
        }
    }
  if (step > 0)
    {
      g_autofree char *s0 = dl_trainer_state_path (t, 0);
      g_unlink (s0);
    }
  if (!dl_trainer_write_run_json (t, error))
    return FALSE;
  DlTrainEvent ev = { .kind = DL_TRAIN_EVENT_CHECKPOINT,
                      .step = step,
                      .total_steps = t->settings->steps,
                      .path = exp,
                      .val_loss = t->last_val,
                      .best = step == t->best_step };
  dl_trainer_emit (t, &ev);
  return TRUE;
}

DlTrainer *
dl_trainer_new_resume (DlDevice *device, DlSdModel *model, const char *run_dir, const DlTrainSettings *given,
                       const char *const *given_names, GError **error)
{
  g_return_val_if_fail (device != NULL && run_dir != NULL, NULL);
  g_autofree char *path = g_build_filename (run_dir, "run.json", NULL);
  g_autofree char *text = NULL;
  if (!g_file_get_contents (path, &text, NULL, NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "--resume %s: not a run folder (no run.json)", run_dir);
      return NULL;
    }
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root = json_parser_load_from_data (parser, text, -1, NULL) ? json_parser_get_root (parser) : NULL;
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (!o || g_strcmp0 (json_object_get_string_member_with_default (o, "format", ""), "dreamloom-run") != 0 ||
      !json_object_has_member (o, "settings"))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: not a Dreamloom run description", path);
      return NULL;
    }
  g_autoptr (DlTrainSettings) saved = dl_train_settings_from_json (json_object_get_member (o, "settings"), error);
  if (!saved)
    {
      g_prefix_error (error, "“%s”: ", path);
      return NULL;
    }
  /* options given again must say what the run says, except those that do not
   * change the trained tensors (intervals, gradient checkpointing: what a run
   * stopped for lack of memory may need), which the new values replace */
  g_autoptr (GStrvBuilder) must_agree = g_strv_builder_new ();
  for (guint i = 0; given && given_names && given_names[i]; i++)
    {
      const char *name = given_names[i];
      if (!dl_train_settings_is_side_option (name))
        {
          g_strv_builder_add (must_agree, name);
          continue;
        }
      g_autofree char *v = dl_train_settings_get (given, name);
      if (g_str_equal (name, "sample-prompt"))
        {
          g_strfreev (saved->sample_prompts);
          saved->sample_prompts = g_strdupv (given->sample_prompts);
        }
      else if (!dl_train_settings_set (saved, name, v, error))
        {
          return NULL;
        }
    }
  g_auto (GStrv) names = g_strv_builder_end (must_agree);
  if (names[0])
    {
      g_autofree char *diff = dl_train_settings_diff (saved, given, (const char *const *)names);
      if (diff)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "--resume %s: the run was started with other settings (%s; the run's value first)", run_dir,
                       diff);
          return NULL;
        }
    }
  DlTrainer *t = dl_trainer_new (device, model, saved, error);
  if (!t)
    return NULL;
  /* the validation losses so far (those after the state resumed from are
   * dropped when its step is known: dl_trainer_read_state) */
  g_array_unref (t->validations);
  t->validations = dl_run_json_validations (o);
  /* the steps' losses so far (cut to the state's step as the validations
   * are); an unreadable log costs the curve, never the run */
  GArray *losses = dl_loss_log_read (run_dir, NULL);
  if (losses)
    {
      g_array_unref (t->losses);
      t->losses = losses;
    }
  g_free (t->run_dir);
  t->run_dir = g_strdup (run_dir);
  t->resuming = TRUE;
  return t;
}
