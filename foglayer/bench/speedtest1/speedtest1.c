/*
** speedtest1.c -- foglayer's driver for SQLite's "speedtest1" main test set.
**
** Runs the 32 numbered tests of upstream test/speedtest1.c "testset_main"
** with the same SQL, the same bound values (upstream's deterministic
** pseudo-random generator and number-to-words generator) and the same size
** scaling, with upstream's default options (no --primarykey, --notnull,
** --without-rowid, --big-transactions, journal mode or cache size).
**
**   speedtest1 [--size N] [--disk PATH] [--vfs NAME]
**
**   --size N     relative size, default 100 (test 100 inserts N*500 rows)
**   --disk PATH  use a database file at PATH (deleted first); the default is
**                an in-memory database with PRAGMA temp_store=memory, as
**                upstream's --memdb.  On disk, temporary files go to the
**                directory of PATH (WASI guests see no /tmp).
**   --vfs NAME   open the database with this VFS (as upstream's --vfs), e.g.
**                unix-dotfile; default: the build's SQLITE_DEFAULT_UNIX_VFS
**
** stdout: one JSON object per test, then {"done":32,"sqlite":"3.x.y"}:
**   {"test":100,"name":"...","time_s":0.012345678,"check":"<16 hex digits>"}
** time_s comes from clock_gettime(CLOCK_MONOTONIC) around the test.  check
** is FNV-1a-64 over every value every query of the test returned, in
** order: the value's sqlite3_column_text() bytes then 0x1f, or a lone 0x00
** for NULL, and 0x1e after each row; after each run of a statement that is
** not read-only, sqlite3_changes64() in decimal then 0x1f 0x1d.  Any SQLite
** error: message on stderr, exit status 1.
*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sqlite3.h"

static sqlite3 *db;
static sqlite3_stmt *stmt;     /* the statement of prepare()/run() */
static unsigned int rx, ry;    /* pseudo-random generator state */
static uint64_t check;         /* FNV-1a-64 of the current test's results */
static int ntests;
static int test_no;
static char test_name[200];
static struct timespec t0;

