/* A cuDNN handle for the emulated device. The descriptors are the real libcudnn's (their
 * setters and getters need no GPU and validate their arguments); this file reads them
 * back, checks what the legacy convolution API requires (NHWC tensors and KRSC filters
 * here, matching types, float compute type, the output's shape, device memory, an
 * algorithm that can run the shape, enough workspace) and runs the three passes as loops
 * on its stream: float or bf16 operands, float sums (tf32 math runs as fp32). The
 * algorithm lists come from emu_cudnn_algos.cpp. cudnnFind*AlgorithmEx runs the pass
 * and waits for the stream, so it is refused during a capture (the capture is then
 * invalidated): an emulator's choice, cuDNN's own behaviour there is what a GPU shows. */
#include <cuda_bf16.h>
#include <cudnn.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "emu_cudnn.h"
#include "emu_internal.h"

struct cudnnContext {
    cudaStream_t stream = 0;
};

namespace {

using emu::Conv;

cudnnStatus_t describe(cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t cv,
                       cudnnTensorDescriptor_t y, Conv *d) {
    cudnnDataType_t dt, wdt, ct, ydt;
    cudnnTensorFormat_t fmt;
    cudnnConvolutionMode_t mode;
    int ns, cs, hs, ws, pw, sw, dh, dw, c, groups = 1, yn, yc, yh, yw, a, b, e, f;
    if (cudnnGetTensor4dDescriptor(x, &dt, &d->n, &d->c, &d->h, &d->w, &ns, &cs, &hs, &ws) ||
        cudnnGetFilter4dDescriptor(wd, &wdt, &fmt, &d->k, &c, &d->r, &d->s) ||
        cudnnGetConvolution2dDescriptor(cv, &d->pad, &pw, &d->stride, &sw, &dh, &dw, &mode, &ct) ||
        cudnnGetConvolutionMathType(cv, &d->math) || cudnnGetConvolutionGroupCount(cv, &groups) ||
        cudnnGetTensor4dDescriptor(y, &ydt, &yn, &yc, &yh, &yw, &a, &b, &e, &f))
        return CUDNN_STATUS_BAD_PARAM;
    if (cs != 1 || ws != d->c || hs != d->w * d->c || fmt != CUDNN_TENSOR_NHWC || b != 1 || f != yc)
        emu::fail("not modelled: a convolution on other than packed NHWC tensors and KRSC filters");
    if (dt != wdt || dt != ydt || (dt != CUDNN_DATA_FLOAT && dt != CUDNN_DATA_BFLOAT16) || ct != CUDNN_DATA_FLOAT ||
        c != d->c || groups != 1 || pw != d->pad || sw != d->stride || dh != 1 || dw != 1 ||
        mode != CUDNN_CROSS_CORRELATION)
        return CUDNN_STATUS_BAD_PARAM;
    d->dt = dt;
    d->oh = (d->h + 2 * d->pad - d->r) / d->stride + 1;
    d->ow = (d->w + 2 * d->pad - d->s) / d->stride + 1;
    if (yn != d->n || yc != d->k || yh != d->oh || yw != d->ow) return CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH;
    return CUDNN_STATUS_SUCCESS;
}

size_t elem(const Conv &d) { return d.dt == CUDNN_DATA_BFLOAT16 ? 2 : 4; }
size_t x_count(const Conv &d) { return (size_t)d.n * d.h * d.w * d.c; }
size_t w_count(const Conv &d) { return (size_t)d.k * d.r * d.s * d.c; }
size_t y_count(const Conv &d) { return (size_t)d.n * d.oh * d.ow * d.k; }

/* ---- the passes as loops (emu_cudnn.cpp is built with reassociation allowed, so the
 * channel sums vectorize; the order is fixed, so results repeat bitwise) ---- */

/* calls f(input row, output row, r, s) for every (output pixel, filter tap) of sample n
 * that falls inside the input */
template <class F>
void each_tap(const Conv &d, int n, F f) {
    for (int p = 0; p < d.oh; p++)
        for (int q = 0; q < d.ow; q++)
            for (int r = 0; r < d.r; r++) {
                int ih = p * d.stride - d.pad + r;
                if (ih < 0 || ih >= d.h) continue;
                for (int s = 0; s < d.s; s++) {
                    int iw = q * d.stride - d.pad + s;
                    if (iw >= 0 && iw < d.w)
                        f((((size_t)n * d.h + ih) * d.w + iw) * d.c, (((size_t)n * d.oh + p) * d.ow + q) * d.k, r, s);
                }
            }
}

/* out (float, zeroed) = pass(a, b): fwd y = conv(x, w); bwd data dx from (w, dy); bwd
 * filter dw from (x, dy), summed per sample first and then over the samples (a GPU
 * splits that long sum too: one float running sum over every pixel of a large batch
 * loses more than cuDNN does) */
void run_pass(int pass, const Conv &d, const float *a, const float *b, float *out) {
    const int C = d.c, K = d.k;
    auto tap = [&](size_t k, int r, int s) { return ((k * d.r + r) * d.s + s) * C; };
    std::vector<float> part(pass == emu::PASS_BWD_FILTER ? w_count(d) : 0);
    for (int n = 0; n < d.n; n++) {
        std::fill(part.begin(), part.end(), 0.0f);
        each_tap(d, n, [&](size_t xo, size_t yo, int r, int s) {
            for (int k = 0; k < K; k++) {
                size_t wo = tap(k, r, s);
                if (pass == emu::PASS_FWD) {
                    float acc = 0.0f;
                    for (int c = 0; c < C; c++) acc += a[xo + c] * b[wo + c];
                    out[yo + k] += acc;
                } else if (pass == emu::PASS_BWD_DATA) {
                    float g = b[yo + k];
                    for (int c = 0; c < C; c++) out[xo + c] += g * a[wo + c];
                } else {
                    float g = b[yo + k];
                    for (int c = 0; c < C; c++) part[wo + c] += g * a[xo + c];
                }
            }
        });
        for (size_t i = 0; i < part.size(); i++) out[i] += part[i];
    }
}

const float *as_float(const void *p, size_t n, cudnnDataType_t dt, std::vector<float> &buf) {
    if (dt == CUDNN_DATA_FLOAT) return (const float *)p;
    buf.resize(n);
    for (size_t i = 0; i < n; i++) buf[i] = __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return buf.data();
}

/* out = alpha * v + beta * out, in out's type (bf16 rounded to nearest) */
void store(void *out, const std::vector<float> &v, cudnnDataType_t dt, float alpha, float beta) {
    for (size_t i = 0; i < v.size(); i++) {
        if (dt == CUDNN_DATA_FLOAT) {
            float *o = (float *)out + i;
            *o = alpha * v[i] + (beta != 0.0f ? beta * *o : 0.0f);
        } else {
            __nv_bfloat16 *o = (__nv_bfloat16 *)out + i;
            *o = __float2bfloat16(alpha * v[i] + (beta != 0.0f ? beta * __bfloat162float(*o) : 0.0f));
        }
    }
}

/* The pass's operands: (x, w) -> y, (w, dy) -> dx, (x, dy) -> dw, with their sizes. */
void counts(int pass, const Conv &d, size_t *na, size_t *nb, size_t *nout) {
    *na = pass == emu::PASS_BWD_DATA ? w_count(d) : x_count(d);
    *nb = pass == emu::PASS_FWD ? w_count(d) : y_count(d);
    *nout = pass == emu::PASS_FWD ? y_count(d) : pass == emu::PASS_BWD_DATA ? x_count(d) : w_count(d);
}

/* Enqueues the pass on h's stream after checking that every operand is device memory. */
cudnnStatus_t enqueue_pass(cudnnHandle_t h, int pass, const Conv &d, const void *a, const void *b, void *out,
                           float alpha, float beta) {
    size_t na, nb, nout, e = elem(d);
    counts(pass, d, &na, &nb, &nout);
    if (emu::kind_of(a, na * e) != emu::MEM_DEVICE || emu::kind_of(b, nb * e) != emu::MEM_DEVICE ||
        emu::kind_of(out, nout * e) != emu::MEM_DEVICE)
        emu::fail("cuDNN pass %d: an operand is not (wholly) device memory: a GPU would fault", pass);
    cudaError_t err = emu::enqueue(h->stream, emu::Work{[=] {
        std::vector<float> ba, bb, acc(nout, 0.0f);
        run_pass(pass, d, as_float(a, na, d.dt, ba), as_float(b, nb, d.dt, bb), acc.data());
        store(out, acc, d.dt, alpha, beta);
    }, nullptr});
    return err == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED_CUDART;
}

template <class P>
void fill(const std::vector<emu::Algo> &list, int want, int *got, P *out) {
    *got = std::min(want, (int)list.size());
    for (int i = 0; i < *got; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].algo = (decltype(out[i].algo))list[i].algo;
        out[i].status = list[i].status;
        out[i].time = list[i].time;
        out[i].memory = list[i].memory;
        out[i].determinism = list[i].determinism;
        out[i].mathType = list[i].math;
    }
}

