/* dl-hypernetwork.h: AUTOMATIC1111 hypernetworks (A1111
 * modules/hypernetworks/hypernetwork.py: HypernetworkModule,
 * apply_single_hypernetwork; docs/formats.md, “Hypernetwork files”).
 *
 * A hypernetwork holds, for each enabled size d, a pair of HypernetworkModules:
 * one for the keys, one for the values.  A module is the Sequential A1111 builds
 * from layer_structure L: for i = 0 .. |L|-2, Linear(int(d·L[i]) -> int(d·L[i+1])),
 * the activation (not after the last Linear unless activate_output), LayerNorm
 * (eps 1e-5) when is_layer_norm, Dropout(p) when dropout_structure[i+1] > 0; its
 * output is y = x + stack(x) · multiplier.  Tensors are f32, named as in the
 * golden files: "<d>.<0 = k | 1 = v>.linear.<Sequential index>.<weight | bias>".
 *
 * Attached to a model's parameters (dl_params_add_hypernetwork), every UNet
 * attention applies them, in the order attached, to its context before the key
 * and value projections: k = to_k(hn_k(context)), v = to_v(hn_v(context)), the
 * pair chosen by the context's width (the text context for cross-attention, the
 * normed hidden states for self-attention); q is untouched.  The tensors are
 * ordinary device tensors: register gradient buffers for them with
 * dl_tape_set_param_grad to train them. */
#pragma once

#include "io/dl-model-config.h"
#include "nn/dl-params.h"

G_BEGIN_DECLS

#define DL_HYPERNETWORK_MAX_LAYERS 16

typedef struct
{
  int n_layers;                                         /* entries of layer_structure, 2 .. MAX_LAYERS */
  double layer_structure[DL_HYPERNETWORK_MAX_LAYERS];   /* width multipliers; first and last 1 */
  double dropout_structure[DL_HYPERNETWORK_MAX_LAYERS]; /* n_layers entries; [i+1] > 0: Dropout after Linear i */
  const char *activation_func; /* A1111's name: "linear", "relu", "swish" (Hardswish), ...; NULL: "linear" */
  gboolean is_layer_norm;
  gboolean activate_output; /* the activation also after the last Linear */
  gboolean use_dropout;
  gboolean last_layer_dropout;       /* written as A1111 does: dropout_structure[n-2] != 0 */
  const char *weight_initialization; /* "Normal", "XavierUniform", "XavierNormal", "KaimingUniform",
                                      * "KaimingNormal"; NULL: None */
  const char *name;                  /* NULL: None */
  gint64 step;
  const char *sd_checkpoint;      /* short hash of the base model, or NULL (None) */
  const char *sd_checkpoint_name; /* or NULL */
  const char *optional_info;      /* or NULL */
} DlHypernetworkConfig;

/* What A1111's "Create hypernetwork" gives by default: [1, 2, 1], linear,
 * Normal, no layer norm, no dropout ([0, 0, 0]), no output activation, step 0. */
void dl_hypernetwork_config_init (DlHypernetworkConfig *config);

/* The activations A1111 offers that this engine runs: linear, relu, leakyrelu,
 * elu, swish, hardswish, tanh, sigmoid, gelu, silu, mish, softsign. */
gboolean dl_hypernetwork_activation_supported (const char *name);

/* DlHypernetwork (declared in nn/dl-params.h, which holds the attached ones) */

/* The modules of `config` for each of `sizes` (distinct, > 0), tensors
 * allocated on `device` but not set: see dl_hypernetwork_init_weights. */
DlHypernetwork *dl_hypernetwork_new (DlDevice *device, const DlHypernetworkConfig *config, const int *sizes,
                                     guint n_sizes, GError **error);
DlHypernetwork *dl_hypernetwork_ref (DlHypernetwork *hn);
void dl_hypernetwork_unref (DlHypernetwork *hn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlHypernetwork, dl_hypernetwork_unref)

/* A1111's initialisation (HypernetworkModule.__init__), from the native Philox
 * stream of `seed` (draw = tensor index): Linear weights by
 * config->weight_initialization (Normal: N(0, 0.01²); Xavier*, Kaiming* with
 * fan-in/fan-out of the weight, Kaiming's gain √2), LayerNorm weights N(0, 0.01²)
 * whatever the choice, every bias 0.  An unknown initialisation is an error. */
gboolean dl_hypernetwork_init_weights (DlHypernetwork *hn, guint64 seed, GError **error);

