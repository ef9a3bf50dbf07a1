/* ResNet-15 of the E2E group (net/README.md; the network of ML4SCI/E2E's models.py):
 * the API the training loop calls.
 *
 * All parameters live in one flat buffer (the arena) and all gradients in another of
 * the same length, both in the backend's memory, so one all-reduce covers every
 * gradient and one Adam update covers every parameter. Tensors inside the arena keep
 * PyTorch's names, shapes (OIHW) and state_dict order; each starts on a 64-float
 * boundary, and the padding between them is zero in both buffers.
 *
 * A step:  model_forward -> model_loss -> model_backward -> (all-reduce grads) ->
 *          adam_step (net/adam.h).
 * Every function returns 0 on success or -1 with a message in e2e_error(). */
#ifndef E2E_NET_MODEL_H
#define E2E_NET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "ops.h"

/* What the model's one output is trained as (model_loss). */
typedef enum {
    MODEL_LOSS_L1 = 0,   /* a scaled target (the mass / 500 GeV): L1, the E2E regression */
    MODEL_LOSS_BCE = 1,  /* a logit of a binary class (0/1): binary cross-entropy on logits */
} ModelLoss;

typedef struct {
    int in_channels;      /* C: 3 in the E2E code, 8 in the "Top Gun" open data */
    int height, width;    /* 125 x 125 */
    int n_scalars;        /* per-jet scalars joined to the pooled features: the dataset's, 0 or
                             more (2 by default: iphi, ieta) */
    int blocks;           /* residual blocks in layer1 and in layer3 (3) */
    int fmaps0, fmaps1;   /* feature maps of conv0/layer1 and of layer2/layer3 (16, 32) */
    int max_batch;        /* activation buffers hold this many samples */
    int loss;             /* ModelLoss (MODEL_LOSS_L1); not part of the shape: a checkpoint's
                             parameters load whatever it is */
} ModelConfig;

#define MODEL_MAX_TENSORS 64
#define MODEL_MAX_SIZE 4096   /* the most channels, pixels a side, feature maps or scalars */
#define MODEL_ARENA_ALIGN 64  /* floats */

typedef struct {
    char name[40];        /* PyTorch's state_dict key, e.g. "layer2.0.shortcut.weight" */
    int ndim;
    int shape[4];
    size_t offset;        /* in floats, from the arena's start */
    size_t numel;
    int fan_in;           /* for PyTorch's default initialisation */
} ParamTensor;

typedef struct Model Model;

/* The E2E configuration: 8 channels, 125 x 125, 2 scalars, 3 blocks, 16/32 maps. */
ModelConfig model_default_config(int max_batch);
/* Checks that every size is positive and at most MODEL_MAX_SIZE, and that the image
 * survives conv0, the max-pool and the stride-2 block. */
int model_check_config(const ModelConfig *cfg);
/* Parameter count of a configuration (without arena padding): 90163 by default. */
size_t model_count_params(const ModelConfig *cfg);
/* Bytes of backend memory a model of this configuration allocates on ops: its
 * parameters and gradients, the activations and their gradients at cfg->max_batch, and
 * where ops is not in host memory (or NULL) the input buffers batches are copied into (a
 * host backend reads the reader's batches where they are). A backend's own workspaces,
 * an OPS_ASYNC_UPLOAD backend's staging copy and the optimizer's moments come on top.
 * 0 for a configuration model_check_config refuses. */
size_t model_memory_bytes(const ModelConfig *cfg, const NetOps *ops);

/* Builds the graph on a backend (the model does not own ops). Parameters start at 0. */
int model_create(Model **out, const ModelConfig *cfg, NetOps *ops);
void model_free(Model *m);

const ModelConfig *model_config(const Model *m);
NetOps *model_ops(const Model *m);
size_t model_arena_size(const Model *m);      /* floats in each flat buffer */
int model_num_tensors(const Model *m);
const ParamTensor *model_tensor(const Model *m, int i);
const ParamTensor *model_find_tensor(const Model *m, const char *name);
float *model_params(Model *m);                /* flat parameters, backend memory */
float *model_grads(Model *m);                 /* flat gradients, backend memory */

/* PyTorch's default initialisation (kaiming_uniform(a=sqrt(5)) for weights, which is
 * U(-1/sqrt(fan_in), +1/sqrt(fan_in)), and the same bound for biases), drawn from the
 * project's RNG in state_dict order. */
