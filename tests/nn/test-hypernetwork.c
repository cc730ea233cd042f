/* test-hypernetwork.c: A1111 hypernetworks (nn/dl-hypernetwork.h).
 *
 *  - golden case j (../shared/golden): the tiny UNet with the size-32
 *    module pair applied in every attention whose context is 32 wide, from
 *    hypernetwork.safetensors and from A1111's own hypernetwork_a1111.pt: eps and
 *    loss, and the gradients of the eight hypernetwork tensors (tolerances:
 *    eps rtol 1e-4, loss 1e-5, gradients 1e-3; the k-module bias gradients are
 *    mathematically zero, as softmax ignores a shift common to every key, so
 *    absolute 1e-5);
 *  - the training run's hn-init.pt: every entry, and tensors equal to the
 *    replay's init.*;
 *  - a module with every kind of layer (tanh, LayerNorm, activate_output,
 *    dropout in training) against a CPU reference: the Sequential indices, the
 *    output, and every gradient against finite differences of that reference;
 *  - dropout under gradient checkpointing draws the same masks (same gradients);
 *  - several hypernetworks in sequence, the training multiplier, no module for a
 *    width; strength 0 leaves the UNet's output bit for bit unchanged;
 *  - sizes no attention has (the trainer's warning);
 *  - A1111's initialisations (statistics, determinism);
 *  - files: write -> read keeps every entry and tensor, writing again gives the
 *    same bytes, the pickle uses only the opcodes and globals A1111's safe
 *    unpickler and torch's weights_only loader take, A1111's defaults for
 *    missing entries, the old linear1/linear2 names, ComfyUI's string size keys,
 *    and clear errors for broken files and unsupported activations;
 *  - the <hypernet:name:strength> tag of the PNG parameters text. */
#include "dl-config.h"

#include "nn-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "dl-philox.h"
#include "image/dl-infotext.h"
#include "io/dl-checkpoint.h"
#include "io/dl-pickle.h"
#include "io/dl-torch-ckpt.h"
#include "io/dl-torch-writer.h"
#include "io/dl-zip.h"
#include "io/pickle-check.h"
#include "nn/dl-hypernetwork.h"
#include "nn/dl-nn.h"
#include "nn/dl-unet.h"
#include "ops/dl-op-random.h"

#define golden_dir nn_golden_dir

static char *tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

static float *
download (DlTensor *t)
{
  return dl_test_download (t);
}

/* ---- the tiny model and golden case j ---- */

typedef struct
{
  DlCheckpoint *ckpt;
  DlParams *params;
} Model;

static Model *
model_load (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *diffusers = g_build_filename (golden_dir, "tiny-sd15-diffusers", NULL);
  Model *m = g_new0 (Model, 1);
  m->ckpt = dl_checkpoint_open (diffusers, NULL, &error);
  g_assert_no_error (error);
  m->params = dl_params_new (dl_test_device ());
  g_assert_true (dl_params_load_checkpoint (m->params, m->ckpt, DL_COMPONENT_UNET, DL_DTYPE_F32, &error));
  g_assert_no_error (error);
  return m;
}

static void
model_free (Model *m)
{
  dl_params_free (m->params);
  dl_checkpoint_free (m->ckpt);
  g_free (m);
}

typedef struct
{
  float *eps;
  int64_t n_eps;
  float loss;
  GHashTable *grads; /* tensor name -> float* (NULL: not reached) */
} UNetRun;

static void
unet_run_clear (UNetRun *r)
{
  g_free (r->eps);
  g_clear_pointer (&r->grads, g_hash_table_unref);
}

/* eps of the tiny UNet on case j's inputs; with `grads_of`, the loss and the
 * gradients of its tensors as well. */
static void
unet_run (Model *m, DlHypernetwork *grads_of, gboolean checkpoint, UNetRun *out)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = nn_golden_open ("hypernetwork.safetensors");
  const DlUNetConfig *cfg = &dl_checkpoint_get_config (m->ckpt)->unet;
  g_autoptr (DlTape) tape = nn_new_tape ();
  dl_tape_set_enabled (tape, grads_of != NULL);
  g_autoptr (DlTensor) x = nn_golden_upload (st, "x", DL_DTYPE_F32);
  g_autoptr (DlTensor) t = nn_golden_upload (st, "timesteps", DL_DTYPE_F32);
  g_autoptr (DlTensor) ctx = nn_golden_upload (st, "context", DL_DTYPE_F32);
  g_autoptr (DlTensor) target = nn_golden_upload (st, "target", DL_DTYPE_F32);
  g_autoptr (GPtrArray) bufs = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  for (guint i = 0; grads_of && i < dl_hypernetwork_get_n_tensors (grads_of); i++)
    {
      DlTensor *p = dl_hypernetwork_get_tensor (grads_of, i, NULL);
      DlTensor *g = dl_tensor_new (dl_test_device (), "grad", DL_DTYPE_F32, p->ndim, p->shape, &error);
      g_assert_no_error (error);
      g_assert_true (dl_op_fill (dl_test_recorder (), g, 0.0, &error));
      dl_tape_set_param_grad (tape, p, g);
      g_ptr_array_add (bufs, g);
    }
  DlUNetOptions opts = { .checkpoint = checkpoint };
  g_autoptr (DlTensor) eps = dl_unet_forward (m->params, cfg, tape, x, t, ctx, &opts, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) loss = NULL;
  if (grads_of)
    {
      g_autoptr (DlTensor) deps = NULL;
      loss = dl_nn_mse_loss (tape, eps, target, NULL, 1.0f, &deps, &error);
      g_assert_no_error (error);
      g_assert_true (dl_tape_backward (tape, eps, deps, &error));
      g_assert_no_error (error);
    }
  dl_test_finish ();
  out->eps = download (eps);
  out->n_eps = dl_tensor_numel (eps);
  out->grads = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (loss)
    {
      g_autofree float *l = download (loss);
      out->loss = l[0];
    }
  for (guint i = 0; grads_of && i < bufs->len; i++)
    {
      const char *name;
      DlTensor *p = dl_hypernetwork_get_tensor (grads_of, i, &name);
      float *g = dl_tape_param_reached (tape, p) ? download (bufs->pdata[i]) : NULL;
      g_hash_table_insert (out->grads, g_strdup (name), g);
    }
}

static gboolean
check_against (const char *what, const float *got, int64_t n, DlSafetensors *st, const char *name, double atol,
               double rtol)
{
  int64_t wn = 0;
  g_autofree float *want = nn_golden_f32 (st, name, &wn);
  g_assert_cmpint (wn, ==, n);
  g_autofree char *label = g_strdup_printf ("%s %s", what, name);
  return nn_check_scaled (label, got, want, n, atol, rtol);
}

/* eps, loss and the eight gradients of golden case j */
static void
check_case_j (const char *what, DlHypernetwork *hn, const UNetRun *r)
{
  g_autoptr (DlSafetensors) st = nn_golden_open ("hypernetwork.safetensors");
  gboolean ok = check_against (what, r->eps, r->n_eps, st, "eps", 1e-7, 1e-4);
  ok &= check_against (what, &r->loss, 1, st, "loss", 0, 1e-5);
  for (guint i = 0; i < dl_hypernetwork_get_n_tensors (hn); i++)
    {
      const char *name;
      DlTensor *p = dl_hypernetwork_get_tensor (hn, i, &name);
      const float *g = g_hash_table_lookup (r->grads, name);
      g_assert_nonnull (g);
      g_autofree char *gname = g_strconcat ("grad.", name, NULL);
      /* softmax ignores a shift common to all keys: the k biases' gradients are
     * exactly zero, float32 rounding noise in the reference */
      gboolean zero = g_str_has_prefix (name, "32.0.") && g_str_has_suffix (name, ".bias");
      ok &= check_against (what, g, dl_tensor_numel (p), st, gname, zero ? 1e-5 : 1e-9, zero ? 0 : 1e-3);
    }
  g_assert_true (ok);
}

