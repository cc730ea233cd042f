/* dl-train-page.c: see dl-train-page.h. */
#include "dl-config.h"

#include "dl-train-page.h"

#include "dl-row-text.h"
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "dl-application.h"
#include "dl-file-dialog.h"
#include "dl-settings.h"
#include "dl-toast.h"
#include "dl-train-export.h"
#include "io/dl-file-util.h"
#include "train/dl-kohya-job.h"
#include "train/dl-run-info.h"

#define PLAN_DELAY_MS 400

/* the page's keys, as the shortcuts window lists them under Training */
static const struct
{
  const char *accel, *action, *target;
} shortcuts[] = {
  { "<Control>Return", "train.start", NULL },
  { "<Control><Shift>Return", "train.continue", NULL },
  { "<Control>space", "train.pause", NULL },
  { "<Control>period", "train.stop", NULL },
  { "<Control>e", "train.export", NULL },
  { "<Control><Shift>h", "train.export-precision", "f16" },
  { "<Control><Shift>f", "train.export-precision", "f32" },
  { "<Control><Shift>e", "train.export-diffusers", NULL },
  { "<Control><Shift>k", "train.export-kohya", NULL },
  { "<Control><Shift>l", "train.save-log", NULL },
  { "<Control>m", "train.make-fit", NULL },
};

struct _DlTrainPage
{
  GtkWidget parent_instance;

  GtkRevealer *continue_revealer;
  GtkLabel *continue_label;
  GtkLabel *status_label;
  GtkLabel *detail_label;
  GtkProgressBar *progress;
  GtkWidget *train_button;
  GtkToggleButton *pause_button;
  GtkWidget *stop_button;
  GtkListBox *warnings_list;
  GtkBox *curve_box;
  GtkScale *smoothing_scale;
  GtkToggleButton *log_toggle, *lr_toggle, *follow_toggle;
  GtkBox *previews_box;
  AdwPreferencesGroup *checkpoints_group;
  AdwActionRow *plan_row;
  GtkWidget *fit_button;
  GtkBox *form_box;

  DlTrainForm *form;
  DlLossCurve *curve;
  DlTrainPreviews *previews;
  DlCheckpointList *checkpoints;
  GSimpleActionGroup *actions;

  DlProject *project;
  DlEngineSession *session;
  GSettings *settings;
  DlTrainJob *job;
  GSignalGroup *job_signals;     /* the job's, while the page shows it */
  DlTrainSettings *run_settings; /* of the job, or of the run that can be continued */
  char *run_dir;
  char *last_file; /* newest export: final, else the latest checkpoint */
  GPtrArray *warnings;
  DlTrainPlan *plan;
  GCancellable *plan_cancel;
  guint plan_timeout;
  gboolean syncing;
  GListModel *images;   /* the project's dataset, for its size */
  guint n_images;       /* the size the steps were last fitted to */
  DlTrainMethod method; /* the method the form last had */
};

G_DEFINE_FINAL_TYPE (DlTrainPage, dl_train_page, GTK_TYPE_WIDGET)

static void sync_actions (DlTrainPage *self);
static void update_plan (DlTrainPage *self);

/* ---- session, status ---- */

static DlEngineSession *
session (DlTrainPage *self)
{
  if (!self->session)
    {
      GApplication *app = g_application_get_default ();
      if (DL_IS_APPLICATION (app))
        self->session = g_object_ref (dl_application_get_engine_session (DL_APPLICATION (app)));
      else
        self->session = dl_engine_session_new ();
    }
  return self->session;
}

static char *
device_selector (DlTrainPage *self)
{
  return self->settings ? g_settings_get_string (self->settings, "device") : NULL;
}

static void
set_status (DlTrainPage *self, const char *status, const char *detail)
{
  gtk_label_set_text (self->status_label, status);
  gtk_label_set_text (self->detail_label, detail ? detail : "");
  gtk_widget_set_visible (GTK_WIDGET (self->detail_label), detail && *detail);
}

static void
show_error (DlTrainPage *self, const char *what, const GError *error)
{
  set_status (self, what, error ? error->message : NULL);
  gtk_widget_add_css_class (GTK_WIDGET (self->status_label), "error");
}

static char *
format_duration (double s)
{
  if (!isfinite (s) || s < 0)
    return g_strdup ("");
  if (s < 90)
    /* Translators: a time left, in seconds */
    return g_strdup_printf (_ ("%.0f s"), s);
  if (s < 5400)
    /* Translators: a time left, in minutes */
    return g_strdup_printf (_ ("%.0f min"), s / 60);
  /* Translators: a time left, in hours */
  return g_strdup_printf (_ ("%.1f h"), s / 3600);
}

static void
add_warning (DlTrainPage *self, const char *text)
{
  g_ptr_array_add (self->warnings, g_strdup (text));
  GtkWidget *row = adw_action_row_new ();
  dl_row_set_title (row, text);
  GtkWidget *icon = gtk_image_new_from_icon_name ("dialog-warning-symbolic");
  gtk_widget_add_css_class (icon, "warning");
  adw_action_row_add_prefix (ADW_ACTION_ROW (row), icon);
  gtk_list_box_append (self->warnings_list, row);
  gtk_widget_set_visible (GTK_WIDGET (self->warnings_list), TRUE);
}

static void
clear_run_view (DlTrainPage *self)
{
  dl_loss_curve_clear (self->curve);
  dl_train_previews_clear (self->previews);
  dl_checkpoint_list_clear (self->checkpoints);
  g_ptr_array_set_size (self->warnings, 0);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->warnings_list))))
    gtk_list_box_remove (self->warnings_list, child);
  gtk_widget_set_visible (GTK_WIDGET (self->warnings_list), FALSE);
  g_clear_pointer (&self->last_file, g_free);
}

/* ---- the job's events ---- */

static char *
state_path (const char *run_dir, gint64 step)
{
  g_autofree char *name = g_strdup_printf ("state-%08" G_GINT64_FORMAT ".safetensors", step);
  return g_build_filename (run_dir, name, NULL);
}

