/* Device memory: tensors are suballocated from a few large VkDeviceMemory blocks
 * (one VkBuffer spanning each), so allocation is cheap and Vulkan object counts
 * stay small.  Blocks grow geometrically up to 1 GiB; a request larger than a block
 * gets a block of its own. */
#include "dl-device-private.h"

#include <string.h>
#include <unistd.h>

#define MIN_BLOCK_SIZE ((VkDeviceSize)64 << 20)
#define MAX_BLOCK_SIZE ((VkDeviceSize)1 << 30)
#define STAGING_MAX ((VkDeviceSize)64 << 20)

static const VkBufferUsageFlags buffer_usage =
  VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

static int
find_memory_type (const VkPhysicalDeviceMemoryProperties *mem, uint32_t allowed, VkMemoryPropertyFlags want,
                  VkDeviceSize min_heap)
{
  for (uint32_t t = 0; t < mem->memoryTypeCount; t++)
    if ((allowed & (1u << t)) && (mem->memoryTypes[t].propertyFlags & want) == want &&
        mem->memoryHeaps[mem->memoryTypes[t].heapIndex].size >= min_heap)
      return (int)t;
  return -1;
}

static VkDeviceSize
align_up (VkDeviceSize v, VkDeviceSize a)
{
  return (v + a - 1) / a * a;
}

gboolean
dl_memory_init (DlDevice *self, GError **error)
{
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties (self->physical, &mem);

  /* Ask a throwaway buffer which memory types storage buffers may use. */
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = 4096,
    .usage = buffer_usage,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkBuffer probe;
  if (!DL_VK_CHECK (vkCreateBuffer (self->device, &bci, NULL, &probe), error))
    return FALSE;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (self->device, probe, &req);
  vkDestroyBuffer (self->device, probe, NULL);

  VkDeviceSize largest_local = 0;
  for (uint32_t h = 0; h < mem.memoryHeapCount; h++)
    if ((mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mem.memoryHeaps[h].size > largest_local)
      largest_local = mem.memoryHeaps[h].size;

  const VkMemoryPropertyFlags mapped_local =
    VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  /* Host-visible device memory is worth using directly only when it is (nearly) all
   * of VRAM: unified memory, lavapipe, resizable BAR.  A 256 MiB BAR window is not. */
  int t = find_memory_type (&mem, req.memoryTypeBits, mapped_local, largest_local / 10 * 9);
  self->device_memory_mapped = t >= 0;
  if (t < 0)
    t = find_memory_type (&mem, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
  if (t < 0)
    t = find_memory_type (&mem, req.memoryTypeBits, 0, 0);
  if (t < 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s offers no memory type for storage buffers",
                   self->info->name);
      return FALSE;
    }
  self->device_memory_type = (uint32_t)t;

  const VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  int s = find_memory_type (&mem, req.memoryTypeBits, host | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
  if (s < 0)
    s = find_memory_type (&mem, req.memoryTypeBits, host, 0);
  if (s < 0 && !self->device_memory_mapped)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s offers no host-visible memory for transfers",
                   self->info->name);
      return FALSE;
    }
  self->staging_memory_type = (uint32_t)MAX (s, 0);

  self->alloc_alignment = MAX (MAX (req.alignment, self->info->min_storage_buffer_offset_alignment), 256);
  self->blocks = g_ptr_array_new ();
  return TRUE;
}

static void
block_destroy (DlDevice *self, DlMemBlock *b)
{
  if (b->mapped)
    vkUnmapMemory (self->device, b->memory);
  vkDestroyBuffer (self->device, b->buffer, NULL);
  vkFreeMemory (self->device, b->memory, NULL);
  self->reserved -= b->size;
  g_array_unref (b->free_ranges);
  g_free (b);
}

void
dl_memory_shutdown (DlDevice *self)
{
  if (self->blocks)
    {
      for (guint i = 0; i < self->blocks->len; i++)
        block_destroy (self, g_ptr_array_index (self->blocks, i));
      g_clear_pointer (&self->blocks, g_ptr_array_unref);
    }
  if (self->staging_buffer)
    {
      vkUnmapMemory (self->device, self->staging_memory);
      vkDestroyBuffer (self->device, self->staging_buffer, NULL);
      vkFreeMemory (self->device, self->staging_memory, NULL);
    }
  if (self->transfer_fence)
    vkDestroyFence (self->device, self->transfer_fence, NULL);
  if (self->transfer_pool)
    vkDestroyCommandPool (self->device, self->transfer_pool, NULL);
}

