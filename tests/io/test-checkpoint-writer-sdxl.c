/* Writing whole SDXL models (dl-checkpoint-writer): the golden tiny SDXL model,
 * read as its diffusers folder or as its SGM single file, written
 *  - as one SGM .safetensors in f32: exactly the key set, shapes and bytes of
 *    tiny-sdxl-sgm.safetensors (made by diffusers'
 *    scripts/convert_diffusers_to_original_sdxl.py), OpenCLIP's q/k/v stacked
 *    into attn.in_proj_weight/in_proj_bias and its text_projection transposed
 *    (the tiny projection is not square, so a missed transpose shows);
 *  - as a diffusers folder in f32: every weights file bit for bit the golden
 *    folder's, the configs and model_index.json with the golden keys and
 *    values, tokenizer/ and tokenizer_2/ copied or written byte for byte;
 *  - in f16 with new values from a source: read back within f16 rounding;
 * and the full-size SDXL base plans against the key manifests (names and
 * shapes only).  Without ../shared/golden/sdxl the whole program reports SKIP. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "dl-half.h"
#include "io/dl-checkpoint-writer.h"
#include "io/dl-checkpoint.h"
#include "io/dl-safetensors.h"
#include "checkpoint-check.h"
#include "manifest-check.h"
#include "sparse-writer.h"
#include "text/dl-clip-tokenizer.h"
#include "train/dl-tokenizer-folder.h"

static char *tmp_dir;
static char *g_sgm;       /* sdxl/tiny-sdxl-sgm.safetensors */
static char *g_diffusers; /* sdxl/tiny-sdxl-diffusers/ */

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

#define ALL_SOURCE                                                                                                 \
  (DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_UNET) | DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_TEXT_ENCODER) | \
   DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_TEXT_ENCODER_2))

/* ---- the source: the base's values, some replaced ---- */

/* a UNet tensor, SDXL's add_embedding (label_emb), the first encoder, and the
 * parts of the second that SGM files store differently: one of a stacked q/k/v
 * and the transposed projection */
static const char *const modified_names[] = {
  "unet.conv_in.weight",
  "unet.add_embedding.linear_2.bias",
  "unet.down_blocks.2.attentions.0.transformer_blocks.1.attn2.to_k.weight",
  "text_encoder.text_model.encoder.layers.1.mlp.fc1.weight",
  "text_encoder_2.text_model.encoder.layers.4.self_attn.k_proj.weight",
  "text_encoder_2.text_model.encoder.layers.9.self_attn.v_proj.bias",
  "text_encoder_2.text_projection.weight",
};

typedef struct
{
  DlCheckpoint *base;
  GHashTable *modified; /* name -> float* (owned); empty: the base's values */
  guint calls;
} Source;

static void
source_init (Source *s, DlCheckpoint *base, gboolean modify)
{
  memset (s, 0, sizeof *s);
  s->base = base;
  s->modified = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  for (guint i = 0; modify && i < G_N_ELEMENTS (modified_names); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_find (base, modified_names[i]);
      g_assert_nonnull (p);
      float *v = dl_test_random ((gsize)p->numel, 300 + i, -2.f, 2.f);
      g_hash_table_insert (s->modified, (gpointer)modified_names[i], v);
    }
}

static void
source_clear (Source *s)
{
  g_hash_table_unref (s->modified);
}

static gboolean
source_fn (const char *name, float *out, int64_t numel, gpointer user_data, GError **error)
{
  Source *s = user_data;
  s->calls++;
  const DlCheckpointParam *p = dl_checkpoint_find (s->base, name);
  g_assert_nonnull (p);
  g_assert_cmpint (p->numel, ==, numel);
  g_assert_false (g_str_has_prefix (name, "vae."));
  const float *mod = g_hash_table_lookup (s->modified, name);
  if (mod)
    {
      memcpy (out, mod, sizeof (float) * numel);
      return TRUE;
    }
  g_autofree float *v = dl_checkpoint_read_f32 (s->base, name, NULL, error);
  if (!v)
    return FALSE;
  memcpy (out, v, sizeof (float) * numel);
  return TRUE;
}

static void
write_ok (DlCheckpoint *base, Source *s, const DlCheckpointWriteOptions *o, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_checkpoint_write (base, s ? source_fn : NULL, s, o, path, &error));
  g_assert_no_error (error);
}

