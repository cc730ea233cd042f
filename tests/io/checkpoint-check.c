/* checkpoint-check.c: see checkpoint-check.h. */
#include "checkpoint-check.h"

#include <stdarg.h>
#include <string.h>

#include "dl-error.h"
#include "dl-test-util.h"

static char *base_dir;
static char *current_dir;

void
cc_scratch_init (const char *tmpl)
{
  base_dir = g_dir_make_tmp (tmpl, NULL);
  g_assert_nonnull (base_dir);
  current_dir = g_strdup (base_dir);
}

void
cc_scratch_remove (void)
{
  if (base_dir)
    dl_test_remove_tree (base_dir);
  g_clear_pointer (&base_dir, g_free);
  g_clear_pointer (&current_dir, g_free);
}

void
cc_scratch_use (const char *sub)
{
  g_free (current_dir);
  current_dir = g_build_filename (base_dir, sub, NULL);
  g_assert_cmpint (g_mkdir_with_parents (current_dir, 0700), ==, 0);
}

char *
cc_scratch_path (const char *name)
{
  char *p = g_build_filename (current_dir, name, NULL);
  g_autofree char *dir = g_path_get_dirname (p);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  return p;
}

DlCheckpoint *
cc_open_ok (const char *path, const char *config_dir)
{
  g_autoptr (GError) error = NULL;
  DlCheckpoint *ck = dl_checkpoint_open (path, config_dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ck);
  return ck;
}

void
cc_open_fails (const char *path, const char *config_dir, int code, ...)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlCheckpoint) ck = dl_checkpoint_open (path, config_dir, &error);
  g_assert_null (ck);
  g_assert_nonnull (error);
  g_test_message ("expected error: %s", error->message);
  g_assert_true (error->domain == DL_ERROR);
  g_assert_cmpint (error->code, ==, code);
  va_list ap;
  va_start (ap, code);
  const char *needle;
  while ((needle = va_arg (ap, const char *)))
    if (!strstr (error->message, needle))
      g_error ("the error “%s” does not mention “%s”", error->message, needle);
  va_end (ap);
}

gboolean
cc_strings_contain (GPtrArray *strings, const char *s)
{
  for (guint i = 0; i < strings->len; i++)
    if (g_strcmp0 (strings->pdata[i], s) == 0)
      return TRUE;
  return FALSE;
}
