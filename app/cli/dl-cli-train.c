/* dl-cli-train.c: `dreamloom train` — a whole training run from the command
 * line: the trainer on a worker thread, its events as a progress line on
 * standard error and, with --log-json, one JSON object per event.  Given a
 * project (`dreamloom train PROJECT.dreamloom`), the settings saved in it, filled
 * in from the project (dl_project_make_train_settings), with the options given
 * on top, and the project's images and captions. */
#include "dl-config.h"

#include "dl-cli.h"

#include <errno.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dl-error.h"
#include "dl-project.h"
#include "io/dl-atomic-file.h"
#include "io/dl-json-write.h"
#include "train/dl-train-plan.h"
#include "train/dl-trainer.h"
#include "vk/dl-device.h"

typedef struct
{
  char *resume;
  char *log_json;
  gboolean plan;
  gboolean help;
  char *project;
  GPtrArray *names;  /* options given, in order */
  GPtrArray *values; /* their values (NULL for flags) */
} TrainArgs;

static void
train_args_clear (TrainArgs *a)
{
  g_free (a->resume);
  g_free (a->log_json);
  g_free (a->project);
  g_clear_pointer (&a->names, g_ptr_array_unref);
  g_clear_pointer (&a->values, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (TrainArgs, train_args_clear)

static gboolean
usage_error (GError **error, const char *option, const char *why)
{
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: %s", option, why);
  return FALSE;
}

/* --name VALUE, --name=VALUE, --flag; every bad option is named before any work */
static gboolean
parse_args (int argc, char **argv, TrainArgs *a, GError **error)
{
  a->names = g_ptr_array_new_with_free_func (g_free);
  a->values = g_ptr_array_new_with_free_func (g_free);
  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      if (!g_str_has_prefix (arg, "--"))
        {
          if (g_str_has_suffix (arg, ".dreamloom") && !a->project)
            {
              a->project = g_strdup (arg);
              continue;
            }
          return usage_error (error, arg, "not an option (options start with --)");
        }
      g_autofree char *name = g_strdup (arg + 2);
      char *eq = strchr (name, '=');
      const char *inline_value = NULL;
      if (eq)
        {
          *eq = '\0';
          inline_value = eq + 1;
        }
      if (g_str_equal (name, "help"))
        {
          a->help = TRUE;
          continue;
        }
      if (g_str_equal (name, "plan"))
        {
          a->plan = TRUE;
          continue;
        }
      gboolean is_flag = FALSE, own = g_str_equal (name, "resume") || g_str_equal (name, "log-json");
      if (!own && !dl_train_settings_has_option (name, &is_flag, NULL))
        return usage_error (error, arg, "no such option (see dreamloom train --help)");
      const char *value = inline_value;
      if (!is_flag && !value)
        {
          if (i + 1 >= argc)
            return usage_error (error, arg, "a value is needed");
          value = argv[++i];
        }
      if (g_str_equal (name, "resume"))
        {
          g_free (a->resume);
          a->resume = g_strdup (value);
        }
      else if (g_str_equal (name, "log-json"))
        {
          g_free (a->log_json);
          a->log_json = g_strdup (value);
        }
      else
        {
          g_ptr_array_add (a->names, g_steal_pointer (&name));
          g_ptr_array_add (a->values, g_strdup (value));
        }
    }
  return TRUE;
}

static DlTrainSettings *
settings_from_args (TrainArgs *a, GError **error)
{
  DlTrainMethod method = DL_TRAIN_LORA;
  for (guint i = 0; i < a->names->len; i++)
    if (g_str_equal (a->names->pdata[i], "method") && !dl_train_method_from_name (a->values->pdata[i], &method))
      {
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                     "--method %s: one of lora, textual-inversion, dreambooth, hypernetwork",
                     (char *)a->values->pdata[i]);
        return NULL;
      }
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (method);
  for (guint i = 0; i < a->names->len; i++)
    if (!dl_train_settings_set (s, a->names->pdata[i], a->values->pdata[i], error))
      return NULL;
  return g_steal_pointer (&s);
}

static gboolean
option_given (TrainArgs *a, const char *name)
{
  for (guint i = 0; i < a->names->len; i++)
    if (g_str_equal (a->names->pdata[i], name))
      return TRUE;
  return FALSE;
}

/* Prior preservation's options given without --class-prompt, even at their
 * defaults (which dl_train_settings_validate cannot tell from not given). */
