/*
 * store.h -- the on-disk store: a directory of time-partitioned SQLite files.
 *
 *   DIR/catalog.db            the catalog: schema version, partitioning,
 *                             next connection id, and one row per partition
 *                             with the time spans a query prunes by
 *   DIR/p-2026-03-16.db       one partition per UTC day of event time
 *   DIR/p-2026-03-16T00.db    ... or per UTC hour (--partition hour)
 *   DIR/processes.db          the time-aware process table (procstore.h):
 *                             not partitioned, a process often predates
 *                             the partitions its connections are in
 *   DIR/rollups.db            hourly roll-up (hourly.h): connections and
 *                             bytes per hour, host, pid, remote ip and
 *                             port, kept longer than the partitions
 *   DIR/rejected/             dead letters: rejected events with reasons
 *   DIR/.lock                 held (flock) by the one writer
 *
 * Every file is in WAL mode, so readers never wait on the writer.  A
 * connection lives in the partition of its anchor (first_seen when first
 * written); transfers and failures in the partition of their own time.
 * Dropping old data is unlinking whole partition files, oldest first: deleting
 * rows would be slow and would not shrink the files.
 *
 * An nw_store handle is not thread-safe: open one per thread.
 */
#ifndef NETWHO_STORE_H
#define NETWHO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/event.h"
#include "netwho/nwtime.h"
#include "netwho/status.h"

/* PRAGMA user_version of every file netwho writes.  2 added the who_rollup
 * table to partitions: version-1 files are still read (who then scans), and
 * the writer upgrades each one (and the catalog) when it opens it.  3 put
 * first_seen into the time-window index (older files are read as they
 * are, only slower). */
#define NW_SCHEMA_VERSION 3
/* The first version with the who roll-up. */
#define NW_SCHEMA_ROLLUP_VERSION 2

typedef enum nw_partitioning {
    NW_PART_DEFAULT = 0,  /* open: whatever the store has; create: day */
    NW_PART_DAY,
    NW_PART_HOUR
} nw_partitioning;

typedef struct nw_store_opts {
    nw_partitioning partition;  /* must match an existing store's, or be
                                   NW_PART_DEFAULT                        */
    int create;                 /* 1: create DIR and the catalog if absent */
} nw_store_opts;

typedef struct nw_store nw_store;

/*
 * Opens the store in dir.  With opts->create, makes the directory and an
 * empty catalog if needed; otherwise a missing store is NW_ERR_IO ("no
 * netwho store at DIR").  A partitioning that differs from the store's is
 * NW_ERR_INVALID.  Caller closes with nw_store_close.
 */
nw_status nw_store_open(const char *dir, const nw_store_opts *opts,
                        nw_store **out, nw_err *err);
void nw_store_close(nw_store *s);

const char *nw_store_dir(const nw_store *s);
nw_partitioning nw_store_partitioning(const nw_store *s);
const char *nw_partitioning_name(nw_partitioning p);   /* "day" / "hour" */

/* One partition as the catalog knows it. */
typedef struct nw_partition_info {
    char name[64];              /* file name, "p-2026-03-16.db"            */
    nw_time start, end;         /* the partition's span [start, end)       */
    nw_time min_first_seen;     /* of its connections (NW_TIME_MAX if none) */
    nw_time max_first_seen;
    nw_time max_last_seen;      /* a long-lived connection stretches this
                                   past end: queries use it to prune       */
    uint64_t connections, transfers, failures;
    uint64_t file_bytes;        /* size on disk, with -wal                 */
} nw_partition_info;

/* Every partition, ordered by start.  Caller frees *out with free(). */
nw_status nw_store_partitions(nw_store *s, nw_partition_info **out, size_t *n,
                              nw_err *err);

/*
 * The store's data generation: a number that every writer commit which
 * changed rows raises after its partitions committed (and retention when it
 * drops partitions), in catalog.db, so any process sees it.  Two equal
 * readings mean no committed change between them; a reading taken before a
 * query is therefore a safe version of its answer.  One indexed catalog
 * read.  0 for a store never written.
 */
nw_status nw_store_generation(nw_store *s, uint64_t *out, nw_err *err);

/* Hosts nw_store_hosts reports at most (memory bound); more are dropped
 * and counted in *dropped. */
