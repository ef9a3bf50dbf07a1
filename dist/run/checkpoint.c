/* Checkpoints (checkpoint.h): written whole in memory by rank 0 and renamed into place;
 * read back with every tensor, attribute and hash checked, versions 1 to 4. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "error.h"
#include "format.h"
#include "h5util.h"
#include "hash.h"
#include "run_files.h"

/* ---- HDF5 (data/format/h5util.h): native types on both sides, fixed-length strings ---- */

static int attr_write(hid_t obj, const char *name, hid_t type, const void *value) {
    return h5_attr_write(obj, name, type, type, value);
}

static int write_floats(hid_t group, const char *name, int ndim, const int *shape,
                        const float *data) {
    hsize_t dims[4];
    for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
    return h5_dataset_write(group, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims, data);
}

/* ---- what is stored as attributes on / ---- */

#define LONG_ATTRS(X)                                                                     \
    X("in_channels", model.in_channels) X("height", model.height) X("width", model.width)   \
    X("n_scalars", model.n_scalars) X("blocks", model.blocks) X("fmaps0", model.fmaps0)     \
    X("fmaps1", model.fmaps1) X("epoch", train.epoch)                                       \
    X("step_in_epoch", train.step_in_epoch) X("global_step", train.global_step)             \
    X("world_size", world_size) X("batch", batch)                                           \
    X("best_epoch", train.best_epoch) X("adam_step", adam_step)                             \
    X("plateau_mode_max", train.lr.plateau.cfg.mode_max)                                    \
    X("plateau_patience", train.lr.plateau.cfg.patience)                                    \
    X("plateau_threshold_abs", train.lr.plateau.cfg.threshold_abs)                          \
    X("plateau_cooldown", train.lr.plateau.cfg.cooldown)                                    \
    X("plateau_num_bad_epochs", train.lr.plateau.num_bad_epochs)                            \
    X("plateau_cooldown_counter", train.lr.plateau.cooldown_counter)                        \
    X("plateau_last_epoch", train.lr.plateau.last_epoch)

#define DOUBLE_ATTRS(X)                                                                   \
    X("epoch_loss_sum", train.epoch_loss_sum) X("epoch_samples", train.epoch_samples)       \
    X("best_metric", train.best_metric) X("elapsed_s", train.elapsed_s)                     \
    X("plateau_factor", train.lr.plateau.cfg.factor)                                        \
    X("plateau_threshold", train.lr.plateau.cfg.threshold)                                  \
    X("plateau_min_lr", train.lr.plateau.cfg.min_lr)                                        \
    X("plateau_eps", train.lr.plateau.cfg.eps)                                              \
    X("plateau_best", train.lr.plateau.best)

#define FLOAT_ATTRS(X)                                                                    \
    X("adam_beta1", adam.beta1) X("adam_beta2", adam.beta2)                                 \
    X("adam_eps", adam.eps) X("adam_weight_decay", adam.weight_decay)

/* the schedule, stored once (version 2) */
#define SCHEDULE_LONG_ATTRS(X) X("lr_warmup_steps", train.lr.warmup_steps)
#define SCHEDULE_DOUBLE_ATTRS(X)                                                          \
    X("lr_base", train.lr.base) X("lr_scaled", train.lr.scaled)                             \
    X("lr_plateau", train.lr.plateau.lr)

/* added within version 3, optional on reading (read_optional_attrs): the micro-batches
 * of an optimizer step, early stopping's count and best value */
#define OPTIONAL_LONG_ATTRS(X) X("accum", accum) X("early_stop_bad_epochs", train.early.bad_epochs)
#define OPTIONAL_DOUBLE_ATTRS(X) X("early_stop_best", train.early.best)

/* version 1: the plateau's rate ("lr"; "adam_lr", Adam's last rate, is not needed) */
#define V1_DOUBLE_ATTRS(X) X("lr", train.lr.plateau.lr)