static gboolean
check_prior_options (TrainArgs *a, const DlTrainSettings *s, GError **error)
{
  static const char *const prior[] = { "class-images", "num-class-images", "prior-weight" };
  for (guint i = 0; s->method == DL_TRAIN_DREAMBOOTH && !s->class_prompt && i < G_N_ELEMENTS (prior); i++)
    if (option_given (a, prior[i]))
      {
        g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                     "--%s: prior preservation needs --class-prompt as well", prior[i]);
        return FALSE;
      }
  return TRUE;
}

/* The project's settings with the options given on top, and its images and
 * captions (unless --images names a folder).  Errors name the project. */
static DlTrainSettings *
settings_from_project (TrainArgs *a, DlTrainMethod method, GStrv *paths, GStrv *captions, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_commandline_arg (a->project);
  g_autoptr (DlProject) project = dl_project_read (file, error);
  if (!project)
    return NULL;
  g_autoptr (DlTrainSettings) s = dl_project_make_train_settings (project);
  /* another method starts from that method's defaults */
  if (option_given (a, "method") && method != s->method)
    {
      dl_train_settings_free (s);
      s = dl_train_settings_new (method);
      dl_project_fill_train_settings (project, s);
    }
  for (guint i = 0; i < a->names->len; i++)
    if (!g_str_equal (a->names->pdata[i], "method") &&
        !dl_train_settings_set (s, a->names->pdata[i], a->values->pdata[i], error))
      return NULL;
  g_autofree char *name = g_file_get_basename (file);
  if (!s->model)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "“%s”: no base model is set (choose one in the studio, or give --model)", name);
      return NULL;
    }
  if (!option_given (a, "images") && !dl_project_dup_training_images (project, paths, captions, error))
    return NULL;
  return g_steal_pointer (&s);
}

/* ---- events ---- */

typedef struct
{
  FILE *log;
  gboolean tty;
  gboolean line_open; /* a progress line without its newline */
  gint64 last_print;
} Reporter;

static void
end_line (Reporter *r)
{
  if (r->line_open)
    {
      fputc ('\n', stderr);
      r->line_open = FALSE;
    }
}

static char *
format_eta (double s)
{
  if (!isfinite (s) || s < 0)
    return g_strdup ("--");
  gint64 t = (gint64)(s + 0.5);
  if (t >= 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT ":%02d:%02d", t / 3600, (int)(t / 60 % 60), (int)(t % 60));
  return g_strdup_printf ("%d:%02d", (int)(t / 60), (int)(t % 60));
}

static void
log_event (Reporter *r, const DlTrainEvent *ev)
{
  if (!r->log)
    return;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, dl_train_event_kind_name (ev->kind));
  json_builder_set_member_name (b, "step");
  json_builder_add_int_value (b, ev->step);
#define NUM(key, v)                           \
  do                                          \
    {                                         \
      json_builder_set_member_name (b, key);  \
      if (isfinite (v))                       \
        json_builder_add_double_value (b, v); \
      else                                    \
        json_builder_add_null_value (b);      \
    }                                         \
  while (0)
  switch (ev->kind)
    {
    case DL_TRAIN_EVENT_STEP:
      NUM ("loss", ev->loss);
      NUM ("lr", ev->lr);
      NUM ("grad_norm", ev->grad_norm);
      NUM ("images_per_s", ev->images_per_s);
      NUM ("eta_s", ev->eta_s);
      json_builder_set_member_name (b, "memory_bytes");
      json_builder_add_int_value (b, (gint64)ev->memory);
      break;
    case DL_TRAIN_EVENT_VALIDATION:
      NUM ("val_loss", ev->val_loss);
      json_builder_set_member_name (b, "best");
      json_builder_add_boolean_value (b, ev->best);
      break;
    case DL_TRAIN_EVENT_CHECKPOINT:
    case DL_TRAIN_EVENT_FINISHED:
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, ev->path);
      NUM ("val_loss", ev->val_loss);
      break;
    case DL_TRAIN_EVENT_PREVIEW:
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, ev->path);
      json_builder_set_member_name (b, "prompt");
      json_builder_add_string_value (b, ev->prompt);
      break;
    case DL_TRAIN_EVENT_WARNING:
    case DL_TRAIN_EVENT_ERROR:
    case DL_TRAIN_EVENT_STATUS:
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, ev->message);
      break;
    }
#undef NUM
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *line = dl_json_write (root, FALSE, NULL);
  fprintf (r->log, "%s\n", line);
  fflush (r->log);
}

