#include "dl-config.h"

#include "dl-preview-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <string.h>

#include "dl-dataset-strip.h"
#include "dl-file-dialog.h"
#include "dl-image-viewer.h"
#include "dl-preview-cell.h"
#include "dl-preview-job.h"
#include "train/dl-prompt-templates.h"
#include "dl-toast.h"
#include "io/dl-file-util.h"
#include "sched/dl-sampler.h"

struct _DlPreviewPage
{
  GtkWidget parent_instance;

  AdwExpanderRow *templates_row;
  GtkListBox *prompt_list;
  AdwEntryRow *add_prompt_row;
  GtkListBox *column_list;
  AdwActionRow *base_column_row;
  AdwActionRow *add_lora_row;
  AdwEntryRow *negative_row;
  GtkSpinButton *seed_spin;
  GtkSpinButton *steps_spin;
  AdwComboRow *sampler_row;
  GtkSpinButton *cfg_spin;
  GtkSpinButton *width_spin;
  GtkSpinButton *height_spin;
  GtkButton *generate_button;
  GtkButton *cancel_button;
  GtkProgressBar *progress_bar;
  GtkLabel *summary_label;
  DlDatasetStrip *dataset_strip;
  GtkStack *results_stack;
  AdwStatusPage *ready_status;
  GtkGrid *results_grid;

  DlProject *project;
  GSignalGroup *project_signals; /* the project's, while it is the page's */
  GSignalGroup *job_signals;     /* the run's */
  GSettings *settings;
  GPtrArray *template_checks; /* GtkCheckButton per template line */
  GPtrArray *template_rows;   /* AdwActionRow per template line */
  DlPreviewJob *job;
  GPtrArray *column_titles; /* of the last run */
  guint n_started, n_items; /* of the run */
  guint n_failed;
  char *first_failure;
  gboolean syncing;
  gboolean editing_strength; /* a strength spin changes the project: keep its row */
  GCancellable *lora_check;  /* the LoRA rows' file checks */
  GHashTable *lora_problems; /* path -> what the last check found ("" fine) */
};

G_DEFINE_FINAL_TYPE (DlPreviewPage, dl_preview_page, GTK_TYPE_WIDGET)

enum
{
  SIGNAL_FINISHED,
  N_SIGNALS
};
static guint signals[N_SIGNALS];

static void sync_state (DlPreviewPage *self);

static void
set_row_text (AdwActionRow *row, const char *title, const char *subtitle)
{
  g_autofree char *t = g_markup_escape_text (title, -1);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), t);
  if (subtitle)
    {
      g_autofree char *s = g_markup_escape_text (subtitle, -1);
      adw_action_row_set_subtitle (row, s);
    }
}

/* ---- prompts ---- */

GPtrArray *
dl_preview_page_get_prompts (DlPreviewPage *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), NULL);
  GPtrArray *prompts = g_ptr_array_new_with_free_func (g_free);
  if (!self->project)
    return prompts;
  g_auto (GStrv) texts = dl_project_dup_preview_texts (self->project);
  for (char **p = texts; *p; p++)
    g_ptr_array_add (prompts, g_strdup (*p));
  return prompts;
}

static void
sync_templates (DlPreviewPage *self)
{
  const char *const *templates = dl_prompt_templates_object ();
  const char *token = self->project ? dl_project_get_token (self->project) : NULL;
  GArray *on = self->project ? dl_project_get_preview_templates (self->project) : NULL;
  self->syncing = TRUE;
  for (guint i = 0; i < self->template_rows->len; i++)
    {
      g_autofree char *text = dl_prompt_template_apply (templates[i], token);
      set_row_text (self->template_rows->pdata[i], text, NULL);
      gboolean active = FALSE;
      for (guint j = 0; on && j < on->len; j++)
        active |= g_array_index (on, guint, j) == i;
      gtk_check_button_set_active (self->template_checks->pdata[i], active);
    }
  self->syncing = FALSE;
  g_autofree char *subtitle = g_strdup_printf (
    /* Translators: how many of the prompt templates are used */
    _ ("%u of %u used"), on ? on->len : 0u, self->template_rows->len);
  adw_expander_row_set_subtitle (self->templates_row, subtitle);
}

static void
template_toggled (GtkCheckButton *check, DlPreviewPage *self)
{
  if (self->syncing || !self->project)
    return;
  g_autoptr (GArray) on = g_array_new (FALSE, FALSE, sizeof (guint));
  for (guint i = 0; i < self->template_checks->len; i++)
    if (gtk_check_button_get_active (self->template_checks->pdata[i]))
      g_array_append_val (on, i);
  dl_project_set_preview_templates (self->project, (guint *)on->data, on->len);
}

