/* test-prompt-embeddings.c: Textual Inversion embeddings used in prompts by
 * name (nn/dl-prompt-embeddings.h), on the golden tiny SD 1.5 model (its own
 * tokenizer/ folder; skipped without it).
 *
 *  - an embedding whose one vector is the token row of "dog" samples exactly
 *    as the word "dog" does (the same latents, bit for bit);
 *  - a 2-vector embedding takes two positions: the ids and the embedding
 *    layer's rows the text encoder sees, and the conditioning of an embedding
 *    made of the rows of "red" and "car" against the words themselves;
 *  - the A1111 .pt, kohya emb_params and diffusers files of the same vectors
 *    sample the same latents;
 *  - name matching (whole words, case-insensitive, longest first) and the
 *    errors (another width, missing file, same names, added tokens). */
#include "dl-config.h"

#include "dl-test-util.h"
#include "nn/dl-text-encoder.h"
#include "nn/dl-prompt-embeddings.h"
#include "nn/dl-sd-model.h"

#include <glib/gstdio.h>
#include <string.h>

#define TOKEN_TABLE "text_encoder.text_model.embeddings.token_embedding.weight"
#define POS_TABLE "text_encoder.text_model.embeddings.position_embedding.weight"
#define LATENTS (4 * 16 * 16) /* 32x32 pixels; the tiny VAE downsamples by 2 */

static char *model_dir;

static DlSdModel *
load_model (void)
{
  g_autoptr (GError) error = NULL;
  DlSdModel *m = dl_sd_model_load (dl_test_device (), model_dir, NULL, &error);
  g_assert_no_error (error);
  return m;
}

static DlClipTokenizer *
load_tokenizer (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (model_dir, "tokenizer", NULL);
  DlClipTokenizer *tok = dl_clip_tokenizer_new_from_path (dir, &error);
  g_assert_no_error (error);
  return tok;
}

static gint32
word_id (DlClipTokenizer *tok, const char *word)
{
  g_autofree char *t = g_strconcat (word, "</w>", NULL);
  gint32 id = dl_clip_tokenizer_lookup (tok, t);
  g_assert_cmpint (id, >=, 0);
  return id;
}

static DlEmbedding *
make_embedding (const char *name, int n, int dim, const float *v)
{
  DlEmbedding *e = g_new0 (DlEmbedding, 1);
  e->name = g_strdup (name);
  e->n_vectors = n;
  e->dim = dim;
  e->vectors = g_memdup2 (v, sizeof (float) * n * dim);
  e->step = -1;
  return e;
}

/* The model's token table [V, C] on the host. */
static float *
token_table (DlSdModel *m, int64_t *vocab, int *width)
{
  DlTensor *t = dl_params_lookup (dl_sd_model_get_params (m), TOKEN_TABLE);
  g_assert_nonnull (t);
  *vocab = t->shape[0];
  *width = (int)t->shape[1];
  return dl_test_download (t);
}

static void
encode (DlClipTokenizer *tok, const char *prompt, gint32 ids[77])
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_clip_tokenizer_encode_77 (tok, prompt, ids, &error));
  g_assert_no_error (error);
}

/* Euler a (A1111's default), 3 steps, 32x32, CFG 7.5, seed 5: the final latents */
static float *
sample (DlSdModel *m, DlClipTokenizer *tok, const char *prompt)
{
  g_autoptr (GError) error = NULL;
  gint32 pos[77], neg[77];
  encode (tok, prompt, pos);
  encode (tok, "", neg);
  DlSampleParams p = {
    .prompt_ids = pos,
    .negative_ids = neg,
    .batch = 1,
    .width = 32,
    .height = 32,
    .steps = 3,
    .cfg_scale = 7.5f,
    .seed = 5,
    .clip_skip = 1,
  };
  g_assert_true (dl_sampler_kind_from_name ("euler_a", &p.sampler, &p.sigmas));
  float *latents = NULL;
  g_assert_true (dl_sd_sample (m, &p, &latents, NULL, &error));
  g_assert_no_error (error);
  return latents;
}

/* The text encoder on `ids`: the conditioning, and the embedding layer's output
 * when `embedded` is given. */
