/* SDXL checkpoints (dl-checkpoint): the golden tiny SDXL model as an SGM single
 * file (.safetensors, f16, and a .ckpt in torch.save's layout) against its
 * diffusers folder, tensor for tensor; the full-size SDXL base key manifests as
 * sparse files in both layouts, opened without a configuration; refiner and
 * inpainting models refused; missing, misshapen and extra keys.
 *
 * OpenCLIP's fused q/k/v and its transposed text_projection are where SGM files
 * differ from diffusers' (golden README, items 4 and 5): the tiny model's
 * projection is not square, so a missed transpose shows.
 *
 * Everything is built from ../shared/golden/sdxl at run time; without it the
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

static char *g_sgm;       /* sdxl/tiny-sdxl-sgm.safetensors */
static char *g_diffusers; /* sdxl/tiny-sdxl-diffusers/ */

/* the golden README's parameter counts */
static const guint64 tiny_counts[DL_N_COMPONENTS] = {
  [DL_COMPONENT_UNET] = 571732,
  [DL_COMPONENT_VAE] = 167959,
  [DL_COMPONENT_TEXT_ENCODER] = 599496,
  [DL_COMPONENT_TEXT_ENCODER_2] = 824784,
};
static const guint64 full_counts[DL_N_COMPONENTS] = {
  [DL_COMPONENT_UNET] = 2567463684,
  [DL_COMPONENT_VAE] = 83653863,
  [DL_COMPONENT_TEXT_ENCODER] = 123060480,
  [DL_COMPONENT_TEXT_ENCODER_2] = 694659840,
};

#define TE2 "conditioner.embedders.1.model."

static void
write_text (const char *path, const char *text)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (path, text, -1, &error));
}

static char *
write_keys (const char *name, GPtrArray *keys)
{
  char *path = cc_scratch_path (name);
  sw_write_sparse (path, keys, NULL);
  return path;
}

static void
set_dim (GPtrArray *keys, const char *name, int axis, int64_t value)
{
  SwKey *k = sw_keys_find (keys, name);
  g_assert_nonnull (k);
  k->shape[axis] = value;
}

/* The same configuration, field by field. */
static void
assert_same_config (const DlModelConfig *a, const DlModelConfig *b, const char *what)
{
  for (guint i = 0; i < dl_model_config_n_fields (); i++)
    {
      g_autofree char *va = dl_model_config_field_to_string (a, i);
      g_autofree char *vb = dl_model_config_field_to_string (b, i);
      if (g_strcmp0 (va, vb) != 0)
        g_error ("%s: %s = %s, expected %s", what, dl_model_config_field_name (i), va, vb);
    }
}

/* `ck` holds the parameters of the diffusers folder `ref`, in the same order,
 * bit for bit (after rounding to `dtype` when that is not F32). */
static void
assert_same_params (DlCheckpoint *ref, DlCheckpoint *ck, DlStDType dtype)
{
  g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, dl_checkpoint_get_n_params (ref));
  assert_same_config (dl_checkpoint_get_config (ck), dl_checkpoint_get_config (ref), dl_checkpoint_get_path (ck));
  guint64 per_component[DL_N_COMPONENTS] = { 0 };
  for (guint i = 0; i < dl_checkpoint_get_n_params (ref); i++)
    {
      const DlCheckpointParam *a = dl_checkpoint_get_param (ref, i);
      const DlCheckpointParam *b = dl_checkpoint_get_param (ck, i);
      g_assert_cmpstr (a->name, ==, b->name);
      g_assert_cmpint (a->component, ==, b->component);
      g_assert_cmpint (a->ndim, ==, b->ndim);
      g_assert_cmpmem (a->shape, a->ndim * sizeof (int64_t), b->shape, b->ndim * sizeof (int64_t));
      g_assert_cmpint (a->numel, ==, b->numel);
      g_assert_cmpint (b->dtype, ==, dtype);
      g_assert_true (dl_checkpoint_find (ck, a->name) == b);
      g_autoptr (GError) error = NULL;
      int64_t na = -1, nb = -1;
      g_autofree float *va = dl_checkpoint_read_f32 (ref, a->name, &na, &error);
      g_assert_no_error (error);
      g_autofree float *vb = dl_checkpoint_read_f32 (ck, b->name, &nb, &error);
      g_assert_no_error (error);
      g_assert_cmpint (na, ==, a->numel);
      g_assert_cmpint (nb, ==, a->numel);
      if (dtype == DL_ST_F16)
        for (int64_t e = 0; e < na; e++)
          va[e] = dl_f16_to_f32 (dl_f32_to_f16 (va[e]));
      if (memcmp (va, vb, na * sizeof (float)) != 0)
        g_error ("%s (%s in %s) differs from the diffusers folder's", a->name, b->file_key, b->file_path);
      per_component[a->component] += (guint64)a->numel;
    }
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    g_assert_cmpuint (per_component[c], ==, tiny_counts[c]);
}

