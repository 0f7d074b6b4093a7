// The CPU plan executor of native/PLAN_ABI.md, independent of Node-API.
//
// A job is checked completely (checkJob, plan_check.h) before any pixel is touched. The engine then runs it
// sample by sample (runSample) on pool threads. Each sample first copies its taps and its
// parameter block out of the caller's memory and checks the copy again: the JavaScript thread
// stays free while a job runs, so those arrays could change under it, and an index that was
// valid at submit time must never be trusted later.
//
// Arithmetic: IEEE float32, one rounding per + - * /, in the ABI's order, no contraction
// (compiled with -ffp-contract=off, no -ffast-math). The contrast mean is a double sum of the
// gray values in row-major order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace batchlab {

enum OpCode : int32_t { kAffine = 0, kGray = 1, kJitter = 2, kErase = 3, kInvert = 4, kSolarize = 5, kPosterize = 6, kAutocontrast = 7, kEqualize = 8, kSharpness = 9, kPermute = 10, kNoise = 11, kWarpOp = 12, kMixBegin = 13, kMixNext = 14, kMixEnd = 15 };

// Sanity bounds on the job's scalars (checked, with these numbers in the message).
constexpr int32_t kMaxChannels = 64;
constexpr int32_t kMaxTaps = 512;             // K (an antialiased 1/250 downscale needs 503)
constexpr int32_t kMaxSide = 1 << 20;         // outH, outW
constexpr int32_t kMaxSamples = 1 << 24;      // n

// The warp pass (PLAN_ABI.md, "Warp pass"): job.warp and the layout of a sample's warp block.
enum WarpMode : int32_t { kWarpNone = 0, kWarpNearest = 1, kWarpBilinear = 2, kWarpBicubic = 3 };
constexpr int32_t kWarpBlock = 42;            // enabled, m[9], domain[4], real[4], F, 2 frames of 11, G
constexpr int32_t kWarpFrames = 2;            // earlier warps' input images checked as domains
constexpr int32_t kWarpMaxGrid = 64;          // G: displacement control points per side
constexpr float kWarpRange = 4194304.0f;      // 2^22: source points beyond read only the fill

// A job as the engine reads it. Pointers are views of the caller's typed arrays, which the
// caller keeps alive until the job has finished; the vectors are copies made at submit time.
struct Job {
  int32_t n = 0, inC = 0, outC = 0, outH = 0, outW = 0, K = 0;
  size_t P = 0;                          // floats per sample's parameter block
  std::vector<const uint8_t*> src;       // HWC pixels of each sample
  std::vector<size_t> srcBytes;          // length of each source view
  std::vector<double> srcOffsets;        // one-buffer sources: each sample's offset (messages)
  std::vector<int32_t> dims;             // srcDims (height, width per sample), copied
  const int32_t* tapIndex = nullptr;     // n*(outH+outW)*K
  const float* tapWeight = nullptr;      // same layout
  std::vector<float> fill;               // inC values, copied
  std::vector<int32_t> program;          // op codes, copied
  std::vector<int32_t> opOffsets;        // one per op, copied
  const float* params = nullptr;         // n*P
  float* out = nullptr;                  // n*outC*outH*outW
  uint64_t id = 0;                       // unique per job (0: none), keys per-thread caches
  int32_t warp = kWarpNone;              // the warp pass: 0 none, 1 nearest, 2 bilinear, 3 bicubic
  size_t warpOffset = 0;                 // offset of the warp block in a parameter block
  std::vector<int32_t> warpDims;         // height, width of each sample's warped image, copied
  int32_t preK = 0;                      // the pass before the warp (0: none): taps per coordinate
  std::vector<int32_t> preDims;          // height, width of each sample's pre-pass image, copied
  std::vector<size_t> preTapAt;          // where sample s's pre taps start (n + 1 prefix sums)
  const int32_t* preTapIndex = nullptr;  // per sample (preH + preW) * preK, back to back
  const float* preTapWeight = nullptr;
  int32_t warpOps = 0;                   // with a warp: ops 0 .. warpOps-1 run on the image it reads

  // The image the warp reads for sample s: the pre-pass image, or the source.
  int32_t readH(int32_t s) const { return preK ? preDims[2 * (size_t)s] : dims[2 * (size_t)s]; }
  int32_t readW(int32_t s) const { return preK ? preDims[2 * (size_t)s + 1] : dims[2 * (size_t)s + 1]; }

  size_t tapsPerSample() const { return (size_t)(outH + outW) * (size_t)K; }
  size_t outPerSample() const { return (size_t)outC * (size_t)outH * (size_t)outW; }
};

// Lengths of the arrays the job was built from (elements).
struct Lengths {
  size_t srcDims = 0, tapIndex = 0, tapWeight = 0, fill = 0, program = 0, opOffsets = 0, params = 0, out = 0, warpDims = 0;
  size_t preDims = 0, preTapIndex = 0, preTapWeight = 0;
};

// The check of a job (checkJob, checkSample) is in plan_check.h, shared with the CUDA addon.

