/* test-vae-tiled.c: the tiled VAE decode (dl_vae_decode_tiled) against the
 * untiled one on the golden tiny VAEs (SDXL's and SD 1.5's), the blend of the
 * tiles, the memory estimate that decides when sampling tiles (against the
 * arena's measured peak) and the choice of the tile.
 *
 * The latent is the encoder's mean of a smooth 64x64 picture (2 images of
 * 32x32 latents: what a picture gives, not noise).  A tile covering the latent
 * is the untiled decode, bit for bit, and two tiles blend exactly as the ramps
 * say (1e-5).  Tiles differ from the whole because the decoder's GroupNorms
 * and its mid-block attention are global: each tile normalises with its own
 * statistics and attends only to itself.  The tiny VAEs (random weights, 8
 * groups over 16..64 channels) are far more sensitive to that than a trained
 * one: on the tiny SDXL VAE the centre of one 16x16 tile, decoded alone,
 * already differs from the same pixels of the whole by 0.44..0.86 of their
 * RMS, and with the mid-block attention's output zeroed the differences below
 * stay where they are (RMS 0.53 for tiles of 16): the GroupNorms make them.
 * Measured on lavapipe, max|tiled - untiled| / max|untiled| and
 * RMS(tiled - untiled) / RMS(untiled):
 *
 *   tiles, overlap   tiny SDXL VAE      tiny SD 1.5 VAE
 *   12, 3            0.81, 0.68         0.94, 0.67
 *   16, 8            0.70, 0.56         0.60, 0.42
 *   24, 6            0.33, 0.23         0.34, 0.19
 *
 * The bounds (TILE*_REL) are these with room; they catch a misplaced tile or
 * a wrong blend (either gives differences of the image's own size), not
 * the small drift of a changed kernel. */
#include "dl-config.h"

#include <math.h>
#include <string.h>

#include "io/dl-checkpoint.h"
#include "io/dl-model-params.h"
#include "nn-test-util.h"
#include "nn/dl-nn.h"
#include "nn/dl-vae.h"
#include "ops/dl-ops.h"

#define TILE12_MAX_REL 1.1
#define TILE12_RMS_REL 0.8
#define TILE16_MAX_REL 0.85
#define TILE16_RMS_REL 0.65
#define TILE24_MAX_REL 0.45
#define TILE24_RMS_REL 0.3

typedef struct
{
  DlCheckpoint *ckpt;
  DlParams *params;
  const DlVaeConfig *vae;
} Vae;

static Vae *
vae_load (const char *folder)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = dl_test_golden_path (folder);
  g_assert_nonnull (path);
  Vae *v = g_new0 (Vae, 1);
  v->ckpt = dl_checkpoint_open (path, NULL, &error);
  g_assert_no_error (error);
  v->params = dl_params_new (dl_test_device ());
  g_assert_true (dl_params_load_checkpoint (v->params, v->ckpt, DL_COMPONENT_VAE, DL_DTYPE_F32, &error));
  g_assert_no_error (error);
  v->vae = &dl_checkpoint_get_config (v->ckpt)->vae;
  return v;
}

static void
vae_free (Vae *v)
{
  dl_params_free (v->params);
  dl_checkpoint_free (v->ckpt);
  g_free (v);
}

static DlTape *
inference_tape (DlArena *arena)
{
  DlTape *tape = dl_tape_new (dl_test_recorder (), arena);
  dl_tape_set_enabled (tape, FALSE);
  return tape;
}

static DlTensor *
upload (const char *name, const float *v, int ndim, const int64_t *shape)
{
  g_autoptr (GError) error = NULL;
  DlTensor *t = dl_tensor_new (dl_test_device (), name, DL_DTYPE_F32, ndim, shape, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tensor_upload (t, v, DL_DTYPE_F32, &error));
  return t;
}

/* The encoder's mean of a smooth picture of size x size (two images: the batch
 * is tiled too): [2, L, size/f, size/f]. */