static float *
encode_text (DlSdModel *m, const gint32 ids[77], float **embedded)
{
  g_autoptr (GError) error = NULL;
  const DlModelConfig *cfg = dl_sd_model_get_config (m);
  g_autoptr (DlTape) tape = dl_tape_new (dl_sd_model_get_recorder (m), dl_sd_model_get_arena (m));
  dl_tape_set_enabled (tape, FALSE);
  int64_t shape[2] = { 1, 77 };
  g_autoptr (DlTensor) t = dl_tensor_new (dl_test_device (), "ids", DL_DTYPE_I32, 2, shape, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tensor_upload (t, ids, DL_DTYPE_I32, &error));
  g_autoptr (GPtrArray) hidden = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  DlTextEncoderOptions opt = { .clip_skip = 1, .hidden_states = hidden };
  g_autoptr (DlTensor) ctx =
    dl_text_encoder_forward (dl_sd_model_get_params (m), &cfg->text_encoder, tape, t, &opt, &error);
  g_assert_no_error (error);
  g_assert_true (dl_recorder_finish (dl_sd_model_get_recorder (m), &error));
  if (embedded)
    *embedded = dl_test_download (hidden->pdata[0]);
  return dl_test_download (ctx);
}

static void
assert_same_bits (const char *what, const float *a, const float *b, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (memcmp (&a[i], &b[i], sizeof (float)) != 0)
      g_error ("%s: element %" G_GSIZE_FORMAT " differs: %.9g vs %.9g", what, i, a[i], b[i]);
}

