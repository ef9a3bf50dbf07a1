/* Convolutions through oneDNN's C API (conv_onednn.h).
 *
 * Layouts: activations stay NHWC (oneDNN's `nhwc` tag reads our buffers in place), so
 * no activation is ever reordered; weights are asked for in the layout the kernel
 * wants (`any`) and reordered from and to the arena's OIHW on every call (at most a
 * few thousand floats). The network's NCHW input is read in place by forward when
 * out_c is 16 (oneDNN's first-layer kernel writes nChw16c, which for 16 channels is
 * the same memory as NHWC); otherwise, and for backward filter, it is first copied to
 * NHWC.
 * Fusions: bias, ReLU (eltwise post-op) and the residual (sum post-op: y is first
 * filled with the residual) in forward; the bias gradient in backward filter. The ReLU
 * mask of backward data is one pass over dx after the primitive.
 * Primitives are created once per (pass, shape, layout, fusion) and kept; oneDNN runs
 * them on `threads` OpenMP threads of the same runtime as ours (libgomp).
 * bf16 mode (onednn_create's bf16): activations, their gradients and the weights as the
 * kernel reads them are bf16 (the reorder from the arena's float OIHW rounds them), the
 * bias, the weights' and bias's gradients float; accumulation and post-ops in float
 * (oneDNN's bf16 kernels: AVX512-BF16 dot products, AMX tiles where the CPU has them).
 * Activations are NHWC only: the backend converts the network's NCHW input first. */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "conv_onednn.h"
#include "cpu_internal.h"

enum { MEM_SRC, MEM_WEIGHTS, MEM_BIAS, MEM_DST, MEM_N };

typedef struct {
    ConvOp op;
    ConvShape s;
    Layout lay;
    int relu, residual;           /* forward's fusions */
    int usable;                   /* 0: oneDNN offers only reference code here */
    int transpose;                /* NCHW input copied to NHWC first */
    char impl[48];
    dnnl_primitive_t prim;
    dnnl_memory_t mem[MEM_N];     /* src/diff_src, weights, bias, dst/diff_dst */
    dnnl_memory_t w_user;         /* OIHW weights (or their gradient) */
    dnnl_primitive_t w_reorder;   /* OIHW <-> the kernel's layout; NULL when they agree */
    float *w_kernel;              /* the weights in the kernel's layout */
} Prim;

struct Onednn {
    int threads;
    int bf16;                     /* activations bf16 (NHWC only), else float */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    Prim *prims;
    int count, cap;
    float *xt;                    /* the NCHW input in NHWC */
    size_t xt_floats;
};

static void die_on(dnnl_status_t st, const char *what, int line) {
    if (st == dnnl_success) return;
    char msg[400];
    snprintf(msg, sizeof msg, "oneDNN: %.300s failed (status %d)", what, (int)st);
    cpu_die(__FILE__, line, msg);
}
#define DNN_RUN(call) die_on((call), #call, __LINE__)

/* oneDNN's OpenMP runtime sizes its parallel regions by omp_get_max_threads(), at
 * primitive creation and execution alike. */
static int threads_enter(const Onednn *d) {
    int prev = omp_get_max_threads();
    if (prev != d->threads) omp_set_num_threads(d->threads);
    return prev;
}
static void threads_leave(const Onednn *d, int prev) {
    if (prev != d->threads) omp_set_num_threads(prev);
}

