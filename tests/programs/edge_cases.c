/* Odd inputs the other programs do not reach: non-ASCII and long names, embedded NUL and
 * invalid UTF-8 in paths (through the raw (ptr, len) imports), big reads and writes,
 * seeking a directory, zero-length I/O. Leaves a few files in /sandbox. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

#define IMPORT(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
IMPORT(path_open) int32_t w_path_open(int32_t fd, int32_t dirflags, int32_t path, int32_t path_len,
                                      int32_t oflags, int64_t rb, int64_t ri, int32_t fdflags, int32_t out);
IMPORT(path_create_directory) int32_t w_path_create_directory(int32_t fd, int32_t path, int32_t len);
IMPORT(path_filestat_get) int32_t w_path_filestat_get(int32_t fd, int32_t flags, int32_t path, int32_t len, int32_t out);

static const char *yn(int b) { return b ? "yes" : "no"; }

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int32_t raw_open(const char *path, int32_t len, int32_t oflags) {
    int32_t fd = -1;
    int32_t e = w_path_open(3, 0, (int32_t)(uintptr_t)path, len, oflags,
                            __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0, 0, (int32_t)(uintptr_t)&fd);
    if (e == 0) (void)__wasi_fd_close(fd);
    return e;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char buf[600];

    /* ---- non-ASCII names round-trip through the host ---- */
    const char *names[] = {"ünïcödé.txt", "日本語", "emoji-\xf0\x9f\x98\x80.txt", "sp ace & semi;colon", "-dash", ".hidden"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(buf, sizeof buf, "/sandbox/names/%s", names[i]);
        if (i == 0) mkdir("/sandbox/names", 0755);
        int fd = open(buf, O_CREAT | O_WRONLY | O_EXCL, 0644);
        printf("create [%s] -> %d errno=%d\n", names[i], fd < 0 ? -1 : 0, fd < 0 ? errno : 0);
        if (fd >= 0) { write(fd, names[i], strlen(names[i])); close(fd); }
    }
    DIR *d = opendir("/sandbox/names");
    char *seen[16];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 16)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) seen[n++] = strdup(de->d_name);
    closedir(d);
    qsort(seen, n, sizeof *seen, cmp);
    printf("readdir names (%d):", n);
    for (int i = 0; i < n; i++) printf(" [%s]", seen[i]);
    printf("\n");

    /* ---- long names: 255 bytes is the usual limit per component ---- */
    char longname[300];
    memset(longname, 'L', 255);
    longname[255] = 0;
    snprintf(buf, sizeof buf, "/sandbox/%s", longname);
    int fd = open(buf, O_CREAT | O_WRONLY, 0644);
    printf("create 255-byte name -> %s\n", fd >= 0 ? "ok" : "fail");
    if (fd >= 0) close(fd);
    memset(longname, 'M', 256);
    longname[256] = 0;
    snprintf(buf, sizeof buf, "/sandbox/%s", longname);
    errno = 0;
    fd = open(buf, O_CREAT | O_WRONLY, 0644);
    printf("create 256-byte name -> %d errno=%d\n", fd < 0 ? -1 : 0, fd < 0 ? errno : 0);

    /* ---- bytes in paths that no host path can hold ---- */
    printf("path_open \"hello.txt\\0x\" (embedded NUL) -> %d\n", raw_open("hello.txt\0x", 11, 0));
    printf("path_open \"hello.txt\\0\" (trailing NUL in len) -> %d\n", raw_open("hello.txt\0", 10, 0));
    printf("path_open invalid UTF-8 \\xff\\xfe -> %d\n", raw_open("bad\xff\xfe", 5, __WASI_OFLAGS_CREAT));
    printf("path_create_directory invalid UTF-8 -> %d\n", w_path_create_directory(3, (int32_t)(uintptr_t)"d\xc3\x28", 3));
    printf("path_create_directory embedded NUL -> %d\n", w_path_create_directory(3, (int32_t)(uintptr_t)"nul\0dir", 7));
    __wasi_filestat_t st;
    printf("path_filestat_get zero-length path -> %d\n", w_path_filestat_get(3, 0, (int32_t)(uintptr_t)"hello.txt", 0, (int32_t)(uintptr_t)&st));
    printf("path_open exact length \"hello.txtGARBAGE\" len 9 -> %d\n", raw_open("hello.txtGARBAGE", 9, 0));

    /* ---- big I/O in one call ---- */
    size_t big = 4 << 20;
    char *p = malloc(big), *q = malloc(big);
    for (size_t i = 0; i < big; i++) p[i] = (char)(i * 131 + (i >> 13));
    fd = open("/sandbox/big.bin", O_CREAT | O_RDWR | O_TRUNC, 0644);
    size_t done = 0;
    int calls = 0;
    while (done < big) {
        ssize_t w = write(fd, p + done, big - done);
        if (w <= 0) break;
        done += w;
        calls++;
    }
    printf("write 4 MiB -> %zu bytes, calls<=64: %s\n", done, yn(calls <= 64));
    lseek(fd, 0, SEEK_SET);
    done = 0;
    while (done < big) {
        ssize_t r = read(fd, q + done, big - done);
        if (r <= 0) break;
        done += r;
    }
    printf("read back 4 MiB -> %zu bytes, identical: %s\n", done, yn(memcmp(p, q, big) == 0));
    /* a short count is allowed (wasmtime reads at most 64 KiB per call): loop */
    ssize_t pr = 0;
    while (pr < (1 << 20)) {
        ssize_t r = pread(fd, q + pr, (1 << 20) - pr, (3 << 20) + pr);
        if (r <= 0) break;
        pr += r;
    }
    printf("pread 1 MiB at 3 MiB (looped) -> %zd identical: %s\n", pr, yn(pr == (1 << 20) && memcmp(q, p + (3 << 20), 1 << 20) == 0));
    close(fd);
    /* 256 KiB to stdout: the harness counts it */
    memset(p, 'x', 256 * 1024);
    p[256 * 1024 - 1] = '\n';
    fflush(stdout);
    done = 0;
    while (done < 256 * 1024) {
        ssize_t w = write(1, p + done, 256 * 1024 - done);
        if (w <= 0) break;
        done += w;
    }
    printf("wrote 256 KiB line to stdout -> %zu\n", done);

    /* ---- zero-length and directory I/O ---- */
    fd = open("/sandbox/hello.txt", O_RDWR);
    printf("read 0 bytes -> %zd\n", read(fd, buf, 0));
    printf("write 0 bytes -> %zd\n", write(fd, buf, 0));
    printf("pwrite 0 bytes at 100 -> %zd\n", pwrite(fd, buf, 0, 100));
    fstat(fd, &(struct stat){0});
    struct stat sst;
    fstat(fd, &sst);
    printf("size unchanged by 0-byte pwrite past eof: %s\n", yn(sst.st_size == 11));
    close(fd);
    int dfd = open("/sandbox/sub", O_RDONLY | O_DIRECTORY);
    errno = 0;
    off_t o = lseek(dfd, 0, SEEK_SET);
    printf("lseek on a directory -> %lld errno=%d\n", (long long)o, errno);
    close(dfd);
    fd = open("/sandbox/victim.txt", O_RDONLY | O_TRUNC);
    printf("open O_RDONLY|O_TRUNC -> %d errno=%d\n", fd < 0 ? -1 : 0, fd < 0 ? errno : 0);
    if (fd >= 0) close(fd);
    stat("/sandbox/victim.txt", &sst);
    printf("victim.txt size after O_RDONLY|O_TRUNC -> %lld\n", (long long)sst.st_size);

    /* ---- many descriptors ---- */
    int fds[200], opened = 0;
    for (int i = 0; i < 200; i++) {
        fds[i] = open("/sandbox/hello.txt", O_RDONLY);
        if (fds[i] >= 0) opened++;
    }
    int distinct = 1;
    for (int i = 0; i < 200 && distinct; i++)
        for (int j = i + 1; j < 200; j++)
            if (fds[i] >= 0 && fds[i] == fds[j]) { distinct = 0; break; }
    printf("open hello.txt 200 times -> %d ok, all distinct: %s\n", opened, yn(distinct));
    int readable = 0;
    for (int i = 0; i < 200; i++) {
        if (fds[i] < 0) continue;
        if (pread(fds[i], buf, 5, 6) == 5 && !memcmp(buf, "world", 5)) readable++;
        close(fds[i]);
    }
    printf("each reads independently -> %d\n", readable);
    return 0;
}
