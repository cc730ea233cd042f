/* SDXL's two CLIP tokenizers against transformers' CLIPTokenizer on every case
 * of ../shared/golden/sdxl/tokenizer.json: `tokenizer` (SD 1.x's, padding
 * 49407), `tokenizer_2` as diffusers builds it (pad_token "!": every “!” is id
 * 0, padding 0) and the OpenCLIP / kohya sd-scripts ids (padding 0, “!” BPE),
 * with both vocabulary sources: openai's bpe_simple_vocab_16e6.txt.gz from
 * ../shared/data/clip and the golden tiny SDXL's tokenizer_2/ folder.  Both are
 * read at run time (never copied); when either is absent the whole program
 * reports SKIP. */
#include "dl-test-util.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "text/dl-clip-tokenizer.h"

#ifndef DL_TEST_CLIP_DIR
#error "DL_TEST_CLIP_DIR must name ../shared/data/clip"
#endif

static char *bpe_path;      /* bpe_simple_vocab_16e6.txt.gz */
static char *tokenizer_dir; /* golden sdxl/tiny-sdxl-diffusers/tokenizer_2 */
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

static void
assert_ids (const char *prompt, const char *what, const gint32 *got, guint n_got, GArray *want)
{
  if (n_got != want->len || memcmp (got, want->data, want->len * sizeof (gint32)) != 0)
    {
      g_autofree char *a = ids_string (got, n_got);
      g_autofree char *b = ids_string ((gint32 *)want->data, want->len);
      g_error ("“%s” (%s): got %s, transformers gives %s", prompt, what, a, b);
    }
}

static void
check_encode (DlClipTokenizer *tok, const char *prompt, const char *what, GArray *want, JsonArray *tokens)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) got = dl_clip_tokenizer_encode (tok, prompt, &error);
  g_assert_no_error (error);
  assert_ids (prompt, what, (gint32 *)got->data, got->len, want);
  g_assert_cmpuint (json_array_get_length (tokens), ==, got->len);
  for (guint k = 0; k < got->len; k++)
    g_assert_cmpstr (dl_clip_tokenizer_get_token (tok, g_array_index (got, gint32, k)), ==,
                     json_array_get_string_element (tokens, k));
}

