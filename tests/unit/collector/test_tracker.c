/* test_tracker.c -- folding rules of tracker.h against hand-computed answers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/tracker.h"
#include "tests/unit/check_main.h"

#define SEC NW_TICKS_PER_SEC
#define T0 (1773620496LL * SEC)   /* 2026-03-16T00:21:36Z */
#define MAXC 4096

/* A sink that keeps the last write of every id, like the store does. */
typedef struct cap {
    nw_conn conns[MAXC];
    char hosts[MAXC][NW_HOST_MAX];
    int nconns, writes;
    nw_transfer xfers[MAXC];
    int nxfers;
    nw_failure fails[64];
    char fail_hosts[64][NW_HOST_MAX];
    int nfails;
    int64_t next_id;
    int resumes_asked;
} cap;

static nw_status cap_conn(void *ctx, const nw_conn *c)
{
    cap *k = ctx;
    k->writes++;
    for (int i = 0; i < k->nconns; i++)
        if (k->conns[i].id == c->id) {
            k->conns[i] = *c;
            k->conns[i].host = k->hosts[i];   /* c->host dies with the call */
            return NW_OK;
        }
    ck_assert_int_lt(k->nconns, MAXC);
    strcpy(k->hosts[k->nconns], c->host);
    k->conns[k->nconns] = *c;
    k->conns[k->nconns].host = k->hosts[k->nconns];
    k->nconns++;
    return NW_OK;
}

static nw_status cap_xfer(void *ctx, const nw_transfer *x)
{
    cap *k = ctx;
    /* Like the store's upsert: same (conn, time) adds up. */
    for (int i = 0; i < k->nxfers; i++)
        if (k->xfers[i].conn_id == x->conn_id && k->xfers[i].time == x->time) {
            k->xfers[i].bytes_sent += x->bytes_sent;
            k->xfers[i].bytes_received += x->bytes_received;
            k->xfers[i].bytes_retransmitted += x->bytes_retransmitted;
            k->xfers[i].send_events += x->send_events;
            k->xfers[i].receive_events += x->receive_events;
            k->xfers[i].retransmit_events += x->retransmit_events;
            return NW_OK;
        }
    k->xfers[k->nxfers++] = *x;
    return NW_OK;
}

static nw_status cap_fail(void *ctx, const nw_failure *f)
{
    cap *k = ctx;
    /* f->host is valid during the call only: keep a copy. */
    strcpy(k->fail_hosts[k->nfails], f->host);
    k->fails[k->nfails] = *f;
    k->fails[k->nfails].host = k->fail_hosts[k->nfails];
    k->nfails++;
    return NW_OK;
}

/* Resumes from what was captured: newest open row with the key. */
static int cap_resume(void *ctx, const nw_conn *key, nw_time since, nw_conn *out)
{
    cap *k = ctx;
    k->resumes_asked++;
    for (int i = k->nconns - 1; i >= 0; i--) {
        const nw_conn *c = &k->conns[i];
        if (strcmp(c->host, key->host) == 0 && c->pid == key->pid &&
            c->proto == key->proto && c->local_port == key->local_port &&
            c->remote_port == key->remote_port &&
            !memcmp(&c->local_ip, &key->local_ip, 16) &&
            !memcmp(&c->remote_ip, &key->remote_ip, 16) && c->last_seen >= since &&
            (c->state == NW_STATE_ATTEMPTED || c->state == NW_STATE_ESTABLISHED)) {
            *out = *c;
            return 1;
        }
    }
    return 0;
}

static int64_t cap_ids(void *ctx, int64_t n)
{
    cap *k = ctx;
    int64_t first = k->next_id;
    k->next_id += n;
    return first;
}

static cap *K;
static nw_tracker *T;

static void start(const nw_tracker_opts *o)
{
    K = calloc(1, sizeof *K);
    K->next_id = 1;
    nw_sink s = {.ctx = K, .conn = cap_conn, .transfer = cap_xfer, .failure = cap_fail,
                 .resume = cap_resume, .reserve_ids = cap_ids};
    T = nw_tracker_new(o, &s);
    ck_assert_ptr_nonnull(T);
}

