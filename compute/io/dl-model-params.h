/* dl-model-params.h: the parameters an SD 1.x or SDXL model with a given
 * configuration has, by internal name, with their shapes (the state dicts of
 * diffusers UNet2DConditionModel and AutoencoderKL and of transformers
 * CLIPTextModel / CLIPTextModelWithProjection; docs/formats.md, “SD 1.5 model
 * numbers”).
 *
 * Internal names are `unet.<diffusers UNet2DConditionModel key>`,
 * `vae.<diffusers AutoencoderKL key>`, `text_encoder.<transformers
 * CLIPTextModel key>` and (SDXL) `text_encoder_2.<transformers
 * CLIPTextModelWithProjection key>`; shapes are PyTorch's, with the diffusers (Linear) shape
 * for the VAE mid-block attention projections. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "io/dl-model-config.h"

G_BEGIN_DECLS

typedef enum
{
  DL_COMPONENT_UNET,
  DL_COMPONENT_VAE,
  DL_COMPONENT_TEXT_ENCODER,
  DL_COMPONENT_TEXT_ENCODER_2, /* SDXL only */
  DL_N_COMPONENTS
} DlComponent;

/* "unet", "vae", "text_encoder", "text_encoder_2": also the internal name prefixes */
const char *dl_component_name (DlComponent c);
/* The component of an internal name, from its prefix. */
gboolean dl_component_from_name (const char *internal_name, DlComponent *out);
/* Whether an internal name is a text encoder's (SDXL: either encoder's). */
gboolean dl_component_is_text_encoder_param (const char *internal_name);

typedef struct
{
  char *name; /* internal name */
  DlComponent component;
  int ndim;
  int64_t shape[4];
  /* a Linear weight that LDM files store as a 1x1 conv ([out, in, 1, 1]) */
  gboolean conv1x1_in_ldm;
} DlParamSpec;

/* Every parameter, in module registration order.  Free with g_ptr_array_unref. */
GPtrArray *dl_model_param_specs (const DlModelConfig *config);

int64_t dl_param_spec_numel (const DlParamSpec *spec);

G_END_DECLS
