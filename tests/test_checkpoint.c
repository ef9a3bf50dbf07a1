/* Checkpoints: a bitwise roundtrip of parameters, moments and state (the model's inputs:
 * scalars, scales, channel kinds, none included); the newest valid one is found;
 * truncated, foreign, non-HDF5, corrupt and other-shape files, and inputs that disagree
 * with the model, are refused with a message naming the file; version 1 and 2 files
 * written by the old writers are read (with the default inputs, no accumulation and a
 * fresh early-stop count); the micro-batches and the early-stop count roundtrip; a process killed
 * (SIGKILL) while writing never leaves a half-written checkpoint under the final name;
 * pruning keeps the newest. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "h5util.h"
#include "model.h"

static char dir[256];

static Model *small_model(NetOps *ops, int channels) {
    ModelConfig cfg = model_default_config(2);
    cfg.in_channels = channels;
    cfg.height = cfg.width = 16;
    Model *m = NULL;
    if (model_create(&m, &cfg, ops)) CHECK(0, "model_create: %s", e2e_error());
    return m;
}

static void fill(float *a, size_t n, float base) {
    for (size_t i = 0; i < n; i++) a[i] = base + 0.001f * (float)(i % 997);
}

static CheckpointState state_of(const Model *m, long step) {
    CheckpointState st;
    memset(&st, 0, sizeof st);
    st.model = *model_config(m);
    st.train.epoch = 3;
    st.train.step_in_epoch = 17;
    st.train.global_step = step;
    st.world_size = 2;
    st.batch = 8;
    st.accum = 4;
    st.train.early = (EarlyStopState){.best = 12.5, .bad_epochs = 2};
    st.train.seed = 0xfeedbeefcafe1234ull;
    st.train.epoch_loss_sum = 1.25;
    st.train.epoch_samples = 272;
    st.train.best_metric = 61.5;
    st.train.best_epoch = 2;
    st.train.elapsed_s = 99.5;
    lr_schedule_init(&st.train.lr, 2.5e-4, 1e-3, 40,
                     &(PlateauConfig){.factor = 0.5, .patience = 2, .threshold = 1e-4, .eps = 1e-8});
    st.train.lr.plateau.lr = 5e-4;
    st.train.lr.plateau.best = 0.25;
    st.train.lr.plateau.num_bad_epochs = 1;
    st.adam_step = step;
    st.adam = (AdamHyper){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    st.n_scales = 8;
    for (int i = 0; i < 8; i++) st.scales[i] = 0.5f + i;
    /* the model's 2 scalars, not the default ones; channels 1 and 2 signed */
    jet_inputs_default(&st.inputs, 8);
    st.inputs.declared = 1;
    snprintf(st.inputs.scalar[0], JET_SCALAR_NAME_LEN, "pt");
    st.inputs.scale[0] = 800.0;
    st.inputs.scale[1] = 0.25;
    st.inputs.kind[1] = st.inputs.kind[2] = CHANNEL_SIGNED;
    st.mass_scale = 250.0f;
    snprintf(st.config_json, sizeof st.config_json, "{\"epochs\": 25}");
    return st;
}

/* offset of the first occurrence of 4 bytes in a file, or -1 */
static long find_bytes(const char *path, const void *pat) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    unsigned char *buf = malloc(n);
    fseek(f, 0, SEEK_SET);
    long got = (long)fread(buf, 1, n, f), at = -1;
    fclose(f);
    for (long i = 0; i + 4 <= got && at < 0; i++)
        if (memcmp(buf + i, pat, 4) == 0) at = i;
    free(buf);
    return at;
}

static void copy_file(const char *from, const char *to, long limit) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[4096];
    long done = 0;
    size_t k;
    while (a && b && (limit < 0 || done < limit) &&
           (k = fread(buf, 1, limit < 0 || limit - done > 4096 ? 4096 : (size_t)(limit - done), a)) > 0) {
        fwrite(buf, 1, k, b);
        done += (long)k;
    }
    if (a) fclose(a);
    if (b) fclose(b);
}