static char *
scratch_dir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("dreamloom-prompt-emb-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static DlPromptEmbeddings *
load_ok (DlClipTokenizer *tok, DlSdModel *m, const char *path)
{
  g_autoptr (GError) error = NULL;
  const char *paths[] = { path, NULL };
  DlPromptEmbeddings *pe = dl_prompt_embeddings_load (tok, dl_sd_model_get_params (m), paths, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pe);
  return pe;
}

/* (1) "mydog" with the row of "dog" samples as "dog".  Bit for bit: the lookup
 * writes table[id] + pos[t] for the vocabulary and, for an added id, pos[t]
 * (its row in the big table reads as zero) then adds the added row in f32:
 * pos + row, the same single f32 addition.  (With f16 activations the first
 * sum is rounded to f16 before the row is added, so --fp16 may differ in the
 * last bit.)  Every other position and the negative prompt are the same ids. */
static void
test_same_as_word (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ();
  g_autoptr (DlClipTokenizer) tok = load_tokenizer ();
  int64_t vocab;
  int width;
  g_autofree float *table = token_table (m, &vocab, &width);
  gint32 dog = word_id (tok, "dog");

  gint32 ids_word[77], ids_emb[77];
  encode (tok, "a photo of dog", ids_word);
  g_autofree float *want = sample (m, tok, "a photo of dog");

  g_autofree char *dir = scratch_dir ();
  g_autofree char *path = g_build_filename (dir, "mydog.pt", NULL);
  g_assert_true (
    dl_embedding_write_a1111 (path, "mydog", table + (gsize)dog * width, 1, width, 100, NULL, NULL, &error));
  g_assert_no_error (error);
  g_autoptr (DlPromptEmbeddings) pe = load_ok (tok, m, path);
  g_assert_cmpuint (dl_prompt_embeddings_get_n (pe), ==, 1);
  g_assert_cmpstr (dl_prompt_embeddings_get_name (pe, 0), ==, "mydog");
  g_assert_cmpint (dl_prompt_embeddings_get_first_id (pe, 0), ==, vocab);
  guint hits = 0;
  g_autofree char *text = dl_prompt_embeddings_rewrite (pe, "a photo of mydog", &hits);
  g_assert_cmpuint (hits, ==, 1);
  encode (tok, text, ids_emb);
  /* the same ids but the one added token in place of "dog" */
  for (int i = 0; i < 77; i++)
    g_assert_cmpint (ids_emb[i], ==, i == 4 ? vocab : ids_word[i]);
  g_assert_cmpint (ids_word[4], ==, dog);

  g_autofree float *got = sample (m, tok, text);
  assert_same_bits ("latents of “mydog” against “dog”", got, want, LATENTS);
  /* and "mydog" without the embedding is something else */
  g_autofree float *plain = sample (m, tok, "a photo of mydog");
  g_assert_true (memcmp (plain, want, sizeof (float) * LATENTS) != 0);
  dl_test_remove_tree (dir);
}

/* (2) two vectors take two positions */
static void
test_two_vectors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ();
  DlParams *params = dl_sd_model_get_params (m);
  int64_t vocab;
  int C;
  g_autofree float *table = token_table (m, &vocab, &C);
  g_autofree float *pos_table = dl_test_download (dl_params_lookup (params, POS_TABLE));

  /* random vectors, named like a word of the vocabulary: the embedding wins */
  {
    g_autoptr (DlClipTokenizer) tok = load_tokenizer ();
    g_autofree float *v = dl_test_random (2 * C, 11, -1, 1);
    g_autoptr (DlEmbedding) e = make_embedding ("dog", 2, C, v);
    g_autoptr (DlPromptEmbeddings) pe = dl_prompt_embeddings_new (tok, params, &e, 1, &error);
    g_assert_no_error (error);
    g_autofree char *text = dl_prompt_embeddings_rewrite (pe, "a Dog on grass", NULL);
    g_assert_cmpstr (text, ==, "a \u27E8dog#0\u27E9 \u27E8dog#1\u27E9 on grass");
    gint32 ids[77];
    encode (tok, text, ids);
    gint32 want_ids[7] = { dl_clip_tokenizer_get_bos (tok),
                           word_id (tok, "a"),
                           (gint32)vocab,
                           (gint32)vocab + 1,
                           word_id (tok, "on"),
                           word_id (tok, "grass"),
                           dl_clip_tokenizer_get_eos (tok) };
    g_assert_cmpmem (ids, sizeof want_ids, want_ids, sizeof want_ids);
    for (int i = 7; i < 77; i++)
      g_assert_cmpint (ids[i], ==, dl_clip_tokenizer_get_pad (tok));

    /* the rows the encoder's first layer sees: token row + position row, with
     * the two vectors at positions 2 and 3 */
    g_autofree float *embedded = NULL;
    g_autofree float *ctx = encode_text (m, ids, &embedded);
    g_autofree float *manual = g_new (float, 77 * C);
    for (int t = 0; t < 77; t++)
      for (int c = 0; c < C; c++)
        {
          float row = ids[t] >= vocab ? v[(ids[t] - vocab) * C + c] : table[(gsize)ids[t] * C + c];
          manual[t * C + c] = row + pos_table[t * C + c];
        }
    dl_test_assert_close ("embedding layer", embedded, manual, 77 * C, 1e-6, 0);
    dl_params_set_added_tokens (params, NULL, 0);
  }

  /* the rows of "red" and "car" as one 2-vector embedding: the conditioning of
   * "a dog on grass" with it is that of "a red car on grass" */
  {
    g_autoptr (DlClipTokenizer) tok = load_tokenizer ();
    gint32 ids_words[77], ids_emb[77];
    encode (tok, "a red car on grass", ids_words);
    g_autofree float *want = encode_text (m, ids_words, NULL);
    float rows[2 * 512];
    g_assert_cmpint (C, <=, 512);
    memcpy (rows, table + (gsize)word_id (tok, "red") * C, sizeof (float) * C);
    memcpy (rows + C, table + (gsize)word_id (tok, "car") * C, sizeof (float) * C);
    g_autoptr (DlEmbedding) e = make_embedding ("dog", 2, C, rows);
    g_autoptr (DlPromptEmbeddings) pe = dl_prompt_embeddings_new (tok, params, &e, 1, &error);
    g_assert_no_error (error);
    g_autofree char *text = dl_prompt_embeddings_rewrite (pe, "a dog on grass", NULL);
    encode (tok, text, ids_emb);
    g_autofree float *got = encode_text (m, ids_emb, NULL);
    assert_same_bits ("conditioning of the red-car embedding", got, want, 77 * C);
    dl_params_set_added_tokens (params, NULL, 0);
  }
}