static void
on_event (DlTrainJob *job, const DlTrainEvent *ev, DlTrainPage *self)
{
  (void)job;
  switch (ev->kind)
    {
    case DL_TRAIN_EVENT_STATUS:
      set_status (self, ev->message, NULL);
      if (ev->progress >= 0)
        gtk_progress_bar_set_fraction (self->progress, ev->progress);
      else
        gtk_progress_bar_pulse (self->progress);
      break;
    case DL_TRAIN_EVENT_STEP:
      {
        dl_loss_curve_add_step (self->curve, ev->step, ev->loss, ev->lr);
        g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, ev->step);
        g_autofree char *total = g_strdup_printf ("%" G_GINT64_FORMAT, ev->total_steps);
        /* Translators: the step a run is at, and its number of steps */
        g_autofree char *status = g_strdup_printf (_ ("Step %s of %s"), step, total);
        g_autofree char *eta = format_duration (ev->eta_s);
        g_autofree char *detail =
          *eta ? g_strdup_printf (_ ("Loss %.4f · %.2f images/s · %s left · %.1f GB of GPU memory"), ev->loss,
                                  ev->images_per_s, eta, ev->memory / 1e9)
               : g_strdup_printf (_ ("Loss %.4f · %.2f images/s · %.1f GB of GPU memory"), ev->loss, ev->images_per_s,
                                  ev->memory / 1e9);
        if (dl_train_job_get_state (self->job) == DL_TRAIN_JOB_PAUSED)
          set_status (self, _ ("Paused"), status);
        else
          set_status (self, status, detail);
        gtk_progress_bar_set_fraction (self->progress, (double)ev->step / MAX (1, ev->total_steps));
        break;
      }
    case DL_TRAIN_EVENT_VALIDATION:
      dl_loss_curve_add_validation (self->curve, ev->step, ev->val_loss);
      dl_train_previews_add_validation (self->previews, ev->step, ev->val_loss);
      if (ev->best)
        {
          dl_loss_curve_set_best (self->curve, ev->step);
          dl_checkpoint_list_set_best (self->checkpoints, ev->step);
        }
      break;
    case DL_TRAIN_EVENT_PREVIEW:
      dl_train_previews_add (self->previews, ev->step, ev->index, ev->prompt, ev->path);
      break;
    case DL_TRAIN_EVENT_CHECKPOINT:
      {
        g_autofree char *state = state_path (self->run_dir, ev->step);
        dl_checkpoint_list_add (self->checkpoints, ev->step, ev->path, state, ev->val_loss);
        g_free (self->last_file);
        self->last_file = g_strdup (ev->path);
        break;
      }
    case DL_TRAIN_EVENT_WARNING:
      add_warning (self, ev->message);
      break;
    case DL_TRAIN_EVENT_ERROR:
      add_warning (self, ev->message);
      break;
    case DL_TRAIN_EVENT_FINISHED:
      g_free (self->last_file);
      self->last_file = g_strdup (ev->path);
      break;
    }
}

void
dl_train_notify_end (DlTrainJob *job)
{
  g_return_if_fail (DL_IS_TRAIN_JOB (job));
  GApplication *app = g_application_get_default ();
  if (!app)
    return;
  DlTrainJobState st = dl_train_job_get_state (job);
  const GError *e = dl_train_job_get_error (job);
  const char *out = dl_train_job_get_settings (job)->out;
  g_autoptr (GNotification) n = g_notification_new (st == DL_TRAIN_JOB_FINISHED  ? _ ("Training finished")
                                                    : st == DL_TRAIN_JOB_STOPPED ? _ ("Training stopped")
                                                                                 : _ ("Training failed"));
  g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, dl_train_job_get_step (job));
  g_autofree char *total = g_strdup_printf ("%" G_GINT64_FORMAT, dl_train_job_get_total_steps (job));
  /* Translators: %s is the file training wrote */
  g_autofree char *body = e                                    ? g_strdup (e->message)
                          : st == DL_TRAIN_JOB_FINISHED && out ? g_strdup_printf (_ ("Written: %s"), out)
                                                               : g_strdup_printf (_ ("Step %s of %s"), step, total);
  g_notification_set_body (n, body);
  g_application_send_notification (app, "training", n);
}

/* the notification, when the window is not the one the user looks at */
static void
notify_end (DlTrainPage *self, DlTrainJob *job)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  if (GTK_IS_WINDOW (root) && gtk_window_is_active (GTK_WINDOW (root)) && gtk_widget_get_mapped (GTK_WIDGET (root)))
    return;
  dl_train_notify_end (job);
}

static void read_run (DlTrainPage *self);

static void
on_finished (DlTrainJob *job, DlTrainPage *self)
{
  gtk_widget_set_visible (GTK_WIDGET (self->progress), FALSE);
  dl_checkpoint_list_set_can_delete (self->checkpoints, TRUE);
  switch (dl_train_job_get_state (job))
    {
    case DL_TRAIN_JOB_FINISHED:
      {
        g_autofree char *base = g_path_get_basename (self->last_file ? self->last_file : "");
        g_autofree char *detail = g_strdup_printf (_ ("Written: %s"), self->last_file ? self->last_file : "");
        set_status (self, _ ("Training finished"), detail);
        /* Translators: %s is the name of the file training wrote */
        g_autofree char *toast = g_strdup_printf (_ ("Training finished: %s"), base);
        dl_toast_show (GTK_WIDGET (self), toast, NULL);
        notify_end (self, job);
        break;
      }
    case DL_TRAIN_JOB_STOPPED:
      set_status (self, _ ("Stopped"), _ ("The last checkpoint is kept: Continue goes on from it"));
      notify_end (self, job);
      break;
    default:
      show_error (self, _ ("Training stopped with an error"), dl_train_job_get_error (job));
      notify_end (self, job);
      break;
    }
  dl_train_form_set_locked (self->form, FALSE);
  read_run (self);
  sync_actions (self);
}

static void
on_job_state (DlTrainJob *job, GParamSpec *pspec, DlTrainPage *self)
{
  (void)pspec;
  self->syncing = TRUE;
  gtk_toggle_button_set_active (self->pause_button, dl_train_job_get_state (job) == DL_TRAIN_JOB_PAUSED);
  self->syncing = FALSE;
  if (dl_train_job_get_state (job) == DL_TRAIN_JOB_PAUSED)
    {
      g_autofree char *was = g_strdup (gtk_label_get_text (self->status_label));
      set_status (self, _ ("Paused"), was);
    }
  sync_actions (self);
}

