/*
 * writer.c -- the store's single writer (see writer.h).
 *
 * State:
 *   - an in-memory copy of the catalog (one entry per partition, sorted by
 *     start), kept up to date by every write, so that resume can choose
 *     partitions by max_last_seen including what is not committed yet;
 *   - up to NW_WRITER_MAX_OPEN_PARTITIONS open partition handles (LRU),
 *     each with its prepared statements and, once written, an open
 *     transaction;
 *   - a block of connection ids reserved in the catalog.
 *
 * Commit order: the catalog first (its bounds only widen), then the
 * partitions.  A crash between the two leaves the catalog describing more
 * than the files hold, which only costs a query some pruning; the other
 * order could hide committed rows from queries.  Connection, transfer and
 * failure counts are exact (insert is told from rewrite by changes()),
 * except after such a crash, where they may count rows that were lost.
 *
 * The writer thread (nw_writer_start_thread): the tracker's rows cost the
 * ingest thread more than everything else together, so they can be written
 * by a thread of the writer's own.  The caller copies each row into a block
 * of WQ_BLOCK_ROWS; full blocks go to the thread, which writes them in order
 * through the same functions as before, so the store sees the same calls in
 * the same order.  Whatever else touches SQLite (a resume probe, reserving
 * ids, a commit) first waits for the queue to be written ("drain") and then
 * runs on the caller while the thread waits: one thread uses SQLite at a
 * time.  The resume Bloom filter and the reserved ids stay the caller's,
 * which keeps the common resume answer ("never written open") and id
 * hand-out free of waiting.  A row the thread fails to write stops it: its
 * status is returned by the next sink call.
 */
#include "netwho/writer.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_int.h"
#include "sql.h"
#include "store_int.h"

/* Ids reserved in the catalog at once, in their own committed
 * transaction, before any is handed out: a crash can waste the rest of a
 * block but never hand an id out twice. */
#define NW_ID_BLOCK 65536

enum {
    PS_CONN_INS, PS_CONN_UPD, PS_XFER_INS, PS_XFER_ADD, PS_FAIL_INS, PS_RESUME,
    PS_CONN_OLD, PS_ROLLUP_ADD, PS_RESUME_LPORT, PS__COUNT
};

static const char *const part_sql[PS__COUNT] = {
    SQL_CONN_INSERT, SQL_CONN_UPDATE, SQL_XFER_INSERT, SQL_XFER_ADD,
    SQL_FAIL_INSERT, SQL_CONN_RESUME, SQL_CONN_OLD_BYTES, SQL_ROLLUP_ADD,
    SQL_CONN_RESUME_LPORT,
};

/* A partition as the writer knows it: absolute values including what is
 * not committed, plus the count deltas not yet merged into the catalog. */
typedef struct part_entry {
    nw_cat_row row;
    uint64_t d_conn, d_xfer, d_fail;
    int dirty;         /* differs from the catalog                        */
    int cataloged;     /* the catalog has (had, at load) a row for it     */
} part_entry;

typedef struct part_handle {
    part_entry *e;     /* NULL: free slot                                */
    sqlite3 *db;
    sqlite3_stmt *st[PS__COUNT];
    int in_txn;
    struct racc *racc; /* roll-up additions not yet written (see rollup_add) */
    size_t racc_cap, racc_n;
    int rollup_stale;  /* a roll-up write failed after its connection's:
                          rebuild the roll-up before committing          */
    uint64_t used;     /* LRU tick                                       */
} part_handle;

struct nw_writer {
    nw_store *s;
    int lock_fd;
    part_entry **parts;            /* sorted by start; entries own memory */
    size_t nparts, capparts;
    /* The open handles: NW_WRITER_MAX_OPEN_PARTITIONS, more while a held
     * step needs them (free_slot); each allocated on its own, so that a
     * handle does not move when the array grows. */
    part_handle **open;
    size_t nopen;
    part_handle *last;             /* the handle written last: fast path  */
    uint64_t tick;
    uint64_t pending;              /* rows since the last commit          */
    int64_t id_next, id_end;       /* reserved, not yet handed out        */
    sqlite3_stmt *cat_merge, *meta_get, *meta_set;
    nw_deadletter dl;
    char resume_host[NW_HOST_MAX]; /* resume's out->host                  */
    /* Resume fast path: most resume calls are for brand-new tuples (every
     * new UDP flow asks), and each miss would probe SQLite.  A row can only
     * be resumed if it was written open in this session (the Bloom filter
     * remembers those keys) or before it (prior_max_last_seen bounds those).
     * A false positive costs one probe; there are no false negatives. */
    uint64_t *bloom;               /* RESUME_BLOOM_BITS bits, lazily made */
    nw_time prior_max_last_seen;   /* over the catalog when opened        */
    nw_writer_stats stats;
    nw_err err;                    /* last sink error                     */
    struct nw_proc_wr *pw;         /* processes.db, once a process came   */
    /* The hourly roll-up's additions since the last commit (hourly.h):
     * touched by conn_write (the writer thread, if it runs) and by the
     * commit (after the queue drained), never at once. */
    struct nw_hourly_wr *hw;
    /* A checkpointed step (nw_writer_hold, nw_writer_commit_checkpoint):
     * no commit before the step's own, so that its rows and its checkpoint
     * are one commit; ck is set during that commit only. */
    int hold;
    int discard;                   /* nw_writer_discard: close commits nothing */
    const nw_ckpt *ck;
    nw_redo redo;                  /* the held step's rows (ckpt_int.h)   */
    char *only;                    /* nw__writer_only; NULL: every row   */
    struct wq *q;                  /* the writer thread, or NULL          */
    /* The dead letters: written by the caller (nw_writer_reject) while the
     * writer thread may flush them at one of its commits. */
    pthread_mutex_t dl_mu;
};

static nw_status commit_all(nw_writer *w, nw_err *err);
static nw_status drain(nw_writer *w);
static nw_status thread_stop(nw_writer *w);

/* The writer thread's failure as the caller's error. */
static nw_status thread_failed(nw_writer *w, nw_status st, nw_err *err)
{
    return nw_fail(err, st, "%s", w->err.msg[0] ? w->err.msg : nw_status_name(st));
}

/* 8 Mbit = 1 MiB: under 1% false positives for ~800k open-written keys. */
#define RESUME_BLOOM_BITS (1u << 23)

uint64_t nw_writer_key_hash(const nw_conn *c)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)c->host; p && *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    unsigned char k[16 + 16 + 2 + 2 + 4 + 2];
    memcpy(k, c->local_ip.b, 16);
    memcpy(k + 16, c->remote_ip.b, 16);
    memcpy(k + 32, &c->local_port, 2);
    memcpy(k + 34, &c->remote_port, 2);
    memcpy(k + 36, &c->pid, 4);
    k[40] = c->proto;
    k[41] = c->ip_version;
    for (size_t i = 0; i < sizeof k; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    return h ^ (h >> 31);
}

/* The filter's two bits of c's key. */
static void bloom_bits(const nw_conn *c, uint32_t *a, uint32_t *b)
{
    uint64_t h = nw_writer_key_hash(c);
    *a = (uint32_t)h % RESUME_BLOOM_BITS;
    *b = (uint32_t)(h >> 32) % RESUME_BLOOM_BITS;
}

