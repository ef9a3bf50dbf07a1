/* Device and pinned memory of the emulated device (host memory, kept in a registry so
 * that every copy, kernel argument and library call can be checked against what it
 * points at), and the copies and memsets, with the real runtime's rules: a copy from
 * pinned memory reads its source when it runs on its stream (so the caller must not
 * reuse it before), a copy from pageable memory is staged at the call, a copy into
 * pageable memory returns when it is done; allocation and freeing are refused during a
 * capture, and freeing waits for the device. New device memory holds NaN bytes (0xff),
 * as device memory holds whatever was there: code that reads what it never wrote fails. */
#include <cuda_runtime.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "emu_internal.h"

using emu::set_error;

namespace {

struct Alloc {
    size_t bytes;
    emu::MemKind kind;
};
std::mutex reg_mu;  /* the registry only (never held while waiting) */
std::map<uintptr_t, Alloc> registry;

void remember(void *p, size_t bytes, emu::MemKind kind) {
    std::lock_guard<std::mutex> lk(reg_mu);
    registry[(uintptr_t)p] = Alloc{bytes, kind};
    if (kind == emu::MEM_DEVICE) emu::device_bytes += (long)bytes;
}

/* the allocation that starts at p, removed from the registry; 0 bytes when none */
Alloc forget(void *p, emu::MemKind kind) {
    std::lock_guard<std::mutex> lk(reg_mu);
    auto it = registry.find((uintptr_t)p);
    if (it == registry.end() || it->second.kind != kind) return Alloc{0, emu::MEM_HOST};
    Alloc a = it->second;
    registry.erase(it);
    if (kind == emu::MEM_DEVICE) emu::device_bytes -= (long)a.bytes;
    return a;
}

void wait_copy_delay(int us) {
    if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

}  // namespace

namespace emu {

MemKind kind_of(const void *p, size_t bytes) {
    std::lock_guard<std::mutex> lk(reg_mu);
    uintptr_t a = (uintptr_t)p;
    auto it = registry.upper_bound(a);
    if (it == registry.begin()) return MEM_HOST;
    --it;
    if (a + bytes > it->first + it->second.bytes || a >= it->first + it->second.bytes) return MEM_HOST;
    return it->second.kind;
}

}  // namespace emu

/* Enqueues a copy of n bytes: the source read when the copy runs (device or pinned
 * memory), or staged now (pageable memory); the destination written when it runs. */
static cudaError_t copy_on_stream(void *dst, const void *src, size_t n, emu::MemKind from, cudaStream_t s) {
    int delay = from == emu::MEM_DEVICE ? 0 : emu::copy_delay_us();
    if (from != emu::MEM_HOST)
        return emu::enqueue(s, emu::Work{[=] { wait_copy_delay(delay); memmove(dst, src, n); }, nullptr});
    if (emu::capturing(s)) emu::fail("not modelled: a copy from pageable host memory recorded into a capture");
    auto staged = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + n);
    return emu::enqueue(s, emu::Work{[=] { wait_copy_delay(delay); memcpy(dst, staged->data(), n); }, nullptr});
}