/* A version-1 checkpoint written by the version-1 writer (tests/reference/README.md):
 * it is read, with the plateau's rate from "lr" and the schedule's other rates unknown
 * (0: the run's options give them); a future version is refused by number. */
static void test_version1(NetOps *ops);
/* The same for version 2 (tests/reference/checkpoint_v2.h5): read, with the default
 * inputs (iphi / 360, ieta / 170, every channel energy-like). */
static void test_version2(NetOps *ops);
/* A model without scalars records none; inputs that disagree with the model, or are
 * missing from a version-3 file, are refused. */
static void test_inputs(NetOps *ops);
/* The task (version 4): a classifier's label and monitored metric read back; a
 * regression's; versions 1 to 3 read as regressions; an unknown task or a classifier
 * without its label refused. */
static void test_task(NetOps *ops);

#define EXPECT_REFUSED(call, needle)                                                             \
    do {                                                                                         \
        int rc_ = (call);                                                                        \
        CHECK(rc_ == -1 && strstr(e2e_error(), needle) != NULL, "%s: rc %d, message '%s' lacks '%s'", \
              #call, rc_, e2e_error(), needle);                                                  \
    } while (0)

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/e2e-ckpt-test-%ld", (long)getpid());
    mkdir(dir, 0777);
    NetOps *ops = net_cpu_create(1);
    Model *m = small_model(ops, 8);
    size_t na = model_arena_size(m);
    float *p = calloc(na, 4), *mo = calloc(na, 4), *v = calloc(na, 4);
    float *p2 = calloc(na, 4), *mo2 = calloc(na, 4), *v2 = calloc(na, 4);
    fill(p, na, 1.0f);
    fill(mo, na, 2.0f);
    fill(v, na, 3.0f);
    const ParamTensor *fcb = model_find_tensor(m, "fc.bias");
    const float marker = 12345.678f;
    p[fcb->offset] = marker;
    /* padding stays zero, as in the model */
    for (int i = 0; i + 1 < model_num_tensors(m); i++) {
        const ParamTensor *t = model_tensor(m, i), *u = model_tensor(m, i + 1);
        for (size_t j = t->offset + t->numel; j < u->offset; j++) p[j] = mo[j] = v[j] = 0.0f;
    }
    const ParamTensor *last = model_tensor(m, model_num_tensors(m) - 1);
    for (size_t j = last->offset + last->numel; j < na; j++) p[j] = mo[j] = v[j] = 0.0f;

    char path[512], path2[512], found[512];
    checkpoint_name(path, sizeof path, dir, 120);
    CheckpointState st = state_of(m, 120), got;
    CHECK(checkpoint_write(path, &st, m, p, mo, v) == 0, "write: %s", e2e_error());
    CHECK(checkpoint_read(path, &got, m, p2, mo2, v2) == 0, "read: %s", e2e_error());
    CHECK(memcmp(p, p2, na * 4) == 0 && memcmp(mo, mo2, na * 4) == 0 && memcmp(v, v2, na * 4) == 0,
          "arenas differ after the roundtrip");
    CHECK(got.train.epoch == 3 && got.train.step_in_epoch == 17 && got.train.global_step == 120 && got.world_size == 2 &&
          got.batch == 8 && got.train.seed == st.train.seed && got.train.best_epoch == 2 && got.adam_step == 120,
          "integer state differs");
    CHECK(got.train.epoch_loss_sum == 1.25 && got.train.epoch_samples == 272 && got.train.best_metric == 61.5 &&
          got.train.elapsed_s == 99.5, "double state differs");
    CHECK(got.version == CHECKPOINT_VERSION, "version %d read back", got.version);
    CHECK(got.accum == 4 && got.train.early.best == 12.5 && got.train.early.bad_epochs == 2,
          "accumulation and the early-stop count read back: accum %d, best %g, %ld epochs", got.accum,
          got.train.early.best, got.train.early.bad_epochs);
    CHECK(got.train.lr.base == 2.5e-4 && got.train.lr.scaled == 1e-3 && got.train.lr.warmup_steps == 40,
          "the schedule's rates differ");
    CHECK(got.train.lr.plateau.lr == 5e-4 && got.train.lr.plateau.best == 0.25 && got.train.lr.plateau.num_bad_epochs == 1 &&
          got.train.lr.plateau.cfg.factor == 0.5 && got.train.lr.plateau.cfg.patience == 2, "scheduler state differs");
    CHECK(lr_at(&got.train.lr, 0) == lr_at(&st.train.lr, 0) && lr_at(&got.train.lr, 100) == 5e-4,
          "the read schedule gives other rates");
    CHECK(got.adam.beta2 == 0.999f && got.adam.eps == 1e-8f, "optimizer hyper-parameters differ");
    CHECK(got.n_scales == 8 && got.scales[7] == 7.5f, "scales differ");
    CHECK(got.mass_scale == 250.0f, "the target scale read back as %g", got.mass_scale);
    CHECK(jet_inputs_equal(&got.inputs, &st.inputs) && !strcmp(got.inputs.scalar[0], "pt") &&
              got.inputs.scale[1] == 0.25 && got.inputs.kind[2] == CHANNEL_SIGNED && got.inputs.kind[3] == CHANNEL_ENERGY,
          "the model's inputs differ after the roundtrip");
    CHECK(strcmp(got.config_json, "{\"epochs\": 25}") == 0, "config differs: %s", got.config_json);
    got.model.max_batch = model_config(m)->max_batch;  /* not stored: a resumed run picks its own */
    CHECK(memcmp(&got.model, model_config(m), sizeof(ModelConfig)) == 0, "model config differs");

    test_version1(ops);
    test_version2(ops);
    test_inputs(ops);
    test_task(ops);

    /* newest valid wins; a corrupt newest is skipped */
    checkpoint_name(path2, sizeof path2, dir, 240);
    st = state_of(m, 240);
    CHECK(checkpoint_write(path2, &st, m, p, mo, v) == 0, "second write: %s", e2e_error());
    CHECK(checkpoint_find_latest(dir, found, sizeof found) == 1 && strcmp(found, path2) == 0,
          "latest: %s", found);

    /* corrupt data: flip the marker's bytes in a copy */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/ckpt-0000000360.h5", dir);
    copy_file(path2, bad, -1);
    long at = find_bytes(bad, &marker);
    CHECK(at > 0, "marker not found in the file");
    FILE *f = fopen(bad, "r+b");
    fseek(f, at, SEEK_SET);
    float other = 54321.0f;
    fwrite(&other, 4, 1, f);
    fclose(f);
    EXPECT_REFUSED(checkpoint_peek(bad, &got), "corrupt");
    EXPECT_REFUSED(checkpoint_read(bad, &got, m, p2, mo2, v2), bad);
    CHECK(checkpoint_find_latest(dir, found, sizeof found) == 1 && strcmp(found, path2) == 0,
          "a corrupt newest checkpoint must be skipped, got %s", found);
    unlink(bad);

    /* truncated */
    struct stat sb;
    stat(path2, &sb);
    snprintf(bad, sizeof bad, "%s/truncated.h5", dir);
    copy_file(path2, bad, sb.st_size / 2);
    EXPECT_REFUSED(checkpoint_peek(bad, &got), "truncated");
    /* not HDF5 */
    snprintf(bad, sizeof bad, "%s/text.h5", dir);
    f = fopen(bad, "w");
    fputs("not a checkpoint\n", f);
    fclose(f);
    EXPECT_REFUSED(checkpoint_peek(bad, &got), "not an HDF5 file");
    /* missing */
    EXPECT_REFUSED(checkpoint_peek("/nonexistent/ckpt.h5", &got), "/nonexistent/ckpt.h5");
    /* foreign HDF5 */
    snprintf(bad, sizeof bad, "%s/foreign.h5", dir);
    hid_t h = H5Fcreate(bad, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {4};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t ds = H5Dcreate2(h, "weights", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, p);
    H5Dclose(ds), H5Sclose(sp), H5Fclose(h);
    EXPECT_REFUSED(checkpoint_peek(bad, &got), "not an e2e-ddp checkpoint");
    /* another model shape */
    Model *m3 = small_model(ops, 3);
    float *q = calloc(model_arena_size(m3), 4), *q2 = calloc(model_arena_size(m3), 4),
          *q3 = calloc(model_arena_size(m3), 4);
    EXPECT_REFUSED(checkpoint_read(path2, &got, m3, q, q2, q3), "another model shape");

    /* SIGKILL while writing: the final name always holds a whole checkpoint */
    int intact = 0, kills = 0;
    for (int trial = 0; trial < 12; trial++) {
        pid_t child = fork();
        if (child == 0) {
            CheckpointState cs = state_of(m, 1000);
            for (long k = 0;; k++) {
                p[0] = (float)k;
                checkpoint_write(path, &cs, m, p, mo, v);
            }
        }
        struct timespec ts = {0, 3000000L + 2500000L * trial};
        nanosleep(&ts, NULL);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        kills++;
        intact += checkpoint_peek(path, &got) == 0;
    }
    CHECK(intact == kills, "%d of %d kills left a broken checkpoint: %s", kills - intact, kills, e2e_error());

    /* the folder's checkpoints, newest first (pruning by a run's history: test_run_folder) */
    for (long s = 1; s <= 5; s++) {
        checkpoint_name(path, sizeof path, dir, 1000 + s);
        st = state_of(m, 1000 + s);
        checkpoint_write(path, &st, m, p, mo, v);
    }
    long *steps = NULL;
    int n = checkpoint_list(dir, &steps);
    CHECK(n >= 6 && steps[0] == 1005 && steps[1] == 1004 && steps[4] == 1001,
          "checkpoint_list: %d, newest %ld", n, n > 0 ? steps[0] : -1L);
    free(steps);
    CHECK(checkpoint_list("/nonexistent/dir", &steps) == 0, "a missing folder lists no checkpoints");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    model_free(m), model_free(m3);
    ops->destroy(ops);
    free(p), free(mo), free(v), free(p2), free(mo2), free(v2), free(q), free(q2), free(q3);
    return check_main_result("test_checkpoint");
}

/* The fixtures' model (tests/reference/README.md): `channels` channels, 8x8, 2 scalars,
 * 0 blocks, feature maps 2 and 3; NULL (a failed check) when it cannot be made. */
static Model *fixture_model(NetOps *ops, int channels) {
    ModelConfig cfg = model_default_config(1);
    cfg.in_channels = channels;
    cfg.height = cfg.width = 8;
    cfg.blocks = 0;
    cfg.fmaps0 = 2;
    cfg.fmaps1 = 3;
    Model *m = NULL;
    if (model_create(&m, &cfg, ops)) CHECK(0, "the fixture's model: %s", e2e_error());
    return m;
}

/* Reads fixture path's tensors into model m's arenas; the count of values (all arenas,
 * inside tensors) that are not params = (k % pmod) * 0.01 - p0, m = k * mstep,
 * v = k * vstep at arena position k, as the fixture's writer filled them. */
static size_t fixture_wrong(const char *path, Model *m, CheckpointState *got, int pmod, float p0, float mstep,
                            float vstep) {
    size_t na = model_arena_size(m), bad = 0;
    float *p = calloc(na, 4), *mo = calloc(na, 4), *v = calloc(na, 4);
    CHECK(checkpoint_read(path, got, m, p, mo, v) == 0, "%s tensors: %s", path, e2e_error());
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *t = model_tensor(m, i);
        for (size_t j = 0; j < t->numel; j++) {
            size_t k = t->offset + j;
            bad += p[k] != (float)(k % pmod) * 0.01f - p0 || mo[k] != (float)k * mstep || v[k] != (float)k * vstep;
        }
    }
    free(p), free(mo), free(v);
    return bad;
}

