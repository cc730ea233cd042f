#include "dl-recorder.h"

#include "dl-pipeline-private.h"

#include <string.h>

#define DEFAULT_CHUNK 128
#define MAX_PENDING_RANGES 256
#define SETS_PER_POOL 128

typedef struct
{
  DlMemBlock *block;
  guint64 start, end;
} Span;

/* Descriptor sets for devices without push descriptors: allocated once per chunk
 * and binding count, rewritten each time the chunk is recorded again. */
typedef struct
{
  GArray *sets; /* VkDescriptorSet */
  guint used;
} SetCache;

typedef struct
{
  VkCommandBuffer cmd;
  VkFence fence;
  gboolean recording;
  gboolean pending;
  guint n_dispatches;
  VkQueryPool queries;
  guint query_capacity;
  GPtrArray *labels; /* const char* per timed dispatch */
  GArray *pools;     /* VkDescriptorPool */
  guint pool_free;   /* sets left in the newest pool */
  SetCache sets[DL_MAX_BINDINGS + 1];
  VkPipeline bound;
} Chunk;

struct _DlRecorder
{
  DlDevice *dev;
  VkCommandPool pool;
  GPtrArray *chunks; /* Chunk* */
  Chunk *cur;
  guint chunk_size;
  gboolean profiling;
  guint64 max_binding_range; /* 0: the device's maxStorageBufferRange */

  GArray *reads;  /* Span since the last barrier */
  GArray *writes; /* Span since the last barrier */

  GPtrArray *held; /* released once the GPU is done */

  guint64 n_dispatches, n_barriers, n_submits;
  GHashTable *profile; /* name -> DlProfileEntry* */
  double profile_total_ns;
};

static void
chunk_free (DlRecorder *rec, Chunk *c)
{
  VkDevice d = rec->dev->device;
  if (c->fence)
    vkDestroyFence (d, c->fence, NULL);
  if (c->queries)
    vkDestroyQueryPool (d, c->queries, NULL);
  if (c->pools)
    {
      for (guint i = 0; i < c->pools->len; i++)
        vkDestroyDescriptorPool (d, g_array_index (c->pools, VkDescriptorPool, i), NULL);
      g_array_unref (c->pools);
    }
  for (int i = 0; i <= DL_MAX_BINDINGS; i++)
    if (c->sets[i].sets)
      g_array_unref (c->sets[i].sets);
  if (c->labels)
    g_ptr_array_unref (c->labels);
  g_free (c);
}

DlRecorder *
dl_recorder_new (DlDevice *dev, GError **error)
{
  g_return_val_if_fail (dev != NULL, NULL);
  DlRecorder *rec = g_new0 (DlRecorder, 1);
  rec->dev = dev;
  rec->chunk_size = DEFAULT_CHUNK;
  rec->chunks = g_ptr_array_new ();
  rec->reads = g_array_new (FALSE, FALSE, sizeof (Span));
  rec->writes = g_array_new (FALSE, FALSE, sizeof (Span));
  rec->profile = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  rec->held = g_ptr_array_new ();
  VkCommandPoolCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = dev->queue_family,
  };
  if (!DL_VK_CHECK (vkCreateCommandPool (dev->device, &ci, NULL, &rec->pool), error))
    {
      dl_recorder_free (rec);
      return NULL;
    }
  return rec;
}

typedef struct
{
  gpointer data;
  GDestroyNotify destroy;
} Held;

static void
release_held (DlRecorder *rec)
{
  for (guint i = 0; i < rec->held->len; i++)
    {
      Held *h = g_ptr_array_index (rec->held, i);
      h->destroy (h->data);
      g_free (h);
    }
  g_ptr_array_set_size (rec->held, 0);
}

void
dl_recorder_hold (DlRecorder *rec, gpointer data, GDestroyNotify destroy)
{
  g_return_if_fail (rec != NULL);
  Held *h = g_new (Held, 1);
  h->data = data;
  h->destroy = destroy;
  g_ptr_array_add (rec->held, h);
}

