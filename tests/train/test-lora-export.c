/* LoRA export as kohya sd-scripts writes it: the file read back by our reader,
 * diffusers' kohya rule, the sshs_* hashes against values computed here from the
 * file bytes and against known answers, the base-model hashes, Python's float
 * repr, and the ss_* / modelspec.* metadata of a sample run. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "dl-half.h"
#include "io/dl-model-hash.h"
#include "io/dl-safetensors.h"
#include "nn/dl-lora-file.h"
#include "train/dl-lora-export.h"
#include "train/dl-train-metadata.h"

static char *tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (tmp_dir, name, NULL);
}

static GBytes *
read_file (const char *path)
{
  char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &data, &len, &error));
  g_assert_no_error (error);
  return g_bytes_new_take (data, len);
}

static char *
sha256_hex (const guint8 *data, gsize len)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
}

/* ---- Python's float repr ---- */

static const struct
{
  guint64 bits;
  const char *repr;
} float_cases[] = {
  /* from CPython 3 repr() */
  { 0x3f1a36e2eb1c432dull, "0.0001" },
  { 0x3ee4f8b588e368f1ull, "1e-05" },
  { 0x3ff0000000000000ull, "1.0" },
  { 0x3fb999999999999aull, "0.1" },
  { 0x3fd3333333333334ull, "0.30000000000000004" },
  { 0x3fd5555555555555ull, "0.3333333333333333" },
  { 0x3fe5555555555555ull, "0.6666666666666666" },
  { 0x4059000000000000ull, "100.0" },
  { 0x430c6bf526340000ull, "1000000000000000.0" },
  { 0x4341c37937e08000ull, "1e+16" },
  { 0x4341c37937e07fffull, "9999999999999998.0" },
  { 0x4341c37937e08001ull, "1.0000000000000002e+16" },
  { 0x419d6f34547df3b6ull, "123456789.123" },
  { 0x3e8421f5f40d8376ull, "1.5e-07" },
  { 0x0000000000000001ull, "5e-324" },
  { 0x7fefffffffffffffull, "1.7976931348623157e+308" },
  { 0x0010000000000000ull, "2.2250738585072014e-308" },
  { 0x8000000000000000ull, "-0.0" },
  { 0x0000000000000000ull, "0.0" },
  { 0x3fe0000000000000ull, "0.5" },
  { 0x3eff75104d551d69ull, "3e-05" },
  { 0x4480f0cf064dd592ull, "1e+22" },
  { 0x44b52d02c7e14af6ull, "1e+23" },
  { 0x43e0000000000000ull, "9.223372036854776e+18" },
  { 0x43b12210f47de981ull, "1.2345678901234568e+18" },
  { 0x3f50624dd2f1a9fcull, "0.001" },
  { 0x40c81cd6c8b43958ull, "12345.678" },
  { 0x54b249ad2594c37dull, "1e+100" },
  { 0x3ff199999999999aull, "1.1" },
  { 0x4011666666666666ull, "4.35" },
  { 0x3ec0c6f7a0b5ed8dull, "2e-06" },
  { 0x3f0a36e2eb1c432dull, "5e-05" },
  { 0x3f23a92a30553261ull, "0.00015" },
  { 0x41d999a66007e6b4ull, "1718000000.123456" },
  { 0x41d999a660000000ull, "1718000000.0" },
  { 0xc004000000000000ull, "-2.5" },
  { 0x3d30000000000000ull, "5.684341886080802e-14" },
  { 0x7fe0000000000000ull, "8.98846567431158e+307" },
  { 0x3e7ad7f29abcaf48ull, "1e-07" },
  { 0x3f18e757928e0c9eull, "9.5e-05" },
  { 0x3fefffffffffffffull, "0.9999999999999999" },
  { 0x3ff0000000000001ull, "1.0000000000000002" },
  { 0x40effc0000000000ull, "65504.0" },
  { 0x3f33a92a30553262ull, "0.00030000000000000003" },
  { 0x3f847ae147ae147bull, "0.01" },
  { 0x3fc3333333333333ull, "0.15" },
  { 0x3c36b082c2148b8eull, "1.23e-18" },
  { 0x7ff0000000000000ull, "inf" },
  { 0xfff0000000000000ull, "-inf" },
  { 0x7ff8000000000000ull, "nan" },
  { 0xf2a74de452e6b438ull, "-1.989032661366619e+244" },
  { 0x6513270e269e0d37ull, "7.761117632285041e+178" },
  { 0x0c5c7fd0a6a3a450ull, "3.980498358697587e-249" },
  { 0xd23f0824128b2f33ull, "-1.5432835417340557e+88" },
  { 0x1818e811892f902bull, "1.3647584518757569e-192" },
  { 0x9531985d5d9dc9f8ull, "-1.3701135617873088e-206" },
  { 0x36f675cc81e74ef5ull, "6.294675241195386e-44" },
  { 0x3d9c172411e20b8full, "6.387016158513563e-12" },
  { 0x95e60af593bd04cfull, "-3.51527970626667e-203" },
  { 0x3898d190f9ebdaccull, "4.6678633181812096e-36" },
  { 0x2217beaddbc496cbull, "1.9015657400796622e-144" },
  { 0xc0863beb2db6a0d4ull, "-711.4898332851249" },
  { 0xc077f094e59ef88eull, "-383.03635179613127" },
  { 0x4083c20591240162ull, "632.2527182400629" },
  { 0xc083f460bf71e37bull, "-638.547240152125" },
  { 0x4064666914d9a290ull, "163.20032732493246" },
  { 0x40715d3b232f7becull, "277.826937852368" },
};

