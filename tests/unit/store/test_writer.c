/*
 * test_writer.c -- the store writer: rows written through its nw_sink come
 * back exactly, rewrites replace, transfers add up, resume finds open rows,
 * ids never repeat, the lock excludes a second writer, dead letters are
 * valid JSON whatever bytes they carry.
 */
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"

#define DAY (86400LL * NW_TICKS_PER_SEC)
#define SEC NW_TICKS_PER_SEC

/* ------------------------------------------------------------- fixtures */

#define FX_DIR_TEMPLATE "/tmp/nw-writer-XXXXXX"
#define FX_PARTITIONING NW_PART_DEFAULT
#include "writer_fixture.h"

/* A plausible TCP connection; tests change what they look at. */
static nw_conn conn(int64_t id, nw_time first, nw_time last)
{
    return fx_conn(id, first, last);
}

/* Every field of two connections is the same. */
static void assert_conn_eq(const nw_conn *a, const nw_conn *b)
{
    ck_assert_int_eq(a->id, b->id);
    ck_assert_str_eq(a->host, b->host);
    ck_assert_uint_eq(a->pid, b->pid);
    ck_assert_uint_eq(a->proto, b->proto);
    ck_assert_uint_eq(a->ip_version, b->ip_version);
    ck_assert_uint_eq(a->direction, b->direction);
    ck_assert_uint_eq(a->state, b->state);
    ck_assert_mem_eq(a->local_ip.b, b->local_ip.b, 16);
    ck_assert_mem_eq(a->remote_ip.b, b->remote_ip.b, 16);
    ck_assert_uint_eq(a->local_port, b->local_port);
    ck_assert_uint_eq(a->remote_port, b->remote_port);
    ck_assert_int_eq(a->first_seen, b->first_seen);
    ck_assert_int_eq(a->last_seen, b->last_seen);
    ck_assert_int_eq(a->anchor, b->anchor);
    ck_assert_uint_eq(a->bytes_sent, b->bytes_sent);
    ck_assert_uint_eq(a->bytes_received, b->bytes_received);
    ck_assert_uint_eq(a->bytes_retransmitted, b->bytes_retransmitted);
    ck_assert_uint_eq(a->bytes_copied, b->bytes_copied);
    ck_assert_uint_eq(a->send_events, b->send_events);
    ck_assert_uint_eq(a->receive_events, b->receive_events);
    ck_assert_uint_eq(a->retransmit_events, b->retransmit_events);
    ck_assert_uint_eq(a->copy_events, b->copy_events);
    ck_assert_uint_eq(a->reconnects, b->reconnects);
    ck_assert_uint_eq(a->has_tcp_opts, b->has_tcp_opts);
    ck_assert_uint_eq(a->mss, b->mss);
    ck_assert_uint_eq(a->sackopt, b->sackopt);
    ck_assert_uint_eq(a->tsopt, b->tsopt);
    ck_assert_uint_eq(a->wsopt, b->wsopt);
    ck_assert_uint_eq(a->rcvwin, b->rcvwin);
    ck_assert_uint_eq(a->rcvwinscale, b->rcvwinscale);
    ck_assert_uint_eq(a->sndwinscale, b->sndwinscale);
}

static void get_conn(nw_store *s, int64_t id, nw_conn *out)
{
    nw_err err = {{0}};
    ck_assert_msg(nw_query_connection(s, id, out, &err) == NW_OK, "%s", err.msg);
}

/* Catalog row of the partition named name. */
static nw_partition_info part_info(const char *name)
{
    nw_partition_info *v = NULL, found;
    size_t n = 0;
    nw_err err = {{0}};
    ck_assert_msg(nw_store_partitions(g_s, &v, &n, &err) == NW_OK, "%s", err.msg);
    int hit = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) {
            found = v[i];
            hit = 1;
        }
    free(v);
    ck_assert_msg(hit, "no partition %s", name);
    return found;
}

