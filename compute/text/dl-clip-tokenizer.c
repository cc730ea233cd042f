/* CLIP BPE: loading the vocabulary and merges, encoding, decoding (openai CLIP
 * simple_tokenizer.py SimpleTokenizer, transformers tokenization_clip.py
 * CLIPTokenizer.bpe; docs/formats.md, “CLIP tokenizer”). */
#include "dl-clip-tokenizer.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <zlib.h>

#include "dl-error.h"
#include "text/dl-clip-normalize.h"

/* openai's file holds more merges than CLIP uses: lines 1 .. 49152-256-2 */
#define N_MERGES (49152 - 256 - 2)
#define MAX_FILE_SIZE (64u << 20)
#define MAX_CACHE 65536
#define BOS_TEXT "<|startoftext|>"
#define EOS_TEXT "<|endoftext|>"
/* SDXL tokenizer_2's pad token in diffusers (id 0 in CLIP's vocabulary) */
#define SDXL_PAD_TEXT "!"

struct _DlClipTokenizer
{
  char *source;
  GPtrArray *decoder;     /* id -> token (owned; NULL for ids a vocab.json skips) */
  GHashTable *encoder;    /* token -> id + 1 */
  GHashTable *ranks;      /* "a b" -> rank + 1 */
  char byte_char[256][4]; /* byte -> its character, UTF-8 */
  gint16 char_byte[512];  /* character -> byte, -1 */
  GPtrArray *added;       /* raw strings matched before clean-up, longest first */
  GHashTable *added_id;   /* raw string -> id + 1 */
  gint32 bos, eos, pad;
  char *pad_special; /* the pad token's text when it is a special token cut out
                        of prompts (DL_CLIP_PAD_SDXL_DIFFUSERS), else NULL */
  guint n_vocab;     /* ids from the vocabulary file (the rest were added) */
  GMutex lock;
  GHashTable *cache; /* word -> GArray of ids */
};

void
dl_clip_tokenizer_free (DlClipTokenizer *tok)
{
  if (!tok)
    return;
  g_free (tok->source);
  g_free (tok->pad_special);
  g_clear_pointer (&tok->encoder, g_hash_table_unref);
  g_clear_pointer (&tok->decoder, g_ptr_array_unref);
  g_clear_pointer (&tok->ranks, g_hash_table_unref);
  g_clear_pointer (&tok->added, g_ptr_array_unref);
  g_clear_pointer (&tok->added_id, g_hash_table_unref);
  g_clear_pointer (&tok->cache, g_hash_table_unref);
  g_mutex_clear (&tok->lock);
  g_free (tok);
}

static DlClipTokenizer *
tokenizer_new (const char *source)
{
  DlClipTokenizer *tok = g_new0 (DlClipTokenizer, 1);
  tok->source = g_strdup (source);
  tok->decoder = g_ptr_array_new_with_free_func (g_free);
  tok->encoder = g_hash_table_new (g_str_hash, g_str_equal);
  tok->ranks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  tok->added = g_ptr_array_new_with_free_func (g_free);
  tok->added_id = g_hash_table_new (g_str_hash, g_str_equal);
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_array_unref);
  g_mutex_init (&tok->lock);

  /* bytes_to_unicode: the printable bytes keep their code point, the other 68
   * become 256, 257, ... in byte order */
  int n = 0;
  for (int b = 0; b < 512; b++)
    tok->char_byte[b] = -1;
  for (int b = 0; b < 256; b++)
    {
      gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      gunichar c = printable ? (gunichar)b : (gunichar)(256 + n++);
      tok->byte_char[b][g_unichar_to_utf8 (c, tok->byte_char[b])] = '\0';
      tok->char_byte[c] = (gint16)b;
    }
  return tok;
}

/* The byte-mapped characters in vocabulary order: the printable bytes first,
 * then the others (the order of bytes_to_unicode's list). */
