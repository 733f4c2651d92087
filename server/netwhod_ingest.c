/*
 * netwhod_ingest.c -- the one thread that writes the store.
 *
 * The store allows one writer, and the tracker is not thread-safe, so every
 * source of events (POST bodies now; --follow, --fifo and stdin later) hands
 * its bytes to this thread as a job and waits for the answer.  Every source
 * folds into one long-lived tracker (so a connection is not split by a
 * batch boundary); a job opens the writer, folds its events, and commits
 * and closes the writer.  A POSTed batch is also checkpointed before the
 * commit (nw_tracker_checkpoint: every changed connection written as it
 * stands, open ones as open, and kept), so its answer is final and
 * queryable when it returns.  An idle netwhod holds no lock that would
 * block `netwho ingest`.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "netwhod.h"
#include "netwho/checkpoint.h"
#include "netwho/nwtime.h"
#include "netwho/pipeline.h"
#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/tracker.h"
#include "netwho/writer.h"

/* Decode threads per batch: netwhod shares its cores with queries. */
#define NWD_INGEST_DECODE_THREADS 1

typedef struct job {
    const char *buf;
    size_t len;
    const char *key;            /* POST: Idempotency-Key or NULL */
    uint64_t body_hash;         /* with key: nw_ckpt_body_hash(buf)  */
    const nwd_batch *batch;     /* non-NULL: a live source's batch */
    nw_api_ingest_result *out;
    int done;
    struct job *next;
} job;

struct nwd_ingest {
    char *dir;
    char *default_host;
    nw_store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    job *head, *tail;
    int stopping;
    nw_api_ingest_stats stats;      /* under mu */
    /* The stream tracker: one for all live sources, kept across batches.
     * Its sink forwards to cur_sink, the sink of a writer opened only while
     * a batch or a tick runs, so the store lock is held for a moment per
     * second at most (netwho ingest can still write the store).  Owned by
     * the ingest thread. */
    nw_tracker *st_tracker;
    nw_writer *st_writer;
    nw_sink cur_sink;
    int st_live;                    /* fed since it last had nothing open */
    struct timespec st_last;        /* when the last batch came (monotonic) */
    /* Resume filter across steps (see fw_resume): the keys of every row
     * that a resume could continue.  The writer's own filter lives for one
     * step only and lets through anything older than the store's newest
     * row, which one step later is everything: every new UDP flow and every
     * TCP tuple first seen mid-connection probed SQLite, and a probe for a
     * busy server's address and port reads all of its rows (35 s for one
     * 50k-event POST on a 10M-event store).  Owned by the ingest thread. */
    uint64_t *rs_bloom;             /* NWD_RESUME_BLOOM_BITS, lazily made  */
    uint64_t rs_keys;               /* distinct-ish keys since the rebuild */
    uint64_t rs_conns;              /* catalog's connections after our
                                       last commit (another writer's rows
                                       change it: then rebuild)          */
    int rs_ready;
    /* Checkpoints (netwhod.h, checkpoint.h): ck.files are the followed
     * files' positions (under mu: the readers ask for theirs), ck.seq the
     * last committed checkpoint's number; ck.tracker is unused (each
     * commit saves a fresh snapshot). */
    nw_ckpt ck;
    int ck_on;                      /* every stream commit checkpoints   */
    int has_follow;                 /* a --follow source exists          */
    int ck_skip;                    /* this step changed nothing         */
    int st_ck, st_follow;           /* ck_on, has_follow for this step   */
    int ck_reload;                  /* reload the checkpoint (st_recover) */
    /* Idempotency keys (checkpoint.h): key_ok is the newest checkpoint
     * known complete -- loaded, or committed by this process -- so only
     * keys up to it count; st_key is the key the running POST commits. */
    uint64_t key_ok;
    const nw_ckpt_key *st_key;
    /* Backpressure and failure (under mu; see netwhod.h). */
    nwd_ingest_limits lim;
    uint64_t q_bytes;               /* POST bodies admitted, not answered */
    int down;                       /* off after a store error            */
    char down_msg[NW_ERR_MAX];
    unsigned fails;                 /* failed steps and probes in a row   */
    struct timespec retry_at;       /* next probe (monotonic)             */
    struct timespec down_since;
    int running;                    /* a job runs since run_start         */
    struct timespec run_start;
    struct timespec next_retention;
};

/* 8 Mbit = 1 MiB; rebuilt from the store after NWD_RESUME_BLOOM_KEYS keys,
 * which keeps false positives (one wasted probe each) near 1%. */
#define NWD_RESUME_BLOOM_BITS (1u << 23)
#define NWD_RESUME_BLOOM_KEYS 600000

typedef struct run_ctx {
    nwd_ingest *g;
    nw_status failed;
    nw_err err;
    nw_api_ingest_result *out;
    uint64_t by_id[64];
    uint64_t fed;                   /* events given to the tracker        */
} run_ctx;

static int on_event(void *p, const nw_event *ev)
{
    run_ctx *c = p;
    nw_status st = nw_tracker_feed(c->g->st_tracker, ev);
    if (st != NW_OK) {
        c->failed = st;
        return 1;
    }
    if (ev->event_id < 64)
        c->by_id[ev->event_id]++;
    c->fed++;
    return 0;
}

/* A process event into the process table (procstore.h). */
static int on_process(void *p, const nw_proc_event *pe)
{
    run_ctx *c = p;
    nw_status st = nw_writer_process(c->g->st_writer, pe, &c->err);
    if (st != NW_OK) {
        c->failed = st;
        return 1;
    }
    return 0;
}

static int on_reject(void *p, const nw_rejection *r)
{
    run_ctx *c = p;
    if ((unsigned)r->reason < NW_REJ__COUNT)
        c->out->rejected_by[r->reason]++;
    nw_status st = nw_writer_reject(c->g->st_writer, r, &c->err);
    if (st != NW_OK) {
        c->failed = st;
        return 1;
    }
    return 0;
}