static DlTensor *
smooth_latent (Vae *v, int size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-encode", 16 << 20);
  g_autoptr (DlTape) tape = inference_tape (arena);
  gsize n = (gsize)2 * 3 * size * size;
  g_autofree float *px = g_new (float, n);
  for (int b = 0; b < 2; b++)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
          px[((gsize)(b * 3 + c) * size + y) * size + x] =
            (float)(0.6 * sin (0.11 * x * (c + 1) + 0.7 * b) * cos (0.07 * y + 0.3 * c) + 0.3 * sin (0.02 * (x + y)));
  int64_t shape[4] = { 2, 3, size, size };
  g_autoptr (DlTensor) image = upload ("image", px, 4, shape);
  g_autoptr (DlTensor) moments = dl_vae_encode (v->params, v->vae, tape, image, NULL, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) mean = dl_nn_slice_channels (tape, moments, 0, v->vae->latent_channels, &error);
  g_assert_no_error (error);
  dl_test_finish ();
  /* a copy outside the arena, which goes away with this function */
  g_autofree float *m = dl_test_download (mean);
  return upload ("latents", m, 4, mean->shape);
}

static gsize
image_numel (Vae *v, DlTensor *z)
{
  int64_t f = (int64_t)1 << (v->vae->n_levels - 1);
  return (gsize)(z->shape[0] * v->vae->out_channels * z->shape[2] * f * z->shape[3] * f);
}

static float *
decode (Vae *v, DlArena *arena, DlTensor *z, int tile, int overlap)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTape) tape = inference_tape (arena);
  g_autoptr (DlTensor) img = tile > 0 ? dl_vae_decode_tiled (v->params, v->vae, tape, z, tile, overlap, &error)
                                      : dl_vae_decode (v->params, v->vae, tape, z, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (img);
  int64_t f = (int64_t)1 << (v->vae->n_levels - 1);
  g_assert_cmpint (img->shape[0], ==, z->shape[0]);
  g_assert_cmpint (img->shape[1], ==, v->vae->out_channels);
  g_assert_cmpint (img->shape[2], ==, z->shape[2] * f);
  g_assert_cmpint (img->shape[3], ==, z->shape[3] * f);
  dl_test_finish ();
  return dl_test_download (img);
}

/* A tile covering the latent (as large, or larger) is the untiled decode. */
static void
test_one_tile (gconstpointer data)
{
  Vae *v = vae_load (data);
  g_autoptr (DlTensor) z = smooth_latent (v, 64);
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-decode", 16 << 20);
  gsize n = image_numel (v, z);
  g_autofree float *whole = decode (v, arena, z, 0, 0);
  g_autofree float *same = decode (v, arena, z, 32, 8);
  g_autofree float *larger = decode (v, arena, z, 40, 0);
  g_assert_cmpmem (same, n * sizeof (float), whole, n * sizeof (float));
  g_assert_cmpmem (larger, n * sizeof (float), whole, n * sizeof (float));
  vae_free (v);
}

static void
compare (const char *what, const float *got, const float *want, gsize n, double *max_rel, double *rms_rel)
{
  double maxd = 0, maxw = 0, sd = 0, sw = 0;
  for (gsize i = 0; i < n; i++)
    {
      double d = fabs ((double)got[i] - want[i]);
      g_assert_true (isfinite (got[i]));
      maxd = MAX (maxd, d);
      maxw = MAX (maxw, fabs ((double)want[i]));
      sd += d * d;
      sw += (double)want[i] * want[i];
    }
  *max_rel = maxd / maxw;
  *rms_rel = sqrt (sd / sw);
  g_test_message ("%s: max|tiled - untiled| %.3g (%.3g of max|untiled| %.3g), RMS %.3g of the image's", what, maxd,
                  *max_rel, maxw, *rms_rel);
}

/* 3x3 tiles of 16 (overlap 8) on 32x32 latents, tiles that do not divide the
 * latent (12, overlap 3: the last ones move back to the edge) and 2x2 tiles of
 * 24 (overlap 6), each within its measured difference (with room: see the top
 * of the file); larger tiles come closer to the whole. */
