// Reading, checking and packing a plan job; the CPU emulation of the CUDA kernel.
#include "job.h"

#include "../job_read.h"

#include <cmath>
#include <cstring>
#include <string>

namespace blcuda {
namespace {

size_t alignUp(size_t x) { return (x + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }

}  // namespace

// What the kernel can run: channels and ops live in fixed arrays of the kernel's registers.
const batchlab::Limits kCudaLimits = [] {
  batchlab::Limits l;
  l.maxChannels = kMaxChannels;
  l.maxSide = 1 << 15;
  l.maxOps = kMaxOps;
  l.maxWholeImageOps = kMaxWhole;
  l.maxSharpnessOps = 1;
  l.reductionsAfterSharpness = false;
  return l;
}();

HostJob parseJob(Napi::Env env, Napi::Object job) {
  HostJob hj;
  batchlab::Lengths len;
  batchlab::JobInputs inputs;
  // The one reader and check of both addons (native/job_read.h): same fields, same errors.
  try {
    batchlab::readJob(env, job, kCudaLimits, false, hj.job, len, inputs, [](napi_value) {});
  } catch (const batchlab::PlanFailure& f) {
    throw batchlab::planError(env, f);
  }
  const batchlab::Job& j = hj.job;
  DevJob& d = hj.dev;
  d.n = j.n;
  d.inC = j.inC;
  d.outC = j.outC;
  d.outH = j.outH;
  d.outW = j.outW;
  d.K = j.K;
  d.warp = j.warp;
  d.warpOffset = (int)j.warpOffset;
  hj.warpDims = j.warp != kWarpNone ? j.warpDims.data() : nullptr;
  d.preK = j.warp != kWarpNone ? j.preK : 0;
  if (d.preK) {
    hj.preDims = j.preDims.data();
    hj.preTapIndex = j.preTapIndex;
    hj.preTapWeight = j.preTapWeight;
    hj.preTaps = j.preTapAt.back();
    hj.preTapAt.assign(j.preTapAt.begin(), j.preTapAt.end() - 1);
  }
  const size_t n = (size_t)d.n;
  hj.srcDims = j.dims.data();
  hj.srcData.resize(n);
  hj.srcBytes.resize(n);
  for (size_t s = 0; s < n; ++s) {
    hj.srcData[s] = j.src[s];
    hj.srcBytes[s] = (size_t)j.dims[2 * s] * (size_t)j.dims[2 * s + 1] * (size_t)d.inC;  // what the sample uses
    hj.pixelBytes += hj.srcBytes[s];
  }
  hj.taps = len.tapIndex;
  hj.tapIndex = j.tapIndex;
  hj.tapWeight = j.tapWeight;
  for (int c = 0; c < d.inC; ++c) d.fill[c] = j.fill[(size_t)c];
  d.nOps = (int)j.program.size();
  d.sharpOp = -1;
  for (int k = 0; k < d.nOps; ++k) {
    d.program[k] = j.program[(size_t)k];
    d.opOffsets[k] = j.opOffsets[(size_t)k];
    if (d.program[k] == kJitter) d.jitterOps[d.nJitter++] = k;
    if (d.program[k] == kAutocontrast || d.program[k] == kEqualize) d.wholeOps[d.nWhole++] = k;
    if (d.program[k] == kSharpness) d.sharpOp = k;
  }
  hj.params = j.params;
  hj.paramCount = len.params;
  d.P = (int)j.P;
  const size_t P = j.P;

  // Reductions (one block per sample) only when some sample's contrast actually needs a mean;
  // otherwise JITTER runs pixel-parallel like every other op (means[] is then never read).
  bool anyMean = false;
  for (size_t s = 0; s < n && !anyMean; ++s) {
    for (int r = 0; r < d.nJitter && !anyMean; ++r) {
      const float* p = hj.params + s * P + d.opOffsets[d.jitterOps[r]];
      anyMean = p[0] != 0.0f && !isNaN(p[4]);
    }
  }
  if (!anyMean) d.nJitter = 0;
  // AUTOCONTRAST and EQUALIZE tables likewise only when some sample enables one of them.
  bool anyWhole = false;
  for (size_t s = 0; s < n && !anyWhole; ++s)
    for (int w = 0; w < d.nWhole && !anyWhole; ++w) anyWhole = hj.params[s * P + d.opOffsets[d.wholeOps[w]]] != 0.0f;
  if (!anyWhole) d.nWhole = 0;

  const size_t hw = (size_t)d.outH * (size_t)d.outW;
  hj.outElements = n * (size_t)d.outC * hw;

  size_t off = 0;
  auto section = [&off](size_t bytes) {
    const size_t at = off;
    off = alignUp(off + bytes);
    return at;
  };
  hj.offSrcOffsets = section(8 * n);
  hj.offSrcDims = section(8 * n);
  hj.offTapIndex = section(4 * hj.taps);
  hj.offTapWeight = section(4 * hj.taps);
  hj.offParams = section(4 * hj.paramCount);
  hj.offWarpDims = section(hj.warpDims ? 8 * n : 0);
  hj.offPreDims = section(hj.preDims ? 8 * n : 0);
  hj.offPreTapAt = section(hj.preDims ? 8 * n : 0);
  hj.offPreTapIndex = section(4 * hj.preTaps);
  hj.offPreTapWeight = section(4 * hj.preTaps);
  hj.metaBytes = off;
  return hj;
}

void packMeta(const HostJob& hj, uint8_t* arena, const std::vector<int64_t>& pixelOffsets) {
  const size_t n = (size_t)hj.dev.n;
  if (n > 0) std::memcpy(arena + hj.offSrcOffsets, pixelOffsets.data(), 8 * n);
  if (n > 0) std::memcpy(arena + hj.offSrcDims, hj.srcDims, 8 * n);
  if (hj.taps > 0) std::memcpy(arena + hj.offTapIndex, hj.tapIndex, 4 * hj.taps);
  if (hj.taps > 0) std::memcpy(arena + hj.offTapWeight, hj.tapWeight, 4 * hj.taps);
  if (hj.paramCount > 0) std::memcpy(arena + hj.offParams, hj.params, 4 * hj.paramCount);
  if (hj.warpDims && n > 0) std::memcpy(arena + hj.offWarpDims, hj.warpDims, 8 * n);
  if (hj.preDims && n > 0) {
    std::memcpy(arena + hj.offPreDims, hj.preDims, 8 * n);
    std::memcpy(arena + hj.offPreTapAt, hj.preTapAt.data(), 8 * n);
  }
  if (hj.preTaps > 0) {
    std::memcpy(arena + hj.offPreTapIndex, hj.preTapIndex, 4 * hj.preTaps);
    std::memcpy(arena + hj.offPreTapWeight, hj.preTapWeight, 4 * hj.preTaps);
  }
}

std::vector<int64_t> packedOffsets(const HostJob& hj) {
  std::vector<int64_t> offsets(hj.srcBytes.size());
  int64_t at = 0;
  for (size_t s = 0; s < offsets.size(); ++s) {
    offsets[s] = at;
    at += (int64_t)hj.srcBytes[s];
  }
  return offsets;
}

std::vector<int64_t> packPixels(const HostJob& hj, uint8_t* dst) {
  std::vector<int64_t> offsets = packedOffsets(hj);
  for (size_t s = 0; s < offsets.size(); ++s) std::memcpy(dst + offsets[s], hj.srcData[s], hj.srcBytes[s]);
  return offsets;
}

DevJob bindJob(const HostJob& hj, uint8_t* arena, float* out) {
  DevJob d = hj.dev;
  d.srcOffsets = reinterpret_cast<const int64_t*>(arena + hj.offSrcOffsets);
  d.srcDims = reinterpret_cast<const int32_t*>(arena + hj.offSrcDims);
  d.tapIndex = reinterpret_cast<const int32_t*>(arena + hj.offTapIndex);
  d.tapWeight = reinterpret_cast<const float*>(arena + hj.offTapWeight);
  d.params = reinterpret_cast<const float*>(arena + hj.offParams);
  d.warpDims = reinterpret_cast<const int32_t*>(arena + hj.offWarpDims);
  d.preDims = reinterpret_cast<const int32_t*>(arena + hj.offPreDims);
  d.preTapAt = reinterpret_cast<const int64_t*>(arena + hj.offPreTapAt);
  d.preTapIndex = reinterpret_cast<const int32_t*>(arena + hj.offPreTapIndex);
  d.preTapWeight = reinterpret_cast<const float*>(arena + hj.offPreTapWeight);
  d.pixels = arena + hj.metaBytes;
  d.out = out;
  return d;
}

// The w-th whole-image op's tables for sample s, from every pixel in row-major order.
void wholeStats(const DevJob& j, int s, int w, Reductions* red) {
  const int H = j.outH, W = j.outW;
  const float bound = j.params[(size_t)s * (size_t)j.P + j.opOffsets[j.wholeOps[w]] + 1];
  float v[kMaxChannels];
  float lo[kMaxChannels], hi[kMaxChannels];
  static thread_local uint32_t hist[kMaxChannels][256];
  for (int c = 0; c < kMaxChannels; ++c) {
    lo[c] = INFINITY;
    hi[c] = -INFINITY;
    for (int q = 0; q < 256; ++q) hist[c][q] = 0;
  }
  int C = j.inC;
  for (int y = 0; y < H; ++y) {
    for (int x = 0; x < W; ++x) {
      C = valuesBeforeWhole(j, s, y, x, red, w, v);
      for (int c = 0; c < C; ++c) {
        minMaxInto(v[c], &lo[c], &hi[c]);
        ++hist[c][blpixel::level1(v[c], bound)];
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    blpixel::autocontrastScale(lo[c], hi[c], bound, &red->min[w][c], &red->scale[w][c]);
    int lut[256];
    blpixel::equalizeTable(hist[c], lut);
    for (int q = 0; q < 256; ++q) red->lut[w][c][q] = (short)lut[q];
  }
}

void emulatePlan(const DevJob& j) {
  const int H = j.outH, W = j.outW;
  const double hw = (double)H * (double)W;
  static thread_local Reductions red;
  for (int s = 0; s < j.n; ++s) {
    // The reductions in program order: each sees the image as the steps before it left it.
    int r = 0, w = 0;
    for (int k = 0; k < j.nOps; ++k) {
      if (j.program[k] == kJitter && r < j.nJitter && j.jitterOps[r] == k) {
        float mean = 0.0f;
        if (needsMean(j, s, r)) {
          double sum = 0.0;
          for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) sum += (double)grayBeforeContrast(j, s, y, x, &red, r);
          mean = (float)(sum / hw);
        }
        red.means[r++] = mean;
      } else if (w < j.nWhole && j.wholeOps[w] == k) {
        if (wholeEnabled(j, s, w)) wholeStats(j, s, w, &red);
        ++w;
      }
    }
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) writePixel(j, s, y, x, &red);
  }
}


}  // namespace blcuda
