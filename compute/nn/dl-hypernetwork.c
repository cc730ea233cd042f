/* dl-hypernetwork.c: see dl-hypernetwork.h.  The module structure, the
 * initialisation and the application follow A1111
 * modules/hypernetworks/hypernetwork.py (HypernetworkModule, Hypernetwork,
 * apply_single_hypernetwork, apply_hypernetworks, attention_CrossAttention_forward). */
#include "dl-config.h"

#include "nn/dl-hypernetwork.h"

#include <math.h>
#include <string.h>

#include "dl-error.h"
#include "dl-philox.h"
#include "nn/dl-nn.h"
#include "ops/dl-op-random.h"
#include "ops/dl-ops.h"

/* torch.nn.LayerNorm's default */
#define LAYER_NORM_EPS 1e-5f

/* ---- activations ---- */

#define ACT_IDENTITY (-1)

/* A1111's activation_dict: its own names, then torch.nn.modules.activation's
 * classes lower-cased; "swish" is torch.nn.Hardswish there, not SiLU */
static const struct
{
  const char *name;
  int act;
} activations[] = {
  { "linear", ACT_IDENTITY }, { "relu", DL_ACT_RELU },       { "leakyrelu", DL_ACT_LEAKY_RELU },
  { "elu", DL_ACT_ELU },      { "swish", DL_ACT_HARDSWISH }, { "hardswish", DL_ACT_HARDSWISH },
  { "tanh", DL_ACT_TANH },    { "sigmoid", DL_ACT_SIGMOID }, { "gelu", DL_ACT_GELU },
  { "silu", DL_ACT_SILU },    { "mish", DL_ACT_MISH },       { "softsign", DL_ACT_SOFTSIGN },
};

/* the rest of torch.nn.modules.activation, which A1111 would take */
static const char *const unsupported_activations[] = {
  "threshold",  "rrelu",      "hardtanh",   "relu6",      "hardsigmoid",        "celu",  "selu",    "glu",
  "hardshrink", "logsigmoid", "softplus",   "softshrink", "multiheadattention", "prelu", "softmin", "softmax",
  "softmax2d",  "logsoftmax", "tanhshrink",
};

static gboolean
activation_lookup (const char *name, int *act)
{
  for (guint i = 0; i < G_N_ELEMENTS (activations); i++)
    if (strcmp (activations[i].name, name) == 0)
      {
        *act = activations[i].act;
        return TRUE;
      }
  return FALSE;
}

gboolean
dl_hypernetwork_activation_supported (const char *name)
{
  int act;
  return name && activation_lookup (name, &act);
}

static char *
supported_list (void)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (activations); i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "", activations[i].name);
  return g_string_free (s, FALSE);
}

static gboolean
check_activation (const char *name, int *act, GError **error)
{
  if (activation_lookup (name, act))
    return TRUE;
  g_autofree char *list = supported_list ();
  gboolean a1111 = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (unsupported_activations); i++)
    a1111 |= strcmp (unsupported_activations[i], name) == 0;
  g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "the hypernetwork activation “%s” %s; supported: %s", name,
               a1111 ? "is not supported by Dreamloom" : "is unknown (A1111 refuses it too)", list);
  return FALSE;
}

/* ---- configuration ---- */

void
dl_hypernetwork_config_init (DlHypernetworkConfig *config)
{
  g_return_if_fail (config != NULL);
  memset (config, 0, sizeof *config);
  config->n_layers = 3;
  config->layer_structure[0] = 1;
  config->layer_structure[1] = 2;
  config->layer_structure[2] = 1;
  config->activation_func = "linear";
  config->weight_initialization = "Normal";
}

/* Width of entry i of layer_structure for size d: Python's int(d * L[i]). */
static int64_t
layer_width (int size, double mult)
{
  double w = (double)size * mult;
  return w >= 1 && w < (double)G_MAXINT32 ? (int64_t)w : 0;
}

