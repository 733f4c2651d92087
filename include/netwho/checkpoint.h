/*
 * checkpoint.h -- where netwhod's ingest stands (every commit of it: POST bodies,
 * live sources, ticks; --follow adds file offsets), committed
 * with the data it produced.
 *
 * A checkpoint is: for each followed file, its identity (st_dev, st_ino and
 * a hash of its first bytes, so a replaced file with a reused inode is not
 * taken for the old one) and the offset of the first byte whose event is
 * not yet folded into the tracker; plus a snapshot of the tracker
 * (tracker.h: the reorder buffer, open connections, open transfer buckets).
 * Restoring both gives back exactly the state after the last commit: an
 * event is either in the store, or in the snapshot, or after the offset --
 * never two of them.
 *
 * Atomicity.  A commit writes several SQLite files (the catalog and each
 * partition touched), and in WAL mode SQLite makes a transaction atomic per
 * file only.  So the checkpoint (sequence number s, the names of the
 * partitions this commit writes, the offsets, the snapshot) is written in
 * the catalog's transaction, which the writer commits first, and every
 * partition's transaction of that commit also records s (table
 * checkpoint_mark).  On load, checkpoint s counts only if every partition
 * it names carries s or later; otherwise the commit was cut by a crash and
 * the previous checkpoint (s - 1, kept in the other of two slots) is used.
 * The catalog's transaction also holds the commit's rows (its redo
 * record) and hourly roll-up sums, so the catalog's COMMIT is the commit's:
 * a partition (or rollups.db, rollup_mark) that lacks s at load -- a crash
 * between the COMMITs -- gets s's rows (sums) from it, once, and s stands.
 * Only a checkpoint of an older build, without a redo record, falls back
 * to s - 1 (reported: its rows in the partitions that did commit are then
 * written again).  The dead-letter files' committed lengths are in the
 * same transaction (writer.h, nw_writer_reject).
 *
 * Tables: catalog.db checkpoint(slot, seq, parts, tracker, redo -- read
 * from older catalogs only), checkpoint_file(slot, path, dev, ino, offset,
 * head_len, head_hash) and checkpoint_blob(slot, kind, n, data: the redo
 * record and roll-up sums in pieces); each partition checkpoint_mark(k = 0,
 * seq); rollups.db rollup_mark(k = 0, seq).  Created on first use.
 */
#ifndef NETWHO_CHECKPOINT_H
#define NETWHO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/decode.h"
#include "netwho/status.h"
#include "netwho/store.h"

/* Followed files one checkpoint holds at most (netwhod's source limit). */
#define NW_CKPT_MAX_FILES 32
/* Longest followed path kept. */
#define NW_CKPT_PATH_MAX 1024
/* Bytes at a file's start hashed into its identity. */
#define NW_CKPT_HEAD_BYTES 4096

typedef struct nw_ckpt_file {
    char path[NW_CKPT_PATH_MAX];
    uint64_t dev, ino;
    uint64_t offset;         /* first byte not yet read into the tracker */
    uint32_t head_len;       /* bytes hashed: min(offset, HEAD_BYTES)    */
    uint64_t head_hash;      /* nw_ckpt_hash of those bytes              */
} nw_ckpt_file;

/*
 * Idempotency keys (POST /api/v1/events, header Idempotency-Key).  A key is
 * written in the catalog transaction of the commit that holds its body's
 * rows, with that commit's checkpoint number: so it is exactly as durable
 * as the rows.  A key counts only if its commit is complete (every
 * partition carries the number, see above): lookups pass the newest
 * complete checkpoint's number, and every checkpointed commit first
 * deletes the keys of numbers above it (left by a commit cut by a crash).
 * Kept for NW_CKPT_KEY_TTL_S seconds and at most NW_CKPT_KEYS_MAX keys,
 * the oldest pruned by each commit that writes a key.
 */
#define NW_CKPT_KEY_MAX 128
#define NW_CKPT_KEYS_MAX 100000
#define NW_CKPT_KEY_TTL_S (24 * 3600)

typedef struct nw_ckpt_key {
    char key[NW_CKPT_KEY_MAX + 1];   /* printable ASCII, no space        */
    uint64_t body_hash;              /* nw_ckpt_body_hash of the body     */
    uint64_t accepted, rejected;     /* the first answer's counts         */
    uint64_t rejected_by[NW_REJ__COUNT];
    int64_t at;                      /* Unix seconds it was committed     */
} nw_ckpt_key;

typedef struct nw_ckpt {
    uint64_t seq;            /* > 0; each commit's is one more           */
    nw_ckpt_file files[NW_CKPT_MAX_FILES];
    size_t nfiles;
    unsigned char *tracker;  /* nw_tracker_save output; owned (free)     */
    size_t tracker_len;
    /* Writing only: the idempotency key committed with this checkpoint
     * (NULL: none; not owned), and the newest complete checkpoint's number
     * before this one: keys of later numbers are deleted first. */
    const nw_ckpt_key *key;
    uint64_t complete_seq;
} nw_ckpt;

/* FNV-1a 64 of p[0..n): the head hash.  Kept as it is: a change would
 * make every checkpointed file look like another file after an upgrade. */
uint64_t nw_ckpt_hash(const void *p, size_t n);

/* The first 64 bits of p[0..n)'s SHA-256 (Nettle): an idempotency key's
 * body fingerprint.  Over whole POST bodies (megabytes), where FNV's byte
 * loop cost 12% of netwhod's ingest CPU; SHA-256 with the CPU's SHA
 * instructions runs ~1.8x faster here, and a body reused under another
 * key cannot be made to collide by accident. */
uint64_t nw_ckpt_body_hash(const void *p, size_t n);

/*
 * The newest complete checkpoint of the store (see above), after repairing
 * the partitions and rollups.db a crash kept it from (this writes: it takes
 * the writer lock, NW_ERR_BUSY if another holds it).  *out is zeroed
 * first; out->seq == 0 means none.  warn (if not NULL) gets a sentence
 * saying which partitions were repaired, or, for an older build's cut
 * checkpoint that could not be, which may hold rows twice; otherwise
 * warn[0] = 0.  Caller frees out->tracker (nw_ckpt_clear).
 */
nw_status nw_store_checkpoint_load(nw_store *s, nw_ckpt *out, char *warn, size_t warn_cap,
                                   nw_err *err);

/*
 * Looks up an idempotency key committed by checkpoint complete_seq or
 * earlier (the newest complete one: nw_store_checkpoint_load's out->seq,
 * or a later commit that succeeded).  *found = 1 and *out filled if so.
 */
nw_status nw_store_key_get(nw_store *s, const char *key, uint64_t complete_seq,
                           nw_ckpt_key *out, int *found, nw_err *err);

/* Frees what ck owns and zeroes it. */
void nw_ckpt_clear(nw_ckpt *ck);

#endif
