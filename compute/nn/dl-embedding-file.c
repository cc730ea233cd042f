/* dl-embedding-file.c: see dl-embedding-file.h.  The reading rules are those of
 * A1111 modules/textual_inversion/textual_inversion.py (load_from_file) and
 * ComfyUI comfy/sd1_clip.py (load_embed). */
#include "nn/dl-embedding-file.h"

#include <string.h>

#include "dl-error.h"
#include "io/dl-pickle.h"
#include "io/dl-torch-ckpt.h"
#include "io/dl-torch-writer.h"
#include "io/dl-file-util.h"

/* the CLIP id of "*</w>", which A1111 stores as string_to_token["*"] */
#define A1111_STAR_TOKEN 265

/* What a read wants: */
typedef enum
{
  WANT_ANY_ONE, /* one encoder's vectors, from any file (dl_embedding_read) */
  WANT_ONE,     /* one encoder's, from a file that is not an SDXL pair */
  WANT_PAIR,    /* SDXL's clip_l and clip_g */
} Want;

/* What the reader was asked for, and what it found. */
typedef struct
{
  Want want;
  int dim, dim_2; /* the model's widths (0: any) */
  /* an SDXL pair found where one encoder's vectors are wanted: its widths */
  int pair_dim, pair_dim_2;
} ReadSpec;

void
dl_embedding_free (DlEmbedding *e)
{
  if (!e)
    return;
  g_free (e->name);
  g_free (e->key);
  g_free (e->vectors);
  g_free (e->stored_name);
  g_free (e->sd_checkpoint);
  g_free (e->sd_checkpoint_name);
  g_free (e->vectors_2);
  g_free (e);
}

static gboolean G_GNUC_PRINTF (3, 4) bad (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Embedding “%s”: %s", path, msg);
  return FALSE;
}

/* ComfyUI's embed_key of the text encoder of that width */
static const char *
encoder_key (int dim)
{
  return dim == 1024 ? "clip_h" : dim == 1280 ? "clip_g" : "clip_l";
}

static char *
shape_text (const DlStTensor *t)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < t->ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", (gint64)t->shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* The vectors of `t` (found under `key`) as floats [*n, *dim]. */
static float *
tensor_vectors (const DlStTensor *t, const char *key, const char *path, int expected_dim, int *n_out, int *dim_out,
                GError **error)
{
  g_autofree char *shape = shape_text (t);
  if (t->ndim != 1 && t->ndim != 2)
    {
      bad (error, path, "the tensor “%s” has shape %s; an embedding is [vectors, width] or [width]", key, shape);
      return NULL;
    }
  gint64 n = t->ndim == 1 ? 1 : t->shape[0];
  gint64 dim = t->shape[t->ndim - 1];
  if (n == 0 || dim == 0)
    {
      bad (error, path, "the tensor “%s” (shape %s) holds no vectors", key, shape);
      return NULL;
    }
  if (n > 1 << 20 || dim > 1 << 20)
    {
      bad (error, path, "the tensor “%s” has an implausible shape %s for an embedding", key, shape);
      return NULL;
    }
  if (expected_dim > 0 && dim != expected_dim)
    {
      bad (error, path,
           "its vectors are %" G_GINT64_FORMAT " wide but the model's text encoder takes %d "
           "(an embedding made for another model)",
           dim, expected_dim);
      return NULL;
    }
  g_autofree float *v = g_new (float, n *dim);
  if (!dl_st_convert_to_f32 (t, v, path, error))
    return NULL;
  *n_out = (int)n;
  *dim_out = (int)dim;
  return g_steal_pointer (&v);
}

/* The vectors of `t` (found under `key`) into e. */
static gboolean
take_vectors (DlEmbedding *e, const DlStTensor *t, const char *key, const char *path, int expected_dim, GError **error)
{
  float *v = tensor_vectors (t, key, path, expected_dim, &e->n_vectors, &e->dim, error);
  if (!v)
    return FALSE;
  e->vectors = v;
  e->key = g_strdup (key);
  return TRUE;
}

/* The width of an embedding tensor (its last dimension), 0 for a scalar. */
static int
tensor_width (const DlStTensor *t)
{
  return t->ndim > 0 ? (int)t->shape[t->ndim - 1] : 0;
}

