// ALT ("Align before Adapt", alt.md): CLIP's image encoder with token merging (ToMe) in every
// block, the merged tokens of each frame aligned to a frozen text corpus of entities by a
// Gumbel-softmax with a straight-through hard pick, the picked entities reduced to one query
// per frame, and a small video decoder (self-attention among the queries, a temporal 1-D
// convolution over the frame class embeddings, cross-attention from the queries to them)
// whose time-averaged output, through an MLP, is scored against frozen class-name features.
//
// State dict: "clip.*" (OpenAI's names; ToMe adds no weights), "corpus_features" (the frozen
// corpus S [K, E], L2-normalised; a buffer, so a checkpoint carries its corpus),
// "query_reduce.*" (Eq. 6's MLP, or "learned_entities" for the ∅ ablation),
// "decoder.<i>.{conv_weight, conv_bias, ln_q, self_attn, ln_q2, ln_kv, cross_attn}" and
// "readout.{0,2}" (the new modules, LR × new_lr_mult).
//
// The corpus. A text file of lines "<group>\t<entity>\t<description>" (Fashion-Motion's
// text/corpus.tsv; groups are free words such as object, part, scene, motion; blank lines
// and lines starting with '#' are skipped). Each entity is encoded once by the frozen text
// tower as "<entity>: <description>" (alt.md §3) — the app reads the file (TEXT.CORPUS) and
// calls set_corpus; `corpus_size` must equal its number of entities.
#pragma once
#include <string>
#include <vector>

#include "engine/ops/token_merging.h"
#include "models/video_model.h"

namespace vc::models {

// Keys on top of VideoModelOptions (defaults in brackets; alt.md §5, §8, §9, §10.2):
//   merge_r [8]               ToMe: tokens merged in every vision block (0: no merging)
//   merge_schedule [constant] constant (merge_r in every block) | a comma list of one r per
//                             block (e.g. "12,8,8,4"); clamped to floor((n-1)/2) per block
//   prop_attn [true]          proportional attention: + log(size) on every key's logit
//   queries [corpus]          corpus (Eq. 4-6: entity picks) | learnable (the ∅ ablation of
//                             Table C3: learnt entity embeddings in place of ÂS)
//   selection [gumbel]        gumbel (Gumbel noise in training + straight-through one-hot) |
//                             soft (softmax(W/tau), no noise, no hard pick: the ablation)
//   tau [1]                   Gumbel-softmax temperature, softmax(W/tau + g); the paper's 1 is
//                             nearly uniform over cosines in [0.15, 0.35] (alt.md §10.4)
//   corpus_size [35]          K, entities in the corpus (Fashion-Motion's text/corpus.tsv: 35);
//                             0 in a config: the apps take it from the TEXT.CORPUS file
//   query_reduce [flatten_linear]  Eq. 6's MLP [M_t, E] -> [E]: flatten_linear | mean
//   decoder_blocks [2]        M (the paper: 4 for B/16)
//   temporal_conv [true]      the 1-D convolution over T in every decoder block (Table C4)
//   conv_kernel [3]           its kernel (odd; "same" zero padding)
//   conv_chain [false]        X'_i = X'_{i-1} + Conv_i(X'_{i-1}) instead of Eq. 8's X̂ + Conv_i(X̂)
struct AltOptions : VideoModelOptions {
  enum class Queries { Corpus, Learnable };
  enum class Selection { Gumbel, Soft };
  enum class QueryReduce { FlattenLinear, Mean };
  int64_t merge_r = 8;
  std::string merge_schedule = "constant";
  bool prop_attn = true;
  Queries queries = Queries::Corpus;
  Selection selection = Selection::Gumbel;
  double tau = 1;
  int64_t corpus_size = 35;
  QueryReduce query_reduce = QueryReduce::FlattenLinear;
  int64_t decoder_blocks = 2;
  bool temporal_conv = true;
  int64_t conv_kernel = 3;
  bool conv_chain = false;