/* ---- the golden tiny model ---- */

static void
test_golden_sgm (void)
{
  g_autoptr (DlCheckpoint) d = cc_open_ok (g_diffusers, NULL);
  g_autoptr (DlCheckpoint) s = cc_open_ok (g_sgm, g_diffusers);
  g_assert_cmpint (dl_checkpoint_get_layout (s), ==, DL_CHECKPOINT_SINGLE_FILE);
  g_assert_cmpint (dl_checkpoint_get_family (s), ==, DL_FAMILY_SDXL);
  /* the golden file's 919 tensors are all parameters (q/k/v three each) */
  g_assert_cmpuint (dl_checkpoint_get_n_params (s), ==, 919 + 2 * 10 * 2);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (s)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_ignored_keys (s)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_config_warnings (s)->len, ==, 0);
  assert_same_params (d, s, DL_ST_F32);

  /* every file key is the SGM name of its parameter and maps back */
  DlLdmLayout layout;
  dl_ldm_layout_from_config (dl_checkpoint_get_config (s), &layout);
  g_assert_true (layout.sgm);
  g_autoptr (GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < dl_checkpoint_get_n_params (s); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (s, i);
      DlLdmPart part;
      g_autofree char *key = dl_keymap_internal_to_ldm_part (p->name, &layout, &part);
      g_assert_cmpstr (key, ==, p->file_key);
      g_hash_table_add (used, (gpointer)p->file_key);
      DlLdmTarget to[3];
      guint n = dl_keymap_ldm_to_internal_parts (p->file_key, &layout, to);
      gboolean found = FALSE;
      for (guint k = 0; k < n; k++)
        {
          if (strcmp (to[k].name, p->name) == 0)
            {
              g_assert_cmpint (to[k].part, ==, part);
              found = TRUE;
            }
          g_free (to[k].name);
        }
      g_assert_true (found);
      g_assert_cmpuint (n, ==, part >= DL_LDM_PART_Q && part <= DL_LDM_PART_V ? 3 : 1);
    }
  g_assert_cmpuint (g_hash_table_size (used), ==, 919);

  /* the parts: q/k/v a third of the fused rows each, the projection transposed */
  const char *fused = TE2 "transformer.resblocks.3.attn.in_proj_weight";
  const char *qkv[] = { "q_proj", "k_proj", "v_proj" };
  DlSafetensors *st = dl_checkpoint_get_safetensors (s);
  const DlStTensor *file = dl_safetensors_find (st, fused);
  g_assert_nonnull (file);
  g_assert_cmpint (file->shape[0], ==, 48);
  for (int k = 0; k < 3; k++)
    {
      g_autofree char *name =
        g_strdup_printf ("text_encoder_2.text_model.encoder.layers.3.self_attn.%s.weight", qkv[k]);
      const DlCheckpointParam *p = dl_checkpoint_find (s, name);
      g_assert_cmpstr (p->file_key, ==, fused);
      g_assert_cmpstr (p->file_path, ==, g_sgm);
      const DlStTensor *t = dl_checkpoint_get_stored (s, name);
      g_assert_cmpint (t->ndim, ==, 2);
      g_assert_cmpint (t->shape[0], ==, 16);
      g_assert_cmpint (t->shape[1], ==, 16);
      g_assert_true (t->data == file->data + k * 16 * 16 * 4);
      g_assert_cmpmem (t->data, t->nbytes, dl_checkpoint_get_stored (d, name)->data,
                       dl_checkpoint_get_stored (d, name)->nbytes);
    }
  const DlCheckpointParam *proj = dl_checkpoint_find (s, "text_encoder_2.text_projection.weight");
  g_assert_cmpstr (proj->file_key, ==, TE2 "text_projection");
  g_assert_cmpint (proj->shape[0], ==, 12);
  g_assert_cmpint (proj->shape[1], ==, 16);
  const DlStTensor *pt = dl_checkpoint_get_stored (s, "text_encoder_2.text_projection.weight");
  const DlStTensor *pf = dl_safetensors_find (st, TE2 "text_projection");
  g_assert_cmpint (pf->shape[0], ==, 16);
  g_assert_cmpint (pf->shape[1], ==, 12);
  g_assert_cmpint (pt->shape[0], ==, 12);
  g_assert_cmpint (pt->shape[1], ==, 16);
  g_assert_cmpint (pt->dtype, ==, pf->dtype);
  g_assert_cmpmem (pt->data, pt->nbytes, dl_checkpoint_get_stored (d, "text_encoder_2.text_projection.weight")->data,
                   pt->nbytes);
  /* the SGM bias of q/k/v too */
  const DlCheckpointParam *vb =
    dl_checkpoint_find (s, "text_encoder_2.text_model.encoder.layers.9.self_attn.v_proj.bias");
  g_assert_cmpstr (vb->file_key, ==, TE2 "transformer.resblocks.9.attn.in_proj_bias");
  g_assert_cmpstr (dl_checkpoint_find (s, "unet.add_embedding.linear_2.weight")->file_key, ==,
                   "model.diffusion_model.label_emb.0.2.weight");
  g_assert_cmpstr (dl_checkpoint_find (s, "text_encoder.text_model.final_layer_norm.bias")->file_key, ==,
                   "conditioner.embedders.0.transformer.text_model.final_layer_norm.bias");

  /* onto the device in the internal orientation */
  const char *names[] = { "text_encoder_2.text_projection.weight",
                          "text_encoder_2.text_model.encoder.layers.0.self_attn.k_proj.weight",
                          "text_encoder_2.text_model.encoder.layers.0.self_attn.v_proj.bias" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr (GError) error = NULL;
      const DlCheckpointParam *p = dl_checkpoint_find (s, names[i]);
      g_autoptr (DlTensor) t = dl_checkpoint_upload (s, names[i], dl_test_device (), DL_DTYPE_F32, &error);
      g_assert_no_error (error);
      g_assert_cmpint (t->ndim, ==, p->ndim);
      for (int k = 0; k < p->ndim; k++)
        g_assert_cmpint (t->shape[k], ==, p->shape[k]);
      g_autofree float *got = dl_test_download (t);
      g_autofree float *want = dl_checkpoint_read_f32 (d, names[i], NULL, &error);
      g_assert_cmpmem (got, p->numel * sizeof (float), want, p->numel * sizeof (float));
    }
}

