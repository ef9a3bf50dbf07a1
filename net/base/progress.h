/* Progress marks: long work anywhere (the reader's statistics pass and cache load, a
 * training step, an evaluation) marks that it moves on, and the watchdog
 * (dist/comm/watchdog.c) reads when the last mark was. Marking calls nobody: the reader
 * calls down into this file instead of back up into dist/. Thread-safe (one atomic). */
#ifndef E2E_BASE_PROGRESS_H
#define E2E_BASE_PROGRESS_H

/* This process made progress now (the monotonic clock, clock.h). */
void progress_mark(void);
/* progress_mark at the given time (a watchdog that resumes after a suspension). */
void progress_mark_at(double t);
/* The monotonic time of the last mark (0 before the first). */
double progress_last(void);

#endif