static void bloom_add(nw_writer *w, const nw_conn *c)
{
    if (!w->bloom && !(w->bloom = calloc(RESUME_BLOOM_BITS / 64, sizeof *w->bloom)))
        return;   /* no filter: resume probes SQLite every time (see below) */
    uint32_t a, b;
    bloom_bits(c, &a, &b);
    w->bloom[a / 64] |= 1ULL << (a % 64);
    w->bloom[b / 64] |= 1ULL << (b % 64);
}

/* 0 only if c was certainly never written open in this session. */
static int bloom_maybe(const nw_writer *w, const nw_conn *c)
{
    if (!w->bloom)
        return w->stats.conn_rows > 0;  /* allocation failed: assume maybe */
    uint32_t a, b;
    bloom_bits(c, &a, &b);
    return (w->bloom[a / 64] >> (a % 64) & 1) && (w->bloom[b / 64] >> (b % 64) & 1);
}

/* ------------------------------------------------------- catalog entries */

static part_entry *entry_new(const char *name, nw_time start, nw_time end)
{
    part_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->row.info.name, sizeof e->row.info.name, "%s", name);
    e->row.info.start = start;
    e->row.info.end = end;
    e->row.info.min_first_seen = NW_TIME_MAX;
    e->row.info.max_first_seen = NW_TIME_MIN;
    e->row.info.max_last_seen = NW_TIME_MIN;
    e->row.min_conn_id = e->row.min_xfer_conn_id = INT64_MAX;
    e->row.max_conn_id = e->row.max_xfer_conn_id = 0;
    return e;
}

/* Index of the first entry whose start is >= start. */
static size_t entry_lower_bound(const nw_writer *w, nw_time start)
{
    size_t lo = 0, hi = w->nparts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->parts[mid]->row.info.start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts e keeping the order; takes ownership of e (frees it on error). */
static nw_status entry_insert(nw_writer *w, part_entry *e, nw_err *err)
{
    if (w->nparts == w->capparts) {
        size_t ncap = w->capparts ? w->capparts * 2 : 64;
        part_entry **np = realloc(w->parts, ncap * sizeof *np);
        if (!np) {
            free(e);
            return nw_fail(err, NW_ERR_NOMEM, "out of memory");
        }
        w->parts = np;
        w->capparts = ncap;
    }
    size_t i = entry_lower_bound(w, e->row.info.start);
    memmove(&w->parts[i + 1], &w->parts[i], (w->nparts - i) * sizeof *w->parts);
    w->parts[i] = e;
    w->nparts++;
    return NW_OK;
}

static void entries_free(nw_writer *w)
{
    for (size_t i = 0; i < w->nparts; i++)
        free(w->parts[i]);
    w->nparts = 0;
}

static nw_status entries_load(nw_writer *w, nw_err *err)
{
    nw_cat_row *rows = NULL;
    size_t n = 0;
    nw_status st = nw__catalog_rows(w->s, &rows, &n, err);
    for (size_t i = 0; st == NW_OK && i < n; i++) {
        part_entry *e = calloc(1, sizeof *e);
        if (!e) {
            st = nw_fail(err, NW_ERR_NOMEM, "out of memory");
            break;
        }
        e->row = rows[i];
        e->cataloged = 1;
        st = entry_insert(w, e, err);
    }
    free(rows);
    return st;
}

/* -------------------------------------------------------------- handles */

static void racc_free(part_handle *h);
static void rollup_flush(part_handle *h);

static void handle_close(part_handle *h)
{
    racc_free(h);   /* not written: the transaction they belong to is gone */
    for (int i = 0; i < PS__COUNT; i++)
        sqlite3_finalize(h->st[i]);
    sqlite3_close(h->db);
    memset(h, 0, sizeof *h);
}

static void handles_close_all(nw_writer *w)
{
    for (size_t i = 0; i < w->nopen; i++)
        if (w->open[i]->e)
            handle_close(w->open[i]);
    w->last = NULL;
}

/* Makes nopen handle slots (all free); NW_ERR_NOMEM leaves w as it was. */
static nw_status handles_grow(nw_writer *w, size_t nopen, nw_err *err)
{
    part_handle **np = realloc(w->open, nopen * sizeof *np);
    if (!np)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory for a partition handle");
    w->open = np;
    while (w->nopen < nopen) {
        if (!(w->open[w->nopen] = calloc(1, sizeof **w->open)))
            return nw_fail(err, NW_ERR_NOMEM, "out of memory for a partition handle");
        w->nopen++;
    }
    return NW_OK;
}

/* Back to NW_WRITER_MAX_OPEN_PARTITIONS handles once a held step that
 * needed more committed (the extra handles hold no transaction then). */
static void handles_trim(nw_writer *w)
{
    while (w->nopen > NW_WRITER_MAX_OPEN_PARTITIONS) {
        part_handle *h = w->open[--w->nopen];
        if (w->last == h)
            w->last = NULL;
        if (h->e)
            handle_close(h);   /* rolls back if a failed commit left one */
        free(h);
    }
}

static void handles_free(nw_writer *w)
{
    handles_close_all(w);
    for (size_t i = 0; i < w->nopen; i++)
        free(w->open[i]);
    free(w->open);
    w->open = NULL;
    w->nopen = 0;
}

/* A partition file that the catalog does not know was written before a
 * crash: count what it holds so that the catalog learns it at commit. */
static nw_status rescan(part_handle *h, nw_err *err)
{
    static const char *const sql[] = {SQL_PART_RESCAN_CONN, SQL_PART_RESCAN_XFER,
                                      SQL_PART_RESCAN_FAIL};
    nw_cat_row *r = &h->e->row;
    for (size_t q = 0; q < sizeof sql / sizeof sql[0]; q++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h->db, sql[q], -1, &st, NULL) != SQLITE_OK)
            return nw__sql_fail(h->db, r->info.name, err);
        if (sqlite3_step(st) != SQLITE_ROW) {
            nw_status s = nw__sql_fail(h->db, r->info.name, err);
            sqlite3_finalize(st);
            return s;
        }
        uint64_t count = (uint64_t)sqlite3_column_int64(st, 0);
        if (q == 0 && count > 0) {
            r->info.connections += count;
            h->e->d_conn += count;
            r->info.min_first_seen = sqlite3_column_int64(st, 1);
            r->info.max_first_seen = sqlite3_column_int64(st, 2);
            r->info.max_last_seen = sqlite3_column_int64(st, 3);
            r->min_conn_id = sqlite3_column_int64(st, 4);
            r->max_conn_id = sqlite3_column_int64(st, 5);
        } else if (q == 1 && count > 0) {
            r->info.transfers += count;
            h->e->d_xfer += count;
            r->min_xfer_conn_id = sqlite3_column_int64(st, 1);
            r->max_xfer_conn_id = sqlite3_column_int64(st, 2);
        } else if (q == 2) {
            r->info.failures += count;
            h->e->d_fail += count;
        }
        sqlite3_finalize(st);
    }
    h->e->dirty = 1;
    return NW_OK;
}

/* A slot for a new handle: a free one, else the least recently used of
 * those without a transaction (resume probes of old partitions leave such
 * handles), else -- in a held step, whose rows must commit only with its
 * checkpoint -- a new slot, else the least recently used, whose
 * transaction is first committed with all the others (so a batch stays
 * one unit).  A held step thus keeps one handle per partition it writes
 * (three file descriptors each, as a reader's handle) until its commit. */
