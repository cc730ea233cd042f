/* Writing whole SD 1.x models (dl-checkpoint-writer) and the safetensors
 * writer's deferred tensors it streams through.
 *
 * The golden tiny model is read in both layouts, a few UNet and text-encoder
 * tensors are changed, and the model is written as an LDM single file and as a
 * diffusers folder, then read back: every parameter must come back exactly
 * (the VAE bit for bit as the base stores it), with the golden files' key
 * sets.  Also: f16 rounding, failures that must leave nothing behind, and the
 * full-size SD 1.5 key manifests (as sparse files, no data written).
 * Without ../shared/golden the whole program reports SKIP. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "dl-half.h"
#include "io/dl-checkpoint-writer.h"
#include "io/dl-checkpoint.h"
#include "io/dl-safetensors.h"
#include "checkpoint-check.h"
#include "manifest-check.h"
#include "sparse-writer.h"

static char *tmp_dir;
static char *g_ldm;       /* tiny-sd15-ldm.safetensors */
static char *g_diffusers; /* tiny-sd15-diffusers/ */

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

/* ---- the source: the base's values, some replaced ---- */

static const char *const modified_names[] = {
  "unet.conv_in.weight",
  "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight",
  "unet.mid_block.resnets.1.time_emb_proj.weight",
  "unet.up_blocks.1.upsamplers.0.conv.bias",
  "text_encoder.text_model.embeddings.token_embedding.weight",
  "text_encoder.text_model.encoder.layers.2.mlp.fc2.bias",
};

typedef struct
{
  DlCheckpoint *base;
  GHashTable *modified; /* name -> float* (owned) */
  const char *fail_at;  /* the source fails for this name */
  const char *huge_at;  /* ... or gives 1e6 for it */
  GHashTable *calls;    /* name -> number of calls */
} Source;

static void
source_init (Source *s, DlCheckpoint *base)
{
  memset (s, 0, sizeof *s);
  s->base = base;
  s->modified = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  s->calls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (modified_names); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_find (base, modified_names[i]);
      g_assert_nonnull (p);
      float *v = dl_test_random ((gsize)p->numel, 100 + i, -2.f, 2.f);
      g_hash_table_insert (s->modified, (gpointer)modified_names[i], v);
    }
}

static void
source_clear (Source *s)
{
  g_hash_table_unref (s->modified);
  g_hash_table_unref (s->calls);
}

static gboolean
source_fn (const char *name, float *out, int64_t numel, gpointer user_data, GError **error)
{
  Source *s = user_data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (s->calls, name));
  g_hash_table_replace (s->calls, g_strdup (name), GUINT_TO_POINTER (n + 1));
  if (g_strcmp0 (name, s->fail_at) == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "test: the values of %s are gone", name);
      return FALSE;
    }
  const DlCheckpointParam *p = dl_checkpoint_find (s->base, name);
  g_assert_nonnull (p);
  g_assert_cmpint (p->numel, ==, numel);
  g_assert_true (g_str_has_prefix (name, "unet.") || g_str_has_prefix (name, "text_encoder."));
  const float *mod = g_hash_table_lookup (s->modified, name);
  if (mod)
    {
      memcpy (out, mod, sizeof (float) * numel);
    }
  else
    {
      g_autofree float *v = dl_checkpoint_read_f32 (s->base, name, NULL, error);
      if (!v)
        return FALSE;
      memcpy (out, v, sizeof (float) * numel);
    }
  if (g_strcmp0 (name, s->huge_at) == 0)
    out[numel / 2] = 1e6f;
  return TRUE;
}

/* The values `name` must have in the written model. */
static float *
expected (Source *s, const char *name, DlStDType dtype)
{
  const DlCheckpointParam *p = dl_checkpoint_find (s->base, name);
  const float *mod = g_hash_table_lookup (s->modified, name);
  float *v = mod ? g_memdup2 (mod, sizeof (float) * p->numel) : dl_checkpoint_read_f32 (s->base, name, NULL, NULL);
  g_assert_nonnull (v);
  if (dtype == DL_ST_F16)
    for (int64_t i = 0; i < p->numel; i++)
      v[i] = dl_f16_to_f32 (dl_f32_to_f16 (v[i]));
  return v;
}

