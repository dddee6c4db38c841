/* gemm (PolyBench/C 4.2.1): C := alpha*A*B + beta*C. */
#include "polybench.h"

#define NI PB_SIZE(20, 60, 200, 1000, 2000)
#define NJ PB_SIZE(25, 70, 220, 1100, 2300)
#define NK PB_SIZE(30, 80, 240, 1200, 2600)

static void init_array(double *alpha, double *beta, double (*C)[NJ], double (*A)[NK],
                       double (*B)[NJ])
{
    *alpha = 1.5;
    *beta = 1.2;
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NJ; j++)
            C[i][j] = (double)((i * j + 1) % NI) / NI;
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NK; j++)
            A[i][j] = (double)(i * (j + 1) % NK) / NK;
    for (int i = 0; i < NK; i++)
        for (int j = 0; j < NJ; j++)
            B[i][j] = (double)(i * (j + 2) % NJ) / NJ;
}

static PB_NOINLINE void kernel_gemm(double alpha, double beta, double (*C)[NJ],
                                    double (*A)[NK], double (*B)[NJ])
{
    for (int i = 0; i < NI; i++) {
        for (int j = 0; j < NJ; j++)
            C[i][j] *= beta;
        for (int k = 0; k < NK; k++)
            for (int j = 0; j < NJ; j++)
                C[i][j] += alpha * A[i][k] * B[k][j];
    }
}

int main(void)
{
    double alpha, beta, t;
    PB_ALLOC_2D(double, C, NI, NJ);
    PB_ALLOC_2D(double, A, NI, NK);
    PB_ALLOC_2D(double, B, NK, NJ);
    init_array(&alpha, &beta, C, A, B);
    PB_TIME(t, kernel_gemm(alpha, beta, C, A, B));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &C[0][0], (size_t)NI * NJ);
    pb_report("gemm", t, &ck);
    free(C);
    free(A);
    free(B);
    return 0;
}
