/* heat-3d (PolyBench/C 4.2.1): 3-D heat equation, explicit 7-point stencil,
 * ping-ponging between A and B. */
#include "polybench.h"

#define TSTEPS PB_SIZE(20, 40, 100, 500, 1000)
#define N PB_SIZE(10, 20, 40, 120, 200)

static void init_array(double (*A)[N][N], double (*B)[N][N])
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            for (int k = 0; k < N; k++)
                A[i][j][k] = B[i][j][k] = (double)(i + j + (N - k)) * 10 / (N);
}

static PB_NOINLINE void kernel_heat_3d(double (*A)[N][N], double (*B)[N][N])
{
    for (int t = 1; t <= TSTEPS; t++) {
        for (int i = 1; i < N - 1; i++)
            for (int j = 1; j < N - 1; j++)
                for (int k = 1; k < N - 1; k++)
                    B[i][j][k] = 0.125 * (A[i + 1][j][k] - 2.0 * A[i][j][k] + A[i - 1][j][k]) +
                                 0.125 * (A[i][j + 1][k] - 2.0 * A[i][j][k] + A[i][j - 1][k]) +
                                 0.125 * (A[i][j][k + 1] - 2.0 * A[i][j][k] + A[i][j][k - 1]) +
                                 A[i][j][k];
        for (int i = 1; i < N - 1; i++)
            for (int j = 1; j < N - 1; j++)
                for (int k = 1; k < N - 1; k++)
                    A[i][j][k] = 0.125 * (B[i + 1][j][k] - 2.0 * B[i][j][k] + B[i - 1][j][k]) +
                                 0.125 * (B[i][j + 1][k] - 2.0 * B[i][j][k] + B[i][j - 1][k]) +
                                 0.125 * (B[i][j][k + 1] - 2.0 * B[i][j][k] + B[i][j][k - 1]) +
                                 B[i][j][k];
    }
}

int main(void)
{
    double t;
    PB_ALLOC_3D(double, A, N, N, N);
    PB_ALLOC_3D(double, B, N, N, N);
    init_array(A, B);
    PB_TIME(t, kernel_heat_3d(A, B));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &A[0][0][0], (size_t)N * N * N);
    pb_report("heat-3d", t, &ck);
    free(A);
    free(B);
    return 0;
}