static nw_status free_slot(nw_writer *w, part_handle **out, nw_err *err)
{
    part_handle *victim = NULL;
    for (size_t i = 0; i < w->nopen; i++) {
        part_handle *h = w->open[i];
        if (!h->e) {
            *out = h;
            return NW_OK;
        }
        if (!victim || (victim->in_txn && !h->in_txn) ||
            (victim->in_txn == h->in_txn && h->used < victim->used))
            victim = h;
    }
    if (victim->in_txn && w->hold) {
        nw_status st = handles_grow(w, w->nopen + 1, err);
        if (st != NW_OK)
            return st;
        *out = w->open[w->nopen - 1];
        return NW_OK;
    }
    if (victim->in_txn) {
        nw_status st = commit_all(w, err);
        if (st != NW_OK)
            return st;
    }
    if (w->last == victim)
        w->last = NULL;
    handle_close(victim);
    *out = victim;
    return NW_OK;
}

static nw_status handle_open(nw_writer *w, part_entry *e, part_handle **out, nw_err *err)
{
    part_handle *h = NULL;
    nw_status st = free_slot(w, &h, err);
    if (st != NW_OK)
        return st;
    int created = 0;
    st = nw__open_partition(w->s->dir, e->row.info.name, 1, &h->db, &created, NULL, err);
    if (st != NW_OK) {
        h->db = NULL;
        return st;
    }
    h->e = e;
    for (int i = 0; i < PS__COUNT && st == NW_OK; i++)
        if (sqlite3_prepare_v3(h->db, part_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &h->st[i], NULL) != SQLITE_OK)
            st = nw__sql_fail(h->db, e->row.info.name, err);
    if (st == NW_OK && created)
        w->stats.partitions_created++;
    if (st == NW_OK && !created && !e->cataloged) {
        st = rescan(h, err);
        e->cataloged = 1;
    }
    if (st != NW_OK) {
        handle_close(h);
        return st;
    }
    *out = h;
    return NW_OK;
}

static nw_time floor_part(const nw_writer *w, nw_time t)
{
    return w->s->part == NW_PART_HOUR ? nw_time_floor_hour(t) : nw_time_floor_day(t);
}

/* The open handle of the partition holding time t, opening (and creating)
 * it if needed. */
static nw_status handle_for(nw_writer *w, nw_time t, part_handle **out, nw_err *err)
{
    nw_time start = floor_part(w, t);
    part_handle *h = w->last;
    if (!h || h->e->row.info.start != start) {
        h = NULL;
        for (size_t i = 0; i < w->nopen; i++)
            if (w->open[i]->e && w->open[i]->e->row.info.start == start) {
                h = w->open[i];
                break;
            }
    }
    if (!h) {
        size_t i = entry_lower_bound(w, start);
        part_entry *e = i < w->nparts && w->parts[i]->row.info.start == start
                            ? w->parts[i] : NULL;
        if (!e) {
            char name[NW_PART_NAME_MAX];
            nw_time s, end;
            nw_status st = nw__part_name(w->s->part, t, name, &s, &end, err);
            if (st != NW_OK)
                return st;
            /* Not dirty: the catalog learns of it with its first row. */
            if (!(e = entry_new(name, s, end)))
                return nw_fail(err, NW_ERR_NOMEM, "out of memory");
            st = entry_insert(w, e, err);
            if (st != NW_OK)
                return st;
        }
        nw_status st = handle_open(w, e, &h, err);
        if (st != NW_OK)
            return st;
    }
    h->used = ++w->tick;
    w->last = h;
    *out = h;
    return NW_OK;
}

static nw_status begin(part_handle *h, nw_err *err)
{
    if (h->in_txn)
        return NW_OK;
    nw_status st = nw__exec(h->db, SQL_BEGIN, h->e->row.info.name, err);
    if (st == NW_OK)
        h->in_txn = 1;
    return st;
}

/* Steps a write statement to completion and resets it. */
static nw_status step_write(part_handle *h, int which, nw_err *err)
{
    sqlite3_stmt *st = h->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return nw__sql_fail(h->db, h->e->row.info.name, err);
    return NW_OK;
}

static nw_status row_written(nw_writer *w, nw_err *err)
{
    if (++w->pending >= NW_WRITER_BATCH_ROWS && !w->hold)
        return commit_all(w, err);
    return NW_OK;
}

/* --------------------------------------------------------------- commit */