static void
test_float_repr (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (float_cases); i++)
    {
      double v;
      memcpy (&v, &float_cases[i].bits, 8);
      g_autofree char *got = dl_python_float_repr (v);
      if (g_strcmp0 (got, float_cases[i].repr) != 0)
        g_test_message ("bits %016" G_GINT64_MODIFIER "x", float_cases[i].bits);
      g_assert_cmpstr (got, ==, float_cases[i].repr);
    }
  /* Every repr reads back exactly, with at most 17 significant digits. */
  GRand *rand = g_rand_new_with_seed (20240610);
  for (int i = 0; i < 20000; i++)
    {
      guint64 bits = ((guint64)g_rand_int (rand) << 32) | g_rand_int (rand);
      double v;
      memcpy (&v, &bits, 8);
      if (!isfinite (v))
        continue;
      g_autofree char *got = dl_python_float_repr (v);
      g_assert_true (g_ascii_strtod (got, NULL) == v);
      int digits = 0;
      gboolean leading = TRUE;
      for (const char *p = got; *p && *p != 'e'; p++)
        if (g_ascii_isdigit (*p) && !(leading && *p == '0'))
          {
            digits++;
            leading = FALSE;
          }
      g_assert_cmpint (digits, <=, 17);
    }
  g_rand_free (rand);
}

static void
test_python_strings (void)
{
  g_auto (GStrv) tags = dl_python_caption_tags ("Cat, sitting , cat,, \t  , \x1c\xc2\xa0"
                                                "Blue Sky\xe3\x80\x80,ÉTÉ");
  g_autofree char *joined = g_strjoinv ("|", tags);
  g_assert_cmpstr (joined, ==, "cat|sitting|cat|blue sky|été");
  g_auto (GStrv) none = dl_python_caption_tags (" , ,");
  g_assert_cmpuint (g_strv_length (none), ==, 0);
  g_auto (GStrv) broken = dl_python_caption_tags ("ok, bad\xc3");
  g_autofree char *bj = g_strjoinv ("|", broken);
  g_assert_cmpstr (bj, ==, "ok|bad\xef\xbf\xbd");

  g_autoptr (GString) s = g_string_new (NULL);
  dl_python_json_string (s, "a\"b\\c\n\x01\x7f é😀");
  g_assert_cmpstr (s->str, ==, "\"a\\\"b\\\\c\\n\\u0001\\u007f \\u00e9\\ud83d\\ude00\"");
  g_string_truncate (s, 0);
  dl_python_json_string (s, "x\xc3");
  g_assert_cmpstr (s->str, ==, "\"x\\ufffd\"");
}

/* ---- the LoRA file ---- */

typedef struct
{
  DlLoraExportModule m[4];
  float *buffers[8];
} Sample;

static void
sample_clear (Sample *s)
{
  for (guint i = 0; i < G_N_ELEMENTS (s->buffers); i++)
    g_free (s->buffers[i]);
}

static void
set_module (Sample *s, int i, const char *name, int ndim, const int64_t *down, const int64_t *up, float alpha)
{
  DlLoraExportModule *m = &s->m[i];
  m->name = name;
  m->down_ndim = m->up_ndim = ndim;
  memcpy (m->down_shape, down, sizeof (int64_t) * ndim);
  memcpy (m->up_shape, up, sizeof (int64_t) * ndim);
  gsize nd = 1, nu = 1;
  for (int d = 0; d < ndim; d++)
    nd *= down[d], nu *= up[d];
  s->buffers[2 * i] = dl_test_random (nd, 100 + i, -0.5f, 0.5f);
  s->buffers[2 * i + 1] = dl_test_random (nu, 200 + i, -0.01f, 0.01f);
  m->down = s->buffers[2 * i];
  m->up = s->buffers[2 * i + 1];
  m->alpha = alpha;
}

static void
make_sample (Sample *s)
{
  memset (s, 0, sizeof *s);
  set_module (s, 0, "lora_te_text_model_encoder_layers_0_self_attn_q_proj", 2, (int64_t[]){ 4, 32 },
              (int64_t[]){ 32, 4 }, 2.0f);
  set_module (s, 1, "lora_unet_down_blocks_0_attentions_0_proj_in", 4, (int64_t[]){ 4, 16, 1, 1 },
              (int64_t[]){ 16, 4, 1, 1 }, 4.0f);
  set_module (s, 2, "lora_unet_down_blocks_0_resnets_0_conv1", 4, (int64_t[]){ 2, 8, 3, 3 }, (int64_t[]){ 8, 2, 1, 1 },
              1.0f);
  set_module (s, 3, "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k", 2, (int64_t[]){ 4, 24 },
              (int64_t[]){ 16, 4 }, 0.5f);
}

static float
round_to (float v, DlStDType dtype)
{
  return dtype == DL_ST_F16 ? dl_f16_to_f32 (dl_f32_to_f16 (v)) : v;
}

/* sha256 of everything after the 8-byte length and the header: parsed here. */
static char *
data_region_sha256 (GBytes *file)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (file, &len);
  g_assert_cmpuint (len, >=, 8);
  guint64 n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | p[i];
  g_assert_cmpuint (8 + n, <=, len);
  return sha256_hex (p + 8 + n, len - 8 - n);
}

