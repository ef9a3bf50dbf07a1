/* GPU training throughput of ResNet-15 on the CUDA backend: samples/s of the training
 * step (model_train_pass + Adam) with the batch already on the GPU (compute only), and
 * end to end with the data path (host batches copied in by model_train_pass: pinned
 * binary16 pixels preprocessed on the GPU, and pageable float32), plus the step's
 * physical floor: convolution FLOPs over the measured bf16 matrix rate, and the bytes
 * each op must read and write once over the measured memory bandwidth. Prints a report
 * and, last, one JSON line for tests/bench/gpu_vs_torch.sh.
 *   bench_gpu_train [--batch 256] [--precision bf16] [--seconds 2] [--channels 8] [--size 125]
 *   bench_gpu_train --peaks     (only the two ceilings, as one JSON line)
 * Exits 2 with a message when there is no GPU. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adam.h"
#include "cuda/cuda_backend.h"
#include "error.h"
#include "model.h"
#include "rng.h"

#define CK(call)                                                                              \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)
#define CKB(call)                                                                             \
    do {                                                                                      \
        cublasStatus_t s_ = (call);                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                    \
            fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #call, (int)s_); \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- the two ceilings ---- */

/* median of 10 timed 8192^3 bf16 products (fp32 accumulation) on random data, TFLOP/s */
static double bf16_matmul_tflops(void) {
    const int n = 8192, reps = 10;
    size_t count = (size_t)n * n;
    uint16_t *h = malloc(count * 2);
    Rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < count; i++) {  /* bf16 = the top half of a float */
        float f = rng_range(&r, -1, 1);
        uint32_t u;
        memcpy(&u, &f, 4);
        h[i] = (uint16_t)(u >> 16);
    }
    void *a, *b, *c;
    CK(cudaMalloc(&a, count * 2));
    CK(cudaMalloc(&b, count * 2));
    CK(cudaMalloc(&c, count * 2));
    CK(cudaMemcpy(a, h, count * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b, h, count * 2, cudaMemcpyHostToDevice));
    free(h);
    cublasHandle_t hd;
    CKB(cublasCreate(&hd));
    const float one = 1.0f, zero = 0.0f;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    double t[10];
    for (int i = 0; i < reps + 3; i++) {
        CK(cudaEventRecord(e0, 0));
        CKB(cublasGemmEx(hd, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b,
                         CUDA_R_16BF, n, &zero, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 3) t[i - 3] = ms * 1e-3;
    }
    cublasDestroy(hd);
    cudaFree(a), cudaFree(b), cudaFree(c);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return 2.0 * n * n * (double)n / median(t, reps) / 1e12;
}

/* median of 10 device-to-device copies of 1 GiB, counting bytes read plus written, GB/s */
static double copy_bandwidth_gbs(void) {
    const size_t bytes = (size_t)1 << 30;
    const int reps = 10;
    void *a, *b;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    CK(cudaMemset(a, 1, bytes));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    double t[10];
    for (int i = 0; i < reps + 3; i++) {
        CK(cudaEventRecord(e0, 0));
        CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0));
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= 3) t[i - 3] = ms * 1e-3;
    }
    cudaFree(a), cudaFree(b);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return 2.0 * bytes / median(t, reps) / 1e9;
}

/* ---- counting FLOPs and bytes: the backend's ops with a tally in front ---- */

static NetOps inner;
static double flops, bytes, act;  /* act: bytes per activation element in the floor */

static double conv_macs(const ConvShape *s) {
    return (double)s->n * s->out_h * s->out_w * s->out_c * s->in_c * s->k_h * s->k_w;
}
static double in_n(const ConvShape *s) { return (double)s->n * s->in_c * s->in_h * s->in_w; }
static double out_n(const ConvShape *s) { return (double)s->n * s->out_c * s->out_h * s->out_w; }
static double w_n(const ConvShape *s) { return (double)s->out_c * s->in_c * s->k_h * s->k_w; }