static void
watch_job (DlTrainPage *self, DlTrainJob *job, const DlTrainSettings *settings, const char *run_dir)
{
  g_set_object (&self->job, job);
  g_signal_group_set_target (self->job_signals, job);
  g_clear_pointer (&self->run_settings, dl_train_settings_free);
  self->run_settings = dl_train_settings_copy (settings);
  g_free (self->run_dir);
  self->run_dir = g_strdup (run_dir);
  gtk_widget_remove_css_class (GTK_WIDGET (self->status_label), "error");
  set_status (self, _ ("Starting…"), NULL);
  gtk_widget_set_visible (GTK_WIDGET (self->progress), TRUE);
  gtk_progress_bar_set_fraction (self->progress, 0);
  gtk_revealer_set_reveal_child (self->continue_revealer, FALSE);
  dl_train_form_set_locked (self->form, TRUE);
  dl_checkpoint_list_set_can_delete (self->checkpoints, FALSE);
  dl_checkpoint_list_set_can_use (self->checkpoints, settings->method == DL_TRAIN_LORA);
  sync_actions (self);
}

/* ---- the project's run ---- */

/* what the project's run folder says: checkpoints, validations, Continue */
static void
read_run (DlTrainPage *self)
{
  if (!self->project || dl_train_page_is_training (self))
    return;
  g_autoptr (DlTrainSettings) filled = dl_project_make_train_settings (self->project);
  g_autofree char *dir = self->run_dir ? g_strdup (self->run_dir) : dl_train_settings_run_dir (filled);
  g_autoptr (DlRunInfo) info = dl_run_info_read (dir, NULL);
  gboolean can = info && dl_run_info_can_continue (info);
  if (info)
    {
      g_free (self->run_dir);
      self->run_dir = g_strdup (dir);
      g_clear_pointer (&self->run_settings, dl_train_settings_free);
      self->run_settings = dl_train_settings_copy (info->settings);
      if (!self->job)
        {
          /* reopened: what the run left */
          dl_checkpoint_list_clear (self->checkpoints);
          for (guint i = 0; i < info->checkpoints->len; i++)
            {
              DlRunCheckpoint *c = info->checkpoints->pdata[i];
              if (g_file_test (c->file, G_FILE_TEST_EXISTS))
                dl_checkpoint_list_add (self->checkpoints, c->step, c->file, c->state, c->val_loss);
            }
          dl_checkpoint_list_set_best (self->checkpoints, info->best_step);
          dl_checkpoint_list_set_can_use (self->checkpoints, info->settings->method == DL_TRAIN_LORA);
          dl_loss_curve_clear (self->curve);
          for (guint i = 0; i < info->losses->len; i++)
            {
              const DlLossEntry *e = &g_array_index (info->losses, DlLossEntry, i);
              dl_loss_curve_add_step (self->curve, e->step, e->loss, e->lr);
            }
          for (guint i = 0; i < info->validations->len; i++)
            {
              const DlTrainValidation *v = &g_array_index (info->validations, DlTrainValidation, i);
              dl_loss_curve_add_validation (self->curve, v->step, v->loss);
            }
          if (info->best_step >= 0)
            dl_loss_curve_set_best (self->curve, info->best_step);
          g_free (self->last_file);
          self->last_file =
            info->finished ? g_strdup (info->settings->out)
            : info->checkpoints->len
              ? g_strdup (((DlRunCheckpoint *)info->checkpoints->pdata[info->checkpoints->len - 1])->file)
              : NULL;
        }
    }
  if (can)
    {
      g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, info->step);
      g_autofree char *total = g_strdup_printf ("%" G_GINT64_FORMAT, info->settings->steps);
      g_autofree char *text = g_strdup_printf (_ ("A run stopped at step %s of %s before it finished. Continue goes on "
                                                  "from there exactly as if it had never stopped."),
                                               step, total);
      gtk_label_set_text (self->continue_label, text);
    }
  gtk_revealer_set_reveal_child (self->continue_revealer, can);
  sync_actions (self);
}

/* A new run's files: <project folder>/<title>-<method>[-N].<ext> and its
 * .run folder, N the first that no earlier run uses. */
/* the run's previews are drawn as the Previews page draws: its sampler, seed and guidance */
static void
use_preview_preferences (DlTrainPage *self, DlTrainSettings *s)
{
  if (!self->settings)
    return;
  g_autofree char *sampler = g_settings_get_string (self->settings, "preview-sampler");
  g_autofree char *seed = g_strdup_printf ("%" G_GINT64_FORMAT, g_settings_get_int64 (self->settings, "preview-seed"));
  char cfg[G_ASCII_DTOSTR_BUF_SIZE]; /* not the locale's decimal comma */
  g_ascii_dtostr (cfg, sizeof cfg, g_settings_get_double (self->settings, "preview-cfg"));
  /* each value was checked by the schema; one the trainer still refuses keeps the trainer's default */
  dl_train_settings_set (s, "sample-sampler", sampler, NULL);
  dl_train_settings_set (s, "sample-seed", seed, NULL);
  dl_train_settings_set (s, "sample-cfg", cfg, NULL);
}

static void
fresh_run (DlTrainPage *self, DlTrainSettings *s)
{
  g_autoptr (GFile) file =
    dl_project_get_file (self->project) ? g_object_ref (dl_project_get_file (self->project)) : NULL;
  g_autofree char *dir = file ? g_path_get_dirname (g_file_peek_path (file)) : g_get_current_dir ();
  g_autofree char *title = dl_project_dup_title (self->project);
  const char *ext = s->method == DL_TRAIN_TEXTUAL_INVERSION ? ".safetensors"
                    : s->method == DL_TRAIN_HYPERNETWORK    ? ".pt"
                                                            : ".safetensors";
  for (int n = 1;; n++)
    {
      g_autofree char *stem = n == 1 ? g_strdup_printf ("%s-%s", title, dl_train_method_name (s->method))
                                     : g_strdup_printf ("%s-%s-%d", title, dl_train_method_name (s->method), n);
      g_autofree char *name = g_strconcat (stem, ext, NULL);
      g_autofree char *out = g_build_filename (dir, name, NULL);
      g_autofree char *run_name = g_strconcat (stem, ".run", NULL);
      g_autofree char *run = g_build_filename (dir, run_name, NULL);
      if (!g_file_test (out, G_FILE_TEST_EXISTS) && !g_file_test (run, G_FILE_TEST_EXISTS))
        {
          g_free (s->out);
          s->out = g_strdup (out);
          g_clear_pointer (&s->run_dir, g_free);
          return;
        }
    }
}

