/* The safetensors reader: parse and validate the header, expose the tensors.
 * Validation follows the reference reader rule by rule (safetensors
 * src/tensor.rs read_metadata and Metadata::validate; docs/formats.md,
 * “safetensors files”). */
#include "dl-safetensors.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "dl-half.h"
#include "io/dl-json-strict.h"

/* Files are little-endian and so is every host Dreamloom runs on. */
G_STATIC_ASSERT (G_BYTE_ORDER == G_LITTLE_ENDIAN);

#define MAX_HEADER_SIZE 100000000u /* the reference reader's MAX_HEADER_SIZE */
#define MAX_JSON_DEPTH 16          /* the schema needs 3 */

static const struct
{
  const char *name;
  guint bits;
} dtype_info[DL_ST_N_DTYPES] = {
  [DL_ST_BOOL] = { "BOOL", 8 },
  [DL_ST_F4] = { "F4", 4 },
  [DL_ST_F6_E2M3] = { "F6_E2M3", 6 },
  [DL_ST_F6_E3M2] = { "F6_E3M2", 6 },
  [DL_ST_U8] = { "U8", 8 },
  [DL_ST_I8] = { "I8", 8 },
  [DL_ST_F8_E5M2] = { "F8_E5M2", 8 },
  [DL_ST_F8_E4M3] = { "F8_E4M3", 8 },
  [DL_ST_F8_E8M0] = { "F8_E8M0", 8 },
  [DL_ST_F8_E4M3FNUZ] = { "F8_E4M3FNUZ", 8 },
  [DL_ST_F8_E5M2FNUZ] = { "F8_E5M2FNUZ", 8 },
  [DL_ST_I16] = { "I16", 16 },
  [DL_ST_U16] = { "U16", 16 },
  [DL_ST_F16] = { "F16", 16 },
  [DL_ST_BF16] = { "BF16", 16 },
  [DL_ST_I32] = { "I32", 32 },
  [DL_ST_U32] = { "U32", 32 },
  [DL_ST_F32] = { "F32", 32 },
  [DL_ST_C64] = { "C64", 64 },
  [DL_ST_F64] = { "F64", 64 },
  [DL_ST_I64] = { "I64", 64 },
  [DL_ST_U64] = { "U64", 64 },
};

const char *
dl_st_dtype_name (DlStDType dtype)
{
  g_return_val_if_fail (dtype < DL_ST_N_DTYPES, "?");
  return dtype_info[dtype].name;
}

guint
dl_st_dtype_bits (DlStDType dtype)
{
  g_return_val_if_fail (dtype < DL_ST_N_DTYPES, 0);
  return dtype_info[dtype].bits;
}

gsize
dl_st_dtype_size (DlStDType dtype)
{
  g_return_val_if_fail (dtype < DL_ST_N_DTYPES, 0);
  guint bits = dtype_info[dtype].bits;
  return bits % 8 == 0 ? bits / 8 : 0;
}

gboolean
dl_st_dtype_from_name (const char *name, DlStDType *out)
{
  for (int i = 0; i < DL_ST_N_DTYPES; i++)
    if (g_strcmp0 (dtype_info[i].name, name) == 0)
      {
        *out = (DlStDType)i;
        return TRUE;
      }
  return FALSE;
}

gboolean
dl_st_dtype_to_dl (DlStDType dtype, DlDType *out)
{
  switch (dtype)
    {
    case DL_ST_F32:
      *out = DL_DTYPE_F32;
      return TRUE;
    case DL_ST_F16:
      *out = DL_DTYPE_F16;
      return TRUE;
    case DL_ST_BF16:
      *out = DL_DTYPE_BF16;
      return TRUE;
    case DL_ST_I32:
      *out = DL_DTYPE_I32;
      return TRUE;
    default:
      return FALSE;
    }
}

struct _DlSafetensors
{
  char *path;
  GBytes *bytes; /* the whole file (a mapping when opened from a path) */
  guint64 header_len;
  const guint8 *buffer; /* the byte buffer after the header */
  guint64 buffer_len;
  DlStTensor *tensors;
  guint n_tensors;
  GHashTable *by_name;  /* name -> index + 1 */
  GHashTable *metadata; /* NULL when the file has no __metadata__ */
};