template <class P>
cudnnStatus_t heuristics(int pass, const Conv &d, cudnnStatus_t st, int want, int *got, P *out) {
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (!got || !out || want < 1) return CUDNN_STATUS_BAD_PARAM;
    fill(emu::algorithms(pass, d, emu::FROM_HEURISTICS), want, got, out);
    return CUDNN_STATUS_SUCCESS;
}

/* The timed search: runs the pass into out (as cuDNN's runs do), waits for the stream,
 * and lists the algorithms; those that need more than the given workspace did not run. */
template <class P>
cudnnStatus_t find(cudnnHandle_t h, int pass, const Conv &d, cudnnStatus_t st, const void *a, const void *b, void *out,
                   int want, int *got, P *res, void *ws, size_t wsb) {
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (!got || !res || want < 1) return CUDNN_STATUS_BAD_PARAM;
    if (emu::capturing(h->stream)) {  /* it synchronises the stream: refused inside a capture */
        emu::invalidate_capture(h->stream);
        return CUDNN_STATUS_EXECUTION_FAILED_CUDART;
    }
    if (wsb && emu::kind_of(ws, wsb) != emu::MEM_DEVICE) return CUDNN_STATUS_BAD_PARAM;
    st = enqueue_pass(h, pass, d, a, b, out, 1.0f, 0.0f);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    emu::drain(h->stream);
    std::vector<emu::Algo> list = emu::algorithms(pass, d, emu::FROM_FIND);
    for (emu::Algo &x : list)
        if (x.status == CUDNN_STATUS_SUCCESS && x.memory > wsb)
            x.status = CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED, x.time = -1.0f;
    std::stable_partition(list.begin(), list.end(), [](const emu::Algo &x) { return x.status == CUDNN_STATUS_SUCCESS; });
    fill(list, want, got, res);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t execute(cudnnHandle_t h, int pass, const Conv &d, cudnnStatus_t st, int algo, const void *alpha,
                      const void *a, const void *b, const void *beta, void *out, void *ws, size_t wsb) {
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (!alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    st = emu::can_run(pass, d, algo, wsb);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (wsb && emu::kind_of(ws, wsb) != emu::MEM_DEVICE)
        emu::fail("cuDNN pass %d: the workspace is not %zu bytes of device memory", pass, wsb);
    return enqueue_pass(h, pass, d, a, b, out, *(const float *)alpha, *(const float *)beta);
}

}  // namespace

extern "C" {

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    int n = 0;
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        return CUDNN_STATUS_NOT_INITIALIZED;
    }
    *h = new cudnnContext;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
    delete h;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    if (!h) return CUDNN_STATUS_BAD_PARAM;
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t h, cudaStream_t *s) {
    if (!h || !s) return CUDNN_STATUS_BAD_PARAM;
    *s = h->stream;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t x, cudnnFilterDescriptor_t w,
                                                     cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t y, int want,
                                                     int *got, cudnnConvolutionFwdAlgoPerf_t *out) {
    Conv d;
    return heuristics(emu::PASS_FWD, d, describe(x, w, cv, y, &d), want, got, out);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, cudnnFilterDescriptor_t w,
                                                          cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv,
                                                          cudnnTensorDescriptor_t dx, int want, int *got,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *out) {
    Conv d;
    return heuristics(emu::PASS_BWD_DATA, d, describe(dx, w, cv, dy, &d), want, got, out);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t x,
                                                            cudnnTensorDescriptor_t dy, cudnnConvolutionDescriptor_t cv,
                                                            cudnnFilterDescriptor_t dw, int want, int *got,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *out) {
    Conv d;
    return heuristics(emu::PASS_BWD_FILTER, d, describe(x, dw, cv, dy, &d), want, got, out);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t h, cudnnTensorDescriptor_t xd, const void *x,
                                                     cudnnFilterDescriptor_t wd, const void *w,
                                                     cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t yd,
                                                     void *y, int want, int *got, cudnnConvolutionFwdAlgoPerf_t *out,
                                                     void *ws, size_t wsb) {
    Conv d;
    return find(h, emu::PASS_FWD, d, describe(xd, wd, cv, yd, &d), x, w, y, want, got, out, ws, wsb);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t h, cudnnFilterDescriptor_t wd, const void *w,
                                                          cudnnTensorDescriptor_t dyd, const void *dy,
                                                          cudnnConvolutionDescriptor_t cv, cudnnTensorDescriptor_t dxd,
                                                          void *dx, int want, int *got,
                                                          cudnnConvolutionBwdDataAlgoPerf_t *out, void *ws, size_t wsb) {
    Conv d;
    return find(h, emu::PASS_BWD_DATA, d, describe(dxd, wd, cv, dyd, &d), w, dy, dx, want, got, out, ws, wsb);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t h, cudnnTensorDescriptor_t xd, const void *x,
                                                            cudnnTensorDescriptor_t dyd, const void *dy,
                                                            cudnnConvolutionDescriptor_t cv, cudnnFilterDescriptor_t dwd,
                                                            void *dw, int want, int *got,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t *out, void *ws,
                                                            size_t wsb) {
    Conv d;
    return find(h, emu::PASS_BWD_FILTER, d, describe(xd, dwd, cv, dyd, &d), x, dy, dw, want, got, out, ws, wsb);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w, cudnnConvolutionDescriptor_t cv,
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t wsb, const void *beta,
                                      cudnnTensorDescriptor_t yd, void *y) {
    Conv d;
    return execute(h, emu::PASS_FWD, d, describe(xd, wd, cv, yd, &d), algo, alpha, x, w, beta, y, ws, wsb);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, cudnnFilterDescriptor_t wd, const void *w,
                                           cudnnTensorDescriptor_t dyd, const void *dy, cudnnConvolutionDescriptor_t cv,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws, size_t wsb, const void *beta,
                                           cudnnTensorDescriptor_t dxd, void *dx) {
    Conv d;
    return execute(h, emu::PASS_BWD_DATA, d, describe(dxd, wd, cv, dyd, &d), algo, alpha, w, dy, beta, dx, ws, wsb);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t xd,
                                             const void *x, cudnnTensorDescriptor_t dyd, const void *dy,
                                             cudnnConvolutionDescriptor_t cv, cudnnConvolutionBwdFilterAlgo_t algo,
                                             void *ws, size_t wsb, const void *beta, cudnnFilterDescriptor_t dwd,
                                             void *dw) {
    Conv d;
    return execute(h, emu::PASS_BWD_FILTER, d, describe(xd, dwd, cv, dyd, &d), algo, alpha, x, dy, beta, dw, ws, wsb);
}

}  // extern "C"
