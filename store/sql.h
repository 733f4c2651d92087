/*
 * sql.h -- every SQL text of the store, in one place (internal to store/).
 *
 * Statements are prepared once per database handle and then bound, stepped
 * and reset.  Parameters are always bound, never spliced into the text: the
 * query engine assembles its WHERE clause from the fixed fragments below
 * (one text per filter combination), and each fragment owns fixed parameter
 * numbers, so the same binding code serves every combination.
 *
 * Column order of the connections table is the order of NW_COL_* in
 * store_int.h; SQL_CONN_COLUMNS, the INSERT and the UPDATE use it, so
 * parameter ?N is column N-1 everywhere.
 */
#ifndef NETWHO_STORE_SQL_H
#define NETWHO_STORE_SQL_H

/* ---------------------------------------------------------------- pragmas */

/* WAL: readers (queries, netwhod) never wait for the writer, and a commit
 * is one sequential append.  synchronous=NORMAL in WAL mode can lose the last
 * commits on power loss but never corrupts the file. */
#define SQL_PRAGMA_WAL "PRAGMA journal_mode=WAL"
#define SQL_PRAGMA_SYNC "PRAGMA synchronous=NORMAL"
/* Partition files only, set before their first write: with 16 KiB pages
 * the random inserts into six indexes ran 15-25% faster than with 4 KiB
 * (fewer splits, shallower trees) and the files came out 1.5% smaller. */
#define SQL_PRAGMA_PAGE_SIZE "PRAGMA page_size=16384"
#define SQL_PRAGMA_USER_VERSION_GET "PRAGMA user_version"
/* Printed with NW_SCHEMA_VERSION (an integer constant, not user input). */
#define SQL_PRAGMA_USER_VERSION_SET_FMT "PRAGMA user_version=%d"
#define SQL_PRAGMA_CACHE_FMT "PRAGMA cache_size=-%d"
/* Read handles map their file (query.c, NW_READ_MMAP_BYTES): in WAL mode a
 * reader drops its whole page cache at the first read after any commit,
 * and with ingest committing every second, every query thread re-read
 * (copied) every page it touched -- the window query fell from ~600 to
 * ~30 requests/s beside ingest.  Mapped pages are not copied, so a reset
 * costs nothing.  Printed with a constant, not user input. */
#define SQL_PRAGMA_MMAP_FMT "PRAGMA mmap_size=%lld"
#define SQL_COUNT_SCHEMA_OBJECTS "SELECT count(*) FROM sqlite_master"

#define SQL_BEGIN "BEGIN"
#define SQL_BEGIN_IMMEDIATE "BEGIN IMMEDIATE"
#define SQL_COMMIT "COMMIT"
#define SQL_ROLLBACK "ROLLBACK"

/* ---------------------------------------------------------------- catalog */

#define SQL_CATALOG_SCHEMA                                                    \
    "CREATE TABLE IF NOT EXISTS meta("                                        \
    " key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;"                   \
    "CREATE TABLE IF NOT EXISTS partitions("                                  \
    " name TEXT PRIMARY KEY NOT NULL,"                                        \
    " start INTEGER NOT NULL, \"end\" INTEGER NOT NULL,"                      \
    " min_first_seen INTEGER NOT NULL, max_first_seen INTEGER NOT NULL,"      \
    " max_last_seen INTEGER NOT NULL,"                                        \
    " connections INTEGER NOT NULL, transfers INTEGER NOT NULL,"              \
    " failures INTEGER NOT NULL,"                                             \
    " min_conn_id INTEGER NOT NULL, max_conn_id INTEGER NOT NULL,"            \
    " min_xfer_conn_id INTEGER NOT NULL, max_xfer_conn_id INTEGER NOT NULL"   \
    ") WITHOUT ROWID"

#define SQL_META_KEY_PARTITIONING "partitioning"
#define SQL_META_KEY_NEXT_ID "next_conn_id"
/* Bumped by every writer commit that changed rows, after the partitions
 * committed, and by retention: readers compare it to know that nothing
 * changed (netwhod's ETags).  Absent until the first such commit (0). */
#define SQL_META_KEY_GENERATION "generation"
#define SQL_META_BUMP_GENERATION                                              \
    "INSERT INTO meta(key, value) VALUES('" SQL_META_KEY_GENERATION "', 1)"   \
    " ON CONFLICT(key) DO UPDATE SET value = value + 1"
#define SQL_META_GET_GENERATION                                               \
    "SELECT value FROM meta WHERE key = '" SQL_META_KEY_GENERATION "'"

/* ?1 key, ?2 value; keeps an existing value (store creation is idempotent). */
#define SQL_META_INIT "INSERT INTO meta(key, value) VALUES(?1, ?2) "          \
                      "ON CONFLICT(key) DO NOTHING"
