// Attention op (engine/ops/attention.h): forward against a naive dense loop with an explicit
// -inf mask, gradients against float64 central differences and against a dense composition
// of engine ops, the claver.md §2.2 index rules as properties, fully masked rows, and
// bitwise determinism across thread counts.
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/backend/cpu/fast_exp.h"
#include "tests/common/testing.h"

using namespace vc;
using namespace vc::testing;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- the spec's index rules, written from claver.md §2.2's "masked iff" column ----------

enum class Rule { Joint, Spatial, Pipeline, KMTA, KMCTA, ClassTokenOnly };
const Rule kRules[] = {Rule::Joint, Rule::Spatial, Rule::Pipeline,
                       Rule::KMTA,  Rule::KMCTA,   Rule::ClassTokenOnly};

const char* rule_name(Rule r) {
  switch (r) {
    case Rule::Joint: return "joint";
    case Rule::Spatial: return "spatial";
    case Rule::Pipeline: return "pipeline";
    case Rule::KMTA: return "kmta";
    case Rule::KMCTA: return "kmcta";
    case Rule::ClassTokenOnly: return "class_token_only";
  }
  return "?";
}

bool spec_masked(Rule r, int64_t L, int64_t i, int64_t j) {
  int64_t t = i / L, l = i % L, t2 = j / L, l2 = j % L;
  switch (r) {
    case Rule::Joint: return false;
    case Rule::Spatial: return t2 != t;
    case Rule::Pipeline: return l2 != l;
    case Rule::KMTA: return t2 == t && l2 != l;
    case Rule::KMCTA: return t2 > t || (t2 == t && l2 != l);
    case Rule::ClassTokenOnly: return !(l == 0 && l2 == 0) && i != j;
  }
  return false;
}

KronMask make_mask(Rule r, int64_t T, int64_t L) {
  switch (r) {
    case Rule::Joint: return KronMask::joint(T, L);
    case Rule::Spatial: return KronMask::spatial(T, L);
    case Rule::Pipeline: return KronMask::pipeline(T, L);
    case Rule::KMTA: return KronMask::kmta(T, L);
    case Rule::KMCTA: return KronMask::kmcta(T, L);
    case Rule::ClassTokenOnly: return KronMask::class_token_only(T, L);
  }
  return {};
}

// ---- naive dense reference ----------------------------------------------------------------

struct Ref {
  std::function<bool(int64_t, int64_t)> visible = [](int64_t, int64_t) { return true; };
  Tensor bias;        // broadcastable to [B, H, Nq, Nk]
  Tensor key_bias;    // broadcastable to [B, H, Nk] (3-d)
  Tensor xk, xv, xb;  // extra keys/values [B, H, Ne, *], extra bias broadcastable to [B, H, Ne]
  double scale = 0;
};

struct RefOut {
  Tensor out, probs;  // float64
};