static void
remove_prompt_clicked (GtkButton *button, DlPreviewPage *self)
{
  if (!self->project)
    return;
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "dl-index"));
  const char *const *old = dl_project_get_preview_prompts (self->project);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  for (guint i = 0; old && old[i]; i++)
    if (i != index)
      g_strv_builder_add (b, old[i]);
  g_auto (GStrv) prompts = g_strv_builder_end (b);
  dl_project_set_preview_prompts (self->project, (const char *const *)prompts);
}

static void
sync_user_prompts (DlPreviewPage *self)
{
  /* every row but the entry row at the end */
  GtkWidget *row;
  while ((row = gtk_widget_get_first_child (GTK_WIDGET (self->prompt_list))) &&
         row != GTK_WIDGET (self->add_prompt_row))
    gtk_list_box_remove (self->prompt_list, row);
  const char *const *prompts = self->project ? dl_project_get_preview_prompts (self->project) : NULL;
  for (guint i = 0; prompts && prompts[i]; i++)
    {
      GtkWidget *r = adw_action_row_new ();
      set_row_text (ADW_ACTION_ROW (r), prompts[i], NULL);
      GtkWidget *remove = gtk_button_new_from_icon_name ("user-trash-symbolic");
      gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
      gtk_widget_set_tooltip_text (remove, _ ("Remove Prompt"));
      gtk_accessible_update_property (GTK_ACCESSIBLE (remove), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Remove Prompt"), -1);
      gtk_widget_add_css_class (remove, "flat");
      g_object_set_data (G_OBJECT (remove), "dl-index", GUINT_TO_POINTER (i));
      g_signal_connect (remove, "clicked", G_CALLBACK (remove_prompt_clicked), self);
      adw_action_row_add_suffix (ADW_ACTION_ROW (r), remove);
      gtk_list_box_insert (self->prompt_list, r, (int)i);
    }
}

static void
add_prompt_applied (AdwEntryRow *row, DlPreviewPage *self)
{
  g_autofree char *text = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (row))));
  if (!*text || !self->project)
    return;
  const char *const *old = dl_project_get_preview_prompts (self->project);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  if (old)
    g_strv_builder_addv (b, (const char **)old);
  g_strv_builder_add (b, text);
  g_auto (GStrv) prompts = g_strv_builder_end (b);
  dl_project_set_preview_prompts (self->project, (const char *const *)prompts);
  gtk_editable_set_text (GTK_EDITABLE (row), "");
}

static void
negative_changed (GtkEditable *row, DlPreviewPage *self)
{
  if (!self->syncing && self->project)
    dl_project_set_negative_prompt (self->project, gtk_editable_get_text (row));
}

/* ---- columns ---- */

static void
strength_changed (GtkSpinButton *spin, DlPreviewPage *self)
{
  if (self->syncing || !self->project)
    return;
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (spin), "dl-index"));
  GPtrArray *loras = dl_project_get_loras (self->project);
  if (index >= loras->len)
    return;
  g_autoptr (GPtrArray) copy = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  for (guint i = 0; i < loras->len; i++)
    {
      DlProjectLora *l = loras->pdata[i];
      g_ptr_array_add (copy,
                       dl_project_lora_new (l->path, i == index ? gtk_spin_button_get_value (spin) : l->strength));
    }
  self->editing_strength = TRUE; /* the spin keeps its focus: no rebuild for our own change */
  dl_project_set_loras (self->project, copy);
  self->editing_strength = FALSE;
}

static void
remove_lora_clicked (GtkButton *button, DlPreviewPage *self)
{
  if (!self->project)
    return;
  guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (button), "dl-index"));
  GPtrArray *loras = dl_project_get_loras (self->project);
  g_autoptr (GPtrArray) copy = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  for (guint i = 0; i < loras->len; i++)
    if (i != index)
      {
        DlProjectLora *l = loras->pdata[i];
        g_ptr_array_add (copy, dl_project_lora_new (l->path, l->strength));
      }
  dl_project_set_loras (self->project, copy);
}

/* `problem` NULL: the file is there */
static void
show_lora_problem (GtkWidget *row, const char *problem)
{
  g_autofree char *subtitle = g_markup_escape_text (problem ? problem : _ ("Base + this LoRA, at strength"), -1);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  GtkImage *icon = g_object_get_data (G_OBJECT (row), "dl-icon");
  gtk_image_set_from_icon_name (icon, problem ? "dialog-warning-symbolic" : "view-dual-symbolic");
  if (problem)
    gtk_widget_add_css_class (GTK_WIDGET (icon), "warning");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (icon), "warning");
}

