/* test_scan.c -- the scanner fast path (collector/scan.h) against the cJSON
 * path: nw_decode_event and nw_decode_event_cjson must give the same reason,
 * the same detail and, when accepted, the same event, field by field, for
 * every line of tests/data, for gen.py's output (with its malformed lines)
 * in all three formats, and for thousands of mutations of real events. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/scan.h"
#include "netwho/decode.h"
#include "netwho/framer.h"
#include "tests/unit/check_main.h"

#define GEN_PY NW_TEST_DATA "/../../bench/gen.py"
#define HOST "defhost"

typedef struct tally {
    size_t total, accepted, scanned;
} tally;

#define ck_field(f) \
    ck_assert_msg(a->f == b->f, "%s: field " #f " differs in %.*s", what, (int)len, json)

static void same_event(const nw_event *a, const nw_event *b, const char *json, size_t len,
                       const char *what)
{
    ck_field(time);
    ck_field(event_id);
    ck_field(kind);
    ck_field(proto);
    ck_field(ip_version);
    ck_field(has_tcp_opts);
    ck_field(has_times);
    ck_field(pid);
    ck_field(size);
    ck_assert_msg(memcmp(&a->local_ip, &b->local_ip, sizeof a->local_ip) == 0, "%s: local_ip", what);
    ck_assert_msg(memcmp(&a->remote_ip, &b->remote_ip, sizeof a->remote_ip) == 0, "%s: remote_ip", what);
    ck_field(local_port);
    ck_field(remote_port);
    ck_field(mss);
    ck_field(sackopt);
    ck_field(tsopt);
    ck_field(wsopt);
    ck_field(rcvwinscale);
    ck_field(sndwinscale);
    ck_field(rcvwin);
    ck_field(startime);
    ck_field(endtime);
    ck_field(seqnum);
    ck_field(connid);
    ck_field(fail_proto);
    ck_field(fail_code);
    ck_assert_msg(strcmp(a->host, b->host) == 0, "%s: host '%s' vs '%s'", what, a->host, b->host);
}

/* Both paths over one text; the results must agree. */
static void both(const char *json, size_t len, const char *what, tally *t)
{
    nw_event a, b;
    char da[NW_DETAIL_MAX], db[NW_DETAIL_MAX];
    nw_reject ra = nw_decode_event(json, len, HOST, &a, da, sizeof da);
    nw_reject rb = nw_decode_event_cjson(json, len, HOST, &b, db, sizeof db);
    ck_assert_msg(ra == rb, "%s: reason %s (fast) vs %s (cJSON) for %.*s", what,
                  nw_reject_name(ra), nw_reject_name(rb), (int)(len > 300 ? 300 : len), json);
    ck_assert_msg(strcmp(da, db) == 0, "%s: detail '%s' vs '%s'", what, da, db);
    if (ra == NW_ACCEPTED)
        same_event(&a, &b, json, len, what);
    nw_envelope env;
    t->total++;
    t->accepted += ra == NW_ACCEPTED;
    t->scanned += nw_scan_envelope(json, len, &env) == 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    size_t got;
    while ((got = fread(s + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            s = realloc(s, cap *= 2);
    }
    fclose(f);
    *len = n;
    return s;
}

/* Every frame of a stream, through the framer (any of its three formats);
 * frames the framer itself rejects are not events and are skipped. */
static int frame_cb(void *ctx, const nw_frame *f)
{
    if (f->kind == NW_FRAME_OBJECT)
        both(f->data, f->len, "frame", ctx);
    return 0;
}

static void frames_of(const char *s, size_t len, tally *t)
{
    nw_framer *fr = nw_framer_new(NW_EVENT_MAX_BYTES);
    ck_assert_int_eq(nw_framer_feed(fr, s, len, frame_cb, t), 0);
    ck_assert_int_eq(nw_framer_finish(fr, frame_cb, t), 0);
    nw_framer_free(fr);
}

static void file_frames(const char *path, tally *t)
{
    size_t len;
    char *s = slurp(path, &len);
    frames_of(s, len, t);
    free(s);
}

START_TEST(test_data_files)
{
    tally t = {0};
    file_frames(NW_TEST_DATA "/kernel_network_seed_examples.jsonl", &t);
    file_frames(NW_TEST_DATA "/sample.ndjson", &t);
    file_frames(NW_TEST_DATA "/kernel_process_start_detectionwiki_example.json", &t);
    ck_assert_uint_ge(t.total, 3000);
    /* The real events all take the fast path. */
    ck_assert_uint_ge(t.scanned * 100, t.accepted * 99);
}
END_TEST

/* gen.py output, with malformed lines, in one format. */
static void generated(const char *format)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 '%s' --events 4000 --hosts 7 --seed 11 --malformed 0.05 "
             "--format %s --out - 2>/dev/null",
             GEN_PY, format);
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run gen.py");
    size_t cap = 1 << 20, n = 0, got;
    char *s = malloc(cap);
    while ((got = fread(s + n, 1, cap - n, p)) > 0) {
        n += got;
        if (n == cap)
            s = realloc(s, cap *= 2);
    }
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_uint_gt(n, 100000);
    tally t = {0};
    frames_of(s, n, &t);
    free(s);
    ck_assert_uint_ge(t.total, 4000);
    ck_assert_uint_lt(t.accepted, t.total);   /* the malformed ones */
    ck_assert_uint_ge(t.scanned * 100, t.accepted * 99);
}