static void test_version1(NetOps *ops) {
    const char *v1 = E2E_FIXTURE_DIR "/checkpoint_v1.h5";
    CheckpointState got;
    CHECK(checkpoint_peek(v1, &got) == 0, "version 1 refused: %s", e2e_error());
    CHECK(got.version == 1, "version %d", got.version);
    CHECK(got.accum == 1 && isnan(got.train.early.best) && got.train.early.bad_epochs == 0,
          "version 1: no accumulation, a fresh early-stop count");
    CHECK(got.train.epoch == 4 && got.train.step_in_epoch == 7 && got.train.global_step == 107 && got.world_size == 2 &&
          got.batch == 16 && got.train.seed == 3 && got.train.best_epoch == 3 && got.adam_step == 107,
          "version 1 position differs");
    CHECK(got.train.best_metric == 44.75 && got.train.epoch_loss_sum == 12.5 && got.train.elapsed_s == 9.5, "doubles differ");
    CHECK(got.train.lr.plateau.lr == 5e-4 && got.train.lr.plateau.best == 46.5 && got.train.lr.plateau.cfg.patience == 0 &&
          got.train.lr.plateau.cfg.threshold == 0.5 && got.train.lr.plateau.last_epoch == 4,
          "version 1 plateau: lr %g best %g", got.train.lr.plateau.lr, got.train.lr.plateau.best);
    CHECK(got.train.lr.base == 0 && got.train.lr.scaled == 0 && got.train.lr.warmup_steps == 0,
          "version 1 stores no base, scaled or warm-up rate");
    CHECK(got.adam.beta1 == 0.9f && got.adam.beta2 == 0.999f && got.adam.eps == 1e-8f, "adam differs");
    CHECK(got.n_scales == 1 && got.scales[0] == 0.75f, "scales differ");
    CHECK(got.mass_scale == 0.0f, "version 1 records no target scale (0 read)");
    JetInputs def;
    jet_inputs_default(&def, 1);
    CHECK(jet_inputs_equal(&got.inputs, &def) && !strcmp(got.inputs.scalar[0], "iphi") && got.inputs.scale[1] == 170.0,
          "version 1: the default inputs (iphi/360, ieta/170, energy-like)");

    Model *m = fixture_model(ops, 1);
    if (!m) return;
    size_t bad = fixture_wrong(v1, m, &got, 97, 0.3f, 1e-4f, 1e-6f); /* the values make_v1 wrote */
    CHECK(bad == 0, "%zu version 1 values differ", bad);

    char future[600];
    snprintf(future, sizeof future, "%s/future.h5", dir);
    copy_file(v1, future, -1);
    hid_t f = H5Fopen(future, H5F_ACC_RDWR, H5P_DEFAULT);
    int version = CHECKPOINT_VERSION + 1;
    hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &version);
    H5Aclose(a), H5Fclose(f);
    char needle[64];
    snprintf(needle, sizeof needle, "checkpoint version %d", CHECKPOINT_VERSION + 1);
    EXPECT_REFUSED(checkpoint_peek(future, &got), needle);
    /* a model shape that does not fit the stored tensors, or that no model has (issue 28,
       fuzz_checkpoint: 1.9e9 channels overflowed int, gigabytes of feature maps) */
    struct { const char *attr; int value; const char *needle; } shapes[] = {
        {"fmaps1", 4000, "parameters but it stores"}, {"in_channels", 1895825408, "at most 4096"},
        {"blocks", 2, "parameters but it stores"}};
    for (int i = 0; i < 3; i++) {
        copy_file(v1, future, -1);
        f = H5Fopen(future, H5F_ACC_RDWR, H5P_DEFAULT);
        a = H5Aopen(f, shapes[i].attr, H5P_DEFAULT);
        long long v = shapes[i].value;
        H5Awrite(a, H5T_NATIVE_LLONG, &v);
        H5Aclose(a), H5Fclose(f);
        EXPECT_REFUSED(checkpoint_peek(future, &got), shapes[i].needle);
    }
    model_free(m);
}