/* ---- files compared ---- */

/* Every tensor of `a` is in `b` with the same dtype, shape and bytes, and
 * neither has others. */
static void
assert_same_tensors (const char *a_path, const char *b_path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) a = dl_safetensors_open (a_path, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) b = dl_safetensors_open (b_path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_safetensors_get_n_tensors (a), ==, dl_safetensors_get_n_tensors (b));
  for (guint i = 0; i < dl_safetensors_get_n_tensors (a); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (a, i);
      const DlStTensor *u = dl_safetensors_find (b, t->name);
      if (!u)
        g_error ("%s: %s is not in %s", a_path, t->name, b_path);
      g_assert_cmpint (t->dtype, ==, u->dtype);
      g_assert_cmpint (t->ndim, ==, u->ndim);
      for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != u->shape[d])
          g_error ("%s: dimension %d is %" G_GINT64_FORMAT ", in %s %" G_GINT64_FORMAT, t->name, d, t->shape[d], b_path,
                   u->shape[d]);
      if (t->nbytes != u->nbytes || memcmp (t->data, u->data, t->nbytes) != 0)
        g_error ("%s: %s does not hold the bytes of %s", a_path, t->name, b_path);
    }
}

static void
assert_same_bytes (const char *a, const char *b)
{
  g_autofree char *ta = NULL, *tb = NULL;
  gsize la, lb;
  g_assert_true (g_file_get_contents (a, &ta, &la, NULL));
  g_assert_true (g_file_get_contents (b, &tb, &lb, NULL));
  if (la != lb || memcmp (ta, tb, la) != 0)
    g_error ("%s is not byte for byte %s", a, b);
}

/* The JSON object in `ours` has every key of `gold` with its value (save the
 * version transformers stamps) and no other; returns whether the files are
 * also the same bytes. */
static gboolean
assert_same_json (const char *ours, const char *gold)
{
  g_autoptr (JsonParser) pa = json_parser_new ();
  g_autoptr (JsonParser) pb = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (pa, ours, &error));
  g_assert_no_error (error);
  g_assert_true (json_parser_load_from_file (pb, gold, &error));
  g_assert_no_error (error);
  JsonObject *a = json_node_get_object (json_parser_get_root (pa));
  JsonObject *b = json_node_get_object (json_parser_get_root (pb));
  g_autoptr (GList) members = json_object_get_members (b);
  for (GList *l = members; l; l = l->next)
    {
      const char *k = l->data;
      if (!json_object_has_member (a, k))
        g_error ("%s: no “%s”", ours, k);
      if (strcmp (k, "transformers_version") == 0)
        continue;
      g_autofree char *va = json_to_string (json_object_get_member (a, k), FALSE);
      g_autofree char *vb = json_to_string (json_object_get_member (b, k), FALSE);
      if (strcmp (va, vb) != 0)
        g_error ("%s: %s is %s, the golden file has %s", ours, k, va, vb);
    }
  g_assert_cmpuint (json_object_get_size (a), ==, json_object_get_size (b));
  g_autofree char *ta = NULL, *tb = NULL;
  g_assert_true (g_file_get_contents (ours, &ta, NULL, NULL));
  g_assert_true (g_file_get_contents (gold, &tb, NULL, NULL));
  return strcmp (ta, tb) == 0;
}

/* The configuration `out` was read with is the base's. */
static void
assert_same_config (DlCheckpoint *base, DlCheckpoint *out)
{
  g_assert_cmpint (dl_checkpoint_get_family (out), ==, DL_FAMILY_SDXL);
  g_assert_cmpuint (dl_checkpoint_get_n_params (out), ==, dl_checkpoint_get_n_params (base));
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (out)->len, ==, 0);
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    {
      g_autofree char *a = dl_model_config_field_to_string (dl_checkpoint_get_config (base), i);
      g_autofree char *b = dl_model_config_field_to_string (dl_checkpoint_get_config (out), i);
      if (g_strcmp0 (a, b) != 0)
        g_error ("%s: the base has %s, the written model %s", dl_model_config_field_name (i), a, b);
    }
}

