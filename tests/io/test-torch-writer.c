/* The engine's PyTorch file writer (io/dl-torch-writer.h): the exact bytes of
 * the pickle for each kind of value (checked by hand against CPython's pickle at
 * protocol 2), the zip layout torch.save and A1111's safe unpickler expect
 * (record names, 64-byte alignment, CRC-32), only the allowed opcodes and
 * globals, round trips of every kind of value through the engine's reader, and
 * the golden hypernetwork files torch.save wrote, read as a tree and written
 * again. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

#include "io/dl-pickle.h"
#include "io/dl-torch-ckpt.h"
#include "io/dl-torch-writer.h"
#include "io/dl-zip.h"
#include "io/pickle-check.h"

static char *base_tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (base_tmp_dir, name, NULL);
}

/* the pickle of `v` (consumed) without PROTO 2 and STOP */
static GBytes *
body_of (DlTorchValue *v)
{
  g_autoptr (DlTorchValue) owned = v;
  g_autoptr (GBytes) all = dl_torch_pickle (owned, NULL);
  gsize n;
  const guint8 *d = g_bytes_get_data (all, &n);
  g_assert_cmpuint (n, >=, 3);
  g_assert_cmpmem (d, 2, "\x80\x02", 2);
  g_assert_cmpint (d[n - 1], ==, '.');
  return g_bytes_new (d + 2, n - 3);
}

#define assert_body(v, lit)                                                                        \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autoptr (GBytes) b_ = body_of (v);                                                           \
    g_assert_cmpmem (g_bytes_get_data (b_, NULL), g_bytes_get_size (b_), (lit), sizeof (lit) - 1); \
  }                                                                                                \
  G_STMT_END

/* CPython: pickle.dumps(x, protocol=2), less PROTO, STOP and memo opcodes */
static void
test_scalar_bytes (void)
{
  assert_body (dl_torch_int (0), "K\x00");
  assert_body (dl_torch_int (255), "K\xff");
  assert_body (dl_torch_int (256), "M\x00\x01");
  assert_body (dl_torch_int (65535), "M\xff\xff");
  assert_body (dl_torch_int (65536), "J\x00\x00\x01\x00");
  assert_body (dl_torch_int (-1), "J\xff\xff\xff\xff");
  assert_body (dl_torch_int (G_MININT32), "J\x00\x00\x00\x80");
  assert_body (dl_torch_int ((gint64)G_MAXINT32 + 1), "\x8a\x05\x00\x00\x00\x80\x00");
  assert_body (dl_torch_int ((gint64)G_MININT32 - 1), "\x8a\x05\xff\xff\xff\x7f\xff");
  assert_body (dl_torch_int (G_GINT64_CONSTANT (1) << 40), "\x8a\x06\x00\x00\x00\x00\x00\x01");
  assert_body (dl_torch_int (-(G_GINT64_CONSTANT (1) << 40)), "\x8a\x06\x00\x00\x00\x00\x00\xff");
  assert_body (dl_torch_int (G_MAXINT64), "\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f");
  assert_body (dl_torch_int (G_MININT64), "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80");
  assert_body (dl_torch_float (1.5), "G?\xf8\x00\x00\x00\x00\x00\x00");
  assert_body (dl_torch_float (-0.0), "G\x80\x00\x00\x00\x00\x00\x00\x00");
  assert_body (dl_torch_bool (TRUE), "\x88");
  assert_body (dl_torch_bool (FALSE), "\x89");
  assert_body (dl_torch_none (), "N");
  assert_body (dl_torch_str ("\xc3\xa9"), "X\x02\x00\x00\x00\xc3\xa9");
  assert_body (dl_torch_str (""), "X\x00\x00\x00\x00");
  assert_body (dl_torch_str_or_none (NULL), "N");
}

static DlTorchValue *
int_list (DlTorchValue *seq, int n)
{
  for (int i = 1; i <= n; i++)
    dl_torch_append (seq, dl_torch_int (i));
  return seq;
}