void
dl_recorder_free (DlRecorder *rec)
{
  if (!rec)
    return;
  /* never destroy command buffers the GPU may still run */
  for (guint i = 0; i < rec->chunks->len; i++)
    {
      Chunk *c = g_ptr_array_index (rec->chunks, i);
      if (c->pending)
        vkWaitForFences (rec->dev->device, 1, &c->fence, VK_TRUE, UINT64_MAX);
      if (c->recording)
        vkEndCommandBuffer (c->cmd);
      chunk_free (rec, c);
    }
  g_ptr_array_unref (rec->chunks);
  release_held (rec);
  g_ptr_array_unref (rec->held);
  if (rec->pool)
    vkDestroyCommandPool (rec->dev->device, rec->pool, NULL);
  g_array_unref (rec->reads);
  g_array_unref (rec->writes);
  g_hash_table_unref (rec->profile);
  g_free (rec);
}

DlDevice *
dl_recorder_get_device (DlRecorder *rec)
{
  return rec->dev;
}

void
dl_recorder_set_profiling (DlRecorder *rec, gboolean enable)
{
  g_return_if_fail (rec != NULL);
  rec->profiling = enable && rec->dev->info->timestamps;
}

gboolean
dl_recorder_get_profiling (DlRecorder *rec)
{
  return rec->profiling;
}

void
dl_recorder_set_chunk_size (DlRecorder *rec, guint dispatches)
{
  g_return_if_fail (rec != NULL);
  rec->chunk_size = MAX (dispatches, 1);
}

void
dl_recorder_set_max_binding_range (DlRecorder *rec, guint64 bytes)
{
  g_return_if_fail (rec != NULL);
  g_return_if_fail (bytes == 0 || bytes >= 2 * DL_BINDING_ALIGN);
  rec->max_binding_range = bytes;
}

guint64
dl_recorder_get_max_binding_range (DlRecorder *rec)
{
  g_return_val_if_fail (rec != NULL, 0);
  guint64 dev = rec->dev->info->max_storage_buffer_range;
  return rec->max_binding_range ? MIN (rec->max_binding_range, dev) : dev;
}

static Chunk *
chunk_new (DlRecorder *rec, GError **error)
{
  Chunk *c = g_new0 (Chunk, 1);
  VkCommandBufferAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = rec->pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if (!DL_VK_CHECK (vkAllocateCommandBuffers (rec->dev->device, &ai, &c->cmd), error) ||
      !DL_VK_CHECK (vkCreateFence (rec->dev->device, &fi, NULL, &c->fence), error))
    {
      chunk_free (rec, c);
      return NULL;
    }
  c->labels = g_ptr_array_new ();
  c->pools = g_array_new (FALSE, FALSE, sizeof (VkDescriptorPool));
  return c;
}

static gboolean
ensure_queries (DlRecorder *rec, Chunk *c, GError **error)
{
  guint need = rec->chunk_size + 1;
  if (c->queries && c->query_capacity >= need)
    return TRUE;
  if (c->queries)
    vkDestroyQueryPool (rec->dev->device, c->queries, NULL);
  c->queries = VK_NULL_HANDLE;
  VkQueryPoolCreateInfo qi = {
    .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
    .queryType = VK_QUERY_TYPE_TIMESTAMP,
    .queryCount = need,
  };
  if (!DL_VK_CHECK (vkCreateQueryPool (rec->dev->device, &qi, NULL, &c->queries), error))
    return FALSE;
  c->query_capacity = need;
  return TRUE;
}

/* A chunk that is not in flight, begun and ready to record. */
static Chunk *
begin_chunk (DlRecorder *rec, GError **error)
{
  if (rec->cur)
    return rec->cur;
  Chunk *c = NULL;
  for (guint i = 0; i < rec->chunks->len; i++)
    {
      Chunk *cand = g_ptr_array_index (rec->chunks, i);
      if (!cand->pending && !cand->recording)
        {
          c = cand;
          break;
        }
    }
  if (!c)
    {
      c = chunk_new (rec, error);
      if (!c)
        return NULL;
      g_ptr_array_add (rec->chunks, c);
    }

  VkCommandBufferBeginInfo bi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  if (!DL_VK_CHECK (vkResetCommandBuffer (c->cmd, 0), error) ||
      !DL_VK_CHECK (vkBeginCommandBuffer (c->cmd, &bi), error))
    return NULL;
  c->recording = TRUE;
  c->n_dispatches = 0;
  c->bound = VK_NULL_HANDLE;
  g_ptr_array_set_size (c->labels, 0);
  for (int i = 0; i <= DL_MAX_BINDINGS; i++)
    c->sets[i].used = 0;

  if (rec->profiling)
    {
      if (!ensure_queries (rec, c, error))
        return NULL;
      vkCmdResetQueryPool (c->cmd, c->queries, 0, c->query_capacity);
      /* BOTTOM_OF_PIPE: written once everything submitted before has completed */
      vkCmdWriteTimestamp (c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->queries, 0);
    }
  rec->cur = c;
  return c;
}

