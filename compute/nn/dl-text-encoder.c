/* dl-text-encoder.c: see dl-text-encoder.h. */
#include "dl-config.h"

#include "nn/dl-text-encoder.h"

#include <string.h>

#include "dl-error.h"
#include "nn/dl-nn.h"

static DlTensor *
encoder_layer (DlParams *p, const DlTextEncoderConfig *c, const char *tm, DlTape *tape, DlTensor *h, int i,
               GError **error)
{
  g_autofree char *pre = g_strdup_printf ("%s.encoder.layers.%d", tm, i);
  g_autofree char *ln1 = g_strconcat (pre, ".layer_norm1", NULL);
  g_autofree char *ln2 = g_strconcat (pre, ".layer_norm2", NULL);
  g_autofree char *qn = g_strconcat (pre, ".self_attn.q_proj", NULL);
  g_autofree char *kn = g_strconcat (pre, ".self_attn.k_proj", NULL);
  g_autofree char *vn = g_strconcat (pre, ".self_attn.v_proj", NULL);
  g_autofree char *on = g_strconcat (pre, ".self_attn.out_proj", NULL);
  g_autofree char *fc1 = g_strconcat (pre, ".mlp.fc1", NULL);
  g_autofree char *fc2 = g_strconcat (pre, ".mlp.fc2", NULL);
  float eps = (float)c->layer_norm_eps;

  g_autoptr (DlTensor) n1 = dl_params_layer_norm (p, tape, h, ln1, eps, error);
  g_autoptr (DlTensor) q = n1 ? dl_params_linear (p, tape, n1, qn, error) : NULL;
  g_autoptr (DlTensor) k = q ? dl_params_linear (p, tape, n1, kn, error) : NULL;
  g_autoptr (DlTensor) v = k ? dl_params_linear (p, tape, n1, vn, error) : NULL;
  g_autoptr (DlTensor) a = v ? dl_nn_attention (tape, q, k, v, c->n_heads, TRUE, error) : NULL;
  g_autoptr (DlTensor) o = a ? dl_params_linear (p, tape, a, on, error) : NULL;
  g_autoptr (DlTensor) h1 = o ? dl_nn_add (tape, h, o, error) : NULL;
  g_autoptr (DlTensor) n2 = h1 ? dl_params_layer_norm (p, tape, h1, ln2, eps, error) : NULL;
  g_autoptr (DlTensor) f1 = n2 ? dl_params_linear (p, tape, n2, fc1, error) : NULL;
  DlActivation act = c->hidden_act == DL_HIDDEN_ACT_GELU ? DL_ACT_GELU : DL_ACT_QUICK_GELU;
  g_autoptr (DlTensor) g = f1 ? dl_nn_activation (tape, f1, act, error) : NULL;
  g_autoptr (DlTensor) f2 = g ? dl_params_linear (p, tape, g, fc2, error) : NULL;
  return f2 ? dl_nn_add (tape, h1, f2, error) : NULL;
}

/* The pooled output: rows[b] = last[b, argmax(ids[b])] (the first position of
 * the highest id), as an embedding lookup into `last` seen as a table of B*T
 * rows, so that the gradient reaches it; then text_projection.  Ids from
 * `added_base` on (Textual Inversion's added tokens, when there are some) are
 * passed over: the end token is the vocabulary's highest id, and an added
 * token's higher id must not take its place (kohya sd-scripts
 * sdxl_train_textual_inversion.py pools at the end token for this reason, its
 * pool_workaround; A1111 and ComfyUI sd1_clip.py pool there too). */
