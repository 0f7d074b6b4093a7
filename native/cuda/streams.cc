// batchlab_cuda: events and copies (streams.h).
#include "streams.h"

namespace blcuda {

Napi::Value EventW::Record(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* a = env.GetInstanceData<AddonData>();
  StreamW* s = unwrapAs<StreamW>(env, info[0], a->streamCtor, "Stream");
  check(env, cudaEventRecord(handle(env), s->handle(env)), "cudaEventRecord");
  return env.Undefined();
}

Napi::Value EventW::ElapsedSince(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* a = env.GetInstanceData<AddonData>();
  EventW* start = unwrapAs<EventW>(env, info[0], a->eventCtor, "Event");
  float ms = 0;
  check(env, cudaEventElapsedTime(&ms, start->handle(env), handle(env)), "cudaEventElapsedTime");
  return Napi::Number::New(env, ms);
}

// With track = false the caller keeps hostView alive until the stream has passed the copy.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  AddonData* a = env.GetInstanceData<AddonData>();
  StreamW* st = unwrapAs<StreamW>(env, info[0], a->streamCtor, "Stream");
  const bool toDevice = info[1].ToBoolean().Value();
  DeviceBufferW* buf = unwrapAs<DeviceBufferW>(env, info[2], a->bufferCtor, "DeviceBuffer");
  const size_t off = bytesArg(env, info[3], "deviceOffset");
  HostSpan h = hostSpan(env, info[4], "host");
  const bool track = info.Length() < 6 || info[5].ToBoolean().Value();
  if (off > buf->bytes() || h.bytes > buf->bytes() - off) {
    throw Napi::RangeError::New(env, "copy of " + std::to_string(h.bytes) + " bytes at device offset " +
                                         std::to_string(off) + " overruns a device buffer of " +
                                         std::to_string(buf->bytes()) + " bytes");
  }
  cudaStream_t s = st->handle(env);
  uint8_t* dev = buf->ptr(env) + off;
  if (h.bytes > 0) {
    check(env,
          toDevice ? cudaMemcpyAsync(dev, h.data, h.bytes, cudaMemcpyHostToDevice, s)
                   : cudaMemcpyAsync(h.data, dev, h.bytes, cudaMemcpyDeviceToHost, s),
          toDevice ? "cudaMemcpyAsync (host to device)" : "cudaMemcpyAsync (device to host)");
  }
  if (!track) return env.Undefined();
  auto p = std::make_unique<Pending>(env, a, toDevice ? "host-to-device copy" : "device-to-host copy");
  p->keep.push_back(Napi::Persistent(info[0]));
  p->keep.push_back(Napi::Persistent(info[2]));
  p->keep.push_back(Napi::Persistent(info[4]));
  return whenDone(env, s, std::move(p));
}

}  // namespace blcuda
