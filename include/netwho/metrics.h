/*
 * metrics.h -- request counters and latency histograms for /metrics.
 *
 * Updated by every request thread at once, so every counter is a C11
 * atomic with relaxed ordering: the numbers are statistics, and no other
 * memory is published through them.  Rendered in the Prometheus text
 * exposition format.  No HTTP library involved.
 */
#ifndef NETWHO_METRICS_H
#define NETWHO_METRICS_H

#include "netwho/buf.h"

typedef struct nw_metrics nw_metrics;

/* Upper bounds (seconds) of the latency histogram buckets, +Inf implied. */
#define NW_METRICS_BUCKETS 12

/* NULL if out of memory.  Free with nw_metrics_free. */
nw_metrics *nw_metrics_new(void);
void nw_metrics_free(nw_metrics *m);

/* One finished request: its route (nw_api_route), status and duration. */
void nw_metrics_observe(nw_metrics *m, int route, int status, double seconds);

/* Appends netwhod_http_requests_total{route,status} and
 * netwhod_http_request_duration_seconds{route} to out.  0, or -1 if out is
 * full. */
int nw_metrics_render(const nw_metrics *m, nw_buf *out);

#endif
