/* dl-checkpoint-writer.c: see dl-checkpoint-writer.h.  Names go through
 * dl-keymap (internal -> LDM/SGM), layouts follow diffusers'
 * scripts/convert_diffusers_to_original_stable_diffusion.py (LDM VAE attention
 * projections as [C, C, 1, 1] convs), scripts/convert_diffusers_to_original_sdxl.py
 * (OpenCLIP's q/k/v stacked by rows, text_projection transposed) and
 * save_pretrained (component files with __metadata__ {"format": "pt"}, which
 * transformers requires). */
#include "dl-config.h"

#include "io/dl-checkpoint-writer.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dl-error.h"
#include "dl-half.h"
#include "io/dl-file-util.h"
#include "io/dl-keymap.h"

#define ALL_COMPONENTS ((1u << DL_N_COMPONENTS) - 1)

/* the weights file of each component in a diffusers folder (diffusers
 * utils/constants.py SAFETENSORS_WEIGHTS_NAME; transformers SAFE_WEIGHTS_NAME) */
static const char *const component_files[DL_N_COMPONENTS] = {
  [DL_COMPONENT_UNET] = "unet/diffusion_pytorch_model.safetensors",
  [DL_COMPONENT_VAE] = "vae/diffusion_pytorch_model.safetensors",
  [DL_COMPONENT_TEXT_ENCODER] = "text_encoder/model.safetensors",
  [DL_COMPONENT_TEXT_ENCODER_2] = "text_encoder_2/model.safetensors",
};

void
dl_checkpoint_write_options_init (DlCheckpointWriteOptions *o)
{
  g_return_if_fail (o != NULL);
  memset (o, 0, sizeof *o);
  o->layout = DL_CHECKPOINT_WRITE_SINGLE_FILE;
  o->dtype = DL_ST_F16;
  o->source_components =
    DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_UNET) | DL_CHECKPOINT_WRITE_COMPONENT (DL_COMPONENT_TEXT_ENCODER);
}

/* ---- the plan ---- */

static void
entry_free (DlCheckpointWriteEntry *e)
{
  g_free (e->name);
  g_free (e->file);
  g_free (e->key);
  for (int i = 0; i < 3; i++)
    g_free (e->stacked[i]);
  g_free (e);
}

static gboolean
check_options (const DlCheckpointWriteOptions *o, GError **error)
{
  g_return_val_if_fail (o->layout == DL_CHECKPOINT_WRITE_SINGLE_FILE || o->layout == DL_CHECKPOINT_WRITE_DIFFUSERS,
                        FALSE);
  g_return_val_if_fail ((o->source_components & ~ALL_COMPONENTS) == 0, FALSE);
  if (o->dtype != DL_ST_F16 && o->dtype != DL_ST_F32 && o->dtype != DL_ST_BF16)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "Cannot store model weights as %s: choose F16, F32 "
                   "or BF16",
                   o->dtype < DL_ST_N_DTYPES ? dl_st_dtype_name (o->dtype) : "an unknown dtype");
      return FALSE;
    }
  return TRUE;
}

