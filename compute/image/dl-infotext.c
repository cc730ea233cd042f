/* dl-infotext.c: see dl-infotext.h. */
#include "dl-config.h"

#include "image/dl-infotext.h"

/* numbers as A1111 prints Python floats: 7 and 7.5, not 7.000000 */
static const char *
number (char *buf, gsize len, double v)
{
  return g_ascii_formatd (buf, len, "%g", v);
}

char *
dl_infotext_format (const DlInfotext *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  GString *s = g_string_new (info->prompt ? info->prompt : "");
  char num[G_ASCII_DTOSTR_BUF_SIZE];
  for (guint i = 0; i < info->n_loras; i++)
    g_string_append_printf (s, " <lora:%s:%s>", info->loras[i].name, number (num, sizeof num, info->loras[i].strength));
  for (guint i = 0; i < info->n_hypernets; i++)
    g_string_append_printf (s, " <hypernet:%s:%s>", info->hypernets[i].name,
                            number (num, sizeof num, info->hypernets[i].strength));
  if (info->negative && *info->negative)
    g_string_append_printf (s, "\nNegative prompt: %s", info->negative);
  g_string_append_printf (s, "\nSteps: %d, Sampler: %s, CFG scale: %s, Seed: %" G_GUINT64_FORMAT ", Size: %dx%d",
                          info->steps, info->sampler, number (num, sizeof num, info->cfg_scale), info->seed,
                          info->width, info->height);
  if (info->model_hash && *info->model_hash)
    g_string_append_printf (s, ", Model hash: %s", info->model_hash);
  if (info->model && *info->model)
    g_string_append_printf (s, ", Model: %s", info->model);
  if (info->clip_skip > 1)
    g_string_append_printf (s, ", Clip skip: %d", info->clip_skip);
  g_string_append (s, ", Version: Dreamloom " DL_VERSION);
  return g_string_free (s, FALSE);
}
