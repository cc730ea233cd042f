/* dl-sd-blocks.c: see dl-sd-blocks.h. */
#include "dl-config.h"

#include "nn/dl-sd-blocks.h"

#include "dl-error.h"
#include "nn/dl-hypernetwork.h"
#include "nn/dl-nn.h"

typedef struct
{
  DlParams *p;
  char *prefix;
  int groups;
  float eps;
  int n_heads;
  int depth;
  gboolean linear_projection;
} BlockData;

static void
block_data_free (gpointer data)
{
  BlockData *d = data;
  g_free (d->prefix);
  g_free (d);
}

static DlTensor *
run_block (DlTape *tape, gboolean checkpoint, DlTapeBlockFunc fn, BlockData *d, DlTensor *a, DlTensor *b,
           GError **error)
{
  DlTensor *in[2] = { a, b };
  DlTensor *out = NULL;
  gboolean ok;
  if (checkpoint)
    {
      ok = dl_tape_checkpoint (tape, fn, d, block_data_free, in, 2, &out, 1, error);
    }
  else
    {
      ok = fn (tape, d, in, &out, error);
      block_data_free (d);
    }
  return ok ? out : NULL;
}

DlTensor *
dl_sd_group_norm (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, int groups, float eps, gboolean silu,
                  GError **error)
{
  DlTensor *g = dl_params_getf (p, error, "%s.weight", prefix);
  DlTensor *b = g ? dl_params_getf (p, error, "%s.bias", prefix) : NULL;
  return b ? dl_nn_group_norm (tape, x, g, b, groups, eps, silu, error) : NULL;
}

/* BasicTransformerBlock's LayerNorms: torch's default eps */
static DlTensor *
layer_norm (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, GError **error)
{
  return dl_params_layer_norm (p, tape, x, prefix, 1e-5f, error);
}

/* ---- ResNet ---- */

static gboolean
resnet_block (DlTape *tape, gpointer data, DlTensor *const *in, DlTensor **out, GError **error)
{
  BlockData *d = data;
  DlParams *p = d->p;
  DlTensor *x = in[0], *temb_act = in[1];
  g_autofree char *n1 = g_strconcat (d->prefix, ".norm1", NULL);
  g_autofree char *c1 = g_strconcat (d->prefix, ".conv1", NULL);
  g_autofree char *tp = g_strconcat (d->prefix, ".time_emb_proj", NULL);
  g_autofree char *n2 = g_strconcat (d->prefix, ".norm2", NULL);
  g_autofree char *c2 = g_strconcat (d->prefix, ".conv2", NULL);
  g_autofree char *sc = g_strconcat (d->prefix, ".conv_shortcut", NULL);

  /* each tensor is let go as soon as the next is made (the tape keeps what
   * the backward needs): the input and at most two more are alive (three with
   * a shortcut conv), half the
   * memory of an inference pass or a VAE encode that kept them all
   * (dl_vae_decode_activation_bytes counts the same) */
  g_autoptr (DlTensor) h0 = dl_sd_group_norm (p, tape, n1, x, d->groups, d->eps, TRUE, error);
  g_autoptr (DlTensor) h1 = h0 ? dl_params_conv2d (p, tape, h0, c1, 1, 1, error) : NULL;
  if (!h1)
    return FALSE;
  g_clear_pointer (&h0, dl_tensor_unref);
  if (temb_act)
    {
      g_autoptr (DlTensor) t = dl_params_linear (p, tape, temb_act, tp, error);
      g_autoptr (DlTensor) sum = t ? dl_nn_add_channel (tape, h1, t, error) : NULL;
      if (!sum)
        return FALSE;
      dl_tensor_unref (h1);
      h1 = g_steal_pointer (&sum);
    }
  g_autoptr (DlTensor) h2 = dl_sd_group_norm (p, tape, n2, h1, d->groups, d->eps, TRUE, error);
  g_clear_pointer (&h1, dl_tensor_unref);
  g_autoptr (DlTensor) h3 = h2 ? dl_params_conv2d (p, tape, h2, c2, 1, 1, error) : NULL;
  if (!h3)
    return FALSE;
  g_clear_pointer (&h2, dl_tensor_unref);
  g_autoptr (DlTensor) shortcut = NULL;
  g_autofree char *scw = g_strconcat (sc, ".weight", NULL);
  if (dl_params_lookup (p, scw))
    shortcut = dl_params_conv2d (p, tape, x, sc, 1, 0, error);
  else
    shortcut = dl_tensor_ref (x);
  *out = shortcut ? dl_nn_add (tape, shortcut, h3, error) : NULL;
  return *out != NULL;
}

