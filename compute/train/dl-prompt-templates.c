#include "dl-config.h"

#include "dl-prompt-templates.h"

#include "dl-error.h"

#include "dl-prompt-templates-data.h"
#include "dl-prompt-templates-style.h"

const char *const *
dl_prompt_templates_object (void)
{
  return dl_object_prompt_templates;
}

const char *const *
dl_prompt_templates_style (void)
{
  return dl_style_prompt_templates;
}

const char *const *
dl_prompt_templates_builtin (const char *name)
{
  if (!name || g_str_equal (name, "object"))
    return dl_object_prompt_templates;
  if (g_str_equal (name, "style"))
    return dl_style_prompt_templates;
  return NULL;
}

char *
dl_prompt_template_apply (const char *line, const char *token)
{
  g_return_val_if_fail (line != NULL, NULL);
  GString *s = g_string_new (line);
  g_string_replace (s, DL_PROMPT_PLACEHOLDER, token && *token ? token : DL_PROMPT_PLACEHOLDER, 0);
  return g_string_free (s, FALSE);
}

char **
dl_ti_templates_load (const char *template_file, GError **error)
{
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  const char *const *builtin = dl_prompt_templates_builtin (template_file);
  if (builtin)
    {
      for (guint i = 0; builtin[i]; i++)
        {
          GString *l = g_string_new (builtin[i]);
          g_string_replace (l, DL_PROMPT_PLACEHOLDER, "[name]", 0);
          g_string_append (l, ", [filewords]");
          g_strv_builder_add (b, l->str);
          g_string_free (l, TRUE);
        }
      return g_strv_builder_end (b);
    }
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents (template_file, &text, &len, error))
    return NULL;
  if (!g_utf8_validate (text, (gssize)len, NULL))
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "--template “%s”: not UTF-8 text", template_file);
      return NULL;
    }
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;
  for (char **l = lines; *l; l++)
    {
      g_strstrip (*l);
      if (**l)
        {
          g_strv_builder_add (b, *l);
          n++;
        }
    }
  if (!n)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "--template “%s”: no template line", template_file);
      return NULL;
    }
  return g_strv_builder_end (b);
}
