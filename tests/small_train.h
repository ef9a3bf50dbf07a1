/* A few Adam steps of a small ResNet-15 on fixed data, shared by the tests that compare
 * two backends' or engines' training bit for bit (test_cpu_engines, test_cpu_bf16). */
#ifndef E2E_TESTS_SMALL_TRAIN_H
#define E2E_TESTS_SMALL_TRAIN_H

#include <stdlib.h>

#include "adam.h"
#include "check.h"
#include "error.h"
#include "model.h"
#include "rng.h"

enum { SMALL_STEPS = 3, SMALL_BATCH = 4, SMALL_C = 8, SMALL_SIZE = 20 };

/* SMALL_STEPS Adam steps from seed 3 on fixed data; the parameters into params (host,
 * model_arena_size floats, allocated here). Returns the arena size, 0 on failure. */
static size_t small_train(NetOps *ops, float **params) {
    ModelConfig cfg = model_default_config(SMALL_BATCH);
    cfg.in_channels = SMALL_C;
    cfg.height = cfg.width = SMALL_SIZE;
    Model *m = NULL;
    *params = NULL;
    if (!ops || model_create(&m, &cfg, ops)) {
        CHECK(0, "model_create: %s", ops ? e2e_error() : "no backend");
        return 0;
    }
    model_init(m, 3);
    Adam adam;
    adam_create(&adam, ops, model_arena_size(m), adam_default_hyper());
    Rng r;
    rng_seed(&r, 11);
    static float x[SMALL_BATCH * SMALL_C * SMALL_SIZE * SMALL_SIZE];
    float sc[2 * SMALL_BATCH], t[SMALL_BATCH];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = rng_uniform(&r) < 0.3f ? rng_uniform(&r) : 0;
    for (int i = 0; i < 2 * SMALL_BATCH; i++) sc[i] = rng_uniform(&r);
    for (int i = 0; i < SMALL_BATCH; i++) t[i] = rng_uniform(&r);
    Batch b = {.n = SMALL_BATCH, .x = x, .scalars = sc, .target = t};
    for (int s = 0; s < SMALL_STEPS; s++) {
        model_train_pass(m, &b);
        adam_step(&adam, 1e-3f, model_params(m), model_grads(m));
    }
    size_t n = model_arena_size(m);
    *params = malloc(sizeof(float) * n);
    model_get_params(m, *params);
    adam_free(&adam);
    model_free(m);
    return n;
}

#endif