/* one long attribute of a group g (the fingerprint's) */
#define W_LONG_G(name, field) { long long v_ = (long long)st->field; rc |= attr_write(g, name, H5T_NATIVE_LLONG, &v_); }
#define R_LONG_G(name, field) { long long v_ = 0; rc |= h5_attr_read(g, name, H5T_NATIVE_LLONG, &v_); st->field = v_; }

/* the stored hash: every tensor of the three arenas, in table order, no padding */
static uint64_t arenas_hash(const Model *model, const float *const arenas[3]) {
    uint64_t h = FNV1A_BASIS;
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < model_num_tensors(model); i++) {
            const ParamTensor *t = model_tensor(model, i);
            h = fnv1a_more(h, arenas[a] + t->offset, t->numel * sizeof(float));
        }
    return h;
}

static int write_attrs(hid_t f, const CheckpointState *st, uint64_t hash) {
    int rc = 0;
    rc |= h5_attr_write_str(f, "format", CHECKPOINT_FORMAT, 0);
    int version = CHECKPOINT_VERSION;
    rc |= attr_write(f, "version", H5T_NATIVE_INT, &version);
#define W_LONG(name, field) { long long v_ = (long long)st->field; rc |= attr_write(f, name, H5T_NATIVE_LLONG, &v_); }
#define W_DOUBLE(name, field) rc |= attr_write(f, name, H5T_NATIVE_DOUBLE, &st->field);
#define W_FLOAT(name, field) rc |= attr_write(f, name, H5T_NATIVE_FLOAT, &st->field);
    LONG_ATTRS(W_LONG)
    DOUBLE_ATTRS(W_DOUBLE)
    FLOAT_ATTRS(W_FLOAT)
    SCHEDULE_LONG_ATTRS(W_LONG)
    SCHEDULE_DOUBLE_ATTRS(W_DOUBLE)
    unsigned long long seed = st->train.seed, h = hash;
    rc |= attr_write(f, "seed", H5T_NATIVE_ULLONG, &seed);
    rc |= attr_write(f, "tensors_fnv1a", H5T_NATIVE_ULLONG, &h);
    rc |= h5_attr_write_str(f, "config", st->config_json, 0);
    OPTIONAL_LONG_ATTRS(W_LONG)
    OPTIONAL_DOUBLE_ATTRS(W_DOUBLE)
    rc |= h5_attr_write_str(f, "task", task_name(&st->task), 0);
    if (st->task.kind == TASK_CLASSIFICATION) {
        rc |= h5_attr_write_str(f, "task_label", st->task.label, 0);
        rc |= h5_attr_write_str(f, "task_monitor", st->task.monitor_loss ? "loss" : "auc", 0);
    }
    return rc;
}

/* The task (version 4; older checkpoints were regressions): 0, or -1 naming the file. */
static int read_task(hid_t f, CheckpointState *st, const char *path) {
    st->task = task_regression();
    if (st->version < 4) return 0;
    char *kind = h5_attr_str(f, "task"), *label = h5_attr_str(f, "task_label"), *monitor = h5_attr_str(f, "task_monitor");
    int rc = !kind ? e2e_fail("%s: checkpoint lacks attribute 'task'", path)
             : task_from_names(&st->task, kind, label, monitor) ? e2e_fail("%s: %s", path, e2e_error()) : 0;
    if (!rc && st->task.kind == TASK_CLASSIFICATION && !label)
        rc = e2e_fail("%s: a classifier's checkpoint lacks attribute 'task_label'", path);
    free(kind), free(label), free(monitor);
    return rc;
}

/* The attributes of OPTIONAL_*_ATTRS: absent from checkpoints written before them, which
 * read as a run without accumulation and with a fresh early-stop count. */
