#include "apps/common/clip_data.h"

#include <algorithm>

#include "data/fashion_motion.h"
#include "data/util.h"
#include "engine/engine.h"

namespace verbclip {

using vc::Tensor;
using vc::fail;
namespace data = vc::data;

CaptionSet read_caption_set(const std::string& root, const std::string& split) {
  const std::string dir = data::join_path(root, "captions");
  const std::string list = data::join_path(dir, split + ".tsv");
  if (!data::path_exists(list))
    fail("no captions list '", list, "' (is '", root, "' a dataset written by `verbclip make-data`?)");
  CaptionSet set;
  int64_t line_no = 0;
  for (const std::string& line : data::read_lines(list, "captions list")) {
    ++line_no;
    if (data::trim(line).empty()) continue;
    size_t tab = line.find('\t');
    if (tab == std::string::npos || tab == 0 || tab + 1 >= line.size())
      fail(list, ":", line_no, ": expected '<image>\\t<caption>'");
    set.images.push_back(data::read_image(data::join_path(dir, line.substr(0, tab))));
    set.captions.push_back(line.substr(tab + 1));
    const auto& a = set.images.front();
    const auto& b = set.images.back();
    if (a.height != b.height || a.width != b.width)
      fail(list, ":", line_no, ": image is ", b.height, "x", b.width, ", the first one ", a.height, "x", a.width);
  }
  if (set.images.empty()) fail("captions list '", list, "' is empty");
  return set;
}

namespace {

bool starts_with_at(const std::string& s, size_t at, const std::string& prefix) {
  return s.size() >= at + prefix.size() && s.compare(at, prefix.size(), prefix) == 0;
}

}  // namespace

CaptionParts parse_caption(const std::string& caption) {
  CaptionParts p;
  size_t at = 0;
  if (!starts_with_at(caption, at, "a ")) return p;
  at += 2;
  for (const auto& c : data::fm::palette())
    if (starts_with_at(caption, at, std::string(c.name) + " ")) p.colour = c.name;
  if (p.colour.empty()) return p;
  at += p.colour.size() + 1;
  for (const char* n : data::fm::nouns()) {  // the longest noun that matches ("t-shirt", not "shirt")
    std::string noun = n;
    if (noun.size() > p.noun.size() && starts_with_at(caption, at, noun) &&
        (at + noun.size() == caption.size() || caption[at + noun.size()] == ' '))
      p.noun = noun;
  }
  if (p.noun.empty()) return p;
  at += p.noun.size();
  std::string rest = at < caption.size() ? caption.substr(at + 1) : "";
  size_t place = std::string::npos;
  for (const char* marker : {" near the ", " in the "}) place = std::min(place, rest.find(marker));
  if (place == std::string::npos) {
    p.posture = rest;
  } else {
    p.posture = rest.substr(0, place);
    p.place = rest.substr(place + 1);
  }
  p.ok = true;
  return p;
}

std::string compose_caption(const CaptionParts& parts, bool photo) {
  std::string s = photo ? "a photo of a " : "a ";
  if (!parts.colour.empty()) s += parts.colour + " ";
  s += parts.noun;
  if (!parts.posture.empty()) s += " " + parts.posture;
  if (!parts.place.empty()) s += " " + parts.place;
  return s;
}

std::string augment_caption(const std::string& caption, const CaptionParts& parts, const CaptionAugment& aug,
                            data::SampleRng& rng, double strength, KeptCaption* kept) {
  // A fixed number of draws per caption, whatever the settings.
  auto keep = [&](double p) { return rng.bernoulli(1.0 - strength * (1.0 - p)); };
  const bool colour = keep(aug.keep_colour);
  const bool posture = keep(aug.keep);
  const bool place = keep(aug.keep);
  const bool photo = rng.bernoulli(aug.photo);
  const bool bare = !keep(1.0 - aug.bare);
  if (kept) *kept = KeptCaption{};
  if (!parts.ok) return caption;
  CaptionParts k = parts;
  if (!colour) k.colour.clear();
  if (!posture || bare) k.posture.clear();
  if (!place || bare) k.place.clear();
  if (kept) *kept = KeptCaption{k, photo};
  return compose_caption(k, photo);
}

std::vector<std::string> swapped_captions(const KeptCaption& kept, int64_t noun_swaps, int64_t posture_swaps,
                                          data::SampleRng& rng) {
  const auto& nouns = data::fm::nouns();
  const auto& postures = data::fm::postures();
  // A fixed number of draws: a shuffle of the nouns and of the postures.
  std::vector<size_t> noun_order(nouns.size()), posture_order(postures.size());
  for (size_t i = 0; i < noun_order.size(); ++i) noun_order[i] = i;
  for (size_t i = 0; i < posture_order.size(); ++i) posture_order[i] = i;
  for (size_t i = noun_order.size() - 1; i > 0; --i) std::swap(noun_order[i], noun_order[size_t(rng.randint(int64_t(i) + 1))]);
  for (size_t i = posture_order.size() - 1; i > 0; --i)
    std::swap(posture_order[i], posture_order[size_t(rng.randint(int64_t(i) + 1))]);
  std::vector<std::string> out;
  if (!kept.parts.ok) return out;
  int64_t n = 0;
  for (size_t i : noun_order)
    if (n < noun_swaps && kept.parts.noun != nouns[i]) {
      CaptionParts q = kept.parts;
      q.noun = nouns[i];
      out.push_back(compose_caption(q, kept.photo)), ++n;
    }
  n = 0;
  if (!kept.parts.posture.empty())
    for (size_t i : posture_order)
      if (n < posture_swaps && kept.parts.posture != postures[i]) {
        CaptionParts q = kept.parts;
        q.posture = postures[i];
        out.push_back(compose_caption(q, kept.photo)), ++n;
      }
  return out;
}

Tensor image_batch(const std::vector<const data::Image*>& images, int64_t size,
                   const std::vector<int64_t>& top, const std::vector<int64_t>& left,
                   const data::Normalization& norm) {
  const int64_t n = int64_t(images.size());
  std::vector<float> out(size_t(n * 3 * size * size));
  for (int64_t i = 0; i < n; ++i) {
    const data::Image& img = *images[size_t(i)];
    VC_CHECK(img.height >= size && img.width >= size, "image_batch: image ", img.height, "x",
             img.width, " is smaller than the input size ", size);
    int64_t t = top.empty() ? (img.height - size) / 2 : top[size_t(i)];
    int64_t l = left.empty() ? (img.width - size) / 2 : left[size_t(i)];
    VC_CHECK(t >= 0 && l >= 0 && t + size <= img.height && l + size <= img.width,
             "image_batch: crop outside the image");
    float* o = out.data() + i * 3 * size * size;
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        const uint8_t* p = img.at(int(t + y), int(l + x));
        for (int c = 0; c < 3; ++c)
          o[(c * size + y) * size + x] = (float(p[c]) - norm.mean[size_t(c)]) / norm.std[size_t(c)];
      }
  }
  return Tensor::from_vector(out, {n, 3, size, size});
}

