/* Stable Diffusion checkpoints (dl-checkpoint): the golden tiny SD 1.5 model
 * in both layouts, the full-size SD 1.5 key manifests as sparse files, family
 * detection, missing and unknown keys, f16/bf16 weights, the configuration
 * sources in their order, and a .ckpt written in torch.save's layout.
 *
 * Everything here is built from ../shared/golden at run time; without it the
 * whole program reports SKIP. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "dl-half.h"
#include "io/dl-checkpoint.h"
#include "io/dl-keymap.h"
#include "checkpoint-check.h"
#include "manifest-check.h"
#include "sparse-writer.h"
#include "torch-writer.h"

static char *g_ldm;       /* tiny-sd15-ldm.safetensors */
static char *g_diffusers; /* tiny-sd15-diffusers/ */

static void
write_text (const char *path, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
}

/* A link to a golden file under the scratch subfolder (`name`) (no copy of the weights). */
static char *
link_golden (const char *golden_file, const char *name)
{
  char *p = cc_scratch_path (name);
  g_assert_cmpint (symlink (golden_file, p), ==, 0);
  return p;
}

/* JSON of a golden config file, to be changed and written elsewhere. */
static JsonNode *
golden_config (const char *relative)
{
  g_autofree char *path = g_build_filename (g_diffusers, relative, NULL);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (p, path, &error));
  return json_node_copy (json_parser_get_root (p));
}

static void
write_json (const char *path, JsonNode *node)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, node);
  g_autoptr (GError) error = NULL;
  g_assert_true (json_generator_to_file (gen, path, &error));
}

/* <scratch subfolder>/<dir>/{unet,vae,text_encoder}/config.json and
 * scheduler/scheduler_config.json copied from the tiny model */
static char *
copy_golden_configs (const char *dir)
{
  const char *files[] = { "unet/config.json", "vae/config.json", "text_encoder/config.json",
                          "scheduler/scheduler_config.json" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *rel = g_build_filename (dir, files[i], NULL);
      g_autofree char *out = cc_scratch_path (rel);
      g_autoptr (JsonNode) n = golden_config (files[i]);
      write_json (out, n);
    }
  return cc_scratch_path (dir);
}

static void
edit_config (const char *dir, const char *file, const char *member, JsonNode *value /* NULL: remove */)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_assert_true (json_parser_load_from_file (p, path, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (p));
  if (value)
    json_object_set_member (o, member, value);
  else
    json_object_remove_member (o, member);
  write_json (path, json_parser_get_root (p));
}

static JsonNode *
jstr (const char *s)
{
  JsonNode *n = json_node_new (JSON_NODE_VALUE);
  json_node_set_string (n, s);
  return n;
}

static JsonNode *
jint (gint64 v)
{
  JsonNode *n = json_node_new (JSON_NODE_VALUE);
  json_node_set_int (n, v);
  return n;
}

static char *
config_value (DlCheckpoint *ck, const char *field)
{
  int idx = dl_model_config_field_index (field);
  g_assert_cmpint (idx, >=, 0);
  return dl_model_config_field_to_string (dl_checkpoint_get_config (ck), (guint)idx);
}

static void
assert_config (DlCheckpoint *ck, const char *field, const char *value, const char *source)
{
  g_autofree char *v = config_value (ck, field);
  if (g_strcmp0 (v, value) != 0)
    g_error ("%s = %s, expected %s", field, v, value);
  if (source && g_strcmp0 (dl_checkpoint_get_config_source (ck, field), source) != 0)
    g_error ("%s comes from %s, expected %s", field, dl_checkpoint_get_config_source (ck, field), source);
}

/* ---- the golden tiny model in both layouts ---- */

