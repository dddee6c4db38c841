/* proc_raise (deprecated in the spec, dropped from wasi-libc's header, still an import of
 * wasi_snapshot_preview1). Usage: raise.wasm SIGNAL... (or "all" for every valid signal 0..30)
 * Prints the errno each call returns, then exits 0. wasmtime answers ENOTSUP (58) for every
 * valid signal and traps on a value outside the enum (e.g. 99). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise")))
extern int32_t wasi_proc_raise(int32_t sig);

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int all = argc > 1 && argv[1][0] == 'a';
    int n = all ? 31 : argc - 1;
    for (int i = 0; i < n; i++) {
        int sig = all ? i : atoi(argv[i + 1]);
        printf("calling proc_raise(%d)\n", sig);
        int32_t e = wasi_proc_raise(sig);
        printf("proc_raise(%d) returned %d\n", sig, (int)e);
    }
    printf("still running after proc_raise\n");
    return 0;
}
