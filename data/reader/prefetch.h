/* The prefetch ring: prefetch + 1 slots that a thread fills ahead of the caller, step k
 * of the epoch into slot k % n, or, with no thread, one slot the caller fills itself
 * when it asks. The thread calls neither HDF5 nor MPI (data/README.md, I/O), so it runs
 * only where every file is read raw or from the memory cache. Internal to the reader. */
#ifndef E2E_DATA_PREFETCH_H
#define E2E_DATA_PREFETCH_H

#include <pthread.h>

#include "batch_fill.h"
#include "slots.h"
#include "split.h"

typedef struct {
    Slot *slot;              /* n slots */
    int n;
    Slot *held;              /* the slot the caller's batch lives in, until its next call */
    const BatchFill *fill;   /* what fills a slot */
    const Epoch *epoch;      /* the steps to fill */
    /* the thread, filling steps [from, epoch->steps) */
    pthread_t thread;
    int running, cancel;
    long from;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} Prefetch;

/* A ring whose slots `fill` fills with the steps of `epoch`; no slots yet
 * (prefetch_alloc), and prefetch_free may follow at once. */
void prefetch_init(Prefetch *p, const BatchFill *fill, const Epoch *epoch);
/* n slots of size z. Local result, a message naming path. */
int prefetch_alloc(Prefetch *p, int n, const SlotSize *z, const char *path);
/* Stops the thread, frees the slots. */
void prefetch_free(Prefetch *p, const SlotSize *z);

/* Starts the thread at step `from` (no thread if it cannot start: the caller fills) */
void prefetch_start(Prefetch *p, long from);
/* Stops the thread; every slot is free again and none held. */
void prefetch_stop(Prefetch *p);
/* The caller is done with the batch it holds: its slot is free for the thread. */
void prefetch_release(Prefetch *p);
/* Step `step`'s slot, filled (by the thread, or here in the caller); the slot's rc and
 * err say whether the fill failed. The caller holds it until prefetch_release. */
Slot *prefetch_take(Prefetch *p, long step);

#endif