/* --------------------------------------------------------------- tests */

START_TEST(test_roundtrip_every_field)
{
    nw_conn a = conn(1, g_day0 + 10 * SEC, g_day0 + 20 * SEC);
    a.host = "WS01.corp.example";
    a.state = NW_STATE_ESTABLISHED;
    /* Above INT64_MAX: must come back bit-exact. */
    a.bytes_sent = UINT64_MAX - 5;
    a.bytes_received = 123456789012ULL;
    a.bytes_retransmitted = 1460;
    a.bytes_copied = 77;
    a.send_events = 10;
    a.receive_events = 11;
    a.retransmit_events = 1;
    a.copy_events = 2;
    a.reconnects = 3;
    a.has_tcp_opts = 1;
    a.mss = 1460;
    a.sackopt = 1;
    a.tsopt = 0;      /* zero is a value, not NULL */
    a.wsopt = 8;
    a.rcvwin = 65535 * 4;
    a.rcvwinscale = 8;
    a.sndwinscale = 7;

    nw_conn b = conn(2, g_day0 + 30 * SEC, g_day0 + 31 * SEC);
    b.proto = NW_PROTO_UDP;
    b.ip_version = 6;
    b.direction = NW_DIR_INBOUND;
    b.local_ip = fx_addr("::1");
    b.remote_ip = fx_addr("2001:db8:85a3::8a2e:370:7334");
    b.local_port = 53;
    b.remote_port = 52668;
    b.pid = 2680;
    b.bytes_received = 42;
    b.receive_events = 1;
    b.anchor = g_day0 + 29 * SEC;   /* anchor is its own column */

    put(&a);
    put(&b);
    commit();

    nw_conn got;
    get_conn(g_s, 1, &got);
    assert_conn_eq(&got, &a);
    get_conn(g_s, 2, &got);
    assert_conn_eq(&got, &b);
    ck_assert_uint_eq(got.has_tcp_opts, 0);

    /* A second store handle (another reader) sees the same rows. */
    nw_store *r;
    r = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    get_conn(r, 1, &got);
    assert_conn_eq(&got, &a);
    nw_store_close(r);
}
END_TEST

START_TEST(test_rewrite_replaces)
{
    nw_conn c = conn(5, g_day0 + 100 * SEC, g_day0 + 101 * SEC);
    c.state = NW_STATE_ESTABLISHED;
    c.bytes_sent = 10;
    put(&c);
    /* Same id in the same batch: the last write wins. */
    c.state = NW_STATE_CLOSED;
    c.bytes_sent = 99;
    c.last_seen = g_day0 + 200 * SEC;
    c.has_tcp_opts = 1;
    c.mss = 1400;
    put(&c);
    commit();
    nw_conn got;
    get_conn(g_s, 5, &got);
    assert_conn_eq(&got, &c);

    /* Again after a commit and in a new writer session. */
    close_writer();
    open_writer();
    c.bytes_sent = 1000;
    c.has_tcp_opts = 0;
    c.mss = 0;
    c.last_seen = g_day0 + 300 * SEC;
    put(&c);
    close_writer();
    get_conn(g_s, 5, &got);
    assert_conn_eq(&got, &c);

    /* One row, counted once; bounds cover the last write. */
    nw_partition_info p = part_info("p-2026-03-16.db");
    ck_assert_uint_eq(p.connections, 1);
    ck_assert_int_eq(p.min_first_seen, g_day0 + 100 * SEC);
    ck_assert_int_eq(p.max_last_seen, g_day0 + 300 * SEC);
}
END_TEST

typedef struct xfers {
    nw_transfer v[16];
    int n;
} xfers;

static int collect_xfer(void *ctx, const nw_transfer *t)
{
    xfers *x = ctx;
    ck_assert_int_lt(x->n, 16);
    x->v[x->n++] = *t;
    return 0;
}

