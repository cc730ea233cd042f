/* The CLIP tokenizer's parts on data made here: prompt clean-up, the
 * pre-tokenising pattern, the BPE merge loop against a plain re-statement of
 * CLIP's algorithm on random merge tables, loading errors, and the order in
 * which the vocabulary is searched for.  (Real vocabulary and golden cases:
 * test-clip-tokenizer-golden.c.) */
#include "dl-test-util.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "text/dl-clip-normalize.h"
#include "text/dl-clip-tokenizer.h"

static char *base_tmp_dir;

static char *
tmp_path (const char *name)
{
  char *p = g_build_filename (base_tmp_dir, name, NULL);
  g_autofree char *dir = g_path_get_dirname (p);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  return p;
}

static void
write_text (const char *path, const char *text, gssize len)
{
  g_assert_true (g_file_set_contents (path, text, len, NULL));
}

static void
assert_message (const GError *error, const char *needle)
{
  g_assert_nonnull (error);
  if (!strstr (error->message, needle))
    g_error ("the error “%s” does not mention “%s”", error->message, needle);
}

/* ---- clean-up ---- */

static void
test_clean (void)
{
  const char *cases[][2] = {
    { "  Hello\t\tWORLD \n", "hello world" },
    { "a\r\nb\rc", "a b c" },
    { "a\xc2\xa0"
      "b\xe3\x80\x80"
      "c\xe2\x80\x83"
      "d",
      "a b c d" }, /* nbsp, ideographic, em space */
    { "a dog &amp; a cat", "a dog & a cat" },
    { "x &amp;amp; y", "x & y" }, /* until nothing changes */
    { "&lt;b&gt; &quot;hi&quot;", "<b> \"hi\"" },
    { "<b> &amp; </b>", "<b> &amp; </b>" },     /* a '<': real HTML, kept */
    { "one\n<two>\n&amp;", "one <two> &amp;" }, /* ... from that line on */
    { "&amp;\n<", "& <" },
    { "caf&eacute; P&EACUTE;REZ &nTILDE; &SZLIG;", "café pérez &ntilde; ss" },
    { "&#65;&#x42;&#X43;&#0;&#12ab;&#x;", "abc\xef\xbf\xbd&#12ab;&#x;" },
    { "&#8217;s &#128512;", "'s \xf0\x9f\x98\x80" },
    { "&#150;", "\xe2\x80\x93" }, /* cp1252 0x96: en dash */
    { "&notareal;entity", "&notareal;entity" },
    { "Don\xe2\x80\x99t use \xe2\x80\x9c"
      "curly\xe2\x80\x9d quotes",
      "don't use \"curly\" quotes" },
    { "\xef\xac\x81ne \xef\xac\x82u\xef\xac\x83"
      "e\xef\xac\x86",
      "fine fluffiest" },
    { "\xc5\x89", "'n" }, /* ŉ -> ʼn -> 'n */
    { "\xef\xbc\xac\xef\xbc\xaf\xef\xbc\xb5\xef\xbc\xa4\xe3\x80\x80\xef\xbc\xae\xef\xbc\xaf", "loud no" },
    { "\xef\xbe\x80\xef\xbd\xb0\xef\xbe\x9d", "\xe3\x82\xbf\xe3\x83\xbc\xe3\x83\xb3" }, /* ﾀｰﾝ -> ターン */
    { "\xc2\x93quoted\xc2\x94", "\"quoted\"" },                                         /* C1 read as cp1252 */
    { "\x1b[31mred\x1b[0m", "red" },
    { "a\x01"
      "b\x7f"
      "c\xef\xbb\xbf"
      "d",
      "abcd" },
    { "a\xe2\x80\x8b"
      "b",
      "a\xe2\x80\x8b"
      "b" },                                   /* ZWSP stays */
    { "e\xcc\x81", "\xc3\xa9" },               /* NFC */
    { "\xc4\xb0STANBUL", "i\xcc\x87stanbul" }, /* İ */
    { "\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91", "\xce\xbf\xce\xb4\xce\xbf\xcf\x82 \xcf\x83\xce\xb1" },
    { "", "" },
    { " \t\n ", "" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *got = dl_clip_normalize_clean (cases[i][0]);
      if (g_strcmp0 (got, cases[i][1]) != 0)
        g_error ("clean (“%s”) = “%s”, expected “%s”", cases[i][0], got, cases[i][1]);
    }
}

static void
test_split (void)
{
  const char *cases[][16] = {
    { "don't stop", "don", "'t", "stop", NULL },
    { "we're they've i'm you'll he'd it's", "we", "'re", "they", "'ve", "i", "'m", "you", "'ll", "he", "'d", "it",
      "'s" },
    { "rock'n'roll", "rock", "'", "n", "'", "roll", NULL },
    { "hello world!!", "hello", "world", "!!", NULL },
    { "1024x768", "1", "0", "2", "4", "x", "7", "6", "8", NULL },
    { "!!'s", "!!'", "s", NULL },
    { "<|startoftext|>a photo<|endoftext|>", "<|startoftext|>", "a", "photo", "<|endoftext|>", NULL },
    { "!<|endoftext|>", "!<|", "endoftext", "|>", NULL },
    { "'\xc5\xbf", "'\xc5\xbf", NULL }, /* 'ſ matches 's */
    { "\xf0\x9f\x90\xb6\xf0\x9f\x90\xb1 x", "\xf0\x9f\x90\xb6\xf0\x9f\x90\xb1", "x", NULL },
    { "\xe2\x85\xbb\xc2\xbd", "\xe2\x85\xbb", "\xc2\xbd", NULL }, /* Nl, No: one each */
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae", NULL },
    { "", NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GPtrArray) got = dl_clip_normalize_split (cases[i][0]);
      guint n = 0;
      while (n + 1 < G_N_ELEMENTS (cases[i]) && cases[i][n + 1])
        n++;
      gboolean same = got->len == n;
      for (guint k = 0; same && k < n; k++)
        same = strcmp (got->pdata[k], cases[i][k + 1]) == 0;
      if (!same)
        {
          g_ptr_array_add (got, NULL);
          g_autofree char *s = g_strjoinv ("|", (char **)got->pdata);
          g_error ("split (“%s”) = %s", cases[i][0], s);
        }
    }
}

/* ---- BPE against a plain statement of the algorithm ---- */

typedef struct
{
  char *dir;
  GHashTable *ranks; /* "a b" -> rank + 1 */
} Synthetic;

static const char *
byte_char (int b, char buf[8])
{
  static int map[256];
  static gboolean init;
  if (!init)
    {
      int n = 0;
      for (int i = 0; i < 256; i++)
        {
          gboolean printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174;
          map[i] = printable ? i : 256 + n++;
        }
      init = TRUE;
    }
  buf[g_unichar_to_utf8 ((gunichar)map[b], buf)] = '\0';
  return buf;
}

/* A vocabulary of the 256 byte characters, the same with </w>, `merges`
 * joined, and the two specials, as vocab.json + merges.txt. */
static void
write_vocab (const char *dir, GPtrArray *merges, gboolean with_eos)
{
  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  int id = 0;
  char buf[8];
  int order[256], k = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < 256; i++)
      {
        gboolean printable = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || i >= 174;
        if (printable == (pass == 0))
          order[k++] = i;
      }
  for (int i = 0; i < 256; i++)
    {
      json_builder_set_member_name (b, byte_char (order[i], buf));
      json_builder_add_int_value (b, id++);
    }
  for (int i = 0; i < 256; i++)
    {
      g_autofree char *s = g_strconcat (byte_char (order[i], buf), "</w>", NULL);
      json_builder_set_member_name (b, s);
      json_builder_add_int_value (b, id++);
    }
  GString *txt = g_string_new ("#version: 0.2\n");
  for (guint i = 0; i < merges->len; i++)
    {
      g_auto (GStrv) ab = g_strsplit (merges->pdata[i], " ", 2);
      g_autofree char *joined = g_strconcat (ab[0], ab[1], NULL);
      json_builder_set_member_name (b, joined);
      json_builder_add_int_value (b, id++);
      g_string_append_printf (txt, "%s\n", (const char *)merges->pdata[i]);
    }
  json_builder_set_member_name (b, "<|startoftext|>");
  json_builder_add_int_value (b, id++);
  if (with_eos)
    {
      json_builder_set_member_name (b, "<|endoftext|>");
      json_builder_add_int_value (b, id++);
    }
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *mpath = g_build_filename (dir, "merges.txt", NULL);
  g_assert_true (json_generator_to_file (gen, vocab, NULL));
  write_text (mpath, txt->str, (gssize)txt->len);
  g_string_free (txt, TRUE);
}

