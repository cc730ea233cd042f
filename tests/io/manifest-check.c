#include "manifest-check.h"

#include <string.h>

#include "dl-test-util.h"

JsonParser *
mc_load_manifest (const char *relative)
{
  g_autofree char *path = dl_test_golden_path (relative);
  g_assert_nonnull (path);
  JsonParser *p = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_assert_true (json_parser_load_from_file (p, path, &error));
  return p;
}

void
mc_check_against_diffusers_manifest (DlCheckpoint *ck, JsonObject *files, const guint64 counts[DL_N_COMPONENTS])
{
  const char *comp_files[DL_N_COMPONENTS] = { "unet/diffusion_pytorch_model.safetensors",
                                              "vae/diffusion_pytorch_model.safetensors",
                                              "text_encoder/model.safetensors", "text_encoder_2/model.safetensors" };
  guint64 params[DL_N_COMPONENTS] = { 0 };
  guint counted[DL_N_COMPONENTS] = { 0 };
  for (guint i = 0; i < dl_checkpoint_get_n_params (ck); i++)
    {
      const DlCheckpointParam *p = dl_checkpoint_get_param (ck, i);
      if (!json_object_has_member (files, comp_files[p->component]))
        g_error ("%s: the manifest has no %s", p->name, comp_files[p->component]);
      JsonObject *f = json_object_get_object_member (files, comp_files[p->component]);
      const char *key = p->name + strlen (dl_component_name (p->component)) + 1;
      if (!json_object_has_member (f, key))
        g_error ("%s: %s is not in the diffusers manifest", p->name, key);
      JsonArray *shape = json_object_get_array_member (json_object_get_object_member (f, key), "shape");
      g_assert_cmpint (json_array_get_length (shape), ==, p->ndim);
      for (int d = 0; d < p->ndim; d++)
        if (json_array_get_int_element (shape, (guint)d) != p->shape[d])
          g_error ("%s: dimension %d is %" G_GINT64_FORMAT ", the manifest says %" G_GINT64_FORMAT, p->name, d,
                   p->shape[d], json_array_get_int_element (shape, (guint)d));
      params[p->component] += (guint64)p->numel;
      counted[p->component]++;
    }
  /* and nothing of the manifest is left out */
  for (int c = 0; c < DL_N_COMPONENTS; c++)
    {
      if (json_object_has_member (files, comp_files[c]))
        g_assert_cmpuint (counted[c], ==, json_object_get_size (json_object_get_object_member (files, comp_files[c])));
      else
        g_assert_cmpuint (counted[c], ==, 0);
      if (params[c] != counts[c])
        g_error ("%s: %" G_GUINT64_FORMAT " parameters, expected %" G_GUINT64_FORMAT,
                 dl_component_name ((DlComponent)c), params[c], counts[c]);
    }
}

void
mc_check_write_plan (GPtrArray *plan, const char *file, JsonObject *keys, McEntryCheck check)
{
  guint n = 0;
  for (guint i = 0; i < plan->len; i++)
    {
      const DlCheckpointWriteEntry *e = plan->pdata[i];
      if (g_strcmp0 (e->file, file) != 0)
        continue;
      n++;
      if (!json_object_has_member (keys, e->key))
        g_error ("%s is written as %s, which the manifest does not have", e->name, e->key);
      JsonArray *shape = json_object_get_array_member (json_object_get_object_member (keys, e->key), "shape");
      if (json_array_get_length (shape) != (guint)e->ndim)
        g_error ("%s: %d dimensions, the manifest has %u", e->key, e->ndim, json_array_get_length (shape));
      for (int d = 0; d < e->ndim; d++)
        g_assert_cmpint (json_array_get_int_element (shape, (guint)d), ==, e->shape[d]);
      if (check)
        check (e);
    }
  g_assert_cmpuint (n, ==, json_object_get_size (keys));
}