DlTensor *
dl_sd_resnet (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, DlTensor *temb_act, int groups, float eps,
              gboolean checkpoint, GError **error)
{
  BlockData *d = g_new0 (BlockData, 1);
  d->p = p;
  d->prefix = g_strdup (prefix);
  d->groups = groups;
  d->eps = eps;
  return run_block (tape, checkpoint, resnet_block, d, x, temb_act, error);
}

/* ---- spatial transformer ---- */

/* Attention `prefix`; `hypernetworks`: the attached hypernetworks apply to the
 * input of to_k and to_v (the UNet's attentions, A1111's CrossAttention; not the
 * VAE's). */
static DlTensor *
attention (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, DlTensor *context, int n_heads,
           gboolean hypernetworks, GError **error)
{
  g_autofree char *qn = g_strconcat (prefix, ".to_q", NULL);
  g_autofree char *kn = g_strconcat (prefix, ".to_k", NULL);
  g_autofree char *vn = g_strconcat (prefix, ".to_v", NULL);
  g_autofree char *on = g_strconcat (prefix, ".to_out.0", NULL);
  DlTensor *kv_in = context ? context : x;
  g_autoptr (DlTensor) k_in = NULL, v_in = NULL;
  if (hypernetworks && dl_params_n_hypernetworks (p) &&
      !dl_hypernetwork_apply (p, tape, prefix, kv_in, &k_in, &v_in, error))
    return NULL;
  g_autoptr (DlTensor) q = dl_params_linear (p, tape, x, qn, error);
  g_autoptr (DlTensor) k = q ? dl_params_linear (p, tape, k_in ? k_in : kv_in, kn, error) : NULL;
  g_autoptr (DlTensor) v = k ? dl_params_linear (p, tape, v_in ? v_in : kv_in, vn, error) : NULL;
  g_autoptr (DlTensor) a = v ? dl_nn_attention (tape, q, k, v, n_heads, FALSE, error) : NULL;
  /* q, k and v go before the output projection (the tape keeps its own) */
  g_clear_pointer (&q, dl_tensor_unref);
  g_clear_pointer (&k, dl_tensor_unref);
  g_clear_pointer (&v, dl_tensor_unref);
  return a ? dl_params_linear (p, tape, a, on, error) : NULL;
}

static DlTensor *
basic_transformer_block (DlParams *p, DlTape *tape, const char *prefix, DlTensor *t, DlTensor *context, int n_heads,
                         GError **error)
{
  g_autofree char *ln1 = g_strconcat (prefix, ".norm1", NULL);
  g_autofree char *ln2 = g_strconcat (prefix, ".norm2", NULL);
  g_autofree char *ln3 = g_strconcat (prefix, ".norm3", NULL);
  g_autofree char *a1 = g_strconcat (prefix, ".attn1", NULL);
  g_autofree char *a2 = g_strconcat (prefix, ".attn2", NULL);
  g_autofree char *ff0 = g_strconcat (prefix, ".ff.net.0.proj", NULL);
  g_autofree char *ff2 = g_strconcat (prefix, ".ff.net.2", NULL);

  g_autoptr (DlTensor) n1 = layer_norm (p, tape, ln1, t, error);
  g_autoptr (DlTensor) s1 = n1 ? attention (p, tape, a1, n1, NULL, n_heads, TRUE, error) : NULL;
  g_autoptr (DlTensor) t1 = s1 ? dl_nn_add (tape, t, s1, error) : NULL;
  g_autoptr (DlTensor) n2 = t1 ? layer_norm (p, tape, ln2, t1, error) : NULL;
  g_autoptr (DlTensor) s2 = n2 ? attention (p, tape, a2, n2, context, n_heads, TRUE, error) : NULL;
  g_autoptr (DlTensor) t2 = s2 ? dl_nn_add (tape, t1, s2, error) : NULL;
  g_autoptr (DlTensor) n3 = t2 ? layer_norm (p, tape, ln3, t2, error) : NULL;
  g_autoptr (DlTensor) f0 = n3 ? dl_params_linear (p, tape, n3, ff0, error) : NULL;
  g_autoptr (DlTensor) g = f0 ? dl_nn_geglu (tape, f0, error) : NULL;
  g_autoptr (DlTensor) f2 = g ? dl_params_linear (p, tape, g, ff2, error) : NULL;
  return f2 ? dl_nn_add (tape, t2, f2, error) : NULL;
}

