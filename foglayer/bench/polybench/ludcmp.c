/* ludcmp (PolyBench/C 4.2.1): LU decomposition followed by forward and backward
 * substitution to solve A*x = b. */
#include "polybench.h"

#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double (*A)[N], double *b, double *x, double *y)
{
    double fn = (double)N;
    for (int i = 0; i < N; i++) {
        x[i] = 0;
        y[i] = 0;
        b[i] = (i + 1) / fn / 2.0 + 4;
    }
    pb_init_spd(N, &A[0][0]);
}

static PB_NOINLINE void kernel_ludcmp(double (*A)[N], double *b, double *x, double *y)
{
    double w;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < i; j++) {
            w = A[i][j];
            for (int k = 0; k < j; k++)
                w -= A[i][k] * A[k][j];
            A[i][j] = w / A[j][j];
        }
        for (int j = i; j < N; j++) {
            w = A[i][j];
            for (int k = 0; k < i; k++)
                w -= A[i][k] * A[k][j];
            A[i][j] = w;
        }
    }
    for (int i = 0; i < N; i++) {
        w = b[i];
        for (int j = 0; j < i; j++)
            w -= A[i][j] * y[j];
        y[i] = w;
    }
    for (int i = N - 1; i >= 0; i--) {
        w = y[i];
        for (int j = i + 1; j < N; j++)
            w -= A[i][j] * x[j];
        x[i] = w / A[i][i];
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, N, N);
    PB_ALLOC_1D(double, b, N);
    PB_ALLOC_1D(double, x, N);
    PB_ALLOC_1D(double, y, N);
    init_array(A, b, x, y);
    PB_TIME(t, kernel_ludcmp(A, b, x, y));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, x, N);
    pb_report("ludcmp", t, &ck);
    free(A);
    free(b);
    free(x);
    free(y);
    return 0;
}
