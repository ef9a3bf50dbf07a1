/* The emulated device and runtime library: the settings (environment and
 * cuda_emu_control.h), each thread's last error as the real runtime keeps it, the error
 * strings, devices, versions and properties (a driver older than the runtime answers
 * cudaErrorInsufficientDriver, as on a real node), and the emulator's counters. */
#include <cuda_runtime.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuda_emu_control.h"
#include "emu_internal.h"

namespace emu {

static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

const Config &config() {
    static const Config c = {
        env_int("E2E_EMU_GPUS", 1),
        env_int("E2E_EMU_DRIVER", CUDART_VERSION),
        env_int("E2E_EMU_CC", 90),
        (size_t)env_int("E2E_EMU_MEM_MB", 16384) << 20,
        env_int("E2E_EMU_NCCL_DELAY_US", 2000),
    };
    return c;
}

static std::atomic<int> copy_delay{-1}, drop_waits{0};

int copy_delay_us() {
    int d = copy_delay.load();
    if (d < 0) {
        int env = env_int("E2E_EMU_COPY_DELAY_US", 0);
        copy_delay.compare_exchange_strong(d, env);
        d = copy_delay.load();
    }
    return d;
}

int drop_event_waits() { return drop_waits.load(); }

std::atomic<long> kernels, block_kernels, invalidated, graph_launches, device_bytes;

static thread_local cudaError_t last_error = cudaSuccess;

cudaError_t set_error(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuda_emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

}  // namespace emu

using emu::set_error;

/* the current device of each thread */
static thread_local int current_device = 0;

/* The driver is older than the runtime: no device can be used. */
static bool driver_too_old() { return emu::config().driver < CUDART_VERSION; }

extern "C" {

cudaError_t cudaGetLastError(void) {
    cudaError_t e = emu::last_error;
    emu::last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return emu::last_error; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define NAME(x) case x: return #x;
    NAME(cudaSuccess) NAME(cudaErrorInvalidValue) NAME(cudaErrorMemoryAllocation)
    NAME(cudaErrorInvalidConfiguration) NAME(cudaErrorInsufficientDriver) NAME(cudaErrorNoDevice)
    NAME(cudaErrorInvalidDevice) NAME(cudaErrorInvalidResourceHandle) NAME(cudaErrorIllegalState)
    NAME(cudaErrorNotReady) NAME(cudaErrorIllegalAddress) NAME(cudaErrorNotSupported)
    NAME(cudaErrorStreamCaptureUnsupported) NAME(cudaErrorStreamCaptureInvalidated)
    NAME(cudaErrorStreamCaptureIsolation) NAME(cudaErrorStreamCaptureImplicit)
    NAME(cudaErrorCapturedEvent) NAME(cudaErrorStreamCaptureWrongThread)
#undef NAME
    default: return "cudaErrorUnknown";
    }
}

/* the real runtime's strings for the errors the emulator gives */
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureIsolation: return "dependency created on uncaptured work in another stream";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent: return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorStreamCaptureWrongThread:
        return "attempt to terminate a thread-local capture sequence from another thread";
    default: return "unrecognized error code";
    }
}

cudaError_t cudaDriverGetVersion(int *v) {
    if (!v) return set_error(cudaErrorInvalidValue);
    *v = emu::config().driver;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) {
    if (!v) return set_error(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *n) {
    if (!n) return set_error(cudaErrorInvalidValue);
    *n = 0;
    if (driver_too_old()) return set_error(cudaErrorInsufficientDriver);
    if (emu::config().gpus <= 0) return set_error(cudaErrorNoDevice);
    *n = emu::config().gpus;
    return cudaSuccess;
}

static cudaError_t check_device(int d) {
    if (driver_too_old()) return cudaErrorInsufficientDriver;
    if (emu::config().gpus <= 0) return cudaErrorNoDevice;
    return d < 0 || d >= emu::config().gpus ? cudaErrorInvalidDevice : cudaSuccess;
}

cudaError_t cudaSetDevice(int d) {
    cudaError_t e = check_device(d);
    if (e == cudaSuccess) current_device = d;
    return set_error(e);
}

cudaError_t cudaGetDevice(int *d) {
    if (!d) return set_error(cudaErrorInvalidValue);
    *d = current_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    cudaError_t e = check_device(d);
    if (e != cudaSuccess || !p) return set_error(p ? e : cudaErrorInvalidValue);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "cuda_emu (emulated sm_%d on the CPU)", emu::config().cc);
    p->major = emu::config().cc / 10;
    p->minor = emu::config().cc % 10;
    p->totalGlobalMem = emu::config().mem_limit;
    p->sharedMemPerBlock = 48 * 1024;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->warpSize = 32;
    p->multiProcessorCount = 1;
    return cudaSuccess;
}

/* ---- the emulator's own knobs (cuda_emu_control.h) ---- */

int cuda_emu_drop_event_waits(int on) { return emu::drop_waits.exchange(on != 0); }

int cuda_emu_copy_delay_us(int us) {
    int was = emu::copy_delay_us();
    emu::copy_delay.store(us);
    return was;
}

void cuda_emu_stats(CudaEmuStats *out) {
    out->kernels = emu::kernels;
    out->block_mode_kernels = emu::block_kernels;
    out->captures_invalidated = emu::invalidated;
    out->graph_launches = emu::graph_launches;
    out->device_bytes = emu::device_bytes;
}

}  // extern "C"
