/*
 * test_hourly.c -- the hourly roll-up (hourly.h): known connections written
 * through the writer give exactly the expected rows (a connection spanning
 * hours, a rewrite counted once), filters and limits select the right rows,
 * and the roll-up outlives the partitions that retention drops until its
 * own age limit deletes it.  Runs once writing synchronously and once
 * through the writer thread.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netwho/hourly.h"
#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"

#define HOUR NW_TICKS_PER_HOUR
#define MIN (60 * NW_TICKS_PER_SEC)
#define DAY (24 * HOUR)

#define FX_DIR_TEMPLATE "/tmp/nw-hourly-XXXXXX"
#define FX_PARTITIONING NW_PART_DAY
#include "writer_fixture.h"

static nw_conn conn(int64_t id, const char *rip, uint16_t rport, nw_time first,
                    nw_time last, uint64_t sent, uint64_t recv)
{
    nw_conn c = fx_conn(id, first, last);
    c.remote_ip = fx_addr(rip);
    c.local_port = (uint16_t)(50000 + id);
    c.remote_port = rport;
    c.bytes_sent = sent;
    c.bytes_received = recv;
    return c;
}

#define MAX_ROWS 32

typedef struct rows {
    nw_hourly_row r[MAX_ROWS];
    size_t n;
} rows;

static int collect(void *ctx, const nw_hourly_row *r)
{
    rows *v = ctx;
    ck_assert_uint_lt(v->n, MAX_ROWS);
    v->r[v->n++] = *r;
    return 0;
}

static rows run(const nw_hourly_query *q, int *more)
{
    rows v;
    memset(&v, 0, sizeof v);
    nw_err err = {{0}};
    ck_assert_msg(nw_query_hourly(g_s, q, collect, &v, more, &err) == NW_OK, "%s", err.msg);
    return v;
}

/* Row i is (hour, ip, port, connections, sent, received). */
static void expect(const rows *v, size_t i, nw_time hour, const char *ip, uint16_t port,
                   uint64_t conns, uint64_t sent, uint64_t recv)
{
    ck_assert_uint_lt(i, v->n);
    const nw_hourly_row *r = &v->r[i];
    ck_assert_int_eq(r->hour, hour);
    ck_assert_str_eq(r->host, "WS01");
    ck_assert_uint_eq(r->pid, 4168);
    nw_addr a = fx_addr(ip);
    ck_assert_mem_eq(r->remote_ip.b, a.b, 16);
    ck_assert_uint_eq(r->remote_port, port);
    ck_assert_uint_eq(r->connections, conns);
    ck_assert_uint_eq(r->bytes_sent, sent);
    ck_assert_uint_eq(r->bytes_received, recv);
}

/* The fixed story of these tests, on day d (0 or 1):
 *   1: 10.2.20.41:5044, 00:10-00:20, 100/200 bytes
 *   2: same key, 00:50-02:05 (spans hours), written once, 1000/2000
 *   3: 192.0.2.7:443, 01:00-01:30 with 10/20, committed, then rewritten
 *      01:00-03:10 with 50/80 (the rewrite adds 40/60 in hour 3), then
 *      written again unchanged (adds nothing). */
static void write_story(int d)
{
    nw_time t0 = g_day0 + d * DAY;
    int64_t id = 1 + 10 * d;
    nw_conn c1 = conn(id, "10.2.20.41", 5044, t0 + 10 * MIN, t0 + 20 * MIN, 100, 200);
    nw_conn c2 = conn(id + 1, "10.2.20.41", 5044, t0 + 50 * MIN, t0 + 2 * HOUR + 5 * MIN,
                      1000, 2000);
    nw_conn c3 = conn(id + 2, "192.0.2.7", 443, t0 + HOUR, t0 + HOUR + 30 * MIN, 10, 20);
    put(&c1);
    put(&c2);
    put(&c3);
    commit();
    c3.last_seen = t0 + 3 * HOUR + 10 * MIN;
    c3.bytes_sent = 50;
    c3.bytes_received = 80;
    put(&c3);
    put(&c3);
    commit();
}

/* The rows write_story(d) makes, by hour, from row i on. */
static void expect_story(const rows *v, size_t i, int d)
{
    nw_time t0 = g_day0 + d * DAY;
    expect(v, i + 0, t0, "10.2.20.41", 5044, 2, 100, 200);
    expect(v, i + 1, t0 + HOUR, "192.0.2.7", 443, 1, 10, 20);
    expect(v, i + 2, t0 + 2 * HOUR, "10.2.20.41", 5044, 0, 1000, 2000);
    expect(v, i + 3, t0 + 3 * HOUR, "192.0.2.7", 443, 0, 40, 60);
}

