/* dl-row-text.c: see dl-row-text.h. */
#include "dl-config.h"

#include "dl-row-text.h"

void
dl_row_set_title (gpointer row, const char *text)
{
  g_autofree char *esc = g_markup_escape_text (text ? text : "", -1);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), esc);
}

void
dl_row_set_subtitle (gpointer row, const char *text)
{
  g_autofree char *esc = g_markup_escape_text (text ? text : "", -1);
  if (ADW_IS_EXPANDER_ROW (row))
    adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (row), esc);
  else
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), esc);
}
