/* Finite-difference check of the whole model: for every parameter tensor, the
 * directional derivative of the loss along a random direction restricted to that
 * tensor, (L(p + e v) - L(p - e v)) / 2e with |v| = 1, against grad . v from
 * model_backward. Small images keep it fast; every convolution engine is checked
 * (E2E_CPU_CONV), with the L1 loss of the regression and the binary cross-entropy on
 * logits of the classification.
 *
 * bf16 (net/README.md, "bf16 on the CPU"), on every engine: the bf16 backward against finite
 * differences of the model's loss. A bf16 forward pass is a staircase at the scale of
 * its rounding (a loss difference over a step that moves activations by less than a
 * bf16 unit measures rounding, not slope), so the differences are taken of the fp32
 * model's loss, the function the bf16 pass approximates, from the same parameters and
 * data: the bf16 gradient must be that function's gradient to the measured bf16
 * tolerance. Per tensor, K random directions; the error is norm-wise over them,
 * ||fd - grad_bf16 . v||_2 / ||fd||_2 (the fp32 gradient's is printed beside it). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"
#include "rng.h"


static void run(const char *path, int channels, int size, int n_scalars, int loss) {
    Rng rng;
    rng_seed(&rng, 99);
    ModelConfig cfg = {.in_channels = channels, .height = size, .width = size + 2,
                       .n_scalars = n_scalars, .blocks = 1, .fmaps0 = 16, .fmaps1 = 32,
                       .max_batch = 3, .loss = loss};
    const int n = 3;
    setenv("E2E_CPU_CONV", path, 1);
    NetOps *ops = net_cpu_create(2);
    unsetenv("E2E_CPU_CONV");
    Model *m;
    if (model_create(&m, &cfg, ops)) {
        CHECK(0, "model_create: %s", e2e_error());
        return;
    }
    model_init(m, 7);
    size_t nx = (size_t)n * channels * cfg.height * cfg.width, na = model_arena_size(m);
    float *x = malloc(sizeof(float) * nx), sc[3 * 4], tgt[3], w[3] = {1.0f, 0.5f, 2.0f};
    for (size_t i = 0; i < nx; i++) x[i] = rng_uniform(&rng);
    for (int i = 0; i < n * n_scalars; i++) sc[i] = rng_range(&rng, -1, 1);
    /* targets 0.5 from the predictions: each sample's L1 sign stays fixed under the
     * small steps below, and the loss stays small, so float keeps its changes exact */
    model_forward(m, n, x, sc);
    const float *pred = model_predictions(m);
    for (int i = 0; i < n; i++) tgt[i] = pred[i] + (i % 2 ? 0.5f : -0.5f);
    if (loss == MODEL_LOSS_BCE)  /* class labels: the loss is smooth everywhere */
        for (int i = 0; i < n; i++) tgt[i] = (float)(i % 2);

    float *p = malloc(sizeof(float) * na), *g = malloc(sizeof(float) * na);
    float *v = calloc(na, sizeof(float));
    model_forward(m, n, x, sc);
    model_loss(m, tgt, w);  /* per-sample weights take part in the check */
    model_backward(m);
    model_get_grads(m, g);
    model_get_params(m, p);
    /* a unit-length direction: a step of eps in norm moves each entry by eps/sqrt(numel),
     * too little to cross the ReLU and max-pool kinks of random data */
    const float eps = 1e-3f;  /* 1e-2 already crosses kinks: the check fails there */
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *t = model_tensor(m, i);
        double an = 0.0;
        const float unit = 1.0f / sqrtf((float)t->numel);
        memcpy(v, p, sizeof(float) * na);
        for (size_t j = 0; j < t->numel; j++) {
            float d = (rng_next(&rng) & 1) ? unit : -unit;
            an += (double)d * g[t->offset + j];
            v[t->offset + j] = p[t->offset + j] + eps * d;
        }
        model_set_params(m, v);
        model_forward(m, n, x, sc);
        model_loss(m, tgt, w);
        float lp;
        model_loss_value(m, &lp);
        for (size_t j = 0; j < t->numel; j++)
            v[t->offset + j] = 2 * p[t->offset + j] - v[t->offset + j];
        model_set_params(m, v);
        model_forward(m, n, x, sc);
        model_loss(m, tgt, w);
        float lm;
        model_loss_value(m, &lm);
        model_set_params(m, p);
        double fd = ((double)lp - lm) / (2 * eps);
        double diff = fabs(fd - an);
        CHECK(diff <= 1e-2 * fabs(an) + 1e-3, "[%s C=%d %s] %s: finite difference %.6g, backward %.6g",
              path, channels, loss == MODEL_LOSS_BCE ? "bce" : "l1", t->name, fd, an);
    }
    free(x), free(p), free(g), free(v);
    model_free(m);
    ops->destroy(ops);
}