static gboolean
spans_overlap (const GArray *spans, const Span *s)
{
  for (guint i = 0; i < spans->len; i++)
    {
      const Span *o = &g_array_index (spans, Span, i);
      if (o->block == s->block && o->start < s->end && s->start < o->end)
        return TRUE;
    }
  return FALSE;
}

static void
emit_barrier (DlRecorder *rec, Chunk *c)
{
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
  };
  vkCmdPipelineBarrier (c->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb,
                        0, NULL, 0, NULL);
  g_array_set_size (rec->reads, 0);
  g_array_set_size (rec->writes, 0);
  rec->n_barriers++;
}

static VkDescriptorSet
next_set (DlRecorder *rec, Chunk *c, DlPipeline *p, GError **error)
{
  guint n = p->iface.n_bindings;
  SetCache *sc = &c->sets[n];
  if (!sc->sets)
    sc->sets = g_array_new (FALSE, FALSE, sizeof (VkDescriptorSet));
  if (sc->used < sc->sets->len)
    return g_array_index (sc->sets, VkDescriptorSet, sc->used++);

  VkDevice d = rec->dev->device;
  if (c->pool_free == 0)
    {
      VkDescriptorPoolSize ps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * DL_MAX_BINDINGS };
      VkDescriptorPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = SETS_PER_POOL,
        .poolSizeCount = 1,
        .pPoolSizes = &ps,
      };
      VkDescriptorPool pool;
      if (!DL_VK_CHECK (vkCreateDescriptorPool (d, &pi, NULL, &pool), error))
        return VK_NULL_HANDLE;
      g_array_append_val (c->pools, pool);
      c->pool_free = SETS_PER_POOL;
    }
  VkDescriptorSetAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
    .descriptorPool = g_array_index (c->pools, VkDescriptorPool, c->pools->len - 1),
    .descriptorSetCount = 1,
    .pSetLayouts = &p->set_layout,
  };
  VkDescriptorSet set;
  if (!DL_VK_CHECK (vkAllocateDescriptorSets (d, &ai, &set), error))
    return VK_NULL_HANDLE;
  c->pool_free--;
  g_array_append_val (sc->sets, set);
  sc->used++;
  return set;
}

