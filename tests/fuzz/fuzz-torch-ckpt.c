/* libFuzzer target for the PyTorch-file readers: an input starting "PK" goes
 * through the zip reader, the checkpoint layout checks and the unpickler
 * (dl_torch_ckpt_open_bytes); anything else straight to the unpickler, so
 * that mutations are not all stopped by the zip's CRC.  Built with clang by
 * .ci/fuzz-safetensors; the normal suite replays corpus-torch-ckpt through the
 * same function (fuzz-replay.c).
 *
 * Besides "no crash, no leak, nothing executed", it checks what a successful
 * open promises: every tensor's bytes are readable and sized as its shape
 * says, and every failure is a DL_ERROR naming the input.  The whole object
 * tree is walked too (each node once: the memo can make cycles), resolving the
 * tensors nested in it as the embedding and hypernetwork readers do. */
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
  check (error != NULL && error->domain == DL_ERROR &&
           (error->code == DL_ERROR_INVALID_FILE || error->code == DL_ERROR_OUT_OF_HOST_MEMORY),
         "a failed open sets a DL_ERROR_INVALID_FILE error");
  check (strstr (error->message, "fuzz-input") != NULL, "the error names the input");
}

static void
check_tensor_bytes (const DlStTensor *t)
{
  check (t->ndim >= 0 && t->ndim <= DL_ST_MAX_DIMS && t->numel >= 0, "sane shape");
  int64_t numel = 1;
  for (int d = 0; d < t->ndim; d++)
    numel *= t->shape[d];
  check (numel == t->numel, "numel is the product of the shape");
  check (t->nbytes == (guint64)t->numel * dl_st_dtype_size (t->dtype), "nbytes = numel x element size");
  /* touch every byte of the smaller tensors: a bad span would show in ASan */
  if (t->nbytes <= (1u << 20))
    {
      guint64 sum = 0;
      for (guint64 k = 0; k < t->nbytes; k++)
        sum += t->data[k];
      check (sum <= 255 * t->nbytes, "bytes are bytes");
    }
}

/* Every node of the tree once; nested tensors resolved through ck (if any). */
static void
walk (DlTorchCkpt *ck, const DlPickleValue *v, GHashTable *seen, guint *resolved)
{
  if (!g_hash_table_add (seen, (gpointer)v))
    return;
  check (dl_pickle_type_name (v->type) != NULL, "every value has a type name");
  switch (v->type)
    {
    case DL_PK_TUPLE:
    case DL_PK_LIST:
    case DL_PK_DICT:
    case DL_PK_SET:
      if (v->type == DL_PK_DICT)
        {
          dl_pickle_dict_get (v, "string_to_param");
          dl_pickle_dict_get_int (v, 768);
        }
      for (guint i = 0; i < v->items->len; i++)
        walk (ck, v->items->pdata[i], seen, resolved);
      break;
    case DL_PK_OPAQUE:
      dl_pickle_get_attr (v, "_parameters");
      if (v->global.state)
        walk (ck, v->global.state, seen, resolved);
      break;
    case DL_PK_TENSOR:
      if (ck && (*resolved)++ < 256)
        {
          g_autoptr (GError) error = NULL;
          DlStTensor t;
          if (dl_torch_ckpt_resolve_tensor (ck, v, "nested", &t, &error))
            check_tensor_bytes (&t);
          else
            check_error (error);
        }
      break;
    default:
      break;
    }
}

static void
walk_tree (DlTorchCkpt *ck, const DlPickleValue *root)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_direct_hash, g_direct_equal);
  guint resolved = 0;
  walk (ck, root, seen, &resolved);
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
      walk_tree (NULL, root);
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
      check_tensor_bytes (t);
      check (dl_torch_ckpt_find (ck, t->name) == t, "find returns the tensor by its name");
    }
  check (dl_torch_ckpt_get_tensor (ck, dl_torch_ckpt_get_n_tensors (ck)) == NULL, "NULL past the end");
  GPtrArray *other = dl_torch_ckpt_get_other_keys (ck);
  for (guint i = 0; i < other->len; i++)
    check (other->pdata[i] != NULL, "other keys are strings");
  walk_tree (ck, dl_torch_ckpt_get_root (ck));
  return 0;
}
