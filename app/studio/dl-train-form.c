/* dl-train-form.c: see dl-train-form.h. */
#include "dl-config.h"

#include "dl-train-form.h"

#include <glib/gi18n.h>

#include "dl-row-text.h"

struct _DlTrainForm
{
  GtkWidget parent_instance;
  GtkWidget *box;
  GtkCheckButton *method_checks[DL_TRAIN_N_METHODS];
  GtkWidget *options_box; /* the method's groups, rebuilt when it changes */
  GHashTable *rows;       /* option name -> row (borrowed) */
  GHashTable *invalid;    /* option names whose entry does not hold a valid value */
  DlTrainSettings *settings;
  gboolean syncing;
  gboolean sdxl; /* the base model is SDXL */
};

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (DlTrainForm, dl_train_form, GTK_TYPE_WIDGET)

/* what the project or the page decides, not the form (the previews' sampler, seed and guidance are the
 * Previews page's) */
static const char *const hidden[] = {
  "method",       "model",          "config",      "images",     "out",         "out-diffusers",
  "run-dir",      "replay",         "vocab",       "resolution", "placeholder", "instance-prompt",
  "sample-first", "sample-sampler", "sample-seed", "sample-cfg", NULL
};

/* each method's own settings, shown first; the rest go under Advanced */
static const char *const *
key_options (DlTrainMethod m)
{
  static const char *const lora[] = { "rank", "alpha", "steps", "lr", "text-encoder-lr", NULL };
  static const char *const ti[] = { "init-text", "vectors", "template", "steps", "lr", NULL };
  static const char *const db[] = {
    "class-prompt", "num-class-images", "prior-weight", "train-text-encoder", "steps", "lr", NULL
  };
  static const char *const hn[] = { "hn-sizes", "hn-layers", "hn-activation", "steps", "lr", NULL };
  switch (m)
    {
    case DL_TRAIN_LORA:
      return lora;
    case DL_TRAIN_TEXTUAL_INVERSION:
      return ti;
    case DL_TRAIN_DREAMBOOTH:
      return db;
    default:
      return hn;
    }
}

static const struct
{
  const char *name, *title;
} titles[] = {
  { "rank", N_ ("Rank") },
  { "alpha", N_ ("Alpha") },
  { "steps", N_ ("Steps") },
  { "lr", N_ ("Learning Rate") },
  { "text-encoder-lr", N_ ("Text Encoder Learning Rate") },
  { "init-text", N_ ("Initial Words") },
  { "vectors", N_ ("Vectors per Token") },
  { "template", N_ ("Prompt Templates") },
  { "class-prompt", N_ ("Class Prompt") },
  { "num-class-images", N_ ("Class Images") },
  { "prior-weight", N_ ("Prior Preservation Weight") },
  { "train-text-encoder", N_ ("Train the Text Encoder") },
  { "hn-sizes", N_ ("Sizes") },
  { "hn-layers", N_ ("Layer Structure") },
  { "hn-activation", N_ ("Activation") },
  { "batch", N_ ("Batch Size") },
  { "seed", N_ ("Seed") },
  { "buckets", N_ ("Aspect-Ratio Buckets") },
  { "random-crop", N_ ("Random Crop") },
  { "repeats", N_ ("Repeats") },
  { "flip", N_ ("Horizontal Flip") },
  { "caption-dropout", N_ ("Caption Dropout") },
  { "shuffle-tags", N_ ("Shuffle Tags") },
  { "keep-tags", N_ ("Tags Kept First") },
  { "lr-scheduler", N_ ("Learning-Rate Schedule") },
  { "lr-warmup", N_ ("Warm-up Steps") },
  { "lr-cycles", N_ ("Schedule Cycles") },
  { "lr-power", N_ ("Schedule Power") },
  { "weight-decay", N_ ("Weight Decay") },
  { "adam-beta1", N_ ("AdamW β₁") },
  { "adam-beta2", N_ ("AdamW β₂") },
  { "adam-eps", N_ ("AdamW ε") },
  { "max-grad-norm", N_ ("Gradient Clipping") },
  { "grad-accum", N_ ("Gradient Accumulation") },
  { "min-snr-gamma", N_ ("Min-SNR γ") },
  { "noise-offset", N_ ("Noise Offset") },
  { "clip-skip", N_ ("Clip Skip") },
  { "fp16", N_ ("Half-Precision Weights") },
  { "checkpointing", N_ ("Gradient Checkpointing") },
  { "fused-backward-pass", N_ ("Fused Backward Pass") },
  { "conv-rank", N_ ("Convolution Rank (LoCon)") },
  { "conv-alpha", N_ ("Convolution Alpha") },
  { "no-text-encoder", N_ ("UNet Only") },
  { "init-from", N_ ("Continue from File") },
  { "save-dtype", N_ ("Saved Precision") },
  { "class-images", N_ ("Class Image Folder") },
  { "optimizer", N_ ("Optimizer") },
  { "hn-layer-norm", N_ ("Layer Norm") },
  { "hn-dropout", N_ ("Dropout Structure") },
  { "hn-init", N_ ("Weight Initialisation") },
  { "save-every", N_ ("Checkpoint Every") },
  { "keep", N_ ("Checkpoints Kept") },
  { "sample-every", N_ ("Previews Every") },
  { "sample-prompt", N_ ("Preview Prompts") },
  { "sample-steps", N_ ("Preview Sampler Steps") },
  { "validate-every", N_ ("Validation Every") },
};

