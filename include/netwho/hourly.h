/*
 * hourly.h -- the store's hourly roll-up: connections and bytes per
 * (hour, host, pid, remote ip, remote port), kept longer than the raw
 * partitions so that month-long questions stay answerable.
 *
 *   DIR/rollups.db   one table, "hourly", written by the single writer
 *                    (writer.h) in its own transaction, committed right
 *                    after the partitions; WAL, PRAGMA user_version
 *                    NW_HOURLY_SCHEMA_VERSION.
 *
 * What a row counts:
 *   - connections: 1 for each connection in the hour of its first_seen
 *     (when it is first written: first_seen may still move a little
 *     earlier with a reordered event; the count stays where it was put);
 *   - bytes_sent, bytes_received: each write of a connection adds what it
 *     added to the connection's counters since its previous write, in the
 *     hour of the connection's last_seen at that write.  This is an
 *     approximation: bytes are placed in the hour the writer saw them as
 *     last_seen, so a long connection written once (when it ends) has all
 *     its bytes in its last hour.  Over a day or a month the totals are
 *     exact: every byte of every connection is counted exactly once.
 *
 * Retention (nw_store_apply_retention, store.h) drops partitions and
 * leaves the roll-up alone; rollup_days deletes its rows by hour.
 *
 * Crash behaviour: the roll-up commits after the partitions, so a crash
 * (or failed commit) between the two loses that commit's roll-up
 * additions -- unless the commit was checkpointed (netwhod --follow,
 * checkpoint.h): then the additions are in the checkpoint, rollups.db
 * records the checkpoint number it committed (table rollup_mark), and
 * loading the checkpoint adds them if rollups.db is behind.  The raw rows
 * are not affected.
 */
#ifndef NETWHO_HOURLY_H
#define NETWHO_HOURLY_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/addr.h"
#include "netwho/conn.h"
#include "netwho/nwtime.h"
#include "netwho/store.h"

#define NW_HOURLY_SCHEMA_VERSION 1

/* Days of roll-up rows `netwho ingest` and netwhod keep unless told
 * (--rollup-retention-days): a year and a month, so that "the same month
 * last year" is still there. */
#define NW_ROLLUP_RETENTION_DAYS_DEFAULT 400

/* One hour in nw_time ticks. */
#define NW_TICKS_PER_HOUR (3600 * NW_TICKS_PER_SEC)

typedef struct nw_hourly_query {
    int has_ip;                 /* REMOTE end in [ip_lo, ip_hi]            */
    nw_addr ip_lo, ip_hi;
    const char *host;           /* NULL: any; ASCII case-insensitive       */
    int64_t pid;                /* -1: any                                 */
    int remote_port;            /* -1: any                                 */
    nw_time from, to;           /* hours that overlap [from, to):
                                   NW_TIME_MIN / NW_TIME_MAX for no bound  */
    int by_hour;                /* 1: a row per hour; 0: one total per
                                   (host, pid, remote_ip, remote_port)     */
    int64_t limit;              /* 0: all rows                             */
} nw_hourly_query;

/* Everything, by hour, no limit. */
void nw_hourly_query_init(nw_hourly_query *q);

typedef struct nw_hourly_row {
    nw_time hour;               /* start of the hour; NW_TIME_MIN in a
                                   total (by_hour 0)                       */
    char host[NW_HOST_MAX];
    uint32_t pid;
    nw_addr remote_ip;          /* IPv4 in mapped form                     */
    uint16_t remote_port;
    uint64_t connections, bytes_sent, bytes_received;
} nw_hourly_row;

/* Called per row; r is valid during the call only.  Non-zero stops. */
typedef int (*nw_hourly_cb)(void *ctx, const nw_hourly_row *r);

/*
 * Visits the roll-up's rows matching q: by hour ordered by (hour, host,
 * pid, remote_ip, remote_port); totals ordered by (host, pid, remote_ip,
 * remote_port).  At most q->limit rows; *more (if not NULL) is set to 1
 * when the limit cut off further rows.  A store without DIR/rollups.db
 * has no rows (NW_OK).  The ip range is served by the table's primary key
 * (remote_ip, remote_port, hour, host, pid), a time-only query by its
 * hour index.
 */
nw_status nw_query_hourly(nw_store *s, const nw_hourly_query *q, nw_hourly_cb cb,
                          void *ctx, int *more, nw_err *err);

#endif
