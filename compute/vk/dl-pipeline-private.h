#pragma once

#include "dl-device-private.h"
#include "dl-pipeline.h"
#include "dl-spirv-reflect.h"

struct _DlPipeline
{
  char *name; /* shader name plus spec constants, for profiles and debug labels */
  VkShaderModule module;
  VkPipelineLayout layout;
  VkDescriptorSetLayout set_layout; /* owned by the device (shared per binding count) */
  VkPipeline pipeline;
  DlSpirvInterface iface;
};
