/* The project: its state, its properties and setters, the preview set-up and the
 * GObject.  The images and the rules that tie them together (warnings, counts) are in
 * dl-project-dataset.c, the file format in dl-project-json.c, autosave and caption
 * sidecars in dl-project-save.c, the training settings in dl-project-train.c.
 * Widgets only read it and call its setters. */
#include "dl-config.h"

#include "dl-project-private.h"

#include <string.h>

#include "dl-caption.h"
#include "train/dl-prompt-templates.h"

G_DEFINE_FINAL_TYPE (DlProject, dl_project, G_TYPE_OBJECT)

static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_SAVE_FAILED,
  SIGNAL_SIDECAR_FAILED,
  SIGNAL_PREVIEWS_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* For the other dl-project*.c files: props[] and signals[] stay in this one. */

void
dl_project_notify (DlProject *self, DlProjectProp prop)
{
  g_object_notify_by_pspec (G_OBJECT (self), props[prop]);
}

void
dl_project_emit_save_failed (DlProject *self, GError *error)
{
  g_signal_emit (self, signals[SIGNAL_SAVE_FAILED], 0, error);
}

void
dl_project_emit_sidecar_failed (DlProject *self, DlDatasetImage *image, const char *message)
{
  g_signal_emit (self, signals[SIGNAL_SIDECAR_FAILED], 0, image, message);
}

DlProjectLora *
dl_project_lora_new (const char *path, double strength)
{
  DlProjectLora *lora = g_new0 (DlProjectLora, 1);
  lora->path = g_strdup (path);
  lora->strength = strength;
  return lora;
}

void
dl_project_lora_free (DlProjectLora *lora)
{
  if (!lora)
    return;
  g_free (lora->path);
  g_free (lora);
}

/* ---- simple properties ---- */

GFile *
dl_project_get_file (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->file;
}

char *
dl_project_dup_title (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  g_autofree char *base = g_file_get_basename (self->file);
  if (g_str_has_suffix (base, DL_PROJECT_EXTENSION) && strlen (base) > strlen (DL_PROJECT_EXTENSION))
    base[strlen (base) - strlen (DL_PROJECT_EXTENSION)] = '\0';
  return g_steal_pointer (&base);
}

static gboolean
set_string (DlProject *self, char **field, const char *value, DlProjectProp prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  dl_project_notify (self, prop);
  dl_project_mark_changed (self);
  return TRUE;
}

const char *
dl_project_get_token (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->token;
}

void
dl_project_set_token (DlProject *self, const char *token)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_autofree char *clean = g_strstrip (g_strdup (token ? token : ""));
  if (set_string (self, &self->token, clean, PROP_TOKEN))
    g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

const char *
dl_project_get_class_word (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->class_word;
}

void
dl_project_set_class_word (DlProject *self, const char *class_word)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_autofree char *clean = g_strstrip (g_strdup (class_word ? class_word : ""));
  set_string (self, &self->class_word, clean, PROP_CLASS_WORD);
}

const char *
dl_project_get_caption_template (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->caption_template;
}

void
dl_project_set_caption_template (DlProject *self, const char *template_text)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  set_string (self, &self->caption_template, template_text ? template_text : "", PROP_CAPTION_TEMPLATE);
}

int
dl_project_get_resolution (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), DL_PROJECT_DEFAULT_RESOLUTION);
  return self->resolution;
}

void
dl_project_set_resolution (DlProject *self, int resolution)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_return_if_fail (resolution >= 64 && resolution <= 4096);
  if (self->resolution == resolution)
    return;
  self->resolution = resolution;
  dl_project_notify (self, PROP_RESOLUTION);
  dl_project_mark_changed (self);
  dl_project_recount (self);
}

const char *
dl_project_get_base_model (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->base_model;
}

void
dl_project_set_base_model (DlProject *self, const char *path)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  if (set_string (self, &self->base_model, path && *path ? path : NULL, PROP_BASE_MODEL))
    g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

/* ---- previews ---- */

const char *const *
dl_project_get_preview_prompts (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return (const char *const *)self->prompts;
}

void
dl_project_set_preview_prompts (DlProject *self, const char *const *prompts)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  static const char *const none[] = { NULL };
  if (!prompts)
    prompts = none;
  if (g_strv_equal ((const char *const *)self->prompts, prompts))
    return;
  g_strfreev (self->prompts);
  self->prompts = g_strdupv ((char **)prompts);
  dl_project_mark_changed (self);
  g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

const char *
dl_project_get_negative_prompt (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->negative_prompt;
}

