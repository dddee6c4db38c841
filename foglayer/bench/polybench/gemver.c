/* gemver (PolyBench/C 4.2.1): A := A + u1*v1' + u2*v2'; x := x + beta*A'*y + z;
 * w := w + alpha*A*x. */
#include "polybench.h"

#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double *alpha, double *beta, double (*A)[N], double *u1, double *v1,
                       double *u2, double *v2, double *w, double *x, double *y, double *z)
{
    *alpha = 1.5;
    *beta = 1.2;
    double fn = (double)N;
    for (int i = 0; i < N; i++) {
        u1[i] = i;
        u2[i] = ((i + 1) / fn) / 2.0;
        v1[i] = ((i + 1) / fn) / 4.0;
        v2[i] = ((i + 1) / fn) / 6.0;
        y[i] = ((i + 1) / fn) / 8.0;
        z[i] = ((i + 1) / fn) / 9.0;
        x[i] = 0.0;
        w[i] = 0.0;
        for (int j = 0; j < N; j++)
            A[i][j] = (double)(i * j % N) / N;
    }
}

static PB_NOINLINE void kernel_gemver(double alpha, double beta, double (*A)[N], double *u1,
                                      double *v1, double *u2, double *v2, double *w,
                                      double *x, double *y, double *z)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            A[i][j] = A[i][j] + u1[i] * v1[j] + u2[i] * v2[j];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            x[i] = x[i] + beta * A[j][i] * y[j];
    for (int i = 0; i < N; i++)
        x[i] = x[i] + z[i];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            w[i] = w[i] + alpha * A[i][j] * x[j];
}

int main(void)
{
    double alpha, beta, t;
    PB_ALLOC_2D(double, A, N, N);
    PB_ALLOC_1D(double, u1, N);
    PB_ALLOC_1D(double, v1, N);
    PB_ALLOC_1D(double, u2, N);
    PB_ALLOC_1D(double, v2, N);
    PB_ALLOC_1D(double, w, N);
    PB_ALLOC_1D(double, x, N);
    PB_ALLOC_1D(double, y, N);
    PB_ALLOC_1D(double, z, N);
    init_array(&alpha, &beta, A, u1, v1, u2, v2, w, x, y, z);
    PB_TIME(t, kernel_gemver(alpha, beta, A, u1, v1, u2, v2, w, x, y, z));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, w, N);
    pb_report("gemver", t, &ck);
    free(A);
    free(u1);
    free(v1);
    free(u2);
    free(v2);
    free(w);
    free(x);
    free(y);
    free(z);
    return 0;
}
