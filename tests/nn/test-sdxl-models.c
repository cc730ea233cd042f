/* test-sdxl-models.c: SDXL's text encoders, UNet and VAE against the golden
 * tensors made with transformers/diffusers (../shared/golden/sdxl, cases b, c,
 * d: text_encoders.safetensors, unet.safetensors, vae.safetensors), forward
 * (every intermediate the files hold) and backward (every gradient), loading
 * the tiny model from its diffusers folder.
 *
 * Tolerances as the golden README recommends (max|ours - golden| <= atol +
 * rtol * max|golden| per tensor): forward rtol 1e-4, gradients rtol 1e-3;
 * gradients that are mathematically zero (key-projection biases, text_encoder's
 * last layer, which SDXL never uses) within an absolute 1e-5. */
#include "dl-config.h"

#include <math.h>
#include <string.h>

#include "io/dl-checkpoint.h"
#include "nn-test-util.h"
#include "nn/dl-nn.h"
#include "nn/dl-sdxl-conditioning.h"
#include "nn/dl-unet.h"
#include "nn/dl-vae.h"
#include "ops/dl-ops.h"

#define golden_dir nn_golden_dir

typedef struct
{
  DlCheckpoint *ckpt;
  DlParams *params;
} Model;

static Model *
model_load (const char *layout)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *diffusers = g_build_filename (golden_dir, "tiny-sdxl-diffusers", NULL);
  g_autofree char *sgm = g_build_filename (golden_dir, "tiny-sdxl-sgm.safetensors", NULL);
  gboolean single = g_strcmp0 (layout, "sgm") == 0;
  Model *m = g_new0 (Model, 1);
  m->ckpt = dl_checkpoint_open (single ? sgm : diffusers, single ? diffusers : NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_checkpoint_get_family (m->ckpt), ==, DL_FAMILY_SDXL);
  m->params = dl_params_new (dl_test_device ());
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    {
      g_assert_true (dl_params_load_checkpoint (m->params, m->ckpt, c, DL_DTYPE_F32, &error));
      g_assert_no_error (error);
    }
  return m;
}

static void
model_free (Model *m)
{
  dl_params_free (m->params);
  dl_checkpoint_free (m->ckpt);
  g_free (m);
}

/* ---- the configuration read from the files ---- */

static void
test_config (gconstpointer data)
{
  Model *m = model_load (data);
  const DlModelConfig *c = dl_checkpoint_get_config (m->ckpt);
  g_assert_true (dl_model_config_is_sdxl (c));
  g_assert_cmpint (c->unet.n_levels, ==, 3);
  g_assert_false (c->unet.level_has_attention[0]);
  g_assert_true (c->unet.level_has_attention[1] && c->unet.level_has_attention[2]);
  g_assert_cmpint (c->unet.transformer_depth[1], ==, 1);
  g_assert_cmpint (c->unet.transformer_depth[2], ==, 2);
  g_assert_cmpint (c->unet.mid_transformer_depth, ==, 2);
  g_assert_cmpint (c->unet.attention_heads[1], ==, 2);
  g_assert_cmpint (c->unet.attention_heads[2], ==, 4);
  g_assert_cmpint (c->unet.cross_attention_dim, ==, 28);
  g_assert_true (c->unet.use_linear_projection);
  g_assert_cmpint (c->unet.addition_time_embed_dim, ==, 8);
  g_assert_cmpint (c->unet.projection_class_embeddings_input_dim, ==, 60);
  g_assert_cmpint (c->text_encoder.projection_dim, ==, 0);
  g_assert_cmpint (c->text_encoder.hidden_act, ==, DL_HIDDEN_ACT_QUICK_GELU);
  g_assert_cmpint (c->text_encoder_2.hidden_size, ==, 16);
  g_assert_cmpint (c->text_encoder_2.n_layers, ==, 10);
  g_assert_cmpint (c->text_encoder_2.n_heads, ==, 2);
  g_assert_cmpint (c->text_encoder_2.hidden_act, ==, DL_HIDDEN_ACT_GELU);
  g_assert_cmpint (c->text_encoder_2.projection_dim, ==, 12);
  g_assert_cmpfloat (c->vae.scaling_factor, ==, 0.13025);
  /* the golden README's parameter counts */
  guint64 counts[DL_N_COMPONENTS] = { 0 };
  for (guint i = 0; i < dl_checkpoint_get_n_params (m->ckpt); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (m->ckpt, i);
      counts[p->component] += (guint64)p->numel;
    }
  g_assert_cmpuint (counts[DL_COMPONENT_TEXT_ENCODER], ==, 599496);
  g_assert_cmpuint (counts[DL_COMPONENT_TEXT_ENCODER_2], ==, 824784);
  g_assert_cmpuint (counts[DL_COMPONENT_UNET], ==, 571732);
  g_assert_cmpuint (counts[DL_COMPONENT_VAE], ==, 167959);
  g_assert_cmpuint (dl_checkpoint_get_unknown_keys (m->ckpt)->len, ==, 0);
  model_free (m);
}

