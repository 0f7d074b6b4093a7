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
// The limits on AUTOCONTRAST/EQUALIZE and SHARPNESS ops hold per stage (the ops before the warp
// and those after it run in separate launches): the shared check applies them so.
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

// A program with WARP or MIX ops (PLAN_ABI.md ops 12-15) is split into stages (splitStages)
// that each materialise their image, so it has no limit of its own on AUTOCONTRAST, EQUALIZE,
// SHARPNESS or JITTER ops: a stage ends wherever the next op would pass the per-stage limits.
const batchlab::Limits kCudaLongLimits = [] {
  batchlab::Limits l = kCudaLimits;
  l.maxOps = kMaxLongOps;
  l.maxWholeImageOps = 1 << 20;
  l.maxSharpnessOps = 1 << 20;
  l.reductionsAfterSharpness = true;
  return l;
}();

// Does the job's program (if it is an Int32Array) hold a WARP or MIX op?
bool hasStageOps(Napi::Object job) {
  const Napi::Value v = job.Get("program");
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) return false;
  const Napi::Int32Array a = v.As<Napi::Int32Array>();
  for (size_t k = 0; k < a.ElementLength(); ++k)
    if (a[k] >= kWarpOp && a[k] <= kMixEnd) return true;
  return false;
}

// One colour stage, ops [a, b) of a phase, from buffer src (-1: the phase's base) to dst.
Stage colourStage(const HostJob& hj, bool read, int a, int b, int src, int dst) {
  const DevJob& d = hj.dev;
  const batchlab::Job& j = hj.job;
  Stage st{};
  st.read = read ? 1 : 0;
  st.from = a;
  st.to = b;
  st.sharpOp = -1;
  st.kind = 0;
  st.src = src;
  st.dst = dst;
  for (int k = 0; k < a; ++k) {
    const int code = j.program[(size_t)k];
    st.wholeBase += code == kAutocontrast || code == kEqualize;
    st.jitterBase += code == kJitter;
    st.scanC |= code == kGray ? 1 : 0;
  }
  for (int k = a; k < b; ++k)
    if (j.program[(size_t)k] == kSharpness) st.sharpOp = k;
  // One block per sample when some sample needs a contrast mean or an AUTOCONTRAST/EQUALIZE
  // table of this stage.
  int r = st.jitterBase, w = st.wholeBase;
  for (int k = a; k < b; ++k) {
    const int code = j.program[(size_t)k];
    const bool isJit = code == kJitter, isWhole = code == kAutocontrast || code == kEqualize;
    if (!isJit && !isWhole) continue;
    for (size_t s = 0; s < (size_t)d.n && !st.reduce; ++s) {
      const float* p = hj.params + s * j.P + j.opOffsets[(size_t)k];
      if (isJit && r < d.nJitter && p[0] != 0.0f && !isNaN(p[4])) st.reduce = 1;
      if (isWhole && w < d.nWhole && p[0] != 0.0f) st.reduce = 1;
    }
    r += isJit;
    w += isWhole;
  }
  return st;
}

// The stages of one phase, ops [from, to) (see Stage in plan_kernel.h). Without WARP or MIX ops
// and within the limits this is one colour stage from the base image to the phase's output.
void splitPhase(HostJob& hj, bool read, int from, int to) {
  const batchlab::Job& j = hj.job;
  int cur = -1, start = from;
  int whole = 0, jit = 0;
  bool sharp = false;
  const auto other = [&cur] { return cur == kBufX0 ? kBufX1 : kBufX0; };
  const auto flush = [&](int a, int b, int dst) {
    hj.stages.push_back(colourStage(hj, read, a, b, cur, dst));
    cur = dst;
    whole = jit = 0;
    sharp = false;
  };
  for (int k = from; k < to; ++k) {
    const int code = j.program[(size_t)k];
    if (code >= kWarpOp && code <= kMixEnd) {
      if (cur < 0 || k > start) flush(start, k, other());  // the image the op reads, materialised
      Stage st = colourStage(hj, read, k, k + 1, cur, -1);
      st.kind = code;
      st.sharpOp = -1;
      st.reduce = 0;
      st.dst = code == kWarpOp ? other() : code == kMixEnd ? kBufA : kBufO;
      hj.stages.push_back(st);
      cur = st.dst;
      start = k + 1;
      continue;
    }
    const bool isWhole = code == kAutocontrast || code == kEqualize;
    if ((sharp && (code == kJitter || isWhole || code == kSharpness)) || (isWhole && whole == kMaxWhole) || (code == kJitter && jit == kMaxStageJitter)) {
      flush(start, k, other());
      start = k;
    }
    whole += isWhole;
    jit += code == kJitter;
    sharp |= code == kSharpness;
  }
  flush(start, to, -1);
}

