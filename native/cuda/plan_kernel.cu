// The fused plan kernel: one launch per batch runs geometry + every op of PLAN_ABI.md.
//
// Threads: one thread per output pixel (sample, y, x), looping over channels.
// - Programs without JITTER: grid (ceil(H*W / 256), n), 256 threads; thread -> one pixel.
// - Programs with JITTER: contrast needs the mean gray of the whole image at that point of the
//   program, so one block of up to 512 threads owns one sample: for each JITTER op it runs
//   the program up to that op's contrast step over its pixels, sums gray in double, reduces
//   in the block, and only then writes the final pixels. Work is recomputed from the uint8
//   source for each pass (cheaper than holding an intermediate image anywhere).
// - AUTOCONTRAST and EQUALIZE ops are reductions too, in the same one-block-per-sample form:
//   per-channel min and max (integer atomics on order-preserving bits, so the result does not
//   depend on the order of the threads) and per-channel histograms of levels (atomicAdd), then
//   one thread turns them into the op's tables, in shared memory.
// - Ops before the warp (warpOps > 0): a first launch runs the same kernel on the stage of ops
//   0 .. warpOps-1 over each sample's read image (the pre-pass image or the source, computed
//   per pixel as before) and writes the result to the readImg section of the arena (HWC
//   floats); the second launch, on the same stream, runs the warp (warpSource reads readImg),
//   the taps and the remaining ops. Each launch is pixel-parallel or one block per sample by
//   whether its own stage has reductions.
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

// A float's bits as an int that orders as the floats do, with -0 below 0 (NaN is never stored).
__device__ int orderedBits(float x) {
  const int i = __float_as_int(x);
  return i >= 0 ? i : i ^ 0x7fffffff;
}
__device__ float fromOrderedBits(int i) { return __int_as_float(i >= 0 ? i : i ^ 0x7fffffff); }

// The w-th whole-image op's tables for sample s, over the stage's image (every thread of the
// block calls this).
__device__ void wholeStats(const DevJob& j, const Stage& st, int s, int w, Reductions* red, int* lo, int* hi, uint32_t* hist) {
  const int W = stageW(j, st, s);
  const long long HW = (long long)stageH(j, st, s) * (long long)W;
  const int slot = w - st.wholeBase;
  const float bound = j.params[(size_t)s * (size_t)j.P + j.opOffsets[j.wholeOps[w]] + 1];
  for (int i = threadIdx.x; i < kMaxChannels * 256; i += blockDim.x) hist[i] = 0;
  if (threadIdx.x < kMaxChannels) {
    lo[threadIdx.x] = orderedBits(INFINITY);
    hi[threadIdx.x] = orderedBits(-INFINITY);
  }
  __syncthreads();
  int C = j.inC;
  for (long long p = threadIdx.x; p < HW; p += blockDim.x) {
    float v[kMaxChannels];
    C = valuesBeforeWhole(j, st, s, (int)(p / W), (int)(p % W), red, w, v);
    for (int c = 0; c < C; ++c) {
      if (v[c] == v[c]) {
        atomicMin(&lo[c], orderedBits(v[c]));
        atomicMax(&hi[c], orderedBits(v[c]));
      }
      atomicAdd(&hist[c * 256 + blpixel::level1(v[c], bound)], 1u);
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int c = 0; c < kMaxChannels; ++c) {
      blpixel::autocontrastScale(fromOrderedBits(lo[c]), fromOrderedBits(hi[c]), bound, &red->min[slot][c], &red->scale[slot][c]);
      int lut[256];
      blpixel::equalizeTable(hist + c * 256, lut);
      for (int q = 0; q < 256; ++q) red->lut[slot][c][q] = (short)lut[q];
    }
  }
  __syncthreads();
}

// One stage of the program over every sample (the read stage writes readImg, the main stage
// j.out). `reduce`: launched with one block per sample, the stage's reductions are computed
// first.
__global__ void __launch_bounds__(kSampleThreads) planKernel(DevJob j, Stage st, int reduce) {
  __shared__ double scratch[33];
  __shared__ Reductions red;
  __shared__ int lo[kMaxChannels], hi[kMaxChannels];
  __shared__ uint32_t hist[kMaxChannels * 256];
  for (int s = blockIdx.y; s < j.n; s += gridDim.y) {
    const int W = stageW(j, st, s);
    const long long HW = (long long)stageH(j, st, s) * (long long)W;
    // The stage's reductions in program order: contrast means, AUTOCONTRAST and EQUALIZE tables.
    if (reduce) {
      int r = st.jitterBase, w = st.wholeBase;
      for (int k = st.from; k < st.to; ++k) {
        if (j.program[k] == kJitter && r < j.nJitter && j.jitterOps[r] == k) {
          float mean = 0.0f;
          if (needsMean(j, s, r)) {  // uniform over the block: depends on s only
            double part = 0.0;
            for (long long p = threadIdx.x; p < HW; p += blockDim.x)
              part += (double)grayBeforeContrast(j, st, s, (int)(p / W), (int)(p % W), &red, r);
            const double total = blockSum(part, scratch);
            mean = (float)(total / (double)HW);
          }
          if (threadIdx.x == 0) red.means[r - st.jitterBase] = mean;
          __syncthreads();
          ++r;
        } else if (w < j.nWhole && j.wholeOps[w] == k) {
          if (wholeEnabled(j, s, w)) wholeStats(j, st, s, w, &red, lo, hi, hist);
          ++w;
        }
      }
    }
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < HW; p += stride)
      writePixel(j, st, s, (int)(p / W), (int)(p % W), &red);
    __syncthreads();  // red is rewritten for the next sample
  }
}

