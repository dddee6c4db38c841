/* symm (PolyBench/C 4.2.1): C := alpha*A*B + beta*C, A symmetric (only its lower
 * triangle is read). */
#include "polybench.h"

#define M PB_SIZE(20, 60, 200, 1000, 2000)
#define N PB_SIZE(30, 80, 240, 1200, 2600)

static void init_array(double *alpha, double *beta, double (*C)[N], double (*A)[M],
                       double (*B)[N])
{
    *alpha = 1.5;
    *beta = 1.2;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            C[i][j] = (double)((i + j) % 100) / M;
            B[i][j] = (double)((N + i - j) % 100) / M;
        }
    for (int i = 0; i < M; i++) {
        for (int j = 0; j <= i; j++)
            A[i][j] = (double)((i + j) % 100) / M;
        for (int j = i + 1; j < M; j++)
            A[i][j] = -999; /* never read */
    }
}

static PB_NOINLINE void kernel_symm(double alpha, double beta, double (*C)[N], double (*A)[M],
                                    double (*B)[N])
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double temp2 = 0;
            for (int k = 0; k < i; k++) {
                C[k][j] += alpha * B[i][j] * A[i][k];
                temp2 += B[k][j] * A[i][k];
            }
            C[i][j] = beta * C[i][j] + alpha * B[i][j] * A[i][i] + alpha * temp2;
        }
}

int main(void)
{
    double alpha, beta, t;
    PB_ALLOC_2D(double, C, M, N);
    PB_ALLOC_2D(double, A, M, M);
    PB_ALLOC_2D(double, B, M, N);
    init_array(&alpha, &beta, C, A, B);
    PB_TIME(t, kernel_symm(alpha, beta, C, A, B));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &C[0][0], (size_t)M * N);
    pb_report("symm", t, &ck);
    free(C);
    free(A);
    free(B);
    return 0;
}
