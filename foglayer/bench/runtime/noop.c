/* (e) 100,000 calls of a no-op host import: the floor of one Wasm -> host -> Wasm trip,
 * without any WASI work. Wasm only (the import has no native meaning): noop [COUNT] */
#include "rtbench.h"

__attribute__((import_module("fog_bench"), import_name("noop"))) void fog_bench_noop(void);

int main(int argc, char **argv)
{
    int64_t count = argc > 1 ? atol(argv[1]) : 100000;
    double t0 = rt_now();
    for (int64_t i = 0; i < count; i++)
        fog_bench_noop();
    double t = rt_now() - t0;
    rt_report("noop", t, count, rt_fnv(RT_FNV_OFFSET, &count, sizeof count));
    return 0;
}
