/* test-sdxl-embeddings.c: Textual Inversion embeddings on SDXL
 * (nn/dl-prompt-embeddings.h, nn/dl-embedding-file.h), on the golden tiny SDXL
 * model (skipped without it).
 *
 *  - an SDXL embedding ({clip_l, clip_g}, as kohya sd-scripts
 *    sdxl_train_textual_inversion.py writes it) whose rows are the token rows
 *    of "dog" in each text encoder gives "a photo of <word>" the conditioning
 *    of "a photo of dog": the context of both encoders and text_encoder_2's
 *    pooled embedding (pooled at the end token, not at the added token's
 *    higher id), with either padding of the second tokenizer;
 *  - the file round-trips as .safetensors and as a torch.save .pt; the
 *    one-encoder reader still takes clip_l (or clip_g) from it;
 *  - one clear error each way: an SD 1.x embedding on SDXL, an SDXL embedding
 *    on SD 1.x (file and in memory), an SDXL embedding of other widths; bad
 *    input changes nothing. */
#include "dl-config.h"

#include "dl-test-util.h"
#include "nn/dl-prompt-embeddings.h"
#include "nn/dl-sd-model.h"
#include "nn/dl-sdxl-conditioning.h"
#include "nn/dl-tape.h"

#include <math.h>
#include <string.h>

#define TOKEN_TABLE "text_encoder.text_model.embeddings.token_embedding.weight"
#define TOKEN_TABLE_2 "text_encoder_2.text_model.embeddings.token_embedding.weight"

static char *sdxl_dir;

static DlSdModel *
load_model (const char *dir)
{
  g_autoptr (GError) error = NULL;
  DlSdModel *m = dl_sd_model_load (dl_test_device (), dir, NULL, &error);
  g_assert_no_error (error);
  return m;
}

static DlClipTokenizer *
load_tokenizer (const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tdir = g_build_filename (dir, "tokenizer", NULL);
  DlClipTokenizer *tok = dl_clip_tokenizer_new_from_path (tdir, &error);
  g_assert_no_error (error);
  return tok;
}