static void
test_golden_both_layouts (void)
{
  g_autoptr (DlCheckpoint) d = cc_open_ok (g_diffusers, NULL);
  g_autoptr (DlCheckpoint) s = cc_open_ok (g_ldm, g_diffusers);
  g_assert_cmpint (dl_checkpoint_get_layout (d), ==, DL_CHECKPOINT_DIFFUSERS);
  g_assert_cmpint (dl_checkpoint_get_layout (s), ==, DL_CHECKPOINT_SINGLE_FILE);
  g_assert_cmpint (dl_checkpoint_get_family (d), ==, DL_FAMILY_SD1);
  g_assert_cmpint (dl_checkpoint_get_family (s), ==, DL_FAMILY_SD1);

  /* every tensor of both files is a parameter, and nothing else is there */
  g_assert_cmpuint (dl_checkpoint_get_n_params (d), ==, 860);
  g_assert_cmpuint (dl_checkpoint_get_n_params (s), ==, 860);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (d)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (s)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_ignored_keys (d)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_ignored_keys (s)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_config_warnings (d)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_config_warnings (s)->len, ==, 0);

  /* the same configuration, field by field */
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    {
      g_autofree char *a = dl_model_config_field_to_string (dl_checkpoint_get_config (d), i);
      g_autofree char *b = dl_model_config_field_to_string (dl_checkpoint_get_config (s), i);
      if (g_strcmp0 (a, b) != 0)
        g_error ("%s: %s (diffusers) vs %s (single file)", dl_model_config_field_name (i), a, b);
    }
  g_autofree char *unet_cfg = g_build_filename (g_diffusers, "unet", "config.json", NULL);
  g_autofree char *text_cfg = g_build_filename (g_diffusers, "text_encoder", "config.json", NULL);
  assert_config (s, "unet.block_out_channels", "[32, 32, 64, 64]", "weights");
  assert_config (s, "unet.level_has_attention", "[true, true, true, false]", "weights");
  assert_config (s, "unet.layers_per_block", "2", "weights");
  assert_config (s, "unet.cross_attention_dim", "32", "weights");
  assert_config (s, "unet.attention_heads", "[4, 4, 4, 4]", unet_cfg);
  assert_config (s, "unet.mid_attention_heads", "4", unet_cfg);
  assert_config (s, "unet.norm_num_groups", "8", unet_cfg);
  assert_config (s, "unet.use_linear_projection", "false", "weights");
  assert_config (s, "vae.block_out_channels", "[32, 64]", "weights");
  assert_config (s, "vae.layers_per_block", "1", "weights");
  assert_config (s, "text_encoder.hidden_size", "32", "weights");
  assert_config (s, "text_encoder.n_layers", "3", "weights");
  assert_config (s, "text_encoder.n_heads", "4", text_cfg);
  assert_config (s, "text_encoder.vocab_size", "49408", "weights");
  assert_config (s, "text_encoder.hidden_act", "quick_gelu", text_cfg);

  /* identical internal names, shapes and values */
  DlLdmLayout layout;
  dl_ldm_layout_from_config (dl_checkpoint_get_config (s), &layout);
  guint64 per_component[DL_N_COMPONENTS] = { 0 };
  for (guint i = 0; i < dl_checkpoint_get_n_params (d); i++)
    {
      const DlCheckpointParam *a = dl_checkpoint_get_param (d, i);
      const DlCheckpointParam *b = dl_checkpoint_get_param (s, i);
      g_assert_cmpstr (a->name, ==, b->name);
      g_assert_cmpint (a->component, ==, b->component);
      g_assert_cmpint (a->ndim, ==, b->ndim);
      g_assert_cmpmem (a->shape, a->ndim * sizeof (int64_t), b->shape, b->ndim * sizeof (int64_t));
      g_assert_cmpint (a->numel, ==, b->numel);
      g_assert_cmpint (a->dtype, ==, DL_ST_F32);
      g_assert_true (dl_checkpoint_find (s, a->name) == b);
      /* the diffusers key is the internal name without its component */
      g_assert_cmpstr (a->file_key, ==, a->name + strlen (dl_component_name (a->component)) + 1);
      /* the LDM key maps back */
      g_autofree char *ldm = dl_keymap_internal_to_ldm (a->name, &layout);
      g_assert_cmpstr (ldm, ==, b->file_key);
      g_autofree char *back = dl_keymap_ldm_to_internal (b->file_key, &layout);
      g_assert_cmpstr (back, ==, a->name);

      g_autoptr (GError) error = NULL;
      int64_t na = -1, nb = -1;
      g_autofree float *va = dl_checkpoint_read_f32 (d, a->name, &na, &error);
      g_assert_no_error (error);
      g_autofree float *vb = dl_checkpoint_read_f32 (s, b->name, &nb, &error);
      g_assert_no_error (error);
      g_assert_cmpint (na, ==, a->numel);
      g_assert_cmpint (nb, ==, a->numel);
      g_assert_cmpmem (va, na * sizeof (float), vb, nb * sizeof (float));
      per_component[a->component] += (guint64)a->numel;
    }
  /* the tiny golden model's parameter counts (numel summed over each component) */
  g_assert_cmpuint (per_component[DL_COMPONENT_TEXT_ENCODER], ==, 1609216);
  g_assert_cmpuint (per_component[DL_COMPONENT_UNET], ==, 2446788);
  g_assert_cmpuint (per_component[DL_COMPONENT_VAE], ==, 658375);

  /* the VAE mid attention: a 1x1 conv in the LDM file, Linear inside */
  const DlCheckpointParam *q = dl_checkpoint_find (s, "vae.decoder.mid_block.attentions.0.to_q.weight");
  g_assert_nonnull (q);
  g_assert_cmpint (q->ndim, ==, 2);
  g_assert_cmpstr (q->file_key, ==, "first_stage_model.decoder.mid.attn_1.q.weight");

  /* tokenizer folder and metadata */
  g_autofree char *tok = g_build_filename (g_diffusers, "tokenizer", NULL);
  g_assert_cmpstr (dl_checkpoint_get_tokenizer_dir (d), ==, tok);
  g_assert_cmpstr (dl_checkpoint_get_tokenizer_dir (s), ==, tok);
  g_assert_null (dl_checkpoint_get_safetensors (d));
  g_assert_nonnull (dl_checkpoint_get_safetensors (s));
  g_assert_cmpstr (dl_safetensors_get_metadata (dl_checkpoint_get_safetensors (s), "format"), ==, "pt");

  g_autoptr (GError) error = NULL;
  g_assert_null (dl_checkpoint_read_f32 (s, "unet.no_such_thing", NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

/* Uploads in the internal shape, converted as asked. */
static void
test_golden_upload (void)
{
  g_autoptr (DlCheckpoint) s = cc_open_ok (g_ldm, g_diffusers);
  const char *names[] = { "vae.encoder.mid_block.attentions.0.to_v.weight", "unet.conv_in.weight",
                          "text_encoder.text_model.final_layer_norm.bias" };
  const DlDType dtypes[] = { DL_DTYPE_F32, DL_DTYPE_F16, DL_DTYPE_BF16 };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    for (guint k = 0; k < G_N_ELEMENTS (dtypes); k++)
      {
        g_autoptr (GError) error = NULL;
        const DlCheckpointParam *p = dl_checkpoint_find (s, names[i]);
        g_autoptr (DlTensor) t = dl_checkpoint_upload (s, names[i], dl_test_device (), dtypes[k], &error);
        g_assert_no_error (error);
        g_assert_cmpint (t->ndim, ==, p->ndim);
        for (int d = 0; d < p->ndim; d++)
          g_assert_cmpint (t->shape[d], ==, p->shape[d]);
        g_autofree float *want = dl_checkpoint_read_f32 (s, names[i], NULL, &error);
        g_autofree float *got = dl_test_download (t);
        for (int64_t e = 0; e < p->numel; e++)
          {
            float w = dtypes[k] == DL_DTYPE_F16    ? dl_f16_to_f32 (dl_f32_to_f16 (want[e]))
                      : dtypes[k] == DL_DTYPE_BF16 ? dl_bf16_to_f32 (dl_f32_to_bf16 (want[e]))
                                                   : want[e];
            g_assert_cmpfloat (got[e], ==, w);
          }
      }
}

/* ---- configuration sources ---- */

/* The tiny text encoder is 32 wide: CLIP's head width 64 cannot be the default. */
static void
test_single_file_needs_config (void)
{
  cc_open_fails (g_ldm, NULL, DL_ERROR_INVALID_FILE, "text_encoder.n_heads", "--config", NULL);
}

static void
test_config_order (void)
{
  cc_scratch_use ("config_order");
  g_autofree char *model = link_golden (g_ldm, "model.safetensors");
  g_autofree char *yaml = cc_scratch_path ("model.yaml");
  write_text (yaml, "model:\n"
                    "  target: ldm.models.diffusion.ddpm.LatentDiffusion\n"
                    "  params:\n"
                    "    linear_start: 0.00085\n"
                    "    linear_end: 0.02\n"
                    "    timesteps: 1000\n"
                    "    scale_factor: 0.13025\n"
                    "    parameterization: \"v\"\n"
                    "    unet_config:\n"
                    "      params:\n"
                    "        num_heads: 2\n"
                    "        context_dim: 32\n"
                    "        use_linear_in_transformer: false\n");
  g_autofree char *cfg = copy_golden_configs ("cfg");
  edit_config (cfg, "scheduler/scheduler_config.json", "prediction_type", NULL);
  edit_config (cfg, "scheduler/scheduler_config.json", "beta_end", NULL);
  edit_config (cfg, "scheduler/scheduler_config.json", "timestep_spacing", NULL);
  edit_config (cfg, "unet/config.json", "in_channels", jint (5));
  g_autofree char *unet_cfg = g_build_filename (cfg, "unet", "config.json", NULL);
  g_autofree char *sched_cfg = g_build_filename (cfg, "scheduler", "scheduler_config.json", NULL);
  g_autofree char *vae_cfg = g_build_filename (cfg, "vae", "config.json", NULL);

  /* 1. weights, 2. --config, 3. sidecar yaml, 4. SD 1.x defaults */
  {
    g_autoptr (DlCheckpoint) ck = cc_open_ok (model, cfg);
    assert_config (ck, "unet.in_channels", "4", "weights");
    assert_config (ck, "unet.attention_heads", "[4, 4, 4, 4]", unet_cfg);
    assert_config (ck, "scheduler.beta_start", "0.00085", sched_cfg);
    assert_config (ck, "scheduler.beta_end", "0.02", yaml);
    assert_config (ck, "scheduler.prediction_type", "v_prediction", yaml);
    assert_config (ck, "vae.scaling_factor", "0.18215", vae_cfg);
    assert_config (ck, "scheduler.timestep_spacing", "leading", "SD 1.x default");
    /* a config that contradicts the weights is named, the weights win */
    GPtrArray *w = dl_checkpoint_get_config_warnings (ck);
    g_assert_cmpuint (w->len, ==, 1);
    g_assert_nonnull (strstr (w->pdata[0], "unet.in_channels = 5"));
    g_assert_nonnull (strstr (w->pdata[0], unet_cfg));
  }
  /* without attention_head_dim in the config, the yaml's num_heads */
  edit_config (cfg, "unet/config.json", "attention_head_dim", NULL);
  {
    g_autoptr (DlCheckpoint) ck = cc_open_ok (model, cfg);
    assert_config (ck, "unet.attention_heads", "[2, 2, 2, 2]", yaml);
    assert_config (ck, "unet.mid_attention_heads", "2", yaml);
  }
  /* without the yaml either, SD 1.x's 8 heads */
  g_assert_cmpint (g_unlink (yaml), ==, 0);
  {
    g_autoptr (DlCheckpoint) ck = cc_open_ok (model, cfg);
    assert_config (ck, "unet.attention_heads", "[8, 8, 8, 8]", "SD 1.x default");
    assert_config (ck, "scheduler.prediction_type", "epsilon", "SD 1.x default");
    assert_config (ck, "vae.scaling_factor", "0.18215", vae_cfg);
  }
  /* the name "<file>.safetensors.yaml" is accepted too */
  g_autofree char *yaml2 = cc_scratch_path ("model.safetensors.yaml");
  write_text (yaml2, "model:\n  params:\n    parameterization: eps\n    unet_config:\n      params:\n"
                     "        num_heads: 1\n");
  {
    g_autoptr (DlCheckpoint) ck = cc_open_ok (model, cfg);
    assert_config (ck, "unet.attention_heads", "[1, 1, 1, 1]", yaml2);
  }

  /* bad sources are errors naming the file and the key */
  write_text (yaml2, "model:\n  params:\n    parameterization: sideways\n");
  cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, yaml2, "parameterization", "sideways", NULL);
  write_text (yaml2, "model:\n  params: [unclosed\n");
  cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, yaml2, "YAML", NULL);
  write_text (yaml2, "just: text\n");
  cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, yaml2, "not an LDM config", NULL);
  g_assert_cmpint (g_unlink (yaml2), ==, 0);
  edit_config (cfg, "unet/config.json", "attention_head_dim", jstr ("four"));
  cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, unet_cfg, "attention_head_dim", NULL);
  edit_config (cfg, "unet/config.json", "attention_head_dim", jint (3));
  cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, "unet.attention_heads", unet_cfg, NULL);
  write_text (unet_cfg, "{\"attention_head_dim\": 4,");
  cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, unet_cfg, NULL);
  g_autofree char *nowhere = cc_scratch_path ("no-such-config");
  cc_open_fails (model, nowhere, DL_ERROR_INVALID_ARGUMENT, nowhere, NULL);
}