/* The size-32 pair of case j as an engine object, tensors from the safetensors
 * file (names `rename`d: the golden index of each tensor for ours). */
static DlHypernetwork *
golden_hypernetwork (const DlHypernetworkConfig *config)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = nn_golden_open ("hypernetwork.safetensors");
  int size = 32;
  DlHypernetwork *hn = dl_hypernetwork_new (dl_test_device (), config, &size, 1, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_hypernetwork_get_n_tensors (hn), ==, 8);
  /* the k and v modules' Linears in order: linear.0 then the second Linear,
   * wherever a Dropout puts it */
  for (guint i = 0; i < 8; i++)
    {
      const char *name;
      DlTensor *t = dl_hypernetwork_get_tensor (hn, i, &name);
      g_autofree char *gname = g_strdup_printf ("32.%u.linear.%u.%s", i / 4, (i / 2) % 2, i % 2 ? "bias" : "weight");
      int64_t n = 0;
      g_autofree float *v = nn_golden_f32 (st, gname, &n);
      g_assert_cmpint (n, ==, dl_tensor_numel (t));
      g_assert_true (dl_tensor_upload_f32 (t, v, &error));
      g_assert_no_error (error);
    }
  return hn;
}

static void
test_golden_safetensors (void)
{
  Model *m = model_load ();
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  g_autoptr (DlHypernetwork) hn = golden_hypernetwork (&c);
  /* linear, [1, 2, 1]: Sequential(Linear, Linear), the golden file's names */
  g_assert_nonnull (dl_hypernetwork_find_tensor (hn, "32.1.linear.1.weight"));
  dl_params_add_hypernetwork (m->params, hn, 1.0f);
  UNetRun r = { 0 };
  unet_run (m, hn, FALSE, &r);
  check_case_j ("safetensors", hn, &r);
  unet_run_clear (&r);
  model_free (m);
}

static void
test_golden_pt (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (golden_dir, "hypernetwork_a1111.pt", NULL);
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_read (dl_test_device (), path, &error);
  g_assert_no_error (error);
  const DlHypernetworkConfig *c = dl_hypernetwork_get_config (hn);
  g_assert_cmpstr (c->name, ==, "golden_hypernet");
  g_assert_cmpstr (c->activation_func, ==, "linear");
  g_assert_cmpint (c->n_layers, ==, 3);
  g_assert_false (c->activate_output);
  g_assert_cmpuint (dl_hypernetwork_get_n_sizes (hn), ==, 1);
  g_assert_cmpint (dl_hypernetwork_get_size (hn, 0), ==, 32);
  /* the same values as the safetensors form */
  g_autoptr (DlSafetensors) st = nn_golden_open ("hypernetwork.safetensors");
  for (guint i = 0; i < dl_hypernetwork_get_n_tensors (hn); i++)
    {
      const char *name;
      DlTensor *t = dl_hypernetwork_get_tensor (hn, i, &name);
      int64_t n = 0;
      g_autofree float *want = nn_golden_f32 (st, name, &n);
      g_autofree float *got = download (t);
      g_assert_cmpint (n, ==, dl_tensor_numel (t));
      g_assert_cmpmem (got, n * sizeof (float), want, n * sizeof (float));
    }
  Model *m = model_load ();
  dl_params_add_hypernetwork (m->params, hn, 1.0f);
  UNetRun r = { 0 };
  unet_run (m, hn, FALSE, &r);
  check_case_j (".pt", hn, &r);
  unet_run_clear (&r);
  model_free (m);
}

/* Strength 0: x + stack(x)·0 = x, so the UNet's output is that of the bare
 * model, bit for bit; strength 1 changes it. */
static void
test_strength_zero (void)
{
  Model *m = model_load ();
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  g_autoptr (DlHypernetwork) hn = golden_hypernetwork (&c);
  UNetRun bare = { 0 }, zero = { 0 }, one = { 0 };
  unet_run (m, NULL, FALSE, &bare);
  dl_params_add_hypernetwork (m->params, hn, 0.0f);
  g_assert_cmpuint (dl_params_n_hypernetworks (m->params), ==, 1);
  unet_run (m, NULL, FALSE, &zero);
  dl_params_clear_hypernetworks (m->params);
  dl_params_add_hypernetwork (m->params, hn, 1.0f);
  unet_run (m, NULL, FALSE, &one);
  g_assert_cmpmem (zero.eps, zero.n_eps * sizeof (float), bare.eps, bare.n_eps * sizeof (float));
  g_assert_true (memcmp (one.eps, bare.eps, bare.n_eps * sizeof (float)) != 0);
  /* the golden eps of case j with the hypernetwork at strength 1 */
  g_autoptr (DlSafetensors) st = nn_golden_open ("hypernetwork.safetensors");
  g_assert_true (check_against ("strength 1", one.eps, one.n_eps, st, "eps", 1e-7, 1e-4));
  unet_run_clear (&bare);
  unet_run_clear (&zero);
  unet_run_clear (&one);
  model_free (m);
}

/* Dropout in training: the masks are a function of the step and the place, so
 * a checkpointed block's rerun draws the same ones: the same eps and
 * gradients with and without gradient checkpointing; and dropout is on. */
static void
test_dropout_checkpointing (void)
{
  Model *m = model_load ();
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  c.use_dropout = TRUE;
  c.dropout_structure[1] = 0.3;
  g_autoptr (DlHypernetwork) hn = golden_hypernetwork (&c);
  g_assert_nonnull (dl_hypernetwork_find_tensor (hn, "32.0.linear.2.weight")); /* Dropout is linear.1 */
  dl_params_add_hypernetwork (m->params, hn, 0.5f);
  dl_hypernetwork_set_training (hn, TRUE, 77, 3);
  UNetRun plain = { 0 }, ckpt = { 0 }, eval = { 0 };
  unet_run (m, hn, FALSE, &plain);
  unet_run (m, hn, TRUE, &ckpt);
  dl_hypernetwork_set_training (hn, FALSE, 0, 0);
  unet_run (m, NULL, FALSE, &eval);
  gboolean ok = nn_check_scaled ("checkpointed eps", ckpt.eps, plain.eps, plain.n_eps, 0, 1e-6);
  for (guint i = 0; i < dl_hypernetwork_get_n_tensors (hn); i++)
    {
      const char *name;
      DlTensor *p = dl_hypernetwork_get_tensor (hn, i, &name);
      const float *a = g_hash_table_lookup (plain.grads, name), *b = g_hash_table_lookup (ckpt.grads, name);
      g_assert_nonnull (a);
      g_assert_nonnull (b);
      g_autofree char *what = g_strdup_printf ("checkpointed grad %s", name);
      /* the k biases' gradients are rounding noise around zero */
      gboolean zero = g_str_has_prefix (name, "32.0.") && g_str_has_suffix (name, ".bias");
      ok &= nn_check_scaled (what, b, a, dl_tensor_numel (p), zero ? 1e-7 : 1e-9, 1e-5);
    }
  g_assert_true (ok);
  /* inference at strength 0.5 without dropout differs from training (dropout,
   * multiplier 1) */
  g_assert_true (memcmp (eval.eps, plain.eps, plain.n_eps * sizeof (float)) != 0);
  unet_run_clear (&plain);
  unet_run_clear (&ckpt);
  unet_run_clear (&eval);
  model_free (m);
}

/* ---- a module with every kind of layer against a CPU reference ---- */

/* [1, 1.5, 2, 1], tanh, LayerNorm, activate_output, dropout [0, 0.25, 0.3, 0], size 4:
 * Linear(4, 6) tanh LN Dropout | Linear(6, 8) tanh LN Dropout | Linear(8, 4) tanh LN */
