/* dl-file-util.h: file-system chores shared by the engine, the commands and
 * the tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Remove a file or a folder with everything in it.  Symbolic links are removed,
 * never followed.  Errors are ignored (what can be removed is). */
void dl_file_remove_tree (const char *path);

/* The file name without its folder and its last extension ("a/my-cat.pt" ->
 * "my-cat"): the name A1111 lists embeddings, hypernetworks and LoRAs by
 * (os.path.splitext of the file name). */
char *dl_file_stem (const char *path);

/* A model's name as A1111 shows it: the file name without ".safetensors" or
 * ".ckpt" (a folder keeps its name). */
char *dl_model_name (const char *path);

/* Copy `source` to `dest` through a temporary sibling renamed into place:
 * `dest` is whole or untouched.  Errors name `dest`. */
gboolean dl_file_copy_atomically (const char *source, const char *dest, GError **error);

/* A path as a person reads it: ~/Pictures/dogs rather than /home/me/Pictures/dogs. */
char *dl_file_tilde_path (const char *path);

G_END_DECLS
