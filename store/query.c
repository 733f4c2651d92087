/*
 * query.c -- the query engine (see query.h).
 *
 * A query reads the catalog, keeps the partitions whose spans can hold a
 * match, and runs one parameterised statement per partition.  The text of
 * that statement is assembled from the fixed fragments of sql.h according to
 * which filters are set (a bit mask), so each filter combination is one
 * text, prepared once per read handle and cached; user values are only
 * ever bound.
 *
 * Connections come back in (first_seen, id) order across partitions.  A
 * connection lives in the partition of its anchor, so partitions' first_seen
 * ranges barely overlap (a late event can pull a first_seen back a little);
 * candidates are sorted by min_first_seen and cut into groups whose ranges
 * overlap, each group is merged k ways, and groups follow one another.
 *
 * Read handles are cached in the nw_store (opened read-only; WAL lets them
 * see what a writer process committed without blocking it).  Statements are
 * always reset after use, so no read transaction outlives a query.
 */
#include "netwho/query.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "sql.h"
#include "store_int.h"

/* Bytes of a partition file a read handle maps (SQL_PRAGMA_MMAP_FMT):
 * address space only, and more than a day's partition holds at 10M events
 * (~190 MB); pages past it are read as usual. */
#define NW_READ_MMAP_BYTES (1LL << 30)

/* Longest statement text: every fragment of sql.h at once, with margin. */
#define NW_QUERY_SQL_MAX 4096

/* Filters present in a query: bit i selects the fragment of parameter i. */
enum {
    QM_IP = 1u << 0, QM_PORT = 1u << 1, QM_LPORT = 1u << 2, QM_RPORT = 1u << 3,
    QM_PID = 1u << 4, QM_HOST = 1u << 5, QM_PROTO = 1u << 6, QM_DIR = 1u << 7,
    QM_STATE = 1u << 8, QM_TO = 1u << 9, QM_FROM = 1u << 10, QM_CURSOR = 1u << 11
};

/* Statement kinds besides NW_QK_CONNECTIONS / NW_QK_WHO (store_int.h). */
enum { QK_BY_ID = 3, QK_XFERS = 4, QK_FAILS = 5, QK_FAILS_HOST = 6, QK_XFERS_AFTER = 7,
       QK_TOP_RIP = 8, QK_TOP_RPORT = 9, QK_TOP_PID = 10, QK_TOP_HOST = 11 };

#define STMT_KEY(kind, mask) (((unsigned)(kind) << 16) | (mask))

/* Filters the who roll-up can answer: ip, pid and host are its key; a time
 * window only if it covers the partition (then every connection of the
 * partition is in it, see who_covers).  Any other filter scans. */
#define QM_ROLLUP_KEY (QM_IP | QM_PID | QM_HOST | QM_CURSOR)
#define QM_ROLLUP_OK (QM_ROLLUP_KEY | QM_TO | QM_FROM)
/* Roll-up text for one address (ip_lo == ip_hi), not a range. */
#define QM_ROLLUP_ONE_IP (1u << 15)

/* ------------------------------------------------------------ statements */

static unsigned query_mask(int kind, const nw_query *q)
{
    unsigned m = 0;
    if (q->has_ip)
        m |= QM_IP;
    if (q->port >= 0)
        m |= QM_PORT;
    if (q->local_port >= 0)
        m |= QM_LPORT;
    if (q->remote_port >= 0)
        m |= QM_RPORT;
    if (q->pid >= 0)
        m |= QM_PID;
    if (q->host)
        m |= QM_HOST;
    if (q->proto != 0)
        m |= QM_PROTO;
    if (q->direction >= 0)
        m |= QM_DIR;
    if (q->state >= 0)
        m |= QM_STATE;
    if (q->to != NW_TIME_MAX)
        m |= QM_TO;
    if (q->from != NW_TIME_MIN)
        m |= QM_FROM;
    if (kind == NW_QK_CONNECTIONS && q->has_cursor)
        m |= QM_CURSOR;
    if (kind == NW_QK_WHO && q->has_who_cursor)
        m |= QM_CURSOR;          /* the who cursor: SQL_F_WHO_CURSOR */
    return m;
}

/* Appends s to buf[*len..cap); -1 if it does not fit. */
static int append(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > cap)
        return -1;
    memcpy(buf + *len, s, n + 1);
    *len += n;
    return 0;
}

/*
 * The who roll-up's text.  For one address the rows of the partition are
 * already one per (host, pid), so they come back as stored, in key order
 * (who_fold merges partitions): SQLite's aggregates cost twice the lookup.
 * A range is grouped like the scan, which bounds the rows a query holds.
 */
static int build_rollup_sql(unsigned mask, char *buf, size_t cap)
{
    size_t len = 0;
    int one = (mask & QM_ROLLUP_ONE_IP) != 0;
    int rc = append(buf, cap, &len, one ? SQL_Q_WHO_ROLLUP_ONE_HEAD : SQL_Q_WHO_ROLLUP_HEAD);
    if (mask & QM_IP)
        rc |= append(buf, cap, &len, one ? SQL_F_IP_REMOTE_ONE : SQL_F_IP_REMOTE);
    if (mask & QM_PID)
        rc |= append(buf, cap, &len, SQL_F_PID);
    if (mask & QM_HOST)
        rc |= append(buf, cap, &len, SQL_F_HOST);
    if (mask & QM_CURSOR)
        rc |= append(buf, cap, &len, SQL_F_WHO_CURSOR);
    rc |= append(buf, cap, &len, one ? SQL_Q_WHO_ONE_TAIL : SQL_Q_WHO_TAIL);
    return rc ? -1 : 0;
}

/* The roll-up's filter mask for q (whose mask is m). */
static unsigned rollup_mask(const nw_query *q, unsigned m)
{
    m &= QM_ROLLUP_KEY;
    if ((m & QM_IP) && nw_addr_cmp(&q->ip_lo, &q->ip_hi) == 0)
        m |= QM_ROLLUP_ONE_IP;
    return m;
}

