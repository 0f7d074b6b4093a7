// The per-pixel arithmetic of the plan (native/PLAN_ABI.md), written once for both the CUDA
// kernel (plan_kernel.cu, compiled by nvcc with -fmad=false) and the CPU emulation of that
// kernel (job.cc, compiled by g++ with -ffp-contract=off). Every float operation below is one
// IEEE float32 operation in the order the ABI writes it; nothing here may be "simplified".
#pragma once

#include <stddef.h>
#include <stdint.h>

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
// Ops in one program (the program and its offsets travel by value in the kernel parameters).
constexpr int kMaxOps = 32;

enum OpCode : int { kAffine = 0, kGray = 1, kJitter = 2, kErase = 3 };

// The job as the kernel sees it. Small fields travel by value; arrays are pointers into one
// device arena (see README.md, "Device-side job layout"). The CPU emulation uses the same
// struct with host pointers into a host copy of that arena.
struct DevJob {
  int n, inC, outC, outH, outW, K, P, nOps;
  int nJitter;                 // JITTER ops in the program (0 when no sample needs a contrast mean)
  int program[kMaxOps];        // op codes
  int opOffsets[kMaxOps];      // offset of each op's block inside a sample's P floats
  int jitterOps[kMaxOps];      // program index of the r-th JITTER op
  float fill[kMaxChannels];    // value of a -1 tap, per source channel
  const int64_t* srcOffsets;   // [n]   byte offset of sample s inside `pixels`
  const int32_t* srcDims;      // [2n]  height, width of sample s
  const int32_t* tapIndex;     // [n*(outH+outW)*K]
  const float* tapWeight;      // same layout
  const float* params;         // [n*P]
  const uint8_t* pixels;       // packed HWC uint8 sources
  float* out;                  // NCHW float32 output, n*outC*outH*outW
};

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

// Step t (0..2) of jitter order `order` (0..5): 0 = brightness, 1 = contrast, 2 = saturation.
// Orders: 0: b c s, 1: b s c, 2: c b s, 3: c s b, 4: s b c, 5: s c b.
BL_HD int jitterStep(int order, int t) {
  // Six 6-bit codes, each three 2-bit steps (first step in the low bits).
  const uint64_t table = (uint64_t)(0 | 1 << 2 | 2 << 4) |
                         (uint64_t)(0 | 2 << 2 | 1 << 4) << 6 |
                         (uint64_t)(1 | 0 << 2 | 2 << 4) << 12 |
                         (uint64_t)(1 | 2 << 2 | 0 << 4) << 18 |
                         (uint64_t)(2 | 0 << 2 | 1 << 4) << 24 |
                         (uint64_t)(2 | 1 << 2 | 0 << 4) << 30;
  return (int)((table >> (order * 6 + t * 2)) & 3u);
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

// JITTER on one pixel; *mean is this op's contrast mean. With `stop`, returns true just before
// the contrast step and leaves the gray value that contrast's mean sums in *gray.
BL_HD bool jitter(const float* p, float* v, int C, const float* mean, bool stop, float* gray) {
  const float bound = p[1];
  const int order = (int)p[2];
  const float fb = p[3], fc = p[4], fs = p[5];
  for (int t = 0; t < 3; ++t) {
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

// Runs the program on one pixel (after geometry). means[r] is the contrast mean of the r-th
// JITTER op for this sample. With stopAt >= 0, stops just before the contrast step of the
// stopAt-th JITTER op and returns true with *gray set (the reduction pass). *C is updated.
BL_HD bool program(const DevJob& j, int s, int y, int x, float* v, int* C, const float* means,
                   int stopAt, float* gray) {
  const float* block = j.params + (size_t)s * (size_t)j.P;
  const float fy = (float)y, fx = (float)x;
  int jit = 0;
  for (int k = 0; k < j.nOps; ++k) {
    const float* p = block + j.opOffsets[k];
    const int code = j.program[k];
    if (code == kJitter) {
      const int r = jit++;
      if (p[0] != 0.0f && jitter(p, v, *C, means + r, r == stopAt, gray)) return true;
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

// The gray value that the r-th contrast mean sums, for one pixel.
BL_HD float grayBeforeContrast(const DevJob& j, int s, int y, int x, const float* means, int r) {
  float v[kMaxChannels];
  geometry(j, s, y, x, v);
  int C = j.inC;
  float g = 0.0f;
  program(j, s, y, x, v, &C, means, r, &g);
  return g;
}

// The final value of one output pixel, written to j.out.
BL_HD void writePixel(const DevJob& j, int s, int y, int x, const float* means) {
  float v[kMaxChannels];
  geometry(j, s, y, x, v);
  int C = j.inC;
  float unused = 0.0f;
  program(j, s, y, x, v, &C, means, -1, &unused);
  const size_t plane = (size_t)j.outH * (size_t)j.outW;
  float* o = j.out + (size_t)s * (size_t)j.outC * plane + (size_t)y * (size_t)j.outW + (size_t)x;
  BL_UNROLL
  for (int c = 0; c < kMaxChannels; ++c)
    if (c < j.outC) o[(size_t)c * plane] = v[c];
}

}  // namespace blcuda
