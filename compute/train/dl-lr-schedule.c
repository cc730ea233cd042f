/* Each case mirrors the corresponding lr_lambda of diffusers' optimization.py,
 * float for float (Python floats are doubles). */
#include "dl-lr-schedule.h"

#include "dl-error.h"

#include <math.h>
#include <string.h>

static const char *const names[DL_LR_N_SCHEDULES + 1] = {
  [DL_LR_CONSTANT] = "constant",
  [DL_LR_CONSTANT_WITH_WARMUP] = "constant_with_warmup",
  [DL_LR_LINEAR] = "linear",
  [DL_LR_COSINE] = "cosine",
  [DL_LR_COSINE_WITH_RESTARTS] = "cosine_with_restarts",
  [DL_LR_POLYNOMIAL] = "polynomial",
};

const char *const *
dl_lr_schedule_names (void)
{
  return names;
}

const char *
dl_lr_schedule_name (DlLrScheduleKind kind)
{
  return kind < DL_LR_N_SCHEDULES ? names[kind] : "unknown";
}

gboolean
dl_lr_schedule_kind_from_name (const char *name, DlLrScheduleKind *out)
{
  g_return_val_if_fail (name != NULL && out != NULL, FALSE);
  for (int k = 0; k < DL_LR_N_SCHEDULES; k++)
    if (strcmp (name, names[k]) == 0)
      {
        *out = (DlLrScheduleKind)k;
        return TRUE;
      }
  return FALSE;
}

DlLrSchedule
dl_lr_schedule_init (DlLrScheduleKind kind, double base_lr, gint64 warmup_steps, gint64 training_steps)
{
  DlLrSchedule s = {
    .kind = kind,
    .base_lr = base_lr,
    .warmup_steps = warmup_steps,
    .training_steps = training_steps,
    .num_cycles = kind == DL_LR_COSINE_WITH_RESTARTS ? 1.0 : 0.5,
    .power = 1.0,
    .lr_end = 1e-7,
  };
  return s;
}

gboolean
dl_lr_schedule_validate (const DlLrSchedule *s, GError **error)
{
  g_return_val_if_fail (s != NULL, FALSE);
  const char *why = NULL;
  if (s->kind >= DL_LR_N_SCHEDULES)
    why = "unknown schedule";
  else if (!isfinite (s->base_lr) || s->base_lr < 0)
    why = "the base learning rate must be a finite number >= 0";
  else if (s->warmup_steps < 0 || s->training_steps < 0)
    why = "step counts must not be negative";
  else if (s->kind == DL_LR_POLYNOMIAL && !(s->base_lr > s->lr_end))
    why = "polynomial decay needs lr_end below the base learning rate";
  else if (!isfinite (s->num_cycles) || !isfinite (s->power) || !isfinite (s->lr_end))
    why = "cycles, power and lr_end must be finite";
  if (why)
    g_set_error (error, DL_ERROR, DL_ERROR_INVALID_ARGUMENT, "learning-rate schedule %s: %s",
                 dl_lr_schedule_name (s->kind), why);
  return why == NULL;
}

static double
warmup_factor (gint64 step, gint64 warmup)
{
  return (double)step / (double)MAX (1, warmup);
}

static double
lambda (const DlLrSchedule *s, gint64 step)
{
  gint64 w = s->warmup_steps, T = s->training_steps;
  switch (s->kind)
    {
    case DL_LR_CONSTANT:
      return 1.0;
    case DL_LR_CONSTANT_WITH_WARMUP:
      return step < w ? warmup_factor (step, w) : 1.0;
    case DL_LR_LINEAR:
      if (step < w)
        return warmup_factor (step, w);
      return fmax (0.0, (double)(T - step) / (double)MAX (1, T - w));
    case DL_LR_COSINE:
      {
        if (step < w)
          return warmup_factor (step, w);
        double progress = (double)(step - w) / (double)MAX (1, T - w);
        return fmax (0.0, 0.5 * (1.0 + cos (G_PI * s->num_cycles * 2.0 * progress)));
      }
    case DL_LR_COSINE_WITH_RESTARTS:
      {
        if (step < w)
          return warmup_factor (step, w);
        double progress = (double)(step - w) / (double)MAX (1, T - w);
        if (progress >= 1.0)
          return 0.0;
        return fmax (0.0, 0.5 * (1.0 + cos (G_PI * fmod (s->num_cycles * progress, 1.0))));
      }
    case DL_LR_POLYNOMIAL:
      {
        if (step < w)
          return warmup_factor (step, w);
        if (step > T)
          return s->lr_end / s->base_lr;
        double range = s->base_lr - s->lr_end;
        double decay_steps = (double)(T - w);
        if (decay_steps <= 0) /* Python would divide by zero; the decay is over */
          return s->lr_end / s->base_lr;
        double remaining = 1.0 - (double)(step - w) / decay_steps;
        double decay = range * pow (remaining, s->power) + s->lr_end;
        return decay / s->base_lr;
      }
    case DL_LR_N_SCHEDULES:
    default:
      return 0.0;
    }
}

double
dl_lr_schedule_at (const DlLrSchedule *s, gint64 step)
{
  g_return_val_if_fail (s != NULL, 0.0);
  return s->base_lr * lambda (s, MAX (step, 0));
}
