/* `dreamloom devices`: one block per Vulkan device, and which one would be used. */
#include "dl-cli.h"

#include "vk/dl-device.h"

#include <stdio.h>

int
dl_cli_devices (int argc, char **argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- list Vulkan devices");
  if (!dl_cli_parse (ctx, &argc, &argv, "devices"))
    return 2;

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) infos = dl_device_list (&error);
  if (!infos)
    return dl_cli_fail ("devices", error);
  if (infos->len == 0)
    {
      fprintf (stderr, "dreamloom devices: no Vulkan device found (install mesa-vulkan-drivers for a CPU fallback)\n");
      return 1;
    }
  for (guint i = 0; i < infos->len; i++)
    {
      g_autofree char *block = dl_device_info_describe (g_ptr_array_index (infos, i));
      printf ("%s%s", i ? "\n" : "", block);
    }
  guint chosen;
  if (dl_device_choose (infos, NULL, &chosen, &error))
    {
      const DlDeviceInfo *info = g_ptr_array_index (infos, chosen);
      printf ("\nDreamloom would use device %u (%s)%s\n", chosen, info->name,
              g_getenv ("DREAMLOOM_DEVICE") ? ", as DREAMLOOM_DEVICE asks" : "");
      if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU)
        printf ("Note: this is a CPU implementation of Vulkan; it is fine for tests, far too slow for training.\n");
    }
  else
    printf ("\n%s\n", error->message);
  return 0;
}