Tensor preprocess_image(const data::Image& image, int64_t input, int64_t resize_short,
                        const std::string& name) {
  data::Clip c = data::Clip::zeros(1, image.height, image.width);
  for (size_t i = 0; i < image.pixels.size(); ++i) c.data[i] = float(image.pixels[i]);
  if (resize_short > 0 && resize_short != std::min(c.height, c.width)) c = data::resize_short_side(c, resize_short);
  if (c.height < input || c.width < input)
    fail("image '", name, "' is ", c.height, "x", c.width, " (after resizing), smaller than the model's input ",
         input, "x", input, " (see --resize)");
  c = data::center_crop(c, input, input);
  std::vector<float> planes(size_t(3 * input * input));
  data::normalize_to_planes(c, data::Normalization::clip(), planes.data());
  return Tensor::from_vector(planes, {3, input, input});
}

int64_t default_resize_short(const vc::nn::Metadata& metadata, int64_t input) {
  auto it = metadata.find("resize_short");
  if (it == metadata.end()) return input;
  int64_t v = 0;
  if (!data::parse_int(it->second, v) || v < 0) fail("weights metadata 'resize_short' = '", it->second, "' is not a size");
  return v;
}

Tensor image_features(const vc::clip::CLIP& model, const std::vector<const data::Image*>& images,
                      int64_t batch) {
  vc::NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (size_t i = 0; i < images.size(); i += size_t(batch)) {
    std::vector<const data::Image*> chunk(images.begin() + long(i),
                                          images.begin() + long(std::min(images.size(), i + size_t(batch))));
    parts.push_back(vc::l2_normalize(model.encode_image(image_batch(chunk, model.config.image_size)), -1));
  }
  VC_CHECK(!parts.empty(), "image_features: no images");
  return parts.size() == 1 ? parts[0] : vc::concat(parts, 0);
}