/* An SDXL pair (clip_l `l`, clip_g `g`): both into e where the spec wants the
 * pair (PAIR_TAKEN, or PAIR_ERROR); otherwise only noted in the spec (its
 * widths, for the caller's message): PAIR_SKIPPED. */
typedef enum
{
  PAIR_ERROR,
  PAIR_TAKEN,
  PAIR_SKIPPED,
} PairResult;

static PairResult
take_pair (DlEmbedding *e, const DlStTensor *l, const DlStTensor *g, const char *path, ReadSpec *spec, GError **error)
{
  int wl = tensor_width (l), wg = tensor_width (g);
  if (spec->want != WANT_PAIR)
    {
      spec->pair_dim = wl;
      spec->pair_dim_2 = wg;
      return PAIR_SKIPPED;
    }
  if ((spec->dim > 0 && wl != spec->dim) || (spec->dim_2 > 0 && wg != spec->dim_2))
    {
      bad (error, path,
           "its vectors are %d (clip_l) and %d (clip_g) wide but the model's text encoders take %d and %d (an "
           "embedding made for another model)",
           wl, wg, spec->dim, spec->dim_2);
      return PAIR_ERROR;
    }
  int n_g = 0, d_g = 0;
  g_autofree float *vg = tensor_vectors (g, "clip_g", path, 0, &n_g, &d_g, error);
  if (!vg || !take_vectors (e, l, "clip_l", path, 0, error))
    return PAIR_ERROR;
  if (n_g != e->n_vectors)
    {
      bad (error, path, "it holds %d clip_l vectors but %d clip_g vectors (one of each per token)", e->n_vectors, n_g);
      return PAIR_ERROR;
    }
  e->dim_2 = d_g;
  e->vectors_2 = g_steal_pointer (&vg);
  return PAIR_TAKEN;
}

/* "a dict", "an int" */
static char *
a_type (DlPickleType type)
{
  const char *name = dl_pickle_type_name (type);
  return g_strdup_printf ("%s %s", strchr ("aeiou", name[0]) ? "an" : "a", name);
}

static char *
optional_str (const DlPickleValue *v)
{
  return v && v->type == DL_PK_STRING ? g_strdup (v->str.data) : NULL;
}

