/* `dreamloom bench ops`: per op and SD-shaped size, time and throughput. */
#include "dl-bench-ops.h"
#include "dl-cli.h"
#include "dl-error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _DlBenchOps
{
  DlDevice *dev;
  DlRecorder *rec;
  int iters;
  gboolean small;
  char **filter; /* op names to run, NULL for all */
};

static const struct
{
  const char *name;
  DlBenchOpsFamily func;
} families[] = {
  { "basic", dl_bench_ops_basic },
  { "attn", dl_bench_ops_attn },
  { "norm", dl_bench_ops_norm },
  { "conv", dl_bench_ops_conv },
};

DlDevice *
dl_bench_ops_get_device (DlBenchOps *b)
{
  return b->dev;
}

gboolean
dl_bench_ops_is_small (DlBenchOps *b)
{
  return b->small;
}

DlTensor *
dl_bench_ops_tensor (DlBenchOps *b, const char *name, DlDType dtype, int ndim, const int64_t *shape, GError **error)
{
  g_autoptr (DlTensor) t = dl_tensor_new (b->dev, name, dtype, ndim, shape, error);
  if (!t)
    return NULL;
  gsize n = (gsize)dl_tensor_numel (t);
  g_autofree float *x = g_try_new (float, MAX (n, 1));
  if (!x)
    {
      g_set_error (error, DL_ERROR, DL_ERROR_OUT_OF_HOST_MEMORY, "Out of host memory filling %s", name);
      return NULL;
    }
  for (gsize i = 0; i < n; i++)
    x[i] = 0.01f * (float)((i * 2654435761u) % 2001) / 1000.0f - 0.01f;
  if (dtype == DL_DTYPE_I32)
    for (gsize i = 0; i < n; i++)
      x[i] = (float)(i % 77);
  if (!dl_tensor_upload_f32 (t, x, error))
    return NULL;
  return g_steal_pointer (&t);
}

static gboolean
wanted (DlBenchOps *b, const char *op)
{
  if (!b->filter)
    return TRUE;
  for (char **f = b->filter; *f; f++)
    if (g_str_has_prefix (op, *f))
      return TRUE;
  return FALSE;
}

gboolean
dl_bench_ops_wants (DlBenchOps *b, const char *op)
{
  return wanted (b, op);
}

gboolean
dl_bench_ops_case (DlBenchOps *b, const char *op, const char *shape, double flops, double bytes,
                   DlBenchRecordFunc record, gpointer data, GError **error)
{
  if (!wanted (b, op))
    return TRUE;
  /* warm-up: pipeline creation stays out of the figures */
  if (!record (b->rec, data, error) || !dl_recorder_finish (b->rec, error))
    return FALSE;
  g_autofree double *t = g_new0 (double, b->iters);
  dl_recorder_set_profiling (b->rec, TRUE);
  gboolean ok = TRUE;
  for (int i = 0; i < b->iters && ok; i++)
    {
      dl_recorder_reset_profile (b->rec);
      ok = record (b->rec, data, error) && dl_recorder_finish (b->rec, error);
      t[i] = dl_recorder_get_profile_total_ns (b->rec) * 1e-9;
    }
  dl_recorder_set_profiling (b->rec, FALSE);
  if (!ok)
    return FALSE;
  double s = dl_cli_median (t, b->iters);
  const DlDeviceInfo *info = dl_device_get_info (b->dev);

  g_autofree char *gf = flops > 0 ? g_strdup_printf ("%9.1f", flops / s * 1e-9) : g_strdup ("        -");
  g_autofree char *gb = bytes > 0 ? g_strdup_printf ("%8.1f", bytes / s * 1e-9) : g_strdup ("       -");
  const char *sep = "";
  GString *peak = g_string_new (NULL);
  if (flops > 0 && info->peak_gflops_f32 > 0)
    {
      g_string_append_printf (peak, "%.1f%% fp32", 100.0 * flops / s * 1e-9 / info->peak_gflops_f32);
      sep = ", ";
    }
  if (bytes > 0 && info->peak_gbps > 0)
    g_string_append_printf (peak, "%s%.1f%% bw", sep, 100.0 * bytes / s * 1e-9 / info->peak_gbps);
  printf ("%-26s %-34s %10.3f %s %s  %s\n", op, shape, s * 1e3, gf, gb, peak->len ? peak->str : "-");
  fflush (stdout);
  g_string_free (peak, TRUE);
  return TRUE;
}

int
dl_cli_bench_ops (int argc, char **argv)
{
  g_autofree char *device_sel = NULL;
  g_auto (GStrv) ops = NULL;
  int iters = 5;
  gboolean small = FALSE;
  GOptionEntry entries[] = {
    { "op", 0, 0, G_OPTION_ARG_STRING_ARRAY, &ops, "Only ops whose name starts with OP (repeatable)", "OP" },
    { "iters", 0, 0, G_OPTION_ARG_INT, &iters, "Timed runs per case; the median is reported (default 5)", "N" },
    { "small", 0, 0, G_OPTION_ARG_NONE, &small, "Scaled-down sizes (always on for CPU devices)", NULL },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_sel, "Device index or name", "DEVICE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- time every op at Stable Diffusion sizes");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!dl_cli_parse (ctx, &argc, &argv, "bench ops"))
    return 2;

  g_autoptr (GError) error = NULL;
  g_autoptr (DlDevice) dev = dl_device_new (device_sel, &error);
  if (!dev)
    return dl_cli_fail ("bench ops", error);
  const DlDeviceInfo *info = dl_device_get_info (dev);
  if (!info->timestamps)
    {
      fprintf (stderr, "dreamloom bench ops: %s cannot time dispatches (no timestamp support)\n", info->name);
      return 1;
    }
  g_autoptr (DlRecorder) rec = dl_recorder_new (dev, &error);
  if (!rec)
    return dl_cli_fail ("bench ops", error);
  DlBenchOps b = {
    .dev = dev,
    .rec = rec,
    .iters = CLAMP (iters, 1, 1000),
    .small = small || info->type == VK_PHYSICAL_DEVICE_TYPE_CPU,
    .filter = ops,
  };

  printf ("Device: %s (%s)%s; median of %d runs\n", info->name, dl_device_type_name (info->type),
          b.small ? "; REDUCED sizes (CPU device or --small): figures are not SD 1.5 at 512²" : "", b.iters);
  printf ("%-26s %-34s %10s %9s %8s  %s\n", "op", "shape", "ms", "GFLOP/s", "GB/s", "of peak");
  for (guint i = 0; i < G_N_ELEMENTS (families); i++)
    if (!families[i].func (&b, &error))
      return dl_cli_fail ("bench ops", error);
  return 0;
}
