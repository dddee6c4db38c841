/* bicg (PolyBench/C 4.2.1): BiCG sub-kernel, s := A'*r; q := A*p. */
#include "polybench.h"

#define M PB_SIZE(38, 116, 390, 1900, 1800)
#define N PB_SIZE(42, 124, 410, 2100, 2200)

static void init_array(double (*A)[M], double *r, double *p)
{
    for (int i = 0; i < M; i++)
        p[i] = (double)(i % M) / M;
    for (int i = 0; i < N; i++) {
        r[i] = (double)(i % N) / N;
        for (int j = 0; j < M; j++)
            A[i][j] = (double)(i * (j + 1) % N) / N;
    }
}

static PB_NOINLINE void kernel_bicg(double (*A)[M], double *s, double *q, double *p, double *r)
{
    for (int i = 0; i < M; i++)
        s[i] = 0;
    for (int i = 0; i < N; i++) {
        q[i] = 0.0;
        for (int j = 0; j < M; j++) {
            s[j] = s[j] + r[i] * A[i][j];
            q[i] = q[i] + A[i][j] * p[j];
        }
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, N, M);
    PB_ALLOC_1D(double, s, M);
    PB_ALLOC_1D(double, q, N);
    PB_ALLOC_1D(double, p, M);
    PB_ALLOC_1D(double, r, N);
    init_array(A, r, p);
    PB_TIME(t, kernel_bicg(A, s, q, p, r));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, s, M);
    pb_ck_doubles(&ck, q, N);
    pb_report("bicg", t, &ck);
    free(A);
    free(s);
    free(q);
    free(p);
    free(r);
    return 0;
}
