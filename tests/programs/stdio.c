/* The standard streams: fd_read on stdin until EOF (raw and through stdio), fd_write to
 * stdout and stderr, fd_fdstat_get on all three. The harness feeds stdin. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *yn(int b) { return b ? "yes" : "no"; }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    __wasi_fdstat_t st;
    for (int fd = 0; fd < 3; fd++) {
        __wasi_errno_t e = __wasi_fd_fdstat_get(fd, &st);
        printf("fd_fdstat_get %d -> %d read=%s write=%s\n", fd, e,
               yn(st.fs_rights_base & __WASI_RIGHTS_FD_READ), yn(st.fs_rights_base & __WASI_RIGHTS_FD_WRITE));
    }
    /* all of stdin through raw fd_read with two iovecs (short reads are fine) */
    static char all[1 << 21];
    size_t total = 0;
    for (;;) {
        __wasi_iovec_t iov[2] = {{(uint8_t *)all + total, 7}, {(uint8_t *)all + total + 7, sizeof all - total - 7}};
        __wasi_size_t n = 0;
        __wasi_errno_t e = __wasi_fd_read(0, iov, 2, &n);
        if (e) { printf("fd_read stdin -> %d\n", e); break; }
        if (n == 0) break;
        total += n;
    }
    size_t first = strcspn(all, "\n");
    printf("first line: [%.*s]\n", (int)first, all);
    uint32_t h = 2166136261u;
    size_t lines = 0;
    for (size_t i = 0; i < total; i++) { h = (h ^ (uint8_t)all[i]) * 16777619u; lines += all[i] == '\n'; }
    printf("stdin: %zu bytes, %zu lines, fnv1a=%08x\n", total, lines, h);
    __wasi_iovec_t iov = {(uint8_t *)all, 16};
    __wasi_size_t n = 99;
    printf("fd_read after eof -> %d n=%u\n", __wasi_fd_read(0, &iov, 1, &n), (unsigned)n);
    fprintf(stderr, "stderr line\n");
    /* echo the input to stdout unchanged */
    fwrite(all, 1, total, stdout);
    printf("done\n");
    return 0;
}
