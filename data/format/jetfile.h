/* One jet file (data/format/FORMAT.md): open and validate, read the per-jet columns, read
 * rows of X_jet. Internal to data/; messages name the file and the problem. */
#ifndef E2E_DATA_JETFILE_H
#define E2E_DATA_JETFILE_H

#include <hdf5.h>
#include <stdint.h>

#define JET_MAX_CHANNELS 64
#define JET_MAX_SIDE 65535 /* pixels a side of an image: sizes stay in int */

typedef struct {
    char *path;
    hid_t file, x;          /* open HDF5 file and X_jet (a virtual X_jet through `local`) */
    hid_t local;            /* the file opened by this rank alone (POSIX driver), for
                               datasets MPI-IO cannot read (virtual ones); -1 when unused */
    hid_t half;             /* float16 files: the little-endian half type to read into */
    long long n;            /* rows */
    int c, h, w;
    int dtype_bytes;        /* 4: float32, 2: float16, as stored */
    long long row_bytes;    /* c * h * w * dtype_bytes */
    long long chunk_rows;   /* X_jet chunk length along N; 0 when contiguous */
    int filters;            /* filters on X_jet (compression, ...) */
    /* raw reads: X_jet stored in its file (contiguous or chunked, not compact, virtual or
     * in external raw files), unfiltered, little-endian, chunks of whole rows; row r lies
     * at byte chunk_addr[r / chunk_rows] + (r % chunk_rows) * row_bytes (contiguous:
     * contig_addr + r * row_bytes) of data_path, the file that holds X_jet (another file
     * behind an external link), and is read with pread on fd, without HDF5 (which is not
     * thread-safe in this build). The addresses are checked at open against HDF5's own
     * reads of a few rows; anything else is read through HDF5. */
    int raw;
    long long *chunk_addr;
    long long contig_addr;
    int fd;
    char *data_path;
    const char *storage;    /* X_jet's storage and how it is read, for e2e-data info */
    int n_names;            /* channel names from the "channels" attribute, or 0 */
    char *names[JET_MAX_CHANNELS];
    double pixel_size;      /* 0 when the attribute is absent */
    /* the sparse layout (X_jet a group: data/format/sparsefile.h), or NULL for a dense file;
     * then x is -1, dtype_bytes is the values' width, and raw says whether the entry
     * arrays are read with pread */
    struct SparseFile *sparse;
} JetFile;

/* Opens (collectively over the fapl's communicator when it is an MPI-IO one) and checks
 * the layout. Local result: callers agree across ranks. On failure *f is closed. */
int jetfile_open(JetFile *f, const char *path, hid_t fapl);
void jetfile_close(JetFile *f);

/* Column name (DSET_M, ...) into out[n] as float32, with dxpl (independent or
 * collective); checks the shape and the type. */
int jetfile_read_column(JetFile *f, const char *name, float *out, hid_t dxpl);
/* Column name of any integer or float type (a class label: FORMAT.md) into out[n] as
 * double, exactly; checks the shape. */
int jetfile_read_numbers(JetFile *f, const char *name, double *out, hid_t dxpl);

/* X_jet rows rows[0..n) (file-local, any order) into out as float32 [n][c][h][w].
 * Raw: pread, one per run of rows that lie back to back in the file; thread-safe, no
 * MPI, no HDF5. For float16 files, `stage` holds n * row_bytes (both functions); with
 * out == NULL the rows stay there, undecoded (float16 files only).
 * HDF5: one H5Dread of a regular hyperslab per run of consecutive rows (HDF5 1.10's
 * MPI-IO path walks irregular selections element by element, ten times slower), so a
 * collective caller passes one run, or n == 0 to join with an empty read. */
int jetfile_read_rows_raw(const JetFile *f, const long long *rows, long long n, float *out,
                          void *stage);
int jetfile_read_rows_hdf5(const JetFile *f, const long long *rows, long long n, float *out,
                           void *stage, hid_t dxpl);

/* Where row r lies in the file (raw dense files only) */
long long jetfile_row_addr(const JetFile *f, long long r);

/* The files of a dataset: path is an HDF5 file (a list of one) or a text file naming
 * one HDF5 file a line ('#' starts a comment; relative names are relative to the
 * list's folder; a UTF-8 byte-order mark and Windows line ends are fine). A file named
 * twice (the same name, or the same file through another path or a link: device and
 * inode) is refused. *out is freed with jet_list_free. */
int jet_list_resolve(const char *path, char ***out, int *count);
void jet_list_free(char **list, int n);
/* The open files of a list hold different jets: two files with the same N and the same
 * masses in order (a copy under another name) are refused. m: the masses of all files,
 * concatenated in list order. */
int jet_list_check_copies(const JetFile *files, int n, const float *m);

#endif
