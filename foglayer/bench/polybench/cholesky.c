/* cholesky (PolyBench/C 4.2.1): in-place Cholesky factorisation A = L*L'
 * (L is written to the lower triangle of A). */
#include "polybench.h"

#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double (*A)[N])
{
    pb_init_spd(N, &A[0][0]);
}

static PB_NOINLINE void kernel_cholesky(double (*A)[N])
{
    for (int i = 0; i < N; i++) {
        /* j < i */
        for (int j = 0; j < i; j++) {
            for (int k = 0; k < j; k++)
                A[i][j] -= A[i][k] * A[j][k];
            A[i][j] /= A[j][j];
        }
        /* i == j */
        for (int k = 0; k < i; k++)
            A[i][i] -= A[i][k] * A[i][k];
        A[i][i] = sqrt(A[i][i]);
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, N, N);
    init_array(A);
    PB_TIME(t, kernel_cholesky(A));
    /* PolyBench prints the lower triangle (j <= i), row by row. */
    pb_checksum ck;
    pb_ck_init(&ck);
    for (int i = 0; i < N; i++)
        pb_ck_doubles(&ck, &A[i][0], (size_t)i + 1);
    pb_report("cholesky", t, &ck);
    free(A);
    return 0;
}
