/* dl-toast.h: toasts whose titles are plain text.
 *
 * libadwaita 1.2 reads a toast's title as Pango markup, so a file name or an error
 * message with "&" or "<" in it would not show at all; every toast of the window
 * goes through here so that what it says is escaped once, in one place. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

/* A new toast showing `text` as it is. */
AdwToast *dl_toast_new (const char *text);

/* The toast overlay that `widget` is inside, or NULL (not in a window yet). */
AdwToastOverlay *dl_toast_overlay_for (GtkWidget *widget);

/* Show `text` in the overlay `widget` is inside (nothing when there is none).  With
 * `undo_action` (nullable), the toast has an Undo button that activates that
 * action on `widget`.  Returns the toast, owned by the overlay (NULL if none). */
AdwToast *dl_toast_show (GtkWidget *widget, const char *text, const char *undo_action);

G_END_DECLS