gboolean
dl_recorder_dispatch (DlRecorder *rec, DlPipeline *p, const DlBinding *bindings, guint n_bindings, const void *push,
                      gsize push_size, guint32 gx, guint32 gy, guint32 gz, GError **error)
{
  g_return_val_if_fail (rec != NULL, FALSE);
  g_return_val_if_fail (p != NULL, FALSE);
  const DlDeviceInfo *info = rec->dev->info;

  if (n_bindings != p->iface.n_bindings)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %u bindings given, shader has %u", p->name,
                   n_bindings, p->iface.n_bindings);
      return FALSE;
    }
  if (push_size != p->iface.push_constant_size)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: %zu bytes of push constants given, shader has %u",
                   p->name, push_size, p->iface.push_constant_size);
      return FALSE;
    }
  if (gx == 0 || gy == 0 || gz == 0)
    return TRUE; /* empty problem: nothing to run */
  if (gx > info->max_workgroup_count[0] || gy > info->max_workgroup_count[1] || gz > info->max_workgroup_count[2])
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s: %u x %u x %u workgroups exceed the device limit",
                   p->name, gx, gy, gz);
      return FALSE;
    }

  VkDescriptorBufferInfo bi[DL_MAX_BINDINGS];
  Span spans[DL_MAX_BINDINGS];
  guint64 max_range = dl_recorder_get_max_binding_range (rec);
  for (guint i = 0; i < n_bindings; i++)
    {
      const DlBinding *b = &bindings[i];
      if (!b->block)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%s: binding %u is empty", p->name, i);
          return FALSE;
        }
      if (p->iface.writable[i] && !b->write)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "%s: binding %u is writable in the shader but was bound read-only", p->name, i);
          return FALSE;
        }
      guint64 base = b->offset - b->offset % DL_BINDING_ALIGN;
      guint64 end = MIN (b->offset + MAX (b->size, 1), b->block->size);
      guint64 range = end - base;
      if (range > max_range)
        {
          g_autofree char *r = g_format_size_full (range, G_FORMAT_SIZE_IEC_UNITS);
          g_autofree char *l = g_format_size_full (max_range, G_FORMAT_SIZE_IEC_UNITS);
          g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                       "%s: binding %u spans %s, more than this device's maxStorageBufferRange (%s)", p->name, i, r, l);
          return FALSE;
        }
      bi[i] = (VkDescriptorBufferInfo){ b->block->buffer, base, range };
      spans[i] = (Span){ b->block, b->offset, b->offset + b->size };
    }

  Chunk *c = begin_chunk (rec, error);
  if (!c)
    return FALSE;

  /* hazards against everything since the last barrier */
  gboolean hazard = rec->profiling;
  for (guint i = 0; i < n_bindings && !hazard; i++)
    {
      if (bindings[i].write)
        hazard = spans_overlap (rec->writes, &spans[i]) || spans_overlap (rec->reads, &spans[i]);
      else
        hazard = spans_overlap (rec->writes, &spans[i]);
    }
  if (hazard || rec->reads->len + rec->writes->len + n_bindings > MAX_PENDING_RANGES)
    emit_barrier (rec, c);
  for (guint i = 0; i < n_bindings; i++)
    g_array_append_val (bindings[i].write ? rec->writes : rec->reads, spans[i]);

  if (c->bound != p->pipeline)
    {
      vkCmdBindPipeline (c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
      c->bound = p->pipeline;
    }

  VkWriteDescriptorSet w[DL_MAX_BINDINGS];
  for (guint i = 0; i < n_bindings; i++)
    w[i] = (VkWriteDescriptorSet){
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstBinding = i,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &bi[i],
    };
  if (rec->dev->use_push_descriptor)
    {
      if (n_bindings)
        rec->dev->cmd_push_descriptor_set (c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, n_bindings, w);
    }
  else if (n_bindings)
    {
      VkDescriptorSet set = next_set (rec, c, p, error);
      if (!set)
        return FALSE;
      for (guint i = 0; i < n_bindings; i++)
        w[i].dstSet = set;
      vkUpdateDescriptorSets (rec->dev->device, n_bindings, w, 0, NULL);
      vkCmdBindDescriptorSets (c->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    }
  if (push_size)
    vkCmdPushConstants (c->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)push_size, push);

  vkCmdDispatch (c->cmd, gx, gy, gz);
  c->n_dispatches++;
  rec->n_dispatches++;
  if (rec->profiling)
    {
      vkCmdWriteTimestamp (c->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->queries, c->n_dispatches);
      g_ptr_array_add (c->labels, p->name);
    }

  if (c->n_dispatches >= rec->chunk_size)
    return dl_recorder_flush (rec, error);
  return TRUE;
}

gboolean
dl_recorder_flush (DlRecorder *rec, GError **error)
{
  g_return_val_if_fail (rec != NULL, FALSE);
  Chunk *c = rec->cur;
  if (!c)
    return TRUE;
  rec->cur = NULL;
  c->recording = FALSE;

  /* results become visible to the host and to transfers submitted later */
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
  };
  vkCmdPipelineBarrier (c->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                        VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
  if (!DL_VK_CHECK (vkEndCommandBuffer (c->cmd), error))
    return FALSE;
  VkSubmitInfo si = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &c->cmd,
  };
  g_mutex_lock (&rec->dev->queue_mutex);
  VkResult r = vkQueueSubmit (rec->dev->queue, 1, &si, c->fence);
  g_mutex_unlock (&rec->dev->queue_mutex);
  if (!DL_VK_CHECK (r, error))
    return FALSE;
  c->pending = TRUE;
  rec->n_submits++;
  return TRUE;
}

