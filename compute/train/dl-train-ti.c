/* dl-train-ti.c: Textual Inversion: n new token vectors for a placeholder
 * word, trained while everything else stays frozen, written in A1111's,
 * kohya's and diffusers' forms.  Tokens as transformers' add_tokens makes them
 * (`<p>`, `<p>_1`, ...: matched as literal strings before BPE; diffusers
 * examples/textual_inversion/textual_inversion.py), initial vectors as A1111's
 * create_embedding (modules/textual_inversion/textual_inversion.py).
 *
 * SDXL (kohya sd-scripts sdxl_train_textual_inversion.py): one set of n
 * vectors per text encoder under the same token ids (the trainer copies its
 * second tokenizer from the first after this method added the tokens), each
 * initialised from its own encoder's token table, both trained; the context
 * and the pooled embedding flow from them.  The file is the SDXL embedding
 * {"clip_l": [n, 768], "clip_g": [n, 1280]} that A1111 and ComfyUI load. */
#include "dl-config.h"

#include "train/dl-trainer-private.h"

#include <string.h>

#include "dl-error.h"
#include "nn/dl-embedding-file.h"
#include "train/dl-train-metadata.h"
#include "io/dl-file-util.h"

typedef struct
{
  char *placeholder;   /* the word of [name] */
  char *name_text;     /* "<p> <p>_1 ..." */
  DlTensor *vectors;   /* [n, C] f32 (SDXL: text_encoder's, clip_l) */
  DlTensor *vectors_2; /* SDXL: text_encoder_2's [n, C2] (clip_g), else NULL */
  int n, dim, dim_2;
} TiRun;

static void
ti_free (gpointer data)
{
  TiRun *r = data;
  g_free (r->placeholder);
  g_free (r->name_text);
  g_clear_pointer (&r->vectors, dl_tensor_unref);
  g_clear_pointer (&r->vectors_2, dl_tensor_unref);
  g_free (r);
}

/* A1111 textual_inversion.py create_embedding: the init text's tokens (no start
 * or end token, at most n), vector i = row floor(i * k / n) of the token table
 * of `component` (dim wide); no token: zeros.  SDXL: each encoder's own rows of
 * the same tokens (kohya sdxl_train_textual_inversion.py initialises both
 * encoders' vectors from the init word). */
static gboolean
init_vectors (DlTrainer *t, TiRun *r, const char *component, int dim, float *v, GError **error)
{
  DlParams *p = dl_sd_model_get_params (t->model);
  memset (v, 0, sizeof (float) * r->n * dim);
  const char *text = t->settings->init_text ? t->settings->init_text : "";
  g_autoptr (GArray) ids = dl_clip_tokenizer_encode (t->tok, text, error);
  if (!ids)
    return FALSE;
  int k = MIN ((int)ids->len - 2, r->n);
  if (k <= 0)
    return TRUE;
  DlTensor *table = dl_params_getf (p, error, "%s.text_model.embeddings.token_embedding.weight", component);
  if (!table)
    return FALSE;
  for (int i = 0; i < r->n; i++)
    {
      gint32 id = g_array_index (ids, gint32, 1 + (i * k) / r->n);
      if (id < 0 || id >= table->shape[0])
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "--init-text “%s”: token %d is not in the model's table", text, id);
          return FALSE;
        }
      int64_t shape = dim;
      g_autoptr (DlTensor) row = dl_tensor_view (table, "init-row", (int64_t)id * dim, 1, &shape, error);
      g_autofree float *rv = row ? dl_tensor_download_f32 (row, error) : NULL;
      if (!rv)
        return FALSE;
      memcpy (v + (gsize)i * dim, rv, sizeof (float) * dim);
    }
  return TRUE;
}

/* The trained vectors [n, dim] f32 of `component`, initialised. */
static DlTensor *
new_vectors (DlTrainer *t, TiRun *r, const char *name, const char *component, int dim, GError **error)
{
  int64_t shape[2] = { r->n, dim };
  g_autoptr (DlTensor) vectors = dl_tensor_new (t->device, name, DL_DTYPE_F32, 2, shape, error);
  if (!vectors)
    return NULL;
  g_autofree float *v = g_new (float, (gsize)r->n *dim);
  if (!init_vectors (t, r, component, dim, v, error) || !dl_tensor_upload_f32 (vectors, v, error))
    return NULL;
  return g_steal_pointer (&vectors);
}

