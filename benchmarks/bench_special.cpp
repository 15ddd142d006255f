// Time per call of the special ops at ViT-B/16 sizes (float32, the engine's thread count):
// ToMe matching and merge (ALT, 8 clips x 8 frames, 197 tokens, width 768, r = 8), TC-CLIP's
// context merge (928 seeds -> 96, r = 100), STDD's channel shift-mixing and TSM, top-k,
// Gumbel-softmax. A clone of the same tensor is the memory-bound anchor. Prints JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/engine.h"

using namespace vc;

namespace {

double median_ms(const std::function<void()>& fn, int reps) {
  fn();  // warm-up (allocator cache, first touch)
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Row {
  std::string name, shape;
  double ms;
};

}  // namespace

int main() {
  const int reps = 10;
  std::vector<Row> rows;
  auto add = [&](const std::string& name, const std::string& shape, const std::function<void()>& f) {
    rows.push_back({name, shape, median_ms(f, reps)});
  };

  // ---- ToMe (ALT): B·T = 64 frames, N+1 = 197 tokens, D = 768, head-mean keys of 64, r = 8.
  const int64_t BT = 64, N = 197, D = 768, r = 8;
  Tensor metric = rand_normal({BT, N, 64}, 1, 0);
  Tensor x = rand_normal({BT, N, D}, 1, 1);
  Tensor sizes = Tensor::ones({BT, N});
  MergePlan plan = bipartite_soft_matching(metric, r);
  add("clone (memory anchor)", "[64,197,768]", [&] { x.clone(); });
  add("bipartite_soft_matching", "metric [64,197,64], r=8", [&] { bipartite_soft_matching(metric, r); });
  add("merge_tokens forward", "x [64,197,768], r=8", [&] { merge_tokens(x, sizes, plan); });
  {
    Tensor xg = x.clone().detach();
    xg.set_requires_grad(true);
    Tensor g = rand_normal({BT, N - r, D}, 1, 2);
    add("merge_tokens forward+backward", "x [64,197,768], r=8", [&] {
      merge_tokens(xg, sizes, plan).x.backward(g);
      xg.zero_grad();
    });
  }
  Tensor y = rand_normal({BT, N - r, D}, 1, 3);
  add("unmerge_tokens forward", "y [64,189,768] -> [64,197,768]", [&] { unmerge_tokens(y, plan); });

  // ---- TC-CLIP: per video T·k = 16·58 = 928 seeds of width 768 merged to m = 96 (9 steps).
  Tensor seeds = rand_normal({1, 928, D}, 1, 4);
  add("merge_to_count (TC-CLIP)", "[1,928,768] -> 96, r=100", [&] { merge_to_count(seeds, 96, 100); });
  Tensor scores = rand_normal({16, 196}, 1, 5);
  add("topk (TC-CLIP seeds)", "[16,196], k=58", [&] { topk(scores, 58); });

  // ---- STDD: 8 videos x 8 frames, L' = 99 visible tokens + class, d0 = 24, scale 2.
  Tensor xs = rand_normal({8, 8, 99, D}, 1, 6);
  ShiftTable mcm = mcm_shift_table(8, 24, 2);
  add("clone (memory anchor)", "[8,8,99,768]", [&] { xs.clone(); });
  add("temporal_shift MCM s=2 forward", "[8,8,99,768], d0=24", [&] { temporal_shift(xs, mcm, true); });
  {
    Tensor xg = xs.clone().detach();
    xg.set_requires_grad(true);
    add("temporal_shift MCM s=2 forward+backward", "[8,8,99,768], d0=24", [&] {
      temporal_shift(xg, mcm, true).backward(xs);
      xg.zero_grad();
    });
  }
  Tensor xt = rand_normal({8, 8, N, D}, 1, 7);
  ShiftTable tsm = tsm_shift_table(8, D / 8, 1);
  add("temporal_shift TSM forward", "[8,8,197,768], fold=96", [&] { temporal_shift(xt, tsm); });
  Tensor vis = window_mask_indices(window_mask_offsets(8, 8, 2, true, true, 1, 8), 8, 8, 14, 2, 2);
  Tensor xw = rand_normal({BT, N, D}, 1, 9);
  add("window_mask_gather", "[64,197,768] -> [64,99,768]", [&] { window_mask_gather(xw, vis); });

  // ---- ALT entity alignment: 64 frames x 101 tokens against K = 400 entities.
  Tensor logits = rand_normal({BT * 101, 400}, 1, 10);
  add("gumbel_softmax hard", "[6464,400]", [&] { gumbel_softmax(logits, 1.0, true, 1, 11); });

  std::printf("{\n  \"benchmark\": \"special\",\n  \"threads\": %d,\n  \"reps\": %d,\n  \"results\": [\n",
              num_threads(), reps);
  for (size_t i = 0; i < rows.size(); ++i)
    std::printf("    {\"op\": \"%s\", \"shape\": \"%s\", \"ms\": %.3f}%s\n", rows[i].name.c_str(),
                rows[i].shape.c_str(), rows[i].ms, i + 1 < rows.size() ? "," : "");
  std::printf("  ]\n}\n");
  return 0;
}
