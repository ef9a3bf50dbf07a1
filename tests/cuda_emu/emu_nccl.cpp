/* NCCL over MPI for the emulated device: a communicator is a non-blocking duplicate of
 * MPI_COMM_WORLD (MPI_Comm_idup: its set-up goes on in the background, and
 * ncclCommGetAsyncError answers ncclInProgress until it is done, as a non-blocking NCCL
 * communicator does); a collective is work on the caller's stream that runs MPI on the
 * stream's thread (all-reduce as a reduction to rank 0 and a broadcast, so every rank
 * holds bitwise the same sums; ncclAvg multiplies by 1/ranks first, as NCCL does for
 * floats), after a delay like a network's. Every other collective call returns
 * ncclInProgress, and the communicator's asynchronous state stays ncclInProgress for two
 * more polls, so both of a caller's paths run. Faults can be injected
 * (cuda_emu_control.h: a set-up that fails, a collective that fails asynchronously).
 * Needs MPI_THREAD_MULTIPLE (the stream threads call MPI). */
#include <mpi.h>
#include <nccl.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include "cuda_emu_control.h"
#include "emu_internal.h"

struct ncclComm {
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Request init = MPI_REQUEST_NULL;
    int rank = 0, size = 1;
    bool aborted = false;
    std::mutex mu;                        /* guards async and polls_left (a stream's thread sets async) */
    ncclResult_t async = ncclInProgress;
    int polls_left = 0;                   /* ncclInProgress answers left for the call under way */
    long calls = 0, allreduces = 0, broadcasts = 0;
};

