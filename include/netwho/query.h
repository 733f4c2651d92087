/*
 * query.h -- the query engine, shared by the command line and the server.
 *
 * A query names a filter (every field optional, all combined with AND) and
 * visits matching connections ordered by (first_seen, id).  It opens only
 * the partitions whose catalog span can hold a match: for a time window
 * [from, to), those with min_first_seen < to and max_last_seen >= from, so a
 * long-lived connection that began in an older partition is still found.
 * Within a partition every filter is an index lookup (ip: range scan of the
 * 16-byte address index; port, pid, time: their own indexes).
 *
 * Residual filters (community_id, exclude_loopback, scope, and the process
 * filters) have no index: nw_query_connections applies them to each
 * connection the indexed filters return, counting limit and *more after
 * them.  They narrow what the other filters find, they do not find it --
 * community_id alone reads every connection of the time window, so give it
 * a window (or ip, port) when the store is large.
 */
#ifndef NETWHO_QUERY_H
#define NETWHO_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/addr.h"
#include "netwho/conn.h"
#include "netwho/flowid.h"
#include "netwho/store.h"

typedef struct nw_query {
    int has_ip;                 /* ip_lo..ip_hi matches local or remote end  */
    nw_addr ip_lo, ip_hi;
    int port;                   /* -1: any; else local or remote port        */
    int local_port, remote_port;/* -1: any                                   */
    int64_t pid;                /* -1: any                                   */
    const char *host;           /* NULL: any; ASCII case-insensitive match   */
    int proto;                  /* 0: any; NW_PROTO_TCP / NW_PROTO_UDP       */
    int direction;              /* -1: any; nw_direction                     */
    int state;                  /* -1: any; nw_conn_state                    */
    nw_time from, to;           /* active in [from, to); NW_TIME_MIN/MAX     */
    int64_t limit;              /* 0: no limit                               */
    int has_cursor;             /* resume after (cursor_first_seen, cursor_id) */
    nw_time cursor_first_seen;
    int64_t cursor_id;
    const char *process;        /* NULL: any; else the image's file name or
                                   path (nw_process_matches, procstore.h)   */
    int has_process_create;     /* only connections attributed to the one
                                   process of pid created at process_create */
    nw_time process_create;
    /* Residual flow filters (see the file comment): */
    char community_id[NW_COMMUNITY_ID_STRLEN]; /* "": any; else the exact
                                   Community ID v1, seed 0 (flowid.h)       */
    int exclude_loopback;       /* 1: drop connections whose REMOTE end is
                                   loopback (127.0.0.0/8, ::1)              */
    int scope;                  /* -1: any; else the nw_addr_class of the
                                   REMOTE end (addrclass.h)                 */
    /* nw_query_who_page only: resume after the row (who_cursor_host,
     * who_cursor_pid) in (host, pid) order; the host is compared byte-wise
     * (strcmp), as it is stored. */
    int has_who_cursor;
    const char *who_cursor_host;
    uint32_t who_cursor_pid;
} nw_query;

/* A query that matches everything (scope -1, the other filters off). */
void nw_query_init(nw_query *q);

/* Called per match; c and its strings are valid during the call only.
 * Return 0 to go on, non-zero to stop (the query then returns NW_OK). */
typedef int (*nw_conn_cb)(void *ctx, const nw_conn *c);

/* Visits matches in (first_seen, id) order, at most q->limit of them.
 * *more (if not NULL) is set to 1 when the limit cut off further matches.
 * Every connection comes with c->process set (procstore.h: the process
 * that held its pid at first_seen, or NULL); q->process keeps only those
 * whose process matches.  The residual filters (community_id,
 * exclude_loopback, scope, process, has_process_create) apply after the
 * indexed scan, before the limit: q->limit rows that pass all of them. */
nw_status nw_query_connections(nw_store *s, const nw_query *q, nw_conn_cb cb,
                               void *ctx, int *more, nw_err *err);

/* One connection by id: NW_OK and *out (strings and out->process valid
 * until the next call on s), or NW_ERR_INVALID with err "no connection N"
 * if absent. */
nw_status nw_query_connection(nw_store *s, int64_t id, nw_conn *out,
                              nw_err *err);

/* "Which processes talked to this address": one row per (host, pid) over
 * the connections whose REMOTE end is in [ip_lo, ip_hi] and that match the
 * rest of q (q->has_ip must be set; limit caps the rows). */
