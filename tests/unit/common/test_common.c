/* test_common.c -- time, address and CIDR handling against known answers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/addr.h"
#include "netwho/conn.h"
#include "netwho/nwtime.h"
#include "netwho/status.h"
#include "tests/unit/check_main.h"

static nw_time parse(const char *s)
{
    nw_time t = 0;
    ck_assert_msg(nw_time_parse_rfc3339(s, strlen(s), &t) == 0, "parse %s", s);
    return t;
}

START_TEST(time_seed_value_full_precision)
{
    /* 2026-03-16T00:21:36.4231059Z: 1773620496 s since the epoch. */
    nw_time t = parse("2026-03-16T00:21:36.423105900+00:00");
    ck_assert_int_eq(t, 1773620496LL * NW_TICKS_PER_SEC + 4231059);
    char buf[NW_TIME_STRLEN];
    ck_assert_uint_eq(nw_time_format(t, buf, sizeof buf), 28);
    ck_assert_str_eq(buf, "2026-03-16T00:21:36.4231059Z");
}
END_TEST

START_TEST(time_offsets_and_forms)
{
    nw_time z = parse("2026-03-16T00:21:36Z");
    ck_assert_int_eq(parse("2026-03-16T02:21:36+02:00"), z);
    ck_assert_int_eq(parse("2026-03-15T19:21:36-05:00"), z);
    ck_assert_int_eq(parse("2026-03-16 00:21:36z"), z);
    ck_assert_int_eq(parse("2026-03-16T01:21:36 01:00"), z); /* '+' URL-decoded */
    ck_assert_int_eq(parse("2026-03-16T00:21:36.5Z"), z + 5000000);
    /* digits past 100 ns are floored, not rounded */
    ck_assert_int_eq(parse("2026-03-16T00:21:36.123456789Z"), z + 1234567);
    nw_time t;
    const char *bad[] = {"2026-03-16", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                         "2026-03-16T24:00:00Z", "2026-03-16T00:00:00", "x",
                         "2026-03-16T00:00:00.Z", "2026-03-16T00:00:00Zjunk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(nw_time_parse_rfc3339(bad[i], strlen(bad[i]), &t) == -1, "%s", bad[i]);
    ck_assert_int_eq(parse("2024-02-29T00:00:00Z") % NW_TICKS_PER_SEC, 0);
}
END_TEST

START_TEST(time_user_epoch)
{
    nw_time t;
    ck_assert_int_eq(nw_time_parse_user("1773620496", &t), 0);
    ck_assert_int_eq(t, 1773620496LL * NW_TICKS_PER_SEC);
    ck_assert_int_eq(nw_time_parse_user("1773620496.25", &t), 0);
    ck_assert_int_eq(t, 1773620496LL * NW_TICKS_PER_SEC + 2500000);
    ck_assert_int_eq(nw_time_parse_user("2026-03-16T00:21:36Z", &t), 0);
    ck_assert_int_eq(t, 1773620496LL * NW_TICKS_PER_SEC);
    ck_assert_int_eq(nw_time_parse_user("17736x", &t), -1);
    ck_assert_int_eq(nw_time_parse_user("", &t), -1);
    ck_assert_int_eq(nw_time_parse_user("99999999999999999999", &t), -1);
}
END_TEST

START_TEST(time_roundtrip_and_floors)
{
    /* Every 100 ns value formats and parses back to itself, before and
     * after the epoch and across a leap day. */
    nw_time samples[] = {0, 1, 9999999, 951782400LL * NW_TICKS_PER_SEC + 1234567,
                         -1, -NW_TICKS_PER_SEC * 86400 * 365 - 3, 1773620496LL * NW_TICKS_PER_SEC + 4231059};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char buf[NW_TIME_STRLEN];
        ck_assert_uint_gt(nw_time_format(samples[i], buf, sizeof buf), 0);
        ck_assert_int_eq(parse(buf), samples[i]);
    }
    nw_time t = parse("2026-03-16T13:45:10.5Z");
    ck_assert_int_eq(nw_time_floor_day(t), parse("2026-03-16T00:00:00Z"));
    ck_assert_int_eq(nw_time_floor_hour(t), parse("2026-03-16T13:00:00Z"));
    ck_assert_int_eq(nw_time_floor_day(-1), -86400LL * NW_TICKS_PER_SEC);
    char small[8];
    ck_assert_uint_eq(nw_time_format(t, small, sizeof small), 0);
    /* The ends of RFC 3339's years format; beyond them, and the open
     * bounds NW_TIME_MIN/MAX, nothing does (and nothing overflows: UBSan). */
    char buf[NW_TIME_STRLEN];
    nw_time y0 = parse("0000-01-01T00:00:00Z"), y9 = parse("9999-12-31T23:59:59.9999999Z");
    ck_assert_uint_eq(nw_time_format(y0, buf, sizeof buf), 28);
    ck_assert_str_eq(buf, "0000-01-01T00:00:00.0000000Z");
    ck_assert_uint_eq(nw_time_format(y9, buf, sizeof buf), 28);
    ck_assert_str_eq(buf, "9999-12-31T23:59:59.9999999Z");
    ck_assert_uint_eq(nw_time_format(y0 - 1, buf, sizeof buf), 0);
    ck_assert_uint_eq(nw_time_format(y9 + 1, buf, sizeof buf), 0);
    ck_assert_uint_eq(nw_time_format(NW_TIME_MIN, buf, sizeof buf), 0);
    ck_assert_uint_eq(nw_time_format(NW_TIME_MAX, buf, sizeof buf), 0);
}
END_TEST

