/* dl-cli-grad.c: `dreamloom grad` — one training forward/backward on a given
 * batch, gradients written to a safetensors file (see dl-sd-grad.h). */
#include "dl-config.h"

#include "dl-cli.h"

#include <stdio.h>

#include "nn/dl-lora.h"
#include "train/dl-sd-grad.h"
#include "vk/dl-device.h"

int
dl_cli_grad (int argc, char **argv)
{
  g_autofree char *model = NULL, *config = NULL, *batch_path = NULL, *out = NULL, *lora = NULL;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Checkpoint file or diffusers folder", "M" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "diffusers-style config folder for a single-file model", "DIR" },
    { "batch", 'b', 0, G_OPTION_ARG_FILENAME, &batch_path,
      "Batch (.safetensors): timesteps, latents+noise or "
      "noisy_latents+target, input_ids or context",
      "B" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Where to write loss and grad.<name> (.safetensors)", "G" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME, &lora, "Train only this LoRA file's tensors", "L" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- one training step's gradients");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!dl_cli_parse (ctx, &argc, &argv, "grad"))
    return 2;
  g_autoptr (GError) error = NULL;
  if (!model || !batch_path || !out)
    {
      g_set_error_literal (&error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "--model, --batch and --out are required");
      return dl_cli_fail ("grad", error);
    }
  g_autoptr (DlSafetensors) batch = dl_safetensors_open (batch_path, &error);
  if (!batch)
    return dl_cli_fail ("grad", error);
  g_autoptr (DlDevice) device = dl_device_new (NULL, &error);
  if (!device)
    return dl_cli_fail ("grad", error);
  g_autoptr (DlSdModel) m = dl_sd_model_load (device, model, config, &error);
  if (!m)
    return dl_cli_fail ("grad", error);
  g_autoptr (GHashTable) lora_tensors = NULL;
  g_autoptr (DlLoraFile) lf = NULL;
  if (lora)
    {
      lf = dl_lora_file_open (lora, &error);
      lora_tensors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)dl_tensor_unref);
      g_autoptr (GPtrArray) unmatched = NULL;
      if (!lf || !dl_lora_attach (dl_sd_model_get_params (m), lf, 1.0f, lora_tensors, &unmatched, &error))
        return dl_cli_fail ("grad", error);
      for (guint i = 0; unmatched && i < unmatched->len; i++)
        fprintf (stderr, "dreamloom grad: %s: module %s matches nothing in the model; ignored\n", lora,
                 (char *)unmatched->pdata[i]);
    }
  g_autoptr (DlSafetensorsWriter) w = dl_safetensors_writer_new ();
  if (!dl_sd_grad (m, batch, lora_tensors, w, &error) || !dl_safetensors_writer_write (w, out, &error))
    return dl_cli_fail ("grad", error);
  return 0;
}
