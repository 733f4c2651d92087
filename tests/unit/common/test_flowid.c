/* test_flowid.c -- Community ID v1 against the specification's published
 * test vectors. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/flowid.h"
#include "tests/unit/check_main.h"

typedef struct vec {
    int proto;
    const char *saddr;
    int sport;                   /* -1: the protocol has no ports */
    const char *daddr;
    int dport;
    int seed;
    const char *id;
} vec;

/*
 * Copied as data from github.com/corelight/community-id-spec, commit
 * b1fe530: baseline/baseline_deflt.json (seed 0, all of it),
 * baseline/baseline_seed1.json (seed 1, its TCP and UDP flows), and the
 * tables of baseline/README.md (the 1.2.3.4 / 5.6.7.8 and fe80:0001:...
 * rows whose ports need no ICMP mapping).  ICMP rows in the JSON files
 * carry the port equivalents already (type, counterpart), so they hash as
 * given.
 */
static const vec vectors[] = {
    /* baseline_deflt.json */
    {58, "fe80::200:86ff:fe05:80da", 135, "fe80::260:97ff:fe07:69ea", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {58, "fe80::260:97ff:fe07:69ea", 136, "fe80::200:86ff:fe05:80da", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {58, "fe80::260:97ff:fe07:69ea", 135, "fe80::200:86ff:fe05:80da", 136, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck="},
    {58, "fe80::200:86ff:fe05:80da", 136, "fe80::260:97ff:fe07:69ea", 135, 0, "1:zavyT/cezQr1fmImYCwYnMXbgck="},
    {58, "3ffe:501:1800:2345::2", 3, "3ffe:507:0:1:200:86ff:fe05:80da", 0, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="},
    {58, "3ffe:501:410:0:2c0:dfff:fe47:33e", 1, "3ffe:507:0:1:200:86ff:fe05:80da", 4, 0, "1:hLZd0XGWojozrvxqE0dWB1iM6R0="},
    {58, "3ffe:507:0:1:200:86ff:fe05:80da", 128, "3ffe:501:0:1001::2", 129, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
    {58, "3ffe:501:0:1001::2", 129, "3ffe:507:0:1:200:86ff:fe05:80da", 128, 0, "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg="},
    {58, "fe80::200:86ff:fe05:80da", 133, "ff02::2", 134, 0, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="},
    {58, "fe80::260:97ff:fe07:69ea", 134, "ff02::1", 133, 0, "1:pkvHqCL88/tg1k4cPigmZXUtL00="},
    {1, "192.168.0.89", 8, "192.168.0.1", 0, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {1, "192.168.0.1", 0, "192.168.0.89", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {1, "10.0.0.1", 11, "10.0.0.2", 0, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="},
    {6, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, "2607:f8b0:400c:c03::1a", 25, 0, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {6, "2607:f8b0:400c:c03::1a", 25, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, 0, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {132, "192.168.170.8", 7, "192.168.170.56", 7, 0, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {132, "192.168.170.56", 7, "192.168.170.8", 7, 0, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {6, "128.232.110.120", 34855, "66.35.250.204", 80, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {6, "66.35.250.204", 80, "128.232.110.120", 34855, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {17, "192.168.1.52", 54585, "8.8.8.8", 53, 0, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {17, "8.8.8.8", 53, "192.168.1.52", 54585, 0, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {46, "10.1.12.1", -1, "10.1.12.2", -1, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
    {46, "10.1.12.2", -1, "10.1.12.1", -1, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
    /* baseline_seed1.json */
    {6, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, "2607:f8b0:400c:c03::1a", 25, 1, "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {6, "2607:f8b0:400c:c03::1a", 25, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943, 1, "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    {6, "128.232.110.120", 34855, "66.35.250.204", 80, 1, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {6, "66.35.250.204", 80, "128.232.110.120", 34855, 1, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {17, "192.168.1.52", 54585, "8.8.8.8", 53, 1, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
    {17, "8.8.8.8", 53, "192.168.1.52", 54585, 1, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="},
    /* baseline/README.md tables: defaults, then seed=1 */
    {6, "1.2.3.4", 1122, "5.6.7.8", 3344, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
    {6, "5.6.7.8", 3344, "1.2.3.4", 1122, 0, "1:wCb3OG7yAFWelaUydu0D+125CLM="},
    {17, "1.2.3.4", 1122, "5.6.7.8", 3344, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="},
    {17, "5.6.7.8", 3344, "1.2.3.4", 1122, 0, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg="},
    {132, "1.2.3.4", 1122, "5.6.7.8", 3344, 0, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8="},
    {46, "1.2.3.4", -1, "5.6.7.8", -1, 0, "1:ikv3kmf89luf73WPz1jOs49S768="},
    {46, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", -1, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", -1, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="},
    {46, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", -1, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", -1, 0, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0="},
    {6, "1.2.3.4", 1122, "5.6.7.8", 3344, 1, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
    {6, "5.6.7.8", 3344, "1.2.3.4", 1122, 1, "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="},
    {17, "1.2.3.4", 1122, "5.6.7.8", 3344, 1, "1:OShq+iKDAMVouh/4bMxB9Sz4amw="},
    {46, "1.2.3.4", -1, "5.6.7.8", -1, 1, "1:/buhqeOmaRCopOZFy9HnoJd5XW8="},
};

static nw_addr addr(const char *s, int *version)
{
    nw_addr a;
    ck_assert_msg(nw_addr_parse(s, strlen(s), 0, &a, version) == 0, "parse %s", s);
    return a;
}

START_TEST(spec_vectors)
{
    const vec *v = &vectors[_i];
    int v1, v2;
    nw_addr s = addr(v->saddr, &v1), d = addr(v->daddr, &v2);
    ck_assert_int_eq(v1, v2);
    char out[NW_COMMUNITY_ID_STRLEN];
    int n = nw_community_id(&s, (uint16_t)(v->sport < 0 ? 0 : v->sport), &d,
                            (uint16_t)(v->dport < 0 ? 0 : v->dport), (uint8_t)v->proto, v1,
                            (uint16_t)v->seed, out, sizeof out);
    ck_assert_int_eq(n, NW_COMMUNITY_ID_LEN);
    ck_assert_uint_eq(strlen(out), NW_COMMUNITY_ID_LEN);
    ck_assert_msg(strcmp(out, v->id) == 0, "vector %d (%s:%d -> %s:%d proto %d seed %d): %s != %s",
                  _i, v->saddr, v->sport, v->daddr, v->dport, v->proto, v->seed, out, v->id);
}
END_TEST

/* The spec's ordering rule: equal addresses, so the ports decide. */
START_TEST(ordering_equal_addresses)
{
    int ver;
    nw_addr a = addr("127.0.0.1", &ver);
    char x[NW_COMMUNITY_ID_STRLEN], y[NW_COMMUNITY_ID_STRLEN];
    ck_assert_int_eq(nw_community_id(&a, 1234, &a, 80, 6, 4, 0, x, sizeof x), NW_COMMUNITY_ID_LEN);
    ck_assert_int_eq(nw_community_id(&a, 80, &a, 1234, 6, 4, 0, y, sizeof y), NW_COMMUNITY_ID_LEN);
    ck_assert_str_eq(x, y);
    /* and a different port pair is a different flow */
    ck_assert_int_eq(nw_community_id(&a, 1235, &a, 80, 6, 4, 0, y, sizeof y), NW_COMMUNITY_ID_LEN);
    ck_assert_str_ne(x, y);
}
END_TEST

/* A connection (IPv4 stored mapped) hashes its 4-byte form, whichever end
 * is local -- also when seen on a dual-stack IPv6 socket, as its packets
 * are IPv4 on the wire; a real IPv6 address is hashed in 16 bytes. */
START_TEST(conn_ipv4_mapped)
{
    nw_conn c;
    memset(&c, 0, sizeof c);
    int ver;
    c.proto = 17;
    c.ip_version = 4;
    c.local_ip = addr("8.8.8.8", &ver);
    c.local_port = 53;
    c.remote_ip = addr("192.168.1.52", &ver);
    c.remote_port = 54585;
    char out[NW_COMMUNITY_ID_STRLEN];
    ck_assert_int_eq(nw_conn_community_id(&c, 0, out, sizeof out), NW_COMMUNITY_ID_LEN);
    ck_assert_str_eq(out, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
    c.ip_version = 6;
    ck_assert_int_eq(nw_conn_community_id(&c, 0, out, sizeof out), NW_COMMUNITY_ID_LEN);
    ck_assert_str_eq(out, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
    c.local_ip = addr("2001:470:e5bf:dead:4957:2174:e82c:4887", &ver);
    c.local_port = 63943;
    c.remote_ip = addr("2607:f8b0:400c:c03::1a", &ver);
    c.remote_port = 25;
    c.proto = 6;
    ck_assert_int_eq(nw_conn_community_id(&c, 0, out, sizeof out), NW_COMMUNITY_ID_LEN);
    ck_assert_str_eq(out, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=");
}
END_TEST

START_TEST(errors)
{
    int ver;
    nw_addr v4 = addr("10.0.0.1", &ver), v6 = addr("2001:db8::1", &ver);
    char out[NW_COMMUNITY_ID_STRLEN];
    ck_assert_int_eq(nw_community_id(&v4, 1, &v6, 2, 6, 4, 0, out, sizeof out), -1);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(nw_community_id(&v4, 1, &v4, 2, 6, 5, 0, out, sizeof out), -1);
    ck_assert_int_eq(nw_community_id(&v4, 1, &v4, 2, 6, 4, 0, out, NW_COMMUNITY_ID_LEN), -1);
    ck_assert_int_eq(nw_community_id(&v6, 1, &v6, 2, 6, 6, 0, out, sizeof out),
                     NW_COMMUNITY_ID_LEN);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flowid");
    TCase *tc = tcase_create("all");
    tcase_add_loop_test(tc, spec_vectors, 0, (int)(sizeof vectors / sizeof vectors[0]));
    tcase_add_test(tc, ordering_equal_addresses);
    tcase_add_test(tc, conn_ipv4_mapped);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