static void
oom_error (DlDevice *self, GError **error, const char *what, VkDeviceSize size, const char *why)
{
  g_autofree char *req = g_format_size_full (size, G_FORMAT_SIZE_IEC_UNITS);
  g_autofree char *used = g_format_size_full (self->in_use, G_FORMAT_SIZE_IEC_UNITS);
  g_autofree char *peak = g_format_size_full (self->peak, G_FORMAT_SIZE_IEC_UNITS);
  g_autofree char *total = g_format_size_full (self->info->device_local_bytes, G_FORMAT_SIZE_IEC_UNITS);
  g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_DEVICE_MEMORY,
               "Out of GPU memory allocating tensor “%s” (%s): %s; %s in use, %s peak, %s on %s",
               what ? what : "(unnamed)", req, why, used, peak, total, self->info->name);
}

static DlMemBlock *
block_new (DlDevice *self, VkDeviceSize size, const char *what, GError **error)
{
  g_autoptr (GError) local = NULL;
  DlMemBlock *b = g_new0 (DlMemBlock, 1);
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = size,
    .usage = buffer_usage,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  if (!DL_VK_CHECK (vkCreateBuffer (self->device, &bci, NULL, &b->buffer), &local))
    goto fail;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (self->device, b->buffer, &req);
  VkMemoryAllocateInfo mai = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req.size,
    .memoryTypeIndex = self->device_memory_type,
  };
  if (!DL_VK_CHECK (vkAllocateMemory (self->device, &mai, NULL, &b->memory), &local))
    goto fail;
  if (!DL_VK_CHECK (vkBindBufferMemory (self->device, b->buffer, b->memory, 0), &local))
    goto fail;
  if (self->device_memory_mapped &&
      !DL_VK_CHECK (vkMapMemory (self->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped), &local))
    goto fail;

  b->size = size;
  b->id = self->next_block_id++;
  b->free_ranges = g_array_new (FALSE, FALSE, sizeof (DlRange));
  DlRange all = { 0, size };
  g_array_append_val (b->free_ranges, all);
  self->reserved += size;
  char *label = g_strdup_printf ("dreamloom block %u", b->id);
  dl_device_set_object_name (self, VK_OBJECT_TYPE_BUFFER, (uint64_t)b->buffer, label);
  g_free (label);
  return b;

fail:
  if (b->memory)
    vkFreeMemory (self->device, b->memory, NULL);
  if (b->buffer)
    vkDestroyBuffer (self->device, b->buffer, NULL);
  g_free (b);
  if (g_error_matches (local, DL_ERROR, DL_ERROR_OUT_OF_DEVICE_MEMORY) ||
      g_error_matches (local, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY))
    oom_error (self, error, what, size, "the driver refused a new memory block");
  else
    g_propagate_prefixed_error (error, g_steal_pointer (&local), "Allocating tensor “%s”: ", what ? what : "(unnamed)");
  return NULL;
}

static gboolean
block_take (DlMemBlock *b, VkDeviceSize size, VkDeviceSize *offset)
{
  for (guint i = 0; i < b->free_ranges->len; i++)
    {
      DlRange *r = &g_array_index (b->free_ranges, DlRange, i);
      if (r->size < size)
        continue;
      *offset = r->offset;
      r->offset += size;
      r->size -= size;
      if (r->size == 0)
        g_array_remove_index (b->free_ranges, i);
      b->used += size;
      return TRUE;
    }
  return FALSE;
}