static void put_xfer(int64_t id, nw_time t, uint64_t sent, uint64_t recv, uint32_t ev)
{
    nw_transfer x = {id, t, sent, recv, 0, ev, ev, 0};
    ck_assert_msg(g_sink.transfer(g_sink.ctx, &x) == NW_OK, "%s",
                  nw_writer_last_error(g_w));
}

START_TEST(test_transfers_upsert_and_order)
{
    nw_conn c = conn(7, g_day0 + DAY - 5 * SEC, g_day0 + DAY + 5 * SEC);
    put(&c);
    /* Written out of time order, across two day partitions. */
    put_xfer(7, g_day0 + DAY + 2 * SEC, 300, 30, 3);
    put_xfer(7, g_day0 + DAY - 5 * SEC, 100, 10, 1);
    put_xfer(7, g_day0 + DAY - 4 * SEC, 200, 20, 2);
    put_xfer(8, g_day0 + DAY - 4 * SEC, 999, 999, 9);   /* another conn */
    commit();
    /* Late data for an existing bucket adds to it. */
    put_xfer(7, g_day0 + DAY - 5 * SEC, 1, 2, 1);
    commit();

    xfers x = {0};
    nw_err err = {{0}};
    ck_assert_msg(nw_query_transfers(g_s, 7, collect_xfer, &x, &err) == NW_OK, "%s",
                  err.msg);
    ck_assert_int_eq(x.n, 3);
    ck_assert_int_eq(x.v[0].time, g_day0 + DAY - 5 * SEC);
    ck_assert_uint_eq(x.v[0].bytes_sent, 101);
    ck_assert_uint_eq(x.v[0].bytes_received, 12);
    ck_assert_uint_eq(x.v[0].send_events, 2);
    ck_assert_int_eq(x.v[1].time, g_day0 + DAY - 4 * SEC);
    ck_assert_uint_eq(x.v[1].bytes_sent, 200);
    ck_assert_int_eq(x.v[2].time, g_day0 + DAY + 2 * SEC);
    ck_assert_uint_eq(x.v[2].bytes_sent, 300);
    ck_assert_int_eq(x.v[2].conn_id, 7);

    /* Exact counts: the added-to bucket is not a new row. */
    ck_assert_uint_eq(part_info("p-2026-03-16.db").transfers, 3);
    ck_assert_uint_eq(part_info("p-2026-03-17.db").transfers, 1);
    ck_assert_uint_eq(part_info("p-2026-03-17.db").connections, 0);

    x.n = 0;
    ck_assert(nw_query_transfers(g_s, 12345, collect_xfer, &x, &err) == NW_OK);
    ck_assert_int_eq(x.n, 0);
}
END_TEST

typedef struct fails {
    nw_time time[8];
    char host[8][32];
    uint16_t code[8];
    int n;
} fails;

static int collect_fail(void *ctx, const nw_failure *f)
{
    fails *x = ctx;
    ck_assert_int_lt(x->n, 8);
    x->time[x->n] = f->time;
    snprintf(x->host[x->n], sizeof x->host[0], "%s", f->host);
    x->code[x->n] = f->fail_code;
    x->n++;
    return 0;
}