static void read_optional_attrs(hid_t f, CheckpointState *st) {
    st->accum = 1;
    early_stop_init(&st->train.early);
#define R_OPT_LONG(name, field) { long long v_ = 0; if (!h5_attr_read(f, name, H5T_NATIVE_LLONG, &v_)) st->field = v_; }
#define R_OPT_DOUBLE(name, field) h5_attr_read(f, name, H5T_NATIVE_DOUBLE, &st->field);
    OPTIONAL_LONG_ATTRS(R_OPT_LONG)
    OPTIONAL_DOUBLE_ATTRS(R_OPT_DOUBLE)
    if (st->accum < 1) st->accum = 1;
}

static int read_attrs(hid_t f, CheckpointState *st, uint64_t *hash, const char *path) {
    int rc = 0;
#define R_LONG(name, field) { long long v_ = 0; if (h5_attr_read(f, name, H5T_NATIVE_LLONG, &v_)) rc = e2e_fail("%s: checkpoint lacks attribute '%s' (one number)", path, name); st->field = v_; }
#define R_DOUBLE(name, field) if (h5_attr_read(f, name, H5T_NATIVE_DOUBLE, &st->field)) rc = e2e_fail("%s: checkpoint lacks attribute '%s' (one number)", path, name);
#define R_FLOAT(name, field) if (h5_attr_read(f, name, H5T_NATIVE_FLOAT, &st->field)) rc = e2e_fail("%s: checkpoint lacks attribute '%s' (one number)", path, name);
    LONG_ATTRS(R_LONG)
    DOUBLE_ATTRS(R_DOUBLE)
    FLOAT_ATTRS(R_FLOAT)
    if (st->version >= 2) {
        SCHEDULE_LONG_ATTRS(R_LONG)
        SCHEDULE_DOUBLE_ATTRS(R_DOUBLE)
    } else {
        V1_DOUBLE_ATTRS(R_DOUBLE)
    }
    unsigned long long seed = 0, h = 0;
    if (h5_attr_read(f, "seed", H5T_NATIVE_ULLONG, &seed) ||
        h5_attr_read(f, "tensors_fnv1a", H5T_NATIVE_ULLONG, &h))
        rc = e2e_fail("%s: checkpoint lacks its seed or parameter hash", path);
    st->train.seed = seed;
    *hash = h;
    char *config = h5_attr_str(f, "config");  /* kept when it fits, else left out */
    if (config && strlen(config) < sizeof st->config_json) strcpy(st->config_json, config);
    free(config);
    return rc;
}

/* ---- the data: preprocessing and the dataset's fingerprint, on /data ---- */

#define FINGERPRINT_LONGS(X) \
    X("data_n", data.n) X("data_channels", data.channels) X("data_height", data.height) \
    X("data_width", data.width)

static int write_data_attrs(hid_t g, const CheckpointState *st) {
    int rc = attr_write(g, "zero_suppress", H5T_NATIVE_FLOAT, &st->zero_suppress);
    long long unbias = st->unbias;
    rc |= attr_write(g, "unbias", H5T_NATIVE_LLONG, &unbias);
    if (st->mass_scale > 0.0f) rc |= attr_write(g, "mass_scale", H5T_NATIVE_FLOAT, &st->mass_scale);
    if (!st->has_data) return rc;
    FINGERPRINT_LONGS(W_LONG_G)
    unsigned long long mass = st->data.mass_hash, split = st->data.split_hash;
    rc |= attr_write(g, "data_mass_hash", H5T_NATIVE_ULLONG, &mass);
    rc |= attr_write(g, "data_split_hash", H5T_NATIVE_ULLONG, &split);
    rc |= h5_attr_write_str(g, "data_channel_names", st->data.channel_names, 0);
    rc |= h5_attr_write_str(g, "data_files", st->data.files, 0);
    unsigned long long label = st->data.label_hash;  /* a classifier's labels; a regression has none */
    if (st->data.label[0])
        rc |= attr_write(g, "data_label_hash", H5T_NATIVE_ULLONG, &label) | h5_attr_write_str(g, "data_label", st->data.label, 0);
    return rc;
}