static void
lora_checked (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GtkWidget) row = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GFileInfo) info = g_file_query_info_finish (G_FILE (source), result, &error);
  /* cancelled: the rows were made again, or the page went away */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  const char *problem = info && g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR ? NULL
                        : info                                                          ? _ ("Not a file")
                        : g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)     ? _ ("LoRA file not found")
                                                                                        : error->message;
  show_lora_problem (row, problem);
  g_object_set_data (G_OBJECT (row), "dl-lora-check", problem ? "missing" : "found");
  GtkWidget *page = gtk_widget_get_ancestor (row, DL_TYPE_PREVIEW_PAGE);
  if (page)
    g_hash_table_insert (DL_PREVIEW_PAGE (page)->lora_problems,
                         g_strdup (g_object_get_data (G_OBJECT (row), "dl-lora-path")),
                         g_strdup (problem ? problem : ""));
}

const char *
dl_preview_page_get_lora_check (DlPreviewPage *self, guint index)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), NULL);
  GtkWidget *row = gtk_widget_get_next_sibling (GTK_WIDGET (self->base_column_row));
  for (guint i = 0; row && row != GTK_WIDGET (self->add_lora_row); i++, row = gtk_widget_get_next_sibling (row))
    if (i == index)
      return g_object_get_data (G_OBJECT (row), "dl-lora-check");
  return NULL;
}

static void
sync_columns (DlPreviewPage *self)
{
  if (self->editing_strength)
    return;
  /* the answers for the rows about to go are of no use */
  g_cancellable_cancel (self->lora_check);
  g_clear_object (&self->lora_check);
  self->lora_check = g_cancellable_new ();
  const char *model = self->project ? dl_project_get_base_model (self->project) : NULL;
  g_autofree char *model_name = model ? dl_file_stem (model) : NULL;
  set_row_text (self->base_column_row, _ ("Base Model"), model_name ? model_name : _ ("None chosen yet"));

  GtkWidget *row = gtk_widget_get_next_sibling (GTK_WIDGET (self->base_column_row));
  while (row && row != GTK_WIDGET (self->add_lora_row))
    {
      GtkWidget *next = gtk_widget_get_next_sibling (row);
      gtk_list_box_remove (self->column_list, row);
      row = next;
    }
  GPtrArray *loras = self->project ? dl_project_get_loras (self->project) : NULL;
  for (guint i = 0; loras && i < loras->len; i++)
    {
      DlProjectLora *l = loras->pdata[i];
      g_autofree char *name = dl_file_stem (l->path);
      GtkWidget *r = adw_action_row_new ();
      set_row_text (ADW_ACTION_ROW (r), name, NULL);
      gtk_widget_set_tooltip_text (r, l->path);
      GtkWidget *icon = gtk_image_new ();
      adw_action_row_add_prefix (ADW_ACTION_ROW (r), icon);
      g_object_set_data (G_OBJECT (r), "dl-icon", icon);
      g_object_set_data_full (G_OBJECT (r), "dl-lora-path", g_strdup (l->path), g_free);
      /* until the disk answers, as last time (rows are made again on every
       * change), or as it will be in the usual case */
      const char *known = g_hash_table_lookup (self->lora_problems, l->path);
      show_lora_problem (r, known && *known ? known : NULL);
      g_object_set_data (G_OBJECT (r), "dl-lora-check", "checking");
      GtkWidget *spin = gtk_spin_button_new_with_range (-2.0, 2.0, 0.05);
      gtk_spin_button_set_digits (GTK_SPIN_BUTTON (spin), 2);
      gtk_spin_button_set_value (GTK_SPIN_BUTTON (spin), l->strength);
      gtk_widget_set_valign (spin, GTK_ALIGN_CENTER);
      gtk_widget_set_tooltip_text (spin, _ ("Strength"));
      gtk_accessible_update_property (GTK_ACCESSIBLE (spin), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Strength"), -1);
      g_object_set_data (G_OBJECT (spin), "dl-index", GUINT_TO_POINTER (i));
      g_signal_connect (spin, "value-changed", G_CALLBACK (strength_changed), self);
      adw_action_row_add_suffix (ADW_ACTION_ROW (r), spin);
      GtkWidget *remove = gtk_button_new_from_icon_name ("user-trash-symbolic");
      gtk_widget_set_valign (remove, GTK_ALIGN_CENTER);
      gtk_widget_set_tooltip_text (remove, _ ("Remove Column"));
      gtk_accessible_update_property (GTK_ACCESSIBLE (remove), GTK_ACCESSIBLE_PROPERTY_LABEL, _ ("Remove Column"), -1);
      gtk_widget_add_css_class (remove, "flat");
      g_object_set_data (G_OBJECT (remove), "dl-index", GUINT_TO_POINTER (i));
      g_signal_connect (remove, "clicked", G_CALLBACK (remove_lora_clicked), self);
      adw_action_row_add_suffix (ADW_ACTION_ROW (r), remove);
      gtk_list_box_insert (self->column_list, r, (int)i + 1);
      /* on a worker thread: a sleeping network disk must not freeze the window */
      g_autoptr (GFile) file = g_file_new_for_path (l->path);
      g_file_query_info_async (file, G_FILE_ATTRIBUTE_STANDARD_TYPE, G_FILE_QUERY_INFO_NONE, G_PRIORITY_DEFAULT,
                               self->lora_check, lora_checked, g_object_ref (r));
    }
}

static void
lora_picked (GtkWidget *owner, GPtrArray *files, gpointer user_data)
{
  DlPreviewPage *self = DL_PREVIEW_PAGE (owner);
  if (!files || !self->project)
    return;
  GPtrArray *loras = dl_project_get_loras (self->project);
  g_autoptr (GPtrArray) copy = g_ptr_array_new_with_free_func ((GDestroyNotify)dl_project_lora_free);
  for (guint i = 0; i < loras->len; i++)
    {
      DlProjectLora *l = loras->pdata[i];
      g_ptr_array_add (copy, dl_project_lora_new (l->path, l->strength));
    }
  for (guint i = 0; i < files->len; i++)
    {
      g_autofree char *path = g_file_get_path (files->pdata[i]);
      if (path)
        g_ptr_array_add (copy, dl_project_lora_new (path, 1.0));
    }
  dl_project_set_loras (self->project, copy);
}

static void
add_lora (DlPreviewPage *self)
{
  g_autoptr (GListStore) filters = g_list_store_new (GTK_TYPE_FILE_FILTER);
  g_autoptr (GtkFileFilter) filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, _ ("LoRA Files"));
  gtk_file_filter_add_suffix (filter, "safetensors");
  g_list_store_append (filters, filter);
  dl_file_dialog_run (GTK_WIDGET (self), DL_FILE_DIALOG_OPEN_MULTIPLE, _ ("Add LoRA Columns"), _ ("_Add"),
                      G_LIST_MODEL (filters), NULL, NULL, lora_picked, NULL);
}

