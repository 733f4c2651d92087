/*
 * test_routes.c -- routes.h without a socket, over a real store: the
 * store generation moves with every commit that changes rows (and only
 * then), ETags derive from it and the normalized request, a current
 * If-None-Match is answered before any query, /health lists hosts and
 * sources, hostile parameter values and body types are refused by name.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netwho/procevent.h"
#include "netwho/routes.h"
#include "netwho/store.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"

#include "tests/unit/store/store_fixture.h"

#define SEC NW_TICKS_PER_SEC
#define T0 (1773619200LL * SEC)     /* 2026-03-16T00:00:00Z */

static char g_dir[64];
static nw_store *g_s;               /* the routes' read handle */

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/nw-routes-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    nw_err err = {{0}};
    nw_store_opts o = {NW_PART_DEFAULT, 1};
    ck_assert_msg(nw_store_open(g_dir, &o, &g_s, &err) == NW_OK, "%s", err.msg);
}

static void teardown(void)
{
    nw_store_close(g_s);
    rm_rf(g_dir);
}

/* Writes n connections of host, the last seen at last, in one writer
 * session of its own store handle (as another process would). */
static void write_conns(const char *host, int n, nw_time last)
{
    nw_err err = {{0}};
    nw_store *s;
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    ck_assert_msg(nw_store_open(g_dir, &o, &s, &err) == NW_OK, "%s", err.msg);
    nw_writer *w;
    ck_assert_msg(nw_writer_open(s, &w, &err) == NW_OK, "%s", err.msg);
    nw_sink sink;
    nw_writer_sink(w, &sink);
    int64_t id = n ? sink.reserve_ids(sink.ctx, n) : 1;
    ck_assert_int_gt(id, 0);
    for (int i = 0; i < n; i++) {
        nw_conn c;
        memset(&c, 0, sizeof c);
        c.id = id + i;
        c.host = host;
        c.pid = 4 + (uint32_t)i;
        c.proto = NW_PROTO_TCP;
        c.ip_version = 4;
        c.direction = NW_DIR_OUTBOUND;
        c.state = NW_STATE_CLOSED;
        nw_addr_parse("10.0.0.1", 8, 4, &c.local_ip, NULL);
        nw_addr_parse("10.0.0.2", 8, 4, &c.remote_ip, NULL);
        c.local_port = (uint16_t)(50000 + i);
        c.remote_port = 443;
        c.first_seen = c.anchor = last - 10 * SEC;
        c.last_seen = last - (nw_time)i * SEC;
        ck_assert(sink.conn(sink.ctx, &c) == NW_OK);
    }
    ck_assert_msg(nw_writer_close(w, &err) == NW_OK, "%s", err.msg);
    nw_store_close(s);
}

/* Writes the process pid of host, created at create, running since. */
static void write_process(const char *host, uint32_t pid, nw_time create, const char *image)
{
    nw_err err = {{0}};
    nw_store *s;
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    ck_assert_msg(nw_store_open(g_dir, &o, &s, &err) == NW_OK, "%s", err.msg);
    nw_writer *w;
    ck_assert_msg(nw_writer_open(s, &w, &err) == NW_OK, "%s", err.msg);
    nw_proc_event *pe = calloc(1, sizeof *pe);
    ck_assert_ptr_nonnull(pe);
    pe->source = NW_PSRC_KP_START;
    pe->time = create;
    pe->create_prec = NW_PREC_EXACT;
    snprintf(pe->host, sizeof pe->host, "%s", host);
    snprintf(pe->image, sizeof pe->image, "%s", image);
    pe->p.host = pe->host;
    pe->p.image = pe->image;
    pe->p.pid = pid;
    pe->p.create_time = create;
    pe->p.exit_time = NW_TIME_MAX;
    ck_assert_msg(nw_writer_process(w, pe, &err) == NW_OK, "%s", err.msg);
    free(pe);
    ck_assert_msg(nw_writer_close(w, &err) == NW_OK, "%s", err.msg);
    nw_store_close(s);
}