static DlTensor *
pooled_output (DlParams *p, const DlTextEncoderConfig *c, const char *component, DlTape *tape, DlTensor *last,
               const gint32 *host_ids, int64_t added_base, GError **error)
{
  int64_t B = last->shape[0], T = last->shape[1], D = last->shape[2];
  g_autofree gint32 *rows = g_new (gint32, B);
  for (int64_t b = 0; b < B; b++)
    {
      int64_t best = -1;
      for (int64_t t = 0; t < T; t++)
        {
          gint32 id = host_ids[b * T + t];
          if ((added_base <= 0 || id < added_base) && (best < 0 || id > host_ids[b * T + best]))
            best = t;
        }
      rows[b] = (gint32)(b * T + MAX (best, 0));
    }
  g_autoptr (DlTensor) index = dl_tensor_new_2d (last->device, "pooled_rows", DL_DTYPE_I32, 1, B, error);
  if (!index || !dl_tensor_upload (index, rows, DL_DTYPE_I32, error))
    return NULL;
  int64_t table_shape[2] = { B * T, D }, out_shape[2] = { B, D };
  g_autoptr (DlTensor) table = dl_nn_reshape (tape, last, 2, table_shape, error);
  g_autoptr (DlTensor) picked = table ? dl_nn_embedding (tape, index, table, NULL, NULL, 0, error) : NULL;
  g_autoptr (DlTensor) pooled = picked ? dl_nn_reshape (tape, picked, 2, out_shape, error) : NULL;
  if (!pooled || c->projection_dim <= 0)
    return g_steal_pointer (&pooled);
  g_autofree char *proj = g_strdup_printf ("%s.text_projection", component);
  return dl_params_linear (p, tape, pooled, proj, error);
}

DlTensor *
dl_text_encoder_forward (DlParams *params, const DlTextEncoderConfig *config, DlTape *tape, DlTensor *ids,
                         const DlTextEncoderOptions *options, GError **error)
{
  g_return_val_if_fail (params && config && tape && ids, NULL);
  const DlTextEncoderOptions none = { 0 };
  const DlTextEncoderOptions *o = options ? options : &none;
  const char *component = o->component ? o->component : "text_encoder";
  g_autofree char *tm = g_strconcat (component, ".text_model", NULL);
  int clip_skip = o->clip_skip > 0 ? o->clip_skip : 1;
  if (clip_skip > config->n_layers)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "clip skip %d is more than the text encoder's %d layers",
                   clip_skip, config->n_layers);
      return NULL;
    }
  g_return_val_if_fail (!o->pooled || o->host_ids, NULL);
  DlTensor *tok = dl_params_getf (params, error, "%s.embeddings.token_embedding.weight", tm);
  DlTensor *pos = tok ? dl_params_getf (params, error, "%s.embeddings.position_embedding.weight", tm) : NULL;
  if (!pos)
    return NULL;
  int64_t added_base = 0;
  DlTensor *added = dl_params_get_added_tokens_for (params, component, &added_base);
  g_autoptr (DlTensor) h = dl_nn_embedding (tape, ids, tok, pos, added, added_base, error);
  if (!h)
    return NULL;
  if (o->hidden_states)
    g_ptr_array_add (o->hidden_states, dl_tensor_ref (h));
  /* layers after the chosen one do not influence the result: skip them */
  int n_run = config->n_layers - (clip_skip - 1);
  if (o->hidden_states || o->pooled)
    n_run = config->n_layers;
  g_autoptr (DlTensor) chosen = NULL;
  for (int i = 0; i < n_run; i++)
    {
      DlTensor *next = encoder_layer (params, config, tm, tape, h, i, error);
      if (!next)
        return NULL;
      dl_tensor_unref (h);
      h = next;
      if (o->hidden_states)
        g_ptr_array_add (o->hidden_states, dl_tensor_ref (h));
      if (i == config->n_layers - clip_skip)
        chosen = dl_tensor_ref (h);
    }
  g_autofree char *final_norm = g_strconcat (tm, ".final_layer_norm", NULL);
  float eps = (float)config->layer_norm_eps;
  if (o->pooled)
    {
      g_autoptr (DlTensor) last = dl_params_layer_norm (params, tape, h, final_norm, eps, error);
      *o->pooled =
        last ? pooled_output (params, config, component, tape, last, o->host_ids, added ? added_base : 0, error) : NULL;
      if (!*o->pooled)
        return NULL;
    }
  if (o->skip_final_norm)
    return g_steal_pointer (&chosen);
  return dl_params_layer_norm (params, tape, chosen, final_norm, eps, error);
}
