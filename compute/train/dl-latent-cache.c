/* dl-latent-cache.c: the VAE posterior of every training image, computed once
 * and kept on disk ($XDG_CACHE_HOME/dreamloom/latents/), keyed by the image's
 * content hash, its bucket, resize and crop, mirroring, and the VAE (model file
 * identity and weight dtype): a second run over the same images starts training
 * at once.  The posterior is kept as mean and std (diffusers
 * DiagonalGaussianDistribution: logvar clamped to [-30, 20], std =
 * exp(logvar / 2)), so every step still draws its own sample. */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "nn/dl-vae.h"
#include "tensor/dl-arena.h"

#define CACHE_VERSION "1"

void
dl_latent_moments_clear (DlLatentMoments *m)
{
  g_clear_pointer (&m->mean, g_free);
  g_clear_pointer (&m->std, g_free);
  g_clear_pointer (&m->mean_flipped, g_free);
  g_clear_pointer (&m->std_flipped, g_free);
}

/* what makes the VAE's output what it is: the model file (path, size, time) and
 * the weights' dtype */
static char *
vae_identity (DlTrainer *t)
{
  const char *path = t->settings->model;
  GString *s = g_string_new (CACHE_VERSION);
  const char *const parts[] = { "", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.bin" };
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_autofree char *p = *parts[i] ? g_build_filename (path, parts[i], NULL) : g_strdup (path);
      GStatBuf sb;
      if (g_stat (p, &sb) == 0)
        g_string_append_printf (s, "|%s|%" G_GINT64_FORMAT "|%" G_GINT64_FORMAT, p, (gint64)sb.st_size,
                                (gint64)sb.st_mtime);
    }
  g_string_append_printf (s, "|%s|%s", t->settings->fp16 ? "f16" : "f32",
                          t->settings->config ? t->settings->config : "");
  return g_string_free (s, FALSE);
}

static char *
cache_path (const char *dir, const char *vae_id, const DlTrainImage *im, gboolean flip)
{
  g_autofree char *key =
    g_strdup_printf ("%s|%s|%dx%d|%dx%d|%d,%d|%d", vae_id, im->content_hash, im->bucket_width, im->bucket_height,
                     im->resized_width, im->resized_height, im->crop_x, im->crop_y, flip);
  g_autofree char *hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, key, -1);
  g_autofree char *name = g_strconcat (hash, ".safetensors", NULL);
  return g_build_filename (dir, name, NULL);
}

static gboolean
read_cached (const char *path, gsize per, float **mean, float **std)
{
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, NULL);
  if (!st)
    return FALSE;
  int64_t n1 = 0, n2 = 0;
  g_autofree float *m = dl_safetensors_read_f32 (st, "mean", &n1, NULL);
  g_autofree float *s = m ? dl_safetensors_read_f32 (st, "std", &n2, NULL) : NULL;
  if (!s || (gsize)n1 != per || (gsize)n2 != per)
    return FALSE;
  *mean = g_steal_pointer (&m);
  *std = g_steal_pointer (&s);
  return TRUE;
}

static gboolean
encode (DlTrainer *t, DlTrainImages *images, guint i, gboolean flip, float **mean, float **std, GError **error)
{
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  const DlTrainImage *im = dl_train_images_get (images, i);
  g_autofree float *pixels = dl_train_images_load_pixels (images, i, flip, error);
  if (!pixels)
    return FALSE;
  /* the VAE's own dtype (f32 for SDXL's unless it is f16-safe, whatever the rest) */
  DlDType act = dl_sd_model_get_vae_dtype (t->model);
  int64_t shape[4] = { 1, 3, im->bucket_height, im->bucket_width };
  g_autoptr (DlTensor) x = dl_tensor_new (t->device, "pixels", act, 4, shape, error);
  if (!x || !dl_tensor_upload_f32 (x, pixels, error))
    return FALSE;
  g_autoptr (DlTape) tape = dl_tape_new (dl_sd_model_get_recorder (t->model), dl_sd_model_get_arena (t->model));
  dl_tape_set_enabled (tape, FALSE);
  dl_tape_set_activation_dtype (tape, act);
  g_autoptr (DlTensor) moments = dl_vae_encode (dl_sd_model_get_params (t->model), &cfg->vae, tape, x, NULL, error);
  if (!moments || !dl_recorder_finish (dl_sd_model_get_recorder (t->model), error))
    return FALSE;
  g_autofree float *mv = dl_tensor_download_f32 (moments, error);
  if (!mv)
    return FALSE;
  gsize per = (gsize)dl_tensor_numel (moments) / 2;
  float *m = g_new (float, per), *s = g_new (float, per);
  for (gsize k = 0; k < per; k++)
    {
      float lv = CLAMP (mv[per + k], -30.0f, 20.0f);
      m[k] = mv[k];
      s[k] = expf (0.5f * lv);
    }
  *mean = m;
  *std = s;
  return TRUE;
}