/* ---- both text encoders (case b) ---- */

static void
test_text_encoders (gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  Model *m = model_load (data);
  g_autoptr (DlSafetensors) st = nn_golden_open ("text_encoders.safetensors");
  const DlModelConfig *cfg = dl_checkpoint_get_config (m->ckpt);
  g_autoptr (DlTape) tape = nn_new_tape ();
  g_autoptr (DlTensor) ids1 = nn_golden_upload (st, "input_ids.te1", DL_DTYPE_I32);
  g_autoptr (DlTensor) ids2 = nn_golden_upload (st, "input_ids.te2", DL_DTYPE_I32);
  int64_t n_ids = 0;
  g_autofree gint32 *host2 = nn_golden_ids (st, "input_ids.te2", &n_ids);
  g_autoptr (GHashTable) grads1 = nn_make_param_grads (m->params, tape, "text_encoder.");
  g_autoptr (GHashTable) grads2 = nn_make_param_grads (m->params, tape, "text_encoder_2.");
  g_autoptr (GPtrArray) hidden1 = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  g_autoptr (GPtrArray) hidden2 = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  DlSdxlEncodeOptions opts = { .hidden_states_1 = hidden1, .hidden_states_2 = hidden2 };
  g_autoptr (DlTensor) context = NULL, pooled = NULL;
  g_assert_true (dl_sdxl_encode_prompt (m->params, cfg, tape, ids1, ids2, host2, &opts, &context, &pooled, &error));
  g_assert_no_error (error);
  g_autoptr (DlTensor) R = nn_golden_upload (st, "R", DL_DTYPE_F32);
  g_autoptr (DlTensor) Rp = nn_golden_upload (st, "Rp", DL_DTYPE_F32);
  DlTensor *outs[2] = { context, pooled }, *seeds[2] = { R, Rp };
  g_assert_true (dl_tape_backward_multi (tape, outs, seeds, 2, &error));
  g_assert_no_error (error);

  /* diffusers' clip_skip=1: hidden_states[-3] of both, without recording */
  g_autoptr (DlTape) infer = nn_new_tape ();
  dl_tape_set_enabled (infer, FALSE);
  DlSdxlEncodeOptions skip = { .clip_skip = 3 };
  g_autoptr (DlTensor) context3 = NULL, pooled3 = NULL;
  g_assert_true (dl_sdxl_encode_prompt (m->params, cfg, infer, ids1, ids2, host2, &skip, &context3, &pooled3, &error));
  g_assert_no_error (error);
  dl_test_finish ();

  gboolean ok = nn_compare_tensor (context, st, "prompt_embeds", 1e-7, 1e-4);
  ok &= nn_compare_tensor (pooled, st, "text_embeds", 1e-7, 1e-4);
  ok &= nn_compare_tensor (context3, st, "prompt_embeds.clip_skip1", 1e-7, 1e-4);
  ok &= nn_compare_tensor (pooled3, st, "text_embeds", 1e-7, 1e-4);
  g_assert_cmpuint (hidden1->len, ==, (guint)cfg->text_encoder.n_layers + 1);
  g_assert_cmpuint (hidden2->len, ==, (guint)cfg->text_encoder_2.n_layers + 1);
  for (guint i = 0; i < hidden1->len; i++)
    {
      g_autofree char *name = g_strdup_printf ("te1.hidden_states.%u", i);
      ok &= nn_compare_tensor (hidden1->pdata[i], st, name, 1e-7, 1e-4);
    }
  for (guint i = 0; i < hidden2->len; i++)
    {
      g_autofree char *name = g_strdup_printf ("te2.hidden_states.%u", i);
      ok &= nn_compare_tensor (hidden2->pdata[i], st, name, 1e-7, 1e-4);
    }
  /* The key-projection bias gradients hold rounding noise that grows with the
   * layer's other gradients: up to 1.1e-5 in the reference itself for
   * text_encoder_2, whose q/v bias gradients reach 23 and 148 there; bound
   * 1e-4. */
  static const char *const token[] = { "token_embedding", NULL };
  g_assert_cmpuint (nn_compare_param_grads (grads1, st, "grad.te1.", "text_encoder.", token, 1e-7, 1e-3, 1e-4, &ok), ==,
                    51);
  g_assert_cmpuint (nn_compare_param_grads (grads2, st, "grad.te2.", "text_encoder_2.", token, 1e-7, 1e-3, 1e-4, &ok),
                    ==, 164);
  nn_check_token_rows (st, g_hash_table_lookup (grads1, "text_encoder.text_model.embeddings.token_embedding.weight"),
                       "grad.te1.token_embedding", &ok);
  nn_check_token_rows (st, g_hash_table_lookup (grads2, "text_encoder_2.text_model.embeddings.token_embedding.weight"),
                       "grad.te2.token_embedding", &ok);
  g_assert_true (ok);
  model_free (m);
}

