/* bench_touch: touch N MiB of memory, say "ready", then keep working on it for a while.
 * For the pause and restore latency benchmark. Usage: bench_touch MIB ROUNDS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 16;
    long rounds = argc > 2 ? atol(argv[2]) : 20;
    size_t n = mib << 17; /* doubles */
    double *a = malloc(n * sizeof *a);
    if (!a) {
        fprintf(stderr, "bench_touch: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    /* Data like a numeric app's: smooth values with some noise (compresses to ~1/4). */
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        a[i] = (double)(i % 4096) * 0.25 + (double)((x >> 16) & 7);
    }
    printf("ready\n");
    fflush(stdout);
    double s = 0;
    for (long r = 0; r < rounds; r++)
        for (size_t i = 0; i < n; i += 512) { /* one double per 4 KiB page */
            a[i] += 1.0;
            s += a[i];
        }
    printf("done %.1f\n", s);
    return 0;
}
