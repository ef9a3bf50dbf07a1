#include "bundle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rd(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n ? 0 : -1; }

int bundle_read(const char *path, Bundle *b) {
    memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open the fixture\n", path);
        return -1;
    }
    char magic[4];
    uint32_t count;
    if (rd(f, magic, 4) || memcmp(magic, "E2EB", 4) || rd(f, &count, 4) || count > 100000) {
        fprintf(stderr, "%s: not a tensor bundle\n", path);
        fclose(f);
        return -1;
    }
    b->t = calloc(count, sizeof *b->t);
    for (uint32_t i = 0; i < count; i++) {
        BundleTensor *t = &b->t[i];
        uint32_t len, nd, dims[8];
        if (rd(f, &len, 4) || len >= sizeof t->name || rd(f, t->name, len) || rd(f, &nd, 4) ||
            nd > 8 || rd(f, dims, 4 * nd)) {
            fprintf(stderr, "%s: truncated or corrupt header of tensor %u\n", path, i);
            goto fail;
        }
        t->ndim = (int)nd;
        t->numel = 1;
        for (uint32_t d = 0; d < nd; d++) {
            t->dims[d] = (int)dims[d];
            t->numel *= dims[d];
        }
        t->data = malloc(sizeof(float) * (t->numel ? t->numel : 1));
        b->count = (int)i + 1;
        if (rd(f, t->data, sizeof(float) * t->numel)) {
            fprintf(stderr, "%s: tensor %s is truncated\n", path, t->name);
            goto fail;
        }
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    bundle_free(b);
    return -1;
}

const BundleTensor *bundle_find(const Bundle *b, const char *name) {
    for (int i = 0; i < b->count; i++)
        if (strcmp(b->t[i].name, name) == 0) return &b->t[i];
    return NULL;
}

void bundle_free(Bundle *b) {
    for (int i = 0; i < b->count; i++) free(b->t[i].data);
    free(b->t);
    memset(b, 0, sizeof *b);
}
