/*
 * checkpoint.c -- live-ingest checkpoints in the catalog (checkpoint.h).
 *
 * All the checkpoint SQL is here.  writer.c calls nw__ckpt_write_catalog
 * inside its catalog transaction and nw__ckpt_mark inside each partition's
 * transaction of a checkpointed commit (nw_writer_commit_checkpoint).
 */
#include "netwho/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <nettle/sha2.h>

#include "ckpt_int.h"
#include "netwho/nwtime.h"
#include "sql.h"
#include "store_int.h"

#define SQL_CKPT_SCHEMA                                                              \
    "CREATE TABLE IF NOT EXISTS checkpoint(slot INTEGER PRIMARY KEY, "              \
    "seq INTEGER NOT NULL, parts TEXT NOT NULL, tracker BLOB, redo BLOB);"                     \
    "CREATE TABLE IF NOT EXISTS checkpoint_file(slot INTEGER NOT NULL, "            \
    "path TEXT NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL, "              \
    "offset INTEGER NOT NULL, head_len INTEGER NOT NULL, head_hash INTEGER NOT NULL, " \
    "PRIMARY KEY(slot, path));"                                                   \
    "CREATE TABLE IF NOT EXISTS ingest_key(key TEXT PRIMARY KEY NOT NULL, "         \
    "seq INTEGER NOT NULL, at INTEGER NOT NULL, body_hash INTEGER NOT NULL, "      \
    "accepted INTEGER NOT NULL, rejected INTEGER NOT NULL, rejected_by TEXT NOT NULL) " \
    "WITHOUT ROWID;"                                                                \
    "CREATE INDEX IF NOT EXISTS ingest_key_seq ON ingest_key(seq);"                 \
    "CREATE INDEX IF NOT EXISTS ingest_key_at ON ingest_key(at)"
/* Keys of commits after the newest complete one: cut by a crash. */
#define SQL_KEY_DROP_CUT "DELETE FROM ingest_key WHERE seq > ?1"
#define SQL_KEY_PUT                                                                  \
    "INSERT OR REPLACE INTO ingest_key(key, seq, at, body_hash, accepted, rejected, " \
    "rejected_by) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
#define SQL_KEY_PRUNE_AGE "DELETE FROM ingest_key WHERE at < ?1"
/* All but the newest ?1 (one key per commit: seq orders them). */
#define SQL_KEY_PRUNE_COUNT                                                          \
    "DELETE FROM ingest_key WHERE seq < (SELECT seq FROM ingest_key "                \
    "ORDER BY seq DESC LIMIT 1 OFFSET ?1 - 1)"
#define SQL_KEY_GET                                                                  \
    "SELECT body_hash, accepted, rejected, rejected_by, at FROM ingest_key "         \
    "WHERE key = ?1 AND seq <= ?2 AND at >= ?3"
#define SQL_CKPT_PUT                                                                 \
    "INSERT OR REPLACE INTO checkpoint(slot, seq, parts, tracker, redo) "           \
    "VALUES(?1, ?2, ?3, ?4, ?5)"
#define SQL_CKPT_FILES_DEL "DELETE FROM checkpoint_file WHERE slot = ?1"
#define SQL_CKPT_FILE_PUT                                                            \
    "INSERT INTO checkpoint_file(slot, path, dev, ino, offset, head_len, head_hash) "\
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
#define SQL_CKPT_LIST "SELECT slot, seq, parts FROM checkpoint ORDER BY seq DESC"
#define SQL_CKPT_TRACKER "SELECT tracker FROM checkpoint WHERE slot = ?1"
#define SQL_CKPT_REDO "SELECT redo FROM checkpoint WHERE slot = ?1"
#define SQL_CKPT_FILES                                                               \
    "SELECT path, dev, ino, offset, head_len, head_hash FROM checkpoint_file "      \
    "WHERE slot = ?1 ORDER BY path"
#define SQL_CKPT_MARK                                                                \
    "CREATE TABLE IF NOT EXISTS checkpoint_mark(k INTEGER PRIMARY KEY CHECK (k = 0), " \
    "seq INTEGER NOT NULL);"                                                         \
    "INSERT OR REPLACE INTO checkpoint_mark(k, seq) VALUES(0, %llu)"