// Straight from the definition: s = scale q·k + biases, -inf where masked, softmax, P V.
RefOut naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Ref& r) {
  int64_t B = q.size(0), H = q.size(1), Nq = q.size(2), d = q.size(3), Nk = k.size(2),
          dv = v.size(3), Ne = r.xk.defined() ? r.xk.size(2) : 0, Nt = Nk + Ne;
  double scale = r.scale ? r.scale : 1 / std::sqrt(double(d));
  auto vals = [](const Tensor& t, const Shape& s) {
    return t.defined() ? values(t.expand(s)) : std::vector<double>(size_t(numel_of(s)), 0.0);
  };
  std::vector<double> Q = values(q), K = values(k), V = values(v);
  std::vector<double> XK = r.xk.defined() ? values(r.xk) : std::vector<double>();
  std::vector<double> XV = r.xv.defined() ? values(r.xv) : std::vector<double>();
  std::vector<double> bias = vals(r.bias, {B, H, Nq, Nk}), kb = vals(r.key_bias, {B, H, Nk}),
                      xb = vals(r.xb, {B, H, Ne});
  Tensor out = Tensor::zeros({B, H, Nq, dv}, DType::F64);
  Tensor probs = Tensor::zeros({B, H, Nq, Nt}, DType::F64);
  double *O = out.data<double>(), *P = probs.data<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Nq; ++i) {
        int64_t bh = b * H + h;
        std::vector<double> s(static_cast<size_t>(Nt), 0.0);
        for (int64_t j = 0; j < Nt; ++j) {
          bool own = j < Nk;
          const double* kr = own ? &K[size_t((bh * Nk + j) * d)] : &XK[size_t((bh * Ne + j - Nk) * d)];
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += Q[size_t((bh * Nq + i) * d + e)] * kr[e];
          if (own)
            s[j] = r.visible(i, j) ? scale * dot + bias[size_t((bh * Nq + i) * Nk + j)] +
                                         kb[size_t(bh * Nk + j)]
                                   : -kInf;
          else
            s[j] = scale * dot + xb[size_t(bh * Ne + j - Nk)];
        }
        double m = -kInf;
        for (double x : s) m = std::max(m, x);
        if (m == -kInf) continue;  // every key masked: output 0, probabilities 0
        double z = 0;
        for (double x : s) z += std::exp(x - m);
        for (int64_t j = 0; j < Nt; ++j) {
          double p = std::exp(s[j] - m) / z;
          P[(bh * Nq + i) * Nt + j] = p;
          const double* vr = j < Nk ? &V[size_t((bh * Nk + j) * dv)] : &XV[size_t((bh * Ne + j - Nk) * dv)];
          for (int64_t e = 0; e < dv; ++e) O[(bh * Nq + i) * dv + e] += p * vr[e];
        }
      }
  return {out, probs};
}

// The same attention composed from engine ops with a dense -inf mask (the "naive dense op"):
// its autograd is the reference for gradients at multi-tile sizes.
Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       const Tensor& bias, const Tensor& key_bias) {
  double scale = 1 / std::sqrt(double(q.size(3)));
  Tensor s = add(mul(matmul(q, k.transpose(2, 3)), scale), mask);
  if (bias.defined()) s = add(s, bias);
  if (key_bias.defined()) s = add(s, key_bias.unsqueeze(2));
  return matmul(softmax(s, -1), v);
}

// 0 where visible, -inf where masked, [Nq, Nk].
Tensor mask_tensor(int64_t Nq, int64_t Nk, const std::function<bool(int64_t, int64_t)>& vis,
                   DType dtype) {
  std::vector<double> m(size_t(Nq * Nk));
  for (int64_t i = 0; i < Nq; ++i)
    for (int64_t j = 0; j < Nk; ++j) m[size_t(i * Nk + j)] = vis(i, j) ? 0.0 : -kInf;
  return Tensor::from_vector(m, {Nq, Nk}).to(dtype);
}

Tensor f64(const Tensor& t) { return t.defined() ? t.to(DType::F64) : t; }

AttentionOptions kron_opts(Rule r, int64_t T, int64_t L) {
  AttentionOptions o;
  o.mask = AttentionMask::kronecker(make_mask(r, T, L));
  return o;
}

}  // namespace

// ---- index rules ---------------------------------------------------------------------------

TEST_CASE("attention: Kronecker mask constructors follow claver.md §2.2 entry by entry") {
  for (auto [T, L] : {std::pair<int64_t, int64_t>{1, 1}, {1, 5}, {4, 1}, {3, 4}, {5, 3}})
    for (Rule r : kRules) {
      KronMask m = make_mask(r, T, L);
      int64_t bad = 0;
      for (int64_t i = 0; i < T * L; ++i)
        for (int64_t j = 0; j < T * L; ++j) bad += m.visible(i, j) == spec_masked(r, L, i, j);
      CHECK_MESSAGE(bad == 0, rule_name(r), " T=", T, " L=", L, ": ", bad, " entries differ");
    }
}

