/* checkpoint-check.h (tests only): what the checkpoint tests (SD 1.x and
 * SDXL) share: a scratch folder with a subfolder per case, and opening a
 * checkpoint that must load or must fail with a given error. */
#pragma once

#include <glib.h>

#include "io/dl-checkpoint.h"

G_BEGIN_DECLS

/* A new scratch folder (g_dir_make_tmp's `tmpl`); cc_scratch_remove deletes
 * it with everything in it. */
void cc_scratch_init (const char *tmpl);
void cc_scratch_remove (void);
/* Later paths go under the subfolder `sub` (made when missing). */
void cc_scratch_use (const char *sub);
/* `name` under the current subfolder, its parent folders made (g_free). */
char *cc_scratch_path (const char *name);

/* Opens `path` (with `config_dir`, may be NULL) and asserts it loads. */
DlCheckpoint *cc_open_ok (const char *path, const char *config_dir);
/* Opening fails with DL_ERROR `code` and a message holding every needle
 * (NULL-terminated). */
void cc_open_fails (const char *path, const char *config_dir, int code, ...) G_GNUC_NULL_TERMINATED;

/* Whether `strings` (char *) holds `s`. */
gboolean cc_strings_contain (GPtrArray *strings, const char *s);

G_END_DECLS