const DlHypernetworkConfig *dl_hypernetwork_get_config (DlHypernetwork *hn);
/* The entries written with the file (strings are copied; NULL is None). */
void dl_hypernetwork_set_step (DlHypernetwork *hn, gint64 step);
void dl_hypernetwork_set_name (DlHypernetwork *hn, const char *name);
void dl_hypernetwork_set_checkpoint (DlHypernetwork *hn, const char *sd_checkpoint, const char *sd_checkpoint_name);
void dl_hypernetwork_set_optional_info (DlHypernetwork *hn, const char *optional_info);

guint dl_hypernetwork_get_n_sizes (DlHypernetwork *hn);
int dl_hypernetwork_get_size (DlHypernetwork *hn, guint index);
gboolean dl_hypernetwork_has_size (DlHypernetwork *hn, int64_t size);

/* Every tensor, by size, then k before v, then Sequential order (weight before
 * bias): the order A1111's state dicts have. */
guint dl_hypernetwork_get_n_tensors (DlHypernetwork *hn);
DlTensor *dl_hypernetwork_get_tensor (DlHypernetwork *hn, guint index, const char **name);
DlTensor *dl_hypernetwork_find_tensor (DlHypernetwork *hn, const char *name);

/* A1111's train(): Dropout layers drop (inverted dropout, ops/dl-op-random.h)
 * with masks from the native stream of `seed`, a pure function of `step`, the
 * attention, the module and the layer (so a checkpointed block's rerun draws
 * the same mask), and the multiplier is 1 whatever the strength attached.  Off
 * (inference, the default): no dropout, multiplier = strength. */
void dl_hypernetwork_set_training (DlHypernetwork *hn, gboolean training, guint64 seed, guint64 step);

/* The draw (the `offset` of dl_op_dropout) of Dropout layer `index` of module
 * `kv` at the attention `site` in training step `step`: the step in the high
 * word, a hash of the rest in the low one.  For CPU references. */
guint64 dl_hypernetwork_dropout_offset (guint64 step, const char *site, int kv, int index);

/* One module on x [..., size] (kv 0: keys, 1: values): x + stack(x) · multiplier,
 * recorded on the tape.  `site` names the attention (dropout streams). */
DlTensor *dl_hypernetwork_module_forward (DlHypernetwork *hn, DlTape *tape, int64_t size, int kv, DlTensor *x,
                                          float multiplier, const char *site, GError **error);

/* A1111's apply_hypernetworks for the attention `site`: the inputs of to_k and
 * to_v (new references) from `context` [..., width] through every hypernetwork
 * attached to `params` that has a module pair of that width, in order (k through
 * the k modules, v through the v modules).  Both are `context` when none
 * applies. */
gboolean dl_hypernetwork_apply (DlParams *params, DlTape *tape, const char *site, DlTensor *context, DlTensor **k_in,
                                DlTensor **v_in, GError **error);

/* The sizes of `hn` that no attention of a UNet of `config` has as its context
 * width (the text width, and the width of each level with attention and of the
 * mid block): A1111 silently never uses them.  A GArray of int, maybe empty. */
GArray *dl_hypernetwork_unused_sizes (DlHypernetwork *hn, const DlUNetConfig *config);

/* ---- files (A1111's torch.save .pt; see dl-hypernetwork-file.c) ---- */

/* Reads an A1111 hypernetwork the way A1111 (Hypernetwork.load) does: int keys
 * are sizes mapping to (k state dict, v state dict), loaded strictly (every
 * tensor of the module present with its shape, nothing else; the pre-Sequential
 * names linear1/linear2 renamed); missing entries take A1111's defaults
 * (layer_structure [1, 2, 1], activation None = linear, is_layer_norm False,
 * activate_output True, use_dropout False, last_layer_dropout False,
 * dropout_structure derived from those, weight_initialization "Normal", name =
 * the file stem, step 0, checkpoint and optional_info None).  Size keys that are
 * strings of digits are accepted too (as ComfyUI does).  Tensors of any float
 * dtype are converted to f32. */
DlHypernetwork *dl_hypernetwork_read (DlDevice *device, const char *path, GError **error);

/* Writes `hn` as A1111 saves it (torch.save of a dict, atomic): int size keys to
 * tuples of two OrderedDicts (linear.<index>.weight/bias in Sequential order), then
 * every metadata entry explicitly (step, name, layer_structure, activation_func,
 * is_layer_norm, weight_initialization, sd_checkpoint, sd_checkpoint_name,
 * activate_output, use_dropout, dropout_structure, last_layer_dropout,
 * optional_info), numbers as ints where whole.  Reads the tensors back from the
 * device: the work that wrote them must have finished. */
gboolean dl_hypernetwork_write (DlHypernetwork *hn, const char *path, GError **error);

G_END_DECLS