/* The optional attributes of /data: absent from older checkpoints, which then resume
 * with a warning (no fingerprint) and take the preprocessing from their configuration. */
static void read_data_attrs(hid_t g, CheckpointState *st) {
    long long unbias = -1;
    if (h5_attr_read(g, "zero_suppress", H5T_NATIVE_FLOAT, &st->zero_suppress)) st->zero_suppress = -1.0f;
    if (!h5_attr_read(g, "unbias", H5T_NATIVE_LLONG, &unbias)) st->unbias = (int)unbias;
    if (h5_attr_read(g, "mass_scale", H5T_NATIVE_FLOAT, &st->mass_scale)) st->mass_scale = 0.0f;
    unsigned long long mass = 0, split = 0;
    int rc = h5_attr_read(g, "data_mass_hash", H5T_NATIVE_ULLONG, &mass) ||
             h5_attr_read(g, "data_split_hash", H5T_NATIVE_ULLONG, &split);
    FINGERPRINT_LONGS(R_LONG_G)
    char *names = h5_attr_str(g, "data_channel_names"), *files = h5_attr_str(g, "data_files");
    st->has_data = !rc && names && files;
    if (st->has_data) {
        st->data.mass_hash = mass;
        st->data.split_hash = split;
        snprintf(st->data.channel_names, sizeof st->data.channel_names, "%s", names);
        snprintf(st->data.files, sizeof st->data.files, "%s", files);
    }
    char *label = h5_attr_str(g, "data_label");  /* a classifier's; absent from older ones */
    unsigned long long label_hash = 0;
    if (st->has_data && label && !h5_attr_read(g, "data_label_hash", H5T_NATIVE_ULLONG, &label_hash))
        snprintf(st->data.label, sizeof st->data.label, "%s", label), st->data.label_hash = label_hash;
    free(names), free(files), free(label);
}

/* ---- writing ---- */

