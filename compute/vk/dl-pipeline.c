/* Pipelines: created lazily from the embedded SPIR-V, keyed by shader and
 * specialization constants, with one process-wide VkPipelineCache persisted under
 * $XDG_CACHE_HOME/dreamloom/ (validated against the device before use). */
#include "dl-pipeline-private.h"
#include "dl-shader-table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* VkPipelineCacheHeaderVersionOne */
typedef struct
{
  uint32_t length;
  uint32_t version;
  uint32_t vendor_id;
  uint32_t device_id;
  uint8_t uuid[VK_UUID_SIZE];
} CacheHeader;

static int
compare_entry (const void *key, const void *elem)
{
  return strcmp (key, ((const DlShaderEntry *)elem)->name);
}

const DlShaderEntry *
dl_shader_table_lookup (const char *name)
{
  return bsearch (name, dl_shader_table, dl_shader_table_len, sizeof (DlShaderEntry), compare_entry);
}

gboolean
dl_shader_exists (const char *name)
{
  return dl_shader_table_lookup (name) != NULL;
}

static void
pipeline_destroy (DlDevice *dev, DlPipeline *p)
{
  if (p->pipeline)
    vkDestroyPipeline (dev->device, p->pipeline, NULL);
  if (p->layout)
    vkDestroyPipelineLayout (dev->device, p->layout, NULL);
  if (p->module)
    vkDestroyShaderModule (dev->device, p->module, NULL);
  g_free (p->name);
  g_free (p);
}

static char *
cache_path (DlDevice *dev)
{
  const DlDeviceInfo *info = dev->info;
  GString *uuid = g_string_new (NULL);
  for (guint i = 0; i < VK_UUID_SIZE; i++)
    g_string_append_printf (uuid, "%02x", info->pipeline_cache_uuid[i]);
  g_autofree char *file = g_strdup_printf ("pipelines-%04x-%04x-%s.bin", info->vendor_id, info->device_id, uuid->str);
  g_string_free (uuid, TRUE);
  return g_build_filename (g_get_user_cache_dir (), "dreamloom", file, NULL);
}

/* Initial cache data, only if the header says it was made by this very driver. */
static GBytes *
load_cache (DlDevice *dev)
{
  gchar *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents (dev->pipeline_cache_path, &data, &len, NULL))
    return NULL;
  CacheHeader h;
  if (len < sizeof h)
    goto reject;
  memcpy (&h, data, sizeof h);
  if (h.length < sizeof h || h.version != VK_PIPELINE_CACHE_HEADER_VERSION_ONE || h.vendor_id != dev->info->vendor_id ||
      h.device_id != dev->info->device_id || memcmp (h.uuid, dev->info->pipeline_cache_uuid, VK_UUID_SIZE) != 0)
    goto reject;
  return g_bytes_new_take (data, len);
reject:
  g_debug ("Ignoring pipeline cache %s: made by another driver or damaged", dev->pipeline_cache_path);
  g_free (data);
  return NULL;
}

static void
save_cache (DlDevice *dev)
{
  size_t size = 0;
  if (vkGetPipelineCacheData (dev->device, dev->pipeline_cache, &size, NULL) != VK_SUCCESS || size == 0)
    return;
  g_autofree char *data = g_malloc (size);
  if (vkGetPipelineCacheData (dev->device, dev->pipeline_cache, &size, data) != VK_SUCCESS)
    return;
  g_autofree char *dir = g_path_get_dirname (dev->pipeline_cache_path);
  g_autoptr (GError) error = NULL;
  /* g_file_set_contents writes a temporary file and renames it into place */
  if (g_mkdir_with_parents (dir, 0755) != 0 ||
      !g_file_set_contents (dev->pipeline_cache_path, data, (gssize)size, &error))
    g_debug ("Could not save the pipeline cache to %s: %s", dev->pipeline_cache_path,
             error ? error->message : g_strerror (errno));
}