/* ---- running ---- */

static guint
n_columns (DlPreviewPage *self)
{
  return 1 + (self->project ? dl_project_get_loras (self->project)->len : 0);
}

const char *
dl_preview_page_get_state (DlPreviewPage *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), NULL);
  return gtk_stack_get_visible_child_name (self->results_stack);
}

static void
sync_state (DlPreviewPage *self)
{
  gboolean running = self->job && dl_preview_job_get_running (self->job);
  DlPreviewBackend *backend = dl_preview_backend_get_default ();
  g_autoptr (GPtrArray) prompts = dl_preview_page_get_prompts (self);
  gboolean has_model = self->project && dl_project_get_base_model (self->project);
  const char *state;
  if (!backend)
    state = "unavailable";
  else if (running || (self->job && g_strcmp0 (gtk_stack_get_visible_child_name (self->results_stack), "results") == 0))
    state = "results";
  else if (!has_model)
    state = "no-model";
  else if (prompts->len == 0)
    state = "no-prompts";
  else
    state = "ready";
  gtk_stack_set_visible_child_name (self->results_stack, state);

  guint n = prompts->len * n_columns (self);
  g_autofree char *n_prompts =
    g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u prompt", "%u prompts", prompts->len), prompts->len);
  g_autofree char *n_cols =
    g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u column", "%u columns", n_columns (self)), n_columns (self));
  g_autofree char *n_images = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u image", "%u images", n), n);
  /* Translators: "2 prompts × 3 columns = 6 images" */
  g_autofree char *summary = g_strdup_printf (_ ("%s × %s = %s"), n_prompts, n_cols, n_images);
  gtk_label_set_text (self->summary_label, summary);
  /* Translators: %s is the summary, like "2 prompts × 3 columns = 6 images" */
  g_autofree char *ready = g_strdup_printf (_ ("%s. Press Generate to make them."), summary);
  adw_status_page_set_description (self->ready_status, ready);

  gboolean can_generate = backend && has_model && prompts->len > 0 && !running;
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "preview.generate", can_generate);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "preview.cancel", running);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->generate_button),
                               !backend ? _ ("Previews need Dreamloom’s Stable Diffusion sampler, not in this version "
                                             "yet")
                               : !has_model        ? _ ("Choose a base model first")
                               : prompts->len == 0 ? _ ("Add a prompt first")
                                                   : _ ("Make every prompt in every column (Ctrl+Return)"));
  gtk_widget_set_visible (GTK_WIDGET (self->generate_button), !running);
  gtk_widget_set_visible (GTK_WIDGET (self->cancel_button), running);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), running);
  gtk_widget_set_visible (GTK_WIDGET (self->summary_label), !running);
}