static const int ref_widths[4] = { 4, 6, 8, 4 };
static const int ref_linear_index[3] = { 0, 4, 8 };

typedef struct
{
  float *x;
  int64_t rows;
  float *w[3], *b[3], *g[3], *beta[3];
  float *R;
  gboolean training;
  guint64 seed;
  guint64 offset[2];
  uint32_t threshold[2];
  float scale[2];
  float multiplier;
} RefModule;

static void
ref_forward (RefModule *c, double *y)
{
  for (int64_t r = 0; r < c->rows; r++)
    {
      double h[8], o[8];
      for (int k = 0; k < 4; k++)
        h[k] = c->x[r * 4 + k];
      for (int s = 0; s < 3; s++)
        {
          int in = ref_widths[s], out = ref_widths[s + 1];
          for (int j = 0; j < out; j++)
            {
              double acc = c->b[s][j];
              for (int k = 0; k < in; k++)
                acc += (double)c->w[s][j * in + k] * h[k];
              o[j] = tanh (acc);
            }
          double mean = 0, var = 0;
          for (int j = 0; j < out; j++)
            mean += o[j] / out;
          for (int j = 0; j < out; j++)
            var += (o[j] - mean) * (o[j] - mean) / out;
          for (int j = 0; j < out; j++)
            {
              h[j] = (o[j] - mean) / sqrt (var + 1e-5) * c->g[s][j] + c->beta[s][j];
              if (s < 2 && c->training)
                h[j] = dl_philox_word (c->seed, c->offset[s], (guint64)(r * out + j)) >= c->threshold[s]
                         ? h[j] * c->scale[s]
                         : 0.0;
            }
        }
      for (int j = 0; j < 4; j++)
        y[r * 4 + j] = c->x[r * 4 + j] + c->multiplier * h[j];
    }
}

static double
ref_loss (gpointer data)
{
  RefModule *c = data;
  g_autofree double *y = g_new (double, c->rows * 4);
  ref_forward (c, y);
  double l = 0;
  for (int64_t i = 0; i < c->rows * 4; i++)
    l += y[i] * c->R[i];
  return l;
}

static DlHypernetwork *
every_layer_hypernetwork (const int *sizes, guint n_sizes, const char *activation)
{
  g_autoptr (GError) error = NULL;
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  c.n_layers = 4;
  const double ls[4] = { 1, 1.5, 2, 1 }, ds[4] = { 0, 0.25, 0.3, 0 };
  memcpy (c.layer_structure, ls, sizeof ls);
  memcpy (c.dropout_structure, ds, sizeof ds);
  c.activation_func = activation;
  c.is_layer_norm = TRUE;
  c.activate_output = TRUE;
  c.use_dropout = TRUE;
  c.last_layer_dropout = TRUE;
  c.weight_initialization = "KaimingNormal";
  c.name = "every-layer";
  c.step = 1234;
  c.sd_checkpoint = "0123456789";
  c.sd_checkpoint_name = "tiny model";
  c.optional_info = "made by test-hypernetwork";
  DlHypernetwork *hn = dl_hypernetwork_new (dl_test_device (), &c, sizes, n_sizes, &error);
  g_assert_no_error (error);
  g_assert_true (dl_hypernetwork_init_weights (hn, 7, &error));
  g_assert_no_error (error);
  return hn;
}

static void
run_module_reference (gboolean training)
{
  g_autoptr (GError) error = NULL;
  int size = 4;
  g_autoptr (DlHypernetwork) hn = every_layer_hypernetwork (&size, 1, "tanh");
  /* the Sequential's indices: Linear, tanh, LayerNorm, Dropout per stage */
  static const char *const names[] = { "linear.0.weight", "linear.0.bias", "linear.2.weight",  "linear.2.bias",
                                       "linear.4.weight", "linear.4.bias", "linear.6.weight",  "linear.6.bias",
                                       "linear.8.weight", "linear.8.bias", "linear.10.weight", "linear.10.bias" };
  g_assert_cmpuint (dl_hypernetwork_get_n_tensors (hn), ==, 24);
  for (guint i = 0; i < 24; i++)
    {
      const char *name;
      dl_hypernetwork_get_tensor (hn, i, &name);
      g_autofree char *want = g_strdup_printf ("4.%u.%s", i / 12, names[i % 12]);
      g_assert_cmpstr (name, ==, want);
    }
  /* values with some spread (the A1111 LayerNorm init, N(0, 0.01²), would
   * flatten everything behind it) */
  RefModule c = { .rows = 6, .training = training, .seed = 11, .multiplier = 0.7f };
  for (int s = 0; s < 3; s++)
    {
      int in = ref_widths[s], out = ref_widths[s + 1];
      g_autofree char *wn = g_strdup_printf ("4.1.linear.%d.weight", ref_linear_index[s]);
      g_autofree char *bn = g_strdup_printf ("4.1.linear.%d.bias", ref_linear_index[s]);
      g_autofree char *gn = g_strdup_printf ("4.1.linear.%d.weight", ref_linear_index[s] + 2);
      g_autofree char *betan = g_strdup_printf ("4.1.linear.%d.bias", ref_linear_index[s] + 2);
      c.w[s] = dl_test_random (out * in, 20 + s, -0.8f, 0.8f);
      c.b[s] = dl_test_random (out, 30 + s, -0.3f, 0.3f);
      c.g[s] = dl_test_random (out, 40 + s, 0.5f, 1.5f);
      c.beta[s] = dl_test_random (out, 50 + s, -0.3f, 0.3f);
      g_assert_true (dl_tensor_upload_f32 (dl_hypernetwork_find_tensor (hn, wn), c.w[s], &error));
      g_assert_true (dl_tensor_upload_f32 (dl_hypernetwork_find_tensor (hn, bn), c.b[s], &error));
      g_assert_true (dl_tensor_upload_f32 (dl_hypernetwork_find_tensor (hn, gn), c.g[s], &error));
      g_assert_true (dl_tensor_upload_f32 (dl_hypernetwork_find_tensor (hn, betan), c.beta[s], &error));
      g_assert_no_error (error);
    }
  const char *site = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1";
  const float p[2] = { 0.25f, 0.3f };
  for (int s = 0; s < 2; s++)
    {
      c.offset[s] = dl_hypernetwork_dropout_offset (2, site, 1, 3 + 4 * s);
      dl_dropout_params (p[s], &c.threshold[s], &c.scale[s]);
    }
  dl_hypernetwork_set_training (hn, training, 11, 2);

  int64_t xs[3] = { 2, 3, 4 };
  c.x = dl_test_random (24, 60, -2, 2);
  c.R = dl_test_random (24, 61, -1, 1);
  g_autoptr (DlTensor) x = dl_test_tensor ("x", DL_DTYPE_F32, 3, xs, c.x);
  g_autoptr (DlTensor) R = dl_test_tensor ("R", DL_DTYPE_F32, 3, xs, c.R);
  g_autoptr (DlTape) tape = nn_new_tape ();
  dl_tape_watch (tape, x);
  g_autoptr (GPtrArray) bufs = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  for (guint i = 0; i < 24; i++)
    {
      DlTensor *t = dl_hypernetwork_get_tensor (hn, i, NULL);
      DlTensor *g = dl_tensor_new (dl_test_device (), "grad", DL_DTYPE_F32, t->ndim, t->shape, &error);
      g_assert_no_error (error);
      g_assert_true (dl_op_fill (dl_test_recorder (), g, 0.0, &error));
      dl_tape_set_param_grad (tape, t, g);
      g_ptr_array_add (bufs, g);
    }
  g_autoptr (DlTensor) y = dl_hypernetwork_module_forward (hn, tape, 4, 1, x, c.multiplier, site, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tape_backward (tape, y, R, &error));
  g_assert_no_error (error);
  g_autoptr (DlTensor) dx = dl_tape_get_grad (tape, x);
  dl_test_finish ();

  g_autofree float *got = download (y);
  g_autofree double *want = g_new (double, 24);
  ref_forward (&c, want);
  g_autofree float *wantf = g_new (float, 24);
  for (int i = 0; i < 24; i++)
    wantf[i] = (float)want[i];
  dl_test_assert_close ("module output", got, wantf, 24, 1e-6, 1e-5);
  if (training)
    {
      /* the masks dropped something in both Dropout layers */
      guint dropped[2] = { 0, 0 };
      for (int s = 0; s < 2; s++)
        for (guint64 i = 0; i < (guint64)(6 * ref_widths[s + 1]); i++)
          dropped[s] += dl_philox_word (11, c.offset[s], i) < c.threshold[s];
      g_assert_cmpuint (dropped[0], >, 0);
      g_assert_cmpuint (dropped[1], >, 0);
    }

  /* gradients against finite differences of the reference */
  g_autofree float *gx = download (dx);
  dl_test_assert_fd ("module dx", c.x, 24, gx, ref_loss, &c, 1e-3, 1e-5, 2e-3, 24, TRUE);
  for (int s = 0; s < 3; s++)
    {
      float *arrays[4] = { c.w[s], c.b[s], c.g[s], c.beta[s] };
      int idx[4] = { ref_linear_index[s], ref_linear_index[s], ref_linear_index[s] + 2, ref_linear_index[s] + 2 };
      for (int a = 0; a < 4; a++)
        {
          g_autofree char *name = g_strdup_printf ("4.1.linear.%d.%s", idx[a], a % 2 ? "bias" : "weight");
          DlTensor *t = dl_hypernetwork_find_tensor (hn, name);
          guint at = 0;
          for (guint i = 0; i < 24; i++)
            if (dl_hypernetwork_get_tensor (hn, i, NULL) == t)
              at = i;
          g_assert_true (dl_tape_param_reached (tape, t));
          g_autofree float *g = download (bufs->pdata[at]);
          dl_test_assert_fd (name, arrays[a], dl_tensor_numel (t), g, ref_loss, &c, 1e-3, 1e-5, 2e-3, 64, TRUE);
        }
    }
  /* the k module was not used */
  for (guint i = 0; i < 12; i++)
    g_assert_false (dl_tape_param_reached (tape, dl_hypernetwork_get_tensor (hn, i, NULL)));
  for (int s = 0; s < 3; s++)
    {
      g_free (c.w[s]);
      g_free (c.b[s]);
      g_free (c.g[s]);
      g_free (c.beta[s]);
    }
  g_free (c.x);
  g_free (c.R);
}