#define SQL_META_GET "SELECT value FROM meta WHERE key = ?1"
#define SQL_META_SET "UPDATE meta SET value = ?2 WHERE key = ?1"

/* Column order read by store.c's catalog loader. */
#define SQL_PART_LIST                                                         \
    "SELECT name, start, \"end\", min_first_seen, max_first_seen,"            \
    " max_last_seen, connections, transfers, failures,"                       \
    " min_conn_id, max_conn_id, min_xfer_conn_id, max_xfer_conn_id"           \
    " FROM partitions ORDER BY start"

/* The writer's per-commit merge: bounds only widen (MIN/MAX), counts add
 * the rows inserted since the last commit.  Same parameter order as the
 * list's columns. */
#define SQL_PART_MERGE                                                        \
    "INSERT INTO partitions(name, start, \"end\", min_first_seen,"            \
    " max_first_seen, max_last_seen, connections, transfers, failures,"       \
    " min_conn_id, max_conn_id, min_xfer_conn_id, max_xfer_conn_id)"          \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"         \
    " ON CONFLICT(name) DO UPDATE SET"                                        \
    " min_first_seen = min(min_first_seen, excluded.min_first_seen),"         \
    " max_first_seen = max(max_first_seen, excluded.max_first_seen),"         \
    " max_last_seen = max(max_last_seen, excluded.max_last_seen),"            \
    " connections = connections + excluded.connections,"                      \
    " transfers = transfers + excluded.transfers,"                            \
    " failures = failures + excluded.failures,"                               \
    " min_conn_id = min(min_conn_id, excluded.min_conn_id),"                  \
    " max_conn_id = max(max_conn_id, excluded.max_conn_id),"                  \
    " min_xfer_conn_id = min(min_xfer_conn_id, excluded.min_xfer_conn_id),"   \
    " max_xfer_conn_id = max(max_xfer_conn_id, excluded.max_xfer_conn_id)"

#define SQL_PART_DELETE "DELETE FROM partitions WHERE name = ?1"

/* Newest event time per host of one partition (nw_store_hosts): from the
 * roll-up (version 2) or the connections (version 1), and the failures. */
#define SQL_HOSTS_LAST_V2                                                     \
    "SELECT host, max(last_seen) FROM who_rollup GROUP BY host UNION ALL"     \
    " SELECT host, max(time) FROM failures GROUP BY host"
#define SQL_HOSTS_LAST_V1                                                     \
    "SELECT host, max(last_seen) FROM connections GROUP BY host UNION ALL"    \
    " SELECT host, max(time) FROM failures GROUP BY host"

/* -------------------------------------------------------------- partition */

/*
 * who_rollup (schema version 2): one row per (remote_ip, host, pid) of the
 * partition's connections, with their count, byte sums, min(first_seen) and
 * max(last_seen), kept exact by the writer in the same transaction as the
 * rows (see sink_conn).  nw_query_who reads it instead of grouping every
 * matching connection when nothing but ip/host/pid filters and the window
 * covers the whole partition span (docs/design.md, Store).
 */
#define SQL_WHO_ROLLUP_TABLE                                                  \
    "CREATE TABLE IF NOT EXISTS who_rollup("                                  \
    " remote_ip BLOB NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"     \
    " connections INTEGER NOT NULL, bytes_sent INTEGER NOT NULL,"             \
    " bytes_received INTEGER NOT NULL, first_seen INTEGER NOT NULL,"          \
    " last_seen INTEGER NOT NULL,"                                            \
    " PRIMARY KEY(remote_ip, host, pid)) WITHOUT ROWID"

/* The roll-up recomputed from the connections: the writer runs it before
 * committing a partition whose roll-up missed a write (an error between a
 * connection write and its roll-up write). */
#define SQL_ROLLUP_REBUILD                                                    \
    "DELETE FROM who_rollup;"                                                 \
    "INSERT INTO who_rollup(remote_ip, host, pid, connections, bytes_sent,"   \
    " bytes_received, first_seen, last_seen)"                                 \
    " SELECT remote_ip, host, pid, count(*), sum(bytes_sent),"                \
    " sum(bytes_received), min(first_seen), max(last_seen) FROM connections"  \
    " GROUP BY remote_ip, host, pid"

/*
 * processes (schema version 2): reserved and left EMPTY.  Process rows live
 * in the store-level DIR/processes.db instead (SQL_PROCDB_SCHEMA below):
 * a process is often created in an older partition than its connections
 * (a service started days ago), so a per-partition table would need a
 * lookup across every older partition per connection; and processes are
 * few next to connections, so one small file serves every lookup with
 * one index probe.  The table stays in the schema so that version-2 files
 * keep their shape.
 * Its original description:
 * who held a PID on a host, and from when to when.  PIDs are reused within
 * minutes on a busy host, so a connection is attributed to the holder whose
 * [create_time, exit_time) contains its time -- hence the key order.
 * exit_time is NULL while the process runs; image is the path as logged
 * (\Device\HarddiskVolumeN\...); guid is the Sysmon-style ProcessGuid.
 */
