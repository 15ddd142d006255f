// Training throughput of the video models side by side: one optimizer step's work (the
// training loss forward and backward) on a batch of B clips of T frames, for the baseline
// (frame-wise CLIP) and STDD (space-time cross attention in every block), with and without
// STDD's frozen-CLIP distillation (its teacher forward is extra work, not STCA's), and CLAVER
// for reference. The models alternate within each repetition, so machine noise hits all of
// them alike; the report gives the fastest step of each and the ratios to the baseline.
// stdd.md estimates STCA at about 34% more compute per block for ViT-B/16.
//
// Usage: bench_video_models [--arch tiny,ViT-B/16] [--batch 0] [--frames 8] [--reps 3] [--out FILE]
//   --batch 0: 16 clips for tiny, 1 for the ViT presets (a CPU step of B/16 takes seconds)
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/bench_common.h"
#include "engine/engine.h"
#include "models/clip/weights.h"
#include "models/registry.h"

namespace {

using vc::Tensor;

struct Entry {
  std::string label, model;
  vc::models::KeyValues options;
};

}  // namespace

int main(int argc, char** argv) {
  std::string archs = "tiny,ViT-B/16", out;
  int64_t batch = 0, frames = 8;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::fprintf(stderr, "bench_video_models: %s needs a value\n", a.c_str()), std::exit(2);
      return argv[++i];
    };
    if (a == "--arch") archs = next();
    else if (a == "--batch") batch = std::atoll(next().c_str());
    else if (a == "--frames") frames = std::atoll(next().c_str());
    else if (a == "--reps") reps = std::atoi(next().c_str());
    else if (a == "--out") out = next();
    else std::fprintf(stderr, "bench_video_models: unknown option '%s'\n", a.c_str()), std::exit(2);
  }
  const std::string T = std::to_string(frames);
  // Frozen text for every model, so the step is the vision side's work (STDD's recipe).
  const std::vector<Entry> entries = {
      {"baseline", "baseline", {{"num_frames", T}, {"train_text", "false"}}},
      {"stdd (no distillation)", "stdd", {{"num_frames", T}, {"train_text", "false"}, {"kd_weight", "0"}}},
      {"stdd", "stdd", {{"num_frames", T}, {"train_text", "false"}}},
      {"claver", "claver", {{"num_frames", T}, {"train_text", "false"}, {"prompts_per_step", "1"}}},
  };

  vc::bench::Json j;
  j.begin_object().key("benchmark").value("video model training step").key("cpu").value(vc::bench::cpu_model());
  j.key("threads").value(double(vc::num_threads())).key("frames").value(double(frames));
  j.key("archs").begin_array();
  for (const std::string& arch : vc::bench::split_list(archs)) {
    const vc::clip::ClipConfig config = vc::clip::ClipConfig::preset(arch);
    const int64_t B = batch > 0 ? batch : (arch == "tiny" ? 16 : 1), K = 4, ctx = config.context_length;
    std::vector<std::shared_ptr<vc::models::VideoModel>> models;
    for (const Entry& e : entries) {
      auto m = vc::models::create_model(e.model, config, e.options);
      vc::Generator gen{1, 0};
      m->init_random(gen);
      m->train();
      models.push_back(m);
    }
    // K one-word prompts (start, word, end = the highest id, padding), one variant each.
    std::vector<int64_t> tk(size_t(K * ctx), 0);
    for (int64_t k = 0; k < K; ++k)
      tk[size_t(k * ctx)] = config.vocab_size - 2, tk[size_t(k * ctx + 1)] = 1 + k, tk[size_t(k * ctx + 2)] = config.vocab_size - 1;
    const Tensor tokens = Tensor::from_vector(tk, {1, K, ctx});
    std::vector<int64_t> lv;
    for (int64_t b = 0; b < B; ++b) lv.push_back(b % K);
    const Tensor labels = Tensor::from_vector(lv, {B});
    const Tensor video = vc::rand_normal({B, frames, 3, config.image_size, config.image_size}, 7, 0, 0, 1);

    std::vector<double> best(models.size(), 1e300);
    int64_t step = 0;
    for (int r = 0; r <= reps; ++r)  // repetition 0 warms up
      for (size_t i = 0; i < models.size(); ++i) {
        const double s = vc::bench::time_min([&] {
          models[i]->zero_grad();
          models[i]->training_loss(video, tokens, labels, step++).loss.backward();
        }, 1);
        if (r > 0) best[i] = std::min(best[i], s);
        std::fprintf(stderr, "%s %s rep %d: %.3f s\n", arch.c_str(), entries[i].label.c_str(), r, s);
      }
    j.begin_object().key("arch").value(arch).key("clips_per_step").value(double(B)).key("models").begin_array();
    for (size_t i = 0; i < models.size(); ++i)
      j.begin_object()
          .key("model").value(entries[i].label)
          .key("step_s").value(best[i])
          .key("clips_per_s").value(double(B) / best[i])
          .key("time_vs_baseline").value(best[i] / best[0])
          .end_object();
    j.end_array().end_object();
  }
  j.end_array().end_object();
  vc::bench::emit(j, out);
  return 0;
}
