#include "backend.h"

#include <string.h>

#include "cpu/cpu_backend.h"
#include "error.h"

#ifdef E2E_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif

int net_has_cuda(void) {
#ifdef E2E_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

NetOps *net_backend_create(const char *name, int threads, int device) {
    if (!name) name = "cpu";
    if (strcmp(name, "cpu") == 0) return net_cpu_create(threads);
    if (strcmp(name, "cuda") == 0) {
#ifdef E2E_HAVE_CUDA
        return net_cuda_create(device);
#else
        net_fail("device 'cuda': this build has no CUDA backend (configure with -DUSE_CUDA=ON)");
        return NULL;
#endif
    }
    net_fail("unknown device '%s' (expected cpu or cuda)", name);
    return NULL;
}
