/*
 * rtbench.h -- shared support for foglayer's runtime micro-benchmarks (`fog bench runtime`).
 *
 * Each program times its own hot loop with clock_gettime(CLOCK_MONOTONIC) and prints ONE
 * JSON line on stdout:
 *   {"bench":"<name>","time_s":<seconds>,"calls":<n>,"check":"<16 hex digits>"}
 * "check" is an FNV-1a-64 over what the program computed or read, so the harness can prove
 * that every runner did the same work. Any failure: a message on stderr and exit status 1.
 */
#ifndef FOGLAYER_RTBENCH_H
#define FOGLAYER_RTBENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RT_FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define RT_FNV_PRIME UINT64_C(0x100000001b3)

static inline uint64_t rt_fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= RT_FNV_PRIME;
    }
    return h;
}

static inline double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void rt_die(const char *name, const char *what)
{
    fprintf(stderr, "%s: %s\n", name, what);
    exit(1);
}

static inline void rt_report(const char *name, double time_s, int64_t calls, uint64_t check)
{
    printf("{\"bench\":\"%s\",\"time_s\":%.9f,\"calls\":%lld,\"check\":\"%016llx\"}\n", name,
           time_s, (long long)calls, (unsigned long long)check);
    fflush(stdout);
}

#endif /* FOGLAYER_RTBENCH_H */
