/*
 * netwhod.h -- what the parts of the netwhod program share (internal).
 *
 *   netwhod.c         options, listeners' sockets, signals, lifecycle
 *   netwhod_ingest.c  the one ingest thread (owns the tracker and writer)
 *   http_server.c     libmicrohttpd -> routes.h adapter, one per listener
 *
 * Only this program logs: one line per event on stderr, "netwhod: ...".
 */
#ifndef NETWHOD_H
#define NETWHOD_H

#include <pthread.h>
#include <stddef.h>

#include "netwho/checkpoint.h"
#include "netwho/event.h"
#include "netwho/pipeline.h"
#include "netwho/routes.h"
#include "netwho/status.h"
#include "netwho/store.h"

/* Seconds an idle or stalled client connection is kept (MHD's default is
 * never, which lets a silent client hold a thread forever). */
#define NWD_CONNECTION_TIMEOUT_S 30
/* Client connections served at once: each one is a thread. */
#define NWD_MAX_CONNECTIONS 256
/* Memory MHD gives each connection for its request line and headers: a
 * request line longer than about this is refused by MHD itself (414,
 * without our JSON body).  128 KiB lets a 100 KB parameter reach the
 * routes, which name it in a 400; 256 connections bound it to 32 MiB.
 * Not more: MHD clears a connection's pool between requests, which at
 * 256 KiB was ~6% of the CPU of a keep-alive IP lookup (perf). */
#define NWD_CONNECTION_MEMORY (128 * 1024)
/* Largest POST body (events) read into memory; a bigger Content-Length is
 * refused with 413 before the body is read. */
#define NWD_MAX_BODY (64 * 1024 * 1024)
/* Largest bearer token file. */
#define NWD_TOKEN_MAX 4096
/* --cors origins at most. */
#define NWD_MAX_CORS 16
/* zlib's compression level for gzip answers: 1 is ~4x on JSON at a few
 * hundred MB/s, where 6 (the default) costs ~3x the CPU for ~15% less. */
#define NWD_GZIP_LEVEL 1
/* Bytes handed to MHD per pull of a streamed answer. */
#define NWD_STREAM_BLOCK (64 * 1024)

void nwd_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ------------------------------------------------------------- ingest */

typedef struct nwd_ingest nwd_ingest;

/* Bytes of POST bodies held at once (being read, queued or ingested) by
 * default: past it a POST is answered 503 with Retry-After before its body
 * is read, so memory stays bounded however fast clients send.  One body
 * is always admitted when nothing else is held (it is at most
 * NWD_MAX_BODY). */
#define NWD_INGEST_QUEUE_BYTES (128ULL * 1024 * 1024)
/* After a store error or a full disk, ingest is off and retried after 1,
 * 2, 4, ... up to this many seconds. */
#define NWD_INGEST_RETRY_MAX_S 8
/* A retry needs this much free space in the store's file system, and
 * writes (and removes) a file of NWD_INGEST_PROBE_BYTES there. */
#define NWD_INGEST_MIN_FREE (1024 * 1024)
#define NWD_INGEST_PROBE_BYTES (256 * 1024)
/* One batch running longer than this makes /health say ingest is stalled
 * (by default; --stall-after). */
#define NWD_INGEST_STALL_S 60

typedef struct nwd_ingest_limits {
    uint64_t queue_bytes;       /* 0: NWD_INGEST_QUEUE_BYTES               */
    nw_retention retention;     /* run in the background; both 0: never    */
    unsigned retention_every_s; /* seconds between retention runs          */
    unsigned stall_s;           /* a batch running longer is "stalled" in
                                   /health; 0: NWD_INGEST_STALL_S          */
} nwd_ingest_limits;

/* Starts the ingest thread for the store in dir (which must exist).
 * default_host: for events whose system.computer is empty (NULL: "unknown").
 * lim may be NULL (defaults, no retention). */
nw_status nwd_ingest_start(const char *dir, const char *default_host,
                           const nwd_ingest_limits *lim, nwd_ingest **out, nw_err *err);
