// One training step (forward, backward, AdamW) of a tiny video transformer, of the tiny CLIP's
// pretraining (make_clip below) and of each video model at its tiny config, with its FLOPs,
// GFLOP/s against the FMA peak and where the time goes by op family (issue 13). benchmarks/torch_tiny_step.py is the same tiny model in
// PyTorch; scripts/bench.sh runs the two side by side.
//
// The tiny model ("tiny"): B = 16 clips of T = 8 RGB frames of 32x32, 8x8 patches (16 + a class
// token = 17 tokens per frame), width 128, 4 heads, 6 pre-LN residual blocks with a QuickGELU
// MLP (4x width), ln_pre / ln_post, the class token of each frame averaged over the frames, a
// linear head to 18 classes, cross-entropy, AdamW (lr 1e-3, weight decay 0.01 on every tensor,
// as torch.optim.AdamW's defaults). 1,219,346 parameters.
//
// The video models ("baseline", "claver", "stdd", "alt", "tcclip"): models/configs/
// fm_tiny_<name>.yaml read as `verbclip train` reads it, the model built by the apps'
// build_model_for_training (a random tiny CLIP), its prompts by load_prompts, its AdamW by
// param_groups(TRAIN.WEIGHT_DECAY) — the train command's step without data loading: random
// frames of DATA.NUM_FRAMES x DATA.INPUT_SIZE², TRAIN.BATCH_SIZE clips, labels b mod K (soft,
// smoothed, when AUG.LABEL_SMOOTH > 0). The text assets come from --data (a make-data folder)
// or, without it, are written to a temporary folder from data/fashion_motion's own text (the
// vocabulary then lacks the caption-only words: a few rows fewer in the token embedding).
//
// FLOPs, counted analytically: a GEMM of [M, K] x [K, N] is 2·M·N·K; attention's forward is
// 2·B·H·Lq·Lk·(d + dv) (S = Q Kᵀ and O = P V, dense: masked tiles are counted). A step is
// the forward, plus twice the forward for each GEMM whose input and weight both need a
// gradient (dX = dY Wᵀ and dW = Xᵀ dY) and once for a GEMM whose input needs none (the patch
// embedding: dW only); a convolution (the tiny CLIP's stem) is 2·B·O·Ho·Wo·C·k·k, and that
// again for each of its weight and input gradients; attention's backward is twice its forward
// (dQ, dK, dV, dP). Elementwise
// ops, normalisation, softmax and the optimizer are not counted. For "tiny" the count is a
// closed formula (tiny_step_flops) and the profiler's count from the executed ops' shapes is
// printed beside it as a check; for the video models it is the count from the executed shapes
// (engine/core/profiler.h, dense_flops), the same rule applied op by op.
//
// Timing: the median of --steps steps after --warmup steps. Then --profile-steps more steps run
// with the op profiler on (engine/core/profiler.h: self time of every op, backward closure
// and optimizer step), summed into op families; "untracked" is the profiled step's wall time
// outside every scope (tape bookkeeping, module code, freeing the graph). The profiled steps
// are not the timed ones: the profiler's own cost (a clock read and a lock per op) stays out
// of step_ms. With --profile-steps 0 a model whose FLOPs come from the executed shapes still
// runs one untimed profiled step, to count them.
//
// Usage: bench_step [--threads 1,2] [--steps 10] [--warmup 2] [--profile-steps 3]
//                   [--models tiny,clip,baseline,claver,stdd,alt,tcclip] [--data ROOT] [--top 10]
//                   [--no-peak] [--out FILE]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "apps/common/config.h"
#include "apps/common/video_run.h"
#include "benchmarks/bench_common.h"
#include "data/annotations.h"
#include "data/fashion_motion.h"
#include "data/util.h"
#include "engine/engine.h"
#include "models/clip/clip.h"
#include "nn/nn.h"

using namespace vc;

