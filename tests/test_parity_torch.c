/* Parity with PyTorch (fixture from tests/reference/make_fixture.py): the same weights
 * and batch give the same prediction, loss, every gradient, and parameters after 3
 * Adam steps, to a relative error of 1e-4 (max |ours - torch| / max |torch|, per
 * tensor). Run on each convolution engine (direct, gemm, onednn: E2E_CPU_CONV) and on
 * the engines auto chooses. */
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "bundle.h"
#include "check.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"

#define TOL 1e-4

static const BundleTensor *need(const Bundle *b, const char *name) {
    const BundleTensor *t = bundle_find(b, name);
    if (!t) {
        fprintf(stderr, "fixture has no tensor %s\n", name);
        exit(1);
    }
    return t;
}

/* Gathers the tensors "<prefix><name>" into an arena laid out like the model's. */
static void gather(const Model *m, const Bundle *b, const char *prefix, float *arena) {
    memset(arena, 0, sizeof(float) * model_arena_size(m));
    char key[128];
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *p = model_tensor(m, i);
        snprintf(key, sizeof key, "%s%s", prefix, p->name);
        const BundleTensor *t = need(b, key);
        CHECK(t->numel == p->numel, "%s: %zu values in the fixture, %zu in the model", key,
              t->numel, p->numel);
        if (t->numel == p->numel) memcpy(arena + p->offset, t->data, sizeof(float) * p->numel);
    }
}

static void compare_arena(const Model *m, const float *ours, const float *ref, const char *what,
                          const char *path) {
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *p = model_tensor(m, i);
        double e = rel_err(ours + p->offset, ref + p->offset, p->numel, 1e-12);
        CHECK(e <= TOL, "[%s] %s of %s: rel err %g", path, what, p->name, e);
    }
}

static void run(const Bundle *b, const char *path) {
    const BundleTensor *x = need(b, "x"), *sc = need(b, "scalars"), *tg = need(b, "target");
    int n = x->dims[0];
    ModelConfig cfg = model_default_config(n);
    cfg.in_channels = x->dims[1];
    cfg.height = x->dims[2];
    cfg.width = x->dims[3];
    setenv("E2E_CPU_CONV", path, 1);
    NetOps *ops = net_cpu_create(2);
    unsetenv("E2E_CPU_CONV");
    if (!ops) {
        CHECK(0, "[%s] cpu backend: %s", path, e2e_error());
        return;
    }
    Model *m = NULL;
    CHECK(model_create(&m, &cfg, ops) == 0, "model_create: %s", e2e_error());
    if (!m) return;
    CHECK(model_num_tensors(m) == 2 + 4 * 7 + 2 + 2, "tensor count %d", model_num_tensors(m));
    size_t na = model_arena_size(m);
    float *arena = malloc(sizeof(float) * na), *ref = malloc(sizeof(float) * na);
    gather(m, b, "param/", arena);
    model_set_params(m, arena);

    Adam adam;
    CHECK(adam_create(&adam, ops, na, adam_default_hyper()) == 0, "adam: %s", e2e_error());
    const BundleTensor *losses = need(b, "losses");
    for (int step = 0; step < (int)losses->numel; step++) {
        CHECK(model_forward(m, n, x->data, sc->data) == 0, "forward: %s", e2e_error());
        CHECK(model_loss(m, tg->data, NULL) == 0, "loss: %s", e2e_error());
        float loss;
        model_loss_value(m, &loss);
        double le = fabs(loss - losses->data[step]) / fabs(losses->data[step]);
        CHECK(le <= TOL, "[%s] loss of step %d: %g vs torch %g (rel %g)", path, step + 1, loss,
              losses->data[step], le);
        CHECK(model_backward(m) == 0, "backward: %s", e2e_error());
        if (step == 0) {
            const BundleTensor *pred = need(b, "pred");
            double e = rel_err(model_predictions(m), pred->data, (size_t)n, 1e-12);
            CHECK(e <= TOL, "[%s] prediction: rel err %g", path, e);
            model_get_grads(m, arena);
            gather(m, b, "grad/", ref);
            compare_arena(m, arena, ref, "gradient", path);
        }
        adam_step(&adam, 1e-3f, model_params(m), model_grads(m));
    }
    model_get_params(m, arena);
    gather(m, b, "adam3/", ref);
    compare_arena(m, arena, ref, "parameters after 3 Adam steps", path);
    adam_free(&adam);
    model_free(m);
    ops->destroy(ops);
    free(arena);
    free(ref);
}

int main(void) {
    Bundle b;
    if (bundle_read(E2E_FIXTURE_DIR "/resnet15_fixture.bin", &b)) return 1;
    run(&b, "direct");
    run(&b, "gemm");
#ifdef E2E_HAVE_ONEDNN
    run(&b, "onednn");
#endif
    run(&b, "auto");
    bundle_free(&b);
    return check_main_result("test_parity_torch");
}
