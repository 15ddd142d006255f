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

#include "engine/backend/kernel_declarations.h"  // NOLINT(build/include): inside the namespace

// memory.cu: transfers
void to_host(void* host_dst, const void* src, size_t bytes);
void from_host(void* dst, const void* host_src, size_t bytes);

}  // namespace vc::cuda_kernels