static void
block_give_back (DlMemBlock *b, VkDeviceSize offset, VkDeviceSize size)
{
  GArray *fr = b->free_ranges;
  guint i = 0;
  while (i < fr->len && g_array_index (fr, DlRange, i).offset < offset)
    i++;
  DlRange r = { offset, size };
  g_array_insert_val (fr, i, r);
  /* merge with the next range, then with the previous one */
  if (i + 1 < fr->len)
    {
      DlRange *cur = &g_array_index (fr, DlRange, i), *next = &g_array_index (fr, DlRange, i + 1);
      if (cur->offset + cur->size == next->offset)
        {
          cur->size += next->size;
          g_array_remove_index (fr, i + 1);
        }
    }
  if (i > 0)
    {
      DlRange *prev = &g_array_index (fr, DlRange, i - 1), *cur = &g_array_index (fr, DlRange, i);
      if (prev->offset + prev->size == cur->offset)
        {
          prev->size += cur->size;
          g_array_remove_index (fr, i);
        }
    }
  b->used -= size;
}

DlAllocation *
dl_memory_alloc (DlDevice *self, VkDeviceSize size, const char *what, GError **error)
{
  VkDeviceSize asize = dl_device_allocation_size (self, size);
  VkDeviceSize max_alloc =
    self->info->max_memory_allocation_size ? self->info->max_memory_allocation_size : G_MAXUINT64;
  if (self->info->max_buffer_size)
    max_alloc = MIN (max_alloc, self->info->max_buffer_size);

  g_mutex_lock (&self->mem_mutex);
  DlAllocation *a = NULL;

  if (self->limit && self->in_use + asize > self->limit)
    {
      g_autofree char *lim = g_format_size_full (self->limit, G_FORMAT_SIZE_IEC_UNITS);
      g_autofree char *why = g_strdup_printf ("the memory limit is %s", lim);
      oom_error (self, error, what, asize, why);
      goto out;
    }
  if (asize > max_alloc || (self->info->device_local_bytes && asize > self->info->device_local_bytes))
    {
      oom_error (self, error, what, asize, "larger than the device can allocate at once");
      goto out;
    }

  for (guint i = 0; i < self->blocks->len; i++)
    {
      DlMemBlock *b = g_ptr_array_index (self->blocks, i);
      VkDeviceSize off;
      if (block_take (b, asize, &off))
        {
          a = g_new0 (DlAllocation, 1);
          *a = (DlAllocation){ b, off, asize };
          break;
        }
    }
  if (!a)
    {
      VkDeviceSize bsize = MAX (MIN_BLOCK_SIZE, MIN (self->reserved, MAX_BLOCK_SIZE));
      bsize = MIN (bsize, max_alloc);
      bsize = MAX (bsize, asize);
      DlMemBlock *b = block_new (self, bsize, what, error);
      if (!b)
        goto out;
      g_ptr_array_add (self->blocks, b);
      VkDeviceSize off;
      gboolean ok = block_take (b, asize, &off);
      g_assert (ok);
      a = g_new0 (DlAllocation, 1);
      *a = (DlAllocation){ b, off, asize };
    }
  self->in_use += asize;
  self->peak = MAX (self->peak, self->in_use);

out:
  g_mutex_unlock (&self->mem_mutex);
  return a;
}

void
dl_memory_free (DlDevice *self, DlAllocation *a)
{
  if (!a)
    return;
  g_mutex_lock (&self->mem_mutex);
  block_give_back (a->block, a->offset, a->size);
  self->in_use -= a->size;
  g_mutex_unlock (&self->mem_mutex);
  g_free (a);
}

guint64
dl_device_allocation_size (DlDevice *self, guint64 bytes)
{
  g_return_val_if_fail (self != NULL, bytes);
  return align_up (MAX (bytes, 1), self->alloc_alignment);
}

guint64
dl_device_get_memory_in_use (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->mem_mutex);
  guint64 v = self->in_use;
  g_mutex_unlock (&self->mem_mutex);
  return v;
}

guint64
dl_device_get_memory_peak (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->mem_mutex);
  guint64 v = self->peak;
  g_mutex_unlock (&self->mem_mutex);
  return v;
}

void
dl_device_reset_memory_peak (DlDevice *self)
{
  g_return_if_fail (self != NULL);
  g_mutex_lock (&self->mem_mutex);
  self->peak = self->in_use;
  g_mutex_unlock (&self->mem_mutex);
}

guint64
dl_device_get_memory_reserved (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->mem_mutex);
  guint64 v = self->reserved;
  g_mutex_unlock (&self->mem_mutex);
  return v;
}