static void
test_container_bytes (void)
{
  assert_body (dl_torch_tuple (), ")");
  assert_body (int_list (dl_torch_tuple (), 1), "K\x01\x85");
  assert_body (int_list (dl_torch_tuple (), 2), "K\x01K\x02\x86");
  assert_body (int_list (dl_torch_tuple (), 3), "K\x01K\x02K\x03\x87");
  assert_body (int_list (dl_torch_tuple (), 4), "(K\x01K\x02K\x03K\x04t");
  assert_body (dl_torch_list (), "]");
  /* pickle writes APPEND for one item; MARK ... APPENDS loads the same */
  assert_body (int_list (dl_torch_list (), 1), "](K\x01"
                                               "e");
  assert_body (int_list (dl_torch_list (), 3), "](K\x01K\x02K\x03"
                                               "e");
  assert_body (dl_torch_dict (), "}");
  {
    DlTorchValue *d = dl_torch_dict ();
    dl_torch_dict_set_int (d, 768, dl_torch_none ());
    assert_body (d, "}M\x00\x03Ns");
  }
  {
    DlTorchValue *d = dl_torch_dict ();
    dl_torch_dict_set (d, "a", dl_torch_int (1));
    dl_torch_dict_set_int (d, 2, dl_torch_bool (TRUE));
    dl_torch_dict_set (d, "a", dl_torch_int (3)); /* replaced in place */
    assert_body (d, "}(X\x01\x00\x00\x00"
                    "aK\x03K\x02\x88u");
  }
  assert_body (dl_torch_ordered_dict (), "ccollections\nOrderedDict\n)R");
  {
    DlTorchValue *d = dl_torch_ordered_dict ();
    dl_torch_dict_set (d, "w", dl_torch_str ("x"));
    assert_body (d, "ccollections\nOrderedDict\n)RX\x01\x00\x00\x00wX\x01\x00\x00\x00xs");
  }
  /* pickle batches APPENDS / SETITEMS by 1000: 1001 items are 1000 + 1 */
  {
    g_autoptr (DlTorchValue) l = int_list (dl_torch_list (), 1001);
    g_autoptr (GBytes) b = dl_torch_pickle (l, NULL);
    gsize n;
    const guint8 *d = g_bytes_get_data (b, &n);
    g_assert_cmpmem (d + n - 7, 7,
                     "e(M\xe9\x03"
                     "e.",
                     7);
    g_autoptr (DlTorchValue) dict = dl_torch_dict ();
    for (int i = 0; i < 1001; i++)
      dl_torch_dict_set_int (dict, i, dl_torch_none ());
    g_autoptr (GBytes) b2 = dl_torch_pickle (dict, NULL);
    d = g_bytes_get_data (b2, &n);
    g_assert_cmpmem (d + n - 7, 7, "uM\xe8\x03Ns.", 7); /* the last pair alone: SETITEM */
  }
}

static void
test_tensor_bytes (void)
{
  const float v[6] = { 1, 2, 3, 4, 5, 6 };
  DlTorchValue *t = dl_torch_tensor (DL_ST_F32, 2, (const int64_t[]){ 2, 3 }, v, sizeof v);
  dl_torch_tensor_set_requires_grad (t, TRUE);
  /* torch._utils._rebuild_tensor_v2(("storage", torch.FloatStorage, "0", "cpu", 6), 0, (2, 3), (3, 1), True,
   * OrderedDict()) */
  assert_body (t, "ctorch._utils\n_rebuild_tensor_v2\n"
                  "((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                  "0X\x03\x00\x00\x00"
                  "cpuK\x06tQ"
                  "K\x00K\x02K\x03\x86K\x03K\x01\x86\x88"
                  "ccollections\nOrderedDict\n)RtR");
  /* 0-dim and empty f16 tensors: size (), stride (); size (0, 4), stride (4, 1) */
  assert_body (dl_torch_tensor (DL_ST_F16, 0, NULL, "\x00\x3c", 2),
               "ctorch._utils\n_rebuild_tensor_v2\n"
               "((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00"
               "0X\x03\x00\x00\x00"
               "cpuK\x01tQ"
               "K\x00))\x89"
               "ccollections\nOrderedDict\n)RtR");
  assert_body (dl_torch_tensor (DL_ST_F16, 2, (const int64_t[]){ 0, 4 }, NULL, 0),
               "ctorch._utils\n_rebuild_tensor_v2\n"
               "((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00"
               "0X\x03\x00\x00\x00"
               "cpuK\x00tQ"
               "K\x00K\x00K\x04\x86K\x04K\x01\x86\x89"
               "ccollections\nOrderedDict\n)RtR");
  /* storages are numbered in pickling order and hold the data */
  g_autoptr (DlTorchValue) l = dl_torch_list ();
  dl_torch_append (l, dl_torch_tensor_f32 (DL_ST_F16, 1, (const int64_t[]){ 2 }, (const float[]){ 1, -2 }));
  dl_torch_append (l, dl_torch_tensor_f32 (DL_ST_BF16, 1, (const int64_t[]){ 1 }, (const float[]){ 1 }));
  dl_torch_append (l, dl_torch_tensor_f32 (DL_ST_F32, 1, (const int64_t[]){ 1 }, (const float[]){ 0.5f }));
  g_autoptr (GPtrArray) storages = NULL;
  g_autoptr (GBytes) pk = dl_torch_pickle (l, &storages);
  g_assert_cmpuint (storages->len, ==, 3);
  g_assert_cmpmem (g_bytes_get_data (storages->pdata[0], NULL), 4, "\x00\x3c\x00\xc0", 4);
  g_assert_cmpmem (g_bytes_get_data (storages->pdata[1], NULL), 2, "\x80\x3f", 2);
  float half = 0.5f;
  g_assert_cmpmem (g_bytes_get_data (storages->pdata[2], NULL), 4, &half, 4);
  gsize n;
  const char *d = g_bytes_get_data (pk, &n);
  g_assert_nonnull (memmem (d, n,
                            "BFloat16Storage\nX\x01\x00\x00\x00"
                            "1",
                            22));
  g_assert_nonnull (memmem (d, n,
                            "FloatStorage\nX\x01\x00\x00\x00"
                            "2",
                            19));
}

