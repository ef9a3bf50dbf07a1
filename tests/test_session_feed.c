/* How the trainer feeds the model (dist/session.h), under real mpirun -np 2, on a
 * float16 file: for the CPU the reader preprocesses; for a GPU it hands over the stored
 * binary16 values and session_host_batch asks the device to preprocess them with the
 * reader's numbers. Done by hand here, that preprocessing equals the CPU feed bit for
 * bit; the CPU backend refuses such a batch with a clear message. Where a GPU is
 * present, the same step on the GPU through its own preprocessing gives the CPU's loss
 * (the comparison is reported as skipped otherwise; the CPU checks run everywhere). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "check_mpi.h"
#include "data_error.h"
#include "error.h"
#include "half.h"
#include "session.h"
#include "synthfile.h"

static int rank;
static char dir[256];

static Dataset *open_for(const char *path, const char *device, const float *scales) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.batch = 4;
    o.seed = 11;
    o.scales = scales;
    session_feed_for_device(&o, device);
    Dataset *d = NULL;
    if (dataset_open(&d, &o)) {
        fprintf(stderr, "rank %d: open for %s: %s\n", rank, device, data_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return d;
}

/* loss of one training pass of a freshly initialised model on backend `device` */
static int loss_on(const char *device, const ModelConfig *mc, const HostBatch *hb, float *loss) {
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
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    check_mpi_tmpdir(dir, sizeof dir, "e2e_session_feed");
    char path[512];
    snprintf(path, sizeof path, "%s/half.h5", dir);
    SynthFileOptions so;
    synth_file_defaults(&so);
    so.out = path;
    so.samples = 400;
    so.size = 16;
    so.channels = 3;
    so.dtype_bytes = 2;
    so.seed = 4;
    if (synth_write_file(&so, MPI_COMM_WORLD)) {
        fprintf(stderr, "cannot write %s: %s\n", path, data_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

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

    DataBatch bc, bg;
    CHECK(dataset_begin_epoch(dc, SPLIT_TRAIN, 2, 0) == 0 && dataset_begin_epoch(dg, SPLIT_TRAIN, 2, 0) == 0,
          "begin epochs: %s", data_error());
    CHECK(dataset_next(dc, &bc) == 1 && dataset_next(dg, &bg) == 1, "a batch from each: %s", data_error());
    InputPrep pc = {0}, pg = {0};
    HostBatch hc = session_host_batch(dc, &bc, &pc), hg = session_host_batch(dg, &bg, &pg);
    CHECK(hc.x && !hc.x_half && !hc.prep && hc.weight && hc.n == 4, "cpu batch: float32 x, no device preprocessing");
    CHECK(!hg.x && hg.x_half && hg.prep == &pg && pg.scale && pg.threshold == 1e-5f && hg.n == 4,
          "gpu batch: x_half and the preprocessing for the device");
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
    CHECK(loss_on("cpu", &mc, &hc, &lc) == 0 && isfinite(lc), "cpu pass: %s", net_error());
    CHECK(loss_on("cpu", &mc, &hg, &lg) == -1 && strstr(net_error(), "GPU backend"),
          "the cpu backend refuses x_half with a clear message: '%s'", net_error());
    if (rank == 0) printf("cpu backend, x_half batch -> %s\n", net_error());
    BackendOptions probe = {.device = "cuda"};
    NetOps *gpu = net_has_cuda() ? net_backend_create(&probe) : NULL;
    if (gpu) {
        gpu->destroy(gpu);
        CHECK(loss_on("cuda", &mc, &hg, &lg) == 0, "gpu pass: %s", net_error());
        CHECK(fabsf(lg - lc) <= 1e-4f * fabsf(lc), "gpu loss through its own preprocessing %.7g, cpu %.7g", lg, lc);
        if (rank == 0) printf("gpu feed: loss %.7g, cpu feed %.7g\n", lg, lc);
    } else if (rank == 0) printf("gpu comparison: skipped (%s)\n", net_has_cuda() ? net_error() : "no CUDA in this build");
    dataset_close(dg);
    dataset_close(dc);
    return check_mpi_finish("test_session_feed", dir);
}
