/*
** wasm_string.c -- the hot string routines for every wasm32-wasi program we build.
**
** Zig's libc for WASI implements memcmp, strlen, strcspn, memchr and strchr as plain
** byte-at-a-time loops, where a native build gets glibc's vector versions. In SQLite's
** speedtest1 that made memcmp (key comparisons) and strcspn (LIKE) cost 1.5-3x their
** native time. These do the same work 16 bytes at a time with SIMD128 when the build
** enables it (-msimd128), else 8 bytes at a time (memcmp, strlen) or with a byte-set
** bitmap (strcspn); without SIMD, memchr and strchr stay Zig's.
**
** These definitions are strong, so they replace Zig's weak ones whatever the link order
** (Zig's libc archive is loaded before the program's objects). A program that defines one
** of these itself is built again without this file (`compile_c` sees the linker's
** "duplicate symbol"), so its own definitions stay in force.
**
** Reading past a string's end: the string scans load aligned 16- (or 8-) byte blocks,
** which never cross a 64 KiB Wasm page, so a block that holds any byte of the string is
** wholly inside linear memory (whose size is a whole number of pages) and cannot trap.
** Bytes past the terminator are ignored. Buffers with a length (memcmp, memchr) are
** never read past it.
*/
#include <stddef.h>
#include <stdint.h>
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

/* no_builtin: the compiler must not turn a loop here back into a call to itself. */
#define FOG_STR __attribute__((no_builtin))

typedef uint64_t __attribute__((may_alias, aligned(1))) u64u;  /* any alignment */
typedef uint32_t __attribute__((may_alias, aligned(1))) u32u;
typedef uint64_t __attribute__((may_alias)) u64a;               /* 8-byte aligned */

/* The order of the first differing byte of two little-endian words that differ. */
static inline int word_diff(const unsigned char *l, const unsigned char *r, uint64_t x) {
  unsigned i = __builtin_ctzll(x) >> 3;
  return l[i] - r[i];
}

/* Short tails are compared as two overlapping words (the first and the last bytes), not
** byte by byte: most of SQLite's compares are of 4-30 byte keys. */
FOG_STR int memcmp(const void *vl, const void *vr, size_t n) {
  const unsigned char *l = vl, *r = vr;
  uint64_t x;
#ifdef __wasm_simd128__
  if (n >= 16) {
    for (size_t k = 0;; k += 16) {
      if (k + 16 > n) k = n - 16;  /* the last block overlaps the one before */
      uint32_t ne = ~wasm_i8x16_bitmask(wasm_i8x16_eq(wasm_v128_load(l + k),
                                                      wasm_v128_load(r + k))) & 0xffff;
      if (ne) {
        unsigned i = k + __builtin_ctz(ne);
        return l[i] - r[i];
      }
      if (k + 16 == n) return 0;
    }
  }
#else
  for (; n >= 16; n -= 8, l += 8, r += 8)
    if ((x = *(const u64u *)l ^ *(const u64u *)r)) return word_diff(l, r, x);
#endif
  if (n >= 8) {
    if ((x = *(const u64u *)l ^ *(const u64u *)r)) return word_diff(l, r, x);
    l += n - 8, r += n - 8;
    x = *(const u64u *)l ^ *(const u64u *)r;
    return x ? word_diff(l, r, x) : 0;
  }
  if (n >= 4) {
    if ((x = *(const u32u *)l ^ *(const u32u *)r)) return word_diff(l, r, x);
    l += n - 4, r += n - 4;
    x = *(const u32u *)l ^ *(const u32u *)r;
    return x ? word_diff(l, r, x) : 0;
  }
  for (; n; n--, l++, r++)
    if (*l != *r) return *l - *r;
  return 0;
}

FOG_STR int bcmp(const void *l, const void *r, size_t n) { return memcmp(l, r, n); }

#ifdef __wasm_simd128__

/* A mask of the bytes of the aligned 16-byte block at a that are 0 or one of c[0..3]. */
static inline uint32_t block_hits(uintptr_t a, v128_t c0, v128_t c1, v128_t c2, v128_t c3) {
  v128_t v = wasm_v128_load((const void *)a);
  v128_t hit = wasm_v128_or(wasm_v128_or(wasm_i8x16_eq(v, c0), wasm_i8x16_eq(v, c1)),
                            wasm_v128_or(wasm_i8x16_eq(v, c2), wasm_i8x16_eq(v, c3)));
  return wasm_i8x16_bitmask(wasm_v128_or(hit, wasm_i8x16_eq(v, wasm_i8x16_splat(0))));
}

/* The first byte of s that is 0 or one of c[0..3], scanning aligned blocks. */
static inline const char *scan(const char *s, v128_t c0, v128_t c1, v128_t c2, v128_t c3) {
  uintptr_t a = (uintptr_t)s & ~(uintptr_t)15;
  uint32_t m = block_hits(a, c0, c1, c2, c3) >> ((uintptr_t)s & 15);
  if (m) return s + __builtin_ctz(m);
  for (;;) {
    a += 16;
    m = block_hits(a, c0, c1, c2, c3);
    if (m) return (const char *)a + __builtin_ctz(m);
  }
}

FOG_STR size_t strlen(const char *s) {
  v128_t z = wasm_i8x16_splat(0);
  return scan(s, z, z, z, z) - s;
}

FOG_STR char *strchrnul(const char *s, int c) {
  v128_t v = wasm_i8x16_splat((char)c);
  return (char *)scan(s, v, v, v, v);
}

FOG_STR char *strchr(const char *s, int c) {
  const char *p = strchrnul(s, c);
  return *(const unsigned char *)p == (unsigned char)c ? (char *)p : 0;
}

FOG_STR void *memchr(const void *src, int c, size_t n) {
  const unsigned char *s = src;
  v128_t v = wasm_i8x16_splat((char)c);
  for (; n >= 16; n -= 16, s += 16) {
    uint32_t m = wasm_i8x16_bitmask(wasm_i8x16_eq(wasm_v128_load(s), v));
    if (m) return (void *)(s + __builtin_ctz(m));
  }
  for (; n; n--, s++)
    if (*s == (unsigned char)c) return (void *)s;
  return 0;
}

#else

#define ONES ((uint64_t)-1 / 255)
#define HAS_ZERO(x) (((x) - ONES) & ~(x) & (ONES * 0x80))

FOG_STR size_t strlen(const char *s) {
  const char *p = s;
  for (; (uintptr_t)p & 7; p++)
    if (!*p) return p - s;
  while (!HAS_ZERO(*(const u64a *)p)) p += 8;
  while (*p) p++;
  return p - s;
}

#endif

FOG_STR size_t strcspn(const char *s, const char *c) {
  const unsigned char *p = (const unsigned char *)s;
  uint32_t set[8] = {0};
  size_t k = 0;
  while (c[k]) k++;
#ifdef __wasm_simd128__
  if (k && k <= 4) {
    v128_t c0 = wasm_i8x16_splat(c[0]);
    v128_t c1 = wasm_i8x16_splat(c[k > 1]), c2 = wasm_i8x16_splat(c[k > 2 ? 2 : 0]);
    v128_t c3 = wasm_i8x16_splat(c[k > 3 ? 3 : 0]);
    return scan(s, c0, c1, c2, c3) - s;
  }
#endif
  if (!k) return strlen(s);
  for (const unsigned char *q = (const unsigned char *)c; *q; q++)
    set[*q >> 5] |= 1u << (*q & 31);
  set[0] |= 1;  /* the terminator stops the scan */
  while (!(set[*p >> 5] & (1u << (*p & 31)))) p++;
  return (const char *)p - s;
}
