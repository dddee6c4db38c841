/* fd_fdstat_get, fd_fdstat_set_flags, fd_fdstat_set_rights, fd_filestat_get,
 * fd_filestat_set_size, fd_filestat_set_times, path_filestat_get, path_filestat_set_times.
 * Leaves /sandbox/append.txt, /sandbox/trunc.txt, /sandbox/times.txt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *yn(int b) { return b ? "yes" : "no"; }

static const char *ftype(int t) {
    switch (t) {
    case __WASI_FILETYPE_UNKNOWN: return "unknown";
    case __WASI_FILETYPE_BLOCK_DEVICE: return "block";
    case __WASI_FILETYPE_CHARACTER_DEVICE: return "char";
    case __WASI_FILETYPE_DIRECTORY: return "dir";
    case __WASI_FILETYPE_REGULAR_FILE: return "file";
    case __WASI_FILETYPE_SOCKET_DGRAM: return "sock_dgram";
    case __WASI_FILETYPE_SOCKET_STREAM: return "sock_stream";
    case __WASI_FILETYPE_SYMBOLIC_LINK: return "symlink";
    }
    return "?";
}

static void fdstat(const char *label, int fd) {
    __wasi_fdstat_t st;
    memset(&st, 0xEE, sizeof st);
    __wasi_errno_t e = __wasi_fd_fdstat_get(fd, &st);
    printf("fd_fdstat_get %s -> %d", label, e);
    if (e == 0) {
        /* Only the rights that mean something for the file type are printed. */
        printf(" type=%s flags=0x%x", ftype(st.fs_filetype), st.fs_flags);
        if (st.fs_filetype == __WASI_FILETYPE_DIRECTORY)
            printf(" path_open=%s readdir=%s",
                   yn(st.fs_rights_base & __WASI_RIGHTS_PATH_OPEN),
                   yn(st.fs_rights_base & __WASI_RIGHTS_FD_READDIR));
        else if (st.fs_filetype == __WASI_FILETYPE_REGULAR_FILE)
            printf(" read=%s write=%s seek=%s",
                   yn(st.fs_rights_base & __WASI_RIGHTS_FD_READ),
                   yn(st.fs_rights_base & __WASI_RIGHTS_FD_WRITE),
                   yn(st.fs_rights_base & __WASI_RIGHTS_FD_SEEK));
    }
    printf("\n");
}

static void filestat(const char *label, int fd) {
    __wasi_filestat_t st;
    __wasi_errno_t e = __wasi_fd_filestat_get(fd, &st);
    printf("fd_filestat_get %s -> %d", label, e);
    /* a directory's size and link count depend on the host filesystem: not printed */
    if (e == 0) printf(" type=%s", ftype(st.filetype));
    if (e == 0 && st.filetype != __WASI_FILETYPE_DIRECTORY)
        printf(" size=%llu nlink=%llu", (unsigned long long)st.size, (unsigned long long)st.nlink);
    printf("\n");
}

static void pstat(const char *label, int dirfd, int follow, const char *path) {
    __wasi_filestat_t st;
    __wasi_errno_t e = __wasi_path_filestat_get(dirfd, follow ? __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW : 0, path, &st);
    printf("path_filestat_get %s %s -> %d", label, follow ? "follow" : "nofollow", e);
    if (e == 0) {
        printf(" type=%s", ftype(st.filetype));
        if (st.filetype == __WASI_FILETYPE_REGULAR_FILE) printf(" size=%llu", (unsigned long long)st.size);
        if (st.filetype == __WASI_FILETYPE_SYMBOLIC_LINK) printf(" size=%llu", (unsigned long long)st.size);
        if (st.filetype != __WASI_FILETYPE_DIRECTORY) printf(" nlink=%llu", (unsigned long long)st.nlink);
    }
    printf("\n");
}

static void dump(const char *path) {
    int fd = open(path, O_RDONLY);
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf);
    printf("contents of %s -> %zd [", path, n);
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c >= 32 && c < 127) putchar(c); else printf("\\x%02x", c);
    }
    printf("]\n");
    close(fd);
}

#define SEC 1000000000ull

static __wasi_timestamp_t now_ns(void) {
    __wasi_timestamp_t t = 0;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &t);
    return t;
}