static void t_fwd(void *ctx, const ConvShape *s, Layout l, const float *x, const float *w,
                  const float *b, const float *r, int relu, float *y) {
    flops += 2 * conv_macs(s);
    bytes += act * (in_n(s) + out_n(s) * (r ? 2 : 1)) + 4 * w_n(s);
    inner.conv2d_forward(ctx, s, l, x, w, b, r, relu, y);
}
static void t_bd(void *ctx, const ConvShape *s, const float *dy, const float *w, const float *m,
                 float *dx) {
    flops += 2 * conv_macs(s);
    bytes += act * (out_n(s) + in_n(s) * (m ? 2 : 1)) + 4 * w_n(s);
    inner.conv2d_backward_data(ctx, s, dy, w, m, dx);
}
static void t_bf(void *ctx, const ConvShape *s, Layout l, const float *x, const float *dy,
                 float *dw, float *db) {
    flops += 2 * conv_macs(s);
    bytes += act * (in_n(s) + out_n(s)) + 4 * w_n(s);
    inner.conv2d_backward_filter(ctx, s, l, x, dy, dw, db);
}
static void t_relu(void *ctx, size_t n, const float *y, const float *dy, const float *a, float *dx) {
    bytes += act * n * (a ? 4 : 3);
    inner.relu_backward(ctx, n, y, dy, a, dx);
}
static void t_mpf(void *ctx, int n, int c, int h, int w, const float *x, float *y, int32_t *i) {
    bytes += act * n * c * h * w * 1.25 + 4.0 * n * c * (h / 2) * (w / 2);
    inner.maxpool2x2_forward(ctx, n, c, h, w, x, y, i);
}
static void t_mpb(void *ctx, int n, int c, int h, int w, const float *dy, const int32_t *i, float *dx) {
    bytes += act * n * c * h * w * 1.25 + 4.0 * n * c * (h / 2) * (w / 2);
    inner.maxpool2x2_backward(ctx, n, c, h, w, dy, i, dx);
}
static void t_gpf(void *ctx, int n, int c, int h, int w, const float *x, float *y, int ld, int32_t *i) {
    bytes += act * n * c * h * w;
    inner.global_maxpool_forward(ctx, n, c, h, w, x, y, ld, i);
}
static void t_gpb(void *ctx, int n, int c, int h, int w, const float *dy, int ld, const int32_t *i, float *dx) {
    bytes += act * n * c * h * w;
    inner.global_maxpool_backward(ctx, n, c, h, w, dy, ld, i, dx);
}
static void t_adam(void *ctx, size_t n, float *p, const float *g, float *m, float *v,
                   const AdamFactors *k) {
    bytes += 4.0 * n * 7;  /* p, g, m, v read; p, m, v written */
    inner.adam_update(ctx, n, p, g, m, v, k);
}

/* FLOPs and bytes of one training step (forward, loss, backward, Adam) of n samples */
static void count_step(NetOps *gpu, const ModelConfig *cfg, int n, int elem, double *f, double *b) {
    inner = *gpu;
    NetOps t = *gpu;
    t.conv2d_forward = t_fwd;
    t.conv2d_backward_data = t_bd;
    t.conv2d_backward_filter = t_bf;
    t.relu_backward = t_relu;
    t.maxpool2x2_forward = t_mpf;
    t.maxpool2x2_backward = t_mpb;
    t.global_maxpool_forward = t_gpf;
    t.global_maxpool_backward = t_gpb;
    t.adam_update = t_adam;
    t.caps &= ~OPS_GRAPHS;  /* every op runs (and is counted) */
    ModelConfig c = *cfg;
    c.max_batch = n;
    Model *m;
    if (model_create(&m, &c, &t)) {
        fprintf(stderr, "bench: %s\n", e2e_error());
        exit(1);
    }
    Adam a;
    adam_create(&a, &t, model_arena_size(m), adam_default_hyper());
    size_t nx = (size_t)n * c.in_channels * c.height * c.width;
    float *x = calloc(nx, 4), *sc = calloc((size_t)n * c.n_scalars + 1, 4), *tg = calloc(n, 4);
    Batch hb = {.n = n, .x = x, .scalars = sc, .target = tg};
    act = elem;
    flops = bytes = 0;
    model_train_pass(m, &hb);  /* staging copies are not op bytes: counted from here */
    flops = bytes = 0;
    model_train_pass(m, &hb);
    adam_step(&a, 1e-3f, model_params(m), model_grads(m));
    bytes += act * nx;  /* the input image, read once */
    *f = flops;
    *b = bytes;
    gpu->sync(gpu->ctx);
    adam_free(&a);
    model_free(m);
    free(x), free(sc), free(tg);
}

/* ---- throughput ---- */

