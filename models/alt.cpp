// ALT's video encoder, step by step as in alt.md §2 (symbols: B videos, T frames, N patches,
// n the tokens of a frame at a block, D width, H heads, d_h = D/H, E the joint width, L_V
// vision blocks, r_l the tokens merged by block l, M_t = N + 1 − Σ r'_l, K corpus entities,
// M decoder blocks, C classes).
//
//   E_0    = ln_pre([c; X_p W_pe] + e_pos),  s = 1                per frame   [B·T, N+1, D]  (§2.1 1-3)
//   in every block l (§2.1 step 4, §2.2):
//   E'     = E + PropMSA(LN1(E), s)    logits + log s_j            proportional attention
//   m      = mean over heads of the keys                                        [B·T, n, d_h]
//   (E'',s)= ToMeMerge(E', s, m, r_l)  class token protected, size-weighted  [B·T, n − r', D]
//   E      = E'' + MLP(LN2(E''))
//   X      = ln_post(E_L) W_proj        every surviving token                   [B·T, M_t, E]  (§2.1 5)
//   X̂      = ln_post(E_L[:,0]) W_proj   the frame class embedding (CLIP's head) [B, T, E]
//   W      = x̂_i · ŝ_j                  cosine to the frozen corpus S           [B·T, M_t, K]  (Eq. 4)
//   A      = softmax(W/τ + γ)           γ ~ Gumbel in training only                            (Eq. 5)
//   Â      = onehot(argmax A) (+ A − sg(A) in the backward: straight-through)
//   U      = Â Ŝ                        the picked entities' embeddings         [B·T, M_t, E]  (Eq. 6)
//   Q̂      = Linear(vec U)              one query per frame ("flatten_linear")  [B, T, E]
//   in every decoder block i = 1..M (§2.4, Eq. 8):
//   X'_i   = X̂ + Conv1D_i(X̂)            over T, kernel 3, zero-initialised      [B, T, E]
//   Q'     = Q̂ + SA_i(LN(Q̂))            self-attention among the T queries
//   Q̂      = Q' + CA_i(LN(Q'), LN(X'_i)) queries attend to the frame embeddings
//   z      = MLP(mean_t Q̂)              Linear–GELU–Linear                      [B, E]
//   ℓ_k    = λ ⟨z/‖z‖, c_k⟩             c: frozen class-name prompt features    [B, C]         (Eq. 10)
//
// Without the convolution (and with no position embedding, alt.md §9.8) nothing above sees
// the frame order: SA, CA and the mean over T are permutation-equivariant/invariant, so z is
// invariant to shuffling the frames (alt.md §10.4.1, tested).
#include "models/alt.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/engine.h"
#include "nn/init.h"

namespace vc::models {

namespace {

const char* queries_name(AltOptions::Queries q) { return q == AltOptions::Queries::Corpus ? "corpus" : "learnable"; }
const char* selection_name(AltOptions::Selection s) { return s == AltOptions::Selection::Gumbel ? "gumbel" : "soft"; }
const char* reduce_name(AltOptions::QueryReduce q) {
  return q == AltOptions::QueryReduce::FlattenLinear ? "flatten_linear" : "mean";
}

// "12,8,8,4" -> {12, 8, 8, 4}; every entry an integer >= 0.
std::vector<int64_t> parse_schedule(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    VC_CHECK(used > 0 && used == item.size() && v >= 0, "alt: option 'merge_schedule' = '", text,
             "' must be 'constant' or a comma list of integers >= 0 (one r per vision block)");
    out.push_back(v);
  }
  VC_CHECK(!out.empty(), "alt: option 'merge_schedule' is empty");
  return out;
}

// [B, L, D] <-> [B, H, L, D/H], as nn::MultiheadAttention does it.
Tensor split_heads(const Tensor& x, int64_t heads) {
  const int64_t B = x.size(0), L = x.size(1), D = x.size(2);
  return x.reshape({B, L, heads, D / heads}).permute({0, 2, 1, 3});
}
Tensor merge_heads(const Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), L = x.size(2), dh = x.size(3);
  return x.permute({0, 2, 1, 3}).reshape({B, L, H * dh});
}

}  // namespace

// ------------------------------------------------------------------ options

