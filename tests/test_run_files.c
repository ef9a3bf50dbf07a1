/* The run folder's files (dist/run/run_files.h): results.json holds the run's outcome as
 * one JSON object; metrics rows append under one header and a resumed run cuts them back
 * to its epoch; durations and JSON strings format as documented. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "run_files.h"

static char *slurp(const char *dir, const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int lines(const char *s) {
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

int main(void) {
    char dir[] = "/tmp/e2e-run-files-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    CHECK(run_prepare(dir) == 0, "run_prepare: %s", e2e_error());

    RunResults r = {.best_epoch = 7, .best_val_mae = 41.25, .test_loss = 0.0825, .test_mae = 41.5,
                    .test_mre = 0.25, .test_jets = 300, .mre_jets = 200, .epochs = 8,
                    .global_steps = 224, .ranks = 2, .train_time_s = 12.5};
    CHECK(run_write_results(dir, &r) == 0, "run_write_results: %s", e2e_error());
    char *json = slurp(dir, "results.json");
    CHECK(json && strcmp(json, "{\"best_epoch\": 7, \"best_val_mae_gev\": 41.2500, \"test_loss\": 0.082500, "
                               "\"test_mae_gev\": 41.5000, \"test_mre\": 0.250000, \"test_jets\": 300, "
                               "\"mre_jets\": 200, \"epochs\": 8, \"global_steps\": 224, \"ranks\": 2, "
                               "\"train_time_s\": 12.50, \"best_checkpoint\": \"checkpoints/best.h5\", "
                               "\"stopped_early\": false, \"stopped_epoch\": null}\n") == 0, "results.json: %s", json);
    free(json);
    r.stopped_early = 1;
    CHECK(run_write_results(dir, &r) == 0, "run_write_results: %s", e2e_error());
    json = slurp(dir, "results.json");
    CHECK(json && strstr(json, "\"stopped_early\": true, \"stopped_epoch\": 8}"), "an early stop in results.json: %s",
          json);
    free(json);

    for (long e = 1; e <= 3; e++) {
        EpochMetrics m = {.epoch = e, .lr = 1e-3, .train_loss = 0.1 * e, .val_mae = 50.0 - e};
        CHECK(run_append_metrics(dir, &m) == 0, "append epoch %ld: %s", e, e2e_error());
    }
    char *csv = slurp(dir, "metrics.csv"), *jl = slurp(dir, "metrics.jsonl");
    CHECK(lines(csv) == 4 && strncmp(csv, "epoch,lr,", 9) == 0, "metrics.csv: a header and 3 rows");
    CHECK(lines(jl) == 3 && strncmp(jl, "{\"epoch\": 1,", 12) == 0, "metrics.jsonl: 3 rows");
    free(csv), free(jl);
    CHECK(run_truncate_metrics(dir, 2) == 0, "truncate: %s", e2e_error());
    csv = slurp(dir, "metrics.csv"), jl = slurp(dir, "metrics.jsonl");
    CHECK(lines(csv) == 2 && lines(jl) == 1, "a run resumed at epoch 2 keeps epoch 1 only");
    free(csv), free(jl);

    char s[64];
    run_format_duration(3725.4, s, sizeof s);
    CHECK(strcmp(s, "01:02:05") == 0, "duration: %s", s);
    run_format_duration(-1, s, sizeof s);
    CHECK(strcmp(s, "--:--:--") == 0, "unknown duration: %s", s);
    run_json_string("a\"b\\c\n", s, sizeof s);
    CHECK(strcmp(s, "\"a\\\"b\\\\c\\u000a\"") == 0, "JSON string: %s", s);

    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_main_result("test_run_files");
}