static int write_group(hid_t f, const char *group, const Model *model, const float *arena) {
    hid_t g = H5Gcreate2(f, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    int rc = 0;
    for (int i = 0; i < model_num_tensors(model) && !rc; i++) {
        const ParamTensor *t = model_tensor(model, i);
        rc = write_floats(g, t->name, t->ndim, t->shape, arena + t->offset);
    }
    H5Gclose(g);
    return rc;
}

/* Everything a checkpoint holds, into the open file f: 0, or -1. */
static int write_contents(hid_t f, const CheckpointState *st, const Model *model, const float *params,
                          const float *m, const float *v) {
    const float *arenas[3] = {params, m, v};
    int rc = write_attrs(f, st, arenas_hash(model, arenas));
    /* the tensor order, for validating without a model: names joined by '\n' */
    size_t len = 1;
    for (int i = 0; i < model_num_tensors(model); i++) len += strlen(model_tensor(model, i)->name) + 1;
    char *names = calloc(len, 1);
    for (int i = 0; names && i < model_num_tensors(model); i++) {
        strcat(names, model_tensor(model, i)->name);
        strcat(names, "\n");
    }
    rc |= !names || h5_attr_write_str(f, "tensor_order", names, 0);
    free(names);
    rc |= write_group(f, "model", model, params);
    hid_t opt = H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= opt < 0;
    if (opt >= 0) {
        rc |= write_group(opt, "exp_avg", model, m);
        rc |= write_group(opt, "exp_avg_sq", model, v);
        H5Gclose(opt);
    }
    hid_t data = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= data < 0;
    if (data >= 0) {
        int n = st->n_scales;
        rc |= write_floats(data, "scales", 1, &n, st->scales);
        rc |= jet_inputs_write(data, &st->inputs);
        rc |= write_data_attrs(data, st);
        H5Gclose(data);
    }
    return rc ? -1 : 0;
}

/* The file is built in memory and written through net/base/outfile.h: a temporary name,
 * checked writes, fsync, rename. */
int checkpoint_write(const char *path, const CheckpointState *st, const Model *model,
                     const float *params, const float *m, const float *v) {
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    hid_t f = h5_memfile_create();
    int rc = f < 0 ? -1 : write_contents(f, st, model, params, m, v);
    if (rc && f >= 0) H5Fclose(f);
    rc = rc ? h5_fail(path, "cannot build the checkpoint") : h5_memfile_save(f, path);
    h5_quiet_end(&quiet);
    if (!rc) return 0;
    int kept = access(path, F_OK) == 0;  /* an earlier checkpoint of that name */
    return e2e_fail("checkpoint not written: %s%s", e2e_error(),
                    kept ? "; the previous one of that name is kept" : "");
}

/* ---- reading ---- */

/* The names of the tensor_order attribute (split in place in *buf); returns the count. */
static int tensor_names(hid_t f, char **buf, char ***names) {
    *names = NULL;
    if (!(*buf = h5_attr_str(f, "tensor_order"))) return -1;
    int count = 0;
    for (char *p = *buf; *p; p++) count += *p == '\n';
    *names = calloc((size_t)count + 1, sizeof(char *));
    if (!*names) return -1;
    int i = 0;
    for (char *tok = strtok(*buf, "\n"); tok && i < count; tok = strtok(NULL, "\n")) (*names)[i++] = tok;
    return i;
}

/* Dataset d's element count in *n; 1 when its shape is a tensor's (and t's, when t is
 * given), else 0. */
static int shape_matches(hid_t d, const ParamTensor *t, hssize_t *n) {
    hid_t space = H5Dget_space(d);
    *n = H5Sget_simple_extent_npoints(space);
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8] = {0};
    if (nd > 0 && nd <= 8) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    int ok = *n > 0 && nd > 0 && nd <= 8;
    if (t) {
        ok = ok && nd == t->ndim && (size_t)*n == t->numel;
        for (int k = 0; ok && k < nd; k++) ok = (int)dims[k] == t->shape[k];
    }
    return ok;
}

/* Where a tensor is read without a model (checkpoint_peek): grown as needed. */
typedef struct {
    float *p;
    size_t n;
} Scratch;

static float *scratch_fit(Scratch *s, size_t n) {
    if (s->n < n) {
        free(s->p);
        s->p = malloc(sizeof(float) * n);
        s->n = s->p ? n : 0;
    }
    return s->p;
}

/* Tensor `name` of group g (named `group` in messages): into the arena at t's place
 * (t: the model's tensor), or into the scratch without a model; added to the hash. */
static int read_tensor(hid_t g, const char *group, const char *name, const ParamTensor *t, float *arena,
                       Scratch *scratch, uint64_t *hash, const char *path) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) return e2e_fail("%s: checkpoint has no %s '%s'", path, group, name);
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hssize_t n = 0;
    if (!shape_matches(d, t, &n)) {
        H5Dclose(d);
        return e2e_fail("%s: %s '%s' has the wrong shape for this model", path, group, name);
    }
    float *dst = t ? arena + t->offset : scratch_fit(scratch, (size_t)n);
    herr_t r = dst ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) : -1;
    H5Dclose(d);
    if (r < 0) return e2e_fail("%s: %s '%s' cannot be read (truncated or corrupt file)", path, group, name);
    *hash = fnv1a_more(*hash, dst, (size_t)n * sizeof(float));
    return 0;
}

/* Reads every tensor of one group in the stored order, hashing as it goes; with a
 * model, also places them in the arena (shape checked against the model). */
