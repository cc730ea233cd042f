/* dl-start-page.h: what the window shows without a project: new, open, recent
 * projects, and which GPU the engine found. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define DL_TYPE_START_PAGE (dl_start_page_get_type ())
G_DECLARE_FINAL_TYPE (DlStartPage, dl_start_page, DL, START_PAGE, AdwBin)

/* Follows the "recent-projects" key of `settings` (rows activate win.open-recent). */
void dl_start_page_set_settings (DlStartPage *self, GSettings *settings);
void dl_start_page_set_device_text (DlStartPage *self, const char *text);
const char *dl_start_page_get_device_text (DlStartPage *self);
guint dl_start_page_get_n_recent (DlStartPage *self);
/* Whether the recent projects' files are still being looked for, and how many of
 * them are not there (their rows say so and do not open). */
gboolean dl_start_page_get_checking (DlStartPage *self);
guint dl_start_page_get_n_recent_missing (DlStartPage *self);

G_END_DECLS
