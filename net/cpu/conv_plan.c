/* The engine plan's text form (engine names, one line per geometry) and its record
 * file (conv_engine.h). conv_engine.c calls down into it; it calls nothing back. The
 * record is a text file of plan lines, one per (threads, batch, geometry), each with
 * the timings behind it as a comment; it is read and extended under an exclusive flock,
 * and replaced by a rename, so processes starting together (the ranks of a node) time
 * a geometry once and all use the first result. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "conv_engine.h"

static const char *pass_names[CONV_OPS] = {"fwd", "bwd_data", "bwd_filter"};
static const char *engine_names[ENGINE_KINDS] = {"none", "direct", "gemm", "onednn"};

const char *conv_engine_name(ConvEngine e) { return e < ENGINE_KINDS ? engine_names[e] : "?"; }

ConvEngine conv_engine_parse(const char *name) {
    for (int e = 0; e < ENGINE_KINDS; e++)
        if (strcmp(name, engine_names[e]) == 0) return (ConvEngine)e;
    return ENGINE_KINDS;
}

int conv_plan_line(const ConvPlanEntry *e, int threads, char *buf, size_t len) {
    const ConvShape *s = &e->s;
    return snprintf(buf, len, "t%d n%d %s%dx%dx%d %s o%d k%dx%d s%d p%d : fwd=%s bwd_data=%s bwd_filter=%s",
                    threads, s->n, e->bf16 ? "bf16 " : "", s->in_c, s->in_h, s->in_w,
                    e->lay == LAYOUT_NCHW ? "nchw" : "nhwc",
                    s->out_c, s->k_h, s->k_w, s->stride, s->pad, conv_engine_name(e->engine[0]),
                    conv_engine_name(e->engine[1]), conv_engine_name(e->engine[2]));
}

static int out_size(int in, int k, int stride, int pad) {
    int span = in + 2 * pad - k;
    return span < 0 || stride <= 0 ? 0 : span / stride + 1;
}

int conv_plan_parse(const char *line, ConvPlanEntry *e, int *threads) {
    char lay[8], eng[CONV_OPS][16];
    ConvShape s = {0};
    int at = 0, bf16 = 0;
    if (sscanf(line, " t%d n%d %n", threads, &s.n, &at) < 2 || at == 0) return -1;
    if (strncmp(line + at, "bf16 ", 5) == 0) bf16 = 1, at += 5;
    int got = sscanf(line + at, "%dx%dx%d %7s o%d k%dx%d s%d p%d : fwd=%15s bwd_data=%15s bwd_filter=%15s",
                     &s.in_c, &s.in_h, &s.in_w, lay, &s.out_c, &s.k_h, &s.k_w, &s.stride, &s.pad,
                     eng[0], eng[1], eng[2]);
    if (got != 12 || *threads <= 0 || s.n <= 0 || s.in_c <= 0 || s.out_c <= 0 || s.k_h <= 0 ||
        s.k_w <= 0 || s.stride <= 0 || s.pad < 0)
        return -1;
    if (strcmp(lay, "nchw") != 0 && strcmp(lay, "nhwc") != 0) return -1;
    s.out_h = out_size(s.in_h, s.k_h, s.stride, s.pad);
    s.out_w = out_size(s.in_w, s.k_w, s.stride, s.pad);
    if (s.out_h <= 0 || s.out_w <= 0) return -1;
    memset(e, 0, sizeof *e);
    e->s = s;
    e->bf16 = (unsigned char)bf16;
    e->lay = strcmp(lay, "nchw") == 0 ? LAYOUT_NCHW : LAYOUT_NHWC;
    for (int op = 0; op < CONV_OPS; op++) {
        ConvEngine k = conv_engine_parse(eng[op]);
        if (k == ENGINE_KINDS) return -1;
        e->engine[op] = (unsigned char)k;
    }
    return 0;
}

/* The line with its timings as a comment. */
static void record_line(const ConvPlanEntry *e, int threads, char *buf, size_t len) {
    int at = conv_plan_line(e, threads, buf, len);
    at += snprintf(buf + at, len - at, "  # ms own/onednn:");
    for (int op = 0; op < CONV_OPS && at < (int)len; op++)
        if (e->ms[op][0] > 0 || e->ms[op][1] > 0)
            at += snprintf(buf + at, len - at, " %s %.3f/%.3f", pass_names[op], e->ms[op][0], e->ms[op][1]);
}

static int same_key(const ConvPlanEntry *a, const ConvPlanEntry *b) {
    return a->lay == b->lay && a->bf16 == b->bf16 && memcmp(&a->s, &b->s, sizeof a->s) == 0;
}

/* The whole file (NUL-terminated; "" when it does not exist), or NULL on error. */
static char *read_all(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? calloc(1, 1) : NULL;
    char *text = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = malloc((size_t)size + 1))) {
        size_t got = fread(text, 1, (size_t)size, f);
        text[got] = '\0';
    }
    fclose(f);
    return text;
}

/* Finds the entry for e's key in text; 1 and e's engines set when found. */
static int find_entry(const char *text, int threads, ConvPlanEntry *e) {
    for (const char *line = text; *line;) {
        ConvPlanEntry got;
        int t;
        if (line[0] != '#' && conv_plan_parse(line, &got, &t) == 0 && t == threads && same_key(&got, e)) {
            memcpy(e->engine, got.engine, sizeof e->engine);
            return 1;
        }
        const char *next = strchr(line, '\n');
        line = next ? next + 1 : line + strlen(line);
    }
    return 0;
}

/* path's folder and its parent, as `mkdir -p` would (a missing cache folder) */
static void make_parents(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
}

static int write_record(const char *path, const char *header, const char *old, const char *line) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return e2e_fail("engine plan %s: cannot write %s: %s", path, tmp, strerror(errno));
    int ok = fputs(*old ? old : header, f) >= 0;
    if (ok && *old && old[strlen(old) - 1] != '\n') ok = fputc('\n', f) != EOF;
    ok = ok && fprintf(f, "%s\n", line) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return e2e_fail("engine plan %s: cannot write it: %s", path, strerror(errno));
    }
    return 0;
}

int conv_plan_record(const char *path, const char *header, int threads, ConvPlanEntry *e,
                     void (*decide)(void *arg, ConvPlanEntry *e), void *arg) {
    char lock[1100];
    snprintf(lock, sizeof lock, "%s.lock", path);
    make_parents(path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        decide(arg, e);
        return e2e_fail("engine plan %s: cannot lock %s: %s", path, lock, strerror(err));
    }
    int rc;
    char *old = read_all(path);
    if (!old) {
        decide(arg, e);
        rc = e2e_fail("engine plan %s: cannot read it: %s", path, strerror(errno));
    } else if (find_entry(old, threads, e)) {
        rc = 1;
    } else {
        decide(arg, e);
        char line[512];
        record_line(e, threads, line, sizeof line);
        rc = write_record(path, header, old, line);
    }
    free(old);
    flock(fd, LOCK_UN);
    close(fd);
    return rc;
}
