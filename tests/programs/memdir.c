// Reads secrets from the in-memory read-only preopen /run/secrets, and tries to change it.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    char buf[256];
    FILE *f = fopen("/run/secrets/db_password", "r");
    if (!f) { printf("open db_password errno=%d\n", errno); return 1; }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    printf("db_password=%s\n", buf);
    struct stat st;
    printf("stat size=%d errno=%d\n", stat("/run/secrets/db_password", &st) == 0 ? (int)st.st_size : -1, errno);
    errno = 0;
    printf("write existing: %s errno=%d\n", fopen("/run/secrets/db_password", "w") ? "opened" : "refused", errno);
    errno = 0;
    printf("create new: %s errno=%d\n", fopen("/run/secrets/new", "w") ? "opened" : "refused", errno);
    errno = 0;
    printf("missing: %s errno=%d\n", fopen("/run/secrets/nope", "r") ? "opened" : "refused", errno);
    errno = 0;
    printf("mkdir: %d errno=%d\n", mkdir("/run/secrets/d", 0700), errno);
    errno = 0;
    printf("unlink: %d errno=%d\n", unlink("/run/secrets/db_password"), errno);
    DIR *d = opendir("/run/secrets");
    if (!d) { printf("opendir errno=%d\n", errno); return 1; }
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') printf("entry %s\n", e->d_name);
    closedir(d);
    const char *tok = getenv("API_TOKEN");
    printf("env API_TOKEN=%s\n", tok ? tok : "(unset)");
    return 0;
}