TEST_CASE("attention: claver.md §2.2 properties of the masks") {
  const int64_t T = 4, L = 5, n = T * L;
  KronMask kmta = KronMask::kmta(T, L), kmcta = KronMask::kmcta(T, L),
           spatial = KronMask::spatial(T, L);
  for (int64_t i = 0; i < n; ++i) {
    int64_t t = i / L, l = i % L;
    for (int64_t j = 0; j < n; ++j) {
      int64_t t2 = j / L;
      // Spatial and KMTA visible sets are complements, except that both contain the diagonal.
      if (i == j) CHECK((spatial.visible(i, j) && kmta.visible(i, j)));
      else CHECK(spatial.visible(i, j) != kmta.visible(i, j));
      // KMCTA: every visible key has j <= i (A is lower triangular), and the diagonal is seen.
      if (kmcta.visible(i, j)) CHECK(j <= i);
      // Under KMCTA the tokens of frame 0 see only themselves.
      if (t == 0) CHECK(kmcta.visible(i, j) == (i == j));
      // The class token of frame T-1 sees every token of frames 0..T-2, none of its own
      // frame but itself.
      if (t == T - 1 && l == 0) CHECK(kmcta.visible(i, j) == (t2 < T - 1 || j == i));
    }
    CHECK(kmta.visible(i, i));
    CHECK(kmcta.visible(i, i));
  }
  // KMTA with T = 1: each token attends only to itself.
  KronMask one = KronMask::kmta(1, 6);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 6; ++j) CHECK(one.visible(i, j) == (i == j));
}

// ---- forward against the naive loop --------------------------------------------------------

TEST_CASE("attention: every Kronecker mask against the naive dense loop, awkward sizes") {
  // T = 1, L = 1, primes, and sequence lengths at the 64-tile boundaries +-1.
  const std::pair<int64_t, int64_t> sizes[] = {{1, 1}, {1, 7}, {5, 1}, {3, 7}, {1, 63}, {1, 64},
                                               {1, 65}, {2, 32}, {3, 43}, {7, 9}, {5, 13}, {8, 17}};
  uint64_t seed = 1;
  for (auto [T, L] : sizes)
    for (Rule r : kRules) {
      int64_t n = T * L, B = 2, H = 2, d = 8;
      Tensor q = randn({B, H, n, d}, seed++, DType::F32), k = randn({B, H, n, d}, seed++, DType::F32),
             v = randn({B, H, n, 5}, seed++, DType::F32);
      Tensor out = attention(q, k, v, kron_opts(r, T, L));
      Ref ref;
      ref.visible = [r, L = L](int64_t i, int64_t j) { return !spec_masked(r, L, i, j); };
      check_close(out, naive_attention(f64(q), f64(k), f64(v), ref).out, 2e-6, 1e-5,
                  std::string(rule_name(r)) + " T=" + std::to_string(T) + " L=" + std::to_string(L));
    }
}

TEST_CASE("attention: no mask, causal, cross-attention sizes, float64 exactness") {
  uint64_t seed = 100;
  for (auto [Nq, Nk] : {std::pair<int64_t, int64_t>{1, 1}, {5, 3}, {3, 70}, {64, 64}, {65, 129}, {130, 63}})
    for (bool causal : {false, true}) {
      Tensor q = randn({1, 3, Nq, 16}, seed++), k = randn({1, 3, Nk, 16}, seed++),
             v = randn({1, 3, Nk, 4}, seed++);
      AttentionOptions o;
      if (causal) o.mask = AttentionMask::causal();
      o.scale = 0.3;
      Ref ref;
      ref.scale = 0.3;
      if (causal) ref.visible = [](int64_t i, int64_t j) { return j <= i; };
      // float64 through the tiles agrees with the dense loop to rounding.
      check_close(attention(q, k, v, o), naive_attention(q, k, v, ref).out, 1e-12, 1e-10,
                  "Nq=" + std::to_string(Nq) + " Nk=" + std::to_string(Nk) +
                      (causal ? " causal" : " none"));
    }
}

