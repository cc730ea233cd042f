/* The project file: the project as JSON text and back.  Reading errors name the
 * file and what is wrong in it. */
#include "dl-config.h"

#include "dl-project-private.h"

#include <math.h>

#include "dl-caption.h"
#include "dl-error.h"
#include "io/dl-json-write.h"

#define MAX_PROJECT_FILE_BYTES (64 * 1024 * 1024)

static const char *const known_keys[] = { "format",  "version",  "concept", "base_model",
                                          "dataset", "previews", "training" };
static const char *const train_derived[] = DL_PROJECT_TRAIN_DERIVED;

/* "training": the version, one member per option but the derived ones, and the
 * members a newer version wrote */
static void
write_training (DlProject *self, JsonBuilder *b)
{
  g_autoptr (JsonNode) settings = dl_train_settings_to_json (self->train_settings);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, DL_PROJECT_TRAINING_VERSION);
  /* in the settings' order (JsonObjectIter in json-glib 1.6 has none) */
  JsonObject *o = json_node_get_object (settings);
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    {
      if (g_strv_contains (train_derived, l->data))
        continue;
      json_builder_set_member_name (b, l->data);
      json_builder_add_value (b, json_node_copy (json_object_get_member (o, l->data)));
    }
  g_autoptr (GList) unknown = self->training_unknown ? json_object_get_members (self->training_unknown) : NULL;
  for (GList *l = unknown; l; l = l->next)
    {
      json_builder_set_member_name (b, l->data);
      json_builder_add_value (b, json_node_copy (json_object_get_member (self->training_unknown, l->data)));
    }
  json_builder_end_object (b);
}

char *
dl_project_to_json (DlProject *self)
{
  g_return_val_if_fail (DL_IS_PROJECT (self), NULL);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, DL_PROJECT_FORMAT);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, DL_PROJECT_VERSION);

  json_builder_set_member_name (b, "concept");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "token");
  json_builder_add_string_value (b, self->token);
  json_builder_set_member_name (b, "class");
  json_builder_add_string_value (b, self->class_word);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "base_model");
  if (self->base_model)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, self->base_model);
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);

  json_builder_set_member_name (b, "dataset");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "resolution");
  json_builder_add_int_value (b, self->resolution);
  json_builder_set_member_name (b, "caption_template");
  json_builder_add_string_value (b, self->caption_template);
  json_builder_set_member_name (b, "images");
  json_builder_begin_array (b);
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->images));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (DlDatasetImage) image = g_list_model_get_item (G_LIST_MODEL (self->images), i);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, dl_dataset_image_get_path (image));
      json_builder_set_member_name (b, "caption");
      json_builder_add_string_value (b, dl_dataset_image_get_caption (image));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "previews");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "prompts");
  json_builder_begin_array (b);
  for (char **p = self->prompts; *p; p++)
    json_builder_add_string_value (b, *p);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "negative_prompt");
  json_builder_add_string_value (b, self->negative_prompt);
  json_builder_set_member_name (b, "templates");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->templates->len; i++)
    json_builder_add_int_value (b, g_array_index (self->templates, guint, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "loras");
  json_builder_begin_array (b);
  for (guint i = 0; i < self->loras->len; i++)
    {
      DlProjectLora *l = self->loras->pdata[i];
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      json_builder_add_string_value (b, l->path);
      json_builder_set_member_name (b, "strength");
      json_builder_add_double_value (b, l->strength);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "training");
  write_training (self, b);

  if (self->unknown)
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *node;
      json_object_iter_init (&iter, self->unknown);
      while (json_object_iter_next (&iter, &name, &node))
        {
          json_builder_set_member_name (b, name);
          json_builder_add_value (b, json_node_copy (node));
        }
    }
  json_builder_end_object (b);

  /* not json-glib 1.6's generator: it writes 1e-08 as "1e-08.0" */
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return dl_json_write (root, TRUE, NULL);
}

/* -- reading -- */

typedef struct
{
  const char *file_name;
  GError **error;
} Reader;

