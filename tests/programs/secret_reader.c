// Reads a released secret from /run/secrets and another from the environment; prints each
// reversed (so the logs never hold the secret itself).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void show(const char *what, const char *s) {
    size_t n = strlen(s);
    printf("%s reversed: ", what);
    for (size_t i = n; i > 0; i--) putchar(s[i - 1]);
    putchar('\n');
}

int main(void) {
    char buf[256];
    FILE *f = fopen("/run/secrets/db_password", "r");
    if (!f) { printf("no /run/secrets/db_password\n"); return 3; }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    show("db_password", buf);
    const char *tok = getenv("api_token");
    if (!tok) { printf("no api_token in env\n"); return 4; }
    show("api_token", tok);
    printf("other secret visible: %s\n", fopen("/run/secrets/other", "r") ? "yes" : "no");
    return 0;
}