#define SQL_CKPT_MARK_GET "SELECT seq FROM checkpoint_mark WHERE k = 0"
/* A checkpoint's redo record and roll-up sums, in pieces (NW_REDO_CHUNK):
 * a table of its own, so that a catalog of an older build (which kept the
 * redo record, at most 64 MiB, in checkpoint.redo) is migrated by
 * creating it; that column is still read when a slot has no pieces. */
#define SQL_CKPT_BLOB_SCHEMA                                                         \
    "CREATE TABLE IF NOT EXISTS checkpoint_blob(slot INTEGER NOT NULL, "            \
    "kind INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL, "               \
    "PRIMARY KEY(slot, kind, n))"
#define SQL_CKPT_BLOB_DEL "DELETE FROM checkpoint_blob WHERE slot = ?1"
#define SQL_CKPT_BLOB_PUT                                                            \
    "INSERT INTO checkpoint_blob(slot, kind, n, data) VALUES(?1, ?2, ?3, ?4)"
#define SQL_CKPT_BLOB_GET                                                            \
    "SELECT data FROM checkpoint_blob WHERE slot = ?1 AND kind = ?2 ORDER BY n"

enum { BLOB_REDO = 1, BLOB_HOURLY = 2 };

uint64_t nw_ckpt_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

uint64_t nw_ckpt_body_hash(const void *p, size_t n)
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, n, p);
    sha256_digest(&c, sizeof d, d);
    uint64_t h;
    memcpy(&h, d, sizeof h);
    return h;
}

void nw_ckpt_clear(nw_ckpt *ck)
{
    free(ck->tracker);
    memset(ck, 0, sizeof *ck);
}

/* Steps a statement that returns no row and finalizes it. */
static nw_status step_done(sqlite3 *db, sqlite3_stmt *st, nw_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? NW_OK : nw__sql_fail(db, "write checkpoint", err);
}

/* ----------------------------------------------------------------- redo */

enum { REDO_CONN = 1, REDO_TRANSFER, REDO_FAILURE };

static void redo_put(nw_redo *r, const void *src, size_t n)
{
    if (r->overflow)
        return;
    if (r->len + n < r->len) {
        r->overflow = 1;
        return;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->len + n)
            cap *= 2;
        unsigned char *np = realloc(r->p, cap);
        if (!np) {
            r->overflow = 1;
            return;
        }
        r->p = np;
        r->cap = cap;
    }
    memcpy(r->p + r->len, src, n);
    r->len += n;
}

static void redo_host(nw_redo *r, const char *host)
{
    uint16_t n = (uint16_t)strnlen(host, NW_HOST_MAX - 1);
    redo_put(r, &n, sizeof n);
    redo_put(r, host, n);
}

void nw__redo_conn(nw_redo *r, const nw_conn *c)
{
    uint8_t k = REDO_CONN;
    nw_conn x = *c;
    x.host = NULL;
    redo_put(r, &k, 1);
    redo_put(r, &x, sizeof x);
    redo_host(r, c->host);
}

void nw__redo_transfer(nw_redo *r, const nw_transfer *t)
{
    uint8_t k = REDO_TRANSFER;
    redo_put(r, &k, 1);
    redo_put(r, t, sizeof *t);
}

void nw__redo_failure(nw_redo *r, const nw_failure *f)
{
    uint8_t k = REDO_FAILURE;
    nw_failure x = *f;
    x.host = NULL;
    redo_put(r, &k, 1);
    redo_put(r, &x, sizeof x);
    redo_host(r, f->host);
}

void nw__redo_reset(nw_redo *r)
{
    r->len = 0;
    r->overflow = 0;
}

void nw__redo_free(nw_redo *r)
{
    free(r->p);
    memset(r, 0, sizeof *r);
}

/* Writes the rows of a redo record through sink (same build: the record's
 * structs are native).  NW_ERR_CORRUPT if it does not parse. */
