/* Instance creation, device choice, logical device lifetime. */
#include "dl-device-private.h"

#include <stdlib.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

static gint validation_total; /* atomic */

guint
dl_validation_message_total (void)
{
  return (guint)g_atomic_int_get (&validation_total);
}

#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
/* Sanitizer builds only: the loader unloads the driver and layers with the
 * instance, after which LeakSanitizer cannot name their frames and
 * tests/lsan.supp cannot tell driver leaks from ours.  Keep them mapped. */
static void
pin_vulkan_libraries (void)
{
  const char *icds = g_getenv ("VK_DRIVER_FILES");
  if (!icds)
    icds = g_getenv ("VK_ICD_FILENAMES");
  g_auto (GStrv) files = icds ? g_strsplit (icds, ":", -1) : NULL;
  for (char **f = files; f && *f; f++)
    {
      g_autofree char *json = NULL;
      if (!g_file_get_contents (*f, &json, NULL, NULL))
        continue;
      const char *key = strstr (json, "\"library_path\"");
      const char *q1 = key ? strchr (key + 14, '"') : NULL;
      const char *q2 = q1 ? strchr (q1 + 1, '"') : NULL;
      if (q2)
        {
          g_autofree char *lib = g_strndup (q1 + 1, q2 - q1 - 1);
          dlopen (lib, RTLD_NOW | RTLD_NODELETE);
        }
    }
  dlopen ("libVkLayer_khronos_validation.so", RTLD_NOW | RTLD_NODELETE);
}
#else
static void
pin_vulkan_libraries (void)
{
}
#endif

static gboolean
env_is_true (const char *name)
{
  const char *v = g_getenv (name);
  return v && (strcmp (v, "1") == 0 || g_ascii_strcasecmp (v, "true") == 0 || g_ascii_strcasecmp (v, "yes") == 0);
}

static gboolean
instance_has_layer (const char *name)
{
  uint32_t n = 0;
  vkEnumerateInstanceLayerProperties (&n, NULL);
  g_autofree VkLayerProperties *layers = g_new0 (VkLayerProperties, n ? n : 1);
  vkEnumerateInstanceLayerProperties (&n, layers);
  for (uint32_t i = 0; i < n; i++)
    if (strcmp (layers[i].layerName, name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
instance_has_extension (const char *layer, const char *name)
{
  uint32_t n = 0;
  vkEnumerateInstanceExtensionProperties (layer, &n, NULL);
  g_autofree VkExtensionProperties *exts = g_new0 (VkExtensionProperties, n ? n : 1);
  vkEnumerateInstanceExtensionProperties (layer, &n, exts);
  for (uint32_t i = 0; i < n; i++)
    if (strcmp (exts[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
debug_callback (VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
                const VkDebugUtilsMessengerCallbackDataEXT *data, void *user_data)
{
  DlDevice *device = user_data;
  if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)
    return VK_FALSE;
  g_atomic_int_inc (&device->validation_messages);
  g_atomic_int_inc (&validation_total);
  g_printerr ("dreamloom: Vulkan validation %s: %s\n",
              severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
              data->pMessage ? data->pMessage : "(no message)");
  return VK_FALSE;
}

/* Create an instance; with `device` non-NULL and validation requested, with the
 * validation layer (synchronization validation on) reporting into it. */
static gboolean
create_instance (DlDevice *device, gboolean validation, VkInstance *out, GError **error)
{
  pin_vulkan_libraries ();

  uint32_t loader_version = VK_API_VERSION_1_1;
  vkEnumerateInstanceVersion (&loader_version);
  if (loader_version < VK_API_VERSION_1_2)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "The Vulkan loader supports only Vulkan %u.%u; Dreamloom needs 1.2 or newer",
                   VK_API_VERSION_MAJOR (loader_version), VK_API_VERSION_MINOR (loader_version));
      return FALSE;
    }

  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "Dreamloom",
    .applicationVersion = VK_MAKE_API_VERSION (0, 0, 1, 0),
    .pEngineName = "dreamloom-compute",
    .engineVersion = VK_MAKE_API_VERSION (0, 0, 1, 0),
    .apiVersion = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2,
  };

  const char *layers[1];
  const char *exts[2];
  uint32_t n_layers = 0, n_exts = 0;
  VkInstanceCreateFlags flags = 0;

  if (instance_has_extension (NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME))
    {
      exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
      flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }

  VkValidationFeatureEnableEXT enables[] = { VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT };
  VkValidationFeaturesEXT features = {
    .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
    .enabledValidationFeatureCount = G_N_ELEMENTS (enables),
    .pEnabledValidationFeatures = enables,
  };
  VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .pNext = &features,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
    .pfnUserCallback = debug_callback,
    .pUserData = device,
  };
  const void *next = NULL;

  if (validation)
    {
      if (!instance_has_layer (VALIDATION_LAYER))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                       "Vulkan validation was requested (DREAMLOOM_VALIDATION=1) but %s is not "
                       "installed (Debian package vulkan-validationlayers)",
                       VALIDATION_LAYER);
          return FALSE;
        }
      layers[n_layers++] = VALIDATION_LAYER;
      exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
      next = &messenger_info;
    }

  VkInstanceCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pNext = next,
    .flags = flags,
    .pApplicationInfo = &app,
    .enabledLayerCount = n_layers,
    .ppEnabledLayerNames = layers,
    .enabledExtensionCount = n_exts,
    .ppEnabledExtensionNames = exts,
  };
  VkResult r = vkCreateInstance (&ci, NULL, out);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_NO_DEVICE,
                   "No Vulkan driver is installed (for a CPU fallback install mesa-vulkan-drivers)");
      return FALSE;
    }
  if (!DL_VK_CHECK (r, error))
    return FALSE;

  if (validation)
    {
      PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr (*out, "vkCreateDebugUtilsMessengerEXT");
      messenger_info.pNext = NULL;
      if (!create_messenger || !DL_VK_CHECK (create_messenger (*out, &messenger_info, NULL, &device->messenger), error))
        {
          vkDestroyInstance (*out, NULL);
          *out = VK_NULL_HANDLE;
          return FALSE;
        }
      device->debug_utils = TRUE;
    }
  return TRUE;
}