/* ---- synthetic files from the tiny model's keys ---- */

static GPtrArray *
tiny_ldm_keys (void)
{
  return sw_keys_from_safetensors (g_ldm);
}

static void
set_dim (GPtrArray *keys, const char *name, int axis, int64_t value)
{
  SwKey *k = sw_keys_find (keys, name);
  g_assert_nonnull (k);
  k->shape[axis] = value;
}

/* SD 2.x UNets cross-attend to a 1024-wide context */
static void
make_context_1024 (GPtrArray *keys)
{
  for (guint i = 0; i < keys->len; i++)
    {
      SwKey *k = keys->pdata[i];
      if (strstr (k->name, "attn2.to_k.weight") || strstr (k->name, "attn2.to_v.weight"))
        k->shape[1] = 1024;
    }
}

/* the OpenCLIP text tower of SD 2.x instead of CLIP's */
static void
make_openclip (GPtrArray *keys)
{
  for (guint i = keys->len; i-- > 0;)
    if (g_str_has_prefix (((SwKey *)keys->pdata[i])->name, "cond_stage_model."))
      g_ptr_array_remove_index (keys, i);
  sw_keys_add (keys, "cond_stage_model.model.token_embedding.weight", DL_ST_F32, 2, (int64_t[]){ 49408, 1024 });
  sw_keys_add (keys, "cond_stage_model.model.positional_embedding", DL_ST_F32, 2, (int64_t[]){ 77, 1024 });
  sw_keys_add (keys, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", DL_ST_F32, 2,
               (int64_t[]){ 3072, 1024 });
}

static char *
write_keys (const char *name, GPtrArray *keys)
{
  char *path = cc_scratch_path (name);
  sw_write_sparse (path, keys, NULL);
  return path;
}

