/*
 * pipeline.c -- read, frame, decode on workers, deliver in order (see
 * pipeline.h).
 *
 * The calling thread reads and frames, copying each frame into the arena of
 * the batch being filled.  A full batch is submitted to the workers and the
 * next one of a ring of NW_PIPELINE_INFLIGHT batches is filled; batch k
 * always lives in ring[k % NW_PIPELINE_INFLIGHT], and a ring slot is reused
 * only after its batch was delivered, which is what bounds memory.  Workers
 * take submitted batches in order (one counter under the lock) and decode
 * every frame into a per-frame slot: the event, or the rejection reason and
 * detail.  The calling thread delivers batches strictly by sequence number,
 * so callbacks see input order whatever order the workers finish in.
 * Workers never call a callback.
 *
 * With one decode thread there are no workers: a batch is decoded by the
 * calling thread when submitted.
 *
 * A live source (a pipe that goes quiet) must not hold events back until a
 * batch fills: when a read comes back short and nothing more is ready, the
 * partial batch is submitted and everything in flight is delivered.
 */
#include "netwho/pipeline.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netwho/framer.h"
#include "netwho/procevent.h"

/* Bytes asked of each read(): large, so syscalls cost nothing per event. */
#define READ_CHUNK (1024 * 1024)

/* Frames per batch.  Bounds the per-batch slot array (one nw_event each);
 * real events are ~700 bytes, so a 1 MiB batch holds ~1500 of them. */
#define BATCH_FRAMES 4096

/* A batch from run_buf is decoded by the calling thread when the whole
 * buffer fits in one batch: starting threads would cost more. */
#define INLINE_BUF_MAX NW_PIPELINE_BATCH_BYTES

_Static_assert(NW_EVENT_MAX_BYTES <= NW_PIPELINE_BATCH_BYTES &&
                   NW_FRAME_KEEP_BYTES <= NW_PIPELINE_BATCH_BYTES,
               "a batch arena must hold the largest frame the framer emits");

typedef struct frame_ref {
    const char *data;    /* in the batch arena, or in run_buf's buffer */
    size_t len, full_len;
    uint64_t offset;
    nw_frame_kind kind;
} frame_ref;

/* A frame's result: the event, or why not (a rejection has no event).
 * A process event (procevent.h) comes with or instead of the event: proc
 * is owned by the slot until delivered (NULL otherwise), has_ev says
 * whether u.ev is set. */
typedef struct slot {
    nw_reject reason;
    uint8_t has_ev;
    nw_proc_event *proc;
    union {
        nw_event ev;
        char detail[NW_DETAIL_MAX];
    } u;
} slot;

typedef struct batch {
    char *arena;          /* NW_PIPELINE_BATCH_BYTES, allocated on first copy */
    size_t used;
    frame_ref *frames;    /* BATCH_FRAMES, allocated on first use */
    slot *slots;          /* BATCH_FRAMES */
    size_t n;
    int done;             /* decoded; written under the lock by workers */
} batch;

typedef struct pipeline {
    const nw_pipeline_cbs *cbs;
    void *ctx;
    const char *source, *host;
    /* Frames inside [stable, stable + stable_len) outlive the run: they are
     * referenced, not copied (run_buf). */
    const char *stable;
    size_t stable_len;

    batch ring[NW_PIPELINE_INFLIGHT];
    uint64_t filled;      /* batches submitted = sequence of the one filling */
    uint64_t delivered;   /* batches delivered                              */
    batch *cur;           /* ring[filled % INFLIGHT], or NULL before first  */

    int nworkers;         /* 0: decode on the calling thread */
    pthread_t workers[NW_PIPELINE_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    uint64_t next_work;   /* next batch a worker takes (under mu)          */
    int quit;             /* workers exit (under mu)                        */

    uint64_t bytes_read;
    nw_pipeline_stats st;
    nw_status status;     /* first failure; NW_OK while running */
    nw_err *err;
} pipeline;

/* ---- decoding (workers, or the calling thread) ------------------------ */

/* The rejection for a frame the framer already knows is not an event. */
static nw_reject frame_reject(const frame_ref *f, char *detail, size_t cap)
{
    switch (f->kind) {
    case NW_FRAME_GARBAGE:
        snprintf(detail, cap, "text that is not a JSON object");
        return NW_REJ_BAD_JSON;
    case NW_FRAME_TRUNCATED:
        snprintf(detail, cap, "the object is cut short");
        return NW_REJ_TRUNCATED;
    case NW_FRAME_TOO_LARGE:
        snprintf(detail, cap, "the object is %zu bytes, over %d", f->full_len,
                 NW_EVENT_MAX_BYTES);
        return NW_REJ_TOO_LARGE;
    case NW_FRAME_NOT_OBJECT:
        snprintf(detail, cap, "an array element that is not an object");
        return NW_REJ_NOT_OBJECT;
    case NW_FRAME_OBJECT:
        break;
    }
    snprintf(detail, cap, "unknown frame");
    return NW_REJ_BAD_JSON;
}

static void decode_batch(batch *b, const char *host)
{
    char detail[NW_DETAIL_MAX];
    for (size_t i = 0; i < b->n; i++) {
        const frame_ref *f = &b->frames[i];
        slot *s = &b->slots[i];
        if (f->kind == NW_FRAME_OBJECT) {
            int has_ev = 0;
            s->reason = nw_decode_record(f->data, f->len, host, &s->u.ev, &has_ev,
                                         &s->proc, detail, sizeof detail);
            s->has_ev = (uint8_t)has_ev;
            if (s->reason == NW_ACCEPTED)
                continue;
        } else {
            s->proc = NULL;
            s->reason = frame_reject(f, detail, sizeof detail);
        }
        memcpy(s->u.detail, detail, sizeof detail);
    }
}

static void *worker_main(void *arg)
{
    pipeline *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->next_work == p->filled)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->quit)
            break;
        batch *b = &p->ring[p->next_work++ % NW_PIPELINE_INFLIGHT];
        pthread_mutex_unlock(&p->mu);
        decode_batch(b, p->host);
        pthread_mutex_lock(&p->mu);
        b->done = 1;
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- delivery (calling thread) ---------------------------------------- */

