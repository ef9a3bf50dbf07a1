/* Checkpoints: one HDF5 file holding everything a run needs to continue exactly where
 * it stopped: the trainer's state (dist/train_state.h) and what only the file needs. Written by rank 0 alone, atomically: a temporary file in the same
 * folder, flushed and fsync'ed, then renamed over the final name (and the folder
 * fsync'ed), so a crash leaves either the old file or the new one, never half of one.
 *
 * Layout (PyTorch's names and shapes, so h5py + torch load it with load_state_dict):
 *   /model/<name>                  parameters, e.g. /model/layer2.0.conv1.weight
 *   /optimizer/exp_avg/<name>      Adam's first moments
 *   /optimizer/exp_avg_sq/<name>   Adam's second moments
 *   /data/scales                   the per-channel preprocessing scales; on /data the
 *                                  attributes scalars, scalar_scale, channel_kinds: the
 *                                  model's inputs as the dataset declared them
 *                                  (data/format/FORMAT.md, data/format/jet_inputs.h); the dataset's
 *                                  fingerprint (data/reader/fingerprint.h: data_n,
 *                                  data_channels, data_height, data_width,
 *                                  data_mass_hash, data_split_hash,
 *                                  data_channel_names, data_files; a classifier's
 *                                  data_label, data_label_hash) and the rest of
 *                                  the preprocessing (zero_suppress, unbias) and the
 *                                  regression target's scale (mass_scale); these
 *                                  last are optional: absent from checkpoints written
 *                                  before they were added
 *   attributes on /                format, version, the task (task; a classifier's
 *                                  task_label, task_monitor), model shape, position, the
 *                                  learning-rate schedule (lr_base, lr_scaled,
 *                                  lr_warmup_steps, lr_plateau and the plateau's
 *                                  plateau_* state), Adam's step and hyper-parameters,
 *                                  the micro-batches of a step (accum), early
 *                                  stopping's count and best (early_stop_bad_epochs,
 *                                  early_stop_best; these three are optional: absent
 *                                  from checkpoints written before them),
 *                                  RNG seed, the run's configuration (JSON),
 *                                  the tensor names in arena order, and an FNV-1a hash
 *                                  of all tensors (parameters, then both moments) in
 *                                  that order, so a checkpoint can be validated
 *                                  without building a model */
#ifndef E2E_DIST_CHECKPOINT_H
#define E2E_DIST_CHECKPOINT_H

#include <stdint.h>

#include "adam.h"
#include "fingerprint.h"
#include "jet_inputs.h"
#include "model.h"
#include "task.h"
#include "train_state.h"

#define CHECKPOINT_FORMAT "e2e-ddp checkpoint"
/* Version 4 records the task (attributes task, and for a classifier task_label and
 * task_monitor, on /); versions 1 to 3 did not, and were all regressions (read so).
 * Version 3 records the model's inputs on /data (the scalars' names and scales, the
 * channel kinds); versions 1 and 2 did not, and their models took what every dataset
 * gave then: iphi / 360, ieta / 170, every channel energy-like (read so). Version 2
 * stores the learning-rate schedule once (lr_base, lr_scaled, lr_warmup_steps,
 * lr_plateau); version 1 stored the plateau's rate as "lr" and Adam's last rate as
 * "adam_lr", and neither the base nor the scaled rate nor the warm-up. All three are
 * read; version 3 is written. */
#define CHECKPOINT_VERSION 4
#define CHECKPOINT_OLDEST_VERSION 1
#define CHECKPOINT_MAX_SCALES 64

typedef struct {
    int version;                /* the file's format version (what was read) */
    Task task;                  /* what the model was trained for (versions 1 to 3: the
                                   regression) */
    TrainState train;           /* position, seed, the epoch's loss so far, best, elapsed
                                   time, schedule (version 1: only lr.plateau; base, scaled
                                   and warm-up were not stored: 0 here, the run's options
                                   give them) */
    ModelConfig model;          /* max_batch is not compared */
    int world_size;             /* ranks when saved */
    int batch;                  /* per-rank batch when saved */
    int accum;                  /* micro-batches per optimizer step when saved (1 where an
                                   older checkpoint did not store it) */
    long adam_step;
    AdamHyper adam;
    int n_scales;
    float scales[CHECKPOINT_MAX_SCALES];
    JetInputs inputs;           /* the dataset's scalars (names, scales) and channel kinds
                                   the model was trained on (versions 1, 2: the default) */
    char config_json[8192];     /* the run's resolved configuration */
    float zero_suppress;        /* the preprocessing's threshold, and */
    int unbias;                 /* the unbiasing mode (data/reader/dataset.h); -1 where an older
                                   checkpoint did not store them (checkpoint_peek then
                                   takes them from its configuration when it can) */
    float mass_scale;           /* the regression target's scale: target = m / mass_scale
                                   (GeV; attribute mass_scale on /data); 0 where an older
                                   checkpoint did not store it (it was then always
                                   MASS_SCALE_GEV, 500) */
    int has_data;               /* 1: data holds the dataset's fingerprint; 0: an older
                                   checkpoint that did not store it */
    DataFingerprint data;
} CheckpointState;

/* Writes path atomically. params, m, v: host copies of the model's arena and Adam's
 * moments (model_arena_size floats each); the tensor table comes from model. */
int checkpoint_write(const char *path, const CheckpointState *st, const Model *model,
                     const float *params, const float *m, const float *v);

/* Validates path and reads its state (no tensors into any model): refuses, with a
 * message naming the file, anything that is not a complete e2e-ddp checkpoint: not
 * HDF5 or truncated, another format or version, a missing attribute, a missing or
 * unreadable tensor, data whose hash does not match. Reads versions
 * CHECKPOINT_OLDEST_VERSION to CHECKPOINT_VERSION. */
int checkpoint_peek(const char *path, CheckpointState *st);

/* checkpoint_peek, then refuses a checkpoint of another model shape, and loads the
 * parameters and moments into the three host arenas (model_arena_size floats each). */
int checkpoint_read(const char *path, CheckpointState *st, const Model *model, float *params,
                    float *m, float *v);

/* The newest checkpoint in dir (by global step, from the file names ckpt-*.h5) that
 * checkpoint_peek accepts; writes its path into out. Returns 1 when found, 0 when the
 * folder holds none valid (each refusal is printed as a warning), -1 on error. */
int checkpoint_find_latest(const char *dir, char *out, size_t out_size);

/* "DIR/ckpt-<global step, 10 digits>.h5" */
void checkpoint_name(char *out, size_t size, const char *dir, long global_step);
/* The global steps of dir's ckpt-*.h5, newest first, into *steps (malloc'd); returns
 * the count (0 when dir does not exist), or -1. */
int checkpoint_list(const char *dir, long **steps);

#endif
