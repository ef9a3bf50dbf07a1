#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int session_agree(Session *s, int failed, const char *msg) {
    Agreement a;
    comm_agree(s->comm, failed ? AGREE_ERROR : 0, msg, NULL, 0, &a);
    return (a.flags & AGREE_ERROR) ? net_fail("%s", a.message) : 0;
}

void session_feed_for_device(DatasetOptions *o, const char *device) {
    int gpu = device && strcmp(device, "cuda") == 0;
    o->preprocess = !gpu;
    o->keep_half = gpu;
}

HostBatch session_host_batch(const Dataset *d, const DataBatch *b, InputPrep *prep) {
    HostBatch hb = {.n = b->n, .x = b->x, .x_half = b->x_half, .scalars = b->scalars, .target = b->target,
                    .weight = b->weight};
    if (!dataset_info(d)->preprocessed) {
        prep->scale = dataset_prep_factors(d, &prep->threshold);
        hb.prep = prep;
    }
    return hb;
}

int session_open_backend(Session *s, const BackendOptions *bo) {
    BackendOptions o = *bo;
    o.gpu = s->comm->local_rank;
    s->ops = net_backend_create(&o);
    char msg[512] = "";
    if (!s->ops) snprintf(msg, sizeof msg, "rank %d: %s", s->comm->rank, net_error());
    return session_agree(s, !s->ops, msg);
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
    if (s->ops && !s->ops->host_memory && s->ops->alloc_host && !opt.batch_alloc) {
        opt.batch_alloc = pinned_alloc;
        opt.batch_free = pinned_free;
        opt.batch_alloc_ctx = s->ops;
    }
    /* dataset_open agrees over the ranks by itself */
    return dataset_open(&s->data, &opt) ? net_fail("%s", data_error()) : 0;
}

int session_build_model(Session *s, int blocks, int batch) {
    const DatasetInfo *info = dataset_info(s->data);
    ModelConfig mc = model_default_config(batch);
    mc.in_channels = info->channels;
    mc.height = info->height;
    mc.width = info->width;
    mc.n_scalars = info->n_scalars;
    mc.blocks = blocks;
    int failed = 0;
    if (model_create(&s->model, &mc, s->ops)) failed = 1;
    size_t n = failed ? 0 : model_arena_size(s->model);
    for (int a = 0; a < 3 && !failed; a++)
        if (!(s->host[a] = calloc(n, sizeof(float)))) {
            net_fail("out of host memory for %zu parameters", n);
            failed = 1;
        }
    char msg[512] = "";
    if (failed) snprintf(msg, sizeof msg, "rank %d: %s", s->comm->rank, net_error());
    if (session_agree(s, failed, msg)) return -1;
    return comm_attach(s->comm, s->ops);
}

int session_peek(Session *s, const char *path, CheckpointState *st) {
    int failed = 0;
    char msg[512] = "";
    if (s->comm->rank == 0 && checkpoint_peek(path, st)) {
        failed = 1;
        snprintf(msg, sizeof msg, "%s", net_error());
    }
    if (session_agree(s, failed, msg)) return -1;
    MPI_Bcast(st, sizeof *st, MPI_BYTE, 0, s->comm->world);
    return 0;
}

int session_load(Session *s, const char *path, CheckpointState *st) {
    size_t n = model_arena_size(s->model);
    int failed = 0;
    char msg[512] = "";
    CheckpointState *tmp = malloc(sizeof *tmp);
    if (!tmp) {
        failed = 1;
        snprintf(msg, sizeof msg, "rank %d: out of host memory", s->comm->rank);
    } else if (s->comm->rank == 0 &&
               checkpoint_read(path, tmp, s->model, s->host[0], s->host[1], s->host[2])) {
        failed = 1;
        snprintf(msg, sizeof msg, "%s", net_error());
    }
    int rc = session_agree(s, failed, msg);
    if (!rc) {
        for (int a = 0; a < 3; a++) MPI_Bcast(s->host[a], (int)n, MPI_FLOAT, 0, s->comm->world);
        if (st) {
            MPI_Bcast(tmp, sizeof *tmp, MPI_BYTE, 0, s->comm->world);
            *st = *tmp;
        }
        model_set_params(s->model, s->host[0]);
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