static void
test_module_reference (void)
{
  run_module_reference (TRUE);
  run_module_reference (FALSE);
}

/* ---- apply: several hypernetworks, the training multiplier ---- */

static void
module_ref (DlHypernetwork *hn, DlTape *tape, int64_t size, int kv, DlTensor *x, float m, DlTensor **out)
{
  g_autoptr (GError) error = NULL;
  *out = dl_hypernetwork_module_forward (hn, tape, size, kv, x, m, "site", &error);
  g_assert_no_error (error);
}

static void
assert_same_tensor (DlTensor *a, DlTensor *b)
{
  dl_test_finish ();
  g_autofree float *x = download (a);
  g_autofree float *y = download (b);
  g_assert_cmpint (dl_tensor_numel (a), ==, dl_tensor_numel (b));
  g_assert_cmpmem (x, dl_tensor_numel (a) * sizeof (float), y, dl_tensor_numel (b) * sizeof (float));
}

static void
test_apply_sequence (void)
{
  g_autoptr (GError) error = NULL;
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  g_autoptr (DlHypernetwork) a = golden_hypernetwork (&c);
  c.weight_initialization = "XavierNormal";
  c.activation_func = "mish";
  int sizes[2] = { 32, 16 };
  g_autoptr (DlHypernetwork) b = dl_hypernetwork_new (dl_test_device (), &c, sizes, 2, &error);
  g_assert_no_error (error);
  g_assert_true (dl_hypernetwork_init_weights (b, 9, &error));
  g_autoptr (DlParams) params = dl_params_new (dl_test_device ());
  dl_params_add_hypernetwork (params, a, 0.5f);
  dl_params_add_hypernetwork (params, b, -0.25f);
  g_autoptr (DlTape) tape = nn_new_tape ();
  dl_tape_set_enabled (tape, FALSE);

  int64_t s32[3] = { 2, 7, 32 }, s16[3] = { 2, 7, 16 }, s8[3] = { 2, 7, 8 };
  g_autofree float *v32 = dl_test_random (2 * 7 * 32, 1, -1, 1);
  g_autoptr (DlTensor) ctx = dl_test_tensor ("context", DL_DTYPE_F32, 3, s32, v32);
  g_autoptr (DlTensor) k = NULL, v = NULL;
  g_assert_true (dl_hypernetwork_apply (params, tape, "site", ctx, &k, &v, &error));
  g_assert_no_error (error);
  /* A1111 apply_hypernetworks: k through a.k then b.k, v through a.v then b.v */
  g_autoptr (DlTensor) ak = NULL, av = NULL, bk = NULL, bv = NULL;
  module_ref (a, tape, 32, 0, ctx, 0.5f, &ak);
  module_ref (a, tape, 32, 1, ctx, 0.5f, &av);
  module_ref (b, tape, 32, 0, ak, -0.25f, &bk);
  module_ref (b, tape, 32, 1, av, -0.25f, &bv);
  assert_same_tensor (k, bk);
  assert_same_tensor (v, bv);

  /* a width only b has */
  g_autofree float *v16 = dl_test_random (2 * 7 * 16, 2, -1, 1);
  g_autoptr (DlTensor) ctx16 = dl_test_tensor ("context16", DL_DTYPE_F32, 3, s16, v16);
  g_autoptr (DlTensor) k16 = NULL, v16t = NULL, bk16 = NULL;
  g_assert_true (dl_hypernetwork_apply (params, tape, "site", ctx16, &k16, &v16t, &error));
  module_ref (b, tape, 16, 0, ctx16, -0.25f, &bk16);
  assert_same_tensor (k16, bk16);

  /* no module of width 8: the context itself */
  g_autofree float *v8 = dl_test_random (2 * 7 * 8, 3, -1, 1);
  g_autoptr (DlTensor) ctx8 = dl_test_tensor ("context8", DL_DTYPE_F32, 3, s8, v8);
  g_autoptr (DlTensor) k8 = NULL, v8t = NULL;
  g_assert_true (dl_hypernetwork_apply (params, tape, "site", ctx8, &k8, &v8t, &error));
  g_assert_true (k8 == ctx8 && v8t == ctx8);

  /* training: the multiplier is 1 whatever the strength (no Dropout here) */
  dl_params_clear_hypernetworks (params);
  g_assert_cmpuint (dl_params_n_hypernetworks (params), ==, 0);
  dl_params_add_hypernetwork (params, a, 0.5f);
  dl_hypernetwork_set_training (a, TRUE, 1, 1);
  g_autoptr (DlTensor) kt = NULL, vt = NULL, ak1 = NULL;
  g_assert_true (dl_hypernetwork_apply (params, tape, "site", ctx, &kt, &vt, &error));
  module_ref (a, tape, 32, 0, ctx, 1.0f, &ak1);
  assert_same_tensor (kt, ak1);

  /* a module of another size is refused by name */
  g_autoptr (DlTensor) none = dl_hypernetwork_module_forward (a, tape, 16, 0, ctx16, 1.0f, "site", &error);
  g_assert_null (none);
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

/* ---- sizes no attention has ---- */

static void
assert_unused (DlHypernetwork *hn, const DlUNetConfig *config, const int *want, guint n)
{
  g_autoptr (GArray) unused = dl_hypernetwork_unused_sizes (hn, config);
  g_assert_cmpuint (unused->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (g_array_index (unused, int, i), ==, want[i]);
}

static void
test_unused_sizes (void)
{
  g_autoptr (GError) error = NULL;
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  c.layer_structure[1] = 0.1; /* small modules */
  int tiny_sizes[4] = { 32, 768, 64, 100 };
  g_autoptr (DlHypernetwork) tiny = dl_hypernetwork_new (dl_test_device (), &c, tiny_sizes, 4, &error);
  g_assert_no_error (error);
  Model *m = model_load ();
  /* the tiny UNet: context 32, levels of 32 and 64 channels */
  const int tiny_unused[2] = { 768, 100 };
  assert_unused (tiny, &dl_checkpoint_get_config (m->ckpt)->unet, tiny_unused, 2);
  model_free (m);
  /* SD 1.5: context 768, levels 320, 640, 1280 (the last without attention;
   * the mid block has 1280) */
  DlModelConfig sd15;
  dl_model_config_init_sd15 (&sd15);
  int sd_sizes[5] = { 768, 320, 640, 1280, 1024 };
  g_autoptr (DlHypernetwork) sd = dl_hypernetwork_new (dl_test_device (), &c, sd_sizes, 5, &error);
  g_assert_no_error (error);
  const int sd_unused[1] = { 1024 };
  assert_unused (sd, &sd15.unet, sd_unused, 1);
}

/* ---- initialisation ---- */

static void
stats (const float *v, gsize n, double *mean, double *std, double *maxabs)
{
  double s = 0, s2 = 0, m = 0;
  for (gsize i = 0; i < n; i++)
    {
      s += v[i];
      s2 += (double)v[i] * v[i];
      m = fmax (m, fabs (v[i]));
    }
  *mean = s / n;
  *std = sqrt (s2 / n - *mean * *mean);
  *maxabs = m;
}

static void
test_init (void)
{
  static const char *const inits[] = { "Normal", "XavierUniform", "XavierNormal", "KaimingUniform", "KaimingNormal" };
  g_autoptr (GError) error = NULL;
  int size = 64;
  for (guint k = 0; k < G_N_ELEMENTS (inits); k++)
    {
      DlHypernetworkConfig c;
      dl_hypernetwork_config_init (&c);
      c.is_layer_norm = TRUE;
      c.activation_func = "relu";
      c.weight_initialization = inits[k];
      g_autoptr (DlHypernetwork) hn = dl_hypernetwork_new (dl_test_device (), &c, &size, 1, &error);
      g_assert_no_error (error);
      g_assert_true (dl_hypernetwork_init_weights (hn, 3, &error));
      g_assert_no_error (error);
      /* Linear(64, 128) relu LN(128) | Linear(128, 64) LN(64) */
      static const char *const order[] = { "linear.0.weight", "linear.0.bias", "linear.2.weight", "linear.2.bias",
                                           "linear.3.weight", "linear.3.bias", "linear.4.weight", "linear.4.bias" };
      g_assert_cmpuint (dl_hypernetwork_get_n_tensors (hn), ==, 16);
      for (guint i = 0; i < 16; i++)
        {
          const char *name;
          DlTensor *t = dl_hypernetwork_get_tensor (hn, i, &name);
          g_autofree char *want_name = g_strdup_printf ("64.%u.%s", i / 8, order[i % 8]);
          g_assert_cmpstr (name, ==, want_name);
          g_autofree float *v = download (t);
          gsize n = dl_tensor_numel (t);
          double mean, std, maxabs;
          stats (v, n, &mean, &std, &maxabs);
          if (g_str_has_suffix (name, "bias"))
            {
              g_assert_cmpfloat (maxabs, ==, 0);
              continue;
            }
          gboolean norm = t->ndim == 1;
          double fan_in = norm ? 0 : t->shape[1], fan_out = norm ? 0 : t->shape[0];
          double want_std = 0.01, bound = 0;
          if (!norm && k == 1)
            bound = sqrt (6 / (fan_in + fan_out));
          else if (!norm && k == 2)
            want_std = sqrt (2 / (fan_in + fan_out));
          else if (!norm && k == 3)
            bound = sqrt (2.0) * sqrt (3 / fan_in);
          else if (!norm && k == 4)
            want_std = sqrt (2.0 / fan_in);
          if (bound > 0)
            {
              want_std = bound / sqrt (3.0);
              g_assert_cmpfloat (maxabs, <=, bound);
              g_assert_cmpfloat (maxabs, >, 0.95 * bound);
            }
          /* n >= 64 (LayerNorm) or 8192 draws */
          double tol = n < 1000 ? 0.25 : 0.05;
          if (fabs (std / want_std - 1) > tol || fabs (mean) > 4 * want_std / sqrt ((double)n))
            g_error ("%s %s: mean %g std %g, want std %g", inits[k], name, mean, std, want_std);
        }
      /* the same seed gives the same weights, another seed others; k and v differ */
      g_autoptr (DlHypernetwork) again = dl_hypernetwork_new (dl_test_device (), &c, &size, 1, &error);
      g_assert_true (dl_hypernetwork_init_weights (again, 3, &error));
      g_autoptr (DlHypernetwork) other = dl_hypernetwork_new (dl_test_device (), &c, &size, 1, &error);
      g_assert_true (dl_hypernetwork_init_weights (other, 4, &error));
      g_assert_no_error (error);
      g_autofree float *a = download (dl_hypernetwork_get_tensor (hn, 0, NULL));
      g_autofree float *b = download (dl_hypernetwork_get_tensor (again, 0, NULL));
      g_autofree float *o = download (dl_hypernetwork_get_tensor (other, 0, NULL));
      g_autofree float *v = download (dl_hypernetwork_get_tensor (hn, 8, NULL));
      g_assert_cmpmem (a, 8192 * sizeof (float), b, 8192 * sizeof (float));
      g_assert_true (memcmp (a, o, 8192 * sizeof (float)) != 0);
      g_assert_true (memcmp (a, v, 8192 * sizeof (float)) != 0);
    }
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  c.weight_initialization = "Uniform";
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_new (dl_test_device (), &c, &size, 1, &error);
  g_assert_false (dl_hypernetwork_init_weights (hn, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "“Uniform”"));
}

/* ---- configurations refused ---- */

static void
expect_config_error (const DlHypernetworkConfig *c, int code, const char *needle)
{
  g_autoptr (GError) error = NULL;
  int size = 8;
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_new (dl_test_device (), c, &size, 1, &error);
  g_assert_null (hn);
  g_assert_error (error, DL_ERROR, code);
  if (!strstr (error->message, needle))
    g_error ("“%s” does not say “%s”", error->message, needle);
}

static void
test_config_errors (void)
{
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  c.activation_func = "prelu";
  expect_config_error (&c, DL_ERROR_UNSUPPORTED, "“prelu” is not supported by Dreamloom; supported: linear, relu");
  c.activation_func = "Swish";
  expect_config_error (&c, DL_ERROR_UNSUPPORTED, "“Swish” is unknown (A1111 refuses it too)");
  dl_hypernetwork_config_init (&c);
  c.layer_structure[0] = 2;
  expect_config_error (&c, DL_ERROR_INVALID_ARGUMENT, "must start and end with 1");
  dl_hypernetwork_config_init (&c);
  c.dropout_structure[1] = 1.0;
  expect_config_error (&c, DL_ERROR_INVALID_ARGUMENT, "dropout_structure entry 1");
  dl_hypernetwork_config_init (&c);
  c.layer_structure[1] = 0.01; /* int(8 * 0.01) = 0 */
  expect_config_error (&c, DL_ERROR_INVALID_ARGUMENT, "no usable width");
  dl_hypernetwork_config_init (&c);
  c.n_layers = 1;
  expect_config_error (&c, DL_ERROR_INVALID_ARGUMENT, "2 to 16 entries");
  for (guint i = 0; i < 12; i++)
    {
      static const char *const ok[] = { "linear", "relu",    "leakyrelu", "elu",  "swish", "hardswish",
                                        "tanh",   "sigmoid", "gelu",      "silu", "mish",  "softsign" };
      g_assert_true (dl_hypernetwork_activation_supported (ok[i]));
    }
  g_assert_false (dl_hypernetwork_activation_supported ("relu6"));
}

/* ---- files ---- */

/* every entry of the configuration */
static void
assert_same_config (const DlHypernetworkConfig *a, const DlHypernetworkConfig *b)
{
  g_assert_cmpint (a->n_layers, ==, b->n_layers);
  for (int i = 0; i < a->n_layers; i++)
    {
      g_assert_cmpfloat (a->layer_structure[i], ==, b->layer_structure[i]);
      g_assert_cmpfloat (a->dropout_structure[i], ==, b->dropout_structure[i]);
    }
  g_assert_cmpstr (a->activation_func, ==, b->activation_func);
  g_assert_cmpint (a->is_layer_norm, ==, b->is_layer_norm);
  g_assert_cmpint (a->activate_output, ==, b->activate_output);
  g_assert_cmpint (a->use_dropout, ==, b->use_dropout);
  g_assert_cmpint (a->last_layer_dropout, ==, b->last_layer_dropout);
  g_assert_cmpstr (a->weight_initialization, ==, b->weight_initialization);
  g_assert_cmpstr (a->name, ==, b->name);
  g_assert_cmpint (a->step, ==, b->step);
  g_assert_cmpstr (a->sd_checkpoint, ==, b->sd_checkpoint);
  g_assert_cmpstr (a->sd_checkpoint_name, ==, b->sd_checkpoint_name);
  g_assert_cmpstr (a->optional_info, ==, b->optional_info);
}

static void
assert_same_tensors (DlHypernetwork *a, DlHypernetwork *b)
{
  g_assert_cmpuint (dl_hypernetwork_get_n_sizes (a), ==, dl_hypernetwork_get_n_sizes (b));
  for (guint i = 0; i < dl_hypernetwork_get_n_sizes (a); i++)
    g_assert_cmpint (dl_hypernetwork_get_size (a, i), ==, dl_hypernetwork_get_size (b, i));
  g_assert_cmpuint (dl_hypernetwork_get_n_tensors (a), ==, dl_hypernetwork_get_n_tensors (b));
  for (guint i = 0; i < dl_hypernetwork_get_n_tensors (a); i++)
    {
      const char *na, *nb;
      DlTensor *ta = dl_hypernetwork_get_tensor (a, i, &na);
      DlTensor *tb = dl_hypernetwork_get_tensor (b, i, &nb);
      g_assert_cmpstr (na, ==, nb);
      g_assert_true (dl_tensor_same_shape (ta, tb));
      g_autofree float *va = download (ta);
      g_autofree float *vb = download (tb);
      g_assert_cmpmem (va, dl_tensor_numel (ta) * sizeof (float), vb, dl_tensor_numel (tb) * sizeof (float));
    }
}

static GBytes *
file_bytes (const char *path)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_bytes_new_take (g_steal_pointer (&data), len);
}

/* What A1111's modules/safe.py and torch's weights_only loader check: record
 * names, one data.pkl, the opcodes and globals. */
static void
assert_loadable_everywhere (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = file_bytes (path);
  g_autoptr (DlZip) zip = dl_zip_open_bytes (bytes, path, &error);
  g_assert_no_error (error);
  g_autoptr (GRegex) a1111 = g_regex_new ("^([^/]+)/((data/\\d+)|version|(data\\.pkl))$", 0, 0, NULL);
  guint pkls = 0;
  for (guint i = 0; i < dl_zip_get_n_entries (zip); i++)
    {
      const char *name = dl_zip_get_entry (zip, i)->name;
      g_assert_true (g_regex_match (a1111, name, 0, NULL));
      pkls += g_str_has_suffix (name, "/data.pkl");
    }
  g_assert_cmpuint (pkls, ==, 1);
  g_autoptr (GBytes) pkl = dl_zip_read (zip, dl_zip_find (zip, "archive/data.pkl"), &error);
  g_assert_no_error (error);
  pickle_assert_allowed (g_bytes_get_data (pkl, NULL), g_bytes_get_size (pkl), FALSE);
}

static void
test_round_trip (void)
{
  g_autoptr (GError) error = NULL;
  int sizes[2] = { 8, 12 };
  g_autoptr (DlHypernetwork) hn = every_layer_hypernetwork (sizes, 2, "relu");
  /* the same Sequential indices with relu as with tanh */
  g_assert_nonnull (dl_hypernetwork_find_tensor (hn, "12.1.linear.10.bias"));
  dl_test_finish ();
  g_autofree char *path = tmp_path ("every-layer.pt");
  g_assert_true (dl_hypernetwork_write (hn, path, &error));
  g_assert_no_error (error);
  assert_loadable_everywhere (path);

  g_autoptr (DlHypernetwork) back = dl_hypernetwork_read (dl_test_device (), path, &error);
  g_assert_no_error (error);
  assert_same_config (dl_hypernetwork_get_config (hn), dl_hypernetwork_get_config (back));
  assert_same_tensors (hn, back);
  /* writing what was read gives the same file */
  g_autofree char *again = tmp_path ("every-layer-again.pt");
  g_assert_true (dl_hypernetwork_write (back, again, &error));
  g_autoptr (GBytes) b1 = file_bytes (path);
  g_autoptr (GBytes) b2 = file_bytes (again);
  g_assert_true (g_bytes_equal (b1, b2));

  /* the tree A1111 loads: int keys to (OrderedDict, OrderedDict) in Sequential
   * order, every entry explicit, layer_structure as ints where whole */
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, &error);
  g_assert_no_error (error);
  const DlPickleValue *root = dl_torch_ckpt_get_root (ck);
  static const char *const keys[] = { "step",
                                      "name",
                                      "layer_structure",
                                      "activation_func",
                                      "is_layer_norm",
                                      "weight_initialization",
                                      "sd_checkpoint",
                                      "sd_checkpoint_name",
                                      "activate_output",
                                      "use_dropout",
                                      "dropout_structure",
                                      "last_layer_dropout",
                                      "optional_info" };
  g_assert_cmpuint (root->items->len, ==, 2 * (2 + G_N_ELEMENTS (keys)));
  for (guint i = 0; i < 2; i++)
    {
      const DlPickleValue *k = root->items->pdata[2 * i];
      g_assert_cmpint (k->type, ==, DL_PK_INT);
      g_assert_cmpint (k->i, ==, sizes[i]);
      const DlPickleValue *pair = root->items->pdata[2 * i + 1];
      g_assert_cmpint (pair->type, ==, DL_PK_TUPLE);
      g_assert_cmpuint (pair->items->len, ==, 2);
      const DlPickleValue *sd = pair->items->pdata[1];
      g_assert_cmpuint (sd->items->len, ==, 24);
      g_assert_cmpstr (((const DlPickleValue *)sd->items->pdata[0])->str.data, ==, "linear.0.weight");
      g_assert_cmpstr (((const DlPickleValue *)sd->items->pdata[22])->str.data, ==, "linear.10.bias");
    }
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    g_assert_cmpstr (((const DlPickleValue *)root->items->pdata[4 + 2 * i])->str.data, ==, keys[i]);
  const DlPickleValue *ls = dl_pickle_dict_get (root, "layer_structure");
  const DlPickleType want_types[4] = { DL_PK_INT, DL_PK_FLOAT, DL_PK_INT, DL_PK_INT };
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (((const DlPickleValue *)ls->items->pdata[i])->type, ==, want_types[i]);
  g_assert_cmpint (dl_pickle_dict_get (root, "last_layer_dropout")->b, ==, TRUE); /* dropout_structure[-2] = 0.3 */
  g_assert_cmpint (dl_pickle_dict_get (root, "step")->i, ==, 1234);

  /* None entries and a changed step */
  dl_hypernetwork_set_checkpoint (back, NULL, NULL);
  dl_hypernetwork_set_optional_info (back, "");
  dl_hypernetwork_set_name (back, NULL);
  dl_hypernetwork_set_step (back, 5);
  g_autofree char *nones = tmp_path ("nones.pt");
  g_assert_true (dl_hypernetwork_write (back, nones, &error));
  g_autoptr (DlTorchCkpt) ck2 = dl_torch_ckpt_open (nones, &error);
  g_assert_no_error (error);
  const DlPickleValue *r2 = dl_torch_ckpt_get_root (ck2);
  g_assert_cmpint (dl_pickle_dict_get (r2, "sd_checkpoint")->type, ==, DL_PK_NONE);
  g_assert_cmpint (dl_pickle_dict_get (r2, "sd_checkpoint_name")->type, ==, DL_PK_NONE);
  g_assert_cmpint (dl_pickle_dict_get (r2, "optional_info")->type, ==, DL_PK_NONE);
  g_assert_cmpint (dl_pickle_dict_get (r2, "name")->type, ==, DL_PK_NONE);
  g_assert_cmpint (dl_pickle_dict_get (r2, "step")->i, ==, 5);
  g_autoptr (DlHypernetwork) back2 = dl_hypernetwork_read (dl_test_device (), nones, &error);
  g_assert_no_error (error);
  g_assert_null (dl_hypernetwork_get_config (back2)->name);
  g_assert_null (dl_hypernetwork_get_config (back2)->sd_checkpoint);
}