#define SQL_PROCESSES_TABLE                                                   \
    "CREATE TABLE IF NOT EXISTS processes("                                   \
    " host TEXT NOT NULL, pid INTEGER NOT NULL, create_time INTEGER NOT NULL,"\
    " exit_time INTEGER, parent_pid INTEGER, session_id INTEGER,"             \
    " sequence INTEGER, image TEXT, command_line TEXT, user TEXT, guid TEXT," \
    " PRIMARY KEY(host, pid, create_time)) WITHOUT ROWID"

/* A version-1 partition becomes version 2 (store.c, in one transaction
 * with the version bump, when the writer opens it); running it twice is
 * harmless. */
#define SQL_PARTITION_MIGRATE_V2                                              \
    SQL_WHO_ROLLUP_TABLE ";" SQL_PROCESSES_TABLE ";" SQL_ROLLUP_REBUILD

/* Version 3: the time-window index carries first_seen too (see below).
 * A version-2 partition gets this alone; a version-1 one V2 then this. */
#define SQL_PARTITION_MIGRATE_V3                                              \
    "CREATE INDEX IF NOT EXISTS conn_last_first"                              \
    " ON connections(last_seen, first_seen);"                                 \
    "DROP INDEX IF EXISTS conn_last"

/*
 * Indexes, each one for a query of query.h (every index costs insert time
 * and ~15-30 bytes per row, so there is none beyond these):
 *   conn_remote  (remote_ip, remote_port): CIDR range scans of the remote
 *                end (who, ip filter), and with the port the exact lookup
 *                that resume does for every unknown tuple;
 *   conn_local   local_ip: the other half of the ip filter (local OR remote);
 *   conn_rport, conn_lport: the port filter (local OR remote);
 *   conn_pid     pid;
 *   conn_last_first (last_seen, first_seen): the time window ("last_seen
 *                >= from") -- it is what makes a day-3 window cheap in a
 *                day-1 partition that a long-lived connection stretched.
 *                With first_seen in it (schema version 3; version 2 had
 *                last_seen alone), a window query filters "first_seen < to"
 *                and sorts by (first_seen, id) from the index alone, and
 *                reads only its page's rows (SQL_Q_CONN_LATE_HEAD): it read
 *                every row active in the window, and beside ingest every
 *                row newer than from.
 * id is the rowid (no extra index).  Enums are small integers; TCP option
 * columns are NULL when no connect/accept carried them.
 */
#define SQL_PARTITION_SCHEMA                                                  \
    "CREATE TABLE connections("                                               \
    " id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,"      \
    " proto INTEGER NOT NULL, ip_version INTEGER NOT NULL,"                   \
    " direction INTEGER NOT NULL, state INTEGER NOT NULL,"                    \
    " local_ip BLOB NOT NULL, local_port INTEGER NOT NULL,"                   \
    " remote_ip BLOB NOT NULL, remote_port INTEGER NOT NULL,"                 \
    " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"               \
    " anchor INTEGER NOT NULL,"                                               \
    " bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,"          \
    " bytes_retransmitted INTEGER NOT NULL, bytes_copied INTEGER NOT NULL,"   \
    " send_events INTEGER NOT NULL, receive_events INTEGER NOT NULL,"         \
    " retransmit_events INTEGER NOT NULL, copy_events INTEGER NOT NULL,"      \
    " reconnects INTEGER NOT NULL,"                                           \
    " mss INTEGER, sackopt INTEGER, tsopt INTEGER, wsopt INTEGER,"            \
    " rcvwin INTEGER, rcvwinscale INTEGER, sndwinscale INTEGER);"             \
    "CREATE INDEX conn_remote ON connections(remote_ip, remote_port);"        \
    "CREATE INDEX conn_local ON connections(local_ip);"                       \
    "CREATE INDEX conn_rport ON connections(remote_port);"                    \
    "CREATE INDEX conn_lport ON connections(local_port);"                     \
    "CREATE INDEX conn_pid ON connections(pid);"                              \
    "CREATE INDEX conn_last_first ON connections(last_seen, first_seen);"    \
    "CREATE TABLE transfers("                                                 \
    " conn_id INTEGER NOT NULL, time INTEGER NOT NULL,"                       \
    " bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,"          \
    " bytes_retransmitted INTEGER NOT NULL,"                                  \
    " send_events INTEGER NOT NULL, receive_events INTEGER NOT NULL,"         \
    " retransmit_events INTEGER NOT NULL,"                                    \
    " PRIMARY KEY(conn_id, time)) WITHOUT ROWID;"                             \
    "CREATE TABLE failures("                                                  \
    " time INTEGER NOT NULL, host TEXT NOT NULL, event_id INTEGER NOT NULL,"  \
    " proto INTEGER NOT NULL, fail_proto INTEGER NOT NULL,"                   \
    " fail_code INTEGER NOT NULL);"                                           \
    "CREATE INDEX failures_time ON failures(time);"                         \
    SQL_WHO_ROLLUP_TABLE ";" SQL_PROCESSES_TABLE

