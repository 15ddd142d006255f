// The micro CLIP of the video-model tests: 16-d embeddings, width-32 towers with 2 heads, a
// one-block text tower with context 10 and vocabulary 18. Each test picks the image size (the
// patch is 4) and the vision depth its model needs.
#pragma once
#include "models/clip/weights.h"

namespace vc::testing {

inline clip::ClipConfig micro_clip_config(int64_t image_size, int64_t vision_layers) {
  clip::ClipConfig c;
  c.name = "micro";
  c.embed_dim = 16;
  c.image_size = image_size, c.patch_size = 4;
  c.vision_width = 32, c.vision_layers = vision_layers, c.vision_heads = 2;
  c.context_length = 10, c.vocab_size = 18;
  c.text_width = 32, c.text_layers = 1, c.text_heads = 2;
  return c;
}

}  // namespace vc::testing
