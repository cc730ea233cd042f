/* The main window.  For now it says which GPU the engine found; the probe runs on
 * a worker thread so a slow driver never freezes the window. */
#include "dl-config.h"

#include "dl-window.h"

#include "vk/dl-device.h"

struct _DlWindow {
  AdwApplicationWindow parent_instance;
  AdwStatusPage *status;
  GtkLabel *device_label;
};

G_DEFINE_FINAL_TYPE (DlWindow, dl_window, ADW_TYPE_APPLICATION_WINDOW)

static void
probe_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) infos = dl_device_list (&error);
  guint chosen;
  if (!infos || !dl_device_choose (infos, NULL, &chosen, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  const DlDeviceInfo *info = g_ptr_array_index (infos, chosen);
  g_autofree char *mem = g_format_size_full (info->device_local_bytes, G_FORMAT_SIZE_IEC_UNITS);
  char *text = g_strdup_printf ("GPU: %s (%s, %s)%s", info->name, dl_device_type_name (info->type), mem,
                                info->type == VK_PHYSICAL_DEVICE_TYPE_CPU
                                  ? "\nThis is a software renderer: fine for trying things, far too slow to train."
                                  : "");
  g_task_return_pointer (task, text, g_free);
}

static void
probe_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  DlWindow *self = DL_WINDOW (source);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = g_task_propagate_pointer (G_TASK (result), &error);
  if (text)
    gtk_label_set_text (self->device_label, text);
  else
    {
      g_autofree char *msg = g_strdup_printf ("No usable GPU: %s", error->message);
      gtk_label_set_text (self->device_label, msg);
      g_warning ("%s", msg);
    }
}

static void
dl_window_class_init (DlWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-window.ui");
  gtk_widget_class_bind_template_child (widget_class, DlWindow, status);
  gtk_widget_class_bind_template_child (widget_class, DlWindow, device_label);
}

static void
dl_window_init (DlWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  if (g_str_has_suffix (DL_APP_ID, ".Devel"))
    gtk_widget_add_css_class (GTK_WIDGET (self), "devel");
  g_autoptr (GTask) task = g_task_new (self, NULL, probe_done, NULL);
  g_task_run_in_thread (task, probe_thread);
}

const char *
dl_window_get_device_text (DlWindow *self)
{
  g_return_val_if_fail (DL_IS_WINDOW (self), NULL);
  return gtk_label_get_text (self->device_label);
}

DlWindow *
dl_window_new (DlApplication *app)
{
  return g_object_new (DL_TYPE_WINDOW, "application", app, NULL);
}
