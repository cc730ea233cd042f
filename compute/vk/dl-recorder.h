/* dl-recorder.h: batches many dispatches into few submissions.
 *
 * Barriers come from hazard tracking: the recorder remembers the byte ranges read
 * and written since the last barrier and inserts one compute->compute memory
 * barrier only when a dispatch reads what an earlier one wrote, or writes what an
 * earlier one read or wrote.  Descriptors are pushed (VK_KHR_push_descriptor) or,
 * without it, written into sets that are allocated once and reused. */
#pragma once

#include "dl-device.h"
#include "dl-pipeline.h"

G_BEGIN_DECLS

typedef struct _DlMemBlock DlMemBlock;
typedef struct _DlRecorder DlRecorder;

/* Descriptors start at a multiple of this; shaders add the remainder (in elements)
 * themselves.  256 is the largest minStorageBufferOffsetAlignment Vulkan allows. */
#define DL_BINDING_ALIGN 256u

/* A byte range of device memory as a shader sees it. */
typedef struct
{
  DlMemBlock *block;
  guint64 offset;
  guint64 size;
  gboolean write;
} DlBinding;

/* Element offset of the binding's start from the descriptor's (aligned) start. */
static inline guint32
dl_binding_shader_offset (const DlBinding *b, gsize elem_size)
{
  return (guint32)((b->offset % DL_BINDING_ALIGN) / elem_size);
}

DlRecorder *dl_recorder_new (DlDevice *device, GError **error);
void dl_recorder_free (DlRecorder *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlRecorder, dl_recorder_free)

DlDevice *dl_recorder_get_device (DlRecorder *rec);

/* Record one dispatch.  `push` must be exactly the shader's push-constant size;
 * bindings[i] goes to binding i and must be marked write when the shader may
 * write it.  Fails (nothing recorded) on a binding larger than the device's
 * maxStorageBufferRange or on an interface mismatch. */
gboolean dl_recorder_dispatch (DlRecorder *rec, DlPipeline *pipeline, const DlBinding *bindings, guint n_bindings,
                               const void *push, gsize push_size, guint32 groups_x, guint32 groups_y, guint32 groups_z,
                               GError **error);

/* Keep `data` alive until the recorded work has run: dl_recorder_finish() calls
 * `destroy` on it.  Ops hold every tensor they bind, so callers may drop their
 * references right after recording. */
void dl_recorder_hold (DlRecorder *rec, gpointer data, GDestroyNotify destroy);

/* Submit what has been recorded without waiting (the GPU starts while the CPU
 * records more).  Dispatches are also flushed automatically in chunks. */
gboolean dl_recorder_flush (DlRecorder *rec, GError **error);
/* Submit and wait for everything; afterwards results can be downloaded and the
 * recorder reused. */
gboolean dl_recorder_finish (DlRecorder *rec, GError **error);

/* GPU timestamps per dispatch.  Profiling serialises dispatches (a barrier after
 * each) so that every duration belongs to one dispatch. */
void dl_recorder_set_profiling (DlRecorder *rec, gboolean enable);
gboolean dl_recorder_get_profiling (DlRecorder *rec);

typedef struct
{
  const char *name; /* pipeline name (owned by the device) */
  guint count;
  double total_ns;
} DlProfileEntry;

/* Per-pipeline totals since the last reset, largest first. */
GArray *dl_recorder_get_profile (DlRecorder *rec);
/* Sum of all dispatch times since the last reset. */
double dl_recorder_get_profile_total_ns (DlRecorder *rec);
void dl_recorder_reset_profile (DlRecorder *rec);
/* A printable table of the profile. */
char *dl_recorder_format_profile (DlRecorder *rec);

/* Counters since creation, for tests and benchmarks. */
guint64 dl_recorder_get_dispatch_count (DlRecorder *rec);
guint64 dl_recorder_get_barrier_count (DlRecorder *rec);
guint64 dl_recorder_get_submit_count (DlRecorder *rec);

/* Dispatches per automatic flush (default 128). */
void dl_recorder_set_chunk_size (DlRecorder *rec, guint dispatches);

/* The largest byte range one binding may span: the device's maxStorageBufferRange,
 * or less after dl_recorder_set_max_binding_range() (0 restores the device's; at
 * least 2 * DL_BINDING_ALIGN).  Lowering it lets tests exercise, on small tensors,
 * the splitting that ops do for tensors larger than one binding; dispatches past
 * it fail as they would on the device. */
void dl_recorder_set_max_binding_range (DlRecorder *rec, guint64 bytes);
guint64 dl_recorder_get_max_binding_range (DlRecorder *rec);

G_END_DECLS
