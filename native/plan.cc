// The CPU plan executor (see plan.h and native/PLAN_ABI.md).
//
// How one sample runs. The output is produced row by row: the geometry pass writes output row
// y (all channels, planar) and the program's ops run on that row while it is in cache. An op
// that needs the whole image (the contrast step of JITTER, which needs the mean gray) splits the
// program: the first pass also sums the gray values for it, and each contrast starts a further
// row pass over the image. So a program costs 1 + (number of contrast steps) passes.
//
// Geometry has two forms:
//  - K = 1 with every weight 1 (crop, flip, pad, integer resize): a gather. The value is the
//    source byte (or the fill), so the leading per-channel pointwise ops (AFFINE, brightness)
//    are evaluated once per (channel, byte value) into a 257-entry table with the very same
//    float32 operations, and the pass is a gather through the table: uint8 -> float -> affine
//    chain -> float32 NCHW in one loop with no branch on op type.
//  - otherwise: separable filtering in the ABI's order. For source row r, the horizontal sums
//    row(r, x) = sum_j wx_j * S(r, tx_j) are computed once and cached (consecutive output rows
//    share source rows), then acc = sum_i wy_i * row(ty_i, x). This is exactly the ABI's loop
//    nest (the inner sum depends only on r and x), with the same operations in the same order.
//    With SSE (x86-64-v2, the build's baseline) the horizontal sums run for four source rows at
//    once, one lane per row (every row has the same column taps: separableQuads, filterQuad),
//    and the vertical sums four or eight columns at once (combineRows); each lane performs the
//    scalar form's multiplies and adds in its order, so the bits are the same.
#include "plan.h"
#include "pixel_math.h"
#include "plan_check.h"
#include "warp_lanes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#if defined(__SSE4_1__)
#include <smmintrin.h>
#define BATCHLAB_SSE 1
#endif

