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
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "netwho/encode.h"
#include "netwho/metrics.h"
#include "netwho/params.h"
#include "netwho/procstore.h"
#include "netwho/query.h"
#include "netwho/sysmon.h"

/* Largest openapi.yaml served (it is a few tens of KB). */
#define NW_API_OPENAPI_MAX (1024 * 1024)
/* Bytes of a parameter name or value echoed in an error. */
#define NW_API_ECHO_MAX 64

#define CT_JSON "application/json"
#define CT_NDJSON "application/x-ndjson"
#define CT_CSV "text/csv; charset=utf-8"

static const char *const route_names[NW_ROUTE__COUNT] = {
    "unknown", "connections", "connection", "transfers", "processes", "top",
    "failures", "health", "metrics", "openapi", "events", "export_sysmon",
    "process_connections", "hourly"};

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

/* A cursor that none of our encoders gave out: edited, or from another
 * route. */
static void bad_cursor(nw_api_resp *resp)
{
    bad_param(resp, "cursor", "cursor: not a cursor this server gave out "
                              "(pass next_cursor back unchanged)");
}

/* A store failure as a 500.  A damaged file (SQLite: malformed, not a
 * database) is "store_corrupt": the message names the partition, and a
 * query whose window leaves it out answers as usual. */
static void internal_error(nw_api_resp *resp, nw_status st, const nw_err *err)
{
    nw_api_error(resp, 500, st == NW_ERR_CORRUPT ? "store_corrupt" : "internal",
                 err->msg[0] ? err->msg : "internal error", NULL);
}

#define FNV_BASIS 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

/* 64-bit FNV-1a of len bytes, continued from h. */
static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    return fnv(h, &v, sizeof v);
}

/* A string with its length first, so "ab"+"c" and "a"+"bc" differ. */
static uint64_t fnv_str(uint64_t h, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return fnv(fnv_u64(h, n), s ? s : "", n);
}

static void etag_text(uint64_t h, char out[24])
{
    snprintf(out, 24, "\"%016" PRIx64 "\"", h);
}

