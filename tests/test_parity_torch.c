/* Parity with PyTorch (fixture from tests/reference/make_fixture.py): the same weights
 * and batch give the same prediction, loss, every gradient, and parameters after 3
 * Adam steps, to a relative error of 1e-4 (max |ours - torch| / max |torch|, per
 * tensor). Run on each convolution engine (direct, gemm, onednn: E2E_CPU_CONV) and on
 * the engines auto chooses.
 *
 * The classifier (tests/reference/make_bce_fixture.py): the loss op against
 * torch.nn.BCEWithLogitsLoss in float64 to 1e-6 (loss, and every d loss / d logit
 * element by element), for logits from 0 to +-1e4; the model with one logit, 0/1
 * labels and per-sample weights, on every engine (auto too): its loss to 1e-6 against
 * torch float32 and float64; every gradient to 1e-5 against torch float32 (max-norm per
 * tensor: two float32 computations, each about 1e-6 from the exact answer, in other
 * orders: up to 2.2e-6 apart); against the exact answer, torch's float64 step from the
 * same weights and inputs, the whole gradient to 1e-6 and each tensor to BCE_TENSOR_TOL
 * (normwise, ||ours - exact|| / ||exact||; measured per tensor at most 9.5e-7 with AVX-512
 * kernels, 1.82e-6 with oneDNN's AVX2 ones, torch float32 9.4e-7: the error of the last
 * convolutions' weight gradients is the forward activations' float32 error, 14
 * convolutions deep, which their gradients inherit); 3 Adam steps.
 *
 * bf16 (net/README.md, "bf16 on the CPU"), on each engine: the bf16 step against the same fp32
 * fixture, to the tolerances below (measured; the fixture also holds PyTorch's own
 * bf16 autocast step, and its distance from fp32 is printed beside ours and bounds it:
 * our bf16 must be at least as close to fp32 as PyTorch's bf16 is, with a margin).
 * Skipped (reported) on a CPU without bf16 instructions. */
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "bundle.h"
#include "check.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"

#define TOL 1e-4
/* the classifier's gradient tensors against torch float64, normwise: measured at most
 * 9.5e-7 with AVX-512, 1.82e-6 with oneDNN's AVX2 kernels (Zen 5; tests/README.md) */
#define BCE_TENSOR_TOL 4e-6

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

/* every tensor within tol; returns the worst relative error */
static double compare_arena(const Model *m, const float *ours, const float *ref, const char *what,
                            const char *path, double tol) {
    double worst = 0;
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *p = model_tensor(m, i);
        double e = rel_err(ours + p->offset, ref + p->offset, p->numel, 1e-12);
        CHECK(e <= tol, "[%s] %s of %s: rel err %g", path, what, p->name, e);
        worst = e > worst ? e : worst;
    }
    return worst;
}

/* the default model for the fixture's input x (n, C, H, W) */
static ModelConfig fixture_config(const BundleTensor *x) {
    ModelConfig cfg = model_default_config(x->dims[0]);
    cfg.in_channels = x->dims[1];
    cfg.height = x->dims[2];
    cfg.width = x->dims[3];
    return cfg;
}

static void run(const Bundle *b, const char *path) {
    const BundleTensor *x = need(b, "x"), *sc = need(b, "scalars"), *tg = need(b, "target");
    int n = x->dims[0];
    ModelConfig cfg = fixture_config(x);
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
            compare_arena(m, arena, ref, "gradient", path, TOL);
        }
        adam_step(&adam, 1e-3f, model_params(m), model_grads(m));
    }
    model_get_params(m, arena);
    gather(m, b, "adam3/", ref);
    compare_arena(m, arena, ref, "parameters after 3 Adam steps", path, TOL);
    adam_free(&adam);
    model_free(m);
    ops->destroy(ops);
    free(arena);
    free(ref);
}

/* ---- bf16 ---- */

