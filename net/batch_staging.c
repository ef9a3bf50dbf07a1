/* Host batches on their way to the backend: checked once here, staged into backend
 * memory (asynchronously where the backend can, with a look-ahead batch), then the
 * training pass (with CUDA graph replay) and prediction over them. It calls down into
 * the graph (resnet15.c: forward, loss, backward), which calls nothing here. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "hash.h"
#include "model_internal.h"

/* The model's input buffers in backend memory (and the staging buffer where the backend
 * copies asynchronously), made on first use. */
static int alloc_inputs(Model *m) {
    const ModelConfig *c = &m->cfg;
    NetOps *o = m->ops;
    InputStaging *f = &m->input;
    if (f->x) return 0;
    size_t mb = (size_t)c->max_batch, nx, ns;
    model_input_sizes(c, &nx, &ns);
    f->x = model_alloc_floats(m, nx);
    f->scalars = model_alloc_floats(m, ns);
    f->target = model_alloc_floats(m, mb);
    f->weight = model_alloc_floats(m, mb);
    if (!f->x || !f->scalars || !f->target || !f->weight)
        return e2e_fail("the %s backend could not allocate input buffers for batch %d", o->name,
                        c->max_batch);
    if (ops_can(o, OPS_ASYNC_UPLOAD)) {
        /* images (float32 or binary16), then scalars, target, weight, each 256-aligned */
        f->st_scalars = round_up(nx * sizeof(float), 256);
        f->st_target = f->st_scalars + round_up(ns * sizeof(float), 256);
        f->st_weight = f->st_target + round_up(mb * sizeof(float), 256);
        size_t bytes = f->st_weight + round_up(mb * sizeof(float), 256);
        f->staging = o->alloc(o->ctx, bytes);
        if (!f->staging)
            return e2e_fail("the %s backend could not allocate a staging buffer for batch %d",
                            o->name, c->max_batch);
    }
    return 0;
}

/* The input buffers back to the backend. */
static void release_inputs(Model *m) {
    NetOps *o = m->ops;
    InputStaging *f = &m->input;
    void *bufs[] = {f->x, f->scalars, f->target, f->weight, f->staging, f->sparse_stage};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) o->release(o->ctx, bufs[i]);
    memset(f, 0, sizeof *f);
}

/* The whole model: the input buffers made here, then the graph's (resnet15.c). */
void model_free(Model *m) {
    if (!m) return;
    release_inputs(m);
    model_free_graph(m);
}

/* Copies a small device array with copy2d (one row). */
static void copy_floats(NetOps *o, float *dst, const void *src, size_t count) {
    o->copy2d(o->ctx, dst, count, (const float *)src, count, 1, count);
}

/* The model API's checks of a host batch. */
static int check_batch(const Model *m, const Batch *b, int with_target) {
    const ModelConfig *c = &m->cfg;
    if (!b) return e2e_fail("batch is NULL");
    if (b->n <= 0 || b->n > c->max_batch)
        return e2e_fail("batch of %d samples, the model holds 1 to %d", b->n, c->max_batch);
    int images = (b->x != NULL) + (b->x_half != NULL) + (b->sparse.plane_start != NULL);
    if (!images) return e2e_fail("batch images are NULL");
    if (images > 1) return e2e_fail("batch has more than one of x, x_half, sparse: give one of them");
    if ((b->x_half || b->prep || b->sparse.plane_start) && !ops_can(m->ops, OPS_PREP_INPUT))
        return e2e_fail("the %s backend takes preprocessed float32 images (x); x_half, sparse "
                        "images and prep need a GPU backend", m->ops->name);
    if (b->sparse.plane_start && !ops_can(m->ops, OPS_SPARSE_INPUT))
        return e2e_fail("the %s backend cannot densify sparse images: give x or x_half",
                        m->ops->name);
    if (b->sparse.plane_start && (b->sparse.nnz < 0 || !b->sparse.pos || !b->sparse.value ||
                                  (b->sparse.pos_bytes != 2 && b->sparse.pos_bytes != 4)))
        return e2e_fail("sparse batch: needs positions (uint16 or uint32) and values for its %lld entries",
                        b->sparse.nnz);
    if (b->prep && (!b->prep->scale || c->in_channels > OPS_PREP_MAX_CHANNELS))
        return e2e_fail("batch prep needs %d channel scales (at most %d channels)",
                        c->in_channels, OPS_PREP_MAX_CHANNELS);
    if (!b->scalars && c->n_scalars > 0)
        return e2e_fail("the model takes %d per-jet scalars, the batch has none", c->n_scalars);
    if (with_target && !b->target) return e2e_fail("batch target is NULL");
    return 0;
}

