/* LD_PRELOAD library for tests: the first pthread_create called from the program itself
 * (not from a library: Open MPI, PMIx and OpenMP start their own threads) fails with
 * EAGAIN, as it does when a node's process or memory limits are reached. Preloaded on one
 * rank only, it makes that rank's watchdog fail to start while the other ranks' start
 * (tests/test_no_loss.py watchdog). Later calls pass through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

typedef int (*CreateFn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

struct Lookup {
    uintptr_t address;
    int in_program;
};

/* dl_iterate_phdr lists the program first: is the address in one of its loaded segments? */
static int in_first_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct Lookup *l = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && l->address >= start && l->address < start + ph->p_memsz) l->in_program = 1;
    }
    return 1;  /* the program only */
}

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
    static int refused;
    static CreateFn real;
    if (!real) real = (CreateFn)dlsym(RTLD_NEXT, "pthread_create");
    struct Lookup l = {(uintptr_t)__builtin_return_address(0), 0};
    dl_iterate_phdr(in_first_object, &l);
    if (l.in_program && !refused) {
        refused = 1;
        fprintf(stderr, "refuse_thread: refusing the program's first thread\n");
        return EAGAIN;
    }
    return real(thread, attr, start, arg);
}