static nw_status redo_apply(const unsigned char *p, size_t len, const nw_sink *sink,
                            nw_err *err)
{
    size_t at = 0;
    char host[NW_HOST_MAX];
#define TAKE(dst, n)                                                             \
    do {                                                                         \
        if (len - at < (n))                                                      \
            return nw_fail(err, NW_ERR_CORRUPT, "a checkpoint's redo record is cut"); \
        memcpy((dst), p + at, (n));                                              \
        at += (n);                                                               \
    } while (0)
    while (at < len) {
        uint8_t k;
        uint16_t hl;
        nw_status st = NW_OK;
        TAKE(&k, 1);
        if (k == REDO_CONN) {
            nw_conn c;
            TAKE(&c, sizeof c);
            TAKE(&hl, sizeof hl);
            if (hl >= NW_HOST_MAX)
                return nw_fail(err, NW_ERR_CORRUPT, "bad redo record");
            TAKE(host, hl);
            host[hl] = 0;
            c.host = host;
            st = sink->conn(sink->ctx, &c);
        } else if (k == REDO_TRANSFER) {
            nw_transfer t;
            TAKE(&t, sizeof t);
            st = sink->transfer(sink->ctx, &t);
        } else if (k == REDO_FAILURE) {
            nw_failure f;
            TAKE(&f, sizeof f);
            TAKE(&hl, sizeof hl);
            if (hl >= NW_HOST_MAX)
                return nw_fail(err, NW_ERR_CORRUPT, "bad redo record");
            TAKE(host, hl);
            host[hl] = 0;
            f.host = host;
            st = sink->failure(sink->ctx, &f);
        } else {
            return nw_fail(err, NW_ERR_CORRUPT, "bad redo record");
        }
        if (st != NW_OK)
            return st;
    }
#undef TAKE
    return NW_OK;
}

/* Unix seconds now. */
static int64_t unix_now(void)
{
    return (int64_t)(nw_time_now() / NW_TICKS_PER_SEC);
}

/*
 * In the checkpoint's catalog transaction: forgets the keys of commits
 * after ck->complete_seq (a crash cut them: their rows are not all there),
 * then records ck->key with ck->seq and prunes the old ones.
 */