static gboolean
check_config (const DlHypernetworkConfig *c, int *act, GError **error)
{
  int n = c->n_layers;
  if (n < 2 || n > DL_HYPERNETWORK_MAX_LAYERS)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "a hypernetwork's layer_structure has 2 to %d entries, not %d", DL_HYPERNETWORK_MAX_LAYERS, n);
      return FALSE;
    }
  if (c->layer_structure[0] != 1 || c->layer_structure[n - 1] != 1)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "a hypernetwork's layer_structure must start and end with 1 (it has %g … %g)", c->layer_structure[0],
                   c->layer_structure[n - 1]);
      return FALSE;
    }
  for (int i = 0; i < n; i++)
    {
      double m = c->layer_structure[i], p = c->dropout_structure[i];
      if (!(m > 0) || !isfinite (m))
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "hypernetwork layer_structure entry %d (%g) is not a positive width multiplier", i, m);
          return FALSE;
        }
      /* A1111: assert 0 < dropout_structure[i+1] < 1 where it is > 0 */
      if (!isfinite (p) || p >= 1)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "hypernetwork dropout_structure entry %d (%g) is not a probability below 1", i, p);
          return FALSE;
        }
    }
  return check_activation (c->activation_func ? c->activation_func : "linear", act, error);
}

/* ---- the object ---- */

typedef enum
{
  LAYER_LINEAR,
  LAYER_ACTIVATION,
  LAYER_NORM,
  LAYER_DROPOUT,
} LayerKind;

typedef struct
{
  LayerKind kind;
  int index;             /* position in the Sequential: the tensors are linear.<index>.* */
  int64_t in, out;       /* Linear: features; LayerNorm: out = its width */
  float p;               /* Dropout */
  DlTensor *w[2], *b[2]; /* key module, value module (Linear, LayerNorm) */
} Layer;

typedef struct
{
  int size;
  GArray *layers; /* Layer */
} SizeModules;

struct _DlHypernetwork
{
  grefcount ref;
  DlDevice *device;
  DlHypernetworkConfig config; /* its strings are the copies below */
  char *activation_func, *weight_initialization, *name, *sd_checkpoint, *sd_checkpoint_name, *optional_info;
  int act;                 /* DlActivation or ACT_IDENTITY */
  GArray *sizes;           /* SizeModules */
  GPtrArray *tensor_names; /* in dl_hypernetwork_get_tensor order */
  GPtrArray *tensors;
  gboolean training;
  guint64 dropout_seed, dropout_step;
};

static void
size_modules_clear (gpointer p)
{
  SizeModules *s = p;
  for (guint i = 0; i < s->layers->len; i++)
    {
      Layer *l = &g_array_index (s->layers, Layer, i);
      for (int kv = 0; kv < 2; kv++)
        {
          g_clear_pointer (&l->w[kv], dl_tensor_unref);
          g_clear_pointer (&l->b[kv], dl_tensor_unref);
        }
    }
  g_array_unref (s->layers);
}

/* The Sequential of HypernetworkModule.__init__ for size d. */
static gboolean
build_layers (DlHypernetwork *hn, SizeModules *s, GError **error)
{
  const DlHypernetworkConfig *c = &hn->config;
  int index = 0, n = c->n_layers;
  for (int i = 0; i < n - 1; i++)
    {
      int64_t in = layer_width (s->size, c->layer_structure[i]);
      int64_t out = layer_width (s->size, c->layer_structure[i + 1]);
      if (!in || !out)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "hypernetwork size %d with layer_structure entry %g gives no usable width", s->size,
                       !in ? c->layer_structure[i] : c->layer_structure[i + 1]);
          return FALSE;
        }
      Layer lin = { .kind = LAYER_LINEAR, .index = index++, .in = in, .out = out };
      g_array_append_val (s->layers, lin);
      if (hn->act != ACT_IDENTITY && (i < n - 2 || c->activate_output))
        {
          Layer a = { .kind = LAYER_ACTIVATION, .index = index++ };
          g_array_append_val (s->layers, a);
        }
      if (c->is_layer_norm)
        {
          Layer ln = { .kind = LAYER_NORM, .index = index++, .in = out, .out = out };
          g_array_append_val (s->layers, ln);
        }
      if (c->dropout_structure[i + 1] > 0)
        {
          Layer d = { .kind = LAYER_DROPOUT, .index = index++, .p = (float)c->dropout_structure[i + 1] };
          g_array_append_val (s->layers, d);
        }
    }
  return TRUE;
}