static void
test_family_single_file (void)
{
  cc_scratch_use ("family_single");
  /* control: the tiny model's own keys */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    g_autofree char *p = write_keys ("sd1.safetensors", k);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (p, g_diffusers);
    g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SD1);
  }
  /* inpainting: 9 input channels (4 latent + 4 masked image + mask) */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    set_dim (k, "model.diffusion_model.input_blocks.0.0.weight", 1, 9);
    g_autofree char *p = write_keys ("sd1-inpaint.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_UNSUPPORTED, p, "recognised as Stable Diffusion 1.x inpainting",
                   "not supported yet", NULL);
  }
  /* SD 2.x by its context width; v-prediction from a sidecar yaml or a config */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    make_context_1024 (k);
    g_autofree char *p = write_keys ("sd2.safetensors", k);
    cc_open_fails (p, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x, not supported yet", NULL);
    g_autofree char *yaml = cc_scratch_path ("sd2.yaml");
    write_text (yaml, "model:\n  params:\n    parameterization: \"v\"\n    unet_config:\n      params:\n"
                      "        num_head_channels: 64\n        use_linear_in_transformer: true\n");
    cc_open_fails (p, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x (v-prediction)", NULL);
    g_assert_cmpint (g_unlink (yaml), ==, 0);
    /* a diffusers SD 2.1-v config: head counts per level, v_prediction */
    g_autofree char *cfg = copy_golden_configs ("sd2v-config");
    JsonNode *heads = json_node_new (JSON_NODE_ARRAY);
    json_node_take_array (heads, json_array_new ());
    for (int i = 0; i < 4; i++)
      json_array_add_int_element (json_node_get_array (heads), (gint64[]){ 5, 10, 20, 20 }[i]);
    edit_config (cfg, "unet/config.json", "attention_head_dim", heads);
    edit_config (cfg, "scheduler/scheduler_config.json", "prediction_type", jstr ("v_prediction"));
    cc_open_fails (p, cfg, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x (v-prediction)", NULL);
    edit_config (cfg, "scheduler/scheduler_config.json", "prediction_type", jstr ("epsilon"));
    cc_open_fails (p, cfg, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x, not supported yet", NULL);
  }
  /* SD 2.x by its OpenCLIP text encoder; with 9 channels, SD 2.x inpainting */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    make_openclip (k);
    g_autofree char *p = write_keys ("sd2-openclip.safetensors", k);
    cc_open_fails (p, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x, not supported yet", NULL);
    set_dim (k, "model.diffusion_model.input_blocks.0.0.weight", 1, 9);
    g_autofree char *p2 = write_keys ("sd2-inpaint.safetensors", k);
    cc_open_fails (p2, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x inpainting", NULL);
  }
  /* SDXL: two text encoders under conditioner.embedders (SGM single files load:
   * test-checkpoint-sdxl.c; these SD 1.x weights do not fit the SDXL markers) */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    for (guint i = k->len; i-- > 0;)
      if (g_str_has_prefix (((SwKey *)k->pdata[i])->name, "cond_stage_model."))
        g_ptr_array_remove_index (k, i);
    sw_keys_add (k, "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", DL_ST_F16, 1,
                 (int64_t[]){ 768 });
    sw_keys_add (k, "conditioner.embedders.1.model.ln_final.weight", DL_ST_F16, 1, (int64_t[]){ 1280 });
    sw_keys_add (k, "model.diffusion_model.label_emb.0.0.weight", DL_ST_F16, 2, (int64_t[]){ 1280, 2816 });
    g_autofree char *p = write_keys ("sdxl.safetensors", k);
    cc_open_fails (p, NULL, DL_ERROR_INVALID_FILE, p, "model.diffusion_model.label_emb.0.0.weight", NULL);
    set_dim (k, "model.diffusion_model.input_blocks.0.0.weight", 1, 9);
    g_autofree char *p2 = write_keys ("sdxl-inpaint.safetensors", k);
    cc_open_fails (p2, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion XL inpainting", NULL);
  }
  /* files that are not a model at all say what they look like */
  {
    g_autoptr (GPtrArray) k = sw_keys_new ();
    sw_keys_add (k, "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", DL_ST_F16, 2,
                 (int64_t[]){ 4, 320 });
    g_autofree char *p = write_keys ("lora.safetensors", k);
    cc_open_fails (p, NULL, DL_ERROR_INVALID_FILE, p, "not a Stable Diffusion checkpoint", "LoRA", NULL);
    g_autoptr (GPtrArray) v = sw_keys_new ();
    sw_keys_add (v, "encoder.down.0.block.0.conv1.weight", DL_ST_F32, 4, (int64_t[]){ 128, 128, 3, 3 });
    g_autofree char *pv = write_keys ("vae.safetensors", v);
    cc_open_fails (pv, NULL, DL_ERROR_INVALID_FILE, "standalone VAE", NULL);
    g_autoptr (GPtrArray) t = sw_keys_new ();
    sw_keys_add (t, "emb_params", DL_ST_F32, 2, (int64_t[]){ 2, 768 });
    g_autofree char *pt = write_keys ("ti.safetensors", t);
    cc_open_fails (pt, NULL, DL_ERROR_INVALID_FILE, "textual-inversion", NULL);
    g_autofree char *unet = g_build_filename (g_diffusers, "unet", "diffusion_pytorch_model.safetensors", NULL);
    g_autoptr (GPtrArray) u = sw_keys_from_safetensors (unet);
    g_autofree char *pu = write_keys ("unet-only.safetensors", u);
    cc_open_fails (pu, NULL, DL_ERROR_INVALID_FILE, "diffusers names", NULL);
  }
}

/* A diffusers folder of sparse files from the tiny model's keys (plus its
 * configs); `edit` changes the keys of one component. */
typedef void (*KeyEdit) (const char *component, GPtrArray *keys);

static char *
make_diffusers (const char *dir, KeyEdit edit)
{
  const char *comps[][2] = { { "unet", "diffusion_pytorch_model.safetensors" },
                             { "vae", "diffusion_pytorch_model.safetensors" },
                             { "text_encoder", "model.safetensors" } };
  g_autofree char *cfg = copy_golden_configs (dir);
  for (guint i = 0; i < G_N_ELEMENTS (comps); i++)
    {
      g_autofree char *src = g_build_filename (g_diffusers, comps[i][0], comps[i][1], NULL);
      g_autoptr (GPtrArray) k = sw_keys_from_safetensors (src);
      if (edit)
        edit (comps[i][0], k);
      g_autofree char *rel = g_build_filename (dir, comps[i][0], comps[i][1], NULL);
      g_autofree char *out = cc_scratch_path (rel);
      sw_write_sparse (out, k, (const char *[]){ "format", "pt", NULL });
    }
  g_autofree char *index = g_build_filename (g_diffusers, "model_index.json", NULL);
  g_autofree char *index_rel = g_build_filename (dir, "model_index.json", NULL);
  g_autofree char *index_out = cc_scratch_path (index_rel);
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (index, &text, NULL, NULL));
  write_text (index_out, text);
  return g_steal_pointer (&cfg);
}

static void
edit_openclip_width (const char *component, GPtrArray *keys)
{
  if (strcmp (component, "text_encoder") == 0)
    set_dim (keys, "text_model.embeddings.token_embedding.weight", 1, 1024);
}

static void
edit_inpaint (const char *component, GPtrArray *keys)
{
  if (strcmp (component, "unet") == 0)
    set_dim (keys, "conv_in.weight", 1, 9);
}

static void
edit_missing_unet_key (const char *component, GPtrArray *keys)
{
  if (strcmp (component, "unet") == 0)
    g_assert_true (sw_keys_remove (keys, "mid_block.attentions.0.proj_in.weight"));
}

static void
edit_extras (const char *component, GPtrArray *keys)
{
  if (strcmp (component, "text_encoder") == 0)
    sw_keys_add (keys, "text_model.embeddings.position_ids", DL_ST_I64, 2, (int64_t[]){ 1, 77 });
  if (strcmp (component, "unet") == 0)
    sw_keys_add (keys, "something_new.weight", DL_ST_F32, 1, (int64_t[]){ 3 });
}

static void
edit_old_vae_names (const char *component, GPtrArray *keys)
{
  if (strcmp (component, "vae") != 0)
    return;
  /* diffusers < 0.14: query/key/value/proj_attn, proj_attn as [C, C, 1] */
  const char *renames[][2] = {
    { "to_q.", "query." }, { "to_k.", "key." }, { "to_v.", "value." }, { "to_out.0.", "proj_attn." }
  };
  for (guint i = 0; i < keys->len; i++)
    {
      SwKey *k = keys->pdata[i];
      char *p = strstr (k->name, "mid_block.attentions.0.");
      if (!p)
        continue;
      p += strlen ("mid_block.attentions.0.");
      for (guint r = 0; r < G_N_ELEMENTS (renames); r++)
        if (g_str_has_prefix (p, renames[r][0]))
          {
            char *n =
              g_strdup_printf ("%.*s%s%s", (int)(p - k->name), k->name, renames[r][1], p + strlen (renames[r][0]));
            g_free (k->name);
            k->name = n;
            if (r == 3 && k->ndim == 2)
              k->shape[k->ndim++] = 1;
            break;
          }
    }
}

static void
test_family_diffusers (void)
{
  cc_scratch_use ("family_diffusers");
  {
    g_autofree char *d = make_diffusers ("sd1", NULL);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (d, NULL);
    g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SD1);
    g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 860);
  }
  {
    g_autofree char *d = make_diffusers ("sd2", edit_openclip_width);
    cc_open_fails (d, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x, not supported yet", NULL);
    edit_config (d, "scheduler/scheduler_config.json", "prediction_type", jstr ("v_prediction"));
    cc_open_fails (d, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 2.x (v-prediction)", NULL);
  }
  {
    g_autofree char *d = make_diffusers ("sd1-inpaint", edit_inpaint);
    cc_open_fails (d, NULL, DL_ERROR_UNSUPPORTED, "recognised as Stable Diffusion 1.x inpainting", NULL);
  }
  {
    g_autofree char *d = make_diffusers ("sdxl", NULL);
    g_autofree char *te2 = g_build_filename (d, "text_encoder_2", NULL);
    g_assert_cmpint (g_mkdir (te2, 0700), ==, 0);
    cc_open_fails (d, NULL, DL_ERROR_INVALID_FILE, "no text_encoder_2 weights", NULL);
    /* the refiner: text_encoder_2 alone */
    g_autofree char *te1 = g_build_filename (d, "text_encoder", NULL);
    g_autofree char *w1 = g_build_filename (te1, "model.safetensors", NULL);
    g_autofree char *w2 = g_build_filename (te2, "model.safetensors", NULL);
    g_assert_cmpint (g_rename (w1, w2), ==, 0);
    g_autofree char *c1 = g_build_filename (te1, "config.json", NULL);
    g_unlink (c1);
    g_assert_cmpint (g_rmdir (te1), ==, 0);
    cc_open_fails (d, NULL, DL_ERROR_UNSUPPORTED, "SDXL refiner", "base models", NULL);
  }
  /* --config comes before a folder's own configs, which fill what it lacks */
  {
    g_autofree char *d = make_diffusers ("own-and-config", NULL);
    g_autofree char *cfg = copy_golden_configs ("override");
    g_autofree char *text_cfg = g_build_filename (cfg, "text_encoder", "config.json", NULL);
    g_assert_cmpint (g_unlink (text_cfg), ==, 0);
    edit_config (cfg, "unet/config.json", "attention_head_dim", jint (2));
    g_autoptr (DlCheckpoint) ck = cc_open_ok (d, cfg);
    g_autofree char *unet_cfg = g_build_filename (cfg, "unet", "config.json", NULL);
    g_autofree char *own_text = g_build_filename (d, "text_encoder", "config.json", NULL);
    assert_config (ck, "unet.attention_heads", "[2, 2, 2, 2]", unet_cfg);
    assert_config (ck, "text_encoder.n_heads", "4", own_text);
  }
  /* a missing key is named with its component */
  {
    g_autofree char *d = make_diffusers ("missing", edit_missing_unet_key);
    cc_open_fails (d, NULL, DL_ERROR_INVALID_FILE, "mid_block.attentions.0.proj_in.weight", "unet/", NULL);
  }
  /* extra keys: known buffers ignored, the rest reported */
  {
    g_autofree char *d = make_diffusers ("extras", edit_extras);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (d, NULL);
    GPtrArray *unknown = dl_checkpoint_get_unknown_keys (ck), *ignored = dl_checkpoint_get_ignored_keys (ck);
    g_assert_cmpuint (unknown->len, ==, 1);
    g_assert_cmpstr (unknown->pdata[0], ==, "unet/something_new.weight");
    g_assert_cmpuint (ignored->len, ==, 1);
    g_assert_cmpstr (ignored->pdata[0], ==, "text_encoder/text_model.embeddings.position_ids");
    g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 860);
  }
  /* the older VAE attention names load as the new ones */
  {
    g_autofree char *d = make_diffusers ("old-vae", edit_old_vae_names);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (d, NULL);
    const DlCheckpointParam *p = dl_checkpoint_find (ck, "vae.decoder.mid_block.attentions.0.to_out.0.weight");
    g_assert_nonnull (p);
    g_assert_cmpstr (p->file_key, ==, "decoder.mid_block.attentions.0.proj_attn.weight");
    g_assert_cmpint (p->ndim, ==, 2);
    g_assert_cmpuint (dl_checkpoint_get_unknown_keys (ck)->len, ==, 0);
  }
  /* a folder that is not a model; a component without weights */
  {
    g_autofree char *d = cc_scratch_path ("empty-folder");
    g_assert_cmpint (g_mkdir_with_parents (d, 0700), ==, 0);
    cc_open_fails (d, NULL, DL_ERROR_INVALID_FILE, d, "not a diffusers model", NULL);
    g_autofree char *d2 = make_diffusers ("no-vae", NULL);
    g_autofree char *vae = g_build_filename (d2, "vae", "diffusion_pytorch_model.safetensors", NULL);
    g_assert_cmpint (g_unlink (vae), ==, 0);
    cc_open_fails (d2, NULL, DL_ERROR_INVALID_FILE, "no vae weights", "vae/diffusion_pytorch_model.safetensors", NULL);
  }
}

/* Missing keys, wrong shapes and dtypes in a single file; unknown keys,
 * EMA copies, schedule buffers and old CLIP names. */
static void
test_single_file_keys (void)
{
  cc_scratch_use ("single_keys");
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    g_assert_true (sw_keys_remove (k, "model.diffusion_model.middle_block.1.proj_in.weight"));
    g_autofree char *p = write_keys ("missing-unet.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, p, "missing tensor",
                   "model.diffusion_model.middle_block.1.proj_in.weight", "unet.mid_block.attentions.0.proj_in.weight",
                   NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    g_assert_true (sw_keys_remove (k, "first_stage_model.decoder.up.0.block.1.conv2.bias"));
    g_autofree char *p = write_keys ("missing-vae.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, "first_stage_model.decoder.up.0.block.1.conv2.bias",
                   "vae.decoder.up_blocks.1.resnets.1.conv2.bias", NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    g_assert_true (sw_keys_remove (k, "cond_stage_model.transformer.text_model.final_layer_norm.weight"));
    g_autofree char *p = write_keys ("missing-clip.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE,
                   "cond_stage_model.transformer.text_model.final_layer_norm.weight", NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    set_dim (k, "model.diffusion_model.out.2.weight", 2, 5);
    g_autofree char *p = write_keys ("bad-shape.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, "model.diffusion_model.out.2.weight", "[4, 32, 5, 3]",
                   "[4, 32, 3, 3]", NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    sw_keys_find (k, "model.diffusion_model.out.2.bias")->dtype = DL_ST_I32;
    g_autofree char *p = write_keys ("bad-dtype.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_UNSUPPORTED, "model.diffusion_model.out.2.bias", "I32", NULL);
  }
  /* what real SD 1.x files carry besides the weights: non-pruned files hold
   * EMA copies, every file the schedule buffers */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    guint n = k->len;
    for (guint i = 0; i < n; i++)
      {
        SwKey *src = k->pdata[i];
        if (!g_str_has_prefix (src->name, "model.diffusion_model."))
          continue;
        /* diffusers' rule: "model_ema." + the key without "model." and its dots */
        g_auto (GStrv) parts = g_strsplit (src->name + strlen ("model."), ".", -1);
        g_autofree char *flat = g_strjoinv ("", parts);
        g_autofree char *ema = g_strconcat ("model_ema.", flat, NULL);
        sw_keys_add (k, ema, src->dtype, src->ndim, src->shape);
      }
    sw_keys_add (k, "model_ema.decay", DL_ST_F32, 0, NULL);
    sw_keys_add (k, "model_ema.num_updates", DL_ST_I32, 0, NULL);
    const char *buffers[] = { "betas",
                              "alphas_cumprod",
                              "alphas_cumprod_prev",
                              "sqrt_alphas_cumprod",
                              "sqrt_one_minus_alphas_cumprod",
                              "log_one_minus_alphas_cumprod",
                              "sqrt_recip_alphas_cumprod",
                              "sqrt_recipm1_alphas_cumprod",
                              "posterior_variance",
                              "posterior_log_variance_clipped",
                              "posterior_mean_coef1",
                              "posterior_mean_coef2" };
    for (guint i = 0; i < G_N_ELEMENTS (buffers); i++)
      sw_keys_add (k, buffers[i], DL_ST_F32, 1, (int64_t[]){ 1000 });
    sw_keys_add (k, "cond_stage_model.transformer.text_model.embeddings.position_ids", DL_ST_I64, 2,
                 (int64_t[]){ 1, 77 });
    sw_keys_add (k, "model.diffusion_model.extra_thing.weight", DL_ST_F32, 1, (int64_t[]){ 2 });
    sw_keys_add (k, "foo.bar", DL_ST_F16, 1, (int64_t[]){ 2 });
    g_autofree char *p = write_keys ("full-ema.safetensors", k);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (p, g_diffusers);
    g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 860);
    GPtrArray *unknown = dl_checkpoint_get_unknown_keys (ck);
    g_assert_cmpuint (unknown->len, ==, 2);
    g_assert_cmpstr (unknown->pdata[0], ==, "foo.bar");
    g_assert_cmpstr (unknown->pdata[1], ==, "model.diffusion_model.extra_thing.weight");
    GPtrArray *ignored = dl_checkpoint_get_ignored_keys (ck);
    g_assert_cmpuint (ignored->len, ==, 684 + 2 + 12 + 1);
    g_assert_true (cc_strings_contain (ignored, "model_ema.diffusion_modelinput_blocks00weight"));
    g_assert_true (cc_strings_contain (ignored, "betas"));
    g_assert_true (cc_strings_contain (ignored, "cond_stage_model.transformer.text_model.embeddings.position_ids"));
    /* the unet params are the real ones, not the EMA copies */
    g_assert_cmpstr (dl_checkpoint_find (ck, "unet.conv_in.weight")->file_key, ==,
                     "model.diffusion_model.input_blocks.0.0.weight");
    assert_config (ck, "scheduler.num_train_timesteps", "1000", "weights");
  }
  /* old SD 1.x files spell the CLIP keys without "text_model." */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    for (guint i = 0; i < k->len; i++)
      {
        SwKey *key = k->pdata[i];
        const char *pre = "cond_stage_model.transformer.text_model.";
        if (g_str_has_prefix (key->name, pre))
          {
            char *n = g_strconcat ("cond_stage_model.transformer.", key->name + strlen (pre), NULL);
            g_free (key->name);
            key->name = n;
          }
      }
    g_autofree char *p = write_keys ("old-clip-names.safetensors", k);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (p, g_diffusers);
    g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 860);
    g_assert_cmpstr (dl_checkpoint_find (ck, "text_encoder.text_model.final_layer_norm.weight")->file_key, ==,
                     "cond_stage_model.transformer.final_layer_norm.weight");
  }
  /* a tensor stored under two names */
  {
    g_autoptr (GPtrArray) k = tiny_ldm_keys ();
    sw_keys_add (k, "cond_stage_model.transformer.final_layer_norm.weight", DL_ST_F32, 1, (int64_t[]){ 32 });
    g_autofree char *p = write_keys ("twice.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, "text_encoder.text_model.final_layer_norm.weight", NULL);
  }
}

/* Broken or foreign files fail with the file's name, never crash. */
static void
test_bad_files (void)
{
  cc_scratch_use ("bad_files");
  g_autofree char *missing = cc_scratch_path ("missing.safetensors");
  cc_open_fails (missing, NULL, DL_ERROR_IO, missing, NULL);
  g_autofree char *empty = cc_scratch_path ("empty.safetensors");
  write_text (empty, "");
  cc_open_fails (empty, NULL, DL_ERROR_INVALID_FILE, empty, NULL);
  g_autofree char *text = cc_scratch_path ("notes.ckpt");
  write_text (text, "this is not a model\n");
  cc_open_fails (text, NULL, DL_ERROR_INVALID_FILE, text, NULL);
  g_autofree char *legacy = cc_scratch_path ("legacy.ckpt");
  write_text (legacy, "\x80\x02}q\x00.");
  cc_open_fails (legacy, NULL, DL_ERROR_INVALID_FILE, legacy, "legacy", NULL);
  /* a safetensors header of 0x80 bytes starts like a pickle's PROTO 0x80 */
  {
    GString *h = g_string_new ("{\"__metadata__\":{\"note\":\"x\"}}");
    while (h->len < 0x80)
      g_string_append_c (h, ' ');
    GString *f = g_string_new_len ("\x80\0\0\0\0\0\0\0", 8);
    g_string_append_len (f, h->str, (gssize)h->len);
    g_autofree char *p = cc_scratch_path ("proto-like.safetensors");
    g_assert_true (g_file_set_contents (p, f->str, (gssize)f->len, NULL));
    cc_open_fails (p, NULL, DL_ERROR_INVALID_FILE, p, "not a Stable Diffusion checkpoint", NULL);
    g_string_free (h, TRUE);
    g_string_free (f, TRUE);
  }
  /* the golden file cut short */
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (g_ldm, &data, &len, NULL));
  g_autofree char *cut = cc_scratch_path ("cut.safetensors");
  g_assert_true (g_file_set_contents (cut, data, (gssize)(len / 2), NULL));
  cc_open_fails (cut, g_diffusers, DL_ERROR_INVALID_FILE, cut, "truncated", NULL);
}

/* ---- f16 / bf16 on disk ---- */

/* A copy of `src` with every float tensor stored as `dtype`. */
static void
convert_file (const char *src, const char *dst, DlStDType dtype)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (src, &error);
  g_assert_no_error (error);
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      g_autofree float *f = dl_safetensors_read_f32 (st, t->name, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (dl_safetensors_writer_add_f32 (w, t->name, dtype, t->ndim, t->shape, f, &error));
    }
  dl_safetensors_writer_set_metadata (w, "format", "pt");
  g_assert_true (dl_safetensors_writer_write (w, dst, &error));
  g_assert_no_error (error);
}