typedef struct nw_who_row {
    char host[NW_HOST_MAX];
    uint32_t pid;
    uint64_t connections;
    uint64_t bytes_sent, bytes_received;
    nw_time first_seen, last_seen;
} nw_who_row;

/* Rows ordered by bytes_sent + bytes_received descending, then host, pid,
 * at most q->limit of them (the biggest).  Every group is computed to rank
 * them, and this order cannot be paged: a row's bytes grow while ingest goes
 * on, so it would move between pages.  Caller frees *rows with free(). */
nw_status nw_query_who(nw_store *s, const nw_query *q, nw_who_row **rows,
                       size_t *n, nw_err *err);

/*
 * The same rows, one page at a time, ordered by (host, pid): at most
 * q->limit rows (0: all) after q's who cursor, if it has one.  *more (if
 * not NULL) is set to 1 when further rows follow; pass the last row's host
 * and pid back as the who cursor for the next page.
 *
 * Why (host, pid): it is the group's key, so it never changes while ingest
 * goes on -- new traffic changes a row's numbers, not its place, and a new
 * (host, pid) appears on the page its key belongs to.  A page is then a
 * range of the roll-up's primary key (remote_ip, host, pid): for one
 * address in a partition the window covers, SQLite reads just the page's
 * rows instead of every group (the popular DNS server has hundreds).
 * Consistency: each page is read at its own moment, so a row's numbers on
 * an earlier page may be older than those on a later one.
 */
nw_status nw_query_who_page(nw_store *s, const nw_query *q, nw_who_row **rows,
                            size_t *n, int *more, nw_err *err);

/* A connection's transfers in time order. */
typedef int (*nw_transfer_cb)(void *ctx, const nw_transfer *t);
nw_status nw_query_transfers(nw_store *s, int64_t conn_id, nw_transfer_cb cb,
                             void *ctx, nw_err *err);

/* Failure events (17/49) in [from, to), filtered by host if not NULL. */
typedef int (*nw_failure_cb)(void *ctx, const nw_failure *f);
nw_status nw_query_failures(nw_store *s, const char *host, nw_time from,
                            nw_time to, nw_failure_cb cb, void *ctx,
                            nw_err *err);

/* One page of a connection's transfers in time order: those after time
 * `after` (NW_TIME_MIN: from the start), at most limit (0: all).  *more
 * (if not NULL) is set to 1 when the limit cut off further rows.  The
 * server pages with this so that a long series streams in constant memory. */
nw_status nw_query_transfers_page(nw_store *s, int64_t conn_id, nw_time after,
                                  int64_t limit, nw_transfer_cb cb, void *ctx,
                                  int *more, nw_err *err);

/* Top talkers: what to group the connections active in [from, to) by. */
typedef enum nw_top_by {
    NW_TOP_REMOTE_IP = 0,
    NW_TOP_REMOTE_PORT,
    NW_TOP_PID,                 /* per (host, pid): a pid means nothing alone */
    NW_TOP_HOST
} nw_top_by;

typedef enum nw_top_order {
    NW_TOP_ORDER_BYTES = 0,     /* bytes_sent + bytes_received, descending */
    NW_TOP_ORDER_CONNECTIONS    /* connections, descending                 */
} nw_top_order;

/* Distinct groups one top query may gather (across partitions) before it
 * gives up with NW_ERR_LIMIT: each costs ~300 bytes, so this bounds the
 * memory of one request to about 60 MB. */
#define NW_QUERY_TOP_MAX_GROUPS 200000

typedef struct nw_top_row {
    char host[NW_HOST_MAX];     /* by pid and by host                      */
    uint32_t pid;               /* by pid                                  */
    nw_addr remote_ip;          /* by remote_ip (IPv4 in mapped form)      */
    uint16_t remote_port;       /* by remote_port                          */
    uint64_t connections, bytes_sent, bytes_received;
} nw_top_row;

/* Groups merged across partitions, ordered by order (ties: by the key),
 * at most limit rows (0: all).  Caller frees *rows with free(). */
nw_status nw_query_top(nw_store *s, nw_top_by by, nw_top_order order,
                       nw_time from, nw_time to, size_t limit,
                       nw_top_row **rows, size_t *n, nw_err *err);

#endif
