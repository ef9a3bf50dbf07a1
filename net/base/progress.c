/* Progress marks (progress.h): the last mark's time, one atomic for the process. */
#include "progress.h"

_Atomic double progress_last_mark;
