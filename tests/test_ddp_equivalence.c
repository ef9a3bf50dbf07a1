/* Data-parallel equivalence under real mpirun (2 ranks): 2 ranks x batch B with
 * gradients averaged over ranks compute the same update as 1 rank x batch 2B, up to
 * float rounding (the model has no batch norm). Each rank trains both the distributed
 * replica (its half of each global batch) and a local model on the whole global batch,
 * from the same initialisation. Tolerances (max |diff| / max |reference|):
 *  - the averaged gradients, every step: 1e-5 (only summation order differs);
 *  - the parameters after 5 Adam steps: 1e-3. Adam divides each update by sqrt(v), so
 *    for entries whose gradient is near zero a rounding-level difference becomes an
 *    O(lr) difference in the step; seen here: about 7e-5. */
#include <string.h>

#include "adam.h"
#include "check.h"
#include "comm.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"
#include "rng.h"

enum { B = 4, STEPS = 5, SIZE = 24, C = 3 };

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    CHECK(c.size == 2, "run with mpirun -np 2");
    NetOps *ops = net_cpu_create(1);
    comm_attach(&c, ops);
    ModelConfig cfg = model_default_config(2 * B);
    cfg.in_channels = C;
    cfg.height = cfg.width = SIZE;
    Model *dist = NULL, *local = NULL;
    CHECK(model_create(&dist, &cfg, ops) == 0 && model_create(&local, &cfg, ops) == 0, "%s", e2e_error());
    /* different seeds per rank, then the broadcast from rank 0, as the trainer does */
    model_init(dist, 100 + c.rank);
    comm_broadcast(&c, model_params(dist), model_arena_size(dist));
    model_init(local, 100);
    size_t na = model_arena_size(dist);
    Adam ad, al;
    adam_create(&ad, ops, na, adam_default_hyper());
    adam_create(&al, ops, na, adam_default_hyper());

    Rng r;
    rng_seed(&r, 77);  /* the same global batches on both ranks */
    const size_t per = (size_t)C * SIZE * SIZE;
    static float x[2 * B * C * SIZE * SIZE];
    float sc[2 * B * 2], t[2 * B], w[2 * B];
    double worst_grad = 0.0;
    for (int s = 0; s < STEPS; s++) {
        for (size_t i = 0; i < 2 * B * per; i++) x[i] = rng_uniform(&r) < 0.3f ? rng_uniform(&r) : 0.0f;
        for (int i = 0; i < 4 * B; i++) sc[i] = rng_range(&r, -1, 1);
        for (int i = 0; i < 2 * B; i++) t[i] = rng_uniform(&r), w[i] = rng_range(&r, 0.5f, 2.0f);
        Batch whole = {.n = 2 * B, .x = x, .scalars = sc, .target = t, .weight = w};
        Batch half = {.n = B, .x = x + c.rank * B * per, .scalars = sc + c.rank * B * 2,
                          .target = t + c.rank * B, .weight = w + c.rank * B};
        CHECK(model_train_pass(local, &whole) == 0, "%s", e2e_error());
        adam_step(&al, 1e-3f, model_params(local), model_grads(local));
        CHECK(model_train_pass(dist, &half) == 0, "%s", e2e_error());
        comm_allreduce_mean(&c, model_grads(dist), na);
        double eg = rel_err(model_grads(dist), model_grads(local), na, 1e-12);
        CHECK(eg <= 1e-5, "step %d: averaged gradients vs the 2B batch's: rel err %g", s + 1, eg);
        if (eg > worst_grad) worst_grad = eg;
        adam_step(&ad, 1e-3f, model_params(dist), model_grads(dist));
    }
    float *pd = model_params(dist), *pl = model_params(local);
    double e = rel_err(pd, pl, na, 1e-12);
    CHECK(e <= 1e-3, "2 ranks x %d vs 1 rank x %d after %d steps: rel err %g", B, 2 * B, STEPS, e);
    int same = 0;
    comm_replicas_identical(&c, pd, na, &same);
    CHECK(same, "the distributed replicas differ between ranks");
    /* it must not pass trivially: the parameters moved */
    Model *init = NULL;
    model_create(&init, &cfg, ops);
    model_init(init, 100);
    double moved = rel_err(pd, model_params(init), na, 1e-12);
    CHECK(moved > 1e-3, "parameters barely moved (%g): the test would pass without training", moved);
    if (c.rank == 0)
        printf("2 ranks x %d vs 1 rank x %d: gradients max rel diff %.3g over %d steps; parameters "
               "after %d Adam steps %.3g (they moved %.3g)\n", B, 2 * B, worst_grad, STEPS, STEPS, e, moved);
    int rc = check_main_result(c.rank ? "test_ddp_equivalence (rank 1)" : "test_ddp_equivalence (rank 0)");
    adam_free(&ad), adam_free(&al);
    model_free(dist), model_free(local), model_free(init);
    ops->destroy(ops);
    comm_finalize(&c);
    return rc;
}
