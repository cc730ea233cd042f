/* dl-device.h: Vulkan instance, physical-device choice and capabilities, and the
 * logical device every tensor and dispatch belongs to. */
#pragma once

#include <glib.h>
#include <vulkan/vulkan.h>

G_BEGIN_DECLS

typedef struct _DlDevice DlDevice;

typedef struct
{
  uint32_t m, n, k;
  uint32_t a_type, b_type, c_type, result_type; /* VkComponentTypeKHR values */
  uint32_t scope;                               /* VkScopeKHR value */
  gboolean saturating;
} DlCoopmatShape;

typedef struct
{
  VkDeviceSize size;
  gboolean device_local;
  gboolean host_visible; /* some memory type of this heap is host-visible */
} DlMemoryHeap;

/* Everything the engine branches on, probed once per physical device. */
typedef struct
{
  guint index; /* position in vkEnumeratePhysicalDevices order */
  char *name;
  char *driver_name;
  char *driver_info;
  VkPhysicalDeviceType type;
  uint32_t vendor_id, device_id;
  uint32_t api_version, driver_version;
  uint8_t pipeline_cache_uuid[VK_UUID_SIZE];

  /* arithmetic and storage */
  gboolean shader_float16;
  gboolean shader_int8;
  gboolean shader_int16;
  gboolean storage_buffer_16bit;
  gboolean storage_buffer_8bit;
  gboolean float32_atomic_add; /* VK_EXT_shader_atomic_float, buffers */

  /* subgroups */
  uint32_t subgroup_size;
  uint32_t subgroup_min_size, subgroup_max_size;
  gboolean subgroup_size_control;
  gboolean compute_full_subgroups;
  VkSubgroupFeatureFlags subgroup_ops;

  /* cooperative matrix (VK_KHR_cooperative_matrix) */
  gboolean cooperative_matrix;
  guint n_coopmat_shapes;
  DlCoopmatShape *coopmat_shapes;

  /* limits */
  VkDeviceSize max_storage_buffer_range;
  VkDeviceSize max_memory_allocation_size;
  VkDeviceSize max_buffer_size; /* 0 when the driver does not say (pre-1.3) */
  VkDeviceSize min_storage_buffer_offset_alignment;
  uint32_t max_shared_memory;
  uint32_t max_push_constants;
  uint32_t max_workgroup_invocations;
  uint32_t max_workgroup_size[3];
  uint32_t max_workgroup_count[3];

  guint n_heaps;
  DlMemoryHeap heaps[VK_MAX_MEMORY_HEAPS];
  VkDeviceSize device_local_bytes; /* sum of device-local heaps */
  gboolean unified_memory;         /* device-local memory is host-visible */

  /* timing */
  gboolean timestamps;
  float timestamp_period_ns;
  uint32_t timestamp_valid_bits;

  /* host-side conveniences */
  gboolean push_descriptor;

  /* What the kernels plan with, by device type: the workgroups that keep the
   * device busy (a CPU implementation has a handful of cores, a GPU wants
   * hundreds), and the most workgroups a 1-D elementwise dispatch uses (a CPU
   * implementation pays per workgroup: a few per core with long loops are
   * faster). */
  uint32_t busy_workgroups;
  uint32_t max_elementwise_workgroups;

  /* Peak arithmetic rate in GFLOP/s where known (a small table of GPUs, or
   * $DREAMLOOM_PEAK_GFLOPS); 0 when unknown. */
  double peak_gflops_f32;
  double peak_gflops_f16;
  /* Peak memory bandwidth in GB/s where known; 0 when unknown. */
  double peak_gbps;
} DlDeviceInfo;

void dl_device_info_free (DlDeviceInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlDeviceInfo, dl_device_info_free)

/* "discrete GPU", "integrated GPU", "CPU", ... */
const char *dl_device_type_name (VkPhysicalDeviceType type);

/* One block of "key: value" lines describing a device, for `dreamloom devices`. */
char *dl_device_info_describe (const DlDeviceInfo *info);

/* Probe every physical device.  Returns a GPtrArray of DlDeviceInfo (owned). */
GPtrArray *dl_device_list (GError **error);

/* Pick a device: `selector` (an index or a case-insensitive name substring), else
 * $DREAMLOOM_DEVICE, else the first discrete GPU, then integrated, then virtual,
 * then CPU (lavapipe).  Sets *chosen to the index of the pick. */
