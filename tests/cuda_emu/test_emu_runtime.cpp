/* The emulated runtime against the real one's rules that the CUDA backend depends on
 * (tests/cuda_emu/README.md), so that a test passing on the emulator means something:
 * streams progress independently and only events order them; queries answer
 * cudaErrorNotReady until the work is done and leave it as the last error; pinned
 * sources are read when the copy runs, pageable ones at the call; a capture records
 * instead of running, replays on launch, and is invalidated by what the real runtime
 * refuses during it (allocation and device-wide synchronisation in the capturing
 * thread, or in any thread for a global capture; querying or synchronising the
 * capturing stream; querying an event recorded in it; waiting on uncaptured work; the
 * legacy stream while a blocking stream captures; ending it from another thread); the
 * launch limits; a kernel's block threads meet at __syncthreads; a host pointer given to
 * a kernel, and a barrier some threads never reach, stop the emulator (checked in a
 * child process). Written in C++ with the launches spelled out (cuda_emu_launch), as
 * rewrite_launches.pl makes them. */
#include <cudnn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "check.h"
#include "cuda_emu.h"
#include "cuda_emu_control.h"

static int *dev_ints(size_t n) {
    void *p = nullptr;
    CHECK(cudaMalloc(&p, n * sizeof(int)) == cudaSuccess, "cudaMalloc");
    return (int *)p;
}

static int first_int(const int *d) {
    int v = 0;
    cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost);
    return v;
}

static void test_streams_and_events() {
    cudaStream_t a, b;
    cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking);
    cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking);
    int *d = dev_ints(4), *pinned = nullptr, host = 7;
    cudaHostAlloc((void **)&pinned, sizeof(int), cudaHostAllocPortable);
#if defined(__SANITIZE_THREAD__)
    *pinned = 6;  /* writing it after the call below is the race ThreadSanitizer reports */
#else
    *pinned = 5;
#endif
    int was = cuda_emu_copy_delay_us(400000);
    cudaMemcpyAsync(d, pinned, sizeof(int), cudaMemcpyHostToDevice, a);  /* slow, on a */
    cudaMemcpyAsync(d + 1, &host, sizeof(int), cudaMemcpyHostToDevice, a);
    host = 8;  /* pageable: staged at the call */
#if !defined(__SANITIZE_THREAD__)
    *pinned = 6;  /* pinned: read when the copy runs (a program must not do this) */
#endif
    cudaMemsetAsync(d + 2, 0, sizeof(int), b);  /* device memory only: fast, on b */
    cudaStreamSynchronize(b);
    CHECK(cudaStreamQuery(a) == cudaErrorNotReady, "stream a still busy while b is done: they run side by side");
    CHECK(cudaGetLastError() == cudaErrorNotReady, "cudaStreamQuery's cudaErrorNotReady is this thread's last error");
    CHECK(cudaGetLastError() == cudaSuccess, "cudaGetLastError resets it");
    cudaEvent_t ev;
    cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    cudaEventRecord(ev, a);
    CHECK(cudaEventQuery(ev) == cudaErrorNotReady && cudaPeekAtLastError() == cudaErrorNotReady,
          "cudaEventQuery answers cudaErrorNotReady and leaves it as the last error");
    (void)cudaGetLastError();
    cudaStreamWaitEvent(b, ev, 0);
    cudaMemcpyAsync(d + 2, d, sizeof(int), cudaMemcpyDeviceToDevice, b);  /* after a's copy */
    cudaStreamSynchronize(b);
    CHECK(cudaStreamQuery(a) == cudaSuccess, "b waited for a's event");
    int back[3];
    cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost);
    CHECK(back[0] == 6 && back[1] == 7 && back[2] == 6,
          "pinned source read when its copy ran (%d), pageable at the call (%d), the event's order (%d)", back[0],
          back[1], back[2]);
    CHECK(cudaMemcpyAsync(&host, pinned, 4, cudaMemcpyHostToDevice, a) == cudaErrorInvalidValue,
          "a host-to-device copy into host memory is refused");
    int nan_bits = 0;
    cudaMemcpy(&nan_bits, d + 3, sizeof nan_bits, cudaMemcpyDeviceToHost);
    CHECK(nan_bits == -1, "new device memory is not zeroed (all bits set: NaN floats)");
    cuda_emu_copy_delay_us(was);
    cudaEventDestroy(ev);
    cudaFreeHost(pinned);
    cudaFree(d);
    cudaStreamDestroy(a);
    cudaStreamDestroy(b);
}