/* The checks of the real runtime (each side where kind says it is), then the copy. */
static cudaError_t copy_async(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    if (n == 0) return cudaSuccess;
    if (!dst || !src) return cudaErrorInvalidValue;
    emu::MemKind kd = emu::kind_of(dst, n), ks = emu::kind_of(src, n);
    if (kind == cudaMemcpyDefault)
        kind = kd == emu::MEM_DEVICE ? (ks == emu::MEM_DEVICE ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                     : (ks == emu::MEM_DEVICE ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyHostToHost) emu::fail("not modelled: cudaMemcpy*Async host to host");
    if ((kd == emu::MEM_DEVICE) != dst_dev || (ks == emu::MEM_DEVICE) != src_dev) return cudaErrorInvalidValue;
    if (kind != cudaMemcpyDeviceToHost || kd == emu::MEM_PINNED) return copy_on_stream(dst, src, n, ks, s);
    /* into pageable memory: returns once the copy is done */
    if (emu::capturing(s)) emu::fail("not modelled: a copy into pageable host memory recorded into a capture");
    int delay = emu::copy_delay_us();
    cudaError_t e = emu::enqueue(s, emu::Work{[=] { wait_copy_delay(delay); memcpy(dst, src, n); }, nullptr});
    if (e == cudaSuccess) emu::drain(s);
    return e;
}

extern "C" {

cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (!p) return set_error(cudaErrorInvalidValue);
    *p = NULL;
    cudaError_t e = emu::refuse_in_capture();
    if (e != cudaSuccess) return set_error(e);
    if (bytes == 0) return cudaSuccess;
    size_t rounded = (bytes + 255) / 256 * 256;
    if ((size_t)emu::device_bytes + rounded > emu::config().mem_limit) return set_error(cudaErrorMemoryAllocation);
    void *m = aligned_alloc(256, rounded);
    if (!m) return set_error(cudaErrorMemoryAllocation);
    memset(m, 0xff, rounded);
    remember(m, rounded, emu::MEM_DEVICE);
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    cudaError_t e = emu::refuse_in_capture();
    if (e != cudaSuccess) return set_error(e);
    if (!p) return cudaSuccess;
    emu::drain_all();  /* cudaFree synchronises the device */
    if (forget(p, emu::MEM_DEVICE).bytes == 0) return set_error(cudaErrorInvalidValue);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
    if (!p) return set_error(cudaErrorInvalidValue);
    *p = NULL;
    cudaError_t e = emu::refuse_in_capture();
    if (e != cudaSuccess) return set_error(e);
    void *m = malloc(bytes ? bytes : 1);
    if (!m) return set_error(cudaErrorMemoryAllocation);
    remember(m, bytes ? bytes : 1, emu::MEM_PINNED);
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaHostAlloc(p, bytes, cudaHostAllocDefault); }

cudaError_t cudaFreeHost(void *p) {
    cudaError_t e = emu::refuse_in_capture();
    if (e != cudaSuccess) return set_error(e);
    if (!p) return cudaSuccess;
    emu::drain_all();
    if (forget(p, emu::MEM_PINNED).bytes == 0) return set_error(cudaErrorInvalidValue);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    if (!a) return set_error(cudaErrorInvalidValue);
    memset(a, 0, sizeof *a);
    switch (emu::kind_of(p, 1)) {
    case emu::MEM_DEVICE: a->type = cudaMemoryTypeDevice, a->devicePointer = (void *)p; break;
    case emu::MEM_PINNED: a->type = cudaMemoryTypeHost, a->hostPointer = (void *)p, a->devicePointer = (void *)p; break;
    default: a->type = cudaMemoryTypeUnregistered;
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
    return set_error(copy_async(dst, src, n, kind, s));
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    cudaError_t e = emu::refuse_in_capture();
    if (e == cudaSuccess) e = copy_async(dst, src, n, kind, 0);
    if (e == cudaSuccess) emu::drain(0);
    return set_error(e);
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s) {
    if (height == 0 || width == 0) return cudaSuccess;
    if (kind != cudaMemcpyDeviceToDevice) emu::fail("not modelled: cudaMemcpy2DAsync other than device to device");
    if (width > dpitch || width > spitch) return set_error(cudaErrorInvalidValue);
    if (emu::kind_of(dst, dpitch * (height - 1) + width) != emu::MEM_DEVICE ||
        emu::kind_of(src, spitch * (height - 1) + width) != emu::MEM_DEVICE)
        return set_error(cudaErrorInvalidValue);
    return set_error(emu::enqueue(s, emu::Work{[=] {
        for (size_t r = 0; r < height; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    }, nullptr}));
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s) {
    if (n == 0) return cudaSuccess;
    if (emu::kind_of(p, n) != emu::MEM_DEVICE) return set_error(cudaErrorInvalidValue);
    return set_error(emu::enqueue(s, emu::Work{[=] { memset(p, value, n); }, nullptr}));
}

cudaError_t cudaMemset(void *p, int value, size_t n) {
    cudaError_t e = emu::refuse_in_capture();
    if (e == cudaSuccess) e = cudaMemsetAsync(p, value, n, 0);
    if (e == cudaSuccess) emu::drain(0);
    return set_error(e);
}

}  // extern "C"
