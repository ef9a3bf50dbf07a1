/* Finite-difference check of the whole model: for every parameter tensor, the
 * directional derivative of the loss along a random direction restricted to that
 * tensor, (L(p + e v) - L(p - e v)) / 2e with |v| = 1, against grad . v from
 * model_backward. Small images keep it fast; every convolution engine is checked
 * (E2E_CPU_CONV), with the L1 loss of the regression and the binary cross-entropy on
 * logits of the classification. */
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
    return check_main_result("test_model_gradcheck");
}
