/*
 * store_int.h -- what store.c, writer.c and query.c share (internal).
 *
 * store.c owns the directory, the catalog handle and the file helpers;
 * writer.c the single writer; query.c the read handles and their cached
 * statements.  Nothing outside store/ includes this header except the
 * store's own unit tests (which read the open counter and the query SQL).
 */
#ifndef NETWHO_STORE_INT_H
#define NETWHO_STORE_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "netwho/conn.h"
#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/writer.h"

/* Room for "p-2026-03-16T00.db" and the like (nw_partition_info.name). */
#define NW_PART_NAME_MAX 64

/* Milliseconds a statement waits on a lock before SQLITE_BUSY: only WAL
 * recovery or a checkpoint ever holds one briefly. */
#define NW_SQL_BUSY_TIMEOUT_MS 5000

/* Read handles a store keeps open between queries; a query may pin more
 * (a k-way merge over many overlapping partitions), trimmed after it. */
#define NW_STORE_READ_HANDLES 16

/* Statements cached per read handle (one per filter combination used). */
#define NW_READ_STMTS 8

/* Column numbers of SQL_CONN_COLUMNS; parameter ?N binds column N-1. */
enum {
    NW_COL_ID = 0, NW_COL_HOST, NW_COL_PID, NW_COL_PROTO, NW_COL_IPVER,
    NW_COL_DIR, NW_COL_STATE, NW_COL_LIP, NW_COL_LPORT, NW_COL_RIP,
    NW_COL_RPORT, NW_COL_FIRST, NW_COL_LAST, NW_COL_ANCHOR, NW_COL_BSENT,
    NW_COL_BRECV, NW_COL_BRETX, NW_COL_BCOPY, NW_COL_ESENT, NW_COL_ERECV,
    NW_COL_ERETX, NW_COL_ECOPY, NW_COL_RECONN, NW_COL_MSS, NW_COL_SACK,
    NW_COL_TSOPT, NW_COL_WSOPT, NW_COL_RCVWIN, NW_COL_RCVSCALE,
    NW_COL_SNDSCALE, NW_COL__COUNT
};

/* One statement of a read handle's cache. */
typedef struct nw_rd_stmt {
    unsigned key;          /* query kind and filter mask (query.c)      */
    sqlite3_stmt *st;
    uint64_t used;         /* LRU tick                                  */
} nw_rd_stmt;

/* A read-only handle on one partition file (query.c). */
typedef struct nw_rd_handle {
    char name[NW_PART_NAME_MAX];
    sqlite3 *db;
    uint64_t dev, ino;     /* the file opened: a replaced file is reopened */
    int version;           /* schema version when opened (1: no roll-up;
                              the writer may upgrade it meanwhile)     */
    nw_rd_stmt stmts[NW_READ_STMTS];
    uint64_t used;         /* LRU tick                                  */
    int pins;              /* > 0 while a query steps its statements    */
} nw_rd_handle;

/* A catalog row: nw_partition_info plus the id ranges that prune lookups
 * by connection id (not part of the public struct). */
typedef struct nw_cat_row {
    nw_partition_info info;
    int64_t min_conn_id, max_conn_id;        /* of its connections       */
    int64_t min_xfer_conn_id, max_xfer_conn_id;  /* of its transfers     */
} nw_cat_row;

struct nw_writer;

struct nw_store {
    char *dir;
    nw_partitioning part;
    sqlite3 *cat;               /* catalog.db, read-write                */
    int cat_version;            /* its schema version                    */
    sqlite3_stmt *cat_list;     /* SQL_PART_LIST                         */
    struct nw_writer *writer;   /* the writer holding the lock, if any   */
    nw_rd_handle **rd;          /* read-handle cache (query.c)           */
    size_t nrd, caprd;
    uint64_t rd_tick;
    uint64_t partition_opens;   /* read handles opened, for tests        */
    /* nw_query_who, for tests: partitions answered from the roll-up and by
     * scanning; who_no_rollup = 1 makes it always scan. */
    uint64_t who_rollup_parts, who_scan_parts;
    int who_no_rollup;
    char conn_host[NW_HOST_MAX];/* nw_query_connection's host storage    */
    struct nw_proc_rd *proc_rd; /* processes.db read handle (process.c)  */
    sqlite3 *hourly_rd;         /* rollups.db read handle (hourly.c)     */
    /* Opened (or opened a file) while its directory was not writable:
     * such handles may be immutable=1 (nw__open_read) and must not read
     * on once the store is written again (nw_store_stale_readonly). */
    int dir_ro;
    /* nw_store_keep_open: one idle read connection per partition file. */
    sqlite3 **keep;
    char (*keep_names)[NW_PART_NAME_MAX];
    size_t nkeep;
};

