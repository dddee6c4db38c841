/* mvt (PolyBench/C 4.2.1): x1 := x1 + A*y_1; x2 := x2 + A'*y_2. */
#include "polybench.h"

#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double *x1, double *x2, double *y_1, double *y_2, double (*A)[N])
{
    for (int i = 0; i < N; i++) {
        x1[i] = (double)(i % N) / N;
        x2[i] = (double)((i + 1) % N) / N;
        y_1[i] = (double)((i + 3) % N) / N;
        y_2[i] = (double)((i + 4) % N) / N;
        for (int j = 0; j < N; j++)
            A[i][j] = (double)(i * j % N) / N;
    }
}

static PB_NOINLINE void kernel_mvt(double *x1, double *x2, double *y_1, double *y_2,
                                   double (*A)[N])
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            x1[i] = x1[i] + A[i][j] * y_1[j];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            x2[i] = x2[i] + A[j][i] * y_2[j];
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, N, N);
    PB_ALLOC_1D(double, x1, N);
    PB_ALLOC_1D(double, x2, N);
    PB_ALLOC_1D(double, y_1, N);
    PB_ALLOC_1D(double, y_2, N);
    init_array(x1, x2, y_1, y_2, A);
    PB_TIME(t, kernel_mvt(x1, x2, y_1, y_2, A));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, x1, N);
    pb_ck_doubles(&ck, x2, N);
    pb_report("mvt", t, &ck);
    free(A);
    free(x1);
    free(x2);
    free(y_1);
    free(y_2);
    return 0;
}