static GPtrArray *
probe_all (VkInstance instance, VkPhysicalDevice **phys_out, GError **error)
{
  uint32_t n = 0;
  if (!DL_VK_CHECK (vkEnumeratePhysicalDevices (instance, &n, NULL), error))
    return NULL;
  g_autofree VkPhysicalDevice *phys = g_new0 (VkPhysicalDevice, n ? n : 1);
  if (!DL_VK_CHECK (vkEnumeratePhysicalDevices (instance, &n, phys), error))
    return NULL;
  GPtrArray *infos = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_device_info_free);
  for (uint32_t i = 0; i < n; i++)
    g_ptr_array_add (infos, dl_device_info_probe (instance, phys[i], i));
  if (phys_out)
    *phys_out = g_steal_pointer (&phys);
  return infos;
}

GPtrArray *
dl_device_list (GError **error)
{
  VkInstance instance;
  DlDevice dummy = { 0 };
  if (!create_instance (&dummy, FALSE, &instance, error))
    return NULL;
  GPtrArray *infos = probe_all (instance, NULL, error);
  vkDestroyInstance (instance, NULL);
  return infos;
}

static int
type_rank (VkPhysicalDeviceType t)
{
  switch (t)
    {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return 3;
    case VK_PHYSICAL_DEVICE_TYPE_OTHER:
    case VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM:
    default:
      return 4;
    }
}