static void
test_against_untiled (gconstpointer data)
{
  Vae *v = vae_load (data);
  g_autoptr (DlTensor) z = smooth_latent (v, 64);
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-decode", 16 << 20);
  gsize n = image_numel (v, z);
  g_autofree float *whole = decode (v, arena, z, 0, 0);
  static const struct
  {
    int tile, overlap;
    double max_rel, rms_rel;
  } cases[] = {
    { 12, 3, TILE12_MAX_REL, TILE12_RMS_REL },
    { 16, 8, TILE16_MAX_REL, TILE16_RMS_REL },
    { 24, 6, TILE24_MAX_REL, TILE24_RMS_REL },
  };
  double last_rms = INFINITY;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree float *tiled = decode (v, arena, z, cases[i].tile, cases[i].overlap);
      g_autofree char *what =
        g_strdup_printf ("%s, tiles %d overlap %d", (const char *)data, cases[i].tile, cases[i].overlap);
      double max_rel, rms_rel;
      compare (what, tiled, whole, n, &max_rel, &rms_rel);
      g_assert_cmpfloat (max_rel, <=, cases[i].max_rel);
      g_assert_cmpfloat (rms_rel, <=, cases[i].rms_rel);
      g_assert_cmpfloat (rms_rel, <, last_rms);
      last_rms = rms_rel;
    }
  vae_free (v);
}

/* The blend itself, on two tiles side by side (a 16x24 latent, tiles of 16
 * overlapping by 8): where one tile covers the image the result is that tile's
 * decode, and across the overlap it fades linearly from one to the other,
 * weights (k + 0.5) / 16 for the k-th of its 16 pixel columns. */
static void
test_blend (void)
{
  Vae *v = vae_load ("sdxl/tiny-sdxl-diffusers");
  g_autoptr (DlTensor) big = smooth_latent (v, 64);
  g_autofree float *zh = dl_test_download (big);
  int64_t B = 2, L = v->vae->latent_channels, h = 16, w = 24, T = 16, f = 2, H = h * f, W = w * f, P = T * f;
  g_autofree float *zc = g_new (float, B *L *h *w);
  for (int64_t bl = 0; bl < B * L; bl++)
    for (int64_t y = 0; y < h; y++)
      memcpy (zc + (bl * h + y) * w, zh + (bl * 32 + y + 8) * 32 + 4, w * sizeof (float));
  int64_t zs[4] = { B, L, h, w };
  g_autoptr (DlTensor) z = upload ("latents", zc, 4, zs);
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-decode", 16 << 20);
  g_autofree float *tiled = decode (v, arena, z, 16, 8);
  float *tiles[2];
  for (int t = 0; t < 2; t++)
    {
      g_autofree float *crop = g_new (float, B *L *h *T);
      for (int64_t r = 0; r < B * L * h; r++)
        memcpy (crop + r * T, zc + r * w + 8 * t, T * sizeof (float));
      int64_t cs[4] = { B, L, h, T };
      g_autoptr (DlTensor) zt = upload ("tile", crop, 4, cs);
      tiles[t] = decode (v, arena, zt, 0, 0);
    }
  double worst = 0;
  for (int64_t r = 0; r < B * 3 * H; r++)
    for (int64_t x = 0; x < W; x++)
      {
        double want;
        if (x < 16)
          want = tiles[0][r * P + x];
        else if (x >= 32)
          want = tiles[1][r * P + x - 16];
        else
          {
            double a = (x - 16 + 0.5) / 16.0;
            want = (1.0 - a) * tiles[0][r * P + x] + a * tiles[1][r * P + x - 16];
          }
        worst = MAX (worst, fabs (tiled[r * W + x] - want));
      }
  g_test_message ("two tiles: max|tiled - blend of the tiles| %.3g", worst);
  g_assert_cmpfloat (worst, <=, 1e-5);
  g_free (tiles[0]);
  g_free (tiles[1]);
  vae_free (v);
}