enum { K = 4, BF16_BATCH = 3 };  /* directions per tensor and samples in bf16 */
/* The bf16 gradient's error against the differences, measured on every engine (the fp32
 * gradient's, which is the differences' own noise, beside it): pooled over the
 * convolutions' directions 0.03 and 0.08 for 3 and 8 channels (fp32 0.004 and 0.02), the
 * worst tensor 0.29 and 0.38 (fp32 0.03 and 0.12). Rounding to bf16 changes which input
 * wins a max-pool where two are within a bf16 unit, and such a change reroutes a whole
 * gradient path: a tensor whose gradient is the sum of a few such paths (3 samples here)
 * carries large errors, the model as a whole small ones. A wrong pass errs by 1 or more. */
#define BF16_FD_TOL 0.2
#define BF16_FD_TENSOR_TOL 0.75

typedef struct {
    Model *m;
    NetOps *ops;
    int n;
    const float *x, *sc, *tgt, *w;
} Loss;

static float loss_at(Loss *l, const float *params) {
    float v;
    model_set_params(l->m, params);
    model_forward(l->m, l->n, l->x, l->sc);
    model_loss(l->m, l->tgt, l->w);
    model_loss_value(l->m, &v);
    return v;
}

static Model *model_on(const char *precision, const char *engine, const ModelConfig *cfg, NetOps **ops) {
    setenv("E2E_CPU_CONV", engine, 1);
    *ops = net_cpu_create_precision(2, precision);
    unsetenv("E2E_CPU_CONV");
    Model *m = NULL;
    if (!*ops || model_create(&m, cfg, *ops)) return NULL;
    model_init(m, 7);
    return m;
}

static void grads_of(Loss *l, float *g) {
    model_forward(l->m, l->n, l->x, l->sc);
    model_loss(l->m, l->tgt, l->w);
    model_backward(l->m);
    model_get_grads(l->m, g);
}

typedef struct {
    double worst, worst32;    /* the worst tensor's error of g and of g32 */
    const char *name;         /* that tensor (g's) */
    double pooled, pooled32;  /* over every convolution tensor's directions */
} FdErrors;

/* g's and g32's errors against K differences of ref's loss per tensor */
static FdErrors fd_errors(Loss *ref, const float *p, const float *g, const float *g32, Rng *rng) {
    const float eps = 1e-3f;
    size_t na = model_arena_size(ref->m);
    float *v = malloc(sizeof(float) * na), *d = malloc(sizeof(float) * na);
    FdErrors r = {0, 0, "", 0, 0};
    double all = 0, all32 = 0, all_den = 0;
    for (int i = 0; i < model_num_tensors(ref->m); i++) {
        const ParamTensor *t = model_tensor(ref->m, i);
        const float unit = 1.0f / sqrtf((float)t->numel);
        double num = 0, num32 = 0, den = 1e-30;
        for (int k = 0; k < K; k++) {
            double an = 0, an32 = 0;
            for (size_t j = 0; j < t->numel; j++) {
                d[j] = (rng_next(rng) & 1) ? unit : -unit;
                an += (double)d[j] * g[t->offset + j];
                an32 += (double)d[j] * g32[t->offset + j];
            }
            memcpy(v, p, sizeof(float) * na);
            for (size_t j = 0; j < t->numel; j++) v[t->offset + j] = p[t->offset + j] + eps * d[j];
            float lp = loss_at(ref, v);
            for (size_t j = 0; j < t->numel; j++) v[t->offset + j] = p[t->offset + j] - eps * d[j];
            double fd = ((double)lp - loss_at(ref, v)) / (2 * eps);
            num += (fd - an) * (fd - an), num32 += (fd - an32) * (fd - an32), den += fd * fd;
        }
        double e = sqrt(num / den), e32 = sqrt(num32 / den);
        if (e > r.worst) r.worst = e, r.name = t->name;
        if (e32 > r.worst32) r.worst32 = e32;
        if (strncmp(t->name, "fc.", 3) != 0) all += num, all32 += num32, all_den += den;
    }
    r.pooled = sqrt(all / all_den), r.pooled32 = sqrt(all32 / all_den);
    model_set_params(ref->m, p);
    free(v), free(d);
    return r;
}

