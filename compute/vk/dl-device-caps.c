/* Probing what a physical device can do, and describing it for `dreamloom devices`. */
#include "dl-device-private.h"
#include "dl-vk-coopmat.h"

#include <stdlib.h>
#include <string.h>

gboolean
dl_device_has_extension (VkPhysicalDevice phys, const char *name)
{
  uint32_t n = 0;
  if (vkEnumerateDeviceExtensionProperties (phys, NULL, &n, NULL) != VK_SUCCESS)
    return FALSE;
  g_autofree VkExtensionProperties *exts = g_new0 (VkExtensionProperties, n ? n : 1);
  if (vkEnumerateDeviceExtensionProperties (phys, NULL, &n, exts) != VK_SUCCESS)
    return FALSE;
  for (uint32_t i = 0; i < n; i++)
    if (strcmp (exts[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

void
dl_device_info_free (DlDeviceInfo *info)
{
  if (!info)
    return;
  g_free (info->name);
  g_free (info->driver_name);
  g_free (info->driver_info);
  g_free (info->coopmat_shapes);
  g_free (info);
}

const char *
dl_device_type_name (VkPhysicalDeviceType type)
{
  switch (type)
    {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "CPU";
    case VK_PHYSICAL_DEVICE_TYPE_OTHER:
    case VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM:
    default:
      return "other";
    }
}

/* Published dense peak rates (GFLOP/s) of GPUs we know: fp32 on the shader cores
 * and fp16 with fp32 accumulation on the matrix cores.  Matched by name substring,
 * most specific first. */
static const struct
{
  const char *name;
  double f32, f16, gbps;
} known_peaks[] = {
  { "H100 PCIe", 51200, 756000, 2000 }, { "H100 NVL", 60000, 835000, 3900 },   { "H100", 66900, 989000, 3350 },
  { "H200", 66900, 989000, 4800 },      { "A100", 19500, 312000, 2039 },       { "L40S", 91600, 366000, 864 },
  { "RTX 4090", 82600, 165200, 1008 },  { "RTX 4080", 48700, 97500, 717 },     { "RTX 3090", 35600, 71000, 936 },
  { "RTX 3080", 29800, 59500, 760 },    { "RX 7900 XTX", 61400, 122800, 960 },
};

/* lavapipe runs on the host: estimate cores x clock x SIMD FMA width. */
static double
estimate_cpu_peak_gflops (void)
{
  g_autofree char *cpuinfo = NULL;
  if (!g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    return 0;
  double mhz = 0;
  int cores = 0;
  gboolean avx2 = FALSE, avx512 = FALSE;
  g_auto (GStrv) lines = g_strsplit (cpuinfo, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      if (g_str_has_prefix (*l, "processor"))
        cores++;
      else if (g_str_has_prefix (*l, "cpu MHz") && mhz == 0)
        {
          const char *c = strchr (*l, ':');
          if (c)
            mhz = g_ascii_strtod (c + 1, NULL);
        }
      else if (g_str_has_prefix (*l, "flags") && cores == 1)
        {
          avx2 = strstr (*l, " avx2") != NULL && strstr (*l, " fma") != NULL;
          avx512 = strstr (*l, " avx512f") != NULL;
        }
    }
  const char *lp = g_getenv ("LP_NUM_THREADS");
  if (lp && atoi (lp) > 0 && atoi (lp) < cores)
    cores = atoi (lp);
  /* flops per cycle per core: two FMA pipes x lanes x 2 */
  double per_cycle = avx512 ? 64 : avx2 ? 32 : 8;
  return cores * mhz * 1e-3 * per_cycle;
}

static void
fill_peaks (DlDeviceInfo *info)
{
  const char *env = g_getenv ("DREAMLOOM_PEAK_GFLOPS");
  if (env && g_ascii_strtod (env, NULL) > 0)
    {
      info->peak_gflops_f32 = info->peak_gflops_f16 = g_ascii_strtod (env, NULL);
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (known_peaks); i++)
    if (strstr (info->name, known_peaks[i].name))
      {
        info->peak_gflops_f32 = known_peaks[i].f32;
        info->peak_gflops_f16 = known_peaks[i].f16;
        info->peak_gbps = known_peaks[i].gbps;
        return;
      }
  if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU)
    info->peak_gflops_f32 = info->peak_gflops_f16 = estimate_cpu_peak_gflops ();
}

static void
probe_coopmat (VkInstance instance, VkPhysicalDevice phys, DlDeviceInfo *info)
{
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get_props =
    (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)vkGetInstanceProcAddr (
      instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  if (!get_props)
    return;
  uint32_t n = 0;
  if (get_props (phys, &n, NULL) != VK_SUCCESS || n == 0)
    return;
  g_autofree VkCooperativeMatrixPropertiesKHR *props = g_new0 (VkCooperativeMatrixPropertiesKHR, n);
  for (uint32_t i = 0; i < n; i++)
    props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
  if (get_props (phys, &n, props) != VK_SUCCESS)
    return;
  info->coopmat_shapes = g_new0 (DlCoopmatShape, n);
  info->n_coopmat_shapes = n;
  for (uint32_t i = 0; i < n; i++)
    info->coopmat_shapes[i] = (DlCoopmatShape){
      .m = props[i].MSize,
      .n = props[i].NSize,
      .k = props[i].KSize,
      .a_type = props[i].AType,
      .b_type = props[i].BType,
      .c_type = props[i].CType,
      .result_type = props[i].ResultType,
      .scope = props[i].scope,
      .saturating = props[i].saturatingAccumulation,
    };
}

DlDeviceInfo *
dl_device_info_probe (VkInstance instance, VkPhysicalDevice phys, guint index)
{
  DlDeviceInfo *info = g_new0 (DlDeviceInfo, 1);
  info->index = index;

  VkPhysicalDeviceProperties base;
  vkGetPhysicalDeviceProperties (phys, &base);
  gboolean is_12 = base.apiVersion >= VK_API_VERSION_1_2;
  gboolean is_13 = base.apiVersion >= VK_API_VERSION_1_3;
  gboolean has_sgsc_ext = dl_device_has_extension (phys, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  gboolean has_atomic_float = dl_device_has_extension (phys, VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME);
  gboolean has_coopmat = dl_device_has_extension (phys, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME);

  /* properties */
  VkPhysicalDeviceVulkan11Properties p11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES };
  VkPhysicalDeviceVulkan12Properties p12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES };
  VkPhysicalDeviceSubgroupSizeControlPropertiesEXT psg = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT
  };
  VkPhysicalDeviceMaintenance4Properties pm4 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES };
  VkPhysicalDeviceProperties2 props = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 };
  if (is_12)
    {
      props.pNext = &p11;
      p11.pNext = &p12;
      void **tail = &p12.pNext;
      if (is_13 || has_sgsc_ext)
        {
          *tail = &psg;
          tail = &psg.pNext;
        }
      if (is_13)
        *tail = &pm4;
    }
  vkGetPhysicalDeviceProperties2 (phys, &props);
  const VkPhysicalDeviceLimits *lim = &props.properties.limits;

  /* features */
  VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES };
  VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT fsg = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT
  };
  VkPhysicalDeviceShaderAtomicFloatFeaturesEXT faf = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT
  };
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcm = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR
  };
  VkPhysicalDeviceFeatures2 feats = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2 };
  if (is_12)
    {
      feats.pNext = &f11;
      f11.pNext = &f12;
      void **tail = &f12.pNext;
      if (is_13 || has_sgsc_ext)
        {
          *tail = &fsg;
          tail = &fsg.pNext;
        }
      if (has_atomic_float)
        {
          *tail = &faf;
          tail = &faf.pNext;
        }
      if (has_coopmat)
        *tail = &fcm;
    }
  vkGetPhysicalDeviceFeatures2 (phys, &feats);

  info->name = g_strdup (props.properties.deviceName);
  info->type = props.properties.deviceType;
  info->vendor_id = props.properties.vendorID;
  info->device_id = props.properties.deviceID;
  info->api_version = props.properties.apiVersion;
  info->driver_version = props.properties.driverVersion;
  memcpy (info->pipeline_cache_uuid, props.properties.pipelineCacheUUID, VK_UUID_SIZE);
  info->driver_name = g_strdup (is_12 ? p12.driverName : "");
  info->driver_info = g_strdup (is_12 ? p12.driverInfo : "");

  info->shader_float16 = f12.shaderFloat16;
  info->shader_int8 = f12.shaderInt8;
  info->shader_int16 = feats.features.shaderInt16;
  info->storage_buffer_16bit = f11.storageBuffer16BitAccess;
  info->storage_buffer_8bit = f12.storageBuffer8BitAccess;
  info->float32_atomic_add = faf.shaderBufferFloat32AtomicAdd;

  info->subgroup_size = p11.subgroupSize;
  info->subgroup_ops =
    (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ? p11.subgroupSupportedOperations : 0;
  info->subgroup_size_control = fsg.subgroupSizeControl;
  info->compute_full_subgroups = fsg.computeFullSubgroups;
  info->subgroup_min_size = fsg.subgroupSizeControl ? psg.minSubgroupSize : p11.subgroupSize;
  info->subgroup_max_size = fsg.subgroupSizeControl ? psg.maxSubgroupSize : p11.subgroupSize;

  info->cooperative_matrix = has_coopmat && fcm.cooperativeMatrix;
  if (info->cooperative_matrix)
    probe_coopmat (instance, phys, info);

  info->max_storage_buffer_range = lim->maxStorageBufferRange;
  info->max_memory_allocation_size = is_12 ? p11.maxMemoryAllocationSize : 0;
  info->max_buffer_size = is_13 ? pm4.maxBufferSize : 0;
  info->min_storage_buffer_offset_alignment = lim->minStorageBufferOffsetAlignment;
  info->max_shared_memory = lim->maxComputeSharedMemorySize;
  info->max_push_constants = lim->maxPushConstantsSize;
  info->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; i++)
    {
      info->max_workgroup_size[i] = lim->maxComputeWorkGroupSize[i];
      info->max_workgroup_count[i] = lim->maxComputeWorkGroupCount[i];
    }

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties (phys, &mem);
  info->n_heaps = mem.memoryHeapCount;
  for (uint32_t h = 0; h < mem.memoryHeapCount; h++)
    {
      info->heaps[h].size = mem.memoryHeaps[h].size;
      info->heaps[h].device_local = (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
      if (info->heaps[h].device_local)
        info->device_local_bytes += mem.memoryHeaps[h].size;
    }
  for (uint32_t t = 0; t < mem.memoryTypeCount; t++)
    {
      VkMemoryPropertyFlags f = mem.memoryTypes[t].propertyFlags;
      if (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
        info->heaps[mem.memoryTypes[t].heapIndex].host_visible = TRUE;
      if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
          info->heaps[mem.memoryTypes[t].heapIndex].size >= info->device_local_bytes / 2)
        info->unified_memory = TRUE;
    }

  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &nq, NULL);
  g_autofree VkQueueFamilyProperties *qf = g_new0 (VkQueueFamilyProperties, nq ? nq : 1);
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &nq, qf);
  for (uint32_t q = 0; q < nq; q++)
    if ((qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT) && qf[q].timestampValidBits > info->timestamp_valid_bits)
      info->timestamp_valid_bits = qf[q].timestampValidBits;
  info->timestamps = lim->timestampComputeAndGraphics || info->timestamp_valid_bits > 0;
  info->timestamp_period_ns = lim->timestampPeriod;

  info->push_descriptor = dl_device_has_extension (phys, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
  gboolean cpu = info->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
  info->busy_workgroups = cpu ? 8 : 256;
  info->max_elementwise_workgroups = cpu ? 64 : MIN (info->max_workgroup_count[0], 65535);

  fill_peaks (info);
  return info;
}

