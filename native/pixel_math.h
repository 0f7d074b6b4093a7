// Per-pixel maths shared by the C++ engine (plan.cc) and the CUDA kernel and its CPU emulation
// (cuda/plan_kernel.h), so that the two engines cannot drift apart: the JITTER order table and
// the hue step of native/PLAN_ABI.md. Every float operation is one IEEE float32 operation in the
// ABI's order (g++ -ffp-contract=off, nvcc -fmad=false); nothing here may be "simplified".
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define BL_PX __host__ __device__ __forceinline__
#else
#define BL_PX inline
#endif

namespace blpixel {

// Step t (0..3) of JITTER order `order` (0..23): the order-th permutation, in lexicographic order,
// of 0 = brightness, 1 = contrast, 2 = saturation, 3 = hue (decoded from its factorial digits).
BL_PX int jitterStep(int order, int t) {
  int rest[4] = {0, 1, 2, 3};
  int n = 4, k = order, f = 6;  // f = (n - 1)!
  for (int i = 0;; ++i) {
    const int d = k / f;
    const int step = rest[d];
    if (i == t) return step;
    for (int j = d; j + 1 < n; ++j) rest[j] = rest[j + 1];
    --n;
    k %= f;
    f /= n;  // (n - 1)! for the n left
  }
}

// The largest of three: NaN if any is NaN; of equal values (-0 and 0) the first. min3 alike.
BL_PX float max3(float a, float b, float c) {
  if (a != a || b != b || c != c) return a + b + c;  // a NaN
  float m = a;
  if (b > m) m = b;
  if (c > m) m = c;
  return m;
}
BL_PX float min3(float a, float b, float c) {
  if (a != a || b != b || c != c) return a + b + c;
  float m = a;
  if (b < m) m = b;
  if (c < m) m = c;
  return m;
}

// min(max(x, 0), bound), NaN kept.
BL_PX float clampBound(float x, float bound) {
  const float m = (x < 0.0f) ? 0.0f : x;
  return (bound < m) ? bound : m;
}

// torchvision's adjust_hue (RGB -> HSV -> RGB, its tensor path) in float32 on 0..bound values.
BL_PX void hue3(float& R, float& G, float& B, float factor, float bound) {
  const float r = R, g = G, b = B;
  const float maxc = max3(r, g, b);
  const float minc = min3(r, g, b);
  const bool eqc = maxc == minc;
  const float cr = maxc - minc;
  const float s = cr / (eqc ? 1.0f : maxc);
  const float div = eqc ? 1.0f : cr;
  const float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
  const float hr = maxc == r ? bc - gc : 0.0f;
  const float hg = (maxc == g && maxc != r) ? (2.0f + rc) - bc : 0.0f;
  const float hb = (maxc != g && maxc != r) ? (4.0f + gc) - rc : 0.0f;
  float h = ((hr + hg) + hb) / 6.0f;
  h = fmodf(h + 1.0f, 1.0f);
  h = h + factor;
  h = h - floorf(h);
  const float h6 = h * 6.0f;
  const float k = floorf(h6);
  const float fr = h6 - k;
  const float v = maxc;
  const float p = clampBound(v * (1.0f - s), bound);
  const float q = clampBound(v * (1.0f - s * fr), bound);
  const float t = clampBound(v * (1.0f - s * (1.0f - fr)), bound);
  // A NaN sector (NaN input) is 4, as torch's int32 conversion of NaN then % 6 gives.
  switch (k == k ? (int)k % 6 : 4) {
    case 0: R = v; G = t; B = p; break;
    case 1: R = q; G = v; B = p; break;
    case 2: R = p; G = v; B = t; break;
    case 3: R = p; G = q; B = v; break;
    case 4: R = t; G = p; B = v; break;
    default: R = v; G = p; B = q; break;
  }
}

// The pointwise level ops (INVERT, SOLARIZE, POSTERIZE) on one value in 0..bound units.
BL_PX float invert1(float x, float bound) { return bound - x; }
BL_PX float solarize1(float x, float threshold, float bound) { return x >= threshold ? bound - x : x; }
// The uint8 level of x: round half to even of x (bound 255) or x * 255 (bound 1), clamped to
// 0..255 (NaN: 0). POSTERIZE and EQUALIZE work on it and give a level back in x's units.
BL_PX int level1(float x, float bound) {
  const float y = bound == 255.0f ? x : x * 255.0f;
  float r = rintf(y);  // round half to even (the default rounding mode)
  r = r >= 0.0f ? r : 0.0f;  // NaN -> 0 too
  r = r <= 255.0f ? r : 255.0f;
  return (int)r;
}
BL_PX float fromLevel(int q, float bound) { return bound == 255.0f ? (float)q : (float)q / 255.0f; }
BL_PX float posterize1(float x, int bits, float bound) {
  return fromLevel(level1(x, bound) & ((0xff << (8 - bits)) & 0xff), bound);
}

// EQUALIZE's table for one channel from its histogram of levels (torchvision's): step =
// floor((count - count at the highest level present) / 255); with step 0 every level maps to
// itself, else level q to min(255, floor((count below q + floor(step / 2)) / step)).
BL_PX void equalizeTable(const uint32_t* hist, int* lut) {
  uint64_t count = 0;
  for (int q = 0; q < 256; ++q) count += hist[q];
  int top = 255;
  while (top > 0 && hist[top] == 0) --top;
  const uint64_t step = (count - hist[top]) / 255;
  uint64_t below = 0;
  for (int q = 0; q < 256; ++q) {
    if (step == 0) {
      lut[q] = q;
    } else {
      const uint64_t v = (below + step / 2) / step;
      lut[q] = v < 255 ? (int)v : 255;
    }
    below += hist[q];
  }
}

// AUTOCONTRAST's (min, scale) for one channel from its smallest and largest values (NaN values
// are passed over): a flat channel (not hi > lo) gets (0, 1).
BL_PX void autocontrastScale(float lo, float hi, float bound, float* min, float* scale) {
  const bool flat = !(hi > lo);
  *min = flat ? 0.0f : lo;
  *scale = flat ? 1.0f : bound / (hi - lo);
}
BL_PX float autocontrast1(float x, float min, float scale, float bound) { return clampBound((x - min) * scale, bound); }

// SHARPNESS's smoothed value of an interior pixel: the 3 x 3 kernel (1 1 1 / 1 5 1 / 1 1 1) / 13
// over its neighbourhood n[0..8] (row-major), summed from 0 in that order; then the blend with
// the pixel's own value x: clamp(factor * x + (1 - factor) * smoothed). A border pixel blends
// with itself; an image 2 pixels or fewer on a side passes unchanged.
BL_PX float sharpSmoothed(const float* n) {
  const float side = 1.0f / 13.0f, centre = 5.0f / 13.0f;
  float s = 0.0f;
  for (int i = 0; i < 9; ++i) s = s + (i == 4 ? centre : side) * n[i];
  return s;
}
BL_PX float sharpBlend(float x, float smoothed, float factor, float bound) {
  return clampBound(factor * x + (1.0f - factor) * smoothed, bound);
}

// The warp pass's displacement at an output pixel centre (xc, yc) of an oh x ow output: the
// G x G grid of (dx, dy) pairs spans the output, point (i, j) at (j * ow / (G - 1), i * oh / (G - 1)),
// read bilinearly (the cell clamped to the last one). Adds it to (*px, *py).
BL_PX void addDisplacement(const float* grid, int G, float xc, float yc, float fow, float foh, float* px, float* py) {
  const float gm1 = (float)(G - 1);
  const float u = (xc * gm1) / fow;
  const float t = (yc * gm1) / foh;
  int j0 = (int)floorf(u);
  int i0 = (int)floorf(t);
  j0 = j0 < G - 2 ? j0 : G - 2;
  i0 = i0 < G - 2 ? i0 : G - 2;
  const float a = u - (float)j0, b = t - (float)i0;
  const float ra = 1.0f - a, rb = 1.0f - b;
  const float* g0 = grid + ((size_t)i0 * (size_t)G + (size_t)j0) * 2;
  const float* g1 = g0 + (size_t)G * 2;
  const float dx = (ra * g0[0] + a * g0[2]) * rb + (ra * g1[0] + a * g1[2]) * b;
  const float dy = (ra * g0[1] + a * g0[3]) * rb + (ra * g1[1] + a * g1[3]) * b;
  *px = xc + dx;
  *py = yc + dy;
}

// ---------------------------------------------------------------------------------------------
// NOISE (PLAN_ABI.md): a standard normal value per (sample key, value index), from integer
// hashing and float32 arithmetic only (+ - * / and sqrt, each correctly rounded on every
// engine), so the reference, the C++ engine and the CUDA kernel draw the same field without
// storing it and without a library's log or erfinv.

// A 32-bit integer mixer (xor-shift / multiply rounds; full avalanche, a bijection).
BL_PX uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// The two words of a sample's noise key, from its three 16-bit halves k0, k1, k2 (exact floats).
BL_PX uint32_t noiseKeyA(float k0, float k1) { return mix32((uint32_t)k0 | ((uint32_t)k1 << 16)); }
BL_PX uint32_t noiseKeyB(float k2) { return mix32((uint32_t)k2 ^ 0x85ebca6bU); }

// floor(log2 n) for n >= 1.
BL_PX int floorLog2(uint32_t n) {
  int e = 0;
  if (n >= (1U << 16)) { n >>= 16; e += 16; }
  if (n >= (1U << 8)) { n >>= 8; e += 8; }
  if (n >= 16U) { n >>= 4; e += 4; }
  if (n >= 4U) { n >>= 2; e += 2; }
  if (n >= 2U) e += 1;
  return e;
}

// log(n / 2^24) for n in [1, 2^24): n = m * 2^e with m in [sqrt(1/2), sqrt(2)] (exact), then
// log m = 2 atanh(s), s = (m - 1) / (m + 1), as its odd series to s^9 (|s| <= 0.172: the next
// term is below float32's resolution).
BL_PX float logUnit(uint32_t n) {
  int e = floorLog2(n);
  float m = (float)n / (float)(1U << e);
  if (m > 1.41421354f) {
    m = m * 0.5f;
    e = e + 1;
  }
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  float t = s2 * 0.222222224f + 0.285714298f;
  t = s2 * t + 0.400000006f;
  t = s2 * t + 0.666666687f;
  const float lm = 2.0f * s + (s * s2) * t;
  return (float)(e - 24) * 0.693147182f + lm;
}

// A standard normal value from 32 random bits: u = n / 2^24 with n = 2 * (bits >> 9) + 1 (odd,
// so u is in (0, 1) and symmetric about 1/2), through the inverse normal CDF as a rational
// approximation (Acklam's coefficients, in float32): central for u in [0.02425, 0.97575], tails
// through sqrt(-2 log u). |z| <= 5.4.
BL_PX float normalOf(uint32_t bits) {
  const uint32_t n = ((bits >> 9) << 1) | 1U;
  const uint32_t kLow = 406848U;  // 0.02425 * 2^24, rounded up
  if (n < kLow || n > 16777216U - kLow) {
    const bool upper = n > 16777216U - kLow;
    const float q = sqrtf(-2.0f * logUnit(upper ? 16777216U - n : n));
    float num = -0.00778489420f * q + -0.322396457f;
    num = num * q + -2.40075827f;
    num = num * q + -2.54973245f;
    num = num * q + 4.37466431f;
    num = num * q + 2.93816400f;
    float den = 0.00778469583f * q + 0.322467119f;
    den = den * q + 2.44513416f;
    den = den * q + 3.75440860f;
    den = den * q + 1.0f;
    const float z = num / den;
    return upper ? -z : z;
  }
  const float u = (float)n * 5.96046448e-08f;  // exact: n / 2^24
  const float q = u - 0.5f;
  const float r = q * q;
  float num = -39.6968307f * r + 220.946106f;
  num = num * r + -275.928497f;
  num = num * r + 138.357758f;
  num = num * r + -30.6647987f;
  num = num * r + 2.50662827f;
  float den = -54.4760971f * r + 161.585831f;
  den = den * r + -155.698975f;
  den = den * r + 66.8013153f;
  den = den * r + -13.2806816f;
  den = den * r + 1.0f;
  return (num * q) / den;
}

// One value of NOISE: x + (mean + sigma * z), z the normal of value index i (HWC order of the
// image at the op: (y * W + x) * C + c) under the sample's key words; clamped to [0, bound] if clip.
BL_PX float noise1(float x, uint32_t i, uint32_t ka, uint32_t kb, float mean, float sigma, bool clip, float bound) {
  const float z = normalOf(mix32(mix32(i ^ ka) + kb));
  const float y = x + (mean + sigma * z);
  return clip ? clampBound(y, bound) : y;
}

// ---------------------------------------------------------------------------------------------
// The bicubic warp (PLAN_ABI.md, "Warp pass", warp = 3): torch's grid_sample bicubic (Keys'
// cubic convolution with a = -0.75, taps x0 - 1 .. x0 + 2 per axis, each row summed over x
// first, then the rows), with the fill blended by the in-domain weight as the bilinear warp.

// A window [x0, y0, x1, y1] of the warp block holds pixel (sx, sy) when x0 < sx + 0.5 < x1 and
// y0 < sy + 0.5 < y1 (float32; exact for the integers the pass tests).
BL_PX bool inWindow(const float* win, int sx, int sy) {
  const float cx = (float)sx + 0.5f, cy = (float)sy + 0.5f;
  return win[0] < cx && cx < win[2] && win[1] < cy && cy < win[3];
}

// The point p = (px, py) through the 3x3 map q: (X / Wd - 0.5, Y / Wd - 0.5).
BL_PX void warpPoint(const float* q, float px, float py, float* ix, float* iy) {
  const float X = (q[0] * px + q[1] * py) + q[2];
  const float Y = (q[3] * px + q[4] * py) + q[5];
  const float Wd = (q[6] * px + q[7] * py) + q[8];
  *ix = X / Wd - 0.5f;
  *iy = Y / Wd - 0.5f;
}

// Keys' cubic, a = -0.75, as torch writes it: for |d| <= 1 and for 1 < |d| < 2.
BL_PX float cubicNear(float d) { return ((1.25f * d - 2.25f) * d) * d + 1.0f; }
BL_PX float cubicFar(float d) { return ((-0.75f * d - -3.75f) * d + -6.0f) * d - -3.0f; }

// The weights of taps i0 - 1, i0, i0 + 1, i0 + 2 at fraction t = i - i0.
BL_PX void cubicWeights(float t, float* w) {
  w[0] = cubicFar(t + 1.0f);
  w[1] = cubicNear(t);
  w[2] = cubicNear(1.0f - t);
  w[3] = cubicFar(2.0f - t);
}

// The bicubic sum at source point (ix, iy) (inside the warp's range), C channels into v: a tap
// in `dom` reads read(sy, sx, p) where `real` holds it, else the fill; a tap outside `dom` reads
// 0 and adds no weight. Returns the in-domain weight (the mask).
template <int MAXC, typename Read>
BL_PX float cubicSum(float ix, float iy, const float* dom, const float* real, const float* fill, int C, const Read& read, float* v) {
  const float x0f = floorf(ix), y0f = floorf(iy);
  const int x0 = (int)x0f, y0 = (int)y0f;
  float wx[4], wy[4];
  cubicWeights(ix - x0f, wx);
  cubicWeights(iy - y0f, wy);
  float mask = 0.0f;
  for (int c = 0; c < C; ++c) v[c] = 0.0f;
  for (int j = 0; j < 4; ++j) {
    const int sy = y0 - 1 + j;
    float row[MAXC];
    float rm = 0.0f;
    for (int c = 0; c < C; ++c) row[c] = 0.0f;
    for (int i = 0; i < 4; ++i) {
      const int sx = x0 - 1 + i;
      if (!inWindow(dom, sx, sy)) continue;
      rm = rm + wx[i];
      if (C == 0) continue;
      if (inWindow(real, sx, sy)) {
        float p[MAXC];
        read(sy, sx, p);
        for (int c = 0; c < C; ++c) row[c] = row[c] + wx[i] * p[c];
      } else {
        for (int c = 0; c < C; ++c) row[c] = row[c] + wx[i] * fill[c];
      }
    }
    mask = mask + wy[j] * rm;
    for (int c = 0; c < C; ++c) v[c] = v[c] + wy[j] * row[c];
  }
  return mask;
}

// The bicubic warp's value at (ix, iy): cubicSum, then v = v * mask + (1 - mask) * fill.
template <int MAXC, typename Read>
BL_PX void warpBicubic(float ix, float iy, const float* dom, const float* real, const float* fill, int C, const Read& read, float* v) {
  const float mask = cubicSum<MAXC>(ix, iy, dom, real, fill, C, read, v);
  const float rest = 1.0f - mask;
  for (int c = 0; c < C; ++c) v[c] = v[c] * mask + rest * fill[c];
}

// No pixels to read (a mask alone).
struct NoRead {
  BL_PX void operator()(int, int, float*) const {}
};

// The bicubic weight of a point's taps inside a fw x fh frame (q maps the point to the frame):
// cubicSum's mask with the frame as the domain (0 < s + 0.5 < n is 0 <= s < n for integers).
BL_PX float cubicFrameMask(const float* q, int fh, int fw, float px, float py) {
  float ix, iy;
  warpPoint(q, px, py, &ix, &iy);
  if (!(fabsf(ix) <= 4194304.0f && fabsf(iy) <= 4194304.0f)) return 0.0f;
  const float frame[4] = {0.0f, 0.0f, (float)fw, (float)fh};
  return cubicSum<1>(ix, iy, frame, frame, nullptr, 0, NoRead(), nullptr);
}

}  // namespace blpixel