/* Every parameter of `out` is what the source gave (stored as `dtype`), the
 * VAE as the base stores it; the configuration is the base's. */
static void
check_written (Source *s, DlCheckpoint *out, DlStDType dtype)
{
  DlCheckpoint *base = s->base;
  g_assert_cmpint (dl_checkpoint_get_family (out), ==, DL_FAMILY_SD1);
  g_assert_cmpuint (dl_checkpoint_get_n_params (out), ==, dl_checkpoint_get_n_params (base));
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (out)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_ignored_keys (out)->len, ==, 0);
  guint n_modified = 0;
  for (guint i = 0; i < dl_checkpoint_get_n_params (base); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (base, i);
      const DlCheckpointParam *q = dl_checkpoint_find (out, p->name);
      g_assert_nonnull (q);
      g_assert_cmpint (q->ndim, ==, p->ndim);
      g_assert_cmpmem (q->shape, sizeof q->shape, p->shape, sizeof p->shape);
      if (p->component == DL_COMPONENT_VAE)
        {
          const DlStTensor *a = dl_checkpoint_get_stored (base, p->name), *b = dl_checkpoint_get_stored (out, p->name);
          g_assert_cmpint (b->dtype, ==, a->dtype);
          g_assert_cmpmem (b->data, b->nbytes, a->data, a->nbytes);
          continue;
        }
      g_assert_cmpint (q->dtype, ==, dtype);
      g_autofree float *want = expected (s, p->name, dtype);
      g_autoptr (GError) error = NULL;
      g_autofree float *got = dl_checkpoint_read_f32 (out, p->name, NULL, &error);
      g_assert_no_error (error);
      if (memcmp (got, want, sizeof (float) * p->numel) != 0)
        g_error ("%s does not hold the values written", p->name);
      n_modified += g_hash_table_contains (s->modified, p->name);
    }
  g_assert_cmpuint (n_modified, ==, G_N_ELEMENTS (modified_names));
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    {
      g_autofree char *a = dl_model_config_field_to_string (dl_checkpoint_get_config (base), i);
      g_autofree char *b = dl_model_config_field_to_string (dl_checkpoint_get_config (out), i);
      if (g_strcmp0 (a, b) != 0)
        g_error ("%s: the base has %s, the written model %s", dl_model_config_field_name (i), a, b);
    }
}

/* The source was asked for every UNet and text-encoder parameter once. */
static void
check_calls (Source *s, guint writes)
{
  guint n = 0;
  for (guint i = 0; i < dl_checkpoint_get_n_params (s->base); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (s->base, i);
      guint calls = GPOINTER_TO_UINT (g_hash_table_lookup (s->calls, p->name));
      g_assert_cmpuint (calls, ==, p->component == DL_COMPONENT_VAE ? 0 : writes);
      n += p->component != DL_COMPONENT_VAE;
    }
  g_assert_cmpuint (g_hash_table_size (s->calls), ==, n);
}

/* name -> "DTYPE [shape]" of a safetensors file's tensors */
static GHashTable *
file_keys (const char *path, gboolean with_dtype)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      GString *s = g_string_new (with_dtype ? dl_st_dtype_name (t->dtype) : "");
      for (int d = 0; d < t->ndim; d++)
        g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "," : " [", t->shape[d]);
      g_string_append_c (s, ']');
      g_hash_table_insert (h, g_strdup (t->name), g_string_free (s, FALSE));
    }
  return h;
}

static void
assert_same_keys (const char *a_path, const char *b_path, gboolean with_dtype)
{
  g_autoptr (GHashTable) a = file_keys (a_path, with_dtype);
  g_autoptr (GHashTable) b = file_keys (b_path, with_dtype);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, a);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (g_strcmp0 (g_hash_table_lookup (b, k), v) != 0)
      g_error ("%s: %s is %s, in %s %s", a_path, (char *)k, (char *)v, b_path, (char *)g_hash_table_lookup (b, k));
  g_assert_cmpuint (g_hash_table_size (a), ==, g_hash_table_size (b));
}

static const char *const diffusers_files[] = { "unet/diffusion_pytorch_model.safetensors",
                                               "vae/diffusion_pytorch_model.safetensors",
                                               "text_encoder/model.safetensors" };

