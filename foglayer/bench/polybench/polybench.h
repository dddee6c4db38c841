/*
 * polybench.h -- shared support for the foglayer PolyBench/C 4.2.1 kernels.
 *
 * Each kernel is a standalone C file that includes this header. The header
 * provides:
 *   - dataset selection (-DMINI_DATASET ... -DEXTRALARGE_DATASET, default
 *     LARGE) and PB_SIZE(mini, small, medium, large, extralarge) to pick a
 *     per-dataset constant;
 *   - heap allocation helpers for 1-D/2-D/3-D arrays (pointer-to-array, so
 *     indexing stays A[i][j]; nothing big lives on the stack, which matters
 *     for Wasm);
 *   - a monotonic timer (clock_gettime(CLOCK_MONOTONIC));
 *   - a checksum: an FNV-1a-64 hash over the raw bytes of the output values,
 *     plus their sum in a fixed order;
 *   - the single JSON result line printed to stdout.
 *
 * Everything is static inline so it is not duplicated across the kernels.
 */
#ifndef FOGLAYER_POLYBENCH_H
#define FOGLAYER_POLYBENCH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Dataset selection                                                   */
/* ------------------------------------------------------------------ */
#if !defined(MINI_DATASET) && !defined(SMALL_DATASET) && !defined(MEDIUM_DATASET) && \
    !defined(LARGE_DATASET) && !defined(EXTRALARGE_DATASET)
#define LARGE_DATASET
#endif

#if defined(MINI_DATASET)
#define PB_DATASET_NAME "MINI"
#define PB_SIZE(mini, small, medium, large, xl) (mini)
#elif defined(SMALL_DATASET)
#define PB_DATASET_NAME "SMALL"
#define PB_SIZE(mini, small, medium, large, xl) (small)
#elif defined(MEDIUM_DATASET)
#define PB_DATASET_NAME "MEDIUM"
#define PB_SIZE(mini, small, medium, large, xl) (medium)
#elif defined(LARGE_DATASET)
#define PB_DATASET_NAME "LARGE"
#define PB_SIZE(mini, small, medium, large, xl) (large)
#else
#define PB_DATASET_NAME "EXTRALARGE"
#define PB_SIZE(mini, small, medium, large, xl) (xl)
#endif

/* ------------------------------------------------------------------ */
/* Allocation                                                          */
/* ------------------------------------------------------------------ */
/* Zero-filled, so regions PolyBench leaves uninitialised (and never reads)
 * are still deterministic. Exits with status 1 if memory runs out. */
static inline void *pb_alloc(size_t nbytes)
{
    void *p = calloc(1, nbytes ? nbytes : 1);
    if (p == NULL) {
        fprintf(stderr, "polybench: out of memory allocating %zu bytes\n", nbytes);
        exit(1);
    }
    return p;
}

/* T *name            -> name[n0]            */
#define PB_ALLOC_1D(T, name, n0) T *name = (T *)pb_alloc((size_t)(n0) * sizeof(T))
/* T (*name)[n1]      -> name[n0][n1]        */
#define PB_ALLOC_2D(T, name, n0, n1) \
    T(*name)[n1] = (T(*)[n1])pb_alloc((size_t)(n0) * (size_t)(n1) * sizeof(T))
/* T (*name)[n1][n2]  -> name[n0][n1][n2]    */
#define PB_ALLOC_3D(T, name, n0, n1, n2) \
    T(*name)[n1][n2] =                   \
        (T(*)[n1][n2])pb_alloc((size_t)(n0) * (size_t)(n1) * (size_t)(n2) * sizeof(T))

/* ------------------------------------------------------------------ */
/* Timer                                                               */
/* ------------------------------------------------------------------ */
static inline double pb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* Checksum                                                            */
/* ------------------------------------------------------------------ */
#define PB_FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define PB_FNV_PRIME UINT64_C(0x100000001b3)

typedef struct {
    uint64_t hash; /* FNV-1a-64 over the raw bytes of every value, in order */
    double sum;    /* plain left-to-right sum of every value, in order     */
} pb_checksum;

static inline void pb_ck_init(pb_checksum *ck)
{
    ck->hash = PB_FNV_OFFSET;
    ck->sum = 0.0;
}

static inline void pb_ck_bytes(pb_checksum *ck, const void *data, size_t nbytes)
{
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = ck->hash;
    for (size_t i = 0; i < nbytes; i++) {
        h ^= p[i];
        h *= PB_FNV_PRIME;
    }
    ck->hash = h;
}

