/* The CUDA backend's NetOps: device memory, streams, input staging and graph replay.
 * It calls down into conv.cu (the convolutions), kernels.cu (the other ops) and
 * capture_guard.cu (failures and scratch growth); none of them calls back. */
#include "cuda_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "error.h"  /* a C header */
}
#include "cuda_internal.h"

/* ---- memory ---- */

static void *cu_alloc(void *ctx, size_t bytes) {
    CudaCtx *c = (CudaCtx *)ctx;
    size_t rounded = (bytes + 255) / 256 * 256;
    if (rounded == 0) rounded = 256;
    void *p = NULL;
    if (cudaMalloc(&p, rounded) != cudaSuccess) {
        (void)cudaGetLastError();  /* out of memory is reported as NULL, as ops.h says */
        return NULL;
    }
    cudaCheck(cudaMemsetAsync(p, 0, rounded, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
    return p;
}

static void cu_release(void *ctx, void *p) {
    CudaCtx *c = (CudaCtx *)ctx;
    cudaCheck(cudaStreamSynchronize(c->stream));
    cudaCheck(cudaFree(p));
    /* a later allocation may reuse the address: no graph may outlive the memory it names */
    c->generation++;
}

static void *cu_alloc_host(void *ctx, size_t bytes) {
    CudaCtx *c = (CudaCtx *)ctx;
    void *p = NULL;
    cudaCheck(cudaSetDevice(c->device));  /* may be called from a reader thread */
    if (cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cu_release_host(void *ctx, void *p) {
    if (p) cudaCheck(cudaFreeHost(p));
}

static int is_pinned(const void *p) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeHost;
}

/* Copies pageable host memory into a pinned bounce buffer and from there into dst on
 * stream st; returns once src may be reused. A buffer is reused only after its last
 * copy finished: idle ones that are big enough first, else the idle smallest grows,
 * else we wait for one. */
static void bounce_copy(CudaCtx *c, void *dst, const void *src, size_t bytes, cudaStream_t st) {
    Bounce *pick = NULL;
    for (int i = 0; i < CUDA_BOUNCE_SLOTS && !pick; i++)
        if (c->bounce[i].bytes >= bytes && cudaEventQuery(c->bounce[i].done) == cudaSuccess)
            pick = &c->bounce[i];
    for (int i = 0; i < CUDA_BOUNCE_SLOTS && !pick; i++)
        if (c->bounce[i].bytes >= bytes) pick = &c->bounce[i];
    if (!pick) {
        for (int i = 0; i < CUDA_BOUNCE_SLOTS; i++)
            if (cudaEventQuery(c->bounce[i].done) == cudaSuccess &&
                (!pick || c->bounce[i].bytes < pick->bytes))
                pick = &c->bounce[i];
        if (!pick) pick = &c->bounce[(c->next_bounce++) % CUDA_BOUNCE_SLOTS];
    }
    (void)cudaGetLastError();  /* cudaEventQuery's cudaErrorNotReady is not an error */
    cudaCheck(cudaEventSynchronize(pick->done));
    if (pick->bytes < bytes) {
        if (pick->p) cudaCheck(cudaFreeHost(pick->p));
        pick->p = NULL;
        pick->bytes = 0;
        cudaCheck(cudaHostAlloc(&pick->p, bytes, cudaHostAllocPortable));
        pick->bytes = bytes;
    }
    memcpy(pick->p, src, bytes);
    cudaCheck(cudaMemcpyAsync(dst, pick->p, bytes, cudaMemcpyHostToDevice, st));
    cudaCheck(cudaEventRecord(pick->done, st));
}

/* In op order, through a bounce buffer: no wait for the device. */
static void cu_upload(void *ctx, void *dst, const void *src, size_t bytes) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (bytes) bounce_copy(c, dst, src, bytes, c->stream);
}

static void cu_download(void *ctx, void *dst, const void *src, size_t bytes) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (bytes) cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
}

static void cu_sync(void *ctx) {
    CudaCtx *c = (CudaCtx *)ctx;
    cudaCheck(cudaStreamSynchronize(c->copy_stream));
    cudaCheck(cudaStreamSynchronize(c->stream));
}

static void cu_copy2d(void *ctx, float *dst, size_t ld_dst, const float *src, size_t ld_src,
                      size_t rows, size_t cols) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (!rows || !cols) return;
    cudaCheck(cudaMemcpy2DAsync(dst, ld_dst * sizeof(float), src, ld_src * sizeof(float),
                                cols * sizeof(float), rows, cudaMemcpyDeviceToDevice, c->stream));
}