Tensor text_features(const vc::clip::CLIP& model, const vc::clip::TextTokenizer& tok,
                     const std::vector<std::string>& texts) {
  vc::NoGradGuard no_grad;
  VC_CHECK(!texts.empty(), "text_features: no texts");
  Tensor tokens = vc::clip::trim_padding(tok.tokenize(texts, model.config.context_length));
  return vc::l2_normalize(model.encode_text(tokens), -1);
}

ZeroShotResult fashion_mnist_zero_shot(const vc::clip::CLIP& model, const vc::clip::TextTokenizer& tok,
                                       const ZeroShotOptions& opt) {
  namespace fm = data::fm;
  fm::Mnist test = fm::read_fashion_mnist(opt.fashion_mnist_dir, /*train=*/false);
  int64_t n = opt.limit > 0 ? std::min(opt.limit, test.count) : test.count;
  ZeroShotResult r;
  for (const char* noun : fm::nouns()) {
    std::string p = opt.prompt;
    size_t at = p.find("{}");
    VC_CHECK(at != std::string::npos, "zero-shot prompt '", opt.prompt, "' has no {} for the noun");
    r.prompts.push_back(p.replace(at, 2, noun));
  }
  Tensor text = text_features(model, tok, r.prompts);  // [10, D]

  fm::RenderOptions ro;
  ro.seed = opt.seed, ro.frames = 1, ro.size = opt.render_size;
  std::array<int64_t, 10> correct{}, total{};
  const int64_t chunk = 500;
  for (int64_t start = 0; start < n; start += chunk) {
    std::vector<data::Image> imgs;
    for (int64_t i = start; i < std::min(n, start + chunk); ++i) {
      fm::VideoSpec v;
      v.noun = test.labels[size_t(i)];
      v.image_index = i;
      fm::FrameState st;
      st.cx = st.cy = double(opt.render_size) / 2;
      st.color = int(i % int64_t(fm::palette().size()));
      v.frames = {st};
      imgs.push_back(fm::render_video(ro, fm::Split::Test, i, v, test)[0]);
    }
    std::vector<const data::Image*> ptrs;
    for (const auto& im : imgs) ptrs.push_back(&im);
    vc::NoGradGuard no_grad;
    Tensor sims = vc::matmul(image_features(model, ptrs), text.transpose(0, 1));  // [b, 10]
    std::vector<int64_t> pred = vc::argmax(sims, 1).to_vector<int64_t>();
    for (size_t k = 0; k < pred.size(); ++k) {
      int label = test.labels[size_t(start) + k];
      total[size_t(label)]++;
      if (pred[k] == label) correct[size_t(label)]++;
    }
  }
  int64_t c = 0;
  for (int k = 0; k < 10; ++k) {
    c += correct[size_t(k)];
    r.per_class[size_t(k)] = total[size_t(k)] ? 100.0 * double(correct[size_t(k)]) / double(total[size_t(k)]) : 0;
  }
  r.images = n;
  r.accuracy = n ? 100.0 * double(c) / double(n) : 0;
  return r;
}

}  // namespace verbclip