static void fail(nw_api_ingest_result *out, nw_status st, const char *msg)
{
    out->status = st;
    snprintf(out->message, sizeof out->message, "%s", msg && msg[0] ? msg : nw_status_name(st));
}

static nw_status st_begin(nwd_ingest *g, nw_err *err);
static nw_status st_end(nwd_ingest *g, nw_status st, nw_err *err);
static void st_recover(nwd_ingest *g);
static unsigned go_down(nwd_ingest *g, const char *msg);

/*
 * One POSTed batch, decoded and folded into the stream tracker that the
 * live sources use too, then checkpointed (every held event folded, every
 * changed connection written, nothing forgotten) and committed: its
 * answer is final and queryable when it returns, as with a flush, but the
 * next batch continues the same connections in memory.  A tracker per POST,
 * flushed at its end, cost a resume lookup for every connection that went
 * on into the next batch -- for a DNS server's flows a scan of all its rows
 * -- and POST ingest slowed down as the store grew.  Fills j->out; returns
 * the event-id counts.
 */
static void run_job(nwd_ingest *g, job *j, uint64_t by_id[64])
{
    nw_api_ingest_result *out = j->out;
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.out = out;
    nw_err err = {{0}};
    nw_ckpt_key key;
    memset(&key, 0, sizeof key);
    if (j->key) {
        /* Jobs run one at a time on this thread: a POST with the same key
         * that was queued behind the first sees it committed here. */
        int found = 0;
        nw_status kst = nw_store_key_get(g->store, j->key, g->key_ok, &key, &found, &err);
        if (kst != NW_OK) {
            fail(out, kst, err.msg);
            return;
        }
        uint64_t hash = j->body_hash;
        if (found) {
            if (key.body_hash != hash) {
                fail(out, NW_ERR_INVALID, "the Idempotency-Key was used for another body");
                out->key_conflict = 1;
                return;
            }
            out->status = NW_OK;
            out->duplicate = 1;
            out->accepted = key.accepted;
            out->rejected = key.rejected;
            memcpy(out->rejected_by, key.rejected_by, sizeof out->rejected_by);
            return;
        }
        snprintf(key.key, sizeof key.key, "%s", j->key);
        key.body_hash = hash;
    }
    /* From the first POST on, every commit is checkpointed (and a store
     * with a checkpoint always is, ck_load): an idempotency key must be
     * one commit with its rows, the body one commit (no early commit every
     * NW_WRITER_BATCH_ROWS), and a restart must go on from exactly what
     * was committed -- a tick's commit without a checkpoint would be
     * repeated from an older snapshot after a crash, adding its transfer
     * bytes twice. */
    pthread_mutex_lock(&g->mu);
    g->ck_on = 1;
    pthread_mutex_unlock(&g->mu);
    nw_status st = st_begin(g, &err);
    if (st != NW_OK) {
        fail(out, st, err.msg);
        return;
    }
    nw_pipeline_opts popts = {.threads = NWD_INGEST_DECODE_THREADS,
                              .default_host = g->default_host,
                              .source = "POST /api/v1/events"};
    nw_pipeline_cbs cbs = {.on_event = on_event, .on_reject = on_reject,
                           .on_process = on_process};
    nw_pipeline_stats ps = {0};
    st = nw_pipeline_run_buf(j->buf, j->len, &popts, &cbs, &c, &ps, &err);
    if (c.failed != NW_OK) {
        const char *why = c.err.msg[0] ? c.err.msg : nw_writer_last_error(g->st_writer);
        fail(out, c.failed, why);
    } else if (st != NW_OK) {
        fail(out, st, err.msg);
    } else if (c.fed > 0) {
        /* A body with no usable event leaves the tracker as the last
         * checkpoint left it: nothing to write, and the store (and every
         * ETag) must not change because of bad input. */
        st = nw_tracker_checkpoint(g->st_tracker);
        if (st != NW_OK)
            fail(out, st, nw_writer_last_error(g->st_writer));
    }
    if (j->key) {
        /* The key goes into this commit's catalog transaction, with its
         * checkpoint: it counts exactly when the rows do. */
        key.accepted = ps.accepted;
        key.rejected = ps.rejected;
        memcpy(key.rejected_by, out->rejected_by, sizeof key.rejected_by);
        key.at = (int64_t)(nw_time_now() / NW_TICKS_PER_SEC);
        g->st_key = &key;
    }
    /* Without a key, a body with nothing usable needs no checkpoint. */
    g->ck_skip = c.fed == 0 && !j->key;
    st = st_end(g, out->status, &err);
    g->ck_skip = 0;
    g->st_key = NULL;
    if (st != NW_OK && out->status == NW_OK)
        fail(out, st, err.msg);
    out->accepted = ps.accepted;
    out->rejected = ps.rejected;
    if (out->status == NW_OK) {
        g->st_live = 1;
        clock_gettime(CLOCK_MONOTONIC, &g->st_last);
    }
    memcpy(by_id, c.by_id, sizeof c.by_id);
}

/* -------------------------------------------------------- the stream */

/* A connection's key (what resume matches on) as two bit positions. */
static void rs_bits(const nw_conn *c, uint32_t *a, uint32_t *b)
{
    uint64_t h = nw_writer_key_hash(c);   /* the writer's own filter's hash */
    *a = (uint32_t)h % NWD_RESUME_BLOOM_BITS;
    *b = (uint32_t)(h >> 32) % NWD_RESUME_BLOOM_BITS;
}

/* The store's newest last_seen and its connection rows (catalog). */
static void store_facts(nwd_ingest *g, nw_time *newest, uint64_t *conns)
{
    nw_partition_info *parts = NULL;
    size_t n = 0;
    nw_err err = {{0}};
    *newest = NW_TIME_MAX;       /* unknown: every resume probes */
    *conns = UINT64_MAX;
    if (nw_store_partitions(g->store, &parts, &n, &err) != NW_OK)
        return;
    *newest = NW_TIME_MIN;
    *conns = 0;
    for (size_t i = 0; i < n; i++) {
        *conns += parts[i].connections;
        if (parts[i].connections && parts[i].max_last_seen > *newest)
            *newest = parts[i].max_last_seen;
    }
    free(parts);
}