TEST_CASE("attention: dense bias, per-key bias, extra tokens with head bias, against the loop") {
  const int64_t B = 2, H = 3, T = 3, L = 23, n = T * L, d = 8, Ne = 5;
  Tensor q = randn({B, H, n, d}, 1, DType::F32), k = randn({B, H, n, d}, 2, DType::F32),
         v = randn({B, H, n, d}, 3, DType::F32);
  Tensor xk = randn({B, H, Ne, d}, 4, DType::F32), xv = randn({B, H, Ne, d}, 5, DType::F32);
  // A bias over [Nq, Nk] with a few -inf entries, and per-head / per-batch forms.
  Tensor dense = randn({n, n}, 6, DType::F32);
  dense = masked_fill(dense, gt(randn({n, n}, 7, DType::F32), Tensor::scalar(1.5)), -kInf);
  Tensor per_head = randn({1, H, 1, n}, 8, DType::F32);
  Tensor kb2 = randn({B, n}, 9, DType::F32), kb3 = randn({1, H, n}, 10, DType::F32);
  Tensor hb = randn({H}, 11, DType::F32);

  struct Case {
    std::string name;
    bool kron;
    Tensor bias, key_bias, key_bias3;  // key_bias3: the same as key_bias in 3-d for the loop
    bool extra;
  };
  std::vector<Case> cases = {
      {"dense [Nq,Nk] with -inf", false, dense, {}, {}, false},
      {"dense [1,H,1,Nk] + spatial", true, per_head, {}, {}, false},
      {"key bias [B,Nk]", false, {}, kb2, kb2.unsqueeze(1), false},
      {"key bias [1,H,Nk] + spatial", true, {}, kb3, kb3, false},
      {"extra tokens + head bias", false, {}, {}, {}, true},
      {"spatial + extra tokens + head bias + key bias + dense", true, dense, kb2,
       kb2.unsqueeze(1), true},
  };
  for (const Case& c : cases) {
    AttentionOptions o;
    Ref ref;
    if (c.kron) {
      o.mask = AttentionMask::kronecker(KronMask::spatial(T, L));
      ref.visible = [](int64_t i, int64_t j) { return i / L == j / L; };
    }
    o.bias = c.bias, ref.bias = f64(c.bias);
    o.key_bias = c.key_bias, ref.key_bias = f64(c.key_bias3);
    if (c.extra) {
      o.extra_k = xk, o.extra_v = xv, o.extra_bias = hb;
      ref.xk = f64(xk), ref.xv = f64(xv), ref.xb = f64(hb).reshape({1, H, 1});
    }
    o.prob_rows = {0, 22, 23, n - 1};
    AttentionResult res = attention_ex(q, k, v, o);
    RefOut want = naive_attention(f64(q), f64(k), f64(v), ref);
    check_close(res.out, want.out, 2e-6, 1e-5, c.name);
    // Probabilities of the chosen rows: the reference's rows, 0 where masked.
    Tensor rows = Tensor::from_vector<int64_t>(o.prob_rows, {4});
    REQUIRE(res.probs.shape() == Shape({B, H, 4, n + (c.extra ? Ne : 0)}));
    check_close(res.probs, index_select(want.probs, 2, rows), 1e-6, 1e-5, c.name + " probs");
  }
}

TEST_CASE("attention: returned probabilities of the class tokens under KMCTA") {
  // TC-CLIP reads the class token's attention row; here: under KMCTA the class token of
  // frame T-1 puts mass exactly on frames 0..T-2 and on itself.
  const int64_t T = 4, L = 9, n = T * L;
  Tensor q = randn({1, 2, n, 8}, 1, DType::F32), k = randn({1, 2, n, 8}, 2, DType::F32),
         v = randn({1, 2, n, 8}, 3, DType::F32);
  AttentionOptions o = kron_opts(Rule::KMCTA, T, L);
  o.prob_rows = {0, (T - 1) * L};
  Tensor p = attention_ex(q, k, v, o).probs;
  for (int64_t h = 0; h < 2; ++h) {
    double total = 0;
    for (int64_t j = 0; j < n; ++j) {
      double x = at(p, {0, h, 1, j});
      bool vis = j < (T - 1) * L || j == (T - 1) * L;
      CHECK((vis ? x > 0 : x == 0));
      total += x;
      CHECK(at(p, {0, h, 0, j}) == (j == 0 ? doctest::Approx(1.0) : doctest::Approx(0.0)));
    }
    CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
  }
}