static DlTensor *
add_tensor (DlHypernetwork *hn, int size, int kv, int index, const char *what, int ndim, const int64_t *shape,
            GError **error)
{
  g_autofree char *name = g_strdup_printf ("%d.%d.linear.%d.%s", size, kv, index, what);
  DlTensor *t = dl_tensor_new (hn->device, name, DL_DTYPE_F32, ndim, shape, error);
  if (!t)
    return NULL;
  g_ptr_array_add (hn->tensor_names, g_steal_pointer (&name));
  g_ptr_array_add (hn->tensors, dl_tensor_ref (t));
  return t;
}

static gboolean
allocate (DlHypernetwork *hn, SizeModules *s, GError **error)
{
  for (int kv = 0; kv < 2; kv++)
    for (guint i = 0; i < s->layers->len; i++)
      {
        Layer *l = &g_array_index (s->layers, Layer, i);
        if (l->kind != LAYER_LINEAR && l->kind != LAYER_NORM)
          continue;
        int64_t wshape[2] = { l->out, l->in };
        int wdim = l->kind == LAYER_LINEAR ? 2 : 1;
        l->w[kv] = add_tensor (hn, s->size, kv, l->index, "weight", wdim, wshape, error);
        l->b[kv] = l->w[kv] ? add_tensor (hn, s->size, kv, l->index, "bias", 1, &l->out, error) : NULL;
        if (!l->b[kv])
          return FALSE;
      }
  return TRUE;
}

static void
set_string (char **slot, const char **config_field, const char *value)
{
  char *copy = g_strdup (value);
  g_free (*slot);
  *slot = copy;
  *config_field = copy;
}

DlHypernetwork *
dl_hypernetwork_new (DlDevice *device, const DlHypernetworkConfig *config, const int *sizes, guint n_sizes,
                     GError **error)
{
  g_return_val_if_fail (device != NULL && config != NULL && (sizes != NULL || n_sizes == 0), NULL);
  int act;
  if (!check_config (config, &act, error))
    return NULL;
  for (guint i = 0; i < n_sizes; i++)
    {
      gboolean dup = FALSE;
      for (guint j = 0; j < i; j++)
        dup |= sizes[j] == sizes[i];
      if (sizes[i] <= 0 || dup)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "hypernetwork size %d is %s", sizes[i],
                       dup ? "given twice" : "not positive");
          return NULL;
        }
    }
  g_autoptr (DlHypernetwork) hn = g_new0 (DlHypernetwork, 1);
  g_ref_count_init (&hn->ref);
  hn->device = device;
  hn->config = *config;
  hn->act = act;
  set_string (&hn->activation_func, &hn->config.activation_func,
              config->activation_func ? config->activation_func : "linear");
  set_string (&hn->weight_initialization, &hn->config.weight_initialization, config->weight_initialization);
  set_string (&hn->name, &hn->config.name, config->name);
  set_string (&hn->sd_checkpoint, &hn->config.sd_checkpoint, config->sd_checkpoint);
  set_string (&hn->sd_checkpoint_name, &hn->config.sd_checkpoint_name, config->sd_checkpoint_name);
  set_string (&hn->optional_info, &hn->config.optional_info, config->optional_info);
  hn->sizes = g_array_new (FALSE, TRUE, sizeof (SizeModules));
  g_array_set_clear_func (hn->sizes, size_modules_clear);
  hn->tensor_names = g_ptr_array_new_with_free_func (g_free);
  hn->tensors = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_tensor_unref);
  for (guint i = 0; i < n_sizes; i++)
    {
      SizeModules s = { sizes[i], g_array_new (FALSE, TRUE, sizeof (Layer)) };
      g_array_append_val (hn->sizes, s);
      SizeModules *sp = &g_array_index (hn->sizes, SizeModules, hn->sizes->len - 1);
      if (!build_layers (hn, sp, error) || !allocate (hn, sp, error))
        return NULL;
    }
  return g_steal_pointer (&hn);
}

