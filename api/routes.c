/*
 * routes.c -- the REST API's routes (see routes.h).
 *
 * Each route checks its parameters against its own list first, so an
 * unknown or repeated name is a 400 naming it rather than something
 * silently ignored: a script with a typo must not get an answer to another
 * question.  Filter values go through params.h, the code the command line
 * uses, so a value means the same thing in both.
 */
#include "netwho/routes.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/encode.h"
#include "netwho/metrics.h"
#include "netwho/params.h"
#include "netwho/query.h"

/* Largest openapi.yaml served (it is a few tens of KB). */
#define NW_API_OPENAPI_MAX (1024 * 1024)
/* Bytes of a parameter name or value echoed in an error. */
#define NW_API_ECHO_MAX 64

#define CT_JSON "application/json"
#define CT_NDJSON "application/x-ndjson"
#define CT_CSV "text/csv; charset=utf-8"

static const char *const route_names[NW_ROUTE__COUNT] = {
    "unknown", "connections", "connection", "transfers", "processes", "top",
    "failures", "health", "metrics", "openapi", "events"};

const char *nw_api_route_name(nw_api_route r)
{
    return (unsigned)r < NW_ROUTE__COUNT ? route_names[r] : "unknown";
}

/* ------------------------------------------------------------ responses */

static void resp_reset(nw_api_resp *resp, int status, const char *ctype)
{
    nw_buf_reset(&resp->body);
    resp->status = status;
    resp->content_type = ctype;
    resp->etag[0] = '\0';
}

void nw_api_error(nw_api_resp *resp, int status, const char *code, const char *message,
                  const char *parameter)
{
    resp_reset(resp, status, CT_JSON);
    nw_buf *b = &resp->body;
    nw_buf_addf(b, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    nw_buf_add_json_str(b, message, strlen(message));
    nw_buf_adds(b, ",\"parameter\":");
    if (parameter) {
        size_t n = strlen(parameter);
        nw_buf_add_json_str(b, parameter, n > NW_API_ECHO_MAX ? NW_API_ECHO_MAX : n);
    } else {
        nw_buf_adds(b, "null");
    }
    nw_buf_adds(b, "}}\n");
}

static void bad_param(nw_api_resp *resp, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void bad_param(nw_api_resp *resp, const char *param, const char *fmt, ...)
{
    char msg[NW_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nw_api_error(resp, 400, "bad_parameter", msg, param);
}

static void internal_error(nw_api_resp *resp, const nw_err *err)
{
    nw_api_error(resp, 500, "internal", err->msg[0] ? err->msg : "internal error", NULL);
}

void nw_api_etag(const char *data, size_t len, char out[24])
{
    uint64_t h = 1469598103934665603ULL;           /* FNV-1a 64 offset basis */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, 24, "\"%016" PRIx64 "\"", h);
}

int nw_api_etag_matches(const char *inm, const char *etag)
{
    if (!inm || !etag[0])
        return 0;
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;                 /* If-None-Match compares weakly */
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == elen && memcmp(start, etag, elen) == 0)
            return 1;
    }
    return 0;
}

/* Sets the ETag of a finished body answer, and turns it into a 304 if the
 * client has it already. */
static void finish_etag(const nw_api_req *req, nw_api_resp *resp)
{
    nw_api_etag(resp->body.data ? resp->body.data : "", resp->body.len, resp->etag);
    if (nw_api_etag_matches(req->if_none_match, resp->etag)) {
        nw_buf_reset(&resp->body);
        resp->status = 304;
    }
}

/* ------------------------------------------------------------ parameters */

/* Parameter sets of the routes.  A name outside a route's set is a 400. */
#define FILTERS "ip", "port", "local_port", "remote_port", "pid", "host", "proto", \
                "direction", "state", "from", "to"
static const char *const p_connections[] = {FILTERS, "limit", "cursor", "format", NULL};
static const char *const p_processes[] = {"port", "local_port", "remote_port", "pid", "host",
                                          "proto", "direction", "state", "from", "to",
                                          "limit", "cursor", "format", NULL};
static const char *const p_transfers[] = {"limit", "cursor", "format", NULL};
static const char *const p_top[] = {"by", "order", "from", "to", "limit", NULL};
static const char *const p_failures[] = {"host", "from", "to", "limit", "format", NULL};
static const char *const p_none[] = {NULL};

static int in_set(const char *const *set, const char *name)
{
    for (; *set; set++)
        if (strcmp(*set, name) == 0)
            return 1;
    return 0;
}

static void list_set(const char *const *set, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (; *set && len < cap; set++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", *set);
    if (!out[0])
        snprintf(out, cap, "none");
}

/* Refuses too many, unknown and repeated parameters.  0 or -1 (answered). */
static int check_args(const nw_api_req *req, const char *const *set, nw_api_resp *resp)
{
    if (req->nargs > NW_API_MAX_ARGS) {
        nw_api_error(resp, 400, "too_many_parameters",
                     "at most 32 query parameters are accepted", NULL);
        return -1;
    }
    for (size_t i = 0; i < req->nargs; i++) {
        const char *name = req->args[i].name;
        if (!in_set(set, name)) {
            char known[256];
            list_set(set, known, sizeof known);
            char shown[NW_API_ECHO_MAX + 4];
            size_t n = 0;
            for (; name[n] && n < NW_API_ECHO_MAX; n++)
                shown[n] = (unsigned char)name[n] >= 0x20 && name[n] != 0x7f ? name[n] : '?';
            shown[n] = '\0';
            char msg[NW_ERR_MAX];
            snprintf(msg, sizeof msg, "unknown parameter \"%s%s\" (known here: %s)", shown,
                     name[n] ? "..." : "", known);
            nw_api_error(resp, 400, "unknown_parameter", msg, name);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->args[j].name, name) == 0) {
                bad_param(resp, name, "%s: given more than once", name);
                return -1;
            }
    }
    return 0;
}