static void
on_event (const DlTrainEvent *ev, gpointer data)
{
  Reporter *r = data;
  log_event (r, ev);
  switch (ev->kind)
    {
    case DL_TRAIN_EVENT_STEP:
      {
        g_autofree char *eta = format_eta (ev->eta_s);
        gint64 now = g_get_monotonic_time ();
        /* a tty gets a live line; a log one line per step, or per 10 s for long runs */
        if (!r->tty && ev->step != ev->total_steps && now - r->last_print < 10 * G_TIME_SPAN_SECOND &&
            ev->total_steps > 100)
          break;
        r->last_print = now;
        fprintf (stderr,
                 "%sstep %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT "  loss %.4f  lr %.3g  %.2f img/s  ETA %s  %.0f MiB%s",
                 r->tty ? "\r" : "", ev->step, ev->total_steps, ev->loss, ev->lr, ev->images_per_s, eta,
                 ev->memory / 1048576.0, r->tty ? "\033[K" : "\n");
        r->line_open = r->tty;
        break;
      }
    case DL_TRAIN_EVENT_VALIDATION:
      end_line (r);
      fprintf (stderr, "validation loss %.5f at step %" G_GINT64_FORMAT "%s\n", ev->val_loss, ev->step,
               ev->best ? " (best so far)" : "");
      break;
    case DL_TRAIN_EVENT_CHECKPOINT:
      end_line (r);
      fprintf (stderr, "checkpoint: %s\n", ev->path);
      break;
    case DL_TRAIN_EVENT_PREVIEW:
      end_line (r);
      fprintf (stderr, "preview: %s (%s)\n", ev->path, ev->prompt);
      break;
    case DL_TRAIN_EVENT_WARNING:
      end_line (r);
      fprintf (stderr, "dreamloom train: warning: %s\n", ev->message);
      break;
    case DL_TRAIN_EVENT_ERROR:
      end_line (r);
      fprintf (stderr, "dreamloom train: %s\n", ev->message);
      break;
    case DL_TRAIN_EVENT_STATUS:
      if (r->tty)
        {
          fprintf (stderr, "\r%s\033[K", ev->message);
          r->line_open = TRUE;
        }
      break;
    case DL_TRAIN_EVENT_FINISHED:
      end_line (r);
      printf ("%s\n", ev->path);
      fflush (stdout);
      break;
    }
}

/* ---- the run on a worker thread ---- */

typedef struct
{
  DlTrainer *trainer;
  GCancellable *cancellable;
  GMainLoop *loop;
  GError *error;
  gboolean ok;
} Run;

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gpointer
run_thread (gpointer data)
{
  Run *run = data;
  /* $DREAMLOOM_PROFILE=1: GPU time per shader over the whole run (serialises the work) */
  gboolean profile = g_strcmp0 (g_getenv ("DREAMLOOM_PROFILE"), "1") == 0;
  run->ok = dl_trainer_prepare (run->trainer, run->cancellable, &run->error);
  DlRecorder *rec = run->ok ? dl_sd_model_get_recorder (dl_trainer_get_model (run->trainer)) : NULL;
  if (rec && profile)
    dl_recorder_set_profiling (rec, TRUE);
  run->ok = run->ok && dl_trainer_run (run->trainer, run->cancellable, &run->error);
  if (rec && profile)
    {
      g_autofree char *prof = dl_recorder_format_profile (rec);
      fprintf (stderr, "%s", prof);
    }
  g_idle_add (quit_loop, run->loop);
  return NULL;
}

static gboolean
on_signal (gpointer data)
{
  Run *run = data;
  fprintf (stderr, "\ndreamloom train: stopping after this step (the last checkpoint is kept; --resume continues)\n");
  g_cancellable_cancel (run->cancellable);
  return G_SOURCE_CONTINUE;
}

static void
print_help (void)
{
  g_autofree char *opts = dl_train_settings_describe_options ();
  printf ("Usage:\n"
          "  dreamloom train --model MODEL --method lora|textual-inversion|dreambooth|hypernetwork --images DIR --out "
          "FILE [OPTION…]\n"
          "  dreamloom train PROJECT.dreamloom [OPTION…]\n"
          "  dreamloom train --resume RUN_DIR [OPTION…]\n\n"
          "Train a LoRA, a Textual Inversion embedding, a DreamBooth model or a hypernetwork.  Defaults make a\n"
          "good first run for 10-30 images "
          "on SD 1.5; where each comes from is said below.\n\n"
          "A project trains its images with their captions and the settings saved in it: its base model,\n"
          "its resolution, its concept token (the Textual Inversion placeholder) and caption template (the\n"
          "caption of images without one); out defaults to <project>-<method>.safetensors beside it.\n"
          "Options given override them.\n\n"
          "Options:\n%s"
          "  %-28s %s\n  %-28s %s\n  %-28s %s\n",
          opts, "--resume DIR", "Continue the run in DIR (its settings; options given again must agree)", "--plan",
          "Print the memory plan for these settings and stop", "--log-json FILE",
          "One JSON object per step, validation, preview and checkpoint");
}