static gboolean G_GNUC_PRINTF (3, 4) invalid (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "Invalid safetensors file “%s”: %s", path, msg);
  return FALSE;
}

/* A JSON integer >= 0 (json-glib holds every integer literal as int64 once the
 * strict check has passed). */
static gboolean
node_uint (JsonNode *node, guint64 *out)
{
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *out = (guint64)v;
  return TRUE;
}

static gboolean
parse_metadata (DlSafetensors *st, JsonNode *node, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return invalid (error, st->path, "__metadata__ is not a JSON object");
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;
  json_object_iter_init (&iter, json_node_get_object (node));
  while (json_object_iter_next (&iter, &key, &value))
    {
      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
        return invalid (error, st->path,
                        "__metadata__ entry “%s” is not a string (safetensors metadata maps "
                        "strings to strings only)",
                        key);
      g_hash_table_insert (st->metadata, g_strdup (key), g_strdup (json_node_get_string (value)));
    }
  return TRUE;
}

static gboolean
parse_tensor_info (DlSafetensors *st, const char *name, JsonNode *node, DlStTensor *t, guint64 *begin, guint64 *end,
                   GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return invalid (error, st->path, "tensor “%s”: its entry is not a JSON object", name);
  JsonObject *obj = json_node_get_object (node);
  JsonObjectIter iter;
  const char *field;
  JsonNode *value;
  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &field, &value))
    if (strcmp (field, "dtype") != 0 && strcmp (field, "shape") != 0 && strcmp (field, "data_offsets") != 0)
      return invalid (error, st->path,
                      "tensor “%s”: unexpected field “%s” (only dtype, shape and data_offsets "
                      "are allowed)",
                      name, field);

  JsonNode *dtype = json_object_get_member (obj, "dtype");
  JsonNode *shape = json_object_get_member (obj, "shape");
  JsonNode *offsets = json_object_get_member (obj, "data_offsets");
  if (!dtype || !shape || !offsets)
    return invalid (error, st->path, "tensor “%s”: missing field “%s”", name,
                    !dtype   ? "dtype"
                    : !shape ? "shape"
                             : "data_offsets");

  if (!JSON_NODE_HOLDS_VALUE (dtype) || json_node_get_value_type (dtype) != G_TYPE_STRING)
    return invalid (error, st->path, "tensor “%s”: dtype is not a string", name);
  if (!dl_st_dtype_from_name (json_node_get_string (dtype), &t->dtype))
    return invalid (error, st->path, "tensor “%s”: unknown dtype “%s”", name, json_node_get_string (dtype));

  if (!JSON_NODE_HOLDS_ARRAY (shape))
    return invalid (error, st->path, "tensor “%s”: shape is not a list", name);
  JsonArray *dims = json_node_get_array (shape);
  guint ndim = json_array_get_length (dims);
  if (ndim > DL_ST_MAX_DIMS)
    return invalid (error, st->path, "tensor “%s” has %u dimensions; at most %d are supported", name, ndim,
                    DL_ST_MAX_DIMS);
  t->ndim = (int)ndim;
  guint64 numel = 1;
  for (guint i = 0; i < ndim; i++)
    {
      guint64 d;
      if (!node_uint (json_array_get_element (dims, i), &d))
        return invalid (error, st->path, "tensor “%s”: shape entry %u is not a non-negative integer", name, i);
      t->shape[i] = (int64_t)d;
      if (__builtin_mul_overflow (numel, d, &numel) || numel > G_MAXINT64)
        return invalid (error, st->path, "tensor “%s”: the element count of its shape overflows 64 bits", name);
    }
  t->numel = (int64_t)numel;

  if (!JSON_NODE_HOLDS_ARRAY (offsets) || json_array_get_length (json_node_get_array (offsets)) != 2)
    return invalid (error, st->path, "tensor “%s”: data_offsets is not a list of two integers", name);
  JsonArray *off = json_node_get_array (offsets);
  if (!node_uint (json_array_get_element (off, 0), begin) || !node_uint (json_array_get_element (off, 1), end))
    return invalid (error, st->path, "tensor “%s”: data_offsets are not non-negative integers", name);
  if (*end < *begin)
    return invalid (error, st->path,
                    "tensor “%s”: data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] end before they begin",
                    name, *begin, *end);

  guint64 bits;
  if (__builtin_mul_overflow (numel, (guint64)dl_st_dtype_bits (t->dtype), &bits))
    return invalid (error, st->path, "tensor “%s”: its size in bytes overflows 64 bits", name);
  if (bits % 8 != 0)
    return invalid (error, st->path, "tensor “%s”: %" G_GUINT64_FORMAT " elements of %s do not fill whole bytes", name,
                    numel, dl_st_dtype_name (t->dtype));
  t->nbytes = bits / 8;
  if (t->nbytes != *end - *begin)
    {
      g_autofree char *s = g_strdup ("[");
      for (int i = 0; i < t->ndim; i++)
        {
          char *n = g_strdup_printf ("%s%s%" G_GINT64_FORMAT, s, i ? ", " : "", t->shape[i]);
          g_free (s);
          s = n;
        }
      return invalid (error, st->path,
                      "tensor “%s”: shape %s] of %s is %" G_GUINT64_FORMAT " bytes but its "
                      "data_offsets span %" G_GUINT64_FORMAT " bytes",
                      name, s, dl_st_dtype_name (t->dtype), t->nbytes, *end - *begin);
    }
  return TRUE;
}