static void finish(void)
{
    nw_tracker_free(T);
    free(K);
}

/* An event on host H-1 between 10.0.0.5:lport and 203.0.113.9:rport. */
static nw_event ev(int id, nw_time t, uint32_t pid, int lport, int rport, uint32_t size)
{
    nw_event e;
    memset(&e, 0, sizeof e);
    e.time = t;
    e.event_id = (uint16_t)id;
    int base = id >= 42 ? (id >= 58 ? 58 : 42) : (id >= 26 ? 26 : 10);
    static const int tcp_kind[] = {NW_EV_SEND, NW_EV_RECV, NW_EV_CONNECT, NW_EV_CLOSE,
                                   NW_EV_RETRANSMIT, NW_EV_ACCEPT, NW_EV_RECONNECT,
                                   NW_EV_FAIL, NW_EV_COPY};
    e.kind = (uint8_t)(base >= 42 ? (id - base == 0 ? NW_EV_SEND : NW_EV_RECV)
                                  : tcp_kind[id - base]);
    e.proto = base >= 42 ? NW_PROTO_UDP : NW_PROTO_TCP;
    e.ip_version = (base == 26 || base == 58) ? 6 : 4;
    e.pid = pid;
    e.size = size;
    nw_addr_parse("10.0.0.5", 8, 4, &e.local_ip, NULL);
    nw_addr_parse("203.0.113.9", 11, 4, &e.remote_ip, NULL);
    e.local_port = (uint16_t)lport;
    e.remote_port = (uint16_t)rport;
    if (e.kind == NW_EV_CONNECT || e.kind == NW_EV_ACCEPT) {
        e.has_tcp_opts = 1;
        e.mss = 1460;
        e.sackopt = 1;
        e.wsopt = 1;
        e.rcvwin = 263520;
        e.rcvwinscale = 8;
        e.sndwinscale = 8;
    }
    strcpy(e.host, "H-1");
    return e;
}

static void feed(nw_event e) { ck_assert_int_eq(nw_tracker_feed(T, &e), NW_OK); }
static void flush(void) { ck_assert_int_eq(nw_tracker_flush(T), NW_OK); }

static const nw_conn *only_conn(void)
{
    ck_assert_int_eq(K->nconns, 1);
    return &K->conns[0];
}

START_TEST(close_before_accept_is_one_inbound_closed_connection)
{
    start(NULL);
    /* The seed's order: the close (13) arrives before the accept (15). */
    feed(ev(13, T0 + 13, 4, 5985, 51201, 0));
    feed(ev(15, T0, 4, 5985, 51201, 0));
    flush();
    const nw_conn *c = only_conn();
    ck_assert_int_eq(c->direction, NW_DIR_INBOUND);
    ck_assert_int_eq(c->state, NW_STATE_CLOSED);
    ck_assert_int_eq(c->first_seen, T0);
    ck_assert_int_eq(c->last_seen, T0 + 13);
    ck_assert_int_eq(c->has_tcp_opts, 1);
    ck_assert_int_eq(c->mss, 1460);
    ck_assert_str_eq(c->host, "H-1");
    ck_assert_int_eq(c->anchor, T0);
    finish();
}
END_TEST