namespace batchlab {
namespace {

constexpr float kGrayR = 0.299f, kGrayG = 0.587f, kGrayB = 0.114f;
using blpixel::jitterStep;
constexpr int64_t kEmpty = std::numeric_limits<int64_t>::min();

// ---------------------------------------------------------------------------------------------
// Scalar arithmetic of the ABI. Every row loop below is written with these, so the table of the
// gather path and the row passes perform the same float32 operations.

inline float gray3(float r, float g, float b) {
  const float t = kGrayR * r + kGrayG * g;  // two roundings each side: no FMA (-ffp-contract=off)
  return t + kGrayB * b;
}
// clamp(x) = min(max(x, 0), bound)
inline float clampTo(float x, float bound) { return x < 0.0f ? 0.0f : (x > bound ? bound : x); }
inline float affine1(float x, float sub, float div) { return (x - sub) / div; }
inline float brightness1(float x, float f, float bound) { return clampTo(f * x, bound); }
// The geometry of one value with K = 1 and weights 1: row = 0 + 1*S; acc = 0 + 1*row. Equal to S
// except that -0 becomes +0, which matters for a fill of -0.
inline float unitGeometry(float s) {
  float row = 0.0f;
  row = row + 1.0f * s;
  float acc = 0.0f;
  acc = acc + 1.0f * row;
  return acc;
}

}  // namespace

#if BATCHLAB_SSE
// clampBound on four lanes: m = x < 0 ? 0 : x (NaN and -0 stay), then bound < m ? bound : m.
inline __m128 clampLanes(__m128 x, __m128 bound) {
  const __m128 m = _mm_andnot_ps(_mm_cmplt_ps(x, _mm_setzero_ps()), x);
  const __m128 over = _mm_cmplt_ps(bound, m);
  return _mm_or_ps(_mm_and_ps(over, bound), _mm_andnot_ps(over, m));
}
// level1 on four lanes: y = x (bound 255) or x * 255, rounded half to even (rintf in the
// default mode), NaN and below 0 to 0, above 255 to 255.
inline __m128i levelLanes(__m128 x, bool bound255) {
  const __m128 y = bound255 ? x : _mm_mul_ps(x, _mm_set1_ps(255.0f));
  __m128 r = _mm_round_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm_and_ps(_mm_cmpge_ps(r, _mm_setzero_ps()), r);
  const __m128 top = _mm_set1_ps(255.0f);
  const __m128 le = _mm_cmple_ps(r, top);
  r = _mm_or_ps(_mm_and_ps(le, r), _mm_andnot_ps(le, top));
  return _mm_cvttps_epi32(r);
}
// fromLevel on four lanes: q (bound 255) or q / 255.
inline __m128 fromLevelLanes(__m128i q, bool bound255) {
  const __m128 f = _mm_cvtepi32_ps(q);
  return bound255 ? f : _mm_div_ps(f, _mm_set1_ps(255.0f));
}
#endif

// An image of `plane` pixels and C channels between its two layouts: interleaved (HWC, what the
// warp reads) and planes (what the row passes and the program work on). Three channels, the
// usual case, with the channel loop unrolled.
template <typename T>
void toPlanes(const T* hwc, size_t plane, int32_t C, float* planes) {
  if (C == 3) {
    float *p0 = planes, *p1 = planes + plane, *p2 = planes + 2 * plane;
    for (size_t i = 0; i < plane; ++i) p0[i] = (float)hwc[3 * i], p1[i] = (float)hwc[3 * i + 1], p2[i] = (float)hwc[3 * i + 2];
    return;
  }
  for (size_t i = 0; i < plane; ++i)
    for (int32_t c = 0; c < C; ++c) planes[(size_t)c * plane + i] = (float)hwc[i * (size_t)C + (size_t)c];
}

void toInterleaved(const float* planes, size_t plane, int32_t C, float* hwc) {
  if (C == 3) {
    const float *p0 = planes, *p1 = planes + plane, *p2 = planes + 2 * plane;
    for (size_t i = 0; i < plane; ++i) hwc[3 * i] = p0[i], hwc[3 * i + 1] = p1[i], hwc[3 * i + 2] = p2[i];
    return;
  }
  for (size_t i = 0; i < plane; ++i)
    for (int32_t c = 0; c < C; ++c) hwc[i * (size_t)C + (size_t)c] = planes[(size_t)c * plane + i];
}

// ---------------------------------------------------------------------------------------------
// Row passes. A row is C planes of W floats, plane c at row + c*cs.

namespace {

void affineRow(float* __restrict row, size_t cs, int32_t W, int32_t C, const float* a) {
  for (int32_t c = 0; c < C; ++c) {
    const float sub = a[c], div = a[C + c];
    float* __restrict v = row + (size_t)c * cs;
    for (int32_t x = 0; x < W; ++x) v[x] = affine1(v[x], sub, div);
  }
}

void grayRow(float* __restrict row, size_t cs, int32_t W, int32_t Cin, int32_t Cout) {
  float* __restrict v0 = row;
  if (Cin == 1) {  // gray is the value: copy it to the other channels
    for (int32_t c = 1; c < Cout; ++c) std::memcpy(row + (size_t)c * cs, v0, sizeof(float) * (size_t)W);
    return;
  }
  float* __restrict v1 = row + cs;
  float* __restrict v2 = row + 2 * cs;
  if (Cout == 1) {
    for (int32_t x = 0; x < W; ++x) v0[x] = gray3(v0[x], v1[x], v2[x]);
  } else {
    for (int32_t x = 0; x < W; ++x) {
      const float g = gray3(v0[x], v1[x], v2[x]);
      v0[x] = g;
      v1[x] = g;
      v2[x] = g;
    }
  }
}

void brightnessRow(float* __restrict row, size_t cs, int32_t W, int32_t C, float f, float bound) {
  for (int32_t c = 0; c < C; ++c) {
    float* __restrict v = row + (size_t)c * cs;
    for (int32_t x = 0; x < W; ++x) v[x] = brightness1(v[x], f, bound);
  }
}

void contrastRow(float* __restrict row, size_t cs, int32_t W, int32_t C, float f, float bound, float mean) {
  const float rest = (1.0f - f) * mean;
  for (int32_t c = 0; c < C; ++c) {
    float* __restrict v = row + (size_t)c * cs;
    for (int32_t x = 0; x < W; ++x) v[x] = clampTo(f * v[x] + rest, bound);
  }
}

void saturationRow(float* __restrict row, size_t cs, int32_t W, int32_t C, float f, float bound) {
  const float rest = 1.0f - f;
  if (C == 1) {  // gray is the value itself
    float* __restrict v = row;
    for (int32_t x = 0; x < W; ++x) {
      const float rg = rest * v[x];
      v[x] = clampTo(f * v[x] + rg, bound);
    }
    return;
  }
  float* __restrict v0 = row;
  float* __restrict v1 = row + cs;
  float* __restrict v2 = row + 2 * cs;
  for (int32_t x = 0; x < W; ++x) {
    const float r = v0[x], g = v1[x], b = v2[x];
    const float rg = rest * gray3(r, g, b);
    v0[x] = clampTo(f * r + rg, bound);
    v1[x] = clampTo(f * g + rg, bound);
    v2[x] = clampTo(f * b + rg, bound);
  }
}

// Hue (JITTER's step 3) on a row; one channel passes unchanged.
void hueRow(float* __restrict row, size_t cs, int32_t W, int32_t C, float f, float bound) {
  if (C == 1) return;
  float* __restrict v0 = row;
  float* __restrict v1 = row + cs;
  float* __restrict v2 = row + 2 * cs;
  for (int32_t x = 0; x < W; ++x) blpixel::hue3(v0[x], v1[x], v2[x], f, bound);
}

// INVERT, SOLARIZE (threshold f), POSTERIZE (bits f) on every value of a row.
void levelRow(float* __restrict row, size_t cs, int32_t W, const Step& st) {
  for (int32_t c = 0; c < st.C; ++c) {
    float* __restrict v = row + (size_t)c * cs;
    if (st.kind == Step::Invert)
      for (int32_t x = 0; x < W; ++x) v[x] = blpixel::invert1(v[x], st.bound);
    else if (st.kind == Step::Solarize) {
      int32_t x = 0;
#if BATCHLAB_SSE
      // solarize1 four values at a time without a branch (random pixels mispredict it): bound - x
      // computed for every lane, kept where x >= threshold (false for NaN, as the scalar test).
      const __m128 t = _mm_set1_ps(st.f), b = _mm_set1_ps(st.bound);
      for (; x + 4 <= W; x += 4) {
        const __m128 a = _mm_loadu_ps(v + x);
        _mm_storeu_ps(v + x, _mm_blendv_ps(a, _mm_sub_ps(b, a), _mm_cmpge_ps(a, t)));
      }
#endif
      for (; x < W; ++x) v[x] = blpixel::solarize1(v[x], st.f, st.bound);
    } else {
      int32_t x = 0;
#if BATCHLAB_SSE
      // posterize1 four values at a time: the level, masked, given back (the same operations).
      const bool b255 = st.bound == 255.0f;
      const __m128i mask = _mm_set1_epi32((0xff << (8 - (int)st.f)) & 0xff);
      for (; x + 4 <= W; x += 4) _mm_storeu_ps(v + x, fromLevelLanes(_mm_and_si128(levelLanes(_mm_loadu_ps(v + x), b255), mask), b255));
#endif
      for (; x < W; ++x) v[x] = blpixel::posterize1(v[x], (int)st.f, st.bound);
    }
  }
}

// NOISE on every value of row y (value index (y * W + x) * C + c, as PLAN_ABI.md numbers them).
void noiseRow(float* __restrict row, size_t cs, int32_t W, int32_t y, const Step& st) {
  const float mean = st.a[0], sigma = st.a[1];
  const bool clip = st.a[2] != 0.0f;
  const uint32_t C = (uint32_t)st.C;
  const uint32_t base = (uint32_t)y * (uint32_t)W * C;
  for (int32_t c = 0; c < st.C; ++c) {
    float* __restrict v = row + (size_t)c * cs;
    for (int32_t x = 0; x < W; ++x) v[x] = blpixel::noise1(v[x], base + (uint32_t)x * C + (uint32_t)c, st.keyA, st.keyB, mean, sigma, clip, st.bound);
  }
}

// PERMUTE: output channel c is input channel a[c] (the row's planes moved, through a copy).
void permuteRow(float* row, size_t cs, int32_t W, const Step& st) {
  float tmp[kMaxChannels];
  for (int32_t x = 0; x < W; ++x) {
    for (int32_t c = 0; c < st.C; ++c) tmp[c] = row[(size_t)c * cs + x];
    for (int32_t c = 0; c < st.C; ++c) row[(size_t)c * cs + x] = tmp[(int32_t)st.a[c]];
  }
}

void eraseRow(float* row, size_t cs, int32_t y, const Step& st) {
  if (y < st.y0 || y >= st.y1) return;
  for (int32_t c = 0; c < st.C; ++c) {
    float* v = row + (size_t)c * cs;
    const float value = st.a[c];
    for (int32_t x = st.x0; x < st.x1; ++x) v[x] = value;
  }
}

// Sum of gray over one row, added to `sum` pixel by pixel in order (row-major overall).
double grayRowSum(const float* row, size_t cs, int32_t W, int32_t C, double sum) {
  if (C == 1) {
    for (int32_t x = 0; x < W; ++x) sum += (double)row[x];
  } else {
    const float* v1 = row + cs;
    const float* v2 = row + 2 * cs;
    for (int32_t x = 0; x < W; ++x) sum += (double)gray3(row[x], v1[x], v2[x]);
  }
  return sum;
}

void runSteps(const Step* first, const Step* last, float* row, size_t cs, int32_t W, int32_t y) {
  for (const Step* st = first; st != last; ++st) {
    switch (st->kind) {
      case Step::Affine: affineRow(row, cs, W, st->C, st->a); break;
      case Step::Gray: grayRow(row, cs, W, st->C, st->Cout); break;
      case Step::Brightness: brightnessRow(row, cs, W, st->C, st->f, st->bound); break;
      case Step::Saturation: saturationRow(row, cs, W, st->C, st->f, st->bound); break;
      case Step::Hue: hueRow(row, cs, W, st->C, st->f, st->bound); break;
      case Step::Erase: eraseRow(row, cs, y, *st); break;
      case Step::Invert:
      case Step::Solarize:
      case Step::Posterize: levelRow(row, cs, W, *st); break;
      case Step::Permute: permuteRow(row, cs, W, *st); break;
      case Step::Noise: noiseRow(row, cs, W, y, *st); break;
      case Step::Contrast:
      case Step::Autocontrast:
      case Step::Equalize:
      case Step::Sharpness:
      case Step::WarpOp:
      case Step::MixBegin:
      case Step::MixNext:
      case Step::MixEnd: break;  // never inside a segment
    }
  }
}

// Asks for the cache lines of [p, p + bytes) ahead of use: source rows are read once, from
// memory, and in crops and flips the hardware prefetcher alone leaves the loop waiting.
inline void prefetchBytes(const uint8_t* p, size_t bytes) {
  const uintptr_t first = (uintptr_t)p & ~(uintptr_t)63;
  for (uintptr_t a = first; a < (uintptr_t)p + bytes; a += 64) __builtin_prefetch((const void*)a, 0, 0);
}

// ---------------------------------------------------------------------------------------------
// Geometry, gather form (K = 1, weights 1): dst_c[x] = lut_c[src(ty, tx, c)], lut_c[256] for a
// fill tap. `idx[x]` is the byte offset of column tx inside a source row (0 for a fill column:
// those are overwritten from `fillCols` afterwards, so the main loop has no branch).

template <int CC>
void gatherRow(const uint8_t* __restrict srow, const int32_t* __restrict idx, const float* __restrict lut, int32_t W, int32_t Crt,
               float* dst, size_t cs) {
  const int32_t C = CC > 0 ? CC : Crt;
  if (C == 1) {
    float* __restrict d = dst;
    for (int32_t x = 0; x < W; ++x) d[x] = lut[srow[idx[x]]];
  } else if (C == 3) {
    float* __restrict d0 = dst;
    float* __restrict d1 = dst + cs;
    float* __restrict d2 = dst + 2 * cs;
    const float* l0 = lut;
    const float* l1 = lut + 257;
    const float* l2 = lut + 514;
    for (int32_t x = 0; x < W; ++x) {
      const uint8_t* p = srow + idx[x];
      d0[x] = l0[p[0]];
      d1[x] = l1[p[1]];
      d2[x] = l2[p[2]];
    }
  } else {
    for (int32_t c = 0; c < C; ++c) {
      float* __restrict d = dst + (size_t)c * cs;
      const float* l = lut + (size_t)c * 257;
      const uint8_t* s = srow + c;
      for (int32_t x = 0; x < W; ++x) d[x] = l[s[idx[x]]];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Geometry, separable form. srow: the used columns of one source row as floats (interleaved,
// C per pixel) followed by one fill pixel; idx[x*K + j]: float offset of tap j of column x in
// srow. out: C planes of W floats.

template <int CC, int KK>
void filterRow(const float* __restrict srow, const int32_t* __restrict idx, const float* __restrict w, int32_t W, int32_t Crt,
               int32_t Krt, float* __restrict out) {
  const int32_t C = CC > 0 ? CC : Crt;
  const int32_t K = KK > 0 ? KK : Krt;
  for (int32_t x = 0; x < W; ++x) {
    const int32_t* ix = idx + (size_t)x * K;
    const float* wx = w + (size_t)x * K;
    for (int32_t c = 0; c < C; ++c) {
      float row = 0.0f;
      for (int32_t j = 0; j < K; ++j) row = row + wx[j] * srow[ix[j] + c];
      out[(size_t)c * W + x] = row;
    }
  }
}

using FilterFn = void (*)(const float*, const int32_t*, const float*, int32_t, int32_t, int32_t, float*);

#if BATCHLAB_SSE
// The same sums for four source rows at once, one SSE lane per row: every row uses the same
// taps, so lane l computes exactly filterRow's row = row + wx[j] * S(l, tx[j]) from 0, in the
// same order (separate multiply and add: no FMA, one rounding each). q holds the rows
// interleaved (value p of lane l at q[p*4 + l], then the fill pixel); out[l] receives lane l's
// C planes of W floats (lanes >= nOut are computed and dropped).
template <int CC, int KK>
void filterQuad(const float* __restrict q, const int32_t* __restrict idx, const float* __restrict w, int32_t W, int32_t Crt, int32_t Krt,
                float* const* out, int32_t nOut) {
  const int32_t C = CC > 0 ? CC : Crt;
  const int32_t K = KK > 0 ? KK : Krt;
  int32_t x = 0;
  if (CC > 0 && CC <= 3) {
    // Up to three channels: the four columns' sums in registers together (4 x CC), each weight
    // broadcast once for all channels.
    for (; x + 4 <= W; x += 4) {
      const int32_t* ix = idx + (size_t)x * K;
      const float* wx = w + (size_t)x * K;
      __m128 a[CC > 0 ? CC : 1][4];
      for (int c = 0; c < CC; ++c)
        for (int t = 0; t < 4; ++t) a[c][t] = _mm_setzero_ps();
      for (int32_t j = 0; j < K; ++j) {
        for (int t = 0; t < 4; ++t) {
          const __m128 wv = _mm_set1_ps(wx[(size_t)t * K + j]);
          const float* qp = q + (size_t)ix[(size_t)t * K + j] * 4;
          for (int c = 0; c < CC; ++c) a[c][t] = _mm_add_ps(a[c][t], _mm_mul_ps(wv, _mm_loadu_ps(qp + c * 4)));
        }
      }
      for (int c = 0; c < CC; ++c) {
        _MM_TRANSPOSE4_PS(a[c][0], a[c][1], a[c][2], a[c][3]);
        const size_t at = (size_t)c * W + x;
        for (int32_t l = 0; l < nOut; ++l) _mm_storeu_ps(out[l] + at, a[c][l]);
      }
    }
  } else if (CC > 0) {
    // A few channels: each weight is broadcast once for all of them.
    for (; x + 4 <= W; x += 4) {
      __m128 a[CC > 0 ? CC : 1][4];
      for (int t = 0; t < 4; ++t) {
        const int32_t* ix = idx + (size_t)(x + t) * K;
        const float* wx = w + (size_t)(x + t) * K;
        __m128 acc[CC > 0 ? CC : 1];
        for (int c = 0; c < CC; ++c) acc[c] = _mm_setzero_ps();
        for (int32_t j = 0; j < K; ++j) {
          const __m128 wv = _mm_set1_ps(wx[j]);
          const float* qp = q + (size_t)ix[j] * 4;
          for (int c = 0; c < CC; ++c) acc[c] = _mm_add_ps(acc[c], _mm_mul_ps(wv, _mm_loadu_ps(qp + c * 4)));
        }
        for (int c = 0; c < CC; ++c) a[c][t] = acc[c];
      }
      for (int c = 0; c < CC; ++c) {
        _MM_TRANSPOSE4_PS(a[c][0], a[c][1], a[c][2], a[c][3]);
        const size_t at = (size_t)c * W + x;
        for (int32_t l = 0; l < nOut; ++l) _mm_storeu_ps(out[l] + at, a[c][l]);
      }
    }
  }
  for (; x + 4 <= W; x += 4) {
    for (int32_t c = 0; c < C; ++c) {
      __m128 a0, a1, a2, a3;
      __m128* a[4] = {&a0, &a1, &a2, &a3};
      for (int t = 0; t < 4; ++t) {
        const int32_t* ix = idx + (size_t)(x + t) * K;
        const float* wx = w + (size_t)(x + t) * K;
        __m128 acc = _mm_setzero_ps();
        for (int32_t j = 0; j < K; ++j) acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(wx[j]), _mm_loadu_ps(q + (size_t)(ix[j] + c) * 4)));
        *a[t] = acc;
      }
      _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
      const size_t at = (size_t)c * W + x;
      if (nOut > 0) _mm_storeu_ps(out[0] + at, a0);
      if (nOut > 1) _mm_storeu_ps(out[1] + at, a1);
      if (nOut > 2) _mm_storeu_ps(out[2] + at, a2);
      if (nOut > 3) _mm_storeu_ps(out[3] + at, a3);
    }
  }
  for (; x < W; ++x) {
    const int32_t* ix = idx + (size_t)x * K;
    const float* wx = w + (size_t)x * K;
    for (int32_t c = 0; c < C; ++c) {
      __m128 acc = _mm_setzero_ps();
      for (int32_t j = 0; j < K; ++j) acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(wx[j]), _mm_loadu_ps(q + (size_t)(ix[j] + c) * 4)));
      alignas(16) float lane[4];
      _mm_store_ps(lane, acc);
      for (int32_t l = 0; l < nOut; ++l) out[l][(size_t)c * W + x] = lane[l];
    }
  }
}

using QuadFn = void (*)(const float*, const int32_t*, const float*, int32_t, int32_t, int32_t, float* const*, int32_t);

template <int CC>
QuadFn pickQuadK(int32_t K) {
  // The common tap counts unrolled. Antialiased bilinear takes PIL's ceil(scale) * 2 + 1 taps:
  // 3 for an upscale, 5 and 7 for downscales by up to 2 and 3 (what decode "fast" leaves).
  if (K == 2) return &filterQuad<CC, 2>;
  if (K == 3) return &filterQuad<CC, 3>;
  if (K == 4) return &filterQuad<CC, 4>;
  if (K == 5) return &filterQuad<CC, 5>;
  if (K == 7) return &filterQuad<CC, 7>;
  if (K == 9) return &filterQuad<CC, 9>;
  return &filterQuad<CC, 0>;
}

QuadFn pickQuad(int32_t C, int32_t K) {
  switch (C) {
    case 1: return pickQuadK<1>(K);
    case 3: return pickQuadK<3>(K);
    case 4: return pickQuadK<4>(K);
    default: return pickQuadK<0>(K);
  }
}

// Interleaves four rows of n values into q (value p of lane l at q[p*4 + l]): uint8 source
// rows (u[l]) converted to float exactly, or float rows (f[l]) as they are.
// next (or null): the four rows of the following call, prefetched a line each per 64 values.
void interleaveBytes(const uint8_t* const* u, size_t n, float* __restrict q, const uint8_t* const* next) {
  size_t p = 0;
  // Sixteen values of each row: bytes interleaved by unpacking, then four at a time to float.
  for (; p + 16 <= n; p += 16) {
    if (next && (p & 63) == 0)
      for (int l = 0; l < 4; ++l) __builtin_prefetch(next[l] + p, 0, 3);
    const __m128i r0 = _mm_loadu_si128((const __m128i*)(u[0] + p)), r1 = _mm_loadu_si128((const __m128i*)(u[1] + p));
    const __m128i r2 = _mm_loadu_si128((const __m128i*)(u[2] + p)), r3 = _mm_loadu_si128((const __m128i*)(u[3] + p));
    const __m128i a = _mm_unpacklo_epi8(r0, r1), b = _mm_unpackhi_epi8(r0, r1);
    const __m128i c = _mm_unpacklo_epi8(r2, r3), d = _mm_unpackhi_epi8(r2, r3);
    const __m128i g[4] = {_mm_unpacklo_epi16(a, c), _mm_unpackhi_epi16(a, c), _mm_unpacklo_epi16(b, d), _mm_unpackhi_epi16(b, d)};
    float* o = q + p * 4;
    for (int k = 0; k < 4; ++k) {
      _mm_storeu_ps(o + 16 * k, _mm_cvtepi32_ps(_mm_cvtepu8_epi32(g[k])));
      _mm_storeu_ps(o + 16 * k + 4, _mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_srli_si128(g[k], 4))));
      _mm_storeu_ps(o + 16 * k + 8, _mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_srli_si128(g[k], 8))));
      _mm_storeu_ps(o + 16 * k + 12, _mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_srli_si128(g[k], 12))));
    }
  }
  for (; p + 4 <= n; p += 4) {
    __m128 v[4];
    for (int l = 0; l < 4; ++l) {
      int32_t bits;
      std::memcpy(&bits, u[l] + p, 4);
      v[l] = _mm_cvtepi32_ps(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(bits)));
    }
    _MM_TRANSPOSE4_PS(v[0], v[1], v[2], v[3]);
    for (int k = 0; k < 4; ++k) _mm_storeu_ps(q + (p + k) * 4, v[k]);
  }
  for (; p < n; ++p)
    for (int l = 0; l < 4; ++l) q[p * 4 + l] = (float)u[l][p];
}

