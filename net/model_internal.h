/* The model's inside, shared by the graph (resnet15.c: parameters, activations,
 * forward, backward) and the batch staging (batch_staging.c: host batches into backend
 * memory, the training pass, prediction), which calls down into the graph. Not for use
 * outside net/. */
#ifndef E2E_NET_MODEL_INTERNAL_H
#define E2E_NET_MODEL_INTERNAL_H

#include "model.h"

/* The batch staging's state (net/batch_staging.c): host batches on their way to the
 * backend. */
typedef struct {
    /* a host batch's copy in backend memory, for backends without host memory */
    float *x, *scalars, *target, *weight;
    /* where upload_async lands a batch (raw images, scalars, target, weight) before the
     * ops copy it into the buffers above: the next batch's copy then overlaps this
     * batch's pass */
    char *staging;
    size_t st_scalars, st_target, st_weight;   /* byte offsets in staging */
    /* where a sparse batch's entries land (planes' starts, positions, values) before
     * densify_input writes x: grown to the largest batch seen */
    char *sparse_stage;
    size_t sparse_cap;
    /* model_stage_batch: the batch staged ahead (the buffers above on a GPU, the host
     * pointers on the CPU) that the next model_train_pass(m, NULL) trains on */
    Batch ahead;
    int has_ahead;
} InputStaging;

/* One convolution of the graph: its tensors in the arena and its geometry
 * (ConvShape.n is set per call). */
typedef struct {
    int w, b;        /* indices into Model.tensors */
    ConvShape shape;
} Conv;

/* A residual block: conv1 -> ReLU -> conv2 -> + skip -> ReLU. */
typedef struct {
    Conv conv1, conv2, shortcut;  /* shortcut used when has_shortcut */
    int has_shortcut;
    float *in;                    /* block input (the previous block's out) */
    float *h;                     /* relu(conv1(in)) */
    float *skip;                  /* shortcut(in), when has_shortcut */
    float *out;                   /* relu(conv2(h) + skip) */
} Block;

struct Model {
    ModelConfig cfg;
    NetOps *ops;
    ParamTensor tensors[MODEL_MAX_TENSORS];
    int n_tensors;
    size_t arena;                 /* floats */
    float *params, *grads;

    Conv conv0;
    int fc_w, fc_b;
    int h0, w0;                   /* conv0 output */
    int h1, w1;                   /* after the 2x2 max-pool (layer1) */
    int h2, w2;                   /* after the stride-2 block (layer2, layer3) */
    int n_blocks;
    Block *blocks;

    /* activations (backend memory) */
    float *a0;                    /* relu(conv0(x)), NHWC */
    float *p0;                    /* maxpool(a0) */
    int32_t *pool_idx, *gpool_idx;
    float *feat;                  /* (n, fmaps1 + n_scalars): pooled features, scalars */
    float *pred, *loss, *dpred, *dfeat;
    float *nonfinite;             /* one float: model_grads_nonfinite's answer */
    float *g[3];                  /* gradient scratch, each the largest activation */
    float *grad_sum;              /* the micro-batches' gradient sum (model_accumulate_grads;
                                     made on first use) */
    ModelPhaseHook phase_hook;    /* model_set_phase_hook's, or NULL */
    void *phase_ctx;

    /* the last forward pass */
    int n;
    const float *x;

    InputStaging input;
};

static inline size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* n floats of backend memory (zeroed), or NULL */
float *model_alloc_floats(Model *m, size_t n);
/* The graph's buffers back to the backend, and the model itself: model_free (in
 * batch_staging.c, after the input buffers) and a failed model_create call it. */
void model_free_graph(Model *m);
/* Floats of the image and scalar input buffers at cfg's largest batch (one scalar a
 * jet without scalars), for batch_staging.c and model_memory_bytes. */
void model_input_sizes(const ModelConfig *cfg, size_t *nx, size_t *ns);

#endif
