/* libFuzzer harness of the jet-file reader (data/reader/dataset.h) and of e2e-data info
 * (data/tools/inspect.h): a valid file made at start by e2e-synth's writer, dense
 * (fuzz_dense_reader) or sparse (fuzz_sparse_reader, FUZZ_SPARSE=1), is edited by the
 * fuzzer's bytes (h5desc.h: shapes, types, storage, values, the sparse index,
 * attributes), written, and read: dataset_open with options the first byte picks
 * (memory cache, batches as stored, HDF5 reads, prefetch, given scales, batch size),
 * then batches of every split. Refusals are the expected outcome; a crash, a sanitizer
 * report, or a batch that breaks the reader's promises (rows outside the dataset,
 * preprocessed pixels outside [-1, 1], non-finite values) is a finding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "error.h"
#include "fuzz_common.h"
#include "h5desc.h"
#include "inspect.h"
#include "synthfile.h"

#ifndef FUZZ_SPARSE
#define FUZZ_SPARSE 0
#endif

static H5Desc template;
static char path[512];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_setup();
    char tpl[512];
    fuzz_path(tpl, sizeof tpl, "template.h5");
    fuzz_path(path, sizeof path, "input.h5");
    SynthFileOptions o;
    synth_file_defaults(&o);
    o.out = tpl;
    o.samples = 70;
    o.size = 10;
    o.channels = 3;
    o.sparse = FUZZ_SPARSE;
    o.chunk = 8;
    fuzz_require(synth_write_file(&o, MPI_COMM_SELF) == 0, "the template is written");
    fuzz_require(h5desc_read(&template, tpl) == 0 && template.n > 0, "the template is read");
    devnull = fopen("/dev/null", "w");
    return 0;
}

/* a batch keeps the reader's promises */
static void check_batch(const Dataset *d, const Batch *b, int batch) {
    const DatasetInfo *info = dataset_info(d);
    fuzz_require(b->n > 0 && b->n <= batch, "a batch holds 1 to batch jets");
    long long pixels = (long long)info->channels * info->height * info->width;
    for (int i = 0; i < b->n; i++) {
        fuzz_require(b->index && b->index[i] >= 0 && b->index[i] < info->n_total, "a batch's rows are the dataset's");
        fuzz_require(isfinite(b->target[i]) && isfinite(b->mass[i]), "finite targets");
        for (int s = 0; s < info->n_scalars; s++) fuzz_require(isfinite(b->scalars[i * info->n_scalars + s]), "finite scalars");
        for (long long p = 0; b->x && info->preprocessed && p < pixels; p++) {
            float v = b->x[i * pixels + p];
            fuzz_require(v >= -1.0f && v <= 1.0f, "preprocessed pixels in [-1, 1]");
        }
    }
}

static void read_some(Dataset *d, int batch) {
    for (int s = 0; s < DATA_SPLITS; s++) {
        if (dataset_begin_epoch(d, (Split)s, 0, 0)) continue;
        Batch b;
        for (int k = 0; k < 3 && dataset_next(d, &b) > 0; k++) check_batch(d, &b, batch);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzIn in = {data, size};
    unsigned opts = fi_u8(&in);
    H5Desc d;
    h5desc_copy(&d, &template);
    h5desc_edit(&d, &in, 16);
    int written = h5desc_write(&d, path) == 0;
    h5desc_free(&d);
    if (!written) return 0;
    static const int batches[] = {1, 4, 7, 64};
    static const float scales[8] = {1.0f, 0.5f, 2.0f, 3.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.comm = MPI_COMM_SELF;
    o.batch = batches[opts & 3];
    o.prefetch = (opts >> 2) & 1 ? 2 : 0;
    o.io = (opts >> 3) & 1 ? DATA_IO_HDF5 : DATA_IO_AUTO;
    o.cache = (opts >> 4) & 1 ? DATA_CACHE_MEMORY : DATA_CACHE_NONE;
    o.cache_limit = 64ll << 20;
    if ((opts >> 5) & 1) o.scales = scales, o.n_scales = 3;
    if ((opts >> 6) & 1) o.preprocess = 0, o.keep_half = o.keep_sparse = 1;
    if ((opts >> 7) & 1) o.split_block = 7;
    Dataset *ds = NULL;
    if (dataset_open(&ds, &o) == 0) {
        read_some(ds, o.batch);
        dataset_close(ds);
    }
    e2e_clear_error();
    data_inspect(path, devnull, 5, NULL);
    e2e_clear_error();
    return 0;
}