GPtrArray *
dl_checkpoint_write_plan (DlCheckpoint *base, const DlCheckpointWriteOptions *options, GError **error)
{
  g_return_val_if_fail (base != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  DlCheckpointWriteOptions defaults;
  if (!options)
    {
      dl_checkpoint_write_options_init (&defaults);
      options = &defaults;
    }
  if (!check_options (options, error))
    return NULL;
  const DlModelConfig *config = dl_checkpoint_get_config (base);
  g_autoptr (GPtrArray) specs = dl_model_param_specs (config);
  DlLdmLayout layout;
  dl_ldm_layout_from_config (config, &layout);
  gboolean single = options->layout == DL_CHECKPOINT_WRITE_SINGLE_FILE;

  g_autoptr (GPtrArray) plan = g_ptr_array_new_with_free_func ((GDestroyNotify)entry_free);
  /* SGM key -> its entry, for OpenCLIP's q/k/v that share one */
  g_autoptr (GHashTable) stacks = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < specs->len; i++)
    {
      const DlParamSpec *spec = specs->pdata[i];
      const DlStTensor *stored = dl_checkpoint_get_stored (base, spec->name);
      if (!stored)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "“%s” has no parameter “%s”",
                       dl_checkpoint_get_path (base), spec->name);
          return NULL;
        }
      gboolean from_source = (options->source_components & DL_CHECKPOINT_WRITE_COMPONENT (spec->component)) != 0;
      DlLdmPart part = DL_LDM_PART_WHOLE;
      g_autofree char *key = NULL;
      if (single)
        {
          key = dl_keymap_internal_to_ldm_part (spec->name, &layout, &part);
          if (!key)
            {
              g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "Parameter “%s” has no name in the %s layout",
                           spec->name, layout.sgm ? "SGM" : "LDM");
              return NULL;
            }
        }
      gboolean stacked = part == DL_LDM_PART_Q || part == DL_LDM_PART_K || part == DL_LDM_PART_V;
      DlCheckpointWriteEntry *e = stacked ? g_hash_table_lookup (stacks, key) : NULL;
      if (e)
        {
          /* the k or v of a stack begun by q: its rows follow */
          int k = (int)(part - DL_LDM_PART_Q);
          if (e->stacked[k] || e->ndim != spec->ndim || e->shape[0] % 3 != 0 || e->shape[0] / 3 != spec->shape[0] ||
              (e->ndim == 2 && e->shape[1] != spec->shape[1]))
            {
              g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "Parameter “%s” does not stack into “%s”", spec->name,
                           key);
              return NULL;
            }
          e->stacked[k] = g_strdup (spec->name);
          continue;
        }
      e = g_new0 (DlCheckpointWriteEntry, 1);
      g_ptr_array_add (plan, e);
      e->name = g_strdup (spec->name);
      e->from_source = from_source;
      e->dtype = e->from_source || options->convert_base ? options->dtype : stored->dtype;
      e->ndim = spec->ndim;
      memcpy (e->shape, spec->shape, sizeof e->shape);
      e->numel = dl_param_spec_numel (spec);
      if (single)
        {
          e->key = g_steal_pointer (&key);
          /* LDM files keep the VAE attention projections as 1x1 convs */
          if (spec->conv1x1_in_ldm)
            {
              g_return_val_if_fail (e->ndim == 2, NULL);
              e->shape[e->ndim++] = 1;
              e->shape[e->ndim++] = 1;
            }
          if (stacked)
            {
              /* q, k and v stacked by rows, whichever comes first */
              e->stacked[part - DL_LDM_PART_Q] = g_strdup (spec->name);
              e->shape[0] *= 3;
              e->numel *= 3;
              g_hash_table_insert (stacks, e->key, e);
            }
          else if (part == DL_LDM_PART_TRANSPOSED)
            {
              g_return_val_if_fail (e->ndim == 2, NULL);
              e->transposed = TRUE;
              e->shape[0] = spec->shape[1];
              e->shape[1] = spec->shape[0];
            }
        }
      else
        {
          e->file = g_strdup (component_files[spec->component]);
          e->key = g_strdup (spec->name + strlen (dl_component_name (spec->component)) + 1);
        }
    }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, stacks);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      DlCheckpointWriteEntry *e = v;
      if (!e->stacked[0] || !e->stacked[1] || !e->stacked[2])
        {
          g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "“%s” lacks its %s projection", e->key,
                       !e->stacked[0]   ? "query"
                       : !e->stacked[1] ? "key"
                                        : "value");
          return NULL;
        }
      /* named after its first rows */
      g_free (e->name);
      e->name = g_strdup (e->stacked[0]);
    }
  return g_steal_pointer (&plan);
}

/* ---- tensor data, one at a time ---- */

