/* host_memory.h: MemAvailable, and the memory control groups' limits (v1 and v2, at
 * their usual mount points under /sys/fs/cgroup). */
#include "host_memory.h"

#include <stdio.h>
#include <string.h>

#define UNLIMITED (1LL << 62) /* v1 writes "no limit" as about 2^63, v2 as "max" */

/* The first number in path ("max" reads as UNLIMITED), or -1. */
static long long read_number(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char word[64] = "";
    long long v = -1;
    if (fscanf(f, "%63s", word) == 1) v = strcmp(word, "max") == 0 ? UNLIMITED : (sscanf(word, "%lld", &v) == 1 ? v : -1);
    fclose(f);
    return v;
}

/* The value of `key` in a "key value" file (memory.stat) or a "key: value kB" one
 * (/proc/meminfo, times 1024), or -1. */
static long long read_keyed(const char *path, const char *key, int kb) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[256], name[128];
    long long v = -1, x;
    while (v < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "%127[^: ]%*[: ]%lld", name, &x) == 2 && strcmp(name, key) == 0) v = kb ? x * 1024 : x;
    fclose(f);
    return v;
}

/* The control group of this process in the hierarchy with controller `ctl` (v1, e.g.
 * "memory"), or in the unified one (ctl NULL: the "0::" line), into out; 0 or -1. */
static int own_group(const char *ctl, char *out, size_t len) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return -1;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = '\0';
        const char *ctls = a + 1, *path = b + 1;
        int match = ctl ? strstr(ctls, ctl) != NULL : (strncmp(line, "0", 1) == 0 && *ctls == '\0');
        if (match) found = snprintf(out, len, "%.*s", (int)strcspn(path, "\n"), path) > 0;
    }
    fclose(f);
    return found ? 0 : -1;
}

typedef struct {
    const char *root;              /* where the hierarchy is mounted */
    const char *limit, *usage;     /* its files */
    const char *inactive;          /* memory.stat's hierarchical inactive page cache */
} Hierarchy;

/* The least room under the limits of `group` and its parents, into *best (when lower),
 * with how it came about. */
static void group_room(const Hierarchy *h, char *group, long long *best, char *how, size_t len) {
    char dir[4300], file[4400];
    for (;;) {
        snprintf(dir, sizeof dir, "%s%s", h->root, strcmp(group, "/") == 0 ? "" : group);
        snprintf(file, sizeof file, "%s/%s", dir, h->limit);
        long long limit = read_number(file);
        if (limit > 0 && limit < UNLIMITED) {
            snprintf(file, sizeof file, "%s/%s", dir, h->usage);
            long long used = read_number(file);
            snprintf(file, sizeof file, "%s/memory.stat", dir);
            long long cache = read_keyed(file, h->inactive, 0);
            if (used >= 0 && cache > 0 && cache < used) used -= cache;
            long long room = used < 0 ? limit : (limit > used ? limit - used : 0);
            if (*best < 0 || room < *best) {
                *best = room;
                if (how) snprintf(how, len, "the memory limit of control group %s (%.3g GB, %.3g GB in use)",
                                  group, limit / 1e9, used < 0 ? 0.0 : used / 1e9);
            }
        }
        char *slash = strrchr(group, '/');
        if (strcmp(group, "/") == 0 || !slash) return;
        slash[slash == group ? 1 : 0] = '\0';  /* "/a/b" -> "/a", "/a" -> "/" */
    }
}

long long host_memory_available(char *how, size_t len) {
    long long best = read_keyed("/proc/meminfo", "MemAvailable", 1);
    if (how && best >= 0) snprintf(how, len, "MemAvailable %.3g GB", best / 1e9);
    char group[4096];
    static const Hierarchy v1 = {"/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes",
                                 "total_inactive_file"};
    static const Hierarchy v2 = {"/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"};
    if (own_group("memory", group, sizeof group) == 0) group_room(&v1, group, &best, how, len);
    if (own_group(NULL, group, sizeof group) == 0) group_room(&v2, group, &best, how, len);
    if (how && best < 0) snprintf(how, len, "unknown (/proc/meminfo unreadable)");
    return best;
}
