/* Guest pointers that are out of bounds of linear memory, handed to WASI calls through the
 * raw imports. The runtime must answer EFAULT (21) -- or trap -- and never crash or touch
 * the host. Usage: memory_faults.wasm CASE  (each case its own run: a trap ends the run). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))

IMPORT(fd_write) int32_t w_fd_write(int32_t fd, int32_t iovs, int32_t n, int32_t nwritten);
IMPORT(fd_read) int32_t w_fd_read(int32_t fd, int32_t iovs, int32_t n, int32_t nread);
IMPORT(fd_pread) int32_t w_fd_pread(int32_t fd, int32_t iovs, int32_t n, int64_t off, int32_t nread);
IMPORT(random_get) int32_t w_random_get(int32_t buf, int32_t len);
IMPORT(clock_time_get) int32_t w_clock_time_get(int32_t id, int64_t prec, int32_t out);
IMPORT(args_sizes_get) int32_t w_args_sizes_get(int32_t a, int32_t b);
IMPORT(args_get) int32_t w_args_get(int32_t argv, int32_t buf);
IMPORT(environ_get) int32_t w_environ_get(int32_t env, int32_t buf);
IMPORT(path_open) int32_t w_path_open(int32_t fd, int32_t dirflags, int32_t path, int32_t path_len,
                                      int32_t oflags, int64_t rb, int64_t ri, int32_t fdflags, int32_t out);
IMPORT(path_filestat_get) int32_t w_path_filestat_get(int32_t fd, int32_t flags, int32_t path, int32_t len, int32_t out);
IMPORT(fd_prestat_dir_name) int32_t w_fd_prestat_dir_name(int32_t fd, int32_t buf, int32_t len);
IMPORT(fd_readdir) int32_t w_fd_readdir(int32_t fd, int32_t buf, int32_t len, int64_t cookie, int32_t used);
IMPORT(poll_oneoff) int32_t w_poll_oneoff(int32_t in, int32_t out, int32_t n, int32_t nevents);
IMPORT(fd_filestat_get) int32_t w_fd_filestat_get(int32_t fd, int32_t out);
IMPORT(path_readlink) int32_t w_path_readlink(int32_t fd, int32_t path, int32_t len, int32_t buf, int32_t buflen, int32_t used);

static uint32_t mem_end(void) { return (uint32_t)__builtin_wasm_memory_size(0) * 65536u; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *c = argc > 1 ? argv[1] : "";
    int32_t END = (int32_t)mem_end();
    static uint32_t iov[2];
    static uint32_t res[4];
    static char buf[64];
    int32_t e = -1;
    printf("case %s\n", c);
    if (!strcmp(c, "fd_write-iovs")) e = w_fd_write(1, END - 4, 1, (int32_t)(uintptr_t)res);
    else if (!strcmp(c, "fd_write-buf")) {
        iov[0] = (uint32_t)END - 2; iov[1] = 16;  /* buffer runs past the end */
        e = w_fd_write(1, (int32_t)(uintptr_t)iov, 1, (int32_t)(uintptr_t)res);
    } else if (!strcmp(c, "fd_write-result")) {
        iov[0] = (uint32_t)(uintptr_t)"x\n"; iov[1] = 2;
        e = w_fd_write(1, (int32_t)(uintptr_t)iov, 1, END - 2);
    } else if (!strcmp(c, "fd_write-huge-count")) e = w_fd_write(1, (int32_t)(uintptr_t)iov, 0x7fffffff, (int32_t)(uintptr_t)res);
    else if (!strcmp(c, "fd_read-buf")) {
        iov[0] = (uint32_t)END - 4; iov[1] = 64;
        e = w_fd_pread(3 + 0, (int32_t)(uintptr_t)iov, 1, 0, (int32_t)(uintptr_t)res);  /* fd 3 is a dir: see next */
        /* a real file: open hello.txt */
        int32_t fd = 0;
        int32_t pe = w_path_open(3, 0, (int32_t)(uintptr_t)"hello.txt", 9, 0, 0x2 | 0x4, 0, 0, (int32_t)(uintptr_t)&fd);
        if (pe == 0) e = w_fd_pread(fd, (int32_t)(uintptr_t)iov, 1, 0, (int32_t)(uintptr_t)res);
    }
    else if (!strcmp(c, "random_get")) e = w_random_get(END - 8, 64);
    else if (!strcmp(c, "random_get-wrap")) e = w_random_get(-16, 64);  /* 0xFFFFFFF0 + 64 wraps */
    else if (!strcmp(c, "clock_time_get")) e = w_clock_time_get(1, 0, END - 4);
    else if (!strcmp(c, "args_sizes_get")) e = w_args_sizes_get(END, (int32_t)(uintptr_t)res);
    else if (!strcmp(c, "args_get")) e = w_args_get(END - 4, END - 4);
    else if (!strcmp(c, "environ_get")) e = w_environ_get(END - 4, END - 4);
    else if (!strcmp(c, "path_open-path")) e = w_path_open(3, 0, END - 4, 64, 0, 0x2, 0, 0, (int32_t)(uintptr_t)res);
    else if (!strcmp(c, "path_open-result")) e = w_path_open(3, 0, (int32_t)(uintptr_t)"hello.txt", 9, 0, 0x2, 0, 0, END);
    else if (!strcmp(c, "path_filestat_get")) e = w_path_filestat_get(3, 0, (int32_t)(uintptr_t)"hello.txt", 9, END - 8);
    else if (!strcmp(c, "fd_filestat_get")) e = w_fd_filestat_get(3, END - 8);
    else if (!strcmp(c, "fd_prestat_dir_name")) e = w_fd_prestat_dir_name(3, END - 2, 8);
    else if (!strcmp(c, "fd_readdir")) e = w_fd_readdir(3, END - 16, 4096, 0, (int32_t)(uintptr_t)res);
    else if (!strcmp(c, "poll_oneoff")) e = w_poll_oneoff(END - 8, (int32_t)(uintptr_t)buf, 1, (int32_t)(uintptr_t)res);
    else if (!strcmp(c, "path_readlink")) e = w_path_readlink(3, (int32_t)(uintptr_t)"link_hello", 10, END - 4, 64, (int32_t)(uintptr_t)res);
    else { printf("unknown case\n"); return 2; }
    printf("result %d\n", (int)e);
    return 0;
}
