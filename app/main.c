/* dreamloom: no arguments opens the studio window; a subcommand runs the same
 * engine headless. */
#include "dl-config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli/dl-cli.h"
#include "dl-log.h"
#if DL_HAVE_GUI
#include "dl-application.h"
#endif

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  /* the window's strings; the headless subcommands print English only */
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* `dreamloom my.dreamloom` opens a project in the window */
  gboolean opens_project = argc >= 2 && g_str_has_suffix (argv[1], ".dreamloom");
  if (argc >= 2 && argv[1][0] != '-' && !opens_project)
    {
      const DlCliCommand *cmd = dl_cli_find (argv[1]);
      if (!cmd)
        {
          g_autofree char *usage = dl_cli_usage ();
          fprintf (stderr, "dreamloom: unknown command “%s”\n\n%s", argv[1], usage);
          return 2;
        }
      return cmd->func (argc - 1, argv + 1);
    }
  if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    {
      g_autofree char *usage = dl_cli_usage ();
      fputs (usage, stdout);
      return 0;
    }
  if (argc >= 2 && strcmp (argv[1], "--version") == 0)
    {
      printf ("dreamloom %s\n", DL_VERSION);
      return 0;
    }

#if DL_HAVE_GUI
  dl_log_init_gui ();
  g_autoptr (DlApplication) app = dl_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
#else
  g_autofree char *usage = dl_cli_usage ();
  fprintf (stderr, "This build has no window (configured with -Dgui=disabled).\n\n%s", usage);
  return 2;
#endif
}
