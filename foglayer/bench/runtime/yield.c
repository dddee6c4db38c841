/* (d) 100,000 sched_yield() calls: the cost of one trip into the host and back: yield [COUNT] */
#include <sched.h>

#include "rtbench.h"

int main(int argc, char **argv)
{
    int64_t count = argc > 1 ? atol(argv[1]) : 100000;
    int64_t failed = 0;
    double t0 = rt_now();
    for (int64_t i = 0; i < count; i++)
        failed += sched_yield() != 0;
    double t = rt_now() - t0;
    if (failed) rt_die("yield", "sched_yield failed");
    rt_report("yield", t, count, rt_fnv(RT_FNV_OFFSET, &count, sizeof count));
    return 0;
}
