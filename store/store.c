/*
 * store.c -- the store directory: catalog, partition files, sizes,
 * retention, and the file and row helpers the writer and the query engine
 * share (store_int.h).
 *
 * The catalog (catalog.db) is the only place that lists partitions; a query
 * prunes by its spans, so a partition file the catalog does not name is
 * invisible.  The writer keeps that true by committing the catalog before
 * the partitions (see writer.c).
 */
#include "netwho/store.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sql.h"
#include "store_int.h"

#define CATALOG_FILE "catalog.db"
#define LOCK_FILE ".lock"
#define DAY_TICKS (86400LL * NW_TICKS_PER_SEC)
#define HOUR_TICKS (3600LL * NW_TICKS_PER_SEC)

/* Retention refuses longer limits: days * DAY_TICKS must not overflow. */
#define NW_RETENTION_MAX_DAYS 1000000

/* Room for "PRAGMA ...=<int>" texts built from integer constants. */
#define PRAGMA_TEXT_MAX 64

/* Page cache of a writer's partition handle: the working set of six
 * indexes under random inserts; 8 handles bound it to 128 MiB. */
#define NW_WRITER_CACHE_KIB 16384

/* ------------------------------------------------------------ small helpers */

const char *nw_partitioning_name(nw_partitioning p)
{
    return p == NW_PART_HOUR ? "hour" : "day";
}

const char *nw_store_dir(const nw_store *s)
{
    return s->dir;
}

nw_partitioning nw_store_partitioning(const nw_store *s)
{
    return s->part;
}

char *nw__path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* An entry's host (its first member) is read with memcpy: the entries'
 * types are the callers'. */
static char *acc_host(const unsigned char *e)
{
    char *host;
    memcpy(&host, e, sizeof host);
    return host;
}

void *nw__acc_grow(void *old_tab, size_t *capp, size_t esz, size_t hash_off)
{
    size_t cap = *capp ? *capp * 2 : 1024;
    unsigned char *old = old_tab, *tab = calloc(cap, esz);
    if (!tab)
        return NULL;
    for (size_t i = 0; i < *capp; i++) {
        const unsigned char *a = old + i * esz;
        if (!acc_host(a))
            continue;
        uint64_t hash;
        memcpy(&hash, a + hash_off, sizeof hash);
        size_t j = hash & (cap - 1);
        while (acc_host(tab + j * esz))
            j = (j + 1) & (cap - 1);
        memcpy(tab + j * esz, a, esz);
    }
    free(old);
    *capp = cap;
    return tab;
}

void nw__acc_free(void *tab, size_t cap, size_t esz)
{
    for (size_t i = 0; i < cap; i++)
        free(acc_host((unsigned char *)tab + i * esz));
    free(tab);
}

nw_status nw__sql_fail(sqlite3 *db, const char *what, nw_err *err)
{
    int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
    nw_status st = (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
                       ? NW_ERR_CORRUPT : NW_ERR_SQL;
    return nw_fail(err, st, "%s: %s", what, db ? sqlite3_errmsg(db) : "no handle");
}

nw_status nw__exec(sqlite3 *db, const char *sql, const char *what, nw_err *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return nw__sql_fail(db, what, err);
    return NW_OK;
}

/* Runs a one-integer query (a PRAGMA or count) into *out. */
static nw_status query_int(sqlite3 *db, const char *sql, const char *what,
                           int64_t *out, nw_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return nw__sql_fail(db, what, err);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        nw_status s = nw__sql_fail(db, what, err);
        sqlite3_finalize(st);
        return s;
    }
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return NW_OK;
}

/* mkdir -p: every missing component of path (mode 0755). */
static nw_status make_dirs(const char *path, nw_err *err)
{
    char *p = strdup(path);
    if (!p)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q != '\0')
            continue;
        char c = *q;
        *q = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            nw_status st = nw_fail(err, NW_ERR_IO, "mkdir %s: %s", p, strerror(errno));
            free(p);
            return st;
        }
        *q = c;
        if (c == '\0')
            break;
    }
    free(p);
    return NW_OK;
}

/* ------------------------------------------------------------- partitions */

nw_status nw__part_name(nw_partitioning p, nw_time t, char name[NW_PART_NAME_MAX],
                        nw_time *start, nw_time *end, nw_err *err)
{
    char ts[NW_TIME_STRLEN];
    int hourly = p == NW_PART_HOUR;
    nw_time s = hourly ? nw_time_floor_hour(t) : nw_time_floor_day(t);
    nw_time span = hourly ? HOUR_TICKS : DAY_TICKS;
    /* nw_time_format refuses years outside 0000..9999; end must not wrap. */
    if (s > NW_TIME_MAX - span || nw_time_format(s, ts, sizeof ts) == 0)
        return nw_fail(err, NW_ERR_INVALID, "time %lld is outside the years 0000-9999",
                       (long long)t);
    /* ts is "YYYY-MM-DDTHH:..."; the name keeps the date (and the hour). */
    snprintf(name, NW_PART_NAME_MAX, "p-%.*s.db", hourly ? 13 : 10, ts);
    *start = s;
    *end = s + span;
    return NW_OK;
}

uint64_t nw__file_bytes(const char *dir, const char *name)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    uint64_t total = 0;
    char path[4096];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        struct stat sb;
        int n = snprintf(path, sizeof path, "%s/%s%s", dir, name, suffixes[i]);
        if (n > 0 && (size_t)n < sizeof path && stat(path, &sb) == 0)
            total += (uint64_t)sb.st_size;
    }
    return total;
}

/* Oldest schema version this netwho still reads (and upgrades). */
#define NW_SCHEMA_VERSION_MIN 1

/*
 * Reads the schema version of an open file into *version.  *empty = 1 for a
 * brand-new file (version 0, no tables) that the caller may initialise; a
 * version newer than ours is NW_ERR_CORRUPT, so that an older netwho never
 * misreads (or half-maintains) a newer store.
 */