static const char *const weight_files[] = { "unet/diffusion_pytorch_model.safetensors",
                                            "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                                            "text_encoder_2/model.safetensors" };
static const char *const config_files[] = { "unet/config.json",
                                            "vae/config.json",
                                            "text_encoder/config.json",
                                            "text_encoder_2/config.json",
                                            "scheduler/scheduler_config.json",
                                            "model_index.json" };
static const char *const tokenizer_files[] = { "vocab.json", "merges.txt", "tokenizer_config.json",
                                               "special_tokens_map.json" };

/* `dir` is the golden folder: weights bit for bit, configs by value,
 * tokenizers byte for byte. */
static void
check_folder (const char *dir)
{
  for (guint i = 0; i < G_N_ELEMENTS (weight_files); i++)
    {
      g_autofree char *a = g_build_filename (dir, weight_files[i], NULL);
      g_autofree char *b = g_build_filename (g_diffusers, weight_files[i], NULL);
      assert_same_tensors (a, b);
      g_autoptr (DlSafetensors) st = dl_safetensors_open (a, NULL);
      g_assert_cmpstr (dl_safetensors_get_metadata (st, "format"), ==, "pt");
    }
  guint same_bytes = 0;
  for (guint i = 0; i < G_N_ELEMENTS (config_files); i++)
    {
      g_autofree char *a = g_build_filename (dir, config_files[i], NULL);
      g_autofree char *b = g_build_filename (g_diffusers, config_files[i], NULL);
      gboolean same = assert_same_json (a, b);
      g_test_message ("%s: %s", config_files[i], same ? "the golden bytes" : "the golden keys and values");
      same_bytes += same;
    }
  /* all but the encoders' (transformers 4.40.0 is stamped, not 4.40.0.dev0) */
  g_assert_cmpuint (same_bytes, ==, G_N_ELEMENTS (config_files) - 2);
  const char *toks[] = { "tokenizer", "tokenizer_2" };
  for (guint t = 0; t < G_N_ELEMENTS (toks); t++)
    for (guint i = 0; i < G_N_ELEMENTS (tokenizer_files); i++)
      {
        g_autofree char *a = g_build_filename (dir, toks[t], tokenizer_files[i], NULL);
        g_autofree char *b = g_build_filename (g_diffusers, toks[t], tokenizer_files[i], NULL);
        assert_same_bytes (a, b);
      }
}

/* ---- the golden SGM file ---- */

static void
single_file_is_golden (DlCheckpoint *base, Source *s, const char *name)
{
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.dtype = DL_ST_F32;
  o.source_components = s ? ALL_SOURCE : 0;
  g_autofree char *file = tmp_path (name);
  write_ok (base, s, &o, file);
  assert_same_tensors (file, g_sgm);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (file, NULL);
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.architecture"), ==, "stable-diffusion-xl-v1-base");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.resolution"), ==, "32x32"); /* 16 x 2 */
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.prediction_type"), ==, "epsilon");
  /* and it reads back as the model it was written from */
  g_autoptr (DlCheckpoint) out = cc_open_ok (file, g_diffusers);
  g_assert_cmpint (dl_checkpoint_get_layout (out), ==, DL_CHECKPOINT_SINGLE_FILE);
  assert_same_config (base, out);
  dl_test_remove_tree (file);
}

static void
test_sgm_from_diffusers (void)
{
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_diffusers, NULL);
  /* the base's values through the source, and copied as stored */
  Source s;
  source_init (&s, base, FALSE);
  single_file_is_golden (base, &s, "from-diffusers-source.safetensors");
  /* once per parameter, the VAE's never */
  guint n = 0;
  for (guint i = 0; i < dl_checkpoint_get_n_params (base); i++)
    n += dl_checkpoint_get_param (base, i)->component != DL_COMPONENT_VAE;
  g_assert_cmpuint (s.calls, ==, n);
  single_file_is_golden (base, NULL, "from-diffusers-copy.safetensors");
  source_clear (&s);
}

static void
test_sgm_from_sgm (void)
{
  /* the fused tensors split on reading and stacked again, the projection
   * transposed twice */
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_sgm, g_diffusers);
  Source s;
  source_init (&s, base, FALSE);
  single_file_is_golden (base, &s, "from-sgm-source.safetensors");
  single_file_is_golden (base, NULL, "from-sgm-copy.safetensors");
  source_clear (&s);
}

/* ---- the golden diffusers folder ---- */

