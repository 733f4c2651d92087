/*
 * deadletter.c -- rejected events, one JSON line each, in
 * DIR/rejected/rejected-YYYY-MM-DD.ndjson (UTC wall-clock date).
 *
 * A rejected event is by definition text we could not trust: it may hold
 * quotes, backslashes, control bytes, NULs and invalid UTF-8.  The line
 * must stay valid JSON whatever it held, so strings are escaped here byte
 * by byte (cJSON would stop at a NUL and pass invalid UTF-8 through):
 * valid UTF-8 sequences are kept, control bytes become \uXXXX, and every
 * byte that does not start a valid sequence becomes U+FFFD.
 *
 * Exactly once: the lines of a step are part of its commit (store_int.h,
 * nw_deadletter).  A file is appended to through stdio and synced before
 * the catalog transaction that records its length commits; a file longer
 * than its recorded length holds lines of a step that did not commit, and
 * is cut back to it before the next writer appends.  Files with no row
 * hold committed lines only (rows of closed files are dropped once their
 * last lines are committed, so the table holds about one row).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netwho/decode.h"
#include "netwho/pipeline.h"
#include "sql.h"
#include "store_int.h"

#define REJECTED_DIR "rejected"

#define SQL_DL_SCHEMA                                                            \
    "CREATE TABLE IF NOT EXISTS deadletter_len(name TEXT PRIMARY KEY, "         \
    "length INTEGER NOT NULL)"
#define SQL_DL_LIST "SELECT name, length FROM deadletter_len"
#define SQL_DL_GET "SELECT length FROM deadletter_len WHERE name = ?1"
#define SQL_DL_PUT "INSERT OR REPLACE INTO deadletter_len(name, length) VALUES(?1, ?2)"
#define SQL_DL_DEL "DELETE FROM deadletter_len WHERE name = ?1"

/* stdio buffer of the dead-letter file: rejections come in bursts. */
#define NW_DL_BUFFER_BYTES 65536

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if p does not start
 * one (stray continuation, overlong form, surrogate, above U+10FFFF, cut). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;                     /* overlong */
        else if (c == 0xED)
            hi = 0x9F;                     /* UTF-16 surrogates */
    } else if (c < 0xF5) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;                     /* overlong */
        else if (c == 0xF4)
            hi = 0x8F;                     /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* Writes s[0..n) as a JSON string (with quotes). */
static void put_json_string(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s)
        n = 0;
    putc('"', f);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
               p[run] != '\\')
            run++;
        if (run > i) {
            fwrite(p + i, 1, run - i, f);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        switch (c) {
        case '"': fputs("\\\"", f); i++; continue;
        case '\\': fputs("\\\\", f); i++; continue;
        case '\n': fputs("\\n", f); i++; continue;
        case '\r': fputs("\\r", f); i++; continue;
        case '\t': fputs("\\t", f); i++; continue;
        default: break;
        }
        if (c < 0x80) {            /* other control bytes and DEL */
            fprintf(f, "\\u%04x", c);
            i++;
            continue;
        }
        size_t len = utf8_len(p + i, n - i);
        if (len == 0) {
            fputs("\\ufffd", f);
            i++;
        } else {
            fwrite(p + i, 1, len, f);
            i += len;
        }
    }
    putc('"', f);
}

static void put_cstring(FILE *f, const char *s)
{
    put_json_string(f, s, s ? strlen(s) : 0);
}

/* Runs sql with ?1 = name and ?2 = len (if it has it) to its end. */
static nw_status dl_sql(sqlite3 *cat, const char *sql, const char *name, uint64_t len,
                        nw_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(cat, sql, -1, &st, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "dead-letter lengths", err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, (int64_t)len);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? NW_OK : nw__sql_fail(cat, "dead-letter lengths", err);
}

/* A name the table may hold: ours, never a path elsewhere. */
static int dl_name_ok(const char *name)
{
    return name && strncmp(name, "rejected-", 9) == 0 && !strchr(name, '/') &&
           strlen(name) < sizeof ((nw_dl_done *)0)->name;
}

/* Size of dir/name now (0 if it does not exist). */
static nw_status dl_size(const char *dir, const char *name, uint64_t *out, nw_err *err)
{
    char *path = nw__path(dir, name);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    struct stat sb;
    nw_status st = NW_OK;
    *out = 0;
    if (stat(path, &sb) == 0)
        *out = (uint64_t)sb.st_size;
    else if (errno != ENOENT)
        st = nw_fail(err, NW_ERR_IO, "%s: %s", path, strerror(errno));
    free(path);
    return st;
}

