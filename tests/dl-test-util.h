/* dl-test-util.h: what every engine test shares. */
#pragma once

#include <glib.h>

#include "dl-error.h"
#include "ops/dl-ops.h"
#include "ref.h"
#include "tensor/dl-tensor.h"
#include "vk/dl-device.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

/* The device every test in this process uses (created on first call; DREAMLOOM_DEVICE
 * and DREAMLOOM_VALIDATION apply).  Aborts the test if there is none. */
DlDevice *dl_test_device (void);
/* A recorder on that device, shared by the tests of this process. */
DlRecorder *dl_test_recorder (void);

/* g_test_init + our defaults. */
void dl_test_init (int *argc, char ***argv);
/* Register a test; after it runs, any new Vulkan validation message fails it. */
void dl_test_add (const char *path, void (*func) (void));
void dl_test_add_data (const char *path, gconstpointer data, void (*func) (gconstpointer));
/* For tests that provoke validation messages on purpose: accept those seen so far. */
void dl_test_acknowledge_validation (void);
/* g_test_run, then free the device and check validation once more. */
int dl_test_run (void);

/* n uniform floats in [lo, hi), reproducible for a seed. */
float *dl_test_random (gsize n, guint32 seed, float lo, float hi);

/* Every |got - want| <= atol + rtol * |want|?  On failure prints the worst element
 * (index, both values, errors), the NMSE and how many elements failed.  NaN in both
 * places counts as equal. */
gboolean dl_test_close (const char *what, const float *got, const float *want, gsize n, double atol, double rtol);
#define dl_test_assert_close(what, got, want, n, atol, rtol) \
  g_assert_true (dl_test_close ((what), (got), (want), (n), (atol), (rtol)))

/* NMSE = sum (got-want)^2 / sum want^2 */
double dl_test_nmse (const float *got, const float *want, gsize n);

/* Upload / download with every error fatal to the test. */
DlTensor *dl_test_tensor (const char *name, DlDType dtype, int ndim, const int64_t *shape, const float *data);
float *dl_test_download (DlTensor *t);
/* Finish the shared recorder, failing the test on error. */
void dl_test_finish (void);

/* ---- gradients against finite differences (CPU references only) ----
 *
 * `loss` recomputes the reference forward from the current contents of the input
 * arrays and returns a scalar, in double; the usual choice is L = sum(out * R) for a
 * fixed random R, whose gradient with respect to `out` is R.  The checks perturb
 * x in place (restoring it) and compare with the analytic gradient `grad`. */
typedef double (*DlTestLossFunc) (gpointer user_data);

/* Central differences, element by element: all of x when n <= max_checks, else
 * max_checks elements picked at random.  Passes when every
 * |fd - grad| <= atol + rtol * max(|fd|, |grad|).  With `precise`, the 4-point
 * formula (for ops with curvature: softmax, norms, GEGLU). */
gboolean dl_test_fd_check (const char *what, float *x, gsize n, const float *grad, DlTestLossFunc loss,
                           gpointer user_data, double eps, double atol, double rtol, gsize max_checks,
                           gboolean precise);
/* One directional derivative for big tensors: <grad, v> against
 * [L(x + eps v) - L(x - eps v)] / 2 eps for a random unit-variance v. */
gboolean dl_test_fd_directional (const char *what, float *x, gsize n, const float *grad, DlTestLossFunc loss,
                                 gpointer user_data, double eps, double rtol, guint32 seed);
#define dl_test_assert_fd(...) g_assert_true (dl_test_fd_check (__VA_ARGS__))

/* Path of a file under ../shared/golden (or $DREAMLOOM_GOLDEN_DIR), or NULL when
 * it is absent. */
char *dl_test_golden_path (const char *relative);

/* Remove a file or a folder with everything in it (symlinks are removed, never
 * followed): the tests' scratch space. */
void dl_test_remove_tree (const char *path);

/* `ok` is FALSE and *error is a DL_ERROR with `code` (its message logged); clears it. */
void dl_test_expect_error (gboolean ok, GError **error, int code);
/* Report the whole program as skipped (a TAP "1..0 # SKIP" plan, which meson
 * counts as SKIP, never as a pass) and return the exit status to use. */
int dl_test_skip_all (const char *reason);

G_END_DECLS