void nw_api_etag(const char *data, size_t len, char out[24])
{
    etag_text(fnv(FNV_BASIS, data, len), out);
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

/* Sets the ETag of a finished body answer -- the generation tag computed
 * before the query, else a hash of the body and its coding -- and turns it
 * into a 304 if the client has it already. */
static void finish_etag(const nw_api_req *req, nw_api_resp *resp)
{
    if (resp->pre_etag[0]) {
        memcpy(resp->etag, resp->pre_etag, sizeof resp->etag);
    } else {
        uint64_t h = fnv(FNV_BASIS, resp->body.data ? resp->body.data : "", resp->body.len);
        if (req->gzip)
            h = fnv_str(h, "gzip");
        etag_text(h, resp->etag);
    }
    if (nw_api_etag_matches(req->if_none_match, resp->etag)) {
        nw_buf_reset(&resp->body);
        resp->status = 304;
    }
}

/* ------------------------------------------------------------ parameters */

/* Parameter sets of the routes.  A name outside a route's set is a 400.
 * FLOW_FILTERS are residual (query.h): they narrow a connection scan, so
 * they apply wherever connections are listed, and nowhere else. */
#define FLOW_FILTERS "community_id", "exclude_loopback", "scope"
#define FILTERS "ip", "port", "local_port", "remote_port", "pid", "host", "proto", \
                "direction", "state", "from", "to", "process", FLOW_FILTERS
static const char *const p_connections[] = {FILTERS, "limit", "cursor", "format", NULL};
static const char *const p_processes[] = {"port", "local_port", "remote_port", "pid", "host",
                                          "proto", "direction", "state", "from", "to",
                                          "limit", "cursor", "format", NULL};
static const char *const p_transfers[] = {"limit", "cursor", "format", NULL};
static const char *const p_proc_conns[] = {"host", "at", FLOW_FILTERS, "limit", "cursor",
                                           "format", NULL};
static const char *const p_top[] = {"by", "order", "from", "to", "limit", NULL};
static const char *const p_failures[] = {"host", "from", "to", "limit", "format", NULL};
static const char *const p_hourly[] = {"ip", "host", "pid", "port", "from", "to", "by",
                                       "limit", "format", NULL};
static const char *const p_none[] = {NULL};
static const char *const p_export_sysmon[] = {FILTERS, "limit", "format", "ossem", "bulk",
                                              NULL};

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
        /* No value of any parameter holds a control character: a CR/LF or
         * an escape sequence is an injection attempt or a broken client,
         * never a host name, address, time or cursor. */
        for (const unsigned char *v = (const unsigned char *)req->args[i].value; *v; v++)
            if (*v < 0x20 || *v == 0x7f) {
                bad_param(resp, name, "%s: contains a control character (0x%02x)", name, *v);
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

static const char *sysmon_ctype(nw_sysmon_format f)
{
    return f == NW_SYSMON_XML ? "application/xml" : f == NW_SYSMON_JSON ? CT_JSON : CT_NDJSON;
}

/* ------------------------------------------------------- request tags */

static int cmp_arg(const void *a, const void *b)
{
    const nw_api_arg *x = *(const nw_api_arg *const *)a, *y = *(const nw_api_arg *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/*
 * The generation ETag of a GET on route (see routes.h) into out, or "" if
 * the store's generation cannot be read (then no tag, and no 304).  The
 * parameters are sorted, so their order does not matter; format is the
 * one the answer will have (format= or Accept), not the header's text.
 */
static void generation_etag(const nw_api_env *env, nw_store *store, nw_api_route route,
                            const nw_api_req *req, char out[24])
{
    out[0] = '\0';
    uint64_t gen = 0;
    nw_err err = {{0}};
    if (req->nargs > NW_API_MAX_ARGS || nw_store_generation(store, &gen, &err) != NW_OK)
        return;
    const nw_api_arg *sorted[NW_API_MAX_ARGS];
    for (size_t i = 0; i < req->nargs; i++)
        sorted[i] = &req->args[i];
    qsort(sorted, req->nargs, sizeof sorted[0], cmp_arg);
    nw_format f = NW_FMT_JSON;
    nw_api_resp scratch;            /* get_format answers only on a bad value */
    memset(&scratch, 0, sizeof scratch);
    nw_buf_init(&scratch.body, 4096);
    int fmt = get_format(req, &f, &scratch) ? -1 : (int)f;
    nw_buf_free(&scratch.body);
    uint64_t h = fnv_str(FNV_BASIS, "netwho-etag-1");
    h = fnv_u64(h, env->instance);
    h = fnv_u64(h, gen);
    /* Process events change answers (the process objects) without a
     * partition commit, so the process table's state is part of the tag. */
    h = fnv_u64(h, nw_process_table_stamp(store));
    h = fnv_u64(h, (uint64_t)route);
    h = fnv_u64(h, (uint64_t)(req->gzip != 0));
    h = fnv_u64(h, (uint64_t)(int64_t)fmt);
    h = fnv_str(h, req->path);
    h = fnv_u64(h, req->nargs);
    for (size_t i = 0; i < req->nargs; i++) {
        h = fnv_str(h, sorted[i]->name);
        h = fnv_str(h, sorted[i]->value);
    }
    etag_text(h, out);
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

/* A hex digit's value, any case; -1 if c is none. */
static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Exactly 16 lower- or upper-case hex digits. */
static int unhex64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int d = hexval(s[i]);
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

typedef enum stream_kind { SK_CONNS, SK_XFERS, SK_SYSMON } stream_kind;

struct nw_api_stream {
    stream_kind kind;
    nw_store *store;
    nw_enc enc;
    nw_format format;
    int begun, done;
    int64_t remaining;           /* rows left to send; -1: no limit       */
    nw_query q;                  /* SK_CONNS; q.host points at host below */
    char host[NW_HOST_MAX];
    char process[NW_IMAGE_MAX];  /* q.process points here               */
    int64_t conn_id;             /* SK_XFERS                              */
    nw_time after;
    nw_time last_fs;             /* keyset of the last row sent           */
    int64_t last_id;
    int64_t page_rows;
    nw_sysmon_format sformat;    /* SK_SYSMON: connections as Sysmon/ECS  */
    nw_sysmon_opts sopts;
    nw_sysmon_enc senc;
};

static int stream_conn_cb(void *ctx, const nw_conn *c)
{
    nw_api_stream *s = ctx;
    s->last_fs = c->first_seen;
    s->last_id = c->id;
    s->page_rows++;
    if (s->kind == SK_SYSMON) {
        nw_process scratch;
        return nw_sysmon_conn(&s->senc, c, nw_sysmon_process_for(s->store, c, &scratch));
    }
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
    s->senc.out = out;
    size_t before = out->len;
    if (!s->begun && s->kind == SK_SYSMON) {
        if (nw_sysmon_begin(&s->senc, s->sformat, &s->sopts, out))
            return -1;
        s->begun = 1;
    }
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
        if (s->kind == SK_CONNS || s->kind == SK_SYSMON) {
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
        if (s->kind == SK_SYSMON ? nw_sysmon_end(&s->senc) : nw_enc_end(&s->enc))
            return -1;
    }
    return out->len > before ? 1 : (s->done ? 0 : 1);
}

/* Starts a streamed answer under the generation tag computed before it
 * (a matching If-None-Match was answered 304 before the route ran). */
/* A new stream of kind over store; NULL after answering 500.  Owned by the
 * response once start_stream has it. */
static nw_api_stream *stream_new(nw_api_resp *resp, stream_kind kind, nw_store *store)
{
    nw_api_stream *s = calloc(1, sizeof *s);
    if (!s) {
        nw_api_error(resp, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    s->kind = kind;
    s->store = store;
    return s;
}

/* The stream's query: q with its own copies of the strings, which point
 * into the request's arguments, freed before the stream ends. */
static void stream_set_query(nw_api_stream *s, const nw_query *q)
{
    s->q = *q;
    if (q->host) {
        snprintf(s->host, sizeof s->host, "%s", q->host);
        s->q.host = s->host;
    }
    if (q->process) {
        snprintf(s->process, sizeof s->process, "%s", q->process);
        s->q.process = s->process;
    }
}

static void start_stream(nw_api_resp *resp, nw_api_stream *s, const nw_api_req *req)
{
    resp_reset(resp, 200,
               s->kind == SK_SYSMON ? sysmon_ctype(s->sformat) : format_ctype(s->format));
    memcpy(resp->etag, resp->pre_etag, sizeof resp->etag);
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

/* A list of connections: the filters of req on top of base (NULL: none),
 * parameters limited to set. */
static void answer_connections(nw_store *store, const nw_api_req *req, nw_api_resp *resp,
                               const char *const *set, const nw_query *base)
{
    nw_query q;
    if (base)
        q = *base;
    else
        nw_query_init(&q);
    nw_format f;
    int64_t limit;
    if (check_args(req, set, resp) || get_format(req, &f, resp) ||
        apply_filters(req, &q, resp) ||
        get_limit(req, f != NW_FMT_JSON, f == NW_FMT_JSON ? NW_API_LIMIT_MAX : INT64_MAX, &limit,
                  resp))
        return;
    const char *cur = arg(req, "cursor");
    if (cur && parse_conn_cursor(cur, &q)) {
        bad_cursor(resp);
        return;
    }
    if (f != NW_FMT_JSON) {
        nw_api_stream *s = stream_new(resp, SK_CONNS, store);
        if (!s)
            return;
        s->format = f;
        stream_set_query(s, &q);
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
    nw_status qst = nw_query_connections(store, &q, page_conn_cb, &p, &more, &err);
    if (qst != NW_OK) {
        internal_error(resp, qst, &err);
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

static void route_connections(nw_store *store, const nw_api_req *req, nw_api_resp *resp)
{
    answer_connections(store, req, resp, p_connections, NULL);
}

/*
 * GET /api/v1/processes/{pid}/connections?host=&at=: the connections of the
 * process that held pid on host at time at (procstore.h's rule), i.e.
 * those attributed to that very process -- never to an earlier or later
 * holder of the pid.  404 if no known process held it then.
 */
static void route_process_connections(nw_store *store, const nw_api_req *req,
                                      const char *seg, size_t seglen, nw_api_resp *resp)
{
    char buf[24];
    int64_t pid = -1;
    if (check_args(req, p_proc_conns, resp))
        return;
    if (seglen == 0 || seglen >= sizeof buf) {
        bad_param(resp, "pid", "pid: expected a number from 0 to 4294967295");
        return;
    }
    memcpy(buf, seg, seglen);
    buf[seglen] = '\0';
    nw_query q;
    nw_query_init(&q);
    nw_err err = {{0}};
    const char *bad = NULL;
    if (nw_params_apply(&q, "pid", buf, &bad, &err) != NW_OK) {
        nw_api_error(resp, 400, "bad_parameter", err.msg, "pid");
        return;
    }
    pid = q.pid;
    /* The filters' values first: a bad one is a 400 whether or not the
     * process is known (answer_connections applies them again, alike). */
    if (apply_filters(req, &q, resp))
        return;
    const char *host = arg(req, "host"), *at = arg(req, "at");
    if (!host || !host[0]) {
        bad_param(resp, "host", "host: required (the computer whose pid this is)");
        return;
    }
    nw_time t;
    if (!at || nw_time_parse_user(at, &t)) {
        bad_param(resp, "at", "at: required, an RFC 3339 time (2026-03-16T00:21:36Z) or "
                              "epoch seconds");
        return;
    }
    nw_process p;
    int found = 0;
    nw_status qst = nw_process_at(store, host, (uint32_t)pid, t, &p, &found, &err);
    if (qst != NW_OK) {
        internal_error(resp, qst, &err);
        return;
    }
    if (!found) {
        nw_api_error(resp, 404, "not_found",
                     "no known process held this pid on this host at that time", NULL);
        return;
    }
    /* Its connections began in [create_time, exit_time]: the window
     * prunes partitions, the attribution check decides. */
    q.host = host;
    q.from = p.create_time - NW_PROC_CLOCK_SKEW;
    if (p.exit_time != NW_TIME_MAX)
        q.to = p.exit_time + 1;
    q.has_process_create = 1;
    q.process_create = p.create_time;
    answer_connections(store, req, resp, p_proc_conns, &q);
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
        internal_error(resp, st, &err);
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
        bad_cursor(resp);
        return;
    }
    if (conn_exists(store, id, &c, resp))
        return;
    if (f != NW_FMT_JSON) {
        nw_api_stream *s = stream_new(resp, SK_XFERS, store);
        if (!s)
            return;
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
    nw_status qst =
        nw_query_transfers_page(store, id, after, limit, page_xfer_cb, &p, &more, &err);
    if (qst != NW_OK) {
        internal_error(resp, qst, &err);
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
            bad_cursor(resp);
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
    nw_status qst = nw_query_who_page(store, &q, &rows, &n, &more, &err);
    if (qst != NW_OK) {
        internal_error(resp, qst, &err);
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
    nw_status qst = nw_query_failures(store, q.host, q.from, q.to, failure_cb, &p, &err);
    if (qst != NW_OK) {
        internal_error(resp, qst, &err);
        return;
    }
    list_end(req, resp, f, &p.enc);
}

static int hourly_cb(void *ctx, const nw_hourly_row *h)
{
    page_ctx *p = ctx;
    return nw_enc_hourly(&p->enc, h);
}

/* GET /api/v1/stats/hourly: the hourly roll-up (hourly.h), one page of at
 * most limit rows; JSON says whether more follow ("more"). */
static void route_hourly(nw_store *store, const nw_api_req *req, nw_api_resp *resp)
{
    nw_hourly_query q;
    nw_hourly_query_init(&q);
    nw_format f;
    int64_t limit;
    if (check_args(req, p_hourly, resp) || get_format(req, &f, resp) ||
        get_limit(req, 0, NW_API_LIMIT_MAX, &limit, resp))
        return;
    for (size_t i = 0; i < req->nargs; i++) {
        const char *name = req->args[i].name;
        if (strcmp(name, "format") == 0 || strcmp(name, "limit") == 0)
            continue;
        const char *bad = NULL;
        nw_err err = {{0}};
        if (nw_params_hourly(&q, name, req->args[i].value, &bad, &err) != NW_OK) {
            nw_api_error(resp, 400, "bad_parameter", err.msg, bad ? bad : name);
            return;
        }
    }
    const char *bad = NULL;
    nw_err err = {{0}};
    if (nw_params_hourly_check(&q, &bad, &err) != NW_OK) {
        nw_api_error(resp, 400, "bad_parameter", err.msg, bad);
        return;
    }
    q.limit = limit;
    page_ctx p;
    memset(&p, 0, sizeof p);
    int more = 0;
    list_begin(resp, f, NW_REC_HOURLY, &p.enc);
    nw_status qst = nw_query_hourly(store, &q, hourly_cb, &p, &more, &err);
    if (qst != NW_OK) {
        internal_error(resp, qst, &err);
        return;
    }
    int rc = nw_enc_end(&p.enc);
    if (f == NW_FMT_JSON) {
        /* nw_enc_end ended the array with a newline: drop it. */
        if (resp->body.len && resp->body.data[resp->body.len - 1] == '\n')
            resp->body.data[--resp->body.len] = '\0';
        rc |= nw_buf_adds(&resp->body, more ? ",\"more\":true}\n" : ",\"more\":false}\n");
    }
    if (rc) {
        nw_api_error(resp, 500, "internal", "answer too large", NULL);
        return;
    }
    finish_etag(req, resp);
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
        internal_error(resp, st, &err);
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

/*
 * Hosts and their newest event (nw_store_hosts) cost a file open per
 * partition, and the dashboard polls /health: the answer is kept here,
 * process-wide, for one store and generation, and recomputed only after
 * a commit changed the generation.
 */
static struct {
    pthread_mutex_t mu;
    int valid;
    char dir[4096];
    uint64_t gen;
    nw_host_seen *v;
    size_t n, dropped;
} hosts_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Appends "hosts":[...],"hosts_omitted":N for the store at generation gen. */
static void health_hosts(nw_store *store, const char *dir, uint64_t gen, int have_gen,
                         nw_buf *b)
{
    pthread_mutex_lock(&hosts_cache.mu);
    int hit = have_gen && hosts_cache.valid && hosts_cache.gen == gen &&
              strcmp(hosts_cache.dir, dir) == 0;
    pthread_mutex_unlock(&hosts_cache.mu);
    if (!hit) {
        nw_host_seen *v = NULL;
        size_t n = 0, dropped = 0;
        nw_err err = {{0}};
        if (nw_store_hosts(store, &v, &n, &dropped, &err) == NW_OK) {
            pthread_mutex_lock(&hosts_cache.mu);
            /* Keep the newest: a slower thread may have read an older gen. */
            if (!hosts_cache.valid || strcmp(hosts_cache.dir, dir) != 0 ||
                !have_gen || gen >= hosts_cache.gen) {
                free(hosts_cache.v);
                hosts_cache.v = v;
                hosts_cache.n = n;
                hosts_cache.dropped = dropped;
                hosts_cache.gen = gen;
                hosts_cache.valid = have_gen;
                snprintf(hosts_cache.dir, sizeof hosts_cache.dir, "%s", dir);
                v = NULL;
            }
            pthread_mutex_unlock(&hosts_cache.mu);
            free(v);
        }
    }
    pthread_mutex_lock(&hosts_cache.mu);
    nw_buf_adds(b, ",\"hosts\":[");
    size_t n = strcmp(hosts_cache.dir, dir) == 0 ? hosts_cache.n : 0;
    for (size_t i = 0; i < n; i++) {
        const nw_host_seen *h = &hosts_cache.v[i];
        char ts[NW_TIME_STRLEN];
        nw_buf_adds(b, i ? ",{\"host\":" : "{\"host\":");
        nw_buf_add_json_str(b, h->host, strlen(h->host));
        if (nw_time_format(h->last_event, ts, sizeof ts))
            nw_buf_addf(b, ",\"last_event\":\"%s\"}", ts);
        else
            nw_buf_adds(b, ",\"last_event\":null}");
    }
    nw_buf_addf(b, "],\"hosts_omitted\":%zu", n ? hosts_cache.dropped : (size_t)0);
    pthread_mutex_unlock(&hosts_cache.mu);
}

/* A copy of the cached hosts (health_hosts fills the cache): *n of them,
 * malloc'ed (free()), or NULL. */
static nw_host_seen *hosts_copy(const char *dir, size_t *n)
{
    nw_host_seen *v = NULL;
    *n = 0;
    pthread_mutex_lock(&hosts_cache.mu);
    if (hosts_cache.n && strcmp(hosts_cache.dir, dir) == 0 &&
        (v = malloc(hosts_cache.n * sizeof *v)) != NULL) {
        memcpy(v, hosts_cache.v, hosts_cache.n * sizeof *v);
        *n = hosts_cache.n;
    }
    pthread_mutex_unlock(&hosts_cache.mu);
    return v;
}

static const char *source_state_name(nw_api_source_state st)
{
    static const char *const names[] = {"starting", "running", "ended", "failed",
                                        "waiting"};
    return (unsigned)st < 5 ? names[st] : "failed";
}

/* The live sources' state into *n entries (caller frees; NULL if none).
 * Taken before ingest_counts: the ingest thread adds a batch to its own
 * counts before the source adds it to its, so read in this order a
 * source never shows events the ingest totals do not have yet. */
static nw_api_source *sources_snapshot(const nw_api_env *env, size_t *n)
{
    nw_api_source *v = NULL;
    *n = 0;
    if (env->sources && (v = calloc(NW_API_SOURCES_MAX, sizeof *v)) != NULL)
        *n = env->sources(env->sources_ctx, v, NW_API_SOURCES_MAX);
    if (*n > NW_API_SOURCES_MAX)
        *n = NW_API_SOURCES_MAX;
    return v;
}

/* Appends "sources":[...] of v[n]; adds a reason to rs for each one
 * stopped on an error. */
static void health_sources(const nw_api_source *v, size_t n, nw_buf *b, nw_buf *rs)
{
    nw_buf_adds(b, ",\"sources\":[");
    for (size_t i = 0; i < n; i++) {
        const nw_api_source *x = &v[i];
        nw_buf_addf(b, "%s{\"kind\":\"%s\",\"path\":", i ? "," : "", x->kind);
        nw_buf_add_json_str(b, x->path, strlen(x->path));
        nw_buf_addf(b,
                    ",\"state\":\"%s\",\"bytes_read\":%" PRIu64 ",\"accepted\":%" PRIu64
                    ",\"rejected\":%" PRIu64 ",\"failed_batches\":%" PRIu64
                    ",\"last_error\":",
                    source_state_name(x->state), x->bytes_read, x->accepted, x->rejected,
                    x->failed_batches);
        if (x->last_error[0])
            nw_buf_add_json_str(b, x->last_error, strlen(x->last_error));
        else
            nw_buf_adds(b, "null");
        nw_buf_adds(b, "}");
        if (x->state == NW_SRC_FAILED) {
            char why[NW_ERR_MAX + 400];
            snprintf(why, sizeof why, "source %s %s failed: %s", x->kind, x->path,
                     x->last_error[0] ? x->last_error : "stopped");
            nw_buf_adds(rs, rs->len ? "," : "");
            nw_buf_add_json_str(rs, why, strlen(why));
        }
    }
    nw_buf_adds(b, "]");
}

/* Cheap by design (dashboards poll it): the catalog, the directory's
 * sizes, in-memory counters, and the hosts cached by generation.  Its tag
 * is a hash of the body, which is exact. */
static void route_health(const nw_api_env *env, nw_store *store, const nw_api_req *req,
                         nw_api_resp *resp)
{
    if (check_args(req, p_none, resp))
        return;
    nw_partition_info *parts = NULL;
    size_t n = 0;
    nw_err err = {{0}};
    uint64_t gen = 0;
    int have_gen = nw_store_generation(store, &gen, &err) == NW_OK;
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
    size_t nsrc = 0;
    nw_api_source *srcs = sources_snapshot(env, &nsrc);
    nw_api_ingest_stats is;
    ingest_counts(env, &is);
    resp_reset(resp, 200, CT_JSON);
    /* The body is built after the status word, which depends on the
     * sources: build the tail first. */
    nw_buf tail;
    nw_buf_init(&tail, NW_API_BODY_MAX);
    nw_buf *b = &tail;
    nw_buf_adds(b, ",\"store\":");
    nw_buf_add_json_str(b, env->store_dir, strlen(env->store_dir));
    nw_buf_addf(b,
                ",\"partitioning\":\"%s\",\"partitions\":%zu,\"connections\":%" PRIu64
                ",\"store_bytes\":%" PRIu64 ",\"generation\":%" PRIu64 ",\"newest_event\":",
                nw_partitioning_name(nw_store_partitioning(store)), n, conns,
                nw_store_bytes(store), gen);
    char ts[NW_TIME_STRLEN];
    if (newest != NW_TIME_MIN && nw_time_format(newest, ts, sizeof ts))
        nw_buf_addf(b, "\"%s\"", ts);
    else
        nw_buf_adds(b, "null");
    health_hosts(store, env->store_dir, gen, have_gen, b);
    nw_buf_addf(b,
                ",\"ingest\":{\"enabled\":%s,\"batches\":%" PRIu64 ",\"accepted\":%" PRIu64
                ",\"rejected\":%" PRIu64 ",\"failed_batches\":%" PRIu64
                ",\"rejected_by_reason\":{",
                env->ingest ? "true" : "false", is.batches, is.accepted, is.rejected,
                is.failed_batches);
    int first = 1;
    for (int i = 1; i < NW_REJ__COUNT; i++)
        if (is.rejected_by[i]) {
            nw_buf_addf(b, "%s\"%s\":%" PRIu64, first ? "" : ",",
                        nw_reject_name((nw_reject)i), is.rejected_by[i]);
            first = 0;
        }
    nw_buf_adds(b, "}");
    /* Why the answer is 503 (JSON strings, comma-separated). */
    nw_buf rs;
    nw_buf_init(&rs, 1024 * 1024);
    if (env->ingest) {
        nw_buf_addf(b, ",\"up\":%s,\"error\":", is.up ? "true" : "false");
        if (is.error[0])
            nw_buf_add_json_str(b, is.error, strlen(is.error));
        else
            nw_buf_adds(b, "null");
        nw_buf_addf(b,
                    ",\"errors\":%" PRIu64 ",\"stalled_seconds\":%.0f,\"queue_bytes\":%" PRIu64
                    ",\"queue_limit\":%" PRIu64 ",\"overloaded\":%" PRIu64
                    ",\"retention_runs\":%" PRIu64 ",\"partitions_dropped\":%" PRIu64,
                    is.errors, is.stalled_s, is.queue_bytes, is.queue_limit, is.overloaded,
                    is.retention_runs, is.partitions_dropped);
        char why[NW_ERR_MAX + 64];
        if (!is.up) {
            snprintf(why, sizeof why, "ingest is off: %s", is.error);
            nw_buf_add_json_str(&rs, why, strlen(why));
        }
        if (is.stalled_s > 0) {
            snprintf(why, sizeof why, "ingest is stalled: one batch has run for %.0f s",
                     is.stalled_s);
            nw_buf_adds(&rs, rs.len ? "," : "");
            nw_buf_add_json_str(&rs, why, strlen(why));
        }
    }
    nw_buf_adds(b, "}");
    health_sources(srcs, nsrc, b, &rs);
    free(srcs);
    if (env->stale_after_s > 0) {
        size_t nh = 0;
        nw_host_seen *hv = hosts_copy(env->store_dir, &nh);
        nw_time limit = nw_time_now() - (nw_time)env->stale_after_s * NW_TICKS_PER_SEC;
        for (size_t i = 0; i < nh; i++)
            if (hv[i].last_event < limit) {
                char why[NW_HOST_MAX + 160], when[NW_TIME_STRLEN] = "never";
                nw_time_format(hv[i].last_event, when, sizeof when);
                snprintf(why, sizeof why, "host %s is stale: its last event is at %s, more "
                         "than %" PRId64 " s ago", hv[i].host, when, env->stale_after_s);
                nw_buf_adds(&rs, rs.len ? "," : "");
                nw_buf_add_json_str(&rs, why, strlen(why));
            }
        free(hv);
    }
    int unhealthy = rs.len > 0;
    nw_buf_adds(b, ",\"store_check\":");
    if (env->store_problem)
        nw_buf_add_json_str(b, env->store_problem, strlen(env->store_problem));
    else
        nw_buf_adds(b, "\"ok\"");
    nw_buf_adds(b, ",\"reasons\":[");
    if (rs.len)
        nw_buf_add(b, rs.data, rs.len);
    int rc = nw_buf_adds(b, "]}\n");
    nw_buf_free(&rs);
    if (unhealthy)
        resp->status = 503;
    nw_buf_addf(&resp->body, "{\"status\":\"%s\"",
                unhealthy ? "unhealthy" : env->store_problem ? "degraded" : "ok");
    rc |= nw_buf_add(&resp->body, tail.data, tail.len);
    nw_buf_free(&tail);
    if (rc) {
        nw_api_error(resp, 500, "internal", "answer too large", NULL);
        return;
    }
    /* A 503 carries no tag: a poller must never get "not modified" for
     * an unhealthy server. */
    if (!unhealthy)
        finish_etag(req, resp);
}

/* A Prometheus label value, quoted and escaped (\\, \", \n). */
static void metrics_label(nw_buf *b, const char *v)
{
    nw_buf_adds(b, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            nw_buf_addf(b, "\\%c", *p);
        else if (*p == '\n')
            nw_buf_adds(b, "\\n");
        else
            nw_buf_add(b, p, 1);
    }
    nw_buf_adds(b, "\"");
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
    size_t nsrc = 0;
    nw_api_source *v = sources_snapshot(env, &nsrc);
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
    if (env->ingest) {
        nw_buf_addf(b,
                    "# HELP netwhod_ingest_up 1 while ingest runs, 0 while it is off after a "
                    "store error or a full disk.\n# TYPE netwhod_ingest_up gauge\n"
                    "netwhod_ingest_up %d\n"
                    "# HELP netwhod_ingest_errors_total Batches failed by the store.\n"
                    "# TYPE netwhod_ingest_errors_total counter\n"
                    "netwhod_ingest_errors_total %" PRIu64 "\n"
                    "# HELP netwhod_ingest_stalled 1 while one batch has run too long.\n"
                    "# TYPE netwhod_ingest_stalled gauge\nnetwhod_ingest_stalled %d\n"
                    "# HELP netwhod_ingest_queue_bytes POST bodies held (read, queued or "
                    "being ingested).\n# TYPE netwhod_ingest_queue_bytes gauge\n"
                    "netwhod_ingest_queue_bytes %" PRIu64 "\n"
                    "# HELP netwhod_ingest_overloaded_total POSTs answered 503 because "
                    "ingest was behind.\n# TYPE netwhod_ingest_overloaded_total counter\n"
                    "netwhod_ingest_overloaded_total %" PRIu64 "\n"
                    "# HELP netwhod_retention_partitions_dropped_total Partitions dropped "
                    "by background retention.\n"
                    "# TYPE netwhod_retention_partitions_dropped_total counter\n"
                    "netwhod_retention_partitions_dropped_total %" PRIu64 "\n",
                    is.up, is.errors, is.stalled_s > 0, is.queue_bytes, is.overloaded,
                    is.partitions_dropped);
    }
    if (nsrc)
        nw_buf_adds(b, "# HELP netwhod_source_up 0 if a live source stopped on an error.\n"
                       "# TYPE netwhod_source_up gauge\n");
    for (size_t i = 0; i < nsrc; i++) {
        nw_buf_addf(b, "netwhod_source_up{kind=\"%s\",path=", v[i].kind);
        metrics_label(b, v[i].path);
        nw_buf_addf(b, "} %d\n", v[i].state != NW_SRC_FAILED);
    }
    free(v);
    /* The hosts /health cached (a /health poll refreshes them). */
    uint64_t gen = 0;
    if (nw_store_generation(store, &gen, &err) == NW_OK) {
        nw_buf scratch;
        nw_buf_init(&scratch, NW_API_BODY_MAX);
        health_hosts(store, env->store_dir, gen, 1, &scratch);
        nw_buf_free(&scratch);
    }
    size_t nh = 0;
    nw_host_seen *hv = hosts_copy(env->store_dir, &nh);
    if (nh)
        nw_buf_adds(b, "# HELP netwhod_host_last_event_seconds Time of a host's newest event "
                       "(Unix seconds).\n# TYPE netwhod_host_last_event_seconds gauge\n");
    for (size_t i = 0; i < nh; i++) {
        nw_buf_adds(b, "netwhod_host_last_event_seconds{host=");
        metrics_label(b, hv[i].host);
        nw_buf_addf(b, "} %.3f\n", (double)hv[i].last_event / (double)NW_TICKS_PER_SEC);
    }
    free(hv);
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

/* The media types a POST body may be declared as (or none at all, as
 * from a bare client): NDJSON or JSON under their usual names.  A form
 * (curl -d without -H) or anything else is refused (415): its bytes would
 * be read as events by accident. */
static int body_type_ok(const char *ct)
{
    static const char *const ok[] = {"application/x-ndjson", "application/ndjson",
                                     "application/jsonl", "application/json",
                                     "application/x-json-stream", NULL};
    if (!ct || !*ct)
        return 1;
    size_t n = strcspn(ct, "; \t");
    for (const char *const *p = ok; *p; p++)
        if (strlen(*p) == n && strncasecmp(ct, *p, n) == 0)
            return 1;
    return 0;
}

/* An Idempotency-Key: 1..NW_API_IDEM_KEY_MAX printable ASCII bytes without
 * space (an opaque token such as a UUID; stored and compared as is). */
static int idem_key_ok(const char *k)
{
    size_t n = 0;
    for (; k[n]; n++)
        if ((unsigned char)k[n] < 0x21 || (unsigned char)k[n] > 0x7e || n >= NW_API_IDEM_KEY_MAX)
            return 0;
    return n > 0;
}

static void route_events(const nw_api_env *env, const nw_api_req *req, nw_api_resp *resp)
{
    if (check_args(req, p_none, resp))
        return;
    if (!env->ingest) {
        nw_api_error(resp, 503, "ingest_disabled", "this server does not ingest", NULL);
        return;
    }
    if (!body_type_ok(req->content_type)) {
        nw_api_error(resp, 415, "unsupported_media_type",
                     "send events as application/x-ndjson or application/json", NULL);
        return;
    }
    if (req->idempotency_key && !idem_key_ok(req->idempotency_key)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the Idempotency-Key header must be 1 to %d printable ASCII characters "
                 "without spaces",
                 NW_API_IDEM_KEY_MAX);
        nw_api_error(resp, 400, "bad_idempotency_key", msg, "Idempotency-Key");
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
    env->ingest(env->ingest_ctx, req->body, req->body_len, req->idempotency_key, r);
    if (r->key_conflict) {
        nw_api_error(resp, 422, "idempotency_key_reused",
                     "this Idempotency-Key was committed with another body; "
                     "use a new key for new events",
                     "Idempotency-Key");
        free(r);
        return;
    }
    if (r->status != NW_OK && r->retry_after) {
        /* Ingest is off (a store error, a full disk) and retries by
         * itself: nothing of this body was kept; send it again later. */
        nw_api_error(resp, 503, "ingest_unavailable", r->message, NULL);
        resp->retry_after = r->retry_after;
        free(r);
        return;
    }
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
    if (r->duplicate)
        nw_buf_adds(&counts, ",\"duplicate\":true");
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

/* -------------------------------------------------------- sysmon export */

/* A boolean parameter: true/false/1/0.  0 or -1 (answered). */
static int get_bool(const nw_api_req *req, const char *name, int *out, nw_api_resp *resp)
{
    const char *v = arg(req, name);
    *out = 0;
    if (!v)
        return 0;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
    } else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0) {
        bad_param(resp, name, "%s: expected true or false", name);
        return -1;
    }
    return 0;
}

/* GET /api/v1/export/sysmon: matching connections as Sysmon Event ID 3
 * (xml, json, ndjson) or ECS (ecs), always streamed, oldest first, to the
 * end unless limited.  Processes come from nw_sysmon_process_for. */
static void route_export_sysmon(nw_store *store, const nw_api_req *req, nw_api_resp *resp)
{
    nw_query q;
    nw_query_init(&q);
    int64_t limit;
    int ossem, bulk;
    if (check_args(req, p_export_sysmon, resp) || apply_filters(req, &q, resp) ||
        get_limit(req, 1, INT64_MAX, &limit, resp) || get_bool(req, "ossem", &ossem, resp) ||
        get_bool(req, "bulk", &bulk, resp))
        return;
    const char *fv = arg(req, "format");
    int f = fv ? nw_sysmon_format_from_name(fv) : NW_SYSMON_XML;
    if (f < 0) {
        bad_param(resp, "format", "format: expected xml, json, ndjson or ecs");
        return;
    }
    nw_api_stream *s = stream_new(resp, SK_SYSMON, store);
    if (!s)
        return;
    s->sformat = (nw_sysmon_format)f;
    s->sopts.ossem = ossem;
    s->sopts.ecs_bulk = bulk;
    /* Execution: this server, and the thread that encodes the answer. */
    s->sopts.exporter_pid = (uint32_t)getpid();
#ifdef SYS_gettid
    s->sopts.exporter_tid = (uint32_t)syscall(SYS_gettid);
#endif
    stream_set_query(s, &q);
    s->remaining = limit > 0 ? limit : -1;
    start_stream(resp, s, req);
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
    } else if (has_prefix(path, "/api/v1/processes/", &rest)) {
        size_t len = strlen(rest);
        if (ends_with(rest, len, "/connections")) {
            route = NW_ROUTE_PROCESS_CONNECTIONS;
            seg = rest;
            seglen = len - strlen("/connections");
        }
    } else if (strcmp(path, "/api/v1/stats/top") == 0) {
        route = NW_ROUTE_TOP;
    } else if (strcmp(path, "/api/v1/stats/hourly") == 0) {
        route = NW_ROUTE_HOURLY;
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
    } else if (strcmp(path, "/api/v1/export/sysmon") == 0) {
        route = NW_ROUTE_EXPORT_SYSMON;
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
    /* Answers drawn from the store: 304 before any query when the client
     * holds the tag of this request at this generation (the same request
     * at the same generation had a 200 with exactly this tag, so its
     * answer is unchanged; errors never carry a tag). */
    if (route != NW_ROUTE_HEALTH && route != NW_ROUTE_METRICS) {
        generation_etag(env, store, route, req, resp->pre_etag);
        /* "*" matches any tag, even of a request that is an error: it is
         * judged after the route validated (finish_etag, start_stream). */
        if (resp->pre_etag[0] && req->if_none_match && !strchr(req->if_none_match, '*') &&
            nw_api_etag_matches(req->if_none_match, resp->pre_etag)) {
            resp_reset(resp, 304, NULL);
            memcpy(resp->etag, resp->pre_etag, sizeof resp->etag);
            return;
        }
    }
    uint64_t gen0 = 0;
    nw_err gerr = {{0}};
    int have_gen0 = nw_store_generation(store, &gen0, &gerr) == NW_OK;
    int tries = 0;
again:
    switch (route) {
    case NW_ROUTE_CONNECTIONS: route_connections(store, req, resp); break;
    case NW_ROUTE_CONNECTION: route_connection(store, req, seg, seglen, resp); break;
    case NW_ROUTE_TRANSFERS: route_transfers(store, req, seg, seglen, resp); break;
    case NW_ROUTE_PROCESSES: route_processes(store, req, seg, seglen, resp); break;
    case NW_ROUTE_PROCESS_CONNECTIONS:
        route_process_connections(store, req, seg, seglen, resp);
        break;
    case NW_ROUTE_TOP: route_top(store, req, resp); break;
    case NW_ROUTE_HOURLY: route_hourly(store, req, resp); break;
    case NW_ROUTE_FAILURES: route_failures(store, req, resp); break;
    case NW_ROUTE_HEALTH: route_health(env, store, req, resp); break;
    case NW_ROUTE_METRICS: route_metrics(env, store, req, resp); break;
    case NW_ROUTE_EXPORT_SYSMON: route_export_sysmon(store, req, resp); break;
    default: break;
    }
    /* Retention may drop a partition while the query reads it (the file
     * unlinked under a handle that was just opening it): if the store's
     * generation moved during a failed query, it is asked again, once,
     * against the catalog as it is now. */
    uint64_t gen1 = 0;
    if (resp->status == 500 && !resp->stream && tries++ == 0 && have_gen0 &&
        nw_store_generation(store, &gen1, &gerr) == NW_OK && gen1 != gen0) {
        nw_api_resp_free(resp);
        memset(resp, 0, sizeof *resp);
        nw_buf_init(&resp->body, NW_API_BODY_MAX);
        resp->route = route;
        gen0 = gen1;
        if (route != NW_ROUTE_HEALTH && route != NW_ROUTE_METRICS)
            generation_etag(env, store, route, req, resp->pre_etag);
        goto again;
    }
}

void nw_api_resp_free(nw_api_resp *resp)
{
    nw_buf_free(&resp->body);
    free(resp->stream);
    resp->stream = NULL;
}
