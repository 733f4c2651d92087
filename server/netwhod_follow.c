/*
 * netwhod_follow.c -- --follow FILE: like `tail -F`, with checkpoints.
 *
 * One thread per followed file reads it, frames (framer.h) and decodes
 * (decode.h) the events itself -- rather than through a pipe into the
 * pipeline as the other live sources do -- because it must know, for every
 * batch it hands to the ingest thread, the file offset just after the last
 * frame in it: that offset (with the file's identity) is committed in the
 * same commit as the batch (checkpoint.h), and a restart reads on from it.
 * An incomplete object at the end of the file stays after the offset and
 * is read again.
 *
 * What a file may do while followed, and what happens:
 *   - it does not exist (yet), or disappears: state "waiting", last_error
 *     says why, the path is tried again every NWD_FOLLOW_POLL_MS;
 *   - it is renamed and a new file created at the path (rotation): the old
 *     file is read to its end (a writer may still be appending to it when
 *     the new one appears), an object cut short at its end is a rejection,
 *     then the new file is read from its start;
 *   - it shrinks below our read offset (truncation, copytruncate): read
 *     again from its start;
 *   - on restart, the checkpointed file is recognized by st_dev, st_ino
 *     and a hash of its first bytes (a new file that reused the inode does
 *     not pass); if the path now names another file, the directory is
 *     searched for the checkpointed one (rotated while we were down: read
 *     to its end first), and a file shorter than the offset is read from
 *     its start.
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netwhod.h"
#include "netwho/checkpoint.h"
#include "netwho/decode.h"
#include "netwho/framer.h"
#include "netwho/pipeline.h"
#include "netwho/procevent.h"

/* How often a file at its end, or a missing one, is looked at again. */
#define NWD_FOLLOW_POLL_MS 200
/* Bytes read at once. */
#define NWD_FOLLOW_READ (64 * 1024)
/* Frames per batch handed to the ingest thread (one commit each). */
#define NWD_FOLLOW_BATCH_FRAMES 8192

struct nwd_follow {
    char *path;
    nwd_ingest *ingest;
    const char *default_host;
    int stop_fd;                /* readable once netwhod stops            */
    int fd;                     /* the file being read, -1 if none        */
    uint64_t dev, ino;
    uint64_t read_pos;          /* file offset of the next read           */
    uint64_t base;              /* file offset of the framer's byte 0     */
    uint64_t done_pos;          /* just after the last frame handed over  */
    uint32_t head_len;          /* identity: hash of the first bytes      */
    uint64_t head_hash;
    nw_framer *fr;
    nwd_batch batch;
    size_t frames;              /* in the batch being filled              */
    uint64_t batch_end;         /* file offset after its last frame       */
    int stop_now;               /* a callback failed                     */
    /* Under mu (read by request threads through nwd_follow_status): */
    pthread_mutex_t mu;
    nw_api_source_state state;
    uint64_t read_bytes;
    nwd_tally tally;
};

static void set_status(nwd_follow *f, int st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* st < 0: keep the state.  fmt NULL: keep the last error. */
static void set_status(nwd_follow *f, int st, const char *fmt, ...)
{
    pthread_mutex_lock(&f->mu);
    if (st >= 0 && f->state != NW_SRC_FAILED)
        f->state = (nw_api_source_state)st;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->tally.last_error, sizeof f->tally.last_error, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&f->mu);
}

nwd_follow *nwd_follow_new(const char *path, nwd_ingest *g, const char *default_host,
                           int stop_fd)
{
    nwd_follow *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return NULL;
    }
    if (strlen(path) >= NW_CKPT_PATH_MAX) {
        nwd_log("--follow %s: path longer than %d bytes", path, NW_CKPT_PATH_MAX - 1);
        free(f->path);
        free(f);
        return NULL;
    }
    f->ingest = g;
    f->default_host = default_host;
    f->stop_fd = stop_fd;
    f->fd = -1;
    pthread_mutex_init(&f->mu, NULL);
    f->batch.source = f->path;
    return f;
}

void nwd_follow_status(nwd_follow *f, nw_api_source *o)
{
    pthread_mutex_lock(&f->mu);
    o->kind = "follow";
    snprintf(o->path, sizeof o->path, "%s", f->path);
    o->state = f->state;
    o->bytes_read = f->read_bytes;
    o->accepted = f->tally.accepted;
    o->rejected = f->tally.rejected;
    o->failed_batches = f->tally.failed_batches;
    memcpy(o->last_error, f->tally.last_error, sizeof o->last_error);
    pthread_mutex_unlock(&f->mu);
}

