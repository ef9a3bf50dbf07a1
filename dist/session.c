/* What e2e-train and e2e-eval open alike (session.h): backend, reader, model, and
 * checkpoints read by rank 0 for every rank. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "metrics_report.h"
#include "node_memory.h"


void session_feed_for_device(DatasetOptions *o, const char *device) {
    int gpu = device && strcmp(device, "cuda") == 0;
    o->preprocess = !gpu;
    o->keep_half = gpu;
    o->keep_sparse = gpu;
}

int session_open_backend(Session *s, const BackendOptions *bo) {
    BackendOptions o = *bo;
    o.gpu = s->comm->local_rank;
    s->ops = net_backend_create(&o);
    return comm_fail_together(s->comm, !s->ops);
}

static void *pinned_alloc(void *ctx, size_t bytes) {
    NetOps *ops = ctx;
    return ops->alloc_host(ops->ctx, bytes);
}

static void pinned_free(void *ctx, void *p) {
    NetOps *ops = ctx;
    ops->release_host(ops->ctx, p);
}

int session_open_data(Session *s, const DatasetOptions *o) {
    DatasetOptions opt = *o;
    if (s->ops && !ops_can(s->ops, OPS_HOST_MEMORY) && ops_can(s->ops, OPS_PINNED_HOST) &&
        !opt.batch_alloc) {
        opt.batch_alloc = pinned_alloc;
        opt.batch_free = pinned_free;
        opt.batch_alloc_ctx = s->ops;
    }
    /* dataset_open agrees over the ranks by itself */
    return dataset_open(&s->data, &opt) ? -1 : 0;
}

/* Every rank runs rank 0's kernel choices (the CPU's convolution engines): timings
 * differ between ranks and a node's plan record may differ from another's, the
 * numbers a replica computes must not. */
static int agree_kernels(Session *s) {
    char plan[8192];
    int failed = s->comm->rank == 0 && net_backend_plan(s->ops, plan, sizeof plan) != 0;
    if (comm_fail_together(s->comm, failed)) return -1;
    comm_bcast_string(s->comm, plan, sizeof plan);
    failed = s->comm->rank != 0 && net_backend_use_plan(s->ops, plan) != 0;
    return comm_fail_together(s->comm, failed);
}

/* On a backend in host memory, a model larger than this rank's share of the node's
 * memory is refused before it is allocated: the kernel's OOM killer would end the rank
 * without a word part way through. Collective. */
static int check_host_memory(Session *s, const ModelConfig *mc) {
    if (!ops_can(s->ops, OPS_HOST_MEMORY)) return 0;
    long long share;
    char how[1024];
    node_memory_share(s->comm->world, &share, how, sizeof how);
    double need = (double)model_memory_bytes(mc, s->ops);
    int failed = share >= 0 && need > (double)share &&
                 e2e_fail("batch %d of %d x %d x %d images needs at least %.3g GB a rank for the model's activations "
                          "and gradients in host memory, more than this rank's share of the memory available (%s): "
                          "give a smaller --batch (it is per rank), or fewer ranks per node",
                          mc->max_batch, mc->in_channels, mc->height, mc->width, need / 1e9, how) != 0;
    return comm_fail_together(s->comm, failed);
}

int session_build_model(Session *s, int blocks, int batch, int loss) {
    const DatasetInfo *info = dataset_info(s->data);
    ModelConfig mc = model_default_config(batch);
    mc.in_channels = info->channels;
    mc.height = info->height;
    mc.width = info->width;
    mc.n_scalars = info->n_scalars;
    mc.blocks = blocks;
    mc.loss = loss;
    if (check_host_memory(s, &mc)) return -1;
    int failed = 0;
    if (model_create(&s->model, &mc, s->ops)) failed = 1;
    size_t n = failed ? 0 : model_arena_size(s->model);
    for (int a = 0; a < 3 && !failed; a++)
        if (!(s->host[a] = calloc(n, sizeof(float)))) {
            e2e_fail("out of host memory for %zu parameters", n);
            failed = 1;
        }
    if (comm_fail_together(s->comm, failed) || agree_kernels(s)) return -1;
    return comm_attach(s->comm, s->ops);
}

