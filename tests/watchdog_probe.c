/* The watchdog's cases that e2e-train cannot be made to show on demand, under real
 * mpirun (tests/test_no_loss.py watchdog runs it and reads its exit code and stderr):
 *
 *   stuck_local LIMIT      rank 1 makes no progress outside a collective (a hung read);
 *                          rank 0 waits for it in a collective: the watchdog must end both,
 *                          naming rank 1
 *   deadlock LIMIT         every rank waits in a different collective for ever: rank 0
 *                          must end the job
 *   long_eval LIMIT        3 x LIMIT of evaluation with progress every batch: no firing
 *   long_checkpoint LIMIT  rank 0 writes "a checkpoint" for 2 x LIMIT while the others
 *                          wait for it: no firing (a checkpoint gets 5 x the limit)
 *   first_step LIMIT       2 x LIMIT in the first step, no progress: no firing
 *
 * Exits 0 when the case ran to its end (the watchdog stayed quiet). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "error.h"
#include "watchdog.h"

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

/* a collective wait as the communicator marks it */
static void barrier(Comm *c, MPI_Comm comm, const char *name) {
    watchdog_wait(name);
    MPI_Barrier(comm);
    watchdog_wait_end();
}

static int run(Comm *c, const char *scenario, double limit) {
    if (!strcmp(scenario, "stuck_local")) {
        watchdog_phase(WD_READ);
        watchdog_position(1, 6);
        if (c->rank == 1) sleep_s(20 * limit);  /* never returns in time */
        barrier(c, c->world, "the agreement point");
    } else if (!strcmp(scenario, "deadlock")) {
        MPI_Comm other;
        MPI_Comm_dup(c->world, &other);
        watchdog_phase(WD_STEP);
        barrier(c, c->rank == 0 ? c->world : other, "the agreement point");  /* never matched */
    } else if (!strcmp(scenario, "long_eval")) {
        watchdog_phase(WD_EVAL);
        for (int i = 0; i < 30; i++) {
            sleep_s(limit / 10);
            watchdog_progress();
        }
        barrier(c, c->world, "the agreement point");
    } else if (!strcmp(scenario, "long_checkpoint")) {
        watchdog_phase(WD_CHECKPOINT);
        if (c->rank == 0) sleep_s(2 * limit);
        barrier(c, c->world, "rank 0's work (files, checkpoints)");
    } else if (!strcmp(scenario, "first_step")) {
        watchdog_phase(WD_FIRST_STEP);
        sleep_s(2 * limit);
        barrier(c, c->world, "the agreement point");
    } else {
        return net_fail("unknown scenario '%s'", scenario);
    }
    return 0;
}

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 3) {
        if (c.rank == 0) fprintf(stderr, "usage: watchdog_probe SCENARIO LIMIT_SECONDS\n");
        comm_finalize(&c);
        return 2;
    }
    double limit = atof(argv[2]);
    int rc = watchdog_start(&c, limit) || run(&c, argv[1], limit);
    watchdog_stop();
    if (rc && c.rank == 0) fprintf(stderr, "watchdog_probe: %s\n", net_error());
    if (!rc && c.rank == 0) printf("watchdog_probe: %s ran to its end\n", argv[1]);
    comm_finalize(&c);
    return rc;
}
