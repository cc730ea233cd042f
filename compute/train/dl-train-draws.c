/* dl-train-draws.c: see dl-train-draws.h. */
#include "dl-config.h"

#include "train/dl-train-draws.h"

#include <string.h>

#include "dl-error.h"
#include "dl-philox.h"

void
dl_step_draws_clear (DlStepDraws *d)
{
  g_clear_pointer (&d->images, g_free);
  g_clear_pointer (&d->class_images, g_free);
  g_clear_pointer (&d->templates, g_free);
  g_clear_pointer (&d->flips, g_free);
  g_clear_pointer (&d->latent_eps, g_free);
  g_clear_pointer (&d->noise, g_free);
  g_clear_pointer (&d->offset_eps, g_free);
  g_clear_pointer (&d->timesteps, g_free);
  g_clear_pointer (&d->caption_random, g_free);
  memset (d, 0, sizeof *d);
}

/* ---- the generator ---- */

/* Draw streams: micro-batch m uses offsets (m << 4) | kind; epoch e's order uses
 * EPOCH_STREAM + e. */
enum
{
  KIND_LATENT_EPS,
  KIND_NOISE,
  KIND_OFFSET_EPS,
  KIND_TIMESTEPS,
  KIND_TEMPLATES,
  KIND_FLIPS,
  KIND_CAPTIONS,
};
/* the class images' order: one permutation per pass over them */
#define CLASS_STREAM (G_GUINT64_CONSTANT (3) << 61)
#define EPOCH_STREAM (G_GUINT64_CONSTANT (1) << 62)

struct _DlDraws
{
  DlDrawsConfig config;
  guint *bucket_of;
  int *bucket_hw;
  guint n_batches;    /* per epoch */
  gint64 epoch;       /* the epoch `batches` holds, -1: none */
  GPtrArray *batches; /* GArray of guint (image indices) */
};

static guint
bucket_of (DlDraws *d, guint image)
{
  return d->bucket_of ? d->bucket_of[image] : 0;
}

DlDraws *
dl_draws_new (const DlDrawsConfig *config)
{
  g_return_val_if_fail (config != NULL && config->n_images > 0 && config->batch > 0, NULL);
  DlDraws *d = g_new0 (DlDraws, 1);
  d->config = *config;
  d->config.repeats = MAX (config->repeats, 1);
  d->config.n_buckets = MAX (config->n_buckets, 1);
  if (config->bucket_of)
    d->bucket_of = g_memdup2 (config->bucket_of, sizeof (guint) * config->n_images);
  d->bucket_hw = g_memdup2 (config->bucket_latent_hw, sizeof (int) * 2 * d->config.n_buckets);
  d->config.bucket_of = NULL;
  d->config.bucket_latent_hw = NULL;
  /* batches per epoch: per bucket ceil(entries / batch) */
  g_autofree guint *count = g_new0 (guint, d->config.n_buckets);
  for (guint i = 0; i < config->n_images; i++)
    count[bucket_of (d, i)] += d->config.repeats;
  for (guint b = 0; b < d->config.n_buckets; b++)
    d->n_batches += (count[b] + config->batch - 1) / config->batch;
  d->epoch = -1;
  d->batches = g_ptr_array_new_with_free_func ((GDestroyNotify)g_array_unref);
  return d;
}

void
dl_draws_free (DlDraws *d)
{
  if (!d)
    return;
  g_free (d->bucket_of);
  g_free (d->bucket_hw);
  g_ptr_array_unref (d->batches);
  g_free (d);
}

guint
dl_draws_batches_per_epoch (DlDraws *d)
{
  return d->n_batches;
}

/* a uniform integer in [0, n) from word k of a stream */
static guint
uniform_below (guint64 seed, guint64 stream, guint64 k, guint n)
{
  return (guint)(((guint64)dl_philox_word (seed, stream, k) * n) >> 32);
}

static void
shuffle (guint *v, guint n, guint64 seed, guint64 stream, guint64 *k)
{
  for (guint i = n; i > 1; i--)
    {
      guint j = uniform_below (seed, stream, (*k)++, i);
      guint t = v[i - 1];
      v[i - 1] = v[j];
      v[j] = t;
    }
}

