// Bipartite soft matching and token merging (ALT via ToMe, TC-CLIP): a brute-force reference
// written from alt.md §2.2 / tcclip.md §2.5, the invariants, gradients and TC-CLIP's
// "iterated merge = group mean" identity.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tests/common/testing.h"

using namespace vc;
using namespace vc::testing;

namespace {

struct RefPlan {
  std::vector<int64_t> unm, src, dst;
};

// One batch row: m is [n, c] row-major. r is already clamped and > 0.
RefPlan ref_match(const std::vector<double>& m, int64_t n, int64_t c, int64_t r, bool protect,
                  bool by_position) {
  int64_t nA = (n + 1) / 2, nB = n / 2;
  auto unit = [&](int64_t p) {
    std::vector<double> u(m.begin() + p * c, m.begin() + (p + 1) * c);
    double norm = 0;
    for (double e : u) norm += e * e;
    norm = std::max(std::sqrt(norm), 1e-12);
    for (double& e : u) e /= norm;
    return u;
  };
  std::vector<double> best(nA);
  std::vector<int64_t> arg(nA, 0);
  for (int64_t a = 0; a < nA; ++a) {
    best[a] = -INFINITY;
    if (protect && a == 0) continue;
    std::vector<double> ua = unit(2 * a);
    for (int64_t b = 0; b < nB; ++b) {
      std::vector<double> ub = unit(2 * b + 1);
      double s = 0;
      for (int64_t k = 0; k < c; ++k) s += ua[k] * ub[k];
      if (s > best[a]) best[a] = s, arg[a] = b;  // strict: ties keep the smallest b
    }
  }
  // Insertion sort by best descending: stable by construction.
  std::vector<int64_t> order;
  for (int64_t a = 0; a < nA; ++a) {
    auto at = order.end();
    while (at != order.begin() && best[*(at - 1)] < best[a]) --at;
    order.insert(at, a);
  }
  RefPlan p;
  for (int64_t i = 0; i < r; ++i) p.src.push_back(order[i]), p.dst.push_back(arg[order[i]]);
  p.unm.assign(order.begin() + r, order.end());
  if (by_position) std::sort(p.unm.begin(), p.unm.end());
  return p;
}

// x [n, C], s [n] -> merged rows and sizes, straight from the formulas of alt.md §2.2.
void ref_merge(const std::vector<double>& x, const std::vector<double>& s, int64_t n, int64_t C,
               const RefPlan& p, std::vector<double>& out, std::vector<double>& out_s) {
  out.clear(), out_s.clear();
  for (int64_t a : p.unm) {
    out.insert(out.end(), x.begin() + 2 * a * C, x.begin() + (2 * a + 1) * C);
    out_s.push_back(s[2 * a]);
  }
  for (int64_t b = 0; b < n / 2; ++b) {
    double total = s[2 * b + 1];
    std::vector<double> acc(C);
    for (int64_t k = 0; k < C; ++k) acc[k] = s[2 * b + 1] * x[(2 * b + 1) * C + k];
    for (size_t i = 0; i < p.src.size(); ++i)
      if (p.dst[i] == b) {
        total += s[2 * p.src[i]];
        for (int64_t k = 0; k < C; ++k) acc[k] += s[2 * p.src[i]] * x[2 * p.src[i] * C + k];
      }
    for (int64_t k = 0; k < C; ++k) out.push_back(acc[k] / total);
    out_s.push_back(total);
  }
}

std::vector<int64_t> row_of(const Tensor& t, int64_t b) {
  std::vector<int64_t> v = t.to_vector<int64_t>();
  int64_t w = t.size(1);
  return std::vector<int64_t>(v.begin() + b * w, v.begin() + (b + 1) * w);
}

// Random positive integer sizes, as after earlier merges.
Tensor random_sizes(int64_t B, int64_t n, uint64_t seed) {
  std::vector<double> u = values(rand_uniform({B, n}, seed, 1, 1, 4, DType::F64));
  for (double& e : u) e = std::floor(e);
  return Tensor::from_vector(u, {B, n});
}

}  // namespace