/* ---- the opcodes and globals of a pickle ---- */

/* ---- the zip ---- */

static guint32
rd (const guint8 *p, int n)
{
  guint32 v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* The records of a file written by dl_torch_save: names, order, alignment, the
 * FB extra field, stored; read back (CRC-checked) through the engine's zip
 * reader.  Returns data.pkl. */
static GBytes *
check_archive (const char *path, guint n_storages)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &error);
  g_assert_no_error (error);
  g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (map);
  gsize len;
  const guint8 *d = g_bytes_get_data (bytes, &len);
  g_autoptr (GRegex) a1111 = g_regex_new ("^([^/]+)/((data/\\d+)|version|(data\\.pkl))$", 0, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  gsize o = 0;
  while (o + 30 <= len && rd (d + o, 4) == 0x04034b50)
    {
      guint method = rd (d + o + 8, 2), nlen = rd (d + o + 26, 2), elen = rd (d + o + 28, 2);
      guint32 csize = rd (d + o + 18, 4);
      char *name = g_strndup ((const char *)d + o + 30, nlen);
      g_ptr_array_add (names, name);
      g_assert_true (g_regex_match (a1111, name, 0, NULL));
      g_assert_cmpuint (method, ==, 0);
      const guint8 *extra = d + o + 30 + nlen;
      g_assert_cmpuint (elen, >=, 4);
      g_assert_cmpmem (extra, 2, "FB", 2);
      g_assert_cmpuint (rd (extra + 2, 2), ==, elen - 4);
      for (guint k = 4; k < elen; k++)
        g_assert_cmpint (extra[k], ==, 'Z');
      gsize data_at = o + 30 + nlen + elen;
      g_assert_cmpuint (data_at % 64, ==, 0);
      g_assert_cmpuint (elen - 4, <, 64);
      o = data_at + csize;
    }
  g_assert_cmpuint (rd (d + o, 4), ==, 0x02014b50); /* then the central directory */
  g_assert_cmpuint (names->len, ==, n_storages + 2);
  g_assert_cmpstr (names->pdata[0], ==, "archive/data.pkl");
  for (guint i = 0; i < n_storages; i++)
    {
      g_autofree char *want = g_strdup_printf ("archive/data/%u", i);
      g_assert_cmpstr (names->pdata[i + 1], ==, want);
    }
  g_assert_cmpstr (names->pdata[n_storages + 1], ==, "archive/version");

  g_autoptr (DlZip) zip = dl_zip_open_bytes (bytes, path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_zip_get_n_entries (zip), ==, names->len);
  for (guint i = 0; i < names->len; i++)
    {
      g_autoptr (GBytes) b = dl_zip_read (zip, dl_zip_get_entry (zip, i), &error);
      g_assert_no_error (error);
      g_assert_nonnull (b);
    }
  g_autoptr (GBytes) version = dl_zip_read (zip, dl_zip_find (zip, "archive/version"), &error);
  g_assert_cmpmem (g_bytes_get_data (version, NULL), g_bytes_get_size (version), "3\n", 2);
  GBytes *pkl = dl_zip_read (zip, dl_zip_find (zip, "archive/data.pkl"), &error);
  g_assert_no_error (error);
  /* the pickle outlives the mapping */
  GBytes *copy = g_bytes_new (g_bytes_get_data (pkl, NULL), g_bytes_get_size (pkl));
  g_bytes_unref (pkl);
  return copy;
}