static gboolean
ti_setup (DlTrainer *t, GError **error)
{
  const DlTrainSettings *s = t->settings;
  const DlModelConfig *cfg = dl_sd_model_get_config (t->model);
  DlParams *p = dl_sd_model_get_params (t->model);
  TiRun *r = g_new0 (TiRun, 1);
  t->method_data = r;
  r->placeholder = s->placeholder ? g_strdup (s->placeholder) : dl_file_stem (s->out);
  r->n = s->vectors;
  r->dim = cfg->text_encoder.hidden_size;
  gboolean sdxl = dl_model_config_is_sdxl (cfg);
  int64_t vocab = cfg->text_encoder.vocab_size;
  if (sdxl)
    {
      r->dim_2 = cfg->text_encoder_2.hidden_size;
      if (cfg->text_encoder_2.vocab_size != vocab)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                       "the model's text encoders have %" G_GINT64_FORMAT " and %" G_GINT64_FORMAT
                       " tokens: one new token cannot have the same id in both",
                       vocab, (gint64)cfg->text_encoder_2.vocab_size);
          return FALSE;
        }
      if (s->out_diffusers)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "--out-diffusers writes diffusers' learned_embeds of one text encoder; an SDXL embedding is "
                       "written as --out (clip_l and clip_g)");
          return FALSE;
        }
    }
  if ((int64_t)dl_clip_tokenizer_get_n_tokens (t->tok) != vocab)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_UNSUPPORTED,
                   "the tokenizer has %u tokens, the text encoder %" G_GINT64_FORMAT ": new tokens cannot be added",
                   dl_clip_tokenizer_get_n_tokens (t->tok), vocab);
      return FALSE;
    }
  GString *name_text = g_string_new (NULL);
  for (int i = 0; i < r->n; i++)
    {
      g_autofree char *tok = i ? g_strdup_printf ("%s_%d", r->placeholder, i) : g_strdup (r->placeholder);
      gint32 id = dl_clip_tokenizer_add_token (t->tok, tok, error);
      if (id < 0)
        {
          g_string_free (name_text, TRUE);
          return FALSE;
        }
      if (id != vocab + i)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT,
                       "--placeholder %s: “%s” is already a token of the vocabulary; choose a word it does not know "
                       "(e.g. <%s>)",
                       r->placeholder, tok, r->placeholder);
          g_string_free (name_text, TRUE);
          return FALSE;
        }
      g_string_append_printf (name_text, "%s%s", i ? " " : "", tok);
    }
  r->name_text = g_string_free (name_text, FALSE);
  /* the optimizer's (and the state file's) names: SD1's as before, SDXL's the
   * file's keys */
  const char *name = sdxl ? "clip_l" : "emb_params";
  r->vectors = new_vectors (t, r, name, "text_encoder", r->dim, error);
  if (!r->vectors)
    return FALSE;
  dl_params_set_added_tokens (p, r->vectors, vocab);
  if (sdxl)
    {
      r->vectors_2 = new_vectors (t, r, "clip_g", "text_encoder_2", r->dim_2, error);
      if (!r->vectors_2)
        return FALSE;
      dl_params_set_added_tokens_for (p, "text_encoder_2", r->vectors_2, vocab);
    }
  t->train_text = TRUE;
  DlRecorder *rec = dl_sd_model_get_recorder (t->model);
  return dl_optimizer_add (t->opt, rec, name, r->vectors, 0, error) &&
         (!sdxl || dl_optimizer_add (t->opt, rec, "clip_g", r->vectors_2, 0, error));
}

/* A1111 dataset.py create_text: [name] -> the placeholder tokens, [filewords] ->
 * the caption */
static char *
ti_prompt (DlTrainer *t, guint image, gint64 template_line, const char *caption)
{
  TiRun *r = t->method_data;
  const char *line = t->templates[template_line >= 0 && template_line < t->n_templates ? template_line : 0];
  GString *s = g_string_new (line);
  g_string_replace (s, "[name]", r->name_text, 0);
  g_string_replace (s, "[filewords]", caption ? caption : "", 0);
  return g_string_free (s, FALSE);
}

static char *
ti_trigger (DlTrainer *t)
{
  return g_strdup (((TiRun *)t->method_data)->name_text);
}

static gboolean
ti_export (DlTrainer *t, const char *path, GError **error)
{
  TiRun *r = t->method_data;
  const DlTrainSettings *s = t->settings;
  g_autofree float *v = dl_tensor_download_f32 (r->vectors, error);
  if (!v)
    return FALSE;
  if (r->vectors_2)
    {
      /* kohya sdxl_train_textual_inversion.py save_weights: {clip_l, clip_g}
       * with the run's metadata (a .pt gets the dict through torch.save) */
      g_autofree float *v2 = dl_tensor_download_f32 (r->vectors_2, error);
      if (!v2)
        return FALSE;
      g_autoptr (GHashTable) meta = dl_trainer_metadata (t, "textual-inversion");
      return dl_embedding_write_sdxl (path, v, r->dim, v2, r->dim_2, r->n, meta, s->save_dtype, error);
    }
  if (g_str_has_suffix (path, ".pt"))
    {
      g_autofree char *stem = dl_file_stem (path);
      g_autofree char *model_name = dl_file_stem (s->model);
      g_autofree char *shorthash = t->model_hash ? g_strndup (t->model_hash, 10) : NULL;
      if (!dl_embedding_write_a1111 (path, stem, v, r->n, r->dim, t->step, shorthash, model_name, error))
        return FALSE;
    }
  else
    {
      g_autoptr (GHashTable) meta = dl_trainer_metadata (t, "textual-inversion");
      if (!dl_embedding_write_emb_params (path, v, r->n, r->dim, meta, s->save_dtype, error))
        return FALSE;
    }
  if (s->out_diffusers && g_strcmp0 (path, s->out) == 0 &&
      !dl_embedding_write_diffusers (s->out_diffusers, r->placeholder, v, r->n, r->dim, error))
    return FALSE;
  return TRUE;
}

const DlTrainMethodOps dl_train_method_textual_inversion = {
  .name = "textual-inversion",
  .setup = ti_setup,
  .prompt = ti_prompt,
  .export = ti_export,
  .trigger = ti_trigger,
  .free = ti_free,
};
