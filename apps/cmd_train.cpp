// verbclip train: trains a video model (baseline, CLAVER) from CLIP weights on a list dataset.
//
//   AdamW with parameter groups (the model's new modules at TRAIN.LR x MODEL.NEW_LR_MULT; no
//   decay for rank <= 1 tensors, biases, positional embeddings), cosine schedule with linear
//   warmup by optimizer step, label smoothing / mixup / cutmix targets from the loader,
//   gradient accumulation (micro-batch losses scaled by 1/ACCUMULATION_STEPS), optional
//   gradient-norm clipping.
//   Validation (one centre view) every TEST.EVAL_EVERY epochs and at the end: checkpoint_best
//   by top-1; checkpoint_last at every epoch's end (and every SAVE_FREQ steps).
//   Checkpoint averaging (STDD's recipe), TRAIN.AVERAGE_EPOCHS = N > 0: the model's weights at
//   the end of each of the last N epochs go to epoch_<e>.safetensors (written before
//   checkpoint_last, so a resumed run finds every epoch file it has passed); when training
//   ends their uniform mean is loaded, validated ("val_avg") and saved as checkpoint_avg.
//
// Everything random is a function of (SEED, epoch, batch) or (MODEL.SEED, micro-step): the data
// order and augmentation come from the loader, the prompt variants from the micro-step number.
// --resume rebuilds the run from checkpoint_last (its config, then --config / --opts), skips
// the batches already used in the current epoch and continues bitwise as if never stopped.
//
// Data-parallel (`mpirun -np W verbclip train ...`, engine/dist/communicator.h): each rank
// holds the model and trains on its share of every epoch's order: the one-process batches of
// TRAIN.BATCH_SIZE (a per-rank size, as in the PyTorch repos) dealt out whole, batch g to rank
// g mod W (data/loader.h). Micro-step m of rank r is micro-step m·W + r of one process with
// ACCUMULATION_STEPS·W, with the same loss scale 1/(ACCUMULATION_STEPS·W) and prompt variants;
// the gradients are summed over the ranks in rank order (nn/ddp.h), so on the CPU the run is
// bitwise the one-process run with W times the accumulation (TRAIN.DDP_REDUCE step: once per
// optimizer step instead, equal within rounding). The ranks first check that they
// agree (config, parameter count, dataset size; an error on every rank otherwise). Rank 0
// alone writes logs, checkpoints and curves; validation is sharded and its scores gathered.
#include <cxxopts.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "apps/commands.h"
#include "apps/common/checkpoints.h"
#include "apps/common/config.h"
#include "apps/common/run_log.h"
#include "apps/common/video_run.h"
#include "data/annotations.h"
#include "data/util.h"
#include "engine/dist/communicator.h"
#include "engine/engine.h"
#include "nn/faults.h"
#include "nn/ddp.h"
#include "nn/nn.h"