HostJob parseJob(Napi::Env env, Napi::Object job) {
  HostJob hj;
  batchlab::Lengths len;
  batchlab::JobInputs inputs;
  // The one reader and check of both addons (native/job_read.h): same fields, same errors.
  try {
    batchlab::readJob(env, job, hasStageOps(job) ? kCudaLongLimits : kCudaLimits, false, hj.job, len, inputs, [](napi_value) {});
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
  d.warpOps = j.warp != kWarpNone ? j.warpOps : 0;
  d.sharpOp = -1;
  d.readSharpOp = -1;
  // The program's tables travel in the arena (the `program` section): codes, offsets, the
  // program index of each JITTER op, of each AUTOCONTRAST/EQUALIZE op.
  hj.prog.assign(4 * (size_t)d.nOps, 0);
  int32_t* codes = hj.prog.data();
  int32_t* offsets = codes + d.nOps;
  int32_t* jitterOps = offsets + d.nOps;
  int32_t* wholeOps = jitterOps + d.nOps;
  for (int k = 0; k < d.nOps; ++k) {
    codes[k] = j.program[(size_t)k];
    offsets[k] = j.opOffsets[(size_t)k];
    if (codes[k] == kJitter) jitterOps[d.nJitter++] = k;
    if (codes[k] == kAutocontrast || codes[k] == kEqualize) wholeOps[d.nWhole++] = k;
    if (codes[k] == kSharpness) (k < d.warpOps ? d.readSharpOp : d.sharpOp) = k;
  }
  d.program = codes;  // host pointers until bindJob points them into the arena
  d.opOffsets = offsets;
  d.jitterOps = jitterOps;
  d.wholeOps = wholeOps;
  hj.params = j.params;
  hj.paramCount = len.params;
  d.P = (int)j.P;
  const size_t P = j.P;

  // Reductions (one block per sample) only when some sample's contrast actually needs a mean;
  // otherwise JITTER runs pixel-parallel like every other op (means[] is then never read).
  bool anyMean = false;
  for (size_t s = 0; s < n && !anyMean; ++s) {
    for (int r = 0; r < d.nJitter && !anyMean; ++r) {
      const float* p = hj.params + s * P + offsets[jitterOps[r]];
      anyMean = p[0] != 0.0f && !isNaN(p[4]);
    }
  }
  if (!anyMean) d.nJitter = 0;
  // AUTOCONTRAST and EQUALIZE tables likewise only when some sample enables one of them.
  bool anyWhole = false;
  for (size_t s = 0; s < n && !anyWhole; ++s)
    for (int w = 0; w < d.nWhole && !anyWhole; ++w) anyWhole = hj.params[s * P + offsets[wholeOps[w]]] != 0.0f;
  if (!anyWhole) d.nWhole = 0;
  // Which stage needs reductions (one block per sample): a mean some sample needs, or an
  // AUTOCONTRAST/EQUALIZE op some sample enables, among the stage's ops.
  for (size_t s = 0; s < n; ++s) {
    for (int r = 0; r < d.nJitter; ++r) {
      const float* p = hj.params + s * P + offsets[jitterOps[r]];
      if (p[0] != 0.0f && !isNaN(p[4])) (d.jitterOps[r] < d.warpOps ? d.readReduce : d.mainReduce) = 1;
    }
    for (int w = 0; w < d.nWhole; ++w)
      if (hj.params[s * P + offsets[wholeOps[w]]] != 0.0f) (wholeOps[w] < d.warpOps ? d.readReduce : d.mainReduce) = 1;
  }
  // With ops before the warp: each sample's read image is materialised (readH*readW*inC floats).
  if (d.warpOps > 0) {
    hj.readAt.resize(n);
    for (size_t s = 0; s < n; ++s) {
      const long long hw = (long long)j.readH((int32_t)s) * (long long)j.readW((int32_t)s);
      if (hw > d.readMaxHW) d.readMaxHW = hw;
      hj.readAt[s] = (int64_t)hj.readFloats;
      hj.readFloats += (size_t)hw * (size_t)d.inC;
    }
  }

  const size_t hw = (size_t)d.outH * (size_t)d.outW;
  hj.outElements = n * (size_t)d.outC * hw;

  // The stages: the read phase's (ops before the warp), then the main phase's.
  if (d.warpOps > 0) splitPhase(hj, true, 0, d.warpOps);
  const size_t readStages = hj.stages.size();
  splitPhase(hj, false, d.warpOps, d.nOps);
  hj.multiStage = readStages > 1 || hj.stages.size() - readStages > 1;
  bool readBufs = false, mainBufs = false;
  for (const Stage& st : hj.stages)
    if (st.src >= 0 || st.dst >= 0) (st.read ? readBufs : mainBufs) = true;
  if (readBufs) {
    hj.readBufAt.resize(n);
    long long at = 0;
    for (size_t s = 0; s < n; ++s) {
      hj.readBufAt[s] = at;
      at += (long long)j.readH((int32_t)s) * (long long)j.readW((int32_t)s) * kMaxChannels;
    }
    d.readBufFloats = at;
  }
  if (mainBufs) d.mainBufFloats = (long long)(n * hw * kMaxChannels);
  hj.bufFloats = (size_t)kBufs * (size_t)(d.readBufFloats + d.mainBufFloats);

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
  hj.offReadAt = section(8 * hj.readAt.size());
  hj.offProgram = section(4 * hj.prog.size());
  hj.offReadBufAt = section(8 * hj.readBufAt.size());
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
  if (!hj.readAt.empty()) std::memcpy(arena + hj.offReadAt, hj.readAt.data(), 8 * hj.readAt.size());
  if (!hj.prog.empty()) std::memcpy(arena + hj.offProgram, hj.prog.data(), 4 * hj.prog.size());
  if (!hj.readBufAt.empty()) std::memcpy(arena + hj.offReadBufAt, hj.readBufAt.data(), 8 * hj.readBufAt.size());
}

size_t readImageOffset(const HostJob& hj, size_t pixelBytes) { return alignUp(hj.metaBytes + pixelBytes); }

size_t stageBufOffset(const HostJob& hj, size_t pixelBytes) { return alignUp(readImageOffset(hj, pixelBytes) + 4 * hj.readFloats); }

size_t arenaBytes(const HostJob& hj, size_t pixelBytes) {
  if (hj.bufFloats > 0) return stageBufOffset(hj, pixelBytes) + 4 * hj.bufFloats;
  return hj.readFloats > 0 ? readImageOffset(hj, pixelBytes) + 4 * hj.readFloats : hj.metaBytes + pixelBytes;
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

DevJob bindJob(const HostJob& hj, uint8_t* arena, float* out, float* readImg, float* bufs) {
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
  d.readAt = reinterpret_cast<const int64_t*>(arena + hj.offReadAt);
  d.readImg = readImg;
  const int32_t* prog = reinterpret_cast<const int32_t*>(arena + hj.offProgram);
  d.program = prog;
  d.opOffsets = prog + d.nOps;
  d.jitterOps = prog + 2 * (size_t)d.nOps;
  d.wholeOps = prog + 3 * (size_t)d.nOps;
  d.readBufAt = reinterpret_cast<const int64_t*>(arena + hj.offReadBufAt);
  d.bufs = bufs;
  d.out = out;
  return d;
}

// The w-th whole-image op's tables for sample s, from every pixel of the stage's image in
// row-major order.
void wholeStats(const DevJob& j, const Stage& st, int s, int w, Reductions* red) {
  const int H = stageH(j, st, s), W = stageW(j, st, s);
  const int slot = w - st.wholeBase;
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
      C = valuesBeforeWhole(j, st, s, y, x, red, w, v);
      for (int c = 0; c < C; ++c) {
        minMaxInto(v[c], &lo[c], &hi[c]);
        ++hist[c][blpixel::level1(v[c], bound)];
      }
    }
  }
  for (int c = 0; c < C; ++c) {
    blpixel::autocontrastScale(lo[c], hi[c], bound, &red->min[slot][c], &red->scale[slot][c]);
    int lut[256];
    blpixel::equalizeTable(hist[c], lut);
    for (int q = 0; q < 256; ++q) red->lut[slot][c][q] = (short)lut[q];
  }
}