static float
round_to (DlStDType dtype, float x)
{
  return dtype == DL_ST_F16    ? dl_f16_to_f32 (dl_f32_to_f16 (x))
         : dtype == DL_ST_BF16 ? dl_bf16_to_f32 (dl_f32_to_bf16 (x))
                               : x;
}

static void
test_half_precision (void)
{
  cc_scratch_use ("half");
  g_autoptr (DlCheckpoint) ref = cc_open_ok (g_diffusers, NULL);
  /* a diffusers folder with the UNet in f16, the VAE in bf16, the text encoder in f32 */
  g_autofree char *d = copy_golden_configs ("mixed");
  const struct
  {
    const char *dir, *file;
    DlStDType dtype;
  } comps[] = { { "unet", "diffusion_pytorch_model.fp16.safetensors", DL_ST_F16 },
                { "vae", "diffusion_pytorch_model.safetensors", DL_ST_BF16 },
                { "text_encoder", "model.safetensors", DL_ST_F32 } };
  for (guint i = 0; i < G_N_ELEMENTS (comps); i++)
    {
      const char *golden_name = i == 2 ? "model.safetensors" : "diffusion_pytorch_model.safetensors";
      g_autofree char *src = g_build_filename (g_diffusers, comps[i].dir, golden_name, NULL);
      g_autofree char *dst = g_build_filename (d, comps[i].dir, comps[i].file, NULL);
      convert_file (src, dst, comps[i].dtype);
    }
  g_autofree char *index = g_build_filename (d, "model_index.json", NULL);
  write_text (index, "{\"_class_name\": \"StableDiffusionPipeline\"}");
  /* the same as a single f16 file */
  g_autofree char *single = cc_scratch_path ("tiny-f16.safetensors");
  convert_file (g_ldm, single, DL_ST_F16);

  g_autoptr (DlCheckpoint) mixed = cc_open_ok (d, NULL);
  g_autoptr (DlCheckpoint) half = cc_open_ok (single, g_diffusers);
  g_assert_cmpuint (dl_checkpoint_get_n_params (mixed), ==, dl_checkpoint_get_n_params (ref));
  g_assert_cmpuint (dl_checkpoint_get_n_params (half), ==, dl_checkpoint_get_n_params (ref));
  for (guint i = 0; i < dl_checkpoint_get_n_params (ref); i++)
    {
      const DlCheckpointParam *r = dl_checkpoint_get_param (ref, i);
      const DlCheckpointParam *m = dl_checkpoint_get_param (mixed, i);
      const DlCheckpointParam *h = dl_checkpoint_get_param (half, i);
      g_assert_cmpstr (r->name, ==, m->name);
      g_assert_cmpstr (r->name, ==, h->name);
      g_assert_cmpint (m->dtype, ==, comps[r->component].dtype);
      g_assert_cmpint (h->dtype, ==, DL_ST_F16);
      g_autoptr (GError) error = NULL;
      g_autofree float *vr = dl_checkpoint_read_f32 (ref, r->name, NULL, &error);
      g_autofree float *vm = dl_checkpoint_read_f32 (mixed, r->name, NULL, &error);
      g_autofree float *vh = dl_checkpoint_read_f32 (half, r->name, NULL, &error);
      g_assert_no_error (error);
      for (int64_t e = 0; e < r->numel; e++)
        {
          g_assert_cmpfloat (vm[e], ==, round_to (m->dtype, vr[e]));
          g_assert_cmpfloat (vh[e], ==, round_to (DL_ST_F16, vr[e]));
        }
    }
  /* stored f16, uploaded as f32 and as f16 */
  const char *name = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight";
  g_autoptr (GError) error = NULL;
  g_autofree float *want = dl_checkpoint_read_f32 (mixed, name, NULL, &error);
  for (int k = 0; k < 2; k++)
    {
      g_autoptr (DlTensor) t =
        dl_checkpoint_upload (mixed, name, dl_test_device (), k ? DL_DTYPE_F16 : DL_DTYPE_F32, &error);
      g_assert_no_error (error);
      g_autofree float *got = dl_test_download (t);
      g_assert_cmpmem (got, 32 * 32 * sizeof (float), want, 32 * 32 * sizeof (float));
    }
}