static nw_status check_version(sqlite3 *db, const char *path, int *empty, int *version,
                               nw_err *err)
{
    int64_t v = 0, objects = 0;
    nw_status st = query_int(db, SQL_PRAGMA_USER_VERSION_GET, path, &v, err);
    if (st == NW_OK)
        st = query_int(db, SQL_COUNT_SCHEMA_OBJECTS, path, &objects, err);
    if (st != NW_OK)
        return st;
    *empty = 0;
    *version = (int)v;
    if (v == 0 && objects == 0) {
        *empty = 1;
        return NW_OK;
    }
    if (v == 0)
        return nw_fail(err, NW_ERR_CORRUPT, "%s is not a netwho file (no schema version)",
                       path);
    if (v > NW_SCHEMA_VERSION)
        return nw_fail(err, NW_ERR_CORRUPT,
                       "%s has schema version %lld, newer than this netwho's %d",
                       path, (long long)v, NW_SCHEMA_VERSION);
    if (v < NW_SCHEMA_VERSION_MIN)
        return nw_fail(err, NW_ERR_CORRUPT, "%s has unknown schema version %lld",
                       path, (long long)v);
    return NW_OK;
}

/* Runs sql and sets user_version to NW_SCHEMA_VERSION in one immediate
 * transaction, so a file is either at the new version with all of sql
 * applied or untouched. */
static nw_status apply_versioned(sqlite3 *db, const char *sql, const char *path,
                                 nw_err *err)
{
    char pragma[PRAGMA_TEXT_MAX];
    snprintf(pragma, sizeof pragma, SQL_PRAGMA_USER_VERSION_SET_FMT, NW_SCHEMA_VERSION);
    nw_status st = nw__exec(db, SQL_BEGIN_IMMEDIATE, path, err);
    if (st != NW_OK)
        return st;
    st = nw__exec(db, sql, path, err);
    if (st == NW_OK)
        st = nw__exec(db, pragma, path, err);
    if (st == NW_OK)
        return nw__exec(db, SQL_COMMIT, path, err);
    sqlite3_exec(db, SQL_ROLLBACK, NULL, NULL, NULL);
    return st;
}

/* Creates the schema of a new file in one transaction, version last. */
static nw_status init_schema(sqlite3 *db, const char *schema, const char *path,
                             nw_err *err)
{
    nw_status st = nw__exec(db, SQL_PRAGMA_WAL, path, err);
    return st == NW_OK ? apply_versioned(db, schema, path, err) : st;
}

/*
 * Upgrades a partition to NW_SCHEMA_VERSION in one transaction: from 1, the
 * who_rollup and processes tables, the roll-up back-filled from the
 * connections; from 1 or 2, the time-window index with first_seen in place
 * of the last_seen one; then the version.  A crash leaves the old version
 * and no trace, and the next open does it again.
 */
static nw_status migrate_partition(sqlite3 *db, int from_version, const char *path,
                                   nw_err *err)
{
    return apply_versioned(db,
                           from_version < NW_SCHEMA_ROLLUP_VERSION
                               ? SQL_PARTITION_MIGRATE_V2 ";" SQL_PARTITION_MIGRATE_V3
                               : SQL_PARTITION_MIGRATE_V3,
                           path, err);
}

/* Whether the directory holding path can be written by this process (no
 * if it is on a read-only file system, or lacks write permission). */
static int dir_writable(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return access(".", W_OK) == 0;
    size_t n = (size_t)(slash - path);
    char *d = n ? strndup(path, n) : strdup("/");
    int ok = d ? access(d, W_OK) == 0 : 1;
    free(d);
    return ok;
}

/* "file:" URI of path with immutable=1: every byte outside the unreserved
 * set percent-encoded, so '?', '#' and '%' in a directory name stay path.
 * NULL on ENOMEM; caller frees. */
