/* Textual Inversion embedding files (nn/dl-embedding-file.h): the A1111 .pt
 * byte for byte against the pickle torch.save writes (PyTorch
 * torch/serialization.py _save, protocol 2), round trips of the three written formats, the variants other tools
 * write (the original TI repo's ParameterDict, diffusers' learned_embeds.bin,
 * kohya's emb_params, SDXL clip_l/clip_g), and clear errors for files that are
 * not embeddings or do not fit the model. */
#include "dl-test-util.h"

#include <string.h>

#include "io/dl-torch-writer.h"
#include "io/dl-zip.h"
#include "nn/dl-embedding-file.h"
#include "torch-writer.h"

static char *base_tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (base_tmp_dir, name, NULL);
}

static void
assert_message (const GError *error, const char *needle)
{
  g_assert_nonnull (error);
  if (!strstr (error->message, needle))
    g_error ("the error “%s” does not mention “%s”", error->message, needle);
}

static float *
ramp (int n, float scale)
{
  float *v = g_new (float, n);
  for (int i = 0; i < n; i++)
    v[i] = scale * (float)(i - n / 3) / (float)n;
  return v;
}

static DlEmbedding *
read_ok (const char *path, int expected_dim)
{
  g_autoptr (GError) error = NULL;
  DlEmbedding *e = dl_embedding_read (path, expected_dim, &error);
  g_assert_no_error (error);
  g_assert_nonnull (e);
  return e;
}

/* The read fails with a DL_ERROR naming the file and `needle`. */
static void
read_fails (const char *path, int expected_dim, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlEmbedding) e = dl_embedding_read (path, expected_dim, &error);
  g_assert_null (e);
  g_assert_nonnull (error);
  g_assert_true (error->domain == DL_ERROR);
  g_test_message ("%s", error->message);
  assert_message (error, path);
  assert_message (error, needle);
}

/* What torch.save writes for A1111's Embedding.save, memo opcodes aside
 * (docs/formats.md, “Pickle subset”), with 2 vectors of 768. */
static const char a1111_pickle[] = "\x80\x02}("
                                   "X\x0f\x00\x00\x00"
                                   "string_to_token}X\x01\x00\x00\x00*M\x09\x01s"
                                   "X\x0f\x00\x00\x00"
                                   "string_to_param}X\x01\x00\x00\x00*"
                                   "ctorch._utils\n_rebuild_tensor_v2\n"
                                   "((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                                   "0X\x03\x00\x00\x00"
                                   "cpuM\x00\x06tQ"
                                   "K\x00"              /* storage offset */
                                   "K\x02M\x00\x03\x86" /* size (2, 768) */
                                   "M\x00\x03K\x01\x86" /* stride (768, 1) */
                                   "\x88"               /* requires_grad */
                                   "ccollections\nOrderedDict\n)RtRs"
                                   "X\x04\x00\x00\x00nameX\x03\x00\x00\x00"
                                   "cat"
                                   "X\x04\x00\x00\x00stepM\xf4\x01"
                                   "X\x0d\x00\x00\x00sd_checkpointX\x0a\x00\x00\x00"
                                   "0123456789"
                                   "X\x12\x00\x00\x00sd_checkpoint_nameX\x0b\x00\x00\x00v1-5-pruned"
                                   "u.";

static void
test_a1111_bytes (void)
{
  g_autofree float *v = ramp (2 * 768, 1);
  g_autofree char *path = tmp_path ("cat.pt");
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_embedding_write_a1111 (path, "cat", v, 2, 768, 500, "0123456789", "v1-5-pruned", &error));
  g_assert_no_error (error);
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &error);
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (map);
  g_autoptr (DlZip) zip = dl_zip_open_bytes (bytes, path, &error);
  g_assert_no_error (error);
  /* only the records every loader accepts, A1111's safe.py included */
  g_assert_cmpuint (dl_zip_get_n_entries (zip), ==, 3);
  g_assert_cmpstr (dl_zip_get_entry (zip, 0)->name, ==, "archive/data.pkl");
  g_assert_cmpstr (dl_zip_get_entry (zip, 1)->name, ==, "archive/data/0");
  g_assert_cmpstr (dl_zip_get_entry (zip, 2)->name, ==, "archive/version");
  g_autoptr (GBytes) pkl = dl_zip_read (zip, dl_zip_get_entry (zip, 0), &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (pkl, NULL), g_bytes_get_size (pkl), a1111_pickle, sizeof a1111_pickle - 1);
  g_autoptr (GBytes) storage = dl_zip_read (zip, dl_zip_get_entry (zip, 1), &error);
  g_assert_cmpmem (g_bytes_get_data (storage, NULL), g_bytes_get_size (storage), v, 2 * 768 * sizeof (float));
}

