/* poll_oneoff: clock subscriptions (relative/absolute, monotonic/realtime), fd_read and
 * fd_write subscriptions on files, bad fds, and wasi-libc's poll()/nanosleep on top. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *yn(int b) { return b ? "yes" : "no"; }
static const char *etype(int t) { return t == 0 ? "clock" : t == 1 ? "fd_read" : t == 2 ? "fd_write" : "?"; }

static __wasi_timestamp_t mono(void) {
    __wasi_timestamp_t t = 0;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t);
    return t;
}

#define MS 1000000ull

static __wasi_subscription_t clock_sub(uint64_t ud, __wasi_clockid_t id, __wasi_timestamp_t timeout, int abs) {
    __wasi_subscription_t s;
    memset(&s, 0, sizeof s);
    s.userdata = ud;
    s.u.tag = __WASI_EVENTTYPE_CLOCK;
    s.u.u.clock.id = id;
    s.u.u.clock.timeout = timeout;
    s.u.u.clock.precision = 0;
    s.u.u.clock.flags = abs ? __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME : 0;
    return s;
}

static __wasi_subscription_t fd_sub(uint64_t ud, int type, int fd) {
    __wasi_subscription_t s;
    memset(&s, 0, sizeof s);
    s.userdata = ud;
    s.u.tag = type;
    s.u.u.fd_read.file_descriptor = fd;
    return s;
}

static int cmp_ev(const void *a, const void *b) {
    const __wasi_event_t *x = a, *y = b;
    return x->userdata < y->userdata ? -1 : x->userdata > y->userdata;
}

/* print events sorted by userdata; nbytes only as "nbytes>0" for files */
static void show(const char *label, __wasi_errno_t e, __wasi_event_t *ev, __wasi_size_t n) {
    qsort(ev, n, sizeof *ev, cmp_ev);
    printf("%s -> %d nevents=%u", label, e, (unsigned)n);
    for (__wasi_size_t i = 0; i < n; i++) {
        printf(" {ud=%llu type=%s err=%d", (unsigned long long)ev[i].userdata, etype(ev[i].type), ev[i].error);
        if (ev[i].type == __WASI_EVENTTYPE_FD_READ && ev[i].error == 0)
            printf(" nbytes>0=%s", yn(ev[i].fd_readwrite.nbytes > 0));
        printf("}");
    }
    printf("\n");
}

/* Cases where wasmtime departs from the spec; printed for information, checked loosely by
 * the per-function tests, and kept out of the differential run:
 * - two ready fds: the spec reports every ready subscription; wasmtime reports one;
 * - a bad fd: the spec reports EBADF in that subscription's event; wasmtime fails the whole
 *   call with EBADF. */