typedef struct
{
  DlCheckpoint *base;
  DlCheckpointSourceFunc source;
  gpointer user_data;
  float *scratch; /* the f32 values of a tensor stored narrower */
  int64_t scratch_numel;
} WriteCtx;

typedef struct
{
  WriteCtx *ctx;
  const DlCheckpointWriteEntry *e;
} Fill;

static float *
scratch_floats (WriteCtx *ctx, const char *name, int64_t numel, GError **error)
{
  if (ctx->scratch_numel < numel)
    {
      g_clear_pointer (&ctx->scratch, g_free);
      ctx->scratch_numel = 0;
      ctx->scratch = g_try_new (float, MAX (numel, 1));
      if (!ctx->scratch)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY,
                       "Out of memory for parameter “%s” (%" G_GINT64_FORMAT " values)", name, numel);
          return NULL;
        }
      ctx->scratch_numel = numel;
    }
  return ctx->scratch;
}

/* `v` (numel floats of parameter `name`) into `out` as `dtype`; for F32 `v`
 * is `out`. */
static gboolean
store (const float *v, gpointer out, const char *name, int64_t numel, DlStDType dtype, GError **error)
{
  if (dtype == DL_ST_F32)
    return TRUE;
  DlDType dt;
  if (!dl_st_dtype_to_dl (dtype, &dt) || (dt != DL_DTYPE_F16 && dt != DL_DTYPE_BF16))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "Parameter “%s”: cannot convert to %s", name,
                   dl_st_dtype_name (dtype));
      return FALSE;
    }
  dl_convert (out, dt, v, DL_DTYPE_F32, (gsize)numel);
  if (dt == DL_DTYPE_F16)
    {
      /* a finite value that became infinite would silently break the model */
      const guint16 *h = out;
      for (int64_t i = 0; i < numel; i++)
        if ((h[i] & 0x7fff) == 0x7c00 && isfinite (v[i]))
          {
            g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                         "Parameter “%s” holds %g, beyond the F16 range "
                         "(±65504): write it as F32",
                         name, (double)v[i]);
            return FALSE;
          }
    }
  return TRUE;
}

/* The `numel` values of parameter `name`, in its internal orientation, into
 * `out` as e->dtype. */
static gboolean
fill_param (WriteCtx *ctx, const DlCheckpointWriteEntry *e, const char *name, int64_t numel, gpointer out,
            GError **error)
{
  float *v = e->dtype == DL_ST_F32 ? out : NULL;
  if (!e->from_source)
    {
      const DlStTensor *t = dl_checkpoint_get_stored (ctx->base, name);
      g_return_val_if_fail (t != NULL && t->numel == numel, FALSE);
      if (t->dtype == e->dtype)
        {
          g_return_val_if_fail (t->nbytes == (gsize)numel * dl_st_dtype_size (e->dtype), FALSE);
          memcpy (out, t->data, t->nbytes);
          return TRUE;
        }
      if (!v && !(v = scratch_floats (ctx, name, numel, error)))
        return FALSE;
      if (!dl_st_convert_to_f32 (t, v, dl_checkpoint_find (ctx->base, name)->file_path, error))
        return FALSE;
      return store (v, out, name, numel, e->dtype, error);
    }
  if (!v && !(v = scratch_floats (ctx, name, numel, error)))
    return FALSE;
  g_autoptr (GError) local = NULL;
  if (!ctx->source (name, v, numel, ctx->user_data, &local))
    {
      if (local)
        g_propagate_error (error, g_steal_pointer (&local));
      else
        g_set_error (error, DL_ERROR, DL_ERROR_FAILED, "No values for parameter “%s”", name);
      return FALSE;
    }
  return store (v, out, name, numel, e->dtype, error);
}

