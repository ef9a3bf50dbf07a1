/* Builds without CUDA: no NCCL; gradients always go through MPI (comm_nccl_available
 * is 0, so comm.c calls none of the others). */
#include "comm_nccl.h"

#include "error.h"

int comm_nccl_available(void) { return 0; }
int comm_nccl_make_id(CommNcclId *id) { return e2e_fail("built without CUDA: no NCCL"); }
int comm_nccl_start(Comm *c, const CommNcclId *id) { return e2e_fail("built without CUDA: no NCCL"); }
int comm_nccl_wait_ready(Comm *c) { return e2e_fail("built without CUDA: no NCCL"); }
void comm_nccl_abort(Comm *c) {}
int comm_nccl_allreduce_mean(Comm *c, float *buf, size_t n) { return -1; }
int comm_nccl_broadcast(Comm *c, float *buf, size_t n) { return -1; }
void comm_nccl_free(Comm *c) {}
