/* The ResNet-15 graph: parameter table, activation buffers, forward and backward
 * through the op interface. Knows nothing of the backend behind NetOps, nor of host
 * batches: batch_staging.c stages them and calls down into the graph, never the reverse. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model_internal.h"
#include "rng.h"

ModelConfig model_default_config(int max_batch) {
    ModelConfig c = {.in_channels = 8, .height = 125, .width = 125, .n_scalars = 2,
                     .blocks = 3, .fmaps0 = 16, .fmaps1 = 32, .max_batch = max_batch};
    return c;
}

/* Output size of a convolution, or <= 0 when the input is too small. */
static int conv_out(int in, int k, int stride, int pad) {
    int span = in + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

int model_check_config(const ModelConfig *c) {
    if (!c) return e2e_fail("model config is NULL");
    if (c->in_channels <= 0 || c->height <= 0 || c->width <= 0)
        return e2e_fail("model input must be positive, got C=%d H=%d W=%d", c->in_channels,
                        c->height, c->width);
    /* upper bounds: no E2E model comes near them, and the sizes below stay in int (a
       checkpoint claiming 1.9e9 channels overflowed them: fuzz_checkpoint) */
    if (c->in_channels > MODEL_MAX_SIZE || c->height > MODEL_MAX_SIZE || c->width > MODEL_MAX_SIZE ||
        c->fmaps0 > MODEL_MAX_SIZE || c->fmaps1 > MODEL_MAX_SIZE || c->n_scalars > MODEL_MAX_SIZE)
        return e2e_fail("model sizes must be at most %d, got C=%d H=%d W=%d, feature maps %d and %d, %d scalars",
                        MODEL_MAX_SIZE, c->in_channels, c->height, c->width, c->fmaps0, c->fmaps1, c->n_scalars);
    if (c->n_scalars < 0) return e2e_fail("n_scalars must be >= 0, got %d", c->n_scalars);
    /* tensors: conv0 2, per block 4 (+2 shortcut), fc 2 */
    if (c->blocks < 0 || c->blocks > (MODEL_MAX_TENSORS - 10) / 8) /* no product to overflow */
        return e2e_fail("blocks per layer must be 0 to %d, got %d", (MODEL_MAX_TENSORS - 10) / 8,
                        c->blocks);
    if (c->fmaps0 <= 0 || c->fmaps1 <= 0)
        return e2e_fail("feature maps must be positive, got %d and %d", c->fmaps0, c->fmaps1);
    if (c->max_batch <= 0) return e2e_fail("max_batch must be positive, got %d", c->max_batch);
    if (c->loss != MODEL_LOSS_L1 && c->loss != MODEL_LOSS_BCE) return e2e_fail("unknown model loss %d", c->loss);
    int h = conv_out(c->height, 7, 1, 1) / 2, w = conv_out(c->width, 7, 1, 1) / 2;
    if (h < 1 || w < 1)
        return e2e_fail("input %dx%d is too small: conv0 (7x7, pad 1) and the 2x2 max-pool "
                        "need at least 6x6", c->height, c->width);
    return 0;
}

/* The parameter table in PyTorch's state_dict order. */
static void add_tensor(Model *m, const char *name, int ndim, const int *shape, int fan_in) {
    ParamTensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->offset = m->arena;
    t->fan_in = fan_in;
    m->arena = round_up(m->arena + t->numel, MODEL_ARENA_ALIGN);
}

static Conv add_conv(Model *m, const char *prefix, int in_c, int out_c, int k, int stride,
                     int pad, int in_h, int in_w) {
    Conv cv;
    char name[40];
    int wshape[4] = {out_c, in_c, k, k};
    snprintf(name, sizeof name, "%s.weight", prefix);
    cv.w = m->n_tensors;
    add_tensor(m, name, 4, wshape, in_c * k * k);
    snprintf(name, sizeof name, "%s.bias", prefix);
    cv.b = m->n_tensors;
    add_tensor(m, name, 1, &out_c, in_c * k * k);
    cv.shape = (ConvShape){.n = 0, .in_c = in_c, .in_h = in_h, .in_w = in_w, .out_c = out_c,
                           .out_h = conv_out(in_h, k, stride, pad),
                           .out_w = conv_out(in_w, k, stride, pad),
                           .k_h = k, .k_w = k, .stride = stride, .pad = pad};
    return cv;
}

static void build_table(Model *m) {
    const ModelConfig *c = &m->cfg;
    m->conv0 = add_conv(m, "conv0", c->in_channels, c->fmaps0, 7, 1, 1, c->height, c->width);
    m->h0 = m->conv0.shape.out_h;
    m->w0 = m->conv0.shape.out_w;
    m->h1 = m->h0 / 2;
    m->w1 = m->w0 / 2;
    m->h2 = conv_out(m->h1, 3, 2, 1);
    m->w2 = conv_out(m->w1, 3, 2, 1);
    m->n_blocks = 2 * c->blocks + 1;
    char prefix[32];
    for (int i = 0; i < m->n_blocks; i++) {
        Block *b = &m->blocks[i];
        int layer = i < c->blocks ? 1 : i == c->blocks ? 2 : 3;
        int idx = layer == 1 ? i : layer == 2 ? 0 : i - c->blocks - 1;
        int in_c = layer == 1 ? c->fmaps0 : c->fmaps1, out_c = layer == 1 ? c->fmaps0 : c->fmaps1;
        int h = layer == 1 ? m->h1 : m->h2, w = layer == 1 ? m->w1 : m->w2;
        int stride = 1;
        if (layer == 2) {
            in_c = c->fmaps0;
            h = m->h1;
            w = m->w1;
            stride = 2;
        }
        snprintf(prefix, sizeof prefix, "layer%d.%d.conv1", layer, idx);
        b->conv1 = add_conv(m, prefix, in_c, out_c, 3, stride, 1, h, w);
        snprintf(prefix, sizeof prefix, "layer%d.%d.conv2", layer, idx);
        b->conv2 = add_conv(m, prefix, out_c, out_c, 3, 1, 1, b->conv1.shape.out_h,
                            b->conv1.shape.out_w);
        b->has_shortcut = layer == 2;
        if (b->has_shortcut) {
            snprintf(prefix, sizeof prefix, "layer%d.%d.shortcut", layer, idx);
            b->shortcut = add_conv(m, prefix, in_c, out_c, 1, 2, 0, h, w);
        }
    }
    int k = c->fmaps1 + c->n_scalars, one = 1, wshape[2] = {1, k};
    m->fc_w = m->n_tensors;
    add_tensor(m, "fc.weight", 2, wshape, k);
    m->fc_b = m->n_tensors;
    add_tensor(m, "fc.bias", 1, &one, k);
}

size_t model_count_params(const ModelConfig *cfg) {
    if (model_check_config(cfg)) return 0;
    Model m;
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    Block blocks[2 * cfg->blocks + 1];
    m.blocks = blocks;
    build_table(&m);
    size_t total = 0;
    for (int i = 0; i < m.n_tensors; i++) total += m.tensors[i].numel;
    return total;
}

/* Tells the backend every convolution's shape at the model's largest batch (ops.h). */
static void prepare_convs(Model *m) {
    NetOps *o = m->ops;
    if (!ops_can(o, OPS_CONV_PREPARE)) return;
    ConvShape s = m->conv0.shape;
    s.n = m->cfg.max_batch;
    o->conv2d_prepare(o->ctx, &s, LAYOUT_NCHW);
    for (int i = 0; i < m->n_blocks; i++) {
        const Block *b = &m->blocks[i];
        const Conv *convs[3] = {&b->conv1, &b->conv2, b->has_shortcut ? &b->shortcut : NULL};
        for (int k = 0; k < 3; k++) {
            if (!convs[k]) continue;
            s = convs[k]->shape;
            s.n = m->cfg.max_batch;
            o->conv2d_prepare(o->ctx, &s, LAYOUT_NHWC);
        }
    }
}

void model_input_sizes(const ModelConfig *c, size_t *nx, size_t *ns) {
    size_t mb = (size_t)c->max_batch;
    *nx = mb * c->in_channels * c->height * c->width;
    *ns = mb * (c->n_scalars ? c->n_scalars : 1);
}

float *model_alloc_floats(Model *m, size_t n) {
    return m->ops->alloc(m->ops->ctx, n * sizeof(float));
}

/* The graph's buffers: parameters, gradients, activations and their gradients, at
 * cfg.max_batch. Allocated from the backend, or only counted where m->ops is NULL; their
 * bytes into *bytes. 1 when every one was allocated (or counted). */
static int alloc_graph(Model *m, size_t *bytes) {
    const ModelConfig *cfg = &m->cfg;
    size_t nb = (size_t)cfg->max_batch;
    size_t s0 = nb * m->h0 * m->w0 * cfg->fmaps0;
    size_t s1 = nb * m->h1 * m->w1 * cfg->fmaps0;
    size_t s2 = nb * m->h2 * m->w2 * cfg->fmaps1;
    size_t gmax = s0 > s1 ? s0 : s1;
    if (s2 > gmax) gmax = s2;
    size_t k = (size_t)cfg->fmaps1 + cfg->n_scalars;
    int ok = 1;
#define ALLOC(ptr, count)                                                                         \
    (*bytes += (count) * sizeof(float),                                                            \
     ok = ok && (!m->ops || ((ptr) = (void *)model_alloc_floats(m, (count))) != NULL))
    ALLOC(m->params, m->arena);
    ALLOC(m->grads, m->arena);
    ALLOC(m->a0, s0);
    ALLOC(m->p0, s1);
    ALLOC(m->pool_idx, s1);
    ALLOC(m->gpool_idx, nb * cfg->fmaps1);
    ALLOC(m->feat, nb * k);
    ALLOC(m->dfeat, nb * k);
    ALLOC(m->pred, nb);
    ALLOC(m->dpred, nb);
    ALLOC(m->loss, 1);
    ALLOC(m->nonfinite, 1);
    for (int i = 0; i < 3; i++) ALLOC(m->g[i], gmax);
    float *prev = m->p0;
    for (int i = 0; i < m->n_blocks && ok; i++) {
        Block *b = &m->blocks[i];
        size_t sz = nb * b->conv1.shape.out_h * b->conv1.shape.out_w * b->conv1.shape.out_c;
        b->in = prev;
        ALLOC(b->h, sz);
        ALLOC(b->out, sz);
        if (b->has_shortcut) ALLOC(b->skip, sz);
        prev = b->out;
    }
#undef ALLOC
    return ok;
}

int model_create(Model **out, const ModelConfig *cfg, NetOps *ops) {
    if (!out) return e2e_fail("model_create: output pointer is NULL");
    *out = NULL;
    if (!ops) return e2e_fail("model_create: no backend (ops is NULL)");
    if (ops_check(ops)) return -1;
    if (model_check_config(cfg)) return -1;
    Model *m = calloc(1, sizeof *m);
    if (!m) return e2e_fail("model_create: out of host memory");
    m->cfg = *cfg;
    m->ops = ops;
    m->blocks = calloc((size_t)(2 * cfg->blocks + 1), sizeof *m->blocks);
    if (!m->blocks) {
        free(m);
        return e2e_fail("model_create: out of host memory");
    }
    build_table(m);

    size_t bytes = 0;
    if (!alloc_graph(m, &bytes)) {
        model_free_graph(m);  /* no input buffers yet: batch_staging.c makes them on first use */
        return e2e_fail("model_create: the %s backend could not allocate memory for batch %d (the model needs "
                        "%.3g GB at that batch)", ops->name, cfg->max_batch, model_memory_bytes(cfg, ops) / 1e9);
    }
    prepare_convs(m);
    *out = m;
    return 0;
}

size_t model_memory_bytes(const ModelConfig *cfg, const NetOps *ops) {
    if (model_check_config(cfg)) return 0;
    Model m;
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    Block blocks[2 * cfg->blocks + 1];
    memset(blocks, 0, sizeof blocks);
    m.blocks = blocks;
    build_table(&m);
    size_t bytes = 0;
    alloc_graph(&m, &bytes);  /* m.ops is NULL: counts */
    if (ops && ops_can(ops, OPS_HOST_MEMORY)) return bytes;  /* batches are read where they are */
    size_t nx, ns;  /* batch_staging.c's input buffers: images, scalars, targets, weights */
    model_input_sizes(cfg, &nx, &ns);
    return bytes + (nx + ns + 2 * (size_t)cfg->max_batch) * sizeof(float);
}

void model_free_graph(Model *m) {
    if (!m) return;
    NetOps *o = m->ops;
    void *bufs[] = {m->params, m->grads, m->a0, m->p0, m->pool_idx, m->gpool_idx, m->feat,
                    m->dfeat, m->pred, m->dpred, m->loss, m->nonfinite, m->g[0], m->g[1], m->g[2],
                    m->grad_sum};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) o->release(o->ctx, bufs[i]);
    for (int i = 0; i < m->n_blocks; i++) {
        Block *b = &m->blocks[i];
        if (b->h) o->release(o->ctx, b->h);
        if (b->out) o->release(o->ctx, b->out);
        if (b->skip) o->release(o->ctx, b->skip);
    }
    free(m->blocks);
    free(m);
}

