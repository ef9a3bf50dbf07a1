/* Which rows are training, validation and test, which of them are this rank's, and in
 * which order an epoch visits them: the split by blocks of consecutive rows drawn from
 * the seed, each rank's contiguous share of each split, the per-epoch shuffle. Internal
 * to the reader (data/README.md: split, order). */
#ifndef E2E_DATA_SPLIT_H
#define E2E_DATA_SPLIT_H

#include "dataset.h"
#include "error.h"

typedef struct {
    long long total[DATA_SPLITS];  /* rows of each split, all ranks */
    long long nlocal[DATA_SPLITS]; /* this rank's share of each */
    long long *local[DATA_SPLITS]; /* this rank's rows of each, in split order */
    long steps[DATA_SPLITS];       /* steps of an epoch of each */
} SplitRows;

/* The split of N rows by o's seed, fractions and split_block, this rank's share of
 * each split and the steps of an epoch for o->batch. With o->unbias weights, *train_rows gets
 * the whole training split's rows (every rank needs their masses; the caller frees
 * them), else NULL. Local result (the same on every rank but for memory). */
int split_make(SplitRows *sp, const DatasetOptions *o, long long N, int rank, int nranks,
               long long **train_rows);
void split_free(SplitRows *sp);
/* this rank's rows of every split, increasing (*n of them); NULL when out of memory */
long long *split_rank_rows(const SplitRows *sp, long long *n);

/* An epoch: this rank's rows of one split in the order the epoch visits them. */
typedef struct {
    int split;            /* -1 before the first epoch */
    long long *order;     /* this epoch's rows (room for the largest split) */
    long long n;          /* rows in order */
    long steps, next;     /* steps of the epoch, the step dataset_next reads next */
    int failed;           /* a batch failed: the epoch stays failed, with fail_msg */
    char fail_msg[E2E_ERROR_LEN];
} Epoch;

int epoch_alloc(Epoch *e, const SplitRows *sp); /* -1 when out of memory (no message) */
void epoch_free(Epoch *e);
/* Split s's rows in epoch `epoch`'s order from step first_step: TRAIN shuffled, a
 * function of (seed, epoch, nranks, rank) only; VAL/TEST in split order. */
void epoch_begin(Epoch *e, const SplitRows *sp, int s, uint64_t seed, long epoch, int rank, int nranks,
                 long first_step);
/* the rows of step `step` of batches of `batch` rows, *n of them (a TRAIN step is
 * always whole; the last VAL/TEST step may be short) */
const long long *epoch_step_rows(const Epoch *e, int batch, long step, long long *n);

#endif
