/* cpu_sgemm: OpenBLAS, or the portable loops below (sgemm.h). */
#include "sgemm.h"

#include <omp.h>
#include <stddef.h>

#ifdef E2E_PORTABLE_SGEMM
void cpu_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc) {
    cpu_sgemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#else
#include <cblas.h>
void cpu_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#endif

/* Row by row of C. With B not transposed the inner loop runs along a row of B (axpy);
 * with B transposed, along a row of B^T (a dot product): both contiguous. Threads split
 * the rows, except inside a parallel region (conv_gemm calls per sample). */
void cpu_sgemm_portable(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                        int lda, const float *b, int ldb, float beta, float *c, int ldc) {
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && (double)m * n * k > 65536.0)
    for (int i = 0; i < m; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < n; j++) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        for (int p = 0; p < k && !trans_b; p++) {
            const float aip = alpha * (trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]);
            const float *bp = b + (size_t)p * ldb;
            for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
        }
        for (int j = 0; j < n && trans_b; j++) {
            const float *bj = b + (size_t)j * ldb;
            float acc = 0.0f;
            if (trans_a)
                for (int p = 0; p < k; p++) acc += a[(size_t)p * lda + i] * bj[p];
            else
                for (int p = 0; p < k; p++) acc += a[(size_t)i * lda + p] * bj[p];
            ci[j] += alpha * acc;
        }
    }
}
