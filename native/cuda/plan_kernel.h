// The per-pixel arithmetic of the plan (native/PLAN_ABI.md), written once for both the CUDA
// kernel (plan_kernel.cu, compiled by nvcc with -fmad=false) and the CPU emulation of that
// kernel (job.cc, compiled by g++ with -ffp-contract=off). Every float operation below is one
// IEEE float32 operation in the order the ABI writes it; nothing here may be "simplified".
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../pixel_math.h"

#if defined(__CUDACC__)
#define BL_HD __host__ __device__ __forceinline__
#define BL_UNROLL _Pragma("unroll")
#else
#define BL_HD inline
#define BL_UNROLL
#endif

namespace blcuda {

// Channel count at any point of a program (inC, outC, and C after GRAY). Pixels live in
// registers as float[kMaxChannels].
constexpr int kMaxChannels = 4;
// Ops in one program without WARP/MIX ops (the shared check's limit for such jobs; the program
// and its tables live in the arena). A program with WARP or MIX ops may be longer: kMaxLongOps.
constexpr int kMaxOps = 32;
constexpr int kMaxLongOps = 1 << 16;
// JITTER ops one colour stage may hold (their contrast means live in shared memory).
constexpr int kMaxStageJitter = 32;

enum OpCode : int { kAffine = 0, kGray = 1, kJitter = 2, kErase = 3, kInvert = 4, kSolarize = 5, kPosterize = 6, kAutocontrast = 7, kEqualize = 8, kSharpness = 9, kPermute = 10, kNoise = 11,
                    kWarpOp = 12, kMixBegin = 13, kMixNext = 14, kMixEnd = 15 };
// Per-sample images of a phase (see Stage): two for the current image (ping-pong), the mix
// group's O and its sum A. Each holds H*W*kMaxChannels floats per sample (channel stride 4).
constexpr int kBufX0 = 0, kBufX1 = 1, kBufO = 2, kBufA = 3, kBufs = 4;
// AUTOCONTRAST and EQUALIZE ops one stage may hold (their tables live in shared memory). A
// program has two stages when it has ops before the warp (PLAN_ABI.md, "Ops before the warp"):
// ops 0 .. warpOps-1 on the image the warp reads, the rest after the geometry pass. The limits
// (kMaxWhole of these, one SHARPNESS with no reduction after it) hold per stage.
constexpr int kMaxWhole = 4;
constexpr int kMaxWholeOps = 2 * kMaxWhole;  // in a whole program
enum WarpMode : int { kWarpNone = 0, kWarpNearest = 1, kWarpBilinear = 2, kWarpBicubic = 3 };

// The job as the kernel sees it. Small fields travel by value; arrays are pointers into one
// device arena (see README.md, "Device-side job layout"). The CPU emulation uses the same
// struct with host pointers into a host copy of that arena.
struct DevJob {
  int n, inC, outC, outH, outW, K, P, nOps;
  int warp;                    // the warp pass: 0 none, 1 nearest, 2 bilinear, 3 bicubic
  int warpOffset;              // offset of the warp block inside a sample's P floats
  int preK;                    // the pass before the warp: taps per coordinate (0: none)
  int nJitter;                 // JITTER ops in the program (0 when no sample needs a contrast mean)
  const int* program;          // [nOps] op codes (in the arena: the `program` section)
  const int* opOffsets;        // [nOps] offset of each op's block inside a sample's P floats
  const int* jitterOps;        // [nOps] program index of the r-th JITTER op
  int nWhole;                  // AUTOCONTRAST and EQUALIZE ops in the program (0 when no sample enables one)
  const int* wholeOps;         // [nOps] program index of the w-th of them
  int sharpOp;                 // program index of the SHARPNESS op after the warp (or of the one op), -1 for none
  int warpOps;                 // ops 0 .. warpOps-1 run on the image the warp reads (0: none)
  int readSharpOp;             // program index of the SHARPNESS op before the warp, -1 for none
  int readReduce, mainReduce;  // the stage (before / after the warp) needs reductions: one block per sample
  long long readMaxHW;         // with warpOps: the largest readH * readW of the batch
  float fill[kMaxChannels];    // value of a -1 tap, per source channel
  const int64_t* srcOffsets;   // [n]   byte offset of sample s inside `pixels`
  const int32_t* srcDims;      // [2n]  height, width of sample s
  const int32_t* tapIndex;     // [n*(outH+outW)*K]
  const float* tapWeight;      // same layout
  const float* params;         // [n*P]
  const int32_t* warpDims;     // [2n]  height, width of sample s's warped image (with a warp)
  const int32_t* preDims;      // [2n]  height, width of sample s's pre-pass image (with preK)
  const int64_t* preTapAt;     // [n]   where sample s's pre taps start
  const int32_t* preTapIndex;  // per sample (preH + preW) * preK
  const float* preTapWeight;
  const uint8_t* pixels;       // packed HWC uint8 sources
  const int64_t* readAt;       // [n]   with warpOps: where sample s's read image starts in readImg (floats)
  float* readImg;              // with warpOps: each sample's read image after ops 0..warpOps-1 (HWC floats)
  // Stage images (programs split into several stages: WARP and MIX ops, or the per-stage limits).
  float* bufs;                 // kBufs read-phase buffers of readBufFloats, then kBufs main-phase ones of mainBufFloats
  const int64_t* readBufAt;    // [n] where sample s's read-phase image starts in a read-phase buffer (floats)
  long long readBufFloats;     // one read-phase buffer: sum of readH*readW*kMaxChannels (0: none)
  long long mainBufFloats;     // one main-phase buffer: n*outH*outW*kMaxChannels (0: none)
  float* out;                  // NCHW float32 output, n*outC*outH*outW
};

// One stage of the program: the ops it runs and the image they run on.
//   read = 1: ops 0 .. warpOps-1 on the image the warp reads (readH x readW, inC channels),
//             the pre-pass image or the source bytes as floats; the kernel's first launch
//             materialises the result in readImg, which warpSource then reads.
//   read = 0: ops warpOps .. nOps-1 on the geometry pass's image (outH x outW).
//
// A program with WARP or MIX ops, or one past a colour stage's limits, is split further
// (job.cc, splitStages): each phase (read, main) is a sequence of stages, each materialising its
// output per sample in a stage buffer (bufs) or, the phase's last, in readImg / out:
//   kind 0 (colour): ops [from, to) with the per-pixel machinery, from `src` (-1: the phase's
//                    base image, readBase or the geometry pass; else a buffer) to `dst` (-1: the
//                    phase's output; else a buffer). At most kMaxWhole AUTOCONTRAST/EQUALIZE
//                    ops, kMaxStageJitter JITTER ops, one SHARPNESS and no reduction after it.
//   kind 12 (WARP op `from`): buffer src resampled into buffer dst (a disabled sample: a copy).
//   kind 13 (MIX_BEGIN `from`): O = x, A = w * x (disabled: O = x); the image is then O.
//   kind 14 (MIX_NEXT): A = A + w * x (disabled: O = x); the image is O.
//   kind 15 (MIX_END): A = A + w * x (disabled: A = x); the image is A.
// so that every sample's image is in the same buffer after each stage whichever of its ops are on.
struct Stage {
  int read;
  int from, to;    // ops [from, to)
  int sharpOp;     // the stage's SHARPNESS op, -1 for none
  int wholeBase;   // AUTOCONTRAST and EQUALIZE ops before `from` (the stage's tables start there)
  int jitterBase;  // JITTER ops before `from`
  int kind;        // 0 colour, else the op code (12..15)
  int src, dst;    // buffers (kBufX0..kBufA), -1: the phase's base image (src) or output (dst)
  int scanC;       // some GRAY before `from`: the channel count at the stage's start is per sample
  int reduce;      // colour: some sample needs a reduction in this stage (one block per sample)
};

BL_HD Stage stageOf(const DevJob& j, bool read) {
  Stage st;
  st.read = read ? 1 : 0;
  st.from = read ? 0 : j.warpOps;
  st.to = read ? j.warpOps : j.nOps;
  st.sharpOp = read ? j.readSharpOp : j.sharpOp;
  st.wholeBase = 0;
  st.jitterBase = 0;
  st.kind = 0;
  st.src = st.dst = -1;
  st.scanC = 0;
  st.reduce = read ? j.readReduce : j.mainReduce;
  for (int k = 0; k < st.from; ++k) {
    st.wholeBase += j.program[k] == kAutocontrast || j.program[k] == kEqualize;
    st.jitterBase += j.program[k] == kJitter;
  }
  return st;
}

// Size of the image the warp reads for sample s (the pre-pass image, or the source).
BL_HD int readH(const DevJob& j, int s) { return j.preK ? j.preDims[2 * s] : j.srcDims[2 * s]; }
BL_HD int readW(const DevJob& j, int s) { return j.preK ? j.preDims[2 * s + 1] : j.srcDims[2 * s + 1]; }
BL_HD int stageH(const DevJob& j, const Stage& st, int s) { return st.read ? readH(j, s) : j.outH; }
BL_HD int stageW(const DevJob& j, const Stage& st, int s) { return st.read ? readW(j, s) : j.outW; }

// Sample s's image in stage buffer b of the stage's phase (HWC, channel stride kMaxChannels).
BL_HD float* stageBuf(const DevJob& j, const Stage& st, int b, int s) {
  if (st.read) return j.bufs + (size_t)b * (size_t)j.readBufFloats + (size_t)j.readBufAt[s];
  return j.bufs + (size_t)kBufs * (size_t)j.readBufFloats + (size_t)b * (size_t)j.mainBufFloats +
         (size_t)s * (size_t)j.outH * (size_t)j.outW * (size_t)kMaxChannels;
}

// Sample s's channel count before op k (inC, changed by enabled GRAY ops).
BL_HD int channelsAt(const DevJob& j, int s, int k) {
  const float* block = j.params + (size_t)s * (size_t)j.P;
  int C = j.inC;
  for (int i = 0; i < k; ++i)
    if (j.program[i] == 1 && block[j.opOffsets[i]] != 0.0f) C = (int)block[j.opOffsets[i] + 1];
  return C;
}
BL_HD int stageC(const DevJob& j, const Stage& st, int s) { return st.scanC ? channelsAt(j, s, st.from) : j.inC; }

BL_HD bool isNaN(float x) { return x != x; }

// clamp(x) = min(max(x, 0), bound), with std::max/std::min's comparisons.
BL_HD float clampTo(float x, float bound) {
  const float m = (x < 0.0f) ? 0.0f : x;
  return (bound < m) ? bound : m;
}

// gray(r,g,b) = ((0.299f*r) + (0.587f*g)) + (0.114f*b); for one channel, the value.
BL_HD float grayOf(const float* v, int C) {
  if (C == 1) return v[0];
  const float r = 0.299f * v[0];
  const float g = 0.587f * v[1];
  const float b = 0.114f * v[2];
  return (r + g) + b;
}

using blpixel::jitterStep;


using blpixel::inWindow;  // a window of the warp block holds a pixel (pixel_math.h)

// Weight of the bilinear corners of a point inside a w x h frame (nearest: 1 or 0).
BL_HD float frameMask(const float* q, int fh, int fw, float px, float py, bool nearest) {
  const float X = (q[0] * px + q[1] * py) + q[2];
  const float Y = (q[3] * px + q[4] * py) + q[5];
  const float Wd = (q[6] * px + q[7] * py) + q[8];
  const float ix = X / Wd - 0.5f;
  const float iy = Y / Wd - 0.5f;
  if (!(fabsf(ix) <= 4194304.0f && fabsf(iy) <= 4194304.0f)) return 0.0f;
  if (nearest) {
    const int nx = (int)rintf(ix);
    const int ny = (int)rintf(iy);
    return (nx >= 0 && nx < fw && ny >= 0 && ny < fh) ? 1.0f : 0.0f;
  }
  const float x0f = floorf(ix);
  const float y0f = floorf(iy);
  const int x0 = (int)x0f;
  const int y0 = (int)y0f;
  const float fx = ix - x0f;
  const float fy = iy - y0f;
  const float gx = 1.0f - fx;
  const float gy = 1.0f - fy;
  float mask = 0.0f;
  for (int k = 0; k < 4; ++k) {
    const int sx = x0 + (k & 1);
    const int sy = y0 + (k >> 1);
    if (sx >= 0 && sx < fw && sy >= 0 && sy < fh) mask = mask + ((k & 1) ? fx : gx) * ((k >> 1) ? fy : gy);
  }
  return mask;
}

// Pixel (sy, sx) of the image the warp reads before any op, all channels: a source pixel, or
// (with a pass before the warp) the ABI's geometry formula on the pre-pass taps, computed where
// it is read.
BL_HD void readBase(const DevJob& j, int s, int sy, int sx, float* px) {
  const int C = j.inC;
  const size_t srcW = (size_t)j.srcDims[2 * s + 1];
  const uint8_t* src = j.pixels + j.srcOffsets[s];
  if (j.preK == 0) {
    const uint8_t* p = src + ((size_t)sy * srcW + (size_t)sx) * (size_t)C;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c)
      if (c < C) px[c] = (float)p[c];
    return;
  }
  const int K = j.preK;
  const int ph = j.preDims[2 * s];
  const int32_t* ty = j.preTapIndex + j.preTapAt[s] + (size_t)sy * K;
  const float* wy = j.preTapWeight + j.preTapAt[s] + (size_t)sy * K;
  const int32_t* tx = j.preTapIndex + j.preTapAt[s] + (size_t)ph * K + (size_t)sx * K;
  const float* wx = j.preTapWeight + j.preTapAt[s] + (size_t)ph * K + (size_t)sx * K;
  float acc[kMaxChannels];
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c) acc[c] = 0.0f;
  for (int i = 0; i < K; ++i) {
    const int r = ty[i];
    float row[kMaxChannels];
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) row[c] = 0.0f;
    for (int q = 0; q < K; ++q) {
      const int col = tx[q];
      if (r < 0 || col < 0) {
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < C) row[c] = row[c] + wx[q] * j.fill[c];
      } else {
        const uint8_t* p = src + ((size_t)r * srcW + (size_t)col) * (size_t)C;
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < C) row[c] = row[c] + wx[q] * (float)p[c];
      }
    }
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c)
      if (c < C) acc[c] = acc[c] + wy[i] * row[c];
  }
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c)
    if (c < C) px[c] = acc[c];
}