static void
write_ok (DlCheckpoint *base, Source *s, const DlCheckpointWriteOptions *o, const char *path)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_checkpoint_write (base, source_fn, s, o, path, &error));
  g_assert_no_error (error);
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* The names in `dir`, sorted, joined by spaces. */
static char *
listing (const char *dir)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **)names->pdata);
}

/* ---- both layouts from both layouts, f32 ---- */

static void
round_trip (const char *base_path, const char *config_dir, const char *tag)
{
  g_autoptr (DlCheckpoint) base = cc_open_ok (base_path, config_dir);
  Source s;
  source_init (&s, base);
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.dtype = DL_ST_F32;

  g_autofree char *sub = g_strdup_printf ("round-trip-%s", tag);
  g_autofree char *sub_dir = tmp_path (sub);
  g_assert_cmpint (g_mkdir (sub_dir, 0700), ==, 0);

  /* single file: the golden LDM file's keys and shapes exactly */
  g_autofree char *name = g_strdup_printf ("from-%s.safetensors", tag);
  g_autofree char *file = g_build_filename (sub_dir, name, NULL);
  write_ok (base, &s, &o, file);
  check_calls (&s, 1);
  {
    g_autoptr (DlCheckpoint) out = cc_open_ok (file, g_diffusers);
    g_assert_cmpint (dl_checkpoint_get_layout (out), ==, DL_CHECKPOINT_SINGLE_FILE);
    check_written (&s, out, DL_ST_F32);
    assert_same_keys (file, g_ldm, TRUE);
    DlSafetensors *st = dl_checkpoint_get_safetensors (out);
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.sai_model_spec"), ==, "1.0.1");
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.architecture"), ==, "stable-diffusion-v1");
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.implementation"), ==,
                     "https://github.com/Stability-AI/generative-models");
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.prediction_type"), ==, "epsilon");
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.resolution"), ==, "32x32"); /* 16 x 2 */
    g_autofree char *title = g_strdup_printf ("from-%s", tag);
    g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.title"), ==, title);
    g_assert_nonnull (dl_safetensors_get_metadata (st, "modelspec.date"));
    /* the VAE attention projections as 1x1 convs */
    const DlStTensor *t = dl_safetensors_find (st, "first_stage_model.decoder.mid.attn_1.proj_out.weight");
    g_assert_nonnull (t);
    g_assert_cmpint (t->ndim, ==, 4);
  }

  /* diffusers folder: the golden folder's files, keys and shapes */
  g_autofree char *dname = g_strdup_printf ("from-%s", tag);
  g_autofree char *dir = g_build_filename (sub_dir, dname, NULL);
  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  write_ok (base, &s, &o, dir);
  check_calls (&s, 2);
  g_autoptr (DlCheckpoint) out = cc_open_ok (dir, NULL);
  g_assert_cmpint (dl_checkpoint_get_layout (out), ==, DL_CHECKPOINT_DIFFUSERS);
  check_written (&s, out, DL_ST_F32);
  for (guint i = 0; i < G_N_ELEMENTS (diffusers_files); i++)
    {
      g_autofree char *a = g_build_filename (dir, diffusers_files[i], NULL);
      g_autofree char *b = g_build_filename (g_diffusers, diffusers_files[i], NULL);
      assert_same_keys (a, b, TRUE);
      g_autoptr (DlSafetensors) st = dl_safetensors_open (a, NULL);
      /* transformers refuses a safetensors file whose metadata lacks it */
      g_assert_cmpstr (dl_safetensors_get_metadata (st, "format"), ==, "pt");
    }
  /* the configuration came from the written configs, the tokenizer is a copy */
  g_autofree char *unet_cfg = g_build_filename (dir, "unet", "config.json", NULL);
  g_assert_cmpstr (dl_checkpoint_get_config_source (out, "unet.attention_heads"), ==, unet_cfg);
  g_autofree char *tok = g_build_filename (dir, "tokenizer", NULL);
  g_assert_cmpstr (dl_checkpoint_get_tokenizer_dir (out), ==, tok);
  const char *tok_files[] = { "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json" };
  for (guint i = 0; i < G_N_ELEMENTS (tok_files); i++)
    {
      g_autofree char *a = g_build_filename (dir, "tokenizer", tok_files[i], NULL);
      g_autofree char *b = g_build_filename (g_diffusers, "tokenizer", tok_files[i], NULL);
      g_autofree char *ta = NULL, *tb = NULL;
      gsize la, lb;
      g_assert_true (g_file_get_contents (a, &ta, &la, NULL));
      g_assert_true (g_file_get_contents (b, &tb, &lb, NULL));
      g_assert_cmpmem (ta, la, tb, lb);
    }
  /* nothing else next to the outputs */
  g_autofree char *names = listing (sub_dir);
  g_autofree char *want = g_strdup_printf ("%s %s", dname, name);
  g_assert_cmpstr (names, ==, want);
  source_clear (&s);
}