G_GNUC_PRINTF (2, 3) static gboolean bad (Reader *r, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (r->error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is not a valid project: %s", r->file_name, msg);
  return FALSE;
}

/* An optional member: absent or null gives NULL; another type is an error. */
static gboolean
get_object (Reader *r, JsonObject *parent, const char *name, const char *where, JsonObject **out)
{
  *out = NULL;
  JsonNode *node = json_object_get_member (parent, name);
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return bad (r, "%s%s should be an object", where, name);
  *out = json_node_get_object (node);
  return TRUE;
}

static gboolean
get_array (Reader *r, JsonObject *parent, const char *name, const char *where, JsonArray **out)
{
  *out = NULL;
  JsonNode *node = json_object_get_member (parent, name);
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return bad (r, "%s%s should be a list", where, name);
  *out = json_node_get_array (node);
  return TRUE;
}

static gboolean
get_string (Reader *r, JsonObject *parent, const char *name, const char *where, const char **out)
{
  *out = NULL;
  JsonNode *node = parent ? json_object_get_member (parent, name) : NULL;
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return bad (r, "%s%s should be text", where, name);
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
get_number (Reader *r, JsonObject *parent, const char *name, const char *where, gboolean *present, double *out)
{
  *present = FALSE;
  JsonNode *node = parent ? json_object_get_member (parent, name) : NULL;
  if (!node || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  GType t = JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;
  if (t == G_TYPE_INT64)
    *out = (double)json_node_get_int (node);
  else if (t == G_TYPE_DOUBLE)
    *out = json_node_get_double (node);
  else
    return bad (r, "%s%s should be a number", where, name);
  *present = TRUE;
  return TRUE;
}

static char *
resolve_path (GFile *project_file, const char *path)
{
  if (g_path_is_absolute (path))
    return g_strdup (path);
  /* hand-written projects may use paths relative to the project file */
  g_autoptr (GFile) dir = g_file_get_parent (project_file);
  g_autoptr (GFile) resolved = dir ? g_file_resolve_relative_path (dir, path) : NULL;
  return resolved ? g_file_get_path (resolved) : g_strdup (path);
}

static gboolean
read_images (DlProject *self, Reader *r, JsonObject *dataset)
{
  JsonArray *images;
  if (!get_array (r, dataset, "images", "dataset.", &images))
    return FALSE;
  guint n = images ? json_array_get_length (images) : 0;
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (images, i);
      g_autofree char *where = g_strdup_printf ("dataset.images[%u].", i);
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return bad (r, "dataset.images[%u] should be an object", i);
      JsonObject *o = json_node_get_object (node);
      const char *path, *caption;
      if (!get_string (r, o, "path", where, &path) || !get_string (r, o, "caption", where, &caption))
        return FALSE;
      if (!path || !*path)
        return bad (r, "dataset.images[%u] has no path", i);
      g_autofree char *abs = resolve_path (self->file, path);
      g_autoptr (GFile) file = g_file_new_for_path (abs);
      DlDatasetImage *image = dl_dataset_image_new (file, caption);
      dl_project_track_image (self, image);
      g_ptr_array_add (items, image);
    }
  g_list_store_splice (self->images, 0, 0, items->pdata, items->len);
  return TRUE;
}

static gboolean
read_previews (DlProject *self, Reader *r, JsonObject *previews)
{
  if (!previews)
    return TRUE;
  JsonArray *prompts, *templates, *loras;
  const char *negative;
  if (!get_array (r, previews, "prompts", "previews.", &prompts) ||
      !get_array (r, previews, "templates", "previews.", &templates) ||
      !get_array (r, previews, "loras", "previews.", &loras) ||
      !get_string (r, previews, "negative_prompt", "previews.", &negative))
    return FALSE;

  g_autoptr (GStrvBuilder) sb = g_strv_builder_new ();
  for (guint i = 0; prompts && i < json_array_get_length (prompts); i++)
    {
      JsonNode *node = json_array_get_element (prompts, i);
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        return bad (r, "previews.prompts[%u] should be text", i);
      g_strv_builder_add (sb, json_node_get_string (node));
    }
  g_strfreev (self->prompts);
  self->prompts = g_strv_builder_end (sb);

  g_free (self->negative_prompt);
  self->negative_prompt = g_strdup (negative ? negative : "");

  for (guint i = 0; templates && i < json_array_get_length (templates); i++)
    {
      JsonNode *node = json_array_get_element (templates, i);
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64 ||
          json_node_get_int (node) < 0 || json_node_get_int (node) > G_MAXINT)
        return bad (r, "previews.templates[%u] should be a template number", i);
      guint idx = (guint)json_node_get_int (node);
      g_array_append_val (self->templates, idx);
    }

  for (guint i = 0; loras && i < json_array_get_length (loras); i++)
    {
      JsonNode *node = json_array_get_element (loras, i);
      g_autofree char *where = g_strdup_printf ("previews.loras[%u].", i);
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return bad (r, "previews.loras[%u] should be an object", i);
      const char *path;
      double strength = 1.0;
      gboolean has_strength;
      if (!get_string (r, json_node_get_object (node), "path", where, &path) ||
          !get_number (r, json_node_get_object (node), "strength", where, &has_strength, &strength))
        return FALSE;
      if (!path || !*path)
        return bad (r, "previews.loras[%u] has no path", i);
      if (!isfinite (strength))
        return bad (r, "previews.loras[%u].strength is not a number", i);
      g_autofree char *abs = resolve_path (self->file, path);
      g_ptr_array_add (self->loras, dl_project_lora_new (abs, has_strength ? strength : 1.0));
    }
  return TRUE;
}

/* Version 1 held no settings (the defaults for LoRA); from version 2 one member
 * per option.  Members that are no option are kept for saving. */
static gboolean
read_training (DlProject *self, Reader *r, JsonObject *training)
{
  if (!training)
    return TRUE;
  double version = 1;
  gboolean has_version;
  if (!get_number (r, training, "version", "training.", &has_version, &version))
    return FALSE;
  if (has_version && (version < 1 || version != (double)(gint64)version))
    return bad (r, "training.version should be a whole number from 1");

  g_autoptr (GList) members = json_object_get_members (training);
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      if (g_str_equal (name, "version") || dl_train_settings_has_option (name, NULL, NULL))
        continue;
      if (!self->training_unknown)
        self->training_unknown = json_object_new ();
      json_object_set_member (self->training_unknown, name, json_node_copy (json_object_get_member (training, name)));
    }
  if (version < 2)
    return TRUE;
  const char *method;
  if (!get_string (r, training, "method", "training.", &method))
    return FALSE;
  /* none: LoRA's (the parser's object, read once) */
  if (!method)
    json_object_set_string_member (training, "method", dl_train_method_name (DL_TRAIN_LORA));

  g_autoptr (JsonNode) node_copy = json_node_init_object (json_node_alloc (), training);
  g_autoptr (GError) local = NULL;
  g_autoptr (DlTrainSettings) settings = dl_train_settings_from_json (node_copy, &local);
  if (!settings)
    return bad (r, "%s", local->message);
  dl_project_clear_train_derived (settings);
  dl_train_settings_free (self->train_settings);
  self->train_settings = g_steal_pointer (&settings);
  return TRUE;
}

