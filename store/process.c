/*
 * process.c -- the store's process table (DIR/processes.db) and the
 * attribution of connections to processes (see procstore.h).
 *
 * Writing: each process event (procevent.h) is merged into the row of the
 * same process if one exists -- same host and pid, creation intervals that
 * touch, no differing guid or sequence number -- else inserted.  So a
 * ProcessStart, its ProcessStop, a Sysmon 1 and the Sysmon 3s of one
 * process make one row, whatever order they arrive in, while a later
 * process that reuses the pid makes its own.  Writes go in one open
 * transaction, committed by the writer with the partitions (nw_writer_
 * commit): two files cannot commit atomically together, but they commit
 * at the same points, and a crash between loses nothing a re-ingest of
 * the same input would not restore (merging is idempotent).
 *
 * Reading: a read-only handle per nw_store, opened when the file exists.
 * nw_query_connections / nw_query_connection (query.h) are defined here as
 * wrappers of query.c's scans: each connection is attributed by one index
 * probe (host, pid, create_time <= first_seen), and the residual filters
 * (query.h: the flow filters before attribution, the process filters
 * after it) are applied here, with the limit counted here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "netwho/addrclass.h"
#include "netwho/flowid.h"
#include "netwho/procevent.h"
#include "netwho/procstore.h"
#include "sql.h"
#include "store_int.h"

/* Two creation times of one process, from different sources, may differ
 * by rounding: Sysmon's UtcTime is milliseconds, Kernel-Process's 100 ns. */
#define CREATE_SLACK NW_PREC_MS

/* ------------------------------------------------------------- writer */

struct nw_proc_wr {
    sqlite3 *db;
    sqlite3_stmt *cand, *ins, *merge, *close_latest;
    int in_txn;
};

void nw__procw_close(struct nw_proc_wr *pw)
{
    if (!pw)
        return;
    sqlite3_finalize(pw->cand);
    sqlite3_finalize(pw->ins);
    sqlite3_finalize(pw->merge);
    sqlite3_finalize(pw->close_latest);
    if (pw->db && pw->in_txn)
        sqlite3_exec(pw->db, SQL_ROLLBACK, NULL, NULL, NULL);
    sqlite3_close(pw->db);
    free(pw);
}