static void *cu_stream(void *ctx) { return (void *)((CudaCtx *)ctx)->stream; }

/* ---- input staging: copies on copy_stream that overlap the ops ---- */

static void cu_mark(void *ctx) {
    CudaCtx *c = (CudaCtx *)ctx;
    cudaCheck(cudaEventRecord(c->mark_ev, c->stream));
}

static void cu_upload_async(void *ctx, void *dst, const void *src, size_t bytes) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (!bytes) return;
    cudaCheck(cudaStreamWaitEvent(c->copy_stream, c->mark_ev, 0));
    if (is_pinned(src)) {
        cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->copy_stream));
        cudaCheck(cudaEventRecord(c->copy_ev, c->copy_stream));
        cudaCheck(cudaEventSynchronize(c->copy_ev));  /* the caller may then reuse src */
    } else {
        bounce_copy(c, dst, src, bytes, c->copy_stream);
        cudaCheck(cudaEventRecord(c->copy_ev, c->copy_stream));
    }
    cudaCheck(cudaStreamWaitEvent(c->stream, c->copy_ev, 0));
}

/* ---- graphs ---- */

static int cu_graph_begin(void *ctx, uint64_t key) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (!c->graphs_on || c->recording) return OPS_GRAPH_DIRECT;
    c->uses++;
    GraphEntry *e = NULL, *oldest = &c->graphs[0];
    for (int i = 0; i < CUDA_MAX_GRAPHS && !e; i++)
        if (c->graphs[i].seen && c->graphs[i].key == key) e = &c->graphs[i];
    if (!e) {  /* a new key takes a free entry, or the least recently used one */
        for (int i = 0; i < CUDA_MAX_GRAPHS; i++)
            if (c->graphs[i].last_use < oldest->last_use) oldest = &c->graphs[i];
        e = oldest;
        if (e->exec) cudaCheck(cudaGraphExecDestroy(e->exec));
        memset(e, 0, sizeof *e);
        e->key = key;
    }
    e->last_use = c->uses;
    if (e->exec && e->generation != c->generation) {  /* a buffer it uses has moved */
        cudaCheck(cudaGraphExecDestroy(e->exec));
        e->exec = NULL;
        e->seen = 0;  /* a direct pass first: it may need new plans or bigger buffers */
    }
    if (e->exec) {
        cudaCheck(cudaGraphLaunch(e->exec, c->stream));
        c->graphs_replayed++;
        return OPS_GRAPH_REPLAYED;
    }
    /* The first pass of a key runs directly: it chooses the convolution algorithms and
     * sizes every buffer, which cannot happen inside a capture. */
    if (e->seen++ == 0) return OPS_GRAPH_DIRECT;
    c->capture_error = 0;
    c->capture_msg[0] = 0;
    if (cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        (void)cudaGetLastError();
        return OPS_GRAPH_DIRECT;
    }
    c->recording = e;
    cuda_set_capturing(c);
    if (c->fail_next_capture) {
        c->fail_next_capture = 0;
        cuda_fail_capture(c, "made to fail by net_cuda_fail_next_capture");
    }
    return OPS_GRAPH_RECORDING;
}