static gboolean
fill_tensor (gpointer out, gsize nbytes, gpointer user_data, GError **error)
{
  Fill *f = user_data;
  WriteCtx *ctx = f->ctx;
  const DlCheckpointWriteEntry *e = f->e;
  gsize size = dl_st_dtype_size (e->dtype);
  g_return_val_if_fail (nbytes == (gsize)e->numel * size, FALSE);
  if (e->stacked[0])
    {
      /* q, k and v, one after the other */
      int64_t per = e->numel / 3;
      for (int i = 0; i < 3; i++)
        if (!fill_param (ctx, e, e->stacked[i], per, (guint8 *)out + (gsize)i * per * size, error))
          return FALSE;
      return TRUE;
    }
  if (!e->transposed)
    return fill_param (ctx, e, e->name, e->numel, out, error);
  /* the parameter is [rows = shape[1], cols = shape[0]]; the file holds its transpose */
  g_autofree guint8 *tmp = g_try_malloc (MAX (nbytes, 1));
  if (!tmp)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of memory for parameter “%s”", e->name);
      return FALSE;
    }
  if (!fill_param (ctx, e, e->name, e->numel, tmp, error))
    return FALSE;
  int64_t rows = e->shape[1], cols = e->shape[0];
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++)
      memcpy ((guint8 *)out + ((gsize)c * rows + r) * size, tmp + ((gsize)r * cols + c) * size, size);
  return TRUE;
}