static nw_status procw_open(nw_store *s, struct nw_proc_wr **out, nw_err *err)
{
    struct nw_proc_wr *pw = calloc(1, sizeof *pw);
    char *path = nw__path(s->dir, SQL_PROCDB_FILE);
    nw_status st = NW_OK;
    if (!pw || !path) {
        free(pw);
        free(path);
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    int rc = sqlite3_open_v2(path, &pw->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK)
        st = nw_fail(err, NW_ERR_IO, "open %s: %s", path,
                     pw->db ? sqlite3_errmsg(pw->db) : sqlite3_errstr(rc));
    if (st == NW_OK) {
        sqlite3_busy_timeout(pw->db, NW_SQL_BUSY_TIMEOUT_MS);
        st = nw__exec(pw->db, SQL_PRAGMA_WAL, path, err);
    }
    if (st == NW_OK)
        st = nw__exec(pw->db, SQL_PRAGMA_SYNC, path, err);
    if (st == NW_OK)
        st = nw__exec(pw->db, SQL_PROCDB_SCHEMA, path, err);
    if (st == NW_OK &&
        (sqlite3_prepare_v2(pw->db, SQL_PROC_CANDIDATES, -1, &pw->cand, NULL) ||
         sqlite3_prepare_v2(pw->db, SQL_PROC_INSERT, -1, &pw->ins, NULL) ||
         sqlite3_prepare_v2(pw->db, SQL_PROC_MERGE, -1, &pw->merge, NULL) ||
         sqlite3_prepare_v2(pw->db, SQL_PROC_CLOSE_LATEST, -1, &pw->close_latest, NULL)))
        st = nw__sql_fail(pw->db, path, err);
    free(path);
    if (st != NW_OK) {
        nw__procw_close(pw);
        return st;
    }
    *out = pw;
    return NW_OK;
}

nw_status nw__procw_commit(struct nw_proc_wr *pw, nw_err *err)
{
    if (!pw || !pw->in_txn)
        return NW_OK;
    nw_status st = nw__exec(pw->db, SQL_COMMIT, SQL_PROCDB_FILE, err);
    pw->in_txn = !sqlite3_get_autocommit(pw->db);
    return st;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s && s[0])
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* ?1..?13 of SQL_PROC_INSERT / SQL_PROC_MERGE. */
static void bind_proc(sqlite3_stmt *st, const nw_proc_event *pe)
{
    const nw_process *p = &pe->p;
    sqlite3_bind_text(st, 1, pe->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->pid);
    sqlite3_bind_int64(st, 3, p->create_time);
    sqlite3_bind_int64(st, 4, pe->create_prec);
    if (pe->has_exit)
        sqlite3_bind_int64(st, 5, p->exit_time);
    else
        sqlite3_bind_null(st, 5);
    if (p->has_parent)
        sqlite3_bind_int64(st, 6, p->parent_pid);
    else
        sqlite3_bind_null(st, 6);
    if (p->has_session)
        sqlite3_bind_int64(st, 7, p->session_id);
    else
        sqlite3_bind_null(st, 7);
    if (p->sequence)
        sqlite3_bind_int64(st, 8, (int64_t)p->sequence);
    else
        sqlite3_bind_null(st, 8);
    bind_text_or_null(st, 9, p->image);
    bind_text_or_null(st, 10, p->parent_image);
    bind_text_or_null(st, 11, p->command_line);
    bind_text_or_null(st, 12, p->user);
    bind_text_or_null(st, 13, p->guid);
}

static nw_status step_done(sqlite3 *db, sqlite3_stmt *st, nw_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return nw__sql_fail(db, SQL_PROCDB_FILE, err);
    return NW_OK;
}

/* The row of pe's process, or 0.  See the file comment for the rule. */
static nw_status find_same(struct nw_proc_wr *pw, const nw_proc_event *pe, int64_t *rowid,
                           nw_err *err)
{
    const nw_process *p = &pe->p;
    nw_time lo = p->create_time - NW_PREC_SECOND - CREATE_SLACK;
    nw_time hi = p->create_time + pe->create_prec + CREATE_SLACK;
    sqlite3_stmt *st = pw->cand;
    sqlite3_bind_text(st, 1, pe->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, p->pid);
    sqlite3_bind_int64(st, 3, lo);
    sqlite3_bind_int64(st, 4, hi);
    int64_t best = 0;
    nw_time best_d = NW_TIME_MAX;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        nw_time ct = sqlite3_column_int64(st, 1);
        nw_time prec = sqlite3_column_int64(st, 2);
        const char *g = (const char *)sqlite3_column_text(st, 3);
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 4);
        if (g && p->guid) {
            if (strcasecmp(g, p->guid) == 0) {
                best = id;
                break;
            }
            continue;
        }
        if (seq && p->sequence && seq != p->sequence)
            continue;
        if (ct > p->create_time + pe->create_prec + CREATE_SLACK ||
            p->create_time > ct + prec + CREATE_SLACK)
            continue;
        nw_time d = ct > p->create_time ? ct - p->create_time : p->create_time - ct;
        if (d < best_d) {
            best_d = d;
            best = id;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return nw__sql_fail(pw->db, SQL_PROCDB_FILE, err);
    *rowid = best;
    return NW_OK;
}

nw_status nw__procw_write(nw_store *s, struct nw_proc_wr **pwp, const nw_proc_event *pe,
                          nw_err *err)
{
    if (!pe || !pe->host[0])
        return nw_fail(err, NW_ERR_INVALID, "process event without host");
    nw_status st = NW_OK;
    if (!*pwp)
        st = procw_open(s, pwp, err);
    if (st != NW_OK)
        return st;
    struct nw_proc_wr *pw = *pwp;
    if (!pw->in_txn) {
        st = nw__exec(pw->db, SQL_BEGIN, SQL_PROCDB_FILE, err);
        if (st != NW_OK)
            return st;
        pw->in_txn = 1;
    }
    if (pe->create_prec == 0) {
        if (!pe->has_exit)
            return NW_OK;   /* nothing to place it by */
        sqlite3_stmt *c = pw->close_latest;
        sqlite3_bind_text(c, 1, pe->host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(c, 2, pe->p.pid);
        sqlite3_bind_int64(c, 3, pe->p.exit_time);
        return step_done(pw->db, c, err);
    }
    int64_t rowid = 0;
    st = find_same(pw, pe, &rowid, err);
    if (st != NW_OK)
        return st;
    if (rowid) {
        bind_proc(pw->merge, pe);
        sqlite3_bind_int64(pw->merge, 14, rowid);
        return step_done(pw->db, pw->merge, err);
    }
    bind_proc(pw->ins, pe);
    return step_done(pw->db, pw->ins, err);
}

/* The path of s's processes.db into *path (caller frees), or NULL there
 * if no process event made the file yet. */
static nw_status procdb_path(nw_store *s, char **path, nw_err *err)
{
    *path = nw__path(s->dir, SQL_PROCDB_FILE);
    if (!*path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(*path, &sb) != 0) {
        free(*path);
        *path = NULL;
    }
    return NW_OK;
}

nw_status nw__proc_prune(nw_store *s, nw_time before, nw_err *err)
{
    char *path;
    nw_status res = procdb_path(s, &path, err);
    if (res != NW_OK || !path)
        return res;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, NW_SQL_BUSY_TIMEOUT_MS);
        rc = sqlite3_prepare_v2(db, SQL_PROC_PRUNE, -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, before);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK)
        res = db ? nw__sql_fail(db, path, err)
                 : nw_fail(err, NW_ERR_IO, "open %s: %s", path, sqlite3_errstr(rc));
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    return res;
}