/* samples/s of `step` repeated for about `seconds`, median of 5 rounds */
typedef struct {
    Model *m;
    Adam *a;
    Batch *b;
    int nb;      /* batches to rotate among */
    int next;
} Loop;

static void loop_step(Loop *l) {
    Batch *b = &l->b[l->next++ % l->nb];
    if (model_train_pass(l->m, b) || adam_step(l->a, 1e-3f, model_params(l->m), model_grads(l->m))) {
        fprintf(stderr, "bench: %s\n", e2e_error());
        exit(1);
    }
}

static double throughput(NetOps *gpu, Loop *l, int batch, double seconds) {
    for (int i = 0; i < 5; i++) loop_step(l);  /* warm-up: algorithms, graph recording */
    gpu->sync(gpu->ctx);
    double t0 = now();
    int probe = 0;
    while (now() - t0 < 0.2 * seconds || probe < 3) {
        loop_step(l);
        probe++;
        gpu->sync(gpu->ctx);
    }
    double per = (now() - t0) / probe;
    int steps = (int)(seconds / 5 / per) + 3;
    double r[5];
    for (int k = 0; k < 5; k++) {
        gpu->sync(gpu->ctx);
        t0 = now();
        for (int s = 0; s < steps; s++) loop_step(l);
        gpu->sync(gpu->ctx);
        r[k] = batch * steps / (now() - t0);
    }
    return median(r, 5);
}

static uint16_t half_of(float f) {  /* f in [0, 1): round to nearest binary16 */
    if (f < 6.2e-5f) return 0;
    int e;
    float m = frexpf(f, &e);
    int man = (int)((m * 2.0f - 1.0f) * 1024.0f + 0.5f);
    if (man == 1024) man = 0, e++;
    return (uint16_t)((e - 1 + 15) << 10 | man);
}