/* Every column of a connection, in NW_COL_* order. */
#define SQL_CONN_COLUMNS                                                      \
    "id, host, pid, proto, ip_version, direction, state,"                     \
    " local_ip, local_port, remote_ip, remote_port,"                          \
    " first_seen, last_seen, anchor,"                                         \
    " bytes_sent, bytes_received, bytes_retransmitted, bytes_copied,"         \
    " send_events, receive_events, retransmit_events, copy_events,"           \
    " reconnects, mss, sackopt, tsopt, wsopt, rcvwin, rcvwinscale,"           \
    " sndwinscale"

/*
 * A connection write is INSERT ... DO NOTHING, then, only if the id existed
 * (changes() == 0), an UPDATE of every column: the last write wins, and the
 * catalog's row count stays exact (an upsert cannot tell insert from
 * update).  Rewrites are rare (a connection is written when it ends), so
 * the second statement costs nothing on the hot path.
 */
#define SQL_CONN_INSERT                                                       \
    "INSERT INTO connections(" SQL_CONN_COLUMNS ") VALUES("                   \
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"       \
    " ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29,"  \
    " ?30) ON CONFLICT(id) DO NOTHING"

#define SQL_CONN_UPDATE                                                       \
    "UPDATE connections SET host = ?2, pid = ?3, proto = ?4,"                 \
    " ip_version = ?5, direction = ?6, state = ?7, local_ip = ?8,"            \
    " local_port = ?9, remote_ip = ?10, remote_port = ?11,"                   \
    " first_seen = ?12, last_seen = ?13, anchor = ?14, bytes_sent = ?15,"     \
    " bytes_received = ?16, bytes_retransmitted = ?17, bytes_copied = ?18,"   \
    " send_events = ?19, receive_events = ?20, retransmit_events = ?21,"      \
    " copy_events = ?22, reconnects = ?23, mss = ?24, sackopt = ?25,"         \
    " tsopt = ?26, wsopt = ?27, rcvwin = ?28, rcvwinscale = ?29,"             \
    " sndwinscale = ?30 WHERE id = ?1"

/* A rewrite's old byte counts (rowid lookup), read before the UPDATE so
 * that the roll-up gets the difference. */
#define SQL_CONN_OLD_BYTES                                                    \
    "SELECT bytes_sent, bytes_received FROM connections WHERE id = ?1"

/* Adds to a roll-up row: ?4 connections (1 for a new row, 0 for a rewrite),
 * ?5/?6 bytes (a rewrite's deltas), ?7/?8 the connection's times. */
#define SQL_ROLLUP_ADD                                                        \
    "INSERT INTO who_rollup(remote_ip, host, pid, connections, bytes_sent,"   \
    " bytes_received, first_seen, last_seen)"                                 \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                                 \
    " ON CONFLICT(remote_ip, host, pid) DO UPDATE SET"                        \
    " connections = connections + excluded.connections,"                      \
    " bytes_sent = bytes_sent + excluded.bytes_sent,"                         \
    " bytes_received = bytes_received + excluded.bytes_received,"             \
    " first_seen = min(first_seen, excluded.first_seen),"                     \
    " last_seen = max(last_seen, excluded.last_seen)"

/* Transfers: insert, or add to the bucket already there (late data). */
#define SQL_XFER_INSERT                                                       \
    "INSERT INTO transfers(conn_id, time, bytes_sent, bytes_received,"        \
    " bytes_retransmitted, send_events, receive_events, retransmit_events)"   \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                                 \
    " ON CONFLICT(conn_id, time) DO NOTHING"

#define SQL_XFER_ADD                                                          \
    "UPDATE transfers SET bytes_sent = bytes_sent + ?3,"                      \
    " bytes_received = bytes_received + ?4,"                                  \
    " bytes_retransmitted = bytes_retransmitted + ?5,"                        \
    " send_events = send_events + ?6,"                                        \
    " receive_events = receive_events + ?7,"                                  \
    " retransmit_events = retransmit_events + ?8"                             \
    " WHERE conn_id = ?1 AND time = ?2"

