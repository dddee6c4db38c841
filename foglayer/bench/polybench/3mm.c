/* 3mm (PolyBench/C 4.2.1): E := A*B; F := C*D; G := E*F. */
#include "polybench.h"

#define NI PB_SIZE(16, 40, 180, 800, 1600)
#define NJ PB_SIZE(18, 50, 190, 900, 1800)
#define NK PB_SIZE(20, 60, 200, 1000, 2000)
#define NL PB_SIZE(22, 70, 210, 1100, 2200)
#define NM PB_SIZE(24, 80, 220, 1200, 2400)

static void init_array(double (*A)[NK], double (*B)[NJ], double (*C)[NM], double (*D)[NL])
{
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NK; j++)
            A[i][j] = (double)((i * j + 1) % NI) / (5 * NI);
    for (int i = 0; i < NK; i++)
        for (int j = 0; j < NJ; j++)
            B[i][j] = (double)((i * (j + 1) + 2) % NJ) / (5 * NJ);
    for (int i = 0; i < NJ; i++)
        for (int j = 0; j < NM; j++)
            C[i][j] = (double)(i * (j + 3) % NL) / (5 * NL);
    for (int i = 0; i < NM; i++)
        for (int j = 0; j < NL; j++)
            D[i][j] = (double)((i * (j + 2) + 2) % NK) / (5 * NK);
}

static PB_NOINLINE void kernel_3mm(double (*E)[NJ], double (*A)[NK], double (*B)[NJ],
                                   double (*F)[NL], double (*C)[NM], double (*D)[NL],
                                   double (*G)[NL])
{
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NJ; j++) {
            E[i][j] = 0.0;
            for (int k = 0; k < NK; ++k)
                E[i][j] += A[i][k] * B[k][j];
        }
    for (int i = 0; i < NJ; i++)
        for (int j = 0; j < NL; j++) {
            F[i][j] = 0.0;
            for (int k = 0; k < NM; ++k)
                F[i][j] += C[i][k] * D[k][j];
        }
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NL; j++) {
            G[i][j] = 0.0;
            for (int k = 0; k < NJ; ++k)
                G[i][j] += E[i][k] * F[k][j];
        }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, E, NI, NJ);
    PB_ALLOC_2D(double, A, NI, NK);
    PB_ALLOC_2D(double, B, NK, NJ);
    PB_ALLOC_2D(double, F, NJ, NL);
    PB_ALLOC_2D(double, C, NJ, NM);
    PB_ALLOC_2D(double, D, NM, NL);
    PB_ALLOC_2D(double, G, NI, NL);
    init_array(A, B, C, D);
    PB_TIME(t, kernel_3mm(E, A, B, F, C, D, G));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &G[0][0], (size_t)NI * NL);
    pb_report("3mm", t, &ck);
    free(E);
    free(A);
    free(B);
    free(F);
    free(C);
    free(D);
    free(G);
    return 0;
}
