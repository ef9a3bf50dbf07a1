/* The watchdog's cases that e2e-train cannot be made to show on demand, under real
 * mpirun: watchdog_probe SCENARIO WATCHDOG_S [PEER_TIMEOUT_S] (the peer timeout is
 * WATCHDOG_S when not given; 0 turns a check off). tests/test_no_loss.py watchdog runs
 * the progress cases, tests/launch/heartbeat.sh the silence cases; both read the exit
 * code and stderr.
 *
 * No progress while alive (--watchdog: exit 3):
 *   stuck_local      rank 1 makes no progress outside a collective (a hung read); rank 0
 *                    waits for it in a collective: the watchdog must end both, naming 1
 *   deadlock         every rank waits in a different collective for ever: rank 0 must
 *                    end the job
 *   long_eval        3 x WATCHDOG_S of evaluation with progress every batch: no firing
 *   long_checkpoint  rank 0 writes "a checkpoint" for 2 x WATCHDOG_S while the others
 *                    wait for it: no firing (a checkpoint gets 5 x the limit)
 *   first_step       2 x WATCHDOG_S in the first step, no progress: no firing
 * Silence of a peer process (--peer-timeout: exit 76), 3 ranks or more:
 *   lost             rank 2 stops itself (SIGSTOP) while the others wait in a collective:
 *                    rank 0 must end the job naming rank 2 and where it was
 *   finish           rank 1 finishes at once and waits at the end; the others work 3 x
 *                    PEER_TIMEOUT_S without any MPI call (marking progress): no firing
 *   idle             every rank sleeps 4 x PEER_TIMEOUT_S marking progress, while the
 *                    script stops and continues the whole job: no firing
 *
 * Prints "watchdog_probe: rank R ready" once the watchdog runs, and exits 0 when the
 * case ran to its end (the watchdog stayed quiet). */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "error.h"
#include "watchdog.h"

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0) {}
}

/* s seconds of work without MPI, marking progress every tenth */
static void work(double s) {
    for (int i = 0; i < 10; i++) {
        sleep_s(s / 10);
        watchdog_progress();
    }
}

/* a collective wait as the communicator marks it */
static void barrier(MPI_Comm comm, const char *name) {
    watchdog_wait(name);
    MPI_Barrier(comm);
    watchdog_wait_end();
}

static int progress_case(Comm *c, const char *scenario, double limit) {
    if (!strcmp(scenario, "stuck_local")) {
        watchdog_phase(WD_READ);
        watchdog_position(1, 6);
        if (c->rank == 1) sleep_s(20 * limit);  /* never returns in time */
        barrier(c->world, "the agreement point");
    } else if (!strcmp(scenario, "deadlock")) {
        MPI_Comm other;
        MPI_Comm_dup(c->world, &other);
        watchdog_phase(WD_STEP);
        barrier(c->rank == 0 ? c->world : other, "the agreement point");  /* never matched */
    } else if (!strcmp(scenario, "long_eval")) {
        watchdog_phase(WD_EVAL);
        for (int i = 0; i < 3; i++) work(limit);
        barrier(c->world, "the agreement point");
    } else if (!strcmp(scenario, "long_checkpoint")) {
        watchdog_phase(WD_CHECKPOINT);
        if (c->rank == 0) sleep_s(2 * limit);
        barrier(c->world, "rank 0's work (files, checkpoints)");
    } else if (!strcmp(scenario, "first_step")) {
        watchdog_phase(WD_FIRST_STEP);
        sleep_s(2 * limit);
        barrier(c->world, "the agreement point");
    } else {
        return 1;  /* not one of these */
    }
    return 0;
}

static int silence_case(Comm *c, const char *scenario, double timeout) {
    watchdog_phase(WD_STEP);
    if (!strcmp(scenario, "lost")) {
        if (c->size < 3) return e2e_fail("lost needs 3 ranks or more");
        if (c->rank == 2) work(timeout / 2);  /* its heartbeats have reached rank 0 */
        if (c->rank == 2) raise(SIGSTOP);
        barrier(c->world, "the agreement point");
    } else if (!strcmp(scenario, "finish")) {
        if (c->rank != 1) work(3 * timeout);  /* rank 1 goes straight to the end */
    } else if (!strcmp(scenario, "idle")) {
        work(4 * timeout);
    } else {
        return e2e_fail("unknown scenario '%s'", scenario);
    }
    return 0;
}

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 3 && argc != 4) {
        if (c.rank == 0) fprintf(stderr, "usage: watchdog_probe SCENARIO WATCHDOG_S [PEER_TIMEOUT_S]\n");
        comm_finalize(&c);
        return 2;
    }
    double limit = atof(argv[2]), timeout = argc == 4 ? atof(argv[3]) : limit;
    int rc = watchdog_start(&c, limit, timeout);
    printf("watchdog_probe: rank %d ready\n", c.rank);
    fflush(stdout);
    if (!rc) rc = progress_case(&c, argv[1], limit);
    if (rc == 1) rc = silence_case(&c, argv[1], timeout);
    watchdog_stop();
    if (rc && c.rank == 0) fprintf(stderr, "watchdog_probe: %s\n", e2e_error());
    if (!rc && c.rank == 0) printf("watchdog_probe: %s ran to its end\n", argv[1]);
    comm_finalize(&c);
    return rc ? 1 : 0;
}