START_TEST(generated_ndjson) { generated("ndjson"); }
END_TEST
START_TEST(generated_pretty) { generated("pretty"); }
END_TEST
START_TEST(generated_array) { generated("array"); }
END_TEST

/* The seed's lines, one string each. */
static size_t seed_lines(char ***out)
{
    size_t len;
    char *s = slurp(NW_TEST_DATA "/kernel_network_seed_examples.jsonl", &len);
    char **v = NULL;
    size_t n = 0;
    for (char *p = s, *e = s + len; p < e;) {
        char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(e - p);
        if (l > 0) {
            v = realloc(v, (n + 1) * sizeof *v);
            v[n] = malloc(l + 1);
            memcpy(v[n], p, l);
            v[n++][l] = '\0';
        }
        p += l + 1;
    }
    free(s);
    *out = v;
    return n;
}

/* Every prefix of a real event, and every byte of it replaced by each of a
 * few troublemakers: the two paths must never disagree. */
START_TEST(mutations_of_real_events)
{
    static const char repl[] = {'"', '\\', '{', '}', '[', ',', ':', '0', '9', '-', '.',
                                'e', ' ', '\t', '\n', '\x01', 'x', 'N', '\0'};
    char **lines;
    size_t n = seed_lines(&lines);
    ck_assert_uint_ge(n, 16);
    tally t = {0};
    for (size_t i = 0; i < n; i++) {
        char *s = lines[i];
        size_t len = strlen(s);
        char *m = malloc(len + 1);
        for (size_t cut = 0; cut <= len; cut++)
            both(s, cut, "prefix", &t);
        /* Every 4th line gets every mutation; the rest every 11th byte. */
        size_t step = i % 4 == 0 ? 1 : 11;
        for (size_t at = 0; at < len; at += step) {
            for (size_t r = 0; r < sizeof repl; r++) {
                memcpy(m, s, len + 1);
                m[at] = repl[r];
                both(m, len, "mutation", &t);
            }
        }
        free(m);
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}
END_TEST

/* Hand-made cases near the scanner's edges. */
START_TEST(edge_cases)
{
    static const char *const cases[] = {
        /* numbers as JSON numbers, big, negative, fractions, exponents */
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":10,"
        "\"time_created\":\"2026-03-16T00:21:36.4231059Z\"},\"event_data\":{\"PID\":77,"
        "\"size\":10,\"saddr\":\"10.0.0.1\",\"daddr\":\"10.0.0.2\",\"sport\":1,\"dport\":2}}",
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":10.0,"
        "\"time_created\":\"2026-03-16T00:21:36.4231059Z\"},\"event_data\":{\"PID\":77,"
        "\"size\":1e1,\"saddr\":\"10.0.0.1\",\"daddr\":\"10.0.0.2\",\"sport\":1,\"dport\":2}}",
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"10\","
        "\"time_created\":\"2026-03-16T00:21:36.4231059Z\"},\"event_data\":{\"PID\":-0,"
        "\"size\":4294967295,\"saddr\":\"10.0.0.1\",\"daddr\":\"10.0.0.2\",\"sport\":65535,"
        "\"dport\":65536}}",
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"10\","
        "\"time_created\":\"2026-03-16T00:21:36.4231059Z\"},\"event_data\":{\"PID\":"
        "123456789012345678,\"size\":0,\"saddr\":\"10.0.0.1\",\"daddr\":\"10.0.0.2\","
        "\"sport\":1,\"dport\":2}}",
        /* duplicates: last system field wins, first event_data field */
        "{\"system\":{\"provider\":\"x\",\"PROVIDER\":\"Microsoft-Windows-Kernel-Network\","
        "\"event_id\":\"10\",\"event_id\":null,\"time_created\":\"2026-03-16T00:21:36Z\","
        "\"computer\":\"a\",\"Computer\":\"b\"},\"event_data\":{\"pid\":\"1\",\"PID\":\"2\","
        "\"size\":null,\"size\":\"5\",\"saddr\":\"10.0.0.1\",\"daddr\":\"10.0.0.2\","
        "\"sport\":\"1\",\"dport\":\"2\"}}",
        /* a second system / event_data is ignored; the first one counts */
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"13\","
        "\"time_created\":\"2026-03-16T00:21:36Z\"},\"event_data\":{\"PID\":\"1\","
        "\"saddr\":\"10.0.0.1\",\"daddr\":\"10.0.0.2\",\"sport\":\"1\",\"dport\":\"2\"},"
        "\"SYSTEM\":5,\"event_data\":[]}",
        "{\"SYSTEM\":null,\"system\":{},\"event_data\":{}}",
        "{\"system\":{},\"event_data\":{}}",
        "{\"system\":[],\"event_data\":{}}",
        "{}",
        "[]",
        "  {\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\"}, \"event_data\":{}}  ",
        /* escapes: in a key, in a read value, in a skipped value */
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"10\","
        "\"time_created\":\"2026-03-16T00:21:36Z\",\"guid\":\"\\u00e9\\n\\\"\"},"
        "\"event_data\":{\"P\\u0049D\":\"1\",\"size\":\"5\",\"saddr\":\"10.0.0.1\","
        "\"daddr\":\"10.0.0.2\",\"sport\":\"1\",\"dport\":\"2\"}}",
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"10\","
        "\"time_created\":\"2026-03-16T00:21:36Z\",\"computer\":\"h\\u0000x\"},"
        "\"event_data\":{\"PID\":\"1\",\"size\":\"5\",\"saddr\":\"10.0.0.1\","
        "\"daddr\":\"10.0.0.2\",\"sport\":\"1\",\"dport\":\"2\"}}",
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"10\","
        "\"time_created\":\"2026-03-16T00:21:36Z\",\"guid\":\"\\ud800\"},"
        "\"event_data\":{\"PID\":\"1\",\"size\":\"5\",\"saddr\":\"10.0.0.1\","
        "\"daddr\":\"10.0.0.2\",\"sport\":\"1\",\"dport\":\"2\"}}",
        /* odd whitespace cJSON takes and the scanner leaves to it */
        "{\"system\":\v{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"10\","
        "\"time_created\":\"2026-03-16T00:21:36Z\"},\"event_data\":{\"PID\":\"1\","
        "\"size\":\"5\",\"saddr\":\"10.0.0.1\",\"daddr\":\"10.0.0.2\",\"sport\":\"1\","
        "\"dport\":\"2\"}}",
        /* booleans and containers where numbers belong */
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":true,"
        "\"time_created\":\"2026-03-16T00:21:36Z\"},\"event_data\":{}}",
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"10\","
        "\"time_created\":\"2026-03-16T00:21:36Z\"},\"event_data\":{\"PID\":{},\"size\":[1]}}",
        /* a long computer name, an empty one, a non-string one */
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"17\","
        "\"time_created\":\"2026-03-16T00:21:36Z\",\"computer\":\"\"},\"event_data\":{"
        "\"Proto\":\"2\",\"FailureCode\":\"1225\"}}",
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"17\","
        "\"time_created\":\"2026-03-16T00:21:36Z\",\"computer\":7},\"event_data\":{"
        "\"Proto\":\"2\",\"FailureCode\":\"1225\"}}",
        /* deep nesting in a skipped value */
        "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\",\"event_id\":\"17\","
        "\"time_created\":\"2026-03-16T00:21:36Z\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
        "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},\"event_data\":{\"Proto\":\"2\",\"FailureCode\":\"1\"}}",
        /* trailing text */
        "{\"system\":{},\"event_data\":{}} x",
        "{\"system\":{},\"event_data\":{}}{}",
    };
    tally t = {0};
    char big[600];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        both(cases[i], strlen(cases[i]), "edge", &t);
    /* A computer name of 255 and of 256 bytes. */
    for (int n = 255; n <= 256; n++) {
        char name[300];
        memset(name, 'h', (size_t)n);
        name[n] = '\0';
        snprintf(big, sizeof big,
                 "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Network\","
                 "\"event_id\":\"17\",\"time_created\":\"2026-03-16T00:21:36Z\","
                 "\"computer\":\"%s\"},\"event_data\":{\"Proto\":\"2\",\"FailureCode\":\"1\"}}",
                 name);
        both(big, strlen(big), "long computer", &t);
    }
    /* Every case's prefixes too. */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t cut = 0; cut < strlen(cases[i]); cut++)
            both(cases[i], cut, "edge prefix", &t);
}
END_TEST

static Suite *scan_suite(void)
{
    Suite *s = suite_create("scan");
    TCase *tc = tcase_create("scan");
    tcase_add_test(tc, test_data_files);
    tcase_add_test(tc, generated_ndjson);
    tcase_add_test(tc, generated_pretty);
    tcase_add_test(tc, generated_array);
    tcase_add_test(tc, mutations_of_real_events);
    tcase_add_test(tc, edge_cases);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return nw_check_run(scan_suite());
}