/* (3) the three file formats of the same vectors */
static void
test_formats (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ();
  DlParams *params = dl_sd_model_get_params (m);
  int C = (int)dl_params_lookup (params, TOKEN_TABLE)->shape[1];
  g_autofree float *v = dl_test_random (2 * C, 5, -0.05f, 0.05f);
  g_autofree char *dir = scratch_dir ();
  const char *sub[] = { "a1111", "kohya", "diffusers" };
  char *paths[3] = { NULL };
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *d = g_build_filename (dir, sub[i], NULL);
      g_assert_cmpint (g_mkdir (d, 0700), ==, 0);
      paths[i] = g_build_filename (d, i == 0 ? "mystyle.pt" : "mystyle.safetensors", NULL);
    }
  g_assert_true (dl_embedding_write_a1111 (paths[0], "mystyle", v, 2, C, 1000, NULL, NULL, &error));
  g_assert_true (dl_embedding_write_emb_params (paths[1], v, 2, C, NULL, DL_ST_F32, &error));
  g_assert_true (dl_embedding_write_diffusers (paths[2], "<mystyle>", v, 2, C, &error));
  g_assert_no_error (error);

  g_autoptr (DlClipTokenizer) plain_tok = load_tokenizer ();
  g_autofree float *plain = sample (m, plain_tok, "a mystyle photo");
  g_autofree float *first = NULL;
  for (int i = 0; i < 3; i++)
    {
      g_autoptr (DlClipTokenizer) tok = load_tokenizer ();
      g_autoptr (DlPromptEmbeddings) pe = load_ok (tok, m, paths[i]);
      g_assert_cmpstr (dl_prompt_embeddings_get_name (pe, 0), ==, "mystyle");
      g_assert_cmpint (dl_prompt_embeddings_get_n_vectors (pe, 0), ==, 2);
      g_autofree char *text = dl_prompt_embeddings_rewrite (pe, "a mystyle photo", NULL);
      float *got = sample (m, tok, text);
      if (!first)
        {
          first = got;
          g_assert_true (memcmp (first, plain, sizeof (float) * LATENTS) != 0);
        }
      else
        {
          assert_same_bits (sub[i], got, first, LATENTS);
          g_free (got);
        }
      dl_params_set_added_tokens (params, NULL, 0);
    }
  for (int i = 0; i < 3; i++)
    g_free (paths[i]);
  dl_test_remove_tree (dir);
}

/* name matching, on in-memory embeddings */
static void
test_matching (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model ();
  g_autoptr (DlClipTokenizer) tok = load_tokenizer ();
  DlParams *params = dl_sd_model_get_params (m);
  int64_t vocab = dl_params_lookup (params, TOKEN_TABLE)->shape[0];
  int C = (int)dl_params_lookup (params, TOKEN_TABLE)->shape[1];
  g_autofree float *v = dl_test_random (5 * C, 3, -1, 1);
  DlEmbedding *e[] = {
    make_embedding ("cat", 1, C, v),
    make_embedding ("my style", 2, C, v + C),
    make_embedding ("style", 1, C, v + 3 * C),
    make_embedding ("Café", 1, C, v + 4 * C),
  };
  g_autoptr (DlPromptEmbeddings) pe = dl_prompt_embeddings_new (tok, params, e, G_N_ELEMENTS (e), &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (e); i++)
    dl_embedding_free (e[i]);
  /* ids in the order given, n per embedding */
  g_assert_cmpint (dl_prompt_embeddings_get_first_id (pe, 0), ==, vocab);
  g_assert_cmpint (dl_prompt_embeddings_get_first_id (pe, 1), ==, vocab + 1);
  g_assert_cmpint (dl_prompt_embeddings_get_first_id (pe, 2), ==, vocab + 3);
  g_assert_cmpint (dl_prompt_embeddings_get_first_id (pe, 3), ==, vocab + 4);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (tok), ==, vocab + 5);
  int64_t base = -1;
  DlTensor *added = dl_params_get_added_tokens (params, &base);
  g_assert_nonnull (added);
  g_assert_cmpint (base, ==, vocab);
  g_assert_cmpint (added->shape[0], ==, 5);
  g_autofree float *rows = dl_test_download (added);
  assert_same_bits ("added table", rows, v, 5 * C);