START_TEST(outbound_bytes_counts_and_copy_kept_apart)
{
    start(NULL);
    feed(ev(12, T0, 3688, 52999, 443, 0));
    feed(ev(10, T0 + SEC / 10, 3688, 52999, 443, 1007));
    feed(ev(11, T0 + SEC / 5, 3688, 52999, 443, 6));
    feed(ev(18, T0 + SEC / 5 + 1, 3688, 52999, 443, 6));   /* copy of that receive */
    feed(ev(14, T0 + SEC / 2, 3688, 52999, 443, 500));
    feed(ev(10, T0 + 2 * SEC, 3688, 52999, 443, 10));
    feed(ev(13, T0 + 3 * SEC, 3688, 52999, 443, 0));
    flush();
    const nw_conn *c = only_conn();
    ck_assert_int_eq(c->direction, NW_DIR_OUTBOUND);
    ck_assert_int_eq(c->state, NW_STATE_CLOSED);
    ck_assert_int_eq(c->bytes_sent, 1017);
    ck_assert_int_eq(c->bytes_received, 6);
    ck_assert_int_eq(c->bytes_copied, 6);
    ck_assert_int_eq(c->bytes_retransmitted, 500);
    ck_assert_int_eq(c->send_events, 2);
    ck_assert_int_eq(c->receive_events, 1);
    ck_assert_int_eq(c->copy_events, 1);
    ck_assert_int_eq(c->retransmit_events, 1);
    ck_assert_int_eq(c->pid, 3688);
    /* Transfers: bucket T0 (1007 out, 6 in, 500 retx), bucket T0+2 (10 out). */
    ck_assert_int_eq(K->nxfers, 2);
    ck_assert_int_eq(K->xfers[0].time, T0);
    ck_assert_int_eq(K->xfers[0].bytes_sent, 1007);
    ck_assert_int_eq(K->xfers[0].bytes_received, 6);
    ck_assert_int_eq(K->xfers[0].bytes_retransmitted, 500);
    ck_assert_int_eq(K->xfers[0].send_events, 1);
    ck_assert_int_eq(K->xfers[0].receive_events, 1);
    ck_assert_int_eq(K->xfers[1].time, T0 + 2 * SEC);
    ck_assert_int_eq(K->xfers[1].bytes_sent, 10);
    ck_assert_int_eq(K->xfers[0].conn_id, c->id);
    finish();
}
END_TEST

START_TEST(states_attempted_failed_unknown)
{
    start(NULL);
    feed(ev(12, T0, 100, 50001, 445, 0));                    /* attempt only */
    feed(ev(12, T0, 101, 50002, 445, 0));                    /* retried, failed */
    feed(ev(16, T0 + 3 * SEC, 101, 50002, 445, 0));
    feed(ev(16, T0 + 9 * SEC, 101, 50002, 445, 0));
    feed(ev(13, T0 + 21 * SEC, 101, 50002, 445, 0));
    feed(ev(12, T0, 102, 50003, 445, 0));                    /* connect + close: closed */
    feed(ev(13, T0 + SEC, 102, 50003, 445, 0));
    feed(ev(11, T0 + 5 * SEC, 103, 50004, 443, 99));         /* open before the trace */
    flush();
    ck_assert_int_eq(K->nconns, 4);
    for (int i = 0; i < 4; i++) {
        const nw_conn *c = &K->conns[i];
        switch (c->pid) {
        case 100:
            ck_assert_int_eq(c->state, NW_STATE_ATTEMPTED);
            ck_assert_int_eq(c->direction, NW_DIR_OUTBOUND);
            break;
        case 101:
            ck_assert_int_eq(c->state, NW_STATE_FAILED);
            ck_assert_int_eq(c->reconnects, 2);
            ck_assert_int_eq(c->last_seen, T0 + 21 * SEC);
            break;
        case 102:
            ck_assert_int_eq(c->state, NW_STATE_CLOSED);
            break;
        case 103:
            ck_assert_int_eq(c->state, NW_STATE_ESTABLISHED);
            ck_assert_int_eq(c->direction, NW_DIR_UNKNOWN);
            ck_assert_int_eq(c->has_tcp_opts, 0);
            ck_assert_int_eq(c->bytes_received, 99);
            break;
        default:
            ck_abort_msg("unexpected pid %u", c->pid);
        }
    }
    finish();
}
END_TEST

