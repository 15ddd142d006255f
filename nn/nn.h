// Everything a model author needs from nn: modules and layers, init, optimizers and
// schedules, safetensors and checkpoints.
#pragma once
#include "engine/engine.h"
#include "nn/attention.h"
#include "nn/checkpoint.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/schedule.h"
#include "nn/tensor_dict.h"
#include "nn/transformer.h"
