/* Streams, events, stream capture and graphs of the emulated runtime. Every stream has
 * a thread of its own that runs its work in order, so two streams really run side by
 * side and only events order them: a missing cudaStreamWaitEvent shows as a wrong result
 * or as a race that ThreadSanitizer reports. A capturing stream records instead of
 * running, and the real runtime's refusals hold: the capturing stream may not be queried
 * or synchronised, an event last recorded in a capture may not be queried, a capture may
 * not wait on uncaptured work, the legacy default stream may not be used while a
 * blocking stream captures, and the "potentially unsafe" calls (allocation, device-wide
 * synchronisation) fail in a thread-local capture's thread or while a global capture
 * runs; each refusal invalidates the capture, and cudaStreamEndCapture then returns
 * cudaErrorStreamCaptureInvalidated and no graph. Queries that find work pending answer
 * cudaErrorNotReady and leave it as the thread's last error, as the real runtime does. */
#include <cuda_runtime.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <memory>
#include <thread>
#include <vector>

#include "emu_internal.h"

using emu::set_error;

struct CUstream_st {
    std::mutex mu;  /* everything below; never held with another stream's */
    std::condition_variable cv;  /* work finished */
    unsigned flags = 0;
    bool legacy = false;
    std::deque<emu::Work> queue;
    uint64_t enqueued = 0, done = 0;
    bool stop = false;
    std::thread worker;
    /* the capture under way */
    bool capturing = false;
    cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
    std::thread::id by;
    uint64_t capture_id = 0;
    cudaError_t invalid = cudaSuccess;
    std::vector<emu::Work> recorded;
};

/* the stream and how much of its work the event covers; captured_in: the capture it
 * was last recorded in (0: none). Used by the calling threads only. */
struct CUevent_st {
    CUstream_st *stream = nullptr;
    uint64_t ticket = 0;
    uint64_t captured_in = 0;
};

struct CUgraph_st {
    std::vector<emu::Work> work;
};

struct CUgraphExec_st {
    std::shared_ptr<const std::vector<emu::Work>> work;
};

namespace {

/* Each stream has its own lock, and only events and the calling threads tie two streams
 * together, so ThreadSanitizer sees no ordering between streams that the code did not
 * ask for. list_mu guards the list and comes before a stream's lock. */
std::mutex &list_mu = *new std::mutex;  /* never destroyed: stream threads outlive main */
std::vector<CUstream_st *> streams;     /* alive, the legacy one included */
CUstream_st *legacy;
std::atomic<uint64_t> capture_ids;

void run_stream(CUstream_st *s) {
    std::unique_lock<std::mutex> lk(s->mu);
    for (;;) {
        s->cv.wait(lk, [s] { return s->stop || !s->queue.empty(); });
        if (s->queue.empty()) return;
        emu::Work w = std::move(s->queue.front());
        s->queue.pop_front();
        lk.unlock();
        w.run();
        lk.lock();
        if (w.done) w.done();
        s->done++;
        s->cv.notify_all();
    }
}

/* with list_mu held */
CUstream_st *start_stream(unsigned flags, bool is_legacy) {
    CUstream_st *s = new CUstream_st;
    s->flags = flags;
    s->legacy = is_legacy;
    s->worker = std::thread(run_stream, s);
    streams.push_back(s);
    return s;
}

CUstream_st *resolve(cudaStream_t s) {
    if (s == cudaStreamPerThread) emu::fail("not modelled: the per-thread default stream");
    if (s && s != cudaStreamLegacy) return s;
    std::lock_guard<std::mutex> lk(list_mu);
    if (!legacy) legacy = start_stream(0, true);
    return legacy;
}

std::vector<CUstream_st *> all_streams() {
    std::lock_guard<std::mutex> lk(list_mu);
    return streams;
}

bool idle(const CUstream_st *s) { return s->done == s->enqueued; }

/* with s->mu held */
void invalidate(CUstream_st *s, cudaError_t e) {
    if (s->invalid != cudaSuccess) return;
    s->invalid = e;
    emu::invalidated++;
}

/* work that waits until stream src has run ticket pieces of work */
emu::Work wait_for(CUstream_st *src, uint64_t ticket) {
    return emu::Work{[src, ticket] {
        std::unique_lock<std::mutex> lk(src->mu);
        src->cv.wait(lk, [&] { return src->done >= ticket; });
    }, nullptr};
}

/* with s->mu held */
void push(CUstream_st *s, emu::Work w) {
    s->queue.push_back(std::move(w));
    s->enqueued++;
    s->cv.notify_all();
}

/* The waits that order s with the legacy stream: the legacy stream waits for the
 * blocking streams' work, and they for its. */
std::vector<emu::Work> legacy_order(CUstream_st *s) {
    std::vector<emu::Work> waits;
    if (!s->legacy && (s->flags & cudaStreamNonBlocking)) return waits;
    for (CUstream_st *x : all_streams()) {
        if (x == s || (!s->legacy && !x->legacy) || (s->legacy && (x->flags & cudaStreamNonBlocking))) continue;
        std::lock_guard<std::mutex> lk(x->mu);
        if (!idle(x)) waits.push_back(wait_for(x, x->enqueued));
    }
    return waits;
}

/* Use of the legacy stream while a blocking stream captures: refused, and that
 * capture invalidated. */
cudaError_t check_legacy_use(CUstream_st *s) {
    if (!s->legacy) return cudaSuccess;
    cudaError_t e = cudaSuccess;
    for (CUstream_st *x : all_streams()) {
        std::lock_guard<std::mutex> lk(x->mu);
        if (x->capturing && !(x->flags & cudaStreamNonBlocking)) {
            invalidate(x, cudaErrorStreamCaptureImplicit);
            e = cudaErrorStreamCaptureImplicit;
        }
    }
    return e;
}

}  // namespace

