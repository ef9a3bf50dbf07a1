/* Reader of the test fixtures' tensor bundles (format in tests/reference/bundle.py). */
#ifndef E2E_TESTS_BUNDLE_H
#define E2E_TESTS_BUNDLE_H

#include <stddef.h>

typedef struct {
    char name[96];
    int ndim;
    int dims[8];
    size_t numel;
    float *data;
} BundleTensor;

typedef struct {
    int count;
    BundleTensor *t;
} Bundle;

/* 0 on success; -1 with a message on stderr naming the file and the problem. */
int bundle_read(const char *path, Bundle *b);
const BundleTensor *bundle_find(const Bundle *b, const char *name);
void bundle_free(Bundle *b);

#endif