/* ------------------------------------------------------------- reader */

/* Text of one answer (the nw_process points into it). */
typedef struct pbufs {
    char host[NW_HOST_MAX], image[NW_IMAGE_MAX], parent_image[NW_IMAGE_MAX];
    char user[NW_USER_MAX], guid[NW_GUID_MAX], command_line[NW_CMDLINE_MAX];
} pbufs;

struct nw_proc_rd {
    sqlite3 *db;
    sqlite3_stmt *at;
    sqlite3_stmt *pair;         /* SQL_PROC_PAIR (the query memo)         */
    pbufs ans;                  /* nw_process_at's answer                */
    pbufs parent;               /* its parent lookup                     */
    pbufs conn;                 /* nw_query_connection's answer          */
    nw_process proc;            /* ... pointing into conn                */
};

void nw__proc_read_close(nw_store *s)
{
    struct nw_proc_rd *r = s->proc_rd;
    if (!r)
        return;
    sqlite3_finalize(r->at);
    sqlite3_finalize(r->pair);
    sqlite3_close(r->db);
    free(r);
    s->proc_rd = NULL;
}

/* Opens the read handle if processes.db exists.  *ready 1 if open. */
static nw_status rd_ready(nw_store *s, int *ready, nw_err *err)
{
    *ready = 0;
    if (s->proc_rd && s->proc_rd->db) {
        *ready = 1;
        return NW_OK;
    }
    char *path;
    nw_status pst = procdb_path(s, &path, err);
    if (pst != NW_OK || !path)
        return pst;   /* !path: no process event ingested yet */
    struct nw_proc_rd *r = s->proc_rd ? s->proc_rd : calloc(1, sizeof *r);
    if (!r) {
        free(path);
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    s->proc_rd = r;
    nw_status st = NW_OK;
    int imm = 0;
    nw_err oerr = {{0}};
    int rc = nw__open_read(path, &r->db, &imm, &oerr) == NW_OK ? SQLITE_OK : SQLITE_CANTOPEN;
    s->dir_ro |= imm;
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(r->db, SQL_PROC_AT, -1, &r->at, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(r->db, SQL_PROC_PAIR, -1, &r->pair, NULL);
        /* A file the writer created but has not given its schema yet. */
        if (rc != SQLITE_OK && strstr(sqlite3_errmsg(r->db), "no such table")) {
            sqlite3_finalize(r->at);
            r->at = NULL;
            sqlite3_close(r->db);
            r->db = NULL;
            free(path);
            return NW_OK;
        }
    }
    if (rc != SQLITE_OK) {
        st = r->db ? nw_fail(err, NW_ERR_SQL, "open %s: %s", path, sqlite3_errmsg(r->db))
                   : nw_fail(err, NW_ERR_SQL, "%s", oerr.msg);
        sqlite3_finalize(r->at);
        sqlite3_finalize(r->pair);
        r->at = r->pair = NULL;
        sqlite3_close(r->db);
        r->db = NULL;
    }
    free(path);
    if (st == NW_OK)
        *ready = 1;
    return st;
}

static const char *col_copy(sqlite3_stmt *st, int col, char *buf, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    if (!t)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n >= cap)
        n = cap - 1;   /* the writer stores at most the decoders' bounds */
    memcpy(buf, t, n);
    buf[n] = '\0';
    return buf;
}

