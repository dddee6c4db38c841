/* Exercises the WASI calls done in C, with the fd table changing under them: opens,
 * closes, renumbers and re-opens (reusing a descriptor number), then reads back. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int check(int ok, const char *what) {
    if (!ok) { printf("FAIL %s\n", what); exit(1); }
    return ok;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int a = open("/sandbox/a.txt", O_CREAT | O_TRUNC | O_RDWR, 0644);
    check(a >= 0, "open a");
    for (int i = 0; i < n; i++) check(write(a, "0123456789abcdef", 16) == 16, "write a");
    check(lseek(a, 0, SEEK_CUR) == 16 * n, "tell a");
    close(a);
    check(write(a, "x", 1) == -1, "write after close fails");
    int b = open("/sandbox/b.txt", O_CREAT | O_TRUNC | O_WRONLY, 0644);  /* reuses a's number */
    check(b == a, "descriptor number reused");
    check(write(b, "bee", 3) == 3, "write b");
    char buf[64];
    check(read(b, buf, 1) == -1, "read on a write-only descriptor fails");
    close(b);
    int r = open("/sandbox/a.txt", O_RDONLY);
    check(pread(r, buf, 16, 16) == 16 && memcmp(buf, "0123456789abcdef", 16) == 0, "pread");
    check(lseek(r, -4, SEEK_END) == 16 * n - 4, "seek end");
    check(read(r, buf, 64) == 4 && memcmp(buf, "cdef", 4) == 0, "read tail");
    struct stat st;
    check(fstat(r, &st) == 0 && st.st_size == 16 * n, "fstat");
    check(stat("/sandbox/b.txt", &st) == 0 && st.st_size == 3, "stat b");
    check(stat("/sandbox/missing", &st) == -1, "stat missing");
    close(r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    check(t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec),
          "monotonic");
    printf("ok %d\n", n);
    return 0;
}