/* What one batch needs moved: its sizes and its raw images. */
typedef struct {
    size_t nx, hw, ns;      /* image floats, pixels per channel, scalar floats */
    const void *raw;        /* x or x_half */
    int half;
    const float *scale;     /* the device's preprocessing, or NULL */
    const unsigned char *kind;
    float threshold;
} Move;

static Move move_of(const Model *m, const Batch *b) {
    const ModelConfig *c = &m->cfg;
    return (Move){.nx = (size_t)b->n * c->in_channels * c->height * c->width,
                  .hw = (size_t)c->height * c->width, .ns = (size_t)b->n * c->n_scalars,
                  .raw = b->x ? (const void *)b->x : (const void *)b->x_half,
                  .half = b->x_half != NULL, .scale = b->prep ? b->prep->scale : NULL,
                  .kind = b->prep ? b->prep->kind : NULL, .threshold = b->prep ? b->prep->threshold : 0.0f};
}

/* room for `bytes` in the sparse staging buffer: a larger one when needed, once the
 * ops and copies that use the old one are done */
static int sparse_room(Model *m, size_t bytes) {
    NetOps *o = m->ops;
    InputStaging *f = &m->input;
    if (bytes <= f->sparse_cap) return 0;
    size_t cap = f->sparse_cap * 2 > bytes ? f->sparse_cap * 2 : bytes;
    if (f->sparse_stage) {
        o->sync(o->ctx);
        o->release(o->ctx, f->sparse_stage);
    }
    f->sparse_cap = 0;
    if (!(f->sparse_stage = o->alloc(o->ctx, cap)))
        return e2e_fail("the %s backend could not allocate %zu bytes for a sparse batch", o->name, cap);
    f->sparse_cap = cap;
    return 0;
}

/* A sparse batch's entries copied into the sparse staging buffer (its device copy in
 * *dev); with on_device, *dev is the batch itself. */
static int upload_sparse(Model *m, const Batch *b, SparseImages *dev) {
    NetOps *o = m->ops;
    InputStaging *f = &m->input;
    const SparseImages *s = &b->sparse;
    *dev = *s;
    if (b->on_device) return 0;
    const size_t planes = ((size_t)b->n * m->cfg.in_channels + 1) * sizeof(uint32_t), nnz = (size_t)s->nnz;
    const size_t at_pos = round_up(planes, 256), at_val = at_pos + round_up(nnz * s->pos_bytes, 256);
    const size_t val_bytes = nnz * (s->value_bytes == 2 ? 2 : 4);
    if (sparse_room(m, at_val + val_bytes)) return -1;
    o->upload_async(o->ctx, f->sparse_stage, s->plane_start, planes);
    o->upload_async(o->ctx, f->sparse_stage + at_pos, s->pos, nnz * s->pos_bytes);
    o->upload_async(o->ctx, f->sparse_stage + at_val, s->value, val_bytes);
    dev->plane_start = (const uint32_t *)f->sparse_stage;
    dev->pos = f->sparse_stage + at_pos;
    dev->value = f->sparse_stage + at_val;
    return 0;
}

/* the entries (in backend memory) densified into the model's input, then preprocessed
 * there in place */
