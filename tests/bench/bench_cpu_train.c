/* CPU training throughput of ResNet-15 (one process, OpenMP threads) for each setting of
 * the convolution engines (E2E_CPU_CONV=auto, direct, onednn), measured in interleaved
 * rounds so a shared machine disturbs them alike; the engines the model chose for
 * each convolution; every convolution pass timed on each engine; the fraction of the
 * machine's measured peak (float32: FMAs at its widest vector; bf16: AVX512-BF16 dot
 * products, or AMX tiles where it has them); and the per-op time breakdown.
 * Prints a readable report and, last, one JSON line for tests/bench/cpu_vs_torch.sh.
 *   bench_cpu_train [--batch 32] [--threads 2] [--steps 20] [--channels 8] [--size 125]
 *                   [--rounds 3] [--report 1] [--precision fp32|bf16]
 * --report 0 prints the throughput and the JSON line only (the repeats of cpu_vs_torch.sh).
 * In bf16 "direct" is our AVX512-BF16 kernels (forward, backward filter) and our float
 * kernels on widened operands (backward data: slower than fp32), so --precision bf16
 * times auto and onednn as a whole, and direct pass by pass. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "cpu/conv_engine.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "fma_peak.h"
#include "model.h"
#include "ops_profile.h"
#include "rng.h"

enum { MODES = 3 };
static const char *mode_names[MODES] = {"auto", "direct", "onednn"};

typedef struct {
    NetOps *cpu, *ops;     /* the backend, and it wrapped by the profiler */
    OpsProfile prof;
    Model *m;
    Adam adam;
    double best_sps;
} Run;

static void step(Run *r, int n, const float *x, const float *sc, const float *t) {
    model_forward(r->m, n, x, sc);
    model_loss(r->m, t, NULL);
    model_backward(r->m);
    adam_step(&r->adam, 1e-3f, model_params(r->m), model_grads(r->m));
}

static int start(Run *r, const char *mode, const ModelConfig *cfg, int threads, const char *precision) {
    setenv("E2E_CPU_CONV", mode, 1);
    r->cpu = net_cpu_create_precision(threads, precision);
    unsetenv("E2E_CPU_CONV");
    if (!r->cpu) return -1;
    r->ops = ops_profile_wrap(r->cpu, &r->prof);
    if (model_create(&r->m, cfg, r->ops)) return -1;
    model_init(r->m, 1);
    return adam_create(&r->adam, r->ops, model_arena_size(r->m), adam_default_hyper());
}

/* The CPU's model name and the vector ISA flags that matter here. */
static void print_machine(char *isa, size_t len) {
    char line[4096], model[160] = "unknown CPU";
    const char *want[] = {"avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                          "amx_tile", "amx_bf16"};
    isa[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
        }
        if (!strncmp(line, "flags", 5)) {
            for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
                char key[32];
                snprintf(key, sizeof key, " %s ", want[i]);
                line[strcspn(line, "\n")] = ' ';
                if (strstr(line, key))
                    snprintf(isa + strlen(isa), len - strlen(isa), "%s%s", isa[0] ? " " : "", want[i]);
            }
            break;
        }
    }
    if (f) fclose(f);
    printf("machine: %s; vector ISA: %s\n", model, isa[0] ? isa : "none of avx2/avx512");
}

/* The model's convolutions whose weights have the geometry's shape, e.g.
 * "layer1.0.conv1 layer1.0.conv2 ...". */
static void conv_names(Model *m, const ConvShape *s, char *buf, size_t len) {
    buf[0] = '\0';
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *t = model_tensor(m, i);
        if (t->ndim != 4 || t->shape[0] != s->out_c || t->shape[1] != s->in_c || t->shape[2] != s->k_h ||
            t->shape[3] != s->k_w)
            continue;
        size_t at = strlen(buf);
        snprintf(buf + at, len - at, "%s%.*s", at ? " " : "", (int)(strlen(t->name) - strlen(".weight")), t->name);
    }
}

/* Every convolution pass of the model on each engine, at the model's batch; where the
 * direct kernels run at 512 bits, also at 256 (what an AVX2 machine runs). */
