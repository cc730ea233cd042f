#include "dl-arena.h"

#include "dl-error.h"

#define ALIGN 256u

typedef struct
{
  DlTensor *storage; /* i32 tensor spanning the chunk */
  guint64 size;
  GArray *free; /* Range, sorted by offset, coalesced */
  guint64 used;
} Chunk;

typedef struct
{
  guint64 offset, size;
} Range;

struct _DlArena
{
  gint ref_count;
  DlDevice *device;
  char *name;
  guint64 chunk_bytes;
  GPtrArray *chunks; /* Chunk* */
  guint64 in_use, peak, reserved;
};

typedef struct
{
  DlArena *arena;
  Chunk *chunk;
  guint64 offset, size;
} Lease;

static void
chunk_free (Chunk *c)
{
  dl_tensor_unref (c->storage);
  g_array_unref (c->free);
  g_free (c);
}

DlArena *
dl_arena_new (DlDevice *device, const char *name, guint64 chunk_bytes)
{
  g_return_val_if_fail (device != NULL, NULL);
  DlArena *a = g_new0 (DlArena, 1);
  a->ref_count = 1;
  a->device = device;
  a->name = g_strdup (name ? name : "arena");
  a->chunk_bytes = MAX (chunk_bytes, 1 << 20);
  a->chunks = g_ptr_array_new_with_free_func ((GDestroyNotify)chunk_free);
  return a;
}

DlArena *
dl_arena_ref (DlArena *a)
{
  g_return_val_if_fail (a != NULL, NULL);
  g_atomic_int_inc (&a->ref_count);
  return a;
}

void
dl_arena_unref (DlArena *a)
{
  if (!a || !g_atomic_int_dec_and_test (&a->ref_count))
    return;
  g_ptr_array_unref (a->chunks);
  g_free (a->name);
  g_free (a);
}

static gboolean
chunk_take (Chunk *c, guint64 size, guint64 *offset)
{
  /* best fit keeps large holes for large tensors */
  int best = -1;
  for (guint i = 0; i < c->free->len; i++)
    {
      Range *r = &g_array_index (c->free, Range, i);
      if (r->size >= size && (best < 0 || r->size < g_array_index (c->free, Range, best).size))
        best = (int)i;
    }
  if (best < 0)
    return FALSE;
  Range *r = &g_array_index (c->free, Range, best);
  *offset = r->offset;
  r->offset += size;
  r->size -= size;
  if (r->size == 0)
    g_array_remove_index (c->free, best);
  c->used += size;
  return TRUE;
}

static void
chunk_give_back (Chunk *c, guint64 offset, guint64 size)
{
  GArray *fr = c->free;
  guint i = 0;
  while (i < fr->len && g_array_index (fr, Range, i).offset < offset)
    i++;
  Range r = { offset, size };
  g_array_insert_val (fr, i, r);
  if (i + 1 < fr->len)
    {
      Range *cur = &g_array_index (fr, Range, i), *next = &g_array_index (fr, Range, i + 1);
      if (cur->offset + cur->size == next->offset)
        {
          cur->size += next->size;
          g_array_remove_index (fr, i + 1);
        }
    }
  if (i > 0)
    {
      Range *prev = &g_array_index (fr, Range, i - 1), *cur = &g_array_index (fr, Range, i);
      if (prev->offset + prev->size == cur->offset)
        {
          prev->size += cur->size;
          g_array_remove_index (fr, i);
        }
    }
  c->used -= size;
}

static void
lease_release (DlTensor *t, gpointer data)
{
  Lease *l = data;
  chunk_give_back (l->chunk, l->offset, l->size);
  l->arena->in_use -= l->size;
  dl_arena_unref (l->arena);
  g_free (l);
}

DlTensor *
dl_arena_tensor (DlArena *a, const char *name, DlDType dtype, int ndim, const int64_t *shape, GError **error)
{
  g_return_val_if_fail (a != NULL, NULL);
  g_return_val_if_fail (ndim >= 0 && ndim <= DL_MAX_DIMS, NULL);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    {
      if (shape[i] < 0)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "Tensor “%s”: negative dimension", name);
          return NULL;
        }
      n *= shape[i];
    }
  guint64 size = ((guint64)n * dl_dtype_size (dtype) + ALIGN - 1) / ALIGN * ALIGN;
  size = MAX (size, ALIGN);

  Chunk *chunk = NULL;
  guint64 offset = 0;
  for (guint i = 0; i < a->chunks->len && !chunk; i++)
    if (chunk_take (g_ptr_array_index (a->chunks, i), size, &offset))
      chunk = g_ptr_array_index (a->chunks, i);
  if (!chunk)
    {
      guint64 bytes = MAX (a->chunk_bytes, size);
      g_autofree char *cname = g_strdup_printf ("%s chunk %u (for %s)", a->name, a->chunks->len, name);
      DlTensor *storage = dl_tensor_new_1d (a->device, cname, DL_DTYPE_I32, (int64_t)(bytes / 4), error);
      if (!storage)
        return NULL;
      chunk = g_new0 (Chunk, 1);
      chunk->storage = storage;
      chunk->size = bytes;
      chunk->free = g_array_new (FALSE, FALSE, sizeof (Range));
      Range all = { 0, bytes };
      g_array_append_val (chunk->free, all);
      g_ptr_array_add (a->chunks, chunk);
      a->reserved += bytes;
      gboolean ok = chunk_take (chunk, size, &offset);
      g_assert (ok);
    }

  DlTensor *t = dl_tensor_view_as (chunk->storage, name, offset, dtype, ndim, shape, error);
  if (!t)
    {
      chunk_give_back (chunk, offset, size);
      return NULL;
    }
  Lease *l = g_new0 (Lease, 1);
  l->arena = dl_arena_ref (a);
  l->chunk = chunk;
  l->offset = offset;
  l->size = size;
  t->release = lease_release;
  t->release_data = l;
  a->in_use += size;
  a->peak = MAX (a->peak, a->in_use);
  return t;
}

DlTensor *
dl_arena_tensor_like (DlArena *a, const char *name, const DlTensor *like, GError **error)
{
  return dl_arena_tensor (a, name, like->dtype, like->ndim, like->shape, error);
}

guint64
dl_arena_get_in_use (DlArena *a)
{
  return a->in_use;
}

guint64
dl_arena_get_peak (DlArena *a)
{
  return a->peak;
}

guint64
dl_arena_get_reserved (DlArena *a)
{
  return a->reserved;
}

void
dl_arena_reset_peak (DlArena *a)
{
  a->peak = a->in_use;
}

void
dl_arena_trim (DlArena *a)
{
  for (guint i = a->chunks->len; i > 0; i--)
    {
      Chunk *c = g_ptr_array_index (a->chunks, i - 1);
      if (c->used == 0)
        {
          a->reserved -= c->size;
          g_ptr_array_remove_index (a->chunks, i - 1);
        }
    }
}

guint64
dl_arena_available_bytes (DlDevice *device, DlArena *arena)
{
  g_return_val_if_fail (device != NULL, 0);
  guint64 budget = dl_device_get_memory_budget (device, NULL);
  guint64 in_use = dl_device_get_memory_in_use (device);
  guint64 spare = arena ? arena->reserved - arena->in_use : 0;
  return (budget > in_use ? budget - in_use : 0) + spare;
}
