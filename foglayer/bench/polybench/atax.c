/* atax (PolyBench/C 4.2.1): y := A'*(A*x). */
#include "polybench.h"

#define M PB_SIZE(38, 116, 390, 1900, 1800)
#define N PB_SIZE(42, 124, 410, 2100, 2200)

static void init_array(double (*A)[N], double *x)
{
    double fn = (double)N;
    for (int i = 0; i < N; i++)
        x[i] = 1 + (i / fn);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            A[i][j] = (double)((i + j) % N) / (5 * M);
}

static PB_NOINLINE void kernel_atax(double (*A)[N], double *x, double *y, double *tmp)
{
    for (int i = 0; i < N; i++)
        y[i] = 0;
    for (int i = 0; i < M; i++) {
        tmp[i] = 0.0;
        for (int j = 0; j < N; j++)
            tmp[i] = tmp[i] + A[i][j] * x[j];
        for (int j = 0; j < N; j++)
            y[j] = y[j] + A[i][j] * tmp[i];
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, M, N);
    PB_ALLOC_1D(double, x, N);
    PB_ALLOC_1D(double, y, N);
    PB_ALLOC_1D(double, tmp, M);
    init_array(A, x);
    PB_TIME(t, kernel_atax(A, x, y, tmp));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, y, N);
    pb_report("atax", t, &ck);
    free(A);
    free(x);
    free(y);
    free(tmp);
    return 0;
}
