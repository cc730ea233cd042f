/* dl-checkpoint-list.c: see dl-checkpoint-list.h. */
#include "dl-config.h"

#include "dl-checkpoint-list.h"

#include "dl-row-text.h"
#include <adwaita.h>
#include <glib/gi18n.h>
#include <math.h>

typedef struct
{
  gint64 step;
  char *file, *state;
  double val_loss;
} Item;

struct _DlCheckpointList
{
  GtkWidget parent_instance;
  GtkWidget *list;
  GPtrArray *items; /* Item, by step ascending */
  gint64 best;
  gboolean can_use, can_delete;
};

enum
{
  SIGNAL_EXPORT,
  SIGNAL_USE,
  SIGNAL_DELETE,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (DlCheckpointList, dl_checkpoint_list, GTK_TYPE_WIDGET)

static void
item_free (gpointer p)
{
  Item *it = p;
  g_free (it->file);
  g_free (it->state);
  g_free (it);
}

static Item *
find (DlCheckpointList *self, gint64 step, guint *index)
{
  for (guint i = 0; i < self->items->len; i++)
    {
      Item *it = self->items->pdata[i];
      if (it->step == step)
        {
          if (index)
            *index = i;
          return it;
        }
    }
  return NULL;
}

static void
clicked (GtkButton *button, DlCheckpointList *self)
{
  gint64 step = *(gint64 *)g_object_get_data (G_OBJECT (button), "step");
  guint what = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "what"));
  Item *it = find (self, step, NULL);
  if (!it)
    return;
  if (what == SIGNAL_DELETE)
    g_signal_emit (self, signals[SIGNAL_DELETE], 0, it->step, it->file, it->state);
  else
    g_signal_emit (self, signals[what], 0, it->file);
}

static GtkWidget *
button (DlCheckpointList *self, const char *icon, const char *label, guint what, gint64 step)
{
  GtkWidget *b = gtk_button_new_from_icon_name (icon);
  gtk_widget_set_valign (b, GTK_ALIGN_CENTER);
  gtk_widget_set_tooltip_text (b, label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (b), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
  gtk_widget_add_css_class (b, "flat");
  gint64 *s = g_new (gint64, 1);
  *s = step;
  g_object_set_data_full (G_OBJECT (b), "step", s, g_free);
  g_object_set_data (G_OBJECT (b), "what", GUINT_TO_POINTER (what));
  g_signal_connect (b, "clicked", G_CALLBACK (clicked), self);
  return b;
}

static void
rebuild (DlCheckpointList *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (self->list)))
    gtk_list_box_remove (GTK_LIST_BOX (self->list), child);
  if (!self->items->len)
    {
      GtkWidget *row = adw_action_row_new ();
      dl_row_set_title (row, _ ("No checkpoints yet"));
      dl_row_set_subtitle (row, _ ("Training saves one every few hundred steps and at the end"));
      gtk_list_box_append (GTK_LIST_BOX (self->list), row);
      return;
    }
  for (guint i = self->items->len; i-- > 0;)
    {
      Item *it = self->items->pdata[i];
      GtkWidget *row = adw_action_row_new ();
      g_autofree char *step = g_strdup_printf ("%" G_GINT64_FORMAT, it->step);
      /* Translators: a checkpoint's row: the step it was saved at, and whether it is the best one */
      g_autofree char *title = g_strdup_printf (it->step == self->best ? _ ("Step %s · Best") : _ ("Step %s"), step);
      g_autofree char *sub = isfinite (it->val_loss) ? g_strdup_printf (_ ("Validation loss %.4f"), it->val_loss)
                                                     : g_strdup (_ ("Not validated"));
      dl_row_set_title (row, title);
      dl_row_set_subtitle (row, sub);
      if (it->step == self->best)
        {
          GtkWidget *star = gtk_image_new_from_icon_name ("starred-symbolic");
          gtk_accessible_update_property (GTK_ACCESSIBLE (star), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Best"), -1);
          adw_action_row_add_prefix (ADW_ACTION_ROW (row), star);
        }
      adw_action_row_add_suffix (ADW_ACTION_ROW (row),
                                 button (self, "document-save-symbolic", _ ("Export…"), SIGNAL_EXPORT, it->step));
      if (self->can_use)
        adw_action_row_add_suffix (
          ADW_ACTION_ROW (row), button (self, "image-x-generic-symbolic", _ ("Use in Previews"), SIGNAL_USE, it->step));
      GtkWidget *del = button (self, "user-trash-symbolic", _ ("Delete"), SIGNAL_DELETE, it->step);
      gtk_widget_set_sensitive (del, self->can_delete);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), del);
      g_autofree char *name = g_strconcat ("step-", step, NULL);
      gtk_widget_set_name (row, name);
      gtk_list_box_append (GTK_LIST_BOX (self->list), row);
    }
}

