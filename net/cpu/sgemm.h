/* Row-major single-precision GEMM for the CPU backend:
 *   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C,  op(X) = X or X^T.
 * cpu_sgemm is OpenBLAS's cblas_sgemm, or cpu_sgemm_portable in a build without
 * OpenBLAS (E2E_BLAS=portable: e.g. a GPU machine building only net/ to run the GPU
 * tests against the CPU backend). */
#ifndef E2E_NET_CPU_SGEMM_H
#define E2E_NET_CPU_SGEMM_H

void cpu_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);
/* Plain loops (always built; tested against OpenBLAS). beta = 0 overwrites C, as BLAS
 * does (a NaN already in C does not survive). */
void cpu_sgemm_portable(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                        int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