int model_init(Model *m, uint64_t seed);
/* Copy the whole arena to or from host memory (model_arena_size floats). */
int model_get_params(Model *m, float *host);
int model_set_params(Model *m, const float *host);
int model_get_grads(Model *m, float *host);

/* Forward pass of n samples: x is (n, C, H, W) float32 NCHW and scalars is (n, S),
 * both in backend memory, and both must stay untouched until model_backward returns.
 * scalars may be NULL only when n_scalars is 0. */
int model_forward(Model *m, int n, const float *x, const float *scalars);
/* Predictions of the last forward pass: n floats in backend memory. */
const float *model_predictions(const Model *m);
/* The loss of the last forward pass against target (n floats; optional per-sample
 * weight, NULL for none), both in backend memory: with MODEL_LOSS_L1 mean_i w_i
 * |pred_i - target_i|; with MODEL_LOSS_BCE mean_i w_i BCE(sigmoid(pred_i), target_i),
 * target 0 or 1, the prediction a logit (PyTorch's BCEWithLogitsLoss). The loss stays
 * in backend memory until model_loss_value is asked for it. */
int model_loss(Model *m, const float *target, const float *weight);
/* The batch type (Batch, SparseImages, InputPrep) is net/base/batch.h's: the reader
 * yields it, the model takes it as it is. */

/* The training loop's calls. They take host memory and move it to the backend as the
 * backend sees fit (the CPU backend reads it in place; a GPU backend copies it, and
 * may replay a captured graph). model_train_pass = forward, loss and backward: the
 * gradients are then in model_grads, the loss in model_loss_value. The batch's host
 * memory may be reused as soon as the call returns. On a GPU backend the copy of a
 * batch overlaps the ops of the batch before it; the first pass of each batch size
 * runs directly, the second is recorded as a CUDA graph, later ones replay it. */
int model_train_pass(Model *m, const Batch *b);
/* Stages the next training batch now, so that on a GPU its copy overlaps the pass under
 * way (the trainer calls it between model_train_pass and the loss read-back); the next
 * model_train_pass(m, NULL) trains on it. On a GPU b's memory may be reused when the
 * call returns; on a backend that reads host memory in place (the CPU) it is read at
 * that pass: keep it until then. A model_train_pass with a batch or a model_predict in
 * between drops the staged batch (its input buffers are taken). */
int model_stage_batch(Model *m, const Batch *b);
/* Forward only; writes n predictions to host memory. */
int model_predict(Model *m, const Batch *b, float *pred);

/* The training pass's result for the step's checks, in one call: the last loss read
 * back to the host, and *nonfinite = 1 when any gradient is NaN or Inf (else 0). A
 * synchronisation point on a GPU. */
int model_pass_result(Model *m, float *loss, int *nonfinite);
/* Reads the last loss back to the host (a synchronisation point on a GPU). */
int model_loss_value(Model *m, float *loss);
/* Gradients of the last loss into model_grads (overwritten, not accumulated). */
int model_backward(Model *m);
/* *nonfinite = 1 when any gradient is NaN or Inf, else 0 (a synchronisation point on a
 * GPU). */
int model_grads_nonfinite(Model *m, int *nonfinite);

/* Gradient accumulation over the n micro-batches of one optimizer step (n >= 1): after
 * the pass of micro-batch k (0 <= k < n), model_accumulate_grads(m, k, n) keeps the sum
 * of their gradients in a buffer of its own (made on first use), and after the last (k =
 * n - 1) model_grads holds their mean, (g_0 + ... + g_{n-1}) / n: with equal micro-
 * batches, the gradient of their union as one batch, up to float rounding. n = 1 does
 * nothing (model_grads is the step's gradient as it is). */
int model_accumulate_grads(Model *m, int k, int n);

/* What a training pass is doing, for a timeline or a profiler: model_train_pass calls
 * hook(ctx, MODEL_PHASE_FORWARD) before its forward pass and loss and hook(ctx,
 * MODEL_PHASE_BACKWARD) before its backward; a pass replayed from a CUDA graph runs no
 * host code and calls neither. hook NULL: none (the default). */
enum { MODEL_PHASE_FORWARD = 0, MODEL_PHASE_BACKWARD = 1 };
typedef void (*ModelPhaseHook)(void *ctx, int phase);
void model_set_phase_hook(Model *m, ModelPhaseHook hook, void *ctx);

#endif