/* Tolerances of the bf16 steps against the fp32 fixture, from measurements
 * (net/README.md, "bf16 on the CPU"; measured on every engine: prediction 4.9e-3, gradients 0.056
 * over the arena and 0.11 at worst per tensor, losses 1.9e-2, parameters after 3 Adam
 * steps 0.10): the prediction and the losses (relative), the gradients norm-wise
 * (||ours - fp32||_2 / ||fp32||_2) over the whole arena and per tensor, the parameters
 * after 3 Adam steps max-norm per tensor (Adam's first steps move every parameter by
 * about lr whatever its gradient, so a tiny gradient of the other sign moves it the
 * other way: that is most of this error). Besides, none may be further from fp32 than
 * BF16_VS_TORCH times PyTorch's own bf16 autocast (prediction 7.9e-3, gradients 0.44
 * and 0.68, losses 0.38, parameters 0.11). */
#define BF16_PRED_TOL 2e-2
#define BF16_GRAD_TOL 0.15
#define BF16_TENSOR_TOL 0.3
#define BF16_LOSS_TOL 5e-2
#define BF16_ADAM_TOL 0.2
#define BF16_VS_TORCH 1.5

static double l2_rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return isnan(num) ? INFINITY : sqrt(num / den);
}

/* One measure of ours and of PyTorch's bf16 against fp32: within tol, and within
 * BF16_VS_TORCH times PyTorch's. */
static void check_bf16(const char *path, const char *what, double ours, double torch, double tol) {
    printf("bf16 %-6s %-40s %.3g from fp32 (PyTorch bf16 autocast: %.3g)\n", path, what, ours, torch);
    CHECK(ours <= tol, "[bf16 %s] %s: %.3g from fp32, tolerance %g", path, what, ours, tol);
    CHECK(ours <= BF16_VS_TORCH * torch, "[bf16 %s] %s: %.3g from fp32, PyTorch's bf16 %.3g", path, what, ours, torch);
}

/* the arena's tensors of ours and of PyTorch's bf16 against fp32 (prefix in the fixture)
 * by err: the worst tensor of each */
static void compare_tensors(const Model *m, const Bundle *b, const float *ours, const char *fp32_prefix,
                            const char *torch_prefix, double (*err)(const float *, const float *, size_t),
                            double *worst, double *worst_torch, const char **worst_name) {
    size_t na = model_arena_size(m);
    float *fp32 = malloc(sizeof(float) * na), *torch = malloc(sizeof(float) * na);
    gather(m, b, fp32_prefix, fp32);
    gather(m, b, torch_prefix, torch);
    *worst = *worst_torch = 0;
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *p = model_tensor(m, i);
        double e = err(ours + p->offset, fp32 + p->offset, p->numel);
        double et = err(torch + p->offset, fp32 + p->offset, p->numel);
        if (e > *worst) *worst = e, *worst_name = p->name;
        if (et > *worst_torch) *worst_torch = et;
    }
    if (err == l2_rel) {  /* the whole arena too */
        worst[1] = l2_rel(ours, fp32, na);
        worst_torch[1] = l2_rel(torch, fp32, na);
    }
    free(fp32), free(torch);
}

static double max_rel(const float *a, const float *b, size_t n) { return rel_err(a, b, n, 1e-12); }

static void first_step_bf16(Model *m, const Bundle *b, int n, float *arena, const char *path) {
    double e = rel_err(model_predictions(m), need(b, "pred")->data, (size_t)n, 1e-12);
    double et = rel_err(need(b, "bf16/pred")->data, need(b, "pred")->data, (size_t)n, 1e-12);
    check_bf16(path, "prediction", e, et, BF16_PRED_TOL);
    model_get_grads(m, arena);
    double worst[2], torch[2];
    const char *name = "";
    compare_tensors(m, b, arena, "grad/", "bf16/grad/", l2_rel, worst, torch, &name);
    check_bf16(path, "gradients, norm-wise, whole arena", worst[1], torch[1], BF16_GRAD_TOL);
    char what[80];
    snprintf(what, sizeof what, "gradients, worst tensor (%s)", name);
    check_bf16(path, what, worst[0], torch[0], BF16_TENSOR_TOL);
}