static nw_status keys_write(sqlite3 *cat, const nw_ckpt *ck, nw_err *err)
{
    sqlite3_stmt *s = NULL;
    nw_status st;
    if (sqlite3_prepare_v2(cat, SQL_KEY_DROP_CUT, -1, &s, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "write idempotency key", err);
    sqlite3_bind_int64(s, 1, (int64_t)ck->complete_seq);
    if ((st = step_done(cat, s, err)) != NW_OK || !ck->key)
        return st;
    const nw_ckpt_key *k = ck->key;
    char by[NW_REJ__COUNT * 21 + 1];
    size_t l = 0;
    by[0] = 0;
    for (int i = 0; i < NW_REJ__COUNT; i++)
        l += (size_t)snprintf(by + l, sizeof by - l, "%s%llu", i ? "," : "",
                              (unsigned long long)k->rejected_by[i]);
    if (sqlite3_prepare_v2(cat, SQL_KEY_PUT, -1, &s, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "write idempotency key", err);
    sqlite3_bind_text(s, 1, k->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (int64_t)ck->seq);
    sqlite3_bind_int64(s, 3, k->at);
    sqlite3_bind_int64(s, 4, (int64_t)k->body_hash);
    sqlite3_bind_int64(s, 5, (int64_t)k->accepted);
    sqlite3_bind_int64(s, 6, (int64_t)k->rejected);
    sqlite3_bind_text(s, 7, by, -1, SQLITE_TRANSIENT);
    if ((st = step_done(cat, s, err)) != NW_OK)
        return st;
    if (sqlite3_prepare_v2(cat, SQL_KEY_PRUNE_AGE, -1, &s, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "prune idempotency keys", err);
    sqlite3_bind_int64(s, 1, k->at - NW_CKPT_KEY_TTL_S);
    if ((st = step_done(cat, s, err)) != NW_OK)
        return st;
    if (sqlite3_prepare_v2(cat, SQL_KEY_PRUNE_COUNT, -1, &s, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "prune idempotency keys", err);
    sqlite3_bind_int64(s, 1, NW_CKPT_KEYS_MAX);
    return step_done(cat, s, err);
}

nw_status nw_store_key_get(nw_store *s, const char *key, uint64_t complete_seq,
                           nw_ckpt_key *out, int *found, nw_err *err)
{
    *found = 0;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->cat, SQL_KEY_GET, -1, &st, NULL) != SQLITE_OK) {
        /* No table yet: no key was ever committed. */
        if (strstr(sqlite3_errmsg(s->cat), "no such table"))
            return NW_OK;
        return nw__sql_fail(s->cat, "read idempotency key", err);
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)complete_seq);
    sqlite3_bind_int64(st, 3, unix_now() - NW_CKPT_KEY_TTL_S);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = 1;
        snprintf(out->key, sizeof out->key, "%s", key);
        out->body_hash = (uint64_t)sqlite3_column_int64(st, 0);
        out->accepted = (uint64_t)sqlite3_column_int64(st, 1);
        out->rejected = (uint64_t)sqlite3_column_int64(st, 2);
        const char *p = (const char *)sqlite3_column_text(st, 3);
        for (int i = 0; p && *p && i < NW_REJ__COUNT; i++) {
            char *e;
            out->rejected_by[i] = strtoull(p, &e, 10);
            p = *e == ',' ? e + 1 : e;
        }
        out->at = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return nw__sql_fail(s->cat, "read idempotency key", err);
    return NW_OK;
}

/* Stores p[0..len) as slot's blob of kind, in pieces. */
static nw_status blob_put(sqlite3 *cat, int slot, int kind, const unsigned char *p,
                          size_t len, nw_err *err)
{
    for (size_t at = 0, n = 0; at < len; n++) {
        size_t piece = len - at < NW_REDO_CHUNK ? len - at : NW_REDO_CHUNK;
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(cat, SQL_CKPT_BLOB_PUT, -1, &s, NULL) != SQLITE_OK)
            return nw__sql_fail(cat, "write checkpoint", err);
        sqlite3_bind_int(s, 1, slot);
        sqlite3_bind_int(s, 2, kind);
        sqlite3_bind_int64(s, 3, (int64_t)n);
        sqlite3_bind_blob64(s, 4, p + at, piece, SQLITE_STATIC);
        nw_status st = step_done(cat, s, err);
        if (st != NW_OK)
            return st;
        at += piece;
    }
    return NW_OK;
}

/* Slot's blob of kind (*p NULL, *len 0 if none); caller frees *p. */
static nw_status blob_get(sqlite3 *cat, int slot, int kind, unsigned char **p, size_t *len,
                          nw_err *err)
{
    *p = NULL;
    *len = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(cat, SQL_CKPT_BLOB_GET, -1, &st, NULL) != SQLITE_OK) {
        /* A catalog that never had a checkpoint of this build. */
        if (strstr(sqlite3_errmsg(cat), "no such table"))
            return NW_OK;
        return nw__sql_fail(cat, "read checkpoint", err);
    }
    sqlite3_bind_int(st, 1, slot);
    sqlite3_bind_int(st, 2, kind);
    int rc;
    nw_status r = NW_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        unsigned char *np = realloc(*p, *len + n + 1);
        if (!np) {
            r = nw_fail(err, NW_ERR_NOMEM, "out of memory");
            break;
        }
        *p = np;
        if (n)
            memcpy(*p + *len, sqlite3_column_blob(st, 0), n);
        *len += n;
    }
    if (r == NW_OK && rc != SQLITE_DONE)
        r = nw__sql_fail(cat, "read checkpoint", err);
    sqlite3_finalize(st);
    if (r != NW_OK) {
        free(*p);
        *p = NULL;
        *len = 0;
    }
    return r;
}

