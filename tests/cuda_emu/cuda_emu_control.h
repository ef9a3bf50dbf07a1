/* The emulator's knobs for the tests that run on it (tests/cuda_emu/README.md). Programs
 * that are not tests (e2e-train) take the same settings from the environment:
 *   E2E_EMU_GPUS=N            devices visible to each process (1)
 *   E2E_EMU_DRIVER=V          the driver's CUDA version (e.g. 12040: older than the
 *                             runtime, so cudaGetDeviceCount says cudaErrorInsufficientDriver)
 *   E2E_EMU_CC=XY             compute capability (90)
 *   E2E_EMU_MEM_MB=N          device memory (16384)
 *   E2E_EMU_COPY_DELAY_US=N   every host<->device copy waits N us first (0): a missing
 *                             wait for a copy then shows as a wrong result
 *   E2E_EMU_CUDNN=RULES       shapes cuDNN's algorithm lists (cuda_emu_cudnn_rules)
 *   E2E_EMU_NCCL_FAIL=WHAT    init | async-init | allreduce:N | broadcast:N (cuda_emu_nccl_fail)
 *   E2E_EMU_NCCL_DELAY_US=N   every collective takes at least N us (2000) */
#ifndef E2E_TESTS_CUDA_EMU_CONTROL_H
#define E2E_TESTS_CUDA_EMU_CONTROL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Rules that shape the algorithm lists of the emulated cuDNN, ';'-separated, each
 * "CONDITIONS:ACTION" (CONDITIONS comma-separated, all must hold; none: every call):
 *   conditions  fwd | bwd_data | bwd_filter   the pass
 *               heur | find                   cudnnGet*Algorithm_v7 or cudnnFind*AlgorithmEx
 *               float | bf16                  the operands' type
 *               in_c=N  k=N                   the shape's input channels, kernel size
 *   actions     none       no algorithm runs (every status CUDNN_STATUS_NOT_SUPPORTED)
 *               nondet     every algorithm is non-deterministic
 *               transform  only FFT and Winograd algorithms run (every one of them)
 *               tensor_op  every result's math type is CUDNN_TENSOR_OP_MATH (none is FMA)
 *               huge       every algorithm asks for 64 GiB of workspace
 * e.g. "in_c=8,fwd:none" or "bf16,find:none". NULL or "" clears them. 0, or -1 when the
 * text does not parse (the rules are then unchanged). */
int cuda_emu_cudnn_rules(const char *rules);

/* Fault injection into the emulated NCCL, on every rank alike: "init" (the communicator's
 * set-up fails at once), "async-init" (it fails in the background), "allreduce:N" or
 * "broadcast:N" (the Nth such collective, from 1, moves nothing and leaves
 * ncclRemoteError as the communicator's asynchronous error when its stream finishes).
 * NULL or "" clears it. 0, or -1 when the text does not parse. */
int cuda_emu_nccl_fail(const char *what);
/* NCCL communicators this process has set up (ncclCommInitRank*) so far. */
long cuda_emu_nccl_communicators(void);

/* 1: cudaStreamWaitEvent does nothing, as if the code had forgotten it (to show that the
 * tests see a missing wait). Returns the previous setting. */
int cuda_emu_drop_event_waits(int on);
/* Every host<->device copy waits us microseconds before it moves anything. Returns the
 * previous setting. */
int cuda_emu_copy_delay_us(int us);

/* What the emulated device has done, for tests. */
typedef struct {
    long kernels;            /* grids run (a graph's replay counts its kernels) */
    long block_mode_kernels; /* of those, grids whose blocks ran their threads side by side */
    long captures_invalidated;
    long graph_launches;
    long device_bytes;       /* device memory allocated now */
} CudaEmuStats;
void cuda_emu_stats(CudaEmuStats *out);

#ifdef __cplusplus
}
#endif

#endif
