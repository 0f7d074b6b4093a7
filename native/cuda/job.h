// Packing a plan job (native/PLAN_ABI.md) for the CUDA engine. It is read and checked by the
// reader and check both addons share (../job_read.h, ../plan_check.h), under the kernel's
// limits, before anything is copied to the device; a bad job throws the same JavaScript error
// as the CPU engine (code ERR_BATCHLAB_PLAN, field, expected, received).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../plan.h"
#include "plan_kernel.h"

namespace blcuda {

// Sections of the arena (device or host), each starting on a 256-byte boundary:
//   srcOffsets int64[n] | srcDims int32[2n] | tapIndex int32[T] | tapWeight float[T] |
//   params float[n*P] | warpDims int32[2n] (with a warp pass) | preDims int32[2n] |
//   preTapAt int64[n] | preTapIndex int32[..] | preTapWeight float[..] (with a pre pass) |
//   readAt int64[n] (with warpOps) | program int32[4*nOps] (codes, offsets, JITTER ops,
//   AUTOCONTRAST/EQUALIZE ops) | readBufAt int64[n] (with read-phase stage buffers) |
//   pixels uint8[...] | readImg float[readFloats] (with warpOps) | bufs float[bufFloats] (with
//   stage buffers); the last two written by the kernel, never copied: see readImageOffset)
constexpr size_t kArenaAlign = 256;

struct HostJob {
  batchlab::Job job;                     // as read and checked by the shared reader (../job_read.h)
  DevJob dev{};                          // scalars, program, offsets, fill; pointers unset
  std::vector<const uint8_t*> srcData;   // each source's first byte (JS memory)
  std::vector<size_t> srcBytes;          // height*width*inC of each source
  const int32_t* srcDims = nullptr;
  const int32_t* tapIndex = nullptr;
  const float* tapWeight = nullptr;
  const float* params = nullptr;
  const int32_t* warpDims = nullptr;     // with a warp pass: [2n]
  const int32_t* preDims = nullptr;      // with a pass before the warp: [2n]
  std::vector<int64_t> preTapAt;         // [n]
  const int32_t* preTapIndex = nullptr;
  const float* preTapWeight = nullptr;
  size_t preTaps = 0;
  size_t taps = 0;                       // n*(outH+outW)*K
  size_t paramCount = 0;                 // n*P
  size_t outElements = 0;                // n*outC*outH*outW
  size_t pixelBytes = 0;                 // sum of srcBytes
  std::vector<int64_t> readAt;           // with warpOps: [n] float offset of sample s's read image
  size_t readFloats = 0;                 // with warpOps: sum of readH*readW*inC
  std::vector<int32_t> prog;             // program, opOffsets, jitterOps, wholeOps (nOps each)
  std::vector<Stage> stages;             // in order: the read phase's, then the main phase's
  std::vector<int64_t> readBufAt;        // with read-phase stage buffers: [n]
  size_t bufFloats = 0;                  // all stage buffers (kBufs per phase that uses them)
  bool multiStage = false;               // more than one stage in a phase (WARP/MIX ops or a split)
  // Arena layout.
  size_t offSrcOffsets = 0, offSrcDims = 0, offTapIndex = 0, offTapWeight = 0, offParams = 0, offWarpDims = 0, offPreDims = 0, offPreTapAt = 0,
         offPreTapIndex = 0, offPreTapWeight = 0, offReadAt = 0, offProgram = 0, offReadBufAt = 0;
  size_t metaBytes = 0;                  // where the pixel section starts
};

// Reads and checks `job` (a plain JS object with the ABI's fields). Throws Napi::Error.
HostJob parseJob(Napi::Env env, Napi::Object job);

// Writes the metadata sections into arena[0, metaBytes), with srcOffsets[s] = pixelOffsets[s]
// (byte offsets inside the pixel section).
void packMeta(const HostJob& hj, uint8_t* arena, const std::vector<int64_t>& pixelOffsets);

// Copies every source, back to back, into `dst`, and returns their offsets.
std::vector<int64_t> packPixels(const HostJob& hj, uint8_t* dst);

// Offsets of the sources when they are copied back to back.
std::vector<int64_t> packedOffsets(const HostJob& hj);

// Where the read images (warpOps > 0) start in an arena whose pixel section holds pixelBytes,
// and the arena's whole size.
size_t readImageOffset(const HostJob& hj, size_t pixelBytes);
// Where the stage buffers start (after the read images).
size_t stageBufOffset(const HostJob& hj, size_t pixelBytes);
size_t arenaBytes(const HostJob& hj, size_t pixelBytes);

// The kernel's view of a job whose arena starts at `arena` (device or host address); readImg:
// the read images' memory (with warpOps; may be null otherwise); bufs: the stage buffers (with
// bufFloats > 0).
DevJob bindJob(const HostJob& hj, uint8_t* arena, float* out, float* readImg, float* bufs);

// Runs the kernel's per-pixel code on the CPU, one thread, pixels in row-major order (so the
// contrast mean is summed in the same order as the CPU engine): the stages in order (with
// warpOps, the read phase's into dj.readImg, then the main phase's), each over every sample, as
// the kernel's launches run them. Writes dj.out.
void emulatePlan(const DevJob& dj, const std::vector<Stage>& stages);

}  // namespace blcuda
