/* status.c -- the error convention (see status.h). */
#include "netwho/status.h"

#include <stdarg.h>
#include <stdio.h>

nw_status nw_fail(nw_err *err, nw_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *nw_status_name(nw_status st)
{
    switch (st) {
    case NW_OK: return "ok";
    case NW_ERR_INVALID: return "invalid";
    case NW_ERR_NOMEM: return "nomem";
    case NW_ERR_IO: return "io";
    case NW_ERR_SQL: return "sql";
    case NW_ERR_BUSY: return "busy";
    case NW_ERR_CORRUPT: return "corrupt";
    case NW_ERR_LIMIT: return "limit";
    }
    return "unknown";
}
