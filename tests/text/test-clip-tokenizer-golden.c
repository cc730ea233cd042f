/* The CLIP tokenizer against transformers' CLIPTokenizer on every case of
 * ../shared/golden/tokenizer.json, with both vocabulary sources: openai's
 * bpe_simple_vocab_16e6.txt.gz from ../shared/data/clip and the golden tiny
 * model's tokenizer/ folder.  Both are read at run time (never copied); when
 * either is absent the whole program reports SKIP. */
#include "dl-test-util.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "text/dl-clip-tokenizer.h"

#ifndef DL_TEST_CLIP_DIR
#error "DL_TEST_CLIP_DIR must name ../shared/data/clip"
#endif

static char *bpe_path;      /* bpe_simple_vocab_16e6.txt.gz */
static char *tokenizer_dir; /* golden tiny-sd15-diffusers/tokenizer */
static JsonParser *cases;

static DlClipTokenizer *
load (const char *path)
{
  g_autoptr (GError) error = NULL;
  DlClipTokenizer *tok = dl_clip_tokenizer_new_from_path (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (tok);
  return tok;
}

static GArray *
int_array (JsonArray *a)
{
  GArray *v = g_array_new (FALSE, FALSE, sizeof (gint32));
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      gint32 x = (gint32)json_array_get_int_element (a, i);
      g_array_append_val (v, x);
    }
  return v;
}

static char *
ids_string (const gint32 *ids, guint n)
{
  GString *s = g_string_new ("[");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "", ids[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* Both vocabulary sources give the same 49,408 entries and the same merges. */
static void
test_sources_agree (void)
{
  g_autoptr (DlClipTokenizer) a = load (bpe_path);
  g_autoptr (DlClipTokenizer) b = load (tokenizer_dir);
  g_autofree char *vocab = g_build_filename (tokenizer_dir, "vocab.json", NULL);
  g_autoptr (DlClipTokenizer) c = load (vocab);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (a), ==, 49408);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (b), ==, 49408);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (c), ==, 49408);
  for (gint32 id = 0; id < 49408; id++)
    {
      g_assert_cmpstr (dl_clip_tokenizer_get_token (a, id), ==, dl_clip_tokenizer_get_token (b, id));
      g_assert_cmpint (dl_clip_tokenizer_lookup (b, dl_clip_tokenizer_get_token (a, id)), ==, id);
    }
  g_assert_cmpint (dl_clip_tokenizer_get_bos (a), ==, 49406);
  g_assert_cmpint (dl_clip_tokenizer_get_eos (a), ==, 49407);
  g_assert_cmpint (dl_clip_tokenizer_get_bos (b), ==, 49406);
  g_assert_cmpint (dl_clip_tokenizer_get_eos (b), ==, 49407);
  g_assert_cmpint (dl_clip_tokenizer_get_pad (a), ==, 49407);
  g_assert_cmpstr (dl_clip_tokenizer_get_source (a), ==, bpe_path);
  /* ids of openai's vocabulary (docs/formats.md, “CLIP tokenizer”) */
  g_assert_cmpint (dl_clip_tokenizer_lookup (a, "!"), ==, 0);
  g_assert_cmpint (dl_clip_tokenizer_lookup (a, "a</w>"), ==, 320);
  g_assert_cmpint (dl_clip_tokenizer_lookup (a, "*</w>"), ==, 265);
  g_assert_cmpint (dl_clip_tokenizer_lookup (a, "photo</w>"), ==, 1125);
  g_assert_cmpint (dl_clip_tokenizer_lookup (a, "sks</w>"), ==, 48136);
  g_assert_cmpint (dl_clip_tokenizer_lookup (a, ",</w>"), ==, 267);
  g_assert_null (dl_clip_tokenizer_get_token (a, 49408));
  g_assert_null (dl_clip_tokenizer_get_token (a, -1));
}

/* Every golden prompt: the un-truncated ids, the 77 SD 1.x ids, the token
 * strings, with both vocabulary sources. */
