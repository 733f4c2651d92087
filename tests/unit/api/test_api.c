/* test_api.c -- encoders and parameter parsing against known answers. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/addrclass.h"
#include "netwho/encode.h"
#include "netwho/params.h"
#include "tests/unit/check_main.h"

#define T0 (1773620496LL * NW_TICKS_PER_SEC + 4231059)

static nw_conn sample(void)
{
    nw_conn c;
    memset(&c, 0, sizeof c);
    c.id = 42;
    c.host = "WS\"01\\";
    c.pid = 4168;
    c.proto = NW_PROTO_TCP;
    c.ip_version = 6;
    c.direction = NW_DIR_INBOUND;
    c.state = NW_STATE_CLOSED;
    nw_addr_parse("2001:DB8::1", 11, 6, &c.local_ip, NULL);
    nw_addr_parse("::1", 3, 6, &c.remote_ip, NULL);
    c.local_port = 445;
    c.remote_port = 51218;
    c.first_seen = T0;
    c.last_seen = T0 + 10;
    c.bytes_sent = 1007;
    c.bytes_received = 6;
    c.bytes_copied = 6;
    c.send_events = 1;
    c.receive_events = 1;
    c.copy_events = 1;
    c.has_tcp_opts = 1;
    c.mss = 65475;
    c.rcvwin = 2160675;
    c.rcvwinscale = 8;
    return c;
}

START_TEST(json_connection_has_every_field)
{
    nw_buf b;
    nw_buf_init(&b, 1 << 16);
    nw_conn c = sample();
    ck_assert_int_eq(nw_json_conn(&b, &c), 0);
    cJSON *j = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(j);
    static const char *keys[] = {"id", "host", "pid", "proto", "ip_version", "direction",
                                 "local_ip", "local_port", "remote_ip", "remote_port",
                                 "first_seen", "last_seen", "state", "bytes_sent",
                                 "bytes_received", "bytes_retransmitted", "bytes_copied",
                                 "send_events", "receive_events", "retransmit_events",
                                 "copy_events", "reconnects", "tcp_options", "community_id",
                                 "local_ip_class", "remote_ip_class", "process"};
    /* the keys, in the documented order */
    cJSON *it = j->child;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++, it = it->next) {
        ck_assert_ptr_nonnull(it);
        ck_assert_str_eq(it->string, keys[i]);
    }
    ck_assert_ptr_null(it);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "host")->valuestring, "WS\"01\\");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "local_ip")->valuestring, "2001:db8::1");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "remote_ip")->valuestring, "::1");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "first_seen")->valuestring,
                     "2026-03-16T00:21:36.4231059Z");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "last_seen")->valuestring,
                     "2026-03-16T00:21:36.4231069Z");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "direction")->valuestring, "inbound");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "state")->valuestring, "closed");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "proto")->valuestring, "tcp");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "ip_version")->valueint, 6);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "bytes_sent")->valueint, 1007);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "bytes_copied")->valueint, 6);
    cJSON *o = cJSON_GetObjectItem(j, "tcp_options");
    ck_assert_int_eq(cJSON_GetObjectItem(o, "mss")->valueint, 65475);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "rcvwin")->valueint, 2160675);
    /* Community ID v1, seed 0, of TCP [2001:db8::1]:445 <-> [::1]:51218,
     * computed with Python's hashlib and base64 from the specification. */
    ck_assert_str_eq(cJSON_GetObjectItem(j, "community_id")->valuestring,
                     "1:Q5Fk0rsqANmFIiF0w3ZmTeQT4Fo=");
    /* 2001:db8::/32 is documentation space: not private, so public. */
    ck_assert_str_eq(cJSON_GetObjectItem(j, "local_ip_class")->valuestring, "public");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "remote_ip_class")->valuestring, "loopback");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "process")));
    cJSON_Delete(j);

    /* An IPv4 peer of a dual-stack socket hashes as IPv4 (the packets
     * were): the same ID as the IPv4 connection. */
    c.has_tcp_opts = 0;
    nw_addr_parse("::ffff:10.2.10.21", 17, 6, &c.local_ip, NULL);
    nw_addr_parse("::ffff:10.2.10.11", 17, 6, &c.remote_ip, NULL);
    c.local_port = 5985;
    c.remote_port = 51201;
    nw_buf_reset(&b);
    nw_json_conn(&b, &c);
    j = cJSON_Parse(b.data);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "community_id")->valuestring,
                     "1:o8menXQ4hXu31Srz17+8UsfVwNM=");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "local_ip_class")->valuestring, "private");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "remote_ip_class")->valuestring, "private");
    cJSON_Delete(j);
    c.ip_version = 4;
    nw_buf_reset(&b);
    nw_json_conn(&b, &c);
    j = cJSON_Parse(b.data);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "community_id")->valuestring,
                     "1:o8menXQ4hXu31Srz17+8UsfVwNM=");
    cJSON_Delete(j);
    c = sample();

    c.has_tcp_opts = 0;
    c.ip_version = 4;
    nw_addr_parse("10.2.10.21", 10, 4, &c.local_ip, NULL);
    nw_buf_reset(&b);
    nw_json_conn(&b, &c);
    j = cJSON_Parse(b.data);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "tcp_options")));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "local_ip")->valuestring, "10.2.10.21");
    /* IPv4 with an IPv6 remote end cannot be hashed: null, not a guess. */
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "community_id")));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "local_ip_class")->valuestring, "private");
    cJSON_Delete(j);
    nw_buf_free(&b);
}
END_TEST