const ModelConfig *model_config(const Model *m) { return &m->cfg; }
NetOps *model_ops(const Model *m) { return m->ops; }
size_t model_arena_size(const Model *m) { return m->arena; }
int model_num_tensors(const Model *m) { return m->n_tensors; }
float *model_params(Model *m) { return m->params; }
float *model_grads(Model *m) { return m->grads; }
const float *model_predictions(const Model *m) { return m->pred; }

const ParamTensor *model_tensor(const Model *m, int i) {
    return (i >= 0 && i < m->n_tensors) ? &m->tensors[i] : NULL;
}

const ParamTensor *model_find_tensor(const Model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

int model_init(Model *m, uint64_t seed) {
    if (!m) return e2e_fail("model_init: model is NULL");
    float *host = calloc(m->arena, sizeof(float));
    if (!host) return e2e_fail("model_init: out of host memory");
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        const ParamTensor *t = &m->tensors[i];
        float bound = 1.0f / sqrtf((float)t->fan_in);
        for (size_t j = 0; j < t->numel; j++) host[t->offset + j] = rng_range(&rng, -bound, bound);
    }
    int rc = model_set_params(m, host);
    free(host);
    return rc;
}

int model_set_params(Model *m, const float *host) {
    if (!m || !host) return e2e_fail("model_set_params: NULL argument");
    m->ops->upload(m->ops->ctx, m->params, host, m->arena * sizeof(float));
    return 0;
}