static char *
scratch_dir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("dreamloom-sdxl-emb-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

/* Row `id` of the token table `name` (its width in *width). */
static float *
token_row (DlSdModel *m, const char *name, gint32 id, int *width)
{
  DlTensor *t = dl_params_lookup (dl_sd_model_get_params (m), name);
  g_assert_nonnull (t);
  g_assert_cmpint (t->ndim, ==, 2);
  *width = (int)t->shape[1];
  g_autofree float *all = dl_test_download (t);
  return g_memdup2 (all + (gsize)id * *width, sizeof (float) * *width);
}

/* SDXL's conditioning of `prompt`: context [77, D1 + D2] and pooled [P].  The
 * ids as the sampler makes them (dl_prompt_ids_encode: tokenizer_2 a copy of
 * `tok` with diffusers' padding) or, with `trainer_pad`, as the trainer does
 * (a copy padding with 0, kohya's and OpenCLIP's). */
static void
condition (DlSdModel *m, DlClipTokenizer *tok, const char *prompt, gboolean trainer_pad, float **context, gsize *n_ctx,
           float **pooled, gsize *n_pool)
{
  g_autoptr (GError) error = NULL;
  const DlModelConfig *cfg = dl_sd_model_get_config (m);
  g_autofree gint32 *ids2 = g_new (gint32, 77);
  if (trainer_pad)
    {
      g_autoptr (DlClipTokenizer) tok2 = dl_clip_tokenizer_copy (tok);
      dl_clip_tokenizer_set_pad_style (tok2, DL_CLIP_PAD_ZERO);
      g_assert_true (dl_clip_tokenizer_encode_77 (tok2, prompt, ids2, &error));
    }
  else
    {
      DlPromptIds pi;
      g_assert_true (dl_prompt_ids_encode (&pi, m, tok, prompt, NULL, 1, &error));
      memcpy (ids2, pi.prompt_2, sizeof (gint32) * 77);
      dl_prompt_ids_clear (&pi);
    }
  g_assert_no_error (error);
  gint32 ids[77];
  g_assert_true (dl_clip_tokenizer_encode_77 (tok, prompt, ids, &error));
  g_assert_no_error (error);
  int64_t shape[2] = { 1, 77 };
  g_autoptr (DlTensor) t1 = dl_tensor_new (dl_test_device (), "ids", DL_DTYPE_I32, 2, shape, &error);
  g_autoptr (DlTensor) t2 = dl_tensor_new (dl_test_device (), "ids2", DL_DTYPE_I32, 2, shape, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tensor_upload (t1, ids, DL_DTYPE_I32, &error));
  g_assert_true (dl_tensor_upload (t2, ids2, DL_DTYPE_I32, &error));
  g_autoptr (DlTape) tape = dl_tape_new (dl_sd_model_get_recorder (m), dl_sd_model_get_arena (m));
  dl_tape_set_enabled (tape, FALSE);
  g_autoptr (DlTensor) ctx = NULL, pool = NULL;
  g_assert_true (
    dl_sdxl_encode_prompt (dl_sd_model_get_params (m), cfg, tape, t1, t2, ids2, NULL, &ctx, &pool, &error));
  g_assert_no_error (error);
  g_assert_true (dl_recorder_finish (dl_sd_model_get_recorder (m), &error));
  *context = dl_test_download (ctx);
  *n_ctx = (gsize)dl_tensor_numel (ctx);
  *pooled = dl_test_download (pool);
  *n_pool = (gsize)dl_tensor_numel (pool);
}

static double
max_diff (const float *a, const float *b, gsize n)
{
  double d = 0;
  for (gsize i = 0; i < n; i++)
    d = MAX (d, fabs ((double)a[i] - b[i]));
  return d;
}

/* (1) "pup" with the rows of "dog" in each encoder conditions as "dog" */
static void
test_same_as_word (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) m = load_model (sdxl_dir);
  g_autoptr (DlClipTokenizer) tok = load_tokenizer (sdxl_dir);
  DlParams *params = dl_sd_model_get_params (m);
  g_autofree char *dog_text = g_strdup ("dog</w>");
  gint32 dog = dl_clip_tokenizer_lookup (tok, dog_text);
  g_assert_cmpint (dog, >=, 0);
  int w1 = 0, w2 = 0;
  g_autofree float *row1 = token_row (m, TOKEN_TABLE, dog, &w1);
  g_autofree float *row2 = token_row (m, TOKEN_TABLE_2, dog, &w2);
  int64_t vocab = dl_params_lookup (params, TOKEN_TABLE)->shape[0];

  /* the word's conditioning, before anything is added */
  const gboolean trainer_pad[] = { FALSE, TRUE };
  float *want_ctx[2], *want_pool[2];
  gsize n_ctx = 0, n_pool = 0;
  for (guint k = 0; k < 2; k++)
    condition (m, tok, "a photo of dog", trainer_pad[k], &want_ctx[k], &n_ctx, &want_pool[k], &n_pool);

  g_autofree char *dir = scratch_dir ();
  g_autofree char *path = g_build_filename (dir, "pup.safetensors", NULL);
  g_assert_true (dl_embedding_write_sdxl (path, row1, w1, row2, w2, 1, NULL, DL_ST_F32, &error));
  g_assert_no_error (error);
  const char *paths[] = { path, NULL };
  g_autoptr (DlPromptEmbeddings) pe = dl_prompt_embeddings_load (tok, params, paths, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_prompt_embeddings_get_first_id (pe, 0), ==, vocab);
  int64_t base = -1;
  g_assert_nonnull (dl_params_get_added_tokens_for (params, "text_encoder", &base));
  g_assert_cmpint (base, ==, vocab);
  DlTensor *added2 = dl_params_get_added_tokens_for (params, "text_encoder_2", &base);
  g_assert_nonnull (added2);
  g_assert_cmpint (base, ==, vocab);
  g_assert_cmpint (added2->shape[1], ==, w2);
  g_autofree char *text = dl_prompt_embeddings_rewrite (pe, "a photo of pup", NULL);

  for (guint k = 0; k < 2; k++)
    {
      float *ctx = NULL, *pool = NULL;
      gsize nc = 0, np = 0;
      condition (m, tok, text, trainer_pad[k], &ctx, &nc, &pool, &np);
      g_assert_cmpuint (nc, ==, n_ctx);
      g_assert_cmpuint (np, ==, n_pool);
      double dc = max_diff (ctx, want_ctx[k], nc), dp = max_diff (pool, want_pool[k], np);
      g_test_message ("tokenizer_2 %s: “a photo of pup” against “a photo of dog”: context max diff %.3g, pooled %.3g",
                      trainer_pad[k] ? "kohya/OpenCLIP" : "diffusers", dc, dp);
      g_assert_cmpfloat (dc, <=, 1e-6);
      g_assert_cmpfloat (dp, <=, 1e-6);
      g_free (ctx);
      g_free (pool);
      g_free (want_ctx[k]);
      g_free (want_pool[k]);
    }
  dl_params_clear_added_tokens (params);
  g_assert_null (dl_params_get_added_tokens_for (params, "text_encoder_2", NULL));
  dl_test_remove_tree (dir);
}

/* (2) the file forms: .safetensors and torch.save .pt, as the SDXL reader and
 * the one-encoder reader see them */
