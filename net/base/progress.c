/* Progress marks (progress.h): the last mark's time in one atomic. */
#include "progress.h"

#include <stdatomic.h>

#include "clock.h"

static _Atomic double last_mark;

void progress_mark(void) { atomic_store(&last_mark, monotonic_seconds()); }

void progress_mark_at(double t) { atomic_store(&last_mark, t); }

double progress_last(void) { return atomic_load(&last_mark); }
