/* Lost-rank detection: a ring heartbeat on its own thread and its own communicator.
 *
 * Every rank sends a tiny message to the next rank (rank + 1, the last to 0) every second
 * and listens to the previous one. When nothing has come from the previous rank for
 * timeout_s seconds, that rank's process or node is gone or cut off from the network.
 * Open MPI 4.1 has no failure detection of its own: a rank whose peer died waits forever
 * inside the collective (over TCP it may print "peer hung up" first, and still wait). So
 * the rank that noticed prints which rank and node went silent and calls MPI_Abort,
 * which ends every rank (srun and mpirun kill the rest of the job).
 *
 * It watches that ranks are alive, not that they make progress: a rank that is slow or
 * stuck in its own code keeps beating. A rank that is itself stopped (SIGSTOP, a suspended
 * job) starts counting again when it runs. A rank that finishes tells the next one not to
 * expect more (heartbeat_stop). Needs MPI_THREAD_MULTIPLE. */
#ifndef E2E_DIST_HEARTBEAT_H
#define E2E_DIST_HEARTBEAT_H

#include <mpi.h>

/* The exit code of a job ended because a rank was lost (76 = EX_PROTOCOL of sysexits.h):
 * the run can go on from its newest checkpoint on the nodes left (e2e-train.sbatch
 * requeues it). */
#define EXIT_PEER_LOST 76

typedef struct Heartbeat Heartbeat;

/* Collective over world (every rank's host name is gathered, for the message). Returns
 * NULL, with nothing started, when world has one rank or timeout_s <= 0, and when MPI does
 * not provide MPI_THREAD_MULTIPLE (rank 0 then prints a warning). program prefixes the
 * messages. */
Heartbeat *heartbeat_start(MPI_Comm world, double timeout_s, const char *program);
/* Stops this rank's thread and tells the next rank not to wait for more beats. Not
 * collective; call it before MPI_Finalize. NULL is allowed. */
void heartbeat_stop(Heartbeat *h);

#endif
