/* test-sdxl-lora.c: SDXL LoRA in kohya sd-scripts' format (lora_te1_,
 * lora_te2_, lora_unet_ with SGM module paths) read, matched to the tiny SDXL
 * model and attached, against golden case g of ../shared/golden/sdxl
 * (lora_kohya_sdxl.safetensors, lora.safetensors): both text encoders' LoRA'd
 * conditioning, the LoRA'd UNet's eps, the loss and the gradient of every
 * lora_down/lora_up matrix; the same file's modules in the other spellings
 * (diffusers/PEFT paths, kohya names with diffusers UNet paths); and the one-line
 * errors for a LoRA of the other model family.
 *
 * Tolerances as the golden README recommends (max|ours - golden| <= atol +
 * rtol * max|golden| per tensor): forward rtol 1e-4, loss rtol 1e-5, gradients
 * rtol 1e-3; the 12 gradients of text_encoder's last layer, which SDXL never
 * uses (its hidden_states[-2] is the conditioning), are exactly zero there and
 * are checked within an absolute 1e-5. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "io/dl-checkpoint.h"
#include "nn-test-util.h"
#include "nn/dl-lora.h"
#include "nn/dl-nn.h"
#include "nn/dl-sdxl-conditioning.h"
#include "nn/dl-unet.h"
#include "ops/dl-ops.h"

#define golden_dir nn_golden_dir

#define KOHYA_FILE "lora_kohya_sdxl.safetensors"

typedef struct
{
  DlCheckpoint *ckpt;
  DlParams *params;
} Model;

/* "sdxl": the tiny SDXL diffusers folder; "sd1": the tiny SD 1.5 one of the
 * SD1 golden set (../shared/golden) */
static Model *
model_load_as (const char *which, gboolean upload, DlDType dtype)
{
  g_autoptr (GError) error = NULL;
  gboolean sd1 = g_str_equal (which, "sd1");
  g_autofree char *parent = g_path_get_dirname (golden_dir);
  g_autofree char *path = sd1 ? g_build_filename (parent, "tiny-sd15-diffusers", NULL)
                              : g_build_filename (golden_dir, "tiny-sdxl-diffusers", NULL);
  Model *m = g_new0 (Model, 1);
  m->ckpt = dl_checkpoint_open (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_checkpoint_get_family (m->ckpt), ==, sd1 ? DL_FAMILY_SD1 : DL_FAMILY_SDXL);
  m->params = dl_params_new (dl_test_device ());
  for (int c = 0; upload && c < DL_N_COMPONENTS; c++)
    {
      g_assert_true (dl_params_load_checkpoint (m->params, m->ckpt, c, dtype, &error));
      g_assert_no_error (error);
    }
  return m;
}

static Model *
model_load (const char *which, gboolean upload)
{
  return model_load_as (which, upload, DL_DTYPE_F32);
}

static void
model_free (Model *m)
{
  dl_params_free (m->params);
  dl_checkpoint_free (m->ckpt);
  g_free (m);
}

/* The module names of the checkpoint's parameters (what dl_params_module_names
 * gives once they are uploaded), without uploading them. */
static GHashTable *
checkpoint_modules (Model *m)
{
  GHashTable *set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < dl_checkpoint_get_n_params (m->ckpt); i++)
    {
      const char *name = dl_checkpoint_get_param (m->ckpt, i)->name;
      const char *dot = strrchr (name, '.');
      if (dot)
        g_hash_table_add (set, g_strndup (name, dot - name));
    }
  return set;
}

static char *
golden_path (const char *name)
{
  return g_build_filename (golden_dir, name, NULL);
}

static DlLoraFile *
open_lora (const char *path)
{
  g_autoptr (GError) error = NULL;
  DlLoraFile *f = dl_lora_file_open (path, &error);
  g_assert_no_error (error);
  return f;
}

/* ---- names: the kohya file's modules and their targets ---- */