/*
 * Admission of a POST body of `bytes` (its Content-Length, or what arrived
 * so far of a body without one: more = 1 adds to an earlier admission).
 * 0: admitted, the bytes are counted until nwd_ingest_release.  1: over the
 * budget, 2: ingest is off -- then why and *retry_after (seconds) say what
 * to answer (503), and nothing is counted.
 */
int nwd_ingest_admit(nwd_ingest *g, uint64_t bytes, int more, char *why, size_t cap,
                     unsigned *retry_after);
void nwd_ingest_release(nwd_ingest *g, uint64_t bytes);
/* Runs one batch (an HTTP body) on the ingest thread and waits until it is
 * committed or failed.  Callable from any thread; batches run one at a time.
 * key: the request's Idempotency-Key (valid, checked by the route) or NULL:
 * a key already committed with the same body is answered from the store
 * (out->duplicate) and nothing is ingested; with another body,
 * out->key_conflict.  Since batches run one at a time, a second POST with a
 * key still in flight waits for the first and then sees it committed. */
void nwd_ingest_submit(void *ingest, const char *buf, size_t len, const char *key,
                       nw_api_ingest_result *out);
void nwd_ingest_stats(void *ingest, nw_api_ingest_stats *out);
/* Finishes queued batches, flushes and commits the stream tracker (below),
 * stops the thread, frees g. */
void nwd_ingest_stop(nwd_ingest *g);

/* A rejection copied out of the pipeline (nw_rejection points into buffers
 * that only live during the callback). */
typedef struct nwd_rej {
    nw_reject reason;
    uint64_t offset;
    size_t raw_len, full_len;
    char *raw;                  /* raw_len bytes */
    char *detail;               /* "" if none */
} nwd_rej;

/* Decoded events of a live source (--fifo, --follow, --stdin), in order. */
typedef struct nwd_batch {
    const char *source;
    /* --follow: where the file stands after this batch; committed with it
     * as the file's checkpoint (NULL for other sources). */
    const nw_ckpt_file *pos;
    nw_event *ev;
    size_t nev, cap;
    nwd_rej *rej;
    size_t nrej, rcap;
    struct nw_proc_event **proc;   /* process events (procevent.h), owned */
    size_t nproc, pcap;
    size_t nproc_frames;           /* of them, frames without an event (all
                                      but Sysmon 3): for the accepted count */
} nwd_batch;

/* Batch building (netwhod_batch.c).  Each returns 0, or -1 out of memory. */
/* Room for one more event at b->ev[b->nev] (the caller fills, then counts). */
int nwd_batch_reserve_event(nwd_batch *b);
/* A copy of r (its raw bytes and detail), kept with the batch. */
int nwd_batch_add_reject(nwd_batch *b, const nw_rejection *r);
/* Takes pe (malloc'd, procevent.h): freed with the batch, or at once on
 * failure. */
int nwd_batch_add_process(nwd_batch *b, struct nw_proc_event *pe);
/* Frees what the batch owns and empties it; its arrays are kept. */
void nwd_batch_clear(nwd_batch *b);
/* ... and frees the arrays too. */
void nwd_batch_free(nwd_batch *b);

/* Folds a batch into the one long-lived stream tracker (shared by all live
 * sources, so a connection split across batches stays one connection) and
 * commits; waits until done.  Unlike a POST batch the tracker is not flushed:
 * the ingest thread ticks it with the wall clock every second instead. */
void nwd_ingest_stream(nwd_ingest *g, const nwd_batch *b, nw_api_ingest_result *out);

/*
 * Checkpoints (checkpoint.h).  At start the ingest thread loads the store's
 * newest complete checkpoint: the stream tracker is restored from its
 * snapshot, and each followed file's position is kept for
 * nwd_ingest_follow_position.  Once nwd_ingest_checkpoints(g) was called
 * (a --follow source exists), every stream commit -- batch or tick --
 * carries a checkpoint, and the stop saves the tracker instead of flushing
 * it.  Without it, the stop flushes as before and then commits an empty
 * snapshot, so a restored one is never restored twice.
 */
void nwd_ingest_checkpoints(nwd_ingest *g);
/* The checkpointed position of path: 1 and *out, or 0 if none. */
int nwd_ingest_follow_position(nwd_ingest *g, const char *path, nw_ckpt_file *out);