  AltOptions() { train_text = false; }  // frozen text: class features and corpus (alt.md §4)
  static AltOptions parse(const KeyValues& kv);
  KeyValues to_kv() const;
};

// One corpus entry and the file format above. Errors name the file and the line.
struct CorpusEntry {
  std::string group, entity, description;
  std::string text() const { return entity + ": " + description; }  // what is encoded
};
std::vector<CorpusEntry> parse_corpus(const std::string& text, const std::string& source);

// The per-block r of a schedule for a tower of `layers` blocks (the value before clamping).
std::vector<int64_t> merge_schedule(const AltOptions& o, int64_t layers);

// Tokens at each block's attention for a frame of n0 tokens (class token included), after the
// clamp r' = min(r, floor((n-1)/2)): counts[l] for l = 0..L-1, and counts[L] = the output M_t.
std::vector<int64_t> merged_token_counts(int64_t n0, const std::vector<int64_t>& schedule);

// alt.md §10.3: multiply-accumulates of the vision tower for one frame with merging,
//   Σ_l [ n_l·4D² + 2·n_l²·D + (r'_l > 0 ? ⌈n_l/2⌉⌊n_l/2⌋·d_h : 0) + (n_l − r'_l)·8D² ]
//   + N·(3·P²)·D (the patch embedding), n_l the tokens at block l's attention.
double vision_macs_per_frame(const clip::ClipConfig& c, const std::vector<int64_t>& schedule);

class AltModel : public VideoModel {
 public:
  AltModel(const clip::ClipConfig& config, const AltOptions& opts = {});
  std::string name() const override { return "alt"; }
  KeyValues options_kv() const override { return options_.to_kv(); }
  const AltOptions& alt_options() const { return options_; }

  // The corpus: tokens int64 [K, context] of the entries' text(), encoded by the frozen text
  // tower into the buffer S. K must equal corpus_size (the error names MODEL.CORPUS_SIZE).
  void set_corpus(const Tensor& tokens);
  bool uses_corpus() const { return options_.queries == AltOptions::Queries::Corpus; }

  // What one pass of the frame encoder gives (alt.md §2.1-2.3).
  struct Frames {
    Tensor tokens;    // X [B·T, M_t, E]: ln_post + proj of every surviving token
    Tensor sizes;     // [B·T, M_t]: original tokens in each
    Tensor slots;     // int64 [B·T, N+1]: each original token's final slot (for pictures)
    Tensor picks;     // int64 [B·T, M_t]: the entity each token picked (corpus queries only)
    Tensor queries;   // Q̂ [B, T, E]
    Tensor frames;    // X̂ [B, T, E]: the frame class embeddings
    std::vector<int64_t> counts;  // tokens at each block's attention, then M_t
  };
  // step >= 0 in training mode draws Gumbel noise keyed by (seed, step); otherwise none.
  Frames encode_frames(const Tensor& video, int64_t step = -1) const;
  // The video decoder and readout (alt.md §2.4): Q̂, X̂ [B, T, E] -> z [B, E] (unnormalised).
  Tensor decode(const Tensor& queries, const Tensor& frames) const;

  // Conv1D_i(x) of decoder block i over T (zero padding): [B, T, E] -> [B, T, E].
  Tensor temporal_conv_of(int64_t block, const Tensor& x) const {
    return temporal_conv(decoder_.at(size_t(block)), x);
  }
  // u [B, T, E]: the frame class embeddings X̂ (what the base class pools).
  Tensor frame_features(const Tensor& video) const override;
  // ẑ = z/‖z‖ [B, E].
  Tensor encode_video(const Tensor& video) const override;
  // The base objective (prompt variants, CE) with z computed at `step` (Gumbel noise).
  LossOutput training_loss(const Tensor& video, const Tensor& prompt_tokens, const Tensor& targets,
                           int64_t step) const override;

  std::vector<std::string> new_module_names() const override;
  int64_t tokens_out() const { return tokens_out_; }  // M_t
  const std::vector<int64_t>& schedule() const { return schedule_; }

  Tensor corpus_features;  // S [K, E], frozen buffer
  Tensor learned_entities;  // [M_t, E] (queries = learnable)

 protected:
  void init_new_modules(Generator& gen) override;
  void state_loaded() override;  // a loaded checkpoint brings its corpus

 private:
  struct DecoderBlock {
    Tensor conv_weight, conv_bias;  // [E, E, k] and [E] (undefined when the conv is off)
    std::shared_ptr<nn::LayerNorm> ln_q, ln_q2, ln_kv;
    std::shared_ptr<nn::MultiheadAttention> self_attn, cross_attn;
  };
  Tensor temporal_conv(const DecoderBlock& blk, const Tensor& x) const;  // [B, T, E] -> [B, T, E]

  AltOptions options_;
  std::vector<int64_t> schedule_;
  int64_t tokens_out_ = 0;
  std::shared_ptr<nn::Linear> query_linear_;   // flatten_linear: M_t·E -> E; mean: E -> E
  std::vector<DecoderBlock> decoder_;
  std::shared_ptr<nn::Linear> readout1_, readout2_;
  bool corpus_ready_ = false;
  mutable int64_t noise_step_ = -1;  // set by training_loss around the base objective
};

}  // namespace vc::models