static void
assert_vectors (const DlEmbedding *e, int n, int dim, const float *want, double tol)
{
  g_assert_cmpint (e->n_vectors, ==, n);
  g_assert_cmpint (e->dim, ==, dim);
  dl_test_assert_close ("vectors", e->vectors, want, (gsize)n * dim, tol, tol);
}

static void
test_round_trips (void)
{
  g_autofree float *v = ramp (3 * 32, 2);
  g_autoptr (GError) error = NULL;
  /* A1111 */
  {
    g_autofree char *path = tmp_path ("my.style.pt");
    g_assert_true (dl_embedding_write_a1111 (path, "inner name", v, 3, 32, 1500, "abcdef0123", "model", &error));
    g_autoptr (DlEmbedding) e = read_ok (path, 32);
    assert_vectors (e, 3, 32, v, 0);
    g_assert_cmpstr (e->name, ==, "my.style"); /* the keyword is the file stem */
    g_assert_cmpstr (e->stored_name, ==, "inner name");
    g_assert_cmpstr (e->key, ==, "*");
    g_assert_cmpint (e->step, ==, 1500);
    g_assert_cmpstr (e->sd_checkpoint, ==, "abcdef0123");
    g_assert_cmpstr (e->sd_checkpoint_name, ==, "model");
    /* unknown step and checkpoint: None */
    g_assert_true (dl_embedding_write_a1111 (path, "x", v, 1, 32, -1, NULL, NULL, &error));
    g_autoptr (DlEmbedding) e2 = read_ok (path, 0);
    assert_vectors (e2, 1, 32, v, 0);
    g_assert_cmpint (e2->step, ==, -1);
    g_assert_null (e2->sd_checkpoint);
    g_assert_null (e2->sd_checkpoint_name);
  }
  /* kohya emb_params, F32 and F16, with metadata */
  {
    g_autofree char *path = tmp_path ("kohya.safetensors");
    g_autoptr (GHashTable) meta = g_hash_table_new (g_str_hash, g_str_equal);
    g_hash_table_insert (meta, "ss_network_module", "textual_inversion");
    g_assert_true (dl_embedding_write_emb_params (path, v, 3, 32, meta, DL_ST_F32, &error));
    g_autoptr (DlEmbedding) e = read_ok (path, 32);
    assert_vectors (e, 3, 32, v, 0);
    g_assert_cmpstr (e->key, ==, "emb_params");
    g_assert_cmpstr (e->name, ==, "kohya");
    g_assert_cmpint (e->step, ==, -1);
    g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_network_module"), ==, "textual_inversion");
    g_assert_true (dl_embedding_write_emb_params (path, v, 3, 32, NULL, DL_ST_F16, &error));
    g_autoptr (DlEmbedding) h = read_ok (path, 0);
    assert_vectors (h, 3, 32, v, 1e-3);
    g_autoptr (DlSafetensors) st2 = dl_safetensors_open (path, &error);
    g_assert_cmpint (dl_safetensors_find (st2, "emb_params")->dtype, ==, DL_ST_F16);
    g_assert_false (dl_safetensors_has_metadata (st2));
  }
  /* diffusers */
  {
    g_autofree char *path = tmp_path ("learned_embeds.safetensors");
    g_assert_true (dl_embedding_write_diffusers (path, "<cat-toy>", v, 2, 32, &error));
    g_autoptr (DlEmbedding) e = read_ok (path, 32);
    assert_vectors (e, 2, 32, v, 0);
    g_assert_cmpstr (e->key, ==, "<cat-toy>");
    g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "format"), ==, "pt");
    g_assert_cmpuint (dl_safetensors_get_n_tensors (st), ==, 1);
  }
}