/* A value of every kind, with a hypernetwork's shape: int keys, tuples of
 * OrderedDicts of tensors, lists, floats, bools, None. */
static DlTorchValue *
sample_value (void)
{
  static const float w[6] = { 0.5f, -1, 2, 1e-20f, -0.0f, 3 };
  DlTorchValue *root = dl_torch_dict ();
  DlTorchValue *pair = dl_torch_tuple ();
  for (int m = 0; m < 2; m++)
    {
      DlTorchValue *sd = dl_torch_ordered_dict ();
      dl_torch_dict_set (sd, "linear.0.weight", dl_torch_tensor_f32 (DL_ST_F32, 2, (const int64_t[]){ 3, 2 }, w));
      dl_torch_dict_set (sd, "linear.0.bias",
                         dl_torch_tensor_f32 (m ? DL_ST_F16 : DL_ST_F32, 1, (const int64_t[]){ 3 }, w + m));
      dl_torch_append (pair, sd);
    }
  dl_torch_dict_set_int (root, 768, pair);
  dl_torch_dict_set (root, "step", dl_torch_int (1234567));
  dl_torch_dict_set (root, "name", dl_torch_str ("h\xc3\xa9llo"));
  DlTorchValue *ls = dl_torch_list ();
  dl_torch_append (ls, dl_torch_float (1));
  dl_torch_append (ls, dl_torch_float (2.5));
  dl_torch_append (ls, dl_torch_float (1));
  dl_torch_dict_set (root, "layer_structure", ls);
  dl_torch_dict_set (root, "is_layer_norm", dl_torch_bool (FALSE));
  dl_torch_dict_set (root, "activate_output", dl_torch_bool (TRUE));
  dl_torch_dict_set (root, "sd_checkpoint", dl_torch_none ());
  dl_torch_dict_set (root, "negative", dl_torch_int (-70000));
  dl_torch_dict_set (root, "empty", dl_torch_list ());
  return root;
}

static void
test_archive_layout (void)
{
  g_autofree char *path = tmp_path ("sample.pt");
  g_autoptr (DlTorchValue) v = sample_value ();
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_torch_save (path, v, &error));
  g_assert_no_error (error);
  g_autoptr (GBytes) pkl = check_archive (path, 4);
  gsize n;
  const guint8 *d = g_bytes_get_data (pkl, &n);
  pickle_assert_allowed (d, n, FALSE);
  /* the same bytes as dl_torch_pickle gives */
  g_autoptr (GBytes) direct = dl_torch_pickle (v, NULL);
  g_assert_true (g_bytes_equal (direct, pkl));

  /* a damaged byte in a storage fails its CRC */
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  const float w0 = 0.5f;
  char *at = memmem (data, len, &w0, 4);
  g_assert_nonnull (at);
  at[1] ^= 1;
  g_autoptr (GBytes) damaged = g_bytes_new (data, len);
  /* no tensor at the top: the open passes, reading the nested tensor fails */
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (damaged, "damaged.pt", &error);
  g_assert_no_error (error);
  const DlPickleValue *pair = dl_pickle_dict_get_int (dl_torch_ckpt_get_root (ck), 768);
  DlStTensor t;
  g_assert_false (dl_torch_ckpt_resolve_tensor (ck, dl_pickle_dict_get (pair->items->pdata[0], "linear.0.weight"),
                                                "linear.0.weight", &t, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "CRC-32"));
  g_assert_nonnull (strstr (error->message, "linear.0.weight"));
}

/* Writes replace the file whole; a failed write leaves nothing behind. */
static void
test_atomic (void)
{
  g_autofree char *path = tmp_path ("atomic.pt");
  g_assert_true (g_file_set_contents (path, "old", 3, NULL));
  g_autoptr (DlTorchValue) v = sample_value ();
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_torch_save (path, v, &error));
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, &error);
  g_assert_no_error (error);
  g_autofree char *missing = tmp_path ("no-such-folder/x.pt");
  g_assert_false (dl_torch_save (missing, v, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "no-such-folder"));
  /* only the file itself in the folder: no temporary left over */
  g_autoptr (GDir) dir = g_dir_open (base_tmp_dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (dir)))
    g_assert_false (g_str_has_prefix (name, "atomic.pt."));
}