/* ---- UNet with the added time conditioning (case c) ---- */

static void
run_unet_case (Model *m, gboolean checkpoint)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = nn_golden_open ("unet.safetensors");
  const DlUNetConfig *cfg = &dl_checkpoint_get_config (m->ckpt)->unet;
  g_autoptr (DlTape) tape = nn_new_tape ();
  g_autoptr (DlTensor) x = nn_golden_upload (st, "x", DL_DTYPE_F32);
  g_autoptr (DlTensor) t = nn_golden_upload (st, "timesteps", DL_DTYPE_F32);
  g_autoptr (DlTensor) ctx = nn_golden_upload (st, "context", DL_DTYPE_F32);
  g_autoptr (DlTensor) text = nn_golden_upload (st, "text_embeds", DL_DTYPE_F32);
  g_autoptr (DlTensor) time_ids = nn_golden_upload (st, "time_ids", DL_DTYPE_F32);
  g_autoptr (DlTensor) target = nn_golden_upload (st, "target", DL_DTYPE_F32);
  dl_tape_watch (tape, x);
  dl_tape_watch (tape, ctx);
  dl_tape_watch (tape, text);
  g_autoptr (GHashTable) grads = nn_make_param_grads (m->params, tape, "unet.");
  g_autoptr (GHashTable) acts = checkpoint ? NULL : dl_unet_activations_new ();
  DlUNetOptions opts = { .text_embeds = text, .time_ids = time_ids, .checkpoint = checkpoint, .activations = acts };
  g_autoptr (DlTensor) eps = dl_unet_forward (m->params, cfg, tape, x, t, ctx, &opts, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) deps = NULL;
  g_autoptr (DlTensor) loss = dl_nn_mse_loss (tape, eps, target, NULL, 1.0f, &deps, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_backward (tape, eps, deps, &error));
  g_assert_no_error (error);
  g_autoptr (DlTensor) gx = dl_tape_get_grad (tape, x);
  g_autoptr (DlTensor) gctx = dl_tape_get_grad (tape, ctx);
  g_autoptr (DlTensor) gtext = dl_tape_get_grad (tape, text);
  dl_test_finish ();
  g_assert_nonnull (gx);
  g_assert_nonnull (gctx);
  g_assert_nonnull (gtext);

  gboolean ok = nn_compare_tensor (eps, st, "eps", 1e-7, 1e-4);
  ok &= nn_compare_tensor (loss, st, "loss", 0, 1e-5);
  if (acts)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, acts);
      while (g_hash_table_iter_next (&it, &k, &v))
        {
          g_autofree char *gname = g_strconcat ("act.", (char *)k, NULL);
          ok &= nn_compare_tensor (v, st, gname, 1e-7, 1e-4);
        }
      g_assert_cmpuint (g_hash_table_size (acts), ==, 14);
    }
  ok &= nn_compare_tensor (gx, st, "grad.x", 1e-9, 1e-3);
  ok &= nn_compare_tensor (gctx, st, "grad.context", 1e-9, 1e-3);
  ok &= nn_compare_tensor (gtext, st, "grad.text_embeds", 1e-9, 1e-3);
  static const char *const inputs[] = { "grad.x", "grad.context", "grad.text_embeds", NULL };
  g_assert_cmpuint (nn_compare_param_grads (grads, st, "grad.", "unet.", inputs, 1e-9, 1e-3, 1e-9, &ok), ==, 618);
  g_assert_true (ok);
}

static void
test_unet (gconstpointer data)
{
  Model *m = model_load (data);
  run_unet_case (m, FALSE);
  model_free (m);
}

static void
test_unet_checkpointing (void)
{
  Model *m = model_load ("diffusers");
  run_unet_case (m, TRUE);
  model_free (m);
}