#define CAT "\u27E8cat#0\u27E9"
#define MYSTYLE "\u27E8my style#0\u27E9 \u27E8my style#1\u27E9"
#define STYLE "\u27E8style#0\u27E9"
#define CAFE "\u27E8Café#0\u27E9"
  static const struct
  {
    const char *prompt, *want;
    guint hits[4];
  } cases[] = {
    { "a cat", "a " CAT, { 1, 0, 0, 0 } },
    { "A CAT, Cat. cAt", "A " CAT ", " CAT ". " CAT, { 3, 0, 0, 0 } },
    { "(cat:1.2) [cat] cat!", "(" CAT ":1.2) [" CAT "] " CAT "!", { 3, 0, 0, 0 } },
    /* whole words only */
    { "catalog bobcat cats cat_2 cat2 2cat", NULL, { 0 } },
    { "cat-like", CAT "-like", { 1, 0, 0, 0 } },
    /* the longest name first; white space in a name matches any run */
    { "in my style", "in " MYSTYLE, { 0, 1, 0, 0 } },
    { "my  \tStyle, style", MYSTYLE ", " STYLE, { 0, 1, 1, 0 } },
    { "mystyle my stylex", NULL, { 0 } },
    /* case-insensitive beyond ASCII */
    { "CAFÉ au lait, cafés", CAFE " au lait, cafés", { 0, 0, 0, 1 } },
    { "", NULL, { 0 } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      guint hits[4] = { 0 };
      g_autofree char *got = dl_prompt_embeddings_rewrite (pe, cases[i].prompt, hits);
      g_assert_cmpstr (got, ==, cases[i].want ? cases[i].want : cases[i].prompt);
      g_assert_cmpmem (hits, sizeof hits, cases[i].hits, sizeof hits);
    }

  /* the rewritten text tokenizes to the added ids, the rest as usual */
  g_autofree char *text = dl_prompt_embeddings_rewrite (pe, "my style cat, catalog", NULL);
  g_autoptr (GArray) ids = dl_clip_tokenizer_encode (tok, text, &error);
  g_assert_no_error (error);
  g_autoptr (GArray) tail = dl_clip_tokenizer_encode (tok, ", catalog", &error);
  g_assert_cmpuint (ids->len, ==, 1 + 3 + tail->len - 1);
  g_assert_cmpint (g_array_index (ids, gint32, 1), ==, vocab + 1);
  g_assert_cmpint (g_array_index (ids, gint32, 2), ==, vocab + 2);
  g_assert_cmpint (g_array_index (ids, gint32, 3), ==, vocab);
  for (guint i = 1; i < tail->len; i++)
    g_assert_cmpint (g_array_index (ids, gint32, 3 + i), ==, g_array_index (tail, gint32, i));
  /* a prompt that is not UTF-8 is left to the tokenizer to report */
  g_autofree char *bad = dl_prompt_embeddings_rewrite (pe, "cat \xff", NULL);
  g_assert_cmpstr (bad, ==, "cat \xff");
}

static void
assert_unchanged (DlClipTokenizer *tok, DlParams *params, int64_t vocab)
{
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (tok), ==, vocab);
  g_assert_null (dl_params_get_added_tokens (params, NULL));
}

