/* torch-writer.h (tests only): what the engine's writer (io/dl-torch-writer.h)
 * does not write: a raw pickle builder for the malformed and malicious files
 * the reader must refuse, and variants of torch.save's layout (another archive
 * folder, deflated records, Lightning wrappers, Parameters, memo opcodes).
 * Plain state dicts go through the engine's writer. */
#pragma once

#include <glib.h>

#include "io/dl-safetensors.h"

G_BEGIN_DECLS

/* ---- raw pickle opcodes ---- */

typedef struct
{
  GByteArray *b;
  GHashTable *memo; /* "module\nname" -> memo index */
  gboolean use_memo;
} TwPickle;

void tw_pickle_init (TwPickle *p, gboolean use_memo);
GBytes *tw_pickle_finish (TwPickle *p); /* appends nothing; frees the builder */
void tw_op (TwPickle *p, guint8 op);
void tw_bytes (TwPickle *p, const void *data, gsize n);
void tw_str (TwPickle *p, const char *s);                           /* BINUNICODE */
void tw_int (TwPickle *p, gint64 v);                                /* BININT1/2/BININT/LONG1 */
void tw_float (TwPickle *p, double v);                              /* BINFLOAT */
void tw_global (TwPickle *p, const char *module, const char *name); /* GLOBAL (memoised) */
void tw_int_tuple (TwPickle *p, int n, const gint64 *v);
/* the torch tensor reference: _rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict()) */
void tw_tensor (TwPickle *p, const char *storage_class, const char *key, gint64 storage_numel, gint64 offset, int ndim,
                const gint64 *shape, const gint64 *stride);

/* ---- whole files ---- */

typedef struct
{
  const char *name;
  DlStDType dtype;
  int ndim;
  int64_t shape[DL_ST_MAX_DIMS];
  const void *data;
  gsize nbytes;
} TwTensor;

typedef struct
{
  const char *prefix;  /* the archive folder; NULL: "archive" */
  gboolean deflate;    /* deflate the storages */
  gboolean lightning;  /* {"epoch", "global_step", "callbacks", "state_dict": ...} as Lightning saves */
  gboolean parameters; /* wrap tensors in _rebuild_parameter */
  gboolean memo;       /* BINPUT/BINGET for repeated globals, as pickle does */
} TwOptions;

/* A state dict of `n` tensors: the engine's dl_torch_save for the default
 * options; its pickle in another archive (prefix, deflate); a hand-written
 * pickle for lightning, parameters and memo. */
gboolean tw_write_state_dict (const char *path, const TwTensor *tensors, guint n, const TwOptions *opt, GError **error);
/* Any pickle with storages data/<key> (a NULL-terminated list of key, GBytes*
 * pairs); version NULL: "3\n". */
gboolean tw_write_raw (const char *path, const char *prefix, GBytes *pickle, const char *version,
                       gpointer *key_bytes_pairs, gboolean deflate, GError **error);

G_END_DECLS
