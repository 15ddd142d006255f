// Evaluation arithmetic of the video apps (ecosystem.md §4.1, synthetic-dataset.md), as plain
// functions on score matrices so tests can check them on hand-made numbers.
//
// A score matrix is row-major [N, K] (doubles): one row per video, higher = more likely.
//   multi-view testing   each view gives class probabilities; a video's score is their SUM
//                        over its views (X-CLIP / ViFi / TC-CLIP / CLAVER).
//   top-1 / top-5        percent of videos whose label is among the k highest scores; ties
//                        are broken towards the lower class id (a stable ranking).
//   mean class accuracy  mmaction2 acc/mean1: mean over classes of recall (diagonal / row
//                        sum of the confusion matrix) over the classes that occur among the
//                        labels or the predictions (a class only ever predicted counts 0).
//   per-family accuracy  top-1 over the videos whose label belongs to the family.
//   within-pair accuracy for a video of class c whose time-reversal partner p = pair(c) is
//                        among the candidates: correct iff score(c) > score(p) (a tie is
//                        wrong). Only the two scores of the pair matter, so an order-blind
//                        model sits at 50% however well it knows the other classes.
//   reversal flip        on scores of time-REVERSED clips: for a video of class c whose
//                        partner p = pair(c) is among the candidates, flipped iff its top-1
//                        (stable ranking) is p. A model that reads frame order and learnt the
//                        pairs flips ~100%; an order-blind one keeps its forward answer.
//   harmonic mean        HM = 2·B·N / (B + N) (0 when B + N = 0).
//   mean ± std           population std (numpy's np.std), as TC-CLIP's avg_std protocol.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace verbclip {

struct ScoreMatrix {
  int64_t rows = 0, classes = 0;
  std::vector<double> values;  // rows × classes
  double at(int64_t i, int64_t k) const { return values[size_t(i * classes + k)]; }
};

// Softmax over each row of logits [N, K].
ScoreMatrix softmax_rows(const ScoreMatrix& logits);
// Views of one video are consecutive rows (video i: rows i·V .. i·V+V-1, the loader's order):
// [N·V, K] -> [N, K] summed over each video's views.
ScoreMatrix sum_views(const ScoreMatrix& per_view, int64_t views);

// Class ids by descending score (stable: equal scores keep the lower id first).
std::vector<int64_t> ranking(const ScoreMatrix& s, int64_t row);
std::vector<int64_t> predictions(const ScoreMatrix& s);  // top-1 of every row

struct Accuracy {
  double top1 = 0, top5 = 0, mean_class = 0;  // percent
  int64_t videos = 0;
  std::vector<std::vector<int64_t>> confusion;  // [label][prediction] counts, K × K
};
// `topk` is capped at K (top-5 of a 3-class problem is 100%).
Accuracy accuracy(const ScoreMatrix& s, const std::vector<int64_t>& labels, int64_t topk = 5);
double mean_class_accuracy(const std::vector<std::vector<int64_t>>& confusion);

// Top-1 over the videos whose label's group is `group` (group_of[label]); NaN when none.
double group_accuracy(const ScoreMatrix& s, const std::vector<int64_t>& labels,
                      const std::vector<std::string>& group_of, const std::string& group,
                      int64_t* count = nullptr);

// pair_of[c] = the partner of class c, or -1. Videos whose class has no partner are ignored.
// NaN when no video has a partner; `count` receives how many were judged.
double within_pair_accuracy(const ScoreMatrix& s, const std::vector<int64_t>& labels,
                            const std::vector<int64_t>& pair_of, int64_t* count = nullptr);

// Percent of the videos with a partner (pair_of[label] >= 0) whose top-1 is the partner; the
// scores are meant to be those of the reversed clips. NaN when no video has a partner.
double reversal_flip_rate(const ScoreMatrix& s, const std::vector<int64_t>& labels,
                          const std::vector<int64_t>& pair_of, int64_t* count = nullptr);

double harmonic_mean(double base, double novel);

struct MeanStd {
  double mean = 0, std = 0;
};
MeanStd mean_std(const std::vector<double>& values);

}  // namespace verbclip