/* Add the plan's entries of `file` (NULL: all) to w, read when w writes. */
static gboolean
add_entries (DlSafetensorsWriter *w, WriteCtx *ctx, GPtrArray *plan, const char *file, GError **error)
{
  for (guint i = 0; i < plan->len; i++)
    {
      const DlCheckpointWriteEntry *e = plan->pdata[i];
      if (file && g_strcmp0 (e->file, file) != 0)
        continue;
      Fill *f = g_new (Fill, 1);
      f->ctx = ctx;
      f->e = e;
      if (!dl_safetensors_writer_add_deferred (w, e->key, e->dtype, e->ndim, e->shape, fill_tensor, f, g_free, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- single file ---- */

/* kohya sd-scripts library/sai_model_spec.py for a whole SD 1.x or SDXL base
 * checkpoint */
static void
put_modelspec (DlSafetensorsWriter *w, const DlModelConfig *c, const char *path)
{
  dl_safetensors_writer_set_metadata (w, "modelspec.sai_model_spec", "1.0.1");
  dl_safetensors_writer_set_metadata (
    w, "modelspec.architecture", dl_model_config_is_sdxl (c) ? "stable-diffusion-xl-v1-base" : "stable-diffusion-v1");
  dl_safetensors_writer_set_metadata (w, "modelspec.implementation",
                                      "https://github.com/Stability-AI/generative-models");
  g_autofree char *title = g_path_get_basename (path);
  if (g_str_has_suffix (title, ".safetensors"))
    title[strlen (title) - strlen (".safetensors")] = '\0';
  if (g_utf8_validate (title, -1, NULL))
    dl_safetensors_writer_set_metadata (w, "modelspec.title", title);
  /* the image size the model was made for: latent size x the VAE's factor */
  if (c->vae.n_levels >= 1 && c->vae.n_levels < 16)
    {
      int px = c->unet.sample_size << (c->vae.n_levels - 1);
      g_autofree char *res = g_strdup_printf ("%dx%d", px, px);
      dl_safetensors_writer_set_metadata (w, "modelspec.resolution", res);
    }
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *date = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S");
  dl_safetensors_writer_set_metadata (w, "modelspec.date", date);
  if (c->scheduler.prediction_type != DL_PREDICTION_TYPE_SAMPLE)
    dl_safetensors_writer_set_metadata (w, "modelspec.prediction_type",
                                        c->scheduler.prediction_type == DL_PREDICTION_TYPE_V ? "v" : "epsilon");
}

static gboolean
write_single (WriteCtx *ctx, GPtrArray *plan, const DlCheckpointWriteOptions *o, const char *path, GError **error)
{
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  put_modelspec (w, dl_checkpoint_get_config (ctx->base), path);
  if (o->metadata)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, o->metadata);
      while (g_hash_table_iter_next (&it, &k, &v))
        dl_safetensors_writer_set_metadata (w, k, v);
    }
  return add_entries (w, ctx, plan, NULL, error) && dl_safetensors_writer_write (w, path, error);
}

/* ---- diffusers folder ---- */

static void
set_errno_error (GError **error, int err, const char *what, const char *path)
{
  g_set_error (error, DL_ERROR, DL_ERROR_IO, "%s “%s”: %s", what, path, g_strerror (err));
}

/* An existing `path` may be replaced when it is a diffusers model folder or
 * an empty folder; never a file, a link or a folder of something else. */
static gboolean
check_destination (const char *path, GError **error)
{
  GStatBuf st;
  if (g_lstat (path, &st) != 0)
    {
      if (errno == ENOENT)
        return TRUE;
      set_errno_error (error, errno, "Cannot write the model folder", path);
      return FALSE;
    }
  if (S_ISLNK (st.st_mode) || !S_ISDIR (st.st_mode))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "“%s” exists and is %s; not replacing it with a model folder", path,
                   S_ISLNK (st.st_mode) ? "a symbolic link" : "not a folder");
      return FALSE;
    }
  g_autofree char *index = g_build_filename (path, "model_index.json", NULL);
  if (g_file_test (index, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  if (d && !g_dir_read_name (d))
    return TRUE;
  g_set_error (error, DL_ERROR, DL_ERROR_IO,
               "“%s” exists and is not a diffusers model folder (no "
               "model_index.json); not replacing it",
               path);
  return FALSE;
}

static void
sync_dir (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0)
    {
      fsync (fd);
      close (fd);
    }
}

static gboolean
make_dir (const char *dir, const char *sub, GError **error)
{
  g_autofree char *p = g_build_filename (dir, sub, NULL);
  if (g_mkdir (p, 0777) != 0)
    {
      set_errno_error (error, errno, "Cannot create the folder", p);
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_text (const char *dir, const char *rel, const char *text, gsize len, GError **error)
{
  g_autofree char *p = g_build_filename (dir, rel, NULL);
  g_autoptr (GError) local = NULL;
  if (!g_file_set_contents_full (p, text, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0666, &local))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot write “%s”: %s", p, local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
is_tokenizer_dir (const char *dir)
{
  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  return g_file_test (vocab, G_FILE_TEST_IS_REGULAR) && g_file_test (merges, G_FILE_TEST_IS_REGULAR);
}

/* The regular files of `src` (a tokenizer folder) into <dir>/<sub>. */
static gboolean
copy_tokenizer (const char *src, const char *dir, const char *sub, GError **error)
{
  if (!is_tokenizer_dir (src))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "“%s” is not a tokenizer folder (it needs vocab.json "
                   "and merges.txt)",
                   src);
      return FALSE;
    }
  g_autoptr (GError) local = NULL;
  g_autoptr (GDir) d = g_dir_open (src, 0, &local);
  if (!d)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot read the tokenizer folder “%s”: %s", src, local->message);
      return FALSE;
    }
  if (!make_dir (dir, sub, error))
    return FALSE;
  const char *name;
  while ((name = g_dir_read_name (d)))
    {
      g_autofree char *from = g_build_filename (src, name, NULL);
      if (!g_file_test (from, G_FILE_TEST_IS_REGULAR))
        continue;
      g_autofree char *text = NULL;
      gsize len;
      if (!g_file_get_contents (from, &text, &len, &local))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot copy “%s”: %s", from, local->message);
          return FALSE;
        }
      g_autofree char *rel = g_build_filename (sub, name, NULL);
      if (!write_text (dir, rel, text, len, error))
        return FALSE;
    }
  return TRUE;
}