/* Hands batch b's results to the callbacks.  0, or 1 if one stopped. */
static int deliver(pipeline *p, batch *b)
{
    const nw_pipeline_cbs *cbs = p->cbs;
    for (size_t i = 0; i < b->n; i++) {
        slot *s = &b->slots[i];
        int rc = 0;
        p->st.events++;
        if (s->reason == NW_ACCEPTED) {
            p->st.accepted++;
            if (s->proc) {
                p->st.processes++;
                rc = cbs->on_process ? cbs->on_process(p->ctx, s->proc) : 0;
                free(s->proc);
                s->proc = NULL;
            }
            if (!rc && s->has_ev)
                rc = cbs->on_event ? cbs->on_event(p->ctx, &s->u.ev) : 0;
        } else {
            const frame_ref *f = &b->frames[i];
            nw_rejection r = {
                .reason = s->reason,
                .source = p->source,
                .offset = f->offset,
                .raw = f->data,
                .raw_len = f->len,
                .full_len = f->full_len,
                .detail = s->u.detail,
            };
            p->st.rejected++;
            rc = cbs->on_reject ? cbs->on_reject(p->ctx, &r) : 0;
        }
        if (rc) {
            p->status = nw_fail(p->err, NW_ERR_INVALID,
                                "a callback stopped the run at offset %llu of %s",
                                (unsigned long long)b->frames[i].offset, p->source);
            return 1;
        }
    }
    if (cbs->on_progress)
        cbs->on_progress(p->ctx, p->bytes_read);
    return 0;
}

/*
 * Delivers the oldest batch in flight if it is decoded, or, if wait, once it
 * is.  Returns 1 if one was delivered, 0 if none was ready, -1 if a
 * callback stopped the run.
 */
static int deliver_next(pipeline *p, int wait)
{
    if (p->delivered == p->filled)
        return 0;
    batch *b = &p->ring[p->delivered % NW_PIPELINE_INFLIGHT];
    if (p->nworkers > 0) {
        pthread_mutex_lock(&p->mu);
        while (wait && !b->done)
            pthread_cond_wait(&p->done_cv, &p->mu);
        int done = b->done;
        pthread_mutex_unlock(&p->mu);
        if (!done)
            return 0;
    }
    p->delivered++;
    if (deliver(p, b))
        return -1;
    return 1;
}

/* Delivers every batch already decoded, without waiting.  0 or -1. */
static int deliver_ready(pipeline *p)
{
    int rc;
    while ((rc = deliver_next(p, 0)) > 0)
        ;
    return rc;
}

/* Delivers everything in flight, waiting for it.  0 or -1. */
static int deliver_all(pipeline *p)
{
    while (p->delivered < p->filled)
        if (deliver_next(p, 1) < 0)
            return -1;
    return 0;
}

/* ---- filling (calling thread) ----------------------------------------- */

/* Makes ring[filled % INFLIGHT] the batch being filled, once the batch that
 * last used that slot was delivered.  0, or -1 (stopped or ENOMEM). */