gboolean
dl_device_choose (GPtrArray *infos, const char *selector, guint *chosen, GError **error)
{
  g_return_val_if_fail (infos != NULL, FALSE);
  g_return_val_if_fail (chosen != NULL, FALSE);

  const char *origin = "the selector";
  if (!selector || !*selector)
    {
      selector = g_getenv ("DREAMLOOM_DEVICE");
      origin = "DREAMLOOM_DEVICE";
    }

  if (infos->len == 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_NO_DEVICE,
                   "No Vulkan device found (for a CPU fallback install mesa-vulkan-drivers)");
      return FALSE;
    }

  if (selector && *selector)
    {
      char *end = NULL;
      guint64 idx = g_ascii_strtoull (selector, &end, 10);
      if (end && *end == '\0' && end != selector)
        {
          if (idx >= infos->len)
            {
              g_set_error (error, DL_ERROR, DL_ERROR_NO_DEVICE,
                           "%s asks for device %s, but only %u Vulkan device(s) exist", origin, selector, infos->len);
              return FALSE;
            }
          *chosen = (guint)idx;
          return TRUE;
        }
      g_autofree char *needle = g_utf8_casefold (selector, -1);
      for (guint i = 0; i < infos->len; i++)
        {
          const DlDeviceInfo *info = g_ptr_array_index (infos, i);
          g_autofree char *hay = g_utf8_casefold (info->name, -1);
          g_autofree char *drv = g_utf8_casefold (info->driver_name, -1);
          if (strstr (hay, needle) || strstr (drv, needle))
            {
              *chosen = i;
              return TRUE;
            }
        }
      g_set_error (error, DL_ERROR, DL_ERROR_NO_DEVICE,
                   "%s is \"%s\", which matches no Vulkan device (see `dreamloom devices`)", origin, selector);
      return FALSE;
    }

  int best = -1;
  for (guint i = 0; i < infos->len; i++)
    {
      const DlDeviceInfo *info = g_ptr_array_index (infos, i);
      if (info->api_version < VK_API_VERSION_1_2)
        continue;
      if (best < 0 || type_rank (info->type) < type_rank (((DlDeviceInfo *)g_ptr_array_index (infos, best))->type))
        best = (int)i;
    }
  if (best < 0)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_NO_DEVICE, "No Vulkan device supports Vulkan 1.2, which Dreamloom needs");
      return FALSE;
    }
  *chosen = (guint)best;
  return TRUE;
}

static gboolean
pick_queue_family (VkPhysicalDevice phys, uint32_t *family)
{
  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &nq, NULL);
  g_autofree VkQueueFamilyProperties *qf = g_new0 (VkQueueFamilyProperties, nq ? nq : 1);
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &nq, qf);
  int best = -1;
  for (uint32_t q = 0; q < nq; q++)
    {
      if (!(qf[q].queueFlags & VK_QUEUE_COMPUTE_BIT))
        continue;
      /* Prefer a family that can time our dispatches. */
      if (best < 0 || (qf[q].timestampValidBits > 0 && qf[best].timestampValidBits == 0))
        best = (int)q;
    }
  if (best < 0)
    return FALSE;
  *family = (uint32_t)best;
  return TRUE;
}

static gboolean
create_logical_device (DlDevice *self, GError **error)
{
  const DlDeviceInfo *info = self->info;
  gboolean is_13 = info->api_version >= VK_API_VERSION_1_3;

  if (!pick_queue_family (self->physical, &self->queue_family))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s has no compute queue", info->name);
      return FALSE;
    }

  const char *exts[4];
  uint32_t n_exts = 0;
  self->use_push_descriptor = info->push_descriptor && !self->tuning.no_push_descriptor;
  if (self->use_push_descriptor)
    exts[n_exts++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
  gboolean sgsc_ext = !is_13 && info->subgroup_size_control;
  if (sgsc_ext)
    exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
  if (info->float32_atomic_add)
    exts[n_exts++] = VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME;

  VkPhysicalDeviceVulkan11Features f11 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
    .storageBuffer16BitAccess = info->storage_buffer_16bit,
  };
  VkPhysicalDeviceVulkan12Features f12 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
    .shaderFloat16 = info->shader_float16,
    .shaderInt8 = info->shader_int8,
    .storageBuffer8BitAccess = info->storage_buffer_8bit,
    .hostQueryReset = VK_TRUE,
  };
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT fsg = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
    .subgroupSizeControl = info->subgroup_size_control,
    .computeFullSubgroups = info->compute_full_subgroups,
  };
  VkPhysicalDeviceShaderAtomicFloatFeaturesEXT faf = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT,
    .shaderBufferFloat32AtomicAdd = VK_TRUE,
  };

  /* hostQueryReset is core in 1.2 but optional: ask what this device has. */
  VkPhysicalDeviceVulkan12Features have12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
  VkPhysicalDeviceFeatures2 have = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &have12 };
  vkGetPhysicalDeviceFeatures2 (self->physical, &have);
  f12.hostQueryReset = have12.hostQueryReset;
  self->host_query_reset = have12.hostQueryReset;

  VkPhysicalDeviceFeatures2 feats = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
    .pNext = &f11,
    .features = { .shaderInt16 = info->shader_int16 },
  };
  f11.pNext = &f12;
  void **tail = &f12.pNext;
  if (info->subgroup_size_control)
    {
      *tail = &fsg;
      tail = &fsg.pNext;
    }
  if (info->float32_atomic_add)
    *tail = &faf;

  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = self->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &prio,
  };
  VkDeviceCreateInfo dci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &feats,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &qci,
    .enabledExtensionCount = n_exts,
    .ppEnabledExtensionNames = exts,
  };
  if (!DL_VK_CHECK (vkCreateDevice (self->physical, &dci, NULL, &self->device), error))
    {
      g_prefix_error (error, "Could not open %s: ", info->name);
      return FALSE;
    }
  vkGetDeviceQueue (self->device, self->queue_family, 0, &self->queue);

  if (self->use_push_descriptor)
    self->cmd_push_descriptor_set =
      (PFN_vkCmdPushDescriptorSetKHR)vkGetDeviceProcAddr (self->device, "vkCmdPushDescriptorSetKHR");
  if (self->debug_utils)
    self->set_object_name =
      (PFN_vkSetDebugUtilsObjectNameEXT)vkGetInstanceProcAddr (self->instance, "vkSetDebugUtilsObjectNameEXT");
  return TRUE;
}

