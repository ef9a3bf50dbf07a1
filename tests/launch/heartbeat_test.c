/* heartbeat_test MODE TIMEOUT_S: 3 ranks or more with the lost-rank heartbeat of
 * dist/heartbeat.h running (tests/launch/heartbeat.sh drives it):
 *   lost     rank 2 stops itself (SIGSTOP) while the others wait in a barrier: the next
 *            rank (3, or 0 with 3 ranks) must end the job naming rank 2, exit 76;
 *   finish   ranks leave at different times: rank 1 stops its heartbeat at once and waits
 *            in the final barrier; rank 0 and rank 2 work without any MPI call for 3
 *            timeouts; nobody may be declared lost (exit 0);
 *   idle     every rank sleeps 4 timeouts with its heartbeat running (the script stops
 *            and continues them all meanwhile, as a suspended job); exit 0.
 * Prints "heartbeat_test: rank R ready" once the heartbeat runs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heartbeat.h"

static void sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0) {}
}

int main(int argc, char **argv) {
    int level, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &level);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (argc != 3) {
        if (rank == 0) fprintf(stderr, "usage: heartbeat_test lost|finish|idle TIMEOUT_S\n");
        MPI_Finalize();
        return 2;
    }
    const char *mode = argv[1];
    double timeout = atof(argv[2]);
    Heartbeat *h = heartbeat_start(MPI_COMM_WORLD, timeout, "heartbeat_test");
    printf("heartbeat_test: rank %d ready%s\n", rank, h ? "" : " (no heartbeat)");
    fflush(stdout);
    if (strcmp(mode, "lost") == 0 && rank == 2) raise(SIGSTOP);
    if (strcmp(mode, "finish") == 0 && rank == 1) {
        heartbeat_stop(h);
        h = NULL;
    }
    if (strcmp(mode, "finish") == 0 && rank != 1) sleep_s(3 * timeout);
    if (strcmp(mode, "idle") == 0) sleep_s(4 * timeout);
    MPI_Barrier(MPI_COMM_WORLD);
    heartbeat_stop(h);
    if (rank == 0) printf("heartbeat_test: done\n");
    MPI_Finalize();
    return 0;
}
