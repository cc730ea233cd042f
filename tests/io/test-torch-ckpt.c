/* PyTorch files (.ckpt/.pt/.bin) through the restricted unpickler: state
 * dicts written here in torch.save's zip layout load exactly; malicious and
 * malformed pickles and archives are refused with a clear error, and nothing
 * they ask for is ever executed. */
#include "dl-test-util.h"

#include <glib/gstdio.h>
#include <string.h>

#include "io/dl-pickle.h"
#include "io/dl-torch-ckpt.h"
#include "io/dl-zip.h"
#include "torch-writer.h"

static char *base_tmp_dir;

static char *
tmp_path (const char *name)
{
  return g_build_filename (base_tmp_dir, name, NULL);
}

static void
assert_message (const GError *error, const char *needle)
{
  g_assert_nonnull (error);
  if (!strstr (error->message, needle))
    g_error ("the error “%s” does not mention “%s”", error->message, needle);
}

/* ---- the unpickler on raw opcode streams ---- */

static GBytes *
raw (const char *ops, gsize n)
{
  return g_bytes_new (ops, n);
}
#define RAW(s) raw ((s), sizeof (s) - 1)

/* The pickle is refused, naming the input and `needle`. */
static void
refused (GBytes *pickle, const char *needle)
{
  g_autoptr (GError) error = NULL;
  gsize n;
  const guint8 *d = g_bytes_get_data (pickle, &n);
  g_autoptr (DlPickle) pk = dl_pickle_load (d, n, "evil.pkl", &error);
  g_assert_null (pk);
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
  g_test_message ("refused: %s", error->message);
  assert_message (error, "evil.pkl");
  assert_message (error, needle);
  g_bytes_unref (pickle);
}

static DlPickle *
accepted (GBytes *pickle)
{
  g_autoptr (GError) error = NULL;
  gsize n;
  const guint8 *d = g_bytes_get_data (pickle, &n);
  DlPickle *pk = dl_pickle_load (d, n, "ok.pkl", &error);
  g_assert_no_error (error);
  g_assert_nonnull (pk);
  g_bytes_unref (pickle);
  return pk;
}

/* What a malicious file asks for: run a shell command that would leave a mark. */
static void
test_pickle_no_code_runs (void)
{
  g_autofree char *marker = tmp_path ("pwned");
  g_autofree char *cmd = g_strdup_printf ("touch %s", marker);
  const char *callables[][2] = {
    { "os", "system" },
    { "posix", "system" },
    { "subprocess", "call" },
    { "builtins", "eval" },
    { "builtins", "exec" },
    { "__builtin__", "eval" },
    { "builtins", "getattr" },
    { "builtins", "__import__" },
    { "torch", "load" },
    { "numpy", "load" },
    { "collections", "defaultdict" },
    { "torch._utils", "_rebuild_tensor" }, /* a real torch helper, but not on the list */
  };
  for (guint i = 0; i < G_N_ELEMENTS (callables); i++)
    {
      /* GLOBAL module\nname\n  MARK  BINUNICODE cmd  TUPLE  REDUCE  STOP */
      TwPickle p;
      tw_pickle_init (&p, FALSE);
      tw_op (&p, 0x80);
      tw_op (&p, 2);
      tw_global (&p, callables[i][0], callables[i][1]);
      tw_op (&p, '(');
      tw_str (&p, cmd);
      tw_op (&p, 't');
      tw_op (&p, 'R');
      tw_op (&p, '.');
      g_autofree char *name = g_strdup_printf ("“%s.%s” is not allowed", callables[i][0], callables[i][1]);
      refused (tw_pickle_finish (&p), name);

      /* the same with protocol 4's STACK_GLOBAL */
      tw_pickle_init (&p, FALSE);
      tw_op (&p, 0x80);
      tw_op (&p, 4);
      tw_str (&p, callables[i][0]);
      tw_str (&p, callables[i][1]);
      tw_op (&p, 0x93);
      tw_str (&p, cmd);
      tw_op (&p, 0x85);
      tw_op (&p, 'R');
      tw_op (&p, '.');
      refused (tw_pickle_finish (&p), name);
    }
  /* the same inside a real archive, through the checkpoint reader */
  TwPickle p;
  tw_pickle_init (&p, FALSE);
  tw_op (&p, 0x80);
  tw_op (&p, 2);
  tw_global (&p, "os", "system");
  tw_str (&p, cmd);
  tw_op (&p, 0x85);
  tw_op (&p, 'R');
  tw_op (&p, '.');
  g_autoptr (GBytes) pickle = tw_pickle_finish (&p);
  g_autofree char *path = tmp_path ("evil.ckpt");
  g_autoptr (GError) error = NULL;
  g_assert_true (tw_write_raw (path, NULL, pickle, NULL, NULL, FALSE, &error));
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, &error);
  g_assert_null (ck);
  assert_message (error, path);
  assert_message (error, "os.system");
  g_assert_false (g_file_test (marker, G_FILE_TEST_EXISTS));
}