static void
check_written (const char *path, const Sample *s, DlStDType dtype)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlLoraFile) f = dl_lora_file_open (path, &error);
  g_assert_no_error (error);
  if (!f)
    return;
  g_assert_cmpuint (dl_lora_file_get_n_modules (f), ==, 4);
  for (guint i = 0; i < 4; i++)
    {
      const DlLoraExportModule *want = &s->m[i];
      const DlLoraModule *got = NULL;
      for (guint j = 0; j < dl_lora_file_get_n_modules (f); j++)
        if (strcmp (dl_lora_file_get_module (f, j)->file_name, want->name) == 0)
          got = dl_lora_file_get_module (f, j);
      g_assert_nonnull (got);
      if (!got)
        continue;
      g_assert_cmpint (got->rank, ==, want->down_shape[0]);
      g_assert_cmpfloat (got->alpha, ==, want->alpha);
      g_assert_cmpint (got->conv, ==, want->down_ndim == 4);
      g_assert_cmpint (got->down->ndim, ==, want->down_ndim);
      g_assert_cmpint (got->up->ndim, ==, want->up_ndim);
      for (int d = 0; d < want->down_ndim; d++)
        {
          g_assert_cmpint (got->down->shape[d], ==, want->down_shape[d]);
          g_assert_cmpint (got->up->shape[d], ==, want->up_shape[d]);
        }
      g_assert_cmpint (got->down->dtype, ==, dtype);
      g_assert_cmpint (got->up->dtype, ==, dtype);
      DlSafetensors *st = dl_lora_file_get_safetensors (f);
      for (int which = 0; which < 2; which++)
        {
          const DlStTensor *t = which ? got->up : got->down;
          const float *src = which ? want->up : want->down;
          g_autofree float *v = dl_safetensors_read_f32 (st, t->name, NULL, &error);
          g_assert_no_error (error);
          for (int64_t k = 0; v && k < t->numel; k++)
            if (v[k] != round_to (src[k], dtype))
              {
                g_assert_cmpfloat (v[k], ==, round_to (src[k], dtype));
                break;
              }
        }
    }

  /* diffusers' rule for a kohya file: every key has the prefix and a suffix it
   * converts, the alpha is 0-dim, all one dtype */
  DlSafetensors *st = dl_lora_file_get_safetensors (f);
  g_assert_cmpuint (dl_safetensors_get_n_tensors (st), ==, 12);
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      g_assert_true (g_str_has_prefix (t->name, "lora_te_") || g_str_has_prefix (t->name, "lora_unet_"));
      g_assert_true (g_str_has_suffix (t->name, ".lora_down.weight") || g_str_has_suffix (t->name, ".lora_up.weight") ||
                     g_str_has_suffix (t->name, ".alpha"));
      if (g_str_has_suffix (t->name, ".alpha"))
        g_assert_cmpint (t->ndim, ==, 0);
      g_assert_cmpint (t->dtype, ==, dtype);
    }

  /* sshs_model_hash = sha256 of the data region of the very file */
  g_autoptr (GBytes) bytes = read_file (path);
  g_autofree char *want_hash = data_region_sha256 (bytes);
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "sshs_model_hash"), ==, want_hash);
  const guint8 *p = g_bytes_get_data (bytes, NULL);
  g_assert_true (p[8] == '{' && p[9] == '"');
}

static GHashTable *
str_table (const char *first_key, ...)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  va_list ap;
  va_start (ap, first_key);
  for (const char *k = first_key; k; k = va_arg (ap, const char *))
    g_hash_table_insert (t, g_strdup (k), g_strdup (va_arg (ap, const char *)));
  va_end (ap);
  return t;
}