gboolean
dl_train_page_start (DlTrainPage *self, GError **error)
{
  g_return_val_if_fail (DL_IS_TRAIN_PAGE (self), FALSE);
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) paths = NULL;
  g_auto (GStrv) captions = NULL;
  if (!self->project)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("No project is open"));
      return FALSE;
    }
  if (dl_train_page_is_training (self))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_BUSY, _ ("A run is in progress"));
      return FALSE;
    }
  if (!dl_project_get_base_model (self->project))
    {
      g_set_error_literal (&local, G_IO_ERROR, G_IO_ERROR_FAILED,
                           _ ("Choose a base model on the Base Model page first"));
      goto fail;
    }
  if (!dl_train_form_is_valid (self->form))
    {
      g_set_error_literal (&local, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, dl_train_form_get_problem (self->form));
      goto fail;
    }
  if (!dl_project_dup_training_images (self->project, &paths, &captions, &local))
    goto fail;
  if (self->plan && !dl_train_plan_fits (self->plan))
    {
      g_autofree char *d = dl_train_plan_describe (self->plan);
      g_set_error (&local, G_IO_ERROR, G_IO_ERROR_NO_SPACE, _ ("This run does not fit the GPU’s memory: %s"), d);
      goto fail;
    }
  {
    g_autoptr (DlTrainSettings) s = dl_project_make_train_settings (self->project);
    fresh_run (self, s);
    s->sample_first = TRUE; /* the base column */
    use_preview_preferences (self, s);
    /* the project remembers the run (Continue after a crash finds it) and how it previews (a headless
     * `dreamloom train PROJECT` draws the same previews) */
    g_autoptr (DlTrainSettings) kept = dl_train_settings_copy (dl_project_get_train_settings (self->project));
    use_preview_preferences (self, kept);
    g_free (kept->out);
    kept->out = g_strdup (s->out);
    g_clear_pointer (&kept->run_dir, g_free);
    dl_project_set_train_settings (self->project, kept);
    g_autofree char *device = device_selector (self);
    g_autoptr (DlTrainJob) job = dl_engine_session_train (session (self), s, (const char *const *)paths,
                                                          (const char *const *)captions, NULL, device, &local);
    if (!job)
      goto fail;
    clear_run_view (self);
    g_autofree char *run_dir = dl_train_settings_run_dir (s);
    watch_job (self, job, s, run_dir);
  }
  return TRUE;
fail:
  show_error (self, _ ("Training cannot start"), local);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

gboolean
dl_train_page_can_continue (DlTrainPage *self)
{
  return gtk_revealer_get_reveal_child (self->continue_revealer) && !dl_train_page_is_training (self);
}

gboolean
dl_train_page_continue (DlTrainPage *self, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_auto (GStrv) paths = NULL;
  g_auto (GStrv) captions = NULL;
  if (!dl_train_page_can_continue (self) || !self->run_dir || !self->run_settings)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("There is no interrupted run to continue"));
      return FALSE;
    }
  if (!dl_project_dup_training_images (self->project, &paths, &captions, &local))
    goto fail;
  {
    g_autofree char *device = device_selector (self);
    g_autofree char *run_dir = g_strdup (self->run_dir);
    g_autoptr (DlTrainSettings) s = dl_train_settings_copy (self->run_settings);
    g_autoptr (DlTrainJob) job = dl_engine_session_train (session (self), s, (const char *const *)paths,
                                                          (const char *const *)captions, run_dir, device, &local);
    if (!job)
      goto fail;
    watch_job (self, job, s, run_dir);
  }
  return TRUE;
fail:
  show_error (self, _ ("The run cannot continue"), local);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

/* ---- exports ---- */

gboolean
dl_train_page_export_to (DlTrainPage *self, const char *path, GError **error)
{
  if (!self->last_file || !self->run_settings)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _ ("Nothing to export yet: train first"));
      return FALSE;
    }
  return dl_train_export_file (self->run_settings, self->last_file, path, self->run_settings->save_dtype, error);
}

gboolean
dl_train_page_export_as (DlTrainPage *self, const char *path, DlStDType dtype, GError **error)
{
  g_return_val_if_fail (DL_IS_TRAIN_PAGE (self), FALSE);
  if (!self->last_file || !self->run_settings)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _ ("Nothing to export yet: train first"));
      return FALSE;
    }
  return dl_train_export_file (self->run_settings, self->last_file, path, dtype, error);
}

gboolean
dl_train_page_export_diffusers_to (DlTrainPage *self, const char *dir, GError **error)
{
  g_return_val_if_fail (DL_IS_TRAIN_PAGE (self), FALSE);
  if (!self->last_file || !self->run_settings || self->run_settings->method != DL_TRAIN_DREAMBOOTH)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           _ ("No DreamBooth model to export yet: train first"));
      return FALSE;
    }
  g_autofree char *folder = g_str_has_suffix (dir, "/") ? g_strdup (dir) : g_strconcat (dir, "/", NULL);
  return dl_train_export_file (self->run_settings, self->last_file, folder, self->run_settings->save_dtype, error);
}

gboolean
dl_train_page_export_kohya_to (DlTrainPage *self, const char *dir, GError **error)
{
  if (!self->project)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _ ("No project is open"));
      return FALSE;
    }
  g_auto (GStrv) paths = NULL;
  g_auto (GStrv) captions = NULL;
  if (!dl_project_dup_training_images (self->project, &paths, &captions, error))
    return FALSE;
  g_autoptr (DlTrainSettings) s = dl_project_make_train_settings (self->project);
  return dl_kohya_job_write (s, (const char *const *)paths, (const char *const *)captions, g_strv_length (paths), dir,
                             error);
}

static void
show_in_files (DlTrainPage *self, const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GFile) f = g_file_new_for_path (dir);
  g_autofree char *uri = g_file_get_uri (f);
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  gtk_show_uri (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL, uri, GDK_CURRENT_TIME);
}

static void
exported (DlTrainPage *self, const char *path, gboolean ok, const GError *error)
{
  if (!ok)
    {
      g_autofree char *msg = g_strdup_printf (_ ("Could not export: %s"), error->message);
      dl_toast_show (GTK_WIDGET (self), msg, NULL);
      return;
    }
  g_autofree char *base = g_path_get_basename (path);
  /* Translators: %s is the name of the file or folder exported */
  g_autofree char *msg = g_strdup_printf (_ ("Exported %s"), base);
  AdwToast *t = dl_toast_show (GTK_WIDGET (self), msg, NULL);
  if (t)
    {
      adw_toast_set_button_label (t, _ ("Show in Files"));
      adw_toast_set_action_name (t, "train.show-file");
      adw_toast_set_action_target_value (t, g_variant_new_string (path));
    }
}

