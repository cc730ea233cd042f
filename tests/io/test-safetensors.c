/* The safetensors reader and writer: round trips, the reference byte layout,
 * every golden file, and a corpus of broken files that must each give a clear
 * error naming the file. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "dl-half.h"
#include "io/dl-safetensors.h"

static char *tmp_dir;
static char *base_tmp_dir;

/* Each test writes into its own directory. */
static void
use_subdir (const char *sub)
{
  g_free (tmp_dir);
  tmp_dir = g_build_filename (base_tmp_dir, sub, NULL);
  g_assert_cmpint (g_mkdir_with_parents (tmp_dir, 0700), ==, 0);
}

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

static GBytes *
read_file (const char *path)
{
  char *data;
  gsize len;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &data, &len, &error));
  g_assert_no_error (error);
  return g_bytes_new_take (data, len);
}

/* Files left in the directory other than `keep` (temporary files of a writer). */
static guint
count_other_files (const char *keep)
{
  g_autoptr (GDir) dir = g_dir_open (tmp_dir, 0, NULL);
  guint n = 0;
  const char *name;
  while ((name = g_dir_read_name (dir)))
    if (g_strcmp0 (name, keep) != 0)
      n++;
  return n;
}

/* ---- round trips ---- */

static void
test_round_trip (void)
{
  use_subdir ("round_trip");
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  const float wf[6] = { 1.5f, -2.25f, 0.0f, 1e-3f, 65504.0f, -0.0f };
  const int64_t s23[2] = { 2, 3 }, s6[1] = { 6 }, s0[1] = { 0 }, s1x7[3] = { 1, 7, 1 };
  const gint64 ids[7] = { 0, 1, -5, 49407, G_MAXINT64, G_MININT64 + 1, 77 };
  const guint8 bytes[3] = { 0, 200, 255 };
  const double scalar = 3.141592653589793;

  g_assert_true (dl_safetensors_writer_add_f32 (w, "w.f32", DL_ST_F32, 2, s23, wf, &error));
  g_assert_true (dl_safetensors_writer_add_f32 (w, "w.f16", DL_ST_F16, 1, s6, wf, &error));
  g_assert_true (dl_safetensors_writer_add_f32 (w, "w.bf16", DL_ST_BF16, 2, s23, wf, &error));
  g_assert_true (dl_safetensors_writer_add (w, "ids", DL_ST_I64, 3, s1x7, ids, sizeof ids, &error));
  g_assert_true (dl_safetensors_writer_add (w, "bytes", DL_ST_U8, 1, (int64_t[]){ 3 }, bytes, 3, &error));
  g_assert_true (dl_safetensors_writer_add (w, "empty", DL_ST_F32, 1, s0, NULL, 0, &error));
  g_assert_true (dl_safetensors_writer_add (w, "scalar", DL_ST_F64, 0, NULL, &scalar, 8, &error));
  g_assert_true (
    dl_safetensors_writer_add (w, "ünïcode \"quoted\"\n\\", DL_ST_F32, 1, (int64_t[]){ 1 }, wf, 4, &error));
  g_assert_no_error (error);
  dl_safetensors_writer_set_metadata (w, "format", "pt");
  dl_safetensors_writer_set_metadata (w, "json", "{\"a\": [1, 2], \"b\": \"x\\ty\"}");
  dl_safetensors_writer_set_metadata (w, "format", "pt2"); /* replaces */

  g_autofree char *path = tmp_path ("round.safetensors");
  g_assert_true (dl_safetensors_writer_write (w, path, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_other_files ("round.safetensors"), ==, 0);

  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  g_assert_cmpuint (dl_safetensors_get_n_tensors (st), ==, 8);
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "format"), ==, "pt2");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "json"), ==, "{\"a\": [1, 2], \"b\": \"x\\ty\"}");
  g_assert_null (dl_safetensors_get_metadata (st, "absent"));
  g_autoptr (GPtrArray) keys = dl_safetensors_get_metadata_keys (st);
  g_assert_cmpuint (keys->len, ==, 2);
  g_assert_cmpstr (keys->pdata[0], ==, "format");
  g_assert_cmpstr (keys->pdata[1], ==, "json");

  const DlStTensor *t = dl_safetensors_find (st, "w.f32");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, DL_ST_F32);
  g_assert_cmpint (t->ndim, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 2);
  g_assert_cmpint (t->shape[1], ==, 3);
  g_assert_cmpint (t->numel, ==, 6);
  g_assert_cmpuint (t->nbytes, ==, 24);
  g_assert_cmpmem (t->data, 24, wf, 24);

  int64_t n = 0;
  g_autofree float *f16 = dl_safetensors_read_f32 (st, "w.f16", &n, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 6);
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat (f16[i], ==, dl_f16_to_f32 (dl_f32_to_f16 (wf[i])));
  g_autofree float *bf16 = dl_safetensors_read_f32 (st, "w.bf16", &n, &error);
  for (int i = 0; i < 6; i++)
    g_assert_cmpfloat (bf16[i], ==, dl_bf16_to_f32 (dl_f32_to_bf16 (wf[i])));

  t = dl_safetensors_find (st, "ids");
  g_assert_cmpint (t->dtype, ==, DL_ST_I64);
  g_assert_cmpint (t->ndim, ==, 3);
  g_assert_cmpmem (t->data, t->nbytes, ids, sizeof ids);
  g_autofree float *idf = dl_safetensors_read_f32 (st, "ids", &n, &error);
  g_assert_cmpint (n, ==, 7);
  g_assert_cmpfloat (idf[3], ==, 49407.0f);
  g_assert_cmpfloat (idf[2], ==, -5.0f);

  g_autofree float *bf = dl_safetensors_read_f32 (st, "bytes", &n, &error);
  g_assert_cmpfloat (bf[1], ==, 200.0f);
  g_assert_cmpfloat (bf[2], ==, 255.0f);

  t = dl_safetensors_find (st, "empty");
  g_assert_cmpint (t->numel, ==, 0);
  g_assert_cmpuint (t->nbytes, ==, 0);
  g_autofree float *ef = dl_safetensors_read_f32 (st, "empty", &n, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);

  t = dl_safetensors_find (st, "scalar");
  g_assert_cmpint (t->ndim, ==, 0);
  g_assert_cmpint (t->numel, ==, 1);
  g_autofree float *sf = dl_safetensors_read_f32 (st, "scalar", &n, &error);
  g_assert_cmpfloat (sf[0], ==, (float)scalar);

  g_assert_nonnull (dl_safetensors_find (st, "ünïcode \"quoted\"\n\\"));
  g_assert_null (dl_safetensors_find (st, "nope"));
  g_assert_null (dl_safetensors_read_f32 (st, "nope", &n, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, "nope"));
}

