/* The Flatpak manifest cannot be built here (no flatpak-builder, no network), so
 * this checks what can be checked without building: strict JSON; the app id,
 * runtime and command; sandbox permissions; every source pinned (git by commit,
 * files by sha256); shaderc (for glslc) built before Dreamloom and not shipped; every
 * library and tool the meson build asks for either in the GNOME runtime or built
 * by a module; and the CLIP vocabulary fetched from OpenAI by URL and sha256 into
 * the folder the app reads data from (checked against the local copy if there is
 * one). */
#include "dl-config.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "io/dl-json-strict.h"

#define CLIP_URL "https://openaipublic.azureedge.net/clip/bpe_simple_vocab_16e6.txt.gz"
#define CLIP_SHA256 "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
#define CLIP_NAME "bpe_simple_vocab_16e6.txt.gz"

static JsonParser *parser;
static JsonObject *root;

static const char *
string_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static JsonArray *
array_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static gboolean
array_has_string (JsonArray *a, const char *s)
{
  for (guint i = 0; a && i < json_array_get_length (a); i++)
    {
      JsonNode *n = json_array_get_element (a, i);
      if (JSON_NODE_HOLDS_VALUE (n) && g_strcmp0 (json_node_get_string (n), s) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
is_hex (const char *s, gsize len)
{
  if (!s || strlen (s) != len)
    return FALSE;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return FALSE;
  return TRUE;
}

static JsonObject *
module (const char *name, guint *index)
{
  JsonArray *modules = array_member (root, "modules");
  for (guint i = 0; modules && i < json_array_get_length (modules); i++)
    {
      JsonObject *m = json_array_get_object_element (modules, i);
      if (m && g_strcmp0 (string_member (m, "name"), name) == 0)
        {
          if (index)
            *index = i;
          return m;
        }
    }
  return NULL;
}

static void
test_top_level (void)
{
  g_assert_cmpstr (string_member (root, "id"), ==, "io.github.dreamloom.Dreamloom");
  g_assert_cmpstr (string_member (root, "runtime"), ==, "org.gnome.Platform");
  g_assert_cmpstr (string_member (root, "sdk"), ==, "org.gnome.Sdk");
  const char *version = string_member (root, "runtime-version");
  g_assert_nonnull (version);
  /* GTK 4.8 / libadwaita 1.2 or newer: GNOME 43 on */
  g_assert_cmpint (g_ascii_strtoll (version, NULL, 10), >=, 43);
  g_assert_cmpstr (string_member (root, "command"), ==, "dreamloom");

  JsonArray *args = array_member (root, "finish-args");
  g_assert_nonnull (args);
  /* a window on Wayland or X11, and the GPU */
  g_assert_true (array_has_string (args, "--socket=wayland"));
  g_assert_true (array_has_string (args, "--socket=fallback-x11"));
  g_assert_true (array_has_string (args, "--share=ipc"));
  g_assert_true (array_has_string (args, "--device=dri"));
  /* datasets and caption files next to them, models in ~/ComfyUI and the HF cache */
  g_assert_true (array_has_string (args, "--filesystem=home"));
  /* nothing is downloaded while running: the vocabulary comes with the build */
  g_assert_false (array_has_string (args, "--share=network"));
  g_assert_false (array_has_string (args, "--filesystem=host"));
  g_assert_false (array_has_string (args, "--device=all"));
}

static void
test_modules_pinned (void)
{
  JsonArray *modules = array_member (root, "modules");
  g_assert_nonnull (modules);
  guint n = json_array_get_length (modules);
  g_assert_cmpuint (n, >=, 2);
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (modules, i);
      /* no module from another file: the whole build is in this one */
      g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
      JsonObject *m = json_node_get_object (node);
      const char *name = string_member (m, "name");
      g_assert_nonnull (name);
      g_assert_false (g_hash_table_contains (names, name));
      g_hash_table_add (names, (gpointer)name);
      const char *buildsystem = string_member (m, "buildsystem");
      g_assert_nonnull (buildsystem);
      const char *known[] = { "meson", "cmake", "cmake-ninja", "autotools", "simple", NULL };
      g_assert_true (g_strv_contains (known, buildsystem));
      if (g_str_equal (buildsystem, "simple"))
        g_assert_nonnull (array_member (m, "build-commands"));
      JsonArray *sources = array_member (m, "sources");
      g_assert_nonnull (sources);
      g_assert_cmpuint (json_array_get_length (sources), >, 0);
      for (guint j = 0; j < json_array_get_length (sources); j++)
        {
          JsonObject *s = json_array_get_object_element (sources, j);
          g_assert_nonnull (s);
          const char *type = string_member (s, "type");
          const char *url = string_member (s, "url");
          g_test_message ("%s: %s %s", name, type, url ? url : string_member (s, "path"));
          if (g_strcmp0 (type, "git") == 0)
            {
              g_assert_true (g_str_has_prefix (url, "https://"));
              /* a tag can move; a commit cannot */
              g_assert_true (is_hex (string_member (s, "commit"), 40));
            }
          else if (g_strcmp0 (type, "file") == 0 || g_strcmp0 (type, "archive") == 0)
            {
              g_assert_true (g_str_has_prefix (url, "https://"));
              g_assert_true (is_hex (string_member (s, "sha256"), 64));
            }
          else if (g_strcmp0 (type, "dir") == 0)
            {
              /* only Dreamloom itself is built from this checkout */
              g_assert_cmpuint (i, ==, n - 1);
              g_assert_cmpstr (string_member (s, "path"), ==, "..");
            }
          else
            g_error ("module %s: unexpected source type %s", name, type ? type : "(none)");
        }
    }
  /* Dreamloom last, with meson */
  guint app_index = 0;
  JsonObject *app = module ("dreamloom", &app_index);
  g_assert_nonnull (app);
  g_assert_cmpuint (app_index, ==, n - 1);
  g_assert_cmpstr (string_member (app, "buildsystem"), ==, "meson");
  JsonArray *opts = array_member (app, "config-opts");
  g_assert_true (array_has_string (opts, "-Dgui=enabled"));
}

static void
test_shaderc (void)
{
  guint index = 0;
  JsonObject *m = module ("shaderc", &index);
  g_assert_nonnull (m);
  g_assert_true (g_str_has_prefix (string_member (m, "buildsystem"), "cmake"));
  /* glslc compiles the shaders at build time and is not shipped */
  g_assert_true (array_has_string (array_member (m, "cleanup"), "*"));
  JsonArray *opts = array_member (m, "config-opts");
  g_assert_true (array_has_string (opts, "-DSHADERC_SKIP_TESTS=ON"));
  /* its own dependencies, where shaderc's DEPS file puts them */
  const char *deps[][2] = {
    { "https://github.com/google/shaderc.git", NULL },
    { "https://github.com/KhronosGroup/glslang.git", "third_party/glslang" },
    { "https://github.com/KhronosGroup/SPIRV-Tools.git", "third_party/spirv-tools" },
    { "https://github.com/KhronosGroup/SPIRV-Headers.git", "third_party/spirv-headers" },
  };
  JsonArray *sources = array_member (m, "sources");
  for (guint d = 0; d < G_N_ELEMENTS (deps); d++)
    {
      gboolean found = FALSE;
      for (guint j = 0; j < json_array_get_length (sources); j++)
        {
          JsonObject *s = json_array_get_object_element (sources, j);
          if (g_strcmp0 (string_member (s, "url"), deps[d][0]) == 0)
            {
              g_assert_cmpstr (string_member (s, "dest"), ==, deps[d][1]);
              found = TRUE;
            }
        }
      if (!found)
        g_error ("shaderc: no source %s", deps[d][0]);
    }
  guint app_index = 0;
  g_assert_nonnull (module ("dreamloom", &app_index));
  g_assert_cmpuint (index, <, app_index);
}

/* Every dependency() and find_program() of the build (tests aside) is in the
 * GNOME SDK or built by a module of the manifest. */
static void
scan_meson (const char *dir, GHashTable *deps, GHashTable *programs)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  while ((name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (name[0] != '.' && !g_str_has_prefix (name, "build") && !g_str_equal (name, "tests") &&
              !g_str_equal (name, "flatpak"))
            scan_meson (path, deps, programs);
          continue;
        }
      if (!g_str_equal (name, "meson.build"))
        continue;
      g_autofree char *text = NULL;
      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      g_autoptr (GRegex) dep_re = g_regex_new ("\\bdependency\\(\\s*'([^']+)'", 0, 0, NULL);
      g_autoptr (GRegex) prog_re = g_regex_new ("\\bfind_program\\(\\s*'([^']+)'", 0, 0, NULL);
      GRegex *res[] = { dep_re, prog_re };
      GHashTable *out[] = { deps, programs };
      for (int k = 0; k < 2; k++)
        {
          g_autoptr (GMatchInfo) mi = NULL;
          g_regex_match (res[k], text, 0, &mi);
          while (g_match_info_matches (mi))
            {
              g_hash_table_add (out[k], g_match_info_fetch (mi, 1));
              g_match_info_next (mi, NULL);
            }
        }
    }
}

static void
test_build_dependencies (void)
{
  const char *src = g_getenv ("DL_TEST_SOURCE_ROOT");
  g_assert_nonnull (src);
  g_autoptr (GHashTable) deps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) programs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  scan_meson (src, deps, programs);
  g_assert_true (g_hash_table_contains (deps, "gtk4"));
  g_assert_true (g_hash_table_contains (programs, "glslc"));

  /* in org.gnome.Sdk (and, for the libraries, org.gnome.Platform) */
  const char *in_runtime[] = { "glib-2.0", "gio-2.0", "vulkan", "json-glib-1.0", "libpng", "gdk-pixbuf-2.0",
                               "zlib",     "threads", "gtk4",   "libadwaita-1",  NULL };
  const char *in_sdk[] = { "python3", "sh", NULL };
  /* what a module of the manifest provides */
  const char *by_module[][2] = { { "yaml-0.1", "libyaml" }, { "glslc", "shaderc" } };
  GHashTable *sets[] = { deps, programs };
  for (int k = 0; k < 2; k++)
    {
      GHashTableIter iter;
      const char *name;
      g_hash_table_iter_init (&iter, sets[k]);
      while (g_hash_table_iter_next (&iter, (gpointer *)&name, NULL))
        {
          if (g_strv_contains (k == 0 ? in_runtime : in_sdk, name))
            continue;
          const char *provider = NULL;
          for (guint i = 0; i < G_N_ELEMENTS (by_module); i++)
            if (g_str_equal (by_module[i][0], name))
              provider = by_module[i][1];
          if (!provider)
            g_error ("the build needs %s, which neither the GNOME runtime nor a module of the manifest provides", name);
          if (!module (provider, NULL))
            g_error ("the build needs %s: the manifest has no %s module", name, provider);
        }
    }
}

