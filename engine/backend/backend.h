// The backend interface: a table of kernels on raw pointers and sizes.
//
// Kernels never see a Tensor. The op layer (engine/ops/) validates shapes and dtypes,
// allocates outputs, makes inputs contiguous where a kernel needs it, and calls one of
// these. The CPU backend (cpu/) is the reference; the CUDA backend mirrors it entry for
// entry. Every kernel here is deterministic: it parallelises over independent outputs
// and never splits a reduction between threads.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/backend/kernels_attention.h"
#include "engine/backend/kernels_optim.h"
#include "engine/backend/kernels_special.h"
#include "engine/core/device.h"
#include "engine/core/dtype.h"

namespace vc {

constexpr int kMaxDims = 8;

// A strided n-d view of a buffer: element (i0..in) sits at offset + sum(ik * strides[k]).
struct StridedDesc {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  int64_t offset = 0;
};

// Up to three broadcast inputs of one contiguous output of `shape`; a stride of 0
// repeats an input along that axis.
struct BroadcastDesc {
  int ndim = 0;
  int64_t numel = 1;
  int64_t shape[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
  int64_t offsets[3] = {};
};

struct AllocStats {
  int64_t live_bytes = 0, peak_bytes = 0, allocations = 0, cached_bytes = 0;
};

struct MemoryKernels {
  void* (*alloc)(size_t bytes);
  void (*free)(void* p, size_t bytes);
  AllocStats (*stats)();
  void (*reset_peak)();
  void (*release_cache)();
  // dst(view) = src(view); both views have the same shape.
  void (*copy_strided)(DType t, const void* src, const StridedDesc& s, void* dst,
                       const StridedDesc& d);
  void (*fill)(DType t, void* dst, int64_t n, double value);
  void (*cast)(DType from, const void* src, DType to, void* dst, int64_t n);
  // Host <-> device transfers (plain memcpy on the CPU).
  void (*to_host)(void* host_dst, const void* src, size_t bytes);
  void (*from_host)(void* dst, const void* host_src, size_t bytes);
};

enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Tanh, Sigmoid, Relu,
  GeluErf, GeluTanh, QuickGelu,
  Pow,        // x^p0
  Clamp,      // min(max(x, p0), p1)
  AddScalar,  // x + p0
  MulScalar,  // x * p0
};

enum class BinaryOp { Add, Sub, Mul, Div, Maximum, Minimum, Eq, Ne, Gt, Ge, Lt, Le };

struct ElementwiseKernels {
  void (*unary)(UnaryOp op, DType t, const void* x, void* y, int64_t n, double p0, double p1);
  // gx = dy/dx * gy; x is the input and y the saved output of the forward.
  void (*unary_backward)(UnaryOp op, DType t, const void* x, const void* y, const void* gy,
                         void* gx, int64_t n, double p0, double p1);
  // out = a op b over inputs 0 and 1 of the descriptor. Comparisons give 1 or 0.
  void (*binary)(BinaryOp op, DType t, const void* a, const void* b, void* out,
                 const BroadcastDesc& d);
  // out = cond != 0 ? a : b over inputs 0, 1, 2 of the descriptor.
  void (*where)(DType cond_t, const void* cond, DType t, const void* a, const void* b, void* out,
                const BroadcastDesc& d);
};

enum class ReduceOp { Sum, Mean, Max, Min, Var };

struct ReduceKernels {
  // x is [outer, inner]; reduces each row of `inner` into y[outer]. Max/Min also write the
  // first index of the extreme into `arg` when it is not null. Var divides by
  // inner - correction.
  void (*reduce)(ReduceOp op, DType t, const void* x, void* y, int64_t* arg, int64_t outer,
                 int64_t inner, double correction);
  // Sum or Mean down the columns of x [rows, cols] into y[cols]: the reduction over leading
  // axes (bias gradients, sum_to) without a transposed copy. Each column is summed in row
  // order in double, the same order and bits as `reduce` on the transposed rows.
  void (*reduce_columns)(ReduceOp op, DType t, const void* x, void* y, int64_t rows,
                         int64_t cols);
};

struct MatmulKernels {
  // Row-major C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b] for b < batch, with
  // op(A) [M, K], op(B) [K, N]; a batch stride of 0 repeats the operand.
  void (*gemm)(DType t, bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N,
               int64_t K, double alpha, const void* A, int64_t stride_a, const void* B,
               int64_t stride_b, double beta, void* C, int64_t stride_c);
};

struct IndexKernels {
  // x [outer, n_src, inner] -> y [outer, n_idx, inner], y[o, i, k] = x[o, idx[i], k].
  void (*index_select)(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                       int64_t n_src, int64_t n_idx, int64_t inner);
  // The adjoint of index_select, owner-computes: y[o, j, k] = sum over i with idx[i] == j of
  // x[o, i, k], summed in increasing i. y is overwritten.
  void (*index_add)(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                    int64_t n_idx, int64_t n_dst, int64_t inner);
  // idx, y [outer, n_idx, inner]; y[o, i, k] = x[o, idx[o, i, k], k] with x [outer, n_src, inner].
  void (*gather)(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                 int64_t n_src, int64_t n_idx, int64_t inner);
  // y [outer, n_dst, inner] += x[o, i, k] at row idx[o, i, k]; each (o, k) column is one
  // owner that adds its sources in increasing i.
  void (*scatter_add)(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                      int64_t n_idx, int64_t n_dst, int64_t inner);
};

struct NormKernels {
  // Row-wise over [rows, n]. log selects log_softmax.
  void (*softmax)(DType t, const void* x, void* y, int64_t rows, int64_t n, bool log);
  void (*softmax_backward)(DType t, const void* y, const void* gy, void* gx, int64_t rows,
                           int64_t n, bool log);
  // y = (x - mean) * rstd * w + b over rows of n; w and b may be null. Saves mean and rstd.
  void (*layernorm)(DType t, const void* x, const void* w, const void* b, void* y, void* mean,
                    void* rstd, int64_t rows, int64_t n, double eps);
  // gx always; gw and gb when not null (each column summed over rows by one owner).
  void (*layernorm_backward)(DType t, const void* x, const void* w, const void* mean,
                             const void* rstd, const void* gy, void* gx, void* gw, void* gb,
                             int64_t rows, int64_t n);
  // Cross-entropy of logits [rows, n] against hard labels (soft == null) or soft targets
  // [rows, n] (labels == null), with label smoothing eps: loss[r] per row; saves lse[r].
  // A hard label equal to ignore_index gives loss 0 and gradient 0.
  void (*cross_entropy)(DType t, const void* logits, const int64_t* labels, const void* soft,
                        void* loss, void* lse, int64_t rows, int64_t n, double smoothing,
                        int64_t ignore_index);
  // glogits = (softmax - target) * gloss[r].
  void (*cross_entropy_backward)(DType t, const void* logits, const int64_t* labels,
                                 const void* soft, const void* lse, const void* gloss,
                                 void* glogits, int64_t rows, int64_t n, double smoothing,
                                 int64_t ignore_index);
};

// A 2-D convolution over contiguous NCHW images: x [B, C, H, W], w [O, C, k, k], bias [O] (or
// null), y [B, O, Ho, Wo] with Ho = (H + 2p - k) / s + 1 (Wo likewise) and zeros outside x.
struct ConvShape {
  int64_t B, C, H, W, O, k, s, p, Ho, Wo;
};

struct ConvKernels {
  // y[b, o, i, j] = bias[o] + sum over (c, ky, kx), in that order, of
  // w[o, c, ky, kx] * x[b, c, i·s + ky - p, j·s + kx - p], one fused multiply-add per term.
  void (*conv2d)(DType t, const void* x, const void* w, const void* bias, void* y,
                 const ConvShape& g);
  // gx [B, C, H, W], gw [O, C, k, k], gb [O], each written only when not null. gx: each image
  // adds, over output rows i (increasing) and taps (c, ky, kx), the sum over o of w · gy.
  // gw and gb: per output column j a lane sum over (b, i) in order, then the lanes summed in j
  // order; one owner per weight.
  void (*conv2d_backward)(DType t, const void* x, const void* w, const void* gy, void* gx,
                          void* gw, void* gb, const ConvShape& g);
};

enum class Distribution { Uniform, Normal, Gumbel };

struct RandomKernels {
  // Element i draws from Philox(key = seed, counter = (i, stream)): the same numbers on every
  // backend and for any thread count. Uniform on [a, b); Normal(mean a, std b); Gumbel(0, 1).
  void (*fill_random)(Distribution d, DType t, void* y, int64_t n, uint64_t seed,
                      uint64_t stream, double a, double b);
};

struct Backend {
  const char* name;
  MemoryKernels memory;
  ElementwiseKernels elementwise;
  ReduceKernels reduce;
  MatmulKernels matmul;
  IndexKernels index;
  NormKernels norm;
  ConvKernels conv;
  RandomKernels random;
  AttentionKernels attention;
  SpecialKernels special;
  OptimKernels optim;
};

// The table for a device; throws naming the device when its backend is not built.
const Backend& backend_for(Device d);
// The CUDA backend registers itself here when it is linked in.
void register_backend(DeviceType type, const Backend* b);
// Whether this build has the CUDA backend and a CUDA device is usable (false without one).
bool cuda_available();

}  // namespace vc