static void
test_folder_from_diffusers (void)
{
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_diffusers, NULL);
  Source s;
  source_init (&s, base, FALSE);
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  o.dtype = DL_ST_F32;
  o.source_components = ALL_SOURCE;
  g_autofree char *dir = tmp_path ("folder-from-diffusers");
  write_ok (base, &s, &o, dir);
  check_folder (dir);
  g_autoptr (DlCheckpoint) out = cc_open_ok (dir, NULL);
  g_assert_cmpint (dl_checkpoint_get_layout (out), ==, DL_CHECKPOINT_DIFFUSERS);
  assert_same_config (base, out);
  g_autofree char *tok = g_build_filename (dir, "tokenizer", NULL);
  g_assert_cmpstr (dl_checkpoint_get_tokenizer_dir (out), ==, tok);
  /* the written folder's tokenizer_2 is found beside its tokenizer */
  g_autofree char *tok2 = dl_checkpoint_write_find_tokenizer_2 (out, &o);
  g_autofree char *want = g_build_filename (dir, "tokenizer_2", NULL);
  g_assert_cmpstr (tok2, ==, want);
  /* not for a single file */
  o.layout = DL_CHECKPOINT_WRITE_SINGLE_FILE;
  g_autofree char *none = dl_checkpoint_write_find_tokenizer_2 (out, &o);
  g_assert_null (none);
  dl_test_remove_tree (dir);
  source_clear (&s);
}

/* A copy of the golden folder's config files without its tokenizers: the
 * --config of a single file. */
static char *
configs_without_tokenizers (void)
{
  g_autofree char *dir = tmp_path ("configs-only");
  const char *subs[] = { "unet", "vae", "text_encoder", "text_encoder_2", "scheduler" };
  for (guint i = 0; i < G_N_ELEMENTS (subs); i++)
    {
      g_autofree char *sub = g_build_filename (dir, subs[i], NULL);
      g_assert_cmpint (g_mkdir_with_parents (sub, 0700), ==, 0);
    }
  for (guint i = 0; i < G_N_ELEMENTS (config_files); i++)
    {
      g_autofree char *a = g_build_filename (g_diffusers, config_files[i], NULL);
      g_autofree char *b = g_build_filename (dir, config_files[i], NULL);
      g_autofree char *text = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (a, &text, &len, NULL));
      g_assert_true (g_file_set_contents (b, text, (gssize)len, NULL));
    }
  return g_steal_pointer (&dir);
}

static void
test_folder_from_sgm (void)
{
  /* with --config the golden folder: its tokenizers are copied */
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_sgm, g_diffusers);
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  o.dtype = DL_ST_F32;
  o.source_components = 0;
  g_autofree char *dir = tmp_path ("folder-from-sgm");
  write_ok (base, NULL, &o, dir);
  check_folder (dir);
  {
    g_autoptr (DlCheckpoint) out = cc_open_ok (dir, NULL);
    assert_same_config (base, out);
  }

  /* with configs but no tokenizer: without the tokenizer folder writer none,
   * with it both, written byte for byte as diffusers' from the vocabulary */
  g_autofree char *cfg = configs_without_tokenizers ();
  g_autoptr (DlCheckpoint) bare = cc_open_ok (g_sgm, cfg);
  g_assert_null (dl_checkpoint_get_tokenizer_dir (bare));
  g_autofree char *plain = tmp_path ("folder-without-tokenizers");
  write_ok (bare, NULL, &o, plain);
  g_autofree char *p1 = g_build_filename (plain, "tokenizer", NULL);
  g_autofree char *p2 = g_build_filename (plain, "tokenizer_2", NULL);
  g_assert_false (g_file_test (p1, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (p2, G_FILE_TEST_EXISTS));
  g_autofree char *gold_tok = g_build_filename (g_diffusers, "tokenizer", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlClipTokenizer) tok = dl_clip_tokenizer_new_from_path (gold_tok, &error);
  g_assert_no_error (error);
  g_autofree char *made = tmp_path ("folder-tokenizers-written");
  g_assert_true (dl_tokenizer_folder_write_checkpoint (bare, NULL, NULL, &o, tok, made, &error));
  g_assert_no_error (error);
  check_folder (made);
  /* only the model next to the outputs: the temporary tokenizer folders are gone */
  dl_test_remove_tree (dir);
  dl_test_remove_tree (plain);
  dl_test_remove_tree (made);
  dl_test_remove_tree (cfg);
  g_autoptr (GDir) d = g_dir_open (tmp_dir, 0, NULL);
  g_assert_null (g_dir_read_name (d));
}

