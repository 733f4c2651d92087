/*
 * test_query.c -- the query engine against a store with known contents:
 * CIDR and port matching, filters combined, time windows and partition
 * pruning, pagination across overlapping partitions, who, and the query
 * plans (every filter an index search, never a scan of connections).
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netwho/addrclass.h"
#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"
/* White-box: the open counter and the query text (store_int.h), and the
 * resume statement (sql.h). */
#include "../../../store/sql.h"
#include "../../../store/store_int.h"

#include "store_fixture.h"

#define DAY (86400LL * NW_TICKS_PER_SEC)
#define HOUR (3600LL * NW_TICKS_PER_SEC)
#define SEC NW_TICKS_PER_SEC
#define MAX_IDS 256

static char g_dir[64];
static nw_store *g_s;
static nw_writer *g_w;
static nw_sink g_sink;
static nw_time g_day0;     /* 2026-03-16T00:00:00Z */


static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/nw-query-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    ck_assert_int_eq(nw_time_parse_rfc3339("2026-03-16T00:00:00Z", 20, &g_day0), 0);
    nw_err err = {{0}};
    nw_store_opts o = {NW_PART_DEFAULT, 1};
    ck_assert_msg(nw_store_open(g_dir, &o, &g_s, &err) == NW_OK, "%s", err.msg);
    ck_assert_msg(nw_writer_open(g_s, &g_w, &err) == NW_OK, "%s", err.msg);
    nw_writer_sink(g_w, &g_sink);
}

static void teardown(void)
{
    if (g_w)
        nw_writer_close(g_w, NULL);
    nw_store_close(g_s);
    rm_rf(g_dir);
}

/* Commits, and reopens the store so the open counter starts at zero. */
static void finish_writing(void)
{
    nw_err err = {{0}};
    ck_assert_msg(nw_writer_close(g_w, &err) == NW_OK, "%s", err.msg);
    g_w = NULL;
    nw_store_close(g_s);
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    ck_assert_msg(nw_store_open(g_dir, &o, &g_s, &err) == NW_OK, "%s", err.msg);
}

typedef struct spec {
    int64_t id;
    const char *host;
    uint32_t pid;
    int proto, ipv, dir, state;
    const char *lip;
    int lport;
    const char *rip;
    int rport;
    nw_time first, last;
    uint64_t sent, recv;
} spec;

static void put_spec(const spec *p, nw_time anchor)
{
    nw_conn c;
    memset(&c, 0, sizeof c);
    c.id = p->id;
    c.host = p->host;
    c.pid = p->pid;
    c.proto = (uint8_t)p->proto;
    c.ip_version = (uint8_t)p->ipv;
    c.direction = (uint8_t)p->dir;
    c.state = (uint8_t)p->state;
    c.local_ip = fx_addr(p->lip);
    c.local_port = (uint16_t)p->lport;
    c.remote_ip = fx_addr(p->rip);
    c.remote_port = (uint16_t)p->rport;
    c.first_seen = p->first;
    c.last_seen = p->last;
    c.anchor = anchor;
    c.bytes_sent = p->sent;
    c.bytes_received = p->recv;
    ck_assert_msg(g_sink.conn(g_sink.ctx, &c) == NW_OK, "%s", nw_writer_last_error(g_w));
}

/* Ids a query returned, in order. */
typedef struct ids {
    int64_t v[MAX_IDS];
    nw_time fs[MAX_IDS];
    int n;
    int stop_after;        /* callback returns 1 after this many; 0 never */
} ids;

static int collect(void *ctx, const nw_conn *c)
{
    ids *x = ctx;
    ck_assert_int_lt(x->n, MAX_IDS);
    x->fs[x->n] = c->first_seen;
    x->v[x->n++] = c->id;
    return x->stop_after && x->n >= x->stop_after;
}

static ids run(const nw_query *q, int *more)
{
    ids x;
    memset(&x, 0, sizeof x);
    nw_err err = {{0}};
    ck_assert_msg(nw_query_connections(g_s, q, collect, &x, more, &err) == NW_OK, "%s",
                  err.msg);
    return x;
}

