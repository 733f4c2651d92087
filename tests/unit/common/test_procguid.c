/* test_procguid.c -- derived ProcessGuids against the layout of real
 * Sysmon GUIDs, and their stability and uniqueness. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/procguid.h"
#include "tests/unit/check_main.h"

/* 2021-03-14 06:39:39.829 UTC: the creation of the process whose real
 * Sysmon GUID is {6004D249-AFAB-604D-2327-000000000900}
 * (sysmon_otrf_2021_proxylogon_ssrf_rce_poc.jsonl, event 1, pid 14420). */
#define CREATE (1615703979LL * NW_TICKS_PER_SEC + 8290000)

static nw_process proc(const char *host, uint32_t pid, nw_time create, uint64_t seq)
{
    nw_process p;
    memset(&p, 0, sizeof p);
    p.host = host;
    p.pid = pid;
    p.create_time = create;
    p.exit_time = NW_TIME_MAX;
    p.sequence = seq;
    return p;
}

static const char *guid(const nw_process *p, char *out)
{
    ck_assert_int_eq(nw_process_guid(p, out, NW_GUID_MAX), NW_PROCESS_GUID_LEN);
    ck_assert_uint_eq(strlen(out), NW_PROCESS_GUID_LEN);
    return out;
}

START_TEST(layout_matches_sysmon)
{
    char g[NW_GUID_MAX];
    /* The full start key (boot id 9, sequence 0x2723) gives Sysmon's own
     * time and key parts; the machine part is SHA-1("mxs01.azsentinel.local"). */
    nw_process p = proc("MXS01.azsentinel.local", 14420, CREATE, 0x0009000000002723ULL);
    ck_assert_str_eq(guid(&p, g), "{130C6CA0-AFAB-604D-2327-000000000900}");
    /* Kernel-Process's ProcessSequenceNumber alone: no boot id. */
    p.sequence = 0x2723;
    ck_assert_str_eq(guid(&p, g), "{130C6CA0-AFAB-604D-2327-000000000000}");
    /* No sequence: pid 14420 = 0x3854, sub-second 8290000 = 0x7E7ED0. */
    p.sequence = 0;
    ck_assert_str_eq(guid(&p, g), "{130C6CA0-AFAB-604D-5438-0000D07E7EFF}");
}
END_TEST

START_TEST(stable_and_distinct)
{
    char a[NW_GUID_MAX], b[NW_GUID_MAX];
    nw_process p = proc("HFDC01.shire.com", 780, CREATE, 0);
    nw_process q = proc("hfdc01.SHIRE.com", 780, CREATE, 0);
    ck_assert_str_eq(guid(&p, a), guid(&q, b));          /* host case ignored */
    ck_assert_str_eq(a, "{45E5237B-AFAB-604D-0C03-0000D07E7EFF}");
    q.create_time += 1;                                  /* PID reused 100 ns later */
    ck_assert_str_ne(guid(&p, a), guid(&q, b));
    q = proc("HFDC01.shire.com", 780, CREATE + 300 * NW_TICKS_PER_SEC, 0);
    ck_assert_str_ne(guid(&p, a), guid(&q, b));
    q = proc("HFDC01.shire.com", 781, CREATE, 0);        /* another pid, same time */
    ck_assert_str_ne(guid(&p, a), guid(&q, b));
    q = proc("FILE001.shire.com", 780, CREATE, 0);       /* another machine */
    ck_assert_str_ne(guid(&p, a), guid(&q, b));
    /* sequence keys: distinct per sequence, apart from pid keys */
    p.sequence = 11445;
    q = proc("HFDC01.shire.com", 780, CREATE, 11446);
    ck_assert_str_ne(guid(&p, a), guid(&q, b));
}
END_TEST

START_TEST(errors)
{
    char g[NW_GUID_MAX];
    nw_process p = proc(NULL, 4, CREATE, 1);
    ck_assert_int_eq(nw_process_guid(&p, g, sizeof g), -1);
    ck_assert_str_eq(g, "");
    p = proc("h", 4, -1, 1);
    ck_assert_int_eq(nw_process_guid(&p, g, sizeof g), -1);
    p = proc("h", 4, (UINT32_MAX + 1LL) * NW_TICKS_PER_SEC, 1);
    ck_assert_int_eq(nw_process_guid(&p, g, sizeof g), -1);
    p = proc("h", 4, (nw_time)UINT32_MAX * NW_TICKS_PER_SEC, 1);
    ck_assert_int_eq(nw_process_guid(&p, g, sizeof g), NW_PROCESS_GUID_LEN);
    ck_assert_int_eq(nw_process_guid(&p, g, NW_PROCESS_GUID_LEN), -1);
    p = proc("h", 4, 0, 1);
    ck_assert_str_eq(guid(&p, g) + 10, "0000-0000-0100-000000000000}");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("procguid");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, layout_matches_sysmon);
    tcase_add_test(tc, stable_and_distinct);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