/* Adds c's key; 0, or -1 without memory (then the filter is off). */
static int rs_add(nwd_ingest *g, const nw_conn *c)
{
    if (!g->rs_bloom)
        g->rs_bloom = calloc(NWD_RESUME_BLOOM_BITS / 64, sizeof *g->rs_bloom);
    if (!g->rs_bloom) {
        g->rs_ready = 0;         /* no filter: probe every time */
        return -1;
    }
    uint32_t a, b;
    rs_bits(c, &a, &b);
    uint64_t ma = 1ULL << (a % 64), mb = 1ULL << (b % 64);
    if (!(g->rs_bloom[a / 64] & ma) || !(g->rs_bloom[b / 64] & mb))
        g->rs_keys++;
    g->rs_bloom[a / 64] |= ma;
    g->rs_bloom[b / 64] |= mb;
    return 0;
}

static int rs_scan_cb(void *p, const nw_conn *c)
{
    return rs_add(p, c) ? 1 : 0;
}

/*
 * Rebuilds the filter from the store: the keys of every open row last seen
 * within the TCP resume horizon of the store's newest row (no resume can
 * reach an older one).  One pass over the connections (~0.3 s at 10M
 * events), at the first step, after another writer changed the store, and
 * when the filter fills up.
 */
static void rs_rebuild(nwd_ingest *g, nw_time newest)
{
    g->rs_ready = 0;
    g->rs_keys = 0;
    if (g->rs_bloom)
        memset(g->rs_bloom, 0, NWD_RESUME_BLOOM_BITS / 8);
    static const int open_states[] = {NW_STATE_ATTEMPTED, NW_STATE_ESTABLISHED};
    for (size_t i = 0; i < 2; i++) {
        nw_query q;
        nw_query_init(&q);
        q.state = open_states[i];
        if (newest != NW_TIME_MAX && newest > NW_TIME_MIN + NW_TCP_RESUME_HORIZON)
            q.from = newest - NW_TCP_RESUME_HORIZON;
        nw_err err = {{0}};
        if (nw_query_connections(g->store, &q, rs_scan_cb, g, NULL, &err) != NW_OK) {
            nwd_log("ingest: resume filter: %s (every resume probes the store)", err.msg);
            return;
        }
        if (!g->rs_bloom)
            return;
    }
    g->rs_ready = 1;
}

static nw_status fw_conn(void *p, const nw_conn *c)
{
    nwd_ingest *g = p;
    if (c->state == NW_STATE_ATTEMPTED || c->state == NW_STATE_ESTABLISHED)
        rs_add(g, c);
    return g->cur_sink.conn(g->cur_sink.ctx, c);
}

static nw_status fw_transfer(void *p, const nw_transfer *t)
{
    nwd_ingest *g = p;
    return g->cur_sink.transfer(g->cur_sink.ctx, t);
}

static nw_status fw_failure(void *p, const nw_failure *f)
{
    nwd_ingest *g = p;
    return g->cur_sink.failure(g->cur_sink.ctx, f);
}

/*
 * A row can be resumed only if it is open (and recent).  The filter holds
 * the keys of the store's open rows when it was built, and every row
 * written open since went through fw_conn (another writer's change makes
 * st_begin rebuild it).  So a key the filter has never seen has no row to
 * continue: no probe.
 */
static int fw_resume(void *p, const nw_conn *key, nw_time since, nw_conn *out)
{
    nwd_ingest *g = p;
    if (g->rs_ready && key) {
        uint32_t a, b;
        rs_bits(key, &a, &b);
        if (!g->rs_bloom || !((g->rs_bloom[a / 64] >> (a % 64) & 1) &&
                              (g->rs_bloom[b / 64] >> (b % 64) & 1)))
            return 0;
    }
    return g->cur_sink.resume ? g->cur_sink.resume(g->cur_sink.ctx, key, since, out) : 0;
}

static int64_t fw_reserve(void *p, int64_t n)
{
    nwd_ingest *g = p;
    return g->cur_sink.reserve_ids(g->cur_sink.ctx, n);
}

static nw_tracker *stream_tracker_new(nwd_ingest *g)
{
    nw_sink fw = {.ctx = g, .conn = fw_conn, .transfer = fw_transfer,
                  .failure = fw_failure, .resume = fw_resume, .reserve_ids = fw_reserve};
    return nw_tracker_new(NULL, &fw);
}

/* Opens the writer for one step of the stream (and the tracker, once). */
static nw_status st_begin(nwd_ingest *g, nw_err *err)
{
    nw_status st = nw_writer_open(g->store, &g->st_writer, err);
    if (st != NW_OK)
        return st;
    /* Under the writer lock: nobody else writes until st_end. */
    nw_time newest;
    uint64_t conns;
    store_facts(g, &newest, &conns);
    if (!g->rs_ready || conns != g->rs_conns || g->rs_keys > NWD_RESUME_BLOOM_KEYS)
        rs_rebuild(g, newest);
    nw_writer_sink(g->st_writer, &g->cur_sink);
    pthread_mutex_lock(&g->mu);     /* set by the sources' thread at start */
    g->st_ck = g->ck_on;
    g->st_follow = g->has_follow;
    pthread_mutex_unlock(&g->mu);
    if (g->st_ck)
        nw_writer_hold(g->st_writer, 1);   /* rows wait for the checkpoint */
    if (!g->st_tracker) {
        g->st_tracker = stream_tracker_new(g);
        if (!g->st_tracker) {
            nw_writer_close(g->st_writer, err);
            g->st_writer = NULL;
            return nw_fail(err, NW_ERR_NOMEM, "out of memory");
        }
    }
    return NW_OK;
}

