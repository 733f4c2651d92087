/*
 * status.h -- the one error convention of netwho's library code.
 *
 * Library functions return an nw_status and, where they take one, fill an
 * nw_err with a human-readable sentence.  They never print: only the
 * command line (server/) and netwhod decide what reaches a terminal or log.
 */
#ifndef NETWHO_STATUS_H
#define NETWHO_STATUS_H

#include <stddef.h>

typedef enum nw_status {
    NW_OK = 0,
    NW_ERR_INVALID,   /* caller gave a bad argument or value           */
    NW_ERR_NOMEM,     /* an allocation failed                          */
    NW_ERR_IO,        /* open/read/write/stat of a file failed         */
    NW_ERR_SQL,       /* SQLite reported an error                      */
    NW_ERR_BUSY,      /* another writer holds the store                */
    NW_ERR_CORRUPT,   /* the store is not what netwho wrote            */
    NW_ERR_LIMIT      /* a named size limit was reached                */
} nw_status;

/* Room for one sentence; long enough for a path and an SQLite message. */
#define NW_ERR_MAX 512

typedef struct nw_err {
    char msg[NW_ERR_MAX];
} nw_err;

/* Formats into err->msg (if err is not NULL) and returns st, so that a
 * failure path reads: return nw_fail(err, NW_ERR_IO, "open %s: %s", ...). */
nw_status nw_fail(nw_err *err, nw_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Stable lower-case name of a status ("io", "sql", ...). */
const char *nw_status_name(nw_status st);

#endif
