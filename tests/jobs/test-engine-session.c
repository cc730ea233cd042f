/* test-engine-session.c: the app's engine session on the golden tiny model —
 * a run trains on a worker while its events arrive in order on the main
 * thread; a preview asked for during the run is served between its steps
 * (paused, here) by the same model; the model is loaded once for previews
 * and training, and is the base model again afterwards (the same preview
 * image, bit for bit); Stop keeps the last checkpoint and a new job
 * continues it to the end. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "dl-engine-session.h"
#include "dl-test-util.h"
#include "train-test-util.h"
#include "image/dl-png.h"
#include "nn/dl-sd-model.h"
#include "train/dl-run-info.h"

typedef struct
{
  GArray *steps;   /* step events */
  GArray *val;     /* validation steps */
  GArray *preview; /* preview steps */
  GArray *kinds;
  gboolean finished;
  gint64 stop_at;  /* stop on this step's event, 0: never */
  gint64 pause_at; /* pause on this step's event, 0: never */
  DlTrainJob *job;
} Log;

static void
on_event (DlTrainJob *job, const DlTrainEvent *ev, Log *log)
{
  g_assert_false (log->finished);
  int kind = ev->kind;
  g_array_append_val (log->kinds, kind);
  switch (ev->kind)
    {
    case DL_TRAIN_EVENT_STEP:
      if (log->steps->len)
        g_assert_cmpint (ev->step, ==, g_array_index (log->steps, gint64, log->steps->len - 1) + 1);
      g_array_append_val (log->steps, ev->step);
      g_assert_cmpint (dl_train_job_get_step (job), ==, ev->step);
      if (ev->step == log->stop_at)
        dl_train_job_stop (job);
      if (ev->step == log->pause_at)
        dl_train_job_pause (job);
      break;
    case DL_TRAIN_EVENT_VALIDATION:
      g_array_append_val (log->val, ev->step);
      break;
    case DL_TRAIN_EVENT_PREVIEW:
      g_assert_true (g_file_test (ev->path, G_FILE_TEST_IS_REGULAR));
      g_array_append_val (log->preview, ev->step);
      break;
    case DL_TRAIN_EVENT_WARNING:
    case DL_TRAIN_EVENT_ERROR:
      g_test_message ("%s: %s", dl_train_event_kind_name (ev->kind), ev->message);
      break;
    default:
      break;
    }
}

static void
on_finished (DlTrainJob *job, Log *log)
{
  (void)job;
  log->finished = TRUE;
}

static Log *
log_new (DlTrainJob *job)
{
  Log *log = g_new0 (Log, 1);
  log->steps = g_array_new (FALSE, FALSE, sizeof (gint64));
  log->val = g_array_new (FALSE, FALSE, sizeof (gint64));
  log->preview = g_array_new (FALSE, FALSE, sizeof (gint64));
  log->kinds = g_array_new (FALSE, FALSE, sizeof (int));
  log->job = job;
  g_signal_connect (job, "event", G_CALLBACK (on_event), log);
  g_signal_connect (job, "finished", G_CALLBACK (on_finished), log);
  return log;
}

static void
log_free (Log *log)
{
  g_array_unref (log->steps);
  g_array_unref (log->val);
  g_array_unref (log->preview);
  g_array_unref (log->kinds);
  g_free (log);
}

static void
wait_finished (Log *log)
{
  gint64 until = g_get_monotonic_time () + 500 * G_TIME_SPAN_SECOND;
  while (!log->finished && g_get_monotonic_time () < until)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (log->finished);
  g_assert_true (dl_train_job_is_done (log->job));
}

static GStrv
list_images (const char *dir)
{
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    if (g_str_has_suffix (name, ".png"))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        g_strv_builder_add (b, path);
      }
  return g_strv_builder_end (b);
}

static DlPreviewRequest *
preview_request (const char *model)
{
  DlPreviewRequest *r = dl_preview_request_new ();
  g_free (r->model_path);
  r->model_path = g_strdup (model);
  g_free (r->prompt);
  r->prompt = g_strdup ("a photo of a cat");
  r->seed = 7;
  r->steps = 2;
  g_free (r->sampler);
  r->sampler = g_strdup ("euler");
  r->cfg_scale = 5;
  r->width = r->height = 32;
  return r;
}

typedef struct
{
  DlEngineSession *session;
  DlPreviewRequest *request;
  DlPreviewImage *image;
  GError *error;
  gint done;
} Asked;

static gpointer
ask_preview (gpointer data)
{
  Asked *a = data;
  a->image = dl_preview_backend_generate (DL_PREVIEW_BACKEND (a->session), a->request, NULL, NULL, NULL, &a->error);
  g_atomic_int_set (&a->done, 1);
  return NULL;
}

static gboolean
same_image (const DlPreviewImage *a, const DlPreviewImage *b)
{
  return a->width == b->width && a->height == b->height && g_bytes_equal (a->rgba, b->rgba);
}