/* The text of a statement key. */
static int build_sql(unsigned key, char *buf, size_t cap)
{
    int kind = (int)(key >> 16);
    unsigned mask = key & 0xffffu;
    size_t len = 0;
    switch (kind) {
    case QK_BY_ID: return append(buf, cap, &len, SQL_Q_CONN_BY_ID);
    case QK_XFERS: return append(buf, cap, &len, SQL_Q_XFERS);
    case QK_FAILS: return append(buf, cap, &len, SQL_Q_FAILS);
    case QK_FAILS_HOST: return append(buf, cap, &len, SQL_Q_FAILS_HOST);
    case QK_XFERS_AFTER: return append(buf, cap, &len, SQL_Q_XFERS_AFTER);
    case QK_TOP_RIP: return append(buf, cap, &len, SQL_Q_TOP_RIP);
    case QK_TOP_RPORT: return append(buf, cap, &len, SQL_Q_TOP_RPORT);
    case QK_TOP_PID: return append(buf, cap, &len, SQL_Q_TOP_PID);
    case QK_TOP_HOST: return append(buf, cap, &len, SQL_Q_TOP_HOST);
    case NW_QK_CONNECTIONS:
    case NW_QK_WHO: break;
    case NW_QK_WHO_ROLLUP: return build_rollup_sql(mask, buf, cap);
    default: return -1;
    }
    static const struct { unsigned bit; const char *sql; } frags[] = {
        {QM_PORT, SQL_F_PORT},   {QM_LPORT, SQL_F_LPORT}, {QM_RPORT, SQL_F_RPORT},
        {QM_PID, SQL_F_PID},     {QM_HOST, SQL_F_HOST},   {QM_PROTO, SQL_F_PROTO},
        {QM_DIR, SQL_F_DIR},     {QM_STATE, SQL_F_STATE}, {QM_TO, SQL_F_TO},
        {QM_FROM, SQL_F_FROM},   {QM_CURSOR, SQL_F_CURSOR},
    };
    int who = kind == NW_QK_WHO;
    /* Time only, with a from: the page's ids from conn_last_first first. */
    int late = !who && (mask & QM_FROM) && !(mask & ~(QM_FROM | QM_TO | QM_CURSOR));
    int rc = append(buf, cap, &len,
                    who ? SQL_Q_WHO_HEAD : late ? SQL_Q_CONN_LATE_HEAD : SQL_Q_CONN_HEAD);
    if (mask & QM_IP)
        rc |= append(buf, cap, &len, who ? SQL_F_IP_REMOTE : SQL_F_IP_EITHER);
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++)
        if (mask & frags[i].bit)
            rc |= append(buf, cap, &len,
                         who && frags[i].bit == QM_CURSOR ? SQL_F_WHO_CURSOR : frags[i].sql);
    rc |= append(buf, cap, &len, who ? SQL_Q_WHO_TAIL : SQL_Q_CONN_TAIL);
    if (late)
        rc |= append(buf, cap, &len, SQL_Q_CONN_LATE_TAIL);
    return rc ? -1 : 0;
}

int nw__query_sql(int kind, const nw_query *q, char *buf, size_t cap)
{
    if (kind == NW_QK_WHO_ROLLUP) {
        unsigned m = query_mask(NW_QK_WHO, q);
        if (m & ~QM_ROLLUP_OK)
            return -1;
        return build_sql(STMT_KEY(kind, rollup_mask(q, m)), buf, cap);
    }
    if (kind != NW_QK_CONNECTIONS && kind != NW_QK_WHO)
        return -1;
    return build_sql(STMT_KEY(kind, query_mask(kind, q)), buf, cap);
}

/* Binds the parameters of the fragments in mask. */
static void bind_query(sqlite3_stmt *st, unsigned mask, const nw_query *q)
{
    if (mask & QM_IP) {
        sqlite3_bind_blob(st, SQLP_IP_LO, q->ip_lo.b, 16, SQLITE_STATIC);
        sqlite3_bind_blob(st, SQLP_IP_HI, q->ip_hi.b, 16, SQLITE_STATIC);
    }
    if (mask & QM_PORT)
        sqlite3_bind_int(st, SQLP_PORT, q->port);
    if (mask & QM_LPORT)
        sqlite3_bind_int(st, SQLP_LPORT, q->local_port);
    if (mask & QM_RPORT)
        sqlite3_bind_int(st, SQLP_RPORT, q->remote_port);
    if (mask & QM_PID)
        sqlite3_bind_int64(st, SQLP_PID, q->pid);
    if (mask & QM_HOST)
        sqlite3_bind_text(st, SQLP_HOST, q->host, -1, SQLITE_STATIC);
    if (mask & QM_PROTO)
        sqlite3_bind_int(st, SQLP_PROTO, q->proto);
    if (mask & QM_DIR)
        sqlite3_bind_int(st, SQLP_DIR, q->direction);
    if (mask & QM_STATE)
        sqlite3_bind_int(st, SQLP_STATE, q->state);
    if (mask & QM_TO)
        sqlite3_bind_int64(st, SQLP_TO, q->to);
    if (mask & QM_FROM)
        sqlite3_bind_int64(st, SQLP_FROM, q->from);
    if ((mask & QM_CURSOR) && q->has_cursor) {
        sqlite3_bind_int64(st, SQLP_CUR_FS, q->cursor_first_seen);
        sqlite3_bind_int64(st, SQLP_CUR_ID, q->cursor_id);
    }
}

/* Binds the who cursor (QM_CURSOR in a who text) and the rows asked of
 * each partition (-1: all). */
static void bind_who(sqlite3_stmt *st, unsigned mask, const nw_query *q, int64_t row_limit)
{
    if (mask & QM_CURSOR) {
        const char *h = q->who_cursor_host ? q->who_cursor_host : "";
        sqlite3_bind_text(st, SQLP_WHO_CUR_HOST, h, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, SQLP_WHO_CUR_PID, q->who_cursor_pid);
    }
    sqlite3_bind_int64(st, SQLP_LIMIT, row_limit);
}

/* ---------------------------------------------------------- read handles */

static void rd_close(nw_rd_handle *h)
{
    for (int i = 0; i < NW_READ_STMTS; i++)
        sqlite3_finalize(h->stmts[i].st);
    sqlite3_close(h->db);
    free(h);
}

/* Removes s->rd[i] (unpinned) and closes it. */
static void rd_drop(nw_store *s, size_t i)
{
    rd_close(s->rd[i]);
    s->rd[i] = s->rd[--s->nrd];
}

