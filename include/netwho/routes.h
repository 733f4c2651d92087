/*
 * routes.h -- the REST API of netwhod, independent of any HTTP library.
 *
 * The server (server/http_*.c) turns each HTTP request into an nw_api_req,
 * calls nw_api_handle, and sends the nw_api_resp back: status, headers and
 * either a whole body or a stream it pulls from with nw_api_stream_next.
 * Everything a route means -- which parameters it takes, how they become an
 * nw_query, the JSON shapes, the error bodies -- lives here, so the same
 * answers can be tested without a socket and the HTTP adapter stays thin.
 *
 * Answers:
 *   JSON      {"data": [...], "next_cursor": "..."}; next_cursor only when
 *             the limit cut off further rows; the cursor is an opaque token
 *             (hex of the keyset: first_seen and id of the last row).
 *   ndjson    one object per line, csv: RFC 4180 -- both streamed, page by
 *             page, in constant memory; with no limit they run to the end.
 *   errors    {"error": {"code", "message", "parameter"}} -- never a 5xx for
 *             anything a client sends.
 */
#ifndef NETWHO_ROUTES_H
#define NETWHO_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "netwho/buf.h"
#include "netwho/decode.h"
#include "netwho/store.h"

/* Query parameters one request may carry: more is a 400, not a loop. */
#define NW_API_MAX_ARGS 32
/* Rows of one JSON page (the limit parameter's default and maximum). */
#define NW_API_LIMIT_DEFAULT 100
#define NW_API_LIMIT_MAX 10000
/* Largest body answer built in memory (a JSON page of NW_API_LIMIT_MAX
 * connections is ~7 MB); larger answers are streamed. */
#define NW_API_BODY_MAX (32 * 1024 * 1024)
/* Rows a stream encodes per refill: bounds its buffer to a few hundred KB. */
#define NW_API_STREAM_PAGE 256
#define NW_API_STREAM_BUF_MAX (4 * 1024 * 1024)

/* Longest Idempotency-Key of POST /api/v1/events (checkpoint.h keeps it). */
#define NW_API_IDEM_KEY_MAX 128

/* One query-string parameter, decoded.  value is "" for "?name". */
typedef struct nw_api_arg {
    const char *name;
    const char *value;
} nw_api_arg;

typedef struct nw_api_req {
    const char *method;         /* "GET", "POST", ...                         */
    const char *path;           /* percent-decoded path, no query string      */
    const nw_api_arg *args;
    size_t nargs;               /* > NW_API_MAX_ARGS: answered 400            */
    const char *accept;         /* Accept header or NULL                      */
    const char *if_none_match;  /* If-None-Match header or NULL               */
    int gzip;                   /* a 200 answer will be sent gzip-coded: its
                                   ETag must differ from the identity one's  */
    const char *content_type;   /* Content-Type header or NULL                */
    const char *idempotency_key; /* Idempotency-Key header or NULL           */
    const char *body;           /* POST body (not NUL-terminated)             */
    size_t body_len;
} nw_api_req;

/* Route ids, for metrics labels (nw_api_route_name). */
typedef enum nw_api_route {
    NW_ROUTE_UNKNOWN = 0,
    NW_ROUTE_CONNECTIONS,
    NW_ROUTE_CONNECTION,
    NW_ROUTE_TRANSFERS,
    NW_ROUTE_PROCESSES,
    NW_ROUTE_TOP,
    NW_ROUTE_FAILURES,
    NW_ROUTE_HEALTH,
    NW_ROUTE_METRICS,
    NW_ROUTE_OPENAPI,
    NW_ROUTE_EVENTS,
    NW_ROUTE_EXPORT_SYSMON,
    NW_ROUTE_PROCESS_CONNECTIONS,   /* /api/v1/processes/{pid}/connections */
    NW_ROUTE_HOURLY,                /* /api/v1/stats/hourly */
    NW_ROUTE__COUNT
} nw_api_route;

const char *nw_api_route_name(nw_api_route r);

/* What one POST /api/v1/events did. */
typedef struct nw_api_ingest_result {
    nw_status status;           /* NW_OK: committed; NW_ERR_BUSY: another
                                   writer holds the store; else a failure  */
    char message[NW_ERR_MAX];
    uint64_t accepted, rejected;
    uint64_t rejected_by[NW_REJ__COUNT];
    /* > 0: ingest is off (a store error, a full disk) and retried by
     * itself; nothing of this batch was kept: send it again in about this
     * many seconds (POST: 503 with Retry-After). */
    unsigned retry_after;
    /* The Idempotency-Key was committed before: the counts are that
     * commit's and nothing was ingested now (200, "duplicate": true). */
    int duplicate;
    /* The Idempotency-Key was committed with another body (422). */
    int key_conflict;
} nw_api_ingest_result;

/* Counters of the ingest service since start, for health and metrics. */
typedef struct nw_api_ingest_stats {
    uint64_t batches, accepted, rejected, failed_batches;
    uint64_t rejected_by[NW_REJ__COUNT];
    uint64_t events_by_id[64];  /* by ETW event id (all ids are < 64)      */
    /* Whether ingest runs: 0 after a store error or a full disk until a
     * retry finds the store writable again (error says why). */
    int up;
    char error[NW_ERR_MAX];     /* "" while up                              */
    uint64_t errors;            /* batches failed by the store, since start */
    double stalled_s;           /* > 0: one batch has run this long, past
                                   the stall limit                          */
    uint64_t queue_bytes, queue_limit;  /* POST bodies held / the budget    */
    uint64_t overloaded;        /* POSTs answered 503 for the budget        */
    uint64_t retention_runs, partitions_dropped;
} nw_api_ingest_stats;

