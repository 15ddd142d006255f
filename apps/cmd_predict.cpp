// verbclip predict: the top-k classes of one clip, for class names and prompt templates the
// user gives (open-vocabulary inference with a `verbclip train` checkpoint).
//
//   verbclip predict --weights run/checkpoint_best.safetensors --labels my_labels.txt
//                    --frames clip_dir/ [--template "a video of {}"] [--topk 5]
//   verbclip predict ... --video clip.mp4
//
// The clip: the images of --frames (sorted by name), the images given, in order, or the frames
// of a video file (--video, decoded with FFmpeg: only the T frames used); T frames
// are taken at the TSN segment centres (as at test time), centre-cropped by the checkpoint's
// pipeline. Probabilities: softmax over the given classes, averaged over the templates
// (the model's scoring rule).
#include <cxxopts.hpp>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <map>

#include "apps/commands.h"
#include "apps/common/config.h"
#include "apps/common/pictures.h"
#include "apps/common/video_run.h"
#include "models/alt.h"
#include "data/annotations.h"
#include "data/image.h"
#include "data/sampling.h"
#include "data/transforms.h"
#include "data/util.h"
#include "data/video.h"
#include "engine/engine.h"
#include "models/stdd.h"
#include "models/tcclip.h"

namespace verbclip {

namespace {

using vc::Tensor;
namespace fs = std::filesystem;

bool is_image_file(const fs::path& p) {
  std::string e = p.extension().string();
  for (char& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp";
}

std::vector<std::string> frames_in(const std::string& dir) {
  VC_CHECK(vc::data::is_directory(dir), "--frames: folder '", dir, "' does not exist");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  VC_CHECK(!files.empty(), "--frames: folder '", dir, "' holds no .jpg/.jpeg/.png/.bmp images");
  return files;
}

}  // namespace

int cmd_predict(int argc, char** argv) {
  cxxopts::Options o(argv[0],
                     "Top-k classes of one clip with a `verbclip train` checkpoint, for your own class names and\n"
                     "templates. The clip is a folder of frames (--frames) or a list of images.");
  o.add_options()
      ("weights", "train checkpoint (checkpoint_best.safetensors)", cxxopts::value<std::string>())
      ("labels", "class names: csv (id,name), json, or one per line", cxxopts::value<std::string>())
      ("frames", "folder of frames (sorted by file name)", cxxopts::value<std::string>())
      ("video", "a video file (.mp4, .avi, .mkv, .webm, ...)", cxxopts::value<std::string>())
      ("template", "prompt template with {} for the class name (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("topk", "classes to show", cxxopts::value<int64_t>()->default_value("5"))
      ("attention", "also write the class token's attention map of the clip to this PNG", cxxopts::value<std::string>())
      ("membership", "TC-CLIP: also write which patches of which frames formed each context token, per layer, to this PNG",
       cxxopts::value<std::string>())
      ("merge-map", "ALT: also write which patches formed each merged token to this PNG", cxxopts::value<std::string>())
      ("windows", "STDD: also write the window shift masks (inference, and one training draw) of the first STCA block to this PNG",
       cxxopts::value<std::string>())
      ("json", "print the result as JSON")
      ("threads", "CPU threads (0 = all)", cxxopts::value<int>()->default_value("0"))
      ("images", "frames in order", cxxopts::value<std::vector<std::string>>())
      ("h,help", "show this help");
  o.parse_positional({"images"});
  o.positional_help("[images...]");
  auto r = o.parse(argc, argv);
  if (r.count("help")) return std::cout << o.help(), 0;
  if (r["threads"].as<int>() > 0) vc::set_num_threads(r["threads"].as<int>());
  if (!r.count("weights")) vc::fail("--weights FILE is required (a checkpoint written by `verbclip train`)");
  if (!r.count("labels")) vc::fail("--labels FILE is required (the class names to choose from)");
  const int sources = int(r.count("frames") > 0) + int(r.count("images") > 0) + int(r.count("video") > 0);
  if (sources > 1) vc::fail("give one of --frames DIR, --video FILE or images, not several");
  if (sources == 0) vc::fail("no clip: give --frames DIR, --video FILE or the frame images");
  const std::string weights = r["weights"].as<std::string>();
  const int64_t topk = r["topk"].as<int64_t>();
  VC_CHECK(topk >= 1, "--topk ", topk, " must be at least 1");

  // ---- model, classes, prompts
  Config cfg = video_config_defaults();
  cfg.load_yaml_text(read_checkpoint_info(weights).config_yaml, weights);
  VideoSetup s = load_trained_model(weights, cfg);
  s.model->eval();
  const std::string labels_path = r["labels"].as<std::string>();
  VC_CHECK(vc::data::path_exists(labels_path), "--labels: file '", labels_path, "' does not exist");
  const std::vector<std::string> names = vc::data::read_labels(labels_path).names;
  VC_CHECK(!names.empty(), "--labels: '", labels_path, "' names no class");
  std::vector<std::string> templates = {"a video of {}"};
  if (r.count("template")) templates = r["template"].as<std::vector<std::string>>();
  for (const auto& t : templates) VC_CHECK(t.find("{}") != std::string::npos, "--template '", t, "' has no {} for the class name");
  vc::models::PromptSet prompts = vc::models::make_prompts(names, templates);

  // ---- the clip: `images` holds the frames the clip's T positions `pos` index
  const int64_t T = s.model->options().num_frames;
  std::vector<std::string> files;
  std::vector<vc::data::Image> images;
  std::vector<int64_t> pos;
  std::string clip_line;
  int64_t source_frames = 0;
  if (r.count("video")) {
    const std::string path = r["video"].as<std::string>();
    vc::data::VideoReader reader(path);
    const vc::data::VideoInfo& in = reader.info();
    const std::vector<int64_t> at = vc::data::segment_offsets_test(in.frames, T, 1);
    images = reader.read(at);  // only the T frames used are decoded and kept
    source_frames = in.frames;
    for (int64_t t = 0; t < T; ++t) pos.push_back(t);
    files = {path};
    clip_line = path + ": " + std::to_string(in.frames) + " frames (" + in.count_source_name() + "), " +
                format_number("%.2f", in.fps) + " fps, " + format_number("%.2f", in.duration) + " s, " +
                std::to_string(in.width) + "x" + std::to_string(in.height) + " " + in.codec + "; " + std::to_string(T) +
                " used";
  } else {
    files = r.count("frames") ? frames_in(r["frames"].as<std::string>()) : r["images"].as<std::vector<std::string>>();
    for (const auto& f : files) {
      images.push_back(vc::data::read_image(f));
      VC_CHECK(images.back().height == images[0].height && images.back().width == images[0].width, "frame '", f,
               "' is ", images.back().height, "x", images.back().width, " but '", files[0], "' is ", images[0].height,
               "x", images[0].width, " (all frames of a clip must have one size)");
    }
    pos = vc::data::segment_offsets_test(int64_t(images.size()), T, 1);
    source_frames = int64_t(images.size());
    clip_line = std::to_string(files.size()) + " frame(s), " + std::to_string(T) + " used";
  }
  for (const auto& im : images)
    VC_CHECK(im.height == images[0].height && im.width == images[0].width, files[0], ": frames of ", images[0].height,
             "x", images[0].width, " and ", im.height, "x", im.width, " (all frames of a clip must have one size)");
  const int64_t N = int64_t(images.size());
  vc::data::TransformOptions topt = dataset_options(cfg, int64_t(names.size()), false).transform;
  const int64_t S = topt.input_size;
  const int64_t short_side = std::min(images[0].height, images[0].width);
  // The checkpoint's frames were round(1.25·S) pixels (Fashion-Motion: 40 for 32 crops); others
  // are resized so that the centre crop sees the same field of view.
  if (topt.resize_short == 0 && short_side != int64_t(std::llround(1.25 * double(S))))
    topt.resize_short = std::llround(1.25 * double(S));
  VC_CHECK(topt.resize_short > 0 || short_side >= S, "frames are ", images[0].height, "x", images[0].width,
           ", smaller than the model's ", S, "x", S, " input");
  vc::data::Clip clip = vc::data::Clip::zeros(T, images[0].height, images[0].width);
  for (int64_t t = 0; t < T; ++t) {
    const auto& im = images[size_t(pos[size_t(t)] % N)];
    for (size_t i = 0; i < im.pixels.size(); ++i) clip.frame(t)[i] = float(im.pixels[i]);
  }
  std::vector<float> buf(size_t(T * 3 * S * S));
  vc::data::transform_test(clip, topt, 0, buf.data());
  Tensor video = Tensor::from_vector(buf, {1, T, 3, S, S});

  // ---- scores
  Tensor scores;
  {
    vc::NoGradGuard no_grad;
    Tensor c = s.model->class_features(s.model->tokenize(prompts, *s.tokenizer));
    scores = s.model->score(s.model->encode_video(video), c);  // [1, K]
  }
  ScoreMatrix m{1, scores.size(1), {}};
  for (float v : scores.contiguous().to_vector<float>()) m.values.push_back(double(v));
  if (s.model->score_kind() != vc::models::VideoModel::ScoreKind::Probabilities) m = softmax_rows(m);
  const std::vector<int64_t> rank = ranking(m, 0);
  const int64_t k = std::min<int64_t>(topk, m.classes);
  if (r.count("json")) {
    nlohmann::ordered_json j;
    j["frames"] = source_frames;
    if (r.count("video")) j["video"] = files[0];
    j["templates"] = templates;
    j["top"] = nlohmann::ordered_json::array();
    for (int64_t i = 0; i < k; ++i)
      j["top"].push_back({{"class", names[size_t(rank[size_t(i)])]}, {"probability", m.at(0, rank[size_t(i)])}});
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "clip: " << clip_line << "; " << names.size() << " classes, "
              << templates.size() << " template(s)\n";
    for (int64_t i = 0; i < k; ++i)
      std::cout << "  " << i + 1 << ". " << names[size_t(rank[size_t(i)])] << "  "
                << format_number("%.2f%%", 100.0 * m.at(0, rank[size_t(i)])) << "\n";
  }
  if (r.count("membership")) {
    const std::string p = r["membership"].as<std::string>();
    const auto* tc = dynamic_cast<const vc::models::TcClipModel*>(s.model.get());
    VC_CHECK(tc, "--membership needs a TC-CLIP model (MODEL.NAME tcclip), got '", s.model->name(), "'");
    std::vector<std::vector<int64_t>> seeds, groups;
    {
      vc::NoGradGuard no_grad;
      auto out = tc->vision(video, /*keep_membership=*/true);
      for (size_t l = 0; l < out.seeds.size(); ++l) {
        seeds.push_back(out.seeds[l].select(0, 0).contiguous().to_vector<int64_t>());
        groups.push_back(out.groups[l].select(0, 0).contiguous().to_vector<int64_t>());
      }
    }
    write_membership_png(p, video.select(0, 0), s.model->clip().config.grid(), seeds, groups);
    if (!r.count("json")) std::cout << "context-token membership: " << p << "\n";
  }
  // ALT: the corpus entities the clip's tokens picked (no noise: the inference picks), per
  // frame the class token's pick and the region picks weighted by the tokens' sizes.
  if (const auto* alt = dynamic_cast<const vc::models::AltModel*>(s.model.get())) {
    vc::NoGradGuard no_grad;
    vc::models::AltModel::Frames f = alt->encode_frames(video);
    if (alt->uses_corpus() && !r.count("json")) {
      std::vector<std::string> entity;
      const std::string cpath = data_path(cfg, "TEXT.CORPUS");
      if (!cpath.empty() && vc::data::path_exists(cpath))
        for (const auto& e : vc::models::parse_corpus(vc::data::read_file_bytes(cpath, "corpus"), cpath))
          entity.push_back(e.entity);
      auto name_of = [&](int64_t k) {
        return k < int64_t(entity.size()) ? entity[size_t(k)] : "entity " + std::to_string(k);
      };
      const int64_t Mt = f.picks.size(1);
      const std::vector<int64_t> picks = f.picks.to_vector<int64_t>();
      const std::vector<float> sizes = f.sizes.to_vector<float>();
      std::cout << "entities picked by the merged tokens (class token | regions, patches per entity):\n";
      for (int64_t t = 0; t < T; ++t) {
        std::map<int64_t, double> weight;
        for (int64_t i = 1; i < Mt; ++i) weight[picks[size_t(t * Mt + i)]] += sizes[size_t(t * Mt + i)];
        std::vector<std::pair<double, int64_t>> order;
        for (const auto& [k, w] : weight) order.push_back({-w, k});
        std::sort(order.begin(), order.end());
        std::cout << "  frame " << t + 1 << ": " << name_of(picks[size_t(t * Mt)]) << " |";
        for (size_t i = 0; i < order.size() && i < 4; ++i)
          std::cout << (i ? ", " : " ") << name_of(order[i].second) << " " << -order[i].first;
        std::cout << "\n";
      }
    }
    if (r.count("merge-map")) {
      const std::string p = r["merge-map"].as<std::string>();
      Tensor patches = f.slots.narrow(1, 1, f.slots.size(1) - 1);  // drop the class token
      write_merge_png(p, video.select(0, 0), patches);
      if (!r.count("json")) std::cout << "merged tokens: " << p << "\n";
    }
  } else if (r.count("merge-map")) {
    vc::fail("--merge-map needs an ALT checkpoint (this one holds '", s.model->name(), "')");
  }
  if (r.count("windows")) {
    // STDD's masks: at inference o_t = t mod J (phase 0, no shuffle) in every block; in training
    // a random phase and frame permutation per block and step (stdd.md §2.3) — one draw shown.
    const std::string p = r["windows"].as<std::string>();
    const auto* st = dynamic_cast<const vc::models::StddModel*>(s.model.get());
    VC_CHECK(st, "--windows needs an STDD model (MODEL.NAME stdd), got '", s.model->name(), "'");
    VC_CHECK(st->stdd_options().wsm, "--windows: this STDD checkpoint has window shift masking off (MODEL.WSM false)");
    int64_t layer = 0;
    const int64_t depth = s.model->clip().config.vision_layers;
    while (layer < depth && !st->stca_in_block(layer)) ++layer;
    VC_CHECK(layer < depth, "--windows: this STDD checkpoint has no STCA block (MODEL.STCA_BLOCKS none)");
    std::vector<std::vector<int64_t>> rows;
    rows.push_back(st->visible_patches(1, layer, -1).contiguous().to_vector<int64_t>());
    s.model->train();
    rows.push_back(st->visible_patches(1, layer, 0).contiguous().to_vector<int64_t>());
    s.model->eval();
    write_windows_png(p, video.select(0, 0), s.model->clip().config.grid(), st->stdd_options().window, rows);
    if (!r.count("json")) std::cout << "window masks (block " << layer << "; inference, then a training draw): " << p << "\n";
  }
  if (r.count("attention")) {
    const std::string p = r["attention"].as<std::string>();
    write_attention_png(p, video.select(0, 0), s.model->attention_map(video).select(0, 0));
    if (!r.count("json")) std::cout << "attention map: " << p << "\n";
  }
  return 0;
}

}  // namespace verbclip