void
dl_project_set_negative_prompt (DlProject *self, const char *negative_prompt)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  if (!negative_prompt)
    negative_prompt = "";
  if (g_strcmp0 (self->negative_prompt, negative_prompt) == 0)
    return;
  g_free (self->negative_prompt);
  self->negative_prompt = g_strdup (negative_prompt);
  dl_project_mark_changed (self);
}

GArray *
dl_project_get_preview_templates (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->templates;
}

void
dl_project_set_preview_templates (DlProject *self, const guint *indices, guint n)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  if (self->templates->len == n && (n == 0 || memcmp (self->templates->data, indices, n * sizeof (guint)) == 0))
    return;
  g_array_set_size (self->templates, 0);
  g_array_append_vals (self->templates, indices, n);
  dl_project_mark_changed (self);
  g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

char **
dl_project_dup_preview_texts (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  const char *const *templates = dl_prompt_templates_object ();
  guint n_templates = g_strv_length ((char **)templates);
  for (guint i = 0; i < self->templates->len; i++)
    {
      guint idx = g_array_index (self->templates, guint, i);
      if (idx < n_templates)
        {
          g_autofree char *text = dl_prompt_template_apply (templates[idx], self->token);
          g_strv_builder_add (b, text);
        }
    }
  for (char **p = self->prompts; p && *p; p++)
    g_strv_builder_add (b, *p);
  return g_strv_builder_end (b);
}

GPtrArray *
dl_project_get_loras (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  return self->loras;
}

void
dl_project_set_loras (DlProject *self, GPtrArray *loras)
{
  g_return_if_fail (DL_IS_PROJECT (self));
  g_ptr_array_set_size (self->loras, 0);
  for (guint i = 0; loras && i < loras->len; i++)
    {
      DlProjectLora *l = loras->pdata[i];
      g_ptr_array_add (self->loras, dl_project_lora_new (l->path, l->strength));
    }
  dl_project_mark_changed (self);
  g_signal_emit (self, signals[SIGNAL_PREVIEWS_CHANGED], 0);
}

DlProject *
dl_project_new (GFile *file)
{
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  DlProject *self = g_object_new (DL_TYPE_PROJECT, NULL);
  self->file = g_object_ref (file);
  /* a new project is a change: it is saved */
  self->change_serial = 1;
  return self;
}

/* ---- GObject ---- */

static void
dl_project_dispose (GObject *object)
{
  DlProject *self = DL_PROJECT (object);
  g_cancellable_cancel (self->cancellable);
  /* never lose work: whatever is pending goes to disk */
  if (self->file && (dl_project_get_dirty (self) || g_hash_table_size (self->pending_sidecars)))
    {
      g_autoptr (GError) error = NULL;
      if (!dl_project_flush (self, &error))
        g_warning ("Could not save the project on closing: %s", error->message);
    }
  g_clear_handle_id (&self->autosave_id, g_source_remove);
  g_clear_handle_id (&self->sidecar_id, g_source_remove);
  g_clear_handle_id (&self->recount_id, g_source_remove);
  if (self->images)
    {
      guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
      for (guint i = 0; i < n; i++)
        {
          g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
          g_signal_handlers_disconnect_by_func (image, dl_project_caption_changed, self);
        }
    }
  G_OBJECT_CLASS (dl_project_parent_class)->dispose (object);
}

static void
dl_project_finalize (GObject *object)
{
  DlProject *self = DL_PROJECT (object);
  g_clear_object (&self->file);
  g_free (self->token);
  g_free (self->class_word);
  g_free (self->caption_template);
  g_free (self->base_model);
  g_clear_object (&self->images);
  g_hash_table_unref (self->paths);
  g_strfreev (self->prompts);
  g_free (self->negative_prompt);
  g_array_unref (self->templates);
  g_ptr_array_unref (self->loras);
  dl_train_settings_free (self->train_settings);
  g_clear_pointer (&self->training_unknown, json_object_unref);
  g_clear_pointer (&self->unknown, json_object_unref);
  g_ptr_array_unref (self->removed);
  g_array_unref (self->removed_positions);
  g_clear_object (&self->cancellable);
  g_hash_table_unref (self->pending_sidecars);
  G_OBJECT_CLASS (dl_project_parent_class)->finalize (object);
}

