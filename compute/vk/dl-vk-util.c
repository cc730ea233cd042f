#include "dl-device-private.h"

const char *
dl_vk_result_string (VkResult r)
{
  switch (r)
    {
#define R(x) \
  case x:    \
    return #x;
      R (VK_SUCCESS)
      R (VK_NOT_READY)
      R (VK_TIMEOUT)
      R (VK_EVENT_SET)
      R (VK_EVENT_RESET)
      R (VK_INCOMPLETE)
      R (VK_ERROR_OUT_OF_HOST_MEMORY)
      R (VK_ERROR_OUT_OF_DEVICE_MEMORY)
      R (VK_ERROR_INITIALIZATION_FAILED)
      R (VK_ERROR_DEVICE_LOST)
      R (VK_ERROR_MEMORY_MAP_FAILED)
      R (VK_ERROR_LAYER_NOT_PRESENT)
      R (VK_ERROR_EXTENSION_NOT_PRESENT)
      R (VK_ERROR_FEATURE_NOT_PRESENT)
      R (VK_ERROR_INCOMPATIBLE_DRIVER)
      R (VK_ERROR_TOO_MANY_OBJECTS)
      R (VK_ERROR_FORMAT_NOT_SUPPORTED)
      R (VK_ERROR_FRAGMENTED_POOL)
      R (VK_ERROR_UNKNOWN)
      R (VK_ERROR_OUT_OF_POOL_MEMORY)
      R (VK_ERROR_INVALID_EXTERNAL_HANDLE)
      R (VK_ERROR_FRAGMENTATION)
      R (VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
      R (VK_PIPELINE_COMPILE_REQUIRED)
#undef R
    default:
      return "VK_ERROR_(unrecognised)";
    }
}

gboolean
dl_vk_check (VkResult r, const char *what, GError **error)
{
  if (r == VK_SUCCESS)
    return TRUE;

  DlErrorCode code;
  switch (r)
    {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      code = DL_ERROR_OUT_OF_DEVICE_MEMORY;
      break;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      code = DL_ERROR_OUT_OF_HOST_MEMORY;
      break;
    case VK_ERROR_DEVICE_LOST:
      code = DL_ERROR_DEVICE_LOST;
      break;
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_INCOMPATIBLE_DRIVER:
    case VK_ERROR_LAYER_NOT_PRESENT:
      code = DL_ERROR_UNSUPPORTED;
      break;
    default:
      code = DL_ERROR_VULKAN;
      break;
    }
  g_set_error (error, DL_ERROR, code, "%s failed: %s", what, dl_vk_result_string (r));
  return FALSE;
}

void
dl_device_set_object_name (DlDevice *device, VkObjectType type, uint64_t handle, const char *name)
{
  if (!device->set_object_name || !name)
    return;
  VkDebugUtilsObjectNameInfoEXT info = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_OBJECT_NAME_INFO_EXT,
    .objectType = type,
    .objectHandle = handle,
    .pObjectName = name,
  };
  device->set_object_name (device->device, &info);
}