/* The same file with f16 weights (what real SDXL files hold), and as a .ckpt. */
static void
test_golden_f16_and_ckpt (void)
{
  cc_scratch_use ("f16-ckpt");
  g_autoptr (GError) error = NULL;
  g_autoptr (DlCheckpoint) d = cc_open_ok (g_diffusers, NULL);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (g_sgm, &error);
  g_assert_no_error (error);
  guint n = dl_safetensors_get_n_tensors (st);

  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  for (guint i = 0; i < n; i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      g_autofree float *f = dl_safetensors_read_f32 (st, t->name, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (dl_safetensors_writer_add_f32 (w, t->name, DL_ST_F16, t->ndim, t->shape, f, &error));
    }
  g_autofree char *half = cc_scratch_path ("tiny-sdxl-f16.safetensors");
  g_assert_true (dl_safetensors_writer_write (w, half, &error));
  g_assert_no_error (error);
  {
    g_autoptr (DlCheckpoint) ck = cc_open_ok (half, g_diffusers);
    assert_same_params (d, ck, DL_ST_F16);
  }

  g_autofree TwTensor *t = g_new0 (TwTensor, n + 1);
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
  /* torch.save's layout, and Lightning's dict around the state dict */
  const TwOptions variants[] = { { 0 }, { .lightning = TRUE, .memo = TRUE } };
  for (guint v = 0; v < G_N_ELEMENTS (variants); v++)
    {
      g_autofree char *name = g_strdup_printf ("tiny-sdxl-%u.ckpt", v);
      g_autofree char *path = cc_scratch_path (name);
      g_assert_true (tw_write_state_dict (path, t, n, &variants[v], &error));
      g_assert_no_error (error);
      g_autoptr (DlCheckpoint) ck = cc_open_ok (path, g_diffusers);
      g_assert_cmpint (dl_checkpoint_get_layout (ck), ==, DL_CHECKPOINT_SINGLE_FILE_PT);
      g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SDXL);
      g_assert_cmpuint (dl_checkpoint_get_unknown_keys (ck)->len, ==, 0);
      assert_same_params (d, ck, DL_ST_F32);
    }
}

/* Without its config folder the tiny file gets SDXL's defaults, which do not
 * fit its 16 channels: the error says what to give. */
static void
test_golden_needs_config (void)
{
  cc_open_fails (g_sgm, NULL, DL_ERROR_INVALID_FILE, g_sgm, "SDXL default", NULL);
}

/* ---- families, missing and extra keys ---- */

static GPtrArray *
tiny_sgm_keys (void)
{
  return sw_keys_from_safetensors (g_sgm);
}

static void
rename_prefix (GPtrArray *keys, const char *from, const char *to)
{
  for (guint i = 0; i < keys->len; i++)
    {
      SwKey *k = keys->pdata[i];
      if (g_str_has_prefix (k->name, from))
        {
          char *n = g_strconcat (to, k->name + strlen (from), NULL);
          g_free (k->name);
          k->name = n;
        }
    }
}

static void
remove_prefix (GPtrArray *keys, const char *prefix)
{
  for (guint i = keys->len; i-- > 0;)
    if (g_str_has_prefix (((SwKey *)keys->pdata[i])->name, prefix))
      g_ptr_array_remove_index (keys, i);
}

