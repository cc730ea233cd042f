/* test-train-export.c: a DreamBooth model exported in the other layout (what
 * the Train page's "Export as a diffusers Folder…" does, and back to one
 * file): every parameter bit-identical and stored as before, the tokenizer
 * from the run's base model, bad destinations refused with nothing left
 * behind.  The golden tiny model stands in for a run's output.  And SDXL
 * embeddings keep both encoders' vectors through an export. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "dl-error.h"
#include "dl-test-util.h"
#include "dl-train-export.h"
#include "io/dl-checkpoint.h"
#include "nn/dl-embedding-file.h"
#include "train/dl-train-settings.h"

/* Every parameter of `got` equal, bit for bit and in the same stored dtype, to
 * that of `want`. */
static void
assert_same_model (DlCheckpoint *got, DlCheckpoint *want)
{
  g_autoptr (GError) error = NULL;
  g_assert_cmpuint (dl_checkpoint_get_n_params (got), ==, dl_checkpoint_get_n_params (want));
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (got)->len, ==, 0);
  for (guint i = 0; i < dl_checkpoint_get_n_params (want); i++)
    {
      const DlCheckpointParam *w = dl_checkpoint_get_param (want, i);
      const DlCheckpointParam *g = dl_checkpoint_find (got, w->name);
      g_assert_nonnull (g);
      g_assert_cmpint (g->dtype, ==, w->dtype);
      int64_t ng = 0, nw = 0;
      g_autofree float *a = dl_checkpoint_read_f32 (got, w->name, &ng, &error);
      g_assert_no_error (error);
      g_autofree float *b = dl_checkpoint_read_f32 (want, w->name, &nw, &error);
      g_assert_no_error (error);
      g_assert_cmpint (ng, ==, nw);
      if (memcmp (a, b, (gsize)ng * sizeof (float)) != 0)
        g_error ("%s differs after the export", w->name);
    }
}

static GPtrArray *
list_dir (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (n));
  return names;
}