DlDevice *
dl_device_new (const char *selector, GError **error)
{
  g_autoptr (DlDevice) self = g_new0 (DlDevice, 1);
  g_mutex_init (&self->queue_mutex);
  g_mutex_init (&self->mem_mutex);
  g_mutex_init (&self->transfer_mutex);
  g_mutex_init (&self->pipe_mutex);

  self->validation = env_is_true ("DREAMLOOM_VALIDATION");
  dl_device_tuning_from_env (&self->tuning);
  self->limit = self->tuning.memory_limit;
  if (!create_instance (self, self->validation, &self->instance, error))
    return NULL;

  g_autofree VkPhysicalDevice *phys = NULL;
  g_autoptr (GPtrArray) infos = probe_all (self->instance, &phys, error);
  if (!infos)
    return NULL;
  guint chosen;
  if (!dl_device_choose (infos, selector, &chosen, error))
    return NULL;
  self->info = g_ptr_array_steal_index (infos, chosen);
  /* steal_index shifted the array; the VkPhysicalDevice list did not move */
  self->physical = phys[chosen];

  if (self->info->api_version < VK_API_VERSION_1_2)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "%s supports only Vulkan %u.%u; Dreamloom needs 1.2 or newer",
                   self->info->name, VK_API_VERSION_MAJOR (self->info->api_version),
                   VK_API_VERSION_MINOR (self->info->api_version));
      return NULL;
    }

  if (!create_logical_device (self, error))
    return NULL;
  if (!dl_memory_init (self, error))
    return NULL;
  if (!dl_pipelines_init (self, error))
    return NULL;

  g_debug ("Using Vulkan device %u: %s (%s)", self->info->index, self->info->name,
           dl_device_type_name (self->info->type));
  return g_steal_pointer (&self);
}

void
dl_device_free (DlDevice *self)
{
  if (!self)
    return;
  if (self->device)
    {
      vkDeviceWaitIdle (self->device);
      dl_pipelines_shutdown (self);
      dl_memory_shutdown (self);
      vkDestroyDevice (self->device, NULL);
    }
  if (self->messenger)
    {
      PFN_vkDestroyDebugUtilsMessengerEXT destroy =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr (self->instance, "vkDestroyDebugUtilsMessengerEXT");
      if (destroy)
        destroy (self->instance, self->messenger, NULL);
    }
  if (self->instance)
    vkDestroyInstance (self->instance, NULL);
  dl_device_info_free (self->info);
  g_mutex_clear (&self->queue_mutex);
  g_mutex_clear (&self->mem_mutex);
  g_mutex_clear (&self->transfer_mutex);
  g_mutex_clear (&self->pipe_mutex);
  g_free (self);
}