START_TEST(test_failures)
{
    nw_failure f1 = {g_day0 + 5 * SEC, "WS01", 17, NW_PROTO_TCP, 2, 1225};
    nw_failure f2 = {g_day0 + DAY + 5 * SEC, "ws02", 49, NW_PROTO_UDP, 23, 10060};
    nw_failure f3 = {g_day0 + 1 * SEC, "WS02", 17, NW_PROTO_TCP, 2, 7};
    ck_assert(g_sink.failure(g_sink.ctx, &f1) == NW_OK);
    ck_assert(g_sink.failure(g_sink.ctx, &f2) == NW_OK);
    ck_assert(g_sink.failure(g_sink.ctx, &f3) == NW_OK);
    commit();

    fails x = {0};
    nw_err err = {{0}};
    ck_assert(nw_query_failures(g_s, NULL, NW_TIME_MIN, NW_TIME_MAX, collect_fail, &x,
                                &err) == NW_OK);
    ck_assert_int_eq(x.n, 3);
    ck_assert_int_eq(x.time[0], f3.time);
    ck_assert_int_eq(x.time[1], f1.time);
    ck_assert_int_eq(x.time[2], f2.time);
    ck_assert_uint_eq(x.code[2], 10060);

    memset(&x, 0, sizeof x);
    ck_assert(nw_query_failures(g_s, "WS02", NW_TIME_MIN, NW_TIME_MAX, collect_fail, &x,
                                &err) == NW_OK);
    ck_assert_int_eq(x.n, 2);        /* host matches case-insensitively */
    ck_assert_str_eq(x.host[0], "WS02");
    ck_assert_str_eq(x.host[1], "ws02");

    memset(&x, 0, sizeof x);
    ck_assert(nw_query_failures(g_s, NULL, g_day0 + 2 * SEC, g_day0 + DAY + 5 * SEC,
                                collect_fail, &x, &err) == NW_OK);
    ck_assert_int_eq(x.n, 1);        /* [from, to): f2 is at to */
    ck_assert_int_eq(x.time[0], f1.time);
    ck_assert_uint_eq(part_info("p-2026-03-17.db").failures, 1);
}
END_TEST

START_TEST(test_resume)
{
    nw_conn open1 = conn(10, g_day0 + 10 * SEC, g_day0 + 50 * SEC);
    open1.state = NW_STATE_ESTABLISHED;
    open1.bytes_sent = 500;
    nw_conn closed = conn(11, g_day0 + 10 * SEC, g_day0 + 60 * SEC);
    closed.remote_port = 443;
    closed.state = NW_STATE_CLOSED;
    put(&open1);
    put(&closed);

    /* Not committed: the writer's own transaction still sees it. */
    nw_conn key = conn(0, 0, 0);
    char host[16] = "WS01";
    key.host = host;
    nw_conn out;
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &key, g_day0 + 40 * SEC, &out), 1);
    assert_conn_eq(&out, &open1);
    ck_assert_ptr_ne(out.host, host);

    /* Last seen before since: no. */
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &key, g_day0 + 51 * SEC, &out), 0);
    /* A closed row of that key: no. */
    nw_conn k2 = key;
    k2.remote_port = 443;
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &k2, g_day0, &out), 0);
    /* Any other part of the key differs: no. */
    nw_conn k3 = key;
    k3.pid = 1;
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &k3, g_day0, &out), 0);
    k3 = key;
    k3.host = "ws01";
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &k3, g_day0, &out), 0);
    k3 = key;
    k3.proto = NW_PROTO_UDP;
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &k3, g_day0, &out), 0);
    k3 = key;
    k3.local_ip = fx_addr("10.2.10.22");
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &k3, g_day0, &out), 0);

    /* An attempted row of the same key, newer partition: it wins. */
    nw_conn open2 = conn(12, g_day0 + DAY + 10 * SEC, g_day0 + DAY + 11 * SEC);
    open2.state = NW_STATE_ATTEMPTED;
    put(&open2);
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &key, g_day0, &out), 1);
    ck_assert_int_eq(out.id, 12);

    /* A server-side key (local port below the remote one) is probed
     * through the other index; the answer is the same. */
    nw_conn srv = conn(13, g_day0 + 20 * SEC, g_day0 + 30 * SEC);
    srv.local_port = 53;
    srv.remote_port = 61000;
    srv.proto = NW_PROTO_UDP;
    srv.state = NW_STATE_ESTABLISHED;
    put(&srv);
    nw_conn ks = srv;
    ks.id = 0;
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &ks, g_day0 + 25 * SEC, &out), 1);
    assert_conn_eq(&out, &srv);
    ks.pid = 1;
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &ks, g_day0, &out), 0);

    /* After a restart, from the committed store and catalog. */
    close_writer();
    open_writer();
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &key, g_day0 + DAY, &out), 1);
    ck_assert_int_eq(out.id, 12);
    ck_assert_str_eq(out.host, "WS01");
    ck_assert_int_eq(g_sink.resume(g_sink.ctx, &key, g_day0 + DAY + 12 * SEC, &out), 0);
}
END_TEST

