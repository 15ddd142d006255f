// Everything a user of the engine needs: tensors, autograd and every op family.
#pragma once
#include "engine/autograd/autograd.h"
#include "engine/core/tensor.h"
#include "engine/core/threads.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/matmul.h"
#include "engine/ops/nn_functional.h"
#include "engine/ops/random.h"
#include "engine/ops/reduce.h"
