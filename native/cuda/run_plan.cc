// batchlab_cuda: the fused plan kernel from JavaScript. runPlan(job, out, stream) copies a job
// (read and checked by the shared reader, job.h) to the device and launches the kernel;
// emulatePlan(job) runs the kernel's code on the CPU; launchShape(job) says how runPlan would
// launch it.
#include "run_plan.h"

#include <vector>

#include "job.h"
#include "launch.h"
#include "memory.h"
#include "streams.h"

namespace blcuda {
namespace {

// If every source lies in one pinned allocation and their span is not much larger than the
// pixels themselves, returns true with the span; runPlan then copies it straight from there.
bool pinnedSpan(const HostJob& hj, const uint8_t** start, size_t* bytes) {
  if (hj.srcData.empty()) return false;
  std::lock_guard<std::mutex> lock(pinnedMutex());
  PinnedRec* rec = nullptr;
  const uint8_t* lo = nullptr;
  const uint8_t* hi = nullptr;
  for (size_t s = 0; s < hj.srcData.size(); ++s) {
    PinnedRec* r = pinnedContaining(hj.srcData[s], hj.srcBytes[s]);
    if (r == nullptr || (rec != nullptr && r != rec)) return false;
    rec = r;
    const uint8_t* a = hj.srcData[s];
    const uint8_t* b = a + hj.srcBytes[s];
    if (!lo || a < lo) lo = a;
    if (!hi || b > hi) hi = b;
  }
  const size_t span = (size_t)(hi - lo);
  if (span > 2 * hj.pixelBytes + (1u << 20)) return false;
  *start = lo;
  *bytes = span;
  return true;
}

struct EventSet {
  cudaEvent_t ev[3] = {nullptr, nullptr, nullptr};
  ~EventSet() {
    for (cudaEvent_t e : ev)
      if (e) cudaEventDestroy(e);
  }
};

// runPlan(job, deviceBuffer, stream) -> Promise<{copyMs, kernelMs}>
}  // namespace

Napi::Value RunPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* a = env.GetInstanceData<AddonData>();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "job: expected a plan job object");
  HostJob hj = parseJob(env, info[0].As<Napi::Object>());  // a bad job is refused with or without a device
  requireDevice(env);
  DeviceBufferW* out = unwrapAs<DeviceBufferW>(env, info[1], a->bufferCtor, "DeviceBuffer (output)");
  StreamW* st = unwrapAs<StreamW>(env, info[2], a->streamCtor, "Stream");
  const size_t outBytes = hj.outElements * sizeof(float);
  if (out->bytes() < outBytes) {
    throw Napi::RangeError::New(env, "output: the batch needs n*outC*outH*outW*4 = " + std::to_string(outBytes) +
                                         " bytes, the device buffer has " + std::to_string(out->bytes()));
  }
  float* outPtr = reinterpret_cast<float*>(out->ptr(env));
  cudaStream_t s = st->handle(env);

  const uint8_t* spanStart = nullptr;
  size_t spanBytes = 0;
  const bool direct = pinnedSpan(hj, &spanStart, &spanBytes);
  const size_t pixelBytes = direct ? spanBytes : hj.pixelBytes;
  const size_t stagingBytes = hj.metaBytes + (direct ? 0 : hj.pixelBytes);

  StreamW::Slot& slot = st->staging(env, stagingBytes > 0 ? stagingBytes : 1);
  std::vector<int64_t> offsets;
  if (direct) {
    offsets.resize(hj.srcData.size());
    for (size_t i = 0; i < offsets.size(); ++i) offsets[i] = (int64_t)(hj.srcData[i] - spanStart);
  } else {
    offsets = packPixels(hj, slot.host + hj.metaBytes);
  }
  packMeta(hj, slot.host, offsets);
  // With ops before the warp, the read images follow the pixels (written by the kernel's
  // first launch, never copied).
  const size_t arenaSize = arenaBytes(hj, pixelBytes);
  uint8_t* arena = st->arena(env, arenaSize > 0 ? arenaSize : 1);
  float* readImg = hj.readFloats > 0 ? reinterpret_cast<float*>(arena + readImageOffset(hj, pixelBytes)) : nullptr;

  EventSet evs;
  for (cudaEvent_t& e : evs.ev) check(env, cudaEventCreate(&e), "cudaEventCreate");
  check(env, cudaEventRecord(evs.ev[0], s), "cudaEventRecord");
  check(env, cudaMemcpyAsync(arena, slot.host, stagingBytes, cudaMemcpyHostToDevice, s),
        "cudaMemcpyAsync (plan job to device)");
  if (direct && spanBytes > 0) {
    check(env, cudaMemcpyAsync(arena + hj.metaBytes, spanStart, spanBytes, cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync (pinned sources to device)");
  }
  check(env, cudaEventRecord(slot.consumed, s), "cudaEventRecord");
  slot.used = true;
  check(env, cudaEventRecord(evs.ev[1], s), "cudaEventRecord");
  float* bufs = hj.bufFloats > 0 ? reinterpret_cast<float*>(arena + stageBufOffset(hj, pixelBytes)) : nullptr;
  const DevJob dj = bindJob(hj, arena, outPtr, readImg, bufs);
  check(env, launchPlan(dj, hj.stages, s), "plan kernel launch");
  check(env, cudaEventRecord(evs.ev[2], s), "cudaEventRecord");

  auto p = std::make_unique<Pending>(env, a, "plan kernel");
  p->timings = true;
  for (int i = 0; i < 3; ++i) {
    p->ev[i] = evs.ev[i];
    evs.ev[i] = nullptr;
  }
  p->keep.push_back(Napi::Persistent(info[1]));
  p->keep.push_back(Napi::Persistent(info[2]));
  if (direct) p->keep.push_back(Napi::Persistent(info[0].As<Napi::Object>().Get("sources")));
  return whenDone(env, s, std::move(p));
}

// emulatePlan(job) -> Float32Array: the kernel's code on the CPU (no device needed).
Napi::Value EmulatePlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "job: expected a plan job object");
  HostJob hj = parseJob(env, info[0].As<Napi::Object>());
  std::vector<uint8_t> arena(hj.metaBytes + hj.pixelBytes + 1);
  std::vector<int64_t> offsets = packPixels(hj, arena.data() + hj.metaBytes);
  packMeta(hj, arena.data(), offsets);
  std::vector<float> readImg(hj.readFloats);  // with ops before the warp: the read images
  std::vector<float> bufs(hj.bufFloats);      // with WARP/MIX ops or split stages: the stage images
  Napi::Float32Array out = Napi::Float32Array::New(env, hj.outElements);
  emulatePlan(bindJob(hj, arena.data(), out.Data(), readImg.empty() ? nullptr : readImg.data(), bufs.empty() ? nullptr : bufs.data()), hj.stages);
  return out;
}

// launchShape(job) -> {gridX, gridY, block}: how runPlan would launch this job.
Napi::Value LaunchShapeOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "job: expected a plan job object");
  HostJob hj = parseJob(env, info[0].As<Napi::Object>());
  const LaunchShape sh = planLaunchShape(hj.dev);
  Napi::Object r = Napi::Object::New(env);
  r.Set("gridX", sh.gridX);
  r.Set("gridY", sh.gridY);
  r.Set("block", sh.block);
  return r;
}

}  // namespace blcuda
