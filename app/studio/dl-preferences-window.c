#include "dl-config.h"

#include "dl-preferences-window.h"

#include <glib/gi18n.h>

#include "dl-preview-backend.h"
#include "sched/dl-sampler.h"
#include "vk/dl-device.h"

struct _DlPreferencesWindow
{
  AdwPreferencesWindow parent_instance;
  AdwComboRow *device_row;
  GtkSpinButton *steps_spin;
  AdwComboRow *sampler_row;
  GtkSpinButton *cfg_spin;
  GtkSpinButton *seed_spin;
  GtkSwitch *random_switch;

  GSettings *settings;
  GtkStringList *devices; /* "Automatic", then device names */
  gboolean syncing;
};

G_DEFINE_FINAL_TYPE (DlPreferencesWindow, dl_preferences_window, ADW_TYPE_PREFERENCES_WINDOW)

enum
{
  SIGNAL_DEVICES_LOADED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

/* ---- devices ---- */

static void
select_saved_device (DlPreferencesWindow *self)
{
  g_autofree char *saved = self->settings ? g_settings_get_string (self->settings, "device") : g_strdup ("");
  guint pick = 0;
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->devices));
  for (guint i = 1; i < n; i++)
    if (g_strcmp0 (gtk_string_list_get_string (self->devices, i), saved) == 0)
      pick = i;
  /* a GPU that is not there any more: keep the setting, show it as missing */
  if (pick == 0 && *saved)
    {
      g_autofree char *missing = g_strdup (saved);
      gtk_string_list_append (self->devices, missing);
      pick = n;
    }
  self->syncing = TRUE;
  adw_combo_row_set_selected (self->device_row, pick);
  self->syncing = FALSE;
}

static void
device_selected (DlPreferencesWindow *self)
{
  if (self->syncing || !self->settings)
    return;
  guint i = adw_combo_row_get_selected (self->device_row);
  /* the engine's selector takes a name part: the full name picks exactly this GPU */
  g_settings_set_string (self->settings, "device", i == 0 ? "" : gtk_string_list_get_string (self->devices, i));
}

static void
probe_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) infos = dl_device_list (&error);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; infos && i < infos->len; i++)
    {
      const DlDeviceInfo *info = g_ptr_array_index (infos, i);
      g_ptr_array_add (names, g_strdup (info->name));
    }
  g_task_return_pointer (task, names, (GDestroyNotify)g_ptr_array_unref);
}

static void
probe_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GWeakRef *ref = user_data;
  g_autoptr (DlPreferencesWindow) self = g_weak_ref_get (ref);
  g_weak_ref_clear (ref);
  g_free (ref);
  g_autoptr (GPtrArray) names = g_task_propagate_pointer (G_TASK (result), NULL);
  if (!self)
    return;
  self->syncing = TRUE;
  for (guint i = 0; names && i < names->len; i++)
    gtk_string_list_append (self->devices, names->pdata[i]);
  self->syncing = FALSE;
  if (!names || names->len == 0)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->device_row), _ ("No Vulkan device was found"));
  select_saved_device (self);
  gtk_widget_set_sensitive (GTK_WIDGET (self->device_row), TRUE);
  g_signal_emit (self, signals[SIGNAL_DEVICES_LOADED], 0);
}

GListModel *
dl_preferences_window_get_devices (DlPreferencesWindow *self)
{
  g_return_val_if_fail (DL_IS_PREFERENCES_WINDOW (self), NULL);
  return G_LIST_MODEL (self->devices);
}

/* ---- sampler ---- */

static gboolean
sampler_get (GValue *value, GVariant *variant, gpointer user_data)
{
  const char *id = g_variant_get_string (variant, NULL);
  const char *const *ids = dl_sampler_names ();
  g_value_set_uint (value, 0);
  for (guint i = 0; ids[i]; i++)
    if (g_strcmp0 (ids[i], id) == 0)
      g_value_set_uint (value, i);
  return TRUE;
}

static GVariant *
sampler_set (const GValue *value, const GVariantType *type, gpointer user_data)
{
  const char *const *ids = dl_sampler_names ();
  guint i = g_value_get_uint (value);
  return g_variant_new_string (i < g_strv_length ((char **)ids) ? ids[i] : ids[0]);
}

/* ---- GObject ---- */

static void
dl_preferences_window_dispose (GObject *object)
{
  DlPreferencesWindow *self = DL_PREFERENCES_WINDOW (object);
  g_clear_object (&self->settings);
  g_clear_object (&self->devices);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_PREFERENCES_WINDOW);
  G_OBJECT_CLASS (dl_preferences_window_parent_class)->dispose (object);
}

static void
dl_preferences_window_class_init (DlPreferencesWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_preferences_window_dispose;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/dreamloom/Dreamloom/ui/dl-preferences-window.ui");
  gtk_widget_class_bind_template_child (widget_class, DlPreferencesWindow, device_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreferencesWindow, steps_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreferencesWindow, sampler_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreferencesWindow, cfg_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreferencesWindow, seed_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreferencesWindow, random_switch);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_w, GDK_CONTROL_MASK, "window.close", NULL);

  /* The GPU list is filled in (after the probe on a worker thread). */
  signals[SIGNAL_DEVICES_LOADED] =
    g_signal_new ("devices-loaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dl_preferences_window_init (DlPreferencesWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  const char *first[] = { _ ("Automatic (a discrete GPU first)"), NULL };
  self->devices = gtk_string_list_new (first);
  adw_combo_row_set_model (self->device_row, G_LIST_MODEL (self->devices));
  gtk_widget_set_sensitive (GTK_WIDGET (self->device_row), FALSE);
  g_signal_connect_swapped (self->device_row, "notify::selected", G_CALLBACK (device_selected), self);

  g_autoptr (GtkStringList) samplers = gtk_string_list_new (NULL);
  for (const char *const *id = dl_sampler_names (); *id; id++)
    gtk_string_list_append (samplers, dl_sampler_label (*id));
  adw_combo_row_set_model (self->sampler_row, G_LIST_MODEL (samplers));
}

DlPreferencesWindow *
dl_preferences_window_new (GtkWindow *parent, GSettings *settings)
{
  g_return_val_if_fail (G_IS_SETTINGS (settings), NULL);
  DlPreferencesWindow *self =
    g_object_new (DL_TYPE_PREFERENCES_WINDOW, "transient-for", parent, "destroy-with-parent", TRUE, NULL);
  self->settings = g_object_ref (settings);
  g_settings_bind (settings, "preview-steps", self->steps_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "preview-cfg", self->cfg_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "preview-seed", self->seed_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "preview-random-seed", self->random_switch, "active", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind_with_mapping (settings, "preview-sampler", self->sampler_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                sampler_get, sampler_set, NULL, NULL);
  g_settings_bind (settings, "preview-random-seed", self->seed_spin, "sensitive",
                   G_SETTINGS_BIND_GET | G_SETTINGS_BIND_INVERT_BOOLEAN);
  select_saved_device (self);

  GWeakRef *ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, self);
  g_autoptr (GTask) task = g_task_new (NULL, NULL, probe_done, ref);
  g_task_run_in_thread (task, probe_thread);
  return self;
}