TEST_CASE("special: bipartite matching and merge match a brute-force reference") {
  const int64_t B = 3, C = 4, c = 5;
  for (int64_t n : {2, 3, 4, 7, 10, 17})
    for (int64_t r : {1, 2, 3, 100})
      for (bool protect : {true, false})
        for (UnmergedOrder order : {UnmergedOrder::Position, UnmergedOrder::Score}) {
          CAPTURE(n);
          CAPTURE(r);
          CAPTURE(protect);
          Tensor metric = randn({B, n, c}, uint64_t(n * 100 + r));
          Tensor x = randn({B, n, C}, uint64_t(n * 7 + r)), s = random_sizes(B, n, n + r);
          MergePlan plan = bipartite_soft_matching(metric, r, protect, order);
          int64_t r_eff = std::max<int64_t>(0, std::min(r, protect ? (n - 1) / 2 : n / 2));
          REQUIRE(plan.r == r_eff);
          MergeResult m = merge_tokens(x, s, plan);
          REQUIRE(m.x.shape() == Shape{B, n - r_eff, C});
          REQUIRE(m.sizes.shape() == Shape{B, n - r_eff});
          if (r_eff == 0) continue;
          std::vector<double> mv = values(metric), xv = values(x), sv = values(s);
          std::vector<double> got = values(m.x), got_s = values(m.sizes);
          for (int64_t b = 0; b < B; ++b) {
            RefPlan ref = ref_match(std::vector<double>(mv.begin() + b * n * c, mv.begin() + (b + 1) * n * c),
                                    n, c, r_eff, protect, order == UnmergedOrder::Position);
            CHECK(row_of(plan.unm, b) == ref.unm);
            CHECK(row_of(plan.src, b) == ref.src);
            CHECK(row_of(plan.dst, b) == ref.dst);
            std::vector<double> want, want_s;
            ref_merge(std::vector<double>(xv.begin() + b * n * C, xv.begin() + (b + 1) * n * C),
                      std::vector<double>(sv.begin() + b * n, sv.begin() + (b + 1) * n), n, C, ref,
                      want, want_s);
            int64_t no = n - r_eff;
            for (int64_t i = 0; i < no * C; ++i)
              CHECK(std::abs(got[b * no * C + i] - want[i]) <= 1e-12 * (1 + std::abs(want[i])));
            for (int64_t i = 0; i < no; ++i) CHECK(got_s[b * no + i] == want_s[i]);
          }
        }
}

TEST_CASE("special: bipartite matching tie rules (smallest b, then smaller a first)") {
  // Tokens: 0 = class, then A tokens at 2, 4, 6 and B tokens at 1, 3, 5, 7. B tokens 1 and 5
  // are the same direction, so A tokens facing it tie between b = 0 and b = 2; A tokens 2 and
  // 4 are identical, so their best scores tie exactly.
  std::vector<double> m = {
      1, 0, 0,   // 0 class
      0, 1, 0,   // 1 b0
      0, 2, 0.1, // 2 a1
      0, 0, 1,   // 3 b1
      0, 2, 0.1, // 4 a2
      0, 3, 0,   // 5 b2 (same direction as b0)
      1, 1, 1,   // 6 a3
      1, -1, 0,  // 7 b3
  };
  Tensor metric = Tensor::from_vector(m, {1, 8, 3});
  MergePlan plan = bipartite_soft_matching(metric, 2, true);
  RefPlan ref = ref_match(m, 8, 3, 2, true, true);
  CHECK(plan.src.to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(plan.dst.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(plan.unm.to_vector<int64_t>() == std::vector<int64_t>{0, 3});
  CHECK(plan.src.to_vector<int64_t>() == ref.src);
  CHECK(plan.dst.to_vector<int64_t>() == ref.dst);
  // Both sources land in b0: x_new = (x_b0 + x_a1 + x_a2) / 3 with unit sizes, summed in a order.
  Tensor x = randn({1, 8, 2}, 3);
  MergeResult r = merge_tokens(x, Tensor(), plan);
  std::vector<double> xv = values(x), got = values(r.x);
  for (int k = 0; k < 2; ++k)
    CHECK(std::abs(got[2 * 2 + k] - (xv[1 * 2 + k] + xv[2 * 2 + k] + xv[4 * 2 + k]) / 3) < 1e-15);
  CHECK(values(r.sizes) == std::vector<double>{1, 1, 3, 1, 1, 1});
}

TEST_CASE("special: merge keeps the class token, the counts and the mass") {
  const int64_t B = 4, n = 197, C = 12, r = 8;
  Tensor metric = randn({B, n, 8}, 21), x = randn({B, n, C}, 22);
  Tensor s = Tensor::ones({B, n}, DType::F64);
  int64_t total_n = n;
  // Several blocks in a row, as in a ToMe ViT-B/16: 197, 189, ..., sizes accumulate.
  for (int block = 0; block < 4; ++block) {
    MergePlan plan = bipartite_soft_matching(metric, r, true);
    MergeResult m = merge_tokens(x, s, plan);
    total_n -= r;
    REQUIRE(m.x.shape() == Shape{B, total_n, C});
    std::vector<double> xv = values(x), yv = values(m.x), sv = values(s), snew = values(m.sizes);
    int64_t n_in = x.size(1);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t k = 0; k < C; ++k)  // the class token stays at slot 0, unchanged
        CHECK(yv[b * total_n * C + k] == xv[b * n_in * C + k]);
      CHECK(snew[b * total_n] == 1.0);
      double mass_in = 0, mass_out = 0;
      for (int64_t i = 0; i < n_in; ++i) mass_in += sv[b * n_in + i];
      for (int64_t i = 0; i < total_n; ++i) mass_out += snew[b * total_n + i];
      CHECK(mass_out == mass_in);  // sum of sizes is constant (= 197)
      CHECK(mass_out == 197.0);
      for (int64_t k = 0; k < C; ++k) {  // sum_i s_i x_i is unchanged
        double before = 0, after = 0;
        for (int64_t i = 0; i < n_in; ++i) before += sv[b * n_in + i] * xv[(b * n_in + i) * C + k];
        for (int64_t i = 0; i < total_n; ++i)
          after += snew[b * total_n + i] * yv[(b * total_n + i) * C + k];
        CHECK(std::abs(before - after) < 1e-10);
      }
    }
    metric = randn({B, total_n, 8}, 30 + block);
    x = m.x, s = m.sizes;
  }
}

