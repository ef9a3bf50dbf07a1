/* e2e-eval: runs a checkpoint over a split of a dataset, sharded over the MPI ranks,
 * and writes the predictions (HDF5: index, m_true, m_pred in GeV; a classifier's index,
 * label, score, logit, m) and the metrics (JSON: loss, MAE, MRE; a classifier's loss,
 * accuracy, AUC, rejections). The task, the split and the preprocessing come from the
 * checkpoint (its seed and scales), so "test" is the same test split the run held out. */
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "error.h"
#include "evaluate.h"
#include "fingerprint.h"
#include "outfile.h"
#include "run_files.h"
#include "session.h"
#include "watchdog.h"

static const char *usage =
    "usage: mpirun -np N e2e-eval --checkpoint CKPT --data FILE [options]\n"
    "\n"
    "Evaluates an e2e-ddp checkpoint on a split of a dataset.\n"
    "\n"
    "  --checkpoint CKPT      checkpoint (e.g. RUNDIR/checkpoints/best.h5)\n"
    "  --data FILE            dataset the run was trained on (HDF5 or a list of files)\n"
    "  --split train|val|test split to evaluate (test)\n"
    "  --predictions OUT.h5   write per jet index, m_true, m_pred (GeV); a classifier's\n"
    "                         index, label, score (sigmoid), logit, m (GeV)\n"
    "  --metrics OUT.json     write loss, MAE, MRE; a classifier's loss, accuracy, auc,\n"
    "                         rejection_30, rejection_50 (1/eps_b at eps_s 0.3, 0.5)\n"
    "  --task regression|classification\n"
    "                         what the checkpoint must have been trained for (the task\n"
    "                         is the checkpoint's: another is refused)\n"
    "  --batch B              samples per rank and step (256)\n"
    "  --device cpu|cuda      (cpu)   --precision fp32|tf32|bf16 (fp32)\n"
    "  --threads T            CPU threads per rank\n"
    "  --mre-min-mass GEV     MRE over jets above this mass (85)\n"
    "  --watchdog SECONDS     end every rank (exit 3), naming the stuck one, when a rank\n"
    "                         alive makes no progress for this long (600; 0: off)\n"
    "  --peer-timeout SECONDS end every rank (exit 76), naming the silent one, when no\n"
    "                         heartbeat comes from a rank for this long (30; 0: off)\n"
    "  --help\n"
    "The task (a classifier's label column), the split and the preprocessing (scales, zero\n"
    "suppression) are the checkpoint's. The\n"
    "outputs are written whole (temporary name, then renamed) and never over an input\n"
    "(the checkpoint, the data, the files it lists) or a file of another kind.\n"
    "Exit codes: 0 done, 1 error, 2 bad command line, 3 the watchdog ended a stuck run,\n"
    "76 a rank was lost (its process or node).\n";

typedef struct {
    const char *checkpoint, *data, *predictions, *metrics, *device, *precision;
    const char *task;  /* what the checkpoint must be (NULL: whatever it is) */
    Split split;
    int batch, threads;
    double mre_min_mass;
    double watchdog_s, peer_timeout_s;
} EvalArgs;

static const struct option options[] = {
    {"checkpoint", 1, 0, 'c'}, {"data", 1, 0, 'd'}, {"split", 1, 0, 's'},
    {"predictions", 1, 0, 'p'}, {"metrics", 1, 0, 'm'}, {"batch", 1, 0, 'b'},
    {"device", 1, 0, 'D'}, {"precision", 1, 0, 'P'}, {"threads", 1, 0, 't'},
    {"mre-min-mass", 1, 0, 'M'}, {"watchdog", 1, 0, 'W'}, {"peer-timeout", 1, 0, 'T'}, {"task", 1, 0, 'k'},
    {"help", 0, 0, 'h'}, {0, 0, 0, 0}};