guint64
dl_device_get_memory_limit (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, 0);
  g_mutex_lock (&self->mem_mutex);
  guint64 limit = self->limit;
  g_mutex_unlock (&self->mem_mutex);
  return limit;
}

void
dl_device_set_memory_limit (DlDevice *self, guint64 bytes)
{
  g_return_if_fail (self != NULL);
  g_mutex_lock (&self->mem_mutex);
  self->limit = bytes;
  g_mutex_unlock (&self->mem_mutex);
}

gboolean
dl_device_trim_memory (DlDevice *self, GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  if (!dl_device_wait_idle (self, error))
    return FALSE;
  g_mutex_lock (&self->mem_mutex);
  for (guint i = self->blocks->len; i > 0; i--)
    {
      DlMemBlock *b = g_ptr_array_index (self->blocks, i - 1);
      if (b->used == 0)
        {
          g_ptr_array_remove_index (self->blocks, i - 1);
          block_destroy (self, b);
        }
    }
  g_mutex_unlock (&self->mem_mutex);
  return TRUE;
}

/* ---- transfers ---- */

static gboolean
ensure_staging (DlDevice *self, GError **error)
{
  if (self->staging_buffer)
    return TRUE;
  VkCommandPoolCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = self->queue_family,
  };
  if (!DL_VK_CHECK (vkCreateCommandPool (self->device, &pci, NULL, &self->transfer_pool), error))
    return FALSE;
  VkCommandBufferAllocateInfo cai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = self->transfer_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  if (!DL_VK_CHECK (vkAllocateCommandBuffers (self->device, &cai, &self->transfer_cmd), error))
    return FALSE;
  VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if (!DL_VK_CHECK (vkCreateFence (self->device, &fci, NULL, &self->transfer_fence), error))
    return FALSE;

  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = STAGING_MAX,
    .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  if (!DL_VK_CHECK (vkCreateBuffer (self->device, &bci, NULL, &self->staging_buffer), error))
    return FALSE;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (self->device, self->staging_buffer, &req);
  VkMemoryAllocateInfo mai = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req.size,
    .memoryTypeIndex = self->staging_memory_type,
  };
  if (!DL_VK_CHECK (vkAllocateMemory (self->device, &mai, NULL, &self->staging_memory), error) ||
      !DL_VK_CHECK (vkBindBufferMemory (self->device, self->staging_buffer, self->staging_memory, 0), error) ||
      !DL_VK_CHECK (vkMapMemory (self->device, self->staging_memory, 0, VK_WHOLE_SIZE, 0, &self->staging_mapped),
                    error))
    return FALSE;
  self->staging_size = STAGING_MAX;
  return TRUE;
}

/* Copy through the staging buffer, one chunk per submission. */
static gboolean
staged_copy (DlDevice *self, DlMemBlock *block, VkDeviceSize offset, void *host, VkDeviceSize size, gboolean to_device,
             GError **error)
{
  gboolean ok = FALSE;
  g_mutex_lock (&self->transfer_mutex);
  if (!ensure_staging (self, error))
    goto out;
  for (VkDeviceSize done = 0; done < size;)
    {
      VkDeviceSize n = MIN (size - done, self->staging_size);
      if (to_device)
        memcpy (self->staging_mapped, (const char *)host + done, n);

      VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
      };
      if (!DL_VK_CHECK (vkResetCommandBuffer (self->transfer_cmd, 0), error) ||
          !DL_VK_CHECK (vkBeginCommandBuffer (self->transfer_cmd, &bi), error))
        goto out;
      VkBufferCopy region = {
        .srcOffset = to_device ? 0 : offset + done,
        .dstOffset = to_device ? offset + done : 0,
        .size = n,
      };
      if (to_device)
        vkCmdCopyBuffer (self->transfer_cmd, self->staging_buffer, block->buffer, 1, &region);
      else
        vkCmdCopyBuffer (self->transfer_cmd, block->buffer, self->staging_buffer, 1, &region);
      /* make the copy visible to later compute work and to the host */
      VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT,
      };
      vkCmdPipelineBarrier (self->transfer_cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0,
                            NULL);
      if (!DL_VK_CHECK (vkEndCommandBuffer (self->transfer_cmd), error))
        goto out;
      VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &self->transfer_cmd,
      };
      g_mutex_lock (&self->queue_mutex);
      /* Earlier compute work may still read or write this range: transfers are rare
       * enough that waiting for the queue is the simple, safe order. */
      VkResult r = vkQueueWaitIdle (self->queue);
      if (r == VK_SUCCESS)
        r = vkQueueSubmit (self->queue, 1, &si, self->transfer_fence);
      g_mutex_unlock (&self->queue_mutex);
      if (!DL_VK_CHECK (r, error) ||
          !DL_VK_CHECK (vkWaitForFences (self->device, 1, &self->transfer_fence, VK_TRUE, UINT64_MAX), error) ||
          !DL_VK_CHECK (vkResetFences (self->device, 1, &self->transfer_fence), error))
        goto out;
      if (!to_device)
        memcpy ((char *)host + done, self->staging_mapped, n);
      done += n;
    }
  ok = TRUE;