typedef struct
{
  guint64 begin, end;
  guint index;
} Span;

static int
span_cmp (gconstpointer a, gconstpointer b)
{
  const Span *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

static gboolean
parse_header (DlSafetensors *st, const char *json, gsize len, GError **error)
{
  g_autofree char *problem = NULL;
  g_autoptr (JsonParser) parser = dl_json_parse_strict (json, len, MAX_JSON_DEPTH, &problem);
  if (!parser)
    return invalid (error, st->path, "header: %s", problem);
  JsonNode *root = json_parser_get_root (parser);
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return invalid (error, st->path, "the header is not a JSON object");
  JsonObject *obj = json_node_get_object (root);
  guint n_members = json_object_get_size (obj);

  st->tensors = g_new0 (DlStTensor, MAX (n_members, 1));
  g_autofree Span *spans = g_new0 (Span, MAX (n_members, 1));
  /* get_members keeps the file's order (JsonObjectIter in json-glib 1.6 does not) */
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (obj, name);
      if (strcmp (name, "__metadata__") == 0)
        {
          if (!parse_metadata (st, node, error))
            return FALSE;
          continue;
        }
      guint i = st->n_tensors;
      DlStTensor *t = &st->tensors[i];
      spans[i].index = i;
      if (!parse_tensor_info (st, name, node, t, &spans[i].begin, &spans[i].end, error))
        return FALSE;
      t->name = g_strdup (name);
      st->n_tensors++;
      g_hash_table_insert (st->by_name, (gpointer)t->name, GUINT_TO_POINTER (i + 1));
    }

  /* Sorted by offsets, the spans must tile the buffer exactly. */
  qsort (spans, st->n_tensors, sizeof (Span), span_cmp);
  guint64 expect = 0;
  for (guint k = 0; k < st->n_tensors; k++)
    {
      const Span *s = &spans[k];
      const char *tname = st->tensors[s->index].name;
      if (s->begin != expect)
        {
          if (s->begin > expect)
            return invalid (error, st->path,
                            "tensor “%s”: a gap in the byte buffer before offset %" G_GUINT64_FORMAT
                            " (the previous tensor ends at %" G_GUINT64_FORMAT ")",
                            tname, s->begin, expect);
          return invalid (error, st->path,
                          "tensor “%s”: data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                          "] overlap the previous tensor (which ends at %" G_GUINT64_FORMAT ")",
                          tname, s->begin, s->end, expect);
        }
      if (s->end > st->buffer_len)
        return invalid (error, st->path,
                        "tensor “%s”: data_offsets end at %" G_GUINT64_FORMAT " but the byte buffer "
                        "holds only %" G_GUINT64_FORMAT " bytes (truncated file?)",
                        tname, s->end, st->buffer_len);
      expect = s->end;
      st->tensors[s->index].data = st->buffer + s->begin;
    }
  if (expect != st->buffer_len)
    return invalid (error, st->path,
                    "the byte buffer has %" G_GUINT64_FORMAT " trailing bytes that no tensor uses "
                    "(the buffer must be covered exactly)",
                    st->buffer_len - expect);
  return TRUE;
}