static void test_version2(NetOps *ops) {
    const char *v2 = E2E_FIXTURE_DIR "/checkpoint_v2.h5";
    CheckpointState got;
    CHECK(checkpoint_peek(v2, &got) == 0, "version 2 refused: %s", e2e_error());
    CHECK(got.version == 2, "version %d", got.version);
    CHECK(got.accum == 1 && isnan(got.train.early.best) && got.train.early.bad_epochs == 0,
          "version 2: no accumulation, a fresh early-stop count");
    CHECK(got.train.epoch == 2 && got.train.step_in_epoch == 5 && got.train.global_step == 61 && got.world_size == 2 &&
          got.batch == 8 && got.train.seed == 7 && got.train.best_epoch == 2 && got.adam_step == 61,
          "version 2 position differs");
    CHECK(got.train.lr.base == 1e-3 && got.train.lr.scaled == 2e-3 && got.train.lr.warmup_steps == 20 && got.train.lr.plateau.lr == 2e-3,
          "version 2 schedule: base %g scaled %g warm-up %ld plateau %g", got.train.lr.base, got.train.lr.scaled,
          got.train.lr.warmup_steps, got.train.lr.plateau.lr);
    CHECK(got.n_scales == 2 && got.scales[0] == 0.25f && got.scales[1] == 1.5f, "version 2 scales differ");
    JetInputs def;
    jet_inputs_default(&def, 2);
    CHECK(jet_inputs_equal(&got.inputs, &def) && got.inputs.n_scalars == 2 && !strcmp(got.inputs.scalar[1], "ieta") &&
              got.inputs.scale[0] == 360.0 && got.inputs.kind[0] == CHANNEL_ENERGY && got.inputs.kind[1] == CHANNEL_ENERGY,
          "version 2: the default inputs (iphi/360, ieta/170, energy-like)");
    Model *m = fixture_model(ops, 2);
    if (!m) return;
    size_t bad = fixture_wrong(v2, m, &got, 89, 0.4f, 2e-4f, 3e-6f); /* the values its writer was given */
    CHECK(bad == 0, "%zu version 2 values differ", bad);
    model_free(m);
}

