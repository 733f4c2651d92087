/*
 * ckpt_int.h -- what writer.c calls of checkpoint.c (internal).
 */
#ifndef NETWHO_CKPT_INT_H
#define NETWHO_CKPT_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "netwho/checkpoint.h"
#include "netwho/writer.h"

#include "netwho/conn.h"

/* A redo record is stored in pieces of at most this many bytes (SQLite's
 * default SQLITE_MAX_LENGTH, 1e9, bounds one blob). */
#define NW_REDO_CHUNK (16u * 1024 * 1024)

/* The rows a checkpointed step wrote, in order, to write again into the
 * partitions a crash kept them from (checkpoint.h).  Zeroed = empty. */
typedef struct nw_redo {
    unsigned char *p;
    size_t len, cap;
    int overflow;               /* out of memory: unusable, the commit fails */
} nw_redo;

void nw__redo_conn(nw_redo *r, const nw_conn *c);
void nw__redo_transfer(nw_redo *r, const nw_transfer *t);
void nw__redo_failure(nw_redo *r, const nw_failure *f);
void nw__redo_reset(nw_redo *r);   /* empties it, keeps the memory */
void nw__redo_free(nw_redo *r);

/* Writes ck into its slot (seq % 2) of the catalog, inside the caller's open
 * catalog transaction.  parts: the partitions this commit writes,
 * comma-separated.  redo: its rows (NULL: none -- no partition).
 * hourly: its hourly roll-up sums (nw__hourly_save), hourly_len bytes. */
nw_status nw__ckpt_write_catalog(sqlite3 *cat, const nw_ckpt *ck, const char *parts,
                                 const nw_redo *redo, const unsigned char *hourly,
                                 size_t hourly_len, nw_err *err);

/* Records seq in a partition, inside the caller's open transaction on it. */
nw_status nw__ckpt_mark(sqlite3 *part, uint64_t seq, const char *name, nw_err *err);

/* Writer: from now on only rows of the partitions named in parts
 * (comma-separated) are written, the others skipped ("" = all), the
 * hourly roll-up is left alone, and nw_writer_commit_checkpoint marks the
 * partitions without writing the checkpoint again.  For replaying a redo
 * record. */
nw_status nw__writer_only(nw_writer *w, const char *parts, nw_err *err);

#endif