typedef struct
{
  DlTrainPage *self;
  char *source;    /* NULL: the newest file */
  DlStDType dtype; /* the run's save_dtype: as trained */
} ExportCtx;

static void
export_picked (GtkWidget *owner, GPtrArray *files, gpointer data)
{
  ExportCtx *ctx = data;
  DlTrainPage *self = DL_TRAIN_PAGE (owner);
  if (files && files->len)
    {
      g_autofree char *path = g_file_get_path (files->pdata[0]);
      g_autoptr (GError) error = NULL;
      const char *from = ctx->source ? ctx->source : self->last_file;
      gboolean ok = from ? dl_train_export_file (self->run_settings, from, path, ctx->dtype, &error)
                         : dl_train_page_export_to (self, path, &error);
      exported (self, path, ok, error);
    }
  g_free (ctx->source);
  g_free (ctx);
}

static void
run_export_dialog (DlTrainPage *self, const char *source, const char *precision)
{
  const char *from = source ? source : self->last_file;
  if (!from || !self->run_settings)
    {
      dl_toast_show (GTK_WIDGET (self), _ ("Nothing to export yet: train first"), NULL);
      return;
    }
  g_autoptr (GListStore) filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  const DlTrainMethod m = self->run_settings->method;
  struct
  {
    const char *name, *pattern;
  } forms[3] = { { 0 } };
  if (m == DL_TRAIN_TEXTUAL_INVERSION)
    {
      forms[0].name = _ ("Embedding for AUTOMATIC1111 (.pt)"), forms[0].pattern = "*.pt";
      forms[1].name = _ ("Embedding (.safetensors)"), forms[1].pattern = "*.safetensors";
      forms[2].name = _ ("diffusers (learned_embeds.safetensors)"), forms[2].pattern = "learned_embeds.safetensors";
    }
  else if (m == DL_TRAIN_HYPERNETWORK)
    {
      forms[0].name = _ ("Hypernetwork for AUTOMATIC1111 (.pt)"), forms[0].pattern = "*.pt";
    }
  else
    {
      forms[0].name = m == DL_TRAIN_LORA ? _ ("LoRA for AUTOMATIC1111, ComfyUI and diffusers (.safetensors)")
                                         : _ ("Checkpoint for AUTOMATIC1111 and ComfyUI (.safetensors)");
      forms[0].pattern = "*.safetensors";
    }
  for (int i = 0; i < 3 && forms[i].name; i++)
    {
      g_autoptr (GtkFileFilter) f = gtk_file_filter_new ();
      gtk_file_filter_set_name (f, forms[i].name);
      gtk_file_filter_add_pattern (f, forms[i].pattern);
      g_list_store_append (filters, f);
    }
  g_autofree char *name = g_path_get_basename (from);
  ExportCtx *ctx = g_new0 (ExportCtx, 1);
  ctx->self = self;
  ctx->source = g_strdup (source);
  ctx->dtype = g_strcmp0 (precision, "f32") == 0   ? DL_ST_F32
               : g_strcmp0 (precision, "f16") == 0 ? DL_ST_F16
                                                   : self->run_settings->save_dtype;
  dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_SAVE, _ ("Export"), _ ("_Export"), G_LIST_MODEL (filters), NULL,
                      name, export_picked, ctx);
}

static void
kohya_picked (GtkWidget *owner, GPtrArray *files, gpointer data)
{
  (void)data;
  DlTrainPage *self = DL_TRAIN_PAGE (owner);
  if (!files || !files->len)
    return;
  g_autofree char *parent = g_file_get_path (files->pdata[0]);
  g_autofree char *title = dl_project_dup_title (self->project);
  g_autofree char *name = g_strdup_printf ("%s-kohya-job", title);
  g_autofree char *dir = g_build_filename (parent, name, NULL);
  g_autoptr (GError) error = NULL;
  exported (self, dir, dl_train_page_export_kohya_to (self, dir, &error), error);
}

/* ---- actions ---- */

static void
action_start (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  dl_train_page_start (data, NULL);
}

static void
action_continue (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  dl_train_page_continue (data, NULL);
}

static void
action_pause (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  DlTrainPage *self = data;
  if (!self->job || self->syncing)
    return;
  if (dl_train_job_get_state (self->job) == DL_TRAIN_JOB_PAUSED)
    dl_train_job_unpause (self->job);
  else
    dl_train_job_pause (self->job);
}

static void
action_stop (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  DlTrainPage *self = data;
  if (self->job)
    {
      dl_train_job_stop (self->job);
      set_status (self, _ ("Stopping after this step…"), NULL);
    }
}

static void
action_export (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  run_export_dialog (data, NULL, NULL);
}

/* a LoRA in the other precision: "f16" or "f32" */
static void
action_export_precision (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  run_export_dialog (data, NULL, g_variant_get_string (p, NULL));
}

static void
diffusers_picked (GtkWidget *owner, GPtrArray *files, gpointer data)
{
  (void)data;
  DlTrainPage *self = DL_TRAIN_PAGE (owner);
  if (!files || !files->len)
    return;
  g_autofree char *path = g_file_get_path (files->pdata[0]);
  g_autoptr (GError) error = NULL;
  exported (self, path, dl_train_page_export_diffusers_to (self, path, &error), error);
}

/* a DreamBooth model as a diffusers folder */
static void
action_export_diffusers (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  DlTrainPage *self = data;
  if (!self->last_file)
    return;
  g_autofree char *stem = dl_file_stem (self->last_file);
  g_autofree char *name = g_strdup_printf ("%s-diffusers", stem);
  dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_SAVE, _ ("Export as a diffusers Folder"), _ ("_Export"), NULL,
                      NULL, name, diffusers_picked, NULL);
}

static void
action_export_kohya (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  dl_file_dialog_run (GTK_WIDGET (data), DL_FILE_DIALOG_FOLDER, _ ("Export Job for kohya sd-scripts"),
                      _ ("_Export Here"), NULL, NULL, NULL, kohya_picked, NULL);
}

static void
log_picked (GtkWidget *owner, GPtrArray *files, gpointer data)
{
  (void)data;
  DlTrainPage *self = DL_TRAIN_PAGE (owner);
  if (!files || !files->len)
    return;
  g_autofree char *path = g_file_get_path (files->pdata[0]);
  g_autoptr (GError) error = NULL;
  gboolean ok = dl_loss_series_write_csv (dl_loss_curve_get_series (self->curve), path, &error);
  exported (self, path, ok, error);
}

