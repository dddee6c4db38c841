/* A service holding a counter that reads its secret from /run/secrets (the in-memory
 * directory of our WASI) at each call: "secret" answers the secret reversed, "add" counts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static char out[256];
static long total;

static int64_t reply(const char *p, uint32_t len) {
    return (int64_t)(((uint64_t)(uintptr_t)p << 32) | len);
}

EXPORT(fog_alloc) void *fog_alloc(uint32_t len) { return malloc(len ? len : 1); }
EXPORT(fog_free) void fog_free(void *p, uint32_t len) { (void)len; free(p); }

EXPORT(secret) int64_t secret(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    char buf[200];
    FILE *f = fopen("/run/secrets/db_password", "r");
    if (!f) return reply("no secret", 9);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i < n; i++) out[i] = buf[n - 1 - i];
    return reply(out, (uint32_t)n);
}

EXPORT(add) int64_t add(const char *p, uint32_t len) {
    char tmp[32] = {0};
    memcpy(tmp, p, len < 31 ? len : 31);
    total += atol(tmp);
    int n = snprintf(out, sizeof out, "%ld", total);
    return reply(out, (uint32_t)n);
}
