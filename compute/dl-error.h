/* dl-error.h: the engine's GError domain. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DL_ERROR (dl_error_quark ())

typedef enum
{
  DL_ERROR_FAILED,
  DL_ERROR_NO_DEVICE,
  DL_ERROR_DEVICE_LOST,
  DL_ERROR_OUT_OF_DEVICE_MEMORY,
  DL_ERROR_OUT_OF_HOST_MEMORY,
  DL_ERROR_UNSUPPORTED,
  DL_ERROR_INVALID_ARGUMENT,
  DL_ERROR_INVALID_FILE,
  DL_ERROR_CANCELLED,
  DL_ERROR_VULKAN,
  DL_ERROR_IO,
} DlErrorCode;

GQuark dl_error_quark (void);

G_END_DECLS