static char *immutable_uri(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(path);
    char *u = malloc(len * 3 + sizeof "file:?immutable=1");
    if (!u)
        return NULL;
    char *o = u;
    o += sprintf(o, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("/._-~", *p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    strcpy(o, "?immutable=1");
    return u;
}

nw_status nw__open_read(const char *path, sqlite3 **out, int *immutable, nw_err *err)
{
    sqlite3 *db = NULL;
    if (immutable)
        *immutable = 0;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, NW_SQL_BUSY_TIMEOUT_MS);
        /* The first read opens the -wal and maps the -shm: the step that
         * fails where they cannot be created. */
        rc = sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            *out = db;
            return NW_OK;
        }
    }
    int cantopen = (rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_READONLY;
    nw_status st = nw_fail(err, cantopen ? NW_ERR_IO : NW_ERR_SQL, "open %s: %s", path,
                           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
        st = nw_fail(err, NW_ERR_CORRUPT, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_close(db);
    db = NULL;
    if (!cantopen || dir_writable(path))
        return st;
    /* A WAL file can be read only with its WAL index (-shm), which SQLite
     * must create next to it when it is absent: impossible in a directory
     * we cannot write (sqlite.org/wal.html, "Read-Only Databases").  There
     * nobody can start a WAL either, so the file cannot change under us:
     * immutable=1 reads it without -shm and without locks.  Not when a
     * -wal with content is there: immutable ignores it, and its committed
     * rows would silently be missing. */
    size_t plen = strlen(path);
    char *wal = malloc(plen + 5);
    if (!wal)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    snprintf(wal, plen + 5, "%s-wal", path);
    struct stat sb;
    int wal_data = stat(wal, &sb) == 0 && sb.st_size > 0;
    free(wal);
    if (wal_data)
        return nw_fail(err, NW_ERR_IO,
                       "%s: its -wal holds committed rows but SQLite cannot create the "
                       "-shm it needs to read them in a read-only directory; copy the "
                       "store with its -shm files, or to a writable place", path);
    char *uri = immutable_uri(path);
    if (!uri)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                         NULL);
    free(uri);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = nw_fail(err, (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB
                              ? NW_ERR_CORRUPT : NW_ERR_IO,
                     "open %s read-only: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return st;
    }
    if (immutable)
        *immutable = 1;
    *out = db;
    return NW_OK;
}

nw_status nw_store_open_file_ro(const char *path, struct sqlite3 **out, nw_err *err)
{
    return nw__open_read(path, out, NULL, err);
}

int nw_store_stale_readonly(const nw_store *s)
{
    return s->dir_ro && access(s->dir, W_OK) == 0;
}

/* Opens path with flags; on failure closes the handle SQLite still made. */
static nw_status open_db(const char *path, int flags, sqlite3 **out, nw_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        nw_status st = nw_fail(err, rc == SQLITE_CANTOPEN ? NW_ERR_IO : NW_ERR_SQL,
                               "open %s: %s", path,
                               db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return st;
    }
    sqlite3_busy_timeout(db, NW_SQL_BUSY_TIMEOUT_MS);
    *out = db;
    return NW_OK;
}

nw_status nw__open_partition(const char *dir, const char *name, int writable,
                             sqlite3 **out, int *created, int *version, nw_err *err)
{
    char *path = nw__path(dir, name);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    struct stat sb;
    int existed = stat(path, &sb) == 0;
    sqlite3 *db = NULL;
    int empty = 0, v = 0;
    int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                         : SQLITE_OPEN_READONLY;
    nw_status st = writable ? open_db(path, flags, &db, err)
                            : nw__open_read(path, &db, NULL, err);
    if (st == NW_OK)
        st = check_version(db, path, &empty, &v, err);
    if (st == NW_OK && empty && !writable)
        st = nw_fail(err, NW_ERR_CORRUPT, "%s has no schema", path);
    if (st == NW_OK && empty)
        st = nw__exec(db, SQL_PRAGMA_PAGE_SIZE, path, err);
    if (st == NW_OK && empty)
        st = init_schema(db, SQL_PARTITION_SCHEMA, path, err);
    if (st == NW_OK && writable && !empty && v < NW_SCHEMA_VERSION)
        st = migrate_partition(db, v, path, err);
    if (st == NW_OK && (empty || writable))
        v = NW_SCHEMA_VERSION;
    if (st == NW_OK && writable) {
        char pragma[PRAGMA_TEXT_MAX];
        snprintf(pragma, sizeof pragma, SQL_PRAGMA_CACHE_FMT, NW_WRITER_CACHE_KIB);
        st = nw__exec(db, SQL_PRAGMA_SYNC, path, err);
        if (st == NW_OK)
            st = nw__exec(db, pragma, path, err);
    }
    free(path);
    if (st != NW_OK) {
        sqlite3_close(db);
        return st;
    }
    *out = db;
    if (created)
        *created = !existed;
    if (version)
        *version = v;
    return NW_OK;
}

nw_status nw_store_migrate(nw_store *s, size_t *migrated, size_t *failed, int *oldest,
                           nw_err *err)
{
    *migrated = *failed = 0;
    *oldest = NW_SCHEMA_VERSION;
    int lock = -1;
    nw_status st = nw__lock_acquire(s->dir, &lock, err);
    if (st != NW_OK)
        return st;
    nw_cat_row *rows = NULL;
    size_t n = 0;
    st = nw__catalog_rows(s, &rows, &n, err);
    for (size_t i = 0; st == NW_OK && i < n; i++) {
        const char *name = rows[i].info.name;
        char *path = nw__path(s->dir, name);
        if (!path) {
            st = nw_fail(err, NW_ERR_NOMEM, "out of memory");
            break;
        }
        /* Read the version without writing: an up-to-date file (nearly
         * all of them) is not opened for writing at all. */
        sqlite3 *db = NULL;
        int empty = 0, v = NW_SCHEMA_VERSION;
        nw_err e = {{0}};
        nw_status fst = nw__open_read(path, &db, NULL, &e);
        if (fst == NW_OK)
            fst = check_version(db, path, &empty, &v, &e);
        sqlite3_close(db);
        db = NULL;
        free(path);
        if (fst == NW_ERR_NOMEM) {
            st = fst;
            if (err)
                *err = e;
            break;
        }
        /* Unreadable (damaged, missing, newer): not ours to repair here;
         * the store check and the queries that need it say so. */
        if (fst != NW_OK)
            continue;
        if (!empty && v < NW_SCHEMA_VERSION) {
            if (v < *oldest)
                *oldest = v;
            fst = nw__open_partition(s->dir, name, 1, &db, NULL, NULL, &e);
            sqlite3_close(db);
            if (fst == NW_OK)
                (*migrated)++;
        }
        if (fst != NW_OK && !(*failed)++ && err)
            *err = e;
    }
    free(rows);
    nw__lock_release(lock);
    return st;
}

/* ----------------------------------------------------------------- locking */

nw_status nw__lock_acquire(const char *dir, int *fd_out, nw_err *err)
{
    char *path = nw__path(dir, LOCK_FILE);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        nw_status st = nw_fail(err, NW_ERR_IO, "open %s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    free(path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char buf[32] = {0};
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        close(fd);
        if (e != EWOULDBLOCK)
            return nw_fail(err, NW_ERR_IO, "lock store %s: %s", dir, strerror(e));
        long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        return nw_fail(err, NW_ERR_BUSY,
                       "store %s is being written by another process (pid %ld)",
                       dir, pid);
    }
    /* The pid is only for the message above; the flock is the lock. */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        nw_status st = nw_fail(err, NW_ERR_IO, "write lock file of %s: %s", dir,
                               strerror(errno));
        close(fd);
        return st;
    }
    *fd_out = fd;
    return NW_OK;
}

void nw__lock_release(int fd)
{
    if (fd >= 0)
        close(fd);  /* closing the descriptor drops the flock */
}

/* ----------------------------------------------------------------- catalog */

static nw_status meta_get_text(nw_store *s, const char *key, char *buf, size_t cap,
                               nw_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->cat, SQL_META_GET, -1, &st, NULL) != SQLITE_OK)
        return nw__sql_fail(s->cat, "read catalog meta", err);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    nw_status res = NW_OK;
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        snprintf(buf, cap, "%s", v ? (const char *)v : "");
    } else if (rc == SQLITE_DONE) {
        res = nw_fail(err, NW_ERR_CORRUPT, "catalog of %s has no %s", s->dir, key);
    } else {
        res = nw__sql_fail(s->cat, "read catalog meta", err);
    }
    sqlite3_finalize(st);
    return res;
}