void
dl_preview_page_refresh (DlPreviewPage *self)
{
  g_return_if_fail (DL_IS_PREVIEW_PAGE (self));
  sync_state (self);
}

static DlPreviewCell *
find_cell (DlPreviewPage *self, guint row, guint column)
{
  /* grid row 0 holds the column titles and grid column 0 the prompts */
  GtkWidget *w = gtk_grid_get_child_at (self->results_grid, (int)column + 1, (int)row + 1);
  return DL_IS_PREVIEW_CELL (w) ? DL_PREVIEW_CELL (w) : NULL;
}

DlPreviewCell *
dl_preview_page_get_cell (DlPreviewPage *self, guint row, guint column)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), NULL);
  return find_cell (self, row, column);
}

GdkTexture *
dl_preview_page_get_result (DlPreviewPage *self, guint row, guint column)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), NULL);
  DlPreviewCell *cell = find_cell (self, row, column);
  return cell ? dl_preview_cell_get_texture (cell) : NULL;
}

DlDatasetStrip *
dl_preview_page_get_dataset_strip (DlPreviewPage *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), NULL);
  return self->dataset_strip;
}

static void
cell_clicked (DlPreviewCell *cell, DlPreviewPage *self)
{
  GdkTexture *texture = dl_preview_cell_get_texture (cell);
  if (dl_preview_cell_get_state (cell) == DL_PREVIEW_CELL_FAILED)
    {
      /* the tooltip says it too, but not on a touch screen */
      dl_toast_show (GTK_WIDGET (self), dl_preview_cell_get_message (cell), NULL);
      return;
    }
  if (!texture || !self->job)
    return;
  guint row = dl_preview_cell_get_row (cell), column = dl_preview_cell_get_column (cell);
  const DlPreviewRequest *request = dl_preview_job_get_request (self->job, row, column);
  if (!request)
    return;
  const char *title =
    self->column_titles && column < self->column_titles->len ? self->column_titles->pdata[column] : "";
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  DlImageViewer *viewer =
    dl_image_viewer_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL, texture, request, title);
  gtk_window_present (GTK_WINDOW (viewer));
}

static void
job_item_started (DlPreviewJob *job, guint row, guint column, DlPreviewPage *self)
{
  self->n_started++;
  DlPreviewCell *cell = find_cell (self, row, column);
  if (cell)
    dl_preview_cell_set_busy (cell);
}

static void
job_item_finished (DlPreviewJob *job, guint row, guint column, GdkTexture *texture, GError *error, DlPreviewPage *self)
{
  DlPreviewCell *cell = find_cell (self, row, column);
  if (!cell)
    return;
  if (texture)
    dl_preview_cell_set_texture (cell, texture);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    dl_preview_cell_set_not_made (cell, _ ("Cancelled"));
  else
    {
      const char *message = error ? error->message : _ ("The image could not be made");
      dl_preview_cell_set_error (cell, message);
      if (self->n_failed++ == 0)
        self->first_failure = g_strdup (message);
    }
}

static void
job_progress (DlPreviewJob *job, double fraction, DlPreviewPage *self)
{
  gtk_progress_bar_set_fraction (self->progress_bar, fraction);
  g_autofree char *text =
    g_strdup_printf (_ ("Image %u of %u · %.0f %%"), MAX (self->n_started, 1u), self->n_items, fraction * 100.0);
  gtk_progress_bar_set_text (self->progress_bar, text);
}

static void
job_finished (DlPreviewJob *job, gboolean cancelled, DlPreviewPage *self)
{
  for (GtkWidget *w = gtk_widget_get_first_child (GTK_WIDGET (self->results_grid)); w;
       w = gtk_widget_get_next_sibling (w))
    if (DL_IS_PREVIEW_CELL (w))
      dl_preview_cell_set_not_made (DL_PREVIEW_CELL (w), cancelled ? _ ("Cancelled") : _ ("Not made"));
  sync_state (self);
  /* every cell has its own reason in its tooltip; the first one is worth a toast,
   * as a model that cannot be loaded fails every image the same way */
  if (self->n_failed)
    {
      g_autofree char *msg = g_strdup_printf (
        g_dngettext (GETTEXT_PACKAGE, "%u preview failed: %s", "%u previews failed: %s", self->n_failed),
        self->n_failed, self->first_failure);
      dl_toast_show (GTK_WIDGET (self), msg, NULL);
    }
  else if (cancelled)
    dl_toast_show (GTK_WIDGET (self), _ ("Previews cancelled"), NULL);
  g_signal_emit (self, signals[SIGNAL_FINISHED], 0, cancelled);
}

