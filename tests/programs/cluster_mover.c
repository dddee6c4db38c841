/* cluster_mover: a command that moves live between nodes mid-run. Usage:
 * cluster_mover STEPS [GATE...]. Each step mixes a 1 MiB buffer, prints a line and appends
 * one to /data/out.txt (open the whole run). At each GATE step it prints "waiting at gate
 * N" and keeps computing until /data/goN exists (the test creates it wherever the command
 * runs by then). Exits with 7. The output does not depend on how long it waited, unless
 * TICKS is set: then each turn of the wait prints "tick K" (K = 0, 1, ... over the run). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WORDS (1 << 18) /* 1 MiB of uint32_t */

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 20;
    uint32_t *buf = malloc(WORDS * sizeof *buf);
    uint32_t *scratch = malloc(WORDS * sizeof *scratch);
    FILE *out = fopen("/data/out.txt", "w");
    if (!buf || !scratch || !out) {
        perror("start");
        return 1;
    }
    for (uint32_t i = 0; i < WORDS; i++)
        buf[i] = mix(i + 1);
    uint64_t total = 0;
    unsigned ticks = 0;
    int tick = getenv("TICKS") != NULL;
    for (int s = 0; s < steps; s++) {
        for (int g = 2; g < argc; g++) {
            if (atoi(argv[g]) != s)
                continue;
            printf("waiting at gate %d\n", g - 1);
            fflush(stdout);
            char go[32];
            snprintf(go, sizeof go, "/data/go%d", g - 1);
            uint32_t k = 0;
            while (access(go, F_OK) != 0) { /* busy, dirtying memory that is not the result */
                for (uint32_t i = 0; i < WORDS; i += 64)
                    scratch[(i + k) % WORDS] = mix(scratch[i] + k);
                k++;
                if (tick)
                    printf("tick %u\n", ticks++);
                usleep(2000);
            }
        }
        uint64_t h = 1469598103934665603ull;
        for (uint32_t i = 0; i < WORDS; i++) {
            buf[i] = mix(buf[i] ^ (uint32_t)s);
            h = (h ^ buf[i]) * 1099511628211ull;
        }
        total += h;
        printf("step %d: %016llx\n", s, (unsigned long long)h);
        fprintf(out, "%d %016llx %llu\n", s, (unsigned long long)h, (unsigned long long)total);
        fflush(out);
    }
    printf("done: %llu\n", (unsigned long long)total);
    fclose(out);
    return 7;
}