static void
test_golden_cases (void)
{
  JsonObject *root = json_node_get_object (json_parser_get_root (cases));
  g_assert_cmpint (json_object_get_int_member (root, "bos_id"), ==, 49406);
  g_assert_cmpint (json_object_get_int_member (root, "pad_id"), ==, 49407);
  g_assert_cmpint (json_object_get_int_member (root, "max_length"), ==, DL_CLIP_MAX_LENGTH);
  JsonArray *entries = json_object_get_array_member (root, "entries");
  g_assert_cmpuint (json_array_get_length (entries), >=, 40);
  DlClipTokenizer *toks[2] = { load (bpe_path), load (tokenizer_dir) };
  guint truncated = 0;
  for (int t = 0; t < 2; t++)
    for (guint i = 0; i < json_array_get_length (entries); i++)
      {
        JsonObject *e = json_array_get_object_element (entries, i);
        const char *prompt = json_object_get_string_member (e, "prompt");
        g_autoptr (GArray) want = int_array (json_object_get_array_member (e, "ids"));
        g_autoptr (GArray) want77 = int_array (json_object_get_array_member (e, "ids_77"));
        JsonArray *tokens = json_object_get_array_member (e, "tokens");
        g_autoptr (GError) error = NULL;
        g_autoptr (GArray) got = dl_clip_tokenizer_encode (toks[t], prompt, &error);
        g_assert_no_error (error);
        if (got->len != want->len || memcmp (got->data, want->data, want->len * sizeof (gint32)) != 0)
          {
            g_autofree char *a = ids_string ((gint32 *)got->data, got->len);
            g_autofree char *b = ids_string ((gint32 *)want->data, want->len);
            g_error ("“%s”: got %s, transformers gives %s", prompt, a, b);
          }
        g_assert_cmpuint (json_array_get_length (tokens), ==, got->len);
        for (guint k = 0; k < got->len; k++)
          g_assert_cmpstr (dl_clip_tokenizer_get_token (toks[t], g_array_index (got, gint32, k)), ==,
                           json_array_get_string_element (tokens, k));
        gint32 ids77[DL_CLIP_MAX_LENGTH];
        g_assert_true (dl_clip_tokenizer_encode_77 (toks[t], prompt, ids77, &error));
        g_assert_cmpuint (want77->len, ==, DL_CLIP_MAX_LENGTH);
        if (memcmp (ids77, want77->data, sizeof ids77) != 0)
          {
            g_autofree char *a = ids_string (ids77, DL_CLIP_MAX_LENGTH);
            g_autofree char *b = ids_string ((gint32 *)want77->data, want77->len);
            g_error ("“%s” (77): got %s, transformers gives %s", prompt, a, b);
          }
        if (json_object_get_boolean_member (e, "truncated"))
          truncated++;
      }
  g_assert_cmpuint (truncated, ==, 2 * 2); /* the two long prompts, twice */
  dl_clip_tokenizer_free (toks[0]);
  dl_clip_tokenizer_free (toks[1]);
}

/* The test vectors of docs/formats.md, “CLIP tokenizer” (content ids, computed
 * independently of the golden set). */