out:
  g_mutex_unlock (&self->transfer_mutex);
  return ok;
}

gboolean
dl_memory_write (DlDevice *self, DlMemBlock *block, VkDeviceSize offset, const void *data, VkDeviceSize size,
                 GError **error)
{
  if (block->mapped)
    {
      if (!dl_device_wait_idle (self, error))
        return FALSE;
      memcpy ((char *)block->mapped + offset, data, size);
      return TRUE;
    }
  return staged_copy (self, block, offset, (void *)data, size, TRUE, error);
}

gboolean
dl_memory_read (DlDevice *self, DlMemBlock *block, VkDeviceSize offset, void *data, VkDeviceSize size, GError **error)
{
  if (block->mapped)
    {
      if (!dl_device_wait_idle (self, error))
        return FALSE;
      memcpy (data, (const char *)block->mapped + offset, size);
      return TRUE;
    }
  return staged_copy (self, block, offset, data, size, FALSE, error);
}

/* What the host can still give this process: /proc/meminfo's MemAvailable
 * (Linux), else the physical memory. */
static guint64
host_available_bytes (void)
{
  g_autofree char *text = NULL;
  if (g_file_get_contents ("/proc/meminfo", &text, NULL, NULL))
    {
      const char *line = strstr (text, "MemAvailable:");
      if (line)
        return g_ascii_strtoull (line + strlen ("MemAvailable:"), NULL, 10) * 1024;
    }
  long pages = sysconf (_SC_PHYS_PAGES), size = sysconf (_SC_PAGESIZE);
  return pages > 0 && size > 0 ? (guint64)pages * (guint64)size : 0;
}

guint64
dl_device_get_memory_budget (DlDevice *self, gboolean *from_driver)
{
  g_return_val_if_fail (self != NULL, 0);
  /* VK_EXT_memory_budget: what this process may use of each heap now (other
   * programs' use taken off), plus what we hold already */
  gboolean have = dl_device_has_extension (self->physical, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT,
  };
  VkPhysicalDeviceMemoryProperties2 props = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
    .pNext = have ? &budget : NULL,
  };
  vkGetPhysicalDeviceMemoryProperties2 (self->physical, &props);
  guint64 total = 0;
  for (uint32_t h = 0; h < props.memoryProperties.memoryHeapCount; h++)
    {
      const VkMemoryHeap *heap = &props.memoryProperties.memoryHeaps[h];
      if (!(heap->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT))
        continue;
      total += have && budget.heapBudget[h] ? MIN (budget.heapBudget[h], heap->size) : heap->size;
    }
  if (from_driver)
    *from_driver = have;
  g_mutex_lock (&self->mem_mutex);
  guint64 limit = self->limit, held = self->in_use;
  g_mutex_unlock (&self->mem_mutex);
  /* a CPU device's memory is the host's: lavapipe before Mesa 23 reports a
   * 2 GiB heap it does not enforce (and no budget extension), which would
   * refuse every real model and shrink every tile */
  if (!have && dl_device_get_info (self)->type == VK_PHYSICAL_DEVICE_TYPE_CPU)
    total = MAX (total, host_available_bytes () + held);
  return limit ? MIN (limit, total) : total;
}
