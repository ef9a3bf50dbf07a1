/* Checking a backend's declaration: the required members, and the members of each
 * capability it declares (ops.h). */
#include "ops.h"

#include "error.h"

typedef struct {
    unsigned cap;        /* 0: required */
    const char *member;
    int set;
} Member;

#define REQUIRED(m) {0, #m, o->m != NULL}
#define OF(cap, m) {cap, #m, o->m != NULL}

int ops_check(const NetOps *o) {
    if (!o) return e2e_fail("no backend (NetOps is NULL)");
    const Member members[] = {
        REQUIRED(alloc), REQUIRED(release), REQUIRED(upload), REQUIRED(download),
        REQUIRED(sync), REQUIRED(copy2d), REQUIRED(conv2d_forward),
        REQUIRED(conv2d_backward_data), REQUIRED(conv2d_backward_filter),
        REQUIRED(relu_backward), REQUIRED(maxpool2x2_forward), REQUIRED(maxpool2x2_backward),
        REQUIRED(global_maxpool_forward), REQUIRED(global_maxpool_backward),
        REQUIRED(linear_forward), REQUIRED(linear_backward), REQUIRED(l1_loss),
        REQUIRED(bce_logits_loss),
        REQUIRED(adam_update), REQUIRED(add_scale), REQUIRED(nonfinite_check), REQUIRED(destroy),
        OF(OPS_STREAM, stream), OF(OPS_PINNED_HOST, alloc_host),
        OF(OPS_PINNED_HOST, release_host), OF(OPS_ASYNC_UPLOAD, mark),
        OF(OPS_ASYNC_UPLOAD, upload_async), OF(OPS_PREP_INPUT, prep_input),
        OF(OPS_GRAPHS, graph_begin), OF(OPS_GRAPHS, graph_end),
        OF(OPS_CONV_PREPARE, conv2d_prepare), OF(OPS_SPARSE_INPUT, densify_input),
    };
    const char *name = o->name ? o->name : "unnamed";
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        const Member *m = &members[i];
        if (m->set || (m->cap && !ops_can(o, m->cap))) continue;
        if (!m->cap) return e2e_fail("the %s backend lacks the required op '%s'", name, m->member);
        return e2e_fail("the %s backend declares a capability without its member '%s'", name,
                        m->member);
    }
    return 0;
}