static void
test_train_with_previews (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!model)
    {
      g_test_skip ("no golden tiny model");
      return;
    }
  g_autofree char *tmp = g_dir_make_tmp ("dl-session-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *images = train_test_copy_images (tmp, 1);
  g_auto (GStrv) paths = list_images (images);
  g_assert_cmpuint (g_strv_length (paths), >, 0);
  g_autofree char *out = g_build_filename (tmp, "mine.safetensors", NULL);
  const char *const opts[] = { "rank=4",         "alpha=2",      "lr=1e-3",        "steps=6",      "validate-every=2",
                               "sample-every=3", "sample-first", "sample-steps=2", "save-every=3", NULL };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_LORA, model, images, out, opts);

  g_autoptr (DlEngineSession) session = dl_engine_session_new ();
  g_autoptr (DlPreviewRequest) req = preview_request (model);
  /* the base model's image, before any run */
  g_autoptr (DlPreviewImage) before =
    dl_preview_backend_generate (DL_PREVIEW_BACKEND (session), req, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_engine_session_get_n_model_loads (session), ==, 1);

  g_autoptr (DlTrainJob) job =
    dl_engine_session_train (session, s, (const char *const *)paths, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dl_engine_session_get_training (session) == job);
  /* one run at a time */
  g_assert_null (dl_engine_session_train (session, s, (const char *const *)paths, NULL, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  Log *log = log_new (job);
  log->pause_at = 2;
  while (dl_train_job_get_state (job) != DL_TRAIN_JOB_PAUSED && !log->finished)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_PAUSED);

  /* a preview during the (paused) run: served by the run's model */
  Asked a = { session, req, NULL, NULL, 0 };
  GThread *th = g_thread_new ("ask", ask_preview, &a);
  while (!g_atomic_int_get (&a.done))
    g_main_context_iteration (NULL, FALSE), g_usleep (20000);
  g_thread_join (th);
  g_assert_no_error (a.error);
  g_assert_nonnull (a.image);
  /* paused: no step after the one in flight when Pause came */
  guint steps_now = log->steps->len;
  gint64 until = g_get_monotonic_time () + G_TIME_SPAN_SECOND;
  while (g_get_monotonic_time () < until)
    g_main_context_iteration (NULL, FALSE), g_usleep (20000);
  g_assert_cmpuint (log->steps->len, ==, steps_now);
  g_assert_cmpuint (steps_now, <, 6);
  g_test_message ("preview served while paused after step %u", steps_now);
  dl_preview_image_free (a.image);
  dl_train_job_unpause (job);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_RUNNING);

  wait_finished (log);
  g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_FINISHED);
  g_assert_null (dl_train_job_get_error (job));
  g_assert_null (dl_engine_session_get_training (session));
  g_assert_cmpuint (log->steps->len, ==, 6);
  /* validation at 0, 2, 4, 6; previews at 0 (the base model's, --sample-first), 3, 6 */
  const gint64 val[] = { 0, 2, 4, 6 };
  g_assert_cmpuint (log->val->len, ==, G_N_ELEMENTS (val));
  for (guint i = 0; i < G_N_ELEMENTS (val); i++)
    g_assert_cmpint (g_array_index (log->val, gint64, i), ==, val[i]);
  g_assert_cmpuint (log->preview->len, >=, 3);
  g_assert_cmpint (g_array_index (log->preview, gint64, 0), ==, 0);
  g_assert_cmpint (g_array_index (log->preview, gint64, log->preview->len - 1), ==, 6);
  g_assert_cmpint (g_array_index (log->kinds, int, log->kinds->len - 1), ==, DL_TRAIN_EVENT_FINISHED);
  g_assert_true (g_file_test (out, G_FILE_TEST_IS_REGULAR));
  /* one copy of the model for everything; the base model again afterwards */
  g_assert_cmpuint (dl_engine_session_get_n_model_loads (session), ==, 1);
  g_autoptr (DlPreviewImage) after =
    dl_preview_backend_generate (DL_PREVIEW_BACKEND (session), req, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_image (before, after));
  g_assert_cmpuint (dl_engine_session_get_n_model_loads (session), ==, 1);
  log_free (log);
  dl_test_remove_tree (tmp);
}