static void
action_save_log (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  DlTrainPage *self = data;
  g_autofree char *title = self->project ? dl_project_dup_title (self->project) : g_strdup ("training");
  g_autofree char *name = g_strdup_printf ("%s-loss.csv", title);
  dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_SAVE, _ ("Save the Log"), _ ("_Save"), NULL, NULL, name,
                      log_picked, NULL);
}

static void
action_show_file (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  show_in_files (data, g_variant_get_string (p, NULL));
}

static void
action_make_fit (GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a, (void)p;
  DlTrainPage *self = data;
  if (!self->plan)
    return;
  g_autoptr (GPtrArray) sugg = dl_train_plan_suggestions (self->plan);
  /* the cheapest suggestion, "--optimizer adamw8bit --fp16 --batch 2 (needs 3.1 GiB)": every option in it */
  if (!sugg || !sugg->len)
    return;
  g_autofree char *opts = g_strdup (sugg->pdata[0]);
  char *needs = strstr (opts, " (needs");
  if (needs)
    *needs = '\0';
  g_auto (GStrv) words = g_strsplit (opts, " ", -1);
  for (guint i = 0; words[i]; i++)
    {
      if (!g_str_has_prefix (words[i], "--"))
        continue;
      const char *name = words[i] + 2;
      gboolean flag = FALSE;
      if (!dl_train_settings_has_option (name, &flag, NULL))
        continue;
      const char *value = flag ? "true" : words[i + 1];
      g_autoptr (GError) error = NULL;
      if (!value || !dl_train_form_set_option (self->form, name, value, &error))
        {
          dl_toast_show (GTK_WIDGET (self),
                         error ? error->message : _ ("The memory plan’s suggestion could not be applied"), NULL);
          return;
        }
      if (!flag)
        i++;
    }
}

static void
sync_actions (DlTrainPage *self)
{
  gboolean training = dl_train_page_is_training (self);
  gboolean have = self->project != NULL;
  static const struct
  {
    const char *name;
    int when; /* 0: idle with a project, 1: while training, 2: a file to export, 3: always,
                 4: a LoRA to export, 5: a DreamBooth model to export */
  } rules[] = { { "start", 0 },
                { "continue", 0 },
                { "pause", 1 },
                { "stop", 1 },
                { "export", 2 },
                { "export-precision", 4 },
                { "export-diffusers", 5 },
                { "export-kohya", 3 },
                { "save-log", 3 },
                { "make-fit", 0 } };
  for (guint i = 0; i < G_N_ELEMENTS (rules); i++)
    {
      GAction *a = g_action_map_lookup_action (G_ACTION_MAP (self->actions), rules[i].name);
      gboolean on = rules[i].when == 0   ? have && !training
                    : rules[i].when == 1 ? training
                    : rules[i].when == 2 ? self->last_file != NULL
                    : rules[i].when == 4
                      ? self->last_file != NULL && self->run_settings && self->run_settings->method == DL_TRAIN_LORA
                    : rules[i].when == 5 ? self->last_file != NULL && self->run_settings &&
                                             self->run_settings->method == DL_TRAIN_DREAMBOOTH
                                         : have;
      g_simple_action_set_enabled (G_SIMPLE_ACTION (a), on);
    }
  gtk_widget_set_visible (self->train_button, !training);
  gtk_widget_set_visible (GTK_WIDGET (self->pause_button), training);
  gtk_widget_set_visible (self->stop_button, training);
}

/* ---- the memory plan ---- */

static void
plan_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GError) error = NULL;
  DlTrainPlan *plan = dl_engine_session_plan_finish (DL_ENGINE_SESSION (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      return;
    }
  DlTrainPage *self = data;
  g_clear_pointer (&self->plan, dl_train_plan_free);
  self->plan = plan;
  /* the family is known once the model was read; a model that cannot be read
   * gets the trainer's own word when the run starts */
  dl_train_form_set_sdxl (self->form, plan && dl_model_config_is_sdxl (dl_train_plan_get_config (plan)));
  if (!plan)
    {
      dl_row_set_title (self->plan_row, _ ("The memory this run needs is not known"));
      dl_row_set_subtitle (self->plan_row, error->message);
      gtk_widget_set_visible (self->fit_button, FALSE);
      return;
    }
  const DlTrainPlanFigures *f = dl_train_plan_get_figures (plan);
  gboolean fits = dl_train_plan_fits (plan);
  double need = f->total / 1e9, have = f->budget / 1e9;
  /* Translators: the memory a run needs, and what the GPU has (a CPU device's
   * memory is the computer's) */
  g_autofree char *title =
    f->budget_is_limit ? (fits ? g_strdup_printf (_ ("Needs %.1f GB of the %.1f GB allowed"), need, have)
                               : g_strdup_printf (_ ("Needs %.1f GB of the %.1f GB allowed: too much"), need, have))
    : f->budget_is_host
      ? (fits ? g_strdup_printf (_ ("Needs %.1f GB of the %.1f GB of free memory"), need, have)
              : g_strdup_printf (_ ("Needs %.1f GB of the %.1f GB of free memory: too much"), need, have))
      : (fits ? g_strdup_printf (_ ("Needs %.1f GB of the %.1f GB on the GPU"), need, have)
              : g_strdup_printf (_ ("Needs %.1f GB of the %.1f GB on the GPU: too much"), need, have));
  g_autofree char *sub =
    g_strdup_printf (_ ("Model %.1f GB · trained tensors %.2f GB · activations %.2f GB · "
                        "%.1f M trained parameters"),
                     f->weights / 1e9, f->trained / 1e9, f->activations / 1e9, f->trained_params / 1e6);
  dl_row_set_title (self->plan_row, title);
  dl_row_set_subtitle (self->plan_row, sub);
  g_autoptr (GPtrArray) sugg = fits ? NULL : dl_train_plan_suggestions (plan);
  gtk_widget_set_visible (self->fit_button, sugg && sugg->len);
  if (sugg && sugg->len)
    gtk_widget_set_tooltip_text (self->fit_button, sugg->pdata[0]);
}

static gboolean
plan_now (gpointer data)
{
  DlTrainPage *self = data;
  self->plan_timeout = 0;
  if (!self->project || !dl_project_get_base_model (self->project))
    {
      dl_train_form_set_sdxl (self->form, FALSE);
      dl_row_set_title (self->plan_row, _ ("Choose a base model to see what a run needs"));
      dl_row_set_subtitle (self->plan_row, "");
      return G_SOURCE_REMOVE;
    }
  g_cancellable_cancel (self->plan_cancel);
  g_clear_object (&self->plan_cancel);
  self->plan_cancel = g_cancellable_new ();
  g_autoptr (DlTrainSettings) s = dl_project_make_train_settings (self->project);
  g_autofree char *device = device_selector (self);
  dl_engine_session_plan_async (session (self), s, device, self->plan_cancel, plan_done, self);
  return G_SOURCE_REMOVE;
}