/* The original TI repo's file: string_to_token {"*": tensor(265)} and
 * string_to_param an nn.ParameterDict (NEWOBJ + BUILD of its attributes). */
static void
write_parameter_dict_file (const char *path, const float *v, int n, int dim)
{
  TwPickle p;
  tw_pickle_init (&p, TRUE);
  tw_op (&p, 0x80);
  tw_op (&p, 2);
  tw_op (&p, '}');
  tw_op (&p, '(');
  tw_str (&p, "string_to_token");
  tw_op (&p, '}');
  tw_str (&p, "*");
  tw_tensor (&p, "LongStorage", "0", 1, 0, 0, NULL, NULL);
  tw_op (&p, 's');
  tw_str (&p, "string_to_param");
  tw_global (&p, "torch.nn.modules.container", "ParameterDict");
  tw_op (&p, ')');
  tw_op (&p, 0x81); /* NEWOBJ */
  tw_op (&p, '}');
  tw_op (&p, '(');
  tw_str (&p, "training");
  tw_op (&p, 0x88);
  tw_str (&p, "_parameters");
  tw_global (&p, "collections", "OrderedDict");
  tw_op (&p, ')');
  tw_op (&p, 'R');
  tw_str (&p, "*");
  tw_global (&p, "torch._utils", "_rebuild_parameter");
  tw_op (&p, '(');
  tw_tensor (&p, "FloatStorage", "1", (gint64)n * dim, 0, 2, (gint64[]){ n, dim }, (gint64[]){ dim, 1 });
  tw_op (&p, 0x88);
  tw_global (&p, "collections", "OrderedDict");
  tw_op (&p, ')');
  tw_op (&p, 'R');
  tw_op (&p, 't');
  tw_op (&p, 'R');
  tw_op (&p, 's');
  tw_str (&p, "_buffers");
  tw_global (&p, "collections", "OrderedDict");
  tw_op (&p, ')');
  tw_op (&p, 'R');
  tw_str (&p, "_non_persistent_buffers_set");
  tw_global (&p, "__builtin__", "set");
  tw_op (&p, ']');
  tw_op (&p, 0x85);
  tw_op (&p, 'R');
  tw_str (&p, "_is_full_backward_hook");
  tw_op (&p, 'N');
  tw_op (&p, 'u');
  tw_op (&p, 'b'); /* BUILD */
  tw_op (&p, 'u');
  tw_op (&p, '.');
  g_autoptr (GBytes) pickle = tw_pickle_finish (&p);
  const gint64 token = 265;
  g_autoptr (GBytes) s0 = g_bytes_new (&token, 8);
  g_autoptr (GBytes) s1 = g_bytes_new (v, (gsize)n * dim * 4);
  gpointer storages[] = { "0", s0, "1", s1, NULL };
  g_autoptr (GError) error = NULL;
  g_assert_true (tw_write_raw (path, "embeddings", pickle, NULL, storages, FALSE, &error));
}

/* One DlTorchValue dict saved with the engine's writer. */
static void
save (const char *path, DlTorchValue *root)
{
  g_autoptr (DlTorchValue) owned = root;
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_torch_save (path, owned, &error));
  g_assert_no_error (error);
}

static DlTorchValue *
tensor (int ndim, const int64_t *shape, const float *v)
{
  return dl_torch_tensor_f32 (DL_ST_F32, ndim, shape, v);
}

