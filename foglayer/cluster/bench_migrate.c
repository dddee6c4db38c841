/* The service fog bench migrate moves: STATE MiB of incompressible state in linear memory,
 * a slice of it rewritten by every call (service ABI: docs/service-abi.md).
 *   fill "MiB"  allocate and fill the state -> "MiB"
 *   touch ""    rewrite the next page of the state (a ring) -> the call's number "N"
 *   sum ""      a checksum of the whole state -> "hex"
 * Build: zig cc -target wasm32-wasi -O2 -mexec-model=reactor bench_migrate.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define PAGE 65536

static uint8_t *state;
static size_t size, cursor;
static uint64_t calls, rng = 0x9E3779B97F4A7C15ull;
static char out[32];

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

static int64_t reply(int n) { return (int64_t)(((uint64_t)(uintptr_t)out << 32) | (uint32_t)n); }

EXPORT(fog_alloc) void *fog_alloc(uint32_t len) { return malloc(len ? len : 1); }
EXPORT(fog_free) void fog_free(void *p, uint32_t len) { (void)len; free(p); }

EXPORT(fill) int64_t fill(const char *p, uint32_t len)
{
    char tmp[16] = {0};
    memcpy(tmp, p, len < 15 ? len : 15);
    size = (size_t)atoi(tmp) << 20;
    free(state);
    state = malloc(size);
    if (!state)
        return reply(snprintf(out, sizeof out, "no memory"));
    scribble(state, size);
    return reply(snprintf(out, sizeof out, "%zu", size >> 20));
}

EXPORT(touch) int64_t touch(const char *p, uint32_t len)
{
    (void)p;
    (void)len;
    if (size) {
        scribble(state + cursor, PAGE);
        cursor = (cursor + PAGE) % size;
    }
    return reply(snprintf(out, sizeof out, "%llu", (unsigned long long)++calls));
}

EXPORT(sum) int64_t sum(const char *p, uint32_t len)
{
    (void)p;
    (void)len;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t v;
        memcpy(&v, state + i, 8);
        h = (h ^ v) * 1099511628211ull;
    }
    return reply(snprintf(out, sizeof out, "%016llx", (unsigned long long)h));
}
