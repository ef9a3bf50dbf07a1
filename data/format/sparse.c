/* One jet in the sparse layout (sparse.h): encode, decode, check, densify through
 * prep_pixel, and its values into the scale histogram. */
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

long long sparse_count_entries(const SparseGeom *g, const void *row) {
    long long n = 0, values = g->channels * g->hw;
    if (g->value_bytes == 4)
        for (long long p = 0; p < values; p++) n += ((const uint32_t *)row)[p] != 0;
    else
        for (long long p = 0; p < values; p++) n += ((const uint16_t *)row)[p] != 0;
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

/* entries [k, k + m) of one plane, their values v[0..m) as float32 */
static long long scatter(const SparseGeom *g, const void *pos, long long k, long long m, const float *v, int c,
                         const float *factors, int kind, float zero_suppress, float *out, uint32_t *touched,
                         uint32_t touched_base) {
    float *plane = out + c * g->hw;
    const float factor = factors ? factors[c] : 1.0f;
    long long bad = 0;
    for (long long i = 0; i < m; i++) {
        uint32_t p = pos_at(pos, g->pos_bytes, k + i);
        bad += !(fabsf(v[i]) <= FLT_MAX);
        plane[p] = factors ? prep_pixel(v[i], factor, kind, zero_suppress) : v[i];
        if (touched) touched[k + i] = touched_base + (uint32_t)(c * g->hw) + p;
    }
    return bad;
}

long long sparse_densify(const SparseGeom *g, const uint32_t *counts, const void *pos, const void *value,
                         const float *factors, const unsigned char *kinds, float zero_suppress, float *out,
                         uint32_t *touched, uint32_t touched_base) {
    long long k = 0, bad = 0;
    float buf[256]; /* binary16 values decoded a piece at a time (F16C where there is AVX2) */
    for (int c = 0; c < g->channels; c++) {
        for (long long i = 0; i < counts[c];) {
            long long m = g->value_bytes == 4 ? counts[c] - i : (counts[c] - i < 256 ? counts[c] - i : 256);
            if (g->value_bytes == 2) half_to_float_n((const uint16_t *)value + k, buf, (size_t)m);
            const float *v = g->value_bytes == 2 ? buf : (const float *)value + k;
            bad += scatter(g, pos, k, m, v, c, factors, kinds ? kinds[c] : CHANNEL_ENERGY, zero_suppress, out,
                           touched, touched_base);
            k += m, i += m;
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
