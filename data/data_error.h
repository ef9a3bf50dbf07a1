/* Error reporting for data/: a failing call returns -1 and leaves one message, naming
 * the file and the problem, for data_error() (thread-local: the prefetch thread's
 * messages are handed to the caller by the reader). */
#ifndef E2E_DATA_DATA_ERROR_H
#define E2E_DATA_DATA_ERROR_H

#if defined(__GNUC__)
#define DATA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DATA_PRINTF(a, b)
#endif

#define DATA_ERROR_LEN 1024

/* Records the message and returns -1, so checks read: return data_fail("..."); */
int data_fail(const char *fmt, ...) DATA_PRINTF(1, 2);
/* A finding that does not stop the run: one line "e2e-ddp: warning: <message>" on
 * standard error (callers under MPI print it from one rank). */
void data_warn(const char *fmt, ...) DATA_PRINTF(1, 2);
/* The last message recorded on this thread ("" if none). */
const char *data_error(void);
void data_clear_error(void);

#endif