static void
test_round_trip_from_diffusers (void)
{
  round_trip (g_diffusers, NULL, "diffusers");
}

static void
test_round_trip_from_single_file (void)
{
  round_trip (g_ldm, g_diffusers, "ldm");
}

/* The written configs hold the golden configs' values for every key they
 * share (and diffusers' names for all of them). */
static void
test_configs_match_golden (void)
{
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_diffusers, NULL);
  const char *files[] = { "unet/config.json", "vae/config.json", "text_encoder/config.json",
                          "scheduler/scheduler_config.json", "model_index.json" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text =
        dl_checkpoint_diffusers_config_json (dl_checkpoint_get_config (base), files[i], DL_ST_F32, &error);
      g_assert_no_error (error);
      g_autoptr (JsonParser) ours = json_parser_new ();
      g_assert_true (json_parser_load_from_data (ours, text, -1, NULL));
      g_autofree char *path = g_build_filename (g_diffusers, files[i], NULL);
      g_autoptr (JsonParser) gold = json_parser_new ();
      g_assert_true (json_parser_load_from_file (gold, path, NULL));
      JsonObject *a = json_node_get_object (json_parser_get_root (ours));
      JsonObject *b = json_node_get_object (json_parser_get_root (gold));
      /* the same key set, save the version each tool stamps */
      g_autoptr (GList) members = json_object_get_members (b);
      for (GList *l = members; l; l = l->next)
        {
          const char *k = l->data;
          if (strcmp (k, "transformers_version") == 0)
            continue;
          if (!json_object_has_member (a, k))
            g_error ("%s: no “%s”", files[i], k);
          g_autofree char *va = json_to_string (json_object_get_member (a, k), FALSE);
          g_autofree char *vb = json_to_string (json_object_get_member (b, k), FALSE);
          if (strcmp (va, vb) != 0)
            g_error ("%s: %s is %s, the golden config has %s", files[i], k, va, vb);
        }
      g_assert_cmpuint (json_object_get_size (a), ==, json_object_get_size (b));
    }
}

/* ---- f16 ---- */