// One stage of sample s, as one block of the kernel runs it: its reductions in program order
// (each sees the image as the steps before it left it), then its pixels.
void emulateStage(const DevJob& j, const Stage& st, int s, Reductions* red) {
  const int H = stageH(j, st, s), W = stageW(j, st, s);
  const double hw = (double)H * (double)W;
  int r = st.jitterBase, w = st.wholeBase;
  for (int k = st.from; k < st.to; ++k) {
    if (j.program[k] == kJitter && r < j.nJitter && j.jitterOps[r] == k) {
      float mean = 0.0f;
      if (needsMean(j, s, r)) {
        double sum = 0.0;
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x) sum += (double)grayBeforeContrast(j, st, s, y, x, red, r);
        mean = (float)(sum / hw);
      }
      red->means[r - st.jitterBase] = mean;
      ++r;
    } else if (w < j.nWhole && j.wholeOps[w] == k) {
      if (wholeEnabled(j, s, w)) wholeStats(j, st, s, w, red);
      ++w;
    }
  }
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) writePixel(j, st, s, y, x, red);
}

void emulatePlan(const DevJob& j, const std::vector<Stage>& stages) {
  static thread_local Reductions red;
  // As the kernel: one launch per stage, in order (with ops before the warp, the read phase's
  // stages write every sample's read image first).
  for (const Stage& st : stages) {
    for (int s = 0; s < j.n; ++s) {
      const int H = stageH(j, st, s), W = stageW(j, st, s);
      if (st.kind == 0) {
        emulateStage(j, st, s, &red);
      } else if (st.kind == kWarpOp) {
        for (int y = 0; y < H; ++y)
          for (int x = 0; x < W; ++x) warpOpPixel(j, st, s, y, x);
      } else {
        const size_t values = (size_t)H * (size_t)W * (size_t)kMaxChannels;
        for (size_t i = 0; i < values; ++i) mixValue(j, st, s, i);
      }
    }
  }
}


}  // namespace blcuda