static const char *const expected_targets[][2] = {
  { "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q",
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q" },
  { "lora_unet_input_blocks_8_1_proj_out", "unet.down_blocks.2.attentions.1.proj_out" },
  { "lora_unet_middle_block_1_proj_in", "unet.mid_block.attentions.0.proj_in" },
  { "lora_unet_middle_block_1_transformer_blocks_1_attn2_to_out_0",
    "unet.mid_block.attentions.0.transformer_blocks.1.attn2.to_out.0" },
  { "lora_unet_output_blocks_0_1_transformer_blocks_1_ff_net_0_proj",
    "unet.up_blocks.0.attentions.0.transformer_blocks.1.ff.net.0.proj" },
  { "lora_unet_output_blocks_5_1_transformer_blocks_0_ff_net_2",
    "unet.up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2" },
  { "lora_te1_text_model_encoder_layers_2_mlp_fc2", "text_encoder.text_model.encoder.layers.2.mlp.fc2" },
  { "lora_te2_text_model_encoder_layers_9_self_attn_out_proj",
    "text_encoder_2.text_model.encoder.layers.9.self_attn.out_proj" },
};

/* file name -> target of every module of a resolved file */
static GHashTable *
targets_of (DlLoraFile *f)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < dl_lora_file_get_n_modules (f); i++)
    {
      const DlLoraModule *m = dl_lora_file_get_module (f, i);
      g_assert_nonnull (m->target);
      g_assert_true (g_hash_table_insert (t, g_strdup (m->file_name), g_strdup (m->target)));
    }
  return t;
}

/* A copy of the kohya file with every module renamed by `rename` (kohya file
 * name, its target -> new module name), down/up suffixes as `down`/`up`. */
typedef char *(*RenameFunc) (const char *file_name, const char *target, const DlLdmLayout *layout);

static char *
write_renamed (DlLoraFile *f, const char *dir, const char *name, RenameFunc rename, const DlLdmLayout *layout,
               const char *down, const char *up, gboolean metadata)
{
  g_autoptr (GError) error = NULL;
  DlSafetensors *st = dl_lora_file_get_safetensors (f);
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  for (guint i = 0; i < dl_lora_file_get_n_modules (f); i++)
    {
      const DlLoraModule *m = dl_lora_file_get_module (f, i);
      g_autofree char *n = rename (m->file_name, m->target, layout);
      if (!n)
        continue;
      const char *suffix[3] = { down, up, ".alpha" };
      g_autofree char *alpha_key = g_strconcat (m->file_name, ".alpha", NULL);
      const DlStTensor *src[3] = { m->down, m->up, dl_safetensors_find (st, alpha_key) };
      for (int k = 0; k < 3; k++)
        {
          g_autofree char *key = g_strconcat (n, suffix[k], NULL);
          g_assert_nonnull (src[k]);
          g_assert_true (dl_safetensors_writer_add (w, key, src[k]->dtype, src[k]->ndim, src[k]->shape, src[k]->data,
                                                    src[k]->nbytes, &error));
          g_assert_no_error (error);
        }
    }
  if (metadata)
    dl_safetensors_writer_set_metadata (w, "ss_base_model_version",
                                        dl_safetensors_get_metadata (st, "ss_base_model_version"));
  char *path = g_build_filename (dir, name, NULL);
  g_assert_true (dl_safetensors_writer_write (w, path, &error));
  g_assert_no_error (error);
  return path;
}

static char *
rename_peft (const char *file_name, const char *target, const DlLdmLayout *layout)
{
  (void)file_name, (void)layout;
  return g_strdup (target);
}

/* kohya names, but the UNet's with diffusers paths (as dl_lora_kohya_name) */
static char *
rename_kohya_diffusers (const char *file_name, const char *target, const DlLdmLayout *layout)
{
  if (g_str_has_prefix (target, "unet."))
    return dl_lora_kohya_name (target);
  (void)layout;
  return g_strdup (file_name);
}

static char *
rename_unet_only (const char *file_name, const char *target, const DlLdmLayout *layout)
{
  (void)target, (void)layout;
  return g_str_has_prefix (file_name, "lora_unet_") ? g_strdup (file_name) : NULL;
}

