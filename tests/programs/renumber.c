/* fd_renumber (raw: wasi-libc has no wrapper; dup2 is not available), plus fd_prestat_get
 * and fd_prestat_dir_name on every low fd. Leaves /sandbox/stderr.txt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *yn(int b) { return b ? "yes" : "no"; }

static void readfd(const char *label, int fd) {
    char buf[64];
    __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_fd_pread(fd, &iov, 1, 0, &n);
    if (e) n = 0;
    for (__wasi_size_t i = 0; i < n; i++) if (buf[i] == '\n') buf[i] = '|';
    printf("%s: pread fd -> %d [%.*s]\n", label, e, (int)n, buf);
}

static void prestat(const char *label, int fd) {
    __wasi_prestat_t ps;
    memset(&ps, 0xEE, sizeof ps);
    __wasi_errno_t e = __wasi_fd_prestat_get(fd, &ps);
    printf("fd_prestat_get %s -> %d", label, e);
    if (e == 0) {
        char name[64];
        memset(name, '#', sizeof name);
        size_t len = ps.u.dir.pr_name_len;
        printf(" tag=%d name_len=%zu", ps.tag, len);
        __wasi_errno_t e2 = __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len);
        printf(" dir_name -> %d [%.*s] no NUL written: %s", e2, (int)len, name, yn(name[len] == '#'));
        e2 = __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, sizeof name);
        printf(" big buffer -> %d", e2);
        if (len > 1) {
            memset(name, '#', sizeof name);
            e2 = __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, 1);
            printf(" 1-byte buffer -> %d", e2);
        }
    }
    printf("\n");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* ---- preopens ---- */
    for (int fd = 0; fd < 7; fd++) {
        char label[8];
        snprintf(label, sizeof label, "%d", fd);
        prestat(label, fd);
    }
    int sub = open("/sandbox/sub", O_RDONLY | O_DIRECTORY);
    prestat("opened dir (not a preopen)", sub);
    close(sub);
    printf("fd_prestat_dir_name closed fd -> %d\n", __wasi_fd_prestat_dir_name(1234, (uint8_t *)"xxxxxxxx", 8));

    /* ---- fd_renumber ---- */
    int a = open("/sandbox/hello.txt", O_RDONLY);
    int b = open("/sandbox/sub/a.txt", O_RDONLY);
    printf("two files open on distinct fds: %s\n", yn(a >= 3 && b >= 3 && a != b));
    readfd("before, b", b);
    printf("fd_renumber a -> b -> %d\n", __wasi_fd_renumber(a, b));
    readfd("after, b", b);
    readfd("after, a", a);
    printf("fd_close a after renumber -> %d\n", __wasi_fd_close(a));
    printf("fd_renumber b -> b (same) -> %d\n", __wasi_fd_renumber(b, b));
    readfd("after self-renumber, b", b);
    printf("fd_renumber closed -> b -> %d\n", __wasi_fd_renumber(1234, b));
    readfd("b survives failed renumber", b);
    printf("fd_renumber b -> unused fd 1234 -> %d\n", __wasi_fd_renumber(b, 1234));
    readfd("b after renumber to unused", b);

    /* the position travels with the descriptor */
    int c = open("/sandbox/hello.txt", O_RDONLY);
    int d = open("/sandbox/victim.txt", O_RDONLY);
    char buf[16];
    read(c, buf, 6);
    printf("fd_renumber c(pos 6) -> d -> %d\n", __wasi_fd_renumber(c, d));
    ssize_t n = read(d, buf, sizeof buf);
    printf("read d continues at 6 -> %zd [%.*s]\n", n, (int)(n > 0 ? n : 0), buf);
    close(d);

    /* replace stderr with a file: writes to fd 2 land in the file */
    int f = open("/sandbox/stderr.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    printf("fd_renumber file -> 2 (stderr) -> %d\n", __wasi_fd_renumber(f, 2));
    n = write(2, "written via fd 2\n", 17);
    printf("write fd 2 -> %zd\n", n);
    __wasi_fdstat_t st;
    printf("fd_fdstat_get 2 -> %d type=%s\n", __wasi_fd_fdstat_get(2, &st), st.fs_filetype == __WASI_FILETYPE_REGULAR_FILE ? "file" : "other");
    errno = 0;
    n = write(f, "x", 1);
    printf("write old fd -> %zd errno=%d\n", n, errno);

    /* renumber a preopen (raw): the prestat moves with it */
    int g = open("/sandbox/victim.txt", O_RDONLY);
    printf("fd_renumber 4 (/ro preopen) -> g -> %d\n", __wasi_fd_renumber(4, g));
    prestat("old preopen fd 4", 4);
    prestat("g (now /ro)", g);
    __wasi_fd_t rfd;
    __wasi_errno_t e = __wasi_path_open(g, 0, "readme.txt", 0, __WASI_RIGHTS_FD_READ, 0, 0, &rfd);
    printf("path_open readme.txt relative to g -> %d\n", e);
    if (e == 0) readfd("readme via renumbered preopen", rfd);
    return 0;
}