AltOptions AltOptions::parse(const KeyValues& kv) {
  AltOptions o;
  OptionReader r(kv, "alt");
  o.read(r);
  r.read("merge_r", o.merge_r);
  r.read("merge_schedule", o.merge_schedule);
  if (o.merge_schedule != "constant") parse_schedule(o.merge_schedule);
  r.read("prop_attn", o.prop_attn);
  std::string q = queries_name(o.queries);
  r.read_choice("queries", q, {"corpus", "learnable"});
  o.queries = q == "corpus" ? Queries::Corpus : Queries::Learnable;
  std::string s = selection_name(o.selection);
  r.read_choice("selection", s, {"gumbel", "soft"});
  o.selection = s == "gumbel" ? Selection::Gumbel : Selection::Soft;
  r.read("tau", o.tau);
  r.read("corpus_size", o.corpus_size);
  std::string qr = reduce_name(o.query_reduce);
  r.read_choice("query_reduce", qr, {"flatten_linear", "mean"});
  o.query_reduce = qr == "flatten_linear" ? QueryReduce::FlattenLinear : QueryReduce::Mean;
  r.read("decoder_blocks", o.decoder_blocks);
  r.read("temporal_conv", o.temporal_conv);
  r.read("conv_kernel", o.conv_kernel);
  r.read("conv_chain", o.conv_chain);
  r.finish();
  VC_CHECK(o.merge_r >= 0, "alt: option 'merge_r' must be >= 0, got ", o.merge_r);
  VC_CHECK(o.tau > 0, "alt: option 'tau' must be > 0, got ", o.tau);
  VC_CHECK(o.corpus_size >= 0, "alt: option 'corpus_size' must be >= 0 (0: the apps take it from TEXT.CORPUS), got ",
           o.corpus_size);
  VC_CHECK(o.decoder_blocks >= 1, "alt: option 'decoder_blocks' must be >= 1, got ", o.decoder_blocks);
  VC_CHECK(o.conv_kernel >= 1 && o.conv_kernel % 2 == 1, "alt: option 'conv_kernel' must be odd and >= 1, got ",
           o.conv_kernel);
  return o;
}

KeyValues AltOptions::to_kv() const {
  KeyValues kv;
  write(kv);
  auto b = [](bool x) { return std::string(x ? "true" : "false"); };
  kv["merge_r"] = std::to_string(merge_r);
  kv["merge_schedule"] = merge_schedule;
  kv["prop_attn"] = b(prop_attn);
  kv["queries"] = queries_name(queries);
  kv["selection"] = selection_name(selection);
  kv["tau"] = format_number(tau);
  kv["corpus_size"] = std::to_string(corpus_size);
  kv["query_reduce"] = reduce_name(query_reduce);
  kv["decoder_blocks"] = std::to_string(decoder_blocks);
  kv["temporal_conv"] = b(temporal_conv);
  kv["conv_kernel"] = std::to_string(conv_kernel);
  kv["conv_chain"] = b(conv_chain);
  return kv;
}

// ------------------------------------------------------------------ corpus, schedule, FLOPs