int session_open(Session *s, const SessionOptions *o) {
    DatasetOptions d = o->data;
    char from[4200];
    if (o->from) {
        snprintf(from, sizeof from, "checkpoint %s", o->from_path ? o->from_path : "");
        d.seed = o->from->train.seed;
        d.scales = o->from->scales;
        d.n_scales = o->from->n_scales;
        d.scales_from = from;
        if (o->from->zero_suppress >= 0) d.zero_suppress = o->from->zero_suppress;
        if (o->from->unbias >= 0) d.unbias = o->from->unbias;
    }
    d.label = o->task.kind == TASK_CLASSIFICATION ? o->task.label : NULL;
    s->data_zero_suppress = d.zero_suppress;
    s->data_unbias = d.unbias;
    session_feed_for_device(&d, o->backend.device);
    if (session_open_backend(s, &o->backend) || session_open_data(s, &d)) return -1;
    /* another channel count was refused by dataset_open (n_scales) */
    if (o->from && session_check_inputs(o->from, o->from_path, s->data, d.path)) return -1;
    if (o->train_batches > 0 && dataset_steps_per_epoch(s->data, SPLIT_TRAIN) < o->train_batches)
        return e2e_fail("%s: the training split gives each of the %d ranks %lld jets, fewer than --batch %d x --accum "
                        "%d: give a smaller --batch (it is per rank) or --accum", d.path, s->comm->size,
                        dataset_split_total(s->data, SPLIT_TRAIN) / s->comm->size, d.batch, o->train_batches);
    return session_build_model(s, o->blocks, d.batch, task_model_loss(&o->task));
}

int session_check_inputs(const CheckpointState *st, const char *ckpt_path, const Dataset *d, const char *data_path) {
    const JetInputs *have = dataset_inputs(d);
    if (jet_inputs_equal(&st->inputs, have)) return 0;
    char was[600], is[600];
    return e2e_fail("%s: the checkpoint's model was trained on %s, but %s gives %s: use a dataset with the "
                    "same scalars and channel kinds", ckpt_path, jet_inputs_describe(&st->inputs, was, sizeof was),
                    data_path, jet_inputs_describe(have, is, sizeof is));
}

int session_check_data(Session *s, const CheckpointState *st, const char *ckpt_path, const char *data_path,
                       DataFingerprint *fp) {
    data_fingerprint(s->data, s->comm->world, fp);
    char why[2048], was[2200], now[2200];
    if (st && st->has_data && data_fingerprint_differs(&st->data, fp, why, sizeof why)) {
        data_fingerprint_describe(&st->data, was, sizeof was);
        data_fingerprint_describe(fp, now, sizeof now);
        return e2e_fail("%s was trained on %s, but --data %s holds %s: %s. Resuming would continue mid-run on "
                        "other jets with the old scales: give the run's data, or start a new run", ckpt_path,
                        was, data_path, now, why);
    }
    if (st && !st->has_data && s->comm->rank == 0)
        fprintf(stderr, "e2e-train: warning: %s has no dataset fingerprint (written before checkpoints stored "
                "one): cannot check that --data %s is the data it was trained on\n", ckpt_path, data_path);
    return 0;
}

void session_describe(const Session *s, long steps, int batch, int accum) {
    const DatasetInfo *info = dataset_info(s->data);
    int ranks = s->comm->size;
    char micro[96] = "";
    if (accum > 1) snprintf(micro, sizeof micro, " x %d micro-batches (global batch %d)", accum, ranks * batch * accum);
    printf("e2e-train: %d rank%s on %s, model %zu parameters, %dx%dx%d images, train %lld / "
           "val %lld / test %lld jets, %ld steps per epoch of %d x %d%s\n",
           ranks, ranks > 1 ? "s" : "", s->ops->name, model_count_params(model_config(s->model)), info->channels,
           info->height, info->width, dataset_split_total(s->data, SPLIT_TRAIN),
           dataset_split_total(s->data, SPLIT_VAL), dataset_split_total(s->data, SPLIT_TEST), steps, ranks, batch,
           micro);
    report_classes(info);
    const char *kernels = net_backend_report(s->ops);
    if (kernels) printf("e2e-train: %s\n", kernels);
}

int session_peek(Session *s, const char *path, CheckpointState *st) {
    int failed = s->comm->rank == 0 && checkpoint_peek(path, st) != 0;
    if (comm_fail_together(s->comm, failed)) return -1;
    comm_bcast_bytes(s->comm, st, sizeof *st);
    return 0;
}

int session_load(Session *s, const char *path, CheckpointState *st) {
    CheckpointState *tmp = malloc(sizeof *tmp);
    if (!tmp) e2e_fail("out of host memory for a checkpoint's state");
    if (comm_fail_together(s->comm, !tmp)) {
        free(tmp);
        return -1;
    }
    float **host = s->host;
    int failed = s->comm->rank == 0 && checkpoint_read(path, tmp, s->model, host[0], host[1], host[2]) != 0;
    int rc = comm_fail_together(s->comm, failed);
    if (!rc) {
        size_t n = model_arena_size(s->model);
        for (int a = 0; a < 3; a++) comm_bcast_floats(s->comm, host[a], n);
        if (st) {
            comm_bcast_bytes(s->comm, tmp, sizeof *tmp);
            *st = *tmp;
        }
        model_set_params(s->model, host[0]);
    }
    free(tmp);
    return rc;
}

void session_close(Session *s) {
    if (s->data) dataset_close(s->data);
    if (s->model) model_free(s->model);
    if (s->ops) s->ops->destroy(s->ops);
    for (int a = 0; a < 3; a++) free(s->host[a]);
    memset(s, 0, sizeof *s);
}