// Pixel (sy, sx) of the image the warp reads, all channels. With ops before the warp it is the
// materialised read image (the first launch wrote it); else it is computed where it is read.
BL_HD void warpSource(const DevJob& j, int s, int sy, int sx, float* px) {
  if (j.warpOps > 0) {
    const int C = j.inC;
    const float* p = j.readImg + j.readAt[s] + ((size_t)sy * (size_t)readW(j, s) + (size_t)sx) * (size_t)C;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c)
      if (c < C) px[c] = p[c];
    return;
  }
  readBase(j, s, sy, sx, px);
}

// The warp pass's resampling at the (displaced) output point (px, py) through the map m, no
// frames (PLAN_ABI.md, "Warp pass"): v[c] for c < C. read(sy, sx, p) gives a pixel of the image
// read (inside `real`). Shared by the warp pass and the WARP op.
template <typename Read>
BL_HD void resample(int mode, const float* m, const float* dom, const float* real, const float* fill, int C, float px, float py, const Read& read, float* v) {
  const float X = (m[0] * px + m[1] * py) + m[2];
  const float Y = (m[3] * px + m[4] * py) + m[5];
  const float Wd = (m[6] * px + m[7] * py) + m[8];
  const float ix = X / Wd - 0.5f;
  const float iy = Y / Wd - 0.5f;
  const bool inRange = fabsf(ix) <= 4194304.0f && fabsf(iy) <= 4194304.0f;  // false for NaN
  if (mode == kWarpBicubic) {
    if (inRange) {
      blpixel::warpBicubic<kMaxChannels>(ix, iy, dom, real, fill, C, read, v);
    } else {
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c) v[c] = (c < C) ? 0.0f + fill[c] : 0.0f;  // the blend with mask 0
    }
  } else if (mode == kWarpNearest) {
    const int nx = inRange ? (int)rintf(ix) : 0;
    const int ny = inRange ? (int)rintf(iy) : 0;
    if (inRange && inWindow(real, nx, ny)) {
      read(ny, nx, v);
    } else {
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c) v[c] = (c < C) ? fill[c] : 0.0f;
    }
  } else {
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) v[c] = 0.0f;
    float mask = 0.0f;
    if (inRange) {
      const float x0f = floorf(ix);
      const float y0f = floorf(iy);
      const int x0 = (int)x0f;
      const int y0 = (int)y0f;
      const float fx = ix - x0f;
      const float fy = iy - y0f;
      const float gx = 1.0f - fx;
      const float gy = 1.0f - fy;
      for (int k = 0; k < 4; ++k) {
        const int sx = x0 + (k & 1);
        const int sy = y0 + (k >> 1);
        if (!inWindow(dom, sx, sy)) continue;
        const float w = ((k & 1) ? fx : gx) * ((k >> 1) ? fy : gy);
        mask = mask + w;
        if (inWindow(real, sx, sy)) {
          float p[kMaxChannels];
          read(sy, sx, p);
          BL_UNROLL
          for (int c = 0; c < kMaxChannels; ++c)
            if (c < C) v[c] = v[c] + w * p[c];
        } else {
          BL_UNROLL
          for (int c = 0; c < kMaxChannels; ++c)
            if (c < C) v[c] = v[c] + w * fill[c];
        }
      }
    }
    const float rest = 1.0f - mask;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c)
      if (c < C) v[c] = v[c] * mask + rest * fill[c];
  }
}