void interleaveFloats(const float* const* f, size_t n, float* __restrict q) {
  size_t p = 0;
  for (; p + 4 <= n; p += 4) {
    __m128 v0 = _mm_loadu_ps(f[0] + p), v1 = _mm_loadu_ps(f[1] + p), v2 = _mm_loadu_ps(f[2] + p), v3 = _mm_loadu_ps(f[3] + p);
    _MM_TRANSPOSE4_PS(v0, v1, v2, v3);
    _mm_storeu_ps(q + p * 4, v0);
    _mm_storeu_ps(q + (p + 1) * 4, v1);
    _mm_storeu_ps(q + (p + 2) * 4, v2);
    _mm_storeu_ps(q + (p + 3) * 4, v3);
  }
  for (; p < n; ++p)
    for (int l = 0; l < 4; ++l) q[p * 4 + l] = f[l][p];
}
#endif

template <int CC>
FilterFn pickFilterK(int32_t K) {
  if (K == 1) return &filterRow<CC, 1>;
  if (K == 2) return &filterRow<CC, 2>;
  if (K == 4) return &filterRow<CC, 4>;
  return &filterRow<CC, 0>;
}

FilterFn pickFilter(int32_t C, int32_t K) {
  switch (C) {
    case 1: return pickFilterK<1>(K);
    case 3: return pickFilterK<3>(K);
    case 4: return pickFilterK<4>(K);
    default: return pickFilterK<0>(K);
  }
}

// acc = sum_i wy_i * h_i, in order, starting from 0.
void combineRows(const float* const* h, const float* wy, int32_t K, int32_t C, int32_t W, float* dst, size_t cs) {
#if BATCHLAB_SSE
  // Four columns at a time, the sum over i in a register (one store per value).
  __m128 wv[kMaxTaps];
  for (int32_t i = 0; i < K; ++i) wv[i] = _mm_set1_ps(wy[i]);
  for (int32_t c = 0; c < C; ++c) {
    float* __restrict d = dst + (size_t)c * cs;
    const size_t at = (size_t)c * W;
    int32_t x = 0;
    for (; x + 8 <= W; x += 8) {
      __m128 a = _mm_setzero_ps(), b = _mm_setzero_ps();
      for (int32_t i = 0; i < K; ++i) {
        const float* hi = h[i] + at + x;
        a = _mm_add_ps(a, _mm_mul_ps(wv[i], _mm_loadu_ps(hi)));
        b = _mm_add_ps(b, _mm_mul_ps(wv[i], _mm_loadu_ps(hi + 4)));
      }
      _mm_storeu_ps(d + x, a);
      _mm_storeu_ps(d + x + 4, b);
    }
    for (; x < W; ++x) {
      float acc = 0.0f;
      for (int32_t i = 0; i < K; ++i) acc = acc + wy[i] * h[i][at + x];
      d[x] = acc;
    }
  }
  return;
#endif
  for (int32_t c = 0; c < C; ++c) {
    float* __restrict d = dst + (size_t)c * cs;
    const size_t at = (size_t)c * W;
    const float* __restrict h0 = h[0] + at;
    const float w0 = wy[0];
    if (K == 2) {
      const float* __restrict h1 = h[1] + at;
      const float w1 = wy[1];
      for (int32_t x = 0; x < W; ++x) {
        float acc = 0.0f;
        acc = acc + w0 * h0[x];
        d[x] = acc + w1 * h1[x];
      }
      continue;
    }
    for (int32_t x = 0; x < W; ++x) {
      float acc = 0.0f;
      d[x] = acc + w0 * h0[x];
    }
    for (int32_t i = 1; i < K; ++i) {
      const float* __restrict hi = h[i] + at;
      const float wi = wy[i];
      for (int32_t x = 0; x < W; ++x) d[x] = d[x] + wi * hi[x];
    }
  }
}

// Decodes sample s's enabled ops from .. to - 1 (the block was checked) into row steps, for an
// H x W image entering op `from` with inC channels (ERASE boxes are clipped to it).
void decodeSteps(const Job& job, const float* block, size_t from, size_t to, int32_t imgH, int32_t imgW, std::vector<Step>& steps) {
  steps.clear();
  int32_t C = job.inC;
  for (size_t k = from; k < to; ++k) {
    const float* p = block + job.opOffsets[k];
    if (p[0] == 0.0f) continue;
    Step st{};
    st.C = C;
    st.Cout = C;
    switch (job.program[k]) {
      case kAffine:
        st.kind = Step::Affine;
        st.a = p + 1;
        steps.push_back(st);
        break;
      case kGray:
        st.kind = Step::Gray;
        st.Cout = (int32_t)p[1];
        C = st.Cout;
        steps.push_back(st);
        break;
      case kJitter: {
        const int order = (int)p[2];
        st.bound = p[1];
        for (int t = 0; t < 4; ++t) {
          const int which = jitterStep(order, t);
          const float f = p[3 + which];
          if (std::isnan(f)) continue;  // that adjustment is left out
          st.kind = which == 0 ? Step::Brightness : which == 1 ? Step::Contrast : which == 2 ? Step::Saturation : Step::Hue;
          st.f = f;
          steps.push_back(st);
        }
        break;
      }
      case kAutocontrast:
      case kEqualize:
        st.kind = job.program[k] == kAutocontrast ? Step::Autocontrast : Step::Equalize;
        st.bound = p[1];
        steps.push_back(st);
        break;
      case kPermute:
        st.kind = Step::Permute;
        st.a = p + 1;
        steps.push_back(st);
        break;
      case kSharpness:
        st.kind = Step::Sharpness;
        st.bound = p[1];
        st.f = p[2];
        steps.push_back(st);
        break;
      case kNoise:
        st.kind = Step::Noise;
        st.bound = p[1];
        st.a = p + 2;  // mean, sigma, clip
        st.keyA = blpixel::noiseKeyA(p[5], p[6]);
        st.keyB = blpixel::noiseKeyB(p[7]);
        steps.push_back(st);
        break;
      case kInvert:
      case kSolarize:
      case kPosterize:
        st.kind = job.program[k] == kInvert ? Step::Invert : job.program[k] == kSolarize ? Step::Solarize : Step::Posterize;
        st.bound = p[1];
        st.f = job.program[k] == kInvert ? 0.0f : p[2];
        steps.push_back(st);
        break;
      case kWarpOp:
        st.kind = Step::WarpOp;
        st.a = p + 1;  // mode, fill[C], m[9]
        steps.push_back(st);
        break;
      case kMixBegin:
      case kMixNext:
      case kMixEnd:
        st.kind = job.program[k] == kMixBegin ? Step::MixBegin : job.program[k] == kMixNext ? Step::MixNext : Step::MixEnd;
        st.f = p[1];
        steps.push_back(st);
        break;
      case kErase: {
        const int64_t H = imgH, W = imgW;
        const int64_t y0 = (int64_t)p[1], x0 = (int64_t)p[2], h = (int64_t)p[3], w = (int64_t)p[4];
        st.kind = Step::Erase;
        st.y0 = (int32_t)std::min(y0, H);
        st.y1 = (int32_t)std::min(y0 + h, H);
        st.x0 = (int32_t)std::min(x0, W);
        st.x1 = (int32_t)std::min(x0 + w, W);
        st.a = p + 5;
        if (st.y0 < st.y1 && st.x0 < st.x1) steps.push_back(st);
        break;
      }
    }
  }
}

using blpixel::inWindow;  // a window of the warp block holds a pixel (pixel_math.h)

}  // namespace