const char *onednn_describe(void) {
    static char text[64];
    static const struct { dnnl_cpu_isa_t isa; const char *name; } names[] = {
        {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
        {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
        {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
        {dnnl_cpu_isa_avx512_core, "avx512_core"},
        {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
        {dnnl_cpu_isa_avx2, "avx2"},
        {dnnl_cpu_isa_avx, "avx"},
        {dnnl_cpu_isa_sse41, "sse41"}};
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *name = "baseline";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (isa == names[i].isa) {
            name = names[i].name;
            break;
        }
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "oneDNN %d.%d.%d, %s", v->major, v->minor, v->patch, name);
    return text;
}

int onednn_has_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

Onednn *onednn_create(int threads, int bf16) {
    Onednn *d = calloc(1, sizeof *d);
    if (!d) return e2e_fail("oneDNN: out of host memory"), NULL;
    d->threads = threads;
    d->bf16 = bf16;
    if (dnnl_engine_create(&d->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags) != dnnl_success) {
        onednn_destroy(d);
        return e2e_fail("oneDNN: no CPU engine"), NULL;
    }
    return d;
}

static void prim_free(Prim *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->w_reorder) dnnl_primitive_destroy(p->w_reorder);
    for (int i = 0; i < MEM_N; i++)
        if (p->mem[i]) dnnl_memory_destroy(p->mem[i]);
    if (p->w_user) dnnl_memory_destroy(p->w_user);
    free(p->w_kernel);
}

void onednn_destroy(Onednn *d) {
    if (!d) return;
    for (int i = 0; i < d->count; i++) prim_free(&d->prims[i]);
    free(d->prims);
    free(d->xt);
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->engine) dnnl_engine_destroy(d->engine);
    free(d);
}

/* ---- primitive creation ---- */

typedef struct {
    dnnl_memory_desc_t src, weights, diff_weights, bias, dst, oihw;
    dnnl_dims_t strides, pad_l, pad_r;
} Descs;

/* act: the activations' data type (bf16 or f32); weights are in it too, but their
 * gradient, the bias and the arena's OIHW weights are f32 */
static int descs(const ConvShape *s, dnnl_format_tag_t src_tag, dnnl_format_tag_t dst_tag,
                 dnnl_data_type_t act, Descs *d) {
    dnnl_dims_t src = {s->n, s->in_c, s->in_h, s->in_w}, dst = {s->n, s->out_c, s->out_h, s->out_w};
    dnnl_dims_t wts = {s->out_c, s->in_c, s->k_h, s->k_w}, bias = {s->out_c};
    /* right padding that makes oneDNN's output size ours (negative when the stride
     * drops input rows, e.g. a 1x1 stride-2 conv of an even size) */
    d->strides[0] = d->strides[1] = s->stride;
    d->pad_l[0] = d->pad_l[1] = s->pad;
    d->pad_r[0] = (dnnl_dim_t)(s->out_h - 1) * s->stride + s->k_h - s->in_h - s->pad;
    d->pad_r[1] = (dnnl_dim_t)(s->out_w - 1) * s->stride + s->k_w - s->in_w - s->pad;
    return dnnl_memory_desc_init_by_tag(&d->src, 4, src, act, src_tag) ||
           dnnl_memory_desc_init_by_tag(&d->dst, 4, dst, act, dst_tag) ||
           dnnl_memory_desc_init_by_tag(&d->weights, 4, wts, act, dnnl_format_tag_any) ||
           dnnl_memory_desc_init_by_tag(&d->diff_weights, 4, wts, dnnl_f32, dnnl_format_tag_any) ||
           dnnl_memory_desc_init_by_tag(&d->oihw, 4, wts, dnnl_f32, dnnl_oihw) ||
           dnnl_memory_desc_init_by_tag(&d->bias, 1, bias, dnnl_f32, dnnl_x);
}

/* The forward descriptor, also the hint the backward passes need. */
static dnnl_primitive_desc_t forward_pd(Onednn *o, Descs *d, int relu, int residual) {
    dnnl_convolution_desc_t cd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                                &d->src, &d->weights, &d->bias, &d->dst,
                                                d->strides, d->pad_l, d->pad_r) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_post_ops_create(&po) == dnnl_success;
    if (ok && residual) ok = dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success;
    if (ok && relu) ok = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) == dnnl_success;
    if (ok) ok = dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (ok && dnnl_primitive_desc_create(&pd, &cd, attr, o->engine, NULL) != dnnl_success) pd = NULL;
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return pd;
}

static dnnl_primitive_desc_t backward_pd(Onednn *o, ConvOp op, Descs *d) {
    dnnl_primitive_desc_t hint = forward_pd(o, d, 0, 0), pd = NULL;
    if (!hint) return NULL;
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = op == CONV_BWD_DATA
        ? dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &d->src, &d->weights,
                                                   &d->dst, d->strides, d->pad_l, d->pad_r)
        : dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &d->src,
                                                      &d->diff_weights, &d->bias, &d->dst, d->strides,
                                                      d->pad_l, d->pad_r);
    if (st != dnnl_success || dnnl_primitive_desc_create(&pd, &cd, NULL, o->engine, hint) != dnnl_success)
        pd = NULL;
    dnnl_primitive_desc_destroy(hint);
    return pd;
}

static dnnl_memory_t memory(Onednn *o, const dnnl_memory_desc_t *md) {
    dnnl_memory_t m = NULL;
    DNN_RUN(dnnl_memory_create(&m, md, o->engine, DNNL_MEMORY_NONE));
    return m;
}