namespace emu {

cudaError_t enqueue(cudaStream_t stream, Work w) {
    CUstream_st *s = resolve(stream);
    cudaError_t e = check_legacy_use(s);
    if (e != cudaSuccess) return e;
    std::vector<Work> waits = legacy_order(s);
    std::lock_guard<std::mutex> lk(s->mu);
    if (s->capturing) {
        if (s->invalid != cudaSuccess) return cudaErrorStreamCaptureInvalidated;
        s->recorded.push_back(std::move(w));
        return cudaSuccess;
    }
    for (Work &x : waits) push(s, std::move(x));
    push(s, std::move(w));
    return cudaSuccess;
}

void drain(cudaStream_t stream) {
    CUstream_st *s = resolve(stream);
    std::unique_lock<std::mutex> lk(s->mu);
    s->cv.wait(lk, [s] { return idle(s); });
}

void drain_all() {
    for (CUstream_st *s : all_streams()) drain(s);
}

int capturing(cudaStream_t stream) {
    CUstream_st *s = resolve(stream);
    std::lock_guard<std::mutex> lk(s->mu);
    return s->capturing;
}

cudaError_t refuse_in_capture() {
    cudaError_t e = cudaSuccess;
    std::thread::id me = std::this_thread::get_id();
    for (CUstream_st *x : all_streams()) {
        std::lock_guard<std::mutex> lk(x->mu);
        if (x->capturing && (x->mode == cudaStreamCaptureModeGlobal ||
                             (x->mode == cudaStreamCaptureModeThreadLocal && x->by == me))) {
            invalidate(x, cudaErrorStreamCaptureUnsupported);
            e = cudaErrorStreamCaptureUnsupported;
        }
    }
    return e;
}

void invalidate_capture(cudaStream_t stream) {
    CUstream_st *s = resolve(stream);
    std::lock_guard<std::mutex> lk(s->mu);
    if (s->capturing) invalidate(s, cudaErrorStreamCaptureInvalidated);
}

}  // namespace emu