#define NW_STORE_HOSTS_MAX 4096

/* A host and the time of its newest event in the store: the latest
 * last_seen of its connections or time of its failures. */
typedef struct nw_host_seen {
    char host[NW_HOST_MAX];
    nw_time last_event;
} nw_host_seen;

/*
 * Every host of the store with its newest event time, sorted by host
 * (bytewise).  Reads each partition's who_rollup (one row per remote
 * address, host and pid: far fewer than connections) and failures, not
 * the connections -- a version-1 partition is scanned.  Costs a file open
 * per partition: callers that poll should cache it by nw_store_generation.
 * Caller frees *out with free().
 */
nw_status nw_store_hosts(nw_store *s, nw_host_seen **out, size_t *n, size_t *dropped,
                         nw_err *err);

/*
 * A store can be served from a directory this process cannot write (a
 * read-only mount of a copied store): every file is then opened read-only,
 * and a WAL file whose index (-shm) SQLite cannot create there is read
 * with immutable=1 -- nobody can write it either.  A file whose -wal holds
 * rows but has no -shm cannot be read so, and is refused (NW_ERR_IO).
 *
 * nw_store_open_file_ro opens one file of a store that way (caller closes
 * with sqlite3_close).  nw_store_stale_readonly says whether s opened files
 * while its directory was read-only and the directory is writable now:
 * its handles may be immutable and would miss new writes, so the caller
 * closes s and opens the store again.
 */
/*
 * Brings every partition of an older schema to this build's, in place (the
 * writer would otherwise do it only when it next writes that file, and a
 * day nobody writes again would stay old): each file in its own immediate
 * transaction, so a crash leaves it at its old version, untouched, and the
 * next call does it again.  Holds the writer lock meanwhile (NW_ERR_BUSY if
 * another writer has it).  A partition whose version cannot be read
 * (damaged, missing, newer) is left alone; one whose upgrade fails is
 * counted in *failed, the first such error in err, and the others are
 * still done.  *migrated: partitions
 * upgraded; *oldest: the lowest version met (NW_SCHEMA_VERSION if none was
 * older).
 */
nw_status nw_store_migrate(nw_store *s, size_t *migrated, size_t *failed, int *oldest,
                           nw_err *err);

struct sqlite3;
nw_status nw_store_open_file_ro(const char *path, struct sqlite3 **out, nw_err *err);
int nw_store_stale_readonly(const nw_store *s);

/* Total bytes of every file in the store directory (catalog, partitions,
 * WAL files; dead letters not included). */
uint64_t nw_store_bytes(nw_store *s);

/*
 * Holds one idle read-only connection open on every partition the catalog
 * lists (and processes.db), opening those new since the last call and
 * closing those gone.  While a connection is open, SQLite keeps the file's
 * WAL index (-shm) and -wal in place between writer steps, so a reader
 * that opens the partition later creates no file -- which it could not
 * on a full disk.  For a long-lived writer (netwhod); freed by
 * nw_store_close, dropped by nw_store_apply_retention.
 */
nw_status nw_store_keep_open(nw_store *s, nw_err *err);

typedef struct nw_retention {
    int days;                  /* drop partitions ending before now - days;
                                  0 = no age limit                         */
    uint64_t max_bytes;        /* then drop oldest until the store fits;
                                  0 = no size limit                        */
    nw_time now;               /* "now" for days; 0 = wall clock          */
    int rollup_days;           /* delete hourly roll-up rows (hourly.h) of
                                  hours ending before now - rollup_days;
                                  0 = keep them forever.  Dropping
                                  partitions never touches the roll-up.   */
} nw_retention;

/*
 * Drops whole partitions, oldest first, until both limits hold; never drops
 * the newest partition for the size limit (the store keeps what it is
 * writing).  Then deletes from DIR/processes.db the processes that exited
 * before the oldest partition kept (procstore.h), and, with rollup_days,
 * the roll-up rows older than that from DIR/rollups.db (a DELETE by hour:
 * that table is small, one row per key and hour).  Needs the writer lock (nw_writer_open), which the caller holds.
 * Sets *dropped (if not NULL) to the number of partitions dropped.
 */
nw_status nw_store_apply_retention(nw_store *s, const nw_retention *r,
                                   size_t *dropped, nw_err *err);

#endif