static gboolean
write_cached (const char *path, const DlLatentMoments *lm, int L, const float *mean, const float *std, GError **error)
{
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  int64_t shape[3] = { L, lm->h, lm->w };
  dl_safetensors_writer_set_metadata (w, "format", "dreamloom-latents");
  dl_safetensors_writer_set_metadata (w, "version", CACHE_VERSION);
  return dl_safetensors_writer_add_f32 (w, "mean", DL_ST_F32, 3, shape, mean, error) &&
         dl_safetensors_writer_add_f32 (w, "std", DL_ST_F32, 3, shape, std, error) &&
         dl_safetensors_writer_write (w, path, error);
}

static gboolean
cache_set (DlTrainer *t, DlTrainImages *images, gboolean with_flip, DlLatentMoments **out, guint *encoded_out,
           GError **error)
{
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  guint n = dl_train_images_get_n (images);
  int L = cfg->unet.in_channels, f = 1 << (cfg->vae.n_levels - 1);
  g_autofree char *vae_id = vae_identity (t);
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "dreamloom", "latents", NULL);
  /* a model of random weights (benchmarks) has no identity to key a cache by */
  gboolean use_disk = dl_sd_model_get_checkpoint (t->model) != NULL;
  gboolean can_write = use_disk && g_mkdir_with_parents (dir, 0755) == 0;
  DlLatentMoments *moments = *out = g_new0 (DlLatentMoments, n);
  guint encoded = 0;
  for (guint i = 0; i < n; i++)
    {
      const DlTrainImage *im = dl_train_images_get (images, i);
      DlLatentMoments *lm = &moments[i];
      lm->h = im->bucket_height / f;
      lm->w = im->bucket_width / f;
      gsize per = (gsize)L * lm->h * lm->w;
      for (int flip = 0; flip <= (with_flip ? 1 : 0); flip++)
        {
          if (g_cancellable_set_error_if_cancelled (t->cancellable, error))
            return FALSE;
          float *mean = NULL, *std = NULL;
          g_autofree char *path = cache_path (dir, vae_id, im, flip);
          if (!use_disk || !read_cached (path, per, &mean, &std))
            {
              dl_trainer_status (t, (double)i / n, "Encoding the training images (%u of %u)", i + 1, n);
              if (!encode (t, images, i, flip, &mean, &std, error))
                return FALSE;
              encoded++;
              g_autoptr (GError) werr = NULL;
              if (can_write && !write_cached (path, lm, L, mean, std, &werr))
                g_debug ("latent cache: %s", werr->message); /* a cache: losing it costs time only */
            }
          if (flip)
            {
              lm->mean_flipped = mean;
              lm->std_flipped = std;
            }
          else
            {
              lm->mean = mean;
              lm->std = std;
            }
        }
    }
  *encoded_out += encoded;
  return TRUE;
}

gboolean
dl_trainer_cache_latents (DlTrainer *t, GError **error)
{
  guint encoded = 0;
  if (!cache_set (t, t->images, t->settings->flip, &t->moments, &encoded, error))
    return FALSE;
  /* class images are not mirrored: --flip is an augmentation of the user's images */
  if (t->class_images && !cache_set (t, t->class_images, FALSE, &t->class_moments, &encoded, error))
    return FALSE;
  if (encoded)
    dl_trainer_status (t, 1.0, "Encoded %u image%s", encoded, encoded == 1 ? "" : "s");
  /* the encoder's working memory (2.2 GiB for SDXL's f32 VAE at 1024²) goes
   * back before the trained tensors are made: the arena would otherwise keep
   * it for the whole run (the plan's peak_encoding) */
  dl_arena_trim (dl_sd_model_get_arena (t->model));
  /* the encoder is not needed again in this run (the decoder is, for previews);
   * a model shared with the window stays whole */
  if (t->owned_model)
    {
      DlParams *p = dl_sd_model_get_params (t->model);
      dl_params_remove_prefix (p, "vae.encoder.");
      dl_params_remove_prefix (p, "vae.quant_conv.");
      if (t->settings->sample_every == 0)
        dl_params_remove_prefix (p, "vae.");
    }
  return dl_device_trim_memory (t->device, error);
}