static void
make_epoch (DlDraws *d, gint64 epoch)
{
  const DlDrawsConfig *c = &d->config;
  guint64 stream = EPOCH_STREAM + (guint64)epoch, k = 0;
  g_ptr_array_set_size (d->batches, 0);
  for (guint b = 0; b < c->n_buckets; b++)
    {
      g_autoptr (GArray) entries = g_array_new (FALSE, FALSE, sizeof (guint));
      for (guint i = 0; i < c->n_images; i++)
        if (bucket_of (d, i) == b)
          for (guint r = 0; r < c->repeats; r++)
            g_array_append_val (entries, i);
      shuffle ((guint *)entries->data, entries->len, c->seed, stream, &k);
      for (guint s = 0; s < entries->len; s += c->batch)
        {
          guint n = MIN (c->batch, entries->len - s);
          GArray *batch = g_array_sized_new (FALSE, FALSE, sizeof (guint), n);
          g_array_append_vals (batch, &g_array_index (entries, guint, s), n);
          g_ptr_array_add (d->batches, batch);
        }
    }
  /* the order of the batches (bucket by bucket above) */
  g_autofree guint *order = g_new (guint, d->batches->len);
  for (guint i = 0; i < d->batches->len; i++)
    order[i] = i;
  shuffle (order, d->batches->len, c->seed, stream, &k);
  g_autoptr (GPtrArray) sorted = g_ptr_array_new_with_free_func ((GDestroyNotify)g_array_unref);
  for (guint i = 0; i < d->batches->len; i++)
    g_ptr_array_add (sorted, g_array_ref (d->batches->pdata[order[i]]));
  g_ptr_array_unref (d->batches);
  d->batches = g_steal_pointer (&sorted);
  d->epoch = epoch;
}

void
dl_draws_make (DlDraws *d, guint64 micro, DlStepDraws *out)
{
  const DlDrawsConfig *c = &d->config;
  memset (out, 0, sizeof *out);
  gint64 epoch = (gint64)(micro / d->n_batches);
  if (epoch != d->epoch)
    make_epoch (d, epoch);
  GArray *batch = d->batches->pdata[micro % d->n_batches];
  int n = (int)batch->len;
  guint bucket = bucket_of (d, g_array_index (batch, guint, 0));
  out->n = n;
  out->n_rows = c->n_class_images ? 2 * n : n;
  out->latent_h = d->bucket_hw[2 * bucket];
  out->latent_w = d->bucket_hw[2 * bucket + 1];
  out->images = g_new (gint64, n);
  for (int i = 0; i < n; i++)
    out->images[i] = g_array_index (batch, guint, i);
  guint64 base = micro << 4;
  int rows = out->n_rows;
  if (c->n_class_images)
    {
      /* the k-th class sample of the run is entry k % N of pass k / N's permutation */
      out->class_images = g_new (gint64, n);
      for (int i = 0; i < n; i++)
        {
          guint64 k = micro * c->batch + (guint64)i;
          guint64 pass = k / c->n_class_images, at = k % c->n_class_images;
          g_autofree guint *perm = g_new (guint, c->n_class_images);
          for (guint j = 0; j < c->n_class_images; j++)
            perm[j] = j;
          guint64 w = 0;
          shuffle (perm, c->n_class_images, c->seed, CLASS_STREAM + pass, &w);
          out->class_images[i] = perm[at];
        }
    }
  gsize per = (gsize)c->latent_channels * out->latent_h * out->latent_w;
  out->latent_eps = g_new (float, per *rows);
  dl_philox_fill_normal (out->latent_eps, per * rows, DL_RANDOM_PHILOX, c->seed, base | KIND_LATENT_EPS, 0, 0.0f, 1.0f);
  out->noise = g_new (float, per *rows);
  dl_philox_fill_normal (out->noise, per * rows, DL_RANDOM_PHILOX, c->seed, base | KIND_NOISE, 0, 0.0f, 1.0f);
  if (c->noise_offset > 0)
    {
      out->offset_eps = g_new (float, (gsize)rows * c->latent_channels);
      dl_philox_fill_normal (out->offset_eps, (gsize)rows * c->latent_channels, DL_RANDOM_PHILOX, c->seed,
                             base | KIND_OFFSET_EPS, 0, 0.0f, 1.0f);
    }
  out->timesteps = g_new (gint64, rows);
  for (int i = 0; i < rows; i++)
    out->timesteps[i] = uniform_below (c->seed, base | KIND_TIMESTEPS, i, (guint)c->n_timesteps);
  if (c->n_templates)
    {
      out->templates = g_new (gint64, n);
      for (int i = 0; i < n; i++)
        out->templates[i] = uniform_below (c->seed, base | KIND_TEMPLATES, i, c->n_templates);
    }
  out->flips = g_new0 (gboolean, n);
  for (int i = 0; c->flip && i < n; i++)
    out->flips[i] = dl_philox_word (c->seed, base | KIND_FLIPS, i) >> 31;
  out->caption_random = g_new (guint32, (gsize)n * DL_DRAWS_CAPTION_WORDS);
  for (gsize i = 0; i < (gsize)n * DL_DRAWS_CAPTION_WORDS; i++)
    out->caption_random[i] = dl_philox_word (c->seed, base | KIND_CAPTIONS, i);
}

