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
  for (int k = 0; k < d.nOps; ++k) {
    d.program[k] = j.program[(size_t)k];
    d.opOffsets[k] = j.opOffsets[(size_t)k];
    if (d.program[k] == kJitter) d.jitterOps[d.nJitter++] = k;
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

void emulatePlan(const DevJob& j) {
  const int H = j.outH, W = j.outW;
  const double hw = (double)H * (double)W;
  float means[kMaxOps] = {};
  for (int s = 0; s < j.n; ++s) {
    for (int r = 0; r < j.nJitter; ++r) {
      float mean = 0.0f;
      if (needsMean(j, s, r)) {
        double sum = 0.0;
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x) sum += (double)grayBeforeContrast(j, s, y, x, means, r);
        mean = (float)(sum / hw);
      }
      means[r] = mean;
    }
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) writePixel(j, s, y, x, means);
  }
}

}  // namespace blcuda