static void
update_plan (DlTrainPage *self)
{
  g_clear_handle_id (&self->plan_timeout, g_source_remove);
  self->plan_timeout = g_timeout_add (PLAN_DELAY_MS, plan_now, self);
}

/* Steps for the dataset's size (dl_train_settings_steps_for_dataset) when a method is chosen, unless
 * someone chose them: only steps that are the method's default or what the previous size gave change. */
static void
fit_steps (DlTrainPage *self)
{
  if (!self->project || dl_train_page_is_training (self))
    return;
  guint n = g_list_model_get_n_items (self->images);
  const DlTrainSettings *kept = dl_project_get_train_settings (self->project);
  gint64 was = dl_train_settings_steps_for_dataset (kept->method, self->n_images);
  gint64 def = dl_train_settings_steps_for_dataset (kept->method, 0);
  gint64 want = dl_train_settings_steps_for_dataset (kept->method, n);
  self->n_images = n;
  if ((kept->steps != was && kept->steps != def) || kept->steps == want)
    return;
  g_autofree char *v = g_strdup_printf ("%" G_GINT64_FORMAT, want);
  dl_train_form_set_option (self->form, "steps", v, NULL);
}

static void
form_changed (DlTrainForm *form, DlTrainPage *self)
{
  if (self->syncing || !self->project)
    return;
  const DlTrainSettings *s = dl_train_form_get_settings (form);
  dl_project_set_train_settings (self->project, s);
  if (s->method != self->method)
    {
      /* another method starts from its defaults: fitted to the dataset */
      self->method = s->method;
      fit_steps (self);
    }
  update_plan (self);
}

/* ---- checkpoints ---- */

static void
checkpoint_export (DlCheckpointList *list, const char *file, DlTrainPage *self)
{
  (void)list;
  run_export_dialog (self, file, NULL);
}

static void
checkpoint_use (DlCheckpointList *list, const char *file, DlTrainPage *self)
{
  (void)list;
  if (!self->project)
    return;
  GPtrArray *now = dl_project_get_loras (self->project);
  g_autoptr (GPtrArray) loras = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  for (guint i = 0; now && i < now->len; i++)
    {
      DlProjectLora *l = now->pdata[i];
      g_ptr_array_add (loras, dl_project_lora_new (l->path, l->strength));
    }
  g_ptr_array_add (loras, dl_project_lora_new (file, 1.0));
  dl_project_set_loras (self->project, loras);
  dl_toast_show (GTK_WIDGET (self), _ ("Added as a column on the Previews page"), NULL);
}

static void
checkpoint_delete (DlCheckpointList *list, gint64 step, const char *file, const char *state, DlTrainPage *self)
{
  if (dl_train_page_is_training (self))
    return;
  g_unlink (file);
  if (state)
    g_unlink (state);
  dl_checkpoint_list_remove (list, step);
  if (g_strcmp0 (self->last_file, file) == 0)
    g_clear_pointer (&self->last_file, g_free);
  sync_actions (self);
}

/* ---- the curve's controls ---- */

static void
smoothing_changed (GtkRange *range, DlTrainPage *self)
{
  dl_loss_curve_set_smoothing (self->curve, gtk_range_get_value (range));
}

static void
toggles_changed (GtkToggleButton *b, DlTrainPage *self)
{
  (void)b;
  dl_loss_curve_set_log_scale (self->curve, gtk_toggle_button_get_active (self->log_toggle));
  dl_loss_curve_set_show_lr (self->curve, gtk_toggle_button_get_active (self->lr_toggle));
  dl_loss_curve_set_follow (self->curve, gtk_toggle_button_get_active (self->follow_toggle));
}

/* ---- the object ---- */

static void
dl_train_page_dispose (GObject *object)
{
  DlTrainPage *self = DL_TRAIN_PAGE (object);
  if (self->job_signals)
    g_signal_group_set_target (self->job_signals, NULL);
  g_clear_object (&self->job);
  g_cancellable_cancel (self->plan_cancel);
  g_clear_object (&self->plan_cancel);
  g_clear_handle_id (&self->plan_timeout, g_source_remove);
  g_clear_object (&self->images);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_TRAIN_PAGE);
  /* the template's scrolled window is not a bound child: unparent it too */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))))
    gtk_widget_unparent (child);
  G_OBJECT_CLASS (dl_train_page_parent_class)->dispose (object);
}

static void
dl_train_page_finalize (GObject *object)
{
  DlTrainPage *self = DL_TRAIN_PAGE (object);
  g_clear_object (&self->project);
  g_clear_object (&self->job_signals);
  g_clear_object (&self->session);
  g_clear_object (&self->settings);
  g_clear_object (&self->actions);
  g_clear_pointer (&self->run_settings, dl_train_settings_free);
  g_clear_pointer (&self->plan, dl_train_plan_free);
  g_free (self->run_dir);
  g_free (self->last_file);
  g_ptr_array_unref (self->warnings);
  G_OBJECT_CLASS (dl_train_page_parent_class)->finalize (object);
}

static void
dl_train_page_class_init (DlTrainPageClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS (klass);
  oc->dispose = dl_train_page_dispose;
  oc->finalize = dl_train_page_finalize;
  gtk_widget_class_set_template_from_resource (wc, "/io/github/dreamloom/Dreamloom/ui/dl-train-page.ui");
  gtk_widget_class_bind_template_child (wc, DlTrainPage, continue_revealer);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, continue_label);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, status_label);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, detail_label);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, progress);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, train_button);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, pause_button);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, stop_button);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, warnings_list);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, curve_box);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, smoothing_scale);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, log_toggle);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, lr_toggle);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, follow_toggle);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, previews_box);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, checkpoints_group);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, plan_row);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, fit_button);
  gtk_widget_class_bind_template_child (wc, DlTrainPage, form_box);
}