static void run_bf16(const Bundle *b, const char *path) {
    const BundleTensor *x = need(b, "x"), *sc = need(b, "scalars"), *tg = need(b, "target");
    int n = x->dims[0];
    ModelConfig cfg = fixture_config(x);
    setenv("E2E_CPU_CONV", path, 1);
    NetOps *ops = net_cpu_create_precision(2, "bf16");
    unsetenv("E2E_CPU_CONV");
    Model *m = NULL;
    if (!ops || model_create(&m, &cfg, ops)) {
        CHECK(0, "[bf16 %s] backend or model: %s", path, e2e_error());
        return;
    }
    size_t na = model_arena_size(m);
    float *arena = malloc(sizeof(float) * na);
    gather(m, b, "param/", arena);
    model_set_params(m, arena);
    Adam adam;
    adam_create(&adam, ops, na, adam_default_hyper());
    const BundleTensor *losses = need(b, "losses"), *torch_losses = need(b, "bf16/losses");
    double worst_loss = 0, worst_torch = 0;
    for (int step = 0; step < (int)losses->numel; step++) {
        model_forward(m, n, x->data, sc->data);
        model_loss(m, tg->data, NULL);
        float loss;
        model_loss_value(m, &loss);
        worst_loss = fmax(worst_loss, fabs(loss - losses->data[step]) / fabs(losses->data[step]));
        worst_torch = fmax(worst_torch, fabs(torch_losses->data[step] - losses->data[step]) / fabs(losses->data[step]));
        model_backward(m);
        if (step == 0) first_step_bf16(m, b, n, arena, path);
        adam_step(&adam, 1e-3f, model_params(m), model_grads(m));
    }
    check_bf16(path, "losses of 3 Adam steps, worst", worst_loss, worst_torch, BF16_LOSS_TOL);
    model_get_params(m, arena);
    double worst[2], torch[2];
    const char *name = "";
    compare_tensors(m, b, arena, "adam3/", "bf16/adam3/", max_rel, worst, torch, &name);
    char what[80];
    snprintf(what, sizeof what, "parameters after 3 steps (%s)", name);
    check_bf16(path, what, worst[0], torch[0], BF16_ADAM_TOL);
    adam_free(&adam);
    model_free(m);
    ops->destroy(ops);
    free(arena);
}

/* a float64 value of the fixture: stored as float32 (hi, lo) pairs */
static double f64(const Bundle *b, const char *name, size_t i) {
    char key[96];
    snprintf(key, sizeof key, "%s_hi", name);
    double hi = need(b, key)->data[i];
    snprintf(key, sizeof key, "%s_lo", name);
    return hi + need(b, key)->data[i];
}

/* the BCE op alone against torch in float64: 1e-6 relative, the loss and each gradient */
static void bce_op(const Bundle *b) {
    const BundleTensor *x = need(b, "op/logit"), *t = need(b, "op/target"), *w = need(b, "op/weight");
    int n = (int)x->numel;
    NetOps *ops = net_cpu_create(1);
    float loss, *d = malloc(sizeof(float) * n);
    ops->bce_logits_loss(ops->ctx, n, x->data, t->data, w->data, &loss, d);
    double want = f64(b, "op/loss_f64", 0), worst = fabs(loss - want) / fabs(want);
    CHECK(worst <= 1e-6, "bce loss %.9g, torch (float64) %.9g: rel %g", loss, want, worst);
    for (int i = 0; i < n; i++) {
        double g = f64(b, "op/grad_f64", (size_t)i), e = fabs(d[i] - g) / fmax(fabs(g), 1e-30);
        CHECK(e <= 1e-6, "bce gradient of logit %g (target %g): %.9g, torch %.9g: rel %g", x->data[i], t->data[i],
              d[i], g, e);
        worst = fmax(worst, e);
    }
    printf("bce op vs torch float64: worst relative error %.3g (loss and %d gradients)\n", worst, n);
    free(d);
    ops->destroy(ops);
}

