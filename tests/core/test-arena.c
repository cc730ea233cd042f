/* Arena memory is reused within one recording, and the hazard tracking keeps the
 * results right. */
#include "dl-test-util.h"

#include "tensor/dl-arena.h"

static void
test_reuse_within_recording (void)
{
  DlDevice *dev = dl_test_device ();
  DlRecorder *rec = dl_test_recorder ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlArena) arena = dl_arena_new (dev, "test", 1 << 20);
  int64_t n = 4099;

  DlTensor *t1 = dl_arena_tensor (arena, "t1", DL_DTYPE_F32, 1, &n, &error);
  g_assert_no_error (error);
  guint64 t1_offset = t1->offset;
  g_autoptr (DlTensor) t2 = dl_arena_tensor (arena, "t2", DL_DTYPE_F32, 1, &n, &error);
  g_assert_true (dl_op_fill (rec, t1, 1.0, &error));
  g_assert_true (dl_op_add (rec, t2, t1, t1, &error)); /* 2 */
  guint64 used = dl_arena_get_in_use (arena);
  dl_tensor_unref (t1); /* nothing has run yet */
  g_assert_cmpuint (dl_arena_get_in_use (arena), <, used);

  g_autoptr (DlTensor) t3 = dl_arena_tensor (arena, "t3", DL_DTYPE_F16, 1, &n, &error);
  g_assert_cmpuint (t3->offset, ==, t1_offset); /* t1's range, reused before t1's work ran */
  g_assert_true (dl_op_fill (rec, t3, 5.0, &error));
  g_autoptr (DlTensor) t3f = dl_arena_tensor (arena, "t3f", DL_DTYPE_F32, 1, &n, &error);
  g_assert_true (dl_op_copy (rec, t3f, t3, &error));
  g_autoptr (DlTensor) out = dl_test_tensor ("out", DL_DTYPE_F32, 1, &n, NULL);
  g_assert_true (dl_op_add (rec, out, t2, t3f, &error));
  g_assert_no_error (error);
  dl_test_finish ();
  g_autofree float *x = dl_test_download (out);
  for (int64_t i = 0; i < n; i++)
    g_assert_cmpfloat (x[i], ==, 7.0f);
  g_assert_cmpuint (dl_arena_get_peak (arena), >=, 2 * 4099 * 4);
  g_assert_cmpuint (dl_arena_get_reserved (arena), ==, 1 << 20);
}

static void
test_large_and_trim (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  g_autoptr (DlArena) arena = dl_arena_new (dev, "test", 1 << 20);
  int64_t big = 1 << 20; /* 4 MiB: its own chunk */
  DlTensor *t = dl_arena_tensor (arena, "big", DL_DTYPE_F32, 1, &big, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_arena_get_reserved (arena), ==, (guint64)4 << 20);
  dl_tensor_unref (t);
  g_assert_cmpuint (dl_arena_get_in_use (arena), ==, 0);
  dl_arena_trim (arena);
  g_assert_cmpuint (dl_arena_get_reserved (arena), ==, 0);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/arena/reuse-within-recording", test_reuse_within_recording);
  dl_test_add ("/arena/large-and-trim", test_large_and_trim);
  return dl_test_run ();
}
