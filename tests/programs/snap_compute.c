/* snap_compute: a deterministic computation with loops, recursion, heap and stdio,
 * for checkpoint/restore tests. Usage: snap_compute [ROUNDS]. Exits with 3. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

__attribute__((noinline)) static uint64_t fib(int n)
{
    return n < 2 ? (uint64_t)n : fib(n - 1) + fib(n - 2);
}

static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    size_t n = 1 << 16;
    uint32_t *v = malloc(n * sizeof *v);
    double *m = calloc(64 * 64, sizeof *m);
    uint64_t total = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++)
            v[i] = (uint32_t)next();
        qsort(v, n, sizeof *v, cmp);
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < n; i += 7)
            h = (h ^ v[i]) * 1099511628211ull;
        for (int i = 0; i < 64; i++)
            for (int j = 0; j < 64; j++)
                m[i * 64 + j] = m[i * 64 + j] * 0.5 + (double)((v[i * 64 + j] >> 8) & 0xff) / 255.0;
        double s = 0;
        for (int k = 0; k < 64 * 64; k++)
            s += m[k];
        total += h + fib(18 + r % 5);
        printf("round %d: hash %016llx sum %.6f total %llu\n", r, (unsigned long long)h, s,
               (unsigned long long)total);
        if (r % 8 == 7)
            fflush(stdout);
    }
    printf("done: %llu\n", (unsigned long long)total);
    free(v);
    free(m);
    return 3;
}