nw_status nw__ckpt_write_catalog(sqlite3 *cat, const nw_ckpt *ck, const char *parts,
                                 const nw_redo *redo, const unsigned char *hourly,
                                 size_t hourly_len, nw_err *err)
{
    nw_status st = nw__exec(cat, SQL_CKPT_SCHEMA, "checkpoint schema", err);
    if (st == NW_OK)
        st = nw__exec(cat, SQL_CKPT_BLOB_SCHEMA, "checkpoint schema", err);
    if (st == NW_OK)
        st = keys_write(cat, ck, err);
    if (st != NW_OK)
        return st;
    int slot = (int)(ck->seq % 2);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(cat, SQL_CKPT_PUT, -1, &s, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "write checkpoint", err);
    sqlite3_bind_int(s, 1, slot);
    sqlite3_bind_int64(s, 2, (int64_t)ck->seq);
    sqlite3_bind_text(s, 3, parts, -1, SQLITE_STATIC);
    if (ck->tracker_len)
        sqlite3_bind_blob64(s, 4, ck->tracker, ck->tracker_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    sqlite3_bind_null(s, 5);       /* the redo record: checkpoint_blob */
    if ((st = step_done(cat, s, err)) != NW_OK)
        return st;
    if (sqlite3_prepare_v2(cat, SQL_CKPT_BLOB_DEL, -1, &s, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "write checkpoint", err);
    sqlite3_bind_int(s, 1, slot);
    if ((st = step_done(cat, s, err)) != NW_OK)
        return st;
    if (redo && redo->len &&
        (st = blob_put(cat, slot, BLOB_REDO, redo->p, redo->len, err)) != NW_OK)
        return st;
    if (hourly_len && (st = blob_put(cat, slot, BLOB_HOURLY, hourly, hourly_len, err)) != NW_OK)
        return st;
    if (sqlite3_prepare_v2(cat, SQL_CKPT_FILES_DEL, -1, &s, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "write checkpoint", err);
    sqlite3_bind_int(s, 1, slot);
    if ((st = step_done(cat, s, err)) != NW_OK)
        return st;
    for (size_t i = 0; i < ck->nfiles; i++) {
        const nw_ckpt_file *f = &ck->files[i];
        if (sqlite3_prepare_v2(cat, SQL_CKPT_FILE_PUT, -1, &s, NULL) != SQLITE_OK)
            return nw__sql_fail(cat, "write checkpoint", err);
        sqlite3_bind_int(s, 1, slot);
        sqlite3_bind_text(s, 2, f->path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, (int64_t)f->dev);
        sqlite3_bind_int64(s, 4, (int64_t)f->ino);
        sqlite3_bind_int64(s, 5, (int64_t)f->offset);
        sqlite3_bind_int64(s, 6, f->head_len);
        sqlite3_bind_int64(s, 7, (int64_t)f->head_hash);
        if ((st = step_done(cat, s, err)) != NW_OK)
            return st;
    }
    return NW_OK;
}

nw_status nw__ckpt_mark(sqlite3 *part, uint64_t seq, const char *name, nw_err *err)
{
    char sql[512];
    snprintf(sql, sizeof sql, SQL_CKPT_MARK, (unsigned long long)seq);
    return nw__exec(part, sql, name, err);
}

/* The checkpoint_mark of partition `name` (0 if none).  A file that no
 * longer exists was dropped (retention, or by hand) after it committed --
 * a partition's file is created, with its schema, before any commit's rows
 * go into it -- so it counts as having every mark: UINT64_MAX. */
static uint64_t part_mark(const char *dir, const char *name)
{
    char *path = nw__path(dir, name);
    if (!path)
        return 0;
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) {
        free(path);
        return UINT64_MAX;
    }
    sqlite3 *db = NULL;
    uint64_t seq = 0;
    nw_err oerr = {{0}};
    if (nw__open_read(path, &db, NULL, &oerr) == NW_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, SQL_CKPT_MARK_GET, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            seq = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    free(path);
    return seq;
}

/* How many of the comma-separated parts carry seq or later: *all, *some;
 * missing gets those that do not (as parts, comma-separated: it has room). */
static void parts_applied(const char *dir, const char *parts, uint64_t seq, int *all,
                          int *some, char *missing)
{
    *all = 1;
    *some = 0;
    missing[0] = 0;
    size_t l = 0;
    const char *p = parts;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[NW_PART_NAME_MAX];
        if (n > 0 && n < sizeof name) {
            memcpy(name, p, n);
            name[n] = 0;
            if (part_mark(dir, name) >= seq) {
                *some = 1;
            } else {
                *all = 0;
                l += (size_t)sprintf(missing + l, "%s%s", l ? "," : "", name);
            }
        }
        p += n + (e ? 1 : 0);
    }
}

static nw_status load_slot(sqlite3 *cat, int slot, nw_ckpt *out, nw_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(cat, SQL_CKPT_TRACKER, -1, &st, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "read checkpoint", err);
    sqlite3_bind_int(st, 1, slot);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        out->tracker = malloc(n);
        if (!out->tracker) {
            sqlite3_finalize(st);
            return nw_fail(err, NW_ERR_NOMEM, "out of memory");
        }
        memcpy(out->tracker, sqlite3_column_blob(st, 0), n);
        out->tracker_len = n;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(cat, SQL_CKPT_FILES, -1, &st, NULL) != SQLITE_OK)
        return nw__sql_fail(cat, "read checkpoint", err);
    sqlite3_bind_int(st, 1, slot);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->nfiles < NW_CKPT_MAX_FILES) {
        nw_ckpt_file *f = &out->files[out->nfiles++];
        snprintf(f->path, sizeof f->path, "%s", (const char *)sqlite3_column_text(st, 0));
        f->dev = (uint64_t)sqlite3_column_int64(st, 1);
        f->ino = (uint64_t)sqlite3_column_int64(st, 2);
        f->offset = (uint64_t)sqlite3_column_int64(st, 3);
        f->head_len = (uint32_t)sqlite3_column_int64(st, 4);
        f->head_hash = (uint64_t)sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return nw__sql_fail(cat, "read checkpoint", err);
    return NW_OK;
}

/*
 * Writes commit `seq`'s rows (its redo record, in slot) into the partitions
 * named in missing, which a crash kept them from, and marks them: after
 * this the commit is whole.  *done = 1 if repaired, 0 if the commit has no
 * redo record (then nothing is written).
 */
static nw_status repair(nw_store *s, int slot, uint64_t seq, const char *missing, int *done,
                        nw_err *err)
{
    *done = 0;
    unsigned char *redo = NULL;
    size_t len = 0;
    nw_status r = blob_get(s->cat, slot, BLOB_REDO, &redo, &len, err);
    if (r != NW_OK)
        return r;
    if (!redo) {
        /* A catalog of an older build kept it in checkpoint.redo. */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->cat, SQL_CKPT_REDO, -1, &st, NULL) != SQLITE_OK)
            return nw__sql_fail(s->cat, "read checkpoint", err);
        sqlite3_bind_int(st, 1, slot);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) > 0) {
            len = (size_t)sqlite3_column_bytes(st, 0);
            redo = malloc(len);
            if (redo)
                memcpy(redo, sqlite3_column_blob(st, 0), len);
        }
        sqlite3_finalize(st);
        if (!redo)
            return len ? nw_fail(err, NW_ERR_NOMEM, "out of memory") : NW_OK;
    }
    nw_ckpt ck;
    memset(&ck, 0, sizeof ck);
    nw_writer *w = NULL;
    r = load_slot(s->cat, slot, &ck, err);
    ck.seq = seq;
    ck.complete_seq = seq;       /* its keys (and older) stand: it is whole now */
    if (r == NW_OK)
        r = nw_writer_open(s, &w, err);
    if (r == NW_OK) {
        nw_sink sink;
        nw_writer_sink(w, &sink);
        nw_writer_hold(w, 1);
        r = nw__writer_only(w, missing, err);
        if (r == NW_OK)
            r = redo_apply(redo, len, &sink, err);
        if (r == NW_OK)
            r = nw_writer_commit_checkpoint(w, &ck, err);
        if (r == NW_OK) {
            r = nw_writer_close(w, err);
        } else {
            nw_writer_discard(w);
        }
    }
    free(redo);
    nw_ckpt_clear(&ck);
    *done = r == NW_OK;
    return r;
}

