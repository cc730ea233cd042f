/* dl-ops.h: every op the engine offers. */
#pragma once

#include "ops/dl-op-eltwise.h"
#include "ops/dl-op-matmul.h"
#include "ops/dl-op-random.h"
#include "ops/dl-op-softmax.h"
#include "ops/dl-op-attention.h"
#include "ops/dl-op-embedding.h"
#include "ops/dl-op-loss.h"
#include "ops/dl-op-adamw.h"
#include "ops/dl-op-adamw8bit.h"
#include "ops/dl-op-reduce.h"
#include "ops/dl-op-conv2d.h"
#include "ops/dl-op-linear.h"
#include "ops/dl-op-norm.h"
#include "ops/dl-op-activation.h"
#include "ops/dl-op-resample.h"
