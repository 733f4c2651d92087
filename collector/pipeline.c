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
#include "scan.h"

/* Frames per batch.  Bounds the per-batch slot array (one nw_event each);
 * real events are ~700 bytes, so a 1 MiB piece holds ~1500 of them.  A
 * piece with more frames is framed by the calling thread instead. */
#define BATCH_FRAMES 4096

/* A batch from run_buf is framed and decoded by the calling thread when the
 * whole buffer fits in one piece: starting threads would cost more. */
#define INLINE_BUF_MAX NW_PIPELINE_BATCH_BYTES

/* Room for copies of rejected frames the framer handed out from its own
 * buffer (frames over several lines, the one cut at the piece's end): their
 * kept bytes add up to at most the piece plus one frame. */
#define SPILL_BYTES (NW_PIPELINE_BATCH_BYTES + NW_EVENT_MAX_BYTES)

_Static_assert(NW_EVENT_MAX_BYTES <= NW_PIPELINE_BATCH_BYTES,
               "a piece must be able to hold the largest event");

/* A frame's result: the event, or why not (a rejection has no event).  A
 * process event (procevent.h) comes with or instead of the event: proc is
 * owned by the slot until delivered or discarded (NULL otherwise), has_ev
 * says whether u.ev is set. */
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
    /* The piece: set by the calling thread before submitting. */
    char *buf;            /* NW_PIPELINE_BATCH_BYTES for run_fd's reads */
    const char *data;     /* the piece's bytes: in buf, or run_buf's buffer */
    size_t len;
    uint64_t offset;      /* stream offset of data[0]                      */
    int in_array;         /* the framer state the worker assumes at data[0] */
    int cut_after;        /* data ends with '\n' and the stream goes on
                             with a '{' (nw_framer_cut applies)            */
    /* The worker's results. */
    nw_framer *fr;        /* kept from use to use                          */
    nw_frame *frames;     /* BATCH_FRAMES, allocated on first use; data in
                             the piece, or copied to the spill           */
    slot *slots;          /* BATCH_FRAMES */
    size_t n;
    char *spill;          /* SPILL_BYTES, allocated when first needed      */
    size_t spill_used;
    int framed;           /* the whole piece fit in BATCH_FRAMES frames     */
    int end_between, end_in_array;   /* fr's state after the piece       */
    int done;             /* written under the lock by workers             */
} batch;