int model_get_params(Model *m, float *host) {
    if (!m || !host) return e2e_fail("model_get_params: NULL argument");
    m->ops->download(m->ops->ctx, host, m->params, m->arena * sizeof(float));
    return 0;
}

int model_get_grads(Model *m, float *host) {
    if (!m || !host) return e2e_fail("model_get_grads: NULL argument");
    m->ops->download(m->ops->ctx, host, m->grads, m->arena * sizeof(float));
    return 0;
}

/* ---- forward ---- */

static const float *P(const Model *m, int t) { return m->params + m->tensors[t].offset; }
static float *G(Model *m, int t) { return m->grads + m->tensors[t].offset; }

static void conv_fwd(Model *m, const Conv *cv, Layout lay, const float *x,
                     const float *residual, int relu, float *y) {
    ConvShape s = cv->shape;
    s.n = m->n;
    m->ops->conv2d_forward(m->ops->ctx, &s, lay, x, P(m, cv->w), P(m, cv->b), residual, relu, y);
}

int model_forward(Model *m, int n, const float *x, const float *scalars) {
    if (!m) return e2e_fail("model_forward: model is NULL");
    if (n <= 0 || n > m->cfg.max_batch)
        return e2e_fail("model_forward: batch of %d samples, the model holds 1 to %d", n,
                        m->cfg.max_batch);
    if (!x) return e2e_fail("model_forward: input images are NULL");
    if (!scalars && m->cfg.n_scalars > 0)
        return e2e_fail("model_forward: the model takes %d per-jet scalars, got NULL",
                        m->cfg.n_scalars);
    NetOps *o = m->ops;
    const ModelConfig *c = &m->cfg;
    m->n = n;
    m->x = x;
    conv_fwd(m, &m->conv0, LAYOUT_NCHW, x, NULL, 1, m->a0);
    o->maxpool2x2_forward(o->ctx, n, c->fmaps0, m->h0, m->w0, m->a0, m->p0, m->pool_idx);
    for (int i = 0; i < m->n_blocks; i++) {
        Block *b = &m->blocks[i];
        conv_fwd(m, &b->conv1, LAYOUT_NHWC, b->in, NULL, 1, b->h);
        const float *skip = b->in;
        if (b->has_shortcut) {
            conv_fwd(m, &b->shortcut, LAYOUT_NHWC, b->in, NULL, 0, b->skip);
            skip = b->skip;
        }
        conv_fwd(m, &b->conv2, LAYOUT_NHWC, b->h, skip, 1, b->out);
    }
    /* layer2 always exists, so the last block has fmaps1 maps of h2 x w2 */
    int k = c->fmaps1 + c->n_scalars;
    o->global_maxpool_forward(o->ctx, n, c->fmaps1, m->h2, m->w2,
                              m->blocks[m->n_blocks - 1].out, m->feat, k, m->gpool_idx);
    if (c->n_scalars)
        o->copy2d(o->ctx, m->feat + c->fmaps1, (size_t)k, scalars, (size_t)c->n_scalars,
                  (size_t)n, (size_t)c->n_scalars);
    o->linear_forward(o->ctx, n, k, 1, m->feat, P(m, m->fc_w), P(m, m->fc_b), m->pred);
    return 0;
}

