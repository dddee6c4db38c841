/* syrk (PolyBench/C 4.2.1): C := alpha*A*A' + beta*C, lower triangle. */
#include "polybench.h"

#define M PB_SIZE(20, 60, 200, 1000, 2000)
#define N PB_SIZE(30, 80, 240, 1200, 2600)

static void init_array(double *alpha, double *beta, double (*C)[N], double (*A)[M])
{
    *alpha = 1.5;
    *beta = 1.2;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++)
            A[i][j] = (double)((i * j + 1) % N) / N;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            C[i][j] = (double)((i * j + 2) % M) / M;
}

static PB_NOINLINE void kernel_syrk(double alpha, double beta, double (*C)[N], double (*A)[M])
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j <= i; j++)
            C[i][j] *= beta;
        for (int k = 0; k < M; k++)
            for (int j = 0; j <= i; j++)
                C[i][j] += alpha * A[i][k] * A[j][k];
    }
}

int main(void)
{
    double alpha, beta, t;
    PB_ALLOC_2D(double, C, N, N);
    PB_ALLOC_2D(double, A, N, M);
    init_array(&alpha, &beta, C, A);
    PB_TIME(t, kernel_syrk(alpha, beta, C, A));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &C[0][0], (size_t)N * N);
    pb_report("syrk", t, &ck);
    free(C);
    free(A);
    return 0;
}
