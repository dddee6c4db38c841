/* The command fog bench migrate moves: MIB MiB of incompressible working set, pages of it
 * (chosen at random over all of it) rewritten at RATE MiB/s, until /data/stop exists; then
 * it prints a checksum of the whole set and exits 0.
 * Usage: bench_migrate_cmd MIB RATE
 * Build: zig cc -target wasm32-wasi -O2 bench_migrate_cmd.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAGE 65536

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void scribble(uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = next();
        memcpy(p + i, &v, 8);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_migrate_cmd MIB RATE\n");
        return 2;
    }
    size_t size = (size_t)atoi(argv[1]) << 20;
    double rate = atof(argv[2]) * (1 << 20);
    size_t pages = size / PAGE;
    /* Straight from memory.grow: malloc would grow linear memory by about twice as much. */
    size_t base = __builtin_wasm_memory_grow(0, pages);
    uint8_t *state = base == (size_t)-1 ? NULL : (uint8_t *)(base * PAGE);
    if (!state || !pages) {
        fprintf(stderr, "no memory for %s MiB\n", argv[1]);
        return 1;
    }
    scribble(state, size);
    printf("filled %s MiB\n", argv[1]);
    fflush(stdout);
    double t0 = now();
    uint64_t written = 0, rewrites = 0;
    while (access("/data/stop", F_OK) != 0) {
        while ((double)written < (now() - t0) * rate) {
            scribble(state + (next() % pages) * PAGE, PAGE);
            written += PAGE;
            rewrites++;
        }
        usleep(5000);
    }
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t v;
        memcpy(&v, state + i, 8);
        h = (h ^ v) * 1099511628211ull;
    }
    printf("rewrote %llu pages; checksum %016llx\n", (unsigned long long)rewrites,
           (unsigned long long)h);
    return 0;
}