/* begins a capture on s, runs refused(), ends it: the capture must be invalidated */
template <class F>
static void check_refused(cudaStream_t s, cudaStreamCaptureMode mode, cudaError_t want, const char *what, F refused) {
    CHECK(cudaStreamBeginCapture(s, mode) == cudaSuccess, "begin capture (%s)", what);
    cudaError_t e = refused();
    cudaGraph_t g = nullptr;
    cudaError_t end = cudaStreamEndCapture(s, &g);
    CHECK(e == want && end == cudaErrorStreamCaptureInvalidated && g == nullptr,
          "%s during a capture: %s (want %s), end: %s", what, cudaGetErrorName(e), cudaGetErrorName(want),
          cudaGetErrorName(end));
    (void)cudaGetLastError();
}

static void test_capture_refusals() {
    cudaStream_t s, other, blocking;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking);
    cudaStreamCreate(&blocking);
    int *d = dev_ints(2);
    void *p = nullptr;
    cudaEvent_t ev;
    cudaEventCreate(&ev);
    auto local = cudaStreamCaptureModeThreadLocal;
    check_refused(s, local, cudaErrorStreamCaptureUnsupported, "cudaMalloc", [&] { return cudaMalloc(&p, 64); });
    check_refused(s, local, cudaErrorStreamCaptureUnsupported, "cudaFree", [&] { return cudaFree(d + 1); });
    check_refused(s, local, cudaErrorStreamCaptureUnsupported, "cudaHostAlloc",
                  [&] { return cudaHostAlloc(&p, 64, cudaHostAllocPortable); });
    check_refused(s, local, cudaErrorStreamCaptureUnsupported, "synchronising it",
                  [&] { return cudaStreamSynchronize(s); });
    check_refused(s, local, cudaErrorStreamCaptureUnsupported, "querying it", [&] { return cudaStreamQuery(s); });
    check_refused(s, local, cudaErrorStreamCaptureUnsupported, "cudaDeviceSynchronize",
                  [&] { return cudaDeviceSynchronize(); });
    check_refused(s, local, cudaErrorCapturedEvent, "querying an event recorded in it", [&] {
        cudaEventRecord(ev, s);
        cudaError_t e = cudaEventQuery(ev);
        cudaMemsetAsync(d, 0, 4, s);
        cudaStreamQuery(s);  /* and then invalidate it */
        return e;
    });
    cudaEventRecord(ev, other);
    check_refused(s, local, cudaErrorStreamCaptureIsolation, "waiting on uncaptured work",
                  [&] { return cudaStreamWaitEvent(s, ev, 0); });
    check_refused(blocking, local, cudaErrorStreamCaptureImplicit, "the legacy stream while a blocking stream captures",
                  [&] { return cudaMemsetAsync(d, 0, 4, 0); });
    cudaError_t from_other = cudaSuccess;
    check_refused(s, cudaStreamCaptureModeGlobal, cudaSuccess, "another thread's cudaMalloc (global mode)", [&] {
        std::thread t([&] { from_other = cudaMalloc(&p, 64); });
        t.join();
        return cudaSuccess;
    });
    CHECK(from_other == cudaErrorStreamCaptureUnsupported, "a global capture refuses other threads' allocation too");
    CHECK(cudaStreamBeginCapture(s, local) == cudaSuccess, "begin");
    std::thread t([&] { from_other = cudaMalloc(&p, 64); });
    t.join();
    CHECK(from_other == cudaSuccess, "a thread-local capture leaves other threads' allocation alone");
    cudaFree(p);  /* refused: this thread captures */
    cudaGraph_t g = nullptr;
    cudaError_t wrong = cudaErrorUnknown;
    std::thread u([&] { wrong = cudaStreamEndCapture(s, &g); });
    u.join();
    CHECK(wrong == cudaErrorStreamCaptureWrongThread, "a thread-local capture ended by another thread: %s",
          cudaGetErrorName(wrong));
    cudaStreamEndCapture(s, &g);
    (void)cudaGetLastError();
    cudaEventDestroy(ev);
    cudaFree(d);
    cudaStreamDestroy(s), cudaStreamDestroy(other), cudaStreamDestroy(blocking);
}