static void
test_files (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = scratch_dir ();
  g_autofree float *l = dl_test_random (2 * 12, 3, -1, 1);
  g_autofree float *g = dl_test_random (2 * 16, 4, -1, 1);
  const char *names[] = { "two.safetensors", "two.pt" };
  for (guint k = 0; k < G_N_ELEMENTS (names); k++)
    {
      g_autofree char *path = g_build_filename (dir, names[k], NULL);
      g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
      g_hash_table_insert (meta, "modelspec.architecture", "stable-diffusion-xl-v1-base/textual-inversion");
      g_assert_true (dl_embedding_write_sdxl (path, l, 12, g, 16, 2, meta, DL_ST_F32, &error));
      g_assert_no_error (error);
      g_autoptr (DlEmbedding) e = dl_embedding_read_for_model (path, 12, 16, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (e->name, ==, "two");
      g_assert_cmpint (e->n_vectors, ==, 2);
      g_assert_cmpint (e->dim, ==, 12);
      g_assert_cmpint (e->dim_2, ==, 16);
      g_assert_true (memcmp (e->vectors, l, sizeof (float) * 24) == 0);
      g_assert_true (memcmp (e->vectors_2, g, sizeof (float) * 32) == 0);
      /* clip_l of any width */
      g_autoptr (DlEmbedding) any = dl_embedding_read_for_model (path, 0, 16, &error);
      g_assert_no_error (error);
      g_assert_cmpint (any->dim, ==, 12);
      /* the one-encoder reader: ComfyUI's embed_key by width */
      g_autoptr (DlEmbedding) one = dl_embedding_read (path, 12, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (one->key, ==, "clip_l");
      g_assert_null (one->vectors_2);
      g_autoptr (DlEmbedding) big = dl_embedding_read (path, 1280, &error);
      g_assert_null (big);
      g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
      g_clear_error (&error);
    }
  {
    /* the safetensors form: kohya's keys, the metadata */
    g_autofree char *path = g_build_filename (dir, "two.safetensors", NULL);
    g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (dl_safetensors_get_n_tensors (st), ==, 2);
    const DlStTensor *tl = dl_safetensors_find (st, "clip_l"), *tg = dl_safetensors_find (st, "clip_g");
    g_assert_nonnull (tl);
    g_assert_nonnull (tg);
    g_assert_cmpint (tl->shape[0], ==, 2);
    g_assert_cmpint (tl->shape[1], ==, 12);
    g_assert_cmpint (tg->shape[1], ==, 16);
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.architecture"), ==,
                     "stable-diffusion-xl-v1-base/textual-inversion");
  }
  /* a pair whose counts differ */
  {
    g_autofree char *path = g_build_filename (dir, "uneven.safetensors", NULL);
    g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
    g_assert_true (dl_safetensors_writer_add_f32 (w, "clip_l", DL_ST_F32, 2, (const int64_t[]){ 2, 12 }, l, &error));
    g_assert_true (dl_safetensors_writer_add_f32 (w, "clip_g", DL_ST_F32, 2, (const int64_t[]){ 1, 16 }, g, &error));
    g_assert_true (dl_safetensors_writer_write (w, path, &error));
    g_assert_null (dl_embedding_read_for_model (path, 12, 16, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
    g_test_message ("uneven pair: %s", error->message);
    g_assert_nonnull (strstr (error->message, "2 clip_l vectors but 1 clip_g"));
  }
  dl_test_remove_tree (dir);
}

static void
assert_unchanged (DlClipTokenizer *tok, DlParams *params, int64_t vocab)
{
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (tok), ==, vocab);
  g_assert_null (dl_params_get_added_tokens (params, NULL));
  g_assert_null (dl_params_get_added_tokens_for (params, "text_encoder_2", NULL));
}

static void
expect_load_error (DlClipTokenizer *tok, DlParams *params, const char *path, const char *part)
{
  g_autoptr (GError) error = NULL;
  const char *paths[] = { path, NULL };
  g_assert_null (dl_prompt_embeddings_load (tok, params, paths, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_test_message ("%s", error->message);
  g_assert_null (strchr (error->message, '\n'));
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, part));
}

/* (3) the other family, both ways, and other widths */
static void
test_mismatch (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSdModel) xl = load_model (sdxl_dir);
  g_autoptr (DlClipTokenizer) xl_tok = load_tokenizer (sdxl_dir);
  DlParams *xp = dl_sd_model_get_params (xl);
  int64_t vocab = dl_params_lookup (xp, TOKEN_TABLE)->shape[0];
  g_autofree char *dir = scratch_dir ();
  g_autofree float *v = dl_test_random (1280, 7, -1, 1);

  /* an SD 1.x embedding (one 12-wide vector: text_encoder's width) on SDXL */
  g_autofree char *sd1 = g_build_filename (dir, "sd1.safetensors", NULL);
  g_assert_true (dl_embedding_write_emb_params (sd1, v, 1, 12, NULL, DL_ST_F32, &error));
  g_assert_no_error (error);
  expect_load_error (xl_tok, xp, sd1,
                     "its vectors are 12 wide, for one text encoder (an SD 1.x or 2.x embedding), "
                     "but this SDXL model has two text encoders, 12 and 16 wide");
  assert_unchanged (xl_tok, xp, vocab);
  g_autofree char *pt = g_build_filename (dir, "sd1.pt", NULL);
  g_assert_true (dl_embedding_write_a1111 (pt, "sd1", v, 1, 768, 5, NULL, NULL, &error));
  expect_load_error (xl_tok, xp, pt, "its vectors are 768 wide, for one text encoder");
  assert_unchanged (xl_tok, xp, vocab);
  {
    g_autoptr (DlEmbedding) e = g_new0 (DlEmbedding, 1);
    e->name = g_strdup ("mem");
    e->n_vectors = 1;
    e->dim = 12;
    e->vectors = g_memdup2 (v, sizeof (float) * 12);
    g_assert_null (dl_prompt_embeddings_new (xl_tok, xp, &e, 1, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "“mem”: its vectors are 12 wide, for one text encoder"));
    g_clear_error (&error);
    assert_unchanged (xl_tok, xp, vocab);
  }

  /* a full-size SDXL embedding (768 / 1280) on the tiny SDXL */
  g_autofree char *big = g_build_filename (dir, "big.safetensors", NULL);
  g_assert_true (dl_embedding_write_sdxl (big, v, 768, v, 1280, 1, NULL, DL_ST_F16, &error));
  expect_load_error (xl_tok, xp, big,
                     "its vectors are 768 (clip_l) and 1280 (clip_g) wide but the model's text encoders take 12 "
                     "and 16");
  assert_unchanged (xl_tok, xp, vocab);

  /* an SDXL embedding on SD 1.x */
  g_autofree char *sd1_dir = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!sd1_dir)
    {
      g_test_message ("no golden tiny SD 1.5 model: the SDXL-on-SD1 case is not run");
      dl_test_remove_tree (dir);
      return;
    }
  g_autoptr (DlSdModel) m1 = load_model (sd1_dir);
  g_autoptr (DlClipTokenizer) tok1 = load_tokenizer (sd1_dir);
  DlParams *p1 = dl_sd_model_get_params (m1);
  int64_t vocab1 = dl_params_lookup (p1, TOKEN_TABLE)->shape[0];
  int C1 = (int)dl_params_lookup (p1, TOKEN_TABLE)->shape[1];
  g_autofree char *xl_file = g_build_filename (dir, "xl.safetensors", NULL);
  /* even with clip_l as wide as the SD 1.x encoder */
  g_assert_true (dl_embedding_write_sdxl (xl_file, v, C1, v, 16, 1, NULL, DL_ST_F32, &error));
  g_autofree char *part = g_strdup_printf ("an SDXL embedding (clip_l %d and clip_g 16 wide, one set per text "
                                           "encoder) but the model has one text encoder, %d wide",
                                           C1, C1);
  expect_load_error (tok1, p1, xl_file, part);
  assert_unchanged (tok1, p1, vocab1);
  g_autofree char *xl_pt = g_build_filename (dir, "xl.pt", NULL);
  g_assert_true (dl_embedding_write_sdxl (xl_pt, v, 768, v, 1280, 1, NULL, DL_ST_F32, &error));
  expect_load_error (tok1, p1, xl_pt, "an SDXL embedding (clip_l 768 and clip_g 1280 wide");
  assert_unchanged (tok1, p1, vocab1);
  {
    g_autoptr (DlEmbedding) e = dl_embedding_read_for_model (xl_file, C1, 16, &error);
    g_assert_no_error (error);
    g_assert_null (dl_prompt_embeddings_new (tok1, p1, &e, 1, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "“xl”: an SDXL embedding"));
    g_clear_error (&error);
    assert_unchanged (tok1, p1, vocab1);
  }
  dl_test_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  sdxl_dir = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  dl_test_add ("/sdxl-embeddings/files", test_files);
  if (sdxl_dir)
    {
      dl_test_add ("/sdxl-embeddings/same-as-word", test_same_as_word);
      dl_test_add ("/sdxl-embeddings/mismatch", test_mismatch);
    }
  int rc = dl_test_run ();
  g_free (sdxl_dir);
  return rc;
}
