/* e2e-train: data-parallel training of the E2E ResNet-15. Run it under mpirun or srun;
 * one process per GPU (or per CPU socket/node with --device cpu). */
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "dataset.h"
#include "error.h"
#include "stop_signal.h"
#include "train_config.h"
#include "trainer.h"

static const char *usage =
    "usage: mpirun -np N e2e-train --data FILE --out RUNDIR [options]\n"
    "\n"
    "Trains the E2E ResNet-15 data-parallel over the MPI ranks: the jet mass regression, or\n"
    "a binary classifier (top vs QCD, quark vs gluon, electron vs photon).\n"
    "\n"
    "  --data FILE              dataset (HDF5, or a text file listing HDF5 files)\n"
    "  --task regression|classification\n"
    "                           regression: the jet mass (L1 on m / 500 GeV; MAE, MRE);\n"
    "                           classification: one logit, BCE with logits (ROC AUC,\n"
    "                           accuracy, background rejection) (regression)\n"
    "  --label COLUMN           classification: the column of 0/1 labels (y)\n"
    "  --balance                classification: weigh each class n / (2 n_class) of the\n"
    "                           training split, so both carry the same weight\n"
    "  --monitor auc|loss       classification: the metric the plateau schedule, best.h5\n"
    "                           and --early-stop follow (auc: higher is better, plateau\n"
    "                           mode max; loss: min)\n"
    "  --out RUNDIR             run folder: config.json, metrics.csv/.jsonl, results.json,\n"
    "                           checkpoints/ (created if missing). It belongs to one run: a\n"
    "                           second job on it is refused, and so is a fresh run where\n"
    "                           another run left metrics, results or checkpoints\n"
    "  --overwrite              start over in RUNDIR: delete the run it holds (its metrics,\n"
    "                           results and checkpoints, nothing else) first\n"
    "  --epochs N               epochs (25)\n"
    "  --batch B                samples per rank and micro-batch (32); global batch =\n"
    "                           ranks x B x --accum\n"
    "  --accum N                gradient accumulation: each optimizer step sums the gradients\n"
    "                           of N micro-batches per rank and all-reduces once, after the\n"
    "                           last (1); steps, the schedule and checkpoints count optimizer steps\n"
    "  --lr X                   Adam learning rate (1e-3)\n"
    "  --weight-decay X         Adam (L2) weight decay (0)\n"
    "  --seed S                 model initialisation, data split and order (1)\n"
    "  --device cpu|cuda        where each rank computes (cpu); cuda: GPU = local rank\n"
    "                           modulo the GPUs the rank sees (all of its node's, or one)\n"
    "  --precision P            fp32 | bf16 (cuda; cpu with bf16 instructions) | tf32 (cuda) (fp32)\n"
    "  --threads T              CPU threads per rank (OpenMP default)\n"
    "  --resume auto|PATH|none  auto: newest valid checkpoint in RUNDIR/checkpoints, else a\n"
    "                           fresh start; PATH: that checkpoint (none). The checkpoint\n"
    "                           fixes the seed, the learning-rate schedule, weight decay,\n"
    "                           preprocessing, unbiasing and blocks; the data must be the\n"
    "                           one it was trained on (its fingerprint)\n"
    "  --lr-scaling none|linear linear: lr x ranks, reached by a linear warm-up (none)\n"
    "  --warmup-steps N         optimizer steps of warm-up with --lr-scaling linear (0)\n"
    "  --plateau-mode min|max   ReduceLROnPlateau on the validation MAE (min), or a\n"
    "                           classifier's --monitor (its mode)\n"
    "  --plateau-factor F       (0.5)        --plateau-patience N   (2)\n"
    "  --plateau-threshold X    (1e-4)       --plateau-threshold-mode rel|abs (rel)\n"
    "  --plateau-cooldown N     (0)          --min-lr X             (0)\n"
    "  --nan-policy stop|skip   a non-finite loss stops the run, or skips the step (stop)\n"
    "  --mre-min-mass GEV       MRE over jets above this mass (85)\n"
    "  --zero-suppress X        preprocessing: scaled pixels below X become 0 (1e-5)\n"
    "  --unbias none|weights    flatten the mass distribution with per-sample loss\n"
    "                           weights from the training split's histogram (weights; a\n"
    "                           classifier: none)\n"
    "  --prefetch N             batches the reader thread reads ahead (2)\n"
    "  --cache none|memory      memory: each rank reads its rows of a sparse dataset into\n"
    "                           memory once, at the start, and every epoch from there (none)\n"
    "  --cache-limit GB         the most memory the cache may take a rank (default: its share\n"
    "                           of 90% of the node's available memory)\n"
    "  --keep K                 newest checkpoints kept, besides best.h5 (3)\n"
    "  --check-replicas N       every N steps, verify that all ranks hold identical\n"
    "                           parameters (0: never)\n"
    "  --log-every N            progress line every N steps (about 10 per epoch)\n"
    "  --stop-after-steps N     act as if SIGUSR1 arrived after N steps (drills, tests)\n"
    "  --blocks N               residual blocks in layer1 and layer3 (3)\n"
    "  --early-stop PATIENCE    end the run (exit 0, results.json says so) when the validation\n"
    "                           MAE (a classifier's --monitor) has not improved for\n"
    "                           PATIENCE epochs in a row (0: off)\n"
    "  --early-stop-min-delta X an improvement must exceed X (GeV; a classifier's AUC or\n"
    "                           loss) (0)\n"
    "  --tensorboard            TensorBoard event files in RUNDIR (default: on where RUNDIR is\n"
    "                           on a local file system); --no-tensorboard: none\n"
    "  --trace FILE             a Chrome trace (Perfetto, chrome://tracing) of every rank's step\n"
    "                           phases, one row per rank, for the steps of --trace-steps\n"
    "  --trace-steps A:B        global optimizer steps A to B-1 (default: 20 steps from the\n"
    "                           second epoch's first)\n"
    "  --watchdog SECONDS       end every rank (exit 3), naming the stuck one, when a rank\n"
    "                           alive makes no progress for this long (600; 0: off); setup,\n"
    "                           checkpoint writes and the first step get 5 times as long\n"
    "  --peer-timeout SECONDS   end every rank (exit 76), naming the silent one, when no\n"
    "                           heartbeat comes from a rank for this long: its process\n"
    "                           stopped or gone, its node down or cut off (30; 0: off)\n"
    "  --help                   this text\n"
    "\n"
    "Exit codes: 0 finished; 1 error (the first failing rank's message is printed once);\n"
    "2 bad command line; 3 the watchdog ended a stuck run (its checkpoints are intact:\n"
    "--resume auto continues); 75 stopped on SIGUSR1/SIGTERM after writing a checkpoint:\n"
    "requeue the job and run the same command with --resume auto; 76 a rank was lost\n"
    "(--peer-timeout): run the same command with --resume auto on the nodes left.\n";

