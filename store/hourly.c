/*
 * hourly.c -- the hourly roll-up in DIR/rollups.db (hourly.h).
 *
 * The writer's side sums additions in memory per key (hour, host, pid,
 * remote ip, remote port) and upserts them at commit, in one transaction of
 * rollups.db, after the partitions committed (writer.c, commit_all).  Sums
 * do not depend on the order of the additions, so the rows equal those of
 * one upsert per connection write.  The table only grows between commits
 * by the number of distinct keys written, at most one per connection row.
 */
#include "netwho/hourly.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sql.h"
#include "store_int.h"

/* Text of a PRAGMA with a number, and of a query (head, six fragments,
 * tail). */
#define HOURLY_PRAGMA_MAX 64
#define HOURLY_SQL_MAX 1024

typedef struct hacc {
    char *host;                    /* owned; NULL: a free slot            */
    nw_addr ip;
    uint32_t pid;
    uint16_t port;
    int64_t hour;                  /* hours since the epoch                */
    uint64_t hash;
    uint64_t conns, sent, recv;    /* two's-complement sums of the adds    */
} hacc;
_Static_assert(offsetof(hacc, host) == 0, "nw__acc_grow: host first");

struct nw_hourly_wr {
    sqlite3 *db;                   /* rollups.db, opened at the first commit */
    sqlite3_stmt *add;
    hacc *tab;                     /* open addressing, cap a power of two */
    size_t cap, n;
};

void nw_hourly_query_init(nw_hourly_query *q)
{
    memset(q, 0, sizeof *q);
    q->pid = -1;
    q->remote_port = -1;
    q->from = NW_TIME_MIN;
    q->to = NW_TIME_MAX;
    q->by_hour = 1;
}

/* Hours since the epoch of t (floor, also before 1970). */
static int64_t hour_of(nw_time t)
{
    int64_t h = t / NW_TICKS_PER_HOUR;
    return (t % NW_TICKS_PER_HOUR != 0 && t < 0) ? h - 1 : h;
}

static uint64_t hacc_hash(const char *host, const nw_addr *ip, uint32_t pid, uint16_t port,
                          int64_t hour)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip->b[i]) * 1099511628211ULL;
    h = (h ^ pid) * 1099511628211ULL;
    h = (h ^ port) * 1099511628211ULL;
    h = (h ^ (uint64_t)hour) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static void tab_clear(struct nw_hourly_wr *hw)
{
    nw__acc_free(hw->tab, hw->cap, sizeof *hw->tab);
    hw->tab = NULL;
    hw->cap = hw->n = 0;
}

/* Adds to the key (c's host, pid, remote end; hour). */
static nw_status tab_add(struct nw_hourly_wr *hw, const nw_conn *c, int64_t hour,
                         int64_t conns, int64_t sent, int64_t recv, nw_err *err)
{
    if ((hw->n + 1) * 2 > hw->cap) {
        hacc *tab = nw__acc_grow(hw->tab, &hw->cap, sizeof *tab, offsetof(hacc, hash));
        if (!tab)
            return nw_fail(err, NW_ERR_NOMEM, "out of memory for the hourly roll-up");
        hw->tab = tab;
    }
    uint64_t hash = hacc_hash(c->host, &c->remote_ip, c->pid, c->remote_port, hour);
    hacc *a;
    for (size_t i = hash & (hw->cap - 1);; i = (i + 1) & (hw->cap - 1)) {
        a = &hw->tab[i];
        if (!a->host || (a->hash == hash && a->hour == hour && a->pid == c->pid &&
                         a->port == c->remote_port &&
                         memcmp(a->ip.b, c->remote_ip.b, 16) == 0 &&
                         strcmp(a->host, c->host) == 0))
            break;
    }
    if (!a->host) {
        if (!(a->host = strdup(c->host)))
            return nw_fail(err, NW_ERR_NOMEM, "out of memory for the hourly roll-up");
        a->ip = c->remote_ip;
        a->pid = c->pid;
        a->port = c->remote_port;
        a->hour = hour;
        a->hash = hash;
        hw->n++;
    }
    a->conns += (uint64_t)conns;
    a->sent += (uint64_t)sent;
    a->recv += (uint64_t)recv;
    return NW_OK;
}

