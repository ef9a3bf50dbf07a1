/* A dataset's fingerprint (fingerprint.h): its numbers and hashes, built from the
 * reader's public API, compared with a checkpoint's. */
#include "fingerprint.h"

#include <stdio.h>
#include <string.h>

#include "keyed_rng.h"

#define TAG_FINGERPRINT 0x46505249ULL /* "FPRI" */

/* the n floats' bits, in order (the masses, or a classifier's labels) */
static uint64_t floats_hash(const float *m, long long n) {
    uint64_t h = drng_mix(TAG_FINGERPRINT ^ (uint64_t)n);
    for (long long i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &m[i], sizeof bits);
        h = drng_mix(h ^ bits);
    }
    return h;
}

/* sum over this rank's validation and test rows of a hash of (row, split): the same
 * for any number of ranks once summed over them */
static uint64_t local_split_hash(const Dataset *d) {
    uint64_t h = 0;
    for (int s = SPLIT_VAL; s <= SPLIT_TEST; s++) {
        long long n;
        const long long *rows = dataset_split_rows(d, (Split)s, &n);
        for (long long i = 0; rows && i < n; i++) h += drng_mix(((uint64_t)rows[i] << 2 | (uint64_t)s) ^ TAG_FINGERPRINT);
    }
    return h;
}

static void join(char *out, size_t size, const char *sep, const char *item) {
    size_t used = strlen(out);
    if (used + 1 < size) snprintf(out + used, size - used, "%s%s", used ? sep : "", item);
}

void data_fingerprint(const Dataset *d, MPI_Comm comm, DataFingerprint *fp) {
    const DatasetInfo *in = dataset_info(d);
    memset(fp, 0, sizeof *fp);
    fp->n = in->n_total;
    fp->channels = in->channels;
    fp->height = in->height;
    fp->width = in->width;
    fp->mass_hash = floats_hash(dataset_masses(d), in->n_total);
    if (in->label) {
        snprintf(fp->label, sizeof fp->label, "%s", in->label);
        fp->label_hash = floats_hash(dataset_labels(d), in->n_total);
    }
    uint64_t mine = local_split_hash(d);
    MPI_Allreduce(&mine, &fp->split_hash, 1, MPI_UINT64_T, MPI_SUM, comm);
    for (int c = 0; c < in->channels; c++) {
        size_t used = strlen(fp->channel_names);
        snprintf(fp->channel_names + used, sizeof fp->channel_names - used, "%s%s", c ? "," : "",
                 in->channel_names[c]);
    }
    for (int i = 0; i < in->n_files; i++) {
        const char *p = dataset_file_path(d, i), *slash = strrchr(p, '/');
        join(fp->files, sizeof fp->files, ", ", slash ? slash + 1 : p);
    }
}

int data_fingerprint_differs(const DataFingerprint *a, const DataFingerprint *b, char *why, size_t size) {
    char item[2 * FINGERPRINT_TEXT + 64];
    why[0] = '\0';
    if (a->n != b->n) {
        snprintf(item, sizeof item, "%lld jets, not %lld", b->n, a->n);
        join(why, size, "; ", item);
    }
    if (a->channels != b->channels || a->height != b->height || a->width != b->width) {
        snprintf(item, sizeof item, "images %d x %d x %d, not %d x %d x %d", b->channels, b->height, b->width,
                 a->channels, a->height, a->width);
        join(why, size, "; ", item);
    } else if (strcmp(a->channel_names, b->channel_names)) {
        snprintf(item, sizeof item, "channels (%s), not (%s)", b->channel_names, a->channel_names);
        join(why, size, "; ", item);
    }
    if (a->n == b->n && a->mass_hash != b->mass_hash) join(why, size, "; ", "other masses (other jets, or another order)");
    if (a->label[0] && b->label[0] && strcmp(a->label, b->label)) {
        snprintf(item, sizeof item, "labels from column '%s', not '%s'", b->label, a->label);
        join(why, size, "; ", item);
    } else if (a->label[0] && b->label[0] && a->n == b->n && a->label_hash != b->label_hash)
        join(why, size, "; ", "other labels (relabelled jets, or another order)");
    if (!why[0] && a->split_hash != b->split_hash)
        join(why, size, "; ", "the same jets, but the reader splits them into other training, validation and test "
                              "rows (another chunking or file boundaries?)");
    return why[0] != '\0';
}

void data_fingerprint_describe(const DataFingerprint *f, char *out, size_t size) {
    snprintf(out, size, "%lld jets of %d x %d x %d (%s)%s%s%s from %s", f->n, f->channels, f->height, f->width,
             f->channel_names, f->label[0] ? ", labels '" : "", f->label, f->label[0] ? "'" : "",
             f->files[0] ? f->files : "?");
}
