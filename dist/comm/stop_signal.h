/* Preemption: SIGUSR1 (Slurm's --signal warning before the time limit) or SIGTERM sets a
 * flag; the training loop reads it at its next agreement point, where all ranks learn
 * that one of them was asked to stop, finish the step, checkpoint and exit with
 * EXIT_REQUEUE. */
#ifndef E2E_DIST_STOP_SIGNAL_H
#define E2E_DIST_STOP_SIGNAL_H

/* The documented exit code that means "stopped cleanly with a checkpoint; requeue me"
 * (75 = EX_TEMPFAIL of sysexits.h). launch/e2e-train.sbatch turns it into a requeue. */
#define EXIT_REQUEUE 75

void stop_signal_install(void);
/* The signal number received (SIGUSR1 or SIGTERM), or 0. */
int stop_signal_received(void);
/* For tests and --stop-after-steps: behave as if a signal had arrived. */
void stop_signal_raise(int signo);

#endif