static gboolean
read_root (DlProject *self, Reader *r, JsonNode *root_node)
{
  if (!root_node || !JSON_NODE_HOLDS_OBJECT (root_node))
    return bad (r, "the file does not hold a JSON object");
  JsonObject *root = json_node_get_object (root_node);
  const char *format;
  if (!get_string (r, root, "format", "", &format))
    return FALSE;
  if (g_strcmp0 (format, DL_PROJECT_FORMAT) != 0)
    {
      g_set_error (r->error, DL_ERROR, DL_ERROR_INVALID_FILE,
                   "“%s” is not a Dreamloom project (it has no \"format\": \"%s\")", r->file_name, DL_PROJECT_FORMAT);
      return FALSE;
    }
  double version = 0;
  gboolean has_version;
  if (!get_number (r, root, "version", "", &has_version, &version))
    return FALSE;
  if (!has_version || version < 1 || version != (double)(gint64)version)
    return bad (r, "its \"version\" should be a whole number from 1");
  if (version > DL_PROJECT_VERSION)
    {
      g_set_error (r->error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "“%s” was saved by a newer version of Dreamloom (project format %.0f; this version reads up to %d)",
                   r->file_name, version, DL_PROJECT_VERSION);
      return FALSE;
    }

  JsonObject *concept, *base_model, *dataset, *previews, *training;
  if (!get_object (r, root, "concept", "", &concept) || !get_object (r, root, "base_model", "", &base_model) ||
      !get_object (r, root, "dataset", "", &dataset) || !get_object (r, root, "previews", "", &previews) ||
      !get_object (r, root, "training", "", &training))
    return FALSE;

  const char *token, *class_word, *model_path, *template_text;
  if (!get_string (r, concept, "token", "concept.", &token) ||
      !get_string (r, concept, "class", "concept.", &class_word) ||
      !get_string (r, base_model, "path", "base_model.", &model_path) ||
      !get_string (r, dataset, "caption_template", "dataset.", &template_text))
    return FALSE;
  double resolution = DL_PROJECT_DEFAULT_RESOLUTION;
  gboolean has_resolution;
  if (!get_number (r, dataset, "resolution", "dataset.", &has_resolution, &resolution))
    return FALSE;
  if (has_resolution && (resolution < 32 || resolution > 4096 || resolution != (double)(int)resolution))
    return bad (r, "dataset.resolution should be a whole number of pixels from 32 to 4096");

  g_free (self->token);
  self->token = g_strdup (token ? token : "");
  g_free (self->class_word);
  self->class_word = g_strdup (class_word ? class_word : "");
  g_free (self->caption_template);
  self->caption_template = g_strdup (template_text ? template_text : DL_CAPTION_DEFAULT_TEMPLATE);
  self->resolution = (int)resolution;
  g_free (self->base_model);
  self->base_model = model_path && *model_path ? resolve_path (self->file, model_path) : NULL;

  if (dataset && !read_images (self, r, dataset))
    return FALSE;
  if (!read_previews (self, r, previews))
    return FALSE;

  if (!read_training (self, r, training))
    return FALSE;

  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  json_object_iter_init (&iter, root);
  while (json_object_iter_next (&iter, &name, &node))
    {
      if (g_strv_contains (known_keys, name))
        continue;
      if (!self->unknown)
        self->unknown = json_object_new ();
      json_object_set_member (self->unknown, name, json_node_copy (node));
    }
  return TRUE;
}

