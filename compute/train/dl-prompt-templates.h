/* dl-prompt-templates.h: the Textual Inversion paper's prompt lists
 * (data/prompt-templates/object.txt and style.txt, built into the program):
 * TI's default training templates, the trainer's preview prompts and the
 * window's Previews page all read them from here. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The placeholder the template lines use for the concept. */
#define DL_PROMPT_PLACEHOLDER "S*"

/* The object lines, in order (the 27 lines of textual_inversion.py's imagenet_templates_small). */
const char *const *dl_prompt_templates_object (void);

/* The style lines (imagenet_style_templates_small). */
const char *const *dl_prompt_templates_style (void);

/* "style" gives the style lines, NULL or "object" the object lines; anything else NULL. */
const char *const *dl_prompt_templates_builtin (const char *name);

/* `line` with every S* replaced by `token` ("a photo of a S*" -> "a photo of a sks"); an empty
 * or NULL token leaves S* as it is. */
char *dl_prompt_template_apply (const char *line, const char *token);

/* Textual Inversion's training templates for a --template value: "object" (or NULL) and "style" are the
 * built-in lists as A1111's subject_filewords.txt / style_filewords.txt write them (S* -> [name],
 * ", [filewords]" appended); anything else is a UTF-8 file of one template a line (A1111
 * modules/textual_inversion/dataset.py: stripped, empty lines skipped).  NULL-ended; an error names the
 * file when it cannot be read, is not UTF-8 or has no line. */
char **dl_ti_templates_load (const char *template_file, GError **error);

G_END_DECLS