static void
check_77 (DlClipTokenizer *tok, const char *prompt, const char *what, GArray *want)
{
  g_autoptr (GError) error = NULL;
  gint32 ids[DL_CLIP_MAX_LENGTH];
  g_assert_true (dl_clip_tokenizer_encode_77 (tok, prompt, ids, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (want->len, ==, DL_CLIP_MAX_LENGTH);
  assert_ids (prompt, what, ids, DL_CLIP_MAX_LENGTH, want);
}

/* The SD 1.x 77 ids padded with 0 instead of 49407 after the end id: what
 * OpenCLIP and kohya give.  `n` is the length of the un-padded ids (the end id
 * is not the first 49407 where the prompt spells "<|endoftext|>" itself). */
static GArray *
padded_with_zero (GArray *ids77, guint n)
{
  GArray *v = g_array_copy (ids77);
  for (guint i = MIN (n, DL_CLIP_MAX_LENGTH); i < v->len; i++)
    {
      g_assert_cmpint (g_array_index (v, gint32, i), ==, 49407);
      g_array_index (v, gint32, i) = 0;
    }
  return v;
}

/* The golden file's own claims, before anything is compared with it. */
static void
test_data (void)
{
  JsonObject *root = json_node_get_object (json_parser_get_root (cases));
  g_assert_cmpint (json_object_get_int_member (root, "bos_id"), ==, 49406);
  g_assert_cmpint (json_object_get_int_member (root, "eos_id"), ==, 49407);
  g_assert_cmpint (json_object_get_int_member (root, "pad_id_tokenizer"), ==, 49407);
  g_assert_cmpint (json_object_get_int_member (root, "pad_id_tokenizer_2"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (root, "max_length"), ==, DL_CLIP_MAX_LENGTH);
  JsonArray *entries = json_object_get_array_member (root, "entries");
  g_assert_cmpuint (json_array_get_length (entries), >=, 11);
  guint differing = 0;
  for (guint i = 0; i < json_array_get_length (entries); i++)
    {
      JsonObject *e = json_array_get_object_element (entries, i);
      const char *prompt = json_object_get_string_member (e, "prompt");
      gboolean differs = json_object_get_boolean_member (e, "tokenizer_2_differs");
      g_assert_cmpint (differs, ==, strchr (prompt, '!') != NULL);
      g_autoptr (GArray) ids = int_array (json_object_get_array_member (e, "ids"));
      g_autoptr (GArray) ids77 = int_array (json_object_get_array_member (e, "ids_77_tokenizer"));
      g_autoptr (GArray) zero = padded_with_zero (ids77, ids->len);
      g_autoptr (GArray) ids77_2 = int_array (json_object_get_array_member (e, "ids_77_tokenizer_2"));
      if (differs)
        {
          /* OpenCLIP / kohya: tokenizer's ids, 0 after the end id */
          g_autoptr (GArray) kohya = int_array (json_object_get_array_member (e, "ids_77_openclip_and_kohya"));
          assert_ids (prompt, "kohya = tokenizer padded with 0", (gint32 *)kohya->data, kohya->len, zero);
          g_assert_false (ids77_2->len == zero->len &&
                          memcmp (ids77_2->data, zero->data, zero->len * sizeof (gint32)) == 0);
          differing++;
        }
      else
        {
          /* without “!”, tokenizer_2 is tokenizer padded with 0 */
          g_assert_false (json_object_has_member (e, "ids_tokenizer_2"));
          assert_ids (prompt, "tokenizer_2 = tokenizer padded with 0", (gint32 *)ids77_2->data, ids77_2->len, zero);
        }
    }
  g_assert_cmpuint (differing, ==, 2);
}

/* Every golden prompt through the three tokenizers, from both sources; the
 * second tokenizer both read from its folder and copied from the first. */
static void
test_golden_cases (void)
{
  JsonObject *root = json_node_get_object (json_parser_get_root (cases));
  JsonArray *entries = json_object_get_array_member (root, "entries");
  const char *sources[2] = { bpe_path, tokenizer_dir };
  guint truncated = 0;
  for (int s = 0; s < 2; s++)
    {
      g_autoptr (DlClipTokenizer) tok = load (sources[s]);
      g_assert_cmpint (dl_clip_tokenizer_get_pad_style (tok), ==, DL_CLIP_PAD_SD1);
      g_autoptr (DlClipTokenizer) tok2 = load (sources[s]);
      dl_clip_tokenizer_set_pad_style (tok2, DL_CLIP_PAD_SDXL_DIFFUSERS);
      g_assert_cmpint (dl_clip_tokenizer_get_pad_style (tok2), ==, DL_CLIP_PAD_SDXL_DIFFUSERS);
      g_assert_cmpint (dl_clip_tokenizer_get_pad (tok2), ==, 0);
      g_autoptr (DlClipTokenizer) tok2_copy = dl_clip_tokenizer_copy (tok);
      dl_clip_tokenizer_set_pad_style (tok2_copy, DL_CLIP_PAD_SDXL_DIFFUSERS);
      g_autoptr (DlClipTokenizer) kohya = dl_clip_tokenizer_copy (tok2);
      dl_clip_tokenizer_set_pad_style (kohya, DL_CLIP_PAD_ZERO);
      g_assert_cmpint (dl_clip_tokenizer_get_pad_style (kohya), ==, DL_CLIP_PAD_ZERO);
      g_assert_cmpint (dl_clip_tokenizer_get_pad (kohya), ==, 0);
      /* the copies changed nothing of the one they came from */
      g_assert_cmpint (dl_clip_tokenizer_get_pad_style (tok), ==, DL_CLIP_PAD_SD1);
      g_assert_cmpint (dl_clip_tokenizer_get_pad_style (tok2), ==, DL_CLIP_PAD_SDXL_DIFFUSERS);
      for (guint i = 0; i < json_array_get_length (entries); i++)
        {
          JsonObject *e = json_array_get_object_element (entries, i);
          const char *prompt = json_object_get_string_member (e, "prompt");
          gboolean differs = json_object_get_boolean_member (e, "tokenizer_2_differs");
          g_autoptr (GArray) ids = int_array (json_object_get_array_member (e, "ids"));
          JsonArray *tokens = json_object_get_array_member (e, "tokens");
          g_autoptr (GArray) ids77 = int_array (json_object_get_array_member (e, "ids_77_tokenizer"));
          g_autoptr (GArray) ids77_2 = int_array (json_object_get_array_member (e, "ids_77_tokenizer_2"));
          g_autoptr (GArray) kohya77 = differs
                                         ? int_array (json_object_get_array_member (e, "ids_77_openclip_and_kohya"))
                                         : padded_with_zero (ids77, ids->len);
          g_autoptr (GArray) ids_2 =
            differs ? int_array (json_object_get_array_member (e, "ids_tokenizer_2")) : g_array_ref (ids);
          JsonArray *tokens_2 = differs ? json_object_get_array_member (e, "tokens_tokenizer_2") : tokens;

          check_encode (tok, prompt, "tokenizer", ids, tokens);
          check_77 (tok, prompt, "tokenizer, 77", ids77);
          check_encode (tok2, prompt, "tokenizer_2", ids_2, tokens_2);
          check_77 (tok2, prompt, "tokenizer_2, 77", ids77_2);
          check_encode (tok2_copy, prompt, "tokenizer_2 copied", ids_2, tokens_2);
          check_77 (tok2_copy, prompt, "tokenizer_2 copied, 77", ids77_2);
          check_encode (kohya, prompt, "OpenCLIP/kohya", ids, tokens);
          check_77 (kohya, prompt, "OpenCLIP/kohya, 77", kohya77);
          if (json_object_get_boolean_member (e, "truncated"))
            truncated++;
        }
    }
  g_assert_cmpuint (truncated, ==, 2); /* the long prompt, twice */
}

/* Textual Inversion placeholders next to the special "!": the longest match
 * at a position wins, as in transformers' tokens_trie; one containing “!” is
 * one token. */
static void
test_added_tokens (void)
{
  g_autoptr (DlClipTokenizer) tok = load (bpe_path);
  dl_clip_tokenizer_set_pad_style (tok, DL_CLIP_PAD_SDXL_DIFFUSERS);
  g_autoptr (GError) error = NULL;
  gint32 s = dl_clip_tokenizer_add_token (tok, "<s*>", &error);
  g_assert_no_error (error);
  g_assert_cmpint (s, ==, 49408);
  g_assert_cmpint (dl_clip_tokenizer_add_token (tok, "<s!>", &error), ==, 49409);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (tok), ==, 49410);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_vocab (tok), ==, 49408);
  /* the copy carries the added tokens and the padding */
  g_autoptr (DlClipTokenizer) copy = dl_clip_tokenizer_copy (tok);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (copy), ==, 49410);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_vocab (copy), ==, 49408);
  g_assert_cmpstr (dl_clip_tokenizer_get_source (copy), ==, bpe_path);
  g_assert_cmpint (dl_clip_tokenizer_get_pad_style (copy), ==, DL_CLIP_PAD_SDXL_DIFFUSERS);
  g_assert_cmpint (dl_clip_tokenizer_add_token (copy, "<only-in-copy>", &error), ==, 49410);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (tok), ==, 49410);

  const struct
  {
    const char *text;
    gint32 ids[16];
  } v[] = {
    { "a photo of a <s*>!", { 49406, 320, 1125, 539, 320, 49408, 0, 49407, -1 } },
    { "<s*>!!<s*>", { 49406, 49408, 0, 0, 49408, 49407, -1 } },
    { "a<s!>b", { 49406, 320, 49409, 321, 49407, -1 } },
    { "wow!<s!>!", { 49406, 2781, 0, 49409, 0, 49407, -1 } },
    /* "<S!>" is not the placeholder (case-sensitive): its “!” is still cut out */
    { "<S!>", { 49406, 283, 338, 0, 285, 49407, -1 } },
    { "HELLO World!", { 49406, 3306, 1002, 0, 49407, -1 } },
  };
  for (int c = 0; c < 2; c++)
    for (guint i = 0; i < G_N_ELEMENTS (v); i++)
      {
        g_autoptr (GArray) got = dl_clip_tokenizer_encode (c ? copy : tok, v[i].text, &error);
        g_assert_no_error (error);
        guint n = 0;
        while (v[i].ids[n] >= 0)
          n++;
        g_autofree char *a = ids_string ((gint32 *)got->data, got->len);
        g_test_message ("%s -> %s", v[i].text, a);
        g_assert_cmpuint (got->len, ==, n);
        g_assert_cmpmem (got->data, n * sizeof (gint32), v[i].ids, n * sizeof (gint32));
      }
  /* kohya's style: “!” is BPE again, the placeholders stay */
  dl_clip_tokenizer_set_pad_style (tok, DL_CLIP_PAD_ZERO);
  g_autoptr (GArray) got = dl_clip_tokenizer_encode (tok, "wow!<s!>!!", &error);
  g_assert_cmpmem (got->data, got->len * sizeof (gint32), ((gint32[]){ 49406, 2781, 256, 49409, 748, 49407 }),
                   6 * sizeof (gint32));
  /* and back to SD 1.x */
  dl_clip_tokenizer_set_pad_style (tok, DL_CLIP_PAD_SD1);
  g_assert_cmpint (dl_clip_tokenizer_get_pad (tok), ==, 49407);
  g_assert_cmpint (dl_clip_tokenizer_get_pad_style (tok), ==, DL_CLIP_PAD_SD1);
  /* set_pad leaves no special token behind */
  dl_clip_tokenizer_set_pad_style (copy, DL_CLIP_PAD_SDXL_DIFFUSERS);
  dl_clip_tokenizer_set_pad (copy, 0);
  g_assert_cmpint (dl_clip_tokenizer_get_pad_style (copy), ==, DL_CLIP_PAD_ZERO);
  g_clear_pointer (&got, g_array_unref);
  got = dl_clip_tokenizer_encode (copy, "hello world!", &error);
  g_assert_cmpmem (got->data, got->len * sizeof (gint32), ((gint32[]){ 49406, 3306, 1002, 256, 49407 }),
                   5 * sizeof (gint32));
}

