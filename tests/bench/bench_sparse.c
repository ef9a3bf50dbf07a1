/* Benchmark of the sparse layout (not a test), in one run, side by side:
 *   - bytes a jet on disk: each file given (dense float32, dense float16, sparse, ...);
 *   - the reader's training epochs, per rank, samples/s (slowest rank): each file from
 *     the page cache with preprocessing on the CPU (sparse rows densified with it), the
 *     sparse file from the memory cache (--cache memory), and the sparse file as a GPU
 *     feed takes it (entries kept: no densification on the CPU; with its bytes a batch);
 *   - the CPU's densification + preprocessing alone, from entries in memory into a
 *     batch: zeroing only the pixels the last batch wrote (the reader's way) against
 *     clearing the whole batch first.
 * Usage: mpirun -np P bench_sparse DENSE SPARSE [MORE ...] [--batch B] [--epochs E]
 * The first file is the reference of the ratios; SPARSE is the first sparse one. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "dataset.h"
#include "jetfile.h"
#include "sparsefile.h"

static int rank, nranks, batch = 32, epochs = 3;

static Dataset *open_ds(const char *path, int preprocess, int cache, const float *scales) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.batch = batch;
    o.prefetch = 0; /* the reader's own pace, in the caller */
    o.preprocess = preprocess;
    o.keep_sparse = !preprocess;
    o.keep_half = !preprocess;
    o.cache = cache;
    o.scales = scales;
    Dataset *d;
    if (dataset_open(&d, &o)) {
        if (rank == 0) fprintf(stderr, "bench_sparse: %s\n", e2e_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return d;
}

/* samples/s of the slowest rank over `epochs` training epochs after a warm-up one;
 * *batch_bytes: the image bytes of a batch (entries for sparse batches), averaged */
static double rate(Dataset *d, double *batch_bytes) {
    const DatasetInfo *in = dataset_info(d);
    volatile float sink = 0;
    double t = 0, bytes = 0;
    long long samples = 0, batches = 0;
    for (int e = 0; e <= epochs; e++) {
        Batch b;
        int r;
        double t0 = MPI_Wtime();
        dataset_begin_epoch(d, SPLIT_TRAIN, e, 0);
        while ((r = dataset_next(d, &b)) == 1) {
            sink += b.target[0] + (b.x ? b.x[0] : 0.0f);
            if (e == 0) continue;
            samples += b.n;
            batches++;
            bytes += b.sparse.plane_start ? (double)b.sparse.nnz * (b.sparse.pos_bytes + b.sparse.value_bytes) +
                                    4.0 * (b.n * in->channels + 1)
                              : (double)b.n * in->channels * in->height * in->width * (b.x_half ? 2 : 4);
        }
        if (r < 0) {
            fprintf(stderr, "bench_sparse: rank %d: %s\n", rank, e2e_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (e > 0) t += MPI_Wtime() - t0;
    }
    (void)sink;
    double mine = samples / t, slowest;
    MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    *batch_bytes = bytes / (batches ? batches : 1);
    return slowest;
}

/* samples/s of sparse_densify with preprocessing over the first jets of a sparse file
 * (entries in memory), batch after batch into one batch buffer: touched = 1 zeroes only
 * the pixels the last batch wrote, 0 clears the whole batch first */
static double densify_rate(const char *path, const float *factors, const unsigned char *kinds, int touched) {
    JetFile f;
    if (jetfile_open(&f, path, H5P_DEFAULT) || !f.sparse) MPI_Abort(MPI_COMM_WORLD, 1);
    const struct SparseFile *s = f.sparse;
    const long long n = f.n < 1024 ? f.n : 1024, rowf = (long long)f.c * s->g.hw, e = s->offsets[n];
    long long *rows = malloc(n * sizeof *rows);
    for (long long i = 0; i < n; i++) rows[i] = i;
    char *pos = malloc(e * s->g.pos_bytes), *val = malloc(e * s->g.value_bytes);
    float *x = calloc((size_t)(batch * rowf), sizeof *x);
    uint32_t *t = malloc((size_t)e * sizeof *t);
    if (sparsefile_read(&f, rows, n, pos, val, H5P_DEFAULT)) MPI_Abort(MPI_COMM_WORLD, 1);
    long long done = 0, nt = 0;
    double t0 = MPI_Wtime();
    while (MPI_Wtime() - t0 < 1.0) {
        for (long long i0 = 0; i0 + batch <= n; i0 += batch) {
            if (touched)
                for (long long k = 0; k < nt; k++) x[t[k]] = 0.0f;
            else
                memset(x, 0, (size_t)(batch * rowf) * sizeof *x);
            nt = 0;
            for (long long i = i0; i < i0 + batch; i++) {
                long long at = s->offsets[i];
                sparse_densify(&s->g, s->counts + i * f.c, pos + at * s->g.pos_bytes, val + at * s->g.value_bytes,
                               factors, kinds, 1e-5f, x + (i - i0) * rowf, touched ? t + nt : NULL,
                               (uint32_t)((i - i0) * rowf));
                nt += sparsefile_row_entries(s, i);
            }
            done += batch;
        }
    }
    double r = done / (MPI_Wtime() - t0);
    free(rows), free(pos), free(val), free(x), free(t);
    jetfile_close(&f);
    return r;
}

static long long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    static const struct option opts[] = {{"batch", 1, 0, 'b'}, {"epochs", 1, 0, 'e'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'b') batch = atoi(optarg);
        else if (c == 'e') epochs = atoi(optarg);
        else MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int nfiles = argc - optind, sparse = -1;
    if (nfiles < 2) {
        if (rank == 0) fprintf(stderr, "usage: bench_sparse DENSE SPARSE [MORE ...] [--batch B] [--epochs E]\n");
        MPI_Finalize();
        return 2;
    }
    char **files = argv + optind;
    Dataset *d = open_ds(files[0], 1, 0, NULL); /* the scales once, for every file */
    const DatasetInfo *in = dataset_info(d);
    float scales[64], factors[64], zs;
    unsigned char kinds[64];
    memcpy(scales, dataset_scales(d), in->channels * sizeof *scales);
    memcpy(kinds, in->channel_kinds, in->channels * sizeof *kinds);
    memcpy(factors, dataset_prep_factors(d, &zs), in->channels * sizeof *factors);
    const long long N = in->n_total;
    const double dense32 = 4.0 * in->channels * in->height * in->width;
    dataset_close(d);
    if (rank == 0)
        printf("%lld jets of %d x %d x %d, batch %d a rank, %d rank%s, %d epochs after a warm-up, prefetch 0\n\n"
               "%-44s %12s %10s %12s %10s %14s\n", N, in->channels, in->height, in->width, batch, nranks,
               nranks == 1 ? "" : "s", epochs, "file / reader", "bytes/jet", "vs f32", "samples/s", "vs first",
               "batch bytes");
    double ref = 0;
    for (int k = 0; k < nfiles; k++) {
        d = open_ds(files[k], 1, 0, scales);
        int is_sparse = dataset_info(d)->sparse_files > 0;
        if (is_sparse && sparse < 0) sparse = k;
        double bb, r = rate(d, &bb);
        dataset_close(d);
        ref = k == 0 ? r : ref;
        long long bytes = file_size(files[k]);
        if (rank == 0)
            printf("%-44.44s %12.0f %9.1fx %12.0f %9.2fx %14.0f\n", files[k], (double)bytes / N, dense32 * N / bytes, r,
                   r / ref, bb);
    }
    if (sparse >= 0) {
        const char *what[2] = {"  the sparse file from memory (--cache)", "  the sparse file as a GPU feed (entries)"};
        for (int k = 0; k < 2; k++) {
            d = open_ds(files[sparse], k == 0, 1, scales);
            double bb, r = rate(d, &bb);
            if (rank == 0)
                printf("%-44s %12s %10s %12.0f %9.2fx %14.0f   (cache %.1f MB a rank)\n", what[k], "", "", r, r / ref, bb,
                       dataset_info(d)->cache_bytes / 1e6);
            dataset_close(d);
        }
        double a = densify_rate(files[sparse], factors, kinds, 1), b = densify_rate(files[sparse], factors, kinds, 0);
        MPI_Allreduce(MPI_IN_PLACE, &a, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &b, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
        if (rank == 0)
            printf("\nCPU densify + preprocess from memory, samples/s a rank (slowest):\n"
                   "  zeroing the pixels the last batch wrote (the reader's way)  %10.0f\n"
                   "  clearing the whole batch first                               %10.0f\n", a, b);
    }
    MPI_Finalize();
    return 0;
}