static gboolean
read_torch (DlEmbedding *e, GBytes *bytes, const char *path, ReadSpec *spec, GError **error)
{
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (bytes, path, error);
  if (!ck)
    return FALSE;
  const DlPickleValue *root = dl_torch_ckpt_get_root (ck); /* a dict: the reader checks */
  int expected_dim = spec->want == WANT_PAIR ? 0 : spec->dim;
  /* SDXL: clip_l and clip_g (kohya saves .pt files with torch.save) */
  const DlPickleValue *pl = dl_pickle_dict_get (root, "clip_l"), *pg = dl_pickle_dict_get (root, "clip_g");
  if (pl && pg && pl->type == DL_PK_TENSOR && pg->type == DL_PK_TENSOR)
    {
      DlStTensor tl, tg;
      if (!dl_torch_ckpt_resolve_tensor (ck, pl, "clip_l", &tl, error) ||
          !dl_torch_ckpt_resolve_tensor (ck, pg, "clip_g", &tg, error))
        return FALSE;
      PairResult r = take_pair (e, &tl, &tg, path, spec, error);
      if (r != PAIR_SKIPPED || spec->want == WANT_ONE)
        return r == PAIR_TAKEN;
    }
  const DlPickleValue *tensor = NULL;
  const char *key = NULL;
  const DlPickleValue *params = dl_pickle_dict_get (root, "string_to_param");
  const char *ek = encoder_key (expected_dim);
  if (params)
    {
      /* A1111: getattr(param_dict, '_parameters', param_dict) */
      if (params->type == DL_PK_OPAQUE)
        {
          const DlPickleValue *inner = dl_pickle_get_attr (params, "_parameters");
          if (!inner)
            return bad (error, path, "string_to_param is a %s.%s without _parameters", params->global.module,
                        params->global.name);
          params = inner;
        }
      if (params->type != DL_PK_DICT)
        {
          g_autofree char *what = a_type (params->type);
          return bad (error, path, "string_to_param is %s, not a dict", what);
        }
      guint n = params->items->len / 2;
      if (n != 1)
        return bad (error, path, "string_to_param holds %u embeddings (one expected)", n);
      const DlPickleValue *k = params->items->pdata[0];
      key = k->type == DL_PK_STRING ? k->str.data : "string_to_param";
      tensor = params->items->pdata[1];
    }
  else if ((tensor = dl_pickle_dict_get (root, ek)))
    key = ek;
  else
    {
      if (root->items->len == 0)
        return bad (error, path, "the file holds an empty dict, not an embedding");
      const DlPickleValue *k = root->items->pdata[0];
      key = k->type == DL_PK_STRING ? k->str.data : "(first entry)";
      tensor = root->items->pdata[1];
      if (tensor->type != DL_PK_TENSOR)
        {
          g_autofree char *what = a_type (tensor->type);
          return bad (error, path,
                      "not a Textual Inversion embedding: no string_to_param, and the first entry "
                      "“%s” is %s, not a tensor",
                      key, what);
        }
    }
  if (tensor->type != DL_PK_TENSOR)
    {
      g_autofree char *what = a_type (tensor->type);
      return bad (error, path, "the embedding “%s” is %s, not a tensor", key, what);
    }
  DlStTensor t;
  if (!dl_torch_ckpt_resolve_tensor (ck, tensor, key, &t, error) ||
      !take_vectors (e, &t, key, path, expected_dim, error))
    return FALSE;

  const DlPickleValue *step = dl_pickle_dict_get (root, "step");
  if (step && step->type == DL_PK_INT && step->i >= 0)
    e->step = step->i;
  e->stored_name = optional_str (dl_pickle_dict_get (root, "name"));
  e->sd_checkpoint = optional_str (dl_pickle_dict_get (root, "sd_checkpoint"));
  e->sd_checkpoint_name = optional_str (dl_pickle_dict_get (root, "sd_checkpoint_name"));
  return TRUE;
}

static gboolean
read_safetensors (DlEmbedding *e, GBytes *bytes, const char *path, ReadSpec *spec, GError **error)
{
  g_autoptr (DlSafetensors) st = dl_safetensors_open_bytes (bytes, path, error);
  if (!st)
    return FALSE;
  int expected_dim = spec->want == WANT_PAIR ? 0 : spec->dim;
  const DlStTensor *tl = dl_safetensors_find (st, "clip_l"), *tg = dl_safetensors_find (st, "clip_g");
  if (tl && tg)
    {
      PairResult r = take_pair (e, tl, tg, path, spec, error);
      if (r != PAIR_SKIPPED || spec->want == WANT_ONE)
        return r == PAIR_TAKEN;
    }
  guint n = dl_safetensors_get_n_tensors (st);
  const char *ek = encoder_key (expected_dim);
  const DlStTensor *t = dl_safetensors_find (st, ek);
  if (!t && n == 1)
    t = dl_safetensors_get_tensor (st, 0);
  if (!t)
    {
      if (n == 0)
        return bad (error, path, "the file holds no tensors");
      return bad (error, path,
                  "the file holds %u tensors (“%s”, “%s”%s) where an embedding has one (or one named "
                  "“%s”)",
                  n, dl_safetensors_get_tensor (st, 0)->name, dl_safetensors_get_tensor (st, 1)->name,
                  n > 2 ? ", ..." : "", ek);
    }
  return take_vectors (e, t, t->name, path, expected_dim, error);
}

static gboolean
has_suffix (const char *path, const char *suffix)
{
  gsize n = strlen (path), k = strlen (suffix);
  return n >= k && g_ascii_strcasecmp (path + n - k, suffix) == 0;
}