int model_loss(Model *m, const float *target, const float *weight) {
    if (!m) return e2e_fail("model_loss: model is NULL");
    if (m->n <= 0) return e2e_fail("model_loss: no forward pass to take the loss of");
    if (!target) return e2e_fail("model_loss: target is NULL");
    NetOps *o = m->ops;
    if (m->cfg.loss == MODEL_LOSS_BCE) o->bce_logits_loss(o->ctx, m->n, m->pred, target, weight, m->loss, m->dpred);
    else o->l1_loss(o->ctx, m->n, m->pred, target, weight, m->loss, m->dpred);
    return 0;
}

int model_loss_value(Model *m, float *loss) {
    if (!m || !loss) return e2e_fail("model_loss_value: NULL argument");
    m->ops->download(m->ops->ctx, loss, m->loss, sizeof(float));
    return 0;
}

int model_grads_nonfinite(Model *m, int *nonfinite) {
    if (!m || !nonfinite) return e2e_fail("model_grads_nonfinite: NULL argument");
    float flag = 0.0f;
    m->ops->nonfinite_check(m->ops->ctx, m->arena, m->grads, m->nonfinite);
    m->ops->download(m->ops->ctx, &flag, m->nonfinite, sizeof(float));
    *nonfinite = flag != 0.0f;
    return 0;
}