static void
collect_timestamps (DlRecorder *rec, Chunk *c)
{
  if (!c->labels->len)
    return;
  guint n = c->labels->len + 1;
  g_autofree uint64_t *ts = g_new0 (uint64_t, n);
  if (vkGetQueryPoolResults (rec->dev->device, c->queries, 0, n, n * sizeof (uint64_t), ts, sizeof (uint64_t),
                             VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
    return;
  const DlDeviceInfo *info = rec->dev->info;
  uint64_t mask = info->timestamp_valid_bits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << info->timestamp_valid_bits) - 1;
  for (guint i = 0; i < c->labels->len; i++)
    {
      double ns = (double)((ts[i + 1] - ts[i]) & mask) * info->timestamp_period_ns;
      const char *name = g_ptr_array_index (c->labels, i);
      DlProfileEntry *e = g_hash_table_lookup (rec->profile, name);
      if (!e)
        {
          e = g_new0 (DlProfileEntry, 1);
          e->name = name;
          g_hash_table_insert (rec->profile, (gpointer)name, e);
        }
      e->count++;
      e->total_ns += ns;
      rec->profile_total_ns += ns;
    }
  g_ptr_array_set_size (c->labels, 0);
}

gboolean
dl_recorder_finish (DlRecorder *rec, GError **error)
{
  g_return_val_if_fail (rec != NULL, FALSE);
  gboolean ok = dl_recorder_flush (rec, error);
  for (guint i = 0; i < rec->chunks->len; i++)
    {
      Chunk *c = g_ptr_array_index (rec->chunks, i);
      if (!c->pending)
        continue;
      VkResult r = vkWaitForFences (rec->dev->device, 1, &c->fence, VK_TRUE, UINT64_MAX);
      if (r == VK_SUCCESS)
        r = vkResetFences (rec->dev->device, 1, &c->fence);
      c->pending = FALSE;
      if (ok && !DL_VK_CHECK (r, error))
        ok = FALSE;
      if (ok && rec->profiling)
        collect_timestamps (rec, c);
    }
  /* the host waited: later work needs no barrier against what came before */
  release_held (rec);
  g_array_set_size (rec->reads, 0);
  g_array_set_size (rec->writes, 0);
  return ok;
}

static gint
compare_profile (gconstpointer a, gconstpointer b)
{
  const DlProfileEntry *x = a, *y = b;
  return x->total_ns < y->total_ns ? 1 : x->total_ns > y->total_ns ? -1 : strcmp (x->name, y->name);
}

GArray *
dl_recorder_get_profile (DlRecorder *rec)
{
  g_return_val_if_fail (rec != NULL, NULL);
  GArray *out = g_array_new (FALSE, FALSE, sizeof (DlProfileEntry));
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, rec->profile);
  while (g_hash_table_iter_next (&it, NULL, &v))
    g_array_append_val (out, *(DlProfileEntry *)v);
  g_array_sort (out, compare_profile);
  return out;
}

double
dl_recorder_get_profile_total_ns (DlRecorder *rec)
{
  return rec->profile_total_ns;
}

void
dl_recorder_reset_profile (DlRecorder *rec)
{
  g_return_if_fail (rec != NULL);
  g_hash_table_remove_all (rec->profile);
  rec->profile_total_ns = 0;
}

char *
dl_recorder_format_profile (DlRecorder *rec)
{
  g_autoptr (GArray) entries = dl_recorder_get_profile (rec);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "%-48s %8s %12s %10s %6s\n", "pipeline", "calls", "total ms", "mean us", "share");
  for (guint i = 0; i < entries->len; i++)
    {
      const DlProfileEntry *e = &g_array_index (entries, DlProfileEntry, i);
      g_string_append_printf (s, "%-48s %8u %12.3f %10.1f %5.1f%%\n", e->name, e->count, e->total_ns * 1e-6,
                              e->total_ns * 1e-3 / e->count,
                              rec->profile_total_ns > 0 ? 100.0 * e->total_ns / rec->profile_total_ns : 0.0);
    }
  g_string_append_printf (s, "%-48s %8s %12.3f\n", "total", "", rec->profile_total_ns * 1e-6);
  return g_string_free (s, FALSE);
}

guint64
dl_recorder_get_dispatch_count (DlRecorder *rec)
{
  return rec->n_dispatches;
}

guint64
dl_recorder_get_barrier_count (DlRecorder *rec)
{
  return rec->n_barriers;
}

guint64
dl_recorder_get_submit_count (DlRecorder *rec)
{
  return rec->n_submits;
}
