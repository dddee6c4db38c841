/* Checks the libc string routines a Wasm build links (foglayer/toolchain/wasm_string.c)
** against plain byte loops: every length 0..80 at every start offset 0..31, a hit (or a
** difference) at every position, bytes >= 0x80, and strings that end on the last byte of
** linear memory (an aligned block scan must not trap there). Prints "ok N" (N checks) or
** the first wrong answer, exit 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Called through volatile pointers so the compiler cannot fold or inline the calls. */
static int (*volatile f_memcmp)(const void *, const void *, size_t) = memcmp;
static size_t (*volatile f_strlen)(const char *) = strlen;
static size_t (*volatile f_strcspn)(const char *, const char *) = strcspn;
static void *(*volatile f_memchr)(const void *, int, size_t) = memchr;
static char *(*volatile f_strchr)(const char *, int) = strchr;

static long checks;

static int sign(int x) { return (x > 0) - (x < 0); }

static int ref_memcmp(const unsigned char *a, const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return a[i] - b[i];
  return 0;
}

static size_t ref_strcspn(const char *s, const char *c) {
  size_t i = 0;
  for (; s[i]; i++)
    for (const char *q = c; *q; q++)
      if (*q == s[i]) return i;
  return i;
}

#define FAIL(...) do { printf(__VA_ARGS__); printf("\n"); exit(1); } while (0)

/* The string routines on s (NUL-terminated, len bytes), which may sit anywhere. */
static void check_string(const char *s, size_t len) {
  static const char *sets[] = {"", "x", "\x90", "xy", "Ab", "q\xff", "xyz", "wxyz", "vwxyz",
                               "0123456789"};
  if (f_strlen(s) != len) FAIL("strlen(len %zu) = %zu", len, f_strlen(s));
  checks++;
  for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
    size_t want = ref_strcspn(s, sets[i]), got = f_strcspn(s, sets[i]);
    if (got != want) FAIL("strcspn(len %zu, set %zu) = %zu, want %zu", len, i, got, want);
    checks++;
  }
  for (int c = 0; c < 256; c += 37) {
    const char *want = 0;
    for (size_t i = 0; i <= len; i++)
      if ((unsigned char)s[i] == c) { want = s + i; break; }
    if (f_strchr(s, c) != want) FAIL("strchr(len %zu, %d) wrong", len, c);
    checks++;
  }
}

int main(void) {
  static unsigned char a[256], b[256];
  for (size_t off = 0; off < 32; off++) {
    for (size_t len = 0; len <= 80; len++) {
      unsigned char *x = a + off, *y = b + (off * 7 % 32);
      for (size_t i = 0; i < len; i++) x[i] = y[i] = (unsigned char)(0x41 + (i * 13 + off) % 190);
      if (f_memcmp(x, y, len) != 0) FAIL("memcmp(equal, %zu) != 0", len);
      checks++;
      for (size_t at = 0; at < len; at++) {  /* one differing byte, both ways round */
        unsigned char keep = y[at];
        y[at] = (unsigned char)(keep ^ 0x80);
        if (sign(f_memcmp(x, y, len)) != sign(ref_memcmp(x, y, len)) ||
            sign(f_memcmp(y, x, len)) != sign(ref_memcmp(y, x, len)))
          FAIL("memcmp(len %zu, differs at %zu) wrong sign", len, at);
        if (f_memcmp(x, y, at) != 0) FAIL("memcmp read past its length %zu", at);
        y[at] = keep;
        checks += 3;
      }
      for (size_t at = 0; at < len; at++) {  /* memchr finds the first hit, never past n */
        const unsigned char *first = 0;
        for (size_t i = 0; i < len; i++)
          if (x[i] == x[at]) { first = x + i; break; }
        if (f_memchr(x, x[at], len) != first) FAIL("memchr(len %zu, byte at %zu) wrong", len, at);
        if (f_memchr(x, 0x20, len) != 0) FAIL("memchr(len %zu) found a byte not there", len);
        checks += 2;
      }
      x[len] = 0;
      check_string((const char *)x, len);
      for (size_t at = 0; at < len; at++) {  /* a set byte at every position */
        char keep = (char)x[at];
        x[at] = 'x';
        if (f_strcspn((const char *)x, "xy") != ref_strcspn((const char *)x, "xy"))
          FAIL("strcspn(len %zu, 'x' at %zu) wrong", len, at);
        x[at] = (unsigned char)keep;
        checks++;
      }
    }
  }
  /* Strings ending on the last byte of linear memory: a fresh page nobody else uses. */
  size_t pages = __builtin_wasm_memory_grow(0, 1);
  if (pages == (size_t)-1) FAIL("memory.grow failed");
  char *end = (char *)((pages + 1) * 65536);
  for (size_t len = 0; len <= 40; len++) {
    char *s = end - 1 - len;
    for (size_t i = 0; i < len; i++) s[i] = (char)('a' + i % 26);
    end[-1] = 0;
    check_string(s, len);
    if (f_memcmp(s, s, len + 1) != 0 || f_memchr(s, 0x7f, len + 1) != 0)
      FAIL("memcmp/memchr at the end of memory, len %zu", len);
    checks++;
  }
  printf("ok %ld\n", checks);
  return 0;
}