static void
test_variants (void)
{
  g_autofree float *v = ramp (4 * 1280, 3);
  g_autoptr (GError) error = NULL;
  {
    g_autofree char *path = tmp_path ("original-ti.pt");
    write_parameter_dict_file (path, v, 4, 16);
    g_autoptr (DlEmbedding) e = read_ok (path, 16);
    assert_vectors (e, 4, 16, v, 0);
    g_assert_cmpstr (e->key, ==, "*");
    g_assert_cmpint (e->step, ==, -1);
  }
  /* diffusers learned_embeds.bin: {token: 1-D tensor}, one vector */
  {
    g_autofree char *path = tmp_path ("learned_embeds.bin");
    DlTorchValue *d = dl_torch_dict ();
    dl_torch_dict_set (d, "<tok>", tensor (1, (const int64_t[]){ 16 }, v));
    save (path, d);
    g_autoptr (DlEmbedding) e = read_ok (path, 16);
    assert_vectors (e, 1, 16, v, 0);
    g_assert_cmpstr (e->key, ==, "<tok>");
    g_assert_cmpstr (e->name, ==, "learned_embeds");
  }
  /* kohya emb_params through torch.save, in f16, more entries after it */
  {
    g_autofree char *path = tmp_path ("kohya.pt");
    DlTorchValue *d = dl_torch_dict ();
    dl_torch_dict_set (d, "emb_params", dl_torch_tensor_f32 (DL_ST_F16, 2, (const int64_t[]){ 2, 16 }, v));
    dl_torch_dict_set (d, "step", dl_torch_int (9));
    save (path, d);
    g_autoptr (DlEmbedding) e = read_ok (path, 16);
    assert_vectors (e, 2, 16, v, 2e-3);
    g_assert_cmpint (e->step, ==, 9);
  }
  /* SDXL: clip_l for a 768-wide (or any) encoder, clip_g for 1280 */
  {
    g_autofree char *path = tmp_path ("sdxl.safetensors");
    g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
    g_assert_true (dl_safetensors_writer_add_f32 (w, "clip_g", DL_ST_F16, 2, (const int64_t[]){ 2, 1280 }, v, &error));
    g_assert_true (dl_safetensors_writer_add_f32 (w, "clip_l", DL_ST_F32, 2, (const int64_t[]){ 2, 768 }, v, &error));
    g_assert_true (dl_safetensors_writer_write (w, path, &error));
    g_autoptr (DlEmbedding) l = read_ok (path, 768);
    assert_vectors (l, 2, 768, v, 0);
    g_assert_cmpstr (l->key, ==, "clip_l");
    g_autoptr (DlEmbedding) any = read_ok (path, 0);
    g_assert_cmpstr (any->key, ==, "clip_l");
    g_autoptr (DlEmbedding) g = read_ok (path, 1280);
    assert_vectors (g, 2, 1280, v, 2e-3);
    g_assert_cmpstr (g->key, ==, "clip_g");
    read_fails (path, 1024, "holds 2 tensors");
    /* the same as a .pt */
    g_autofree char *pt = tmp_path ("sdxl.pt");
    DlTorchValue *d = dl_torch_dict ();
    dl_torch_dict_set (d, "clip_g", tensor (2, (const int64_t[]){ 2, 1280 }, v));
    dl_torch_dict_set (d, "clip_l", tensor (2, (const int64_t[]){ 2, 768 }, v));
    save (pt, d);
    g_autoptr (DlEmbedding) lp = read_ok (pt, 768);
    g_assert_cmpstr (lp->key, ==, "clip_l");
    g_assert_cmpint (lp->dim, ==, 768);
  }
  /* a single 1-D safetensors tensor is one vector */
  {
    g_autofree char *path = tmp_path ("one.safetensors");
    g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
    g_assert_true (dl_safetensors_writer_add_f32 (w, "whatever", DL_ST_BF16, 1, (const int64_t[]){ 24 }, v, &error));
    g_assert_true (dl_safetensors_writer_write (w, path, &error));
    g_autoptr (DlEmbedding) e = read_ok (path, 24);
    assert_vectors (e, 1, 24, v, 1e-2);
  }
  /* a safetensors header of 128 bytes starts the file with 0x80, as a pickle
   * does: the JSON after it tells them apart */
  {
    char header[129];
    g_snprintf (header, sizeof header, "%-128s",
                "{\"emb_params\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]}}");
    g_autoptr (GByteArray) file = g_byte_array_new ();
    g_byte_array_append (file, (const guint8 *)"\x80\0\0\0\0\0\0\0", 8);
    g_byte_array_append (file, (const guint8 *)header, 128);
    g_byte_array_append (file, (const guint8 *)v, 8);
    g_autofree char *path = tmp_path ("header128.safetensors");
    g_assert_true (g_file_set_contents (path, (const char *)file->data, file->len, NULL));
    g_autoptr (DlEmbedding) e = read_ok (path, 2);
    assert_vectors (e, 1, 2, v, 0);
  }
}

