/* dl-embedding-file.h: Textual Inversion embedding files (AUTOMATIC1111
 * modules/textual_inversion/textual_inversion.py Embedding.save and
 * EmbeddingDatabase.load_from_file, kohya sd-scripts train_textual_inversion.py,
 * diffusers loaders/textual_inversion.py, ComfyUI comfy/sd1_clip.py load_embed;
 * docs/formats.md, “Textual Inversion embedding files”).
 *
 * Written: A1111's .pt (a torch.save dict: string_to_token {"*": 265},
 * string_to_param {"*": f32 [n, dim]}, name, step, sd_checkpoint,
 * sd_checkpoint_name), kohya's single-tensor safetensors {"emb_params": [n, dim]}
 * and diffusers' learned_embeds.safetensors {placeholder: [n, dim]}.
 *
 * Read, by content (a zip is a PyTorch file, anything else safetensors):
 *  - .pt/.bin with string_to_param holding one tensor, as a dict or as the
 *    original TI repo's nn.ParameterDict (through its "_parameters");
 *  - a dict with the encoder's own key (ComfyUI's embed_key: "clip_l" for width
 *    768 or any, "clip_h" for 1024, "clip_g" for 1280), e.g. an SDXL embedding
 *    read for SD1;
 *  - a .pt dict whose first value is a tensor (diffusers learned_embeds.bin,
 *    kohya emb_params saved with torch.save);
 *  - a .safetensors file with exactly one tensor.
 * A 1-D tensor is one vector; [n, dim] is n vectors; F16/BF16/F64 are
 * converted to float.
 *
 * SDXL embeddings hold one set of vectors per text encoder: {"clip_l": [n, 768],
 * "clip_g": [n, 1280]} in a .safetensors file (or a torch.save dict), as kohya
 * sd-scripts sdxl_train_textual_inversion.py writes them and A1111
 * (textual_inversion.py load_from_file) and ComfyUI (sd1_clip.py load_embed,
 * by embed_key) read them; dl_embedding_read_for_model reads both sets. */
#pragma once

#include <glib.h>

#include "io/dl-safetensors.h"

G_BEGIN_DECLS

typedef struct
{
  char *name; /* the file stem: the prompt keyword in A1111 */
  char *key;  /* the key the vectors were under: "*", "emb_params", "<cat-toy>", "clip_l" */
  int n_vectors, dim;
  float *vectors;                           /* [n_vectors * dim] */
  gint64 step;                              /* -1 when absent or None */
  char *stored_name;                        /* the A1111 "name" entry, or NULL */
  char *sd_checkpoint, *sd_checkpoint_name; /* NULL when absent or None */
  /* SDXL (dl_embedding_read_for_model with two widths): text_encoder_2's
   * vectors (clip_g), n_vectors x dim_2, `vectors` being text_encoder's
   * (clip_l); 0 and NULL for one text encoder's embedding */
  int dim_2;
  float *vectors_2;
} DlEmbedding;

/* expected_dim: the text encoder's width (768 SD1, 1024 SD2); 0 takes any.
 * From an SDXL file, the vectors of the encoder of that width (ComfyUI's
 * embed_key: clip_l for 768 or any, clip_g for 1280). */
DlEmbedding *dl_embedding_read (const char *path, int expected_dim, GError **error);
/* For a model's text encoders: one (SD 1.x/2.x: dim_2 = 0) or SDXL's two (dim,
 * dim_2; 0 takes any width).  For two, the file must be an SDXL embedding
 * (clip_l and clip_g, the same number of vectors), read into vectors (clip_l)
 * and vectors_2 (clip_g); for one, it must not be one (A1111 skips an SDXL
 * embedding on SD 1.x).  Errors name the file and the widths. */
DlEmbedding *dl_embedding_read_for_model (const char *path, int dim, int dim_2, GError **error);
/* What the file holds, whatever the model: an SDXL pair (vectors and
 * vectors_2) or one set (for converting a file to another form). */
DlEmbedding *dl_embedding_read_as_stored (const char *path, GError **error);
void dl_embedding_free (DlEmbedding *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DlEmbedding, dl_embedding_free)

/* A1111 .pt; step < 0 and NULL checkpoint strings are written as None.  `name`
 * must be UTF-8 (an error otherwise). */
gboolean dl_embedding_write_a1111 (const char *path, const char *name, const float *vectors, int n, int dim,
                                   gint64 step, const char *sd_checkpoint, const char *sd_checkpoint_name,
                                   GError **error);
/* {"emb_params": [n, dim]} as `dtype` (F32, F16 or BF16), with the caller's
 * metadata (str -> str, may be NULL). */
gboolean dl_embedding_write_emb_params (const char *path, const float *vectors, int n, int dim, GHashTable *metadata,
                                        DlStDType dtype, GError **error);
/* SDXL: {"clip_l": [n, dim_l], "clip_g": [n, dim_g]} as `dtype` (F32, F16 or
 * BF16), with the caller's metadata (may be NULL), as kohya sd-scripts
 * sdxl_train_textual_inversion.py saves it; a path ending in .pt (or .bin)
 * gets the same dict through torch.save (no metadata). */
gboolean dl_embedding_write_sdxl (const char *path, const float *clip_l, int dim_l, const float *clip_g, int dim_g,
                                  int n, GHashTable *metadata, DlStDType dtype, GError **error);
/* {placeholder: [n, dim]} F32 with metadata {"format": "pt"}. */
gboolean dl_embedding_write_diffusers (const char *path, const char *placeholder, const float *vectors, int n, int dim,
                                       GError **error);

G_END_DECLS
