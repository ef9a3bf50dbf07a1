/* The split and the epoch order (split.h). The unit of the split is a block of
 * split_block (64) consecutive dataset rows; the blocks are put in an order drawn from
 * the seed and cut at the fractions, so the split depends on N, the seed and the block
 * length only; each rank takes a contiguous 1/P of each split; a TRAIN epoch shuffles
 * the rank's rows with a key of (seed, epoch, rank count, rank). */
#include "split.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyed_rng.h"

#define TAG_SPLIT 0x53504c4954ULL   /* "SPLIT" */
#define TAG_SHUFFLE 0x5348554646ULL /* "SHUFF" */
#define SPLIT_BLOCK 64

static const char *const SPLIT_NAME[DATA_SPLITS] = {"training", "validation", "test"};

const char *dataset_split_name(Split s) { return SPLIT_NAME[s]; }

typedef struct { long long start, len; } Block;

/* The blocks of N rows in the order drawn from the seed: block perm[k] comes k-th. */
typedef struct {
    Block *block;
    long long *perm;
    long long n;
} BlockOrder;

/* Fisher-Yates over a[0..n), keyed by key[0..nkey) */
static void shuffle(long long *a, long long n, const uint64_t *key, int nkey) {
    DRng r;
    drng_key(&r, key, nkey);
    for (long long i = n - 1; i > 0; i--) {
        long long j = (long long)drng_below(&r, (uint64_t)i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static int order_blocks(BlockOrder *b, long long N, long long bs, uint64_t seed, const char *path) {
    b->n = (N + bs - 1) / bs;
    b->block = malloc((size_t)b->n * sizeof *b->block);
    b->perm = malloc((size_t)b->n * sizeof *b->perm);
    if (!b->block || !b->perm) return e2e_fail("%s: out of memory for %lld blocks", path, b->n);
    for (long long k = 0; k < b->n; k++) b->block[k] = (Block){k * bs, (k + 1) * bs <= N ? bs : N - k * bs};
    for (long long k = 0; k < b->n; k++) b->perm[k] = k;
    shuffle(b->perm, b->n, (uint64_t[]){seed, TAG_SPLIT}, 2);
    return 0;
}

/* rows at positions [lo, hi) of the blocks' order into out */
static long long collect_rows(const BlockOrder *b, long long lo, long long hi, long long *out) {
    long long v = 0, n = 0;
    for (long long k = 0; k < b->n && v < hi; k++) {
        const Block *bl = &b->block[b->perm[k]];
        long long a = lo > v ? lo - v : 0, e = hi - v < bl->len ? hi - v : bl->len;
        for (long long i = a; i < e; i++) out[n++] = bl->start + i;
        v += bl->len;
    }
    return n;
}

/* where the splits begin and end in the blocks' order: round(fraction sums x N) */
static void cut_points(const double *fractions, long long N, long long cut[DATA_SPLITS + 1]) {
    double acc = 0.0;
    cut[0] = 0;
    for (int s = 0; s < DATA_SPLITS; s++) {
        acc += fractions[s];
        cut[s + 1] = (long long)floor(acc * (double)N + 0.5);
        if (cut[s + 1] > N) cut[s + 1] = N;
        if (cut[s + 1] < cut[s]) cut[s + 1] = cut[s];
    }
}

/* each split's size and this rank's contiguous share of its rows */
static int take_shares(SplitRows *sp, const BlockOrder *b, const long long *cut, int rank, int nranks,
                       const char *path) {
    for (int s = 0; s < DATA_SPLITS; s++) {
        long long tot = cut[s + 1] - cut[s];
        long long lo = cut[s] + tot * rank / nranks, hi = cut[s] + tot * (rank + 1) / nranks;
        sp->total[s] = tot;
        sp->nlocal[s] = hi - lo;
        sp->local[s] = malloc((size_t)(hi > lo ? hi - lo : 1) * sizeof **sp->local);
        if (!sp->local[s]) return e2e_fail("%s: out of memory for the split", path);
        collect_rows(b, lo, hi, sp->local[s]);
    }
    return 0;
}

/* the fewest rows with which every split asked for (fraction > 0) gets at least `each`
 * rows (0 when no count up to 10^9 does) */
static long long rows_needed(const double *fractions, long long each) {
    long long cut[DATA_SPLITS + 1];
    for (long long N = 1; N <= 1000000000LL; N += N < 100000 ? 1 : N / 1000) {
        cut_points(fractions, N, cut);
        int ok = 1;
        for (int s = 0; s < DATA_SPLITS; s++) ok &= fractions[s] <= 0.0 || cut[s + 1] - cut[s] >= each;
        if (ok) return N;
    }
    return 0;
}

/* a split asked for (fraction > 0) has rows, at least one a rank; the message says how
 * many jets the fractions need (e2e-train and e2e-eval take the default 90/5/5) */
static int check_sizes(const SplitRows *sp, const DatasetOptions *o, long long N, int nranks) {
    for (int s = 0; s < DATA_SPLITS; s++) {
        if (o->fractions[s] <= 0.0 || sp->total[s] >= nranks) continue;
        char need[160];
        long long min_rows = rows_needed(o->fractions, nranks);
        snprintf(need, sizeof need, "the split takes %g/%g/%g of the jets, so %d rank%s need%s at least %lld jets: use a "
                 "larger file or a list of files", o->fractions[0], o->fractions[1], o->fractions[2], nranks,
                 nranks == 1 ? "" : "s", nranks == 1 ? "s" : "", min_rows);
        if (sp->total[s] == 0)
            return e2e_fail("%s: the %s split is empty (%lld rows x %g rounds to 0 rows); %s", o->path, SPLIT_NAME[s],
                            N, o->fractions[s], need);
        return e2e_fail("%s: more ranks than samples: the %s split has %lld row%s for %d ranks; %s%s", o->path,
                        SPLIT_NAME[s], sp->total[s], sp->total[s] == 1 ? "" : "s", nranks, need,
                        ", or run on fewer ranks");
    }
    return 0;
}

int split_make(SplitRows *sp, const DatasetOptions *o, long long N, int rank, int nranks,
               long long **train_rows) {
    BlockOrder b = {0};
    long long cut[DATA_SPLITS + 1];
    *train_rows = NULL;
    int rc = order_blocks(&b, N, o->split_block ? o->split_block : SPLIT_BLOCK, o->seed, o->path);
    cut_points(o->fractions, N, cut);
    if (!rc) rc = take_shares(sp, &b, cut, rank, nranks, o->path);
    if (!rc && o->unbias == DATA_UNBIAS_WEIGHTS) { /* every rank needs the whole training split's masses */
        *train_rows = malloc((size_t)(sp->total[SPLIT_TRAIN] ? sp->total[SPLIT_TRAIN] : 1) * sizeof **train_rows);
        if (!*train_rows) rc = e2e_fail("%s: out of memory for the split", o->path);
        else collect_rows(&b, cut[0], cut[1], *train_rows);
    }
    free(b.block);
    free(b.perm);
    if (!rc) rc = check_sizes(sp, o, N, nranks);
    if (rc) return rc;
    /* a training split of fewer rows a rank than the batch gives 0 training steps: the
     * trainer refuses that; evaluation does not care */
    for (int s = 0; s < DATA_SPLITS; s++)
        sp->steps[s] = s == SPLIT_TRAIN ? (long)(sp->total[s] / nranks / o->batch)
                                        : (long)((sp->nlocal[s] + o->batch - 1) / o->batch);
    return 0;
}

void split_free(SplitRows *sp) {
    for (int s = 0; s < DATA_SPLITS; s++) free(sp->local[s]);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

long long *split_rank_rows(const SplitRows *sp, long long *n) {
    *n = sp->nlocal[SPLIT_TRAIN] + sp->nlocal[SPLIT_VAL] + sp->nlocal[SPLIT_TEST];
    long long *rows = malloc((size_t)(*n ? *n : 1) * sizeof *rows), at = 0;
    for (int s = 0; rows && s < DATA_SPLITS; at += sp->nlocal[s], s++)
        memcpy(rows + at, sp->local[s], (size_t)sp->nlocal[s] * sizeof *rows);
    if (rows) qsort(rows, (size_t)*n, sizeof *rows, cmp_ll);
    return rows;
}

/* ---- the epoch ---- */

int epoch_alloc(Epoch *e, const SplitRows *sp) {
    e->split = -1;
    e->order = malloc((size_t)(sp->nlocal[SPLIT_TRAIN] + sp->nlocal[SPLIT_VAL] + sp->nlocal[SPLIT_TEST] + 1) *
                      sizeof *e->order);
    return e->order ? 0 : -1;
}

void epoch_free(Epoch *e) { free(e->order); }

void epoch_begin(Epoch *e, const SplitRows *sp, int s, uint64_t seed, long epoch, int rank, int nranks,
                 long first_step) {
    memcpy(e->order, sp->local[s], (size_t)sp->nlocal[s] * sizeof *e->order);
    if (s == SPLIT_TRAIN)
        shuffle(e->order, sp->nlocal[s], (uint64_t[]){seed, TAG_SHUFFLE, (uint64_t)epoch, (uint64_t)nranks,
                                                      (uint64_t)rank}, 5);
    e->split = s;
    e->n = sp->nlocal[s];
    e->steps = sp->steps[s];
    e->next = first_step;
    e->failed = 0;
}

const long long *epoch_step_rows(const Epoch *e, int batch, long step, long long *n) {
    const long long B = batch, first = step * B;
    *n = e->split == SPLIT_TRAIN ? B : (e->n - first < B ? e->n - first : B);
    return e->order + first;
}