static void
test_family (void)
{
  cc_scratch_use ("family");
  /* control: the tiny model's own keys */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    g_autofree char *p = write_keys ("sdxl.safetensors", k);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (p, g_diffusers);
    g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SDXL);
  }
  /* the refiner: OpenCLIP bigG alone, as conditioner.embedders.0.model */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    remove_prefix (k, "conditioner.embedders.0.");
    rename_prefix (k, TE2, "conditioner.embedders.0.model.");
    g_autofree char *p = write_keys ("refiner.safetensors", k);
    cc_open_fails (p, NULL, DL_ERROR_UNSUPPORTED, p, "SDXL refiner", "base models", NULL);
    cc_open_fails (p, g_diffusers, DL_ERROR_UNSUPPORTED, p, "SDXL refiner", NULL);
  }
  /* inpainting: 9 input channels (4 latent + 4 masked image + mask) */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    set_dim (k, "model.diffusion_model.input_blocks.0.0.weight", 1, 9);
    g_autofree char *p = write_keys ("inpaint.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_UNSUPPORTED, p, "recognised as Stable Diffusion XL inpainting",
                   "not supported yet", NULL);
  }
  /* another input width */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    set_dim (k, "model.diffusion_model.input_blocks.0.0.weight", 1, 8);
    g_autofree char *p = write_keys ("in8.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_UNSUPPORTED, p, "8 input channels", NULL);
  }
}

static void
test_keys (void)
{
  cc_scratch_use ("keys");
  /* a missing OpenCLIP tensor is named by its SGM key */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    g_assert_true (sw_keys_remove (k, TE2 "transformer.resblocks.3.attn.in_proj_weight"));
    g_autofree char *p = write_keys ("missing-qkv.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, p, "missing tensor",
                   TE2 "transformer.resblocks.3.attn.in_proj_weight",
                   "text_encoder_2.text_model.encoder.layers.3.self_attn.", NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    g_assert_true (sw_keys_remove (k, TE2 "text_projection"));
    g_autofree char *p = write_keys ("missing-proj.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, p, TE2 "text_projection", NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    g_assert_true (sw_keys_remove (k, TE2 "transformer.resblocks.7.mlp.c_proj.bias"));
    g_autofree char *p = write_keys ("missing-mlp.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, TE2 "transformer.resblocks.7.mlp.c_proj.bias",
                   "text_encoder_2.text_model.encoder.layers.7.mlp.fc2.bias", NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    g_assert_true (sw_keys_remove (k, "conditioner.embedders.0.transformer.text_model.encoder.layers.1.mlp.fc1.bias"));
    g_autofree char *p = write_keys ("missing-te1.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE,
                   "conditioner.embedders.0.transformer.text_model.encoder.layers.1.mlp.fc1.bias", NULL);
  }
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    g_assert_true (sw_keys_remove (k, "model.diffusion_model.label_emb.0.0.bias"));
    g_autofree char *p = write_keys ("missing-label-emb.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, "model.diffusion_model.label_emb.0.0.bias",
                   "unet.add_embedding.linear_1.bias", NULL);
  }
  /* shapes are reported as the file has them */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    set_dim (k, TE2 "transformer.resblocks.2.attn.in_proj_weight", 0, 47);
    g_autofree char *p = write_keys ("qkv-rows.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, p, TE2 "transformer.resblocks.2.attn.in_proj_weight",
                   "[47, 16]", NULL);
    set_dim (k, TE2 "transformer.resblocks.2.attn.in_proj_weight", 0, 51);
    g_autofree char *p2 = write_keys ("qkv-rows-51.safetensors", k);
    cc_open_fails (p2, g_diffusers, DL_ERROR_INVALID_FILE, p2, TE2 "transformer.resblocks.2.attn.in_proj_weight",
                   "[51, 16]", "[48, 16]", NULL);
  }
  {
    /* a projection stored as transformers' Linear weight (kohya's loader
     * copies it that way) has the other shape */
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    set_dim (k, TE2 "text_projection", 0, 12);
    set_dim (k, TE2 "text_projection", 1, 16);
    g_autofree char *p = write_keys ("proj-as-linear.safetensors", k);
    cc_open_fails (p, g_diffusers, DL_ERROR_INVALID_FILE, p, TE2 "text_projection", "[12, 16]", "(in, out)", "width 16",
                   "Linear weight", NULL);
    sw_keys_find (k, TE2 "text_projection")->ndim = 1;
    g_autofree char *p2 = write_keys ("proj-1d.safetensors", k);
    cc_open_fails (p2, g_diffusers, DL_ERROR_INVALID_FILE, p2, TE2 "text_projection", NULL);
  }
  /* what real SDXL files carry besides the weights: ignored or reported, never fatal */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    sw_keys_add (k, TE2 "logit_scale", DL_ST_F32, 0, NULL);
    sw_keys_add (k, TE2 "attn_mask", DL_ST_F32, 2, (int64_t[]){ 77, 77 });
    sw_keys_add (k, "conditioner.embedders.0.transformer.text_model.embeddings.position_ids", DL_ST_I64, 2,
                 (int64_t[]){ 1, 77 });
    sw_keys_add (k, "alphas_cumprod", DL_ST_F32, 1, (int64_t[]){ 1000 });
    sw_keys_add (k, TE2 "transformer.resblocks.0.attn.something", DL_ST_F32, 1, (int64_t[]){ 3 });
    sw_keys_add (k, "conditioner.embedders.2.foo", DL_ST_F32, 1, (int64_t[]){ 3 });
    g_autofree char *p = write_keys ("extras.safetensors", k);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (p, g_diffusers);
    g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 959);
    GPtrArray *unknown = dl_checkpoint_get_unknown_keys (ck), *ignored = dl_checkpoint_get_ignored_keys (ck);
    g_assert_cmpuint (unknown->len, ==, 2);
    g_assert_cmpstr (unknown->pdata[0], ==, "conditioner.embedders.1.model.transformer.resblocks.0.attn.something");
    g_assert_cmpstr (unknown->pdata[1], ==, "conditioner.embedders.2.foo");
    g_assert_cmpuint (ignored->len, ==, 4);
    g_assert_true (cc_strings_contain (ignored, TE2 "logit_scale"));
    g_assert_true (cc_strings_contain (ignored, TE2 "attn_mask"));
    g_assert_true (cc_strings_contain (ignored, "alphas_cumprod"));
  }
  /* a non-canonical layer index is not a parameter name */
  {
    g_autoptr (GPtrArray) k = tiny_sgm_keys ();
    sw_keys_add (k, TE2 "transformer.resblocks.01.ln_1.weight", DL_ST_F32, 1, (int64_t[]){ 16 });
    g_autofree char *p = write_keys ("leading-zero.safetensors", k);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (p, g_diffusers);
    GPtrArray *unknown = dl_checkpoint_get_unknown_keys (ck);
    g_assert_cmpuint (unknown->len, ==, 1);
    g_assert_cmpstr (unknown->pdata[0], ==, TE2 "transformer.resblocks.01.ln_1.weight");
  }
}

