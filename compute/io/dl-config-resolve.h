/* dl-config-resolve.h: fill a DlModelConfig from its sources in precedence
 * order.  The first source to give a field wins:
 *   1. the weights' shapes (set by the checkpoint loader),
 *   2. a diffusers-style folder (unet/ vae/ text_encoder/ scheduler/ config.json),
 *   3. an LDM .yaml config (v1-inference.yaml style),
 *   4. the family's published defaults (SD 1.x: 8 heads per transformer, CLIP
 *      heads of width 64, the SD 1.5 scheduler; SDXL: heads of width 64, SDXL
 *      base 1.0's values; dl_config_resolver_set_family).
 * A later source that disagrees with the weights is noted as a warning; a value
 * that is malformed or impossible is an error naming its file and field. */
#pragma once

#include <glib.h>

#include "io/dl-model-config.h"

G_BEGIN_DECLS

#define DL_CONFIG_SOURCE_WEIGHTS "weights"
#define DL_CONFIG_SOURCE_DEFAULT "SD 1.x default"
#define DL_CONFIG_SOURCE_DEFAULT_SDXL "SDXL default"

typedef struct _DlConfigResolver DlConfigResolver;

DlConfigResolver *dl_config_resolver_new (void);
void dl_config_resolver_free (DlConfigResolver *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlConfigResolver, dl_config_resolver_free)

DlModelConfig *dl_config_resolver_get_config (DlConfigResolver *r);
/* Whose defaults fill the fields no source gives (SD 1.x unless set). */
void dl_config_resolver_set_family (DlConfigResolver *r, DlModelFamily family);

/* Give a field a value from `source` unless an earlier source already did.
 * `field` is a DlModelConfig field name; n is the element count for level
 * arrays. */
void dl_config_resolver_set_int (DlConfigResolver *r, const char *field, int value, const char *source);
void dl_config_resolver_set_double (DlConfigResolver *r, const char *field, double value, const char *source);
void dl_config_resolver_set_bool (DlConfigResolver *r, const char *field, gboolean value, const char *source);
void dl_config_resolver_set_levels (DlConfigResolver *r, const char *field, const int *values, int n,
                                    const char *source);
/* FALSE when the value does not fit the field. */
gboolean dl_config_resolver_set_string (DlConfigResolver *r, const char *field, const char *value, const char *source);
gboolean dl_config_resolver_is_set (DlConfigResolver *r, const char *field);

/* diffusers config.json files under `dir`; at least one must be there. */
gboolean dl_config_resolver_apply_diffusers_dir (DlConfigResolver *r, const char *dir, GError **error);
/* An LDM config (model.params...). */
gboolean dl_config_resolver_apply_ldm_yaml (DlConfigResolver *r, const char *path, GError **error);
/* Everything still unset, then checks that the result is a model we can build. */
gboolean dl_config_resolver_finish (DlConfigResolver *r, GError **error);

/* Which source gave a field ("weights", a file path, "SD 1.x default"). */
const char *dl_config_resolver_get_source (DlConfigResolver *r, const char *field);
/* Disagreements between a config file and the weights (strings). */
GPtrArray *dl_config_resolver_get_warnings (DlConfigResolver *r);

G_END_DECLS