static void run_bf16(const char *path, int channels, int size, int n_scalars) {
    Rng rng;
    rng_seed(&rng, 99);
    ModelConfig cfg = {.in_channels = channels, .height = size, .width = size + 2,
                       .n_scalars = n_scalars, .blocks = 1, .fmaps0 = 16, .fmaps1 = 32, .max_batch = BF16_BATCH};
    NetOps *ops32, *ops16;
    Model *m32 = model_on("fp32", "direct", &cfg, &ops32), *m16 = model_on("bf16", path, &cfg, &ops16);
    if (!m32 || !m16) {
        CHECK(0, "[bf16 %s] model: %s", path, e2e_error());
        return;
    }
    const int n = BF16_BATCH;
    size_t nx = (size_t)n * channels * cfg.height * cfg.width, na = model_arena_size(m32);
    float *x = malloc(sizeof(float) * nx), sc[BF16_BATCH * 4], tgt[BF16_BATCH], w[BF16_BATCH];
    for (size_t i = 0; i < nx; i++) x[i] = rng_uniform(&rng);
    for (int i = 0; i < n * n_scalars; i++) sc[i] = rng_range(&rng, -1, 1);
    for (int i = 0; i < n; i++) w[i] = 0.5f + 0.25f * (i % 3);
    model_forward(m32, n, x, sc);
    for (int i = 0; i < n; i++) tgt[i] = model_predictions(m32)[i] + (i % 2 ? 0.5f : -0.5f);
    Loss ref = {m32, ops32, n, x, sc, tgt, w}, low = {m16, ops16, n, x, sc, tgt, w};
    float *p = malloc(sizeof(float) * na), *g = malloc(sizeof(float) * na), *g32 = malloc(sizeof(float) * na);
    model_get_params(m32, p);
    grads_of(&low, g);
    grads_of(&ref, g32);
    FdErrors e = fd_errors(&ref, p, g, g32, &rng);
    printf("bf16 %-6s C=%d: bf16 gradient from finite differences of the loss: %.3g over the convolutions, %.3g at worst "
           "(%s); the fp32 gradient's %.3g and %.3g\n", path, channels, e.pooled, e.worst, e.name, e.pooled32,
           e.worst32);
    CHECK(e.pooled <= BF16_FD_TOL, "[bf16 %s C=%d] %.3g from the finite differences", path, channels, e.pooled);
    CHECK(e.worst <= BF16_FD_TENSOR_TOL, "[bf16 %s C=%d] %s: %.3g from the finite differences", path, channels,
          e.name, e.worst);
    free(x), free(p), free(g), free(g32);
    model_free(m32), model_free(m16);
    ops32->destroy(ops32), ops16->destroy(ops16);
}

int main(void) {
    run("direct", 3, 23, 2, MODEL_LOSS_L1);
    run("direct", 8, 20, 0, MODEL_LOSS_L1);
    run("direct", 3, 23, 2, MODEL_LOSS_BCE);
    run("gemm", 3, 23, 2, MODEL_LOSS_L1);
    run("gemm", 8, 20, 0, MODEL_LOSS_BCE);
#ifdef E2E_HAVE_ONEDNN
    run("onednn", 3, 23, 2, MODEL_LOSS_L1);
    run("onednn", 8, 20, 0, MODEL_LOSS_L1);
    run("onednn", 3, 23, 2, MODEL_LOSS_BCE);
#endif
    if (net_cpu_has_bf16()) {
        const char *engines[] = {"direct", "gemm", "onednn", "auto"};
        for (int i = 0; i < 4; i++) {
            run_bf16(engines[i], 3, 23, 2);
            run_bf16(engines[i], 8, 20, 0);
        }
    } else {
        printf("bf16: not run (this CPU has no bf16 instructions)\n");
    }
    return check_main_result("test_model_gradcheck");
}