static void test_inputs(NetOps *ops) {
    ModelConfig cfg = model_default_config(1);
    cfg.in_channels = 3;
    cfg.height = cfg.width = 8;
    cfg.n_scalars = 0;
    cfg.blocks = 0;
    Model *m = NULL;
    if (model_create(&m, &cfg, ops)) {
        CHECK(0, "a model without scalars: %s", e2e_error());
        return;
    }
    size_t na = model_arena_size(m);
    float *p = calloc(na, 4), *mo = calloc(na, 4), *v = calloc(na, 4);
    CheckpointState st = state_of(m, 7), got;
    st.n_scales = 3;
    jet_inputs_default(&st.inputs, 3);
    st.inputs.declared = 1;
    st.inputs.n_scalars = 0;
    st.inputs.kind[1] = CHANNEL_SIGNED;
    char path[600];
    snprintf(path, sizeof path, "%s/no_scalars.h5", dir);
    CHECK(checkpoint_write(path, &st, m, p, mo, v) == 0, "write without scalars: %s", e2e_error());
    CHECK(checkpoint_read(path, &got, m, p, mo, v) == 0 && got.inputs.n_scalars == 0 && got.inputs.channels == 3 &&
              got.inputs.kind[1] == CHANNEL_SIGNED && jet_inputs_equal(&got.inputs, &st.inputs),
          "no scalars and a signed channel read back: %s", e2e_error());
    /* inputs that are not the model's: 1 scalar named, the model takes none */
    st.inputs.n_scalars = 1;
    snprintf(path, sizeof path, "%s/one_scalar.h5", dir);
    CHECK(checkpoint_write(path, &st, m, p, mo, v) == 0, "write: %s", e2e_error());
    EXPECT_REFUSED(checkpoint_peek(path, &got), "names 1 scalar inputs but its model takes 0");
    /* a version-3 file without its inputs */
    st.inputs.n_scalars = 0;
    snprintf(path, sizeof path, "%s/no_inputs.h5", dir);
    CHECK(checkpoint_write(path, &st, m, p, mo, v) == 0, "write: %s", e2e_error());
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "data", H5P_DEFAULT);
    H5Adelete(g, ATTR_CHANNEL_KINDS);
    H5Gclose(g), H5Fclose(f);
    EXPECT_REFUSED(checkpoint_peek(path, &got), "lacks the model's inputs");
    model_free(m);
    free(p), free(mo), free(v);
}