/* The fixture's float64 tensor <name>_hi + <name>_lo into out[numel] */
static void f64_tensor(const Bundle *b, const char *name, size_t numel, double *out) {
    char key[160];
    snprintf(key, sizeof key, "%s_hi", name);
    const BundleTensor *hi = need(b, key);
    snprintf(key, sizeof key, "%s_lo", name);
    const BundleTensor *lo = need(b, key);
    CHECK(hi->numel == numel && lo->numel == numel, "%s: %zu values, expected %zu", name, hi->numel, numel);
    for (size_t i = 0; i < numel && i < hi->numel; i++) out[i] = (double)hi->data[i] + lo->data[i];
}

/* ||a - ref||_2 / ||ref||_2: the normwise relative error (Higham, "Accuracy and Stability
 * of Numerical Algorithms", 2nd ed., section 1.2) */
static double norm_rel(const float *a, const double *ref, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]), den += ref[i] * ref[i];
    return isnan(num) ? INFINITY : den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The first step against PyTorch's float64 step (the exact answer for these float32
 * weights and inputs): the loss, the logits, and every gradient tensor by its normwise
 * relative error, PyTorch's own float32 gradients measured the same way beside ours.
 * Asserted: the whole gradient (every tensor as one vector) within 1e-6; each tensor
 * within BCE_TENSOR_TOL (tests/README.md, "Parity": why not 1e-6 each). */
static void exact_step(const Model *m, const Bundle *b, const float *arena, float loss, const char *path) {
    int n = model_config(m)->max_batch;
    double exact_loss = f64(b, "model/loss_f64", 0), logit[64], worst = 0, torch_worst = 0, num = 0, den = 0, tnum = 0;
    f64_tensor(b, "model/logit_f64", (size_t)n, logit);
    double le = fabs(loss - exact_loss) / fabs(exact_loss), ge = norm_rel(model_predictions(m), logit, (size_t)n);
    CHECK(le <= 1e-6, "[bce %s] loss %.9g, torch float64 %.9g: rel %g", path, loss, exact_loss, le);
    const char *worst_name = "";
    int over = 0;
    char key[160];
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *p = model_tensor(m, i);
        double *ref = malloc(sizeof(double) * p->numel);
        snprintf(key, sizeof key, "model/grad_f64/%s", p->name);
        f64_tensor(b, key, p->numel, ref);
        snprintf(key, sizeof key, "model/grad/%s", p->name);
        const float *ours = arena + p->offset, *torch32 = need(b, key)->data;
        double e = norm_rel(ours, ref, p->numel), et = norm_rel(torch32, ref, p->numel);
        CHECK(e <= BCE_TENSOR_TOL, "[bce %s] gradient of %s: ||ours - exact|| / ||exact|| = %.3g (torch float32 %.3g)",
              path, p->name, e, et);
        over += e > 1e-6;
        if (e > worst) worst = e, worst_name = p->name;
        torch_worst = fmax(torch_worst, et);
        for (size_t k = 0; k < p->numel; k++)
            num += (ours[k] - ref[k]) * (ours[k] - ref[k]), tnum += (torch32[k] - ref[k]) * (torch32[k] - ref[k]),
                den += ref[k] * ref[k];
        free(ref);
    }
    CHECK(sqrt(num / den) <= 1e-6, "[bce %s] whole gradient: ||ours - exact|| / ||exact|| = %.3g", path, sqrt(num / den));
    printf("[bce %s] vs torch float64 (||x - exact|| / ||exact||): loss %.3g, logits %.3g; whole gradient: ours %.3g, "
           "torch float32 %.3g; worst tensor: ours %.3g (%s), torch float32 %.3g; tensors of ours over 1e-6: %d of %d\n",
           path, le, ge, sqrt(num / den), sqrt(tnum / den), worst, worst_name, torch_worst, over, model_num_tensors(m));
}