gboolean
dl_pipelines_init (DlDevice *dev, GError **error)
{
  dev->pipelines = g_hash_table_new (g_str_hash, g_str_equal);
  dev->pipeline_cache_path = cache_path (dev);

  g_autoptr (GBytes) initial = dev->tuning.no_pipeline_cache ? NULL : load_cache (dev);
  VkPipelineCacheCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
    .initialDataSize = initial ? g_bytes_get_size (initial) : 0,
    .pInitialData = initial ? g_bytes_get_data (initial, NULL) : NULL,
  };
  VkResult r = vkCreatePipelineCache (dev->device, &ci, NULL, &dev->pipeline_cache);
  if (r != VK_SUCCESS && initial)
    {
      /* a driver may still refuse data it considers stale: start empty */
      ci.initialDataSize = 0;
      ci.pInitialData = NULL;
      r = vkCreatePipelineCache (dev->device, &ci, NULL, &dev->pipeline_cache);
    }
  return DL_VK_CHECK (r, error);
}

void
dl_pipelines_shutdown (DlDevice *dev)
{
  if (dev->pipeline_cache)
    {
      if (dev->pipelines_created > 0 && !dev->tuning.no_pipeline_cache)
        save_cache (dev);
      vkDestroyPipelineCache (dev->device, dev->pipeline_cache, NULL);
    }
  if (dev->pipelines)
    {
      GHashTableIter it;
      gpointer key, value;
      g_hash_table_iter_init (&it, dev->pipelines);
      while (g_hash_table_iter_next (&it, &key, &value))
        {
          pipeline_destroy (dev, value);
          g_free (key);
        }
      g_hash_table_unref (dev->pipelines);
    }
  for (int i = 0; i <= DL_MAX_BINDINGS; i++)
    if (dev->set_layouts[i])
      vkDestroyDescriptorSetLayout (dev->device, dev->set_layouts[i], NULL);
  g_free (dev->pipeline_cache_path);
}

static VkDescriptorSetLayout
get_set_layout (DlDevice *dev, guint n, GError **error)
{
  if (dev->set_layouts[n])
    return dev->set_layouts[n];
  VkDescriptorSetLayoutBinding b[DL_MAX_BINDINGS];
  for (guint i = 0; i < n; i++)
    b[i] = (VkDescriptorSetLayoutBinding){
      .binding = i,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VkDescriptorSetLayoutCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .flags = dev->use_push_descriptor ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
    .bindingCount = n,
    .pBindings = b,
  };
  if (!DL_VK_CHECK (vkCreateDescriptorSetLayout (dev->device, &ci, NULL, &dev->set_layouts[n]), error))
    return VK_NULL_HANDLE;
  return dev->set_layouts[n];
}