/* The encoder writes times and numbers without printf: its text must be
 * nw_time_format's for any time (either side of the epoch, day and year
 * edges, out of range -> null) and exact for the largest counters. */
START_TEST(json_times_and_numbers_match_printf)
{
    static const nw_time day = 86400LL * NW_TICKS_PER_SEC;
    const nw_time fixed[] = {0, -1, 1, T0, day - 1, day, -day, -day - 1,
                             (253402300800LL - 1) * NW_TICKS_PER_SEC + 9999999, /* 9999-12-31 */
                             253402300800LL * NW_TICKS_PER_SEC,                 /* 10000-01-01 */
                             -62167219200LL * NW_TICKS_PER_SEC,                 /* 0000-01-01 */
                             -62167219200LL * NW_TICKS_PER_SEC - 1,
                             NW_TIME_MIN / 2, NW_TIME_MAX / 2};
    nw_buf b;
    nw_buf_init(&b, 1 << 16);
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        nw_time t;
        if (i < (int)(sizeof fixed / sizeof fixed[0])) {
            t = fixed[i];
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* mostly nearby days (the cache), sometimes anywhere */
            t = i % 7 ? T0 + (nw_time)(x % (400 * (uint64_t)day)) - 200 * day : (nw_time)x;
        }
        nw_who_row w;
        memset(&w, 0, sizeof w);
        snprintf(w.host, sizeof w.host, "h");
        w.pid = UINT32_MAX;
        w.connections = UINT64_MAX;
        w.bytes_sent = x;
        w.first_seen = t;
        w.last_seen = t + 1;
        nw_buf_reset(&b);
        nw_enc e;
        nw_enc_begin(&e, NW_FMT_NDJSON, NW_REC_WHO, &b);
        ck_assert_int_eq(nw_enc_who(&e, &w), 0);
        char f1[NW_TIME_STRLEN], f2[NW_TIME_STRLEN], want[512];
        char q1[NW_TIME_STRLEN + 2] = "null", q2[NW_TIME_STRLEN + 2] = "null";
        if (nw_time_format(t, f1, sizeof f1))
            snprintf(q1, sizeof q1, "\"%s\"", f1);
        if (nw_time_format(t + 1, f2, sizeof f2))
            snprintf(q2, sizeof q2, "\"%s\"", f2);
        snprintf(want, sizeof want,
                 "{\"host\":\"h\",\"pid\":4294967295,\"connections\":18446744073709551615,"
                 "\"bytes_sent\":%llu,\"bytes_received\":0,\"first_seen\":%s,"
                 "\"last_seen\":%s}\n",
                 (unsigned long long)x, q1, q2);
        ck_assert_str_eq(b.data, want);
    }
    nw_buf_free(&b);
}
END_TEST

