/* A service with a file kept open in its volume /data (service ABI: docs/service-abi.md).
 * append: writes the payload and a newline to /data/journal.txt through one FILE* that stays
 * open between calls -> bytes written so far; pad: as many pseudo-random letters as the
 * payload's number, and a newline (a big journal in one call); read: the whole journal. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static FILE *journal;
static char *out;
static long written;

static int64_t reply(const char *p, uint32_t len) {
    return (int64_t)(((uint64_t)(uintptr_t)p << 32) | len);
}

EXPORT(fog_alloc) void *fog_alloc(uint32_t len) { return malloc(len ? len : 1); }
EXPORT(fog_free) void fog_free(void *p, uint32_t len) { (void)len; free(p); }

EXPORT(append) int64_t append(const char *p, uint32_t len) {
    static char num[24];
    if (!journal && !(journal = fopen("/data/journal.txt", "a")))
        return (int64_t)((uint64_t)reply("cannot open", 11) | (1ULL << 63));
    fwrite(p, 1, len, journal);
    fputc('\n', journal);
    fflush(journal);
    written += len + 1;
    return reply(num, (uint32_t)snprintf(num, sizeof num, "%ld", written));
}

EXPORT(pad) int64_t pad(const char *p, uint32_t len) {
    static char num[24], block[4096];
    static uint32_t seed = 12345;
    char digits[24] = {0};
    memcpy(digits, p, len < sizeof digits - 1 ? len : sizeof digits - 1);
    long n = atol(digits);
    if (!journal && !(journal = fopen("/data/journal.txt", "a")))
        return (int64_t)((uint64_t)reply("cannot open", 11) | (1ULL << 63));
    for (long done = 0; done < n;) {
        long k = n - done < (long)sizeof block ? n - done : (long)sizeof block;
        for (long i = 0; i < k; i++) {
            seed = seed * 1103515245u + 12345u;
            block[i] = (char)('a' + (seed >> 16) % 26);
        }
        fwrite(block, 1, (size_t)k, journal);
        done += k;
    }
    fputc('\n', journal);
    fflush(journal);
    written += n + 1;
    return reply(num, (uint32_t)snprintf(num, sizeof num, "%ld", written));
}

EXPORT(read) int64_t read_all(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    FILE *f = fopen("/data/journal.txt", "r");
    if (!f)
        return reply("", 0);
    free(out);
    out = malloc(written + 1);
    size_t n = fread(out, 1, written + 1, f);
    fclose(f);
    return reply(out, (uint32_t)n);
}
