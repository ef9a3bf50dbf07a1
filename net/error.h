/* Error reporting for the library: a failing call returns -1 and leaves one message,
 * naming what was wrong, for net_error() (thread-local, so ranks' threads don't mix). */
#ifndef E2E_NET_ERROR_H
#define E2E_NET_ERROR_H

#if defined(__GNUC__)
#define NET_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NET_PRINTF(a, b)
#endif

/* Records the message and returns -1, so checks read: return net_fail("..."); */
int net_fail(const char *fmt, ...) NET_PRINTF(1, 2);
/* The last message recorded on this thread ("" if none). */
const char *net_error(void);
void net_clear_error(void);

#endif
