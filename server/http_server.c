/*
 * http_server.c -- libmicrohttpd in front of routes.h.
 *
 * One MHD daemon per listener (TCP, Unix socket), each given a socket we
 * bound ourselves (MHD_OPTION_LISTEN_SOCKET), so port 0 and AF_UNIX work
 * alike.  Thread per connection: queries block on SQLite, and with a small
 * polling pool one slow query stalled fast ones (issue 3's measurements).
 *
 * This file knows HTTP; routes.c knows the API.  Here: authentication,
 * request bodies with their size cap, headers (ETag, Allow, CORS, Vary),
 * content coding (gzip), turning an nw_api_resp into an MHD response (a
 * buffer, or a pull stream), one read-only store handle per connection
 * thread, and request metrics.
 *
 * gzip: a GET or HEAD whose Accept-Encoding allows gzip gets every 200
 * answer gzip-coded -- decided from the request alone, before the answer
 * exists, because the ETag (computed before the query) must name the
 * coding.  A body answer is compressed whole (it has a Content-Length); a
 * stream is compressed as it is pulled, in constant memory (chunked).
 */
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "netwhod.h"
#include "netwho/metrics.h"
#include "netwho/store.h"

struct nwd_listener {
    struct MHD_Daemon *daemon;
    const nwd_http_conf *conf;
    int needs_token;
};

/* -------------------------------------------------- per-thread store */

/* nw_store is not thread-safe: each connection thread opens its own,
 * read-only, on first use; the key's destructor closes it when MHD ends
 * the thread (at the latest when MHD_stop_daemon joins it). */
static pthread_key_t store_key;
static pthread_once_t store_once = PTHREAD_ONCE_INIT;

static void store_close_cb(void *p)
{
    nw_store_close(p);
}

static void store_key_init(void)
{
    pthread_key_create(&store_key, store_close_cb);
}

static nw_store *thread_store(const char *dir)
{
    pthread_once(&store_once, store_key_init);
    nw_store *s = pthread_getspecific(store_key);
    if (s && !nw_store_stale_readonly(s))
        return s;
    if (s) {
        /* Opened while the store was read-only, written since: its
         * immutable handles would not see the new rows. */
        pthread_setspecific(store_key, NULL);
        nw_store_close(s);
        s = NULL;
    }
    nw_store_opts so = {.partition = NW_PART_DEFAULT, .create = 0};
    nw_err err = {{0}};
    if (nw_store_open(dir, &so, &s, &err) != NW_OK) {
        nwd_log("cannot open the store for a request: %s", err.msg);
        return NULL;
    }
    pthread_setspecific(store_key, s);
    return s;
}

/* ------------------------------------------------------ request state */

typedef struct req_ctx {
    struct timespec start;
    nw_buf body;
    int too_large;               /* the body passed NWD_MAX_BODY         */
    int is_ingest;               /* POST /api/v1/events: admitted bytes  */
    uint64_t admitted;           /* counted by nwd_ingest_admit          */
    int refused;                 /* a body past the budget: 503 at end   */
    unsigned retry_after;
    char why[NW_ERR_MAX];
    int answered;                /* a response was queued early          */
    int status;
    nw_api_route route;
} req_ctx;

