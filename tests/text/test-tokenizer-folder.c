/* test-tokenizer-folder.c: the tokenizer/ folder Dreamloom writes into a
 * diffusers model that has none of its own is, byte for byte, the one
 * transformers' CLIPTokenizer.save_pretrained wrote for the golden tiny model
 * (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json):
 * from that folder read back, and from openai's bpe_simple_vocab file.  Added
 * tokens (a Textual Inversion placeholder) stay out.  SDXL: its tokenizer/ is
 * SD 1.x's, its tokenizer_2/ (pad_token "!") is what a tokenizer with
 * DL_CLIP_PAD_SDXL_DIFFUSERS or DL_CLIP_PAD_ZERO writes.  Reads
 * ../shared/data/clip and ../shared/golden at run time; skipped without them. */
#include "dl-config.h"

#include <string.h>

#include "dl-test-util.h"
#include "train/dl-tokenizer-folder.h"

static const char *const files[] = { "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json" };

static void
assert_same_files (const char *dir, const char *golden)
{
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *a = g_build_filename (dir, files[i], NULL);
      g_autofree char *b = g_build_filename (golden, files[i], NULL);
      g_autofree char *ta = NULL, *tb = NULL;
      gsize la = 0, lb = 0;
      g_assert_true (g_file_get_contents (a, &ta, &la, NULL));
      g_assert_true (g_file_get_contents (b, &tb, &lb, NULL));
      if (la != lb || memcmp (ta, tb, la) != 0)
        {
          gsize k = 0;
          while (k < la && k < lb && ta[k] == tb[k])
            k++;
          g_error ("%s differs from transformers' at byte %" G_GSIZE_FORMAT " (%" G_GSIZE_FORMAT " vs %" G_GSIZE_FORMAT
                   " bytes): “%.40s” vs “%.40s”",
                   files[i], k, la, lb, ta + MIN (k, la), tb + MIN (k, lb));
        }
    }
}

static void
test_from (gconstpointer data)
{
  const char *which = data;
  g_autofree char *golden = dl_test_golden_path ("tiny-sd15-diffusers/tokenizer");
  const char *clip_dir = g_getenv ("DREAMLOOM_TEST_CLIP_DIR");
  g_autofree char *bpe =
    g_build_filename (clip_dir ? clip_dir : DL_TEST_CLIP_DIR, "bpe_simple_vocab_16e6.txt.gz", NULL);
  gboolean from_bpe = g_str_equal (which, "bpe");
  if (!golden || (from_bpe && !g_file_test (bpe, G_FILE_TEST_IS_REGULAR)))
    {
      g_test_skip ("the golden tokenizer folder or the CLIP vocabulary is absent");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_new_from_path (from_bpe ? bpe : golden, &error);
  g_assert_no_error (error);
  /* a placeholder added for a Textual Inversion run is not part of the vocabulary */
  g_assert_cmpint (dl_clip_tokenizer_add_token (tok, "<my-new-token>", &error), ==, 49408);
  g_assert_no_error (error);
  g_autofree char *dir = dl_tokenizer_folder_make_temporary (tok, &error);
  g_assert_no_error (error);
  assert_same_files (dir, golden);
  /* and it reads back as the same tokenizer */
  g_autoptr (DlClipTokenizer) back = dl_clip_tokenizer_new_from_path (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_clip_tokenizer_get_n_tokens (back), ==, 49408);
  g_autoptr (GArray) a = dl_clip_tokenizer_encode (tok, "a photo of sks dog, Ünïcode 😀", &error);
  g_autoptr (GArray) b = dl_clip_tokenizer_encode (back, "a photo of sks dog, Ünïcode 😀", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (a->len, ==, b->len);
  g_assert_cmpmem (a->data, a->len * sizeof (gint32), b->data, b->len * sizeof (gint32));
  dl_test_remove_tree (dir);
}

/* SDXL's two folders, from each vocabulary source (openai's file, SD 1.x's
 * golden folder, SDXL's tokenizer_2/ folder): the first tokenizer as it loads,
 * the second in diffusers' and in kohya's style (both write the published
 * tokenizer_2/), and the second as a copy of the first. */
static void
test_sdxl (gconstpointer data)
{
  const char *which = data;
  g_autofree char *golden = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers/tokenizer");
  g_autofree char *golden_2 = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers/tokenizer_2");
  g_autofree char *sd15 = dl_test_golden_path ("tiny-sd15-diffusers/tokenizer");
  const char *clip_dir = g_getenv ("DREAMLOOM_TEST_CLIP_DIR");
  g_autofree char *bpe =
    g_build_filename (clip_dir ? clip_dir : DL_TEST_CLIP_DIR, "bpe_simple_vocab_16e6.txt.gz", NULL);
  const char *source = g_str_equal (which, "bpe") ? bpe : g_str_equal (which, "sd15") ? sd15 : golden_2;
  if (!golden || !golden_2 || !source || !g_file_test (source, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("the golden SDXL tokenizer folders or the CLIP vocabulary are absent");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_new_from_path (source, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_clip_tokenizer_add_token (tok, "<my-new-token>", &error), ==, 49408);
  g_autoptr (DlClipTokenizer) tok2 = dl_clip_tokenizer_copy (tok);
  dl_clip_tokenizer_set_pad_style (tok2, DL_CLIP_PAD_SDXL_DIFFUSERS);
  g_autoptr (DlClipTokenizer) kohya = dl_clip_tokenizer_copy (tok);
  dl_clip_tokenizer_set_pad_style (kohya, DL_CLIP_PAD_ZERO);
  struct
  {
    DlClipTokenizer *tok;
    const char *golden;
  } runs[] = { { tok, golden }, { tok2, golden_2 }, { kohya, golden_2 } };
  for (guint r = 0; r < G_N_ELEMENTS (runs); r++)
    {
      g_autofree char *dir = dl_tokenizer_folder_make_temporary (runs[r].tok, &error);
      g_assert_no_error (error);
      assert_same_files (dir, runs[r].golden);
      dl_test_remove_tree (dir);
    }
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add_data ("/text/tokenizer-folder/from-golden-folder", "folder", test_from);
  dl_test_add_data ("/text/tokenizer-folder/from-bpe-file", "bpe", test_from);
  dl_test_add_data ("/text/tokenizer-folder/sdxl-from-bpe-file", "bpe", test_sdxl);
  dl_test_add_data ("/text/tokenizer-folder/sdxl-from-sd15-folder", "sd15", test_sdxl);
  dl_test_add_data ("/text/tokenizer-folder/sdxl-from-tokenizer-2-folder", "tokenizer_2", test_sdxl);
  return dl_test_run ();
}