static void densify_sparse(Model *m, int n, const SparseImages *dev, const Move *v) {
    NetOps *o = m->ops;
    const int c = m->cfg.in_channels;
    o->densify_input(o->ctx, n, c, v->hw, dev->plane_start, dev->pos, dev->pos_bytes, dev->value, dev->value_bytes == 2,
                     m->input.x);
    if (v->scale) o->prep_input(o->ctx, n, c, v->hw, m->input.x, 0, v->scale, v->kind, v->threshold, m->input.x);
}

/* host -> staging on the copy stream, overlapping the previous pass; staging -> inputs
 * in op order; then mark: the next batch may overwrite the staging */
static int stage_async(Model *m, const Batch *b, const Move *v, int with_target,
                       Batch *out) {
    NetOps *o = m->ops;
    InputStaging *f = &m->input;
    size_t bytes = (size_t)b->n * sizeof(float);
    SparseImages dev;
    if (b->sparse.plane_start) {
        if (upload_sparse(m, b, &dev)) return -1;
    } else
        o->upload_async(o->ctx, f->staging, v->raw, v->nx * (v->half ? 2 : sizeof(float)));
    if (v->ns) o->upload_async(o->ctx, f->staging + f->st_scalars, b->scalars, v->ns * sizeof(float));
    if (with_target) {
        o->upload_async(o->ctx, f->staging + f->st_target, b->target, bytes);
        if (b->weight) o->upload_async(o->ctx, f->staging + f->st_weight, b->weight, bytes);
    }
    if (b->sparse.plane_start)
        densify_sparse(m, b->n, &dev, v);
    else
        o->prep_input(o->ctx, b->n, m->cfg.in_channels, v->hw, f->staging, v->half, v->scale, v->kind,
                      v->threshold, f->x);
    out->x = f->x;
    if (v->ns) {
        copy_floats(o, f->scalars, f->staging + f->st_scalars, v->ns);
        out->scalars = f->scalars;
    }
    if (with_target) {
        copy_floats(o, f->target, f->staging + f->st_target, (size_t)b->n);
        out->target = f->target;
        if (b->weight) {
            copy_floats(o, f->weight, f->staging + f->st_weight, (size_t)b->n);
            out->weight = f->weight;
        }
    }
    o->mark(o->ctx);
    return 0;
}

/* plain uploads in op order (a backend without asynchronous copies) */
static int stage_uploads(Model *m, const Batch *b, const Move *v, int with_target,
                         Batch *out) {
    NetOps *o = m->ops;
    InputStaging *f = &m->input;
    size_t bytes = (size_t)b->n * sizeof(float);
    if (v->half || v->scale || b->sparse.plane_start)
        return e2e_fail("the %s backend cannot stage raw (x_half, sparse or prep) batches", o->name);
    o->upload(o->ctx, f->x, b->x, v->nx * sizeof(float));
    out->x = f->x;
    if (m->cfg.n_scalars) {
        o->upload(o->ctx, f->scalars, b->scalars, v->ns * sizeof(float));
        out->scalars = f->scalars;
    }
    if (with_target) {
        o->upload(o->ctx, f->target, b->target, bytes);
        out->target = f->target;
        if (b->weight) {
            o->upload(o->ctx, f->weight, b->weight, bytes);
            out->weight = f->weight;
        }
    }
    return 0;
}

/* Checks a host batch and returns the pointers the ops will read: the host memory
 * itself on a host-memory backend, else copies in the model's input buffers. */
