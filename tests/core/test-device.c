/* Device choice, capability probe, pipelines and their on-disk cache. */
#include "dl-test-util.h"

#include "vk/dl-device-private.h"
#include "vk/dl-pipeline.h"
#include "vk/dl-shader-table.h"
#include "vk/dl-spirv-reflect.h"

#include <string.h>

static void
test_list_and_describe (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) infos = dl_device_list (&error);
  g_assert_no_error (error);
  g_assert_cmpuint (infos->len, >, 0);
  for (guint i = 0; i < infos->len; i++)
    {
      const DlDeviceInfo *info = g_ptr_array_index (infos, i);
      g_assert_cmpuint (info->index, ==, i);
      g_assert_nonnull (info->name);
      g_assert_cmpuint (info->max_storage_buffer_range, >=, 1u << 27);
      g_assert_cmpuint (info->max_shared_memory, >=, 16384);
      g_assert_cmpuint (info->max_push_constants, >=, 128);
      g_assert_cmpuint (info->n_heaps, >, 0);
      if (info->api_version >= VK_API_VERSION_1_2)
        g_assert_cmpuint (info->subgroup_size, >, 0);
      g_autofree char *text = dl_device_info_describe (info);
      g_assert_nonnull (strstr (text, info->name));
      g_assert_nonnull (strstr (text, "subgroup size"));
      g_assert_nonnull (strstr (text, "max storage buffer range"));
      g_assert_nonnull (strstr (text, "cooperative matrix"));
      g_assert_nonnull (strstr (text, "timestamps"));
    }
}

static DlDeviceInfo *
fake_info (guint index, const char *name, VkPhysicalDeviceType type)
{
  DlDeviceInfo *i = g_new0 (DlDeviceInfo, 1);
  i->index = index;
  i->name = g_strdup (name);
  i->driver_name = g_strdup ("drv");
  i->driver_info = g_strdup ("");
  i->type = type;
  i->api_version = VK_API_VERSION_1_3;
  return i;
}