/* New catalog: schema, partitioning and the first connection id.  Safe if
 * two processes race: every statement is idempotent and the first wins. */
static nw_status init_catalog(nw_store *s, nw_partitioning part, const char *path,
                              nw_err *err)
{
    nw_status st = nw__exec(s->cat, SQL_PRAGMA_WAL, path, err);
    if (st == NW_OK)
        st = nw__exec(s->cat, SQL_BEGIN_IMMEDIATE, path, err);
    if (st != NW_OK)
        return st;
    st = nw__exec(s->cat, SQL_CATALOG_SCHEMA, path, err);
    sqlite3_stmt *ins = NULL;
    if (st == NW_OK && sqlite3_prepare_v2(s->cat, SQL_META_INIT, -1, &ins, NULL) != SQLITE_OK)
        st = nw__sql_fail(s->cat, path, err);
    if (st == NW_OK) {
        sqlite3_bind_text(ins, 1, SQL_META_KEY_PARTITIONING, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, nw_partitioning_name(part), -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            st = nw__sql_fail(s->cat, path, err);
        sqlite3_reset(ins);
    }
    if (st == NW_OK) {
        sqlite3_bind_text(ins, 1, SQL_META_KEY_NEXT_ID, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 2, 1);
        if (sqlite3_step(ins) != SQLITE_DONE)
            st = nw__sql_fail(s->cat, path, err);
    }
    sqlite3_finalize(ins);
    if (st == NW_OK) {
        char pragma[PRAGMA_TEXT_MAX];
        snprintf(pragma, sizeof pragma, SQL_PRAGMA_USER_VERSION_SET_FMT,
                 NW_SCHEMA_VERSION);
        st = nw__exec(s->cat, pragma, path, err);
    }
    if (st == NW_OK)
        return nw__exec(s->cat, SQL_COMMIT, path, err);
    sqlite3_exec(s->cat, SQL_ROLLBACK, NULL, NULL, NULL);
    return st;
}

static nw_status open_catalog(nw_store *s, const nw_store_opts *opts, nw_err *err)
{
    int create = opts && opts->create;
    nw_partitioning want = opts ? opts->partition : NW_PART_DEFAULT;
    struct stat sb;
    if (stat(s->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        if (!create)
            return nw_fail(err, NW_ERR_IO, "no netwho store at %s", s->dir);
        nw_status st = make_dirs(s->dir, err);
        if (st != NW_OK)
            return st;
    }
    char *path = nw__path(s->dir, CATALOG_FILE);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    nw_status st = NW_OK;
    if (!create && stat(path, &sb) != 0)
        st = nw_fail(err, NW_ERR_IO, "no netwho store at %s", s->dir);
    if (st == NW_OK && stat(path, &sb) == 0 && access(s->dir, W_OK) != 0) {
        /* A store we cannot write (a read-only mount of a copied store, a
         * directory without write permission): read it as it is. */
        s->dir_ro = 1;
        st = nw__open_read(path, &s->cat, NULL, err);
    } else if (st == NW_OK) {
        st = open_db(path, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0),
                     &s->cat, err);
        /* A reader without write permission still gets to query. */
        if (st != NW_OK && !create)
            st = open_db(path, SQLITE_OPEN_READONLY, &s->cat, err);
    }
    int empty = 0;
    if (st == NW_OK)
        st = check_version(s->cat, path, &empty, &s->cat_version, err);
    if (st == NW_OK && empty && !create)
        st = nw_fail(err, NW_ERR_CORRUPT, "%s has no schema", path);
    if (st == NW_OK && empty)
        st = init_catalog(s, want == NW_PART_DEFAULT ? NW_PART_DAY : want, path, err);
    if (st == NW_OK && empty)
        s->cat_version = NW_SCHEMA_VERSION;
    if (st == NW_OK && !sqlite3_db_readonly(s->cat, "main"))
        st = nw__exec(s->cat, SQL_PRAGMA_SYNC, path, err);
    free(path);
    if (st != NW_OK)
        return st;

    char name[16];
    st = meta_get_text(s, SQL_META_KEY_PARTITIONING, name, sizeof name, err);
    if (st != NW_OK)
        return st;
    if (strcmp(name, "day") == 0)
        s->part = NW_PART_DAY;
    else if (strcmp(name, "hour") == 0)
        s->part = NW_PART_HOUR;
    else
        return nw_fail(err, NW_ERR_CORRUPT, "store %s has unknown partitioning \"%s\"",
                       s->dir, name);
    if (want != NW_PART_DEFAULT && want != s->part)
        return nw_fail(err, NW_ERR_INVALID,
                       "store %s is partitioned by %s; --partition %s does not match",
                       s->dir, name, nw_partitioning_name(want));
    if (sqlite3_prepare_v2(s->cat, SQL_PART_LIST, -1, &s->cat_list, NULL) != SQLITE_OK)
        return nw__sql_fail(s->cat, "prepare catalog list", err);
    return NW_OK;
}

nw_status nw_store_open(const char *dir, const nw_store_opts *opts, nw_store **out,
                        nw_err *err)
{
    if (!dir || !*dir || !out)
        return nw_fail(err, NW_ERR_INVALID, "no store directory given");
    if (opts && (opts->partition < NW_PART_DEFAULT || opts->partition > NW_PART_HOUR))
        return nw_fail(err, NW_ERR_INVALID, "unknown partitioning %d", (int)opts->partition);
    nw_store *s = calloc(1, sizeof *s);
    if (!s)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    s->dir = strdup(dir);
    /* "DIR/" and "DIR" are one store; keep messages and paths uniform. */
    size_t len = s->dir ? strlen(s->dir) : 0;
    while (len > 1 && s->dir[len - 1] == '/')
        s->dir[--len] = '\0';
    nw_status st = s->dir ? open_catalog(s, opts, err)
                          : nw_fail(err, NW_ERR_NOMEM, "out of memory");
    if (st != NW_OK) {
        nw_store_close(s);
        return st;
    }
    *out = s;
    return NW_OK;
}

nw_status nw__catalog_upgrade(nw_store *s, nw_err *err)
{
    if (s->cat_version >= NW_SCHEMA_VERSION)
        return NW_OK;
    /* The catalog's tables did not change: only its version says that a
     * netwho which knows no roll-up must not write this store any more. */
    char pragma[PRAGMA_TEXT_MAX];
    snprintf(pragma, sizeof pragma, SQL_PRAGMA_USER_VERSION_SET_FMT, NW_SCHEMA_VERSION);
    nw_status st = nw__exec(s->cat, pragma, "upgrade catalog", err);
    if (st == NW_OK)
        s->cat_version = NW_SCHEMA_VERSION;
    return st;
}

/* Closes the connections nw_store_keep_open holds. */
static void keep_close(nw_store *s)
{
    for (size_t i = 0; i < s->nkeep; i++)
        sqlite3_close(s->keep[i]);
    free(s->keep);
    free(s->keep_names);
    s->keep = NULL;
    s->keep_names = NULL;
    s->nkeep = 0;
}

nw_status nw_store_keep_open(nw_store *s, nw_err *err)
{
    nw_cat_row *rows = NULL;
    size_t n = 0;
    nw_status st = nw__catalog_rows(s, &rows, &n, err);
    if (st != NW_OK)
        return st;
    /* The catalog lists the partitions; processes.db is kept as well. */
    size_t want = n + 1;
    sqlite3 **keep = calloc(want, sizeof *keep);
    char (*names)[NW_PART_NAME_MAX] = calloc(want, sizeof *names);
    if (!keep || !names) {
        free(keep);
        free(names);
        free(rows);
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < want; i++)
        snprintf(names[i], sizeof names[i], "%s", i < n ? rows[i].info.name : SQL_PROCDB_FILE);
    free(rows);
    size_t nk = 0;
    for (size_t i = 0; i < want; i++) {
        size_t j = 0;
        while (j < s->nkeep && strcmp(s->keep_names[j], names[i]) != 0)
            j++;
        if (j < s->nkeep) {              /* already open: move it over */
            keep[nk] = s->keep[j];
            s->keep[j] = NULL;
        } else {
            char *path = nw__path(s->dir, names[i]);
            struct stat sb;
            sqlite3 *db = NULL;
            /* A read sets up the WAL index (-shm) and keeps it. */
            nw_err kerr = {{0}};
            int imm = 0;
            if (path && stat(path, &sb) == 0 && nw__open_read(path, &db, &imm, &kerr) == NW_OK) {
                keep[nk] = db;
                s->dir_ro |= imm;
            } else {
                sqlite3_close(db);
                keep[nk] = NULL;
            }
            free(path);
            if (!keep[nk])
                continue;
        }
        memcpy(names[nk], names[i], sizeof names[nk]);
        nk++;
    }
    keep_close(s);                       /* those no longer listed */
    s->keep = keep;
    s->keep_names = names;
    s->nkeep = nk;
    return NW_OK;
}

void nw_store_close(nw_store *s)
{
    if (!s)
        return;
    keep_close(s);
    nw__store_close_read_handles(s);
    nw__proc_read_close(s);
    nw__hourly_read_close(s);
    free(s->rd);
    sqlite3_finalize(s->cat_list);
    sqlite3_close(s->cat);
    free(s->dir);
    free(s);
}

nw_status nw__catalog_rows(nw_store *s, nw_cat_row **rows, size_t *n, nw_err *err)
{
    nw_cat_row *v = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = s->cat_list;
    nw_status res = NW_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            nw_cat_row *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                res = nw_fail(err, NW_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        nw_cat_row *r = &v[cnt++];
        memset(r, 0, sizeof *r);
        const unsigned char *name = sqlite3_column_text(st, 0);
        snprintf(r->info.name, sizeof r->info.name, "%s", name ? (const char *)name : "");
        r->info.start = sqlite3_column_int64(st, 1);
        r->info.end = sqlite3_column_int64(st, 2);
        r->info.min_first_seen = sqlite3_column_int64(st, 3);
        r->info.max_first_seen = sqlite3_column_int64(st, 4);
        r->info.max_last_seen = sqlite3_column_int64(st, 5);
        r->info.connections = (uint64_t)sqlite3_column_int64(st, 6);
        r->info.transfers = (uint64_t)sqlite3_column_int64(st, 7);
        r->info.failures = (uint64_t)sqlite3_column_int64(st, 8);
        r->min_conn_id = sqlite3_column_int64(st, 9);
        r->max_conn_id = sqlite3_column_int64(st, 10);
        r->min_xfer_conn_id = sqlite3_column_int64(st, 11);
        r->max_xfer_conn_id = sqlite3_column_int64(st, 12);
    }
    if (res == NW_OK && rc != SQLITE_DONE)
        res = nw__sql_fail(s->cat, "read catalog", err);
    sqlite3_reset(st);
    if (res != NW_OK) {
        free(v);
        return res;
    }
    *rows = v;
    *n = cnt;
    return NW_OK;
}

nw_status nw_store_partitions(nw_store *s, nw_partition_info **out, size_t *n,
                              nw_err *err)
{
    nw_cat_row *rows = NULL;
    size_t cnt = 0;
    nw_status st = nw__catalog_rows(s, &rows, &cnt, err);
    if (st != NW_OK)
        return st;
    nw_partition_info *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v) {
        free(rows);
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    char wal[NW_PART_NAME_MAX + 8];
    for (size_t i = 0; i < cnt; i++) {
        v[i] = rows[i].info;
        /* The header promises the file with its -wal (not the -shm index). */
        struct stat sb;
        char *p = nw__path(s->dir, v[i].name);
        v[i].file_bytes = p && stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        free(p);
        snprintf(wal, sizeof wal, "%s-wal", v[i].name);
        p = nw__path(s->dir, wal);
        v[i].file_bytes += p && stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        free(p);
    }
    free(rows);
    *out = v;
    *n = cnt;
    return NW_OK;
}

nw_status nw_store_generation(nw_store *s, uint64_t *out, nw_err *err)
{
    int64_t v = 0;
    nw_status st = query_int(s->cat, SQL_META_GET_GENERATION, "read store generation", &v,
                             err);
    if (st == NW_OK)
        *out = (uint64_t)v;
    return st;
}

nw_status nw__bump_generation(nw_store *s, nw_err *err)
{
    return nw__exec(s->cat, SQL_META_BUMP_GENERATION, "bump store generation", err);
}

/* Finds host in the sorted v[0..n); its index, or -(insertion point)-1. */
static long hosts_find(const nw_host_seen *v, size_t n, const char *host)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid].host, host);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