static DlSafetensors *
open_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_autoptr (DlSafetensors) st = g_new0 (DlSafetensors, 1);
  st->path = g_strdup (display_name ? display_name : "(memory)");
  st->bytes = g_bytes_ref (bytes);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);

  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  if (size < 8)
    {
      invalid (error, st->path,
               "the file is %" G_GSIZE_FORMAT " bytes long, too short for the 8-byte header "
               "length",
               size);
      return NULL;
    }
  guint64 n;
  memcpy (&n, data, 8);
  n = GUINT64_FROM_LE (n);
  if (n > MAX_HEADER_SIZE)
    {
      invalid (error, st->path, "header length %" G_GUINT64_FORMAT " is larger than the 100 MB limit", n);
      return NULL;
    }
  if (n > size - 8)
    {
      invalid (error, st->path,
               "header length %" G_GUINT64_FORMAT " runs past the end of the %" G_GSIZE_FORMAT "-byte file", n, size);
      return NULL;
    }
  st->header_len = n;
  st->buffer = data + 8 + n;
  st->buffer_len = size - 8 - n;
  if (!parse_header (st, (const char *)data + 8, n, error))
    return NULL;
  return g_steal_pointer (&st);
}

DlSafetensors *
dl_safetensors_open_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return open_bytes (bytes, display_name, error);
}

DlSafetensors *
dl_safetensors_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_autoptr (GError) local = NULL;
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &local);
  if (!map)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_IO, "Cannot open safetensors file “%s”: %s", path, local->message);
      return NULL;
    }
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (map);
  return open_bytes (bytes, path, error);
}

void
dl_safetensors_free (DlSafetensors *st)
{
  if (!st)
    return;
  for (guint i = 0; i < st->n_tensors; i++)
    g_free ((char *)st->tensors[i].name);
  g_free (st->tensors);
  g_clear_pointer (&st->by_name, g_hash_table_unref);
  g_clear_pointer (&st->metadata, g_hash_table_unref);
  g_clear_pointer (&st->bytes, g_bytes_unref);
  g_free (st->path);
  g_free (st);
}

const char *
dl_safetensors_get_path (DlSafetensors *st)
{
  g_return_val_if_fail (st != NULL, NULL);
  return st->path;
}

guint64
dl_safetensors_get_header_length (DlSafetensors *st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->header_len;
}

guint
dl_safetensors_get_n_tensors (DlSafetensors *st)
{
  g_return_val_if_fail (st != NULL, 0);
  return st->n_tensors;
}

const DlStTensor *
dl_safetensors_get_tensor (DlSafetensors *st, guint index)
{
  g_return_val_if_fail (st != NULL, NULL);
  return index < st->n_tensors ? &st->tensors[index] : NULL;
}

const DlStTensor *
dl_safetensors_find (DlSafetensors *st, const char *name)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  guint i = GPOINTER_TO_UINT (g_hash_table_lookup (st->by_name, name));
  return i ? &st->tensors[i - 1] : NULL;
}

const char *
dl_safetensors_get_metadata (DlSafetensors *st, const char *key)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return st->metadata ? g_hash_table_lookup (st->metadata, key) : NULL;
}

