/* How the trainer feeds the model (dist/session.h), under real mpirun -np 2, on a
 * float16 file: for the CPU the reader preprocesses; for a GPU it hands over the stored
 * binary16 values and the batch asks the device (Batch.prep) to preprocess them with
 * the reader's numbers. Done by hand here, that preprocessing equals the CPU feed bit for
 * bit; the CPU backend refuses such a batch with a clear message. Where a GPU is
 * present, the same step on the GPU through its own preprocessing gives the CPU's loss
 * (the comparison is reported as skipped otherwise; the CPU checks run everywhere).
 * session_open_data puts the reader's batch buffers in a GPU backend's pinned host
 * memory: checked with a backend whose alloc_host records its blocks, and on a GPU by
 * a training pass from such batches against the CPU's. The file's sparse copy: for the
 * CPU the reader densifies and preprocesses (the same batch, bit for bit); for a GPU it
 * hands over the entries, which densified and preprocessed by hand equal the CPU feed,
 * the CPU backend refuses, and a GPU trains on with the CPU's loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check_mpi.h"
#include "convert.h"
#include "comm.h"
#include "recorded_alloc.h"
#include "error.h"
#include "half.h"
#include "prep_pixel.h"
#include "session.h"
#include "synth_file.h"

static int rank;
static char dir[256];

static void feed_options(DatasetOptions *o, const char *path, const char *device, const float *scales) {
    dataset_default_options(o);
    o->path = path;
    o->batch = 4;
    o->seed = 11;
    o->scales = scales;
    session_feed_for_device(o, device);
}

static Dataset *open_for(const char *path, const char *device, const float *scales) {
    DatasetOptions o;
    feed_options(&o, path, device, scales);
    Dataset *d = NULL;
    if (dataset_open(&d, &o)) {
        fprintf(stderr, "rank %d: open for %s: %s\n", rank, device, e2e_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return d;
}

/* alloc_host/release_host that record their blocks, around a backend's ops */
static Recorded blocks = {.fail_after = -1};
static void *record_alloc_host(void *ctx, size_t bytes) { return recorded_alloc(&blocks, bytes); }
static void record_release_host(void *ctx, void *p) {
    CHECK(recorded_free(&blocks, p) == 0, "release_host of a pointer alloc_host never gave");
}

/* A backend with pinned host memory gets the reader's batch buffers in it; one whose
 * memory is host memory (the CPU) leaves them to malloc. */
static void test_pinned_routing(Comm *comm, const char *path, const float *scales) {
    BackendOptions bo = {.device = "cpu", .threads = 1};
    Session s = {.comm = comm};
    CHECK(session_open_backend(&s, &bo) == 0, "cpu backend: %s", e2e_error());
    NetOps recorded = *s.ops;
    recorded.caps = (recorded.caps & ~OPS_HOST_MEMORY) | OPS_PINNED_HOST;
    recorded.alloc_host = record_alloc_host;
    recorded.release_host = record_release_host;
    NetOps *cpu = s.ops;
    s.ops = &recorded;
    DatasetOptions o;
    feed_options(&o, path, "cuda", scales);
    CHECK(session_open_data(&s, &o) == 0, "open through the session: %s", e2e_error());
    const DatasetInfo *in = dataset_info(s.data);
    const size_t rowf = (size_t)in->channels * in->height * in->width;
    CHECK(blocks.live == 4 * (in->prefetch + 1), "%d batch buffers from alloc_host, expected 4 for each of %d slots",
          blocks.live, in->prefetch + 1);
    Batch b;
    int outside = 0, nb = 0;
    CHECK(dataset_begin_epoch(s.data, SPLIT_TRAIN, 0, 0) == 0, "begin epoch: %s", e2e_error());
    while (dataset_next(s.data, &b) == 1 && nb < 20) {
        nb++;
        outside += !recorded_holds(&blocks, b.x_half, b.n * rowf * 2) + !recorded_holds(&blocks, b.scalars, b.n * 8) +
                   !recorded_holds(&blocks, b.target, b.n * 4) + !recorded_holds(&blocks, b.weight, b.n * 4);
    }
    CHECK(nb == 20 && outside == 0, "%d of %d batches' buffers outside alloc_host's blocks", outside, nb);
    dataset_close(s.data);
    CHECK(blocks.live == 0, "%d pinned blocks left after dataset_close", blocks.live);
    s.ops = cpu;
    s.data = NULL;
    feed_options(&o, path, "cpu", scales);
    int made = blocks.made;
    CHECK(session_open_data(&s, &o) == 0 && blocks.made == made, "the cpu backend: batch buffers stay malloc'd");
    session_close(&s);
    if (rank == 0) printf("pinned routing: %d batch buffers from alloc_host, all given back\n", made);
}

