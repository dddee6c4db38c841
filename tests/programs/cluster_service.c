/* A test service for the cluster tests (service ABI: docs/service-abi.md).
 * echo: the payload back; add: a counter held in memory ("N" -> new total); boom: traps;
 * quit: proc_exit(3); spin: loops forever (a timeout stops it); fail: an application error;
 * hello: writes a line to stdout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static char out[64];
static long total;

static int64_t reply(const char *p, uint32_t len) {
    return (int64_t)(((uint64_t)(uintptr_t)p << 32) | len);
}

EXPORT(fog_alloc) void *fog_alloc(uint32_t len) { return malloc(len ? len : 1); }
EXPORT(fog_free) void fog_free(void *p, uint32_t len) { (void)len; free(p); }

EXPORT(echo) int64_t echo(const char *p, uint32_t len) {
    static char *buf;
    free(buf);
    buf = malloc(len ? len : 1);
    memcpy(buf, p, len);
    return reply(buf, len);
}

EXPORT(add) int64_t add(const char *p, uint32_t len) {
    char tmp[32] = {0};
    memcpy(tmp, p, len < 31 ? len : 31);
    total += atol(tmp);
    int n = snprintf(out, sizeof out, "%ld", total);
    return reply(out, (uint32_t)n);
}

EXPORT(boom) int64_t boom(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    __builtin_trap();
}

EXPORT(quit) int64_t quit(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    exit(3);
}

EXPORT(spin) int64_t spin(const char *p, uint32_t len) {
    (void)p;
    volatile uint32_t x = len;
    for (;;) x++;
}

EXPORT(fail) int64_t fail(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    static const char msg[] = "this always fails";
    return (int64_t)((uint64_t)reply(msg, sizeof msg - 1) | (1ULL << 63));
}

EXPORT(hello) int64_t hello(const char *p, uint32_t len) {
    printf("hello from the service: %.*s\n", (int)len, p);
    fflush(stdout);
    return reply("ok", 2);
}
