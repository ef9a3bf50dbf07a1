/* The files of a dataset as one sequence of rows, and reading rows from them (rows.h):
 * the list opened and checked at open; dense rows read raw (pread) or through HDF5, a
 * run of consecutive rows of one file at a time; rows of sparse files read as their
 * entries; a row with NaN or Inf refused with a message naming the file and the row. */
#include "rows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agree.h"
#include "dataset.h"
#include "error.h"
#include "half.h"
#include "preprocess.h"
#include "sparsefile.h"

/* The list resolved, and every file seen by every rank before any collective open (a
 * file missing on one node must not leave the others inside MPI_File_open). Agreed. */
static int resolve_list(const char *path, char ***list, int *n, MPI_Comm comm) {
    int rc = agree_fail_together(comm, jet_list_resolve(path, list, n));
    if (rc) return -1;
    for (int i = 0; !rc && i < *n; i++) {
        struct stat st;
        if (stat((*list)[i], &st) != 0)
            rc = e2e_fail("%s: %s", (*list)[i], errno == ENOENT ? "no such file" : strerror(errno));
    }
    if (agree_fail_together(comm, rc)) {
        jet_list_free(*list, *n);
        return -1;
    }
    return 0;
}

/* file f holds images of the first file's shape and channel names; local result */
static int check_like_first(const JetFile *f, const JetFile *f0) {
    if (f->c != f0->c || f->h != f0->h || f->w != f0->w)
        return e2e_fail("%s: X_jet images are %d x %d x %d but %s has %d x %d x %d", f->path, f->c, f->h, f->w,
                        f0->path, f0->c, f0->h, f0->w);
    for (int k = 0; f->n_names && f0->n_names && k < f->c; k++)
        if (strcmp(f->names[k], f0->names[k]))
            return e2e_fail("%s: channel %d is '%s' but in %s it is '%s'", f->path, k, f->names[k], f0->path,
                            f0->names[k]);
    return 0;
}

int rows_open(RowFiles *rf, const char *path, int io, MPI_Comm comm) {
    rf->path = path;
    rf->io = io;
    rf->dxpl_ind = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(rf->dxpl_ind, H5FD_MPIO_INDEPENDENT);
    char **list = NULL;
    int n = 0;
    if (resolve_list(path, &list, &n, comm)) return -1;
    rf->file = calloc((size_t)n, sizeof *rf->file);
    rf->start = calloc((size_t)n + 1, sizeof *rf->start);
    int rc = agree_fail_together(comm, rf->file && rf->start ? 0 : e2e_fail("out of memory"));
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    for (int i = 0; !rc && i < n; i++) {
        JetFile *f = &rf->file[i];
        rc = agree_fail_together(comm, jetfile_open(f, list[i], fapl));
        if (rc) break;
        if (f->sparse && io != DATA_IO_AUTO) f->raw = 0; /* its entries through HDF5 too */
        rf->n = i + 1;
        rf->start[i + 1] = rf->start[i] + f->n;
        rc = agree_fail_together(comm, check_like_first(f, &rf->file[0]));
    }
    H5Pclose(fapl);
    jet_list_free(list, n);
    if (!rc) rf->row_floats = (long long)rf->file[0].c * rf->file[0].h * rf->file[0].w;
    return rc;
}

void rows_close(RowFiles *rf) {
    for (int i = 0; i < rf->n; i++) jetfile_close(&rf->file[i]);
    free(rf->file);
    free(rf->start);
    if (rf->dxpl_ind > 0) H5Pclose(rf->dxpl_ind);
}

int rows_file_of(const RowFiles *rf, long long row) {
    int lo = 0, hi = rf->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (rf->start[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

int rows_raw(const RowFiles *rf, const JetFile *f) { return f->raw && rf->io == DATA_IO_AUTO; }

long long rows_same_file(const RowFiles *rf, const long long *rows, long long n) {
    int fi = rows_file_of(rf, rows[0]);
    long long k = 1;
    while (k < n && rows[k] >= rf->start[fi] && rows[k] < rf->start[fi + 1]) k++;
    return k;
}

long long rows_run_length(const long long *rows, long long n, long long max) {
    long long k = 1;
    while (k < n && k < max && rows[k] == rows[k - 1] + 1) k++;
    return k;
}

int rows_read(const RowFiles *rf, const long long *rows, long long n, float *x, void *stage, long long *lrows,
              hid_t dxpl) {
    const size_t half_row = x ? 0 : (size_t)rf->row_floats * 2;
    for (long long i = 0; i < n;) {
        int fi = rows_file_of(rf, rows[i]);
        const JetFile *f = &rf->file[fi];
        long long j = i;
        for (; j < n && rows[j] >= rf->start[fi] && rows[j] < rf->start[fi + 1]; j++) lrows[j - i] = rows[j] - rf->start[fi];
        float *dst = x ? x + i * rf->row_floats : NULL;
        void *st = stage ? (char *)stage + (size_t)i * half_row : NULL; /* no arithmetic on NULL */
        if (rows_raw(rf, f) ? jetfile_read_rows_raw(f, lrows, j - i, dst, st)
                            : jetfile_read_rows_hdf5(f, lrows, j - i, dst, st, dxpl))
            return -1;
        i = j;
    }
    return 0;
}

const JetFile *rows_read_sparse(const RowFiles *rf, const long long *rows, long long n, long long *lrows, char *pos,
                                char *value) {
    int fi = rows_file_of(rf, rows[0]);
    const JetFile *f = &rf->file[fi];
    for (long long j = 0; j < n; j++) lrows[j] = rows[j] - rf->start[fi];
    return sparsefile_read(f, lrows, n, pos, value, rf->dxpl_ind) ? NULL : f;
}

int rows_reject_nonfinite(const RowFiles *rf, long long row, long long bad) {
    int fi = rows_file_of(rf, row);
    return e2e_fail("%s: X_jet row %lld holds %lld non-finite value%s (NaN or Inf); rows with non-finite "
                    "pixels are rejected", rf->file[fi].path, row - rf->start[fi], bad, bad == 1 ? "" : "s");
}

long long values_nonfinite(const void *v, long long e, int value_bytes) {
    return value_bytes == 2 ? half_count_nonfinite(v, (size_t)e) : count_nonfinite(v, e, NULL);
}

int values_all_zero(const void *v, long long e, int value_bytes) {
    if (value_bytes == 4) return all_zero(v, e);
    for (long long k = 0; k < e; k++)
        if (((const uint16_t *)v)[k] & 0x7fffu) return 0;
    return 1;
}
