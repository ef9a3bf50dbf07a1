/* Everything that configures a training run: e2e-train's options resolved. */
#ifndef E2E_DIST_TRAIN_CONFIG_H
#define E2E_DIST_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "early_stop.h"
#include "lr_schedule.h"
#include "task.h"

/* Options a resumed run takes from its checkpoint: given on the command line with
 * another value, they are reported as ignored (TrainConfig.given). */
enum {
    GIVEN_SEED = 1 << 0, GIVEN_LR = 1 << 1, GIVEN_LR_SCALING = 1 << 2, GIVEN_WARMUP = 1 << 3,
    GIVEN_PLATEAU = 1 << 4, GIVEN_WEIGHT_DECAY = 1 << 5, GIVEN_ZERO_SUPPRESS = 1 << 6,
    GIVEN_UNBIAS = 1 << 7, GIVEN_BLOCKS = 1 << 8, GIVEN_TASK = 1 << 9, GIVEN_MONITOR = 1 << 10,
};

typedef struct {
    Task task;                /* what the model is trained for (--task, --label, --monitor) */
    const char *data;         /* dataset: HDF5 file or a list of files */
    const char *out;          /* run folder */
    const char *resume;       /* NULL or "none": fresh; "auto": newest valid checkpoint in
                                 out/checkpoints, else fresh; otherwise a checkpoint path */
    const char *device;       /* cpu | cuda */
    const char *precision;    /* fp32 | tf32 | bf16 */
    int threads;              /* CPU threads per rank (0: OpenMP default) */
    int epochs;
    int batch;                /* per rank and micro-batch; the global batch is ranks x batch
                                 x accum */
    int accum;                /* micro-batches whose gradients one optimizer step sums (1) */
    double lr;                /* base learning rate (Adam) */
    double weight_decay;
    uint64_t seed;            /* model initialisation, data split and order */
    int lr_scaling;           /* 1: scale lr by the number of ranks (with warm-up) */
    long warmup_steps;        /* optimizer steps of linear warm-up (with lr_scaling) */
    PlateauConfig plateau;
    int nan_skip;             /* 0: a non-finite loss stops the run; 1: the step is skipped */
    double mre_min_mass;      /* MRE over jets with m above this (GeV); 85 */
    float zero_suppress;      /* preprocessing threshold; 1e-5 */
    int unbias;               /* data/'s unbiasing mode (-1: the task's default: mass weights
                                 for the regression, none for a classifier; --balance: class
                                 weights) */
    int prefetch;             /* batches the reader's thread reads ahead */
    int cache;                /* data/'s DataCache: the rank's rows held in memory (sparse) */
    long long cache_limit;    /* bytes the cache may take a rank (0: its share of the node) */
    int keep;                 /* newest checkpoints kept besides best.h5 */
    int check_replicas;       /* every N steps, check that all ranks hold the same
                                 parameters (0: never) */
    int log_every;            /* progress line every N steps (0: about 10 per epoch) */
    long stop_after_steps;    /* behave as if SIGUSR1 arrived after this many optimizer
                                 steps in this process (0: never); for tests and drills */
    int blocks;               /* residual blocks in layer1 and layer3 (3) */
    int overwrite;            /* a fresh run (or --resume PATH) replaces the run the folder
                                 holds (dist/run/run_folder.h) */
    double watchdog_s;        /* end every rank (exit 3) when one makes no progress this
                                 long while alive (dist/comm/watchdog.h); 0: off */
    double peer_timeout_s;    /* end every rank (exit 76) when a rank's heartbeats stop
                                 this long (process or node lost); 0: off */
    EarlyStopConfig early_stop; /* patience 0: off */
    int tensorboard;          /* TensorBoard event files in the run folder: 1 on, 0 off,
                                 -1 where the run folder is local (dist/run/tensorboard.h) */
    const char *trace;        /* Chrome trace of every rank's step phases (NULL: none) */
    long trace_first, trace_end;  /* its window of global steps [first, end); -1: the
                                 default (dist/run/timeline.h) */
    unsigned given;           /* GIVEN_* of the options the command line gave */
} TrainConfig;

void train_config_defaults(TrainConfig *c);
/* Checks values that no later stage would catch with a better message. */
int train_config_check(const TrainConfig *c);
/* The configuration as one JSON object (for config.json and checkpoints). */
int train_config_json(const TrainConfig *c, int ranks, char *out, size_t size);

#endif
