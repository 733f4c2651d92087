/*
 * test_query_rollup.c -- nw_query_who's roll-up (who_rollup, schema
 * version 2) against the scan it replaces and against a model of the
 * connections: randomized writes (many hosts, pids and addresses, rewrites
 * of the same id with growing bytes, first_seen pulled back, rows resumed
 * by a later writer session), CIDR ranges, host and pid filters, windows
 * that cover some partitions and cut others; the migration of version-1
 * files; the repair of a roll-up write that failed; the query plans.
 */
#include <check.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "netwho/query.h"
#include "netwho/store.h"
#include "netwho/writer.h"
#include "tests/unit/check_main.h"
/* White-box: the roll-up counters and switch of nw_store, the query texts. */
#include "../../../store/sql.h"
#include "../../../store/store_int.h"

#include "store_fixture.h"

#define HOUR (3600LL * NW_TICKS_PER_SEC)
#define MINUTE (60LL * NW_TICKS_PER_SEC)
#define SEC NW_TICKS_PER_SEC
#define MAX_CONNS 480
#define SPAN_HOURS 10       /* connections begin in [day0, day0 + 10 h)  */

static char g_dir[64];
static nw_time g_day0;     /* 2026-03-16T00:00:00Z */
static uint64_t g_rng;

/* ------------------------------------------------------------- helpers */


static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/nw-rollup-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    ck_assert_int_eq(nw_time_parse_rfc3339("2026-03-16T00:00:00Z", 20, &g_day0), 0);
    g_rng = 0x9e3779b97f4a7c15ULL;
}

static void teardown(void)
{
    rm_rf(g_dir);
}

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static int64_t rnd_in(int64_t n)
{
    return n > 0 ? (int64_t)(rnd() % (uint64_t)n) : 0;
}

