/* What e2e-train and e2e-eval share: the dataset, the backend and the model built to
 * the dataset's shape, and checkpoints read by rank 0 and broadcast to every rank.
 * Every function is collective and fails on all ranks together (with the first failing
 * rank's message in e2e_error()). */
#ifndef E2E_DIST_SESSION_H
#define E2E_DIST_SESSION_H

#include "backend.h"
#include "checkpoint.h"
#include "comm.h"
#include "dataset.h"
#include "model.h"

typedef struct {
    Comm *comm;
    Dataset *data;
    NetOps *ops;
    Model *model;
    float *host[3];   /* host arenas: parameters, Adam's two moments (checkpoint I/O) */
    float data_zero_suppress;  /* the preprocessing the reader was opened with */
    int data_unbias;
} Session;

/* What a run opens, for training and evaluation alike. */
typedef struct {
    DatasetOptions data;          /* the reader's options (path, batch, seed, ...); the
                                     feed for the device is set by session_open */
    BackendOptions backend;       /* device, threads, precision */
    Task task;                    /* what the model is for: its loss, and a classifier's label
                                     column for the reader */
    int blocks;                   /* residual blocks per layer of the model */
    const CheckpointState *from;  /* a checkpoint the run continues or evaluates (NULL:
                                     none): its seed and preprocessing (scales, zero
                                     suppression, unbiasing) are used, and a dataset of
                                     another channel count, other scalars or other
                                     channel kinds is refused */
    const char *from_path;        /* that checkpoint's path, for the message */
    int train_batches;            /* training: the micro-batches of an optimizer step
                                     (--accum); a training split that gives a rank fewer
                                     batches is refused before the model is built (0:
                                     evaluation, no check) */
} SessionOptions;

/* Opens, in order: the backend (its GPU = the node-local rank; before the data, so a
 * GPU backend's pinned allocator holds the reader's batch buffers), the reader with the
 * feed for the device (and the task's label), and the model for the dataset's shape and
 * the task's loss with the host arenas. */
int session_open(Session *s, const SessionOptions *o);

/* The backend (its GPU = the node-local rank). Open it before the data: a GPU backend's
 * pinned allocator then holds the reader's batch buffers. */
int session_open_backend(Session *s, const BackendOptions *bo);
/* The reader; with a backend that copies from pinned host memory (OPS_PINNED_HOST),
 * the batch buffers are allocated there, so host-to-device copies go straight from
 * them (o's own batch_alloc, if set, is kept). */
int session_open_data(Session *s, const DatasetOptions *o);
/* Where the input is preprocessed: on a GPU ("cuda") the reader hands over the stored
 * values (float16 kept as stored: half the bytes over PCIe, no decode on the CPU; sparse
 * files as their entries: a few KB a jet, densified by a kernel) and the device scales,
 * zero-suppresses and clips them; on the CPU the reader's prefetch thread does it (and
 * densifies sparse rows on the way). Sets o->preprocess, o->keep_half, o->keep_sparse. */
void session_feed_for_device(DatasetOptions *o, const char *device);
/* The model for the open dataset's shape, on the open backend, with the loss `loss`
 * (ModelLoss). On a backend in host memory, a model that needs more than the rank's
 * share of its node's available memory (node_memory.h) is refused, naming the batch,
 * before anything is allocated. */
int session_build_model(Session *s, int blocks, int batch, int loss);
/* 0 when the open dataset d gives the model the inputs the checkpoint recorded (the
 * scalars with their scales, the channel kinds); else -1 with a message naming both
 * files and both sets of inputs. Local (every rank holds the same numbers). */
int session_check_inputs(const CheckpointState *st, const char *ckpt_path, const Dataset *d, const char *data_path);
/* The open dataset's fingerprint into *fp (every rank), checked against the checkpoint
 * st a run resumes from (NULL: a fresh run): other data is refused, naming both (every
 * rank holds both, so every rank decides alike); a checkpoint without a fingerprint
 * gets a warning from rank 0. Collective. */
int session_check_data(Session *s, const CheckpointState *st, const char *ckpt_path, const char *data_path,
                       DataFingerprint *fp);
/* Rank 0's start line: ranks, backend, model, images, the splits, the optimizer steps
 * of an epoch of ranks x batch (x accum micro-batches, and the global batch, when
 * accum > 1); and the CPU's kernel choices. */
void session_describe(const Session *s, long steps, int batch, int accum);
/* Rank 0 validates path (checkpoint_peek); every rank gets the state. */
int session_peek(Session *s, const char *path, CheckpointState *st);
/* Rank 0 reads the tensors; every rank gets them in s->host and the parameters in the
 * model. The state is written to st when st is not NULL. */
int session_load(Session *s, const char *path, CheckpointState *st);
void session_close(Session *s);

#endif