static JsonObject *
clip_source (JsonObject **owner)
{
  JsonArray *modules = array_member (root, "modules");
  JsonObject *found = NULL;
  for (guint i = 0; i < json_array_get_length (modules); i++)
    {
      JsonObject *m = json_array_get_object_element (modules, i);
      JsonArray *sources = array_member (m, "sources");
      for (guint j = 0; j < json_array_get_length (sources); j++)
        {
          JsonObject *s = json_array_get_object_element (sources, j);
          const char *url = string_member (s, "url");
          if (url && strstr (url, "bpe_simple_vocab"))
            {
              g_assert_null (found); /* once */
              found = s;
              *owner = m;
            }
        }
    }
  g_assert_nonnull (found);
  return found;
}

static void
test_clip_vocabulary (void)
{
  JsonObject *m = NULL;
  JsonObject *s = clip_source (&m);
  g_assert_cmpstr (string_member (s, "type"), ==, "file");
  g_assert_cmpstr (string_member (s, "url"), ==, CLIP_URL);
  g_assert_cmpstr (string_member (s, "sha256"), ==, CLIP_SHA256);
  g_assert_cmpstr (string_member (s, "dest-filename"), ==, CLIP_NAME);
  /* installed where the app's data folder (DL_DATADIR, prefix /app) is */
  JsonArray *commands = array_member (m, "build-commands");
  g_assert_nonnull (commands);
  gboolean installs = FALSE;
  for (guint i = 0; i < json_array_get_length (commands); i++)
    {
      const char *c = json_array_get_string_element (commands, i);
      installs |= c && strstr (c, CLIP_NAME) && strstr (c, "/app/share/dreamloom/clip/" CLIP_NAME);
    }
  g_assert_true (installs);
}

