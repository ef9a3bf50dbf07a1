/* Kernel launches on the emulated device: the real launch limits, the arguments checked
 * (a pointer must point into device or pinned memory), then the grid on its stream's
 * thread. Blocks run one after another. A kernel whose threads never meet (no
 * __shared__ memory) runs its threads one after another too ("direct"). A kernel that
 * declares __shared__ memory (first thing, as ours do: cuda_emu.h turns the declaration
 * into a call that tells the emulator) runs each block's threads side by side as
 * fibers (cooperative threads on the stream's thread, switched at each barrier), so
 * that __syncthreads is a real barrier; a barrier that some threads of a block never
 * reach stops the emulator with a message. Under ThreadSanitizer the fibers are threads
 * of their own to it that meet only at the barriers: a missing __syncthreads is a
 * reported data race on the shared memory. */
/* the fibers switch stacks with _longjmp, which the fortified longjmp would refuse */
#undef _FORTIFY_SOURCE
#include <cuda_runtime.h>

#include <csetjmp>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_emu.h"
#include "emu_internal.h"

#include <sys/mman.h>
#include <ucontext.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define EMU_TSAN 1
extern "C" void __tsan_ignore_thread_begin(void);
extern "C" void __tsan_ignore_thread_end(void);
#else
#define EMU_TSAN 0
#endif

/* The emulator's own writes that the threads of a block read (threadIdx and friends,
 * the fibers' states): ThreadSanitizer ignores them, as they are the device's doing, not
 * the kernel's; every access of a kernel's own is seen. */
struct Bookkeeping {
#if EMU_TSAN
    Bookkeeping() { __tsan_ignore_thread_begin(); }
    ~Bookkeeping() { __tsan_ignore_thread_end(); }
#else
    Bookkeeping() {}
    ~Bookkeeping() {}
#endif
};

thread_local uint3 threadIdx, blockIdx;
thread_local dim3 blockDim, gridDim;

