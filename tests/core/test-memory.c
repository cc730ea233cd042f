/* The device allocator, tensors, views and transfers. */
#include "dl-test-util.h"

#include "dl-half.h"

#include <string.h>

static void
test_alloc_reuse (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  guint64 base = dl_device_get_memory_in_use (dev);
  dl_device_reset_memory_peak (dev);

  DlTensor *a = dl_tensor_new_1d (dev, "a", DL_DTYPE_F32, 1000, &error);
  g_assert_no_error (error);
  DlTensor *b = dl_tensor_new_2d (dev, "b", DL_DTYPE_F16, 7, 129, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_tensor_nbytes (a), ==, 4000);
  g_assert_cmpuint (dl_tensor_nbytes (b), ==, 7 * 129 * 2);
  /* every tensor starts on a descriptor-friendly boundary */
  g_assert_cmpuint (a->offset % DL_BINDING_ALIGN, ==, 0);
  g_assert_cmpuint (b->offset % DL_BINDING_ALIGN, ==, 0);
  g_assert_cmpuint (dl_tensor_shader_offset (a), ==, 0);
  guint64 used = dl_device_get_memory_in_use (dev);
  g_assert_cmpuint (used, >=, base + 4000 + 7 * 129 * 2);

  guint64 a_off = a->offset;
  dl_tensor_unref (a);
  g_assert_cmpuint (dl_device_get_memory_in_use (dev), <, used);
  /* freed space is reused */
  DlTensor *c = dl_tensor_new_1d (dev, "c", DL_DTYPE_I32, 900, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (c->offset, ==, a_off);
  g_assert_cmpuint (dl_device_get_memory_peak (dev), >=, used);
  dl_tensor_unref (b);
  dl_tensor_unref (c);
  g_assert_cmpuint (dl_device_get_memory_in_use (dev), ==, base);
}

/* Free ranges coalesce: after freeing everything, one large tensor fits where
 * many small ones were. */
static void
test_coalesce (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  guint64 reserved = dl_device_get_memory_reserved (dev);
  DlTensor *t[64];
  for (int i = 0; i < 64; i++)
    {
      t[i] = dl_tensor_new_1d (dev, "piece", DL_DTYPE_F32, 1024, &error);
      g_assert_no_error (error);
    }
  for (int i = 0; i < 64; i += 2)
    dl_tensor_unref (t[i]);
  for (int i = 1; i < 64; i += 2)
    dl_tensor_unref (t[i]);
  DlTensor *big = dl_tensor_new_1d (dev, "big", DL_DTYPE_F32, 64 * 1024, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_device_get_memory_reserved (dev), ==, reserved);
  dl_tensor_unref (big);
}

static void
test_oom_is_an_error (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;

  /* beyond anything the device can hold: a clear error, never an abort */
  int64_t huge[2] = { (int64_t)1 << 28, 1 << 10 }; /* 1 TiB of f32 */
  DlTensor *t = dl_tensor_new (dev, "unet.giant_activation", DL_DTYPE_F32, 2, huge, &error);
  g_assert_null (t);
  g_assert_error (error, DL_ERROR, DL_ERROR_OUT_OF_DEVICE_MEMORY);
  g_assert_nonnull (strstr (error->message, "unet.giant_activation"));
  g_assert_nonnull (strstr (error->message, "1.0\u00a0TiB"));
  g_clear_error (&error);

  /* a budget stops allocations at the limit, naming the tensor and the sizes */
  guint64 in_use = dl_device_get_memory_in_use (dev);
  dl_device_set_memory_limit (dev, in_use + (1 << 20));
  DlTensor *ok = dl_tensor_new_1d (dev, "fits", DL_DTYPE_F32, 1000, &error);
  g_assert_no_error (error);
  t = dl_tensor_new_1d (dev, "lora_up.weight", DL_DTYPE_F32, 1 << 20, &error);
  g_assert_null (t);
  g_assert_error (error, DL_ERROR, DL_ERROR_OUT_OF_DEVICE_MEMORY);
  g_assert_nonnull (strstr (error->message, "lora_up.weight"));
  g_test_message ("%s", error->message);
  /* g_format_size puts a no-break space before the unit */
  g_assert_nonnull (strstr (error->message, "4.0\u00a0MiB"));
  g_assert_nonnull (strstr (error->message, "limit"));
  g_clear_error (&error);
  dl_device_set_memory_limit (dev, 0);
  t = dl_tensor_new_1d (dev, "lora_up.weight", DL_DTYPE_F32, 1 << 20, &error);
  g_assert_no_error (error);
  dl_tensor_unref (t);
  dl_tensor_unref (ok);

  int64_t bad[2] = { -1, 4 };
  g_assert_null (dl_tensor_new (dev, "neg", DL_DTYPE_F32, 2, bad, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

static void
test_roundtrip_dtypes (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  const gsize n = 1237;
  g_autofree float *x = dl_test_random (n, 1, -100, 100);
  for (int dt = 0; dt < DL_N_DTYPES; dt++)
    {
      g_autoptr (DlTensor) t = dl_tensor_new_1d (dev, "rt", (DlDType)dt, n, &error);
      g_assert_no_error (error);
      g_assert_true (dl_tensor_upload_f32 (t, x, &error));
      g_autofree float *back = dl_tensor_download_f32 (t, &error);
      g_assert_no_error (error);
      g_autofree float *want = g_memdup2 (x, n * sizeof (float));
      ref_round_to_dtype (want, n, (DlDType)dt);
      g_autofree char *what = g_strdup_printf ("upload/download %s", dl_dtype_name (dt));
      dl_test_assert_close (what, back, want, n, 0, 0);

      /* raw bytes in the tensor's own dtype round-trip exactly */
      g_autofree guint8 *raw = g_malloc (dl_tensor_nbytes (t));
      g_assert_true (dl_tensor_download (t, raw, (DlDType)dt, &error));
      g_autofree guint8 *raw2 = g_malloc (dl_tensor_nbytes (t));
      g_assert_true (dl_tensor_upload (t, raw, (DlDType)dt, &error));
      g_assert_true (dl_tensor_download (t, raw2, (DlDType)dt, &error));
      g_assert_cmpmem (raw, dl_tensor_nbytes (t), raw2, dl_tensor_nbytes (t));
    }
}

static void
test_views (void)
{
  g_autoptr (GError) error = NULL;
  float data[24];
  for (int i = 0; i < 24; i++)
    data[i] = (float)i;
  int64_t shape[3] = { 2, 3, 4 };
  g_autoptr (DlTensor) t = dl_test_tensor ("base", DL_DTYPE_F32, 3, shape, data);

  int64_t vs[2] = { 2, 5 };
  DlTensor *v = dl_tensor_view (t, "middle", 7, 2, vs, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (dl_tensor_shader_offset (v), ==, 7);
  g_autofree float *got = dl_test_download (v);
  for (int i = 0; i < 10; i++)
    g_assert_cmpfloat (got[i], ==, 7 + i);

  /* a view keeps the memory alive after its base is dropped */
  DlTensor *base = dl_tensor_ref (t);
  g_clear_pointer (&t, dl_tensor_unref);
  dl_tensor_unref (base);
  float patch[10] = { 0 };
  g_assert_true (dl_tensor_upload_f32 (v, patch, &error));
  dl_tensor_unref (v);

  g_autoptr (DlTensor) t2 = dl_test_tensor ("base2", DL_DTYPE_F32, 3, shape, data);
  int64_t rs[2] = { 6, 4 };
  g_autoptr (DlTensor) r = dl_tensor_reshape (t2, 2, rs, &error);
  g_assert_no_error (error);
  g_assert_cmpint (r->shape[0], ==, 6);
  int64_t wrong[2] = { 5, 5 };
  g_assert_null (dl_tensor_reshape (t2, 2, wrong, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (dl_tensor_view (t2, "past the end", 20, 2, vs, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "base2"));
  g_autofree char *desc = dl_tensor_describe (t2);
  g_assert_cmpstr (desc, ==, "base2 [2, 3, 4] f32");
}

/* Tensors bigger than the 64 MiB staging buffer and than one memory block. */
static void
test_large_transfer (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  const gsize n = (gsize)20 << 20; /* 80 MiB of f32 */
  g_autofree float *x = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    x[i] = (float)(i % 100003);
  g_autoptr (DlTensor) t = dl_tensor_new_1d (dev, "large", DL_DTYPE_F32, n, &error);
  g_assert_no_error (error);
  g_assert_true (dl_tensor_upload_f32 (t, x, &error));
  g_autofree float *y = dl_test_download (t);
  g_assert_true (memcmp (x, y, n * sizeof (float)) == 0);
}

static void
test_trim (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_device_trim_memory (dev, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (dl_device_get_memory_reserved (dev), >=, dl_device_get_memory_in_use (dev));
}

/* The budget: never above a limit; on a CPU device without the budget
 * extension, the host's free memory (lavapipe's reported heap is not a limit);
 * $DREAMLOOM_MEMORY_LIMIT sets the limit from the device's creation. */
static void
test_budget (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  gboolean from_driver = FALSE;
  guint64 budget = dl_device_get_memory_budget (dev, &from_driver);
  g_assert_cmpuint (budget, >, dl_device_get_memory_in_use (dev));
  if (dl_device_get_info (dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU && !from_driver &&
      !dl_device_get_memory_limit (dev))
    {
      g_autofree char *meminfo = NULL;
      g_assert_true (g_file_get_contents ("/proc/meminfo", &meminfo, NULL, NULL));
      const char *line = strstr (meminfo, "MemAvailable:");
      g_assert_nonnull (line);
      guint64 avail = g_ascii_strtoull (line + strlen ("MemAvailable:"), NULL, 10) * 1024;
      g_test_message ("CPU device: budget %.1f GiB, host memory available %.1f GiB", budget / 1073741824.0,
                      avail / 1073741824.0);
      g_assert_cmpuint (budget, >=, avail / 2);
    }
  guint64 before = dl_device_get_memory_limit (dev);
  guint64 limit = dl_device_get_memory_in_use (dev) + (8 << 20);
  dl_device_set_memory_limit (dev, limit);
  g_assert_cmpuint (dl_device_get_memory_limit (dev), ==, limit);
  g_assert_cmpuint (dl_device_get_memory_budget (dev, NULL), ==, MIN (limit, budget));
  dl_device_set_memory_limit (dev, before);

  const struct
  {
    const char *value;
    guint64 bytes;
  } sizes[] = { { "6G", (guint64)6 << 30 },
                { "1536M", (guint64)1536 << 20 },
                { "1536MiB", (guint64)1536 << 20 },
                { "2gb", (guint64)2 << 30 },
                { "4096", 4096 },
                { "lots", 0 },
                { "6X", 0 },
                { "6Gx", 0 },
                { "-1", 0 },
                { "-1G", 0 },
                { "1.5G", 0 },
                { "16777216T", 0 },
                { "18446744073709551616", 0 },
                { "", 0 } };
  g_autofree char *saved = g_strdup (g_getenv ("DREAMLOOM_MEMORY_LIMIT"));
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_setenv ("DREAMLOOM_MEMORY_LIMIT", sizes[i].value, TRUE);
      DlDeviceTuning t;
      dl_device_tuning_from_env (&t);
      g_assert_cmpuint (t.memory_limit, ==, sizes[i].bytes);
    }
  g_setenv ("DREAMLOOM_MEMORY_LIMIT", "32M", TRUE);
  g_autoptr (DlDevice) small = dl_device_new (NULL, &error);
  g_assert_no_error (error);
  if (saved)
    g_setenv ("DREAMLOOM_MEMORY_LIMIT", saved, TRUE);
  else
    g_unsetenv ("DREAMLOOM_MEMORY_LIMIT");
  g_assert_cmpuint (dl_device_get_memory_limit (small), ==, 32 << 20);
  g_assert_cmpuint (dl_device_get_memory_budget (small, NULL), <=, 32 << 20);
  g_autoptr (DlTensor) t = dl_tensor_new_1d (small, "too big", DL_DTYPE_F32, 16 << 20, &error);
  g_assert_null (t);
  g_assert_error (error, DL_ERROR, DL_ERROR_OUT_OF_DEVICE_MEMORY);
  g_assert_nonnull (strstr (error->message, "limit"));
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/memory/alloc-reuse", test_alloc_reuse);
  dl_test_add ("/memory/coalesce", test_coalesce);
  dl_test_add ("/memory/oom-is-an-error", test_oom_is_an_error);
  dl_test_add ("/memory/roundtrip-dtypes", test_roundtrip_dtypes);
  dl_test_add ("/memory/views", test_views);
  dl_test_add ("/memory/large-transfer", test_large_transfer);
  dl_test_add ("/memory/trim", test_trim);
  dl_test_add ("/memory/budget", test_budget);
  return dl_test_run ();
}
