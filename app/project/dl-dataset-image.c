/* One picture of the dataset: plain state with property notifications, so that the
 * grid's tiles can follow it. */
#include "dl-config.h"

#include "dl-dataset-image.h"

struct _DlDatasetImage
{
  GObject parent_instance;
  GFile *file;
  char *path;
  char *display_name;
  char *caption;
  DlImageState state;
  char *error;
  int width, height;
  char *content_hash;
  gboolean too_small;
  char *duplicate_of;
  char *warning;
};

G_DEFINE_FINAL_TYPE (DlDatasetImage, dl_dataset_image, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_FILE,
  PROP_CAPTION,
  PROP_STATE,
  PROP_ERROR,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_WARNING,
  N_PROPS
};
static GParamSpec *props[N_PROPS];

static void
dl_dataset_image_finalize (GObject *object)
{
  DlDatasetImage *self = DL_DATASET_IMAGE (object);
  g_clear_object (&self->file);
  g_free (self->path);
  g_free (self->display_name);
  g_free (self->caption);
  g_free (self->error);
  g_free (self->content_hash);
  g_free (self->duplicate_of);
  g_free (self->warning);
  G_OBJECT_CLASS (dl_dataset_image_parent_class)->finalize (object);
}

static void
dl_dataset_image_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  DlDatasetImage *self = DL_DATASET_IMAGE (object);
  switch (prop_id)
    {
    case PROP_FILE:
      g_value_set_object (value, self->file);
      break;
    case PROP_CAPTION:
      g_value_set_string (value, self->caption);
      break;
    case PROP_STATE:
      g_value_set_int (value, self->state);
      break;
    case PROP_ERROR:
      g_value_set_string (value, self->error);
      break;
    case PROP_WIDTH:
      g_value_set_int (value, self->width);
      break;
    case PROP_HEIGHT:
      g_value_set_int (value, self->height);
      break;
    case PROP_WARNING:
      g_value_set_string (value, self->warning);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_dataset_image_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  DlDatasetImage *self = DL_DATASET_IMAGE (object);
  switch (prop_id)
    {
    case PROP_FILE:
      self->file = g_value_dup_object (value);
      break;
    case PROP_CAPTION:
      dl_dataset_image_set_caption (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dl_dataset_image_constructed (GObject *object)
{
  DlDatasetImage *self = DL_DATASET_IMAGE (object);
  G_OBJECT_CLASS (dl_dataset_image_parent_class)->constructed (object);
  g_assert (self->file != NULL);
  self->path = g_file_get_path (self->file);
  self->display_name = g_file_get_basename (self->file);
}

static void
dl_dataset_image_class_init (DlDatasetImageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->finalize = dl_dataset_image_finalize;
  object_class->get_property = dl_dataset_image_get_property;
  object_class->set_property = dl_dataset_image_set_property;
  object_class->constructed = dl_dataset_image_constructed;

  GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  props[PROP_FILE] = g_param_spec_object ("file", NULL, NULL, G_TYPE_FILE,
                                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  props[PROP_CAPTION] = g_param_spec_string ("caption", NULL, NULL, "",
                                             G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_STATE] =
    g_param_spec_int ("state", NULL, NULL, DL_IMAGE_STATE_LOADING, DL_IMAGE_STATE_MISSING, DL_IMAGE_STATE_LOADING, ro);
  props[PROP_ERROR] = g_param_spec_string ("error", NULL, NULL, NULL, ro);
  props[PROP_WIDTH] = g_param_spec_int ("width", NULL, NULL, 0, G_MAXINT, 0, ro);
  props[PROP_HEIGHT] = g_param_spec_int ("height", NULL, NULL, 0, G_MAXINT, 0, ro);
  props[PROP_WARNING] = g_param_spec_string ("warning", NULL, NULL, NULL, ro);
  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
dl_dataset_image_init (DlDatasetImage *self)
{
  self->caption = g_strdup ("");
}

DlDatasetImage *
dl_dataset_image_new (GFile *file, const char *caption)
{
  g_return_val_if_fail (G_IS_FILE (file), NULL);
  return g_object_new (DL_TYPE_DATASET_IMAGE, "file", file, "caption", caption ? caption : "", NULL);
}

GFile *
dl_dataset_image_get_file (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->file;
}

const char *
dl_dataset_image_get_path (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->path;
}

const char *
dl_dataset_image_get_display_name (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->display_name;
}

const char *
dl_dataset_image_get_caption (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->caption;
}

void
dl_dataset_image_set_caption (DlDatasetImage *self, const char *caption)
{
  g_return_if_fail (DL_IS_DATASET_IMAGE (self));
  if (!caption)
    caption = "";
  if (g_strcmp0 (self->caption, caption) == 0)
    return;
  g_free (self->caption);
  self->caption = g_strdup (caption);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CAPTION]);
}

DlImageState
dl_dataset_image_get_state (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), DL_IMAGE_STATE_LOADING);
  return self->state;
}

const char *
dl_dataset_image_get_error (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->error;
}

int
dl_dataset_image_get_width (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), 0);
  return self->width;
}