namespace {

/* Thrown by cuda_emu_block_shared when a kernel run directly declares shared memory:
 * run counts the threads that ran before (only 0 can be undone: nothing ran). */
struct NeedsBlock {
    long run;
};
enum { DIRECT = 0, BLOCK = 1 };
thread_local int tl_mode = DIRECT;
thread_local long tl_threads_run;
thread_local const char *tl_kernel = "?";
/* grids in block mode run one at a time: a kernel's shared memory is one static */
std::mutex block_mu;

uint3 thread_of(unsigned t, dim3 b) { return uint3{t % b.x, (t / b.x) % b.y, t / (b.x * b.y)}; }

void run_direct(dim3 g, dim3 b, const std::function<void()> &body) {
    tl_mode = DIRECT;
    tl_threads_run = 0;
    gridDim = g;
    blockDim = b;
    unsigned nt = b.x * b.y * b.z;
    for (unsigned z = 0; z < g.z; z++)
        for (unsigned y = 0; y < g.y; y++)
            for (unsigned x = 0; x < g.x; x++) {
                blockIdx = uint3{x, y, z};
                for (unsigned t = 0; t < nt; t++) {
                    threadIdx = thread_of(t, b);
                    body();
                    tl_threads_run++;
                }
            }
}

/* A fiber: a thread of the block with a stack of its own; it runs the body once per job
 * and goes back to the scheduler (the stream's thread) at each barrier and at the end.
 * Switches are _setjmp/_longjmp (no system call), or, under ThreadSanitizer,
 * swapcontext with the fibers made known to it as threads of their own: they meet only
 * at the barriers (and a block's end), so a missing __syncthreads is a reported race. */
enum { F_READY, F_BARRIER, F_FINISHED };
struct Fiber {
    jmp_buf jb;
    ucontext_t uc;
    uint3 tid;
    int state;
    void *tsan;
};
struct FiberPool {
    jmp_buf sched;
    ucontext_t sched_uc;
    void *sched_tsan = nullptr;
    std::vector<Fiber *> fibers;
    Fiber *cur = nullptr;
    const std::function<void()> *body = nullptr;
    char barrier_token, block_token;  /* ThreadSanitizer's synchronisation objects */
};
thread_local FiberPool *tl_pool;
const size_t FIBER_STACK = 256 * 1024;

void tsan_release(void *token) {
#if EMU_TSAN
    __tsan_release(token);
#endif
}

void tsan_acquire(void *token) {
#if EMU_TSAN
    __tsan_acquire(token);
#endif
}

/* from fiber f back to the scheduler, in state */
void to_scheduler(FiberPool *pool, Fiber *f, int state) {
    {
        Bookkeeping b;
        f->state = state;
    }
#if EMU_TSAN
    __tsan_switch_to_fiber(pool->sched_tsan, __tsan_switch_to_fiber_no_sync);
    swapcontext(&f->uc, &pool->sched_uc);
#else
    if (_setjmp(f->jb) == 0) _longjmp(pool->sched, 1);
#endif
}

/* runs fiber f until its next barrier or its end */
void resume(FiberPool *pool, Fiber *f) {
    {
        Bookkeeping b;
        pool->cur = f;
        threadIdx = f->tid;
    }
#if EMU_TSAN
    __tsan_switch_to_fiber(f->tsan, __tsan_switch_to_fiber_no_sync);
    swapcontext(&pool->sched_uc, &f->uc);
#else
    if (_setjmp(pool->sched) == 0) _longjmp(f->jb, 1);
#endif
}

void fiber_main() {
    FiberPool *pool;
    Fiber *f;
    {
        Bookkeeping b;
        pool = tl_pool;
        f = pool->cur;
    }
#if !EMU_TSAN
    if (_setjmp(f->jb) == 0) _longjmp(pool->sched, 1);  /* made: back to the maker */
#endif
    for (;;) {
        tsan_acquire(&pool->block_token);  /* after the scheduler and the block before */
        const std::function<void()> *body;
        {
            Bookkeeping b;
            body = pool->body;
        }
        (*body)();
        tsan_release(&pool->block_token);
        to_scheduler(pool, f, F_FINISHED);
    }
}

/* a fiber with its stack (a guard page below); without ThreadSanitizer it runs up to
 * its first switch now */
Fiber *make_fiber(FiberPool *pool) {
    Fiber *f = new Fiber;
    char *stack = (char *)mmap(nullptr, FIBER_STACK, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) emu::fail("no memory for a fiber's stack");
    mprotect(stack, 4096, PROT_NONE);
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = stack;
    f->uc.uc_stack.ss_size = FIBER_STACK;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, fiber_main, 0);
    {
        Bookkeeping keep;
        pool->cur = f;
    }
#if EMU_TSAN
    f->tsan = __tsan_create_fiber(0);
#else
    if (_setjmp(pool->sched) == 0) setcontext(&f->uc);
#endif
    return f;
}

void run_block(FiberPool *pool, dim3 b, const char *kernel) {
    unsigned nt = b.x * b.y * b.z;
    {
        Bookkeeping keep;
        for (unsigned t = 0; t < nt; t++) {
            pool->fibers[t]->tid = thread_of(t, b);
            pool->fibers[t]->state = F_READY;
        }
    }
    for (;;) {
        unsigned at_barrier = 0, finished = 0;
        for (unsigned t = 0; t < nt; t++) {
            resume(pool, pool->fibers[t]);
            at_barrier += pool->fibers[t]->state == F_BARRIER;
            finished += pool->fibers[t]->state == F_FINISHED;
        }
        if (finished == nt) return;
        if (at_barrier != nt)
            emu::fail("kernel %s: __syncthreads reached by %u of the %u threads of block (%u, %u, %u) (the others "
                      "ended): a barrier every thread of a block must reach", kernel, at_barrier, nt, blockIdx.x,
                      blockIdx.y, blockIdx.z);
    }
}