static int read_group(hid_t f, const char *group, char **names, int count, const Model *model,
                      float *arena, uint64_t *hash, const char *path) {
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0) {
        /* "optimizer/exp_avg": check the parent first, H5Lexists needs it */
        return e2e_fail("%s: checkpoint has no group '%s' (truncated or foreign file)", path, group);
    }
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    if (g < 0) return e2e_fail("%s: cannot open group '%s'", path, group);
    if (arena) memset(arena, 0, sizeof(float) * model_arena_size(model));
    int rc = 0;
    Scratch scratch = {0};
    for (int i = 0; i < count && !rc; i++) {
        const ParamTensor *t = model ? model_find_tensor(model, names[i]) : NULL;
        if (model && (!t || model_tensor(model, i) != t))
            rc = e2e_fail("%s: tensor '%s' is not this model's tensor %d (checkpoint of another model)", path,
                          names[i], i);
        else
            rc = read_tensor(g, group, names[i], t, arena, &scratch, hash, path);
    }
    free(scratch.p);
    H5Gclose(g);
    return rc;
}

/* The format and a version this build reads (into st->version). */
static int check_format(hid_t f, CheckpointState *st, const char *path) {
    char *format = h5_attr_str(f, "format");
    int ours = format && strcmp(format, CHECKPOINT_FORMAT) == 0;
    int jets = format && strcmp(format, FORMAT_NAME) == 0;
    free(format);
    if (jets)
        return e2e_fail("%s: a jet data file (format '%s'), not an e2e-ddp checkpoint (--data and --checkpoint "
                        "swapped?)", path, FORMAT_NAME);
    if (!ours)
        return e2e_fail("%s: not an e2e-ddp checkpoint (no '%s' format attribute)", path, CHECKPOINT_FORMAT);
    int version = 0;
    if (h5_attr_read(f, "version", H5T_NATIVE_INT, &version) ||
        version < CHECKPOINT_OLDEST_VERSION || version > CHECKPOINT_VERSION)
        return e2e_fail("%s: checkpoint version %d, this build reads versions %d to %d", path,
                        version, CHECKPOINT_OLDEST_VERSION, CHECKPOINT_VERSION);
    st->version = version;
    return 0;
}

static int check_shape(const CheckpointState *st, const Model *model, const char *path) {
    const ModelConfig *c = model_config(model), *s = &st->model;
    if (s->in_channels == c->in_channels && s->height == c->height && s->width == c->width &&
        s->n_scalars == c->n_scalars && s->blocks == c->blocks && s->fmaps0 == c->fmaps0 &&
        s->fmaps1 == c->fmaps1)
        return 0;
    return e2e_fail("%s: checkpoint of another model shape (C=%d %dx%d, %d scalars, %d blocks, "
                    "maps %d/%d); this run's model is C=%d %dx%d, %d scalars, %d blocks, "
                    "maps %d/%d", path, s->in_channels, s->height, s->width, s->n_scalars,
                    s->blocks, s->fmaps0, s->fmaps1, c->in_channels, c->height, c->width,
                    c->n_scalars, c->blocks, c->fmaps0, c->fmaps1);
}

/* The stored model shape is one a model can be made of, and the parameters stored under
 * /model are as many as it has: a shape that claims more (a checkpoint claiming 1.9e9
 * channels, or feature maps of gigabytes: fuzz_checkpoint) is refused before a model of
 * it is made. */
static int check_model(hid_t f, const CheckpointState *st, char **names, int count, const char *path) {
    ModelConfig c = st->model;
    c.max_batch = 1;
    if (model_check_config(&c)) return e2e_fail("%s: the checkpoint's model shape is not one: %s", path, e2e_error());
    long long stored = 0;
    for (int i = 0; i < count; i++) {
        char name[512];
        snprintf(name, sizeof name, "model/%s", names[i]);
        hid_t d = H5Lexists(f, "model", H5P_DEFAULT) > 0 && H5Lexists(f, name, H5P_DEFAULT) > 0
                      ? H5Dopen2(f, name, H5P_DEFAULT) : -1, sp = d >= 0 ? H5Dget_space(d) : -1;
        stored += sp >= 0 ? (long long)H5Sget_simple_extent_npoints(sp) : 0;
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
    }
    long long want = (long long)model_count_params(&c);
    return stored == want ? 0 : e2e_fail("%s: the checkpoint's model shape (C=%d %dx%d, maps %d/%d, %d blocks) has %lld "
                                         "parameters but it stores %lld", path, c.in_channels, c.height, c.width,
                                         c.fmaps0, c.fmaps1, c.blocks, want, stored);
}