/* ---- the full-size SD 1.5 manifests as sparse files ---- */

/* SD 1.5's parameter counts (docs/formats.md, “SD 1.5 model numbers”) */
static const guint64 sd15_counts[DL_N_COMPONENTS] = {
  [DL_COMPONENT_UNET] = 859520964,
  [DL_COMPONENT_VAE] = 83653863,
  [DL_COMPONENT_TEXT_ENCODER] = 123060480,
};

static void
check_sd15_config (DlCheckpoint *ck)
{
  DlModelConfig sd15;
  dl_model_config_init_sd15 (&sd15);
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    {
      g_autofree char *a = dl_model_config_field_to_string (dl_checkpoint_get_config (ck), i);
      g_autofree char *b = dl_model_config_field_to_string (&sd15, i);
      if (g_strcmp0 (a, b) != 0)
        g_error ("%s = %s, SD 1.5 has %s", dl_model_config_field_name (i), a, b);
    }
}

static void
test_sparse_sd15_ldm (void)
{
  cc_scratch_use ("sparse_ldm");
  g_autoptr (JsonParser) ldm = mc_load_manifest ("sd15-ldm-keys.json");
  g_autoptr (JsonParser) dif = mc_load_manifest ("sd15-diffusers-keys.json");
  JsonObject *root = json_node_get_object (json_parser_get_root (ldm));
  g_autoptr (GPtrArray) keys = sw_keys_from_json_object (json_object_get_object_member (root, "keys"));
  g_assert_cmpuint (keys->len, ==, 1130);
  /* what the real v1-5-pruned-emaonly adds (the manifest's notes) */
  sw_keys_add (keys, "cond_stage_model.transformer.text_model.embeddings.position_ids", DL_ST_I64, 2,
               (int64_t[]){ 1, 77 });
  sw_keys_add (keys, "alphas_cumprod", DL_ST_F32, 1, (int64_t[]){ 1000 });
  sw_keys_add (keys, "model_ema.decay", DL_ST_F32, 0, NULL);
  g_autofree char *path = cc_scratch_path ("v1-5-sparse.safetensors");
  sw_write_sparse (path, keys, NULL);
  GStatBuf s;
  g_assert_cmpint (g_stat (path, &s), ==, 0);
  g_assert_cmpint (s.st_size, >, (goffset)4000000000);
  g_test_message ("%s: %" G_GINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " on disk", path, (gint64)s.st_size,
                  sw_disk_usage (path));
  g_assert_cmpuint (sw_disk_usage (path), <, 4 << 20);

  g_autoptr (DlCheckpoint) ck = cc_open_ok (path, NULL);
  g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SD1);
  g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 1130);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (ck)->len, ==, 0);
  GPtrArray *ignored = dl_checkpoint_get_ignored_keys (ck);
  for (guint i = 0; i < ignored->len; i++)
    g_test_message ("ignored: %s", (const char *)ignored->pdata[i]);
  g_assert_cmpuint (ignored->len, ==, 3);
  check_sd15_config (ck);
  mc_check_against_diffusers_manifest (
    ck, json_object_get_object_member (json_node_get_object (json_parser_get_root (dif)), "files"), sd15_counts);
  /* every LDM key was used once, with its own shape or the 1x1-conv form */
  g_autoptr (GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < dl_checkpoint_get_n_params (ck); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (ck, i);
      g_assert_true (g_hash_table_add (used, (gpointer)p->file_key));
      SwKey *k = sw_keys_find (keys, p->file_key);
      g_assert_nonnull (k);
      g_assert_cmpint (sw_key_numel (k), ==, p->numel);
    }
  g_assert_cmpuint (g_hash_table_size (used), ==, 1130);
}