static void
clear_job (DlPreviewPage *self)
{
  if (!self->job)
    return;
  g_signal_group_set_target (self->job_signals, NULL);
  dl_preview_job_cancel (self->job);
  g_clear_object (&self->job);
}

static GtkWidget *
header_label (const char *text, gboolean column)
{
  GtkWidget *label = gtk_label_new (text);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (label), column ? 24 : 18);
  gtk_label_set_xalign (GTK_LABEL (label), column ? 0.5f : 1.0f);
  gtk_widget_set_valign (label, column ? GTK_ALIGN_END : GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (label, column ? "heading" : "dim-label");
  return label;
}

static guint64
random_seed (void)
{
  return (guint64)g_random_int ();
}

gboolean
dl_preview_page_generate (DlPreviewPage *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), FALSE);
  DlPreviewBackend *backend = dl_preview_backend_get_default ();
  g_autoptr (GPtrArray) prompts = dl_preview_page_get_prompts (self);
  if (!backend || !self->project || !dl_project_get_base_model (self->project) || prompts->len == 0 ||
      (self->job && dl_preview_job_get_running (self->job)))
    return FALSE;
  clear_job (self);

  gboolean random = self->settings && g_settings_get_boolean (self->settings, "preview-random-seed");
  guint64 seed = random ? random_seed () : (guint64)gtk_spin_button_get_value (self->seed_spin);
  g_autoptr (DlPreviewRequest) base = dl_preview_request_new ();
  base->model_path = g_strdup (dl_project_get_base_model (self->project));
  base->device = self->settings ? g_settings_get_string (self->settings, "device") : NULL;
  g_free (base->negative_prompt);
  base->negative_prompt = g_strdup (dl_project_get_negative_prompt (self->project));
  base->seed = seed;
  base->steps = gtk_spin_button_get_value_as_int (self->steps_spin);
  const char *const *ids = dl_sampler_names ();
  guint sampler = adw_combo_row_get_selected (self->sampler_row);
  g_free (base->sampler);
  base->sampler = g_strdup (sampler < g_strv_length ((char **)ids) ? ids[sampler] : ids[0]);
  base->cfg_scale = gtk_spin_button_get_value (self->cfg_spin);
  /* the UNet works on 1/8-size latents */
  base->width = gtk_spin_button_get_value_as_int (self->width_spin) / 8 * 8;
  base->height = gtk_spin_button_get_value_as_int (self->height_spin) / 8 * 8;

  /* the grid: column titles, prompt labels, a waiting cell per image */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->results_grid))))
    gtk_grid_remove (self->results_grid, child);
  g_clear_pointer (&self->column_titles, g_ptr_array_unref);
  self->column_titles = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *model_name = dl_file_stem (base->model_path);
  g_ptr_array_add (self->column_titles, g_strdup_printf (_ ("Base: %s"), model_name));
  GPtrArray *loras = dl_project_get_loras (self->project);
  for (guint i = 0; i < loras->len; i++)
    {
      DlProjectLora *l = loras->pdata[i];
      g_autofree char *name = dl_file_stem (l->path);
      g_ptr_array_add (self->column_titles, g_strdup_printf ("+ %s × %.2f", name, l->strength));
    }
  for (guint c = 0; c < self->column_titles->len; c++)
    gtk_grid_attach (self->results_grid, header_label (self->column_titles->pdata[c], TRUE), (int)c + 1, 0, 1, 1);

  self->job = dl_preview_job_new (backend);
  for (guint r = 0; r < prompts->len; r++)
    {
      gtk_grid_attach (self->results_grid, header_label (prompts->pdata[r], FALSE), 0, (int)r + 1, 1, 1);
      for (guint c = 0; c < self->column_titles->len; c++)
        {
          g_autoptr (DlPreviewRequest) req = dl_preview_request_copy (base);
          g_free (req->prompt);
          req->prompt = g_strdup (prompts->pdata[r]);
          if (c > 0)
            {
              DlProjectLora *l = loras->pdata[c - 1];
              dl_preview_request_add_lora (req, l->path, l->strength);
            }
          dl_preview_job_add (self->job, r, c, req);
          GtkWidget *cell = dl_preview_cell_new (r, c);
          g_autofree char *a11y =
            g_strdup_printf ("%s, %s", (char *)prompts->pdata[r], (char *)self->column_titles->pdata[c]);
          gtk_accessible_update_property (GTK_ACCESSIBLE (cell), GTK_ACCESSIBLE_PROPERTY_LABEL, a11y, -1);
          g_signal_connect (cell, "clicked", G_CALLBACK (cell_clicked), self);
          gtk_grid_attach (self->results_grid, cell, (int)c + 1, (int)r + 1, 1, 1);
        }
    }
  g_signal_group_set_target (self->job_signals, self->job);
  self->n_started = 0;
  self->n_items = dl_preview_job_get_n_items (self->job);
  self->n_failed = 0;
  g_clear_pointer (&self->first_failure, g_free);
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_progress_bar_set_text (self->progress_bar, _ ("Starting…"));
  dl_preview_job_start (self->job);
  gtk_stack_set_visible_child_name (self->results_stack, "results");
  sync_state (self);
  return TRUE;
}