DlHypernetwork *
dl_hypernetwork_ref (DlHypernetwork *hn)
{
  g_return_val_if_fail (hn != NULL, NULL);
  g_ref_count_inc (&hn->ref);
  return hn;
}

void
dl_hypernetwork_unref (DlHypernetwork *hn)
{
  if (!hn || !g_ref_count_dec (&hn->ref))
    return;
  if (hn->sizes)
    g_array_unref (hn->sizes);
  if (hn->tensors)
    g_ptr_array_unref (hn->tensors);
  if (hn->tensor_names)
    g_ptr_array_unref (hn->tensor_names);
  g_free (hn->activation_func);
  g_free (hn->weight_initialization);
  g_free (hn->name);
  g_free (hn->sd_checkpoint);
  g_free (hn->sd_checkpoint_name);
  g_free (hn->optional_info);
  g_free (hn);
}

/* ---- initialisation ---- */

typedef enum
{
  INIT_NORMAL,
  INIT_XAVIER_UNIFORM,
  INIT_XAVIER_NORMAL,
  INIT_KAIMING_UNIFORM,
  INIT_KAIMING_NORMAL,
} InitKind;

static gboolean
init_kind (const char *name, InitKind *kind, GError **error)
{
  static const char *const names[] = { "Normal", "XavierUniform", "XavierNormal", "KaimingUniform", "KaimingNormal" };
  for (guint i = 0; name && i < G_N_ELEMENTS (names); i++)
    if (strcmp (names[i], name) == 0)
      {
        *kind = (InitKind)i;
        return TRUE;
      }
  g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
               "unknown hypernetwork weight initialization “%s” (Normal, XavierUniform, XavierNormal, "
               "KaimingUniform, KaimingNormal)",
               name ? name : "None");
  return FALSE;
}

/* Fill a weight [out, in] (or a LayerNorm weight [n]: always Normal) from draw `offset`. */
static void
init_weight (float *w, int64_t out, int64_t in, InitKind kind, gboolean norm, guint64 seed, guint64 offset)
{
  gsize n = (gsize)(norm ? out : out * in);
  /* torch.nn.init: fan_in = in, fan_out = out; calculate_gain("relu") and
   * calculate_gain("leaky_relu", 0) are both √2 */
  double fan_sum = (double)(in + out), gain = G_SQRT2;
  if (norm || kind == INIT_NORMAL)
    {
      dl_philox_fill_normal (w, n, DL_RANDOM_PHILOX, seed, offset, 0, 0.0f, 0.01f);
    }
  else if (kind == INIT_XAVIER_NORMAL || kind == INIT_KAIMING_NORMAL)
    {
      double std = kind == INIT_XAVIER_NORMAL ? sqrt (2.0 / fan_sum) : gain / sqrt ((double)in);
      dl_philox_fill_normal (w, n, DL_RANDOM_PHILOX, seed, offset, 0, 0.0f, (float)std);
    }
  else
    {
      double bound = kind == INIT_XAVIER_UNIFORM ? sqrt (6.0 / fan_sum) : gain * sqrt (3.0 / (double)in);
      for (gsize i = 0; i < n; i++)
        w[i] = (float)(-bound + 2.0 * bound * dl_philox_uniform (seed, offset, i));
    }
}

