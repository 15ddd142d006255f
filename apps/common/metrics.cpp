#include "apps/common/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "engine/core/error.h"

namespace verbclip {

ScoreMatrix softmax_rows(const ScoreMatrix& logits) {
  ScoreMatrix p = logits;
  for (int64_t i = 0; i < p.rows; ++i) {
    double* r = p.values.data() + i * p.classes;
    double m = *std::max_element(r, r + p.classes), sum = 0;
    for (int64_t k = 0; k < p.classes; ++k) sum += (r[k] = std::exp(r[k] - m));
    for (int64_t k = 0; k < p.classes; ++k) r[k] /= sum;
  }
  return p;
}

ScoreMatrix sum_views(const ScoreMatrix& per_view, int64_t views) {
  VC_CHECK(views >= 1 && per_view.rows % views == 0, "sum_views: ", per_view.rows,
           " rows are not a multiple of ", views, " views");
  ScoreMatrix s{per_view.rows / views, per_view.classes, {}};
  s.values.assign(size_t(s.rows * s.classes), 0.0);
  for (int64_t i = 0; i < per_view.rows; ++i)
    for (int64_t k = 0; k < s.classes; ++k) s.values[size_t((i / views) * s.classes + k)] += per_view.at(i, k);
  return s;
}

std::vector<int64_t> ranking(const ScoreMatrix& s, int64_t row) {
  std::vector<int64_t> ids(size_t(s.classes));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return s.at(row, a) > s.at(row, b); });
  return ids;
}

std::vector<int64_t> predictions(const ScoreMatrix& s) {
  std::vector<int64_t> p(size_t(s.rows));
  for (int64_t i = 0; i < s.rows; ++i) p[size_t(i)] = ranking(s, i)[0];
  return p;
}

double mean_class_accuracy(const std::vector<std::vector<int64_t>>& confusion) {
  const size_t K = confusion.size();
  double sum = 0;
  int64_t n = 0;
  for (size_t c = 0; c < K; ++c) {
    int64_t row = 0, col = 0;
    for (size_t j = 0; j < K; ++j) row += confusion[c][j], col += confusion[j][c];
    if (row == 0 && col == 0) continue;  // neither a label nor a prediction
    sum += row ? double(confusion[c][c]) / double(row) : 0.0;
    ++n;
  }
  return n ? 100.0 * sum / double(n) : 0.0;
}

Accuracy accuracy(const ScoreMatrix& s, const std::vector<int64_t>& labels, int64_t topk) {
  VC_CHECK(int64_t(labels.size()) == s.rows, "accuracy: ", labels.size(), " labels for ", s.rows, " score rows");
  Accuracy a;
  a.videos = s.rows;
  a.confusion.assign(size_t(s.classes), std::vector<int64_t>(size_t(s.classes), 0));
  const int64_t k = std::min(topk, s.classes);
  int64_t hit1 = 0, hitk = 0;
  for (int64_t i = 0; i < s.rows; ++i) {
    const int64_t y = labels[size_t(i)];
    VC_CHECK(y >= 0 && y < s.classes, "accuracy: label ", y, " of video ", i, " is not below ", s.classes);
    std::vector<int64_t> r = ranking(s, i);
    hit1 += r[0] == y;
    hitk += std::find(r.begin(), r.begin() + k, y) != r.begin() + k;
    ++a.confusion[size_t(y)][size_t(r[0])];
  }
  if (s.rows) {
    a.top1 = 100.0 * double(hit1) / double(s.rows);
    a.top5 = 100.0 * double(hitk) / double(s.rows);
  }
  a.mean_class = mean_class_accuracy(a.confusion);
  return a;
}

double group_accuracy(const ScoreMatrix& s, const std::vector<int64_t>& labels,
                      const std::vector<std::string>& group_of, const std::string& group, int64_t* count) {
  int64_t n = 0, hit = 0;
  for (int64_t i = 0; i < s.rows; ++i) {
    const int64_t y = labels[size_t(i)];
    if (group_of[size_t(y)] != group) continue;
    ++n;
    hit += ranking(s, i)[0] == y;
  }
  if (count) *count = n;
  return n ? 100.0 * double(hit) / double(n) : NAN;
}

double within_pair_accuracy(const ScoreMatrix& s, const std::vector<int64_t>& labels,
                            const std::vector<int64_t>& pair_of, int64_t* count) {
  int64_t n = 0, hit = 0;
  for (int64_t i = 0; i < s.rows; ++i) {
    const int64_t y = labels[size_t(i)], p = pair_of[size_t(y)];
    if (p < 0) continue;
    ++n;
    hit += s.at(i, y) > s.at(i, p);
  }
  if (count) *count = n;
  return n ? 100.0 * double(hit) / double(n) : NAN;
}

double reversal_flip_rate(const ScoreMatrix& s, const std::vector<int64_t>& labels,
                          const std::vector<int64_t>& pair_of, int64_t* count) {
  VC_CHECK(int64_t(labels.size()) == s.rows, "reversal_flip_rate: ", labels.size(), " labels for ", s.rows,
           " score rows");
  int64_t n = 0, flipped = 0;
  for (int64_t i = 0; i < s.rows; ++i) {
    const int64_t y = labels[size_t(i)];
    VC_CHECK(y >= 0 && y < int64_t(pair_of.size()), "reversal_flip_rate: label ", y, " of video ", i,
             " has no pair_of entry (", pair_of.size(), " classes)");
    const int64_t p = pair_of[size_t(y)];
    if (p < 0) continue;
    ++n;
    flipped += ranking(s, i)[0] == p;
  }
  if (count) *count = n;
  return n ? 100.0 * double(flipped) / double(n) : NAN;
}

double harmonic_mean(double base, double novel) {
  return base + novel > 0 ? 2.0 * base * novel / (base + novel) : 0.0;
}

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd r;
  if (values.empty()) return r;
  for (double v : values) r.mean += v;
  r.mean /= double(values.size());
  double var = 0;
  for (double v : values) var += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(var / double(values.size()));
  return r;
}

}  // namespace verbclip