// Weight of the bilinear corners of a point inside a w x h frame (nearest: 1 or 0). An affine
// map at a finite point skips the division by Wd = 1 (exact), as warpRows does.
static inline float frameMask(const float* q, int32_t fh, int32_t fw, float px, float py, bool nearest) {
  const float X = (q[0] * px + q[1] * py) + q[2];
  const float Y = (q[3] * px + q[4] * py) + q[5];
  float ix, iy;
  if (q[6] == 0.0f && q[7] == 0.0f && q[8] == 1.0f && std::isfinite(px) && std::isfinite(py)) {
    ix = X - 0.5f;
    iy = Y - 0.5f;
  } else {
    const float Wd = (q[6] * px + q[7] * py) + q[8];
    ix = X / Wd - 0.5f;
    iy = Y / Wd - 0.5f;
  }
  if (!(std::fabs(ix) <= kWarpRange && std::fabs(iy) <= kWarpRange)) return 0.0f;
  const auto inside = [&](int32_t sx, int32_t sy) { return sx >= 0 && sx < fw && sy >= 0 && sy < fh; };
  if (nearest) return inside((int32_t)std::nearbyint(ix), (int32_t)std::nearbyint(iy)) ? 1.0f : 0.0f;
  const float x0f = std::floor(ix), y0f = std::floor(iy);
  const int32_t x0 = (int32_t)x0f, y0 = (int32_t)y0f;
  const float fx = ix - x0f, fy = iy - y0f;
  const float gx = 1.0f - fx, gy = 1.0f - fy;
  float mask = 0.0f;
  for (int k = 0; k < 4; ++k)
    if (inside(x0 + (k & 1), y0 + (k >> 1))) mask = mask + ((k & 1) ? fx : gx) * ((k >> 1) ? fy : gy);
  return mask;
}

namespace {

#if BATCHLAB_SSE && !defined(BATCHLAB_WARP_SCALAR)
#define BATCHLAB_SSE_WARP 1  // four pixels at a time: warp_lanes.h with Sse4 lanes
#if defined(BATCHLAB_WITH_AVX2)
#define BATCHLAB_AVX2_WARP 1  // eight at a time where the processor has AVX2: warp_avx2.cc
#endif
#endif

#if BATCHLAB_AVX2_WARP
// Whether the warp runs on AVX2 lanes: the processor has AVX2 and BATCHLAB_SIMD is not "sse4"
// (which keeps the baseline's four lanes, for tests that compare the two; the JavaScript side
// checks the variable's value).
bool avx2Lanes() {
  static const bool on = [] {
    const char* v = std::getenv("BATCHLAB_SIMD");
    return __builtin_cpu_supports("avx2") && !(v && std::strcmp(v, "sse4") == 0);
  }();
  return on;
}
#endif

// warpSample for CC channels (0: any) and one interpolation: the same operations in the same
// order as the ABI; the template only lets the compiler keep a pixel's channels in registers.
// Interior points (all four corners in both windows) skip the per-corner window tests, and an
// affine map (m6 = m7 = 0, m8 = 1, at a finite point) skips the division by Wd = 1 (exact).
// Rows y0 .. y1 - 1 from column xFrom (the columns before it are written: warpRowsAvx2); with
// SSE, four pixels at a time (warp_lanes.h) and the last few columns here.
template <int CC, bool Nearest, typename T>
void warpRows(const T* src, int32_t sw, int32_t Crt, const float* blk, const float* fill, int32_t oh, int32_t ow, float* out,
              size_t pixStride, size_t chanStride, size_t rowStride, int32_t yBegin, int32_t yEnd, const WarpPost* post, int32_t xFrom) {
  const int32_t C = CC > 0 ? CC : Crt;
  const float* m = blk + 1;
  const float* dom = blk + 10;
  const float* real = blk + 14;
  const int32_t F = (int32_t)blk[18];
  const int32_t G = (int32_t)blk[kWarpBlock - 1];
  const float* grid = blk + kWarpBlock;
  const float fow = (float)ow, foh = (float)oh;
  const bool affine = m[6] == 0.0f && m[7] == 0.0f && m[8] == 1.0f;
  const size_t srcRow = (size_t)sw * (size_t)C;
  float v[CC > 0 ? CC : kMaxChannels];
#if BATCHLAB_SSE_WARP
  xFrom = lanes::warpRowsLanes<lanes::Sse4, CC, Nearest, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, yBegin, yEnd,
                                                            post, xFrom);
#endif
  for (int32_t y = yBegin; y < yEnd; ++y) {
    const float yc = (float)y + 0.5f;
    for (int32_t x = xFrom; x < ow; ++x) {
      const float xc = (float)x + 0.5f;
      float px = xc, py = yc;
      if (G > 0) blpixel::addDisplacement(grid, G, xc, yc, fow, foh, &px, &py);
      const float X = (m[0] * px + m[1] * py) + m[2];
      const float Y = (m[3] * px + m[4] * py) + m[5];
      float ix, iy;
      if (affine && std::isfinite(px) && std::isfinite(py)) {  // Wd = (0*px + 0*py) + 1 = 1 exactly
        ix = X - 0.5f;
        iy = Y - 0.5f;
      } else {
        const float Wd = (m[6] * px + m[7] * py) + m[8];
        ix = X / Wd - 0.5f;
        iy = Y / Wd - 0.5f;
      }
      float* o = out + (size_t)y * rowStride + (size_t)x * pixStride;
      const bool inRange = std::fabs(ix) <= kWarpRange && std::fabs(iy) <= kWarpRange;  // false for NaN
      if (Nearest) {
        const int32_t nx = inRange ? (int32_t)std::nearbyint(ix) : 0;
        const int32_t ny = inRange ? (int32_t)std::nearbyint(iy) : 0;
        if (inRange && inWindow(real, nx, ny)) {
          const T* p = src + (size_t)ny * srcRow + (size_t)nx * (size_t)C;
          for (int32_t c = 0; c < C; ++c) v[c] = (float)p[c];
        } else {
          for (int32_t c = 0; c < C; ++c) v[c] = fill[c];
        }
      } else {
        float mask = 0.0f;
        for (int32_t c = 0; c < C; ++c) v[c] = 0.0f;
        if (inRange) {
          const float x0f = std::floor(ix), y0f = std::floor(iy);
          const int32_t x0 = (int32_t)x0f, y0 = (int32_t)y0f;
          const float fx = ix - x0f, fy = iy - y0f;
          const float gx = 1.0f - fx, gy = 1.0f - fy;
          if (inWindow(real, x0, y0) && inWindow(real, x0 + 1, y0 + 1) && inWindow(dom, x0, y0) && inWindow(dom, x0 + 1, y0 + 1)) {
            const float w0 = gx * gy, w1 = fx * gy, w2 = gx * fy, w3 = fx * fy;
            mask = mask + w0;
            mask = mask + w1;
            mask = mask + w2;
            mask = mask + w3;
            const T* p0 = src + (size_t)y0 * srcRow + (size_t)x0 * (size_t)C;
            const T* p2 = p0 + srcRow;
            for (int32_t c = 0; c < C; ++c) {
              float a = v[c] + w0 * (float)p0[c];
              a = a + w1 * (float)p0[C + c];
              a = a + w2 * (float)p2[c];
              v[c] = a + w3 * (float)p2[C + c];
            }
          } else {
            for (int k = 0; k < 4; ++k) {
              const int32_t sx = x0 + (k & 1), sy = y0 + (k >> 1);
              if (!inWindow(dom, sx, sy)) continue;
              const float w = ((k & 1) ? fx : gx) * ((k >> 1) ? fy : gy);
              mask = mask + w;
              if (inWindow(real, sx, sy)) {
                const T* p = src + (size_t)sy * srcRow + (size_t)sx * (size_t)C;
                for (int32_t c = 0; c < C; ++c) v[c] = v[c] + w * (float)p[c];
              } else {
                for (int32_t c = 0; c < C; ++c) v[c] = v[c] + w * fill[c];
              }
            }
          }
        }
        const float rest = 1.0f - mask;
        for (int32_t c = 0; c < C; ++c) v[c] = v[c] * mask + rest * fill[c];
      }
      for (int32_t f = 0; f < F; ++f) {
        const float* fr = blk + 19 + 11 * f;
        const float mk = frameMask(fr, (int32_t)fr[9], (int32_t)fr[10], px, py, Nearest);
        const float rest = 1.0f - mk;
        for (int32_t c = 0; c < C; ++c) v[c] = (v[c] * mk) * mk + rest * fill[c];
      }
      if (post) {
        for (int32_t c = 0; c < C; ++c) {
          float a = 0.0f + v[c];
          for (int32_t i = 0; i < post->nAffine; ++i) a = affine1(a, post->affine[i][c], post->affine[i][C + c]);
          v[c] = a;
        }
      }
      for (int32_t c = 0; c < C; ++c) o[(size_t)c * chanStride] = v[c];
    }
  }
}

// The bicubic warp (warp = 3): the source point as warpRows computes it, then pixel_math.h's
// warpBicubic and, per frame, cubicFrameMask (the same functions as the CUDA kernel's).
template <int CC, typename T>
void warpBicubicRows(const T* src, int32_t sw, int32_t Crt, const float* blk, const float* fill, int32_t oh, int32_t ow, float* out,
                     size_t pixStride, size_t chanStride, size_t rowStride, int32_t yBegin, int32_t yEnd, const WarpPost* post) {
  const int32_t C = CC > 0 ? CC : Crt;
  constexpr int MAXC = CC > 0 ? CC : kMaxChannels;
  const float* m = blk + 1;
  const float* dom = blk + 10;
  const float* real = blk + 14;
  const int32_t F = (int32_t)blk[18];
  const int32_t G = (int32_t)blk[kWarpBlock - 1];
  const float* grid = blk + kWarpBlock;
  const float fow = (float)ow, foh = (float)oh;
  const size_t srcRow = (size_t)sw * (size_t)C;
  const auto read = [&](int sy, int sx, float* p) {
    const T* q = src + (size_t)sy * srcRow + (size_t)sx * (size_t)C;
    for (int32_t c = 0; c < C; ++c) p[c] = (float)q[c];
  };
  float v[MAXC];
  for (int32_t y = yBegin; y < yEnd; ++y) {
    const float yc = (float)y + 0.5f;
    for (int32_t x = 0; x < ow; ++x) {
      const float xc = (float)x + 0.5f;
      float px = xc, py = yc;
      if (G > 0) blpixel::addDisplacement(grid, G, xc, yc, fow, foh, &px, &py);
      float ix, iy;
      blpixel::warpPoint(m, px, py, &ix, &iy);
      if (std::fabs(ix) <= kWarpRange && std::fabs(iy) <= kWarpRange) {  // false for NaN
        blpixel::warpBicubic<MAXC>(ix, iy, dom, real, fill, C, read, v);
      } else {
        for (int32_t c = 0; c < C; ++c) v[c] = 0.0f + fill[c];  // mask 0: 0 * 0 + 1 * fill, as the blend
      }
      for (int32_t f = 0; f < F; ++f) {
        const float* fr = blk + 19 + 11 * f;
        const float mk = blpixel::cubicFrameMask(fr, (int32_t)fr[9], (int32_t)fr[10], px, py);
        const float rest = 1.0f - mk;
        for (int32_t c = 0; c < C; ++c) v[c] = (v[c] * mk) * mk + rest * fill[c];
      }
      if (post) {  // the geometry's 0 + v and the leading AFFINE ops, as warpRows does them
        for (int32_t c = 0; c < C; ++c) {
          float a = 0.0f + v[c];
          for (int32_t i = 0; i < post->nAffine; ++i) a = affine1(a, post->affine[i][c], post->affine[i][C + c]);
          v[c] = a;
        }
      }
      float* o = out + (size_t)y * rowStride + (size_t)x * pixStride;
      for (int32_t c = 0; c < C; ++c) o[(size_t)c * chanStride] = v[c];
    }
  }
}