/* On a GPU (GPU 0 on every rank, as loss_on; the trainer takes the local rank's): the
 * reader's batches in the backend's pinned memory, one pass against the CPU's loss lc. */
static void test_pinned_gpu(Comm *comm, const char *path, const float *scales, const ModelConfig *mc, float lc) {
    BackendOptions bo = {.device = "cuda"};
    Session s = {.comm = comm, .ops = net_backend_create(&bo)};
    DatasetOptions o;
    feed_options(&o, path, "cuda", scales);
    CHECK(s.ops && session_open_data(&s, &o) == 0 && model_create(&s.model, mc, s.ops) == 0 &&
          model_init(s.model, 3) == 0, "gpu session: %s", e2e_error());
    Batch b;
    float lg = NAN;
    CHECK(s.data && dataset_begin_epoch(s.data, SPLIT_TRAIN, 2, 0) == 0 && dataset_next(s.data, &b) == 1,
          "a batch: %s", e2e_error());
    CHECK(model_train_pass(s.model, &b) == 0 && model_loss_value(s.model, &lg) == 0, "gpu pass: %s", e2e_error());
    CHECK(fabsf(lg - lc) <= 1e-4f * fabsf(lc), "gpu loss from pinned batches %.7g, cpu %.7g", lg, lc);
    if (rank == 0) printf("gpu feed from pinned batches: loss %.7g, cpu feed %.7g\n", lg, lc);
    session_close(&s);
}

static int loss_on(const char *device, const ModelConfig *mc, const Batch *hb, float *loss);

/* a sparse batch densified and preprocessed here, by hand: what the device does */
static long long differ_from_sparse(const Batch *h, int C, long long hw, const float *want) {
    float *x = calloc((size_t)(h->n * C * hw), sizeof *x);
    for (long long p = 0; p < (long long)h->n * C; p++)
        for (uint32_t e = h->sparse.plane_start[p]; e < h->sparse.plane_start[p + 1]; e++) {
            int c = (int)(p % C);
            x[p * hw + ((const uint16_t *)h->sparse.pos)[e]] =
                prep_pixel(half_to_float(((const uint16_t *)h->sparse.value)[e]), h->prep->scale[c],
                           h->prep->kind ? h->prep->kind[c] : CHANNEL_ENERGY, h->prep->threshold);
        }
    long long differ = 0;
    for (long long i = 0; i < h->n * C * hw; i++) differ += memcmp(&x[i], &want[i], sizeof *x) != 0;
    free(x);
    return differ;
}

/* The sparse copy of the float16 file through both feeds, against the dense file's CPU
 * batch hc (the same rows: the split does not depend on the layout) and its loss lc. */
