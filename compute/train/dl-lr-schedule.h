/* dl-lr-schedule.h: learning-rate schedules, exactly as diffusers'
 * get_scheduler() builds them (src/diffusers/optimization.py): a factor of the
 * base learning rate per optimizer step, evaluated in double like Python. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  DL_LR_CONSTANT,
  DL_LR_CONSTANT_WITH_WARMUP,
  DL_LR_LINEAR,
  DL_LR_COSINE,
  DL_LR_COSINE_WITH_RESTARTS,
  DL_LR_POLYNOMIAL,
  DL_LR_N_SCHEDULES
} DlLrScheduleKind;

typedef struct
{
  DlLrScheduleKind kind;
  double base_lr;
  gint64 warmup_steps;
  gint64 training_steps; /* unused by the constant schedules */
  double num_cycles;     /* cosine: 0.5 (a half cosine), cosine_with_restarts: 1 */
  double power;          /* polynomial: 1 */
  double lr_end;         /* polynomial: 1e-7 */
} DlLrSchedule;

/* diffusers' names: "constant", "constant_with_warmup", "linear", "cosine",
 * "cosine_with_restarts", "polynomial". */
const char *dl_lr_schedule_name (DlLrScheduleKind kind);
/* All of them, in DlLrScheduleKind order, NULL-terminated. */
const char *const *dl_lr_schedule_names (void);
gboolean dl_lr_schedule_kind_from_name (const char *name, DlLrScheduleKind *out);

/* A schedule with diffusers' defaults for the kind's extra arguments. */
DlLrSchedule dl_lr_schedule_init (DlLrScheduleKind kind, double base_lr, gint64 warmup_steps, gint64 training_steps);

/* Checks what get_scheduler would reject (negative counts, polynomial with
 * lr_end >= base_lr, ...). */
gboolean dl_lr_schedule_validate (const DlLrSchedule *s, GError **error);

/* The learning rate used by optimizer step `step` (0 for the first step): what
 * LambdaLR's get_last_lr() returns after `step` scheduler steps. */
double dl_lr_schedule_at (const DlLrSchedule *s, gint64 step);

G_END_DECLS
