/* LD_PRELOAD library for tests: makes one rank's writes to an output file fail, as a
 * full disk, a quota, a failing disk or a refused permission make them fail, at a
 * chosen call (tests/test_write_faults.py). Only calls on files whose path contains
 * E2E_FAULT_PATH (default ".partial-": the temporary files of net/base/outfile.h) count;
 * MPI's own pipes, sockets and shared memory, stdout and stderr never do. The calls
 * are the ones HDF5, Open MPI's MPI-IO and the project's writers use: open/open64 (for
 * writing), write, pwrite, pwrite64, writev, pwritev, pwritev64, fsync, fdatasync,
 * ftruncate, ftruncate64.
 *
 *   E2E_FAULT_RANK   the rank (OMPI_COMM_WORLD_RANK) whose calls fail; unset or "all": every rank
 *   E2E_FAULT_CALL   the counted call that fails (1 = the first); 0 or unset: count only
 *   E2E_FAULT_MODE   "once" (default): that call only; "from": that call and every later one
 *   E2E_FAULT_ERRNO  ENOSPC (default), EIO, EDQUOT, EACCES, EROFS
 *   E2E_FAULT_COUNT  a file to which each process appends "RANK CALLS" at exit */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long calls;  /* counted calls so far in this process */

static int my_rank(void) {
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r) r = getenv("PMIX_RANK");
    return r ? atoi(r) : 0;
}

static int chosen_rank(void) {
    const char *r = getenv("E2E_FAULT_RANK");
    return !r || !strcmp(r, "all") || atoi(r) == my_rank();
}

static int fault_errno(void) {
    const char *e = getenv("E2E_FAULT_ERRNO");
    if (!e || !strcmp(e, "ENOSPC")) return ENOSPC;
    if (!strcmp(e, "EIO")) return EIO;
    if (!strcmp(e, "EDQUOT")) return EDQUOT;
    if (!strcmp(e, "EACCES")) return EACCES;
    if (!strcmp(e, "EROFS")) return EROFS;
    return ENOSPC;
}

static int path_counts(const char *path) {
    const char *want = getenv("E2E_FAULT_PATH");
    return path && strstr(path, want && want[0] ? want : ".partial-") != NULL;
}

static int fd_counts(int fd) {
    char link[64], path[4096];
    if (fd < 3) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    return path_counts(path);
}

/* a counted call: 1 when it is the one (or one of those) to fail; errno is then set */
static int fails(const char *what, const char *path) {
    long n = ++calls;
    const char *c = getenv("E2E_FAULT_CALL"), *m = getenv("E2E_FAULT_MODE");
    long at = c ? atol(c) : 0;
    int from = m && !strcmp(m, "from");
    if (at <= 0 || !chosen_rank() || (from ? n < at : n != at)) return 0;
    if (n == at)
        fprintf(stderr, "fault_write: rank %d: failing call %ld (%s on %s) with %s%s\n", my_rank(), n, what,
                path ? path : "?", strerror(fault_errno()), from ? " and every later one" : "");
    errno = fault_errno();
    return 1;
}

static int fd_fails(int fd, const char *what) {
    if (!fd_counts(fd)) return 0;
    char link[64], path[4096] = "?";
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n > 0) path[n] = '\0';
    return fails(what, path);
}

#define REAL(name)                    \
    static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    return fd_fails(fd, "write") ? -1 : real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite);
    return fd_fails(fd, "pwrite") ? -1 : real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    REAL(pwrite64);
    return fd_fails(fd, "pwrite64") ? -1 : real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev);
    return fd_fails(fd, "writev") ? -1 : real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL(pwritev);
    return fd_fails(fd, "pwritev") ? -1 : real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
    REAL(pwritev64);
    return fd_fails(fd, "pwritev64") ? -1 : real_pwritev64(fd, iov, cnt, off);
}

int fsync(int fd) {
    REAL(fsync);
    return fd_fails(fd, "fsync") ? -1 : real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    return fd_fails(fd, "fdatasync") ? -1 : real_fdatasync(fd);
}

int ftruncate(int fd, off_t len) {
    REAL(ftruncate);
    return fd_fails(fd, "ftruncate") ? -1 : real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len) {
    REAL(ftruncate64);
    return fd_fails(fd, "ftruncate64") ? -1 : real_ftruncate64(fd, len);
}

/* an open for writing of a counted path: a refused permission, a read-only file system */
static int open_fails(const char *path, int flags) {
    return (flags & (O_WRONLY | O_RDWR)) && path_counts(path) && fails("open", path);
}

int open(const char *path, int flags, ...) {
    REAL(open);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return open_fails(path, flags) ? -1 : real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    REAL(open64);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    return open_fails(path, flags) ? -1 : real_open64(path, flags, mode);
}

__attribute__((destructor)) static void report_count(void) {
    const char *out = getenv("E2E_FAULT_COUNT");
    if (!out || !(getenv("OMPI_COMM_WORLD_RANK") || getenv("PMIX_RANK"))) return; /* ranks only */
    FILE *f = fopen(out, "a");
    if (!f) return;
    fprintf(f, "%d %ld\n", my_rank(), calls);
    fclose(f);
}
