/* model_memory_bytes against what a model really takes from its backend: a backend
 * that counts the bytes asked of its alloc, and a model created on it and run through a
 * train pass (the input buffers come then), for several shapes, batches and scalar
 * counts, in host memory (batches read where they are) and as a backend that copies
 * batches in; model_create out of memory; and host_memory_available against
 * /proc/meminfo. The run's refusal of a batch
 * larger than the memory (a real control group's limit) is tests/test_memory_limit.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "host_memory.h"
#include "model.h"

static NetOps *inner;
static size_t asked, live; /* bytes asked of alloc, and the number of live buffers */
static size_t budget = (size_t)-1; /* an alloc past this many bytes in all fails */

static void *counting_alloc(void *ctx, size_t bytes) {
    if (asked + bytes > budget) return NULL;
    asked += bytes;
    live++;
    return inner->alloc(ctx, bytes);
}

static void counting_release(void *ctx, void *p) {
    live--;
    inner->release(ctx, p);
}

/* asks of a model of cfg, created and trained once on the counting backend */
static size_t measured(NetOps *ops, const ModelConfig *cfg) {
    size_t n = (size_t)cfg->max_batch, nx = n * cfg->in_channels * cfg->height * cfg->width;
    float *x = calloc(nx, sizeof *x), *sc = calloc(n * (cfg->n_scalars + 1), sizeof *sc);
    float *t = calloc(n, sizeof *t), *w = calloc(n, sizeof *w);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < n; i++) t[i] = 0.3f, w[i] = 1.0f;
    Batch b = {.n = cfg->max_batch, .x = x, .scalars = cfg->n_scalars ? sc : NULL, .target = t, .weight = w};
    asked = 0;
    Model *m = NULL;
    CHECK(model_create(&m, cfg, ops) == 0, "model_create: %s", e2e_error());
    CHECK(model_train_pass(m, &b) == 0, "train pass: %s", e2e_error());
    size_t got = asked;
    model_free(m);
    free(x), free(sc), free(t), free(w);
    return got;
}

static void test_estimate(NetOps *ops) {
    struct { int c, h, w, s, blocks, batch; } cases[] = {
        {8, 125, 125, 2, 3, 2}, {3, 64, 64, 0, 3, 5}, {2, 32, 32, 1, 1, 3}, {8, 40, 52, 2, 2, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ModelConfig cfg = model_default_config(cases[i].batch);
        cfg.in_channels = cases[i].c, cfg.height = cases[i].h, cfg.width = cases[i].w;
        cfg.n_scalars = cases[i].s, cfg.blocks = cases[i].blocks;
        size_t want = model_memory_bytes(&cfg, ops), got = measured(ops, &cfg);
        CHECK(want == got && live == 0, "%s: %dx%dx%d, %d scalars, %d blocks, batch %d: estimate %zu bytes, the "
              "model asked for %zu (%zu buffers left)", ops_can(ops, OPS_HOST_MEMORY) ? "host" : "copies",
              cases[i].c, cases[i].h, cases[i].w, cases[i].s, cases[i].blocks, cases[i].batch, want, got, live);
    }
}

static void test_scaling(NetOps *ops) {
    /* the activations grow with the batch, the parameters do not */
    ModelConfig a = model_default_config(16), b = model_default_config(32), c = model_default_config(64);
    size_t sa = model_memory_bytes(&a, ops), sb = model_memory_bytes(&b, ops), sc = model_memory_bytes(&c, ops);
    CHECK(sb > sa && sc - sb == 2 * (sb - sa), "linear in the batch: %zu, %zu, %zu", sa, sb, sc);
    CHECK(sb - sa > 16 * 8 * 125 * 125 * sizeof(float), "a jet's activations outweigh its input: %zu", sb - sa);
    ModelConfig bad = a;
    bad.max_batch = 0;
    CHECK(model_memory_bytes(&bad, ops) == 0, "a configuration model_check_config refuses has no size");
    CHECK(model_memory_bytes(&a, NULL) == sa + 16 * (8 * 125 * 125 + 2 + 2) * sizeof(float),
          "without a backend, the input buffers count: %zu", model_memory_bytes(&a, NULL));
}

/* a backend out of memory part way through the graph: model_create fails with the
 * batch and the model's need in the message, and gives back what it took */
static void test_out_of_memory(NetOps *ops) {
    ModelConfig cfg = model_default_config(64);
    Model *m = NULL;
    asked = 0;
    budget = model_memory_bytes(&cfg, ops) / 2;
    e2e_clear_error();
    int rc = model_create(&m, &cfg, ops);
    budget = (size_t)-1;
    char need[64];
    snprintf(need, sizeof need, "needs %.3g GB", model_memory_bytes(&cfg, ops) / 1e9);
    CHECK(rc == -1 && m == NULL && strstr(e2e_error(), "batch 64") && strstr(e2e_error(), need),
          "half the memory: refused naming the batch and the need (%s): '%s'", need, e2e_error());
    CHECK(live == 0, "nothing kept: %zu buffers left", live);
}

/* MemAvailable as /proc/meminfo says it now, in bytes */
static long long meminfo_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

static void test_available(void) {
    char how[512] = "";
    long long before = meminfo_available(), got = host_memory_available(how, sizeof how);
    long long after = meminfo_available();
    long long most = before > after ? before : after;
    CHECK(got > 0 && got <= most + (64LL << 20), "host_memory_available %lld bytes, MemAvailable %lld", got, most);
    CHECK(strstr(how, "GB") != NULL, "it says what it is: '%s'", how);
    CHECK(host_memory_available(NULL, 0) > 0, "how may be NULL");
}

int main(void) {
    inner = net_cpu_create(1);
    CHECK(inner != NULL, "cpu backend: %s", e2e_error());
    NetOps counting = *inner;
    counting.alloc = counting_alloc;
    counting.release = counting_release;
    test_estimate(&counting);
    test_scaling(&counting);
    test_out_of_memory(&counting);
    NetOps copying = counting;  /* batches copied into its buffers, as a GPU's are */
    copying.caps &= ~OPS_HOST_MEMORY;
    test_estimate(&copying);
    test_available();
    inner->destroy(inner);
    return check_main_result("test_model_memory");
}
