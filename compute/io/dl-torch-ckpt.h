/* dl-torch-ckpt.h: the tensors of a PyTorch zip file (torch.save since 1.6:
 * .ckpt, .pt, .bin; PyTorch torch/serialization.py _load; docs/formats.md,
 * “PyTorch zip files”), read with the restricted unpickler.
 *
 * The state dict is `d["state_dict"]` when the top-level dict has that key
 * (Lightning checkpoints), else the top-level dict itself.  Its tensor entries
 * become DlStTensors pointing into the archive's storages; entries that are not
 * tensors are listed.  Tensors must be contiguous; storages must be as large as
 * their references say.  The pre-1.6 non-zip format and TorchScript archives
 * are refused with an error saying so. */
#pragma once

#include <glib.h>

#include "io/dl-pickle.h"
#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef struct _DlTorchCkpt DlTorchCkpt;

DlTorchCkpt *dl_torch_ckpt_open (const char *path, GError **error);
DlTorchCkpt *dl_torch_ckpt_open_bytes (GBytes *bytes, const char *display_name, GError **error);
void dl_torch_ckpt_free (DlTorchCkpt *ck);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlTorchCkpt, dl_torch_ckpt_free)

const char *dl_torch_ckpt_get_path (DlTorchCkpt *ck);
guint dl_torch_ckpt_get_n_tensors (DlTorchCkpt *ck);
/* In state-dict order; NULL past the end. */
const DlStTensor *dl_torch_ckpt_get_tensor (DlTorchCkpt *ck, guint index);
const DlStTensor *dl_torch_ckpt_find (DlTorchCkpt *ck, const char *name);
/* State-dict keys whose values are not tensors. */
GPtrArray *dl_torch_ckpt_get_other_keys (DlTorchCkpt *ck);
/* The whole unpickled object (for callers that need more than the state dict):
 * a tree of DlPickleValues, nested dicts (str or int keys), lists, tuples. */
DlPickleValue *dl_torch_ckpt_get_root (DlTorchCkpt *ck);
/* A tensor anywhere in that tree, checked as state-dict tensors are (storage
 * present and large enough, contiguous), as a DlStTensor whose data points into
 * the archive (valid while ck is open; out->name is NULL).  `what` names it in
 * errors; a value that is not a tensor is an error too. */
gboolean dl_torch_ckpt_resolve_tensor (DlTorchCkpt *ck, const DlPickleValue *tensor, const char *what, DlStTensor *out,
                                       GError **error);

G_END_DECLS
