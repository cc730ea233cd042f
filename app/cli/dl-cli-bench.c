/* `dreamloom bench <what>`: speed figures from GPU timestamps.  Benchmarks, not
 * tests: they print numbers and never fail on them. */
#include "dl-cli.h"

#include "dl-error.h"
#include "ops/dl-ops.h"
#include "vk/dl-device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*BenchFunc) (int argc, char **argv);

static int bench_matmul (int argc, char **argv);

static int
bench_sample_sd (int argc, char **argv)
{
  return dl_cli_bench_sd (argc, argv, "sample");
}

static int
bench_train_sd (int argc, char **argv)
{
  return dl_cli_bench_sd (argc, argv, "train-step");
}

static const struct
{
  const char *name;
  BenchFunc func;
  const char *summary;
} benches[] = {
  { "matmul", bench_matmul, "GFLOP/s of the matmul kernel, square and SD-shaped sizes" },
  { "ops", dl_cli_bench_ops, "Every op at SD-shaped sizes: time, GFLOP/s or GB/s" },
  { "sample", bench_sample_sd, "SD 1.5 (or --family sdxl) sampling: s/it, memory, per-op profile" },
  { "train", dl_cli_bench_train,
    "The trainer's step (--method lora|textual-inversion, --family sdxl): s/it, memory plan, per-op" },
  { "train-step", bench_train_sd, "SD 1.5 full UNet training step (fp32): s/it, memory, per-op profile" },
};

int
dl_cli_bench (int argc, char **argv)
{
  if (argc >= 2)
    for (guint i = 0; i < G_N_ELEMENTS (benches); i++)
      if (strcmp (argv[1], benches[i].name) == 0)
        return benches[i].func (argc - 1, argv + 1);
  fprintf (stderr, "Usage: dreamloom bench WHAT [OPTION…]\n\n");
  for (guint i = 0; i < G_N_ELEMENTS (benches); i++)
    fprintf (stderr, "  %-12s %s\n", benches[i].name, benches[i].summary);
  return argc >= 2 && strcmp (argv[1], "--help") == 0 ? 0 : 2;
}

typedef struct
{
  int64_t m, n, k;
  const char *what;
} MatmulSize;

static const MatmulSize default_sizes[] = {
  { 256, 256, 256, "square" },
  { 512, 512, 512, "square" },
  { 1024, 1024, 1024, "square" },
  { 2048, 2048, 2048, "square" },
  { 4096, 320, 320, "SD1.5 64x64 tokens, 320-wide projection" },
  { 4096, 1280, 320, "SD1.5 64x64 tokens, GEGLU up-projection (x4 split)" },
  { 4096, 4096, 40, "SD1.5 self-attention scores, one head (QKᵀ)" },
  { 4096, 40, 4096, "SD1.5 self-attention output, one head (PV)" },
  { 1024, 640, 640, "SD1.5 32x32 tokens, 640-wide projection" },
  { 77, 768, 768, "CLIP text encoder projection" },
};

/* Median seconds of one product d = a · bᵀ, from GPU timestamps. */
static gboolean
time_matmul (DlDevice *dev, DlRecorder *rec, const MatmulSize *s, DlDType dtype, DlMatmulTile tile, int iters,
             double *median_s, DlMatmulTile *used, GError **error)
{
  g_autoptr (DlTensor) a = dl_tensor_new_2d (dev, "bench a", dtype, s->m, s->k, error);
  g_autoptr (DlTensor) b = a ? dl_tensor_new_2d (dev, "bench b", dtype, s->n, s->k, error) : NULL;
  g_autoptr (DlTensor) d = b ? dl_tensor_new_2d (dev, "bench d", DL_DTYPE_F32, s->m, s->n, error) : NULL;
  if (!d)
    return FALSE;
  if (!dl_op_fill (rec, a, 0.5, error) || !dl_op_fill (rec, b, 0.25, error) || !dl_recorder_finish (rec, error))
    return FALSE;

  DlMatmulParams prm = DL_MATMUL_PARAMS_DEFAULT;
  prm.tile = tile;
  /* warm-up: pipeline creation and first-touch costs stay out of the figures */
  if (!dl_op_matmul (rec, d, a, FALSE, b, TRUE, NULL, &prm, error) || !dl_recorder_finish (rec, error))
    return FALSE;

  g_autofree double *t = g_new0 (double, iters);
  dl_recorder_set_profiling (rec, TRUE);
  for (int i = 0; i < iters; i++)
    {
      dl_recorder_reset_profile (rec);
      if (!dl_op_matmul (rec, d, a, FALSE, b, TRUE, NULL, &prm, error) || !dl_recorder_finish (rec, error))
        {
          dl_recorder_set_profiling (rec, FALSE);
          return FALSE;
        }
      t[i] = dl_recorder_get_profile_total_ns (rec) * 1e-9;
    }
  dl_recorder_set_profiling (rec, FALSE);
  *median_s = dl_cli_median (t, iters);

  *used = tile != DL_MATMUL_TILE_AUTO ? tile : dl_matmul_auto_tile (dev, s->m, s->n, 1);
  return TRUE;
}

