/* lu (PolyBench/C 4.2.1): in-place LU decomposition without pivoting. */
#include "polybench.h"

#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double (*A)[N])
{
    pb_init_spd(N, &A[0][0]);
}

static PB_NOINLINE void kernel_lu(double (*A)[N])
{
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < i; j++) {
            for (int k = 0; k < j; k++)
                A[i][j] -= A[i][k] * A[k][j];
            A[i][j] /= A[j][j];
        }
        for (int j = i; j < N; j++)
            for (int k = 0; k < i; k++)
                A[i][j] -= A[i][k] * A[k][j];
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, A, N, N);
    init_array(A);
    PB_TIME(t, kernel_lu(A));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &A[0][0], (size_t)N * N);
    pb_report("lu", t, &ck);
    free(A);
    return 0;
}