static void
byte_chars_in_order (DlClipTokenizer *tok, const char *order[256])
{
  int k = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int b = 0; b < 256; b++)
      {
        gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        if (printable == (pass == 0))
          order[k++] = tok->byte_char[b];
      }
}

static void
add_entry (DlClipTokenizer *tok, gint32 id, char *token /* taken */)
{
  if ((guint)id >= tok->decoder->len)
    g_ptr_array_set_size (tok->decoder, id + 1);
  /* the encoder's keys are the decoder's strings: one replaced here must not
   * stay behind as a key */
  char *old = tok->decoder->pdata[id];
  gpointer key;
  if (old && g_hash_table_lookup_extended (tok->encoder, old, &key, NULL) && key == old)
    g_hash_table_remove (tok->encoder, old);
  g_free (old);
  tok->decoder->pdata[id] = token;
  /* a later entry with the same string wins, as a Python dict built from the
   * list would have it (the key too: it is the string of the id it maps to) */
  g_hash_table_replace (tok->encoder, token, GINT_TO_POINTER (id + 1));
}

gint32
dl_clip_tokenizer_lookup (DlClipTokenizer *tok, const char *token)
{
  g_return_val_if_fail (tok != NULL && token != NULL, -1);
  return GPOINTER_TO_INT (g_hash_table_lookup (tok->encoder, token)) - 1;
}

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Bad CLIP vocabulary “%s”: %s", path, msg);
  return FALSE;
}

/* Lines 1 .. N_MERGES of a merges text ("a b" per line; line 0 is the
 * version header) into rank order.  `merged`, when given, receives the
 * concatenations (the vocabulary entries openai's file implies). */
static gboolean
read_merges (DlClipTokenizer *tok, const char *text, gsize len, const char *path, gboolean need_all, GPtrArray *merged,
             GError **error)
{
  if (!g_utf8_validate_len (text, len, NULL))
    return bad (error, path, "not UTF-8 text");
  const char *p = text, *end = text + len;
  /* transformers strips the text first; openai does not (it makes no
   * difference for real files) */
  while (p < end && g_ascii_isspace (*p))
    p++;
  guint line = 0, rank = 0;
  while (p < end && rank < N_MERGES)
    {
      const char *nl = memchr (p, '\n', end - p);
      const char *le = nl ? nl : end;
      if (line > 0)
        {
          g_autofree char *l = g_strndup (p, le - p);
          g_auto (GStrv) parts = g_strsplit_set (g_strstrip (l), " \t\r\f\v", -1);
          char *a = NULL, *b = NULL;
          guint count = 0;
          for (guint i = 0; parts[i]; i++)
            if (*parts[i])
              {
                if (count == 0)
                  a = parts[i];
                else if (count == 1)
                  b = parts[i];
                count++;
              }
          if (count != 2)
            return bad (error, path, "line %u is not two symbols (“%.40s”)", line + 1, l);
          g_hash_table_insert (tok->ranks, g_strconcat (a, " ", b, NULL), GUINT_TO_POINTER (rank + 1));
          if (merged)
            g_ptr_array_add (merged, g_strconcat (a, b, NULL));
          rank++;
        }
      line++;
      p = le + (nl ? 1 : 0);
    }
  if (need_all && rank < N_MERGES)
    return bad (error, path, "it holds %u merges; CLIP needs %u", rank, N_MERGES);
  if (rank == 0)
    return bad (error, path, "no merges");
  return TRUE;
}