/* Waits up to `seconds` (at most 1) for stop_fd to become readable: 1 if
 * netwhod is stopping, else 0.  For readers that retry a batch while
 * ingest is off. */
int nwd_wait_stop(int stop_fd, unsigned seconds);

/* A live source's batch counts and last error: its reader writes them,
 * request threads read them (/health), both under the source's mutex. */
typedef struct nwd_tally {
    uint64_t accepted, rejected, failed_batches;
    char last_error[NW_ERR_MAX];
} nwd_tally;

/* Hands b to the ingest thread (nwd_ingest_stream).  Ingest off (a store
 * error, a full disk), nothing of it was kept: it is held and sent again
 * after each res->retry_after -- the reader reads nothing meanwhile, and
 * last_error says "waiting: ..." -- until it is taken or stop_fd says
 * netwhod is stopping.  Then counts the answer (*res, the last one) into
 * *t under mu.  The caller empties b. */
void nwd_hand_over(nwd_ingest *g, const nwd_batch *b, int stop_fd, pthread_mutex_t *mu,
                   nwd_tally *t, nw_api_ingest_result *res);

/* ------------------------------------------------------------ sources */

typedef enum { NWD_SRC_FIFO, NWD_SRC_STDIN, NWD_SRC_FOLLOW } nwd_src_kind;
typedef struct nwd_sources nwd_sources;

nwd_sources *nwd_sources_new(nwd_ingest *g, const char *default_host);
/* Opens (for a FIFO: creates) the source; -1 if it cannot (logged). */
int nwd_sources_add(nwd_sources *s, nwd_src_kind kind, const char *path);
/* Starts one reader thread per source; -1 on failure (logged). */
int nwd_sources_start(nwd_sources *s);
/* Each source's status for /health (nw_api_env.sources; s may be NULL):
 * callable from any thread while the sources run. */
size_t nwd_sources_status(void *s, nw_api_source *out, size_t max);
/* Stops the readers (even blocked ones), waits for what they read to be
 * ingested, logs each source's counts, removes a FIFO we made, frees s. */
void nwd_sources_stop(nwd_sources *s);

/* -------------------------------------------------------------- check */

/* The start-up check (netwhod_check.c): quick_check of the newest
 * partition, schema versions.  Logs the verdict; returns NULL if all is
 * well, else the problem (malloc'ed: for /health's store_check). */
char *nwd_store_check(const char *dir);

/* ------------------------------------------------------------- follow */

/* --follow FILE (netwhod_follow.c): one reader thread, tail -F with
 * checkpoints.  stop_fd becomes readable when netwhod stops. */
typedef struct nwd_follow nwd_follow;
nwd_follow *nwd_follow_new(const char *path, nwd_ingest *g, const char *default_host,
                           int stop_fd);
/* The thread's body (pthread_create(..., nwd_follow_main, f)). */
void *nwd_follow_main(void *f);
/* Its status for /health; callable from any thread. */
void nwd_follow_status(nwd_follow *f, nw_api_source *out);
/* Logs its counts and frees it (after its thread was joined). */
void nwd_follow_free(nwd_follow *f);

/* --------------------------------------------------------------- http */

typedef struct nwd_http_conf {
    const nw_api_env *env;
    const char *store_dir;      /* each request thread opens it read-only  */
    const char *token;          /* NULL: no authentication                 */
    nwd_ingest *ingest;         /* POST admission (NULL: no ingest)        */
    /* Origins allowed to read answers from a browser (--cors): "*" for
     * any, else exact matches of the request's Origin.  None: no CORS. */
    const char *const *cors_origins;
    int ncors;
} nwd_http_conf;

typedef struct nwd_listener nwd_listener;

/* Serves HTTP on the listening socket fd (TCP or AF_UNIX; MHD closes it at
 * stop).  needs_token: requests must carry conf->token.  conf must outlive
 * the listener.  NULL on failure (logged). */
nwd_listener *nwd_http_start(int fd, int needs_token, const nwd_http_conf *conf);
/* Stops accepting, waits for in-flight requests, frees l. */
void nwd_http_stop(nwd_listener *l);

#endif