/* Add n consecutive doubles (their little-endian bytes, as both x86-64 and
 * wasm32 store them). */
static inline void pb_ck_doubles(pb_checksum *ck, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pb_ck_bytes(ck, &v[i], sizeof(double));
        ck->sum += v[i];
    }
}

static inline void pb_ck_double(pb_checksum *ck, double v)
{
    pb_ck_doubles(ck, &v, 1);
}

/* Add n consecutive floats (for kernels built with float data). */
static inline void pb_ck_floats(pb_checksum *ck, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pb_ck_bytes(ck, &v[i], sizeof(float));
        ck->sum += (double)v[i];
    }
}

/* Add n consecutive 32-bit ints (for the integer kernels). */
static inline void pb_ck_ints(pb_checksum *ck, const int *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int32_t x = (int32_t)v[i];
        pb_ck_bytes(ck, &x, sizeof(x));
        ck->sum += (double)x;
    }
}

/* ------------------------------------------------------------------ */
/* Shared init step of cholesky, lu and ludcmp                         */
/* ------------------------------------------------------------------ */
/* A := A * A' for an n x n row-major matrix, bit-identical to PolyBench's
 *
 *     for (r..) for (s..) B[r][s] = 0;
 *     for (t = 0; t < n; ++t) for (r..) for (s..) B[r][s] += A[r][t] * A[s][t];
 *     A = B;
 *
 * Every B[r][s] still starts at 0 and accumulates the same products in the
 * same order (t ascending), so the result is the same to the bit; only the
 * traversal is blocked and reads a transposed copy, because PolyBench's
 * column-strided A[s][t] makes this (untimed) step take minutes at LARGE. */
static inline void pb_init_aat(int n, double *A)
{
    enum { RB = 32, SB = 512 };
    size_t nn = (size_t)n * (size_t)n;
    double *AT = (double *)pb_alloc(nn * sizeof(double));
    double *B = (double *)pb_alloc(nn * sizeof(double)); /* zero-filled */
    for (int r = 0; r < n; r++)
        for (int t = 0; t < n; t++)
            AT[(size_t)t * n + r] = A[(size_t)r * n + t];
    for (int r0 = 0; r0 < n; r0 += RB) {
        int r1 = r0 + RB < n ? r0 + RB : n;
        for (int s0 = 0; s0 < n; s0 += SB) {
            int s1 = s0 + SB < n ? s0 + SB : n;
            for (int t = 0; t < n; t++) {
                const double *at = &AT[(size_t)t * n];
                for (int r = r0; r < r1; r++) {
                    double art = A[(size_t)r * n + t];
                    double *br = &B[(size_t)r * n];
                    for (int s = s0; s < s1; s++)
                        br[s] += art * at[s];
                }
            }
        }
    }
    memcpy(A, B, nn * sizeof(double));
    free(AT);
    free(B);
}

/* The symmetric positive (semi-)definite input of cholesky, lu and ludcmp: PolyBench's
 * lower-triangular init with a unit diagonal, then A := A*A' (pb_init_aat). */
static inline void pb_init_spd(int n, double *A)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++)
            A[(size_t)i * n + j] = (double)(-j % n) / n + 1;
        for (int j = i + 1; j < n; j++)
            A[(size_t)i * n + j] = 0;
        A[(size_t)i * n + i] = 1;
    }
    pb_init_aat(n, A);
}


/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */
/* The one line on stdout. A non-finite sum (not valid JSON as a number) is
 * printed as null; the hash still covers the bytes. */
static inline void pb_report(const char *kernel, double time_s, const pb_checksum *ck)
{
    printf("{\"kernel\":\"%s\",\"dataset\":\"%s\",\"time_s\":%.9f,\"checksum\":\"%016llx\",",
           kernel, PB_DATASET_NAME, time_s, (unsigned long long)ck->hash);
    if (isfinite(ck->sum))
        printf("\"sum\":%.17g}\n", ck->sum);
    else
        printf("\"sum\":null}\n");
    fflush(stdout);
}

/* Kernels are kept out of line so the timed region is exactly the call. */
#define PB_NOINLINE __attribute__((noinline))

/* Convenience: timing brackets around the kernel call. */
#define PB_TIME(var, stmt)               \
    do {                                 \
        double pb_t0_ = pb_now();        \
        stmt;                            \
        (var) = pb_now() - pb_t0_;       \
    } while (0)

#endif /* FOGLAYER_POLYBENCH_H */
