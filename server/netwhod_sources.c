/*
 * netwhod_sources.c -- live sources: --fifo PATH, --follow FILE, --stdin.
 *
 * A --follow FILE has its own reader with checkpoints (netwhod_follow.c);
 * this file starts, lists and stops it with the others.  Each FIFO or
 * stdin source has two threads joined by a pipe.  The pump polls the source
 * and a self-pipe (so a stop wakes it even when nothing is written), copies
 * what it reads into the pipe, and closes the pipe's write end when the
 * source ends or netwhod stops.  The decoder runs nw_pipeline_run_fd on the
 * pipe's read end (framing, decoding, rejections exactly as `netwho ingest`
 * does them), copies events into a batch and hands each batch to the ingest
 * thread (nwd_ingest_stream) after every pipeline batch -- which the
 * pipeline also cuts when a live source goes quiet.  EOF on the pipe is the
 * decoder's end: nothing read is lost at stop.
 *
 * Each source's counters, state and last error are read by request threads
 * (GET /api/v1/health, nwd_sources_status) while its threads update them:
 * all under the set's mutex.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netwho/procevent.h"
#include "netwhod.h"

#define NWD_MAX_SOURCES 32

typedef struct src {
    struct nwd_sources *set;
    nwd_src_kind kind;
    char *path;
    int fd;                 /* the source                              */
    int dummy_wr;           /* FIFO: our own write end (see add)        */
    int made_fifo;
    int pipe_rd, pipe_wr;
    pthread_t pump, dec;
    int started;
    nwd_follow *follow;     /* --follow: its own reader (netwhod_follow.c) */
    nwd_batch batch;
    /* Under set->mu: */
    nw_api_source_state state;
    uint64_t read_bytes;
    uint64_t cut_writers;   /* FIFO writers that left mid-object        */
    nwd_tally tally;
} src;

struct nwd_sources {
    nwd_ingest *ingest;
    const char *default_host;
    int stop_rd, stop_wr;   /* self-pipe: written once at stop          */
    pthread_mutex_t mu;     /* the sources' status fields              */
    src *v[NWD_MAX_SOURCES];
    int n;
};

/* Records an error as the source's last (and, if fatal, its end). */
static void set_error(src *x, int fatal, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(src *x, int fatal, const char *fmt, ...)
{
    char msg[NW_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&x->set->mu);
    memcpy(x->tally.last_error, msg, sizeof msg);
    if (fatal)
        x->state = NW_SRC_FAILED;
    pthread_mutex_unlock(&x->set->mu);
}

static void set_state(src *x, nw_api_source_state st)
{
    pthread_mutex_lock(&x->set->mu);
    if (x->state != NW_SRC_FAILED)
        x->state = st;
    pthread_mutex_unlock(&x->set->mu);
}

static const char *kind_name(nwd_src_kind k)
{
    return k == NWD_SRC_FIFO ? "fifo" : k == NWD_SRC_STDIN ? "stdin" : "follow";
}

nwd_sources *nwd_sources_new(nwd_ingest *g, const char *default_host)
{
    nwd_sources *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        free(s);
        return NULL;
    }
    s->stop_rd = p[0];
    s->stop_wr = p[1];
    pthread_mutex_init(&s->mu, NULL);
    s->ingest = g;
    s->default_host = default_host;
    return s;
}

