/* dl-adamw8bit-io.h: the 8-bit AdamW state (dl-op-adamw8bit.h) of one trained
 * tensor in a state file, as four tensors:
 *   adam8_m.<name>, adam8_v.<name>: U8 [numel], the codes;
 *   adam8_m_absmax.<name>, adam8_v_absmax.<name>: F32 [ceil(numel / 2048)].
 * The codes index the maps of dl_adamw8bit_dynamic_map (signed for m,
 * unsigned for v), as bitsandbytes' state1/state2 + absmax1/absmax2 do. */
#pragma once

#include "io/dl-safetensors.h"
#include "ops/dl-op-adamw8bit.h"

G_BEGIN_DECLS

/* Download the state and add its four tensors to `w`. */
gboolean dl_adamw8bit_state_save (DlAdamW8bitState *state, DlSafetensorsWriter *w, const char *name, GError **error);
/* Upload the four tensors named after `name` from `st`.  Fails (DL_ERROR_INVALID_FILE,
 * naming the file and tensor) when one is missing, of another dtype or size
 * (e.g. saved with another block size), or an absmax is negative or not finite. */
gboolean dl_adamw8bit_state_load (DlAdamW8bitState *state, DlSafetensors *st, const char *name, GError **error);

G_END_DECLS
