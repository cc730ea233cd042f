/* test-sd-models.c: the text encoder, UNet and VAE against the golden tensors
 * made with transformers/diffusers (golden cases b, c, d:
 * ../shared/golden/text_encoder.safetensors, unet.safetensors, vae.safetensors),
 * forward (every intermediate the files hold) and backward (every gradient),
 * loading the tiny model from its diffusers folder or its LDM single file.
 *
 * Tolerances (max|ours - golden| <= atol + rtol * max|golden|, per tensor): the
 * float32 references differ from a float64 recomputation by a few 1e-6 relative,
 * so forward rtol 1e-4; gradients rtol 1e-3 (reduction order matters more); the
 * text encoder's k_proj bias gradients are mathematically zero (softmax ignores
 * a shift common to every key) and hold only rounding noise: atol 1e-5. */
#include "dl-config.h"

#include "nn-test-util.h"
#include "io/dl-checkpoint.h"
#include "nn/dl-text-encoder.h"
#include "nn/dl-nn.h"
#include "nn/dl-unet.h"
#include "nn/dl-vae.h"
#include "ops/dl-ops.h"
#include "ref/ref-attention.h"

#include <math.h>

#define golden_dir nn_golden_dir

typedef struct
{
  DlCheckpoint *ckpt;
  DlParams *params;
} Model;

static Model *
model_load_as (const char *layout, DlDType dtype)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *diffusers = g_build_filename (golden_dir, "tiny-sd15-diffusers", NULL);
  g_autofree char *ldm = g_build_filename (golden_dir, "tiny-sd15-ldm.safetensors", NULL);
  gboolean single = g_strcmp0 (layout, "ldm") == 0;
  Model *m = g_new0 (Model, 1);
  m->ckpt = dl_checkpoint_open (single ? ldm : diffusers, single ? diffusers : NULL, &error);
  g_assert_no_error (error);
  m->params = dl_params_new (dl_test_device ());
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    {
      g_assert_true (dl_params_load_checkpoint (m->params, m->ckpt, c, dtype, &error));
      g_assert_no_error (error);
    }
  return m;
}

static Model *
model_load (const char *layout)
{
  return model_load_as (layout, DL_DTYPE_F32);
}

static void
model_free (Model *m)
{
  dl_params_free (m->params);
  dl_checkpoint_free (m->ckpt);
  g_free (m);
}

/* ---- text encoder (case b) ---- */

static void
test_text_encoder (gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  Model *m = model_load (data);
  g_autoptr (DlSafetensors) st = nn_golden_open ("text_encoder.safetensors");
  const DlTextEncoderConfig *cfg = &dl_checkpoint_get_config (m->ckpt)->text_encoder;
  g_autoptr (DlTape) tape = nn_new_tape ();
  g_autoptr (DlTensor) ids = nn_golden_upload (st, "input_ids", DL_DTYPE_I32);
  g_autoptr (GHashTable) grads = nn_make_param_grads (m->params, tape, "text_encoder.");

  g_autoptr (GPtrArray) hidden = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  DlTextEncoderOptions opts = { .clip_skip = 1, .hidden_states = hidden };
  g_autoptr (DlTensor) last = dl_text_encoder_forward (m->params, cfg, tape, ids, &opts, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) R = nn_golden_upload (st, "R", DL_DTYPE_F32);
  g_assert_true (dl_tape_backward (tape, last, R, &error));
  g_assert_no_error (error);

  /* clip skip 2 (A1111) = diffusers clip_skip=1, without recording */
  g_autoptr (DlTape) infer = nn_new_tape ();
  dl_tape_set_enabled (infer, FALSE);
  DlTextEncoderOptions skip2 = { .clip_skip = 2 };
  g_autoptr (DlTensor) skipped = dl_text_encoder_forward (m->params, cfg, infer, ids, &skip2, &error);
  g_assert_no_error (error);
  dl_test_finish ();

  gboolean ok = nn_compare_tensor (last, st, "last_hidden_state", 1e-6, 1e-4);
  ok &= nn_compare_tensor (skipped, st, "clip_skip1.diffusers", 1e-6, 1e-4);
  g_assert_cmpuint (hidden->len, ==, (guint)cfg->n_layers + 1);
  for (guint i = 0; i < hidden->len; i++)
    {
      g_autofree char *name = g_strdup_printf ("hidden_states.%u", i);
      ok &= nn_compare_tensor (hidden->pdata[i], st, name, 1e-6, 1e-4);
    }
  /* parameter gradients (the token embedding only for the rows used) */
  g_assert_cmpuint (
    nn_compare_param_grads (grads, st, "grad.text_model.", "text_encoder.text_model.", NULL, 1e-7, 1e-3, 1e-5, &ok), ==,
    51);
  nn_check_token_rows (st, g_hash_table_lookup (grads, "text_encoder.text_model.embeddings.token_embedding.weight"),
                       "grad.token_embedding", &ok);
  g_assert_true (ok);
  model_free (m);
}

