#pragma once

#include <adwaita.h>

#include "dl-application.h"

G_BEGIN_DECLS

#define DL_TYPE_WINDOW (dl_window_get_type ())
G_DECLARE_FINAL_TYPE (DlWindow, dl_window, DL, WINDOW, AdwApplicationWindow)

DlWindow *dl_window_new (DlApplication *app);
/* What the window says about the GPU (for tests). */
const char *dl_window_get_device_text (DlWindow *self);

G_END_DECLS
