/* The timing wrapper (ops_profile.h): a NetOps whose every member calls the wrapped
 * backend's, synchronises, and adds the wall time to its op kind. Benchmarks only. */
#include "ops_profile.h"

#include <stdlib.h>

#include "clock.h"

typedef struct {
    NetOps *inner;
    OpsProfile *prof;
} Wrap;

#define TIMED(kind, call)                                   \
    do {                                                    \
        Wrap *w_ = ctx;                                     \
        double t0_ = monotonic_seconds();                   \
        w_->inner->call;                                    \
        w_->inner->sync(w_->inner->ctx);                    \
        w_->prof->seconds[kind] += monotonic_seconds() - t0_; \
        w_->prof->calls[kind]++;                            \
    } while (0)
#define IN(ctx) (((Wrap *)(ctx))->inner->ctx)

static double conv_flops(const ConvShape *s) {
    return 2.0 * s->n * s->out_h * s->out_w * s->out_c * s->in_c * s->k_h * s->k_w;
}

static void *p_alloc(void *ctx, size_t b) { return ((Wrap *)ctx)->inner->alloc(IN(ctx), b); }
static void p_release(void *ctx, void *p) { ((Wrap *)ctx)->inner->release(IN(ctx), p); }
static void p_upload(void *ctx, void *d, const void *s, size_t b) { TIMED(PROF_OTHER, upload(IN(ctx), d, s, b)); }
static void p_download(void *ctx, void *d, const void *s, size_t b) { TIMED(PROF_OTHER, download(IN(ctx), d, s, b)); }
static void p_sync(void *ctx) { ((Wrap *)ctx)->inner->sync(IN(ctx)); }
static void p_copy2d(void *ctx, float *d, size_t ld, const float *s, size_t ls, size_t r, size_t c) {
    TIMED(PROF_OTHER, copy2d(IN(ctx), d, ld, s, ls, r, c));
}
static void p_conv_prepare(void *ctx, const ConvShape *s, Layout l) {
    ((Wrap *)ctx)->inner->conv2d_prepare(IN(ctx), s, l);
}
static void p_conv_fwd(void *ctx, const ConvShape *s, Layout l, const float *x, const float *w,
                       const float *b, const float *r, int relu, float *y) {
    ((Wrap *)ctx)->prof->conv_flops[0] += conv_flops(s);
    TIMED(PROF_CONV_FWD, conv2d_forward(IN(ctx), s, l, x, w, b, r, relu, y));
}
static void p_conv_bd(void *ctx, const ConvShape *s, const float *dy, const float *w,
                      const float *mask, float *dx) {
    ((Wrap *)ctx)->prof->conv_flops[1] += conv_flops(s);
    TIMED(PROF_CONV_BWD_DATA, conv2d_backward_data(IN(ctx), s, dy, w, mask, dx));
}
static void p_conv_bf(void *ctx, const ConvShape *s, Layout l, const float *x, const float *dy,
                      float *dw, float *db) {
    ((Wrap *)ctx)->prof->conv_flops[2] += conv_flops(s);
    TIMED(PROF_CONV_BWD_FILTER, conv2d_backward_filter(IN(ctx), s, l, x, dy, dw, db));
}
static void p_relu_bwd(void *ctx, size_t n, const float *y, const float *dy, const float *a,
                       float *dx) {
    TIMED(PROF_RELU_BWD, relu_backward(IN(ctx), n, y, dy, a, dx));
}
static void p_mp_f(void *ctx, int n, int c, int h, int w, const float *x, float *y, int32_t *i) {
    TIMED(PROF_MAXPOOL, maxpool2x2_forward(IN(ctx), n, c, h, w, x, y, i));
}
static void p_mp_b(void *ctx, int n, int c, int h, int w, const float *dy, const int32_t *i, float *dx) {
    TIMED(PROF_MAXPOOL, maxpool2x2_backward(IN(ctx), n, c, h, w, dy, i, dx));
}
static void p_gmp_f(void *ctx, int n, int c, int h, int w, const float *x, float *y, int ld, int32_t *i) {
    TIMED(PROF_GLOBAL_MAXPOOL, global_maxpool_forward(IN(ctx), n, c, h, w, x, y, ld, i));
}
static void p_gmp_b(void *ctx, int n, int c, int h, int w, const float *dy, int ld, const int32_t *i,
                    float *dx) {
    TIMED(PROF_GLOBAL_MAXPOOL, global_maxpool_backward(IN(ctx), n, c, h, w, dy, ld, i, dx));
}
static void p_lin_f(void *ctx, int n, int in, int out, const float *x, const float *w, const float *b,
                    float *y) {
    TIMED(PROF_LINEAR, linear_forward(IN(ctx), n, in, out, x, w, b, y));
}
static void p_lin_b(void *ctx, int n, int in, int out, const float *x, const float *w, const float *dy,
                    float *dx, float *dw, float *db) {
    TIMED(PROF_LINEAR, linear_backward(IN(ctx), n, in, out, x, w, dy, dx, dw, db));
}
static void p_l1(void *ctx, int n, const float *p, const float *t, const float *w, float *l, float *d) {
    TIMED(PROF_LOSS, l1_loss(IN(ctx), n, p, t, w, l, d));
}
static void p_bce(void *ctx, int n, const float *x, const float *t, const float *w, float *l, float *d) {
    TIMED(PROF_LOSS, bce_logits_loss(IN(ctx), n, x, t, w, l, d));
}
static void p_adam(void *ctx, size_t n, float *p, const float *g, float *m, float *v,
                   const AdamFactors *k) {
    TIMED(PROF_ADAM, adam_update(IN(ctx), n, p, g, m, v, k));
}
static void p_add_scale(void *ctx, size_t n, const float *x, float *y, float s) {
    TIMED(PROF_OTHER, add_scale(IN(ctx), n, x, y, s));
}
static void p_nonfinite(void *ctx, size_t n, const float *x, float *out) {
    TIMED(PROF_OTHER, nonfinite_check(IN(ctx), n, x, out));
}
static void p_destroy(NetOps *self) {
    free(self->ctx);
    free(self);
}