int
dl_cli_train (int argc, char **argv)
{
  g_auto (TrainArgs) a = { 0 };
  g_autoptr (GError) error = NULL;
  if (!parse_args (argc, argv, &a, &error))
    {
      dl_cli_fail ("train", error);
      return 2;
    }
  if (a.help)
    {
      print_help ();
      return 0;
    }
  g_auto (GStrv) image_paths = NULL;
  g_auto (GStrv) image_captions = NULL;
  g_autoptr (DlTrainSettings) given = settings_from_args (&a, &error);
  if (!given)
    {
      dl_cli_fail ("train", error);
      return 2;
    }
  if (a.project)
    {
      /* the options were checked above: what fails now is the project */
      DlTrainMethod method = given->method;
      g_clear_pointer (&given, dl_train_settings_free);
      given = settings_from_project (&a, method, &image_paths, &image_captions, &error);
      if (!given)
        return dl_cli_fail ("train", error);
    }
  if (!a.resume && (!dl_train_settings_validate (given, &error) || !check_prior_options (&a, given, &error)))
    {
      dl_cli_fail ("train", error);
      return 2;
    }
  g_autoptr (DlDevice) device = dl_device_new (NULL, &error);
  if (!device)
    return dl_cli_fail ("train", error);
  if (a.plan)
    {
      g_autoptr (DlTrainPlan) plan = dl_train_plan_new (device, given, &error);
      if (!plan)
        return dl_cli_fail ("train", error);
      g_autofree char *text = dl_train_plan_describe (plan);
      fputs (text, stdout);
      return dl_train_plan_fits (plan) ? 0 : 1;
    }
  g_autoptr (DlTrainer) trainer = NULL;
  if (a.resume)
    {
      g_ptr_array_add (a.names, NULL);
      trainer = dl_trainer_new_resume (device, NULL, a.resume, given, (const char *const *)a.names->pdata, &error);
    }
  else
    {
      g_autoptr (DlTrainPlan) plan = dl_train_plan_new (device, given, &error);
      if (!plan)
        return dl_cli_fail ("train", error);
      if (!dl_train_plan_fits (plan))
        {
          g_autofree char *text = dl_train_plan_describe (plan);
          fputs (text, stderr);
          g_set_error_literal (&error, DL_ERROR, DL_ERROR_OUT_OF_DEVICE_MEMORY,
                               "these settings need more device memory than there is (see the plan above)");
          return dl_cli_fail ("train", error);
        }
      trainer = dl_trainer_new (device, NULL, given, &error);
    }
  if (!trainer)
    return dl_cli_fail ("train", error);
  /* a project's run resumed by its folder: the images and captions are the project's */
  const char *run_images = dl_trainer_get_settings (trainer)->images;
  if (!image_paths && run_images && g_str_has_suffix (run_images, ".dreamloom"))
    {
      g_autoptr (GFile) file = g_file_new_for_path (run_images);
      g_autoptr (DlProject) project = dl_project_read (file, &error);
      if (!project || !dl_project_dup_training_images (project, &image_paths, &image_captions, &error))
        return dl_cli_fail ("train", error);
    }
  if (image_paths)
    dl_trainer_set_images (trainer, (const char *const *)image_paths, (const char *const *)image_captions,
                           g_strv_length (image_paths));
  Reporter rep = { .tty = isatty (fileno (stderr)) };
  if (a.log_json)
    {
      rep.log = fopen (a.log_json, "a");
      if (!rep.log)
        {
          g_set_error (&error, DL_ERROR, DL_ERROR_IO, "--log-json %s: %s", a.log_json, g_strerror (errno));
          return dl_cli_fail ("train", error);
        }
    }
  dl_trainer_set_event_func (trainer, on_event, &rep, NULL);
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Run run = { .trainer = trainer, .cancellable = cancellable, .loop = loop };
  guint s1 = g_unix_signal_add (SIGINT, on_signal, &run);
  guint s2 = g_unix_signal_add (SIGTERM, on_signal, &run);
  GThread *thread = g_thread_new ("trainer", run_thread, &run);
  g_main_loop_run (loop);
  g_thread_join (thread);
  g_source_remove (s1);
  g_source_remove (s2);
  end_line (&rep);
  if (rep.log)
    fclose (rep.log);
  if (!run.ok)
    {
      int status = dl_cli_fail ("train", run.error);
      if (g_error_matches (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
          g_error_matches (run.error, DL_ERROR, DL_ERROR_CANCELLED))
        status = 130;
      g_error_free (run.error);
      return status;
    }
  return 0;
}
