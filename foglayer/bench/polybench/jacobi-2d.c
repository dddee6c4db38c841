/* jacobi-2d (PolyBench/C 4.2.1): 2-D Jacobi stencil, 5-point average. */
#include "polybench.h"

#define TSTEPS PB_SIZE(20, 40, 100, 500, 1000)
#define N PB_SIZE(30, 90, 250, 1300, 2800)

static void init_array(double (*A)[N], double (*B)[N])
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            A[i][j] = ((double)i * (j + 2) + 2) / N;
            B[i][j] = ((double)i * (j + 3) + 3) / N;
        }
}

static PB_NOINLINE void kernel_jacobi_2d(double (*A)[N], double (*B)[N])
{
    for (int t = 0; t < TSTEPS; t++) {
        for (int i = 1; i < N - 1; i++)
            for (int j = 1; j < N - 1; j++)
                B[i][j] = 0.2 * (A[i][j] + A[i][j - 1] + A[i][1 + j] + A[1 + i][j] + A[i - 1][j]);
        for (int i = 1; i < N - 1; i++)
            for (int j = 1; j < N - 1; j++)
                A[i][j] = 0.2 * (B[i][j] + B[i][j - 1] + B[i][1 + j] + B[1 + i][j] + B[i - 1][j]);
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, N, N);
    PB_ALLOC_2D(double, B, N, N);
    init_array(A, B);
    PB_TIME(t, kernel_jacobi_2d(A, B));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &A[0][0], (size_t)N * N);
    pb_report("jacobi-2d", t, &ck);
    free(A);
    free(B);
    return 0;
}