static int cu_graph_end(void *ctx, int pass_failed) {
    CudaCtx *c = (CudaCtx *)ctx;
    GraphEntry *e = c->recording;
    if (!e) return 0;
    c->recording = NULL;
    cuda_set_capturing(NULL);
    cudaGraph_t g = NULL;
    cudaError_t err = cudaStreamEndCapture(c->stream, &g);
    if (pass_failed) {  /* an incomplete recording: dropped; the key records again next time */
        if (g) cudaCheck(cudaGraphDestroy(g));
        (void)cudaGetLastError();
        e->exec = NULL;
        e->seen = 0;
        return 0;
    }
    if (err == cudaSuccess && !c->capture_error)
        err = cudaGraphInstantiate(&e->exec, g, 0);
    if (g) cudaCheck(cudaGraphDestroy(g));
    if (err != cudaSuccess || c->capture_error) {
        (void)cudaGetLastError();
        e->exec = NULL;
        c->graphs_on = 0;
        return e2e_fail("cuda: recording the training pass as a CUDA graph failed (%s); graph "
                        "replay is now off for this backend",
                        c->capture_error ? c->capture_msg : cudaGetErrorString(err));
    }
    e->generation = c->generation;
    c->graphs_recorded++;
    cudaCheck(cudaGraphLaunch(e->exec, c->stream));
    c->graphs_replayed++;
    return 0;
}

/* ---- creation ---- */

static void ctx_free(CudaCtx *c) {
    if (!c) return;
    if (c->stream) (void)cudaStreamSynchronize(c->stream);
    if (c->copy_stream) (void)cudaStreamSynchronize(c->copy_stream);
    for (int i = 0; i < CUDA_MAX_GRAPHS; i++)
        if (c->graphs[i].exec) (void)cudaGraphExecDestroy(c->graphs[i].exec);
    cuda_plans_destroy(c);
    Scratch *sc[] = {&c->workspace, &c->xs, &c->ys, &c->ws, &c->dws, &c->partial};
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        if (sc[i]->p) (void)cudaFree(sc[i]->p);
    for (int i = 0; i < CUDA_BOUNCE_SLOTS; i++) {
        if (c->bounce[i].p) (void)cudaFreeHost(c->bounce[i].p);
        if (c->bounce[i].done) (void)cudaEventDestroy(c->bounce[i].done);
    }
    if (c->cudnn) (void)cudnnDestroy(c->cudnn);
    if (c->mark_ev) (void)cudaEventDestroy(c->mark_ev);
    if (c->copy_ev) (void)cudaEventDestroy(c->copy_ev);
    if (c->copy_stream) (void)cudaStreamDestroy(c->copy_stream);
    if (c->stream) (void)cudaStreamDestroy(c->stream);
    free(c);
}

static void cu_destroy(NetOps *self) {
    if (!self) return;
    ctx_free((CudaCtx *)self->ctx);
    free(self);
}

/* "13.0" from 13000 */
static void cuda_version(int v, char *buf, size_t len) { snprintf(buf, len, "%d.%d", v / 1000, v % 1000 / 10); }

int net_cuda_device_count(void) {
    int n = 0, driver = 0, runtime = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess) return n;
    (void)cudaDriverGetVersion(&driver);
    (void)cudaRuntimeGetVersion(&runtime);
    (void)cudaGetLastError();
    if (e == cudaErrorNoDevice || driver == 0) return 0;  /* no GPU, or no NVIDIA driver at all */
    char d[16], r[16];
    cuda_version(driver, d, sizeof d);
    cuda_version(runtime, r, sizeof r);
    if (e == cudaErrorInsufficientDriver)
        return e2e_fail("device cuda: the NVIDIA driver supports CUDA %s, older than the CUDA %s runtime this build "
                        "needs: update the driver (cudaGetDeviceCount: %s)", d, r, cudaGetErrorString(e));
    return e2e_fail("device cuda: cudaGetDeviceCount failed: %s (driver CUDA %s, runtime CUDA %s)",
                    cudaGetErrorString(e), d, r);
}