static uint64_t generation(void)
{
    uint64_t g = 99;
    nw_err err = {{0}};
    ck_assert_msg(nw_store_generation(g_s, &g, &err) == NW_OK, "%s", err.msg);
    return g;
}

/* One GET through the routes; the answer in *r (caller frees). */
static void get(const nw_api_env *env, const char *path, const nw_api_arg *args, size_t n,
                const char *inm, int gzip, nw_api_resp *r)
{
    nw_api_req q = {.method = "GET", .path = path, .args = args, .nargs = n,
                    .if_none_match = inm, .gzip = gzip};
    nw_api_handle(env, g_s, &q, r);
}

static nw_api_env env0(void)
{
    nw_api_env e;
    memset(&e, 0, sizeof e);
    e.store_dir = g_dir;
    e.instance = 42;
    return e;
}

START_TEST(generation_moves_with_commits_only)
{
    ck_assert_uint_eq(generation(), 0);
    write_conns("WS01", 3, T0 + 100 * SEC);
    uint64_t g1 = generation();
    ck_assert_uint_ge(g1, 1);
    /* A writer session that changes nothing leaves it. */
    write_conns("WS01", 0, T0);
    ck_assert_uint_eq(generation(), g1);
    write_conns("WS02", 1, T0 + 200 * SEC);
    ck_assert_uint_gt(generation(), g1);
}
END_TEST

START_TEST(etag_is_generation_and_normalized_request)
{
    write_conns("WS01", 3, T0 + 100 * SEC);
    nw_api_env env = env0();
    nw_api_arg ab[] = {{"limit", "2"}, {"proto", "tcp"}};
    nw_api_arg ba[] = {{"proto", "tcp"}, {"limit", "2"}};
    nw_api_resp r1, r2, r3, r4;
    get(&env, "/api/v1/connections", ab, 2, NULL, 0, &r1);
    get(&env, "/api/v1/connections", ba, 2, NULL, 0, &r2);
    get(&env, "/api/v1/connections", ab, 2, NULL, 1, &r3);
    ck_assert_int_eq(r1.status, 200);
    ck_assert(r1.etag[0] == '"' && strlen(r1.etag) == 18);
    ck_assert_str_eq(r1.etag, r2.etag);          /* order does not matter */
    ck_assert_str_ne(r1.etag, r3.etag);          /* the coding does       */
    env.instance = 43;                           /* another process       */
    get(&env, "/api/v1/connections", ab, 2, NULL, 0, &r4);
    ck_assert_str_ne(r1.etag, r4.etag);
    env.instance = 42;
    nw_api_resp_free(&r2);
    nw_api_resp_free(&r3);
    nw_api_resp_free(&r4);
    /* A commit (by another handle, as by another process) stales it. */
    write_conns("WS02", 1, T0 + 200 * SEC);
    get(&env, "/api/v1/connections", ab, 2, r1.etag, 0, &r2);
    ck_assert_int_eq(r2.status, 200);
    ck_assert_str_ne(r2.etag, r1.etag);
    nw_api_resp_free(&r1);
    nw_api_resp_free(&r2);
}
END_TEST

