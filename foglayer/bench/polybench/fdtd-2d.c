/* fdtd-2d (PolyBench/C 4.2.1): 2-D finite-difference time-domain kernel
 * (electric fields ex, ey and magnetic field hz). */
#include "polybench.h"

#define TMAX PB_SIZE(20, 40, 100, 500, 1000)
#define NX PB_SIZE(20, 60, 200, 1000, 2000)
#define NY PB_SIZE(30, 80, 240, 1200, 2600)

static void init_array(double (*ex)[NY], double (*ey)[NY], double (*hz)[NY], double *fict)
{
    for (int i = 0; i < TMAX; i++)
        fict[i] = (double)i;
    for (int i = 0; i < NX; i++)
        for (int j = 0; j < NY; j++) {
            ex[i][j] = ((double)i * (j + 1)) / NX;
            ey[i][j] = ((double)i * (j + 2)) / NY;
            hz[i][j] = ((double)i * (j + 3)) / NX;
        }
}

static PB_NOINLINE void kernel_fdtd_2d(double (*ex)[NY], double (*ey)[NY], double (*hz)[NY],
                                       double *fict)
{
    for (int t = 0; t < TMAX; t++) {
        for (int j = 0; j < NY; j++)
            ey[0][j] = fict[t];
        for (int i = 1; i < NX; i++)
            for (int j = 0; j < NY; j++)
                ey[i][j] = ey[i][j] - 0.5 * (hz[i][j] - hz[i - 1][j]);
        for (int i = 0; i < NX; i++)
            for (int j = 1; j < NY; j++)
                ex[i][j] = ex[i][j] - 0.5 * (hz[i][j] - hz[i][j - 1]);
        for (int i = 0; i < NX - 1; i++)
            for (int j = 0; j < NY - 1; j++)
                hz[i][j] = hz[i][j] - 0.7 * (ex[i][j + 1] - ex[i][j] + ey[i + 1][j] - ey[i][j]);
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, ex, NX, NY);
    PB_ALLOC_2D(double, ey, NX, NY);
    PB_ALLOC_2D(double, hz, NX, NY);
    PB_ALLOC_1D(double, fict, TMAX);
    init_array(ex, ey, hz, fict);
    PB_TIME(t, kernel_fdtd_2d(ex, ey, hz, fict));
    /* PolyBench prints ex, ey, hz. */
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &ex[0][0], (size_t)NX * NY);
    pb_ck_doubles(&ck, &ey[0][0], (size_t)NX * NY);
    pb_ck_doubles(&ck, &hz[0][0], (size_t)NX * NY);
    pb_report("fdtd-2d", t, &ck);
    free(ex);
    free(ey);
    free(hz);
    free(fict);
    return 0;
}