static void add_one(int n, int *x) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) x[i] += 1;
}

/* one block sums n values through shared memory */
static void block_sum(int n, const int *x, int *out) {
    __shared__ int sh[256];
    int t = threadIdx.x, acc = 0;
    for (int i = t; i < n; i += blockDim.x) acc += x[i];
    sh[t] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    if (t == 0) *out = sh[0];
}

static void test_graphs_and_kernels() {
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    int *d = dev_ints(1000);
    cudaMemsetAsync(d, 0, 1000 * sizeof(int), s);
    cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
    cuda_emu_launch(CudaEmuLaunch(4, 128, 0, s), "add_one", add_one, 1000, d);
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess && g, "capture");
    cudaStreamSynchronize(s);
    CHECK(first_int(d) == 0, "a captured kernel does not run at capture");
    cudaGraphInstantiate(&exec, g, 0);
    cudaGraphLaunch(exec, s);
    cudaGraphLaunch(exec, s);
    cudaStreamSynchronize(s);
    CHECK(first_int(d) == 2 && first_int(d + 999) == 2, "two replays add 2");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(g);
    cuda_emu_launch(CudaEmuLaunch(1, 1025, 0, s), "add_one", add_one, 1000, d);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "1025 threads in a block: refused");
    cuda_emu_launch(CudaEmuLaunch(dim3(1, 65536), 32, 0, s), "add_one", add_one, 1000, d);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y 65536: refused");
    cuda_emu_launch(CudaEmuLaunch(1, 32, 49 * 1024, s), "add_one", add_one, 1000, d);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "49 KB of dynamic shared memory: refused");
    cudaStreamSynchronize(s);
    CHECK(first_int(d) == 2, "refused launches did not run");
    int *sum = dev_ints(1);
    CudaEmuStats before, after;
    cuda_emu_stats(&before);
    cuda_emu_launch(CudaEmuLaunch(1, 256, 0, s), "block_sum", block_sum, 1000, (const int *)d, sum);
    cudaStreamSynchronize(s);
    cuda_emu_stats(&after);
    CHECK(first_int(sum) == 2000 && after.block_mode_kernels == before.block_mode_kernels + 1,
          "a block's threads meet at __syncthreads: sum %d", first_int(sum));
    cudaFree(sum), cudaFree(d);
    cudaStreamDestroy(s);
}

/* one thread of the block leaves before the barrier the others wait at */
static void divergent(int *x) {
    __shared__ int sh[32];
    if (threadIdx.x == 5) return;
    sh[threadIdx.x] = 1;
    __syncthreads();
    x[threadIdx.x] = sh[0];
}

static int host_pointer_kernel() {
    int host[4] = {0};
    cuda_emu_launch(CudaEmuLaunch(1, 4), "add_one", add_one, 4, host);
    cudaDeviceSynchronize();
    return 0;
}

static int divergent_kernel() {
    int *d = dev_ints(32);
    cuda_emu_launch(CudaEmuLaunch(1, 32), "divergent", divergent, d);
    cudaDeviceSynchronize();
    return 0;
}

/* fn in a child: 1 when the emulator stopped it (abort) */
static int stops(int (*fn)()) {
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) _exit(fn());
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void test_faults() {
    CHECK(stops(host_pointer_kernel), "a host pointer given to a kernel stops the emulator (a GPU would fault)");
    CHECK(stops(divergent_kernel), "a barrier some threads of the block never reach stops the emulator");
}

static void test_cudnn_descriptors() {
    cudnnTensorDescriptor_t x;
    cudnnCreateTensorDescriptor(&x);
    CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 0, 3, 4, 4) != CUDNN_STATUS_SUCCESS,
          "the real libcudnn validates a descriptor without a GPU");
    cudnnDestroyTensorDescriptor(x);
}

int main() {
    test_faults();  /* first: nothing of the emulator runs in this process before the forks */
    test_streams_and_events();
    test_capture_refusals();
    test_graphs_and_kernels();
    test_cudnn_descriptors();
    return check_main_result("test_emu_runtime");
}