static void
test_f16 (void)
{
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_diffusers, NULL);
  Source s;
  source_init (&s, base);
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  g_assert_cmpint (o.dtype, ==, DL_ST_F16);
  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  g_autofree char *dir = tmp_path ("f16");
  write_ok (base, &s, &o, dir);
  g_autoptr (DlCheckpoint) out = cc_open_ok (dir, NULL);
  check_written (&s, out, DL_ST_F16); /* UNet and text encoder rounded to nearest even, VAE F32 as stored */
  g_autofree char *te_cfg = g_build_filename (dir, "text_encoder", "config.json", NULL);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (te_cfg, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "\"torch_dtype\": \"float16\""));

  /* convert_base: the VAE in f16 too, from the base's values */
  o.layout = DL_CHECKPOINT_WRITE_SINGLE_FILE;
  o.convert_base = TRUE;
  g_autofree char *file = tmp_path ("f16-all.safetensors");
  write_ok (base, &s, &o, file);
  g_autoptr (DlCheckpoint) all = cc_open_ok (file, g_diffusers);
  for (guint i = 0; i < dl_checkpoint_get_n_params (all); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (all, i);
      g_assert_cmpint (p->dtype, ==, DL_ST_F16);
      if (p->component != DL_COMPONENT_VAE)
        continue;
      g_autofree float *want = expected (&s, p->name, DL_ST_F16);
      g_autofree float *got = dl_checkpoint_read_f32 (all, p->name, NULL, NULL);
      g_assert_cmpmem (got, sizeof (float) * p->numel, want, sizeof (float) * p->numel);
    }

  /* the f16 model as the base of an f32 write: its values exactly, VAE bytes as stored (F16) */
  o.convert_base = FALSE;
  o.dtype = DL_ST_F32;
  o.source_components = 0;
  g_autofree char *again = tmp_path ("f16-copy.safetensors");
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_checkpoint_write (all, NULL, NULL, &o, again, &error));
  g_assert_no_error (error);
  g_autoptr (DlCheckpoint) copy = cc_open_ok (again, g_diffusers);
  for (guint i = 0; i < dl_checkpoint_get_n_params (copy); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (copy, i);
      g_assert_cmpint (p->dtype, ==, DL_ST_F16);
      const DlStTensor *a = dl_checkpoint_get_stored (all, p->name), *b = dl_checkpoint_get_stored (copy, p->name);
      g_assert_cmpmem (b->data, b->nbytes, a->data, a->nbytes);
    }

  /* a value f16 cannot hold is an error naming the parameter, and nothing is written */
  o.source_components =
    DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_UNET) | DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_TEXT_ENCODER);
  o.dtype = DL_ST_F16;
  s.huge_at = "unet.mid_block.attentions.0.proj_out.bias";
  g_autofree char *huge = tmp_path ("f16-huge.safetensors");
  g_assert_false (dl_checkpoint_write (base, source_fn, &s, &o, huge, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_test_message ("expected error: %s", error->message);
  g_assert_nonnull (strstr (error->message, s.huge_at));
  g_assert_nonnull (strstr (error->message, "F32"));
  g_assert_false (g_file_test (huge, G_FILE_TEST_EXISTS));
  g_clear_error (&error);
  /* ... which f32 holds */
  o.dtype = DL_ST_F32;
  write_ok (base, &s, &o, huge);
  dl_test_remove_tree (huge);

  /* a dtype weights cannot be stored as */
  o.dtype = DL_ST_I32;
  g_assert_false (dl_checkpoint_write (base, source_fn, &s, &o, huge, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_false (g_file_test (huge, G_FILE_TEST_EXISTS));
  source_clear (&s);
}

/* ---- failures ---- */

/* path -> sha256 of every file under `dir` (relative names) */
static void
hash_tree (GHashTable *h, const char *dir, const char *rel)
{
  g_autofree char *full = rel ? g_build_filename (dir, rel, NULL) : g_strdup (dir);
  g_autoptr (GDir) d = g_dir_open (full, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  while ((name = g_dir_read_name (d)))
    {
      g_autofree char *r = rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
      g_autofree char *p = g_build_filename (dir, r, NULL);
      if (g_file_test (p, G_FILE_TEST_IS_DIR))
        {
          hash_tree (h, dir, r);
          continue;
        }
      g_autofree char *data = NULL;
      gsize len;
      g_assert_true (g_file_get_contents (p, &data, &len, NULL));
      char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *)data, len);
      g_hash_table_insert (h, g_steal_pointer (&r), sum);
    }
}

static GHashTable *
tree_hashes (const char *dir)
{
  GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  hash_tree (h, dir, NULL);
  return h;
}

static void
assert_same_tree (GHashTable *a, GHashTable *b)
{
  g_assert_cmpuint (g_hash_table_size (a), ==, g_hash_table_size (b));
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, a);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (g_strcmp0 (g_hash_table_lookup (b, k), v) != 0)
      g_error ("%s changed", (char *)k);
}

static void
write_fails (DlCheckpoint *base, Source *s, const DlCheckpointWriteOptions *o, const char *path, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_assert_false (dl_checkpoint_write (base, source_fn, s, o, path, &error));
  g_assert_nonnull (error);
  g_test_message ("expected error: %s", error->message);
  if (!strstr (error->message, needle))
    g_error ("the error “%s” does not mention “%s”", error->message, needle);
}

static void
test_failures_leave_nothing (void)
{
  g_autofree char *dir = tmp_path ("fail");
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_autoptr (DlCheckpoint) base = cc_open_ok (g_diffusers, NULL);
  Source s;
  source_init (&s, base);
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  g_autofree char *model = g_build_filename (dir, "model", NULL);

  /* the source fails in the text encoder, after the UNet and VAE files were written */
  s.fail_at = "text_encoder.text_model.encoder.layers.1.self_attn.v_proj.weight";
  write_fails (base, &s, &o, model, "are gone");
  g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (s.calls, "unet.conv_out.bias")), ==, 1);
  g_autofree char *empty = listing (dir);
  g_assert_cmpstr (empty, ==, "");

  /* an existing model folder is kept as it was */
  s.fail_at = NULL;
  write_ok (base, &s, &o, model);
  g_autoptr (GHashTable) before = tree_hashes (model);
  g_assert_cmpuint (g_hash_table_size (before), ==, 12);
  s.fail_at = "text_encoder.text_model.final_layer_norm.bias";
  o.dtype = DL_ST_F32;
  write_fails (base, &s, &o, model, "are gone");
  g_autoptr (GHashTable) after = tree_hashes (model);
  assert_same_tree (before, after);
  g_autofree char *one = listing (dir);
  g_assert_cmpstr (one, ==, "model");
  /* ... and replaced by a complete write (with a trailing slash too) */
  s.fail_at = NULL;
  g_autofree char *slash = g_strconcat (model, "/", NULL);
  write_ok (base, &s, &o, slash);
  g_autoptr (GHashTable) replaced = tree_hashes (model);
  g_autofree char *unet = g_strdup ("unet/diffusion_pytorch_model.safetensors");
  g_assert_cmpstr (g_hash_table_lookup (replaced, unet), !=, g_hash_table_lookup (before, unet));
  g_autofree char *vae = g_strdup ("vae/diffusion_pytorch_model.safetensors");
  g_assert_cmpstr (g_hash_table_lookup (replaced, vae), ==, g_hash_table_lookup (before, vae));
  g_autofree char *still_one = listing (dir);
  g_assert_cmpstr (still_one, ==, "model");
  {
    g_autoptr (DlCheckpoint) out = cc_open_ok (model, NULL);
    check_written (&s, out, DL_ST_F32);
  }

  /* destinations that are not ours to replace */
  g_autofree char *notes = g_build_filename (dir, "notes", NULL);
  g_assert_cmpint (g_mkdir (notes, 0700), ==, 0);
  g_autofree char *notes_file = g_build_filename (notes, "todo.txt", NULL);
  g_assert_true (g_file_set_contents (notes_file, "keep me", -1, NULL));
  write_fails (base, &s, &o, notes, "not a diffusers model folder");
  g_assert_true (g_file_test (notes_file, G_FILE_TEST_IS_REGULAR));
  write_fails (base, &s, &o, notes_file, "not a folder");
  /* an unwritable destination: its parent is a file */
  g_autofree char *under_file = g_build_filename (notes_file, "model", NULL);
  write_fails (base, &s, &o, under_file, "todo.txt");
  g_autofree char *two = listing (dir);
  g_assert_cmpstr (two, ==, "model notes");
  g_autofree char *notes_list = listing (notes);
  g_assert_cmpstr (notes_list, ==, "todo.txt");

  /* a single file: the existing one is kept, no temporary file is left */
  o.layout = DL_CHECKPOINT_WRITE_SINGLE_FILE;
  g_autofree char *file = g_build_filename (dir, "model.safetensors", NULL);
  write_ok (base, &s, &o, file);
  g_autofree char *old = NULL, *now = NULL;
  gsize old_len, now_len;
  g_assert_true (g_file_get_contents (file, &old, &old_len, NULL));
  s.fail_at = "unet.up_blocks.3.attentions.2.proj_out.weight";
  write_fails (base, &s, &o, file, "are gone");
  g_assert_true (g_file_get_contents (file, &now, &now_len, NULL));
  g_assert_cmpmem (now, now_len, old, old_len);
  g_autofree char *three = listing (dir);
  g_assert_cmpstr (three, ==, "model model.safetensors notes");
  source_clear (&s);
}

