/* dl-spirv-reflect.h: the little a pipeline needs to know about a compute shader's
 * interface, read straight from its SPIR-V. */
#pragma once

#include <glib.h>
#include <stdint.h>

#define DL_SPIRV_MAX_BINDINGS 16

typedef struct
{
  guint n_bindings;                         /* highest storage-buffer binding + 1 (set 0) */
  gboolean writable[DL_SPIRV_MAX_BINDINGS]; /* not declared readonly */
  guint push_constant_size;                 /* bytes, 0 when none */
  guint n_spec_constants;                   /* highest SpecId + 1 */
} DlSpirvInterface;

gboolean dl_spirv_reflect (const uint32_t *code, gsize n_words, DlSpirvInterface *out, GError **error);
