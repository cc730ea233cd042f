/* dl-train-previews.c: see dl-train-previews.h. */
#include "dl-config.h"

#include "dl-train-previews.h"

#include <glib/gi18n.h>
#include <math.h>

#include "dl-image-viewer.h"

#define THUMB 160

typedef struct
{
  gint64 step;
  GPtrArray *paths; /* by prompt index; NULL where none */
  GPtrArray *prompts;
} StepSet;

struct _DlTrainPreviews
{
  GtkWidget parent_instance;
  GtkWidget *box;
  GtkWidget *grid;
  GtkWidget *scale;
  GtkWidget *scale_label;
  GtkWidget *empty;
  GPtrArray *sets;    /* StepSet, by step ascending */
  GArray *val_steps;  /* gint64 */
  GArray *val_losses; /* double */
  int shown;          /* index into sets, -1: the latest */
  gint64 column_step[DL_TRAIN_PREVIEWS_N_COLUMNS];
  gboolean syncing;
};

G_DEFINE_FINAL_TYPE (DlTrainPreviews, dl_train_previews, GTK_TYPE_WIDGET)

static void
step_set_free (gpointer p)
{
  StepSet *s = p;
  g_ptr_array_unref (s->paths);
  g_ptr_array_unref (s->prompts);
  g_free (s);
}

static StepSet *
find_set (DlTrainPreviews *self, gint64 step)
{
  for (guint i = 0; i < self->sets->len; i++)
    {
      StepSet *s = self->sets->pdata[i];
      if (s->step == step)
        return s;
    }
  return NULL;
}

static double
val_of (DlTrainPreviews *self, gint64 step)
{
  for (guint i = 0; i < self->val_steps->len; i++)
    if (g_array_index (self->val_steps, gint64, i) == step)
      return g_array_index (self->val_losses, double, i);
  return NAN;
}

/* the columns' sets: base = step 0; latest = the slider's or the last; best =
 * the lowest validation loss among the steps with previews */
static void
pick (DlTrainPreviews *self, StepSet *out[DL_TRAIN_PREVIEWS_N_COLUMNS])
{
  out[0] = find_set (self, 0);
  out[1] = NULL;
  out[2] = NULL;
  if (self->sets->len)
    {
      int i = self->shown >= 0 && (guint)self->shown < self->sets->len ? self->shown : (int)self->sets->len - 1;
      out[1] = self->sets->pdata[i];
    }
  double best = INFINITY;
  for (guint i = 0; i < self->sets->len; i++)
    {
      StepSet *s = self->sets->pdata[i];
      double v = val_of (self, s->step);
      if (s->step > 0 && isfinite (v) && v < best)
        {
          best = v;
          out[2] = s;
        }
    }
}

/* the image viewer for a preview file: its prompt as the title, its column below */
static DlImageViewer *
open_viewer (GtkWidget *owner, const char *path, const char *prompt, const char *column)
{
  GtkRoot *root = gtk_widget_get_root (owner);
  g_autoptr (GError) error = NULL;
  DlImageViewer *v =
    dl_image_viewer_new_for_file (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL, path, prompt, column, &error);
  if (!v)
    {
      g_warning ("Cannot show the preview %s: %s", path, error->message);
      return NULL;
    }
  gtk_window_present (GTK_WINDOW (v));
  return v;
}

static void
enlarge (GtkGestureClick *gesture, int n, double x, double y, gpointer data)
{
  (void)n, (void)x, (void)y, (void)data;
  GtkWidget *picture = gtk_event_controller_get_widget (GTK_EVENT_CONTROLLER (gesture));
  const char *path = g_object_get_data (G_OBJECT (picture), "path");
  if (path)
    open_viewer (picture, path, g_object_get_data (G_OBJECT (picture), "prompt"),
                 g_object_get_data (G_OBJECT (picture), "column"));
}

