// Host-side entry points of plan_kernel.cu (compiled by nvcc), called from addon.cc (g++).
#pragma once

#include <cuda_runtime_api.h>

#include <vector>

#include "plan_kernel.h"

namespace blcuda {

// Launch configuration chosen for a job (also reported to JS for the benchmark).
struct LaunchShape {
  unsigned gridX, gridY, block;
};

// The launch of the stage after the geometry pass (the whole program when warpOps is 0).
LaunchShape planLaunchShape(const DevJob& j);
// With warpOps > 0, the first launch: ops 0 .. warpOps-1 on each sample's read image.
LaunchShape readLaunchShape(const DevJob& j);

// Enqueues the fused plan kernel for the whole batch on `stream` (two launches with warpOps > 0:
// the read stage writes j.readImg, then the main stage reads it; one launch per stage when a
// phase has several: WARP/MIX ops, see Stage in plan_kernel.h). Returns the launch error
// (cudaSuccess when the launch was accepted); never throws, never aborts.
cudaError_t launchPlan(const DevJob& j, const std::vector<Stage>& stages, cudaStream_t stream);

}  // namespace blcuda