// The warp pass at pixel (y, x) of sample s's warped image: px[c] for c < inC (PLAN_ABI.md,
// "Warp pass"). The real window was checked to lie inside the source.
BL_HD void warpPixel(const DevJob& j, int s, int y, int x, float* out) {
  const int C = j.inC;
  const float* blk = j.params + (size_t)s * (size_t)j.P + j.warpOffset;
  const float* m = blk + 1;
  const float* dom = blk + 10;
  const float* real = blk + 14;
  const int F = (int)blk[18];
  const int G = (int)blk[41];
  const bool nearest = j.warp == kWarpNearest;
  const float yc = (float)y + 0.5f;
  const float xc = (float)x + 0.5f;
  float px = xc;
  float py = yc;
  if (G > 0) blpixel::addDisplacement(blk + 42, G, xc, yc, (float)j.warpDims[2 * s + 1], (float)j.warpDims[2 * s], &px, &py);
  float v[kMaxChannels];
  const auto read = [&](int sy, int sx, float* p) { warpSource(j, s, sy, sx, p); };
  resample(j.warp, m, dom, real, j.fill, C, px, py, read, v);
  for (int f = 0; f < F; ++f) {
    const float* fr = blk + 19 + 11 * f;
    const float mk = j.warp == kWarpBicubic ? blpixel::cubicFrameMask(fr, (int)fr[9], (int)fr[10], px, py) : frameMask(fr, (int)fr[9], (int)fr[10], px, py, nearest);
    const float rest = 1.0f - mk;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c)
      if (c < C) v[c] = (v[c] * mk) * mk + rest * j.fill[c];
  }
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c)
    if (c < C) out[c] = v[c];
}