#define SQL_FAIL_INSERT                                                       \
    "INSERT INTO failures(time, host, event_id, proto, fail_proto,"           \
    " fail_code) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"

/* Resume: the newest open row of one tuple (conn_remote gives an exact
 * lookup).  ?10/?11 are the two open states. */
#define SQL_CONN_RESUME_WHERE                                                 \
    " WHERE remote_ip = ?1 AND remote_port = ?2 AND local_ip = ?3"            \
    " AND local_port = ?4 AND pid = ?5 AND host = ?6 AND proto = ?7"          \
    " AND ip_version = ?8 AND state IN (?10, ?11) AND last_seen >= ?9"        \
    " ORDER BY last_seen DESC, id DESC LIMIT 1"
#define SQL_CONN_RESUME                                                       \
    "SELECT " SQL_CONN_COLUMNS " FROM connections" SQL_CONN_RESUME_WHERE

/* The same probe through the local port.  Without statistics SQLite takes
 * conn_remote, whose remote address and port are the DNS server's for
 * every DNS client flow (a row per client flow: ~100k at 10M events, read
 * one by one); the ephemeral side of a flow picks out a few rows, so the
 * writer probes through the local port when it is the higher of the two. */
#define SQL_CONN_RESUME_LPORT                                                 \
    "SELECT " SQL_CONN_COLUMNS " FROM connections INDEXED BY conn_lport"      \
    SQL_CONN_RESUME_WHERE

/* Recomputes the catalog row of a partition file the catalog does not know
 * (written, then a crash before the catalog commit). */
#define SQL_PART_RESCAN_CONN                                                  \
    "SELECT count(*), min(first_seen), max(first_seen), max(last_seen),"      \
    " min(id), max(id) FROM connections"
#define SQL_PART_RESCAN_XFER                                                  \
    "SELECT count(*), min(conn_id), max(conn_id) FROM transfers"
#define SQL_PART_RESCAN_FAIL "SELECT count(*) FROM failures"

/* ------------------------------------------------------------------ query */

/*
 * Parameter numbers owned by the query fragments.  A fragment that is not
 * in a text leaves its numbers unbound, which SQLite allows.
 */
#define SQLP_IP_LO 1
#define SQLP_IP_HI 2
#define SQLP_PORT 3
#define SQLP_LPORT 4
#define SQLP_RPORT 5
#define SQLP_PID 6
#define SQLP_HOST 7
#define SQLP_PROTO 8
#define SQLP_DIR 9
#define SQLP_STATE 10
#define SQLP_TO 11
#define SQLP_FROM 12
#define SQLP_CUR_FS 13
#define SQLP_CUR_ID 14
#define SQLP_LIMIT 15
#define SQLP_PART_FS_LO 16
#define SQLP_PART_FS_HI 17
#define SQLP_WHO_CUR_HOST 18
#define SQLP_WHO_CUR_PID 19

#define SQL_Q_CONN_HEAD "SELECT " SQL_CONN_COLUMNS " FROM connections WHERE 1"
/* A time-only query (from, to, cursor) picks its page's ids from
 * conn_last_first alone, then reads those rows: the rows it only looks at
 * are never fetched.  Followed by the fragments, SQL_Q_CONN_TAIL and
 * SQL_Q_CONN_LATE_TAIL. */
#define SQL_Q_CONN_LATE_HEAD                                                  \
    "SELECT " SQL_CONN_COLUMNS " FROM connections WHERE id IN"                \
    " (SELECT id FROM connections WHERE 1"
#define SQL_Q_CONN_LATE_TAIL ") ORDER BY first_seen, id"
/* ?16/?17: the partition's first_seen bounds as the catalog said when the
 * query began.  The k-way merge groups partitions by those bounds; a row a
 * writer commits later outside them would come out of order (and a cursor
 * taken after it would skip rows), so it waits for the next query. */
#define SQL_Q_CONN_TAIL                                                       \
    " AND first_seen BETWEEN ?16 AND ?17 ORDER BY first_seen, id LIMIT ?15"

#define SQL_Q_WHO_HEAD                                                        \
    "SELECT host, pid, count(*), sum(bytes_sent), sum(bytes_received),"       \
    " min(first_seen), max(last_seen) FROM connections WHERE 1"
/* Groups in key order: nw_query_who_page reads a page as the first ?15
 * groups after its cursor (-1: all; nw_query_who ranks every group). */
#define SQL_Q_WHO_TAIL " GROUP BY host, pid ORDER BY host, pid LIMIT ?15"
/* The same columns from the roll-up (followed by the ip, pid and host
 * fragments, whose column names it shares, and SQL_Q_WHO_TAIL). */
#define SQL_Q_WHO_ROLLUP_HEAD                                                 \
    "SELECT host, pid, sum(connections), sum(bytes_sent),"                    \
    " sum(bytes_received), min(first_seen), max(last_seen) FROM who_rollup"   \
    " WHERE 1"