/* ---- replay files ---- */

struct _DlReplay
{
  DlSafetensors *st;
  char *path;
  int batch;
  gboolean prior;
  gboolean templates;
  gboolean offset;
};

static gboolean replay_error (DlReplay *r, GError **error, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static gboolean
replay_error (DlReplay *r, GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "replay “%s”: %s", r->path, msg);
  return FALSE;
}

static const DlStTensor *
step_tensor (DlReplay *r, gint64 step, const char *what)
{
  g_autofree char *name = g_strdup_printf ("step%" G_GINT64_FORMAT ".%s", step, what);
  return dl_safetensors_find (r->st, name);
}

/* `what` of every step: present (or absent when !want), `ndim` dims with
 * shape[i] = want_shape[i] where want_shape[i] >= 0 */
static gboolean
check_step_tensor (DlReplay *r, gint64 step, const char *what, gboolean want, int ndim, const int64_t *want_shape,
                   GError **error)
{
  const DlStTensor *t = step_tensor (r, step, what);
  if (!want)
    {
      if (t)
        return replay_error (r, error, "step%" G_GINT64_FORMAT ".%s is there, but this run does not draw it", step,
                             what);
      return TRUE;
    }
  if (!t)
    return replay_error (r, error, "no tensor step%" G_GINT64_FORMAT ".%s", step, what);
  gboolean ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    ok = want_shape[i] < 0 || t->shape[i] == want_shape[i];
  if (!ok)
    {
      g_autofree char *got = dl_shape_to_string (t->ndim, t->shape);
      g_autofree char *exp = dl_shape_to_string (ndim, want_shape);
      return replay_error (r, error, "step%" G_GINT64_FORMAT ".%s is %s, this run needs %s (-1: any)", step, what, got,
                           exp);
    }
  return TRUE;
}

DlReplay *
dl_replay_open (const char *path, const DlTrainSettings *settings, int latent_channels, int latent_size, GError **error)
{
  g_return_val_if_fail (path != NULL && settings != NULL, NULL);
  g_autoptr (DlReplay) r = g_new0 (DlReplay, 1);
  r->path = g_strdup (path);
  if (!(r->st = dl_safetensors_open (path, error)))
    return NULL;
  const char *method = dl_safetensors_get_metadata (r->st, "method");
  if (g_strcmp0 (method, dl_train_method_name (settings->method)) != 0)
    {
      replay_error (r, error, "a run of method “%s”, not %s", method ? method : "(none)",
                    dl_train_method_name (settings->method));
      return NULL;
    }
  const char *steps = dl_safetensors_get_metadata (r->st, "steps");
  if (!steps || g_ascii_strtoll (steps, NULL, 10) != settings->steps)
    {
      replay_error (r, error, "it has %s steps, the run %" G_GINT64_FORMAT, steps ? steps : "no count of",
                    settings->steps);
      return NULL;
    }
  r->batch = settings->batch;
  r->prior = step_tensor (r, 0, "class_images") != NULL;
  r->templates = step_tensor (r, 0, "templates") != NULL;
  r->offset = settings->noise_offset > 0;
  if (settings->grad_accum != 1)
    {
      replay_error (r, error, "replays are of runs without gradient accumulation (--grad-accum %d)",
                    settings->grad_accum);
      return NULL;
    }
  int64_t lat = latent_size;
  int64_t rows = r->prior ? 2 * r->batch : r->batch;
  for (gint64 s = 0; s < settings->steps; s++)
    {
      int64_t b1 = r->batch, rows1 = rows;
      int64_t lshape[4] = { rows, latent_channels, lat, lat };
      int64_t oshape[4] = { rows, latent_channels, 1, 1 };
      if (!check_step_tensor (r, s, "images", TRUE, 1, &b1, error) ||
          !check_step_tensor (r, s, "class_images", r->prior, 1, &b1, error) ||
          !check_step_tensor (r, s, "templates", r->templates, 1, &b1, error) ||
          !check_step_tensor (r, s, "latent_eps", TRUE, 4, lshape, error) ||
          !check_step_tensor (r, s, "noise", TRUE, 4, lshape, error) ||
          !check_step_tensor (r, s, "noise_offset_eps", r->offset, 4, oshape, error) ||
          !check_step_tensor (r, s, "timesteps", TRUE, 1, &rows1, error))
        return NULL;
    }
  return g_steal_pointer (&r);
}