static char *
option_title (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (titles); i++)
    if (g_str_equal (titles[i].name, name))
      return g_strdup (_ (titles[i].title));
  char *t = g_strdup (name);
  g_strdelimit (t, "-", ' ');
  t[0] = g_ascii_toupper (t[0]);
  return t;
}

const char *
dl_train_form_method_summary (DlTrainMethod method)
{
  switch (method)
    {
    case DL_TRAIN_LORA:
      return _ ("A small file that works with any SD 1.5 model in AUTOMATIC1111 and ComfyUI");
    case DL_TRAIN_TEXTUAL_INVERSION:
      return _ ("A new word the model learns: a tiny embedding file for prompts");
    case DL_TRAIN_DREAMBOOTH:
      return _ ("A whole new model, fine-tuned on your images");
    case DL_TRAIN_HYPERNETWORK:
      return _ ("AUTOMATIC1111’s style module, applied on top of any model");
    default:
      return "";
    }
}

/* the training methods' names (translated where they are shown) */
static const char *const method_titles[DL_TRAIN_N_METHODS] = { N_ ("LoRA"), N_ ("Textual Inversion"), N_ ("DreamBooth"),
                                                               N_ ("Hypernetwork") };

static gboolean
find_option (const char *name, DlTrainOptionInfo *info)
{
  for (guint i = 0; dl_train_settings_option_info (i, info); i++)
    if (g_str_equal (info->name, name))
      return TRUE;
  return FALSE;
}

/* ---- applying a value ---- */

static gboolean
apply (DlTrainForm *self, const char *name, const char *value, GError **error)
{
  g_autoptr (DlTrainSettings) s = dl_train_settings_copy (self->settings);
  if (g_str_equal (name, "sample-prompt"))
    {
      g_clear_pointer (&s->sample_prompts, g_strfreev);
      g_auto (GStrv) parts = g_strsplit (value ? value : "", "|", -1);
      for (char **p = parts; *p; p++)
        {
          g_strstrip (*p);
          if (**p && !dl_train_settings_set (s, name, *p, error))
            return FALSE;
        }
    }
  else if (!value || !*value)
    {
      dl_train_settings_reset (s, name); /* an empty entry: the default, or none */
    }
  else if (!dl_train_settings_set (s, name, value, error))
    {
      return FALSE;
    }
  dl_train_settings_free (self->settings);
  self->settings = g_steal_pointer (&s);
  return TRUE;
}

static void
mark (DlTrainForm *self, const char *name, GtkWidget *widget, const GError *error)
{
  if (error)
    {
      gtk_widget_add_css_class (widget, "error");
      gtk_widget_set_tooltip_text (widget, error->message);
      g_hash_table_add (self->invalid, g_strdup (name));
    }
  else
    {
      gtk_widget_remove_css_class (widget, "error");
      gtk_widget_set_tooltip_text (widget, g_object_get_data (G_OBJECT (widget), "help"));
      g_hash_table_remove (self->invalid, name);
    }
}