static void print_passes(Run *r, int rounds) {
    CpuCtx *c = r->cpu->ctx;
    static const char *pass[CONV_OPS] = {"forward", "backward data", "backward filter"};
    const int wide = c->bf16 ? 0 : c->direct;  /* bf16: our engine is the float one on bf16 operands */
    printf("\nconvolution passes, ms per batch (at least %d runs after a warm-up, best; direct%s = our "
           "kernels, or gemm where they do not apply):\n", rounds, wide == 512 ? "-512" : wide == 256 ? "-256" : "");
    if (c->bf16)
        printf("  (bf16: \"direct\" is our AVX512-BF16 kernels, or our float kernels on widened operands where they "
               "do not apply (backward data); oneDNN is its bf16 kernels)\n");
    printf("  %-28s %-16s %10s %10s %9s %7s  %-8s %s\n", "geometry", "pass", wide == 512 ? "direct-512" : "direct",
           wide == 512 ? "direct-256" : "", "oneDNN", "ratio", "runs", "oneDNN kernel");
    for (int i = 0; i < conv_engines_count(c); i++) {
        ConvPlanEntry e = *conv_engines_entry(c, i), e256 = e;
        const ConvPlanEntry *chosen = conv_engines_entry(c, i);
        conv_engine_time(c, &e, rounds);
        if (wide == 512) {
            c->direct = 256;
            conv_engine_time(c, &e256, rounds);
            c->direct = wide;
        }
        char geo[64], names[512];
        snprintf(geo, sizeof geo, "%dx%dx%d>%d k%d s%d p%d%s", e.s.in_c, e.s.in_h, e.s.in_w, e.s.out_c,
                 e.s.k_h, e.s.stride, e.s.pad, e.lay == LAYOUT_NCHW ? " nchw" : "");
        conv_names(r->m, &e.s, names, sizeof names);
        printf("  %s (%s)\n", geo, names);
        for (int op = 0; op < CONV_OPS; op++) {
            if (chosen->engine[op] == ENGINE_NONE) continue;
            const char *k = conv_engines_onednn_kernel(c, op, &e.s, e.lay);
            char narrow[16] = "";
            if (wide == 512) snprintf(narrow, sizeof narrow, "%.3f", e256.ms[op][0]);
            char own[16] = "-", ratio[16] = "-";  /* bf16: ours not timed where it is the widened float path */
            if (e.ms[op][0] > 0) snprintf(own, sizeof own, "%.3f", e.ms[op][0]);
            if (e.ms[op][0] > 0 && e.ms[op][1] > 0) snprintf(ratio, sizeof ratio, "%.2fx", e.ms[op][0] / e.ms[op][1]);
            printf("  %-28s %-16s %10s %10s %9.3f %7s  %-8s %s\n", "", pass[op], own, narrow, e.ms[op][1], ratio,
                   conv_engine_name(chosen->engine[op]), k ? k : "(reference only: not used)");
        }
    }
}

static void print_profile(const OpsProfile *prof, int steps) {
    double total = 0;
    for (int k = 0; k < PROF_KINDS; k++) total += prof->seconds[k];
    printf("\nper-op time, engines auto (profiled steps, synchronised per op):\n");
    for (int k = 0; k < PROF_KINDS; k++) {
        if (!prof->calls[k]) continue;
        printf("    %-22s %8.2f ms %5.1f%%", ops_profile_name(k), 1e3 * prof->seconds[k] / steps,
               100 * prof->seconds[k] / total);
        if (k <= PROF_CONV_BWD_FILTER) printf("  %6.1f GFLOP/s", prof->conv_flops[k] / prof->seconds[k] / 1e9);
        printf("\n");
    }
}

typedef struct {
    int batch, threads, steps, channels, size, rounds, report;
    const char *precision;
} Options;

static int parse(int argc, char **argv, Options *o) {
    *o = (Options){.batch = 32, .threads = 2, .steps = 20, .channels = 8, .size = 125, .rounds = 3,
                   .report = 1, .precision = "fp32"};
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--precision")) o->precision = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) o->batch = v;
        else if (!strcmp(argv[i], "--threads")) o->threads = v;
        else if (!strcmp(argv[i], "--steps")) o->steps = v;
        else if (!strcmp(argv[i], "--channels")) o->channels = v;
        else if (!strcmp(argv[i], "--size")) o->size = v;
        else if (!strcmp(argv[i], "--rounds")) o->rounds = v;
        else if (!strcmp(argv[i], "--report")) o->report = v;
        else return fprintf(stderr, "unknown option %s\n", argv[i]), -1;
    }
    return 0;
}

/* Interleaved rounds of `steps` steps of every setting; each keeps its best. */
static void time_settings(Run *runs, const int *have, const Options *o, const float *x,
                          const float *sc, const float *t) {
    for (int k = 1; k < MODES; k++)
        if (have[k]) step(&runs[k], o->batch, x, sc, t);  /* warm-up */
    for (int r = 0; r < o->rounds; r++)
        for (int k = 0; k < MODES; k++) {
            if (!have[k]) continue;
            double t0 = omp_get_wtime();
            for (int s = 0; s < o->steps; s++) step(&runs[k], o->batch, x, sc, t);
            double sps = o->batch * o->steps / (omp_get_wtime() - t0);
            if (sps > runs[k].best_sps) runs[k].best_sps = sps;
        }
}

