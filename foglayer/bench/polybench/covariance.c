/* covariance (PolyBench/C 4.2.1): sample covariance matrix of the M columns of
 * an N x M data matrix. */
#include "polybench.h"

#define M PB_SIZE(28, 80, 240, 1200, 2600)
#define N PB_SIZE(32, 100, 260, 1400, 3000)

static void init_array(double *float_n, double (*data)[M])
{
    *float_n = (double)N;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++)
            data[i][j] = ((double)i * j) / M;
}

static PB_NOINLINE void kernel_covariance(double float_n, double (*data)[M], double (*cov)[M],
                                          double *mean)
{
    for (int j = 0; j < M; j++) {
        mean[j] = 0.0;
        for (int i = 0; i < N; i++)
            mean[j] += data[i][j];
        mean[j] /= float_n;
    }

    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++)
            data[i][j] -= mean[j];

    for (int i = 0; i < M; i++)
        for (int j = i; j < M; j++) {
            cov[i][j] = 0.0;
            for (int k = 0; k < N; k++)
                cov[i][j] += data[k][i] * data[k][j];
            cov[i][j] /= (float_n - 1.0);
            cov[j][i] = cov[i][j];
        }
}

int main(void)
{
    double float_n, t;
    PB_ALLOC_2D(double, data, N, M);
    PB_ALLOC_2D(double, cov, M, M);
    PB_ALLOC_1D(double, mean, M);
    init_array(&float_n, data);
    PB_TIME(t, kernel_covariance(float_n, data, cov, mean));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &cov[0][0], (size_t)M * M);
    pb_report("covariance", t, &ck);
    free(data);
    free(cov);
    free(mean);
    return 0;
}