static nw_status merge_entry(nw_writer *w, const part_entry *e, nw_err *err)
{
    sqlite3_stmt *st = w->cat_merge;
    const nw_cat_row *r = &e->row;
    sqlite3_bind_text(st, 1, r->info.name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->info.start);
    sqlite3_bind_int64(st, 3, r->info.end);
    sqlite3_bind_int64(st, 4, r->info.min_first_seen);
    sqlite3_bind_int64(st, 5, r->info.max_first_seen);
    sqlite3_bind_int64(st, 6, r->info.max_last_seen);
    sqlite3_bind_int64(st, 7, (int64_t)e->d_conn);
    sqlite3_bind_int64(st, 8, (int64_t)e->d_xfer);
    sqlite3_bind_int64(st, 9, (int64_t)e->d_fail);
    sqlite3_bind_int64(st, 10, r->min_conn_id);
    sqlite3_bind_int64(st, 11, r->max_conn_id);
    sqlite3_bind_int64(st, 12, r->min_xfer_conn_id);
    sqlite3_bind_int64(st, 13, r->max_xfer_conn_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return nw__sql_fail(w->s->cat, "update catalog", err);
    return NW_OK;
}

static nw_status commit_catalog_locked(nw_writer *w, nw_err *err);

static nw_status commit_catalog(nw_writer *w, nw_err *err)
{
    /* The dead letters' lengths are committed here (deadletter.c); no
     * rejection is written while they are (dl_mu). */
    pthread_mutex_lock(&w->dl_mu);
    nw_status st = commit_catalog_locked(w, err);
    pthread_mutex_unlock(&w->dl_mu);
    return st;
}

static nw_status commit_catalog_locked(nw_writer *w, nw_err *err)
{
    int any = w->ck != NULL || nw__dl_pending(&w->dl);
    for (size_t i = 0; i < w->nparts && !any; i++)
        any = w->parts[i]->dirty;
    if (!any)
        return NW_OK;
    nw_status st = nw__exec(w->s->cat, SQL_BEGIN_IMMEDIATE, "update catalog", err);
    if (st != NW_OK)
        return st;
    st = nw__dl_commit(&w->dl, err);
    for (size_t i = 0; i < w->nparts && st == NW_OK; i++)
        if (w->parts[i]->dirty) {
            /* A repair writes rows whose counts the catalog already has
             * (they came with the checkpoint): bounds only. */
            if (w->only)
                w->parts[i]->d_conn = w->parts[i]->d_xfer = w->parts[i]->d_fail = 0;
            st = merge_entry(w, w->parts[i], err);
        }
    /* A repair (nw__writer_only) completes a checkpoint that is in the
     * catalog already: it only marks the partitions. */
    if (st == NW_OK && w->ck && !w->only) {
        /* The partitions this commit writes: checkpoint.h. */
        char *parts = calloc(w->nopen, NW_PART_NAME_MAX + 1);
        if (!parts)
            st = nw_fail(err, NW_ERR_NOMEM, "out of memory for the checkpoint");
        for (size_t i = 0, l = 0; parts && i < w->nopen; i++)
            if (w->open[i]->e && w->open[i]->in_txn) {
                l += (size_t)sprintf(parts + l, "%s%s", l ? "," : "",
                                     w->open[i]->e->row.info.name);
            }
        /* The partitions commit after the catalog, each on its own: the
         * step's rows (and roll-up sums) go with the checkpoint, so that
         * a crash before a partition's COMMIT is repaired from them at
         * the next load (checkpoint.h) -- the catalog's commit is the
         * step's. */
        if (st == NW_OK && w->redo.overflow)
            st = nw_fail(err, NW_ERR_NOMEM, "out of memory for the step's redo record");
        unsigned char *sums = NULL;
        size_t sums_len = 0;
        if (st == NW_OK)
            st = nw__hourly_save(w->hw, &sums, &sums_len, err);
        if (st == NW_OK)
            st = nw__ckpt_write_catalog(w->s->cat, w->ck, parts, parts[0] ? &w->redo : NULL,
                                        sums, sums_len, err);
        free(sums);
        free(parts);
    }
    if (st == NW_OK)
        st = nw__exec(w->s->cat, SQL_COMMIT, "commit catalog", err);
    if (st != NW_OK) {
        sqlite3_exec(w->s->cat, SQL_ROLLBACK, NULL, NULL, NULL);
        return st;
    }
    nw__dl_committed(&w->dl);
    /* The deltas are in the catalog now: never add them twice. */
    for (size_t i = 0; i < w->nparts; i++) {
        part_entry *e = w->parts[i];
        e->d_conn = e->d_xfer = e->d_fail = 0;
        e->dirty = 0;
        e->cataloged = 1;
    }
    return NW_OK;
}

/* A partition whose roll-up missed a write gets it recomputed inside the
 * transaction, so that what commits is exact; if even that fails, the
 * partition's transaction is rolled back rather than committed wrong. */
static nw_status rollup_repair(part_handle *h, nw_err *err)
{
    if (!h->rollup_stale)
        return NW_OK;
    nw_status st = NW_OK;
    if (!sqlite3_get_autocommit(h->db))   /* else SQLite rolled it all back */
        st = nw__exec(h->db, SQL_ROLLUP_REBUILD, h->e->row.info.name, err);
    if (st != NW_OK) {
        sqlite3_exec(h->db, SQL_ROLLBACK, NULL, NULL, NULL);
        h->in_txn = 0;
    }
    h->rollup_stale = 0;
    return st;
}

static nw_status commit_all(nw_writer *w, nw_err *err)
{
    /* processes.db first: a process event merges into its row the same way
     * however often it is applied, so if a crash or a failure comes after
     * this COMMIT and before the catalog's (the step's commit point), the
     * step read or sent again re-applies its process events harmlessly --
     * committed after the catalog, they would be lost with it. */
    nw_status st = nw__procw_commit(w->pw, err);
    if (st != NW_OK)
        return st;
    st = commit_catalog(w, err);
    int committed = 0, changed = 0;
    for (size_t i = 0; i < w->nopen && st == NW_OK; i++) {
        part_handle *h = w->open[i];
        if (!h->e || !h->in_txn)
            continue;
        rollup_flush(h);
        st = rollup_repair(h, err);
        if (st == NW_OK && w->ck && h->in_txn)
            st = nw__ckpt_mark(h->db, w->ck->seq, h->e->row.info.name, err);
        if (st == NW_OK)
            st = nw__exec(h->db, SQL_COMMIT, h->e->row.info.name, err);
        h->in_txn = !sqlite3_get_autocommit(h->db);
        committed = 1;
        changed |= st == NW_OK;
    }
    /* The hourly roll-up (hourly.h): right after the partitions, before
     * the generation, so that a reader who sees a generation sees its
     * roll-up too.  Kept in memory if this fails (tried again next time). */
    if (st == NW_OK)
        st = nw__hourly_commit(w->s, w->hw, w->ck && !w->only ? w->ck->seq : 0, err);
    /* After the partitions (even if a later one failed): a reader that read
     * the old generation saw data as old or newer, never a generation newer
     * than its data -- netwhod answers 304 from it without querying. */
    if (changed) {
        nw_err e2;
        nw_status st2 = nw__bump_generation(w->s, &e2);
        if (st == NW_OK && st2 != NW_OK) {
            st = st2;
            if (err)
                *err = e2;
        }
    }
    if (st != NW_OK)
        return st;
    if (committed)
        w->stats.commits++;
    w->pending = 0;
    nw__redo_reset(&w->redo);      /* those rows are committed */
    return NW_OK;
}

nw_status nw_writer_commit(nw_writer *w, nw_err *err)
{
    nw_status st = drain(w);
    if (st != NW_OK)
        return thread_failed(w, st, err);
    st = commit_all(w, err);
    if (st == NW_OK)
        handles_trim(w);
    return st;
}

void nw_writer_hold(nw_writer *w, int on)
{
    w->hold = on;
}

nw_status nw_writer_commit_checkpoint(nw_writer *w, const nw_ckpt *ck, nw_err *err)
{
    nw_status st = drain(w);
    if (st != NW_OK)
        return thread_failed(w, st, err);
    w->ck = ck;
    st = commit_all(w, err);
    w->ck = NULL;
    nw__redo_reset(&w->redo);
    if (st == NW_OK)
        handles_trim(w);
    return st;
}

nw_status nw__writer_only(nw_writer *w, const char *parts, nw_err *err)
{
    free(w->only);
    w->only = NULL;
    if (parts && parts[0] && !(w->only = strdup(parts)))
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    return NW_OK;
}

/* 0 if a row at time t is to be skipped (nw__writer_only); else records it
 * in the redo record of a held step (what = 'c', 't', 'f'). */
static int keep_row(nw_writer *w, nw_time t, int what, const void *row)
{
    if (w->only) {
        char name[NW_PART_NAME_MAX];
        nw_time s, e;
        if (nw__part_name(w->s->part, t, name, &s, &e, NULL) != NW_OK)
            return 1;
        size_t n = strlen(name);
        const char *p = w->only;
        int found = 0;
        while (!found && (p = strstr(p, name)) != NULL) {
            found = (p == w->only || p[-1] == ',') && (p[n] == 0 || p[n] == ',');
            p += n;
        }
        return found;
    }
    if (w->hold) {
        if (what == 'c')
            nw__redo_conn(&w->redo, row);
        else if (what == 't')
            nw__redo_transfer(&w->redo, row);
        else
            nw__redo_failure(&w->redo, row);
    }
    return 1;
}

/* ---------------------------------------------------------------- sink */

/*
 * Adds a connection write to its who_rollup row: a new row counts 1 with
 * its bytes; a rewrite counts 0 with the bytes it added since (read before
 * the UPDATE: bytes_sent/received of the row it replaces).  Times only
 * widen, as a connection's do (first_seen only moves earlier, last_seen
 * later).  host, pid and remote_ip of an id never change, so the row is
 * the same one every time.
 */
/*
 * Roll-up additions are summed in memory per (remote_ip, host, pid) and
 * written when the partition commits: a connection row costs one upsert
 * fewer, and an ingest has about half as many roll-up keys as connection
 * writes.  Sums, min(first_seen) and max(last_seen) do not depend on the
 * order they are added in, so the rows are the ones the upserts one by one
 * gave.  Nothing reads who_rollup through the writer's handle before the
 * commit; a rolled-back transaction drops the sums with it.
 */
typedef struct racc {
    char *host;                    /* owned; NULL: a free slot            */
    nw_addr ip;
    uint32_t pid;
    uint64_t hash;
    uint64_t conns, sent, recv;    /* two's-complement sums of the adds    */
    nw_time first, last;
} racc;
_Static_assert(offsetof(racc, host) == 0, "nw__acc_grow: host first");

static uint64_t racc_hash(const nw_conn *c)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)c->host; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ c->remote_ip.b[i]) * 1099511628211ULL;
    h = (h ^ c->pid) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static void racc_free(part_handle *h)
{
    nw__acc_free(h->racc, h->racc_cap, sizeof *h->racc);
    h->racc = NULL;
    h->racc_cap = h->racc_n = 0;
}

