/* dl-ops.h: every op the engine offers. */
#pragma once

#include "ops/dl-op-eltwise.h"
#include "ops/dl-op-matmul.h"
#include "ops/dl-op-reduce.h"
