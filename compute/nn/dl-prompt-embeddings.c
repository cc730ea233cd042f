/* dl-prompt-embeddings.c: see dl-prompt-embeddings.h. */
#include "dl-config.h"

#include "nn/dl-prompt-embeddings.h"

#include <string.h>

#include "dl-error.h"

#define TOKEN_TABLE "text_encoder.text_model.embeddings.token_embedding.weight"
#define TOKEN_TABLE_2 "text_encoder_2.text_model.embeddings.token_embedding.weight"
#define MAX_NAME_BYTES 200

typedef struct
{
  guint index; /* in the order given */
  char *name;
  gunichar *folded; /* the name's characters, lowercased */
  glong n_chars;
  int n_vectors;
  gint32 first_id;
  GStrv tokens;      /* n_vectors token strings */
  char *replacement; /* the tokens joined by spaces */
} Entry;

struct _DlPromptEmbeddings
{
  GPtrArray *entries;   /* Entry, in the order given */
  GPtrArray *by_length; /* the same, the longest name first (not owned) */
};

static void
entry_free (gpointer data)
{
  Entry *e = data;
  g_free (e->name);
  g_free (e->folded);
  g_strfreev (e->tokens);
  g_free (e->replacement);
  g_free (e);
}

void
dl_prompt_embeddings_free (DlPromptEmbeddings *pe)
{
  if (!pe)
    return;
  g_clear_pointer (&pe->by_length, g_ptr_array_unref);
  g_clear_pointer (&pe->entries, g_ptr_array_unref);
  g_free (pe);
}

static int
longer_name_first (gconstpointer a, gconstpointer b)
{
  const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
  if (x->n_chars != y->n_chars)
    return x->n_chars > y->n_chars ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* how errors name embedding i: its file when known, else its name */
static const char *
what (DlEmbedding *const *embeddings, const char *const *sources, guint i)
{
  return sources ? sources[i] : embeddings[i]->name;
}

static gboolean
check_name (const char *name, const char *what, GError **error)
{
  gboolean has_text = FALSE;
  if (name && g_utf8_validate (name, -1, NULL))
    for (const char *p = name; *p && !has_text; p = g_utf8_next_char (p))
      has_text = !g_unichar_isspace (g_utf8_get_char (p));
  if (!has_text || strlen (name) > MAX_NAME_BYTES)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "Embedding “%s”: its name (the file name without extension) must be 1 to %d bytes of UTF-8 text, "
                   "not only spaces",
                   what, MAX_NAME_BYTES);
      return FALSE;
    }
  return TRUE;
}

/* All embeddings' vectors (their second ones, SDXL's clip_g, when `second`) as
 * one f32 table [rows, width] on the device. */
static DlTensor *
added_table (DlParams *params, const char *name, DlEmbedding *const *embeddings, guint n, int64_t rows, int64_t width,
             gboolean second, GError **error)
{
  int64_t shape[2] = { rows, width };
  g_autoptr (DlTensor) added = dl_tensor_new (dl_params_get_device (params), name, DL_DTYPE_F32, 2, shape, error);
  if (!added)
    return NULL;
  g_autofree float *v = g_new (float, rows *width);
  for (guint i = 0, r = 0; i < n; r += embeddings[i]->n_vectors, i++)
    memcpy (v + (gsize)r * width, second ? embeddings[i]->vectors_2 : embeddings[i]->vectors,
            sizeof (float) * embeddings[i]->n_vectors * width);
  if (!dl_tensor_upload_f32 (added, v, error))
    return NULL;
  return g_steal_pointer (&added);
}

