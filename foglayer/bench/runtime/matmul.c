/* Compute-bound: C = A x B for N x N doubles, i-k-j order: matmul [N] */
#include "rtbench.h"

static __attribute__((noinline)) void matmul(int n, const double *a, const double *b, double *c)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double aik = a[(size_t)i * n + k];
            for (int j = 0; j < n; j++)
                c[(size_t)i * n + j] += aik * b[(size_t)k * n + j];
        }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    if (n <= 0) rt_die("matmul", "N must be positive");
    size_t nn = (size_t)n * n;
    double *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = calloc(nn, sizeof *c);
    if (!a || !b || !c) rt_die("matmul", "out of memory");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            a[(size_t)i * n + j] = (double)((i * j + 1) % n) / n;
            b[(size_t)i * n + j] = (double)((i + 2 * j) % n) / n;
        }
    double t0 = rt_now();
    matmul(n, a, b, c);
    double t = rt_now() - t0;
    uint64_t check = rt_fnv(RT_FNV_OFFSET, c, nn * sizeof *c);
    rt_report("matmul", t, (int64_t)n, check);
    free(a);
    free(b);
    free(c);
    return 0;
}
