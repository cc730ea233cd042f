/* Where the CLIP vocabulary comes from, in the order of issue 4: the model's
 * own tokenizer/, $DREAMLOOM_CLIP_VOCAB, the installed copy, the Hugging Face
 * cache. */
#include "dl-config.h"

#include "dl-clip-tokenizer.h"

#include <string.h>

#include "dl-error.h"

#define VOCAB_NAME "bpe_simple_vocab_16e6.txt.gz"
#define HF_REPO "models--openai--clip-vit-large-patch14"

#ifndef DL_CLIP_VOCAB_INSTALLED
#define DL_CLIP_VOCAB_INSTALLED DL_DATADIR "/clip/" VOCAB_NAME
#endif

static gboolean
is_tokenizer_dir (const char *dir)
{
  g_autofree char *v = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *m = g_build_filename (dir, "merges.txt", NULL);
  return g_file_test (v, G_FILE_TEST_IS_REGULAR) && g_file_test (m, G_FILE_TEST_IS_REGULAR);
}

/* The installed copies: the configured data dir, then the system data dirs
 * (a Flatpak's /app/share, the distribution's /usr/share). */
static GPtrArray *
installed_candidates (void)
{
  GPtrArray *c = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (c, g_strdup (DL_CLIP_VOCAB_INSTALLED));
  for (const char *const *d = g_get_system_data_dirs (); *d; d++)
    {
      char *p = g_build_filename (*d, "dreamloom", "clip", VOCAB_NAME, NULL);
      gboolean seen = FALSE;
      for (guint i = 0; i < c->len && !seen; i++)
        seen = g_strcmp0 (c->pdata[i], p) == 0;
      if (seen)
        g_free (p);
      else
        g_ptr_array_add (c, p);
    }
  return c;
}

/* huggingface_hub's cache folder: $HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE,
 * $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub. */
static char *
hf_hub_cache (void)
{
  const char *v;
  if ((v = g_getenv ("HF_HUB_CACHE")) && *v)
    return g_strdup (v);
  if ((v = g_getenv ("HUGGINGFACE_HUB_CACHE")) && *v)
    return g_strdup (v);
  if ((v = g_getenv ("HF_HOME")) && *v)
    return g_build_filename (v, "hub", NULL);
  if ((v = g_getenv ("XDG_CACHE_HOME")) && *v)
    return g_build_filename (v, "huggingface", "hub", NULL);
  return g_build_filename (g_get_home_dir (), ".cache", "huggingface", "hub", NULL);
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *)a, *(const char *const *)b);
}

/* The snapshot refs/main names, else any snapshot with the tokenizer files. */
static char *
hf_snapshot (const char *repo_dir)
{
  g_autofree char *ref_path = g_build_filename (repo_dir, "refs", "main", NULL);
  g_autofree char *ref = NULL;
  if (g_file_get_contents (ref_path, &ref, NULL, NULL))
    {
      g_strstrip (ref);
      if (*ref && !strchr (ref, '/'))
        {
          char *dir = g_build_filename (repo_dir, "snapshots", ref, NULL);
          if (is_tokenizer_dir (dir))
            return dir;
          g_free (dir);
        }
    }
  g_autofree char *snapshots = g_build_filename (repo_dir, "snapshots", NULL);
  g_autoptr (GDir) d = g_dir_open (snapshots, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      char *dir = g_build_filename (snapshots, names->pdata[i], NULL);
      if (is_tokenizer_dir (dir))
        return dir;
      g_free (dir);
    }
  return NULL;
}

char *
dl_clip_tokenizer_describe_search (const char *model_tokenizer_dir)
{
  GString *s = g_string_new (NULL);
  if (model_tokenizer_dir)
    g_string_append_printf (s, "  1. the model's tokenizer folder %s%s\n", model_tokenizer_dir,
                            is_tokenizer_dir (model_tokenizer_dir) ? "" : " (no vocab.json + merges.txt)");
  else
    g_string_append (s, "  1. the model's tokenizer/ folder (the model has none)\n");
  const char *env = g_getenv ("DREAMLOOM_CLIP_VOCAB");
  if (env && *env)
    g_string_append_printf (s, "  2. $DREAMLOOM_CLIP_VOCAB = %s%s\n", env,
                            g_file_test (env, G_FILE_TEST_EXISTS) ? "" : " (absent)");
  else
    g_string_append (s, "  2. $DREAMLOOM_CLIP_VOCAB (not set)\n");
  g_autoptr (GPtrArray) installed = installed_candidates ();
  for (guint i = 0; i < installed->len; i++)
    g_string_append_printf (s, "  3. %s%s\n", (const char *)installed->pdata[i],
                            g_file_test (installed->pdata[i], G_FILE_TEST_IS_REGULAR) ? "" : " (absent)");
  g_autofree char *hub = hf_hub_cache ();
  g_autofree char *repo = g_build_filename (hub, HF_REPO, NULL);
  g_autofree char *snap = hf_snapshot (repo);
  g_string_append_printf (s, "  4. the Hugging Face cache %s%s\n", repo, snap ? "" : " (absent)");
  return g_string_free (s, FALSE);
}

DlClipTokenizer *
dl_clip_tokenizer_find (const char *model_tokenizer_dir, const char *explicit_path, GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  if (explicit_path)
    return dl_clip_tokenizer_new_from_path (explicit_path, error);
  if (model_tokenizer_dir && is_tokenizer_dir (model_tokenizer_dir))
    return dl_clip_tokenizer_new_from_path (model_tokenizer_dir, error);
  const char *env = g_getenv ("DREAMLOOM_CLIP_VOCAB");
  if (env && *env)
    {
      if (!g_file_test (env, G_FILE_TEST_EXISTS))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_IO, "$DREAMLOOM_CLIP_VOCAB names “%s”, which does not exist", env);
          return NULL;
        }
      return dl_clip_tokenizer_new_from_path (env, error);
    }
  g_autoptr (GPtrArray) installed = installed_candidates ();
  for (guint i = 0; i < installed->len; i++)
    if (g_file_test (installed->pdata[i], G_FILE_TEST_IS_REGULAR))
      return dl_clip_tokenizer_new_from_path (installed->pdata[i], error);
  g_autofree char *hub = hf_hub_cache ();
  g_autofree char *repo = g_build_filename (hub, HF_REPO, NULL);
  g_autofree char *snap = hf_snapshot (repo);
  if (snap)
    return dl_clip_tokenizer_new_from_path (snap, error);
  g_autofree char *looked = dl_clip_tokenizer_describe_search (model_tokenizer_dir);
  g_set_error (error, DL_ERROR, DL_ERROR_IO,
               "No CLIP vocabulary found (the tokenizer needs openai's %s or a tokenizer/ folder with vocab.json "
               "and merges.txt).  Looked at:\n%sGive one with --vocab FILE or $DREAMLOOM_CLIP_VOCAB.",
               VOCAB_NAME, looked);
  return NULL;
}
