#include "run_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

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
    char ck[4200];
    snprintf(ck, sizeof ck, "%s/checkpoints", dir);
    if (mkdir_p(dir) || mkdir_p(ck))
        return net_fail("%s: cannot create the run folder (%s)", dir, strerror(errno));
    return 0;
}

int run_write_text(const char *dir, const char *name, const char *text) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return net_fail("%s: cannot write (%s)", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) return net_fail("%s: cannot write (%s)", path, strerror(errno));
    return 0;
}

int run_write_results(const char *dir, const RunResults *r) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"best_epoch\": %ld, \"best_val_mae_gev\": %.4f, \"test_loss\": %.6f, "
             "\"test_mae_gev\": %.4f, \"test_mre\": %.6f, \"test_jets\": %lld, "
             "\"mre_jets\": %lld, \"epochs\": %ld, \"global_steps\": %ld, \"ranks\": %d, "
             "\"train_time_s\": %.2f}\n",
             r->best_epoch, r->best_val_mae, r->test_loss, r->test_mae, r->test_mre, r->test_jets,
             r->mre_jets, r->epochs, r->global_steps, r->ranks, r->train_time_s);
    return run_write_text(dir, "results.json", json);
}

#define CSV_HEADER                                                                          \
    "epoch,lr,train_loss,val_loss,val_mae_gev,val_mre,epoch_s,samples_per_s,data_wait_frac," \
    "allreduce_frac,skipped_steps,sync_wait_frac\n"

int run_append_metrics(const char *dir, const EpochMetrics *e) {
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "a");
    if (!f) return net_fail("%s: cannot append (%s)", path, strerror(errno));
    if (ftell(f) == 0) fputs(CSV_HEADER, f);
    fprintf(f, "%ld,%.6g,%.6f,%.6f,%.4f,%.6f,%.3f,%.2f,%.4f,%.4f,%ld,%.4f\n", e->epoch, e->lr,
            e->train_loss, e->val_loss, e->val_mae, e->val_mre, e->epoch_s, e->samples_per_s,
            e->data_wait_frac, e->allreduce_frac, e->skipped_steps, e->sync_wait_frac);
    int bad = fclose(f) != 0;
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    f = fopen(path, "a");
    if (!f) return net_fail("%s: cannot append (%s)", path, strerror(errno));
    fprintf(f,
            "{\"epoch\": %ld, \"lr\": %.6g, \"train_loss\": %.6f, \"val_loss\": %.6f, "
            "\"val_mae_gev\": %.4f, \"val_mre\": %.6f, \"epoch_s\": %.3f, \"samples_per_s\": %.2f, "
            "\"data_wait_frac\": %.4f, \"allreduce_frac\": %.4f, \"skipped_steps\": %ld, "
            "\"sync_wait_frac\": %.4f}\n",
            e->epoch, e->lr, e->train_loss, e->val_loss, e->val_mae, e->val_mre, e->epoch_s,
            e->samples_per_s, e->data_wait_frac, e->allreduce_frac, e->skipped_steps,
            e->sync_wait_frac);
    bad |= fclose(f) != 0;
    return bad ? net_fail("%s: write failed", path) : 0;
}

/* keeps the lines of `name` whose leading number (epoch) is < first_epoch; header kept */
static int truncate_file(const char *dir, const char *name, long first_epoch, int json) {
    char path[4200], tmp[4300], line[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *in = fopen(path, "r");
    if (!in) return 0;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return net_fail("%s: cannot rewrite (%s)", tmp, strerror(errno));
    }
    while (fgets(line, sizeof line, in)) {
        long epoch = -1;
        int numbered = json ? sscanf(line, "{\"epoch\": %ld", &epoch) == 1
                            : sscanf(line, "%ld,", &epoch) == 1;
        if (!numbered || epoch < first_epoch) fputs(line, out);
    }
    fclose(in);
    if (fclose(out) || rename(tmp, path)) return net_fail("%s: cannot rewrite", path);
    return 0;
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