static void
test_bad_arguments (void)
{
  Vae *v = vae_load ("sdxl/tiny-sdxl-diffusers");
  g_autoptr (GError) error = NULL;
  int64_t zs[4] = { 1, 4, 8, 8 };
  g_autofree float *zero = g_new0 (float, 256);
  g_autoptr (DlTensor) z = upload ("latents", zero, 4, zs);
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-decode", 1 << 20);
  g_autoptr (DlTape) tape = inference_tape (arena);
  g_autoptr (DlTensor) a = dl_vae_decode_tiled (v->params, v->vae, tape, z, 4, 4, &error);
  dl_test_expect_error (a != NULL, &error, DL_ERROR_INVALID_ARGUMENT);
  g_autoptr (DlTensor) b = dl_vae_decode_tiled (v->params, v->vae, tape, z, 0, 0, &error);
  dl_test_expect_error (b != NULL, &error, DL_ERROR_INVALID_ARGUMENT);
  /* tiles are for inference: a recording tape is refused */
  g_autoptr (DlTape) rec_tape = dl_tape_new (dl_test_recorder (), arena);
  g_autoptr (DlTensor) c = dl_vae_decode_tiled (v->params, v->vae, rec_tape, z, 4, 1, &error);
  dl_test_expect_error (c != NULL, &error, DL_ERROR_INVALID_ARGUMENT);
  dl_test_finish ();
  vae_free (v);
}

/* The estimate is an upper bound of the arena's peak, and not a loose one,
 * untiled and per tile. */
static void
check_estimate (const char *what, DlParams *p, const DlVaeConfig *c, DlTensor *z, int tile)
{
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-decode", 1 << 20);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTape) tape = inference_tape (arena);
  dl_arena_reset_peak (arena);
  g_autoptr (DlTensor) img =
    tile ? dl_vae_decode_tiled (p, c, tape, z, tile, tile / 4, &error) : dl_vae_decode (p, c, tape, z, NULL, &error);
  g_assert_no_error (error);
  dl_test_finish ();
  guint64 peak = dl_arena_get_peak (arena);
  int64_t h = tile ? MIN (tile, z->shape[2]) : z->shape[2], w = tile ? MIN (tile, z->shape[3]) : z->shape[3];
  guint64 est = dl_vae_decode_activation_bytes (c, z->shape[0], h, w, z->dtype);
  g_test_message ("%s, tile %d: arena peak %.2f MiB, estimate %.2f MiB (%.2f)", what, tile, peak / 1048576.0,
                  est / 1048576.0, (double)est / peak);
  g_assert_cmpuint (est, >=, peak);
  g_assert_cmpuint (est, <=, peak * 3 / 2);
}

/* The same for the encoder, whose estimate the training plan uses for the
 * images it encodes: `size` x `size` pixels. */
static void
check_encode_estimate (const char *what, DlParams *p, const DlVaeConfig *c, int size)
{
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-encode", 1 << 20);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTape) tape = inference_tape (arena);
  int64_t shape[4] = { 1, c->in_channels, size, size };
  g_autofree float *px = dl_test_random (c->in_channels * size * size, 5, -1, 1);
  g_autoptr (DlTensor) image = upload ("image", px, 4, shape);
  dl_arena_reset_peak (arena);
  g_autoptr (DlTensor) moments = dl_vae_encode (p, c, tape, image, NULL, &error);
  g_assert_no_error (error);
  dl_test_finish ();
  guint64 peak = dl_arena_get_peak (arena);
  guint64 est = dl_vae_encode_activation_bytes (c, 1, size, size, DL_DTYPE_F32);
  g_test_message ("%s, encoding %dx%d: arena peak %.2f MiB, estimate %.2f MiB (%.2f)", what, size, size,
                  peak / 1048576.0, est / 1048576.0, (double)est / peak);
  g_assert_cmpuint (est, >=, peak);
  g_assert_cmpuint (est, <=, peak * 3 / 2);
}

static void
test_estimate (gconstpointer data)
{
  Vae *v = vae_load (data);
  g_autoptr (DlTensor) z = smooth_latent (v, 64);
  check_estimate (data, v->params, v->vae, z, 0);
  check_estimate (data, v->params, v->vae, z, 16);
  check_encode_estimate (data, v->params, v->vae, 128);
  vae_free (v);
}

/* SD 1.5's VAE shapes (128..512 channels) with random weights at 256x256 (the
 * real decoder, where the last level's 256 -> 128 block is the peak: 160 MiB
 * whole, 40 MiB in tiles of 16; the encoder's first level, 96 MiB).  Slow on
 * a CPU (a quarter of an hour on two busy cores): with -m thorough only. */