static void
test_pickle_refused (void)
{
  /* calling what is not a global, or a global that is not a function */
  refused (RAW ("\x80\x02X\x01\x00\x00\x00x)R."), "not an allowed global");
  refused (RAW ("\x80\x02}"
                ")R."),
           "not an allowed global");
  refused (RAW ("\x80\x02"
                "ctorch\nFloatStorage\n"
                ")R."),
           "calling torch.FloatStorage");
  refused (RAW ("\x80\x02"
                "ccollections\nOrderedDict\n"
                "(K\x01K\x02tR."),
           "OrderedDict");
  refused (RAW ("\x80\x02"
                "ccollections\nOrderedDict\n"
                "K\x01R."),
           "not a tuple");
  /* BUILD only on dicts, tensors and placeholders */
  refused (RAW ("\x80\x02]}b."), "BUILD on something");
  refused (RAW ("\x80\x02"
                "ccollections\nOrderedDict\n"
                "}b."),
           "BUILD on something");
  refused (RAW ("\x80\x02K\x01}b."), "BUILD on something");
  /* object-building opcodes that could reach arbitrary classes */
  refused (RAW ("\x80\x02(ios\nsystem\n."), "INST");
  refused (RAW ("\x80\x02(ccollections\nOrderedDict\no."), "OBJ");
  refused (RAW ("\x80\x02"
                "ccollections\nOrderedDict\n"
                ")\x81."),
           "NEWOBJ of something");
  refused (RAW ("\x80\x04"
                "ccollections\nOrderedDict\n"
                ")}\x92."),
           "NEWOBJ_EX");
  refused (RAW ("\x80\x02\x82\x01."), "EXT1");
  refused (RAW ("\x80\x02\x83\x01\x00."), "EXT2");
  refused (RAW ("\x80\x02Pfoo\n."), "PERSID");
  refused (RAW ("\x80\x05\x97."), "NEXT_BUFFER");
  refused (RAW ("\x80\x02\xff."), "unknown opcode");
  /* persistent ids other than storages */
  refused (RAW ("\x80\x02X\x03\x00\x00\x00"
                "fooQ."),
           "persistent id");
  refused (RAW ("\x80\x02(X\x07\x00\x00\x00storage"
                "ccollections\nOrderedDict\n"
                "X\x01\x00\x00\x00"
                "0X\x03\x00\x00\x00"
                "cpuK\x01tQ."),
           "torch.*Storage");
  refused (RAW ("\x80\x02(X\x07\x00\x00\x00storage"
                "ctorch\nFloatStorage\n"
                "K\x00X\x03\x00\x00\x00"
                "cpuK\x01tQ."),
           "bad key");
  /* malformed streams */
  refused (RAW ("\x80\x02}"), "truncated");
  refused (RAW (""), "truncated");
  refused (RAW ("\x80\x02X\xff\x00\x00\x00"
                "ab."),
           "runs past the end");
  refused (RAW ("\x80\x02X\x02\x00\x00\x00\xc3\x28."), "UTF-8");
  refused (RAW ("\x80\x02"
                "0."),
           "stack is empty");
  refused (RAW ("\x80\x02."), "STOP with 0 values");
  refused (RAW ("\x80\x02K\x01K\x02."), "STOP with 2 values");
  refused (RAW ("\x80\x02(K\x01."), "1 marks");
  refused (RAW ("\x80\x02t."), "no MARK");
  refused (RAW ("\x80\x02h\x05."), "memo entry 5");
  refused (RAW ("\x80\x02"
                "cos"),
           "two lines");
  refused (RAW ("\x80\x02"
                "cos\nsys"),
           "two lines");
  refused (RAW ("\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."), "9 bytes");
  refused (RAW ("\x80\x09."), "protocol 9");
  refused (RAW ("\x80\x02K\x00K\x01K\x02s."), "not a dict");
  refused (RAW ("\x80\x02}(K\x01u."), "odd number");
  refused (RAW ("\x80\x02](K\x01\x90."), "not a set");
  refused (RAW ("\x80\x02)K\x01"
                "a."),
           "not a list");
  /* _rebuild_tensor_v2 with the wrong arguments */
  refused (RAW ("\x80\x02"
                "ctorch._utils\n_rebuild_tensor_v2\n"
                "(K\x01tR."),
           "arguments");
  refused (RAW ("\x80\x02"
                "ctorch._utils\n_rebuild_tensor_v2\n"
                "(K\x01K\x00)))\x89}tR."),
           "not a storage");
  refused (RAW ("\x80\x02"
                "ctorch._utils\n_rebuild_parameter\n"
                "(K\x01tR."),
           "without a tensor");
}

