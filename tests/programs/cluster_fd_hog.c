/* Opens files in /data until an open fails; prints how many it held and why it stopped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

int main(void) {
    int n = 0;
    for (;;) {
        char name[64];
        snprintf(name, sizeof name, "/data/f%d", n);
        if (open(name, O_CREAT | O_RDWR, 0600) < 0) break;
        if (++n >= 5000) break; /* (without a cap: enough to show it) */
    }
    printf("held %d, then %s\n", n, errno == EMFILE ? "EMFILE" : "another error");
    return 0;
}