static void file_exec(const char *name, const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static int64_t file_int(const char *name, const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    sqlite3 *db;
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* --------------------------------------------------------------- model */

/* Every connection as last written, by id (1..MAX_CONNS). */
typedef struct mconn {
    int used;
    nw_conn c;
    char host[NW_HOST_MAX];
} mconn;

static mconn g_m[MAX_CONNS + 1];
static int g_nconns;

/* WS01 and ws01 are two hosts to GROUP BY but one to the host filter. */
static const char *const k_hosts[] = {"WS01", "ws01", "WS02", "WS03", "SRV-DB01", "WS04"};
static const char *const k_rips[] = {
    "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.77", "10.0.1.5", "10.2.10.11",
    "192.168.5.5", "2001:db8::1", "2001:db8::53", "2001:db8:1::9", "fe80::1",
};
#define NHOSTS ((int)(sizeof k_hosts / sizeof k_hosts[0]))
#define NRIPS ((int)(sizeof k_rips / sizeof k_rips[0]))

static void put(nw_sink *sink, mconn *m)
{
    m->c.host = m->host;
    ck_assert_msg(sink->conn(sink->ctx, &m->c) == NW_OK, "write of id %lld failed",
                  (long long)m->c.id);
}

/* A new connection, written once. */
static void new_conn(nw_sink *sink, int64_t id)
{
    mconn *m = &g_m[id];
    memset(m, 0, sizeof *m);
    m->used = 1;
    snprintf(m->host, sizeof m->host, "%s", k_hosts[rnd_in(NHOSTS)]);
    nw_conn *c = &m->c;
    c->id = id;
    c->pid = (uint32_t)(100 + rnd_in(4));
    c->proto = rnd_in(2) ? NW_PROTO_TCP : NW_PROTO_UDP;
    c->remote_ip = fx_addr(k_rips[rnd_in(NRIPS)]);
    c->ip_version = nw_addr_is_v4(&c->remote_ip) ? 4 : 6;
    c->local_ip = fx_addr(c->ip_version == 4 ? "192.168.1.5" : "2001:db8::5");
    c->local_port = (uint16_t)(40000 + id);
    c->remote_port = rnd_in(3) ? 443 : 53;
    c->direction = (uint8_t)(1 + rnd_in(2));
    c->state = rnd_in(2) ? NW_STATE_ESTABLISHED : NW_STATE_CLOSED;
    c->first_seen = g_day0 + rnd_in(SPAN_HOURS * HOUR);
    /* Mostly short; a quarter stretch over later partitions. */
    c->last_seen = c->first_seen + (rnd_in(4) == 0 ? rnd_in(3 * HOUR) : rnd_in(2 * MINUTE));
    c->anchor = c->first_seen;
    c->bytes_sent = (uint64_t)rnd_in(100000);
    c->bytes_received = (uint64_t)rnd_in(100000);
    put(sink, m);
}

/* A rewrite as the tracker makes it: more bytes, later last_seen, and now
 * and then a late event pulling first_seen back (across a partition
 * boundary, sometimes); the anchor and the key never change. */
static void rewrite(nw_sink *sink, mconn *m)
{
    nw_conn *c = &m->c;
    if (rnd_in(4) == 0)
        c->first_seen -= rnd_in(30 * MINUTE);
    c->last_seen += rnd_in(4) == 0 ? rnd_in(2 * HOUR) : rnd_in(MINUTE);
    if (rnd_in(8) != 0) {      /* else: the same bytes again */
        c->bytes_sent += (uint64_t)rnd_in(50000);
        c->bytes_received += (uint64_t)rnd_in(50000);
    }
    if (rnd_in(3) == 0)
        c->state = NW_STATE_CLOSED;
    put(sink, m);
}

static int row_cmp_host_pid(const nw_who_row *x, const nw_who_row *y)
{
    int c = strcmp(x->host, y->host);
    if (c)
        return c;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int row_cmp(const void *a, const void *b)
{
    const nw_who_row *x = a, *y = b;
    uint64_t tx = x->bytes_sent + x->bytes_received, ty = y->bytes_sent + y->bytes_received;
    if (tx != ty)
        return tx > ty ? -1 : 1;
    return row_cmp_host_pid(x, y);
}

static int model_match(const nw_conn *c, const nw_query *q)
{
    if (nw_addr_cmp(&c->remote_ip, &q->ip_lo) < 0 || nw_addr_cmp(&c->remote_ip, &q->ip_hi) > 0)
        return 0;
    if (q->host && strcasecmp(q->host, c->host) != 0)
        return 0;
    if (q->pid >= 0 && c->pid != q->pid)
        return 0;
    if (q->port >= 0 && c->local_port != q->port && c->remote_port != q->port)
        return 0;
    if (q->local_port >= 0 && c->local_port != q->local_port)
        return 0;
    if (q->remote_port >= 0 && c->remote_port != q->remote_port)
        return 0;
    if (q->proto && c->proto != q->proto)
        return 0;
    if (q->direction >= 0 && c->direction != q->direction)
        return 0;
    if (q->state >= 0 && c->state != q->state)
        return 0;
    return c->first_seen < q->to && c->last_seen >= q->from;
}

/* The answer computed from the model; caller frees. */
static nw_who_row *model_who(const nw_query *q, size_t *n)
{
    nw_who_row *v = calloc(MAX_CONNS + 1, sizeof *v);
    size_t cnt = 0;
    for (int id = 1; id <= MAX_CONNS; id++) {
        const mconn *m = &g_m[id];
        if (!m->used || !model_match(&m->c, q))
            continue;
        nw_who_row key;
        memset(&key, 0, sizeof key);
        snprintf(key.host, sizeof key.host, "%s", m->host);
        key.pid = m->c.pid;
        size_t i = 0;
        while (i < cnt && row_cmp_host_pid(&v[i], &key) != 0)
            i++;
        if (i == cnt) {
            v[cnt] = key;
            v[cnt].first_seen = NW_TIME_MAX;
            v[cnt].last_seen = NW_TIME_MIN;
            cnt++;
        }
        v[i].connections++;
        v[i].bytes_sent += m->c.bytes_sent;
        v[i].bytes_received += m->c.bytes_received;
        if (m->c.first_seen < v[i].first_seen)
            v[i].first_seen = m->c.first_seen;
        if (m->c.last_seen > v[i].last_seen)
            v[i].last_seen = m->c.last_seen;
    }
    qsort(v, cnt, sizeof *v, row_cmp);
    if (q->limit > 0 && cnt > (size_t)q->limit)
        cnt = (size_t)q->limit;
    *n = cnt;
    return v;
}

static void describe(const nw_query *q, char *buf, size_t cap)
{
    char lo[64], hi[64];
    nw_addr_format(&q->ip_lo, 0, lo, sizeof lo);
    nw_addr_format(&q->ip_hi, 0, hi, sizeof hi);
    snprintf(buf, cap,
             "ip %s..%s host %s pid %lld port %d lport %d rport %d proto %d dir %d "
             "state %d from %+lld to %+lld (min after day0) limit %lld",
             lo, hi, q->host ? q->host : "-", (long long)q->pid, q->port, q->local_port,
             q->remote_port, q->proto, q->direction, q->state,
             q->from == NW_TIME_MIN ? -1LL : (long long)((q->from - g_day0) / MINUTE),
             q->to == NW_TIME_MAX ? -1LL : (long long)((q->to - g_day0) / MINUTE),
             (long long)q->limit);
}

static void assert_rows_eq(const nw_who_row *a, size_t na, const nw_who_row *b, size_t nb,
                           const char *what, const char *desc)
{
    ck_assert_msg(na == nb, "%s: %zu rows vs %zu [%s]", what, na, nb, desc);
    for (size_t i = 0; i < na; i++) {
        ck_assert_msg(strcmp(a[i].host, b[i].host) == 0 && a[i].pid == b[i].pid &&
                          a[i].connections == b[i].connections &&
                          a[i].bytes_sent == b[i].bytes_sent &&
                          a[i].bytes_received == b[i].bytes_received &&
                          a[i].first_seen == b[i].first_seen &&
                          a[i].last_seen == b[i].last_seen,
                      "%s: row %zu differs: %s/%u %llu conns %llu/%llu B %lld..%lld vs "
                      "%s/%u %llu conns %llu/%llu B %lld..%lld [%s]",
                      what, i, a[i].host, a[i].pid, (unsigned long long)a[i].connections,
                      (unsigned long long)a[i].bytes_sent,
                      (unsigned long long)a[i].bytes_received, (long long)a[i].first_seen,
                      (long long)a[i].last_seen, b[i].host, b[i].pid,
                      (unsigned long long)b[i].connections,
                      (unsigned long long)b[i].bytes_sent,
                      (unsigned long long)b[i].bytes_received, (long long)b[i].first_seen,
                      (long long)b[i].last_seen, desc);
    }
}

static int by_host_pid_key(const void *a, const void *b)
{
    const nw_who_row *x = a, *y = b;
    int c = strcmp(x->host, y->host);
    if (c)
        return c;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/*
 * nw_query_who_page, page after page with a random page size, from the
 * roll-up and by scanning: the pages together are every group of q, in
 * (host, pid) order, each page full but the last, more set on all but it.
 */
static void check_pages(nw_store *s, const nw_query *q0, const char *desc)
{
    nw_err err = {{0}};
    nw_query all = *q0;
    all.limit = 0;
    nw_who_row *full = NULL;
    size_t nf = 0;
    ck_assert_msg(nw_query_who(s, &all, &full, &nf, &err) == NW_OK, "%s", err.msg);
    if (nf > 1)
        qsort(full, nf, sizeof *full, by_host_pid_key);
    for (int no_roll = 0; no_roll < 2; no_roll++) {
        s->who_no_rollup = no_roll;
        nw_query q = *q0;
        q.limit = 1 + rnd_in(5);
        nw_who_row *got = malloc((nf + 1) * sizeof *got);
        ck_assert_ptr_nonnull(got);
        size_t ng = 0;
        char host[NW_HOST_MAX];
        for (size_t pages = 0;; pages++) {
            ck_assert_msg(pages <= nf + 1, "paging does not end [%s]", desc);
            nw_who_row *r = NULL;
            size_t n = 0;
            int more = -1;
            ck_assert_msg(nw_query_who_page(s, &q, &r, &n, &more, &err) == NW_OK, "%s",
                          err.msg);
            ck_assert_msg(ng + n <= nf, "pages hold more rows than the query [%s]", desc);
            memcpy(got + ng, r, n * sizeof *r);
            ng += n;
            if (more) {
                ck_assert_int_eq(n, q.limit);
                snprintf(host, sizeof host, "%s", r[n - 1].host);
                q.has_who_cursor = 1;
                q.who_cursor_host = host;
                q.who_cursor_pid = r[n - 1].pid;
            }
            free(r);
            if (!more)
                break;
        }
        assert_rows_eq(got, ng, full, nf, no_roll ? "pages (scan) vs all" : "pages vs all",
                       desc);
        free(got);
    }
    s->who_no_rollup = 0;
    free(full);
}

/* Partitions answered each way, summed over the checks so far. */
typedef struct tally {
    uint64_t rollup, scan, mixed, queries;
} tally;

/*
 * Runs q with the roll-up allowed and with it disabled, and checks both
 * against the model.  Returns how many partitions the roll-up answered.
 */
static uint64_t check_who(nw_store *s, const nw_query *q, tally *t)
{
    char desc[512];
    describe(q, desc, sizeof desc);
    nw_err err = {{0}};
    nw_who_row *r1 = NULL, *r2 = NULL;
    size_t n1 = 0, n2 = 0, nm = 0;
    uint64_t roll0 = s->who_rollup_parts, scan0 = s->who_scan_parts;
    s->who_no_rollup = 0;
    ck_assert_msg(nw_query_who(s, q, &r1, &n1, &err) == NW_OK, "%s", err.msg);
    uint64_t roll = s->who_rollup_parts - roll0, scan = s->who_scan_parts - scan0;
    s->who_no_rollup = 1;
    ck_assert_msg(nw_query_who(s, q, &r2, &n2, &err) == NW_OK, "%s", err.msg);
    s->who_no_rollup = 0;
    nw_who_row *rm = model_who(q, &nm);
    assert_rows_eq(r1, n1, r2, n2, "roll-up vs scan", desc);
    assert_rows_eq(r2, n2, rm, nm, "scan vs model", desc);
    check_pages(s, q, desc);
    free(r1);
    free(r2);
    free(rm);
    if (t) {
        t->rollup += roll;
        t->scan += scan;
        t->mixed += roll > 0 && scan > 0;
        t->queries++;
    }
    return roll;
}

static const char *const k_cidrs[] = {
    "10.0.0.1", "10.0.0.3", "10.2.10.11", "10.0.0.0/24", "10.0.0.0/30", "10.0.0.0/8",
    "0.0.0.0/0", "2001:db8::/32", "2001:db8::53", "::/0", "192.168.0.0/16", "172.16.0.0/12",
};

/* A window bound: open, on a partition (hour) boundary, or inside one. */
static nw_time rnd_bound(int upper)
{
    switch (rnd_in(4)) {
    case 0: return upper ? NW_TIME_MAX : NW_TIME_MIN;
    case 1: return g_day0 + (rnd_in(SPAN_HOURS + 4) - 1) * HOUR;
    default: return g_day0 + (rnd_in(SPAN_HOURS + 4) - 1) * HOUR + 1 + rnd_in(HOUR - 1);
    }
}

/* A random query the roll-up may answer (ip, host, pid, window, limit). */
static void rnd_query(nw_query *q)
{
    nw_query_init(q);
    q->has_ip = 1;
    const char *cidr = k_cidrs[rnd_in((int64_t)(sizeof k_cidrs / sizeof k_cidrs[0]))];
    ck_assert_int_eq(nw_cidr_parse(cidr, &q->ip_lo, &q->ip_hi, NULL), 0);
    switch (rnd_in(5)) {
    case 0: q->host = "WS01"; break;   /* also ws01: NOCASE */
    case 1: q->host = k_hosts[rnd_in(NHOSTS)]; break;
    default: break;
    }
    if (rnd_in(3) == 0)
        q->pid = 100 + rnd_in(4);
    if (rnd_in(3) != 0) {
        q->from = rnd_bound(0);
        q->to = rnd_bound(1);
        if (q->from >= q->to && rnd_in(2))
            q->to = NW_TIME_MAX;
    }
    if (rnd_in(5) == 0)
        q->limit = 1 + rnd_in(4);
}

/* Many random queries: the roll-up must equal the scan and the model, and
 * both paths (and queries mixing them) must have been taken.  all_v2: every
 * partition has its roll-up, so an unfiltered query never scans. */
static void check_many_(nw_store *s, int n, int all_v2)
{
    tally t = {0};
    nw_query q;
    for (int i = 0; i < n; i++) {
        rnd_query(&q);
        check_who(s, &q, &t);
    }
    /* The whole store, unfiltered: every partition from the roll-up. */
    nw_query_init(&q);
    q.has_ip = 1;
    ck_assert_int_eq(nw_cidr_parse("::/0", &q.ip_lo, &q.ip_hi, NULL), 0);
    tally whole = {0};
    ck_assert_uint_gt(check_who(s, &q, &whole), 0);
    if (all_v2)
        ck_assert_uint_eq(whole.scan, 0);
    ck_assert_msg(t.rollup > 0 && t.scan > 0 && t.mixed > 0,
                  "roll-up %llu, scan %llu, mixed %llu partitions over %llu queries",
                  (unsigned long long)t.rollup, (unsigned long long)t.scan,
                  (unsigned long long)t.mixed, (unsigned long long)t.queries);

    /* Any other filter scans, and still agrees. */
    for (int i = 0; i < n / 4; i++) {
        rnd_query(&q);
        switch (i % 6) {
        case 0: q.port = 443; break;
        case 1: q.remote_port = 53; break;
        case 2: q.local_port = (int)(40000 + 1 + rnd_in(MAX_CONNS)); break;
        case 3: q.proto = NW_PROTO_UDP; break;
        case 4: q.direction = NW_DIR_INBOUND; break;
        default: q.state = NW_STATE_CLOSED; break;
        }
        ck_assert_uint_eq(check_who(s, &q, NULL), 0);
    }
}

#define check_many(s, n) check_many_((s), (n), 1)

/* Writes ids 1..n, then rewrites random ones in rounds, with commits in
 * between (and some rows left uncommitted until the caller commits). */
static void write_random(nw_writer *w, nw_sink *sink, int n)
{
    nw_err err = {{0}};
    int order[MAX_CONNS];
    for (int i = 0; i < n; i++)
        order[i] = i + 1;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rnd_in(i + 1), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    for (int i = 0; i < n; i++) {
        new_conn(sink, order[i]);
        /* Rewrites interleaved with first writes, in the same batch. */
        if (rnd_in(4) == 0) {
            mconn *m = &g_m[order[rnd_in(i + 1)]];
            rewrite(sink, m);
        }
        if (rnd_in(64) == 0)
            ck_assert_msg(nw_writer_commit(w, &err) == NW_OK, "%s", err.msg);
    }
    g_nconns = n;
    for (int round = 0; round < 3; round++) {
        ck_assert_msg(nw_writer_commit(w, &err) == NW_OK, "%s", err.msg);
        for (int i = 0; i < n / 3; i++)
            rewrite(sink, &g_m[1 + rnd_in(n)]);
    }
    ck_assert_msg(nw_writer_commit(w, &err) == NW_OK, "%s", err.msg);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_rollup_equals_scan_randomized)
{
    memset(g_m, 0, sizeof g_m);
    nw_store *s = fx_store_open(g_dir, NW_PART_HOUR, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    write_random(w, &sink, MAX_CONNS - 80);

    /* While the writer runs (reading its committed state). */
    check_many(s, 300);

    /* After close, from the same and from a fresh store handle. */
    fx_writer_close(w);
    check_many(s, 150);
    nw_store_close(s);
    s = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    check_many(s, 150);

    /* A second writer session: rows resumed through the sink (the tracker's
     * path: the open row is read back and continued), rewrites of old ids
     * (the old bytes come from the file, not from this session), new ids. */
    w = fx_writer_open(s, 0, &sink);
    int resumed = 0;
    for (int id = 1; id <= g_nconns; id++) {
        mconn *m = &g_m[id];
        if (m->c.state != NW_STATE_ESTABLISHED || rnd_in(2))
            continue;
        nw_conn out;
        int r = sink.resume(sink.ctx, &m->c, m->c.last_seen, &out);
        ck_assert_int_eq(r, 1);
        ck_assert_int_eq(out.id, id);       /* local ports are unique */
        ck_assert_uint_eq(out.bytes_sent, m->c.bytes_sent);
        ck_assert_int_eq(out.anchor, m->c.anchor);
        out.last_seen += 10 * MINUTE;
        out.bytes_sent += 777;
        out.bytes_received += 1;
        out.state = NW_STATE_CLOSED;
        ck_assert(sink.conn(sink.ctx, &out) == NW_OK);
        m->c = out;                          /* host is reset by put() */
        m->c.host = m->host;
        resumed++;
    }
    ck_assert_int_gt(resumed, 5);
    for (int i = 0; i < 60; i++)
        rewrite(&sink, &g_m[1 + rnd_in(g_nconns)]);
    for (int id = g_nconns + 1; id <= MAX_CONNS; id++)
        new_conn(&sink, id);
    g_nconns = MAX_CONNS;
    fx_writer_close(w);
    check_many(s, 300);

    /* The roll-up holds exactly one row per (remote_ip, host, pid). */
    nw_partition_info *parts = NULL;
    size_t np = 0;
    nw_err err = {{0}};
    ck_assert(nw_store_partitions(s, &parts, &np, &err) == NW_OK);
    ck_assert_uint_gt(np, 8);
    int64_t total = 0;
    for (size_t i = 0; i < np; i++) {
        total += file_int(parts[i].name, "SELECT coalesce(sum(connections), 0) FROM who_rollup");
        ck_assert_int_eq(
            file_int(parts[i].name, "SELECT count(*) FROM who_rollup"),
            file_int(parts[i].name,
                     "SELECT count(*) FROM (SELECT 1 FROM connections"
                     " GROUP BY remote_ip, host, pid)"));
    }
    ck_assert_int_eq(total, MAX_CONNS);
    free(parts);
    nw_store_close(s);
}
END_TEST

/* A store written by netwho 1: no roll-up tables, user_version 1. */
static void make_v1(nw_partition_info **parts, size_t *np)
{
    nw_store *s = fx_store_open(g_dir, NW_PART_HOUR, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    write_random(w, &sink, 300);
    fx_writer_close(w);
    nw_err err = {{0}};
    ck_assert(nw_store_partitions(s, parts, np, &err) == NW_OK);
    nw_store_close(s);
    for (size_t i = 0; i < *np; i++)
        file_exec((*parts)[i].name, "DROP TABLE who_rollup; PRAGMA user_version=1");
    file_exec("catalog.db", "PRAGMA user_version=1");
}

START_TEST(test_v1_store_migrated)
{
    memset(g_m, 0, sizeof g_m);
    nw_partition_info *parts = NULL;
    size_t np = 0;
    make_v1(&parts, &np);
    ck_assert_uint_gt(np, 4);

    /* A reader of version-1 files scans, and keeps its handles. */
    nw_store *r = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    tally t = {0};
    nw_query q;
    for (int i = 0; i < 100; i++) {
        rnd_query(&q);
        ck_assert_uint_eq(check_who(r, &q, &t), 0);
    }
    ck_assert_uint_gt(t.scan, 0);
    ck_assert_int_eq(file_int("catalog.db", "PRAGMA user_version"), 1);

    /* The writer upgrades the catalog on open, and each partition it opens:
     * here the one of a rewritten connection and the one of a new one. */
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    ck_assert_int_eq(file_int("catalog.db", "PRAGMA user_version"), NW_SCHEMA_VERSION);
    mconn *old = &g_m[1];
    rewrite(&sink, old);
    char upgraded[2][NW_PART_NAME_MAX];
    nw_time st0, end0;
    nw_err err = {{0}};
    ck_assert(nw__part_name(NW_PART_HOUR, old->c.anchor, upgraded[0], &st0, &end0, &err) ==
              NW_OK);
    int64_t fresh = 0;
    for (int64_t id = 301; id <= MAX_CONNS && !fresh; id++) {
        new_conn(&sink, id);
        ck_assert(nw__part_name(NW_PART_HOUR, g_m[id].c.anchor, upgraded[1], &st0, &end0,
                                &err) == NW_OK);
        if (strcmp(upgraded[0], upgraded[1]) != 0)
            fresh = id;
    }
    ck_assert_int_gt(fresh, 0);
    fx_writer_close(w);
    nw_store_close(s);
    size_t n2 = 0, n1 = 0;
    for (size_t i = 0; i < np; i++) {
        int64_t v = file_int(parts[i].name, "PRAGMA user_version");
        int was_opened = !strcmp(parts[i].name, upgraded[0]) ||
                         !strcmp(parts[i].name, upgraded[1]);
        /* Resume probes are not made here, so only written partitions (and
         * perhaps partitions created meanwhile) are upgraded. */
        ck_assert_int_eq(v, was_opened ? NW_SCHEMA_VERSION : 1);
        if (v == NW_SCHEMA_VERSION)
            n2++;
        else
            n1++;
    }
    ck_assert_uint_ge(n2, 1);
    ck_assert_uint_gt(n1, 0);

    /* The reader with its old handles now uses the upgraded files' roll-ups
     * and still scans the others: same answers. */
    check_many_(r, 200, 0);
    nw_store_close(r);

    /* Every partition upgraded (a writer opens each by writing into it), and
     * the migration run twice over (version 1 again, table kept) rebuilds
     * the same roll-up. */
    s = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    w = fx_writer_open(s, 0, &sink);
    for (int id = 1; id <= g_nconns; id++)
        if (rnd_in(2))
            rewrite(&sink, &g_m[id]);
    for (size_t i = 0; i < np; i++) {
        /* One rewrite per partition opens each one. */
        for (int id = 1; id <= g_nconns; id++) {
            char name[NW_PART_NAME_MAX];
            ck_assert(nw__part_name(NW_PART_HOUR, g_m[id].c.anchor, name, &st0, &end0,
                                    &err) == NW_OK);
            if (!strcmp(name, parts[i].name)) {
                rewrite(&sink, &g_m[id]);
                break;
            }
        }
    }
    fx_writer_close(w);
    for (size_t i = 0; i < np; i++)
        ck_assert_int_eq(file_int(parts[i].name, "PRAGMA user_version"), NW_SCHEMA_VERSION);
    check_many(s, 150);
    nw_store_close(s);
    file_exec(parts[0].name, "PRAGMA user_version=1");
    s = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    w = fx_writer_open(s, 0, &sink);
    rewrite(&sink, &g_m[1]);
    for (int id = 1; id <= g_nconns; id++) {
        char name[NW_PART_NAME_MAX];
        ck_assert(nw__part_name(NW_PART_HOUR, g_m[id].c.anchor, name, &st0, &end0, &err) ==
                  NW_OK);
        if (!strcmp(name, parts[0].name)) {
            rewrite(&sink, &g_m[id]);
            break;
        }
    }
    fx_writer_close(w);
    ck_assert_int_eq(file_int(parts[0].name, "PRAGMA user_version"), NW_SCHEMA_VERSION);
    check_many(s, 150);
    nw_store_close(s);
    free(parts);
}
END_TEST

/* nw_store_migrate (netwhod's start) brings every partition up at once,
 * also the days no writer opens again; answers stay the same, a second run
 * finds nothing to do, and it waits for no one: another writer's lock is
 * NW_ERR_BUSY. */
START_TEST(test_v1_store_migrated_at_once)
{
    memset(g_m, 0, sizeof g_m);
    nw_partition_info *parts = NULL;
    size_t np = 0;
    make_v1(&parts, &np);
    ck_assert_uint_gt(np, 4);
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 0);
    size_t migrated = 0, failed = 0;
    int oldest = 0;
    nw_err err = {{0}};

    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    ck_assert_int_eq(nw_store_migrate(s, &migrated, &failed, &oldest, &err), NW_ERR_BUSY);
    fx_writer_close(w);
    for (size_t i = 0; i < np; i++)
        ck_assert_int_eq(file_int(parts[i].name, "PRAGMA user_version"), 1);

    ck_assert_msg(nw_store_migrate(s, &migrated, &failed, &oldest, &err) == NW_OK, "%s",
                  err.msg);
    ck_assert_uint_eq(migrated, np);
    ck_assert_uint_eq(failed, 0);
    ck_assert_int_eq(oldest, 1);
    for (size_t i = 0; i < np; i++)
        ck_assert_int_eq(file_int(parts[i].name, "PRAGMA user_version"), NW_SCHEMA_VERSION);
    check_many(s, 150);

    ck_assert(nw_store_migrate(s, &migrated, &failed, &oldest, &err) == NW_OK);
    ck_assert_uint_eq(migrated, 0);
    ck_assert_int_eq(oldest, NW_SCHEMA_VERSION);

    /* A version-2 file (window index only) next to a damaged one: the
     * first is upgraded, the second left to the store check. */
    file_exec(parts[0].name, "PRAGMA user_version=2");
    char *bad = malloc(strlen(g_dir) + NW_PART_NAME_MAX + 2);
    ck_assert_ptr_nonnull(bad);
    sprintf(bad, "%s/%s", g_dir, parts[1].name);
    FILE *f = fopen(bad, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite("this is no SQLite header", 1, 24, f), 24);
    fclose(f);
    free(bad);
    ck_assert(nw_store_migrate(s, &migrated, &failed, &oldest, &err) == NW_OK);
    ck_assert_uint_eq(migrated, 1);
    ck_assert_uint_eq(failed, 0);
    ck_assert_int_eq(oldest, 2);
    ck_assert_int_eq(file_int(parts[0].name, "PRAGMA user_version"), NW_SCHEMA_VERSION);
    nw_store_close(s);
    free(parts);
}
END_TEST

START_TEST(test_failed_rollup_write_repaired)
{
    /* A roll-up write that fails (here: a trigger refusing updates of one
     * key's row) is made at the commit, after its connections': the commit
     * then recomputes the roll-up from the connections instead. */
    memset(g_m, 0, sizeof g_m);
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    nw_err err = {{0}};
    new_conn(&sink, 1);
    ck_assert(nw_writer_commit(w, &err) == NW_OK);
    char name[NW_PART_NAME_MAX];
    nw_time a, b;
    ck_assert(nw__part_name(NW_PART_DAY, g_m[1].c.anchor, name, &a, &b, &err) == NW_OK);
    mconn *m;
    g_m[2] = g_m[1];
    g_m[3] = g_m[1];
    snprintf(g_m[2].host, sizeof g_m[2].host, "BOOM");
    snprintf(g_m[3].host, sizeof g_m[3].host, "BOOM");
    g_m[2].c.id = 2;
    g_m[3].c.id = 3;
    g_m[3].c.local_port++;
    g_m[3].c.bytes_sent += 5;
    put(&sink, &g_m[2]);                   /* a new roll-up row */
    ck_assert(nw_writer_commit(w, &err) == NW_OK);
    file_exec(name, "CREATE TRIGGER boom BEFORE UPDATE ON who_rollup"
                    " WHEN NEW.host = 'BOOM' BEGIN SELECT RAISE(ABORT, 'boom'); END");
    m = &g_m[3];
    m->c.host = m->host;
    ck_assert_int_eq(sink.conn(sink.ctx, &m->c), NW_OK);   /* its roll-up waits */
    new_conn(&sink, 4);
    fx_writer_close(w);
    /* ... and the catalog counts it. */
    nw_partition_info *parts = NULL;
    size_t np = 0;
    ck_assert(nw_store_partitions(s, &parts, &np, &err) == NW_OK);
    uint64_t total = 0;
    for (size_t i = 0; i < np; i++)
        total += parts[i].connections;
    ck_assert_uint_eq(total, 4);
    free(parts);
    /* Connection 3 was written (the error came after it): the roll-up,
     * rebuilt at commit, counts it. */
    ck_assert_int_eq(file_int(name, "SELECT count(*) FROM connections WHERE host = 'BOOM'"),
                     2);
    ck_assert_int_eq(
        file_int(name, "SELECT connections FROM who_rollup WHERE host = 'BOOM'"), 2);
    nw_query q;
    nw_query_init(&q);
    q.has_ip = 1;
    ck_assert_int_eq(nw_cidr_parse("::/0", &q.ip_lo, &q.ip_hi, NULL), 0);
    ck_assert_uint_gt(check_who(s, &q, NULL), 0);
    q.host = "boom";
    ck_assert_uint_gt(check_who(s, &q, NULL), 0);
    nw_store_close(s);
}
END_TEST

/* Appends every detail line of EXPLAIN QUERY PLAN sql to out. */
static void query_plan(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    char text[4096 + 32];
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

/* A range is a range search of the primary key; one address an equality
 * on its first column, and then no GROUP BY (no temporary b-tree). */
static void assert_rollup_search(sqlite3 *db, const nw_query *q)
{
    char sql[4096], plan[2048];
    int one = nw_addr_cmp(&q->ip_lo, &q->ip_hi) == 0;
    ck_assert_int_eq(nw__query_sql(NW_QK_WHO_ROLLUP, q, sql, sizeof sql), 0);
    ck_assert_ptr_nonnull(strstr(sql, "FROM who_rollup"));
    query_plan(db, sql, plan, sizeof plan);
    ck_assert_msg(strstr(plan, one ? "SEARCH who_rollup USING PRIMARY KEY (remote_ip=?)"
                                   : "SEARCH who_rollup USING PRIMARY KEY (remote_ip>? AND "
                                     "remote_ip<?)") != NULL,
                  "%s\n%s", sql, plan);
    ck_assert_msg(strstr(plan, "SCAN who_rollup") == NULL, "%s", plan);
    if (one)
        ck_assert_msg(strstr(plan, "TEMP B-TREE") == NULL && !strstr(sql, "GROUP BY"),
                      "%s\n%s", sql, plan);
}

START_TEST(test_rollup_query_plan)
{
    memset(g_m, 0, sizeof g_m);
    nw_store *s = fx_store_open(g_dir, NW_PART_DEFAULT, 1);
    nw_sink sink;
    nw_writer *w = fx_writer_open(s, 0, &sink);
    for (int id = 1; id <= 50; id++)
        new_conn(&sink, id);
    fx_writer_close(w);
    nw_store_close(s);

    char path[256];
    snprintf(path, sizeof path, "%s/p-2026-03-16.db", g_dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* ANALYZE-free, as netwho's files are. */
    nw_query q;
    nw_query_init(&q);
    q.has_ip = 1;
    ck_assert_int_eq(nw_cidr_parse("10.0.0.0/8", &q.ip_lo, &q.ip_hi, NULL), 0);
    assert_rollup_search(db, &q);
    q.host = "WS01";
    assert_rollup_search(db, &q);
    q.pid = 100;
    assert_rollup_search(db, &q);
    q.host = NULL;
    assert_rollup_search(db, &q);
    ck_assert_int_eq(nw_cidr_parse("10.0.0.1", &q.ip_lo, &q.ip_hi, NULL), 0);
    assert_rollup_search(db, &q);
    char sql[4096], plan[2048];
    q.host = "ws01";
    assert_rollup_search(db, &q);
    q.pid = -1;
    assert_rollup_search(db, &q);
    /* A page after a who cursor is a range of the key, in key order: no
     * sort, and SQLite stops after the page. */
    q.host = NULL;
    q.has_who_cursor = 1;
    q.who_cursor_host = "WS01";
    q.who_cursor_pid = 100;
    ck_assert_int_eq(nw__query_sql(NW_QK_WHO_ROLLUP, &q, sql, sizeof sql), 0);
    query_plan(db, sql, plan, sizeof plan);
    ck_assert_msg(strstr(plan, "SEARCH who_rollup USING PRIMARY KEY "
                               "(remote_ip=? AND (host,pid)>(?,?))") &&
                      !strstr(plan, "TEMP B-TREE"),
                  "%s\n%s", sql, plan);
    q.has_who_cursor = 0;
    ck_assert_int_eq(nw_cidr_parse("10.0.0.0/8", &q.ip_lo, &q.ip_hi, NULL), 0);
    /* A window is not in the text (the partition is covered or scanned). */
    q.from = g_day0;
    q.to = g_day0 + 24 * HOUR;
    ck_assert_int_eq(nw__query_sql(NW_QK_WHO_ROLLUP, &q, sql, sizeof sql), 0);
    ck_assert_ptr_null(strstr(sql, "first_seen <"));
    assert_rollup_search(db, &q);
    /* Other filters cannot be answered from the roll-up. */
    q.remote_port = 443;
    ck_assert_int_eq(nw__query_sql(NW_QK_WHO_ROLLUP, &q, sql, sizeof sql), -1);
    nw_query_init(&q);
    q.has_ip = 1;
    q.proto = NW_PROTO_TCP;
    ck_assert_int_eq(nw__query_sql(NW_QK_WHO_ROLLUP, &q, sql, sizeof sql), -1);

    /* The writer's lookup of a rewrite's old bytes is a rowid probe. */
    query_plan(db, SQL_CONN_OLD_BYTES, plan, sizeof plan);
    ck_assert_msg(strstr(plan, "SEARCH connections USING INTEGER PRIMARY KEY (rowid=?)"),
                  "%s", plan);
    /* Resume looks a tuple up by its remote end, or by the local port when
     * that is the ephemeral end (a server's address and port has a row per
     * client flow). */
    query_plan(db, SQL_CONN_RESUME, plan, sizeof plan);
    ck_assert_msg(strstr(plan, "USING INDEX conn_remote (remote_ip=? AND remote_port=?)"), "%s",
                  plan);
    query_plan(db, SQL_CONN_RESUME_LPORT, plan, sizeof plan);
    ck_assert_msg(strstr(plan, "USING INDEX conn_lport (local_port=?)"), "%s", plan);
    sqlite3_close(db);
}
END_TEST

static Suite *rollup_suite(void)
{
    Suite *s = suite_create("query_rollup");
    TCase *tc = tcase_create("rollup");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rollup_equals_scan_randomized);
    tcase_add_test(tc, test_v1_store_migrated);
    tcase_add_test(tc, test_v1_store_migrated_at_once);
    tcase_add_test(tc, test_failed_rollup_write_repaired);
    tcase_add_test(tc, test_rollup_query_plan);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nw_check_run(rollup_suite());
}