static void
test_stop_and_continue (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *model = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!model)
    {
      g_test_skip ("no golden tiny model");
      return;
    }
  g_autofree char *tmp = g_dir_make_tmp ("dl-session-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *images = train_test_copy_images (tmp, 1);
  g_auto (GStrv) paths = list_images (images);
  g_autofree char *out = g_build_filename (tmp, "emb.safetensors", NULL);
  /* Stop is asked for on the main thread when step 2's event arrives: the worker may have run a few
   * steps further by then, so the counts below follow from how many steps it ran. */
  const char *const opts[] = {
    "steps=16", "save-every=2", "validate-every=8", "placeholder=sks", "init-text=cat", NULL
  };
  g_autoptr (DlTrainSettings) s = train_test_settings (DL_TRAIN_TEXTUAL_INVERSION, model, images, out, opts);
  g_autofree char *run = dl_train_settings_run_dir (s);
  g_autoptr (DlEngineSession) session = dl_engine_session_new ();
  guint ran = 0;
  {
    g_autoptr (DlTrainJob) job =
      dl_engine_session_train (session, s, (const char *const *)paths, NULL, NULL, NULL, &error);
    g_assert_no_error (error);
    Log *log = log_new (job);
    log->stop_at = 2;
    wait_finished (log);
    g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_STOPPED);
    ran = log->steps->len;
    g_assert_cmpuint (ran, >=, 2);
    g_assert_cmpuint (ran, <, 16);
    g_test_message ("stopped after step %u", ran);
    log_free (log);
  }
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_autoptr (DlRunInfo) info = dl_run_info_read (run, &error);
  g_assert_no_error (error);
  g_assert_true (dl_run_info_can_continue (info));
  /* the last state saved (every 2 steps) */
  g_assert_cmpint (info->step, ==, ran - ran % 2);
  {
    g_autoptr (DlTrainJob) job =
      dl_engine_session_train (session, s, (const char *const *)paths, NULL, run, NULL, &error);
    g_assert_no_error (error);
    Log *log = log_new (job);
    wait_finished (log);
    g_assert_cmpint (dl_train_job_get_state (job), ==, DL_TRAIN_JOB_FINISHED);
    /* from the step after the saved state to the end */
    g_assert_cmpuint (log->steps->len, ==, 16 - info->step);
    g_assert_cmpint (g_array_index (log->steps, gint64, 0), ==, info->step + 1);
    log_free (log);
  }
  g_assert_true (g_file_test (out, G_FILE_TEST_IS_REGULAR));
  g_autoptr (DlRunInfo) done = dl_run_info_read (run, &error);
  g_assert_no_error (error);
  g_assert_true (done->finished);
  g_assert_false (dl_run_info_can_continue (done));
  g_assert_cmpuint (dl_engine_session_get_n_model_loads (session), ==, 1);
  dl_test_remove_tree (tmp);
}

/* The Previews page on an SDXL model: the session's image is the engine's own
 * sampling of the request (both encoders, time ids from the size), bit for
 * bit. */
static void
test_sdxl_preview (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *model = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  if (!model)
    {
      g_test_skip ("no golden tiny SDXL model");
      return;
    }
  g_autoptr (DlEngineSession) session = dl_engine_session_new ();
  g_autoptr (DlPreviewRequest) req = preview_request (model);
  g_autoptr (DlPreviewImage) image =
    dl_preview_backend_generate (DL_PREVIEW_BACKEND (session), req, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (image);
  g_assert_cmpint (image->width, ==, 32);
  g_assert_cmpint (image->height, ==, 32);

  /* the same request through dl_sd_sample */
  g_autoptr (DlSdModel) m = dl_sd_model_load (dl_test_device (), model, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DlClipTokenizer) tok =
    dl_clip_tokenizer_find (dl_checkpoint_get_tokenizer_dir (dl_sd_model_get_checkpoint (m)), NULL, &error);
  g_assert_no_error (error);
  DlPromptIds ids;
  g_assert_true (dl_prompt_ids_encode (&ids, m, tok, req->prompt, req->negative_prompt, 1, &error));
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
  g_assert_true (dl_sampler_kind_from_name (req->sampler, &kind, &sigmas));
  DlSampleParams sp = {
    .batch = 1,
    .width = 32,
    .height = 32,
    .steps = req->steps,
    .sampler = kind,
    .sigmas = sigmas,
    .cfg_scale = (float)req->cfg_scale,
    .seed = req->seed,
    .clip_skip = 1,
  };
  dl_sample_params_set_prompt_ids (&sp, &ids);
  g_autofree float *pixels = NULL;
  g_assert_true (dl_sd_sample (m, &sp, NULL, &pixels, &error));
  g_assert_no_error (error);
  dl_prompt_ids_clear (&ids);
  guint8 rgb[32 * 32 * 3];
  dl_image_chw_to_rgb8 (pixels, 32, 32, rgb);
  const guint8 *rgba = g_bytes_get_data (image->rgba, NULL);
  guint differing = 0;
  for (int y = 0; y < 32; y++)
    for (int x = 0; x < 32; x++)
      for (int c = 0; c < 3; c++)
        differing += rgba[y * image->stride + 4 * x + c] != rgb[(y * 32 + x) * 3 + c];
  g_assert_cmpuint (differing, ==, 0);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_test_add_func ("/engine-session/train-with-previews", test_train_with_previews);
  g_test_add_func ("/engine-session/sdxl-preview", test_sdxl_preview);
  /* the sanitizer build (CI's $DREAMLOOM_TEST_QUICK) leaves the second run to the plain build */
  if (!g_getenv ("DREAMLOOM_TEST_QUICK"))
    g_test_add_func ("/engine-session/stop-and-continue", test_stop_and_continue);
  return g_test_run ();
}
