#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Send log messages to stderr as usual and also append them to
 * $XDG_STATE_HOME/dreamloom/dreamloom.log, where a user can find them after
 * starting the app from the desktop. */
void dl_log_init_gui (void);
/* Where dl_log_init_gui() writes. */
char *dl_log_file_path (void);

G_END_DECLS