/* ---- UNet (case c) ---- */

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
  g_autoptr (DlTensor) target = nn_golden_upload (st, "target", DL_DTYPE_F32);
  dl_tape_watch (tape, x);
  dl_tape_watch (tape, ctx);
  g_autoptr (GHashTable) grads = nn_make_param_grads (m->params, tape, "unet.");
  g_autoptr (GHashTable) acts = checkpoint ? NULL : dl_unet_activations_new ();
  DlUNetOptions opts = { .checkpoint = checkpoint, .activations = acts };
  g_autoptr (DlTensor) eps = dl_unet_forward (m->params, cfg, tape, x, t, ctx, &opts, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) deps = NULL;
  g_autoptr (DlTensor) loss = dl_nn_mse_loss (tape, eps, target, NULL, 1.0f, &deps, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_backward (tape, eps, deps, &error));
  g_assert_no_error (error);
  g_autoptr (DlTensor) gx = dl_tape_get_grad (tape, x);
  g_autoptr (DlTensor) gctx = dl_tape_get_grad (tape, ctx);
  dl_test_finish ();
  g_assert_nonnull (gx);
  g_assert_nonnull (gctx);

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
      g_assert_cmpuint (g_hash_table_size (acts), ==, 13);
    }
  ok &= nn_compare_tensor (gx, st, "grad.x", 1e-9, 1e-3);
  ok &= nn_compare_tensor (gctx, st, "grad.context", 1e-9, 1e-3);
  static const char *const inputs[] = { "grad.x", "grad.context", NULL };
  g_assert_cmpuint (nn_compare_param_grads (grads, st, "grad.", "unet.", inputs, 1e-9, 1e-3, 1e-9, &ok), ==, 684);
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
  int L = cfg->latent_channels;
  g_autoptr (DlTensor) mean = dl_nn_slice_channels (infer, moments, 0, L, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) decoded = dl_vae_decode (m->params, cfg, infer, mean, acts, &error);
  g_assert_no_error (error);

  /* grad.z: L = sum(decode(z) * R) */
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
  ok &= nn_compare_tensor (g_hash_table_lookup (acts, "post_quant_conv"), st, "act.post_quant_conv", 1e-7, 1e-4);
  ok &= nn_compare_tensor (g_hash_table_lookup (acts, "decoder.mid_block"), st, "act.decoder.mid_block", 1e-7, 1e-4);
  ok &= nn_compare_tensor (decoded, st, "decoded", 1e-7, 1e-4);
  g_assert_nonnull (gz);
  ok &= nn_compare_tensor (gz, st, "grad.z", 1e-9, 1e-3);
  g_assert_true (ok);
  model_free (m);
}

/* ---- half precision: f16 weights and activations, fp32 arithmetic ---- */

