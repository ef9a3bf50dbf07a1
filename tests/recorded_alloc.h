/* An allocator that records its blocks, for tests of code that takes one (the reader's
 * batch_alloc, a backend's alloc_host): which buffers came from it, and that all went
 * back. */
#ifndef E2E_TESTS_RECORDED_ALLOC_H
#define E2E_TESTS_RECORDED_ALLOC_H

#include <stdlib.h>

#define RECORDED_MAX 64

typedef struct {
    void *p[RECORDED_MAX];
    size_t bytes[RECORDED_MAX];
    int live, made;
    int fail_after; /* >= 0: NULL once this many blocks were made (0 in a zeroed struct:
                       set -1 for "never") */
} Recorded;

static inline void *recorded_alloc(void *ctx, size_t bytes) {
    Recorded *k = ctx;
    if (k->fail_after >= 0 && k->made >= k->fail_after) return NULL;
    for (int i = 0; i < RECORDED_MAX; i++)
        if (!k->p[i]) {
            if (!(k->p[i] = malloc(bytes))) return NULL;
            k->bytes[i] = bytes;
            k->live++;
            k->made++;
            return k->p[i];
        }
    return NULL;
}

/* 0, or -1 for a pointer this allocator never gave */
static inline int recorded_free(Recorded *k, void *p) {
    for (int i = 0; i < RECORDED_MAX; i++)
        if (k->p[i] == p) {
            free(p);
            k->p[i] = NULL;
            k->live--;
            return 0;
        }
    return -1;
}

/* 1 when [p, p + bytes) lies inside one live block */
static inline int recorded_holds(const Recorded *k, const void *p, size_t bytes) {
    for (int i = 0; p && i < RECORDED_MAX; i++)
        if (k->p[i] && (const char *)p >= (const char *)k->p[i] &&
            (const char *)p + bytes <= (const char *)k->p[i] + k->bytes[i])
            return 1;
    return 0;
}

#endif
