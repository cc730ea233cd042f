/* dl-file-util.h: file-system chores shared by the engine, the commands and
 * the tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Remove a file or a folder with everything in it.  Symbolic links are removed,
 * never followed.  Errors are ignored (what can be removed is). */
void dl_file_remove_tree (const char *path);

G_END_DECLS
