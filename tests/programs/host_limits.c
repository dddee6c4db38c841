/* Guest behaviour that must not hurt the host (issue 14): huge offsets for fd_advise and
 * fd_allocate, and opening descriptors without end.
 *   host_limits offsets DIR   -- fd_advise / fd_allocate at offsets >= 2^63: an errno each
 *   host_limits fds DIR N     -- open DIR/f up to N times: how many, and the errno that ended it
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static int offsets(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/big.bin", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { printf("open -> %d\n", errno); return 1; }
    const unsigned long long big = 1ULL << 63, top = ~0ULL;
    printf("fd_advise offset 2^63 -> %d\n", __wasi_fd_advise(fd, big, 1, __WASI_ADVICE_NORMAL));
    printf("fd_advise len 2^64-1 -> %d\n", __wasi_fd_advise(fd, 0, top, __WASI_ADVICE_NORMAL));
    printf("fd_allocate offset 2^63 -> %d\n", __wasi_fd_allocate(fd, big, 1));
    printf("fd_allocate len 2^64-1 -> %d\n", __wasi_fd_allocate(fd, 0, top));
    printf("fd_allocate 2^63-1 + 1 -> %d\n", __wasi_fd_allocate(fd, big - 1, 1));
    printf("fd_filestat_set_times 2^64-1 -> %d\n",
           __wasi_fd_filestat_set_times(fd, top, top, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    printf("still running: yes\n");
    return 0;
}

static int fds(const char *dir, int n) {
    char path[512];
    snprintf(path, sizeof path, "%s/f", dir);
    close(open(path, O_WRONLY | O_CREAT, 0644));
    int opened = 0, err = 0, last = -1;
    for (int i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) { err = errno; break; }
        opened++;
        last = fd;
    }
    printf("opened %d, then errno %d\n", opened, err);
    if (last >= 0) {
        close(last);
        int again = open(path, O_RDONLY);
        printf("after one close, open again -> %s\n", again >= 0 ? "ok" : "failed");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "offsets")) return offsets(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "fds")) return fds(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: host_limits offsets DIR | fds DIR N\n");
    return 2;
}