enum {
    O_DATA = 256, O_OUT, O_EPOCHS, O_BATCH, O_LR, O_WD, O_SEED, O_DEVICE, O_PRECISION, O_THREADS,
    O_RESUME, O_LR_SCALING, O_WARMUP, O_PMODE, O_PFACTOR, O_PPATIENCE, O_PTHRESH, O_PTMODE,
    O_PCOOLDOWN, O_MINLR, O_NAN, O_MRE, O_ZERO, O_UNBIAS, O_PREFETCH, O_KEEP, O_CHECK, O_LOG,
    O_STOP_AFTER, O_BLOCKS, O_OVERWRITE, O_WATCHDOG, O_PEER_TIMEOUT, O_CACHE, O_CACHE_LIMIT, O_ACCUM,
    O_EARLY_STOP, O_EARLY_DELTA, O_TENSORBOARD, O_NO_TENSORBOARD, O_TRACE, O_TRACE_STEPS, O_TASK, O_LABEL,
    O_BALANCE, O_MONITOR, O_HELP
};

static const struct option options[] = {
    {"data", 1, 0, O_DATA}, {"out", 1, 0, O_OUT}, {"epochs", 1, 0, O_EPOCHS},
    {"batch", 1, 0, O_BATCH}, {"lr", 1, 0, O_LR}, {"weight-decay", 1, 0, O_WD},
    {"seed", 1, 0, O_SEED}, {"device", 1, 0, O_DEVICE}, {"precision", 1, 0, O_PRECISION},
    {"threads", 1, 0, O_THREADS}, {"resume", 1, 0, O_RESUME}, {"lr-scaling", 1, 0, O_LR_SCALING},
    {"warmup-steps", 1, 0, O_WARMUP}, {"plateau-mode", 1, 0, O_PMODE},
    {"plateau-factor", 1, 0, O_PFACTOR}, {"plateau-patience", 1, 0, O_PPATIENCE},
    {"plateau-threshold", 1, 0, O_PTHRESH}, {"plateau-threshold-mode", 1, 0, O_PTMODE},
    {"plateau-cooldown", 1, 0, O_PCOOLDOWN}, {"min-lr", 1, 0, O_MINLR},
    {"nan-policy", 1, 0, O_NAN}, {"mre-min-mass", 1, 0, O_MRE}, {"zero-suppress", 1, 0, O_ZERO},
    {"unbias", 1, 0, O_UNBIAS}, {"prefetch", 1, 0, O_PREFETCH}, {"keep", 1, 0, O_KEEP},
    {"check-replicas", 1, 0, O_CHECK}, {"log-every", 1, 0, O_LOG},
    {"stop-after-steps", 1, 0, O_STOP_AFTER}, {"blocks", 1, 0, O_BLOCKS}, {"overwrite", 0, 0, O_OVERWRITE},
    {"watchdog", 1, 0, O_WATCHDOG}, {"peer-timeout", 1, 0, O_PEER_TIMEOUT}, {"cache", 1, 0, O_CACHE},
    {"cache-limit", 1, 0, O_CACHE_LIMIT}, {"accum", 1, 0, O_ACCUM}, {"early-stop", 1, 0, O_EARLY_STOP},
    {"early-stop-min-delta", 1, 0, O_EARLY_DELTA}, {"tensorboard", 0, 0, O_TENSORBOARD},
    {"no-tensorboard", 0, 0, O_NO_TENSORBOARD}, {"trace", 1, 0, O_TRACE}, {"trace-steps", 1, 0, O_TRACE_STEPS},
    {"task", 1, 0, O_TASK}, {"label", 1, 0, O_LABEL}, {"balance", 0, 0, O_BALANCE}, {"monitor", 1, 0, O_MONITOR},
    {"help", 0, 0, O_HELP},
    {0, 0, 0, 0}};

