/* CPU training throughput of ResNet-15 (one process, OpenMP threads): samples/s, the
 * fraction of the machine's measured FMA peak, and the per-op time breakdown. Prints a
 * readable report and, last, one JSON line for tests/bench/cpu_vs_torch.sh.
 *   bench_cpu_train [--batch 32] [--threads 2] [--steps 20] [--channels 8] [--size 125] */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "fma_peak.h"
#include "model.h"
#include "ops_profile.h"
#include "rng.h"

static void step(Model *m, Adam *a, int n, const float *x, const float *sc, const float *t) {
    model_forward(m, n, x, sc);
    model_loss(m, t, NULL);
    model_backward(m);
    adam_step(a, 1e-3f, model_params(m), model_grads(m));
}

int main(int argc, char **argv) {
    int batch = 32, threads = 2, steps = 20, channels = 8, size = 125;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--batch")) batch = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--channels")) channels = v;
        else if (!strcmp(argv[i], "--size")) size = v;
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    ModelConfig cfg = model_default_config(batch);
    cfg.in_channels = channels;
    cfg.height = cfg.width = size;
    NetOps *cpu = net_cpu_create(threads);
    OpsProfile prof = {0};
    NetOps *ops = ops_profile_wrap(cpu, &prof);
    Model *m;
    if (!cpu || model_create(&m, &cfg, ops)) {
        fprintf(stderr, "bench: %s\n", net_error());
        return 1;
    }
    model_init(m, 1);
    Adam adam;
    adam_create(&adam, ops, model_arena_size(m), adam_default_hyper());
    Rng rng;
    rng_seed(&rng, 5);
    size_t nx = (size_t)batch * channels * size * size;
    float *x = malloc(sizeof(float) * nx), *sc = malloc(sizeof(float) * 2 * batch);
    float *t = malloc(sizeof(float) * batch);
    for (size_t i = 0; i < nx; i++) x[i] = rng_uniform(&rng) < 0.2f ? rng_uniform(&rng) : 0.0f;
    for (int i = 0; i < 2 * batch; i++) sc[i] = rng_uniform(&rng);
    for (int i = 0; i < batch; i++) t[i] = rng_uniform(&rng);

    /* profiled steps (a sync after every op) for the breakdown ... */
    step(m, &adam, batch, x, sc, t);
    memset(&prof, 0, sizeof prof);
    const int prof_steps = 3;
    for (int s = 0; s < prof_steps; s++) step(m, &adam, batch, x, sc, t);
    OpsProfile profiled = prof;
    /* ... and plain timed steps for the throughput */
    double t0 = omp_get_wtime();
    for (int s = 0; s < steps; s++) step(m, &adam, batch, x, sc, t);
    double dt = (omp_get_wtime() - t0) / steps;

    prof = profiled;
    double flops = (prof.conv_flops[0] + prof.conv_flops[1] + prof.conv_flops[2]) / prof_steps;
    double peak = fma_peak_gflops(threads, 1.0);
    double sps = batch / dt, gflops = flops / dt / 1e9;
    const char *kind = getenv("E2E_CPU_CONV") && !strcmp(getenv("E2E_CPU_CONV"), "gemm")
                           ? "im2col+OpenBLAS" : "direct AVX2";
    printf("e2e-ddp CPU training, ResNet-15 %dx%dx%d, batch %d, %d threads, convolutions: %s\n",
           channels, size, size, batch, threads, kind);
    printf("  step %.1f ms, %.1f samples/s, %.1f GFLOP/s (convolutions: %.3f GFLOP per sample)\n",
           dt * 1e3, sps, gflops, flops / batch / 1e9);
    printf("  measured FMA peak %.1f GFLOP/s -> %.1f%% of peak\n", peak, 100 * gflops / peak);
    double total = 0;
    for (int k = 0; k < PROF_KINDS; k++) total += prof.seconds[k];
    printf("  per-op time (profiled steps, synchronised per op):\n");
    for (int k = 0; k < PROF_KINDS; k++) {
        if (!prof.calls[k]) continue;
        double ms = 1e3 * prof.seconds[k] / prof_steps;
        printf("    %-22s %8.2f ms %5.1f%%", ops_profile_name(k), ms, 100 * prof.seconds[k] / total);
        if (k <= PROF_CONV_BWD_FILTER)
            printf("  %6.1f GFLOP/s", prof.conv_flops[k] / prof.seconds[k] / 1e9);
        printf("\n");
    }
    printf("{\"impl\": \"e2e-ddp\", \"batch\": %d, \"threads\": %d, \"samples_per_s\": %.3f, "
           "\"gflops\": %.3f, \"peak_gflops\": %.3f, \"flop_per_sample\": %.0f}\n",
           batch, threads, sps, gflops, peak, flops / batch);
    adam_free(&adam);
    model_free(m);
    ops->destroy(ops);
    cpu->destroy(cpu);
    free(x), free(sc), free(t);
    return 0;
}