void nwd_follow_free(nwd_follow *f)
{
    if (!f)
        return;
    nwd_log("follow %s: %" PRIu64 " bytes read, %" PRIu64 " events accepted, %" PRIu64
            " rejected, %" PRIu64 " failed batches%s%s",
            f->path, f->read_bytes, f->tally.accepted, f->tally.rejected,
            f->tally.failed_batches, f->tally.last_error[0] ? "; last error: " : "",
            f->tally.last_error);
    if (f->fd >= 0)
        close(f->fd);
    nw_framer_free(f->fr);
    nwd_batch_free(&f->batch);
    pthread_mutex_destroy(&f->mu);
    free(f->path);
    free(f);
}

/* 1 if netwhod is stopping; otherwise waits up to ms for it. */
static int stopping(nwd_follow *f, int ms)
{
    struct pollfd p = {f->stop_fd, POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

/* ------------------------------------------------------------ batches */

static int on_frame(void *p, const nw_frame *fm)
{
    nwd_follow *f = p;
    nwd_batch *b = &f->batch;
    char detail[NW_DETAIL_MAX] = "";
    nw_reject why;
    if (fm->kind == NW_FRAME_OBJECT) {
        if (nwd_batch_reserve_event(b))
            return f->stop_now = 1;
        /* Network, Kernel-Process and Sysmon events alike, as every other
         * ingest path takes them. */
        int has_ev = 0;
        nw_proc_event *pe = NULL;
        why = nw_decode_record(fm->data, fm->len, f->default_host, &b->ev[b->nev], &has_ev,
                               &pe, detail, sizeof detail);
        if (why == NW_ACCEPTED && has_ev)
            b->nev++;
        if (pe && nwd_batch_add_process(b, pe))
            return f->stop_now = 1;
    } else {
        why = nw_frame_reject(fm->kind, fm->full_len, detail, sizeof detail);
    }
    if (why != NW_ACCEPTED) {
        nw_rejection r = {.reason = why, .offset = f->base + fm->offset, .raw = fm->data,
                          .raw_len = fm->len, .full_len = fm->full_len, .detail = detail};
        if (nwd_batch_add_reject(b, &r))
            return f->stop_now = 1;
    }
    f->frames++;
    f->batch_end = f->base + fm->offset + fm->full_len;
    return 0;
}

/* The identity hash of the file's first min(upto, HEAD_BYTES) bytes. */
static void update_head(nwd_follow *f, uint64_t upto)
{
    uint32_t want = upto < NW_CKPT_HEAD_BYTES ? (uint32_t)upto : NW_CKPT_HEAD_BYTES;
    if (want <= f->head_len || f->fd < 0)
        return;
    char buf[NW_CKPT_HEAD_BYTES];
    ssize_t n = pread(f->fd, buf, want, 0);
    if (n == (ssize_t)want) {
        f->head_len = want;
        f->head_hash = nw_ckpt_hash(buf, want);
    }
}

/* Hands the batch (even an empty one, to move the offset) to the ingest
 * thread with the position after it; waits for its commit. */
static void hand_over(nwd_follow *f, int force)
{
    nwd_batch *b = &f->batch;
    if (!force && !f->frames)
        return;
    if (f->frames)
        f->done_pos = f->batch_end;
    update_head(f, f->done_pos);
    nw_ckpt_file pos;
    memset(&pos, 0, sizeof pos);
    snprintf(pos.path, sizeof pos.path, "%s", f->path);
    pos.dev = f->dev;
    pos.ino = f->ino;
    pos.offset = f->done_pos;
    pos.head_len = f->head_len;
    pos.head_hash = f->head_hash;
    b->pos = &pos;
    /* Stopped while ingest is off, the checkpoint still points before the
     * batch: the next run reads it again. */
    nw_api_ingest_result res;
    nwd_hand_over(f->ingest, b, f->stop_fd, &f->mu, &f->tally, &res);
    b->pos = NULL;
    nwd_batch_clear(b);
    f->frames = 0;
}

/* ------------------------------------------------------------- files */

/* A new framer whose byte 0 is file offset at. */
static int restart_framer(nwd_follow *f, uint64_t at)
{
    nw_framer_free(f->fr);
    f->fr = nw_framer_new(NW_EVENT_MAX_BYTES);
    f->base = f->read_pos = f->done_pos = f->batch_end = at;
    return f->fr ? 0 : -1;
}

/* The file's first head_len bytes hash to head_hash. */
static int head_matches(int fd, uint32_t head_len, uint64_t head_hash)
{
    char buf[NW_CKPT_HEAD_BYTES];
    if (head_len > sizeof buf)
        return 0;
    return pread(fd, buf, head_len, 0) == (ssize_t)head_len &&
           nw_ckpt_hash(buf, head_len) == head_hash;
}

/* A file in path's directory that is (dev, ino): the checkpointed file,
 * renamed by a rotation while netwhod was down.  fd or -1. */
static int find_rotated(const char *path, uint64_t dev, uint64_t ino)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    const char *dir = dirname(copy);
    DIR *d = opendir(dir);
    int fd = -1;
    struct dirent *de;
    while (d && fd < 0 && (de = readdir(d)) != NULL) {
        if ((uint64_t)de->d_ino != ino)
            continue;
        char full[NW_CKPT_PATH_MAX + 256];
        snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (stat(full, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_dev == dev &&
            (uint64_t)sb.st_ino == ino) {
            fd = open(full, O_RDONLY | O_CLOEXEC);
            if (fd >= 0)
                nwd_log("follow %s: the checkpointed file is now %s; reading it to its end "
                        "first", path, full);
        }
    }
    if (d)
        closedir(d);
    free(copy);
    return fd;
}

/* Takes fd as the file being read from offset at. */
static int use_file(nwd_follow *f, int fd, uint64_t at)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return -1;
    }
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->dev = (uint64_t)sb.st_dev;
    f->ino = (uint64_t)sb.st_ino;
    f->head_len = 0;
    f->head_hash = nw_ckpt_hash("", 0);
    if (at && lseek(fd, (off_t)at, SEEK_SET) < 0)
        at = 0;
    if (restart_framer(f, at) != 0)
        return -1;
    update_head(f, at);
    return 0;
}