/* Random merge tables over a 3-letter alphabet: long chains, shared
 * prefixes, and merges whose rank is lower than the pairs they come from. */
static Synthetic
make_synthetic (const char *name, GRand *rng)
{
  g_autoptr (GPtrArray) pool = g_ptr_array_new_with_free_func (g_free);
  const char *letters[] = { "a", "b", "c" };
  for (int i = 0; i < 3; i++)
    {
      g_ptr_array_add (pool, g_strdup (letters[i]));
      g_ptr_array_add (pool, g_strconcat (letters[i], "</w>", NULL));
    }
  g_autoptr (GPtrArray) merges = g_ptr_array_new_with_free_func (g_free);
  GHashTable *seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (int tries = 0; tries < 400 && merges->len < 60; tries++)
    {
      const char *l = pool->pdata[g_rand_int_range (rng, 0, (gint32)pool->len)];
      const char *r = pool->pdata[g_rand_int_range (rng, 0, (gint32)pool->len)];
      if (g_str_has_suffix (l, "</w>") || strlen (l) + strlen (r) > 12)
        continue;
      char *m = g_strconcat (l, " ", r, NULL);
      if (!g_hash_table_add (seen, m))
        continue;
      g_ptr_array_add (merges, g_strdup (m));
      g_ptr_array_add (pool, g_strconcat (l, r, NULL));
    }
  g_hash_table_unref (seen);
  /* ranks in a shuffled order */
  for (guint i = merges->len; i > 1; i--)
    {
      guint j = (guint)g_rand_int_range (rng, 0, (gint32)i);
      gpointer t = merges->pdata[i - 1];
      merges->pdata[i - 1] = merges->pdata[j];
      merges->pdata[j] = t;
    }
  Synthetic s = { tmp_path (name), g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  for (guint i = 0; i < merges->len; i++)
    g_hash_table_insert (s.ranks, g_strdup (merges->pdata[i]), GUINT_TO_POINTER (i + 1));
  write_vocab (s.dir, merges, TRUE);
  return s;
}

/* CLIP's bpe() as written in simple_tokenizer.py, on ASCII words. */
static GPtrArray *
naive_bpe (GHashTable *ranks, const char *word)
{
  GPtrArray *w = g_ptr_array_new_with_free_func (g_free);
  gsize n = strlen (word);
  for (gsize i = 0; i < n; i++)
    g_ptr_array_add (w, i + 1 < n ? g_strndup (word + i, 1) : g_strdup_printf ("%c</w>", word[i]));
  for (;;)
    {
      guint best = G_MAXUINT, bi = 0;
      for (guint i = 0; i + 1 < w->len; i++)
        {
          g_autofree char *k = g_strconcat (w->pdata[i], " ", w->pdata[i + 1], NULL);
          guint r = GPOINTER_TO_UINT (g_hash_table_lookup (ranks, k));
          if (r && r - 1 < best)
            {
              best = r - 1;
              bi = i;
            }
        }
      if (best == G_MAXUINT)
        break;
      g_autofree char *first = g_strdup (w->pdata[bi]);
      g_autofree char *second = g_strdup (w->pdata[bi + 1]);
      GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
      for (guint i = 0; i < w->len;)
        {
          if (i + 1 < w->len && strcmp (w->pdata[i], first) == 0 && strcmp (w->pdata[i + 1], second) == 0)
            {
              g_ptr_array_add (out, g_strconcat (first, second, NULL));
              i += 2;
            }
          else
            g_ptr_array_add (out, g_strdup (w->pdata[i++]));
        }
      g_ptr_array_unref (w);
      w = out;
      if (w->len == 1)
        break;
    }
  return w;
}

static void
test_bpe_random_tables (void)
{
  GRand *rng = g_rand_new_with_seed (77);
  guint checked = 0;
  for (int table = 0; table < 20; table++)
    {
      g_autofree char *name = g_strdup_printf ("synthetic-%d", table);
      Synthetic s = make_synthetic (name, rng);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_new_from_path (s.dir, &error);
      g_assert_no_error (error);
      for (int k = 0; k < 150; k++)
        {
          char word[41];
          int len = g_rand_int_range (rng, 1, 41);
          for (int i = 0; i < len; i++)
            word[i] = "abc"[g_rand_int_range (rng, 0, 3)];
          word[len] = '\0';
          g_autoptr (GPtrArray) want = naive_bpe (s.ranks, word);
          g_autoptr (GArray) ids = dl_clip_tokenizer_encode (tok, word, &error);
          g_assert_no_error (error);
          g_assert_cmpuint (ids->len, ==, want->len + 2);
          for (guint i = 0; i < want->len; i++)
            {
              const char *got = dl_clip_tokenizer_get_token (tok, g_array_index (ids, gint32, i + 1));
              if (g_strcmp0 (got, want->pdata[i]) != 0)
                g_error ("table %d, “%s”: symbol %u is “%s”, CLIP's loop gives “%s”", table, word, i, got,
                         (const char *)want->pdata[i]);
            }
          checked++;
        }
      g_hash_table_unref (s.ranks);
      g_free (s.dir);
    }
  g_rand_free (rng);
  g_test_message ("%u words checked", checked);
}

/* ---- loading ---- */

static void
test_load_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) merges = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (merges, g_strdup ("a b"));
  g_autofree char *good = tmp_path ("good");
  write_vocab (good, merges, TRUE);
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_new_from_path (good, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (tok), ==, 515);
  g_assert_cmpint (dl_clip_tokenizer_get_bos (tok), ==, 513);
  g_assert_cmpint (dl_clip_tokenizer_get_eos (tok), ==, 514);

  g_autofree char *missing = tmp_path ("no-such-vocab.txt.gz");
  g_assert_null (dl_clip_tokenizer_new_from_path (missing, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  assert_message (error, missing);
  g_clear_error (&error);

  g_autofree char *no_eos = tmp_path ("no-eos");
  write_vocab (no_eos, merges, FALSE);
  g_assert_null (dl_clip_tokenizer_new_from_path (no_eos, &error));
  assert_message (error, "<|endoftext|>");
  g_clear_error (&error);

  g_autofree char *bad_json = tmp_path ("bad-json/vocab.json");
  g_autofree char *bad_json_merges = tmp_path ("bad-json/merges.txt");
  write_text (bad_json, "{\"a\": 1,", -1);
  write_text (bad_json_merges, "#version: 0.2\na b\n", -1);
  g_assert_null (dl_clip_tokenizer_new_from_path (bad_json, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  assert_message (error, bad_json);
  g_clear_error (&error);
  write_text (bad_json, "{\"a\": \"one\"}", -1);
  g_assert_null (dl_clip_tokenizer_new_from_path (bad_json, &error));
  assert_message (error, "“a” is not an integer");
  g_clear_error (&error);

  g_autofree char *bad_merges = tmp_path ("bad-merges");
  write_vocab (bad_merges, merges, TRUE);
  g_autofree char *mpath = g_build_filename (bad_merges, "merges.txt", NULL);
  write_text (mpath, "#version: 0.2\na b\na b c\n", -1);
  g_assert_null (dl_clip_tokenizer_new_from_path (bad_merges, &error));
  assert_message (error, mpath);
  assert_message (error, "line 3");
  g_clear_error (&error);
  g_assert_cmpint (g_unlink (mpath), ==, 0);
  g_assert_null (dl_clip_tokenizer_new_from_path (bad_merges, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  assert_message (error, "merges.txt");
  g_clear_error (&error);

  /* openai's format needs all 48,894 merges */
  g_autofree char *short_bpe = tmp_path ("short.txt");
  write_text (short_bpe, "\"bpe_simple_vocab_16e6.txt#version: 0.2\na b\nab c\n", -1);
  g_assert_null (dl_clip_tokenizer_new_from_path (short_bpe, &error));
  assert_message (error, "holds 2 merges; CLIP needs 48894");
  g_clear_error (&error);
  g_autofree char *bad_gz = tmp_path ("damaged.txt.gz");
  write_text (bad_gz, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-garbage", 26);
  g_assert_null (dl_clip_tokenizer_new_from_path (bad_gz, &error));
  assert_message (error, bad_gz);
  assert_message (error, "gzip");
  g_clear_error (&error);

  /* prompts must be UTF-8 */
  g_assert_null (dl_clip_tokenizer_encode (tok, "caf\xe9", &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  assert_message (error, "byte 3");
}

/* A file of 48,894 merges in openai's plain-text layout loads, gzipped too,
 * and the vocabulary it implies is laid out as openai CLIP's simple_tokenizer.py
 * SimpleTokenizer.__init__ builds it (docs/formats.md, “CLIP tokenizer”). */
static void
test_openai_layout (void)
{
  GString *txt = g_string_new ("\"bpe_simple_vocab_16e6.txt#version: 0.2\n");
  /* distinct pairs of two-letter symbols */
  for (int i = 0; i < 48894; i++)
    g_string_append_printf (txt, "%c%c %c%c\n", 'a' + i % 26, 'a' + (i / 26) % 26, 'a' + (i / 676) % 26,
                            'a' + (i / 17576) % 26);
  g_string_append (txt, "unused line\n");
  g_autofree char *plain = tmp_path ("openai.txt");
  write_text (plain, txt->str, (gssize)txt->len);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlClipTokenizer) a = dl_clip_tokenizer_new_from_path (plain, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (a), ==, 49408);
  g_assert_cmpstr (dl_clip_tokenizer_get_token (a, 0), ==, "!");
  g_assert_cmpstr (dl_clip_tokenizer_get_token (a, 256), ==, "!</w>");
  g_assert_cmpstr (dl_clip_tokenizer_get_token (a, 255), ==, "\xc5\x83"); /* byte 173 -> U+0143 */
  g_assert_cmpstr (dl_clip_tokenizer_get_token (a, 512), ==, "aaaa");
  g_assert_cmpstr (dl_clip_tokenizer_get_token (a, 513), ==, "baaa");
  g_assert_cmpstr (dl_clip_tokenizer_get_token (a, 49406), ==, "<|startoftext|>");
  g_assert_cmpstr (dl_clip_tokenizer_get_token (a, 49407), ==, "<|endoftext|>");

  /* the same, gzipped */
  GZlibCompressor *z = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
  g_autoptr (GOutputStream) mem = g_memory_output_stream_new_resizable ();
  g_autoptr (GOutputStream) zs = g_converter_output_stream_new (mem, G_CONVERTER (z));
  g_object_unref (z);
  g_assert_true (g_output_stream_write_all (zs, txt->str, txt->len, NULL, NULL, NULL));
  g_assert_true (g_output_stream_close (zs, NULL, NULL));
  g_autofree char *gz = tmp_path ("openai.txt.gz");
  write_text (gz, g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (mem)),
              (gssize)g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (mem)));
  g_autoptr (DlClipTokenizer) b = dl_clip_tokenizer_new_from_path (gz, &error);
  g_assert_no_error (error);
  for (gint32 id = 0; id < 49408; id++)
    g_assert_cmpstr (dl_clip_tokenizer_get_token (a, id), ==, dl_clip_tokenizer_get_token (b, id));
  g_string_free (txt, TRUE);
}

/* ---- where the vocabulary comes from ---- */

static void
test_search_order (void)
{
  g_autoptr (GPtrArray) merges = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (merges, g_strdup ("a b"));
  g_autofree char *model = tmp_path ("search/model/tokenizer");
  g_autofree char *env = tmp_path ("search/env");
  g_autofree char *hub = tmp_path ("search/hub");
  g_autofree char *snap = tmp_path ("search/hub/models--openai--clip-vit-large-patch14/snapshots/0123abcd");
  g_autofree char *refs = tmp_path ("search/hub/models--openai--clip-vit-large-patch14/refs/main");
  g_autofree char *explicit_dir = tmp_path ("search/explicit");
  write_vocab (model, merges, TRUE);
  write_vocab (env, merges, TRUE);
  write_vocab (snap, merges, TRUE);
  write_vocab (explicit_dir, merges, TRUE);
  write_text (refs, "0123abcd", -1);
  g_setenv ("HF_HUB_CACHE", hub, TRUE);
  g_setenv ("DREAMLOOM_CLIP_VOCAB", env, TRUE);
  g_autoptr (GError) error = NULL;

  const struct
  {
    const char *model_dir, *explicit_path, *want;
  } order[] = {
    { model, explicit_dir, explicit_dir },
    { model, NULL, model },
    { NULL, NULL, env },
  };
  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    {
      g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_find (order[i].model_dir, order[i].explicit_path, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (dl_clip_tokenizer_get_source (tok), ==, order[i].want);
    }
  /* a model folder without the files is passed over */
  g_autofree char *empty_model = tmp_path ("search/empty-model");
  g_assert_cmpint (g_mkdir_with_parents (empty_model, 0700), ==, 0);
  {
    g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_find (empty_model, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (dl_clip_tokenizer_get_source (tok), ==, env);
  }
  /* a source that exists but is broken is an error, not a reason to go on */
  g_autofree char *broken = tmp_path ("search/broken");
  write_vocab (broken, merges, TRUE);
  g_autofree char *broken_merges = g_build_filename (broken, "merges.txt", NULL);
  write_text (broken_merges, "#version: 0.2\nonly-one\n", -1);
  g_assert_null (dl_clip_tokenizer_find (broken, NULL, &error));
  assert_message (error, broken_merges);
  g_clear_error (&error);
  g_autofree char *gone = tmp_path ("search/gone");
  g_setenv ("DREAMLOOM_CLIP_VOCAB", gone, TRUE);
  g_assert_null (dl_clip_tokenizer_find (NULL, NULL, &error));
  assert_message (error, gone);
  g_clear_error (&error);

  g_unsetenv ("DREAMLOOM_CLIP_VOCAB");
  /* an installed copy (this build's data dir, the system's) would be found first */
  gboolean installed = FALSE;
  g_autofree char *places = dl_clip_tokenizer_describe_search (NULL);
  g_auto (GStrv) lines = g_strsplit (places, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    installed |= g_str_has_prefix (lines[i], "  3. ") && !g_str_has_suffix (lines[i], "(absent)");
  if (installed)
    {
      g_test_message ("an installed vocabulary is present: the Hugging Face and not-found cases are not checked");
      g_unsetenv ("HF_HUB_CACHE");
      return;
    }
  /* the Hugging Face cache: the snapshot refs/main names */
  {
    g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_find (NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (dl_clip_tokenizer_get_source (tok), ==, snap);
  }
  /* nothing anywhere: the error lists where it looked */
  g_autofree char *empty_hub = tmp_path ("search/empty-hub");
  g_assert_cmpint (g_mkdir_with_parents (empty_hub, 0700), ==, 0);
  g_setenv ("HF_HUB_CACHE", empty_hub, TRUE);
  g_assert_null (dl_clip_tokenizer_find (empty_model, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  g_test_message ("%s", error->message);
  assert_message (error, "No CLIP vocabulary found");
  assert_message (error, empty_model);
  assert_message (error, "$DREAMLOOM_CLIP_VOCAB (not set)");
  assert_message (error, "dreamloom/clip/bpe_simple_vocab_16e6.txt.gz (absent)");
  assert_message (error, "models--openai--clip-vit-large-patch14 (absent)");
  assert_message (error, "--vocab");
  g_unsetenv ("HF_HUB_CACHE");
}

/* ---- any text: random mixtures of what the clean-up and the pattern treat
 * specially; nothing may crash, every output is valid UTF-8 ---- */

static void
test_random_text (void)
{
  GRand *rng = g_rand_new_with_seed (99);
  Synthetic s = make_synthetic ("random-text", rng);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_new_from_path (s.dir, &error);
  g_assert_no_error (error);
  gint32 placeholder = dl_clip_tokenizer_add_token (tok, "<x*>", &error);
  static const gunichar chars[] = { 'a',    'B',    'c',    's',    't',      '\'',   '&',     '#',     ';',
                                    '<',    '>',    '|',    ' ',    '\t',     '\n',   '\r',    0x1b,    '[',
                                    '1',    'm',    0x01,   0x0b,   0x7f,     0x80,   0x85,    0x93,    0x9d,
                                    0xa0,   0x130,  0x3a3,  0x17f,  0x301,    0x200b, 0x2028,  0x3000,  0xfb01,
                                    0xfb05, 0x149,  0xff21, 0xff80, 0xfeff,   0xfff9, 0x1f436, 0x1f3fd, 0x4e00,
                                    0x0660, 0x2167, 0xbd,   0xd7ff, 0x10ffff, 0xfffd, 0xe0041 };
  static const char *const pieces[] = { "&amp;",         "&#x41;",          "&#150;", "&EACUTE;", "&#99999999999;",
                                        "<|endoftext|>", "<|startoftext|>", "'ll",    "<x*>",     "\x1b[0m",
                                        "\r\n" };
  guint64 total = 0;
  for (int iter = 0; iter < 3000; iter++)
    {
      GString *t = g_string_new (NULL);
      int n = g_rand_int_range (rng, 0, 40);
      for (int k = 0; k < n; k++)
        {
          if (g_rand_int_range (rng, 0, 5) == 0)
            g_string_append (t, pieces[g_rand_int_range (rng, 0, G_N_ELEMENTS (pieces))]);
          else
            g_string_append_unichar (t, chars[g_rand_int_range (rng, 0, G_N_ELEMENTS (chars))]);
        }
      g_autofree char *clean = dl_clip_normalize_clean (t->str);
      g_assert_true (g_utf8_validate (clean, -1, NULL));
      g_autoptr (GPtrArray) split = dl_clip_normalize_split (clean);
      for (guint k = 0; k < split->len; k++)
        {
          const char *p = split->pdata[k];
          g_assert_true (*p && g_utf8_validate (p, -1, NULL));
          g_assert_null (strchr (p, ' '));
        }
      g_autoptr (GArray) ids = dl_clip_tokenizer_encode (tok, t->str, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (ids->len, >=, 2);
      g_assert_cmpint (g_array_index (ids, gint32, 0), ==, dl_clip_tokenizer_get_bos (tok));
      g_assert_cmpint (g_array_index (ids, gint32, ids->len - 1), ==, dl_clip_tokenizer_get_eos (tok));
      for (guint k = 0; k < ids->len; k++)
        {
          gint32 id = g_array_index (ids, gint32, k);
          g_assert_true (id == placeholder || dl_clip_tokenizer_get_token (tok, id) != NULL);
        }
      gint32 ids77[DL_CLIP_MAX_LENGTH];
      g_assert_true (dl_clip_tokenizer_encode_77 (tok, t->str, ids77, &error));
      g_autofree char *back = dl_clip_tokenizer_decode (tok, (gint32 *)ids->data, ids->len);
      g_assert_true (g_utf8_validate (back, -1, NULL));
      total += ids->len;
      g_string_free (t, TRUE);
    }
  g_test_message ("%" G_GUINT64_FORMAT " ids from 3000 random prompts", total);
  g_rand_free (rng);
  g_hash_table_unref (s.ranks);
  g_free (s.dir);
}

/* ---- several threads share one tokenizer (and its cache) ---- */

typedef struct
{
  DlClipTokenizer *tok;
  GArray *want;
} ThreadData;

static gpointer
encode_many (gpointer data)
{
  ThreadData *d = data;
  for (int i = 0; i < 200; i++)
    {
      g_autofree char *word = g_strdup_printf ("ab%cba%c", "abc"[i % 3], "abc"[(i / 3) % 3]);
      g_autoptr (GArray) ids = dl_clip_tokenizer_encode (d->tok, word, NULL);
      g_autoptr (GArray) again = dl_clip_tokenizer_encode (d->tok, "abc cab bca", NULL);
      if (again->len != d->want->len || memcmp (again->data, d->want->data, again->len * sizeof (gint32)) != 0)
        return GINT_TO_POINTER (1);
    }
  return NULL;
}

static void
test_threads (void)
{
  GRand *rng = g_rand_new_with_seed (5);
  Synthetic s = make_synthetic ("threads", rng);
  g_rand_free (rng);
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_new_from_path (s.dir, NULL);
  g_autoptr (GArray) want = dl_clip_tokenizer_encode (tok, "abc cab bca", NULL);
  ThreadData d = { tok, want };
  GThread *t[4];
  for (int i = 0; i < 4; i++)
    t[i] = g_thread_new ("encode", encode_many, &d);
  for (int i = 0; i < 4; i++)
    g_assert_null (g_thread_join (t[i]));
  g_hash_table_unref (s.ranks);
  g_free (s.dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  base_tmp_dir = g_dir_make_tmp ("dl-test-clip-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  dl_test_add ("/text/clip/clean", test_clean);
  dl_test_add ("/text/clip/split", test_split);
  dl_test_add ("/text/clip/bpe-random-tables", test_bpe_random_tables);
  dl_test_add ("/text/clip/load-errors", test_load_errors);
  dl_test_add ("/text/clip/openai-layout", test_openai_layout);
  dl_test_add ("/text/clip/search-order", test_search_order);
  dl_test_add ("/text/clip/random-text", test_random_text);
  dl_test_add ("/text/clip/threads", test_threads);
  int ret = dl_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  return ret;
}