void
dl_preview_page_cancel (DlPreviewPage *self)
{
  g_return_if_fail (DL_IS_PREVIEW_PAGE (self));
  if (self->job)
    dl_preview_job_cancel (self->job);
}

gboolean
dl_preview_page_get_running (DlPreviewPage *self)
{
  g_return_val_if_fail (DL_IS_PREVIEW_PAGE (self), FALSE);
  return self->job && dl_preview_job_get_running (self->job);
}

/* ---- project and settings ---- */

static void
previews_changed (DlPreviewPage *self)
{
  sync_templates (self);
  sync_user_prompts (self);
  sync_columns (self);
  sync_state (self);
}

void
dl_preview_page_set_project (DlPreviewPage *self, DlProject *project)
{
  g_return_if_fail (DL_IS_PREVIEW_PAGE (self));
  if (self->project == project)
    return;
  clear_job (self);
  g_set_object (&self->project, project);
  g_signal_group_set_target (self->project_signals, project);
  dl_dataset_strip_set_images (self->dataset_strip, project ? dl_project_get_images (project) : NULL);
  self->syncing = TRUE;
  gtk_editable_set_text (GTK_EDITABLE (self->negative_row), project ? dl_project_get_negative_prompt (project) : "");
  self->syncing = FALSE;
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->results_grid))))
    gtk_grid_remove (self->results_grid, child);
  previews_changed (self);
}

static gboolean
sampler_get_mapping (GValue *value, GVariant *variant, gpointer user_data)
{
  const char *id = g_variant_get_string (variant, NULL);
  const char *const *ids = dl_sampler_names ();
  for (guint i = 0; ids[i]; i++)
    if (g_strcmp0 (ids[i], id) == 0)
      {
        g_value_set_uint (value, i);
        return TRUE;
      }
  g_value_set_uint (value, 0);
  return TRUE;
}

static GVariant *
sampler_set_mapping (const GValue *value, const GVariantType *type, gpointer user_data)
{
  const char *const *ids = dl_sampler_names ();
  guint i = g_value_get_uint (value);
  return g_variant_new_string (i < g_strv_length ((char **)ids) ? ids[i] : ids[0]);
}

void
dl_preview_page_set_settings (DlPreviewPage *self, GSettings *settings)
{
  g_return_if_fail (DL_IS_PREVIEW_PAGE (self));
  if (!g_set_object (&self->settings, settings) || !settings)
    return;
  /* the page shows (and changes) the defaults from the preferences */
  g_settings_bind (settings, "preview-seed", self->seed_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "preview-steps", self->steps_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "preview-cfg", self->cfg_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "preview-width", self->width_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "preview-height", self->height_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind_with_mapping (settings, "preview-sampler", self->sampler_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                sampler_get_mapping, sampler_set_mapping, NULL, NULL);
}

static void
page_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  DlPreviewPage *self = DL_PREVIEW_PAGE (widget);
  if (g_str_equal (action_name, "preview.generate"))
    dl_preview_page_generate (self);
  else if (g_str_equal (action_name, "preview.cancel"))
    dl_preview_page_cancel (self);
  else if (g_str_equal (action_name, "preview.add-lora"))
    add_lora (self);
  else if (g_str_equal (action_name, "preview.new-seed"))
    gtk_spin_button_set_value (self->seed_spin, (double)random_seed ());
}

static void
dl_preview_page_map (GtkWidget *widget)
{
  GTK_WIDGET_CLASS (dl_preview_page_parent_class)->map (widget);
  /* a backend may have been registered since */
  sync_state (DL_PREVIEW_PAGE (widget));
}

static void
dl_preview_page_dispose (GObject *object)
{
  DlPreviewPage *self = DL_PREVIEW_PAGE (object);
  clear_job (self);
  dl_preview_page_set_project (self, NULL);
  g_cancellable_cancel (self->lora_check);
  g_clear_object (&self->lora_check);
  gtk_widget_dispose_template (GTK_WIDGET (self), DL_TYPE_PREVIEW_PAGE);
  /* the template's top box is ours to unparent (it is not a bound child) */
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))))
    gtk_widget_unparent (child);
  G_OBJECT_CLASS (dl_preview_page_parent_class)->dispose (object);
}