static DlEmbedding *
read_file (const char *path, ReadSpec *spec, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &local);
  if (!map)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot open embedding “%s”: %s", path, local->message);
      return NULL;
    }
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (map);
  gsize len;
  const guint8 *d = g_bytes_get_data (bytes, &len);
  g_autoptr (DlEmbedding) e = g_new0 (DlEmbedding, 1);
  e->name = dl_file_stem (path);
  e->step = -1;
  gboolean ok;
  if (len >= 8 && memcmp (d, "\x89PNG\r\n\x1a\n", 8) == 0)
    ok = bad (error, path, "embeddings stored inside images are not supported; use the .pt or .safetensors file");
  /* a zip, or a pickle (the legacy torch format, refused with a message saying
   * so); safetensors starts with its header length, whose first byte may be
   * 0x80 too, then the JSON "{" */
  else if ((len >= 2 && d[0] == 'P' && d[1] == 'K') || (len >= 2 && d[0] == 0x80 && !(len >= 9 && d[8] == '{')))
    ok = read_torch (e, bytes, path, spec, error);
  else if (!(len >= 9 && d[8] == '{') && (has_suffix (path, ".pt") || has_suffix (path, ".bin")))
    ok = read_torch (e, bytes, path, spec, error); /* says it is not a PyTorch file */
  else
    ok = read_safetensors (e, bytes, path, spec, error);
  return ok ? g_steal_pointer (&e) : NULL;
}