static void
assert_same_targets (GHashTable *want, DlLoraFile *f, RenameFunc rename, const DlLdmLayout *layout)
{
  g_assert_cmpuint (dl_lora_file_get_n_modules (f), ==, g_hash_table_size (want));
  g_autoptr (GHashTable) got = targets_of (f);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, want);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      g_autofree char *n = rename (k, v, layout);
      g_assert_cmpstr (g_hash_table_lookup (got, n), ==, v);
    }
}

static void
test_names (void)
{
  g_autoptr (GError) error = NULL;
  Model *m = model_load ("sdxl", FALSE);
  g_autoptr (GHashTable) modules = checkpoint_modules (m);
  g_autofree char *path = golden_path (KOHYA_FILE);
  g_autoptr (DlLoraFile) f = open_lora (path);
  const char *evidence = NULL;
  g_assert_cmpint (dl_lora_file_get_family (f, &evidence), ==, DL_LORA_FAMILY_SDXL);
  g_assert_cmpstr (evidence, ==, "lora_te1_/lora_te2_ modules");
  g_assert_cmpuint (dl_lora_file_get_n_modules (f), ==, 270);
  g_autoptr (GPtrArray) unmatched = NULL;
  g_assert_true (dl_lora_file_resolve (f, modules, &unmatched, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unmatched->len, ==, 0);

  /* the golden README's counts, each module a Linear of the model */
  guint te1 = 0, te2 = 0, unet = 0;
  for (guint i = 0; i < dl_lora_file_get_n_modules (f); i++)
    {
      const DlLoraModule *lm = dl_lora_file_get_module (f, i);
      g_assert_false (lm->conv);
      g_assert_cmpint (lm->rank, ==, 4);
      g_assert_cmpfloat (lm->alpha, ==, 2.0f);
      te1 += g_str_has_prefix (lm->target, "text_encoder.");
      te2 += g_str_has_prefix (lm->target, "text_encoder_2.");
      unet += g_str_has_prefix (lm->target, "unet.");
    }
  g_assert_cmpuint (te1, ==, 18);
  g_assert_cmpuint (te2, ==, 60);
  g_assert_cmpuint (unet, ==, 192);
  g_autoptr (GHashTable) targets = targets_of (f);
  for (guint i = 0; i < G_N_ELEMENTS (expected_targets); i++)
    g_assert_cmpstr (g_hash_table_lookup (targets, expected_targets[i][0]), ==, expected_targets[i][1]);

  /* kohya's SDXL names from the internal ones (what a writer uses) */
  DlLdmLayout layout, from_config;
  g_assert_true (dl_lora_ldm_layout_from_modules (modules, &layout));
  dl_ldm_layout_from_config (dl_checkpoint_get_config (m->ckpt), &from_config);
  g_assert_cmpint (layout.unet_levels, ==, from_config.unet_levels);
  g_assert_cmpint (layout.unet_layers_per_block, ==, from_config.unet_layers_per_block);
  for (int b = 0; b < layout.unet_levels; b++)
    g_assert_cmpint (layout.unet_level_attention[b], ==, from_config.unet_level_attention[b]);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, targets);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      g_autofree char *name = dl_lora_kohya_name_sdxl (v, &layout);
      g_assert_cmpstr (name, ==, k);
    }
  g_assert_null (dl_lora_kohya_name_sdxl ("vae.encoder.conv_in", &layout));

  /* the same modules spelled as diffusers/PEFT and as kohya names with
   * diffusers UNet paths (ComfyUI reads both) */
  g_autofree char *dir = g_dir_make_tmp ("dreamloom-sdxl-lora-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *peft =
    write_renamed (f, dir, "peft.safetensors", rename_peft, &layout, ".lora_A.weight", ".lora_B.weight", FALSE);
  g_autofree char *kd = write_renamed (f, dir, "kohya-diffusers.safetensors", rename_kohya_diffusers, &layout,
                                       ".lora_down.weight", ".lora_up.weight", FALSE);
  struct
  {
    const char *path;
    RenameFunc rename;
    const char *evidence;
  } variants[] = {
    { peft, rename_peft, "text_encoder_2 modules" },
    { kd, rename_kohya_diffusers, "lora_te1_/lora_te2_ modules" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      g_autoptr (DlLoraFile) g = open_lora (variants[i].path);
      g_assert_cmpint (dl_lora_file_get_family (g, &evidence), ==, DL_LORA_FAMILY_SDXL);
      g_assert_cmpstr (evidence, ==, variants[i].evidence);
      g_autoptr (GPtrArray) um = NULL;
      g_assert_true (dl_lora_file_resolve (g, modules, &um, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (um->len, ==, 0);
      assert_same_targets (targets, g, variants[i].rename, &layout);
    }
  g_unlink (peft);
  g_unlink (kd);
  g_rmdir (dir);
  model_free (m);
}

/* ---- a LoRA of the other family: one line naming both ---- */

static void
assert_family_error (Model *m, const char *path, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlLoraFile) f = open_lora (path);
  g_autoptr (GHashTable) tensors =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  g_autoptr (GPtrArray) unmatched = NULL;
  g_assert_false (dl_lora_attach (m->params, f, 1.0f, tensors, &unmatched, &error));
  g_assert_nonnull (error);
  if (g_test_verbose ())
    g_printerr ("%s\n", error->message);
  g_assert_nonnull (strstr (error->message, expected));
  g_assert_null (strchr (error->message, '\n'));
  g_assert_null (unmatched);
  g_assert_cmpuint (g_hash_table_size (tensors), ==, 0);
  g_assert_cmpuint (dl_params_n_adapters (m->params), ==, 0);
}

static void
test_wrong_family (void)
{
  g_autoptr (GError) error = NULL;
  Model *xl = model_load ("sdxl", TRUE);
  Model *sd1 = model_load ("sd1", TRUE);
  g_autofree char *xl_lora = golden_path (KOHYA_FILE);
  g_autofree char *parent = g_path_get_dirname (golden_dir);
  g_autofree char *sd1_lora = g_build_filename (parent, "lora_kohya.safetensors", NULL);

  assert_family_error (sd1, xl_lora,
                       KOHYA_FILE ": an SDXL LoRA (lora_te1_/lora_te2_ modules) cannot be applied to a Stable "
                                  "Diffusion 1.x/2.x model");
  assert_family_error (xl, sd1_lora,
                       "lora_kohya.safetensors: a Stable Diffusion 1.x/2.x LoRA (lora_te_ modules) cannot be applied "
                       "to an SDXL model");

  /* UNet-only files: the metadata, else names only one family's UNet has */
  g_autofree char *dir = g_dir_make_tmp ("dreamloom-sdxl-lora-XXXXXX", &error);
  g_assert_no_error (error);
  g_autoptr (DlLoraFile) xf = open_lora (xl_lora);
  g_autoptr (DlLoraFile) sf = open_lora (sd1_lora);
  g_autofree char *xl_meta = write_renamed (xf, dir, "xl-meta.safetensors", rename_unet_only, NULL, ".lora_down.weight",
                                            ".lora_up.weight", TRUE);
  g_autofree char *xl_bare = write_renamed (xf, dir, "xl-bare.safetensors", rename_unet_only, NULL, ".lora_down.weight",
                                            ".lora_up.weight", FALSE);
  g_autofree char *sd_bare = write_renamed (sf, dir, "sd-bare.safetensors", rename_unet_only, NULL, ".lora_down.weight",
                                            ".lora_up.weight", FALSE);
  assert_family_error (sd1, xl_meta,
                       "xl-meta.safetensors: an SDXL LoRA (ss_base_model_version “sdxl_base_v1-0”) cannot be applied "
                       "to a Stable Diffusion 1.x/2.x model");
  assert_family_error (sd1, xl_bare, "xl-bare.safetensors: an SDXL LoRA (UNet module lora_unet_");
  assert_family_error (sd1, xl_bare, "_transformer_blocks_1_");
  assert_family_error (xl, sd_bare,
                       "sd-bare.safetensors: a Stable Diffusion 1.x/2.x LoRA (UNet module lora_unet_down_blocks_0_"
                       "attentions_");
  g_unlink (xl_meta);
  g_unlink (xl_bare);
  g_unlink (sd_bare);
  g_rmdir (dir);
  dl_test_finish ();
  model_free (sd1);
  model_free (xl);
}

/* ---- case g: forward and backward with the LoRA attached ---- */

/* A gradient computed through f16 activations against the f32 golden one: the
 * direction within cosine 0.995 and every element within rtol of the tensor's
 * largest (f16's rounding through some 30 layers reaches a few per cent of the
 * small LoRA gradients; a wrong or missing path is far outside both bounds). */
static gboolean
compare_f16_grad (DlTensor *g, const char *name, const float *want, int64_t n, double rtol)
{
  g_autofree float *got = dl_test_download (g);
  double dot = 0, gg = 0, ww = 0, peak = 0, worst = 0;
  for (int64_t e = 0; e < n; e++)
    {
      dot += (double)got[e] * want[e];
      gg += (double)got[e] * got[e];
      ww += (double)want[e] * want[e];
      peak = fmax (peak, fabs (want[e]));
      worst = fmax (worst, fabs ((double)got[e] - want[e]));
    }
  double cosine = dot / sqrt (gg * ww + 1e-300);
  if (cosine >= 0.995 && worst <= rtol * peak)
    return TRUE;
  g_printerr ("FAIL %s: cosine %.5f (bound 0.995), max err %.3g (bound %.3g)\n", name, cosine, worst, rtol * peak);
  return FALSE;
}

/* Case g with the base weights and the activations in `dtype` (the LoRA
 * matrices and their gradients stay f32, as the trainer keeps them); `rtol` is
 * relative to each tensor's largest value.  f16 covers the pooled output's
 * backward into an f16 hidden state (the text encoders' LoRA under --fp16). */
static void
golden_case (DlDType dtype, double rtol)
{
  g_autoptr (GError) error = NULL;
  Model *m = model_load_as ("sdxl", TRUE, dtype);
  const DlModelConfig *cfg = dl_checkpoint_get_config (m->ckpt);
  g_autoptr (DlSafetensors) st = nn_golden_open ("lora.safetensors");
  g_autofree char *path = golden_path (KOHYA_FILE);
  g_autoptr (DlLoraFile) lf = open_lora (path);
  g_autoptr (GHashTable) tensors =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  g_autoptr (GPtrArray) unmatched = NULL;
  g_assert_true (dl_lora_attach (m->params, lf, 1.0f, tensors, &unmatched, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unmatched->len, ==, 0);
  g_assert_cmpuint (dl_params_n_adapters (m->params), ==, 270);
  g_assert_cmpuint (g_hash_table_size (tensors), ==, 540);

  /* the LoRA matrices are the trained parameters; the base weights are frozen */
  g_autoptr (DlTape) tape = nn_new_tape ();
  dl_tape_set_activation_dtype (tape, dtype);
  g_autoptr (GHashTable) grads =
    g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, tensors);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      DlTensor *p = v;
      DlTensor *g = dl_tensor_new (dl_test_device (), k, DL_DTYPE_F32, p->ndim, p->shape, &error);
      g_assert_no_error (error);
      g_assert_true (dl_op_fill (dl_test_recorder (), g, 0.0, &error));
      dl_tape_set_param_grad (tape, p, g);
      g_hash_table_insert (grads, g_strdup (k), g);
    }

  g_autoptr (DlTensor) ids1 = nn_golden_upload (st, "input_ids.te1", DL_DTYPE_I32);
  g_autoptr (DlTensor) ids2 = nn_golden_upload (st, "input_ids.te2", DL_DTYPE_I32);
  g_autofree gint32 *host2 = nn_golden_ids (st, "input_ids.te2", NULL);
  g_autoptr (DlTensor) x = nn_golden_upload (st, "x", dtype);
  g_autoptr (DlTensor) t = nn_golden_upload (st, "timesteps", DL_DTYPE_F32);
  g_autoptr (DlTensor) time_ids = nn_golden_upload (st, "time_ids", DL_DTYPE_F32);
  g_autoptr (DlTensor) target = nn_golden_upload (st, "target", DL_DTYPE_F32);
  g_autoptr (DlTensor) context = NULL, pooled = NULL;
  g_assert_true (dl_sdxl_encode_prompt (m->params, cfg, tape, ids1, ids2, host2, NULL, &context, &pooled, &error));
  g_assert_no_error (error);
  DlUNetOptions opts = { .text_embeds = pooled, .time_ids = time_ids };
  g_autoptr (DlTensor) eps = dl_unet_forward (m->params, &cfg->unet, tape, x, t, context, &opts, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) deps = NULL;
  g_autoptr (DlTensor) loss = dl_nn_mse_loss (tape, eps, target, NULL, 1.0f, &deps, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_backward (tape, eps, deps, &error));
  g_assert_no_error (error);
  dl_test_finish ();

  g_assert_cmpint (eps->dtype, ==, dtype);
  g_assert_cmpint (pooled->dtype, ==, dtype);
  gboolean ok = nn_compare_tensor (context, st, "prompt_embeds", 1e-7, MAX (rtol, 1e-4));
  ok &= nn_compare_tensor (pooled, st, "text_embeds", 1e-7, MAX (rtol, 1e-4));
  ok &= nn_compare_tensor (eps, st, "eps", 1e-7, MAX (rtol, 1e-4));
  ok &= nn_compare_tensor (loss, st, "loss", 0, MAX (rtol, 1e-5));
  guint n_checked = 0, n_zero = 0;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *gt = dl_safetensors_get_tensor (st, i);
      if (!g_str_has_prefix (gt->name, "grad."))
        continue;
      DlTensor *g = g_hash_table_lookup (grads, gt->name + 5);
      g_assert_nonnull (g);
      int64_t n = 0;
      g_autofree float *want = nn_golden_f32 (st, gt->name, &n);
      double peak = 0;
      for (int64_t e = 0; e < n; e++)
        peak = fmax (peak, fabs (want[e]));
      if (peak == 0)
        {
          /* text_encoder's last layer: SDXL never uses it */
          g_assert_true (g_str_has_prefix (gt->name, "grad.lora_te1_text_model_encoder_layers_2_"));
          ok &= nn_compare_tensor (g, st, gt->name, 1e-5, 0);
          n_zero++;
        }
      else if (dtype == DL_DTYPE_F32)
        ok &= nn_compare_tensor (g, st, gt->name, 1e-9, 1e-3);
      else
        ok &= compare_f16_grad (g, gt->name, want, n, rtol);
      n_checked++;
    }
  g_assert_cmpuint (n_checked, ==, 540);
  g_assert_cmpuint (n_zero, ==, 12);

  /* without the LoRA: the base model's eps */
  dl_params_clear_adapters (m->params);
  g_autoptr (DlTape) infer = nn_new_tape ();
  dl_tape_set_enabled (infer, FALSE);
  dl_tape_set_activation_dtype (infer, dtype);
  g_autoptr (DlTensor) context0 = NULL, pooled0 = NULL;
  g_assert_true (dl_sdxl_encode_prompt (m->params, cfg, infer, ids1, ids2, host2, NULL, &context0, &pooled0, &error));
  g_assert_no_error (error);
  DlUNetOptions opts0 = { .text_embeds = pooled0, .time_ids = time_ids };
  g_autoptr (DlTensor) eps0 = dl_unet_forward (m->params, &cfg->unet, infer, x, t, context0, &opts0, &error);
  g_assert_no_error (error);
  dl_test_finish ();
  ok &= nn_compare_tensor (eps0, st, "nolora.eps", 1e-7, MAX (rtol, 1e-4));
  g_assert_true (ok);
  model_free (m);
}

static void
test_golden (void)
{
  golden_case (DL_DTYPE_F32, 0);
}

static void
test_golden_f16 (void)
{
  golden_case (DL_DTYPE_F16, 0.12);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_autofree char *found = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  if (!found)
    return dl_test_skip_all ("SDXL golden data (../shared/golden/sdxl) not found");
  golden_dir = g_path_get_dirname (found);
  dl_test_add ("/nn/sdxl-lora/names", test_names);
  dl_test_add ("/nn/sdxl-lora/wrong-family", test_wrong_family);
  dl_test_add ("/nn/sdxl-lora/golden", test_golden);
  dl_test_add ("/nn/sdxl-lora/golden-f16", test_golden_f16);
  int rc = dl_test_run ();
  g_free (golden_dir);
  return rc;
}