static void
test_choose (void)
{
  g_autoptr (GPtrArray) infos = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_device_info_free);
  g_ptr_array_add (infos, fake_info (0, "llvmpipe (LLVM 15.0.6, 256 bits)", VK_PHYSICAL_DEVICE_TYPE_CPU));
  g_ptr_array_add (infos, fake_info (1, "Intel(R) UHD Graphics", VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU));
  g_ptr_array_add (infos, fake_info (2, "NVIDIA H100 80GB HBM3", VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU));
  guint chosen = 99;
  g_autoptr (GError) error = NULL;

  /* the selector wins over the environment, which wins over the preference */
  g_assert_true (dl_device_choose (infos, "llvmpipe", &chosen, &error));
  g_assert_cmpuint (chosen, ==, 0);
  g_assert_true (dl_device_choose (infos, "h100", &chosen, &error));
  g_assert_cmpuint (chosen, ==, 2);
  g_assert_true (dl_device_choose (infos, "1", &chosen, &error));
  g_assert_cmpuint (chosen, ==, 1);

  const char *saved = g_getenv ("DREAMLOOM_DEVICE");
  g_autofree char *saved_copy = g_strdup (saved);
  g_unsetenv ("DREAMLOOM_DEVICE");
  g_assert_true (dl_device_choose (infos, NULL, &chosen, &error));
  g_assert_cmpuint (chosen, ==, 2); /* discrete first */
  g_ptr_array_remove_index (infos, 2);
  g_assert_true (dl_device_choose (infos, NULL, &chosen, &error));
  g_assert_cmpuint (chosen, ==, 1); /* then integrated */
  g_setenv ("DREAMLOOM_DEVICE", "LLVMPIPE", TRUE);
  g_assert_true (dl_device_choose (infos, NULL, &chosen, &error));
  g_assert_cmpuint (chosen, ==, 0);

  g_setenv ("DREAMLOOM_DEVICE", "7", TRUE);
  g_assert_false (dl_device_choose (infos, NULL, &chosen, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_NO_DEVICE);
  g_assert_nonnull (strstr (error->message, "DREAMLOOM_DEVICE"));
  g_clear_error (&error);
  g_assert_false (dl_device_choose (infos, "radeon", &chosen, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_NO_DEVICE);
  g_assert_nonnull (strstr (error->message, "radeon"));
  g_clear_error (&error);

  if (saved_copy)
    g_setenv ("DREAMLOOM_DEVICE", saved_copy, TRUE);
  else
    g_unsetenv ("DREAMLOOM_DEVICE");

  g_autoptr (GPtrArray) empty = g_ptr_array_new ();
  g_assert_false (dl_device_choose (empty, NULL, &chosen, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_NO_DEVICE);
}

static void
test_open (void)
{
  DlDevice *dev = dl_test_device ();
  const DlDeviceInfo *info = dl_device_get_info (dev);
  g_assert_cmpuint (info->api_version, >=, VK_API_VERSION_1_2);
  g_test_message ("device: %s, subgroup %u, shared %u, storage range %" G_GUINT64_FORMAT, info->name,
                  info->subgroup_size, info->max_shared_memory, (guint64)info->max_storage_buffer_range);
}

static void
test_shader_table (void)
{
  g_assert_cmpuint (dl_shader_table_len, >, 10);
  for (unsigned i = 1; i < dl_shader_table_len; i++)
    g_assert_cmpstr (dl_shader_table[i - 1].name, <, dl_shader_table[i].name); /* sorted for bsearch */
  g_assert_nonnull (dl_shader_table_lookup ("matmul_f16_f32_f32"));
  g_assert_null (dl_shader_table_lookup ("matmul_f64"));
  g_assert_true (dl_shader_exists ("fill_bf16"));
}

static void
test_reflect (void)
{
  const DlShaderEntry *e = dl_shader_table_lookup ("matmul_f32_f32_f32");
  DlSpirvInterface iface;
  g_autoptr (GError) error = NULL;
  g_assert_true (dl_spirv_reflect (e->code, e->size / 4, &iface, &error));
  g_assert_cmpuint (iface.n_bindings, ==, 4);
  g_assert_false (iface.writable[0]);
  g_assert_false (iface.writable[1]);
  g_assert_true (iface.writable[2]);
  g_assert_false (iface.writable[3]);
  g_assert_cmpuint (iface.push_constant_size, ==, 18 * 4);
  g_assert_cmpuint (iface.n_spec_constants, ==, 6);

  e = dl_shader_table_lookup ("binary_f16");
  g_assert_true (dl_spirv_reflect (e->code, e->size / 4, &iface, &error));
  g_assert_cmpuint (iface.n_bindings, ==, 3);
  g_assert_cmpuint (iface.push_constant_size, ==, 3 * 16 + 6 * 4);

  uint32_t junk[8] = { 0x12345678u };
  g_assert_false (dl_spirv_reflect (junk, 8, &iface, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT);
}

static void
test_pipelines (void)
{
  DlDevice *dev = dl_test_device ();
  g_autoptr (GError) error = NULL;
  DlPipeline *p1 = dl_device_get_pipeline (dev, "fill_f32", NULL, 0, &error);
  g_assert_no_error (error);
  guint created = dl_device_get_pipelines_created (dev);
  DlPipeline *p2 = dl_device_get_pipeline (dev, "fill_f32", NULL, 0, &error);
  g_assert_true (p1 == p2);
  g_assert_cmpuint (dl_device_get_pipelines_created (dev), ==, created);
  g_assert_cmpuint (dl_pipeline_get_n_bindings (p1), ==, 1);
  g_assert_true (dl_pipeline_binding_is_writable (p1, 0));

  /* different specialization constants are different pipelines */
  uint32_t s1[6] = { 128, 32, 32, 16, 4, 2 }, s2[6] = { 256, 64, 64, 16, 4, 4 };
  DlPipeline *m1 = dl_device_get_pipeline (dev, "matmul_f32_f32_f32", s1, 6, &error);
  DlPipeline *m2 = dl_device_get_pipeline (dev, "matmul_f32_f32_f32", s2, 6, &error);
  g_assert_no_error (error);
  g_assert_true (m1 != m2);
  g_assert_nonnull (strstr (dl_pipeline_get_name (m1), "[128,32,32,16,4,2]"));

  g_assert_null (dl_device_get_pipeline (dev, "no_such_shader", NULL, 0, &error));
  g_assert_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED);
}

/* The pipeline cache is written when a device goes away and accepted by the next. */
static void
test_pipeline_cache_file (void)
{
  if (g_getenv ("DREAMLOOM_NO_PIPELINE_CACHE"))
    {
      g_test_skip ("DREAMLOOM_NO_PIPELINE_CACHE is set");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "dreamloom", NULL);
  DlDevice *dev = dl_device_new (NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dl_device_get_pipeline (dev, "scale_f32", NULL, 0, &error));
  const DlDeviceInfo *info = dl_device_get_info (dev);
  g_autofree char *prefix = g_strdup_printf ("pipelines-%04x-%04x-", info->vendor_id, info->device_id);
  dl_device_free (dev);

  g_autoptr (GDir) d = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  gboolean found = FALSE;
  const char *name;
  g_autofree char *path = NULL;
  while ((name = g_dir_read_name (d)))
    if (g_str_has_prefix (name, prefix) && g_str_has_suffix (name, ".bin"))
      {
        found = TRUE;
        path = g_build_filename (dir, name, NULL);
      }
  g_assert_true (found);

  /* a damaged file is ignored, not fatal */
  g_assert_true (g_file_set_contents (path, "garbage", 7, &error));
  dev = dl_device_new (NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (dl_device_get_pipeline (dev, "scale_f32", NULL, 0, &error));
  g_assert_no_error (error);
  dl_device_free (dev);
}

/* The harness really sees validation messages: misuse Vulkan once on purpose. */
static void
test_validation_catches_misuse (void)
{
  DlDevice *dev = dl_test_device ();
  if (!dl_device_has_validation (dev))
    {
      g_test_skip ("validation is off (DREAMLOOM_VALIDATION unset)");
      return;
    }
  guint before = dl_validation_message_total ();
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = 0, /* invalid: VUID-VkBufferCreateInfo-size-00912 */
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
  };
  VkBuffer buf = VK_NULL_HANDLE;
  if (vkCreateBuffer (dev->device, &bci, NULL, &buf) == VK_SUCCESS && buf)
    vkDestroyBuffer (dev->device, buf, NULL);
  g_assert_cmpuint (dl_validation_message_total (), >, before);
  g_assert_cmpuint (dl_device_get_validation_message_count (dev), >, 0);
  dl_test_acknowledge_validation ();
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/device/list", test_list_and_describe);
  dl_test_add ("/device/choose", test_choose);
  dl_test_add ("/device/open", test_open);
  dl_test_add ("/device/shader-table", test_shader_table);
  dl_test_add ("/device/reflect", test_reflect);
  dl_test_add ("/device/pipelines", test_pipelines);
  dl_test_add ("/device/pipeline-cache-file", test_pipeline_cache_file);
  dl_test_add ("/device/validation-catches-misuse", test_validation_catches_misuse);
  return dl_test_run ();
}
