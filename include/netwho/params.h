/*
 * params.h -- filter parameters from text, for the command line and the API.
 *
 * Both take the same names (the CLI's --local-port is the API's local_port)
 * and give the same errors, so a value means one thing everywhere.  An error
 * names the parameter and says what was expected; it never echoes more than
 * 64 bytes of the bad value.
 */
#ifndef NETWHO_PARAMS_H
#define NETWHO_PARAMS_H

#include "netwho/hourly.h"
#include "netwho/query.h"
#include "netwho/status.h"

/* Longest value accepted for any parameter: nothing legitimate is longer
 * than a host name. */
#define NW_PARAM_MAX_VALUE 512

/*
 * Applies one filter to q.  name is one of: ip, port, local_port,
 * remote_port, pid, host, process, proto, direction, state, from, to,
 * community_id, exclude_loopback, scope, limit.  host and process point
 * into value, which must outlive q; community_id is copied into q (a space
 * in it is read as '+', which an unencoded URL turns into a space).
 * exclude_loopback takes true/false (or 1/0); scope an address class name
 * (addrclass.h: public, private, loopback, link-local, ...).
 * Returns NW_OK, or NW_ERR_INVALID with err->msg like
 * "port: expected a number from 0 to 65535, got \"http\"", and *bad_param
 * (if not NULL) set to the canonical parameter name.
 * An unknown name is NW_ERR_INVALID ("unknown parameter").
 */
nw_status nw_params_apply(nw_query *q, const char *name, const char *value,
                          const char **bad_param, nw_err *err);

/* After all parameters: checks combinations (from < to).  Same errors. */
nw_status nw_params_check(const nw_query *q, const char **bad_param, nw_err *err);

/* Parses a connection id ("123"): 0 and *id, or -1. */
int nw_params_id(const char *s, int64_t *id);

/*
 * The hourly roll-up's parameters (hourly.h), for `netwho hourly` and
 * GET /api/v1/stats/hourly: ip (IP or CIDR of the REMOTE end), host, pid,
 * port (the REMOTE port), from, to, limit take the values and give the
 * errors of nw_params_apply; by takes hour or total.  host points into
 * value.  Same return and *bad_param as nw_params_apply.
 */
nw_status nw_params_hourly(nw_hourly_query *h, const char *name, const char *value,
                           const char **bad_param, nw_err *err);

/* After all parameters: from < to.  Same errors as nw_params_check. */
nw_status nw_params_hourly_check(const nw_hourly_query *h, const char **bad_param,
                                 nw_err *err);

#endif