static DlTensor *
to_f16 (DlTensor *t)
{
  g_autoptr (GError) error = NULL;
  DlTensor *h = dl_tensor_new (dl_test_device (), t->name, DL_DTYPE_F16, t->ndim, t->shape, &error);
  g_assert_no_error (error);
  g_assert_true (dl_op_copy (dl_test_recorder (), h, t, &error));
  g_assert_no_error (error);
  return h;
}

/* f16 storage of every weight and activation (10-bit mantissas).  Measured on
 * lavapipe: eps 2.8e-3 of max|eps|, loss 1e-4, the gradients checked 1.3e-3 to
 * 3.4e-3 of their largest element; bounds: eps 1e-2, loss 1e-3, gradients 2e-2. */
static void
test_unet_fp16 (void)
{
  g_autoptr (GError) error = NULL;
  Model *m = model_load_as ("diffusers", DL_DTYPE_F16);
  g_autoptr (DlSafetensors) st = nn_golden_open ("unet.safetensors");
  const DlUNetConfig *cfg = &dl_checkpoint_get_config (m->ckpt)->unet;
  g_autoptr (DlTape) tape = nn_new_tape ();
  dl_tape_set_activation_dtype (tape, DL_DTYPE_F16);
  g_autoptr (DlTensor) x32 = nn_golden_upload (st, "x", DL_DTYPE_F32);
  g_autoptr (DlTensor) c32 = nn_golden_upload (st, "context", DL_DTYPE_F32);
  g_autoptr (DlTensor) x = to_f16 (x32);
  g_autoptr (DlTensor) ctx = to_f16 (c32);
  g_autoptr (DlTensor) t = nn_golden_upload (st, "timesteps", DL_DTYPE_F32);
  g_autoptr (DlTensor) target = nn_golden_upload (st, "target", DL_DTYPE_F32);
  g_autoptr (GHashTable) grads = nn_make_param_grads (m->params, tape, "unet.");
  g_autoptr (DlTensor) eps = dl_unet_forward (m->params, cfg, tape, x, t, ctx, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (eps->dtype, ==, DL_DTYPE_F16);
  g_autoptr (DlTensor) deps = NULL;
  g_autoptr (DlTensor) loss = dl_nn_mse_loss (tape, eps, target, NULL, 1.0f, &deps, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_backward (tape, eps, deps, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  gboolean ok = nn_compare_tensor (eps, st, "eps", 0, 1e-2);
  ok &= nn_compare_tensor (loss, st, "loss", 0, 1e-3);
  const char *some[] = { "conv_in.weight",
                         "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                         "mid_block.resnets.0.conv1.weight",
                         "up_blocks.3.resnets.2.conv2.bias",
                         "time_embedding.linear_1.weight",
                         "conv_out.weight" };
  for (guint i = 0; i < G_N_ELEMENTS (some); i++)
    {
      g_autofree char *pname = g_strconcat ("unet.", some[i], NULL);
      g_autofree char *gname = g_strconcat ("grad.", some[i], NULL);
      ok &= nn_compare_tensor (g_hash_table_lookup (grads, pname), st, gname, 0, 2e-2);
    }
  g_assert_true (ok);
  model_free (m);
}

/* ---- the wide single-head attention path (the real VAE's 512-wide head) ---- */

static void
test_wide_attention (void)
{
  g_autoptr (GError) error = NULL;
  const int64_t B = 2, Nq = 37, Nk = 29, D = 300;
  g_autofree float *q = dl_test_random (B * Nq * D, 1, -1, 1);
  g_autofree float *k = dl_test_random (B * Nk * D, 2, -1, 1);
  g_autofree float *v = dl_test_random (B * Nk * D, 3, -1, 1);
  g_autofree float *dout = dl_test_random (B * Nq * D, 4, -1, 1);
  int64_t qs[3] = { B, Nq, D }, ks[3] = { B, Nk, D };
  g_autoptr (DlTensor) tq = dl_tensor_new (dl_test_device (), "q", DL_DTYPE_F32, 3, qs, &error);
  g_autoptr (DlTensor) tk = dl_tensor_new (dl_test_device (), "k", DL_DTYPE_F32, 3, ks, &error);
  g_autoptr (DlTensor) tv = dl_tensor_new (dl_test_device (), "v", DL_DTYPE_F32, 3, ks, &error);
  g_autoptr (DlTensor) td = dl_tensor_new (dl_test_device (), "dout", DL_DTYPE_F32, 3, qs, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tensor_upload_f32 (tq, q, &error) && dl_tensor_upload_f32 (tk, k, &error) &&
                 dl_tensor_upload_f32 (tv, v, &error) && dl_tensor_upload_f32 (td, dout, &error));
  g_autoptr (DlTape) tape = nn_new_tape ();
  dl_tape_watch (tape, tq);
  dl_tape_watch (tape, tk);
  dl_tape_watch (tape, tv);
  g_autoptr (DlTensor) o = dl_nn_attention (tape, tq, tk, tv, 1, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_backward (tape, o, td, &error));
  g_assert_no_error (error);
  g_autoptr (DlTensor) gq = dl_tape_get_grad (tape, tq);
  g_autoptr (DlTensor) gk = dl_tape_get_grad (tape, tk);
  g_autoptr (DlTensor) gv = dl_tape_get_grad (tape, tv);
  dl_test_finish ();
  float scale = 1.0f / sqrtf ((float)D);
  g_autofree float *ro = g_new (float, B *Nq *D), *rlse = g_new (float, B *Nq);
  g_autofree float *rq = g_new (float, B *Nq *D), *rk = g_new (float, B *Nk *D), *rv = g_new (float, B *Nk *D);
  ref_attention_forward (ro, rlse, q, k, v, B, 1, Nq, Nk, D, scale, FALSE);
  ref_attention_backward (rq, rk, rv, q, k, v, dout, B, 1, Nq, Nk, D, scale, FALSE);
  g_autofree float *go = dl_test_download (o), *gqv = dl_test_download (gq), *gkv = dl_test_download (gk),
                   *gvv = dl_test_download (gv);
  /* f32 GPU vs double-accumulated reference over 300-long dot products */
  dl_test_assert_close ("o", go, ro, B * Nq * D, 1e-5, 1e-4);
  dl_test_assert_close ("dq", gqv, rq, B * Nq * D, 1e-5, 1e-3);
  dl_test_assert_close ("dk", gkv, rk, B * Nk * D, 1e-5, 1e-3);
  dl_test_assert_close ("dv", gvv, rv, B * Nk * D, 1e-5, 1e-3);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/nn/attention/wide-single-head", test_wide_attention);
  golden_dir = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!golden_dir)
    return dl_test_skip_all ("golden data (../shared/golden) not found");
  g_autofree char *d = golden_dir;
  golden_dir = g_path_get_dirname (d);
  static const char *layouts[] = { "diffusers", "ldm" };
  /* $DREAMLOOM_TEST_QUICK (the sanitizer build in CI): one layout, no
   * checkpointing rerun; the plain build runs every case */
  gboolean quick = g_getenv ("DREAMLOOM_TEST_QUICK") != NULL;
  for (int i = 0; i < (quick ? 1 : 2); i++)
    {
      g_autofree char *p1 = g_strdup_printf ("/nn/text-encoder/%s", layouts[i]);
      g_autofree char *p2 = g_strdup_printf ("/nn/unet/%s", layouts[i]);
      g_autofree char *p3 = g_strdup_printf ("/nn/vae/%s", layouts[i]);
      dl_test_add_data (p1, layouts[i], test_text_encoder);
      dl_test_add_data (p2, layouts[i], test_unet);
      dl_test_add_data (p3, layouts[i], test_vae);
    }
  if (!quick)
    dl_test_add ("/nn/unet/gradient-checkpointing", test_unet_checkpointing);
  dl_test_add ("/nn/unet/fp16", test_unet_fp16);
  int rc = dl_test_run ();
  g_free (golden_dir);
  return rc;
}