/* One address: its roll-up rows are one per (host, pid) already; no
 * GROUP BY (and SQL_F_IP_REMOTE_ONE instead of the range; ?2 unused). */
#define SQL_Q_WHO_ROLLUP_ONE_HEAD                                             \
    "SELECT host, pid, connections, bytes_sent, bytes_received, first_seen,"  \
    " last_seen FROM who_rollup WHERE 1"
#define SQL_F_IP_REMOTE_ONE " AND remote_ip = ?1"
/* With remote_ip = ?1 and this order, a page is one range of the
 * roll-up's primary key (remote_ip, host, pid). */
#define SQL_Q_WHO_ONE_TAIL " ORDER BY host, pid LIMIT ?15"
/* The who cursor: groups after (host, pid) ?18, ?19.  A row value, so that
 * SQLite bounds the roll-up's key range with it (an OR of the two parts
 * would be a filter, not a range). */
#define SQL_F_WHO_CURSOR " AND (host, pid) > (?18, ?19)"

/* Either end in [lo, hi]: two range scans (MULTI-INDEX OR). */
#define SQL_F_IP_EITHER                                                       \
    " AND (remote_ip BETWEEN ?1 AND ?2 OR local_ip BETWEEN ?1 AND ?2)"
#define SQL_F_IP_REMOTE " AND remote_ip BETWEEN ?1 AND ?2"
#define SQL_F_PORT " AND (local_port = ?3 OR remote_port = ?3)"
#define SQL_F_LPORT " AND local_port = ?4"
#define SQL_F_RPORT " AND remote_port = ?5"
#define SQL_F_PID " AND pid = ?6"
#define SQL_F_HOST " AND host = ?7 COLLATE NOCASE"
#define SQL_F_PROTO " AND proto = ?8"
#define SQL_F_DIR " AND direction = ?9"
#define SQL_F_STATE " AND state = ?10"
/* Active in [from, to): began before to, and was still seen at from. */
#define SQL_F_TO " AND first_seen < ?11"
#define SQL_F_FROM " AND last_seen >= ?12"
#define SQL_F_CURSOR                                                          \
    " AND (first_seen > ?13 OR (first_seen = ?13 AND id > ?14))"

#define SQL_Q_CONN_BY_ID                                                      \
    "SELECT " SQL_CONN_COLUMNS " FROM connections WHERE id = ?1"

#define SQL_Q_XFERS                                                           \
    "SELECT conn_id, time, bytes_sent, bytes_received, bytes_retransmitted,"  \
    " send_events, receive_events, retransmit_events FROM transfers"          \
    " WHERE conn_id = ?1 ORDER BY time"

/* One page of a connection's transfers: ?2 the time of the last bucket the
 * client already has (keyset), ?3 how many rows (one more than the page, to
 * tell whether more follow). */
#define SQL_Q_XFERS_AFTER                                                     \
    "SELECT conn_id, time, bytes_sent, bytes_received, bytes_retransmitted,"  \
    " send_events, receive_events, retransmit_events FROM transfers"          \
    " WHERE conn_id = ?1 AND time > ?2 ORDER BY time LIMIT ?3"

/*
 * Top talkers: one group per key over the connections active in [?1, ?2).
 * Every text has the same five columns -- key, second key (pid, else 0),
 * connections, bytes sent, bytes received -- so one reader serves all; the
 * key column is chosen by picking a text, never by splicing a name.
 */
#define SQL_Q_TOP_TAIL_                                                       \
    " count(*), sum(bytes_sent), sum(bytes_received) FROM connections"        \
    " WHERE first_seen < ?2 AND last_seen >= ?1"
#define SQL_Q_TOP_RIP                                                         \
    "SELECT remote_ip, 0," SQL_Q_TOP_TAIL_ " GROUP BY remote_ip"
#define SQL_Q_TOP_RPORT                                                       \
    "SELECT remote_port, 0," SQL_Q_TOP_TAIL_ " GROUP BY remote_port"
#define SQL_Q_TOP_PID                                                         \
    "SELECT host, pid," SQL_Q_TOP_TAIL_ " GROUP BY host, pid"
#define SQL_Q_TOP_HOST                                                        \
    "SELECT host, 0," SQL_Q_TOP_TAIL_ " GROUP BY host"

/* ?1 from, ?2 to, ?3 host (bound only in the _HOST text). */
#define SQL_Q_FAILS                                                           \
    "SELECT time, host, event_id, proto, fail_proto, fail_code FROM failures" \
    " WHERE time >= ?1 AND time < ?2 ORDER BY time, rowid"
