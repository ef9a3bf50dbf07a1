/* The emulated cuDNN's parts to each other (emu_cudnn.cpp: the handle, the convolutions
 * as loops; emu_cudnn_algos.cpp: the algorithm lists a GPU might give, shaped by the
 * tests' rules). */
#pragma once

#include <cudnn.h>

#include <vector>

namespace emu {

enum { PASS_FWD = 0, PASS_BWD_DATA = 1, PASS_BWD_FILTER = 2 };
enum { FROM_HEURISTICS = 0, FROM_FIND = 1 };

/* A convolution as its descriptors describe it (NHWC tensors, KRSC filter). */
struct Conv {
    int n, c, h, w, k, r, s, pad, stride, oh, ow;
    cudnnDataType_t dt;
    cudnnMathType_t math;
};

/* One entry of an algorithm list, the fields the three AlgoPerf types share. */
struct Algo {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
};

/* The list for pass of d as cuDNN's heuristics or its timed search would give it on a
 * GPU (fastest first, those that cannot run last), shaped by the rules. */
std::vector<Algo> algorithms(int pass, const Conv &d, int source);
/* 0 when algo can run pass of d with ws_bytes of workspace (whatever the rules say:
 * they shape what cuDNN offers, not what it can do), else the status cuDNN gives. */
cudnnStatus_t can_run(int pass, const Conv &d, int algo, size_t ws_bytes);

}  // namespace emu
