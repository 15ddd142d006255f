// Eigen, for the few engine files that use it. GCC 12's own AVX-512 intrinsics header
// (avx512fintrin.h, a system header) reports `__Y` "may be used uninitialized" from
// _mm512_undefined_* once Eigen's GEMM kernels are inlined into our functions (GCC bug 105593,
// fixed in GCC 13): some 560 false positives per build that bury our own warnings. The header
// is included once here with that one warning off; everything after it keeps -Wall -Wextra.
#pragma once
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"  // the same at -O1 (sanitizer builds)
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif
#include <Eigen/Core>
