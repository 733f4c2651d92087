/* test_addrclass.c -- address classes, table-driven, both families and
 * IPv4-mapped, with each range's edges. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/addrclass.h"
#include "tests/unit/check_main.h"

typedef struct row {
    const char *addr;
    nw_addr_class cls;
} row;

static const row rows[] = {
    /* IPv4 (stored mapped, as netwho keeps it) */
    {"0.0.0.0", NW_ACLASS_UNSPECIFIED},
    {"0.0.0.1", NW_ACLASS_PUBLIC},
    {"127.0.0.1", NW_ACLASS_LOOPBACK},
    {"127.255.255.254", NW_ACLASS_LOOPBACK},
    {"126.255.255.255", NW_ACLASS_PUBLIC},
    {"128.0.0.0", NW_ACLASS_PUBLIC},
    {"169.254.169.254", NW_ACLASS_LINK_LOCAL},   /* the EC2 metadata peer in the data */
    {"169.253.255.255", NW_ACLASS_PUBLIC},
    {"169.255.0.0", NW_ACLASS_PUBLIC},
    {"224.0.0.251", NW_ACLASS_MULTICAST},
    {"239.255.255.250", NW_ACLASS_MULTICAST},
    {"240.0.0.1", NW_ACLASS_PUBLIC},
    {"223.255.255.255", NW_ACLASS_PUBLIC},
    {"255.255.255.255", NW_ACLASS_BROADCAST},
    {"255.255.255.254", NW_ACLASS_PUBLIC},
    {"10.0.0.0", NW_ACLASS_PRIVATE},
    {"10.255.255.255", NW_ACLASS_PRIVATE},
    {"11.0.0.0", NW_ACLASS_PUBLIC},
    {"9.255.255.255", NW_ACLASS_PUBLIC},
    {"172.16.0.0", NW_ACLASS_PRIVATE},
    {"172.31.255.255", NW_ACLASS_PRIVATE},
    {"172.15.255.255", NW_ACLASS_PUBLIC},
    {"172.32.0.0", NW_ACLASS_PUBLIC},
    {"172.18.39.255", NW_ACLASS_PRIVATE},        /* a directed broadcast: mask unknown */
    {"192.168.0.1", NW_ACLASS_PRIVATE},
    {"192.169.0.0", NW_ACLASS_PUBLIC},
    {"100.64.0.0", NW_ACLASS_PRIVATE},
    {"100.127.255.255", NW_ACLASS_PRIVATE},
    {"100.63.255.255", NW_ACLASS_PUBLIC},
    {"100.128.0.0", NW_ACLASS_PUBLIC},
    {"8.8.8.8", NW_ACLASS_PUBLIC},
    {"52.114.32.25", NW_ACLASS_PUBLIC},
    {"192.0.2.7", NW_ACLASS_PUBLIC},             /* documentation: not special-cased */
    /* IPv6 */
    {"::", NW_ACLASS_UNSPECIFIED},
    {"::1", NW_ACLASS_LOOPBACK},
    {"::2", NW_ACLASS_PUBLIC},
    {"fe80::b14f:e9ef:a6b2:f79f", NW_ACLASS_LINK_LOCAL},
    {"febf:ffff::1", NW_ACLASS_LINK_LOCAL},
    {"fe7f::1", NW_ACLASS_PUBLIC},
    {"fec0::1", NW_ACLASS_PRIVATE},
    {"feff::1", NW_ACLASS_PRIVATE},
    {"ff02::1:2", NW_ACLASS_MULTICAST},
    {"ff05::c", NW_ACLASS_MULTICAST},
    {"fc00::1", NW_ACLASS_PRIVATE},
    {"fdff:ffff::1", NW_ACLASS_PRIVATE},
    {"fbff::1", NW_ACLASS_PUBLIC},
    {"2001:db8::1", NW_ACLASS_PUBLIC},
    {"2607:f8b0:400c:c03::1a", NW_ACLASS_PUBLIC},
    /* IPv4-mapped written as IPv6 text: classified by the IPv4 address */
    {"::ffff:127.0.0.1", NW_ACLASS_LOOPBACK},
    {"::ffff:10.1.2.3", NW_ACLASS_PRIVATE},
    {"::ffff:255.255.255.255", NW_ACLASS_BROADCAST},
    {"::ffff:0.0.0.0", NW_ACLASS_UNSPECIFIED},
    {"::ffff:8.8.4.4", NW_ACLASS_PUBLIC},
    /* IPv4-compatible (deprecated) is not mapped: an ordinary IPv6 address */
    {"::127.0.0.1", NW_ACLASS_PUBLIC},
};

START_TEST(classify_rows)
{
    const row *r = &rows[_i];
    nw_addr a;
    ck_assert_msg(nw_addr_parse(r->addr, strlen(r->addr), 0, &a, NULL) == 0, "%s", r->addr);
    nw_addr_class c = nw_addr_classify(&a);
    ck_assert_msg(c == r->cls, "%s: %s, expected %s", r->addr, nw_addr_class_name(c),
                  nw_addr_class_name(r->cls));
}
END_TEST

START_TEST(names)
{
    for (int c = 0; c < NW_ACLASS__COUNT; c++)
        ck_assert_int_eq(nw_addr_class_from_name(nw_addr_class_name((nw_addr_class)c)), c);
    ck_assert_str_eq(nw_addr_class_name(NW_ACLASS_LINK_LOCAL), "link-local");
    ck_assert_int_eq(nw_addr_class_from_name("Public"), -1);
    ck_assert_int_eq(nw_addr_class_from_name(NULL), -1);
    ck_assert_str_eq(nw_addr_class_name((nw_addr_class)99), "public");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("addrclass");
    TCase *tc = tcase_create("all");
    tcase_add_loop_test(tc, classify_rows, 0, (int)(sizeof rows / sizeof rows[0]));
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