nw_status nw__hourly_add(struct nw_hourly_wr **hwp, const nw_conn *c, int64_t conns,
                         int64_t d_sent, int64_t d_recv, nw_err *err)
{
    if (conns == 0 && d_sent == 0 && d_recv == 0)
        return NW_OK;
    if (!*hwp && !(*hwp = calloc(1, sizeof **hwp)))
        return nw_fail(err, NW_ERR_NOMEM, "out of memory for the hourly roll-up");
    struct nw_hourly_wr *hw = *hwp;
    int64_t h_first = hour_of(c->first_seen), h_last = hour_of(c->last_seen);
    if (h_first == h_last)
        return tab_add(hw, c, h_first, conns, d_sent, d_recv, err);
    nw_status st = NW_OK;
    if (conns)
        st = tab_add(hw, c, h_first, conns, 0, 0, err);
    if (st == NW_OK && (d_sent || d_recv))
        st = tab_add(hw, c, h_last, 0, d_sent, d_recv, err);
    return st;
}

/* Opens (and makes) DIR/rollups.db, read-write, WAL, schema current. */
static nw_status open_rw(nw_store *s, sqlite3 **out, nw_err *err)
{
    char *path = nw__path(s->dir, SQL_HOURLY_FILE);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    sqlite3 *db = NULL;
    nw_status st = NW_OK;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                       SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        st = nw__sql_fail(db, path, err);
    if (st == NW_OK) {
        sqlite3_busy_timeout(db, NW_SQL_BUSY_TIMEOUT_MS);
        st = nw__exec(db, SQL_PRAGMA_WAL, SQL_HOURLY_FILE, err);
    }
    if (st == NW_OK)
        st = nw__exec(db, SQL_PRAGMA_SYNC, SQL_HOURLY_FILE, err);
    int version = 0;
    if (st == NW_OK) {
        sqlite3_stmt *v = NULL;
        if (sqlite3_prepare_v2(db, SQL_PRAGMA_USER_VERSION_GET, -1, &v, NULL) != SQLITE_OK ||
            sqlite3_step(v) != SQLITE_ROW)
            st = nw__sql_fail(db, SQL_HOURLY_FILE, err);
        else
            version = sqlite3_column_int(v, 0);
        sqlite3_finalize(v);
    }
    if (st == NW_OK && version > NW_HOURLY_SCHEMA_VERSION)
        st = nw_fail(err, NW_ERR_CORRUPT, "%s has schema version %d, newer than this "
                     "netwho's %d", path, version, NW_HOURLY_SCHEMA_VERSION);
    if (st == NW_OK && version < NW_HOURLY_SCHEMA_VERSION) {
        char pragma[HOURLY_PRAGMA_MAX];
        snprintf(pragma, sizeof pragma, SQL_PRAGMA_USER_VERSION_SET_FMT,
                 NW_HOURLY_SCHEMA_VERSION);
        st = nw__exec(db, SQL_BEGIN_IMMEDIATE, SQL_HOURLY_FILE, err);
        if (st == NW_OK)
            st = nw__exec(db, SQL_HOURLY_SCHEMA, SQL_HOURLY_FILE, err);
        if (st == NW_OK)
            st = nw__exec(db, pragma, SQL_HOURLY_FILE, err);
        if (st == NW_OK)
            st = nw__exec(db, SQL_COMMIT, SQL_HOURLY_FILE, err);
        else
            sqlite3_exec(db, SQL_ROLLBACK, NULL, NULL, NULL);
    }
    free(path);
    if (st != NW_OK) {
        sqlite3_close(db);
        return st;
    }
    *out = db;
    return NW_OK;
}

/* Upserts every sum of tab (cap slots) in db's open transaction. */
static nw_status upsert_all(sqlite3 *db, sqlite3_stmt *q, const hacc *tab, size_t cap,
                            nw_err *err)
{
    for (size_t i = 0; i < cap; i++) {
        const hacc *a = &tab[i];
        if (!a->host)
            continue;
        sqlite3_bind_blob(q, 1, a->ip.b, 16, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, a->port);
        sqlite3_bind_int64(q, 3, a->hour);
        sqlite3_bind_text(q, 4, a->host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 5, a->pid);
        sqlite3_bind_int64(q, 6, (int64_t)a->conns);
        sqlite3_bind_int64(q, 7, (int64_t)a->sent);
        sqlite3_bind_int64(q, 8, (int64_t)a->recv);
        int rc = sqlite3_step(q);
        sqlite3_reset(q);
        if (rc != SQLITE_DONE)
            return nw__sql_fail(db, SQL_HOURLY_FILE, err);
    }
    return NW_OK;
}