/* Commit `seq`'s hourly roll-up sums (slot), added to rollups.db if its
 * mark is behind: the roll-up commits after the partitions, so a crash or
 * a failed roll-up write can have kept them from it (hourly.h). */
static nw_status repair_hourly(nw_store *s, int slot, uint64_t seq, nw_err *err)
{
    unsigned char *p = NULL;
    size_t len = 0;
    nw_status r = blob_get(s->cat, slot, BLOB_HOURLY, &p, &len, err);
    if (r != NW_OK || !p)
        return r;
    if (nw__hourly_mark(s) < seq) {
        nw_writer *w = NULL;           /* the lock: no one else writes it */
        r = nw_writer_open(s, &w, err);
        if (r == NW_OK) {
            r = nw__hourly_repair(s, seq, p, len, err);
            nw_err cerr;
            nw_status c = nw_writer_close(w, &cerr);
            if (r == NW_OK && c != NW_OK) {
                r = c;
                *err = cerr;
            }
        }
    }
    free(p);
    return r;
}

nw_status nw_store_checkpoint_load(nw_store *s, nw_ckpt *out, char *warn, size_t warn_cap,
                                   nw_err *err)
{
    memset(out, 0, sizeof *out);
    if (warn && warn_cap)
        warn[0] = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->cat, SQL_CKPT_LIST, -1, &st, NULL) != SQLITE_OK) {
        /* No checkpoint table yet: nothing was ever checkpointed. */
        if (strstr(sqlite3_errmsg(s->cat), "no such table"))
            return NW_OK;
        return nw__sql_fail(s->cat, "read checkpoint", err);
    }
    struct { int slot; uint64_t seq; char *parts, *missing; } c[2];
    memset(c, 0, sizeof c);
    int n = 0, rc;
    nw_status r = NW_OK;
    while (n < 2 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        c[n].slot = sqlite3_column_int(st, 0);
        c[n].seq = (uint64_t)sqlite3_column_int64(st, 1);
        const unsigned char *p = sqlite3_column_text(st, 2);
        c[n].parts = strdup(p ? (const char *)p : "");
        c[n].missing = calloc(1, strlen(c[n].parts) + 1);
        n++;
        if (!c[n - 1].parts || !c[n - 1].missing) {
            r = nw_fail(err, NW_ERR_NOMEM, "out of memory");
            break;
        }
    }
    sqlite3_finalize(st);
    for (int i = 0; r == NW_OK && i < n; i++) {
        int all, some;
        char *missing = c[i].missing;
        parts_applied(s->dir, c[i].parts, c[i].seq, &all, &some, missing);
        if (!all && i == 0) {
            /* The catalog committed the step; one or more of its
             * partitions did not: they get its rows from the redo record. */
            int done = 0;
            r = repair(s, c[i].slot, c[i].seq, missing, &done, err);
            if (r != NW_OK)
                break;
            if (done) {
                if (warn && warn_cap)
                    snprintf(warn, warn_cap,
                             "commit %llu had not reached %s when netwhod stopped: its rows "
                             "for it were written from the commit's redo record",
                             (unsigned long long)c[i].seq, missing);
                all = 1;
            }
        }
        if (!all) {
            if (some && warn && warn_cap)
                snprintf(warn, warn_cap,
                         "commit %llu was cut by a crash between partition files (not in "
                         "%s): the rows it wrote to the others (%s) are written again",
                         (unsigned long long)c[i].seq, missing, c[i].parts);
            continue;              /* that commit did not (fully) happen */
        }
        r = repair_hourly(s, c[i].slot, c[i].seq, err);
        if (r != NW_OK)
            break;
        out->seq = c[i].seq;
        r = load_slot(s->cat, c[i].slot, out, err);
        if (r != NW_OK)
            nw_ckpt_clear(out);
        break;
    }
    for (int i = 0; i < n; i++) {
        free(c[i].parts);
        free(c[i].missing);
    }
    return r;
}
