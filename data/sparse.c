#include "sparse.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "half.h"

int sparse_pos_bytes(long long hw) { return hw <= 65536 ? 2 : 4; }

static inline uint32_t pos_at(const void *pos, int bytes, long long k) {
    return bytes == 2 ? ((const uint16_t *)pos)[k] : ((const uint32_t *)pos)[k];
}

static inline void pos_put(void *pos, int bytes, long long k, uint32_t p) {
    if (bytes == 2) ((uint16_t *)pos)[k] = (uint16_t)p;
    else ((uint32_t *)pos)[k] = p;
}

static inline float value_at(const void *value, int bytes, long long k) {
    return bytes == 2 ? half_to_float(((const uint16_t *)value)[k]) : ((const float *)value)[k];
}

long long sparse_encode(const SparseGeom *g, const void *row, uint32_t *counts, void *pos, void *value) {
    long long n = 0;
    for (int c = 0; c < g->channels; c++) {
        long long first = n;
        if (g->value_bytes == 4) {
            const uint32_t *v = (const uint32_t *)row + c * g->hw; /* the bits: -0.0 is not zero */
            for (long long p = 0; p < g->hw; p++)
                if (v[p]) {
                    pos_put(pos, g->pos_bytes, n, (uint32_t)p);
                    ((uint32_t *)value)[n++] = v[p];
                }
        } else {
            const uint16_t *v = (const uint16_t *)row + c * g->hw;
            for (long long p = 0; p < g->hw; p++)
                if (v[p]) {
                    pos_put(pos, g->pos_bytes, n, (uint32_t)p);
                    ((uint16_t *)value)[n++] = v[p];
                }
        }
        counts[c] = (uint32_t)(n - first);
    }
    return n;
}

void sparse_decode(const SparseGeom *g, const uint32_t *counts, const void *pos, const void *value,
                   void *row) {
    memset(row, 0, (size_t)(g->channels * g->hw * g->value_bytes));
    long long k = 0;
    for (int c = 0; c < g->channels; c++) {
        char *plane = (char *)row + (size_t)(c * g->hw * g->value_bytes);
        for (uint32_t i = 0; i < counts[c]; i++, k++)
            memcpy(plane + (size_t)pos_at(pos, g->pos_bytes, k) * g->value_bytes,
                   (const char *)value + (size_t)k * g->value_bytes, (size_t)g->value_bytes);
    }
}

int sparse_check(const SparseGeom *g, const uint32_t *counts, const void *pos, int *channel,
                 long long *entry, const char **why) {
    long long k = 0;
    for (int c = 0; c < g->channels; c++) {
        long long prev = -1;
        for (uint32_t i = 0; i < counts[c]; i++, k++) {
            long long p = pos_at(pos, g->pos_bytes, k);
            if (p < g->hw && p > prev) {
                prev = p;
                continue;
            }
            *channel = c;
            *entry = k;
            *why = p >= g->hw ? "position out of range" : "positions not increasing";
            return -1;
        }
    }
    return 0;
}

long long sparse_densify(const SparseGeom *g, const uint32_t *counts, const void *pos, const void *value,
                         const float *factors, float zero_suppress, float *out, uint32_t *touched,
                         uint32_t touched_base) {
    long long k = 0, bad = 0;
    for (int c = 0; c < g->channels; c++) {
        float *plane = out + c * g->hw;
        const float factor = factors ? factors[c] : 1.0f;
        for (uint32_t i = 0; i < counts[c]; i++, k++) {
            uint32_t p = pos_at(pos, g->pos_bytes, k);
            float v = value_at(value, g->value_bytes, k);
            bad += !(fabsf(v) <= FLT_MAX);
            plane[p] = factors ? preprocess_pixel(v, factor, zero_suppress) : v;
            if (touched) touched[k] = touched_base + (uint32_t)(c * g->hw) + p;
        }
    }
    return bad;
}

void sparse_hist_add(PixelHist *h, const SparseGeom *g, const uint32_t *counts, const void *value,
                     float *scratch) {
    long long k = 0;
    for (int c = 0; c < g->channels; c++) {
        const float *v = (const float *)value + k;
        if (g->value_bytes == 2) {
            half_to_float_n((const uint16_t *)value + k, scratch, counts[c]);
            v = scratch;
        }
        pixel_hist_add_values(h, c, v, counts[c], g->hw - counts[c]);
        k += counts[c];
    }
}