static gboolean
read_file (const char *path, char **text, gsize *len, GError **error)
{
  g_autoptr (GError) local = NULL;
  if (!g_file_get_contents (path, text, len, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot read CLIP vocabulary “%s”: %s", path, local->message);
      return FALSE;
    }
  if (*len > MAX_FILE_SIZE)
    {
      g_clear_pointer (text, g_free);
      return bad (error, path, "larger than %u MiB", MAX_FILE_SIZE >> 20);
    }
  return TRUE;
}

static char *
gunzip (const guint8 *data, gsize len, const char *path, gsize *out_len, GError **error)
{
  z_stream s = { 0 };
  if (inflateInit2 (&s, 16 + MAX_WBITS) != Z_OK)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "zlib failed to start reading “%s”", path);
      return NULL;
    }
  GByteArray *out = g_byte_array_new ();
  guint8 buf[65536];
  s.next_in = (Bytef *)data;
  s.avail_in = (uInt)len;
  int rc;
  do
    {
      s.next_out = buf;
      s.avail_out = sizeof buf;
      rc = inflate (&s, Z_NO_FLUSH);
      g_byte_array_append (out, buf, sizeof buf - s.avail_out);
      if (out->len > MAX_FILE_SIZE)
        rc = Z_MEM_ERROR;
    }
  while (rc == Z_OK && !(s.avail_in == 0 && s.avail_out != 0));
  inflateEnd (&s);
  if (rc != Z_STREAM_END)
    {
      g_byte_array_unref (out);
      bad (error, path, rc == Z_MEM_ERROR ? "it unpacks to more than %u MiB" : "damaged gzip data",
           MAX_FILE_SIZE >> 20);
      return NULL;
    }
  *out_len = out->len;
  g_byte_array_append (out, (const guint8 *)"", 1);
  return (char *)g_byte_array_free (out, FALSE);
}

/* openai's bpe_simple_vocab: merges only; the vocabulary is built from them
 * (bytes, bytes + </w>, each merge joined, then the two specials). */
static gboolean
load_bpe_file (DlClipTokenizer *tok, const char *path, GError **error)
{
  g_autofree char *raw = NULL;
  gsize len;
  if (!read_file (path, &raw, &len, error))
    return FALSE;
  g_autofree char *unpacked = NULL;
  const char *text = raw;
  if (len >= 2 && (guint8)raw[0] == 0x1f && (guint8)raw[1] == 0x8b)
    {
      unpacked = gunzip ((const guint8 *)raw, len, path, &len, error);
      if (!unpacked)
        return FALSE;
      text = unpacked;
    }
  g_autoptr (GPtrArray) merged = g_ptr_array_new_with_free_func (g_free);
  if (!read_merges (tok, text, len, path, TRUE, merged, error))
    return FALSE;
  const char *order[256];
  byte_chars_in_order (tok, order);
  gint32 id = 0;
  for (int i = 0; i < 256; i++)
    add_entry (tok, id++, g_strdup (order[i]));
  for (int i = 0; i < 256; i++)
    add_entry (tok, id++, g_strconcat (order[i], "</w>", NULL));
  for (guint i = 0; i < merged->len; i++)
    add_entry (tok, id++, g_strdup (merged->pdata[i]));
  add_entry (tok, id++, g_strdup (BOS_TEXT));
  add_entry (tok, id++, g_strdup (EOS_TEXT));
  return TRUE;
}

/* A diffusers tokenizer: vocab.json (token -> id) and merges.txt. */
static gboolean
load_vocab_json (DlClipTokenizer *tok, const char *vocab_path, const char *merges_path, GError **error)
{
  g_autofree char *text = NULL;
  gsize len;
  if (!read_file (vocab_path, &text, &len, error))
    return FALSE;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  if (!json_parser_load_from_data (parser, text, (gssize)len, &local))
    return bad (error, vocab_path, "%s", local->message);
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    return bad (error, vocab_path, "not a JSON object of token → id");
  JsonObject *o = json_node_get_object (root);
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    {
      JsonNode *v = json_object_get_member (o, l->data);
      if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_INT64 || json_node_get_int (v) < 0 ||
          json_node_get_int (v) >= (1 << 20))
        return bad (error, vocab_path, "the id of “%.40s” is not an integer from 0 to %d", (const char *)l->data,
                    (1 << 20) - 1);
      add_entry (tok, (gint32)json_node_get_int (v), g_strdup (l->data));
    }
  g_clear_pointer (&text, g_free);
  if (!read_file (merges_path, &text, &len, error))
    return FALSE;
  return read_merges (tok, text, len, merges_path, FALSE, NULL, error);
}