static int parse_split(const char *arg, Split *split, int quiet) {
    if (!strcmp(arg, "train")) *split = SPLIT_TRAIN;
    else if (!strcmp(arg, "val")) *split = SPLIT_VAL;
    else if (!strcmp(arg, "test")) *split = SPLIT_TEST;
    else {
        if (!quiet) fprintf(stderr, "e2e-eval: --split expects train, val or test, got '%s'\n", arg);
        return -1;
    }
    return 0;
}

/* One option (its code o, its value arg) into a: 0, or -1 (message printed unless
 * quiet). */
static int parse_option(int o, const char *arg, EvalArgs *a, int quiet) {
    long long v;
    switch (o) {
    case 'c': a->checkpoint = arg; return 0;
    case 'd': a->data = arg; return 0;
    case 'p': a->predictions = arg; return 0;
    case 'm': a->metrics = arg; return 0;
    case 'D': a->device = arg; return 0;
    case 'P': a->precision = arg; return 0;
    case 's': return parse_split(arg, &a->split, quiet);
    case 'k':
        a->task = arg;
        if (!strcmp(arg, "regression") || !strcmp(arg, "classification")) return 0;
        if (!quiet) fprintf(stderr, "e2e-eval: --task expects regression or classification, got '%s'\n", arg);
        return -1;
    case 'b':
    case 't':
        if (cli_ll("e2e-eval", o == 'b' ? "--batch" : "--threads", arg, o == 'b' ? 1 : 0, INT_MAX, &v, !quiet))
            return -1;
        (o == 'b' ? &a->batch : &a->threads)[0] = (int)v;
        return 0;
    case 'M': return cli_double("e2e-eval", "--mre-min-mass", arg, 0, DBL_MAX, &a->mre_min_mass, !quiet);
    case 'W':
    case 'T':
        return cli_double("e2e-eval", o == 'W' ? "--watchdog" : "--peer-timeout", arg, 0, DBL_MAX,
                          o == 'W' ? &a->watchdog_s : &a->peer_timeout_s, !quiet);
    default: return -1;  /* getopt printed the problem */
    }
}

