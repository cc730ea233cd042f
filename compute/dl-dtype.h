/* dl-dtype.h: element types of tensors, on the device and in files. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef enum
{
  DL_DTYPE_F32,
  DL_DTYPE_F16,
  DL_DTYPE_BF16,
  DL_DTYPE_I32,
  DL_N_DTYPES
} DlDType;

/* Bytes per element. */
gsize dl_dtype_size (DlDType dtype);
/* "f32", "f16", "bf16", "i32": the suffix used in shader variant names. */
const char *dl_dtype_name (DlDType dtype);
gboolean dl_dtype_from_name (const char *name, DlDType *out);
gboolean dl_dtype_is_float (DlDType dtype);

G_END_DECLS