static void
test_sparse_sd15_diffusers (void)
{
  cc_scratch_use ("sparse_diffusers");
  g_autoptr (JsonParser) dif = mc_load_manifest ("sd15-diffusers-keys.json");
  JsonObject *root = json_node_get_object (json_parser_get_root (dif));
  JsonObject *files = json_object_get_object_member (root, "files");
  JsonObject *configs = json_object_get_object_member (root, "configs");
  g_autoptr (GList) names = json_object_get_members (files);
  for (GList *l = names; l; l = l->next)
    {
      g_autoptr (GPtrArray) keys = sw_keys_from_json_object (json_object_get_object_member (files, l->data));
      g_autofree char *rel = g_build_filename ("sd15", l->data, NULL);
      g_autofree char *path = cc_scratch_path (rel);
      sw_write_sparse (path, keys, (const char *[]){ "format", "pt", NULL });
    }
  const char *cfgs[][2] = { { "unet", "unet/config.json" },
                            { "vae", "vae/config.json" },
                            { "text_encoder", "text_encoder/config.json" } };
  for (guint i = 0; i < G_N_ELEMENTS (cfgs); i++)
    {
      g_autofree char *rel = g_build_filename ("sd15", cfgs[i][1], NULL);
      g_autofree char *path = cc_scratch_path (rel);
      write_json (path, json_object_get_member (configs, cfgs[i][0]));
    }
  g_autofree char *dir = cc_scratch_path ("sd15");
  g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);
  write_text (index, "{\"_class_name\": \"StableDiffusionPipeline\"}");

  g_autoptr (DlCheckpoint) ck = cc_open_ok (dir, NULL);
  g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SD1);
  g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 1130);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (ck)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_ignored_keys (ck)->len, ==, 0);
  check_sd15_config (ck);
  mc_check_against_diffusers_manifest (ck, files, sd15_counts);
  g_autofree char *unet_cfg = g_build_filename (dir, "unet", "config.json", NULL);
  g_autofree char *text_cfg = g_build_filename (dir, "text_encoder", "config.json", NULL);
  g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "unet.attention_heads"), ==, unet_cfg);
  g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "text_encoder.n_heads"), ==, text_cfg);

  /* the LDM names of the two manifests agree */
  g_autoptr (JsonParser) ldm = mc_load_manifest ("sd15-ldm-keys.json");
  JsonObject *ldm_keys = json_object_get_object_member (json_node_get_object (json_parser_get_root (ldm)), "keys");
  DlLdmLayout layout;
  dl_ldm_layout_from_config (dl_checkpoint_get_config (ck), &layout);
  for (guint i = 0; i < dl_checkpoint_get_n_params (ck); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (ck, i);
      g_autofree char *key = dl_keymap_internal_to_ldm (p->name, &layout);
      if (!key || !json_object_has_member (ldm_keys, key))
        g_error ("%s maps to %s, which the LDM manifest does not have", p->name, key);
    }
}

