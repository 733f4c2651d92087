/*
 * tracker.h -- folds events into connections, transfers and failures.
 *
 * Events arrive roughly, not exactly, in time order (ETW fills per-CPU
 * buffers): a close can come before the accept it ends.  The tracker holds
 * events in a reorder buffer and folds an event only once the newest event
 * time has moved reorder_window past it, so a stream that is out of order by
 * less than the window folds as if it were sorted.  An event later than
 * that is still folded (into the partition of its own time), just late.
 *
 * Connections are keyed by host, protocol, ip version, local ip:port,
 * remote ip:port and pid.  The folding rules:
 *   connect   opens, outbound, attempted      accept  opens, inbound, established
 *   send/recv/retransmit/copy add bytes and counts, and make an attempted
 *             connection established; copy is its own counter (its bytes
 *             were already counted by a receive) and no transfer traffic
 *   reconnect counts a retry (and marks an unknown direction outbound)
 *   close     ends a TCP connection: closed, or failed if it never moved a
 *             byte and saw at least one reconnect
 * A connection whose opening event was never seen (open when the trace
 * started) is created by its first event, direction unknown for TCP.  For
 * UDP the first event sets the direction: send -> outbound, receive ->
 * inbound.  UDP flows end (closed) after udp_idle of silence.
 *
 * Memory is bounded: an open TCP connection idle for tcp_idle, or the least
 * recently active one once max_open are open, is written to the sink as it
 * is and forgotten.  When a tuple shows up that the tracker does not hold,
 * with anything but a connect or accept, the tracker asks the sink to resume
 * it (sink->resume): a TCP connection still open and last seen within
 * NW_TCP_RESUME_HORIZON, or a UDP flow last seen within udp_idle, continues
 * on the same row and id.  So a trace ingested in two runs (two rotated
 * files) gives the same connections as one run.
 *
 * Not thread-safe: one tracker per ingest thread.
 */
#ifndef NETWHO_TRACKER_H
#define NETWHO_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/conn.h"
#include "netwho/event.h"
#include "netwho/status.h"

/*
 * Where the tracker's output goes (the store writer, or a test).  Every
 * pointer handed to a callback is valid during the call only.  A callback
 * returns NW_OK or an error, which the tracker returns to its caller.
 */
typedef struct nw_sink {
    void *ctx;
    /* A connection, new or changed since it was last written.  The same id
     * may be written many times; the last write wins. */
    nw_status (*conn)(void *ctx, const nw_conn *c);
    nw_status (*transfer)(void *ctx, const nw_transfer *t);
    nw_status (*failure)(void *ctx, const nw_failure *f);
    /* Optional (NULL: never resume).  Looks up the newest connection with
     * c's key (host, proto, ip_version, local/remote ip:port, pid) that is
     * not closed or failed and was last seen at or after since.  If found,
     * fills *out (out->host may point into the sink's storage, valid until
     * the next callback) and returns 1; 0 if none; <0 on error. */
    int (*resume)(void *ctx, const nw_conn *key, nw_time since, nw_conn *out);
    /* Hands out connection ids: returns the first of n fresh ids (> 0) that
     * no row of the store has, or <= 0 on error. */
    int64_t (*reserve_ids)(void *ctx, int64_t n);
} nw_sink;

/* How far back a TCP connection written as open may be resumed. */
#define NW_TCP_RESUME_HORIZON (24LL * 3600 * NW_TICKS_PER_SEC)

typedef struct nw_tracker_opts {
    nw_time reorder_window;   /* default 3 s                                */
    nw_time udp_idle;         /* default 60 s: a UDP flow ends              */
    nw_time tcp_idle;         /* default 300 s: an open TCP conn is flushed */
    nw_time bucket;           /* transfer resolution; default 1 s; 0 = raw  */
    size_t max_open;          /* open connections kept; default 100000      */
    size_t max_reorder;       /* events held for reordering; default 131072.
                                 When full, the oldest is folded early.     */
} nw_tracker_opts;

/* Fills *o with the defaults above. */
void nw_tracker_opts_default(nw_tracker_opts *o);

