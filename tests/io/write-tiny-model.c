/* write-tiny-model (tests only): write a model read from BASE, unchanged, as
 * an LDM single file (f16) and as a diffusers folder (f16), with
 * dl-checkpoint-writer; tests/cli/test-cli.sh then inspects both.
 * usage: write-tiny-model BASE OUT.safetensors OUT_DIR */
#include "dl-config.h"

#include <stdio.h>
#include <string.h>

#include "io/dl-checkpoint-writer.h"

static gboolean
base_values (const char *name, float *out, int64_t numel, gpointer user_data, GError **error)
{
  int64_t n = 0;
  g_autofree float *v = dl_checkpoint_read_f32 (user_data, name, &n, error);
  if (!v)
    return FALSE;
  g_return_val_if_fail (n == numel, FALSE);
  memcpy (out, v, sizeof (float) * numel);
  return TRUE;
}

int
main (int argc, char **argv)
{
  if (argc != 4)
    {
      fprintf (stderr, "usage: %s BASE OUT.safetensors OUT_DIR\n", argv[0]);
      return 2;
    }
  g_autoptr (GError) error = NULL;
  g_autoptr (DlCheckpoint) base = dl_checkpoint_open (argv[1], NULL, &error);
  DlCheckpointWriteOptions o;
  dl_checkpoint_write_options_init (&o);
  gboolean ok = base && dl_checkpoint_write (base, base_values, base, &o, argv[2], &error);
  o.layout = DL_CHECKPOINT_WRITE_DIFFUSERS;
  ok = ok && dl_checkpoint_write (base, base_values, base, &o, argv[3], &error);
  if (!ok)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  return 0;
}