/* ---- trees ---- */

static void
assert_same_tree (DlTorchCkpt *ca, const DlPickleValue *a, DlTorchCkpt *cb, const DlPickleValue *b, int depth)
{
  g_assert_cmpint (depth, <, 32);
  g_assert_cmpstr (dl_pickle_type_name (a->type), ==, dl_pickle_type_name (b->type));
  switch (a->type)
    {
    case DL_PK_NONE:
      break;
    case DL_PK_BOOL:
      g_assert_cmpint (a->b, ==, b->b);
      break;
    case DL_PK_INT:
      g_assert_cmpint (a->i, ==, b->i);
      break;
    case DL_PK_FLOAT:
      g_assert_cmpmem (&a->f, 8, &b->f, 8);
      break;
    case DL_PK_STRING:
      g_assert_cmpmem (a->str.data, a->str.len, b->str.data, b->str.len);
      break;
    case DL_PK_TUPLE:
    case DL_PK_LIST:
    case DL_PK_DICT:
      g_assert_cmpuint (a->items->len, ==, b->items->len);
      for (guint i = 0; i < a->items->len; i++)
        assert_same_tree (ca, a->items->pdata[i], cb, b->items->pdata[i], depth + 1);
      break;
    case DL_PK_TENSOR:
      {
        DlStTensor ta, tb;
        g_autoptr (GError) error = NULL;
        g_assert_true (dl_torch_ckpt_resolve_tensor (ca, a, "a", &ta, &error));
        g_assert_true (dl_torch_ckpt_resolve_tensor (cb, b, "b", &tb, &error));
        g_assert_cmpint (ta.dtype, ==, tb.dtype);
        g_assert_cmpint (ta.ndim, ==, tb.ndim);
        g_assert_cmpmem (ta.shape, ta.ndim * sizeof (int64_t), tb.shape, tb.ndim * sizeof (int64_t));
        g_assert_cmpmem (ta.data, ta.nbytes, tb.data, tb.nbytes);
        break;
      }
    default:
      g_error ("unexpected %s in the tree", dl_pickle_type_name (a->type));
    }
}

/* A tree read from a file, as writer values (dicts of tensors as OrderedDicts,
 * as module.state_dict() gives them). */
static DlTorchValue *
to_writer (DlTorchCkpt *ck, const DlPickleValue *v, int depth)
{
  g_assert_cmpint (depth, <, 32);
  switch (v->type)
    {
    case DL_PK_NONE:
      return dl_torch_none ();
    case DL_PK_BOOL:
      return dl_torch_bool (v->b);
    case DL_PK_INT:
      return dl_torch_int (v->i);
    case DL_PK_FLOAT:
      return dl_torch_float (v->f);
    case DL_PK_STRING:
      return dl_torch_str (v->str.data);
    case DL_PK_TUPLE:
    case DL_PK_LIST:
      {
        DlTorchValue *s = v->type == DL_PK_TUPLE ? dl_torch_tuple () : dl_torch_list ();
        for (guint i = 0; i < v->items->len; i++)
          dl_torch_append (s, to_writer (ck, v->items->pdata[i], depth + 1));
        return s;
      }
    case DL_PK_DICT:
      {
        gboolean tensors = v->items->len > 0;
        for (guint i = 1; i < v->items->len; i += 2)
          tensors &= ((const DlPickleValue *)v->items->pdata[i])->type == DL_PK_TENSOR;
        DlTorchValue *d = tensors ? dl_torch_ordered_dict () : dl_torch_dict ();
        for (guint i = 0; i < v->items->len; i += 2)
          {
            const DlPickleValue *k = v->items->pdata[i];
            DlTorchValue *x = to_writer (ck, v->items->pdata[i + 1], depth + 1);
            if (k->type == DL_PK_INT)
              dl_torch_dict_set_int (d, k->i, x);
            else
              dl_torch_dict_set (d, k->str.data, x);
          }
        return d;
      }
    case DL_PK_TENSOR:
      {
        DlStTensor t;
        g_autoptr (GError) error = NULL;
        g_assert_true (dl_torch_ckpt_resolve_tensor (ck, v, "t", &t, &error));
        return dl_torch_tensor (t.dtype, t.ndim, t.shape, t.data, t.nbytes);
      }
    default:
      g_error ("unexpected %s in the tree", dl_pickle_type_name (v->type));
    }
}