START_TEST(not_modified_before_any_query)
{
    write_conns("WS01", 3, T0 + 100 * SEC);
    nw_api_env env = env0();
    nw_api_arg a[] = {{"limit", "2"}};
    nw_api_resp r;
    get(&env, "/api/v1/connections", a, 1, NULL, 0, &r);
    ck_assert_int_eq(r.status, 200);
    char tag[24];
    memcpy(tag, r.etag, sizeof tag);
    nw_api_resp_free(&r);
    /* Wreck the partition: a query can no longer run. */
    DIR *d = opendir(g_dir);
    struct dirent *de;
    int wrecked = 0;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "p-", 2) != 0)
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", g_dir, de->d_name);
        FILE *f = fopen(p, "r+b");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 500; i++)
            fputs("not a database ", f);
        fclose(f);
        wrecked++;
    }
    closedir(d);
    ck_assert_int_ge(wrecked, 1);
    /* A fresh read handle (a new request thread). */
    nw_store_close(g_s);
    nw_err err = {{0}};
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    ck_assert_msg(nw_store_open(g_dir, &o, &g_s, &err) == NW_OK, "%s", err.msg);
    get(&env, "/api/v1/connections", a, 1, tag, 0, &r);
    ck_assert_int_eq(r.status, 304);
    ck_assert_str_eq(r.etag, tag);
    ck_assert_uint_eq(r.body.len, 0);
    nw_api_resp_free(&r);
    /* Without the tag the query runs, and fails. */
    get(&env, "/api/v1/connections", a, 1, NULL, 0, &r);
    ck_assert_int_ge(r.status, 500);
    nw_api_resp_free(&r);
    /* "*" is judged only after validation: a bad request stays a 400. */
    nw_api_arg bad[] = {{"limit", "0"}};
    get(&env, "/api/v1/connections", bad, 1, "*", 0, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.etag, "");
    nw_api_resp_free(&r);
}
END_TEST

static size_t two_sources(void *ctx, nw_api_source *out, size_t max)
{
    ck_assert_uint_ge(max, 2);
    memset(out, 0, 2 * sizeof *out);
    out[0].kind = "fifo";
    snprintf(out[0].path, sizeof out[0].path, "/run/x.fifo");
    out[0].state = NW_SRC_RUNNING;
    out[0].accepted = 7;
    out[1].kind = "follow";
    snprintf(out[1].path, sizeof out[1].path, "/var/log/\"q\".ndjson");
    out[1].state = NW_SRC_FAILED;
    snprintf(out[1].last_error, sizeof out[1].last_error, "read: Is a directory");
    return 2;
}

START_TEST(health_hosts_sources_and_tag)
{
    write_conns("WS01", 3, T0 + 100 * SEC);
    write_conns("DC-1", 2, T0 + 300 * SEC);
    nw_api_env env = env0();
    nw_api_resp r;
    /* The first reading opens the partitions, which may add their -shm
     * files to store_bytes: the tag is of the body, so read once before. */
    get(&env, "/api/v1/health", NULL, 0, NULL, 0, &r);
    nw_api_resp_free(&r);
    get(&env, "/api/v1/health", NULL, 0, NULL, 0, &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "ok");
    cJSON *hosts = cJSON_GetObjectItem(j, "hosts");
    ck_assert_int_eq(cJSON_GetArraySize(hosts), 2);
    cJSON *h0 = cJSON_GetArrayItem(hosts, 0), *h1 = cJSON_GetArrayItem(hosts, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(h0, "host")->valuestring, "DC-1");
    ck_assert_str_eq(cJSON_GetObjectItem(h0, "last_event")->valuestring,
                     "2026-03-16T00:05:00.0000000Z");
    ck_assert_str_eq(cJSON_GetObjectItem(h1, "host")->valuestring, "WS01");
    ck_assert_str_eq(cJSON_GetObjectItem(h1, "last_event")->valuestring,
                     "2026-03-16T00:01:40.0000000Z");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "sources")), 0);
    cJSON_Delete(j);
    char tag[24];
    memcpy(tag, r.etag, sizeof tag);
    nw_api_resp_free(&r);
    get(&env, "/api/v1/health", NULL, 0, tag, 0, &r);
    ck_assert_int_eq(r.status, 304);
    nw_api_resp_free(&r);
    /* Sources: listed, a failed one makes it 503 "unhealthy" with the
     * reason, and the tag moves. */
    env.sources = two_sources;
    get(&env, "/api/v1/health", NULL, 0, tag, 0, &r);
    ck_assert_int_eq(r.status, 503);
    j = cJSON_ParseWithLength(r.body.data, r.body.len);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "unhealthy");
    cJSON *reasons = cJSON_GetObjectItem(j, "reasons");
    ck_assert_int_eq(cJSON_GetArraySize(reasons), 1);
    ck_assert_ptr_nonnull(strstr(cJSON_GetArrayItem(reasons, 0)->valuestring,
                                 "read: Is a directory"));
    cJSON *src = cJSON_GetObjectItem(j, "sources");
    ck_assert_int_eq(cJSON_GetArraySize(src), 2);
    cJSON *s0 = cJSON_GetArrayItem(src, 0), *s1 = cJSON_GetArrayItem(src, 1);
    ck_assert_str_eq(cJSON_GetObjectItem(s0, "state")->valuestring, "running");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(s0, "last_error")));
    ck_assert_int_eq(cJSON_GetObjectItem(s0, "accepted")->valueint, 7);
    ck_assert_str_eq(cJSON_GetObjectItem(s1, "path")->valuestring, "/var/log/\"q\".ndjson");
    ck_assert_str_eq(cJSON_GetObjectItem(s1, "state")->valuestring, "failed");
    ck_assert_str_eq(cJSON_GetObjectItem(s1, "last_error")->valuestring,
                     "read: Is a directory");
    cJSON_Delete(j);
    nw_api_resp_free(&r);
    /* A new host after a commit shows (the cache follows the generation). */
    write_conns("AAA", 1, T0 + 5 * SEC);
    get(&env, "/api/v1/health", NULL, 0, NULL, 0, &r);
    j = cJSON_ParseWithLength(r.body.data, r.body.len);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "hosts")), 3);
    cJSON_Delete(j);
    nw_api_resp_free(&r);
}
END_TEST