#define SQL_Q_FAILS_HOST                                                      \
    "SELECT time, host, event_id, proto, fail_proto, fail_code FROM failures" \
    " WHERE time >= ?1 AND time < ?2 AND host = ?3 COLLATE NOCASE"            \
    " ORDER BY time, rowid"

/* ---------------------------------------------------------- processes.db */

/*
 * The store's process table (store/process.c): one row per process a host
 * ran, keyed by (host, pid, create_time) -- a pid alone is reused within
 * minutes.  create_prec says how exact create_time is (procevent.h:
 * 1 = FILETIME, 10000 = Sysmon's milliseconds, 10^7 = the seconds of a
 * ProcessGuid): two events of one process are merged when their creation
 * intervals [create_time, create_time + prec) touch and their guids and
 * sequence numbers do not differ.  exit_time is NULL while running or
 * unknown.  parent_image as an event gave it (Sysmon 1); else the reader
 * resolves it from the parent's own row.  host compares case-insensitively,
 * like the connection filter.
 */
#define SQL_PROCDB_FILE "processes.db"
#define SQL_PROCDB_SCHEMA                                                     \
    "CREATE TABLE IF NOT EXISTS processes("                                   \
    " host TEXT NOT NULL COLLATE NOCASE, pid INTEGER NOT NULL,"               \
    " create_time INTEGER NOT NULL, create_prec INTEGER NOT NULL,"            \
    " exit_time INTEGER, parent_pid INTEGER, session_id INTEGER,"             \
    " sequence INTEGER, image TEXT, parent_image TEXT, command_line TEXT,"    \
    " user TEXT, guid TEXT);"                                                 \
    "CREATE INDEX IF NOT EXISTS processes_at"                                 \
    " ON processes(host, pid, create_time)"

/* Rows that may be the same process as an event: ?1 host, ?2 pid, create
 * time within [?3, ?4] (the event's interval widened by the largest
 * precision). */
#define SQL_PROC_CANDIDATES                                                   \
    "SELECT rowid, create_time, create_prec, guid, sequence FROM processes"   \
    " WHERE host = ?1 AND pid = ?2 AND create_time BETWEEN ?3 AND ?4"         \
    " ORDER BY create_time"

#define SQL_PROC_INSERT                                                       \
    "INSERT INTO processes(host, pid, create_time, create_prec, exit_time,"   \
    " parent_pid, session_id, sequence, image, parent_image, command_line,"   \
    " user, guid) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"  \
    " ?13)"

/*
 * Merges an event into row ?14 (same parameters as the insert): the more
 * precise creation time wins; a known exit replaces an unknown one; every
 * other field is filled where still unknown, except that a full image path
 * (with a backslash) replaces a bare file name (a ProcessStop's ImageName).
 */
#define SQL_PROC_MERGE                                                        \
    "UPDATE processes SET"                                                    \
    " create_time = CASE WHEN ?4 < create_prec THEN ?3 ELSE create_time END," \
    " create_prec = min(create_prec, ?4),"                                    \
    " exit_time = coalesce(?5, exit_time),"                                   \
    " parent_pid = coalesce(parent_pid, ?6),"                                 \
    " session_id = coalesce(session_id, ?7),"                                 \
    " sequence = coalesce(sequence, ?8),"                                     \
    " image = CASE WHEN image IS NULL OR (instr(image, '\\') = 0"            \
    "  AND instr(?9, '\\') > 0) THEN coalesce(?9, image) ELSE image END,"    \
    " parent_image = coalesce(parent_image, ?10),"                            \
    " command_line = coalesce(command_line, ?11),"                            \
    " user = coalesce(user, ?12), guid = coalesce(guid, ?13)"                 \
    " WHERE rowid = ?14"

/* An exit whose process has no known creation time (a Sysmon 5 without a
 * ProcessGuid): ends the newest holder of ?1/?2 created at or before ?3
 * that has no exit yet. */
#define SQL_PROC_CLOSE_LATEST                                                 \
    "UPDATE processes SET exit_time = ?3 WHERE rowid = (SELECT rowid FROM"    \
    " processes WHERE host = ?1 AND pid = ?2 AND create_time <= ?3"           \
    " ORDER BY create_time DESC LIMIT 1) AND exit_time IS NULL"

/* Retention: a process that exited before ?1 (the start of the oldest
 * partition kept) can explain no connection left. */
#define SQL_PROC_PRUNE                                                        \
    "DELETE FROM processes WHERE exit_time IS NOT NULL AND exit_time < ?1"

/* Every holder of ?2 on ?1, oldest first (a query's memo, process.c). */
#define SQL_PROC_PAIR                                                         \
    "SELECT host, pid, create_time, exit_time, parent_pid, session_id,"       \
    " sequence, image, parent_image, command_line, user, guid"                \
    " FROM processes WHERE host = ?1 AND pid = ?2 ORDER BY create_time"

