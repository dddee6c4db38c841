/* syr2k (PolyBench/C 4.2.1): C := alpha*A*B' + alpha*B*A' + beta*C, lower triangle. */
#include "polybench.h"

#define M PB_SIZE(20, 60, 200, 1000, 2000)
#define N PB_SIZE(30, 80, 240, 1200, 2600)

static void init_array(double *alpha, double *beta, double (*C)[N], double (*A)[M],
                       double (*B)[M])
{
    *alpha = 1.5;
    *beta = 1.2;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) {
            A[i][j] = (double)((i * j + 1) % N) / N;
            B[i][j] = (double)((i * j + 2) % M) / M;
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            C[i][j] = (double)((i * j + 3) % N) / M;
}

static PB_NOINLINE void kernel_syr2k(double alpha, double beta, double (*C)[N], double (*A)[M],
                                     double (*B)[M])
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j <= i; j++)
            C[i][j] *= beta;
        for (int k = 0; k < M; k++)
            for (int j = 0; j <= i; j++)
                C[i][j] += A[j][k] * alpha * B[i][k] + B[j][k] * alpha * A[i][k];
    }
}

int main(void)
{
    double alpha, beta, t;
    PB_ALLOC_2D(double, C, N, N);
    PB_ALLOC_2D(double, A, N, M);
    PB_ALLOC_2D(double, B, N, M);
    init_array(&alpha, &beta, C, A, B);
    PB_TIME(t, kernel_syr2k(alpha, beta, C, A, B));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &C[0][0], (size_t)N * N);
    pb_report("syr2k", t, &ck);
    free(C);
    free(A);
    free(B);
    return 0;
}