static const char *arg(const nw_api_req *req, const char *name)
{
    for (size_t i = 0; i < req->nargs && i < NW_API_MAX_ARGS; i++)
        if (strcmp(req->args[i].name, name) == 0)
            return req->args[i].value;
    return NULL;
}

/* limit: default NW_API_LIMIT_DEFAULT for JSON pages; streamed formats run
 * to the end unless limited.  0 or -1 (answered). */
static int get_limit(const nw_api_req *req, int streamed, int64_t max, int64_t *out,
                     nw_api_resp *resp)
{
    const char *v = arg(req, "limit");
    *out = streamed ? 0 : NW_API_LIMIT_DEFAULT;
    if (!v)
        return 0;
    nw_query tmp;
    nw_query_init(&tmp);
    nw_err err = {{0}};
    if (nw_params_apply(&tmp, "limit", v, NULL, &err) != NW_OK || tmp.limit > max) {
        bad_param(resp, "limit", "limit: expected a number from 1 to %lld",
                  (long long)max);
        return -1;
    }
    *out = tmp.limit;
    return 0;
}

/* format= or the Accept header.  0 or -1 (answered). */
static int get_format(const nw_api_req *req, nw_format *out, nw_api_resp *resp)
{
    const char *v = arg(req, "format");
    *out = NW_FMT_JSON;
    if (v) {
        int f = nw_format_from_name(v);
        if (f < 0 || f == NW_FMT_TABLE) {
            bad_param(resp, "format", "format: expected json, ndjson or csv");
            return -1;
        }
        *out = (nw_format)f;
        return 0;
    }
    if (req->accept) {
        if (strstr(req->accept, "ndjson"))
            *out = NW_FMT_NDJSON;
        else if (strstr(req->accept, "text/csv"))
            *out = NW_FMT_CSV;
    }
    return 0;
}

static const char *format_ctype(nw_format f)
{
    return f == NW_FMT_NDJSON ? CT_NDJSON : f == NW_FMT_CSV ? CT_CSV : CT_JSON;
}

