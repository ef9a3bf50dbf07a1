/* What an op does when it cannot go on, inside or outside a CUDA graph capture: a failed
 * CUDA or cuDNN call (cuda_die) ends the process, or fails the capture this thread is
 * recording; a scratch buffer that must grow (cuda_grow) grows, or fails the capture.
 * The backend's other files call down into this one; it calls none of them. */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_internal.h"

/* The backend whose graph this thread is capturing, if any (ops and captures run on
 * the thread that made the backend). */
static thread_local CudaCtx *tl_recording;

void cuda_set_capturing(CudaCtx *c) { tl_recording = c; }

/* The first failure of a capture is the one reported. */
void cuda_fail_capture(CudaCtx *c, const char *msg) {
    if (!c->capture_error) snprintf(c->capture_msg, sizeof c->capture_msg, "%s", msg);
    c->capture_error = 1;
}

void cuda_die(const char *file, int line, const char *what, const char *msg) {
    char full[400];
    snprintf(full, sizeof full, "%s:%d: %s failed: %s", file, line, what, msg);
    if (tl_recording) {
        cuda_fail_capture(tl_recording, full);
        return;
    }
    fprintf(stderr, "e2e-ddp: %s\n", full);
    exit(EXIT_FAILURE);
}

int cuda_grow(CudaCtx *c, Scratch *s, size_t bytes) {
    if (bytes <= s->bytes) return 0;
    if (c->recording) {  /* no allocation inside a capture: the recording fails instead */
        cuda_fail_capture(c, "an op needed a buffer to grow during the capture");
        return -1;
    }
    bytes = (bytes + 255) / 256 * 256;
    cudaCheck(cudaStreamSynchronize(c->stream));  /* ops enqueued earlier may still read s */
    if (s->p) cudaCheck(cudaFree(s->p));
    s->p = NULL;
    s->bytes = 0;
    cudaCheck(cudaMalloc(&s->p, bytes));
    s->bytes = bytes;
    c->generation++;
    return 0;
}
