#include "dl-config.h"

#include "dl-settings.h"

#include "dl-error.h"

/* build-dir/app/dreamloom (or a test in build-dir/tests/app/) -> build-dir/data */
static GSettingsSchemaSource *
build_tree_source (void)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  if (!exe)
    return NULL;
  g_autofree char *dir = g_path_get_dirname (exe);
  for (int up = 0; up < 3 && dir; up++)
    {
      g_autofree char *candidate = g_build_filename (dir, "data", "gschemas.compiled", NULL);
      if (g_file_test (candidate, G_FILE_TEST_EXISTS))
        {
          g_autofree char *schema_dir = g_path_get_dirname (candidate);
          return g_settings_schema_source_new_from_directory (schema_dir, g_settings_schema_source_get_default (),
                                                              FALSE, NULL);
        }
      char *parent = g_path_get_dirname (dir);
      g_free (dir);
      dir = parent;
    }
  return NULL;
}

GSettings *
dl_settings_new (GError **error)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettingsSchema) schema =
    source ? g_settings_schema_source_lookup (source, DL_SETTINGS_SCHEMA, TRUE) : NULL;
  if (schema)
    return g_settings_new_full (schema, NULL, NULL);

  g_autoptr (GSettingsSchemaSource) local = build_tree_source ();
  g_autoptr (GSettingsSchema) local_schema =
    local ? g_settings_schema_source_lookup (local, DL_SETTINGS_SCHEMA, FALSE) : NULL;
  if (local_schema)
    return g_settings_new_full (local_schema, NULL, NULL);

  g_set_error (error, DL_ERROR, DL_ERROR_FAILED,
               "The settings schema %s is not installed: run `meson install`, or start Dreamloom from its build "
               "folder (or with GSETTINGS_SCHEMA_DIR pointing at the compiled schema)",
               DL_SETTINGS_SCHEMA);
  return NULL;
}

void
dl_settings_add_recent (GSettings *settings, const char *path)
{
  g_return_if_fail (G_IS_SETTINGS (settings));
  g_return_if_fail (path != NULL);
  g_auto (GStrv) old = g_settings_get_strv (settings, "recent-projects");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_strv_builder_add (b, path);
  guint n = 1;
  for (char **p = old; *p && n < DL_RECENT_MAX; p++)
    if (g_strcmp0 (*p, path) != 0)
      {
        g_strv_builder_add (b, *p);
        n++;
      }
  g_auto (GStrv) list = g_strv_builder_end (b);
  g_settings_set_strv (settings, "recent-projects", (const char *const *)list);
}

void
dl_settings_remove_recent (GSettings *settings, const char *path)
{
  g_return_if_fail (G_IS_SETTINGS (settings));
  g_return_if_fail (path != NULL);
  g_auto (GStrv) old = g_settings_get_strv (settings, "recent-projects");
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  for (char **p = old; *p; p++)
    if (g_strcmp0 (*p, path) != 0)
      g_strv_builder_add (b, *p);
  g_auto (GStrv) list = g_strv_builder_end (b);
  g_settings_set_strv (settings, "recent-projects", (const char *const *)list);
}