/* Memory objects (their buffers are set per call) and the weights reorder. */
static void bind(Onednn *o, Prim *p, dnnl_primitive_desc_t pd, const Descs *d) {
    int fwd = p->op == CONV_FWD, filt = p->op == CONV_BWD_FILTER;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(
        pd, filt ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    p->mem[MEM_SRC] = memory(o, dnnl_primitive_desc_query_md(
                                    pd, p->op == CONV_BWD_DATA ? dnnl_query_diff_src_md : dnnl_query_src_md, 0));
    p->mem[MEM_DST] = memory(o, dnnl_primitive_desc_query_md(pd, fwd ? dnnl_query_dst_md : dnnl_query_diff_dst_md, 0));
    p->mem[MEM_WEIGHTS] = memory(o, wmd);
    if (p->op != CONV_BWD_DATA) p->mem[MEM_BIAS] = memory(o, &d->bias);
    p->w_user = memory(o, &d->oihw);
    if (dnnl_memory_desc_equal(wmd, &d->oihw)) return;
    size_t bytes = dnnl_memory_desc_get_size(wmd);
    p->w_kernel = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p->w_kernel) cpu_die(__FILE__, __LINE__, "out of host memory for oneDNN weights");
    DNN_RUN(dnnl_memory_set_data_handle(p->mem[MEM_WEIGHTS], p->w_kernel));
    dnnl_primitive_desc_t rpd;
    DNN_RUN(filt ? dnnl_reorder_primitive_desc_create(&rpd, wmd, o->engine, &d->oihw, o->engine, NULL)
                 : dnnl_reorder_primitive_desc_create(&rpd, &d->oihw, o->engine, wmd, o->engine, NULL));
    DNN_RUN(dnnl_primitive_create(&p->w_reorder, rpd));
    dnnl_primitive_desc_destroy(rpd);
}

/* Tries one pair of activation layouts; 0 when oneDNN has a JIT kernel for them. */
static int try_layouts(Onednn *o, Prim *p, dnnl_format_tag_t src_tag, dnnl_format_tag_t dst_tag) {
    Descs d;
    if (descs(&p->s, src_tag, dst_tag, o->bf16 ? dnnl_bf16 : dnnl_f32, &d)) return -1;
    dnnl_primitive_desc_t pd = p->op == CONV_FWD ? forward_pd(o, &d, p->relu, p->residual)
                                                 : backward_pd(o, p->op, &d);
    if (!pd) return -1;
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (strncmp(impl, "ref", 3) == 0) {
        dnnl_primitive_desc_destroy(pd);
        return -1;
    }
    snprintf(p->impl, sizeof p->impl, "%s", impl);
    DNN_RUN(dnnl_primitive_create(&p->prim, pd));
    bind(o, p, pd, &d);
    dnnl_primitive_desc_destroy(pd);
    return 0;
}

static void create(Onednn *o, Prim *p) {
    int prev = threads_enter(o);
    if (o->bf16 && p->lay != LAYOUT_NHWC) {
        p->usable = 0;  /* the bf16 mode converts the network's input to NHWC first */
    } else if (p->lay == LAYOUT_NHWC) {
        p->usable = try_layouts(o, p, dnnl_nhwc, dnnl_nhwc) == 0;
    } else {
        /* in place where oneDNN's first-layer kernel applies, else transposed */
        if (p->op == CONV_FWD && p->s.out_c == 16)
            p->usable = try_layouts(o, p, dnnl_nchw, dnnl_nChw16c) == 0;
        if (!p->usable) {
            p->transpose = 1;
            p->usable = try_layouts(o, p, dnnl_nhwc, dnnl_nhwc) == 0;
        }
    }
    threads_leave(o, prev);
}

static Prim *find(Onednn *o, ConvOp op, const ConvShape *s, Layout lay, int relu, int residual) {
    for (int i = 0; i < o->count; i++) {
        Prim *p = &o->prims[i];
        if (p->op == op && p->lay == lay && p->relu == relu && p->residual == residual &&
            memcmp(&p->s, s, sizeof *s) == 0)
            return p;
    }
    if (o->count == o->cap) {
        int cap = o->cap ? 2 * o->cap : 16;
        Prim *grown = realloc(o->prims, sizeof *grown * cap);
        if (!grown) cpu_die(__FILE__, __LINE__, "out of host memory for oneDNN primitives");
        o->prims = grown;
        o->cap = cap;
    }
    Prim *p = &o->prims[o->count++];
    *p = (Prim){.op = op, .s = *s, .lay = lay, .relu = relu, .residual = residual};
    create(o, p);
    return p;
}

const char *onednn_kernel(Onednn *d, ConvOp op, const ConvShape *s, Layout lay) {
    Prim *p = find(d, op, s, lay, op == CONV_FWD, 0);
    return p->usable ? p->impl : NULL;
}

/* ---- execution ---- */

/* x (NCHW, n samples) -> NHWC in o->xt */
static const float *transposed(Onednn *o, const ConvShape *s, const float *x) {
    const size_t hw = (size_t)s->in_h * s->in_w, C = (size_t)s->in_c, total = (size_t)s->n * C * hw;
    if (total > o->xt_floats) {
        free(o->xt);
        o->xt = aligned_alloc(64, (total * sizeof(float) + 63) / 64 * 64);
        if (!o->xt) cpu_die(__FILE__, __LINE__, "out of host memory for the NHWC input copy");
        o->xt_floats = total;
    }
    float *xt = o->xt;
#pragma omp parallel for schedule(static) num_threads(o->threads)
    for (int n = 0; n < s->n; n++)
        for (size_t c = 0; c < C; c++) {
            const float *src = x + ((size_t)n * C + c) * hw;
            float *dst = xt + (size_t)n * C * hw + c;
            for (size_t i = 0; i < hw; i++) dst[i * C] = src[i];
        }
    return xt;
}

