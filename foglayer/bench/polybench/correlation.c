/* correlation (PolyBench/C 4.2.1): Pearson correlation matrix of the M columns
 * of an N x M data matrix. */
#include "polybench.h"

#define M PB_SIZE(28, 80, 240, 1200, 2600)
#define N PB_SIZE(32, 100, 260, 1400, 3000)

static void init_array(double *float_n, double (*data)[M])
{
    *float_n = (double)N;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++)
            data[i][j] = (double)(i * j) / M + i;
}

static PB_NOINLINE void kernel_correlation(double float_n, double (*data)[M], double (*corr)[M],
                                          double *mean, double *stddev)
{
    double eps = 0.1;

    for (int j = 0; j < M; j++) {
        mean[j] = 0.0;
        for (int i = 0; i < N; i++)
            mean[j] += data[i][j];
        mean[j] /= float_n;
    }

    for (int j = 0; j < M; j++) {
        stddev[j] = 0.0;
        for (int i = 0; i < N; i++)
            stddev[j] += (data[i][j] - mean[j]) * (data[i][j] - mean[j]);
        stddev[j] /= float_n;
        stddev[j] = sqrt(stddev[j]);
        /* Near-zero standard deviations would cause a division by zero below. */
        stddev[j] = stddev[j] <= eps ? 1.0 : stddev[j];
    }

    /* Center and reduce the column vectors. */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) {
            data[i][j] -= mean[j];
            data[i][j] /= sqrt(float_n) * stddev[j];
        }

    /* The M x M correlation matrix. */
    for (int i = 0; i < M - 1; i++) {
        corr[i][i] = 1.0;
        for (int j = i + 1; j < M; j++) {
            corr[i][j] = 0.0;
            for (int k = 0; k < N; k++)
                corr[i][j] += (data[k][i] * data[k][j]);
            corr[j][i] = corr[i][j];
        }
    }
    corr[M - 1][M - 1] = 1.0;
}

int main(void)
{
    double float_n, t;
    PB_ALLOC_2D(double, data, N, M);
    PB_ALLOC_2D(double, corr, M, M);
    PB_ALLOC_1D(double, mean, M);
    PB_ALLOC_1D(double, stddev, M);
    init_array(&float_n, data);
    PB_TIME(t, kernel_correlation(float_n, data, corr, mean, stddev));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, &corr[0][0], (size_t)M * M);
    pb_report("correlation", t, &ck);
    free(data);
    free(corr);
    free(mean);
    free(stddev);
    return 0;
}