static int rights_mode(void) {
    /* fd_fdstat_set_rights: the spec lets a program drop rights; later calls that need a
     * dropped right fail with ENOTCAPABLE (76). wasmtime answers ENOTSUP (58). */
    int fd = open("/sandbox/rights.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    __wasi_fdstat_t st;
    (void)__wasi_fd_fdstat_get(fd, &st);
    __wasi_rights_t keep = st.fs_rights_base & ~(__wasi_rights_t)__WASI_RIGHTS_FD_WRITE;
    __wasi_errno_t e = __wasi_fd_fdstat_set_rights(fd, keep, st.fs_rights_inheriting);
    printf("fd_fdstat_set_rights drop FD_WRITE -> %d\n", e);
    (void)__wasi_fd_fdstat_get(fd, &st);
    printf("after drop: write right=%s\n", yn(st.fs_rights_base & __WASI_RIGHTS_FD_WRITE));
    errno = 0;
    ssize_t n = write(fd, "x", 1);
    printf("write after drop -> %zd errno=%d\n", n, errno);
    e = __wasi_fd_fdstat_set_rights(fd, st.fs_rights_base | __WASI_RIGHTS_FD_WRITE, st.fs_rights_inheriting);
    printf("fd_fdstat_set_rights add FD_WRITE back -> %d\n", e);
    close(fd);
    return 0;
}

/* DSYNC/RSYNC/SYNC fdflags: in the spec; wasmtime refuses them with ENOTSUP (58) on
 * path_open, a runtime that supports them reports them back in fd_fdstat_get. */
static int sync_flags_mode(void) {
    const int fl[] = {__WASI_FDFLAGS_DSYNC, __WASI_FDFLAGS_RSYNC, __WASI_FDFLAGS_SYNC};
    const char *nm[] = {"dsync", "rsync", "sync"};
    for (int i = 0; i < 3; i++) {
        __wasi_fd_t fd;
        __wasi_errno_t e = __wasi_path_open(3, 0, "victim.txt", 0, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0, fl[i], &fd);
        printf("path_open fdflags %s -> %d", nm[i], e);
        if (e == 0) {
            __wasi_fdstat_t st;
            (void)__wasi_fd_fdstat_get(fd, &st);
            printf(" reported: %s", yn(st.fs_flags & fl[i]));
            __wasi_ciovec_t iov = {(const uint8_t *)"S", 1};
            __wasi_size_t n = 0;
            printf(" write -> %d", __wasi_fd_write(fd, &iov, 1, &n));
            (void)__wasi_fd_close(fd);
        }
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "rights") == 0) return rights_mode();
    if (argc > 1 && strcmp(argv[1], "sync-flags") == 0) return sync_flags_mode();

    /* ---- fdstat ---- */
    fdstat("preopen /sandbox", 3);
    fdstat("preopen /ro", 4);
    fdstat("closed 1234", 1234);
    __wasi_fdstat_t sst;
    printf("fd_fdstat_get stdout -> %d\n", __wasi_fd_fdstat_get(1, &sst));
    printf("fd_fdstat_get stderr -> %d\n", __wasi_fd_fdstat_get(2, &sst));
    int r = open("/sandbox/hello.txt", O_RDONLY);
    fdstat("O_RDONLY file", r);
    filestat("O_RDONLY file", r);
    int w = open("/sandbox/append.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    fdstat("O_WRONLY file", w);
    int rw = open("/sandbox/sub/a.txt", O_RDWR);
    fdstat("O_RDWR file", rw);
    int d = open("/sandbox/sub", O_RDONLY | O_DIRECTORY);
    fdstat("dir", d);
    filestat("dir", d);
    filestat("closed 1234", 1234);
    int ap = open("/sandbox/sub/b.txt", O_WRONLY | O_APPEND);
    fdstat("O_APPEND file", ap);
    printf("fcntl F_GETFL O_APPEND file: append=%s accmode_wronly=%s\n",
           yn(fcntl(ap, F_GETFL) & O_APPEND), yn((fcntl(ap, F_GETFL) & O_ACCMODE) == O_WRONLY));
    printf("fcntl F_GETFL O_RDWR file: accmode_rdwr=%s\n", yn((fcntl(rw, F_GETFL) & O_ACCMODE) == O_RDWR));
    close(ap);
    close(rw);

    /* ---- fd_fdstat_set_flags: turn on APPEND, writes go to the end ---- */
    write(w, "first\n", 6);
    lseek(w, 0, SEEK_SET);
    printf("fcntl F_SETFL O_APPEND -> %d\n", fcntl(w, F_SETFL, O_APPEND));
    fdstat("after set APPEND", w);
    write(w, "second\n", 7);
    printf("tell after append write -> %lld\n", (long long)lseek(w, 0, SEEK_CUR));
    printf("raw fd_fdstat_set_flags 0 -> %d\n", __wasi_fd_fdstat_set_flags(w, 0));
    fdstat("after clear APPEND", w);
    lseek(w, 0, SEEK_SET);
    write(w, "F", 1);
    printf("raw fd_fdstat_set_flags NONBLOCK -> %d\n", __wasi_fd_fdstat_set_flags(w, __WASI_FDFLAGS_NONBLOCK));
    fdstat("after set NONBLOCK", w);
    printf("raw fd_fdstat_set_flags closed fd -> %d\n", __wasi_fd_fdstat_set_flags(1234, 0));
    close(w);
    dump("/sandbox/append.txt");

    /* ---- fd_filestat_set_size ---- */
    int t = open("/sandbox/trunc.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(t, "0123456789", 10);
    printf("ftruncate 4 -> %d\n", ftruncate(t, 4));
    filestat("after truncate 4", t);
    printf("tell after truncate -> %lld\n", (long long)lseek(t, 0, SEEK_CUR));
    printf("raw fd_filestat_set_size 8 -> %d\n", __wasi_fd_filestat_set_size(t, 8));
    filestat("after grow 8", t);
    errno = 0;
    printf("ftruncate -1 -> %d errno=%d\n", ftruncate(t, -1), errno);
    close(t);
    dump("/sandbox/trunc.txt");
    printf("raw fd_filestat_set_size on O_RDONLY fd -> %d\n", __wasi_fd_filestat_set_size(r, 0));
    printf("raw fd_filestat_set_size on dir fd -> %d\n", __wasi_fd_filestat_set_size(d, 0));
    printf("raw fd_filestat_set_size closed fd -> %d\n", __wasi_fd_filestat_set_size(1234, 0));
    close(r);
    printf("hello.txt untouched: ");
    dump("/sandbox/hello.txt");

    /* ---- fd_filestat_set_times ---- */
    int tm = open("/sandbox/times.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    __wasi_timestamp_t atim = 1000000000ull * SEC + 123456789ull, mtim = 1200000000ull * SEC + 987654321ull;
    __wasi_errno_t e = __wasi_fd_filestat_set_times(tm, atim, mtim, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM);
    __wasi_filestat_t fs;
    (void)__wasi_fd_filestat_get(tm, &fs);
    printf("fd_filestat_set_times atim+mtim -> %d atim exact: %s mtim exact: %s\n", e,
           yn(fs.atim == atim), yn(fs.mtim == mtim));
    e = __wasi_fd_filestat_set_times(tm, 0, 1300000000ull * SEC, __WASI_FSTFLAGS_MTIM);
    (void)__wasi_fd_filestat_get(tm, &fs);
    printf("fd_filestat_set_times mtim only -> %d atim kept: %s mtim set: %s\n", e,
           yn(fs.atim == atim), yn(fs.mtim == 1300000000ull * SEC));
    __wasi_timestamp_t before = now_ns();
    e = __wasi_fd_filestat_set_times(tm, 0, 0, __WASI_FSTFLAGS_MTIM_NOW);
    __wasi_timestamp_t after = now_ns();
    (void)__wasi_fd_filestat_get(tm, &fs);
    printf("fd_filestat_set_times mtim_now -> %d mtim is now (+-2s): %s atim kept: %s\n", e,
           yn(fs.mtim + 2 * SEC >= before && fs.mtim <= after + 2 * SEC), yn(fs.atim == atim));
    struct timespec tsv[2] = {{2000000000, 5}, {0, UTIME_OMIT}};
    r = futimens(tm, tsv);
    struct stat st;
    fstat(tm, &st);
    printf("futimens atime=2e9s+5ns mtime=OMIT -> %d atime exact: %s mtime kept: %s\n", r,
           yn(st.st_atim.tv_sec == 2000000000 && st.st_atim.tv_nsec == 5),
           yn((__wasi_timestamp_t)st.st_mtim.tv_sec * SEC + st.st_mtim.tv_nsec == fs.mtim));
    printf("fd_filestat_set_times closed fd -> %d\n",
           __wasi_fd_filestat_set_times(1234, 0, 0, __WASI_FSTFLAGS_MTIM_NOW));
    close(tm);

    /* ---- path_filestat_get ---- */
    pstat("hello.txt", 3, 1, "hello.txt");
    pstat("sub", 3, 1, "sub");
    pstat("sub/deeper/c.txt", 3, 0, "sub/deeper/c.txt");
    pstat("link_hello", 3, 1, "link_hello");
    pstat("link_hello", 3, 0, "link_hello");
    pstat("link_sub", 3, 1, "link_sub");
    pstat("link_sub", 3, 0, "link_sub");
    pstat("dangling", 3, 1, "dangling");
    pstat("dangling", 3, 0, "dangling");
    pstat("missing", 3, 1, "missing");
    pstat("hello.txt/x", 3, 1, "hello.txt/x");
    pstat("sub/ (trailing slash)", 3, 1, "sub/");
    pstat("hello.txt/ (trailing slash)", 3, 1, "hello.txt/");
    pstat(". ", 3, 1, ".");
    pstat("sub/.. ", 3, 1, "sub/..");
    pstat("empty string", 3, 1, "");
    pstat("via dir fd a.txt", d, 1, "a.txt");
    pstat("via unused fd 5000", 5000, 1, "x");
    pstat("readme.txt in /ro", 4, 1, "readme.txt");
    r = stat("/sandbox/sub/b.txt", &st);
    printf("stat sub/b.txt -> %d size=%lld regular=%s\n", r, (long long)st.st_size, yn(S_ISREG(st.st_mode)));
    r = lstat("/sandbox/link_sub", &st);
    printf("lstat link_sub -> %d symlink=%s\n", r, yn(S_ISLNK(st.st_mode)));
    errno = 0;
    r = stat("/sandbox/nope", &st);
    printf("stat nope -> %d errno=%d\n", r, errno);

    /* ---- path_filestat_set_times ---- */
    e = __wasi_path_filestat_set_times(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "times.txt", 1500000000ull * SEC, 1600000000ull * SEC,
                                       __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM);
    (void)__wasi_path_filestat_get(3, 0, "times.txt", &fs);
    printf("path_filestat_set_times times.txt -> %d atim exact: %s mtim exact: %s\n", e,
           yn(fs.atim == 1500000000ull * SEC), yn(fs.mtim == 1600000000ull * SEC));
    __wasi_filestat_t hs;
    (void)__wasi_path_filestat_get(3, 0, "hello.txt", &hs);
    e = __wasi_path_filestat_set_times(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link_hello", 0, 1100000000ull * SEC, __WASI_FSTFLAGS_MTIM);
    (void)__wasi_path_filestat_get(3, 0, "hello.txt", &fs);
    printf("path_filestat_set_times link_hello follow -> %d target mtim set: %s\n", e, yn(fs.mtim == 1100000000ull * SEC));
    struct timespec dts[2] = {{1400000000, 0}, {1400000001, 0}};
    r = utimensat(AT_FDCWD, "/sandbox/sub", dts, 0);
    stat("/sandbox/sub", &st);
    printf("utimensat sub (dir) -> %d mtime exact: %s\n", r, yn(st.st_mtim.tv_sec == 1400000001 && st.st_mtim.tv_nsec == 0));
    e = __wasi_path_filestat_set_times(3, 0, "missing", 0, 0, __WASI_FSTFLAGS_MTIM_NOW);
    printf("path_filestat_set_times missing -> %d\n", e);
    e = __wasi_path_filestat_set_times(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "dangling", 0, 0, __WASI_FSTFLAGS_MTIM_NOW);
    printf("path_filestat_set_times dangling follow -> %d\n", e);
    /* both "set to value" and "set to now" for the same timestamp is invalid */
    e = __wasi_path_filestat_set_times(3, 0, "times.txt", 0, 0, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW);
    printf("path_filestat_set_times atim+atim_now -> %d\n", e);
    e = __wasi_path_filestat_set_times(3, 0, "times.txt", 0, 0, __WASI_FSTFLAGS_MTIM | __WASI_FSTFLAGS_MTIM_NOW);
    printf("path_filestat_set_times mtim+mtim_now -> %d\n", e);
    e = __wasi_fd_filestat_set_times(d, 0, 0, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW);
    printf("fd_filestat_set_times atim+atim_now -> %d\n", e);
    (void)__wasi_path_filestat_get(3, 0, "times.txt", &fs);
    printf("times.txt unchanged by invalid calls: %s\n", yn(fs.atim == 1500000000ull * SEC && fs.mtim == 1600000000ull * SEC));
    close(d);
    return 0;
}
