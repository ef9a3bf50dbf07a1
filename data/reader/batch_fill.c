/* Filling a slot with one batch (batch_fill.h). A slot's x is cleared for rows of sparse
 * files at the cost of the pixels the last fill wrote (touched), not whole: a jet costs
 * its entries, not its pixels. */
#include "batch_fill.h"

#include <string.h>

#include "half.h"
#include "preprocess.h"
#include "sparsefile.h"

/* rows[0..n) of one sparse file densified into batch rows at..at+n of s->x,
 * preprocessed on the way (the dense path's rule, sparse_densify) unless the reader
 * does not preprocess; the pixels written are recorded in s->ent.touched */
static int densify_rows(const BatchFill *bf, Slot *s, const long long *rows, long long n, long long at) {
    SlotEntries *t = &s->ent;
    const JetFile *f = rows_read_sparse(bf->rows, rows, n, s->lrows, t->pos, t->value);
    if (!f) return -1;
    const struct SparseFile *sf = f->sparse;
    const char *p = t->pos, *v = t->value;
    const float *factor = bf->info->preprocessed ? bf->scaling->factor : NULL;
    for (long long j = 0; j < n; j++) {
        long long r = s->lrows[j], e = sparsefile_row_entries(sf, r), base = (at + j) * bf->rows->row_floats;
        uint32_t *touched = t->touched ? t->touched + t->n_touched : NULL;
        long long bad = sparse_densify(&sf->g, sf->counts + r * f->c, p, v, factor, bf->info->channel_kinds,
                                       bf->scaling->prep.threshold, s->x + base, touched, (uint32_t)base);
        if (touched) t->n_touched += e;
        if (bad) return rows_reject_nonfinite(bf->rows, rows[j], bad);
        p += e * sf->g.pos_bytes;
        v += e * sf->g.value_bytes;
    }
    return 0;
}

/* x of a slot that sparse rows will fill: zero, at the cost of the pixels written last */
static void clear_x(const BatchFill *bf, Slot *s) {
    SlotEntries *t = &s->ent;
    if (!t->x_clean) memset(s->x, 0, (size_t)(bf->batch * bf->rows->row_floats) * sizeof *s->x);
    else
        for (long long i = 0; i < t->n_touched; i++) s->x[t->touched[i]] = 0.0f;
    t->n_touched = 0;
    t->x_clean = t->touched != NULL;
}

/* an x_sparse batch (every file sparse): the entries of rows[0..n) as stored, and the
 * planes' starts */
static int fill_entries(const BatchFill *bf, Slot *s, const long long *rows, long long n) {
    const struct SparseFile *sf0 = bf->rows->file[0].sparse;
    const int C = bf->info->channels, pb = sf0->g.pos_bytes, vb = sf0->g.value_bytes;
    SlotEntries *t = &s->ent;
    long long e = 0;
    t->plane_start[0] = 0;
    for (long long i = 0; i < n;) {
        long long k = rows_same_file(bf->rows, rows + i, n - i);
        const JetFile *f = rows_read_sparse(bf->rows, rows + i, k, s->lrows, t->pos + e * pb, t->value + e * vb);
        if (!f) return -1;
        for (long long j = 0; j < k; j++) {
            const uint32_t *cnt = f->sparse->counts + s->lrows[j] * C;
            long long e0 = e;
            for (int c = 0; c < C; c++) {
                e += cnt[c];
                t->plane_start[(i + j) * C + c + 1] = (uint32_t)e;
            }
            long long bad = values_nonfinite(t->value + e0 * vb, e - e0, vb);
            if (bad) return rows_reject_nonfinite(bf->rows, rows[i + j], bad);
        }
        i += k;
    }
    s->sparse = (SparseImages){e, t->plane_start, t->pos, t->value, pb, vb};
    return 0;
}

/* k consecutive dense rows rows[0..k) into batch rows at..at+k: kept as stored
 * (x_half: only the NaN/Inf check reads them), or as float32, preprocessed while in
 * cache unless the reader does not preprocess */
static int fill_dense_run(const BatchFill *bf, Slot *s, const long long *rows, long long k, long long at) {
    const RowFiles *rf = bf->rows;
    const long long hw = (long long)bf->info->height * bf->info->width;
    if (bf->info->x_half) {
        uint16_t *h = (uint16_t *)s->stage + at * rf->row_floats;
        if (rows_read(rf, rows, k, NULL, h, s->lrows, rf->dxpl_ind)) return -1;
        for (long long j = 0; j < k; j++) {
            long long bad = half_count_nonfinite(h + j * rf->row_floats, (size_t)rf->row_floats);
            if (bad) return rows_reject_nonfinite(rf, rows[j], bad);
        }
        return 0;
    }
    if (rows_read(rf, rows, k, s->x + at * rf->row_floats, s->stage, s->lrows, rf->dxpl_ind)) return -1;
    for (long long j = 0; j < k; j++) {
        float *xj = s->x + (at + j) * rf->row_floats;
        long long bad = bf->info->preprocessed
                            ? preprocess_images(xj, 1, bf->info->channels, hw, bf->scaling->scale,
                                                bf->info->channel_kinds, bf->scaling->prep.threshold)
                            : count_nonfinite(xj, rf->row_floats, NULL);
        if (bad) return rows_reject_nonfinite(rf, rows[j], bad);
    }
    return 0;
}

/* rows[0..n) into the slot's images: dense rows a run of adjacent rows (up to ~2 MB)
 * at a time, preprocessed while still in cache (one pass over memory instead of two);
 * rows of sparse files densified, every row of the batch in one file at once */
static int fill_images(const BatchFill *bf, Slot *s, const long long *rows, long long n) {
    const RowFiles *rf = bf->rows;
    if (bf->info->x_sparse) return fill_entries(bf, s, rows, n);
    if (bf->info->sparse_files) clear_x(bf, s);
    const long long run_max = ((2LL << 20) / (rf->row_floats * 4)) + 1;
    for (long long i = 0; i < n;) {
        if (rf->file[rows_file_of(rf, rows[i])].sparse) {
            long long k = rows_same_file(rf, rows + i, n - i);
            if (densify_rows(bf, s, rows + i, k, i)) return -1;
            i += k;
            continue;
        }
        long long k = rows_run_length(rows + i, rows_same_file(rf, rows + i, n - i), run_max);
        s->ent.x_clean = 0; /* a dense row fills every pixel */
        if (fill_dense_run(bf, s, rows + i, k, i)) return -1;
        i += k;
    }
    return 0;
}

int batch_fill(const BatchFill *bf, Slot *s, const long long *rows, long long n) {
    s->n = (int)n;
    if (fill_images(bf, s, rows, n)) {
        s->ent.x_clean = 0; /* which pixels a failed fill wrote is not known */
        return -1;
    }
    const int S = bf->info->n_scalars;
    const float *m = bf->cols->m;
    for (long long i = 0; i < n; i++) {
        long long g = rows[i];
        for (int k = 0; k < S; k++) s->scalars[i * S + k] = bf->cols->scalars[g * S + k];
        const float label = bf->cols->label ? bf->cols->label[g] : 0.0f;
        s->mass[i] = m[g];
        s->target[i] = bf->cols->label ? label : m[g] / bf->mass_scale;
        s->index[i] = g;
        if (bf->weights->bin) s->weight[i] = weights_of(bf->weights, m[g], label);
    }
    return 0;
}