static void
test_export_round_trip (void)
{
  Sample s;
  make_sample (&s);
  g_autoptr (GHashTable) meta = str_table ("ss_network_dim", "4", "ss_output_name", "sample", "modelspec.title",
                                           "Sample", "sshs_model_hash", "stale", NULL);
  DlStDType dtypes[] = { DL_ST_F16, DL_ST_F32 };
  for (guint k = 0; k < G_N_ELEMENTS (dtypes); k++)
    {
      g_autofree char *path = tmp_path (k ? "sample-f32.safetensors" : "sample-f16.safetensors");
      g_autoptr (GError) error = NULL;
      g_assert_true (dl_lora_export_write (path, s.m, 4, dtypes[k], meta, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (g_hash_table_size (meta), ==, 4); /* the caller's table is left alone */
      g_assert_cmpstr (g_hash_table_lookup (meta, "sshs_model_hash"), ==, "stale");
      check_written (path, &s, dtypes[k]);
      g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
      g_assert_no_error (error);
      if (!st)
        continue;
      g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_output_name"), ==, "sample");
      g_assert_cmpstr (dl_safetensors_get_metadata (st, "modelspec.title"), ==, "Sample");
      g_assert_cmpuint (strlen (dl_safetensors_get_metadata (st, "sshs_model_hash")), ==, 64);
      /* data region < 1 MiB: the legacy hash covers nothing, sha256("") */
      g_assert_cmpstr (dl_safetensors_get_metadata (st, "sshs_legacy_hash"), ==, "e3b0c442");
    }
  /* without metadata the file still gets the two hashes */
  g_autofree char *bare = tmp_path ("bare.safetensors");
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_lora_export_write (bare, s.m, 4, DL_ST_F16, NULL, &error));
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (bare, &error);
  g_assert_no_error (error);
  if (st)
    {
      g_autoptr (GPtrArray) keys = dl_safetensors_get_metadata_keys (st);
      g_assert_cmpuint (keys->len, ==, 2);
    }
  sample_clear (&s);
}

/* Exporting in the other precision: f32 -> f16 gives the very file written in f16 (same tensors, metadata,
 * hashes computed again), f16 -> f32 the f16 values exactly */
static void
test_export_convert (void)
{
  Sample s;
  make_sample (&s);
  g_autoptr (GHashTable) meta = str_table ("ss_network_dim", "4", "ss_output_name", "sample", NULL);
  g_autofree char *f32 = tmp_path ("convert-f32.safetensors");
  g_autofree char *f16 = tmp_path ("convert-f16.safetensors");
  g_autofree char *converted = tmp_path ("convert-to-f16.safetensors");
  g_autofree char *back = tmp_path ("convert-back-f32.safetensors");
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_lora_export_write (f32, s.m, 4, DL_ST_F32, meta, &error));
  g_assert_true (dl_lora_export_write (f16, s.m, 4, DL_ST_F16, meta, &error));
  g_assert_true (dl_lora_export_convert (f32, converted, DL_ST_F16, &error));
  g_assert_no_error (error);
  g_autofree char *want = NULL, *got = NULL;
  gsize want_len, got_len;
  g_assert_true (g_file_get_contents (f16, &want, &want_len, NULL));
  g_assert_true (g_file_get_contents (converted, &got, &got_len, NULL));
  g_assert_cmpmem (got, got_len, want, want_len);

  g_assert_true (dl_lora_export_convert (f16, back, DL_ST_F32, &error));
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) a = dl_safetensors_open (f16, &error);
  g_autoptr (DlSafetensors) b = dl_safetensors_open (back, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_safetensors_get_n_tensors (a), ==, dl_safetensors_get_n_tensors (b));
  for (guint i = 0; i < dl_safetensors_get_n_tensors (a); i++)
    {
      const DlStTensor *ta = dl_safetensors_get_tensor (a, i);
      const DlStTensor *tb = dl_safetensors_find (b, ta->name);
      g_assert_nonnull (tb);
      g_assert_cmpint (tb->dtype, ==, DL_ST_F32);
      int64_t n;
      g_autofree float *va = dl_safetensors_read_f32 (a, ta->name, &n, &error);
      g_autofree float *vb = dl_safetensors_read_f32 (b, ta->name, &n, &error);
      g_assert_cmpmem (va, n * 4, vb, n * 4);
    }
  g_assert_cmpstr (dl_safetensors_get_metadata (b, "ss_output_name"), ==, "sample");
  g_assert_cmpstr (dl_safetensors_get_metadata (b, "sshs_model_hash"), !=,
                   dl_safetensors_get_metadata (a, "sshs_model_hash"));

  /* not a LoRA: said, nothing written */
  g_autofree char *nothing = tmp_path ("convert-nothing.safetensors");
  g_assert_true (g_file_set_contents (nothing, "\x02\0\0\0\0\0\0\0{}", 10, NULL));
  g_autofree char *out = tmp_path ("convert-out.safetensors");
  g_assert_false (dl_lora_export_convert (nothing, out, DL_ST_F16, &error));
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "not a kohya LoRA"));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  sample_clear (&s);
}

/* A LoRA bigger than 0x110000 bytes: the legacy hash against a known answer and
 * against the bytes of a file laid out here with only the ss_* keys. */
