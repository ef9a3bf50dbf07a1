/* TensorBoard event files in the run folder, written by rank 0 while it trains, so
 * that `tensorboard --logdir runs/` shows every run live: per optimizer step the loss
 * and the learning rate, per epoch every validation metric, samples/s, the shares of
 * the step spent waiting for data, in the all-reduce and at the agreement point, the
 * all-reduce count, and at the end the test metrics. Every scalar is logged at the
 * global optimizer step (1-based: the steps taken so far), so all curves share one x.
 *
 * No well-kept C library writes them, so this writes the format directly: a TFRecord
 * file (each record: its length as uint64 LE, the length's masked CRC-32C, the bytes,
 * their masked CRC-32C) of tensorflow.Event protobufs encoded by hand (wall_time,
 * step, file_version "brain.Event:2" first, then Summary values with a tag and a
 * simple_value), as TensorFlow's and PyTorch's writers do; tested with TensorBoard's own
 * reader (tests/test_tensorboard.py).
 *
 * Records are built in memory and appended to the file every few seconds and at each
 * epoch's end (one write; no fsync), so the step does not wait for the disk. A resumed
 * run writes a new file named after the earlier ones (TensorBoard reads a folder's
 * files in name order) and first cuts the earlier files back to the checkpoint's step:
 * a requeued run's curves continue without duplicated or backward steps. */
#ifndef E2E_DIST_TENSORBOARD_H
#define E2E_DIST_TENSORBOARD_H

#include <stddef.h>
#include <stdint.h>

#include "run_files.h"

/* TensorBoard reads the files whose names hold "tfevents"; ours start so */
#define TB_EVENT_PREFIX "events.out.tfevents."

typedef struct {
    int on;
    char path[4400];       /* the file this run appends to */
    int fd;
    char *buf;             /* records not yet written */
    size_t len, cap;
    double last_write;     /* monotonic seconds */
} TensorBoard;

/* 1 when dir lies on a local file system; 0 on a network or cluster file system (NFS,
 * Lustre, GPFS, BeeGFS, CIFS/SMB, Ceph, AFS, Panasas, FUSE), whose name goes into
 * fs (for the message). */
int tensorboard_folder_is_local(const char *dir, char *fs, size_t size);
/* Rank 0: a new event file in dir when `mode` is 1, or -1 and dir is local (else a
 * line says why there are none); mode 0: none (tb->on stays 0, and every call below
 * does nothing). resume_step >= 0: the run resumes at that global step, and the earlier
 * files are first cut back to it (tensorboard_cut). 0, or -1 (e2e_error()). */
int tensorboard_open(TensorBoard *tb, const char *dir, int mode, long resume_step);
/* One scalar at a step (buffered). */
void tensorboard_scalar(TensorBoard *tb, const char *tag, long step, double value);
/* An optimizer step's loss (non-finite: not logged) and learning rate. */
void tensorboard_step(TensorBoard *tb, long step, double loss, double lr);
/* An epoch's row: metrics, speed, shares, all-reduces. */
void tensorboard_epoch(TensorBoard *tb, long step, const EpochMetrics *e);
/* The best checkpoint's test metrics. */
void tensorboard_test(TensorBoard *tb, long step, const RunResults *r);
/* Appends the buffered records to the file when `force` or a few seconds have passed
 * since the last write. A failed write is one warning and ends the event file (the
 * run goes on). */
void tensorboard_flush(TensorBoard *tb, int force);
void tensorboard_close(TensorBoard *tb);

/* ---- the format, for the writer above and its tests ---- */

/* CRC-32C (Castagnoli), and TFRecord's masked form of it. */
uint32_t tensorboard_crc32c(const void *p, size_t n);
uint32_t tensorboard_masked_crc(const void *p, size_t n);
/* Cuts the event file at path back to step `step`: keeps its records up to the first
 * that does not read whole, and of those the file version and every event of a step
 * below `step`, or at `step` but a test metric (written again at the end of the
 * resumed run). Rewritten through net/base/outfile.h only when something goes. 0, or
 * -1 (e2e_error()). */
int tensorboard_cut(const char *path, long step);

#endif
