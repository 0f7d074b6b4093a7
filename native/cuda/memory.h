// batchlab_cuda: memory. Pinned host memory (ArrayBuffers over cudaHostAlloc memory, freed by
// free() or by the ArrayBuffer's finalizer; a registry lets runPlan copy straight from pinned
// sources and lets JavaScript ask whether a view is pinned), device buffers, memInfo().
#pragma once

#include <mutex>

#include "common.h"

namespace blcuda {

struct PinnedRec {
  void* ptr;
  size_t bytes;
  bool freed;
};

// Guards the registry of pinned allocations.
std::mutex& pinnedMutex();
// The live pinned allocation containing [p, p+bytes), or nullptr. Caller holds pinnedMutex().
PinnedRec* pinnedContaining(const void* p, size_t bytes);

Napi::Value PinnedAlloc(const Napi::CallbackInfo& info);
Napi::Value PinnedFree(const Napi::CallbackInfo& info);
Napi::Value IsPinned(const Napi::CallbackInfo& info);
Napi::Value MemInfo(const Napi::CallbackInfo& info);

// ---------------------------------------------------------------------------------------------
// Device buffer

class DeviceBufferW : public Napi::ObjectWrap<DeviceBufferW> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "DeviceBuffer",
                       {InstanceMethod<&DeviceBufferW::Free>("free"), InstanceAccessor<&DeviceBufferW::Bytes>("bytes"),
                        InstanceAccessor<&DeviceBufferW::Freed>("freed")});
  }
  explicit DeviceBufferW(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBufferW>(info) {
    Napi::Env env = info.Env();
    requireDevice(env);
    const size_t bytes = bytesArg(env, info[0], "bytes", 1);
    void* p = nullptr;
    checkAlloc(env, cudaMalloc(&p, bytes), "device allocation (cudaMalloc)", bytes, false);
    p_ = static_cast<uint8_t*>(p);
    bytes_ = bytes;
  }
  ~DeviceBufferW() override {
    if (p_) cudaFree(p_);
  }
  uint8_t* ptr(Napi::Env env) const {
    if (!p_) throw plainError(env, "ERR_CUDA", "the device buffer was freed");
    return p_;
  }
  size_t bytes() const { return bytes_; }

 private:
  Napi::Value Free(const Napi::CallbackInfo& info) {
    if (p_) check(info.Env(), cudaFree(p_), "cudaFree");
    p_ = nullptr;
    return info.Env().Undefined();
  }
  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)bytes_); }
  Napi::Value Freed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), p_ == nullptr); }
  uint8_t* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace blcuda
