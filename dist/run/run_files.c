/* The run folder's files, written by rank 0 through outfile.h (run_files.h): config.json,
 * metrics.csv/.jsonl, results.json (the regression's columns, or a classifier's). */
#include "run_files.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "outfile.h"

static int mkdir_p(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

int run_prepare(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return e2e_fail("%s: is a file, not a folder: --out names the run folder", dir);
    char ck[4200];
    snprintf(ck, sizeof ck, "%s/checkpoints", dir);
    if (mkdir_p(dir) || mkdir_p(ck))
        return e2e_fail("%s: cannot create the run folder (%s)", dir, strerror(errno));
    return 0;
}

/* path's whole text (malloc'd), or NULL when it does not exist (*missing = 1) or
 * cannot be read */
static char *read_text(const char *path, int *missing) {
    *missing = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = errno == ENOENT;
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown) free(buf);
            buf = grown;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* the run folder's file name, written whole through net/base/outfile.h */
static int write_whole(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return out_write_file(path, text, strlen(text)) ? e2e_fail("%s", e2e_error()) : 0;
}

int run_write_text(const char *dir, const char *name, const char *text) { return write_whole(dir, name, text); }

const char *run_json_number_text(double v, const char *fmt, char *out) {
    if (isfinite(v)) snprintf(out, 32, fmt, v);
    else snprintf(out, 32, "null");
    return out;
}

/* results.json of a classifier */
static int write_class_results(const char *dir, const RunResults *r) {
    char json[2048], r30[32], r50[32], stopped[32] = "null";
    if (r->stopped_early) snprintf(stopped, sizeof stopped, "%ld", r->epochs);
    snprintf(json, sizeof json,
             "{\"task\": \"classification\", \"best_epoch\": %ld, \"best_%s\": %.6f, \"test_loss\": %.6f, "
             "\"test_accuracy\": %.6f, \"test_auc\": %.10f, \"test_rejection_30\": %s, \"test_rejection_50\": %s, "
             "\"test_jets\": %lld, \"test_signal_jets\": %lld, \"epochs\": %ld, \"global_steps\": %ld, "
             "\"ranks\": %d, \"train_time_s\": %.2f, \"best_checkpoint\": \"checkpoints/best.h5\", "
             "\"stopped_early\": %s, \"stopped_epoch\": %s}\n",
             r->best_epoch, r->monitor, r->best_val, r->test_loss, r->test_accuracy, r->test_auc,
             run_json_number_text(r->test_rejection30, "%.4f", r30), run_json_number_text(r->test_rejection50, "%.4f", r50),
             r->test_jets, r->test_signal_jets, r->epochs, r->global_steps, r->ranks, r->train_time_s,
             r->stopped_early ? "true" : "false", stopped);
    return run_write_text(dir, "results.json", json);
}

int run_write_results(const char *dir, const RunResults *r) {
    if (r->classify) return write_class_results(dir, r);
    char json[2048], stopped[32] = "null";
    if (r->stopped_early) snprintf(stopped, sizeof stopped, "%ld", r->epochs);
    snprintf(json, sizeof json,
             "{\"best_epoch\": %ld, \"best_val_mae_gev\": %.4f, \"test_loss\": %.6f, "
             "\"test_mae_gev\": %.4f, \"test_mre\": %.6f, \"test_jets\": %lld, "
             "\"mre_jets\": %lld, \"epochs\": %ld, \"global_steps\": %ld, \"ranks\": %d, "
             "\"train_time_s\": %.2f, \"best_checkpoint\": \"checkpoints/best.h5\", \"stopped_early\": %s, "
             "\"stopped_epoch\": %s}\n",
             r->best_epoch, r->best_val_mae, r->test_loss, r->test_mae, r->test_mre, r->test_jets,
             r->mre_jets, r->epochs, r->global_steps, r->ranks, r->train_time_s, r->stopped_early ? "true" : "false",
             stopped);
    return run_write_text(dir, "results.json", json);
}

#define CSV_HEADER                                                                          \
    "epoch,lr,train_loss,val_loss,val_mae_gev,val_mre,epoch_s,samples_per_s,data_wait_frac," \
    "allreduce_frac,skipped_steps,sync_wait_frac\n"

/* name's text with `first` prepended when the file is new and `line` appended,
 * rewritten whole (a full disk leaves the previous rows, never half a row) */
static int append_line(const char *dir, const char *name, const char *first, const char *line) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int missing;
    char *old = read_text(path, &missing);
    if (!old && !missing) return e2e_fail("%s: cannot read (%s)", path, strerror(errno));
    size_t n = (old ? strlen(old) : strlen(first)) + strlen(line) + 1;
    char *text = malloc(n);
    if (!text) {
        free(old);
        return e2e_fail("%s: out of memory", path);
    }
    snprintf(text, n, "%s%s", old ? old : first, line);
    free(old);
    int rc = write_whole(dir, name, text);
    free(text);
    return rc;
}

#define CLASS_CSV_HEADER                                                                         \
    "epoch,lr,train_loss,val_loss,val_auc,val_accuracy,val_rejection_30,val_rejection_50,epoch_s,samples_per_s," \
    "data_wait_frac,allreduce_frac,skipped_steps,sync_wait_frac\n"

