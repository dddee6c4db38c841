/* adi (PolyBench/C 4.2.1): Alternating Direction Implicit solver for 2-D heat
 * diffusion (column sweep then row sweep, each a tridiagonal solve). */
#include "polybench.h"

#define TSTEPS PB_SIZE(20, 40, 100, 500, 1000)
#define N PB_SIZE(20, 60, 200, 1000, 2000)

static void init_array(double (*u)[N])
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            u[i][j] = (double)(i + N - j) / N;
}

static PB_NOINLINE void kernel_adi(double (*u)[N], double (*v)[N], double (*p)[N],
                                   double (*q)[N])
{
    double DX, DY, DT;
    double B1, B2;
    double mul1, mul2;
    double a, b, c, d, e, f;

    DX = 1.0 / (double)N;
    DY = 1.0 / (double)N;
    DT = 1.0 / (double)TSTEPS;
    B1 = 2.0;
    B2 = 1.0;
    mul1 = B1 * DT / (DX * DX);
    mul2 = B2 * DT / (DY * DY);

    a = -mul1 / 2.0;
    b = 1.0 + mul1;
    c = a;
    d = -mul2 / 2.0;
    e = 1.0 + mul2;
    f = d;

    for (int t = 1; t <= TSTEPS; t++) {
        /* Column sweep */
        for (int i = 1; i < N - 1; i++) {
            v[0][i] = 1.0;
            p[i][0] = 0.0;
            q[i][0] = v[0][i];
            for (int j = 1; j < N - 1; j++) {
                p[i][j] = -c / (a * p[i][j - 1] + b);
                q[i][j] = (-d * u[j][i - 1] + (1.0 + 2.0 * d) * u[j][i] - f * u[j][i + 1] -
                           a * q[i][j - 1]) /
                          (a * p[i][j - 1] + b);
            }
            v[N - 1][i] = 1.0;
            for (int j = N - 2; j >= 1; j--)
                v[j][i] = p[i][j] * v[j + 1][i] + q[i][j];
        }
        /* Row sweep */
        for (int i = 1; i < N - 1; i++) {
            u[i][0] = 1.0;
            p[i][0] = 0.0;
            q[i][0] = u[i][0];
            for (int j = 1; j < N - 1; j++) {
                p[i][j] = -f / (d * p[i][j - 1] + e);
                q[i][j] = (-a * v[i - 1][j] + (1.0 + 2.0 * a) * v[i][j] - c * v[i + 1][j] -
                           d * q[i][j - 1]) /
                          (d * p[i][j - 1] + e);
            }
            u[i][N - 1] = 1.0;
            for (int j = N - 2; j >= 1; j--)
                u[i][j] = p[i][j] * u[i][j + 1] + q[i][j];
        }
    }
}

int main(void)
{
    double t;
    PB_ALLOC_2D(double, u, N, N);
    PB_ALLOC_2D(double, v, N, N);
    PB_ALLOC_2D(double, p, N, N);
    PB_ALLOC_2D(double, q, N, N);
    init_array(u);
    PB_TIME(t, kernel_adi(u, v, p, q));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &u[0][0], (size_t)N * N);
    pb_report("adi", t, &ck);
    free(u);
    free(v);
    free(p);
    free(q);
    return 0;
}
