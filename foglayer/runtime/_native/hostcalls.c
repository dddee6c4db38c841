/* The hot WASI preview 1 calls, in C, registered with wasmtime as unchecked host
 * functions: a call runs here without entering Python.
 *
 * Each function handles the common case only and hands everything else (an unknown fd,
 * a missing right, a pointer outside memory, any OS error, a checkpoint gate) to the
 * Python implementation, through that call's own Python trampoline (`fog_fn.fallback`).
 * So Python stays the one definition of WASI's behaviour; C is a shortcut for the calls
 * whose result it can give exactly as Python would.
 *
 * The state C reads (the fd table, the clock origin, args, env, the gate) lives in
 * `fog_ctx`, a struct owned by Python (ctypes) and rewritten by Python after every call
 * that may change it. See docs/native-wasi.md. No wasmtime header is needed: the few
 * wasmtime C API functions used are handed in as pointers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_caller wasmtime_caller_t;
typedef struct wasmtime_context wasmtime_context_t;

/* wasmtime_val_raw_t: 16 bytes; an i32 or i64 sits at its start (little-endian). */
typedef union {
    int32_t i32;
    int64_t i64;
    uint8_t bytes[16];
} raw_t;

typedef wasm_trap_t *(*callback_t)(void *env, wasmtime_caller_t *caller, raw_t *args,
                                   size_t nargs);

enum { MAX_IOV = 64, MAX_NAME = 255, MAX_COUNTS = 64 };

/* One fd table entry; host_fd < 0: no descriptor (Python answers). Mirrors Python. */
typedef struct {
    int32_t host_fd;
    uint8_t kind;  /* WASI filetype */
    uint8_t paths; /* a plain host directory: path calls below it may be done here */
    uint8_t _pad[2];
    uint64_t rights;
} fog_fd;

/* Must match _Ctx in foglayer/runtime/_native/__init__.py field for field. */
typedef struct {
    volatile int32_t gate; /* nonzero: every call goes to Python (checkpoints) */
    uint32_t nfds;
    fog_fd *fds;
    int64_t monotonic_offset;
    const uint8_t *args; /* NUL-terminated strings, back to back */
    uint32_t argc, args_size;
    const uint8_t *env;
    uint32_t envc, env_size;
    uint64_t r_read, r_write, r_seek_tell, r_path_filestat_get;
    int32_t e_fault, e_noent;
    int32_t ft_reg, ft_dir;
    uint8_t ft_of_mode[16]; /* WASI filetype by (st_mode >> 12) */
    uint32_t memory_kind;
    int (*export_get)(wasmtime_caller_t *, const char *, size_t, void *);
    wasmtime_context_t *(*caller_context)(wasmtime_caller_t *);
    uint8_t *(*memory_data)(wasmtime_context_t *, const void *);
    size_t (*memory_data_size)(wasmtime_context_t *, const void *);
    /* C's own: the guest memory, found on first use (its base never moves). */
    uint8_t *base;
    uint64_t size;
    uint64_t memory[4]; /* a wasmtime_extern_t: kind, then the memory at offset 8 */
    uint64_t counts[MAX_COUNTS];
} fog_ctx;

typedef struct {
    fog_ctx *ctx;
    uint32_t index;
    callback_t fallback;
} fog_fn;

/* ---- guest memory --------------------------------------------------------------- */

static int refresh(fog_ctx *c, wasmtime_caller_t *caller) {
    wasmtime_context_t *cx = c->caller_context(caller);
    if (!c->base) {
        if (!c->export_get(caller, "memory", 6, c->memory) ||
            (c->memory[0] & 0xff) != c->memory_kind)
            return 0;
        c->base = c->memory_data(cx, &c->memory[1]);
    }
    c->size = c->memory_data_size(cx, &c->memory[1]);
    return 1;
}

/* Is [p, p+n) inside memory? Memory only grows, so a stale size errs on the safe side. */
static inline int in_mem(fog_ctx *c, wasmtime_caller_t *caller, uint64_t p, uint64_t n) {
    if (p + n <= c->size) return 1;
    return refresh(c, caller) && p + n <= c->size;
}