START_TEST(test_reserve_ids_never_repeat)
{
    int64_t a = g_sink.reserve_ids(g_sink.ctx, 10);
    ck_assert_int_gt(a, 0);
    int64_t b = g_sink.reserve_ids(g_sink.ctx, 70000);   /* more than a block */
    ck_assert_int_ge(b, a + 10);
    int64_t c = g_sink.reserve_ids(g_sink.ctx, 1);
    ck_assert_int_ge(c, b + 70000);
    ck_assert_int_le(g_sink.reserve_ids(g_sink.ctx, 0), 0);
    close_writer();

    open_writer();
    int64_t d = g_sink.reserve_ids(g_sink.ctx, 5);
    ck_assert_int_gt(d, c);
    close_writer();

    /* A writer that dies without closing (no commit, no close). */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        nw_store *s2;
        nw_writer *w2;
        nw_sink k;
        nw_store_opts o = {NW_PART_DEFAULT, 0};
        if (nw_store_open(g_dir, &o, &s2, NULL) != NW_OK ||
            nw_writer_open(s2, &w2, NULL) != NW_OK)
            _exit(1);
        nw_writer_sink(w2, &k);
        int64_t last = k.reserve_ids(k.ctx, 3) + 2;
        if (write(fds[1], &last, sizeof last) != sizeof last)
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    int64_t child_last = 0;
    ck_assert_int_eq(read(fds[0], &child_last, sizeof child_last), sizeof child_last);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_gt(child_last, d);

    open_writer();
    ck_assert_int_gt(g_sink.reserve_ids(g_sink.ctx, 1), child_last);
}
END_TEST

