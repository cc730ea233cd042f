/* The project's training settings: the ones it keeps (typed, saved in its
 * "training" section) and a run's settings filled in from the project itself
 * (base model, resolution, concept token, caption template, images). */
#include "dl-config.h"

#include "dl-project-private.h"

#include "dl-caption.h"
#include "dl-error.h"

/* Missing files named in the error; the rest are counted. */
#define MAX_MISSING_NAMED 3

void
dl_project_clear_train_derived (DlTrainSettings *settings)
{
  g_clear_pointer (&settings->model, g_free);
  g_clear_pointer (&settings->images, g_free);
  g_clear_pointer (&settings->placeholder, g_free);
  g_clear_pointer (&settings->instance_prompt, g_free);
  settings->resolution = DL_PROJECT_DEFAULT_RESOLUTION;
}

const DlTrainSettings *
dl_project_get_train_settings (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->train_settings;
}

void
dl_project_set_train_settings (DlProject *self, const DlTrainSettings *settings)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_return_if_fail (settings != NULL);
  g_autoptr (DlTrainSettings) copy = dl_train_settings_copy (settings);
  dl_project_clear_train_derived (copy);
  g_autofree char *diff = dl_train_settings_diff (self->train_settings, copy, NULL);
  if (!diff)
    return;
  dl_train_settings_free (self->train_settings);
  self->train_settings = g_steal_pointer (&copy);
  dl_project_mark_changed (self);
}

/* `path` as it is when absolute, else taken from the project file's folder */
static char *
from_project_dir (DlProject *self, const char *path)
{
  if (g_path_is_absolute (path))
    return g_strdup (path);
  g_autoptr (GFile) dir = g_file_get_parent (self->file);
  g_autoptr (GFile) resolved = dir ? g_file_resolve_relative_path (dir, path) : NULL;
  char *abs = resolved ? g_file_get_path (resolved) : NULL;
  return abs ? abs : g_strdup (path);
}

static void
replace (char **field, char *value)
{
  g_free (*field);
  *field = value;
}

void
dl_project_fill_train_settings (DlProject *self, DlTrainSettings *settings)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_return_if_fail (settings != NULL);
  DlTrainSettings *s = settings;
  replace (&s->model, g_strdup (self->base_model));
  replace (&s->images, g_file_get_path (self->file));
  s->resolution = self->resolution;
  replace (&s->placeholder, s->method == DL_TRAIN_TEXTUAL_INVERSION && *self->token ? g_strdup (self->token) : NULL);
  g_autofree char *prompt = dl_project_expand_caption_template (self);
  replace (&s->instance_prompt, *prompt ? g_steal_pointer (&prompt) : NULL);
  if (!s->sample_prompts || !s->sample_prompts[0])
    {
      /* the run previews what the Previews page shows */
      char **texts = dl_project_dup_preview_texts (self);
      g_strfreev (s->sample_prompts);
      s->sample_prompts = texts[0] ? texts : (g_strfreev (texts), NULL);
    }

  if (s->out)
    replace (&s->out, from_project_dir (self, s->out));
  else
    {
      g_autofree char *title = dl_project_dup_title (self);
      g_autofree char *name = g_strdup_printf ("%s-%s.safetensors", title, dl_train_method_name (s->method));
      replace (&s->out, from_project_dir (self, name));
    }
  if (s->run_dir)
    replace (&s->run_dir, from_project_dir (self, s->run_dir));
}

DlTrainSettings *
dl_project_make_train_settings (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  DlTrainSettings *s = dl_train_settings_copy (self->train_settings);
  dl_project_fill_train_settings (self, s);
  return s;
}

gboolean
dl_project_dup_training_images (DlProject *self, GStrv *paths, GStrv *captions, GError **error)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), FALSE);
  g_return_val_if_fail (paths != NULL && captions != NULL, FALSE);
  g_autofree char *name = g_file_get_basename (self->file);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  if (n == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "“%s”: the dataset has no images to train on", name);
      return FALSE;
    }
  g_autoptr (GStrvBuilder) pb = g_strv_builder_new ();
  g_autoptr (GStrvBuilder) cb = g_strv_builder_new ();
  g_autoptr (GString) missing = g_string_new (NULL);
  guint n_missing = 0;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      const char *path = dl_dataset_image_get_path (image);
      if (!path || !g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          if (n_missing++ < MAX_MISSING_NAMED)
            g_string_append_printf (missing, "%s“%s”", missing->len ? ", " : "",
                                    path ? path : dl_dataset_image_get_display_name (image));
          continue;
        }
      g_strv_builder_add (pb, path);
      g_strv_builder_add (cb, dl_dataset_image_get_caption (image));
    }
  if (n_missing)
    {
      if (n_missing > MAX_MISSING_NAMED)
        g_string_append_printf (missing, " and %u more", n_missing - MAX_MISSING_NAMED);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   n_missing == 1 ? "“%s”: %u image is missing: %s" : "“%s”: %u images are missing: %s", name,
                   n_missing, missing->str);
      return FALSE;
    }
  *paths = g_strv_builder_end (pb);
  *captions = g_strv_builder_end (cb);
  return TRUE;
}