static inline uint32_t ld32(const fog_ctx *c, uint32_t p) {
    uint32_t v;
    memcpy(&v, c->base + p, 4);
    return v;
}

static inline void st32(fog_ctx *c, uint32_t p, uint32_t v) { memcpy(c->base + p, &v, 4); }
static inline void st64(fog_ctx *c, uint32_t p, uint64_t v) { memcpy(c->base + p, &v, 8); }

static int iovecs(fog_ctx *c, wasmtime_caller_t *caller, uint32_t iovs, uint32_t n,
                  struct iovec *out) {
    if (n > MAX_IOV || !in_mem(c, caller, iovs, (uint64_t)n * 8)) return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t p = ld32(c, iovs + 8 * i), len = ld32(c, iovs + 8 * i + 4);
        if (!in_mem(c, caller, p, len)) return 0;
        out[i].iov_base = c->base + p;
        out[i].iov_len = len;
    }
    return 1;
}

static inline fog_fd *lookup(fog_ctx *c, uint32_t fd) {
    if (fd >= c->nfds || c->fds[fd].host_fd < 0) return 0;
    return &c->fds[fd];
}

#define U32(k) ((uint32_t)a[k].i32)
#define U64(k) ((uint64_t)a[k].i64)
#define ENTER                        \
    fog_fn *f = env;                 \
    fog_ctx *c = f->ctx;             \
    if (c->gate) return f->fallback(env, caller, a, nargs)
#define FALLBACK return f->fallback(env, caller, a, nargs)
#define DONE(err)                    \
    do {                             \
        c->counts[f->index]++;       \
        a[0].i64 = (uint32_t)(err);  \
        return 0;                    \
    } while (0)

#define HOSTCALL(name) \
    wasm_trap_t *fog_##name(void *env, wasmtime_caller_t *caller, raw_t *a, size_t nargs)

/* ---- data ----------------------------------------------------------------------- */

static wasm_trap_t *rw(void *env, wasmtime_caller_t *caller, raw_t *a, size_t nargs,
                       int write) {
    ENTER;
    fog_fd *d = lookup(c, U32(0));
    struct iovec iov[MAX_IOV];
    if (!d || !(d->rights & (write ? c->r_write : c->r_read))) FALLBACK;
    /* A read from a pipe or a terminal may block: Python's fd_read waits on it together
       with the instance's stop signal and deadline, so --timeout and fog stop still hold. */
    if (!write && d->kind != c->ft_reg) FALLBACK;
    uint32_t n = U32(2);
    if (!iovecs(c, caller, U32(1), n, iov)) FALLBACK;
    ssize_t r = n == 0 ? 0 : write ? writev(d->host_fd, iov, n) : readv(d->host_fd, iov, n);
    if (r < 0) FALLBACK; /* nothing moved: Python redoes it and maps the error */
    if (!in_mem(c, caller, U32(3), 4)) DONE(c->e_fault);
    st32(c, U32(3), (uint32_t)r);
    DONE(0);
}

HOSTCALL(fd_write) { return rw(env, caller, a, nargs, 1); }
HOSTCALL(fd_read) { return rw(env, caller, a, nargs, 0); }

static wasm_trap_t *prw(void *env, wasmtime_caller_t *caller, raw_t *a, size_t nargs,
                        int write) {
    ENTER;
    fog_fd *d = lookup(c, U32(0));
    struct iovec iov[MAX_IOV];
    if (!d || !(d->rights & (write ? c->r_write : c->r_read)) || d->kind != c->ft_reg ||
        a[3].i64 < 0)
        FALLBACK;
    uint32_t n = U32(2);
    if (!iovecs(c, caller, U32(1), n, iov)) FALLBACK;
    ssize_t r = n == 0  ? 0
                : write ? pwritev(d->host_fd, iov, n, a[3].i64)
                        : preadv(d->host_fd, iov, n, a[3].i64);
    if (r < 0) FALLBACK;
    if (!in_mem(c, caller, U32(4), 4)) DONE(c->e_fault);
    st32(c, U32(4), (uint32_t)r);
    DONE(0);
}