static int open_batch(pipeline *p)
{
    while (p->filled - p->delivered >= NW_PIPELINE_INFLIGHT)
        if (deliver_next(p, 1) < 0)
            return -1;
    batch *b = &p->ring[p->filled % NW_PIPELINE_INFLIGHT];
    if (!b->frames) {
        b->frames = malloc(BATCH_FRAMES * sizeof *b->frames);
        b->slots = calloc(BATCH_FRAMES, sizeof *b->slots);   /* proc NULL */
        if (!b->frames || !b->slots) {
            p->status = nw_fail(p->err, NW_ERR_NOMEM, "out of memory for a batch");
            return -1;
        }
    }
    b->n = 0;
    b->used = 0;
    b->done = 0;
    p->cur = b;
    return 0;
}

/* Hands the batch being filled to the decoders and opens the next one. */
static int submit(pipeline *p)
{
    batch *b = p->cur;
    p->cur = NULL;
    if (p->nworkers == 0) {
        decode_batch(b, p->host);
        b->done = 1;
        p->filled++;
    } else {
        pthread_mutex_lock(&p->mu);
        p->filled++;
        pthread_cond_signal(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    if (deliver_ready(p))
        return -1;
    return open_batch(p);
}

/* Submits the batch being filled if it holds anything. */
static int submit_partial(pipeline *p)
{
    if (p->cur && p->cur->n > 0)
        return submit(p);
    return 0;
}

static int frame_is_stable(const pipeline *p, const nw_frame *f)
{
    uintptr_t lo = (uintptr_t)p->stable, d = (uintptr_t)f->data;
    return p->stable && d >= lo && d - lo <= p->stable_len &&
           f->len <= p->stable_len - (d - lo);
}

/* Framer callback: adds one frame to the batch being filled. */
static int on_frame(void *arg, const nw_frame *f)
{
    pipeline *p = arg;
    batch *b = p->cur;
    int stable = frame_is_stable(p, f);

    if (b->n == BATCH_FRAMES || (!stable && b->used + f->len > NW_PIPELINE_BATCH_BYTES)) {
        if (submit(p))
            return 1;
        b = p->cur;
    }
    frame_ref *r = &b->frames[b->n++];
    r->len = f->len;
    r->full_len = f->full_len;
    r->offset = f->offset;
    r->kind = f->kind;
    if (stable) {
        r->data = f->data;
        return 0;
    }
    if (!b->arena) {
        b->arena = malloc(NW_PIPELINE_BATCH_BYTES);
        if (!b->arena) {
            b->n--;
            p->status = nw_fail(p->err, NW_ERR_NOMEM, "out of memory for a batch");
            return 1;
        }
    }
    memcpy(b->arena + b->used, f->data, f->len);
    r->data = b->arena + b->used;
    b->used += f->len;
    return 0;
}

/* ---- set-up and tear-down --------------------------------------------- */

static int decode_threads(const nw_pipeline_opts *opts)
{
    long n = opts && opts->threads > 0 ? opts->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > NW_PIPELINE_MAX_THREADS)
        n = NW_PIPELINE_MAX_THREADS;
    return (int)n;
}

/* Sets p up and starts the workers (threads > 1).  Thread creation that
 * fails only means fewer workers; with none, decoding is inline. */
static nw_status pipeline_init(pipeline *p, int threads, const nw_pipeline_opts *opts,
                               const nw_pipeline_cbs *cbs, void *ctx, nw_err *err)
{
    memset(p, 0, sizeof *p);
    if (!cbs)
        return nw_fail(err, NW_ERR_INVALID, "the pipeline needs callbacks");
    p->cbs = cbs;
    p->ctx = ctx;
    p->source = opts && opts->source ? opts->source : "-";
    p->host = opts ? opts->default_host : NULL;
    p->err = err;
    if (threads > 1) {
        if (pthread_mutex_init(&p->mu, NULL))
            return nw_fail(err, NW_ERR_NOMEM, "cannot create the pipeline's lock");
        if (pthread_cond_init(&p->work_cv, NULL)) {
            pthread_mutex_destroy(&p->mu);
            return nw_fail(err, NW_ERR_NOMEM, "cannot create the pipeline's lock");
        }
        if (pthread_cond_init(&p->done_cv, NULL)) {
            pthread_cond_destroy(&p->work_cv);
            pthread_mutex_destroy(&p->mu);
            return nw_fail(err, NW_ERR_NOMEM, "cannot create the pipeline's lock");
        }
        for (int i = 0; i < threads; i++) {
            if (pthread_create(&p->workers[p->nworkers], NULL, worker_main, p))
                break;
            p->nworkers++;
        }
        if (p->nworkers == 0) {
            pthread_cond_destroy(&p->done_cv);
            pthread_cond_destroy(&p->work_cv);
            pthread_mutex_destroy(&p->mu);
        }
    }
    if (open_batch(p))
        return p->status;
    return NW_OK;
}

/* Stops and joins the workers, frees every batch. */
static void pipeline_free(pipeline *p)
{
    if (p->nworkers > 0) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->nworkers; i++)
            pthread_join(p->workers[i], NULL);
        pthread_cond_destroy(&p->done_cv);
        pthread_cond_destroy(&p->work_cv);
        pthread_mutex_destroy(&p->mu);
        p->nworkers = 0;
    }
    for (int i = 0; i < NW_PIPELINE_INFLIGHT; i++) {
        /* Process events of batches decoded but never delivered (a stop);
         * delivered and never-decoded slots hold NULL. */
        for (size_t k = 0; p->ring[i].slots && k < BATCH_FRAMES; k++)
            free(p->ring[i].slots[k].proc);
        free(p->ring[i].arena);
        free(p->ring[i].frames);
        free(p->ring[i].slots);
    }
}

