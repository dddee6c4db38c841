/* doitgen (PolyBench/C 4.2.1): multiresolution analysis kernel (MADNESS),
 * A[r][q][:] := A[r][q][:] * C4. */
#include "polybench.h"

#define NQ PB_SIZE(8, 20, 40, 140, 220)
#define NR PB_SIZE(10, 25, 50, 150, 250)
#define NP PB_SIZE(12, 30, 60, 160, 270)

static void init_array(double (*A)[NQ][NP], double (*C4)[NP])
{
    for (int i = 0; i < NR; i++)
        for (int j = 0; j < NQ; j++)
            for (int k = 0; k < NP; k++)
                A[i][j][k] = (double)((i * j + k) % NP) / NP;
    for (int i = 0; i < NP; i++)
        for (int j = 0; j < NP; j++)
            C4[i][j] = (double)(i * j % NP) / NP;
}

static PB_NOINLINE void kernel_doitgen(double (*A)[NQ][NP], double (*C4)[NP], double *sum)
{
    for (int r = 0; r < NR; r++)
        for (int q = 0; q < NQ; q++) {
            for (int p = 0; p < NP; p++) {
                sum[p] = 0.0;
                for (int s = 0; s < NP; s++)
                    sum[p] += A[r][q][s] * C4[s][p];
            }
            for (int p = 0; p < NP; p++)
                A[r][q][p] = sum[p];
        }
}

int main(void)
{
    double t;
    PB_ALLOC_3D(double, A, NR, NQ, NP);
    PB_ALLOC_1D(double, sum, NP);
    PB_ALLOC_2D(double, C4, NP, NP);
    init_array(A, C4);
    PB_TIME(t, kernel_doitgen(A, C4, sum));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &A[0][0][0], (size_t)NR * NQ * NP);
    pb_report("doitgen", t, &ck);
    free(A);
    free(sum);
    free(C4);
    return 0;
}
