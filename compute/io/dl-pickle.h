/* dl-pickle.h: a restricted unpickler for PyTorch files (what PyTorch
 * torch/serialization.py _save writes; compare torch/_weights_only_unpickler.py
 * and AUTOMATIC1111 modules/safe.py RestrictedUnpickler; docs/formats.md,
 * “Pickle subset”).
 *
 * It never executes anything: it reads the opcode stream into a tree of plain
 * values.  Only the opcodes of pickle protocols 0-4 that data needs are
 * accepted (no INST/OBJ/EXT*, no PERSID text ids, no NEWOBJ_EX, ...), and
 * GLOBAL may name only:
 *  - collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
 *    _rebuild_parameter, the torch.*Storage classes: these build dicts, tensor
 *    descriptions and storage references;
 *  - a few inert classes SD-era .ckpt files carry outside the state dict
 *    (Lightning's ModelCheckpoint, numpy scalars and dtypes, _codecs.encode,
 *    set) and torch.nn.modules.container.ParameterDict (the original Textual
 *    Inversion files): they become opaque placeholders, never called, that keep
 *    the state BUILD gives them (an object's attribute dict).
 * Anything else (os.system, builtins.eval, ...) is refused with an error
 * naming it.  Values live in an arena freed with the result, so shared and
 * cyclic references from the memo are harmless. */
#pragma once

#include <glib.h>
#include <stdint.h>

#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef enum
{
  DL_PK_NONE,
  DL_PK_BOOL,
  DL_PK_INT,
  DL_PK_FLOAT,
  DL_PK_STRING, /* str (UTF-8) */
  DL_PK_BYTES,
  DL_PK_TUPLE,
  DL_PK_LIST,
  DL_PK_DICT, /* dict or OrderedDict: items alternate key, value */
  DL_PK_SET,
  DL_PK_GLOBAL, /* an allowed global not (yet) called */
  DL_PK_STORAGE,
  DL_PK_TENSOR,
  DL_PK_OPAQUE, /* an inert object (placeholder) */
} DlPickleType;

typedef struct _DlPickleValue DlPickleValue;

struct _DlPickleValue
{
  DlPickleType type;
  union
  {
    gboolean b;
    gint64 i;
    double f;
    struct
    {
      char *data; /* NUL-terminated too */
      gsize len;
    } str;
    GPtrArray *items; /* TUPLE, LIST, DICT, SET: DlPickleValue* */
    struct
    {
      char *module;
      char *name;
      DlPickleValue *state; /* OPAQUE: what BUILD set (NULL if none) */
    } global;               /* GLOBAL and OPAQUE (the class it stands for) */
    struct
    {
      DlStDType dtype;
      char *key; /* data/<key> in the archive */
      char *location;
      gint64 numel;
    } storage;
    struct
    {
      DlPickleValue *storage;
      gint64 offset; /* in elements */
      int ndim;
      gint64 shape[DL_ST_MAX_DIMS];
      gint64 stride[DL_ST_MAX_DIMS];
    } tensor;
  };
};

typedef struct _DlPickle DlPickle;

/* Unpickle `data`; errors name `display_name`, the byte offset and the
 * offending opcode or global. */
DlPickle *dl_pickle_load (const guint8 *data, gsize len, const char *display_name, GError **error);
void dl_pickle_free (DlPickle *pk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlPickle, dl_pickle_free)

DlPickleValue *dl_pickle_get_root (DlPickle *pk);

/* In a DICT, the value of the str key `key`, or NULL. */
DlPickleValue *dl_pickle_dict_get (const DlPickleValue *dict, const char *key);
/* In a DICT, the value of the int key `key` (hypernetwork files), or NULL. */
DlPickleValue *dl_pickle_dict_get_int (const DlPickleValue *dict, gint64 key);
/* An OPAQUE object's attribute `name` (from its BUILD state dict), or NULL. */
DlPickleValue *dl_pickle_get_attr (const DlPickleValue *object, const char *name);
/* "dict", "list", "tensor", ... for messages. */
const char *dl_pickle_type_name (DlPickleType type);

G_END_DECLS