START_TEST(test_second_writer_busy)
{
    nw_store *s2;
    nw_writer *w2 = NULL;
    nw_err err = {{0}};
    s2 = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    ck_assert_int_eq(nw_writer_open(s2, &w2, &err), NW_ERR_BUSY);
    char want[256];
    snprintf(want, sizeof want, "store %s is being written by another process (pid %ld)",
             g_dir, (long)getpid());
    ck_assert_str_eq(err.msg, want);

    /* From another process too. */
    pid_t pid = fork();
    if (pid == 0) {
        nw_store *s3;
        nw_writer *w3;
        nw_store_opts o = {NW_PART_DEFAULT, 0};
        if (nw_store_open(g_dir, &o, &s3, NULL) != NW_OK)
            _exit(2);
        _exit(nw_writer_open(s3, &w3, NULL) == NW_ERR_BUSY ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    close_writer();
    ck_assert_msg(nw_writer_open(s2, &w2, &err) == NW_OK, "%s", err.msg);
    ck_assert(nw_writer_close(w2, &err) == NW_OK);
    nw_store_close(s2);
}
END_TEST

START_TEST(test_commit_visibility)
{
    nw_store *r;
    r = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_conn c = conn(20, g_day0 + SEC, g_day0 + 2 * SEC);
    put(&c);
    nw_conn got;
    nw_err err = {{0}};
    ck_assert_int_eq(nw_query_connection(r, 20, &got, &err), NW_ERR_INVALID);
    ck_assert_str_eq(err.msg, "no connection 20");
    commit();
    get_conn(r, 20, &got);
    ck_assert_int_eq(got.id, 20);
    nw_store_close(r);
}
END_TEST

START_TEST(test_batch_commits_itself)
{
    nw_store *r;
    r = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_conn c = conn(30, g_day0 + SEC, g_day0 + 2 * SEC);
    put(&c);
    for (int i = 1; i < NW_WRITER_BATCH_ROWS; i++)
        put_xfer(30, g_day0 + i, 1, 1, 1);
    nw_writer_stats st;
    nw_writer_stats_get(g_w, &st);
    ck_assert_uint_eq(st.commits, 1);
    ck_assert_uint_eq(st.conn_rows, 1);
    ck_assert_uint_eq(st.transfer_rows, NW_WRITER_BATCH_ROWS - 1);
    nw_conn got;
    get_conn(r, 30, &got);     /* committed without nw_writer_commit */
    nw_store_close(r);
}
END_TEST

START_TEST(test_many_partitions_lru)
{
    /* More partitions than open handles, revisited: handles are evicted
     * (committing), reopened, and no row is lost. */
    const int days = NW_WRITER_MAX_OPEN_PARTITIONS + 4;
    for (int round = 0; round < 3; round++)
        for (int d = 0; d < days; d++) {
            nw_conn c = conn(1 + d * 10 + round, g_day0 + d * DAY + round * SEC,
                             g_day0 + d * DAY + round * SEC + SEC);
            put(&c);
            put_xfer(c.id, c.first_seen, 1, 1, 1);
        }
    close_writer();
    nw_partition_info *v;
    size_t n;
    nw_err err = {{0}};
    ck_assert(nw_store_partitions(g_s, &v, &n, &err) == NW_OK);
    ck_assert_uint_eq(n, (size_t)days);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(v[i].connections, 3);
        ck_assert_uint_eq(v[i].transfers, 3);
        ck_assert_int_eq(v[i].start, g_day0 + (nw_time)i * DAY);
        ck_assert_int_eq(v[i].end, g_day0 + (nw_time)(i + 1) * DAY);
        ck_assert_int_eq(v[i].min_first_seen, v[i].start);
        ck_assert_int_eq(v[i].max_first_seen, v[i].start + 2 * SEC);
        ck_assert_int_eq(v[i].max_last_seen, v[i].start + 3 * SEC);
        ck_assert_uint_gt(v[i].file_bytes, 0);
    }
    free(v);
    for (int d = 0; d < days; d++)
        for (int round = 0; round < 3; round++) {
            nw_conn got;
            get_conn(g_s, 1 + d * 10 + round, &got);
        }
}
END_TEST

START_TEST(test_invalid_rows)
{
    nw_conn c = conn(0, g_day0, g_day0);
    ck_assert_int_eq(g_sink.conn(g_sink.ctx, &c), NW_ERR_INVALID);
    ck_assert_str_ne(nw_writer_last_error(g_w), "");
    c.id = 1;
    c.anchor = NW_TIME_MAX;      /* year > 9999: no partition for it */
    ck_assert_int_eq(g_sink.conn(g_sink.ctx, &c), NW_ERR_INVALID);
    nw_transfer t = {0, g_day0, 1, 1, 0, 1, 1, 0};
    ck_assert_int_eq(g_sink.transfer(g_sink.ctx, &t), NW_ERR_INVALID);
}
END_TEST

/* Through the thread a bad row is found when it is written: a later call
 * and the commit say so, and nothing after it is written. */
START_TEST(test_thread_reports_a_bad_row_later)
{
    nw_conn good = conn(5, g_day0, g_day0 + SEC);
    put(&good);
    nw_conn bad = conn(6, g_day0, g_day0);
    bad.anchor = NW_TIME_MAX;    /* no partition for it */
    ck_assert_int_eq(g_sink.conn(g_sink.ctx, &bad), NW_OK);   /* queued */
    nw_err err = {{0}};
    ck_assert_int_eq(nw_writer_commit(g_w, &err), NW_ERR_INVALID);
    ck_assert_str_ne(err.msg, "");
    nw_conn after = conn(7, g_day0, g_day0);
    ck_assert_int_eq(g_sink.conn(g_sink.ctx, &after), NW_ERR_INVALID);
    ck_assert_int_eq(nw_writer_close(g_w, &err), NW_ERR_INVALID);
    g_w = NULL;
    /* What came before the bad row is in the store. */
    nw_conn out;
    get_conn(g_s, 5, &out);
    assert_conn_eq(&out, &good);
}
END_TEST

START_TEST(test_uncataloged_partition_is_rescanned)
{
    /* A partition file the catalog lost (crash between the two commits, or
     * an old catalog): the writer counts what it holds when it reopens it. */
    for (int i = 0; i < 3; i++) {
        nw_conn c = conn(40 + i, g_day0 + i * SEC, g_day0 + i * SEC + 2 * SEC);
        put(&c);
        put_xfer(c.id, c.first_seen, 1, 1, 1);
    }
    close_writer();
    char path[256];
    snprintf(path, sizeof path, "%s/catalog.db", g_dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "DELETE FROM partitions", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    open_writer();
    nw_conn c = conn(50, g_day0 + 10 * SEC, g_day0 + 20 * SEC);
    put(&c);
    close_writer();
    nw_partition_info p = part_info("p-2026-03-16.db");
    ck_assert_uint_eq(p.connections, 4);
    ck_assert_uint_eq(p.transfers, 3);
    ck_assert_int_eq(p.min_first_seen, g_day0);
    ck_assert_int_eq(p.max_last_seen, g_day0 + 20 * SEC);
    nw_conn got;
    get_conn(g_s, 41, &got);
    xfers x = {0};
    nw_err err = {{0}};
    ck_assert(nw_query_transfers(g_s, 42, collect_xfer, &x, &err) == NW_OK);
    ck_assert_int_eq(x.n, 1);
}
END_TEST

/* --------------------------------------------------------- dead letters */

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates, > U+10FFFF). */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                   : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n)
            return 0;
        unsigned cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static cJSON *read_line(FILE *f, char *buf, size_t cap)
{
    ck_assert_ptr_nonnull(fgets(buf, (int)cap, f));
    size_t len = strlen(buf);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(buf[len - 1], '\n');
    ck_assert_msg(valid_utf8((const unsigned char *)buf, len), "not UTF-8: %s", buf);
    ck_assert_ptr_null(memchr(buf, '\0', len));
    cJSON *j = cJSON_ParseWithLength(buf, len);
    ck_assert_msg(j != NULL, "not JSON: %s", buf);
    return j;
}