/*
 * First open: where the checkpoint says, if it is still this file.
 * Returns 0 with f->fd open, 1 if the path does not exist (yet), -1 on a
 * failure (logged).
 */
static int open_first(nwd_follow *f, const nw_ckpt_file *ck, int *have_ck)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) {
        set_status(f, NW_SRC_WAITING, "open: %s", strerror(errno));
        return 1;
    }
    if (*have_ck) {
        *have_ck = 0;
        struct stat sb;
        int same = fd >= 0 && fstat(fd, &sb) == 0 && (uint64_t)sb.st_dev == ck->dev &&
                   (uint64_t)sb.st_ino == ck->ino;
        if (same && (uint64_t)sb.st_size >= ck->offset &&
            head_matches(fd, ck->head_len, ck->head_hash)) {
            nwd_log("follow %s: resuming at offset %" PRIu64, f->path, ck->offset);
            return use_file(f, fd, ck->offset);
        }
        if (same) {
            nwd_log("follow %s: truncated or replaced since the checkpoint (offset %" PRIu64
                    "): reading it from the start", f->path, ck->offset);
        } else {
            int old = find_rotated(f->path, ck->dev, ck->ino);
            if (old >= 0) {
                struct stat ob;
                if (fstat(old, &ob) == 0 && (uint64_t)ob.st_size >= ck->offset &&
                    head_matches(old, ck->head_len, ck->head_hash)) {
                    if (fd >= 0)
                        close(fd);
                    return use_file(f, old, ck->offset);
                }
                close(old);
            }
            nwd_log("follow %s: the checkpointed file (inode %" PRIu64 ", offset %" PRIu64
                    ") is gone; %s", f->path, ck->ino, ck->offset,
                    fd >= 0 ? "reading the file now there from its start"
                            : "waiting for the file");
        }
    }
    if (fd < 0) {
        set_status(f, NW_SRC_WAITING, "%s does not exist; waiting for it", f->path);
        return 1;
    }
    return use_file(f, fd, 0);
}

/* Reads what the file has now.  1 at its end, 0 if more may follow at once,
 * -1 on a read error (fatal for the source). */
