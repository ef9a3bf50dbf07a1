/* The prefetch ring (prefetch.h): a slot is free, being filled, or ready; the thread
 * takes free slots in step order and the caller ready ones, both under one mutex. A
 * fill that fails ends the thread; its slot carries the message to the caller. */
#include "prefetch.h"

#include <stdio.h>
#include <stdlib.h>

#include "h5util.h"

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

void prefetch_init(Prefetch *p, const BatchFill *fill, const Epoch *epoch) {
    *p = (Prefetch){.fill = fill, .epoch = epoch};
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

int prefetch_alloc(Prefetch *p, int n, const SlotSize *z, const char *path) {
    p->slot = calloc((size_t)n, sizeof *p->slot);
    if (!p->slot) return e2e_fail("%s: out of memory for batches", path);
    p->n = n;
    for (int i = 0; i < n; i++)
        if (slot_alloc(&p->slot[i], z, path)) return -1;
    return 0;
}

void prefetch_free(Prefetch *p, const SlotSize *z) {
    prefetch_stop(p);
    for (int i = 0; p->slot && i < p->n; i++) slot_free(&p->slot[i], z);
    free(p->slot);
    p->slot = NULL;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

/* step `step` into slot s, its result recorded and the slot made ready */
static void fill_step(Prefetch *p, Slot *s, long step) {
    long long n;
    const long long *rows = epoch_step_rows(p->epoch, p->fill->batch, step, &n);
    int rc = batch_fill(p->fill, s, rows, n);
    s->rc = rc;
    if (rc) snprintf(s->err, sizeof s->err, "%s", e2e_error());
    pthread_mutex_lock(&p->mu);
    s->state = SLOT_READY;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *producer(void *arg) {
    Prefetch *p = arg;
    for (long step = p->from; step < p->epoch->steps; step++) {
        Slot *s = &p->slot[step % p->n];
        pthread_mutex_lock(&p->mu);
        while (s->state != SLOT_FREE && !p->cancel) pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->cancel;
        if (!stop) s->state = SLOT_FILLING;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        fill_step(p, s, step);
        if (s->rc) break;
    }
    return NULL;
}

void prefetch_start(Prefetch *p, long from) {
    p->from = from;
    p->running = pthread_create(&p->thread, NULL, producer, p) == 0; /* else: read in the caller */
}

void prefetch_stop(Prefetch *p) {
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->cancel = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->running = p->cancel = 0;
    }
    for (int i = 0; p->slot && i < p->n; i++) p->slot[i].state = SLOT_FREE;
    p->held = NULL;
}

void prefetch_release(Prefetch *p) {
    if (!p->held) return;
    pthread_mutex_lock(&p->mu);
    p->held->state = SLOT_FREE;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    p->held = NULL;
}

Slot *prefetch_take(Prefetch *p, long step) {
    Slot *s = &p->slot[step % p->n];
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        while (s->state != SLOT_READY) pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    } else {
        H5Quiet quiet; /* the HDF5 path runs here, in the caller */
        h5_quiet_begin(&quiet);
        fill_step(p, s, step);
        h5_quiet_end(&quiet);
    }
    if (!s->rc) p->held = s;
    return s;
}