static gboolean
parse_size (const char *s, MatmulSize *out)
{
  gint64 m, n, k;
  char tail;
  if (sscanf (s, "%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "%c", &m, &n, &k, &tail) != 3 ||
      m <= 0 || n <= 0 || k <= 0)
    return FALSE;
  *out = (MatmulSize){ m, n, k, "custom" };
  return TRUE;
}

static int
bench_matmul (int argc, char **argv)
{
  g_autofree char *dtype_name = NULL, *tile_name = NULL, *device_sel = NULL;
  g_auto (GStrv) sizes = NULL;
  int iters = 5;
  GOptionEntry entries[] = {
    { "dtype", 0, 0, G_OPTION_ARG_STRING, &dtype_name, "Input storage type: f32 (default) or f16", "DTYPE" },
    { "size", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sizes, "A product MxNxK (repeatable; default: a standard set)",
      "MxNxK" },
    { "tile", 0, 0, G_OPTION_ARG_STRING, &tile_name, "Tile: auto (default), s, m, l, t, n, c or r", "TILE" },
    { "iters", 0, 0, G_OPTION_ARG_INT, &iters, "Timed runs per size; the median is reported (default 5)", "N" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &device_sel,
      "Device index or name (default: $DREAMLOOM_DEVICE or the best GPU)", "DEVICE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- time d = a·bᵀ with fp32 accumulation");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!dl_cli_parse (ctx, &argc, &argv, "bench matmul"))
    return 2;

  g_autoptr (GError) error = NULL;
  DlDType dtype = DL_DTYPE_F32;
  if (dtype_name && (!dl_dtype_from_name (dtype_name, &dtype) || (dtype != DL_DTYPE_F32 && dtype != DL_DTYPE_F16)))
    {
      fprintf (stderr, "dreamloom bench matmul: --dtype must be f32 or f16\n");
      return 2;
    }
  DlMatmulTile tile = DL_MATMUL_TILE_AUTO;
  if (tile_name && g_ascii_strcasecmp (tile_name, "auto") != 0)
    {
      for (int t = DL_MATMUL_TILE_S; t < DL_MATMUL_N_TILES; t++)
        if (g_ascii_strcasecmp (tile_name, dl_matmul_tile_name (t)) == 0)
          tile = (DlMatmulTile)t;
      if (tile == DL_MATMUL_TILE_AUTO)
        {
          fprintf (stderr, "dreamloom bench matmul: --tile must be auto, s, m, l, t, n, c or r\n");
          return 2;
        }
    }
  iters = CLAMP (iters, 1, 1000);

  g_autoptr (GArray) list = g_array_new (FALSE, FALSE, sizeof (MatmulSize));
  if (sizes)
    for (char **s = sizes; *s; s++)
      {
        MatmulSize ms;
        if (!parse_size (*s, &ms))
          {
            fprintf (stderr, "dreamloom bench matmul: --size wants MxNxK, got “%s”\n", *s);
            return 2;
          }
        g_array_append_val (list, ms);
      }
  else
    g_array_append_vals (list, default_sizes, G_N_ELEMENTS (default_sizes));

  g_autoptr (DlDevice) dev = dl_device_new (device_sel, &error);
  if (!dev)
    return dl_cli_fail ("bench matmul", error);
  const DlDeviceInfo *info = dl_device_get_info (dev);
  if (!info->timestamps)
    {
      fprintf (stderr, "dreamloom bench matmul: %s cannot time dispatches (no timestamp support)\n", info->name);
      return 1;
    }
  g_autoptr (DlRecorder) rec = dl_recorder_new (dev, &error);
  if (!rec)
    return dl_cli_fail ("bench matmul", error);

  double peak = info->peak_gflops_f32; /* the scalar tier runs on the fp32 units */
  printf ("Device: %s (%s)\n", info->name, dl_device_type_name (info->type));
  printf ("Kernel: scalar tiled matmul, %s inputs, fp32 accumulation, d = a·bᵀ; median of %d runs\n",
          dl_dtype_name (dtype), iters);
  if (peak > 0)
    printf ("Peak (fp32): %.0f GFLOP/s%s\n", peak,
            info->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? " (estimated from the host CPU)" : "");
  else
    printf ("Peak: unknown (set DREAMLOOM_PEAK_GFLOPS to compare)\n");
  printf ("\n%6s %6s %6s  %-4s %10s %10s %7s  %s\n", "M", "N", "K", "tile", "ms", "GFLOP/s", "% peak", "shape");

  for (guint i = 0; i < list->len; i++)
    {
      const MatmulSize *s = &g_array_index (list, MatmulSize, i);
      double secs;
      DlMatmulTile used;
      if (!time_matmul (dev, rec, s, dtype, tile, iters, &secs, &used, &error))
        return dl_cli_fail ("bench matmul", error);
      double gflops = 2.0 * (double)s->m * (double)s->n * (double)s->k / secs * 1e-9;
      g_autofree char *pct = peak > 0 ? g_strdup_printf ("%6.1f%%", 100.0 * gflops / peak) : g_strdup ("      -");
      printf ("%6" G_GINT64_FORMAT " %6" G_GINT64_FORMAT " %6" G_GINT64_FORMAT "  %-4s %10.3f %10.1f %7s  %s\n", s->m,
              s->n, s->k, dl_matmul_tile_name (used), secs * 1e3, gflops, pct, s->what);
      fflush (stdout);
    }
  return 0;
}