static void
test_dreambooth_layouts (void)
{
  g_autofree char *single = dl_test_golden_path ("tiny-sd15-ldm.safetensors");
  g_autofree char *base = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!g_file_test (single, G_FILE_TEST_EXISTS) || !g_file_test (base, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("no golden tiny model");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dl-train-export-XXXXXX", &error);
  g_assert_no_error (error);
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_DREAMBOOTH);
  g_assert_true (dl_train_settings_set (s, "model", base, &error));
  g_assert_true (dl_train_settings_set (s, "config", base, &error));
  g_assert_no_error (error);

  /* one file to a diffusers folder: the tokenizer comes from the base */
  g_autofree char *folder = g_build_filename (dir, "model-diffusers/", NULL);
  g_assert_true (dl_train_export_file (s, single, folder, s->save_dtype, &error));
  g_assert_no_error (error);
  g_autoptr (DlCheckpoint) want = dl_checkpoint_open (single, base, &error);
  g_assert_no_error (error);
  {
    g_autoptr (DlCheckpoint) got = dl_checkpoint_open (folder, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dl_checkpoint_get_layout (got), ==, DL_CHECKPOINT_DIFFUSERS);
    assert_same_model (got, want);
    g_assert_nonnull (dl_checkpoint_get_tokenizer_dir (got));
  }
  g_autofree char *index = g_build_filename (folder, "model_index.json", NULL);
  g_autofree char *vocab = g_build_filename (folder, "tokenizer", "vocab.json", NULL);
  g_assert_true (g_file_test (index, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (vocab, G_FILE_TEST_IS_REGULAR));

  /* and back to one file */
  g_autofree char *again = g_build_filename (dir, "again.safetensors", NULL);
  g_assert_true (dl_train_export_file (s, folder, again, s->save_dtype, &error));
  g_assert_no_error (error);
  {
    g_autoptr (DlCheckpoint) got = dl_checkpoint_open (again, base, &error);
    g_assert_no_error (error);
    g_assert_cmpint (dl_checkpoint_get_layout (got), ==, DL_CHECKPOINT_SINGLE_FILE);
    assert_same_model (got, want);
  }

  /* a folder that holds something else is refused and left as it was */
  g_autofree char *busy = g_build_filename (dir, "busy", NULL);
  g_assert_cmpint (g_mkdir (busy, 0755), ==, 0);
  g_autofree char *keep = g_build_filename (busy, "keep.txt", NULL);
  g_assert_true (g_file_set_contents (keep, "mine", -1, NULL));
  g_autofree char *busy_slash = g_strconcat (busy, "/", NULL);
  g_assert_false (dl_train_export_file (s, single, busy_slash, s->save_dtype, &error));
  g_assert_nonnull (error);
  g_test_message ("busy folder: %s", error->message);
  g_clear_error (&error);
  g_autoptr (GPtrArray) left = list_dir (busy);
  g_assert_cmpuint (left->len, ==, 1);
  g_assert_cmpstr (left->pdata[0], ==, "keep.txt");

  /* a source that is gone */
  g_autofree char *gone = g_build_filename (dir, "gone.safetensors", NULL);
  g_assert_false (dl_train_export_file (s, gone, folder, s->save_dtype, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* nothing but the exports (no temporary siblings) */
  g_autoptr (GPtrArray) names = list_dir (dir);
  g_assert_cmpuint (names->len, ==, 3);
  dl_test_remove_tree (dir);
}

/* A base model of one file, with configs but no tokenizer folder: the exported
 * folder gets the tokenizer Dreamloom uses ($DREAMLOOM_CLIP_VOCAB here), as
 * transformers writes it, so that diffusers loads the folder. */
static void
test_tokenizer_for_single_file_base (void)
{
  g_autofree char *single = dl_test_golden_path ("tiny-sd15-ldm.safetensors");
  g_autofree char *base = dl_test_golden_path ("tiny-sd15-diffusers");
  const char *clip_dir = g_getenv ("DREAMLOOM_TEST_CLIP_DIR");
  g_autofree char *bpe =
    g_build_filename (clip_dir ? clip_dir : DL_TEST_CLIP_DIR, "bpe_simple_vocab_16e6.txt.gz", NULL);
  if (!single || !base || !g_file_test (bpe, G_FILE_TEST_IS_REGULAR))
    {
      g_test_skip ("no golden tiny model or CLIP vocabulary");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dl-train-export-XXXXXX", &error);
  g_assert_no_error (error);
  /* the tiny model's configs without its tokenizer */
  g_autofree char *configs = g_build_filename (dir, "configs", NULL);
  static const char *const parts[] = { "unet", "vae", "text_encoder" };
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_autofree char *from = g_build_filename (base, parts[i], "config.json", NULL);
      g_autofree char *sub = g_build_filename (configs, parts[i], NULL);
      g_autofree char *to = g_build_filename (sub, "config.json", NULL);
      g_autofree char *text = NULL;
      g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
      g_assert_true (g_file_get_contents (from, &text, NULL, NULL));
      g_assert_true (g_file_set_contents (to, text, -1, NULL));
    }
  g_setenv ("DREAMLOOM_CLIP_VOCAB", bpe, TRUE);
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_DREAMBOOTH);
  g_assert_true (dl_train_settings_set (s, "model", single, &error));
  g_assert_true (dl_train_settings_set (s, "config", configs, &error));
  g_assert_no_error (error);
  g_autofree char *folder = g_build_filename (dir, "out/", NULL);
  g_assert_true (dl_train_export_file (s, single, folder, s->save_dtype, &error));
  g_assert_no_error (error);
  g_unsetenv ("DREAMLOOM_CLIP_VOCAB");
  g_autoptr (DlCheckpoint) got = dl_checkpoint_open (folder, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dl_checkpoint_get_tokenizer_dir (got));
  g_autofree char *vocab = g_build_filename (folder, "tokenizer", "vocab.json", NULL);
  g_autofree char *want = g_build_filename (base, "tokenizer", "vocab.json", NULL);
  g_autofree char *a = NULL, *b = NULL;
  gsize la = 0, lb = 0;
  g_assert_true (g_file_get_contents (vocab, &a, &la, NULL));
  g_assert_true (g_file_get_contents (want, &b, &lb, NULL));
  g_assert_cmpmem (a, la, b, lb);
  /* no temporary folder left beside the export */
  g_autoptr (GPtrArray) names = list_dir (dir);
  g_assert_cmpuint (names->len, ==, 2); /* configs, out */
  dl_test_remove_tree (dir);
}

/* An SDXL embedding (a checkpoint of an SDXL Textual Inversion run) exported
 * in the other container keeps both encoders' vectors; diffusers'
 * one-encoder form is refused. */
static void
test_sdxl_embedding (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dl-train-export-XXXXXX", &error);
  g_assert_no_error (error);
  const float l[2 * 3] = { 1, 2, 3, 4, 5, 6 }, g[2 * 4] = { -1, -2, -3, -4, -5, -6, -7, -8 };
  g_autofree char *src = g_build_filename (dir, "mine-step000010.safetensors", NULL);
  g_assert_true (dl_embedding_write_sdxl (src, l, 3, g, 4, 2, NULL, DL_ST_F32, &error));
  g_assert_no_error (error);
  g_autoptr (DlTrainSettings) s = dl_train_settings_new (DL_TRAIN_TEXTUAL_INVERSION);
  const char *dests[] = { "mine.pt", "mine.safetensors" };
  for (guint i = 0; i < G_N_ELEMENTS (dests); i++)
    {
      g_autofree char *dest = g_build_filename (dir, dests[i], NULL);
      g_assert_true (dl_train_export_file (s, src, dest, DL_ST_F32, &error));
      g_assert_no_error (error);
      g_autoptr (DlEmbedding) e = dl_embedding_read_for_model (dest, 3, 4, &error);
      g_assert_no_error (error);
      g_assert_cmpint (e->n_vectors, ==, 2);
      g_assert_cmpmem (e->vectors, sizeof l, l, sizeof l);
      g_assert_cmpmem (e->vectors_2, sizeof g, g, sizeof g);
      g_unlink (dest);
    }
  g_autofree char *diffusers = g_build_filename (dir, "learned_embeds.safetensors", NULL);
  g_assert_false (dl_train_export_file (s, src, diffusers, DL_ST_F32, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_assert_false (g_file_test (diffusers, G_FILE_TEST_EXISTS));
  g_unlink (src);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/train-export/dreambooth-layouts", test_dreambooth_layouts);
  dl_test_add ("/train-export/tokenizer-for-a-single-file-base", test_tokenizer_for_single_file_base);
  dl_test_add ("/train-export/sdxl-embedding", test_sdxl_embedding);
  return dl_test_run ();
}