nw_status nw__dl_init(nw_deadletter *d, const char *store_dir, sqlite3 *cat, nw_err *err)
{
    memset(d, 0, sizeof *d);
    d->cat = cat;
    d->dir = nw__path(store_dir, REJECTED_DIR);
    if (!d->dir)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    if (mkdir(d->dir, 0755) != 0 && errno != EEXIST)
        return nw_fail(err, NW_ERR_IO, "mkdir %s: %s", d->dir, strerror(errno));
    nw_status st = nw__exec(cat, SQL_DL_SCHEMA, "dead-letter lengths", err);
    if (st != NW_OK)
        return st;
    /* Cut back what uncommitted steps appended; a file that became
     * shorter (rotated or trimmed by hand) gets its row lowered, so that
     * what is appended to it from now on is cut back right. */
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(cat, SQL_DL_LIST, -1, &q, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "dead-letter lengths", err);
    nw_dl_done low[8];
    size_t nlow = 0;
    int rc;
    while (st == NW_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        uint64_t want = (uint64_t)sqlite3_column_int64(q, 1), have = 0;
        if (!dl_name_ok(name))
            continue;
        st = dl_size(d->dir, name, &have, err);
        if (st != NW_OK)
            break;
        if (have > want) {
            char *path = nw__path(d->dir, name);
            if (!path)
                st = nw_fail(err, NW_ERR_NOMEM, "out of memory");
            else if (truncate(path, (off_t)want) != 0)
                st = nw_fail(err, NW_ERR_IO, "cut back %s to its committed %llu bytes: %s",
                             path, (unsigned long long)want, strerror(errno));
            free(path);
        } else if (have < want && nlow < sizeof low / sizeof low[0]) {
            snprintf(low[nlow].name, sizeof low[nlow].name, "%s", name);
            low[nlow++].len = have;
        }
    }
    if (st == NW_OK && rc != SQLITE_DONE)
        st = nw__sql_fail(cat, "dead-letter lengths", err);
    sqlite3_finalize(q);
    if (st != NW_OK || nlow == 0)
        return st;
    st = nw__exec(cat, SQL_BEGIN_IMMEDIATE, "dead-letter lengths", err);
    for (size_t i = 0; st == NW_OK && i < nlow; i++)
        st = dl_sql(cat, SQL_DL_PUT, low[i].name, low[i].len, err);
    if (st == NW_OK)
        st = nw__exec(cat, SQL_COMMIT, "dead-letter lengths", err);
    if (st != NW_OK)
        sqlite3_exec(cat, SQL_ROLLBACK, NULL, NULL, NULL);
    return st;
}

/* Flushes f and its data to disk. */
static nw_status dl_sync(nw_deadletter *d, nw_err *err)
{
    if (fflush(d->f) != 0 || ferror(d->f) || fdatasync(fileno(d->f)) != 0)
        return nw_fail(err, NW_ERR_IO, "write %s/rejected-%s.ndjson: %s", d->dir, d->date,
                       strerror(errno));
    return NW_OK;
}

static void dl_name(const nw_deadletter *d, char *name, size_t cap)
{
    snprintf(name, cap, "rejected-%s.ndjson", d->date);
}

/* Synced length of f. */
static nw_status dl_len(nw_deadletter *d, uint64_t *len, nw_err *err)
{
    struct stat sb;
    if (fstat(fileno(d->f), &sb) != 0)
        return nw_fail(err, NW_ERR_IO, "stat %s/rejected-%s.ndjson: %s", d->dir, d->date,
                       strerror(errno));
    *len = (uint64_t)sb.st_size;
    return NW_OK;
}

static nw_status dl_close_file(nw_deadletter *d, nw_err *err)
{
    if (!d->f)
        return NW_OK;
    nw_status st = NW_OK;
    if (d->dirty) {
        /* Its last lines are committed with the next commit: remember the
         * file until then (nw__dl_commit). */
        uint64_t len = 0;
        st = dl_sync(d, err);
        if (st == NW_OK)
            st = dl_len(d, &len, err);
        if (st == NW_OK && d->ndone == d->capdone) {
            size_t cap = d->capdone ? d->capdone * 2 : 4;
            nw_dl_done *nd = realloc(d->done, cap * sizeof *nd);
            if (!nd)
                st = nw_fail(err, NW_ERR_NOMEM, "out of memory");
            else
                d->done = nd, d->capdone = cap;
        }
        if (st == NW_OK) {
            dl_name(d, d->done[d->ndone].name, sizeof d->done[d->ndone].name);
            d->done[d->ndone++].len = len;
            d->dirty = 0;
        }
    } else if (fflush(d->f) != 0 || ferror(d->f)) {
        st = nw_fail(err, NW_ERR_IO, "write %s/rejected-%s.ndjson: %s", d->dir, d->date,
                     strerror(errno));
    }
    if (fclose(d->f) != 0 && st == NW_OK)
        st = nw_fail(err, NW_ERR_IO, "close %s/rejected-%s.ndjson: %s", d->dir, d->date,
                     strerror(errno));
    d->f = NULL;
    return st;
}

static void dl_date(nw_time now, char *date, size_t cap)
{
    char ts[NW_TIME_STRLEN];
    if (nw_time_format(now, ts, sizeof ts) == 0)
        date[0] = 0;
    else
        snprintf(date, cap, "%.10s", ts);
}

int nw__dl_opens(const nw_deadletter *d, nw_time now)
{
    char date[sizeof d->date];
    dl_date(now, date, sizeof date);
    return !d->f || strcmp(date, d->date) != 0;
}

/* Makes sure the catalog has a row for file `name` before it is appended
 * to: without one, its present length is committed first, in a
 * transaction of its own (a crash before our commit cuts it back to that). */
