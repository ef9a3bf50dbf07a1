/* Builds without CUDA: no NCCL; gradients always go through MPI. */
#include "comm.h"

int comm_nccl_available(void) { return 0; }
int comm_nccl_init(Comm *c) { return 0; }
int comm_nccl_allreduce_mean(Comm *c, float *buf, size_t n) { return -1; }
int comm_nccl_broadcast(Comm *c, float *buf, size_t n) { return -1; }
void comm_nccl_free(Comm *c) {}