/* ---- the byte layout ---- */

static guint64
le64 (const guint8 *p)
{
  guint64 v;
  memcpy (&v, p, 8);
  return GUINT64_FROM_LE (v);
}

/* The exact bytes the reference writer produces for a small file. */
static void
test_exact_bytes (void)
{
  use_subdir ("exact_bytes");
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  const float a[2] = { 1.0f, -2.0f };
  const gint64 b[1] = { 7 };
  const guint16 c[3] = { 0x3c00, 0x4000, 0xc000 };
  dl_safetensors_writer_add (w, "z", DL_ST_F32, 1, (int64_t[]){ 2 }, a, sizeof a, &error);
  dl_safetensors_writer_add (w, "b", DL_ST_I64, 2, (int64_t[]){ 1, 1 }, b, sizeof b, &error);
  dl_safetensors_writer_add (w, "a", DL_ST_F16, 1, (int64_t[]){ 3 }, c, sizeof c, &error);
  dl_safetensors_writer_set_metadata (w, "format", "pt");
  dl_safetensors_writer_set_metadata (w, "a", "1");
  g_assert_no_error (error);
  g_autofree char *path = tmp_path ("exact.safetensors");
  g_assert_true (dl_safetensors_writer_write (w, path, &error));

  /* I64 before F32 before F16 (descending dtype), then names; compact JSON;
   * trailing spaces to a multiple of 8. */
  const char *json = "{\"__metadata__\":{\"a\":\"1\",\"format\":\"pt\"},"
                     "\"b\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[0,8]},"
                     "\"z\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                     "\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]}}";
  gsize jl = strlen (json), padded = (jl + 7) / 8 * 8;
  g_autoptr (GByteArray) want = g_byte_array_new ();
  guint64 n = GUINT64_TO_LE (padded);
  g_byte_array_append (want, (const guint8 *)&n, 8);
  g_byte_array_append (want, (const guint8 *)json, jl);
  for (gsize i = jl; i < padded; i++)
    g_byte_array_append (want, (const guint8 *)" ", 1);
  g_byte_array_append (want, (const guint8 *)b, 8);
  g_byte_array_append (want, (const guint8 *)a, 8);
  g_byte_array_append (want, (const guint8 *)c, 6);

  g_autoptr (GBytes) got = read_file (path);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), want->data, want->len);

  /* No tensors and no metadata: still starts with {" (never "{}"). */
  g_autoptr (DlSafetensorsWriter) e = dl_safetensors_writer_new ();
  g_autofree char *epath = tmp_path ("empty.safetensors");
  g_assert_true (dl_safetensors_writer_write (e, epath, &error));
  g_autoptr (GBytes) eg = read_file (epath);
  const guint8 *ed = g_bytes_get_data (eg, NULL);
  g_assert_cmpuint (g_bytes_get_size (eg), ==, 8 + 24);
  g_assert_cmpuint (le64 (ed), ==, 24);
  g_assert_cmpmem (ed + 8, 24, "{\"__metadata__\":{}}     ", 24);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (epath, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_safetensors_get_n_tensors (st), ==, 0);
  g_assert_true (dl_safetensors_has_metadata (st));
}

/* Layout rules checked on any file: header starts with {", N % 8 == 0 with space
 * padding, tensors in header order are in dtype-descending then name order and
 * packed back to back from offset 0. */
