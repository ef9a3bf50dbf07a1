/* What the run's recorders cost a training step, against the step itself: rank 0's
 * TensorBoard events (tensorboard_step: two scalars encoded into the buffer, a write
 * every 5 s), and the timeline's phase switches (12 a step) outside a --trace window
 * (the default: nothing recorded) and inside one. The step is one training pass of the
 * ResNet-15 on the CPU backend at the given batch and image size, timed in the same run.
 * usage: bench_recorders [BATCH [SIZE [DIR]]]   (32, 40, /tmp) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"
#include "rng.h"
#include "tensorboard.h"
#include "timeline.h"

/* seconds of one training pass (forward, loss, backward), best of 5 after a warm-up */
static double step_seconds(int batch, int size) {
    NetOps *ops = net_cpu_create(0);
    ModelConfig cfg = model_default_config(batch);
    cfg.in_channels = 4;
    cfg.height = cfg.width = size;
    Model *m = NULL;
    if (model_create(&m, &cfg, ops)) return -1;
    model_init(m, 1);
    size_t nx = (size_t)batch * 4 * size * size;
    float *x = malloc(nx * 4), *s = malloc((size_t)batch * 8), *t = malloc((size_t)batch * 4);
    Rng r;
    rng_seed(&r, 2);
    for (size_t i = 0; i < nx; i++) x[i] = rng_uniform(&r);
    for (int i = 0; i < batch; i++) s[2 * i] = s[2 * i + 1] = t[i] = rng_uniform(&r);
    Batch b = {.n = batch, .x = x, .scalars = s, .target = t};
    double best = 1e30;
    for (int k = 0; k < 6; k++) {
        double t0 = monotonic_seconds();
        model_train_pass(m, &b);
        if (k && monotonic_seconds() - t0 < best) best = monotonic_seconds() - t0;
    }
    model_free(m);
    ops->destroy(ops);
    free(x), free(s), free(t);
    return best;
}

/* seconds per step of n steps' phase switches, recording or not */
static double phases_seconds(long n, int recording) {
    Timeline tl;
    memset(&tl, 0, sizeof tl);
    tl.recording = recording;
    static const TracePhase step[] = {TL_DATA, TL_FORWARD, TL_BACKWARD, TL_DATA, TL_H2D, TL_CHECK,
                                      TL_AGREE, TL_ALLREDUCE, TL_OPTIMIZER, TL_NONE, TL_DATA, TL_NONE};
    double t0 = monotonic_seconds();
    for (long i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof step / sizeof *step; k++) timeline_phase(&tl, step[k]);
    double dt = (monotonic_seconds() - t0) / n;
    timeline_free(&tl);
    return dt;
}

int main(int argc, char **argv) {
    int batch = argc > 1 ? atoi(argv[1]) : 32, size = argc > 2 ? atoi(argv[2]) : 40;
    const char *dir = argc > 3 ? argv[3] : "/tmp";
    char sub[512], cmd[600];
    snprintf(sub, sizeof sub, "%s/bench-recorders-%ld", dir, (long)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", sub);
    if (system(cmd) != 0) return 1;
    enum { N = 200000 };
    TensorBoard tb;
    if (tensorboard_open(&tb, sub, 1, -1)) {
        fprintf(stderr, "bench_recorders: %s\n", e2e_error());
        return 1;
    }
    double t0 = monotonic_seconds();
    for (long i = 1; i <= N; i++) tensorboard_step(&tb, i, 0.5 / i, 1e-3);
    tensorboard_flush(&tb, 1);  /* every byte written: the amortized cost */
    double tb_s = (monotonic_seconds() - t0) / N;
    tensorboard_close(&tb);
    double off = phases_seconds(N, 0), on = phases_seconds(N / 10, 1);
    double step = step_seconds(batch, size);
    printf("one training pass (CPU, batch %d, 4 x %d x %d): %.3f ms\n", batch, size, size, step * 1e3);
    printf("TensorBoard events, per optimizer step: %.3f us (%.4f%% of the pass)\n", tb_s * 1e6, 100 * tb_s / step);
    printf("timeline phases, per step, outside a --trace window: %.3f us (%.4f%%); inside: %.3f us (%.4f%%)\n",
           off * 1e6, 100 * off / step, on * 1e6, 100 * on / step);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sub);
    return system(cmd) != 0;
}
