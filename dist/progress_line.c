/* Rank 0's progress line (progress_line.h): rate and ETA from this process's steps. */
#include "progress_line.h"

#include <stdio.h>

#include "clock.h"
#include "run_files.h"

void pace_start(Pace *p, long global_step, long steps, int epochs, int log_every, long global_batch) {
    *p = (Pace){.t0 = monotonic_seconds(), .done_at_start = global_step, .total = steps * epochs,
                .every = log_every > 0 ? log_every : (int)(steps >= 10 ? steps / 10 : 1), .epochs = epochs,
                .global_batch = global_batch};
}

void progress_line(const Pace *p, long epoch, long done, long steps, long global_step, double loss, double lr,
                   const char *note) {
    if (done % p->every != 0 && done != steps) return;
    double el = monotonic_seconds() - p->t0;
    long run_done = global_step - p->done_at_start;
    double rate = el > 0 ? run_done * (double)p->global_batch / el : 0;
    double eta = run_done > 0 ? el / run_done * (p->total - global_step) : -1;
    char e[32];
    run_format_duration(eta, e, sizeof e);
    printf("epoch %ld/%d  step %ld/%ld  loss %.5f  lr %.3g%s  %.1f samples/s  ETA %s\n", epoch + 1, p->epochs, done,
           steps, loss, lr, note ? note : "", rate, e);
    fflush(stdout);
}