/* A VAE of `cfg`'s shapes with random weights. */
static DlParams *
random_vae (DlModelConfig *cfg)
{
  g_autoptr (GError) error = NULL;
  DlParams *p = dl_params_new (dl_test_device ());
  g_autoptr (GPtrArray) specs = dl_model_param_specs (cfg);
  DlRecorder *rec = dl_test_recorder ();
  for (guint i = 0; i < specs->len; i++)
    {
      const DlParamSpec *s = specs->pdata[i];
      if (s->component != DL_COMPONENT_VAE)
        continue;
      g_autoptr (DlTensor) t = dl_tensor_new (dl_test_device (), s->name, DL_DTYPE_F32, s->ndim, s->shape, &error);
      g_assert_no_error (error);
      double fan_in = (double)dl_tensor_numel (t) / (double)s->shape[0];
      gboolean ok =
        s->ndim == 1 ? dl_op_fill (rec, t, g_str_has_suffix (s->name, ".bias") ? 0.0 : 1.0, &error)
                     : dl_op_random_normal (rec, t, DL_RANDOM_PHILOX, 7, i, 0.0f, (float)(1.0 / sqrt (fan_in)), &error);
      g_assert_true (ok);
      dl_params_insert (p, s->name, t);
    }
  return p;
}

static void
test_estimate_sd_shapes (void)
{
  if (!g_test_thorough ())
    {
      g_test_skip ("the full-size VAE is slow on a CPU: run with -m thorough");
      return;
    }
  g_autoptr (GError) error = NULL;
  DlModelConfig cfg;
  dl_model_config_init_sd15 (&cfg);
  g_autoptr (DlParams) p = random_vae (&cfg);
  DlRecorder *rec = dl_test_recorder ();
  int64_t zs[4] = { 1, 4, 32, 32 };
  g_autoptr (DlTensor) z = dl_tensor_new (dl_test_device (), "z", DL_DTYPE_F32, 4, zs, &error);
  g_assert_true (dl_op_random_normal (rec, z, DL_RANDOM_PHILOX, 9, 0, 0.0f, 1.0f, &error));
  dl_test_finish ();
  check_estimate ("SD 1.5 shapes", p, &cfg.vae, z, 0);
  check_estimate ("SD 1.5 shapes", p, &cfg.vae, z, 16);
  check_encode_estimate ("SD 1.5 shapes", p, &cfg.vae, 256);
}

/* A mid block wider than the flash kernels' heads (288 channels, one head, as
 * every SD VAE's 512): its attention materialises the scores, which are the
 * peak of both directions here (as at 1024² for SD's VAE) and counted. */
static void
test_estimate_wide_attention (void)
{
  g_autoptr (GError) error = NULL;
  DlModelConfig cfg;
  dl_model_config_init_sd15 (&cfg);
  DlVaeConfig *c = &cfg.vae;
  c->n_levels = 2;
  c->block_out_channels[0] = 16;
  c->block_out_channels[1] = 288;
  c->layers_per_block = 1;
  c->norm_num_groups = 16;
  g_autoptr (DlParams) p = random_vae (&cfg);
  int64_t zs[4] = { 1, c->latent_channels, 32, 32 };
  g_autoptr (DlTensor) z = dl_tensor_new (dl_test_device (), "z", DL_DTYPE_F32, 4, zs, &error);
  g_assert_true (dl_op_random_normal (dl_test_recorder (), z, DL_RANDOM_PHILOX, 9, 0, 0.0f, 1.0f, &error));
  dl_test_finish ();
  /* 1024 tokens: the scores and their softmax, 8 MiB */
  guint64 scores = dl_nn_attention_scores_bytes (1, 1024, 1024, 1, 288, FALSE);
  g_assert_cmpuint (scores, ==, 8u << 20);
  g_assert_cmpuint (dl_nn_attention_scores_bytes (1, 1024, 1024, 8, 64, FALSE), ==, 0);
  g_assert_cmpuint (dl_vae_decode_activation_bytes (c, 1, 32, 32, DL_DTYPE_F32), >, scores);
  g_assert_cmpuint (dl_vae_encode_activation_bytes (c, 1, 64, 64, DL_DTYPE_F32), >, scores);
  check_estimate ("288-channel mid block", p, c, z, 0);
  check_encode_estimate ("288-channel mid block", p, c, 64);
}