/* a classifier's row (its AUC, accuracy and rejections where the regression has MAE, MRE) */
static int append_class_metrics(const char *dir, const EpochMetrics *e) {
    char row[1024], r30[32], r50[32];
    snprintf(row, sizeof row, "%ld,%.6g,%.6f,%.6f,%.6f,%.6f,%.4f,%.4f,%.3f,%.2f,%.4f,%.4f,%ld,%.4f\n", e->epoch, e->lr,
             e->train_loss, e->val_loss, e->val_auc, e->val_accuracy, e->val_rejection30, e->val_rejection50,
             e->epoch_s, e->samples_per_s, e->data_wait_frac, e->allreduce_frac, e->skipped_steps, e->sync_wait_frac);
    if (append_line(dir, "metrics.csv", CLASS_CSV_HEADER, row)) return -1;
    snprintf(row, sizeof row,
             "{\"epoch\": %ld, \"lr\": %.6g, \"train_loss\": %.6f, \"val_loss\": %.6f, \"val_auc\": %.10f, "
             "\"val_accuracy\": %.6f, \"val_rejection_30\": %s, \"val_rejection_50\": %s, \"epoch_s\": %.3f, "
             "\"samples_per_s\": %.2f, \"data_wait_frac\": %.4f, \"allreduce_frac\": %.4f, \"skipped_steps\": %ld, "
             "\"sync_wait_frac\": %.4f}\n",
             e->epoch, e->lr, e->train_loss, e->val_loss, e->val_auc, e->val_accuracy,
             run_json_number_text(e->val_rejection30, "%.4f", r30), run_json_number_text(e->val_rejection50, "%.4f", r50),
             e->epoch_s, e->samples_per_s, e->data_wait_frac, e->allreduce_frac, e->skipped_steps, e->sync_wait_frac);
    return append_line(dir, "metrics.jsonl", "", row);
}

int run_append_metrics(const char *dir, const EpochMetrics *e) {
    if (e->classify) return append_class_metrics(dir, e);
    char row[1024];
    snprintf(row, sizeof row, "%ld,%.6g,%.6f,%.6f,%.4f,%.6f,%.3f,%.2f,%.4f,%.4f,%ld,%.4f\n", e->epoch, e->lr,
             e->train_loss, e->val_loss, e->val_mae, e->val_mre, e->epoch_s, e->samples_per_s,
             e->data_wait_frac, e->allreduce_frac, e->skipped_steps, e->sync_wait_frac);
    if (append_line(dir, "metrics.csv", CSV_HEADER, row)) return -1;
    snprintf(row, sizeof row,
             "{\"epoch\": %ld, \"lr\": %.6g, \"train_loss\": %.6f, \"val_loss\": %.6f, "
             "\"val_mae_gev\": %.4f, \"val_mre\": %.6f, \"epoch_s\": %.3f, \"samples_per_s\": %.2f, "
             "\"data_wait_frac\": %.4f, \"allreduce_frac\": %.4f, \"skipped_steps\": %ld, "
             "\"sync_wait_frac\": %.4f}\n",
             e->epoch, e->lr, e->train_loss, e->val_loss, e->val_mae, e->val_mre, e->epoch_s,
             e->samples_per_s, e->data_wait_frac, e->allreduce_frac, e->skipped_steps, e->sync_wait_frac);
    return append_line(dir, "metrics.jsonl", "", row);
}

/* keeps the lines of `name` whose leading number (epoch) is < first_epoch; header kept */
static int truncate_file(const char *dir, const char *name, long first_epoch, int json) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int missing;
    char *text = read_text(path, &missing);
    if (!text) return missing ? 0 : e2e_fail("%s: cannot read (%s)", path, strerror(errno));
    char *out = text, *line = text;
    while (*line) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        long epoch = -1;
        int numbered = json ? sscanf(line, "{\"epoch\": %ld", &epoch) == 1 : sscanf(line, "%ld,", &epoch) == 1;
        if (!numbered || epoch < first_epoch) {
            memmove(out, line, len);
            out += len;
        }
        line += len;
    }
    *out = '\0';
    int rc = write_whole(dir, name, text);
    free(text);
    return rc;
}

int run_truncate_metrics(const char *dir, long first_epoch) {
    if (truncate_file(dir, "metrics.csv", first_epoch, 0)) return -1;
    return truncate_file(dir, "metrics.jsonl", first_epoch, 1);
}

void run_format_duration(double s, char *out, size_t size) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(out, size, "--:--:--");
        return;
    }
    long t = (long)(s + 0.5);
    snprintf(out, size, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void run_json_string(const char *s, char *out, size_t size) {
    size_t j = 0;
    if (size < 3) return;
    out[j++] = '"';
    for (; s && *s && j + 7 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[j++] = '\\';
            out[j++] = (char)ch;
        } else if (ch < 0x20) {
            j += snprintf(out + j, size - j, "\\u%04x", ch);
        } else {
            out[j++] = (char)ch;
        }
    }
    out[j++] = '"';
    out[j] = '\0';
}

/* the value after "key": at the top level of a flat object (the configuration's) */
static const char *json_value(const char *json, const char *key) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    return p;
}

int run_json_number(const char *json, const char *key, double *out) {
    const char *p = json_value(json, key);
    char *end;
    double v = p ? strtod(p, &end) : 0;
    if (!p || end == p) return -1;
    *out = v;
    return 0;
}

int run_json_text(const char *json, const char *key, char *out, size_t size) {
    const char *p = json_value(json, key);
    if (!p || *p != '"' || size == 0) return -1;
    size_t j = 0;
    for (p++; *p && *p != '"' && j + 1 < size; p++) {
        if (*p == '\\' && p[1]) p++;
        out[j++] = *p;
    }
    out[j] = '\0';
    return 0;
}