FiberPool *pool_for(unsigned nt) {
    Bookkeeping keep;
    if (!tl_pool) {
        tl_pool = new FiberPool;
#if EMU_TSAN
        tl_pool->sched_tsan = __tsan_get_current_fiber();
#endif
    }
    return tl_pool;
}

void run_blocks(dim3 g, dim3 b, const std::function<void()> &body) {
    unsigned nt = b.x * b.y * b.z;
    FiberPool *pool = pool_for(nt);
    while (pool->fibers.size() < nt) pool->fibers.push_back(make_fiber(pool));
    {
        Bookkeeping keep;
        pool->body = &body;
        tl_mode = BLOCK;
        gridDim = g;
        blockDim = b;
    }
    tsan_release(&pool->block_token);  /* the fibers see what this thread did before */
    for (unsigned z = 0; z < g.z; z++)
        for (unsigned y = 0; y < g.y; y++)
            for (unsigned x = 0; x < g.x; x++) {
                {
                    Bookkeeping keep;
                    blockIdx = uint3{x, y, z};
                }
                run_block(pool, b, tl_kernel);
            }
    tsan_acquire(&pool->block_token);  /* and it sees what they did */
    Bookkeeping keep;
    tl_mode = DIRECT;
}

/* Directly, unless the kernel turns out to need its blocks' threads side by side. */
void run_grid(dim3 g, dim3 b, const char *kernel, const std::function<void()> &body) {
    emu::kernels++;
    tl_kernel = kernel;
    try {
        run_direct(g, b, body);
        return;
    } catch (const NeedsBlock &nb) {
        if (nb.run != 0)
            emu::fail("kernel %s: a __shared__ declaration after %ld threads ran: the emulator needs a kernel's "
                      "__shared__ declarations first", kernel, nb.run);
    }
    emu::block_kernels++;
    std::lock_guard<std::mutex> lk(block_mu);
    run_blocks(g, b, body);
    tl_mode = DIRECT;
}

}  // namespace

void cuda_emu_block_shared() {
    if (tl_mode == DIRECT) throw NeedsBlock{tl_threads_run};
}

void __syncthreads() {
    if (tl_mode != BLOCK)
        emu::fail("kernel %s: __syncthreads in a kernel that declared no __shared__ memory first", tl_kernel);
    FiberPool *pool;
    Fiber *f;
    {
        Bookkeeping b;
        pool = tl_pool;
        f = pool->cur;
    }
    tsan_release(&pool->barrier_token);
    to_scheduler(pool, f, F_BARRIER);
    tsan_acquire(&pool->barrier_token);  /* past the barrier: after every thread's part before it */
}

int cuda_emu_launch_check(const CudaEmuLaunch &l, const char *kernel) {
    const dim3 &g = l.grid, &b = l.block;
    unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
    bool ok = g.x >= 1 && g.y >= 1 && g.z >= 1 && g.x <= 0x7fffffffu && g.y <= 65535 && g.z <= 65535 && b.x >= 1 &&
              b.y >= 1 && b.z >= 1 && b.x <= 1024 && b.y <= 1024 && b.z <= 64 && threads <= 1024 &&
              l.shared <= 48 * 1024;
    if (ok) return 0;
    emu::set_error(cudaErrorInvalidConfiguration);
    emu::invalidate_capture(l.stream);
    return -1;
}

void cuda_emu_check_pointer(const void *p, int index, const char *kernel) {
    if (p && emu::kind_of(p, 1) == emu::MEM_HOST)
        emu::fail("kernel %s: argument %d (%p) is neither device nor pinned memory: a GPU would fault on it", kernel,
                  index, p);
}

void cuda_emu_enqueue_grid(const CudaEmuLaunch &l, const char *kernel, std::function<void()> body) {
    auto fn = std::make_shared<const std::function<void()>>(std::move(body));
    dim3 g = l.grid, b = l.block;
    cudaError_t e = emu::enqueue(l.stream, emu::Work{[g, b, kernel, fn] { run_grid(g, b, kernel, *fn); }, nullptr});
    if (e != cudaSuccess) emu::set_error(e);
}
