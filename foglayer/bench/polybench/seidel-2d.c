/* seidel-2d (PolyBench/C 4.2.1): 2-D Gauss-Seidel stencil, 9-point average,
 * updated in place. */
#include "polybench.h"

#define TSTEPS PB_SIZE(20, 40, 100, 500, 1000)
#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double (*A)[N])
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            A[i][j] = ((double)i * (j + 2) + 2) / N;
}

static PB_NOINLINE void kernel_seidel_2d(double (*A)[N])
{
    for (int t = 0; t <= TSTEPS - 1; t++)
        for (int i = 1; i <= N - 2; i++)
            for (int j = 1; j <= N - 2; j++)
                A[i][j] = (A[i - 1][j - 1] + A[i - 1][j] + A[i - 1][j + 1] + A[i][j - 1] +
                           A[i][j] + A[i][j + 1] + A[i + 1][j - 1] + A[i + 1][j] +
                           A[i + 1][j + 1]) /
                          9.0;
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, N, N);
    init_array(A);
    PB_TIME(t, kernel_seidel_2d(A));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &A[0][0], (size_t)N * N);
    pb_report("seidel-2d", t, &ck);
    free(A);
    return 0;
}