static void fmt(const nw_addr *a, int v, char *buf) { nw_addr_format(a, v, buf, NW_ADDR_STRLEN); }

START_TEST(addr_parse_format)
{
    nw_addr a;
    int v;
    char buf[NW_ADDR_STRLEN];
    ck_assert_int_eq(nw_addr_parse(" 10.2.10.21 ", 12, 4, &a, &v), 0);
    ck_assert_int_eq(v, 4);
    ck_assert(nw_addr_is_v4(&a));
    ck_assert_int_eq(a.b[10], 0xff);
    ck_assert_int_eq(a.b[12], 10);
    ck_assert_int_eq(a.b[15], 21);
    fmt(&a, 4, buf);
    ck_assert_str_eq(buf, "10.2.10.21");
    /* strict family */
    ck_assert_int_eq(nw_addr_parse("::1", 3, 4, &a, NULL), -1);
    ck_assert_int_eq(nw_addr_parse("10.0.0.1", 8, 6, &a, NULL), -1);
    ck_assert_int_eq(nw_addr_parse("999.1.1.1", 9, 0, &a, NULL), -1);
    ck_assert_int_eq(nw_addr_parse("", 0, 0, &a, NULL), -1);
    /* canonical IPv6 text out */
    ck_assert_int_eq(nw_addr_parse("2001:DB8:0:0::1", 15, 6, &a, &v), 0);
    ck_assert_int_eq(v, 6);
    fmt(&a, 6, buf);
    ck_assert_str_eq(buf, "2001:db8::1");
    ck_assert_int_eq(nw_addr_parse("::ffff:10.0.0.1", 15, 6, &a, NULL), 0);
    fmt(&a, 6, buf);
    ck_assert_str_eq(buf, "::ffff:10.0.0.1");
}
END_TEST

START_TEST(cidr_ranges)
{
    nw_addr lo, hi, x;
    int v;
    char buf[NW_ADDR_STRLEN];
    ck_assert_int_eq(nw_cidr_parse("10.1.2.3/8", &lo, &hi, &v), 0);
    ck_assert_int_eq(v, 4);
    fmt(&lo, 4, buf);
    ck_assert_str_eq(buf, "10.0.0.0");
    fmt(&hi, 4, buf);
    ck_assert_str_eq(buf, "10.255.255.255");
    /* every IPv4 address in 10/8 is inside, 11.0.0.0 and 9.255.255.255 not */
    nw_addr_parse("10.200.3.4", 10, 4, &x, NULL);
    ck_assert(nw_addr_cmp(&lo, &x) <= 0 && nw_addr_cmp(&x, &hi) <= 0);
    nw_addr_parse("11.0.0.0", 8, 4, &x, NULL);
    ck_assert(nw_addr_cmp(&x, &hi) > 0);
    nw_addr_parse("9.255.255.255", 13, 4, &x, NULL);
    ck_assert(nw_addr_cmp(&x, &lo) < 0);

    ck_assert_int_eq(nw_cidr_parse("2001:db8::/32", &lo, &hi, &v), 0);
    ck_assert_int_eq(v, 6);
    fmt(&hi, 6, buf);
    ck_assert_str_eq(buf, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
    ck_assert_int_eq(nw_cidr_parse("192.0.2.7", &lo, &hi, NULL), 0);
    ck_assert_int_eq(nw_addr_cmp(&lo, &hi), 0);
    ck_assert_int_eq(nw_cidr_parse("0.0.0.0/0", &lo, &hi, NULL), 0);
    fmt(&hi, 4, buf);
    ck_assert_str_eq(buf, "255.255.255.255");
    ck_assert_int_eq(nw_cidr_parse("::/0", &lo, &hi, NULL), 0);

    const char *bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "/8",
                         "10.0.0.0/8/8", "300.0.0.0/8", "10.0.0.0/-1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(nw_cidr_parse(bad[i], &lo, &hi, NULL) == -1, "%s", bad[i]);
}
END_TEST

START_TEST(names_roundtrip)
{
    for (int d = 0; d < 3; d++)
        ck_assert_int_eq(nw_direction_from_name(nw_direction_name(d)), d);
    for (int s = 0; s < 4; s++)
        ck_assert_int_eq(nw_state_from_name(nw_state_name(s)), s);
    ck_assert_int_eq(nw_proto_from_name("tcp"), NW_PROTO_TCP);
    ck_assert_int_eq(nw_proto_from_name("udp"), NW_PROTO_UDP);
    ck_assert_int_eq(nw_proto_from_name("icmp"), -1);
    ck_assert_int_eq(nw_state_from_name("open"), -1);
    nw_err e;
    ck_assert_int_eq(nw_fail(&e, NW_ERR_IO, "open %s", "x"), NW_ERR_IO);
    ck_assert_str_eq(e.msg, "open x");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, time_seed_value_full_precision);
    tcase_add_test(tc, time_offsets_and_forms);
    tcase_add_test(tc, time_user_epoch);
    tcase_add_test(tc, time_roundtrip_and_floors);
    tcase_add_test(tc, addr_parse_format);
    tcase_add_test(tc, cidr_ranges);
    tcase_add_test(tc, names_roundtrip);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
