/* model_train_pass and model_predict on a backend whose memory is not the host's: the
 * CPU backend behind a wrapper that says so, which makes the model copy each batch
 * into its own input buffers. Results must be bitwise those of the in-place path. */
#include <string.h>

#include "check.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"
#include "ops_profile.h"
#include "rng.h"

static void train(NetOps *ops, const HostBatch *b, float *grads, float *pred, float *loss) {
    ModelConfig cfg = model_default_config(4);
    cfg.height = cfg.width = 20;
    Model *m;
    if (model_create(&m, &cfg, ops)) {
        CHECK(0, "model_create: %s", net_error());
        return;
    }
    model_init(m, 3);
    CHECK(model_train_pass(m, b) == 0, "train pass: %s", net_error());
    model_loss_value(m, loss);
    model_get_grads(m, grads);
    CHECK(model_predict(m, b, pred) == 0, "predict: %s", net_error());
    model_free(m);
}

int main(void) {
    Rng r;
    rng_seed(&r, 11);
    enum { N = 3, NX = N * 8 * 20 * 20 };
    static float x[NX];
    float sc[2 * N], t[N], w[N] = {1, 2, 0.5f};
    for (int i = 0; i < NX; i++) x[i] = rng_uniform(&r);
    for (int i = 0; i < 2 * N; i++) sc[i] = rng_uniform(&r);
    for (int i = 0; i < N; i++) t[i] = rng_uniform(&r);
    HostBatch b = {.n = N, .x = x, .scalars = sc, .target = t, .weight = w};

    NetOps *cpu = net_cpu_create(2);
    OpsProfile prof = {0};
    NetOps *staged = ops_profile_wrap(cpu, &prof);
    staged->host_memory = 0;
    static float g1[200000], g2[200000];
    float p1[N], p2[N], l1, l2;
    train(cpu, &b, g1, p1, &l1);
    train(staged, &b, g2, p2, &l2);
    CHECK(prof.calls[PROF_OTHER] > 0, "the staged path uploaded nothing");
    CHECK(l1 == l2, "loss %g in place, %g staged", l1, l2);
    CHECK(memcmp(p1, p2, sizeof p1) == 0, "predictions differ between in place and staged");
    CHECK(memcmp(g1, g2, sizeof g1) == 0, "gradients differ between in place and staged");
    staged->destroy(staged);
    cpu->destroy(cpu);
    return check_main_result("test_model_staging");
}