/* Folds one partition's (host, newest time) rows into v. */
static nw_status hosts_of_partition(sqlite3 *db, int version, nw_host_seen *v, size_t *n,
                                    size_t *dropped, const char *name, nw_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *sql = version >= 2 ? SQL_HOSTS_LAST_V2 : SQL_HOSTS_LAST_V1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return nw__sql_fail(db, name, err);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *h = sqlite3_column_text(st, 0);
        if (!h || sqlite3_column_type(st, 1) == SQLITE_NULL)
            continue;
        nw_time t = sqlite3_column_int64(st, 1);
        char host[NW_HOST_MAX];
        snprintf(host, sizeof host, "%s", (const char *)h);
        long i = hosts_find(v, *n, host);
        if (i >= 0) {
            if (t > v[i].last_event)
                v[i].last_event = t;
            continue;
        }
        if (*n == NW_STORE_HOSTS_MAX) {
            (*dropped)++;
            continue;
        }
        size_t at = (size_t)(-i - 1);
        memmove(&v[at + 1], &v[at], (*n - at) * sizeof *v);
        memcpy(v[at].host, host, sizeof host);
        v[at].last_event = t;
        (*n)++;
    }
    nw_status res = rc == SQLITE_DONE ? NW_OK : nw__sql_fail(db, name, err);
    sqlite3_finalize(st);
    return res;
}

