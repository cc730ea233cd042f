/* dl-device-private.h: DlDevice internals shared by the files of compute/vk/. */
#pragma once

#include "dl-device.h"
#include "dl-error.h"

G_BEGIN_DECLS

#define DL_MAX_BINDINGS 12
#define DL_MAX_PUSH_CONSTANTS 128

/* One VkDeviceMemory with one VkBuffer spanning it; tensors are ranges inside. */
typedef struct _DlMemBlock
{
  VkDeviceMemory memory;
  VkBuffer buffer;
  VkDeviceSize size;
  void *mapped; /* non-NULL when the memory is host-visible and coherent */
  guint id;
  GArray *free_ranges; /* DlRange, sorted by offset, coalesced */
  VkDeviceSize used;
} DlMemBlock;

typedef struct
{
  VkDeviceSize offset, size;
} DlRange;

typedef struct _DlAllocation
{
  DlMemBlock *block;
  VkDeviceSize offset;
  VkDeviceSize size; /* rounded up to the allocation alignment */
} DlAllocation;

typedef struct _DlPipeline DlPipeline;

struct _DlDevice
{
  DlDeviceInfo *info;
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  GMutex queue_mutex;

  gboolean validation;
  gboolean debug_utils;
  gint validation_messages; /* atomic */
  gboolean use_push_descriptor;
  DlDeviceTuning tuning;
  gboolean host_query_reset;

  PFN_vkCmdPushDescriptorSetKHR cmd_push_descriptor_set;
  PFN_vkSetDebugUtilsObjectNameEXT set_object_name;

  /* memory */
  GMutex mem_mutex;
  uint32_t device_memory_type;
  gboolean device_memory_mapped; /* device_memory_type is host-visible + coherent */
  uint32_t staging_memory_type;
  VkDeviceSize alloc_alignment;
  GPtrArray *blocks; /* DlMemBlock* */
  guint next_block_id;
  guint64 in_use, peak, reserved, limit;

  /* synchronous transfers through a staging buffer (non-mappable device memory) */
  GMutex transfer_mutex;
  VkCommandPool transfer_pool;
  VkCommandBuffer transfer_cmd;
  VkFence transfer_fence;
  VkBuffer staging_buffer;
  VkDeviceMemory staging_memory;
  void *staging_mapped;
  VkDeviceSize staging_size;

  /* pipelines */
  GMutex pipe_mutex;
  GHashTable *pipelines; /* key string -> DlPipeline* */
  VkDescriptorSetLayout set_layouts[DL_MAX_BINDINGS + 1];
  VkPipelineCache pipeline_cache;
  char *pipeline_cache_path;
  guint pipelines_created;
};

/* dl-vk-util.c */
const char *dl_vk_result_string (VkResult r);
/* Turn a failed VkResult into a GError; returns TRUE on VK_SUCCESS. */
gboolean dl_vk_check (VkResult r, const char *what, GError **error);
#define DL_VK_CHECK(call, error) dl_vk_check ((call), #call, (error))
void dl_device_set_object_name (DlDevice *device, VkObjectType type, uint64_t handle, const char *name);

/* dl-device-caps.c */
DlDeviceInfo *dl_device_info_probe (VkInstance instance, VkPhysicalDevice phys, guint index);
gboolean dl_device_has_extension (VkPhysicalDevice phys, const char *name);

/* dl-memory.c */
gboolean dl_memory_init (DlDevice *device, GError **error);
void dl_memory_shutdown (DlDevice *device);
DlAllocation *dl_memory_alloc (DlDevice *device, VkDeviceSize size, const char *what, GError **error);
void dl_memory_free (DlDevice *device, DlAllocation *alloc);
gboolean dl_memory_write (DlDevice *device, DlMemBlock *block, VkDeviceSize offset, const void *data, VkDeviceSize size,
                          GError **error);
gboolean dl_memory_read (DlDevice *device, DlMemBlock *block, VkDeviceSize offset, void *data, VkDeviceSize size,
                         GError **error);

/* dl-pipeline.c */
gboolean dl_pipelines_init (DlDevice *device, GError **error);
void dl_pipelines_shutdown (DlDevice *device);

G_END_DECLS