static void die(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fprintf(stderr, "speedtest1: ");
  if (test_no) fprintf(stderr, "test %d: ", test_no);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

/* ---- deterministic inputs, bit-for-bit as upstream ---------------------- */

/* upstream speedtest1_random() */
static unsigned int st_random(void) {
  rx = (rx >> 1) ^ ((1 + ~(rx & 1)) & 0xd0000001);
  ry = ry * 1103515245 + 12345;
  return rx ^ ry;
}

/* upstream swizzle(): the low bits of `in` reversed, as many as `limit` has */
static unsigned swizzle(unsigned in, unsigned limit) {
  unsigned out = 0;
  for (; limit; limit >>= 1, in >>= 1) out = (out << 1) | (in & 1);
  return out;
}

/* upstream roundup_allones(): smallest 2^k-1 >= limit */
static unsigned roundup_allones(unsigned limit) {
  unsigned m = 1;
  while (m < limit) m = (m << 1) + 1;
  return m;
}

/* upstream est_square_root() */
static int est_square_root(int x) {
  int y0 = x / 2, y1, k;
  for (k = 0; y0 > 0 && k < 10; k++) {
    y1 = (y0 + x / y0) / 2;
    if (y1 == y0) break;
    y0 = y1;
  }
  return y0;
}

/* Words for n, as upstream speedtest1_numbername(): "one hundred twenty
** three".  Appends to out[*len] (cap bytes in all); returns the new length. */
static const char *const ONES[] = {
  "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
  "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
  "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const TENS[] = {
  "", "ten", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
  "eighty", "ninety"};

static void words_add(char *out, int *len, int cap, const char *w) {
  int n = (int)strlen(w);
  if (*len && *len < cap - 1) out[(*len)++] = ' ';
  if (*len + n >= cap) n = cap - 1 - *len;
  if (n > 0) memcpy(out + *len, w, n), *len += n;
  out[*len] = 0;
}

static void words(unsigned n, char *out, int *len, int cap) {
  static const struct { unsigned v; const char *w; } big[] = {
    {1000000000u, "billion"}, {1000000u, "million"}, {1000u, "thousand"}};
  int k, start = *len;
  for (k = 0; k < 3; k++) {
    if (n >= big[k].v) {
      words(n / big[k].v, out, len, cap);
      words_add(out, len, cap, big[k].w);
      n %= big[k].v;
    }
  }
  if (n >= 100) {
    words_add(out, len, cap, ONES[n / 100]);
    words_add(out, len, cap, "hundred");
    n %= 100;
  }
  if (n >= 20) {
    words_add(out, len, cap, TENS[n / 10]);
    n %= 10;
  }
  if (n > 0 || *len == start) words_add(out, len, cap, ONES[n]);
}

static int numbername(unsigned n, char *out, int cap) {
  int len = 0;
  out[0] = 0;
  words(n, out, &len, cap);
  return len;
}

/* ---- result hashing ----------------------------------------------------- */

static void fnv(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = check;
  while (n--) h = (h ^ *b++) * 0x100000001b3ull;
  check = h;
}

static void hash_row(sqlite3_stmt *s) {
  int i, n = sqlite3_column_count(s);
  for (i = 0; i < n; i++) {
    const unsigned char *z = sqlite3_column_text(s, i);
    if (z) {
      fnv(z, (size_t)sqlite3_column_bytes(s, i));
      fnv("\x1f", 1);
    } else {
      fnv("", 1); /* the terminating NUL: one 0x00 byte */
    }
  }
  fnv("\x1e", 1);
}

/* Step s to the end, hashing every row; die on error.  A statement that
** writes also hashes its row count, so write-only tests are checked too. */
static void step_all(sqlite3_stmt *s) {
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) hash_row(s);
  if (rc != SQLITE_DONE) die("%s\n  in: %s", sqlite3_errmsg(db), sqlite3_sql(s));
  if (!sqlite3_stmt_readonly(s)) {
    char z[24];
    int n = snprintf(z, sizeof z, "%lld\x1f\x1d", (long long)sqlite3_changes64(db));
    fnv(z, (size_t)n);
  }
}

/* ---- SQL helpers (as upstream's speedtest1_exec/_prepare/_run) ---------- */

/* Run every statement of the formatted SQL text, hashing all results. */
static void exec(const char *fmt, ...) {
  va_list ap;
  char *sql;
  const char *tail;
  va_start(ap, fmt);
  sql = sqlite3_vmprintf(fmt, ap);
  va_end(ap);
  if (!sql) die("out of memory");
  for (tail = sql; *tail;) {
    sqlite3_stmt *s = 0;
    if (sqlite3_prepare_v2(db, tail, -1, &s, &tail) != SQLITE_OK)
      die("%s\n  in: %s", sqlite3_errmsg(db), sql);
    if (!s) break; /* only whitespace or comments left */
    step_all(s);
    sqlite3_finalize(s);
  }
  sqlite3_free(sql);
}

static void prepare(const char *sql) {
  if (stmt) sqlite3_finalize(stmt);
  stmt = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, 0) != SQLITE_OK)
    die("%s\n  in: %s", sqlite3_errmsg(db), sql);
}

static void run(void) {
  step_all(stmt);
  sqlite3_reset(stmt);
}

static void bind_int(int i, int64_t v) {
  if (sqlite3_bind_int64(stmt, i, v) != SQLITE_OK) die("bind: %s", sqlite3_errmsg(db));
}

static void bind_text(int i, const char *z, int n) {
  if (sqlite3_bind_text(stmt, i, z, n, SQLITE_STATIC) != SQLITE_OK)
    die("bind: %s", sqlite3_errmsg(db));
}

/* ---- test framing ------------------------------------------------------- */

