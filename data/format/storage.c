/* How a jet file's datasets are stored and read (storage.h): filters and external files
 * checked, virtual datasets opened by each rank alone, the raw-read decision, pread. */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "h5util.h"

/* Every filter of dataset `name` can be decoded here (HDF5 has it, or found its plugin). */
static int check_filters(const char *path, const char *name, hid_t dcpl) {
    int n = H5Pget_nfilters(dcpl);
    for (int i = 0; i < n; i++) {
        unsigned flags = 0, conf = 0, info = 0;
        size_t nelm = 0;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nelm, NULL, sizeof fname, fname, &conf);
        if (id >= 0 && H5Zfilter_avail(id) > 0 && H5Zget_filter_info(id, &info) >= 0 &&
            (info & H5Z_FILTER_CONFIG_DECODE_ENABLED))
            continue;
        const char *pp = getenv("HDF5_PLUGIN_PATH");
        H5Eclear2(H5E_DEFAULT);
        return e2e_fail("%s: %s is stored with HDF5 filter %d%s%s%s, which this HDF5 library cannot decode (no "
                         "plugin for it%s%s): install the filter's plugin and set HDF5_PLUGIN_PATH, or rewrite the "
                         "file without it (h5repack -f NONE %s OUT.h5); the file itself is not damaged",
                         path, name, (int)id, fname[0] ? " ('" : "", fname, fname[0] ? "')" : "",
                         pp ? ", HDF5_PLUGIN_PATH=" : ", HDF5_PLUGIN_PATH is not set", pp ? pp : "", path);
    }
    return 0;
}

/* A dataset in external raw files (H5Pset_external): they all exist. Relative names are
 * HDF5's, relative to the working folder; where that fails but they are beside the
 * HDF5 file, *origin = 1 (open the dataset with the prefix "${ORIGIN}"). */
static int check_external(const char *path, const char *name, hid_t dcpl, int *origin) {
    int n = H5Pget_external_count(dcpl), here = 0, beside = 0;
    char dir[4096], ext[4096], full[8300];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    for (int i = 0; i < n; i++) {
        off_t off;
        hsize_t size;
        if (H5Pget_external(dcpl, (unsigned)i, sizeof ext, ext, &off, &size) < 0)
            return h5_fail(path, "cannot read the external storage list");
        snprintf(full, sizeof full, "%s/%s", dir, ext);
        here += access(ext, R_OK) == 0;
        beside += ext[0] != '/' && access(full, R_OK) == 0;
        if (access(ext, R_OK) != 0 && (ext[0] == '/' || access(full, R_OK) != 0))
            return e2e_fail("%s: %s is stored in the external raw file '%s', which %s (looked in the working folder "
                             "and in %s)", path, name, ext, errno == ENOENT ? "does not exist" : "cannot be read", dir);
    }
    *origin = n > 0 && here < n && beside > 0;
    return 0;
}

/* MPI-IO cannot read virtual datasets ("parallel reads not supported"): they are read
 * through f->local, the file opened by this rank alone. */
hid_t storage_open_dataset(JetFile *f, const char *name) {
    hid_t d = H5Dopen2(f->file, name, H5P_DEFAULT);
    hid_t dcpl = d < 0 ? -1 : H5Dget_create_plist(d);
    int origin = 0, bad = d < 0 ? h5_fail(f->path, "cannot open a dataset") : 0;
    if (!bad) bad = check_filters(f->path, name, dcpl) || check_external(f->path, name, dcpl, &origin);
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (bad) {
        if (d >= 0) H5Dclose(d);
        return -1;
    }
    if (layout != H5D_VIRTUAL && !origin) return d;
    H5Dclose(d);
    if (layout == H5D_VIRTUAL && f->local < 0 && (f->local = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0) {
        h5_fail(f->path, "cannot open it for the reads of a virtual dataset");
        return -1;
    }
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (origin) H5Pset_efile_prefix(dapl, "${ORIGIN}");
    d = H5Dopen2(layout == H5D_VIRTUAL ? f->local : f->file, name, dapl);
    H5Pclose(dapl);
    if (d < 0) h5_fail(f->path, "cannot open a dataset");
    return d;
}

const char *storage_raw_refusal(hid_t dcpl, int little) {
    H5D_layout_t layout = H5Pget_layout(dcpl);
    return layout == H5D_VIRTUAL ? "a virtual dataset, read by each rank alone"
         : layout == H5D_COMPACT ? "compact (in the object header)"
         : H5Pget_external_count(dcpl) > 0 ? "in external raw files"
         : H5Pget_nfilters(dcpl) > 0 ? "filtered (compressed)"
         : !little ? "big-endian" : NULL;
}

void storage_file_of(hid_t d, char *name, size_t size, long long *userblock) {
    hid_t fid = H5Iget_file_id(d), fcpl = fid < 0 ? -1 : H5Fget_create_plist(fid);
    hsize_t ub = 0;
    name[0] = '\0';
    if (fid < 0 || H5Fget_name(fid, name, size) <= 0) name[0] = '\0';
    if (fcpl >= 0) H5Pget_userblock(fcpl, &ub);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fid >= 0) H5Fclose(fid);
    *userblock = (long long)ub;
}

int storage_open_data_file(JetFile *f, hid_t d, struct stat *st, long long *userblock) {
    char name[4096];
    storage_file_of(d, name, sizeof name, userblock);
    free(f->data_path);
    f->data_path = strdup(name[0] ? name : f->path);
    if (!f->data_path) return e2e_fail("out of memory");
    if (stat(f->data_path, st) != 0) return e2e_fail("%s: %s", f->data_path, strerror(errno));
    if (f->fd < 0) f->fd = open(f->data_path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return e2e_fail("%s: cannot open for reading: %s", f->data_path, strerror(errno));
    return 0;
}

int storage_pread(const JetFile *f, void *buf, long long len, long long off) {
    char *p = buf;
    while (len > 0) {
        ssize_t got = pread(f->fd, p, (size_t)len, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return e2e_fail("%s: read error at byte %lld: %s", f->path, off, strerror(errno));
        if (got == 0) return e2e_fail("%s: truncated file: no data at byte %lld", f->path, off);
        p += got;
        len -= got;
        off += got;
    }
    return 0;
}