static int stage(Model *m, const Batch *b, int with_target, Batch *out) {
    if (check_batch(m, b, with_target)) return -1;
    *out = *b;
    if (ops_can(m->ops, OPS_HOST_MEMORY)) return 0;
    if (alloc_inputs(m)) return -1;
    Move v = move_of(m, b);
    out->x_half = NULL;
    out->sparse = (SparseImages){0};
    out->prep = NULL;
    out->on_device = 1;
    if (b->on_device) {  /* already in backend memory: only the raw images need work */
        if (b->sparse.plane_start) {
            densify_sparse(m, b->n, &b->sparse, &v);
            out->x = m->input.x;
            return 0;
        }
        if (v.half || v.scale) {
            m->ops->prep_input(m->ops->ctx, b->n, m->cfg.in_channels, v.hw, v.raw, v.half,
                               v.scale, v.kind, v.threshold, m->input.x);
            out->x = m->input.x;
        }
        return 0;
    }
    if (m->input.staging) return stage_async(m, b, &v, with_target, out);
    return stage_uploads(m, b, &v, with_target, out);
}

static int train_ops(Model *m, const Batch *d) {
    if (m->phase_hook) m->phase_hook(m->phase_ctx, MODEL_PHASE_FORWARD);
    if (model_forward(m, d->n, d->x, d->scalars) || model_loss(m, d->target, d->weight)) return -1;
    if (m->phase_hook) m->phase_hook(m->phase_ctx, MODEL_PHASE_BACKWARD);
    return model_backward(m);
}

void model_set_phase_hook(Model *m, ModelPhaseHook hook, void *ctx) {
    if (!m) return;
    m->phase_hook = hook;
    m->phase_ctx = ctx;
}

/* Names a training pass for graph replay: the batch size and every buffer it reads.
 * Staged batches always land in the same buffers. */
static uint64_t graph_key(const Batch *d) {
    uintptr_t v[5] = {(uintptr_t)d->n, (uintptr_t)d->x, (uintptr_t)d->scalars,
                      (uintptr_t)d->target, (uintptr_t)d->weight};
    return fnv1a(v, sizeof v);
}

int model_stage_batch(Model *m, const Batch *b) {
    if (!m) return e2e_fail("model_stage_batch: model is NULL");
    m->input.has_ahead = 0;
    if (stage(m, b, 1, &m->input.ahead)) return -1;
    m->input.has_ahead = 1;
    return 0;
}

int model_train_pass(Model *m, const Batch *b) {
    if (!m) return e2e_fail("model_train_pass: model is NULL");
    Batch d = {0};
    if (!b) {
        if (!m->input.has_ahead)
            return e2e_fail("model_train_pass: batch is NULL and none staged (model_stage_batch)");
        d = m->input.ahead;
    } else if (stage(m, b, 1, &d))
        return -1;
    m->input.has_ahead = 0;  /* a given batch took the input buffers; a staged one is used up */
    NetOps *o = m->ops;
    int mode = ops_can(o, OPS_GRAPHS) ? o->graph_begin(o->ctx, graph_key(&d)) : OPS_GRAPH_DIRECT;
    if (mode == OPS_GRAPH_REPLAYED) {
        m->n = d.n;  /* what the pass would have left: later calls read these */
        m->x = d.x;
        return 0;
    }
    int rc = train_ops(m, &d);
    if (mode != OPS_GRAPH_RECORDING) return rc;
    /* a pass that failed here was recorded in part: the backend drops that recording */
    if (o->graph_end(o->ctx, rc != 0) == 0 || rc) return rc;
    /* The capture ran nothing and graph replay is now off: warn once, then run the pass
     * directly (a backend without graphs is slower, not wrong). */
    fprintf(stderr, "e2e-ddp: warning: %s\n", e2e_error());
    return train_ops(m, &d);
}

int model_predict(Model *m, const Batch *b, float *pred) {
    if (!m) return e2e_fail("model_predict: model is NULL");
    if (!pred) return e2e_fail("model_predict: prediction buffer is NULL");
    Batch d = {0};
    m->input.has_ahead = 0;  /* its inputs take the input buffers */
    if (stage(m, b, 0, &d) || model_forward(m, d.n, d.x, d.scalars)) return -1;
    m->ops->download(m->ops->ctx, pred, m->pred, (size_t)d.n * sizeof(float));
    return 0;
}