/* ---- an SGM .yaml beside the file ---- */

static void
copy_json (const char *from, const char *to, const char *remove_member)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (p, from, &error));
  if (remove_member)
    json_object_remove_member (json_node_get_object (json_parser_get_root (p)), remove_member);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, json_parser_get_root (p));
  g_assert_true (json_generator_to_file (gen, to, &error));
}

/* the tiny model's configs without its head counts */
static char *
configs_without_heads (const char *dir)
{
  const char *files[] = { "unet/config.json", "vae/config.json", "text_encoder/config.json",
                          "text_encoder_2/config.json", "scheduler/scheduler_config.json" };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *from = g_build_filename (g_diffusers, files[i], NULL);
      g_autofree char *rel = g_build_filename (dir, files[i], NULL);
      g_autofree char *to = cc_scratch_path (rel);
      copy_json (from, to, i == 0 ? "attention_head_dim" : NULL);
    }
  return cc_scratch_path (dir);
}

static char *
tiny_yaml (const char *depth, const char *extra)
{
  return g_strdup_printf ("model:\n"
                          "  params:\n"
                          "    network_config:\n"
                          "      params:\n"
                          "        adm_in_channels: 60\n"
                          "        context_dim: 28\n"
                          "        num_head_channels: 8\n"
                          "        transformer_depth: %s\n"
                          "%s"
                          "    conditioner_config:\n"
                          "      params:\n"
                          "        emb_models:\n"
                          "          - target: sgm.modules.encoders.modules.FrozenCLIPEmbedder\n"
                          "          - target: sgm.modules.encoders.modules.ConcatTimestepEmbedderND\n"
                          "            params:\n"
                          "              outdim: 8\n",
                          depth, extra);
}

