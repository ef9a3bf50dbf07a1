#include "heartbeat.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BEAT = 1, BYE = 2, TAG = 7 };
#define HOST_LEN 64
#define PERIOD_S 1.0   /* one beat a second */
#define POLL_NS 50000000L  /* the thread looks every 50 ms */
/* a gap this long (or half the timeout, if shorter) between two looks of our own thread
 * means that this process was stopped (SIGSTOP, a suspended job): nothing could be heard
 * meanwhile, so the count starts again */
#define PAUSED_S 5.0

struct Heartbeat {
    MPI_Comm comm;
    int rank, size, prev, next;
    double timeout_s;
    char program[32];
    char (*host)[HOST_LEN];  /* every rank's host name */
    pthread_t thread;
    atomic_int stop;
    int in;                   /* the message received */
    MPI_Request recv, send;
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* the messages: static, since a send to a dead peer may never complete */
static const int beat_message = BEAT, bye_message = BYE;

/* Sends a message to the next rank unless the previous one has not left yet: a dead or
 * cut-off peer must not pile up requests. 1 when sent. */
static int send_to_next(Heartbeat *h, const int *message) {
    int done = 1;
    if (h->send != MPI_REQUEST_NULL) MPI_Test(&h->send, &done, MPI_STATUS_IGNORE);
    if (!done) return 0;
    MPI_Isend(message, 1, MPI_INT, h->next, TAG, h->comm, &h->send);
    return 1;
}

static void report_lost(const Heartbeat *h, double silent_s) {
    fprintf(stderr,
            "%s: rank %d on %s: no heartbeat from rank %d on %s for %.0f s: that rank's process or "
            "its node is gone, or cut off from the network; ending the job (exit %d)\n",
            h->program, h->rank, h->host[h->rank], h->prev, h->host[h->prev], silent_s, EXIT_PEER_LOST);
    fflush(stderr);
    MPI_Abort(h->comm, EXIT_PEER_LOST);
}

static void *watch(void *arg) {
    Heartbeat *h = arg;
    double heard = now_s(), looked = heard, beat = 0;
    const double paused = h->timeout_s / 2 < PAUSED_S ? h->timeout_s / 2 : PAUSED_S;
    int prev_done = 0;  /* the previous rank said BYE */
    MPI_Irecv(&h->in, 1, MPI_INT, h->prev, TAG, h->comm, &h->recv);
    while (!atomic_load(&h->stop)) {
        double t = now_s();
        if (t - looked > paused) heard = t;
        looked = t;
        if (t - beat >= PERIOD_S && send_to_next(h, &beat_message)) beat = t;
        int got = 0;
        if (!prev_done) MPI_Test(&h->recv, &got, MPI_STATUS_IGNORE);
        if (got && h->in == BYE) prev_done = 1;
        else if (got) {
            heard = t;
            MPI_Irecv(&h->in, 1, MPI_INT, h->prev, TAG, h->comm, &h->recv);
        }
        if (!prev_done && t - heard > h->timeout_s) report_lost(h, t - heard);
        nanosleep(&(struct timespec){0, POLL_NS}, NULL);
    }
    return NULL;
}

Heartbeat *heartbeat_start(MPI_Comm world, double timeout_s, const char *program) {
    int size, rank, level;
    MPI_Comm_size(world, &size);
    MPI_Comm_rank(world, &rank);
    MPI_Query_thread(&level);
    if (size < 2 || timeout_s <= 0) return NULL;
    if (level != MPI_THREAD_MULTIPLE) {
        if (rank == 0)
            fprintf(stderr, "%s: warning: MPI gives no MPI_THREAD_MULTIPLE: a lost rank or node will "
                            "not be detected\n", program);
        return NULL;
    }
    Heartbeat *h = calloc(1, sizeof *h);
    char mine[MPI_MAX_PROCESSOR_NAME] = "", (*host)[HOST_LEN] = calloc((size_t)size, HOST_LEN);
    if (!h || !host) {
        fprintf(stderr, "%s: rank %d: out of memory for the heartbeat\n", program, rank);
        MPI_Abort(world, 1);
    }
    int len = 0;
    MPI_Get_processor_name(mine, &len);
    snprintf(host[rank], HOST_LEN, "%s", mine);
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, host, HOST_LEN, MPI_CHAR, world);
    MPI_Comm_dup(world, &h->comm);
    h->rank = rank;
    h->size = size;
    h->prev = (rank + size - 1) % size;
    h->next = (rank + 1) % size;
    h->timeout_s = timeout_s;
    h->host = host;
    h->recv = h->send = MPI_REQUEST_NULL;
    snprintf(h->program, sizeof h->program, "%s", program);
    if (pthread_create(&h->thread, NULL, watch, h) != 0) {
        fprintf(stderr, "%s: rank %d: cannot start the heartbeat thread\n", program, rank);
        MPI_Abort(world, 1);
    }
    return h;
}

/* Waits up to limit_s for a request; frees it (the operation goes on) when it is late. */
static void finish_request(MPI_Request *r, double limit_s) {
    int done = 0;
    for (double t0 = now_s(); *r != MPI_REQUEST_NULL && !done && now_s() - t0 < limit_s;) {
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    if (*r != MPI_REQUEST_NULL) MPI_Request_free(r);
}

void heartbeat_stop(Heartbeat *h) {
    if (!h) return;
    atomic_store(&h->stop, 1);
    pthread_join(h->thread, NULL);
    finish_request(&h->send, 1.0);
    if (send_to_next(h, &bye_message)) finish_request(&h->send, 1.0);
    if (h->recv != MPI_REQUEST_NULL) {
        MPI_Cancel(&h->recv);
        MPI_Wait(&h->recv, MPI_STATUS_IGNORE);
    }
    MPI_Comm_free(&h->comm);
    free(h->host);
    free(h);
}