static void
entry_changed (GtkEditable *editable, DlTrainForm *self)
{
  if (self->syncing)
    return;
  const char *name = g_object_get_data (G_OBJECT (editable), "option");
  g_autoptr (GError) error = NULL;
  gboolean ok = apply (self, name, gtk_editable_get_text (editable), &error);
  mark (self, name, GTK_WIDGET (editable), error);
  if (ok)
    g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
switch_changed (GtkSwitch *sw, GParamSpec *pspec, DlTrainForm *self)
{
  (void)pspec;
  if (self->syncing)
    return;
  const char *name = g_object_get_data (G_OBJECT (sw), "option");
  if (apply (self, name, gtk_switch_get_active (sw) ? "true" : "false", NULL))
    g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
combo_changed (AdwComboRow *row, GParamSpec *pspec, DlTrainForm *self)
{
  (void)pspec;
  if (self->syncing)
    return;
  const char *name = g_object_get_data (G_OBJECT (row), "option");
  const char *const *choices = g_object_get_data (G_OBJECT (row), "choices");
  guint i = adw_combo_row_get_selected (row);
  if (i < g_strv_length ((char **)choices) && apply (self, name, choices[i], NULL))
    g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

/* ---- rows ---- */

static GtkWidget *
make_row (DlTrainForm *self, const DlTrainOptionInfo *info)
{
  g_autofree char *title = option_title (info->name);
  g_autofree char *value = dl_train_settings_get (self->settings, info->name);
  GtkWidget *row;
  switch (info->kind)
    {
    case DL_TRAIN_OPTION_FLAG:
      {
        row = adw_action_row_new ();
        dl_row_set_title (row, title);
        dl_row_set_subtitle (row, info->help);
        GtkWidget *sw = gtk_switch_new ();
        gtk_widget_set_valign (sw, GTK_ALIGN_CENTER);
        gtk_switch_set_active (GTK_SWITCH (sw), g_strcmp0 (value, "true") == 0);
        g_object_set_data_full (G_OBJECT (sw), "option", g_strdup (info->name), g_free);
        g_signal_connect (sw, "notify::active", G_CALLBACK (switch_changed), self);
        adw_action_row_add_suffix (ADW_ACTION_ROW (row), sw);
        adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), sw);
        gtk_accessible_update_property (GTK_ACCESSIBLE (sw), GTK_ACCESSIBLE_PROPERTY_LABEL, title, -1);
        g_object_set_data (G_OBJECT (row), "control", sw);
        break;
      }
    case DL_TRAIN_OPTION_CHOICE:
      {
        row = adw_combo_row_new ();
        dl_row_set_title (row, title);
        dl_row_set_subtitle (row, info->help);
        g_autoptr (GtkStringList) list = gtk_string_list_new (info->choices);
        adw_combo_row_set_model (ADW_COMBO_ROW (row), G_LIST_MODEL (list));
        for (guint i = 0; info->choices[i]; i++)
          if (g_strcmp0 (info->choices[i], value) == 0)
            adw_combo_row_set_selected (ADW_COMBO_ROW (row), i);
        g_object_set_data_full (G_OBJECT (row), "option", g_strdup (info->name), g_free);
        g_object_set_data (G_OBJECT (row), "choices", (gpointer)info->choices);
        g_signal_connect (row, "notify::selected", G_CALLBACK (combo_changed), self);
        g_object_set_data (G_OBJECT (row), "control", row);
        break;
      }
    default:
      {
        row = adw_entry_row_new ();
        dl_row_set_title (row, title);
        gtk_editable_set_text (GTK_EDITABLE (row), value ? value : "");
        g_object_set_data_full (G_OBJECT (row), "option", g_strdup (info->name), g_free);
        g_object_set_data_full (G_OBJECT (row), "help", g_strdup (info->help), g_free);
        gtk_widget_set_tooltip_text (row, info->help);
        g_signal_connect (row, "changed", G_CALLBACK (entry_changed), self);
        g_object_set_data (G_OBJECT (row), "control", row);
        break;
      }
    }
  gtk_widget_set_name (row, info->name);
  g_hash_table_insert (self->rows, g_strdup (info->name), row);
  return row;
}

static void
rebuild (DlTrainForm *self)
{
  self->syncing = TRUE;
  if (self->options_box)
    gtk_box_remove (GTK_BOX (self->box), self->options_box);
  g_hash_table_remove_all (self->rows);
  g_hash_table_remove_all (self->invalid);
  self->options_box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 24);
  gtk_box_append (GTK_BOX (self->box), self->options_box);

  DlTrainMethod m = self->settings->method;
  GtkWidget *own = adw_preferences_group_new ();
  /* Translators: %s is a training method, like "LoRA" */
  g_autofree char *own_title = g_strdup_printf (_ ("%s Settings"), _ (method_titles[m]));
  adw_preferences_group_set_title (ADW_PREFERENCES_GROUP (own), own_title);
  const char *const *keys = key_options (m);
  DlTrainOptionInfo info;
  for (const char *const *k = keys; *k; k++)
    if (find_option (*k, &info) && (info.methods & (1u << m)))
      adw_preferences_group_add (ADW_PREFERENCES_GROUP (own), make_row (self, &info));
  gtk_box_append (GTK_BOX (self->options_box), own);

  GtkWidget *adv_group = adw_preferences_group_new ();
  GtkWidget *adv = adw_expander_row_new ();
  dl_row_set_title (adv, _ ("Advanced"));
  dl_row_set_subtitle (adv, _ ("Every other option of the trainer, as `dreamloom train` takes it"));
  gtk_widget_set_name (adv, "advanced");
  for (guint i = 0; dl_train_settings_option_info (i, &info); i++)
    {
      if (!(info.methods & (1u << m)) || g_strv_contains (hidden, info.name) ||
          g_strv_contains ((const char *const *)keys, info.name))
        continue;
      adw_expander_row_add_row (ADW_EXPANDER_ROW (adv), make_row (self, &info));
    }
  adw_preferences_group_add (ADW_PREFERENCES_GROUP (adv_group), adv);
  gtk_box_append (GTK_BOX (self->options_box), adv_group);
  self->syncing = FALSE;
}