static void run(Onednn *o, Prim *p, const void *src, const void *w, const void *bias, void *dst) {
    int prev = threads_enter(o);
    int filt = p->op == CONV_BWD_FILTER;
    DNN_RUN(dnnl_memory_set_data_handle(p->mem[MEM_SRC], (void *)src));
    DNN_RUN(dnnl_memory_set_data_handle(p->mem[MEM_DST], dst));
    DNN_RUN(dnnl_memory_set_data_handle(p->w_user, (void *)w));
    if (!p->w_reorder) DNN_RUN(dnnl_memory_set_data_handle(p->mem[MEM_WEIGHTS], (void *)w));
    if (p->mem[MEM_BIAS]) DNN_RUN(dnnl_memory_set_data_handle(p->mem[MEM_BIAS], (void *)bias));
    dnnl_exec_arg_t reorder[2] = {{DNNL_ARG_FROM, filt ? p->mem[MEM_WEIGHTS] : p->w_user},
                                  {DNNL_ARG_TO, filt ? p->w_user : p->mem[MEM_WEIGHTS]}};
    if (p->w_reorder && !filt) DNN_RUN(dnnl_primitive_execute(p->w_reorder, o->stream, 2, reorder));
    dnnl_exec_arg_t args[4];
    int n = 0;
    switch (p->op) {
    case CONV_FWD:
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, p->mem[MEM_SRC]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, p->mem[MEM_WEIGHTS]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->mem[MEM_BIAS]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, p->mem[MEM_DST]};
        break;
    case CONV_BWD_DATA:
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, p->mem[MEM_SRC]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, p->mem[MEM_WEIGHTS]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, p->mem[MEM_DST]};
        break;
    default:
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, p->mem[MEM_SRC]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, p->mem[MEM_WEIGHTS]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, p->mem[MEM_BIAS]};
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, p->mem[MEM_DST]};
        break;
    }
    DNN_RUN(dnnl_primitive_execute(p->prim, o->stream, n, args));
    if (p->w_reorder && filt) DNN_RUN(dnnl_primitive_execute(p->w_reorder, o->stream, 2, reorder));
    DNN_RUN(dnnl_stream_wait(o->stream));
    threads_leave(o, prev);
}

int onednn_forward(Onednn *d, const ConvShape *s, Layout lay, const float *x, const float *w,
                   const float *b, const float *residual, int relu, float *y) {
    Prim *p = find(d, CONV_FWD, s, lay, relu != 0, residual != NULL);
    if (!p->usable) return -1;
    if (residual) {  /* the sum post-op adds what y holds */
        const size_t per = (size_t)s->out_h * s->out_w * s->out_c * (d->bf16 ? 2 : sizeof(float));
#pragma omp parallel for schedule(static) num_threads(d->threads)
        for (int n = 0; n < s->n; n++) memcpy((char *)y + n * per, (const char *)residual + n * per, per);
    }
    run(d, p, p->transpose ? transposed(d, s, x) : x, w, b, y);
    return 0;
}

int onednn_backward_data(Onednn *d, const ConvShape *s, const float *dy, const float *w,
                         const float *mask, float *dx) {
    Prim *p = find(d, CONV_BWD_DATA, s, LAYOUT_NHWC, 0, 0);
    if (!p->usable) return -1;
    run(d, p, dx, w, NULL, (void *)dy);
    const size_t total = (size_t)s->n * s->in_h * s->in_w * s->in_c;
    if (mask && d->bf16) {
        cpu_mask_bf16(d->threads, total, (const uint16_t *)mask, (uint16_t *)dx);
    } else if (mask) {  /* zero where mask <= 0; a NaN in the mask lets the gradient through, as PyTorch */
#pragma omp parallel for simd schedule(static) num_threads(d->threads)
        for (size_t i = 0; i < total; i++) dx[i] = mask[i] <= 0.0f ? 0.0f : dx[i];
    }
    return 0;
}

int onednn_backward_filter(Onednn *d, const ConvShape *s, Layout lay, const float *x,
                           const float *dy, float *dw, float *db) {
    Prim *p = find(d, CONV_BWD_FILTER, s, lay, 0, 0);
    if (!p->usable) return -1;
    run(d, p, p->transpose ? transposed(d, s, x) : x, dw, db, (void *)dy);
    return 0;
}