TEST_CASE("attention: paper properties at op level (KMCTA frame 0, KMTA T=1, frame permutation)") {
  const int64_t T = 3, L = 6, n = T * L;
  Tensor q = randn({1, 2, n, 4}, 1), k = randn({1, 2, n, 4}, 2), v = randn({1, 2, n, 4}, 3);
  // KMCTA: frame 0 tokens attend only to themselves, so their output is their own value.
  Tensor o = attention(q, k, v, kron_opts(Rule::KMCTA, T, L));
  check_close(o.narrow(2, 0, L), v.narrow(2, 0, L), 0, 0, "kmcta frame 0");
  // KMTA with T = 1 is identity attention.
  Tensor q1 = randn({1, 2, 7, 4}, 4), k1 = randn({1, 2, 7, 4}, 5), v1 = randn({1, 2, 7, 4}, 6);
  check_close(attention(q1, k1, v1, kron_opts(Rule::KMTA, 1, 7)), v1, 0, 0, "kmta T=1");
  // KMTA is equivariant to permuting frames; KMCTA is not.
  Tensor perm = Tensor::from_vector<int64_t>({2, 0, 1}, {3});
  auto permute_frames = [&](const Tensor& x) {
    return index_select(x.reshape({1, 2, T, L, 4}), 2, perm).reshape({1, 2, n, 4});
  };
  for (Rule r : {Rule::KMTA, Rule::KMCTA}) {
    Tensor a = permute_frames(attention(q, k, v, kron_opts(r, T, L)));
    Tensor b = attention(permute_frames(q), permute_frames(k), permute_frames(v), kron_opts(r, T, L));
    if (r == Rule::KMTA) check_close(a, b, 1e-12, 1e-12, "kmta frame permutation");
    else CHECK(max_abs_diff(a, b) > 1e-3);
  }
}

// ---- fully masked rows ---------------------------------------------------------------------

