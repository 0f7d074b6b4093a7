// The warp pass with eight AVX2 lanes (warp_lanes.h). This file alone is built with -mavx2 (a
// static library of binding.gyp linked after the baseline objects); plan.cc calls it only where
// the processor reports AVX2. No FMA: -ffp-contract=off as everywhere, so each lane performs the
// ABI's float32 operations one rounding at a time and equals the scalar loop.
#include "warp_lanes.h"

#if !defined(__AVX2__)
#error "native/warp_avx2.cc is built with -mavx2 (binding.gyp, target batchlab_avx2)"
#endif

namespace batchlab {
namespace {

template <typename T>
int32_t rowsAvx2(const T* src, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill, int32_t oh, int32_t ow, float* out,
                 size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post) {
  using lanes::Avx2;
  using lanes::warpRowsLanes;
  const bool nearest = mode == kWarpNearest;
#define BL_ROWS(CC)                                                                                                                 \
  return nearest ? warpRowsLanes<Avx2, CC, true, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post, 0) \
                 : warpRowsLanes<Avx2, CC, false, T>(src, sw, C, blk, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post, 0)
  switch (C) {
    case 1: BL_ROWS(1);
    case 3: BL_ROWS(3);
    case 4: BL_ROWS(4);
    default: BL_ROWS(0);
  }
#undef BL_ROWS
}

}  // namespace

int32_t warpRowsAvx2(const uint8_t* src, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill, int32_t oh, int32_t ow,
                     float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post) {
  return rowsAvx2(src, sw, C, blk, mode, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
}

int32_t warpRowsAvx2(const float* src, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill, int32_t oh, int32_t ow,
                     float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1, const WarpPost* post) {
  return rowsAvx2(src, sw, C, blk, mode, fill, oh, ow, out, pixStride, chanStride, rowStride, y0, y1, post);
}

}  // namespace batchlab
