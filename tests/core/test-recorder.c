/* Batching, hazard-tracked barriers, chunked submission, profiling, binding limits. */
#include "dl-test-util.h"

#include <string.h>

static DlTensor *
filled (const char *name, int64_t n, float v)
{
  g_autoptr (GError) error = NULL;
  DlTensor *t = dl_tensor_new_1d (dl_test_device (), name, DL_DTYPE_F32, n, &error);
  g_assert_no_error (error);
  dl_op_fill (dl_test_recorder (), t, v, &error);
  g_assert_no_error (error);
  return t;
}

static void
assert_all (DlTensor *t, float v)
{
  g_autofree float *x = dl_test_download (t);
  for (int64_t i = 0; i < dl_tensor_numel (t); i++)
    if (x[i] != v)
      {
        g_test_message ("%s[%" G_GINT64_FORMAT "] = %g, want %g", t->name, i, x[i], v);
        g_test_fail ();
        return;
      }
}

static void
test_barriers_only_on_hazards (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  dl_test_finish ();

  /* four independent fills: no barrier between them */
  guint64 b0 = dl_recorder_get_barrier_count (rec);
  g_autoptr (DlTensor) a = filled ("a", 1000, 1);
  g_autoptr (DlTensor) b = filled ("b", 1000, 2);
  g_autoptr (DlTensor) c = filled ("c", 1000, 3);
  g_autoptr (DlTensor) d = filled ("d", 1000, 4);
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0);

  /* read-after-write: c = a + b must wait for the fills */
  g_assert_true (dl_op_add (rec, c, a, b, &error));
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0 + 1);
  /* d = a * b only reads what is already synchronised: no new barrier */
  g_assert_true (dl_op_mul (rec, d, a, b, &error));
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0 + 1);
  /* write-after-read: overwriting a, which the add and mul read, needs one */
  g_assert_true (dl_op_fill (rec, a, 10, &error));
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0 + 2);
  /* the mul's write to d is already behind that barrier */
  g_assert_true (dl_op_fill (rec, d, 5, &error));
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0 + 2);
  /* write-after-write into a */
  g_assert_true (dl_op_fill (rec, a, 10, &error));
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0 + 3);
  dl_test_finish ();
  assert_all (a, 10);
  assert_all (c, 3);
  assert_all (d, 5);

  /* after finish, the host has waited: no barrier is needed for the next read */
  guint64 b1 = dl_recorder_get_barrier_count (rec);
  g_assert_true (dl_op_add (rec, b, a, c, &error));
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b1);
  dl_test_finish ();
  assert_all (b, 13);
}

/* Views of one tensor that do not overlap do not synchronise; overlapping ones do. */
static void
test_barriers_by_range (void)
{
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  dl_test_finish ();
  g_autoptr (DlTensor) t = filled ("whole", 4096, 0);
  dl_test_finish ();
  int64_t s[1] = { 1024 };
  g_autoptr (DlTensor) lo = dl_tensor_view (t, "lo", 0, 1, s, &error);
  g_autoptr (DlTensor) hi = dl_tensor_view (t, "hi", 2048, 1, s, &error);
  g_autoptr (DlTensor) mid = dl_tensor_view (t, "mid", 512, 1, s, &error);
  guint64 b0 = dl_recorder_get_barrier_count (rec);
  g_assert_true (dl_op_fill (rec, lo, 1, &error));
  g_assert_true (dl_op_fill (rec, hi, 2, &error));
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0);
  g_assert_true (dl_op_fill (rec, mid, 3, &error)); /* overlaps lo */
  g_assert_cmpuint (dl_recorder_get_barrier_count (rec), ==, b0 + 1);
  dl_test_finish ();
  g_autofree float *x = dl_test_download (t);
  g_assert_cmpfloat (x[0], ==, 1);
  g_assert_cmpfloat (x[600], ==, 3);
  g_assert_cmpfloat (x[1600], ==, 0);
  g_assert_cmpfloat (x[2048], ==, 2);
}

/* A long dependent chain split over many submissions still computes in order. */
static void
test_chunked_submission (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DlRecorder) rec = dl_recorder_new (dl_test_device (), &error);
  g_assert_no_error (error);
  dl_recorder_set_chunk_size (rec, 3);
  g_autoptr (DlTensor) x = dl_tensor_new_1d (dl_test_device (), "x", DL_DTYPE_F32, 777, &error);
  g_autoptr (DlTensor) one = dl_tensor_new_1d (dl_test_device (), "one", DL_DTYPE_F32, 777, &error);
  g_assert_true (dl_op_fill (rec, x, 0, &error));
  g_assert_true (dl_op_fill (rec, one, 1, &error));
  for (int i = 0; i < 40; i++)
    g_assert_true (dl_op_add (rec, x, x, one, &error));
  g_assert_no_error (error);
  guint64 submits = dl_recorder_get_submit_count (rec);
  g_assert_cmpuint (submits, >=, 13);
  g_assert_true (dl_recorder_finish (rec, &error));
  assert_all (x, 40);
  /* reuse after finish */
  g_assert_true (dl_op_add (rec, x, x, one, &error));
  g_assert_true (dl_recorder_finish (rec, &error));
  assert_all (x, 41);
}

