// Parameter initialisation, in place and seeded: every draw takes a fresh stream from the
// run's Generator (Philox), so the same seed gives the same weights on any backend.
#pragma once
#include <cmath>
#include <string>

#include "engine/core/tensor.h"
#include "engine/ops/random.h"

namespace vc::nn {
class Transformer;
}

namespace vc::nn::init {

void normal_(const Tensor& t, Generator& gen, double mean = 0, double std = 1);
void uniform_(const Tensor& t, Generator& gen, double lo, double hi);
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);

// fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (PyTorch rule:
// a Linear weight is [out, in], a conv weight [out, in, kh, kw]).
struct Fans {
  int64_t in, out;
};
Fans fans(const Tensor& t);

// Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)); normal with
// std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_uniform_(const Tensor& t, Generator& gen, double gain = 1);
void xavier_normal_(const Tensor& t, Generator& gen, double gain = 1);

enum class FanMode { FanIn, FanOut };
// He: std = gain / sqrt(fan), gain = sqrt(2 / (1 + a^2)) (leaky ReLU slope a; a = 0 is
// ReLU). Uniform bound = sqrt(3) * std.
void kaiming_uniform_(const Tensor& t, Generator& gen, double a = 0, FanMode mode = FanMode::FanIn);
void kaiming_normal_(const Tensor& t, Generator& gen, double a = 0, FanMode mode = FanMode::FanIn);

// OpenAI CLIP's stds (model.py, initialize_parameters) for a transformer of `width` and
// `layers` blocks.
struct ClipStd {
  double attn;  // in_proj_weight: width^-0.5
  double proj;  // out_proj.weight and mlp.c_proj.weight: width^-0.5 * (2 layers)^-0.5
  double fc;    // mlp.c_fc.weight: (2 width)^-0.5
};
ClipStd clip_std(int64_t width, int64_t layers);
constexpr double kClipTokenEmbeddingStd = 0.02;
constexpr double kClipPositionalEmbeddingStd = 0.01;  // text tower
// Vision tower: class_embedding, positional_embedding and proj use width^-0.5.
inline double clip_vision_scale(int64_t width) { return 1.0 / std::sqrt(double(width)); }

// CLIP's scheme for every block of a Transformer: the normal stds above for the weights,
// zeros for every bias, LayerNorms to (1, 0).
void clip_transformer_(Transformer& t, Generator& gen);

}  // namespace vc::nn::init