/* What a state dict needs is accepted, including memo sharing and cycles
 * (values live in an arena: a cycle is harmless). */
static void
test_pickle_accepted (void)
{
  {
    /* [x] where x is the list itself */
    g_autoptr (DlPickle) pk = accepted (RAW ("\x80\x02]q\x00h\x00"
                                             "a."));
    DlPickleValue *root = dl_pickle_get_root (pk);
    g_assert_cmpint (root->type, ==, DL_PK_LIST);
    g_assert_cmpuint (root->items->len, ==, 1);
    g_assert_true (root->items->pdata[0] == root);
  }
  {
    /* {"a": 1, "b": -2, "c": 2.5, "d": None, "e": True, "big": 2**40} */
    g_autoptr (DlPickle) pk = accepted (RAW ("\x80\x02}(X\x01\x00\x00\x00"
                                             "aK\x01X\x01\x00\x00\x00"
                                             "bJ\xfe\xff\xff\xff"
                                             "X\x01\x00\x00\x00"
                                             "cG@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00"
                                             "dN"
                                             "X\x01\x00\x00\x00"
                                             "e\x88X\x03\x00\x00\x00"
                                             "big\x8a\x06\x00\x00\x00\x00\x00\x01u."));
    DlPickleValue *root = dl_pickle_get_root (pk);
    g_assert_cmpint (dl_pickle_dict_get (root, "a")->i, ==, 1);
    g_assert_cmpint (dl_pickle_dict_get (root, "b")->i, ==, -2);
    g_assert_cmpfloat (dl_pickle_dict_get (root, "c")->f, ==, 2.5);
    g_assert_cmpint (dl_pickle_dict_get (root, "d")->type, ==, DL_PK_NONE);
    g_assert_true (dl_pickle_dict_get (root, "e")->b);
    g_assert_cmpint (dl_pickle_dict_get (root, "big")->i, ==, (gint64)1 << 40);
    g_assert_null (dl_pickle_dict_get (root, "zzz"));
  }
  {
    /* inert placeholders: Lightning's callback class as a dict key, a numpy
     * scalar built by REDUCE and filled by BUILD; protocol 4 framing and
     * MEMOIZE */
    g_autoptr (DlPickle) pk = accepted (RAW ("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94("
                                             "cpytorch_lightning.callbacks.model_checkpoint\nModelCheckpoint\n"
                                             "}\x94"
                                             "X\x01\x00\x00\x00"
                                             "k"
                                             "cnumpy.core.multiarray\nscalar\n"
                                             "(K\x01t"
                                             "R"
                                             "}b"
                                             "u."));
    DlPickleValue *root = dl_pickle_get_root (pk);
    g_assert_cmpint (root->type, ==, DL_PK_DICT);
    g_assert_cmpuint (root->items->len, ==, 4);
    g_assert_cmpint (((DlPickleValue *)root->items->pdata[0])->type, ==, DL_PK_GLOBAL);
    DlPickleValue *v = dl_pickle_dict_get (root, "k");
    g_assert_cmpint (v->type, ==, DL_PK_OPAQUE);
    g_assert_cmpstr (v->global.name, ==, "scalar");
  }
}