/* Records a followed file's new position (committed with the next step). */
static void ck_set_file(nwd_ingest *g, const nw_ckpt_file *pos)
{
    pthread_mutex_lock(&g->mu);
    size_t i = 0;
    while (i < g->ck.nfiles && strcmp(g->ck.files[i].path, pos->path) != 0)
        i++;
    if (i < NW_CKPT_MAX_FILES) {
        g->ck.files[i] = *pos;
        if (i == g->ck.nfiles)
            g->ck.nfiles++;
    }
    pthread_mutex_unlock(&g->mu);
}

/* Commits the step with a checkpoint: the positions and a snapshot of the
 * stream tracker, both as of the rows this commit makes durable. */
static nw_status ck_commit(nwd_ingest *g, nw_err *err)
{
    nw_ckpt ck = g->ck;             /* files copied; tracker our own */
    ck.tracker = NULL;
    ck.tracker_len = 0;
    ck.seq = g->ck.seq + 1;
    ck.key = g->st_key;
    ck.complete_seq = g->key_ok;
    if (g->st_tracker && nw_tracker_sync(g->st_tracker) != NW_OK) {
        snprintf(err->msg, sizeof err->msg, "%s", nw_writer_last_error(g->st_writer));
        return NW_ERR_SQL;
    }
    if (g->st_tracker &&
        nw_tracker_save(g->st_tracker, &ck.tracker, &ck.tracker_len) != NW_OK)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory for the checkpoint");
    nw_status st = nw_writer_commit_checkpoint(g->st_writer, &ck, err);
    free(ck.tracker);
    /* Even a failed commit may have reached the catalog: never reuse the
     * number.  Only a commit that succeeded makes its keys count. */
    g->ck.seq = ck.seq;
    if (st == NW_OK)
        g->key_ok = ck.seq;
    return st;
}

/* Commits and closes the step's writer; st is the step's status so far. */
static nw_status st_end(nwd_ingest *g, nw_status st, nw_err *err)
{
    if (st == NW_OK && g->st_ck && !g->ck_skip)
        st = ck_commit(g, err);
    if (st == NW_OK)
        st = nw_writer_commit(g->st_writer, err);
    if (st == NW_OK) {
        nw_time newest;
        store_facts(g, &newest, &g->rs_conns);   /* still under the lock */
        /* Keep every partition's WAL index in place, so that queries can
         * still open them when the disk fills up (store.h). */
        nw_err kerr = {{0}};
        if (nw_store_keep_open(g->store, &kerr) != NW_OK)
            nwd_log("ingest: %s", kerr.msg);
    } else {
        g->rs_ready = 0;         /* unsure what was written: start over */
    }
    nw_err cerr = {{0}};
    nw_status cst = NW_OK;
    if (st == NW_OK)
        cst = nw_writer_close(g->st_writer, &cerr);
    else
        nw_writer_discard(g->st_writer);  /* nothing of a failed step */
    g->st_writer = NULL;
    memset(&g->cur_sink, 0, sizeof g->cur_sink);
    if (st == NW_OK && cst != NW_OK) {
        *err = cerr;
        st = cst;
    }
    return st;
}