START_TEST(udp_flows_direction_and_idle)
{
    start(NULL);
    feed(ev(42, T0, 228, 53893, 53, 63));          /* query out */
    feed(ev(43, T0 + SEC / 100, 228, 53893, 53, 186));
    feed(ev(42, T0 + 61 * SEC, 228, 53893, 53, 40)); /* 61 s later: a new flow */
    feed(ev(43, T0 + 200 * SEC, 300, 137, 137, 50)); /* inbound flow */
    flush();
    ck_assert_int_eq(K->nconns, 3);
    const nw_conn *a = &K->conns[0], *b = &K->conns[1], *c = &K->conns[2];
    ck_assert_int_eq(a->direction, NW_DIR_OUTBOUND);
    ck_assert_int_eq(a->bytes_sent, 63);
    ck_assert_int_eq(a->bytes_received, 186);
    ck_assert_int_eq(a->state, NW_STATE_CLOSED);    /* ended by idle time */
    ck_assert_int_eq(b->bytes_sent, 40);
    ck_assert_int_eq(b->state, NW_STATE_CLOSED);    /* idle 139 s at the end */
    ck_assert_int_ne(a->id, b->id);
    ck_assert_int_eq(c->direction, NW_DIR_INBOUND);
    ck_assert_int_eq(c->state, NW_STATE_ESTABLISHED); /* newest event: not idle */
    ck_assert_int_eq(c->proto, NW_PROTO_UDP);
    finish();
}
END_TEST

START_TEST(reorder_within_window_and_late_events)
{
    start(NULL);
    /* Events up to 2.9 s out of order fold as if sorted. */
    feed(ev(10, T0 + 29 * SEC / 10, 7, 40000, 80, 5));
    feed(ev(12, T0, 7, 40000, 80, 0));
    feed(ev(10, T0 + SEC, 7, 40000, 80, 1));
    feed(ev(10, T0 + 60 * SEC, 8, 40001, 80, 1));   /* moves time on */
    feed(ev(11, T0 + 2 * SEC, 7, 40000, 80, 3));     /* 58 s late */
    flush();
    nw_tracker_stats st;
    nw_tracker_stats_get(T, &st);
    ck_assert_int_eq(st.late_events, 1);
    ck_assert_int_eq(st.events, 5);
    ck_assert_int_eq(K->nconns, 2);
    const nw_conn *c = K->conns[0].pid == 7 ? &K->conns[0] : &K->conns[1];
    ck_assert_int_eq(c->direction, NW_DIR_OUTBOUND);
    ck_assert_int_eq(c->bytes_sent, 6);
    ck_assert_int_eq(c->bytes_received, 3);  /* the late event still counts */
    ck_assert_int_eq(c->first_seen, T0);
    /* the late receive went into its own bucket, T0+2 */
    int found = 0;
    for (int i = 0; i < K->nxfers; i++)
        if (K->xfers[i].conn_id == c->id && K->xfers[i].time == T0 + 2 * SEC) {
            ck_assert_int_eq(K->xfers[i].bytes_received, 3);
            found = 1;
        }
    ck_assert(found);
    finish();
}
END_TEST

START_TEST(late_opening_joins_its_connection)
{
    start(NULL);
    /* As in the seed file: a send, then (an hour of other traffic later) the
     * connect that opened it, beyond the reorder window. */
    feed(ev(10, T0 + 100, 4, 51218, 445, 73));
    feed(ev(10, T0 + 3600 * SEC, 5, 1, 2, 1));
    feed(ev(12, T0, 4, 51218, 445, 0));
    flush();
    ck_assert_int_eq(K->nconns, 2);
    const nw_conn *c = K->conns[0].pid == 4 ? &K->conns[0] : &K->conns[1];
    ck_assert_int_eq(c->direction, NW_DIR_OUTBOUND);
    ck_assert_int_eq(c->state, NW_STATE_ESTABLISHED);
    ck_assert_int_eq(c->bytes_sent, 73);
    ck_assert_int_eq(c->first_seen, T0);
    ck_assert_int_eq(c->has_tcp_opts, 1);
    finish();
}
END_TEST

START_TEST(raw_resolution_keeps_every_event)
{
    nw_tracker_opts o;
    nw_tracker_opts_default(&o);
    o.bucket = 0;
    start(&o);
    feed(ev(10, T0 + 1, 9, 1000, 2000, 10));
    feed(ev(10, T0 + 2, 9, 1000, 2000, 20));
    feed(ev(11, T0 + 2, 9, 1000, 2000, 5));
    flush();
    ck_assert_int_eq(K->nxfers, 2);
    ck_assert_int_eq(K->xfers[0].time, T0 + 1);
    ck_assert_int_eq(K->xfers[1].time, T0 + 2);
    ck_assert_int_eq(K->xfers[1].bytes_sent, 20);
    ck_assert_int_eq(K->xfers[1].bytes_received, 5);
    finish();
}
END_TEST