/* Reports a failed call during creation as e2e_fail (creation returns NULL, never exits). */
#define TRY(call)                                                                      \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess) {                                                       \
            e2e_fail("device cuda: %s failed: %s", #call, cudaGetErrorString(e_));     \
            goto fail;                                                                 \
        }                                                                              \
    } while (0)

/* The precision by name; -1 (e2e_error()) when unknown. */
static int parse_precision(const char *precision, Precision *out) {
    if (!precision || strcmp(precision, "fp32") == 0) *out = PREC_FP32;
    else if (strcmp(precision, "tf32") == 0) *out = PREC_TF32;
    else if (strcmp(precision, "bf16") == 0) *out = PREC_BF16;
    else return e2e_fail("device cuda: unknown precision '%s' (expected fp32, tf32 or bf16)", precision);
    return 0;
}

/* GPU `gpu` exists and can run this build in prec: 0, or -1 (e2e_error()). */
static int check_device(int gpu, Precision prec, const char *precision, cudaDeviceProp *prop) {
    int count = net_cuda_device_count();
    if (count < 0) return -1;
    if (count == 0) return e2e_fail("device cuda: no GPU is visible to this process");
    if (gpu < 0 || gpu >= count)
        return e2e_fail("device cuda: GPU %d asked for, this node shows %d (0 to %d)", gpu, count,
                        count - 1);
    cudaError_t e = cudaGetDeviceProperties(prop, gpu);
    if (e != cudaSuccess)
        return e2e_fail("device cuda: cudaGetDeviceProperties failed: %s", cudaGetErrorString(e));
    if (prop->major < 7 || (prop->major == 7 && prop->minor < 5))
        return e2e_fail("device cuda: GPU %d (%s) has compute capability %d.%d; this build needs "
                        "7.5 or newer", gpu, prop->name, prop->major, prop->minor);
    if (prec != PREC_FP32 && prop->major < 8)
        return e2e_fail("device cuda: precision %s needs compute capability 8.0 or newer; GPU %d "
                        "(%s) has %d.%d", precision, gpu, prop->name, prop->major, prop->minor);
    return 0;
}

/* Streams, events, cuDNN and the settings from the environment: 0, or -1 (e2e_error()). */
static int ctx_start(CudaCtx *c) {
    const char *algo = getenv("E2E_CUDNN_ALGO"), *graphs = getenv("E2E_CUDA_GRAPHS");
    const char *wsmb = getenv("E2E_CUDNN_WORKSPACE_MB");
    cudnnStatus_t st;
    TRY(cudaSetDevice(c->device));
    TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    TRY(cudaStreamCreateWithFlags(&c->copy_stream, cudaStreamNonBlocking));
    TRY(cudaEventCreateWithFlags(&c->mark_ev, cudaEventDisableTiming));
    TRY(cudaEventCreateWithFlags(&c->copy_ev, cudaEventDisableTiming));
    for (int i = 0; i < CUDA_BOUNCE_SLOTS; i++)
        TRY(cudaEventCreateWithFlags(&c->bounce[i].done, cudaEventDisableTiming));
    TRY(cudaEventRecord(c->mark_ev, c->stream));
    st = cudnnCreate(&c->cudnn);
    if (st != CUDNN_STATUS_SUCCESS) {
        c->cudnn = NULL;
        return e2e_fail("device cuda: cudnnCreate failed: %s", cudnnGetErrorString(st));
    }
    st = cudnnSetStream(c->cudnn, c->stream);
    if (st != CUDNN_STATUS_SUCCESS)
        return e2e_fail("device cuda: cudnnSetStream failed: %s", cudnnGetErrorString(st));
    c->heuristic_algos = algo && strcmp(algo, "heuristic") == 0;
    c->graphs_on = !(graphs && strcmp(graphs, "0") == 0);
    c->ws_limit = (size_t)(wsmb ? atol(wsmb) : 1024) << 20;
    return 0;
fail:
    return -1;
}