/* ---- whole files ---- */

static const float f32_data[6] = { 1.5f, -2, 3.25f, 0, 1e-30f, -7 };
static const guint16 f16_data[5] = { 0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000 }; /* 1, -2, tiny, 65504, -0 */
static const guint16 bf16_data[7] = { 0x3f80, 0x4000, 0xbf80, 0x0000, 0x7f7f, 0x3e80, 0x4120 };
static const gint64 i64_data[77] = { 0, 1, 2, 3, 76 };
static const double f64_data[1] = { 0.125 };

static void
fill_tensors (TwTensor t[6])
{
  t[0] = (TwTensor){ "model.w", DL_ST_F32, 2, { 2, 3 }, f32_data, sizeof f32_data };
  t[1] = (TwTensor){ "model.h", DL_ST_F16, 1, { 5 }, f16_data, sizeof f16_data };
  t[2] = (TwTensor){ "model.b", DL_ST_BF16, 3, { 1, 1, 7 }, bf16_data, sizeof bf16_data };
  t[3] = (TwTensor){ "position_ids", DL_ST_I64, 2, { 1, 77 }, i64_data, sizeof i64_data };
  t[4] = (TwTensor){ "scalar", DL_ST_F64, 0, { 0 }, f64_data, sizeof f64_data };
  t[5] = (TwTensor){ "empty", DL_ST_U8, 2, { 0, 4 }, "", 0 };
}

static void
check_tensors (DlTorchCkpt *ck, const TwTensor *t, guint n)
{
  g_assert_cmpuint (dl_torch_ckpt_get_n_tensors (ck), ==, n);
  for (guint i = 0; i < n; i++)
    {
      const DlStTensor *s = dl_torch_ckpt_get_tensor (ck, i);
      g_assert_cmpstr (s->name, ==, t[i].name);
      g_assert_true (dl_torch_ckpt_find (ck, t[i].name) == s);
      g_assert_cmpint (s->dtype, ==, t[i].dtype);
      g_assert_cmpint (s->ndim, ==, t[i].ndim);
      for (int d = 0; d < s->ndim; d++)
        g_assert_cmpint (s->shape[d], ==, t[i].shape[d]);
      g_assert_cmpuint (s->nbytes, ==, t[i].nbytes);
      if (s->nbytes)
        g_assert_cmpmem (s->data, s->nbytes, t[i].data, t[i].nbytes);
    }
  g_assert_null (dl_torch_ckpt_get_tensor (ck, n));
  g_assert_null (dl_torch_ckpt_find (ck, "nope"));
}

static void
test_round_trip (void)
{
  TwTensor t[6];
  fill_tensors (t);
  const TwOptions variants[] = {
    { 0 },
    { .memo = TRUE },
    { .lightning = TRUE },
    { .deflate = TRUE, .memo = TRUE, .lightning = TRUE },
    { .parameters = TRUE, .prefix = "my model" },
  };
  for (guint v = 0; v < G_N_ELEMENTS (variants); v++)
    {
      g_autofree char *name = g_strdup_printf ("round-trip-%u.pt", v);
      g_autofree char *path = tmp_path (name);
      g_autoptr (GError) error = NULL;
      g_assert_true (tw_write_state_dict (path, t, G_N_ELEMENTS (t), &variants[v], &error));
      g_assert_no_error (error);
      g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, &error);
      g_assert_no_error (error);
      check_tensors (ck, t, G_N_ELEMENTS (t));
      g_assert_cmpstr (dl_torch_ckpt_get_path (ck), ==, path);
      g_assert_cmpuint (dl_torch_ckpt_get_other_keys (ck)->len, ==, 0);
      /* the Lightning entries around the state dict are there to look at */
      DlPickleValue *root = dl_torch_ckpt_get_root (ck);
      if (variants[v].lightning)
        g_assert_cmpint (dl_pickle_dict_get (root, "global_step")->i, ==, 470000);
      /* the files are valid zips with torch's records */
      g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &error);
      g_autoptr (GBytes) bytes = g_mapped_file_get_bytes (map);
      g_autoptr (DlZip) zip = dl_zip_open_bytes (bytes, path, &error);
      g_assert_no_error (error);
      const char *prefix = variants[v].prefix ? variants[v].prefix : "archive";
      g_autofree char *version = g_strdup_printf ("%s/version", prefix);
      g_assert_nonnull (dl_zip_find (zip, version));
    }
}

