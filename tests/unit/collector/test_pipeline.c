/* test_pipeline.c -- pipeline.h over generated streams with known answers:
 * the same ordered results on 1 and 4 threads, from a buffer, a file and a
 * pipe; exact counts; rejections with their offsets and reasons; stops,
 * read errors and a live source that pauses. */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netwho/framer.h"
#include "netwho/pipeline.h"
#include "tests/unit/check_main.h"

#define NEVENTS 20000
#define BAD_EVERY 97          /* a malformed frame before every 97th event */
#define T0 (1773620496LL * NW_TICKS_PER_SEC)
#define STEP 1234567LL        /* ticks between generated events */
#define DEFAULT_HOST "defhost"

static const int IDS[22] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 26, 27,
                            28, 29, 30, 31, 32, 34, 42, 43, 49, 58, 59};

/* ---- a growing string ------------------------------------------------- */

typedef struct sb {
    char *s;
    size_t len, cap;
} sb;

static void sb_add(sb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s)
            ck_abort_msg("out of memory");
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_adds(sb *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* ---- generated events ------------------------------------------------- */

static int gen_ipv(int id)
{
    return (id >= 26 && id <= 34) || id >= 58 ? 6 : 4;
}

static int gen_is_fail(int id)
{
    return id == 17 || id == 49;
}

static void gen_saddr(int i, int ipv, char *buf, size_t cap)
{
    if (ipv == 4)
        snprintf(buf, cap, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    else
        snprintf(buf, cap, "2001:db8::%x:%x", i >> 16, i & 0xffff);
}

static void gen_daddr(int i, int ipv, char *buf, size_t cap)
{
    if (ipv == 4)
        snprintf(buf, cap, "192.168.%d.%d", (i >> 8) & 255, i & 255);
    else
        snprintf(buf, cap, "fd00::%x", i);
}

static unsigned gen_sport(int i) { return 1024 + (unsigned)(i % 50000); }
static unsigned gen_dport(int i) { return 1 + (unsigned)(i % 1000); }

/* Event i as one JSON line (no newline).  how: 0 good, 2 bad size,
 * 3 unknown id, 5 IPv6 text in an IPv4 event, 6 port 70000. */
static void gen_event(int i, int how, sb *out)
{
    int id = how == 3 ? 33 : IDS[i % 22];
    int ipv = gen_ipv(id);
    char t[NW_TIME_STRLEN], sa[64], da[64], data[1024], host[32] = "";
    if (nw_time_format(T0 + i * STEP, t, sizeof t) == 0)
        ck_abort_msg("cannot format time %d", i);
    if (i % 5 == 0)
        snprintf(host, sizeof host, "HOST-%d", i);
    gen_saddr(i, ipv, sa, sizeof sa);
    gen_daddr(i, ipv, da, sizeof da);
    if (how == 5)
        strcpy(da, "::1");
    if (gen_is_fail(id)) {
        snprintf(data, sizeof data, "\"Proto\":\"2\",\"FailureCode\":\"%d\"", i % 65536);
    } else {
        char size[16];
        if (how == 2)
            strcpy(size, "abc");
        else
            snprintf(size, sizeof size, "%8d", i % 5000);
        int n = snprintf(data, sizeof data,
                         "\"PID\":\"%8d\",\"size\":\"%s\",\"daddr\":\"%s\",\"saddr\":\"%s\","
                         "\"dport\":\"%u\",\"sport\":\"%u\",\"seqnum\":\"%8d\","
                         "\"connid\":\"       0\"",
                         1000 + i, size, da, sa, gen_dport(i),
                         how == 6 ? 70000u : gen_sport(i), i);
        int kind_off = (id >= 26 && id <= 34) ? id - 26 : id - 10;
        if (id < 42 && (kind_off == 2 || kind_off == 5))   /* connect, accept */
            snprintf(data + n, sizeof data - (size_t)n,
                     ",\"mss\":\"1460\",\"sackopt\":\"1\",\"tsopt\":\"0\",\"wsopt\":\"1\","
                     "\"rcvwin\":\"%d\",\"rcvwinscale\":\"8\",\"sndwinscale\":\"8\"", i);
        else if (id == 10 || id == 26)
            snprintf(data + n, sizeof data - (size_t)n,
                     ",\"startime\":\" %d\",\"endtime\":\" %d\"", i, i + 1);
    }
    char line[2048];
    snprintf(line, sizeof line,
             "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\","
             "\"event_id\":\"%d\",\"keywords\":9223372036854775824,\"time_created\":\"%s\","
             "\"execution\":{\"process_id\":\"4\",\"thread_id\":\"1\"},\"computer\":\"%s\"},"
             "\"event_data\":{%s},\"message\":\"\"}",
             id, t, host, data);
    sb_adds(out, line);
}

/* Returns NULL if ev is generated event i, else the first check that
 * failed.  Plain C: a Check assertion per field of 20k events is slow. */
#define WANT(cond)                                                           \
    do {                                                                     \
        if (!(cond))                                                         \
            return #cond;                                                    \
    } while (0)

static const char *event_mismatch(const nw_event *ev, int i)
{
    int id = IDS[i % 22], ipv = gen_ipv(id);
    WANT(ev->event_id == id);
    WANT(ev->ip_version == ipv);
    WANT(ev->time == T0 + i * STEP);
    char host[32];
    if (i % 5 == 0)
        snprintf(host, sizeof host, "HOST-%d", i);
    else
        snprintf(host, sizeof host, "%s", DEFAULT_HOST);
    WANT(strcmp(ev->host, host) == 0);
    if (gen_is_fail(id)) {
        WANT(ev->kind == NW_EV_FAIL);
        WANT(ev->fail_proto == 2);
        WANT(ev->fail_code == i % 65536);
        WANT(ev->pid == 0);
        return NULL;
    }
    WANT(ev->pid == (uint32_t)(1000 + i));
    WANT(ev->size == (uint32_t)(i % 5000));
    WANT(ev->seqnum == (uint32_t)i);
    char sa[64], da[64];
    gen_saddr(i, ipv, sa, sizeof sa);
    gen_daddr(i, ipv, da, sizeof da);
    nw_addr s, d;
    WANT(nw_addr_parse(sa, strlen(sa), ipv, &s, NULL) == 0);
    WANT(nw_addr_parse(da, strlen(da), ipv, &d, NULL) == 0);
    int udp_recv = id == 43 || id == 59;
    WANT(memcmp(ev->local_ip.b, (udp_recv ? &d : &s)->b, 16) == 0);
    WANT(memcmp(ev->remote_ip.b, (udp_recv ? &s : &d)->b, 16) == 0);
    WANT(ev->local_port == (udp_recv ? gen_dport(i) : gen_sport(i)));
    WANT(ev->remote_port == (udp_recv ? gen_sport(i) : gen_dport(i)));
    int opts = id == 12 || id == 15 || id == 28 || id == 31;
    WANT(ev->has_tcp_opts == opts);
    WANT(!opts || ev->rcvwin == (uint32_t)i);
    int times = id == 10 || id == 26;
    WANT(ev->has_times == times);
    WANT(!times || (ev->startime == (uint32_t)i && ev->endtime == (uint32_t)i + 1));
    return NULL;
}

/* What the pipeline must report for each frame, in order. */
typedef struct want {
    int gen;              /* >= 0: accepted event number; -1: rejected */
    nw_reject reason;
    uint64_t offset;
} want;

typedef struct stream {
    sb text;
    want *w;
    size_t nw, accepted, rejected;
} stream;

static void expect(stream *st, int gen, nw_reject reason, uint64_t offset)
{
    if (st->nw % 1024 == 0) {
        st->w = realloc(st->w, (st->nw + 1024) * sizeof *st->w);
        if (!st->w)
            ck_abort_msg("out of memory");
    }
    st->w[st->nw++] = (want){gen, reason, offset};
    if (gen >= 0)
        st->accepted++;
    else
        st->rejected++;
}

/*
 * NEVENTS good events (every 10th pretty-printed by cJSON, multi-line),
 * with a malformed frame before every BAD_EVERY-th, one object over
 * NW_EVENT_MAX_BYTES in the middle, and a truncated object at the end.
 */
static stream make_stream(void)
{
    stream st = {0};
    sb *t = &st.text;
    for (int i = 0; i < NEVENTS; i++) {
        if (i % BAD_EVERY == 0) {
            uint64_t off = t->len;
            sb bad = {0};
            switch ((i / BAD_EVERY) % 7) {
            case 0:
                sb_adds(t, "this is not json\n");
                expect(&st, -1, NW_REJ_BAD_JSON, off);
                break;
            case 1:   /* cut short: the next line's '{' ends it */
                gen_event(i, 0, &bad);
                sb_add(t, bad.s, 150);
                sb_adds(t, "\n");
                expect(&st, -1, NW_REJ_TRUNCATED, off);
                break;
            case 4:
                sb_adds(t, "[ 7 ]\n");
                expect(&st, -1, NW_REJ_NOT_OBJECT, off + 2);
                break;
            default: {
                static const nw_reject why[7] = {0, 0, NW_REJ_BAD_SIZE,
                                                 NW_REJ_UNKNOWN_EVENT_ID, 0,
                                                 NW_REJ_BAD_ADDRESS, NW_REJ_BAD_PORT};
                int how = (i / BAD_EVERY) % 7;
                /* Failure events have no size, port or address, and IPv6
                 * text is only wrong in an IPv4 event. */
                int gi = i;
                while (how != 3 && (gen_is_fail(IDS[gi % 22]) ||
                                    (how == 5 && gen_ipv(IDS[gi % 22]) != 4)))
                    gi++;
                gen_event(gi, how, t);
                sb_adds(t, "\n");
                expect(&st, -1, why[how], off);
            }
            }
            free(bad.s);
        }
        if (i == NEVENTS / 2) {
            uint64_t off = t->len;
            sb_adds(t, "{\"pad\":\"");
            char chunk[4096];
            memset(chunk, 'p', sizeof chunk);
            while (t->len - off < NW_EVENT_MAX_BYTES + 100)
                sb_add(t, chunk, sizeof chunk);
            sb_adds(t, "\"}\n");
            expect(&st, -1, NW_REJ_TOO_LARGE, off);
        }
        uint64_t off = t->len;
        if (i % 10 == 3) {
            sb line = {0};
            gen_event(i, 0, &line);
            cJSON *j = cJSON_Parse(line.s);
            char *p = cJSON_Print(j);
            sb_adds(t, p);
            free(p);
            cJSON_Delete(j);
            free(line.s);
        } else {
            gen_event(i, 0, t);
        }
        sb_adds(t, "\n");
        expect(&st, i, NW_ACCEPTED, off);
    }
    uint64_t off = t->len;
    sb_adds(t, "{\"system\":{\"provider\":");
    expect(&st, -1, NW_REJ_TRUNCATED, off);
    return st;
}

static void free_stream(stream *st)
{
    free(st->text.s);
    free(st->w);
}

/* ---- what the callbacks saw ------------------------------------------- */

typedef struct got {
    int accepted;
    nw_event ev;          /* accepted */
    nw_reject reason;     /* rejected */
    uint64_t offset;
    size_t raw_len, full_len;
    char detail[NW_DETAIL_MAX];
} got;

typedef struct seen {
    got *g;
    size_t n, cap;
    size_t stop_after;    /* return 1 at this many results (0: never) */
    uint64_t progress_calls, last_progress;
    int progress_backwards;
    const char *source_seen;
    /* live test: signalled as results arrive */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int live;
} seen;

static got *next_got(seen *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->g = realloc(s->g, s->cap * sizeof *s->g);
        if (!s->g)
            ck_abort_msg("out of memory");
    }
    got *g = &s->g[s->n];
    memset(g, 0, sizeof *g);
    return g;
}

static int counted(seen *s)
{
    if (s->live) {
        pthread_mutex_lock(&s->mu);
        s->n++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    } else {
        s->n++;
    }
    return s->stop_after && s->n >= s->stop_after;
}

static int on_event(void *ctx, const nw_event *ev)
{
    seen *s = ctx;
    got *g = next_got(s);
    g->accepted = 1;
    g->ev = *ev;
    return counted(s);
}

static int on_reject(void *ctx, const nw_rejection *r)
{
    seen *s = ctx;
    got *g = next_got(s);
    g->reason = r->reason;
    g->offset = r->offset;
    g->raw_len = r->raw_len;
    g->full_len = r->full_len;
    snprintf(g->detail, sizeof g->detail, "%s", r->detail);
    s->source_seen = r->source;
    return counted(s);
}

static void on_progress(void *ctx, uint64_t bytes)
{
    seen *s = ctx;
    s->progress_calls++;
    if (bytes < s->last_progress)
        s->progress_backwards = 1;
    s->last_progress = bytes;
}

static const nw_pipeline_cbs CBS = {.on_event = on_event, .on_reject = on_reject,
                                    .on_progress = on_progress};

/* Checks what was seen against the stream's wants, in order. */
static void check_seen(const stream *st, const seen *s, const nw_pipeline_stats *ps)
{
    ck_assert_uint_eq(s->n, st->nw);
    for (size_t k = 0; k < st->nw; k++) {
        const want *w = &st->w[k];
        const got *g = &s->g[k];
        if (w->gen >= 0) {
            if (!g->accepted)
                ck_abort_msg("frame %zu (event %d) rejected: %s: %s", k, w->gen,
                             nw_reject_name(g->reason), g->detail);
            const char *bad = event_mismatch(&g->ev, w->gen);
            if (bad)
                ck_abort_msg("frame %zu (event %d): %s", k, w->gen, bad);
            continue;
        }
        if (g->accepted)
            ck_abort_msg("frame %zu accepted, want %s", k, nw_reject_name(w->reason));
        if (g->reason != w->reason)
            ck_abort_msg("frame %zu: %s, want %s (%s)", k, nw_reject_name(g->reason),
                         nw_reject_name(w->reason), g->detail);
        if (g->offset != w->offset)
            ck_abort_msg("frame %zu: offset %llu, want %llu", k,
                         (unsigned long long)g->offset, (unsigned long long)w->offset);
        if (g->detail[0] == '\0')
            ck_abort_msg("frame %zu: no detail", k);
        if (w->reason == NW_REJ_TOO_LARGE) {
            ck_assert_uint_eq(g->raw_len, NW_FRAME_KEEP_BYTES);
            ck_assert_uint_gt(g->full_len, NW_EVENT_MAX_BYTES);
        } else if (g->raw_len != g->full_len) {
            ck_abort_msg("frame %zu: raw_len %zu of %zu", k, g->raw_len, g->full_len);
        }
    }
    ck_assert_uint_eq(ps->bytes, st->text.len);
    ck_assert_uint_eq(ps->events, st->nw);
    ck_assert_uint_eq(ps->accepted, st->accepted);
    ck_assert_uint_eq(ps->rejected, st->rejected);
    ck_assert_uint_gt(s->progress_calls, 0);
    ck_assert_int_eq(s->progress_backwards, 0);
    ck_assert_uint_eq(s->last_progress, st->text.len);
}

static void ck_same_results(const seen *a, const seen *b)
{
    ck_assert_uint_eq(a->n, b->n);
    /* got is zeroed before it is filled, so bytes compare. */
    for (size_t k = 0; k < a->n; k++)
        if (memcmp(&a->g[k], &b->g[k], sizeof a->g[k]) != 0)
            ck_abort_msg("result %zu differs between runs", k);
}

/* ---- sources ---------------------------------------------------------- */

static nw_status run_buf(const stream *st, int threads, seen *s, nw_pipeline_stats *ps)
{
    nw_pipeline_opts o = {threads, DEFAULT_HOST, "gen.ndjson"};
    nw_err err = {""};
    memset(s, 0, sizeof *s);
    return nw_pipeline_run_buf(st->text.s, st->text.len, &o, &CBS, s, ps, &err);
}

static nw_status run_file(const stream *st, int threads, seen *s, nw_pipeline_stats *ps)
{
    char path[] = "/tmp/test_pipeline_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(write(fd, st->text.s, st->text.len), (ssize_t)st->text.len);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    nw_pipeline_opts o = {threads, DEFAULT_HOST, "gen.ndjson"};
    nw_err err = {""};
    memset(s, 0, sizeof *s);
    nw_status rc = nw_pipeline_run_fd(fd, &o, &CBS, s, ps, &err);
    close(fd);
    return rc;
}

typedef struct writer {
    int fd;
    const char *data;
    size_t len, piece;
    /* live: write `first` bytes, wait until the reader has seen `wait_for`
     * results, then write the rest */
    size_t first, wait_for;
    seen *s;
    int waited_ok;
} writer;

static void write_all(int fd, const char *p, size_t n, size_t piece)
{
    while (n > 0) {
        size_t k = n < piece ? n : piece;
        ssize_t w = write(fd, p, k);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    if (w->wait_for) {
        write_all(w->fd, w->data, w->first, w->piece);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        pthread_mutex_lock(&w->s->mu);
        while (w->s->n < w->wait_for)
            if (pthread_cond_timedwait(&w->s->cv, &w->s->mu, &until) == ETIMEDOUT)
                break;
        w->waited_ok = w->s->n >= w->wait_for;
        pthread_mutex_unlock(&w->s->mu);
        write_all(w->fd, w->data + w->first, w->len - w->first, w->piece);
    } else {
        write_all(w->fd, w->data, w->len, w->piece);
    }
    close(w->fd);
    return NULL;
}

static nw_status run_pipe(const stream *st, int threads, size_t piece, seen *s,
                          nw_pipeline_stats *ps)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    writer w = {p[1], st->text.s, st->text.len, piece, 0, 0, s, 0};
    memset(s, 0, sizeof *s);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    nw_pipeline_opts o = {threads, DEFAULT_HOST, "-"};
    nw_err err = {""};
    nw_status rc = nw_pipeline_run_fd(p[0], &o, &CBS, s, ps, &err);
    pthread_join(t, NULL);
    close(p[0]);
    return rc;
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(buffer_one_and_four_threads_agree)
{
    stream st = make_stream();
    seen a, b;
    nw_pipeline_stats pa, pb;
    ck_assert_int_eq(run_buf(&st, 1, &a, &pa), NW_OK);
    check_seen(&st, &a, &pa);
    ck_assert_str_eq(a.source_seen, "gen.ndjson");
    ck_assert_int_eq(run_buf(&st, 4, &b, &pb), NW_OK);
    check_seen(&st, &b, &pb);
    ck_same_results(&a, &b);
    free(a.g);
    free(b.g);
    free_stream(&st);
}
END_TEST

START_TEST(file_and_pipe_agree_with_buffer)
{
    stream st = make_stream();
    seen ref, s;
    nw_pipeline_stats pref, ps;
    ck_assert_int_eq(run_buf(&st, 2, &ref, &pref), NW_OK);
    check_seen(&st, &ref, &pref);

    ck_assert_int_eq(run_file(&st, 1, &s, &ps), NW_OK);
    check_seen(&st, &s, &ps);
    ck_same_results(&ref, &s);
    free(s.g);

    ck_assert_int_eq(run_file(&st, 4, &s, &ps), NW_OK);
    check_seen(&st, &s, &ps);
    ck_same_results(&ref, &s);
    free(s.g);

    /* Odd write sizes through a pipe: frames span reads everywhere. */
    ck_assert_int_eq(run_pipe(&st, 4, 4093, &s, &ps), NW_OK);
    check_seen(&st, &s, &ps);
    ck_assert_str_eq(s.source_seen, "-");
    ck_same_results(&ref, &s);
    free(s.g);

    ck_assert_int_eq(run_pipe(&st, 1, 65536, &s, &ps), NW_OK);
    check_seen(&st, &s, &ps);
    ck_same_results(&ref, &s);
    free(s.g);

    free(ref.g);
    free_stream(&st);
}
END_TEST

START_TEST(callback_stop_shuts_down_cleanly)
{
    stream st = make_stream();
    static const int threads[] = {1, 4};
    for (int t = 0; t < 2; t++) {
        seen s;
        memset(&s, 0, sizeof s);
        s.stop_after = 5000;
        nw_pipeline_opts o = {threads[t], DEFAULT_HOST, "gen"};
        nw_pipeline_stats ps;
        nw_err err = {""};
        nw_status rc = nw_pipeline_run_buf(st.text.s, st.text.len, &o, &CBS, &s, &ps, &err);
        ck_assert_int_eq(rc, NW_ERR_INVALID);
        ck_assert_uint_eq(s.n, 5000);   /* not one callback after the stop */
        ck_assert_uint_eq(ps.events, 5000);
        ck_assert_ptr_nonnull(strstr(err.msg, "stopped"));
        free(s.g);

        /* And from a file. */
        memset(&s, 0, sizeof s);
        s.stop_after = 7;
        char path[] = "/tmp/test_pipeline_XXXXXX";
        int fd = mkstemp(path);
        unlink(path);
        ck_assert_int_eq(write(fd, st.text.s, st.text.len), (ssize_t)st.text.len);
        lseek(fd, 0, SEEK_SET);
        rc = nw_pipeline_run_fd(fd, &o, &CBS, &s, &ps, &err);
        close(fd);
        ck_assert_int_eq(rc, NW_ERR_INVALID);
        ck_assert_uint_eq(s.n, 7);
        free(s.g);
    }
    free_stream(&st);
}
END_TEST

START_TEST(read_error_is_io)
{
    int fd = open("/", O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(fd, 0);
    seen s;
    memset(&s, 0, sizeof s);
    nw_pipeline_opts o = {4, NULL, "/"};
    nw_pipeline_stats ps;
    nw_err err = {""};
    ck_assert_int_eq(nw_pipeline_run_fd(fd, &o, &CBS, &s, &ps, &err), NW_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "read /"));
    ck_assert_uint_eq(ps.events, 0);
    close(fd);
    free(s.g);
}
END_TEST

START_TEST(empty_and_small_inputs)
{
    seen s;
    nw_pipeline_stats ps;
    nw_err err = {""};
    nw_pipeline_opts o = {0, NULL, NULL};   /* threads 0: the CPU count */
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(nw_pipeline_run_buf("", 0, &o, &CBS, &s, &ps, &err), NW_OK);
    ck_assert_uint_eq(ps.events, 0);
    ck_assert_uint_eq(ps.bytes, 0);

    /* One real event, default host absent: "unknown"; source NULL: "-". */
    stream st = {0};
    gen_event(1, 0, &st.text);
    sb_adds(&st.text, "\nxx\n");
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(nw_pipeline_run_buf(st.text.s, st.text.len, &o, &CBS, &s, &ps, &err),
                     NW_OK);
    ck_assert_uint_eq(ps.events, 2);
    ck_assert_uint_eq(ps.accepted, 1);
    ck_assert_uint_eq(ps.rejected, 1);
    ck_assert_str_eq(s.g[0].ev.host, "unknown");
    ck_assert_int_eq(s.g[1].reason, NW_REJ_BAD_JSON);
    ck_assert_str_eq(s.source_seen, "-");
    free(s.g);
    free_stream(&st);
}
END_TEST

/* A source that delivers some events and then goes quiet (a live trace):
 * those events reach the callbacks before any more input arrives. */
START_TEST(live_source_is_not_held_back)
{
    stream st = make_stream();
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    seen s;
    memset(&s, 0, sizeof s);
    s.live = 1;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    /* The first 30 frames, to the end of the 30th's line. */
    size_t first = (size_t)st.w[30].offset;
    writer w = {p[1], st.text.s, st.text.len, 4096, first, 30, &s, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
    nw_pipeline_opts o = {4, DEFAULT_HOST, "-"};
    nw_pipeline_stats ps;
    nw_err err = {""};
    ck_assert_int_eq(nw_pipeline_run_fd(p[0], &o, &CBS, &s, &ps, &err), NW_OK);
    pthread_join(t, NULL);
    close(p[0]);
    ck_assert_msg(w.waited_ok, "the first 30 frames were held back");
    check_seen(&st, &s, &ps);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    free(s.g);
    free_stream(&st);
}
END_TEST

/* ---- pieces against one framer ------------------------------------------ */

/* What one framer over the whole text and nw_decode_event give: the
 * reference the pipeline's pieces must reproduce exactly. */
typedef struct ref_ctx {
    seen *s;
    char *raw;            /* every rejected frame's bytes, in order */
    size_t raw_len, raw_cap;
} ref_ctx;

static void keep_raw(ref_ctx *r, const char *p, size_t n)
{
    if (r->raw_len + n > r->raw_cap) {
        r->raw_cap = (r->raw_len + n) * 2;
        r->raw = realloc(r->raw, r->raw_cap);
        if (!r->raw)
            ck_abort_msg("out of memory");
    }
    memcpy(r->raw + r->raw_len, p, n);
    r->raw_len += n;
}

static int ref_frame(void *ctx, const nw_frame *f)
{
    ref_ctx *r = ctx;
    got *g = next_got(r->s);
    if (f->kind == NW_FRAME_OBJECT) {
        nw_reject rj = nw_decode_event(f->data, f->len, DEFAULT_HOST, &g->ev, g->detail,
                                       sizeof g->detail);
        if (rj == NW_ACCEPTED) {
            g->accepted = 1;
            memset(g->detail, 0, sizeof g->detail);
            r->s->n++;
            return 0;
        }
        memset(&g->ev, 0, sizeof g->ev);
        g->reason = rj;
    } else {
        static const nw_reject of_kind[] = {
            [NW_FRAME_GARBAGE] = NW_REJ_BAD_JSON, [NW_FRAME_TRUNCATED] = NW_REJ_TRUNCATED,
            [NW_FRAME_TOO_LARGE] = NW_REJ_TOO_LARGE, [NW_FRAME_NOT_OBJECT] = NW_REJ_NOT_OBJECT};
        g->reason = of_kind[f->kind];
        g->detail[0] = '\0';
    }
    g->offset = f->offset;
    g->raw_len = f->len;
    g->full_len = f->full_len;
    keep_raw(r, f->data, f->len);
    r->s->n++;
    return 0;
}

/* The pipeline's view, with the rejected frames' bytes kept too. */
static ref_ctx *run_ctx;

static int piece_reject(void *ctx, const nw_rejection *rj)
{
    keep_raw(run_ctx, rj->raw, rj->raw_len);
    return on_reject(ctx, rj);
}

static void ck_pieces_match(const char *text, size_t len, const char *what)
{
    seen ref_seen;
    ref_ctx ref = {&ref_seen, NULL, 0, 0};
    memset(&ref_seen, 0, sizeof ref_seen);
    nw_framer *fr = nw_framer_new(NW_EVENT_MAX_BYTES);
    ck_assert_int_eq(nw_framer_feed(fr, text, len, ref_frame, &ref), 0);
    ck_assert_int_eq(nw_framer_finish(fr, ref_frame, &ref), 0);
    nw_framer_free(fr);

    static const nw_pipeline_cbs cbs = {.on_event = on_event, .on_reject = piece_reject};
    for (int how = 0; how < 3; how++) {
        seen got_;
        ref_ctx mine = {NULL, NULL, 0, 0};
        run_ctx = &mine;
        memset(&got_, 0, sizeof got_);
        nw_pipeline_opts o = {how == 2 ? 1 : 2, DEFAULT_HOST, "x"};
        nw_err err = {""};
        nw_pipeline_stats ps;
        if (how == 0) {
            ck_assert_int_eq(nw_pipeline_run_buf(text, len, &o, &cbs, &got_, &ps, &err), NW_OK);
        } else {
            char path[] = "/tmp/test_pipeline_XXXXXX";
            int fd = mkstemp(path);
            ck_assert_int_ge(fd, 0);
            unlink(path);
            write_all(fd, text, len, len ? len : 1);
            ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
            ck_assert_int_eq(nw_pipeline_run_fd(fd, &o, &cbs, &got_, &ps, &err), NW_OK);
            close(fd);
        }
        ck_assert_msg(got_.n == ref_seen.n, "%s (%d): %zu results, want %zu", what, how,
                      got_.n, ref_seen.n);
        for (size_t k = 0; k < ref_seen.n; k++) {
            got *x = &got_.g[k], *y = &ref_seen.g[k];
            ck_assert_msg(x->accepted == y->accepted && x->reason == y->reason,
                          "%s (%d): result %zu: %s vs %s", what, how, k,
                          nw_reject_name(x->reason), nw_reject_name(y->reason));
            if (x->accepted) {
                ck_assert_msg(memcmp(&x->ev, &y->ev, sizeof x->ev) == 0,
                              "%s (%d): event %zu differs", what, how, k);
                continue;
            }
            ck_assert_msg(x->offset == y->offset && x->raw_len == y->raw_len &&
                              x->full_len == y->full_len,
                          "%s (%d): rejection %zu at %llu/%zu/%zu vs %llu/%zu/%zu", what,
                          how, k, (unsigned long long)x->offset, x->raw_len, x->full_len,
                          (unsigned long long)y->offset, y->raw_len, y->full_len);
            if (y->detail[0])
                ck_assert_str_eq(x->detail, y->detail);
        }
        ck_assert_uint_eq(mine.raw_len, ref.raw_len);
        ck_assert_msg(memcmp(mine.raw, ref.raw, ref.raw_len) == 0, "%s: raw bytes differ", what);
        free(mine.raw);
        free(got_.g);
    }
    free(ref.raw);
    free(ref_seen.g);
}

/* gen.py's output in each format, with malformed lines (two too large). */
static void ck_generated(const char *format)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 '%s/../../bench/gen.py' --events 3000 --hosts 9 --seed 5 "
             "--malformed 0.02 --format %s --out - 2>/dev/null",
             NW_TEST_DATA, format);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    sb t = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        sb_add(&t, buf, n);
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_uint_gt(t.len, 2 * NW_PIPELINE_BATCH_BYTES);
    ck_pieces_match(t.s, t.len, format);
    free(t.s);
}

START_TEST(pieces_match_one_framer_ndjson) { ck_generated("ndjson"); }
END_TEST
START_TEST(pieces_match_one_framer_pretty) { ck_generated("pretty"); }
END_TEST
START_TEST(pieces_match_one_framer_array) { ck_generated("array"); }
END_TEST

START_TEST(pieces_match_one_framer_odd_inputs)
{
    stream st = make_stream();
    sb t = {0};
    size_t part = st.text.len / 8;   /* a cut inside an event is fine too */

    /* Dense: far more than a batch's frames in one piece. */
    for (int i = 0; i < 200000; i++)
        sb_adds(&t, "{}\n");
    sb_add(&t, st.text.s, part);
    ck_pieces_match(t.s, t.len, "dense");
    t.len = 0;

    /* A line longer than a piece, then events; one object cut short at
     * a column-0 brace right where a piece may end. */
    sb_add(&t, st.text.s, part);
    sb_adds(&t, "\n{\"message\":\"");
    for (int i = 0; i < 150000; i++)
        sb_adds(&t, "0123456789");
    sb_adds(&t, "\"}\n{\"cut\":\n{\"a\":1}\n");
    sb_add(&t, st.text.s, part);
    ck_pieces_match(t.s, t.len, "long line");
    t.len = 0;

    /* An array whose elements hold escaped newlines before column-0
     * braces: pieces cut there cannot be framed apart. */
    sb_adds(&t, "\xEF\xBB\xBF  [\n");
    for (int i = 0; i < 30000; i++)
        sb_adds(&t, i % 7 == 0 ? "\"a\\\n{\\\"x\\\":1}\",\n" : "{\"system\":{},\"event_data\":{}},\n");
    sb_adds(&t, "{}]\n");
    ck_pieces_match(t.s, t.len, "array with escaped newlines");
    t.len = 0;

    /* Input that starts as NDJSON and turns into an array. */
    sb_add(&t, st.text.s, part);
    sb_adds(&t, "\n[\n");
    sb_add(&t, st.text.s, part);
    ck_pieces_match(t.s, t.len, "array later");

    free(t.s);
    free_stream(&st);
}
END_TEST

static Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, buffer_one_and_four_threads_agree);
    tcase_add_test(tc, file_and_pipe_agree_with_buffer);
    tcase_add_test(tc, callback_stop_shuts_down_cleanly);
    tcase_add_test(tc, read_error_is_io);
    tcase_add_test(tc, empty_and_small_inputs);
    tcase_add_test(tc, live_source_is_not_held_back);
    tcase_add_test(tc, pieces_match_one_framer_ndjson);
    tcase_add_test(tc, pieces_match_one_framer_pretty);
    tcase_add_test(tc, pieces_match_one_framer_array);
    tcase_add_test(tc, pieces_match_one_framer_odd_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nw_check_run(pipeline_suite());
}