static int quiet;  /* ranks other than 0 parse silently */

static const char *opt_name(int code) {
    for (const struct option *o = options; o->name; o++)
        if (o->val == code) return o->name;
    return "?";
}

/* strict number parsing (launch/cli.c), named by option: every numeric option is
 * non-negative; finer ranges are checked by train_config_check with messages about
 * their meaning */
static int num_long(int code, const char *s, long *out) {
    char opt[64];
    long long v;
    snprintf(opt, sizeof opt, "--%s", opt_name(code));
    if (cli_ll("e2e-train", opt, s, 0, INT_MAX, &v, !quiet)) return -1;
    *out = (long)v;
    return 0;
}

static int num_double(int code, const char *s, double *out) {
    char opt[64];
    snprintf(opt, sizeof opt, "--%s", opt_name(code));
    return cli_double("e2e-train", opt, s, 0.0, HUGE_VAL, out, !quiet);
}

static int one_of(int code, const char *s, const char *a, const char *b, int *out) {
    if (strcmp(s, a) == 0) *out = 0;
    else if (strcmp(s, b) == 0) *out = 1;
    else {
        if (!quiet) fprintf(stderr, "e2e-train: --%s expects %s or %s, got '%s'\n", opt_name(code), a, b, s);
        return -1;
    }
    return 0;
}

/* the GIVEN_* flag of an option a resumed run takes from its checkpoint */
static unsigned given_flag(int code) {
    switch (code) {
    case O_SEED: return GIVEN_SEED;
    case O_LR: return GIVEN_LR;
    case O_LR_SCALING: return GIVEN_LR_SCALING;
    case O_WARMUP: return GIVEN_WARMUP;
    case O_PMODE: case O_PFACTOR: case O_PPATIENCE: case O_PTHRESH: case O_PTMODE: case O_PCOOLDOWN:
    case O_MINLR: return GIVEN_PLATEAU;
    case O_WD: return GIVEN_WEIGHT_DECAY;
    case O_ZERO: return GIVEN_ZERO_SUPPRESS;
    case O_UNBIAS: return GIVEN_UNBIAS;
    case O_BLOCKS: return GIVEN_BLOCKS;
    case O_TASK: case O_LABEL: return GIVEN_TASK;
    case O_BALANCE: return GIVEN_UNBIAS;
    case O_MONITOR: return GIVEN_MONITOR;
    default: return 0;
    }
}