/* train/hn-init.pt, the training run's starting point: every entry */
static void
test_hn_init (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = g_build_filename (golden_dir, "train", "hn-init.pt", NULL);
  g_autofree char *replay = g_build_filename (golden_dir, "train", "hypernetwork.safetensors", NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS) || !g_file_test (replay, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("train/hn-init.pt is absent");
      return;
    }
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_read (dl_test_device (), path, &error);
  g_assert_no_error (error);
  const DlHypernetworkConfig *c = dl_hypernetwork_get_config (hn);
  DlHypernetworkConfig want;
  dl_hypernetwork_config_init (&want);
  want.name = "hn-init";
  assert_same_config (c, &want); /* [1, 2, 1], linear, Normal, everything off, None, step 0 */
  g_assert_cmpuint (dl_hypernetwork_get_n_sizes (hn), ==, 1);
  g_assert_cmpint (dl_hypernetwork_get_size (hn, 0), ==, 32);
  g_assert_true (dl_hypernetwork_has_size (hn, 32));
  g_assert_false (dl_hypernetwork_has_size (hn, 768));
  g_autoptr (DlSafetensors) st = dl_safetensors_open (replay, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_hypernetwork_get_n_tensors (hn), ==, 8);
  for (guint i = 0; i < 8; i++)
    {
      const char *name;
      DlTensor *t = dl_hypernetwork_get_tensor (hn, i, &name);
      g_autofree char *iname = g_strconcat ("init.", name, NULL);
      int64_t n = 0;
      g_autofree float *want_v = dl_safetensors_read_f32 (st, iname, &n, &error);
      g_assert_no_error (error);
      g_autofree float *got = download (t);
      g_assert_cmpint (n, ==, dl_tensor_numel (t));
      g_assert_cmpmem (got, n * sizeof (float), want_v, n * sizeof (float));
    }
  int64_t w0[2] = { 64, 32 };
  g_assert_true (memcmp (dl_hypernetwork_find_tensor (hn, "32.0.linear.0.weight")->shape, w0, sizeof w0) == 0);
}