/* The tile for a budget: none when the whole fits, the largest that fits
 * otherwise, never below 16; SDXL at 1024x1024 on an 8 GB card. */
static void
test_choose_tile (void)
{
  DlModelConfig cfg;
  dl_model_config_init_sdxl (&cfg);
  const DlVaeConfig *c = &cfg.vae;
  int overlap = -1;
  guint64 whole = dl_vae_decode_activation_bytes (c, 1, 128, 128, DL_DTYPE_F32);
  /* 256 -> 128 channels on 1024x1024: 2.5 GiB in f32 */
  g_assert_cmpuint (whole, ==, (guint64)(256 + 3 * 128) * 1024 * 1024 * 4);
  /* encoding 1024²: the mid block's attention, 16384 tokens: 2 GiB of scores
   * and six 512-wide tensors (192 MiB), above the first level's 1.5 GiB */
  guint64 mid = (guint64)2 * 16384 * 16384 * 4 + (guint64)6 * 512 * 16384 * 4;
  g_assert_cmpuint (dl_vae_encode_activation_bytes (c, 1, 1024, 1024, DL_DTYPE_F32), ==, mid);
  /* at 512² the first level again (384 MiB) */
  g_assert_cmpuint (dl_vae_encode_activation_bytes (c, 1, 512, 512, DL_DTYPE_F32), ==,
                    (guint64)3 * 128 * 512 * 512 * 4);
  /* an f16-safe VAE decoding 1024²: the scores stay f32, and are the peak */
  g_assert_cmpuint (dl_vae_decode_activation_bytes (c, 1, 128, 128, DL_DTYPE_F16), ==,
                    (guint64)2 * 16384 * 16384 * 4 + (guint64)6 * 512 * 16384 * 2);
  g_assert_cmpint (dl_vae_decode_choose_tile (c, 1, 128, 128, DL_DTYPE_F32, whole * 2, &overlap), ==, 0);
  g_assert_cmpint (overlap, ==, 0);
  /* SDXL in f16 (the VAE in f32) takes about 7.1 GiB of an 8 GiB card */
  guint64 free_bytes = 900u << 20;
  int tile = dl_vae_decode_choose_tile (c, 1, 128, 128, DL_DTYPE_F32, free_bytes, &overlap);
  g_assert_cmpint (tile, >=, 16);
  g_assert_cmpint (tile, <, 128);
  g_assert_cmpint (tile % 8, ==, 0);
  g_assert_cmpint (overlap, ==, tile / 4);
  g_assert_cmpuint (dl_vae_decode_activation_bytes (c, 1, tile, tile, DL_DTYPE_F32), <=, free_bytes / 4 * 3);
  g_assert_cmpuint (dl_vae_decode_activation_bytes (c, 1, tile + 8, tile + 8, DL_DTYPE_F32), >, free_bytes / 4 * 3);
  g_test_message ("SDXL 1024x1024, 900 MiB free: tiles of %d latent pixels, overlap %d", tile, overlap);
  /* nothing fits: the smallest tile */
  g_assert_cmpint (dl_vae_decode_choose_tile (c, 1, 128, 128, DL_DTYPE_F32, 1 << 20, &overlap), ==, 16);
  g_assert_cmpint (overlap, ==, 4);
  /* a small latent is never tiled below the latent itself */
  g_assert_cmpint (dl_vae_decode_choose_tile (c, 1, 16, 16, DL_DTYPE_F32, 1 << 20, &overlap), ==, 0);
}

/* dl_vae_decode_auto decodes whole while it fits the device's free memory and
 * in tiles (the chosen ones, the same pixels as dl_vae_decode_tiled) when a
 * memory limit leaves too little. */