TEST_CASE("attention: a row with every key masked gives output 0 and gradient 0") {
  const int64_t n = 70, d = 4;
  // Row 3 blocked by the dense bias; rows 65.. blocked by a custom Kronecker pattern whose
  // token pattern has empty rows (T = 1, L = 70).
  KronMask m;
  m.T = 1, m.L = n;
  KronMask::Term term{{1}, std::vector<uint8_t>(size_t(n * n), 1)};
  for (int64_t l = 65; l < n; ++l)
    for (int64_t l2 = 0; l2 < n; ++l2) term.token[size_t(l * n + l2)] = 0;
  m.terms = {term};
  std::vector<double> bv(size_t(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) bv[size_t(3 * n + j)] = -kInf;
  Tensor bias = Tensor::from_vector(bv, {n, n});
  Tensor q = randn({1, 1, n, d}, 1).set_requires_grad(), k = randn({1, 1, n, d}, 2).set_requires_grad(),
         v = randn({1, 1, n, d}, 3).set_requires_grad();
  AttentionOptions o;
  o.mask = AttentionMask::kronecker(m);
  o.bias = bias;
  Tensor out = attention(q, k, v, o);
  Ref ref;
  ref.visible = [](int64_t i, int64_t) { return i < 65; };
  ref.bias = bias;
  check_close(out, naive_attention(q.detach(), k.detach(), v.detach(), ref).out, 1e-12, 1e-10, "out");
  sum(mul(out, randn(out.shape(), 9))).backward();
  for (int64_t i : {int64_t(3), int64_t(65), int64_t(69)})
    for (int64_t e = 0; e < d; ++e) {
      CHECK(at(out, {0, 0, i, e}) == 0.0);
      CHECK(at(q.grad(), {0, 0, i, e}) == 0.0);
    }
  for (const Tensor& g : {q.grad(), k.grad(), v.grad()})
    for (double x : values(g)) REQUIRE(std::isfinite(x));
  // No keys at all (an empty term list): everything 0, nothing NaN.
  KronMask none;
  none.T = 1, none.L = n;
  Tensor z = attention(q, k, v, [&] { AttentionOptions a; a.mask = AttentionMask::kronecker(none); return a; }());
  for (double x : values(z)) REQUIRE(x == 0.0);
}

// ---- gradients -----------------------------------------------------------------------------

TEST_CASE("attention: float64 gradcheck of q, k, v under every mask kind") {
  const int64_t B = 2, H = 2, T = 3, L = 2, n = T * L, d = 3;
  Tensor q = randn({B, H, n, d}, 1), k = randn({B, H, n, d}, 2), v = randn({B, H, n, 2}, 3);
  for (Rule r : kRules)
    gradcheck([&](const TensorList& x) { return attention(x[0], x[1], x[2], kron_opts(r, T, L)); },
              {q, k, v}, std::string("attention ") + rule_name(r));
  AttentionOptions causal;
  causal.mask = AttentionMask::causal();
  gradcheck([&](const TensorList& x) { return attention(x[0], x[1], x[2], causal); }, {q, k, v},
            "attention causal");
  Tensor qx = randn({B, H, 4, d}, 4);  // cross-attention, no mask
  gradcheck([&](const TensorList& x) { return attention(x[0], x[1], x[2]); }, {qx, k, v},
            "attention none, Nq != Nk");
}

TEST_CASE("attention: float64 gradcheck of the dense bias, key bias, extra tokens and head bias") {
  const int64_t B = 2, H = 2, T = 2, L = 3, n = T * L, d = 3, Ne = 2;
  Tensor q = randn({B, H, n, d}, 1), k = randn({B, H, n, d}, 2), v = randn({B, H, n, d}, 3);
  Tensor bias_full = randn({B, H, n, n}, 4), bias_bc = randn({1, H, 1, n}, 5);
  Tensor kb2 = randn({B, n}, 6), kb3 = randn({1, H, n}, 7);
  Tensor xk = randn({B, H, Ne, d}, 8), xv = randn({B, H, Ne, d}, 9), hb = randn({H}, 10);
  AttentionOptions base = kron_opts(Rule::KMCTA, T, L);
  gradcheck([&](const TensorList& x) {
    AttentionOptions o = base;
    o.bias = x[3];
    return attention(x[0], x[1], x[2], o);
  }, {q, k, v, bias_full}, "dense bias [B,H,Nq,Nk]");
  gradcheck([&](const TensorList& x) {
    AttentionOptions o = base;
    o.bias = x[0];
    return attention(q, k, v, o);
  }, {bias_bc}, "dense bias [1,H,1,Nk]");
  gradcheck([&](const TensorList& x) {
    AttentionOptions o = base;
    o.key_bias = x[0];
    return attention(q, k, v, o);
  }, {kb2}, "key bias [B,Nk]");
  gradcheck([&](const TensorList& x) {
    AttentionOptions o;
    o.key_bias = x[0];
    return attention(q, k, v, o);
  }, {kb3}, "key bias [1,H,Nk]");
  gradcheck([&](const TensorList& x) {
    AttentionOptions o = kron_opts(Rule::Spatial, T, L);
    o.extra_k = x[3], o.extra_v = x[4], o.extra_bias = x[5], o.key_bias = x[6];
    return attention(x[0], x[1], x[2], o);
  }, {q, k, v, xk, xv, hb, kb2}, "extra tokens + head bias + key bias");
}

TEST_CASE("attention: gradients at multi-tile sizes against the dense engine composition") {
  // Several 64-tiles per axis, skipped tiles (KMCTA), partial tiles, and a row-broadcast bias.
  const int64_t B = 1, H = 2, T = 3, L = 45, n = T * L, d = 8;
  for (Rule r : {Rule::KMCTA, Rule::KMTA, Rule::ClassTokenOnly}) {
    TensorList in = {randn({B, H, n, d}, 1), randn({B, H, n, d}, 2), randn({B, H, n, d}, 3),
                     randn({1, H, n, n}, 4), randn({B, n}, 5)};
    TensorList mine, dense;
    for (TensorList* dst : {&mine, &dense}) {
      TensorList x;
      for (const Tensor& t : in) x.push_back(t.detach().clone().set_requires_grad());
      Tensor out;
      if (dst == &mine) {
        AttentionOptions o = kron_opts(r, T, L);
        o.bias = x[3], o.key_bias = x[4];
        out = attention(x[0], x[1], x[2], o);
      } else {
        Tensor m = mask_tensor(n, n, [&](int64_t i, int64_t j) { return !spec_masked(r, L, i, j); },
                               DType::F64);
        out = dense_attention(x[0], x[1], x[2], m, x[3], x[4].unsqueeze(1));
      }
      sum(mul(out, randn(out.shape(), 77))).backward();
      for (const Tensor& t : x) dst->push_back(t.grad());
    }
    const char* names[] = {"dq", "dk", "dv", "dbias", "dkey_bias"};
    for (int i = 0; i < 5; ++i)
      check_close(mine[i], dense[i], 1e-11, 1e-9, std::string(rule_name(r)) + " " + names[i]);
  }
}

TEST_CASE("attention: float32 bits equal scalar loops in the kernel's order") {
  // One tile of queries and of keys (n = 37 <= 64), a causal mask, d = 20 and dv = 19 (whole
  // vectors and a tail). The kernel's documented order, written out here: s_j = scale · (the
  // products q·k added in d order, from 0), -inf where key j is hidden; m = max_j s_j;
  // p_j = fast_exp(s_j - m), 0 where hidden; l = the p_j added in j order; out = (the p_j·v_j
  // added in j order, from 0) / l. No vector width can change these bits; Eigen's vector exp
  // and sum, used before, did (an AVX2 and an AVX-512 machine printed different tables).
  const int64_t B = 2, H = 2, n = 37, d = 20, dv = 19;
  Tensor q = randn({B, H, n, d}, 11, DType::F32), k = randn({B, H, n, d}, 12, DType::F32),
         v = randn({B, H, n, dv}, 13, DType::F32);
  AttentionOptions o;
  o.mask = AttentionMask::causal();
  o.scale = 0.2;
  Tensor out = attention(q, k, v, o);
  const float *Q = q.data<float>(), *K = k.data<float>(), *V = v.data<float>(),
              *O = out.data<float>();
  int64_t differ = 0;
  for (int64_t bh = 0; bh < B * H; ++bh)
    for (int64_t i = 0; i < n; ++i) {
      std::vector<float> s(n, -std::numeric_limits<float>::infinity()), p(n, 0.f);
      float m = s[0], l = 0.f;
      for (int64_t j = 0; j <= i; ++j) {
        float dot = 0.f;
        for (int64_t e = 0; e < d; ++e) dot += Q[(bh * n + i) * d + e] * K[(bh * n + j) * d + e];
        s[j] = 0.2f * dot;
        m = std::max(m, s[j]);
      }
      for (int64_t j = 0; j < n; ++j) {
        if (j <= i) p[j] = cpu_kernels::fast_exp(s[j] - m);
        l += p[j];
      }
      for (int64_t e = 0; e < dv; ++e) {
        float acc = 0.f;
        for (int64_t j = 0; j < n; ++j) acc += p[j] * V[(bh * n + j) * dv + e];
        const float want = acc / l;
        differ += std::memcmp(&want, &O[(bh * n + i) * dv + e], sizeof want) != 0;
      }
    }
  CHECK_MESSAGE(differ == 0, differ, " of ", B * H * n * dv, " outputs differ in their bits");
}

TEST_CASE("attention: the tiny models' shapes and head dims of every vector width") {
  // L = 17 tokens per frame, head dims that use each block of the small products (two wide
  // vectors, one, one 32-byte vector, a scalar tail: wide is 64 bytes with AVX-512, 32
  // otherwise), one and two 64-tiles, B·H = 12 (the fused
  // backward on 1 and 2 threads): forward against the loop in float32, gradients in float64
  // against the dense engine composition.
  const int64_t B = 3, H = 4, L = 17;
  uint64_t seed = 300;
  for (auto [d, dv] : {std::pair<int64_t, int64_t>{32, 32}, {44, 24}, {9, 37}})
    for (int64_t T : {1, 5}) {
      const int64_t n = T * L;
      const std::string what = "d=" + std::to_string(d) + " dv=" + std::to_string(dv) +
                               " n=" + std::to_string(n);
      Tensor q = randn({B, H, n, d}, seed++), k = randn({B, H, n, d}, seed++),
             v = randn({B, H, n, dv}, seed++);
      AttentionOptions o = kron_opts(Rule::KMTA, T, L);
      Ref ref;
      ref.visible = [L = L](int64_t i, int64_t j) { return !spec_masked(Rule::KMTA, L, i, j); };
      check_close(attention(q.to(DType::F32), k.to(DType::F32), v.to(DType::F32), o),
                  naive_attention(q, k, v, ref).out, 2e-6, 1e-5, what + " forward");
      TensorList mine, dense;
      for (TensorList* dst : {&mine, &dense}) {
        TensorList x;
        for (const Tensor& t : {q, k, v}) x.push_back(t.detach().clone().set_requires_grad());
        Tensor out = dst == &mine
                         ? attention(x[0], x[1], x[2], o)
                         : dense_attention(x[0], x[1], x[2],
                                           mask_tensor(n, n, ref.visible, DType::F64), Tensor(), Tensor());
        sum(mul(out, randn(out.shape(), 78))).backward();
        for (const Tensor& t : x) dst->push_back(t.grad());
      }
      const char* names[] = {"dq", "dk", "dv"};
      for (int i = 0; i < 3; ++i) check_close(mine[i], dense[i], 1e-11, 1e-9, what + " " + names[i]);
    }
  Tensor q = randn({1, 2, 5, 9}, 1), k = randn({1, 2, 5, 9}, 2), v = randn({1, 2, 5, 10}, 3);
  gradcheck([&](const TensorList& x) { return attention(x[0], x[1], x[2]); }, {q, k, v},
            "attention d=9, dv=10");
}

// ---- errors and determinism ----------------------------------------------------------------

TEST_CASE("attention: shape errors name the op and the shapes") {
  Tensor q = randn({1, 2, 6, 4}, 1), k = randn({1, 2, 6, 4}, 2), v = randn({1, 2, 6, 4}, 3);
  auto msg = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::string e1 = msg([&] { attention(q, randn({1, 2, 6, 3}, 4), v); });
  CHECK(e1.find("attention") != std::string::npos);
  CHECK(e1.find("[1, 2, 6, 3]") != std::string::npos);
  std::string e2 = msg([&] { attention(q, k, v, kron_opts(Rule::KMTA, 4, 2)); });
  CHECK(e2.find("attention: Kronecker mask for T = 4, L = 2") != std::string::npos);
  AttentionOptions o;
  o.key_bias = randn({2, 6}, 5);
  CHECK(msg([&] { attention(q, k, v, o); }).find("key_bias [2, 6]") != std::string::npos);
  AttentionOptions o2;
  o2.bias = randn({3, 6, 6}, 6);
  CHECK(msg([&] { attention(q, k, v, o2); }).find("bias [3, 6, 6]") != std::string::npos);
  AttentionOptions o3;
  o3.prob_rows = {6};
  CHECK(msg([&] { attention_ex(q, k, v, o3); }).find("prob_rows") != std::string::npos);
}

TEST_CASE("attention: bitwise equal with 1 and 2 threads, forward and every gradient") {
  // B·H = 3: the split backward on 1 and 2 threads; B·H = 6: fused on 1 thread (B·H >= 4 per
  // thread), split on 2; B·H = 12: fused on both. The two schedules give the same bits.
  const int64_t T = 4, L = 50, n = T * L, d = 16, Ne = 7;
  for (auto [B, H] : {std::pair<int64_t, int64_t>{1, 3}, {1, 6}, {4, 3}}) {
    TensorList in = {randn({B, H, n, d}, 1, DType::F32), randn({B, H, n, d}, 2, DType::F32),
                     randn({B, H, n, d}, 3, DType::F32), randn({n, n}, 4, DType::F32),
                     randn({B, n}, 5, DType::F32),       randn({B, H, Ne, d}, 6, DType::F32),
                     randn({B, H, Ne, d}, 7, DType::F32), randn({H}, 8, DType::F32)};
    auto run = [&, B = B](int threads) {
      set_num_threads(threads);
      TensorList x;
      for (const Tensor& t : in) x.push_back(t.detach().clone().set_requires_grad());
      AttentionOptions o = kron_opts(Rule::KMCTA, T, L);
      o.bias = x[3], o.key_bias = x[4], o.extra_k = x[5], o.extra_v = x[6], o.extra_bias = x[7];
      o.prob_rows = {0, 50, 199};
      AttentionResult r = attention_ex(x[0], x[1], x[2], o);
      sum(mul(r.out, randn(r.out.shape(), 9, DType::F32))).backward();
      std::vector<uint64_t> h = {hash_bits(r.out), hash_bits(r.probs)};
      for (const Tensor& t : x) h.push_back(hash_bits(t.grad()));
      (void)B;
      return h;
    };
    int before = num_threads();
    std::vector<uint64_t> one = run(1), two = run(2);
    set_num_threads(before);
    CHECK_MESSAGE(one == two, "B = ", B, ", H = ", H);
  }
}