namespace verbclip {

namespace {

using vc::Tensor;
namespace nn = vc::nn;

void write_train_curves(const std::string& out) {
  const std::string log = out + "/log.jsonl";
  Series loss{"train loss", {}, {}}, train_acc{"train batch top-1", {}, {}}, val{"val top-1", {}, {}},
      pair{"val within-pair C", {}, {}};
  for (const auto& j : read_jsonl_events(log, "train")) {
    loss.x.push_back(j.value("step", 0.0)), loss.y.push_back(j.value("loss", NAN));
    train_acc.x.push_back(j.value("epoch_progress", 0.0)), train_acc.y.push_back(j.value("batch_top1", NAN));
  }
  for (const auto& j : read_jsonl_events(log, "val")) {
    val.x.push_back(j.value("epoch", 0.0)), val.y.push_back(j.value("top1", NAN));
    if (j.contains("within_pair_C")) pair.x.push_back(j.value("epoch", 0.0)), pair.y.push_back(j.value("within_pair_C", NAN));
  }
  if (!loss.x.empty()) write_curves(out + "/loss.svg", "train: loss", "step", "loss", {loss});
  std::vector<Series> acc = {train_acc};
  if (!val.x.empty()) acc.push_back(val);
  if (!pair.x.empty()) acc.push_back(pair);
  if (!train_acc.x.empty()) write_curves(out + "/accuracy.svg", "train: accuracy", "epoch", "accuracy (%)", acc);
}

// FNV-1a: the same on every rank and host (std::hash need not be).
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Every rank must run the same configuration on the same data: compares each rank's figures
// with rank 0's and fails on every rank together, naming what differs (not a hang, not a
// silent divergence).
void check_ranks_agree(vc::dist::Communicator& comm, const std::vector<std::pair<std::string, std::string>>& mine,
                       const std::string& config_yaml) {
  if (comm.size() == 1) return;
  std::string line;
  for (const auto& [k, v] : mine) line += k + "=" + v + "\n";
  const auto all = comm.allgather(line);
  std::string diff;
  bool configs_differ = false;
  for (int r = 1; r < comm.size(); ++r)
    if (all[size_t(r)] != all[0]) {
      std::istringstream a(all[0]), b(all[size_t(r)]);
      std::string la, lb;
      while (std::getline(a, la) && std::getline(b, lb))
        if (la != lb) {
          diff += "; rank " + std::to_string(r) + " has " + lb + " where rank 0 has " + la;
          configs_differ |= la.rfind("config hash", 0) == 0;
        }
    }
  if (configs_differ) {
    // Name the first differing config line of each rank (every rank gathers, so all can say it).
    const auto texts = comm.allgather(config_yaml);
    for (int r = 1; r < comm.size(); ++r) {
      std::istringstream a(texts[0]), b(texts[size_t(r)]);
      std::string la, lb;
      while (true) {
        const bool ga = bool(std::getline(a, la)), gb = bool(std::getline(b, lb));
        if (!ga && !gb) break;
        if (!ga || !gb || la != lb) {
          diff += " (first difference: rank " + std::to_string(r) + " '" + (gb ? lb : "<end>") + "', rank 0 '" +
                  (ga ? la : "<end>") + "')";
          break;
        }
      }
    }
  }
  if (!diff.empty())
    vc::dist::fail_collectively("distributed: the " + std::to_string(comm.size()) +
                                " ranks must run the same configuration on the same data" + diff);
}

}  // namespace

int cmd_train(int argc, char** argv) {
  std::vector<char*> args;
  std::vector<std::string> opts;
  split_opts(argc, argv, args, opts);
  cxxopts::Options o(argv[0],
                     "Train a video model (MODEL.NAME: baseline | claver) from CLIP weights (MODEL.PRETRAINED).\n"
                     "Writes <output>/config.yaml, log.txt, log.jsonl, checkpoint_last/best.safetensors, loss.svg,\n"
                     "accuracy.svg (TRAIN.AVERAGE_EPOCHS > 0: also epoch_<e>.safetensors and checkpoint_avg.safetensors).\n"
                     "Settings: --config YAML (BASE inheritance), then --opts KEY VALUE ... (last).");
  o.add_options()
      ("config", "YAML config (e.g. models/configs/fm_tiny_claver.yaml)", cxxopts::value<std::string>())
      ("output", "output folder (OUTPUT)", cxxopts::value<std::string>())
      ("resume", "continue the run in --output from its checkpoint_last")
      ("stop-at", "stop after this optimizer step (saving checkpoint_last) as if interrupted", cxxopts::value<int64_t>())
      ("threads", "CPU threads (0 = all)", cxxopts::value<int>()->default_value("0"))
      ("q,quiet", "no progress line")
      ("help-config", "list the config keys and their defaults")
      ("opts", "KEY VALUE ... config overrides; must come last")
      ("h,help", "show this help");
  auto r = o.parse(int(args.size()), args.data());
  Config cfg = video_config_defaults();
  if (r.count("help")) return std::cout << o.help(), 0;
  if (r.count("help-config")) return std::cout << cfg.help(), 0;
  if (!r.unmatched().empty()) vc::fail("unexpected argument '", r.unmatched()[0], "'");
  if (r["threads"].as<int>() > 0) vc::set_num_threads(r["threads"].as<int>());
  const bool resume = r.count("resume") > 0;
  vc::dist::Communicator& comm = vc::dist::world();  // one process unless started by mpirun
  const int64_t W = comm.size(), rank = comm.rank();
  const bool lead = rank == 0;  // writes logs, checkpoints and curves
  const bool quiet = r.count("quiet") > 0 || !lead;

  // ---- settings: (resume: the run's own) defaults, --config, --output, --opts
  std::string out;
  if (r.count("output")) out = r["output"].as<std::string>();
  if (resume) {
    if (out.empty()) vc::fail("--resume needs --output DIR (the run to continue)");
    RunCheckpoints c(out);
    cfg.load_yaml_text(c.last_config(), c.last_path());
  } else if (!r.count("config")) {
    vc::fail("--config FILE is required (e.g. models/configs/fm_tiny_claver.yaml)");
  }
  if (r.count("config")) cfg.load_yaml_file(r["config"].as<std::string>());
  if (!out.empty()) cfg.set("OUTPUT", out, "--output");
  cfg.apply_opts(opts);
  out = cfg.str("OUTPUT");
  if (out.empty()) vc::fail("no output folder: pass --output DIR (or set OUTPUT)");
  RunCheckpoints ckpts(out);
  if (!resume && ckpts.has_last())
    vc::fail("'", out, "' already holds a run (", ckpts.last_path(), "): pass --resume to continue it, or choose another --output");
  const std::string root = cfg.str("DATA.ROOT");
  if (root.empty()) vc::fail("config DATA.ROOT is empty: set it to a dataset folder (e.g. --opts DATA.ROOT data/fashion-motion)");
  if (!vc::data::is_directory(root)) vc::fail("DATA.ROOT: dataset folder '", root, "' does not exist");

  // ---- labels, model, prompts
  const vc::data::LabelSet labels = vc::data::read_labels(data_path(cfg, "DATA.LABEL_LIST"));
  const int64_t K = labels.size();
  const uint64_t seed = uint64_t(cfg.integer("SEED"));
  nn::TrainingState state;
  state.rng.seed = seed;
  VideoSetup setup = build_model_for_training(cfg, state.rng);
  auto& model = *setup.model;
  const Tensor prompt_tokens = model.tokenize(load_prompts(cfg, labels.names), *setup.tokenizer);

  // ---- data
  vc::data::ListOptions lo;
  lo.num_classes = K;
  vc::data::VideoDataset train_ds =
      vc::data::VideoDataset::from_list(data_path(cfg, "DATA.TRAIN_FILE"), dataset_options(cfg, K, false), lo);
  const int64_t B = cfg.integer("TRAIN.BATCH_SIZE"), accum = cfg.integer("TRAIN.ACCUMULATION_STEPS");
  VC_CHECK(B >= 1 && B <= train_ds.size(), "config TRAIN.BATCH_SIZE = ", B, " must be in [1, ", train_ds.size(),
           "] (the training videos)");
  VC_CHECK(accum >= 1, "config TRAIN.ACCUMULATION_STEPS = ", accum, " must be at least 1");
  vc::data::LoaderOptions lopt;
  lopt.batch_size = B;
  lopt.workers = int(cfg.integer("DATA.NUM_WORKERS"));
  lopt.train = true;
  lopt.seed = seed;
  lopt.rank = rank;
  lopt.world_size = W;
  lopt.soft_targets = cfg.number("AUG.LABEL_SMOOTH") > 0;
  lopt.mix = {cfg.number("AUG.MIXUP"), cfg.number("AUG.CUTMIX"), cfg.number("AUG.MIXUP_SWITCH_PROB"), 1.0,
              cfg.number("AUG.LABEL_SMOOTH")};
  vc::data::Loader loader(train_ds, lopt);
  const int64_t steps_per_epoch = loader.num_batches() / accum;
  VC_CHECK(steps_per_epoch >= 1, "an epoch of ", loader.num_batches(), " batches", W > 1 ? " per rank" : "",
           " holds no optimizer step of ", accum, " accumulated batches");
  const int64_t max_steps = cfg.integer("TRAIN.MAX_STEPS");
  const int64_t total = max_steps > 0 ? max_steps : cfg.integer("TRAIN.EPOCHS") * steps_per_epoch;
  VC_CHECK(total > 0, "nothing to train: TRAIN.EPOCHS and TRAIN.MAX_STEPS give 0 steps");
  const int64_t epochs = (total + steps_per_epoch - 1) / steps_per_epoch;
  const std::string val_list = cfg.str("DATA.VAL_FILE").empty() ? "" : data_path(cfg, "DATA.VAL_FILE");
  // Checkpoint averaging over epochs avg_first..epochs (1-based).
  const int64_t avg_epochs = cfg.integer("TRAIN.AVERAGE_EPOCHS");
  VC_CHECK(avg_epochs >= 0 && avg_epochs <= epochs, "config TRAIN.AVERAGE_EPOCHS = ", avg_epochs, " (from ",
           cfg.source("TRAIN.AVERAGE_EPOCHS"), ") must be in [0, ", epochs, "]: the run has ", epochs,
           " epoch(s) (TRAIN.EPOCHS / TRAIN.MAX_STEPS)");
  const int64_t avg_first = epochs - avg_epochs + 1;
  auto check_epoch_file = [&](int64_t e) {
    VC_CHECK(vc::data::path_exists(ckpts.epoch_path(e)), "TRAIN.AVERAGE_EPOCHS = ", avg_epochs, ": the weights of epoch ",
             e, " ('", ckpts.epoch_path(e),
             "') are missing (was the run begun with a smaller TRAIN.AVERAGE_EPOCHS before --resume?)");
  };

  // ---- optimiser and schedule
  nn::AdamWOptions ao;
  ao.lr = cfg.number("TRAIN.LR");
  ao.beta1 = cfg.number("TRAIN.BETA1");
  ao.beta2 = cfg.number("TRAIN.BETA2");
  ao.eps = cfg.number("TRAIN.EPS");
  nn::AdamW opt(model.param_groups(cfg.number("TRAIN.WEIGHT_DECAY")), ao);
  nn::CosineScheduleOptions so;
  so.base_lr = ao.lr;
  so.min_lr = cfg.number("TRAIN.MIN_LR");
  so.warmup_steps = std::min<int64_t>(total, std::llround(cfg.number("TRAIN.WARMUP_EPOCHS") * double(steps_per_epoch)));
  so.total_steps = total;
  nn::CosineSchedule sched(so);
  state.config = cfg.to_yaml();
  add_setup_extras(setup, state.extra);
  double best_top1 = -1;
  if (resume) {
    nn::TrainingState loaded = ckpts.resume(model, opt, sched);
    loaded.config = state.config;
    for (const auto& [k, v] : state.extra) loaded.extra[k] = v;
    state = loaded;
    if (state.extra.count("best_top1")) best_top1 = std::stod(state.extra["best_top1"]);
    sched = nn::CosineSchedule(so);  // this invocation's (possibly extended) schedule
  }
  // A run killed after its last checkpoint: logs back to that checkpoint (the steps after it
  // are done again), half-written temporaries gone.
  const int64_t log_dropped = resume && lead ? RunLog::rewind(out, state.extra) : 0;
  const int64_t temporaries = resume && lead ? ckpts.remove_temporaries() : 0;
  // Data-parallel: the ranks agree, start from rank 0's weights, and sum their gradients.
  int64_t trainable = 0;
  std::vector<Tensor> trainable_params;
  for (const auto& g : opt.groups())
    for (const auto& [name, t] : g.params) trainable += t.numel(), trainable_params.push_back(t);
  check_ranks_agree(comm, {{"config hash", std::to_string(fnv1a(state.config))},
                           {"trainable parameters", std::to_string(trainable)},
                           {"training videos", std::to_string(train_ds.size())},
                           {"classes", std::to_string(K)},
                           {"step", std::to_string(state.step)}},
                    state.config);
  const std::string ddp_reduce = cfg.str("TRAIN.DDP_REDUCE");
  VC_CHECK(ddp_reduce == "micro_step" || ddp_reduce == "step", "config TRAIN.DDP_REDUCE = '", ddp_reduce,
           "' must be micro_step or step");
  const bool reduce_every_micro_step = ddp_reduce == "micro_step";
  std::unique_ptr<nn::GradientReducer> reducer;
  if (W > 1) {
    nn::broadcast_tensors(model.parameters(), comm);
    reducer = std::make_unique<nn::GradientReducer>(trainable_params, comm);
  }
  const std::string previous_world = state.extra.count("world_size") ? state.extra["world_size"] : "1";
  state.extra["world_size"] = std::to_string(W);
  // Resuming: the epochs to average that already ended must have left their weights.
  for (int64_t e = avg_first; avg_epochs > 0 && e <= epochs; ++e)
    if (std::min(e * steps_per_epoch, total) <= state.step) check_epoch_file(e);

  if (lead) std::filesystem::create_directories(out);
  RunLog log(out, /*append=*/resume, /*echo=*/true, /*write=*/lead);
  if (lead)
    nn::write_file_atomically(out + "/config.yaml", [&](std::FILE* f) {
      std::fwrite(state.config.data(), 1, state.config.size(), f);
    });
  for (const auto& n : setup.notes) log.info("note: " + n);
  if (resume)
    log.info("resuming " + ckpts.last_path() + " at step " + std::to_string(state.step) +
             (log_dropped > 0 ? "; dropped " + std::to_string(log_dropped) + " bytes of log written after it" : "") +
             (temporaries > 0 ? "; removed " + std::to_string(temporaries) + " unfinished temporary file(s)" : ""));
  if (resume && previous_world != std::to_string(W))
    log.info("note: the run was trained on " + previous_world + " rank(s) and continues on " + std::to_string(W) +
             ": it continues bitwise only if ranks x TRAIN.ACCUMULATION_STEPS is unchanged");
  if (W > 1)
    log.info("data-parallel: " + std::to_string(W) + " ranks (" + comm.name() + "), batch " + std::to_string(B) +
             " per rank, " + std::to_string(B * accum * W) + " clips per step; gradients of " +
             std::to_string(reducer->numel()) + " floats in " + std::to_string(reducer->num_buckets()) +
             " bucket(s), summed in rank order after every " + (reduce_every_micro_step ? "micro-step" : "step"));
  int64_t new_params = 0, all_params = 0;
  for (const auto& g : opt.groups())
    for (const auto& [name, t] : g.params) (g.lr_mult != 1.0 ? new_params : all_params) += t.numel();
  log.info("train " + model.name() + ": " + std::to_string(train_ds.size()) + " videos, " + std::to_string(K) +
           " classes, " + std::to_string(prompt_tokens.size(0)) + " prompt variants per class; trainable parameters " +
           std::to_string(all_params + new_params) + " (" + std::to_string(new_params) + " new at " +
           format_number("%g", model.options().new_lr_mult) + "x LR)");
  log.info("schedule: " + std::to_string(total) + " steps (" + std::to_string(epochs) + " epochs of " +
           std::to_string(steps_per_epoch) + "), batch " + std::to_string(B) + " x " + std::to_string(accum) +
           " accumulation, AdamW lr " + format_number("%g", ao.lr) + " warmup " + std::to_string(so.warmup_steps) +
           " steps, threads " + std::to_string(vc::num_threads()));
  {
    nlohmann::ordered_json j;
    j["event"] = resume ? "resume" : "start";
    j["step"] = state.step;
    j["model"] = model.name();
    j["config"] = state.config;
    log.record(j);
  }

  // ---- training
  const int64_t print_freq = std::max<int64_t>(1, cfg.integer("PRINT_FREQ"));
  const int64_t save_freq = cfg.integer("SAVE_FREQ"), eval_every = cfg.integer("TEST.EVAL_EVERY");
  const int64_t stop_at = r.count("stop-at") ? r["stop-at"].as<int64_t>() : -1;
  const double clip_grad = cfg.number("TRAIN.CLIP_GRAD");
  const double loss_scale = 1.0 / double(accum * W);
  const std::vector<Tensor> params = model.parameters();
  Progress progress("train " + model.name(), print_freq, quiet);
  const int64_t first_step = state.step;
  double window_loss = 0;
  int64_t window_n = 0, window_hit = 0, window_items = 0;
  // The model's own per-batch figures (LossOutput::metrics, e.g. STDD's kd_cosine): means over
  // the print window (JSON) and over the epoch (the epoch line).
  std::map<std::string, std::pair<double, int64_t>> window_metrics, epoch_metrics;
  auto t0 = std::chrono::steady_clock::now();
  bool stopped = false;
  std::set<int64_t> epochs_written;  // by this invocation (the others come from before --resume)
  model.train();
  while (state.step < total && !stopped) {
    const int64_t epoch = state.step / steps_per_epoch;
    loader.start_epoch(uint64_t(epoch));
    vc::data::Batch batch;
    for (int64_t skip = (state.step % steps_per_epoch) * accum; skip > 0; --skip) loader.next(batch);  // resume
    while (state.step < total && state.step / steps_per_epoch == epoch) {
      sched.apply(opt, state.step);
      opt.zero_grad();
      double step_loss = 0;
      // Per micro-step: loss, hits, items, then the model's metrics (gathered over the ranks
      // and added in the one-process order m·W + r, so the logs match too).
      std::vector<std::vector<double>> micro(static_cast<size_t>(accum));
      std::vector<std::string> metric_names;
      for (int64_t m = 0; m < accum; ++m) {
        VC_CHECK(loader.next(batch), "train: the loader ended early in epoch ", epoch);
        const Tensor targets = batch.targets.defined() ? batch.targets : batch.labels;
        auto res = model.training_loss(batch.video, prompt_tokens, targets, (state.step * accum + m) * W + rank);
        vc::mul(res.loss, loss_scale).backward();
        if (reducer && (reduce_every_micro_step || m == accum - 1)) reducer->reduce_micro_step();
        const auto pred = vc::argmax(vc::mean(res.logits.detach(), {1}), 1).to_vector<int64_t>();
        const auto y = batch.labels.to_vector<int64_t>();
        int64_t hit = 0;
        for (size_t i = 0; i < y.size(); ++i) hit += pred[i] == y[i];
        micro[size_t(m)] = {res.loss.item(), double(hit), double(y.size())};
        metric_names.clear();
        for (const auto& [name, v] : res.metrics) micro[size_t(m)].push_back(v), metric_names.push_back(name);
      }
      nn::kill_point("train_step");  // fault tests (nn/faults.h)
      if (reducer) reducer->finish();
      std::vector<std::vector<std::vector<double>>> ranks_micro{micro};  // [rank][m][figure]
      if (W > 1) {
        std::string mine;
        for (const auto& v : micro) {
          const int64_t n = int64_t(v.size());
          mine.append(reinterpret_cast<const char*>(&n), sizeof n);
          mine.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
        }
        ranks_micro.clear();
        for (const std::string& part : comm.allgather(mine)) {
          auto& rm = ranks_micro.emplace_back();
          for (size_t at = 0; at < part.size();) {
            int64_t n = 0;
            std::memcpy(&n, part.data() + at, sizeof n);
            at += sizeof n;
            rm.emplace_back(size_t(n));
            std::memcpy(rm.back().data(), part.data() + at, size_t(n) * sizeof(double));
            at += size_t(n) * sizeof(double);
          }
        }
      }
      for (int64_t m = 0; m < accum; ++m)
        for (int64_t q = 0; q < W; ++q) {
          const auto& v = ranks_micro[size_t(q)][size_t(m)];
          const double loss = v[0];
          // Every rank reads every rank's loss: a non-finite one stops them all with this message.
          if (!std::isfinite(loss))
            vc::dist::fail_collectively("train: the loss is " + format_number("%g", loss) + " at step " +
                                        std::to_string(state.step) + " (try a lower TRAIN.LR)");
          step_loss += loss * loss_scale;
          for (size_t k = 0; k < metric_names.size() && 3 + k < v.size(); ++k)
            for (auto* acc : {&window_metrics, &epoch_metrics})
              (*acc)[metric_names[k]].first += v[3 + k], ++(*acc)[metric_names[k]].second;
          window_hit += int64_t(v[1]);
          window_items += int64_t(v[2]);
        }
      if (clip_grad > 0) nn::clip_grad_norm(params, clip_grad);
      opt.step();
      ++state.step;
      state.epoch = state.step / steps_per_epoch;
      window_loss += step_loss, ++window_n;

      ProgressInfo p;
      p.epoch = epoch + 1, p.epochs = epochs, p.step = state.step, p.steps = total, p.loss = step_loss, p.lr = opt.lr();
      progress.update(p, B * accum * W);
      if (state.step % print_freq == 0 || state.step == total) {
        nlohmann::ordered_json j;
        j["event"] = "train";
        j["step"] = state.step;
        j["epoch"] = epoch + 1;
        j["epoch_progress"] = double(state.step) / double(steps_per_epoch);
        j["loss"] = window_loss / double(window_n);
        j["batch_top1"] = 100.0 * double(window_hit) / double(std::max<int64_t>(1, window_items));
        j["lr"] = opt.lr();
        j["clips_per_s"] = progress.items_per_second();
        for (const auto& [name, acc] : window_metrics) j[name] = acc.first / double(acc.second);
        j["rss_mib"] = std::round(current_rss_mib() * 10) / 10;
        log.record(j);
        window_loss = 0, window_n = 0, window_hit = 0, window_items = 0;
        window_metrics.clear();
      }
      const bool epoch_end = state.step % steps_per_epoch == 0 || state.step == total;
      if (epoch_end) {
        progress.finish();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        log.info("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs) + " done at step " +
                 std::to_string(state.step) + " (" + Progress::format_duration(secs) + " so far, " +
                 format_number("%.1f", progress.items_per_second()) + " clips/s)" + [&] {
                   std::string m;
                   for (const auto& [name, acc] : epoch_metrics)
                     m += "  " + name + " " + format_number("%.4f", acc.first / double(acc.second));
                   epoch_metrics.clear();
                   return m;
                 }());
        const bool last = state.step == total;
        if (!val_list.empty() && ((eval_every > 0 && (epoch + 1) % eval_every == 0) || last)) {
          model.eval();
          EvalReport v = evaluate_list(model, *setup.tokenizer, cfg, val_list, labels.names, false, false, &comm);
          model.train();
          nlohmann::ordered_json j = report_json(v);
          j["event"] = "val";
          j["step"] = state.step;
          j["epoch"] = epoch + 1;
          log.record(j);
          log.info("val epoch " + std::to_string(epoch + 1) + ": " + report_line(v));
          if (v.acc.top1 > best_top1) {
            best_top1 = v.acc.top1;
            state.extra["best_top1"] = format_number("%.17g", best_top1);
            state.extra["best_epoch"] = std::to_string(epoch + 1);
            if (lead) ckpts.save_best(model, opt, sched, state);
            log.info("best val top-1 " + format_number("%.2f", best_top1) + " -> " + ckpts.best_path());
          }
        }
      }
      // Before checkpoint_last: a run resumed after this epoch's end must find its weights.
      if (epoch_end && avg_epochs > 0 && epoch + 1 >= avg_first) {
        if (lead) ckpts.save_epoch_weights(epoch + 1, model, state);
        epochs_written.insert(epoch + 1);
        log.info("weights of epoch " + std::to_string(epoch + 1) + " (for TRAIN.AVERAGE_EPOCHS) -> " +
                 ckpts.epoch_path(epoch + 1));
      }
      const bool stop_now = state.step == stop_at;
      if (stop_now) log.info("stopped after step " + std::to_string(state.step) + " (--stop-at); continue with --resume");
      if (lead && (epoch_end || stop_now || (save_freq > 0 && state.step % save_freq == 0))) {
        log.mark(state.extra);  // what --resume keeps of the logs
        ckpts.save_last(model, opt, sched, state);
      }
      if (stop_now) {
        stopped = true;
        break;
      }
    }
  }
  progress.finish();
  if (lead) write_train_curves(out);
  if (W > 1) comm.barrier();  // rank 0's files are written before any rank reads them or exits
  if (stopped) return 0;
  if (best_top1 < 0 && lead) ckpts.save_best(model, opt, sched, state);  // no validation list: best = last
  if (avg_epochs > 0) {
    // The epoch files must be this schedule's: epoch e ends at step min(e * steps_per_epoch, total).
    const std::string range = std::to_string(avg_first) + "-" + std::to_string(epochs);
    std::vector<std::string> files;
    std::string listed;
    for (int64_t e = avg_first; e <= epochs; ++e) {
      const std::string p = ckpts.epoch_path(e);
      check_epoch_file(e);
      const int64_t want = std::min(e * steps_per_epoch, total);
      const nn::SafetensorsFile file(p);
      const auto& meta = file.metadata();
      auto it = meta.find("step");
      VC_CHECK(it != meta.end() && it->second == std::to_string(want), "TRAIN.AVERAGE_EPOCHS: '", p,
               "' holds the weights of step ", it == meta.end() ? std::string("?") : it->second, ", but epoch ", e,
               " of this schedule ends at step ", want);
      files.push_back(p);
      listed += (listed.empty() ? "" : ", ") + p + (epochs_written.count(e) ? "" : " (written before --resume)");
    }
    log.info("averaging the weights of epochs " + range + " (TRAIN.AVERAGE_EPOCHS = " + std::to_string(avg_epochs) +
             "): " + listed);
    model.load_state_dict(nn::average_checkpoints(files), /*strict=*/true);
    state.extra["averaged_epochs"] = range;
    if (!val_list.empty()) {
      model.eval();
      EvalReport v = evaluate_list(model, *setup.tokenizer, cfg, val_list, labels.names, false, false, &comm);
      nlohmann::ordered_json j = report_json(v);
      j["event"] = "val_avg";
      j["step"] = state.step;
      j["epochs"] = {avg_first, epochs};
      j["files"] = files;
      log.record(j);
      log.info("val averaged (epochs " + range + "): " + report_line(v));
      state.extra["avg_top1"] = format_number("%.17g", v.acc.top1);
    }
    if (lead) ckpts.save_avg(model, opt, sched, state);
    log.info("averaged weights of epochs " + range + " -> " + ckpts.avg_path());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (reducer)
    log.info("data-parallel: rank 0 spent " + format_number("%.2f", reducer->seconds()) + " s of " +
             format_number("%.2f", secs) + " s in the gradient all-reduce (" +
             format_number("%.1f", 100.0 * reducer->seconds() / std::max(secs, 1e-9)) + "%; " +
             format_number("%.2f", reducer->allreduce_seconds()) + " s inside the communicator)");
  log.info("trained " + std::to_string(state.step - first_step) + " steps in " + Progress::format_duration(secs) +
           " (" + format_number("%.1f", double((state.step - first_step) * B * accum * W) / std::max(secs, 1e-9)) +
           " clips/s); checkpoints: " + ckpts.last_path() + ", " + ckpts.best_path() +
           (avg_epochs > 0 ? ", " + ckpts.avg_path() : std::string()) + "; curves: " + out +
           "/loss.svg, " + out + "/accuracy.svg");
  log.info("memory: peak RSS " + format_number("%.1f", peak_rss_mib()) + " MiB, RSS at the end " +
           format_number("%.1f", current_rss_mib()) + " MiB");
  {
    nlohmann::ordered_json j;
    j["event"] = "memory";
    j["step"] = state.step;
    j["peak_rss_mib"] = std::round(peak_rss_mib() * 10) / 10;
    j["rss_mib"] = std::round(current_rss_mib() * 10) / 10;
    log.record(j);
  }
  return 0;
}

}  // namespace verbclip