/* a - b in seconds. */
static double ts_sub(const struct timespec *a, const struct timespec *b)
{
    return (double)(a->tv_sec - b->tv_sec) + (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

/* Seconds since a on the monotonic clock. */
static double mono_since(const struct timespec *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return ts_sub(&now, a);
}

/*
 * 1 if a followed file's batch (pos: the position after it) is committed
 * already: a step can fail after the catalog committed its checkpoint (a
 * partition's or the roll-up's COMMIT failed); the reload then repairs
 * that commit and restores its position and snapshot, which hold the
 * batch -- fed again when its reader retries, it would count twice.  The
 * position only reaches the end of a batch with frames through that
 * batch's own commit, so equality says it was committed.
 */
static int batch_committed(nwd_ingest *g, const nwd_batch *b)
{
    if (!b->pos || (b->nev == 0 && b->nrej == 0 && b->nproc == 0))
        return 0;
    int done = 0;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < g->ck.nfiles; i++) {
        const nw_ckpt_file *f = &g->ck.files[i];
        if (strcmp(f->path, b->pos->path) == 0)
            done = f->dev == b->pos->dev && f->ino == b->pos->ino &&
                   f->offset == b->pos->offset;
    }
    pthread_mutex_unlock(&g->mu);
    return done;
}

static void run_stream(nwd_ingest *g, job *j, uint64_t by_id[64])
{
    const nwd_batch *b = j->batch;
    nw_api_ingest_result *out = j->out;
    nw_err err = {{0}};
    if (batch_committed(g, b)) {
        nwd_log("ingest: %s: the batch up to offset %llu was committed before its step "
                "failed; not fed again", b->source ? b->source : "follow",
                (unsigned long long)b->pos->offset);
        out->status = NW_OK;
        out->accepted = b->nev + b->nproc_frames;
        out->rejected = b->nrej;
        return;
    }
    nw_status st = st_begin(g, &err);
    if (st != NW_OK) {
        fail(out, st, err.msg);
        return;
    }
    if (b->pos)
        ck_set_file(g, b->pos);
    for (size_t i = 0; i < b->nev && st == NW_OK; i++) {
        st = nw_tracker_feed(g->st_tracker, &b->ev[i]);
        if (st != NW_OK)
            snprintf(err.msg, sizeof err.msg, "%s", nw_writer_last_error(g->st_writer));
        else if (b->ev[i].event_id < 64)
            by_id[b->ev[i].event_id]++;
    }
    for (size_t i = 0; i < b->nproc && st == NW_OK; i++)
        st = nw_writer_process(g->st_writer, b->proc[i], &err);
    for (size_t i = 0; i < b->nrej && st == NW_OK; i++) {
        const nwd_rej *r = &b->rej[i];
        nw_rejection rj = {.reason = r->reason, .source = b->source, .offset = r->offset,
                           .raw = r->raw, .raw_len = r->raw_len, .full_len = r->full_len,
                           .detail = r->detail};
        if ((unsigned)r->reason < NW_REJ__COUNT)
            out->rejected_by[r->reason]++;
        st = nw_writer_reject(g->st_writer, &rj, &err);
    }
    st = st_end(g, st, &err);
    if (st != NW_OK) {
        fail(out, st, err.msg);
        return;
    }
    out->status = NW_OK;
    out->accepted = b->nev + b->nproc_frames;
    out->rejected = b->nrej;
    g->st_live = 1;
    clock_gettime(CLOCK_MONOTONIC, &g->st_last);
}

/* Every second with no batch, time moves on without events: idle UDP
 * flows end and held events are folded even when every source has gone
 * quiet.  The clock is the stream's own -- its newest event time plus the
 * real time since the last batch -- not the wall clock: for a live source
 * the two agree, but a trace replayed from last month would otherwise look
 * months idle at the first pause and every flow would end.  Stops ticking
 * once nothing is open (the next batch starts it again). */
static void stream_tick(nwd_ingest *g)
{
    if (!g->st_tracker || !g->st_live || mono_since(&g->st_last) < 1.0)
        return;
    nw_err err = {{0}};
    nw_status st = st_begin(g, &err);
    if (st != NW_OK) {
        if (st != NW_ERR_BUSY)
            nwd_log("ingest: tick: %s", err.msg);
        return;                          /* try again next second */
    }
    nw_tracker_stats ts;
    nw_tracker_stats_get(g->st_tracker, &ts);
    nw_time now = ts.watermark + (nw_time)(mono_since(&g->st_last) * NW_TICKS_PER_SEC);
    st = nw_tracker_tick(g->st_tracker, now);
    if (st != NW_OK)
        snprintf(err.msg, sizeof err.msg, "%s", nw_writer_last_error(g->st_writer));
    /* A tick that folded nothing and ended nothing wrote nothing: no new
     * checkpoint (an idle netwhod with open connections would otherwise
     * write its snapshot every second). */
    nw_tracker_stats after;
    nw_tracker_stats_get(g->st_tracker, &after);
    g->ck_skip = after.events == ts.events && after.open == ts.open;
    st = st_end(g, st, &err);
    g->ck_skip = 0;
    if (st != NW_OK) {
        nwd_log("ingest: tick: %s", err.msg);
        if (st != NW_ERR_BUSY) {
            st_recover(g);
            go_down(g, err.msg);
        }
        return;
    }
    nw_tracker_stats_get(g->st_tracker, &ts);
    if (ts.open == 0)
        g->st_live = 0;
}

/* At stop: what the stream still holds is written (open TCP connections as
 * open, resumable by a later run) and committed. */
static void stream_flush(nwd_ingest *g)
{
    if (!g->st_tracker)
        return;
    nw_err err = {{0}};
    nw_status st = st_begin(g, &err);
    if (st == NW_OK && g->st_follow) {
        /* Followed files: the tracker is saved as it is (st_end), and the
         * next run goes on from it exactly. */
        st = st_end(g, st, &err);
        if (st != NW_OK)
            nwd_log("ingest: final checkpoint failed: %s", err.msg);
        nw_tracker_free(g->st_tracker);
        g->st_tracker = NULL;
        return;
    }
    if (st == NW_OK) {
        st = nw_tracker_flush(g->st_tracker);
        if (st != NW_OK)
            snprintf(err.msg, sizeof err.msg, "%s", nw_writer_last_error(g->st_writer));
        st = st_end(g, st, &err);
    }
    if (st != NW_OK)
        nwd_log("ingest: final flush of the live sources failed: %s", err.msg);
    nw_tracker_free(g->st_tracker);
    g->st_tracker = NULL;
}

/* ------------------------------------------------- failure and retry */

/* Seconds to wait before the next try after `fails` failures in a row:
 * 1, 2, 4, ... NWD_INGEST_RETRY_MAX_S. */
static unsigned backoff_s(unsigned fails)
{
    unsigned b = 1;
    while (fails-- > 1 && b < NWD_INGEST_RETRY_MAX_S)
        b *= 2;
    return b < NWD_INGEST_RETRY_MAX_S ? b : NWD_INGEST_RETRY_MAX_S;
}

/* Seconds until the next retry (at least 1); under mu. */
static unsigned retry_in(nwd_ingest *g)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double d = ts_sub(&g->retry_at, &now);
    return d < 1 ? 1u : (unsigned)(d + 0.999);
}

/*
 * After a failed step: what the step fed the stream tracker is not in the
 * store (its transaction rolled back), so the tracker goes back to what
 * the store holds -- the last committed checkpoint's snapshot and file
 * positions when checkpoints are on, else a fresh tracker (open
 * connections are then resumed from their rows).  The batch can then be
 * sent again without counting anything twice.
 */
static void st_recover(nwd_ingest *g)
{
    nw_tracker_free(g->st_tracker);
    g->st_tracker = NULL;
    g->st_live = 0;
    g->rs_ready = 0;
    /* The checkpoint is loaded once the store is writable again: a commit
     * cut between partition files is repaired by the load, which writes. */
    g->ck_reload = g->ck_on;
}

/* Loads the last committed checkpoint after st_recover; 0, or -1 with why. */
static int st_reload(nwd_ingest *g, char *why, size_t cap)
{
    if (!g->ck_reload)
        return 0;
    nw_ckpt ck;
    memset(&ck, 0, sizeof ck);
    char warn[NW_ERR_MAX];
    nw_err err = {{0}};
    if (nw_store_checkpoint_load(g->store, &ck, warn, sizeof warn, &err) != NW_OK) {
        snprintf(why, cap, "cannot reload the last checkpoint: %.400s", err.msg);
        return -1;
    }
    if (warn[0])
        nwd_log("ingest: checkpoint: %s", warn);
    g->ck_reload = 0;
    if (ck.tracker_len) {
        g->st_tracker = stream_tracker_new(g);
        if (g->st_tracker &&
            nw_tracker_load(g->st_tracker, ck.tracker, ck.tracker_len) != NW_OK) {
            nw_tracker_free(g->st_tracker);
            g->st_tracker = NULL;
        }
        if (g->st_tracker) {
            g->st_live = 1;
            clock_gettime(CLOCK_MONOTONIC, &g->st_last);
        }
    }
    pthread_mutex_lock(&g->mu);
    /* Positions of the failed step were never committed. */
    memcpy(g->ck.files, ck.files, sizeof ck.files);
    g->ck.nfiles = ck.nfiles;
    if (ck.seq > g->ck.seq)
        g->ck.seq = ck.seq;
    g->key_ok = ck.seq;          /* keys of the failed step do not count */
    pthread_mutex_unlock(&g->mu);
    nw_ckpt_clear(&ck);
    return 0;
}