/* Embeddings pickled by CPython's own pickler (tests/fuzz/corpus-torch-ckpt,
 * made by make-torch-seed-corpus.py with stand-ins named like torch's
 * classes): A1111's dict, and the original TI repo's ParameterDict. */
static void
test_cpython_files (void)
{
  const float want[6] = { 0.5f, -1, 2, 0.125f, -4, 8 };
  const char *files[] = { "valid-ti-a1111.pt", "valid-ti-parameterdict.pt" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (DL_FUZZ_CORPUS_DIR, "corpus-torch-ckpt", files[i], NULL);
      g_autoptr (DlEmbedding) e = read_ok (path, 3);
      assert_vectors (e, 2, 3, want, 0);
      g_assert_cmpstr (e->key, ==, "*");
      if (i == 0)
        {
          g_assert_cmpstr (e->name, ==, "valid-ti-a1111");
          g_assert_cmpstr (e->stored_name, ==, "cat");
          g_assert_cmpint (e->step, ==, 500);
          g_assert_cmpstr (e->sd_checkpoint, ==, "0123456789");
          g_assert_cmpstr (e->sd_checkpoint_name, ==, "v1-5-pruned");
        }
      else
        {
          g_assert_null (e->stored_name);
          g_assert_cmpint (e->step, ==, -1);
        }
      read_fails (path, 768, "3 wide but the model's text encoder takes 768");
    }
}