START_TEST(list_formats_frame_rows)
{
    nw_buf b;
    nw_buf_init(&b, 1 << 16);
    nw_conn c = sample();
    nw_enc e;
    /* json: a parseable array of two */
    nw_enc_begin(&e, NW_FMT_JSON, NW_REC_CONN, &b);
    nw_enc_conn(&e, &c);
    nw_enc_conn(&e, &c);
    nw_enc_end(&e);
    cJSON *j = cJSON_Parse(b.data);
    ck_assert(cJSON_IsArray(j));
    ck_assert_int_eq(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);
    /* empty json list is [] */
    nw_buf_reset(&b);
    nw_enc_begin(&e, NW_FMT_JSON, NW_REC_CONN, &b);
    nw_enc_end(&e);
    ck_assert_str_eq(b.data, "[]\n");
    /* ndjson: one object per line */
    nw_buf_reset(&b);
    nw_enc_begin(&e, NW_FMT_NDJSON, NW_REC_CONN, &b);
    nw_enc_conn(&e, &c);
    nw_enc_conn(&e, &c);
    int lines = 0;
    for (char *p = b.data; (p = strchr(p, '\n')); p++)
        lines++;
    ck_assert_int_eq(lines, 2);
    /* csv: header + quoted host with doubled quote */
    nw_buf_reset(&b);
    c.host = "a,\"b\"";
    nw_enc_begin(&e, NW_FMT_CSV, NW_REC_CONN, &b);
    nw_enc_conn(&e, &c);
    ck_assert(strncmp(b.data, "id,host,pid,proto,ip_version,direction,", 39) == 0);
    ck_assert_ptr_nonnull(strstr(b.data, "process_command_line,process_guid\r\n42,\"a,\"\"b\"\"\",4168,tcp,6,inbound,"
                                         "2001:db8::1,445,::1,51218,"));
    /* the flow columns sit between the TCP options and the process */
    ck_assert_ptr_nonnull(strstr(b.data, ",tcp_sndwinscale,community_id,local_ip_class,"
                                         "remote_ip_class,process_image,"));
    ck_assert_ptr_nonnull(strstr(b.data, ",65475,0,0,0,2160675,8,0,"
                                         "1:Q5Fk0rsqANmFIiF0w3ZmTeQT4Fo=,public,loopback,,,,"));
    nw_buf_free(&b);
}
END_TEST

START_TEST(json_strings_are_always_valid)
{
    nw_buf b;
    nw_buf_init(&b, 1024);
    const char raw[] = "q\"b\\s\n\x01\xff\xc3\xa9\xed\xa0\x80z";   /* quote, ctrl, bad UTF-8, é, surrogate */
    ck_assert_int_eq(nw_buf_add_json_str(&b, raw, sizeof raw - 1), 0);
    ck_assert_str_eq(b.data, "\"q\\\"b\\\\s\\n\\u0001\\ufffd\xc3\xa9\\ufffd\\ufffd\\ufffdz\"");
    cJSON *j = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(j);
    cJSON_Delete(j);
    /* the maximum holds: nothing is appended past it */
    nw_buf small;
    nw_buf_init(&small, 8);
    ck_assert_int_eq(nw_buf_adds(&small, "12345678"), 0);
    ck_assert_int_eq(nw_buf_adds(&small, "9"), -1);
    ck_assert_int_eq(small.len, 8);
    ck_assert_int_eq(nw_buf_addf(&small, "%d", 1), -1);
    nw_buf_free(&small);
    nw_buf_free(&b);
}
END_TEST

static const char *apply(nw_query *q, const char *name, const char *value, nw_err *err)
{
    const char *badp = NULL;
    if (nw_params_apply(q, name, value, &badp, err) == NW_OK)
        return NULL;
    ck_assert_ptr_nonnull(badp);
    return badp;
}