static void begin(int no, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(test_name, sizeof test_name, fmt, ap);
  va_end(ap);
  test_no = no;
  check = 0xcbf29ce484222325ull;
  rx = 0xad131d0b; /* upstream reseeds the generator for every test */
  ry = 0x44f9eac8;
  clock_gettime(CLOCK_MONOTONIC, &t0);
}

static void end(void) {
  struct timespec t1;
  double dt;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  if (stmt) sqlite3_finalize(stmt);
  stmt = 0;
  printf("{\"test\":%d,\"name\":\"%s\",\"time_s\":%.9f,\"check\":\"%016llx\"}\n",
         test_no, test_name, dt, (unsigned long long)check);
  ntests++;
  test_no = 0;
}

/* upstream's random() override, so SQL random() is repeatable too */
static void random_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  sqlite3_result_int64(ctx, (sqlite3_int64)st_random());
}

/* ---- upstream testset_main ---------------------------------------------- */

/* '%' + words(i) + '%', overwriting the last letter of the words with the
** closing '%' exactly as upstream does ("%on%" for 1); returns the length. */
static int like_pattern(int i, char *buf, int cap) {
  int len = numbername((unsigned)i, buf + 1, cap - 2);
  buf[0] = '%';
  buf[len] = '%';
  buf[len + 1] = 0;
  return len + 1;
}

/* Tests 160 and 161: sz/5 SELECTs of a short random numeric range, in one transaction. */
static void between_selects(int no, const char *how, const char *sql, int sz, int maxb) {
  int n = sz / 5;
  begin(no, "%d SELECTS, numeric BETWEEN, %s", n, how);
  exec("BEGIN");
  prepare(sql);
  for (int i = 1; i <= n; i++) {
    unsigned x1 = st_random() % (unsigned)maxb;
    unsigned x2 = st_random() % 10 + (unsigned)(sz / 5000) + x1;
    bind_int(1, (int)x1);
    bind_int(2, (int)x2);
    run();
  }
  exec("COMMIT");
  end();
}

