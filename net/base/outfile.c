/* The one way to write an output file (outfile.h): the checks before writing, a
 * temporary name in the file's folder, checked writes, fsync, rename over the name. */
#include "outfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "error.h"

/* path's folder ("." for a bare name) into dir */
static void folder_of(const char *path, char *dir, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, size, ".");
    else if (slash == path) snprintf(dir, size, "/");
    else snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

int out_partial_name(const char *path, long pid, char *tmp, size_t size) {
    char dir[OUT_PATH_MAX];
    folder_of(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
    int n = snprintf(tmp, size, "%s/.%s.partial-%ld", dir, name, pid);
    return n < 0 || (size_t)n >= size ? e2e_fail("%s: path too long", path) : 0;
}

static int fsync_folder(const char *path) {
    char dir[OUT_PATH_MAX];
    folder_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    /* some file systems refuse fsync on a folder (EINVAL): the rename is done anyway */
    return rc && errno != EINVAL && errno != EROFS ? -1 : 0;
}

int out_open(OutFile *o, const char *path) {
    o->fd = -1;
    if (strlen(path) >= sizeof o->path) return e2e_fail("%s: path too long", path);
    snprintf(o->path, sizeof o->path, "%s", path);
    if (out_partial_name(path, (long)getpid(), o->tmp, sizeof o->tmp)) return -1;
    unlink(o->tmp);  /* our own leftover, if a pid repeats */
    o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (o->fd < 0) return e2e_fail("%s: cannot create %s (%s)", path, o->tmp, strerror(errno));
    return 0;
}

void out_abort(OutFile *o) {
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    if (o->tmp[0]) unlink(o->tmp);
    o->tmp[0] = '\0';
}

/* the failure's message, the temporary file gone */
static int fail_write(OutFile *o, const char *what, int err) {
    char why[256];
    snprintf(why, sizeof why, "%s", strerror(err));
    out_abort(o);
    if (err == ENOSPC || err == EDQUOT)
        return e2e_fail("%s: %s failed: %s; nothing was written (the file system or your quota is full)",
                         o->path, what, why);
    return e2e_fail("%s: %s failed: %s; nothing was written", o->path, what, why);
}

int out_write(OutFile *o, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t got = write(o->fd, p, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return fail_write(o, "writing", got < 0 ? errno : ENOSPC);
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

int out_commit(OutFile *o) {
    if (fsync(o->fd)) return fail_write(o, "syncing to disk", errno);
    int rc = close(o->fd);
    o->fd = -1;
    if (rc) return fail_write(o, "closing", errno);
    if (rename(o->tmp, o->path)) return fail_write(o, "renaming into place", errno);
    o->tmp[0] = '\0';
    if (fsync_folder(o->path)) return e2e_fail("%s: written, but its folder cannot be synced (%s)", o->path, strerror(errno));
    return 0;
}

int out_write_file(const char *path, const void *buf, size_t n) {
    OutFile o;
    if (out_check_space(path, n, NULL) || out_open(&o, path)) return -1;
    if (out_write(&o, buf, n)) return -1;
    return out_commit(&o);
}

int out_commit_path(const char *tmp, const char *path) {
    OutFile o = {.fd = open(tmp, O_RDONLY | O_CLOEXEC)};
    snprintf(o.path, sizeof o.path, "%s", path);
    snprintf(o.tmp, sizeof o.tmp, "%s", tmp);
    if (o.fd < 0) return fail_write(&o, "reopening the written file", errno);
    return out_commit(&o);
}

void out_release(const char *tmp) {
    if (tmp && tmp[0]) (void)truncate(tmp, 0);
}

/* ".NAME.partial-DIGITS" */
static int is_partial(const char *name) {
    const char *p = strstr(name, ".partial-");
    if (name[0] != '.' || !p || p == name) return 0;
    p += strlen(".partial-");
    if (!*p) return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

int out_remove_partials(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    char path[OUT_PATH_MAX];
    while ((e = readdir(d))) {
        if (!is_partial(e->d_name)) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
        removed += unlink(path) == 0;
    }
    closedir(d);
    return removed;
}

/* ---- checks ---- */

int out_check_path(const char *path, const char *what, const OutInput *inputs, int n) {
    if (!path || !path[0]) return e2e_fail("%s: no file name given", what);
    char dir[OUT_PATH_MAX];
    folder_of(path, dir, sizeof dir);
    struct stat st, in;
    size_t len = strlen(path);
    if (path[len - 1] == '/' || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
        return e2e_fail("%s: is a folder; %s needs a file name", path, what);
    if (stat(dir, &st) != 0)
        return e2e_fail("%s: cannot write %s: the folder %s %s", path, what, dir,
                         errno == ENOENT ? "does not exist" : strerror(errno));
    if (!S_ISDIR(st.st_mode)) return e2e_fail("%s: cannot write %s: %s is not a folder", path, what, dir);
    if (stat(path, &st) != 0) return 0;  /* a new file: it is no input */
    for (int i = 0; i < n; i++)
        if (inputs[i].path && stat(inputs[i].path, &in) == 0 && in.st_dev == st.st_dev && in.st_ino == st.st_ino)
            return e2e_fail("%s: is the file %s reads (%s %s); refusing to write %s over an input",
                             path, inputs[i].what, inputs[i].what, inputs[i].path, what);
    return 0;
}

const char *out_bytes_str(unsigned long long b, char *buf, size_t size) {
    static const char *unit[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1000.0 && u < 5) v /= 1000.0, u++;
    if (u == 0) snprintf(buf, size, "%llu bytes", b);
    else snprintf(buf, size, "%.*f %s", v < 10 ? 1 : 0, v, unit[u]);
    return buf;
}

int out_check_space(const char *path, unsigned long long bytes, const char *what) {
    const char *env = getenv("E2E_SPACE_CHECK");
    if (env && strcmp(env, "0") == 0) return 0;
    char dir[OUT_PATH_MAX];
    folder_of(path, dir, sizeof dir);
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0) return 0;  /* cannot tell: the writes are checked anyway */
    unsigned long long avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
    if (bytes <= avail) return 0;
    char need[32], have[32];
    return e2e_fail("%s: %s needs about %s but the file system of %s has %s free; nothing was written "
                     "(free some space or write elsewhere; E2E_SPACE_CHECK=0 skips this check)",
                     path, what ? what : "the file", out_bytes_str(bytes, need, sizeof need), dir,
                     out_bytes_str(avail, have, sizeof have));
}

const char *out_space_hint(const char *path, char *buf, size_t size) {
    char dir[OUT_PATH_MAX], have[32];
    folder_of(path, dir, sizeof dir);
    struct statvfs fs;
    buf[0] = '\0';
    if (statvfs(dir, &fs) != 0) return buf;
    unsigned long long avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
    if (avail < (4ull << 20) || fs.f_bavail < fs.f_blocks / 1000)
        snprintf(buf, size, " (the file system of %s is full: %s free)", dir, out_bytes_str(avail, have, sizeof have));
    return buf;
}