const DlDeviceInfo *
dl_device_get_info (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->info;
}

static gint64
env_int (const char *name)
{
  const char *v = g_getenv (name);
  gint64 n = v ? g_ascii_strtoll (v, NULL, 10) : 0;
  return MAX (n, 0);
}

/* A size: bytes, or with K, M, G or T (binary units: "6G", "1536M"); 0 when
 * unset, and when not a size (said on standard error). */
static guint64
env_size (const char *name)
{
  const char *v = g_getenv (name);
  if (!v || !*v)
    return 0;
  char *end = NULL;
  errno = 0;
  guint64 n = g_ascii_isdigit (*v) ? g_ascii_strtoull (v, &end, 10) : 0;
  const char *units = "KMGT", *u = end && *end ? strchr (units, g_ascii_toupper (*end)) : NULL;
  int shift = u ? 10 * (int)(u - units + 1) : 0;
  gboolean ok =
    end && end != v && errno != ERANGE &&
    (!*end || (u && (!end[1] || !g_ascii_strcasecmp (end + 1, "iB") || !g_ascii_strcasecmp (end + 1, "B")))) &&
    n <= (G_MAXUINT64 >> shift);
  if (!ok)
    {
      g_message ("%s=%s is not a size (bytes, or a number with K, M, G or T, as 6G): no limit", name, v);
      return 0;
    }
  return n << shift;
}

static void
env_string (const char *name, char *out, gsize size)
{
  const char *v = g_getenv (name);
  g_strlcpy (out, v ? v : "", size);
}

void
dl_device_tuning_from_env (DlDeviceTuning *t)
{
  memset (t, 0, sizeof *t);
  env_string ("DREAMLOOM_CONV_TILE", t->conv_tile, sizeof t->conv_tile);
  t->conv_splitk = env_int ("DREAMLOOM_CONV_SPLITK");
  t->conv_images_per_dispatch = env_int ("DREAMLOOM_CONV_IMAGES_PER_DISPATCH");
  t->linear_rows_per_block = env_int ("DREAMLOOM_LINEAR_ROWS_PER_BLOCK");
  env_string ("DREAMLOOM_MATMUL_TILE", t->matmul_tile, sizeof t->matmul_tile);
  const char *attn = g_getenv ("DREAMLOOM_ATTN_TILE");
  if (!attn || sscanf (attn, "%ux%u", &t->attn_block_q, &t->attn_block_k) != 2)
    t->attn_block_q = t->attn_block_k = 0;
  t->no_arena = g_strcmp0 (g_getenv ("DREAMLOOM_NO_ARENA"), "1") == 0;
  env_string ("DREAMLOOM_NO_ARENA_FOR", t->no_arena_for, sizeof t->no_arena_for);
  t->no_pipeline_cache = g_getenv ("DREAMLOOM_NO_PIPELINE_CACHE") != NULL;
  t->no_push_descriptor = g_getenv ("DREAMLOOM_DISABLE_PUSH_DESCRIPTOR") != NULL;
  t->memory_limit = env_size ("DREAMLOOM_MEMORY_LIMIT");
}

const DlDeviceTuning *
dl_device_get_tuning (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return &self->tuning;
}

void
dl_device_set_tuning (DlDevice *self, const DlDeviceTuning *tuning)
{
  g_return_if_fail (self != NULL && tuning != NULL);
  gboolean push = self->tuning.no_push_descriptor;
  self->tuning = *tuning;
  self->tuning.no_push_descriptor = push; /* fixed at creation */
}

guint
dl_device_get_validation_message_count (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return (guint)g_atomic_int_get (&self->validation_messages);
}

gboolean
dl_device_has_validation (DlDevice *self)
{
  g_return_val_if_fail (self != NULL, FALSE);
  return self->validation;
}

gboolean
dl_device_wait_idle (DlDevice *self, GError **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_mutex_lock (&self->queue_mutex);
  VkResult r = vkQueueWaitIdle (self->queue);
  g_mutex_unlock (&self->queue_mutex);
  return DL_VK_CHECK (r, error);
}
