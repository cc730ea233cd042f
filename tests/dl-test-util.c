#include "dl-test-util.h"

#include "io/dl-file-util.h"

#include <glib/gstdio.h>

#include <math.h>
#include <string.h>
#include <stdio.h>

static DlDevice *test_device;
static DlRecorder *test_recorder;
static guint validation_seen;

DlDevice *
dl_test_device (void)
{
  if (!test_device)
    {
      g_autoptr (GError) error = NULL;
      test_device = dl_device_new (NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (test_device);
      if (g_getenv ("DREAMLOOM_VALIDATION"))
        g_assert_true (dl_device_has_validation (test_device));
      validation_seen = dl_validation_message_total ();
    }
  return test_device;
}

DlRecorder *
dl_test_recorder (void)
{
  if (!test_recorder)
    {
      g_autoptr (GError) error = NULL;
      test_recorder = dl_recorder_new (dl_test_device (), &error);
      g_assert_no_error (error);
    }
  return test_recorder;
}

void
dl_test_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  g_test_set_nonfatal_assertions ();
}

static void
check_validation (void)
{
  guint now = dl_validation_message_total ();
  if (now != validation_seen)
    {
      g_test_message ("%u Vulkan validation message(s) during this test (printed above)", now - validation_seen);
      g_test_fail ();
      validation_seen = now;
    }
}

void
dl_test_acknowledge_validation (void)
{
  validation_seen = dl_validation_message_total ();
}

typedef struct
{
  void (*plain) (void);
  void (*with_data) (gconstpointer);
  gconstpointer data;
} TestCase;

static void
run_case (gconstpointer p)
{
  const TestCase *tc = p;
  if (tc->plain)
    tc->plain ();
  else
    tc->with_data (tc->data);
  if (test_recorder)
    {
      g_autoptr (GError) error = NULL;
      dl_recorder_finish (test_recorder, &error);
      g_assert_no_error (error);
    }
  check_validation ();
}

void
dl_test_add (const char *path, void (*func) (void))
{
  TestCase *tc = g_new0 (TestCase, 1);
  tc->plain = func;
  g_test_add_data_func_full (path, tc, run_case, g_free);
}

void
dl_test_add_data (const char *path, gconstpointer data, void (*func) (gconstpointer))
{
  TestCase *tc = g_new0 (TestCase, 1);
  tc->with_data = func;
  tc->data = data;
  g_test_add_data_func_full (path, tc, run_case, g_free);
}

int
dl_test_run (void)
{
  int status = g_test_run ();
  if (test_recorder)
    g_clear_pointer (&test_recorder, dl_recorder_free);
  if (test_device)
    {
      /* messages at teardown (leaked Vulkan objects, ...) count too */
      guint before = dl_validation_message_total ();
      g_clear_pointer (&test_device, dl_device_free);
      if (dl_validation_message_total () != before)
        {
          fprintf (stderr, "Vulkan validation messages while destroying the device (printed above)\n");
          status = status ? status : 1;
        }
    }
  return status;
}

float *
dl_test_random (gsize n, guint32 seed, float lo, float hi)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  float *x = g_new (float, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    x[i] = (float)g_rand_double_range (r, lo, hi);
  return x;
}

double
dl_test_nmse (const float *got, const float *want, gsize n)
{
  double num = 0, den = 0;
  for (gsize i = 0; i < n; i++)
    {
      double d = (double)got[i] - want[i];
      num += d * d;
      den += (double)want[i] * want[i];
    }
  return den > 0 ? num / den : num;
}

gboolean
dl_test_close (const char *what, const float *got, const float *want, gsize n, double atol, double rtol)
{
  gsize bad = 0, worst = 0;
  double worst_ratio = -1;
  for (gsize i = 0; i < n; i++)
    {
      double g = got[i], w = want[i];
      double ratio;
      if (isnan (g) && isnan (w))
        ratio = 0;
      else if (isnan (g) || isnan (w))
        ratio = INFINITY;
      else if (isinf (w) || isinf (g))
        ratio = g == w ? 0 : INFINITY;
      else
        ratio = fabs (g - w) / (atol + rtol * fabs (w));
      if (ratio > 1)
        bad++;
      if (ratio > worst_ratio)
        {
          worst_ratio = ratio;
          worst = i;
        }
    }
  if (bad == 0)
    return TRUE;
  double aerr = fabs ((double)got[worst] - want[worst]);
  fprintf (stderr,
           "%s: %zu of %zu elements outside atol %.3g + rtol %.3g\n"
           "  worst at [%zu]: got %.9g, want %.9g (abs err %.3g, rel err %.3g); NMSE %.3g\n",
           what, bad, n, atol, rtol, worst, (double)got[worst], (double)want[worst], aerr,
           want[worst] != 0 ? aerr / fabs ((double)want[worst]) : INFINITY, dl_test_nmse (got, want, n));
  return FALSE;
}

DlTensor *
dl_test_tensor (const char *name, DlDType dtype, int ndim, const int64_t *shape, const float *data)
{
  g_autoptr (GError) error = NULL;
  DlTensor *t = dl_tensor_new (dl_test_device (), name, dtype, ndim, shape, &error);
  g_assert_no_error (error);
  if (data)
    {
      dl_tensor_upload_f32 (t, data, &error);
      g_assert_no_error (error);
    }
  return t;
}

