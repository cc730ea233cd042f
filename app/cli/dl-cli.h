/* dl-cli.h: the headless subcommands of `dreamloom`.  They use compute/ and the
 * project model (app/project/) only: no GTK. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef int (*DlCliFunc) (int argc, char **argv);

typedef struct
{
  const char *name;
  DlCliFunc func;
  const char *summary;
} DlCliCommand;

/* NULL if `name` is not a subcommand. */
const DlCliCommand *dl_cli_find (const char *name);
/* Usage text listing every subcommand. */
char *dl_cli_usage (void);

/* Print "dreamloom <cmd>: <message>" for an error, returning the exit status 1. */
int dl_cli_fail (const char *cmd, const GError *error);
/* The median of n timings (sorted in place): what every benchmark reports. */
double dl_cli_median (double *values, int n);

/* Parse the options of a subcommand; prints the error and returns FALSE on failure. */
gboolean dl_cli_parse (GOptionContext *ctx, int *argc, char ***argv, const char *cmd);

int dl_cli_devices (int argc, char **argv);
int dl_cli_bench (int argc, char **argv);
int dl_cli_bench_ops (int argc, char **argv);
int dl_cli_bench_train (int argc, char **argv);
int dl_cli_bench_sd (int argc, char **argv, const char *what);
int dl_cli_sample (int argc, char **argv);
int dl_cli_grad (int argc, char **argv);
int dl_cli_train (int argc, char **argv);
int dl_cli_inspect (int argc, char **argv);
int dl_cli_tokenize (int argc, char **argv);

G_END_DECLS
