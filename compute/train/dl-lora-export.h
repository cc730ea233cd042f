/* dl-lora-export.h: write a trained LoRA as kohya sd-scripts does
 * (networks/lora.py LoRANetwork.save_weights), the one layout that
 * AUTOMATIC1111, ComfyUI and diffusers all load as it is:
 *
 *   - per module N: N.lora_down.weight, N.lora_up.weight and a 0-dim N.alpha
 *     (on every module), nothing else, all in one float dtype;
 *   - N starts with lora_unet_ / lora_te_ (lora_te1_ / lora_te2_), so that
 *     diffusers' lora_state_dict takes the file for a kohya one (it checks every
 *     key);
 *   - down [r, in] and up [out, r] for a Linear target, down [r, in, kh, kw] and
 *     up [out, r, 1, 1] for a conv target;
 *   - the metadata gets sshs_model_hash and sshs_legacy_hash, computed as
 *     library/train_util.py precalculate_safetensors_hashes does. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef struct
{
  const char *name; /* "lora_unet_down_blocks_0_attentions_0_proj_in" */
  int down_ndim;    /* 2 or 4 */
  int64_t down_shape[4];
  const float *down;
  int up_ndim; /* the same as down_ndim */
  int64_t up_shape[4];
  const float *up;
  float alpha; /* > 0; kohya stores the network's rank here when it has no alpha */
} DlLoraExportModule;

/* Write `path` atomically with the `n` modules stored as `dtype` (DL_ST_F16, the
 * usual choice, DL_ST_F32 or DL_ST_BF16) and `metadata` (string -> string; may be
 * NULL; not modified) plus the two sshs_* hashes.  Fails, writing nothing, on a
 * name without a kohya prefix or with a dot, a duplicate name, shapes that do
 * not fit together, a non-finite value or one too large for `dtype`. */
gboolean dl_lora_export_write (const char *path, const DlLoraExportModule *modules, guint n, DlStDType dtype,
                               GHashTable *metadata, GError **error);

/* Rewrite the kohya LoRA `source` as `dest` with its tensors stored as `dtype` (what A1111 users call
 * "save precision"): the same modules and metadata, the two sshs_* hashes computed again for the new
 * bytes and ss_mixed_precision/modelspec untouched.  Atomic; fails naming the file when `source` is
 * not a kohya LoRA or a value does not fit `dtype`. */
gboolean dl_lora_export_convert (const char *source, const char *dest, DlStDType dtype, GError **error);

/* The two hashes kohya adds to a LoRA's metadata, for tensors already added to
 * `w` and the metadata the file will carry (may be NULL):
 * sshs_model_hash = sha256 of the tensor data as laid out in the file;
 * sshs_legacy_hash = first 8 hex digits of the sha256 of bytes
 * [0x100000, 0x110000) of the file as it would be written with only the "ss_*"
 * keys of `metadata` (header included, so it depends on those keys). */
void dl_lora_export_hashes (DlSafetensorsWriter *w, GHashTable *metadata, char **model_hash, char **legacy_hash);

G_END_DECLS