/* ------------------------------------------------------------- store.c */

/* Raises the catalog's generation (nw_store_generation) by one, in its own
 * statement (or the caller's open catalog transaction). */
nw_status nw__bump_generation(nw_store *s, nw_err *err);

/* "p-2026-03-16.db" / "p-2026-03-16T00.db" for the partition holding t;
 * its span in *start and *end.  NW_ERR_INVALID if t's year is outside
 * 0000..9999. */
nw_status nw__part_name(nw_partitioning p, nw_time t, char name[NW_PART_NAME_MAX],
                        nw_time *start, nw_time *end, nw_err *err);

/* dir/name into a new string (caller frees), NULL on ENOMEM. */
char *nw__path(const char *dir, const char *name);

/*
 * The roll-up sums' open-addressing tables (writer.c: who_rollup, hourly.c:
 * rollups.db): cap entries of esz bytes, cap a power of two, each starting
 * with its key's host (char *, owned; NULL marks a free slot), its key's
 * hash at hash_off.  nw__acc_grow returns tab doubled (0 slots: 1024) with
 * the entries moved and *cap updated, or NULL without memory (tab as it
 * was).  nw__acc_free frees the hosts and the table.
 */
void *nw__acc_grow(void *tab, size_t *cap, size_t esz, size_t hash_off);
void nw__acc_free(void *tab, size_t cap, size_t esz);

/*
 * Opens path read-only and reads its header (so a missing WAL index shows
 * here, not at the first query).  Where SQLite cannot create the -shm of a
 * WAL file because the directory is not writable, opens it again with
 * immutable=1 and sets *immutable (may be NULL).  NW_ERR_CORRUPT for a file
 * that is not a database, NW_ERR_IO if it cannot be opened.  Caller closes
 * with sqlite3_close.
 */
nw_status nw__open_read(const char *path, sqlite3 **out, int *immutable, nw_err *err);

/* Runs SQL text without results; NW_ERR_SQL naming what on failure. */
nw_status nw__exec(sqlite3 *db, const char *sql, const char *what, nw_err *err);

/* NW_ERR_SQL (or NW_ERR_CORRUPT for SQLITE_NOTADB/CORRUPT) from db's
 * last error, naming what failed. */
nw_status nw__sql_fail(sqlite3 *db, const char *what, nw_err *err);

/* Opens a partition file for the writer (creating it and its schema if
 * absent, WAL on; upgrading a version-1 file to NW_SCHEMA_VERSION) or
 * read-only for queries (must exist).  Refuses a file of a newer schema
 * version with NW_ERR_CORRUPT.  *created (if not NULL) set to 1 if the
 * file was new, *version (if not NULL) to its schema version once open.
 * Caller closes with sqlite3_close. */
nw_status nw__open_partition(const char *dir, const char *name, int writable,
                             sqlite3 **out, int *created, int *version, nw_err *err);

/* Writer only: marks a version-1 catalog as NW_SCHEMA_VERSION (its tables
 * are unchanged), so that an older netwho no longer writes the store. */
nw_status nw__catalog_upgrade(nw_store *s, nw_err *err);

/* Every catalog row, ordered by start.  Caller frees *rows. */
nw_status nw__catalog_rows(nw_store *s, nw_cat_row **rows, size_t *n,
                           nw_err *err);

/* Size of dir/name plus its -wal and -shm (0 for missing files). */
uint64_t nw__file_bytes(const char *dir, const char *name);

/* Takes the flock on dir/.lock (writing our pid into it), or NW_ERR_BUSY
 * naming the pid that holds it.  Release with nw__lock_release. */
