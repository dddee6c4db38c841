/* snap_files: keeps several files open while it works (read, write, append, seek,
 * pread/pwrite), for checkpoint/restore tests. Usage: snap_files DIR [STEPS].
 * DIR holds input.bin; the program writes out.bin, log.txt and table.bin there. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what)
{
    perror(what);
    exit(1);
}

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
    if (argc < 2) {
        fprintf(stderr, "usage: snap_files DIR [STEPS]\n");
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 200;
    char path[512];
    snprintf(path, sizeof path, "%s/input.bin", argv[1]);
    int in = open(path, O_RDONLY);
    snprintf(path, sizeof path, "%s/out.bin", argv[1]);
    int out = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    snprintf(path, sizeof path, "%s/log.txt", argv[1]);
    FILE *log = fopen(path, "a");
    snprintf(path, sizeof path, "%s/table.bin", argv[1]);
    int table = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || !log || table < 0)
        die("open");
    uint32_t slots[64] = {0};
    if (pwrite(table, slots, sizeof slots, 0) != sizeof slots)
        die("pwrite");
    unsigned char buf[1024];
    uint64_t checksum = 0;
    for (int s = 0; s < steps; s++) {
        ssize_t got = read(in, buf, sizeof buf);
        if (got < 0)
            die("read");
        if (got == 0) { /* wrap around: seek back to the start */
            if (lseek(in, 0, SEEK_SET) != 0)
                die("lseek");
            got = read(in, buf, sizeof buf);
        }
        uint32_t acc = (uint32_t)s;
        for (int round = 0; round < 200; round++) /* some work between the I/O */
            for (ssize_t i = 0; i < got; i++)
                acc = mix(acc + buf[i] + (uint32_t)round);
        for (ssize_t i = 0; i < got; i++)
            buf[i] ^= (unsigned char)(acc >> (8 * (i & 3)));
        if (write(out, buf, (size_t)got) != got)
            die("write");
        if (s % 5 == 4) { /* go back and patch the start of this step's block */
            off_t here = lseek(out, 0, SEEK_CUR);
            if (lseek(out, here - got, SEEK_SET) < 0 || write(out, &acc, sizeof acc) != sizeof acc)
                die("patch");
            if (lseek(out, here, SEEK_SET) != here)
                die("lseek back");
        }
        uint32_t slot = acc % 64, val;
        if (pread(table, &val, sizeof val, slot * sizeof val) != sizeof val)
            die("pread");
        val += acc;
        if (pwrite(table, &val, sizeof val, slot * sizeof val) != sizeof val)
            die("pwrite");
        fprintf(log, "step %d acc %08x slot %u\n", s, acc, slot);
        if (s % 10 == 9)
            fflush(log);
        checksum = checksum * 31 + acc;
        printf("step %d: %08x\n", s, acc);
    }
    fclose(log);
    close(in);
    close(out);
    close(table);
    printf("checksum %016llx\n", (unsigned long long)checksum);
    return 0;
}