template <typename T>
void warpBicubicC(const T* src, int32_t sw, int32_t C, const float* blk, const float* fill, int32_t oh, int32_t ow, float* out,
                  size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post) {
  switch (C) {
    case 1: return warpBicubicRows<1, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
    case 3: return warpBicubicRows<3, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
    case 4: return warpBicubicRows<4, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
    default: return warpBicubicRows<0, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
  }
}

template <bool Nearest, typename T>
void warpRowsC(const T* src, int32_t sw, int32_t C, const float* blk, const float* fill, int32_t oh, int32_t ow, float* out,
               size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post) {
  int32_t x = 0;
#if BATCHLAB_AVX2_WARP
  if (avx2Lanes()) x = warpRowsAvx2(src, sw, C, blk, Nearest ? kWarpNearest : kWarpBilinear, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
#endif
  switch (C) {
    case 1: return warpRows<1, Nearest, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post, x);
    case 3: return warpRows<3, Nearest, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post, x);
    case 4: return warpRows<4, Nearest, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post, x);
    default: return warpRows<0, Nearest, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post, x);
  }
}

}  // namespace

void warpDisplace(const float* grid, int32_t G, int32_t x, float yc, float fow, float foh, int n, float* px, float* py) {
  for (int l = 0; l < n; ++l) blpixel::addDisplacement(grid, G, (float)(x + l) + 0.5f, yc, fow, foh, &px[l], &py[l]);
}

const char* warpLanesName() {
#if BATCHLAB_AVX2_WARP
  if (avx2Lanes()) return "avx2 (8 lanes)";
#endif
#if BATCHLAB_SSE_WARP
  return "sse4.1 (4 lanes)";
#else
  return "scalar";
#endif
}

void warpSample(const uint8_t* src, int32_t sh, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill,
                int32_t oh, int32_t ow, float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1,
                const WarpPost* post) {
  (void)sh;  // the real window (checked against sh, sw) bounds every read
  if (mode == kWarpNearest) warpRowsC<true, uint8_t>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
  else if (mode == kWarpBicubic) warpBicubicC<uint8_t>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
  else warpRowsC<false, uint8_t>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
}

void warpSample(const float* src, int32_t sh, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill,
                int32_t oh, int32_t ow, float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1,
                const WarpPost* post) {
  (void)sh;
  if (mode == kWarpNearest) warpRowsC<true, float>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
  else if (mode == kWarpBicubic) warpBicubicC<float>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
  else warpRowsC<false, float>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
}

namespace {

// The pass before the warp (the ABI's geometry formula, into an oh x ow HWC float image): the
// horizontal sums of each source row are computed once (they depend only on the row and the
// output column), then combined vertically in tap order, as the ABI's loop nest does them.
void prePass(const uint8_t* src, int32_t sh, int32_t sw, int32_t C, const int32_t* taps, const float* weights, int32_t K, int32_t oh,
             int32_t ow, const float* fill, std::vector<float>& rows, float* out) {
  const int32_t* ty = taps;
  const int32_t* tx = taps + (size_t)oh * K;
  const float* wy = weights;
  const float* wx = weights + (size_t)oh * K;
  const size_t rowFloats = (size_t)ow * (size_t)C;
  // K = 1 with every weight 1 (crops, flips, constant pads): the formula's value is the source
  // byte exactly, or 0 + 1 * (0 + 1 * fill) for a fill tap (unitGeometry): a gather.
  bool unit = K == 1;
  for (int32_t i = 0; unit && i < oh + ow; ++i) unit = weights[i] == 1.0f;
  if (unit) {
    float fillValue[kMaxChannels];
    for (int32_t c = 0; c < C; ++c) fillValue[c] = unitGeometry(fill[c]);
    for (int32_t y = 0; y < oh; ++y) {
      float* o = out + (size_t)y * rowFloats;
      const int32_t r = ty[y];
      const uint8_t* srow = r < 0 ? nullptr : src + (size_t)r * (size_t)sw * (size_t)C;
      for (int32_t x = 0; x < ow; ++x, o += C) {
        const int32_t q = tx[x];
        if (srow == nullptr || q < 0) {
          for (int32_t c = 0; c < C; ++c) o[c] = fillValue[c];
        } else {
          const uint8_t* px = srow + (size_t)q * (size_t)C;
          for (int32_t c = 0; c < C; ++c) o[c] = (float)px[c];
        }
      }
    }
    return;
  }
  rows.assign((size_t)(sh + 1) * rowFloats, 0.0f);
  std::vector<bool> used((size_t)sh + 1, false);
  for (size_t i = 0; i < (size_t)oh * K; ++i) used[ty[i] < 0 ? (size_t)sh : (size_t)ty[i]] = true;
  for (int32_t r = 0; r <= sh; ++r) {
    if (!used[(size_t)r]) continue;
    float* h = rows.data() + (size_t)r * rowFloats;
    const uint8_t* srow = r < sh ? src + (size_t)r * (size_t)sw * (size_t)C : nullptr;
    for (int32_t x = 0; x < ow; ++x) {
      for (int32_t c = 0; c < C; ++c) {
        float acc = 0.0f;
        for (int32_t j = 0; j < K; ++j) {
          const int32_t q = tx[(size_t)x * K + j];
          const float v = (srow == nullptr || q < 0) ? fill[c] : (float)srow[(size_t)q * C + c];
          acc = acc + wx[(size_t)x * K + j] * v;
        }
        h[(size_t)x * C + c] = acc;
      }
    }
  }
  for (int32_t y = 0; y < oh; ++y) {
    float* o = out + (size_t)y * rowFloats;
    for (size_t k = 0; k < rowFloats; ++k) o[k] = 0.0f;
    for (int32_t i = 0; i < K; ++i) {
      const int32_t r = ty[(size_t)y * K + i];
      const float w = wy[(size_t)y * K + i];
      const float* h = rows.data() + (size_t)(r < 0 ? sh : r) * rowFloats;
      for (size_t k = 0; k < rowFloats; ++k) o[k] = o[k] + w * h[k];
    }
  }
}

}  // namespace

// The ops before the warp of sample s (job.warpOps > 0), into sc.pre.
std::string opsBeforeWarp(const Job& job, int32_t s, Scratch& sc, const uint8_t* src, const float* pre, int32_t H, int32_t W, bool* ran);

// The passes of sample s after its geometry pass (contrast steps, the copy to out).
std::string finishSample(const Job& job, int32_t s, Scratch& sc, const Step* steps, size_t nSteps, size_t segEnd, double sum, float* img,
                         float* slot);

// The first step at or after `from` that needs the whole image (a pass of its own), or n.
size_t nextReduction(const Step* steps, size_t from, size_t n) {
  size_t i = from;
  while (i < n && steps[i].kind != Step::Contrast && steps[i].kind != Step::Autocontrast && steps[i].kind != Step::Equalize &&
         steps[i].kind != Step::Sharpness && steps[i].kind != Step::WarpOp && steps[i].kind != Step::MixBegin && steps[i].kind != Step::MixNext &&
         steps[i].kind != Step::MixEnd)
    ++i;
  return i;
}

// Sums gray for the next step when that step is a contrast (the others read the finished image).
inline double sumFor(const Step* steps, size_t segEnd, size_t nSteps, const float* row, size_t cs, int32_t W, double sum) {
  return segEnd < nSteps && steps[segEnd].kind == Step::Contrast ? grayRowSum(row, cs, W, steps[segEnd].C, sum) : sum;
}

// AUTOCONTRAST on the whole image (planes of `plane` floats): per channel min and max (NaN
// passed over, -0 below 0), then (x - min) * scale, clamped.
void autocontrastImage(float* img, size_t plane, const Step& st) {
  for (int32_t c = 0; c < st.C; ++c) {
    float* v = img + (size_t)c * plane;
    float lo = INFINITY, hi = -INFINITY;
    size_t i = 0;
#if BATCHLAB_SSE
    // Four lanes of the scan: min/max passing NaN over (_mm_min_ps(x, lo) is x < lo ? x : lo),
    // and whether a -0 or a +0 was seen, which decides the sign of a zero result as the scalar
    // rule does (the result does not depend on the order of the scan).
    __m128 l4 = _mm_set1_ps(INFINITY), h4 = _mm_set1_ps(-INFINITY), negZero = _mm_setzero_ps(), posZero = _mm_setzero_ps();
    const __m128 sign = _mm_set1_ps(-0.0f);
    for (; i + 4 <= plane; i += 4) {
      const __m128 x = _mm_loadu_ps(v + i);
      l4 = _mm_min_ps(x, l4);
      h4 = _mm_max_ps(x, h4);
      const __m128 zero = _mm_cmpeq_ps(x, _mm_setzero_ps());
      const __m128 neg = _mm_cmpneq_ps(_mm_and_ps(x, sign), _mm_setzero_ps());
      negZero = _mm_or_ps(negZero, _mm_and_ps(zero, neg));
      posZero = _mm_or_ps(posZero, _mm_andnot_ps(neg, zero));
    }
    float l[4], h[4];
    _mm_storeu_ps(l, l4);
    _mm_storeu_ps(h, h4);
    for (int k = 0; k < 4; ++k) {
      if (l[k] < lo) lo = l[k];
      if (h[k] > hi) hi = h[k];
    }
    // The scalar rule's zero: the lowest is -0 once a -0 was seen, the highest +0 once a +0 was.
    const bool sawNeg = _mm_movemask_ps(negZero) != 0, sawPos = _mm_movemask_ps(posZero) != 0;
    if (lo == 0.0f) lo = sawNeg ? -0.0f : 0.0f;
    if (hi == 0.0f) hi = sawPos ? 0.0f : -0.0f;
#endif
    for (; i < plane; ++i) {
      const float x = v[i];
      if (x < lo || (x == 0.0f && lo == 0.0f && std::signbit(x))) lo = x;
      if (x > hi || (x == 0.0f && hi == 0.0f && std::signbit(hi))) hi = x;
    }
    float min, scale;
    blpixel::autocontrastScale(lo, hi, st.bound, &min, &scale);
    size_t k = 0;
#if BATCHLAB_SSE
    const __m128 m4 = _mm_set1_ps(min), s4 = _mm_set1_ps(scale), b4 = _mm_set1_ps(st.bound);
    for (; k + 4 <= plane; k += 4) _mm_storeu_ps(v + k, clampLanes(_mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(v + k), m4), s4), b4));
#endif
    for (; k < plane; ++k) v[k] = blpixel::autocontrast1(v[k], min, scale, st.bound);
  }
}