static void
test_profiling (void)
{
  DlDevice *dev = dl_test_device ();
  if (!dl_device_get_info (dev)->timestamps)
    {
      g_test_skip ("device has no timestamps");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (DlRecorder) rec = dl_recorder_new (dev, &error);
  dl_recorder_set_profiling (rec, TRUE);
  dl_recorder_set_chunk_size (rec, 4);
  g_autoptr (DlTensor) x = dl_tensor_new_1d (dev, "x", DL_DTYPE_F32, 100000, &error);
  for (int i = 0; i < 10; i++)
    g_assert_true (dl_op_fill (rec, x, i, &error));
  g_assert_true (dl_op_scale (rec, x, x, 2.0f, &error));
  g_assert_true (dl_recorder_finish (rec, &error));
  g_autoptr (GArray) prof = dl_recorder_get_profile (rec);
  g_assert_cmpuint (prof->len, ==, 2);
  guint calls = 0;
  for (guint i = 0; i < prof->len; i++)
    {
      DlProfileEntry *e = &g_array_index (prof, DlProfileEntry, i);
      calls += e->count;
      g_assert_cmpfloat (e->total_ns, >, 0);
    }
  g_assert_cmpuint (calls, ==, 11);
  g_autofree char *table = dl_recorder_format_profile (rec);
  g_assert_nonnull (strstr (table, "fill_f32"));
  g_assert_nonnull (strstr (table, "scale_f32"));
  dl_recorder_reset_profile (rec);
  g_assert_cmpfloat (dl_recorder_get_profile_total_ns (rec), ==, 0);
  assert_all (x, 18);
}

/* No binding may exceed maxStorageBufferRange: elementwise ops split the work,
 * others refuse with a clear error instead of reading out of bounds. */
static void
test_binding_limit (void)
{
  DlDevice *dev = dl_test_device ();
  const DlDeviceInfo *info = dl_device_get_info (dev);
  if (info->max_storage_buffer_range > ((guint64)256 << 20))
    {
      g_test_skip ("maxStorageBufferRange is large on this device; the split is exercised on lavapipe");
      return;
    }
  g_autoptr (GError) error = NULL;
  DlRecorder *rec = dl_test_recorder ();
  int64_t n = (int64_t)(info->max_storage_buffer_range / 4) + 1000;
  g_autoptr (DlTensor) big = dl_tensor_new_1d (dev, "bigger than one binding", DL_DTYPE_F32, n, &error);
  g_assert_no_error (error);
  g_autoptr (DlTensor) big2 = dl_tensor_new_1d (dev, "second", DL_DTYPE_F16, n, &error);
  g_assert_no_error (error);
  g_assert_true (dl_op_fill (rec, big, 2.5, &error));
  g_assert_true (dl_op_copy (rec, big2, big, &error));
  g_assert_true (dl_op_axpby (rec, big, big, 2.0f, 1.0f, &error)); /* 7.5 */
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *x = dl_test_download (big);
  g_assert_cmpfloat (x[0], ==, 7.5f);
  g_assert_cmpfloat (x[n - 1], ==, 7.5f);
  g_assert_cmpfloat (x[n / 2], ==, 7.5f);
  g_autofree float *y = dl_test_download (big2);
  g_assert_cmpfloat (y[n - 1], ==, 2.5f);

  g_assert_false (dl_op_add (rec, big, big, big, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "maxStorageBufferRange"));
}

static void
test_interface_checks (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlRecorder) rec = dl_recorder_new (dev, &error);
  g_autoptr (DlTensor) t = dl_tensor_new_1d (dev, "t", DL_DTYPE_F32, 16, &error);
  DlPipeline *p = dl_device_get_pipeline (dev, "fill_f32", NULL, 0, &error);
  g_assert_no_error (error);
  DlBinding b = dl_tensor_binding (t, FALSE); /* the shader writes it */
  uint32_t push[3] = { 16, 0, 0 };
  g_assert_false (dl_recorder_dispatch (rec, p, &b, 1, push, sizeof push, 1, 1, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  b.write = TRUE;
  g_assert_false (dl_recorder_dispatch (rec, p, &b, 1, push, 8, 1, 1, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (dl_recorder_dispatch (rec, p, &b, 0, push, sizeof push, 1, 1, 1, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (dl_recorder_dispatch (rec, p, &b, 1, push, sizeof push, 1, 1, 1, &error));
  g_assert_true (dl_recorder_finish (rec, &error));
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/recorder/barriers-only-on-hazards", test_barriers_only_on_hazards);
  dl_test_add ("/recorder/barriers-by-range", test_barriers_by_range);
  dl_test_add ("/recorder/chunked-submission", test_chunked_submission);
  dl_test_add ("/recorder/profiling", test_profiling);
  dl_test_add ("/recorder/binding-limit", test_binding_limit);
  dl_test_add ("/recorder/interface-checks", test_interface_checks);
  return dl_test_run ();
}
