/* The CUDA backend's graphs and staging on the emulated device (tests/cuda_emu/README.md),
 * on small shapes (also the ThreadSanitizer run, ctest cuda_emu_tsan):
 *  - training passes recorded and replayed give the CPU's loss, and the capture contains
 *    no call the runtime refuses (the emulator invalidates a capture for each);
 *  - float32, binary16 and sparse batches, staged from pageable and pinned memory;
 *  - a pass whose host side fails while it is recorded leaves no graph behind;
 *  - more batch sizes than the plan table holds: graphs keep being recorded (the least
 *    recently used plans go, not every plan);
 *  - back-to-back passes staged from host memory equal synchronised passes on batches
 *    already on the device, bitwise; with the emulator made to drop every
 *    cudaStreamWaitEvent (a forgotten wait) and copies slowed, they do not: the
 *    comparison sees a missing wait (not under ThreadSanitizer, which reports the race
 *    instead). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "check.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "cuda_emu_control.h"
#include "error.h"
#include "model.h"
#include "rng.h"

static NetOps *cpu, *gpu;
static Rng rng;
static ModelConfig cfg;

typedef struct {
    int n;
    float *x, *sc, *t;
    uint16_t *half;  /* x as binary16 (x holds values binary16 keeps exactly) */
} HostBatch;

/* IEEE binary16 bits of k / 64, 0 <= k < 2048 */
static uint16_t half_bits(float f) {
    if (f == 0.0f) return 0;
    int e;
    float m = frexpf(f, &e);
    return (uint16_t)((uint16_t)(e - 1 + 15) << 10 | (uint16_t)((m * 2.0f - 1.0f) * 1024.0f));
}

static HostBatch make_batch(int n) {
    HostBatch b = {.n = n};
    size_t nx = (size_t)n * cfg.in_channels * cfg.height * cfg.width;
    b.x = calloc(nx, sizeof(float));
    b.half = calloc(nx, sizeof(uint16_t));
    for (size_t i = 0; i < nx; i++) {
        b.x[i] = rng_uniform(&rng) < 0.2f ? (float)(1 + rng_next(&rng) % 63) / 64.0f : 0.0f;
        b.half[i] = half_bits(b.x[i]);
    }
    b.sc = malloc(sizeof(float) * 2 * n);
    b.t = malloc(sizeof(float) * n);
    for (int i = 0; i < 2 * n; i++) b.sc[i] = rng_uniform(&rng);
    for (int i = 0; i < n; i++) b.t[i] = 0.1f + 0.8f * rng_uniform(&rng);
    return b;
}

static void free_batch(HostBatch *b) { free(b->x), free(b->half), free(b->sc), free(b->t); }

static Batch as_batch(const HostBatch *b, int n) {
    return (Batch){.n = n, .x = b->x, .scalars = b->sc, .target = b->t};
}

static Model *make_model(NetOps *ops) {
    Model *m = NULL;
    if (model_create(&m, &cfg, ops) || model_init(m, 3)) {
        CHECK(0, "model on %s: %s", ops->name, e2e_error());
        exit(1);
    }
    return m;
}

static float loss_of(Model *m, const Batch *b) {
    float l = NAN;
    CHECK(model_train_pass(m, b) == 0 && model_loss_value(m, &l) == 0, "a pass of %d: %s", b->n, e2e_error());
    return l;
}

static int close_to(float a, float b) { return fabsf(a - b) <= 1e-5f * fabsf(b); }

/* direct, recorded, replayed: the CPU's loss each time, nothing the capture refused */
static void test_replay(const HostBatch *hb) {
    Model *mc = make_model(cpu), *mg = make_model(gpu);
    CudaStats s0, s1;
    CudaEmuStats e0, e1;
    net_cuda_stats(gpu, &s0);
    cuda_emu_stats(&e0);
    Batch b = as_batch(hb, hb->n);
    for (int pass = 0; pass < 3; pass++) {
        float lc = loss_of(mc, &b), lg = loss_of(mg, &b);
        CHECK(close_to(lg, lc), "pass %d: gpu loss %.8g, cpu %.8g", pass, lg, lc);
    }
    net_cuda_stats(gpu, &s1);
    cuda_emu_stats(&e1);
    CHECK(s1.graphs_recorded - s0.graphs_recorded == 1 && s1.graphs_replayed - s0.graphs_replayed == 2,
          "one graph recorded, launched twice: %ld, %ld", s1.graphs_recorded - s0.graphs_recorded,
          s1.graphs_replayed - s0.graphs_replayed);
    CHECK(e1.captures_invalidated == e0.captures_invalidated && e1.graph_launches - e0.graph_launches == 2,
          "the capture holds no refused call (%ld invalidated), %ld graph launches",
          e1.captures_invalidated - e0.captures_invalidated, e1.graph_launches - e0.graph_launches);
    CHECK(e1.block_mode_kernels > e0.block_mode_kernels, "kernels with __syncthreads ran their blocks' threads together");
    model_free(mc);
    model_free(mg);
}