void nw__store_close_read_handles(nw_store *s)
{
    while (s->nrd > 0)
        rd_drop(s, s->nrd - 1);
}

/* Keeps at most NW_STORE_READ_HANDLES unpinned handles, dropping the least
 * recently used. */
static void rd_trim(nw_store *s)
{
    while (s->nrd > NW_STORE_READ_HANDLES) {
        size_t victim = s->nrd;
        for (size_t i = 0; i < s->nrd; i++)
            if (s->rd[i]->pins == 0 &&
                (victim == s->nrd || s->rd[i]->used < s->rd[victim]->used))
                victim = i;
        if (victim == s->nrd)
            return;
        rd_drop(s, victim);
    }
}

/*
 * A pinned read handle on partition name, or *out = NULL if its file is
 * gone (retention removed it after we read the catalog).  A cached handle
 * whose file was replaced (dropped, then recreated by late data) is
 * reopened: it would still read the unlinked file.
 */
static nw_status rd_acquire(nw_store *s, const char *name, nw_rd_handle **out,
                            nw_err *err)
{
    *out = NULL;
    char *path = nw__path(s->dir, name);
    if (!path)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    free(path);
    for (size_t i = 0; i < s->nrd; i++) {
        nw_rd_handle *h = s->rd[i];
        if (strcmp(h->name, name) != 0)
            continue;
        if (exists && (h->pins > 0 || (h->dev == (uint64_t)sb.st_dev &&
                                       h->ino == (uint64_t)sb.st_ino))) {
            h->pins++;
            h->used = ++s->rd_tick;
            *out = h;
            return NW_OK;
        }
        if (h->pins == 0)
            rd_drop(s, i);
        break;
    }
    if (!exists)
        return NW_OK;
    if (s->nrd == s->caprd) {
        size_t ncap = s->caprd ? s->caprd * 2 : NW_STORE_READ_HANDLES;
        nw_rd_handle **nv = realloc(s->rd, ncap * sizeof *nv);
        if (!nv)
            return nw_fail(err, NW_ERR_NOMEM, "out of memory");
        s->rd = nv;
        s->caprd = ncap;
    }
    nw_rd_handle *h = calloc(1, sizeof *h);
    if (!h)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    nw_status st = nw__open_partition(s->dir, name, 0, &h->db, NULL, &h->version, err);
    if (st != NW_OK) {
        free(h);
        return st;
    }
    s->partition_opens++;
    if (access(s->dir, W_OK) != 0)
        s->dir_ro = 1;           /* the handle may be immutable=1 */
    char pragma[64];
    snprintf(pragma, sizeof pragma, SQL_PRAGMA_MMAP_FMT, NW_READ_MMAP_BYTES);
    sqlite3_exec(h->db, pragma, NULL, NULL, NULL);   /* an optimisation only */
    snprintf(h->name, sizeof h->name, "%s", name);
    h->dev = (uint64_t)sb.st_dev;
    h->ino = (uint64_t)sb.st_ino;
    h->pins = 1;
    h->used = ++s->rd_tick;
    s->rd[s->nrd++] = h;
    *out = h;
    return NW_OK;
}

static void rd_release(nw_rd_handle *h)
{
    if (h)
        h->pins--;
}

/*
 * The statement for key on h: the cached one, or, if that one is being
 * stepped by an outer query (a callback querying again), a temporary one
 * (*temp = 1, the caller finalizes it).  Caller resets after use.
 */
static nw_status rd_stmt(nw_rd_handle *h, unsigned key, sqlite3_stmt **out, int *temp,
                         nw_err *err)
{
    *temp = 0;
    nw_rd_stmt *slot = NULL;
    for (int i = 0; i < NW_READ_STMTS; i++) {
        nw_rd_stmt *c = &h->stmts[i];
        if (c->st && c->key == key) {
            if (sqlite3_stmt_busy(c->st)) {
                *temp = 1;
                break;
            }
            c->used = ++h->used;
            *out = c->st;
            return NW_OK;
        }
        if (!slot || (slot->st && (!c->st || c->used < slot->used)))
            slot = c;
    }
    char sql[NW_QUERY_SQL_MAX];
    if (build_sql(key, sql, sizeof sql) != 0)
        return nw_fail(err, NW_ERR_INVALID, "query text too long");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(h->db, sql, -1, *temp ? 0 : SQLITE_PREPARE_PERSISTENT, &st,
                           NULL) != SQLITE_OK)
        return nw__sql_fail(h->db, h->name, err);
    if (!*temp) {
        if (slot->st && sqlite3_stmt_busy(slot->st)) {
            *temp = 1;       /* every slot busy: do not evict one in use */
        } else {
            sqlite3_finalize(slot->st);
            slot->st = st;
            slot->key = key;
            slot->used = ++h->used;
        }
    }
    *out = st;
    return NW_OK;
}

static void stmt_done(sqlite3_stmt *st, int temp)
{
    if (temp)
        sqlite3_finalize(st);
    else if (st)
        sqlite3_reset(st);
}

/* ------------------------------------------------------------- queries */

void nw_query_init(nw_query *q)
{
    memset(q, 0, sizeof *q);
    q->port = q->local_port = q->remote_port = -1;
    q->pid = -1;
    q->direction = -1;
    q->state = -1;
    q->scope = -1;
    q->from = NW_TIME_MIN;
    q->to = NW_TIME_MAX;
}

/* The partitions that can hold a connection matching q's time window (and
 * cursor): began before to, still seen at from.  Caller frees *out. */
static nw_status conn_candidates(nw_store *s, const nw_query *q, int use_cursor,
                                 nw_cat_row **out, size_t *n, nw_err *err)
{
    nw_cat_row *rows = NULL;
    size_t cnt = 0, keep = 0;
    nw_status st = nw__catalog_rows(s, &rows, &cnt, err);
    if (st != NW_OK)
        return st;
    for (size_t i = 0; i < cnt; i++) {
        const nw_partition_info *p = &rows[i].info;
        if (p->connections == 0 || p->min_first_seen >= q->to ||
            p->max_last_seen < q->from)
            continue;
        if (use_cursor && q->has_cursor && p->max_first_seen < q->cursor_first_seen)
            continue;
        rows[keep++] = rows[i];
    }
    *out = rows;
    *n = keep;
    return NW_OK;
}