/* The holder row at t, its text in *pb (no parent resolution). */
static nw_status lookup(struct nw_proc_rd *r, pbufs *pb, const char *host, uint32_t pid,
                        nw_time t, nw_process *out, int *found, nw_err *err)
{
    sqlite3_stmt *st = r->at;
    *found = 0;
    sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, pid);
    sqlite3_bind_int64(st, 3, t <= NW_TIME_MAX - NW_PROC_CLOCK_SKEW ? t + NW_PROC_CLOCK_SKEW : t);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        nw_time exit_time = sqlite3_column_type(st, 3) == SQLITE_NULL
                                ? NW_TIME_MAX
                                : sqlite3_column_int64(st, 3);
        if (exit_time >= t) {
            memset(out, 0, sizeof *out);
            out->host = col_copy(st, 0, pb->host, sizeof pb->host);
            out->pid = (uint32_t)sqlite3_column_int64(st, 1);
            out->create_time = sqlite3_column_int64(st, 2);
            out->exit_time = exit_time;
            out->has_parent = sqlite3_column_type(st, 4) != SQLITE_NULL;
            out->parent_pid = (uint32_t)sqlite3_column_int64(st, 4);
            out->has_session = sqlite3_column_type(st, 5) != SQLITE_NULL;
            out->session_id = (uint32_t)sqlite3_column_int64(st, 5);
            out->sequence = (uint64_t)sqlite3_column_int64(st, 6);
            out->image = col_copy(st, 7, pb->image, sizeof pb->image);
            out->parent_image = col_copy(st, 8, pb->parent_image, sizeof pb->parent_image);
            out->command_line = col_copy(st, 9, pb->command_line, sizeof pb->command_line);
            out->user = col_copy(st, 10, pb->user, sizeof pb->user);
            out->guid = col_copy(st, 11, pb->guid, sizeof pb->guid);
            *found = 1;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return nw__sql_fail(r->db, SQL_PROCDB_FILE, err);
    return NW_OK;
}

nw_status nw_process_at(nw_store *s, const char *host, uint32_t pid, nw_time t,
                        nw_process *out, int *found, nw_err *err)
{
    int ready = 0;
    *found = 0;
    nw_status st = rd_ready(s, &ready, err);
    if (st != NW_OK || !ready || !host)
        return st;
    struct nw_proc_rd *r = s->proc_rd;
    st = lookup(r, &r->ans, host, pid, t, out, found, err);
    if (st != NW_OK || !*found || out->parent_image || !out->has_parent)
        return st;
    /* No event named the parent's image: the process that held
     * parent_pid when the child was created, if known. */
    nw_process parent;
    int pfound = 0;
    st = lookup(r, &r->parent, out->host, out->parent_pid, out->create_time, &parent,
                &pfound, err);
    if (st == NW_OK && pfound && parent.image) {
        snprintf(r->ans.parent_image, sizeof r->ans.parent_image, "%s", parent.image);
        out->parent_image = r->ans.parent_image;
    }
    return st;
}

uint64_t nw_process_table_stamp(nw_store *s)
{
    static const char *const names[] = {SQL_PROCDB_FILE, SQL_PROCDB_FILE "-wal"};
    uint64_t h = 0;
    for (int i = 0; i < 2; i++) {
        char *path = nw__path(s->dir, names[i]);
        struct stat sb;
        if (path && stat(path, &sb) == 0) {
            uint64_t v[3] = {(uint64_t)sb.st_size, (uint64_t)sb.st_mtim.tv_sec,
                             (uint64_t)sb.st_mtim.tv_nsec};
            for (int k = 0; k < 3; k++)
                h = (h ^ v[k]) * 1099511628211ULL + (uint64_t)i;
        }
        free(path);
    }
    return h;
}

const char *nw_process_name(const char *image)
{
    if (!image)
        return NULL;
    const char *b = image;
    for (const char *p = image; *p; p++)
        if (*p == '\\' || *p == '/')
            b = p + 1;
    return b;
}

/* A path without its volume: "C:\x" and "\Device\HarddiskVolume4\x" both
 * give "\x". */
static const char *strip_volume(const char *p)
{
    static const char dev[] = "\\Device\\";
    if (strncasecmp(p, dev, sizeof dev - 1) == 0) {
        const char *q = strchr(p + sizeof dev - 1, '\\');
        return q ? q : p;
    }
    if (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':')
        return p + 2;
    return p;
}

