/* test-loss-log.c: the run folder's losses.csv: written and read back to the
 * bit (non-finite losses included), a run that went back drops what came
 * after, damaged lines are skipped, a missing file is an empty log. */
#include "dl-config.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "dl-test-util.h"
#include "train/dl-loss-log.h"

static void
test_round_trip (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("dl-loss-log-XXXXXX", &error);
  g_assert_no_error (error);
  g_autoptr (GArray) log = dl_loss_log_new ();
  /* values no shorter decimal than 17 digits holds */
  for (int i = 1; i <= 6; i++)
    dl_loss_log_add (log, i, 1.0 / (3.0 * i), 1e-4 * (7 - i) / 7.0);
  dl_loss_log_add (log, 7, NAN, 1e-5);
  dl_loss_log_add (log, 8, INFINITY, 1e-5);
  /* the run went back to step 5 (a rollback): 5 to 8 are dropped */
  dl_loss_log_add (log, 5, 0.25, 5e-5);
  g_assert_cmpuint (log->len, ==, 5);
  g_assert_cmpint (g_array_index (log, DlLossEntry, 4).step, ==, 5);
  g_assert_cmpfloat (g_array_index (log, DlLossEntry, 4).loss, ==, 0.25);
  dl_loss_log_add (log, 6, NAN, 4e-5);
  dl_loss_log_add (log, 7, -INFINITY, 3e-5);

  g_assert_true (dl_loss_log_write (log, dir, &error));
  g_assert_no_error (error);
  g_autoptr (GArray) back = dl_loss_log_read (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (back->len, ==, log->len);
  for (guint i = 0; i < log->len; i++)
    {
      const DlLossEntry *a = &g_array_index (log, DlLossEntry, i), *b = &g_array_index (back, DlLossEntry, i);
      g_assert_cmpint (a->step, ==, b->step);
      g_assert_true (isnan (a->loss) ? isnan (b->loss) : a->loss == b->loss);
      g_assert_cmpfloat (a->lr, ==, b->lr);
    }
  g_autofree char *text = dl_loss_log_format (log);
  g_assert_true (g_str_has_prefix (text, "step,loss,lr\n1,"));
  g_assert_nonnull (strstr (text, "\n6,nan,"));
  g_assert_nonnull (strstr (text, "\n7,-inf,"));

  /* truncation keeps what a resumed state knows */
  dl_loss_log_truncate (back, 3);
  g_assert_cmpuint (back->len, ==, 3);

  /* damaged lines (a torn last line, stray text) cost only themselves */
  g_autofree char *path = g_build_filename (dir, DL_LOSS_LOG_NAME, NULL);
  g_assert_true (
    g_file_set_contents (path, "step,loss,lr\n1,0.5,1e-4\nhello\n2,0.25\n2,x,1\n3,0.125,1e-4\n4,0.1", -1, NULL));
  g_autoptr (GArray) damaged = dl_loss_log_read (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (damaged->len, ==, 2);
  g_assert_cmpint (g_array_index (damaged, DlLossEntry, 1).step, ==, 3);

  /* no file: an empty log (a run of an older version) */
  g_unlink (path);
  g_autoptr (GArray) none = dl_loss_log_read (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);
  dl_test_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  dl_test_init (&argc, &argv);
  dl_test_add ("/train/loss-log/round-trip", test_round_trip);
  return dl_test_run ();
}