static GtkWidget *
picture_for (const char *path, const char *prompt, const char *column, const char *title)
{
  GtkWidget *pic = gtk_picture_new ();
  gtk_widget_set_size_request (pic, THUMB, THUMB);
  gtk_picture_set_can_shrink (GTK_PICTURE (pic), TRUE);
  gtk_widget_add_css_class (pic, "card");
  if (path)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GdkTexture) tex = gdk_texture_new_from_filename (path, &error);
      if (tex)
        gtk_picture_set_paintable (GTK_PICTURE (pic), GDK_PAINTABLE (tex));
      g_autofree char *file = g_path_get_basename (path);
      gtk_accessible_update_property (GTK_ACCESSIBLE (pic), GTK_ACCESSIBLE_PROPERTY_LABEL, title,
                                      GTK_ACCESSIBLE_PROPERTY_DESCRIPTION, file, -1);
      g_object_set_data_full (G_OBJECT (pic), "path", g_strdup (path), g_free);
      g_object_set_data_full (G_OBJECT (pic), "prompt", g_strdup (prompt ? prompt : ""), g_free);
      g_object_set_data_full (G_OBJECT (pic), "column", g_strdup (column), g_free);
      GtkGesture *click = gtk_gesture_click_new ();
      g_signal_connect (click, "released", G_CALLBACK (enlarge), NULL);
      gtk_widget_add_controller (pic, GTK_EVENT_CONTROLLER (click));
      gtk_widget_set_cursor_from_name (pic, "zoom-in");
    }
  return pic;
}

static void
rebuild (DlTrainPreviews *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (self->grid)))
    gtk_grid_remove (GTK_GRID (self->grid), child);
  StepSet *cols[DL_TRAIN_PREVIEWS_N_COLUMNS];
  pick (self, cols);
  gtk_widget_set_visible (self->empty, self->sets->len == 0);
  guint rows = 0;
  for (int c = 0; c < DL_TRAIN_PREVIEWS_N_COLUMNS; c++)
    {
      self->column_step[c] = cols[c] ? cols[c]->step : -1;
      if (cols[c])
        rows = MAX (rows, cols[c]->paths->len);
    }
  if (!self->sets->len)
    return;
  char *heads[DL_TRAIN_PREVIEWS_N_COLUMNS] = { NULL };
  for (int c = 0; c < DL_TRAIN_PREVIEWS_N_COLUMNS; c++)
    {
      g_autofree char *step = cols[c] ? g_strdup_printf ("%" G_GINT64_FORMAT, cols[c]->step) : NULL;
      if (c == 0)
        heads[c] = g_strdup (_ ("Base Model"));
      else if (!cols[c])
        heads[c] = g_strdup (c == 1 ? _ ("Latest") : _ ("Best"));
      else if (c == 1 && self->shown >= 0)
        /* Translators: a column of training previews: the step the slider picked */
        heads[c] = g_strdup_printf (_ ("Step %s"), step);
      else if (c == 1)
        /* Translators: a column of training previews: the latest step with previews */
        heads[c] = g_strdup_printf (_ ("Latest · Step %s"), step);
      else
        /* Translators: a column of training previews: the step with the lowest validation loss */
        heads[c] = g_strdup_printf (_ ("Best · Step %s"), step);
      GtkWidget *l = gtk_label_new (heads[c]);
      gtk_widget_add_css_class (l, "heading");
      gtk_grid_attach (GTK_GRID (self->grid), l, c + 1, 0, 1, 1);
    }
  for (guint r = 0; r < rows; r++)
    {
      const char *prompt = NULL;
      for (int c = 0; c < DL_TRAIN_PREVIEWS_N_COLUMNS && !prompt; c++)
        if (cols[c] && r < cols[c]->prompts->len)
          prompt = cols[c]->prompts->pdata[r];
      GtkWidget *l = gtk_label_new (prompt ? prompt : "");
      gtk_label_set_wrap (GTK_LABEL (l), TRUE);
      gtk_label_set_max_width_chars (GTK_LABEL (l), 24);
      gtk_label_set_xalign (GTK_LABEL (l), 0);
      gtk_widget_add_css_class (l, "dim-label");
      gtk_grid_attach (GTK_GRID (self->grid), l, 0, r + 1, 1, 1);
      for (int c = 0; c < DL_TRAIN_PREVIEWS_N_COLUMNS; c++)
        {
          const char *path = cols[c] && r < cols[c]->paths->len ? cols[c]->paths->pdata[r] : NULL;
          /* Translators: a training preview: its prompt, then its column ("Best · Step 200") */
          g_autofree char *title = g_strdup_printf (_ ("%s, %s"), prompt ? prompt : "", heads[c]);
          gtk_grid_attach (GTK_GRID (self->grid), picture_for (path, prompt, heads[c], title), c + 1, r + 1, 1, 1);
        }
    }
  for (int c = 0; c < DL_TRAIN_PREVIEWS_N_COLUMNS; c++)
    g_free (heads[c]);
  /* the slider: one position per step with previews */
  self->syncing = TRUE;
  gtk_widget_set_visible (self->scale, self->sets->len > 1);
  gtk_range_set_range (GTK_RANGE (self->scale), 0, MAX (1, (int)self->sets->len - 1));
  gtk_range_set_value (GTK_RANGE (self->scale), self->shown >= 0 ? self->shown : (int)self->sets->len - 1);
  self->syncing = FALSE;
}

