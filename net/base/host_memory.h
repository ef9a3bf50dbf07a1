/* How much host memory a process may still take: the kernel's estimate for the node
 * (MemAvailable), or less where the process sits in a control group with a memory limit
 * (Slurm's ConstrainRAMSpace, a container): past that limit the kernel's OOM killer ends
 * the process without a word, so a run checks its needs against this first. */
#ifndef E2E_BASE_HOST_MEMORY_H
#define E2E_BASE_HOST_MEMORY_H

#include <stddef.h>

/* Bytes this process can still allocate: the smaller of MemAvailable (/proc/meminfo)
 * and, for each memory control group it sits in (cgroup v2: memory.max, v1:
 * memory.limit_in_bytes, this group's and every parent's), the limit less the usage
 * that cannot be reclaimed (the usage less its inactive file pages). -1 when none of
 * them can be read. `how` (len bytes, may be NULL) says which bound it is. */
long long host_memory_available(char *how, size_t len);

#endif