/* the attribute `name` of path set to the string value (NULL: deleted); version too when > 0 */
static void set_attr(const char *path, const char *name, const char *value, int version) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (H5Aexists(f, name) > 0) H5Adelete(f, name);
    if (value) h5_attr_write_str(f, name, value, 0);
    if (version > 0) {
        hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &version);
        H5Aclose(a);
    }
    H5Fclose(f);
}

static void test_task(NetOps *ops) {
    Model *m = small_model(ops, 8);
    size_t na = model_arena_size(m);
    float *p = calloc(na, 4), *mo = calloc(na, 4), *v = calloc(na, 4);
    CheckpointState st = state_of(m, 9), got;
    char path[600];
    snprintf(path, sizeof path, "%s/classifier.h5", dir);
    CHECK(task_from_names(&st.task, "classification", "is_top", "loss") == 0, "task: %s", e2e_error());
    CHECK(checkpoint_write(path, &st, m, p, mo, v) == 0, "write a classifier: %s", e2e_error());
    CHECK(checkpoint_read(path, &got, m, p, mo, v) == 0 && got.task.kind == TASK_CLASSIFICATION &&
              !strcmp(got.task.label, "is_top") && got.task.monitor_loss == 1 && task_same(&got.task, &st.task),
          "a classifier's task read back: %s %s", task_name(&got.task), got.task.label);
    st.task = task_regression();
    snprintf(path, sizeof path, "%s/regression.h5", dir);
    CHECK(checkpoint_write(path, &st, m, p, mo, v) == 0 && checkpoint_peek(path, &got) == 0 &&
              got.task.kind == TASK_REGRESSION, "a regression's task read back");
    set_attr(path, "task", NULL, 3); /* what the version-3 writer wrote */
    CHECK(checkpoint_peek(path, &got) == 0 && got.version == 3 && got.task.kind == TASK_REGRESSION,
          "version 3 (no task) reads as a regression: %s", e2e_error());
    CHECK(checkpoint_peek(E2E_FIXTURE_DIR "/checkpoint_v1.h5", &got) == 0 && got.task.kind == TASK_REGRESSION,
          "version 1 reads as a regression");
    CHECK(checkpoint_peek(E2E_FIXTURE_DIR "/checkpoint_v2.h5", &got) == 0 && got.task.kind == TASK_REGRESSION,
          "version 2 reads as a regression");
    set_attr(path, "task", "ranking", 4);
    EXPECT_REFUSED(checkpoint_peek(path, &got), "unknown task 'ranking'");
    set_attr(path, "task", "classification", 0);
    EXPECT_REFUSED(checkpoint_peek(path, &got), "lacks attribute 'task_label'");
    set_attr(path, "task", NULL, 0);
    EXPECT_REFUSED(checkpoint_peek(path, &got), "lacks attribute 'task'");
    model_free(m);
    free(p), free(mo), free(v);
}
