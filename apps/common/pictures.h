// Pictures the video apps write next to their logs:
//   confusion matrix   SVG: rows = true class, columns = predicted class, cell shade = the
//                      row-normalised fraction, counts printed in the cells
//   attention map      PNG: for each frame of one clip, the frame itself (top row) and the
//                      class token's attention over its patches in the last spatial block
//                      (bottom row, as a heat map over the frame), each scaled up
// Both are written to a temporary file and renamed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace verbclip {

void write_confusion_svg(const std::string& path, const std::string& title,
                         const std::vector<std::vector<int64_t>>& confusion,
                         const std::vector<std::string>& class_names);

// frames: [T, 3, S, S] normalised pixels (shown min-max scaled); attention: [T, g, g].
void write_attention_png(const std::string& path, const vc::Tensor& frames, const vc::Tensor& attention,
                         int scale = 4);

// ALT's token merging: slots int64 [T, g*g], the merged token each patch ended in (the class
// token left out). Top row the frames, bottom row the patches coloured by their merged token
// (a fixed palette by slot id) over a dimmed frame, with dark lines between different tokens.
void write_merge_png(const std::string& path, const vc::Tensor& frames, const vc::Tensor& slots, int scale = 4);

}  // namespace verbclip
