/* libFuzzer target for the PyTorch-file readers: an input starting "PK" goes
 * through the zip reader, the checkpoint layout checks and the unpickler
 * (dl_torch_ckpt_open_bytes); anything else straight to the unpickler, so
 * that mutations are not all stopped by the zip's CRC.  Built with clang by
 * .ci/fuzz-safetensors; the normal suite replays corpus-torch-ckpt through the
 * same function (fuzz-replay.c).
 *
 * Besides "no crash, no leak, nothing executed", it checks what a successful
 * open promises: every tensor's bytes are readable and sized as its shape
 * says, and every failure is a DL_ERROR naming the input. */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dl-error.h"
#include "io/dl-pickle.h"
#include "io/dl-torch-ckpt.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (gboolean ok, const char *what)
{
  if (!ok)
    {
      g_printerr ("fuzz-torch-ckpt: broken promise: %s\n", what);
      abort ();
    }
}

static void
check_error (const GError *error)
{
  check (error != NULL && error->domain == DL_ERROR
             && (error->code == DL_ERROR_INVALID_FILE || error->code == DL_ERROR_OUT_OF_HOST_MEMORY),
         "a failed open sets a DL_ERROR_INVALID_FILE error");
  check (strstr (error->message, "fuzz-input") != NULL, "the error names the input");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  if (size < 2 || data[0] != 'P' || data[1] != 'K')
    {
      g_autoptr (DlPickle) pk = dl_pickle_load (data, size, "fuzz-input", &error);
      if (!pk)
        {
          check_error (error);
          return 0;
        }
      DlPickleValue *root = dl_pickle_get_root (pk);
      check (root != NULL, "a loaded pickle has a root");
      dl_pickle_dict_get (root, "state_dict");
      return 0;
    }

  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (DlTorchCkpt) ck = dl_torch_ckpt_open_bytes (bytes, "fuzz-input", &error);
  if (!ck)
    {
      check_error (error);
      return 0;
    }
  check (error == NULL, "no error on success");
  for (guint i = 0; i < dl_torch_ckpt_get_n_tensors (ck); i++)
    {
      const DlStTensor *t = dl_torch_ckpt_get_tensor (ck, i);
      check (t->ndim >= 0 && t->ndim <= DL_ST_MAX_DIMS && t->numel >= 0, "sane shape");
      int64_t numel = 1;
      for (int d = 0; d < t->ndim; d++)
        numel *= t->shape[d];
      check (numel == t->numel, "numel is the product of the shape");
      check (t->nbytes == (guint64) t->numel * dl_st_dtype_size (t->dtype), "nbytes = numel x element size");
      check (dl_torch_ckpt_find (ck, t->name) == t, "find returns the tensor by its name");
      /* touch every byte of the smaller tensors: a bad span would show in ASan */
      if (t->nbytes <= (1u << 20))
        {
          guint64 sum = 0;
          for (guint64 k = 0; k < t->nbytes; k++)
            sum += t->data[k];
          check (sum <= 255 * t->nbytes, "bytes are bytes");
        }
    }
  check (dl_torch_ckpt_get_tensor (ck, dl_torch_ckpt_get_n_tensors (ck)) == NULL, "NULL past the end");
  GPtrArray *other = dl_torch_ckpt_get_other_keys (ck);
  for (guint i = 0; i < other->len; i++)
    check (other->pdata[i] != NULL, "other keys are strings");
  return 0;
}