int model_pass_result(Model *m, float *loss, int *nonfinite) {
    return model_grads_nonfinite(m, nonfinite) || model_loss_value(m, loss) ? -1 : 0;
}

int model_accumulate_grads(Model *m, int k, int n) {
    if (!m) return e2e_fail("model_accumulate_grads: model is NULL");
    if (n < 1 || k < 0 || k >= n)
        return e2e_fail("model_accumulate_grads: micro-batch %d of %d (0 <= k < n)", k, n);
    if (n == 1) return 0;
    if (!m->grad_sum && !(m->grad_sum = model_alloc_floats(m, m->arena)))
        return e2e_fail("the %s backend could not allocate the gradient sum (%zu floats)", m->ops->name, m->arena);
    NetOps *o = m->ops;
    if (k == 0)
        o->copy2d(o->ctx, m->grad_sum, m->arena, m->grads, m->arena, 1, m->arena);
    else if (k < n - 1)
        o->add_scale(o->ctx, m->arena, m->grads, m->grad_sum, 1.0f);
    else
        o->add_scale(o->ctx, m->arena, m->grad_sum, m->grads, 1.0f / (float)n);
    return 0;
}

/* ---- backward ---- */

/* dw, db, and (unless dx is NULL) dx masked by an earlier ReLU's output (NULL: none) */
static void conv_bwd(Model *m, const Conv *cv, Layout lay, const float *x, const float *dy,
                     const float *mask, float *dx) {
    ConvShape s = cv->shape;
    s.n = m->n;
    NetOps *o = m->ops;
    o->conv2d_backward_filter(o->ctx, &s, lay, x, dy, G(m, cv->w), G(m, cv->b));
    if (dx) o->conv2d_backward_data(o->ctx, &s, dy, P(m, cv->w), mask, dx);
}

