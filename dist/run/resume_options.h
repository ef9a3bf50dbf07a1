/* What a resumed run takes from its checkpoint and what from the command line, said
 * once at the start of a resumed run (dist/README.md, "Options on resume").
 *
 * Fixed by the checkpoint (a different value given on the command line is reported as
 * ignored): --seed (split, order), the learning-rate schedule (--lr, --lr-scaling,
 * --warmup-steps and the plateau's options; a version-1 checkpoint did not store the
 * first three, and they come from the command line), --weight-decay (the optimizer's
 * state, as torch's load_state_dict restores it), the preprocessing (--zero-suppress
 * and the stored scales), --unbias and --balance, --blocks (the model's shape), the task
 * (--task and --label: another is refused; --monitor).
 * From the command line: --epochs, --batch and --accum (the position is rescaled), the
 * number of ranks, --early-stop and --early-stop-min-delta (the count goes on),
 * --device, --precision, --threads, --prefetch, --keep, --check-replicas, --log-every,
 * --nan-policy, --mre-min-mass, --watchdog, --stop-after-steps, --tensorboard, --trace,
 * and --data, which must hold the jets the checkpoint was trained on (its fingerprint). */
#ifndef E2E_DIST_RESUME_OPTIONS_H
#define E2E_DIST_RESUME_OPTIONS_H

#include "checkpoint.h"
#include "train_config.h"

/* The configuration a resumed run trains with: cfg with what the checkpoint fixes taken
 * from it (the seed, the learning-rate schedule, the weight decay, the zero suppression,
 * the unbiasing, the blocks), so that config.json and the checkpoints it writes record
 * what is in force, not what the command line asked (that is reported as ignored).
 * from NULL (a fresh run): cfg as it is. */
void resume_options_in_force(const TrainConfig *cfg, const CheckpointState *from, TrainConfig *out);
/* train_config_json of the configuration in force (for config.json and checkpoints). */
int resume_config_json(const TrainConfig *cfg, const CheckpointState *from, int ranks, char *out, size_t size);

/* Prints (stdout, rank 0's job) the lines "the checkpoint fixes: ...", "ignored on
 * resume: ..." (options given with another value) and "from the command line: ..."
 * (options whose value differs from the checkpoint's run). */
void resume_options_report(const TrainConfig *cfg, const CheckpointState *st, int ranks);
/* 0 when the command line gave no --task or --label, or the checkpoint's task; else -1
 * naming the checkpoint and both tasks (a regression resumed as a classifier, or the
 * reverse, or another label: start a new run). Local: every rank decides alike. */
int resume_check_task(const TrainConfig *cfg, const CheckpointState *st, const char *path);

#endif
