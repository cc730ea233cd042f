/* dl-lora.c: see dl-lora.h. */
#include "dl-config.h"

#include "nn/dl-lora.h"

#include "dl-error.h"

static DlTensor *
upload (DlLoraFile *file, const DlStTensor *t, int ndim, const int64_t *shape, DlDevice *device, GError **error)
{
  return dl_st_tensor_upload (t, dl_lora_file_get_path (file), t->name, ndim, shape, device, DL_DTYPE_F32, error);
}

gboolean
dl_lora_attach (DlParams *params, DlLoraFile *file, float strength, GHashTable *tensors, GPtrArray **unmatched,
                GError **error)
{
  g_return_val_if_fail (params != NULL && file != NULL, FALSE);
  g_autoptr (GHashTable) modules = dl_params_module_names (params);
  if (!dl_lora_file_resolve (file, modules, unmatched, error))
    return FALSE;
  DlDevice *device = dl_params_get_device (params);
  for (guint i = 0; i < dl_lora_file_get_n_modules (file); i++)
    {
      const DlLoraModule *m = dl_lora_file_get_module (file, i);
      DlTensor *w = dl_params_lookupf (params, "%s.weight", m->target);
      if (!w)
        {
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE, "“%s”: module %s has no weight in the model",
                       dl_lora_file_get_path (file), m->file_name);
          return FALSE;
        }
      /* the adapter takes the base module's form: a 1x1 conv base gets 4-D matrices
     * even from a file that stores them as Linear (PEFT) */
      gboolean conv = w->ndim == 4;
      int64_t dshape[4], ushape[4];
      int dn, un;
      if (conv)
        {
          dshape[0] = m->down->shape[0];
          dshape[1] = m->down->shape[1];
          dshape[2] = m->down->ndim == 4 ? m->down->shape[2] : 1;
          dshape[3] = m->down->ndim == 4 ? m->down->shape[3] : 1;
          ushape[0] = m->up->shape[0];
          ushape[1] = m->up->shape[1];
          ushape[2] = ushape[3] = 1;
          dn = un = 4;
        }
      else
        {
          dshape[0] = m->down->shape[0];
          dshape[1] = m->down->numel / m->down->shape[0];
          ushape[0] = m->up->shape[0];
          ushape[1] = m->up->numel / m->up->shape[0];
          dn = un = 2;
        }
      gboolean fits = conv ? (dshape[1] == w->shape[1] && ushape[0] == w->shape[0] && dshape[2] <= w->shape[2])
                           : (dshape[1] == w->shape[1] && ushape[0] == w->shape[0]);
      if (!fits || ushape[1] != dshape[0])
        {
          g_autofree char *ws = dl_tensor_describe (w);
          g_set_error (error, DL_ERROR, DL_ERROR_INVALID_FILE,
                       "“%s”: the matrices of %s (rank %d) do not fit the model's %s", dl_lora_file_get_path (file),
                       m->file_name, m->rank, ws);
          return FALSE;
        }
      g_autoptr (DlTensor) down = upload (file, m->down, dn, dshape, device, error);
      g_autoptr (DlTensor) up = down ? upload (file, m->up, un, ushape, device, error) : NULL;
      if (!up)
        return FALSE;
      float scale = strength * m->alpha / (float)m->rank;
      dl_params_add_adapter (params, m->target, down, up, scale);
      if (tensors)
        {
          g_hash_table_replace (tensors, g_strdup (m->down->name), dl_tensor_ref (down));
          g_hash_table_replace (tensors, g_strdup (m->up->name), dl_tensor_ref (up));
        }
    }
  return TRUE;
}