static size_t numel(const Model *m, const ConvShape *s) {
    return (size_t)m->n * s->out_h * s->out_w * s->out_c;
}

int model_backward(Model *m) {
    if (!m) return e2e_fail("model_backward: model is NULL");
    if (m->n <= 0) return e2e_fail("model_backward: no forward pass to differentiate");
    NetOps *o = m->ops;
    const ModelConfig *c = &m->cfg;
    int n = m->n, k = c->fmaps1 + c->n_scalars;
    o->linear_backward(o->ctx, n, k, 1, m->feat, P(m, m->fc_w), m->dpred, m->dfeat,
                       G(m, m->fc_w), G(m, m->fc_b));
    /* Every ReLU's backward is fused into a neighbour. A block's input is the previous
     * block's ReLU output, or for the first block p0 = maxpool(relu(conv0)), whose
     * winners carry conv0's ReLU mask; so masking a block's input gradient by its
     * input is the previous ReLU's backward, and p0's mask is conv0's.
     * dpre: gradient before the block's final ReLU; dh: of its h; din: of its input. */
    float *dpre = m->g[0], *dh = m->g[1], *din = m->g[2];
    Block *last = &m->blocks[m->n_blocks - 1];
    o->global_maxpool_backward(o->ctx, n, c->fmaps1, m->h2, m->w2, m->dfeat, k, m->gpool_idx,
                               dpre);
    o->relu_backward(o->ctx, numel(m, &last->conv2.shape), last->out, dpre, NULL, dpre);
    for (int i = m->n_blocks - 1; i >= 0; i--) {
        Block *b = &m->blocks[i];
        conv_bwd(m, &b->conv2, LAYOUT_NHWC, b->h, dpre, b->h, dh);
        conv_bwd(m, &b->conv1, LAYOUT_NHWC, b->in, dh, NULL, din);
        size_t nin = (size_t)n * b->conv1.shape.in_h * b->conv1.shape.in_w * b->conv1.shape.in_c;
        const float *dskip = dpre;
        if (b->has_shortcut) {
            conv_bwd(m, &b->shortcut, LAYOUT_NHWC, b->in, dpre, NULL, dh);  /* dh is free */
            dskip = dh;
        }
        o->relu_backward(o->ctx, nin, b->in, din, dskip, din);
        float *t = dpre;
        dpre = din;
        din = t;
    }
    /* dpre holds d(p0), already masked by conv0's ReLU */
    o->maxpool2x2_backward(o->ctx, n, c->fmaps0, m->h0, m->w0, dpre, m->pool_idx, dh);
    conv_bwd(m, &m->conv0, LAYOUT_NCHW, m->x, dh, NULL, NULL);
    return 0;
}
