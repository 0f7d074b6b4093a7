// batchlab_cuda: the CUDA part of batchlab's native addon (a separate .node so that the CPU
// addon never depends on CUDA). Small surface: availability and device info, pinned host
// buffers, streams, events, device buffers, async copies, and the fused plan kernel.
//
// Every CUDA failure becomes a JavaScript exception (or a rejected promise for work that fails
// on the device): code ERR_CUDA with the CUDA error name, or ERR_CUDA_OOM with requestedBytes
// and freeBytes for allocation failures. Nothing here aborts the process.
//
// Completion of asynchronous work: a stream callback (cudaStreamAddCallback, which also
// reports device errors) posts to one thread-safe function; its JS-thread side resolves the
// promise and releases the JS objects the work kept alive. The thread-safe function is
// referenced only while work is pending, so idle streams never keep Node's event loop alive.
//
// Its files: common (errors, availability, argument helpers, completion), memory (pinned host
// memory, device buffers), streams (streams, events, copies), run_plan (the plan kernel), job
// (packing a job read by the shared reader; the CPU emulation). This one registers the exports.
#include <cuda_runtime_api.h>
#include <napi.h>

#include <string>

#include "common.h"
#include "memory.h"
#include "run_plan.h"
#include "streams.h"

namespace blcuda {
namespace {

Napi::Value Available(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Availability& a = availability();
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", a.ok);
  r.Set("reason", a.reason);
  r.Set("deviceCount", a.deviceCount);
  r.Set("runtimeVersion", versionString(a.runtimeVersion));
  r.Set("driverVersion", a.driverVersion ? versionString(a.driverVersion) : std::string(""));
  r.Set("error", a.errorName);
  return r;
}

Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  const Availability& a = availability();
  Napi::Array out = Napi::Array::New(env, (size_t)a.deviceCount);
  for (int i = 0; i < a.deviceCount; ++i) {
    cudaDeviceProp p;
    check(env, cudaGetDeviceProperties(&p, i), "cudaGetDeviceProperties(" + std::to_string(i) + ")");
    int memClock = 0;
    if (cudaDeviceGetAttribute(&memClock, cudaDevAttrMemoryClockRate, i) != cudaSuccess) {
      memClock = 0;
      cudaGetLastError();
    }
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", i);
    d.Set("name", std::string(p.name));
    d.Set("totalMemory", (double)p.totalGlobalMem);
    Napi::Array cc = Napi::Array::New(env, 2);
    cc.Set(0u, p.major);
    cc.Set(1u, p.minor);
    d.Set("computeCapability", cc);
    d.Set("multiprocessors", p.multiProcessorCount);
    d.Set("memoryBusWidth", p.memoryBusWidth);
    d.Set("memoryClockKHz", memClock);
    out.Set((uint32_t)i, d);
  }
  return out;
}


Napi::Value SetDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  const int i = (int)numberArg(env, info[0], "index", 0, availability().deviceCount - 1);
  check(env, cudaSetDevice(i), "cudaSetDevice(" + std::to_string(i) + ")");
  return env.Undefined();
}

Napi::Value GetDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  int i = 0;
  check(env, cudaGetDevice(&i), "cudaGetDevice");
  return Napi::Number::New(env, i);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  AddonData* a = new AddonData();
  a->tsfn = Tsfn::New(env, "batchlab_cuda completion", 0, 1, a);
  a->tsfn.Unref(env);
  Napi::Function streamCtor = StreamW::Init(env);
  Napi::Function eventCtor = EventW::Init(env);
  Napi::Function bufferCtor = DeviceBufferW::Init(env);
  a->streamCtor = Napi::Persistent(streamCtor);
  a->eventCtor = Napi::Persistent(eventCtor);
  a->bufferCtor = Napi::Persistent(bufferCtor);
  env.SetInstanceData<AddonData>(a);

  exports.Set("available", Napi::Function::New(env, Available, "available"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  exports.Set("memInfo", Napi::Function::New(env, MemInfo, "memInfo"));
  exports.Set("setDevice", Napi::Function::New(env, SetDevice, "setDevice"));
  exports.Set("getDevice", Napi::Function::New(env, GetDevice, "getDevice"));
  exports.Set("pinnedAlloc", Napi::Function::New(env, PinnedAlloc, "pinnedAlloc"));
  exports.Set("pinnedFree", Napi::Function::New(env, PinnedFree, "pinnedFree"));
  exports.Set("isPinned", Napi::Function::New(env, IsPinned, "isPinned"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("runPlan", Napi::Function::New(env, RunPlan, "runPlan"));
  exports.Set("emulatePlan", Napi::Function::New(env, EmulatePlan, "emulatePlan"));
  exports.Set("launchShape", Napi::Function::New(env, LaunchShapeOf, "launchShape"));
  exports.Set("Stream", streamCtor);
  exports.Set("Event", eventCtor);
  exports.Set("DeviceBuffer", bufferCtor);
  Napi::Object build = Napi::Object::New(env);
  build.Set("cudaRuntime", versionString(CUDART_VERSION));
  build.Set("targets", "sm_80, sm_90, compute_90 (PTX)");
  exports.Set("build", build);
  return exports;
}

}  // namespace
}  // namespace blcuda

static Napi::Object InitBatchlabCuda(Napi::Env env, Napi::Object exports) { return blcuda::Init(env, exports); }

NODE_API_MODULE(batchlab_cuda, InitBatchlabCuda)