std::vector<CorpusEntry> parse_corpus(const std::string& text, const std::string& source) {
  std::vector<CorpusEntry> out;
  std::stringstream ss(text);
  std::string line;
  for (int64_t no = 1; std::getline(ss, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
      f.push_back(line.substr(start, tab - start));
    f.push_back(line.substr(start));
    VC_CHECK(f.size() == 3 && !f[0].empty() && !f[1].empty() && !f[2].empty(), "corpus '", source, "' line ", no,
             ": expected '<group>\\t<entity>\\t<description>' (3 non-empty tab-separated fields), got '", line,
             "'");
    out.push_back({f[0], f[1], f[2]});
  }
  VC_CHECK(!out.empty(), "corpus '", source, "' has no entries");
  return out;
}

std::vector<int64_t> merge_schedule(const AltOptions& o, int64_t layers) {
  if (o.merge_schedule == "constant") return std::vector<int64_t>(size_t(layers), o.merge_r);
  std::vector<int64_t> s = parse_schedule(o.merge_schedule);
  VC_CHECK(int64_t(s.size()) == layers, "alt: option 'merge_schedule' = '", o.merge_schedule, "' gives ", s.size(),
           " values for an image encoder of ", layers, " blocks");
  return s;
}

std::vector<int64_t> merged_token_counts(int64_t n0, const std::vector<int64_t>& schedule) {
  std::vector<int64_t> counts = {n0};
  int64_t n = n0;
  for (int64_t r : schedule) {
    n -= std::max<int64_t>(0, std::min(r, (n - 1) / 2));  // the clamp of bipartite_soft_matching
    counts.push_back(n);
  }
  return counts;
}

double vision_macs_per_frame(const clip::ClipConfig& c, const std::vector<int64_t>& schedule) {
  const double D = double(c.vision_width), dh = D / double(c.vision_heads);
  const int64_t N = c.grid() * c.grid();
  double macs = double(N) * double(3 * c.patch_size * c.patch_size) * D;  // patch embedding
  std::vector<int64_t> counts = merged_token_counts(N + 1, schedule);
  for (size_t l = 0; l < schedule.size(); ++l) {
    const int64_t n = counts[l], r = n - counts[l + 1];
    macs += double(n) * 4 * D * D + 2 * double(n) * double(n) * D;  // qkv + out proj; QKᵀ and PV
    if (r > 0) macs += double((n + 1) / 2) * double(n / 2) * dh;      // the matching's cosines
    macs += double(n - r) * 8 * D * D;                                 // the MLP on n − r tokens
  }
  return macs;
}

// ------------------------------------------------------------------ the model

AltModel::AltModel(const clip::ClipConfig& c, const AltOptions& opts)
    : VideoModel("AltModel", c, opts), options_(opts) {
  const int64_t E = c.embed_dim, N = c.grid() * c.grid();
  schedule_ = merge_schedule(opts, c.vision_layers);
  tokens_out_ = merged_token_counts(N + 1, schedule_).back();
  // corpus_size 0 (a config that leaves it to the apps) builds an empty S; set_corpus and the
  // forward pass then say what to set.
  if (uses_corpus())
    corpus_features = register_buffer("corpus_features", Tensor::zeros({opts.corpus_size, E}));
  else
    learned_entities = register_parameter("learned_entities", Tensor::zeros({tokens_out_, E}));
  const int64_t in = opts.query_reduce == AltOptions::QueryReduce::FlattenLinear ? tokens_out_ * E : E;
  query_linear_ = register_module("query_reduce", std::make_shared<nn::Linear>(in, E));
  auto dec = register_module("decoder", std::make_shared<nn::Module>("ModuleList"));
  const int64_t heads = std::max<int64_t>(1, E / 64);  // H = d/64 (alt.md §2.4)
  for (int64_t i = 0; i < opts.decoder_blocks; ++i) {
    auto m = dec->register_module(std::to_string(i), std::make_shared<nn::Module>("AltDecoderBlock"));
    DecoderBlock b;
    if (opts.temporal_conv) {
      b.conv_weight = m->register_parameter("conv_weight", Tensor::zeros({E, E, opts.conv_kernel}));
      b.conv_bias = m->register_parameter("conv_bias", Tensor::zeros({E}));
    }
    b.ln_q = m->register_module("ln_q", std::make_shared<nn::LayerNorm>(E));
    b.self_attn = m->register_module("self_attn", std::make_shared<nn::MultiheadAttention>(E, heads));
    b.ln_q2 = m->register_module("ln_q2", std::make_shared<nn::LayerNorm>(E));
    b.ln_kv = m->register_module("ln_kv", std::make_shared<nn::LayerNorm>(E));
    b.cross_attn = m->register_module("cross_attn", std::make_shared<nn::MultiheadAttention>(E, heads));
    decoder_.push_back(b);
  }
  auto ro = register_module("readout", std::make_shared<nn::Module>("Sequential"));
  readout1_ = ro->register_module("0", std::make_shared<nn::Linear>(E, E));
  readout2_ = ro->register_module("2", std::make_shared<nn::Linear>(E, E));
}

std::vector<std::string> AltModel::new_module_names() const {
  std::vector<std::string> n = {"query_reduce", "decoder", "readout"};
  if (!uses_corpus()) n.push_back("learned_entities");
  return n;
}

void AltModel::init_new_modules(Generator& gen) {
  // PyTorch's defaults for the Linears and attentions (zero in/out-proj biases); the
  // convolutions start at zero so each block's X' = X̂ (alt.md §2.4); learnt entities are
  // unit-norm on average, like the rows of Ŝ they stand in for.
  query_linear_->reset_parameters(gen);
  for (DecoderBlock& b : decoder_) {
    b.self_attn->reset_parameters(gen);
    b.cross_attn->reset_parameters(gen);
    nn::init::zeros_(b.self_attn->out_proj->bias);
    nn::init::zeros_(b.cross_attn->out_proj->bias);
  }
  readout1_->reset_parameters(gen);
  readout2_->reset_parameters(gen);
  if (learned_entities.defined())
    nn::init::normal_(learned_entities, gen, 0, 1.0 / std::sqrt(double(clip_->config.embed_dim)));
}

void AltModel::set_corpus(const Tensor& tokens) {
  VC_CHECK(uses_corpus(), "alt: set_corpus with queries = learnable (the corpus is not used)");
  VC_CHECK(tokens.dim() == 2, "alt: corpus tokens must be [K, context], got ", tokens.shape());
  VC_CHECK(tokens.size(0) == options_.corpus_size, "alt: the corpus has ", tokens.size(0),
           " entities but the model was built for corpus_size = ", options_.corpus_size,
           " (set MODEL.CORPUS_SIZE to ", tokens.size(0), ")");
  NoGradGuard frozen;  // S is computed once, offline, and never trained (alt.md §3)
  Tensor s = l2_normalize(clip_->encode_text(clip::trim_padding(tokens)), -1);
  nn::copy_into(corpus_features, s);
  corpus_ready_ = true;
}

AltModel::Frames AltModel::encode_frames(const Tensor& video, int64_t step) const {
  const clip::VisionTransformer& vis = *clip_->visual;
  const int64_t B = video.size(0), T = video.size(1), E = clip_->config.embed_dim;
  VC_CHECK(T == options_.num_frames, "alt: the model takes ", options_.num_frames, " frames (num_frames), the clip has ",
           T);
  Frames f;
  Tensor x = vis.embed(fold_frames(video));  // E_0 [B·T, N+1, D]
  const int64_t BT = x.size(0), n0 = x.size(1);
  Tensor sizes;  // undefined = all ones (before the first merge)
  {
    std::vector<int64_t> id(size_t(BT * n0));
    for (int64_t i = 0; i < BT * n0; ++i) id[size_t(i)] = i % n0;
    f.slots = Tensor::from_vector(id, {BT, n0}).to(x.device());
  }
  f.counts.push_back(n0);
  for (int64_t l = 0; l < vis.transformer->layers(); ++l) {
    const nn::ResidualAttentionBlock& blk = vis.transformer->block(l);
    const nn::MultiheadAttention& a = *blk.attn;
    // E' = E + PropMSA(LN1(E), s): CLIP's packed projection, the keys kept for the metric.
    Tensor qkv = add(matmul(blk.ln_1->forward(x), a.in_proj_weight.transpose(0, 1)), a.in_proj_bias);
    Tensor q = split_heads(qkv.narrow(2, 0, a.dim), a.heads);
    Tensor k = split_heads(qkv.narrow(2, a.dim, a.dim), a.heads);
    Tensor v = split_heads(qkv.narrow(2, 2 * a.dim, a.dim), a.heads);
    nn::AttentionOptions o;
    if (options_.prop_attn && sizes.defined()) o.key_bias = log(sizes);  // + log s_j
    x = add(x, a.out_proj->forward(merge_heads(nn::attention_core(q, k, v, o).out)));
    // ToMe between the attention and the MLP (alt.md §2.1 step 4): the metric is the keys
    // averaged over heads; the matching takes no gradient, the merge is linear in x.
    if (schedule_[size_t(l)] > 0) {
      MergePlan plan = bipartite_soft_matching(mean(k, {1}), schedule_[size_t(l)], /*protect_first=*/true);
      if (plan.r > 0) {
        MergeResult m = merge_tokens(x, sizes, plan);
        x = m.x;
        sizes = m.sizes;
        NoGradGuard ng;
        f.slots = gather(merge_slots(plan), 1, f.slots);
      }
    }
    f.counts.push_back(x.size(1));
    x = add(x, blk.mlp->forward(blk.ln_2->forward(x)));
  }
  const int64_t Mt = x.size(1);
  VC_CHECK(Mt == tokens_out_, "alt: ", Mt, " tokens left after merging, expected M_t = ", tokens_out_);
  f.sizes = sizes.defined() ? sizes.detach() : Tensor::ones({BT, Mt}, x.dtype(), x.device());
  f.frames = vis.head(x).reshape({B, T, E});                // X̂: CLIP's own head on the class token
  f.tokens = matmul(vis.ln_post->forward(x), vis.proj);     // X: every token into the joint space
  Tensor U;
  if (uses_corpus()) {
    VC_CHECK(corpus_ready_, "alt: no corpus: call set_corpus (the apps read TEXT.CORPUS) or load a checkpoint");
    Tensor W = matmul(l2_normalize(f.tokens, -1), corpus_features.transpose(0, 1));  // cosines [B·T, M_t, K]
    Tensor logits = mul(W, 1.0 / options_.tau);
    Tensor A;
    if (options_.selection == AltOptions::Selection::Gumbel) {
      // softmax(W/τ + γ) with γ only in training; the straight-through one-hot forward is
      // bit-exact, its backward the soft path's (engine/ops/gumbel_softmax.h).
      const bool noise = is_training() && step >= 0;
      A = gumbel_softmax(logits, 1.0, /*hard=*/true, options_.seed, 0xA17000000000ull ^ uint64_t(std::max<int64_t>(step, 0)),
                         noise);
    } else {
      A = softmax(logits, -1);  // the soft ablation: a weighted mix of entities, no noise
    }
    {
      NoGradGuard ng;
      f.picks = argmax(A.detach(), -1);
    }
    U = matmul(A, corpus_features);  // Û = ÂŜ: exactly Ŝ[k_i] in the forward pass (hard)
  } else {
    U = learned_entities.unsqueeze(0).expand({BT, Mt, E});  // ∅: the same learnt set every frame
  }
  Tensor Q = options_.query_reduce == AltOptions::QueryReduce::FlattenLinear
                 ? query_linear_->forward(U.reshape({BT, Mt * E}))
                 : query_linear_->forward(mean(U, {1}));
  f.queries = Q.reshape({B, T, E});
  return f;
}

Tensor AltModel::temporal_conv(const DecoderBlock& blk, const Tensor& x) const {
  // y[t] = b + Σ_j W[:, :, j] x[t + j − p], zero padding p = (k − 1)/2 at both ends.
  const int64_t B = x.size(0), T = x.size(1), E = x.size(2), k = blk.conv_weight.size(2), p = (k - 1) / 2;
  Tensor pad = Tensor::zeros({B, p, E}, x.dtype(), x.device());
  Tensor xp = p > 0 ? concat({pad, x, pad}, 1) : x;
  Tensor y;
  for (int64_t j = 0; j < k; ++j) {
    Tensor term = matmul(xp.narrow(1, j, T), blk.conv_weight.select(2, j).transpose(0, 1));
    y = y.defined() ? add(y, term) : term;
  }
  return add(y, blk.conv_bias);
}

Tensor AltModel::decode(const Tensor& queries, const Tensor& frames) const {
  Tensor Q = queries, Xp = frames;
  for (const DecoderBlock& b : decoder_) {
    if (options_.temporal_conv) {
      const Tensor& base = options_.conv_chain ? Xp : frames;  // Eq. 8 convolves X̂ in every block
      Xp = add(base, temporal_conv(b, base));
    }
    Q = add(Q, b.self_attn->forward(b.ln_q->forward(Q)));
    Tensor kv = b.ln_kv->forward(Xp);
    Q = add(Q, b.cross_attn->forward(b.ln_q2->forward(Q), kv, kv).out);
  }
  return readout2_->forward(gelu(readout1_->forward(mean(Q, {1}))));
}

Tensor AltModel::frame_features(const Tensor& video) const { return encode_frames(video).frames; }

Tensor AltModel::encode_video(const Tensor& video) const {
  Frames f = encode_frames(video, noise_step_);
  return l2_normalize(decode(f.queries, f.frames), -1);
}

VideoModel::LossOutput AltModel::training_loss(const Tensor& video, const Tensor& prompt_tokens,
                                               const Tensor& targets, int64_t step) const {
  struct StepScope {  // the base objective calls encode_video; the noise of this step reaches it
    int64_t& s;
    StepScope(int64_t& s_, int64_t v) : s(s_) { s = v; }
    ~StepScope() { s = -1; }
  } scope(noise_step_, step);
  return VideoModel::training_loss(video, prompt_tokens, targets, step);
}

void AltModel::state_loaded() { corpus_ready_ = uses_corpus(); }

}  // namespace vc::models