static gboolean
add_special (DlClipTokenizer *tok, const char *text, gint32 id)
{
  if (!g_hash_table_contains (tok->added_id, text))
    {
      char *s = g_strdup (text);
      g_ptr_array_add (tok->added, s);
      g_hash_table_insert (tok->added_id, s, GINT_TO_POINTER (id + 1));
    }
  return TRUE;
}

static int
longer_first (gconstpointer a, gconstpointer b)
{
  gsize la = strlen (*(const char *const *)a), lb = strlen (*(const char *const *)b);
  return la < lb ? 1 : la > lb ? -1 : strcmp (*(const char *const *)a, *(const char *const *)b);
}

DlClipTokenizer *
dl_clip_tokenizer_new_from_path (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_autoptr (DlClipTokenizer) tok = tokenizer_new (path);
  g_autofree char *vocab = NULL, *merges = NULL;
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      vocab = g_build_filename (path, "vocab.json", NULL);
      merges = g_build_filename (path, "merges.txt", NULL);
    }
  else if (g_str_has_suffix (path, ".json"))
    {
      g_autofree char *dir = g_path_get_dirname (path);
      vocab = g_strdup (path);
      merges = g_build_filename (dir, "merges.txt", NULL);
    }
  gboolean ok = vocab ? load_vocab_json (tok, vocab, merges, error) : load_bpe_file (tok, path, error);
  if (!ok)
    return NULL;
  tok->bos = dl_clip_tokenizer_lookup (tok, BOS_TEXT);
  tok->eos = dl_clip_tokenizer_lookup (tok, EOS_TEXT);
  if (tok->bos < 0 || tok->eos < 0)
    {
      bad (error, vocab ? vocab : path, "it has no %s", tok->bos < 0 ? BOS_TEXT : EOS_TEXT);
      return NULL;
    }
  tok->pad = tok->eos;
  tok->n_vocab = tok->decoder->len;
  add_special (tok, BOS_TEXT, tok->bos);
  add_special (tok, EOS_TEXT, tok->eos);
  g_ptr_array_sort (tok->added, longer_first);
  return g_steal_pointer (&tok);
}

/* ---- accessors ---- */

guint
dl_clip_tokenizer_get_n_vocab (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return tok->n_vocab;
}

GPtrArray *
dl_clip_tokenizer_dup_merges (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, NULL);
  guint n = g_hash_table_size (tok->ranks);
  GPtrArray *out = g_ptr_array_new_full (n, g_free);
  g_ptr_array_set_size (out, n);
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, tok->ranks);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      guint rank = GPOINTER_TO_UINT (value) - 1;
      if (rank < n)
        out->pdata[rank] = g_strdup (key);
    }
  return out;
}

const char *
dl_clip_tokenizer_get_source (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, NULL);
  return tok->source;
}

guint
dl_clip_tokenizer_get_n_tokens (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);
  return tok->decoder->len;
}

gint32
dl_clip_tokenizer_get_bos (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->bos;
}

gint32
dl_clip_tokenizer_get_eos (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->eos;
}

gint32
dl_clip_tokenizer_get_pad (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, -1);
  return tok->pad;
}

void
dl_clip_tokenizer_set_pad (DlClipTokenizer *tok, gint32 pad)
{
  g_return_if_fail (tok != NULL && pad >= 0 && (guint)pad < tok->decoder->len);
  tok->pad = pad;
  g_clear_pointer (&tok->pad_special, g_free);
}

void
dl_clip_tokenizer_set_pad_style (DlClipTokenizer *tok, DlClipPadStyle style)
{
  g_return_if_fail (tok != NULL);
  switch (style)
    {
    case DL_CLIP_PAD_SD1:
      dl_clip_tokenizer_set_pad (tok, tok->eos);
      return;
    case DL_CLIP_PAD_ZERO:
      dl_clip_tokenizer_set_pad (tok, 0);
      return;
    case DL_CLIP_PAD_SDXL_DIFFUSERS:
      {
        /* transformers: a pad token string that is not in the vocabulary
         * would be added; CLIP's has "!" as id 0 */
        gint32 id = dl_clip_tokenizer_lookup (tok, SDXL_PAD_TEXT);
        g_return_if_fail (id >= 0);
        dl_clip_tokenizer_set_pad (tok, id);
        tok->pad_special = g_strdup (SDXL_PAD_TEXT);
        return;
      }
    }
  g_return_if_reached ();
}

