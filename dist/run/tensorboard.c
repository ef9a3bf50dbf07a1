/* TensorBoard event files (tensorboard.h): TFRecord framing with masked CRC-32C,
 * tensorflow.Event and Summary protobufs encoded by hand, buffered appends, a resumed
 * run's cut of the earlier files, and whether the run folder is local. */
#include "tensorboard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "outfile.h"

#define FLUSH_EVERY_S 5.0
#define FILE_VERSION "brain.Event:2"

/* ---- CRC-32C (reflected polynomial 0x82F63B78), masked as TFRecord wants ---- */

uint32_t tensorboard_crc32c(const void *p, size_t n) {
    static uint32_t table[256];
    static int ready;  /* rank 0's main thread alone writes events */
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tensorboard_masked_crc(const void *p, size_t n) {
    uint32_t c = tensorboard_crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

/* ---- protobuf, the few pieces an Event needs (little-endian fixed fields) ---- */

static size_t put_varint(unsigned char *out, uint64_t v) {
    size_t n = 0;
    do {
        out[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) out[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

static size_t put_le(unsigned char *out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) out[i] = (unsigned char)(v >> (8 * i));
    return (size_t)bytes;
}

/* field `field` of wire type 2 (bytes, a string or a message) */
static size_t put_bytes(unsigned char *out, int field, const void *p, size_t n) {
    size_t k = put_varint(out, (uint64_t)field << 3 | 2);
    k += put_varint(out + k, n);
    memcpy(out + k, p, n);
    return k + n;
}

/* An Event: wall_time (1, double), step (2, int64), then file_version (3) when
 * `version`, else a Summary (5) of one Value {tag (1), simple_value (2, float)}. */
static size_t encode_event(unsigned char *out, long step, const char *tag, float value, int version) {
    double wall = (double)time(NULL);
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0) wall = ts.tv_sec + 1e-9 * ts.tv_nsec;
    uint64_t bits;
    memcpy(&bits, &wall, 8);
    size_t k = 0;
    out[k++] = 1 << 3 | 1;
    k += put_le(out + k, bits, 8);
    out[k++] = 2 << 3 | 0;
    k += put_varint(out + k, (uint64_t)(int64_t)step);
    if (version) return k + put_bytes(out + k, 3, FILE_VERSION, strlen(FILE_VERSION));
    unsigned char val[300], sum[320];
    size_t v = put_bytes(val, 1, tag, strlen(tag));
    uint32_t fbits;
    memcpy(&fbits, &value, 4);
    val[v++] = 2 << 3 | 5;
    v += put_le(val + v, fbits, 4);
    size_t s = put_bytes(sum, 1, val, v);
    return k + put_bytes(out + k, 5, sum, s);
}

/* ---- the writer ---- */

/* one Event as a TFRecord at the end of the buffer */
static void add_record(TensorBoard *tb, long step, const char *tag, float value, int version) {
    if (!tb->on || strlen(tag) > 200) return;
    unsigned char ev[512], head[12];
    size_t n = encode_event(ev, step, tag, value, version);
    if (tb->len + n + 16 > tb->cap) {
        size_t cap = tb->cap ? 2 * tb->cap : 65536;
        char *buf = realloc(tb->buf, cap);
        if (!buf) return;  /* the curve misses a point; the run goes on */
        tb->buf = buf;
        tb->cap = cap;
    }
    put_le(head, n, 8);
    put_le(head + 8, tensorboard_masked_crc(head, 8), 4);
    memcpy(tb->buf + tb->len, head, 12);
    memcpy(tb->buf + tb->len + 12, ev, n);
    put_le(head, tensorboard_masked_crc(ev, n), 4);
    memcpy(tb->buf + tb->len + 12 + n, head, 4);
    tb->len += n + 16;
}

void tensorboard_scalar(TensorBoard *tb, const char *tag, long step, double value) {
    add_record(tb, step, tag, (float)value, 0);
}

void tensorboard_flush(TensorBoard *tb, int force) {
    if (!tb->on || tb->len == 0 || (!force && monotonic_seconds() - tb->last_write < FLUSH_EVERY_S)) return;
    tb->last_write = monotonic_seconds();
    size_t done = 0;
    while (done < tb->len) {
        ssize_t w = write(tb->fd, tb->buf + done, tb->len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            e2e_warn("%s: writing TensorBoard events failed (%s): no more events this run", tb->path,
                     strerror(w < 0 ? errno : EIO));
            close(tb->fd);
            tb->on = 0;
            tb->len = 0;
            return;
        }
        done += (size_t)w;
    }
    tb->len = 0;
}

void tensorboard_step(TensorBoard *tb, long step, double loss, double lr) {
    if (!tb->on) return;
    if (isfinite(loss)) tensorboard_scalar(tb, "train/loss", step, loss);
    tensorboard_scalar(tb, "train/lr", step, lr);
    tensorboard_flush(tb, 0);
}

void tensorboard_epoch(TensorBoard *tb, long step, const EpochMetrics *e) {
    if (!tb->on) return;
    const struct { const char *tag; double v; } s[] = {
        {"epoch", (double)e->epoch}, {"train/epoch_loss", e->train_loss}, {"val/loss", e->val_loss},
        {"val/mae_gev", e->val_mae}, {"val/mre", e->val_mre}, {"perf/samples_per_s", e->samples_per_s},
        {"perf/data_wait_frac", e->data_wait_frac}, {"perf/allreduce_frac", e->allreduce_frac},
        {"perf/sync_wait_frac", e->sync_wait_frac}, {"perf/epoch_s", e->epoch_s},
        {"perf/allreduces", (double)e->allreduces}, {"perf/skipped_steps", (double)e->skipped_steps}};
    const struct { const char *tag; double v; } c[] = {  /* a classifier's (val/mae_gev, val/mre are 0) */
        {"val/auc", e->val_auc}, {"val/accuracy", e->val_accuracy}, {"val/rejection_30", e->val_rejection30},
        {"val/rejection_50", e->val_rejection50}};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++)
        if (!e->classify || strncmp(s[i].tag, "val/m", 5)) tensorboard_scalar(tb, s[i].tag, step, s[i].v);
    for (size_t i = 0; e->classify && i < sizeof c / sizeof *c; i++) tensorboard_scalar(tb, c[i].tag, step, c[i].v);
    tensorboard_flush(tb, 1);
}

void tensorboard_test(TensorBoard *tb, long step, const RunResults *r) {
    if (!tb->on) return;
    tensorboard_scalar(tb, "test/loss", step, r->test_loss);
    if (r->classify) {
        tensorboard_scalar(tb, "test/auc", step, r->test_auc);
        tensorboard_scalar(tb, "test/accuracy", step, r->test_accuracy);
    } else {
        tensorboard_scalar(tb, "test/mae_gev", step, r->test_mae);
        tensorboard_scalar(tb, "test/mre", step, r->test_mre);
    }
    tensorboard_flush(tb, 1);
}

void tensorboard_close(TensorBoard *tb) {
    tensorboard_flush(tb, 1);
    if (tb->on) close(tb->fd);  /* (a failed flush closed it) */
    free(tb->buf);
    memset(tb, 0, sizeof *tb);
}

/* ---- a resumed run: the earlier files cut back to its step ---- */

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        *v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* The fields of a message in [p, end): calls `field` for each length-delimited one
 * (with its bytes) and stores field 2's varint in *varint2 (an Event's step). */
static int walk_fields(const unsigned char *p, const unsigned char *end, uint64_t *varint2,
                       int (*field)(int number, const unsigned char *p, size_t n, void *ctx), void *ctx) {
    while (p < end) {
        uint64_t key, v;
        if (get_varint(&p, end, &key)) return -1;
        int wire = (int)(key & 7), number = (int)(key >> 3);
        if (wire == 0) {
            if (get_varint(&p, end, &v)) return -1;
            if (number == 2 && varint2) *varint2 = v;
        } else if (wire == 1 || wire == 5) {
            p += wire == 1 ? 8 : 4;
        } else if (wire == 2) {
            if (get_varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
            if (field && field(number, p, (size_t)v, ctx)) return -1;
            p += v;
        } else {
            return -1;
        }
    }
    return p == end ? 0 : -1;
}

/* what the cut needs of an Event: is it the file version, is it a test metric */
typedef struct {
    int version, test;
} EventKind;

static int value_field(int number, const unsigned char *p, size_t n, void *ctx) {
    if (number == 1 && n >= 5 && memcmp(p, "test/", 5) == 0) ((EventKind *)ctx)->test = 1;
    return 0;
}

static int summary_field(int number, const unsigned char *p, size_t n, void *ctx) {
    return number == 1 ? walk_fields(p, p + n, NULL, value_field, ctx) : 0;
}

static int event_field(int number, const unsigned char *p, size_t n, void *ctx) {
    if (number == 3) ((EventKind *)ctx)->version = 1;
    return number == 5 ? walk_fields(p, p + n, NULL, summary_field, ctx) : 0;
}

/* The record at p (of `left` bytes): its length in *n (0 when it does not read whole),
 * and whether the cut keeps it. */
static int keep_record(const unsigned char *p, size_t left, long step, size_t *n) {
    *n = 0;
    if (left < 16) return 0;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | p[i];
    uint32_t crc_len = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
    if (crc_len != tensorboard_masked_crc(p, 8) || len > left - 16) return 0;
    const unsigned char *data = p + 12, *tail = data + len;
    uint32_t crc = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
    uint64_t at = 0;
    EventKind kind = {0, 0};
    if (crc != tensorboard_masked_crc(data, len) || walk_fields(data, tail, &at, event_field, &kind)) return 0;
    *n = len + 16;
    return kind.version || (long)at < step || ((long)at == step && !kind.test);
}

int tensorboard_cut(const char *path, long step) {
    FILE *f = fopen(path, "rb");
    if (!f) return e2e_fail("%s: cannot read (%s)", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *in = malloc(size > 0 ? (size_t)size : 1), *out = malloc(size > 0 ? (size_t)size : 1);
    int rc = !in || !out || fread(in, 1, (size_t)size, f) != (size_t)size ? e2e_fail("%s: cannot read", path) : 0;
    fclose(f);
    size_t at = 0, kept = 0, n;
    while (!rc && at < (size_t)size) {
        int keep = keep_record(in + at, (size_t)size - at, step, &n);
        if (n == 0) break;  /* a record that does not read whole: it and the rest go */
        if (keep) memcpy(out + kept, in + at, n);
        kept += keep ? n : 0;
        at += n;
    }
    if (!rc && kept != (size_t)size) rc = out_write_file(path, out, kept);
    free(in);
    free(out);
    return rc;
}

/* The event files of dir: each cut back to `step` (step >= 0), and the largest time
 * stamp in their names into *latest. */
static int settle_earlier(const char *dir, long step, long *latest) {
    DIR *d = opendir(dir);
    if (!d) return e2e_fail("%s: cannot list (%s)", dir, strerror(errno));
    struct dirent *e;
    char path[4400];
    int rc = 0;
    *latest = 0;
    while (!rc && (e = readdir(d))) {
        if (strncmp(e->d_name, TB_EVENT_PREFIX, strlen(TB_EVENT_PREFIX)) != 0) continue;
        long stamp = atol(e->d_name + strlen(TB_EVENT_PREFIX));
        if (stamp > *latest) *latest = stamp;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (step >= 0) rc = tensorboard_cut(path, step);
    }
    closedir(d);
    return rc;
}

int tensorboard_open(TensorBoard *tb, const char *dir, int mode, long resume_step) {
    memset(tb, 0, sizeof *tb);
    char fs[32];
    if (mode == 0) return 0;
    if (mode < 0 && !tensorboard_folder_is_local(dir, fs, sizeof fs)) {
        printf("e2e-train: no TensorBoard events: %s is on %s, a network file system (--tensorboard writes them "
               "anyway)\n", dir, fs);
        return 0;
    }
    long latest;
    if (settle_earlier(dir, resume_step, &latest)) return -1;
    /* after every earlier file in name order: a time stamp past theirs */
    long stamp = (long)time(NULL) > latest ? (long)time(NULL) : latest + 1;
    char host[256] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(tb->path, sizeof tb->path, "%s/" TB_EVENT_PREFIX "%010ld.%s.%ld", dir, stamp, host, (long)getpid());
    tb->fd = open(tb->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (tb->fd < 0) return e2e_fail("%s: cannot create the TensorBoard event file (%s)", tb->path, strerror(errno));
    tb->on = 1;
    tb->last_write = monotonic_seconds();
    add_record(tb, 0, "", 0.0f, 1);
    tensorboard_flush(tb, 1);
    return tb->on ? 0 : e2e_fail("%s: cannot write TensorBoard events", tb->path);
}

/* ---- where the run folder lies ---- */

int tensorboard_folder_is_local(const char *dir, char *fs, size_t size) {
    static const struct { long magic; const char *name; } remote[] = {
        {0x6969, "NFS"}, {0x0BD00BD0, "Lustre"}, {0x47504653, "GPFS"}, {0x19830326, "BeeGFS"},
        {(long)0xFF534D42, "CIFS"}, {(long)0xFE534D42, "SMB2"}, {0x517B, "SMB"}, {0x00C36400, "Ceph"},
        {0x5346414F, "AFS"}, {(long)0xAAD7AAEA, "Panasas"}, {0x65735546, "FUSE"}, {0x01021997, "9p"}};
    struct statfs st;
    snprintf(fs, size, "?");
    if (statfs(dir, &st) != 0) return 1;  /* not there yet: the caller's folder check says why */
    for (size_t i = 0; i < sizeof remote / sizeof *remote; i++)
        if ((long)(unsigned)st.f_type == remote[i].magic) {
            snprintf(fs, size, "%s", remote[i].name);
            return 0;
        }
    return 1;
}