// A row-pass op decoded from a sample's parameter block (JITTER expands into its steps).
struct Step {
  // Contrast, Autocontrast, Equalize and Sharpness need the whole image first (a mean,
  // per-channel min and max, per-channel histograms, neighbours), and so do WarpOp (a
  // resampling) and the Mix steps (a copy of the image, a sum): each starts a pass of its own.
  enum Kind : int32_t { Affine, Gray, Brightness, Contrast, Saturation, Hue, Erase, Invert, Solarize, Posterize, Autocontrast, Equalize, Sharpness, Permute, Noise, WarpOp, MixBegin, MixNext, MixEnd } kind;
  int32_t C;      // channels entering the step
  int32_t Cout;   // channels leaving it (differs only for Gray)
  float f = 0, bound = 0;    // factor and bound (jitter steps)
  const float* a = nullptr;  // Affine: sub[C] (div follows); Erase: value[C]
  int32_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;  // Erase: the box clipped to the output
  uint32_t keyA = 0, keyB = 0;               // Noise: the key words (a: mean, sigma, clip)
};

// Per-thread working memory, reused sample after sample and job after job.
struct Scratch {
  std::vector<int32_t> taps;     // copy of the sample's tap indices
  std::vector<float> weights;    // copy of its tap weights
  std::vector<float> block;      // copy of its parameter block
  std::vector<Step> steps;
  std::vector<int32_t> colIndex; // per output column and tap: float offset into `srcRow`
  std::vector<int32_t> fillCols; // gather path: output columns whose tap is -1
  std::vector<float> srcRow;     // a source row as floats (used columns), plus one fill pixel
  std::vector<float> rows;       // cache of horizontally filtered rows: slots x C x outW
  std::vector<int64_t> rowKey;   // source row held by each slot (kEmpty: none)
  std::vector<int64_t> rowUse;   // when each slot was last used
  std::vector<float> lut;        // gather path: C x 257 (256 byte values, then the fill)
  std::vector<float> sharpCopy;  // SHARPNESS: one plane as it was before the step
  uint64_t lutJob = 0;           // the job and parameter block `lut` was built for
  std::vector<float> lutBlock;
  std::vector<float> image;      // when some point of the program has more channels than outC
  std::vector<float> warped;     // the warp pass's output (HWC floats), which the taps read
  std::vector<int32_t> preTaps;  // copy of the sample's pre-pass taps
  std::vector<float> preWeights;
  std::vector<float> preRows;    // pre pass: horizontal sums of every source row, then a fill row
  std::vector<float> pre;        // the pre-pass image (HWC floats), which the warp reads
  std::vector<float> prePlanes;  // the pre pass's planes (its SSE form) before they are interleaved
  std::vector<float> warpIn;     // WARP op: the image interleaved (HWC), which it reads
  std::vector<uint8_t> levels;   // EQUALIZE: each value's uint8 level
  std::vector<float> mixOrigin;  // MIX ops: the open group's image (O) and its sum (A), as planes
  std::vector<float> mixSum;
  std::vector<Step> preSteps;    // warpOps: the ops before the warp, decoded
  std::vector<float> preOps;     // warpOps: the image the warp reads as planes, while they run
  std::vector<int32_t> rowPos;   // separable pass: index of source row r (r + 1; 0: the fill row) in `hrows`, or -1
  std::vector<int32_t> rowList;  // the source rows the sample's row taps read, in increasing order (-1 first)
  std::vector<float> quad;       // four source rows interleaved: value p of lane l at p*4 + l (then a fill pixel)
  std::vector<float> hrows;      // horizontal sums of every row in rowList: C x outW each
};

// The warp pass of one sample: writes oh x ow x C floats into `out` (pixel (y, x) channel c at
// y*rowStride + x*pixStride + c*chanStride: HWC or planar rows) from the HWC uint8
// source `src` (sh x sw x C) through the warp block `blk` (PLAN_ABI.md, "Warp pass"). The block
// was checked (its real window lies inside the source), so every read is in bounds. Only rows
// y0 .. y1 - 1 of the oh rows are written (a caller may take the image a row at a time).
// `post` (may be null): pointwise work done on each value before it is stored, when the warped
// image is the output itself: the geometry pass's 0 + v (K = 1, weight 1), then the program's
// leading AFFINE ops, each (v - sub[c]) / div[c], in order: the same operations as those passes.
struct WarpPost {
  static constexpr int kMaxAffine = 4;
  int32_t nAffine = 0;
  const float* affine[kMaxAffine] = {};  // each: sub[C], then div[C]
};
void warpSample(const uint8_t* src, int32_t sh, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill,
                int32_t oh, int32_t ow, float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1,
                const WarpPost* post = nullptr);
// The same from a float image (the pass before the warp).
void warpSample(const float* src, int32_t sh, int32_t sw, int32_t C, const float* blk, int32_t mode, const float* fill,
                int32_t oh, int32_t ow, float* out, size_t pixStride, size_t chanStride, size_t rowStride, int32_t y0, int32_t y1,
                const WarpPost* post = nullptr);

// How the warp pass runs on this processor: "avx2 (8 lanes)", "sse4.1 (4 lanes)" or "scalar"
// (warp_lanes.h; BATCHLAB_SIMD=sse4 keeps the four lanes).
const char* warpLanesName();

// Runs sample s: writes its outC*outH*outW floats. Returns "" or why it could not (the arrays
// changed while the job ran, or memory ran out); then the sample's output is unspecified.
std::string runSample(const Job& job, int32_t s, Scratch& scratch);

}  // namespace batchlab
