/* dl-tokenizer-folder.c: see dl-tokenizer-folder.h. */
#include "dl-config.h"

#include "train/dl-tokenizer-folder.h"

#include <string.h>

#include "dl-error.h"
#include "io/dl-file-util.h"
#include "io/dl-json-write.h"

/* transformers 4.40 CLIPTokenizer.save_pretrained's two small files, as it
 * writes them (json.dumps(indent=2, sort_keys=True) and a newline) for
 * model_max_length 77 and the pad token `pad`: SD 1.x's "<|endoftext|>" or
 * SDXL tokenizer_2's "!".  A pad token given as a string is a special
 * AddedToken(normalized=False) in added_tokens_decoder and a plain string in
 * special_tokens_map.json; the start and end tokens are CLIPTokenizer's own
 * AddedToken(lstrip=False, rstrip=False), normalized. */
typedef struct
{
  char key[16];
  const char *content;
  gboolean normalized;
} Added;

static int
by_key (gconstpointer a, gconstpointer b)
{
  /* sort_keys sorts the ids as strings: "0" < "49406" < "5" */
  return strcmp (((const Added *)a)->key, ((const Added *)b)->key);
}

static void
append_added_token (GString *out, const char *indent, const char *content, gboolean normalized, gboolean special)
{
  g_string_append_printf (out, "{\n%s  \"content\": ", indent);
  dl_json_append_string (out, content);
  g_string_append_printf (out,
                          ",\n%s  \"lstrip\": false,\n%s  \"normalized\": %s,\n%s  \"rstrip\": false,\n%s  "
                          "\"single_word\": false",
                          indent, indent, normalized ? "true" : "false", indent, indent);
  if (special)
    g_string_append_printf (out, ",\n%s  \"special\": true", indent);
  g_string_append_printf (out, "\n%s}", indent);
}

static char *
tokenizer_config (DlClipTokenizer *tok, const char *pad)
{
  gint32 bos = dl_clip_tokenizer_get_bos (tok), eos = dl_clip_tokenizer_get_eos (tok);
  gint32 pad_id = dl_clip_tokenizer_get_pad (tok);
  Added added[3];
  guint n = 0;
  g_snprintf (added[n].key, sizeof added[n].key, "%d", bos);
  added[n].content = dl_clip_tokenizer_get_token (tok, bos);
  added[n++].normalized = TRUE;
  g_snprintf (added[n].key, sizeof added[n].key, "%d", eos);
  added[n].content = dl_clip_tokenizer_get_token (tok, eos);
  added[n++].normalized = TRUE;
  if (pad_id != bos && pad_id != eos)
    {
      g_snprintf (added[n].key, sizeof added[n].key, "%d", pad_id);
      added[n].content = pad;
      added[n++].normalized = FALSE;
    }
  qsort (added, n, sizeof (Added), by_key);
  GString *out = g_string_new ("{\n  \"added_tokens_decoder\": {\n");
  for (guint i = 0; i < n; i++)
    {
      g_string_append_printf (out, "    \"%s\": ", added[i].key);
      append_added_token (out, "    ", added[i].content, added[i].normalized, TRUE);
      g_string_append (out, i + 1 < n ? ",\n" : "\n");
    }
  g_string_append (out, "  },\n  \"bos_token\": ");
  dl_json_append_string (out, dl_clip_tokenizer_get_token (tok, bos));
  g_string_append (out, ",\n  \"clean_up_tokenization_spaces\": true,\n  \"do_lower_case\": true,\n  \"eos_token\": ");
  dl_json_append_string (out, dl_clip_tokenizer_get_token (tok, eos));
  g_string_append (out, ",\n  \"errors\": \"replace\",\n  \"model_max_length\": 77,\n  \"pad_token\": ");
  dl_json_append_string (out, pad);
  g_string_append (out, ",\n  \"tokenizer_class\": \"CLIPTokenizer\",\n  \"unk_token\": ");
  dl_json_append_string (out, dl_clip_tokenizer_get_token (tok, eos));
  g_string_append (out, "\n}\n");
  return g_string_free (out, FALSE);
}

static char *
special_tokens_map (DlClipTokenizer *tok, const char *pad)
{
  const char *bos = dl_clip_tokenizer_get_token (tok, dl_clip_tokenizer_get_bos (tok));
  const char *eos = dl_clip_tokenizer_get_token (tok, dl_clip_tokenizer_get_eos (tok));
  GString *out = g_string_new ("{\n  \"bos_token\": ");
  append_added_token (out, "  ", bos, TRUE, FALSE);
  g_string_append (out, ",\n  \"eos_token\": ");
  append_added_token (out, "  ", eos, TRUE, FALSE);
  g_string_append (out, ",\n  \"pad_token\": ");
  dl_json_append_string (out, pad);
  g_string_append (out, ",\n  \"unk_token\": ");
  append_added_token (out, "  ", eos, TRUE, FALSE);
  g_string_append (out, "\n}\n");
  return g_string_free (out, FALSE);
}

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
  /* the pad token: SD 1.x's end token, or the published tokenizer_2's "!"
   * (id 0) for both SDXL styles, kohya's too: diffusers reads the folder */
  const char *pad = dl_clip_tokenizer_get_token (tok, dl_clip_tokenizer_get_pad (tok));
  g_autofree char *config = tokenizer_config (tok, pad);
  g_autofree char *map = special_tokens_map (tok, pad);
  return write_file (dir, "vocab.json", vocab->str, vocab->len, error) &&
         write_file (dir, "merges.txt", m->str, m->len, error) &&
         write_file (dir, "tokenizer_config.json", config, strlen (config), error) &&
         write_file (dir, "special_tokens_map.json", map, strlen (map), error);
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
  /* SDXL's tokenizer_2/ where the base has none: the same vocabulary with
   * tokenizer_2's padding, written as diffusers' */
  g_autofree char *made_2 = NULL;
  g_autofree char *tok2_dir = dl_checkpoint_write_find_tokenizer_2 (base, &o);
  if (o.layout == DL_CHECKPOINT_WRITE_DIFFUSERS && dl_model_config_is_sdxl (dl_checkpoint_get_config (base)) &&
      !tok2_dir)
    {
      g_autoptr (DlClipTokenizer) found = tok ? NULL : dl_clip_tokenizer_find (NULL, NULL, error);
      if (!tok && !found)
        {
          if (made)
            dl_file_remove_tree (made);
          return FALSE;
        }
      g_autoptr (DlClipTokenizer) tok2 = dl_clip_tokenizer_copy (tok ? tok : found);
      dl_clip_tokenizer_set_pad_style (tok2, DL_CLIP_PAD_SDXL_DIFFUSERS);
      made_2 = dl_tokenizer_folder_make_temporary (tok2, error);
      if (!made_2)
        {
          if (made)
            dl_file_remove_tree (made);
          return FALSE;
        }
      o.tokenizer_2_dir = made_2;
    }
  gboolean ok = dl_checkpoint_write (base, source, user_data, &o, path, error);
  if (made)
    dl_file_remove_tree (made);
  if (made_2)
    dl_file_remove_tree (made_2);
  return ok;
}