static void
scale_moved (GtkRange *range, DlTrainPreviews *self)
{
  if (self->syncing)
    return;
  int i = (int)lround (gtk_range_get_value (range));
  dl_train_previews_show_step (self, i >= (int)self->sets->len - 1 ? -1 : i);
}

static void
dl_train_previews_dispose (GObject *object)
{
  DlTrainPreviews *self = DL_TRAIN_PREVIEWS (object);
  g_clear_pointer (&self->box, gtk_widget_unparent);
  G_OBJECT_CLASS (dl_train_previews_parent_class)->dispose (object);
}

static void
dl_train_previews_finalize (GObject *object)
{
  DlTrainPreviews *self = DL_TRAIN_PREVIEWS (object);
  g_ptr_array_unref (self->sets);
  g_array_unref (self->val_steps);
  g_array_unref (self->val_losses);
  G_OBJECT_CLASS (dl_train_previews_parent_class)->finalize (object);
}

static void
dl_train_previews_class_init (DlTrainPreviewsClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  oc->dispose = dl_train_previews_dispose;
  oc->finalize = dl_train_previews_finalize;
  gtk_widget_class_set_layout_manager_type (GTK_WIDGET_CLASS (klass), GTK_TYPE_BIN_LAYOUT);
}

static void
dl_train_previews_init (DlTrainPreviews *self)
{
  self->sets = g_ptr_array_new_with_free_func (step_set_free);
  self->val_steps = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->val_losses = g_array_new (FALSE, FALSE, sizeof (double));
  self->shown = -1;
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 12);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));
  self->empty = gtk_label_new (_ ("Preview images appear here while training: the base model, the latest step and "
                                  "the best one, side by side"));
  gtk_label_set_wrap (GTK_LABEL (self->empty), TRUE);
  gtk_widget_add_css_class (self->empty, "dim-label");
  gtk_box_append (GTK_BOX (self->box), self->empty);
  GtkWidget *sw = gtk_scrolled_window_new ();
  gtk_scrolled_window_set_policy (GTK_SCROLLED_WINDOW (sw), GTK_POLICY_AUTOMATIC, GTK_POLICY_NEVER);
  gtk_scrolled_window_set_propagate_natural_height (GTK_SCROLLED_WINDOW (sw), TRUE);
  self->grid = gtk_grid_new ();
  gtk_grid_set_row_spacing (GTK_GRID (self->grid), 8);
  gtk_grid_set_column_spacing (GTK_GRID (self->grid), 8);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->grid), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Training previews"),
                                  -1);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (sw), self->grid);
  gtk_box_append (GTK_BOX (self->box), sw);
  self->scale = gtk_scale_new_with_range (GTK_ORIENTATION_HORIZONTAL, 0, 1, 1);
  gtk_scale_set_draw_value (GTK_SCALE (self->scale), FALSE);
  gtk_widget_set_tooltip_text (self->scale, _ ("Look back through earlier previews"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->scale), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Preview step"), -1);
  g_signal_connect (self->scale, "value-changed", G_CALLBACK (scale_moved), self);
  gtk_widget_set_visible (self->scale, FALSE);
  gtk_box_append (GTK_BOX (self->box), self->scale);
}