static void
test_export_hashes (void)
{
  const char *name = "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_2";
  gsize nd = 64 * 5120, nu = 1280 * 64;
  g_autofree float *down = g_new (float, nd);
  g_autofree float *up = g_new (float, nu);
  for (gsize i = 0; i < nd; i++)
    down[i] = (float)((gint64)((i * 7919) % 2001) - 1000) / 1024.0f;
  for (gsize i = 0; i < nu; i++)
    up[i] = (float)((gint64)((i * 104729) % 999) - 499) / 2048.0f;
  DlLoraExportModule m = { name, 2, { 64, 5120 }, down, 2, { 1280, 64 }, up, 32.0f };
  g_autoptr (GHashTable) meta =
    str_table ("ss_network_dim", "64", "ss_output_name", "big", "modelspec.title", "Big", NULL);
  g_autofree char *path = tmp_path ("big.safetensors");
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_lora_export_write (path, &m, 1, DL_ST_F32, meta, &error));
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (!st)
    return;
  /* known answers: kohya's precalculate_safetensors_hashes on these tensors
   * (computed with a separate implementation of the reference serializer) */
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "sshs_model_hash"), ==,
                   "cb7020caa9dc40af7fab9517eb13dcdf94053433a54609cfdaba275da0836e32");
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "sshs_legacy_hash"), ==, "d061f563");

  /* the same from the written file: its data region, behind a header with only
   * the ss_* keys, built here */
  g_autoptr (GBytes) bytes = read_file (path);
  gsize flen;
  const guint8 *p = g_bytes_get_data (bytes, &flen);
  guint64 n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | p[i];
  const guint8 *data = p + 8 + n;
  gsize dlen = flen - 8 - n;
  g_autofree char *model = sha256_hex (data, dlen);
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "sshs_model_hash"), ==, model);
  g_autoptr (GString) h = g_string_new ("{\"__metadata__\":{\"ss_network_dim\":\"64\",\"ss_output_name\":\"big\"}");
  g_string_append_printf (h, ",\"%s.alpha\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}", name);
  g_string_append_printf (h,
                          ",\"%s.lora_down.weight\":{\"dtype\":\"F32\",\"shape\":[64,5120],"
                          "\"data_offsets\":[4,%" G_GSIZE_FORMAT "]}",
                          name, 4 + nd * 4);
  g_string_append_printf (h,
                          ",\"%s.lora_up.weight\":{\"dtype\":\"F32\",\"shape\":[1280,64],"
                          "\"data_offsets\":[%" G_GSIZE_FORMAT ",%" G_GSIZE_FORMAT "]}}",
                          name, 4 + nd * 4, 4 + nd * 4 + nu * 4);
  while (h->len % 8)
    g_string_append_c (h, ' ');
  g_autoptr (GByteArray) file = g_byte_array_new ();
  guint64 hl = h->len;
  for (int i = 0; i < 8; i++)
    {
      guint8 b = (guint8)(hl >> (8 * i));
      g_byte_array_append (file, &b, 1);
    }
  g_byte_array_append (file, (const guint8 *)h->str, h->len);
  g_byte_array_append (file, data, dlen);
  g_assert_cmpuint (file->len, >, 0x110000);
  g_autofree char *legacy = sha256_hex (file->data + 0x100000, 0x10000);
  legacy[8] = '\0';
  g_assert_cmpstr (dl_safetensors_get_metadata (st, "sshs_legacy_hash"), ==, legacy);

  /* with no ss_* keys the serializer still writes an empty "__metadata__" */
  g_autofree char *mh = NULL, *lh = NULL;
  g_autoptr (DlSafetensorsWriter) w2 = dl_safetensors_writer_new ();
  g_autofree char *a = g_strconcat (name, ".alpha", NULL), *dn = g_strconcat (name, ".lora_down.weight", NULL),
                  *un = g_strconcat (name, ".lora_up.weight", NULL);
  g_assert_true (dl_safetensors_writer_add_f32 (w2, a, DL_ST_F32, 0, NULL, &m.alpha, NULL));
  g_assert_true (dl_safetensors_writer_add_f32 (w2, dn, DL_ST_F32, 2, m.down_shape, down, NULL));
  g_assert_true (dl_safetensors_writer_add_f32 (w2, un, DL_ST_F32, 2, m.up_shape, up, NULL));
  g_autoptr (GHashTable) only_user = str_table ("modelspec.title", "Big", NULL);
  dl_lora_export_hashes (w2, only_user, &mh, &lh);
  g_assert_cmpstr (lh, ==, "88e29d92");
  g_assert_cmpstr (mh, ==, "cb7020caa9dc40af7fab9517eb13dcdf94053433a54609cfdaba275da0836e32");
}

static void
test_export_errors (void)
{
  Sample s;
  make_sample (&s);
  g_autofree char *path = tmp_path ("bad.safetensors");
  const char *cases[] = { "no prefix", "dot", "rank", "up kernel", "nan", "f16 overflow", "alpha", "duplicate" };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      DlLoraExportModule m[4];
      memcpy (m, s.m, sizeof m);
      g_autofree float *copy = g_memdup2 (s.m[0].down, sizeof (float) * 4 * 32);
      m[0].down = copy;
      switch (c)
        {
        case 0:
          m[1].name = "unet_down_blocks_0_attentions_0_proj_in";
          break;
        case 1:
          m[1].name = "lora_unet_down_blocks.0";
          break;
        case 2:
          m[3].up_shape[1] = 3;
          break;
        case 3:
          m[2].up_shape[2] = m[2].up_shape[3] = 3;
          break;
        case 4:
          copy[5] = NAN;
          break;
        case 5:
          copy[7] = 70000.0f;
          break;
        case 6:
          m[2].alpha = 0.0f;
          break;
        case 7:
          m[3].name = m[0].name;
          break;
        }
      g_autoptr (GError) error = NULL;
      g_assert_false (dl_lora_export_write (path, m, 4, DL_ST_F16, NULL, &error));
      g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
      if (error)
        {
          g_test_message ("%s: %s", cases[c], error->message);
          g_assert_true (strstr (error->message, "bad.safetensors") != NULL);
        }
      g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
    }
  /* 70000 is fine in F32 */
  DlLoraExportModule m[4];
  memcpy (m, s.m, sizeof m);
  g_autofree float *copy = g_memdup2 (s.m[0].down, sizeof (float) * 4 * 32);
  copy[7] = 70000.0f;
  m[0].down = copy;
  g_assert_true (dl_lora_export_write (path, m, 4, DL_ST_F32, NULL, NULL));
  sample_clear (&s);
}

/* ---- base model hashes ---- */

