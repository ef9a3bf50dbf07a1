/* A NetOps that forwards every call to another backend and adds up the wall time of
 * each op kind (synchronising after each call, so GPU times are real). For per-op
 * breakdowns in benchmarks; never used in training. */
#ifndef E2E_NET_OPS_PROFILE_H
#define E2E_NET_OPS_PROFILE_H

#include "ops.h"

enum {
    PROF_CONV_FWD, PROF_CONV_BWD_DATA, PROF_CONV_BWD_FILTER, PROF_RELU_BWD,
    PROF_MAXPOOL, PROF_GLOBAL_MAXPOOL, PROF_LINEAR, PROF_LOSS, PROF_ADAM, PROF_OTHER, PROF_KINDS
};

typedef struct {
    double seconds[PROF_KINDS];
    long calls[PROF_KINDS];
    double conv_flops[3];  /* multiply-adds x 2 of forward, backward data, backward filter */
} OpsProfile;

/* Wraps inner (not owned). destroy frees the wrapper only. */
NetOps *ops_profile_wrap(NetOps *inner, OpsProfile *prof);
const char *ops_profile_name(int kind);

#endif