HOSTCALL(fd_pwrite) { return prw(env, caller, a, nargs, 1); }
HOSTCALL(fd_pread) { return prw(env, caller, a, nargs, 0); }

HOSTCALL(fd_seek) {
    ENTER;
    fog_fd *d = lookup(c, U32(0));
    uint32_t whence = U32(2);
    if (!d || d->kind != c->ft_reg || !(d->rights & c->r_seek_tell) || whence > 2) FALLBACK;
    off_t pos = lseek(d->host_fd, a[1].i64, (int)whence);
    if (pos < 0) FALLBACK;
    if (!in_mem(c, caller, U32(3), 8)) DONE(c->e_fault);
    st64(c, U32(3), (uint64_t)pos);
    DONE(0);
}

HOSTCALL(fd_tell) {
    ENTER;
    fog_fd *d = lookup(c, U32(0));
    if (!d || d->kind != c->ft_reg) FALLBACK;
    off_t pos = lseek(d->host_fd, 0, SEEK_CUR);
    if (pos < 0) FALLBACK;
    if (!in_mem(c, caller, U32(1), 8)) DONE(c->e_fault);
    st64(c, U32(1), (uint64_t)pos);
    DONE(0);
}

/* ---- metadata ------------------------------------------------------------------- */

static inline uint64_t ns(struct timespec t) {
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A WASI filestat: dev, ino, filetype, nlink, size, atim, mtim, ctim (64 bytes). */
static void put_filestat(fog_ctx *c, uint32_t p, const struct stat *st) {
    uint8_t *o = c->base + p;
    uint64_t w[8] = {st->st_dev, st->st_ino, c->ft_of_mode[(st->st_mode >> 12) & 15],
                     st->st_nlink, (uint64_t)st->st_size, ns(st->st_atim),
                     ns(st->st_mtim), ns(st->st_ctim)};
    memcpy(o, w, sizeof w);
}

HOSTCALL(fd_filestat_get) {
    ENTER;
    fog_fd *d = lookup(c, U32(0));
    struct stat st;
    if (!d || !in_mem(c, caller, U32(1), 64) || fstat(d->host_fd, &st) < 0) FALLBACK;
    put_filestat(c, U32(1), &st);
    DONE(0);
}

/* Only plain relative paths (names and "." separated by "/", ASCII, no trailing slash)
 * walked without meeting a symlink or ".."; anything else is Python's full walk. The
 * walk holds each directory open (O_NOFOLLOW), as Python's does, so a directory swapped
 * for a symlink meanwhile fails the open instead of leading out. */
HOSTCALL(path_filestat_get) {
    ENTER;
    fog_fd *d = lookup(c, U32(0));
    uint32_t follow = U32(1) & 1, path = U32(2), len = U32(3), out = U32(4);
    if (!d || !d->paths || !(d->rights & c->r_path_filestat_get) || len == 0 ||
        len > 1024 || !in_mem(c, caller, path, len) || !in_mem(c, caller, out, 64))
        FALLBACK;
    const uint8_t *s = c->base + path;
    if (s[0] == '/' || s[len - 1] == '/') FALLBACK;
    for (uint32_t i = 0; i < len; i++)
        if (s[i] == 0 || s[i] >= 0x80) FALLBACK;
    char name[MAX_NAME + 1];
    int dir = d->host_fd, owned = -1, found = 0;
    struct stat st;
    uint32_t i = 0;
    while (i < len) {
        uint32_t j = i;
        while (j < len && s[j] != '/') j++;
        uint32_t n = j - i;
        int last = j >= len;
        if (n == 0 || (n == 1 && s[i] == '.')) {
            i = j + 1;
            if (last) break;
            continue;
        }
        if (n > MAX_NAME || (n == 2 && s[i] == '.' && s[i + 1] == '.')) goto python;
        memcpy(name, s + i, n);
        name[n] = 0;
        if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (last && errno == ENOENT) {
                if (owned >= 0) close(owned);
                DONE(c->e_noent);
            }
            goto python;
        }
        if (last) {
            if (S_ISLNK(st.st_mode) && follow) goto python;
            found = 1;
            break;
        }
        if (!S_ISDIR(st.st_mode)) goto python;
        int next = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) goto python;
        if (owned >= 0) close(owned);
        dir = owned = next;
        i = j + 1;
    }
    if (owned >= 0) close(owned);
    if (!found) FALLBACK; /* the path names the directory itself */
    put_filestat(c, out, &st);
    DONE(0);
