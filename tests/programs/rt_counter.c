/* A reactor: no _start, state kept in linear memory between calls of its exports. */
#include <stdint.h>
#include <stdio.h>

static int64_t total;
static int32_t calls;

__attribute__((export_name("add"))) int64_t add(int32_t x) {
    total += x;
    calls++;
    return total;
}

__attribute__((export_name("calls"))) int32_t get_calls(void) { return calls; }

__attribute__((export_name("hello"))) int32_t hello(void) {
    return printf("counter at %lld after %d calls\n", (long long)total, calls);
}