/* Records checkpoint seq in db's open transaction. */
static nw_status mark_set(sqlite3 *db, uint64_t seq, nw_err *err)
{
    nw_status st = nw__exec(db, SQL_HOURLY_MARK_SCHEMA, SQL_HOURLY_FILE, err);
    if (st != NW_OK)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, SQL_HOURLY_MARK_SET, -1, &q, NULL) != SQLITE_OK)
        return nw__sql_fail(db, SQL_HOURLY_FILE, err);
    sqlite3_bind_int64(q, 1, (int64_t)seq);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? NW_OK : nw__sql_fail(db, SQL_HOURLY_FILE, err);
}

static uint64_t mark_get(sqlite3 *db)
{
    sqlite3_stmt *q = NULL;
    uint64_t seq = 0;
    if (sqlite3_prepare_v2(db, SQL_HOURLY_MARK_GET, -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        seq = (uint64_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return seq;
}

nw_status nw__hourly_commit(nw_store *s, struct nw_hourly_wr *hw, uint64_t seq, nw_err *err)
{
    if (!hw || hw->n == 0)
        return NW_OK;
    nw_status st = NW_OK;
    if (!hw->db) {
        st = open_rw(s, &hw->db, err);
        if (st == NW_OK &&
            sqlite3_prepare_v3(hw->db, SQL_HOURLY_ADD, -1, SQLITE_PREPARE_PERSISTENT,
                               &hw->add, NULL) != SQLITE_OK)
            st = nw__sql_fail(hw->db, SQL_HOURLY_FILE, err);
        if (st != NW_OK) {
            sqlite3_finalize(hw->add);
            sqlite3_close(hw->db);
            hw->add = NULL;
            hw->db = NULL;
            return st;
        }
    }
    st = nw__exec(hw->db, SQL_BEGIN_IMMEDIATE, SQL_HOURLY_FILE, err);
    if (st == NW_OK)
        st = upsert_all(hw->db, hw->add, hw->tab, hw->cap, err);
    if (st == NW_OK && seq)
        st = mark_set(hw->db, seq, err);
    if (st == NW_OK)
        st = nw__exec(hw->db, SQL_COMMIT, SQL_HOURLY_FILE, err);
    if (st != NW_OK) {
        /* The sums stay: the next commit tries them again. */
        sqlite3_exec(hw->db, SQL_ROLLBACK, NULL, NULL, NULL);
        return st;
    }
    tab_clear(hw);
    return NW_OK;
}

/* Saved layout of one sum: ip[16] pid(4) port(2) hour(8) conns sent recv
 * (8 each) host_len(2) host. */
#define SAVED_FIXED (16 + 4 + 2 + 8 + 3 * 8 + 2)

nw_status nw__hourly_save(const struct nw_hourly_wr *hw, unsigned char **out, size_t *len,
                          nw_err *err)
{
    *out = NULL;
    *len = 0;
    if (!hw || hw->n == 0)
        return NW_OK;
    size_t need = 0;
    for (size_t i = 0; i < hw->cap; i++)
        if (hw->tab[i].host)
            need += SAVED_FIXED + strlen(hw->tab[i].host);
    unsigned char *p = malloc(need), *at = p;
    if (!p)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory for the roll-up's checkpoint");
    for (size_t i = 0; i < hw->cap; i++) {
        const hacc *a = &hw->tab[i];
        if (!a->host)
            continue;
        uint16_t hl = (uint16_t)strlen(a->host);
        memcpy(at, a->ip.b, 16), at += 16;
        memcpy(at, &a->pid, 4), at += 4;
        memcpy(at, &a->port, 2), at += 2;
        memcpy(at, &a->hour, 8), at += 8;
        memcpy(at, &a->conns, 8), at += 8;
        memcpy(at, &a->sent, 8), at += 8;
        memcpy(at, &a->recv, 8), at += 8;
        memcpy(at, &hl, 2), at += 2;
        memcpy(at, a->host, hl), at += hl;
    }
    *out = p;
    *len = need;
    return NW_OK;
}

uint64_t nw__hourly_mark(nw_store *s)
{
    char *path = nw__path(s->dir, SQL_HOURLY_FILE);
    if (!path)
        return 0;
    sqlite3 *db = NULL;
    uint64_t seq = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, NW_SQL_BUSY_TIMEOUT_MS);
        seq = mark_get(db);
    }
    sqlite3_close(db);
    free(path);
    return seq;
}

nw_status nw__hourly_repair(nw_store *s, uint64_t seq, const unsigned char *p, size_t len,
                            nw_err *err)
{
    /* Parse into a table first: a cut record changes nothing. */
    struct nw_hourly_wr hw;
    memset(&hw, 0, sizeof hw);
    nw_status st = NW_OK;
    size_t at = 0;
    char host[NW_HOST_MAX];
    while (st == NW_OK && at < len) {
        nw_conn c;
        memset(&c, 0, sizeof c);
        int64_t hour;
        uint64_t conns, sent, recv;
        uint16_t hl;
        if (len - at < SAVED_FIXED) {
            st = nw_fail(err, NW_ERR_CORRUPT, "a checkpoint's roll-up sums are cut");
            break;
        }
        memcpy(c.remote_ip.b, p + at, 16), at += 16;
        memcpy(&c.pid, p + at, 4), at += 4;
        memcpy(&c.remote_port, p + at, 2), at += 2;
        memcpy(&hour, p + at, 8), at += 8;
        memcpy(&conns, p + at, 8), at += 8;
        memcpy(&sent, p + at, 8), at += 8;
        memcpy(&recv, p + at, 8), at += 8;
        memcpy(&hl, p + at, 2), at += 2;
        if (hl >= NW_HOST_MAX || len - at < hl) {
            st = nw_fail(err, NW_ERR_CORRUPT, "a checkpoint's roll-up sums are cut");
            break;
        }
        memcpy(host, p + at, hl), at += hl;
        host[hl] = 0;
        c.host = host;
        st = tab_add(&hw, &c, hour, (int64_t)conns, (int64_t)sent, (int64_t)recv, err);
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    if (st == NW_OK)
        st = open_rw(s, &db, err);
    if (st == NW_OK && sqlite3_prepare_v2(db, SQL_HOURLY_ADD, -1, &q, NULL) != SQLITE_OK)
        st = nw__sql_fail(db, SQL_HOURLY_FILE, err);
    if (st == NW_OK)
        st = nw__exec(db, SQL_BEGIN_IMMEDIATE, SQL_HOURLY_FILE, err);
    if (st == NW_OK && mark_get(db) < seq) {
        st = upsert_all(db, q, hw.tab, hw.cap, err);
        if (st == NW_OK)
            st = mark_set(db, seq, err);
    }
    if (st == NW_OK)
        st = nw__exec(db, SQL_COMMIT, SQL_HOURLY_FILE, err);
    else if (db)
        sqlite3_exec(db, SQL_ROLLBACK, NULL, NULL, NULL);
    sqlite3_finalize(q);
    sqlite3_close(db);
    tab_clear(&hw);
    return st;
}

void nw__hourly_close(struct nw_hourly_wr *hw)
{
    if (!hw)
        return;
    tab_clear(hw);
    sqlite3_finalize(hw->add);
    sqlite3_close(hw->db);
    free(hw);
}

/* 1 if DIR/rollups.db exists, 0 if not, -1 (err set) on another error. */
static int file_exists(nw_store *s, char **path, nw_err *err)
{
    *path = nw__path(s->dir, SQL_HOURLY_FILE);
    if (!*path) {
        nw_fail(err, NW_ERR_NOMEM, "out of memory");
        return -1;
    }
    struct stat sb;
    if (stat(*path, &sb) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    nw_fail(err, NW_ERR_IO, "%s: %s", *path, strerror(errno));
    return -1;
}

nw_status nw__hourly_prune(nw_store *s, nw_time before, int *deleted, nw_err *err)
{
    *deleted = 0;
    char *path = NULL;
    int ex = file_exists(s, &path, err);
    free(path);
    if (ex <= 0)
        return ex < 0 ? NW_ERR_IO : NW_OK;
    sqlite3 *db = NULL;
    nw_status st = open_rw(s, &db, err);
    if (st != NW_OK)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, SQL_HOURLY_PRUNE, -1, &q, NULL) != SQLITE_OK)
        st = nw__sql_fail(db, SQL_HOURLY_FILE, err);
    if (st == NW_OK) {
        sqlite3_bind_int64(q, 1, hour_of(before));
        if (sqlite3_step(q) != SQLITE_DONE)
            st = nw__sql_fail(db, SQL_HOURLY_FILE, err);
        else
            *deleted = sqlite3_changes(db) > 0;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return st;
}

void nw__hourly_read_close(nw_store *s)
{
    sqlite3_close(s->hourly_rd);
    s->hourly_rd = NULL;
}

nw_status nw_query_hourly(nw_store *s, const nw_hourly_query *q, nw_hourly_cb cb,
                          void *ctx, int *more, nw_err *err)
{
    if (more)
        *more = 0;
    if (!s || !q || !cb)
        return nw_fail(err, NW_ERR_INVALID, "no store, query or callback");
    if (q->limit < 0)
        return nw_fail(err, NW_ERR_INVALID, "limit must not be negative");
    if (!s->hourly_rd) {
        char *path = NULL;
        int ex = file_exists(s, &path, err);
        if (ex <= 0) {
            free(path);
            return ex < 0 ? NW_ERR_IO : NW_OK;   /* nothing rolled up yet */
        }
        int imm = 0;
        nw_status st = nw__open_read(path, &s->hourly_rd, &imm, err);
        if (st != NW_OK) {
            s->hourly_rd = NULL;
            nw__hourly_read_close(s);
        }
        s->dir_ro |= imm;
        free(path);
        if (st != NW_OK)
            return st;
    }
    char sql[HOURLY_SQL_MAX];
    int from_set = q->from != NW_TIME_MIN, to_set = q->to != NW_TIME_MAX;
    snprintf(sql, sizeof sql, "%s%s%s%s%s%s%s%s",
             q->by_hour ? SQL_Q_HOURLY_HEAD : SQL_Q_HOURLY_TOTAL_HEAD,
             q->has_ip ? SQL_FH_IP : "", q->remote_port >= 0 ? SQL_FH_PORT : "",
             q->pid >= 0 ? SQL_FH_PID : "", q->host ? SQL_FH_HOST : "",
             from_set ? SQL_FH_FROM : "", to_set ? SQL_FH_TO : "",
             q->by_hour ? SQL_Q_HOURLY_TAIL : SQL_Q_HOURLY_TOTAL_TAIL);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->hourly_rd, sql, -1, &st, NULL) != SQLITE_OK)
        return nw__sql_fail(s->hourly_rd, SQL_HOURLY_FILE, err);
    if (q->has_ip) {
        sqlite3_bind_blob(st, 1, q->ip_lo.b, 16, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, q->ip_hi.b, 16, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, 3, q->remote_port);
    sqlite3_bind_int64(st, 4, q->pid);
    if (q->host)
        sqlite3_bind_text(st, 5, q->host, -1, SQLITE_STATIC);
    /* The hours that overlap [from, to): from's own hour on. */
    sqlite3_bind_int64(st, 6, from_set ? hour_of(q->from) : 0);
    int64_t to_h = to_set ? hour_of(q->to) : 0;
    if (to_set && to_h * NW_TICKS_PER_HOUR < q->to)
        to_h++;   /* the hour that holds to overlaps the window */
    sqlite3_bind_int64(st, 7, to_h);
    sqlite3_bind_int64(st, 8, q->limit > 0 ? q->limit + 1 : -1);

    nw_status rs = NW_OK;
    int64_t n = 0;
    int rc;
    nw_hourly_row r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (q->limit > 0 && n == q->limit) {
            if (more)
                *more = 1;
            break;
        }
        memset(&r, 0, sizeof r);
        r.hour = sqlite3_column_type(st, 0) == SQLITE_NULL
                     ? NW_TIME_MIN : sqlite3_column_int64(st, 0) * NW_TICKS_PER_HOUR;
        const unsigned char *h = sqlite3_column_text(st, 1);
        snprintf(r.host, sizeof r.host, "%s", h ? (const char *)h : "");
        r.pid = (uint32_t)sqlite3_column_int64(st, 2);
        const void *ip = sqlite3_column_blob(st, 3);
        if (ip && sqlite3_column_bytes(st, 3) == 16)
            memcpy(r.remote_ip.b, ip, 16);
        r.remote_port = (uint16_t)sqlite3_column_int(st, 4);
        r.connections = (uint64_t)sqlite3_column_int64(st, 5);
        r.bytes_sent = (uint64_t)sqlite3_column_int64(st, 6);
        r.bytes_received = (uint64_t)sqlite3_column_int64(st, 7);
        n++;
        if (cb(ctx, &r))
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        rs = nw__sql_fail(s->hourly_rd, SQL_HOURLY_FILE, err);
    sqlite3_finalize(st);
    return rs;
}