/* Turns ingest off after a failure (msg: why) and schedules a retry. */
static unsigned go_down(nwd_ingest *g, const char *msg)
{
    pthread_mutex_lock(&g->mu);
    int was = g->down;
    g->down = 1;
    g->fails++;
    snprintf(g->down_msg, sizeof g->down_msg, "%s", msg);
    unsigned b = backoff_s(g->fails);
    clock_gettime(CLOCK_MONOTONIC, &g->retry_at);
    g->retry_at.tv_sec += b;
    if (!was)
        g->down_since = g->retry_at, g->down_since.tv_sec -= b;
    pthread_mutex_unlock(&g->mu);
    if (!was)
        nwd_log("ingest: ERROR: ingest is off: %s -- POSTs are answered 503, live sources "
                "wait, queries go on; retrying in %u s", msg, b);
    return b;
}

/*
 * Whether the store can be written again: enough free space, a file of
 * NWD_INGEST_PROBE_BYTES written and synced in its directory, and the
 * writer lock.  0 if so, else -1 with why.
 */
static int probe(nwd_ingest *g, char *why, size_t cap)
{
    struct statvfs vs;
    if (statvfs(g->dir, &vs) == 0 &&
        (uint64_t)vs.f_bavail * vs.f_frsize < NWD_INGEST_MIN_FREE) {
        snprintf(why, cap, "the store's file system has %llu bytes free",
                 (unsigned long long)vs.f_bavail * vs.f_frsize);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/.netwhod-probe", g->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, cap, "cannot create a file in %s: %s", g->dir, strerror(errno));
        return -1;
    }
    static const char zeros[4096];
    int rc = 0;
    for (size_t n = 0; n < NWD_INGEST_PROBE_BYTES && rc == 0; n += sizeof zeros)
        if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros)
            rc = -1;
    if (rc == 0 && fsync(fd) != 0)
        rc = -1;
    if (rc != 0)
        snprintf(why, cap, "cannot write in %s: %s", g->dir, strerror(errno));
    close(fd);
    unlink(path);
    if (rc != 0)
        return -1;
    nw_writer *w = NULL;
    nw_err err = {{0}};
    if (nw_writer_open(g->store, &w, &err) != NW_OK) {
        snprintf(why, cap, "%s", err.msg);
        return -1;
    }
    if (nw_writer_close(w, &err) != NW_OK) {
        snprintf(why, cap, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* While off: probes when the retry is due, and turns ingest on again. */
static void retry_if_due(nwd_ingest *g)
{
    pthread_mutex_lock(&g->mu);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int due = g->down && ts_sub(&now, &g->retry_at) >= 0;
    pthread_mutex_unlock(&g->mu);
    if (!due)
        return;
    char why[NW_ERR_MAX];
    if (nw_store_stale_readonly(g->store)) {
        /* Opened while the store was read-only: its catalog handle cannot
         * write, and its idle handles may be immutable. */
        nw_store *fresh = NULL;
        nw_err err = {{0}};
        nw_store_opts so = {.partition = NW_PART_DEFAULT, .create = 0};
        if (nw_store_open(g->dir, &so, &fresh, &err) != NW_OK) {
            go_down(g, err.msg);
            return;
        }
        nw_store_close(g->store);
        g->store = fresh;
        g->rs_ready = 0;
        if (nw_store_keep_open(g->store, &err) != NW_OK)
            nwd_log("ingest: %s", err.msg);
    }
    if (probe(g, why, sizeof why) != 0) {
        go_down(g, why);
        return;
    }
    if (st_reload(g, why, sizeof why) != 0) {
        go_down(g, why);
        return;
    }
    pthread_mutex_lock(&g->mu);
    g->down = 0;
    g->down_msg[0] = '\0';
    double off = ts_sub(&now, &g->down_since);
    pthread_mutex_unlock(&g->mu);
    nwd_log("ingest: the store is writable again: ingest is back on after %.0f s", off);
}

/* Background retention (--retention-days, --max-store-bytes,
 * --rollup-retention-days), when due. */
static void retention_if_due(nwd_ingest *g)
{
    const nw_retention *r = &g->lim.retention;
    if (!r->days && !r->max_bytes && !r->rollup_days)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ts_sub(&now, &g->next_retention) < 0)
        return;
    g->next_retention = now;
    g->next_retention.tv_sec += g->lim.retention_every_s ? g->lim.retention_every_s : 1;
    nw_writer *w = NULL;
    nw_err err = {{0}};
    size_t dropped = 0;
    nw_status st = nw_writer_open(g->store, &w, &err);
    if (st == NW_OK) {
        st = nw_store_apply_retention(g->store, r, &dropped, &err);
        nw_err cerr = {{0}};
        nw_status cst = nw_writer_close(w, &cerr);
        if (st == NW_OK && cst != NW_OK) {
            st = cst;
            err = cerr;
        }
    }
    if (st != NW_OK) {
        if (st != NW_ERR_BUSY)
            nwd_log("retention: %s", err.msg);
        return;
    }
    if (r->days || r->max_bytes)
        g->rs_ready = 0;         /* rows went: rebuild the resume filter */
    if (nw_store_keep_open(g->store, &err) != NW_OK)   /* retention closed them */
        nwd_log("retention: %s", err.msg);
    pthread_mutex_lock(&g->mu);
    g->stats.retention_runs++;
    g->stats.partitions_dropped += dropped;
    pthread_mutex_unlock(&g->mu);
    if (dropped)
        nwd_log("retention: dropped %zu partition%s", dropped, dropped == 1 ? "" : "s");
}

/* A job refused without running: ingest is off (under mu). */
static void refuse_down(nwd_ingest *g, nw_api_ingest_result *out)
{
    memset(out, 0, sizeof *out);
    out->status = NW_ERR_IO;
    snprintf(out->message, sizeof out->message, "ingest is off: %.480s", g->down_msg);
    out->retry_after = retry_in(g);
}

static void *ingest_main(void *p)
{
    nwd_ingest *g = p;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->head && !g->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            if (pthread_cond_timedwait(&g->wake, &g->mu, &until) != 0 && !g->head &&
                !g->stopping) {
                int down = g->down;
                pthread_mutex_unlock(&g->mu);
                if (down) {
                    retry_if_due(g);
                } else {
                    stream_tick(g);
                    retention_if_due(g);
                }
                pthread_mutex_lock(&g->mu);
            }
        }
        if (!g->head)
            break;                       /* stopping, and nothing queued */
        job *j = g->head;
        g->head = j->next;
        if (!g->head)
            g->tail = NULL;
        if (g->down) {
            /* Queued before ingest went off: sent back, not run. */
            refuse_down(g, j->out);
            j->done = 1;
            pthread_cond_broadcast(&g->done);
            continue;
        }
        g->running = 1;
        clock_gettime(CLOCK_MONOTONIC, &g->run_start);
        pthread_mutex_unlock(&g->mu);

        uint64_t by_id[64] = {0};
        if (j->batch) {
            run_stream(g, j, by_id);
            if (j->out->status != NW_OK)
                nwd_log("ingest: %s: batch of %zu events failed: %s", j->batch->source,
                        j->batch->nev, j->out->message);
        } else {
            run_job(g, j, by_id);
            if (j->out->status != NW_OK)
                nwd_log("ingest: batch of %zu bytes failed: %s", j->len, j->out->message);
        }
        if (j->out->status != NW_OK && j->out->status != NW_ERR_BUSY &&
            !j->out->key_conflict) {
            /* A store error or a full disk: nothing of the batch is kept
             * (the tracker goes back to the store's state), and ingest is
             * off until a retry finds the store writable. */
            st_recover(g);
            j->out->retry_after = go_down(g, j->out->message);
            pthread_mutex_lock(&g->mu);
            g->stats.errors++;
            pthread_mutex_unlock(&g->mu);
        } else if (j->out->status == NW_OK) {
            pthread_mutex_lock(&g->mu);
            g->fails = 0;
            pthread_mutex_unlock(&g->mu);
            retention_if_due(g);
        }

        pthread_mutex_lock(&g->mu);
        g->running = 0;
        g->stats.batches++;
        if (j->out->status != NW_OK) {
            g->stats.failed_batches++;
        } else if (!j->out->duplicate) {
            g->stats.accepted += j->out->accepted;
            g->stats.rejected += j->out->rejected;
            for (int i = 0; i < NW_REJ__COUNT; i++)
                g->stats.rejected_by[i] += j->out->rejected_by[i];
            for (int i = 0; i < 64; i++)
                g->stats.events_by_id[i] += by_id[i];
        }
        j->done = 1;
        pthread_cond_broadcast(&g->done);
    }
    pthread_mutex_unlock(&g->mu);
    stream_flush(g);
    return NULL;
}