extern "C" {

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out, unsigned int flags) {
    if (!out) return set_error(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lk(list_mu);
    *out = start_stream(flags, false);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *out) { return cudaStreamCreateWithFlags(out, cudaStreamDefault); }

/* Its work finishes first; the stream's record stays (events may name it). */
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    if (!stream || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
        return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *s = stream;
    {
        std::lock_guard<std::mutex> lk(list_mu);
        for (size_t i = 0; i < streams.size(); i++)
            if (streams[i] == s) streams.erase(streams.begin() + (long)i);
    }
    {
        std::unique_lock<std::mutex> lk(s->mu);
        s->cv.wait(lk, [s] { return idle(s); });
        s->stop = true;
        s->cv.notify_all();
    }
    s->worker.join();
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    CUstream_st *s = resolve(stream);
    std::unique_lock<std::mutex> lk(s->mu);
    if (s->capturing) {
        invalidate(s, cudaErrorStreamCaptureUnsupported);
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    s->cv.wait(lk, [s] { return idle(s); });
    return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
    CUstream_st *s = resolve(stream);
    std::lock_guard<std::mutex> lk(s->mu);
    if (s->capturing) {
        invalidate(s, cudaErrorStreamCaptureUnsupported);
        return set_error(cudaErrorStreamCaptureUnsupported);
    }
    return idle(s) ? cudaSuccess : set_error(cudaErrorNotReady);
}

/* refused while any stream captures (it would wait for work that is not scheduled) */
cudaError_t cudaDeviceSynchronize(void) {
    cudaError_t e = cudaSuccess;
    std::vector<CUstream_st *> all = all_streams();
    for (CUstream_st *x : all) {
        std::lock_guard<std::mutex> lk(x->mu);
        if (x->capturing) {
            invalidate(x, cudaErrorStreamCaptureUnsupported);
            e = cudaErrorStreamCaptureUnsupported;
        }
    }
    if (e != cudaSuccess) return set_error(e);
    for (CUstream_st *x : all) emu::drain(x);
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *out, unsigned int flags) {
    if (!out) return set_error(cudaErrorInvalidValue);
    *out = new CUevent_st;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *out) { return cudaEventCreateWithFlags(out, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    if (!e) return set_error(cudaErrorInvalidResourceHandle);
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
    if (!e) return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *s = resolve(stream);
    cudaError_t err = check_legacy_use(s);
    if (err != cudaSuccess) return set_error(err);
    std::lock_guard<std::mutex> lk(s->mu);
    if (s->capturing && s->invalid != cudaSuccess) return set_error(cudaErrorStreamCaptureInvalidated);
    e->stream = s;
    e->captured_in = s->capturing ? s->capture_id : 0;
    e->ticket = s->capturing ? 0 : s->enqueued;
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    if (!e) return set_error(cudaErrorInvalidResourceHandle);
    if (e->captured_in) return set_error(cudaErrorCapturedEvent);
    if (!e->stream) return cudaSuccess;
    std::lock_guard<std::mutex> lk(e->stream->mu);
    return e->stream->done >= e->ticket ? cudaSuccess : set_error(cudaErrorNotReady);
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    if (!e) return set_error(cudaErrorInvalidResourceHandle);
    if (e->captured_in) return set_error(cudaErrorCapturedEvent);
    CUstream_st *s = e->stream;
    uint64_t ticket = e->ticket;
    if (!s) return cudaSuccess;
    std::unique_lock<std::mutex> lk(s->mu);
    s->cv.wait(lk, [s, ticket] { return s->done >= ticket; });
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t e, unsigned int flags) {
    if (!e) return set_error(cudaErrorInvalidResourceHandle);
    CUstream_st *s = resolve(stream);
    if (!e->stream || emu::drop_event_waits()) return cudaSuccess;
    {
        std::lock_guard<std::mutex> lk(s->mu);
        if (s->capturing) {
            if (e->captured_in == s->capture_id) return cudaSuccess;  /* ordered inside the capture already */
            invalidate(s, cudaErrorStreamCaptureIsolation);
            return set_error(cudaErrorStreamCaptureIsolation);
        }
    }
    if (e->captured_in) emu::fail("not modelled: a stream joining a capture by waiting on a captured event");
    cudaError_t err = check_legacy_use(s);
    if (err != cudaSuccess) return set_error(err);
    std::lock_guard<std::mutex> lk(s->mu);
    push(s, wait_for(e->stream, e->ticket));
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    CUstream_st *s = resolve(stream);
    std::lock_guard<std::mutex> lk(s->mu);
    if (s->legacy) return set_error(cudaErrorStreamCaptureUnsupported);
    if (s->capturing) return set_error(cudaErrorIllegalState);
    s->capturing = true;
    s->mode = mode;
    s->by = std::this_thread::get_id();
    s->capture_id = ++capture_ids;
    s->invalid = cudaSuccess;
    s->recorded.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    if (!graph) return set_error(cudaErrorInvalidValue);
    CUstream_st *s = resolve(stream);
    std::lock_guard<std::mutex> lk(s->mu);
    *graph = NULL;
    if (!s->capturing) return set_error(cudaErrorIllegalState);
    if (s->mode != cudaStreamCaptureModeRelaxed && s->by != std::this_thread::get_id())
        return set_error(cudaErrorStreamCaptureWrongThread);
    s->capturing = false;
    std::vector<emu::Work> work = std::move(s->recorded);
    s->recorded.clear();
    if (s->invalid != cudaSuccess) return set_error(cudaErrorStreamCaptureInvalidated);
    *graph = new CUgraph_st{std::move(work)};
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
    if (!status) return set_error(cudaErrorInvalidValue);
    CUstream_st *s = resolve(stream);
    std::lock_guard<std::mutex> lk(s->mu);
    *status = !s->capturing ? cudaStreamCaptureStatusNone
              : s->invalid != cudaSuccess ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    if (!exec || !graph) return set_error(cudaErrorInvalidValue);
    *exec = new CUgraphExec_st{std::make_shared<const std::vector<emu::Work>>(graph->work)};
    return cudaSuccess;
}

/* the recorded work, in order, as one piece of work of the stream */
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (!exec) return set_error(cudaErrorInvalidValue);
    std::shared_ptr<const std::vector<emu::Work>> work = exec->work;
    emu::graph_launches++;
    return set_error(emu::enqueue(stream, emu::Work{[work] {
        for (const emu::Work &w : *work) w.run();
    }, [work] {
        for (const emu::Work &w : *work)
            if (w.done) w.done();
    }}));
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

}  // extern "C"
