/* What the emulator's parts (tests/cuda_emu/README.md) give one another: the device's
 * settings, this thread's last error, the memory registry, and the streams' queues
 * (work runs on a stream's own thread, or is recorded while the stream captures). */
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace emu {

/* The settings, from the environment (README.md) and cuda_emu_control.h. */
struct Config {
    int gpus;              /* E2E_EMU_GPUS: devices this process sees (1) */
    int driver;            /* E2E_EMU_DRIVER: the driver's CUDA version, e.g. 12040 (= the runtime's) */
    int cc;                /* E2E_EMU_CC: compute capability, e.g. 90 */
    size_t mem_limit;      /* E2E_EMU_MEM_MB: device memory (16384 MB) */
    int nccl_delay_us;     /* E2E_EMU_NCCL_DELAY_US: each collective waits this long first (2000) */
};
const Config &config();
/* E2E_EMU_COPY_DELAY_US (0): each host<->device copy waits this long first;
 * cuda_emu_copy_delay_us changes it */
int copy_delay_us();
/* cudaStreamWaitEvent does nothing (cuda_emu_drop_event_waits: a test of the tests) */
int drop_event_waits();

/* The counters behind cuda_emu_stats. */
extern std::atomic<long> kernels, block_kernels, invalidated, graph_launches, device_bytes;

/* This thread's last error (cudaGetLastError): e unless cudaSuccess; returns e. */
cudaError_t set_error(cudaError_t e);
/* A misuse the emulator does not model, or a fault a GPU would stop on: the message on
 * stderr, then abort(). */
[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- memory (emu_memory.cpp) ---- */
enum MemKind { MEM_HOST = 0, MEM_DEVICE = 1, MEM_PINNED = 2 };
/* What [p, p + bytes) is: within one device allocation, within one pinned allocation,
 * or ordinary host memory (anything else, including a range that crosses an end). */
MemKind kind_of(const void *p, size_t bytes);

/* ---- streams (emu_streams.cpp) ---- */
/* Work for a stream: run on the stream's thread; done, when set, under mu right after. */
struct Work {
    std::function<void()> run;
    std::function<void()> done;
};
/* Enqueues w on s (0: the legacy default stream), or records it when s captures:
 * cudaSuccess, or the error the real runtime gives (not set as the last error). */
cudaError_t enqueue(cudaStream_t s, Work w);
/* Waits until everything enqueued on s so far has run (s must not be capturing). */
void drain(cudaStream_t s);
/* Waits until every stream is idle. */
void drain_all();
/* 1 when s is capturing now. */
int capturing(cudaStream_t s);
/* The "potentially unsafe" calls (allocation, synchronous copies, device-wide
 * synchronisation): refused while this thread captures (not in relaxed mode) or any
 * thread captures in global mode; those captures are invalidated. cudaSuccess or
 * cudaErrorStreamCaptureUnsupported. */
cudaError_t refuse_in_capture();
/* Invalidates s's capture, if any (a call recorded into it failed). */
void invalidate_capture(cudaStream_t s);

}  // namespace emu
