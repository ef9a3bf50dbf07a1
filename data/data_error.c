#include "data_error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[DATA_ERROR_LEN];

int data_fail(const char *fmt, ...) {
    char buf[DATA_ERROR_LEN]; /* the message may quote the previous one */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof last_error, "%s", buf);
    return -1;
}

void data_warn(const char *fmt, ...) {
    char buf[DATA_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "e2e-ddp: warning: %s\n", buf);
    fflush(stderr);
}

const char *data_error(void) { return last_error; }

void data_clear_error(void) { last_error[0] = '\0'; }