/* The slot of key c in tab (cap a power of two): its entry or a free one. */
static racc *racc_slot(racc *tab, size_t cap, uint64_t hash, const nw_conn *c)
{
    for (size_t i = hash & (cap - 1);; i = (i + 1) & (cap - 1)) {
        racc *a = &tab[i];
        if (!a->host || (a->hash == hash && a->pid == c->pid &&
                         memcmp(a->ip.b, c->remote_ip.b, 16) == 0 &&
                         strcmp(a->host, c->host) == 0))
            return a;
    }
}

/* Writes one summed roll-up addition. */
static nw_status rollup_write(part_handle *h, const racc *a, nw_err *err)
{
    sqlite3_stmt *st = h->st[PS_ROLLUP_ADD];
    sqlite3_bind_blob(st, 1, a->ip.b, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, a->pid);
    sqlite3_bind_int64(st, 4, (int64_t)a->conns);
    sqlite3_bind_int64(st, 5, (int64_t)a->sent);
    sqlite3_bind_int64(st, 6, (int64_t)a->recv);
    sqlite3_bind_int64(st, 7, a->first);
    sqlite3_bind_int64(st, 8, a->last);
    return step_write(h, PS_ROLLUP_ADD, err);
}

/* Writes the summed additions before the commit.  A failure leaves the
 * roll-up to be rebuilt from the connections (rollup_repair). */
static void rollup_flush(part_handle *h)
{
    for (size_t i = 0; i < h->racc_cap && !h->rollup_stale; i++)
        if (h->racc[i].host && rollup_write(h, &h->racc[i], NULL) != NW_OK)
            h->rollup_stale = 1;
    racc_free(h);
}

static nw_status rollup_add(part_handle *h, const nw_conn *c, int64_t conns,
                            int64_t d_sent, int64_t d_recv, nw_err *err)
{
    if (h->rollup_stale)
        return NW_OK;   /* rebuilt from the connections at the commit */
    if ((h->racc_n + 1) * 2 > h->racc_cap) {
        racc *tab = nw__acc_grow(h->racc, &h->racc_cap, sizeof *tab, offsetof(racc, hash));
        if (!tab) {
            h->rollup_stale = 1;
            return nw_fail(err, NW_ERR_NOMEM, "out of memory for the roll-up");
        }
        h->racc = tab;
    }
    uint64_t hash = racc_hash(c);
    racc *a = racc_slot(h->racc, h->racc_cap, hash, c);
    if (!a->host) {
        if (!(a->host = strdup(c->host))) {
            h->rollup_stale = 1;
            return nw_fail(err, NW_ERR_NOMEM, "out of memory for the roll-up");
        }
        a->ip = c->remote_ip;
        a->pid = c->pid;
        a->hash = hash;
        a->first = c->first_seen;
        a->last = c->last_seen;
        h->racc_n++;
    }
    a->conns += (uint64_t)conns;
    a->sent += (uint64_t)d_sent;
    a->recv += (uint64_t)d_recv;
    if (c->first_seen < a->first)
        a->first = c->first_seen;
    if (c->last_seen > a->last)
        a->last = c->last_seen;
    return NW_OK;
}

/* bytes_sent/received of row id as stored (before a rewrite). */
static nw_status old_bytes(part_handle *h, int64_t id, int64_t *sent, int64_t *recv,
                           nw_err *err)
{
    sqlite3_stmt *st = h->st[PS_CONN_OLD];
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *sent = sqlite3_column_int64(st, 0);
        *recv = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE
                   ? nw_fail(err, NW_ERR_CORRUPT, "%s: connection %lld vanished",
                             h->e->row.info.name, (long long)id)
                   : nw__sql_fail(h->db, h->e->row.info.name, err);
    return NW_OK;
}

/* Writes one connection row; note_key: remember an open one for resume
 * (the caller does that itself when the writer thread writes). */
static nw_status conn_write(nw_writer *w, const nw_conn *c, int note_key)
{
    nw_err *err = &w->err;
    if (!c || c->id <= 0 || !c->host || strlen(c->host) >= NW_HOST_MAX)
        return nw_fail(err, NW_ERR_INVALID, "connection without id or host");
    if (!keep_row(w, c->anchor, 'c', c))
        return NW_OK;
    part_handle *h = NULL;
    nw_status st = handle_for(w, c->anchor, &h, err);
    if (st == NW_OK)
        st = begin(h, err);
    if (st != NW_OK)
        return st;
    if (nw__bind_conn(h->st[PS_CONN_INS], c) != SQLITE_OK)
        return nw__sql_fail(h->db, h->e->row.info.name, err);
    st = step_write(h, PS_CONN_INS, err);
    if (st != NW_OK)
        return st;
    int inserted = sqlite3_changes(h->db) > 0;
    /* The roll-up's status is returned only after the bookkeeping below:
     * the connection row is written either way, and the catalog bounds
     * must cover it (the commit repairs the roll-up, see rollup_repair). */
    nw_status rst;
    int64_t d_sent, d_recv;
    if (inserted) {
        d_sent = (int64_t)c->bytes_sent;
        d_recv = (int64_t)c->bytes_received;
        rst = rollup_add(h, c, 1, d_sent, d_recv, err);
    } else {
        int64_t sent = 0, recv = 0;
        st = old_bytes(h, c->id, &sent, &recv, err);
        if (st == NW_OK && nw__bind_conn(h->st[PS_CONN_UPD], c) != SQLITE_OK)
            st = nw__sql_fail(h->db, h->e->row.info.name, err);
        if (st == NW_OK)
            st = step_write(h, PS_CONN_UPD, err);
        if (st != NW_OK)
            return st;
        /* Unsigned wrap-around: the difference of two stored int64s. */
        d_sent = (int64_t)(c->bytes_sent - (uint64_t)sent);
        d_recv = (int64_t)(c->bytes_received - (uint64_t)recv);
        rst = rollup_add(h, c, 0, d_sent, d_recv, err);
    }
    /* The same deltas into the store's hourly roll-up (hourly.h). */
    /* Not in a repair (nw__writer_only): the roll-up is repaired from the
     * step's own sums (checkpoint.c), which cover every partition. */
    nw_status hst = w->only ? NW_OK
                            : nw__hourly_add(&w->hw, c, inserted ? 1 : 0, d_sent, d_recv, err);
    if (rst == NW_OK)
        rst = hst;
    if (note_key && (c->state == NW_STATE_ATTEMPTED || c->state == NW_STATE_ESTABLISHED))
        bloom_add(w, c);
    part_entry *e = h->e;
    nw_cat_row *r = &e->row;
    if (c->first_seen < r->info.min_first_seen)
        r->info.min_first_seen = c->first_seen;
    if (c->first_seen > r->info.max_first_seen)
        r->info.max_first_seen = c->first_seen;
    if (c->last_seen > r->info.max_last_seen)
        r->info.max_last_seen = c->last_seen;
    if (c->id < r->min_conn_id)
        r->min_conn_id = c->id;
    if (c->id > r->max_conn_id)
        r->max_conn_id = c->id;
    if (inserted) {
        r->info.connections++;
        e->d_conn++;
    }
    e->dirty = 1;
    w->stats.conn_rows++;
    if (rst != NW_OK)
        return rst;
    return row_written(w, err);
}

