/* A test command for the cluster tests: prints its arguments and environment, writes a file
 * in /data, and exits with the code in $CODE. With "sleep N" it sleeps N ms first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "sleep") == 0 && i + 1 < argc) {
            long ms = atol(argv[++i]);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    printf("hello from %s", argv[0]);
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\nGREETING=%s\n", getenv("GREETING") ? getenv("GREETING") : "(unset)");
    fprintf(stderr, "a line on stderr\n");
    FILE *f = fopen("/data/out.txt", "w");
    if (f) {
        fputs("written by the app\n", f);
        fclose(f);
        printf("wrote /data/out.txt\n");
    }
    fflush(stdout);
    return getenv("CODE") ? atoi(getenv("CODE")) : 0;
}
