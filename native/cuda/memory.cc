// batchlab_cuda: pinned host memory, device memory information (memory.h).
#include "memory.h"

#include <map>

namespace blcuda {

namespace {
std::mutex g_pinMu;
std::map<uintptr_t, PinnedRec*> g_pinned;  // by start address; only live allocations
}  // namespace

std::mutex& pinnedMutex() { return g_pinMu; }

PinnedRec* pinnedContaining(const void* p, size_t bytes) {
  const uintptr_t a = (uintptr_t)p;
  auto it = g_pinned.upper_bound(a);
  if (it == g_pinned.begin()) return nullptr;
  --it;
  PinnedRec* r = it->second;
  if (a + bytes <= it->first + r->bytes) return r;
  return nullptr;
}

static void finalizePinned(Napi::Env, void*, PinnedRec* rec) {
  {
    std::lock_guard<std::mutex> lock(g_pinMu);
    if (!rec->freed) {
      g_pinned.erase((uintptr_t)rec->ptr);
      rec->freed = true;
      cudaFreeHost(rec->ptr);
      cudaGetLastError();
    }
  }
  delete rec;
}

Napi::Value PinnedAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  const size_t bytes = bytesArg(env, info[0], "bytes", 1);
  void* p = nullptr;
  checkAlloc(env, cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "pinned host allocation (cudaHostAlloc)", bytes,
             true);
  PinnedRec* rec = new PinnedRec{p, bytes, false};
  {
    std::lock_guard<std::mutex> lock(g_pinMu);
    g_pinned[(uintptr_t)p] = rec;
  }
  return Napi::ArrayBuffer::New(env, p, bytes, finalizePinned, rec);
}

Napi::Value PinnedFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer: expected an ArrayBuffer from pinned()");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return Napi::Boolean::New(env, false);  // already freed
  {
    std::lock_guard<std::mutex> lock(g_pinMu);
    auto it = g_pinned.find((uintptr_t)ab.Data());
    if (it == g_pinned.end() || it->second->bytes != ab.ByteLength()) {
      throw Napi::TypeError::New(env, "buffer: not a pinned buffer allocated by this addon");
    }
    PinnedRec* rec = it->second;
    g_pinned.erase(it);
    rec->freed = true;
    const cudaError_t e = cudaFreeHost(rec->ptr);
    if (e != cudaSuccess) cudaGetLastError();
  }
  ab.Detach();  // JS can no longer touch the freed memory; the finalizer sees freed = true
  return Napi::Boolean::New(env, true);
}

Napi::Value IsPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HostSpan h = hostSpan(env, info[0], "view");
  std::lock_guard<std::mutex> lock(g_pinMu);
  return Napi::Boolean::New(env, h.data != nullptr && pinnedContaining(h.data, h.bytes) != nullptr);
}


Napi::Value MemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  requireDevice(env);
  size_t f = 0, t = 0;
  check(env, cudaMemGetInfo(&f, &t), "cudaMemGetInfo");
  Napi::Object r = Napi::Object::New(env);
  r.Set("free", (double)f);
  r.Set("total", (double)t);
  return r;
}

}  // namespace blcuda