static void
test_sgm_yaml (void)
{
  cc_scratch_use ("yaml");
  g_autofree char *model = cc_scratch_path ("tiny.safetensors");
  g_assert_cmpint (symlink (g_sgm, model), ==, 0);
  g_autofree char *cfg = configs_without_heads ("cfg");
  g_autofree char *yaml = cc_scratch_path ("tiny.yaml");
  /* 0: a level without attention; the mid block takes the last level's depth */
  const char *agree[][2] = { { "[0, 1, 2]", "" },
                             { "[1, 1, 2]", "        attention_resolutions: [4, 2]\n" },
                             { "[1, 1, 2]",
                               "        attention_resolutions: [4, 2]\n        transformer_depth_middle: 2\n" } };
  for (guint i = 0; i < G_N_ELEMENTS (agree); i++)
    {
      g_autofree char *text = tiny_yaml (agree[i][0], agree[i][1]);
      write_text (yaml, text);
      g_autoptr (DlCheckpoint) ck = cc_open_ok (model, cfg);
      GPtrArray *w = dl_checkpoint_get_config_warnings (ck);
      for (guint k = 0; k < w->len; k++)
        g_test_message ("warning: %s", (const char *)w->pdata[k]);
      g_assert_cmpuint (w->len, ==, 0);
      /* 16, 16 and 32 channels in heads of 8 */
      g_autofree char *heads = dl_model_config_field_to_string (
        dl_checkpoint_get_config (ck), (guint)dl_model_config_field_index ("unet.attention_heads"));
      g_assert_cmpstr (heads, ==, "[2, 2, 4]");
      g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "unet.attention_heads"), ==, yaml);
      g_assert_cmpint (dl_checkpoint_get_config (ck)->unet.mid_attention_heads, ==, 4);
    }
  /* a yaml that disagrees with the weights is named; the weights win */
  {
    g_autofree char *text = tiny_yaml ("[0, 2, 2]", "        transformer_depth_middle: 3\n");
    write_text (yaml, text);
    g_autoptr (DlCheckpoint) ck = cc_open_ok (model, cfg);
    GPtrArray *w = dl_checkpoint_get_config_warnings (ck);
    g_assert_cmpuint (w->len, ==, 2);
    g_assert_nonnull (strstr (w->pdata[0], "unet.transformer_depth"));
    g_assert_nonnull (strstr (w->pdata[1], "unet.mid_transformer_depth"));
    g_assert_nonnull (strstr (w->pdata[0], yaml));
    g_assert_cmpint (dl_checkpoint_get_config (ck)->unet.transformer_depth[1], ==, 1);
  }
  {
    g_autofree char *text = tiny_yaml ("[1, 2]", "");
    write_text (yaml, text);
    cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, yaml, "transformer_depth", "3 levels", NULL);
  }
  {
    g_autofree char *text = tiny_yaml ("[1, -2, 2]", "");
    write_text (yaml, text);
    cc_open_fails (model, cfg, DL_ERROR_INVALID_FILE, yaml, "transformer_depth", "non-negative", NULL);
  }
}

/* ---- the full-size SDXL base manifests as sparse files ---- */

static void
check_sdxl_config (DlCheckpoint *ck)
{
  DlModelConfig xl;
  dl_model_config_init_sdxl (&xl);
  assert_same_config (dl_checkpoint_get_config (ck), &xl, dl_checkpoint_get_path (ck));
}