/* Applies every filter parameter of req (those params.h knows).  0 or -1. */
static int apply_filters(const nw_api_req *req, nw_query *q, nw_api_resp *resp)
{
    static const char *const filters[] = {FILTERS, NULL};
    for (size_t i = 0; i < req->nargs; i++) {
        if (!in_set(filters, req->args[i].name))
            continue;
        const char *bad = NULL;
        nw_err err = {{0}};
        if (nw_params_apply(q, req->args[i].name, req->args[i].value, &bad, &err) != NW_OK) {
            nw_api_error(resp, 400, "bad_parameter", err.msg, bad ? bad : req->args[i].name);
            return -1;
        }
    }
    const char *bad = NULL;
    nw_err err = {{0}};
    if (nw_params_check(q, &bad, &err) != NW_OK) {
        nw_api_error(resp, 400, "bad_parameter", err.msg, bad);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- cursors */

static void hex64(uint64_t v, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

/* Exactly 16 lower- or upper-case hex digits. */
static int unhex64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* A connections cursor: hex of first_seen then id (32 digits). */
static void conn_cursor(nw_time fs, int64_t id, char out[33])
{
    hex64((uint64_t)fs, out);
    hex64((uint64_t)id, out + 16);
    out[32] = '\0';
}

static int parse_conn_cursor(const char *s, nw_query *q)
{
    uint64_t fs, id;
    if (strlen(s) != 32 || unhex64(s, &fs) || unhex64(s + 16, &id) || (int64_t)id <= 0)
        return -1;
    q->has_cursor = 1;
    q->cursor_first_seen = (nw_time)fs;
    q->cursor_id = (int64_t)id;
    return 0;
}

/* A transfers cursor: hex of the last bucket's time (16 digits). */
static int parse_time_cursor(const char *s, nw_time *after)
{
    uint64_t t;
    if (strlen(s) != 16 || unhex64(s, &t))
        return -1;
    *after = (nw_time)t;
    return 0;
}

/* ------------------------------------------------------------- streams */

typedef enum stream_kind { SK_CONNS, SK_XFERS } stream_kind;

struct nw_api_stream {
    stream_kind kind;
    nw_store *store;
    nw_enc enc;
    nw_format format;
    int begun, done;
    int64_t remaining;           /* rows left to send; -1: no limit       */
    nw_query q;                  /* SK_CONNS; q.host points at host below */
    char host[NW_HOST_MAX];
    int64_t conn_id;             /* SK_XFERS                              */
    nw_time after;
    nw_time last_fs;             /* keyset of the last row sent           */
    int64_t last_id;
    int64_t page_rows;
};

static int stream_conn_cb(void *ctx, const nw_conn *c)
{
    nw_api_stream *s = ctx;
    s->last_fs = c->first_seen;
    s->last_id = c->id;
    s->page_rows++;
    return nw_enc_conn(&s->enc, c);
}

static int stream_xfer_cb(void *ctx, const nw_transfer *t)
{
    nw_api_stream *s = ctx;
    s->after = t->time;
    s->page_rows++;
    return nw_enc_transfer(&s->enc, t);
}

int nw_api_stream_next(nw_api_stream *s, nw_buf *out)
{
    if (s->done)
        return 0;
    s->enc.out = out;
    size_t before = out->len;
    if (!s->begun) {
        if (nw_enc_begin(&s->enc, s->format, s->kind == SK_CONNS ? NW_REC_CONN : NW_REC_TRANSFER,
                         out))
            return -1;
        s->begun = 1;
    }
    int64_t page = NW_API_STREAM_PAGE;
    if (s->remaining >= 0 && s->remaining < page)
        page = s->remaining;
    int more = 0;
    nw_err err = {{0}};
    nw_status st = NW_OK;
    s->page_rows = 0;
    if (page > 0) {
        if (s->kind == SK_CONNS) {
            s->q.limit = page;
            st = nw_query_connections(s->store, &s->q, stream_conn_cb, s, &more, &err);
            if (s->page_rows > 0) {
                s->q.has_cursor = 1;
                s->q.cursor_first_seen = s->last_fs;
                s->q.cursor_id = s->last_id;
            }
        } else {
            st = nw_query_transfers_page(s->store, s->conn_id, s->after, page, stream_xfer_cb,
                                         s, &more, &err);
        }
    }
    if (st != NW_OK)
        return -1;
    if (s->remaining >= 0)
        s->remaining -= s->page_rows;
    if (!more || s->remaining == 0) {
        s->done = 1;
        if (nw_enc_end(&s->enc))
            return -1;
    }
    return out->len > before ? 1 : (s->done ? 0 : 1);
}

/* ETag of a streamed answer: the store's catalog state (it changes at every
 * commit) and the request, so a poll of an unchanged store costs no query. */
static void stream_etag(nw_store *store, const nw_api_req *req, nw_format f, char out[24])
{
    nw_buf b;
    nw_buf_init(&b, 1 << 20);
    nw_partition_info *parts = NULL;
    size_t n = 0;
    nw_err err = {{0}};
    nw_buf_addf(&b, "%s|%d", req->path, (int)f);
    for (size_t i = 0; i < req->nargs; i++)
        nw_buf_addf(&b, "|%s=%s", req->args[i].name, req->args[i].value);
    if (nw_store_partitions(store, &parts, &n, &err) == NW_OK) {
        for (size_t i = 0; i < n; i++)
            nw_buf_addf(&b, "|%s:%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRId64 ":%" PRId64,
                        parts[i].name, parts[i].connections, parts[i].transfers,
                        parts[i].failures, parts[i].max_last_seen, parts[i].min_first_seen);
        free(parts);
        nw_api_etag(b.data ? b.data : "", b.len, out);
    } else {
        out[0] = '\0';
    }
    nw_buf_free(&b);
}

/* Starts a streamed answer, or a 304 if the client's ETag is current. */
static void start_stream(nw_api_resp *resp, nw_api_stream *s, const nw_api_req *req)
{
    resp_reset(resp, 200, format_ctype(s->format));
    stream_etag(s->store, req, s->format, resp->etag);
    if (nw_api_etag_matches(req->if_none_match, resp->etag)) {
        resp->status = 304;
        free(s);
        return;
    }
    resp->stream = s;
}

/* --------------------------------------------------------------- routes */

typedef struct page_ctx {
    nw_enc enc;
    nw_time last_fs;
    int64_t last_id;
    nw_time last_time;
    int64_t remaining;           /* failures: rows still wanted           */
    int full;
} page_ctx;

static int page_conn_cb(void *ctx, const nw_conn *c)
{
    page_ctx *p = ctx;
    p->last_fs = c->first_seen;
    p->last_id = c->id;
    if (nw_enc_conn(&p->enc, c)) {
        p->full = 1;
        return 1;
    }
    return 0;
}

static int page_xfer_cb(void *ctx, const nw_transfer *t)
{
    page_ctx *p = ctx;
    p->last_time = t->time;
    if (nw_enc_transfer(&p->enc, t)) {
        p->full = 1;
        return 1;
    }
    return 0;
}

static void route_connections(nw_store *store, const nw_api_req *req, nw_api_resp *resp)
{
    nw_query q;
    nw_query_init(&q);
    nw_format f;
    int64_t limit;
    if (check_args(req, p_connections, resp) || get_format(req, &f, resp) ||
        apply_filters(req, &q, resp) ||
        get_limit(req, f != NW_FMT_JSON, f == NW_FMT_JSON ? NW_API_LIMIT_MAX : INT64_MAX, &limit,
                  resp))
        return;
    const char *cur = arg(req, "cursor");
    if (cur && parse_conn_cursor(cur, &q)) {
        bad_param(resp, "cursor", "cursor: not a cursor this server gave out "
                                  "(pass next_cursor back unchanged)");
        return;
    }
    if (f != NW_FMT_JSON) {
        nw_api_stream *s = calloc(1, sizeof *s);
        if (!s) {
            nw_api_error(resp, 500, "internal", "out of memory", NULL);
            return;
        }
        s->kind = SK_CONNS;
        s->store = store;
        s->format = f;
        s->q = q;
        if (q.host) {
            snprintf(s->host, sizeof s->host, "%s", q.host);
            s->q.host = s->host;
        }
        s->remaining = limit > 0 ? limit : -1;
        start_stream(resp, s, req);
        return;
    }
    q.limit = limit;
    resp_reset(resp, 200, CT_JSON);
    page_ctx p;
    memset(&p, 0, sizeof p);
    nw_buf_adds(&resp->body, "{\"data\":");
    nw_enc_begin(&p.enc, NW_FMT_JSON, NW_REC_CONN, &resp->body);
    int more = 0;
    nw_err err = {{0}};
    if (nw_query_connections(store, &q, page_conn_cb, &p, &more, &err) != NW_OK) {
        internal_error(resp, &err);
        return;
    }
    nw_enc_end(&p.enc);
    if (more) {
        char c[33];
        conn_cursor(p.last_fs, p.last_id, c);
        nw_buf_addf(&resp->body, ",\"next_cursor\":\"%s\"", c);
    }
    if (nw_buf_adds(&resp->body, "}\n") || p.full) {
        nw_api_error(resp, 500, "internal", "answer too large", NULL);
        return;
    }
    finish_etag(req, resp);
}

/* The {id} of /connections/{id}...: 0, or -1 (answered 400). */
static int path_id(const char *seg, size_t len, int64_t *id, nw_api_resp *resp)
{
    char buf[32];
    if (len == 0 || len >= sizeof buf) {
        bad_param(resp, "id", "id: expected a connection id (a positive number)");
        return -1;
    }
    memcpy(buf, seg, len);
    buf[len] = '\0';
    if (nw_params_id(buf, id)) {
        bad_param(resp, "id", "id: expected a connection id (a positive number)");
        return -1;
    }
    return 0;
}

/* 0 if the connection exists; else answered (404 or 500). */
static int conn_exists(nw_store *store, int64_t id, nw_conn *c, nw_api_resp *resp)
{
    nw_err err = {{0}};
    nw_status st = nw_query_connection(store, id, c, &err);
    if (st == NW_ERR_INVALID) {
        char msg[64];
        snprintf(msg, sizeof msg, "no connection %" PRId64, id);
        nw_api_error(resp, 404, "not_found", msg, "id");
        return -1;
    }
    if (st != NW_OK) {
        internal_error(resp, &err);
        return -1;
    }
    return 0;
}

static void route_connection(nw_store *store, const nw_api_req *req, const char *seg,
                             size_t len, nw_api_resp *resp)
{
    int64_t id;
    nw_conn c;
    if (check_args(req, p_none, resp) || path_id(seg, len, &id, resp) ||
        conn_exists(store, id, &c, resp))
        return;
    resp_reset(resp, 200, CT_JSON);
    nw_buf_adds(&resp->body, "{\"data\":");
    nw_json_conn(&resp->body, &c);
    nw_buf_adds(&resp->body, "}\n");
    finish_etag(req, resp);
}

static void route_transfers(nw_store *store, const nw_api_req *req, const char *seg,
                            size_t len, nw_api_resp *resp)
{
    int64_t id, limit;
    nw_conn c;
    nw_format f;
    if (check_args(req, p_transfers, resp) || path_id(seg, len, &id, resp) ||
        get_format(req, &f, resp) ||
        get_limit(req, f != NW_FMT_JSON, f == NW_FMT_JSON ? NW_API_LIMIT_MAX : INT64_MAX, &limit,
                  resp))
        return;
    nw_time after = NW_TIME_MIN;
    const char *cur = arg(req, "cursor");
    if (cur && parse_time_cursor(cur, &after)) {
        bad_param(resp, "cursor", "cursor: not a cursor this server gave out "
                                  "(pass next_cursor back unchanged)");
        return;
    }
    if (conn_exists(store, id, &c, resp))
        return;
    if (f != NW_FMT_JSON) {
        nw_api_stream *s = calloc(1, sizeof *s);
        if (!s) {
            nw_api_error(resp, 500, "internal", "out of memory", NULL);
            return;
        }
        s->kind = SK_XFERS;
        s->store = store;
        s->format = f;
        s->conn_id = id;
        s->after = after;
        s->remaining = limit > 0 ? limit : -1;
        start_stream(resp, s, req);
        return;
    }
    resp_reset(resp, 200, CT_JSON);
    page_ctx p;
    memset(&p, 0, sizeof p);
    nw_buf_adds(&resp->body, "{\"data\":");
    nw_enc_begin(&p.enc, NW_FMT_JSON, NW_REC_TRANSFER, &resp->body);
    int more = 0;
    nw_err err = {{0}};
    if (nw_query_transfers_page(store, id, after, limit, page_xfer_cb, &p, &more, &err) !=
        NW_OK) {
        internal_error(resp, &err);
        return;
    }
    nw_enc_end(&p.enc);
    if (more) {
        char cbuf[17];
        hex64((uint64_t)p.last_time, cbuf);
        cbuf[16] = '\0';
        nw_buf_addf(&resp->body, ",\"next_cursor\":\"%s\"", cbuf);
    }
    nw_buf_adds(&resp->body, "}\n");
    finish_etag(req, resp);
}

/* Wraps a list encoded in format f: JSON under "data", others as they are. */
static void list_begin(nw_api_resp *resp, nw_format f, nw_record r, nw_enc *enc)
{
    resp_reset(resp, 200, format_ctype(f));
    if (f == NW_FMT_JSON)
        nw_buf_adds(&resp->body, "{\"data\":");
    nw_enc_begin(enc, f, r, &resp->body);
}

static void list_end(const nw_api_req *req, nw_api_resp *resp, nw_format f, nw_enc *enc)
{
    int rc = nw_enc_end(enc);
    if (f == NW_FMT_JSON)
        rc |= nw_buf_adds(&resp->body, "}\n");
    if (rc) {
        nw_api_error(resp, 500, "internal", "answer too large", NULL);
        return;
    }
    finish_etag(req, resp);
}

/* A processes cursor: the last row's (host, pid) keyset, as hex of the pid
 * (8 digits) then of the host's bytes. */
static void who_cursor(nw_buf *b, const nw_who_row *w)
{
    static const char digits[] = "0123456789abcdef";
    char pid[9];
    snprintf(pid, sizeof pid, "%08" PRIx32, w->pid);
    nw_buf_add(b, pid, 8);
    for (const unsigned char *h = (const unsigned char *)w->host; *h; h++) {
        char x[2] = {digits[*h >> 4], digits[*h & 15]};
        nw_buf_add(b, x, 2);
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Parses who_cursor's text into host[NW_HOST_MAX] and *pid.  0 or -1. */
static int parse_who_cursor(const char *s, char *host, uint32_t *pid)
{
    size_t len = strlen(s);
    if (len < 8 || len % 2 || (len - 8) / 2 >= NW_HOST_MAX)
        return -1;
    uint32_t p = 0;
    for (int i = 0; i < 8; i++) {
        int d = hexval(s[i]);
        if (d < 0)
            return -1;
        p = p << 4 | (uint32_t)d;
    }
    size_t n = 0;
    for (size_t i = 8; i < len; i += 2, n++) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -1;
        host[n] = (char)(hi << 4 | lo);
    }
    host[n] = '\0';
    *pid = p;
    return 0;
}

static void route_processes(nw_store *store, const nw_api_req *req, const char *ip,
                            size_t iplen, nw_api_resp *resp)
{
    nw_query q;
    nw_query_init(&q);
    nw_format f;
    int64_t limit;
    if (check_args(req, p_processes, resp) || get_format(req, &f, resp) ||
        apply_filters(req, &q, resp) ||
        get_limit(req, f != NW_FMT_JSON, f == NW_FMT_JSON ? NW_API_LIMIT_MAX : INT64_MAX, &limit,
                  resp))
        return;
    char ipbuf[NW_PARAM_MAX_VALUE + 1];
    if (iplen > NW_PARAM_MAX_VALUE) {
        bad_param(resp, "ip", "ip: expected an IPv4 or IPv6 address or CIDR block");
        return;
    }
    memcpy(ipbuf, ip, iplen);
    ipbuf[iplen] = '\0';
    nw_err err = {{0}};
    if (nw_params_apply(&q, "ip", ipbuf, NULL, &err) != NW_OK) {
        nw_api_error(resp, 400, "bad_parameter", err.msg, "ip");
        return;
    }
    char cur_host[NW_HOST_MAX];
    const char *cur = arg(req, "cursor");
    if (cur) {
        if (parse_who_cursor(cur, cur_host, &q.who_cursor_pid)) {
            bad_param(resp, "cursor", "cursor: not a cursor this server gave out "
                                      "(pass next_cursor back unchanged)");
            return;
        }
        q.has_who_cursor = 1;
        q.who_cursor_host = cur_host;
    }
    /* Pages in (host, pid) order: a keyset that stays put while ingest goes
     * on (query.h).  ndjson and csv have no place for a cursor: they run to
     * the end unless limited. */
    q.limit = limit;
    nw_who_row *rows = NULL;
    size_t n = 0;
    int more = 0;
    if (nw_query_who_page(store, &q, &rows, &n, &more, &err) != NW_OK) {
        internal_error(resp, &err);
        return;
    }
    nw_enc enc;
    list_begin(resp, f, NW_REC_WHO, &enc);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = nw_enc_who(&enc, &rows[i]);
    rc |= nw_enc_end(&enc);
    if (f == NW_FMT_JSON) {
        if (more && n > 0) {
            rc |= nw_buf_adds(&resp->body, ",\"next_cursor\":\"");
            who_cursor(&resp->body, &rows[n - 1]);
            rc |= nw_buf_adds(&resp->body, "\"");
        }
        rc |= nw_buf_adds(&resp->body, "}\n");
    }
    free(rows);
    if (rc) {
        nw_api_error(resp, 500, "internal", "answer too large", NULL);
        return;
    }
    finish_etag(req, resp);
}

static int failure_cb(void *ctx, const nw_failure *fl)
{
    page_ctx *p = ctx;
    if (p->remaining-- <= 0) {
        p->full = 1;
        return 1;
    }
    return nw_enc_failure(&p->enc, fl);
}

static void route_failures(nw_store *store, const nw_api_req *req, nw_api_resp *resp)
{
    nw_query q;
    nw_query_init(&q);
    nw_format f;
    int64_t limit;
    if (check_args(req, p_failures, resp) || get_format(req, &f, resp) ||
        apply_filters(req, &q, resp) ||
        get_limit(req, 0, NW_API_LIMIT_MAX, &limit, resp))
        return;
    page_ctx p;
    memset(&p, 0, sizeof p);
    p.remaining = limit;
    list_begin(resp, f, NW_REC_FAILURE, &p.enc);
    nw_err err = {{0}};
    if (nw_query_failures(store, q.host, q.from, q.to, failure_cb, &p, &err) != NW_OK) {
        internal_error(resp, &err);
        return;
    }
    list_end(req, resp, f, &p.enc);
}

static void route_top(nw_store *store, const nw_api_req *req, nw_api_resp *resp)
{
    static const char *const bys[] = {"remote_ip", "remote_port", "pid", "host"};
    static const char *const orders[] = {"bytes", "connections"};
    nw_query q;
    nw_query_init(&q);
    int64_t limit;
    if (check_args(req, p_top, resp) || apply_filters(req, &q, resp) ||
        get_limit(req, 0, NW_API_LIMIT_MAX, &limit, resp))
        return;
    int by = 0, order = 0;
    const char *v = arg(req, "by");
    if (v) {
        for (by = 0; by < 4 && strcmp(v, bys[by]) != 0; by++)
            ;
        if (by == 4) {
            bad_param(resp, "by", "by: expected remote_ip, remote_port, pid or host");
            return;
        }
    }
    v = arg(req, "order");
    if (v) {
        for (order = 0; order < 2 && strcmp(v, orders[order]) != 0; order++)
            ;
        if (order == 2) {
            bad_param(resp, "order", "order: expected bytes or connections");
            return;
        }
    }
    nw_top_row *rows = NULL;
    size_t n = 0;
    nw_err err = {{0}};
    nw_status st = nw_query_top(store, (nw_top_by)by, (nw_top_order)order, q.from, q.to,
                                (size_t)limit, &rows, &n, &err);
    if (st == NW_ERR_LIMIT) {
        nw_api_error(resp, 400, "too_many_groups", err.msg, "from");
        return;
    }
    if (st != NW_OK) {
        internal_error(resp, &err);
        return;
    }
    resp_reset(resp, 200, CT_JSON);
    nw_buf *b = &resp->body;
    nw_buf_addf(b, "{\"by\":\"%s\",\"order\":\"%s\",\"data\":[", bys[by], orders[order]);
    for (size_t i = 0; i < n; i++) {
        const nw_top_row *r = &rows[i];
        nw_buf_adds(b, i ? ",{" : "{");
        if (by == NW_TOP_REMOTE_IP) {
            char ip[NW_ADDR_STRLEN];
            nw_addr_format(&r->remote_ip, nw_addr_is_v4(&r->remote_ip) ? 4 : 6, ip, sizeof ip);
            nw_buf_addf(b, "\"remote_ip\":\"%s\"", ip);
        } else if (by == NW_TOP_REMOTE_PORT) {
            nw_buf_addf(b, "\"remote_port\":%u", r->remote_port);
        } else {
            nw_buf_adds(b, "\"host\":");
            nw_buf_add_json_str(b, r->host, strlen(r->host));
            if (by == NW_TOP_PID)
                nw_buf_addf(b, ",\"pid\":%" PRIu32, r->pid);
        }
        nw_buf_addf(b,
                    ",\"connections\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
                    ",\"bytes_received\":%" PRIu64 ",\"bytes_total\":%" PRIu64 "}",
                    r->connections, r->bytes_sent, r->bytes_received,
                    r->bytes_sent + r->bytes_received);
    }
    free(rows);
    if (nw_buf_adds(b, "]}\n")) {
        nw_api_error(resp, 500, "internal", "answer too large", NULL);
        return;
    }
    finish_etag(req, resp);
}

static void ingest_counts(const nw_api_env *env, nw_api_ingest_stats *is)
{
    memset(is, 0, sizeof *is);
    if (env->ingest_stats)
        env->ingest_stats(env->ingest_ctx, is);
}

static void route_health(const nw_api_env *env, nw_store *store, const nw_api_req *req,
                         nw_api_resp *resp)
{
    if (check_args(req, p_none, resp))
        return;
    nw_partition_info *parts = NULL;
    size_t n = 0;
    nw_err err = {{0}};
    if (nw_store_partitions(store, &parts, &n, &err) != NW_OK) {
        nw_api_error(resp, 503, "store_unavailable", err.msg, NULL);
        return;
    }
    uint64_t conns = 0;
    nw_time newest = NW_TIME_MIN;
    for (size_t i = 0; i < n; i++) {
        conns += parts[i].connections;
        if (parts[i].connections && parts[i].max_last_seen > newest)
            newest = parts[i].max_last_seen;
    }
    free(parts);
    nw_api_ingest_stats is;
    ingest_counts(env, &is);
    resp_reset(resp, 200, CT_JSON);
    nw_buf *b = &resp->body;
    nw_buf_adds(b, "{\"status\":\"ok\",\"store\":");
    nw_buf_add_json_str(b, env->store_dir, strlen(env->store_dir));
    nw_buf_addf(b,
                ",\"partitioning\":\"%s\",\"partitions\":%zu,\"connections\":%" PRIu64
                ",\"store_bytes\":%" PRIu64 ",\"newest_event\":",
                nw_partitioning_name(nw_store_partitioning(store)), n, conns,
                nw_store_bytes(store));
    char ts[NW_TIME_STRLEN];
    if (newest != NW_TIME_MIN && nw_time_format(newest, ts, sizeof ts))
        nw_buf_addf(b, "\"%s\"", ts);
    else
        nw_buf_adds(b, "null");
    nw_buf_addf(b,
                ",\"ingest\":{\"enabled\":%s,\"batches\":%" PRIu64 ",\"accepted\":%" PRIu64
                ",\"rejected\":%" PRIu64 ",\"failed_batches\":%" PRIu64 "}}\n",
                env->ingest ? "true" : "false", is.batches, is.accepted, is.rejected,
                is.failed_batches);
    finish_etag(req, resp);
}

static void route_metrics(const nw_api_env *env, nw_store *store, const nw_api_req *req,
                          nw_api_resp *resp)
{
    if (check_args(req, p_none, resp))
        return;
    resp_reset(resp, 200, "text/plain; version=0.0.4; charset=utf-8");
    nw_buf *b = &resp->body;
    nw_metrics_render(env->metrics, b);
    nw_partition_info *parts = NULL;
    size_t n = 0;
    nw_err err = {{0}};
    uint64_t conns = 0;
    if (nw_store_partitions(store, &parts, &n, &err) == NW_OK) {
        for (size_t i = 0; i < n; i++)
            conns += parts[i].connections;
        free(parts);
    }
    nw_buf_addf(b,
                "# HELP netwhod_store_partitions Partition files in the store.\n"
                "# TYPE netwhod_store_partitions gauge\nnetwhod_store_partitions %zu\n"
                "# HELP netwhod_store_bytes Bytes of the store's database files.\n"
                "# TYPE netwhod_store_bytes gauge\nnetwhod_store_bytes %" PRIu64 "\n"
                "# HELP netwhod_store_connections Connection rows in the store.\n"
                "# TYPE netwhod_store_connections gauge\nnetwhod_store_connections %" PRIu64
                "\n",
                n, nw_store_bytes(store), conns);
    nw_api_ingest_stats is;
    ingest_counts(env, &is);
    nw_buf_adds(b, "# HELP netwhod_ingest_events_total Events accepted, by ETW event id.\n"
                   "# TYPE netwhod_ingest_events_total counter\n");
    for (int i = 0; i < 64; i++)
        if (is.events_by_id[i])
            nw_buf_addf(b, "netwhod_ingest_events_total{event_id=\"%d\"} %" PRIu64 "\n", i,
                        is.events_by_id[i]);
    nw_buf_adds(b, "# HELP netwhod_ingest_rejected_total Events rejected, by reason.\n"
                   "# TYPE netwhod_ingest_rejected_total counter\n");
    for (int r = 1; r < NW_REJ__COUNT; r++)
        if (is.rejected_by[r])
            nw_buf_addf(b, "netwhod_ingest_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                        nw_reject_name((nw_reject)r), is.rejected_by[r]);
    nw_buf_addf(b,
                "# HELP netwhod_ingest_batches_total Ingest batches committed.\n"
                "# TYPE netwhod_ingest_batches_total counter\n"
                "netwhod_ingest_batches_total %" PRIu64 "\n",
                is.batches);
    /* Metrics change with every request: no ETag (a 304 would hide them). */
}

static void route_openapi(const nw_api_env *env, const nw_api_req *req, nw_api_resp *resp)
{
    if (check_args(req, p_none, resp))
        return;
    FILE *f = env->openapi_path ? fopen(env->openapi_path, "rb") : NULL;
    if (!f) {
        nw_api_error(resp, 404, "not_found", "openapi.yaml is not installed with this server",
                     NULL);
        return;
    }
    resp_reset(resp, 200, "application/yaml");
    char chunk[8192];
    size_t got;
    int rc = 0;
    while (!rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = nw_buf_add(&resp->body, chunk, got) ||
             resp->body.len > NW_API_OPENAPI_MAX;
    fclose(f);
    if (rc) {
        nw_api_error(resp, 500, "internal", "openapi.yaml is too large", NULL);
        return;
    }
    finish_etag(req, resp);
}

static void route_events(const nw_api_env *env, const nw_api_req *req, nw_api_resp *resp)
{
    if (check_args(req, p_none, resp))
        return;
    if (!env->ingest) {
        nw_api_error(resp, 503, "ingest_disabled", "this server does not ingest", NULL);
        return;
    }
    if (req->body_len == 0) {
        nw_api_error(resp, 400, "empty_body",
                     "send events as NDJSON, concatenated objects or a JSON array", NULL);
        return;
    }
    nw_api_ingest_result *r = calloc(1, sizeof *r);
    if (!r) {
        nw_api_error(resp, 500, "internal", "out of memory", NULL);
        return;
    }
    env->ingest(env->ingest_ctx, req->body, req->body_len, r);
    if (r->status == NW_ERR_BUSY) {
        nw_api_error(resp, 503, "store_busy", r->message, NULL);
        free(r);
        return;
    }
    if (r->status != NW_OK) {
        nw_api_error(resp, 500, "ingest_failed", r->message, NULL);
        free(r);
        return;
    }
    /* Counts in a reusable fragment: the body of a 200, or beside the error
     * of a 400 when nothing in the body was usable. */
    nw_buf counts;
    nw_buf_init(&counts, 4096);
    nw_buf_addf(&counts,
                "\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"rejected_by_reason\":{",
                r->accepted, r->rejected);
    int first = 1;
    for (int i = 1; i < NW_REJ__COUNT; i++)
        if (r->rejected_by[i]) {
            nw_buf_addf(&counts, "%s\"%s\":%" PRIu64, first ? "" : ",",
                        nw_reject_name((nw_reject)i), r->rejected_by[i]);
            first = 0;
        }
    nw_buf_adds(&counts, "}");
    if (r->accepted == 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "none of the %" PRIu64 " events in the body could be used "
                 "(see rejected_by_reason; they are kept in the store's rejected/)",
                 r->rejected);
        nw_api_error(resp, 400, "no_events_accepted", msg, NULL);
        /* Splice the counts into the error object: {"error":{...},counts} */
        if (resp->body.len >= 2) {
            resp->body.len -= 2;                /* drop "}\n" */
            nw_buf_adds(&resp->body, ",");
            nw_buf_add(&resp->body, counts.data, counts.len);
            nw_buf_adds(&resp->body, "}\n");
        }
    } else {
        resp_reset(resp, 200, CT_JSON);
        nw_buf_adds(&resp->body, "{");
        nw_buf_add(&resp->body, counts.data, counts.len);
        nw_buf_adds(&resp->body, "}\n");
    }
    nw_buf_free(&counts);
    free(r);
}

/* ------------------------------------------------------------- dispatch */

static int has_prefix(const char *s, const char *p, const char **rest)
{
    size_t n = strlen(p);
    if (strncmp(s, p, n) != 0)
        return 0;
    *rest = s + n;
    return 1;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

void nw_api_handle(const nw_api_env *env, nw_store *store, const nw_api_req *req,
                   nw_api_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    nw_buf_init(&resp->body, NW_API_BODY_MAX);
    const char *path = req->path ? req->path : "";
    const char *rest = NULL;
    nw_api_route route = NW_ROUTE_UNKNOWN;
    const char *seg = NULL;
    size_t seglen = 0;

    if (strcmp(path, "/api/v1/connections") == 0) {
        route = NW_ROUTE_CONNECTIONS;
    } else if (has_prefix(path, "/api/v1/connections/", &rest)) {
        const char *slash = strchr(rest, '/');
        seg = rest;
        if (!slash) {
            route = NW_ROUTE_CONNECTION;
            seglen = strlen(rest);
        } else if (strcmp(slash, "/transfers") == 0) {
            route = NW_ROUTE_TRANSFERS;
            seglen = (size_t)(slash - rest);
        }
    } else if (has_prefix(path, "/api/v1/ips/", &rest)) {
        /* The address may be a CIDR block whose '/' arrives decoded (a
         * client's %2F): everything between the prefix and the last
         * "/processes" is the address. */
        size_t len = strlen(rest);
        if (ends_with(rest, len, "/processes")) {
            route = NW_ROUTE_PROCESSES;
            seg = rest;
            seglen = len - strlen("/processes");
        }
    } else if (strcmp(path, "/api/v1/stats/top") == 0) {
        route = NW_ROUTE_TOP;
    } else if (strcmp(path, "/api/v1/failures") == 0) {
        route = NW_ROUTE_FAILURES;
    } else if (strcmp(path, "/api/v1/health") == 0) {
        route = NW_ROUTE_HEALTH;
    } else if (strcmp(path, "/metrics") == 0) {
        route = NW_ROUTE_METRICS;
    } else if (strcmp(path, "/openapi.yaml") == 0) {
        route = NW_ROUTE_OPENAPI;
    } else if (strcmp(path, "/api/v1/events") == 0) {
        route = NW_ROUTE_EVENTS;
    }
    resp->route = route;
    if (route == NW_ROUTE_UNKNOWN) {
        nw_api_error(resp, 404, "not_found", "no such path (see /openapi.yaml)", NULL);
        return;
    }

    const char *method = req->method ? req->method : "";
    int is_post_route = route == NW_ROUTE_EVENTS;
    const char *allow = is_post_route ? "POST, OPTIONS" : "GET, HEAD, OPTIONS";
    if (strcmp(method, "OPTIONS") == 0) {
        resp_reset(resp, 204, NULL);
        resp->allow = allow;
        return;
    }
    int ok = is_post_route ? strcmp(method, "POST") == 0
                           : strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "this path answers %s only",
                 is_post_route ? "POST" : "GET and HEAD");
        nw_api_error(resp, 405, "method_not_allowed", msg, NULL);
        resp->allow = allow;
        return;
    }
    if (route == NW_ROUTE_OPENAPI) {
        route_openapi(env, req, resp);
        return;
    }
    if (route == NW_ROUTE_EVENTS) {
        route_events(env, req, resp);
        return;
    }
    if (!store) {
        nw_api_error(resp, 503, "store_unavailable", "the store cannot be opened", NULL);
        return;
    }
    switch (route) {
    case NW_ROUTE_CONNECTIONS: route_connections(store, req, resp); break;
    case NW_ROUTE_CONNECTION: route_connection(store, req, seg, seglen, resp); break;
    case NW_ROUTE_TRANSFERS: route_transfers(store, req, seg, seglen, resp); break;
    case NW_ROUTE_PROCESSES: route_processes(store, req, seg, seglen, resp); break;
    case NW_ROUTE_TOP: route_top(store, req, resp); break;
    case NW_ROUTE_FAILURES: route_failures(store, req, resp); break;
    case NW_ROUTE_HEALTH: route_health(env, store, req, resp); break;
    case NW_ROUTE_METRICS: route_metrics(env, store, req, resp); break;
    default: break;
    }
}

void nw_api_resp_free(nw_api_resp *resp)
{
    nw_buf_free(&resp->body);
    free(resp->stream);
    resp->stream = NULL;
}