static void testset_main(int size) {
  int i, n, sz, maxb, len;
  unsigned x1, x2;
  char num[2000];

  sz = n = size * 500;
  maxb = (int)roundup_allones((unsigned)sz);

  begin(100, "%d INSERTs into table with no index", n);
  exec("BEGIN");
  exec("CREATE TABLE z1(a INTEGER , b INTEGER , c TEXT );");
  prepare("INSERT INTO z1 VALUES(?1,?2,?3);");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    numbername(x1, num, sizeof num);
    bind_int(1, x1);
    bind_int(2, i);
    bind_text(3, num, -1);
    run();
  }
  exec("COMMIT");
  end();

  begin(110, "%d ordered INSERTS with one index/PK", n);
  exec("BEGIN");
  exec("CREATE TABLE z2(a INTEGER  UNIQUE, b INTEGER , c TEXT ) ");
  prepare("INSERT INTO z2 VALUES(?1,?2,?3);");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    numbername(x1, num, sizeof num);
    bind_int(1, i);
    bind_int(2, x1);
    bind_text(3, num, -1);
    run();
  }
  exec("COMMIT");
  end();

  begin(120, "%d unordered INSERTS with one index/PK", n);
  exec("BEGIN");
  exec("CREATE TABLE t3(a INTEGER  UNIQUE, b INTEGER , c TEXT ) ");
  prepare("INSERT INTO t3 VALUES(?1,?2,?3);");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    numbername(x1, num, sizeof num);
    bind_int(2, i);
    bind_int(1, x1);
    bind_text(3, num, -1);
    run();
  }
  exec("COMMIT");
  end();

  n = 25;
  begin(130, "%d SELECTS, numeric BETWEEN, unindexed", n);
  exec("BEGIN");
  prepare("SELECT count(*), avg(b), sum(length(c)), group_concat(c) FROM z1\n"
          " WHERE b BETWEEN ?1 AND ?2;");
  for (i = 1; i <= n; i++) {
    x1 = st_random() % (unsigned)maxb;
    x2 = st_random() % 10 + (unsigned)(sz / 5000) + x1;
    bind_int(1, (int)x1);
    bind_int(2, (int)x2);
    run();
  }
  exec("COMMIT");
  end();

  {
    static const struct { int no; const char *name; const char *sql; } like[] = {
      {140, "%d SELECTS, LIKE, unindexed",
       "SELECT count(*), avg(b), sum(length(c)), group_concat(c) FROM z1\n"
       " WHERE c LIKE ?1;"},
      {142, "%d SELECTS w/ORDER BY, unindexed",
       "SELECT a, b, c FROM z1 WHERE c LIKE ?1\n ORDER BY a;"},
      {145, "%d SELECTS w/ORDER BY and LIMIT, unindexed",
       "SELECT a, b, c FROM z1 WHERE c LIKE ?1\n ORDER BY a LIMIT 10;"},
    };
    int k;
    n = 10;
    for (k = 0; k < 3; k++) {
      begin(like[k].no, like[k].name, n);
      exec("BEGIN");
      prepare(like[k].sql);
      for (i = 1; i <= n; i++) {
        (void)st_random(); /* upstream draws an unused x1 here */
        len = like_pattern(i, num, sizeof num);
        bind_text(1, num, len);
        run();
      }
      exec("COMMIT");
      end();
    }
  }

  begin(150, "CREATE INDEX five times");
  exec("BEGIN;");
  exec("CREATE UNIQUE INDEX t1b ON z1(b);");
  exec("CREATE INDEX t1c ON z1(c);");
  exec("CREATE UNIQUE INDEX t2b ON z2(b);");
  exec("CREATE INDEX t2c ON z2(c DESC);");
  exec("CREATE INDEX t3bc ON t3(b,c);");
  exec("COMMIT;");
  end();

  between_selects(160, "indexed", "SELECT count(*), avg(b), sum(length(c)), group_concat(a)"
                  " FROM z1\n WHERE b BETWEEN ?1 AND ?2;", sz, maxb);
  between_selects(161, "PK", "SELECT count(*), avg(b), sum(length(c)), group_concat(a)"
                  " FROM z2\n WHERE a BETWEEN ?1 AND ?2;", sz, maxb);

  n = sz / 5;
  begin(170, "%d SELECTS, text BETWEEN, indexed", n);
  exec("BEGIN");
  prepare("SELECT count(*), avg(b), sum(length(c)), group_concat(a) FROM z1\n"
          " WHERE c BETWEEN ?1 AND (?1||'~');");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    len = numbername(x1, num, sizeof num - 1);
    bind_text(1, num, len);
    run();
  }
  exec("COMMIT");
  end();

  n = sz;
  begin(180, "%d INSERTS with three indexes", n);
  exec("BEGIN");
  exec("CREATE TABLE t4(\n  a INTEGER  UNIQUE,\n  b INTEGER ,\n  c TEXT \n) ");
  exec("CREATE INDEX t4b ON t4(b)");
  exec("CREATE INDEX t4c ON t4(c)");
  exec("INSERT INTO t4 SELECT * FROM z1");
  exec("COMMIT");
  end();

  begin(190, "DELETE and REFILL one table");
  exec("DELETE FROM z2;");
  exec("INSERT INTO z2 SELECT * FROM z1;");
  end();

  begin(200, "VACUUM");
  exec("VACUUM");
  end();

  begin(210, "ALTER TABLE ADD COLUMN, and query");
  exec("ALTER TABLE z2 ADD COLUMN d INT DEFAULT 123");
  exec("SELECT sum(d) FROM z2");
  end();

  n = sz / 5;
  begin(230, "%d UPDATES, numeric BETWEEN, indexed", n);
  exec("BEGIN");
  prepare("UPDATE z2 SET d=b*2 WHERE b BETWEEN ?1 AND ?2;");
  for (i = 1; i <= n; i++) {
    x1 = st_random() % (unsigned)maxb;
    x2 = st_random() % 10 + (unsigned)(sz / 5000) + x1;
    bind_int(1, (int)x1);
    bind_int(2, (int)x2);
    run();
  }
  exec("COMMIT");
  end();

  n = sz;
  begin(240, "%d UPDATES of individual rows", n);
  exec("BEGIN");
  prepare("UPDATE z2 SET d=b*3 WHERE a=?1;");
  for (i = 1; i <= n; i++) {
    x1 = st_random() % (unsigned)sz + 1;
    bind_int(1, (int)x1);
    run();
  }
  exec("COMMIT");
  end();

  begin(250, "One big UPDATE of the whole %d-row table", sz);
  exec("UPDATE z2 SET d=b*4");
  end();

  begin(260, "Query added column after filling");
  exec("SELECT sum(d) FROM z2");
  end();

  n = sz / 5;
  begin(270, "%d DELETEs, numeric BETWEEN, indexed", n);
  exec("BEGIN");
  prepare("DELETE FROM z2 WHERE b BETWEEN ?1 AND ?2;");
  for (i = 1; i <= n; i++) {
    x1 = st_random() % (unsigned)maxb + 1;
    x2 = st_random() % 10 + (unsigned)(sz / 5000) + x1;
    bind_int(1, (int)x1);
    bind_int(2, (int)x2);
    run();
  }
  exec("COMMIT");
  end();

  n = sz;
  begin(280, "%d DELETEs of individual rows", n);
  exec("BEGIN");
  prepare("DELETE FROM t3 WHERE a=?1;");
  for (i = 1; i <= n; i++) {
    x1 = st_random() % (unsigned)sz + 1;
    bind_int(1, (int)x1);
    run();
  }
  exec("COMMIT");
  end();

  begin(290, "Refill two %d-row tables using REPLACE", sz);
  exec("REPLACE INTO z2(a,b,c) SELECT a,b,c FROM z1");
  exec("REPLACE INTO t3(a,b,c) SELECT a,b,c FROM z1");
  end();

  begin(300, "Refill a %d-row table using (b&1)==(a&1)", sz);
  exec("DELETE FROM z2;");
  exec("INSERT INTO z2(a,b,c)\n SELECT a,b,c FROM z1  WHERE (b&1)==(a&1);");
  exec("INSERT INTO z2(a,b,c)\n SELECT a,b,c FROM z1  WHERE (b&1)<>(a&1);");
  end();

  n = sz / 5;
  begin(310, "%d four-ways joins", n);
  exec("BEGIN");
  prepare("SELECT z1.c FROM z1, z2, t3, t4\n"
          " WHERE t4.a BETWEEN ?1 AND ?2\n"
          "   AND t3.a=t4.b\n"
          "   AND z2.a=t3.b\n"
          "   AND z1.c=z2.c;");
  for (i = 1; i <= n; i++) {
    x1 = st_random() % (unsigned)sz + 1;
    x2 = st_random() % 10 + x1 + 4;
    bind_int(1, (int)x1);
    bind_int(2, (int)x2);
    run();
  }
  exec("COMMIT");
  end();

  begin(320, "subquery in result set");
  prepare("SELECT sum(a), max(c),\n"
          "       avg((SELECT a FROM z2 WHERE 5+z2.b=z1.b) AND rowid<?1), max(c)\n"
          " FROM z1 WHERE rowid<?1;");
  bind_int(1, est_square_root(size) * 50);
  run();
  end();

  sz = n = size * 700;
  maxb = (int)roundup_allones((unsigned)sz / 3);
  begin(400, "%d REPLACE ops on an IPK", n);
  exec("BEGIN");
  exec("CREATE TABLE t5(a INTEGER PRIMARY KEY, b );");
  prepare("REPLACE INTO t5 VALUES(?1,?2);");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    numbername((unsigned)i, num, sizeof num);
    bind_int(1, (int)x1);
    bind_text(2, num, -1);
    run();
  }
  exec("COMMIT");
  end();

  begin(410, "%d SELECTS on an IPK", n);
  prepare("SELECT b FROM t5 WHERE a=?1;");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    bind_int(1, (int)x1);
    run();
  }
  end();

  begin(500, "%d REPLACE on TEXT PK", n);
  exec("BEGIN");
  exec("CREATE TABLE t6(a TEXT PRIMARY KEY, b )WITHOUT ROWID;");
  prepare("REPLACE INTO t6 VALUES(?1,?2);");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    numbername(x1, num, sizeof num);
    bind_int(2, i);
    bind_text(1, num, -1);
    run();
  }
  exec("COMMIT");
  end();

  begin(510, "%d SELECTS on a TEXT PK", n);
  prepare("SELECT b FROM t6 WHERE a=?1;");
  for (i = 1; i <= n; i++) {
    x1 = swizzle((unsigned)i, (unsigned)maxb);
    numbername(x1, num, sizeof num);
    bind_text(1, num, -1);
    run();
  }
  end();

  begin(520, "%d SELECT DISTINCT", n);
  exec("SELECT DISTINCT b FROM t5;");
  exec("SELECT DISTINCT b FROM t6;");
  end();

  begin(980, "PRAGMA integrity_check");
  exec("PRAGMA integrity_check");
  end();

  begin(990, "ANALYZE");
  exec("ANALYZE");
  end();
}