// A WARP stage: one thread per pixel of the phase's image, samples over gridDim.y.
__global__ void __launch_bounds__(kFlatThreads) warpOpKernel(DevJob j, Stage st) {
  for (int s = blockIdx.y; s < j.n; s += gridDim.y) {
    const int W = stageW(j, st, s);
    const long long HW = (long long)stageH(j, st, s) * (long long)W;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < HW; p += stride) warpOpPixel(j, st, s, (int)(p / W), (int)(p % W));
  }
}

// A MIX stage: one thread per value (H*W*kMaxChannels per sample).
__global__ void __launch_bounds__(kFlatThreads) mixKernel(DevJob j, Stage st) {
  for (int s = blockIdx.y; s < j.n; s += gridDim.y) {
    const long long values = (long long)stageH(j, st, s) * (long long)stageW(j, st, s) * kMaxChannels;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < values; i += stride) mixValue(j, st, s, (size_t)i);
  }
}

LaunchShape shapeFor(unsigned long long hw, int n, bool reduce) {
  const unsigned gy = (unsigned)(n < 65535 ? n : 65535);
  if (reduce) {
    unsigned long long t = (hw + 31u) / 32u * 32u;
    if (t > kSampleThreads) t = kSampleThreads;
    if (t < 32u) t = 32u;
    return {1u, gy, (unsigned)t};
  }
  unsigned long long gx = (hw + kFlatThreads - 1) / kFlatThreads;
  if (gx > 0x7fffffffu) gx = 0x7fffffffu;
  if (gx < 1u) gx = 1u;
  return {(unsigned)gx, gy, kFlatThreads};
}

}  // namespace

LaunchShape planLaunchShape(const DevJob& j) {
  return shapeFor((unsigned long long)j.outH * (unsigned long long)j.outW, j.n, j.mainReduce != 0);
}

LaunchShape readLaunchShape(const DevJob& j) { return shapeFor((unsigned long long)j.readMaxHW, j.n, j.readReduce != 0); }

cudaError_t launchPlan(const DevJob& j, const std::vector<Stage>& stages, cudaStream_t stream) {
  if (j.n <= 0) return cudaSuccess;
  if (stages.size() != (j.warpOps > 0 ? 2u : 1u) || stages.back().kind != 0 || stages.front().kind != 0) {
    // Several stages per phase (WARP/MIX ops, or a program split at the per-stage limits): one
    // launch per stage, in order, on the same stream; each reads what the one before wrote.
    for (const Stage& st : stages) {
      const unsigned long long hw = st.read ? (unsigned long long)j.readMaxHW : (unsigned long long)j.outH * (unsigned long long)j.outW;
      if (st.kind == 0) {
        const LaunchShape sh = shapeFor(hw, j.n, st.reduce != 0);
        planKernel<<<dim3(sh.gridX, sh.gridY, 1), dim3(sh.block, 1, 1), 0, stream>>>(j, st, st.reduce);
      } else {
        const LaunchShape sh = shapeFor(st.kind == kWarpOp ? hw : hw * kMaxChannels, j.n, false);
        if (st.kind == kWarpOp) {
          warpOpKernel<<<dim3(sh.gridX, sh.gridY, 1), dim3(sh.block, 1, 1), 0, stream>>>(j, st);
        } else {
          mixKernel<<<dim3(sh.gridX, sh.gridY, 1), dim3(sh.block, 1, 1), 0, stream>>>(j, st);
        }
      }
      const cudaError_t e = cudaGetLastError();
      if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
  }
  if (j.warpOps > 0) {  // ops before the warp: materialise each sample's read image first
    const LaunchShape rs = readLaunchShape(j);
    planKernel<<<dim3(rs.gridX, rs.gridY, 1), dim3(rs.block, 1, 1), 0, stream>>>(j, stageOf(j, true), j.readReduce);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  const LaunchShape sh = planLaunchShape(j);
  planKernel<<<dim3(sh.gridX, sh.gridY, 1), dim3(sh.block, 1, 1), 0, stream>>>(j, stageOf(j, false), j.mainReduce);
  return cudaGetLastError();
}

}  // namespace blcuda
