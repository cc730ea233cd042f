#include "dl-config.h"

#include "scripted-run-backend.h"

#include "dl-test-preview-backend.h"

DlPreviewBackend *
scripted_run_backend (void)
{
  return DL_PREVIEW_BACKEND (dl_test_preview_backend_new ());
}

gboolean
scripted_run_backend_is_engine (void)
{
  return FALSE;
}