/* binary16 from pinned memory, and sparse entries, both preprocessed on the device */
static void test_feeds(const HostBatch *hb) {
    Model *mc = make_model(cpu), *mg = make_model(gpu);
    const int planes = hb->n * cfg.in_channels, hw = cfg.height * cfg.width;
    const size_t nx = (size_t)planes * hw;
    float scale[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    InputPrep prep = {.scale = scale, .threshold = 0.0f};
    Batch bc = as_batch(hb, hb->n), bg = bc;
    uint16_t *pinned = gpu->alloc_host(gpu->ctx, nx * 2);
    memcpy(pinned, hb->half, nx * 2);
    bg.x = NULL, bg.x_half = pinned, bg.prep = &prep;
    float lc = loss_of(mc, &bc), lg = loss_of(mg, &bg);
    CHECK(close_to(lg, lc), "binary16 from pinned memory: gpu %.8g, cpu %.8g", lg, lc);
    uint32_t *starts = calloc((size_t)planes + 1, 4);
    uint16_t *pos = calloc(nx, 2), *val = calloc(nx, 2);
    long long e = 0;
    for (int p = 0; p < planes; p++) {
        for (int k = 0; k < hw; k++)
            if (hb->x[(size_t)p * hw + k] != 0.0f) pos[e] = (uint16_t)k, val[e++] = hb->half[(size_t)p * hw + k];
        starts[p + 1] = (uint32_t)e;
    }
    bg.x_half = NULL;
    bg.sparse = (SparseImages){.nnz = e, .plane_start = starts, .pos = pos, .value = val, .pos_bytes = 2,
                               .value_bytes = 2};
    model_init(mg, 3);
    lg = loss_of(mg, &bg);
    CHECK(close_to(lg, lc), "sparse entries densified on the device: gpu %.8g, cpu %.8g", lg, lc);
    gpu->release_host(gpu->ctx, pinned);
    free(starts), free(pos), free(val);
    model_free(mc);
    model_free(mg);
}

/* A recording whose pass failed on the host is dropped: nothing recorded or launched,
 * and the key records afresh next time. */
static void test_failed_pass(void) {
    const uint64_t key = 0x5eed;
    CudaStats s0, s1;
    net_cuda_stats(gpu, &s0);
    CHECK(gpu->graph_begin(gpu->ctx, key) == OPS_GRAPH_DIRECT, "a new key's first pass runs directly");
    CHECK(gpu->graph_end(gpu->ctx, 0) == 0, "graph_end after a direct pass");
    float *buf = gpu->alloc(gpu->ctx, 64 * sizeof(float));
    CHECK(gpu->graph_begin(gpu->ctx, key) == OPS_GRAPH_RECORDING, "its second pass is recorded");
    gpu->nonfinite_check(gpu->ctx, 63, buf, buf + 63);  /* the part of the pass that was recorded */
    CHECK(gpu->graph_end(gpu->ctx, 1) == 0, "a failed pass's graph_end: %s", e2e_error());
    net_cuda_stats(gpu, &s1);
    CHECK(s1.graphs_recorded == s0.graphs_recorded && s1.graphs_replayed == s0.graphs_replayed,
          "the failed pass's recording is neither kept nor launched (%ld recorded, %ld launched)",
          s1.graphs_recorded - s0.graphs_recorded, s1.graphs_replayed - s0.graphs_replayed);
    int mode = gpu->graph_begin(gpu->ctx, key);
    CHECK(mode != OPS_GRAPH_REPLAYED, "the key does not replay the failed pass's recording");
    if (mode == OPS_GRAPH_RECORDING) gpu->graph_end(gpu->ctx, 1);
    CHECK(net_cuda_set_graphs(gpu, 1) == 1, "graph replay stays on after a failed pass");
    gpu->release(gpu->ctx, buf);
}

#if !defined(__SANITIZE_THREAD__) /* plans, not races: too slow under ThreadSanitizer */
/* Batch sizes 1 to max_batch, three passes each: more plans than the table holds, and
 * every size still records its graph and gives the CPU's loss. */
static void test_many_sizes(const HostBatch *hb) {
    Model *mc = make_model(cpu), *mg = make_model(gpu);
    CudaStats s0, s1;
    net_cuda_stats(gpu, &s0);
    int wrong = 0;
    for (int n = 1; n <= cfg.max_batch; n++) {
        Batch b = as_batch(hb, n);
        for (int pass = 0; pass < 3; pass++) wrong += !close_to(loss_of(mg, &b), loss_of(mc, &b));
    }
    net_cuda_stats(gpu, &s1);
    CHECK(wrong == 0, "%d of %d passes over %d batch sizes differ from the CPU's", wrong, 3 * cfg.max_batch,
          cfg.max_batch);
    CHECK(s1.graphs_recorded - s0.graphs_recorded == cfg.max_batch,
          "%ld of %d batch sizes recorded a graph (%ld plans now)", s1.graphs_recorded - s0.graphs_recorded,
          cfg.max_batch, s1.conv_plans);
    CHECK(net_cuda_set_graphs(gpu, 1) == 1, "graph replay still on after the plan table filled");
    model_free(mc);
    model_free(mg);
}
#endif

/* 6 back-to-back passes with Adam steps, their batches staged from host memory while
 * the previous pass runs, against the same passes on batches already in device memory
 * (uploaded in op order, no second stream) with the device synchronised after each: 1
 * when the parameters are bitwise equal. */
static int back_to_back_equal(const HostBatch *hb) {
    Model *a = make_model(gpu), *s = make_model(gpu);
    Adam aa, as;
    adam_create(&aa, gpu, model_arena_size(a), adam_default_hyper());
    adam_create(&as, gpu, model_arena_size(s), adam_default_hyper());
    size_t nx = (size_t)cfg.max_batch * cfg.in_channels * cfg.height * cfg.width;
    float *dx = gpu->alloc(gpu->ctx, nx * 4), *dsc = gpu->alloc(gpu->ctx, cfg.max_batch * 8);
    float *dt = gpu->alloc(gpu->ctx, cfg.max_batch * 4);
    for (int k = 0; k < 6; k++) {  /* enqueued far ahead of the device */
        Batch b = as_batch(hb, cfg.max_batch - k % 3);
        model_train_pass(a, &b);
        adam_step(&aa, 1e-3f, model_params(a), model_grads(a));
    }
    for (int k = 0; k < 6; k++) {
        Batch b = as_batch(hb, cfg.max_batch - k % 3);
        gpu->upload(gpu->ctx, dx, b.x, nx / cfg.max_batch * b.n * 4);
        gpu->upload(gpu->ctx, dsc, b.scalars, (size_t)b.n * 8);
        gpu->upload(gpu->ctx, dt, b.target, (size_t)b.n * 4);
        Batch on = {.n = b.n, .x = dx, .scalars = dsc, .target = dt, .on_device = 1};
        gpu->sync(gpu->ctx);
        model_train_pass(s, &on);
        adam_step(&as, 1e-3f, model_params(s), model_grads(s));
        gpu->sync(gpu->ctx);
    }
    size_t n = model_arena_size(a);
    float *pa = malloc(n * 4), *ps = malloc(n * 4);
    model_get_params(a, pa);
    model_get_params(s, ps);
    int same = memcmp(pa, ps, n * 4) == 0;
    free(pa), free(ps);
    gpu->release(gpu->ctx, dx), gpu->release(gpu->ctx, dsc), gpu->release(gpu->ctx, dt);
    adam_free(&aa), adam_free(&as);
    model_free(a), model_free(s);
    return same;
}

static void test_staging_race(const HostBatch *hb) {
    CHECK(back_to_back_equal(hb), "back-to-back passes differ from synchronised ones");
#if !defined(__SANITIZE_THREAD__)
    int was_delay = cuda_emu_copy_delay_us(20000);
    cuda_emu_drop_event_waits(1);
    int same = back_to_back_equal(hb);
    cuda_emu_drop_event_waits(0);
    cuda_emu_copy_delay_us(was_delay);
    CHECK(!same, "with every cudaStreamWaitEvent dropped, back-to-back passes still equal synchronised ones: "
          "the comparison would not see a missing wait");
#endif
}

int main(void) {
    rng_seed(&rng, 77);
    cfg = model_default_config(12);
    cfg.in_channels = 3;
    cfg.height = cfg.width = 13;
    cpu = net_cpu_create(1);
    gpu = net_cuda_create(0, "fp32");
    CHECK(cpu && gpu, "backends: %s", e2e_error());
    if (!cpu || !gpu) return check_main_result("test_emu_model");
    HostBatch hb = make_batch(cfg.max_batch);
    test_replay(&hb);
    test_feeds(&hb);
    test_failed_pass();
#if !defined(__SANITIZE_THREAD__)
    test_many_sizes(&hb);
#endif
    test_staging_race(&hb);
    free_batch(&hb);
    gpu->destroy(gpu);
    cpu->destroy(cpu);
    return check_main_result("test_emu_model");
}