/* Hypernetworks are SD 1.x only: with an SDXL base model their row says so
 * and cannot be picked (it stays sensitive while it is the method, so that
 * another can be chosen from it). */
static void
update_method_rows (DlTrainForm *self)
{
  GtkWidget *check = GTK_WIDGET (self->method_checks[DL_TRAIN_HYPERNETWORK]);
  GtkWidget *row = gtk_widget_get_ancestor (check, ADW_TYPE_ACTION_ROW);
  gboolean chosen = self->settings->method == DL_TRAIN_HYPERNETWORK;
  gtk_widget_set_sensitive (row, !self->sdxl || chosen);
  dl_row_set_subtitle (row, self->sdxl ? _ ("For Stable Diffusion 1.x models: AUTOMATIC1111 has no SDXL hypernetworks")
                                       : dl_train_form_method_summary (DL_TRAIN_HYPERNETWORK));
}

static void
method_toggled (GtkCheckButton *check, DlTrainForm *self)
{
  if (self->syncing || !gtk_check_button_get_active (check))
    return;
  DlTrainMethod m = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (check), "method"));
  if (m == self->settings->method)
    return;
  /* a method's own defaults: a good first run for it */
  dl_train_settings_free (self->settings);
  self->settings = dl_train_settings_new (m);
  rebuild (self);
  update_method_rows (self);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
dl_train_form_dispose (GObject *object)
{
  DlTrainForm *self = DL_TRAIN_FORM (object);
  g_clear_pointer (&self->box, gtk_widget_unparent);
  G_OBJECT_CLASS (dl_train_form_parent_class)->dispose (object);
}

static void
dl_train_form_finalize (GObject *object)
{
  DlTrainForm *self = DL_TRAIN_FORM (object);
  g_hash_table_unref (self->rows);
  g_hash_table_unref (self->invalid);
  dl_train_settings_free (self->settings);
  G_OBJECT_CLASS (dl_train_form_parent_class)->finalize (object);
}