/* ---- files A1111 writes differently, and broken ones ---- */

typedef struct
{
  const char *key;
  int64_t out, in; /* in 0: a bias or LayerNorm vector */
} Entry;

static DlTorchValue *
state_dict (const Entry *entries, guint n)
{
  DlTorchValue *sd = dl_torch_ordered_dict ();
  for (guint i = 0; i < n; i++)
    {
      int64_t shape[2] = { entries[i].out, entries[i].in };
      int ndim = entries[i].in ? 2 : 1;
      gsize numel = entries[i].out * (entries[i].in ? entries[i].in : 1);
      g_autofree float *v = dl_test_random (numel, 100 + i, -1, 1);
      dl_torch_dict_set (sd, entries[i].key, dl_torch_tensor_f32 (DL_ST_F32, ndim, shape, v));
    }
  return sd;
}

/* {key: (sd, sd)} plus `meta` (may be NULL; consumed entries) */
static char *
write_file (const char *name, DlTorchValue *key_value_root, const Entry *entries, guint n, gboolean str_key)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTorchValue) root = key_value_root ? key_value_root : dl_torch_dict ();
  DlTorchValue *pair = dl_torch_tuple ();
  dl_torch_append (pair, state_dict (entries, n));
  dl_torch_append (pair, state_dict (entries, n));
  if (str_key)
    dl_torch_dict_set (root, "8", pair);
  else
    dl_torch_dict_set_int (root, 8, pair);
  char *path = tmp_path (name);
  g_assert_true (dl_torch_save (path, root, &error));
  g_assert_no_error (error);
  return path;
}