static DlPromptEmbeddings *
build (DlClipTokenizer *tok, DlParams *params, DlEmbedding *const *embeddings, guint n, const char *const *sources,
       GError **error)
{
  DlTensor *table = dl_params_getf (params, error, TOKEN_TABLE);
  if (!table)
    return NULL;
  if (table->ndim != 2)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "the model's %s is not a matrix", TOKEN_TABLE);
      return NULL;
    }
  int64_t vocab = table->shape[0], width = table->shape[1];
  if ((int64_t)dl_clip_tokenizer_get_n_tokens (tok) != vocab)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "the tokenizer has %u tokens, the text encoder %" G_GINT64_FORMAT
                   ": embeddings cannot be added as new tokens",
                   dl_clip_tokenizer_get_n_tokens (tok), vocab);
      return NULL;
    }
  /* SDXL: text_encoder_2 takes the same ids (its tokenizer is the same
   * vocabulary) with the embeddings' second vectors */
  DlTensor *table_2 = dl_params_lookup (params, TOKEN_TABLE_2);
  int64_t width_2 = table_2 && table_2->ndim == 2 ? table_2->shape[1] : 0;
  if (table_2 && (table_2->ndim != 2 || table_2->shape[0] != vocab))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "the model's two text encoders have different vocabularies: embeddings cannot be added as new "
                   "tokens");
      return NULL;
    }
  if (dl_params_get_added_tokens (params, NULL) || dl_params_get_added_tokens_for (params, "text_encoder_2", NULL))
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                           "the model already holds added tokens: embeddings cannot be added as well");
      return NULL;
    }

  /* everything checked before the tokenizer and the parameters change */
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  int64_t rows = 0;
  for (guint i = 0; i < n; i++)
    {
      const DlEmbedding *e = embeddings[i];
      if (!check_name (e->name, what (embeddings, sources, i), error))
        return NULL;
      if (table_2 && !e->vectors_2)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "Embedding “%s”: its vectors are %d wide, for one text encoder (an SD 1.x or 2.x embedding), "
                       "but this SDXL model has two text encoders, %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                       " wide (an SDXL embedding holds clip_l and clip_g vectors)",
                       what (embeddings, sources, i), e->dim, width, width_2);
          return NULL;
        }
      if (!table_2 && e->vectors_2)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "Embedding “%s”: an SDXL embedding (clip_l %d and clip_g %d wide, one set per text encoder) "
                       "but the model has one text encoder, %" G_GINT64_FORMAT
                       " wide (an embedding made for another model)",
                       what (embeddings, sources, i), e->dim, e->dim_2, width);
          return NULL;
        }
      if (table_2 && (e->dim != width || e->dim_2 != width_2))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "Embedding “%s”: its vectors are %d (clip_l) and %d (clip_g) wide but the model's text "
                       "encoders take %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                       " (an embedding made for another model)",
                       what (embeddings, sources, i), e->dim, e->dim_2, width, width_2);
          return NULL;
        }
      if (e->dim != width)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "Embedding “%s”: its vectors are %d wide but the model's text encoder takes %" G_GINT64_FORMAT
                       " (an embedding made for another model)",
                       what (embeddings, sources, i), e->dim, width);
          return NULL;
        }
      if (e->n_vectors < 1 || !e->vectors)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Embedding “%s” holds no vectors",
                       what (embeddings, sources, i));
          return NULL;
        }
      char *folded = g_utf8_strdown (e->name, -1);
      gpointer other = NULL;
      if (g_hash_table_lookup_extended (seen, folded, NULL, &other))
        {
          guint j = GPOINTER_TO_UINT (other);
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "Embeddings “%s” and “%s” have the same name “%s” (names are matched ignoring case)",
                       what (embeddings, sources, j), what (embeddings, sources, i), e->name);
          g_free (folded);
          return NULL;
        }
      g_hash_table_insert (seen, folded, GUINT_TO_POINTER (i));
      rows += e->n_vectors;
    }

  g_autoptr (DlTensor) added = NULL, added_2 = NULL;
  if (n > 0)
    {
      added = added_table (params, "text_encoder.prompt_embeddings", embeddings, n, rows, width, FALSE, error);
      if (!added)
        return NULL;
      if (table_2 && !(added_2 = added_table (params, "text_encoder_2.prompt_embeddings", embeddings, n, rows, width_2,
                                              TRUE, error)))
        return NULL;
    }

  g_autoptr (DlPromptEmbeddings) pe = g_new0 (DlPromptEmbeddings, 1);
  pe->entries = g_ptr_array_new_with_free_func (entry_free);
  gint32 next_id = (gint32)vocab;
  for (guint i = 0; i < n; i++)
    {
      const DlEmbedding *src = embeddings[i];
      Entry *e = g_new0 (Entry, 1);
      g_ptr_array_add (pe->entries, e);
      e->index = i;
      e->name = g_strdup (src->name);
      e->folded = g_utf8_to_ucs4_fast (src->name, -1, &e->n_chars);
      for (glong k = 0; k < e->n_chars; k++)
        e->folded[k] = g_unichar_tolower (e->folded[k]);
      e->n_vectors = src->n_vectors;
      e->first_id = next_id;
      e->tokens = g_new0 (char *, e->n_vectors + 1);
      for (int k = 0; k < e->n_vectors; k++)
        {
          e->tokens[k] = g_strdup_printf ("\u27E8%s#%d\u27E9", src->name, k);
          gint32 id = dl_clip_tokenizer_add_token (tok, e->tokens[k], error);
          if (id < 0)
            return NULL;
          if (id != next_id)
            {
              g_set_error (error, DL_ERROR, DL_ERROR_FAILED,
                           "Embedding “%s”: the token “%s” is already in the vocabulary", what (embeddings, sources, i),
                           e->tokens[k]);
              return NULL;
            }
          next_id++;
        }
      e->replacement = g_strjoinv (" ", e->tokens);
    }
  /* not g_ptr_array_copy: the copy would free the entries as well */
  pe->by_length = g_ptr_array_sized_new (n);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (pe->by_length, pe->entries->pdata[i]);
  g_ptr_array_sort (pe->by_length, longer_name_first);
  if (added)
    dl_params_set_added_tokens (params, added, vocab);
  if (added_2)
    dl_params_set_added_tokens_for (params, "text_encoder_2", added_2, vocab);
  return g_steal_pointer (&pe);
}