namespace {

// ---------------------------------------------------------------- the tiny video transformer

struct TinyConfig {
  int64_t batch = 16, frames = 8, image = 32, patch = 8, width = 128, heads = 4, layers = 6,
          classes = 18;
};

class TinyVideoTransformer : public nn::Module {
 public:
  explicit TinyVideoTransformer(const TinyConfig& c) : Module("TinyVideoTransformer"), cfg(c) {
    const int64_t D = c.width, L = (c.image / c.patch) * (c.image / c.patch) + 1;
    conv1 = register_module("conv1", std::make_shared<nn::PatchEmbed>(3, D, c.patch));
    class_embedding = register_parameter("class_embedding", Tensor::zeros({D}));
    positional_embedding = register_parameter("positional_embedding", Tensor::zeros({L, D}));
    ln_pre = register_module("ln_pre", std::make_shared<nn::LayerNorm>(D));
    transformer = register_module(
        "transformer", std::make_shared<nn::Transformer>(D, c.layers, c.heads, nn::Activation::QuickGELU));
    ln_post = register_module("ln_post", std::make_shared<nn::LayerNorm>(D));
    head = register_module("head", std::make_shared<nn::Linear>(D, c.classes));
  }
  // video [B, T, 3, H, W] -> logits [B, classes]
  Tensor forward(const Tensor& video) const {
    const int64_t B = video.size(0), T = video.size(1), D = cfg.width, BT = B * T;
    Tensor x = conv1->forward(video.reshape({BT, 3, video.size(3), video.size(4)}));  // [BT, P, D]
    Tensor cls = class_embedding.reshape({1, 1, D}).expand({BT, 1, D});
    x = add(concat({cls, x}, 1), positional_embedding);  // [BT, L, D]
    x = transformer->forward(ln_pre->forward(x));
    Tensor frame = ln_post->forward(x.narrow(1, 0, 1).reshape({B, T, D}));  // class tokens
    return head->forward(mean(frame, {1}));                                   // frame mean
  }
  TinyConfig cfg;
  std::shared_ptr<nn::PatchEmbed> conv1;
  Tensor class_embedding, positional_embedding;
  std::shared_ptr<nn::LayerNorm> ln_pre, ln_post;
  std::shared_ptr<nn::Transformer> transformer;
  std::shared_ptr<nn::Linear> head;
};

// The closed formula of the header's rule.
double tiny_step_flops(const TinyConfig& c) {
  const double F = double(c.batch * c.frames), P = double((c.image / c.patch) * (c.image / c.patch));
  const double L = P + 1, R = F * L, D = double(c.width);
  const double linears = 2 * R * D * (3 * D) + 2 * R * D * D + 2 * R * D * (4 * D) + 2 * R * (4 * D) * D;
  const double attention = 2 * F * L * L * (D + D);  // summed over heads: H·(dh + dh) = 2D
  const double patch = 2 * F * P * (3.0 * c.patch * c.patch) * D;
  const double head = 2 * double(c.batch) * D * double(c.classes);
  return 3 * (double(c.layers) * (linears + attention) + head) + 2 * patch;
}

// ---------------------------------------------------------------- a benchmarked step

struct Step {
  std::string name;
  int64_t params = 0, batch = 0, frames = 0;
  double analytic_flops = 0;  // 0: use the profiler's count
  std::function<void(int64_t)> run;
};

Step make_tiny() {
  auto model = std::make_shared<TinyVideoTransformer>(TinyConfig{});
  Generator gen{1, 0};
  model->reset_parameters(gen);
  model->train();
  const TinyConfig c = model->cfg;
  nn::AdamWOptions ao;
  ao.lr = 1e-3;
  auto opt = std::make_shared<nn::AdamW>(
      nn::make_param_groups(*model, 0.01, {}, [](const std::string&, const Tensor&) { return false; }), ao);
  Tensor video = rand_normal({c.batch, c.frames, 3, c.image, c.image}, 7, 0);
  std::vector<int64_t> lv;
  for (int64_t b = 0; b < c.batch; ++b) lv.push_back(b % c.classes);
  Tensor labels = Tensor::from_vector(lv, {c.batch});
  Step s;
  s.name = "tiny";
  s.params = model->num_parameters();
  s.batch = c.batch, s.frames = c.frames;
  s.analytic_flops = tiny_step_flops(c);
  s.run = [model, opt, video, labels](int64_t) {
    opt->zero_grad();
    cross_entropy(model->forward(video), labels).backward();
    opt->step();
  };
  return s;
}

// The tiny CLIP's pretraining step ("clip"), `verbclip pretrain-clip`'s step without data
// loading: the tiny preset over a vocabulary of 293 words (the main job's text/vocab.txt),
// B = 128 random 32x32 images against 128 captions of 17 tokens (start, 15 words, end: the
// longest augmented caption, "a photo of a yellow t - shirt hanging upside down near the top
// left", sets a batch's trimmed length), CLIP's symmetric InfoNCE (every caption its own
// group, pretrain-clip's default), gradient clipping at 1 and AdamW (lr 1.5e-3, beta2 0.98,
// eps 1e-6, weight decay 0.1 as make_param_groups assigns it). FLOPs from the executed shapes.
Step make_clip() {
  clip::ClipConfig c = clip::ClipConfig::preset("tiny");
  c.vocab_size = 293;
  auto model = std::make_shared<clip::CLIP>(c);
  Generator gen{1, 0};
  clip::init_clip(*model, gen);
  model->train();
  nn::AdamWOptions ao;
  ao.lr = 1.5e-3, ao.beta2 = 0.98, ao.eps = 1e-6;
  auto opt = std::make_shared<nn::AdamW>(nn::make_param_groups(*model, 0.1), ao);
  const int64_t B = 128, L = 17;
  Tensor images = rand_normal({B, 3, c.image_size, c.image_size}, 7, 0);
  std::vector<int64_t> ids;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)  // start, words (ids 2 .. V-3, varied), end = the largest id
      ids.push_back(t == 0 ? c.vocab_size - 2 : t == L - 1 ? c.vocab_size - 1 : 2 + (b * 31 + t * 7) % (c.vocab_size - 4));
  Tensor tokens = Tensor::from_vector(ids, {B, L});
  std::vector<int64_t> group;
  for (int64_t b = 0; b < B; ++b) group.push_back(b);
  Step s;
  s.name = "clip";
  s.params = model->num_parameters();
  s.batch = B, s.frames = 1;
  s.run = [model, opt, images, tokens, group](int64_t) {
    opt->zero_grad();
    Tensor logits = model->logits(model->encode_image(images), model->encode_text(tokens));
    clip::multi_positive_clip_loss(logits, group).backward();
    nn::clip_grad_norm(model->parameters(), 1.0);
    opt->step();
  };
  return s;
}

