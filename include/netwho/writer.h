/*
 * writer.h -- the store's single writer: connections, transfers, failures,
 * dead letters.
 *
 * One process writes a store at a time (an flock on DIR/.lock); a second
 * writer gets NW_ERR_BUSY naming the holder.  Rows are written in large
 * transactions (per-row commits would cost 100x: SQLite insert speed is set
 * by batch size), one open transaction per partition touched, committed
 * together every NW_WRITER_BATCH_ROWS rows and by nw_writer_commit.
 * Partitions are created on first use.  The writer offers itself to the
 * tracker as an nw_sink.
 */
#ifndef NETWHO_WRITER_H
#define NETWHO_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/checkpoint.h"
#include "netwho/conn.h"
#include "netwho/decode.h"
#include "netwho/pipeline.h"
#include "netwho/procevent.h"
#include "netwho/store.h"
#include "netwho/tracker.h"

#define NW_WRITER_BATCH_ROWS 100000

/* Partition handles kept open at once; late events touch old partitions, and
 * each handle holds prepared statements and a page cache. */
#define NW_WRITER_MAX_OPEN_PARTITIONS 8

typedef struct nw_writer nw_writer;

/* Takes the writer lock of s.  s must outlive the writer.
 * Caller ends with nw_writer_close. */
nw_status nw_writer_open(nw_store *s, nw_writer **out, nw_err *err);

/* Commits what is pending, closes partitions, releases the lock, frees w.
 * Returns the commit's status. */
nw_status nw_writer_close(nw_writer *w, nw_err *err);

/* Ends w without committing (after a failed commit: nw_writer_close would
 * try again, and a second try that succeeds would commit the partitions
 * without the checkpoint the caller goes back to).  Open transactions roll
 * back; releases the lock, frees w. */
void nw_writer_discard(nw_writer *w);

/* Commits every open transaction and updates the catalog. */
nw_status nw_writer_commit(nw_writer *w, nw_err *err);

/* Holds (on = 1) or allows again (0) the commit every NW_WRITER_BATCH_ROWS
 * rows, so that a step's rows wait for its nw_writer_commit_checkpoint.
 * A held step that writes more than NW_WRITER_MAX_OPEN_PARTITIONS
 * partitions opens more handles rather than committing early; they are
 * closed after its commit. */
void nw_writer_hold(nw_writer *w, int on);

/* Commits as nw_writer_commit, with ck (checkpoint.h) in the catalog's
 * transaction and ck->seq in each partition's.  ck is not kept. */
nw_status nw_writer_commit_checkpoint(nw_writer *w, const nw_ckpt *ck, nw_err *err);

/* Fills *sink with callbacks that write through w (valid while w lives). */
void nw_writer_sink(nw_writer *w, nw_sink *sink);

/*
 * From now on, connections, transfers and failures given to the sink are
 * written by a thread of the writer's own, in the order given, while the
 * caller goes on (an ingest's tracker and SQLite then use two cores).  The
 * sink callbacks copy the row and return at once; a row that fails to be
 * written makes a later callback, nw_writer_commit or nw_writer_close
 * return the failure.  Resume probes, id reservations, commits and
 * retention wait for the queued rows first.  All writer functions must
 * still be called from one thread.  NW_OK, or an error with w still
 * writing synchronously.
 * nw_writer_close stops the thread.
 */
nw_status nw_writer_start_thread(nw_writer *w, nw_err *err);

/* Appends a rejected event to today's dead-letter file,
 * DIR/rejected/rejected-YYYY-MM-DD.ndjson, as one JSON line:
 * {"time","reason","detail","source","offset","length","truncated","raw"}.
 * raw is the event text (JSON-escaped, at most NW_FRAME_KEEP_BYTES kept for
 * a too_large one; "truncated": true says so).  The line is committed with
 * the writer's next commit (the file is synced and its length recorded in
 * catalog.db, table deadletter_len); lines never committed -- a crash, a
 * nw_writer_discard -- are cut off when the next writer opens the store. */
nw_status nw_writer_reject(nw_writer *w, const nw_rejection *r, nw_err *err);

/* Merges one process event (procevent.h) into the store's process table,
 * DIR/processes.db (procstore.h), in the writer's open transaction: it is
 * committed with the partitions.  pe is not kept. */
nw_status nw_writer_process(nw_writer *w, const nw_proc_event *pe, nw_err *err);

/* The sentence of the last error a sink callback (nw_writer_sink) returned:
 * nw_sink callbacks return a status only, so the message is kept here.
 * "" if none.  Valid while w lives. */
const char *nw_writer_last_error(const nw_writer *w);

/* The hash of c's resume key (host, both ends, proto, ip_version, pid; a
 * NULL host hashes as ""), the one the writer's filter of keys written open
 * uses; a caller keeping such a filter of its own (netwhod) uses it too. */
uint64_t nw_writer_key_hash(const nw_conn *c);

typedef struct nw_writer_stats {
    uint64_t conn_rows, transfer_rows, failure_rows, rejected_rows;
    uint64_t process_rows;         /* process events merged (not rows made) */
    uint64_t commits;
    uint64_t partitions_created;
} nw_writer_stats;

/* Waits for rows queued for the writer thread, if it runs. */
void nw_writer_stats_get(nw_writer *w, nw_writer_stats *out);

#endif