// SHARPNESS on the whole image (H x W planes), from a copy of each plane. Interior pixels four
// at a time with SSE: each lane sums its nine neighbours in sharpSmoothed's order from 0 and
// blends as sharpBlend does (separate multiplies and adds), so the bits are the scalar ones.
void sharpnessImage(float* img, int32_t H, int32_t W, const Step& st, std::vector<float>& copy) {
  if (H <= 2 || W <= 2) return;  // as torchvision: such an image passes unchanged
  const size_t plane = (size_t)H * (size_t)W;
  copy.resize(plane);
  for (int32_t c = 0; c < st.C; ++c) {
    float* v = img + (size_t)c * plane;
    std::memcpy(copy.data(), v, plane * sizeof(float));
    const float* u = copy.data();
    for (int32_t y = 0; y < H; ++y) {
      int32_t x = 0;
#if BATCHLAB_SSE
      if (y > 0 && y < H - 1) {
        // x = 0 is a border pixel (below); the interior from x = 1 in groups of four.
        const float side = 1.0f / 13.0f, centre = 5.0f / 13.0f;
        const __m128 ws = _mm_set1_ps(side), wc = _mm_set1_ps(centre);
        const __m128 f = _mm_set1_ps(st.f), g = _mm_set1_ps(1.0f - st.f), bound = _mm_set1_ps(st.bound);
        const size_t r = (size_t)y * W;
        v[r] = blpixel::sharpBlend(u[r], u[r], st.f, st.bound);
        for (x = 1; x + 4 <= W - 1; x += 4) {
          const float* n0 = u + r - W + x - 1;
          const float* n1 = u + r + x - 1;
          const float* n2 = u + r + W + x - 1;
          __m128 sum = _mm_setzero_ps();
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n0)));
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n0 + 1)));
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n0 + 2)));
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n1)));
          const __m128 self = _mm_loadu_ps(n1 + 1);
          sum = _mm_add_ps(sum, _mm_mul_ps(wc, self));
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n1 + 2)));
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n2)));
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n2 + 1)));
          sum = _mm_add_ps(sum, _mm_mul_ps(ws, _mm_loadu_ps(n2 + 2)));
          const __m128 blend = _mm_add_ps(_mm_mul_ps(f, self), _mm_mul_ps(g, sum));
          _mm_storeu_ps(v + r + x, clampLanes(blend, bound));
        }
      }
#endif
      for (; x < W; ++x) {
        const size_t i = (size_t)y * W + x;
        float smoothed = u[i];
        if (y > 0 && y < H - 1 && x > 0 && x < W - 1) {
          const float n[9] = {u[i - W - 1], u[i - W], u[i - W + 1], u[i - 1], u[i], u[i + 1], u[i + W - 1], u[i + W], u[i + W + 1]};
          smoothed = blpixel::sharpSmoothed(n);
        }
        v[i] = blpixel::sharpBlend(u[i], smoothed, st.f, st.bound);
      }
    }
  }
}

// EQUALIZE on the whole image: per channel the histogram of levels (each value's level kept in
// `levels`), torchvision's table, then each value's level through it.
void equalizeImage(float* img, size_t plane, const Step& st, std::vector<uint8_t>& levels) {
  uint32_t hist[256];
  int lut[256];
  float value[256];
  levels.resize(plane);
  uint8_t* q = levels.data();
  uint32_t part[4][256];  // the histogram in four parts (pixel i % 4), so that increments of one bin do not wait on each other
  for (int32_t c = 0; c < st.C; ++c) {
    float* v = img + (size_t)c * plane;
    size_t i = 0;
#if BATCHLAB_SSE
    const bool b255 = st.bound == 255.0f;
    for (; i + 4 <= plane; i += 4) {  // level1 four values at a time (levelLanes), packed to bytes
      const __m128i l = levelLanes(_mm_loadu_ps(v + i), b255);
      const int32_t bytes = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packus_epi32(l, l), _mm_setzero_si128()));
      std::memcpy(q + i, &bytes, 4);
    }
#endif
    for (; i < plane; ++i) q[i] = (uint8_t)blpixel::level1(v[i], st.bound);
    std::memset(part, 0, sizeof part);
    i = 0;
    for (; i + 4 <= plane; i += 4) {
      ++part[0][q[i]];
      ++part[1][q[i + 1]];
      ++part[2][q[i + 2]];
      ++part[3][q[i + 3]];
    }
    for (; i < plane; ++i) ++part[0][q[i]];
    for (int l = 0; l < 256; ++l) hist[l] = part[0][l] + part[1][l] + part[2][l] + part[3][l];
    blpixel::equalizeTable(hist, lut);
    for (int l = 0; l < 256; ++l) value[l] = blpixel::fromLevel(lut[l], st.bound);
    for (size_t i = 0; i < plane; ++i) v[i] = value[q[i]];
  }
}

// WARP on the whole image (H x W planes of st.C channels): interleaved into `hwc`, then the
// warp pass's resampling through the op's map with windows of the whole image, no frames and
// no displacement, back into the planes.
void warpOpImage(float* img, int32_t H, int32_t W, const Step& st, std::vector<float>& hwc) {
  const int32_t C = st.C;
  const size_t plane = (size_t)H * (size_t)W;
  hwc.resize(plane * (size_t)C);
  toInterleaved(img, plane, C, hwc.data());
  const float* a = st.a;  // mode, fill[C], m[9]
  float blk[kWarpBlock] = {};
  blk[0] = 1.0f;
  for (int i = 0; i < 9; ++i) blk[1 + i] = a[1 + C + i];
  const float whole[4] = {0.0f, 0.0f, (float)W, (float)H};
  for (int i = 0; i < 4; ++i) blk[10 + i] = blk[14 + i] = whole[i];
  warpSample(hwc.data(), H, W, C, blk, (int32_t)a[0], a + 1, H, W, img, 1, plane, (size_t)W, 0, H);
}

// MIX_BEGIN / MIX_NEXT / MIX_END on the image's n values (PLAN_ABI.md): the group's image O and
// its sum A live in the scratch while the group runs.
void mixImage(float* img, size_t n, const Step& st, Scratch& sc) {
  const float w = st.f;
  if (st.kind == Step::MixBegin) {
    sc.mixOrigin.assign(img, img + n);
    sc.mixSum.resize(n);
    float* a = sc.mixSum.data();
    for (size_t i = 0; i < n; ++i) a[i] = w * img[i];
    return;
  }
  float* a = sc.mixSum.data();
  for (size_t i = 0; i < n; ++i) a[i] = a[i] + w * img[i];
  std::memcpy(img, st.kind == Step::MixNext ? sc.mixOrigin.data() : a, n * sizeof(float));
}

// The separable pass with the horizontal sums four source rows at a time (filterQuad): every
// source row the sample's row taps read is filtered once into sc.hrows, in increasing row order
// and only as far as the output rows so far need, then each output row combines its K rows
// (combineRows) and runs the program's first steps. The same operations in the same order as
// the row-cache form below; returns false (nothing written) where it does not apply: no SSE, or
// a table of filtered rows too large to hold.
bool separableQuads(const Job& job, Scratch& sc, const uint8_t* src, const float* warped, int32_t srcH, size_t srcRowBytes, int32_t K, int32_t W,
                    int32_t H, const int32_t* tx, const int32_t* ty, const float* wx, const float* wy, float* img, size_t plane, const Step* steps,
                    size_t nSteps, size_t& segEnd, double& sum) {
#if !BATCHLAB_SSE
  (void)job, (void)sc, (void)src, (void)warped, (void)srcH, (void)srcRowBytes, (void)K, (void)W, (void)H, (void)tx, (void)ty, (void)wx, (void)wy,
      (void)img, (void)plane, (void)steps, (void)nSteps, (void)segEnd, (void)sum;
  return false;
#else
  const int32_t inC = job.inC;
  int32_t q0 = std::numeric_limits<int32_t>::max(), q1 = -1;
  for (size_t i = 0; i < (size_t)W * K; ++i) {
    if (tx[i] >= 0) {
      q0 = std::min(q0, tx[i]);
      q1 = std::max(q1, tx[i]);
    }
  }
  if (q1 < 0) q0 = 0;
  const int32_t used = q1 - q0 + 1;
  const size_t n = (size_t)used * inC;  // values per source row read
  // The rows read, numbered in increasing order (the fill row, -1, first).
  sc.rowPos.assign((size_t)srcH + 1, -1);
  for (size_t i = 0; i < (size_t)H * K; ++i) sc.rowPos[(size_t)ty[i] + 1] = 0;
  sc.rowList.clear();
  for (int32_t r = -1; r < srcH; ++r) {
    if (sc.rowPos[(size_t)r + 1] < 0) continue;
    sc.rowPos[(size_t)r + 1] = (int32_t)sc.rowList.size();
    sc.rowList.push_back(r);
  }
  const size_t nRef = sc.rowList.size();
  const size_t rowFloats = (size_t)inC * W;
  if (nRef * rowFloats > ((size_t)1 << 22)) return false;  // more than 16 MiB a thread: the row cache instead
  try {
    sc.hrows.resize(nRef * rowFloats);
    sc.quad.resize((n + inC) * 4);
    sc.srcRow.resize(n + inC);
    sc.colIndex.resize((size_t)W * K);
  } catch (const std::bad_alloc&) {
    return false;
  }
  for (size_t i = 0; i < (size_t)W * K; ++i) sc.colIndex[i] = (tx[i] < 0 ? used : tx[i] - q0) * inC;
  float* q = sc.quad.data();
  for (int32_t c = 0; c < inC; ++c)
    for (int l = 0; l < 4; ++l) q[(n + c) * 4 + l] = job.fill[c];  // the fill pixel of every lane
  float* fillRow = sc.srcRow.data();  // a source row of fill values
  for (size_t k = 0; k < n; ++k) fillRow[k] = job.fill[k % (size_t)inC];
  const QuadFn filter = pickQuad(inC, K);
  const float* h[kMaxTaps];
  size_t done = 0;
  segEnd = nextReduction(steps, 0, nSteps);
  for (int32_t y = 0; y < H; ++y) {
    size_t need = 0;
    for (int32_t i = 0; i < K; ++i) need = std::max(need, (size_t)sc.rowPos[(size_t)ty[(size_t)y * K + i] + 1] + 1);
    while (done < need) {
      const int32_t nq = (int32_t)std::min<size_t>(4, nRef - done);
      int32_t r[4];
      for (int l = 0; l < 4; ++l) r[l] = sc.rowList[done + (size_t)std::min(l, nq - 1)];
      if (!warped && r[0] >= 0) {
        const uint8_t* u[4];
        for (int l = 0; l < 4; ++l) u[l] = src + (size_t)r[l] * srcRowBytes + (size_t)q0 * inC;
        const uint8_t* next[4];
        // The next quad's rows, a cache line of each as this one consumes one (measured: about
        // 1.25x on a 1024 x 768 downscale, whose rows come from memory; a whole-row prefetch up
        // front, or a non-temporal one, was slower than none).
        const bool ahead = done + 4 < nRef && sc.rowList[done + 4] >= 0;
        for (int l = 0; ahead && l < 4; ++l) next[l] = src + (size_t)sc.rowList[std::min(done + 4 + l, nRef - 1)] * srcRowBytes + (size_t)q0 * inC;
        interleaveBytes(u, n, q, ahead ? next : nullptr);
      } else if (warped) {
        const float* f[4];
        for (int l = 0; l < 4; ++l) f[l] = r[l] < 0 ? fillRow : warped + (size_t)r[l] * srcRowBytes + (size_t)q0 * inC;
        interleaveFloats(f, n, q);
      } else {
        // The fill row with source rows (it sorts first): value by value.
        for (size_t p = 0; p < n; ++p)
          for (int l = 0; l < 4; ++l) q[p * 4 + l] = r[l] < 0 ? fillRow[p] : (float)src[(size_t)r[l] * srcRowBytes + (size_t)q0 * inC + p];
      }
      float* outs[4];
      for (int l = 0; l < 4; ++l) outs[l] = sc.hrows.data() + (done + (size_t)std::min(l, nq - 1)) * rowFloats;
      filter(q, sc.colIndex.data(), wx, W, inC, K, outs, nq);
      done += (size_t)nq;
    }
    for (int32_t i = 0; i < K; ++i) h[i] = sc.hrows.data() + (size_t)sc.rowPos[(size_t)ty[(size_t)y * K + i] + 1] * rowFloats;
    float* row = img + (size_t)y * W;
    combineRows(h, wy + (size_t)y * K, K, inC, W, row, plane);
    runSteps(steps, steps + segEnd, row, plane, W, y);
    sum = sumFor(steps, segEnd, nSteps, row, plane, W, sum);
  }
  return true;
#endif
}

