/* trisolv (PolyBench/C 4.2.1): forward substitution, solve L*x = b with L lower
 * triangular. */
#include "polybench.h"

#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double (*L)[N], double *x, double *b)
{
    for (int i = 0; i < N; i++) {
        x[i] = -999;
        b[i] = i;
        for (int j = 0; j <= i; j++)
            L[i][j] = (double)(i + N - j + 1) * 2 / N;
    }
}

static PB_NOINLINE void kernel_trisolv(double (*L)[N], double *x, double *b)
{
    for (int i = 0; i < N; i++) {
        x[i] = b[i];
        for (int j = 0; j < i; j++)
            x[i] -= L[i][j] * x[j];
        x[i] = x[i] / L[i][i];
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, L, N, N);
    PB_ALLOC_1D(double, x, N);
    PB_ALLOC_1D(double, b, N);
    init_array(L, x, b);
    PB_TIME(t, kernel_trisolv(L, x, b));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, x, N);
    pb_report("trisolv", t, &ck);
    free(L);
    free(x);
    free(b);
    return 0;
}