static void
test_errors (void)
{
  g_autoptr (DlSdModel) m = load_model ();
  g_autoptr (DlClipTokenizer) tok = load_tokenizer ();
  DlParams *params = dl_sd_model_get_params (m);
  int64_t vocab = dl_params_lookup (params, TOKEN_TABLE)->shape[0];
  int C = (int)dl_params_lookup (params, TOKEN_TABLE)->shape[1];
  g_autofree char *dir = scratch_dir ();
  g_autofree float *v = dl_test_random (768, 1, -1, 1);

  /* an SD 1 (768) embedding on this 32-wide model: the file and both widths */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *wide = g_build_filename (dir, "wide.pt", NULL);
    g_assert_true (dl_embedding_write_a1111 (wide, "wide", v, 1, 768, 10, NULL, NULL, &error));
    const char *paths[] = { wide, NULL };
    g_assert_null (dl_prompt_embeddings_load (tok, params, paths, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
    g_autofree char *both = g_strdup_printf ("768 wide but the model's text encoder takes %d", C);
    g_assert_nonnull (strstr (error->message, wide));
    g_assert_nonnull (strstr (error->message, both));
    assert_unchanged (tok, params, vocab);
  }
  /* the same through dl_prompt_embeddings_new names the embedding */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (DlEmbedding) e = make_embedding ("sd2", 1, 768, v);
    g_assert_null (dl_prompt_embeddings_new (tok, params, &e, 1, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
    g_autofree char *both =
      g_strdup_printf ("“sd2”: its vectors are 768 wide but the model's text encoder takes %d", C);
    g_assert_nonnull (strstr (error->message, both));
    assert_unchanged (tok, params, vocab);
  }
  /* a missing file, after a good one: nothing is added */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *good = g_build_filename (dir, "good.pt", NULL);
    g_autofree char *missing = g_build_filename (dir, "missing.pt", NULL);
    g_assert_true (dl_embedding_write_a1111 (good, "good", v, 1, C, 10, NULL, NULL, &error));
    const char *paths[] = { good, missing, NULL };
    g_assert_null (dl_prompt_embeddings_load (tok, params, paths, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_IO);
    g_assert_nonnull (strstr (error->message, missing));
    assert_unchanged (tok, params, vocab);
  }
  /* two files of one name (ignoring case) */
  {
    g_autoptr (GError) error = NULL;
    g_autofree char *a = g_build_filename (dir, "Twin.pt", NULL);
    g_autofree char *sub = g_build_filename (dir, "b", NULL);
    g_assert_cmpint (g_mkdir (sub, 0700), ==, 0);
    g_autofree char *b = g_build_filename (sub, "twin.safetensors", NULL);
    g_assert_true (dl_embedding_write_a1111 (a, "x", v, 1, C, 10, NULL, NULL, &error));
    g_assert_true (dl_embedding_write_emb_params (b, v, 1, C, NULL, DL_ST_F32, &error));
    const char *paths[] = { a, b, NULL };
    g_assert_null (dl_prompt_embeddings_load (tok, params, paths, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, a));
    g_assert_nonnull (strstr (error->message, b));
    assert_unchanged (tok, params, vocab);
  }
  /* names that cannot be matched */
  const char *bad_names[] = { "", "  ", "x\xff" };
  for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (DlEmbedding) e = make_embedding (bad_names[i], 1, C, v);
      g_assert_null (dl_prompt_embeddings_new (tok, params, &e, 1, &error));
      g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
      assert_unchanged (tok, params, vocab);
    }
  /* added tokens already there: in the tokenizer, or in the parameters */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (DlEmbedding) e = make_embedding ("ok", 1, C, v);
    g_autoptr (DlPromptEmbeddings) pe = dl_prompt_embeddings_new (tok, params, &e, 1, &error);
    g_assert_no_error (error);
    g_autoptr (DlClipTokenizer) fresh = load_tokenizer ();
    g_assert_null (dl_prompt_embeddings_new (fresh, params, &e, 1, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
    g_clear_error (&error);
    dl_params_set_added_tokens (params, NULL, 0);
    g_assert_null (dl_prompt_embeddings_new (tok, params, &e, 1, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  }
  dl_test_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  model_dir = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!model_dir)
    return dl_test_skip_all ("golden tiny model (../shared/golden/tiny-sd15-diffusers) not found");
  dl_test_add ("/prompt-embeddings/matching", test_matching);
  dl_test_add ("/prompt-embeddings/errors", test_errors);
  dl_test_add ("/prompt-embeddings/two-vectors", test_two_vectors);
  dl_test_add ("/prompt-embeddings/same-as-word", test_same_as_word);
  dl_test_add ("/prompt-embeddings/formats", test_formats);
  int rc = dl_test_run ();
  g_free (model_dir);
  return rc;
}
