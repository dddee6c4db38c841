/* (a) 100,000 writes of 16 bytes to a file: write16 PATH [COUNT] */
#include <fcntl.h>
#include <unistd.h>

#include "rtbench.h"

int main(int argc, char **argv)
{
    if (argc < 2) rt_die("write16", "usage: write16 PATH [COUNT]");
    long count = argc > 2 ? atol(argv[2]) : 100000;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) rt_die("write16", "cannot open the output file");
    unsigned char buf[16];
    memcpy(buf, "foglayer-bench-\n", 16);
    uint64_t check = RT_FNV_OFFSET;
    double t0 = rt_now();
    for (long i = 0; i < count; i++) {
        buf[0] = (unsigned char)('a' + i % 26);
        if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) rt_die("write16", "short write");
    }
    double t = rt_now() - t0;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size != (off_t)(count * 16)) rt_die("write16", "wrong file size after the writes");
    close(fd);
    check = rt_fnv(check, &size, sizeof size);
    rt_report("write16", t, count, check);
    return 0;
}