namespace {

enum FaultKind { NO_FAULT, FAIL_INIT, FAIL_ASYNC_INIT, FAIL_ALLREDUCE, FAIL_BROADCAST };
struct Fault {
    FaultKind kind = NO_FAULT;
    long nth = 0;
};
std::mutex fault_mu;
Fault fault;
bool fault_from_env;
long communicators;
std::mutex error_mu;  /* the last message, of any thread (a stream's thread sets one too) */
char last_error[512];

int parse_fault(const char *what, Fault *out) {
    Fault f;
    std::string w = what ? what : "";
    if (w.empty()) f.kind = NO_FAULT;
    else if (w == "init") f.kind = FAIL_INIT;
    else if (w == "async-init") f.kind = FAIL_ASYNC_INIT;
    else if (w.rfind("allreduce:", 0) == 0) f.kind = FAIL_ALLREDUCE, f.nth = atol(w.c_str() + 10);
    else if (w.rfind("broadcast:", 0) == 0) f.kind = FAIL_BROADCAST, f.nth = atol(w.c_str() + 10);
    else return -1;
    if ((f.kind == FAIL_ALLREDUCE || f.kind == FAIL_BROADCAST) && f.nth < 1) return -1;
    *out = f;
    return 0;
}

Fault current_fault() {
    std::lock_guard<std::mutex> lk(fault_mu);
    if (!fault_from_env) {
        fault_from_env = true;
        const char *env = getenv("E2E_EMU_NCCL_FAIL");
        if (env && parse_fault(env, &fault)) emu::fail("E2E_EMU_NCCL_FAIL='%s' does not parse", env);
    }
    return fault;
}

ncclResult_t error(ncclResult_t r, const char *fmt, ...) {
    std::lock_guard<std::mutex> lk(error_mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return r;
}

void pause_us(int us) {
    if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

/* the MPI part of an all-reduce on the stream's thread */
void allreduce_on_stream(ncclComm *c, const float *send, float *recv, size_t count, bool avg) {
    if (send != recv) memcpy(recv, send, count * sizeof(float));
    if (avg) {
        const float k = (float)(1.0 / c->size);
        for (size_t i = 0; i < count; i++) recv[i] *= k;
    }
    for (size_t off = 0; off < count; off += INT_MAX) {
        int n = (int)(count - off < (size_t)INT_MAX ? count - off : (size_t)INT_MAX);
        MPI_Reduce(c->rank == 0 ? MPI_IN_PLACE : recv + off, recv + off, n, MPI_FLOAT, MPI_SUM, 0, c->comm);
        MPI_Bcast(recv + off, n, MPI_FLOAT, 0, c->comm);
    }
}

void broadcast_on_stream(ncclComm *c, const float *send, float *recv, size_t count, int root) {
    if (c->rank == root && send != recv) memcpy(recv, send, count * sizeof(float));
    for (size_t off = 0; off < count; off += INT_MAX) {
        int n = (int)(count - off < (size_t)INT_MAX ? count - off : (size_t)INT_MAX);
        MPI_Bcast(recv + off, n, MPI_FLOAT, root, c->comm);
    }
}

/* the checks a collective's call makes before anything is enqueued */
ncclResult_t check_call(ncclComm *c, const void *send, void *recv, size_t count, ncclDataType_t type) {
    if (!c) return error(ncclInvalidArgument, "no communicator");
    if (c->aborted) return error(ncclInvalidUsage, "the communicator was aborted");
    std::lock_guard<std::mutex> lk(c->mu);
    if (c->init != MPI_REQUEST_NULL) return error(ncclInvalidUsage, "the communicator's set-up has not finished");
    if (c->async != ncclSuccess && c->async != ncclInProgress) return c->async;
    if (type != ncclFloat) return error(ncclInvalidArgument, "cuda_emu: float collectives only");
    if (count && (emu::kind_of(send, count * 4) != emu::MEM_DEVICE || emu::kind_of(recv, count * 4) != emu::MEM_DEVICE))
        return error(ncclInvalidArgument, "a buffer is not device memory");
    return ncclSuccess;
}

/* Enqueues the collective's work; its call answers ncclInProgress every other time. */
ncclResult_t enqueue(ncclComm *c, cudaStream_t s, std::function<void()> run, bool inject) {
    int delay = emu::config().nccl_delay_us;
    emu::Work w{[run, delay, inject] {
        pause_us(delay);
        if (!inject) run();
    }, nullptr};
    if (inject)  /* when the stream has finished it */
        w.done = [c] {
            error(ncclRemoteError, "cuda_emu: injected failure of a collective: its peers' data never came");
            std::lock_guard<std::mutex> lk(c->mu);
            c->async = ncclRemoteError;
        };
    if (emu::enqueue(s, std::move(w)) != cudaSuccess)
        return error(ncclUnhandledCudaError, "the stream refused the collective's work");
    if (c->calls++ % 2 == 0) return ncclSuccess;
    std::lock_guard<std::mutex> lk(c->mu);
    if (c->async == ncclSuccess) c->async = ncclInProgress, c->polls_left = 2;
    return ncclInProgress;
}

}  // namespace

extern "C" {

int cuda_emu_nccl_fail(const char *what) {
    (void)current_fault();
    Fault f;
    if (parse_fault(what, &f)) return -1;
    std::lock_guard<std::mutex> lk(fault_mu);
    fault = f;
    return 0;
}

long cuda_emu_nccl_communicators(void) {
    std::lock_guard<std::mutex> lk(fault_mu);
    return communicators;
}

const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

const char *ncclGetLastError(ncclComm_t) {
    static thread_local char copy[sizeof last_error];
    std::lock_guard<std::mutex> lk(error_mu);
    memcpy(copy, last_error, sizeof copy);
    return copy;
}

ncclResult_t ncclGetVersion(int *v) {
    if (!v) return ncclInvalidArgument;
    *v = NCCL_VERSION_CODE;
    return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return error(ncclInvalidArgument, "no id");
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "cuda_emu NCCL id");
    return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t *out, int nranks, ncclUniqueId id, int rank, ncclConfig_t *config) {
    if (!out) return error(ncclInvalidArgument, "no communicator pointer");
    *out = NULL;
    if (current_fault().kind == FAIL_INIT) return error(ncclSystemError, "cuda_emu: injected failure of the set-up");
    int init = 0, level = 0, world = 0, me = 0, device = 0;
    MPI_Initialized(&init);
    if (!init) return error(ncclInvalidUsage, "cuda_emu: NCCL runs over MPI, which is not initialised");
    MPI_Query_thread(&level);
    if (level < MPI_THREAD_MULTIPLE) return error(ncclInvalidUsage, "cuda_emu: NCCL over MPI needs MPI_THREAD_MULTIPLE");
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (nranks != world || rank != me)
        return error(ncclInvalidArgument, "cuda_emu: a communicator must be MPI_COMM_WORLD in its order (%d of %d asked, "
                     "MPI has %d of %d)", rank, nranks, me, world);
    if (cudaGetDevice(&device) != cudaSuccess) return error(ncclUnhandledCudaError, "no current device");
    ncclComm *c = new ncclComm;
    c->rank = rank;
    c->size = nranks;
    MPI_Comm_idup(MPI_COMM_WORLD, &c->comm, &c->init);
    {
        std::lock_guard<std::mutex> lk(fault_mu);
        communicators++;
    }
    *out = c;
    bool blocking = !config || config->blocking == NCCL_CONFIG_UNDEF_INT || config->blocking != 0;
    if (!blocking) return ncclInProgress;
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) ncclCommGetAsyncError(c, &state);
    return state;
}

ncclResult_t ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank) {
    return ncclCommInitRankConfig(out, nranks, id, rank, NULL);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *state) {
    if (!c || !state) return error(ncclInvalidArgument, "no communicator or state");
    if (c->init != MPI_REQUEST_NULL && !c->aborted) {
        int done = 0;
        MPI_Test(&c->init, &done, MPI_STATUS_IGNORE);
        if (done) {
            std::lock_guard<std::mutex> lk(c->mu);
            c->init = MPI_REQUEST_NULL;
            c->async = current_fault().kind == FAIL_ASYNC_INIT ? ncclSystemError : ncclSuccess;
            if (c->async != ncclSuccess) error(ncclSystemError, "cuda_emu: injected failure of the set-up");
        }
    }
    std::lock_guard<std::mutex> lk(c->mu);
    if (c->init == MPI_REQUEST_NULL && c->async == ncclInProgress && c->polls_left > 0 && --c->polls_left == 0)
        c->async = ncclSuccess;
    *state = c->async;
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t c, cudaStream_t s) {
    ncclResult_t r = check_call(c, send, recv, count, type);
    if (r != ncclSuccess) return r;
    if (op != ncclSum && op != ncclAvg) return error(ncclInvalidArgument, "cuda_emu: sum and average only");
    Fault f = current_fault();
    bool inject = f.kind == FAIL_ALLREDUCE && ++c->allreduces == f.nth;
    if (f.kind != FAIL_ALLREDUCE) ++c->allreduces;
    return enqueue(c, s, [c, send, recv, count, op] {
        allreduce_on_stream(c, (const float *)send, (float *)recv, count, op == ncclAvg);
    }, inject);
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t type, int root, ncclComm_t c,
                           cudaStream_t s) {
    ncclResult_t r = check_call(c, send, recv, count, type);
    if (r != ncclSuccess) return r;
    if (root < 0 || root >= c->size) return error(ncclInvalidArgument, "root %d of %d ranks", root, c->size);
    Fault f = current_fault();
    bool inject = f.kind == FAIL_BROADCAST && ++c->broadcasts == f.nth;
    if (f.kind != FAIL_BROADCAST) ++c->broadcasts;
    return enqueue(c, s, [c, send, recv, count, root] {
        broadcast_on_stream(c, (const float *)send, (float *)recv, count, root);
    }, inject);
}

/* Non-blocking: in progress for one poll (the emulated communicator has nothing to flush
 * that its streams have not run). */
ncclResult_t ncclCommFinalize(ncclComm_t c) {
    if (!c) return error(ncclInvalidArgument, "no communicator");
    std::lock_guard<std::mutex> lk(c->mu);
    if (c->init != MPI_REQUEST_NULL) return error(ncclInvalidUsage, "finalize before the set-up finished");
    if (c->async == ncclSuccess) c->async = ncclInProgress, c->polls_left = 1;
    return c->async == ncclInProgress ? ncclInProgress : c->async;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
    if (!c) return ncclSuccess;
    if (c->init != MPI_REQUEST_NULL) MPI_Wait(&c->init, MPI_STATUS_IGNORE);
    MPI_Comm_free(&c->comm);
    delete c;
    return ncclSuccess;
}

/* Marks it aborted; its MPI communicator is left alone (a collective may still be
 * blocked in it on a stream's thread, as NCCL's kernels would be without the abort). */
ncclResult_t ncclCommAbort(ncclComm_t c) {
    if (!c) return ncclSuccess;
    c->aborted = true;
    return ncclSuccess;
}

}  // extern "C"