nw_status nw_store_hosts(nw_store *s, nw_host_seen **out, size_t *n, size_t *dropped,
                         nw_err *err)
{
    nw_cat_row *rows = NULL;
    size_t cnt = 0, nh = 0, nd = 0;
    nw_status st = nw__catalog_rows(s, &rows, &cnt, err);
    if (st != NW_OK)
        return st;
    nw_host_seen *v = malloc(NW_STORE_HOSTS_MAX * sizeof *v);
    if (!v) {
        free(rows);
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < cnt && st == NW_OK; i++) {
        sqlite3 *db = NULL;
        int version = 0;
        nw_err e2 = {{0}};
        /* A partition dropped since the catalog was read is skipped. */
        if (nw__open_partition(s->dir, rows[i].info.name, 0, &db, NULL, &version, &e2) !=
            NW_OK)
            continue;
        st = hosts_of_partition(db, version, v, &nh, &nd, rows[i].info.name, err);
        sqlite3_close(db);
    }
    free(rows);
    if (st != NW_OK) {
        free(v);
        return st;
    }
    *out = v;
    *n = nh;
    if (dropped)
        *dropped = nd;
    return NW_OK;
}

uint64_t nw_store_bytes(nw_store *s)
{
    DIR *d = opendir(s->dir);
    if (!d)
        return 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        /* Regular files only: rejected/ (dead letters) is not the store. */
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

/* --------------------------------------------------------------- retention */

/* Removes the catalog rows of the partitions marked in drop[], in one
 * transaction, before their files go: a reader never finds a catalog row
 * whose file was already unlinked by this store (it skips a missing file
 * anyway, for readers holding an older catalog snapshot). */
static nw_status uncatalog(nw_store *s, const nw_cat_row *rows, const char *drop,
                           size_t n, nw_err *err)
{
    sqlite3_stmt *del = NULL;
    nw_status st = nw__exec(s->cat, SQL_BEGIN_IMMEDIATE, "retention", err);
    if (st != NW_OK)
        return st;
    if (sqlite3_prepare_v2(s->cat, SQL_PART_DELETE, -1, &del, NULL) != SQLITE_OK)
        st = nw__sql_fail(s->cat, "retention", err);
    for (size_t i = 0; st == NW_OK && i < n; i++) {
        if (!drop[i])
            continue;
        sqlite3_bind_text(del, 1, rows[i].info.name, -1, SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE)
            st = nw__sql_fail(s->cat, "retention", err);
        sqlite3_reset(del);
    }
    sqlite3_finalize(del);
    if (st == NW_OK)
        st = nw__bump_generation(s, err);
    if (st == NW_OK)
        return nw__exec(s->cat, SQL_COMMIT, "retention", err);
    sqlite3_exec(s->cat, SQL_ROLLBACK, NULL, NULL, NULL);
    return st;
}

static nw_status unlink_partition(const char *dir, const char *name, nw_err *err)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char path[4096];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        int n = snprintf(path, sizeof path, "%s/%s%s", dir, name, suffixes[i]);
        if (n < 0 || (size_t)n >= sizeof path)
            return nw_fail(err, NW_ERR_IO, "path too long in %s", dir);
        if (unlink(path) != 0 && errno != ENOENT)
            return nw_fail(err, NW_ERR_IO, "unlink %s: %s", path, strerror(errno));
    }
    return NW_OK;
}