float *
dl_test_download (DlTensor *t)
{
  g_autoptr (GError) error = NULL;
  float *x = dl_tensor_download_f32 (t, &error);
  g_assert_no_error (error);
  return x;
}

void
dl_test_finish (void)
{
  g_autoptr (GError) error = NULL;
  dl_recorder_finish (dl_test_recorder (), &error);
  g_assert_no_error (error);
}

char *
dl_test_golden_path (const char *relative)
{
  const char *dir = g_getenv ("DREAMLOOM_GOLDEN_DIR");
  g_autofree char *path = g_build_filename (dir ? dir : DL_TEST_GOLDEN_DIR, relative, NULL);
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return NULL;
  return g_steal_pointer (&path);
}

int
dl_test_skip_all (const char *reason)
{
  printf ("1..0 # SKIP skipped: %s\n", reason);
  return 0;
}

static double
fd_at (float *x, gsize i, DlTestLossFunc loss, gpointer user_data, double eps, gboolean precise)
{
  float saved = x[i];
  /* take the step actually representable in float, so rounding of x + eps does
   * not bias the quotient */
  float xp = (float)(saved + eps), xm = (float)(saved - eps);
  double h = ((double)xp - (double)xm) / 2;
  x[i] = xp;
  double lp = loss (user_data);
  x[i] = xm;
  double lm = loss (user_data);
  double d = (lp - lm) / (2 * h);
  if (precise)
    {
      float xp2 = (float)(saved + 2 * eps), xm2 = (float)(saved - 2 * eps);
      x[i] = xp2;
      double lp2 = loss (user_data);
      x[i] = xm2;
      double lm2 = loss (user_data);
      double h2 = ((double)xp2 - (double)xm2) / 4;
      double d2 = (lp2 - lm2) / (4 * h2);
      d = (4 * d - d2) / 3; /* Richardson: cancels the h^2 error term */
    }
  x[i] = saved;
  return d;
}

gboolean
dl_test_fd_check (const char *what, float *x, gsize n, const float *grad, DlTestLossFunc loss, gpointer user_data,
                  double eps, double atol, double rtol, gsize max_checks, gboolean precise)
{
  g_autoptr (GRand) r = g_rand_new_with_seed ((guint32)n * 2654435761u);
  gsize checks = MIN (n, max_checks), bad = 0, worst = 0;
  double worst_ratio = -1, worst_fd = 0;
  for (gsize c = 0; c < checks; c++)
    {
      gsize i = n <= max_checks ? c : (gsize)g_rand_int_range (r, 0, (gint32)n);
      double d = fd_at (x, i, loss, user_data, eps, precise);
      double g = grad[i];
      double ratio = fabs (d - g) / (atol + rtol * MAX (fabs (d), fabs (g)));
      if (!(ratio <= 1))
        bad++;
      if (!(ratio <= worst_ratio))
        {
          worst_ratio = ratio;
          worst = i;
          worst_fd = d;
        }
    }
  if (bad == 0)
    return TRUE;
  fprintf (stderr,
           "%s: %zu of %zu gradient checks outside atol %.3g + rtol %.3g\n"
           "  worst at [%zu]: analytic %.9g, finite difference %.9g\n",
           what, bad, checks, atol, rtol, worst, (double)grad[worst], worst_fd);
  return FALSE;
}

gboolean
dl_test_fd_directional (const char *what, float *x, gsize n, const float *grad, DlTestLossFunc loss, gpointer user_data,
                        double eps, double rtol, guint32 seed)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  g_autofree float *saved = g_memdup2 (x, n * sizeof (float));
  g_autofree double *v = g_new (double, n);
  double analytic = 0, gnorm = 0;
  for (gsize i = 0; i < n; i++)
    {
      /* Box-Muller is overkill here: a centred uniform has the right properties */
      v[i] = g_rand_double_range (r, -1.7320508, 1.7320508);
      analytic += grad[i] * v[i];
      gnorm += (double)grad[i] * grad[i];
    }
  for (gsize i = 0; i < n; i++)
    x[i] = (float)(saved[i] + eps * v[i]);
  double lp = loss (user_data);
  for (gsize i = 0; i < n; i++)
    x[i] = (float)(saved[i] - eps * v[i]);
  double lm = loss (user_data);
  memcpy (x, saved, n * sizeof (float));
  double fd = (lp - lm) / (2 * eps);
  /* scale the tolerance by what <grad, v> could be, not by its (possibly tiny) value */
  double scale = sqrt (gnorm) + fabs (analytic);
  if (fabs (fd - analytic) <= rtol * scale)
    return TRUE;
  fprintf (stderr, "%s: directional derivative %.9g, finite difference %.9g (tolerance %.3g)\n", what, analytic, fd,
           rtol * scale);
  return FALSE;
}

void
dl_test_remove_tree (const char *path)
{
  dl_file_remove_tree (path);
}

void
dl_test_expect_error (gboolean ok, GError **error, int code)
{
  g_assert_false (ok);
  g_assert_error (*error, DL_ERROR, code);
  g_test_message ("%s", (*error)->message);
  g_clear_error (error);
}
