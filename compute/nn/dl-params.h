/* dl-params.h: a model's parameters on the device, by internal name
 * (`unet.<diffusers key>`, `vae.<...>`, `text_encoder.<...>`), plus the
 * low-rank adapters (LoRA) attached to its modules at run time, and the
 * hypernetworks attached to its attentions.
 *
 * Models never index tensors directly: they ask for a module's weight by name,
 * and run every Linear/Conv through dl_params_linear/dl_params_conv2d, the one
 * place where attached adapters add their term, so LoRA training and
 * un-merged previews need no change in the model code. */
#pragma once

#include "io/dl-checkpoint.h"
#include "nn/dl-tape.h"
#include "ops/dl-op-conv2d.h"

G_BEGIN_DECLS

typedef struct _DlParams DlParams;

DlParams *dl_params_new (DlDevice *device);
void dl_params_free (DlParams *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlParams, dl_params_free)

DlDevice *dl_params_get_device (DlParams *p);

/* The dtype the text embeddings (token and position, which the lookup reads
 * together) are stored in: `wanted`, or f16 where a token table in f32 would be
 * larger than one binding may be on this device (CLIP-L's 49408 x 768 is 145 MiB;
 * lavapipe binds at most 128 MiB). */
DlDType dl_params_embedding_dtype (DlDevice *device, int64_t token_embedding_numel, DlDType wanted);

/* Upload every parameter of `component` from the checkpoint as `dtype` (the
 * text embeddings as dl_params_embedding_dtype says). */
gboolean dl_params_load_checkpoint (DlParams *p, DlCheckpoint *ckpt, DlComponent component, DlDType dtype,
                                    GError **error);
/* Takes a reference. */
void dl_params_insert (DlParams *p, const char *name, DlTensor *t);
/* Drop every parameter whose name starts with `prefix` (frees their device
 * memory once nothing else holds them); returns how many. */
guint dl_params_remove_prefix (DlParams *p, const char *prefix);
/* NULL when absent (no error). */
DlTensor *dl_params_lookup (DlParams *p, const char *name);
DlTensor *dl_params_lookupf (DlParams *p, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
/* NULL with an error naming the parameter when absent. */
DlTensor *dl_params_getf (DlParams *p, GError **error, const char *fmt, ...) G_GNUC_PRINTF (3, 4);
/* Every name, sorted (g_ptr_array_unref). */
GPtrArray *dl_params_names (DlParams *p);
/* The set of module names (a parameter name without its last component), the
 * keys of a GHashTable for dl_lora_file_resolve. */
GHashTable *dl_params_module_names (DlParams *p);

/* ---- added tokens (Textual Inversion) ---- */

/* Vectors for token ids the tokenizer added past the model's vocabulary: row r
 * is id `id_base + r` (id_base = the token table's row count).  `table` [n, C]
 * (f32 or f16; a trained embedding's f32 master) is looked up after the token
 * table and may be trained like a parameter.  NULL removes them.  Takes a
 * reference.
 *
 * Each text encoder has its own table, by component ("text_encoder",
 * "text_encoder_2"): SDXL's embeddings hold one set of vectors per encoder
 * (clip_l and clip_g) under the same ids, its two tokenizers being one
 * vocabulary. */
void dl_params_set_added_tokens_for (DlParams *p, const char *component, DlTensor *table, int64_t id_base);
DlTensor *dl_params_get_added_tokens_for (DlParams *p, const char *component, int64_t *id_base);
/* Those of "text_encoder". */
void dl_params_set_added_tokens (DlParams *p, DlTensor *table, int64_t id_base);
DlTensor *dl_params_get_added_tokens (DlParams *p, int64_t *id_base);
/* Removes the added tokens of every component. */
void dl_params_clear_added_tokens (DlParams *p);

/* ---- adapters ---- */

/* y += scale · up(down(x)) on the module `target` ("unet.down_blocks.0...to_q").
 * Linear: down [r, in], up [out, r].  Conv: down [r, in, kh, kw] (the base
 * module's stride and padding), up [out, r, 1, 1].  Takes references. */
void dl_params_add_adapter (DlParams *p, const char *target, DlTensor *down, DlTensor *up, float scale);
void dl_params_clear_adapters (DlParams *p);
guint dl_params_n_adapters (DlParams *p);

/* The module `name` (its `.weight` and optional `.bias`) applied to x, with its
 * adapters. */
DlTensor *dl_params_linear (DlParams *p, DlTape *tape, DlTensor *x, const char *name, GError **error);
DlTensor *dl_params_conv2d (DlParams *p, DlTape *tape, DlTensor *x, const char *name, int stride, int padding,
                            GError **error);
/* A convolution module with end padding (the VAE encoder's downsamplers, which
 * take no adapters) */
DlTensor *dl_params_conv2d_with (DlParams *p, DlTape *tape, DlTensor *x, const char *name, const DlConv2dParams *params,
                                 GError **error);

/* LayerNorm module `name` (its `.weight` and `.bias`) over the last dimension. */
DlTensor *dl_params_layer_norm (DlParams *p, DlTape *tape, DlTensor *x, const char *name, float eps, GError **error);

/* ---- hypernetworks (A1111) ---- */

typedef struct _DlHypernetwork DlHypernetwork; /* nn/dl-hypernetwork.h */

/* Attach `hn` (a reference is taken) with a strength: every UNet attention
 * applies the attached hypernetworks, in the order attached, to the input of its
 * key and value projections (dl_hypernetwork_apply).  None attached costs
 * nothing. */
void dl_params_add_hypernetwork (DlParams *p, DlHypernetwork *hn, float strength);
void dl_params_clear_hypernetworks (DlParams *p);
guint dl_params_n_hypernetworks (DlParams *p);
DlHypernetwork *dl_params_get_hypernetwork (DlParams *p, guint index, float *strength);

G_END_DECLS
