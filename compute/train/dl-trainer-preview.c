/* dl-trainer-preview.c: preview images during a run, with the weights as they
 * are now: the template prompts (the TI paper's object list, S* -> the trained
 * word) or, for a LoRA, the first images' captions, plus the user's prompts;
 * a fixed seed so that previews of successive steps compare; PNGs with
 * A1111's parameters in <run>/previews/. */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <errno.h>
#include <string.h>

#include "dl-error.h"
#include "image/dl-infotext.h"
#include "image/dl-png.h"
#include "io/dl-file-util.h"
#include "train/dl-prompt-templates.h"

#define PREVIEW_TEMPLATES 2

gboolean
dl_trainer_sample (DlTrainer *t, const DlTrainerSampleRequest *r, guint8 **rgb, GError **error)
{
  g_return_val_if_fail (t->prepared, FALSE);
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
  if (!dl_sampler_kind_from_name (r->sampler, &kind, &sigmas))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "unknown sampler “%s”", r->sampler);
      return FALSE;
    }
  DlPromptIds ids;
  if (!dl_prompt_ids_encode (&ids, t->model, t->tok, r->prompt, r->negative_prompt, 1, error))
    return FALSE;
  DlSampleParams sp = {
    .batch = 1,
    .width = r->width,
    .height = r->height,
    .steps = r->steps,
    .sampler = kind,
    .sigmas = sigmas,
    .cfg_scale = (float)r->cfg_scale,
    .seed = r->seed,
    .clip_skip = t->settings->clip_skip,
    .on_step = r->on_step,
    .on_step_data = r->on_step_data,
    .cancellable = r->cancellable,
  };
  /* the method's training-only behaviour (dropout) is off while sampling */
  if (t->method->begin_forward)
    t->method->begin_forward (t, FALSE);
  dl_sample_params_set_prompt_ids (&sp, &ids);
  g_autofree float *image = NULL;
  gboolean ok = dl_sd_sample (t->model, &sp, NULL, &image, error);
  dl_prompt_ids_clear (&ids);
  if (!ok)
    return FALSE;
  *rgb = g_new (guint8, (gsize)r->width * r->height * 3);
  dl_image_chw_to_rgb8 (image, r->width, r->height, *rgb);
  return TRUE;
}

/* each prompt once (two images with one caption are one row) */
static void
add_prompt (GPtrArray *prompts, char *prompt)
{
  for (guint i = 0; i < prompts->len; i++)
    if (g_str_equal (prompts->pdata[i], prompt))
      {
        g_free (prompt);
        return;
      }
  g_ptr_array_add (prompts, prompt);
}

static GPtrArray *
preview_prompts (DlTrainer *t)
{
  GPtrArray *prompts = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *trigger = t->method->trigger (t);
  if (trigger)
    {
      const char *const *lines =
        dl_prompt_templates_builtin (g_strcmp0 (t->settings->template_file, "style") == 0 ? "style" : "object");
      for (guint i = 0; i < PREVIEW_TEMPLATES && lines[i]; i++)
        add_prompt (prompts, dl_prompt_template_apply (lines[i], trigger));
    }
  else if (!t->settings->sample_prompts || !t->settings->sample_prompts[0])
    {
      guint n = dl_train_images_get_n (t->images);
      for (guint i = 0; i < n && prompts->len < PREVIEW_TEMPLATES; i++)
        add_prompt (prompts, g_strdup (dl_trainer_image_caption (t, i)));
    }
  for (char **p = t->settings->sample_prompts; p && *p; p++)
    add_prompt (prompts, g_strdup (*p));
  return prompts;
}

gboolean
dl_trainer_preview (DlTrainer *t, GError **error)
{
  g_return_val_if_fail (t->prepared, FALSE);
  const DlTrainSettings *s = t->settings;
  g_autoptr (GPtrArray) prompts = preview_prompts (t);
  g_autofree char *dir = g_build_filename (t->run_dir, "previews", NULL);
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot create “%s”: %s", dir, g_strerror (errno));
      return FALSE;
    }
  int size = s->resolution;
  g_autofree char *mname = dl_model_name (s->model);
  g_autofree char *sampler = dl_train_settings_get (s, "sample-sampler");
  DlSamplerKind kind;
  DlSigmaSchedule sigmas;
  dl_sampler_kind_from_name (sampler, &kind, &sigmas);
  for (guint i = 0; i < prompts->len; i++)
    {
      const char *prompt = prompts->pdata[i];
      dl_trainer_status (t, (double)i / prompts->len, "Preview %u of %u at step %" G_GINT64_FORMAT, i + 1, prompts->len,
                         t->step);
      DlTrainerSampleRequest r = {
        .prompt = prompt,
        .seed = (guint64)s->sample_seed,
        .steps = s->sample_steps,
        .sampler = sampler,
        .cfg_scale = s->sample_cfg,
        .width = size,
        .height = size,
        .cancellable = t->cancellable,
      };
      g_autofree guint8 *rgb = NULL;
      if (!dl_trainer_sample (t, &r, &rgb, error))
        return FALSE;
      DlInfotext info = {
        .prompt = prompt,
        .steps = s->sample_steps,
        .sampler = dl_sampler_a1111_name (kind, sigmas),
        .cfg_scale = s->sample_cfg,
        .seed = (guint64)s->sample_seed,
        .width = size,
        .height = size,
        .model = mname,
        .clip_skip = s->clip_skip,
      };
      g_autofree char *params = dl_infotext_format (&info);
      g_autoptr (GHashTable) text = g_hash_table_new (g_str_hash, g_str_equal);
      g_hash_table_insert (text, "parameters", params);
      g_autofree char *name = g_strdup_printf ("step%06" G_GINT64_FORMAT "-%02u.png", t->step, i);
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (!dl_png_write (path, rgb, size, size, 3, text, error))
        return FALSE;
      DlTrainEvent ev = { .kind = DL_TRAIN_EVENT_PREVIEW,
                          .step = t->step,
                          .total_steps = s->steps,
                          .path = path,
                          .prompt = prompt,
                          .index = (int)i };
      dl_trainer_emit (t, &ev);
    }
  return TRUE;
}
