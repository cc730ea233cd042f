/* dl-preferences-window.h: GPU choice and preview defaults, kept in GSettings. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define DL_TYPE_PREFERENCES_WINDOW (dl_preferences_window_get_type ())
G_DECLARE_FINAL_TYPE (DlPreferencesWindow, dl_preferences_window, DL, PREFERENCES_WINDOW, AdwPreferencesWindow)

DlPreferencesWindow *dl_preferences_window_new (GtkWindow *parent, GSettings *settings);
/* The GPU names offered (after the device probe, which runs on a worker thread). */
GListModel *dl_preferences_window_get_devices (DlPreferencesWindow *self);

G_END_DECLS