/* ---- the full-size SD 1.5 manifests (names and shapes only) ---- */

/* What a DreamBooth export of SD 1.5 writes: the UNet and text encoder from
 * the source in f16, the VAE as stored (f32). */
static void
check_entry (const DlCheckpointWriteEntry *e)
{
  g_assert_cmpint (e->dtype, ==, e->from_source ? DL_ST_F16 : DL_ST_F32);
  g_assert_true (e->from_source == !g_str_has_prefix (e->name, "vae."));
}

static void
test_sd15_manifests (void)
{
  g_autoptr (JsonParser) lp = mc_load_manifest ("sd15-ldm-keys.json");
  g_autoptr (JsonParser) dp = mc_load_manifest ("sd15-diffusers-keys.json");
  JsonObject *ldm = json_object_get_object_member (json_node_get_object (json_parser_get_root (lp)), "keys");
  JsonObject *dif = json_node_get_object (json_parser_get_root (dp));
  g_autoptr (GPtrArray) keys = sw_keys_from_json_object (ldm);
  g_assert_cmpuint (keys->len, ==, 1130);
  g_autofree char *path = tmp_path ("sd15-sparse.safetensors");
  sw_write_sparse (path, keys, NULL);
  g_autoptr (DlCheckpoint) base = cc_open_ok (path, NULL);

  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) single = dl_checkpoint_write_plan (base, &o, &error);
  g_assert_no_error (error);
  mc_check_write_plan (single, NULL, ldm, check_entry);

  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  g_autoptr (GPtrArray) folder = dl_checkpoint_write_plan (base, &o, &error);
  g_assert_no_error (error);
  JsonObject *files = json_object_get_object_member (dif, "files");
  for (guint i = 0; i < G_N_ELEMENTS (diffusers_files); i++)
    mc_check_write_plan (folder, diffusers_files[i], json_object_get_object_member (files, diffusers_files[i]),
                         check_entry);
  g_assert_cmpuint (folder->len, ==, 1130);

  /* SD 1.5's configs: every value the manifest lists */
  JsonObject *configs = json_object_get_object_member (dif, "configs");
  const char *cfg[][2] = { { "unet", "unet/config.json" },
                           { "vae", "vae/config.json" },
                           { "text_encoder", "text_encoder/config.json" } };
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
            g_error ("%s: %s is %s, SD 1.5 has %s", cfg[i][1], (char *)l->data, va, vb);
        }
    }
  dl_test_remove_tree (path);
}