char *
dl_checkpoint_write_find_tokenizer_2 (DlCheckpoint *base, const DlCheckpointWriteOptions *options)
{
  g_return_val_if_fail (base != NULL, NULL);
  if (!dl_model_config_is_sdxl (dl_checkpoint_get_config (base)) ||
      (options && options->layout != DL_CHECKPOINT_WRITE_DIFFUSERS))
    return NULL;
  if (options && options->tokenizer_2_dir)
    return g_strdup (options->tokenizer_2_dir);
  const char *tok = options && options->tokenizer_dir ? options->tokenizer_dir : dl_checkpoint_get_tokenizer_dir (base);
  if (!tok)
    return NULL;
  g_autofree char *path = g_strdup (tok);
  gsize n = strlen (path);
  while (n > 1 && path[n - 1] == G_DIR_SEPARATOR)
    path[--n] = '\0';
  g_autofree char *name = g_path_get_basename (path);
  if (strcmp (name, "tokenizer") != 0)
    return NULL;
  g_autofree char *parent = g_path_get_dirname (path);
  char *sibling = g_build_filename (parent, "tokenizer_2", NULL);
  if (!is_tokenizer_dir (sibling))
    g_clear_pointer (&sibling, g_free);
  return sibling;
}

/* The stored dtype of a text encoder's layers (its config's torch_dtype). */
static DlStDType
encoder_dtype (GPtrArray *plan, const char *prefix, DlStDType fallback)
{
  for (guint i = 0; i < plan->len; i++)
    {
      const DlCheckpointWriteEntry *e = plan->pdata[i];
      if (g_str_has_prefix (e->name, prefix))
        return e->dtype;
    }
  return fallback;
}

static gboolean
fill_folder (WriteCtx *ctx, GPtrArray *plan, const DlCheckpointWriteOptions *o, const char *dir, GError **error)
{
  const DlModelConfig *config = dl_checkpoint_get_config (ctx->base);
  gboolean sdxl = dl_model_config_is_sdxl (config);
  DlStDType te_dtype = encoder_dtype (plan, "text_encoder.text_model.encoder.", o->dtype);
  DlStDType te2_dtype = encoder_dtype (plan, "text_encoder_2.text_model.encoder.", o->dtype);
  /* the configs first: one a diffusers config cannot express fails at once */
  static const char *const configs[] = { "unet/config.json",
                                         "vae/config.json",
                                         "text_encoder/config.json",
                                         "text_encoder_2/config.json",
                                         "scheduler/scheduler_config.json",
                                         "model_index.json" };
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++)
    {
      gboolean te2 = g_str_has_prefix (configs[i], "text_encoder_2/");
      if (te2 && !sdxl)
        {
          g_ptr_array_add (texts, NULL);
          continue;
        }
      char *text = dl_checkpoint_diffusers_config_json (config, configs[i], te2 ? te2_dtype : te_dtype, error);
      if (!text)
        return FALSE;
      g_ptr_array_add (texts, text);
    }
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    {
      if (c == DL_COMPONENT_TEXT_ENCODER_2 && !dl_model_config_is_sdxl (config))
        continue;
      if (!make_dir (dir, dl_component_name ((DlComponent)c), error))
        return FALSE;
      g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
      dl_safetensors_writer_set_metadata (w, "format", "pt");
      g_autofree char *file = g_build_filename (dir, component_files[c], NULL);
      if (!add_entries (w, ctx, plan, component_files[c], error) || !dl_safetensors_writer_write (w, file, error))
        return FALSE;
    }
  if (!make_dir (dir, "scheduler", error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++)
    if (texts->pdata[i] && !write_text (dir, configs[i], texts->pdata[i], strlen (texts->pdata[i]), error))
      return FALSE;
  const char *tok = o->tokenizer_dir ? o->tokenizer_dir : dl_checkpoint_get_tokenizer_dir (ctx->base);
  if (tok && !copy_tokenizer (tok, dir, "tokenizer", error))
    return FALSE;
  g_autofree char *tok2 = dl_checkpoint_write_find_tokenizer_2 (ctx->base, o);
  if (tok2 && !copy_tokenizer (tok2, dir, "tokenizer_2", error))
    return FALSE;
  const char *subs[] = {
    "unet", "vae", "text_encoder", "text_encoder_2", "scheduler", "tokenizer", "tokenizer_2", "."
  };
  for (guint i = 0; i < G_N_ELEMENTS (subs); i++)
    {
      g_autofree char *p = g_build_filename (dir, subs[i], NULL);
      sync_dir (p);
    }
  return TRUE;
}