int nw_process_matches(const char *image, const char *filter)
{
    if (!image || !filter || !filter[0])
        return 0;
    if (strchr(filter, '\\') || strchr(filter, '/')) {
        const char *a = strip_volume(image), *b = strip_volume(filter);
        if (strlen(a) != strlen(b))
            return 0;
        for (; *a; a++, b++) {
            char x = *a == '/' ? '\\' : *a, y = *b == '/' ? '\\' : *b;
            if (x != y && ((x | 0x20) != (y | 0x20) || !((x | 0x20) >= 'a' && (x | 0x20) <= 'z')))
                return 0;
        }
        return 1;
    }
    const char *name = nw_process_name(image);
    if (strcasecmp(name, filter) == 0)
        return 1;
    size_t fl = strlen(filter), nl = strlen(name);
    return nl == fl + 4 && strncasecmp(name, filter, fl) == 0 &&
           strcasecmp(name + fl, ".exe") == 0;
}

/* ---------------------------------------------------------- query memo */

/*
 * A query attributes every connection it yields; one SQL lookup each (two
 * with the parent) cost more than the scan itself.  So a query loads each
 * (host, pid) pair's holders once, oldest first, and answers its lookups
 * from memory by binary search -- the same rule as nw_process_at.  The memo
 * lives for one nw_query_connections call, and is emptied when it holds
 * more than MEMO_MAX_BYTES (never during one connection's lookups, whose
 * answer points into it).
 */
#define MEMO_SLOTS_MIN 1024
#define MEMO_MAX_BYTES (32u * 1024 * 1024)

typedef struct holder {
    nw_process p;              /* strings point into text            */
    char *text;
} holder;

typedef struct pair {
    char *host;                /* NULL: empty slot                    */
    uint32_t pid;
    holder *h;
    size_t n;
} pair;

typedef struct memo {
    pair *slot;
    size_t cap, used, bytes;
} memo;

static uint64_t pair_hash(const char *host, uint32_t pid)
{
    uint64_t h = 1469598103934665603ULL ^ pid;
    for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
        unsigned char c = *p >= 'A' && *p <= 'Z' ? (unsigned char)(*p | 0x20) : *p;
        h = (h ^ c) * 1099511628211ULL;
    }
    return h;
}

static void memo_clear(memo *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        pair *e = &m->slot[i];
        if (!e->host)
            continue;
        for (size_t k = 0; k < e->n; k++)
            free(e->h[k].text);
        free(e->h);
        free(e->host);
        e->host = NULL;
    }
    m->used = m->bytes = 0;
}

static void memo_free(memo *m)
{
    memo_clear(m);
    free(m->slot);
    memset(m, 0, sizeof *m);
}

/* Copies the text columns of a SQL_PROC_PAIR row into one block. */
static int holder_from_row(sqlite3_stmt *st, holder *h, size_t *bytes)
{
    static const int cols[] = {0, 7, 8, 9, 10, 11};
    size_t len[6], total = 0;
    for (int i = 0; i < 6; i++) {
        len[i] = sqlite3_column_type(st, cols[i]) == SQLITE_NULL
                     ? 0
                     : (size_t)sqlite3_column_bytes(st, cols[i]) + 1;
        total += len[i];
    }
    memset(h, 0, sizeof *h);
    h->text = malloc(total ? total : 1);
    if (!h->text)
        return -1;
    char *at = h->text;
    const char **dst[6] = {&h->p.host, &h->p.image, &h->p.parent_image, &h->p.command_line,
                           &h->p.user, &h->p.guid};
    for (int i = 0; i < 6; i++) {
        if (!len[i])
            continue;
        memcpy(at, sqlite3_column_text(st, cols[i]), len[i] - 1);
        at[len[i] - 1] = '\0';
        *dst[i] = at;
        at += len[i];
    }
    h->p.pid = (uint32_t)sqlite3_column_int64(st, 1);
    h->p.create_time = sqlite3_column_int64(st, 2);
    h->p.exit_time = sqlite3_column_type(st, 3) == SQLITE_NULL ? NW_TIME_MAX
                                                                : sqlite3_column_int64(st, 3);
    h->p.has_parent = sqlite3_column_type(st, 4) != SQLITE_NULL;
    h->p.parent_pid = (uint32_t)sqlite3_column_int64(st, 4);
    h->p.has_session = sqlite3_column_type(st, 5) != SQLITE_NULL;
    h->p.session_id = (uint32_t)sqlite3_column_int64(st, 5);
    h->p.sequence = (uint64_t)sqlite3_column_int64(st, 6);
    *bytes += total + sizeof *h;
    return 0;
}