START_TEST(idle_tcp_is_written_and_resumed_on_the_same_id)
{
    nw_tracker_opts o;
    nw_tracker_opts_default(&o);
    o.tcp_idle = 10 * SEC;
    start(&o);
    feed(ev(12, T0, 11, 45000, 443, 0));
    feed(ev(10, T0 + SEC, 11, 45000, 443, 100));
    feed(ev(10, T0 + 100 * SEC, 12, 45001, 443, 1));   /* pushes time on */
    feed(ev(10, T0 + 200 * SEC, 12, 45001, 443, 1));
    ck_assert_int_eq(K->nconns, 1);                    /* pid 11 evicted, written */
    ck_assert_int_eq(K->conns[0].state, NW_STATE_ESTABLISHED);
    int64_t id = K->conns[0].id;
    feed(ev(11, T0 + 300 * SEC, 11, 45000, 443, 50));  /* it speaks again */
    feed(ev(13, T0 + 301 * SEC, 11, 45000, 443, 0));
    flush();
    nw_tracker_stats st;
    nw_tracker_stats_get(T, &st);
    ck_assert_int_ge(st.evicted_idle, 1);
    /* pid 11 came back after its eviction; so did pid 12 (idle 100 s). */
    ck_assert_int_eq(st.resumed, 2);
    const nw_conn *c = NULL;
    for (int i = 0; i < K->nconns; i++)
        if (K->conns[i].pid == 11)
            c = &K->conns[i];
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->id, id);
    ck_assert_int_eq(c->bytes_sent, 100);
    ck_assert_int_eq(c->bytes_received, 50);
    ck_assert_int_eq(c->direction, NW_DIR_OUTBOUND);
    ck_assert_int_eq(c->state, NW_STATE_CLOSED);
    ck_assert_int_eq(c->first_seen, T0);
    ck_assert_int_eq(c->anchor, T0);
    finish();
}
END_TEST

START_TEST(max_open_bounds_memory)
{
    nw_tracker_opts o;
    nw_tracker_opts_default(&o);
    o.max_open = 100;
    start(&o);
    for (int i = 0; i < 1000; i++)
        feed(ev(10, T0 + i, 20, 10000 + i, 443, 1));
    nw_tracker_stats st;
    nw_tracker_stats_get(T, &st);
    ck_assert_int_le(st.open, 100);
    flush();
    nw_tracker_stats_get(T, &st);
    ck_assert_int_eq(st.open, 0);
    ck_assert_int_ge(st.evicted_full, 900);
    ck_assert_int_eq(K->nconns, 1000);
    finish();
}
END_TEST

START_TEST(port_reuse_and_pid_split_connections)
{
    start(NULL);
    feed(ev(12, T0, 30, 50000, 80, 0));
    feed(ev(10, T0 + 1, 30, 50000, 80, 1));
    feed(ev(12, T0 + 2 * SEC, 30, 50000, 80, 0));     /* no close seen; new connect */
    feed(ev(10, T0 + 3 * SEC, 31, 50000, 80, 7));     /* same tuple, other pid */
    flush();
    ck_assert_int_eq(K->nconns, 3);
    ck_assert_int_ne(K->conns[0].id, K->conns[1].id);
    finish();
}
END_TEST

START_TEST(failures_and_many_hosts)
{
    start(NULL);
    nw_event f = ev(17, T0, 0, 0, 0, 0);
    f.fail_proto = 23;
    f.fail_code = 5;
    feed(f);
    /* host names churn; the tracker must free them (ASan checks leaks) */
    for (int i = 0; i < 500; i++) {
        nw_event e = ev(42, T0 + i * SEC, 1, 5000, 53, 1);
        snprintf(e.host, sizeof e.host, "HOST-%d", i);
        feed(e);
    }
    flush();
    ck_assert_int_eq(K->nfails, 1);
    ck_assert_int_eq(K->fails[0].fail_proto, 23);
    ck_assert_int_eq(K->fails[0].fail_code, 5);
    ck_assert_int_eq(K->fails[0].event_id, 17);
    ck_assert_str_eq(K->fails[0].host, "H-1");
    ck_assert_int_eq(K->nconns, 500);
    finish();
}
END_TEST

