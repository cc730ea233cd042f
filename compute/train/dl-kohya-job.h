/* dl-kohya-job.h: a training run written as kohya sd-scripts takes it, so that
 * a machine with several GPUs can run it with `accelerate launch`: the images
 * with their captions, sd-scripts' dataset config, a train.sh with the command
 * line of the matching script (train_network.py for LoRA, train_db.py for
 * DreamBooth, train_textual_inversion.py for Textual Inversion) and a
 * README.txt.  Every Dreamloom setting with an sd-scripts equivalent becomes
 * its flag; the others are listed, with their values, in a comment at the top
 * of train.sh.
 *
 * The folder:
 *   train/             a copy of every training image (hard link where the file
 *                      system allows) and its caption in <stem>.txt
 *   class/             DreamBooth with a class prompt: the class images found
 *                      in the settings' class folder (sd-scripts generates none)
 *   dataset.toml       sd-scripts' dataset config (library/config_util.py)
 *   sample_prompts.txt the preview prompts, when the settings have any
 *   train.sh           `SD_SCRIPTS=/path/to/sd-scripts sh train.sh`
 *   README.txt         how to run it, what it writes */
#pragma once

#include <glib.h>

#include "train/dl-train-settings.h"

G_BEGIN_DECLS

/* Write the job for the settings `s` (taken as dl_train_settings_validate
 * accepted them; s->images is not read: the images are `image_paths`) into
 * `dir`, which must not exist or be empty.  captions[i] (captions may be NULL,
 * an entry NULL or empty) is image i's caption; images without one take
 * s->instance_prompt, or have no caption file.  The folder is built in a
 * hidden sibling ".<name>.partial" and renamed into place, so that `dir`
 * appears complete or not at all.  Errors are one line naming the file or
 * setting: a hypernetwork (sd-scripts has no trainer for A1111's), a missing
 * image, an image type sd-scripts does not read, a non-empty `dir`. */
gboolean dl_kohya_job_write (const DlTrainSettings *s, const char *const *image_paths, const char *const *captions,
                             guint n_images, const char *dir, GError **error);

G_END_DECLS
