/* Benchmark of the reader (not a test): per rank, in one run,
 *   - a raw sequential read of the bytes of this rank's training epoch (pread of whole
 *     runs of rows in file order, from the page cache): the ceiling;
 *   - training epochs through dataset_next: without preprocessing, with it, with the
 *     prefetch thread, and through HDF5 independent reads (MB/s of stored bytes,
 *     samples/s, and the ratio to the raw read);
 *   - a training step with simulated compute, with and without the prefetch thread
 *     (the thread should hide the reading);
 *   - dataset_open's statistics pass with raw, HDF5 independent and HDF5 collective
 *     reads.
 * Usage: mpirun -np P bench_reader FILE [--batch B] [--epochs E] [--compute-ms T]
 * Prints a table on rank 0 and one JSON line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "dataset.h"
#include "jetfile.h"

static int rank, nranks;
static const char *path;
static int batch = 32, epochs = 5;
static double compute_ms = 0.0;

/* preprocess: 1 yes, 0 no, -1 no and float16 kept as stored (keep_half, a GPU feed) */
static Dataset *open_ds(int io, int prefetch, int preprocess, const float *scales, double *seconds) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.batch = batch;
    o.io = io;
    o.prefetch = prefetch;
    o.preprocess = preprocess > 0;
    o.keep_half = preprocess < 0;
    o.scales = scales;
    Dataset *d;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (dataset_open(&d, &o)) {
        if (rank == 0) fprintf(stderr, "bench_reader: %s\n", e2e_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (seconds) *seconds = MPI_Wtime() - t0;
    return d;
}

static void spin(double ms) { /* stands in for a training step's compute */
    double t0 = MPI_Wtime();
    while ((MPI_Wtime() - t0) * 1e3 < ms) {}
}

/* seconds for `epochs` training epochs after one warm-up epoch */
static double time_epochs(Dataset *d, double step_ms) {
    volatile float sink = 0;
    double t = 0;
    for (int e = 0; e <= epochs; e++) {
        double t0 = MPI_Wtime();
        Batch b;
        int r;
        dataset_begin_epoch(d, SPLIT_TRAIN, e, 0);
        while ((r = dataset_next(d, &b)) == 1) {
            sink += (b.x ? b.x[0] : (float)b.x_half[0]) + b.target[0];
            if (step_ms > 0) spin(step_ms);
        }
        if (r < 0) {
            fprintf(stderr, "bench_reader: rank %d: %s\n", rank, e2e_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        if (e > 0) t += MPI_Wtime() - t0;
    }
    (void)sink;
    return t;
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* the same bytes as a training epoch of this rank into a buffer of dest_bytes (reused
 * from its start when full): in file order, one pread per run of adjacent rows (at
 * most 8 MiB each), or (shuffled) one pread per row in the epoch's order */
static double time_raw(const long long *rows, long long n, long long dest_bytes, int shuffled, double *bytes) {
    JetFile f;
    if (jetfile_open(&f, path, H5P_DEFAULT) || !f.raw) {
        fprintf(stderr, "bench_reader: %s: %s\n", path, f.raw ? e2e_error() : "not readable raw");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    long long *addr = malloc(n * sizeof *addr);
    for (long long i = 0; i < n; i++) addr[i] = jetfile_row_addr(&f, rows[i]);
    if (!shuffled) qsort(addr, n, sizeof *addr, cmp_ll);
    const long long cap = dest_bytes > f.row_bytes ? dest_bytes : f.row_bytes;
    char *buf = malloc(cap);
    memset(buf, 0, cap);
    double t = 0;
    for (int e = 0; e <= epochs; e++) {
        double t0 = MPI_Wtime();
        long long at = 0;
        for (long long i = 0; i < n;) {
            long long j = i + 1;
            while (!shuffled && j < n && addr[j] == addr[j - 1] + f.row_bytes && (j - i + 1) * f.row_bytes <= (8LL << 20))
                j++;
            long long len = (j - i) * f.row_bytes, off = addr[i];
            if (len > cap - at) { /* what fits, then from the start */
                len = (cap - at) / f.row_bytes * f.row_bytes;
                if (len == 0) {
                    at = 0;
                    continue;
                }
                j = i + len / f.row_bytes;
            }
            for (long long done = 0; done < len;) {
                ssize_t got = pread(f.fd, buf + at + done, (size_t)(len - done), (off_t)(off + done));
                if (got <= 0) MPI_Abort(MPI_COMM_WORLD, 1);
                done += got;
            }
            at += len;
            i = j;
        }
        if (e > 0) t += MPI_Wtime() - t0;
    }
    *bytes = (double)n * f.row_bytes;
    free(buf);
    free(addr);
    jetfile_close(&f);
    return t;
}

enum { RAW, CACHED, SHUF, NOPRE, KEEP, PRE, PREFETCH, HDF5, STEP0, STEPK, NCASES };
static const char *const CASE[NCASES] = {
    "raw pread into a batch-sized buffer", "raw pread into an 8 MB buffer", "raw pread a row, reader's order",
    "reader, no preprocessing",
    "reader, float16 as stored (keep_half)",
    "reader, preprocessing",
    "reader, preprocessing + prefetch 2", "reader, HDF5 independent reads", "step with compute, prefetch 0",
    "step with compute, prefetch 2"};

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    static const struct option opts[] = {{"batch", 1, 0, 'b'}, {"epochs", 1, 0, 'e'}, {"compute-ms", 1, 0, 'c'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'b') batch = atoi(optarg);
        else if (c == 'e') epochs = atoi(optarg);
        else if (c == 'c') compute_ms = atof(optarg);
        else MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (optind >= argc) {
        if (rank == 0) fprintf(stderr, "usage: bench_reader FILE [--batch B] [--epochs E] [--compute-ms T]\n");
        MPI_Finalize();
        return 2;
    }
    path = argv[optind];

    /* dataset_open: the statistics pass with each kind of read (after a warm-up open) */
    double t_open[3], t_given;
    Dataset *d = open_ds(DATA_IO_AUTO, 0, 1, NULL, NULL);
    dataset_close(d);
    d = open_ds(DATA_IO_AUTO, 0, 1, NULL, &t_open[0]);
    const DatasetInfo *in = dataset_info(d);
    const int C = in->channels;
    float scales[64];
    memcpy(scales, dataset_scales(d), C * sizeof *scales);
    long long ntrain_local = dataset_split_local(d, SPLIT_TRAIN);
    dataset_close(d);
    d = open_ds(DATA_IO_AUTO, 0, 1, scales, &t_given); /* no statistics pass */
    dataset_close(d);
    d = open_ds(DATA_IO_HDF5, 0, 1, NULL, &t_open[1]);
    dataset_close(d);
    d = open_ds(DATA_IO_HDF5_COLLECTIVE, 0, 1, NULL, &t_open[2]);
    dataset_close(d);

    /* the training epoch's rows on this rank, for the raw read */
    d = open_ds(DATA_IO_AUTO, 0, 0, scales, NULL);
    in = dataset_info(d);
    const long steps = dataset_steps_per_epoch(d, SPLIT_TRAIN);
    const long long n = steps * (long long)batch;
    long long *rows = malloc(n * sizeof *rows), got = 0;
    Batch b;
    dataset_begin_epoch(d, SPLIT_TRAIN, 1, 0);
    while (dataset_next(d, &b) == 1) memcpy(rows + got, b.index, b.n * sizeof *rows), got += b.n;
    const int dtype = in->dtype_bytes, H = in->height, W = in->width;
    const long long ntotal = in->n_total;
    double sec[NCASES], bytes;
    const long long row_bytes = (long long)C * in->height * in->width * in->dtype_bytes;
    sec[RAW] = time_raw(rows, n, batch * row_bytes, 0, &bytes);
    sec[CACHED] = time_raw(rows, n, 8LL << 20, 0, &bytes);
    sec[SHUF] = time_raw(rows, n, batch * row_bytes, 1, &bytes);
    sec[NOPRE] = time_epochs(d, 0);
    dataset_close(d);
    d = open_ds(DATA_IO_AUTO, 0, -1, scales, NULL);
    sec[KEEP] = time_epochs(d, 0);
    dataset_close(d);
    d = open_ds(DATA_IO_AUTO, 0, 1, scales, NULL);
    sec[PRE] = time_epochs(d, 0);
    dataset_close(d);
    d = open_ds(DATA_IO_AUTO, 2, 1, scales, NULL);
    sec[PREFETCH] = time_epochs(d, 0);
    dataset_close(d);
    d = open_ds(DATA_IO_HDF5, 0, 1, scales, NULL);
    sec[HDF5] = time_epochs(d, 0);
    dataset_close(d);
    /* a step of compute as long as reading one batch takes */
    double step_ms = compute_ms > 0 ? compute_ms : 1e3 * sec[PRE] / (epochs * (double)steps);
    d = open_ds(DATA_IO_AUTO, 0, 1, scales, NULL);
    sec[STEP0] = time_epochs(d, step_ms);
    dataset_close(d);
    d = open_ds(DATA_IO_AUTO, 2, 1, scales, NULL);
    sec[STEPK] = time_epochs(d, step_ms);
    dataset_close(d);

    double all[NCASES * 64];
    MPI_Gather(sec, NCASES, MPI_DOUBLE, all, NCASES, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    double open_max[3];
    MPI_Reduce(t_open, open_max, 3, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    double given_max;
    MPI_Reduce(&t_given, &given_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        const double mb = bytes / 1e6 * epochs, samples = (double)n * epochs;
        printf("reader benchmark: %s, %lld jets, %d x %d x %d float%d, %d rank%s, batch %d, %ld steps/epoch, "
               "%d epochs timed after one warm-up, page cache\n",
               path, ntotal, C, H, W, 8 * dtype, nranks, nranks > 1 ? "s" : "", batch, steps, epochs);
        printf("the same bytes as each rank's training epoch; raw reads in file order unless said; MB/s of\n"
               "stored bytes\n");
        printf("%-38s %5s %10s %11s %11s %11s\n", "per rank", "rank", "MB/s", "samples/s", "vs batch", "vs 8 MB");
        for (int k = 0; k <= HDF5; k++)
            for (int r = 0; r < nranks && (k != KEEP || dtype == 2); r++) {
                double s = all[r * NCASES + k], raw = all[r * NCASES + RAW], cached = all[r * NCASES + CACHED];
                printf("%-38s %5d %10.0f %11.0f %10.0f%% %10.0f%%\n", CASE[k], r, mb / s, samples / s, 100.0 * raw / s,
                       100.0 * cached / s);
            }
        printf("\ntraining step with %.2f ms of simulated compute (one batch's read + preprocessing time):\n", step_ms);
        for (int k = STEP0; k <= STEPK; k++)
            for (int r = 0; r < nranks; r++) {
                double s = all[r * NCASES + k];
                printf("%-38s %5d %8.2f ms/step %9.0f samples/s\n", CASE[k], r, 1e3 * s / (epochs * (double)steps),
                       samples / s);
            }
        double stats_mb = (double)ntrain_local * C * H * W * dtype / 1e6;
        printf("\ndataset_open with the statistics pass over the training split (%.0f MB a rank), slowest rank:\n",
               stats_mb);
        const char *io[3] = {"raw pread", "HDF5 independent", "HDF5 collective"};
        for (int k = 0; k < 3; k++)
            printf("  %-18s %7.3f s  (pass %.3f s, %6.0f MB/s a rank)\n", io[k], open_max[k], open_max[k] - given_max,
                   stats_mb / (open_max[k] - given_max));
        printf("  %-18s %7.3f s\n", "scales given", given_max);
        double worst[2] = {1e9, 1e9};
        for (int r = 0; r < nranks; r++)
            for (int k = 0; k < 2; k++) {
                double ratio = all[r * NCASES + (k ? CACHED : RAW)] / all[r * NCASES + PRE];
                worst[k] = ratio < worst[k] ? ratio : worst[k];
            }
        printf("\nworst rank, reader with preprocessing vs raw read into a batch-sized buffer: %.0f%%, "
               "into an 8 MB buffer: %.0f%% (target >= 50%%)\n", 100 * worst[0], 100 * worst[1]);
        if (dtype == 2) {
            double wk = 1e9;
            for (int r = 0; r < nranks; r++)
                if (all[r * NCASES + RAW] / all[r * NCASES + KEEP] < wk) wk = all[r * NCASES + RAW] / all[r * NCASES + KEEP];
            printf("worst rank, float16 batches as stored (keep_half, the GPU feed) vs raw read into a "
                   "batch-sized buffer: %.0f%%\n", 100 * wk);
        }
        printf("{\"ranks\": %d, \"raw_batch_mbs\": %.1f, \"raw_8mb_mbs\": %.1f, \"reader_mbs\": %.1f, "
               "\"ratio_batch\": %.3f, \"ratio_8mb\": %.3f}\n",
               nranks, mb / all[RAW], mb / all[CACHED], mb / all[PRE], worst[0], worst[1]);
    }
    free(rows);
    MPI_Finalize();
    return 0;
}