static const Entry plain_entries[] = {
  { "linear.0.weight", 16, 8 },
  { "linear.0.bias", 16, 0 },
  { "linear.1.weight", 8, 16 },
  { "linear.1.bias", 8, 0 },
};

static void
expect_read_error (const char *path, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_read (dl_test_device (), path, &error);
  g_assert_null (hn);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, path));
  if (!strstr (error->message, needle))
    g_error ("“%s” does not say “%s”", error->message, needle);
  g_assert_null (strchr (error->message, '\n'));
}

static void
test_read_variants (void)
{
  g_autoptr (GError) error = NULL;
  /* nothing but the pair: A1111's defaults (activate_output True; name = stem) */
  g_autofree char *bare = write_file ("bare.pt", NULL, plain_entries, 4, FALSE);
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_read (dl_test_device (), bare, &error);
  g_assert_no_error (error);
  DlHypernetworkConfig want;
  dl_hypernetwork_config_init (&want);
  want.activate_output = TRUE;
  want.name = "bare";
  assert_same_config (dl_hypernetwork_get_config (hn), &want);

  /* ComfyUI's int(key) takes "8" as well */
  g_autofree char *str_key = write_file ("str-key.pt", NULL, plain_entries, 4, TRUE);
  g_autoptr (DlHypernetwork) hs = dl_hypernetwork_read (dl_test_device (), str_key, &error);
  g_assert_no_error (error);
  g_assert_cmpint (dl_hypernetwork_get_size (hs, 0), ==, 8);

  /* fix_old_state_dict: linear1 / linear2 */
  static const Entry old[] = {
    { "linear1.weight", 16, 8 },
    { "linear1.bias", 16, 0 },
    { "linear2.weight", 8, 16 },
    { "linear2.bias", 8, 0 },
  };
  g_autofree char *old_names = write_file ("old-names.pt", NULL, old, 4, FALSE);
  g_autoptr (DlHypernetwork) ho = dl_hypernetwork_read (dl_test_device (), old_names, &error);
  g_assert_no_error (error);
  g_autofree float *w = download (dl_hypernetwork_find_tensor (ho, "8.1.linear.1.weight"));
  g_autofree float *want_w = dl_test_random (8 * 16, 102, -1, 1);
  g_assert_cmpmem (w, 8 * 16 * sizeof (float), want_w, 8 * 16 * sizeof (float));

  /* use_dropout without dropout_structure (older files): parse_dropout_structure
   * gives [0, 0.3, 0, 0] for [1, 2, 2, 1], so a Dropout is linear.1 */
  DlTorchValue *meta = dl_torch_dict ();
  DlTorchValue *ls = dl_torch_list ();
  for (int i = 0; i < 4; i++)
    dl_torch_append (ls, dl_torch_float (i == 0 || i == 3 ? 1.0 : 2.0));
  dl_torch_dict_set (meta, "layer_structure", ls);
  dl_torch_dict_set (meta, "use_dropout", dl_torch_bool (TRUE));
  dl_torch_dict_set (meta, "activation_func", dl_torch_none ());
  static const Entry dropped[] = {
    { "linear.0.weight", 16, 8 }, { "linear.0.bias", 16, 0 },   { "linear.2.weight", 16, 16 },
    { "linear.2.bias", 16, 0 },   { "linear.3.weight", 8, 16 }, { "linear.3.bias", 8, 0 },
  };
  g_autofree char *derived = write_file ("derived.pt", meta, dropped, 6, FALSE);
  g_autoptr (DlHypernetwork) hd = dl_hypernetwork_read (dl_test_device (), derived, &error);
  g_assert_no_error (error);
  const DlHypernetworkConfig *dc = dl_hypernetwork_get_config (hd);
  g_assert_cmpfloat (dc->dropout_structure[1], ==, 0.3);
  g_assert_cmpfloat (dc->dropout_structure[2], ==, 0);
  g_assert_cmpstr (dc->activation_func, ==, "linear"); /* None */
  g_assert_true (dc->use_dropout);
}