// Does sample s read the warp pass's image? (Else its taps read the source.)
BL_HD bool warpsSample(const DevJob& j, int s) {
  return j.warp != kWarpNone && j.params[(size_t)s * (size_t)j.P + j.warpOffset] != 0.0f;
}

// The geometry pass for one output pixel: v[c] for c < inC.
BL_HD void geometry(const DevJob& j, int s, int y, int x, float* v) {
  const int K = j.K;
  const int C = j.inC;
  const size_t base = (size_t)s * (size_t)(j.outH + j.outW) * (size_t)K;
  const int32_t* ty = j.tapIndex + base + (size_t)y * K;
  const float* wy = j.tapWeight + base + (size_t)y * K;
  const int32_t* tx = j.tapIndex + base + (size_t)j.outH * K + (size_t)x * K;
  const float* wx = j.tapWeight + base + (size_t)j.outH * K + (size_t)x * K;
  const size_t srcW = (size_t)j.srcDims[2 * s + 1];
  const uint8_t* src = j.pixels + j.srcOffsets[s];
  const bool warped = warpsSample(j, s);

  float acc[kMaxChannels];
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c) acc[c] = 0.0f;
  for (int i = 0; i < K; ++i) {
    const int r = ty[i];
    const float wyi = wy[i];
    float row[kMaxChannels];
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) row[c] = 0.0f;
    for (int q = 0; q < K; ++q) {
      const int col = tx[q];
      const float wxq = wx[q];
      if (r < 0 || col < 0) {
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < C) row[c] = row[c] + wxq * j.fill[c];
      } else if (warped) {
        float px[kMaxChannels];
        warpPixel(j, s, r, col, px);
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < C) row[c] = row[c] + wxq * px[c];
      } else if (j.warp != kWarpNone && (j.preK > 0 || j.warpOps > 0)) {  // warp off: the image it would read
        float px[kMaxChannels];
        warpSource(j, s, r, col, px);
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < C) row[c] = row[c] + wxq * px[c];
      } else {
        const uint8_t* px = src + ((size_t)r * srcW + (size_t)col) * (size_t)C;
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < C) row[c] = row[c] + wxq * (float)px[c];
      }
    }
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c)
      if (c < C) acc[c] = acc[c] + wyi * row[c];
  }
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c) v[c] = (c < C) ? acc[c] : 0.0f;
}