START_TEST(ids_are_unique_and_come_from_the_sink)
{
    start(NULL);
    K->next_id = 5000;
    for (int i = 0; i < 300; i++)
        feed(ev(42, T0 + i, 1, 6000 + i, 53, 1));
    flush();
    ck_assert_int_eq(K->nconns, 300);
    for (int i = 0; i < 300; i++) {
        ck_assert_int_ge(K->conns[i].id, 5000);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(K->conns[i].id, K->conns[j].id);
    }
    finish();
}
END_TEST

/* A time-sorted mix of TCP and UDP traffic over a few tuples. */
static int mixed_events(nw_event *out, int max)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int n = 0;
    nw_time t = T0;
    while (n < max) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t += (nw_time)(x % (3 * SEC));
        int tuple = (int)(x >> 20) % 12, k = (int)(x >> 40) % 10;
        int lport = 40000 + tuple, rport = tuple < 6 ? 443 : 53;
        int id = rport == 53 ? (k < 5 ? 42 : 43)
                 : k == 0 ? 12 : k == 9 ? 13 : k < 5 ? 10 : 11;
        out[n++] = ev(id, t, 100 + (uint32_t)(tuple % 3), lport, rport, 1 + (uint32_t)(x % 900));
    }
    return n;
}

/* A checkpoint writes what was fed, keeps it, and changes nothing of the
 * final answer: checkpointing every 37 events gives the rows, bytes and
 * transfers of one uninterrupted run, with no resume asked. */
START_TEST(checkpoint_writes_now_and_changes_nothing)
{
    enum { N = 3000 };
    static nw_event evs[N];
    int n = mixed_events(evs, N);
    start(NULL);
    for (int i = 0; i < n; i++)
        feed(evs[i]);
    flush();
    cap *plain = K;
    nw_tracker_free(T);

    start(NULL);
    uint64_t fed_bytes = 0;
    for (int i = 0; i < n; i++) {
        feed(evs[i]);
        int id = evs[i].event_id;
        if (id == 10 || id == 11 || id == 42 || id == 43)
            fed_bytes += evs[i].size;
        if (i % 37 == 36) {
            ck_assert_int_eq(nw_tracker_checkpoint(T), NW_OK);
            /* Everything fed so far is written. */
            uint64_t got = 0;
            for (int j = 0; j < K->nconns; j++)
                got += K->conns[j].bytes_sent + K->conns[j].bytes_received;
            ck_assert_uint_eq(got, fed_bytes);
        }
    }
    flush();
    ck_assert_int_eq(K->resumes_asked, plain->resumes_asked);
    ck_assert_int_eq(K->nconns, plain->nconns);
    for (int i = 0; i < K->nconns; i++) {
        const nw_conn *a = &K->conns[i], *b = NULL;
        for (int j = 0; j < plain->nconns && !b; j++)
            if (plain->conns[j].id == a->id)
                b = &plain->conns[j];
        ck_assert_ptr_nonnull(b);
        ck_assert_int_eq(a->state, b->state);
        ck_assert_int_eq(a->first_seen, b->first_seen);
        ck_assert_int_eq(a->last_seen, b->last_seen);
        ck_assert_int_eq(a->anchor, b->anchor);
        ck_assert_uint_eq(a->bytes_sent, b->bytes_sent);
        ck_assert_uint_eq(a->bytes_received, b->bytes_received);
        ck_assert_uint_eq(a->send_events + a->receive_events,
                          b->send_events + b->receive_events);
    }
    ck_assert_int_eq(K->nxfers, plain->nxfers);
    for (int i = 0; i < K->nxfers; i++) {
        int found = 0;
        for (int j = 0; j < plain->nxfers && !found; j++)
            found = plain->xfers[j].conn_id == K->xfers[i].conn_id &&
                    plain->xfers[j].time == K->xfers[i].time &&
                    plain->xfers[j].bytes_sent == K->xfers[i].bytes_sent &&
                    plain->xfers[j].bytes_received == K->xfers[i].bytes_received;
        ck_assert_msg(found, "transfer %d differs", i);
    }
    free(plain);
    finish();
}
END_TEST