gboolean
dl_hypernetwork_init_weights (DlHypernetwork *hn, guint64 seed, GError **error)
{
  g_return_val_if_fail (hn != NULL, FALSE);
  InitKind kind;
  if (!init_kind (hn->config.weight_initialization, &kind, error))
    return FALSE;
  /* draw = the tensor's index in dl_hypernetwork_get_tensor order */
  for (guint s = 0; s < hn->sizes->len; s++)
    {
      SizeModules *sm = &g_array_index (hn->sizes, SizeModules, s);
      for (int kv = 0; kv < 2; kv++)
        for (guint i = 0; i < sm->layers->len; i++)
          {
            Layer *l = &g_array_index (sm->layers, Layer, i);
            if (l->kind != LAYER_LINEAR && l->kind != LAYER_NORM)
              continue;
            guint index = 0;
            if (!g_ptr_array_find (hn->tensors, l->w[kv], &index))
              g_return_val_if_reached (FALSE);
            gboolean norm = l->kind == LAYER_NORM;
            g_autofree float *w = g_new (float, norm ? l->out : l->out * l->in);
            g_autofree float *b = g_new0 (float, l->out);
            init_weight (w, l->out, l->in, kind, norm, seed, index);
            if (!dl_tensor_upload_f32 (l->w[kv], w, error) || !dl_tensor_upload_f32 (l->b[kv], b, error))
              return FALSE;
          }
    }
  return TRUE;
}

/* ---- accessors ---- */

const DlHypernetworkConfig *
dl_hypernetwork_get_config (DlHypernetwork *hn)
{
  g_return_val_if_fail (hn != NULL, NULL);
  return &hn->config;
}

void
dl_hypernetwork_set_step (DlHypernetwork *hn, gint64 step)
{
  g_return_if_fail (hn != NULL);
  hn->config.step = step;
}

void
dl_hypernetwork_set_name (DlHypernetwork *hn, const char *name)
{
  g_return_if_fail (hn != NULL);
  set_string (&hn->name, &hn->config.name, name);
}

void
dl_hypernetwork_set_checkpoint (DlHypernetwork *hn, const char *sd_checkpoint, const char *sd_checkpoint_name)
{
  g_return_if_fail (hn != NULL);
  set_string (&hn->sd_checkpoint, &hn->config.sd_checkpoint, sd_checkpoint);
  set_string (&hn->sd_checkpoint_name, &hn->config.sd_checkpoint_name, sd_checkpoint_name);
}

void
dl_hypernetwork_set_optional_info (DlHypernetwork *hn, const char *optional_info)
{
  g_return_if_fail (hn != NULL);
  set_string (&hn->optional_info, &hn->config.optional_info, optional_info);
}

guint
dl_hypernetwork_get_n_sizes (DlHypernetwork *hn)
{
  g_return_val_if_fail (hn != NULL, 0);
  return hn->sizes->len;
}

int
dl_hypernetwork_get_size (DlHypernetwork *hn, guint index)
{
  g_return_val_if_fail (hn != NULL && index < hn->sizes->len, 0);
  return g_array_index (hn->sizes, SizeModules, index).size;
}

static SizeModules *
find_size (DlHypernetwork *hn, int64_t size)
{
  for (guint i = 0; i < hn->sizes->len; i++)
    {
      SizeModules *s = &g_array_index (hn->sizes, SizeModules, i);
      if (s->size == size)
        return s;
    }
  return NULL;
}

gboolean
dl_hypernetwork_has_size (DlHypernetwork *hn, int64_t size)
{
  g_return_val_if_fail (hn != NULL, FALSE);
  return find_size (hn, size) != NULL;
}

guint
dl_hypernetwork_get_n_tensors (DlHypernetwork *hn)
{
  g_return_val_if_fail (hn != NULL, 0);
  return hn->tensors->len;
}

