#include "dl-config.h"

#include "dl-prompt-templates.h"

#include <gio/gio.h>

#define TEMPLATES_RESOURCE "/io/github/dreamloom/Dreamloom/prompt-templates/object.txt"

const char *const *
dl_prompt_templates_get (void)
{
  static char **lines;
  if (g_once_init_enter (&lines))
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) bytes = g_resources_lookup_data (TEMPLATES_RESOURCE, G_RESOURCE_LOOKUP_FLAGS_NONE, &error);
      /* the file is compiled into the program: its absence is a build error */
      if (!bytes)
        g_error ("The prompt templates are missing from the resources: %s", error->message);
      g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      g_auto (GStrv) raw = g_strsplit (text, "\n", -1);
      g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
      for (char **p = raw; *p; p++)
        {
          g_strstrip (*p);
          if (**p)
            g_strv_builder_add (b, *p);
        }
      g_once_init_leave (&lines, g_strv_builder_end (b));
    }
  return (const char *const *) lines;
}

char *
dl_prompt_template_apply (const char *line, const char *token)
{
  g_return_val_if_fail (line != NULL, NULL);
  GString *s = g_string_new (line);
  g_string_replace (s, DL_PROMPT_PLACEHOLDER, token && *token ? token : DL_PROMPT_PLACEHOLDER, 0);
  return g_string_free (s, FALSE);
}