START_TEST(test_deadletter_valid_json)
{
    static const char nasty[] =
        "{\"a\": \"q\\\"uote\" \\ back\tslash\r\n\x01\x1f\x7f"
        "\xff\xfe|\xc3\x28|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|"
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80|\xe2\x82";
    size_t nasty_len = sizeof nasty - 1;
    char with_nul[] = {'a', '\0', 'b'};
    nw_rejection r1 = {NW_REJ_BAD_JSON, "trace \"1\".json", 1234, nasty, nasty_len,
                       nasty_len, "unexpected \x02 byte"};
    nw_rejection r2 = {NW_REJ_TOO_LARGE, "-", 99, "{\"big\":", 7, 5000000, ""};
    nw_rejection r3 = {NW_REJ_BAD_TIME, NULL, 0, with_nul, 3, 3, NULL};
    nw_err err = {{0}};
    ck_assert_msg(nw_writer_reject(g_w, &r1, &err) == NW_OK, "%s", err.msg);
    ck_assert(nw_writer_reject(g_w, &r2, &err) == NW_OK);
    ck_assert(nw_writer_reject(g_w, &r3, &err) == NW_OK);
    commit();   /* flushes the dead-letter file */

    char ts[NW_TIME_STRLEN], path[256];
    nw_time_format(nw_time_now(), ts, sizeof ts);
    snprintf(path, sizeof path, "%s/rejected/rejected-%.10s.ndjson", g_dir, ts);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "no %s", path);
    static char buf[65536];

    cJSON *j = read_line(f, buf, sizeof buf);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "reason")->valuestring,
                     nw_reject_name(NW_REJ_BAD_JSON));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "source")->valuestring, "trace \"1\".json");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "detail")->valuestring, "unexpected \x02 byte");
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(j, "offset")->valuedouble, 1234);
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(j, "length")->valuedouble,
                     (int64_t)nasty_len);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "truncated")));
    nw_time t;
    const char *when = cJSON_GetObjectItem(j, "time")->valuestring;
    ck_assert_int_eq(nw_time_parse_rfc3339(when, strlen(when), &t), 0);
    /* Valid text survives byte for byte; each invalid byte is U+FFFD. */
    ck_assert_str_eq(cJSON_GetObjectItem(j, "raw")->valuestring,
                     "{\"a\": \"q\\\"uote\" \\ back\tslash\r\n\x01\x1f\x7f"
                     "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd(|\xef\xbf\xbd\xef\xbf\xbd|"
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80|"
                     "\xef\xbf\xbd\xef\xbf\xbd");
    cJSON_Delete(j);

    j = read_line(f, buf, sizeof buf);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "reason")->valuestring,
                     nw_reject_name(NW_REJ_TOO_LARGE));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")));
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(j, "length")->valuedouble, 5000000);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "raw")->valuestring, "{\"big\":");
    cJSON_Delete(j);

    /* An embedded NUL is escaped (\u0000), not a cut. */
    j = read_line(f, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "\"raw\":\"a\\u0000b\""));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "source")->valuestring, "");
    cJSON_Delete(j);
    ck_assert_ptr_null(fgets(buf, sizeof buf, f));
    fclose(f);

    nw_writer_stats st;
    nw_writer_stats_get(g_w, &st);
    ck_assert_uint_eq(st.rejected_rows, 3);
}
END_TEST

