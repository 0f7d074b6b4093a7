// The plan job check of native/PLAN_ABI.md, shared by both addons (batchlab_cpu and
// batchlab_cuda) and independent of Node-API: every field, length, source, tap index and op
// parameter block is checked before any pixel is touched. A refusal is a Problem: the field,
// what was expected and what was received, which the addons turn into one JavaScript error
// shape (message `plan job: <field>: expected <expected>, received <received>`, properties
// code ERR_BATCHLAB_PLAN, field, expected, received; see job_read.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "plan.h"

namespace batchlab {

struct Problem {
  std::string field, expected, received;
  bool ok() const { return field.empty(); }
  std::string message() const { return field + ": expected " + expected + ", received " + received; }
};

// What an engine can run: the CPU engine's bounds by default, the CUDA kernel's are smaller.
struct Limits {
  int32_t maxChannels = kMaxChannels;
  int32_t maxTaps = kMaxTaps;
  int32_t maxSide = kMaxSide;
  int32_t maxSamples = kMaxSamples;
  int32_t maxOps = 1 << 20;
  // The next three hold per stage: the ops before the warp (warpOps) and those after it.
  // AUTOCONTRAST and EQUALIZE ops (each keeps per-channel tables while a sample runs).
  int32_t maxWholeImageOps = 1 << 20;
  // SHARPNESS ops, and whether JITTER, AUTOCONTRAST or EQUALIZE may follow one (the CUDA kernel
  // recomputes a SHARPNESS neighbourhood per pixel and allows neither).
  int32_t maxSharpnessOps = 1 << 20;
  bool reductionsAfterSharpness = true;
};

// Floats in an op's parameter block at C channels (with its `enabled` flag); -1 for an unknown code.
int opParamCount(int32_t code, int32_t C);

// The scalar fields, read by the addon: n, inC, outC, outH, outW, K within the limits.
Problem checkScalars(const Job& job, const Limits& lim);

// Everything else: lengths, sources, srcDims, every tap index, op codes, every op's parameter
// block at the channel count of that point, GRAY/JITTER/ERASE parameters of enabled ops, the
// final channel count. Requires job.P = params.length / n.
Problem checkJob(const Job& job, const Lengths& len, const Limits& lim);

// The per-sample part of checkJob, on given copies of sample s's taps and parameter block
// (the CPU engine checks its private copies again while the job runs).
Problem checkSample(const Job& job, int32_t s, const int32_t* taps, const float* block);

// Sample s's pre-pass taps (a copy, (preH + preW) * preK of them) against its source.
Problem checkPreTaps(const Job& job, int32_t s, const int32_t* taps);

// A number as the messages write it: integers without a fraction, NaN, Infinity.
std::string num(double v);

}  // namespace batchlab
