// JPEG decoding with libjpeg-turbo on the engine's worker pool (native/README.md, "Decode").
//
// decodeJpeg(requests) -> Promise<results>, added to the exports by registerDecode when the
// addon is built with libjpeg (BATCHLAB_WITH_JPEG); without it registerDecode adds nothing and
// the TypeScript side decodes with sharp.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace batchlab {

// One image to decode. The window is in the coordinates of the full image as shown (EXIF
// orientation applied), at full resolution; `scale` (1, 2, 4 or 8) divides the resolution
// (libjpeg's DCT scaling). Without a window the whole image is decoded.
struct JpegRequest {
  const uint8_t* data = nullptr;
  size_t size = 0;
  int channels = 3;     // 1 (luma), 3 (RGB), 4 (RGB + opaque alpha)
  int orientation = 1;  // EXIF orientation 1..8, applied as PIL's ImageOps.exif_transpose
  double maxPixels = 0; // width x height above this is refused before decoding
  bool hasWindow = false;
  int64_t left = 0, top = 0, width = 0, height = 0;
  int scale = 1;
};

// Decoded pixels (HWC uint8, malloc'd: the caller owns `pixels`) and where they sit in the full
// image: decoded (r, c) covers full columns [frameLeft + c * scale, ...+ scale) and rows
// [frameTop + r * scale, ...+ scale) (see src/data/types.ts, SourceFrame). On failure `error`
// is set, `pixels` is null and `offset` is the byte the decoder had reached (-1 when unknown).
struct JpegResult {
  uint8_t* pixels = nullptr;
  int width = 0, height = 0, channels = 0;
  int64_t frameLeft = 0, frameTop = 0;
  int scale = 1;
  int fullWidth = 0, fullHeight = 0;  // the whole image, orientation applied
  std::string error;
  int64_t offset = -1;
};

// Decodes on the calling thread. Never throws for bad data, never aborts: libjpeg's errors and
// warnings (corrupt data, a truncated file) come back as `error`.
void decodeJpeg(const JpegRequest& req, JpegResult& out);

// Adds decodeJpeg(requests) and jpegVersion to `exports` (nothing without libjpeg).
void registerDecode(Napi::Env env, Napi::Object exports);

}  // namespace batchlab
