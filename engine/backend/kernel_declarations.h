// The kernels every backend defines, with the same names and signatures, one block per family
// file (name.cpp on the CPU, name.cu on CUDA). Included inside namespace vc::cpu_kernels by
// cpu/cpu_kernels.h and inside vc::cuda_kernels by cuda/cuda_kernels.h, so it has no include
// guard of its own and includes nothing. The memory family differs per backend and stays there.

// memory (the part both share)
void* alloc(size_t bytes);
void free(void* p, size_t bytes);
AllocStats stats();
void reset_peak();
void release_cache();
void copy_strided(DType t, const void* src, const StridedDesc& s, void* dst, const StridedDesc& d);
void fill(DType t, void* dst, int64_t n, double value);
void cast(DType from, const void* src, DType to, void* dst, int64_t n);

// elementwise
void unary(UnaryOp op, DType t, const void* x, void* y, int64_t n, double p0, double p1);
void unary_backward(UnaryOp op, DType t, const void* x, const void* y, const void* gy, void* gx,
                    int64_t n, double p0, double p1);
void binary(BinaryOp op, DType t, const void* a, const void* b, void* out, const BroadcastDesc& d);
void where(DType cond_t, const void* cond, DType t, const void* a, const void* b, void* out,
           const BroadcastDesc& d);

// reduce
void reduce(ReduceOp op, DType t, const void* x, void* y, int64_t* arg, int64_t outer,
            int64_t inner, double correction);
void reduce_columns(ReduceOp op, DType t, const void* x, void* y, int64_t rows, int64_t cols);

// matmul
void gemm(DType t, bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
          double alpha, const void* A, int64_t stride_a, const void* B, int64_t stride_b,
          double beta, void* C, int64_t stride_c);

// index
void index_select(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                  int64_t n_src, int64_t n_idx, int64_t inner);
void index_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_idx,
               int64_t n_dst, int64_t inner);
void gather(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_src,
            int64_t n_idx, int64_t inner);
void scatter_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                 int64_t n_idx, int64_t n_dst, int64_t inner);

// conv
void conv2d(DType t, const void* x, const void* w, const void* bias, void* y, const ConvShape& g);
void conv2d_backward(DType t, const void* x, const void* w, const void* gy, void* gx, void* gw,
                     void* gb, const ConvShape& g);

// norm
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

// random
void fill_random(Distribution d, DType t, void* y, int64_t n, uint64_t seed, uint64_t stream,
                 double a, double b);

// special (special_merge, special_shift, special_topk)
void bipartite_match(DType t, const void* metric, int64_t batch, int64_t n, int64_t c, int64_t r,
                     bool protect_first, bool unm_by_position, int64_t* unm, int64_t* src,
                     int64_t* dst);
void token_merge(DType t, const void* x, const void* sizes, const int64_t* unm,
                 const int64_t* src, const int64_t* dst, void* y, void* new_sizes, int64_t batch,
                 int64_t n, int64_t r, int64_t c);
void token_merge_backward(DType t, const void* gy, const void* sizes, const void* new_sizes,
                          const int64_t* unm, const int64_t* src, const int64_t* dst, void* gx,
                          int64_t batch, int64_t n, int64_t r, int64_t c);
void channel_shift(DType t, const void* x, const int64_t* table, void* y, int64_t outer,
                   int64_t frames, int64_t rows, int64_t c, int64_t table_c, bool keep_first_row);
void channel_shift_backward(DType t, const void* gy, const int64_t* table, void* gx,
                            int64_t outer, int64_t frames, int64_t rows, int64_t c,
                            int64_t table_c, bool keep_first_row);
void topk(DType t, const void* x, void* values, int64_t* idx, int64_t rows, int64_t n, int64_t k,
          bool largest);

// The tables of the families with many entries (attention.*, special.*, optim.*).
AttentionKernels attention_kernels();
SpecialKernels special_kernels();
OptimKernels optim_kernels();
