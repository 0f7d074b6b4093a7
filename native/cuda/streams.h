// batchlab_cuda: streams (with the staging and device memory runPlan reuses per stream),
// events, and asynchronous copies between host and device memory.
#pragma once

#include "common.h"
#include "memory.h"

namespace blcuda {

// ---------------------------------------------------------------------------------------------
// Stream

class StreamW : public Napi::ObjectWrap<StreamW> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Stream",
                       {InstanceMethod<&StreamW::Synchronize>("synchronize"), InstanceMethod<&StreamW::Query>("query"),
                        InstanceMethod<&StreamW::Done>("done"), InstanceMethod<&StreamW::Destroy>("destroy"),
                        InstanceAccessor<&StreamW::Destroyed>("destroyed")});
  }

  explicit StreamW(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamW>(info) {
    Napi::Env env = info.Env();
    requireDevice(env);
    check(env, cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  ~StreamW() override { release(); }

  cudaStream_t handle(Napi::Env env) const {
    if (!s_) throw plainError(env, "ERR_CUDA", "the stream was destroyed");
    return s_;
  }

  // Staging and device memory that runPlan reuses across the batches of this stream.
  struct Slot {
    uint8_t* host = nullptr;
    size_t cap = 0;
    cudaEvent_t consumed = nullptr;  // recorded after the copy that reads `host`
    bool used = false;
  };

  // A pinned staging slot of at least `bytes`, free to overwrite (waits for its last copy).
  Slot& staging(Napi::Env env, size_t bytes) {
    Slot& slot = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    if (!slot.consumed) check(env, cudaEventCreateWithFlags(&slot.consumed, cudaEventDisableTiming), "cudaEventCreate");
    if (slot.used) {
      check(env, cudaEventSynchronize(slot.consumed), "cudaEventSynchronize (staging reuse)");
      slot.used = false;
    }
    if (slot.cap < bytes) {
      if (slot.host) cudaFreeHost(slot.host);
      slot.host = nullptr;
      slot.cap = 0;
      const size_t want = bytes + bytes / 4;
      void* p = nullptr;
      cudaError_t e = cudaHostAlloc(&p, want, cudaHostAllocPortable);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        e = cudaHostAlloc(&p, bytes, cudaHostAllocPortable);
        if (e == cudaSuccess) slot.cap = bytes;
      } else if (e == cudaSuccess) {
        slot.cap = want;
      }
      checkAlloc(env, e, "pinned staging allocation for runPlan (cudaHostAlloc)", bytes, true);
      slot.host = static_cast<uint8_t*>(p);
    }
    return slot;
  }

  // A device arena of at least `bytes`. Growing waits for this stream's earlier work.
  uint8_t* arena(Napi::Env env, size_t bytes) {
    if (arenaCap_ >= bytes) return arena_;
    if (arena_) {
      check(env, cudaStreamSynchronize(s_), "cudaStreamSynchronize (arena growth)");
      cudaFree(arena_);
      arena_ = nullptr;
      arenaCap_ = 0;
    }
    const size_t want = bytes + bytes / 4;
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, want);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      e = cudaMalloc(&p, bytes);
      if (e == cudaSuccess) arenaCap_ = bytes;
    } else if (e == cudaSuccess) {
      arenaCap_ = want;
    }
    checkAlloc(env, e, "device job arena for runPlan (cudaMalloc)", bytes, false);
    arena_ = static_cast<uint8_t*>(p);
    return arena_;
  }

 private:
  static constexpr int kSlots = 2;

  Napi::Value Synchronize(const Napi::CallbackInfo& info) {
    check(info.Env(), cudaStreamSynchronize(handle(info.Env())), "cudaStreamSynchronize");
    return info.Env().Undefined();
  }
  Napi::Value Query(const Napi::CallbackInfo& info) {
    const cudaError_t e = cudaStreamQuery(handle(info.Env()));
    if (e == cudaErrorNotReady) return Napi::Boolean::New(info.Env(), false);
    check(info.Env(), e, "cudaStreamQuery");
    return Napi::Boolean::New(info.Env(), true);
  }
  Napi::Value Done(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto p = std::make_unique<Pending>(env, env.GetInstanceData<AddonData>(), "work on a stream");
    p->keep.push_back(Napi::Persistent(Napi::Value(info.This())));
    return whenDone(env, handle(env), std::move(p));
  }
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (s_) check(info.Env(), cudaStreamSynchronize(s_), "cudaStreamSynchronize (destroy)");
    release();
    return info.Env().Undefined();
  }
  Napi::Value Destroyed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), s_ == nullptr); }

  void release() noexcept {
    if (!s_) return;
    cudaStreamSynchronize(s_);
    for (Slot& slot : slots_) {
      if (slot.consumed) cudaEventDestroy(slot.consumed);
      if (slot.host) cudaFreeHost(slot.host);
      slot = Slot{};
    }
    if (arena_) cudaFree(arena_);
    arena_ = nullptr;
    arenaCap_ = 0;
    cudaStreamDestroy(s_);
    s_ = nullptr;
    cudaGetLastError();
  }

  cudaStream_t s_ = nullptr;
  Slot slots_[kSlots];
  int next_ = 0;
  uint8_t* arena_ = nullptr;
  size_t arenaCap_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Event

class EventW : public Napi::ObjectWrap<EventW> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Event",
                       {InstanceMethod<&EventW::Record>("record"), InstanceMethod<&EventW::Query>("query"),
                        InstanceMethod<&EventW::Synchronize>("synchronize"),
                        InstanceMethod<&EventW::ElapsedSince>("elapsedSince"),
                        InstanceMethod<&EventW::Destroy>("destroy")});
  }
  explicit EventW(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EventW>(info) {
    Napi::Env env = info.Env();
    requireDevice(env);
    const bool timing = info.Length() < 1 || !info[0].IsBoolean() || info[0].As<Napi::Boolean>().Value();
    check(env, cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
  }
  ~EventW() override {
    if (e_) cudaEventDestroy(e_);
  }
  cudaEvent_t handle(Napi::Env env) const {
    if (!e_) throw plainError(env, "ERR_CUDA", "the event was destroyed");
    return e_;
  }

 private:
  Napi::Value Record(const Napi::CallbackInfo& info);
  Napi::Value Query(const Napi::CallbackInfo& info) {
    const cudaError_t e = cudaEventQuery(handle(info.Env()));
    if (e == cudaErrorNotReady) return Napi::Boolean::New(info.Env(), false);
    check(info.Env(), e, "cudaEventQuery");
    return Napi::Boolean::New(info.Env(), true);
  }
  Napi::Value Synchronize(const Napi::CallbackInfo& info) {
    check(info.Env(), cudaEventSynchronize(handle(info.Env())), "cudaEventSynchronize");
    return info.Env().Undefined();
  }
  Napi::Value ElapsedSince(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    if (e_) cudaEventDestroy(e_);
    e_ = nullptr;
    return info.Env().Undefined();
  }
  cudaEvent_t e_ = nullptr;
};

// copy(stream, toDevice, deviceBuffer, deviceOffset, host, track): an asynchronous copy.
Napi::Value Copy(const Napi::CallbackInfo& info);

}  // namespace blcuda