/* Marks what to drop: first by age, then oldest-first by size, never the
 * newest for size.  Returns how many were marked. */
static size_t plan_retention(nw_store *s, const nw_retention *r, const nw_cat_row *rows,
                             size_t n, char *drop)
{
    size_t count = 0;
    if (r->days > 0) {
        nw_time now = r->now ? r->now : nw_time_now();
        nw_time cutoff = now - (nw_time)r->days * DAY_TICKS;
        for (size_t i = 0; i < n; i++)
            if (rows[i].info.end <= cutoff) {
                drop[i] = 1;
                count++;
            }
    }
    if (r->max_bytes > 0 && n > 0) {
        uint64_t total = nw_store_bytes(s);
        for (size_t i = 0; i < n; i++)
            if (drop[i]) {
                uint64_t b = nw__file_bytes(s->dir, rows[i].info.name);
                total = total > b ? total - b : 0;
            }
        for (size_t i = 0; i + 1 < n && total > r->max_bytes; i++) {
            if (drop[i])
                continue;
            uint64_t b = nw__file_bytes(s->dir, rows[i].info.name);
            total = total > b ? total - b : 0;
            drop[i] = 1;
            count++;
        }
    }
    return count;
}

nw_status nw_store_apply_retention(nw_store *s, const nw_retention *r, size_t *dropped,
                                   nw_err *err)
{
    if (dropped)
        *dropped = 0;
    if (!r || r->days < 0 || r->days > NW_RETENTION_MAX_DAYS ||
        r->rollup_days < 0 || r->rollup_days > NW_RETENTION_MAX_DAYS)
        return nw_fail(err, NW_ERR_INVALID, "retention days must be 0..%d",
                       NW_RETENTION_MAX_DAYS);
    if (r->days == 0 && r->max_bytes == 0 && r->rollup_days == 0)
        return NW_OK;

    /* The caller should hold the writer; if it does not, hold the lock for
     * the duration so that no other process writes what we unlink. */
    int lock_fd = -1;
    nw_status st = NW_OK;
    if (s->writer)
        st = nw__writer_release_partitions(s->writer, err);
    else
        st = nw__lock_acquire(s->dir, &lock_fd, err);
    if (st != NW_OK)
        return st;
    nw__store_close_read_handles(s);
    keep_close(s);

    nw_cat_row *rows = NULL;
    size_t n = 0, count = 0;
    char *drop = NULL;
    st = nw__catalog_rows(s, &rows, &n, err);
    if (st == NW_OK && !(drop = calloc(n ? n : 1, 1)))
        st = nw_fail(err, NW_ERR_NOMEM, "out of memory");
    if (st == NW_OK)
        count = plan_retention(s, r, rows, n, drop);
    if (st == NW_OK && count > 0)
        st = uncatalog(s, rows, drop, n, err);
    for (size_t i = 0; st == NW_OK && i < n; i++)
        if (drop[i])
            st = unlink_partition(s->dir, rows[i].info.name, err);
    if (st == NW_OK && count > 0) {
        /* Processes that exited before the oldest partition kept can
         * explain none of the connections left (procstore.h). */
        nw_time keep_from = NW_TIME_MAX;
        for (size_t i = 0; i < n; i++) {
            if (drop[i])
                continue;
            /* first_seen may move before its partition's start */
            if (rows[i].info.start < keep_from)
                keep_from = rows[i].info.start;
            if (rows[i].info.min_first_seen < keep_from)
                keep_from = rows[i].info.min_first_seen;
        }
        st = nw__proc_prune(s, keep_from, err);
    }
    if (st == NW_OK && r->rollup_days > 0) {
        /* The roll-up outlives the partitions: only its own age limit
         * deletes from it (hourly.h).  The writer committed above. */
        nw_time now = r->now ? r->now : nw_time_now();
        int deleted = 0;
        st = nw__hourly_prune(s, now - (nw_time)r->rollup_days * DAY_TICKS, &deleted, err);
        if (st == NW_OK && deleted)
            st = nw__bump_generation(s, err);
    }
    if (s->writer) {
        nw_err e2;
        nw_status st2 = nw__writer_reload_catalog(s->writer, &e2);
        if (st == NW_OK && st2 != NW_OK) {
            st = st2;
            if (err)
                *err = e2;
        }
    }
    nw__lock_release(lock_fd);
    free(rows);
    free(drop);
    if (st == NW_OK && dropped)
        *dropped = count;
    return st;
}

/* ------------------------------------------------------------ row helpers */