static void
dl_checkpoint_list_dispose (GObject *object)
{
  DlCheckpointList *self = DL_CHECKPOINT_LIST (object);
  g_clear_pointer (&self->list, gtk_widget_unparent);
  G_OBJECT_CLASS (dl_checkpoint_list_parent_class)->dispose (object);
}

static void
dl_checkpoint_list_finalize (GObject *object)
{
  g_ptr_array_unref (DL_CHECKPOINT_LIST (object)->items);
  G_OBJECT_CLASS (dl_checkpoint_list_parent_class)->finalize (object);
}

static void
dl_checkpoint_list_class_init (DlCheckpointListClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  oc->dispose = dl_checkpoint_list_dispose;
  oc->finalize = dl_checkpoint_list_finalize;
  gtk_widget_class_set_layout_manager_type (GTK_WIDGET_CLASS (klass), GTK_TYPE_BIN_LAYOUT);
  signals[SIGNAL_EXPORT] = g_signal_new ("export", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_USE] = g_signal_new ("use", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                      G_TYPE_NONE, 1, G_TYPE_STRING);
  signals[SIGNAL_DELETE] = g_signal_new ("delete", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 3, G_TYPE_INT64, G_TYPE_STRING, G_TYPE_STRING);
}

static void
dl_checkpoint_list_init (DlCheckpointList *self)
{
  self->items = g_ptr_array_new_with_free_func (item_free);
  self->best = -1;
  self->can_delete = TRUE;
  self->list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (self->list), GTK_SELECTION_NONE);
  gtk_widget_add_css_class (self->list, "boxed-list");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->list), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Checkpoints"), -1);
  gtk_widget_set_parent (self->list, GTK_WIDGET (self));
  rebuild (self);
}

DlCheckpointList *
dl_checkpoint_list_new (void)
{
  return g_object_new (DL_TYPE_CHECKPOINT_LIST, NULL);
}

void
dl_checkpoint_list_clear (DlCheckpointList *self)
{
  g_ptr_array_set_size (self->items, 0);
  self->best = -1;
  rebuild (self);
}

void
dl_checkpoint_list_add (DlCheckpointList *self, gint64 step, const char *file, const char *state, double val_loss)
{
  guint at;
  if (find (self, step, &at))
    g_ptr_array_remove_index (self->items, at);
  Item *it = g_new0 (Item, 1);
  it->step = step;
  it->file = g_strdup (file);
  it->state = g_strdup (state);
  it->val_loss = val_loss;
  at = 0;
  while (at < self->items->len && ((Item *)self->items->pdata[at])->step < step)
    at++;
  g_ptr_array_insert (self->items, at, it);
  rebuild (self);
}

void
dl_checkpoint_list_set_best (DlCheckpointList *self, gint64 step)
{
  self->best = step;
  rebuild (self);
}

void
dl_checkpoint_list_remove (DlCheckpointList *self, gint64 step)
{
  guint at;
  if (find (self, step, &at))
    {
      g_ptr_array_remove_index (self->items, at);
      rebuild (self);
    }
}

void
dl_checkpoint_list_set_can_use (DlCheckpointList *self, gboolean can_use)
{
  self->can_use = can_use;
  rebuild (self);
}

void
dl_checkpoint_list_set_can_delete (DlCheckpointList *self, gboolean can_delete)
{
  self->can_delete = can_delete;
  rebuild (self);
}

guint
dl_checkpoint_list_get_n_items (DlCheckpointList *self)
{
  return self->items->len;
}

const char *
dl_checkpoint_list_get_file (DlCheckpointList *self, gint64 step)
{
  Item *it = find (self, step, NULL);
  return it ? it->file : NULL;
}