typedef struct nw_tracker_stats {
    uint64_t events;              /* events folded                          */
    uint64_t late_events;         /* folded after the reorder window passed */
    uint64_t connections;         /* distinct connections this tracker made,
                                     plus those it continued from an earlier
                                     ingest (counted once per resume)       */
    uint64_t resumed;             /* rows continued (after eviction, or from
                                     an earlier ingest)                     */
    uint64_t open;                /* open right now                         */
    uint64_t failures;            /* 17/49 events                           */
    uint64_t evicted_idle;        /* TCP written and forgotten at tcp_idle  */
    uint64_t evicted_full;        /* ... because max_open was reached       */
    nw_time watermark;            /* newest event time seen                 */
} nw_tracker_stats;

typedef struct nw_tracker nw_tracker;

/* New tracker writing to sink (copied).  opts NULL = defaults.
 * Caller frees with nw_tracker_free (after nw_tracker_flush). */
nw_tracker *nw_tracker_new(const nw_tracker_opts *opts, const nw_sink *sink);
void nw_tracker_free(nw_tracker *t);

/* Takes one event (copied).  May fold earlier events and write to the sink.
 * Returns NW_OK or the first sink error. */
nw_status nw_tracker_feed(nw_tracker *t, const nw_event *ev);

/*
 * Advances time without an event (a live collector calls this on a timer
 * with the wall clock, so that idle UDP flows end even when nothing
 * arrives).  Folds what is older than now - reorder_window and ends/evicts
 * idle connections.
 */
nw_status nw_tracker_tick(nw_tracker *t, nw_time now);

/*
 * End of input: folds every held event, writes every open connection and its
 * open transfer bucket to the sink (UDP flows idle for udp_idle before the
 * newest event end as closed; others stay open so that a later ingest can
 * resume them), and forgets them.  The tracker can be fed again after.
 */
nw_status nw_tracker_flush(nw_tracker *t);

/*
 * Like flush, but nothing is forgotten: folds every held event, ends what
 * expire would end at the newest event time, then nw_tracker_sync: every
 * connection that changed since it was last written (open ones as open)
 * and its open transfer bucket are written and kept.  Everything fed so far is in the
 * sink, and later events continue the same connections in memory, with no
 * resume lookups.  netwhod calls it after each POSTed batch, so that the
 * batch is queryable when its answer is sent.
 */
nw_status nw_tracker_checkpoint(nw_tracker *t);

void nw_tracker_stats_get(const nw_tracker *t, nw_tracker_stats *out);

/*
 * Writes every connection that changed since it was last written, as it is
 * now, and what its open transfer bucket holds so far (the rest of that
 * bucket is added to the same row later), and keeps them -- so the store
 * shows open connections up to date, where nw_tracker_flush would end
 * the run.
 * Held events stay held (unlike nw_tracker_checkpoint): netwhod calls it
 * before each follow checkpoint, whose tracker snapshot keeps them.
 * Returns the first sink error.
 */
nw_status nw_tracker_sync(nw_tracker *t);

/*
 * Snapshot of everything the tracker holds: the reorder buffer, the open
 * and lingering connections with their open transfer buckets, the clocks,
 * the id block and the counters.  A tracker loaded from it goes on exactly
 * as the saved one would have (netwhod keeps it in the store next to the
 * read offsets, so a restart neither loses nor repeats a held event).
 *
 * nw_tracker_save: *out is malloc'ed (caller frees), *len its size;
 * NW_ERR_NOMEM.  The format is the build's own (native layout; sizes are
 * checked): only the same build reads it back.
 *
 * nw_tracker_load: into a tracker that holds nothing yet (just made, with
 * the same opts as the saved one).  NW_ERR_INVALID if buf is not a
 * snapshot of this build (the tracker then holds part of it: free it);
 * NW_ERR_NOMEM.
 */
nw_status nw_tracker_save(const nw_tracker *t, unsigned char **out, size_t *len);
nw_status nw_tracker_load(nw_tracker *t, const unsigned char *buf, size_t len);

#endif
