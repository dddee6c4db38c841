/* args_sizes_get, args_get, environ_sizes_get, environ_get: raw WASI calls checked
 * against what wasi-libc hands main(). Prints argv[1..] and the sorted environment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

extern char **environ;

static int cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
    __wasi_size_t argc2 = 0, argv_size = 0;
    __wasi_errno_t e = __wasi_args_sizes_get(&argc2, &argv_size);
    printf("args_sizes_get -> %d argc=%u\n", e, (unsigned)argc2);
    printf("args_sizes_get argc matches main: %s\n", (int)argc2 == argc ? "yes" : "no");
    size_t expect_size = 0;
    for (int i = 0; i < argc; i++) expect_size += strlen(argv[i]) + 1;
    printf("args_sizes_get buf size matches: %s\n", argv_size == expect_size ? "yes" : "no");

    uint8_t **av = calloc(argc2 + 1, sizeof *av);
    uint8_t *abuf = malloc(argv_size + 1);
    memset(abuf, 0xAA, argv_size + 1);
    e = __wasi_args_get(av, abuf);
    printf("args_get -> %d\n", e);
    int same = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp((char *)av[i], argv[i]) != 0) same = 0;
        if (av[i] < abuf || av[i] >= abuf + argv_size) same = 0;
    }
    printf("args_get pointers into buffer and equal to main argv: %s\n", same ? "yes" : "no");
    printf("args_get wrote nothing past the buffer: %s\n", abuf[argv_size] == 0xAA ? "yes" : "no");
    printf("args_get buffer NUL-terminated: %s\n", argv_size && abuf[argv_size - 1] == 0 ? "yes" : "no");

    printf("argc=%d\n", argc);
    printf("argv[0] nonempty: %s\n", argc > 0 && argv[0][0] ? "yes" : "no");
    for (int i = 1; i < argc; i++) printf("argv[%d]=[%s] len=%zu\n", i, argv[i], strlen(argv[i]));

    __wasi_size_t envc = 0, env_size = 0;
    e = __wasi_environ_sizes_get(&envc, &env_size);
    printf("environ_sizes_get -> %d envc=%u size=%u\n", e, (unsigned)envc, (unsigned)env_size);
    uint8_t **ev = calloc(envc + 1, sizeof *ev);
    uint8_t *ebuf = malloc(env_size + 1);
    memset(ebuf, 0xAA, env_size + 1);
    e = __wasi_environ_get(ev, ebuf);
    printf("environ_get -> %d\n", e);
    printf("environ_get wrote nothing past the buffer: %s\n", ebuf[env_size] == 0xAA ? "yes" : "no");
    size_t libc_n = 0;
    while (environ && environ[libc_n]) libc_n++;
    printf("environ count matches libc: %s\n", libc_n == envc ? "yes" : "no");

    char **sorted = calloc(envc + 1, sizeof *sorted);
    for (size_t i = 0; i < envc; i++) sorted[i] = (char *)ev[i];
    qsort(sorted, envc, sizeof *sorted, cmp);
    for (size_t i = 0; i < envc; i++) printf("env %s\n", sorted[i]);

    const char *g = getenv("FOG_TEST_GREETING");
    printf("getenv FOG_TEST_GREETING=%s\n", g ? g : "(null)");
    const char *eq = getenv("FOG_TEST_EQ");
    printf("getenv FOG_TEST_EQ=%s\n", eq ? eq : "(null)");
    const char *empty = getenv("FOG_TEST_EMPTY");
    printf("getenv FOG_TEST_EMPTY=%s\n", empty ? (*empty ? empty : "(empty)") : "(null)");
    const char *missing = getenv("FOG_TEST_MISSING");
    printf("getenv FOG_TEST_MISSING=%s\n", missing ? missing : "(null)");
    return 0;
}
