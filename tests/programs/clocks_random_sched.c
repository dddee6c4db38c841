/* clock_res_get, clock_time_get, random_get, sched_yield (raw and through wasi-libc). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/random.h>
#include <wasi/api.h>

static const char *yn(int b) { return b ? "yes" : "no"; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "invalid-clock") == 0) {
        /* Spec: an unknown clock id is EINVAL (28). wasmtime traps on the bad enum value. */
        __wasi_timestamp_t dummy;
        printf("clock_res_get invalid id 99 -> %d\n", __wasi_clock_res_get(99, &dummy));
        printf("clock_time_get invalid id 99 -> %d\n", __wasi_clock_time_get(99, 0, &dummy));
        return 0;
    }
    const char *names[] = {"realtime", "monotonic", "process_cputime", "thread_cputime"};
    /* The CPU-time clocks are optional: wasmtime answers EBADF (8). Own mode, kept out of
     * the differential run. */
    int cputime = argc > 1 && strcmp(argv[1], "cputime") == 0;
    for (int id = cputime ? 2 : 0; id < (cputime ? 4 : 2); id++) {
        __wasi_timestamp_t res = 0;
        __wasi_errno_t e = __wasi_clock_res_get(id, &res);
        printf("clock_res_get %s -> %d", names[id], e);
        if (e == 0) printf(" res>0: %s res<=1s: %s", yn(res > 0), yn(res <= 1000000000ull));
        printf("\n");
        __wasi_timestamp_t t = 0;
        e = __wasi_clock_time_get(id, 1, &t);
        printf("clock_time_get %s -> %d", names[id], e);
        if (e == 0) printf(" nonzero: %s", yn(t != 0));
        printf("\n");
    }
    if (cputime) {
        __wasi_timestamp_t a = 0, b = 0;
        if (__wasi_clock_time_get(2, 1, &a) == 0) {
            volatile unsigned long x = 0;
            for (unsigned long i = 0; i < 20000000ul; i++) x += i;
            (void)__wasi_clock_time_get(2, 1, &b);
            printf("process_cputime advances with work: %s\n", yn(b > a));
        }
        return 0;
    }
    /* realtime is after 2020-01-01 and before 2200 */
    __wasi_timestamp_t rt = 0;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 0, &rt);
    printf("realtime after 2020: %s\n", yn(rt > 1577836800ull * 1000000000ull));
    printf("realtime before 2200: %s\n", yn(rt < 7258118400ull * 1000000000ull));
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    time_t now = time(NULL);
    printf("clock_gettime realtime -> %d, agrees with raw within 5s: %s\n", r,
           yn(ts.tv_sec - (time_t)(rt / 1000000000ull) < 5 && ts.tv_sec >= (time_t)(rt / 1000000000ull)));
    printf("time() agrees with clock_gettime within 5s: %s\n", yn(now - ts.tv_sec < 5 && now >= ts.tv_sec));
    printf("tv_nsec in range: %s\n", yn(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L));

    /* monotonic never goes backwards */
    __wasi_timestamp_t prev = 0, cur = 0;
    int mono_ok = 1;
    for (int i = 0; i < 1000; i++) {
        if (__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &cur) != 0) mono_ok = 0;
        if (cur < prev) mono_ok = 0;
        prev = cur;
    }
    printf("monotonic non-decreasing: %s\n", yn(mono_ok));
    struct timespec m1, m2;
    clock_gettime(CLOCK_MONOTONIC, &m1);
    /* busy-wait ~20ms on the monotonic clock, then check that realtime moved too */
    __wasi_timestamp_t start = 0, rt1 = 0, rt2 = 0;
    (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &rt1);
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &start);
    do { (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &cur); } while (cur - start < 20000000ull);
    (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &rt2);
    clock_gettime(CLOCK_MONOTONIC, &m2);
    long long dm = (m2.tv_sec - m1.tv_sec) * 1000000000LL + (m2.tv_nsec - m1.tv_nsec);
    printf("monotonic advanced >= 20ms: %s\n", yn(dm >= 20000000LL));
    printf("realtime advanced during wait: %s\n", yn(rt2 > rt1));
    struct timespec resm;
    printf("clock_getres monotonic -> %d positive: %s\n", clock_getres(CLOCK_MONOTONIC, &resm),
           yn(resm.tv_sec > 0 || resm.tv_nsec > 0));

    /* nanosleep goes through poll_oneoff in wasi-libc; covered more in poll.c */
    struct timespec sl = {0, 5000000};
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &start);
    r = nanosleep(&sl, NULL);
    (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &cur);
    printf("nanosleep 5ms -> %d slept >= 5ms: %s\n", r, yn(cur - start >= 5000000ull));

    /* random_get */
    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    printf("random_get 32 -> %d\n", __wasi_random_get(buf, sizeof buf));
    int nz = 0;
    for (size_t i = 0; i < sizeof buf; i++) nz |= buf[i];
    printf("random 32 bytes not all zero: %s\n", yn(nz));
    uint8_t buf2[32];
    memset(buf2, 0, sizeof buf2);
    (void)__wasi_random_get(buf2, sizeof buf2);
    printf("two random draws differ: %s\n", yn(memcmp(buf, buf2, 32) != 0));
    uint8_t guard[8] = {0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A};
    printf("random_get 0 bytes -> %d\n", __wasi_random_get(guard, 0));
    printf("random_get 0 bytes left buffer alone: %s\n", yn(guard[0] == 0x5A && guard[7] == 0x5A));
    memset(guard, 0x5A, sizeof guard);
    (void)__wasi_random_get(guard, 4);
    printf("random_get 4 bytes left byte 4..7 alone: %s\n",
           yn(guard[4] == 0x5A && guard[5] == 0x5A && guard[6] == 0x5A && guard[7] == 0x5A));
    /* big draw, byte histogram sanity */
    static uint8_t big[65536];
    printf("random_get 65536 -> %d\n", __wasi_random_get(big, sizeof big));
    int counts[256] = {0};
    for (size_t i = 0; i < sizeof big; i++) counts[big[i]]++;
    int minc = 1 << 30, maxc = 0;
    for (int i = 0; i < 256; i++) { if (counts[i] < minc) minc = counts[i]; if (counts[i] > maxc) maxc = counts[i]; }
    printf("random 64KiB roughly uniform: %s\n", yn(minc > 150 && maxc < 400));
    uint8_t ent[16] = {0};
    r = getentropy(ent, sizeof ent);
    nz = 0;
    for (size_t i = 0; i < sizeof ent; i++) nz |= ent[i];
    printf("getentropy 16 -> %d not all zero: %s\n", r, yn(nz));
    errno = 0;
    r = getentropy(big, 257);
    printf("getentropy 257 -> %d errno=%d\n", r, errno);

    /* sched_yield */
    printf("sched_yield raw -> %d\n", __wasi_sched_yield());
    printf("sched_yield libc -> %d\n", sched_yield());
    return 0;
}