gboolean dl_device_choose (GPtrArray *infos, const char *selector, guint *chosen, GError **error);

/* Create the logical device.  Vulkan validation is enabled when
 * $DREAMLOOM_VALIDATION is 1 (it is an error if the layer is not installed). */
DlDevice *dl_device_new (const char *selector, GError **error);
void dl_device_free (DlDevice *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlDevice, dl_device_free)

const DlDeviceInfo *dl_device_get_info (DlDevice *device);

/* Tuning and diagnosis switches: read from the environment once, when the
 * device is created, never on an op's path.  Zero or "" means "choose by
 * shape and device", as the engine does by default. */
typedef struct
{
  char conv_tile[8];                /* $DREAMLOOM_CONV_TILE: l, t, m, s or n */
  gint64 conv_splitk;               /* $DREAMLOOM_CONV_SPLITK: weight-gradient K splits */
  gint64 conv_images_per_dispatch;  /* $DREAMLOOM_CONV_IMAGES_PER_DISPATCH: at most this many */
  gint64 linear_rows_per_block;     /* $DREAMLOOM_LINEAR_ROWS_PER_BLOCK: at most this many */
  char matmul_tile[8];              /* $DREAMLOOM_MATMUL_TILE: s, m, l, t, n, c or r */
  guint attn_block_q, attn_block_k; /* $DREAMLOOM_ATTN_TILE=<q>x<k> */
  gboolean no_arena;                /* $DREAMLOOM_NO_ARENA=1: every activation its own allocation */
  char no_arena_for[64];            /* $DREAMLOOM_NO_ARENA_FOR: the same for names containing this */
  gboolean no_pipeline_cache;       /* $DREAMLOOM_NO_PIPELINE_CACHE: neither read nor write it */
  gboolean no_push_descriptor;      /* $DREAMLOOM_DISABLE_PUSH_DESCRIPTOR: descriptor sets instead */
  guint64 memory_limit;             /* $DREAMLOOM_MEMORY_LIMIT ("6G", "1536M", bytes): the device's
                                       memory limit (dl_device_set_memory_limit) from creation */
} DlDeviceTuning;

/* The switches as the environment sets them now. */
void dl_device_tuning_from_env (DlDeviceTuning *tuning);
const DlDeviceTuning *dl_device_get_tuning (DlDevice *device);
/* Replace the switches (tests steer an op's choices with it; call it between
 * ops, not while another thread records).  no_push_descriptor only takes
 * effect at creation, and memory_limit is applied there (later,
 * dl_device_set_memory_limit sets it). */
void dl_device_set_tuning (DlDevice *device, const DlDeviceTuning *tuning);

/* Validation messages (warnings and errors) seen since the device was created. */
guint dl_device_get_validation_message_count (DlDevice *device);
gboolean dl_device_has_validation (DlDevice *device);
/* Validation messages seen by every device of this process, including while one
 * was being destroyed. */
guint dl_validation_message_total (void);

/* Wait until the device has finished all submitted work. */
gboolean dl_device_wait_idle (DlDevice *device, GError **error);

/* ---- device memory ---- */

/* Bytes currently allocated to tensors, and the peak since creation (or the last reset). */
guint64 dl_device_get_memory_in_use (DlDevice *device);
guint64 dl_device_get_memory_peak (DlDevice *device);
void dl_device_reset_memory_peak (DlDevice *device);
/* What a tensor of `bytes` takes from the device's memory (allocations are
 * aligned: at least 256 bytes each). */
guint64 dl_device_allocation_size (DlDevice *device, guint64 bytes);
/* Bytes held in VkDeviceMemory blocks (>= in use). */
guint64 dl_device_get_memory_reserved (DlDevice *device);
/* Refuse allocations past `bytes` in use (0 = no limit): a user budget, and a way to
 * exercise out-of-memory handling in tests. */
void dl_device_set_memory_limit (DlDevice *device, guint64 bytes);
guint64 dl_device_get_memory_limit (DlDevice *device);
/* Device-local memory this process may use: VK_EXT_memory_budget's budget where
 * the driver has it (*from_driver TRUE), else the heap sizes; never more than the
 * limit above. */
guint64 dl_device_get_memory_budget (DlDevice *device, gboolean *from_driver);
/* Give empty memory blocks back to the driver (waits for the device first). */
gboolean dl_device_trim_memory (DlDevice *device, GError **error);

G_END_DECLS