int
dl_dataset_image_get_height (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), 0);
  return self->height;
}

const char *
dl_dataset_image_get_content_hash (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->content_hash;
}

gboolean
dl_dataset_image_get_too_small (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), FALSE);
  return self->too_small;
}

const char *
dl_dataset_image_get_duplicate_of (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->duplicate_of;
}

const char *
dl_dataset_image_get_warning (DlDatasetImage *self)
{
  g_return_val_if_fail (DL_IS_DATASET_IMAGE (self), NULL);
  return self->warning;
}

static void
set_state (DlDatasetImage *self, DlImageState state, const char *error)
{
  gboolean state_changed = self->state != state;
  gboolean error_changed = g_strcmp0 (self->error, error) != 0;
  self->state = state;
  if (error_changed)
    {
      g_free (self->error);
      self->error = g_strdup (error);
    }
  if (state_changed)
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_STATE]);
  if (error_changed)
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_ERROR]);
}

static void
set_size (DlDatasetImage *self, int width, int height)
{
  if (self->width != width)
    {
      self->width = width;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_WIDTH]);
    }
  if (self->height != height)
    {
      self->height = height;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_HEIGHT]);
    }
}

void
dl_dataset_image_set_loading (DlDatasetImage *self)
{
  g_return_if_fail (DL_IS_DATASET_IMAGE (self));
  set_state (self, DL_IMAGE_STATE_LOADING, NULL);
}

void
dl_dataset_image_set_ready (DlDatasetImage *self, int width, int height, const char *content_hash)
{
  g_return_if_fail (DL_IS_DATASET_IMAGE (self));
  g_free (self->content_hash);
  self->content_hash = g_strdup (content_hash);
  set_size (self, width, height);
  set_state (self, DL_IMAGE_STATE_READY, NULL);
}

void
dl_dataset_image_set_failed (DlDatasetImage *self, DlImageState state, const char *error)
{
  g_return_if_fail (DL_IS_DATASET_IMAGE (self));
  g_return_if_fail (state == DL_IMAGE_STATE_UNREADABLE || state == DL_IMAGE_STATE_MISSING);
  g_clear_pointer (&self->content_hash, g_free);
  set_size (self, 0, 0);
  set_state (self, state, error);
}

void
dl_dataset_image_set_warnings (DlDatasetImage *self, int resolution, const char *duplicate_of)
{
  g_return_if_fail (DL_IS_DATASET_IMAGE (self));
  gboolean ready = self->state == DL_IMAGE_STATE_READY;
  int shorter = MIN (self->width, self->height);
  self->too_small = ready && shorter < resolution;
  g_free (self->duplicate_of);
  self->duplicate_of = ready ? g_strdup (duplicate_of) : NULL;

  GString *w = g_string_new (NULL);
  if (self->too_small)
    g_string_append_printf (w, "Too small for %d px training (shorter side %d px)", resolution, shorter);
  if (self->duplicate_of)
    g_string_append_printf (w, "%sSame picture as “%s”", w->len ? " · " : "", self->duplicate_of);
  char *warning = w->len ? g_string_free (w, FALSE) : (g_string_free (w, TRUE), NULL);
  if (g_strcmp0 (warning, self->warning) != 0)
    {
      g_free (self->warning);
      self->warning = warning;
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_WARNING]);
    }
  else
    g_free (warning);
}