static void
dl_train_form_class_init (DlTrainFormClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  oc->dispose = dl_train_form_dispose;
  oc->finalize = dl_train_form_finalize;
  gtk_widget_class_set_layout_manager_type (GTK_WIDGET_CLASS (klass), GTK_TYPE_BIN_LAYOUT);
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
dl_train_form_init (DlTrainForm *self)
{
  self->rows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->invalid = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->settings = dl_train_settings_new (DL_TRAIN_LORA);
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 24);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));

  GtkWidget *group = adw_preferences_group_new ();
  adw_preferences_group_set_title (ADW_PREFERENCES_GROUP (group), _ ("Method"));
  adw_preferences_group_set_description (ADW_PREFERENCES_GROUP (group), _ ("What training makes"));
  GtkCheckButton *first = NULL;
  for (int m = 0; m < DL_TRAIN_N_METHODS; m++)
    {
      GtkWidget *row = adw_action_row_new ();
      dl_row_set_title (row, _ (method_titles[m]));
      dl_row_set_subtitle (row, dl_train_form_method_summary (m));
      GtkWidget *check = gtk_check_button_new ();
      gtk_widget_set_valign (check, GTK_ALIGN_CENTER);
      gtk_accessible_update_property (GTK_ACCESSIBLE (check), GTK_ACCESSIBLE_PROPERTY_LABEL, _ (method_titles[m]), -1);
      if (first)
        gtk_check_button_set_group (GTK_CHECK_BUTTON (check), first);
      else
        first = GTK_CHECK_BUTTON (check);
      g_object_set_data (G_OBJECT (check), "method", GUINT_TO_POINTER (m));
      g_signal_connect (check, "toggled", G_CALLBACK (method_toggled), self);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), check);
      adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), check);
      gtk_widget_set_name (row, dl_train_method_name (m));
      self->method_checks[m] = GTK_CHECK_BUTTON (check);
      adw_preferences_group_add (ADW_PREFERENCES_GROUP (group), row);
    }
  gtk_box_append (GTK_BOX (self->box), group);
  gtk_check_button_set_active (self->method_checks[DL_TRAIN_LORA], TRUE);
  rebuild (self);
}

DlTrainForm *
dl_train_form_new (void)
{
  return g_object_new (DL_TYPE_TRAIN_FORM, NULL);
}

void
dl_train_form_set_settings (DlTrainForm *self, const DlTrainSettings *settings)
{
  g_return_if_fail (DL_IS_TRAIN_FORM (self) && settings != NULL);
  dl_train_settings_free (self->settings);
  self->settings = dl_train_settings_copy (settings);
  self->syncing = TRUE;
  gtk_check_button_set_active (self->method_checks[settings->method], TRUE);
  self->syncing = FALSE;
  rebuild (self);
  update_method_rows (self);
}

const DlTrainSettings *
dl_train_form_get_settings (DlTrainForm *self)
{
  return self->settings;
}

GtkWidget *
dl_train_form_get_row (DlTrainForm *self, const char *name)
{
  return g_hash_table_lookup (self->rows, name);
}

gboolean
dl_train_form_is_valid (DlTrainForm *self)
{
  return dl_train_form_get_problem (self) == NULL;
}

const char *
dl_train_form_get_problem (DlTrainForm *self)
{
  g_return_val_if_fail (DL_IS_TRAIN_FORM (self), NULL);
  if (self->sdxl && self->settings->method == DL_TRAIN_HYPERNETWORK)
    return _ ("Hypernetworks are for Stable Diffusion 1.x models: for this SDXL model, train a LoRA");
  if (g_hash_table_size (self->invalid))
    return _ ("A setting holds a value the trainer does not take (marked in red)");
  return NULL;
}

void
dl_train_form_set_sdxl (DlTrainForm *self, gboolean sdxl)
{
  g_return_if_fail (DL_IS_TRAIN_FORM (self));
  if (self->sdxl == !!sdxl)
    return;
  self->sdxl = !!sdxl;
  update_method_rows (self);
}

gboolean
dl_train_form_set_option (DlTrainForm *self, const char *name, const char *value, GError **error)
{
  if (!apply (self, name, value, error))
    return FALSE;
  GtkWidget *row = g_hash_table_lookup (self->rows, name);
  if (row)
    {
      /* show it, without applying it a second time */
      self->syncing = TRUE;
      GtkWidget *control = g_object_get_data (G_OBJECT (row), "control");
      g_autofree char *now = dl_train_settings_get (self->settings, name);
      if (GTK_IS_SWITCH (control))
        gtk_switch_set_active (GTK_SWITCH (control), g_strcmp0 (now, "true") == 0);
      else if (ADW_IS_COMBO_ROW (control))
        {
          const char *const *choices = g_object_get_data (G_OBJECT (control), "choices");
          for (guint i = 0; choices[i]; i++)
            if (g_strcmp0 (choices[i], now) == 0)
              adw_combo_row_set_selected (ADW_COMBO_ROW (control), i);
        }
      else
        {
          gtk_editable_set_text (GTK_EDITABLE (control), now ? now : "");
          mark (self, name, control, NULL);
        }
      self->syncing = FALSE;
    }
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  return TRUE;
}

void
dl_train_form_set_locked (DlTrainForm *self, gboolean locked)
{
  gtk_widget_set_sensitive (self->box, !locked);
}