// A stage's image before its ops: the image the warp reads (read stage), or the geometry pass.
BL_HD void stageBase(const DevJob& j, const Stage& st, int s, int y, int x, float* v) {
  if (st.src >= 0) {  // a stage after a WARP or MIX op (or a split): the buffer the stage before wrote
    const float* p = stageBuf(j, st, st.src, s) + ((size_t)y * (size_t)stageW(j, st, s) + (size_t)x) * (size_t)kMaxChannels;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) v[c] = p[c];
    return;
  }
  if (st.read) {
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) v[c] = 0.0f;
    readBase(j, s, y, x, v);
  } else {
    geometry(j, s, y, x, v);
  }
}

// JITTER on one pixel; *mean is this op's contrast mean. With `stop`, returns true just before
// the contrast step and leaves the gray value that contrast's mean sums in *gray.
BL_HD bool jitter(const float* p, float* v, int C, const float* mean, bool stop, float* gray) {
  const float bound = p[1];
  const int order = (int)p[2];
  const float fb = p[3], fc = p[4], fs = p[5], fh = p[6];
  for (int t = 0; t < 4; ++t) {
    const int step = jitterStep(order, t);
    if (step == 0) {
      if (isNaN(fb)) continue;
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < C) v[c] = clampTo(fb * v[c], bound);
    } else if (step == 1) {
      if (isNaN(fc)) continue;
      if (stop) {
        *gray = grayOf(v, C);
        return true;
      }
      const float k = 1.0f - fc;
      const float km = k * *mean;  // read only here: means[] is unset when no sample needs it
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < C) v[c] = clampTo(fc * v[c] + km, bound);
    } else if (step == 3) {
      if (isNaN(fh) || C == 1) continue;
      blpixel::hue3(v[0], v[1], v[2], fh, bound);
    } else {
      if (isNaN(fs)) continue;
      const float g = grayOf(v, C);
      const float k = 1.0f - fs;
      const float kg = k * g;
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < C) v[c] = clampTo(fs * v[c] + kg, bound);
    }
  }
  return false;
}

