/* jacobi-1d (PolyBench/C 4.2.1): 1-D Jacobi stencil, 3-point average. */
#include "polybench.h"

#define TSTEPS PB_SIZE(20, 40, 100, 500, 1000)
#define N PB_SIZE(30, 120, 400, 2000, 4000)

static void init_array(double *A, double *B)
{
    for (int i = 0; i < N; i++) {
        A[i] = ((double)i + 2) / N;
        B[i] = ((double)i + 3) / N;
    }
}

static PB_NOINLINE void kernel_jacobi_1d(double *A, double *B)
{
    for (int t = 0; t < TSTEPS; t++) {
        for (int i = 1; i < N - 1; i++)
            B[i] = 0.33333 * (A[i - 1] + A[i] + A[i + 1]);
        for (int i = 1; i < N - 1; i++)
            A[i] = 0.33333 * (B[i - 1] + B[i] + B[i + 1]);
    }
}

int main(void)
{
    double t;
    PB_ALLOC_1D(double, A, N);
    PB_ALLOC_1D(double, B, N);
    init_array(A, B);
    PB_TIME(t, kernel_jacobi_1d(A, B));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, A, N);
    pb_report("jacobi-1d", t, &ck);
    free(A);
    free(B);
    return 0;
}