static nw_status xfer_write(nw_writer *w, const nw_transfer *t)
{
    nw_err *err = &w->err;
    if (!t || t->conn_id <= 0)
        return nw_fail(err, NW_ERR_INVALID, "transfer without connection id");
    if (!keep_row(w, t->time, 't', t))
        return NW_OK;
    part_handle *h = NULL;
    nw_status st = handle_for(w, t->time, &h, err);
    if (st == NW_OK)
        st = begin(h, err);
    if (st != NW_OK)
        return st;
    /* INSERT and the adding UPDATE take the same ?1..?8. */
    for (int which = PS_XFER_INS; which <= PS_XFER_ADD; which++) {
        sqlite3_stmt *s = h->st[which];
        sqlite3_bind_int64(s, 1, t->conn_id);
        sqlite3_bind_int64(s, 2, t->time);
        sqlite3_bind_int64(s, 3, (int64_t)t->bytes_sent);
        sqlite3_bind_int64(s, 4, (int64_t)t->bytes_received);
        sqlite3_bind_int64(s, 5, (int64_t)t->bytes_retransmitted);
        sqlite3_bind_int64(s, 6, t->send_events);
        sqlite3_bind_int64(s, 7, t->receive_events);
        sqlite3_bind_int64(s, 8, t->retransmit_events);
        st = step_write(h, which, err);
        if (st != NW_OK)
            return st;
        if (which == PS_XFER_INS && sqlite3_changes(h->db) > 0) {
            h->e->row.info.transfers++;
            h->e->d_xfer++;
            break;
        }
    }
    nw_cat_row *r = &h->e->row;
    if (t->conn_id < r->min_xfer_conn_id)
        r->min_xfer_conn_id = t->conn_id;
    if (t->conn_id > r->max_xfer_conn_id)
        r->max_xfer_conn_id = t->conn_id;
    h->e->dirty = 1;
    w->stats.transfer_rows++;
    return row_written(w, err);
}

static nw_status fail_write(nw_writer *w, const nw_failure *f)
{
    nw_err *err = &w->err;
    if (!f || !f->host || strlen(f->host) >= NW_HOST_MAX)
        return nw_fail(err, NW_ERR_INVALID, "failure without host");
    if (!keep_row(w, f->time, 'f', f))
        return NW_OK;
    part_handle *h = NULL;
    nw_status st = handle_for(w, f->time, &h, err);
    if (st == NW_OK)
        st = begin(h, err);
    if (st != NW_OK)
        return st;
    sqlite3_stmt *s = h->st[PS_FAIL_INS];
    sqlite3_bind_int64(s, 1, f->time);
    sqlite3_bind_text(s, 2, f->host, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, f->event_id);
    sqlite3_bind_int(s, 4, f->proto);
    sqlite3_bind_int(s, 5, f->fail_proto);
    sqlite3_bind_int(s, 6, f->fail_code);
    st = step_write(h, PS_FAIL_INS, err);
    if (st != NW_OK)
        return st;
    h->e->row.info.failures++;
    h->e->d_fail++;
    h->e->dirty = 1;
    w->stats.failure_rows++;
    return row_written(w, err);
}

/* ---------------------------------------------------------- the thread */

/* Rows per block handed to the writer thread, and blocks in flight: one
 * block is ~110 KiB and about a thousand events' worth of rows. */
#define WQ_BLOCK_ROWS 256
#define WQ_BLOCKS 8

enum { WQ_CONN, WQ_XFER, WQ_FAIL };

typedef struct wq_row {
    int kind;
    int has_host;                  /* host copied (else NULL: invalid)    */
    union {
        nw_conn c;
        nw_transfer t;
        nw_failure f;
    } u;
    char host[NW_HOST_MAX];
} wq_row;

typedef struct wq_block {
    wq_row rows[WQ_BLOCK_ROWS];
    size_t n;
} wq_block;

typedef struct wq {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, room_cv;
    wq_block blocks[WQ_BLOCKS];
    /* Blocks head..tail-1 are the thread's; blocks[tail % WQ_BLOCKS] is the
     * one the caller fills.  tail is written by the caller only, head by
     * the thread only, both under mu. */
    uint64_t head, tail;
    int quit;                      /* under mu                            */
    nw_status thr_st;              /* the thread's first failure (mu)     */
    nw_status seen_st;             /* thr_st as the caller last saw it    */
} wq;

static nw_status write_row(nw_writer *w, wq_row *r)
{
    switch (r->kind) {
    case WQ_CONN:
        r->u.c.host = r->has_host ? r->host : NULL;
        return conn_write(w, &r->u.c, 0);
    case WQ_XFER:
        return xfer_write(w, &r->u.t);
    default:
        r->u.f.host = r->has_host ? r->host : NULL;
        return fail_write(w, &r->u.f);
    }
}

