#pragma once

#include <adwaita.h>

#include "dl-engine-session.h"

G_BEGIN_DECLS

#define DL_TYPE_APPLICATION (dl_application_get_type ())
G_DECLARE_FINAL_TYPE (DlApplication, dl_application, DL, APPLICATION, AdwApplication)

DlApplication *dl_application_new (void);
/* The app's engine session (device, base model, training): one per process. */
DlEngineSession *dl_application_get_engine_session (DlApplication *self);

G_END_DECLS