static void
dl_preview_page_finalize (GObject *object)
{
  DlPreviewPage *self = DL_PREVIEW_PAGE (object);
  g_clear_object (&self->project_signals);
  g_clear_object (&self->job_signals);
  g_clear_object (&self->settings);
  g_ptr_array_unref (self->template_checks);
  g_ptr_array_unref (self->template_rows);
  g_hash_table_unref (self->lora_problems);
  g_clear_pointer (&self->column_titles, g_ptr_array_unref);
  g_free (self->first_failure);
  G_OBJECT_CLASS (dl_preview_page_parent_class)->finalize (object);
}

static void
dl_preview_page_class_init (DlPreviewPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = dl_preview_page_dispose;
  object_class->finalize = dl_preview_page_finalize;
  widget_class->map = dl_preview_page_map;

  gtk_widget_class_set_template_from_resource (widget_class, "/io/github/dreamloom/Dreamloom/ui/dl-preview-page.ui");
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, templates_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, prompt_list);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, add_prompt_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, column_list);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, base_column_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, add_lora_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, negative_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, seed_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, steps_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, sampler_row);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, cfg_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, width_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, height_spin);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, generate_button);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, cancel_button);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, summary_label);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, dataset_strip);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, results_stack);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, ready_status);
  gtk_widget_class_bind_template_child (widget_class, DlPreviewPage, results_grid);

  gtk_widget_class_install_action (widget_class, "preview.generate", NULL, page_action);
  gtk_widget_class_install_action (widget_class, "preview.cancel", NULL, page_action);
  gtk_widget_class_install_action (widget_class, "preview.add-lora", NULL, page_action);
  gtk_widget_class_install_action (widget_class, "preview.new-seed", NULL, page_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Return, GDK_CONTROL_MASK, "preview.generate", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "preview.cancel", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_l, GDK_CONTROL_MASK, "preview.add-lora", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_r, GDK_CONTROL_MASK, "preview.new-seed", NULL);

  /* A run ended (gboolean cancelled). */
  signals[SIGNAL_FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                           NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
  g_type_ensure (DL_TYPE_PREVIEW_CELL);
  g_type_ensure (DL_TYPE_DATASET_STRIP);
}

static void
dl_preview_page_init (DlPreviewPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->project_signals = g_signal_group_new (DL_TYPE_PROJECT);
  g_signal_group_connect_swapped (self->project_signals, "previews-changed", G_CALLBACK (previews_changed), self);
  self->job_signals = g_signal_group_new (DL_TYPE_PREVIEW_JOB);
  g_signal_group_connect (self->job_signals, "item-started", G_CALLBACK (job_item_started), self);
  g_signal_group_connect (self->job_signals, "item-finished", G_CALLBACK (job_item_finished), self);
  g_signal_group_connect (self->job_signals, "progress", G_CALLBACK (job_progress), self);
  g_signal_group_connect (self->job_signals, "finished", G_CALLBACK (job_finished), self);
  self->template_checks = g_ptr_array_new ();
  self->template_rows = g_ptr_array_new ();
  self->lora_problems = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  const char *const *templates = dl_prompt_templates_object ();
  for (guint i = 0; templates[i]; i++)
    {
      GtkWidget *row = adw_action_row_new ();
      GtkWidget *check = gtk_check_button_new ();
      gtk_widget_set_valign (check, GTK_ALIGN_CENTER);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), check);
      adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), check);
      g_signal_connect (check, "toggled", G_CALLBACK (template_toggled), self);
      adw_expander_row_add_row (self->templates_row, row);
      g_ptr_array_add (self->template_checks, check);
      g_ptr_array_add (self->template_rows, row);
    }

  g_autoptr (GtkStringList) samplers = gtk_string_list_new (NULL);
  for (const char *const *id = dl_sampler_names (); *id; id++)
    gtk_string_list_append (samplers, dl_sampler_label (*id));
  adw_combo_row_set_model (self->sampler_row, G_LIST_MODEL (samplers));

  /* without settings (tests), the same defaults as the schema */
  gtk_spin_button_set_value (self->seed_spin, 42);
  gtk_spin_button_set_value (self->steps_spin, 20);
  gtk_spin_button_set_value (self->cfg_spin, 7.0);
  gtk_spin_button_set_value (self->width_spin, 512);
  gtk_spin_button_set_value (self->height_spin, 512);

  g_signal_connect (self->add_prompt_row, "apply", G_CALLBACK (add_prompt_applied), self);
  g_signal_connect (self->add_prompt_row, "entry-activated", G_CALLBACK (add_prompt_applied), self);
  g_signal_connect (self->negative_row, "changed", G_CALLBACK (negative_changed), self);
  previews_changed (self);
}