/* Pickles written by hand into an archive with the given storages. */
static DlTorchCkpt *
open_raw (const char *name, GBytes *pickle, gpointer *storages, const char *version, GError **error)
{
  g_autofree char *path = tmp_path (name);
  g_assert_true (tw_write_raw (path, NULL, pickle, version, storages, FALSE, NULL));
  return dl_torch_ckpt_open (path, error);
}

/* {"<name>": tensor} with a storage of `numel` floats */
static GBytes *
one_tensor_pickle (const char *name, gint64 numel, gint64 offset, int ndim, const gint64 *shape, const gint64 *stride)
{
  TwPickle p;
  tw_pickle_init (&p, TRUE);
  tw_op (&p, 0x80);
  tw_op (&p, 2);
  tw_op (&p, '}');
  tw_str (&p, name);
  tw_tensor (&p, "FloatStorage", "0", numel, offset, ndim, shape, stride);
  tw_op (&p, 's');
  tw_op (&p, '.');
  return tw_pickle_finish (&p);
}

static void
test_archive_checks (void)
{
  float data[12];
  for (int i = 0; i < 12; i++)
    data[i] = (float)i;
  g_autoptr (GBytes) storage = g_bytes_new (data, sizeof data);
  gpointer storages[] = { "0", storage, NULL };

  /* two views of one storage, at offsets */
  {
    TwPickle p;
    tw_pickle_init (&p, TRUE);
    tw_op (&p, 0x80);
    tw_op (&p, 2);
    tw_op (&p, '}');
    tw_op (&p, '(');
    tw_str (&p, "a");
    tw_tensor (&p, "FloatStorage", "0", 12, 0, 2, (gint64[]){ 2, 3 }, (gint64[]){ 3, 1 });
    tw_str (&p, "b");
    tw_tensor (&p, "FloatStorage", "0", 12, 6, 1, (gint64[]){ 6 }, (gint64[]){ 1 });
    tw_str (&p, "step");
    tw_int (&p, 12);
    tw_op (&p, 'u');
    tw_op (&p, '.');
    g_autoptr (GBytes) pk = tw_pickle_finish (&p);
    g_autoptr (GError) error = NULL;
    g_autoptr (DlTorchCkpt) ck = open_raw ("views.pt", pk, storages, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (dl_torch_ckpt_get_n_tensors (ck), ==, 2);
    g_assert_cmpmem (dl_torch_ckpt_find (ck, "b")->data, 24, data + 6, 24);
    g_assert_cmpuint (dl_torch_ckpt_get_other_keys (ck)->len, ==, 1);
    g_assert_cmpstr (dl_torch_ckpt_get_other_keys (ck)->pdata[0], ==, "step");
  }
  struct
  {
    const char *what;
    gint64 numel, offset;
    int ndim;
    gint64 shape[2], stride[2];
    const char *needle;
  } bad[] = {
    { "transposed", 12, 0, 2, { 3, 4 }, { 1, 3 }, "not contiguous" },
    { "past the end", 12, 8, 1, { 6 }, { 1 }, "runs past the end of its storage" },
    { "storage size", 10, 0, 1, { 10 }, { 1 }, "holds 48 bytes, not 10 elements" },
    { "negative size", 12, 0, 1, { -1 }, { 1 }, "invalid size" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GBytes) pk =
        one_tensor_pickle ("t", bad[i].numel, bad[i].offset, bad[i].ndim, bad[i].shape, bad[i].stride);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlTorchCkpt) ck = open_raw ("bad.pt", pk, storages, NULL, &error);
      g_test_message ("%s: %s", bad[i].what, error ? error->message : "(opened)");
      g_assert_null (ck);
      g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_FILE);
      assert_message (error, "bad.pt");
      assert_message (error, bad[i].needle);
    }
  /* a storage record that is not there */
  {
    g_autoptr (GBytes) pk = one_tensor_pickle ("t", 12, 0, 1, (gint64[]){ 12 }, (gint64[]){ 1 });
    g_autoptr (GError) error = NULL;
    g_autoptr (DlTorchCkpt) ck = open_raw ("no-storage.pt", pk, NULL, NULL, &error);
    g_assert_null (ck);
    assert_message (error, "archive/data/0");
  }
  /* versions: absent (written as ""), unknown, not a number */
  {
    g_autoptr (GBytes) pk = one_tensor_pickle ("t", 12, 0, 1, (gint64[]){ 12 }, (gint64[]){ 1 });
    const char *versions[][2] = { { "99\n", "unsupported format version" }, { "x", "unsupported format version" } };
    for (guint i = 0; i < G_N_ELEMENTS (versions); i++)
      {
        g_autoptr (GError) error = NULL;
        g_autoptr (DlTorchCkpt) ck = open_raw ("version.pt", pk, storages, versions[i][0], &error);
        g_assert_null (ck);
        assert_message (error, versions[i][1]);
      }
  }
  /* the top-level object */
  {
    g_autoptr (GError) error = NULL;
    g_autoptr (GBytes) list = RAW ("\x80\x02].");
    g_autoptr (DlTorchCkpt) ck = open_raw ("list.pt", list, NULL, NULL, &error);
    g_assert_null (ck);
    assert_message (error, "not a dict");
    g_clear_error (&error);
    g_autoptr (GBytes) sd = RAW ("\x80\x02}X\x0a\x00\x00\x00state_dictK\x01s.");
    g_autoptr (DlTorchCkpt) ck2 = open_raw ("sd.pt", sd, NULL, NULL, &error);
    g_assert_null (ck2);
    assert_message (error, "“state_dict” is not a dict");
  }
  /* the same key twice */
  {
    TwPickle p;
    tw_pickle_init (&p, FALSE);
    tw_op (&p, 0x80);
    tw_op (&p, 2);
    tw_op (&p, '}');
    tw_op (&p, '(');
    for (int k = 0; k < 2; k++)
      {
        tw_str (&p, "w");
        tw_tensor (&p, "FloatStorage", "0", 12, 0, 1, (gint64[]){ 12 }, (gint64[]){ 1 });
      }
    tw_op (&p, 'u');
    tw_op (&p, '.');
    g_autoptr (GBytes) pk = tw_pickle_finish (&p);
    g_autoptr (GError) error = NULL;
    g_autoptr (DlTorchCkpt) ck = open_raw ("twice.pt", pk, storages, NULL, &error);
    g_assert_null (ck);
    assert_message (error, "“w” appears twice");
  }
}

