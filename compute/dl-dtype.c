#include "dl-dtype.h"

#include <string.h>

static const struct
{
  const char *name;
  gsize size;
} dtype_info[DL_N_DTYPES] = {
  [DL_DTYPE_F32] = { "f32", 4 },
  [DL_DTYPE_F16] = { "f16", 2 },
  [DL_DTYPE_BF16] = { "bf16", 2 },
  [DL_DTYPE_I32] = { "i32", 4 },
};

gsize
dl_dtype_size (DlDType dtype)
{
  g_return_val_if_fail (dtype < DL_N_DTYPES, 0);
  return dtype_info[dtype].size;
}

const char *
dl_dtype_name (DlDType dtype)
{
  g_return_val_if_fail (dtype < DL_N_DTYPES, "?");
  return dtype_info[dtype].name;
}

gboolean
dl_dtype_from_name (const char *name, DlDType *out)
{
  for (int i = 0; i < DL_N_DTYPES; i++)
    if (g_strcmp0 (name, dtype_info[i].name) == 0)
      {
        *out = (DlDType)i;
        return TRUE;
      }
  return FALSE;
}

gboolean
dl_dtype_is_float (DlDType dtype)
{
  return dtype == DL_DTYPE_F32 || dtype == DL_DTYPE_F16 || dtype == DL_DTYPE_BF16;
}