/* Loads the newest complete checkpoint: positions, and the stream tracker
 * as it was at that commit. */
static nw_status ck_load(nwd_ingest *g, nw_err *err)
{
    char warn[NW_ERR_MAX];
    nw_status st = nw_store_checkpoint_load(g->store, &g->ck, warn, sizeof warn, err);
    if (st != NW_OK)
        return st;
    if (warn[0])
        nwd_log("ingest: checkpoint: %s", warn);
    g->key_ok = g->ck.seq;
    if (g->ck.seq == 0)
        return NW_OK;
    g->ck_on = 1;
    if (g->ck.tracker_len) {
        g->st_tracker = stream_tracker_new(g);
        if (!g->st_tracker)
            return nw_fail(err, NW_ERR_NOMEM, "out of memory");
        st = nw_tracker_load(g->st_tracker, g->ck.tracker, g->ck.tracker_len);
        if (st != NW_OK) {
            /* Another build's layout (or damage): the offsets still hold,
             * but what the tracker held at that commit cannot be had. */
            nwd_log("ingest: ERROR: checkpoint %llu: its tracker snapshot (%zu bytes) was "
                    "not written by this build of netwhod; following goes on from the "
                    "checkpointed offsets, but the events it held (up to the reorder "
                    "window) and the open connections' counts since they were last "
                    "written are lost",
                    (unsigned long long)g->ck.seq, g->ck.tracker_len);
            nw_tracker_free(g->st_tracker);
            g->st_tracker = NULL;
        }
    }
    if (g->st_tracker) {
        nw_tracker_stats ts;
        nw_tracker_stats_get(g->st_tracker, &ts);
        g->st_live = 1;
        clock_gettime(CLOCK_MONOTONIC, &g->st_last);
        nwd_log("ingest: checkpoint %llu: the stream goes on with %llu open connections",
                (unsigned long long)g->ck.seq, (unsigned long long)ts.open);
    }
    free(g->ck.tracker);
    g->ck.tracker = NULL;
    g->ck.tracker_len = 0;
    return NW_OK;
}

void nwd_ingest_checkpoints(nwd_ingest *g)
{
    pthread_mutex_lock(&g->mu);
    g->ck_on = g->has_follow = 1;
    pthread_mutex_unlock(&g->mu);
}