static DlPipeline *
pipeline_create (DlDevice *dev, const DlShaderEntry *entry, const char *name, const uint32_t *spec, guint n_spec,
                 GError **error)
{
  g_autoptr (GError) local = NULL;
  DlPipeline *p = g_new0 (DlPipeline, 1);
  p->name = g_strdup (name);

  if (!dl_spirv_reflect (entry->code, entry->size / 4, &p->iface, &local))
    goto fail;
  if (p->iface.n_bindings > DL_MAX_BINDINGS)
    {
      g_set_error (&local, DL_ERROR, DL_ERROR_UNSUPPORTED, "%u bindings (at most %d)", p->iface.n_bindings,
                   DL_MAX_BINDINGS);
      goto fail;
    }
  if (p->iface.push_constant_size > dev->info->max_push_constants ||
      p->iface.push_constant_size > DL_MAX_PUSH_CONSTANTS)
    {
      g_set_error (&local, DL_ERROR, DL_ERROR_UNSUPPORTED, "%u bytes of push constants (device allows %u)",
                   p->iface.push_constant_size, dev->info->max_push_constants);
      goto fail;
    }
  if (n_spec > p->iface.n_spec_constants)
    {
      g_set_error (&local, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "%u specialization constants given, shader has %u",
                   n_spec, p->iface.n_spec_constants);
      goto fail;
    }

  VkShaderModuleCreateInfo mci = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
    .codeSize = entry->size,
    .pCode = entry->code,
  };
  if (!DL_VK_CHECK (vkCreateShaderModule (dev->device, &mci, NULL, &p->module), &local))
    goto fail;

  p->set_layout = get_set_layout (dev, p->iface.n_bindings, &local);
  if (!p->set_layout)
    goto fail;
  VkPushConstantRange pcr = {
    .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    .offset = 0,
    .size = p->iface.push_constant_size,
  };
  VkPipelineLayoutCreateInfo lci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &p->set_layout,
    .pushConstantRangeCount = p->iface.push_constant_size ? 1 : 0,
    .pPushConstantRanges = &pcr,
  };
  if (!DL_VK_CHECK (vkCreatePipelineLayout (dev->device, &lci, NULL, &p->layout), &local))
    goto fail;

  VkSpecializationMapEntry map[32];
  g_assert (n_spec <= G_N_ELEMENTS (map));
  for (guint i = 0; i < n_spec; i++)
    map[i] = (VkSpecializationMapEntry){ .constantID = i, .offset = i * 4, .size = 4 };
  VkSpecializationInfo si = {
    .mapEntryCount = n_spec,
    .pMapEntries = map,
    .dataSize = n_spec * 4,
    .pData = spec,
  };
  VkComputePipelineCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .module = p->module,
      .pName = "main",
      .pSpecializationInfo = n_spec ? &si : NULL,
    },
    .layout = p->layout,
  };
  if (!DL_VK_CHECK (vkCreateComputePipelines (dev->device, dev->pipeline_cache, 1, &pci, NULL, &p->pipeline), &local))
    goto fail;
  dl_device_set_object_name (dev, VK_OBJECT_TYPE_PIPELINE, (uint64_t)p->pipeline, p->name);
  return p;

fail:
  pipeline_destroy (dev, p);
  g_propagate_prefixed_error (error, g_steal_pointer (&local), "Creating pipeline %s: ", name);
  return NULL;
}

DlPipeline *
dl_device_get_pipeline (DlDevice *dev, const char *shader, const uint32_t *spec, guint n_spec, GError **error)
{
  g_return_val_if_fail (dev != NULL, NULL);
  g_return_val_if_fail (shader != NULL, NULL);
  g_return_val_if_fail (n_spec == 0 || spec != NULL, NULL);

  GString *key = g_string_new (shader);
  for (guint i = 0; i < n_spec; i++)
    g_string_append_printf (key, "%c%u", i == 0 ? '[' : ',', spec[i]);
  if (n_spec)
    g_string_append_c (key, ']');

  g_mutex_lock (&dev->pipe_mutex);
  DlPipeline *p = g_hash_table_lookup (dev->pipelines, key->str);
  if (!p)
    {
      const DlShaderEntry *entry = dl_shader_table_lookup (shader);
      if (!entry)
        g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "No shader variant named “%s” was built", shader);
      else if ((p = pipeline_create (dev, entry, key->str, spec, n_spec, error)))
        {
          g_hash_table_insert (dev->pipelines, g_strdup (key->str), p);
          dev->pipelines_created++;
        }
    }
  g_mutex_unlock (&dev->pipe_mutex);
  g_string_free (key, TRUE);
  return p;
}

const char *
dl_pipeline_get_name (DlPipeline *p)
{
  return p->name;
}

guint
dl_pipeline_get_n_bindings (DlPipeline *p)
{
  return p->iface.n_bindings;
}

guint
dl_pipeline_get_push_size (DlPipeline *p)
{
  return p->iface.push_constant_size;
}

gboolean
dl_pipeline_binding_is_writable (DlPipeline *p, guint binding)
{
  return binding < p->iface.n_bindings && p->iface.writable[binding];
}

guint
dl_device_get_pipelines_created (DlDevice *dev)
{
  g_return_val_if_fail (dev != NULL, 0);
  g_mutex_lock (&dev->pipe_mutex);
  guint n = dev->pipelines_created;
  g_mutex_unlock (&dev->pipe_mutex);
  return n;
}