static void
test_round_trip (void)
{
  g_autofree char *path = tmp_path ("round-trip.pt");
  g_autoptr (DlTorchValue) v = sample_value ();
  /* more than one batch of items, and ints of every width */
  DlTorchValue *big = dl_torch_dict ();
  for (int i = 0; i < 2500; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%d", i);
      dl_torch_dict_set (big, key, dl_torch_int (-(gint64)i * 1000003));
    }
  dl_torch_dict_set (v, "big", big);
  DlTorchValue *ints = dl_torch_list ();
  const gint64 iv[] = { 0,
                        255,
                        256,
                        65535,
                        65536,
                        -1,
                        G_MININT32,
                        G_MAXINT32,
                        (gint64)G_MAXINT32 + 1,
                        (gint64)G_MININT32 - 1,
                        G_MAXINT64,
                        G_MININT64,
                        G_GINT64_CONSTANT (1) << 40 };
  for (guint i = 0; i < G_N_ELEMENTS (iv); i++)
    dl_torch_append (ints, dl_torch_int (iv[i]));
  for (int i = 0; i < 1500; i++)
    dl_torch_append (ints, dl_torch_float (i * 0.1));
  dl_torch_dict_set (v, "ints", ints);
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_torch_save (path, v, &error));
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_torch_ckpt_get_n_tensors (ck), ==, 0);
  const DlPickleValue *root = dl_torch_ckpt_get_root (ck);
  g_assert_cmpint (root->type, ==, DL_PK_DICT);
  /* keys in insertion order */
  const char *keys[] = {
    NULL,    "step", "name", "layer_structure", "is_layer_norm", "activate_output", "sd_checkpoint", "negative",
    "empty", "big",  "ints"
  };
  g_assert_cmpuint (root->items->len, ==, 2 * G_N_ELEMENTS (keys));
  const DlPickleValue *k0 = root->items->pdata[0];
  g_assert_cmpint (k0->type, ==, DL_PK_INT);
  g_assert_cmpint (k0->i, ==, 768);
  for (guint i = 1; i < G_N_ELEMENTS (keys); i++)
    g_assert_cmpstr (((const DlPickleValue *)root->items->pdata[2 * i])->str.data, ==, keys[i]);
  const DlPickleValue *pair = dl_pickle_dict_get_int (root, 768);
  g_assert_nonnull (pair);
  g_assert_null (dl_pickle_dict_get_int (root, 769));
  g_assert_cmpint (pair->type, ==, DL_PK_TUPLE);
  g_assert_cmpuint (pair->items->len, ==, 2);
  const DlPickleValue *bias1 = dl_pickle_dict_get (pair->items->pdata[1], "linear.0.bias");
  DlStTensor t;
  g_assert_true (dl_torch_ckpt_resolve_tensor (ck, bias1, "bias", &t, &error));
  g_assert_null (t.name);
  g_assert_cmpint (t.dtype, ==, DL_ST_F16);
  g_assert_cmpint (t.ndim, ==, 1);
  g_assert_cmpint (t.shape[0], ==, 3);
  g_assert_cmpmem (t.data, 6, "\x00\xbc\x00\x40\x00\x00", 6); /* -1, 2, 1e-20 -> 0 */
  g_assert_cmpstr (dl_pickle_dict_get (root, "name")->str.data, ==, "h\xc3\xa9llo");
  g_assert_cmpint (dl_pickle_dict_get (root, "step")->i, ==, 1234567);
  g_assert_cmpint (dl_pickle_dict_get (root, "negative")->i, ==, -70000);
  g_assert_cmpint (dl_pickle_dict_get (root, "sd_checkpoint")->type, ==, DL_PK_NONE);
  g_assert_cmpint (dl_pickle_dict_get (root, "is_layer_norm")->b, ==, FALSE);
  g_assert_cmpint (dl_pickle_dict_get (root, "activate_output")->b, ==, TRUE);
  const DlPickleValue *ls = dl_pickle_dict_get (root, "layer_structure");
  g_assert_cmpint (ls->type, ==, DL_PK_LIST);
  g_assert_cmpfloat (((const DlPickleValue *)ls->items->pdata[1])->f, ==, 2.5);
  const DlPickleValue *bigr = dl_pickle_dict_get (root, "big");
  g_assert_cmpuint (bigr->items->len, ==, 5000);
  g_assert_cmpint (dl_pickle_dict_get (bigr, "k2499")->i, ==, -(gint64)2499 * 1000003);
  const DlPickleValue *ir = dl_pickle_dict_get (root, "ints");
  g_assert_cmpuint (ir->items->len, ==, G_N_ELEMENTS (iv) + 1500);
  for (guint i = 0; i < G_N_ELEMENTS (iv); i++)
    g_assert_cmpint (((const DlPickleValue *)ir->items->pdata[i])->i, ==, iv[i]);
  g_assert_cmpfloat (((const DlPickleValue *)ir->items->pdata[G_N_ELEMENTS (iv) + 1499])->f, ==, 1499 * 0.1);

  /* a tree read back and written again is the same tree */
  g_autoptr (DlTorchValue) again = to_writer (ck, root, 0);
  g_autofree char *path2 = tmp_path ("round-trip-2.pt");
  g_assert_true (dl_torch_save (path2, again, &error));
  g_autoptr (DlTorchCkpt) ck2 = dl_torch_ckpt_open (path2, &error);
  g_assert_no_error (error);
  assert_same_tree (ck, root, ck2, dl_torch_ckpt_get_root (ck2), 0);

  /* resolving what is not a tensor names it */
  g_assert_false (dl_torch_ckpt_resolve_tensor (ck, ls, "layer_structure", &t, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "“layer_structure” is a list, not a tensor"));
}