static int by_min_first_seen(const void *a, const void *b)
{
    const nw_cat_row *x = a, *y = b;
    if (x->info.min_first_seen != y->info.min_first_seen)
        return x->info.min_first_seen < y->info.min_first_seen ? -1 : 1;
    return x->info.start < y->info.start ? -1 : x->info.start > y->info.start;
}

static nw_status check_query(const nw_query *q, nw_err *err)
{
    if (!q)
        return nw_fail(err, NW_ERR_INVALID, "no query");
    if (q->limit < 0)
        return nw_fail(err, NW_ERR_INVALID, "limit must be >= 0");
    if (q->has_ip && nw_addr_cmp(&q->ip_lo, &q->ip_hi) > 0)
        return nw_fail(err, NW_ERR_INVALID, "address range is empty (lo > hi)");
    return NW_OK;
}

/* One partition's stream in a k-way merge. */
typedef struct merge_src {
    nw_rd_handle *h;
    sqlite3_stmt *st;
    int temp;
    int has;               /* a row is waiting                            */
    nw_time first_seen;
    int64_t id;
} merge_src;

static nw_status src_step(merge_src *m, nw_err *err)
{
    int rc = sqlite3_step(m->st);
    m->has = rc == SQLITE_ROW;
    if (m->has) {
        m->first_seen = sqlite3_column_int64(m->st, NW_COL_FIRST);
        m->id = sqlite3_column_int64(m->st, NW_COL_ID);
    } else if (rc != SQLITE_DONE) {
        return nw__sql_fail(m->h->db, m->h->name, err);
    }
    return NW_OK;
}

static void srcs_close(merge_src *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        stmt_done(m[i].st, m[i].temp);
        rd_release(m[i].h);
    }
}

/* Opens and primes one statement per partition of a group. */
static nw_status srcs_open(nw_store *s, const nw_cat_row *rows, size_t n, const nw_query *q,
                           unsigned mask, int64_t row_limit, merge_src *m, size_t *opened,
                           nw_err *err)
{
    *opened = 0;
    for (size_t i = 0; i < n; i++) {
        merge_src *src = &m[*opened];
        memset(src, 0, sizeof *src);
        nw_status st = rd_acquire(s, rows[i].info.name, &src->h, err);
        if (st != NW_OK)
            return st;
        if (!src->h)
            continue;
        (*opened)++;
        st = rd_stmt(src->h, STMT_KEY(NW_QK_CONNECTIONS, mask), &src->st, &src->temp, err);
        if (st != NW_OK)
            return st;
        bind_query(src->st, mask, q);
        sqlite3_bind_int64(src->st, SQLP_LIMIT, row_limit);
        sqlite3_bind_int64(src->st, SQLP_PART_FS_LO, rows[i].info.min_first_seen);
        sqlite3_bind_int64(src->st, SQLP_PART_FS_HI, rows[i].info.max_first_seen);
        st = src_step(src, err);
        if (st != NW_OK)
            return st;
    }
    return NW_OK;
}

/* Merges one group; *emitted counts across groups; *stop once done. */
static nw_status merge_group(merge_src *m, size_t n, const nw_query *q, nw_conn_cb cb,
                             void *ctx, int64_t *emitted, int *more, int *stop,
                             nw_err *err)
{
    for (;;) {
        merge_src *best = NULL;
        for (size_t i = 0; i < n; i++)
            if (m[i].has && (!best || m[i].first_seen < best->first_seen ||
                             (m[i].first_seen == best->first_seen && m[i].id < best->id)))
                best = &m[i];
        if (!best)
            return NW_OK;
        if (q->limit > 0 && *emitted >= q->limit) {
            *more = 1;
            *stop = 1;
            return NW_OK;
        }
        nw_conn c;
        nw__conn_from_row(best->st, &c);
        (*emitted)++;
        if (cb(ctx, &c) != 0) {
            *stop = 1;
            return NW_OK;
        }
        nw_status st = src_step(best, err);
        if (st != NW_OK)
            return st;
    }
}

nw_status nw__query_connections_raw(nw_store *s, const nw_query *q, nw_conn_cb cb,
                                    void *ctx, int *more, nw_err *err)
{
    int more_local = 0;
    if (!more)
        more = &more_local;
    *more = 0;
    nw_status st = check_query(q, err);
    if (st != NW_OK)
        return st;
    if (!cb)
        return nw_fail(err, NW_ERR_INVALID, "no callback");
    nw_cat_row *rows = NULL;
    size_t n = 0;
    st = conn_candidates(s, q, 1, &rows, &n, err);
    if (st != NW_OK)
        return st;
    if (n > 1)      /* qsort(NULL, 0, ...) is undefined: an empty store */
        qsort(rows, n, sizeof *rows, by_min_first_seen);

    unsigned mask = query_mask(NW_QK_CONNECTIONS, q);
    merge_src *m = malloc((n ? n : 1) * sizeof *m);
    if (!m) {
        free(rows);
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    int64_t emitted = 0;
    int stop = 0;
    for (size_t i = 0; i < n && !stop && st == NW_OK;) {
        /* A group: partitions whose first_seen ranges chain-overlap. */
        size_t j = i + 1;
        nw_time hi = rows[i].info.max_first_seen;
        while (j < n && rows[j].info.min_first_seen <= hi) {
            if (rows[j].info.max_first_seen > hi)
                hi = rows[j].info.max_first_seen;
            j++;
        }
        /* One row past the limit tells *more. */
        int64_t row_limit = q->limit > 0 ? q->limit - emitted + 1 : -1;
        size_t opened = 0;
        st = srcs_open(s, rows + i, j - i, q, mask, row_limit, m, &opened, err);
        if (st == NW_OK)
            st = merge_group(m, opened, q, cb, ctx, &emitted, more, &stop, err);
        srcs_close(m, opened);
        i = j;
    }
    free(m);
    free(rows);
    rd_trim(s);
    return st;
}

nw_status nw__query_connection_raw(nw_store *s, int64_t id, nw_conn *out, nw_err *err)
{
    if (!out)
        return nw_fail(err, NW_ERR_INVALID, "no output");
    nw_cat_row *rows = NULL;
    size_t n = 0;
    nw_status st = nw__catalog_rows(s, &rows, &n, err);
    if (st != NW_OK)
        return st;
    int found = 0;
    /* Newest first: recent connections are the ones looked up most. */
    for (size_t i = n; i-- > 0 && !found && st == NW_OK;) {
        const nw_cat_row *r = &rows[i];
        if (r->info.connections == 0 || id < r->min_conn_id || id > r->max_conn_id)
            continue;
        nw_rd_handle *h = NULL;
        sqlite3_stmt *q = NULL;
        int temp = 0;
        st = rd_acquire(s, r->info.name, &h, err);
        if (st == NW_OK && h)
            st = rd_stmt(h, STMT_KEY(QK_BY_ID, 0), &q, &temp, err);
        if (st == NW_OK && h) {
            sqlite3_bind_int64(q, 1, id);
            int rc = sqlite3_step(q);
            if (rc == SQLITE_ROW) {
                nw__conn_from_row(q, out);
                snprintf(s->conn_host, sizeof s->conn_host, "%s", out->host);
                out->host = s->conn_host;
                found = 1;
            } else if (rc != SQLITE_DONE) {
                st = nw__sql_fail(h->db, h->name, err);
            }
        }
        if (q)
            stmt_done(q, temp);
        rd_release(h);
    }
    free(rows);
    rd_trim(s);
    if (st == NW_OK && !found)
        st = nw_fail(err, NW_ERR_INVALID, "no connection %lld", (long long)id);
    return st;
}

/* ------------------------------------------------------------------ who */

/* Makes room for element n of an array of *cap elements of size elem,
 * doubling from 64.  0, or -1 when out of memory (the array is unchanged). */
static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return -1;
    *v = nv;
    *cap = ncap;
    return 0;
}