/* --cache-limit GB: a positive number of bytes */
static int num_gb(int code, const char *s, long long *bytes) {
    double d;
    if (num_double(code, s, &d)) return -1;
    *bytes = (long long)(d * 1e9);
    if (*bytes > 0) return 0;
    if (!quiet) fprintf(stderr, "e2e-train: --%s expects a positive number of GB, got '%s'\n", opt_name(code), s);
    return -1;
}

/* --trace-steps A:B, 0 <= A < B */
static int steps_range(int code, const char *s, long *first, long *end) {
    char extra;
    if (sscanf(s, "%ld:%ld%c", first, end, &extra) == 2 && *first >= 0 && *first < *end && s[0] != '-' &&
        strchr(s, ':')[1] != '-')
        return 0;
    if (!quiet) fprintf(stderr, "e2e-train: --%s expects A:B, global steps with A < B, got '%s'\n", opt_name(code), s);
    return -1;
}

/* --task, --label, --monitor into c->task (each keeps the others' values) */
static int parse_task(int o, const char *arg, TrainConfig *c) {
    const Task was = c->task;
    int rc = task_from_names(&c->task, o == O_TASK ? arg : task_name(&was), o == O_LABEL ? arg : was.label,
                             o == O_MONITOR ? arg : was.monitor_loss ? "loss" : "auc");
    if (rc && !quiet) fprintf(stderr, "e2e-train: --%s: %s\n", opt_name(o), e2e_error());
    return rc;
}

/* One option (its code o, its value arg) into c: 0, or -1 (message printed). */
static int parse_option(int o, const char *arg, TrainConfig *c) {
    long l = 0;
    double d = 0;
    int k = 0, rc = 0;
    switch (o) {
    case O_DATA: c->data = arg; break;
    case O_OUT: c->out = arg; break;
    case O_EPOCHS: rc = num_long(o, arg, &l); c->epochs = (int)l; break;
    case O_BATCH: rc = num_long(o, arg, &l); c->batch = (int)l; break;
    case O_LR: rc = num_double(o, arg, &c->lr); break;
    case O_WD: rc = num_double(o, arg, &c->weight_decay); break;
    case O_SEED: rc = num_long(o, arg, &l); c->seed = (uint64_t)l; break;
    case O_DEVICE: c->device = arg; break;
    case O_PRECISION: c->precision = arg; break;
    case O_THREADS: rc = num_long(o, arg, &l); c->threads = (int)l; break;
    case O_RESUME: c->resume = arg; break;
    case O_LR_SCALING: rc = one_of(o, arg, "none", "linear", &c->lr_scaling); break;
    case O_WARMUP: rc = num_long(o, arg, &c->warmup_steps); break;
    case O_PMODE: rc = one_of(o, arg, "min", "max", &c->plateau.mode_max); break;
    case O_PFACTOR: rc = num_double(o, arg, &c->plateau.factor); break;
    case O_PPATIENCE: rc = num_long(o, arg, &l); c->plateau.patience = (int)l; break;
    case O_PTHRESH: rc = num_double(o, arg, &c->plateau.threshold); break;
    case O_PTMODE: rc = one_of(o, arg, "rel", "abs", &c->plateau.threshold_abs); break;
    case O_PCOOLDOWN: rc = num_long(o, arg, &l); c->plateau.cooldown = (int)l; break;
    case O_MINLR: rc = num_double(o, arg, &c->plateau.min_lr); break;
    case O_NAN: rc = one_of(o, arg, "stop", "skip", &c->nan_skip); break;
    case O_MRE: rc = num_double(o, arg, &c->mre_min_mass); break;
    case O_ZERO: rc = num_double(o, arg, &d); c->zero_suppress = (float)d; break;
    case O_UNBIAS:
        rc = one_of(o, arg, "none", "weights", &k);
        c->unbias = k ? DATA_UNBIAS_WEIGHTS : DATA_UNBIAS_NONE;
        break;
    case O_PREFETCH: rc = num_long(o, arg, &l); c->prefetch = (int)l; break;
    case O_CACHE: rc = one_of(o, arg, "none", "memory", &c->cache); break;
    case O_CACHE_LIMIT: rc = num_gb(o, arg, &c->cache_limit); break;
    case O_KEEP: rc = num_long(o, arg, &l); c->keep = (int)l; break;
    case O_CHECK: rc = num_long(o, arg, &l); c->check_replicas = (int)l; break;
    case O_LOG: rc = num_long(o, arg, &l); c->log_every = (int)l; break;
    case O_STOP_AFTER: rc = num_long(o, arg, &c->stop_after_steps); break;
    case O_BLOCKS: rc = num_long(o, arg, &l); c->blocks = (int)l; break;
    case O_OVERWRITE: c->overwrite = 1; break;
    case O_TASK: case O_LABEL: case O_MONITOR: rc = parse_task(o, arg, c); break;
    case O_BALANCE: c->unbias = DATA_UNBIAS_CLASSES; break;
    case O_WATCHDOG: rc = num_double(o, arg, &c->watchdog_s); break;
    case O_PEER_TIMEOUT: rc = num_double(o, arg, &c->peer_timeout_s); break;
    case O_ACCUM: rc = num_long(o, arg, &l); c->accum = (int)l; break;
    case O_EARLY_STOP: rc = num_long(o, arg, &l); c->early_stop.patience = (int)l; break;
    case O_EARLY_DELTA: rc = num_double(o, arg, &c->early_stop.min_delta); break;
    case O_TENSORBOARD: c->tensorboard = 1; break;
    case O_NO_TENSORBOARD: c->tensorboard = 0; break;
    case O_TRACE: c->trace = arg; break;
    case O_TRACE_STEPS: rc = steps_range(o, arg, &c->trace_first, &c->trace_end); break;
    default: return -1;  /* getopt printed the problem */
    }
    return rc;
}

