// Declarations of the CPU reference kernels (engine/backend/kernel_declarations.h), one
// family per file in this folder. cpu_backend.cpp puts them into the Backend table.
#pragma once
#include "engine/backend/backend.h"

namespace vc::cpu_kernels {

#include "engine/backend/kernel_declarations.h"  // NOLINT(build/include): inside the namespace

// memory.cpp: host <-> "device" transfers are memcpy
void host_copy(void* dst, const void* src, size_t bytes);

}  // namespace vc::cpu_kernels