typedef struct who_vec {
    nw_who_row *v;
    size_t n, cap;
} who_vec;

static nw_status who_push(who_vec *w, sqlite3_stmt *st, nw_err *err)
{
    if (grow((void **)&w->v, &w->cap, w->n, sizeof *w->v))
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    nw_who_row *r = &w->v[w->n++];
    const unsigned char *host = sqlite3_column_text(st, 0);
    size_t hl = host ? (size_t)sqlite3_column_bytes(st, 0) : 0;
    if (hl >= sizeof r->host)
        hl = sizeof r->host - 1;
    if (hl)
        memcpy(r->host, host, hl);
    r->host[hl] = '\0';
    r->pid = (uint32_t)sqlite3_column_int64(st, 1);
    r->connections = (uint64_t)sqlite3_column_int64(st, 2);
    r->bytes_sent = (uint64_t)sqlite3_column_int64(st, 3);
    r->bytes_received = (uint64_t)sqlite3_column_int64(st, 4);
    r->first_seen = sqlite3_column_int64(st, 5);
    r->last_seen = sqlite3_column_int64(st, 6);
    return NW_OK;
}

static int by_host_pid(const void *a, const void *b)
{
    const nw_who_row *x = a, *y = b;
    int c = strcmp(x->host, y->host);
    if (c)
        return c;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int by_bytes_desc(const void *a, const void *b)
{
    const nw_who_row *x = a, *y = b;
    uint64_t tx = x->bytes_sent + x->bytes_received, ty = y->bytes_sent + y->bytes_received;
    if (tx != ty)
        return tx > ty ? -1 : 1;
    return by_host_pid(a, b);
}

/* Folds the per-partition groups of the same (host, pid) into one row. */
static size_t who_fold(nw_who_row *v, size_t n)
{
    if (n == 0)
        return 0;
    /* One partition's rows come sorted (SQL_Q_WHO_TAIL's order). */
    size_t k = 1;
    while (k < n && by_host_pid(&v[k - 1], &v[k]) < 0)
        k++;
    if (k < n)
        qsort(v, n, sizeof *v, by_host_pid);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        nw_who_row *a = &v[out];
        if (by_host_pid(a, &v[i]) == 0) {
            a->connections += v[i].connections;
            a->bytes_sent += v[i].bytes_sent;
            a->bytes_received += v[i].bytes_received;
            if (v[i].first_seen < a->first_seen)
                a->first_seen = v[i].first_seen;
            if (v[i].last_seen > a->last_seen)
                a->last_seen = v[i].last_seen;
        } else {
            v[++out] = v[i];
        }
    }
    return out + 1;
}

/*
 * Whether partition r may be answered from its roll-up: q filters by
 * nothing but ip, host and pid, and its window covers the partition's span
 * [start, end).  Then every connection of r is active in the window, so the
 * roll-up's groups are exactly the scan's: a connection is anchored in
 * [start, end), its anchor is its first_seen when first written, and after
 * that first_seen only moves earlier and last_seen only later, so
 * first_seen <= anchor < end <= to and last_seen >= anchor >= start >= from.
 * A partition the window cuts, or any other filter, is scanned.
 */
static int who_covers(const nw_cat_row *r, const nw_query *q, unsigned mask)
{
    return !(mask & ~QM_ROLLUP_OK) && q->from <= r->info.start && q->to >= r->info.end;
}

/* Whether h's file has the roll-up (version 2).  A version-1 handle asks
 * again: the writer upgrades a file when it opens it, and a reader such as
 * netwhod keeps its handles for long. */
static int rd_has_rollup(nw_rd_handle *h)
{
    if (h->version >= NW_SCHEMA_ROLLUP_VERSION)
        return 1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h->db, SQL_PRAGMA_USER_VERSION_GET, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        h->version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return h->version >= NW_SCHEMA_ROLLUP_VERSION;
}