/* One live ingest source (netwhod --fifo/--follow/--stdin) in /health. */
typedef enum nw_api_source_state {
    NW_SRC_STARTING = 0,        /* not reading yet                          */
    NW_SRC_RUNNING,             /* reading (or waiting for data)            */
    NW_SRC_ENDED,               /* its input ended (stdin EOF) or stopped   */
    NW_SRC_FAILED,              /* stopped on an error: see last_error      */
    NW_SRC_WAITING              /* --follow: the file does not exist (yet,
                                   or any more); tried again, see last_error */
} nw_api_source_state;

typedef struct nw_api_source {
    const char *kind;           /* "fifo", "follow", "stdin" (static)       */
    char path[256];
    nw_api_source_state state;
    uint64_t bytes_read, accepted, rejected, failed_batches;
    char last_error[NW_ERR_MAX];/* "" if none                               */
} nw_api_source;

/* Live sources /health lists at most. */
#define NW_API_SOURCES_MAX 32

/* The environment routes run in: set up once by the server, read-only
 * afterwards (shared by all request threads). */
typedef struct nw_api_env {
    const char *store_dir;
    const char *openapi_path;   /* served at /openapi.yaml                  */
    /* The ingest service, or NULL (POST /api/v1/events answers 503).
     * Blocks until the batch is committed or failed. */
    /* key: the Idempotency-Key header (validated: 1..NW_API_IDEM_KEY_MAX
     * printable ASCII bytes, no space) or NULL. */
    void (*ingest)(void *ctx, const char *body, size_t len, const char *key,
                   nw_api_ingest_result *out);
    void (*ingest_stats)(void *ctx, nw_api_ingest_stats *out);
    void *ingest_ctx;
    struct nw_metrics *metrics; /* rendered at /metrics; may be NULL        */
    /* The live sources' status, or NULL: fills out[0..max), returns the
     * count.  Called by request threads at any time. */
    size_t (*sources)(void *ctx, nw_api_source *out, size_t max);
    void *sources_ctx;
    /* What the start-up store check found (netwhod: quick_check of the
     * newest partition, schema versions), or NULL if nothing: /health is
     * then "degraded" and says it in "store_check". */
    const char *store_problem;
    /* A host whose newest event is older than this many seconds makes
     * /health answer 503 (0: never). */
    int64_t stale_after_s;
    /* Mixed into every ETag: a new server process (perhaps a new version,
     * or a store replaced under the same path) never matches an old tag. */
    uint64_t instance;
} nw_api_env;

typedef struct nw_api_stream nw_api_stream;

typedef struct nw_api_resp {
    int status;
    const char *content_type;
    nw_buf body;                /* the whole answer, when stream is NULL    */
    nw_api_stream *stream;      /* else: pull with nw_api_stream_next       */
    char etag[24];              /* "\"<16 hex>\"", or "" for none          */
    char pre_etag[24];          /* internal: the generation tag computed
                                   before the query (kept by resets)        */
    const char *allow;          /* Allow header of a 405, else NULL         */
    unsigned retry_after;       /* Retry-After of a 503 (0: 1 second)       */
    nw_api_route route;
} nw_api_resp;

/*
 * Answers req into *resp (which the caller then owns: nw_api_resp_free).
 * store is the calling thread's own read handle on the store (nw_store is
 * not thread-safe), or NULL if it could not be opened (then 503).
 * A stream keeps a pointer to store: pull it on the same thread, before
 * the store is closed.
 */
void nw_api_handle(const nw_api_env *env, nw_store *store, const nw_api_req *req,
                   nw_api_resp *resp);

/*
 * Appends the next part of a streamed answer to out (reset by the caller).
 * Returns 1 if something was appended and more may follow, 0 at the end,
 * -1 on an error (the answer is cut short; the server aborts the
 * connection, since the status line is already sent).
 */
int nw_api_stream_next(nw_api_stream *s, nw_buf *out);

void nw_api_resp_free(nw_api_resp *resp);

/* An error answer (also used by the server for 401, 413, ...).  code is a
 * stable word ("bad_parameter"), parameter may be NULL. */
void nw_api_error(nw_api_resp *resp, int status, const char *code, const char *message,
                  const char *parameter);

/* The ETag of a body: a 64-bit FNV-1a of it, quoted, into out[24]. */
void nw_api_etag(const char *data, size_t len, char out[24]);

/*
 * ETags.  A GET answer drawn from the store carries a tag made of the
 * store's data generation (nw_store_generation, read *before* the query),
 * the normalized request (route, path, the parameters sorted, the format
 * the answer will have, gzip or not) and env->instance.  So
 * If-None-Match is answered 304 before any query runs: the same request
 * at the same generation has the same answer.  /api/v1/health and
 * /openapi.yaml hash their (cheap) body instead; /metrics has no tag.
 */

/* 1 if an If-None-Match header value matches etag ("*", a list, W/). */
int nw_api_etag_matches(const char *if_none_match, const char *etag);

#endif
