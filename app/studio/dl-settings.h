/* dl-settings.h: the application's GSettings, and the recent-projects list kept there. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define DL_SETTINGS_SCHEMA "io.github.dreamloom.Dreamloom"
#define DL_RECENT_MAX 12

/* The settings.  When the schema is not installed (running from the build tree),
 * the schema compiled in the build tree next to the program is used; when neither
 * exists, NULL with an error that says what to do. */
GSettings *dl_settings_new (GError **error);

/* Put `path` first in the recent-projects list. */
void dl_settings_add_recent (GSettings *settings, const char *path);
void dl_settings_remove_recent (GSettings *settings, const char *path);

G_END_DECLS
