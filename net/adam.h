/* Adam with PyTorch's semantics (torch.optim.Adam, foreach=False): optional L2 weight
 * decay added to the gradient, bias-corrected first and second moments, eps added
 * after the square root. The moments live in the backend's memory beside the arena. */
#ifndef E2E_NET_ADAM_H
#define E2E_NET_ADAM_H

#include <stddef.h>

#include "ops.h"

/* Adam hyper-parameters with PyTorch's semantics (torch.optim.Adam). */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} AdamHyper;

typedef struct {
    NetOps *ops;
    size_t n;        /* parameters */
    float *m, *v;    /* first and second moments, backend memory */
    long step;       /* updates done so far */
    AdamHyper hyper;
} Adam;

/* The factors of update number `step` (1-based) that backends' adam_update takes:
 * computed in double as PyTorch does, rounded to float. */
AdamFactors adam_factors(const AdamHyper *h, long step);
/* PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay. */
AdamHyper adam_default_hyper(void);
int adam_create(Adam *a, NetOps *ops, size_t n, AdamHyper hyper);
void adam_free(Adam *a);
/* One update: step += 1, then params -= lr * mhat / (sqrt(vhat) + eps). The learning
 * rate in a->hyper.lr may change between steps (schedulers do). */
int adam_step(Adam *a, float *params, const float *grads);

#endif