static int read_some(nwd_follow *f, char *buf)
{
    ssize_t n = read(f->fd, buf, NWD_FOLLOW_READ);
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0) {
        set_status(f, NW_SRC_FAILED, "read: %s", strerror(errno));
        nwd_log("follow %s: read: %s", f->path, strerror(errno));
        return -1;
    }
    if (n == 0)
        return 1;
    f->read_pos += (uint64_t)n;
    pthread_mutex_lock(&f->mu);
    f->read_bytes += (uint64_t)n;
    pthread_mutex_unlock(&f->mu);
    if (nw_framer_feed(f->fr, buf, (size_t)n, on_frame, f) != 0 || f->stop_now) {
        set_status(f, NW_SRC_FAILED, "out of memory");
        return -1;
    }
    if (f->frames >= NWD_FOLLOW_BATCH_FRAMES)
        hand_over(f, 0);
    return n < NWD_FOLLOW_READ;
}

/* Ends the current file: what the framer holds is a cut-short object. */
static void finish_file(nwd_follow *f)
{
    if (nw_framer_finish(f->fr, on_frame, f) != 0)
        f->stop_now = 1;
    hand_over(f, 0);
}

/* At the end of the file: truncated, rotated, gone, or just quiet?
 * Returns -1 to stop (failure), 0 to go on. */
static int at_end(nwd_follow *f, char *buf)
{
    struct stat fb, pb;
    if (fstat(f->fd, &fb) == 0 && (uint64_t)fb.st_size < f->read_pos) {
        nwd_log("follow %s: truncated (%" PRIu64 " bytes, we had read %" PRIu64
                "): reading it from the start", f->path, (uint64_t)fb.st_size, f->read_pos);
        set_status(f, -1, "truncated at %" PRIu64 " bytes; read again from the start",
                   (uint64_t)fb.st_size);
        nw_framer_free(f->fr);       /* a cut-short tail is gone with the bytes */
        f->fr = NULL;
        f->batch_end = f->done_pos;
        hand_over(f, 0);
        if (lseek(f->fd, 0, SEEK_SET) < 0 || restart_framer(f, 0) != 0)
            return -1;
        f->head_len = 0;
        f->head_hash = nw_ckpt_hash("", 0);
        hand_over(f, 1);             /* the checkpoint moves to offset 0 */
        return 0;
    }
    int rc = stat(f->path, &pb);
    if (rc == 0 && (uint64_t)pb.st_dev == f->dev && (uint64_t)pb.st_ino == f->ino) {
        set_status(f, NW_SRC_RUNNING, NULL);
        return 0;                    /* the same file, quiet */
    }
    /* Renamed or removed: the old file is read to its end (a writer may
     * still append to it), then the new one, if any, from its start. */
    int r;
    while ((r = read_some(f, buf)) == 0)
        ;
    if (r < 0)
        return -1;
    if (rc != 0) {
        set_status(f, NW_SRC_WAITING, "%s is gone (%s); waiting for it", f->path, strerror(errno));
        return 0;
    }
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;                    /* try again next time */
    finish_file(f);
    nwd_log("follow %s: rotated: reading the new file from the start", f->path);
    if (use_file(f, fd, 0) != 0)
        return -1;
    set_status(f, NW_SRC_RUNNING, NULL);
    hand_over(f, 1);                 /* the checkpoint moves to the new file */
    return 0;
}

void *nwd_follow_main(void *p)
{
    nwd_follow *f = p;
    char *buf = malloc(NWD_FOLLOW_READ);
    nw_ckpt_file ck;
    int have_ck = nwd_ingest_follow_position(f->ingest, f->path, &ck);
    if (!buf) {
        set_status(f, NW_SRC_FAILED, "out of memory");
        return NULL;
    }
    while (!stopping(f, 0)) {
        if (f->fd < 0) {
            int r = open_first(f, &ck, &have_ck);
            if (r < 0) {
                set_status(f, NW_SRC_FAILED, "cannot start reading");
                break;
            }
            if (r > 0) {
                if (stopping(f, NWD_FOLLOW_POLL_MS))
                    break;
                continue;
            }
            set_status(f, NW_SRC_RUNNING, "%s", "");
        }
        int r = read_some(f, buf);
        if (r < 0)
            break;
        if (r == 0)
            continue;
        hand_over(f, 0);
        if (at_end(f, buf) < 0)
            break;
        if (f->frames == 0 && stopping(f, NWD_FOLLOW_POLL_MS))
            break;
    }
    /* Stopping: what was read is handed over; an object cut short at the
     * end is not finished -- it stays after the checkpoint, for the next
     * run to read whole. */
    hand_over(f, 0);
    set_status(f, NW_SRC_ENDED, NULL);
    free(buf);
    return NULL;
}
