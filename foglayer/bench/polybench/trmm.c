/* trmm (PolyBench/C 4.2.1): B := alpha*A'*B, A unit lower triangular. */
#include "polybench.h"

#define M PB_SIZE(20, 60, 200, 1000, 2000)
#define N PB_SIZE(30, 80, 240, 1200, 2600)

static void init_array(double *alpha, double (*A)[M], double (*B)[N])
{
    *alpha = 1.5;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < i; j++)
            A[i][j] = (double)((i + j) % M) / M;
        A[i][i] = 1.0;
        for (int j = 0; j < N; j++)
            B[i][j] = (double)((N + (i - j)) % N) / N;
    }
}

static PB_NOINLINE void kernel_trmm(double alpha, double (*A)[M], double (*B)[N])
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            for (int k = i + 1; k < M; k++)
                B[i][j] += A[k][i] * B[k][j];
            B[i][j] = alpha * B[i][j];
        }
}

int main(void)
{
    double alpha, t;
    PB_ALLOC_2D(double, A, M, M);
    PB_ALLOC_2D(double, B, M, N);
    init_array(&alpha, A, B);
    PB_TIME(t, kernel_trmm(alpha, A, B));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &B[0][0], (size_t)M * N);
    pb_report("trmm", t, &ck);
    free(A);
    free(B);
    return 0;
}