static nw_status dl_note(nw_deadletter *d, const char *name, nw_err *err)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(d->cat, SQL_DL_GET, -1, &q, NULL) != SQLITE_OK)
        return nw__sql_fail(d->cat, "dead-letter lengths", err);
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW)
        return NW_OK;
    if (rc != SQLITE_DONE)
        return nw__sql_fail(d->cat, "dead-letter lengths", err);
    uint64_t len = 0;
    nw_status st = dl_size(d->dir, name, &len, err);
    if (st == NW_OK)
        st = nw__exec(d->cat, SQL_BEGIN_IMMEDIATE, "dead-letter lengths", err);
    else
        return st;
    if (st == NW_OK)
        st = dl_sql(d->cat, SQL_DL_PUT, name, len, err);
    if (st == NW_OK)
        st = nw__exec(d->cat, SQL_COMMIT, "dead-letter lengths", err);
    if (st != NW_OK)
        sqlite3_exec(d->cat, SQL_ROLLBACK, NULL, NULL, NULL);
    return st;
}

/* Makes d->f the file of now's date, closing yesterday's. */
static nw_status dl_file_for(nw_deadletter *d, nw_time now, nw_err *err)
{
    char date[sizeof d->date];
    dl_date(now, date, sizeof date);
    if (!date[0])
        return nw_fail(err, NW_ERR_INVALID, "clock outside the years 0000-9999");
    if (d->f && strcmp(date, d->date) == 0)
        return NW_OK;
    nw_status st = dl_close_file(d, err);
    if (st != NW_OK)
        return st;
    char name[64];
    snprintf(name, sizeof name, "rejected-%s.ndjson", date);
    if ((st = dl_note(d, name, err)) != NW_OK)
        return st;
    char *path = nw__path(d->dir, name);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    d->f = fopen(path, "a");
    if (!d->f) {
        st = nw_fail(err, NW_ERR_IO, "open %s: %s", path, strerror(errno));
        free(path);
        return st;
    }
    free(path);
    setvbuf(d->f, NULL, _IOFBF, NW_DL_BUFFER_BYTES);
    memcpy(d->date, date, sizeof d->date);
    return NW_OK;
}

nw_status nw__dl_write(nw_deadletter *d, const nw_rejection *r, nw_time now, nw_err *err)
{
    nw_status st = dl_file_for(d, now, err);
    if (st != NW_OK)
        return st;
    /* A too_large event arrives already cut to NW_FRAME_KEEP_BYTES; cap
     * anything else at the largest event the decoder accepts. */
    size_t keep = r->raw_len < NW_EVENT_MAX_BYTES ? r->raw_len : NW_EVENT_MAX_BYTES;
    if (!r->raw)
        keep = 0;
    char ts[NW_TIME_STRLEN];
    nw_time_format(now, ts, sizeof ts);
    FILE *f = d->f;
    d->dirty = 1;
    fputs("{\"time\":", f);
    put_cstring(f, ts);
    fputs(",\"reason\":", f);
    put_cstring(f, nw_reject_name(r->reason));
    fputs(",\"detail\":", f);
    put_cstring(f, r->detail);
    fputs(",\"source\":", f);
    put_cstring(f, r->source);
    fprintf(f, ",\"offset\":%llu,\"length\":%llu,\"truncated\":%s,\"raw\":",
            (unsigned long long)r->offset, (unsigned long long)r->full_len,
            keep < r->full_len ? "true" : "false");
    put_json_string(f, r->raw, keep);
    fputs("}\n", f);
    if (ferror(f))
        return nw_fail(err, NW_ERR_IO, "write %s/rejected-%s.ndjson failed", d->dir,
                       d->date);
    return NW_OK;
}

int nw__dl_pending(const nw_deadletter *d)
{
    return d->dirty || d->ndone > 0;
}

nw_status nw__dl_commit(nw_deadletter *d, nw_err *err)
{
    nw_status st = NW_OK;
    char name[64] = "";
    if (d->f)
        dl_name(d, name, sizeof name);
    if (d->f && d->dirty) {
        uint64_t len = 0;
        st = dl_sync(d, err);
        if (st == NW_OK)
            st = dl_len(d, &len, err);
        if (st == NW_OK)
            st = dl_sql(d->cat, SQL_DL_PUT, name, len, err);
    }
    /* A closed file's lines are all synced and committed with this
     * transaction: no row needed any more. */
    for (size_t i = 0; st == NW_OK && i < d->ndone; i++)
        if (strcmp(d->done[i].name, name) != 0)   /* reopened (clock went back) */
            st = dl_sql(d->cat, SQL_DL_DEL, d->done[i].name, 0, err);
    return st;
}

void nw__dl_committed(nw_deadletter *d)
{
    d->dirty = 0;
    d->ndone = 0;
}

nw_status nw__dl_close(nw_deadletter *d, nw_err *err)
{
    nw_status st = dl_close_file(d, err);
    free(d->dir);
    free(d->done);
    d->dir = NULL;
    d->done = NULL;
    d->ndone = d->capdone = 0;
    return st;
}