static Suite *writer_suite(void)
{
    Suite *s = suite_create("writer");
    TCase *tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_roundtrip_every_field);
    tcase_add_test(tc, test_rewrite_replaces);
    tcase_add_test(tc, test_transfers_upsert_and_order);
    tcase_add_test(tc, test_failures);
    tcase_add_test(tc, test_resume);
    tcase_add_test(tc, test_reserve_ids_never_repeat);
    tcase_add_test(tc, test_second_writer_busy);
    tcase_add_test(tc, test_commit_visibility);
    tcase_add_test(tc, test_batch_commits_itself);
    tcase_add_test(tc, test_many_partitions_lru);
    tcase_add_test(tc, test_invalid_rows);
    tcase_add_test(tc, test_uncataloged_partition_is_rescanned);
    tcase_add_test(tc, test_deadletter_valid_json);
    suite_add_tcase(s, tc);

    TCase *tt = tcase_create("writer thread");
    tcase_add_checked_fixture(tt, setup_threaded, teardown);
    tcase_add_test(tt, test_roundtrip_every_field);
    tcase_add_test(tt, test_rewrite_replaces);
    tcase_add_test(tt, test_transfers_upsert_and_order);
    tcase_add_test(tt, test_failures);
    tcase_add_test(tt, test_resume);
    tcase_add_test(tt, test_reserve_ids_never_repeat);
    tcase_add_test(tt, test_commit_visibility);
    tcase_add_test(tt, test_batch_commits_itself);
    tcase_add_test(tt, test_many_partitions_lru);
    tcase_add_test(tt, test_thread_reports_a_bad_row_later);
    tcase_add_test(tt, test_deadletter_valid_json);
    suite_add_tcase(s, tt);
    return s;
}

int main(void)
{
    return nw_check_run(writer_suite());
}