python:
    if (owned >= 0) close(owned);
    FALLBACK;
}

/* ---- clocks, random, scheduling -------------------------------------------------- */

static const clockid_t CLOCKS[4] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                    CLOCK_THREAD_CPUTIME_ID};

HOSTCALL(clock_time_get) {
    ENTER;
    uint32_t id = U32(0), out = U32(2);
    struct timespec t;
    if (id > 3 || !in_mem(c, caller, out, 8)) FALLBACK;
    /* Touch the result first: the first write to a fresh stack page faults (5-10 us here),
    ** which must not fall between the clock's reading and the guest's. */
    st64(c, out, 0);
    if (clock_gettime(CLOCKS[id], &t) < 0) FALLBACK;
    uint64_t now = ns(t);
    if (id == 1) now += (uint64_t)c->monotonic_offset;
    st64(c, out, now);
    DONE(0);
}

HOSTCALL(clock_res_get) {
    ENTER;
    if (U32(0) > 3 || !in_mem(c, caller, U32(1), 8)) FALLBACK;
    st64(c, U32(1), 1);
    DONE(0);
}

HOSTCALL(random_get) {
    ENTER;
    uint32_t p = U32(0), len = U32(1);
    if (!in_mem(c, caller, p, len)) FALLBACK;
    for (uint32_t done = 0; done < len;) {
        ssize_t r = getrandom(c->base + p + done, len - done, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            FALLBACK;
        }
        done += (uint32_t)r;
    }
    DONE(0);
}

HOSTCALL(sched_yield) {
    ENTER;
    sched_yield();
    DONE(0);
}

/* ---- args, environment ----------------------------------------------------------- */

static wasm_trap_t *strings_get(void *env, wasmtime_caller_t *caller, raw_t *a, size_t nargs,
                                const uint8_t *blob, uint32_t count, uint32_t size) {
    ENTER;
    uint32_t ptrs = U32(0), buf = U32(1);
    if (!in_mem(c, caller, ptrs, (uint64_t)count * 4) || !in_mem(c, caller, buf, size))
        FALLBACK;
    memcpy(c->base + buf, blob, size);
    for (uint32_t i = 0, off = 0; i < count; i++) {
        st32(c, ptrs + 4 * i, buf + off);
        off += (uint32_t)strlen((const char *)blob + off) + 1;
    }
    DONE(0);
}

static wasm_trap_t *sizes_get(void *env, wasmtime_caller_t *caller, raw_t *a, size_t nargs,
                              uint32_t count, uint32_t size) {
    ENTER;
    if (!in_mem(c, caller, U32(0), 4) || !in_mem(c, caller, U32(1), 4)) FALLBACK;
    st32(c, U32(0), count);
    st32(c, U32(1), size);
    DONE(0);
}

HOSTCALL(args_get) {
    fog_ctx *c = ((fog_fn *)env)->ctx;
    return strings_get(env, caller, a, nargs, c->args, c->argc, c->args_size);
}
HOSTCALL(args_sizes_get) {
    fog_ctx *c = ((fog_fn *)env)->ctx;
    return sizes_get(env, caller, a, nargs, c->argc, c->args_size);
}
HOSTCALL(environ_get) {
    fog_ctx *c = ((fog_fn *)env)->ctx;
    return strings_get(env, caller, a, nargs, c->env, c->envc, c->env_size);
}
HOSTCALL(environ_sizes_get) {
    fog_ctx *c = ((fog_fn *)env)->ctx;
    return sizes_get(env, caller, a, nargs, c->envc, c->env_size);
}

/* The layout check: Python compares this with ctypes.sizeof of its own struct. */
uint32_t fog_ctx_layout(void) {
    return (uint32_t)(sizeof(fog_ctx) << 20 | offsetof(fog_ctx, memory_kind) << 10 |
                      offsetof(fog_ctx, base));
}