/* The three arenas' tensors in stored order (into arenas when a model is given; else
 * their count checked against the stored shape's), hashed as they are read. */
static int read_tensors(hid_t f, const CheckpointState *st, const Model *model, float *arenas[3], uint64_t *hash,
                        const char *path) {
    char *buf = NULL, **names = NULL;
    int count = tensor_names(f, &buf, &names), rc = 0;
    if (count <= 0) rc = e2e_fail("%s: checkpoint lacks its tensor list", path);
    if (!rc && !model) rc = check_model(f, st, names, count, path);
    if (!rc && model && count != model_num_tensors(model))
        rc = e2e_fail("%s: checkpoint holds %d tensors, this model has %d", path, count,
                      model_num_tensors(model));
    static const char *groups[3] = {"model", "optimizer/exp_avg", "optimizer/exp_avg_sq"};
    if (!rc && H5Lexists(f, "optimizer", H5P_DEFAULT) <= 0)
        rc = e2e_fail("%s: checkpoint has no optimizer state", path);
    for (int a = 0; a < 3 && !rc; a++)
        rc = read_group(f, groups[a], names, count, model, model ? arenas[a] : NULL, hash, path);
    free(names);
    free(buf);
    return rc;
}

/* The model's inputs: version 3 records them on /data (the jet format's attributes);
 * versions 1 and 2 trained on the default ones. Their counts must be the model's. */
static int read_inputs(hid_t f, CheckpointState *st, const char *path) {
    if (st->version < 3) {
        jet_inputs_default(&st->inputs, st->n_scales);
        return 0;
    }
    hid_t data = H5Gopen2(f, "data", H5P_DEFAULT);
    int rc = H5Aexists(data, ATTR_SCALARS) > 0 && H5Aexists(data, ATTR_CHANNEL_KINDS) > 0
                 ? 0
                 : e2e_fail("%s: checkpoint lacks the model's inputs (data: attributes %s, %s)", path, ATTR_SCALARS,
                            ATTR_CHANNEL_KINDS);
    if (!rc && jet_inputs_read(&st->inputs, data, path, st->n_scales)) rc = e2e_fail("%s (checkpoint)", e2e_error());
    H5Gclose(data);
    if (!rc && st->inputs.n_scalars != st->model.n_scalars)
        rc = e2e_fail("%s: checkpoint names %d scalar inputs but its model takes %d", path, st->inputs.n_scalars,
                      st->model.n_scalars);
    return rc;
}

static int read_scales(hid_t f, CheckpointState *st, const char *path) {
    if (H5Lexists(f, "data", H5P_DEFAULT) <= 0 || H5Lexists(f, "data/scales", H5P_DEFAULT) <= 0)
        return e2e_fail("%s: checkpoint has no data/scales", path);
    hid_t d = H5Dopen2(f, "data/scales", H5P_DEFAULT);
    hid_t space = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    int rc = 0;
    if (n < 0 || n > CHECKPOINT_MAX_SCALES)
        rc = e2e_fail("%s: checkpoint holds %lld scales, at most %d", path, (long long)n,
                      CHECKPOINT_MAX_SCALES);
    else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, st->scales) < 0)
        rc = e2e_fail("%s: data/scales cannot be read", path);
    st->n_scales = (int)n;
    H5Dclose(d);
    return rc;
}

/* Checkpoints older than the zero_suppress and unbias attributes: the run's
 * configuration has them (unbias -1 there meant the reader's default, weights). */