/* A pseudo-random, jittered stream over a few tuples: connects, data,
 * closes (some before their accept), UDP flows, failures. */
static nw_event snap_event(unsigned *rng, int i)
{
    *rng = *rng * 1103515245u + 12345u;
    unsigned r = *rng >> 8;
    static const int ids[] = {12, 10, 11, 11, 10, 14, 18, 13, 15, 16, 42, 43, 11, 13, 10, 11};
    int id = i % 100 == 50 ? 17 : ids[r % 16];
    nw_time t = T0 + (nw_time)i * (SEC / 4) + (nw_time)(r % 7) * (SEC / 5);
    nw_event e = ev(id, t, 100 + (r >> 4) % 3, 50000 + (int)((r >> 6) % 9), 443,
                    (uint32_t)(r % 1500));
    if (id == 17) {
        e.fail_proto = 2;
        e.fail_code = 10061;
    }
    return e;
}

START_TEST(snapshot_restore_goes_on_as_if_never_stopped)
{
    nw_tracker_opts o;
    nw_tracker_opts_default(&o);
    o.udp_idle = 20 * SEC;
    o.tcp_idle = 40 * SEC;
    enum { N = 3000 };
    /* Uninterrupted. */
    start(&o);
    unsigned rng = 7;
    for (int i = 0; i < N; i++)
        feed(snap_event(&rng, i));
    ck_assert_int_eq(nw_tracker_tick(T, T0 + (nw_time)N * SEC / 4 + 30 * SEC), NW_OK);
    flush();
    cap *want = K;
    nw_tracker_free(T);
    /* Saved and loaded into a new tracker every 97 events. */
    start(&o);
    rng = 7;
    for (int i = 0; i < N; i++) {
        feed(snap_event(&rng, i));
        if (i % 97 == 0) {
            unsigned char *buf = NULL;
            size_t len = 0;
            ck_assert_int_eq(nw_tracker_save(T, &buf, &len), NW_OK);
            nw_sink s = {.ctx = K, .conn = cap_conn, .transfer = cap_xfer,
                         .failure = cap_fail, .resume = cap_resume, .reserve_ids = cap_ids};
            nw_tracker_free(T);
            T = nw_tracker_new(&o, &s);
            ck_assert_int_eq(nw_tracker_load(T, buf, len), NW_OK);
            /* Loading twice, or garbage, is refused. */
            ck_assert_int_eq(nw_tracker_load(T, buf, len), NW_ERR_INVALID);
            buf[0] = 'X';
            nw_tracker *u = nw_tracker_new(&o, &s);
            ck_assert_int_eq(nw_tracker_load(u, buf, len), NW_ERR_INVALID);
            ck_assert_int_eq(nw_tracker_load(u, buf, len / 2), NW_ERR_INVALID);
            nw_tracker_free(u);
            free(buf);
        }
    }
    ck_assert_int_eq(nw_tracker_tick(T, T0 + (nw_time)N * SEC / 4 + 30 * SEC), NW_OK);
    flush();
    ck_assert_int_gt(want->nconns, 20);
    ck_assert_int_gt(want->nfails, 0);
    ck_assert_int_eq(K->nconns, want->nconns);
    ck_assert_int_eq(K->nxfers, want->nxfers);
    ck_assert_int_eq(K->nfails, want->nfails);
    for (int i = 0; i < want->nconns; i++) {
        const nw_conn *a = &want->conns[i], *b = &K->conns[i];
        ck_assert_str_eq(a->host, b->host);
        ck_assert_msg(a->id == b->id && a->state == b->state && a->direction == b->direction &&
                          a->first_seen == b->first_seen && a->last_seen == b->last_seen &&
                          a->anchor == b->anchor && a->bytes_sent == b->bytes_sent &&
                          a->bytes_received == b->bytes_received &&
                          a->bytes_copied == b->bytes_copied &&
                          a->bytes_retransmitted == b->bytes_retransmitted &&
                          a->send_events == b->send_events &&
                          a->receive_events == b->receive_events &&
                          a->reconnects == b->reconnects && a->pid == b->pid &&
                          a->local_port == b->local_port && a->mss == b->mss,
                      "connection %d differs", i);
    }
    for (int i = 0; i < want->nxfers; i++) {
        const nw_transfer *a = &want->xfers[i], *b = &K->xfers[i];
        ck_assert_msg(a->conn_id == b->conn_id && a->time == b->time &&
                          a->bytes_sent == b->bytes_sent &&
                          a->bytes_received == b->bytes_received &&
                          a->send_events == b->send_events &&
                          a->receive_events == b->receive_events,
                      "transfer %d differs", i);
    }
    finish();
    free(want);
}
END_TEST

