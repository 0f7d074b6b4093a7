// Host-side entry points of plan_kernel.cu (compiled by nvcc), called from addon.cc (g++).
#pragma once

#include <cuda_runtime_api.h>

#include "plan_kernel.h"

namespace blcuda {

// Launch configuration chosen for a job (also reported to JS for the benchmark).
struct LaunchShape {
  unsigned gridX, gridY, block;
};

LaunchShape planLaunchShape(const DevJob& j);

// Enqueues the fused plan kernel for the whole batch on `stream`. Returns the launch error
// (cudaSuccess when the launch was accepted); never throws, never aborts.
cudaError_t launchPlan(const DevJob& j, cudaStream_t stream);

}  // namespace blcuda