nw_status nw__lock_acquire(const char *dir, int *fd_out, nw_err *err);
void nw__lock_release(int fd);

/* Binds c as ?1..?30 of SQL_CONN_INSERT / SQL_CONN_UPDATE. */
int nw__bind_conn(sqlite3_stmt *st, const nw_conn *c);

/* Reads a row of SQL_CONN_COLUMNS into *c; c->host points into the
 * statement (valid until its next step or reset). */
void nw__conn_from_row(sqlite3_stmt *st, nw_conn *c);

/* ------------------------------------------------------------ writer.c */

/* Retention support: commits and closes every partition handle (files may
 * then be unlinked), and, after, reloads the writer's catalog copy. */
nw_status nw__writer_release_partitions(struct nw_writer *w, nw_err *err);
nw_status nw__writer_reload_catalog(struct nw_writer *w, nw_err *err);

/* --------------------------------------------------------- deadletter.c */

/* Today's dead-letter file of a writer.  Zeroed = nothing open yet.
 *
 * Exactly once (deadletter.c): the catalog table deadletter_len holds, per
 * file, the length up to which its lines belong to committed work.  A
 * writer's commit syncs the file(s) it appended to and records their new
 * lengths in the catalog's transaction (nw__dl_commit); before a file is
 * first appended to without such a row, its present length is recorded in
 * a transaction of its own (nw__dl_write does that through d->cat).  At
 * nw__dl_init -- under the writer lock, before anything is appended -- a
 * file longer than its row is cut back to it: those lines came from a step
 * that never committed (a crash, or a discarded step), and the step's
 * events are read and rejected again. */
typedef struct nw_dl_done {
    char name[32];             /* "rejected-YYYY-MM-DD.ndjson"          */
    uint64_t len;              /* synced length when it was closed      */
} nw_dl_done;

typedef struct nw_deadletter {
    char *dir;                 /* DIR/rejected (dead letters)           */
    sqlite3 *cat;              /* the store's catalog (not owned)       */
    FILE *f;                   /* buffered; synced at every commit      */
    char date[16];             /* "YYYY-MM-DD" of f (UTC wall clock)    */
    int dirty;                 /* f has lines not yet in a commit       */
    nw_dl_done *done;          /* files closed since the last commit,   */
    size_t ndone, capdone;     /* with lines not yet in a commit        */
} nw_deadletter;

/* Makes DIR/rejected if needed, and cuts every dead-letter file back to
 * its committed length (see above); cat is the catalog, which must be
 * writable and outlive d.  Call under the writer lock.  Ends with
 * nw__dl_close. */
nw_status nw__dl_init(nw_deadletter *d, const char *store_dir, sqlite3 *cat, nw_err *err);
/* 1 if the next nw__dl_write at now may write the catalog (it opens a
 * file): the caller then lets no one else use the catalog meanwhile. */
int nw__dl_opens(const nw_deadletter *d, nw_time now);
/* Appends r as one JSON line to the file of now's UTC date. */
nw_status nw__dl_write(nw_deadletter *d, const nw_rejection *r, nw_time now,
                       nw_err *err);
/* 1 if lines were appended since the last nw__dl_commit. */
int nw__dl_pending(const nw_deadletter *d);
/* Flushes and fdatasyncs the files appended to since the last commit and
 * records their lengths in the catalog, inside the caller's open catalog
 * transaction.  After that transaction committed, call nw__dl_committed;
 * after it rolled back, nothing (the lines are committed by a later
 * commit, or cut at the next nw__dl_init). */
nw_status nw__dl_commit(nw_deadletter *d, nw_err *err);
void nw__dl_committed(nw_deadletter *d);
/* Flushes and closes; frees what d holds.  Returns the flush status. */
nw_status nw__dl_close(nw_deadletter *d, nw_err *err);

/* ----------------------------------------------------------- process.c */

struct nw_proc_wr;
struct nw_proc_event;

/* The writer's side of processes.db: *pw is opened (and the file made) on
 * the first event; writes go into one open transaction that
 * nw__procw_commit ends.  nw__procw_close rolls back what is uncommitted. */
