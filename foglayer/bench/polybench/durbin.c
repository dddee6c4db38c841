/* durbin (PolyBench/C 4.2.1): Levinson-Durbin recursion for the Yule-Walker
 * equations (Toeplitz system). */
#include "polybench.h"

#define N PB_SIZE(40, 120, 400, 2000, 4000)

static void init_array(double *r)
{
    for (int i = 0; i < N; i++)
        r[i] = (N + 1 - i);
}

static PB_NOINLINE void kernel_durbin(double *r, double *y, double *z)
{
    double alpha, beta, sum;

    y[0] = -r[0];
    beta = 1.0;
    alpha = -r[0];

    for (int k = 1; k < N; k++) {
        beta = (1 - alpha * alpha) * beta;
        sum = 0.0;
        for (int i = 0; i < k; i++)
            sum += r[k - i - 1] * y[i];
        alpha = -(r[k] + sum) / beta;

        for (int i = 0; i < k; i++)
            z[i] = y[i] + alpha * y[k - i - 1];
        for (int i = 0; i < k; i++)
            y[i] = z[i];
        y[k] = alpha;
    }
}

int main(void)
{
    double t;
    PB_ALLOC_1D(double, r, N);
    PB_ALLOC_1D(double, y, N);
    PB_ALLOC_1D(double, z, N); /* a local array in PolyBench; on the heap here */
    init_array(r);
    PB_TIME(t, kernel_durbin(r, y, z));
    pb_checksum ck;
    pb_ck_init(&ck);
    pb_ck_doubles(&ck, y, N);
    pb_report("durbin", t, &ck);
    free(r);
    free(y);
    free(z);
    return 0;
}
