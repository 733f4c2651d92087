/*
 * procstore.h -- the store's time-aware process table, and attribution of
 * connections to processes.
 *
 * Where processes live: DIR/processes.db, one store-level SQLite file (not
 * per partition -- see store/sql.h, SQL_PROCDB_SCHEMA, for why), with one
 * row per (host, pid, create_time), written by the single writer
 * (nw_writer_process, writer.h) and committed with the partitions.
 *
 * The lookup rule ("null where unknown, never a wrong process"): the
 * process that held pid on host at time t is the row with the greatest
 * create_time <= t + NW_PROC_CLOCK_SKEW, provided that it had not exited
 * before t (exit_time is NULL or >= t).  If the newest earlier holder exited before t, or every
 * known holder was created after t, the answer is unknown.  A later
 * holder of the same pid is never an answer for an earlier time, nor the
 * reverse.  A connection is attributed by its first_seen.
 *
 * Attribution happens at query time: nw_query_connections and
 * nw_query_connection (query.h) fill nw_conn.process for every connection
 * they return, so a connection written before its process event arrived
 * (out-of-order delivery, or Sysmon 1 shipped late) is attributed as soon
 * as the event is in the store, without rewriting any connection row.
 */
#ifndef NETWHO_PROCSTORE_H
#define NETWHO_PROCSTORE_H

#include <stdint.h>

#include "netwho/process.h"
#include "netwho/status.h"
#include "netwho/store.h"

/* How much earlier than its process's creation a connection may be
 * stamped.  Real Sysmon exports show it: in the 2019 OTRF capture
 * (tests/data) svchost.exe pid 3024 has Sysmon 3 events at 01:49:47.490
 * and .619 while its Sysmon 1 says it was created at 01:49:48.106, and its
 * ProcessGuid's seconds are 01:49:48.  A pid reused within this second
 * after a connection of its previous holder would be misattributed; PIDs
 * are reused after minutes, not milliseconds. */
#define NW_PROC_CLOCK_SKEW (1LL * NW_TICKS_PER_SEC)

/*
 * The process that held pid on host at time t (rule above).  On NW_OK,
 * *found is 1 and *out is filled (its strings valid until the next call on
 * s; parent_image resolved from the parent's own row, at the child's
 * creation, when no event named it), or *found is 0 (unknown: also when
 * the store has no processes.db yet).  host is matched case-insensitively.
 */
nw_status nw_process_at(nw_store *s, const char *host, uint32_t pid, nw_time t,
                        nw_process *out, int *found, nw_err *err);

/* Changes whenever the process table does (size and modification time of
 * DIR/processes.db and its WAL); 0 if there is none.  An answer cached by
 * the catalog's state alone (a streamed ETag) must include it: a process
 * event changes connections' "process" without touching the catalog. */
uint64_t nw_process_table_stamp(nw_store *s);

/* The file name of a Windows image path: after the last '\' or '/'. */
const char *nw_process_name(const char *image);

/*
 * 1 if image matches the user's process filter: a bare name is compared
 * with the image's file name (case-insensitive; "svchost" also matches
 * "svchost.exe"), a path with the whole image, where a drive letter
 * ("C:") and a device prefix ("\Device\HarddiskVolume4") are the same
 * thing, so "C:\Windows\System32\svchost.exe" matches what
 * Kernel-Process logs.  NULL image never matches.
 */
int nw_process_matches(const char *image, const char *filter);

#endif