/* Put the complete folder `tmp` at `path`, replacing what is there at once
 * where the system can swap two folders, else by two renames. */
static gboolean
replace_folder (const char *tmp, const char *path, const char *parent, const char *base, GError **error)
{
  if (g_rename (tmp, path) == 0)
    return TRUE;
  if (errno != EEXIST && errno != ENOTEMPTY && errno != EISDIR)
    {
      set_errno_error (error, errno, "Cannot move the new model folder to", path);
      return FALSE;
    }
#ifdef RENAME_EXCHANGE
  if (renameat2 (AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0)
    {
      dl_file_remove_tree (tmp); /* now the old model */
      return TRUE;
    }
  if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
    {
      set_errno_error (error, errno, "Cannot replace the model folder", path);
      return FALSE;
    }
#endif
  g_autofree char *old = g_strdup_printf ("%s%s.%s.old-XXXXXX", parent, G_DIR_SEPARATOR_S, base);
  if (!g_mkdtemp_full (old, 0700))
    {
      set_errno_error (error, errno, "Cannot replace the model folder", path);
      return FALSE;
    }
  /* a folder may be renamed over an empty one */
  if (g_rename (path, old) != 0)
    {
      set_errno_error (error, errno, "Cannot replace the model folder", path);
      g_rmdir (old);
      return FALSE;
    }
  if (g_rename (tmp, path) != 0)
    {
      set_errno_error (error, errno, "Cannot replace the model folder", path);
      g_rename (old, path);
      return FALSE;
    }
  dl_file_remove_tree (old);
  return TRUE;
}

static gboolean
write_folder (WriteCtx *ctx, GPtrArray *plan, const DlCheckpointWriteOptions *o, const char *given_path, GError **error)
{
  g_autofree char *path = g_strdup (given_path);
  gsize n = strlen (path);
  while (n > 1 && path[n - 1] == G_DIR_SEPARATOR)
    path[--n] = '\0';
  if (!check_destination (path, error))
    return FALSE;
  g_autofree char *parent = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  /* hidden, so that nothing takes a half-written folder for a model */
  g_autofree char *tmp = g_strdup_printf ("%s%s.%s.partial-XXXXXX", parent, G_DIR_SEPARATOR_S, base);
  if (!g_mkdtemp_full (tmp, 0777))
    {
      set_errno_error (error, errno, "Cannot create a folder next to", path);
      return FALSE;
    }
  if (!fill_folder (ctx, plan, o, tmp, error) || !replace_folder (tmp, path, parent, base, error))
    {
      dl_file_remove_tree (tmp);
      return FALSE;
    }
  sync_dir (parent);
  return TRUE;
}

gboolean
dl_checkpoint_write (DlCheckpoint *base, DlCheckpointSourceFunc source, gpointer user_data,
                     const DlCheckpointWriteOptions *options, const char *path, GError **error)
{
  g_return_val_if_fail (base != NULL && path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  DlCheckpointWriteOptions defaults;
  if (!options)
    {
      dl_checkpoint_write_options_init (&defaults);
      options = &defaults;
    }
  g_return_val_if_fail (source != NULL || options->source_components == 0, FALSE);
  g_autoptr (GPtrArray) plan = dl_checkpoint_write_plan (base, options, error);
  if (!plan)
    return FALSE;
  WriteCtx ctx = { .base = base, .source = source, .user_data = user_data };
  gboolean ok = options->layout == DL_CHECKPOINT_WRITE_SINGLE_FILE ? write_single (&ctx, plan, options, path, error)
                                                                   : write_folder (&ctx, plan, options, path, error);
  g_free (ctx.scratch);
  return ok;
}
