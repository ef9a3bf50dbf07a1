/* Picking a backend by name (backend.h): "cpu" or, in a CUDA build, "cuda"; and the
 * CPU's convolution engine plan, given to and taken from every rank through here. */
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

NetOps *net_backend_create(const BackendOptions *opt) {
    BackendOptions o = opt ? *opt : (BackendOptions){0};
    if (!o.device) o.device = "cpu";
    if (!o.precision) o.precision = "fp32";
    if (strcmp(o.device, "cpu") == 0) return net_cpu_create_precision(o.threads, o.precision);
    if (strcmp(o.device, "cuda") == 0) {
#ifdef E2E_HAVE_CUDA
        /* each rank may see one GPU (srun --gpus-per-task, a CUDA_VISIBLE_DEVICES per rank)
         * or all of its node's: the node-local rank modulo the GPUs it sees */
        int visible = net_cuda_device_count();
        if (visible < 0) return NULL;
        return net_cuda_create(visible > 0 ? o.gpu % visible : o.gpu, o.precision);
#else
        e2e_fail("device 'cuda': this build has no CUDA backend (configure with -DUSE_CUDA=ON)");
        return NULL;
#endif
    }
    e2e_fail("unknown device '%s' (expected cpu or cuda)", o.device);
    return NULL;
}

/* Only the CPU backend chooses kernels per shape by itself (cuDNN's choices are made
 * per call from its heuristics and are not exchanged). */
int net_backend_plan(NetOps *ops, char *buf, size_t len) {
    if (len) buf[0] = '\0';
    return net_cpu_conv_report(ops) ? net_cpu_conv_plan(ops, buf, len) : 0;
}

int net_backend_use_plan(NetOps *ops, const char *plan) {
    if (!plan || !*plan) return 0;
    return net_cpu_conv_use_plan(ops, plan);
}

const char *net_backend_report(NetOps *ops) { return net_cpu_conv_report(ops); }