/* Archive-level problems: a zip that is not torch's, TorchScript, big-endian
 * data, records outside the folder, damage. */
static void
test_archive_layout (void)
{
  g_autoptr (GBytes) pk = g_bytes_new_static ("\x80\x02}.", 4);
  struct
  {
    const char *names[3];
    const char *contents[3];
    const char *needle;
  } cases[] = {
    { { "archive/data.pkl", "archive/version", "archive/constants.pkl" }, { NULL, "3\n", "" }, "TorchScript" },
    { { "archive/data.pkl", "archive/version", "archive/byteorder" }, { NULL, "3\n", "big" }, "big-endian" },
    { { "archive/data.pkl", "archive/version", "elsewhere/x" }, { NULL, "3\n", "" }, "outside the folder" },
    { { "archive/data.pkl", NULL, NULL }, { NULL, NULL, NULL }, "archive/version" },
    { { "data.pkl", "version", NULL }, { NULL, "3\n", NULL }, "not inside one folder" },
    { { "archive/version", NULL, NULL }, { "3\n", NULL, NULL }, "archive/data.pkl" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (DlZipWriter) w = dl_zip_writer_new ();
      for (int k = 0; k < 3 && cases[i].names[k]; k++)
        {
          g_autoptr (GBytes) b =
            cases[i].contents[k] ? g_bytes_new (cases[i].contents[k], strlen (cases[i].contents[k])) : g_bytes_ref (pk);
          dl_zip_writer_add (w, cases[i].names[k], b);
        }
      g_autofree char *path = tmp_path ("layout.pt");
      g_autoptr (GError) error = NULL;
      g_assert_true (dl_zip_writer_write (w, path, &error));
      g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open (path, &error);
      g_test_message ("case %u: %s", i, error ? error->message : "(opened)");
      g_assert_null (ck);
      assert_message (error, path);
      assert_message (error, cases[i].needle);
    }

  /* damage: a changed byte inside a stored record fails its CRC; a cut file
   * has no central directory */
  TwTensor t[6];
  fill_tensors (t);
  g_autofree char *path = tmp_path ("damage.pt");
  g_autoptr (GError) error = NULL;
  g_assert_true (tw_write_state_dict (path, t, 6, NULL, &error));
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  char *at = memmem (data, len, f32_data, sizeof f32_data);
  g_assert_nonnull (at);
  at[3] ^= 0x40;
  g_autoptr (GBytes) damaged = g_bytes_new (data, len);
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (damaged, "damaged.pt", &error);
  g_assert_null (ck);
  assert_message (error, "CRC-32");
  g_clear_error (&error);
  g_autoptr (GBytes) cut = g_bytes_new (data, len - 30);
  g_autoptr (DlTorchCkpt) ck2 = dl_torch_ckpt_open_bytes (cut, "cut.pt", &error);
  g_assert_null (ck2);
  assert_message (error, "cut.pt");
  g_clear_error (&error);
  g_autoptr (GBytes) legacy = RAW ("\x80\x02\x8a\x0a"
                                   "lZ\xf9\xfc\x46j\xa8P\x19.");
  g_autoptr (DlTorchCkpt) ck3 = dl_torch_ckpt_open_bytes (legacy, "old.pt", &error);
  g_assert_null (ck3);
  assert_message (error, "legacy");
}

/* Random damage to a valid file: every variant opens or fails cleanly (the
 * sanitizer build checks that nothing reads out of bounds). */
static void
test_mutations (void)
{
  TwTensor t[6];
  fill_tensors (t);
  g_autofree char *path = tmp_path ("mutate.pt");
  g_autoptr (GError) error = NULL;
  const TwOptions opt = { .lightning = TRUE, .memo = TRUE, .deflate = TRUE };
  g_assert_true (tw_write_state_dict (path, t, 6, &opt, &error));
  g_autofree guint8 *orig = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (path, (char **)&orig, &len, NULL));
  GRand *rng = g_rand_new_with_seed (1234);
  guint opened = 0, failed = 0;
  for (int iter = 0; iter < 3000; iter++)
    {
      g_autofree guint8 *copy = g_memdup2 (orig, len);
      gsize n = len;
      int edits = g_rand_int_range (rng, 1, 4);
      for (int e = 0; e < edits; e++)
        {
          gsize at = g_rand_int_range (rng, 0, (gint32)n);
          switch (g_rand_int_range (rng, 0, 4))
            {
            case 0:
              copy[at] ^= (guint8)(1u << g_rand_int_range (rng, 0, 8));
              break;
            case 1:
              copy[at] = (guint8)g_rand_int_range (rng, 0, 256);
              break;
            case 2:
              copy[at] = 0xff;
              break;
            default:
              n = MAX (at, 1); /* truncate */
              break;
            }
        }
      g_autoptr (GBytes) b = g_bytes_new_take (g_steal_pointer (&copy), n);
      g_autoptr (GError) e2 = NULL;
      g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (b, "mutant.pt", &e2);
      if (ck)
        {
          opened++;
          for (guint i = 0; i < dl_torch_ckpt_get_n_tensors (ck); i++)
            {
              const DlStTensor *s = dl_torch_ckpt_get_tensor (ck, i);
              guint64 sum = 0;
              for (guint64 k = 0; k < s->nbytes; k++)
                sum += s->data[k];
              g_assert_cmpuint (sum, <=, 255 * s->nbytes);
            }
        }
      else
        {
          g_assert_nonnull (e2);
          g_assert_true (e2->domain == DL_ERROR);
          assert_message (e2, "mutant.pt");
          failed++;
        }
    }
  g_rand_free (rng);
  g_test_message ("%u mutants opened, %u refused", opened, failed);
  g_assert_cmpuint (failed, >, 0);
}

