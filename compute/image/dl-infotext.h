/* dl-infotext.h: AUTOMATIC1111's "parameters" text, the generation settings a
 * PNG carries so that A1111 (PNG Info), ComfyUI and image sites read them back
 * (A1111 modules/processing.py create_infotext).  The one writer of it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  const char *name; /* the file stem A1111 lists the network by */
  double strength;
} DlInfotextNetwork;

typedef struct
{
  const char *prompt;
  const char *negative;           /* may be NULL */
  const DlInfotextNetwork *loras; /* appended to the prompt as <lora:name:strength> */
  guint n_loras;
  const DlInfotextNetwork *hypernets; /* then as <hypernet:name:strength> (A1111's extra network tag;
                                       * A1111 reads its older "Hypernet: name" entries back as that) */
  guint n_hypernets;
  int steps;
  const char *sampler; /* A1111's name, e.g. "DPM++ 2M Karras" */
  double cfg_scale;
  guint64 seed;
  int width, height;
  const char *model;      /* the model's name (file stem) */
  const char *model_hash; /* A1111's short hash (10 hex), may be NULL */
  int clip_skip;          /* written when > 1 */
} DlInfotext;

/* "prompt <lora:x:0.8> <hypernet:y:1>\nNegative prompt: ...\nSteps: 20, Sampler: ..., CFG scale: 7,
 * Seed: 42, Size: 512x512, Model hash: ..., Model: ..., Clip skip: 2, Version: Dreamloom X" */
char *dl_infotext_format (const DlInfotext *info);

G_END_DECLS
