/* dl-torch-writer.h: write PyTorch files the way torch.save does (PyTorch
 * torch/serialization.py _save, pickle protocol 2; docs/formats.md, “PyTorch
 * zip files” and “Pickle subset”), for the files A1111 and ComfyUI load with
 * torch.load: Textual Inversion embeddings, hypernetworks.
 *
 * The object to save is built from DlTorchValues: None, bools, ints, floats,
 * str, lists, tuples, dicts and collections.OrderedDicts (keys str or int,
 * insertion order kept) and contiguous tensors.  A container takes ownership of
 * what is put in it; the root is freed by the caller.
 *
 * The file is a zip of stored records: archive/data.pkl, archive/data/<n> (one
 * storage per tensor, keys 0, 1, ... in pickling order), archive/version "3\n";
 * each record's data 64-byte aligned by an "FB" extra field as torch does; CRC-32
 * set; written atomically.  The pickle is protocol 2 as Python's pickler writes it,
 * without memo opcodes, using only PROTO, EMPTY_DICT/LIST/TUPLE, MARK, SETITEM(S),
 * APPENDS (also for a one-item list), TUPLE, TUPLE1-3, BINUNICODE, BININT1/BININT2/
 * BININT, BINFLOAT, NONE, NEWTRUE/NEWFALSE, GLOBAL, REDUCE, BINPERSID, STOP, plus
 * LONG1 for an int outside the 32-bit range.  The only globals are
 * collections.OrderedDict, torch._utils._rebuild_tensor_v2 and the
 * torch.<Type>Storage of each tensor's dtype. */
#pragma once

#include <glib.h>

#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef struct _DlTorchValue DlTorchValue;

DlTorchValue *dl_torch_none (void);
DlTorchValue *dl_torch_bool (gboolean value);
DlTorchValue *dl_torch_int (gint64 value);
DlTorchValue *dl_torch_float (double value);
/* `utf8` must be valid UTF-8. */
DlTorchValue *dl_torch_str (const char *utf8);
/* A str, or None for NULL (optional entries such as "sd_checkpoint"). */
DlTorchValue *dl_torch_str_or_none (const char *utf8);

DlTorchValue *dl_torch_list (void);
DlTorchValue *dl_torch_tuple (void);
DlTorchValue *dl_torch_dict (void);
/* collections.OrderedDict (what module.state_dict() returns). */
DlTorchValue *dl_torch_ordered_dict (void);

/* A contiguous tensor of `dtype` (any dtype torch has a storage class for: F32,
 * F16, BF16, F64, I64, I32, I16, I8, U8, BOOL); `nbytes` must be the shape's
 * size.  The data is copied. */
DlTorchValue *dl_torch_tensor (DlStDType dtype, int ndim, const int64_t *shape, const void *data, gsize nbytes);
/* The same holding a reference to `data` instead of a copy. */
DlTorchValue *dl_torch_tensor_bytes (DlStDType dtype, int ndim, const int64_t *shape, GBytes *data);
/* float data stored as `dtype` (F32, F16 or BF16, rounded to nearest even). */
DlTorchValue *dl_torch_tensor_f32 (DlStDType dtype, int ndim, const int64_t *shape, const float *data);
/* The pickled requires_grad flag (FALSE unless set; loaders ignore it). */
void dl_torch_tensor_set_requires_grad (DlTorchValue *tensor, gboolean requires_grad);

/* Append to a list or tuple; takes ownership of `item`. */
void dl_torch_append (DlTorchValue *seq, DlTorchValue *item);
/* Set dict[key] (dict or OrderedDict); takes ownership of `value`.  A key set
 * again keeps its place and gets the new value, as in Python. */
void dl_torch_dict_set (DlTorchValue *dict, const char *key, DlTorchValue *value);
void dl_torch_dict_set_int (DlTorchValue *dict, gint64 key, DlTorchValue *value);

void dl_torch_value_free (DlTorchValue *value);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTorchValue, dl_torch_value_free)

/* The data.pkl pickle of `root` and the storages it references (GBytes*, the
 * record data/<i> at index i). */
GBytes *dl_torch_pickle (const DlTorchValue *root, GPtrArray **storages);
/* Save `root` to `path` as torch.save would (atomic). */
gboolean dl_torch_save (const char *path, const DlTorchValue *root, GError **error);

G_END_DECLS