static void never_ingest(void *ctx, const char *body, size_t len, const char *key,
                         nw_api_ingest_result *out)
{
    ck_abort_msg("a refused body reached ingest");
}

START_TEST(hostile_values_and_body_types)
{
    nw_api_env env = env0();
    static const char *const values[] = {"a\r\nb", "\x1b[2J", "1\t2", "x\x7f"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        nw_api_arg a[] = {{"host", values[i]}};
        nw_api_resp r;
        get(&env, "/api/v1/connections", a, 1, NULL, 0, &r);
        ck_assert_int_eq(r.status, 400);
        cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
        ck_assert_str_eq(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "parameter")->valuestring,
            "host");
        cJSON_Delete(j);
        nw_api_resp_free(&r);
    }
    static const char *const types[] = {"application/x-www-form-urlencoded", "text/plain",
                                        "application/xml", "multipart/form-data; b=x"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        nw_api_req q = {.method = "POST", .path = "/api/v1/events", .content_type = types[i],
                        .body = "{}", .body_len = 2};
        nw_api_resp r;
        env.ingest = never_ingest;
        nw_api_handle(&env, g_s, &q, &r);
        ck_assert_int_eq(r.status, 415);
        nw_api_resp_free(&r);
    }
}
END_TEST

/* The flow filters narrow every list of connections, and are unknown
 * (400, named) where no connection is listed. */