static void
test_read_errors (void)
{
  g_autofree char *missing = write_file ("missing.pt", NULL, plain_entries, 3, FALSE);
  expect_read_error (missing, "the k module of size 8 has no “linear.1.bias”");
  static const Entry extra[] = {
    { "linear.0.weight", 16, 8 }, { "linear.0.bias", 16, 0 },  { "linear.1.weight", 8, 16 },
    { "linear.1.bias", 8, 0 },    { "linear.5.weight", 8, 8 },
  };
  g_autofree char *unexpected = write_file ("unexpected.pt", NULL, extra, 5, FALSE);
  expect_read_error (unexpected, "unexpected entry “linear.5.weight”");
  static const Entry wrong[] = {
    { "linear.0.weight", 16, 7 },
    { "linear.0.bias", 16, 0 },
    { "linear.1.weight", 8, 16 },
    { "linear.1.bias", 8, 0 },
  };
  g_autofree char *shape = write_file ("shape.pt", NULL, wrong, 4, FALSE);
  expect_read_error (shape, "“linear.0.weight” of the k module of size 8 has shape [16, 7] where the file's settings "
                            "make it [16, 8]");
  DlTorchValue *meta = dl_torch_dict ();
  dl_torch_dict_set (meta, "activation_func", dl_torch_str ("prelu"));
  g_autofree char *prelu = write_file ("prelu.pt", meta, plain_entries, 4, FALSE);
  expect_read_error (prelu, "“prelu” is not supported by Dreamloom");
  meta = dl_torch_dict ();
  dl_torch_dict_set (meta, "is_layer_norm", dl_torch_str ("yes"));
  g_autofree char *ln = write_file ("ln.pt", meta, plain_entries, 4, FALSE);
  expect_read_error (ln, "“is_layer_norm” is a str, not a bool");
  meta = dl_torch_dict ();
  DlTorchValue *ls = dl_torch_list ();
  dl_torch_append (ls, dl_torch_int (1));
  dl_torch_append (ls, dl_torch_str ("2"));
  dl_torch_append (ls, dl_torch_int (1));
  dl_torch_dict_set (meta, "layer_structure", ls);
  g_autofree char *lsf = write_file ("ls.pt", meta, plain_entries, 4, FALSE);
  expect_read_error (lsf, "“layer_structure” entry 1 is a str, not a number");

  /* not a hypernetwork: a Textual Inversion embedding */
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTorchValue) emb = dl_torch_dict ();
  DlTorchValue *params = dl_torch_dict ();
  dl_torch_dict_set (params, "*",
                     dl_torch_tensor_f32 (DL_ST_F32, 2, (const int64_t[]){ 1, 4 }, (const float[]){ 1, 2, 3, 4 }));
  dl_torch_dict_set (emb, "string_to_param", params);
  g_autofree char *ti = tmp_path ("embedding.pt");
  g_assert_true (dl_torch_save (ti, emb, &error));
  expect_read_error (ti, "no module pairs");
  g_autofree char *absent = tmp_path ("absent.pt");
  expect_read_error (absent, "absent.pt");
  g_autofree char *st = tmp_path ("hn.safetensors");
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_assert_true (dl_safetensors_writer_add_f32 (w, "32.0.linear.0.weight", DL_ST_F32, 1, (const int64_t[]){ 1 },
                                                (const float[]){ 1 }, &error));
  g_assert_true (dl_safetensors_writer_write (w, st, &error));
  expect_read_error (st, "a safetensors file; hypernetworks are PyTorch .pt files");
}

/* A1111 puts <hypernet:name:multiplier> into the prompt (extra_networks_hypernet.py) */
static void
test_infotext (void)
{
  const DlInfotextNetwork lora = { "style", 0.8 }, hns[2] = { { "anime", 1.0 }, { "hn-init", 0.55 } };
  DlInfotext info = { .prompt = "a dog",
                      .loras = &lora,
                      .n_loras = 1,
                      .hypernets = hns,
                      .n_hypernets = 2,
                      .steps = 20,
                      .sampler = "Euler a",
                      .cfg_scale = 7,
                      .seed = 1,
                      .width = 512,
                      .height = 512 };
  g_autofree char *text = dl_infotext_format (&info);
  g_assert_true (g_str_has_prefix (text, "a dog <lora:style:0.8> <hypernet:anime:1> <hypernet:hn-init:0.55>\n"
                                         "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"));
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  tmp_dir = g_dir_make_tmp ("dl-test-hypernetwork-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  dl_test_add ("/nn/hypernetwork/module-reference", test_module_reference);
  dl_test_add ("/nn/hypernetwork/apply-sequence", test_apply_sequence);
  dl_test_add ("/nn/hypernetwork/init", test_init);
  dl_test_add ("/nn/hypernetwork/config-errors", test_config_errors);
  dl_test_add ("/nn/hypernetwork/round-trip", test_round_trip);
  dl_test_add ("/nn/hypernetwork/read-variants", test_read_variants);
  dl_test_add ("/nn/hypernetwork/read-errors", test_read_errors);
  dl_test_add ("/nn/hypernetwork/infotext", test_infotext);
  golden_dir = dl_test_golden_path ("tiny-sd15-diffusers");
  if (golden_dir)
    {
      g_autofree char *d = golden_dir;
      golden_dir = g_path_get_dirname (d);
      dl_test_add ("/nn/hypernetwork/golden-safetensors", test_golden_safetensors);
      dl_test_add ("/nn/hypernetwork/golden-pt", test_golden_pt);
      dl_test_add ("/nn/hypernetwork/strength-zero", test_strength_zero);
      dl_test_add ("/nn/hypernetwork/dropout-checkpointing", test_dropout_checkpointing);
      dl_test_add ("/nn/hypernetwork/unused-sizes", test_unused_sizes);
      dl_test_add ("/nn/hypernetwork/hn-init", test_hn_init);
    }
  int rc = dl_test_run ();
  dl_test_remove_tree (tmp_dir);
  g_free (tmp_dir);
  g_free (golden_dir);
  return rc;
}
