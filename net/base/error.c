/* The error channel (error.h): one thread-local message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[E2E_ERROR_LEN];

int e2e_fail(const char *fmt, ...) {
    char buf[E2E_ERROR_LEN]; /* the message may quote the previous one */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof last_error, "%s", buf);
    return -1;
}

void e2e_warn(const char *fmt, ...) {
    char buf[E2E_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "e2e-ddp: warning: %s\n", buf);
    fflush(stderr);
}

const char *e2e_error(void) { return last_error; }

void e2e_clear_error(void) { last_error[0] = '\0'; }