/* the classifier: one logit, BCE with weights, 3 Adam steps, on the engine `path` */
static void bce_model(const Bundle *b, const char *path) {
    const BundleTensor *x = need(b, "model/x"), *sc = need(b, "model/scalars");
    const BundleTensor *tg = need(b, "model/target"), *wt = need(b, "model/weight"), *losses = need(b, "model/losses");
    int n = x->dims[0];
    ModelConfig cfg = model_default_config(n);
    cfg.in_channels = x->dims[1], cfg.height = x->dims[2], cfg.width = x->dims[3], cfg.loss = MODEL_LOSS_BCE;
    setenv("E2E_CPU_CONV", path, 1);
    NetOps *ops = net_cpu_create(2);
    unsetenv("E2E_CPU_CONV");
    Model *m = NULL;
    CHECK(ops && model_create(&m, &cfg, ops) == 0, "[bce %s] model_create: %s", path, e2e_error());
    if (!m) return;
    size_t na = model_arena_size(m);
    float *arena = malloc(sizeof(float) * na), *ref = malloc(sizeof(float) * na);
    gather(m, b, "model/param/", arena);
    model_set_params(m, arena);
    Adam adam;
    adam_create(&adam, ops, na, adam_default_hyper());
    double worst_loss = 0;
    for (int step = 0; step < (int)losses->numel; step++) {
        float loss;
        model_forward(m, n, x->data, sc->data);
        model_loss(m, tg->data, wt->data);
        model_loss_value(m, &loss);
        double le = fabs(loss - losses->data[step]) / fabs(losses->data[step]);
        worst_loss = fmax(worst_loss, le);
        CHECK(le <= 1e-6, "[bce %s] loss of step %d: %.9g vs torch %.9g (rel %g)", path, step + 1, loss,
              losses->data[step], le);
        model_backward(m);
        if (step == 0) {
            double e = rel_err(model_predictions(m), need(b, "model/logit")->data, (size_t)n, 1e-12);
            CHECK(e <= TOL, "[bce %s] logits: rel err %g", path, e);
            model_get_grads(m, arena);
            gather(m, b, "model/grad/", ref);
            printf("[bce %s] logits vs torch: rel err %.3g; gradients vs torch float32: worst tensor rel err %.3g\n",
                   path, e, compare_arena(m, arena, ref, "bce gradient", path, 1e-5));
            exact_step(m, b, arena, loss, path);
        }
        adam_step(&adam, 1e-3f, model_params(m), model_grads(m));
    }
    printf("[bce %s] model loss vs torch: worst relative error %.3g over %d steps\n", path, worst_loss,
           (int)losses->numel);
    model_get_params(m, arena);
    gather(m, b, "model/adam3/", ref);
    /* 1e-3: at 32 x 32 about half of the deeper convolutions' gradients are exactly 0 in
       torch (the global max-pool passes one position a map); where ours is a rounding
       error away from 0 instead, Adam's first steps move the weight by a good part of lr */
    compare_arena(m, arena, ref, "bce parameters after 3 Adam steps", path, 1e-3);
    adam_free(&adam);
    model_free(m);
    ops->destroy(ops);
    free(arena);
    free(ref);
}

static void bce(void) {
    Bundle b;
    if (bundle_read(E2E_FIXTURE_DIR "/resnet15_bce_fixture.bin", &b)) {
        CHECK(0, "the classification fixture is missing");
        return;
    }
    bce_op(&b);
    bce_model(&b, "direct");
    bce_model(&b, "gemm");
#ifdef E2E_HAVE_ONEDNN
    bce_model(&b, "onednn");
#endif
    bce_model(&b, "auto");
    bundle_free(&b);
}

int main(void) {
    bce();
    Bundle b;
    if (bundle_read(E2E_FIXTURE_DIR "/resnet15_fixture.bin", &b)) return 1;
    run(&b, "direct");
    run(&b, "gemm");
#ifdef E2E_HAVE_ONEDNN
    run(&b, "onednn");
#endif
    run(&b, "auto");
    if (net_cpu_has_bf16()) {
        run_bf16(&b, "direct");
        run_bf16(&b, "gemm");
        run_bf16(&b, "onednn");
        run_bf16(&b, "auto");
    } else {
        printf("bf16: not run (this CPU has no bf16 instructions)\n");
    }
    bundle_free(&b);
    return check_main_result("test_parity_torch");
}
