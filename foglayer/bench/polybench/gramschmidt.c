/* gramschmidt (PolyBench/C 4.2.1): QR decomposition by modified Gram-Schmidt,
 * A (M x N) -> Q (M x N), R (N x N). */
#include "polybench.h"

#define M PB_SIZE(20, 60, 200, 1000, 2000)
#define N PB_SIZE(30, 80, 240, 1200, 2600)

static void init_array(double (*A)[N], double (*R)[N], double (*Q)[N])
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            A[i][j] = (((double)((i * j) % M) / M) * 100) + 10;
            Q[i][j] = 0.0;
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            R[i][j] = 0.0;
}

static PB_NOINLINE void kernel_gramschmidt(double (*A)[N], double (*R)[N], double (*Q)[N])
{
    for (int k = 0; k < N; k++) {
        double nrm = 0.0;
        for (int i = 0; i < M; i++)
            nrm += A[i][k] * A[i][k];
        R[k][k] = sqrt(nrm);
        for (int i = 0; i < M; i++)
            Q[i][k] = A[i][k] / R[k][k];
        for (int j = k + 1; j < N; j++) {
            R[k][j] = 0.0;
            for (int i = 0; i < M; i++)
                R[k][j] += Q[i][k] * A[i][j];
            for (int i = 0; i < M; i++)
                A[i][j] = A[i][j] - Q[i][k] * R[k][j];
        }
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, M, N);
    PB_ALLOC_2D(double, R, N, N);
    PB_ALLOC_2D(double, Q, M, N);
    init_array(A, R, Q);
    PB_TIME(t, kernel_gramschmidt(A, R, Q));
    /* PolyBench prints R, then Q. */
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &R[0][0], (size_t)N * N);
    pb_ck_doubles(&ck, &Q[0][0], (size_t)M * N);
    pb_report("gramschmidt", t, &ck);
    free(A);
    free(R);
    free(Q);
    return 0;
}
