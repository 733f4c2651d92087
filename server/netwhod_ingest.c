/*
 * netwhod_ingest.c -- the one thread that writes the store.
 *
 * The store allows one writer, and the tracker is not thread-safe, so every
 * source of events (POST bodies now; --follow, --fifo and stdin later) hands
 * its bytes to this thread as a job and waits for the answer.  A job is one
 * ingest run: writer opened, events folded, tracker flushed, committed,
 * writer closed.  Flushing per batch is what `netwho ingest` does per run
 * (open connections are written as open and resumed by the next batch,
 * tracker.h), so a batch's answer is final and queryable when it returns,
 * and an idle netwhod holds no lock that would block `netwho ingest`.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwhod.h"
#include "netwho/pipeline.h"
#include "netwho/store.h"
#include "netwho/tracker.h"
#include "netwho/writer.h"

/* Decode threads per batch: netwhod shares its cores with queries. */
#define NWD_INGEST_DECODE_THREADS 1

typedef struct job {
    const char *buf;
    size_t len;
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
};

typedef struct run_ctx {
    nw_tracker *tracker;
    nw_writer *writer;
    nw_status failed;
    nw_err err;
    nw_api_ingest_result *out;
    uint64_t by_id[64];
} run_ctx;

static int on_event(void *p, const nw_event *ev)
{
    run_ctx *c = p;
    nw_status st = nw_tracker_feed(c->tracker, ev);
    if (st != NW_OK) {
        c->failed = st;
        return 1;
    }
    if (ev->event_id < 64)
        c->by_id[ev->event_id]++;
    return 0;
}

static int on_reject(void *p, const nw_rejection *r)
{
    run_ctx *c = p;
    if ((unsigned)r->reason < NW_REJ__COUNT)
        c->out->rejected_by[r->reason]++;
    nw_status st = nw_writer_reject(c->writer, r, &c->err);
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

/* One batch, start to commit.  Fills j->out; returns the event-id counts. */
static void run_job(nwd_ingest *g, job *j, uint64_t by_id[64])
{
    nw_api_ingest_result *out = j->out;
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.out = out;
    nw_err err = {{0}};
    nw_status st = nw_writer_open(g->store, &c.writer, &err);
    if (st != NW_OK) {
        fail(out, st, err.msg);
        return;
    }
    nw_sink sink;
    nw_writer_sink(c.writer, &sink);
    c.tracker = nw_tracker_new(NULL, &sink);
    if (!c.tracker) {
        fail(out, NW_ERR_NOMEM, "out of memory");
        nw_writer_close(c.writer, &err);
        return;
    }
    nw_pipeline_opts popts = {.threads = NWD_INGEST_DECODE_THREADS,
                              .default_host = g->default_host,
                              .source = "POST /api/v1/events"};
    nw_pipeline_cbs cbs = {.on_event = on_event, .on_reject = on_reject};
    nw_pipeline_stats ps = {0};
    st = nw_pipeline_run_buf(j->buf, j->len, &popts, &cbs, &c, &ps, &err);
    if (c.failed != NW_OK) {
        const char *why = c.err.msg[0] ? c.err.msg : nw_writer_last_error(c.writer);
        fail(out, c.failed, why);
    } else if (st != NW_OK) {
        fail(out, st, err.msg);
    } else {
        st = nw_tracker_flush(c.tracker);
        if (st == NW_OK)
            st = nw_writer_commit(c.writer, &err);
        if (st != NW_OK)
            fail(out, st, err.msg[0] ? err.msg : nw_writer_last_error(c.writer));
        else
            out->status = NW_OK;
    }
    out->accepted = ps.accepted;
    out->rejected = ps.rejected;
    nw_tracker_free(c.tracker);
    nw_err cerr = {{0}};
    if (nw_writer_close(c.writer, &cerr) != NW_OK && out->status == NW_OK)
        fail(out, NW_ERR_IO, cerr.msg);
    memcpy(by_id, c.by_id, sizeof c.by_id);
}

static void *ingest_main(void *p)
{
    nwd_ingest *g = p;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->head && !g->stopping)
            pthread_cond_wait(&g->wake, &g->mu);
        if (!g->head)
            break;                       /* stopping, and nothing queued */
        job *j = g->head;
        g->head = j->next;
        if (!g->head)
            g->tail = NULL;
        pthread_mutex_unlock(&g->mu);

        uint64_t by_id[64] = {0};
        run_job(g, j, by_id);
        if (j->out->status != NW_OK)
            nwd_log("ingest: batch of %zu bytes failed: %s", j->len, j->out->message);

        pthread_mutex_lock(&g->mu);
        g->stats.batches++;
        if (j->out->status != NW_OK) {
            g->stats.failed_batches++;
        } else {
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
    return NULL;
}

nw_status nwd_ingest_start(const char *dir, const char *default_host, nwd_ingest **out,
                           nw_err *err)
{
    nwd_ingest *g = calloc(1, sizeof *g);
    if (!g)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory");
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
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    pthread_cond_init(&g->done, NULL);
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

void nwd_ingest_submit(void *p, const char *buf, size_t len, nw_api_ingest_result *out)
{
    nwd_ingest *g = p;
    job j = {buf, len, out, 0, NULL};
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&g->mu);
    if (g->stopping) {
        pthread_mutex_unlock(&g->mu);
        fail(out, NW_ERR_BUSY, "netwhod is shutting down");
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
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
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
    free(g->dir);
    free(g->default_host);
    free(g);
}