typedef struct pipeline {
    const nw_pipeline_cbs *cbs;
    void *ctx;
    const char *source, *host;

    batch ring[NW_PIPELINE_INFLIGHT];
    uint64_t filled;      /* batches submitted = sequence of the one filling */
    uint64_t delivered;   /* batches delivered                              */
    batch *cur;           /* ring[filled % INFLIGHT], or NULL before first  */

    /* The stream's framing state after everything delivered so far: either
     * between frames (in_array says where), or held by fr. */
    nw_framer *fr;
    int between, in_array;
    /* The first non-blank byte of the stream decides whether pieces are
     * framed as parts of a top-level array (see submit). */
    int seen_first, array;

    int nworkers;         /* 0: frame and decode on the calling thread */
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

nw_reject nw_frame_reject(nw_frame_kind kind, size_t full_len, char *detail, size_t cap)
{
    switch (kind) {
    case NW_FRAME_TRUNCATED:
        snprintf(detail, cap, "the object is cut short");
        return NW_REJ_TRUNCATED;
    case NW_FRAME_TOO_LARGE:
        snprintf(detail, cap, "the object is %zu bytes, over %d", full_len,
                 NW_EVENT_MAX_BYTES);
        return NW_REJ_TOO_LARGE;
    case NW_FRAME_NOT_OBJECT:
        snprintf(detail, cap, "an array element that is not an object");
        return NW_REJ_NOT_OBJECT;
    case NW_FRAME_GARBAGE:
    case NW_FRAME_OBJECT:   /* not asked: callers decode an object */
        break;
    }
    snprintf(detail, cap, "text that is not a JSON object");
    return NW_REJ_BAD_JSON;
}

static void decode_one(const nw_frame *f, slot *s, const char *host)
{
    char detail[NW_DETAIL_MAX];
    if (f->kind == NW_FRAME_OBJECT) {
        int has_ev = 0;
        s->reason = nw_decode_record(f->data, f->len, host, &s->u.ev, &has_ev, &s->proc,
                                     detail, sizeof detail);
        s->has_ev = (uint8_t)has_ev;
        if (s->reason == NW_ACCEPTED)
            return;
    } else {
        s->proc = NULL;
        s->has_ev = 0;
        s->reason = nw_frame_reject(f->kind, f->full_len, detail, sizeof detail);
    }
    memcpy(s->u.detail, detail, sizeof detail);
}

typedef struct work_ctx {
    batch *b;
    const char *host;
} work_ctx;

/* Worker's framer callback: decodes the frame into the next slot.  A
 * rejected frame must outlive the framer's buffer: if it is not in the
 * piece, its bytes are copied to the spill. */
static int on_frame_work(void *arg, const nw_frame *f)
{
    work_ctx *w = arg;
    batch *b = w->b;
    if (b->n == BATCH_FRAMES)
        return 1;   /* too dense for a batch: the calling thread frames it */
    nw_frame *r = &b->frames[b->n];
    slot *s = &b->slots[b->n];
    *r = *f;
    decode_one(r, s, w->host);
    uintptr_t lo = (uintptr_t)b->data, at = (uintptr_t)f->data;
    if (s->reason != NW_ACCEPTED && f->len > 0 &&
        !(at >= lo && at - lo <= b->len && f->len <= b->len - (at - lo))) {
        if (!b->spill)
            b->spill = malloc(SPILL_BYTES);
        if (!b->spill || f->len > SPILL_BYTES - b->spill_used)
            return 1;   /* the calling thread frames the piece instead */
        memcpy(b->spill + b->spill_used, f->data, f->len);
        r->data = b->spill + b->spill_used;
        b->spill_used += f->len;
    }
    b->n++;
    return 0;
}

static int blank(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/*
 * Frames and decodes a piece, from the state the calling thread expects
 * the stream to be in at its start (deliver checks that it was).
 *
 * Outside an array, between frames, an object that lies on one line is
 * framed and scanned in one pass (nw_scan_line_object): that is the whole
 * of NDJSON.  Anything else goes through the framer a line at a time, until
 * the framer is between frames again; an array is all framer.
 */
static void work_batch(batch *b, const char *host)
{
    work_ctx w = {b, host};
    const char *d = b->data;
    size_t len = b->len, i = 0;
    int framing = 0, rc = 0;   /* framing: the framer holds the state */

    b->n = 0;
    b->spill_used = 0;
    if (b->in_array) {
        nw_framer_restart(b->fr, b->offset, 1);
        rc = nw_framer_feed(b->fr, d, len, on_frame_work, &w);
        framing = 1;
        i = len;
    }
    while (i < len && rc == 0) {
        if (!framing) {
            while (i < len && blank((unsigned char)d[i]))
                i++;
            if (i == len)
                break;
            nw_envelope env;
            size_t used;
            if (b->n < BATCH_FRAMES &&
                nw_scan_line_object(d + i, len - i, &env, &used) == 0) {
                nw_frame *r = &b->frames[b->n];
                slot *s = &b->slots[b->n];
                r->data = d + i;
                r->len = r->full_len = used;
                r->offset = b->offset + i;
                r->kind = NW_FRAME_OBJECT;
                s->reason = nw_decode_scanned(&env, host, &s->u.ev);
                s->proc = NULL;
                s->has_ev = 1;
                if (s->reason != NW_ACCEPTED)   /* cJSON says why (or a process) */
                    decode_one(r, s, host);
                b->n++;
                i += used;
                continue;
            }
            nw_framer_restart(b->fr, b->offset + i, 0);
            framing = 1;
        }
        const char *nl = memchr(d + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - d) + 1 : len;
        rc = nw_framer_feed(b->fr, d + i, end - i, on_frame_work, &w);
        i = end;
        int in_array;
        if (rc == 0 && nw_framer_between(b->fr, &in_array) && !in_array)
            framing = 0;
    }
    if (rc == 0 && framing && b->cut_after)
        rc = nw_framer_cut(b->fr, on_frame_work, &w);
    b->framed = rc == 0;
    if (framing) {
        b->end_between = nw_framer_between(b->fr, &b->end_in_array);
    } else {
        b->end_between = 1;
        b->end_in_array = 0;
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
        work_batch(b, p->host);
        pthread_mutex_lock(&p->mu);
        b->done = 1;
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- delivery (calling thread) ---------------------------------------- */

/* Frees what a slot owns (its process event) without delivering it. */
static void slot_discard(slot *s)
{
    free(s->proc);
    s->proc = NULL;
}

/* Hands one frame's result to the callbacks.  0, or 1 if one stopped. */
static int deliver_one(pipeline *p, const nw_frame *f, slot *s)
{
    const nw_pipeline_cbs *cbs = p->cbs;
    int rc = 0;
    p->st.events++;
    if (s->reason == NW_ACCEPTED) {
        p->st.accepted++;
        if (s->proc) {
            p->st.processes++;
            rc = cbs->on_process ? cbs->on_process(p->ctx, s->proc) : 0;
            slot_discard(s);
        }
        if (!rc && s->has_ev)
            rc = cbs->on_event ? cbs->on_event(p->ctx, &s->u.ev) : 0;
    } else {
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
                            (unsigned long long)f->offset, p->source);
        return 1;
    }
    return 0;
}

/* The calling thread's framer callback: decodes and delivers at once. */
static int on_frame_inline(void *arg, const nw_frame *f)
{
    pipeline *p = arg;
    slot s;
    decode_one(f, &s, p->host);
    return deliver_one(p, f, &s);
}

/* The framer's return value to 0 or 1 (stopped; p->status says why). */
static int frame_rc(pipeline *p, int rc)
{
    if (rc == 0)
        return 0;
    if (p->status == NW_OK)
        p->status = nw_fail(p->err, NW_ERR_NOMEM, "out of memory while framing");
    return 1;
}

/*
 * Hands batch b's results to the callbacks.  The worker framed the piece
 * from a guess of the stream's state at its start (between frames, in or
 * out of the array); if the stream really was in that state, its frames are
 * exactly the stream's frames there (framer.h).  If not -- the piece before
 * ended inside a frame, or this piece had too many frames -- the calling
 * thread frames the piece itself, going on from the real state.  0, or 1
 * if a callback stopped the run.
 */
static int deliver(pipeline *p, batch *b)
{
    if (p->between && p->in_array == b->in_array && b->framed) {
        for (size_t i = 0; i < b->n; i++)
            if (deliver_one(p, &b->frames[i], &b->slots[i]))
                return 1;
        if (b->end_between) {
            p->in_array = b->end_in_array;
        } else {
            /* The piece ends inside a frame: its framer holds the state. */
            nw_framer *t = p->fr;
            p->fr = b->fr;
            b->fr = t;
            p->between = 0;
        }
    } else {
        /* The worker's results are thrown away, with what they own. */
        for (size_t i = 0; i < b->n; i++)
            slot_discard(&b->slots[i]);
        if (p->between)
            nw_framer_restart(p->fr, b->offset, p->in_array);
        if (frame_rc(p, nw_framer_feed(p->fr, b->data, b->len, on_frame_inline, p)))
            return 1;
        if (b->cut_after && frame_rc(p, nw_framer_cut(p->fr, on_frame_inline, p)))
            return 1;
        p->between = nw_framer_between(p->fr, &p->in_array);
    }
    if (p->cbs->on_progress)
        p->cbs->on_progress(p->ctx, p->bytes_read);
    return 0;
}

/*
 * Delivers the oldest batch in flight if it is done, or, if wait, once it
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

/* Delivers every batch already done, without waiting.  0 or -1. */
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
 * last used that slot was delivered.  need_buf: run_fd reads into it.
 * 0, or -1 (stopped or ENOMEM). */
static int open_batch(pipeline *p, int need_buf)
{
    while (p->filled - p->delivered >= NW_PIPELINE_INFLIGHT)
        if (deliver_next(p, 1) < 0)
            return -1;
    batch *b = &p->ring[p->filled % NW_PIPELINE_INFLIGHT];
    if (!b->frames) {
        b->frames = malloc(BATCH_FRAMES * sizeof *b->frames);
        b->slots = calloc(BATCH_FRAMES, sizeof *b->slots);   /* proc NULL */
        b->fr = nw_framer_new(NW_EVENT_MAX_BYTES);
    }
    if (need_buf && !b->buf)
        b->buf = malloc(NW_PIPELINE_BATCH_BYTES);
    if (!b->frames || !b->slots || !b->fr || (need_buf && !b->buf)) {
        p->status = nw_fail(p->err, NW_ERR_NOMEM, "out of memory for a batch");
        return -1;
    }
    b->data = NULL;
    b->len = 0;
    b->n = 0;
    b->done = 0;
    p->cur = b;
    return 0;
}

/*
 * Hands the piece data[0..len) at stream offset `offset` to the workers,
 * in the batch being filled (p->cur).  cut_after: see batch.  0 or -1.
 */
static int submit(pipeline *p, const char *data, size_t len, uint64_t offset,
                  int cut_after)
{
    batch *b = p->cur;
    b->data = data;
    b->len = len;
    b->offset = offset;
    b->cut_after = cut_after;
    /* Up to the stream's first non-blank byte the framer is outside any
     * array; after it, inside one for as long as the input is one array
     * (it began with '['), else outside.  A wrong guess costs time only. */
    b->in_array = p->seen_first ? p->array : 0;
    if (!p->seen_first) {
        size_t i = 0;
        if (offset == 0 && len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
            i = 3;   /* a byte order mark */
        while (i < len && blank((unsigned char)data[i]))
            i++;
        if (i < len) {
            p->seen_first = 1;
            p->array = data[i] == '[';
        }
    }
    p->cur = NULL;
    if (p->nworkers == 0) {
        work_batch(b, p->host);
        b->done = 1;
        p->filled++;
    } else {
        pthread_mutex_lock(&p->mu);
        p->filled++;
        pthread_cond_signal(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    return deliver_ready(p);
}

/* Where to end a piece of data[0..len): just before the last '{' that
 * starts a line (a point every framing can be cut at, framer.h), or 0 if
 * there is none. */
static size_t last_cut(const char *data, size_t len)
{
    for (size_t at = len; at-- > 1;)
        if (data[at] == '{' && data[at - 1] == '\n')
            return at;
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
 * fails only means fewer workers; with none, work is done inline. */
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
    p->between = 1;   /* the stream's start: between frames, no array */
    p->fr = nw_framer_new(NW_EVENT_MAX_BYTES);
    if (!p->fr)
        return nw_fail(err, NW_ERR_NOMEM, "out of memory for the framer");
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
         * delivered, discarded and never-decoded slots hold NULL. */
        for (size_t k = 0; p->ring[i].slots && k < BATCH_FRAMES; k++)
            slot_discard(&p->ring[i].slots[k]);
        free(p->ring[i].buf);
        free(p->ring[i].frames);
        free(p->ring[i].slots);
        free(p->ring[i].spill);
        nw_framer_free(p->ring[i].fr);
    }
    nw_framer_free(p->fr);
}

/* Ends the stream: every delivery, then what the framer still holds. */
static nw_status pipeline_finish(pipeline *p)
{
    if (deliver_all(p))
        return p->status;
    if (!p->between && frame_rc(p, nw_framer_finish(p->fr, on_frame_inline, p)))
        return p->status;
    return NW_OK;
}

static void pipeline_end(pipeline *p, nw_pipeline_stats *stats)
{
    p->st.bytes = p->bytes_read;
    if (stats)
        *stats = p->st;
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

/*
 * Reads fd into pieces of up to NW_PIPELINE_BATCH_BYTES, each read straight
 * into its batch's buffer.  A full buffer is cut before its last line that
 * starts with '{' (the bytes after it are copied to the next piece); at the
 * end of input, or when a live source goes quiet, the piece is everything
 * read, so that no event waits for more input.
 */
nw_status nw_pipeline_run_fd(int fd, const nw_pipeline_opts *opts,
                             const nw_pipeline_cbs *cbs, void *ctx,
                             nw_pipeline_stats *stats, nw_err *err)
{
    pipeline p;
    nw_status st = pipeline_init(&p, decode_threads(opts), opts, cbs, ctx, err);
    const char *carry = NULL;   /* the previous piece's tail, in its buffer */
    size_t carry_len = 0;
    uint64_t offset = 0;        /* stream offset of the piece being read */
    int eof = 0;
    if (st != NW_OK)
        goto done;
    while (!eof) {
        if (open_batch(&p, 1)) {
            st = p.status;
            goto done;
        }
        batch *b = p.cur;
        size_t used = carry_len, cap = NW_PIPELINE_BATCH_BYTES;
        if (carry_len)
            memmove(b->buf, carry, carry_len);
        int idle = 0;
        while (used < cap) {
            ssize_t n = read(fd, b->buf + used, cap - used);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                st = nw_fail(err, NW_ERR_IO, "read %s: %s", p.source, strerror(errno));
                goto done;
            }
            if (n == 0) {
                eof = 1;
                break;
            }
            used += (size_t)n;
            p.bytes_read += (uint64_t)n;
            if (used < cap && source_idle(fd)) {
                idle = 1;
                break;
            }
        }
        size_t cut = used == cap ? last_cut(b->buf, used) : 0;
        size_t len = cut ? cut : used;
        carry = b->buf + len;
        carry_len = used - len;
        if (len > 0) {
            uint64_t at = offset;
            offset += len;
            if (submit(&p, b->buf, len, at, cut > 0)) {
                st = p.status;
                goto done;
            }
        } else {
            p.cur = NULL;   /* nothing read: the batch stays unused */
        }
        if (idle && deliver_all(&p)) {
            st = p.status;
            goto done;
        }
    }
    st = pipeline_finish(&p);
done:
    pipeline_end(&p, stats);
    return st;
}

nw_status nw_pipeline_run_buf(const char *buf, size_t len,
                              const nw_pipeline_opts *opts,
                              const nw_pipeline_cbs *cbs, void *ctx,
                              nw_pipeline_stats *stats, nw_err *err)
{
    pipeline p;
    int threads = len <= INLINE_BUF_MAX ? 1 : decode_threads(opts);
    nw_status st = pipeline_init(&p, threads, opts, cbs, ctx, err);
    if (st != NW_OK)
        goto done;
    /* Pieces are slices of buf: nothing is copied. */
    for (size_t off = 0; off < len;) {
        size_t n = len - off, cut = 0;
        if (n > NW_PIPELINE_BATCH_BYTES) {
            cut = last_cut(buf + off, NW_PIPELINE_BATCH_BYTES);
            n = cut ? cut : NW_PIPELINE_BATCH_BYTES;
        }
        if (open_batch(&p, 0)) {
            st = p.status;
            goto done;
        }
        p.bytes_read += n;
        if (submit(&p, buf + off, n, off, cut > 0)) {
            st = p.status;
            goto done;
        }
        off += n;
    }
    st = pipeline_finish(&p);
done:
    pipeline_end(&p, stats);
    return st;
}
