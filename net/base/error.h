/* The one error channel of the whole program (net/, data/, dist/, launch/): a failing
 * call returns -1 and leaves one message, naming the file and the problem, for
 * e2e_error(). Thread-local, so the reader's prefetch thread and the ranks' threads
 * never mix messages; the reader hands its thread's message to the caller. */
#ifndef E2E_BASE_ERROR_H
#define E2E_BASE_ERROR_H

#if defined(__GNUC__)
#define E2E_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define E2E_PRINTF(a, b)
#endif

#define E2E_ERROR_LEN 1024

/* Records the message and returns -1, so checks read: return e2e_fail("..."); the
 * message may quote the previous one (e2e_fail("%s: %s", path, e2e_error())). */
int e2e_fail(const char *fmt, ...) E2E_PRINTF(1, 2);
/* A finding that does not stop the run: one line "e2e-ddp: warning: <message>" on
 * standard error (callers under MPI print it from one rank). */
void e2e_warn(const char *fmt, ...) E2E_PRINTF(1, 2);
/* The last message recorded on this thread ("" if none). */
const char *e2e_error(void);
void e2e_clear_error(void);

#endif