static DlProject *
parse_project (GFile *file, GCancellable *cancellable, GError **error)
{
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;

  g_autoptr (GFileInfo) info =
    g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE, G_FILE_QUERY_INFO_NONE, cancellable, &local);
  if (!info)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not open “%s”: %s", name, local->message);
      return NULL;
    }
  if (g_file_info_get_size (info) > MAX_PROJECT_FILE_BYTES)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is too large to be a project file", name);
      return NULL;
    }
  if (!g_file_load_contents (file, cancellable, &contents, &len, NULL, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Could not read “%s”: %s", name, local->message);
      return NULL;
    }
  if (!g_utf8_validate_len (contents, len, NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is not a Dreamloom project (it is not text)", name);
      return NULL;
    }
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, contents, (gssize)len, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s” is not a valid project: %s", name, local->message);
      return NULL;
    }

  DlProject *self = g_object_new (DL_TYPE_PROJECT, NULL);
  self->file = g_object_ref (file);
  self->quiet = TRUE;
  Reader r = { name, error };
  gboolean ok = read_root (self, &r, json_parser_get_root (parser));
  self->quiet = FALSE;
  if (!ok)
    {
      g_object_unref (self);
      return NULL;
    }
  return self;
}

DlProject *
dl_project_read (GFile *file, GError **error)
{
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  return parse_project (file, NULL, error);
}

DlProject *
dl_project_load (GFile *file, GError **error)
{
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  DlProject *self = parse_project (file, NULL, error);
  if (self)
    dl_project_reload_images (self);
  return self;
}

static void
load_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  DlProject *project = parse_project (data, cancellable, &error);
  if (project)
    g_task_return_pointer (task, project, g_object_unref);
  else
    g_task_return_error (task, error);
}

void
dl_project_load_async (GFile *file, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (G_IS_FILE (file));
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, dl_project_load_async);
  g_task_set_task_data (task, g_object_ref (file), g_object_unref);
  g_task_run_in_thread (task, load_thread);
}

DlProject *
dl_project_load_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  DlProject *self = g_task_propagate_pointer (G_TASK (result), error);
  if (self)
    dl_project_reload_images (self);
  return self;
}