static void test_sparse_feed(const char *path, const float *scales, const Batch *hc, const ModelConfig *mc,
                             float lc, int gpu) {
    char sp[512];
    snprintf(sp, sizeof sp, "%s/half_sparse.h5", dir);
    ConvertOptions co;
    convert_defaults(&co);
    co.in = path, co.out = sp, co.sparse = 1;
    CHECK(data_convert(&co, MPI_COMM_WORLD) == 0, "sparse copy: %s", e2e_error());
    Dataset *dc = open_for(sp, "cpu", scales), *dg = open_for(sp, "cuda", scales);
    const DatasetInfo *in = dataset_info(dg);
    const long long rowf = (long long)in->channels * in->height * in->width, hw = (long long)in->height * in->width;
    CHECK(dataset_info(dc)->preprocessed && !dataset_info(dc)->x_sparse, "cpu feed of a sparse file: dense x");
    CHECK(!in->preprocessed && in->x_sparse && !in->x_half, "cuda feed of a sparse file: its entries");
    Batch bc, bg;
    CHECK(dataset_begin_epoch(dc, SPLIT_TRAIN, 2, 0) == 0 && dataset_begin_epoch(dg, SPLIT_TRAIN, 2, 0) == 0 &&
          dataset_next(dc, &bc) == 1 && dataset_next(dg, &bg) == 1, "sparse batches: %s", e2e_error());
    const Batch sc = bc, sg = bg;
    CHECK(sc.x && !memcmp(sc.x, hc->x, (size_t)(hc->n * rowf) * sizeof(float)),
          "cpu feed: the sparse file's batch differs from the dense file's");
    CHECK(!sg.x && !sg.x_half && sg.sparse.plane_start && sg.sparse.value_bytes == 2 && sg.sparse.pos_bytes == 2 &&
          sg.prep && sg.prep->scale, "gpu batch: the entries (binary16 values) and the preprocessing for the device");
    CHECK(sg.sparse.plane_start && differ_from_sparse(&sg, in->channels, hw, hc->x) == 0,
          "the device's densification and preprocessing, done by hand, differ from the cpu feed");
    float l = NAN;
    CHECK(loss_on("cpu", mc, &sg, &l) == -1 && strstr(e2e_error(), "sparse images and prep need a GPU backend"),
          "the cpu backend refuses sparse images: '%s'", e2e_error());
    if (gpu) {
        CHECK(loss_on("cuda", mc, &sg, &l) == 0, "gpu pass on sparse input: %s", e2e_error());
        CHECK(fabsf(l - lc) <= 1e-4f * fabsf(lc), "gpu loss from sparse input %.7g, cpu %.7g", l, lc);
        if (rank == 0) printf("gpu feed of the sparse file: loss %.7g, cpu feed %.7g\n", l, lc);
    }
    dataset_close(dg);
    dataset_close(dc);
}

/* loss of one training pass of a freshly initialised model on backend `device` */
static int loss_on(const char *device, const ModelConfig *mc, const Batch *hb, float *loss) {
    BackendOptions bo = {.device = device, .threads = 1};
    NetOps *ops = net_backend_create(&bo);
    if (!ops) return -1;
    Model *m = NULL;
    int rc = model_create(&m, mc, ops) || model_init(m, 3) || model_train_pass(m, hb) || model_loss_value(m, loss);
    if (m) model_free(m);
    ops->destroy(ops);
    return rc ? -1 : 0;
}

