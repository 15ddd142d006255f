// Pictures the video apps write next to their logs:
//   confusion matrix   SVG: rows = true class, columns = predicted class, cell shade = the
//                      row-normalised fraction, counts printed in the cells
//   attention map      PNG: for each frame of one clip, the frame itself (top row) and the
//                      class token's attention over its patches in the last spatial block
//                      (bottom row, as a heat map over the frame), each scaled up
//   membership         PNG: TC-CLIP's context tokens, see write_membership_png
//   windows            PNG: STDD's window masks, see write_windows_png
// All are written to a temporary file and renamed.
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

// TC-CLIP's context-token membership for one clip: the frames (top row), then one row per
// layer that summarised: each frame dimmed, its seed patches painted in the colour of the
// context token they were merged into (the same colour across frames = one context token).
// frames [T, 3, S, S]; seeds[l], groups[l]: [T·k] patch index (0..g²−1) and group of each seed.
void write_membership_png(const std::string& path, const vc::Tensor& frames, int64_t grid,
                          const std::vector<std::vector<int64_t>>& seeds,
                          const std::vector<std::vector<int64_t>>& groups, int scale = 4);

// ALT's token merging: slots int64 [T, g*g], the merged token each patch ended in (the class
// token left out). Top row the frames, bottom row the patches coloured by their merged token
// (a fixed palette by slot id) over a dimmed frame, with dark lines between different tokens.
void write_merge_png(const std::string& path, const vc::Tensor& frames, const vc::Tensor& slots, int scale = 4);

// STDD's window shift masking for one clip: the frames (top row), then one row per mask
// pattern: visible patches as they are, masked ones dark blue, window borders orange.
// visible[r]: [T·N'] the visible patch ids (0..grid²−1) of each frame, frame after frame.
void write_windows_png(const std::string& path, const vc::Tensor& frames, int64_t grid, int64_t window,
                       const std::vector<std::vector<int64_t>>& visible, int scale = 4);

}  // namespace verbclip