DlClipPadStyle
dl_clip_tokenizer_get_pad_style (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, DL_CLIP_PAD_SD1);
  if (tok->pad_special)
    return DL_CLIP_PAD_SDXL_DIFFUSERS;
  return tok->pad == tok->eos ? DL_CLIP_PAD_SD1 : DL_CLIP_PAD_ZERO;
}

DlClipTokenizer *
dl_clip_tokenizer_copy (DlClipTokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, NULL);
  DlClipTokenizer *copy = tokenizer_new (tok->source);
  g_ptr_array_set_size (copy->decoder, tok->decoder->len);
  for (guint id = 0; id < tok->decoder->len; id++)
    copy->decoder->pdata[id] = g_strdup (tok->decoder->pdata[id]);
  /* each key is the string of the id it maps to (add_entry) */
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init (&it, tok->encoder);
  while (g_hash_table_iter_next (&it, &key, &value))
    g_hash_table_replace (copy->encoder, copy->decoder->pdata[GPOINTER_TO_INT (value) - 1], value);
  g_hash_table_iter_init (&it, tok->ranks);
  while (g_hash_table_iter_next (&it, &key, &value))
    g_hash_table_insert (copy->ranks, g_strdup (key), value);
  for (guint i = 0; i < tok->added->len; i++)
    {
      char *s = g_strdup (tok->added->pdata[i]);
      g_ptr_array_add (copy->added, s);
      g_hash_table_insert (copy->added_id, s, g_hash_table_lookup (tok->added_id, s));
    }
  copy->bos = tok->bos;
  copy->eos = tok->eos;
  copy->pad = tok->pad;
  copy->pad_special = g_strdup (tok->pad_special);
  copy->n_vocab = tok->n_vocab;
  return copy;
}

const char *
dl_clip_tokenizer_get_token (DlClipTokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, NULL);
  return id >= 0 && (guint)id < tok->decoder->len ? tok->decoder->pdata[id] : NULL;
}

gint32
dl_clip_tokenizer_add_token (DlClipTokenizer *tok, const char *text, GError **error)
{
  g_return_val_if_fail (tok != NULL && text != NULL, -1);
  g_return_val_if_fail (error == NULL || *error == NULL, -1);
  if (!*text || !g_utf8_validate (text, -1, NULL) || strlen (text) > 256)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "A new token must be 1 to 256 bytes of UTF-8 text (“%s”)",
                   g_utf8_validate (text, -1, NULL) ? text : "?");
      return -1;
    }
  gint32 id = GPOINTER_TO_INT (g_hash_table_lookup (tok->added_id, text)) - 1;
  if (id >= 0)
    return id;
  /* transformers: a string already in the vocabulary keeps its id */
  id = dl_clip_tokenizer_lookup (tok, text);
  if (id < 0)
    {
      id = (gint32)tok->decoder->len;
      add_entry (tok, id, g_strdup (text));
    }
  add_special (tok, text, id);
  g_ptr_array_sort (tok->added, longer_first);
  return id;
}

/* ---- BPE ---- */

typedef struct
{
  guint rank;
  int left, right;
  guint left_end, right_end;
} Cand;

typedef struct
{
  const char *mapped; /* the word in the byte alphabet */
  guint len;
  guint *start, *end;
  int *next, *prev;
  gboolean *alive;
  GString *key;
} Word;

static void
symbol_text (const Word *w, int i, GString *out)
{
  g_string_append_len (out, w->mapped + w->start[i], w->end[i] - w->start[i]);
  if (w->end[i] == w->len)
    g_string_append (out, "</w>");
}