DlTensor *
dl_hypernetwork_get_tensor (DlHypernetwork *hn, guint index, const char **name)
{
  g_return_val_if_fail (hn != NULL && index < hn->tensors->len, NULL);
  if (name)
    *name = hn->tensor_names->pdata[index];
  return hn->tensors->pdata[index];
}

DlTensor *
dl_hypernetwork_find_tensor (DlHypernetwork *hn, const char *name)
{
  g_return_val_if_fail (hn != NULL && name != NULL, NULL);
  for (guint i = 0; i < hn->tensors->len; i++)
    if (strcmp (hn->tensor_names->pdata[i], name) == 0)
      return hn->tensors->pdata[i];
  return NULL;
}

void
dl_hypernetwork_set_training (DlHypernetwork *hn, gboolean training, guint64 seed, guint64 step)
{
  g_return_if_fail (hn != NULL);
  hn->training = training;
  hn->dropout_seed = seed;
  hn->dropout_step = step;
}

/* ---- forward ---- */

typedef struct
{
  DlTensor *x;
  float p;
  guint64 seed, offset;
} DropoutSaved;

static void
dropout_saved_free (gpointer data)
{
  DropoutSaved *s = data;
  dl_tensor_unref (s->x);
  g_free (s);
}

/* the backward of inverted dropout is the same mask and scale on the gradient */
static gboolean
dropout_backward (DlTape *tape, gpointer data, DlTensor *const *dout, GError **error)
{
  DropoutSaved *s = data;
  g_autoptr (DlTensor) dx = dl_tape_tensor_like (tape, "ddropout", dout[0], error);
  return dx && dl_op_dropout (dl_tape_get_recorder (tape), dx, dout[0], s->p, s->seed, s->offset, error) &&
         dl_tape_add_grad (tape, s->x, dx, error);
}

static DlTensor *
dropout (DlTape *tape, DlTensor *x, float p, guint64 seed, guint64 offset, GError **error)
{
  g_autoptr (DlTensor) y = dl_tape_tensor_like (tape, "dropout", x, error);
  if (!y || !dl_op_dropout (dl_tape_get_recorder (tape), y, x, p, seed, offset, error))
    return NULL;
  if (dl_tape_should_record (tape, &x, 1))
    {
      DropoutSaved *s = g_new0 (DropoutSaved, 1);
      s->x = dl_tensor_ref (x);
      s->p = p;
      s->seed = seed;
      s->offset = offset;
      dl_tape_push (tape, &y, 1, dropout_backward, s, dropout_saved_free);
    }
  return g_steal_pointer (&y);
}

guint64
dl_hypernetwork_dropout_offset (guint64 step, const char *site, int kv, int index)
{
  /* FNV-1a */
  guint32 h = 2166136261u;
  for (const char *c = site ? site : ""; *c; c++)
    h = (h ^ (guint8)*c) * 16777619u;
  guint8 tail[3] = { 0xff, (guint8)kv, (guint8)index };
  for (int i = 0; i < 3; i++)
    h = (h ^ tail[i]) * 16777619u;
  return (step << 32) | h;
}

static DlTensor *
module_forward (DlHypernetwork *hn, DlTape *tape, SizeModules *s, int kv, DlTensor *x, float multiplier,
                const char *site, GError **error)
{
  g_autoptr (DlTensor) h = dl_tensor_ref (x);
  for (guint i = 0; i < s->layers->len; i++)
    {
      Layer *l = &g_array_index (s->layers, Layer, i);
      DlTensor *next = NULL;
      switch (l->kind)
        {
        case LAYER_LINEAR:
          next = dl_nn_linear (tape, h, l->w[kv], l->b[kv], error);
          break;
        case LAYER_ACTIVATION:
          next = dl_nn_activation (tape, h, (DlActivation)hn->act, error);
          break;
        case LAYER_NORM:
          next = dl_nn_layer_norm (tape, h, l->w[kv], l->b[kv], LAYER_NORM_EPS, error);
          break;
        case LAYER_DROPOUT:
          /* torch.nn.Dropout is the identity in eval() */
          if (!hn->training)
            continue;
          next = dropout (tape, h, l->p, hn->dropout_seed,
                          dl_hypernetwork_dropout_offset (hn->dropout_step, site, kv, l->index), error);
          break;
        }
      if (!next)
        return NULL;
      dl_tensor_unref (h);
      h = next;
    }
  if (multiplier != 1.0f)
    {
      DlTensor *scaled = dl_nn_scale (tape, h, multiplier, error);
      if (!scaled)
        return NULL;
      dl_tensor_unref (h);
      h = scaled;
    }
  return dl_nn_add (tape, x, h, error);
}