TEST_CASE("special: merge with r = 0 is the identity") {
  Tensor x = randn({2, 9, 3}, 1), s = random_sizes(2, 9, 4);
  MergePlan plan = bipartite_soft_matching(randn({2, 9, 4}, 2), 0);
  CHECK(plan.r == 0);
  MergeResult m = merge_tokens(x, s, plan);
  CHECK(max_abs_diff(m.x, x) == 0.0);
  CHECK(max_abs_diff(m.sizes, s) == 0.0);
  CHECK(max_abs_diff(unmerge_tokens(x, plan), x) == 0.0);
  // n = 2 with a protected class token leaves nothing to merge either.
  CHECK(bipartite_soft_matching(randn({1, 2, 4}, 3), 5, true).r == 0);
}

TEST_CASE("special: merge and unmerge gradients") {
  const int64_t B = 2, n = 9, C = 3;
  Tensor metric = randn({B, n, 4}, 40), s = random_sizes(B, n, 41);
  for (UnmergedOrder order : {UnmergedOrder::Position, UnmergedOrder::Score}) {
    MergePlan plan = bipartite_soft_matching(metric, 3, false, order);
    gradcheck([&](const TensorList& in) { return merge_tokens(in[0], s, plan).x; },
              {randn({B, n, C}, 42)}, "merge_tokens");
    gradcheck([&](const TensorList& in) { return unmerge_tokens(in[0], plan); },
              {randn({B, n - 3, C}, 43)}, "unmerge_tokens");
  }
  // Sizes are constants: asking for their gradient is an error, not a silent zero.
  Tensor sg = s.clone().detach();
  sg.set_requires_grad(true);
  MergePlan plan = bipartite_soft_matching(metric, 3);
  CHECK_THROWS_AS(merge_tokens(randn({B, n, C}, 44), sg, plan), Error);
}

TEST_CASE("special: unmerge sends every token its slot's value") {
  Tensor metric = randn({2, 11, 4}, 50);
  MergePlan plan = bipartite_soft_matching(metric, 4);
  Tensor y = randn({2, 7, 3}, 51);
  Tensor slots = merge_slots(plan);
  std::vector<int64_t> sl = slots.to_vector<int64_t>();
  std::vector<double> yv = values(y), xv = values(unmerge_tokens(y, plan));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t p = 0; p < 11; ++p)
      for (int64_t k = 0; k < 3; ++k)
        CHECK(xv[(b * 11 + p) * 3 + k] == yv[(b * 7 + sl[b * 11 + p]) * 3 + k]);
  CHECK(sl[0] == 0);  // class token
}

