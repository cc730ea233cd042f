/* manifest-check.h (tests only): a checkpoint against the golden key manifests
 * of the full-size models (sd15-diffusers-keys.json, sdxl/sdxl-diffusers-keys.json). */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "io/dl-checkpoint.h"
#include "io/dl-checkpoint-writer.h"

G_BEGIN_DECLS

/* The golden file `relative` (under the golden folder) parsed; fails the test
 * when it is absent or not JSON. */
JsonParser *mc_load_manifest (const char *relative);

/* Every parameter of `ck` has the shape the diffusers manifest's `files`
 * ({"unet/diffusion_pytorch_model.safetensors": {key: {"shape": ...}}, ...})
 * gives its key, every key of the manifest is a parameter, and the parameters
 * of each component add up to `counts` (indexed by DlComponent; 0 for a
 * component the model lacks). */
void mc_check_against_diffusers_manifest (DlCheckpoint *ck, JsonObject *files, const guint64 counts[DL_N_COMPONENTS]);

/* The entries of a write plan (DlCheckpointWriteEntry *) that go to `file`
 * (NULL: all) are exactly the manifest's `keys` ({key: {"shape": [...]}}),
 * with their shapes; `check` (may be NULL) looks at each of them too. */
typedef void (*McEntryCheck) (const DlCheckpointWriteEntry *e);
void mc_check_write_plan (GPtrArray *plan, const char *file, JsonObject *keys, McEntryCheck check);

G_END_DECLS
