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

/* Most bytes a step's redo record may take; a bigger step has none (a cut
 * of it is then reported, not repaired). */
#define NW_REDO_MAX (64u * 1024 * 1024)

/* The rows a checkpointed step wrote, in order, to write again into the
 * partitions a crash kept them from (checkpoint.h).  Zeroed = empty. */
typedef struct nw_redo {
    unsigned char *p;
    size_t len, cap;
    int overflow;               /* went past NW_REDO_MAX: unusable      */
} nw_redo;

void nw__redo_conn(nw_redo *r, const nw_conn *c);
void nw__redo_transfer(nw_redo *r, const nw_transfer *t);
void nw__redo_failure(nw_redo *r, const nw_failure *f);
void nw__redo_reset(nw_redo *r);   /* empties it, keeps the memory */
void nw__redo_free(nw_redo *r);

/* Writes ck into its slot (seq % 2) of the catalog, inside the caller's open
 * catalog transaction.  parts: the partitions this commit writes,
 * comma-separated.  redo: its rows (NULL: none kept -- one partition,
 * which commits all or nothing). */
nw_status nw__ckpt_write_catalog(sqlite3 *cat, const nw_ckpt *ck, const char *parts,
                                 const nw_redo *redo, nw_err *err);

/* Records seq in a partition, inside the caller's open transaction on it. */
nw_status nw__ckpt_mark(sqlite3 *part, uint64_t seq, const char *name, nw_err *err);

/* Writer: from now on only rows of the partitions named in parts
 * (comma-separated) are written, the others skipped ("" = all).  For
 * replaying a redo record. */
void nw__writer_only(nw_writer *w, const char *parts);

#endif
