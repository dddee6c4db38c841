/* sock_accept, sock_recv, sock_send, sock_shutdown. No socket is ever granted, so each is
 * called on a regular file, a directory (the preopen), stdout, and a closed fd, raw and
 * through wasi-libc (accept/recv/send/shutdown), and the errno is printed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wasi/api.h>

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int file = open("/sandbox/hello.txt", O_RDWR);
    struct { const char *name; int fd; } targets[] = {
        {"file", file}, {"dir", 3}, {"stdout", 1}, {"closed", 1234},
    };
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        const char *nm = targets[i].name;
        int fd = targets[i].fd;
        __wasi_fd_t nfd = 0xFFFF;
        printf("sock_accept %s -> %d\n", nm, __wasi_sock_accept(fd, 0, &nfd));
        printf("sock_accept %s nonblock -> %d\n", nm, __wasi_sock_accept(fd, __WASI_FDFLAGS_NONBLOCK, &nfd));
        char buf[16];
        __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf};
        __wasi_size_t n = 0;
        __wasi_roflags_t rof = 0;
        printf("sock_recv %s -> %d\n", nm, __wasi_sock_recv(fd, &iov, 1, 0, &n, &rof));
        printf("sock_recv %s peek -> %d\n", nm, __wasi_sock_recv(fd, &iov, 1, __WASI_RIFLAGS_RECV_PEEK, &n, &rof));
        __wasi_ciovec_t ciov = {(const uint8_t *)"x", 1};
        printf("sock_send %s -> %d\n", nm, __wasi_sock_send(fd, &ciov, 1, 0, &n));
        printf("sock_shutdown %s rd -> %d\n", nm, __wasi_sock_shutdown(fd, __WASI_SDFLAGS_RD));
        printf("sock_shutdown %s rd|wr -> %d\n", nm, __wasi_sock_shutdown(fd, __WASI_SDFLAGS_RD | __WASI_SDFLAGS_WR));
    }
    char buf[16];
    errno = 0; printf("accept(file) -> %d errno=%d\n", accept(file, NULL, NULL), errno);
    errno = 0; printf("recv(file) -> %zd errno=%d\n", recv(file, buf, sizeof buf, 0), errno);
    errno = 0; printf("send(file) -> %zd errno=%d\n", send(file, "x", 1, 0), errno);
    errno = 0; printf("shutdown(file, SHUT_RDWR) -> %d errno=%d\n", shutdown(file, SHUT_RDWR), errno);
    errno = 0; printf("recv(closed) -> %zd errno=%d\n", recv(1234, buf, sizeof buf, 0), errno);
    /* the file is untouched and still usable as a file */
    ssize_t n = pread(file, buf, sizeof buf, 0);
    printf("file still readable -> %zd [%.*s]\n", n, (int)(n > 0 ? n : 0), buf);
    close(file);
    return 0;
}