// What a sample's whole-image steps need, computed before its pixels are written (in program
// order: each reduction sees the image as the steps before it left it).
struct Reductions {
  float means[kMaxStageJitter];             // contrast mean of the stage's r-th JITTER op (r - st.jitterBase)
  float min[kMaxWhole][kMaxChannels];       // AUTOCONTRAST of the w-th whole-image op
  float scale[kMaxWhole][kMaxChannels];
  short lut[kMaxWhole][kMaxChannels][256];  // EQUALIZE of the w-th whole-image op
};

// Runs the stage's ops on one pixel of its image, with the sample's reductions. With stopAt >= 0,
// stops just before the contrast step of the stopAt-th JITTER op and returns true with *gray set;
// with stopOp >= 0, stops just before op stopOp (an AUTOCONTRAST or EQUALIZE) and returns true
// with v as that op sees it (the reduction passes). *C is updated.
// With from >= 0, starts at op `from` (stagePixel resumes after SHARPNESS, whose neighbourhood
// it computed itself); else at the stage's first op. JITTER ops are counted over the whole
// program (means[r]), AUTOCONTRAST and EQUALIZE tables from the stage's first (its own tables).
BL_HD bool program(const DevJob& j, const Stage& st, int s, int y, int x, float* v, int* C, const Reductions* red,
                   int stopAt, float* gray, int stopOp = -1, int from = -1) {
  const float* block = j.params + (size_t)s * (size_t)j.P;
  const float fy = (float)y, fx = (float)x;
  const int k0 = from < 0 ? st.from : from;
  int jit = st.jitterBase, whole = st.wholeBase;
  for (int k = st.from; k < k0; ++k) {
    jit += j.program[k] == kJitter;
    whole += j.program[k] == kAutocontrast || j.program[k] == kEqualize;
  }
  for (int k = k0; k < st.to; ++k) {
    const float* p = block + j.opOffsets[k];
    const int code = j.program[k];
    if (code == kSharpness) {
      if (k == stopOp) return true;
      continue;  // enabled: stagePixel ran it (the CUDA check allows no reduction after it in its stage)
    }
    if (code == kJitter) {
      const int r = jit++;
      if (p[0] != 0.0f && jitter(p, v, *C, red->means + (r - st.jitterBase), r == stopAt, gray)) return true;
      continue;
    }
    if (code == kAutocontrast || code == kEqualize) {
      const int w = whole++ - st.wholeBase;
      if (k == stopOp) return true;
      if (p[0] == 0.0f) continue;
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c) {
        if (c >= *C) continue;
        v[c] = code == kAutocontrast ? blpixel::autocontrast1(v[c], red->min[w][c], red->scale[w][c], p[1])
                                     : blpixel::fromLevel(red->lut[w][c][blpixel::level1(v[c], p[1])], p[1]);
      }
      continue;
    }
    if (p[0] == 0.0f) continue;
    const int c0 = *C;
    if (code == kAffine) {
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < c0) v[c] = (v[c] - p[1 + c]) / p[1 + c0 + c];
    } else if (code == kGray) {
      const float g = grayOf(v, c0);
      const int oc = (int)p[1];
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c) v[c] = (c < oc) ? g : 0.0f;
      *C = oc;
    } else if (code == kInvert) {
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < c0) v[c] = blpixel::invert1(v[c], p[1]);
    } else if (code == kSolarize) {
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < c0) v[c] = blpixel::solarize1(v[c], p[2], p[1]);
    } else if (code == kNoise) {
      const uint32_t ka = blpixel::noiseKeyA(p[5], p[6]), kb = blpixel::noiseKeyB(p[7]);
      const uint32_t at = ((uint32_t)y * (uint32_t)stageW(j, st, s) + (uint32_t)x) * (uint32_t)c0;
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < c0) v[c] = blpixel::noise1(v[c], at + (uint32_t)c, ka, kb, p[2], p[3], p[4] != 0.0f, p[1]);
    } else if (code == kPermute) {
      float tmp[kMaxChannels];
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c) tmp[c] = v[c];
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < c0) v[c] = tmp[(int)p[1 + c]];
    } else if (code == kPosterize) {
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < c0) v[c] = blpixel::posterize1(v[c], (int)p[2], p[1]);
    } else {  // kErase
      if (fy >= p[1] && fy < p[1] + p[3] && fx >= p[2] && fx < p[2] + p[4]) {
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c)
          if (c < c0) v[c] = p[5 + c];
      }
    }
  }
  return false;
}