static void
test_model_hash (void)
{
  gsize len = 3 * 1024 * 1024 + 12345;
  g_autofree guint8 *buf = g_malloc (len);
  for (gsize i = 0; i < len; i++)
    buf[i] = (guint8)((i * 31 + (i >> 11) * 7 + 5) & 0xff);
  g_autofree char *path = tmp_path ("model.safetensors");
  g_assert_true (g_file_set_contents (path, (const char *)buf, len, NULL));

  g_autoptr (GError) error = NULL;
  g_autofree char *full = dl_model_hash_sha256 (path, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *want_full = sha256_hex (buf, len);
  g_assert_cmpstr (full, ==, want_full);
  g_autofree char *legacy = dl_model_hash_legacy (path, NULL, &error);
  g_assert_no_error (error);
  g_autofree char *want_legacy = sha256_hex (buf + 0x100000, 0x10000);
  want_legacy[8] = '\0';
  g_assert_cmpstr (legacy, ==, want_legacy);
  g_autofree char *shorthash = dl_model_hash_short (full);
  g_assert_cmpuint (strlen (shorthash), ==, 10);
  g_assert_true (g_str_has_prefix (full, shorthash));

  /* the same through sha256sum, when the system has it */
  g_autofree char *tool = g_find_program_in_path ("sha256sum");
  if (tool)
    {
      const char *argv[] = { tool, path, NULL };
      g_autofree char *out = NULL;
      g_assert_true (g_spawn_sync (NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, NULL, NULL));
      g_assert_true (out && g_str_has_prefix (out, full));
    }

  DlModelHashes h;
  g_assert_true (dl_model_hashes_compute (path, &h, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (h.name, ==, "model.safetensors");
  g_assert_cmpstr (h.legacy, ==, want_legacy);
  g_assert_cmpstr (h.sha256, ==, want_full);
  g_assert_false (h.is_folder);
  dl_model_hashes_clear (&h);

  /* a file shorter than 1 MiB: the old hash covers nothing */
  g_autofree char *small = tmp_path ("small.ckpt");
  g_assert_true (g_file_set_contents (small, "abc", 3, NULL));
  g_autofree char *sl = dl_model_hash_legacy (small, NULL, &error);
  g_assert_cmpstr (sl, ==, "e3b0c442");
  g_autofree char *sf = dl_model_hash_sha256 (small, NULL, &error);
  g_assert_cmpstr (sf, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  /* a diffusers folder: its name, no hashes */
  g_autofree char *folder = tmp_path ("my-model");
  g_assert_cmpint (g_mkdir_with_parents (folder, 0700), ==, 0);
  g_autofree char *slashed = g_strconcat (folder, "/", NULL);
  g_assert_true (dl_model_hashes_compute (slashed, &h, NULL, &error));
  g_assert_cmpstr (h.name, ==, "my-model");
  g_assert_null (h.legacy);
  g_assert_null (h.sha256);
  g_assert_true (h.is_folder);
  dl_model_hashes_clear (&h);

  /* cancelled, missing */
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  g_autofree char *none = dl_model_hash_sha256 (path, cancel, &error);
  g_assert_null (none);
  g_assert_error (error, DL_ERROR, DL_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (dl_model_hashes_compute (path, &h, cancel, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_CANCELLED);
  g_clear_error (&error);
  g_autofree char *missing = tmp_path ("missing.safetensors");
  g_assert_false (dl_model_hashes_compute (missing, &h, NULL, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_IO);
  if (error)
    g_assert_true (strstr (error->message, "missing.safetensors") != NULL);
}

/* ---- metadata ---- */

static const char *const cat_captions[] = { "Cat, sitting , cat", " Cat,outdoors,", "ÉTÉ, naïve", NULL };
static const char *const person_captions[] = { "person", NULL };

static void
sample_facts (DlTrainFacts *f, DlTrainFactsDir *dirs, DlTrainFactsBucket *buckets)
{
  dl_train_facts_init (f);
  f->session_id = 1234567890;
  f->started_at = 1718000000.123456;
  f->finished_at = 1718003600.5;
  f->output_name = "my-lora";
  f->epoch = 10;
  f->steps = 500;
  f->num_epochs = 10;
  f->max_train_steps = 500;
  f->num_batches_per_epoch = 50;
  f->num_train_images = 100;
  f->num_reg_images = 20;
  f->sd_model_name = "v1-5-pruned-emaonly.safetensors";
  f->sd_model_hash = "81761151";
  f->new_sd_model_hash = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa";
  f->learning_rate = 1e-4;
  f->text_encoder_lr = 5e-5;
  f->optimizer = "torch.optim.adamw.AdamW";
  f->optimizer_args = "weight_decay=0.01";
  f->lr_scheduler = "cosine";
  f->lr_warmup_steps = 0;
  f->max_grad_norm = 1.0;
  f->gradient_accumulation_steps = 2;
  f->gradient_checkpointing = TRUE;
  f->mixed_precision = "fp16";
  f->seed = 42;
  f->batch_size_per_device = 2;
  f->network_dim = 16;
  f->network_alpha = 8;
  f->conv_dim = 4;
  f->conv_alpha = 1;
  f->clip_skip = 2;
  f->noise_offset = 0.05;
  f->min_snr_gamma = 5;
  f->cache_latents = TRUE;
  f->caption_dropout_rate = 0;
  f->caption_dropout_every_n_epochs = 0;
  f->caption_tag_dropout_rate = 0;
  f->flip_aug = TRUE;
  f->shuffle_caption = TRUE;
  f->keep_tokens = 1;
  f->resolution_width = 512;
  f->resolution_height = 768;
  f->enable_bucket = TRUE;
  f->min_bucket_reso = 256;
  f->max_bucket_reso = 1024;
  buckets[0] = (DlTrainFactsBucket){ 3, 512, 768, 60 };
  buckets[1] = (DlTrainFactsBucket){ 5, 576, 704, 40 };
  f->buckets = buckets;
  f->n_buckets = 2;
  f->mean_img_ar_error = 0.0123;
  dirs[0] = (DlTrainFactsDir){ "10_cat", 10, 8, FALSE, cat_captions };
  dirs[1] = (DlTrainFactsDir){ "1_person", 1, 20, TRUE, person_captions };
  f->dirs = dirs;
  f->n_dirs = 2;
  f->implementation_version = "dreamloom/0.1";
}

#define ASSERT_KEY(t, k, v) g_assert_cmpstr (g_hash_table_lookup ((t), (k)), ==, (v))

static void
test_metadata_lora (void)
{
  DlTrainFacts f;
  DlTrainFactsDir dirs[2];
  DlTrainFactsBucket buckets[2];
  sample_facts (&f, dirs, buckets);
  g_autoptr (GHashTable) t = dl_train_metadata_lora (&f);

  ASSERT_KEY (t, "ss_v2", "False");
  ASSERT_KEY (t, "ss_base_model_version", "sd_v1");
  ASSERT_KEY (t, "ss_network_module", "networks.lora");
  ASSERT_KEY (t, "ss_network_dim", "16");
  ASSERT_KEY (t, "ss_network_alpha", "8.0");
  ASSERT_KEY (t, "ss_network_args", "{\"conv_dim\": \"4\", \"conv_alpha\": \"1.0\", \"dropout\": null}");
  ASSERT_KEY (t, "ss_network_dropout", "None");
  ASSERT_KEY (t, "ss_session_id", "1234567890");
  ASSERT_KEY (t, "ss_training_started_at", "1718000000.123456");
  ASSERT_KEY (t, "ss_training_finished_at", "1718003600.5");
  ASSERT_KEY (t, "ss_output_name", "my-lora");
  ASSERT_KEY (t, "ss_training_comment", "None");
  ASSERT_KEY (t, "ss_epoch", "10");
  ASSERT_KEY (t, "ss_steps", "500");
  ASSERT_KEY (t, "ss_num_train_images", "100");
  ASSERT_KEY (t, "ss_num_reg_images", "20");
  ASSERT_KEY (t, "ss_learning_rate", "0.0001");
  ASSERT_KEY (t, "ss_text_encoder_lr", "5e-05");
  ASSERT_KEY (t, "ss_unet_lr", "None");
  ASSERT_KEY (t, "ss_optimizer", "torch.optim.adamw.AdamW(weight_decay=0.01)");
  ASSERT_KEY (t, "ss_lr_scheduler", "cosine");
  ASSERT_KEY (t, "ss_lr_warmup_steps", "0");
  ASSERT_KEY (t, "ss_max_grad_norm", "1.0");
  ASSERT_KEY (t, "ss_gradient_checkpointing", "True");
  ASSERT_KEY (t, "ss_gradient_accumulation_steps", "2");
  ASSERT_KEY (t, "ss_total_batch_size", "4");
  ASSERT_KEY (t, "ss_mixed_precision", "fp16");
  ASSERT_KEY (t, "ss_seed", "42");
  ASSERT_KEY (t, "ss_clip_skip", "2");
  ASSERT_KEY (t, "ss_noise_offset", "0.05");
  ASSERT_KEY (t, "ss_min_snr_gamma", "5.0");
  ASSERT_KEY (t, "ss_cache_latents", "True");
  ASSERT_KEY (t, "ss_caption_dropout_rate", "0.0");
  ASSERT_KEY (t, "ss_caption_dropout_every_n_epochs", "0");
  ASSERT_KEY (t, "ss_flip_aug", "True");
  ASSERT_KEY (t, "ss_random_crop", "False");
  ASSERT_KEY (t, "ss_shuffle_caption", "True");
  ASSERT_KEY (t, "ss_keep_tokens", "1");
  ASSERT_KEY (t, "ss_resolution", "(512, 768)");
  ASSERT_KEY (t, "ss_enable_bucket", "True");
  ASSERT_KEY (t, "ss_min_bucket_reso", "256");
  ASSERT_KEY (t, "ss_max_bucket_reso", "1024");
  ASSERT_KEY (t, "ss_bucket_info",
              "{\"buckets\": {\"3\": {\"resolution\": [512, 768], \"count\": 60}, \"5\": {\"resolution\": [576, 704], "
              "\"count\": 40}}, \"mean_img_ar_error\": 0.0123}");
  ASSERT_KEY (t, "ss_dataset_dirs", "{\"10_cat\": {\"n_repeats\": 10, \"img_count\": 8}}");
  ASSERT_KEY (t, "ss_reg_dataset_dirs", "{\"1_person\": {\"n_repeats\": 1, \"img_count\": 20}}");
  ASSERT_KEY (t, "ss_tag_frequency",
              "{\"10_cat\": {\"cat\": 3, \"sitting\": 1, \"outdoors\": 1, \"\\u00e9t\\u00e9\": 1, \"na\\u00efve\": 1}, "
              "\"1_person\": {\"person\": 1}}");
  ASSERT_KEY (t, "ss_sd_model_name", "v1-5-pruned-emaonly.safetensors");
  ASSERT_KEY (t, "ss_sd_model_hash", "81761151");
  ASSERT_KEY (t, "modelspec.sai_model_spec", "1.0.1");
  ASSERT_KEY (t, "modelspec.architecture", "stable-diffusion-v1/lora");
  ASSERT_KEY (t, "modelspec.implementation", "diffusers");
  ASSERT_KEY (t, "modelspec.title", "my-lora");
  ASSERT_KEY (t, "modelspec.resolution", "512x768");
  ASSERT_KEY (t, "modelspec.date", "2024-06-10T07:13:20"); /* TZ=UTC, set in main */
  ASSERT_KEY (t, "modelspec.prediction_type", "epsilon");
  ASSERT_KEY (t, "modelspec.encoder_layer", "2");
  ASSERT_KEY (t, "modelspec.implementation_version", "dreamloom/0.1");
  g_assert_false (g_hash_table_contains (t, "modelspec.author"));

  /* every key is ss_* or modelspec.*, every value valid UTF-8 */
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, t);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      g_assert_true (g_str_has_prefix (k, "ss_") || g_str_has_prefix (k, "modelspec."));
      g_assert_true (g_utf8_validate (v, -1, NULL));
    }

  /* SD2 v-prediction, nothing else known */
  DlTrainFacts u;
  dl_train_facts_init (&u);
  u.v2 = TRUE;
  u.v_parameterization = TRUE;
  g_autoptr (GHashTable) t2 = dl_train_metadata_lora (&u);
  ASSERT_KEY (t2, "ss_v2", "True");
  ASSERT_KEY (t2, "ss_base_model_version", "sd_v2_v");
  ASSERT_KEY (t2, "ss_network_dim", "None");
  ASSERT_KEY (t2, "ss_seed", "None");
  ASSERT_KEY (t2, "ss_bucket_info", "null");
  ASSERT_KEY (t2, "ss_min_bucket_reso", "None");
  ASSERT_KEY (t2, "modelspec.architecture", "stable-diffusion-v2-768-v/lora");
  ASSERT_KEY (t2, "modelspec.resolution", "768x768");
  ASSERT_KEY (t2, "modelspec.prediction_type", "v");
  ASSERT_KEY (t2, "modelspec.title", "LoRA");
  for (const char *const *key =
         (const char *const[]){ "ss_session_id", "ss_network_args", "ss_output_name", "ss_tag_frequency",
                                "ss_dataset_dirs", "ss_resolution", "modelspec.date", "modelspec.encoder_layer", NULL };
       *key; key++)
    g_assert_false (g_hash_table_contains (t2, *key));
  u.v_parameterization = FALSE;
  g_autoptr (GHashTable) t3 = dl_train_metadata_lora (&u);
  ASSERT_KEY (t3, "ss_base_model_version", "sd_v2");
  ASSERT_KEY (t3, "modelspec.architecture", "stable-diffusion-v2-512/lora");
}

static void
test_metadata_textual_inversion (void)
{
  DlTrainFacts f;
  DlTrainFactsDir dirs[2];
  DlTrainFactsBucket buckets[2];
  sample_facts (&f, dirs, buckets);
  f.output_name = NULL;
  g_autoptr (GHashTable) t = dl_train_metadata_textual_inversion (&f);
  ASSERT_KEY (t, "modelspec.architecture", "stable-diffusion-v1/textual-inversion");
  ASSERT_KEY (t, "modelspec.implementation", "https://github.com/Stability-AI/generative-models");
  ASSERT_KEY (t, "modelspec.title", "TextualInversion@1718003600.5");
  ASSERT_KEY (t, "modelspec.sai_model_spec", "1.0.1");
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init (&it, t);
  while (g_hash_table_iter_next (&it, &k, NULL))
    g_assert_true (g_str_has_prefix (k, "modelspec."));
}

/* The whole path: facts -> metadata -> file -> A1111's view of it. */
static void
test_export_with_metadata (void)
{
  Sample s;
  make_sample (&s);
  DlTrainFacts f;
  DlTrainFactsDir dirs[2];
  DlTrainFactsBucket buckets[2];
  sample_facts (&f, dirs, buckets);
  g_autoptr (GHashTable) meta = dl_train_metadata_lora (&f);
  g_autofree char *path = tmp_path ("my-lora.safetensors");
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_lora_export_write (path, s.m, 4, DL_ST_F16, meta, &error));
  g_assert_no_error (error);
  g_autoptr (DlSafetensors) st = dl_safetensors_open (path, &error);
  g_assert_no_error (error);
  if (st)
    {
      g_autoptr (GPtrArray) keys = dl_safetensors_get_metadata_keys (st);
      g_assert_cmpuint (keys->len, ==, g_hash_table_size (meta) + 2);
      g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_output_name"), ==, "my-lora");
      g_assert_cmpstr (dl_safetensors_get_metadata (st, "ss_tag_frequency"), ==,
                       g_hash_table_lookup (meta, "ss_tag_frequency"));
      /* A1111 re-parses values that start with "{" as JSON */
      g_autoptr (JsonParser) parser = json_parser_new ();
      g_assert_true (
        json_parser_load_from_data (parser, dl_safetensors_get_metadata (st, "ss_tag_frequency"), -1, &error));
      g_assert_no_error (error);
    }
  check_written (path, &s, DL_ST_F16);
  sample_clear (&s);
}

int
main (int argc, char **argv)
{
  g_setenv ("TZ", "UTC", TRUE); /* modelspec.date is local time, as Python's fromtimestamp */
  dl_test_init (&argc, &argv);
  g_autoptr (GError) error = NULL;
  tmp_dir = g_dir_make_tmp ("dl-lora-export-XXXXXX", &error);
  g_assert_no_error (error);
  dl_test_add ("/train/lora-export/float-repr", test_float_repr);
  dl_test_add ("/train/lora-export/python-strings", test_python_strings);
  dl_test_add ("/train/lora-export/round-trip", test_export_round_trip);
  dl_test_add ("/train/lora-export/convert", test_export_convert);
  dl_test_add ("/train/lora-export/hashes", test_export_hashes);
  dl_test_add ("/train/lora-export/errors", test_export_errors);
  dl_test_add ("/train/lora-export/model-hash", test_model_hash);
  dl_test_add ("/train/lora-export/metadata-lora", test_metadata_lora);
  dl_test_add ("/train/lora-export/metadata-ti", test_metadata_textual_inversion);
  dl_test_add ("/train/lora-export/with-metadata", test_export_with_metadata);
  int rc = dl_test_run ();
  dl_test_remove_tree (tmp_dir);
  g_free (tmp_dir);
  return rc;
}
