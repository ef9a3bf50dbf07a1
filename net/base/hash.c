/* FNV-1a over bytes (hash.h): the project's one hash. */
#include "hash.h"

uint64_t fnv1a_more(uint64_t h, const void *p, size_t bytes) {
    const unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t fnv1a(const void *p, size_t bytes) { return fnv1a_more(FNV1A_BASIS, p, bytes); }