TEST_CASE("special: TC-CLIP iterative merge equals the group means of the seeds") {
  // A brute-force re-run of tcclip.md §2.5: groups of seed indices, matched on their means.
  const int64_t B = 2, n0 = 40, C = 6, m = 7, r = 5;
  Tensor x = randn({B, n0, C}, 60);
  IterativeMerge out = merge_to_count(x, m, r);
  REQUIRE(out.x.shape() == Shape{B, m, C});
  std::vector<double> xv = values(x), got = values(out.x), sizes = values(out.sizes);
  std::vector<int64_t> assign = out.assign.to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    std::vector<std::vector<int64_t>> groups(n0);
    for (int64_t i = 0; i < n0; ++i) groups[i] = {i};
    auto mean_of = [&](const std::vector<int64_t>& g) {
      std::vector<double> mu(C, 0.0);
      for (int64_t i : g)
        for (int64_t k = 0; k < C; ++k) mu[k] += xv[(b * n0 + i) * C + k] / double(g.size());
      return mu;
    };
    std::vector<int64_t> schedule;
    int64_t n = n0;
    for (int64_t i = 0; i < (n0 - m) / r; ++i) schedule.push_back(std::min(r, n / 2)), n -= schedule.back();
    while (n > m) schedule.push_back(std::min(n - m, n / 2)), n -= schedule.back();
    for (int64_t step : schedule) {
      int64_t cur = int64_t(groups.size());
      std::vector<double> metric;
      for (auto& g : groups) {
        std::vector<double> mu = mean_of(g);
        metric.insert(metric.end(), mu.begin(), mu.end());
      }
      RefPlan p = ref_match(metric, cur, C, step, false, false);
      std::vector<std::vector<int64_t>> next;
      for (int64_t a : p.unm) next.push_back(groups[2 * a]);
      for (int64_t bb = 0; bb < cur / 2; ++bb) {
        std::vector<int64_t> g = groups[2 * bb + 1];
        for (size_t i = 0; i < p.src.size(); ++i)
          if (p.dst[i] == bb) g.insert(g.end(), groups[2 * p.src[i]].begin(), groups[2 * p.src[i]].end());
        next.push_back(g);
      }
      groups = next;
    }
    REQUIRE(int64_t(groups.size()) == m);
    for (int64_t g = 0; g < m; ++g) {
      std::vector<double> mu = mean_of(groups[g]);
      for (int64_t k = 0; k < C; ++k) CHECK(std::abs(got[(b * m + g) * C + k] - mu[k]) < 1e-12);
      CHECK(sizes[b * m + g] == double(groups[g].size()));
      for (int64_t i : groups[g]) CHECK(assign[b * n0 + i] == g);
    }
  }
}

TEST_CASE("special: TC-CLIP merge at paper size (928 seeds to 96) is a segment mean") {
  const int64_t n0 = 928, m = 96, C = 16;
  Tensor x = randn({1, n0, C}, 70);
  x.set_requires_grad(true);
  IterativeMerge out = merge_to_count(x, m, 100);
  REQUIRE(out.x.shape() == Shape{1, m, C});
  std::vector<int64_t> assign = out.assign.to_vector<int64_t>();
  std::vector<double> xv = values(x), got = values(out.x), sizes = values(out.sizes);
  std::vector<double> sum_g(m * C, 0.0), count(m, 0.0);
  for (int64_t i = 0; i < n0; ++i) {
    count[assign[i]] += 1;
    for (int64_t k = 0; k < C; ++k) sum_g[assign[i] * C + k] += xv[i * C + k];
  }
  for (int64_t g = 0; g < m; ++g) {
    CHECK(count[g] == sizes[g]);
    for (int64_t k = 0; k < C; ++k) CHECK(std::abs(got[g * C + k] - sum_g[g * C + k] / count[g]) < 1e-12);
  }
  // The gradient of a segment mean: dU_i = dS_{g(i)} / n_{g(i)}.
  Tensor w = randn({1, m, C}, 71);
  sum(mul(out.x, w)).backward();
  std::vector<double> gx = values(x.grad()), wv = values(w);
  for (int64_t i = 0; i < n0; ++i)
    for (int64_t k = 0; k < C; ++k)
      CHECK(std::abs(gx[i * C + k] - wv[assign[i] * C + k] / count[assign[i]]) < 1e-14);
}

TEST_CASE("special: matching and merge are the same for 1 and 2 threads") {
  Tensor metric = randn({64, 197, 64}, 80, DType::F32), x = randn({64, 197, 96}, 81, DType::F32);
  int before = num_threads();
  std::vector<uint64_t> h[2];
  for (int t : {1, 2}) {
    set_num_threads(t);
    MergePlan plan = bipartite_soft_matching(metric, 16);
    MergeResult m = merge_tokens(x, Tensor(), plan);
    h[t - 1] = {hash_bits(plan.unm), hash_bits(plan.src), hash_bits(plan.dst), hash_bits(m.x),
                hash_bits(m.sizes)};
  }
  set_num_threads(before);
  CHECK(h[0] == h[1]);
}
