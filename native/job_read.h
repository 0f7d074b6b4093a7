// Reading a plan job (native/PLAN_ABI.md) from its JavaScript object, shared by both addons:
// the scalars, the sources (an array of views, or one buffer with srcOffsets) and the typed
// arrays, as a batchlab::Job over the caller's memory. A wrong type or length is a Problem
// (plan_check.h), thrown as PlanFailure; throwPlanError turns one into the JavaScript error
// both addons give: a RangeError (TypeError for a wrong type) with message
// `plan job: <field>: expected <expected>, received <received>` and properties
// code ERR_BATCHLAB_PLAN, field, expected, received.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "plan.h"
#include "plan_check.h"

namespace batchlab {

struct PlanFailure {
  Problem problem;
  bool typeError = false;
};

// The memory a job reads, for the check that `out` shares none of it.
struct JobInputs {
  struct Range {
    std::string name;
    const uint8_t *begin, *end;
  };
  std::vector<Range> ranges;  // srcDims, tapIndex, tapWeight, fill, params, each source's used bytes
  const uint8_t *outBegin = nullptr, *outEnd = nullptr;
};

// What a value is, for messages: "undefined", "3", "a string", "Float32Array of length 4", ...
std::string describe(const Napi::Value& v);

// Reads job `o` into `job` and `len` (pointers into the caller's typed arrays, small arrays
// copied) and checks it with checkJob under `lim`. `keep` is called with every value whose
// memory the job reads (the CPU engine holds references until the job ends). `withOut`: the
// job carries `out` (the CPU engine) rather than a separate device buffer (CUDA). Throws
// PlanFailure; Napi::Error where a getter of the job threw.
void readJob(Napi::Env env, const Napi::Object& o, const Limits& lim, bool withOut, Job& job, Lengths& len, JobInputs& inputs,
             const std::function<void(napi_value)>& keep);

// The JavaScript error of a refused job.
Napi::Error planError(Napi::Env env, const PlanFailure& f);

}  // namespace batchlab