/* The process that held ?2 on ?1 at time ?3: the newest created at or
 * before it (the reader then checks that it had not exited). */
#define SQL_PROC_AT                                                           \
    "SELECT host, pid, create_time, exit_time, parent_pid, session_id,"       \
    " sequence, image, parent_image, command_line, user, guid"                \
    " FROM processes WHERE host = ?1 AND pid = ?2 AND create_time <= ?3"      \
    " ORDER BY create_time DESC LIMIT 1"

/* ------------------------------------------------------------ rollups.db */

/*
 * The hourly roll-up (hourly.h, store/hourly.c): one row per (hour, host,
 * pid, remote ip, remote port).  hour is hours since the Unix epoch (a
 * small integer: 3 bytes a row where a tick time takes 8).  The primary
 * key leads with the remote address so that "this ip or CIDR over a time
 * range" is one range of the key (then port, then hour); hourly_hour
 * serves queries without an address and retention's DELETE by hour.
 * WITHOUT ROWID: the key is the row.
 */
#define SQL_HOURLY_FILE "rollups.db"
#define SQL_HOURLY_SCHEMA                                                     \
    "CREATE TABLE IF NOT EXISTS hourly("                                      \
    " remote_ip BLOB NOT NULL, remote_port INTEGER NOT NULL,"                 \
    " hour INTEGER NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"       \
    " connections INTEGER NOT NULL, bytes_sent INTEGER NOT NULL,"             \
    " bytes_received INTEGER NOT NULL,"                                       \
    " PRIMARY KEY(remote_ip, remote_port, hour, host, pid)) WITHOUT ROWID;"   \
    "CREATE INDEX IF NOT EXISTS hourly_hour ON hourly(hour)"

/* The writer's additions, summed in memory, at commit. */
#define SQL_HOURLY_ADD                                                        \
    "INSERT INTO hourly(remote_ip, remote_port, hour, host, pid,"             \
    " connections, bytes_sent, bytes_received)"                               \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                                 \
    " ON CONFLICT(remote_ip, remote_port, hour, host, pid) DO UPDATE SET"     \
    " connections = connections + excluded.connections,"                      \
    " bytes_sent = bytes_sent + excluded.bytes_sent,"                         \
    " bytes_received = bytes_received + excluded.bytes_received"

/* The last checkpoint (checkpoint.h) whose sums rollups.db committed: in
 * the same transaction as the sums, as each partition's checkpoint_mark.
 * Created by the first checkpointed commit (older files have none: 0). */
#define SQL_HOURLY_MARK_SCHEMA                                                \
    "CREATE TABLE IF NOT EXISTS rollup_mark(k INTEGER PRIMARY KEY CHECK (k = 0)," \
    " seq INTEGER NOT NULL)"
#define SQL_HOURLY_MARK_SET "INSERT OR REPLACE INTO rollup_mark(k, seq) VALUES(0, ?1)"
#define SQL_HOURLY_MARK_GET "SELECT seq FROM rollup_mark WHERE k = 0"

/* Roll-up retention: rows of hours before ?1.  The table is small (a row
 * per key and hour, not per connection), so deleting rows is cheap here,
 * unlike in the partitions. */
#define SQL_HOURLY_PRUNE "DELETE FROM hourly WHERE hour < ?1"

/* Queries: a head, the fragments (fixed parameter numbers, as above), a
 * tail.  ?8 is the row limit (-1: all). */
#define SQL_Q_HOURLY_HEAD                                                     \
    "SELECT hour, host, pid, remote_ip, remote_port, connections,"            \
    " bytes_sent, bytes_received FROM hourly WHERE 1"
#define SQL_Q_HOURLY_TAIL                                                     \
    " ORDER BY hour, host, pid, remote_ip, remote_port LIMIT ?8"
#define SQL_Q_HOURLY_TOTAL_HEAD                                               \
    "SELECT NULL, host, pid, remote_ip, remote_port, sum(connections),"       \
    " sum(bytes_sent), sum(bytes_received) FROM hourly WHERE 1"
#define SQL_Q_HOURLY_TOTAL_TAIL                                               \
    " GROUP BY host, pid, remote_ip, remote_port"                             \
    " ORDER BY host, pid, remote_ip, remote_port LIMIT ?8"
#define SQL_FH_IP " AND remote_ip BETWEEN ?1 AND ?2"
#define SQL_FH_PORT " AND remote_port = ?3"
#define SQL_FH_PID " AND pid = ?4"
#define SQL_FH_HOST " AND host = ?5 COLLATE NOCASE"
#define SQL_FH_FROM " AND hour >= ?6"
#define SQL_FH_TO " AND hour < ?7"

#endif