/* The framer's return value to a status: a stop set p->status already. */
static nw_status feed_status(pipeline *p, int rc)
{
    if (rc == 0)
        return NW_OK;
    if (p->status != NW_OK)
        return p->status;
    return p->status = nw_fail(p->err, NW_ERR_NOMEM, "out of memory while framing");
}

/* Ends the stream: the framer's last frames, the last batch, every delivery. */
static nw_status pipeline_finish(pipeline *p, nw_framer *fr)
{
    nw_status st = feed_status(p, nw_framer_finish(fr, on_frame, p));
    if (st != NW_OK)
        return st;
    if (submit_partial(p) || deliver_all(p))
        return p->status;
    return NW_OK;
}

static void pipeline_end(pipeline *p, nw_framer *fr, nw_pipeline_stats *stats)
{
    p->st.bytes = p->bytes_read;
    if (stats)
        *stats = p->st;
    nw_framer_free(fr);
    pipeline_free(p);
}

/* ---- the two sources --------------------------------------------------- */

/* 1 if fd has nothing to read right now (a live source that went quiet). */
static int source_idle(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    do
        rc = poll(&pfd, 1, 0);
    while (rc < 0 && errno == EINTR);
    return rc == 0;
}

nw_status nw_pipeline_run_fd(int fd, const nw_pipeline_opts *opts,
                             const nw_pipeline_cbs *cbs, void *ctx,
                             nw_pipeline_stats *stats, nw_err *err)
{
    pipeline p;
    nw_framer *fr = NULL;
    char *rbuf = NULL;
    nw_status st = pipeline_init(&p, decode_threads(opts), opts, cbs, ctx, err);
    if (st != NW_OK)
        goto done;
    fr = nw_framer_new(NW_EVENT_MAX_BYTES);
    rbuf = malloc(READ_CHUNK);
    if (!fr || !rbuf) {
        st = nw_fail(err, NW_ERR_NOMEM, "out of memory for the read buffer");
        goto done;
    }
    for (;;) {
        ssize_t n = read(fd, rbuf, READ_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            st = nw_fail(err, NW_ERR_IO, "read %s: %s", p.source, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        p.bytes_read += (uint64_t)n;
        st = feed_status(&p, nw_framer_feed(fr, rbuf, (size_t)n, on_frame, &p));
        if (st != NW_OK)
            goto done;
        if ((size_t)n < READ_CHUNK && source_idle(fd) &&
            (submit_partial(&p) || deliver_all(&p))) {
            st = p.status;
            goto done;
        }
    }
    st = pipeline_finish(&p, fr);
done:
    free(rbuf);
    pipeline_end(&p, fr, stats);
    return st;
}

nw_status nw_pipeline_run_buf(const char *buf, size_t len,
                              const nw_pipeline_opts *opts,
                              const nw_pipeline_cbs *cbs, void *ctx,
                              nw_pipeline_stats *stats, nw_err *err)
{
    pipeline p;
    nw_framer *fr = NULL;
    int threads = len <= INLINE_BUF_MAX ? 1 : decode_threads(opts);
    nw_status st = pipeline_init(&p, threads, opts, cbs, ctx, err);
    if (st != NW_OK)
        goto done;
    p.stable = buf;
    p.stable_len = len;
    fr = nw_framer_new(NW_EVENT_MAX_BYTES);
    if (!fr) {
        st = nw_fail(err, NW_ERR_NOMEM, "out of memory for the framer");
        goto done;
    }
    /* Fed in read-sized pieces so that progress is reported as for a file;
     * frames within a piece point into buf and are not copied. */
    for (size_t off = 0; off < len; off += READ_CHUNK) {
        size_t n = len - off < READ_CHUNK ? len - off : READ_CHUNK;
        p.bytes_read += n;
        st = feed_status(&p, nw_framer_feed(fr, buf + off, n, on_frame, &p));
        if (st != NW_OK)
            goto done;
    }
    st = pipeline_finish(&p, fr);
done:
    pipeline_end(&p, fr, stats);
    return st;
}