static void
check_reference_layout (const char *path, gboolean canonical_order)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = read_file (path);
  gsize size;
  const guint8 *d = g_bytes_get_data (bytes, &size);
  guint64 n = le64 (d);
  g_assert_cmpuint (n % 8, ==, 0);
  g_assert_cmpmem (d + 8, 2, "{\"", 2);
  gsize end = 8 + n;
  while (end > 8 && d[end - 1] == ' ')
    end--;
  g_assert_cmpint (d[end - 1], ==, '}');
  g_assert_cmpuint (8 + n - end, <, 8);

  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  const guint8 *buffer = d + 8 + n;
  guint64 offset = 0;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      /* the mapping and our copy hold the same bytes at the same offset */
      g_assert_cmpmem (t->data, t->nbytes, buffer + offset, t->nbytes);
      offset += t->nbytes;
      if (i > 0 && canonical_order)
        {
          const DlStTensor *p = dl_safetensors_get_tensor (st, i - 1);
          g_assert_true (p->dtype > t->dtype || (p->dtype == t->dtype && strcmp (p->name, t->name) < 0));
        }
    }
  g_assert_cmpuint (8 + n + offset, ==, size);
}

static void
test_layout_random (void)
{
  use_subdir ("layout_random");
  /* many names and dtypes added in a scrambled order */
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  const DlStDType types[] = { DL_ST_F32, DL_ST_F16, DL_ST_BF16, DL_ST_I64, DL_ST_U8, DL_ST_I32, DL_ST_F64 };
  GRand *rand = g_rand_new_with_seed (7);
  for (int i = 0; i < 60; i++)
    {
      DlStDType dt = types[g_rand_int_range (rand, 0, G_N_ELEMENTS (types))];
      int64_t len = g_rand_int_range (rand, 0, 13);
      g_autofree guint8 *buf = g_malloc0 (len * dl_st_dtype_size (dt) + 1);
      for (gsize k = 0; k < len * dl_st_dtype_size (dt); k++)
        buf[k] = (guint8)g_rand_int (rand);
      g_autofree char *name = g_strdup_printf ("t%03u.%d", g_rand_int_range (rand, 0, 1000), i);
      g_assert_true (dl_safetensors_writer_add (w, name, dt, 1, &len, buf, len * dl_st_dtype_size (dt), &error));
    }
  g_rand_free (rand);
  g_autofree char *path = tmp_path ("layout.safetensors");
  g_assert_true (dl_safetensors_writer_write (w, path, &error));
  g_assert_no_error (error);
  check_reference_layout (path, TRUE);
}

/* ---- the golden files ---- */

static GPtrArray *
golden_safetensors_files (void)
{
  GPtrArray *files = g_ptr_array_new_with_free_func (g_free);
  const char *sub[] = { "", "tiny-sd15-diffusers/unet", "tiny-sd15-diffusers/vae", "tiny-sd15-diffusers/text_encoder" };
  for (guint i = 0; i < G_N_ELEMENTS (sub); i++)
    {
      g_autofree char *dir = dl_test_golden_path (sub[i]);
      if (!dir)
        continue;
      g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
      const char *name;
      while (d && (name = g_dir_read_name (d)))
        if (g_str_has_suffix (name, ".safetensors"))
          g_ptr_array_add (files, g_build_filename (dir, name, NULL));
    }
  return files;
}

/* Every golden file opens, follows the reference layout, and our writer
 * reproduces its tensor section and byte buffer exactly. */
static void
test_golden_files (void)
{
  use_subdir ("golden_files");
  g_autoptr (GPtrArray) files = golden_safetensors_files ();
  if (files->len == 0)
    {
      g_test_skip ("golden data is absent");
      return;
    }
  g_assert_cmpuint (files->len, >=, 17);
  for (guint f = 0; f < files->len; f++)
    {
      const char *path = files->pdata[f];
      g_test_message ("%s", path);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
      g_assert_no_error (error);
      if (!st)
        continue;
      g_assert_cmpuint (dl_safetensors_get_n_tensors (st), >, 0);
      /* rng-a1111 is the one golden file not from the generator's writer (its
       * tensors are in seed order, not name order) */
      gboolean canonical = !g_str_has_suffix (path, "rng-a1111.safetensors");
      check_reference_layout (path, canonical);
      if (!canonical)
        continue;

      g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
      for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
        {
          const DlStTensor *t = dl_safetensors_get_tensor (st, i);
          g_assert_true (
            dl_safetensors_writer_add (w, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes, &error));
        }
      g_autoptr (GPtrArray) keys = dl_safetensors_get_metadata_keys (st);
      for (guint i = 0; i < keys->len; i++)
        dl_safetensors_writer_set_metadata (w, keys->pdata[i], dl_safetensors_get_metadata (st, keys->pdata[i]));
      g_autofree char *out = tmp_path ("golden-copy.safetensors");
      g_assert_true (dl_safetensors_writer_write (w, out, &error));
      g_assert_no_error (error);

      g_autoptr (GBytes) a = read_file (path);
      g_autoptr (GBytes) b = read_file (out);
      const guint8 *pa = g_bytes_get_data (a, NULL), *pb = g_bytes_get_data (b, NULL);
      guint64 na = le64 (pa), nb = le64 (pb);
      /* the byte buffers are identical */
      g_assert_cmpmem (pa + 8 + na, g_bytes_get_size (a) - 8 - na, pb + 8 + nb, g_bytes_get_size (b) - 8 - nb);
      /* the tensor part of the header too (metadata key order is not fixed by
       * the format: the reference writer uses a hash map) */
      const char *first = dl_safetensors_get_tensor (st, 0)->name;
      g_autofree char *needle = g_strdup_printf ("\"%s\":{\"dtype\"", first);
      const char *ta = g_strstr_len ((const char *)pa + 8, na, needle);
      const char *tb = g_strstr_len ((const char *)pb + 8, nb, needle);
      g_assert_nonnull (ta);
      g_assert_nonnull (tb);
      if (ta && tb)
        {
          g_autofree char *sa = g_strndup (ta, (const char *)pa + 8 + na - ta);
          g_autofree char *sb = g_strndup (tb, (const char *)pb + 8 + nb - tb);
          g_strchomp (sa);
          g_strchomp (sb);
          g_assert_cmpstr (sa, ==, sb);
        }
      if (keys->len <= 1)
        g_assert_cmpmem (pa, g_bytes_get_size (a), pb, g_bytes_get_size (b));
    }
}

