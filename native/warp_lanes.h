// The warp pass (PLAN_ABI.md, "Warp pass") on N neighbouring output pixels of a row at once, one
// SIMD lane each, written once over a lane type L:
//   Sse4  (4 lanes, SSE4.1: the build's x86-64-v2 baseline; plan.cc),
//   Avx2  (8 lanes, AVX2: native/warp_avx2.cc, built with -mavx2 and chosen at run time where
//          the processor has it; see warpLanesName in plan.h).
// Every lane performs the float32 operations of warpRows' scalar loop (plan.cc), in the same
// order, so each lane gives the scalar bits whatever N is. What the scalar form decides by
// branches is a lane mask here:
//  - the source point's range test and the window tests are compares of the same floats (the
//    corners' centres x0 + 0.5 and (x0 + 1) + 0.5 are exact within the range, as in inWindow);
//  - a corner outside the domain adds nothing in the scalar form; here it adds +0 (its term
//    w * S is masked after the multiply, so an infinite or NaN S cannot leak in). A sum that
//    starts at +0 never becomes -0, so adding +0 leaves it as it was: the same bits.
//  - a corner outside the real window reads the fill (a blend), an in-range lane's corner
//    inside it reads the source (a lane outside reads pixel 0, which is blended away);
//  - the affine shortcut (no division) is taken only where the scalar form takes it for every
//    lane (no displacement: the points are finite); elsewhere X / Wd, which equals X for Wd = 1.
// Nearest rounds half to even (round-to-nearest, as nearbyint in the default rounding mode).
// Displacement offsets, when the block has a grid, come from the scalar addDisplacement
// (warpDisplace, compiled once in plan.cc).
//
// This header is included by two translation units built for different instruction sets; each
// instantiates the templates with its own lane type only, so no code is shared between them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "plan.h"

#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace batchlab {

// The displaced points of pixels x .. x + n - 1 of the row whose centre is yc (plan.cc).
void warpDisplace(const float* grid, int32_t G, int32_t x, float yc, float fow, float foh, int n, float* px, float* py);

namespace lanes {

static inline uint32_t load32(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

#if defined(__SSE4_1__)
struct Sse4 {
  static constexpr int N = 4;
  using F = __m128;
  using I = __m128i;
  static F set1(float v) { return _mm_set1_ps(v); }
  static F zero() { return _mm_setzero_ps(); }
  static F allOnes() { return _mm_castsi128_ps(_mm_set1_epi32(-1)); }
  static F absMask() { return _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff)); }
  static F add(F a, F b) { return _mm_add_ps(a, b); }
  static F sub(F a, F b) { return _mm_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm_mul_ps(a, b); }
  static F div(F a, F b) { return _mm_div_ps(a, b); }
  static F band(F a, F b) { return _mm_and_ps(a, b); }
  static F lt(F a, F b) { return _mm_cmplt_ps(a, b); }
  static F le(F a, F b) { return _mm_cmple_ps(a, b); }
  static F ge(F a, F b) { return _mm_cmpge_ps(a, b); }
  static F select(F a, F b, F m) { return _mm_blendv_ps(a, b, m); }  // m ? b : a
  static F floor(F a) { return _mm_floor_ps(a); }
  static F roundEven(F a) { return _mm_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static int bits(F a) { return _mm_movemask_ps(a); }
  static F iota(int32_t x) { return _mm_cvtepi32_ps(_mm_setr_epi32(x, x + 1, x + 2, x + 3)); }
  static void truncate(int32_t* t, F a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(t), _mm_cvttps_epi32(a)); }
  static F load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, F a) { _mm_storeu_ps(p, a); }
  static F gather(const float* s, const size_t* off, size_t c) { return _mm_setr_ps(s[off[0] + c], s[off[1] + c], s[off[2] + c], s[off[3] + c]); }
  static F gather(const uint8_t* s, const size_t* off, size_t c) {
    return _mm_cvtepi32_ps(_mm_setr_epi32(s[off[0] + c], s[off[1] + c], s[off[2] + c], s[off[3] + c]));
  }
  // The 4-byte word at p[l] + add, one lane each.
  static I words(const uint8_t* const* p, size_t add) {
    return _mm_setr_epi32((int)load32(p[0] + add), (int)load32(p[1] + add), (int)load32(p[2] + add), (int)load32(p[3] + add));
  }
  // Byte b of each lane's word, as a float.
  static F byteOf(I w, int b) {
    return _mm_cvtepi32_ps(_mm_shuffle_epi8(w, _mm_setr_epi8(b, -1, -1, -1, 4 + b, -1, -1, -1, 8 + b, -1, -1, -1, 12 + b, -1, -1, -1)));
  }
};
#endif