/* ---- main --------------------------------------------------------------- */

static void usage(const char *argv0) {
  die("usage: %s [--size N] [--disk PATH] [--vfs NAME]", argv0);
}

int main(int argc, char **argv) {
  int i, size = 100;
  const char *disk = 0, *vfs = 0;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--size") == 0 && i + 1 < argc) {
      char *e;
      long v = strtol(argv[++i], &e, 10);
      if (*e || v <= 0 || v > 100000) die("--size wants an integer in 1..100000");
      size = (int)v;
    } else if (strcmp(a, "--disk") == 0 && i + 1 < argc) {
      disk = argv[++i];
    } else if (strcmp(a, "--vfs") == 0 && i + 1 < argc) {
      vfs = argv[++i];
    } else {
      usage(argv[0]);
    }
  }

  if (sqlite3_initialize() != SQLITE_OK) die("sqlite3_initialize failed");
  if (vfs && !sqlite3_vfs_find(vfs)) die("no such VFS: %s", vfs);
  if (disk) {
    /* Start from an empty database, as upstream does; also drop what a
    ** killed run may have left: a journal, a unix-dotfile lock directory. */
    char *journal = sqlite3_mprintf("%s-journal", disk);
    char *lockdir = sqlite3_mprintf("%s.lock", disk);
    const char *slash = strrchr(disk, '/');
    if (!journal || !lockdir) die("out of memory");
    unlink(disk);
    unlink(journal);
    rmdir(lockdir);
    sqlite3_free(journal);
    sqlite3_free(lockdir);
    if (!slash)
      sqlite3_temp_directory = sqlite3_mprintf(".");
    else /* "/db" -> "/", "/data/t.db" -> "/data" */
      sqlite3_temp_directory = sqlite3_mprintf("%.*s", (int)(slash - disk) + (slash == disk), disk);
  }
  if (sqlite3_open_v2(disk ? disk : ":memory:", &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) != SQLITE_OK)
    die("cannot open %s: %s", disk ? disk : ":memory:", db ? sqlite3_errmsg(db) : "out of memory");
  sqlite3_create_function(db, "random", 0, SQLITE_UTF8, 0, random_fn, 0, 0);
  if (!disk) exec("PRAGMA temp_store=memory");
  exec("PRAGMA threads=0");

  testset_main(size);

  if (sqlite3_close(db) != SQLITE_OK) die("close: %s", sqlite3_errmsg(db));
  printf("{\"done\":%d,\"sqlite\":\"%s\"}\n", ntests, sqlite3_libversion());
  if (fflush(stdout) != 0) die("cannot write stdout");
  return 0;
}
