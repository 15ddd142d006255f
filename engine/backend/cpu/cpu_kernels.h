// Declarations of the CPU reference kernels (engine/backend/kernel_declarations.h), one
// family per file in this folder. cpu_backend.cpp puts them into the Backend table.
#pragma once
#include "engine/backend/backend.h"

namespace vc::cpu_kernels {

#include "engine/backend/kernel_declarations.h"  // NOLINT(build/include): inside the namespace

// The target's widest vector in bytes. Register blocks are sized by it (no sum depends on a
// block's width): blocks sized for AVX-512's 32 registers spilled on AVX2's 16, 3-10x slower.
#ifdef __AVX512F__
constexpr int kVectorBytes = 64;
#else
constexpr int kVectorBytes = 32;
#endif

// memory.cpp: host <-> "device" transfers are memcpy
void host_copy(void* dst, const void* src, size_t bytes);

}  // namespace vc::cpu_kernels