/* The table: every required op, and the capabilities this backend declares. */
static void fill_ops(NetOps *o, CudaCtx *c) {
    *o = (NetOps){};
    o->name = "cuda";
    o->ctx = c;
    o->caps = OPS_STREAM | OPS_PINNED_HOST | OPS_ASYNC_UPLOAD | OPS_PREP_INPUT | OPS_GRAPHS | OPS_SPARSE_INPUT;
    o->alloc = cu_alloc;
    o->release = cu_release;
    o->upload = cu_upload;
    o->download = cu_download;
    o->sync = cu_sync;
    o->copy2d = cu_copy2d;
    o->conv2d_forward = cuda_conv_forward;
    o->conv2d_backward_data = cuda_conv_backward_data;
    o->conv2d_backward_filter = cuda_conv_backward_filter;
    o->relu_backward = cuda_relu_backward;
    o->maxpool2x2_forward = cuda_maxpool2x2_forward;
    o->maxpool2x2_backward = cuda_maxpool2x2_backward;
    o->global_maxpool_forward = cuda_global_maxpool_forward;
    o->global_maxpool_backward = cuda_global_maxpool_backward;
    o->linear_forward = cuda_linear_forward;
    o->linear_backward = cuda_linear_backward;
    o->l1_loss = cuda_l1_loss;
    o->bce_logits_loss = cuda_bce_logits_loss;
    o->adam_update = cuda_adam_update;
    o->add_scale = cuda_add_scale;
    o->nonfinite_check = cuda_nonfinite_check;
    o->destroy = cu_destroy;
    o->stream = cu_stream;
    o->alloc_host = cu_alloc_host;
    o->release_host = cu_release_host;
    o->mark = cu_mark;
    o->upload_async = cu_upload_async;
    o->prep_input = cuda_prep_input;
    o->densify_input = cuda_densify_input;
    o->graph_begin = cu_graph_begin;
    o->graph_end = cu_graph_end;
}

extern "C" NetOps *net_cuda_create(int gpu, const char *precision) {
    Precision prec = PREC_FP32;
    cudaDeviceProp prop;
    if (parse_precision(precision, &prec) || check_device(gpu, prec, precision, &prop)) return NULL;
    CudaCtx *c = (CudaCtx *)calloc(1, sizeof *c);
    NetOps *o = (NetOps *)calloc(1, sizeof *o);
    if (!c || !o) {
        e2e_fail("device cuda: out of host memory");
        free(c);
        free(o);
        return NULL;
    }
    c->device = gpu;
    c->prec = prec;
    c->cc_major = prop.major;
    c->cc_minor = prop.minor;
    if (ctx_start(c)) {
        ctx_free(c);
        free(o);
        return NULL;
    }
    fill_ops(o, c);
    return o;
}

static CudaCtx *cuda_ctx(const NetOps *ops) {
    return ops && ops->destroy == cu_destroy ? (CudaCtx *)ops->ctx : NULL;
}

extern "C" int net_cuda_stats(const NetOps *ops, CudaStats *out) {
    CudaCtx *c = cuda_ctx(ops);
    if (!c || !out) return -1;
    out->graphs_recorded = c->graphs_recorded;
    out->graphs_replayed = c->graphs_replayed;
    out->conv_plans = c->n_plans;
    out->nondeterministic = c->nondeterministic;
    out->fp32_fallbacks = c->fp32_fallbacks;
    out->fp32_relaxed = c->fp32_relaxed;
    out->workspace_bytes = c->workspace.bytes;
    return 0;
}

extern "C" int net_cuda_fail_next_capture(NetOps *ops) {
    CudaCtx *c = cuda_ctx(ops);
    if (!c) return -1;
    c->fail_next_capture = 1;
    return 0;
}

extern "C" int net_cuda_set_graphs(NetOps *ops, int on) {
    CudaCtx *c = cuda_ctx(ops);
    if (!c) return -1;
    int was = c->graphs_on;
    c->graphs_on = on != 0;
    return was;
}