/* ---- conversions ---- */

static void
test_read_f32_dtypes (void)
{
  use_subdir ("read_f32_dtypes");
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  const double f64[3] = { 1.0, -1e-3, 1e30 };
  const gint8 i8[3] = { -128, 0, 127 };
  const gint16 i16[3] = { -32768, 5, 32767 };
  const guint32 u32[3] = { 0, 16777216, 4000000000u };
  const guint8 boolean[3] = { 0, 1, 2 };
  /* E4M3: 0x38 = 1.0, 0xc0 = -2.0, 0x01 = 2^-9, 0x7e = 448, 0x7f = NaN;
   * E5M2: 0x3c = 1.0, 0x7c = inf, 0x01 = 2^-16 */
  const guint8 e4m3[5] = { 0x38, 0xc0, 0x01, 0x7e, 0x7f };
  const guint8 e5m2[3] = { 0x3c, 0x7c, 0x01 };
  const guint8 e8m0[3] = { 127, 130, 0xff };
  dl_safetensors_writer_add (w, "f64", DL_ST_F64, 1, (int64_t[]){ 3 }, f64, sizeof f64, &error);
  dl_safetensors_writer_add (w, "i8", DL_ST_I8, 1, (int64_t[]){ 3 }, i8, sizeof i8, &error);
  dl_safetensors_writer_add (w, "i16", DL_ST_I16, 1, (int64_t[]){ 3 }, i16, sizeof i16, &error);
  dl_safetensors_writer_add (w, "u32", DL_ST_U32, 1, (int64_t[]){ 3 }, u32, sizeof u32, &error);
  dl_safetensors_writer_add (w, "bool", DL_ST_BOOL, 1, (int64_t[]){ 3 }, boolean, 3, &error);
  dl_safetensors_writer_add (w, "e4m3", DL_ST_F8_E4M3, 1, (int64_t[]){ 5 }, e4m3, 5, &error);
  dl_safetensors_writer_add (w, "e5m2", DL_ST_F8_E5M2, 1, (int64_t[]){ 3 }, e5m2, 3, &error);
  dl_safetensors_writer_add (w, "e8m0", DL_ST_F8_E8M0, 1, (int64_t[]){ 3 }, e8m0, 3, &error);
  dl_safetensors_writer_add (w, "f4", DL_ST_F4, 1, (int64_t[]){ 4 }, "ab", 2, &error);
  g_assert_no_error (error);
  /* a sub-byte tensor must fill whole bytes */
  g_assert_false (dl_safetensors_writer_add (w, "f4odd", DL_ST_F4, 1, (int64_t[]){ 3 }, "ab", 2, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_autofree char *path = tmp_path ("dtypes.safetensors");
  g_assert_true (dl_safetensors_writer_write (w, path, &error));
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  int64_t n;
  struct
  {
    const char *name;
    float want[5];
  } cases[] = {
    { "f64", { 1.0f, -1e-3f, 1e30f } },
    { "i8", { -128, 0, 127 } },
    { "i16", { -32768, 5, 32767 } },
    { "u32", { 0, 16777216.0f, 4e9f } },
    { "bool", { 0, 1, 1 } },
    { "e4m3", { 1.0f, -2.0f, 1.0f / 512, 448.0f, NAN } },
    { "e5m2", { 1.0f, INFINITY, 1.0f / 65536 } },
    { "e8m0", { 1.0f, 8.0f, NAN } },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autofree float *got = dl_safetensors_read_f32 (st, cases[c].name, &n, &error);
      g_assert_no_error (error);
      if (!got)
        continue;
      for (int i = 0; i < n; i++)
        if (isnan (cases[c].want[i]))
          g_assert_true (isnan (got[i]));
        else
          g_assert_cmpfloat (got[i], ==, cases[c].want[i]);
    }
  g_assert_null (dl_safetensors_read_f32 (st, "f4", &n, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "F4"));
}

/* Upload with conversion, including a file whose tensors are not aligned. */
static void
test_upload (void)
{
  use_subdir ("upload");
  g_autoptr (GError) error = NULL;
  DlDevice *dev = dl_test_device ();
  g_autofree float *x = dl_test_random (7 * 129, 3, -4, 4);
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  const int64_t shape[2] = { 7, 129 };
  dl_safetensors_writer_add_f32 (w, "x.f32", DL_ST_F32, 2, shape, x, &error);
  dl_safetensors_writer_add_f32 (w, "x.f16", DL_ST_F16, 2, shape, x, &error);
  dl_safetensors_writer_add_f32 (w, "x.bf16", DL_ST_BF16, 2, shape, x, &error);
  const gint64 ids[3] = { 49406, -1, 7 };
  dl_safetensors_writer_add (w, "ids", DL_ST_I64, 1, (int64_t[]){ 3 }, ids, sizeof ids, &error);
  g_assert_no_error (error);
  g_autofree char *path = tmp_path ("upload.safetensors");
  g_assert_true (dl_safetensors_writer_write (w, path, &error));
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  struct
  {
    const char *name;
    DlDType dt;
    double tol;
  } cases[] = {
    { "x.f32", DL_DTYPE_F32, 0 },     { "x.f32", DL_DTYPE_F16, 1e-3 },  { "x.f16", DL_DTYPE_F32, 1e-3 },
    { "x.f16", DL_DTYPE_F16, 1e-3 },  { "x.bf16", DL_DTYPE_F32, 8e-3 }, { "x.bf16", DL_DTYPE_BF16, 8e-3 },
    { "x.f16", DL_DTYPE_BF16, 8e-3 },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      g_autoptr (DlTensor) t = dl_safetensors_upload (st, cases[c].name, dev, cases[c].dt, &error);
      g_assert_no_error (error);
      if (!t)
        continue;
      g_assert_cmpint (t->dtype, ==, cases[c].dt);
      g_assert_cmpint (t->ndim, ==, 2);
      g_assert_cmpint (t->shape[1], ==, 129);
      g_autofree float *got = dl_test_download (t);
      /* half/bfloat16 rounding: relative 2^-11 / 2^-8 (twice when both steps round) */
      dl_test_assert_close (cases[c].name, got, x, 7 * 129, 0, cases[c].tol);
    }
  g_autoptr (DlTensor) it = dl_safetensors_upload (st, "ids", dev, DL_DTYPE_I32, &error);
  g_assert_no_error (error);
  if (it)
    {
      gint32 got[3];
      g_assert_true (dl_tensor_download (it, got, DL_DTYPE_I32, &error));
      g_assert_cmpint (got[0], ==, 49406);
      g_assert_cmpint (got[1], ==, -1);
      g_assert_cmpint (got[2], ==, 7);
    }

  /* Odd header length: every tensor starts at an odd file offset. */
  const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                     "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[12,16]}} ";
  g_autoptr (GByteArray) f = g_byte_array_new ();
  guint64 n = GUINT64_TO_LE (strlen (json));
  g_assert_true (strlen (json) % 2 == 1);
  g_byte_array_append (f, (const guint8 *)&n, 8);
  g_byte_array_append (f, (const guint8 *)json, strlen (json));
  const float av[3] = { 1.0f, 2.5f, -3.0f };
  const guint16 hv[2] = { 0x3c00, 0xc400 };
  g_byte_array_append (f, (const guint8 *)av, 12);
  g_byte_array_append (f, (const guint8 *)hv, 4);
  g_autoptr (GBytes) fb = g_byte_array_free_to_bytes (g_steal_pointer (&f));
  g_autoptr (DlSafetensors) un = dl_safetensors_open_bytes (fb, "unaligned", &error);
  g_assert_no_error (error);
  if (!un)
    return;
  g_autoptr (DlTensor) ta = dl_safetensors_upload (un, "a", dev, DL_DTYPE_F16, &error);
  g_autoptr (DlTensor) th = dl_safetensors_upload (un, "h", dev, DL_DTYPE_F32, &error);
  g_assert_no_error (error);
  if (!ta || !th)
    return;
  g_autofree float *ga = dl_test_download (ta);
  g_autofree float *gh = dl_test_download (th);
  dl_test_assert_close ("unaligned f32", ga, av, 3, 0, 0);
  const float hw[2] = { 1.0f, -4.0f };
  dl_test_assert_close ("unaligned f16", gh, hw, 2, 0, 0);
}

/* ---- writer errors and atomicity ---- */

static void
test_writer_errors (void)
{
  use_subdir ("writer_errors");
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  const float v[4] = { 1, 2, 3, 4 };
  g_assert_true (dl_safetensors_writer_add (w, "a", DL_ST_F32, 1, (int64_t[]){ 4 }, v, 16, &error));
  g_assert_false (dl_safetensors_writer_add (w, "a", DL_ST_F32, 1, (int64_t[]){ 4 }, v, 16, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "“a”"));
  g_clear_error (&error);
  g_assert_false (dl_safetensors_writer_add (w, "b", DL_ST_F32, 1, (int64_t[]){ 3 }, v, 16, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_safetensors_writer_add (w, "__metadata__", DL_ST_F32, 1, (int64_t[]){ 4 }, v, 16, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_safetensors_writer_add (w, "c", DL_ST_F32, 1, (int64_t[]){ -1 }, v, 16, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* a directory that does not exist: the error names the path */
  g_autofree char *bad = tmp_path ("no-such-dir/x.safetensors");
  g_assert_false (dl_safetensors_writer_write (w, bad, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, bad));
  g_clear_error (&error);

  /* replacing an existing file: the new content, no temporary left behind */
  g_autofree char *path = tmp_path ("replace.safetensors");
  g_assert_true (g_file_set_contents (path, "old content", -1, NULL));
  g_assert_true (dl_safetensors_writer_write (w, path, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_other_files ("replace.safetensors"), ==, 0);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);

  /* a rename that fails (the target is a non-empty directory) leaves the
   * directory alone and no temporary file */
  g_autofree char *dir = tmp_path ("a-dir");
  g_autofree char *inside = tmp_path ("a-dir/keep");
  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (inside, "x", -1, NULL));
  g_assert_false (dl_safetensors_writer_write (w, dir, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, dir));
  g_clear_error (&error);
  g_assert_true (g_file_test (inside, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_other_files ("replace.safetensors"), ==, 1); /* a-dir itself */
  g_unlink (inside);
  g_rmdir (dir);
  g_unlink (path);
}

/* ---- broken files ---- */

typedef struct
{
  const char *what;
  const char *json;  /* header text; NULL: raw bytes below */
  gssize data_len;   /* bytes of zero data after the header */
  gint64 n_override; /* >= 0: write this as N instead of strlen(json) */
  const char *raw;   /* raw file content (with raw_len) */
  gsize raw_len;
  const char *expect; /* substring of the message */
} Corrupt;

#define T(d, s, off) "\"" d "\":{\"dtype\":\"F32\",\"shape\":[" s "],\"data_offsets\":[" off "]}"

static const Corrupt corrupt[] = {
  { "empty file", NULL, 0, -1, "", 0, "too short" },
  { "7 bytes", NULL, 0, -1, "\x02\0\0\0\0\0\0", 7, "too short" },
  { "header length 2^63", NULL, 0, -1, "\0\0\0\0\0\0\0\x80{}", 10, "100 MB limit" },
  { "header length just over the limit", NULL, 0, -1, "\x01\xe1\xf5\x05\0\0\0\0{}", 10, "100 MB limit" },
  { "header length past the end", "{}", 0, 64, NULL, 0, "runs past the end" },
  { "header not UTF-8", "{\"a\xff\":{}}", 0, -1, NULL, 0, "UTF-8" },
  { "NUL byte in the header", NULL, 0, -1, "\x04\0\0\0\0\0\0\0{\0}x", 12, "UTF-8" },
  { "empty header", "", 0, -1, NULL, 0, "unexpected end" },
  { "truncated JSON", "{\"a\":", 0, -1, NULL, 0, "invalid JSON" },
  { "garbage after the JSON", "{} x", 0, -1, NULL, 0, "after the end" },
  { "single-quoted strings", "{'a':{}}", 0, -1, NULL, 0, "double quotes" },
  { "a comment", "{/* c */}", 0, -1, NULL, 0, "invalid JSON" },
  { "hex number",
    "{"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[0x1],\"data_offsets\":[0,4]}}",
    4, -1, NULL, 0, "invalid JSON" },
  { "leading zero", "{" T ("a", "01", "0,4") "}", 4, -1, NULL, 0, "leading zero" },
  { "trailing comma", "{" T ("a", "1", "0,4") ",}", 4, -1, NULL, 0, "member name" },
  { "byte order mark", "\xef\xbb\xbf{}", 0, -1, NULL, 0, "unexpected character" },
  { "root is a list", "[]", 0, -1, NULL, 0, "not a JSON object" },
  { "root is a string", "\"x\"", 0, -1, NULL, 0, "not a JSON object" },
  { "duplicate tensor", "{" T ("a", "1", "0,4") "," T ("a", "1", "4,8") "}", 8, -1, NULL, 0, "appears twice" },
  { "duplicate tensor (escaped spelling)", "{" T ("a", "1", "0,4") "," T ("\\u0061", "1", "4,8") "}", 8, -1, NULL, 0,
    "appears twice" },
  { "duplicate field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1,
    NULL, 0, "appears twice" },
  { "duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, -1, NULL, 0, "appears twice" },
  { "unknown dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, -1, NULL, 0,
    "unknown dtype “F128”" },
  { "lower-case dtype", "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, NULL, 0,
    "unknown dtype" },
  { "dtype not a string", "{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, NULL, 0,
    "dtype is not a string" },
  { "missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, NULL, 0, "missing field “dtype”" },
  { "missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, -1, NULL, 0, "missing field “shape”" },
  { "missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1, NULL, 0, "missing field “data_offsets”" },
  { "extra field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, -1, NULL, 0,
    "unexpected field “x”" },
  { "tensor entry not an object", "{\"a\":[1]}", 0, -1, NULL, 0, "not a JSON object" },
  { "shape not a list", "{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, -1, NULL, 0,
    "shape is not a list" },
  { "negative dimension", "{" T ("a", "-1", "0,4") "}", 4, -1, NULL, 0, "not a non-negative integer" },
  { "fractional dimension", "{" T ("a", "1.5", "0,4") "}", 4, -1, NULL, 0, "not a non-negative integer" },
  { "exponent dimension", "{" T ("a", "1e0", "0,4") "}", 4, -1, NULL, 0, "not a non-negative integer" },
  { "string dimension", "{" T ("a", "\"1\"", "0,4") "}", 4, -1, NULL, 0, "not a non-negative integer" },
  { "nine dimensions", "{" T ("a", "1,1,1,1,1,1,1,1,1", "0,4") "}", 4, -1, NULL, 0, "9 dimensions" },
  { "element count overflow", "{" T ("a", "4294967296,4294967296,4294967296", "0,4") "}", 4, -1, NULL, 0, "overflows" },
  { "byte size overflow", "{" T ("a", "4611686018427387904", "0,4") "}", 4, -1, NULL, 0, "overflows" },
  { "integer beyond 64 bits", "{" T ("a", "18446744073709551617", "0,4") "}", 4, -1, NULL, 0,
    "does not fit in 64 bits" },
  { "offsets: three numbers", "{" T ("a", "1", "0,4,8") "}", 4, -1, NULL, 0, "list of two integers" },
  { "offsets: negative", "{" T ("a", "1", "-4,0") "}", 4, -1, NULL, 0, "non-negative" },
  { "offsets: end before begin", "{" T ("a", "0", "4,0") "}", 4, -1, NULL, 0, "end before they begin" },
  { "size mismatch", "{" T ("a", "2", "0,4") "}", 4, -1, NULL, 0, "shape [2] of F32 is 8 bytes" },
  { "sub-byte partial", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, -1, NULL, 0,
    "whole bytes" },
  { "gap at the start", "{" T ("a", "1", "4,8") "}", 8, -1, NULL, 0, "gap" },
  { "gap between tensors", "{" T ("a", "1", "0,4") "," T ("b", "1", "8,12") "}", 12, -1, NULL, 0, "gap" },
  { "overlap", "{" T ("a", "2", "0,8") "," T ("b", "1", "4,8") "}", 8, -1, NULL, 0, "overlap" },
  { "same span twice", "{" T ("a", "1", "0,4") "," T ("b", "1", "0,4") "}", 4, -1, NULL, 0, "overlap" },
  { "truncated data", "{" T ("a", "4", "0,16") "}", 12, -1, NULL, 0, "truncated" },
  { "trailing bytes", "{" T ("a", "1", "0,4") "}", 5, -1, NULL, 0, "no tensor uses" },
  { "trailing bytes without tensors", "{}", 3, -1, NULL, 0, "no tensor uses" },
  { "metadata not an object", "{\"__metadata__\":[\"a\"]}", 0, -1, NULL, 0, "__metadata__ is not a JSON object" },
  { "metadata value a number", "{\"__metadata__\":{\"k\":1}}", 0, -1, NULL, 0, "entry “k” is not a string" },
  { "metadata value an object", "{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", 0, -1, NULL, 0, "not a string" },
  { "metadata value null", "{\"__metadata__\":{\"k\":null}}", 0, -1, NULL, 0, "not a string" },
  { "nested too deep", "{\"__metadata__\":{\"k\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}", 0, -1, NULL, 0,
    "levels deep" },
  { "NUL escaped in a name", "{" T ("a\\u0000b", "1", "0,4") "}", 4, -1, NULL, 0, "NUL" },
  { "lone surrogate", "{" T ("\\udc00", "1", "0,4") "}", 4, -1, NULL, 0, "surrogate" },
  { "unpaired high surrogate", "{" T ("\\ud800x", "1", "0,4") "}", 4, -1, NULL, 0, "surrogate" },
  { "raw control character", "{\"a\tb\":{}}", 0, -1, NULL, 0, "control character" },
  { "bad escape", "{\"a\\qb\":{}}", 0, -1, NULL, 0, "invalid escape" },
  { "unterminated string", "{\"abc", 0, -1, NULL, 0, "unterminated" },
  { "bare word", "{\"a\":nul}", 0, -1, NULL, 0, "unexpected character" },
  { "NaN", "{\"a\":NaN}", 0, -1, NULL, 0, "unexpected character" },
  { "plus sign", "{\"a\":+1}", 0, -1, NULL, 0, "unexpected character" },
  { "no digits after the point", "{\"a\":1.}", 0, -1, NULL, 0, "decimal point" },
  { "no exponent digits", "{\"a\":1e}", 0, -1, NULL, 0, "exponent" },
  { "missing colon", "{\"a\" 1}", 0, -1, NULL, 0, "':'" },
  { "missing comma", "{\"a\":1 \"b\":2}", 0, -1, NULL, 0, "','" },
};

static GBytes *
corrupt_bytes (const Corrupt *c)
{
  if (!c->json)
    return g_bytes_new (c->raw, c->raw_len);
  g_autoptr (GByteArray) b = g_byte_array_new ();
  guint64 n = GUINT64_TO_LE (c->n_override >= 0 ? (guint64)c->n_override : strlen (c->json));
  g_byte_array_append (b, (const guint8 *)&n, 8);
  g_byte_array_append (b, (const guint8 *)c->json, strlen (c->json));
  for (gssize i = 0; i < c->data_len; i++)
    g_byte_array_append (b, (const guint8 *)"\0", 1);
  return g_byte_array_free_to_bytes (g_steal_pointer (&b));
}

static void
test_corrupt (void)
{
  use_subdir ("corrupt");
  for (guint i = 0; i < G_N_ELEMENTS (corrupt); i++)
    {
      const Corrupt *c = &corrupt[i];
      g_autoptr (GBytes) bytes = corrupt_bytes (c);
      g_autofree char *name = g_strdup_printf ("corrupt-%02u.safetensors", i);
      g_autofree char *path = tmp_path (name);
      g_assert_true (g_file_set_contents (path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), NULL));

      g_autoptr (GError) error = NULL;
      g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
      if (st || !error || !g_error_matches (error, DL_ERROR, DL_ERROR_INVALID_FILE) || !strstr (error->message, path) ||
          !strstr (error->message, c->expect))
        {
          g_test_message ("case “%s”: want an error with “%s”, got: %s", c->what, c->expect,
                          error ? error->message : "(opened)");
          g_test_fail ();
        }
      else
        g_test_message ("%s -> %s", c->what, error->message);
      /* the same through the in-memory entry point */
      g_clear_error (&error);
      g_autoptr (DlSafetensors) st2 = dl_safetensors_open_bytes (bytes, "memory-copy", &error);
      g_assert_null (st2);
      g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
      g_unlink (path);
    }
}

/* Valid corner cases the reference reader accepts. */
static void
test_accepts (void)
{
  use_subdir ("accepts");
  static const Corrupt ok[] = {
    { "empty object", "{}", 0, -1, NULL, 0, NULL },
    { "leading whitespace", "  \n\t{" T ("a", "1", "0,4") "}", 4, -1, NULL, 0, NULL },
    { "trailing padding", "{" T ("a", "1", "0,4") "}       ", 4, -1, NULL, 0, NULL },
    { "zero-size tensors", "{" T ("e", "0,5", "4,4") "," T ("a", "1", "0,4") "," T ("z", "3,0", "4,4") "}", 4, -1, NULL,
      0, NULL },
    { "scalar", "{" T ("s", "", "0,4") "}", 4, -1, NULL, 0, NULL },
    { "offsets out of header order", "{" T ("b", "1", "4,8") "," T ("a", "1", "0,4") "}", 8, -1, NULL, 0, NULL },
    { "escaped names", "{" T ("\\u00e9\\n\\\"\\ud83d\\ude00", "1", "0,4") "}", 4, -1, NULL, 0, NULL },
    { "empty metadata", "{\"__metadata__\":{}}", 0, -1, NULL, 0, NULL },
    { "F4 pair", "{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1, -1, NULL, 0, NULL },
    { "F6 quad", "{\"a\":{\"dtype\":\"F6_E3M2\",\"shape\":[4],\"data_offsets\":[0,3]}}", 3, -1, NULL, 0, NULL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_autoptr (GBytes) bytes = corrupt_bytes (&ok[i]);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlSafetensors) st = dl_safetensors_open_bytes (bytes, ok[i].what, &error);
      g_assert_no_error (error);
    }
  g_autoptr (GBytes) esc = corrupt_bytes (&ok[6]);
  g_autoptr (DlSafetensors) st = dl_safetensors_open_bytes (esc, "escaped", NULL);
  g_assert_nonnull (st);
  if (st)
    g_assert_nonnull (dl_safetensors_find (st, "é\n\"😀"));
  g_autoptr (GBytes) ord = corrupt_bytes (&ok[5]);
  g_autoptr (DlSafetensors) so = dl_safetensors_open_bytes (ord, "order", NULL);
  if (so)
    {
      /* header order is kept, and each tensor points at its own span */
      g_assert_cmpstr (dl_safetensors_get_tensor (so, 0)->name, ==, "b");
      g_assert_true (dl_safetensors_get_tensor (so, 0)->data == dl_safetensors_get_tensor (so, 1)->data + 4);
    }
}

/* The fuzzer's seed corpus: valid-* files open, bad-* files are refused
 * (crash-* files, past fuzzer finds, are replayed by fuzz-corpus-safetensors). */
static void
test_seed_corpus (void)
{
  use_subdir ("seed-corpus");
  g_autofree char *dir = g_build_filename (DL_FUZZ_CORPUS_DIR, "corpus-safetensors", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  guint valid = 0, bad = 0;
  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
      if (g_str_has_prefix (name, "valid-"))
        {
          g_assert_no_error (error);
          valid++;
        }
      else if (g_str_has_prefix (name, "bad-"))
        {
          g_assert_null (st);
          g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
          bad++;
        }
    }
  g_assert_cmpuint (valid, >=, 5);
  g_assert_cmpuint (bad, >=, 5);
}

/* Something that is not a file at all. */
static void
test_open_errors (void)
{
  use_subdir ("open_errors");
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = tmp_path ("missing.safetensors");
  g_assert_null (dl_safetensors_open (missing, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);
  g_assert_null (dl_safetensors_open (tmp_dir, &error));
  g_assert_nonnull (error);
  if (error)
    g_assert_nonnull (strstr (error->message, tmp_dir));
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  base_tmp_dir = g_dir_make_tmp ("dl-test-safetensors-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  dl_test_add ("/io/safetensors/round-trip", test_round_trip);
  dl_test_add ("/io/safetensors/exact-bytes", test_exact_bytes);
  dl_test_add ("/io/safetensors/layout", test_layout_random);
  dl_test_add ("/io/safetensors/golden-files", test_golden_files);
  dl_test_add ("/io/safetensors/read-f32-dtypes", test_read_f32_dtypes);
  dl_test_add ("/io/safetensors/upload", test_upload);
  dl_test_add ("/io/safetensors/writer-errors", test_writer_errors);
  dl_test_add ("/io/safetensors/corrupt", test_corrupt);
  dl_test_add ("/io/safetensors/accepts", test_accepts);
  dl_test_add ("/io/safetensors/open-errors", test_open_errors);
  dl_test_add ("/io/safetensors/seed-corpus", test_seed_corpus);
  int ret = dl_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  g_free (tmp_dir);
  return ret;
}