// The text assets a video model's config names, from data/fashion_motion (see the header).
std::string write_text_assets() {
  namespace fm = vc::data::fm;
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("bench_step_text_" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(dir + "/text");
  std::string tpl;
  for (const auto& t : fm::templates()) tpl += t + "\n";
  const std::string interp = fm::interpretive_json(), askg = fm::askg_json(), corpus = fm::corpus_tsv();
  data::write_text_file(dir + "/text/templates.txt", tpl);
  data::write_text_file(dir + "/text/interpretive.json", interp);
  data::write_text_file(dir + "/text/askg.json", askg);
  data::write_text_file(dir + "/text/corpus.tsv", corpus);
  std::vector<std::string> texts = {interp, askg, corpus};
  for (const auto& c : fm::classes()) {
    texts.push_back(c.name);
    for (const auto& t : fm::templates()) {
      std::string filled = t;
      filled.replace(filled.find("{}"), 2, c.name);
      texts.push_back(filled);
    }
  }
  for (const auto& p : fm::palette()) texts.push_back(p.name);
  for (const auto& n : fm::nouns()) texts.push_back(n);
  data::write_text_file(dir + "/text/vocab.txt", fm::build_vocab(texts));
  return dir;
}

Step make_video_model(const std::string& name, const std::string& data_root) {
  verbclip::Config cfg = verbclip::video_config_defaults();
  cfg.load_yaml_file(std::string(VERBCLIP_SOURCE_DIR) + "/models/configs/fm_tiny_" + name + ".yaml");
  cfg.set("DATA.ROOT", data_root, "bench_step");
  std::vector<std::string> class_names;
  if (vc::data::path_exists(verbclip::data_path(cfg, "DATA.LABEL_LIST")))
    class_names = vc::data::read_labels(verbclip::data_path(cfg, "DATA.LABEL_LIST")).names;
  else
    for (const auto& c : vc::data::fm::classes()) class_names.push_back(c.name);
  const int64_t K = int64_t(class_names.size());
  Generator gen{uint64_t(cfg.integer("SEED")), 0};
  auto setup = std::make_shared<verbclip::VideoSetup>(verbclip::build_model_for_training(cfg, gen));
  auto& model = *setup->model;
  model.train();
  Tensor tokens = model.tokenize(verbclip::load_prompts(cfg, class_names), *setup->tokenizer);
  nn::AdamWOptions ao;
  ao.lr = cfg.number("TRAIN.LR");
  ao.beta1 = cfg.number("TRAIN.BETA1");
  ao.beta2 = cfg.number("TRAIN.BETA2");
  ao.eps = cfg.number("TRAIN.EPS");
  auto opt = std::make_shared<nn::AdamW>(model.param_groups(cfg.number("TRAIN.WEIGHT_DECAY")), ao);
  const int64_t B = cfg.integer("TRAIN.BATCH_SIZE"), T = cfg.integer("DATA.NUM_FRAMES"),
                S = cfg.integer("DATA.INPUT_SIZE");
  const double smooth = cfg.number("AUG.LABEL_SMOOTH");
  Tensor video = rand_normal({B, T, 3, S, S}, 7, 0);
  Tensor targets;
  if (smooth > 0) {
    std::vector<float> t(size_t(B * K), float(smooth / double(K)));
    for (int64_t b = 0; b < B; ++b) t[size_t(b * K + b % K)] += float(1 - smooth);
    targets = Tensor::from_vector(t, {B, K});
  } else {
    std::vector<int64_t> lv;
    for (int64_t b = 0; b < B; ++b) lv.push_back(b % K);
    targets = Tensor::from_vector(lv, {B});
  }
  const double clip = cfg.number("TRAIN.CLIP_GRAD");
  Step s;
  s.name = name;
  s.params = model.num_parameters(/*trainable_only=*/true);
  s.batch = B, s.frames = T;
  s.run = [setup, opt, tokens, video, targets, clip](int64_t step) {
    auto& m = *setup->model;
    opt->zero_grad();
    m.training_loss(video, tokens, targets, step).loss.backward();
    if (clip > 0) nn::clip_grad_norm(m.parameters(), clip);
    opt->step();
  };
  return s;
}

// ---------------------------------------------------------------- op families

const std::vector<std::string> kFamilies = {"matmul",        "attention", "layernorm", "elementwise",
                                            "softmax/loss",  "optimizer", "copies",    "other"};

std::string family_of(const profiler::Entry& e) {
  static const std::set<std::string> elementwise = {
      "add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge",
      "abs", "add_scalar", "mul_scalar", "clamp", "exp", "log", "neg", "pow", "sqrt", "rsqrt",
      "sigmoid", "tanh", "relu", "gelu", "gelu_tanh", "quick_gelu", "where",
      "sum", "mean", "var", "max", "min", "amax", "amin"};  // reductions: bias gradients, pooling
  static const std::set<std::string> copies = {"clone", "concat", "to_dtype", "to_device", "view",
                                               "permute", "narrow", "expand"};
  if (e.phase == "optimizer") return "optimizer";
  if (e.name == "matmul" || e.name == "conv2d") return "matmul";
  if (e.name == "attention") return "attention";
  if (e.name == "layer_norm") return "layernorm";
  if (e.name == "softmax" || e.name == "log_softmax" || e.name == "cross_entropy") return "softmax/loss";
  if (elementwise.count(e.name)) return "elementwise";
  if (copies.count(e.name)) return "copies";
  return "other";
}

// What each family holds, for the report.
const char* kFamilyRule =
    "self time of engine ops and backward closures by op name: matmul (and conv2d); attention; layer_norm; "
    "elementwise = unary/binary/compare/where and the reductions sum/mean/var/max/min; "
    "softmax/loss = softmax, log_softmax, cross_entropy; copies = clone (contiguous), concat, "
    "to_dtype/to_device and the views (view/permute/narrow/expand: their backward closures pad "
    "or copy); optimizer = everything inside Optimizer::step; other = index ops, token merging, "
    "top-k, shifts, and the untracked wall time outside every op (tape, module code, freeing)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts = {1, 2};
  std::vector<std::string> names = {"tiny", "clip", "baseline", "claver", "stdd", "alt", "tcclip"};
  int steps = 10, warmup = 2, profile_steps = 3, top = 10;
  bool peak_on = true;
  std::string out, data_root;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::fprintf(stderr, "bench_step: %s needs a value\n", a.c_str()), std::exit(2);
      return argv[++i];
    };
    if (a == "--threads") {
      thread_counts.clear();
      for (const auto& t : vc::bench::split_list(next())) thread_counts.push_back(std::stoi(t));
    } else if (a == "--models") names = vc::bench::split_list(next());
    else if (a == "--steps") steps = std::atoi(next().c_str());
    else if (a == "--warmup") warmup = std::atoi(next().c_str());
    else if (a == "--profile-steps") profile_steps = std::atoi(next().c_str());
    else if (a == "--top") top = std::atoi(next().c_str());
    else if (a == "--data") data_root = next();
    else if (a == "--no-peak") peak_on = false;
    else if (a == "--out") out = next();
    else std::fprintf(stderr, "bench_step: unknown option '%s'\n", a.c_str()), std::exit(2);
  }
  const std::set<std::string> known = {"tiny", "clip", "baseline", "claver", "stdd", "alt", "tcclip"};
  for (const auto& n : names)
    if (!known.count(n)) {
      std::fprintf(stderr, "bench_step: unknown model '%s' in --models (known: tiny, clip, "
                   "baseline, claver, stdd, alt, tcclip)\n", n.c_str());
      return 2;
    }
  if (steps < 1 || warmup < 0 || profile_steps < 0) {
    std::fprintf(stderr, "bench_step: --steps must be >= 1, --warmup and --profile-steps >= 0\n");
    return 2;
  }
  const bool need_text =
      std::any_of(names.begin(), names.end(), [](const std::string& n) { return n != "tiny" && n != "clip"; });
  std::string temp_root;
  if (need_text && data_root.empty()) data_root = temp_root = write_text_assets();

  bench::Json j;
  j.begin_object();
  j.key("benchmark").value("training step");
  j.key("cpu").value(bench::cpu_model());
  j.key("hardware_threads").value(double(std::thread::hardware_concurrency()));
  j.key("flop_rule").value(
      "matmul 2*M*N*K; attention forward 2*B*H*Lq*Lk*(d+dv), dense; backward: 2x forward for a "
      "GEMM whose input and weight need gradients, 1x when only the weight does, attention 2x; "
      "elementwise, normalisation, softmax, optimizer not counted");
  j.key("family_rule").value(kFamilyRule);
  j.key("steps").value(double(steps)).key("warmup").value(double(warmup));
  j.key("profile_steps").value(double(profile_steps));
  j.key("runs").begin_array();
  for (int threads : thread_counts) {
    set_num_threads(threads);
    const double peak = peak_on ? bench::fma_peak_gflops(threads) : 0;
    j.begin_object().key("threads").value(double(threads));
    if (peak_on) j.key("fma_peak_gflops").value(peak);
    j.key("models").begin_array();
    for (const std::string& name : names) {
      Step s = name == "tiny" ? make_tiny() : name == "clip" ? make_clip() : make_video_model(name, data_root);
      int64_t step = 0;
      for (int w = 0; w < warmup; ++w) s.run(step++);
      std::vector<double> ms;
      for (int r = 0; r < steps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        s.run(step++);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::vector<double> sorted = ms;
      std::sort(sorted.begin(), sorted.end());
      const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                              : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);

      // The profiled steps (at least one where the FLOPs come from the executed shapes).
      std::vector<profiler::Entry> entries;
      double profiled_ms = 0;
      const int counted = std::max(profile_steps, s.analytic_flops > 0 ? 0 : 1);
      if (counted > 0) {
        const bool was = profiler::enabled();
        profiler::reset();
        profiler::set_enabled(true);
        auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < counted; ++r) s.run(step++);
        profiled_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                      counted;
        profiler::set_enabled(was);
        entries = profiler::entries();
        profiler::reset();
      }
      double traced_flops = 0, tracked_ms = 0;
      std::map<std::string, double> family_ms;
      for (const auto& e : entries) {
        traced_flops += e.flops / counted;
        tracked_ms += e.self_s * 1e3 / counted;
        family_ms[family_of(e)] += e.self_s * 1e3 / counted;
      }
      const double untracked_ms = std::max(0.0, profiled_ms - tracked_ms);
      family_ms["other"] += untracked_ms;
      const double flops = s.analytic_flops > 0 ? s.analytic_flops : traced_flops;
      const double gflops = flops / (median * 1e-3) / 1e9;

      j.begin_object();
      j.key("model").value(s.name);
      j.key("params").value(double(s.params));
      j.key("clips").value(double(s.batch)).key("frames").value(double(s.frames));
      j.key("step_ms").value(median);
      j.key("step_ms_all").begin_array();
      for (double m : ms) j.value(m);
      j.end_array();
      j.key("gflop_per_step").value(flops / 1e9);
      j.key("gflop_source").value(s.analytic_flops > 0 ? "closed formula" : "executed op shapes");
      if (profile_steps > 0) j.key("gflop_per_step_from_op_shapes").value(traced_flops / 1e9);
      j.key("gflops").value(gflops);
      if (peak_on) j.key("fraction_of_fma_peak").value(gflops / peak);
      if (profile_steps > 0) {
        j.key("profiled_step_ms").value(profiled_ms);
        j.key("untracked_ms").value(untracked_ms);
        j.key("breakdown_ms").begin_object();
        for (const auto& f : kFamilies) j.key(f).value(family_ms[f]);
        j.end_object();
        j.key("breakdown_fraction").begin_object();
        for (const auto& f : kFamilies) j.key(f).value(family_ms[f] / profiled_ms);
        j.end_object();
        j.key("top").begin_array();
        for (int i = 0; i < top && i < int(entries.size()); ++i) {
          const auto& e = entries[size_t(i)];
          j.begin_object()
              .key("name").value(e.name)
              .key("kind").value(e.kind)
              .key("phase").value(e.phase)
              .key("family").value(family_of(e))
              .key("calls_per_step").value(double(e.calls) / profile_steps)
              .key("self_ms").value(e.self_s * 1e3 / profile_steps)
              .key("fraction").value(e.self_s * 1e3 / profile_steps / profiled_ms)
              .end_object();
        }
        j.end_array();
      }
      j.end_object();
      std::fprintf(stderr, "bench_step: %s, %d thread(s): %.1f ms/step, %.2f GFLOP, %.1f GFLOP/s\n",
                   s.name.c_str(), threads, median, flops / 1e9, gflops);
    }
    j.end_array().end_object();
  }
  j.end_array().end_object();
  if (!temp_root.empty()) std::filesystem::remove_all(temp_root);
  bench::emit(j, out);
  return 0;
}