int nwd_sources_add(nwd_sources *s, nwd_src_kind kind, const char *path)
{
    if (s->n == NWD_MAX_SOURCES) {
        nwd_log("at most %d sources", NWD_MAX_SOURCES);
        return -1;
    }
    src *x = calloc(1, sizeof *x);
    if (!x || !(x->path = strdup(path))) {
        free(x);
        return -1;
    }
    x->set = s;
    x->kind = kind;
    x->fd = x->dummy_wr = x->pipe_rd = x->pipe_wr = -1;
    if (kind == NWD_SRC_STDIN) {
        x->fd = STDIN_FILENO;
    } else if (kind == NWD_SRC_FOLLOW) {
        /* A file that does not exist yet is waited for (netwhod_follow.c). */
        x->follow = nwd_follow_new(path, s->ingest, s->default_host, s->stop_rd);
        if (!x->follow)
            goto fail;
        nwd_ingest_checkpoints(s->ingest);
        s->v[s->n++] = x;
        nwd_log("reading %s %s", kind_name(kind), path);
        return 0;
    } else {
        struct stat sb;
        if (lstat(path, &sb) == 0) {
            if (!S_ISFIFO(sb.st_mode)) {
                nwd_log("--fifo %s: exists and is not a FIFO; not replacing it", path);
                goto fail;
            }
        } else if (errno != ENOENT || mkfifo(path, 0660) != 0) {
            nwd_log("--fifo %s: %s", path, strerror(errno));
            goto fail;
        } else {
            x->made_fifo = 1;
            chmod(path, 0660);   /* mkfifo's mode is cut by the umask */
        }
        /* O_NONBLOCK: a blocking open would wait for a first writer.  No
         * write end of our own: read() must see the end of every writer, so
         * that a line cut short by one writer is not continued by the next
         * one's bytes (see fifo_writers_gone).  The read end stays
         * non-blocking; the pump waits in poll() with the stop pipe. */
        x->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (x->fd < 0)
            nwd_log("--fifo %s: %s", path, strerror(errno));
    }
    if (x->fd < 0)
        goto fail;
    s->v[s->n++] = x;
    nwd_log("reading %s %s", kind_name(kind), path);
    return 0;
fail:
    if (x->fd >= 0 && x->fd != STDIN_FILENO)
        close(x->fd);
    if (x->made_fifo)
        unlink(path);
    free(x->path);
    free(x);
    return -1;
}