DlEmbedding *
dl_embedding_read (const char *path, int expected_dim, GError **error)
{
  g_return_val_if_fail (path != NULL && expected_dim >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  ReadSpec spec = { .want = WANT_ANY_ONE, .dim = expected_dim };
  return read_file (path, &spec, error);
}

DlEmbedding *
dl_embedding_read_for_model (const char *path, int dim, int dim_2, GError **error)
{
  g_return_val_if_fail (path != NULL && dim >= 0 && dim_2 >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  ReadSpec spec = { .want = dim_2 > 0 ? WANT_PAIR : WANT_ONE, .dim = dim, .dim_2 = dim_2 };
  g_autoptr (GError) local = NULL;
  g_autoptr (DlEmbedding) e = read_file (path, &spec, &local);
  if (local)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  if (!e)
    {
      /* WANT_ONE met an SDXL pair (A1111 skips it: its width, the two summed,
       * is not the model's) */
      bad (error, path,
           "an SDXL embedding (clip_l %d and clip_g %d wide, one set per text encoder) but the model has one text "
           "encoder, %d wide (an embedding made for another model)",
           spec.pair_dim, spec.pair_dim_2, dim);
      return NULL;
    }
  if (dim_2 > 0 && !e->vectors_2)
    {
      bad (error, path,
           "its vectors are %d wide, for one text encoder (an SD 1.x or 2.x embedding), but this SDXL model has two "
           "text encoders, %d and %d wide (an SDXL embedding holds clip_l and clip_g vectors)",
           e->dim, dim, dim_2);
      return NULL;
    }
  return g_steal_pointer (&e);
}

DlEmbedding *
dl_embedding_read_as_stored (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  ReadSpec spec = { .want = WANT_PAIR };
  return read_file (path, &spec, error);
}

/* ---- writing ---- */

static gboolean
check_text (const char *text, const char *what, const char *path, GError **error)
{
  if (text && !g_utf8_validate (text, -1, NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "Cannot write embedding “%s”: the %s is not valid "
                   "UTF-8",
                   path, what);
      return FALSE;
    }
  return TRUE;
}

gboolean
dl_embedding_write_a1111 (const char *path, const char *name, const float *vectors, int n, int dim, gint64 step,
                          const char *sd_checkpoint, const char *sd_checkpoint_name, GError **error)
{
  g_return_val_if_fail (path != NULL && name != NULL && vectors != NULL && n > 0 && dim > 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (!check_text (name, "name", path, error) || !check_text (sd_checkpoint, "checkpoint hash", path, error) ||
      !check_text (sd_checkpoint_name, "checkpoint name", path, error))
    return FALSE;
  g_autoptr (DlTorchValue) root = dl_torch_dict ();
  DlTorchValue *tokens = dl_torch_dict ();
  dl_torch_dict_set (tokens, "*", dl_torch_int (A1111_STAR_TOKEN));
  dl_torch_dict_set (root, "string_to_token", tokens);
  /* A1111 saves the vectors it trains in place: requires_grad is set */
  DlTorchValue *vec = dl_torch_tensor_f32 (DL_ST_F32, 2, (const int64_t[]){ n, dim }, vectors);
  dl_torch_tensor_set_requires_grad (vec, TRUE);
  DlTorchValue *params = dl_torch_dict ();
  dl_torch_dict_set (params, "*", vec);
  dl_torch_dict_set (root, "string_to_param", params);
  dl_torch_dict_set (root, "name", dl_torch_str (name));
  dl_torch_dict_set (root, "step", step >= 0 ? dl_torch_int (step) : dl_torch_none ());
  dl_torch_dict_set (root, "sd_checkpoint", dl_torch_str_or_none (sd_checkpoint));
  dl_torch_dict_set (root, "sd_checkpoint_name", dl_torch_str_or_none (sd_checkpoint_name));
  return dl_torch_save (path, root, error);
}

static gboolean
write_one_tensor (const char *path, const char *key, const float *vectors, int n, int dim, DlStDType dtype,
                  GHashTable *metadata, const char *format, GError **error)
{
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  if (!dl_safetensors_writer_add_f32 (w, key, dtype, 2, (const int64_t[]){ n, dim }, vectors, error))
    return FALSE;
  if (metadata)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, metadata);
      while (g_hash_table_iter_next (&it, &k, &v))
        dl_safetensors_writer_set_metadata (w, k, v);
    }
  if (format)
    dl_safetensors_writer_set_metadata (w, "format", format);
  return dl_safetensors_writer_write (w, path, error);
}

gboolean
dl_embedding_write_emb_params (const char *path, const float *vectors, int n, int dim, GHashTable *metadata,
                               DlStDType dtype, GError **error)
{
  g_return_val_if_fail (path != NULL && vectors != NULL && n > 0 && dim > 0, FALSE);
  g_return_val_if_fail (dtype == DL_ST_F32 || dtype == DL_ST_F16 || dtype == DL_ST_BF16, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  return write_one_tensor (path, "emb_params", vectors, n, dim, dtype, metadata, NULL, error);
}

gboolean
dl_embedding_write_sdxl (const char *path, const float *clip_l, int dim_l, const float *clip_g, int dim_g, int n,
                         GHashTable *metadata, DlStDType dtype, GError **error)
{
  g_return_val_if_fail (path != NULL && clip_l != NULL && clip_g != NULL && n > 0 && dim_l > 0 && dim_g > 0, FALSE);
  g_return_val_if_fail (dtype == DL_ST_F32 || dtype == DL_ST_F16 || dtype == DL_ST_BF16, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  const int64_t shape_l[2] = { n, dim_l }, shape_g[2] = { n, dim_g };
  /* kohya sd-scripts sdxl_train_textual_inversion.py save_weights: save_file
   * for .safetensors, torch.save otherwise */
  if (has_suffix (path, ".pt") || has_suffix (path, ".bin"))
    {
      g_autoptr (DlTorchValue) root = dl_torch_dict ();
      dl_torch_dict_set (root, "clip_g", dl_torch_tensor_f32 (dtype, 2, shape_g, clip_g));
      dl_torch_dict_set (root, "clip_l", dl_torch_tensor_f32 (dtype, 2, shape_l, clip_l));
      return dl_torch_save (path, root, error);
    }
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  if (!dl_safetensors_writer_add_f32 (w, "clip_g", dtype, 2, shape_g, clip_g, error) ||
      !dl_safetensors_writer_add_f32 (w, "clip_l", dtype, 2, shape_l, clip_l, error))
    return FALSE;
  if (metadata)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, metadata);
      while (g_hash_table_iter_next (&it, &k, &v))
        dl_safetensors_writer_set_metadata (w, k, v);
    }
  return dl_safetensors_writer_write (w, path, error);
}

gboolean
dl_embedding_write_diffusers (const char *path, const char *placeholder, const float *vectors, int n, int dim,
                              GError **error)
{
  g_return_val_if_fail (path != NULL && placeholder != NULL && vectors != NULL && n > 0 && dim > 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (!check_text (placeholder, "placeholder token", path, error))
    return FALSE;
  if (!*placeholder)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "Cannot write embedding “%s”: the placeholder token "
                   "is empty",
                   path);
      return FALSE;
    }
  /* diffusers examples/textual_inversion saves with metadata {"format": "pt"} */
  return write_one_tensor (path, placeholder, vectors, n, dim, DL_ST_F32, NULL, "pt", error);
}
