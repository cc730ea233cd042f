/* dl-text-encoder.c: see dl-text-encoder.h. */
#include "dl-config.h"

#include "nn/dl-text-encoder.h"

#include "dl-error.h"
#include "nn/dl-nn.h"

#define TM "text_encoder.text_model"

static DlTensor *
encoder_layer (DlParams *p, const DlTextEncoderConfig *c, DlTape *tape, DlTensor *h, int i, GError **error)
{
  g_autofree char *pre = g_strdup_printf (TM ".encoder.layers.%d", i);
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

DlTensor *
dl_text_encoder_forward (DlParams *params, const DlTextEncoderConfig *config, DlTape *tape, DlTensor *ids,
                         const DlTextEncoderOptions *options, GError **error)
{
  g_return_val_if_fail (params && config && tape && ids, NULL);
  int clip_skip = options && options->clip_skip > 0 ? options->clip_skip : 1;
  if (clip_skip > config->n_layers)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "clip skip %d is more than the text encoder's %d layers",
                   clip_skip, config->n_layers);
      return NULL;
    }
  DlTensor *tok = dl_params_getf (params, error, TM ".embeddings.token_embedding.weight");
  DlTensor *pos = tok ? dl_params_getf (params, error, TM ".embeddings.position_embedding.weight") : NULL;
  if (!pos)
    return NULL;
  int64_t added_base = 0;
  DlTensor *added = dl_params_get_added_tokens (params, &added_base);
  g_autoptr (DlTensor) h = dl_nn_embedding (tape, ids, tok, pos, added, added_base, error);
  if (!h)
    return NULL;
  if (options && options->hidden_states)
    g_ptr_array_add (options->hidden_states, dl_tensor_ref (h));
  /* layers after the chosen one do not influence the result: skip them */
  int n_run = config->n_layers - (clip_skip - 1);
  if (options && options->hidden_states)
    n_run = config->n_layers;
  g_autoptr (DlTensor) chosen = NULL;
  for (int i = 0; i < n_run; i++)
    {
      DlTensor *next = encoder_layer (params, config, tape, h, i, error);
      if (!next)
        return NULL;
      dl_tensor_unref (h);
      h = next;
      if (options && options->hidden_states)
        g_ptr_array_add (options->hidden_states, dl_tensor_ref (h));
      if (i == config->n_layers - clip_skip)
        chosen = dl_tensor_ref (h);
    }
  return dl_params_layer_norm (params, tape, chosen, TM ".final_layer_norm", (float)config->layer_norm_eps, error);
}