static gboolean
pair_rank (DlClipTokenizer *tok, Word *w, int a, int b, guint *rank)
{
  g_string_truncate (w->key, 0);
  symbol_text (w, a, w->key);
  g_string_append_c (w->key, ' ');
  symbol_text (w, b, w->key);
  guint r = GPOINTER_TO_UINT (g_hash_table_lookup (tok->ranks, w->key->str));
  *rank = r - 1;
  return r != 0;
}

static void
heap_push (GArray *h, Cand c)
{
  g_array_append_val (h, c);
  for (guint i = h->len - 1; i > 0;)
    {
      guint p = (i - 1) / 2;
      Cand *a = &g_array_index (h, Cand, p), *b = &g_array_index (h, Cand, i);
      if (a->rank <= b->rank)
        break;
      Cand t = *a;
      *a = *b;
      *b = t;
      i = p;
    }
}

static Cand
heap_pop (GArray *h)
{
  Cand top = g_array_index (h, Cand, 0);
  g_array_index (h, Cand, 0) = g_array_index (h, Cand, h->len - 1);
  g_array_set_size (h, h->len - 1);
  for (guint i = 0;;)
    {
      guint l = 2 * i + 1, r = l + 1, m = i;
      if (l < h->len && g_array_index (h, Cand, l).rank < g_array_index (h, Cand, m).rank)
        m = l;
      if (r < h->len && g_array_index (h, Cand, r).rank < g_array_index (h, Cand, m).rank)
        m = r;
      if (m == i)
        break;
      Cand t = g_array_index (h, Cand, i);
      g_array_index (h, Cand, i) = g_array_index (h, Cand, m);
      g_array_index (h, Cand, m) = t;
      i = m;
    }
  return top;
}

static void
push_pair (DlClipTokenizer *tok, Word *w, GArray *heap, int a, int b)
{
  guint rank;
  if (a >= 0 && b >= 0 && pair_rank (tok, w, a, b, &rank))
    heap_push (heap, (Cand){ rank, a, b, w->end[a], w->end[b] });
}

static gboolean
cand_valid (const Word *w, const Cand *c)
{
  return w->alive[c->left] && w->alive[c->right] && w->next[c->left] == c->right && w->end[c->left] == c->left_end &&
         w->end[c->right] == c->right_end;
}

static int
cand_by_position (gconstpointer a, gconstpointer b, gpointer data)
{
  const Word *w = data;
  guint x = w->start[((const Cand *)a)->left], y = w->start[((const Cand *)b)->left];
  return x < y ? -1 : x > y;
}

/* CLIP's merge loop: repeatedly take the adjacent pair with the lowest rank
 * and merge every occurrence of it, left to right without overlap.  Done in
 * rounds over a heap so that a long word costs n log n, not n². */