/* 0 parsed, 1 --help, -1 bad command line (message printed) */
static int parse(int argc, char **argv, TrainConfig *c) {
    opterr = !quiet;
    int o, mode_given = 0, unbias_given = 0;
    while ((o = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (o == O_HELP) return 1;
        if ((o == O_UNBIAS && unbias_given == O_BALANCE) || (o == O_BALANCE && unbias_given == O_UNBIAS)) {
            if (!quiet) fprintf(stderr, "e2e-train: --balance and --unbias exclude each other (one kind of weights)\n");
            return -1;
        }
        if (parse_option(o, optarg, c)) return -1;
        c->given |= given_flag(o);
        mode_given |= o == O_PMODE;
        if (o == O_UNBIAS || o == O_BALANCE) unbias_given = o;
    }
    if (!mode_given) c->plateau.mode_max = task_monitor_mode_max(&c->task);  /* a classifier's AUC: max */
    if (optind < argc) {
        if (!quiet) fprintf(stderr, "e2e-train: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (c->overwrite && c->resume && strcmp(c->resume, "auto") == 0) {
        if (!quiet) fprintf(stderr, "e2e-train: --overwrite and --resume auto exclude each other (--overwrite "
                                    "starts the folder's run over; --resume auto continues it)\n");
        return -1;
    }
    return 0;
}

/* Where each rank runs, printed by rank 0 in rank order: its node (MPI's processor name,
 * the hostname) and its node-local rank from comm_init, which is the GPU it takes with
 * --device cuda. On clusters this is the first thing to check when ranks land wrong. */
static void print_placement(const Comm *c) {
    typedef struct { char host[MPI_MAX_PROCESSOR_NAME]; int local_rank, local_size; } Place;
    Place mine = {.local_rank = c->local_rank, .local_size = c->local_size};
    int len = 0;
    MPI_Get_processor_name(mine.host, &len);
    Place *all = c->rank == 0 ? calloc((size_t)c->size, sizeof *all) : NULL;
    if (c->rank == 0 && !all) {
        fprintf(stderr, "e2e-train: out of memory for the placement of %d ranks\n", c->size);
        MPI_Abort(c->world, 1);
    }
    MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, c->world);
    for (int r = 0; all && r < c->size; r++)
        printf("e2e-train: rank %d of %d on %s: node-local rank %d of %d (GPU %d with --device cuda)\n", r,
               c->size, all[r].host, all[r].local_rank, all[r].local_size, all[r].local_rank);
    fflush(stdout);
    free(all);
}

int main(int argc, char **argv) {
    Comm comm;
    comm_init(&comm, &argc, &argv);
    TrainConfig cfg;
    train_config_defaults(&cfg);
    quiet = comm.rank != 0;
    int p = parse(argc, argv, &cfg);
    int code;
    if (p == 1) {
        if (comm.rank == 0) fputs(usage, stdout);
        code = 0;
    } else if (p < 0) {
        if (comm.rank == 0) fputs("e2e-train: see e2e-train --help\n", stderr);
        code = 2;
    } else {
        print_placement(&comm);
        code = trainer_run(&cfg, &comm);
    }
    comm_finalize(&comm);
    return code;
}
