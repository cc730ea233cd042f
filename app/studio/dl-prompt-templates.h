/* dl-prompt-templates.h: the Textual Inversion paper's prompt list, shipped in
 * data/prompt-templates/object.txt (compiled into the resources). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The placeholder the template lines use for the concept. */
#define DL_PROMPT_PLACEHOLDER "S*"

/* The template lines, in order (the 27 lines of imagenet_templates_small). */
const char *const *dl_prompt_templates_get (void);

/* `line` with every S* replaced by `token` ("a photo of a S*" -> "a photo of a sks"). */
char *dl_prompt_template_apply (const char *line, const char *token);

G_END_DECLS
