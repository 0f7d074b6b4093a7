// The fused plan kernel: one launch per batch runs geometry + every op of PLAN_ABI.md.
//
// Threads: one thread per output pixel (sample, y, x), looping over channels.
// - Programs without JITTER: grid (ceil(H*W / 256), n), 256 threads; thread -> one pixel.
// - Programs with JITTER: contrast needs the mean gray of the whole image at that point of the
//   program, so one block of up to 512 threads owns one sample: for each JITTER op it runs
//   the program up to that op's contrast step over its pixels, sums gray in double, reduces
//   in the block, and only then writes the final pixels. Work is recomputed from the uint8
//   source for each pass (cheaper than holding an intermediate image anywhere).
// Samples beyond 65535 loop over gridDim.y.
#include "launch.h"

namespace blcuda {
namespace {

constexpr unsigned kFlatThreads = 256;
constexpr unsigned kSampleThreads = 512;

// Sum of x over the block (blockDim.x a multiple of 32), returned to every thread.
__device__ double blockSum(double x, double* scratch) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_down_sync(0xffffffffu, x, o);
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  __syncthreads();  // scratch may still be read from the previous call
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  if (warp == 0) {
    const unsigned warps = (blockDim.x + 31u) >> 5;
    x = lane < warps ? scratch[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) x += __shfl_down_sync(0xffffffffu, x, o);
    if (lane == 0) scratch[32] = x;
  }
  __syncthreads();
  return scratch[32];
}

__global__ void __launch_bounds__(kSampleThreads) planKernel(DevJob j) {
  __shared__ double scratch[33];
  __shared__ float means[kMaxOps];
  const int W = j.outW;
  const int HW = j.outH * j.outW;
  for (int s = blockIdx.y; s < j.n; s += gridDim.y) {
    // Contrast means (only launched with one block per sample when nJitter > 0).
    for (int r = 0; r < j.nJitter; ++r) {
      float mean = 0.0f;
      if (needsMean(j, s, r)) {  // uniform over the block: depends on s only
        double part = 0.0;
        for (int p = threadIdx.x; p < HW; p += blockDim.x)
          part += (double)grayBeforeContrast(j, s, p / W, p % W, means, r);
        const double total = blockSum(part, scratch);
        mean = (float)(total / (double)HW);
      }
      if (threadIdx.x == 0) means[r] = mean;
      __syncthreads();
    }
    const int stride = gridDim.x * blockDim.x;
    for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < HW; p += stride)
      writePixel(j, s, p / W, p % W, means);
    __syncthreads();  // means[] is rewritten for the next sample
  }
}

}  // namespace

LaunchShape planLaunchShape(const DevJob& j) {
  const unsigned hw = (unsigned)j.outH * (unsigned)j.outW;
  const unsigned gy = (unsigned)(j.n < 65535 ? j.n : 65535);
  if (j.nJitter > 0) {
    unsigned t = (hw + 31u) / 32u * 32u;
    if (t > kSampleThreads) t = kSampleThreads;
    return {1u, gy, t};
  }
  unsigned gx = (hw + kFlatThreads - 1) / kFlatThreads;
  if (gx > 0x7fffffffu) gx = 0x7fffffffu;
  return {gx, gy, kFlatThreads};
}

cudaError_t launchPlan(const DevJob& j, cudaStream_t stream) {
  if (j.n <= 0) return cudaSuccess;
  const LaunchShape sh = planLaunchShape(j);
  planKernel<<<dim3(sh.gridX, sh.gridY, 1), dim3(sh.block, 1, 1), 0, stream>>>(j);
  return cudaGetLastError();
}

}  // namespace blcuda
