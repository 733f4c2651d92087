/* test_services.c -- the service-name table agrees with every port name
 * real Sysmon events show. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/event.h"
#include "netwho/services.h"
#include "tests/unit/check_main.h"

/*
 * Every (port, protocol) of the Sysmon event 3 records in
 * ../shared/data/sysmon_otrf_2019_covenant_psremoting_grunt.jsonl (OTRF
 * Security-Datasets, MIT licence), copied as data: the names Sysmon printed
 * in SourcePortName / DestinationPortName, and the ports it left unnamed.
 * (The 2021 proxylogon file prints "-" for every port, 443 included: that
 * Sysmon had port-name lookup off; see docs/design.md.)
 */
typedef struct named {
    uint16_t port;
    uint8_t proto;
    const char *name;
} named;

static const named sysmon_named[] = {
    {53, NW_PROTO_UDP, "domain"},
    {80, NW_PROTO_TCP, "http"},
    {88, NW_PROTO_TCP, "kerberos"},
    {123, NW_PROTO_UDP, "ntp"},
    {135, NW_PROTO_TCP, "epmap"},
    {138, NW_PROTO_UDP, "netbios-dgm"},
    {389, NW_PROTO_TCP, "ldap"},
    {443, NW_PROTO_TCP, "https"},
    {445, NW_PROTO_TCP, "microsoft-ds"},
};

static const uint16_t unnamed_tcp[] = {
    5985, 49668, 49776, 49777, 50017, 50018, 50019, 50020, 50021, 50022,
    50023, 50024, 50025, 50026, 50027, 50028, 50029, 50030, 50031, 50032,
    50033, 50034, 50035, 50036, 50037, 50038, 50039, 50532, 50535, 50537,
    50538, 50539, 50540, 50541, 50542, 50543, 50544, 50545, 50546, 50547,
    50548, 50549, 50550, 50551, 50552, 50553, 50555, 50556, 50557, 50558,
    50559, 50560, 50561, 50562, 50563, 50564, 50565, 50566, 50567, 50568,
    50569, 50570, 50571, 50572, 50631, 50632, 50633, 50634, 50635, 50636,
    50637, 50638, 50639, 50640, 50641, 50642, 50644, 50645, 50646, 50647,
    50648, 50649, 50650, 50652, 50653, 50654, 50655, 50656, 50657, 50658,
    50659, 50660, 50661, 50662, 50663, 50665, 50667, 50668, 50669, 50670,
    50671, 50672, 50673, 50674, 50675, 50676, 50678, 50733, 50734, 50735,
    50736, 50737, 50738, 50741, 50742, 50743, 50744, 50745, 50746, 50747,
    50748, 50749, 50750, 50751, 50752, 50753, 50755, 50757, 50758, 50759,
    50760, 50761, 50762, 50763, 50765, 50766, 50767, 50768, 50769, 50770,
    50771, 50772, 50773, 50774, 50775, 64706, 64707, 64708, 64709, 64710,
    64711, 64712, 64713, 64714, 64715, 64716, 64717, 64718, 64719, 64720,
    64721, 64722, 64723, 64724, 64725, 64726, 64727, 64728, 64729, 64730,
    64731, 64732, 64733, 64734, 64735, 64736, 64737, 64738, 64739, 64740,
};
static const uint16_t unnamed_udp[] = {
    389, 49731, 49783, 49942, 50538, 50565, 51584, 52114, 52164, 52339,
    52836, 54000, 54002, 54551, 54668, 55674, 56315, 56449, 56602, 56712,
    57257, 57453, 58188, 58190, 58270, 59181, 60175, 61463, 61729, 61731,
    61732, 61733, 61926, 61964, 63838, 65410, 65514,
};

START_TEST(names_sysmon_printed)
{
    for (size_t i = 0; i < sizeof sysmon_named / sizeof sysmon_named[0]; i++) {
        const named *n = &sysmon_named[i];
        const char *got = nw_service_name(n->port, n->proto);
        ck_assert_msg(got && strcmp(got, n->name) == 0, "%u/%u: %s, expected %s", n->port,
                      n->proto, got ? got : "(none)", n->name);
    }
}
END_TEST

START_TEST(ports_sysmon_left_unnamed)
{
    for (size_t i = 0; i < sizeof unnamed_tcp / sizeof unnamed_tcp[0]; i++)
        ck_assert_msg(nw_service_name(unnamed_tcp[i], NW_PROTO_TCP) == NULL, "%u/tcp",
                      unnamed_tcp[i]);
    for (size_t i = 0; i < sizeof unnamed_udp / sizeof unnamed_udp[0]; i++)
        ck_assert_msg(nw_service_name(unnamed_udp[i], NW_PROTO_UDP) == NULL, "%u/udp",
                      unnamed_udp[i]);
}
END_TEST

START_TEST(table_edges)
{
    ck_assert_str_eq(nw_service_name(1, NW_PROTO_TCP), "tcpmux");       /* first row */
    ck_assert_ptr_null(nw_service_name(0, NW_PROTO_TCP));
    ck_assert_ptr_null(nw_service_name(65535, NW_PROTO_UDP));
    ck_assert_ptr_null(nw_service_name(443, 1));                         /* not tcp/udp */
    ck_assert_str_eq(nw_service_name(22, NW_PROTO_TCP), "ssh");
    ck_assert_str_eq(nw_service_name(137, NW_PROTO_UDP), "netbios-ns");
    ck_assert_ptr_null(nw_service_name(138, NW_PROTO_TCP));             /* udp only */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("services");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, names_sysmon_printed);
    tcase_add_test(tc, ports_sysmon_left_unnamed);
    tcase_add_test(tc, table_edges);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
