// batchlab_cuda: runPlan, emulatePlan and launchShape (run_plan.cc).
#pragma once

#include "common.h"

namespace blcuda {

Napi::Value RunPlan(const Napi::CallbackInfo& info);
Napi::Value EmulatePlan(const Napi::CallbackInfo& info);
Napi::Value LaunchShapeOf(const Napi::CallbackInfo& info);

}  // namespace blcuda