DlTensor *
dl_hypernetwork_module_forward (DlHypernetwork *hn, DlTape *tape, int64_t size, int kv, DlTensor *x, float multiplier,
                                const char *site, GError **error)
{
  g_return_val_if_fail (hn != NULL && tape != NULL && x != NULL && (kv == 0 || kv == 1), NULL);
  SizeModules *s = find_size (hn, size);
  if (!s || x->ndim < 1 || x->shape[x->ndim - 1] != size)
    {
      g_autofree char *xs = dl_tensor_describe (x);
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "hypernetwork: no module of size %" G_GINT64_FORMAT " for %s", size, xs);
      return NULL;
    }
  return module_forward (hn, tape, s, kv, x, multiplier, site, error);
}

gboolean
dl_hypernetwork_apply (DlParams *params, DlTape *tape, const char *site, DlTensor *context, DlTensor **k_in,
                       DlTensor **v_in, GError **error)
{
  g_return_val_if_fail (params != NULL && tape != NULL && context != NULL && k_in != NULL && v_in != NULL, FALSE);
  g_autoptr (DlTensor) k = dl_tensor_ref (context);
  g_autoptr (DlTensor) v = dl_tensor_ref (context);
  int64_t width = context->shape[context->ndim - 1];
  guint n = dl_params_n_hypernetworks (params);
  for (guint i = 0; i < n; i++)
    {
      float strength;
      DlHypernetwork *hn = dl_params_get_hypernetwork (params, i, &strength);
      SizeModules *s = find_size (hn, width);
      if (!s)
        continue;
      /* A1111: x + linear(x) * (multiplier if not training else 1) */
      float m = hn->training ? 1.0f : strength;
      g_autoptr (DlTensor) nk = module_forward (hn, tape, s, 0, k, m, site, error);
      g_autoptr (DlTensor) nv = nk ? module_forward (hn, tape, s, 1, v, m, site, error) : NULL;
      if (!nv)
        return FALSE;
      dl_tensor_unref (k);
      dl_tensor_unref (v);
      k = g_steal_pointer (&nk);
      v = g_steal_pointer (&nv);
    }
  *k_in = g_steal_pointer (&k);
  *v_in = g_steal_pointer (&v);
  return TRUE;
}

GArray *
dl_hypernetwork_unused_sizes (DlHypernetwork *hn, const DlUNetConfig *config)
{
  g_return_val_if_fail (hn != NULL && config != NULL, NULL);
  GArray *unused = g_array_new (FALSE, FALSE, sizeof (int));
  for (guint i = 0; i < hn->sizes->len; i++)
    {
      int size = g_array_index (hn->sizes, SizeModules, i).size;
      /* cross-attention sees the text context; self-attention the hidden states,
     * as wide as the level's channels (the mid block: the last level's) */
      gboolean used = size == config->cross_attention_dim ||
                      (config->n_levels > 0 && size == config->block_out_channels[config->n_levels - 1]);
      for (int l = 0; l < config->n_levels && l < DL_MODEL_MAX_LEVELS; l++)
        used |= config->level_has_attention[l] && size == config->block_out_channels[l];
      if (!used)
        g_array_append_val (unused, size);
    }
  return unused;
}