#if defined(__AVX2__)
struct Avx2 {
  static constexpr int N = 8;
  using F = __m256;
  using I = __m256i;
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F zero() { return _mm256_setzero_ps(); }
  static F allOnes() { return _mm256_castsi256_ps(_mm256_set1_epi32(-1)); }
  static F absMask() { return _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F band(F a, F b) { return _mm256_and_ps(a, b); }
  // Ordered, quiet compares: false for NaN, as SSE's cmplt / cmple / cmpge.
  static F lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static F le(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static F ge(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static F select(F a, F b, F m) { return _mm256_blendv_ps(a, b, m); }
  static F floor(F a) { return _mm256_floor_ps(a); }
  static F roundEven(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static int bits(F a) { return _mm256_movemask_ps(a); }
  static F iota(int32_t x) { return _mm256_cvtepi32_ps(_mm256_setr_epi32(x, x + 1, x + 2, x + 3, x + 4, x + 5, x + 6, x + 7)); }
  static void truncate(int32_t* t, F a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(t), _mm256_cvttps_epi32(a)); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F a) { _mm256_storeu_ps(p, a); }
  static F gather(const float* s, const size_t* off, size_t c) {
    return _mm256_setr_ps(s[off[0] + c], s[off[1] + c], s[off[2] + c], s[off[3] + c], s[off[4] + c], s[off[5] + c], s[off[6] + c], s[off[7] + c]);
  }
  static F gather(const uint8_t* s, const size_t* off, size_t c) {
    return _mm256_cvtepi32_ps(_mm256_setr_epi32(s[off[0] + c], s[off[1] + c], s[off[2] + c], s[off[3] + c], s[off[4] + c], s[off[5] + c],
                                                s[off[6] + c], s[off[7] + c]));
  }
  static I words(const uint8_t* const* p, size_t add) {
    return _mm256_setr_epi32((int)load32(p[0] + add), (int)load32(p[1] + add), (int)load32(p[2] + add), (int)load32(p[3] + add),
                             (int)load32(p[4] + add), (int)load32(p[5] + add), (int)load32(p[6] + add), (int)load32(p[7] + add));
  }
  // The byte shuffle works within each 128-bit half; every word lies inside one.
  static F byteOf(I w, int b) {
    return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(w, _mm256_setr_epi8(b, -1, -1, -1, 4 + b, -1, -1, -1, 8 + b, -1, -1, -1, 12 + b, -1, -1, -1,
                                                                          b, -1, -1, -1, 4 + b, -1, -1, -1, 8 + b, -1, -1, -1, 12 + b, -1, -1, -1)));
  }
};
#endif

// lo < c < hi for a window's [lo, hi] (the centres c of one axis)
template <class L>
inline typename L::F between(typename L::F c, typename L::F lo, typename L::F hi) {
  return L::band(L::lt(lo, c), L::lt(c, hi));
}

// 0 <= c < n (a frame's integer corners, as floats)
template <class L>
inline typename L::F insideAxis(typename L::F c, typename L::F n) {
  return L::band(L::ge(c, L::zero()), L::lt(c, n));
}

// A 3x3 map's entries as broadcast lanes, with its affine flag.
template <class L>
struct Map {
  typename L::F q[9];
  bool affine;  // m6 = m7 = 0, m8 = 1
  void set(const float* m) {
    for (int i = 0; i < 9; ++i) q[i] = L::set1(m[i]);
    affine = m[6] == 0.0f && m[7] == 0.0f && m[8] == 1.0f;
  }
};

// What warpLanes reads of a warp block, broadcast once per call of warpRowsLanes.
template <class L, int CC>
struct Block {
  using F = typename L::F;
  static constexpr int NC = CC > 0 ? CC : kMaxChannels;
  Map<L> map;
  Map<L> frame[kWarpFrames];
  F frameH[kWarpFrames], frameW[kWarpFrames];
  F real[4], dom[4];
  F fill[NC];
  const float* grid;
  int32_t G, F_, C;
  float fow, foh;
  // The post ops (WarpPost), broadcast: only with a fixed channel count.
  int32_t nPost = -1;  // -1: no post work; else 0 + v and nPost affine ops
  F postSub[WarpPost::kMaxAffine][CC > 0 ? CC : 1], postDiv[WarpPost::kMaxAffine][CC > 0 ? CC : 1];
  Block(const float* blk, const float* fillValues, int32_t Cn, int32_t oh, int32_t ow, const WarpPost* post) {
    if (post) {
      nPost = post->nAffine;
      for (int32_t i = 0; i < nPost; ++i)
        for (int32_t c = 0; c < (CC > 0 ? CC : 1); ++c) {
          postSub[i][c] = L::set1(post->affine[i][c]);
          postDiv[i][c] = L::set1(post->affine[i][Cn + c]);
        }
    }
    map.set(blk + 1);
    for (int i = 0; i < 4; ++i) {
      dom[i] = L::set1(blk[10 + i]);
      real[i] = L::set1(blk[14 + i]);
    }
    F_ = (int32_t)blk[18];
    for (int32_t f = 0; f < F_; ++f) {
      const float* fr = blk + 19 + 11 * f;
      frame[f].set(fr);
      frameH[f] = L::set1((float)(int32_t)fr[9]);
      frameW[f] = L::set1((float)(int32_t)fr[10]);
    }
    G = (int32_t)blk[kWarpBlock - 1];
    grid = blk + kWarpBlock;
    C = Cn;
    for (int32_t c = 0; c < C; ++c) fill[c] = L::set1(fillValues[c]);
    fow = (float)ow;
    foh = (float)oh;
  }
};

// Output pixels x .. x + N - 1 of row y, written at o (pixel stride pixStride, channel stride
// chanStride).
template <class L, int CC, bool Nearest, typename T>
__attribute__((always_inline)) inline void warpLanes(const Block<L, CC>& qb, const T* src, size_t srcRow, int32_t x, int32_t y, float* o,
                                                     size_t pixStride, size_t chanStride) {
  using F = typename L::F;
  constexpr int N = L::N;
  const int32_t C = CC > 0 ? CC : qb.C;
  const int32_t G = qb.G;
  const F half = L::set1(0.5f), one = L::set1(1.0f), zero = L::zero();
  const F range = L::set1(kWarpRange);
  const F absMask = L::absMask();
  const float ycs = (float)y + 0.5f;
  F px = L::add(L::iota(x), half), py = L::set1(ycs);
  if (G > 0) {
    alignas(32) float dx[N], dy[N];
    warpDisplace(qb.grid, G, x, ycs, qb.fow, qb.foh, N, dx, dy);
    px = L::load(dx);
    py = L::load(dy);
  }
  // A point through a 3x3 map: ix, iy and the range test.
  const auto project = [&](const Map<L>& M, F& ix, F& iy) {
    const F* q = M.q;
    const F X = L::add(L::add(L::mul(q[0], px), L::mul(q[1], py)), q[2]);
    const F Y = L::add(L::add(L::mul(q[3], px), L::mul(q[4], py)), q[5]);
    if (M.affine && G == 0) {
      ix = L::sub(X, half);
      iy = L::sub(Y, half);
    } else {
      const F Wd = L::add(L::add(L::mul(q[6], px), L::mul(q[7], py)), q[8]);
      ix = L::sub(L::div(X, Wd), half);
      iy = L::sub(L::div(Y, Wd), half);
    }
    return L::band(L::le(L::band(ix, absMask), range), L::le(L::band(iy, absMask), range));  // false for NaN
  };
  F v[Block<L, CC>::NC];
  F ix, iy;
  const F inRange = project(qb.map, ix, iy);
  const F* R = qb.real;
  alignas(32) int32_t xi[N], yi[N];
  size_t off[N];
  if (Nearest) {
    const F nx = L::roundEven(ix), ny = L::roundEven(iy);
    const F in = L::band(inRange, L::band(between<L>(L::add(nx, half), R[0], R[2]), between<L>(L::add(ny, half), R[1], R[3])));
    const int bits = L::bits(in);
    L::truncate(xi, nx);
    L::truncate(yi, ny);
    for (int l = 0; l < N; ++l) off[l] = (bits >> l) & 1 ? (size_t)yi[l] * srcRow + (size_t)xi[l] * (size_t)C : 0;
    for (int32_t c = 0; c < C; ++c) v[c] = L::select(qb.fill[c], L::gather(src, off, (size_t)c), in);
  } else {
    const F* D = qb.dom;
    const F x0f = L::floor(ix), y0f = L::floor(iy);
    const F fx = L::sub(ix, x0f), fy = L::sub(iy, y0f);
    const F gx = L::sub(one, fx), gy = L::sub(one, fy);
    const F cx0 = L::add(x0f, half), cx1 = L::add(L::add(x0f, one), half);
    const F cy0 = L::add(y0f, half), cy1 = L::add(L::add(y0f, one), half);
    const F colReal[2] = {L::band(inRange, between<L>(cx0, R[0], R[2])), L::band(inRange, between<L>(cx1, R[0], R[2]))};
    const F rowReal[2] = {between<L>(cy0, R[1], R[3]), between<L>(cy1, R[1], R[3])};
    const F colDom[2] = {L::band(inRange, between<L>(cx0, D[0], D[2])), L::band(inRange, between<L>(cx1, D[0], D[2]))};
    const F rowDom[2] = {between<L>(cy0, D[1], D[3]), between<L>(cy1, D[1], D[3])};
    L::truncate(xi, x0f);
    L::truncate(yi, y0f);
    const F w[4] = {L::mul(gx, gy), L::mul(fx, gy), L::mul(gx, fy), L::mul(fx, fy)};
    const F realAll = L::band(L::band(colReal[0], colReal[1]), L::band(rowReal[0], rowReal[1]));
    const F domAll = L::band(L::band(colDom[0], colDom[1]), L::band(rowDom[0], rowDom[1]));
    constexpr int all = (1 << N) - 1;
    F mask = zero;
    for (int32_t c = 0; c < C; ++c) v[c] = zero;
    F inDom[4];
    const bool interior = L::bits(realAll) == all && L::bits(domAll) == all;  // every corner of every lane in both windows
    if (interior) {
      for (int k = 0; k < 4; ++k) mask = L::add(mask, w[k]);
    } else {
      for (int k = 0; k < 4; ++k) {
        inDom[k] = L::band(colDom[k & 1], rowDom[k >> 1]);
        mask = L::add(mask, L::band(w[k], inDom[k]));
      }
    }
    constexpr bool rgb8 = CC == 3 && std::is_same<T, uint8_t>::value;
    bool gathered = false;
    if constexpr (rgb8) {
      if (interior) {
        // Every corner of every lane is a source pixel: per lane and row, the 6 bytes of its two
        // pixels as two 4-byte words (bytes 0..3 and 2..5, both inside them). A left pixel's
        // channel c is byte c of its word, a right pixel's byte c + 1 of the second word.
        const uint8_t* p[N];
        for (int l = 0; l < N; ++l) p[l] = src + (size_t)yi[l] * srcRow + (size_t)xi[l] * 3;
        const typename L::I word[4] = {L::words(p, 0), L::words(p, 2), L::words(p, srcRow), L::words(p, srcRow + 2)};
        for (int k = 0; k < 4; ++k)
          for (int c = 0; c < 3; ++c) v[c] = L::add(v[c], L::mul(w[k], L::byteOf(word[k], c + (k & 1))));
        gathered = true;
      }
    }
    if (!gathered) {
      for (int k = 0; k < 4; ++k) {
        const F inReal = L::band(colReal[k & 1], rowReal[k >> 1]);
        const int bits = L::bits(inReal);
        for (int l = 0; l < N; ++l)
          off[l] = (bits >> l) & 1 ? (size_t)(yi[l] + (k >> 1)) * srcRow + (size_t)(xi[l] + (k & 1)) * (size_t)C : 0;
        const F d = interior ? L::allOnes() : inDom[k];
        for (int32_t c = 0; c < C; ++c) {
          const F S = L::select(qb.fill[c], L::gather(src, off, (size_t)c), inReal);
          v[c] = L::add(v[c], L::band(L::mul(w[k], S), d));
        }
      }
    }
    const F rest = L::sub(one, mask);
    for (int32_t c = 0; c < C; ++c) v[c] = L::add(L::mul(v[c], mask), L::mul(rest, qb.fill[c]));
  }
  for (int32_t f = 0; f < qb.F_; ++f) {
    const F fh = qb.frameH[f], fw = qb.frameW[f];
    F qx, qy;
    const F qIn = project(qb.frame[f], qx, qy);
    F mk;
    if (Nearest) {
      const F nx = L::roundEven(qx), ny = L::roundEven(qy);
      mk = L::band(one, L::band(qIn, L::band(insideAxis<L>(nx, fw), insideAxis<L>(ny, fh))));
    } else {
      const F x0f = L::floor(qx), y0f = L::floor(qy);
      const F fx = L::sub(qx, x0f), fy = L::sub(qy, y0f);
      const F gx = L::sub(one, fx), gy = L::sub(one, fy);
      const F col[2] = {L::band(qIn, insideAxis<L>(x0f, fw)), L::band(qIn, insideAxis<L>(L::add(x0f, one), fw))};
      const F row[2] = {insideAxis<L>(y0f, fh), insideAxis<L>(L::add(y0f, one), fh)};
      mk = zero;
      for (int k = 0; k < 4; ++k) mk = L::add(mk, L::band(L::mul((k & 1) ? fx : gx, (k >> 1) ? fy : gy), L::band(col[k & 1], row[k >> 1])));
    }
    const F rest = L::sub(one, mk);
    for (int32_t c = 0; c < C; ++c) v[c] = L::add(L::mul(L::mul(v[c], mk), mk), L::mul(rest, qb.fill[c]));
  }
  if (CC > 0 && qb.nPost >= 0) {
    for (int32_t c = 0; c < C; ++c) {
      F a = L::add(zero, v[c]);
      for (int32_t i = 0; i < qb.nPost; ++i) a = L::div(L::sub(a, qb.postSub[i][c]), qb.postDiv[i][c]);
      v[c] = a;
    }
  }
  if (pixStride == 1) {
    for (int32_t c = 0; c < C; ++c) L::store(o + (size_t)c * chanStride, v[c]);
  } else {
    alignas(32) float t[N];
    for (int32_t c = 0; c < C; ++c) {
      L::store(t, v[c]);
      for (int l = 0; l < N; ++l) o[(size_t)l * pixStride + (size_t)c * chanStride] = t[l];
    }
  }
}

// Columns xBegin .. xBegin + N * k - 1 of rows y0 .. y1 - 1 (the most whole groups of N that fit
// in the row) through warpLanes; returns the first column it left, which the caller finishes.
// Post ops run in lanes only with a fixed channel count: otherwise it leaves every column.
template <class L, int CC, bool Nearest, typename T>
int32_t warpRowsLanes(const T* src, int32_t sw, int32_t Cn, const float* blk, const float* fill, int32_t oh, int32_t ow, float* out,
                      size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post, int32_t xBegin) {
  if (CC == 0 && post) return xBegin;
  const int32_t C = CC > 0 ? CC : Cn;
  const int32_t xEnd = xBegin + (ow - xBegin) / L::N * L::N;
  if (xEnd == xBegin) return xBegin;
  const Block<L, CC> qb(blk, fill, C, oh, ow, post);
  const size_t srcRow = (size_t)sw * (size_t)C;
  for (int32_t y = y0; y < y1; ++y)
    for (int32_t x = xBegin; x < xEnd; x += L::N)
      warpLanes<L, CC, Nearest, T>(qb, src, srcRow, x, y, out + (size_t)y * rowStride + (size_t)x * pixStride, pixStride, chanStride);
  return xEnd;
}

}  // namespace lanes

// warp_avx2.cc: warpRowsLanes with 8 AVX2 lanes for one to four channels or any count (CC = 0);
// returns the first column it left (xBegin when it does nothing). Call only where the processor
// has AVX2 (plan.cc checks).
int32_t warpRowsAvx2(const uint8_t* src, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill, int32_t oh, int32_t ow,
                     float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post);
int32_t warpRowsAvx2(const float* src, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill, int32_t oh, int32_t ow,
                     float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post);

}  // namespace batchlab
