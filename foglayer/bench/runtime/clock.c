/* (c) 100,000 clock_gettime(CLOCK_MONOTONIC) calls: clock [COUNT] */
#include "rtbench.h"

int main(int argc, char **argv)
{
    int64_t count = argc > 1 ? atol(argv[1]) : 100000;
    struct timespec ts, prev = {0, 0};
    int64_t backwards = 0;
    double t0 = rt_now();
    for (int64_t i = 0; i < count; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (ts.tv_sec < prev.tv_sec || (ts.tv_sec == prev.tv_sec && ts.tv_nsec < prev.tv_nsec))
            backwards++;
        prev = ts;
    }
    double t = rt_now() - t0;
    if (backwards) rt_die("clock", "CLOCK_MONOTONIC went backwards");
    /* the check covers what must agree: the count and that the clock never went back */
    uint64_t check = rt_fnv(RT_FNV_OFFSET, &count, sizeof count);
    check = rt_fnv(check, &backwards, sizeof backwards);
    rt_report("clock", t, count, check);
    return 0;
}
