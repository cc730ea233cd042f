/* dl-arena.h: scratch memory for activations, reusable within one recording.
 *
 * Tensors from an arena are views into a few large device allocations.  When such
 * a tensor is dropped its range goes straight back to the arena, even while
 * recorded work that used it has not run yet: a later op that reuses the range is
 * ordered after the earlier ones by the recorder's hazard tracking.  This is what
 * lets a long forward/backward recording run in bounded memory.
 *
 * The price: arena memory is for GPU ops only.  Do not upload into an arena tensor
 * (or download from one) while recorded work is pending — finish the recorder first. */
#pragma once

#include "tensor/dl-tensor.h"

G_BEGIN_DECLS

typedef struct _DlArena DlArena;

/* `chunk_bytes`: size of each backing allocation (larger requests get their own). */
DlArena *dl_arena_new (DlDevice *device, const char *name, guint64 chunk_bytes);
DlArena *dl_arena_ref (DlArena *arena);
void dl_arena_unref (DlArena *arena);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlArena, dl_arena_unref)

/* A new uninitialised tensor carved from the arena. */
DlTensor *dl_arena_tensor (DlArena *arena, const char *name, DlDType dtype, int ndim, const int64_t *shape,
                           GError **error);
/* Same shape and dtype as `like`. */
DlTensor *dl_arena_tensor_like (DlArena *arena, const char *name, const DlTensor *like, GError **error);

guint64 dl_arena_get_in_use (DlArena *arena);
guint64 dl_arena_get_peak (DlArena *arena);
guint64 dl_arena_get_reserved (DlArena *arena);
/* Bytes new activations can get: the device's memory budget less what is in
 * use, plus what `arena` (may be NULL) holds reserved and unused. */
guint64 dl_arena_available_bytes (DlDevice *device, DlArena *arena);
void dl_arena_reset_peak (DlArena *arena);
/* Give back chunks that hold no tensor (call after the recorder finished). */
void dl_arena_trim (DlArena *arena);

G_END_DECLS
