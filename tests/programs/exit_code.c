/* proc_exit. Usage: exit_code.wasm MODE CODE
 *   exit   -- exit(CODE): atexit handlers run, stdio is flushed, then proc_exit(CODE)
 *   raw    -- __wasi_proc_exit(CODE) directly: no atexit handlers
 *   return -- return CODE from main
 * Prints a line before leaving and one from an atexit handler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static void bye(void) { printf("atexit handler ran\n"); fflush(stdout); }

int main(int argc, char **argv) {
    if (argc < 3) { printf("usage: exit_code MODE CODE\n"); return 2; }
    int code = atoi(argv[2]);
    atexit(bye);
    printf("mode=%s code=%d\n", argv[1], code);
    if (!strcmp(argv[1], "exit")) {
        printf("this line is buffered and must be flushed by exit()");
        printf("\n");
        exit(code);
    }
    if (!strcmp(argv[1], "raw")) {
        fflush(stdout);
        __wasi_proc_exit((__wasi_exitcode_t)code);
    }
    if (!strcmp(argv[1], "return")) return code;
    printf("unknown mode\n");
    return 2;
}