static void
test_errors (void)
{
  g_autofree float *v = ramp (4 * 1024, 1);
  g_autoptr (GError) error = NULL;
  /* a model of another width: both widths named */
  {
    g_autofree char *path = tmp_path ("sd2.pt");
    g_assert_true (dl_embedding_write_a1111 (path, "sd2", v, 2, 1024, 10, NULL, NULL, &error));
    read_fails (path, 768, "1024 wide but the model's text encoder takes 768");
    g_autofree char *st = tmp_path ("sd2.safetensors");
    g_assert_true (dl_embedding_write_emb_params (st, v, 1, 1024, NULL, DL_ST_F32, &error));
    read_fails (st, 768, "1024 wide but the model's text encoder takes 768");
  }
  /* .pt dicts that are not embeddings */
  struct
  {
    const char *file;
    const char *needle;
  } cases[] = {
    { "two-terms.pt", "string_to_param holds 2 embeddings" },
    { "param-list.pt", "string_to_param is a list, not a dict" },
    { "param-str.pt", "the embedding “*” is a str, not a tensor" },
    { "not-embedding.pt", "the first entry “foo” is an int, not a tensor" },
    { "empty.pt", "empty dict" },
    { "3d.pt", "has shape [1, 2, 8]" },
    { "no-vectors.pt", "holds no vectors" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      DlTorchValue *d = dl_torch_dict ();
      if (i == 0 || i == 1 || i == 2)
        {
          DlTorchValue *p = i == 1 ? dl_torch_list () : dl_torch_dict ();
          if (i == 0)
            {
              dl_torch_dict_set (p, "*", tensor (2, (const int64_t[]){ 1, 8 }, v));
              dl_torch_dict_set (p, "+", tensor (2, (const int64_t[]){ 1, 8 }, v));
            }
          else if (i == 2)
            dl_torch_dict_set (p, "*", dl_torch_str ("x"));
          dl_torch_dict_set (d, "string_to_param", p);
        }
      else if (i == 3)
        {
          dl_torch_dict_set (d, "foo", dl_torch_int (1));
          dl_torch_dict_set (d, "bar", tensor (1, (const int64_t[]){ 8 }, v));
        }
      else if (i == 5)
        dl_torch_dict_set (d, "t", tensor (3, (const int64_t[]){ 1, 2, 8 }, v));
      else if (i == 6)
        dl_torch_dict_set (d, "t", tensor (2, (const int64_t[]){ 0, 8 }, v));
      g_autofree char *path = tmp_path (cases[i].file);
      save (path, d);
      read_fails (path, 0, cases[i].needle);
    }
  /* safetensors that are not embeddings */
  {
    g_autofree char *path = tmp_path ("lora.safetensors");
    g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
    g_assert_true (
      dl_safetensors_writer_add_f32 (w, "a.lora_down.weight", DL_ST_F32, 2, (const int64_t[]){ 2, 8 }, v, &error));
    g_assert_true (
      dl_safetensors_writer_add_f32 (w, "a.lora_up.weight", DL_ST_F32, 2, (const int64_t[]){ 8, 2 }, v, &error));
    g_assert_true (dl_safetensors_writer_write (w, path, &error));
    read_fails (path, 0, "holds 2 tensors");
    g_autoptr (DlSafetensorsWriter) w0 = dl_safetensors_writer_new ();
    g_assert_true (dl_safetensors_writer_write (w0, path, &error));
    read_fails (path, 0, "holds no tensors");
  }
  /* not a model file at all, damaged, absent, an image */
  {
    g_autofree char *path = tmp_path ("junk.pt");
    g_assert_true (g_file_set_contents (path, "hello world, not an embedding", -1, NULL));
    read_fails (path, 0, "not a PyTorch zip file");
    g_autofree char *st = tmp_path ("junk.safetensors");
    g_assert_true (g_file_set_contents (st, "hello world, not an embedding", -1, NULL));
    read_fails (st, 0, "Invalid safetensors file");
    g_autofree char *good = tmp_path ("cut.pt");
    g_assert_true (dl_embedding_write_a1111 (good, "cut", v, 1, 16, 0, NULL, NULL, &error));
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (good, &data, &len, NULL));
    g_assert_true (g_file_set_contents (good, data, (gssize)len - 40, NULL));
    read_fails (good, 0, "cut.pt");
    g_autofree char *png = tmp_path ("preview.png");
    g_assert_true (g_file_set_contents (png, "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, NULL));
    read_fails (png, 0, "inside images are not supported");
    g_autofree char *absent = tmp_path ("absent.pt");
    g_autoptr (DlEmbedding) e = dl_embedding_read (absent, 0, &error);
    g_assert_null (e);
    g_assert_error (error, DL_ERROR, DL_ERROR_IO);
    assert_message (error, "absent.pt");
    g_clear_error (&error);
  }
  /* a malicious .pt: the unpickler refuses the global, nothing runs */
  {
    TwPickle p;
    tw_pickle_init (&p, FALSE);
    tw_op (&p, 0x80);
    tw_op (&p, 2);
    tw_op (&p, '}');
    tw_str (&p, "string_to_param");
    tw_global (&p, "os", "system");
    tw_str (&p, "true");
    tw_op (&p, 0x85);
    tw_op (&p, 'R');
    tw_op (&p, 's');
    tw_op (&p, '.');
    g_autoptr (GBytes) pickle = tw_pickle_finish (&p);
    g_autofree char *path = tmp_path ("evil.pt");
    g_assert_true (tw_write_raw (path, NULL, pickle, NULL, NULL, FALSE, &error));
    read_fails (path, 0, "“os.system” is not allowed");
  }
  /* writing: text that is not UTF-8, an empty token, a missing folder */
  {
    g_autofree char *path = tmp_path ("w.pt");
    g_assert_false (dl_embedding_write_a1111 (path, "bad\xff", v, 1, 8, 0, NULL, NULL, &error));
    g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
    assert_message (error, "name is not valid UTF-8");
    g_clear_error (&error);
    g_assert_false (dl_embedding_write_diffusers (path, "", v, 1, 8, &error));
    assert_message (error, "placeholder token is empty");
    g_clear_error (&error);
    g_autofree char *nowhere = tmp_path ("missing/e.pt");
    g_assert_false (dl_embedding_write_a1111 (nowhere, "e", v, 1, 8, 0, NULL, NULL, &error));
    assert_message (error, "missing");
    g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  }
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  base_tmp_dir = g_dir_make_tmp ("dl-test-embedding-file-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  dl_test_add ("/io/embedding-file/a1111-bytes", test_a1111_bytes);
  dl_test_add ("/io/embedding-file/round-trips", test_round_trips);
  dl_test_add ("/io/embedding-file/variants", test_variants);
  dl_test_add ("/io/embedding-file/cpython-files", test_cpython_files);
  dl_test_add ("/io/embedding-file/errors", test_errors);
  int ret = dl_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  return ret;
}
