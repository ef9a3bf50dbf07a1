/* model_train_pass and model_predict on a backend whose memory is not the host's: the
 * CPU backend behind a wrapper that says so, which makes the model copy each batch
 * into its own input buffers. Results must be bitwise those of the in-place path.
 * model_stage_batch (the trainer's look-ahead) on both: staging the next batch leaves
 * the pass under way alone, and model_train_pass(m, NULL) trains on the staged one.
 * model_accumulate_grads: the mean of two half-batches' gradients is the whole batch's
 * (up to float rounding), on both; and the phase hook sees forward, then backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"
#include "ops_profile.h"
#include "rng.h"

static void train(NetOps *ops, const Batch *b, float *grads, float *pred, float *loss) {
    ModelConfig cfg = model_default_config(4);
    cfg.height = cfg.width = 20;
    Model *m;
    if (model_create(&m, &cfg, ops)) {
        CHECK(0, "model_create: %s", e2e_error());
        return;
    }
    model_init(m, 3);
    CHECK(model_train_pass(m, b) == 0, "train pass: %s", e2e_error());
    model_loss_value(m, loss);
    model_get_grads(m, grads);
    CHECK(model_predict(m, b, pred) == 0, "predict: %s", e2e_error());
    model_free(m);
}

/* pass(b1), stage(b2), loss of b1; then pass(NULL) = pass(b2) bit for bit */
static void test_ahead(NetOps *ops, const char *label, const Batch *b1, const Batch *b2) {
    ModelConfig cfg = model_default_config(4);
    cfg.height = cfg.width = 20;
    Model *m, *ref;
    if (model_create(&m, &cfg, ops) || model_create(&ref, &cfg, ops)) {
        CHECK(0, "model_create: %s", e2e_error());
        return;
    }
    model_init(m, 3);
    model_init(ref, 3);
    static float ga[200000], gb[200000];
    float la = 0, lb = 0, la2 = 0, lb2 = 0;
    CHECK(model_train_pass(m, NULL) == -1 && strstr(e2e_error(), "none staged"),
          "[%s] a pass with nothing staged: '%s'", label, e2e_error());
    CHECK(model_train_pass(m, b1) == 0 && model_stage_batch(m, b2) == 0, "[%s] pass, stage: %s", label, e2e_error());
    model_loss_value(m, &la);
    CHECK(model_train_pass(ref, b1) == 0, "[%s] reference pass: %s", label, e2e_error());
    model_loss_value(ref, &lb);
    CHECK(la == lb, "[%s] staging the next batch changed the pass under way: loss %g, alone %g", label, la, lb);
    CHECK(model_train_pass(m, NULL) == 0, "[%s] pass on the staged batch: %s", label, e2e_error());
    model_loss_value(m, &la2);
    model_get_grads(m, ga);
    CHECK(model_train_pass(ref, b2) == 0, "[%s] reference pass 2: %s", label, e2e_error());
    model_loss_value(ref, &lb2);
    model_get_grads(ref, gb);
    CHECK(la2 == lb2 && memcmp(ga, gb, sizeof ga) == 0, "[%s] the staged batch's pass differs (loss %g, %g)", label,
          la2, lb2);
    CHECK(model_train_pass(m, NULL) == -1, "[%s] a staged batch trains once", label);
    float pred[4];
    CHECK(model_stage_batch(m, b1) == 0 && model_predict(m, b2, pred) == 0 && model_train_pass(m, NULL) == -1,
          "[%s] model_predict drops the staged batch", label);
    model_free(m);
    model_free(ref);
}

/* the phases a pass reported, in order */
typedef struct {
    int seen[8], n;
} Phases;

static void note_phase(void *ctx, int phase) {
    Phases *p = ctx;
    if (p->n < 8) p->seen[p->n++] = phase;
}

/* Gradient accumulation: batch b (2n samples) in one pass, and as two micro-batches of n
 * accumulated; also three micro-batches (n, n, n of a 3n batch) and the argument checks. */
