// Attention op: validation, the Kronecker mask constructors (claver.md §2.2), and the
// forward/backward pair around the backend's tiled kernels. See attention.h.
#include "engine/ops/attention.h"

#include <cmath>
#include <memory>

#include "engine/ops/index.h"
#include "engine/ops/op.h"

namespace vc {

// ---- Kronecker masks ----------------------------------------------------------------------

namespace {

using Pattern = std::vector<uint8_t>;

Pattern pattern(int64_t n, bool (*rule)(int64_t row, int64_t col)) {
  Pattern p(size_t(n * n));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c) p[size_t(r * n + c)] = rule(r, c);
  return p;
}
Pattern J(int64_t n) { return pattern(n, [](int64_t, int64_t) { return true; }); }
Pattern I(int64_t n) { return pattern(n, [](int64_t r, int64_t c) { return r == c; }); }
Pattern J_minus_I(int64_t n) { return pattern(n, [](int64_t r, int64_t c) { return r != c; }); }
// Key frame strictly before the query frame: the complement of U_T (upper incl. diagonal).
Pattern strictly_lower(int64_t n) { return pattern(n, [](int64_t r, int64_t c) { return c < r; }); }
Pattern E00(int64_t n) { return pattern(n, [](int64_t r, int64_t c) { return r == 0 && c == 0; }); }

KronMask make(const char* name, int64_t T, int64_t L, std::vector<KronMask::Term> terms) {
  VC_CHECK(T >= 1 && L >= 1, "KronMask::", name, ": need T >= 1 and L >= 1, got T = ", T,
           ", L = ", L);
  KronMask m;
  m.T = T;
  m.L = L;
  m.terms = std::move(terms);
  return m;
}

}  // namespace

bool KronMask::visible(int64_t i, int64_t j) const {
  int64_t t = i / L, l = i % L, t2 = j / L, l2 = j % L;
  for (const Term& k : terms)
    if (k.frame[size_t(t * T + t2)] && k.token[size_t(l * L + l2)]) return true;
  return false;
}

KronMask KronMask::joint(int64_t T, int64_t L) { return make("joint", T, L, {{J(T), J(L)}}); }
KronMask KronMask::spatial(int64_t T, int64_t L) { return make("spatial", T, L, {{I(T), J(L)}}); }
KronMask KronMask::pipeline(int64_t T, int64_t L) {
  return make("pipeline", T, L, {{J(T), I(L)}});
}
// Visible = (J_T − I_T) ⊗ J_L  ∪  I_T ⊗ I_L: other frames fully, own frame only itself.
KronMask KronMask::kmta(int64_t T, int64_t L) {
  return make("kmta", T, L, {{J_minus_I(T), J(L)}, {I(T), I(L)}});
}
// Visible = (J_T − U_T) ⊗ J_L  ∪  I_T ⊗ I_L: earlier frames fully, own frame only itself.
KronMask KronMask::kmcta(int64_t T, int64_t L) {
  return make("kmcta", T, L, {{strictly_lower(T), J(L)}, {I(T), I(L)}});
}
// Visible = J_T ⊗ E_00  ∪  I_T ⊗ I_L: class tokens see all class tokens; a token sees itself.
KronMask KronMask::class_token_only(int64_t T, int64_t L) {
  return make("class_token_only", T, L, {{J(T), E00(L)}, {I(T), I(L)}});
}

// ---- the op -------------------------------------------------------------------------------

namespace {

// A [B|1, H|1, n] view of the per-key bias: [n], [B|1, n] or [B|1, H|1, n].
Tensor key_bias_3d(const Tensor& kb, int64_t B, int64_t H, int64_t n, const Shape& q,
                   const Shape& k) {
  Tensor r = kb.dim() == 1 ? kb.reshape({1, 1, kb.size(0)})
             : kb.dim() == 2 ? kb.reshape({kb.size(0), 1, kb.size(1)})
                             : kb;
  VC_CHECK(r.dim() == 3 && (r.size(0) == 1 || r.size(0) == B) &&
               (r.size(1) == 1 || r.size(1) == H) && r.size(2) == n,
           "attention: key_bias ", kb.shape(), " must be [B, Nk] or [B|1, H|1, Nk] for q ", q,
           " and k ", k);
  return r;
}

// A [B|1, H|1, Ne|1] view of the extra-token bias: [H] or [B|1, H|1, Ne|1].
Tensor extra_bias_3d(const Tensor& eb, int64_t B, int64_t H, int64_t ne, const Shape& xk) {
  Tensor r = eb.dim() == 1 ? eb.reshape({1, eb.size(0), 1}) : eb;
  VC_CHECK(r.dim() == 3 && (r.size(0) == 1 || r.size(0) == B) &&
               (r.size(1) == 1 || r.size(1) == H) && (r.size(2) == 1 || r.size(2) == ne),
           "attention: extra_bias ", eb.shape(), " must be [H] or [B|1, H|1, Ne|1] for extra_k ",
           xk);
  return r;
}

}  // namespace