static gboolean
transformer_block (DlTape *tape, gpointer data, DlTensor *const *in, DlTensor **out, GError **error)
{
  BlockData *d = data;
  DlParams *p = d->p;
  DlTensor *x = in[0], *context = in[1];
  int64_t H = x->shape[2], W = x->shape[3];
  g_autofree char *nn = g_strconcat (d->prefix, ".norm", NULL);
  g_autofree char *pi = g_strconcat (d->prefix, ".proj_in", NULL);
  g_autofree char *po = g_strconcat (d->prefix, ".proj_out", NULL);

  g_autoptr (DlTensor) h = dl_sd_group_norm (p, tape, nn, x, d->groups, 1e-6f, FALSE, error);
  if (!h)
    return FALSE;
  g_autoptr (DlTensor) t = NULL;
  if (d->linear_projection)
    {
      g_autoptr (DlTensor) tok = dl_nn_nchw_to_tokens (tape, h, error);
      t = tok ? dl_params_linear (p, tape, tok, pi, error) : NULL;
    }
  else
    {
      g_autoptr (DlTensor) c = dl_params_conv2d (p, tape, h, pi, 1, 0, error);
      t = c ? dl_nn_nchw_to_tokens (tape, c, error) : NULL;
    }
  if (!t)
    return FALSE;
  for (int i = 0; i < d->depth; i++)
    {
      g_autofree char *bp = g_strdup_printf ("%s.transformer_blocks.%d", d->prefix, i);
      DlTensor *next = basic_transformer_block (p, tape, bp, t, context, d->n_heads, error);
      if (!next)
        return FALSE;
      dl_tensor_unref (t);
      t = next;
    }
  g_autoptr (DlTensor) o = NULL;
  if (d->linear_projection)
    {
      g_autoptr (DlTensor) l = dl_params_linear (p, tape, t, po, error);
      o = l ? dl_nn_tokens_to_nchw (tape, l, H, W, error) : NULL;
    }
  else
    {
      g_autoptr (DlTensor) s = dl_nn_tokens_to_nchw (tape, t, H, W, error);
      o = s ? dl_params_conv2d (p, tape, s, po, 1, 0, error) : NULL;
    }
  *out = o ? dl_nn_add (tape, o, x, error) : NULL;
  return *out != NULL;
}

DlTensor *
dl_sd_transformer (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, DlTensor *context, int n_heads,
                   int groups, int depth, gboolean linear_projection, gboolean checkpoint, GError **error)
{
  BlockData *d = g_new0 (BlockData, 1);
  d->p = p;
  d->prefix = g_strdup (prefix);
  d->groups = groups;
  d->n_heads = n_heads;
  d->depth = depth;
  d->linear_projection = linear_projection;
  return run_block (tape, checkpoint, transformer_block, d, x, context, error);
}

/* ---- VAE attention ---- */

DlTensor *
dl_sd_vae_attention (DlParams *p, DlTape *tape, const char *prefix, DlTensor *x, int groups, float eps, GError **error)
{
  int64_t H = x->shape[2], W = x->shape[3];
  g_autofree char *gn = g_strconcat (prefix, ".group_norm", NULL);
  g_autoptr (DlTensor) h = dl_sd_group_norm (p, tape, gn, x, groups, eps, FALSE, error);
  g_autoptr (DlTensor) t = h ? dl_nn_nchw_to_tokens (tape, h, error) : NULL;
  g_clear_pointer (&h, dl_tensor_unref);
  /* at most x, t, q, k, v and the attention's output are alive (C wide each),
   * and the scores of a head too wide for the flash kernels
   * (dl_vae_decode_activation_bytes counts them) */
  g_autoptr (DlTensor) a = t ? attention (p, tape, prefix, t, NULL, 1, FALSE, error) : NULL;
  g_clear_pointer (&t, dl_tensor_unref);
  g_autoptr (DlTensor) o = a ? dl_nn_tokens_to_nchw (tape, a, H, W, error) : NULL;
  return o ? dl_nn_add (tape, o, x, error) : NULL;
}
