/* Progress marks: long work anywhere (the reader's statistics pass and cache load, a
 * training step, an evaluation) marks that it moves on, and the watchdog
 * (dist/comm/watchdog.c) reads when the last mark was. Marking calls nobody: the reader
 * calls down into this file instead of back up into dist/. Thread-safe (one atomic). */
#ifndef E2E_BASE_PROGRESS_H
#define E2E_BASE_PROGRESS_H

#include <stdatomic.h>

#include "clock.h"

extern _Atomic double progress_last_mark;  /* progress.c; 0 before the first mark */

/* This process made progress at time t (the monotonic clock, clock.h), or now. */
static inline void progress_mark_at(double t) { atomic_store(&progress_last_mark, t); }
static inline void progress_mark(void) { progress_mark_at(monotonic_seconds()); }
/* The monotonic time of the last mark (0 before the first). */
static inline double progress_last(void) { return atomic_load(&progress_last_mark); }

#endif
