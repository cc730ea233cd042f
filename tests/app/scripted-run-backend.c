#include "dl-config.h"

#include "scripted-run-backend.h"

#include "dl-engine-session.h"

DlPreviewBackend *
scripted_run_backend (void)
{
  return DL_PREVIEW_BACKEND (dl_engine_session_new ());
}

gboolean
scripted_run_backend_is_engine (void)
{
  return TRUE;
}