static void
test_doc_vectors (void)
{
  g_autoptr (DlClipTokenizer) tok = load (bpe_path);
  const struct
  {
    const char *text;
    gint32 ids[9];
  } v[] = {
    { "a photo of a cat", { 320, 1125, 539, 320, 2368, -1 } },
    { "a photo of sks dog", { 320, 1125, 539, 48136, 1929, -1 } },
    { "A painting, art by [name]", { 320, 3086, 267, 794, 638, 314, 1981, 316, -1 } },
    { "hello world!!", { 3306, 1002, 748, -1 } },
    { "embedding:foo 1024", { 19703, 796, 281, 23435, 272, 271, 273, 275, -1 } },
    { "photo of a *", { 1125, 539, 320, 265, -1 } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    {
      g_autoptr (GArray) got = dl_clip_tokenizer_encode (tok, v[i].text, NULL);
      guint n = 0;
      while (v[i].ids[n] >= 0)
        n++;
      g_assert_cmpuint (got->len, ==, n + 2);
      g_assert_cmpmem ((gint32 *)got->data + 1, n * sizeof (gint32), v[i].ids, n * sizeof (gint32));
    }
}

/* Textual Inversion placeholders become one id each, wherever they stand. */
static void
test_added_tokens (void)
{
  g_autoptr (DlClipTokenizer) tok = load (bpe_path);
  g_autoptr (GError) error = NULL;
  gint32 s = dl_clip_tokenizer_add_token (tok, "<s*>", &error);
  g_assert_no_error (error);
  g_assert_cmpint (s, ==, 49408);
  g_assert_cmpint (dl_clip_tokenizer_add_token (tok, "<s*>", &error), ==, 49408);
  gint32 toy = dl_clip_tokenizer_add_token (tok, "<cat-toy>", &error);
  gint32 cat = dl_clip_tokenizer_add_token (tok, "<cat>", &error);
  g_assert_cmpint (toy, ==, 49409);
  g_assert_cmpint (cat, ==, 49410);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (tok), ==, 49411);
  g_assert_cmpstr (dl_clip_tokenizer_get_token (tok, s), ==, "<s*>");
  /* a vocabulary entry keeps its id */
  g_assert_cmpint (dl_clip_tokenizer_add_token (tok, "sks</w>", &error), ==, 48136);

  const struct
  {
    const char *text;
    gint32 ids[16];
  } v[] = {
    { "a photo of a <s*>", { 49406, 320, 1125, 539, 320, 49408, 49407, -1 } },
    { "<s*> in the style of <s*>", { 49406, 49408, 530, 518, 1844, 539, 49408, 49407, -1 } },
    { "a<s*>b", { 49406, 320, 49408, 321, 49407, -1 } },
    { "<cat-toy> and <cat>", { 49406, 49409, 537, 49410, 49407, -1 } },
    /* case-sensitive, as transformers' added tokens: "<S*>" is ordinary text */
    { "<S*>", { 49406, 283, 338, 9, 285, 49407, -1 } },
    /* the special strings stay special */
    { "<|startoftext|><s*><|endoftext|>", { 49406, 49406, 49408, 49407, 49407, -1 } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (v); i++)
    {
      g_autoptr (GArray) got = dl_clip_tokenizer_encode (tok, v[i].text, &error);
      g_assert_no_error (error);
      guint n = 0;
      while (v[i].ids[n] >= 0)
        n++;
      g_autofree char *a = ids_string ((gint32 *)got->data, got->len);
      g_test_message ("%s -> %s", v[i].text, a);
      g_assert_cmpuint (got->len, ==, n);
      g_assert_cmpmem (got->data, n * sizeof (gint32), v[i].ids, n * sizeof (gint32));
    }
  g_autofree char *back = dl_clip_tokenizer_decode (tok, (gint32[]){ 49406, 320, 1125, 539, 320, 49408, 49407 }, 7);
  g_assert_cmpstr (back, ==, "a photo of a <s*>");
  g_assert_cmpint (dl_clip_tokenizer_add_token (tok, "", &error), ==, -1);
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

/* SD 2.x pads with 0 after a single end id; decoding gives the cleaned text. */
static void
test_padding_and_decode (void)
{
  g_autoptr (DlClipTokenizer) tok = load (bpe_path);
  gint32 ids[DL_CLIP_MAX_LENGTH];
  g_assert_true (dl_clip_tokenizer_encode_77 (tok, "a photo of a cat", ids, NULL));
  for (int i = 7; i < DL_CLIP_MAX_LENGTH; i++)
    g_assert_cmpint (ids[i], ==, 49407);
  dl_clip_tokenizer_set_pad (tok, 0);
  g_assert_true (dl_clip_tokenizer_encode_77 (tok, "a photo of a cat", ids, NULL));
  g_assert_cmpint (ids[6], ==, 49407);
  for (int i = 7; i < DL_CLIP_MAX_LENGTH; i++)
    g_assert_cmpint (ids[i], ==, 0);
  const char *texts[] = { "A Painting, art by [name]!!", "café crème, naïve — 日本語", "1girl, 8k, f/1.8" };
  const char *want[] = { "a painting , art by [ name ]!!", "café crème , naïve — 日本語", "1 girl , 8 k , f / 1 . 8" };
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr (GArray) got = dl_clip_tokenizer_encode (tok, texts[i], NULL);
      g_autofree char *back = dl_clip_tokenizer_decode (tok, (gint32 *)got->data, got->len);
      g_assert_cmpstr (back, ==, want[i]);
    }
}

/* One enormous word does not take quadratic time (the merge loop runs over a
 * heap); its tokens still decode to the word. */
static void
test_long_word (void)
{
  g_autoptr (DlClipTokenizer) tok = load (bpe_path);
  GString *word = g_string_new (NULL);
  for (int i = 0; i < 20000; i++)
    g_string_append (word, "photographanti");
  g_autoptr (GArray) ids = dl_clip_tokenizer_encode (tok, word->str, NULL);
  g_assert_cmpuint (ids->len, >, 2);
  g_autofree char *back = dl_clip_tokenizer_decode (tok, (gint32 *)ids->data, ids->len);
  g_assert_cmpstr (back, ==, word->str);
  g_string_free (word, TRUE);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  const char *clip_dir = g_getenv ("DREAMLOOM_TEST_CLIP_DIR");
  bpe_path = g_build_filename (clip_dir ? clip_dir : DL_TEST_CLIP_DIR, "bpe_simple_vocab_16e6.txt.gz", NULL);
  tokenizer_dir = dl_test_golden_path ("tiny-sd15-diffusers/tokenizer");
  g_autofree char *cases_path = dl_test_golden_path ("tokenizer.json");
  if (!g_file_test (bpe_path, G_FILE_TEST_IS_REGULAR) || !tokenizer_dir || !cases_path)
    return dl_test_skip_all ("the CLIP vocabulary (shared/data/clip) or the golden tokenizer cases are absent");
  cases = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (cases, cases_path, &error));
  dl_test_add ("/text/clip-golden/sources-agree", test_sources_agree);
  dl_test_add ("/text/clip-golden/golden-cases", test_golden_cases);
  dl_test_add ("/text/clip-golden/doc-vectors", test_doc_vectors);
  dl_test_add ("/text/clip-golden/added-tokens", test_added_tokens);
  dl_test_add ("/text/clip-golden/padding-and-decode", test_padding_and_decode);
  dl_test_add ("/text/clip-golden/long-word", test_long_word);
  int ret = dl_test_run ();
  g_object_unref (cases);
  g_free (bpe_path);
  g_free (tokenizer_dir);
  return ret;
}
