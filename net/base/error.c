/* The error channel (error.h): one thread-local message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[E2E_ERROR_LEN];

/* A message longer than the channel holds keeps its beginning (the file) and its end
 * (the cause) with the middle cut out: a long path must not push the cause off the end. */
static void keep_ends(char *dst, size_t size, const char *msg) {
    size_t len = strlen(msg);
    if (len < size) {
        memcpy(dst, msg, len + 1);
        return;
    }
    static const char cut[] = " [...] ";
    size_t head = (size - sizeof cut) / 3, tail = size - sizeof cut - head;
    memcpy(dst, msg, head);
    memcpy(dst + head, cut, sizeof cut - 1);
    memcpy(dst + head + sizeof cut - 1, msg + len - tail, tail);
    dst[size - 1] = '\0';
}

int e2e_fail(const char *fmt, ...) {
    char buf[8 * E2E_ERROR_LEN]; /* the message may quote the previous one */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    keep_ends(last_error, sizeof last_error, buf);
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