/* ---- f16, new values ---- */

static void
test_f16 (void)
{
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_diffusers, NULL);
  Source s;
  source_init (&s, base, TRUE);
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  g_assert_cmpint (o.dtype, ==, DL_ST_F16);
  o.source_components = ALL_SOURCE;
  g_autofree char *file = tmp_path ("f16.safetensors");
  g_autofree char *dir = tmp_path ("f16");
  write_ok (base, &s, &o, file);
  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  write_ok (base, &s, &o, dir);
  g_autofree char *te2_cfg = g_build_filename (dir, "text_encoder_2", "config.json", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (te2_cfg, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "\"torch_dtype\": \"float16\""));

  const char *paths[] = { file, dir };
  for (guint k = 0; k < G_N_ELEMENTS (paths); k++)
    {
      g_autoptr (DlCheckpoint) out = cc_open_ok (paths[k], k == 0 ? g_diffusers : NULL);
      assert_same_config (base, out);
      guint n_modified = 0;
      for (guint i = 0; i < dl_checkpoint_get_n_params (base); i++)
        {
          const DlCheckpointParam *p = dl_checkpoint_get_param (base, i);
          const DlCheckpointParam *q = dl_checkpoint_find (out, p->name);
          g_assert_nonnull (q);
          g_assert_cmpint (q->ndim, ==, p->ndim);
          g_assert_cmpmem (q->shape, sizeof q->shape, p->shape, sizeof p->shape);
          g_autoptr (GError) error = NULL;
          g_autofree float *got = dl_checkpoint_read_f32 (out, p->name, NULL, &error);
          g_assert_no_error (error);
          const float *mod = g_hash_table_lookup (s.modified, p->name);
          g_autofree float *want =
            mod ? g_memdup2 (mod, sizeof (float) * p->numel) : dl_checkpoint_read_f32 (base, p->name, NULL, NULL);
          n_modified += mod != NULL;
          /* the VAE as the base stores it (f32), the rest rounded to f16 */
          g_assert_cmpint (q->dtype, ==, p->component == DL_COMPONENT_VAE ? DL_ST_F32 : DL_ST_F16);
          if (p->component != DL_COMPONENT_VAE)
            for (int64_t j = 0; j < p->numel; j++)
              want[j] = dl_f16_to_f32 (dl_f32_to_f16 (want[j]));
          if (memcmp (got, want, sizeof (float) * p->numel) != 0)
            g_error ("%s: %s does not hold the values written", paths[k], p->name);
        }
      g_assert_cmpuint (n_modified, ==, G_N_ELEMENTS (modified_names));
    }
  dl_test_remove_tree (file);
  dl_test_remove_tree (dir);
  source_clear (&s);
}

/* ---- the full-size SDXL base: plans against the manifests ---- */

/* What an SDXL DreamBooth export writes: the UNet from the source, everything
 * in f16. */
static void
check_entry (const DlCheckpointWriteEntry *e)
{
  g_assert_true (e->from_source == g_str_has_prefix (e->name, "unet."));
  g_assert_cmpint (e->dtype, ==, DL_ST_F16);
}

