/* dl-row-text.h: plain text into libadwaita rows.  libadwaita 1.2 reads a
 * row's title and subtitle as Pango markup, so a help text with "<", a file
 * name or a message with "&" would not show; every row whose text comes from
 * elsewhere goes through here so it is escaped once, in one place. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

void dl_row_set_title (gpointer row, const char *text);    /* AdwPreferencesRow */
void dl_row_set_subtitle (gpointer row, const char *text); /* AdwActionRow or AdwExpanderRow */

G_END_DECLS