int main(int argc, char **argv) {
    Comm comm;
    if (comm_init(&comm, &argc, &argv)) return 1;
    rank = comm.rank;
    check_mpi_tmpdir(dir, sizeof dir, "e2e_session_feed");
    char path[512];
    snprintf(path, sizeof path, "%s/half.h5", dir);
    synth_file_or_abort(path, 400, 16, 3, 2, 0, 4);

    /* the CPU feed: preprocessed float32, nothing left for the device */
    Dataset *dc = open_for(path, "cpu", NULL);
    const DatasetInfo *in = dataset_info(dc);
    const long long rowf = (long long)in->channels * in->height * in->width, hw = (long long)in->height * in->width;
    CHECK(in->preprocessed && !in->x_half, "cpu feed: the reader preprocesses");
    float scales[8];
    memcpy(scales, dataset_scales(dc), in->channels * sizeof *scales);
    /* the GPU feed, with the same scales (as a resumed run passes them) */
    Dataset *dg = open_for(path, "cuda", scales);
    CHECK(!dataset_info(dg)->preprocessed && dataset_info(dg)->x_half, "cuda feed: float16 kept as stored");

    Batch bc, bg;
    CHECK(dataset_begin_epoch(dc, SPLIT_TRAIN, 2, 0) == 0 && dataset_begin_epoch(dg, SPLIT_TRAIN, 2, 0) == 0,
          "begin epochs: %s", e2e_error());
    CHECK(dataset_next(dc, &bc) == 1 && dataset_next(dg, &bg) == 1, "a batch from each: %s", e2e_error());
    const Batch hc = bc, hg = bg;
    const InputPrep pg = hg.prep ? *hg.prep : (InputPrep){0};
    CHECK(hc.x && !hc.x_half && !hc.prep && hc.weight && hc.n == 4, "cpu batch: float32 x, no device preprocessing");
    CHECK(!hg.x && hg.x_half && hg.prep && pg.scale && pg.threshold == 1e-5f && hg.n == 4 &&
              pg.kind == dataset_info(dg)->channel_kinds,
          "gpu batch: x_half and the preprocessing for the device (the channel kinds too)");
    CHECK(!memcmp(hc.target, hg.target, 4 * sizeof(float)) && !memcmp(hc.scalars, hg.scalars, 8 * sizeof(float)),
          "both feeds: same rows, targets and scalars");
    long long differ = 0;
    for (long long i = 0; hg.x_half && hg.prep && i < hg.n * rowf; i++) {
        float v = half_to_float(hg.x_half[i]) * pg.scale[(i / hw) % in->channels];
        v = v < pg.threshold ? 0.0f : v;
        v = v > 1.0f ? 1.0f : v;
        differ += memcmp(&v, &hc.x[i], sizeof v) != 0;
    }
    CHECK(differ == 0, "the device's preprocessing, done by hand, differs from the cpu feed in %lld pixels", differ);

    ModelConfig mc = model_default_config(4);
    mc.in_channels = in->channels;
    mc.height = in->height;
    mc.width = in->width;
    mc.n_scalars = in->n_scalars;
    float lc = NAN, lg = NAN;
    CHECK(loss_on("cpu", &mc, &hc, &lc) == 0 && isfinite(lc), "cpu pass: %s", e2e_error());
    CHECK(loss_on("cpu", &mc, &hg, &lg) == -1 && strstr(e2e_error(), "GPU backend"),
          "the cpu backend refuses x_half with a clear message: '%s'", e2e_error());
    if (rank == 0) printf("cpu backend, x_half batch -> %s\n", e2e_error());
    BackendOptions probe = {.device = "cuda"};
    NetOps *gpu = net_has_cuda() ? net_backend_create(&probe) : NULL;
    if (gpu) {
        gpu->destroy(gpu);
        CHECK(loss_on("cuda", &mc, &hg, &lg) == 0, "gpu pass: %s", e2e_error());
        CHECK(fabsf(lg - lc) <= 1e-4f * fabsf(lc), "gpu loss through its own preprocessing %.7g, cpu %.7g", lg, lc);
        if (rank == 0) printf("gpu feed: loss %.7g, cpu feed %.7g\n", lg, lc);
        test_pinned_gpu(&comm, path, scales, &mc, lc);
    } else if (rank == 0) printf("gpu comparison: skipped (%s)\n", net_has_cuda() ? e2e_error() : "no CUDA in this build");
    test_sparse_feed(path, scales, &hc, &mc, lc, gpu != NULL);
    dataset_close(dg);
    dataset_close(dc);
    test_pinned_routing(&comm, path, scales);
    return check_mpi_finish("test_session_feed", dir);
}