/* Without the added conditioning an SDXL UNet says what it needs. */
static void
test_unet_needs_time_ids (void)
{
  g_autoptr (GError) error = NULL;
  Model *m = model_load ("diffusers");
  g_autoptr (DlSafetensors) st = nn_golden_open ("unet.safetensors");
  g_autoptr (DlTape) tape = nn_new_tape ();
  dl_tape_set_enabled (tape, FALSE);
  g_autoptr (DlTensor) x = nn_golden_upload (st, "x", DL_DTYPE_F32);
  g_autoptr (DlTensor) t = nn_golden_upload (st, "timesteps", DL_DTYPE_F32);
  g_autoptr (DlTensor) ctx = nn_golden_upload (st, "context", DL_DTYPE_F32);
  g_autoptr (DlTensor) eps =
    dl_unet_forward (m->params, &dl_checkpoint_get_config (m->ckpt)->unet, tape, x, t, ctx, NULL, &error);
  g_assert_null (eps);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "time_ids"));
  dl_test_finish ();
  model_free (m);
}

/* ---- VAE (case d) ---- */

static void
test_vae (gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  Model *m = model_load (data);
  g_autoptr (DlSafetensors) st = nn_golden_open ("vae.safetensors");
  const DlVaeConfig *cfg = &dl_checkpoint_get_config (m->ckpt)->vae;
  g_autoptr (DlTape) infer = nn_new_tape ();
  dl_tape_set_enabled (infer, FALSE);
  g_autoptr (DlTensor) image = nn_golden_upload (st, "image", DL_DTYPE_F32);
  g_autoptr (GHashTable) acts = dl_unet_activations_new ();
  g_autoptr (DlTensor) moments = dl_vae_encode (m->params, cfg, infer, image, acts, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) mean = dl_nn_slice_channels (infer, moments, 0, cfg->latent_channels, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) scaled = dl_nn_scale (infer, mean, (float)cfg->scaling_factor, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) decoded = dl_vae_decode (m->params, cfg, infer, mean, acts, &error);
  g_assert_no_error (error);

  g_autoptr (DlTape) tape = nn_new_tape ();
  g_autoptr (DlTensor) z = nn_golden_upload (st, "posterior.mean", DL_DTYPE_F32);
  dl_tape_watch (tape, z);
  g_autoptr (DlTensor) dec2 = dl_vae_decode (m->params, cfg, tape, z, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) R = nn_golden_upload (st, "R", DL_DTYPE_F32);
  g_assert_true (dl_tape_backward (tape, dec2, R, &error));
  g_assert_no_error (error);
  g_autoptr (DlTensor) gz = dl_tape_get_grad (tape, z);
  dl_test_finish ();

  gboolean ok = nn_compare_tensor (g_hash_table_lookup (acts, "encoder"), st, "act.encoder", 1e-7, 1e-4);
  ok &= nn_compare_tensor (g_hash_table_lookup (acts, "quant_conv"), st, "act.quant_conv", 1e-7, 1e-4);
  ok &= nn_compare_tensor (mean, st, "posterior.mean", 1e-7, 1e-4);
  ok &= nn_compare_tensor (scaled, st, "latents.scaled", 1e-7, 1e-4);
  ok &= nn_compare_tensor (g_hash_table_lookup (acts, "post_quant_conv"), st, "act.post_quant_conv", 1e-7, 1e-4);
  ok &= nn_compare_tensor (g_hash_table_lookup (acts, "decoder.mid_block"), st, "act.decoder.mid_block", 1e-7, 1e-4);
  ok &= nn_compare_tensor (decoded, st, "decoded", 1e-7, 1e-4);
  g_assert_nonnull (gz);
  ok &= nn_compare_tensor (gz, st, "grad.z", 1e-9, 1e-3);
  g_assert_true (ok);
  model_free (m);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_autofree char *found = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  if (!found)
    return dl_test_skip_all ("SDXL golden data (../shared/golden/sdxl) not found");
  golden_dir = g_path_get_dirname (found);
  static const char *layouts[] = { "diffusers", "sgm" };
  for (guint i = 0; i < G_N_ELEMENTS (layouts); i++)
    {
      g_autofree char *p0 = g_strdup_printf ("/nn/sdxl/config/%s", layouts[i]);
      g_autofree char *p1 = g_strdup_printf ("/nn/sdxl/text-encoders/%s", layouts[i]);
      g_autofree char *p2 = g_strdup_printf ("/nn/sdxl/unet/%s", layouts[i]);
      g_autofree char *p3 = g_strdup_printf ("/nn/sdxl/vae/%s", layouts[i]);
      dl_test_add_data (p0, layouts[i], test_config);
      dl_test_add_data (p1, layouts[i], test_text_encoders);
      dl_test_add_data (p2, layouts[i], test_unet);
      dl_test_add_data (p3, layouts[i], test_vae);
    }
  if (!g_getenv ("DREAMLOOM_TEST_QUICK"))
    dl_test_add ("/nn/sdxl/unet/gradient-checkpointing", test_unet_checkpointing);
  dl_test_add ("/nn/sdxl/unet/needs-time-ids", test_unet_needs_time_ids);
  int rc = dl_test_run ();
  g_free (golden_dir);
  return rc;
}