/* 0 parsed, 1 --help, -1 bad command line (message printed unless quiet) */
static int parse(int argc, char **argv, EvalArgs *a, int quiet) {
    opterr = !quiet;
    int o;
    while ((o = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (o == 'h') return 1;
        if (parse_option(o, optarg, a, quiet)) return -1;
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

/* Rank 0 prints the metrics and writes them to --metrics (path; NULL: none) through
 * net/base/outfile.h. */
static int report_metrics(const char *json, const char *path) {
    fputs(json, stdout);
    fflush(stdout);
    if (!path) return 0;
    return out_write_file(path, json, strlen(json)) ? e2e_fail("metrics not written: %s", e2e_error()) : 0;
}

/* an existing --metrics file is replaced only when it is one (e2e-eval's JSON) */
static int metrics_replaceable(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    char head[512] = "";
    size_t n = fread(head, 1, sizeof head - 1, f);
    head[n] = '\0';
    fclose(f);
    if (strstr(head, "\"checkpoint\":") && (strstr(head, "\"mae_gev\":") || strstr(head, "\"auc\":"))) return 1;
    e2e_fail("%s: exists and is not an e2e-eval metrics file; --metrics replaces only an earlier one: give "
             "another name", path);
    return 0;
}

/* Rank 0, before the evaluation: the outputs are none of the inputs (the checkpoint, the
 * data, every file it lists: same device and inode), replace only their own kind, are
 * not one file, and the prediction file fits on its file system. */
static int check_outputs(const EvalArgs *a, const Dataset *data) {
    int nf = dataset_info(data)->n_files;
    OutInput *in = calloc((size_t)nf + 2, sizeof *in);
    if (!in) return e2e_fail("out of memory");
    in[0] = (OutInput){a->checkpoint, "--checkpoint"};
    in[1] = (OutInput){a->data, "--data"};
    for (int i = 0; i < nf; i++) in[i + 2] = (OutInput){dataset_file_path(data, i), "--data"};
    int rc = 0;
    if (a->predictions && out_check_path(a->predictions, "--predictions", in, nf + 2)) rc = e2e_fail("%s", e2e_error());
    if (!rc && a->metrics && out_check_path(a->metrics, "--metrics", in, nf + 2)) rc = e2e_fail("%s", e2e_error());
    free(in);
    if (!rc && a->predictions && a->metrics && strcmp(a->predictions, a->metrics) == 0)
        rc = e2e_fail("%s: given as both --predictions and --metrics", a->metrics);
    if (!rc && a->predictions && !predictions_replaceable(a->predictions)) rc = -1;
    if (!rc && a->metrics && !metrics_replaceable(a->metrics)) rc = -1;
    /* 16 bytes a jet (a classifier's 21), plus HDF5's own */
    unsigned long long bytes = 24ull * (unsigned long long)dataset_split_total(data, a->split) + 65536;
    if (!rc && a->predictions && out_check_space(a->predictions, bytes, "the prediction file"))
        rc = e2e_fail("%s", e2e_error());
    return rc;
}

/* The data against the checkpoint's fingerprint: other channel names are refused (the
 * model would read each channel as another), other jets are said (the split is then not
 * the run's held-out one). Every rank holds both: no agreement needed. Returns -1, 0
 * (other data) or 1 (the data it was trained on; 2: unknown, an older checkpoint). */
static int check_data(const EvalArgs *a, Comm *c, const CheckpointState *st, const Dataset *d) {
    DataFingerprint fp;
    data_fingerprint(d, c->world, &fp);
    if (!st->has_data) return 2;
    if (fp.channels == st->data.channels && strcmp(fp.channel_names, st->data.channel_names))
        return e2e_fail("%s was trained on channels (%s) but %s has (%s): the model would read each channel as "
                        "another", a->checkpoint, st->data.channel_names, a->data, fp.channel_names);
    char why[2048];
    if (!data_fingerprint_differs(&st->data, &fp, why, sizeof why)) return 1;
    if (c->rank == 0)
        printf("e2e-eval: note: %s is not the data %s was trained on (%s): its %s split is not the run's "
               "held-out one\n", a->data, a->checkpoint, why, dataset_split_name(a->split));
    return 0;
}

/* The checkpoint's task against --task: a regression checkpoint is not a classifier. Every
 * rank holds both. */
static int check_task(const EvalArgs *a, const CheckpointState *st) {
    if (!a->task || !strcmp(a->task, task_name(&st->task))) return 0;
    char was[128];
    return e2e_fail("%s holds a model trained for %s, not for %s (--task %s): evaluate it as what it is, or give "
                    "a checkpoint of a %s run", a->checkpoint, task_describe(&st->task, was, sizeof was), a->task,
                    a->task, a->task);
}

/* The metrics as one JSON object (the names training uses, without its val_/test_) */
static void metrics_json(const EvalArgs *a, const CheckpointState *st, const EvalResult *r, int same, char *json,
                         size_t size) {
    static const char *names[] = {"train", "val", "test"};
    char ck[2048], label[160], auc[32], r30[32], r50[32];
    const char *data = same == 2 ? "null" : same ? "true" : "false";
    run_json_string(a->checkpoint, ck, sizeof ck);
    run_json_string(st->task.label, label, sizeof label);
    if (r->classify)
        snprintf(json, size,
                 "{\"checkpoint\": %s, \"split\": \"%s\", \"task\": \"classification\", \"label\": %s, \"jets\": %lld, "
                 "\"signal_jets\": %lld, \"loss\": %.6f, \"accuracy\": %.6f, \"auc\": %s, \"rejection_30\": %s, "
                 "\"rejection_50\": %s, \"training_data\": %s}\n",
                 ck, names[a->split], label, r->count, r->cls.n_signal, r->loss, r->cls.accuracy,
                 run_json_number_text(r->cls.auc, "%.10f", auc),
                 run_json_number_text(r->cls.rejection30, "%.4f", r30),
                 run_json_number_text(r->cls.rejection50, "%.4f", r50), data);
    else
        snprintf(json, size,
                 "{\"checkpoint\": %s, \"split\": \"%s\", \"jets\": %lld, \"loss\": %.6f, "
                 "\"mae_gev\": %.4f, \"mre\": %.6f, \"mre_jets\": %lld, \"mre_min_mass\": %g, "
                 "\"training_data\": %s}\n",
                 ck, names[a->split], r->count, r->loss, r->mae, r->mre, r->mre_count, a->mre_min_mass, data);
}

/* A file of one class (a training split must hold both, an evaluated one need not): its
 * AUC and rejections are not defined, and are null in the metrics. */
static void warn_one_class(const EvalArgs *a, const EvalResult *r) {
    e2e_warn("%s: the %s split holds jets of one class only (%lld jets, %lld of label 1): no ROC curve, so the AUC "
             "and the background rejections are not defined (null in the metrics); its loss and accuracy are reported",
             a->data, dataset_split_name(a->split), r->count, r->cls.n_signal);
}

static int run(const EvalArgs *a, Comm *c) {
    Session s = {.comm = c};
    CheckpointState *st = calloc(1, sizeof *st);
    Predictions preds = {0};
    int rc = -1;
    if (!st) {
        e2e_fail("out of host memory");
        goto done;
    }
    if (watchdog_start(c, a->watchdog_s, a->peer_timeout_s)) goto done;
    if (session_peek(&s, a->checkpoint, st) || check_task(a, st)) goto done;
    SessionOptions so = {.backend = {.device = a->device, .threads = a->threads,
                                     .precision = a->precision},
                         .blocks = st->model.blocks, .from = st, .from_path = a->checkpoint, .task = st->task};
    dataset_default_options(&so.data);
    so.data.path = a->data;
    so.data.comm = c->world;
    so.data.batch = a->batch;
    so.data.one_class_ok = 1;  /* a file of one class is evaluated (its AUC is null) */
    if (session_open(&s, &so)) goto done;
    int same = check_data(a, c, st, s.data);
    if (same < 0) goto done;
    int failed = c->rank == 0 && check_outputs(a, s.data) != 0;
    if (comm_fail_together(c, failed) || session_load(&s, a->checkpoint, NULL)) goto done;
    EvalResult r;
    watchdog_phase(WD_EVAL);
    if (evaluate_split(c, s.model, s.data, a->split, a->mre_min_mass, &r,
                       a->predictions ? &preds : NULL))
        goto done;
    if (r.classify && isnan(r.cls.auc) && c->rank == 0) warn_one_class(a, &r);
    watchdog_phase(WD_CHECKPOINT);
    if (a->predictions && predictions_write(c, &preds, a->predictions)) goto done;
    char json[4096];
    metrics_json(a, st, &r, same, json, sizeof json);
    rc = comm_fail_together(c, c->rank == 0 && report_metrics(json, a->metrics) != 0);
done:
    watchdog_stop();
    if (rc && c->rank == 0) fprintf(stderr, "e2e-eval: error: %s\n", e2e_error());
    predictions_free(&preds);
    session_close(&s);
    free(st);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    Comm comm;
    comm_init(&comm, &argc, &argv);
    EvalArgs a = {.split = SPLIT_TEST, .batch = 256, .mre_min_mass = 85.0, .watchdog_s = WATCHDOG_DEFAULT_S,
                  .peer_timeout_s = PEER_TIMEOUT_DEFAULT_S};
    int p = parse(argc, argv, &a, comm.rank != 0);
    int code = p == 1 ? 0 : p < 0 ? 2 : run(&a, &comm);
    if (p == 1 && comm.rank == 0) fputs(usage, stdout);
    comm_finalize(&comm);
    return code;
}