/* ---- files from CPython's own pickler (tests/fuzz/corpus-torch-ckpt, made by
 * make-torch-seed-corpus.py with stand-ins named like torch's classes) ---- */

static GBytes *
corpus_file (const char *name)
{
  g_autofree char *path = g_build_filename (DL_FUZZ_CORPUS_DIR, "corpus-torch-ckpt", name, NULL);
  char *data;
  gsize len;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &data, &len, &error));
  return g_bytes_new_take (data, len);
}

static void
test_cpython_pickles (void)
{
  const float w[6] = { 1.5f, -2, 0.25f, 3, 0, 7 };
  const guint16 h[3] = { 0x3c00, 0xb800, 0x4000 };
  const gint64 ids[3] = { 49406, 320, 49407 };
  const char *state_dicts[] = { "valid-state-dict.pt", "valid-deflated.pt", "valid-lightning.ckpt" };
  for (guint i = 0; i < G_N_ELEMENTS (state_dicts); i++)
    {
      g_autoptr (GBytes) b = corpus_file (state_dicts[i]);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (b, state_dicts[i], &error);
      g_assert_no_error (error);
      const TwTensor want[3] = {
        { "model.diffusion_model.out.2.weight", DL_ST_F32, 2, { 2, 3 }, w, sizeof w },
        { "first_stage_model.decoder.conv_in.bias", DL_ST_F16, 1, { 3 }, h, sizeof h },
        { "cond_stage_model.transformer.text_model.embeddings.position_ids", DL_ST_I64, 2, { 1, 3 }, ids, sizeof ids },
      };
      check_tensors (ck, want, 3);
    }
  {
    g_autoptr (GBytes) b = corpus_file ("valid-views.pt");
    g_autoptr (GError) error = NULL;
    g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (b, "views", &error);
    g_assert_no_error (error);
    const TwTensor want[2] = { { "a", DL_ST_F32, 2, { 2, 2 }, w, 16 }, { "b", DL_ST_F32, 1, { 2 }, w + 4, 8 } };
    check_tensors (ck, want, 2);
  }
  {
    g_autoptr (GBytes) b = corpus_file ("valid-parameters.pt");
    g_autoptr (GError) error = NULL;
    g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (b, "parameters", &error);
    g_assert_no_error (error);
    const TwTensor want[1] = { { "w", DL_ST_F32, 1, { 6 }, w, sizeof w } };
    check_tensors (ck, want, 1);
  }
  const char *bad[][2] = { { "bad-os-system.pt", "“posix.system” is not allowed" },
                           { "bad-legacy.pt", "legacy" },
                           { "bad-truncated.pt", "end-of-central-directory" },
                           { "bad-crc.pt", "CRC-32" } };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GBytes) b = corpus_file (bad[i][0]);
      g_autoptr (GError) error = NULL;
      g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (b, bad[i][0], &error);
      g_assert_null (ck);
      assert_message (error, bad[i][0]);
      assert_message (error, bad[i][1]);
    }
  /* bare pickles, protocol 4 included (FRAME, SHORT_BINUNICODE, MEMOIZE, sets, bytes) */
  const char *pickles[] = { "pickle-state-dict", "pickle-lightning", "pickle-protocol4" };
  for (guint i = 0; i < G_N_ELEMENTS (pickles); i++)
    {
      g_autoptr (DlPickle) pk = accepted (corpus_file (pickles[i]));
      g_assert_cmpint (dl_pickle_get_root (pk)->type, ==, DL_PK_DICT);
    }
  refused (corpus_file ("bad-pickle-os-system"), "“posix.system” is not allowed");
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  base_tmp_dir = g_dir_make_tmp ("dl-test-torch-ckpt-XXXXXX", NULL);
  g_assert_nonnull (base_tmp_dir);
  dl_test_add ("/io/torch-ckpt/pickle-no-code-runs", test_pickle_no_code_runs);
  dl_test_add ("/io/torch-ckpt/pickle-refused", test_pickle_refused);
  dl_test_add ("/io/torch-ckpt/pickle-accepted", test_pickle_accepted);
  dl_test_add ("/io/torch-ckpt/round-trip", test_round_trip);
  dl_test_add ("/io/torch-ckpt/archive-checks", test_archive_checks);
  dl_test_add ("/io/torch-ckpt/archive-layout", test_archive_layout);
  dl_test_add ("/io/torch-ckpt/mutations", test_mutations);
  dl_test_add ("/io/torch-ckpt/cpython-pickles", test_cpython_pickles);
  int ret = dl_test_run ();
  dl_test_remove_tree (base_tmp_dir);
  g_free (base_tmp_dir);
  return ret;
}
