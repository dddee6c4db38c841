/* path_open (flags and errors), path_create_directory, path_remove_directory,
 * path_unlink_file, path_rename, path_link -- through wasi-libc and raw WASI.
 * Leaves a known set of files behind in /sandbox (compared by the differential test). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *yn(int b) { return b ? "yes" : "no"; }

#define TRY(label, expr) do { errno = 0; int _r = (expr); printf("%s -> %d errno=%d\n", label, _r < 0 ? -1 : 0, _r < 0 ? errno : 0); } while (0)

static void put(const char *path, const char *text) {
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    write(fd, text, strlen(text));
    close(fd);
}

static void cat(const char *path) {
    char buf[128];
    int fd = open(path, O_RDONLY);
    if (fd < 0) { printf("cat %s -> errno=%d\n", path, errno); return; }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    for (char *p = buf; *p; p++) if (*p == '\n') *p = '|';
    printf("cat %s -> [%s]\n", path, buf);
}

static void exists(const char *path) {
    struct stat st;
    int r = lstat(path, &st);
    printf("exists %s: %s%s\n", path, yn(r == 0),
           r == 0 ? (S_ISDIR(st.st_mode) ? " (dir)" : S_ISLNK(st.st_mode) ? " (symlink)" : " (file)") : "");
}

static __wasi_errno_t raw_open(int dirfd, int lookup, const char *path, int oflags, __wasi_rights_t rights, int fdflags, int *out) {
    __wasi_fd_t fd = (__wasi_fd_t)-1;
    __wasi_errno_t e = __wasi_path_open(dirfd, lookup, path, oflags, rights, rights, fdflags, &fd);
    if (out) *out = e == 0 ? (int)fd : -1;
    else if (e == 0) (void)__wasi_fd_close(fd);
    return e;
}

/* Corner cases where wasmtime departs from Linux/the spec, printed for information only
 * (not in the differential run):
 * - path_remove_directory("dir/"): wasmtime EINVAL (28); Linux rmdir("dir/") succeeds;
 * - path_link with SYMLINK_FOLLOW: wasmtime EINVAL (28) always; the spec links the target. */