/* ---- the safetensors writer's deferred tensors ---- */

typedef struct
{
  const guint8 *bytes;
  gboolean fail;
  guint calls;
} Deferred;

static gboolean
deferred_fill (gpointer out, gsize nbytes, gpointer user_data, GError **error)
{
  Deferred *d = user_data;
  d->calls++;
  if (d->fail)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "test: no bytes");
      return FALSE;
    }
  memcpy (out, d->bytes, nbytes);
  return TRUE;
}

static void
test_safetensors_deferred (void)
{
  const float a[6] = { 1, 2, 3, 4, 5, 6 };
  const guint16 b[3] = { 0x3c00, 0x4000, 0x4200 };
  Deferred da = { (const guint8 *)a, FALSE, 0 }, db = { (const guint8 *)b, FALSE, 0 };
  g_autoptr (DlSafetensorsWriter) plain = dl_safetensors_writer_new ();
  g_autoptr (DlSafetensorsWriter) lazy = dl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  for (int i = 0; i < 2; i++)
    {
      DlSafetensorsWriter *w = i ? lazy : plain;
      dl_safetensors_writer_set_metadata (w, "format", "pt");
      g_assert_true (dl_safetensors_writer_add (w, "z.small", DL_ST_F16, 1, (int64_t[]){ 0 }, NULL, 0, &error));
      if (i)
        {
          g_assert_true (dl_safetensors_writer_add_deferred (w, "b", DL_ST_F16, 1, (int64_t[]){ 3 }, deferred_fill, &db,
                                                             NULL, &error));
          g_assert_true (dl_safetensors_writer_add_deferred (w, "a", DL_ST_F32, 2, (int64_t[]){ 2, 3 }, deferred_fill,
                                                             &da, NULL, &error));
        }
      else
        {
          g_assert_true (dl_safetensors_writer_add (w, "b", DL_ST_F16, 1, (int64_t[]){ 3 }, b, sizeof b, &error));
          g_assert_true (dl_safetensors_writer_add (w, "a", DL_ST_F32, 2, (int64_t[]){ 2, 3 }, a, sizeof a, &error));
        }
    }
  /* a name twice, and a shape that fills no whole byte, are refused at once */
  g_assert_false (
    dl_safetensors_writer_add_deferred (lazy, "a", DL_ST_F32, 1, (int64_t[]){ 1 }, deferred_fill, &da, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (
    dl_safetensors_writer_add_deferred (lazy, "f4", DL_ST_F4, 1, (int64_t[]){ 3 }, deferred_fill, &da, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_autofree char *p1 = tmp_path ("plain.safetensors");
  g_autofree char *p2 = tmp_path ("lazy.safetensors");
  g_assert_true (dl_safetensors_writer_write (plain, p1, &error));
  g_assert_no_error (error);
  g_assert_true (dl_safetensors_writer_write (lazy, p2, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (da.calls, ==, 1);
  g_assert_cmpuint (db.calls, ==, 1);
  g_autofree char *c1 = NULL, *c2 = NULL;
  gsize l1, l2;
  g_assert_true (g_file_get_contents (p1, &c1, &l1, NULL));
  g_assert_true (g_file_get_contents (p2, &c2, &l2, NULL));
  g_assert_cmpmem (c2, l2, c1, l1);
  g_autofree char *h1 = dl_safetensors_writer_data_sha256 (plain);
  g_autofree char *h2 = dl_safetensors_writer_data_sha256 (lazy);
  g_assert_cmpstr (h2, ==, h1);
  g_autofree char *r1 = dl_safetensors_writer_range_sha256 (plain, NULL, 5, 100);
  g_autofree char *r2 = dl_safetensors_writer_range_sha256 (lazy, NULL, 5, 100);
  g_assert_cmpstr (r2, ==, r1);

  /* a failing fill: the error comes back, the file is as it was, no temporary is left */
  db.fail = TRUE;
  g_assert_false (dl_safetensors_writer_write (lazy, p2, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_FAILED);
  g_clear_error (&error);
  g_autofree char *c3 = NULL;
  gsize l3;
  g_assert_true (g_file_get_contents (p2, &c3, &l3, NULL));
  g_assert_cmpmem (c3, l3, c1, l1);
  g_autofree char *h3 = dl_safetensors_writer_data_sha256 (lazy);
  g_assert_null (h3);
  g_autoptr (GDir) d = g_dir_open (tmp_dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d)))
    g_assert_false (g_str_has_prefix (name, "lazy.safetensors."));
  dl_test_remove_tree (p1);
  dl_test_remove_tree (p2);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_ldm = dl_test_golden_path ("tiny-sd15-ldm.safetensors");
  g_diffusers = dl_test_golden_path ("tiny-sd15-diffusers");
  g_autofree char *m1 = dl_test_golden_path ("sd15-ldm-keys.json");
  g_autofree char *m2 = dl_test_golden_path ("sd15-diffusers-keys.json");
  if (!g_ldm || !g_diffusers || !m1 || !m2)
    return dl_test_skip_all ("the golden tiny model or the SD 1.5 key manifests are absent");
  tmp_dir = g_dir_make_tmp ("dl-test-checkpoint-writer-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  dl_test_add ("/io/checkpoint-writer/safetensors-deferred", test_safetensors_deferred);
  dl_test_add ("/io/checkpoint-writer/round-trip-from-diffusers", test_round_trip_from_diffusers);
  dl_test_add ("/io/checkpoint-writer/round-trip-from-single-file", test_round_trip_from_single_file);
  dl_test_add ("/io/checkpoint-writer/configs-match-golden", test_configs_match_golden);
  dl_test_add ("/io/checkpoint-writer/f16", test_f16);
  dl_test_add ("/io/checkpoint-writer/failures-leave-nothing", test_failures_leave_nothing);
  dl_test_add ("/io/checkpoint-writer/sd15-manifests", test_sd15_manifests);
  int ret = dl_test_run ();
  dl_test_remove_tree (tmp_dir);
  g_free (tmp_dir);
  g_free (g_ldm);
  g_free (g_diffusers);
  return ret;
}
