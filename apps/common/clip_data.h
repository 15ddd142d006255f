// Image-text data for CLIP apps: the captions set of Fashion-Motion (<data>/captions/
// {train,val}.tsv, "<image>\t<caption>"), image batches normalised for CLIP, and the
// zero-shot test on Fashion-MNIST.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/rng.h"
#include "data/transforms.h"
#include "models/clip/clip.h"
#include "models/clip/text_tokenizer.h"
#include "nn/safetensors.h"

namespace verbclip {

struct CaptionSet {
  std::vector<vc::data::Image> images;  // decoded, all the same size
  std::vector<std::string> captions;
  int64_t size() const { return int64_t(images.size()); }
};

// Reads <root>/captions/<split>.tsv and decodes every image it lists (relative to
// <root>/captions/). Errors name the file and line.
CaptionSet read_caption_set(const std::string& root, const std::string& split);

// The parts of a Fashion-Motion caption, "a {colour} {noun} {posture} {place}" (data/
// fashion_motion.cpp render_caption), e.g. "a red sneaker lying on its side near the top
// left": colour "red", noun "sneaker", posture "lying on its side", place "near the top
// left". ok = false when the caption is not of that form (then it is used as it is).
struct CaptionParts {
  bool ok = false;
  std::string colour, noun, posture, place;
};
CaptionParts parse_caption(const std::string& caption);

// Training-time caption augmentation for pretrain-clip. The full captions name four things
// at once; with 10 nouns and 8 colours a contrastive batch rarely pairs an item with a
// text that names little more than its noun, which is what a zero-shot prompt does. So
// the colour is kept with probability `keep_colour`, posture and place each with `keep`,
// both are dropped together with probability `bare`, and with probability `photo` the
// caption starts "a photo of a ..." (the zero-shot prompt's wording): a short caption is
// then e.g. "a photo of a sneaker" or "a red sneaker near the top left".
// keep = 1, bare = 0 and photo = 0 leave every caption as it is.
struct CaptionAugment {
  double keep_colour = 1.0;
  double keep = 1.0;
  double photo = 0.0;
  double bare = 0.0;
};
// What augment_caption kept: the parts (dropped ones empty) and the "a photo of" prefix.
struct KeptCaption {
  CaptionParts parts;
  bool photo = false;
};
// "a [photo of a ][colour ]noun[ posture][ place]": empty parts are left out.
std::string compose_caption(const CaptionParts& parts, bool photo);
// `strength` in [0, 1] scales the dropping (0: keep everything), for a ramp over training.
// `kept`, when given, receives what was kept (parts.ok = false for an unparsed caption).
std::string augment_caption(const std::string& caption, const CaptionParts& parts, const CaptionAugment& aug,
                            vc::data::SampleRng& rng, double strength = 1.0, KeptCaption* kept = nullptr);

// Hard negative captions for one augmented caption (NegCLIP, Yuksekgonul et al. 2023): the
// same words with the noun replaced by `noun_swaps` distinct other nouns (random), then with
// the posture replaced by up to `posture_swaps` other postures when the caption names one.
// A contrastive batch separates most pairs by colour and place alone, so without these the
// towers get little signal on shape; with them each image must tell its noun and posture
// from the rest. None for an unparsed caption. A fixed number of draws per call.
std::vector<std::string> swapped_captions(const KeptCaption& kept, int64_t noun_swaps, int64_t posture_swaps,
                                          vc::data::SampleRng& rng);

// Images (uint8 RGB H×W) -> float32 [N, 3, size, size], CLIP-normalised. Each image is cut
// to size×size at (top[i], left[i]); empty top/left = centre crop (mmaction2 rule).
vc::Tensor image_batch(const std::vector<const vc::data::Image*>& images, int64_t size,
                       const std::vector<int64_t>& top = {}, const std::vector<int64_t>& left = {},
                       const vc::data::Normalization& norm = vc::data::Normalization::clip());

// One image for inference as CLIP preprocesses it: the short side resized (bilinear) to
// `resize_short` (0: left as is), centre crop input×input, CLIP normalisation -> [3, S, S].
// An image smaller than the crop is an error naming it.
vc::Tensor preprocess_image(const vc::data::Image& image, int64_t input, int64_t resize_short,
                            const std::string& name);

// The resize the weights were trained with (metadata "resize_short", written by
// pretrain-clip: Fashion-Motion frames are used as they are); else CLIP's own rule, the
// short side to the input size.
int64_t default_resize_short(const vc::nn::Metadata& metadata, int64_t input);

// L2-normalised features, computed without grad in batches (eval mode is the caller's).
vc::Tensor image_features(const vc::clip::CLIP& model, const std::vector<const vc::data::Image*>& images,
                          int64_t batch = 256);
vc::Tensor text_features(const vc::clip::CLIP& model, const vc::clip::TextTokenizer& tok,
                         const std::vector<std::string>& texts);

struct ZeroShotOptions {
  std::string fashion_mnist_dir;        // the IDX files (data/fashion_motion.h)
  std::string prompt = "a photo of a {}";
  int64_t limit = 0;                    // first N test images; 0 = all 10,000
  int64_t render_size = 40;             // rendered like the caption images, centre-cropped
  uint64_t seed = 1;                    // background, grain and colour of each rendering
};

struct ZeroShotResult {
  double accuracy = 0;                  // percent
  std::array<double, 10> per_class{};   // percent, in Fashion-MNIST label order
  int64_t images = 0;
  std::vector<std::string> prompts;
};

// Fashion-MNIST test items drawn as the caption images draw them (centred, upright, a
// palette colour per item on the dark noisy background), classified by the nearest prompt
// "a photo of a {noun}" over the 10 nouns.
ZeroShotResult fashion_mnist_zero_shot(const vc::clip::CLIP& model, const vc::clip::TextTokenizer& tok,
                                       const ZeroShotOptions& options);

}  // namespace verbclip