static GArray *
bpe_word (DlClipTokenizer *tok, const char *word)
{
  GString *mapped = g_string_new (NULL);
  for (const guint8 *b = (const guint8 *)word; *b; b++)
    g_string_append (mapped, tok->byte_char[*b]);
  guint n = (guint)g_utf8_strlen (mapped->str, -1);
  Word w = { mapped->str,    (guint)mapped->len, g_new (guint, n),    g_new (guint, n),
             g_new (int, n), g_new (int, n),     g_new (gboolean, n), g_string_new (NULL) };
  const char *p = mapped->str;
  for (guint i = 0; i < n; i++)
    {
      const char *q = g_utf8_next_char (p);
      w.start[i] = (guint)(p - mapped->str);
      w.end[i] = (guint)(q - mapped->str);
      w.prev[i] = (int)i - 1;
      w.next[i] = i + 1 < n ? (int)i + 1 : -1;
      w.alive[i] = TRUE;
      p = q;
    }
  GArray *heap = g_array_new (FALSE, FALSE, sizeof (Cand));
  GArray *round = g_array_new (FALSE, FALSE, sizeof (Cand));
  GArray *merged = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i + 1 < n; i++)
    push_pair (tok, &w, heap, (int)i, (int)i + 1);
  while (heap->len > 0)
    {
      guint rank = g_array_index (heap, Cand, 0).rank;
      g_array_set_size (round, 0);
      while (heap->len > 0 && g_array_index (heap, Cand, 0).rank == rank)
        {
          Cand c = heap_pop (heap);
          if (cand_valid (&w, &c))
            g_array_append_val (round, c);
        }
      g_array_sort_with_data (round, cand_by_position, &w);
      g_array_set_size (merged, 0);
      for (guint k = 0; k < round->len; k++)
        {
          Cand *c = &g_array_index (round, Cand, k);
          if (!cand_valid (&w, c))
            continue; /* overlapped by the occurrence just merged */
          int a = c->left, b = c->right;
          w.end[a] = w.end[b];
          w.alive[b] = FALSE;
          w.next[a] = w.next[b];
          if (w.next[b] >= 0)
            w.prev[w.next[b]] = a;
          g_array_append_val (merged, a);
        }
      for (guint k = 0; k < merged->len; k++)
        {
          int a = g_array_index (merged, int, k);
          if (!w.alive[a])
            continue;
          push_pair (tok, &w, heap, w.prev[a], a);
          push_pair (tok, &w, heap, a, w.next[a]);
        }
    }
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (int i = n ? 0 : -1; i >= 0; i = w.next[i])
    {
      g_string_truncate (w.key, 0);
      symbol_text (&w, i, w.key);
      gint32 id = dl_clip_tokenizer_lookup (tok, w.key->str);
      if (id < 0)
        id = tok->eos; /* the unknown token is <|endoftext|> */
      g_array_append_val (ids, id);
    }
  g_array_unref (heap);
  g_array_unref (round);
  g_array_unref (merged);
  g_string_free (w.key, TRUE);
  g_free (w.start);
  g_free (w.end);
  g_free (w.next);
  g_free (w.prev);
  g_free (w.alive);
  g_string_free (mapped, TRUE);
  return ids;
}

static void
append_word (DlClipTokenizer *tok, GArray *ids, const char *word)
{
  /* the pattern's own special strings (an exact match only, as the BPE cache
   * of transformers and openai has them) */
  if (strcmp (word, BOS_TEXT) == 0)
    {
      g_array_append_val (ids, tok->bos);
      return;
    }
  if (strcmp (word, EOS_TEXT) == 0)
    {
      g_array_append_val (ids, tok->eos);
      return;
    }
  g_mutex_lock (&tok->lock);
  GArray *cached = g_hash_table_lookup (tok->cache, word);
  if (cached)
    g_array_append_vals (ids, cached->data, cached->len);
  g_mutex_unlock (&tok->lock);
  if (cached)
    return;
  GArray *w = bpe_word (tok, word);
  g_array_append_vals (ids, w->data, w->len);
  g_mutex_lock (&tok->lock);
  if (g_hash_table_size (tok->cache) >= MAX_CACHE)
    g_hash_table_remove_all (tok->cache);
  g_hash_table_replace (tok->cache, g_strdup (word), w);
  g_mutex_unlock (&tok->lock);
}

static void
encode_plain (DlClipTokenizer *tok, GArray *ids, const char *text, gsize len)
{
  g_autofree char *segment = g_strndup (text, len);
  g_autofree char *clean = dl_clip_normalize_clean (segment);
  g_autoptr (GPtrArray) words = dl_clip_normalize_split (clean);
  for (guint i = 0; i < words->len; i++)
    append_word (tok, ids, words->pdata[i]);
}