DlPromptEmbeddings *
dl_prompt_embeddings_new (DlClipTokenizer *tok, DlParams *params, DlEmbedding *const *embeddings, guint n,
                          GError **error)
{
  g_return_val_if_fail (tok != NULL && params != NULL && (embeddings != NULL || n == 0), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return build (tok, params, embeddings, n, NULL, error);
}

DlPromptEmbeddings *
dl_prompt_embeddings_load (DlClipTokenizer *tok, DlParams *params, const char *const *paths, GError **error)
{
  g_return_val_if_fail (tok != NULL && params != NULL && paths != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  DlTensor *table = dl_params_getf (params, error, TOKEN_TABLE);
  if (!table)
    return NULL;
  int width = table->ndim == 2 ? (int)table->shape[1] : 0;
  DlTensor *table_2 = dl_params_lookup (params, TOKEN_TABLE_2);
  int width_2 = table_2 && table_2->ndim == 2 ? (int)table_2->shape[1] : 0;
  g_autoptr (GPtrArray) read = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_embedding_free);
  for (guint i = 0; paths[i]; i++)
    {
      DlEmbedding *e = dl_embedding_read_for_model (paths[i], width, width_2, error);
      if (!e)
        return NULL;
      g_ptr_array_add (read, e);
    }
  return build (tok, params, (DlEmbedding *const *)read->pdata, read->len, paths, error);
}

guint
dl_prompt_embeddings_get_n (DlPromptEmbeddings *pe)
{
  g_return_val_if_fail (pe != NULL, 0);
  return pe->entries->len;
}

static Entry *
get_entry (DlPromptEmbeddings *pe, guint i)
{
  return pe && i < pe->entries->len ? pe->entries->pdata[i] : NULL;
}

const char *
dl_prompt_embeddings_get_name (DlPromptEmbeddings *pe, guint i)
{
  Entry *e = get_entry (pe, i);
  g_return_val_if_fail (e != NULL, NULL);
  return e->name;
}

int
dl_prompt_embeddings_get_n_vectors (DlPromptEmbeddings *pe, guint i)
{
  Entry *e = get_entry (pe, i);
  g_return_val_if_fail (e != NULL, 0);
  return e->n_vectors;
}

gint32
dl_prompt_embeddings_get_first_id (DlPromptEmbeddings *pe, guint i)
{
  Entry *e = get_entry (pe, i);
  g_return_val_if_fail (e != NULL, -1);
  return e->first_id;
}

/* ---- matching ---- */

/* \w: what continues a word */
static gboolean
is_word_char (gunichar c)
{
  return g_unichar_isalnum (c) || g_unichar_ismark (c) || c == '_';
}

/* The bytes of `p` that `e`'s name matches, up to a word end; 0 for none.
 * `prev` is the character before p (0 at the start). */
static gsize
match_at (const Entry *e, const char *p, gunichar prev)
{
  if (prev && is_word_char (prev) && is_word_char (e->folded[0]))
    return 0;
  const char *q = p;
  for (glong i = 0; i < e->n_chars;)
    {
      gunichar want = e->folded[i];
      if (g_unichar_isspace (want))
        {
          /* a run of white space matches a run of white space */
          if (!*q || !g_unichar_isspace (g_utf8_get_char (q)))
            return 0;
          while (*q && g_unichar_isspace (g_utf8_get_char (q)))
            q = g_utf8_next_char (q);
          while (i < e->n_chars && g_unichar_isspace (e->folded[i]))
            i++;
          continue;
        }
      if (!*q || g_unichar_tolower (g_utf8_get_char (q)) != want)
        return 0;
      q = g_utf8_next_char (q);
      i++;
    }
  if (*q && is_word_char (g_utf8_get_char (q)) && is_word_char (e->folded[e->n_chars - 1]))
    return 0;
  return (gsize)(q - p);
}

char *
dl_prompt_embeddings_rewrite (DlPromptEmbeddings *pe, const char *prompt, guint *hits)
{
  g_return_val_if_fail (pe != NULL && prompt != NULL, NULL);
  /* the tokenizer reports a prompt that is not UTF-8 */
  if (pe->entries->len == 0 || !g_utf8_validate (prompt, -1, NULL))
    return g_strdup (prompt);
  GString *out = g_string_sized_new (strlen (prompt) + 16);
  const char *p = prompt;
  gunichar prev = 0;
  while (*p)
    {
      gsize len = 0;
      const Entry *hit = NULL;
      for (guint k = 0; k < pe->by_length->len && !len; k++)
        {
          hit = pe->by_length->pdata[k];
          len = match_at (hit, p, prev);
        }
      if (len)
        {
          g_string_append (out, hit->replacement);
          if (hits)
            hits[hit->index]++;
          p += len;
          prev = g_utf8_get_char (g_utf8_prev_char (p));
          continue;
        }
      const char *next = g_utf8_next_char (p);
      g_string_append_len (out, p, next - p);
      prev = g_utf8_get_char (p);
      p = next;
    }
  return g_string_free (out, FALSE);
}