START_TEST(sync_writes_open_connections_and_bucket_bytes_once)
{
    start(NULL);
    feed(ev(12, T0, 7, 50001, 443, 0));
    feed(ev(10, T0 + SEC / 10, 7, 50001, 443, 100));
    feed(ev(10, T0 + 5 * SEC, 7, 50001, 443, 50));     /* folds the first two */
    ck_assert_int_eq(nw_tracker_sync(T), NW_OK);
    ck_assert_int_eq(K->nconns, 1);
    ck_assert_int_eq(K->conns[0].bytes_sent, 100);
    ck_assert_int_eq(K->conns[0].state, NW_STATE_ESTABLISHED);
    ck_assert_int_eq(K->nxfers, 1);
    ck_assert_int_eq(K->xfers[0].bytes_sent, 100);
    int writes = K->writes;
    ck_assert_int_eq(nw_tracker_sync(T), NW_OK);         /* nothing changed */
    ck_assert_int_eq(K->writes, writes);
    ck_assert_int_eq(K->xfers[0].bytes_sent, 100);
    feed(ev(10, T0 + 5 * SEC + SEC / 2, 7, 50001, 443, 7));
    feed(ev(13, T0 + 9 * SEC, 7, 50001, 443, 0));
    flush();
    ck_assert_int_eq(K->nconns, 1);
    ck_assert_int_eq(K->conns[0].bytes_sent, 157);
    ck_assert_int_eq(K->conns[0].state, NW_STATE_CLOSED);
    uint64_t sum = 0;
    for (int i = 0; i < K->nxfers; i++)
        sum += K->xfers[i].bytes_sent;
    ck_assert_int_eq(sum, 157);        /* every byte in exactly one bucket */
    finish();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tracker");
    TCase *tc = tcase_create("fold");
    tcase_add_test(tc, close_before_accept_is_one_inbound_closed_connection);
    tcase_add_test(tc, outbound_bytes_counts_and_copy_kept_apart);
    tcase_add_test(tc, states_attempted_failed_unknown);
    tcase_add_test(tc, udp_flows_direction_and_idle);
    tcase_add_test(tc, reorder_within_window_and_late_events);
    tcase_add_test(tc, late_opening_joins_its_connection);
    tcase_add_test(tc, raw_resolution_keeps_every_event);
    tcase_add_test(tc, idle_tcp_is_written_and_resumed_on_the_same_id);
    tcase_add_test(tc, max_open_bounds_memory);
    tcase_add_test(tc, port_reuse_and_pid_split_connections);
    tcase_add_test(tc, failures_and_many_hosts);
    tcase_add_test(tc, ids_are_unique_and_come_from_the_sink);
    tcase_add_test(tc, checkpoint_writes_now_and_changes_nothing);
    tcase_add_test(tc, snapshot_restore_goes_on_as_if_never_stopped);
    tcase_add_test(tc, sync_writes_open_connections_and_bucket_bytes_once);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