// The pre pass with separableQuads (the geometry pass's SSE form, no steps) into planes, then
// interleaved into sc.pre (HWC floats, what the warp reads): the same bits as prePass. False
// (nothing written) where separableQuads does not apply.
bool preQuads(const Job& job, Scratch& sc, const uint8_t* src, int32_t srcH, int32_t srcW, int32_t ph, int32_t pw) {
  const int32_t C = job.inC, K = job.preK;
  const size_t plane = (size_t)ph * (size_t)pw;
  try {
    sc.prePlanes.resize(plane * (size_t)C);
  } catch (const std::bad_alloc&) {
    return false;
  }
  const int32_t* ty = sc.preTaps.data();
  const int32_t* tx = ty + (size_t)ph * K;
  const float* wy = sc.preWeights.data();
  const float* wx = wy + (size_t)ph * K;
  size_t segEnd = 0;
  double sum = 0.0;
  if (!separableQuads(job, sc, src, nullptr, srcH, (size_t)srcW * (size_t)C, K, pw, ph, tx, ty, wx, wy, sc.prePlanes.data(), plane, nullptr, 0, segEnd, sum)) return false;
  toInterleaved(sc.prePlanes.data(), plane, C, sc.pre.data());
  return true;
}

std::string runSample(const Job& job, int32_t s, Scratch& sc) {
  const int32_t H = job.outH, W = job.outW, inC = job.inC;
  int32_t K = job.K;  // the geometry pass's taps (a sample whose warp is off may take the pre pass's)
  const size_t per = job.tapsPerSample();
  const size_t plane = (size_t)H * (size_t)W;

  // Private copies of this sample's taps and parameters, checked again.
  sc.taps.resize(per);
  sc.weights.resize(per);
  sc.block.resize(job.P + 1);
  std::memcpy(sc.taps.data(), job.tapIndex + (size_t)s * per, per * sizeof(int32_t));
  std::memcpy(sc.weights.data(), job.tapWeight + (size_t)s * per, per * sizeof(float));
  if (job.P > 0) std::memcpy(sc.block.data(), job.params + (size_t)s * job.P, job.P * sizeof(float));
  {
    const Problem bad = checkSample(job, s, sc.taps.data(), sc.block.data());
    if (!bad.ok()) return "the job's arrays changed while it ran: " + bad.message();
  }
  // Samples of a shuffled epoch lie far apart in memory: ask for the next one's pixels now, so
  // that they are on their way while this one runs (a few KiB for small images; capped).
  if (s + 1 < job.n) {
    const size_t a = (size_t)s + 1;
    const size_t bytes = std::min<size_t>(job.srcBytes[a], (size_t)job.dims[2 * a] * (size_t)job.dims[2 * a + 1] * (size_t)inC);
    prefetchBytes(job.src[a], std::min<size_t>(bytes, 16384));
  }
  decodeSteps(job, sc.block.data(), (size_t)job.warpOps, job.program.size(), H, W, sc.steps);
  const Step* steps = sc.steps.data();
  const size_t nSteps = sc.steps.size();

  // Where the image lives while the program runs: the output slot, unless some point of the
  // program holds more channels than the output has.
  int32_t maxC = inC;
  for (size_t i = 0; i < nSteps; ++i) maxC = std::max(maxC, steps[i].Cout);
  float* const slot = job.out + (size_t)s * job.outPerSample();
  float* img = slot;
  if (maxC > job.outC) {
    sc.image.resize((size_t)maxC * plane);
    img = sc.image.data();
  }

  const int32_t* ty = sc.taps.data();
  const int32_t* tx = ty + (size_t)H * K;
  const float* wy = sc.weights.data();
  const float* wx = wy + (size_t)H * K;
  const uint8_t* src = job.src[s];
  int32_t srcH = job.dims[2 * (size_t)s];
  int32_t srcW = job.dims[2 * (size_t)s + 1];

  // The pass before the warp (its taps copied and checked again, as the others).
  const float* preImage = nullptr;
  if (job.warp != kWarpNone && job.preK) {
    const size_t at = job.preTapAt[(size_t)s], count = job.preTapAt[(size_t)s + 1] - at;
    const int32_t ph = job.preDims[2 * (size_t)s], pw = job.preDims[2 * (size_t)s + 1];
    try {
      sc.preTaps.resize(count);
      sc.preWeights.resize(count);
      sc.pre.resize((size_t)ph * (size_t)pw * (size_t)inC);
    } catch (const std::bad_alloc&) {
      return "out of memory for the pre-pass image of sample " + std::to_string(s);
    }
    std::memcpy(sc.preTaps.data(), job.preTapIndex + at, count * sizeof(int32_t));
    std::memcpy(sc.preWeights.data(), job.preTapWeight + at, count * sizeof(float));
    const Problem bad = checkPreTaps(job, s, sc.preTaps.data());
    if (!bad.ok()) return "the job's arrays changed while it ran: " + bad.message();
    // With the warp off, no op before it, and identity taps after it, the output is the pre
    // pass's image itself: the geometry pass runs with the pre taps from the source bytes (the
    // same sums in the same order; a sum from +0 is never -0, so the identity's 0 + v changes
    // nothing), with the program's steps while each row is in cache.
    bool preIsOutput = sc.block[job.warpOffset] == 0.0f && K == 1 && ph == H && pw == W;
    for (int32_t y = 0; preIsOutput && y < H; ++y) preIsOutput = ty[y] == y && wy[y] == 1.0f;
    for (int32_t x = 0; preIsOutput && x < W; ++x) preIsOutput = tx[x] == x && wx[x] == 1.0f;
    if (preIsOutput && job.warpOps > 0) {
      decodeSteps(job, sc.block.data(), 0, (size_t)job.warpOps, ph, pw, sc.preSteps);
      preIsOutput = sc.preSteps.empty();
    }
    if (preIsOutput) {
      K = job.preK;
      ty = sc.preTaps.data();
      tx = ty + (size_t)H * K;
      wy = sc.preWeights.data();
      wx = wy + (size_t)H * K;
    } else {
      if (!preQuads(job, sc, src, srcH, srcW, ph, pw)) {
        prePass(src, srcH, srcW, inC, sc.preTaps.data(), sc.preWeights.data(), job.preK, ph, pw, job.fill.data(), sc.preRows, sc.pre.data());
      }
      preImage = sc.pre.data();
    }
  }
  const int32_t readH = job.warp != kWarpNone ? job.readH(s) : srcH, readW = job.warp != kWarpNone ? job.readW(s) : srcW;
  if (job.warp != kWarpNone && job.warpOps > 0) {
    bool ran = false;
    const std::string err = opsBeforeWarp(job, s, sc, src, preImage, readH, readW, &ran);
    if (!err.empty()) return err;
    if (ran) preImage = sc.pre.data();  // the warp (or, with the warp off, the taps) reads it
  }

  // The warp pass: the taps then read its float image instead of the source bytes.
  const float* warped = nullptr;
  if (job.warp != kWarpNone && sc.block[job.warpOffset] == 0.0f && preImage) {
    warped = preImage;  // the warp is off: the taps read the pre-pass image
    srcH = readH;
    srcW = readW;
  } else if (job.warp != kWarpNone && sc.block[job.warpOffset] != 0.0f) {
    const int32_t wh = job.warpDims[2 * (size_t)s], ww = job.warpDims[2 * (size_t)s + 1];
    // Everything folded into the warp: the taps are the identity on the warped image, so the
    // pass writes the output planes directly. The ABI's geometry of one value with K = 1 and
    // weight 1 is 0 + v (it turns -0 into +0), applied row by row below.
    bool direct = K == 1 && wh == H && ww == W;
    for (int32_t y = 0; direct && y < H; ++y) direct = ty[y] == y && wy[y] == 1.0f;
    for (int32_t x = 0; direct && x < W; ++x) direct = tx[x] == x && wx[x] == 1.0f;
    if (direct) {
      // Row by row: the warp stores each value after the geometry's 0 + v and the program's
      // leading AFFINE ops (toTensor, normalize: the same operations, done while the value is in
      // a register), then the rest of the program runs on the row while it is in cache.
      const size_t segEnd = nextReduction(steps, 0, nSteps);
      WarpPost post;
      while ((size_t)post.nAffine < segEnd && post.nAffine < WarpPost::kMaxAffine && steps[post.nAffine].kind == Step::Affine)
        post.affine[post.nAffine] = steps[post.nAffine].a, ++post.nAffine;
      // A few rows at a time (about 1024 pixels, a few KiB per channel: still in L1 when the
      // program reads them), so that the warp's per-call set-up is not paid per row of a small image.
      const int32_t chunk = std::max<int32_t>(1, 1024 / W);
      double sum = 0.0;
      const float* blk = sc.block.data() + job.warpOffset;
      for (int32_t y0 = 0; y0 < H; y0 += chunk) {
        const int32_t y1 = std::min(H, y0 + chunk);
        if (preImage) warpSample(preImage, readH, readW, inC, blk, job.warp, job.fill.data(), H, W, img, 1, plane, (size_t)W, y0, y1, &post);
        else warpSample(src, srcH, srcW, inC, blk, job.warp, job.fill.data(), H, W, img, 1, plane, (size_t)W, y0, y1, &post);
        for (int32_t y = y0; y < y1; ++y) {
          float* row = img + (size_t)y * W;
          runSteps(steps + post.nAffine, steps + segEnd, row, plane, W, y);
          sum = sumFor(steps, segEnd, nSteps, row, plane, W, sum);
        }
      }
      return finishSample(job, s, sc, steps, nSteps, segEnd, sum, img, slot);
    }
    try {
      sc.warped.resize((size_t)wh * (size_t)ww * (size_t)inC);
    } catch (const std::bad_alloc&) {
      return "out of memory for the warped image of sample " + std::to_string(s);
    }
    if (preImage) {
      warpSample(preImage, readH, readW, inC, sc.block.data() + job.warpOffset, job.warp, job.fill.data(), wh, ww, sc.warped.data(), (size_t)inC, 1,
                 (size_t)ww * (size_t)inC, 0, wh);
    } else {
      warpSample(src, srcH, srcW, inC, sc.block.data() + job.warpOffset, job.warp, job.fill.data(), wh, ww, sc.warped.data(), (size_t)inC, 1,
                 (size_t)ww * (size_t)inC, 0, wh);
    }
    warped = sc.warped.data();
    srcH = wh;
    srcW = ww;
  }
  const size_t srcRowBytes = (size_t)srcW * (size_t)inC;

  bool unit = K == 1 && !warped;  // the gather form reads bytes
  for (size_t i = 0; unit && i < (size_t)(H + W) * K; ++i) unit = wy[i] == 1.0f;  // wx follows wy

  // Steps before the first contrast run in the geometry pass; with the gather form, its leading
  // per-channel pointwise steps are folded into the table.
  size_t first = 0;
  size_t segEnd = 0;
  auto nextContrast = [&](size_t from) { return nextReduction(steps, from, nSteps); };

  double sum = 0.0;
  if (unit) {
    while (first < nSteps && (steps[first].kind == Step::Affine || steps[first].kind == Step::Brightness)) ++first;
    segEnd = nextContrast(first);
    // Consecutive samples usually share their parameters (toTensor, normalize): the table is
    // rebuilt only when the job or the parameter block changes.
    const bool cached = job.id != 0 && sc.lutJob == job.id && sc.lutBlock.size() == job.P &&
                        (job.P == 0 || std::memcmp(sc.lutBlock.data(), sc.block.data(), job.P * sizeof(float)) == 0);
    sc.lut.resize((size_t)inC * 257);
    for (int32_t c = 0; c < inC && !cached; ++c) {
      float* t = sc.lut.data() + (size_t)c * 257;
      for (int b = 0; b < 257; ++b) {
        float v = b < 256 ? (float)b : unitGeometry(job.fill[c]);
        for (size_t i = 0; i < first; ++i) {
          const Step& st = steps[i];
          v = st.kind == Step::Affine ? affine1(v, st.a[c], st.a[inC + c]) : brightness1(v, st.f, st.bound);
        }
        t[b] = v;
      }
    }
    if (!cached) {
      sc.lutJob = job.id;
      sc.lutBlock.assign(sc.block.begin(), sc.block.begin() + (ptrdiff_t)job.P);
    }
    sc.colIndex.resize((size_t)W);
    sc.fillCols.clear();
    int32_t q0 = std::numeric_limits<int32_t>::max(), q1 = -1;
    for (int32_t x = 0; x < W; ++x) {
      const int32_t q = tx[x];
      sc.colIndex[x] = q < 0 ? 0 : q * inC;
      if (q < 0) sc.fillCols.push_back(x);
      else {
        q0 = std::min(q0, q);
        q1 = std::max(q1, q);
      }
    }
    const float* lut = sc.lut.data();
    const int32_t* idx = sc.colIndex.data();
    for (int32_t y = 0; y < H; ++y) {
      float* row = img + (size_t)y * W;
      const int32_t r = ty[y];
      if (y + 1 < H && ty[y + 1] >= 0 && q1 >= 0) prefetchBytes(src + (size_t)ty[y + 1] * srcRowBytes + (size_t)q0 * inC, (size_t)(q1 - q0 + 1) * inC);
      if (r < 0) {
        for (int32_t c = 0; c < inC; ++c) std::fill(row + (size_t)c * plane, row + (size_t)c * plane + W, lut[(size_t)c * 257 + 256]);
      } else {
        const uint8_t* srow = src + (size_t)r * srcRowBytes;
        if (inC == 1) gatherRow<1>(srow, idx, lut, W, inC, row, plane);
        else if (inC == 3) gatherRow<3>(srow, idx, lut, W, inC, row, plane);
        else gatherRow<0>(srow, idx, lut, W, inC, row, plane);
        for (int32_t x : sc.fillCols)
          for (int32_t c = 0; c < inC; ++c) row[(size_t)c * plane + x] = lut[(size_t)c * 257 + 256];
      }
      runSteps(steps + first, steps + segEnd, row, plane, W, y);
      sum = sumFor(steps, segEnd, nSteps, row, plane, W, sum);
    }
  } else if (separableQuads(job, sc, src, warped, srcH, srcRowBytes, K, W, H, tx, ty, wx, wy, img, plane, steps, nSteps, segEnd, sum)) {
    // done: four source rows at a time (below)
  } else {
    segEnd = nextContrast(0);
    // Columns of the source this sample reads, and the float offset of every column tap.
    int32_t q0 = std::numeric_limits<int32_t>::max(), q1 = -1;
    for (size_t i = 0; i < (size_t)W * K; ++i) {
      if (tx[i] >= 0) {
        q0 = std::min(q0, tx[i]);
        q1 = std::max(q1, tx[i]);
      }
    }
    if (q1 < 0) q0 = 0;
    const int32_t used = q1 - q0 + 1;  // columns converted per source row (0 when all are fill)
    sc.srcRow.resize((size_t)(used + 1) * inC);
    sc.colIndex.resize((size_t)W * K);
    for (size_t i = 0; i < (size_t)W * K; ++i) sc.colIndex[i] = (tx[i] < 0 ? used : tx[i] - q0) * inC;
    float* fillPixel = sc.srcRow.data() + (size_t)used * inC;
    for (int32_t c = 0; c < inC; ++c) fillPixel[c] = job.fill[c];

    // Cache of filtered source rows: K + 1 slots always leave one free for the current row.
    const size_t slots = (size_t)K + 1;
    const size_t slotFloats = (size_t)inC * W;
    sc.rows.resize(slots * slotFloats);
    sc.rowKey.assign(slots, kEmpty);
    sc.rowUse.assign(slots, 0);
    const FilterFn filter = pickFilter(inC, K);
    const float* h[kMaxTaps];

    for (int32_t y = 0; y < H; ++y) {
      const int64_t stamp = (int64_t)y + 1;
      for (int32_t i = 0; i < K; ++i) {
        const int64_t r = ty[(size_t)y * K + i];
        size_t slot = slots;
        for (size_t k = 0; k < slots; ++k)
          if (sc.rowKey[k] == r) slot = k;
        if (slot == slots) {
          slot = 0;
          for (size_t k = 1; k < slots; ++k)
            if (sc.rowUse[k] < sc.rowUse[slot]) slot = k;
          float* sr = sc.srcRow.data();
          if (r >= 0 && warped) {
            const float* b = warped + (size_t)r * srcRowBytes + (size_t)q0 * inC;
            std::memcpy(sr, b, sizeof(float) * (size_t)used * inC);
          } else if (r >= 0) {
            const uint8_t* b = src + (size_t)r * srcRowBytes + (size_t)q0 * inC;
            if (r + 1 < srcH) prefetchBytes(b + srcRowBytes, (size_t)used * inC);
            for (size_t k = 0; k < (size_t)used * inC; ++k) sr[k] = (float)b[k];
          } else {
            for (int32_t q = 0; q < used; ++q)
              for (int32_t c = 0; c < inC; ++c) sr[(size_t)q * inC + c] = job.fill[c];
          }
          filter(sr, sc.colIndex.data(), wx, W, inC, K, sc.rows.data() + slot * slotFloats);
          sc.rowKey[slot] = r;
        }
        sc.rowUse[slot] = stamp;
        h[i] = sc.rows.data() + slot * slotFloats;
      }
      float* row = img + (size_t)y * W;
      combineRows(h, wy + (size_t)y * K, K, inC, W, row, plane);
      runSteps(steps, steps + segEnd, row, plane, W, y);
      sum = sumFor(steps, segEnd, nSteps, row, plane, W, sum);
    }
  }

  return finishSample(job, s, sc, steps, nSteps, segEnd, sum, img, slot);
}

