#include "dl-config.h"

#include "dl-toast.h"

#include <glib/gi18n.h>

AdwToast *
dl_toast_new (const char *text)
{
  g_return_val_if_fail (text != NULL, NULL);
  g_autofree char *markup = g_markup_escape_text (text, -1);
  return adw_toast_new (markup);
}

AdwToastOverlay *
dl_toast_overlay_for (GtkWidget *widget)
{
  g_return_val_if_fail (GTK_IS_WIDGET (widget), NULL);
  GtkWidget *overlay = gtk_widget_get_ancestor (widget, ADW_TYPE_TOAST_OVERLAY);
  return overlay ? ADW_TOAST_OVERLAY (overlay) : NULL;
}

static void
undo_clicked (GtkWidget *widget, AdwToast *toast)
{
  gtk_widget_activate_action (widget, g_object_get_data (G_OBJECT (toast), "dl-undo-action"), NULL);
}

AdwToast *
dl_toast_show (GtkWidget *widget, const char *text, const char *undo_action)
{
  g_return_val_if_fail (GTK_IS_WIDGET (widget), NULL);
  g_return_val_if_fail (text != NULL, NULL);
  AdwToastOverlay *overlay = dl_toast_overlay_for (widget);
  if (!overlay)
    return NULL;
  AdwToast *toast = dl_toast_new (text);
  if (undo_action)
    {
      adw_toast_set_button_label (toast, _ ("_Undo"));
      /* The toast's button lives in the overlay, above `widget`: an action name
       * would be looked up from there and miss `widget`'s own actions. */
      g_object_set_data_full (G_OBJECT (toast), "dl-undo-action", g_strdup (undo_action), g_free);
      g_signal_connect_object (toast, "button-clicked", G_CALLBACK (undo_clicked), widget, G_CONNECT_SWAPPED);
      /* an undo offer replaces whatever toast is showing, or it would come too late */
      adw_toast_set_priority (toast, ADW_TOAST_PRIORITY_HIGH);
    }
  adw_toast_overlay_add_toast (overlay, toast);
  return toast;
}