nw_status nw__procw_write(nw_store *s, struct nw_proc_wr **pw,
                          const struct nw_proc_event *pe, nw_err *err);
nw_status nw__procw_commit(struct nw_proc_wr *pw, nw_err *err);
void nw__procw_close(struct nw_proc_wr *pw);
/* Retention: deletes the processes that exited before `before` (no
 * connection left can be theirs).  NW_OK if there is no processes.db. */
nw_status nw__proc_prune(nw_store *s, nw_time before, nw_err *err);
/* Closes the store's read handle on processes.db (nw_store_close). */
void nw__proc_read_close(nw_store *s);

/* ------------------------------------------------------------ hourly.c */

struct nw_hourly_wr;

/* The writer's hourly roll-up additions (hourly.h): conns in the hour of
 * c->first_seen, the byte deltas in the hour of c->last_seen, summed in
 * memory in *hw (made on first use).  nw__hourly_commit upserts them into
 * DIR/rollups.db in one transaction (keeping them if it fails, for the
 * next commit); nw__hourly_close frees *hw, dropping what is uncommitted. */
nw_status nw__hourly_add(struct nw_hourly_wr **hw, const nw_conn *c, int64_t conns,
                         int64_t d_sent, int64_t d_recv, nw_err *err);
/* seq > 0: a checkpointed commit's (checkpoint.h); rollups.db then
 * records seq (table rollup_mark) in the same transaction. */
nw_status nw__hourly_commit(nw_store *s, struct nw_hourly_wr *hw, uint64_t seq,
                            nw_err *err);
void nw__hourly_close(struct nw_hourly_wr *hw);
/* The sums not yet committed, as bytes for a checkpoint (this build's own
 * layout); *out NULL, *len 0 if none.  Caller frees *out. */
nw_status nw__hourly_save(const struct nw_hourly_wr *hw, unsigned char **out, size_t *len,
                          nw_err *err);
/* The last checkpoint number rollups.db committed (0: none, or no file). */
uint64_t nw__hourly_mark(nw_store *s);
/* Adds sums saved by nw__hourly_save for checkpoint seq to rollups.db and
 * records seq, in one transaction -- unless its mark is seq or later
 * already (then nothing).  Needs the writer lock. */
nw_status nw__hourly_repair(nw_store *s, uint64_t seq, const unsigned char *p, size_t len,
                            nw_err *err);
/* Retention: deletes the rows of hours that end at or before `before`
 * (the hour holding it is kept).  *deleted = 1 if any row went.  NW_OK if
 * there is no rollups.db.  Needs the writer lock and no open roll-up
 * transaction (the writer commits first). */
nw_status nw__hourly_prune(nw_store *s, nw_time before, int *deleted, nw_err *err);
/* Closes the store's read handle on rollups.db (nw_store_close). */
void nw__hourly_read_close(nw_store *s);

/* ------------------------------------------------------------- query.c */

/* nw_query_connections / nw_query_connection without attribution and
 * without the process filter: process.c wraps them (query.h's names). */
nw_status nw__query_connections_raw(nw_store *s, const nw_query *q, nw_conn_cb cb,
                                    void *ctx, int *more, nw_err *err);
nw_status nw__query_connection_raw(nw_store *s, int64_t id, nw_conn *out, nw_err *err);


/* Closes every cached read handle (none may be pinned). */
void nw__store_close_read_handles(nw_store *s);

/* Query kinds, for the statement text builder.  NW_QK_WHO_ROLLUP (who
 * answered from who_rollup) is numbered apart from query.c's own kinds. */
enum { NW_QK_CONNECTIONS = 1, NW_QK_WHO = 2, NW_QK_WHO_ROLLUP = 32 };

/* Writes into buf the SQL text that nw_query_connections (NW_QK_CONNECTIONS)
 * or nw_query_who (NW_QK_WHO: the scan; NW_QK_WHO_ROLLUP: a partition the
 * window covers) runs in each partition for q.  Returns 0, or -1 if cap is
 * too small or q cannot be answered that way.  Exposed for EXPLAIN QUERY
 * PLAN tests. */
int nw__query_sql(int kind, const nw_query *q, char *buf, size_t cap);

#endif
