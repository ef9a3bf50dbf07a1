/* e2e-eval: runs a checkpoint over a split of a dataset, sharded over the MPI ranks,
 * and writes the predictions (HDF5: index, m_true, m_pred in GeV) and the metrics
 * (JSON: loss, MAE, MRE). The split and the preprocessing come from the checkpoint
 * (its seed and scales), so "test" is the same test split the run held out. */
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "error.h"
#include "evaluate.h"
#include "run_files.h"
#include "session.h"

static const char *usage =
    "usage: mpirun -np N e2e-eval --checkpoint CKPT --data FILE [options]\n"
    "\n"
    "Evaluates an e2e-ddp checkpoint on a split of a dataset.\n"
    "\n"
    "  --checkpoint CKPT      checkpoint (e.g. RUNDIR/checkpoints/best.h5)\n"
    "  --data FILE            dataset the run was trained on (HDF5 or a list of files)\n"
    "  --split train|val|test split to evaluate (test)\n"
    "  --predictions OUT.h5   write index, m_true, m_pred (GeV) per jet\n"
    "  --metrics OUT.json     write loss, MAE, MRE\n"
    "  --batch B              samples per rank and step (256)\n"
    "  --device cpu|cuda      (cpu)   --precision fp32|tf32|bf16 (fp32)\n"
    "  --threads T            CPU threads per rank\n"
    "  --mre-min-mass GEV     MRE over jets above this mass (85)\n"
    "  --help\n"
    "Exit codes: 0 done, 1 error, 2 bad command line.\n";

typedef struct {
    const char *checkpoint, *data, *predictions, *metrics, *device, *precision;
    Split split;
    int batch, threads;
    double mre_min_mass;
} EvalArgs;

static int parse(int argc, char **argv, EvalArgs *a, int quiet) {
    static const struct option opts[] = {
        {"checkpoint", 1, 0, 'c'}, {"data", 1, 0, 'd'}, {"split", 1, 0, 's'},
        {"predictions", 1, 0, 'p'}, {"metrics", 1, 0, 'm'}, {"batch", 1, 0, 'b'},
        {"device", 1, 0, 'D'}, {"precision", 1, 0, 'P'}, {"threads", 1, 0, 't'},
        {"mre-min-mass", 1, 0, 'M'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    opterr = !quiet;
    int o;
    long long v;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'c': a->checkpoint = optarg; break;
        case 'd': a->data = optarg; break;
        case 'p': a->predictions = optarg; break;
        case 'm': a->metrics = optarg; break;
        case 'D': a->device = optarg; break;
        case 'P': a->precision = optarg; break;
        case 's':
            if (!strcmp(optarg, "train")) a->split = SPLIT_TRAIN;
            else if (!strcmp(optarg, "val")) a->split = SPLIT_VAL;
            else if (!strcmp(optarg, "test")) a->split = SPLIT_TEST;
            else {
                if (!quiet) fprintf(stderr, "e2e-eval: --split expects train, val or test, got '%s'\n", optarg);
                return -1;
            }
            break;
        case 'b':
        case 't':
            if (cli_ll("e2e-eval", o == 'b' ? "--batch" : "--threads", optarg, o == 'b' ? 1 : 0,
                       INT_MAX, &v, !quiet))
                return -1;
            (o == 'b' ? &a->batch : &a->threads)[0] = (int)v;
            break;
        case 'M':
            if (cli_double("e2e-eval", "--mre-min-mass", optarg, 0, DBL_MAX, &a->mre_min_mass, !quiet))
                return -1;
            break;
        case 'h': return 1;
        default: return -1;
        }
    }
    if (optind < argc) {
        if (!quiet) fprintf(stderr, "e2e-eval: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!a->checkpoint || !a->data) {
        if (!quiet) fprintf(stderr, "e2e-eval: --checkpoint and --data are required\n");
        return -1;
    }
    if (a->batch <= 0) {
        if (!quiet) fprintf(stderr, "e2e-eval: --batch must be positive\n");
        return -1;
    }
    return 0;
}

typedef struct {
    const char *json;
    const char *path;   /* --metrics, or NULL */
} Report;

/* Rank 0 prints the metrics and writes them to --metrics. */
static int report_root(void *arg) {
    const Report *r = arg;
    fputs(r->json, stdout);
    if (!r->path) return 0;
    FILE *f = fopen(r->path, "w");
    int bad = !f || fputs(r->json, f) < 0;
    if (f && fclose(f)) bad = 1;
    return bad ? net_fail("%s: cannot write the metrics", r->path) : 0;
}

static int run(const EvalArgs *a, Comm *c) {
    Session s = {.comm = c};
    CheckpointState *st = calloc(1, sizeof *st);
    Predictions preds = {0};
    int rc = -1;
    if (!st) {
        net_fail("out of host memory");
        goto done;
    }
    if (session_peek(&s, a->checkpoint, st)) goto done;
    SessionOptions so = {.backend = {.device = a->device, .threads = a->threads,
                                     .precision = a->precision},
                         .blocks = st->model.blocks, .from = st, .from_path = a->checkpoint};
    dataset_default_options(&so.data);
    so.data.path = a->data;
    so.data.comm = c->world;
    so.data.batch = a->batch;
    if (session_open(&s, &so) || session_load(&s, a->checkpoint, NULL)) goto done;
    EvalResult r;
    if (evaluate_split(c, s.model, s.data, a->split, a->mre_min_mass, &r,
                       a->predictions ? &preds : NULL))
        goto done;
    if (a->predictions && predictions_write(c, &preds, a->predictions)) goto done;
    static const char *names[] = {"train", "val", "test"};
    char ck[2048], json[4096];
    run_json_string(a->checkpoint, ck, sizeof ck);
    snprintf(json, sizeof json,
             "{\"checkpoint\": %s, \"split\": \"%s\", \"jets\": %lld, \"loss\": %.6f, "
             "\"mae_gev\": %.4f, \"mre\": %.6f, \"mre_jets\": %lld, \"mre_min_mass\": %g}\n",
             ck, names[a->split], r.count, r.loss, r.mae, r.mre, r.mre_count, a->mre_min_mass);
    Report report = {.json = json, .path = a->metrics};
    rc = comm_on_root(c, report_root, &report);
done:
    if (rc && c->rank == 0) fprintf(stderr, "e2e-eval: error: %s\n", net_error());
    predictions_free(&preds);
    session_close(&s);
    free(st);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    Comm comm;
    comm_init(&comm, &argc, &argv);
    EvalArgs a = {.split = SPLIT_TEST, .batch = 256, .mre_min_mass = 85.0};
    int p = parse(argc, argv, &a, comm.rank != 0);
    int code = p == 1 ? 0 : p < 0 ? 2 : run(&a, &comm);
    if (p == 1 && comm.rank == 0) fputs(usage, stdout);
    comm_finalize(&comm);
    return code;
}