START_TEST(test_rows_exact)
{
    write_story(0);
    nw_hourly_query q;
    nw_hourly_query_init(&q);
    rows v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 4);
    expect_story(&v, 0, 0);

    /* Totals per key: each connection once, every byte once. */
    q.by_hour = 0;
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 2);
    expect(&v, 0, NW_TIME_MIN, "10.2.20.41", 5044, 2, 1100, 2200);
    expect(&v, 1, NW_TIME_MIN, "192.0.2.7", 443, 1, 50, 80);

    /* A CIDR on the remote end. */
    ck_assert_int_eq(nw_cidr_parse("10.0.0.0/8", &q.ip_lo, &q.ip_hi, NULL), 0);
    q.has_ip = 1;
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 1);
    expect(&v, 0, NW_TIME_MIN, "10.2.20.41", 5044, 2, 1100, 2200);

    /* A window: the hours that overlap [01:30, 02:00) is hour 1 alone. */
    nw_hourly_query_init(&q);
    q.from = g_day0 + HOUR + 30 * MIN;
    q.to = g_day0 + 2 * HOUR;
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 1);
    expect(&v, 0, g_day0 + HOUR, "192.0.2.7", 443, 1, 10, 20);
    q.to = g_day0 + 2 * HOUR + 1;     /* touches hour 2 too */
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 2);

    /* Port, pid, host (any case); a limit says more. */
    nw_hourly_query_init(&q);
    q.remote_port = 443;
    q.host = "ws01";
    q.pid = 4168;
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 2);
    q.pid = 1;
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 0);
    nw_hourly_query_init(&q);
    q.limit = 3;
    int more = 0;
    v = run(&q, &more);
    ck_assert_uint_eq(v.n, 3);
    ck_assert_int_eq(more, 1);
    q.limit = 4;
    v = run(&q, &more);
    ck_assert_int_eq(more, 0);
}
END_TEST

/* Uncommitted sums are not in the file; a discarded writer drops them. */
START_TEST(test_discard_drops_sums)
{
    nw_conn c = conn(1, "10.2.20.41", 5044, g_day0, g_day0 + MIN, 1, 2);
    put(&c);
    nw_writer_discard(g_w);
    g_w = NULL;
    nw_hourly_query q;
    nw_hourly_query_init(&q);
    rows v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 0);
}
END_TEST

static int count_cb(void *ctx, const nw_conn *c)
{
    (void)c;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t connections_left(void)
{
    size_t n = 0;
    nw_query q;
    nw_query_init(&q);
    nw_err err = {{0}};
    ck_assert_msg(nw_query_connections(g_s, &q, count_cb, &n, NULL, &err) == NW_OK, "%s",
                  err.msg);
    return n;
}

START_TEST(test_outlives_partitions)
{
    write_story(0);
    write_story(1);
    ck_assert_uint_eq(connections_left(), 6);

    /* Partition retention drops both days' files; the roll-up stays. */
    nw_retention r = {.days = 1, .now = g_day0 + 5 * DAY};
    size_t dropped = 0;
    nw_err err = {{0}};
    ck_assert_msg(nw_store_apply_retention(g_s, &r, &dropped, &err) == NW_OK, "%s", err.msg);
    ck_assert_uint_eq(dropped, 2);
    ck_assert_uint_eq(connections_left(), 0);
    nw_hourly_query q;
    nw_hourly_query_init(&q);
    rows v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 8);
    expect_story(&v, 0, 0);
    expect_story(&v, 4, 1);
    q.by_hour = 0;
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 2);
    expect(&v, 0, NW_TIME_MIN, "10.2.20.41", 5044, 4, 2200, 4400);
    expect(&v, 1, NW_TIME_MIN, "192.0.2.7", 443, 2, 100, 160);

    /* The writer goes on after retention: its sums still commit. */
    nw_conn c = conn(30, "192.0.2.7", 443, g_day0 + 4 * DAY, g_day0 + 4 * DAY + MIN, 5, 6);
    put(&c);
    commit();

    /* Its own limit: hours that ended before now - 4 days (day 0's). */
    nw_retention rr = {.rollup_days = 4, .now = g_day0 + 5 * DAY};
    ck_assert_msg(nw_store_apply_retention(g_s, &rr, &dropped, &err) == NW_OK, "%s", err.msg);
    ck_assert_uint_eq(dropped, 0);
    q.by_hour = 1;
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 5);
    expect_story(&v, 0, 1);
    expect(&v, 4, g_day0 + 4 * DAY, "192.0.2.7", 443, 1, 5, 6);

    /* A fresh handle reads the same file. */
    nw_writer_close(g_w, NULL);
    g_w = NULL;
    nw_store_close(g_s);
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    ck_assert_msg(nw_store_open(g_dir, &o, &g_s, &err) == NW_OK, "%s", err.msg);
    v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 5);
}
END_TEST

START_TEST(test_no_file_no_rows)
{
    nw_hourly_query q;
    nw_hourly_query_init(&q);
    rows v = run(&q, NULL);
    ck_assert_uint_eq(v.n, 0);
    char path[128];
    snprintf(path, sizeof path, "%s/rollups.db", g_dir);
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

static Suite *hourly_suite(void)
{
    Suite *s = suite_create("hourly");
    TCase *tc = tcase_create("hourly");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_rows_exact);
    tcase_add_test(tc, test_discard_drops_sums);
    tcase_add_test(tc, test_outlives_partitions);
    tcase_add_test(tc, test_no_file_no_rows);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("hourly, writer thread");
    tcase_add_checked_fixture(tt, setup_threaded, teardown);
    tcase_add_test(tt, test_rows_exact);
    tcase_add_test(tt, test_outlives_partitions);
    suite_add_tcase(s, tt);
    return s;
}

int main(void)
{
    return nw_check_run(hourly_suite());
}