static const char *
component_name (uint32_t t)
{
  switch (t)
    {
    case DL_COMPONENT_FLOAT16:
      return "f16";
    case DL_COMPONENT_FLOAT32:
      return "f32";
    case 2:
      return "f64";
    case 3:
      return "s8";
    case 4:
      return "s16";
    case 5:
      return "s32";
    case 6:
      return "s64";
    case 7:
      return "u8";
    case 8:
      return "u16";
    case 9:
      return "u32";
    case 10:
      return "u64";
    case DL_COMPONENT_BFLOAT16:
      return "bf16";
    default:
      return "?";
    }
}

static void
append_size (GString *s, VkDeviceSize bytes)
{
  g_autofree char *h = g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
  g_string_append (s, h);
}

static const char *
yes_no (gboolean b)
{
  return b ? "yes" : "no";
}

char *
dl_device_info_describe (const DlDeviceInfo *info)
{
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "Device %u: %s\n", info->index, info->name);
  g_string_append_printf (s, "  type: %s\n", dl_device_type_name (info->type));
  g_string_append_printf (s, "  vendor/device id: 0x%04x / 0x%04x\n", info->vendor_id, info->device_id);
  g_string_append_printf (s, "  Vulkan: %u.%u.%u\n", VK_API_VERSION_MAJOR (info->api_version),
                          VK_API_VERSION_MINOR (info->api_version), VK_API_VERSION_PATCH (info->api_version));
  g_string_append_printf (s, "  driver: %s%s%s%s\n", info->driver_name, *info->driver_info ? " (" : "",
                          info->driver_info, *info->driver_info ? ")" : "");
  if (info->api_version < VK_API_VERSION_1_2)
    g_string_append (s, "  usable: no (Dreamloom needs Vulkan 1.2)\n");
  g_string_append_printf (s, "  fp16 arithmetic: %s\n", yes_no (info->shader_float16));
  g_string_append_printf (s, "  16-bit storage: %s\n", yes_no (info->storage_buffer_16bit));
  g_string_append_printf (s, "  int8 arithmetic: %s (8-bit storage: %s)\n", yes_no (info->shader_int8),
                          yes_no (info->storage_buffer_8bit));
  g_string_append_printf (s, "  float32 atomic add: %s\n", yes_no (info->float32_atomic_add));
  g_string_append_printf (s, "  subgroup size: %u (min %u, max %u; size control: %s, full subgroups: %s)\n",
                          info->subgroup_size, info->subgroup_min_size, info->subgroup_max_size,
                          yes_no (info->subgroup_size_control), yes_no (info->compute_full_subgroups));
  g_string_append (s, "  subgroup operations:");
  static const struct
  {
    VkSubgroupFeatureFlagBits bit;
    const char *name;
  } sg_ops[] = {
    { VK_SUBGROUP_FEATURE_BASIC_BIT, "basic" },
    { VK_SUBGROUP_FEATURE_VOTE_BIT, "vote" },
    { VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic" },
    { VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot" },
    { VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle" },
    { VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle-relative" },
    { VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered" },
    { VK_SUBGROUP_FEATURE_QUAD_BIT, "quad" },
  };
  gboolean any = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (sg_ops); i++)
    if (info->subgroup_ops & sg_ops[i].bit)
      {
        g_string_append_printf (s, " %s", sg_ops[i].name);
        any = TRUE;
      }
  g_string_append (s, any ? "\n" : " none\n");
  g_string_append_printf (s, "  cooperative matrix (KHR): %s\n", yes_no (info->cooperative_matrix));
  for (guint i = 0; i < info->n_coopmat_shapes; i++)
    {
      const DlCoopmatShape *c = &info->coopmat_shapes[i];
      g_string_append_printf (s, "    %ux%ux%u  A %s  B %s  C %s  -> %s%s%s\n", c->m, c->n, c->k,
                              component_name (c->a_type), component_name (c->b_type), component_name (c->c_type),
                              component_name (c->result_type), c->scope == DL_SCOPE_SUBGROUP ? "  (subgroup)" : "",
                              c->saturating ? "  saturating" : "");
    }
  g_string_append (s, "  max storage buffer range: ");
  append_size (s, info->max_storage_buffer_range);
  g_string_append (s, "\n  max memory allocation: ");
  append_size (s, info->max_memory_allocation_size);
  if (info->max_buffer_size)
    {
      g_string_append (s, "\n  max buffer size: ");
      append_size (s, info->max_buffer_size);
    }
  g_string_append_printf (s, "\n  max shared memory: %u bytes\n", info->max_shared_memory);
  g_string_append_printf (s, "  max push constants: %u bytes\n", info->max_push_constants);
  g_string_append_printf (s, "  max workgroup: %u invocations, size %u x %u x %u, count %u x %u x %u\n",
                          info->max_workgroup_invocations, info->max_workgroup_size[0], info->max_workgroup_size[1],
                          info->max_workgroup_size[2], info->max_workgroup_count[0], info->max_workgroup_count[1],
                          info->max_workgroup_count[2]);
  for (guint h = 0; h < info->n_heaps; h++)
    {
      g_string_append_printf (s, "  memory heap %u: ", h);
      append_size (s, info->heaps[h].size);
      g_string_append_printf (s, "%s%s\n", info->heaps[h].device_local ? ", device-local" : "",
                              info->heaps[h].host_visible ? ", host-visible" : "");
    }
  g_string_append_printf (s, "  unified memory: %s\n", yes_no (info->unified_memory));
  if (info->timestamps)
    g_string_append_printf (s, "  timestamps: yes (%u valid bits, %.3g ns per tick)\n", info->timestamp_valid_bits,
                            info->timestamp_period_ns);
  else
    g_string_append (s, "  timestamps: no\n");
  g_string_append_printf (s, "  push descriptors: %s\n", yes_no (info->push_descriptor));
  if (info->peak_gflops_f32 > 0)
    g_string_append_printf (s, "  peak: %.0f GFLOP/s fp32, %.0f GFLOP/s fp16 matrix%s\n", info->peak_gflops_f32,
                            info->peak_gflops_f16,
                            info->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? " (estimated from the host CPU)" : "");
  else
    g_string_append (s, "  peak: unknown (set DREAMLOOM_PEAK_GFLOPS to give one)\n");
  if (info->peak_gbps > 0)
    g_string_append_printf (s, "  peak bandwidth: %.0f GB/s\n", info->peak_gbps);
  return g_string_free (s, FALSE);
}
