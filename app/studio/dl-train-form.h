/* dl-train-form.h: the training settings as a form — the method (four
 * choices, one line each on what it makes), its own settings, and an
 * Advanced expander with every other option of the trainer, all built from
 * the trainer's option table (dl_train_settings_option_info), so that the
 * window offers exactly what `dreamloom train` takes.  Values are checked as
 * they are typed (an entry the trainer would refuse is marked, its reason in
 * the tooltip); "changed" is emitted with each valid change. */
#pragma once

#include <adwaita.h>

#include "train/dl-train-settings.h"

G_BEGIN_DECLS

#define DL_TYPE_TRAIN_FORM (dl_train_form_get_type ())
G_DECLARE_FINAL_TYPE (DlTrainForm, dl_train_form, DL, TRAIN_FORM, GtkWidget)

DlTrainForm *dl_train_form_new (void);
/* Show these settings (copied). */
void dl_train_form_set_settings (DlTrainForm *self, const DlTrainSettings *settings);
/* The settings as the form has them now (owned by the form). */
const DlTrainSettings *dl_train_form_get_settings (DlTrainForm *self);
/* Change one option as if typed (tests, the memory plan's "make it fit"). */
gboolean dl_train_form_set_option (DlTrainForm *self, const char *name, const char *value, GError **error);
/* The row of option `name` (tests), or NULL when the method does not show it. */
GtkWidget *dl_train_form_get_row (DlTrainForm *self, const char *name);
/* Whether every entry holds a value the trainer takes and the method fits the
 * base model (dl_train_form_set_sdxl). */
gboolean dl_train_form_is_valid (DlTrainForm *self);
/* The base model is SDXL: hypernetworks (SD 1.x only) cannot be picked, and
 * the form is not valid while they are the method. */
void dl_train_form_set_sdxl (DlTrainForm *self, gboolean sdxl);
/* Why the form is not valid, for the user (NULL when it is). */
const char *dl_train_form_get_problem (DlTrainForm *self);
void dl_train_form_set_locked (DlTrainForm *self, gboolean locked);

/* A one-line description of `method` (what it makes, where it works). */
const char *dl_train_form_method_summary (DlTrainMethod method);

G_END_DECLS
