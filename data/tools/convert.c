/* e2e-data convert (convert.h): a jet file rewritten in another layout or dtype, every
 * rank its own rows, through jetwriter.h. */
#include "convert.h"

#include <errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agree.h"
#include "error.h"
#include "format.h"
#include "h5util.h"
#include "half.h"
#include "jetfile.h"
#include "jetwriter.h"
#include "outfile.h"
#include "sparsefile.h"

#define MAX_COLUMNS 64
#define ESTIMATE_ROWS 64 /* dense rows read to estimate a sparse output's size */

void convert_defaults(ConvertOptions *o) {
    memset(o, 0, sizeof *o);
}

/* The input and what is carried over: its per-jet columns and their types. */
typedef struct {
    const ConvertOptions *o;
    MPI_Comm comm;
    JetFile in;
    long long n;                   /* rows converted */
    int out_bytes;                 /* the output's dtype */
    int ncol;
    char *colname[MAX_COLUMNS];
    hid_t coltype[MAX_COLUMNS], coldset[MAX_COLUMNS];
    JetColumn cols[MAX_COLUMNS];
} Conv;

/* every (N,) dataset of the input's root group is a per-jet column */
static herr_t find_column(hid_t root, const char *name, const H5L_info_t *info, void *arg) {
    Conv *cv = arg;
    H5O_info_t oi;
    if (H5Oget_info_by_name(root, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(root, name, H5P_DEFAULT), sp = H5Dget_space(d);
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    hid_t t = H5Dget_type(d);
    int number = (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT) && H5Tget_size(t) <= 8;
    H5Tclose(t);
    if (nd != 1 || (long long)dims[0] != cv->in.n || !number || cv->ncol == MAX_COLUMNS) {
        H5Dclose(d);
        return 0;
    }
    cv->coldset[cv->ncol] = d;
    cv->coltype[cv->ncol] = H5Dget_type(d);
    cv->colname[cv->ncol] = strdup(name);
    cv->cols[cv->ncol] = (JetColumn){cv->colname[cv->ncol], cv->coltype[cv->ncol]};
    cv->ncol++;
    (void)info;
    return 0;
}

/* OUT can be written and is not IN (by any name: device and inode), and this rank
 * sees IN (a rank that does not must not leave the others inside MPI_File_open) */
static int check_paths(const ConvertOptions *o) {
    if (!o->in || !o->out) return e2e_fail("e2e-data convert: needs IN and OUT");
    OutInput in = {o->in, "IN"};
    struct stat st;
    if (stat(o->in, &st) != 0) return e2e_fail("%s: %s", o->in, errno == ENOENT ? "no such file" : strerror(errno));
    return out_check_path(o->out, "OUT", &in, 1);
}

/* opens the input (collective), finds its columns, checks the rows asked for */
static int open_input(Conv *cv) {
    const ConvertOptions *o = cv->o;
    if (agree_fail_together(cv->comm, check_paths(o))) return -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, cv->comm, MPI_INFO_NULL);
    int rc = agree_fail_together(cv->comm, jetfile_open(&cv->in, o->in, fapl));
    H5Pclose(fapl);
    if (rc) return rc;
    H5Literate(cv->in.file, H5_INDEX_NAME, H5_ITER_INC, NULL, find_column, cv);
    long long left = cv->in.n - o->first;
    cv->n = o->count ? o->count : left;
    cv->out_bytes = o->dtype_bytes ? o->dtype_bytes : cv->in.dtype_bytes;
    if (o->first < 0 || o->count < 0 || left <= 0 || cv->n > left)
        rc = e2e_fail("%s: rows %lld to %lld asked for, the file has %lld", o->in, o->first, o->first + cv->n - 1,
                       cv->in.n);
    return agree_fail_together(cv->comm, rc);
}

/* input rows [a, a + n) as stored, converted to the output's dtype, into out
 * (n rows); stage and entries are scratch of n rows */
static int read_images(Conv *cv, long long a, long long n, void *out, void *stage, char *epos, char *eval) {
    const JetFile *f = &cv->in;
    const long long rowv = (long long)f->c * f->h * f->w;
    long long *rows = malloc((size_t)(n ? n : 1) * sizeof *rows);
    if (!rows) return e2e_fail("out of memory");
    for (long long i = 0; i < n; i++) rows[i] = a + i;
    int same = f->dtype_bytes == cv->out_bytes, rc = 0;
    void *as_stored = same ? out : stage;
    if (f->sparse) {
        const struct SparseFile *s = f->sparse;
        rc = sparsefile_read(f, rows, n, epos, eval, H5P_DEFAULT);
        for (long long i = 0, e = 0; !rc && i < n; e += sparsefile_row_entries(s, rows[i]), i++)
            sparse_decode(&s->g, s->counts + rows[i] * f->c, epos + e * s->g.pos_bytes, eval + e * s->g.value_bytes,
                          (char *)as_stored + i * rowv * f->dtype_bytes);
    } else if (f->dtype_bytes == 2) { /* binary16 rows stay undecoded in the stage buffer */
        rc = f->raw ? jetfile_read_rows_raw(f, rows, n, NULL, as_stored)
                    : jetfile_read_rows_hdf5(f, rows, n, NULL, as_stored, H5P_DEFAULT);
    } else {
        rc = f->raw ? jetfile_read_rows_raw(f, rows, n, as_stored, NULL)
                    : jetfile_read_rows_hdf5(f, rows, n, as_stored, NULL, H5P_DEFAULT);
    }
    if (!rc && !same && cv->out_bytes == 2) float_to_half_n(stage, out, (size_t)(n * rowv));
    if (!rc && !same && cv->out_bytes == 4) half_to_float_n(stage, out, (size_t)(n * rowv));
    free(rows);
    return rc;
}

/* the columns' rows [a, a + n) into bufs[k] (room for n values of 8 bytes each) */
static int read_columns(Conv *cv, long long a, long long n, void **bufs) {
    for (int k = 0; k < cv->ncol; k++)
        if (h5_rows_io(cv->coldset[k], cv->coltype[k], H5P_DEFAULT, a, n, bufs[k], 0) < 0)
            return h5_fail(cv->o->in, "cannot read a per-jet column");
    return 0;
}

/* Round by round: each rank reads its rows of the input, converts them and writes. */
static int copy_rows(Conv *cv, JetWriter *w) {
    const JetFile *f = &cv->in;
    const long long rowv = (long long)f->c * f->h * f->w;
    long long k = 0, first, n;
    for (long long r = 0; r < jetwriter_rounds(w); r++) {
        jetwriter_round(w, r, &first, &n);
        if (n > k) k = n;
    }
    size_t rows_bytes = (size_t)((k ? k : 1) * rowv * 4);
    void *out = malloc(rows_bytes), *stage = malloc(rows_bytes), *bufs[MAX_COLUMNS];
    char *epos = f->sparse ? malloc((size_t)((k ? k : 1) * rowv) * 4) : NULL, *eval = f->sparse ? malloc(rows_bytes) : NULL;
    int ok = out && stage && (!f->sparse || (epos && eval));
    for (int c = 0; c < cv->ncol; c++) ok &= (bufs[c] = malloc((size_t)(k ? k : 1) * 8)) != NULL;
    int rc = agree_fail_together(cv->comm, ok ? 0 : e2e_fail("%s: out of memory for %lld rows", cv->o->out, k));
    for (long long r = 0; !rc && r < jetwriter_rounds(w); r++) {
        jetwriter_round(w, r, &first, &n);
        rc = read_images(cv, cv->o->first + first, n, out, stage, epos, eval);
        if (!rc) rc = read_columns(cv, cv->o->first + first, n, bufs);
        rc = agree_fail_together(cv->comm, rc);
        if (!rc) rc = jetwriter_write(w, first, n, out, (const void *const *)bufs);
    }
    for (int c = 0; c < cv->ncol; c++) free(bufs[c]);
    free(out);
    free(stage);
    free(epos);
    free(eval);
    return rc;
}

/* ---- attributes ---- */

typedef struct { hid_t to; const char *const *skip; } AttrCopy;

/* one attribute, as it is (type, shape, values), unless it is to be skipped */
static herr_t copy_attr(hid_t from, const char *name, const H5A_info_t *info, void *arg) {
    AttrCopy *ac = arg;
    for (const char *const *s = ac->skip; s && *s; s++)
        if (!strcmp(*s, name)) return 0;
    hid_t a = H5Aopen(from, name, H5P_DEFAULT), t = H5Aget_type(a), sp = H5Aget_space(a);
    size_t bytes = H5Tget_size(t) * (size_t)H5Sget_simple_extent_npoints(sp);
    void *buf = calloc(bytes ? bytes : 1, 1);
    herr_t rc = buf && H5Aread(a, t, buf) >= 0 ? 0 : -1;
    hid_t b = rc ? -1 : H5Acreate2(ac->to, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (b < 0 || H5Awrite(b, t, buf) < 0) rc = -1;
    if (b >= 0) H5Aclose(b);
    if (buf && H5Tdetect_class(t, H5T_VLEN) > 0) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf);
    else if (buf && H5Tis_variable_str(t) > 0) H5Dvlen_reclaim(t, sp, H5P_DEFAULT, buf);
    free(buf);
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    (void)info;
    return rc;
}

/* the input's attributes (root and columns), the command appended to its own */
static int copy_attrs(Conv *cv, JetWriter *w) {
    static const char *const skip_root[] = {ATTR_FORMAT, ATTR_FORMAT_VERSION, ATTR_COMMAND, NULL};
    static const char *const skip_part[] = {ATTR_FORMAT, ATTR_FORMAT_VERSION, ATTR_COMMAND, "source_files",
                                            "source_rows", NULL};
    const int part = cv->n != cv->in.n; /* a part of the rows: the import's row counts no longer hold */
    AttrCopy ac = {jetwriter_file(w), part ? skip_part : skip_root};
    int rc = H5Aiterate2(cv->in.file, H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &ac) < 0;
    for (int k = 0; !rc && k < cv->ncol; k++) {
        AttrCopy col = {jetwriter_column(w, k), NULL};
        rc = H5Aiterate2(cv->coldset[k], H5_INDEX_NAME, H5_ITER_INC, NULL, copy_attr, &col) < 0;
    }
    char *old = h5_attr_str(cv->in.file, ATTR_COMMAND);
    const char *now = cv->o->command ? cv->o->command : "e2e-data convert";
    char *both = malloc(strlen(old ? old : "") + strlen(now) + 2);
    if (both) sprintf(both, "%s%s%s", old && old[0] ? old : "", old && old[0] ? "\n" : "", now);
    if (!rc && (!both || h5_attr_write_str(jetwriter_file(w), ATTR_COMMAND, both, 1))) rc = -1;
    free(old);
    free(both);
    return rc ? h5_fail(cv->o->out, "cannot copy the attributes") : 0;
}

/* The entries of a sparse output: the input's own count of the rows (a sparse input),
 * or the non-zero pixels of ESTIMATE_ROWS rows spread over them (a dense input; -0.0
 * counts, as the encoding stores it). Rank 0; 0 when it cannot tell. */
static long long estimate_entries(Conv *cv) {
    const JetFile *f = &cv->in;
    const long long a = cv->o->first;
    if (f->sparse) return f->sparse->offsets[a + cv->n] - f->sparse->offsets[a];
    const long long rowv = (long long)f->c * f->h * f->w, k = cv->n < ESTIMATE_ROWS ? cv->n : ESTIMATE_ROWS;
    void *row = malloc((size_t)(rowv * 4)), *stage = malloc((size_t)(rowv * 4));
    SparseGeom g = {f->c, (long long)f->h * f->w, 4, cv->out_bytes};
    long long nnz = 0;
    for (long long i = 0; row && stage && i < k; i++)
        if (read_images(cv, a + i * (cv->n / k), 1, row, stage, NULL, NULL) == 0) nnz += sparse_count_entries(&g, row);
    free(row);
    free(stage);
    e2e_clear_error();
    return k ? (long long)((double)nnz / (double)k * (double)cv->n) : 0;
}

static void close_input(Conv *cv) {
    for (int k = 0; k < cv->ncol; k++) {
        H5Dclose(cv->coldset[k]);
        H5Tclose(cv->coltype[k]);
        free(cv->colname[k]);
    }
    jetfile_close(&cv->in);
}

int data_convert(const ConvertOptions *o, MPI_Comm comm) {
    Conv cv = {.o = o, .comm = comm};
    cv.in.file = cv.in.x = cv.in.half = -1;
    cv.in.fd = -1;
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    int rc = open_input(&cv);
    JetWriter *w = NULL;
    if (!rc) {
        int rank;
        MPI_Comm_rank(comm, &rank);
        JetWriterSpec spec = {.path = o->out, .n = cv.n, .c = cv.in.c, .h = cv.in.h, .w = cv.in.w,
                              .dtype_bytes = cv.out_bytes, .sparse = o->sparse, .chunk = o->chunk,
                              .sparse_entries = o->sparse && rank == 0 ? estimate_entries(&cv) : 0,
                              .n_columns = cv.ncol, .columns = cv.cols};
        rc = jetwriter_open(&w, &spec, comm);
        if (!rc) rc = copy_rows(&cv, w);
        if (!rc) rc = jetwriter_finish(w);
        if (!rc) rc = agree_fail_together(comm, rank == 0 ? copy_attrs(&cv, w) : 0); /* rank 0 owns the structure */
        rc = jetwriter_close(w, rc);
    }
    close_input(&cv);
    h5_quiet_end(&quiet);
    return rc;
}