/* The ids returned, as a sorted set, are exactly want[0..n). */
static void assert_set(ids x, const int64_t *want, int n)
{
    for (int i = 1; i < x.n; i++)
        for (int j = i; j > 0 && x.v[j - 1] > x.v[j]; j--) {
            int64_t t = x.v[j];
            x.v[j] = x.v[j - 1];
            x.v[j - 1] = t;
        }
    char got[512] = "";
    for (int i = 0; i < x.n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), " %lld", (long long)x.v[i]);
    ck_assert_msg(x.n == n, "got %d ids:%s, want %d", x.n, got, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(x.v[i] == want[i], "got%s", got);
}

static void set_cidr(nw_query *q, const char *cidr)
{
    q->has_ip = 1;
    ck_assert_int_eq(nw_cidr_parse(cidr, &q->ip_lo, &q->ip_hi, NULL), 0);
}

/* A mixed dataset on one day. */
static void load_addresses(void)
{
    const nw_time t = g_day0 + HOUR;
    const spec v[] = {
        {1, "WS01", 100, NW_PROTO_TCP, 4, 1, 2, "192.168.1.5", 50000, "10.1.2.3", 443, t, t + 1, 10, 1},
        {2, "WS01", 100, NW_PROTO_TCP, 4, 1, 2, "192.168.1.5", 50001, "10.255.255.255", 80, t + 2, t + 3, 20, 2},
        {3, "WS01", 200, NW_PROTO_UDP, 4, 1, 2, "192.168.1.5", 50002, "11.0.0.1", 53, t + 4, t + 5, 30, 3},
        {4, "WS01", 200, NW_PROTO_TCP, 4, 1, 2, "192.168.1.5", 50003, "9.255.255.255", 443, t + 6, t + 7, 40, 4},
        {5, "ws02", 300, NW_PROTO_TCP, 4, 2, 1, "10.0.0.7", 443, "192.168.1.9", 61000, t + 8, t + 9, 50, 5},
        {6, "WS02", 300, NW_PROTO_TCP, 6, 1, 2, "2001:db8::5", 50010, "2001:db8::1", 443, t + 10, t + 11, 60, 6},
        {7, "WS02", 301, NW_PROTO_TCP, 6, 1, 2, "2001:db8::5", 50011, "2001:db8:ffff:ffff::2", 22, t + 12, t + 13, 70, 7},
        {8, "WS02", 301, NW_PROTO_TCP, 6, 1, 2, "2001:db8::5", 50012, "2001:db9::1", 443, t + 14, t + 15, 80, 8},
        {9, "WS02", 302, NW_PROTO_TCP, 6, 1, 2, "2001:db8::5", 50013, "::ffff:10.1.1.1", 8080, t + 16, t + 17, 90, 9},
        {10, "WS03", 400, NW_PROTO_UDP, 6, 2, 2, "::1", 53, "::1", 52668, t + 18, t + 19, 0, 100},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        put_spec(&v[i], v[i].first);
    finish_writing();
}

/* An empty store answers every query with nothing (and no undefined
 * behaviour: netwhod serves stores before their first event). */
START_TEST(test_empty_store)
{
    finish_writing();
    nw_query q;
    nw_query_init(&q);
    int more = 1;
    ids x = run(&q, &more);
    ck_assert_int_eq(x.n, 0);
    ck_assert_int_eq(more, 0);
    nw_who_row *rows = NULL;
    size_t n = 7;
    nw_err err = {{0}};
    nw_cidr_parse("10.0.0.0/8", &q.ip_lo, &q.ip_hi, NULL);
    q.has_ip = 1;
    ck_assert_int_eq(nw_query_who(g_s, &q, &rows, &n, &err), NW_OK);
    ck_assert_int_eq(n, 0);
    free(rows);
}
END_TEST

START_TEST(test_cidr)
{
    load_addresses();
    nw_query q;
    nw_query_init(&q);
    set_cidr(&q, "10.0.0.0/8");
    /* 10.1.2.3, 10.255.255.255, local 10.0.0.7, and ::ffff:10.1.1.1 (the
     * same 16 bytes, seen on an IPv6 socket). */
    static const int64_t ten[] = {1, 2, 5, 9};
    assert_set(run(&q, NULL), ten, 4);

    nw_query_init(&q);
    set_cidr(&q, "2001:db8::/32");
    /* 8 and 9 by their local end 2001:db8::5 only. */
    static const int64_t db8[] = {6, 7, 8, 9};
    assert_set(run(&q, NULL), db8, 4);

    nw_query_init(&q);
    set_cidr(&q, "10.1.2.3/32");
    static const int64_t one[] = {1};
    assert_set(run(&q, NULL), one, 1);

    nw_query_init(&q);
    set_cidr(&q, "2001:db8::1/128");
    static const int64_t six[] = {6};
    assert_set(run(&q, NULL), six, 1);

    nw_query_init(&q);
    set_cidr(&q, "11.0.0.0/8");
    static const int64_t eleven[] = {3};
    assert_set(run(&q, NULL), eleven, 1);

    nw_query_init(&q);
    set_cidr(&q, "::1");
    static const int64_t lo[] = {10};
    assert_set(run(&q, NULL), lo, 1);

    nw_query_init(&q);
    set_cidr(&q, "172.16.0.0/12");
    assert_set(run(&q, NULL), NULL, 0);

    /* Everything, in (first_seen, id) order. */
    nw_query_init(&q);
    ids all = run(&q, NULL);
    ck_assert_int_eq(all.n, 10);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(all.v[i], i + 1);
}
END_TEST

START_TEST(test_ports_and_filters)
{
    load_addresses();
    nw_query q;
    nw_query_init(&q);
    q.port = 443;          /* either end: 5 listens on 443 */
    static const int64_t p443[] = {1, 4, 5, 6, 8};
    assert_set(run(&q, NULL), p443, 5);

    nw_query_init(&q);
    q.local_port = 443;
    static const int64_t l443[] = {5};
    assert_set(run(&q, NULL), l443, 1);

    nw_query_init(&q);
    q.remote_port = 443;
    static const int64_t r443[] = {1, 4, 6, 8};
    assert_set(run(&q, NULL), r443, 4);

    /* AND of filters. */
    nw_query_init(&q);
    q.port = 443;
    set_cidr(&q, "10.0.0.0/8");
    static const int64_t both[] = {1, 5};
    assert_set(run(&q, NULL), both, 2);

    nw_query_init(&q);
    q.host = "wS02";       /* ASCII case-insensitive */
    static const int64_t ws02[] = {5, 6, 7, 8, 9};
    assert_set(run(&q, NULL), ws02, 5);
    q.pid = 301;
    static const int64_t p301[] = {7, 8};
    assert_set(run(&q, NULL), p301, 2);
    q.port = 443;
    static const int64_t p301_443[] = {8};
    assert_set(run(&q, NULL), p301_443, 1);

    nw_query_init(&q);
    q.proto = NW_PROTO_UDP;
    static const int64_t udp[] = {3, 10};
    assert_set(run(&q, NULL), udp, 2);
    q.direction = NW_DIR_INBOUND;
    static const int64_t udp_in[] = {10};
    assert_set(run(&q, NULL), udp_in, 1);

    nw_query_init(&q);
    q.state = NW_STATE_ESTABLISHED;
    static const int64_t est[] = {5};
    assert_set(run(&q, NULL), est, 1);

    nw_query_init(&q);
    q.pid = 999;
    assert_set(run(&q, NULL), NULL, 0);
}
END_TEST

/* The residual flow filters (query.h): applied after the indexed scan,
 * combined with the indexed filters, with limit, *more and the cursor
 * exact -- and without a process table (none was ever written here). */
START_TEST(test_flow_filters)
{
    load_addresses();
    nw_query q;
    nw_query_init(&q);
    ck_assert_int_eq(q.scope, -1);
    /* Remote ends: 1, 2, 5 RFC 1918; 9 ::ffff:10.1.1.1 (an IPv4 peer of an
     * IPv6 socket); 3, 4, 6, 7, 8 anything else; 10 ::1. */
    q.scope = NW_ACLASS_PUBLIC;
    static const int64_t pub[] = {3, 4, 6, 7, 8};
    assert_set(run(&q, NULL), pub, 5);
    q.scope = NW_ACLASS_PRIVATE;
    static const int64_t priv[] = {1, 2, 5, 9};
    assert_set(run(&q, NULL), priv, 4);
    q.scope = NW_ACLASS_LOOPBACK;
    static const int64_t lo[] = {10};
    assert_set(run(&q, NULL), lo, 1);
    q.scope = NW_ACLASS_MULTICAST;
    assert_set(run(&q, NULL), NULL, 0);

    nw_query_init(&q);
    q.exclude_loopback = 1;
    static const int64_t nolo[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_set(run(&q, NULL), nolo, 9);
    q.scope = NW_ACLASS_LOOPBACK;          /* both: nothing */
    assert_set(run(&q, NULL), NULL, 0);

    /* AND with the indexed filters. */
    nw_query_init(&q);
    q.scope = NW_ACLASS_PUBLIC;
    q.port = 443;
    static const int64_t pub443[] = {4, 6, 8};
    assert_set(run(&q, NULL), pub443, 3);

    /* The limit counts connections that pass, and *more says whether one
     * more passes -- not whether the scan had more rows. */
    nw_query_init(&q);
    q.scope = NW_ACLASS_PUBLIC;
    int more = -1;
    q.limit = 2;
    ids x = run(&q, &more);
    static const int64_t first2[] = {3, 4};
    assert_set(x, first2, 2);
    ck_assert_int_eq(more, 1);
    q.limit = 4;
    run(&q, &more);
    ck_assert_int_eq(more, 1);
    q.limit = 5;                           /* exactly all: 9 and 10 follow, */
    assert_set(run(&q, &more), pub, 5);    /* but do not pass               */
    ck_assert_int_eq(more, 0);
    /* The next page resumes after the last row given. */
    q.limit = 2;
    q.has_cursor = 1;
    q.cursor_first_seen = x.fs[1];
    q.cursor_id = x.v[1];
    static const int64_t next2[] = {6, 7};
    assert_set(run(&q, &more), next2, 2);
    ck_assert_int_eq(more, 1);

    /* Community ID (seed 0) of connection 1, 192.168.1.5:50000 ->
     * 10.1.2.3:443 TCP, computed with Python's hashlib from the spec. */
    nw_query_init(&q);
    snprintf(q.community_id, sizeof q.community_id, "1:htjSo7nhWHwHNfQCe6bz21RnYmU=");
    static const int64_t one[] = {1};
    assert_set(run(&q, &more), one, 1);
    ck_assert_int_eq(more, 0);
    q.scope = NW_ACLASS_PUBLIC;            /* its remote is private */
    assert_set(run(&q, NULL), NULL, 0);
    nw_query_init(&q);
    snprintf(q.community_id, sizeof q.community_id, "1:htjSo7nhWHwHNfQCe6bz21RnYmV=");
    assert_set(run(&q, NULL), NULL, 0);

    /* A process filter with no process table still answers nothing. */
    nw_query_init(&q);
    q.scope = NW_ACLASS_PUBLIC;
    q.process = "svchost.exe";
    assert_set(run(&q, &more), NULL, 0);
    ck_assert_int_eq(more, 0);
}
END_TEST

START_TEST(test_time_window_and_pruning)
{
    /* 1: long-lived, anchored day 0, still seen on day 2.  2: day 1 only.
     * 3: day 2.  4: day 0 only. */
    const spec v[] = {
        {1, "WS01", 1, NW_PROTO_TCP, 4, 1, 1, "10.0.0.1", 1000, "10.0.0.2", 443,
         g_day0 + HOUR, g_day0 + 2 * DAY + 5 * HOUR, 1, 1},
        {2, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 1001, "10.0.0.2", 443,
         g_day0 + DAY + HOUR, g_day0 + DAY + 2 * HOUR, 1, 1},
        {3, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 1002, "10.0.0.2", 443,
         g_day0 + 2 * DAY + HOUR, g_day0 + 2 * DAY + 2 * HOUR, 1, 1},
        {4, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 1003, "10.0.0.2", 443,
         g_day0 + 2 * HOUR, g_day0 + 3 * HOUR, 1, 1},
    };
    for (size_t i = 0; i < 4; i++)
        put_spec(&v[i], v[i].first);
    finish_writing();

    nw_query q;
    nw_query_init(&q);
    q.from = g_day0 + 2 * DAY + 4 * HOUR;
    q.to = g_day0 + 2 * DAY + 6 * HOUR;
    static const int64_t late[] = {1};
    assert_set(run(&q, NULL), late, 1);
    /* Day 0 (stretched by 1) was opened, day 1 and day 2 were not: day 2's
     * min_first_seen is before to, but its max_last_seen is before from. */
    ck_assert_uint_eq(g_s->partition_opens, 1);

    q.from = g_day0 + 2 * DAY;
    q.to = g_day0 + 3 * DAY;
    static const int64_t day2[] = {1, 3};
    assert_set(run(&q, NULL), day2, 2);
    ck_assert_uint_eq(g_s->partition_opens, 2);   /* + day 2, not day 1 */

    /* [from, to): a connection ending exactly at from still counts (it was
     * seen at from); one beginning at to does not. */
    q.from = g_day0 + 3 * HOUR;
    q.to = g_day0 + DAY + HOUR;
    static const int64_t edge[] = {1, 4};
    assert_set(run(&q, NULL), edge, 2);

    /* Only an upper bound. */
    nw_query_init(&q);
    q.to = g_day0 + 2 * HOUR + 1;
    static const int64_t before[] = {1, 4};
    assert_set(run(&q, NULL), before, 2);

    /* Day 1's file is never needed by a day-2 window: prove it by
     * replacing it with garbage. */
    char path[256];
    snprintf(path, sizeof path, "%s/p-2026-03-17.db", g_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 64; i++)
        fputs("this is not an SQLite database, only text.\n", f);
    fclose(f);
    nw_store_close(g_s);
    nw_err err = {{0}};
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    ck_assert(nw_store_open(g_dir, &o, &g_s, &err) == NW_OK);
    nw_query_init(&q);
    q.from = g_day0 + 2 * DAY;
    q.to = g_day0 + 3 * DAY;
    assert_set(run(&q, NULL), day2, 2);
    /* ... while a query that needs it reports the damage. */
    nw_query_init(&q);
    ids x = {0};
    ck_assert_int_eq(nw_query_connections(g_s, &q, collect, &x, NULL, &err),
                     NW_ERR_CORRUPT);
}
END_TEST

START_TEST(test_pagination_over_overlapping_partitions)
{
    /* Three day partitions whose first_seen ranges overlap: rows anchored
     * on day 1 with first_seen back on day 0 (a late event), ties on
     * first_seen broken by id, ids not in time order. */
    int nwant = 0;
    int64_t id = 100;
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 7; k++) {
            nw_time fs = g_day0 + d * DAY + (k % 4) * HOUR;
            if (d == 1 && k < 3)
                fs = g_day0 + 23 * HOUR + k * HOUR / 2 - HOUR;  /* day 0 range */
            spec sp = {id, "WS01", (uint32_t)k, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1",
                       1000 + k, "10.0.0.2", 443, fs, fs + SEC, 1, 1};
            put_spec(&sp, g_day0 + d * DAY + 12 * HOUR);
            nwant++;
            id = id == 100 ? 50 : id + 3;   /* ids not monotonic in time */
        }
    /* Two rows with the same first_seen in two partitions. */
    spec tie1 = {7, "WS01", 9, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 9, "10.0.0.2", 9,
                 g_day0 + 23 * HOUR, g_day0 + 23 * HOUR, 1, 1};
    spec tie2 = tie1;
    tie2.id = 6;
    put_spec(&tie1, g_day0 + 12 * HOUR);
    put_spec(&tie2, g_day0 + DAY + 12 * HOUR);
    nwant += 2;
    finish_writing();

    /* Expected order: by (first_seen, id) over everything. */
    nw_query q;
    nw_query_init(&q);
    ids all = run(&q, NULL);
    ck_assert_int_eq(all.n, nwant);
    for (int i = 1; i < all.n; i++)
        ck_assert(all.fs[i - 1] < all.fs[i] ||
                  (all.fs[i - 1] == all.fs[i] && all.v[i - 1] < all.v[i]));

    for (int limit = 1; limit <= 5; limit++) {
        int seen = 0, pages = 0, more = 1;
        nw_query_init(&q);
        q.limit = limit;
        while (more) {
            ids page = run(&q, &more);
            pages++;
            ck_assert_int_le(page.n, limit);
            for (int i = 0; i < page.n; i++) {
                ck_assert_int_lt(seen, all.n);
                ck_assert_int_eq(page.v[i], all.v[seen]);
                seen++;
            }
            if (more) {
                ck_assert_int_eq(page.n, limit);
                q.has_cursor = 1;
                q.cursor_first_seen = page.fs[page.n - 1];
                q.cursor_id = page.v[page.n - 1];
            }
            ck_assert_int_lt(pages, 100);
        }
        ck_assert_int_eq(seen, all.n);
    }

    /* more is exact at the boundary. */
    int more = -1;
    nw_query_init(&q);
    q.limit = all.n;
    ck_assert_int_eq(run(&q, &more).n, all.n);
    ck_assert_int_eq(more, 0);
    q.limit = all.n - 1;
    ck_assert_int_eq(run(&q, &more).n, all.n - 1);
    ck_assert_int_eq(more, 1);

    /* A callback that stops early: NW_OK, no more. */
    nw_query_init(&q);
    ids x;
    memset(&x, 0, sizeof x);
    x.stop_after = 3;
    nw_err err = {{0}};
    ck_assert(nw_query_connections(g_s, &q, collect, &x, &more, &err) == NW_OK);
    ck_assert_int_eq(x.n, 3);
    ck_assert_int_eq(more, 0);
}
END_TEST

/* A callback that runs the same query again from inside. */
static int nested(void *ctx, const nw_conn *c)
{
    int *count = ctx;
    nw_query q;
    nw_query_init(&q);
    q.pid = c->pid;
    ids inner = run(&q, NULL);
    ck_assert_int_ge(inner.n, 1);
    (*count)++;
    return 0;
}

START_TEST(test_nested_query)
{
    load_addresses();
    nw_query q;
    nw_query_init(&q);
    q.pid = 100;
    int count = 0;
    nw_err err = {{0}};
    ck_assert(nw_query_connections(g_s, &q, nested, &count, NULL, &err) == NW_OK);
    ck_assert_int_eq(count, 2);
}
END_TEST

START_TEST(test_who)
{
    const nw_time t = g_day0 + HOUR;
    const spec v[] = {
        {1, "WS01", 10, NW_PROTO_TCP, 4, 1, 2, "192.168.1.5", 1, "10.9.9.9", 443, t, t + 10, 100, 50},
        {2, "WS01", 10, NW_PROTO_TCP, 4, 1, 2, "192.168.1.5", 2, "10.9.9.9", 443, t + DAY, t + DAY + 5, 1000, 0},
        {3, "WS02", 20, NW_PROTO_TCP, 4, 1, 2, "192.168.1.6", 3, "10.9.9.9", 80, t + 5, t + 6, 500, 75},
        {4, "WS01", 30, NW_PROTO_UDP, 4, 1, 2, "192.168.1.5", 4, "10.9.9.8", 53, t + 7, t + 8, 500, 600},
        /* 10.9.9.9 as the LOCAL end: not "talked to" it. */
        {5, "WS09", 40, NW_PROTO_TCP, 4, 2, 2, "10.9.9.9", 443, "192.168.1.5", 5, t, t + 1, 9999, 9999},
        {6, "WS03", 50, NW_PROTO_TCP, 4, 1, 2, "192.168.1.7", 6, "10.9.9.9", 443, t + 3, t + 4, 575, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        put_spec(&v[i], v[i].first);
    finish_writing();

    nw_query q;
    nw_query_init(&q);
    set_cidr(&q, "10.9.9.9");
    nw_who_row *rows = NULL;
    size_t n = 0;
    nw_err err = {{0}};
    ck_assert_msg(nw_query_who(g_s, &q, &rows, &n, &err) == NW_OK, "%s", err.msg);
    ck_assert_uint_eq(n, 3);
    /* WS01/10 over two partitions: 2 connections, 1150 bytes. */
    ck_assert_str_eq(rows[0].host, "WS01");
    ck_assert_uint_eq(rows[0].pid, 10);
    ck_assert_uint_eq(rows[0].connections, 2);
    ck_assert_uint_eq(rows[0].bytes_sent, 1100);
    ck_assert_uint_eq(rows[0].bytes_received, 50);
    ck_assert_int_eq(rows[0].first_seen, t);
    ck_assert_int_eq(rows[0].last_seen, t + DAY + 5);
    /* 575 bytes each: ties go by host. */
    ck_assert_str_eq(rows[1].host, "WS02");
    ck_assert_uint_eq(rows[1].pid, 20);
    ck_assert_uint_eq(rows[1].connections, 1);
    ck_assert_uint_eq(rows[1].bytes_sent, 500);
    ck_assert_str_eq(rows[2].host, "WS03");
    free(rows);

    /* Other filters apply; the limit caps rows. */
    q.remote_port = 443;
    q.limit = 1;
    ck_assert(nw_query_who(g_s, &q, &rows, &n, &err) == NW_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(rows[0].pid, 10);
    free(rows);

    nw_query_init(&q);
    set_cidr(&q, "10.9.9.0/24");
    q.from = t + DAY;        /* only the day-1 connection of WS01 */
    ck_assert(nw_query_who(g_s, &q, &rows, &n, &err) == NW_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(rows[0].connections, 1);
    ck_assert_uint_eq(rows[0].bytes_sent, 1000);
    free(rows);

    nw_query_init(&q);
    set_cidr(&q, "172.16.0.0/12");
    ck_assert(nw_query_who(g_s, &q, &rows, &n, &err) == NW_OK);
    ck_assert_uint_eq(n, 0);
    free(rows);

    nw_query_init(&q);
    ck_assert_int_eq(nw_query_who(g_s, &q, &rows, &n, &err), NW_ERR_INVALID);
}
END_TEST

START_TEST(test_connection_by_id)
{
    load_addresses();
    nw_conn c;
    nw_err err = {{0}};
    ck_assert(nw_query_connection(g_s, 7, &c, &err) == NW_OK);
    ck_assert_str_eq(c.host, "WS02");
    ck_assert_uint_eq(c.remote_port, 22);
    ck_assert_int_eq(nw_query_connection(g_s, 999, &c, &err), NW_ERR_INVALID);
    ck_assert_str_eq(err.msg, "no connection 999");
    ck_assert_int_eq(nw_query_connection(g_s, 0, &c, &err), NW_ERR_INVALID);
}
END_TEST

/* Appends every detail line of EXPLAIN QUERY PLAN sql to out. */
static void query_plan(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    char text[NW_ERR_MAX * 8];
    snprintf(text, sizeof text, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, text, -1, &st, NULL) == SQLITE_OK, "%s",
                  sqlite3_errmsg(db));
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out + strlen(out), cap - strlen(out), "%s\n",
                 (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
}

static void assert_indexed(sqlite3 *db, int kind, const nw_query *q, const char *index)
{
    char sql[4096], plan[2048];
    ck_assert_int_eq(nw__query_sql(kind, q, sql, sizeof sql), 0);
    query_plan(db, sql, plan, sizeof plan);
    ck_assert_msg(strstr(plan, "SEARCH connections USING INDEX") != NULL ||
                      strstr(plan, "SEARCH connections USING COVERING INDEX") != NULL,
                  "%s\n%s", sql, plan);
    ck_assert_msg(strstr(plan, index) != NULL, "want %s:\n%s", index, plan);
    ck_assert_msg(strstr(plan, "SCAN connections") == NULL, "%s", plan);
}

START_TEST(test_query_plans_use_indexes)
{
    load_addresses();
    sqlite3 *db;
    char path[256];
    snprintf(path, sizeof path, "%s/p-2026-03-16.db", g_dir);
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);

    nw_query q;
    nw_query_init(&q);
    set_cidr(&q, "10.0.0.0/8");
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_remote");
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_local");
    assert_indexed(db, NW_QK_WHO, &q, "conn_remote");
    q.has_cursor = 1;
    q.limit = 10;
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_remote");

    nw_query_init(&q);
    q.port = 443;
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_lport");
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_rport");
    nw_query_init(&q);
    q.local_port = 443;
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_lport");
    nw_query_init(&q);
    q.remote_port = 443;
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_rport");

    nw_query_init(&q);
    q.pid = 100;
    q.host = "WS01";
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "conn_pid");

    nw_query_init(&q);
    q.from = g_day0;
    q.to = g_day0 + DAY;
    /* A time window picks its page from the index alone (covering), and
     * reads only the page's rows by rowid. */
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "COVERING INDEX conn_last_first");
    q.has_cursor = 1;
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "COVERING INDEX conn_last_first");
    q.to = NW_TIME_MAX;
    assert_indexed(db, NW_QK_CONNECTIONS, &q, "COVERING INDEX conn_last_first");
    char sql[4096];
    ck_assert_int_eq(nw__query_sql(NW_QK_CONNECTIONS, &q, sql, sizeof sql), 0);
    ck_assert_ptr_nonnull(strstr(sql, "WHERE id IN (SELECT id FROM connections"));
    q.pid = 100;           /* another filter: the plain text */
    ck_assert_int_eq(nw__query_sql(NW_QK_CONNECTIONS, &q, sql, sizeof sql), 0);
    ck_assert_ptr_null(strstr(sql, "WHERE id IN"));

    /* The writer's resume lookup is an exact index probe too. */
    char plan[2048];
    query_plan(db, SQL_CONN_RESUME, plan, sizeof plan);
    ck_assert_msg(strstr(plan, "USING INDEX conn_remote (remote_ip=? AND remote_port=?)"),
                  "%s", plan);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_read_while_writer_runs)
{
    /* A reader with its own store handle sees each commit of a writer that
     * keeps its partitions open (WAL). */
    nw_store *r;
    nw_err err = {{0}};
    nw_store_opts o = {NW_PART_DEFAULT, 0};
    ck_assert(nw_store_open(g_dir, &o, &r, &err) == NW_OK);
    nw_query q;
    nw_query_init(&q);
    for (int round = 1; round <= 3; round++) {
        spec sp = {round, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", round,
                   "10.0.0.2", 443, g_day0 + round * SEC, g_day0 + round * SEC, 1, 1};
        put_spec(&sp, sp.first);
        ck_assert(nw_writer_commit(g_w, &err) == NW_OK);
        ids x;
        memset(&x, 0, sizeof x);
        ck_assert(nw_query_connections(r, &q, collect, &x, NULL, &err) == NW_OK);
        ck_assert_int_eq(x.n, round);
    }
    nw_store_close(r);
}
END_TEST

/* Mid-query, the writer commits a row whose first_seen lies outside its
 * partition's catalog bounds as the query read them. */
static int write_during_query(void *ctx, const nw_conn *c)
{
    ids *x = ctx;
    if (x->n == 0) {
        spec late = {4, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 4, "10.0.0.2", 443,
                     g_day0 + 5 * HOUR, g_day0 + 5 * HOUR, 1, 1};
        put_spec(&late, g_day0 + 2 * DAY);
        nw_err err = {{0}};
        ck_assert(nw_writer_commit(g_w, &err) == NW_OK);
    }
    return collect(ctx, c);
}

START_TEST(test_commit_during_query_keeps_order)
{
    const spec v[] = {
        {1, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 1, "10.0.0.2", 443,
         g_day0 + 10 * HOUR, g_day0 + 10 * HOUR, 1, 1},
        {2, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 2, "10.0.0.2", 443,
         g_day0 + 11 * HOUR, g_day0 + 11 * HOUR, 1, 1},
        {3, "WS01", 1, NW_PROTO_TCP, 4, 1, 2, "10.0.0.1", 3, "10.0.0.2", 443,
         g_day0 + 2 * DAY + HOUR, g_day0 + 2 * DAY + HOUR, 1, 1},
    };
    for (size_t i = 0; i < 3; i++)
        put_spec(&v[i], v[i].first);
    nw_err err = {{0}};
    ck_assert(nw_writer_commit(g_w, &err) == NW_OK);

    nw_query q;
    nw_query_init(&q);
    ids x;
    memset(&x, 0, sizeof x);
    ck_assert(nw_query_connections(g_s, &q, write_during_query, &x, NULL, &err) == NW_OK);
    /* Row 4 (first_seen 05:00 on day 0, stored in day 2) would have come
     * after 10:00 and 11:00: it waits for the next query instead. */
    ck_assert_int_eq(x.n, 3);
    ck_assert_int_eq(x.v[0], 1);
    ck_assert_int_eq(x.v[1], 2);
    ck_assert_int_eq(x.v[2], 3);
    ids all = run(&q, NULL);
    ck_assert_int_eq(all.n, 4);
    ck_assert_int_eq(all.v[0], 4);
    ck_assert_int_eq(all.v[3], 3);
}
END_TEST

static Suite *query_suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("query");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_empty_store);
    tcase_add_test(tc, test_cidr);
    tcase_add_test(tc, test_ports_and_filters);
    tcase_add_test(tc, test_flow_filters);
    tcase_add_test(tc, test_time_window_and_pruning);
    tcase_add_test(tc, test_pagination_over_overlapping_partitions);
    tcase_add_test(tc, test_nested_query);
    tcase_add_test(tc, test_who);
    tcase_add_test(tc, test_connection_by_id);
    tcase_add_test(tc, test_query_plans_use_indexes);
    tcase_add_test(tc, test_read_while_writer_runs);
    tcase_add_test(tc, test_commit_during_query_keeps_order);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nw_check_run(query_suite());
}