static nw_status who_partition(nw_store *s, const nw_cat_row *r, const nw_query *q,
                               unsigned mask, int64_t row_limit, who_vec *acc, nw_err *err)
{
    nw_rd_handle *h = NULL;
    sqlite3_stmt *st = NULL;
    int temp = 0;
    nw_status res = rd_acquire(s, r->info.name, &h, err);
    if (res != NW_OK || !h)
        return res;
    unsigned key = STMT_KEY(NW_QK_WHO, mask);
    if (!s->who_no_rollup && who_covers(r, q, mask) && rd_has_rollup(h)) {
        key = STMT_KEY(NW_QK_WHO_ROLLUP, rollup_mask(q, mask));
        s->who_rollup_parts++;
    } else {
        s->who_scan_parts++;
    }
    res = rd_stmt(h, key, &st, &temp, err);
    if (res == NW_OK) {
        bind_query(st, mask, q);
        bind_who(st, mask, q, row_limit);
        int rc;
        while (res == NW_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
            res = who_push(acc, st, err);
        if (res == NW_OK && rc != SQLITE_DONE)
            res = nw__sql_fail(h->db, h->name, err);
        stmt_done(st, temp);
    }
    rd_release(h);
    return res;
}

/*
 * Gathers the groups of every candidate partition into one vector, folded
 * (one row per host, pid) and sorted by (host, pid).  row_limit: groups
 * asked of each partition, in key order after the who cursor (-1: all).
 *
 * A page of n rows asks each partition for n + 1: a (host, pid) among the
 * first n overall is among the first n of every partition that has it, so
 * all its parts are gathered, and more than n distinct keys gathered means
 * that more rows follow.
 */
static nw_status who_gather(nw_store *s, const nw_query *q, int64_t row_limit,
                            who_vec *acc, size_t *cnt, nw_err *err)
{
    nw_status st = check_query(q, err);
    if (st != NW_OK)
        return st;
    if (!q->has_ip)
        return nw_fail(err, NW_ERR_INVALID, "who needs an address or CIDR block");
    nw_cat_row *cands = NULL;
    size_t nc = 0;
    st = conn_candidates(s, q, 0, &cands, &nc, err);
    if (st != NW_OK)
        return st;
    unsigned mask = query_mask(NW_QK_WHO, q);
    for (size_t i = 0; i < nc && st == NW_OK; i++)
        st = who_partition(s, &cands[i], q, mask, row_limit, acc, err);
    free(cands);
    rd_trim(s);
    if (st != NW_OK) {
        free(acc->v);
        acc->v = NULL;
        return st;
    }
    *cnt = who_fold(acc->v, acc->n);
    return NW_OK;
}

/* Hands acc's first cnt rows to the caller (an allocation even when empty:
 * callers free() what they get). */
static nw_status who_out(who_vec *acc, size_t cnt, nw_who_row **rows, size_t *n, nw_err *err)
{
    if (cnt == 0) {
        free(acc->v);
        acc->v = malloc(sizeof *acc->v);
        if (!acc->v)
            return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    *rows = acc->v;
    *n = cnt;
    return NW_OK;
}

nw_status nw_query_who(nw_store *s, const nw_query *q, nw_who_row **rows, size_t *n,
                       nw_err *err)
{
    who_vec acc = {0};
    size_t cnt = 0;
    nw_query all;
    if (q) {
        all = *q;
        all.has_who_cursor = 0;   /* ranked by bytes: no keyset to resume from */
        q = &all;
    }
    nw_status st = who_gather(s, q, -1, &acc, &cnt, err);
    if (st != NW_OK)
        return st;
    if (cnt > 1)
        qsort(acc.v, cnt, sizeof *acc.v, by_bytes_desc);
    if (q->limit > 0 && (uint64_t)cnt > (uint64_t)q->limit)
        cnt = (size_t)q->limit;
    return who_out(&acc, cnt, rows, n, err);
}

nw_status nw_query_who_page(nw_store *s, const nw_query *q, nw_who_row **rows, size_t *n,
                            int *more, nw_err *err)
{
    int more_local = 0;
    if (!more)
        more = &more_local;
    *more = 0;
    who_vec acc = {0};
    size_t cnt = 0;
    int64_t row_limit = q && q->limit > 0 ? q->limit + 1 : -1;
    nw_status st = who_gather(s, q, row_limit, &acc, &cnt, err);
    if (st != NW_OK)
        return st;
    if (q->limit > 0 && (uint64_t)cnt > (uint64_t)q->limit) {
        cnt = (size_t)q->limit;
        *more = 1;
    }
    return who_out(&acc, cnt, rows, n, err);
}

/* ------------------------------------------------- transfers, failures */

/* Runs the statement key over one partition, handing each row to emit;
 * *stop when emit says so. */
typedef int (*row_fn)(sqlite3_stmt *st, void *ctx);

static nw_status scan_partition(nw_store *s, const char *name, unsigned key,
                                void (*bind)(sqlite3_stmt *, const void *), const void *args,
                                row_fn emit, void *ctx, int *stop, nw_err *err)
{
    nw_rd_handle *h = NULL;
    sqlite3_stmt *st = NULL;
    int temp = 0;
    nw_status res = rd_acquire(s, name, &h, err);
    if (res != NW_OK || !h)
        return res;
    res = rd_stmt(h, key, &st, &temp, err);
    if (res == NW_OK) {
        bind(st, args);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (emit(st, ctx) != 0) {
                *stop = 1;
                break;
            }
        if (!*stop && rc != SQLITE_DONE)
            res = nw__sql_fail(h->db, h->name, err);
        stmt_done(st, temp);
    }
    rd_release(h);
    return res;
}

typedef struct xfer_ctx {
    nw_transfer_cb cb;
    void *ctx;
} xfer_ctx;

static void bind_xfer(sqlite3_stmt *st, const void *args)
{
    sqlite3_bind_int64(st, 1, *(const int64_t *)args);
}

static int emit_xfer(sqlite3_stmt *st, void *ctx)
{
    xfer_ctx *x = ctx;
    nw_transfer t;
    t.conn_id = sqlite3_column_int64(st, 0);
    t.time = sqlite3_column_int64(st, 1);
    t.bytes_sent = (uint64_t)sqlite3_column_int64(st, 2);
    t.bytes_received = (uint64_t)sqlite3_column_int64(st, 3);
    t.bytes_retransmitted = (uint64_t)sqlite3_column_int64(st, 4);
    t.send_events = (uint32_t)sqlite3_column_int64(st, 5);
    t.receive_events = (uint32_t)sqlite3_column_int64(st, 6);
    t.retransmit_events = (uint32_t)sqlite3_column_int64(st, 7);
    return x->cb(x->ctx, &t);
}

nw_status nw_query_transfers(nw_store *s, int64_t conn_id, nw_transfer_cb cb, void *ctx,
                             nw_err *err)
{
    if (!cb)
        return nw_fail(err, NW_ERR_INVALID, "no callback");
    nw_cat_row *rows = NULL;
    size_t n = 0;
    nw_status st = nw__catalog_rows(s, &rows, &n, err);
    if (st != NW_OK)
        return st;
    xfer_ctx x = {cb, ctx};
    int stop = 0;
    /* Transfers sit in the partition of their own time: partitions in start
     * order are time order. */
    for (size_t i = 0; i < n && !stop && st == NW_OK; i++) {
        const nw_cat_row *r = &rows[i];
        if (r->info.transfers == 0 || conn_id < r->min_xfer_conn_id ||
            conn_id > r->max_xfer_conn_id)
            continue;
        st = scan_partition(s, r->info.name, STMT_KEY(QK_XFERS, 0), bind_xfer, &conn_id,
                            emit_xfer, &x, &stop, err);
    }
    free(rows);
    rd_trim(s);
    return st;
}

typedef struct fail_args {
    nw_time from, to;
    const char *host;
} fail_args;

typedef struct fail_ctx {
    nw_failure_cb cb;
    void *ctx;
} fail_ctx;

static void bind_fail(sqlite3_stmt *st, const void *args)
{
    const fail_args *a = args;
    sqlite3_bind_int64(st, 1, a->from);
    sqlite3_bind_int64(st, 2, a->to);
    if (a->host)
        sqlite3_bind_text(st, 3, a->host, -1, SQLITE_STATIC);
}

static int emit_fail(sqlite3_stmt *st, void *ctx)
{
    fail_ctx *x = ctx;
    nw_failure f;
    const unsigned char *host = sqlite3_column_text(st, 1);
    f.time = sqlite3_column_int64(st, 0);
    f.host = host ? (const char *)host : "";
    f.event_id = (uint16_t)sqlite3_column_int(st, 2);
    f.proto = (uint8_t)sqlite3_column_int(st, 3);
    f.fail_proto = (uint16_t)sqlite3_column_int(st, 4);
    f.fail_code = (uint16_t)sqlite3_column_int(st, 5);
    return x->cb(x->ctx, &f);
}

nw_status nw_query_failures(nw_store *s, const char *host, nw_time from, nw_time to,
                            nw_failure_cb cb, void *ctx, nw_err *err)
{
    if (!cb)
        return nw_fail(err, NW_ERR_INVALID, "no callback");
    nw_cat_row *rows = NULL;
    size_t n = 0;
    nw_status st = nw__catalog_rows(s, &rows, &n, err);
    if (st != NW_OK)
        return st;
    fail_args a = {from, to, host};
    fail_ctx x = {cb, ctx};
    unsigned key = STMT_KEY(host ? QK_FAILS_HOST : QK_FAILS, 0);
    int stop = 0;
    for (size_t i = 0; i < n && !stop && st == NW_OK; i++) {
        const nw_cat_row *r = &rows[i];
        if (r->info.failures == 0 || r->info.end <= from || r->info.start >= to)
            continue;
        st = scan_partition(s, r->info.name, key, bind_fail, &a, emit_fail, &x, &stop, err);
    }
    free(rows);
    rd_trim(s);
    return st;
}

/* ------------------------------------------------------ transfers, paged */

typedef struct xpage_args {
    int64_t conn_id;
    nw_time after;
    int64_t row_limit;         /* rows asked of SQLite: remaining + 1     */
} xpage_args;

typedef struct xpage_ctx {
    nw_transfer_cb cb;
    void *ctx;
    int64_t limit, emitted;
    int more;
    nw_time last;              /* keyset: time of the last row emitted   */
} xpage_ctx;

static void bind_xpage(sqlite3_stmt *st, const void *args)
{
    const xpage_args *a = args;
    sqlite3_bind_int64(st, 1, a->conn_id);
    sqlite3_bind_int64(st, 2, a->after);
    sqlite3_bind_int64(st, 3, a->row_limit);
}

static int emit_xpage(sqlite3_stmt *st, void *ctx)
{
    xpage_ctx *x = ctx;
    if (x->limit > 0 && x->emitted >= x->limit) {
        x->more = 1;           /* the extra row: do not hand it out       */
        return 1;
    }
    xfer_ctx inner = {x->cb, x->ctx};
    x->emitted++;
    x->last = sqlite3_column_int64(st, 1);
    return emit_xfer(st, &inner);
}

nw_status nw_query_transfers_page(nw_store *s, int64_t conn_id, nw_time after, int64_t limit,
                                  nw_transfer_cb cb, void *ctx, int *more, nw_err *err)
{
    int more_local = 0;
    if (!more)
        more = &more_local;
    *more = 0;
    if (!cb)
        return nw_fail(err, NW_ERR_INVALID, "no callback");
    if (limit < 0)
        return nw_fail(err, NW_ERR_INVALID, "limit must be >= 0");
    nw_cat_row *rows = NULL;
    size_t n = 0;
    nw_status st = nw__catalog_rows(s, &rows, &n, err);
    if (st != NW_OK)
        return st;
    xpage_ctx x = {cb, ctx, limit, 0, 0, after};
    int stop = 0;
    /* Transfers sit in the partition of their own time, so partitions in
     * start order are time order, and those ending at or before `after`
     * hold nothing of this page. */
    for (size_t i = 0; i < n && !stop && st == NW_OK; i++) {
        const nw_cat_row *r = &rows[i];
        if (r->info.transfers == 0 || conn_id < r->min_xfer_conn_id ||
            conn_id > r->max_xfer_conn_id || r->info.end <= after)
            continue;
        xpage_args a = {conn_id, x.last, limit > 0 ? limit - x.emitted + 1 : -1};
        st = scan_partition(s, r->info.name, STMT_KEY(QK_XFERS_AFTER, 0), bind_xpage, &a,
                            emit_xpage, &x, &stop, err);
        if (x.more)
            stop = 1;
    }
    free(rows);
    rd_trim(s);
    *more = x.more;
    return st;
}

/* --------------------------------------------------------- top talkers */

typedef struct top_vec {
    nw_top_row *v;
    size_t n, cap;
    nw_top_by by;
} top_vec;

static int top_key_cmp(const nw_top_row *x, const nw_top_row *y, nw_top_by by)
{
    switch (by) {
    case NW_TOP_REMOTE_IP: return nw_addr_cmp(&x->remote_ip, &y->remote_ip);
    case NW_TOP_REMOTE_PORT:
        return x->remote_port < y->remote_port ? -1 : x->remote_port > y->remote_port;
    case NW_TOP_PID: {
        int c = strcmp(x->host, y->host);
        if (c)
            return c;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
    }
    case NW_TOP_HOST: return strcmp(x->host, y->host);
    }
    return 0;
}

/* qsort has no context argument: the key kind of the sort in progress.
 * Each thread sorts its own vectors, so it is thread-local. */
static _Thread_local nw_top_by top_sort_by;
static _Thread_local nw_top_order top_sort_order;

static int top_by_key(const void *a, const void *b)
{
    return top_key_cmp(a, b, top_sort_by);
}

static int top_by_order(const void *a, const void *b)
{
    const nw_top_row *x = a, *y = b;
    uint64_t vx, vy;
    if (top_sort_order == NW_TOP_ORDER_CONNECTIONS) {
        vx = x->connections;
        vy = y->connections;
    } else {
        vx = x->bytes_sent + x->bytes_received;
        vy = y->bytes_sent + y->bytes_received;
    }
    if (vx != vy)
        return vx > vy ? -1 : 1;
    return top_key_cmp(x, y, top_sort_by);
}

/* Sorts by key and adds up rows of the same key (one per partition). */
static void top_fold(top_vec *t)
{
    if (t->n < 2)
        return;
    top_sort_by = t->by;
    qsort(t->v, t->n, sizeof *t->v, top_by_key);
    size_t out = 0;
    for (size_t i = 1; i < t->n; i++) {
        nw_top_row *a = &t->v[out];
        if (top_key_cmp(a, &t->v[i], t->by) == 0) {
            a->connections += t->v[i].connections;
            a->bytes_sent += t->v[i].bytes_sent;
            a->bytes_received += t->v[i].bytes_received;
        } else {
            t->v[++out] = t->v[i];
        }
    }
    t->n = out + 1;
}

static nw_status top_push(top_vec *t, sqlite3_stmt *st, nw_err *err)
{
    if (grow((void **)&t->v, &t->cap, t->n, sizeof *t->v))
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    nw_top_row *r = &t->v[t->n++];
    memset(r, 0, sizeof *r);
    switch (t->by) {
    case NW_TOP_REMOTE_IP:
        if (sqlite3_column_bytes(st, 0) == 16)
            memcpy(r->remote_ip.b, sqlite3_column_blob(st, 0), 16);
        break;
    case NW_TOP_REMOTE_PORT: r->remote_port = (uint16_t)sqlite3_column_int(st, 0); break;
    case NW_TOP_PID:
    case NW_TOP_HOST: {
        const unsigned char *h = sqlite3_column_text(st, 0);
        snprintf(r->host, sizeof r->host, "%s", h ? (const char *)h : "");
        r->pid = (uint32_t)sqlite3_column_int64(st, 1);
        break;
    }
    }
    r->connections = (uint64_t)sqlite3_column_int64(st, 2);
    r->bytes_sent = (uint64_t)sqlite3_column_int64(st, 3);
    r->bytes_received = (uint64_t)sqlite3_column_int64(st, 4);
    return NW_OK;
}

nw_status nw_query_top(nw_store *s, nw_top_by by, nw_top_order order, nw_time from,
                       nw_time to, size_t limit, nw_top_row **rows, size_t *n, nw_err *err)
{
    static const int kinds[] = {QK_TOP_RIP, QK_TOP_RPORT, QK_TOP_PID, QK_TOP_HOST};
    if ((unsigned)by > NW_TOP_HOST || (unsigned)order > NW_TOP_ORDER_CONNECTIONS)
        return nw_fail(err, NW_ERR_INVALID, "unknown grouping or order");
    if (!rows || !n)
        return nw_fail(err, NW_ERR_INVALID, "no output");
    nw_query q;
    nw_query_init(&q);
    q.from = from;
    q.to = to;
    nw_cat_row *cands = NULL;
    size_t nc = 0;
    nw_status st = conn_candidates(s, &q, 0, &cands, &nc, err);
    if (st != NW_OK)
        return st;
    top_vec t = {NULL, 0, 0, by};
    for (size_t i = 0; i < nc && st == NW_OK; i++) {
        nw_rd_handle *h = NULL;
        sqlite3_stmt *stmt = NULL;
        int temp = 0;
        st = rd_acquire(s, cands[i].info.name, &h, err);
        if (st != NW_OK || !h)
            continue;
        st = rd_stmt(h, STMT_KEY(kinds[by], 0), &stmt, &temp, err);
        if (st == NW_OK) {
            sqlite3_bind_int64(stmt, 1, from);
            sqlite3_bind_int64(stmt, 2, to);
            int rc;
            while (st == NW_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
                st = top_push(&t, stmt, err);
            if (st == NW_OK && rc != SQLITE_DONE)
                st = nw__sql_fail(h->db, h->name, err);
            stmt_done(stmt, temp);
        }
        rd_release(h);
        /* Fold after each partition: memory follows the distinct keys, not
         * the number of partitions. */
        top_fold(&t);
        if (st == NW_OK && t.n > NW_QUERY_TOP_MAX_GROUPS)
            st = nw_fail(err, NW_ERR_LIMIT,
                         "more than %d distinct groups in the window; narrow it",
                         NW_QUERY_TOP_MAX_GROUPS);
    }
    free(cands);
    rd_trim(s);
    if (st != NW_OK) {
        free(t.v);
        return st;
    }
    top_sort_by = by;
    top_sort_order = order;
    if (t.n > 1)
        qsort(t.v, t.n, sizeof *t.v, top_by_order);
    if (limit > 0 && t.n > limit)
        t.n = limit;
    if (!t.v) {
        t.v = malloc(sizeof *t.v);   /* callers free() what they get */
        if (!t.v)
            return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    }
    *rows = t.v;
    *n = t.n;
    return NW_OK;
}