static void
dl_train_page_init (DlTrainPage *self)
{
  g_type_ensure (DL_TYPE_TRAIN_FORM);
  gtk_widget_init_template (GTK_WIDGET (self));
  self->warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  self->settings = dl_settings_new (&error);

  self->curve = DL_LOSS_CURVE (dl_loss_curve_new ());
  gtk_widget_set_size_request (GTK_WIDGET (self->curve), -1, 240);
  gtk_box_append (self->curve_box, GTK_WIDGET (self->curve));
  self->previews = dl_train_previews_new ();
  gtk_box_append (self->previews_box, GTK_WIDGET (self->previews));
  self->checkpoints = dl_checkpoint_list_new ();
  adw_preferences_group_add (self->checkpoints_group, GTK_WIDGET (self->checkpoints));
  self->form = dl_train_form_new ();
  gtk_box_append (self->form_box, GTK_WIDGET (self->form));

  /* the job shown: a run the page started or continued */
  self->job_signals = g_signal_group_new (DL_TYPE_TRAIN_JOB);
  g_signal_group_connect (self->job_signals, "event", G_CALLBACK (on_event), self);
  g_signal_group_connect (self->job_signals, "finished", G_CALLBACK (on_finished), self);
  g_signal_group_connect (self->job_signals, "notify::state", G_CALLBACK (on_job_state), self);
  g_signal_connect (self->form, "changed", G_CALLBACK (form_changed), self);
  g_signal_connect (self->checkpoints, "export", G_CALLBACK (checkpoint_export), self);
  g_signal_connect (self->checkpoints, "use", G_CALLBACK (checkpoint_use), self);
  g_signal_connect (self->checkpoints, "delete", G_CALLBACK (checkpoint_delete), self);
  g_signal_connect (self->smoothing_scale, "value-changed", G_CALLBACK (smoothing_changed), self);
  g_signal_connect (self->log_toggle, "toggled", G_CALLBACK (toggles_changed), self);
  g_signal_connect (self->lr_toggle, "toggled", G_CALLBACK (toggles_changed), self);
  g_signal_connect (self->follow_toggle, "toggled", G_CALLBACK (toggles_changed), self);

  static const GActionEntry entries[] = {
    { .name = "start", .activate = action_start },
    { .name = "continue", .activate = action_continue },
    { .name = "pause", .activate = action_pause },
    { .name = "stop", .activate = action_stop },
    { .name = "export", .activate = action_export },
    { .name = "export-precision", .activate = action_export_precision, .parameter_type = "s" },
    { .name = "export-diffusers", .activate = action_export_diffusers },
    { .name = "export-kohya", .activate = action_export_kohya },
    { .name = "save-log", .activate = action_save_log },
    { .name = "show-file", .activate = action_show_file, .parameter_type = "s" },
    { .name = "make-fit", .activate = action_make_fit },
  };
  self->actions = g_simple_action_group_new ();
  g_action_map_add_action_entries (G_ACTION_MAP (self->actions), entries, G_N_ELEMENTS (entries), self);
  gtk_widget_insert_action_group (GTK_WIDGET (self), "train", G_ACTION_GROUP (self->actions));

  /* The page's keys (in the shortcuts window's Training group): managed by the window, so they work
   * whenever the page is shown, wherever the focus is; a focused widget that takes the key keeps it. */
  GtkEventController *keys = gtk_shortcut_controller_new ();
  gtk_event_controller_set_name (keys, "dl-train-shortcuts");
  gtk_shortcut_controller_set_scope (GTK_SHORTCUT_CONTROLLER (keys), GTK_SHORTCUT_SCOPE_MANAGED);
  for (guint i = 0; i < G_N_ELEMENTS (shortcuts); i++)
    {
      GtkShortcut *shortcut = gtk_shortcut_new (gtk_shortcut_trigger_parse_string (shortcuts[i].accel),
                                                gtk_named_action_new (shortcuts[i].action));
      if (shortcuts[i].target)
        gtk_shortcut_set_arguments (shortcut, g_variant_new_string (shortcuts[i].target));
      gtk_shortcut_controller_add_shortcut (GTK_SHORTCUT_CONTROLLER (keys), shortcut);
    }
  gtk_widget_add_controller (GTK_WIDGET (self), keys);
  sync_actions (self);
}

void
dl_train_page_set_project (DlTrainPage *self, DlProject *project)
{
  g_return_if_fail (DL_IS_TRAIN_PAGE (self));
  if (self->project == project)
    return;
  g_clear_object (&self->images);
  g_set_object (&self->project, project);
  /* a run of the previous project goes on (the window asked), unseen here */
  g_signal_group_set_target (self->job_signals, NULL);
  if (!dl_train_page_is_training (self) || !project)
    g_clear_object (&self->job);
  g_clear_pointer (&self->run_dir, g_free);
  g_clear_pointer (&self->run_settings, dl_train_settings_free);
  clear_run_view (self);
  gtk_widget_remove_css_class (GTK_WIDGET (self->status_label), "error");
  set_status (self, _ ("Ready to train"), NULL);
  if (project)
    {
      self->syncing = TRUE;
      dl_train_form_set_settings (self->form, dl_project_get_train_settings (project));
      self->syncing = FALSE;
      self->method = dl_project_get_train_settings (project)->method;
      /* opening a project changes nothing in it: its steps are fitted when a method is chosen */
      self->images = G_LIST_MODEL (g_object_ref (dl_project_get_images (project)));
      self->n_images = 0;
      read_run (self);
      update_plan (self);
    }
  sync_actions (self);
}

void
dl_train_page_set_session (DlTrainPage *self, DlEngineSession *s)
{
  g_set_object (&self->session, s);
}

DlTrainJob *
dl_train_page_get_job (DlTrainPage *self)
{
  return self->job;
}

gboolean
dl_train_page_is_training (DlTrainPage *self)
{
  return self->job && !dl_train_job_is_done (self->job);
}

DlTrainForm *
dl_train_page_get_form (DlTrainPage *self)
{
  return self->form;
}

DlLossCurve *
dl_train_page_get_curve (DlTrainPage *self)
{
  return self->curve;
}

DlTrainPreviews *
dl_train_page_get_previews (DlTrainPage *self)
{
  return self->previews;
}

DlCheckpointList *
dl_train_page_get_checkpoints (DlTrainPage *self)
{
  return self->checkpoints;
}

const char *
dl_train_page_get_status (DlTrainPage *self)
{
  return gtk_label_get_text (self->status_label);
}

const char *
dl_train_page_get_plan_text (DlTrainPage *self)
{
  return adw_preferences_row_get_title (ADW_PREFERENCES_ROW (self->plan_row));
}

GPtrArray *
dl_train_page_get_warnings (DlTrainPage *self)
{
  return self->warnings;
}