/* Decoding tokenizer_2's ids gives the special “!” back as text. */
static void
test_decode (void)
{
  g_autoptr (DlClipTokenizer) tok = load (tokenizer_dir);
  dl_clip_tokenizer_set_pad_style (tok, DL_CLIP_PAD_SDXL_DIFFUSERS);
  g_autoptr (GArray) ids = dl_clip_tokenizer_encode (tok, "Wow! amazing!!", NULL);
  g_autofree char *back = dl_clip_tokenizer_decode (tok, (gint32 *)ids->data, ids->len);
  g_assert_cmpstr (back, ==, "wow ! amazing ! !");
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  const char *clip_dir = g_getenv ("DREAMLOOM_TEST_CLIP_DIR");
  bpe_path = g_build_filename (clip_dir ? clip_dir : DL_TEST_CLIP_DIR, "bpe_simple_vocab_16e6.txt.gz", NULL);
  tokenizer_dir = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers/tokenizer_2");
  g_autofree char *cases_path = dl_test_golden_path ("sdxl/tokenizer.json");
  if (!g_file_test (bpe_path, G_FILE_TEST_IS_REGULAR) || !tokenizer_dir || !cases_path)
    return dl_test_skip_all ("the CLIP vocabulary (shared/data/clip) or the golden SDXL tokenizer cases are absent");
  cases = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (cases, cases_path, &error));
  dl_test_add ("/text/clip-sdxl/data", test_data);
  dl_test_add ("/text/clip-sdxl/golden-cases", test_golden_cases);
  dl_test_add ("/text/clip-sdxl/added-tokens", test_added_tokens);
  dl_test_add ("/text/clip-sdxl/decode", test_decode);
  int ret = dl_test_run ();
  g_object_unref (cases);
  g_free (bpe_path);
  g_free (tokenizer_dir);
  return ret;
}