static void
test_sdxl_manifests (void)
{
  g_autoptr (JsonParser) sp = mc_load_manifest ("sdxl/sdxl-sgm-keys.json");
  g_autoptr (JsonParser) dp = mc_load_manifest ("sdxl/sdxl-diffusers-keys.json");
  JsonObject *sgm = json_object_get_object_member (json_node_get_object (json_parser_get_root (sp)), "keys");
  JsonObject *dif = json_node_get_object (json_parser_get_root (dp));
  g_autoptr (GPtrArray) keys = sw_keys_from_json_object (sgm);
  g_assert_cmpuint (keys->len, ==, 2513);
  for (guint i = 0; i < keys->len; i++)
    ((SwKey *)keys->pdata[i])->dtype = DL_ST_F16;
  g_autofree char *path = tmp_path ("sdxl-sparse.safetensors");
  sw_write_sparse (path, keys, NULL);
  g_autoptr (DlCheckpoint) base = cc_open_ok (path, NULL);

  /* a DreamBooth export: the UNet new, the rest as stored (f16) */
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.source_components = DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_UNET);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) single = dl_checkpoint_write_plan (base, &o, &error);
  g_assert_no_error (error);
  mc_check_write_plan (single, NULL, sgm, check_entry);
  guint stacked = 0, transposed = 0;
  for (guint i = 0; i < single->len; i++)
    {
      const DlCheckpointWriteEntry *e = single->pdata[i];
      stacked += e->stacked[0] != NULL;
      transposed += e->transposed;
    }
  g_assert_cmpuint (stacked, ==, 2 * 32); /* weight and bias of each of bigG's 32 layers */
  g_assert_cmpuint (transposed, ==, 1);

  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  g_autoptr (GPtrArray) folder = dl_checkpoint_write_plan (base, &o, &error);
  g_assert_no_error (error);
  JsonObject *files = json_object_get_object_member (dif, "files");
  for (guint i = 0; i < G_N_ELEMENTS (weight_files); i++)
    mc_check_write_plan (folder, weight_files[i], json_object_get_object_member (files, weight_files[i]), check_entry);
  g_assert_cmpuint (folder->len, ==, 1680 + 248 + 196 + 517);

  /* SDXL base's configs: every value the manifest lists */
  JsonObject *configs = json_object_get_object_member (dif, "configs");
  const char *cfg[][2] = { { "unet", "unet/config.json" },
                           { "vae", "vae/config.json" },
                           { "text_encoder", "text_encoder/config.json" },
                           { "text_encoder_2", "text_encoder_2/config.json" } };
  for (guint i = 0; i < G_N_ELEMENTS (cfg); i++)
    {
      g_autofree char *text =
        dl_checkpoint_diffusers_config_json (dl_checkpoint_get_config (base), cfg[i][1], DL_ST_F16, &error);
      g_assert_no_error (error);
      g_autoptr (JsonParser) ours = json_parser_new ();
      g_assert_true (json_parser_load_from_data (ours, text, -1, NULL));
      JsonObject *a = json_node_get_object (json_parser_get_root (ours));
      JsonObject *b = json_object_get_object_member (configs, cfg[i][0]);
      g_autoptr (GList) members = json_object_get_members (b);
      for (GList *l = members; l; l = l->next)
        {
          g_assert_true (json_object_has_member (a, l->data));
          g_autofree char *va = json_to_string (json_object_get_member (a, l->data), FALSE);
          g_autofree char *vb = json_to_string (json_object_get_member (b, l->data), FALSE);
          if (strcmp (va, vb) != 0)
            g_error ("%s: %s is %s, SDXL base has %s", cfg[i][1], (char *)l->data, va, vb);
        }
    }
  dl_test_remove_tree (path);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_sgm = dl_test_golden_path ("sdxl/tiny-sdxl-sgm.safetensors");
  g_diffusers = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  g_autofree char *m1 = dl_test_golden_path ("sdxl/sdxl-sgm-keys.json");
  g_autofree char *m2 = dl_test_golden_path ("sdxl/sdxl-diffusers-keys.json");
  if (!g_sgm || !g_diffusers || !m1 || !m2)
    return dl_test_skip_all ("the golden tiny SDXL model or the SDXL key manifests are absent");
  tmp_dir = g_dir_make_tmp ("dl-test-checkpoint-writer-sdxl-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  dl_test_add ("/io/checkpoint-writer-sdxl/sgm-from-diffusers", test_sgm_from_diffusers);
  dl_test_add ("/io/checkpoint-writer-sdxl/sgm-from-sgm", test_sgm_from_sgm);
  dl_test_add ("/io/checkpoint-writer-sdxl/folder-from-diffusers", test_folder_from_diffusers);
  dl_test_add ("/io/checkpoint-writer-sdxl/folder-from-sgm", test_folder_from_sgm);
  dl_test_add ("/io/checkpoint-writer-sdxl/f16", test_f16);
  dl_test_add ("/io/checkpoint-writer-sdxl/sdxl-manifests", test_sdxl_manifests);
  int ret = dl_test_run ();
  dl_test_remove_tree (tmp_dir);
  g_free (tmp_dir);
  g_free (g_sgm);
  g_free (g_diffusers);
  return ret;
}
