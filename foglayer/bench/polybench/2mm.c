/* 2mm (PolyBench/C 4.2.1): D := alpha*A*B*C + beta*D. */
#include "polybench.h"

#define NI PB_SIZE(16, 40, 180, 800, 1600)
#define NJ PB_SIZE(18, 50, 190, 900, 1800)
#define NK PB_SIZE(22, 70, 210, 1100, 2200)
#define NL PB_SIZE(24, 80, 220, 1200, 2400)

static void init_array(double *alpha, double *beta, double (*A)[NK], double (*B)[NJ],
                       double (*C)[NL], double (*D)[NL])
{
    *alpha = 1.5;
    *beta = 1.2;
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NK; j++)
            A[i][j] = (double)((i * j + 1) % NI) / NI;
    for (int i = 0; i < NK; i++)
        for (int j = 0; j < NJ; j++)
            B[i][j] = (double)(i * (j + 1) % NJ) / NJ;
    for (int i = 0; i < NJ; i++)
        for (int j = 0; j < NL; j++)
            C[i][j] = (double)((i * (j + 3) + 1) % NL) / NL;
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NL; j++)
            D[i][j] = (double)(i * (j + 2) % NK) / NK;
}

static PB_NOINLINE void kernel_2mm(double alpha, double beta, double (*tmp)[NJ],
                                   double (*A)[NK], double (*B)[NJ], double (*C)[NL],
                                   double (*D)[NL])
{
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NJ; j++) {
            tmp[i][j] = 0.0;
            for (int k = 0; k < NK; ++k)
                tmp[i][j] += alpha * A[i][k] * B[k][j];
        }
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NL; j++) {
            D[i][j] *= beta;
            for (int k = 0; k < NJ; ++k)
                D[i][j] += tmp[i][k] * C[k][j];
        }
}

int main(void)
{
    double alpha, beta, t;
    PB_ALLOC_2D(double, tmp, NI, NJ);
    PB_ALLOC_2D(double, A, NI, NK);
    PB_ALLOC_2D(double, B, NK, NJ);
    PB_ALLOC_2D(double, C, NJ, NL);
    PB_ALLOC_2D(double, D, NI, NL);
    init_array(&alpha, &beta, A, B, C, D);
    PB_TIME(t, kernel_2mm(alpha, beta, tmp, A, B, C, D));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &D[0][0], (size_t)NI * NL);
    pb_report("2mm", t, &ck);
    free(tmp);
    free(A);
    free(B);
    free(C);
    free(D);
    return 0;
}