static int quirks_mode(void) {
    __wasi_subscription_t in[3];
    __wasi_event_t out[3];
    __wasi_size_t n = 0;
    int rfd = open("/sandbox/hello.txt", O_RDONLY);
    int wfd = open("/sandbox/polled.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    in[0] = fd_sub(200, __WASI_EVENTTYPE_FD_WRITE, wfd);
    in[1] = fd_sub(201, __WASI_EVENTTYPE_FD_READ, rfd);
    __wasi_errno_t e = __wasi_poll_oneoff(in, out, 2, &n);
    show("poll_oneoff fd_write file + fd_read file", e, out, n);
    struct pollfd pfd[2] = {{rfd, POLLIN, 0}, {wfd, POLLOUT, 0}};
    int r = poll(pfd, 2, 1000);
    printf("poll file POLLIN + file POLLOUT -> %d revents: in=%s out=%s\n", r,
           yn(pfd[0].revents & POLLIN), yn(pfd[1].revents & POLLOUT));
    in[0] = fd_sub(400, __WASI_EVENTTYPE_FD_READ, 1234);
    in[1] = clock_sub(401, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    __wasi_timestamp_t t0 = mono();
    n = 0;
    e = __wasi_poll_oneoff(in, out, 2, &n);
    show("poll_oneoff fd_read closed fd + 5s clock", e, out, n);
    printf("  returned without waiting for the clock: %s\n", yn(mono() - t0 < 2000 * MS));
    return 0;
}

/* stdin readiness: the harness gives stdin data (or EOF): fd_read is ready at once. */
static int stdin_mode(void) {
    __wasi_subscription_t in[2];
    __wasi_event_t out[2];
    __wasi_size_t n = 0;
    in[0] = fd_sub(500, __WASI_EVENTTYPE_FD_READ, 0);
    in[1] = clock_sub(501, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    __wasi_timestamp_t t0 = mono();
    __wasi_errno_t e = __wasi_poll_oneoff(in, out, 2, &n);
    printf("poll_oneoff fd_read stdin + 5s clock -> %d nevents=%u ud=%llu type=%s err=%d\n", e, (unsigned)n,
           (unsigned long long)out[0].userdata, etype(out[0].type), out[0].error);
    printf("  returned without waiting for the clock: %s\n", yn(mono() - t0 < 2000 * MS));
    char buf[64];
    ssize_t r = read(0, buf, sizeof buf);
    printf("read stdin after poll -> %zd\n", r);
    return 0;
}

/* stdin is an open pipe with no data: poll must time out on the clock, not block. */
static int stdin_timeout_mode(void) {
    __wasi_subscription_t in[2];
    __wasi_event_t out[2];
    __wasi_size_t n = 0;
    in[0] = fd_sub(600, __WASI_EVENTTYPE_FD_READ, 0);
    in[1] = clock_sub(601, __WASI_CLOCKID_MONOTONIC, 300 * MS, 0);
    __wasi_timestamp_t t0 = mono();
    __wasi_errno_t e = __wasi_poll_oneoff(in, out, 2, &n);
    __wasi_timestamp_t dt = mono() - t0;
    show("poll_oneoff fd_read idle stdin + 300ms clock", e, out, n);
    printf("  waited >= 300ms: %s, < 3s: %s\n", yn(dt >= 300 * MS), yn(dt < 3000 * MS));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "quirks") == 0) return quirks_mode();
    if (argc > 1 && strcmp(argv[1], "stdin-timeout") == 0) return stdin_timeout_mode();
    if (argc > 1 && strcmp(argv[1], "stdin") == 0) return stdin_mode();
    __wasi_subscription_t in[4];
    __wasi_event_t out[4];
    __wasi_size_t n = 0;
    __wasi_errno_t e;
    __wasi_timestamp_t t0, t1;

    /* relative monotonic timeout */
    in[0] = clock_sub(42, __WASI_CLOCKID_MONOTONIC, 30 * MS, 0);
    t0 = mono();
    e = __wasi_poll_oneoff(in, out, 1, &n);
    t1 = mono();
    show("poll_oneoff monotonic relative 30ms", e, out, n);
    printf("  waited >= 30ms: %s, < 2s: %s\n", yn(t1 - t0 >= 30 * MS), yn(t1 - t0 < 2000 * MS));

    /* absolute monotonic deadline */
    t0 = mono();
    in[0] = clock_sub(7, __WASI_CLOCKID_MONOTONIC, t0 + 25 * MS, 1);
    e = __wasi_poll_oneoff(in, out, 1, &n);
    t1 = mono();
    show("poll_oneoff monotonic absolute now+25ms", e, out, n);
    printf("  waited until deadline: %s\n", yn(t1 >= t0 + 25 * MS));

    /* absolute deadline in the past: immediate */
    t0 = mono();
    in[0] = clock_sub(8, __WASI_CLOCKID_MONOTONIC, 1, 1);
    e = __wasi_poll_oneoff(in, out, 1, &n);
    show("poll_oneoff monotonic absolute in the past", e, out, n);
    printf("  returned within 1s: %s\n", yn(mono() - t0 < 1000 * MS));

    /* realtime relative */
    in[0] = clock_sub(9, __WASI_CLOCKID_REALTIME, 15 * MS, 0);
    t0 = mono();
    e = __wasi_poll_oneoff(in, out, 1, &n);
    show("poll_oneoff realtime relative 15ms", e, out, n);
    printf("  waited >= 15ms: %s\n", yn(mono() - t0 >= 15 * MS));

    /* zero timeout */
    in[0] = clock_sub(10, __WASI_CLOCKID_MONOTONIC, 0, 0);
    e = __wasi_poll_oneoff(in, out, 1, &n);
    show("poll_oneoff relative 0", e, out, n);

    /* two clocks: only the earlier one fires */
    in[0] = clock_sub(1, __WASI_CLOCKID_MONOTONIC, 3000 * MS, 0);
    in[1] = clock_sub(2, __WASI_CLOCKID_MONOTONIC, 10 * MS, 0);
    t0 = mono();
    e = __wasi_poll_oneoff(in, out, 2, &n);
    t1 = mono();
    show("poll_oneoff clocks 3s+10ms", e, out, n);
    printf("  returned before the 3s clock: %s\n", yn(t1 - t0 < 3000 * MS));

    /* regular files are always ready for reading and writing */
    int rfd = open("/sandbox/hello.txt", O_RDONLY);
    int wfd = open("/sandbox/polled.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
    in[0] = fd_sub(100, __WASI_EVENTTYPE_FD_READ, rfd);
    in[1] = clock_sub(101, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    t0 = mono();
    e = __wasi_poll_oneoff(in, out, 2, &n);
    show("poll_oneoff fd_read file + 5s clock", e, out, n);
    printf("  returned without waiting for the clock: %s\n", yn(mono() - t0 < 2000 * MS));
    in[0] = fd_sub(200, __WASI_EVENTTYPE_FD_WRITE, wfd);
    in[1] = clock_sub(201, __WASI_CLOCKID_MONOTONIC, 5000 * MS, 0);
    e = __wasi_poll_oneoff(in, out, 2, &n);
    show("poll_oneoff fd_write file + 5s clock", e, out, n);
    in[0] = fd_sub(300, __WASI_EVENTTYPE_FD_WRITE, 1);
    e = __wasi_poll_oneoff(in, out, 1, &n);
    printf("poll_oneoff fd_write stdout -> %d nevents=%u ud=%llu type=%s err=%d\n", e, (unsigned)n,
           (unsigned long long)out[0].userdata, etype(out[0].type), out[0].error);

    /* no subscriptions */
    n = 99;
    e = __wasi_poll_oneoff(in, out, 0, &n);
    printf("poll_oneoff 0 subscriptions -> %d\n", e);

    /* ---- wasi-libc on top ---- */
    struct pollfd pfd[2] = {{rfd, POLLIN, 0}, {-1, POLLIN, 0}};
    int r = poll(pfd, 2, 1000);
    printf("poll file POLLIN + fd -1 -> %d revents: in=%s ignored=%s\n", r,
           yn(pfd[0].revents & POLLIN), yn(pfd[1].revents == 0));
    struct pollfd pw = {wfd, POLLOUT, 0};
    r = poll(&pw, 1, 1000);
    printf("poll file POLLOUT -> %d revents: out=%s\n", r, yn(pw.revents & POLLOUT));
    t0 = mono();
    r = poll(NULL, 0, 20);
    printf("poll no fds 20ms -> %d waited >= 20ms: %s\n", r, yn(mono() - t0 >= 20 * MS));
    struct timespec ts = {0, 12 * 1000000L};
    t0 = mono();
    r = nanosleep(&ts, NULL);
    printf("nanosleep 12ms -> %d waited >= 12ms: %s\n", r, yn(mono() - t0 >= 12 * MS));
    t0 = mono();
    r = usleep(8000);
    printf("usleep 8ms -> %d waited >= 8ms: %s\n", r, yn(mono() - t0 >= 8 * MS));
    t0 = mono();
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += 10 * 1000000L;
    if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
    printf("clock_nanosleep absolute +10ms -> %d waited >= 10ms: %s\n", r, yn(mono() - t0 >= 10 * MS));
    close(rfd);
    close(wfd);
    return 0;
}