AttentionResult attention_ex(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                             const AttentionOptions& opt) {
  const char* name = "attention";
  check_floating(name, q_in);
  check_same(name, {q_in, k_in, v_in, opt.bias, opt.key_bias, opt.extra_k, opt.extra_v,
                    opt.extra_bias});
  VC_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4,
           "attention: q, k, v must be [batch, heads, tokens, dim], got q ", q_in.shape(), ", k ",
           k_in.shape(), ", v ", v_in.shape());
  const int64_t B = q_in.size(0), H = q_in.size(1), Nq = q_in.size(2), d = q_in.size(3);
  const int64_t Nk = k_in.size(2), dv = v_in.size(3);
  VC_CHECK(k_in.shape() == Shape({B, H, Nk, d}) && v_in.shape() == Shape({B, H, Nk, dv}),
           "attention: q ", q_in.shape(), ", k ", k_in.shape(), ", v ", v_in.shape(),
           " do not agree (k must be [B, H, Nk, d], v [B, H, Nk, dv])");

  const AttentionMask& mask = opt.mask;
  if (mask.kind == AttentionMask::Kind::Kron) {
    const KronMask& m = mask.kron;
    VC_CHECK(m.T >= 1 && m.L >= 1 && Nq == m.T * m.L && Nk == m.T * m.L,
             "attention: Kronecker mask for T = ", m.T, ", L = ", m.L, " needs ", m.T * m.L,
             " queries and keys, got q ", q_in.shape(), ", k ", k_in.shape());
    for (const KronMask::Term& t : m.terms)
      VC_CHECK(int64_t(t.frame.size()) == m.T * m.T && int64_t(t.token.size()) == m.L * m.L,
               "attention: Kronecker mask term with ", t.frame.size(), " frame and ",
               t.token.size(), " token entries, expected ", m.T * m.T, " and ", m.L * m.L);
  }

  const bool has_extra = opt.extra_k.defined() || opt.extra_v.defined();
  int64_t Ne = 0;
  if (has_extra) {
    VC_CHECK(opt.extra_k.defined() && opt.extra_v.defined(),
             "attention: extra_k and extra_v come together, got extra_k ",
             opt.extra_k.defined() ? shape_str(opt.extra_k.shape()) : "none", ", extra_v ",
             opt.extra_v.defined() ? shape_str(opt.extra_v.shape()) : "none");
    Ne = opt.extra_k.dim() == 4 ? opt.extra_k.size(2) : -1;
    VC_CHECK(opt.extra_k.shape() == Shape({B, H, Ne, d}) &&
                 opt.extra_v.shape() == Shape({B, H, Ne, dv}),
             "attention: extra_k ", opt.extra_k.shape(), " and extra_v ", opt.extra_v.shape(),
             " must be [B, H, Ne, d] and [B, H, Ne, dv] for q ", q_in.shape(), ", v ",
             v_in.shape());
  }
  VC_CHECK(!opt.extra_bias.defined() || has_extra,
           "attention: extra_bias ", opt.extra_bias.defined() ? shape_str(opt.extra_bias.shape()) : "",
           " given without extra_k / extra_v");
  for (int64_t r : opt.prob_rows)
    VC_CHECK(r >= 0 && r < Nq, "attention: prob_rows entry ", r, " outside [0, ", Nq,
             ") for q ", q_in.shape());

  // Extra tokens join the key/value sequence; concat's backward splits their gradient off.
  const int64_t Nkt = Nk + Ne;
  Tensor K = has_extra ? concat({k_in, opt.extra_k}, 2) : k_in;
  Tensor V = has_extra ? concat({v_in, opt.extra_v}, 2) : v_in;

  // The per-key bias (own keys) and the extra bias (extra keys) become one row of logit
  // offsets [Bc, Hc, Nkt]; expand/concat carry their gradients back.
  Tensor kb;
  if (opt.key_bias.defined() || opt.extra_bias.defined()) {
    Tensor kb3 = opt.key_bias.defined()
                     ? key_bias_3d(opt.key_bias, B, H, Nk, q_in.shape(), k_in.shape())
                     : Tensor();
    Tensor eb3 = opt.extra_bias.defined()
                     ? extra_bias_3d(opt.extra_bias, B, H, Ne, opt.extra_k.shape())
                     : Tensor();
    auto wide = [](const Tensor& t, int axis, int64_t n) { return t.defined() && t.size(axis) == n; };
    int64_t Bc = wide(kb3, 0, B) || wide(eb3, 0, B) ? B : 1;
    int64_t Hc = wide(kb3, 1, H) || wide(eb3, 1, H) ? H : 1;
    Tensor own = kb3.defined() ? kb3.expand({Bc, Hc, Nk})
                               : Tensor::zeros({Bc, Hc, Nk}, q_in.dtype(), q_in.device());
    if (has_extra) {
      Tensor ext = eb3.defined() ? eb3.expand({Bc, Hc, Ne})
                                 : Tensor::zeros({Bc, Hc, Ne}, q_in.dtype(), q_in.device());
      kb = concat({own, ext}, 2);
    } else {
      kb = own;
    }
    kb = kb.contiguous();
  }

  // The dense bias as a 4-d view with leading 1s; broadcast axes get stride 0 in the kernel.
  Tensor bias4;
  if (opt.bias.defined()) {
    const Shape& bs = opt.bias.shape();
    VC_CHECK(bs.size() <= 4, "attention: bias ", bs, " has more than 4 dims for q ",
             q_in.shape());
    Shape s4(4 - bs.size(), 1);
    s4.insert(s4.end(), bs.begin(), bs.end());
    const Shape full = {B, H, Nq, Nk};
    for (int i = 0; i < 4; ++i)
      VC_CHECK(s4[i] == 1 || s4[i] == full[i], "attention: bias ", bs,
               " does not broadcast to [B, H, Nq, Nk] = ", full);
    bias4 = opt.bias.reshape(s4);
  }

  OpScope op(name, {q_in, K, V, bias4, kb});
  Tensor qc = q_in.contiguous().detach(), kc = K.contiguous().detach(),
         vc = V.contiguous().detach();
  Tensor bc = bias4.defined() ? bias4.contiguous().detach() : Tensor();
  Tensor kbc = kb.defined() ? kb.detach() : Tensor();

  AttentionDesc a;
  a.dtype = qc.dtype();
  a.B = B, a.H = H, a.Nq = Nq, a.Nk = Nkt, a.n_main = Nk, a.d = d, a.dv = dv;
  a.scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(std::max<int64_t>(d, 1)));
  // The patterns, flattened; the closure keeps them alive for the backward.
  auto patterns = std::make_shared<std::pair<Pattern, Pattern>>();
  if (mask.kind == AttentionMask::Kind::Causal) a.mask = AttnMaskKind::Causal;
  if (mask.kind == AttentionMask::Kind::Kron) {
    a.mask = AttnMaskKind::Kron;
    for (const KronMask::Term& t : mask.kron.terms) {
      patterns->first.insert(patterns->first.end(), t.frame.begin(), t.frame.end());
      patterns->second.insert(patterns->second.end(), t.token.begin(), t.token.end());
    }
    a.kron = {mask.kron.T, mask.kron.L, int64_t(mask.kron.terms.size()), patterns->first.data(),
              patterns->second.data()};
  }
  if (bc.defined()) {
    a.bias = bc.raw();
    const Shape& s = bc.shape();
    int64_t stride = 1;
    for (int i = 3; i >= 0; --i) {
      a.bias_strides[i] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
  }
  if (kbc.defined()) {
    a.key_bias = kbc.raw();
    a.key_bias_sb = kbc.size(0) == 1 ? 0 : kbc.size(1) * Nkt;
    a.key_bias_sh = kbc.size(1) == 1 ? 0 : Nkt;
  }

  const Backend& be = backend_of(qc);
  Tensor out = make_tensor({B, H, Nq, dv}, qc.dtype(), qc.device());
  Tensor lse = make_tensor({B, H, Nq}, qc.dtype(), qc.device());
  const int64_t R = int64_t(opt.prob_rows.size());
  Tensor probs = R ? make_tensor({B, H, R, Nkt}, qc.dtype(), qc.device()) : Tensor();
  be.attention.forward(a, qc.raw(), kc.raw(), vc.raw(), out.raw(), lse.raw(),
                       R ? opt.prob_rows.data() : nullptr, R, R ? probs.raw() : nullptr);

  Tensor outs = out.detach();
  Shape bias_shape = bias4.defined() ? bias4.shape() : Shape();
  Shape kb_shape = kb.defined() ? kb.shape() : Shape();
  AttentionResult res;
  res.out = op.finish(out, [=](const Tensor& g_in, const std::vector<bool>& needs) {
    (void)patterns, (void)bc, (void)kbc;  // keep a's pointers alive
    Tensor g = g_in.contiguous();
    Tensor gq = make_tensor(qc.shape(), qc.dtype(), qc.device());
    Tensor gk = make_tensor(kc.shape(), kc.dtype(), kc.device());
    Tensor gv = make_tensor(vc.shape(), vc.dtype(), vc.device());
    // dS itself is the dense bias's gradient: [B, H, Nq, Nk], then summed over broadcasts.
    Tensor gb = needs[3] ? make_tensor({B, H, Nq, Nk}, qc.dtype(), qc.device()) : Tensor();
    Tensor gkb = needs[4] ? make_tensor({B, H, Nkt}, qc.dtype(), qc.device()) : Tensor();
    backend_of(g).attention.backward(a, qc.raw(), kc.raw(), vc.raw(), outs.raw(), lse.raw(),
                                     g.raw(), gq.raw(), gk.raw(), gv.raw(),
                                     gb.defined() ? gb.raw() : nullptr,
                                     gkb.defined() ? gkb.raw() : nullptr);
    return TensorList{gq, gk, gv, gb.defined() ? sum_to(gb, bias_shape) : Tensor(),
                      gkb.defined() ? sum_to(gkb, kb_shape) : Tensor()};
  });
  if (R) res.probs = probs;
  return res;
}

}  // namespace vc