static void
dl_project_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DlProject *self = DL_PROJECT (object);
  switch (prop_id)
    {
    case PROP_FILE:
      g_value_set_object (value, self->file);
      break;
    case PROP_TOKEN:
      g_value_set_string (value, self->token);
      break;
    case PROP_CLASS_WORD:
      g_value_set_string (value, self->class_word);
      break;
    case PROP_CAPTION_TEMPLATE:
      g_value_set_string (value, self->caption_template);
      break;
    case PROP_RESOLUTION:
      g_value_set_int (value, self->resolution);
      break;
    case PROP_BASE_MODEL:
      g_value_set_string (value, self->base_model);
      break;
    case PROP_N_LOADING:
      g_value_set_uint (value, self->n_loading);
      break;
    case PROP_N_MISSING:
      g_value_set_uint (value, self->n_missing);
      break;
    case PROP_N_UNREADABLE:
      g_value_set_uint (value, self->n_unreadable);
      break;
    case PROP_N_WARNINGS:
      g_value_set_uint (value, self->n_warnings);
      break;
    case PROP_DIRTY:
      g_value_set_boolean (value, dl_project_get_dirty (self));
      break;
    case PROP_CAN_UNDO_REMOVE:
      g_value_set_boolean (value, dl_project_can_undo_remove (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_project_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  DlProject *self = DL_PROJECT (object);
  switch (prop_id)
    {
    case PROP_TOKEN:
      dl_project_set_token (self, g_value_get_string (value));
      break;
    case PROP_CLASS_WORD:
      dl_project_set_class_word (self, g_value_get_string (value));
      break;
    case PROP_CAPTION_TEMPLATE:
      dl_project_set_caption_template (self, g_value_get_string (value));
      break;
    case PROP_RESOLUTION:
      dl_project_set_resolution (self, g_value_get_int (value));
      break;
    case PROP_BASE_MODEL:
      dl_project_set_base_model (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_project_class_init (DlProjectClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = dl_project_dispose;
  object_class->finalize = dl_project_finalize;
  object_class->get_property = dl_project_get_property;
  object_class->set_property = dl_project_set_property;

  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  props[PROP_FILE] = g_param_spec_object ("file", NULL, NULL, G_TYPE_FILE, ro);
  props[PROP_TOKEN] = g_param_spec_string ("token", NULL, NULL, "", rw);
  props[PROP_CLASS_WORD] = g_param_spec_string ("class-word", NULL, NULL, "", rw);
  props[PROP_CAPTION_TEMPLATE] = g_param_spec_string ("caption-template", NULL, NULL, DL_CAPTION_DEFAULT_TEMPLATE, rw);
  props[PROP_RESOLUTION] = g_param_spec_int ("resolution", NULL, NULL, 32, 4096, DL_PROJECT_DEFAULT_RESOLUTION, rw);
  props[PROP_BASE_MODEL] = g_param_spec_string ("base-model", NULL, NULL, NULL, rw);
  props[PROP_N_LOADING] = g_param_spec_uint ("n-loading", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_N_MISSING] = g_param_spec_uint ("n-missing", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_N_UNREADABLE] = g_param_spec_uint ("n-unreadable", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_N_WARNINGS] = g_param_spec_uint ("n-warnings", NULL, NULL, 0, G_MAXUINT, 0, ro);
  props[PROP_DIRTY] = g_param_spec_boolean ("dirty", NULL, NULL, FALSE, ro);
  props[PROP_CAN_UNDO_REMOVE] = g_param_spec_boolean ("can-undo-remove", NULL, NULL, FALSE, ro);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /* An autosave failed (disk full, folder gone): the window says so. */
  signals[SIGNAL_SAVE_FAILED] = g_signal_new ("save-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                              NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
  /* A caption file could not be written or read (image, message). */
  signals[SIGNAL_SIDECAR_FAILED] =
    g_signal_new ("sidecar-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                  DL_TYPE_DATASET_IMAGE, G_TYPE_STRING);
  /* The prompts, LoRA columns, token or base model changed. */
  signals[SIGNAL_PREVIEWS_CHANGED] = g_signal_new ("previews-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                                   NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dl_project_init (DlProject *self)
{
  self->token = g_strdup ("sks");
  self->class_word = g_strdup ("");
  self->caption_template = g_strdup (DL_CAPTION_DEFAULT_TEMPLATE);
  self->resolution = DL_PROJECT_DEFAULT_RESOLUTION;
  self->images = g_list_store_new (DL_TYPE_DATASET_IMAGE);
  self->paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->prompts = g_new0 (char *, 1);
  self->negative_prompt = g_strdup ("");
  self->templates = g_array_new (FALSE, FALSE, sizeof (guint));
  self->loras = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  self->train_settings = dl_train_settings_new (DL_TRAIN_LORA);
  dl_project_clear_train_derived (self->train_settings);
  self->removed = g_ptr_array_new_with_free_func (g_object_unref);
  self->removed_positions = g_array_new (FALSE, FALSE, sizeof (guint));
  self->cancellable = g_cancellable_new ();
  self->pending_sidecars = g_hash_table_new_full (g_direct_hash, g_direct_equal, g_object_unref, NULL);
}