/* ---- .ckpt in torch.save's layout ---- */

static void
test_ckpt_golden (void)
{
  cc_scratch_use ("ckpt");
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open (g_ldm, &error);
  g_assert_no_error (error);
  guint n = dl_safetensors_get_n_tensors (st);
  g_autofree TwTensor *t = g_new0 (TwTensor, n + 1);
  g_autoptr (GPtrArray) halves = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < n; i++)
    {
      const DlStTensor *s = dl_safetensors_get_tensor (st, i);
      t[i].name = s->name;
      t[i].dtype = s->dtype;
      t[i].ndim = s->ndim;
      memcpy (t[i].shape, s->shape, sizeof t[i].shape);
      t[i].data = s->data;
      t[i].nbytes = s->nbytes;
    }
  /* Lightning's dict around the state dict, memoised globals, parameters */
  const TwOptions variants[] = {
    { .lightning = TRUE, .memo = TRUE },
    { .prefix = "v1-5-pruned", .parameters = TRUE },
    { .deflate = TRUE, .memo = TRUE },
  };
  g_autoptr (DlCheckpoint) ref = cc_open_ok (g_ldm, g_diffusers);
  for (guint v = 0; v < G_N_ELEMENTS (variants); v++)
    {
      g_autofree char *name = g_strdup_printf ("tiny-%u.ckpt", v);
      g_autofree char *path = cc_scratch_path (name);
      g_assert_true (tw_write_state_dict (path, t, n, &variants[v], &error));
      g_assert_no_error (error);
      g_autoptr (DlCheckpoint) ck = cc_open_ok (path, g_diffusers);
      g_assert_cmpint (dl_checkpoint_get_layout (ck), ==, DL_CHECKPOINT_SINGLE_FILE_PT);
      g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SD1);
      g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 860);
      g_assert_null (dl_checkpoint_get_safetensors (ck));
      for (guint i = 0; i < dl_checkpoint_get_n_params (ref); i++)
        {
          const DlCheckpointParam *a = dl_checkpoint_get_param (ref, i);
          const DlCheckpointParam *b = dl_checkpoint_get_param (ck, i);
          g_assert_cmpstr (a->name, ==, b->name);
          g_assert_cmpstr (a->file_key, ==, b->file_key);
          g_autofree float *va = dl_checkpoint_read_f32 (ref, a->name, NULL, &error);
          g_autofree float *vb = dl_checkpoint_read_f32 (ck, b->name, NULL, &error);
          g_assert_no_error (error);
          g_assert_cmpmem (va, a->numel * sizeof (float), vb, b->numel * sizeof (float));
        }
      /* onto the device straight from the archive */
      g_autoptr (DlTensor) up = dl_checkpoint_upload (ck, "vae.encoder.mid_block.attentions.0.to_k.weight",
                                                      dl_test_device (), DL_DTYPE_F32, &error);
      g_assert_no_error (error);
      g_autofree float *got = dl_test_download (up);
      g_autofree float *want =
        dl_checkpoint_read_f32 (ref, "vae.encoder.mid_block.attentions.0.to_k.weight", NULL, &error);
      g_assert_cmpmem (got, 64 * 64 * sizeof (float), want, 64 * 64 * sizeof (float));
    }
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
  cc_scratch_init ("dl-test-checkpoint-XXXXXX");
  dl_test_add ("/io/checkpoint/golden-both-layouts", test_golden_both_layouts);
  dl_test_add ("/io/checkpoint/golden-upload", test_golden_upload);
  dl_test_add ("/io/checkpoint/single-file-needs-config", test_single_file_needs_config);
  dl_test_add ("/io/checkpoint/config-order", test_config_order);
  dl_test_add ("/io/checkpoint/family-single-file", test_family_single_file);
  dl_test_add ("/io/checkpoint/family-diffusers", test_family_diffusers);
  dl_test_add ("/io/checkpoint/single-file-keys", test_single_file_keys);
  dl_test_add ("/io/checkpoint/bad-files", test_bad_files);
  dl_test_add ("/io/checkpoint/half-precision", test_half_precision);
  dl_test_add ("/io/checkpoint/sparse-sd15-ldm", test_sparse_sd15_ldm);
  dl_test_add ("/io/checkpoint/sparse-sd15-diffusers", test_sparse_sd15_diffusers);
  dl_test_add ("/io/checkpoint/ckpt-golden", test_ckpt_golden);
  int ret = dl_test_run ();
  cc_scratch_remove ();
  g_free (g_ldm);
  g_free (g_diffusers);
  return ret;
}
