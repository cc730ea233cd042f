/* dl-tokenizer-folder.c: see dl-tokenizer-folder.h. */
#include "dl-config.h"

#include "train/dl-tokenizer-folder.h"

#include <string.h>

#include "dl-error.h"
#include "io/dl-file-util.h"
#include "io/dl-json-write.h"

/* transformers 4.40 CLIPTokenizer.save_pretrained with SD 1.x's settings
 * (model_max_length 77, pad = eos): the two small files, as it writes them */
static const char tokenizer_config[] = "{\n"
                                       "  \"added_tokens_decoder\": {\n"
                                       "    \"49406\": {\n"
                                       "      \"content\": \"<|startoftext|>\",\n"
                                       "      \"lstrip\": false,\n"
                                       "      \"normalized\": true,\n"
                                       "      \"rstrip\": false,\n"
                                       "      \"single_word\": false,\n"
                                       "      \"special\": true\n"
                                       "    },\n"
                                       "    \"49407\": {\n"
                                       "      \"content\": \"<|endoftext|>\",\n"
                                       "      \"lstrip\": false,\n"
                                       "      \"normalized\": true,\n"
                                       "      \"rstrip\": false,\n"
                                       "      \"single_word\": false,\n"
                                       "      \"special\": true\n"
                                       "    }\n"
                                       "  },\n"
                                       "  \"bos_token\": \"<|startoftext|>\",\n"
                                       "  \"clean_up_tokenization_spaces\": true,\n"
                                       "  \"do_lower_case\": true,\n"
                                       "  \"eos_token\": \"<|endoftext|>\",\n"
                                       "  \"errors\": \"replace\",\n"
                                       "  \"model_max_length\": 77,\n"
                                       "  \"pad_token\": \"<|endoftext|>\",\n"
                                       "  \"tokenizer_class\": \"CLIPTokenizer\",\n"
                                       "  \"unk_token\": \"<|endoftext|>\"\n"
                                       "}\n";

static const char special_tokens_map[] = "{\n"
                                         "  \"bos_token\": {\n"
                                         "    \"content\": \"<|startoftext|>\",\n"
                                         "    \"lstrip\": false,\n"
                                         "    \"normalized\": true,\n"
                                         "    \"rstrip\": false,\n"
                                         "    \"single_word\": false\n"
                                         "  },\n"
                                         "  \"eos_token\": {\n"
                                         "    \"content\": \"<|endoftext|>\",\n"
                                         "    \"lstrip\": false,\n"
                                         "    \"normalized\": true,\n"
                                         "    \"rstrip\": false,\n"
                                         "    \"single_word\": false\n"
                                         "  },\n"
                                         "  \"pad_token\": \"<|endoftext|>\",\n"
                                         "  \"unk_token\": {\n"
                                         "    \"content\": \"<|endoftext|>\",\n"
                                         "    \"lstrip\": false,\n"
                                         "    \"normalized\": true,\n"
                                         "    \"rstrip\": false,\n"
                                         "    \"single_word\": false\n"
                                         "  }\n"
                                         "}\n";

static gboolean
write_file (const char *dir, const char *name, const char *text, gsize len, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) local = NULL;
  if (!g_file_set_contents (path, text, (gssize)len, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot write “%s”: %s", path, local->message);
      return FALSE;
    }
  return TRUE;
}

typedef struct
{
  const char *token;
  gint32 id;
} Entry;

static int
by_token (gconstpointer a, gconstpointer b)
{
  /* Python sorts str by code point: UTF-8 byte order is the same */
  return strcmp (((const Entry *)a)->token, ((const Entry *)b)->token);
}

gboolean
dl_tokenizer_folder_write (DlClipTokenizer *tok, const char *dir, GError **error)
{
  g_return_val_if_fail (tok != NULL && dir != NULL, FALSE);
  guint n = dl_clip_tokenizer_get_n_vocab (tok);
  g_autoptr (GArray) entries = g_array_sized_new (FALSE, FALSE, sizeof (Entry), n);
  for (guint id = 0; id < n; id++)
    {
      Entry e = { dl_clip_tokenizer_get_token (tok, (gint32)id), (gint32)id };
      if (e.token)
        g_array_append_val (entries, e);
    }
  g_array_sort (entries, by_token);
  g_autoptr (GString) vocab = g_string_sized_new (n * 24);
  g_string_append (vocab, "{\n");
  for (guint i = 0; i < entries->len; i++)
    {
      const Entry *e = &g_array_index (entries, Entry, i);
      g_string_append (vocab, "  ");
      dl_json_append_string (vocab, e->token);
      g_string_append_printf (vocab, ": %d%s\n", e->id, i + 1 < entries->len ? "," : "");
    }
  g_string_append (vocab, "}\n");

  g_autoptr (GPtrArray) merges = dl_clip_tokenizer_dup_merges (tok);
  g_autoptr (GString) m = g_string_new ("#version: 0.2\n");
  for (guint i = 0; i < merges->len; i++)
    if (merges->pdata[i])
      {
        g_string_append (m, merges->pdata[i]);
        g_string_append_c (m, '\n');
      }
  return write_file (dir, "vocab.json", vocab->str, vocab->len, error) &&
         write_file (dir, "merges.txt", m->str, m->len, error) &&
         write_file (dir, "tokenizer_config.json", tokenizer_config, sizeof tokenizer_config - 1, error) &&
         write_file (dir, "special_tokens_map.json", special_tokens_map, sizeof special_tokens_map - 1, error);
}

char *
dl_tokenizer_folder_make_temporary (DlClipTokenizer *given, GError **error)
{
  g_autoptr (DlClipTokenizer) found = given ? NULL : dl_clip_tokenizer_find (NULL, NULL, error);
  DlClipTokenizer *tok = given ? given : found;
  if (!tok)
    return NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dreamloom-tokenizer-XXXXXX", &local);
  if (!dir)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "cannot make a temporary folder: %s", local->message);
      return NULL;
    }
  if (!dl_tokenizer_folder_write (tok, dir, error))
    {
      dl_file_remove_tree (dir);
      return NULL;
    }
  return g_steal_pointer (&dir);
}

gboolean
dl_tokenizer_folder_write_checkpoint (DlCheckpoint *base, DlCheckpointSourceFunc source, gpointer user_data,
                                      const DlCheckpointWriteOptions *options, DlClipTokenizer *tok, const char *path,
                                      GError **error)
{
  g_return_val_if_fail (base != NULL && options != NULL && path != NULL, FALSE);
  DlCheckpointWriteOptions o = *options;
  g_autofree char *made = NULL;
  if (o.layout == DL_CHECKPOINT_WRITE_DIFFUSERS && !o.tokenizer_dir && !dl_checkpoint_get_tokenizer_dir (base))
    {
      made = dl_tokenizer_folder_make_temporary (tok, error);
      if (!made)
        return FALSE;
      o.tokenizer_dir = made;
    }
  gboolean ok = dl_checkpoint_write (base, source, user_data, &o, path, error);
  if (made)
    dl_file_remove_tree (made);
  return ok;
}
