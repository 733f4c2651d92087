/*
 * metrics.c -- request counters and latency histograms (see metrics.h).
 */
#include "netwho/metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "netwho/routes.h"

/* The statuses netwhod answers with; anything else is counted as "other".
 * A fixed list keeps the counters a flat array (no allocation, no lock). */
static const int tracked_status[] = {200, 204, 304, 400, 401, 404, 405, 413, 500, 503};
#define NSTATUS ((int)(sizeof tracked_status / sizeof tracked_status[0]) + 1)

static const double bucket_le[NW_METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

struct nw_metrics {
    atomic_uint_fast64_t requests[NW_ROUTE__COUNT][NSTATUS];
    atomic_uint_fast64_t buckets[NW_ROUTE__COUNT][NW_METRICS_BUCKETS + 1];
    atomic_uint_fast64_t micros_sum[NW_ROUTE__COUNT];
};

nw_metrics *nw_metrics_new(void)
{
    nw_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (int r = 0; r < NW_ROUTE__COUNT; r++) {
        for (int s = 0; s < NSTATUS; s++)
            atomic_init(&m->requests[r][s], 0);
        for (int b = 0; b <= NW_METRICS_BUCKETS; b++)
            atomic_init(&m->buckets[r][b], 0);
        atomic_init(&m->micros_sum[r], 0);
    }
    return m;
}

void nw_metrics_free(nw_metrics *m)
{
    free(m);
}

static int status_slot(int status)
{
    for (int i = 0; i < NSTATUS - 1; i++)
        if (tracked_status[i] == status)
            return i;
    return NSTATUS - 1;
}

void nw_metrics_observe(nw_metrics *m, int route, int status, double seconds)
{
    if (!m)
        return;
    if (route < 0 || route >= NW_ROUTE__COUNT)
        route = NW_ROUTE_UNKNOWN;
    atomic_fetch_add_explicit(&m->requests[route][status_slot(status)], 1,
                              memory_order_relaxed);
    int b = 0;
    while (b < NW_METRICS_BUCKETS && seconds > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&m->buckets[route][b], 1, memory_order_relaxed);
    if (seconds < 0)
        seconds = 0;
    atomic_fetch_add_explicit(&m->micros_sum[route], (uint_fast64_t)(seconds * 1e6),
                              memory_order_relaxed);
}

int nw_metrics_render(const nw_metrics *m, nw_buf *out)
{
    int rc = 0;
    rc |= nw_buf_adds(out, "# HELP netwhod_http_requests_total HTTP requests answered, "
                           "by route and status.\n"
                           "# TYPE netwhod_http_requests_total counter\n");
    for (int r = 0; r < NW_ROUTE__COUNT; r++)
        for (int s = 0; s < NSTATUS; s++) {
            uint64_t v = m ? atomic_load_explicit(&m->requests[r][s], memory_order_relaxed) : 0;
            if (!v)
                continue;
            if (s < NSTATUS - 1)
                rc |= nw_buf_addf(out,
                                  "netwhod_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                                  nw_api_route_name(r), tracked_status[s], (unsigned long long)v);
            else
                rc |= nw_buf_addf(out,
                                  "netwhod_http_requests_total{route=\"%s\",status=\"other\"} "
                                  "%llu\n",
                                  nw_api_route_name(r), (unsigned long long)v);
        }
    rc |= nw_buf_adds(out, "# HELP netwhod_http_request_duration_seconds Time from the "
                           "request line to the last byte of the answer.\n"
                           "# TYPE netwhod_http_request_duration_seconds histogram\n");
    for (int r = 0; r < NW_ROUTE__COUNT && m; r++) {
        uint64_t cum = 0;
        uint64_t vals[NW_METRICS_BUCKETS + 1];
        for (int b = 0; b <= NW_METRICS_BUCKETS; b++)
            vals[b] = atomic_load_explicit(&m->buckets[r][b], memory_order_relaxed);
        uint64_t total = 0;
        for (int b = 0; b <= NW_METRICS_BUCKETS; b++)
            total += vals[b];
        if (!total)
            continue;
        const char *name = nw_api_route_name(r);
        for (int b = 0; b < NW_METRICS_BUCKETS; b++) {
            cum += vals[b];
            rc |= nw_buf_addf(out,
                              "netwhod_http_request_duration_seconds_bucket{route=\"%s\","
                              "le=\"%g\"} %llu\n",
                              name, bucket_le[b], (unsigned long long)cum);
        }
        rc |= nw_buf_addf(out,
                          "netwhod_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"}"
                          " %llu\n"
                          "netwhod_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                          "netwhod_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                          name, (unsigned long long)total, name,
                          (double)atomic_load_explicit(&m->micros_sum[r], memory_order_relaxed) /
                              1e6,
                          name, (unsigned long long)total);
    }
    return rc ? -1 : 0;
}