static void
test_auto (void)
{
  Vae *v = vae_load ("sdxl/tiny-sdxl-diffusers");
  g_autoptr (GError) error = NULL;
  g_autoptr (DlTensor) z = smooth_latent (v, 64);
  gsize n = image_numel (v, z);
  g_autoptr (DlArena) arena = dl_arena_new (dl_test_device (), "test-decode", 256 << 10);
  g_autofree float *whole = decode (v, arena, z, 0, 0);
  DlDevice *dev = dl_test_device ();
  dl_arena_trim (arena);
  {
    g_autoptr (DlTape) tape = inference_tape (arena);
    g_autoptr (DlTensor) img = dl_vae_decode_auto (v->params, v->vae, tape, z, &error);
    g_assert_no_error (error);
    dl_test_finish ();
    g_autofree float *got = dl_test_download (img);
    g_assert_cmpmem (got, n * sizeof (float), whole, n * sizeof (float));
  }
  dl_arena_trim (arena);
  guint64 need = dl_vae_decode_activation_bytes (v->vae, 2, 32, 32, DL_DTYPE_F32);
  guint64 avail = need / 2;
  int overlap = 0;
  int tile = dl_vae_decode_choose_tile (v->vae, 2, 32, 32, DL_DTYPE_F32, avail, &overlap);
  g_assert_cmpint (tile, >, 0);
  g_autofree float *tiled = decode (v, arena, z, tile, overlap);
  dl_arena_trim (arena);
  g_assert_cmpuint (dl_arena_get_reserved (arena), ==, 0);
  /* the arena holds nothing now: the free memory is what the limit leaves */
  dl_device_set_memory_limit (dev, dl_device_get_memory_in_use (dev) + avail);
  {
    g_autoptr (DlTape) tape = inference_tape (arena);
    g_autoptr (DlTensor) img = dl_vae_decode_auto (v->params, v->vae, tape, z, &error);
    g_assert_no_error (error);
    dl_test_finish ();
    dl_device_set_memory_limit (dev, 0);
    g_autofree float *got = dl_test_download (img);
    g_assert_cmpmem (got, n * sizeof (float), tiled, n * sizeof (float));
  }
  g_test_message ("tiny SDXL VAE, %" G_GUINT64_FORMAT " KiB free of %" G_GUINT64_FORMAT " KiB: tiles of %d, overlap %d",
                  avail >> 10, need >> 10, tile, overlap);
  vae_free (v);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  g_autofree char *found = dl_test_golden_path ("sdxl/tiny-sdxl-diffusers");
  g_autofree char *found1 = dl_test_golden_path ("tiny-sd15-diffusers");
  if (!found || !found1)
    return dl_test_skip_all ("the tiny VAEs (../shared/golden) not found");
  static const char *models[] = { "sdxl/tiny-sdxl-diffusers", "tiny-sd15-diffusers" };
  /* $DREAMLOOM_TEST_QUICK (the sanitizer build): SDXL's VAE only */
  guint n_models = g_getenv ("DREAMLOOM_TEST_QUICK") ? 1 : G_N_ELEMENTS (models);
  for (guint i = 0; i < n_models; i++)
    {
      const char *tag = i == 0 ? "sdxl" : "sd15";
      g_autofree char *p0 = g_strdup_printf ("/nn/vae-tiled/one-tile/%s", tag);
      g_autofree char *p1 = g_strdup_printf ("/nn/vae-tiled/against-untiled/%s", tag);
      g_autofree char *p2 = g_strdup_printf ("/nn/vae-tiled/estimate/%s", tag);
      dl_test_add_data (p0, models[i], test_one_tile);
      dl_test_add_data (p1, models[i], test_against_untiled);
      dl_test_add_data (p2, models[i], test_estimate);
    }
  dl_test_add ("/nn/vae-tiled/blend", test_blend);
  dl_test_add ("/nn/vae-tiled/bad-arguments", test_bad_arguments);
  dl_test_add ("/nn/vae-tiled/choose-tile", test_choose_tile);
  dl_test_add ("/nn/vae-tiled/auto", test_auto);
  dl_test_add ("/nn/vae-tiled/estimate/sd15-shapes", test_estimate_sd_shapes);
  dl_test_add ("/nn/vae-tiled/estimate/wide-attention", test_estimate_wide_attention);
  return dl_test_run ();
}