int main(int argc, char **argv) {
    Options o;
    if (parse(argc, argv, &o)) return 2;
    const int batch = o.batch, threads = o.threads;
    ModelConfig cfg = model_default_config(batch);
    cfg.in_channels = o.channels;
    cfg.height = cfg.width = o.size;
    char isa[256];
    printf("e2e-ddp CPU training, ResNet-15 %dx%dx%d, batch %d, %d threads\n", o.channels, o.size, o.size,
           batch, threads);
    print_machine(isa, sizeof isa);
    Run runs[MODES] = {{0}};
    int have[MODES] = {0}, bf16 = !strcmp(o.precision, "bf16");
    for (int k = 0; k < MODES; k++) {
        if (bf16 && k == 1) {
            printf("engines direct: not timed as a whole in bf16 (its backward data is our float kernels on "
                   "widened operands); its passes are below\n");
            continue;
        }
        have[k] = start(&runs[k], mode_names[k], &cfg, threads, o.precision) == 0;
        if (!have[k]) printf("engines %s: not available (%s)\n", mode_names[k], e2e_error());
    }
    if (!have[0]) return 1;
    /* the widest vector in use: the CPU's, unless ONEDNN_MAX_CPU_ISA caps it */
    int bits = fma_widest_bits(), direct = ((CpuCtx *)runs[0].cpu->ctx)->direct;
    const char *capped = direct && direct < bits ? " (capped by ONEDNN_MAX_CPU_ISA)" : "";
    if (*capped) bits = direct;
    double peak = fma_peak_gflops_bits(threads, 1.0, bits), peak256 = fma_peak_gflops_bits(threads, 0.5, 256);
    printf("measured FMA peak: %.1f GFLOP/s at %d bits, the widest in use%s; %.1f GFLOP/s at 256 bits\n", peak,
           bits, capped, peak256);
    const char *peak_kind = "fma";
    char peak_name[64];
    snprintf(peak_name, sizeof peak_name, "%d-bit FMA", bits);
    if (bf16) {  /* the bf16 run is set against the bf16 peak */
        peak = bf16_peak_gflops(threads, 1.0, &peak_kind);
        snprintf(peak_name, sizeof peak_name, "bf16 (%s)", peak_kind);
        printf("measured bf16 peak: %.1f GFLOP/s (%s)\n", peak, peak_kind);
    }
    printf("%s\n", net_cpu_conv_report(runs[0].cpu));

    Rng rng;
    rng_seed(&rng, 5);
    size_t nx = (size_t)batch * o.channels * o.size * o.size;
    float *x = malloc(sizeof(float) * nx), *sc = malloc(sizeof(float) * 2 * batch);
    float *t = malloc(sizeof(float) * batch);
    for (size_t i = 0; i < nx; i++) x[i] = rng_uniform(&rng) < 0.2f ? rng_uniform(&rng) : 0.0f;
    for (int i = 0; i < 2 * batch; i++) sc[i] = rng_uniform(&rng);
    for (int i = 0; i < batch; i++) t[i] = rng_uniform(&rng);

    /* profiled steps of auto for the breakdown and the FLOP count, then timed steps */
    const int prof_steps = 3;
    step(&runs[0], batch, x, sc, t);
    memset(&runs[0].prof, 0, sizeof runs[0].prof);
    for (int s = 0; s < prof_steps; s++) step(&runs[0], batch, x, sc, t);
    OpsProfile prof = runs[0].prof;
    double flop = (prof.conv_flops[0] + prof.conv_flops[1] + prof.conv_flops[2]) / prof_steps / batch;
    time_settings(runs, have, &o, x, sc, t);
    printf("\nthroughput (best of %d rounds of %d steps; %.3f GFLOP of convolutions per sample):\n", o.rounds,
           o.steps, flop / 1e9);
    for (int k = 0; k < MODES; k++)
        if (have[k])
            printf("  engines %-7s %8.1f samples/s  %7.1f GFLOP/s  %5.1f%% of the %s peak\n", mode_names[k],
                   runs[k].best_sps, runs[k].best_sps * flop / 1e9, 100 * runs[k].best_sps * flop / 1e9 / peak,
                   peak_name);
    if (o.report) {
        print_passes(&runs[0], o.rounds);
        print_profile(&prof, prof_steps);
    }
    printf("{\"impl\": \"e2e-ddp\", \"precision\": \"%s\", \"batch\": %d, \"threads\": %d, \"samples_per_s\": %.3f, "
           "\"samples_per_s_direct\": %.3f, \"samples_per_s_onednn\": %.3f, \"peak_gflops\": %.3f, "
           "\"peak_kind\": \"%s\", \"peak_bits\": %d, \"peak_gflops_256\": %.3f, \"flop_per_sample\": %.0f, "
           "\"isa\": \"%s\"}\n",
           o.precision, batch, threads, runs[0].best_sps, runs[1].best_sps, runs[2].best_sps, peak, peak_kind, bits,
           peak256, flop, isa);
    for (int k = 0; k < MODES; k++) {
        if (!have[k]) continue;
        adam_free(&runs[k].adam);
        model_free(runs[k].m);
        runs[k].ops->destroy(runs[k].ops);
        runs[k].cpu->destroy(runs[k].cpu);
    }
    free(x), free(sc), free(t);
    return 0;
}