static void
test_sparse_sgm (void)
{
  cc_scratch_use ("sparse-sgm");
  g_autoptr (JsonParser) sgm = mc_load_manifest ("sdxl/sdxl-sgm-keys.json");
  g_autoptr (JsonParser) dif = mc_load_manifest ("sdxl/sdxl-diffusers-keys.json");
  JsonObject *root = json_node_get_object (json_parser_get_root (sgm));
  g_autoptr (GPtrArray) keys = sw_keys_from_json_object (json_object_get_object_member (root, "keys"));
  g_assert_cmpuint (keys->len, ==, 2513);
  /* stored in f16, as the published sd_xl_base_1.0.safetensors */
  for (guint i = 0; i < keys->len; i++)
    ((SwKey *)keys->pdata[i])->dtype = DL_ST_F16;
  /* what real files add (the manifest's notes) */
  sw_keys_add (keys, TE2 "logit_scale", DL_ST_F32, 0, NULL);
  sw_keys_add (keys, "conditioner.embedders.0.transformer.text_model.embeddings.position_ids", DL_ST_I64, 2,
               (int64_t[]){ 1, 77 });
  sw_keys_add (keys, "alphas_cumprod", DL_ST_F32, 1, (int64_t[]){ 1000 });
  g_autofree char *path = cc_scratch_path ("sd_xl_base_1.0-sparse.safetensors");
  sw_write_sparse (path, keys, (const char *[]){ "modelspec.architecture", "stable-diffusion-xl-v1-base", NULL });
  GStatBuf s;
  g_assert_cmpint (g_stat (path, &s), ==, 0);
  g_assert_cmpint (s.st_size, >, (goffset)6900000000);
  g_test_message ("%s: %" G_GINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " on disk", path, (gint64)s.st_size,
                  sw_disk_usage (path));

  /* no --config: SDXL base's own values */
  g_autoptr (DlCheckpoint) ck = cc_open_ok (path, NULL);
  g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SDXL);
  g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 1680 + 248 + 196 + 517);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (ck)->len, ==, 0);
  GPtrArray *ignored = dl_checkpoint_get_ignored_keys (ck);
  g_assert_cmpuint (ignored->len, ==, 3);
  check_sdxl_config (ck);
  const DlModelConfig *c = dl_checkpoint_get_config (ck);
  g_assert_cmpint (c->unet.n_levels, ==, 3);
  g_assert_cmpint (c->text_encoder_2.n_layers, ==, 32);
  g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "unet.transformer_depth"), ==, "weights");
  g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "unet.attention_heads"), ==, "SDXL default");
  g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "unet.addition_time_embed_dim"), ==, "weights");
  g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "text_encoder_2.projection_dim"), ==, "weights");
  g_assert_cmpstr (dl_checkpoint_get_config_source (ck, "text_encoder_2.n_heads"), ==, "SDXL default");
  mc_check_against_diffusers_manifest (
    ck, json_object_get_object_member (json_node_get_object (json_parser_get_root (dif)), "files"), full_counts);

  /* every SGM key was used, q/k/v's three times, each with its own shape */
  g_autoptr (GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < dl_checkpoint_get_n_params (ck); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (ck, i);
      g_hash_table_add (used, (gpointer)p->file_key);
      SwKey *k = sw_keys_find (keys, p->file_key);
      g_assert_nonnull (k);
      gboolean fused =
        g_str_has_suffix (p->file_key, ".in_proj_weight") || g_str_has_suffix (p->file_key, ".in_proj_bias");
      g_assert_cmpint (sw_key_numel (k), ==, fused ? 3 * p->numel : p->numel);
      g_assert_cmpint (p->dtype, ==, DL_ST_F16);
    }
  g_assert_cmpuint (g_hash_table_size (used), ==, 2513);
  /* generative-models' sd_xl_base.yaml beside it (its UNet, conditioner and
   * VAE entries) agrees with the weights and gives the head counts */
  g_autofree char *yaml = cc_scratch_path ("sd_xl_base_1.0-sparse.yaml");
  write_text (yaml, "model:\n"
                    "  target: sgm.models.diffusion.DiffusionEngine\n"
                    "  params:\n"
                    "    scale_factor: 0.13025\n"
                    "    denoiser_config:\n"
                    "      params:\n"
                    "        num_idx: 1000\n"
                    "    network_config:\n"
                    "      target: sgm.modules.diffusionmodules.openaimodel.UNetModel\n"
                    "      params:\n"
                    "        adm_in_channels: 2816\n"
                    "        num_classes: sequential\n"
                    "        in_channels: 4\n"
                    "        out_channels: 4\n"
                    "        model_channels: 320\n"
                    "        attention_resolutions: [4, 2]\n"
                    "        num_res_blocks: 2\n"
                    "        channel_mult: [1, 2, 4]\n"
                    "        num_head_channels: 64\n"
                    "        use_linear_in_transformer: True\n"
                    "        transformer_depth: [1, 2, 10]  # the first is unused\n"
                    "        context_dim: 2048\n"
                    "    conditioner_config:\n"
                    "      params:\n"
                    "        emb_models:\n"
                    "          - target: sgm.modules.encoders.modules.FrozenCLIPEmbedder\n"
                    "            params:\n"
                    "              layer: hidden\n"
                    "          - target: sgm.modules.encoders.modules.FrozenOpenCLIPEmbedder2\n"
                    "            params:\n"
                    "              arch: ViT-bigG-14\n"
                    "          - target: sgm.modules.encoders.modules.ConcatTimestepEmbedderND\n"
                    "            params:\n"
                    "              outdim: 256\n"
                    "    first_stage_config:\n"
                    "      params:\n"
                    "        embed_dim: 4\n"
                    "        ddconfig:\n"
                    "          z_channels: 4\n"
                    "          resolution: 256\n"
                    "          in_channels: 3\n"
                    "          out_ch: 3\n"
                    "          ch: 128\n"
                    "          ch_mult: [1, 2, 4, 4]\n"
                    "          num_res_blocks: 2\n");
  {
    g_autoptr (DlCheckpoint) ck2 = cc_open_ok (path, NULL);
    GPtrArray *w = dl_checkpoint_get_config_warnings (ck2);
    for (guint i = 0; i < w->len; i++)
      g_test_message ("warning: %s", (const char *)w->pdata[i]);
    g_assert_cmpuint (w->len, ==, 0);
    /* the same values, but for the VAE's ddconfig.resolution (256, where
     * diffusers' SDXL vae/config.json says sample_size 1024) */
    DlModelConfig xl;
    dl_model_config_init_sdxl (&xl);
    xl.vae.sample_size = 256;
    assert_same_config (dl_checkpoint_get_config (ck2), &xl, yaml);
    g_assert_cmpstr (dl_checkpoint_get_config_source (ck2, "unet.attention_heads"), ==, yaml);
    g_assert_cmpstr (dl_checkpoint_get_config_source (ck2, "unet.mid_attention_heads"), ==, yaml);
    g_assert_cmpstr (dl_checkpoint_get_config_source (ck2, "vae.scaling_factor"), ==, yaml);
    g_assert_cmpstr (dl_checkpoint_get_config_source (ck2, "scheduler.num_train_timesteps"), ==, yaml);
  }
  g_assert_cmpint (g_unlink (yaml), ==, 0);

  /* the square bigG projection is transposed all the same */
  const DlStTensor *proj = dl_checkpoint_get_stored (ck, "text_encoder_2.text_projection.weight");
  g_assert_cmpint (proj->shape[0], ==, 1280);
  g_assert_cmpint (proj->nbytes, ==, 1280 * 1280 * 2);
  g_assert_false (proj->data == dl_safetensors_find (dl_checkpoint_get_safetensors (ck), TE2 "text_projection")->data);
}