static void *writer_main(void *arg)
{
    nw_writer *w = arg;
    wq *q = w->q;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->quit && q->head == q->tail)
            pthread_cond_wait(&q->work_cv, &q->mu);
        if (q->head == q->tail)
            break;   /* quit, and everything written */
        wq_block *b = &q->blocks[q->head % WQ_BLOCKS];
        nw_status st = q->thr_st;
        pthread_mutex_unlock(&q->mu);
        for (size_t i = 0; i < b->n && st == NW_OK; i++)
            st = write_row(w, &b->rows[i]);
        pthread_mutex_lock(&q->mu);
        if (q->thr_st == NW_OK)
            q->thr_st = st;
        q->head++;
        pthread_cond_broadcast(&q->room_cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* Hands the block being filled to the thread (if it holds rows); then, if
 * all, waits until everything is written, else until a block is free. */
static void wq_hand(wq *q, int all)
{
    pthread_mutex_lock(&q->mu);
    if (q->blocks[q->tail % WQ_BLOCKS].n > 0) {
        q->tail++;
        pthread_cond_signal(&q->work_cv);
    }
    while (all ? q->head != q->tail : q->tail - q->head >= WQ_BLOCKS)
        pthread_cond_wait(&q->room_cv, &q->mu);
    q->seen_st = q->thr_st;
    pthread_mutex_unlock(&q->mu);
    q->blocks[q->tail % WQ_BLOCKS].n = 0;
}

/* Waits until every queued row is written; the thread then waits too, so
 * the caller may use SQLite.  The thread's status. */
static nw_status drain(nw_writer *w)
{
    if (!w->q)
        return NW_OK;
    wq_hand(w->q, 1);
    return w->q->seen_st;
}

/* The next row to fill, or NULL after the thread failed (seen_st). */
static wq_row *wq_next(wq *q)
{
    wq_block *b = &q->blocks[q->tail % WQ_BLOCKS];
    if (b->n == WQ_BLOCK_ROWS) {
        wq_hand(q, 0);
        b = &q->blocks[q->tail % WQ_BLOCKS];
    }
    if (q->seen_st != NW_OK)
        return NULL;
    return &b->rows[b->n++];
}

static int copy_host(wq_row *r, const char *host)
{
    size_t n = host ? strlen(host) : NW_HOST_MAX;
    r->has_host = n < NW_HOST_MAX;
    if (r->has_host)
        memcpy(r->host, host, n + 1);
    return r->has_host;
}

static nw_status sink_conn(void *ctx, const nw_conn *c)
{
    nw_writer *w = ctx;
    if (!w->q || !c) {
        nw_status st = drain(w);
        return st != NW_OK ? st : conn_write(w, c, 1);
    }
    wq_row *r = wq_next(w->q);
    if (!r)
        return w->q->seen_st;
    r->kind = WQ_CONN;
    r->u.c = *c;
    if (copy_host(r, c->host) &&
        (c->state == NW_STATE_ATTEMPTED || c->state == NW_STATE_ESTABLISHED))
        bloom_add(w, c);
    return NW_OK;
}

static nw_status sink_transfer(void *ctx, const nw_transfer *t)
{
    nw_writer *w = ctx;
    if (!w->q || !t) {
        nw_status st = drain(w);
        return st != NW_OK ? st : xfer_write(w, t);
    }
    wq_row *r = wq_next(w->q);
    if (!r)
        return w->q->seen_st;
    r->kind = WQ_XFER;
    r->u.t = *t;
    return NW_OK;
}

static nw_status sink_failure(void *ctx, const nw_failure *f)
{
    nw_writer *w = ctx;
    if (!w->q || !f) {
        nw_status st = drain(w);
        return st != NW_OK ? st : fail_write(w, f);
    }
    wq_row *r = wq_next(w->q);
    if (!r)
        return w->q->seen_st;
    r->kind = WQ_FAIL;
    r->u.f = *f;
    copy_host(r, f->host);
    return NW_OK;
}

/* Stops the thread after everything queued is written; its status. */
static nw_status thread_stop(nw_writer *w)
{
    wq *q = w->q;
    if (!q)
        return NW_OK;
    nw_status st = drain(w);
    pthread_mutex_lock(&q->mu);
    q->quit = 1;
    pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->room_cv);
    pthread_cond_destroy(&q->work_cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
    w->q = NULL;
    return st;
}

nw_status nw_writer_start_thread(nw_writer *w, nw_err *err)
{
    if (w->q)
        return NW_OK;
    wq *q = calloc(1, sizeof *q);
    if (!q)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory for the writer thread");
    if (pthread_mutex_init(&q->mu, NULL)) {
        free(q);
        return nw_fail(err, NW_ERR_NOMEM, "cannot create the writer thread's lock");
    }
    if (pthread_cond_init(&q->work_cv, NULL)) {
        pthread_mutex_destroy(&q->mu);
        free(q);
        return nw_fail(err, NW_ERR_NOMEM, "cannot create the writer thread's lock");
    }
    if (pthread_cond_init(&q->room_cv, NULL)) {
        pthread_cond_destroy(&q->work_cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return nw_fail(err, NW_ERR_NOMEM, "cannot create the writer thread's lock");
    }
    w->q = q;
    if (pthread_create(&q->thread, NULL, writer_main, w)) {
        pthread_cond_destroy(&q->room_cv);
        pthread_cond_destroy(&q->work_cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        w->q = NULL;
        return nw_fail(err, NW_ERR_NOMEM, "cannot start the writer thread");
    }
    return NW_OK;
}

/* Looks for key's open row in one partition: 1 found, 0 not, -1 error. */
static int resume_in(nw_writer *w, part_entry *e, const nw_conn *key, nw_time since,
                     nw_conn *out)
{
    part_handle *h = NULL;
    for (size_t i = 0; i < w->nopen && !h; i++)
        if (w->open[i]->e == e)
            h = w->open[i];
    if (!h && handle_open(w, e, &h, &w->err) != NW_OK)
        return -1;
    h->used = ++w->tick;
    /* Same rows either way; only the index read differs (sql.h). */
    sqlite3_stmt *st = h->st[key->local_port > key->remote_port ? PS_RESUME_LPORT : PS_RESUME];
    sqlite3_bind_blob(st, 1, key->remote_ip.b, 16, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, key->remote_port);
    sqlite3_bind_blob(st, 3, key->local_ip.b, 16, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, key->local_port);
    sqlite3_bind_int64(st, 5, key->pid);
    sqlite3_bind_text(st, 6, key->host, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, key->proto);
    sqlite3_bind_int(st, 8, key->ip_version);
    sqlite3_bind_int64(st, 9, since);
    sqlite3_bind_int(st, 10, NW_STATE_ATTEMPTED);
    sqlite3_bind_int(st, 11, NW_STATE_ESTABLISHED);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        nw__conn_from_row(st, out);
        /* The row's text dies at reset; the sink keeps a copy. */
        snprintf(w->resume_host, sizeof w->resume_host, "%s", out->host);
        out->host = w->resume_host;
        found = 1;
    } else if (rc != SQLITE_DONE) {
        nw__sql_fail(h->db, e->row.info.name, &w->err);
        found = -1;
    }
    sqlite3_reset(st);
    return found;
}

/*
 * Newest first over the partitions that can hold a row seen at or after
 * since (max_last_seen includes uncommitted writes); the writer's own
 * handle sees its uncommitted rows, so a connection written earlier in
 * this batch is found too.
 */
static int sink_resume(void *ctx, const nw_conn *key, nw_time since, nw_conn *out)
{
    nw_writer *w = ctx;
    if (key && key->host && out && since > w->prior_max_last_seen &&
        !bloom_maybe(w, key))
        return 0;
    if (drain(w) != NW_OK)
        return -1;
    if (!key || !key->host || !out) {
        nw_fail(&w->err, NW_ERR_INVALID, "resume without key");
        return -1;
    }
    for (size_t i = w->nparts; i-- > 0;) {
        part_entry *e = w->parts[i];
        if (e->row.info.connections == 0 || e->row.info.max_last_seen < since)
            continue;
        int r = resume_in(w, e, key, since, out);
        if (r != 0)
            return r;
    }
    return 0;
}

/* Takes a block of ids from the catalog counter in its own transaction. */
static nw_status reserve_block(nw_writer *w, int64_t n, nw_err *err)
{
    sqlite3 *cat = w->s->cat;
    nw_status st = nw__exec(cat, SQL_BEGIN_IMMEDIATE, "reserve ids", err);
    if (st != NW_OK)
        return st;
    int64_t next = 0;
    sqlite3_bind_text(w->meta_get, 1, SQL_META_KEY_NEXT_ID, -1, SQLITE_STATIC);
    int rc = sqlite3_step(w->meta_get);
    if (rc == SQLITE_ROW)
        next = sqlite3_column_int64(w->meta_get, 0);
    sqlite3_reset(w->meta_get);
    if (rc != SQLITE_ROW || next <= 0 || next > INT64_MAX - n) {
        st = rc == SQLITE_ROW || rc == SQLITE_DONE
                 ? nw_fail(err, NW_ERR_CORRUPT, "catalog of %s has a bad %s",
                           w->s->dir, SQL_META_KEY_NEXT_ID)
                 : nw__sql_fail(cat, "reserve ids", err);
    }
    if (st == NW_OK) {
        sqlite3_bind_text(w->meta_set, 1, SQL_META_KEY_NEXT_ID, -1, SQLITE_STATIC);
        sqlite3_bind_int64(w->meta_set, 2, next + n);
        rc = sqlite3_step(w->meta_set);
        sqlite3_reset(w->meta_set);
        if (rc != SQLITE_DONE)
            st = nw__sql_fail(cat, "reserve ids", err);
    }
    if (st == NW_OK)
        st = nw__exec(cat, SQL_COMMIT, "reserve ids", err);
    if (st != NW_OK) {
        sqlite3_exec(cat, SQL_ROLLBACK, NULL, NULL, NULL);
        return st;
    }
    w->id_next = next;
    w->id_end = next + n;
    return NW_OK;
}

static int64_t sink_reserve_ids(void *ctx, int64_t n)
{
    nw_writer *w = ctx;
    if (n <= 0 || n > INT64_MAX / 4) {
        nw_fail(&w->err, NW_ERR_INVALID, "cannot reserve %lld ids", (long long)n);
        return -1;
    }
    if (w->id_end - w->id_next < n &&
        (drain(w) != NW_OK ||
         reserve_block(w, n > NW_ID_BLOCK ? n : NW_ID_BLOCK, &w->err) != NW_OK))
        return -1;
    int64_t first = w->id_next;
    w->id_next += n;
    return first;
}

void nw_writer_sink(nw_writer *w, nw_sink *sink)
{
    memset(sink, 0, sizeof *sink);
    sink->ctx = w;
    sink->conn = sink_conn;
    sink->transfer = sink_transfer;
    sink->failure = sink_failure;
    sink->resume = sink_resume;
    sink->reserve_ids = sink_reserve_ids;
}

/* ------------------------------------------------------------ lifecycle */

nw_status nw_writer_open(nw_store *s, nw_writer **out, nw_err *err)
{
    if (!s || !out)
        return nw_fail(err, NW_ERR_INVALID, "no store");
    nw_writer *w = calloc(1, sizeof *w);
    if (!w)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    w->s = s;
    w->lock_fd = -1;
    pthread_mutex_init(&w->dl_mu, NULL);
    nw_status st = handles_grow(w, NW_WRITER_MAX_OPEN_PARTITIONS, err);
    if (st == NW_OK)
        st = nw__lock_acquire(s->dir, &w->lock_fd, err);
    if (st == NW_OK && sqlite3_db_readonly(s->cat, "main") == 1)
        st = nw_fail(err, NW_ERR_IO, "store %s is read-only", s->dir);
    if (st == NW_OK &&
        (sqlite3_prepare_v2(s->cat, SQL_PART_MERGE, -1, &w->cat_merge, NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(s->cat, SQL_META_GET, -1, &w->meta_get, NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(s->cat, SQL_META_SET, -1, &w->meta_set, NULL) != SQLITE_OK))
        st = nw__sql_fail(s->cat, "prepare catalog statements", err);
    if (st == NW_OK)
        st = nw__catalog_upgrade(s, err);
    if (st == NW_OK)
        st = entries_load(w, err);
    w->prior_max_last_seen = NW_TIME_MIN;
    for (size_t i = 0; st == NW_OK && i < w->nparts; i++)
        if (w->parts[i]->row.info.connections > 0 &&
            w->parts[i]->row.info.max_last_seen > w->prior_max_last_seen)
            w->prior_max_last_seen = w->parts[i]->row.info.max_last_seen;
    if (st == NW_OK)
        st = nw__dl_init(&w->dl, s->dir, s->cat, err);
    if (st != NW_OK) {
        nw__dl_close(&w->dl, NULL);
        handles_free(w);
        entries_free(w);
        free(w->parts);
        sqlite3_finalize(w->cat_merge);
        sqlite3_finalize(w->meta_get);
        sqlite3_finalize(w->meta_set);
        nw__lock_release(w->lock_fd);
        pthread_mutex_destroy(&w->dl_mu);
        free(w);
        return st;
    }
    s->writer = w;
    *out = w;
    return NW_OK;
}

nw_status nw_writer_close(nw_writer *w, nw_err *err)
{
    if (!w)
        return NW_OK;
    /* What was written before a failure of the thread is kept, as it is
     * when rows are written synchronously -- unless the caller discarded
     * the step (nw_writer_discard): then nothing more is committed. */
    nw_status tst = thread_stop(w);
    nw_status st = w->discard ? NW_OK : commit_all(w, tst == NW_OK ? err : NULL);
    if (tst != NW_OK)
        st = thread_failed(w, tst, err);
    /* A handle still in a transaction after a failed commit rolls back as
     * it closes. */
    handles_free(w);
    nw__procw_close(w->pw);
    nw__hourly_close(w->hw);   /* uncommitted sums (a discard) are dropped */
    nw_status st2 = nw__dl_close(&w->dl, st == NW_OK ? err : NULL);
    if (st == NW_OK)
        st = st2;
    entries_free(w);
    free(w->parts);
    free(w->bloom);
    nw__redo_free(&w->redo);
    free(w->only);
    sqlite3_finalize(w->cat_merge);
    sqlite3_finalize(w->meta_get);
    sqlite3_finalize(w->meta_set);
    nw__lock_release(w->lock_fd);
    if (w->s->writer == w)
        w->s->writer = NULL;
    pthread_mutex_destroy(&w->dl_mu);
    free(w);
    return st;
}

void nw_writer_discard(nw_writer *w)
{
    if (!w)
        return;
    w->discard = 1;
    nw_writer_close(w, NULL);
}

nw_status nw_writer_reject(nw_writer *w, const nw_rejection *r, nw_err *err)
{
    if (!r)
        return nw_fail(err, NW_ERR_INVALID, "no rejection");
    nw_time now = nw_time_now();
    /* Opening a file may write its length to the catalog (deadletter.c),
     * which the writer thread must not be using meanwhile. */
    if (nw__dl_opens(&w->dl, now)) {
        nw_status dst = drain(w);
        if (dst != NW_OK)
            return thread_failed(w, dst, err);
    }
    pthread_mutex_lock(&w->dl_mu);
    nw_status st = nw__dl_write(&w->dl, r, now, err);
    pthread_mutex_unlock(&w->dl_mu);
    if (st == NW_OK)
        w->stats.rejected_rows++;
    return st;
}

nw_status nw_writer_process(nw_writer *w, const nw_proc_event *pe, nw_err *err)
{
    /* processes.db and the commit count are the writer thread's while rows
     * are queued: process events are few, so waiting for the queue costs
     * little. */
    nw_status st = drain(w);
    if (st != NW_OK)
        return thread_failed(w, st, err);
    st = nw__procw_write(w->s, &w->pw, pe, err);
    if (st != NW_OK)
        return st;
    w->stats.process_rows++;
    return row_written(w, err);
}

void nw_writer_stats_get(nw_writer *w, nw_writer_stats *out)
{
    drain(w);   /* counts of rows still queued would be wrong */
    *out = w->stats;
}

const char *nw_writer_last_error(const nw_writer *w)
{
    return w->err.msg;
}

nw_status nw__writer_release_partitions(nw_writer *w, nw_err *err)
{
    nw_status st = drain(w);
    if (st != NW_OK)
        return thread_failed(w, st, err);
    st = commit_all(w, err);
    if (st != NW_OK)
        return st;
    handles_close_all(w);
    return NW_OK;
}

nw_status nw__writer_reload_catalog(nw_writer *w, nw_err *err)
{
    nw_status st = drain(w);
    if (st != NW_OK)
        return thread_failed(w, st, err);
    handles_close_all(w);
    entries_free(w);
    return entries_load(w, err);
}
