/* The latching HDF5 file driver (h5latch.h): POSIX I/O like HDF5's sec2 driver, a
 * failed write, truncate or close recorded for the caller and reported to HDF5 as
 * done. */
#include "h5latch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    H5Latch *latch;
} LatchInfo;

typedef struct {
    H5FD_t pub; /* HDF5's part: first */
    int fd;
    dev_t dev;
    ino_t ino;
    haddr_t eoa, eof;
    H5Latch *latch;
} LatchFile;

#define LATCH_MAXADDR (((haddr_t)1 << (8 * sizeof(off_t) - 1)) - 1)

static void record(LatchFile *f, int err, const char *what) {
    if (f->latch && !f->latch->error) {
        f->latch->error = err ? err : EIO;
        f->latch->what = what;
    }
}

static void *info_copy(const void *info) {
    LatchInfo *c = malloc(sizeof *c);
    if (c) *c = *(const LatchInfo *)info;
    return c;
}

static herr_t info_free(void *info) {
    free(info);
    return 0;
}

static void *info_get(H5FD_t *file) {
    LatchInfo info = {((LatchFile *)file)->latch};
    return info_copy(&info);
}

static H5FD_t *latch_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr) {
    int o = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & H5F_ACC_TRUNC) o |= O_TRUNC;
    if (flags & H5F_ACC_CREAT) o |= O_CREAT;
    if (flags & H5F_ACC_EXCL) o |= O_EXCL;
    int fd = open(name, o | O_CLOEXEC, 0666);
    struct stat st;
    LatchFile *f = fd >= 0 && fstat(fd, &st) == 0 ? calloc(1, sizeof *f) : NULL;
    if (!f) {
        H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_VFL, H5E_CANTOPENFILE,
                 "cannot open %s: %s", name, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    const LatchInfo *info = H5Pget_driver_info(fapl);
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->eof = (haddr_t)st.st_size;
    f->latch = info ? info->latch : NULL;
    (void)maxaddr;
    return &f->pub;
}

static herr_t latch_close(H5FD_t *file) {
    LatchFile *f = (LatchFile *)file;
    if (close(f->fd)) record(f, errno, "closing");
    free(f);
    return 0;
}

static int latch_cmp(const H5FD_t *a, const H5FD_t *b) {
    const LatchFile *x = (const LatchFile *)a, *y = (const LatchFile *)b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return 0;
}

static herr_t latch_query(const H5FD_t *file, unsigned long *flags) {
    (void)file;
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA;
    return 0;
}

static haddr_t latch_get_eoa(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const LatchFile *)file)->eoa;
}

static herr_t latch_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr) {
    (void)type;
    ((LatchFile *)file)->eoa = addr;
    return 0;
}

static haddr_t latch_get_eof(const H5FD_t *file, H5FD_mem_t type) {
    (void)type;
    return ((const LatchFile *)file)->eof;
}

static herr_t latch_get_handle(H5FD_t *file, hid_t fapl, void **handle) {
    (void)fapl;
    *handle = &((LatchFile *)file)->fd;
    return 0;
}

/* pread; what lies beyond the end of the file reads as zeros (as in sec2) */
static herr_t latch_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf) {
    LatchFile *f = (LatchFile *)file;
    char *p = buf;
    (void)type, (void)dxpl;
    while (size > 0) {
        ssize_t got = pread(f->fd, p, size, (off_t)addr);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_IO, H5E_READERROR,
                     "reading failed: %s", strerror(errno));
            return -1;
        }
        if (got == 0) {
            memset(p, 0, size);
            break;
        }
        p += got, addr += (haddr_t)got, size -= (size_t)got;
    }
    return 0;
}

static herr_t latch_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf) {
    LatchFile *f = (LatchFile *)file;
    const char *p = buf;
    haddr_t end = addr + size;
    (void)type, (void)dxpl;
    while (size > 0) {
        ssize_t got = pwrite(f->fd, p, size, (off_t)addr);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            record(f, got < 0 ? errno : ENOSPC, "writing");
            break;
        }
        p += got, addr += (haddr_t)got, size -= (size_t)got;
    }
    if (end > f->eof) f->eof = end;
    return 0;
}

static herr_t latch_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing) {
    LatchFile *f = (LatchFile *)file;
    (void)dxpl, (void)closing;
    if (f->eoa != f->eof && ftruncate(f->fd, (off_t)f->eoa)) record(f, errno, "truncating");
    f->eof = f->eoa;
    return 0;
}

static const H5FD_class_t LATCH_CLASS = {
    "e2e-latch", LATCH_MAXADDR, H5F_CLOSE_WEAK, NULL, NULL, NULL, NULL,
    sizeof(LatchInfo), info_get, info_copy, info_free, 0, NULL, NULL,
    latch_open, latch_close, latch_cmp, latch_query, NULL, NULL, NULL,
    latch_get_eoa, latch_set_eoa, latch_get_eof, latch_get_handle, latch_read, latch_write,
    NULL, latch_truncate, NULL, NULL, H5FD_FLMAP_DICHOTOMY};

hid_t h5_latch_fapl(H5Latch *latch) {
    static hid_t driver = -1;
    if (driver < 0 || H5Iis_valid(driver) <= 0) driver = H5FDregister(&LATCH_CLASS);
    hid_t fapl = driver < 0 ? -1 : H5Pcreate(H5P_FILE_ACCESS);
    LatchInfo info = {latch};
    if (fapl >= 0 && H5Pset_driver(fapl, driver, &info) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}