// The passes after the first segment of steps on an H x W image of planes: each whole-image
// step (a contrast, AUTOCONTRAST, EQUALIZE, SHARPNESS) starts a pass over the finished rows,
// which runs the steps up to the next one (and sums gray for it).
void wholeImagePasses(const Step* steps, size_t nSteps, size_t segEnd, double sum, float* img, int32_t H, int32_t W, Scratch& sc) {
  const size_t plane = (size_t)H * (size_t)W;
  while (segEnd < nSteps) {
    const Step& ct = steps[segEnd];
    const float mean = (float)(sum / (double)plane);
    const size_t from = segEnd + 1;
    segEnd = nextReduction(steps, from, nSteps);
    sum = 0.0;
    if (ct.kind == Step::Autocontrast) autocontrastImage(img, plane, ct);
    else if (ct.kind == Step::Equalize) equalizeImage(img, plane, ct, sc.levels);
    else if (ct.kind == Step::Sharpness) sharpnessImage(img, H, W, ct, sc.sharpCopy);
    else if (ct.kind == Step::WarpOp) warpOpImage(img, H, W, ct, sc.warpIn);
    else if (ct.kind == Step::MixBegin || ct.kind == Step::MixNext || ct.kind == Step::MixEnd) mixImage(img, plane * (size_t)ct.C, ct, sc);
    for (int32_t y = 0; y < H; ++y) {
      float* row = img + (size_t)y * W;
      if (ct.kind == Step::Contrast) contrastRow(row, plane, W, ct.C, ct.f, ct.bound, mean);
      runSteps(steps + from, steps + segEnd, row, plane, W, y);
      sum = sumFor(steps, segEnd, nSteps, row, plane, W, sum);
    }
  }
}

// The passes after geometry (wholeImagePasses on the output image), then the copy to `out`
// when the image lived in scratch memory.
std::string finishSample(const Job& job, int32_t s, Scratch& sc, const Step* steps, size_t nSteps, size_t segEnd, double sum, float* img,
                         float* slot) {
  (void)s;
  wholeImagePasses(steps, nSteps, segEnd, sum, img, job.outH, job.outW, sc);
  if (img != slot) std::memcpy(slot, img, sizeof(float) * job.outPerSample());
  return "";
}

// The ops before the warp (PLAN_ABI.md, "Ops before the warp"): the image the warp reads
// (`pre`, HWC floats, or the source bytes) becomes planes, runs ops 0 .. warpOps - 1 as the
// program after geometry runs (row passes, then a pass per whole-image step), and is written
// back as HWC floats into sc.pre, which the warp then reads (*ran: some op was on). Returns ""
// or an error.
std::string opsBeforeWarp(const Job& job, int32_t s, Scratch& sc, const uint8_t* src, const float* pre, int32_t H, int32_t W, bool* ran) {
  const int32_t C = job.inC;
  const size_t plane = (size_t)H * (size_t)W;
  decodeSteps(job, sc.block.data(), 0, (size_t)job.warpOps, H, W, sc.preSteps);
  *ran = !sc.preSteps.empty();
  if (!*ran) return "";  // every op before the warp is off for this sample: the warp reads its image as it is
  try {
    sc.preOps.resize(plane * (size_t)C);
    sc.pre.resize(plane * (size_t)C);
  } catch (const std::bad_alloc&) {
    return "out of memory for the image before the warp of sample " + std::to_string(s);
  }
  float* img = sc.preOps.data();
  if (pre) toPlanes(pre, plane, C, img);
  else toPlanes(src, plane, C, img);
  const Step* steps = sc.preSteps.data();
  const size_t n = sc.preSteps.size();
  const size_t segEnd = nextReduction(steps, 0, n);
  double sum = 0.0;
  for (int32_t y = 0; y < H; ++y) {
    float* row = img + (size_t)y * W;
    runSteps(steps, steps + segEnd, row, plane, W, y);
    sum = sumFor(steps, segEnd, n, row, plane, W, sum);
  }
  wholeImagePasses(steps, n, segEnd, sum, img, H, W, sc);
  toInterleaved(img, plane, C, sc.pre.data());
  return "";
}

}  // namespace batchlab
