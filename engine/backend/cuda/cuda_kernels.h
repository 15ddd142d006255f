// Declarations of the CUDA kernels, one block per family file in this folder, with the same
// names and signatures as engine/backend/cpu/cpu_kernels.h. cuda_backend.cu puts them into
// the Backend table. Every pointer argument that the CPU kernel reads as data is a device
// pointer here, except where kernels_*.h says "host memory" (the Kronecker patterns and the
// attention prob_rows). One stream (the legacy default stream), no float atomics.
#pragma once
#include "engine/backend/backend.h"

namespace vc::cuda_kernels {

// cuda_backend.cu: number of visible devices (0 when the driver or the device is missing).
int device_count();
// Waits for all queued work (benchmarks time with it).
void synchronize();

// memory.cu
void* alloc(size_t bytes);
void free(void* p, size_t bytes);
AllocStats stats();
void reset_peak();
void release_cache();
void copy_strided(DType t, const void* src, const StridedDesc& s, void* dst, const StridedDesc& d);
void fill(DType t, void* dst, int64_t n, double value);
void cast(DType from, const void* src, DType to, void* dst, int64_t n);
void to_host(void* host_dst, const void* src, size_t bytes);
void from_host(void* dst, const void* host_src, size_t bytes);

// elementwise.cu
void unary(UnaryOp op, DType t, const void* x, void* y, int64_t n, double p0, double p1);
void unary_backward(UnaryOp op, DType t, const void* x, const void* y, const void* gy, void* gx,
                    int64_t n, double p0, double p1);
void binary(BinaryOp op, DType t, const void* a, const void* b, void* out, const BroadcastDesc& d);
void where(DType cond_t, const void* cond, DType t, const void* a, const void* b, void* out,
           const BroadcastDesc& d);

// reduce.cu
void reduce_columns(ReduceOp op, DType t, const void* x, void* y, int64_t rows, int64_t cols);
void reduce(ReduceOp op, DType t, const void* x, void* y, int64_t* arg, int64_t outer,
            int64_t inner, double correction);

// matmul.cu
void gemm(DType t, bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
          double alpha, const void* A, int64_t stride_a, const void* B, int64_t stride_b,
          double beta, void* C, int64_t stride_c);

// index.cu
void index_select(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                  int64_t n_src, int64_t n_idx, int64_t inner);
void index_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_idx,
               int64_t n_dst, int64_t inner);
void gather(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_src,
            int64_t n_idx, int64_t inner);
void scatter_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                 int64_t n_idx, int64_t n_dst, int64_t inner);

// norm.cu
void softmax(DType t, const void* x, void* y, int64_t rows, int64_t n, bool log);
void softmax_backward(DType t, const void* y, const void* gy, void* gx, int64_t rows, int64_t n,
                      bool log);
void layernorm(DType t, const void* x, const void* w, const void* b, void* y, void* mean,
               void* rstd, int64_t rows, int64_t n, double eps);
void layernorm_backward(DType t, const void* x, const void* w, const void* mean,
                        const void* rstd, const void* gy, void* gx, void* gw, void* gb,
                        int64_t rows, int64_t n);
void cross_entropy(DType t, const void* logits, const int64_t* labels, const void* soft,
                   void* loss, void* lse, int64_t rows, int64_t n, double smoothing,
                   int64_t ignore_index);
void cross_entropy_backward(DType t, const void* logits, const int64_t* labels, const void* soft,
                            const void* lse, const void* gloss, void* glogits, int64_t rows,
                            int64_t n, double smoothing, int64_t ignore_index);

// random.cu
void fill_random(Distribution d, DType t, void* y, int64_t n, uint64_t seed, uint64_t stream,
                 double a, double b);

// attention.cu, special.cu, optim.cu
AttentionKernels attention_kernels();
SpecialKernels special_kernels();
OptimKernels optim_kernels();

}  // namespace vc::cuda_kernels
