/* The example service: a key-value store held in linear memory.
 *
 * It follows foglayer's service ABI (docs/service-abi.md):
 *   fog_alloc(len) -> ptr       a payload buffer; the host keeps it for later calls that fit
 *   fog_free(ptr, len)          the host gives a buffer back before asking for a bigger one
 *   NAME(ptr, len) -> i64       a service function: the payload in, (ptr << 32 | len) out;
 *                               bit 63 set means an error, whose message is at ptr/len
 *
 * Functions: put "key=value", get "key", delete "key", count "" -> "N", keys "" -> "k1\nk2".
 * Build: zig cc -target wasm32-wasi -O2 -mexec-model=reactor kvstore.c -o kvstore.wasm
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define NBUCKETS 1024

struct entry {
    struct entry *next;
    size_t klen, vlen;
    char *key, *val;
};

static struct entry *buckets[NBUCKETS];
static long entries;
static char *out;
static size_t out_cap;

static uint32_t hash(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h % NBUCKETS;
}

static char *reserve(size_t n) {
    if (n > out_cap) {
        size_t cap = out_cap ? out_cap : 256;
        while (cap < n) cap *= 2;
        char *p = realloc(out, cap);
        if (!p) return NULL;
        out = p;
        out_cap = cap;
    }
    return out;
}

static int64_t reply(const char *data, size_t len) {
    char *p = reserve(len + 1);
    if (!p) __builtin_trap();
    memcpy(p, data, len);
    return (int64_t)(((uint64_t)(uintptr_t)p << 32) | (uint32_t)len);
}

static int64_t error(const char *msg) {
    return (int64_t)((uint64_t)reply(msg, strlen(msg)) | (1ULL << 63));
}

static struct entry **find(const char *key, size_t klen) {
    struct entry **e = &buckets[hash(key, klen)];
    while (*e && !((*e)->klen == klen && memcmp((*e)->key, key, klen) == 0)) e = &(*e)->next;
    return e;
}

EXPORT(fog_alloc) void *fog_alloc(uint32_t len) { return malloc(len ? len : 1); }
EXPORT(fog_free) void fog_free(void *ptr, uint32_t len) { (void)len; free(ptr); }

EXPORT(put) int64_t put(const char *p, uint32_t len) {
    const char *eq = memchr(p, '=', len);
    if (!eq || eq == p) return error("put: expected key=value");
    size_t klen = (size_t)(eq - p), vlen = len - klen - 1;
    struct entry **slot = find(p, klen), *e = *slot;
    char *val = malloc(vlen ? vlen : 1);
    if (!val) return error("put: out of memory");
    memcpy(val, eq + 1, vlen);
    if (e) {
        free(e->val);
    } else {
        e = calloc(1, sizeof *e);
        char *key = malloc(klen);
        if (!e || !key) return error("put: out of memory");
        memcpy(key, p, klen);
        e->key = key;
        e->klen = klen;
        *slot = e;
        entries++;
    }
    e->val = val;
    e->vlen = vlen;
    return reply("ok", 2);
}

EXPORT(get) int64_t get(const char *p, uint32_t len) {
    struct entry *e = *find(p, len);
    if (!e) return error("no such key");
    return reply(e->val, e->vlen);
}

EXPORT(delete) int64_t delete(const char *p, uint32_t len) {
    struct entry **slot = find(p, len), *e = *slot;
    if (!e) return error("no such key");
    *slot = e->next;
    free(e->key);
    free(e->val);
    free(e);
    entries--;
    return reply("ok", 2);
}

EXPORT(count) int64_t count(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%ld", entries);
    return reply(buf, (size_t)n);
}

EXPORT(keys) int64_t keys(const char *p, uint32_t len) {
    (void)p;
    (void)len;
    size_t total = 0;
    for (int i = 0; i < NBUCKETS; i++)
        for (struct entry *e = buckets[i]; e; e = e->next) total += e->klen + 1;
    char *o = reserve(total + 1);
    if (!o) return error("keys: out of memory");
    size_t at = 0;
    for (int i = 0; i < NBUCKETS; i++)
        for (struct entry *e = buckets[i]; e; e = e->next) {
            memcpy(o + at, e->key, e->klen);
            at += e->klen;
            o[at++] = '\n';
        }
    return (int64_t)(((uint64_t)(uintptr_t)o << 32) | (uint32_t)(at ? at - 1 : 0));
}