int nw__bind_conn(sqlite3_stmt *st, const nw_conn *c)
{
    /* Unsigned 64-bit counters go in as their two's-complement int64 and
     * come back bit-exact (nw__conn_from_row casts back). */
    int rc = SQLITE_OK;
    rc |= sqlite3_bind_int64(st, NW_COL_ID + 1, c->id);
    rc |= sqlite3_bind_text(st, NW_COL_HOST + 1, c->host, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int64(st, NW_COL_PID + 1, c->pid);
    rc |= sqlite3_bind_int(st, NW_COL_PROTO + 1, c->proto);
    rc |= sqlite3_bind_int(st, NW_COL_IPVER + 1, c->ip_version);
    rc |= sqlite3_bind_int(st, NW_COL_DIR + 1, c->direction);
    rc |= sqlite3_bind_int(st, NW_COL_STATE + 1, c->state);
    rc |= sqlite3_bind_blob(st, NW_COL_LIP + 1, c->local_ip.b, 16, SQLITE_STATIC);
    rc |= sqlite3_bind_int(st, NW_COL_LPORT + 1, c->local_port);
    rc |= sqlite3_bind_blob(st, NW_COL_RIP + 1, c->remote_ip.b, 16, SQLITE_STATIC);
    rc |= sqlite3_bind_int(st, NW_COL_RPORT + 1, c->remote_port);
    rc |= sqlite3_bind_int64(st, NW_COL_FIRST + 1, c->first_seen);
    rc |= sqlite3_bind_int64(st, NW_COL_LAST + 1, c->last_seen);
    rc |= sqlite3_bind_int64(st, NW_COL_ANCHOR + 1, c->anchor);
    rc |= sqlite3_bind_int64(st, NW_COL_BSENT + 1, (int64_t)c->bytes_sent);
    rc |= sqlite3_bind_int64(st, NW_COL_BRECV + 1, (int64_t)c->bytes_received);
    rc |= sqlite3_bind_int64(st, NW_COL_BRETX + 1, (int64_t)c->bytes_retransmitted);
    rc |= sqlite3_bind_int64(st, NW_COL_BCOPY + 1, (int64_t)c->bytes_copied);
    rc |= sqlite3_bind_int64(st, NW_COL_ESENT + 1, (int64_t)c->send_events);
    rc |= sqlite3_bind_int64(st, NW_COL_ERECV + 1, (int64_t)c->receive_events);
    rc |= sqlite3_bind_int64(st, NW_COL_ERETX + 1, (int64_t)c->retransmit_events);
    rc |= sqlite3_bind_int64(st, NW_COL_ECOPY + 1, (int64_t)c->copy_events);
    rc |= sqlite3_bind_int64(st, NW_COL_RECONN + 1, c->reconnects);
    if (c->has_tcp_opts) {
        rc |= sqlite3_bind_int(st, NW_COL_MSS + 1, c->mss);
        rc |= sqlite3_bind_int(st, NW_COL_SACK + 1, c->sackopt);
        rc |= sqlite3_bind_int(st, NW_COL_TSOPT + 1, c->tsopt);
        rc |= sqlite3_bind_int(st, NW_COL_WSOPT + 1, c->wsopt);
        rc |= sqlite3_bind_int64(st, NW_COL_RCVWIN + 1, c->rcvwin);
        rc |= sqlite3_bind_int(st, NW_COL_RCVSCALE + 1, c->rcvwinscale);
        rc |= sqlite3_bind_int(st, NW_COL_SNDSCALE + 1, c->sndwinscale);
    } else {
        for (int col = NW_COL_MSS; col <= NW_COL_SNDSCALE; col++)
            rc |= sqlite3_bind_null(st, col + 1);
    }
    return rc;
}

static void addr_from_col(sqlite3_stmt *st, int col, nw_addr *a)
{
    const void *b = sqlite3_column_blob(st, col);
    if (b && sqlite3_column_bytes(st, col) == 16)
        memcpy(a->b, b, 16);
    else
        memset(a->b, 0, 16);
}

void nw__conn_from_row(sqlite3_stmt *st, nw_conn *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(st, NW_COL_ID);
    const unsigned char *host = sqlite3_column_text(st, NW_COL_HOST);
    c->host = host ? (const char *)host : "";
    c->pid = (uint32_t)sqlite3_column_int64(st, NW_COL_PID);
    c->proto = (uint8_t)sqlite3_column_int(st, NW_COL_PROTO);
    c->ip_version = (uint8_t)sqlite3_column_int(st, NW_COL_IPVER);
    c->direction = (uint8_t)sqlite3_column_int(st, NW_COL_DIR);
    c->state = (uint8_t)sqlite3_column_int(st, NW_COL_STATE);
    addr_from_col(st, NW_COL_LIP, &c->local_ip);
    c->local_port = (uint16_t)sqlite3_column_int(st, NW_COL_LPORT);
    addr_from_col(st, NW_COL_RIP, &c->remote_ip);
    c->remote_port = (uint16_t)sqlite3_column_int(st, NW_COL_RPORT);
    c->first_seen = sqlite3_column_int64(st, NW_COL_FIRST);
    c->last_seen = sqlite3_column_int64(st, NW_COL_LAST);
    c->anchor = sqlite3_column_int64(st, NW_COL_ANCHOR);
    c->bytes_sent = (uint64_t)sqlite3_column_int64(st, NW_COL_BSENT);
    c->bytes_received = (uint64_t)sqlite3_column_int64(st, NW_COL_BRECV);
    c->bytes_retransmitted = (uint64_t)sqlite3_column_int64(st, NW_COL_BRETX);
    c->bytes_copied = (uint64_t)sqlite3_column_int64(st, NW_COL_BCOPY);
    c->send_events = (uint64_t)sqlite3_column_int64(st, NW_COL_ESENT);
    c->receive_events = (uint64_t)sqlite3_column_int64(st, NW_COL_ERECV);
    c->retransmit_events = (uint64_t)sqlite3_column_int64(st, NW_COL_ERETX);
    c->copy_events = (uint64_t)sqlite3_column_int64(st, NW_COL_ECOPY);
    c->reconnects = (uint32_t)sqlite3_column_int64(st, NW_COL_RECONN);
    c->has_tcp_opts = sqlite3_column_type(st, NW_COL_MSS) != SQLITE_NULL;
    if (c->has_tcp_opts) {
        c->mss = (uint16_t)sqlite3_column_int(st, NW_COL_MSS);
        c->sackopt = (uint16_t)sqlite3_column_int(st, NW_COL_SACK);
        c->tsopt = (uint16_t)sqlite3_column_int(st, NW_COL_TSOPT);
        c->wsopt = (uint16_t)sqlite3_column_int(st, NW_COL_WSOPT);
        c->rcvwin = (uint32_t)sqlite3_column_int64(st, NW_COL_RCVWIN);
        c->rcvwinscale = (uint16_t)sqlite3_column_int(st, NW_COL_RCVSCALE);
        c->sndwinscale = (uint16_t)sqlite3_column_int(st, NW_COL_SNDSCALE);
    }
}
