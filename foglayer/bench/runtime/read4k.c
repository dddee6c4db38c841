/* (b) read a file to its end in 4 KiB chunks: read4k PATH */
#include <fcntl.h>
#include <unistd.h>

#include "rtbench.h"

int main(int argc, char **argv)
{
    if (argc < 2) rt_die("read4k", "usage: read4k PATH");
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) rt_die("read4k", "cannot open the input file");
    static unsigned char buf[4096];
    uint64_t check = RT_FNV_OFFSET;
    long calls = 0;
    long long total = 0;
    double t0 = rt_now();
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        calls++;
        if (n < 0) rt_die("read4k", "read failed");
        if (n == 0) break;
        total += n;
        check = rt_fnv(check, buf, 8); /* touch what was read, cheaply */
    }
    double t = rt_now() - t0;
    close(fd);
    check = rt_fnv(check, &total, sizeof total);
    rt_report("read4k", t, calls, check);
    return 0;
}