void
dl_replay_free (DlReplay *r)
{
  if (!r)
    return;
  dl_safetensors_free (r->st);
  g_free (r->path);
  g_free (r);
}

DlSafetensors *
dl_replay_get_file (DlReplay *r)
{
  return r->st;
}

static float *
read_step (DlReplay *r, gint64 step, const char *what, GError **error)
{
  g_autofree char *name = g_strdup_printf ("step%" G_GINT64_FORMAT ".%s", step, what);
  int64_t n;
  return dl_safetensors_read_f32 (r->st, name, &n, error);
}

static gint64 *
read_step_int (DlReplay *r, gint64 step, const char *what, GError **error)
{
  const DlStTensor *t = step_tensor (r, step, what);
  g_autofree float *f = read_step (r, step, what, error);
  if (!f)
    return NULL;
  gint64 *v = g_new (gint64, t->numel);
  for (int64_t i = 0; i < t->numel; i++)
    v[i] = (gint64)f[i];
  return v;
}

gboolean
dl_replay_make (DlReplay *r, gint64 step, DlStepDraws *out, GError **error)
{
  memset (out, 0, sizeof *out);
  const DlStTensor *le = step_tensor (r, step, "latent_eps");
  if (!le)
    {
      replay_error (r, error, "no draws for step %" G_GINT64_FORMAT, step);
      return FALSE;
    }
  out->n = r->batch;
  out->n_rows = (int)le->shape[0];
  out->latent_h = (int)le->shape[2];
  out->latent_w = (int)le->shape[3];
  out->flips = g_new0 (gboolean, out->n);
  out->caption_random = g_new0 (guint32, (gsize)out->n * DL_DRAWS_CAPTION_WORDS);
  gboolean ok = (out->images = read_step_int (r, step, "images", error)) &&
                (!r->prior || (out->class_images = read_step_int (r, step, "class_images", error))) &&
                (!r->templates || (out->templates = read_step_int (r, step, "templates", error))) &&
                (out->latent_eps = read_step (r, step, "latent_eps", error)) &&
                (out->noise = read_step (r, step, "noise", error)) &&
                (!r->offset || (out->offset_eps = read_step (r, step, "noise_offset_eps", error))) &&
                (out->timesteps = read_step_int (r, step, "timesteps", error));
  if (!ok)
    dl_step_draws_clear (out);
  return ok;
}

char **
dl_replay_read_args (const char *path, GError **error)
{
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, error);
  if (!st)
    return NULL;
  const char *args = dl_safetensors_get_metadata (st, "args");
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!args || !json_parser_load_from_data (parser, args, -1, NULL) ||
      !JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "replay “%s”: no “args” list in its metadata", path);
      return NULL;
    }
  g_autofree char *dir = g_path_get_dirname (path);
  JsonArray *a = json_node_get_array (json_parser_get_root (parser));
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  for (guint i = 0; i < json_array_get_length (a); i++)
    {
      const char *arg = json_array_get_string_element (a, i);
      if (!arg)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "replay “%s”: “args” holds something not a string",
                       path);
          return NULL;
        }
      GString *s = g_string_new (arg);
      g_string_replace (s, "{dir}", dir, 0);
      g_strv_builder_add (b, s->str);
      g_string_free (s, TRUE);
    }
  return g_strv_builder_end (b);
}
