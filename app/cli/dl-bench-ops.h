/* dl-bench-ops.h: the framework of `dreamloom bench ops`.  Each op family has a
 * file app/cli/dl-bench-ops-<family>.c with one function that times its ops at
 * SD-shaped sizes through dl_bench_ops_case(), and one line in the family table
 * of dl-cli-bench-ops.c. */
#pragma once

#include "ops/dl-ops.h"
#include "vk/dl-device.h"
#include "vk/dl-recorder.h"

G_BEGIN_DECLS

typedef struct _DlBenchOps DlBenchOps;

/* Records one run of the op being timed (all its dispatches) into `rec`. */
typedef gboolean (*DlBenchRecordFunc) (DlRecorder *rec, gpointer data, GError **error);

/* Time `record` (a warm-up run, then the median of the configured runs, from GPU
 * timestamps) and print one row: op, shape, ms, GFLOP/s when flops > 0, GB/s when
 * bytes > 0 (bytes that must move at least once), and the fractions of the
 * device's peaks where known. */
gboolean dl_bench_ops_case (DlBenchOps *b, const char *op, const char *shape, double flops, double bytes,
                            DlBenchRecordFunc record, gpointer data, GError **error);

DlDevice *dl_bench_ops_get_device (DlBenchOps *b);
/* TRUE when sizes should be scaled down (a CPU device such as lavapipe, or
 * --small): the family then says so in its shape strings. */
gboolean dl_bench_ops_is_small (DlBenchOps *b);
/* Whether --op selects `op` (for families that measure outside dl_bench_ops_case). */
gboolean dl_bench_ops_wants (DlBenchOps *b, const char *op);
/* A new tensor filled with small values (0.01 * sin-like pattern), for timing. */
DlTensor *dl_bench_ops_tensor (DlBenchOps *b, const char *name, DlDType dtype, int ndim, const int64_t *shape,
                               GError **error);

typedef gboolean (*DlBenchOpsFamily) (DlBenchOps *b, GError **error);

/* families */
gboolean dl_bench_ops_basic (DlBenchOps *b, GError **error);
gboolean dl_bench_ops_attn (DlBenchOps *b, GError **error);
gboolean dl_bench_ops_norm (DlBenchOps *b, GError **error);
gboolean dl_bench_ops_conv (DlBenchOps *b, GError **error);

G_END_DECLS
