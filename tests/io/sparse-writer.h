/* sparse-writer.h (tests only): tensor key lists, and safetensors files that
 * hold only a header — the data section is made with ftruncate, so even a
 * full-size SD 1.5 checkpoint takes no disk space. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef struct
{
  char *name;
  DlStDType dtype;
  int ndim;
  int64_t shape[DL_ST_MAX_DIMS];
} SwKey;

/* A list of SwKey* (freed with it). */
GPtrArray *sw_keys_new (void);
SwKey *sw_keys_add (GPtrArray *keys, const char *name, DlStDType dtype, int ndim, const int64_t *shape);
/* The names, dtypes and shapes of an existing safetensors file, in its order. */
GPtrArray *sw_keys_from_safetensors (const char *path);
/* {"name": {"shape": [...], "dtype": "F32"}, ...} as in the golden manifests. */
GPtrArray *sw_keys_from_json_object (gpointer json_object /* JsonObject* */);
SwKey *sw_keys_find (GPtrArray *keys, const char *name);
/* FALSE when there was no such key. */
gboolean sw_keys_remove (GPtrArray *keys, const char *name);
int64_t sw_key_numel (const SwKey *k);

/* Header only, then ftruncate to the full size.  `metadata`: NULL-terminated
 * key, value pairs, or NULL. */
void sw_write_sparse (const char *path, GPtrArray *keys, const char *const *metadata);

/* The number of bytes the file really occupies on disk. */
guint64 sw_disk_usage (const char *path);

G_END_DECLS