int main(int argc, char **argv) {
    int batch = 256, channels = 8, size = 125, peaks_only = 0;
    double seconds = 2.0;
    const char *prec = "bf16";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peaks")) { peaks_only = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "option %s needs a value\n", argv[i]); return 2; }
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--batch")) batch = atoi(v);
        else if (!strcmp(argv[i - 1], "--precision")) prec = v;
        else if (!strcmp(argv[i - 1], "--seconds")) seconds = atof(v);
        else if (!strcmp(argv[i - 1], "--channels")) channels = atoi(v);
        else if (!strcmp(argv[i - 1], "--size")) size = atoi(v);
        else { fprintf(stderr, "unknown option %s\n", argv[i - 1]); return 2; }
    }
    if (net_cuda_device_count() == 0) {
        fprintf(stderr, "bench_gpu_train: no GPU here (cudaGetDeviceCount reports none)\n");
        return 2;
    }
    if (peaks_only) {
        double tf = bf16_matmul_tflops(), bw = copy_bandwidth_gbs();
        struct cudaDeviceProp p;
        CK(cudaGetDeviceProperties(&p, 0));
        printf("%s: bf16 matrix product %.1f TFLOP/s, device copy %.1f GB/s\n", p.name, tf, bw);
        printf("{\"gpu\": \"%s\", \"bf16_tflops\": %.3f, \"bandwidth_gbs\": %.3f}\n", p.name, tf, bw);
        return 0;
    }
    NetOps *gpu = net_cuda_create(0, prec);
    if (!gpu) {
        fprintf(stderr, "bench_gpu_train: %s\n", e2e_error());
        return 2;
    }
    ModelConfig cfg = model_default_config(batch);
    cfg.in_channels = channels;
    cfg.height = cfg.width = size;
    double flop, byte;
    count_step(gpu, &cfg, 8, strcmp(prec, "bf16") == 0 ? 2 : 4, &flop, &byte);
    flop /= 8, byte /= 8;  /* per sample */

    Model *m;
    if (model_create(&m, &cfg, gpu)) {
        fprintf(stderr, "bench: %s\n", e2e_error());
        return 1;
    }
    model_init(m, 1);
    Adam adam;
    adam_create(&adam, gpu, model_arena_size(m), adam_default_hyper());

    /* 4 host batches of sparse jet-like images (20% of pixels lit) */
    enum { NB = 4 };
    Rng rng;
    rng_seed(&rng, 5);
    size_t nx = (size_t)batch * channels * size * size;
    float scale[64];
    for (int c = 0; c < 64; c++) scale[c] = 1.0f;
    InputPrep prep = {.scale = scale, .threshold = 1e-3f};
    Batch pinned[NB], pageable[NB], resident;
    float *sc = malloc(sizeof(float) * 2 * batch), *tg = malloc(sizeof(float) * batch);
    for (int i = 0; i < 2 * batch; i++) sc[i] = rng_uniform(&rng);
    for (int i = 0; i < batch; i++) tg[i] = rng_uniform(&rng);
    for (int k = 0; k < NB; k++) {
        float *x = malloc(sizeof(float) * nx);
        uint16_t *xh = gpu->alloc_host(gpu->ctx, nx * 2);
        if (!x || !xh) {
            fprintf(stderr, "bench: out of host memory for batch %d\n", batch);
            return 1;
        }
        for (size_t i = 0; i < nx; i++) {
            x[i] = rng_uniform(&rng) < 0.2f ? rng_uniform(&rng) : 0.0f;
            xh[i] = half_of(x[i]);
        }
        pageable[k] = (Batch){.n = batch, .x = x, .scalars = sc, .target = tg};
        pinned[k] = (Batch){.n = batch, .x_half = xh, .scalars = sc, .target = tg, .prep = &prep};
    }
    float *dx = gpu->alloc(gpu->ctx, nx * 4), *dsc = gpu->alloc(gpu->ctx, 8 * batch);
    float *dtg = gpu->alloc(gpu->ctx, 4 * batch);
    gpu->upload(gpu->ctx, dx, pageable[0].x, nx * 4);
    gpu->upload(gpu->ctx, dsc, sc, 8 * batch);
    gpu->upload(gpu->ctx, dtg, tg, 4 * batch);
    resident = (Batch){.n = batch, .x = dx, .scalars = dsc, .target = dtg, .on_device = 1};

    Loop lc = {m, &adam, &resident, 1, 0}, lp = {m, &adam, pinned, NB, 0}, lf = {m, &adam, pageable, NB, 0};
    double compute = throughput(gpu, &lc, batch, seconds);
    double e2e = throughput(gpu, &lp, batch, seconds);
    double e2e_f32 = throughput(gpu, &lf, batch, seconds);
    CudaStats st;
    net_cuda_stats(gpu, &st);
    printf("e2e-ddp CUDA training, ResNet-15 %dx%dx%d, batch %d, precision %s\n", channels, size,
           size, batch, prec);
    printf("  compute only (batch on the GPU):             %10.1f samples/s (%.2f ms/step)\n",
           compute, 1e3 * batch / compute);
    printf("  end to end, pinned binary16 + GPU preprocess: %10.1f samples/s = %.1f%% of compute\n",
           e2e, 100 * e2e / compute);
    printf("  end to end, pageable float32:                 %10.1f samples/s = %.1f%% of compute\n",
           e2e_f32, 100 * e2e_f32 / compute);
    printf("  per sample: %.3f GFLOP (convolutions), %.2f MB (each op's operands once, %d-byte "
           "activations)\n", flop / 1e9, byte / 1e6, strcmp(prec, "bf16") == 0 ? 2 : 4);
    printf("  graphs recorded %ld, launched %ld; %ld convolution plans (%ld non-deterministic), "
           "cuDNN workspace %.1f MiB\n", st.graphs_recorded, st.graphs_replayed, st.conv_plans,
           st.nondeterministic, st.workspace_bytes / 1048576.0);
    printf("{\"impl\": \"e2e-ddp\", \"precision\": \"%s\", \"batch\": %d, \"compute_sps\": %.3f, "
           "\"e2e_sps\": %.3f, \"e2e_f32_pageable_sps\": %.3f, \"flop_per_sample\": %.0f, "
           "\"bytes_per_sample\": %.0f}\n", prec, batch, compute, e2e, e2e_f32, flop, byte);
    for (int k = 0; k < NB; k++) {
        free((void *)pageable[k].x);
        gpu->release_host(gpu->ctx, (void *)pinned[k].x_half);
    }
    gpu->release(gpu->ctx, dx), gpu->release(gpu->ctx, dsc), gpu->release(gpu->ctx, dtg);
    free(sc), free(tg);
    adam_free(&adam);
    model_free(m);
    gpu->destroy(gpu);
    return 0;
}