/* ------------------------------------------------------------ the pump */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Every writer of the FIFO has closed it (read() gave 0).  If the last byte
 * was not a newline, a writer left mid-object: a newline goes down the
 * pipe, so that the framer reports that object truncated when the next
 * writer's first '{' starts its line, instead of running the two together
 * (and losing the next writer's first event).  Then the FIFO is opened
 * again *before* the old read end is closed -- there is always a reader,
 * so a writer arriving meanwhile neither fails (ENXIO) nor loses bytes --
 * because the old end would report the hang-up to poll() forever.
 * 0, or -1 (the source failed).
 */
static int fifo_writers_gone(src *x, char last)
{
    if (last && last != '\n') {
        if (write_all(x->pipe_wr, "\n", 1) != 0)
            return -1;
        pthread_mutex_lock(&x->set->mu);
        x->cut_writers++;
        pthread_mutex_unlock(&x->set->mu);
    }
    int fd = open(x->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_error(x, 1, "reopen: %s", strerror(errno));
        nwd_log("fifo %s: reopen: %s", x->path, strerror(errno));
        return -1;
    }
    close(x->fd);
    x->fd = fd;
    return 0;
}

static void *pump_main(void *p)
{
    src *x = p;
    static const size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    if (!buf) {
        set_error(x, 1, "out of memory");
        goto out;
    }
    set_state(x, NW_SRC_RUNNING);
    char last = 0;                   /* the last byte read, 0 after a gap */
    for (;;) {
        struct pollfd pf[2] = {{x->set->stop_rd, POLLIN, 0}, {x->fd, POLLIN, 0}};
        int rc = poll(pf, 2, -1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 || pf[0].revents)
            break;                                   /* stopping */
        ssize_t n = read(x->fd, buf, cap);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            set_error(x, 1, "read: %s", strerror(errno));
            nwd_log("%s %s: read: %s", kind_name(x->kind), x->path, strerror(errno));
            break;
        }
        if (n == 0 && x->kind == NWD_SRC_FIFO) {
            if (fifo_writers_gone(x, last) != 0)
                break;
            last = 0;
            continue;
        }
        if (n == 0)
            break;                                   /* the end of stdin */
        last = buf[n - 1];
        pthread_mutex_lock(&x->set->mu);
        x->read_bytes += (uint64_t)n;
        pthread_mutex_unlock(&x->set->mu);
        if (write_all(x->pipe_wr, buf, (size_t)n) != 0) {
            set_error(x, 1, "internal pipe: %s", strerror(errno));
            break;
        }
    }
out:
    free(buf);
    close(x->pipe_wr);               /* the decoder sees EOF */
    x->pipe_wr = -1;
    return NULL;
}

int nwd_wait_stop(int stop_fd, unsigned seconds)
{
    struct pollfd p = {stop_fd, POLLIN, 0};
    int ms = seconds >= 1 ? 1000 : 200;
    return poll(&p, 1, ms) > 0;
}

void nwd_hand_over(nwd_ingest *g, const nwd_batch *b, int stop_fd, pthread_mutex_t *mu,
                   nwd_tally *t, nw_api_ingest_result *res)
{
    nwd_ingest_stream(g, b, res);
    while (res->status != NW_OK && res->retry_after && !nwd_wait_stop(stop_fd, res->retry_after)) {
        pthread_mutex_lock(mu);
        snprintf(t->last_error, sizeof t->last_error, "waiting: %.480s", res->message);
        pthread_mutex_unlock(mu);
        nwd_ingest_stream(g, b, res);
    }
    pthread_mutex_lock(mu);
    if (res->status == NW_OK) {
        t->accepted += res->accepted;
        t->rejected += res->rejected;
        if (strncmp(t->last_error, "waiting: ", 9) == 0)
            t->last_error[0] = '\0';
    } else {
        t->failed_batches++;
        snprintf(t->last_error, sizeof t->last_error, "%s", res->message);
    }
    pthread_mutex_unlock(mu);
}

/* --------------------------------------------------------- the decoder */

static void hand_over(src *x)
{
    nwd_batch *b = &x->batch;
    if (!b->nev && !b->nrej && !b->nproc)
        return;
    /* While ingest is off nothing more is read: the pipe fills, the pump
     * blocks, and so does whoever writes to the FIFO. */
    nw_api_ingest_result res;
    nwd_hand_over(x->set->ingest, b, x->set->stop_rd, &x->set->mu, &x->tally, &res);
    if (res.status != NW_OK && res.retry_after)
        nwd_log("%s: stopped while ingest was off: a batch of %zu events was not stored",
                x->path, b->nev);
    nwd_batch_clear(b);
}

static int on_event(void *p, const nw_event *ev)
{
    nwd_batch *b = &((src *)p)->batch;
    if (nwd_batch_reserve_event(b))
        return 1;
    b->ev[b->nev++] = *ev;
    return 0;
}

/* A process event, kept (copied: the pipeline owns pe) with the batch. */
static int on_process(void *p, const nw_proc_event *pe)
{
    nw_proc_event *c = nw_proc_event_copy(pe);
    return !c || nwd_batch_add_process(&((src *)p)->batch, c);
}

static int on_reject(void *p, const nw_rejection *r)
{
    return nwd_batch_add_reject(&((src *)p)->batch, r) ? 1 : 0;
}

static void on_progress(void *p, uint64_t bytes)
{
    (void)bytes;
    hand_over(p);
}

static void *dec_main(void *p)
{
    src *x = p;
    x->batch.source = x->path;
    nw_pipeline_opts popts = {.threads = 1, .default_host = x->set->default_host,
                              .source = x->path};
    nw_pipeline_cbs cbs = {.on_event = on_event, .on_reject = on_reject,
                           .on_progress = on_progress, .on_process = on_process};
    nw_err err = {{0}};
    nw_status st = nw_pipeline_run_fd(x->pipe_rd, &popts, &cbs, x, NULL, &err);
    hand_over(x);
    if (st != NW_OK) {
        set_error(x, 1, "%s", err.msg[0] ? err.msg : nw_status_name(st));
        nwd_log("%s %s: %s", kind_name(x->kind), x->path,
                err.msg[0] ? err.msg : nw_status_name(st));
        /* Keep the pump from blocking on a pipe nobody reads. */
        char sink[4096];
        while (read(x->pipe_rd, sink, sizeof sink) > 0)
            ;
    }
    nwd_batch_clear(&x->batch);
    set_state(x, NW_SRC_ENDED);      /* everything it read is ingested */
    return NULL;
}

size_t nwd_sources_status(void *p, nw_api_source *out, size_t max)
{
    nwd_sources *s = p;
    if (!s)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n && n < max; i++, n++) {
        const src *x = s->v[i];
        nw_api_source *o = &out[n];
        if (x->follow) {
            nwd_follow_status(x->follow, o);
            continue;
        }
        o->kind = kind_name(x->kind);
        snprintf(o->path, sizeof o->path, "%s", x->path);
        o->state = x->state;
        o->bytes_read = x->read_bytes;
        o->accepted = x->tally.accepted;
        o->rejected = x->tally.rejected;
        o->failed_batches = x->tally.failed_batches;
        memcpy(o->last_error, x->tally.last_error, sizeof o->last_error);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

int nwd_sources_start(nwd_sources *s)
{
    for (int i = 0; i < s->n; i++) {
        src *x = s->v[i];
        if (x->follow) {
            if (pthread_create(&x->pump, NULL, nwd_follow_main, x->follow) != 0) {
                nwd_log("%s: cannot start a thread", x->path);
                return -1;
            }
            x->started = 1;
            continue;
        }
        int pp[2];
        if (pipe2(pp, O_CLOEXEC) != 0) {
            nwd_log("%s: pipe: %s", x->path, strerror(errno));
            return -1;
        }
        x->pipe_rd = pp[0];
        x->pipe_wr = pp[1];
        if (pthread_create(&x->dec, NULL, dec_main, x) != 0) {
            close(pp[0]);
            close(pp[1]);
            x->pipe_rd = x->pipe_wr = -1;
            nwd_log("%s: cannot start a thread", x->path);
            return -1;
        }
        if (pthread_create(&x->pump, NULL, pump_main, x) != 0) {
            close(x->pipe_wr);              /* the decoder ends */
            x->pipe_wr = -1;
            pthread_join(x->dec, NULL);
            close(x->pipe_rd);
            x->pipe_rd = -1;
            nwd_log("%s: cannot start a thread", x->path);
            return -1;
        }
        x->started = 1;
    }
    return 0;
}

void nwd_sources_stop(nwd_sources *s)
{
    if (!s)
        return;
    char c = 1;
    if (write(s->stop_wr, &c, 1) < 0)
        nwd_log("sources: cannot signal the readers: %s", strerror(errno));
    for (int i = 0; i < s->n; i++) {
        src *x = s->v[i];
        if (x->follow) {
            if (x->started)
                pthread_join(x->pump, NULL);
            nwd_follow_free(x->follow);
            free(x->path);
            free(x);
            continue;
        }
        if (x->started) {
            pthread_join(x->pump, NULL);
            pthread_join(x->dec, NULL);
            close(x->pipe_rd);
        }
        nwd_log("%s %s: %" PRIu64 " bytes read, %" PRIu64 " events accepted, %" PRIu64
                " rejected, %" PRIu64 " failed batches, %" PRIu64
                " writers left mid-object%s%s",
                kind_name(x->kind), x->path, x->read_bytes, x->tally.accepted,
                x->tally.rejected, x->tally.failed_batches, x->cut_writers,
                x->tally.last_error[0] ? "; last error: " : "", x->tally.last_error);
        if (x->fd >= 0 && x->fd != STDIN_FILENO)
            close(x->fd);
        if (x->dummy_wr >= 0)
            close(x->dummy_wr);
        if (x->made_fifo)
            unlink(x->path);
        nwd_batch_free(&x->batch);
        free(x->path);
        free(x);
    }
    close(s->stop_rd);
    close(s->stop_wr);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
