/*
 * ckpt_int.h -- what writer.c calls of checkpoint.c (internal).
 */
#ifndef NETWHO_CKPT_INT_H
#define NETWHO_CKPT_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "netwho/checkpoint.h"

/* Writes ck into its slot (seq % 2) of the catalog, inside the caller's open
 * catalog transaction.  parts: the partitions this commit writes,
 * comma-separated. */
nw_status nw__ckpt_write_catalog(sqlite3 *cat, const nw_ckpt *ck, const char *parts,
                                 nw_err *err);

/* Records seq in a partition, inside the caller's open transaction on it. */
nw_status nw__ckpt_mark(sqlite3 *part, uint64_t seq, const char *name, nw_err *err);

#endif
