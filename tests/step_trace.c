/* LD_PRELOAD tracer for a program built with -finstrument-functions (tests/step_path.sh).
 * It overrides glibc's empty __cyg_profile_func_enter/exit and, for one window of one
 * thread, writes every function entry and exit to a text file: "E <offset>" or
 * "X <offset>", offset = the function's address minus the executable's load address (the
 * value `nm` and `addr2line` use). Everything outside the window costs two comparisons.
 *
 *   STEP_TRACE_OUT    file to write (required; without it the tracer does nothing)
 *   STEP_TRACE_MODE   setup: from the entry of STEP_TRACE_START to the entry of the first
 *                     call of STEP_TRACE_STEP (included);
 *                     batch: the whole N-th call of STEP_TRACE_STEP, entry to exit
 *   STEP_TRACE_START  offset of the set-up window's first function (hex, from nm)
 *   STEP_TRACE_STEP   offset of the step function (hex, from nm)
 *   STEP_TRACE_N      which call of the step function the batch window is (default 3)
 *
 * Build: cc -shared -fPIC -O2 -o step_trace.so tests/step_trace.c -ldl */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_TRACE __attribute__((no_instrument_function))

static uintptr_t base, start_fn, step_fn;
static long want_call = 3, step_calls;
static int batch_mode, done;
static __thread int inside, depth;  /* this thread owns the open window; its call depth */
static FILE *out;

NO_TRACE static int first_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    *(uintptr_t *)arg = info->dlpi_addr;  /* the first object is the executable */
    return 1;
}

NO_TRACE static uintptr_t env_hex(const char *name) {
    const char *v = getenv(name);
    return v && *v ? (uintptr_t)strtoull(v, NULL, 16) : 0;
}

NO_TRACE __attribute__((constructor)) static void step_trace_init(void) {
    const char *path = getenv("STEP_TRACE_OUT"), *mode = getenv("STEP_TRACE_MODE");
    const char *n = getenv("STEP_TRACE_N");
    if (!path || !*path) return;
    dl_iterate_phdr(first_object, &base);
    start_fn = base + env_hex("STEP_TRACE_START");
    step_fn = base + env_hex("STEP_TRACE_STEP");
    batch_mode = mode && strcmp(mode, "batch") == 0;
    if (n && *n) want_call = strtol(n, NULL, 10);
    out = fopen(path, "w");
    if (!out) perror(path);
}

NO_TRACE static void record(char kind, uintptr_t fn) {
    fprintf(out, "%c %lx\n", kind, (unsigned long)(fn - base));
}

NO_TRACE static void close_window(void) {
    inside = 0;
    done = 1;
    fflush(out);
}

NO_TRACE void __cyg_profile_func_enter(void *fn, void *site) {
    (void)site;
    if (!out || done) return;
    uintptr_t f = (uintptr_t)fn;
    if (f == step_fn) step_calls++;
    if (!inside) {
        int opens = batch_mode ? f == step_fn && step_calls == want_call : f == start_fn;
        if (!opens) return;
        inside = 1;
        depth = 0;
    }
    record('E', f);
    depth++;
    if (!batch_mode && f == step_fn) close_window();
}

NO_TRACE void __cyg_profile_func_exit(void *fn, void *site) {
    (void)site;
    if (!inside) return;
    record('X', (uintptr_t)fn);
    if (--depth == 0) close_window();
}
