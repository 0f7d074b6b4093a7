// The plan executor of native/PLAN_ABI.md: one batch, one job, validated before any pixel is
// touched, executed sample by sample with IEEE float32 arithmetic in the ABI's order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace batchlab {

enum OpCode : int32_t { kAffine = 0, kGray = 1, kJitter = 2, kErase = 3 };

struct PlanView {
  int32_t n = 0, inC = 0, outC = 0, outH = 0, outW = 0, K = 0;
  std::vector<const uint8_t*> sources;
  std::vector<size_t> sourceBytes;
  const int32_t* srcDims = nullptr;
  const int32_t* tapIndex = nullptr;
  const float* tapWeight = nullptr;
  const float* fill = nullptr;
  std::vector<int32_t> program;
  std::vector<int32_t> opOffsets;
  std::vector<int32_t> opChannelsIn;  // channel count entering each op
  const float* params = nullptr;
  size_t paramsPerSample = 0;
  float* out = nullptr;
  int32_t maxChannels = 0;  // most channels any point of the program holds
  bool unitTaps = false;    // K == 1 and every weight 1: the geometry pass is a gather
  bool affineOnly = false;  // the program has only AFFINE ops
};

// Checks sizes, tap indices, op codes, offsets and channel counts. Returns "" or the problem.
std::string validate(const PlanView& p, size_t tapLength, size_t fillLength, size_t paramsLength, size_t outLength);

// Per-worker working memory for one job (fill and channels are fixed within a job): a buffer for programs that need more channels than the output
// slot has, and the byte-to-float lookup table of the gather+affine path with the parameter
// block it was built for (consecutive samples usually share it).
struct Scratch {
  std::vector<float> buffer;
  std::vector<float> lutParams;
  std::vector<float> lut;  // C x 257: 256 byte values, then the fill value
};

// Runs sample s. Thread-safe for distinct samples with distinct Scratch objects.
void runSample(const PlanView& p, int32_t s, Scratch& scratch);

}  // namespace batchlab