START_TEST(params_accept_and_refuse)
{
    nw_query q;
    nw_err err;
    nw_query_init(&q);
    ck_assert_ptr_null(apply(&q, "ip", "10.0.0.0/8", &err));
    ck_assert_int_eq(q.has_ip, 1);
    ck_assert_ptr_null(apply(&q, "port", "443", &err));
    ck_assert_int_eq(q.port, 443);
    ck_assert_ptr_null(apply(&q, "pid", "4294967295", &err));
    ck_assert_int_eq(q.pid, 4294967295LL);
    ck_assert_ptr_null(apply(&q, "from", "2026-03-16T00:00:00 01:00", &err));
    ck_assert_int_eq(q.from, (1773619200LL - 3600) * NW_TICKS_PER_SEC);
    ck_assert_ptr_null(apply(&q, "to", "1773620496", &err));
    ck_assert_ptr_null(apply(&q, "proto", "udp", &err));
    ck_assert_int_eq(q.proto, NW_PROTO_UDP);
    ck_assert_ptr_null(apply(&q, "state", "failed", &err));
    ck_assert_ptr_null(apply(&q, "direction", "inbound", &err));
    ck_assert_ptr_null(apply(&q, "limit", "10", &err));
    ck_assert_int_eq(q.scope, -1);
    ck_assert_ptr_null(apply(&q, "scope", "public", &err));
    ck_assert_int_eq(q.scope, NW_ACLASS_PUBLIC);
    ck_assert_ptr_null(apply(&q, "scope", "link-local", &err));
    ck_assert_int_eq(q.scope, NW_ACLASS_LINK_LOCAL);
    ck_assert_ptr_null(apply(&q, "exclude_loopback", "true", &err));
    ck_assert_int_eq(q.exclude_loopback, 1);
    ck_assert_ptr_null(apply(&q, "exclude_loopback", "0", &err));
    ck_assert_int_eq(q.exclude_loopback, 0);
    ck_assert_str_eq(q.community_id, "");
    ck_assert_ptr_null(apply(&q, "community_id", "1:o8menXQ4hXu31Srz17+8UsfVwNM=", &err));
    ck_assert_str_eq(q.community_id, "1:o8menXQ4hXu31Srz17+8UsfVwNM=");
    /* an unencoded '+' in a URL arrives as a space: read back as '+' */
    ck_assert_ptr_null(apply(&q, "community_id", "1:o8menXQ4hXu31Srz17 8UsfVwNM=", &err));
    ck_assert_str_eq(q.community_id, "1:o8menXQ4hXu31Srz17+8UsfVwNM=");

    struct { const char *name, *value, *param; } bad[] = {
        {"ip", "10.0.0.0/33", "ip"},        {"ip", "' OR 1=1 --", "ip"},
        {"port", "80abc", "port"},          {"port", "65536", "port"},
        {"port", "-1", "port"},             {"local_port", "", "local_port"},
        {"pid", "4294967296", "pid"},       {"pid", "0x10", "pid"},
        {"proto", "icmp", "proto"},         {"state", "open", "state"},
        {"direction", "out", "direction"},  {"from", "yesterday", "from"},
        {"to", "2026-02-30T00:00:00Z", "to"}, {"limit", "0", "limit"},
        {"limit", "99999999999999999999", "limit"}, {"host", "", "host"},
        {"colour", "red", "colour"},
        {"scope", "Public", "scope"},       {"scope", "global", "scope"},
        {"scope", "", "scope"},             {"exclude_loopback", "yes", "exclude_loopback"},
        {"exclude_loopback", "", "exclude_loopback"},
        {"community_id", "", "community_id"},
        {"community_id", "1:o8menXQ4hXu31Srz17+8UsfVwNM", "community_id"},   /* no pad */
        {"community_id", "1:o8menXQ4hXu31Srz17+8UsfVwNM==", "community_id"},
        {"community_id", "2:o8menXQ4hXu31Srz17+8UsfVwNM=", "community_id"},  /* version */
        {"community_id", "1o8menXQ4hXu31Srz17+8UsfVwNM=x", "community_id"},
        {"community_id", "1:o8menXQ4hXu31Srz17-8UsfVwNM=", "community_id"},  /* base64url */
        {"community_id", "1:o8menXQ4hXu31Srz17+8UsfVw=M=", "community_id"},
        {"community_id", "o8menXQ4hXu31Srz17+8UsfVwNM=", "community_id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nw_query_init(&q);
        const char *p = apply(&q, bad[i].name, bad[i].value, &err);
        ck_assert_msg(p != NULL, "%s=%s accepted", bad[i].name, bad[i].value);
        ck_assert_str_eq(p, bad[i].param);
        ck_assert_msg(strstr(err.msg, bad[i].param) == err.msg || strstr(err.msg, "unknown"),
                      "%s", err.msg);
    }
    /* an overlong value is refused and not echoed in full */
    char big[2000];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    nw_query_init(&q);
    ck_assert_ptr_nonnull(apply(&q, "host", big, &err));
    ck_assert_int_lt(strlen(err.msg), 200);
    /* from must come before to */
    nw_query_init(&q);
    apply(&q, "from", "2026-03-16T00:00:00Z", &err);
    apply(&q, "to", "2026-03-15T00:00:00Z", &err);
    const char *badp = NULL;
    ck_assert_int_eq(nw_params_check(&q, &badp, &err), NW_ERR_INVALID);
    ck_assert_str_eq(badp, "to");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("encode");
    tcase_add_test(tc, json_connection_has_every_field);
    tcase_add_test(tc, list_formats_frame_rows);
    tcase_add_test(tc, json_times_and_numbers_match_printf);
    tcase_add_test(tc, json_strings_are_always_valid);
    tcase_add_test(tc, params_accept_and_refuse);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