/* The holders of (host, pid), loaded on first use.  NULL with *st set on
 * an error. */
static pair *memo_get(memo *m, struct nw_proc_rd *r, const char *host, uint32_t pid,
                      nw_status *st, nw_err *err)
{
    *st = NW_OK;
    if (m->used * 2 >= m->cap) {          /* grow: keep the load under 1/2 */
        size_t ncap = m->cap ? m->cap * 2 : MEMO_SLOTS_MIN;
        pair *ns = calloc(ncap, sizeof *ns);
        if (!ns) {
            *st = nw_fail(err, NW_ERR_NOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slot[i].host)
                continue;
            size_t j = pair_hash(m->slot[i].host, m->slot[i].pid) & (ncap - 1);
            while (ns[j].host)
                j = (j + 1) & (ncap - 1);
            ns[j] = m->slot[i];
        }
        free(m->slot);
        m->slot = ns;
        m->cap = ncap;
    }
    size_t j = pair_hash(host, pid) & (m->cap - 1);
    for (; m->slot[j].host; j = (j + 1) & (m->cap - 1))
        if (m->slot[j].pid == pid && strcasecmp(m->slot[j].host, host) == 0)
            return &m->slot[j];
    pair *e = &m->slot[j];
    sqlite3_stmt *q = r->pair;
    sqlite3_bind_text(q, 1, host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, pid);
    holder *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 2;
            holder *nv = realloc(v, nc * sizeof *nv);
            if (!nv)
                break;
            v = nv;
            cap = nc;
        }
        if (holder_from_row(q, &v[n], &m->bytes))
            break;
        n++;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    e->host = strdup(host);
    if (rc != SQLITE_DONE || !e->host) {
        for (size_t k = 0; k < n; k++)
            free(v[k].text);
        free(v);
        free(e->host);
        e->host = NULL;
        *st = rc == SQLITE_ROW || rc == SQLITE_DONE ? nw_fail(err, NW_ERR_NOMEM, "out of memory")
                                                    : nw__sql_fail(r->db, SQL_PROCDB_FILE, err);
        return NULL;
    }
    e->pid = pid;
    e->h = v;
    e->n = n;
    m->used++;
    return e;
}

/* The rule of nw_process_at over a pair's holders. */
static const holder *memo_pick(const pair *e, nw_time t)
{
    nw_time lim = t <= NW_TIME_MAX - NW_PROC_CLOCK_SKEW ? t + NW_PROC_CLOCK_SKEW : t;
    size_t lo = 0, hi = e->n;            /* first holder created after lim */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->h[mid].p.create_time <= lim)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const holder *h = &e->h[lo - 1];
    return h->p.exit_time >= t ? h : NULL;
}

/* nw_process_at from the memo: *out points into it. */
static nw_status memo_at(memo *m, struct nw_proc_rd *r, const char *host, uint32_t pid,
                         nw_time t, nw_process *out, int *found, nw_err *err)
{
    nw_status st;
    *found = 0;
    if (m->bytes > MEMO_MAX_BYTES)
        memo_clear(m);
    pair *e = memo_get(m, r, host, pid, &st, err);
    if (!e)
        return st;
    const holder *h = memo_pick(e, t);
    if (!h)
        return NW_OK;
    *out = h->p;
    *found = 1;
    if (out->parent_image || !out->has_parent)
        return NW_OK;
    /* The parent's own row, as nw_process_at resolves it. */
    pair *pe = memo_get(m, r, host, out->parent_pid, &st, err);
    if (!pe)
        return st;
    const holder *ph = memo_pick(pe, out->create_time);
    if (ph && ph->p.image)
        out->parent_image = ph->p.image;
    return NW_OK;
}

/* ---------------------------------------------------------- attribution */

typedef struct attr_ctx {
    nw_store *s;
    const nw_query *q;
    nw_conn_cb cb;
    void *ctx;
    int ready;
    int flow_post;               /* a flow filter is set (flow_match)       */
    int proc_post;               /* a process filter is set                 */
    int64_t emitted;
    int more;
    nw_status st;
    nw_err *err;
    memo m;
} attr_ctx;

