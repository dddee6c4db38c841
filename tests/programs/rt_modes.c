/* Runtime behaviour under limits: argv[1] picks what the guest does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile unsigned long sink;

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "hello";
    if (!strcmp(mode, "hello")) {
        printf("hello from wasm\n");
        return 0;
    }
    if (!strcmp(mode, "exit")) return atoi(argv[2]);
    if (!strcmp(mode, "env")) {
        extern char **environ;
        for (char **e = environ; *e; e++) printf("%s\n", *e);
        return 0;
    }
    if (!strcmp(mode, "alloc")) { /* grow by 1 MiB until malloc fails */
        size_t total = 0;
        static char *volatile keep[4096];
        for (int i = 0;; i++) {
            char *p = malloc(1 << 20);
            keep[i % 4096] = p;
            if (!p) {
                fprintf(stderr, "out of memory after %zu MiB\n", total >> 20);
                return 1;
            }
            memset(p, 1, 1 << 20);
            total += 1 << 20;
        }
    }
    if (!strcmp(mode, "spin")) {
        for (unsigned long i = 0;; i++) sink += i;
    }
    if (!strcmp(mode, "work")) { /* a bounded amount of work: argv[2] iterations */
        unsigned long n = strtoul(argv[2], 0, 10);
        for (unsigned long i = 0; i < n; i++) sink += i * i;
        printf("%lu\n", sink);
        return 0;
    }
    if (!strcmp(mode, "ready-spin")) { /* says so, then computes forever */
        printf("spinning\n");
        fflush(stdout);
        for (unsigned long i = 0;; i++) sink += i;
    }
    if (!strcmp(mode, "sleep")) { /* argv[2] seconds in poll_oneoff */
        printf("sleeping\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[2]));
        printf("woke\n");
        return 0;
    }
    if (!strcmp(mode, "read")) { /* blocks in fd_read until stdin has data */
        char buf[64];
        printf("reading\n");
        fflush(stdout);
        printf("read %ld\n", (long)read(0, buf, sizeof buf));
        return 0;
    }
    if (!strcmp(mode, "trap")) __builtin_trap();
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
