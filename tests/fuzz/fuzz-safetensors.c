/* libFuzzer target for the safetensors reader.  Built with clang by
 * .ci/fuzz-safetensors; the normal test suite replays the seed corpus through the
 * same function (fuzz-replay.c).
 *
 * Besides "no crash, no leak", it checks what a successful open promises: every
 * tensor lies inside the input, the tensors tile the byte buffer exactly, and
 * every failure comes with a message. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-safetensors.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (gboolean ok, const char *what)
{
  if (!ok)
    {
      g_printerr ("fuzz-safetensors: broken promise: %s\n", what);
      abort ();
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (DlSafetensors) st = dl_safetensors_open_bytes (bytes, "fuzz-input", &error);
  if (!st)
    {
      check (error != NULL && error->domain == DL_ERROR && error->code == DL_ERROR_INVALID_FILE,
             "a failed open sets a DL_ERROR_INVALID_FILE error");
      check (strstr (error->message, "fuzz-input") != NULL, "the error names the file");
      return 0;
    }
  check (error == NULL, "no error on success");

  guint64 n = dl_safetensors_get_header_length (st);
  check (n <= size - 8, "the header lies inside the input");
  guint64 covered = 0;
  for (guint i = 0; i < dl_safetensors_get_n_tensors (st); i++)
    {
      const DlStTensor *t = dl_safetensors_get_tensor (st, i);
      check (t->data >= data + 8 + n && t->nbytes <= size && t->data + t->nbytes <= data + size,
             "tensor data lies inside the input");
      check (t->ndim >= 0 && t->ndim <= DL_ST_MAX_DIMS && t->numel >= 0, "sane shape");
      check (dl_safetensors_find (st, t->name) == t, "find returns the tensor by its name");
      covered += t->nbytes;
      /* read every element of the smaller tensors: a bad span would show in ASan */
      if (t->numel <= 4096)
        {
          g_autoptr (GError) e = NULL;
          int64_t numel = -1;
          g_autofree float *f = dl_safetensors_read_f32 (st, t->name, &numel, &e);
          check (f != NULL || e != NULL, "read_f32 returns data or an error");
          check (f == NULL || numel == t->numel, "read_f32 returns numel elements");
        }
    }
  check (covered == size - 8 - n, "the tensors cover the byte buffer exactly");
  check (dl_safetensors_get_tensor (st, dl_safetensors_get_n_tensors (st)) == NULL, "NULL past the end");

  g_autoptr (GPtrArray) keys = dl_safetensors_get_metadata_keys (st);
  for (guint i = 0; i < keys->len; i++)
    check (dl_safetensors_get_metadata (st, keys->pdata[i]) != NULL, "every metadata key has a value");
  return 0;
}