START_TEST(flow_filters_where_connections_are_listed)
{
    write_conns("WS1", 3, T0 + 100 * SEC);      /* 10.0.0.1 -> 10.0.0.2 */
    nw_api_env env = env0();
    static const struct {
        const char *path, *name, *value;
        int status;
        int rows;                                /* -1: not a page */
    } cases[] = {
        {"/api/v1/connections", "scope", "private", 200, 3},
        {"/api/v1/connections", "scope", "public", 200, 0},
        {"/api/v1/connections", "exclude_loopback", "true", 200, 3},
        {"/api/v1/connections", "exclude_loopback", "false", 200, 3},
        {"/api/v1/connections", "community_id", "1:AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 200, 0},
        {"/api/v1/connections", "scope", "everywhere", 400, -1},
        {"/api/v1/connections", "exclude_loopback", "yes", 400, -1},
        {"/api/v1/connections", "community_id", "1:abc", 400, -1},
        {"/api/v1/export/sysmon", "community_id", "x", 400, -1},
        {"/api/v1/export/sysmon", "scope", "x", 400, -1},
        {"/api/v1/processes/4/connections", "scope", "x", 400, -1},
        {"/api/v1/ips/10.0.0.2/processes", "scope", "public", 400, -1},
        {"/api/v1/failures", "exclude_loopback", "true", 400, -1},
        {"/api/v1/stats/top", "community_id", "1:AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 400, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nw_api_arg a[] = {{cases[i].name, cases[i].value}, {"host", "WS1"},
                          {"at", "2026-03-16T00:01:00Z"}};
        int proc = strstr(cases[i].path, "/processes/") != NULL;
        nw_api_resp r;
        get(&env, cases[i].path, a, proc ? 3 : 1, NULL, 0, &r);
        ck_assert_msg(r.status == cases[i].status, "%s?%s=%s: %d", cases[i].path,
                      cases[i].name, cases[i].value, r.status);
        cJSON *j = cJSON_ParseWithLength(r.body.data, r.body.len);
        if (cases[i].status == 400) {
            cJSON *p = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "parameter");
            ck_assert_msg(cJSON_IsString(p) && strcmp(p->valuestring, cases[i].name) == 0,
                          "%s?%s=%s: %.*s", cases[i].path, cases[i].name, cases[i].value,
                          (int)r.body.len, r.body.data);
        } else {
            ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "data")), cases[i].rows);
        }
        cJSON_Delete(j);
        nw_api_resp_free(&r);
    }
}
END_TEST

/* A streamed answer is pulled after the handler has returned, when the
 * request's argument strings are gone (the HTTP server frees them with the
 * request): a stream keeps its own copies of the filters it still needs. */
START_TEST(streams_keep_their_own_filters)
{
    write_conns("WS1", 2, T0 + 100 * SEC);      /* pids 4 and 5 */
    write_process("WS1", 4, T0 - 100 * SEC, "C:\\Tools\\agent.exe");
    nw_api_env env = env0();
    static const char *const paths[] = {"/api/v1/connections", "/api/v1/export/sysmon"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char host[8], process[16];
        snprintf(host, sizeof host, "ws1");
        snprintf(process, sizeof process, "AGENT.exe");
        nw_api_arg a[] = {{"host", host}, {"process", process}, {"format", "ndjson"}};
        nw_api_resp r;
        get(&env, paths[i], a, 3, NULL, 0, &r);
        ck_assert_msg(r.status == 200 && r.stream, "%s: %d", paths[i], r.status);
        memset(host, 'x', sizeof host - 1);     /* the request is over */
        memset(process, 'x', sizeof process - 1);
        nw_buf out;
        nw_buf_init(&out, 1 << 20);
        int rc;
        while ((rc = nw_api_stream_next(r.stream, &out)) == 1)
            ;
        ck_assert_int_eq(rc, 0);
        size_t lines = 0;
        for (size_t k = 0; k < out.len; k++)
            lines += out.data[k] == '\n';
        ck_assert_msg(lines == 1 && strstr(out.data, "agent.exe"),  /* NUL-terminated */
                      "%s: %zu rows: %.*s", paths[i], lines, (int)out.len, out.data);
        nw_buf_free(&out);
        nw_api_resp_free(&r);
    }
}
END_TEST

static Suite *routes_suite(void)
{
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("routes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, generation_moves_with_commits_only);
    tcase_add_test(tc, etag_is_generation_and_normalized_request);
    tcase_add_test(tc, not_modified_before_any_query);
    tcase_add_test(tc, health_hosts_sources_and_tag);
    tcase_add_test(tc, hostile_values_and_body_types);
    tcase_add_test(tc, flow_filters_where_connections_are_listed);
    tcase_add_test(tc, streams_keep_their_own_filters);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nw_check_run(routes_suite());
}