DlTrainPreviews *
dl_train_previews_new (void)
{
  return g_object_new (DL_TYPE_TRAIN_PREVIEWS, NULL);
}

void
dl_train_previews_clear (DlTrainPreviews *self)
{
  g_ptr_array_set_size (self->sets, 0);
  g_array_set_size (self->val_steps, 0);
  g_array_set_size (self->val_losses, 0);
  self->shown = -1;
  rebuild (self);
}

void
dl_train_previews_add (DlTrainPreviews *self, gint64 step, int index, const char *prompt, const char *path)
{
  g_return_if_fail (index >= 0);
  StepSet *s = find_set (self, step);
  if (!s)
    {
      s = g_new0 (StepSet, 1);
      s->step = step;
      s->paths = g_ptr_array_new_with_free_func (g_free);
      s->prompts = g_ptr_array_new_with_free_func (g_free);
      guint at = 0;
      while (at < self->sets->len && ((StepSet *)self->sets->pdata[at])->step < step)
        at++;
      g_ptr_array_insert (self->sets, at, s);
    }
  while (s->paths->len <= (guint)index)
    {
      g_ptr_array_add (s->paths, NULL);
      g_ptr_array_add (s->prompts, NULL);
    }
  g_free (s->paths->pdata[index]);
  s->paths->pdata[index] = g_strdup (path);
  g_free (s->prompts->pdata[index]);
  s->prompts->pdata[index] = g_strdup (prompt);
  rebuild (self);
}

void
dl_train_previews_add_validation (DlTrainPreviews *self, gint64 step, double loss)
{
  g_array_append_val (self->val_steps, step);
  g_array_append_val (self->val_losses, loss);
  if (find_set (self, step))
    rebuild (self);
}

void
dl_train_previews_show_step (DlTrainPreviews *self, int i)
{
  self->shown = i >= 0 && (guint)i < self->sets->len ? i : -1;
  rebuild (self);
}

guint
dl_train_previews_get_n_steps (DlTrainPreviews *self)
{
  return self->sets->len;
}

gint64
dl_train_previews_get_step (DlTrainPreviews *self, DlTrainPreviewsColumn column)
{
  g_return_val_if_fail (column < DL_TRAIN_PREVIEWS_N_COLUMNS, -1);
  return self->column_step[column];
}

const char *
dl_train_previews_get_file (DlTrainPreviews *self, DlTrainPreviewsColumn column, int row)
{
  StepSet *cols[DL_TRAIN_PREVIEWS_N_COLUMNS];
  pick (self, cols);
  StepSet *s = cols[column];
  return s && row >= 0 && (guint)row < s->paths->len ? s->paths->pdata[row] : NULL;
}

DlImageViewer *
dl_train_previews_enlarge (DlTrainPreviews *self, DlTrainPreviewsColumn column, int row)
{
  g_return_val_if_fail (DL_IS_TRAIN_PREVIEWS (self), NULL);
  GtkWidget *pic = gtk_grid_get_child_at (GTK_GRID (self->grid), column + 1, row + 1);
  const char *path = pic ? g_object_get_data (G_OBJECT (pic), "path") : NULL;
  if (!path)
    return NULL;
  return open_viewer (GTK_WIDGET (self), path, g_object_get_data (G_OBJECT (pic), "prompt"),
                      g_object_get_data (G_OBJECT (pic), "column"));
}