static double elapsed(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    nwd_listener *l = cls;
    req_ctx *r = *con_cls;
    if (!r)
        return;
    if (r->status)               /* 0: the client left before an answer */
        nw_metrics_observe(l->conf->env->metrics, (int)r->route, r->status, elapsed(&r->start));
    if (r->admitted)
        nwd_ingest_release(l->conf->ingest, r->admitted);
    nw_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

/* --------------------------------------------------------- responses */

typedef struct stream_ctx {
    nw_api_stream *stream;
    nw_buf buf;
    size_t off;
} stream_ctx;

/* Refills s->buf from the stream when it is used up.  1: data in buf,
 * 0: the stream ended, -1: it failed. */
static int stream_fill(stream_ctx *s)
{
    while (s->off == s->buf.len) {
        nw_buf_reset(&s->buf);
        s->off = 0;
        int rc = nw_api_stream_next(s->stream, &s->buf);
        if (rc < 0) {
            nwd_log("a streamed answer failed mid-way; connection aborted");
            return -1;
        }
        if (rc == 0 && s->buf.len == 0)
            return 0;
    }
    return 1;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    stream_ctx *s = cls;
    int rc = stream_fill(s);
    if (rc < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (rc == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->buf.len - s->off;
    if (n > max)
        n = max;
    memcpy(out, s->buf.data + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream_ctx *s = cls;
    nw_buf_free(&s->buf);
    free(s->stream);
    free(s);
}

/* A stream gzip-coded on the fly: the rows go through s->buf into zlib,
 * whose output goes straight into MHD's buffer. */
typedef struct gz_stream {
    stream_ctx s;
    z_stream z;
    int input_done, finished;
} gz_stream;

static int gz_init(z_stream *z)
{
    memset(z, 0, sizeof *z);
    /* windowBits 15 + 16: a gzip header and trailer around the deflate. */
    return deflateInit2(z, NWD_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

static ssize_t gz_stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    gz_stream *g = cls;
    if (g->finished)
        return MHD_CONTENT_READER_END_OF_STREAM;
    g->z.next_out = (Bytef *)out;
    g->z.avail_out = (uInt)(max > (1u << 30) ? (1u << 30) : max);
    while (g->z.avail_out > 0) {
        if (g->z.avail_in == 0 && !g->input_done) {
            g->s.off = g->s.buf.len;            /* what zlib took is used */
            int rc = stream_fill(&g->s);
            if (rc < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            if (rc == 0) {
                g->input_done = 1;
            } else {
                g->z.next_in = (Bytef *)g->s.buf.data + g->s.off;
                g->z.avail_in = (uInt)(g->s.buf.len - g->s.off);
            }
        }
        int zr = deflate(&g->z, g->input_done ? Z_FINISH : Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            g->finished = 1;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            nwd_log("gzip failed mid-way (%d); connection aborted", zr);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        /* Z_BUF_ERROR: no progress possible -- only when both sides are
         * full/empty, which the loop conditions rule out except at the end
         * of output space. */
        if (zr == Z_BUF_ERROR && g->z.avail_out > 0 && g->z.avail_in > 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = max - g->z.avail_out;
    if (n == 0)
        return g->finished ? MHD_CONTENT_READER_END_OF_STREAM
                           : MHD_CONTENT_READER_END_WITH_ERROR;
    return (ssize_t)n;
}

static void gz_stream_free(void *cls)
{
    gz_stream *g = cls;
    deflateEnd(&g->z);
    nw_buf_free(&g->s.buf);
    free(g->s.stream);
    free(g);
}

/* The whole body gzip-coded into a new malloc'd buffer (*out, *outlen);
 * -1 if zlib fails (the caller then sends it as it is). */
static int gz_body(const char *data, size_t len, char **out, size_t *outlen)
{
    z_stream z;
    if (gz_init(&z) != Z_OK)
        return -1;
    uLong cap = deflateBound(&z, (uLong)len) + 32;
    char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

/* Whether an Accept-Encoding value admits gzip: a "gzip", "x-gzip" or "*"
 * element whose q is not 0 (RFC 9110 12.5.3). */
static int accepts_gzip(const char *v)
{
    if (!v)
        return 0;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tl = (size_t)(p - tok);
        double q = 1.0;
        while (*p && *p != ',') {
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=')
                q = strtod(p + 2, NULL);
            p++;
        }
        int name = (tl == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
                   (tl == 6 && strncasecmp(tok, "x-gzip", 6) == 0) ||
                   (tl == 1 && tok[0] == '*');
        if (name && q > 0)
            return 1;
    }
    return 0;
}

/* The Access-Control-Allow-Origin value for this request, or NULL: "*"
 * if any origin is allowed, else the request's Origin if it is listed. */
static const char *cors_allow(const nwd_listener *l, struct MHD_Connection *c)
{
    const nwd_http_conf *conf = l->conf;
    if (!conf->ncors)
        return NULL;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    for (int i = 0; i < conf->ncors; i++) {
        if (strcmp(conf->cors_origins[i], "*") == 0)
            return "*";
        if (origin && strcmp(conf->cors_origins[i], origin) == 0)
            return origin;
    }
    return NULL;
}

static void add_common_headers(const nwd_listener *l, struct MHD_Connection *c,
                               struct MHD_Response *mr, const nw_api_resp *resp, int gz)
{
    if (resp->content_type && resp->status != 304 && resp->status != 204)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    if (resp->etag[0]) {
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ETAG, resp->etag);
        /* Dashboards poll: always revalidate, which the ETag makes cheap. */
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    }
    if (resp->allow)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, resp->allow);
    if (resp->status == 401)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (resp->status == 503) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", resp->retry_after ? resp->retry_after : 1u);
        MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (gz)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    /* Every answer may differ by Accept-Encoding (a 200 is gzip-coded on
     * request, and a 304's tag names the coding), and by Origin when only
     * listed origins are allowed. */
    int by_origin = l->conf->ncors && !(l->conf->ncors == 1 &&
                                        strcmp(l->conf->cors_origins[0], "*") == 0);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_VARY,
                            by_origin ? "Accept-Encoding, Origin" : "Accept-Encoding");
    const char *origin = cors_allow(l, c);
    if (origin) {
        MHD_add_response_header(mr, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(mr, "Access-Control-Expose-Headers", "ETag, Content-Encoding");
        if (resp->status == 204 && resp->allow) {
            MHD_add_response_header(mr, "Access-Control-Allow-Methods", resp->allow);
            MHD_add_response_header(mr, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, If-None-Match, Idempotency-Key");
            MHD_add_response_header(mr, "Access-Control-Max-Age", "600");
        }
    }
}

/* Sends resp (and takes what it owns); gzip: code a 200 answer. */
static enum MHD_Result send_resp(nwd_listener *l, struct MHD_Connection *c, req_ctx *r,
                                 nw_api_resp *resp, int gzip)
{
    struct MHD_Response *mr;
    int gz = 0;
    if (gzip && resp->status == 200 && resp->stream) {
        gz_stream *g = calloc(1, sizeof *g);
        if (!g || gz_init(&g->z) != Z_OK) {
            free(g);
            nw_api_resp_free(resp);
            return MHD_NO;
        }
        g->s.stream = resp->stream;
        resp->stream = NULL;
        nw_buf_init(&g->s.buf, NW_API_STREAM_BUF_MAX);
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, NWD_STREAM_BLOCK,
                                               gz_stream_read, g, gz_stream_free);
        if (!mr) {
            gz_stream_free(g);
            nw_api_resp_free(resp);
            return MHD_NO;
        }
        gz = 1;
    } else if (gzip && resp->status == 200 && resp->body.len > 0) {
        char *zbuf = NULL;
        size_t zlen = 0;
        if (gz_body(resp->body.data, resp->body.len, &zbuf, &zlen) != 0) {
            nw_api_resp_free(resp);
            return MHD_NO;
        }
        mr = MHD_create_response_from_buffer(zlen, zbuf, MHD_RESPMEM_MUST_FREE);
        if (!mr)
            free(zbuf);
        gz = 1;
    } else if (resp->stream && resp->status == 200) {
        stream_ctx *s = calloc(1, sizeof *s);
        if (!s) {
            nw_api_resp_free(resp);
            return MHD_NO;
        }
        s->stream = resp->stream;
        resp->stream = NULL;
        nw_buf_init(&s->buf, NW_API_STREAM_BUF_MAX);
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, NWD_STREAM_BLOCK, stream_read,
                                               s, stream_free);
        if (!mr) {
            stream_free(s);
            nw_api_resp_free(resp);
            return MHD_NO;
        }
    } else if (resp->body.len > 0) {
        /* MHD frees the body (malloc'd by nw_buf) when it is sent. */
        mr = MHD_create_response_from_buffer(resp->body.len, resp->body.data,
                                             MHD_RESPMEM_MUST_FREE);
        if (mr)
            resp->body.data = NULL, resp->body.len = resp->body.cap = 0;
    } else {
        mr = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) {
        nw_api_resp_free(resp);
        return MHD_NO;
    }
    add_common_headers(l, c, mr, resp, gz);
    r->status = resp->status;
    r->route = resp->route;
    /* A 503 of /health (polled) or of a POST (backpressure, ingest off:
     * logged once by ingest) would repeat a line per request: metrics
     * count them. */
    if (resp->status >= 500 &&
        !(resp->status == 503 &&
          (resp->route == NW_ROUTE_HEALTH || resp->route == NW_ROUTE_EVENTS)))
        nwd_log("%d on %s", resp->status, nw_api_route_name(resp->route));
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    nw_api_resp_free(resp);
    return ret;
}

static enum MHD_Result send_error_param(nwd_listener *l, struct MHD_Connection *c,
                                        req_ctx *r, int status, const char *code,
                                        const char *msg, const char *param)
{
    nw_api_resp resp;
    memset(&resp, 0, sizeof resp);
    nw_buf_init(&resp.body, NW_API_BODY_MAX);
    nw_api_error(&resp, status, code, msg, param);
    r->answered = 1;
    return send_resp(l, c, r, &resp, 0);
}

static enum MHD_Result send_error(nwd_listener *l, struct MHD_Connection *c, req_ctx *r,
                                  int status, const char *code, const char *msg)
{
    return send_error_param(l, c, r, status, code, msg, NULL);
}

/* 503 for a POST that ingest cannot take now (rc of nwd_ingest_admit). */
static enum MHD_Result send_unavailable(nwd_listener *l, struct MHD_Connection *c,
                                        req_ctx *r, int rc)
{
    nw_api_resp resp;
    memset(&resp, 0, sizeof resp);
    nw_buf_init(&resp.body, NW_API_BODY_MAX);
    nw_api_error(&resp, 503, rc == 2 ? "ingest_unavailable" : "overloaded", r->why, NULL);
    resp.retry_after = r->retry_after;
    resp.route = NW_ROUTE_EVENTS;
    r->answered = 1;
    return send_resp(l, c, r, &resp, 0);
}

/* --------------------------------------------------------- auth, args */

/* Compares every byte whatever the first difference, so the time taken
 * tells nothing about how much of a guess was right. */
static int token_ok(const char *header, const char *token)
{
    static const char prefix[] = "Bearer ";
    if (!header || strncmp(header, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *got = header + sizeof prefix - 1;
    size_t glen = strlen(got), tlen = strlen(token);
    unsigned diff = (unsigned)(glen != tlen);
    for (size_t i = 0; i < tlen; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < glen ? got[i] : 0);
    return diff == 0;
}

typedef struct args_acc {
    nw_api_arg args[NW_API_MAX_ARGS];
    size_t n;                    /* counts past NW_API_MAX_ARGS too */
    const char *nul_name;        /* a parameter whose name or value holds a
                                    NUL (%00): C strings would cut it short */
} args_acc;

/* A decoded NUL byte (%00) would silently cut a C string short -- "port=
 * 1%00x" read as port=1, "/connections/1%00x" as connection 1 -- so the
 * unescaper notes it, and the request is refused (400).  MHD unescapes the
 * path and the arguments while it parses the request, on the connection's
 * own thread (thread per connection), just before the first handler call,
 * which reads and clears the note. */
static _Thread_local int tls_nul_decoded;

static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
    size_t n = MHD_http_unescape(s);
    if (memchr(s, '\0', n))
        tls_nul_decoded = 1;
    return n;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    args_acc *a = cls;
    if ((key && strlen(key) != key_size) || (value && strlen(value) != value_size)) {
        if (!a->nul_name)
            a->nul_name = key ? key : "";
    }
    if (a->n < NW_API_MAX_ARGS) {
        a->args[a->n].name = key ? key : "";
        a->args[a->n].value = value ? value : "";
    }
    a->n++;
    /* Stop early: the count only needs to say "too many". */
    return a->n > NW_API_MAX_ARGS ? MHD_NO : MHD_YES;
}

/* ------------------------------------------------------------ handler */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    nwd_listener *l = cls;
    req_ctx *r = *con_cls;
    if (!r) {
        /* First call: headers only.  Refuse what must not be read. */
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &r->start);
        nw_buf_init(&r->body, NWD_MAX_BODY);
        *con_cls = r;
        int nul = tls_nul_decoded;
        tls_nul_decoded = 0;
        int preflight = strcmp(method, "OPTIONS") == 0 && l->conf->ncors;
        if (l->needs_token && !preflight &&
            !token_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_AUTHORIZATION),
                      l->conf->token))
            return send_error(l, c, r, 401, "unauthorized",
                              "send Authorization: Bearer <token>");
        if (nul) {
            args_acc acc;
            memset(&acc, 0, sizeof acc);
            MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, collect_arg, &acc);
            if (acc.nul_name)
                return send_error_param(l, c, r, 400, "bad_parameter",
                                        "a NUL byte (%00) in a parameter's name or value",
                                        acc.nul_name);
            return send_error(l, c, r, 400, "bad_path", "a NUL byte (%00) in the path");
        }
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (v > NWD_MAX_BODY) {
                char msg[96];
                snprintf(msg, sizeof msg, "the body may be at most %d bytes", NWD_MAX_BODY);
                return send_error(l, c, r, 413, "body_too_large", msg);
            }
        }
        /* Backpressure: a POST of events is admitted against the ingest
         * budget before its body is read (netwhod.h); a body without a
         * Content-Length is admitted as it arrives. */
        if (l->conf->ingest && strcmp(method, "POST") == 0 &&
            strcmp(url, "/api/v1/events") == 0) {
            r->is_ingest = 1;
            uint64_t want = cl ? strtoull(cl, NULL, 10) : 0;
            int rc = nwd_ingest_admit(l->conf->ingest, want, 0, r->why, sizeof r->why,
                                      &r->retry_after);
            if (rc)
                return send_unavailable(l, c, r, rc);
            r->admitted = want;
        }
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0;   /* an early answer is queued: discard */
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* A body without a (truthful) Content-Length: stop keeping it at
         * the cap, read the rest away, and answer 413 at the end. */
        if (r->is_ingest && !r->refused && r->body.len + *upload_data_size > r->admitted) {
            uint64_t more = r->body.len + *upload_data_size - r->admitted;
            if (nwd_ingest_admit(l->conf->ingest, more, 1, r->why, sizeof r->why,
                                 &r->retry_after) == 0)
                r->admitted += more;
            else
                r->refused = 1, nw_buf_free(&r->body);
        }
        if (!r->too_large && !r->refused &&
            nw_buf_add(&r->body, upload_data, *upload_data_size))
            r->too_large = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->refused)
        return send_unavailable(l, c, r, strncmp(r->why, "ingest is off", 13) == 0 ? 2 : 1);
    if (r->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body may be at most %d bytes", NWD_MAX_BODY);
        return send_error(l, c, r, 413, "body_too_large", msg);
    }

    args_acc acc;
    memset(&acc, 0, sizeof acc);
    MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, collect_arg, &acc);
    nw_api_req req = {
        .method = method,
        .path = url,
        .args = acc.args,
        .nargs = acc.n,
        .accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT),
        .if_none_match =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH),
        .content_type =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .idempotency_key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key"),
        .body = r->body.data ? r->body.data : "",
        .body_len = r->body.len,
        .gzip = (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
                accepts_gzip(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_ACCEPT_ENCODING)),
    };
    nw_api_resp resp;
    nw_api_handle(l->conf->env, thread_store(l->conf->store_dir), &req, &resp);
    r->answered = 1;
    return send_resp(l, c, r, &resp, req.gzip);
}

/* ---------------------------------------------------------- lifecycle */

nwd_listener *nwd_http_start(int fd, int needs_token, const nwd_http_conf *conf)
{
    nwd_listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->conf = conf;
    l->needs_token = needs_token;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    l->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, l, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)NWD_CONNECTION_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)NWD_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)NWD_CONNECTION_MEMORY,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_END);
    if (!l->daemon) {
        nwd_log("libmicrohttpd refused to start on socket %d", fd);
        free(l);
        return NULL;
    }
    return l;
}

void nwd_http_stop(nwd_listener *l)
{
    if (!l)
        return;
    MHD_stop_daemon(l->daemon);
    free(l);
}