static int quirks_mode(void) {
    __wasi_errno_t e = __wasi_path_link(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "link_hello", 3, "hard_follow");
    printf("raw path_link link_hello follow -> hard_follow -> %d\n", e);
    __wasi_filestat_t st;
    e = __wasi_path_filestat_get(3, 0, "hard_follow", &st);
    printf("hard_follow -> %d type=%s\n", e, e ? "-" : st.filetype == __WASI_FILETYPE_REGULAR_FILE ? "file" : "symlink");
    printf("raw path_create_directory qdir -> %d\n", __wasi_path_create_directory(3, "qdir"));
    printf("raw path_remove_directory qdir/ -> %d\n", __wasi_path_remove_directory(3, "qdir/"));
    printf("raw path_remove_directory qdir -> %d\n", __wasi_path_remove_directory(3, "qdir"));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "quirks") == 0) return quirks_mode();
    const __wasi_rights_t RD = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FILESTAT_GET;
    const __wasi_rights_t WR = __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE;
    int fd;

    /* ---- path_open ---- */
    TRY("open missing O_RDONLY", open("/sandbox/missing.txt", O_RDONLY));
    TRY("open new O_CREAT|O_EXCL", fd = open("/sandbox/new.txt", O_CREAT | O_EXCL | O_WRONLY, 0644));
    write(fd, "new file\n", 9);
    close(fd);
    TRY("open new again O_CREAT|O_EXCL", open("/sandbox/new.txt", O_CREAT | O_EXCL | O_WRONLY, 0644));
    TRY("open hello.txt O_DIRECTORY", open("/sandbox/hello.txt", O_RDONLY | O_DIRECTORY));
    TRY("open sub O_WRONLY", open("/sandbox/sub", O_WRONLY));
    TRY("open sub O_RDWR", open("/sandbox/sub", O_RDWR));
    TRY("open sub O_RDONLY (no O_DIRECTORY)", fd = open("/sandbox/sub", O_RDONLY));
    if (fd >= 0) close(fd);
    TRY("open hello.txt/ trailing slash", open("/sandbox/hello.txt/", O_RDONLY));
    TRY("open hello.txt/x", open("/sandbox/hello.txt/x", O_RDONLY));
    TRY("open missing-dir/x O_CREAT", open("/sandbox/missing-dir/x", O_CREAT | O_WRONLY, 0644));
    TRY("open sub/./../sub/a.txt", fd = open("/sandbox/sub/./../sub/a.txt", O_RDONLY));
    if (fd >= 0) close(fd);
    TRY("open O_CREAT on existing dir", open("/sandbox/sub", O_CREAT | O_WRONLY, 0644));
    put("/sandbox/truncme.txt", "0123456789\n");
    TRY("open truncme O_TRUNC", fd = open("/sandbox/truncme.txt", O_WRONLY | O_TRUNC));
    write(fd, "T\n", 2);
    close(fd);
    cat("/sandbox/truncme.txt");
    TRY("open /sandbox (preopen root) O_DIRECTORY", fd = open("/sandbox", O_RDONLY | O_DIRECTORY));
    if (fd >= 0) close(fd);

    int dfd = -1;
    printf("raw path_open sub as dir -> %d\n", raw_open(3, 0, "sub", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_OPEN, 0, &dfd));
    printf("raw path_open a.txt relative to sub fd -> %d\n", raw_open(dfd, 0, "a.txt", 0, RD, 0, NULL));
    printf("raw path_open ../hello.txt relative to sub fd -> %d\n", raw_open(dfd, 0, "../hello.txt", 0, RD, 0, NULL));
    printf("raw path_open relative to stdin (fd 0) -> %d\n", raw_open(0, 0, "x", 0, RD, 0, NULL));
    printf("raw path_open relative to closed fd -> %d\n", raw_open(1234, 0, "x", 0, RD, 0, NULL));
    printf("raw path_open empty path -> %d\n", raw_open(3, 0, "", 0, RD, 0, NULL));
    printf("raw path_open '.' as dir -> %d\n", raw_open(3, 0, ".", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR, 0, NULL));
    printf("raw path_open creat|excl|trunc rawnew.txt -> %d\n",
           raw_open(3, 0, "rawnew.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_EXCL | __WASI_OFLAGS_TRUNC, RD | WR, 0, NULL));
    printf("raw path_open excl without creat on existing -> %d\n", raw_open(3, 0, "hello.txt", __WASI_OFLAGS_EXCL, RD, 0, NULL));
    printf("raw path_open directory|creat -> %d\n", raw_open(3, 0, "dircreat", __WASI_OFLAGS_DIRECTORY | __WASI_OFLAGS_CREAT, RD, 0, NULL));
    int afd = -1;
    printf("raw path_open append fdflag -> %d\n", raw_open(3, 0, "rawnew.txt", 0, WR, __WASI_FDFLAGS_APPEND, &afd));
    write(afd, "appended\n", 9);
    lseek(afd, 0, SEEK_SET);
    write(afd, "again\n", 6);
    close(afd);
    cat("/sandbox/rawnew.txt");
    close(dfd);

    /* ---- path_create_directory / path_remove_directory ---- */
    TRY("mkdir newdir", mkdir("/sandbox/newdir", 0755));
    TRY("mkdir newdir again", mkdir("/sandbox/newdir", 0755));
    TRY("mkdir newdir/inner", mkdir("/sandbox/newdir/inner", 0755));
    TRY("mkdir missing/inner", mkdir("/sandbox/missing/inner", 0755));
    TRY("mkdir over file hello.txt", mkdir("/sandbox/hello.txt", 0755));
    TRY("mkdir hello.txt/x", mkdir("/sandbox/hello.txt/x", 0755));
    printf("raw path_create_directory rawdir -> %d\n", __wasi_path_create_directory(3, "rawdir"));
    printf("raw path_create_directory rawdir/ trailing slash again -> %d\n", __wasi_path_create_directory(3, "rawdir/"));
    printf("raw path_create_directory closed fd -> %d\n", __wasi_path_create_directory(1234, "x"));
    TRY("rmdir newdir (not empty)", rmdir("/sandbox/newdir"));
    TRY("rmdir newdir/inner", rmdir("/sandbox/newdir/inner"));
    TRY("rmdir newdir", rmdir("/sandbox/newdir"));
    TRY("rmdir newdir again", rmdir("/sandbox/newdir"));
    TRY("rmdir hello.txt (file)", rmdir("/sandbox/hello.txt"));
    TRY("rmdir link_sub (symlink to dir)", rmdir("/sandbox/link_sub"));
    printf("raw path_remove_directory '.' -> %d\n", __wasi_path_remove_directory(3, "."));
    printf("raw path_remove_directory missing -> %d\n", __wasi_path_remove_directory(3, "missing"));
    exists("/sandbox/newdir");
    exists("/sandbox/rawdir");

    /* ---- path_unlink_file ---- */
    put("/sandbox/doomed.txt", "doomed\n");
    TRY("unlink doomed.txt", unlink("/sandbox/doomed.txt"));
    TRY("unlink doomed.txt again", unlink("/sandbox/doomed.txt"));
    TRY("unlink sub (dir)", unlink("/sandbox/sub"));
    TRY("unlink empty/ (dir, trailing slash)", unlink("/sandbox/empty/"));
    printf("raw path_unlink_file hello.txt/ -> %d\n", __wasi_path_unlink_file(3, "hello.txt/"));
    printf("raw path_unlink_file closed fd -> %d\n", __wasi_path_unlink_file(1234, "x"));
    /* unlinking an open file: the fd still works */
    put("/sandbox/openunlink.txt", "still readable\n");
    fd = open("/sandbox/openunlink.txt", O_RDONLY);
    TRY("unlink while open", unlink("/sandbox/openunlink.txt"));
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    printf("read after unlink -> %zd\n", n);
    close(fd);
    exists("/sandbox/openunlink.txt");
    exists("/sandbox/sub");

    /* ---- path_rename ---- */
    put("/sandbox/r1.txt", "r1\n");
    TRY("rename r1 -> r2", rename("/sandbox/r1.txt", "/sandbox/r2.txt"));
    exists("/sandbox/r1.txt");
    cat("/sandbox/r2.txt");
    put("/sandbox/r3.txt", "r3\n");
    TRY("rename r3 over r2 (replace)", rename("/sandbox/r3.txt", "/sandbox/r2.txt"));
    cat("/sandbox/r2.txt");
    TRY("rename missing", rename("/sandbox/nope.txt", "/sandbox/nope2.txt"));
    TRY("rename into missing dir", rename("/sandbox/r2.txt", "/sandbox/nodir/r2.txt"));
    mkdir("/sandbox/rd1", 0755);
    put("/sandbox/rd1/f.txt", "in rd1\n");
    TRY("rename dir rd1 -> rd2", rename("/sandbox/rd1", "/sandbox/rd2"));
    cat("/sandbox/rd2/f.txt");
    TRY("rename file over dir", rename("/sandbox/r2.txt", "/sandbox/rd2"));
    TRY("rename dir over file", rename("/sandbox/rd2", "/sandbox/r2.txt"));
    mkdir("/sandbox/rd3", 0755);
    TRY("rename dir over empty dir", rename("/sandbox/rd3", "/sandbox/empty"));
    exists("/sandbox/rd3");
    exists("/sandbox/empty");
    mkdir("/sandbox/rd4", 0755);
    TRY("rename dir over non-empty dir", rename("/sandbox/rd4", "/sandbox/rd2"));
    TRY("rename dir into its own child", rename("/sandbox/rd2", "/sandbox/rd2/child"));
    TRY("rename to itself", rename("/sandbox/r2.txt", "/sandbox/r2.txt"));
    int subfd = open("/sandbox/sub", O_RDONLY | O_DIRECTORY);
    printf("raw path_rename across dir fds r2.txt -> sub/moved.txt -> %d\n", __wasi_path_rename(3, "r2.txt", subfd, "moved.txt"));
    printf("raw path_rename from closed fd -> %d\n", __wasi_path_rename(1234, "a", 3, "b"));
    printf("raw path_rename between preopens /sandbox -> /ro -> %d\n", __wasi_path_rename(3, "victim.txt", 4, "victim.txt"));
    cat("/sandbox/sub/moved.txt");

    /* ---- path_link ---- */
    put("/sandbox/orig.txt", "original\n");
    TRY("link orig -> hard.txt", link("/sandbox/orig.txt", "/sandbox/hard.txt"));
    struct stat st;
    stat("/sandbox/orig.txt", &st);
    printf("nlink after link -> %lld\n", (long long)st.st_nlink);
    fd = open("/sandbox/hard.txt", O_WRONLY | O_APPEND);
    write(fd, "via hard link\n", 14);
    close(fd);
    cat("/sandbox/orig.txt");
    TRY("link onto existing", link("/sandbox/orig.txt", "/sandbox/hello.txt"));
    TRY("link missing", link("/sandbox/nope.txt", "/sandbox/nope2.txt"));
    TRY("link a directory", link("/sandbox/sub", "/sandbox/sublink"));
    printf("raw path_link across dir fds orig.txt -> sub/hard2.txt -> %d\n", __wasi_path_link(3, 0, "orig.txt", subfd, "hard2.txt"));
    printf("raw path_link symlink itself (nofollow) link_hello -> hardsym -> %d\n", __wasi_path_link(3, 0, "link_hello", 3, "hardsym"));
    exists("/sandbox/hardsym");
    printf("raw path_link closed fd -> %d\n", __wasi_path_link(1234, 0, "a", 3, "b"));
    printf("raw path_link between preopens -> %d\n", __wasi_path_link(3, 0, "orig.txt", 4, "x"));
    TRY("unlink orig.txt", unlink("/sandbox/orig.txt"));
    stat("/sandbox/hard.txt", &st);
    printf("nlink of hard.txt after unlinking orig -> %lld\n", (long long)st.st_nlink);
    cat("/sandbox/hard.txt");
    close(subfd);
    return 0;
}