/* Are the flow filters of q (community_id, exclude_loopback, scope) set? */
static int has_flow_filter(const nw_query *q)
{
    return q->community_id[0] || q->exclude_loopback || q->scope >= 0;
}

/* Does c pass q's flow filters?  The address class first: it is a few
 * comparisons, the Community ID a SHA-1. */
static int flow_match(const nw_query *q, const nw_conn *c)
{
    if (q->exclude_loopback || q->scope >= 0) {
        nw_addr_class rc = nw_addr_classify(&c->remote_ip);
        if ((q->exclude_loopback && rc == NW_ACLASS_LOOPBACK) ||
            (q->scope >= 0 && (int)rc != q->scope))
            return 0;
    }
    if (q->community_id[0]) {
        char id[NW_COMMUNITY_ID_STRLEN];
        if (nw_conn_community_id(c, 0, id, sizeof id) < 0 || strcmp(id, q->community_id) != 0)
            return 0;
    }
    return 1;
}

static int attr_cb(void *p, const nw_conn *c)
{
    attr_ctx *a = p;
    if (a->flow_post && !flow_match(a->q, c))
        return 0;
    nw_conn c2 = *c;
    nw_process proc;
    int found = 0;
    c2.process = NULL;
    if (a->ready) {
        a->st = memo_at(&a->m, a->s->proc_rd, c->host, c->pid, c->first_seen, &proc, &found,
                        a->err);
        if (a->st != NW_OK)
            return 1;
        if (found)
            c2.process = &proc;
    }
    if (a->proc_post &&
        (!found || (a->q->process && !nw_process_matches(proc.image, a->q->process)) ||
         (a->q->has_process_create && proc.create_time != a->q->process_create)))
        return 0;
    if (a->flow_post || a->proc_post) {
        if (a->q->limit > 0 && a->emitted >= a->q->limit) {
            a->more = 1;
            return 1;
        }
        a->emitted++;
    }
    return a->cb(a->ctx, &c2);
}

nw_status nw_query_connections(nw_store *s, const nw_query *q, nw_conn_cb cb, void *ctx,
                               int *more, nw_err *err)
{
    if (!q || !cb)
        return nw__query_connections_raw(s, q, cb, ctx, more, err);
    attr_ctx a = {s, q, cb, ctx, 0, 0, 0, 0, 0, NW_OK, err, {0}};
    nw_status st = rd_ready(s, &a.ready, err);
    if (st != NW_OK)
        return st;
    a.flow_post = has_flow_filter(q);
    a.proc_post = q->process || q->has_process_create;
    if (a.proc_post && !a.ready) {  /* no process known: nothing can match */
        if (more)
            *more = 0;
        return NW_OK;
    }
    int post = a.flow_post || a.proc_post;
    nw_query raw = *q;
    if (post)
        raw.limit = 0;     /* the filters come after the scan: limit here */
    /* One read transaction for all of the query's lookups: each lookup
     * would otherwise take and drop the WAL read lock on its own. */
    int txn = a.ready && sqlite3_exec(s->proc_rd->db, SQL_BEGIN, NULL, NULL, NULL) == SQLITE_OK;
    st = nw__query_connections_raw(s, &raw, attr_cb, &a, post ? NULL : more, err);
    if (txn)
        sqlite3_exec(s->proc_rd->db, SQL_COMMIT, NULL, NULL, NULL);
    memo_free(&a.m);
    if (st == NW_OK && a.st != NW_OK)
        st = a.st;
    if (post && more)
        *more = a.more;
    return st;
}

nw_status nw_query_connection(nw_store *s, int64_t id, nw_conn *out, nw_err *err)
{
    nw_status st = nw__query_connection_raw(s, id, out, err);
    if (st != NW_OK)
        return st;
    out->process = NULL;
    int found = 0;
    nw_process p;
    st = nw_process_at(s, out->host, out->pid, out->first_seen, &p, &found, err);
    if (st != NW_OK || !found)
        return st;
    struct nw_proc_rd *r = s->proc_rd;
    r->proc = p;
#define KEEP(f)                                                               \
    r->proc.f = p.f ? (snprintf(r->conn.f, sizeof r->conn.f, "%s", p.f), r->conn.f) : NULL
    KEEP(host);
    KEEP(image);
    KEEP(parent_image);
    KEEP(user);
    KEEP(guid);
    KEEP(command_line);
#undef KEEP
    out->process = &r->proc;
    return NW_OK;
}