NetOps *ops_profile_wrap(NetOps *inner, OpsProfile *prof) {
    NetOps *o = calloc(1, sizeof *o);
    Wrap *w = calloc(1, sizeof *w);
    if (!o || !w) {
        free(o);
        free(w);
        return NULL;
    }
    w->inner = inner;
    w->prof = prof;
    /* only the required ops are timed: the wrapper declares no capability but the
     * inner backend's kind of memory and of activations */
    *o = (NetOps){.name = inner->name, .ctx = w, .caps = inner->caps & (OPS_HOST_MEMORY | OPS_BF16_ACTIVATIONS),
                  .alloc = p_alloc, .release = p_release, .upload = p_upload,
                  .download = p_download, .sync = p_sync, .copy2d = p_copy2d, .conv2d_forward = p_conv_fwd,
                  .conv2d_backward_data = p_conv_bd, .conv2d_backward_filter = p_conv_bf,
                  .relu_backward = p_relu_bwd, .maxpool2x2_forward = p_mp_f,
                  .maxpool2x2_backward = p_mp_b, .global_maxpool_forward = p_gmp_f,
                  .global_maxpool_backward = p_gmp_b, .linear_forward = p_lin_f,
                  .linear_backward = p_lin_b, .l1_loss = p_l1, .bce_logits_loss = p_bce, .adam_update = p_adam,
                  .add_scale = p_add_scale, .nonfinite_check = p_nonfinite, .destroy = p_destroy};
    if (ops_can(inner, OPS_CONV_PREPARE)) {
        o->caps |= OPS_CONV_PREPARE;
        o->conv2d_prepare = p_conv_prepare;
    }
    return o;
}

const char *ops_profile_name(int kind) {
    static const char *names[PROF_KINDS] = {
        "conv forward", "conv backward data", "conv backward filter", "relu backward",
        "max-pool 2x2", "global max-pool", "linear", "l1 loss", "adam", "other"};
    return kind >= 0 && kind < PROF_KINDS ? names[kind] : "?";
}