// Does sample s need the r-th contrast mean? (JITTER enabled and contrast not left out.)
BL_HD bool needsMean(const DevJob& j, int s, int r) {
  const float* p = j.params + (size_t)s * (size_t)j.P + j.opOffsets[j.jitterOps[r]];
  return p[0] != 0.0f && !isNaN(p[4]);
}

// The gray value that the r-th contrast mean sums, for one pixel of the stage's image.
BL_HD float grayBeforeContrast(const DevJob& j, const Stage& st, int s, int y, int x, const Reductions* red, int r) {
  float v[kMaxChannels];
  stageBase(j, st, s, y, x, v);
  int C = stageC(j, st, s);
  float g = 0.0f;
  program(j, st, s, y, x, v, &C, red, r, &g);
  return g;
}

// One pixel's values as op k (of the stage) sees them; returns the channel count there.
BL_HD int valuesBeforeOp(const DevJob& j, const Stage& st, int s, int y, int x, const Reductions* red, int k, float* v) {
  stageBase(j, st, s, y, x, v);
  int C = stageC(j, st, s);
  float unused = 0.0f;
  program(j, st, s, y, x, v, &C, red, -1, &unused, k);
  return C;
}

// One pixel's values as the w-th whole-image op sees them; returns the channel count there.
BL_HD int valuesBeforeWhole(const DevJob& j, const Stage& st, int s, int y, int x, const Reductions* red, int w, float* v) {
  return valuesBeforeOp(j, st, s, y, x, red, j.wholeOps[w], v);
}

// Is the w-th whole-image op enabled for sample s?
BL_HD bool wholeEnabled(const DevJob& j, int s, int w) {
  return j.params[(size_t)s * (size_t)j.P + j.opOffsets[j.wholeOps[w]]] != 0.0f;
}

// Min and max with NaN passed over and -0 below 0 (AUTOCONTRAST's order; the kernel reaches the
// same by integer atomics on orderedBits).
BL_HD void minMaxInto(float x, float* lo, float* hi) {
  if (x < *lo || (x == 0.0f && *lo == 0.0f && signbit(x))) *lo = x;
  if (x > *hi || (x == 0.0f && *hi == 0.0f && signbit(*hi))) *hi = x;
}

// The final value of one pixel of the stage's image, in v; returns its channel count. With an
// enabled SHARPNESS op in the stage, its 3 x 3 neighbourhood is recomputed up to that op (nine
// passes of the stage's start), then the rest of the stage runs on the blended value.
BL_HD int stagePixel(const DevJob& j, const Stage& st, int s, int y, int x, const Reductions* red, float* v) {
  int C = stageC(j, st, s);
  float unused = 0.0f;
  const float* sp = st.sharpOp >= 0 ? j.params + (size_t)s * (size_t)j.P + j.opOffsets[st.sharpOp] : nullptr;
  if (sp && sp[0] != 0.0f) {
    C = valuesBeforeOp(j, st, s, y, x, red, st.sharpOp, v);
    const int H = stageH(j, st, s), W = stageW(j, st, s);
    if (H > 2 && W > 2) {
      float sm[kMaxChannels];
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c) sm[c] = v[c];
      if (y > 0 && y < H - 1 && x > 0 && x < W - 1) {
        float n[9][kMaxChannels];
        for (int i = 0; i < 9; ++i) valuesBeforeOp(j, st, s, y + i / 3 - 1, x + i % 3 - 1, red, st.sharpOp, n[i]);
        BL_UNROLL
        for (int c = 0; c < kMaxChannels; ++c) {
          float col[9];
          for (int i = 0; i < 9; ++i) col[i] = n[i][c];
          sm[c] = blpixel::sharpSmoothed(col);
        }
      }
      BL_UNROLL
      for (int c = 0; c < kMaxChannels; ++c)
        if (c < C) v[c] = blpixel::sharpBlend(v[c], sm[c], sp[2], sp[1]);
    }
    program(j, st, s, y, x, v, &C, red, -1, &unused, -1, st.sharpOp + 1);
  } else {
    stageBase(j, st, s, y, x, v);
    program(j, st, s, y, x, v, &C, red, -1, &unused);
  }
  return C;
}