int nwd_ingest_follow_position(nwd_ingest *g, const char *path, nw_ckpt_file *out)
{
    int found = 0;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < g->ck.nfiles && !found; i++)
        if (strcmp(g->ck.files[i].path, path) == 0) {
            *out = g->ck.files[i];
            found = 1;
        }
    pthread_mutex_unlock(&g->mu);
    return found;
}

nw_status nwd_ingest_start(const char *dir, const char *default_host,
                           const nwd_ingest_limits *lim, nwd_ingest **out, nw_err *err)
{
    nwd_ingest *g = calloc(1, sizeof *g);
    if (!g)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
    if (lim)
        g->lim = *lim;
    if (!g->lim.queue_bytes)
        g->lim.queue_bytes = NWD_INGEST_QUEUE_BYTES;
    if (!g->lim.stall_s)
        g->lim.stall_s = NWD_INGEST_STALL_S;
    /* The first retention run comes a second after the start. */
    clock_gettime(CLOCK_MONOTONIC, &g->next_retention);
    g->next_retention.tv_sec += 1;
    g->dir = strdup(dir);
    g->default_host = default_host ? strdup(default_host) : NULL;
    nw_store_opts so = {.partition = NW_PART_DEFAULT, .create = 0};
    nw_status st = !g->dir || (default_host && !g->default_host)
                       ? nw_fail(err, NW_ERR_NOMEM, "out of memory")
                       : nw_store_open(dir, &so, &g->store, err);
    if (st != NW_OK) {
        free(g->dir);
        free(g->default_host);
        free(g);
        return st;
    }
    st = ck_load(g, err);
    if (st == NW_OK) {
        nw_err kerr = {{0}};
        if (nw_store_keep_open(g->store, &kerr) != NW_OK)
            nwd_log("ingest: %s", kerr.msg);
    }
    if (st != NW_OK) {
        nw_tracker_free(g->st_tracker);
        nw_store_close(g->store);
        free(g->dir);
        free(g->default_host);
        free(g);
        return st;
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    pthread_cond_init(&g->done, NULL);
    if (access(g->dir, W_OK) != 0) {
        /* A read-only store (a read-only mount, no permission): served for
         * queries; ingest starts off and is retried like after a failed
         * commit, so it comes on by itself once the store is writable. */
        char why[NW_ERR_MAX];
        snprintf(why, sizeof why, "the store directory %.400s is not writable: %s", g->dir,
                 strerror(errno));
        go_down(g, why);
    }
    if (pthread_create(&g->thread, NULL, ingest_main, g) != 0) {
        nw_store_close(g->store);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->wake);
        pthread_cond_destroy(&g->done);
        free(g->dir);
        free(g->default_host);
        free(g);
        return nw_fail(err, NW_ERR_NOMEM, "cannot start the ingest thread");
    }
    *out = g;
    return NW_OK;
}

static void submit(nwd_ingest *g, job *jp);

void nwd_ingest_submit(void *p, const char *buf, size_t len, const char *key,
                       nw_api_ingest_result *out)
{
    /* The fingerprint is taken here, on the request's own thread, so
     * that bodies of concurrent senders are hashed in parallel and not on
     * the one ingest thread (it cost that thread ~8% of its time). */
    job j = {buf, len, key, key ? nw_ckpt_body_hash(buf, len) : 0, NULL, out, 0, NULL};
    submit(p, &j);
}

void nwd_ingest_stream(nwd_ingest *g, const nwd_batch *b, nw_api_ingest_result *out)
{
    job j = {NULL, 0, NULL, 0, b, out, 0, NULL};
    submit(g, &j);
}

static void submit(nwd_ingest *g, job *jp)
{
    job j = *jp;                 /* lives on this stack until it is done */
    nw_api_ingest_result *out = j.out;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&g->mu);
    if (g->stopping) {
        pthread_mutex_unlock(&g->mu);
        fail(out, NW_ERR_BUSY, "netwhod is shutting down");
        return;
    }
    if (g->down) {
        refuse_down(g, out);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    if (g->tail)
        g->tail->next = &j;
    else
        g->head = &j;
    g->tail = &j;
    pthread_cond_signal(&g->wake);
    while (!j.done)
        pthread_cond_wait(&g->done, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

void nwd_ingest_stats(void *p, nw_api_ingest_stats *out)
{
    nwd_ingest *g = p;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    out->up = !g->down;
    snprintf(out->error, sizeof out->error, "%s", g->down ? g->down_msg : "");
    double run = g->running ? ts_sub(&now, &g->run_start) : 0;
    out->stalled_s = run > g->lim.stall_s ? run : 0;
    out->queue_bytes = g->q_bytes;
    out->queue_limit = g->lim.queue_bytes;
    pthread_mutex_unlock(&g->mu);
}

void nwd_ingest_stop(nwd_ingest *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    nw_store_close(g->store);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->wake);
    pthread_cond_destroy(&g->done);
    free(g->rs_bloom);
    free(g->dir);
    free(g->default_host);
    free(g);
}

int nwd_ingest_admit(nwd_ingest *g, uint64_t bytes, int more, char *why, size_t cap,
                     unsigned *retry_after)
{
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    if (g->down) {
        snprintf(why, cap, "ingest is off: %.480s", g->down_msg);
        *retry_after = retry_in(g);
        rc = 2;
    } else if ((more || g->q_bytes > 0) && g->q_bytes + bytes > g->lim.queue_bytes) {
        snprintf(why, cap,
                 "ingest is behind: %llu bytes of events are waiting (the limit is %llu); "
                 "send again later",
                 (unsigned long long)g->q_bytes, (unsigned long long)g->lim.queue_bytes);
        *retry_after = 1;
        g->stats.overloaded++;
        rc = 1;
    } else {
        g->q_bytes += bytes;
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
}

void nwd_ingest_release(nwd_ingest *g, uint64_t bytes)
{
    pthread_mutex_lock(&g->mu);
    g->q_bytes = g->q_bytes > bytes ? g->q_bytes - bytes : 0;
    pthread_mutex_unlock(&g->mu);
}