gboolean
dl_safetensors_has_metadata (DlSafetensors *st)
{
  g_return_val_if_fail (st != NULL, FALSE);
  return st->metadata != NULL;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *
dl_safetensors_get_metadata_keys (DlSafetensors *st)
{
  g_return_val_if_fail (st != NULL, NULL);
  GPtrArray *keys = g_ptr_array_new ();
  if (st->metadata)
    {
      GHashTableIter it;
      gpointer k;
      g_hash_table_iter_init (&it, st->metadata);
      while (g_hash_table_iter_next (&it, &k, NULL))
        g_ptr_array_add (keys, k);
      g_ptr_array_sort (keys, compare_strings);
    }
  return keys;
}

/* ---- conversion to float ---- */

/* Minifloat with `e` exponent and `m` mantissa bits, bias `bias`.  `fn`: the
 * all-ones exponent is an ordinary binade and only all-ones is NaN (E4M3);
 * `fnuz`: no negative zero, 0x80 is NaN, no infinities. */
static float
minifloat (guint8 b, int e, int m, int bias, gboolean fn, gboolean fnuz)
{
  int sign = b >> 7;
  int exp = (b >> m) & ((1 << e) - 1);
  int man = b & ((1 << m) - 1);
  if (fnuz && b == 0x80)
    return NAN;
  if (!fn && !fnuz && exp == (1 << e) - 1)
    return man ? NAN : (sign ? -INFINITY : INFINITY);
  if (fn && exp == (1 << e) - 1 && man == (1 << m) - 1)
    return NAN;
  float v = exp == 0 ? ldexpf ((float)man, 1 - bias - m) : ldexpf ((float)((1 << m) | man), exp - bias - m);
  return sign ? -v : v;
}

gboolean
dl_st_convert_to_f32 (const DlStTensor *t, float *out, const char *path, GError **error)
{
  const guint8 *p = t->data;
  gsize n = (gsize)t->numel;
  switch (t->dtype)
    {
#define LOOP(T, CONV)                          \
  for (gsize i = 0; i < n; i++)                \
    {                                          \
      T v;                                     \
      memcpy (&v, p + i * sizeof v, sizeof v); \
      out[i] = (float)(CONV);                  \
    }                                          \
  break;
    case DL_ST_BOOL:
      LOOP (guint8, v != 0)
    case DL_ST_U8:
      LOOP (guint8, v)
    case DL_ST_I8:
      LOOP (gint8, v)
    case DL_ST_F8_E5M2:
      LOOP (guint8, minifloat (v, 5, 2, 15, FALSE, FALSE))
    case DL_ST_F8_E4M3:
      LOOP (guint8, minifloat (v, 4, 3, 7, TRUE, FALSE))
    case DL_ST_F8_E4M3FNUZ:
      LOOP (guint8, minifloat (v, 4, 3, 8, FALSE, TRUE))
    case DL_ST_F8_E5M2FNUZ:
      LOOP (guint8, minifloat (v, 5, 2, 16, FALSE, TRUE))
    case DL_ST_F8_E8M0:
      LOOP (guint8, v == 0xff ? NAN : ldexpf (1.0f, (int)v - 127))
    case DL_ST_I16:
      LOOP (gint16, (gint16)GINT16_FROM_LE (v))
    case DL_ST_U16:
      LOOP (guint16, GUINT16_FROM_LE (v))
    case DL_ST_F16:
      LOOP (guint16, dl_f16_to_f32 (GUINT16_FROM_LE (v)))
    case DL_ST_BF16:
      LOOP (guint16, dl_bf16_to_f32 (GUINT16_FROM_LE (v)))
    case DL_ST_I32:
      LOOP (gint32, (gint32)GINT32_FROM_LE (v))
    case DL_ST_U32:
      LOOP (guint32, GUINT32_FROM_LE (v))
    case DL_ST_F32:
      memcpy (out, p, n * 4);
      break;
    case DL_ST_F64:
      LOOP (double, v)
    case DL_ST_I64:
      LOOP (gint64, (gint64)GINT64_FROM_LE (v))
    case DL_ST_U64:
      LOOP (guint64, GUINT64_FROM_LE (v))
#undef LOOP
    default:
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "“%s”: tensor “%s”: converting %s to float is not "
                   "supported",
                   path, t->name, dl_st_dtype_name (t->dtype));
      return FALSE;
    }
  return TRUE;
}

float *
dl_safetensors_read_f32 (DlSafetensors *st, const char *name, int64_t *numel, GError **error)
{
  g_return_val_if_fail (st != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  const DlStTensor *t = dl_safetensors_find (st, name);
  if (!t)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "“%s” has no tensor named “%s”", st->path, name);
      return NULL;
    }
  float *out = (gsize)t->numel <= G_MAXSIZE / sizeof (float) ? g_try_new (float, MAX (t->numel, 1)) : NULL;
  if (!out)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY,
                   "Out of memory reading tensor “%s” of “%s” "
                   "(%" G_GINT64_FORMAT " elements)",
                   name, st->path, t->numel);
      return NULL;
    }
  if (!dl_st_convert_to_f32 (t, out, st->path, error))
    {
      g_free (out);
      return NULL;
    }
  if (numel)
    *numel = t->numel;
  return out;
}
