/* dl-pipeline.h: compute pipelines from the embedded shader table. */
#pragma once

#include "dl-device.h"

G_BEGIN_DECLS

typedef struct _DlPipeline DlPipeline;

/* Whether a shader variant of that name was built into this binary. */
gboolean dl_shader_exists (const char *name);

/* The pipeline for `shader` with specialization constants 0..n_spec-1 set to
 * `spec` (uint32 each; floats as their bits).  Created on first use and cached on
 * the device for its lifetime; thread-safe. */
DlPipeline *dl_device_get_pipeline (DlDevice *device, const char *shader, const uint32_t *spec, guint n_spec,
                                    GError **error);

const char *dl_pipeline_get_name (DlPipeline *pipeline);
guint dl_pipeline_get_n_bindings (DlPipeline *pipeline);
guint dl_pipeline_get_push_size (DlPipeline *pipeline);
gboolean dl_pipeline_binding_is_writable (DlPipeline *pipeline, guint binding);

/* Number of pipelines compiled by this device so far (cache misses). */
guint dl_device_get_pipelines_created (DlDevice *device);

G_END_DECLS
