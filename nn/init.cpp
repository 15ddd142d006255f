#include "nn/init.h"

#include <cmath>

#include "engine/autograd/autograd.h"
#include "nn/module.h"
#include "nn/transformer.h"

namespace vc::nn::init {

void normal_(const Tensor& t, Generator& gen, double mean, double std) {
  NoGradGuard no_grad;
  copy_into(t, rand_normal(t.shape(), gen.seed, gen.stream(), mean, std, t.dtype(), t.device()));
}

void uniform_(const Tensor& t, Generator& gen, double lo, double hi) {
  NoGradGuard no_grad;
  copy_into(t, rand_uniform(t.shape(), gen.seed, gen.stream(), lo, hi, t.dtype(), t.device()));
}

void constant_(const Tensor& t, double value) {
  NoGradGuard no_grad;
  copy_into(t, Tensor::full(t.shape(), value, t.dtype(), t.device()));
}
void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

Fans fans(const Tensor& t) {
  VC_CHECK(t.dim() >= 2, "init: fan in/out needs at least 2 dims, got shape ", t.shape());
  int64_t field = 1;
  for (int64_t d = 2; d < t.dim(); ++d) field *= t.size(d);
  return {t.size(1) * field, t.size(0) * field};
}

void xavier_uniform_(const Tensor& t, Generator& gen, double gain) {
  Fans f = fans(t);
  double a = gain * std::sqrt(6.0 / double(f.in + f.out));
  uniform_(t, gen, -a, a);
}

void xavier_normal_(const Tensor& t, Generator& gen, double gain) {
  Fans f = fans(t);
  normal_(t, gen, 0, gain * std::sqrt(2.0 / double(f.in + f.out)));
}

static double kaiming_std(const Tensor& t, double a, FanMode mode) {
  Fans f = fans(t);
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  return gain / std::sqrt(double(mode == FanMode::FanIn ? f.in : f.out));
}

void kaiming_uniform_(const Tensor& t, Generator& gen, double a, FanMode mode) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode);
  uniform_(t, gen, -bound, bound);
}

void kaiming_normal_(const Tensor& t, Generator& gen, double a, FanMode mode) {
  normal_(t, gen, 0, kaiming_std(t, a, mode));
}

ClipStd clip_std(int64_t width, int64_t layers) {
  double w = double(width);
  return {std::pow(w, -0.5), std::pow(w, -0.5) * std::pow(2.0 * double(layers), -0.5),
          std::pow(2.0 * w, -0.5)};
}

void clip_transformer_(Transformer& tr, Generator& gen) {
  ClipStd s = clip_std(tr.width(), tr.layers());
  for (int64_t i = 0; i < tr.layers(); ++i) {
    ResidualAttentionBlock& b = tr.block(i);
    normal_(b.attn->in_proj_weight, gen, 0, s.attn);
    zeros_(b.attn->in_proj_bias);
    normal_(b.attn->out_proj->weight, gen, 0, s.proj);
    zeros_(b.attn->out_proj->bias);
    normal_(b.mlp->c_fc->weight, gen, 0, s.fc);
    zeros_(b.mlp->c_fc->bias);
    normal_(b.mlp->c_proj->weight, gen, 0, s.proj);
    zeros_(b.mlp->c_proj->bias);
    for (LayerNorm* ln : {b.ln_1.get(), b.ln_2.get()}) {
      ones_(ln->weight);
      zeros_(ln->bias);
    }
  }
}

}  // namespace vc::nn::init
