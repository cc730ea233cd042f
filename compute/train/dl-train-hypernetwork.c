/* dl-train-hypernetwork.c: AUTOMATIC1111 hypernetworks (modules/hypernetworks/
 * hypernetwork.py: train_hypernetwork): module pairs for each enabled context
 * width, applied to k and v of every attention (multiplier 1 while training),
 * everything else frozen; prompts from templates with [name] = the
 * hypernetwork's name (A1111 lists them by file stem) and [filewords]; written
 * as A1111's .pt. */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <string.h>

#include "dl-error.h"
#include "nn/dl-hypernetwork.h"
#include "io/dl-file-util.h"

typedef struct
{
  DlHypernetwork *hn;
  char *name;
} HnRun;

static void
hn_free (gpointer data)
{
  HnRun *r = data;
  g_clear_pointer (&r->hn, dl_hypernetwork_unref);
  g_free (r->name);
  g_free (r);
}

/* "1,2,1" -> numbers; FALSE (with the option named) for anything else */
static gboolean
parse_list (const char *option, const char *text, double *out, int max, int *n, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (text ? text : "", ",", -1);
  *n = 0;
  for (char **p = parts; *p; p++)
    {
      g_strstrip (*p);
      char *end = NULL;
      double v = g_ascii_strtod (*p, &end);
      if (!**p || *end || *n >= max || v < 0)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "--%s %s: a comma-separated list of numbers is needed", option, text ? text : "");
          return FALSE;
        }
      out[(*n)++] = v;
    }
  return TRUE;
}

static DlHypernetwork *
new_hypernetwork (DlTrainer *t, GError **error)
{
  const DlTrainSettings *s = t->settings;
  DlHypernetworkConfig c;
  dl_hypernetwork_config_init (&c);
  int n_layers = 0, n_drop = 0, n_sizes = 0;
  double sizes_d[32], drop[DL_HYPERNETWORK_MAX_LAYERS];
  if (!parse_list ("hn-layers", s->hn_layers, c.layer_structure, DL_HYPERNETWORK_MAX_LAYERS, &n_layers, error) ||
      !parse_list ("hn-dropout", s->hn_dropout, drop, DL_HYPERNETWORK_MAX_LAYERS, &n_drop, error) ||
      !parse_list ("hn-sizes", s->hn_sizes, sizes_d, 32, &n_sizes, error))
    return NULL;
  if (n_layers < 2 || c.layer_structure[0] != 1 || c.layer_structure[n_layers - 1] != 1)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                   "--hn-layers %s: the layer structure must start and end with 1 (A1111)", s->hn_layers);
      return NULL;
    }
  if (n_drop != n_layers)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "--hn-dropout %s: %d numbers, one per layer (%d)",
                   s->hn_dropout, n_drop, n_layers);
      return NULL;
    }
  if (!dl_hypernetwork_activation_supported (s->hn_activation))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED, "--hn-activation %s: not one this engine runs",
                   s->hn_activation);
      return NULL;
    }
  c.n_layers = n_layers;
  gboolean any_drop = FALSE;
  for (int i = 0; i < n_layers; i++)
    {
      c.dropout_structure[i] = drop[i];
      any_drop |= drop[i] > 0;
    }
  c.use_dropout = any_drop;
  c.activation_func = s->hn_activation;
  c.is_layer_norm = s->hn_layer_norm;
  c.weight_initialization = s->hn_init;
  int sizes[32];
  for (int i = 0; i < n_sizes; i++)
    sizes[i] = (int)sizes_d[i];
  g_autoptr (DlHypernetwork) hn = dl_hypernetwork_new (t->device, &c, sizes, n_sizes, error);
  if (!hn || !dl_hypernetwork_init_weights (hn, (guint64)s->seed, error))
    return NULL;
  return g_steal_pointer (&hn);
}

static gboolean
hn_setup (DlTrainer *t, GError **error)
{
  const DlTrainSettings *s = t->settings;
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  DlRecorder *rec = dl_sd_model_get_recorder (t->model);
  HnRun *r = g_new0 (HnRun, 1);
  t->method_data = r;
  /* [name]: the file stem A1111 lists it by: of --init-from, else of --out */
  r->name = dl_file_stem (s->init_from ? s->init_from : s->out);
  r->hn = s->init_from ? dl_hypernetwork_read (t->device, s->init_from, error) : new_hypernetwork (t, error);
  if (!r->hn)
    {
      if (s->init_from)
        g_prefix_error (error, "--init-from: ");
      return FALSE;
    }
  g_autoptr (GArray) unused = dl_hypernetwork_unused_sizes (r->hn, &cfg->unet);
  for (guint i = 0; i < unused->len; i++)
    dl_trainer_warn (t, "the hypernetwork's size %d matches no attention of this model: its modules never apply",
                     g_array_index (unused, int, i));
  if (unused->len == dl_hypernetwork_get_n_sizes (r->hn))
    {
      g_set_error_literal (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                           "none of the hypernetwork's sizes matches an attention of this model");
      return FALSE;
    }
  dl_hypernetwork_set_name (r->hn, r->name);
  dl_params_add_hypernetwork (dl_sd_model_get_params (t->model), r->hn, 1.0f);
  for (guint i = 0; i < dl_hypernetwork_get_n_tensors (r->hn); i++)
    {
      const char *name = NULL;
      DlTensor *tensor = dl_hypernetwork_get_tensor (r->hn, i, &name);
      if (!dl_optimizer_add (t->opt, rec, name, tensor, 0, error))
        return FALSE;
    }
  return TRUE;
}

static char *
hn_prompt (DlTrainer *t, guint image, gint64 template_line, const char *caption)
{
  HnRun *r = t->method_data;
  const char *line = t->templates[template_line >= 0 && template_line < t->n_templates ? template_line : 0];
  GString *s = g_string_new (line);
  g_string_replace (s, "[name]", r->name, 0);
  g_string_replace (s, "[filewords]", caption ? caption : "", 0);
  return g_string_free (s, FALSE);
}

static char *
hn_trigger (DlTrainer *t)
{
  return NULL;
}

/* A1111 trains with the modules in train() mode (dropout on) and samples in eval() */
static void
hn_begin_forward (DlTrainer *t, gboolean train)
{
  HnRun *r = t->method_data;
  dl_hypernetwork_set_training (r->hn, train, (guint64)t->settings->seed, (guint64)t->step);
}

static gboolean
hn_export (DlTrainer *t, const char *path, GError **error)
{
  HnRun *r = t->method_data;
  g_autofree char *model_name = dl_file_stem (t->settings->model);
  g_autofree char *shorthash = t->hashes.sha256 ? g_strndup (t->hashes.sha256, 10) : NULL;
  /* A1111's save_hypernetwork names the file's contents after the file ("x.pt",
   * "x-500.pt"), whatever the name trained with */
  g_autofree char *name = dl_file_stem (path);
  dl_hypernetwork_set_step (r->hn, t->step);
  dl_hypernetwork_set_name (r->hn, name);
  dl_hypernetwork_set_checkpoint (r->hn, shorthash, model_name);
  return dl_hypernetwork_write (r->hn, path, error);
}

const DlTrainMethodOps dl_train_method_hypernetwork = {
  .name = "hypernetwork",
  .setup = hn_setup,
  .prompt = hn_prompt,
  .export = hn_export,
  .trigger = hn_trigger,
  .begin_forward = hn_begin_forward,
  .free = hn_free,
};
