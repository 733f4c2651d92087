/*
 * pipeline.h -- bytes from a source to decoded events, on several threads.
 *
 * The calling thread reads the input into pieces of up to
 * NW_PIPELINE_BATCH_BYTES, cut before a line that starts with '{'; worker
 * threads frame (framer.h) and decode (decode.h) whole pieces; the calling
 * thread then receives every event and every rejection through the
 * callbacks, in input order.  A worker frames its piece from the state the
 * stream is expected to be in at the piece's start; when it was not (an
 * object broken across the cut, or a piece denser than a batch holds), the
 * calling thread frames that piece itself, so the frames are always exactly
 * those of one framer over the whole stream.  The calling thread's own work
 * per event is only the delivery, which is what the ingest rate is bound
 * by.  Memory is bounded: at most NW_PIPELINE_INFLIGHT batches, each of one
 * piece and its results, exist at once, whatever the input size.
 */
#ifndef NETWHO_PIPELINE_H
#define NETWHO_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/decode.h"
#include "netwho/event.h"
#include "netwho/framer.h"
#include "netwho/status.h"

#define NW_PIPELINE_BATCH_BYTES (1024 * 1024)
#define NW_PIPELINE_INFLIGHT 8
#define NW_PIPELINE_MAX_THREADS 16

/* A rejected event, as handed to on_reject (valid during the call only). */
typedef struct nw_rejection {
    nw_reject reason;
    const char *source;      /* the source name given in the options       */
    uint64_t offset;         /* byte offset of the event in that source    */
    const char *raw;         /* the event's bytes, at most raw_len of them  */
    size_t raw_len;          /* <= NW_FRAME_KEEP_BYTES for too_large       */
    size_t full_len;         /* the event's real length                     */
    const char *detail;      /* a sentence, "" if none                      */
} nw_rejection;

struct nw_proc_event;

typedef struct nw_pipeline_cbs {
    /* Each accepted event.  Return 0 to go on, non-zero to stop. */
    int (*on_event)(void *ctx, const nw_event *ev);
    /* Each rejected event.  Return 0 to go on, non-zero to stop. */
    int (*on_reject)(void *ctx, const nw_rejection *r);
    /* Optional: after each batch, with the bytes read so far. */
    void (*on_progress)(void *ctx, uint64_t bytes_read);
    /* Optional: each process event (procevent.h: Kernel-Process, Sysmon 1,
     * 3, 5), valid during the call only.  A Sysmon 3 gives its process
     * event first, then its on_event.  Return 0 to go on. */
    int (*on_process)(void *ctx, const struct nw_proc_event *pe);
} nw_pipeline_cbs;

typedef struct nw_pipeline_opts {
    int threads;               /* decode threads; 0 = number of CPUs      */
    const char *default_host;  /* for events whose system.computer is ""  */
    const char *source;        /* name used in rejections ("-" for stdin) */
} nw_pipeline_opts;

typedef struct nw_pipeline_stats {
    uint64_t bytes;            /* bytes read                               */
    uint64_t events;           /* frames seen (accepted + rejected)        */
    uint64_t accepted;
    uint64_t rejected;
    uint64_t processes;        /* process events among the accepted        */
} nw_pipeline_stats;

/*
 * Reads fd to its end (EOF), calling cbs in input order from this thread.
 * Does not close fd.  *stats (if not NULL) is filled even on error.
 * Returns NW_OK; NW_ERR_IO if read() fails (err says so); NW_ERR_INVALID
 * if a callback stopped the run; NW_ERR_NOMEM.
 */
nw_status nw_pipeline_run_fd(int fd, const nw_pipeline_opts *opts,
                             const nw_pipeline_cbs *cbs, void *ctx,
                             nw_pipeline_stats *stats, nw_err *err);

/* The same over a buffer in memory (an HTTP body). */
nw_status nw_pipeline_run_buf(const char *buf, size_t len,
                              const nw_pipeline_opts *opts,
                              const nw_pipeline_cbs *cbs, void *ctx,
                              nw_pipeline_stats *stats, nw_err *err);

/*
 * The rejection for a frame the framer already knows is not an event (any
 * kind but NW_FRAME_OBJECT, which is decoded instead), its sentence written
 * to detail[cap]: what the pipeline reports, for whoever else frames a
 * stream (netwhod's follower) to report the same.
 */
nw_reject nw_frame_reject(nw_frame_kind kind, size_t full_len, char *detail, size_t cap);

#endif