static void preprocessing_from_config(CheckpointState *st) {
    double v;
    if (st->zero_suppress < 0 && run_json_number(st->config_json, "zero_suppress", &v) == 0) st->zero_suppress = (float)v;
    if (st->unbias < 0 && run_json_number(st->config_json, "unbias", &v) == 0)
        st->unbias = v < 0 ? DATA_UNBIAS_WEIGHTS : (int)v;
}

/* peek (model NULL) or read (model and arenas given) */
static int load(const char *path, CheckpointState *st, const Model *model, float *arenas[3]) {
    memset(st, 0, sizeof *st);
    st->zero_suppress = -1.0f;
    st->unbias = -1;
    struct stat sb;
    if (access(path, R_OK) != 0)
        return e2e_fail("%s: cannot read the checkpoint (%s)", path, strerror(errno));
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return e2e_fail("%s: is a folder, not a checkpoint (a run's checkpoints are RUNDIR/checkpoints/*.h5)", path);
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int rc = f < 0 ? e2e_fail("%s: not an HDF5 file, or truncated: not a usable checkpoint", path)
                   : check_format(f, st, path);
    uint64_t stored = 0, hash = FNV1A_BASIS;
    if (!rc) rc = read_attrs(f, st, &stored, path);
    if (!rc) read_optional_attrs(f, st);
    if (!rc) rc = read_task(f, st, path);
    if (!rc && model) rc = check_shape(st, model, path);
    if (!rc) rc = read_tensors(f, st, model, arenas, &hash, path);
    if (!rc) rc = read_scales(f, st, path);
    if (!rc) rc = read_inputs(f, st, path);
    if (!rc) {
        hid_t g = H5Gopen2(f, "data", H5P_DEFAULT);
        read_data_attrs(g, st);
        H5Gclose(g);
    }
    if (f >= 0) H5Fclose(f);
    h5_quiet_end(&quiet);
    if (!rc && hash != stored)
        rc = e2e_fail("%s: the tensors do not match their stored hash (corrupt checkpoint)", path);
    if (!rc) preprocessing_from_config(st);
    return rc;
}

int checkpoint_peek(const char *path, CheckpointState *st) { return load(path, st, NULL, NULL); }

int checkpoint_read(const char *path, CheckpointState *st, const Model *model, float *params,
                    float *m, float *v) {
    if (!model || !params || !m || !v) return e2e_fail("checkpoint_read: NULL argument");
    float *arenas[3] = {params, m, v};
    return load(path, st, model, arenas);
}

/* ---- the run folder's checkpoints ---- */

void checkpoint_name(char *out, size_t size, const char *dir, long global_step) {
    snprintf(out, size, "%s/ckpt-%010ld.h5", dir, global_step);
}

int checkpoint_list(const char *dir, long **steps) {
    *steps = NULL;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long s;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%ld.%7s", &s, tail) == 2 && strcmp(tail, "h5") == 0 &&
            strlen(e->d_name) == 18) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                *steps = realloc(*steps, sizeof(long) * cap);
            }
            (*steps)[n++] = s;
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++)  /* insertion sort, descending */
        for (int j = i; j > 0 && (*steps)[j] > (*steps)[j - 1]; j--) {
            long t = (*steps)[j];
            (*steps)[j] = (*steps)[j - 1];
            (*steps)[j - 1] = t;
        }
    return n;
}

int checkpoint_find_latest(const char *dir, char *out, size_t out_size) {
    long *steps;
    int n = checkpoint_list(dir, &steps);
    if (n < 0) return e2e_fail("%s: cannot list checkpoints (%s)", dir, strerror(errno));
    CheckpointState *st = malloc(sizeof *st);
    int found = 0;
    for (int i = 0; i < n && !found && st; i++) {
        checkpoint_name(out, out_size, dir, steps[i]);
        if (checkpoint_peek(out, st) == 0)
            found = 1;
        else
            fprintf(stderr, "e2e-ddp: warning: skipping %s\n", e2e_error());
    }
    free(st);
    free(steps);
    return found;
}