/* The hypernetworks torch.save wrote (torch 1.13): a tree with an int key,
 * a tuple of two OrderedDicts (with BUILD _metadata), lists, bools, None;
 * written again with the engine's writer, it reads back the same. */
static void
test_golden_hypernetwork (void)
{
  const char *files[] = { "hypernetwork_a1111.pt", "train/hn-init.pt" };
  g_autofree char *ref_path = dl_test_golden_path ("hypernetwork.safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) ref = ref_path ? dl_safetensors_open (ref_path, &error) : NULL;
  g_assert_no_error (error);
  guint found = 0;
  for (guint f = 0; f < G_N_ELEMENTS (files); f++)
    {
      g_autofree char *path = dl_test_golden_path (files[f]);
      if (!path)
        continue;
      found++;
      g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (dl_torch_ckpt_get_n_tensors (ck), ==, 0);
      const DlPickleValue *root = dl_torch_ckpt_get_root (ck);
      const DlPickleValue *pair = dl_pickle_dict_get_int (root, 32);
      g_assert_nonnull (pair);
      g_assert_cmpint (pair->type, ==, DL_PK_TUPLE);
      g_assert_cmpuint (pair->items->len, ==, 2);
      const char *names[] = { "linear.0.weight", "linear.0.bias", "linear.1.weight", "linear.1.bias" };
      const int64_t shapes[][2] = { { 64, 32 }, { 64, 0 }, { 32, 64 }, { 32, 0 } };
      for (int m = 0; m < 2; m++)
        {
          const DlPickleValue *sd = pair->items->pdata[m];
          g_assert_cmpint (sd->type, ==, DL_PK_DICT);
          g_assert_cmpuint (sd->items->len, ==, 8);
          for (int i = 0; i < 4; i++)
            {
              g_assert_cmpstr (((const DlPickleValue *)sd->items->pdata[2 * i])->str.data, ==, names[i]);
              DlStTensor t;
              g_assert_true (dl_torch_ckpt_resolve_tensor (ck, sd->items->pdata[2 * i + 1], names[i], &t, &error));
              g_assert_cmpint (t.dtype, ==, DL_ST_F32);
              g_assert_cmpint (t.ndim, ==, shapes[i][1] ? 2 : 1);
              g_assert_cmpint (t.shape[0], ==, shapes[i][0]);
              if (f == 0 && ref)
                {
                  g_autofree char *rn = g_strdup_printf ("32.%d.%s", m, names[i]);
                  const DlStTensor *r = dl_safetensors_find (ref, rn);
                  g_assert_nonnull (r);
                  g_assert_cmpmem (t.data, t.nbytes, r->data, r->nbytes);
                }
            }
        }
      const DlPickleValue *ls = dl_pickle_dict_get (root, "layer_structure");
      g_assert_cmpint (ls->type, ==, DL_PK_LIST);
      g_assert_cmpuint (ls->items->len, ==, 3);
      g_assert_cmpint (((const DlPickleValue *)ls->items->pdata[1])->i, ==, 2);
      g_assert_cmpstr (dl_pickle_dict_get (root, "activation_func")->str.data, ==, "linear");
      g_assert_cmpint (dl_pickle_dict_get (root, "is_layer_norm")->type, ==, DL_PK_BOOL);
      g_assert_cmpint (dl_pickle_dict_get (root, "sd_checkpoint")->type, ==, DL_PK_NONE);
      g_assert_cmpint (dl_pickle_dict_get (root, "optional_info")->type, ==, DL_PK_NONE);

      g_autoptr (DlTorchValue) again = to_writer (ck, root, 0);
      g_autofree char *out = tmp_path ("hypernetwork-again.pt");
      g_assert_true (dl_torch_save (out, again, &error));
      g_autoptr (GBytes) pkl = check_archive (out, 8);
      pickle_assert_allowed (g_bytes_get_data (pkl, NULL), g_bytes_get_size (pkl), FALSE);
      g_autoptr (DlTorchCkpt) ck2 = dl_torch_ckpt_open (out, &error);
      g_assert_no_error (error);
      assert_same_tree (ck, root, ck2, dl_torch_ckpt_get_root (ck2), 0);
    }
  if (!found)
    g_test_skip ("the golden hypernetwork files are absent");
}

/* dl_pickle_get_attr: an object built by NEWOBJ + BUILD keeps its attributes. */
static void
test_object_attributes (void)
{
  /* ParameterDict.__new__(ParameterDict); obj.__dict__.update({"_parameters": {"*": 1}, "training": True}) */
  static const char pkl[] = "\x80\x02"
                            "ctorch.nn.modules.container\nParameterDict\n)\x81"
                            "}(X\x0b\x00\x00\x00_parametersccollections\nOrderedDict\n)RX\x01\x00\x00\x00*K\x01s"
                            "X\x08\x00\x00\x00training\x88ub.";
  g_autoptr (GError) error = NULL;
  g_autoptr (DlPickle) pk = dl_pickle_load ((const guint8 *)pkl, sizeof pkl - 1, "obj.pkl", &error);
  g_assert_no_error (error);
  const DlPickleValue *root = dl_pickle_get_root (pk);
  g_assert_cmpint (root->type, ==, DL_PK_OPAQUE);
  g_assert_cmpstr (root->global.name, ==, "ParameterDict");
  const DlPickleValue *p = dl_pickle_get_attr (root, "_parameters");
  g_assert_nonnull (p);
  g_assert_cmpint (dl_pickle_dict_get (p, "*")->i, ==, 1);
  g_assert_cmpint (dl_pickle_get_attr (root, "training")->b, ==, TRUE);
  g_assert_null (dl_pickle_get_attr (root, "nope"));
  g_assert_null (dl_pickle_get_attr (p, "_parameters")); /* a dict has no attributes */
  g_assert_cmpstr (dl_pickle_type_name (DL_PK_OPAQUE), ==, "object");
  g_assert_cmpstr (dl_pickle_type_name (DL_PK_DICT), ==, "dict");
  /* other torch.nn modules stay refused */
  static const char evil[] = "\x80\x02"
                             "ctorch.nn.modules.container\nSequential\n)\x81.";
  g_autoptr (DlPickle) pk2 = dl_pickle_load ((const guint8 *)evil, sizeof evil - 1, "evil.pkl", &error);
  g_assert_null (pk2);
  g_assert_nonnull (strstr (error->message, "“torch.nn.modules.container.Sequential” is not allowed"));
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  base_tmp_dir = g_dir_make_tmp ("dl-test-torch-writer-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  dl_test_add ("/io/torch-writer/scalar-bytes", test_scalar_bytes);
  dl_test_add ("/io/torch-writer/container-bytes", test_container_bytes);
  dl_test_add ("/io/torch-writer/tensor-bytes", test_tensor_bytes);
  dl_test_add ("/io/torch-writer/archive-layout", test_archive_layout);
  dl_test_add ("/io/torch-writer/atomic", test_atomic);
  dl_test_add ("/io/torch-writer/round-trip", test_round_trip);
  dl_test_add ("/io/torch-writer/golden-hypernetwork", test_golden_hypernetwork);
  dl_test_add ("/io/torch-writer/object-attributes", test_object_attributes);
  int ret = dl_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  return ret;
}