static void
test_clip_vocabulary_local_copy (void)
{
  const char *local = g_getenv ("DL_TEST_CLIP_VOCAB");
  if (!local || !g_file_test (local, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("no local copy of the CLIP vocabulary (../shared/data/clip)");
      return;
    }
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (local, &contents, &len, NULL));
  g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *)contents, len);
  JsonObject *m = NULL;
  g_assert_cmpstr (string_member (clip_source (&m), "sha256"), ==, sum);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  const char *manifest = g_getenv ("DL_TEST_FLATPAK_MANIFEST");
  g_assert_nonnull (manifest);
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  if (!g_file_get_contents (manifest, &text, &len, &error))
    g_error ("%s", error->message);
  g_autofree char *problem = NULL;
  /* strict: no comments, no duplicate keys (flatpak-builder would take the last) */
  parser = dl_json_parse_strict (text, len, 64, &problem);
  if (!parser)
    g_error ("%s is not valid JSON: %s", manifest, problem);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  root = json_node_get_object (json_parser_get_root (parser));

  g_test_add_func ("/flatpak/top-level", test_top_level);
  g_test_add_func ("/flatpak/modules-pinned", test_modules_pinned);
  g_test_add_func ("/flatpak/shaderc", test_shaderc);
  g_test_add_func ("/flatpak/build-dependencies", test_build_dependencies);
  g_test_add_func ("/flatpak/clip-vocabulary", test_clip_vocabulary);
  g_test_add_func ("/flatpak/clip-vocabulary-local-copy", test_clip_vocabulary_local_copy);
  int ret = g_test_run ();
  g_object_unref (parser);
  return ret;
}
