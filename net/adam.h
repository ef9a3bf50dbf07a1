/* Adam with PyTorch's semantics (torch.optim.Adam, foreach=False): optional L2 weight
 * decay added to the gradient, bias-corrected first and second moments, eps added
 * after the square root. The moments live in the backend's memory beside the arena. */
#ifndef E2E_NET_ADAM_H
#define E2E_NET_ADAM_H

#include <stddef.h>

#include "ops.h"

/* Adam hyper-parameters with PyTorch's semantics (torch.optim.Adam). The learning
 * rate is not one of them: a schedule owns it, and each step is given its rate. */
typedef struct {
    float beta1, beta2, eps, weight_decay;
} AdamHyper;

typedef struct {
    NetOps *ops;
    size_t n;        /* parameters */
    float *m, *v;    /* first and second moments, backend memory */
    long step;       /* updates done so far */
    AdamHyper hyper;
} Adam;

/* The factors of update number `step` (1-based) at rate lr that backends' adam_update
 * takes: computed in double as PyTorch does, rounded to float. */
AdamFactors adam_factors(const AdamHyper *h, float lr, long step);
/* PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay. */
AdamHyper adam_default_hyper(void);
int adam_create(Adam *a, NetOps *ops, size_t n, AdamHyper hyper);
void adam_free(Adam *a);
/* One update at rate lr (finite, >= 0): step += 1, then
 * params -= lr * mhat / (sqrt(vhat) + eps). */
int adam_step(Adam *a, float lr, float *params, const float *grads);
/* The moments to and from host memory (n floats each): checkpoints. */
int adam_get_moments(const Adam *a, float *m, float *v);
int adam_set_moments(Adam *a, const float *m, const float *v);

#endif