static void
test_sparse_diffusers (void)
{
  cc_scratch_use ("sparse-diffusers");
  g_autoptr (JsonParser) dif = mc_load_manifest ("sdxl/sdxl-diffusers-keys.json");
  JsonObject *root = json_node_get_object (json_parser_get_root (dif));
  JsonObject *files = json_object_get_object_member (root, "files");
  JsonObject *configs = json_object_get_object_member (root, "configs");
  g_autoptr (GList) names = json_object_get_members (files);
  for (GList *l = names; l; l = l->next)
    {
      g_autoptr (GPtrArray) keys = sw_keys_from_json_object (json_object_get_object_member (files, l->data));
      g_autofree char *rel = g_build_filename ("sdxl", l->data, NULL);
      g_autofree char *path = cc_scratch_path (rel);
      sw_write_sparse (path, keys, (const char *[]){ "format", "pt", NULL });
    }
  g_autoptr (GList) cfgs = json_object_get_members (configs);
  for (GList *l = cfgs; l; l = l->next)
    {
      g_autofree char *rel = g_build_filename ("sdxl", l->data, "config.json", NULL);
      g_autofree char *path = cc_scratch_path (rel);
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      json_generator_set_root (gen, json_object_get_member (configs, l->data));
      g_assert_true (json_generator_to_file (gen, path, NULL));
    }
  g_autofree char *dir = cc_scratch_path ("sdxl");
  g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);
  write_text (index, "{\"_class_name\": \"StableDiffusionXLPipeline\"}");

  g_autoptr (DlCheckpoint) ck = cc_open_ok (dir, NULL);
  g_assert_cmpint (dl_checkpoint_get_family (ck), ==, DL_FAMILY_SDXL);
  g_assert_cmpuint (dl_checkpoint_get_n_params (ck), ==, 1680 + 248 + 196 + 517);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (ck)->len, ==, 0);
  g_assert_cmpuint (dl_checkpoint_get_ignored_keys (ck)->len, ==, 0);
  check_sdxl_config (ck);
  mc_check_against_diffusers_manifest (ck, files, full_counts);

  /* every parameter's SGM name is in the SGM manifest, with its part's shape */
  g_autoptr (JsonParser) sgm = mc_load_manifest ("sdxl/sdxl-sgm-keys.json");
  JsonObject *sgm_keys = json_object_get_object_member (json_node_get_object (json_parser_get_root (sgm)), "keys");
  DlLdmLayout layout;
  dl_ldm_layout_from_config (dl_checkpoint_get_config (ck), &layout);
  g_autoptr (GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < dl_checkpoint_get_n_params (ck); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (ck, i);
      DlLdmPart part;
      char *key = dl_keymap_internal_to_ldm_part (p->name, &layout, &part);
      if (!key || !json_object_has_member (sgm_keys, key))
        g_error ("%s maps to %s, which the SGM manifest does not have", p->name, key);
      JsonArray *shape = json_object_get_array_member (json_object_get_object_member (sgm_keys, key), "shape");
      int64_t d0 = json_array_get_int_element (shape, 0);
      if (part == DL_LDM_PART_TRANSPOSED)
        {
          g_assert_cmpint (d0, ==, p->shape[1]);
          g_assert_cmpint (json_array_get_int_element (shape, 1), ==, p->shape[0]);
        }
      else if (part != DL_LDM_PART_WHOLE)
        g_assert_cmpint (d0, ==, 3 * p->shape[0]);
      else
        g_assert_cmpint (d0, ==, p->shape[0]);
      g_hash_table_add (used, key);
    }
  g_assert_cmpuint (g_hash_table_size (used), ==, 2513);
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
  cc_scratch_init ("dl-test-checkpoint-sdxl-XXXXXX");
  dl_test_add ("/io/checkpoint-sdxl/golden-sgm", test_golden_sgm);
  dl_test_add ("/io/checkpoint-sdxl/golden-f16-and-ckpt", test_golden_f16_and_ckpt);
  dl_test_add ("/io/checkpoint-sdxl/golden-needs-config", test_golden_needs_config);
  dl_test_add ("/io/checkpoint-sdxl/family", test_family);
  dl_test_add ("/io/checkpoint-sdxl/keys", test_keys);
  dl_test_add ("/io/checkpoint-sdxl/sgm-yaml", test_sgm_yaml);
  dl_test_add ("/io/checkpoint-sdxl/sparse-sgm", test_sparse_sgm);
  dl_test_add ("/io/checkpoint-sdxl/sparse-diffusers", test_sparse_diffusers);
  int ret = dl_test_run ();
  cc_scratch_remove ();
  g_free (g_sgm);
  g_free (g_diffusers);
  return ret;
}