static void test_accumulate(NetOps *ops, const char *label, const Batch *b) {
    ModelConfig cfg = model_default_config(b->n);
    cfg.height = cfg.width = 20;
    Model *m;
    if (model_create(&m, &cfg, ops)) {
        CHECK(0, "model_create: %s", e2e_error());
        return;
    }
    model_init(m, 5);
    size_t na = model_arena_size(m), pixels = (size_t)8 * 20 * 20;
    float *whole = calloc(na, 4), *summed = calloc(na, 4), *last = calloc(na, 4);
    Phases ph = {.n = 0};
    model_set_phase_hook(m, note_phase, &ph);
    CHECK(model_train_pass(m, b) == 0 && model_accumulate_grads(m, 0, 1) == 0, "[%s] one pass", label);
    CHECK(ph.n == 2 && ph.seen[0] == MODEL_PHASE_FORWARD && ph.seen[1] == MODEL_PHASE_BACKWARD,
          "[%s] the hook saw %d phases (forward, backward expected)", label, ph.n);
    model_set_phase_hook(m, NULL, NULL);
    model_get_grads(m, whole);
    int h = b->n / 2;
    Batch half[2] = {*b, *b};
    for (int k = 0; k < 2; k++) {
        half[k].n = h;
        half[k].x = b->x + (size_t)k * h * pixels;
        half[k].scalars = b->scalars + (size_t)k * h * 2;
        half[k].target = b->target + k * h;
        half[k].weight = b->weight + k * h;
        CHECK(model_train_pass(m, &half[k]) == 0 && model_accumulate_grads(m, k, 2) == 0, "[%s] micro-batch %d: %s",
              label, k, e2e_error());
    }
    model_get_grads(m, summed);
    model_get_grads(m, last);
    double num = 0, den = 0;
    for (size_t i = 0; i < na; i++) {
        num += ((double)summed[i] - whole[i]) * ((double)summed[i] - whole[i]);
        den += (double)whole[i] * whole[i];
    }
    CHECK(den > 0 && sqrt(num / den) < 1e-6, "[%s] two accumulated half-batches vs the whole batch: rel err %g", label,
          sqrt(num / den));
    CHECK(model_train_pass(m, &half[1]) == 0, "[%s] pass", label);
    model_get_grads(m, last);
    CHECK(memcmp(last, summed, na * 4) != 0, "[%s] the last micro-batch alone differs from the mean", label);
    CHECK(model_accumulate_grads(m, 2, 2) == -1 && model_accumulate_grads(m, 0, 0) == -1 &&
              model_accumulate_grads(NULL, 0, 2) == -1, "[%s] a micro-batch outside 0..n-1 is refused", label);
    free(whole), free(summed), free(last);
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
    Batch b = {.n = N, .x = x, .scalars = sc, .target = t, .weight = w};

    NetOps *cpu = net_cpu_create(2);
    OpsProfile prof = {0};
    NetOps *staged = ops_profile_wrap(cpu, &prof);
    staged->caps &= ~OPS_HOST_MEMORY;
    static float g1[200000], g2[200000];
    float p1[N], p2[N], l1, l2;
    train(cpu, &b, g1, p1, &l1);
    train(staged, &b, g2, p2, &l2);
    CHECK(prof.calls[PROF_OTHER] > 0, "the staged path uploaded nothing");
    CHECK(l1 == l2, "loss %g in place, %g staged", l1, l2);
    CHECK(memcmp(p1, p2, sizeof p1) == 0, "predictions differ between in place and staged");
    CHECK(memcmp(g1, g2, sizeof g1) == 0, "gradients differ between in place and staged");

    static float x2[NX];
    float sc2[2 * N], t2[N];
    for (int i = 0; i < NX; i++) x2[i] = rng_uniform(&r);
    for (int i = 0; i < 2 * N; i++) sc2[i] = rng_uniform(&r);
    for (int i = 0; i < N; i++) t2[i] = rng_uniform(&r);
    Batch b2 = {.n = N, .x = x2, .scalars = sc2, .target = t2, .weight = w};
    test_ahead(cpu, "in place", &b, &b2);
    test_ahead(staged, "staged", &b, &b2);
    enum { N4 = 4 };
    static float x4[N4 * 8 * 20 * 20];
    float sc4[2 * N4], t4[N4], w4[N4] = {1, 2, 0.5f, 1.5f};
    for (size_t i = 0; i < sizeof x4 / sizeof *x4; i++) x4[i] = rng_uniform(&r);
    for (int i = 0; i < 2 * N4; i++) sc4[i] = rng_uniform(&r);
    for (int i = 0; i < N4; i++) t4[i] = rng_uniform(&r);
    Batch b4 = {.n = N4, .x = x4, .scalars = sc4, .target = t4, .weight = w4};
    test_accumulate(cpu, "in place", &b4);
    test_accumulate(staged, "staged", &b4);
    staged->destroy(staged);
    cpu->destroy(cpu);
    return check_main_result("test_model_staging");
}
