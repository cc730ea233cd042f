#include "dl-cli.h"

#include <stdio.h>
#include <stdlib.h>

static const DlCliCommand commands[] = {
  { "devices", dl_cli_devices, "List Vulkan devices and what they can do" },
  { "bench", dl_cli_bench, "Measure the engine: bench matmul|ops|sample|train|train-step" },
  { "sample", dl_cli_sample, "Draw images with a Stable Diffusion model" },
  { "train", dl_cli_train, "Train a LoRA, an embedding, a DreamBooth model or a hypernetwork" },
  { "grad", dl_cli_grad, "One training step's loss and gradients on a given batch" },
  { "inspect", dl_cli_inspect, "Describe a Stable Diffusion model file or folder" },
  { "tokenize", dl_cli_tokenize, "Print the CLIP token ids of a prompt" },
};

const DlCliCommand *
dl_cli_find (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_strcmp0 (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

char *
dl_cli_usage (void)
{
  GString *s = g_string_new ("Usage:\n  dreamloom                 open the studio window\n"
                             "  dreamloom COMMAND [OPTION…]\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (s, "  %-24s %s\n", commands[i].name, commands[i].summary);
  g_string_append (s, "\nRun `dreamloom COMMAND --help` for the options of a command.\n"
                      "Environment: DREAMLOOM_DEVICE=<index or name> picks the GPU "
                      "(see `dreamloom devices`).\n");
  return g_string_free (s, FALSE);
}

int
dl_cli_fail (const char *cmd, const GError *error)
{
  fprintf (stderr, "dreamloom %s: %s\n", cmd, error ? error->message : "failed");
  return 1;
}

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double
dl_cli_median (double *values, int n)
{
  if (n <= 0)
    return 0;
  qsort (values, n, sizeof (double), compare_double);
  return values[n / 2];
}

gboolean
dl_cli_parse (GOptionContext *ctx, int *argc, char ***argv, const char *cmd)
{
  g_autoptr (GError) error = NULL;
  if (!g_option_context_parse (ctx, argc, argv, &error))
    {
      dl_cli_fail (cmd, error);
      return FALSE;
    }
  return TRUE;
}