GArray *
dl_clip_tokenizer_encode (DlClipTokenizer *tok, const char *prompt, GError **error)
{
  g_return_val_if_fail (tok != NULL && prompt != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  const char *bad_at;
  if (!g_utf8_validate (prompt, -1, &bad_at))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "The prompt is not valid UTF-8 (at byte %" G_GSIZE_FORMAT ")", (gsize)(bad_at - prompt));
      return NULL;
    }
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_array_append_val (ids, tok->bos);
  /* added tokens and a special pad token (transformers' tokens_trie) are cut
   * out of the raw text first, the longest match at each position */
  const char *seg = prompt, *p = prompt;
  while (*p)
    {
      const char *hit = NULL;
      gint32 id = -1;
      for (guint k = 0; k < tok->added->len && !hit; k++)
        if (g_str_has_prefix (p, tok->added->pdata[k]))
          {
            hit = tok->added->pdata[k];
            id = GPOINTER_TO_INT (g_hash_table_lookup (tok->added_id, hit)) - 1;
          }
      if (tok->pad_special && g_str_has_prefix (p, tok->pad_special) &&
          (!hit || strlen (tok->pad_special) > strlen (hit)))
        {
          hit = tok->pad_special;
          id = tok->pad;
        }
      if (!hit)
        {
          p = g_utf8_next_char (p);
          continue;
        }
      encode_plain (tok, ids, seg, (gsize)(p - seg));
      g_array_append_val (ids, id);
      p += strlen (hit);
      seg = p;
    }
  encode_plain (tok, ids, seg, (gsize)(p - seg));
  g_array_append_val (ids, tok->eos);
  return ids;
}

gboolean
dl_clip_tokenizer_encode_77 (DlClipTokenizer *tok, const char *prompt, gint32 ids[DL_CLIP_MAX_LENGTH], GError **error)
{
  g_return_val_if_fail (tok != NULL && prompt != NULL && ids != NULL, FALSE);
  g_autoptr (GArray) all = dl_clip_tokenizer_encode (tok, prompt, error);
  if (!all)
    return FALSE;
  /* start + at most 75 ids + end, then padding */
  guint content = MIN (all->len - 2, DL_CLIP_MAX_LENGTH - 2);
  ids[0] = tok->bos;
  for (guint i = 0; i < content; i++)
    ids[1 + i] = g_array_index (all, gint32, 1 + i);
  ids[1 + content] = tok->eos;
  for (guint i = 2 + content; i < DL_CLIP_MAX_LENGTH; i++)
    ids[i] = tok->pad;
  return TRUE;
}

char *
dl_clip_tokenizer_decode (DlClipTokenizer *tok, const gint32 *ids, gsize n)
{
  g_return_val_if_fail (tok != NULL && (ids != NULL || n == 0), NULL);
  GByteArray *bytes = g_byte_array_new ();
  for (gsize i = 0; i < n; i++)
    {
      const char *t = dl_clip_tokenizer_get_token (tok, ids[i]);
      if (!t || ids[i] == tok->bos || ids[i] == tok->eos)
        continue;
      if (tok->pad_special && ids[i] == tok->pad)
        t = tok->pad_special;
      if (t == tok->pad_special || g_hash_table_contains (tok->added_id, t))
        {
          g_byte_array_append (bytes, (const guint8 *)t, strlen (t));
          g_byte_array_append (bytes, (const guint8 *)" ", 1);
          continue;
        }
      gboolean word_end = g_str_has_suffix (t, "</w>");
      const char *end = t + strlen (t) - (word_end ? 4 : 0);
      for (const char *p = t; p < end; p = g_utf8_next_char (p))
        {
          gunichar c = g_utf8_get_char (p);
          if (c < 512 && tok->char_byte[c] >= 0)
            {
              guint8 b = (guint8)tok->char_byte[c];
              g_byte_array_append (bytes, &b, 1);
            }
        }
      if (word_end)
        g_byte_array_append (bytes, (const guint8 *)" ", 1);
    }
  while (bytes->len > 0 && bytes->data[bytes->len - 1] == ' ')
    g_byte_array_set_size (bytes, bytes->len - 1);
  g_autofree char *text = bytes->len ? g_strndup ((const char *)bytes->data, bytes->len) : g_strdup ("");
  g_byte_array_unref (bytes);
  return g_utf8_make_valid (text, -1);
}