// Writes one pixel of the stage: to the read image (HWC, inC channels: the check keeps them)
// or to j.out (NCHW).
BL_HD void writePixel(const DevJob& j, const Stage& st, int s, int y, int x, const Reductions* red) {
  float v[kMaxChannels];
  const int C = stagePixel(j, st, s, y, x, red, v);
  if (st.dst >= 0) {
    float* o = stageBuf(j, st, st.dst, s) + ((size_t)y * (size_t)stageW(j, st, s) + (size_t)x) * (size_t)kMaxChannels;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) o[c] = (c < C) ? v[c] : 0.0f;
    return;
  }
  if (st.read) {
    float* o = j.readImg + j.readAt[s] + ((size_t)y * (size_t)readW(j, s) + (size_t)x) * (size_t)j.inC;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c)
      if (c < j.inC) o[c] = v[c];
    return;
  }
  const size_t plane = (size_t)j.outH * (size_t)j.outW;
  float* o = j.out + (size_t)s * (size_t)j.outC * plane + (size_t)y * (size_t)j.outW + (size_t)x;
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c)
    if (c < j.outC) o[(size_t)c * plane] = v[c];
}

// A WARP stage (op st.from) at pixel (y, x) of sample s: buffer st.src resampled into buffer
// st.dst (PLAN_ABI.md op 12: domain and real the whole image, no frames, no displacement, the
// op's fill); a sample with the op off copies the pixel.
BL_HD void warpOpPixel(const DevJob& j, const Stage& st, int s, int y, int x) {
  const int H = stageH(j, st, s), W = stageW(j, st, s);
  const float* p = j.params + (size_t)s * (size_t)j.P + j.opOffsets[st.from];
  const float* in = stageBuf(j, st, st.src, s);
  float* o = stageBuf(j, st, st.dst, s) + ((size_t)y * (size_t)W + (size_t)x) * (size_t)kMaxChannels;
  float v[kMaxChannels];
  if (p[0] == 0.0f) {
    const float* q = in + ((size_t)y * (size_t)W + (size_t)x) * (size_t)kMaxChannels;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) o[c] = q[c];
    return;
  }
  const int C = stageC(j, st, s);
  const float win[4] = {0.0f, 0.0f, (float)W, (float)H};
  float fill[kMaxChannels];
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c) fill[c] = (c < C) ? p[2 + c] : 0.0f;
  const auto read = [&](int sy, int sx, float* q) {
    const float* r = in + ((size_t)sy * (size_t)W + (size_t)sx) * (size_t)kMaxChannels;
    BL_UNROLL
    for (int c = 0; c < kMaxChannels; ++c) q[c] = r[c];
  };
  resample((int)p[1], p + 2 + C, win, win, fill, C, (float)x + 0.5f, (float)y + 0.5f, read, v);
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c) o[c] = (c < C) ? v[c] : 0.0f;
}

// A MIX stage (op st.from, kind 13..15) on value i (pixel i / kMaxChannels, channel i % kMaxChannels)
// of sample s; the image x is buffer st.src (see Stage for what a disabled sample does).
BL_HD void mixValue(const DevJob& j, const Stage& st, int s, size_t i) {
  const float* p = j.params + (size_t)s * (size_t)j.P + j.opOffsets[st.from];
  const float x = stageBuf(j, st, st.src, s)[i];
  float* O = stageBuf(j, st, kBufO, s);
  float* A = stageBuf(j, st, kBufA, s);
  const float w = p[1];
  if (p[0] == 0.0f) {
    (st.kind == kMixEnd ? A : O)[i] = x;
  } else if (st.kind == kMixBegin) {
    O[i] = x;
    A[i] = w * x;
  } else {
    const float wx = w * x;
    A[i] = A[i] + wx;
  }
}

}  // namespace blcuda
