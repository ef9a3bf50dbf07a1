/* Adam (adam.h): checks the hyper-parameters, keeps the moments in backend memory,
 * and computes each step's scalar factors in double on the host; the per-element
 * update is the backend's adam_update, which gets the factors as an argument. */
#include "adam.h"

#include <math.h>
#include <string.h>

#include "error.h"

AdamFactors adam_factors(const AdamHyper *h, float lr, long step) {
    double bc1 = 1.0 - pow((double)h->beta1, (double)step);
    double bc2 = 1.0 - pow((double)h->beta2, (double)step);
    return (AdamFactors){.beta1 = h->beta1, .beta2 = h->beta2, .eps = h->eps,
                         .weight_decay = h->weight_decay,
                         .one_minus_beta1 = (float)(1.0 - (double)h->beta1),
                         .one_minus_beta2 = (float)(1.0 - (double)h->beta2),
                         .step_size = (float)((double)lr / bc1),
                         .bias2_sqrt = (float)sqrt(bc2)};
}

AdamHyper adam_default_hyper(void) {
    return (AdamHyper){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
}

static int check_hyper(const AdamHyper *h) {
    if (!(h->beta1 >= 0.0f && h->beta1 < 1.0f) || !(h->beta2 >= 0.0f && h->beta2 < 1.0f))
        return e2e_fail("adam: betas must be in [0, 1), got %g and %g", h->beta1, h->beta2);
    if (!(h->eps >= 0.0f)) return e2e_fail("adam: invalid eps %g", h->eps);
    if (!(h->weight_decay >= 0.0f))
        return e2e_fail("adam: invalid weight decay %g", h->weight_decay);
    return 0;
}

int adam_create(Adam *a, NetOps *ops, size_t n, AdamHyper hyper) {
    if (!a || !ops) return e2e_fail("adam_create: NULL argument");
    memset(a, 0, sizeof *a);
    if (n == 0) return e2e_fail("adam_create: no parameters to optimise");
    if (check_hyper(&hyper)) return -1;
    a->ops = ops;
    a->n = n;
    a->hyper = hyper;
    a->m = ops->alloc(ops->ctx, n * sizeof(float));
    a->v = ops->alloc(ops->ctx, n * sizeof(float));
    if (!a->m || !a->v) {
        adam_free(a);
        return e2e_fail("adam_create: the %s backend could not allocate %zu moments", ops->name, n);
    }
    return 0;
}

void adam_free(Adam *a) {
    if (!a || !a->ops) return;
    if (a->m) a->ops->release(a->ops->ctx, a->m);
    if (a->v) a->ops->release(a->ops->ctx, a->v);
    a->m = a->v = NULL;
}

int adam_step(Adam *a, float lr, float *params, const float *grads) {
    if (!a || !a->m || !params || !grads) return e2e_fail("adam_step: NULL argument");
    if (!(lr >= 0.0f) || !isfinite(lr)) return e2e_fail("adam: invalid learning rate %g", lr);
    if (check_hyper(&a->hyper)) return -1;
    a->step++;
    AdamFactors k = adam_factors(&a->hyper, lr, a->step);
    a->ops->adam_update(a->ops->ctx, a->n, params, grads, a->m, a->v, &k);
    return 0;
}

int adam_get_moments(const Adam *a, float *m, float *v) {
    if (!a || !a->m || !m || !v) return e2e_fail("adam_get_moments: NULL argument");
    a->ops->download(a->ops->ctx, m, a->m, a->n * sizeof(float));
    a->ops->download(a->ops->ctx, v, a->v, a->n * sizeof(float));
    return 0;
}

int adam_set_moments(Adam *a, const float *m, const float *v) {
    if (!a || !a->m || !m || !v) return e2e_fail("adam_set_moments: NULL argument");
    a->ops->upload(a->ops->ctx, a->m, m, a->n * sizeof(float));
    a->ops->upload(a->ops->ctx, a->v, v, a->n * sizeof(float));
    return 0;
}
