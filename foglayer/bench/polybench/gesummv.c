/* gesummv (PolyBench/C 4.2.1): y := alpha*A*x + beta*B*x. */
#include "polybench.h"

#define N PB_SIZE(30, 90, 250, 1300, 2800)

static void init_array(double *alpha, double *beta, double (*A)[N], double (*B)[N], double *x)
{
    *alpha = 1.5;
    *beta = 1.2;
    for (int i = 0; i < N; i++) {
        x[i] = (double)(i % N) / N;
        for (int j = 0; j < N; j++) {
            A[i][j] = (double)((i * j + 1) % N) / N;
            B[i][j] = (double)((i * j + 2) % N) / N;
        }
    }
}

static PB_NOINLINE void kernel_gesummv(double alpha, double beta, double (*A)[N],
                                       double (*B)[N], double *tmp, double *x, double *y)
{
    for (int i = 0; i < N; i++) {
        tmp[i] = 0.0;
        y[i] = 0.0;
        for (int j = 0; j < N; j++) {
            tmp[i] = A[i][j] * x[j] + tmp[i];
            y[i] = B[i][j] * x[j] + y[i];
        }
        y[i] = alpha * tmp[i] + beta * y[i];
    }
}

int main(void)
{
    double alpha, beta, t;
    PB_ALLOC_2D(double, A, N, N);
    PB_ALLOC_2D(double, B, N, N);
    PB_ALLOC_1D(double, tmp, N);
    PB_ALLOC_1D(double, x, N);
    PB_ALLOC_1D(double, y, N);
    init_array(&alpha, &beta, A, B, x);
    PB_TIME(t, kernel_gesummv(alpha, beta, A, B, tmp, x, y));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, y, N);
    pb_report("gesummv", t, &ck);
    free(A);
    free(B);
    free(tmp);
    free(x);
    free(y);
    return 0;
}
