/* fd_readdir through wasi-libc (opendir/readdir/rewinddir/seekdir/scandir) and raw, with
 * cookies and truncated buffers. Listings are always sorted. Leaves /sandbox/many/. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *yn(int b) { return b ? "yes" : "no"; }

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *dtype(int t) {
    switch (t) {
    case DT_DIR: return "dir";
    case DT_REG: return "file";
    case DT_LNK: return "symlink";
    case DT_UNKNOWN: return "unknown";
    }
    return "other";
}

static const char *wtype(int t) {
    switch (t) {
    case __WASI_FILETYPE_DIRECTORY: return "dir";
    case __WASI_FILETYPE_REGULAR_FILE: return "file";
    case __WASI_FILETYPE_SYMBOLIC_LINK: return "symlink";
    case __WASI_FILETYPE_UNKNOWN: return "unknown";
    }
    return "other";
}

/* list a directory with readdir, print "name type" sorted */
static int list(const char *path, int print) {
    DIR *d = opendir(path);
    if (!d) { printf("opendir %s -> NULL errno=%d\n", path, errno); return -1; }
    char *names[512];
    int n = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL && n < 512) {
        char line[600];
        snprintf(line, sizeof line, "%s %s", de->d_name, dtype(de->d_type));
        names[n++] = strdup(line);
    }
    int err = errno;
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    if (print) {
        printf("listing %s (%d entries, errno=%d):\n", path, n, err);
        for (int i = 0; i < n; i++) printf("  %s\n", names[i]);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    return n;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    list("/sandbox", 1);
    list("/sandbox/sub", 1);
    list("/sandbox/empty", 1);
    list("/sandbox/link_sub", 1);
    list("/ro", 1);
    list("/sandbox/hello.txt", 1);
    list("/sandbox/missing", 1);

    /* a directory bigger than wasi-libc's 4 KiB readdir buffer */
    mkdir("/sandbox/many", 0755);
    for (int i = 0; i < 150; i++) {
        char p[128];
        snprintf(p, sizeof p, "/sandbox/many/entry-%03d-with-a-fairly-long-name-to-fill-buffers.txt", i);
        int fd = open(p, O_CREAT | O_WRONLY, 0644);
        close(fd);
    }
    int total = list("/sandbox/many", 0);
    printf("many: readdir saw %d entries\n", total);
    DIR *d = opendir("/sandbox/many");
    int seen[150] = {0}, dup = 0, others = 0, dots = 0;
    struct dirent *de;
    long cookie_at_10 = -1;
    int count = 0;
    char name_after_10[256] = "";
    while ((de = readdir(d)) != NULL) {
        int idx;
        if (sscanf(de->d_name, "entry-%03d-", &idx) == 1 && idx >= 0 && idx < 150) {
            if (seen[idx]++) dup++;
        } else if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
            dots++;
        } else {
            others++;
        }
        count++;
        if (count == 10) cookie_at_10 = telldir(d);
        if (count == 11) snprintf(name_after_10, sizeof name_after_10, "%s", de->d_name);
    }
    int missing = 0;
    for (int i = 0; i < 150; i++) if (!seen[i]) missing++;
    printf("many: all 150 seen once: %s (missing=%d dup=%d other=%d)\n", yn(!missing && !dup && !others), missing, dup, others);
    printf("many: '.' and '..' entries: %d\n", dots);
    rewinddir(d);
    int again = 0;
    while (readdir(d)) again++;
    printf("many: rewinddir re-reads the same count: %s\n", yn(again == count));
    seekdir(d, cookie_at_10);
    de = readdir(d);
    printf("many: seekdir(telldir after 10) resumes at entry 11: %s\n", yn(de && !strcmp(de->d_name, name_after_10)));
    int rest = de ? 1 : 0;
    while (readdir(d)) rest++;
    printf("many: entries after seekdir = count-10: %s\n", yn(rest == count - 10));
    closedir(d);

    /* d_ino agrees with stat's st_ino for every entry but ".." (wasmtime's ".." d_ino is
     * not its parent's inode) */
    d = opendir("/sandbox/sub");
    int ino_ok = 1, checked = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, "..")) continue;
        char p[300];
        snprintf(p, sizeof p, "/sandbox/sub/%s", de->d_name);
        struct stat st;
        if (lstat(p, &st) != 0 || st.st_ino != de->d_ino) ino_ok = 0;
        checked++;
    }
    closedir(d);
    printf("d_ino == lstat st_ino for every entry: %s\n", yn(ino_ok && checked >= 3));

    struct dirent **nl;
    int sn = scandir("/sandbox/sub", &nl, NULL, alphasort);
    printf("scandir sub -> %d:", sn);
    for (int i = 0; i < sn; i++) { printf(" %s", nl[i]->d_name); free(nl[i]); }
    printf("\n");
    free(nl);

    /* ---- raw fd_readdir ---- */
    int fd = open("/sandbox/sub", O_RDONLY | O_DIRECTORY);
    static uint8_t buf[8192];
    __wasi_size_t used = 0;
    __wasi_errno_t e = __wasi_fd_readdir(fd, buf, sizeof buf, 0, &used);
    printf("raw fd_readdir sub big buffer -> %d short (end reached): %s\n", e, yn(used < sizeof buf));
    char *names[16];
    int n = 0;
    __wasi_dircookie_t cookies[16];
    size_t pos = 0;
    int layout_ok = 1;
    while (pos + sizeof(__wasi_dirent_t) <= used && n < 16) {
        __wasi_dirent_t ent;
        memcpy(&ent, buf + pos, sizeof ent);
        if (pos + sizeof ent + ent.d_namlen > used) { layout_ok = 0; break; }
        char nm[256];
        memcpy(nm, buf + pos + sizeof ent, ent.d_namlen);
        nm[ent.d_namlen] = 0;
        char line[300];
        snprintf(line, sizeof line, "%s %s", nm, wtype(ent.d_type));
        names[n] = strdup(line);
        cookies[n] = ent.d_next;
        n++;
        pos += sizeof ent + ent.d_namlen;
    }
    printf("raw fd_readdir entries fill the buffer exactly: %s\n", yn(layout_ok && pos == used));
    int distinct = 1;
    for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (cookies[i] == cookies[j]) distinct = 0;
    printf("raw fd_readdir d_next cookies distinct: %s\n", yn(distinct));
    char *sorted[16];
    memcpy(sorted, names, sizeof(char *) * n);
    qsort(sorted, n, sizeof *sorted, cmp);
    printf("raw fd_readdir sub (%d):", n);
    for (int i = 0; i < n; i++) printf(" [%s]", sorted[i]);
    printf("\n");
    /* resume from the cookie of entry 2: we get exactly the entries after it */
    if (n >= 3) {
        e = __wasi_fd_readdir(fd, buf, sizeof buf, cookies[1], &used);
        __wasi_dirent_t ent;
        memcpy(&ent, buf, sizeof ent);
        char nm[256];
        memcpy(nm, buf + sizeof ent, ent.d_namlen);
        nm[ent.d_namlen] = 0;
        char line[300];
        snprintf(line, sizeof line, "%s %s", nm, wtype(ent.d_type));
        int cnt = 0;
        pos = 0;
        while (pos + sizeof ent <= used) { memcpy(&ent, buf + pos, sizeof ent); pos += sizeof ent + ent.d_namlen; cnt++; }
        printf("raw fd_readdir from cookie #2 -> %d first is entry #3: %s count=n-2: %s\n", e,
               yn(!strcmp(line, names[2])), yn(cnt == n - 2));
    }
    /* cookie past the end: nothing */
    e = __wasi_fd_readdir(fd, buf, sizeof buf, cookies[n - 1], &used);
    printf("raw fd_readdir from last cookie -> %d used=%u\n", e, (unsigned)used);
    /* a buffer too small for even one entry is filled completely (truncated entry) */
    memset(buf, 0xCC, 64);
    e = __wasi_fd_readdir(fd, buf, 20, 0, &used);
    printf("raw fd_readdir 20-byte buffer -> %d used=%u untouched after: %s\n", e, (unsigned)used, yn(buf[20] == 0xCC));
    e = __wasi_fd_readdir(fd, buf, 0, 0, &used);
    printf("raw fd_readdir 0-byte buffer -> %d used=%u\n", e, (unsigned)used);
    close(fd);
    int ffd = open("/sandbox/hello.txt", O_RDONLY);
    e = __wasi_fd_readdir(ffd, buf, sizeof buf, 0, &used);
    printf("raw fd_readdir on a file -> %d\n", e);
    close(ffd);
    e = __wasi_fd_readdir(1234, buf, sizeof buf, 0, &used);
    printf("raw fd_readdir closed fd -> %d\n", e);
    errno = 0;
    DIR *fdd = fdopendir(open("/sandbox/hello.txt", O_RDONLY));
    printf("fdopendir on a file -> %s errno=%d\n", fdd ? "DIR" : "NULL", errno);

    /* entries removed and added show up on the next listing */
    unlink("/sandbox/many/entry-000-with-a-fairly-long-name-to-fill-buffers.txt");
    mkdir("/sandbox/many/zz-subdir", 0755);
    total = list("/sandbox/many", 0);
    printf("many after unlink+mkdir: %d entries\n", total);
    return 0;
}
