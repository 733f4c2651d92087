/* test_decode_process.c -- procevent.h: Kernel-Process 1/2/15 and Sysmon
 * 1/3/5 against the real files in tests/data (every line of the two
 * Sysmon exports, hand-checked answers for chosen ones) and constructed
 * events for each rejection. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/pipeline.h"
#include "netwho/procevent.h"
#include "tests/unit/check_main.h"

#define KP_START NW_TEST_DATA "/kernel_process_start_detectionwiki_example.json"
#define SYSMON19 NW_TEST_DATA "/sysmon_otrf_2019_covenant_psremoting_grunt.jsonl"
#define SYSMON21 NW_TEST_DATA "/sysmon_otrf_2021_proxylogon_ssrf_rce_poc.jsonl"
#define LINE_MAX_BYTES (64 * 1024)

typedef struct result {
    nw_reject r;
    nw_event ev;
    int has_ev;
    nw_proc_event *pe;
    char detail[NW_DETAIL_MAX];
} result;

static result dec(const char *json, size_t len)
{
    result x;
    memset(&x, 0, sizeof x);
    x.r = nw_decode_record(json, len, "DEFAULTHOST", &x.ev, &x.has_ev, &x.pe, x.detail,
                           sizeof x.detail);
    return x;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Line n (0-based) of a JSONL file into buf. */
static size_t line_of(const char *path, int n, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    for (int i = 0; i <= n; i++)
        ck_assert_msg(fgets(buf, (int)cap, f) != NULL, "%s has no line %d", path, n);
    fclose(f);
    return strlen(buf);
}

static nw_time t_of(const char *rfc3339)
{
    nw_time t;
    ck_assert_int_eq(nw_time_parse_rfc3339(rfc3339, strlen(rfc3339), &t), 0);
    return t;
}

static void ck_ip(const nw_addr *a, const char *text)
{
    nw_addr w;
    ck_assert_int_eq(nw_addr_parse(text, strlen(text), 0, &w, NULL), 0);
    ck_assert_msg(memcmp(a->b, w.b, 16) == 0, "address is not %s", text);
}

START_TEST(kernel_process_start_real)
{
    size_t len;
    char *buf = slurp(KP_START, &len);
    result x = dec(buf, len);
    ck_assert_msg(x.r == NW_ACCEPTED, "rejected: %s", x.detail);
    ck_assert_int_eq(x.has_ev, 0);
    ck_assert_ptr_nonnull(x.pe);
    const nw_process *p = &x.pe->p;
    ck_assert_int_eq(x.pe->source, NW_PSRC_KP_START);
    ck_assert_uint_eq(p->pid, 12824);     /* " 12824": padded */
    ck_assert(p->has_parent);
    ck_assert_uint_eq(p->parent_pid, 10736);
    ck_assert(p->has_session);
    ck_assert_uint_eq(p->session_id, 0);
    ck_assert_uint_eq(p->sequence, 11445);
    ck_assert(p->create_time == t_of("2026-03-16T00:21:34.6923341Z"));
    ck_assert(x.pe->create_prec == NW_PREC_EXACT);
    ck_assert(p->exit_time == NW_TIME_MAX);
    ck_assert_str_eq(p->image, "\\Device\\HarddiskVolume4\\Windows\\System32\\logman.exe");
    ck_assert_str_eq(p->host, "DEFAULTHOST");   /* computer is "" */
    ck_assert_ptr_null(p->guid);
    ck_assert_ptr_null(p->user);
    free(x.pe);
    free(buf);
}
END_TEST

static char *kp(char *buf, size_t cap, const char *id, const char *data)
{
    snprintf(buf, cap,
             "{\"system\":{\"provider\":\"Microsoft-Windows-Kernel-Process\",\"event_id\":%s,"
             "\"time_created\":\"2026-03-16T00:30:00.000000000+00:00\",\"computer\":\"WS01\"},"
             "\"event_data\":{%s},\"message\":\"\"}",
             id, data);
    return buf;
}

START_TEST(kernel_process_stop_and_rundown)
{
    char buf[2048];
    kp(buf, sizeof buf, "\"2\"",
       "\"ProcessID\":\"    4242\",\"ProcessSequenceNumber\":\"77\","
       "\"CreateTime\":\"2026-03-16T00:21:34.692334100Z\","
       "\"ExitTime\":\"2026-03-16T00:29:59.500000000Z\",\"ExitCode\":\"0\","
       "\"ImageName\":\"logman.exe\"");
    result x = dec(buf, strlen(buf));
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert_int_eq(x.pe->source, NW_PSRC_KP_STOP);
    ck_assert(x.pe->has_exit);
    ck_assert(x.pe->p.exit_time == t_of("2026-03-16T00:29:59.5Z"));
    ck_assert_uint_eq(x.pe->p.pid, 4242);
    ck_assert_str_eq(x.pe->p.host, "WS01");
    ck_assert_str_eq(x.pe->p.image, "logman.exe");
    free(x.pe);

    kp(buf, sizeof buf, "15",
       "\"ProcessID\":\"     888\",\"CreateTime\":\"2026-03-15T08:00:00.1234567Z\","
       "\"ParentProcessID\":\"     612\",\"SessionID\":\"       0\","
       "\"ImageName\":\"\\\\Device\\\\HarddiskVolume2\\\\Windows\\\\System32\\\\svchost.exe\"");
    x = dec(buf, strlen(buf));
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert_int_eq(x.pe->source, NW_PSRC_KP_RUNDOWN);
    ck_assert(!x.pe->has_exit);
    ck_assert_uint_eq(x.pe->p.parent_pid, 612);
    ck_assert(x.pe->p.create_time == t_of("2026-03-15T08:00:00.1234567Z"));
    free(x.pe);

    /* A stop without CreateTime: its process cannot be placed by creation. */
    kp(buf, sizeof buf, "2", "\"ProcessID\":\"9\",\"ExitTime\":\"2026-03-16T00:29:59Z\"");
    x = dec(buf, strlen(buf));
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert(x.pe->create_prec == 0 && x.pe->has_exit);
    free(x.pe);
}
END_TEST

START_TEST(kernel_process_rejects)
{
    char buf[2048];
    struct {
        const char *id, *data;
        nw_reject want;
    } cases[] = {
        {"3", "\"ProcessID\":\"1\",\"ThreadID\":\"2\"", NW_REJ_UNKNOWN_EVENT_ID},
        {"1", "\"CreateTime\":\"2026-03-16T00:21:34Z\"", NW_REJ_BAD_PID},
        {"1", "\"ProcessID\":\"x1\",\"CreateTime\":\"2026-03-16T00:21:34Z\"", NW_REJ_BAD_PID},
        {"1", "\"ProcessID\":\"1\"", NW_REJ_BAD_TIME},
        {"1", "\"ProcessID\":\"1\",\"CreateTime\":\"yesterday\"", NW_REJ_BAD_TIME},
        {"1", "\"ProcessID\":\"1\",\"CreateTime\":\"2026-03-16T00:21:34Z\","
              "\"ParentProcessID\":\"-4\"", NW_REJ_BAD_FIELD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kp(buf, sizeof buf, cases[i].id, cases[i].data);
        result x = dec(buf, strlen(buf));
        ck_assert_msg(x.r == cases[i].want, "case %zu: %s (%s)", i, nw_reject_name(x.r),
                      x.detail);
        ck_assert_ptr_null(x.pe);
        ck_assert(x.detail[0] != '\0');
    }
}
END_TEST

/* Every real line decodes: 1 and 5 to a process event only, 3 to a
 * connection event (and its process, when the guid carries a time). */
static void every_line(const char *path, int n1, int n3, int n5)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *line = malloc(LINE_MAX_BYTES);
    int c1 = 0, c3 = 0, c5 = 0, lineno = 0;
    while (fgets(line, LINE_MAX_BYTES, f)) {
        lineno++;
        result x = dec(line, strlen(line));
        ck_assert_msg(x.r == NW_ACCEPTED, "%s:%d rejected: %s (%s)", path, lineno,
                      nw_reject_name(x.r), x.detail);
        int id = x.pe ? x.pe->source - 100 : 3;
        if (x.has_ev) {
            c3++;
            ck_assert(x.ev.proto == NW_PROTO_TCP || x.ev.proto == NW_PROTO_UDP);
            ck_assert(x.ev.time > 0);
            ck_assert_msg(x.pe != NULL, "%s:%d: the guid carries a time", path, lineno);
            ck_assert_uint_eq(x.pe->p.pid, x.ev.pid);
            ck_assert_ptr_nonnull(x.pe->p.image);
            ck_assert_ptr_nonnull(x.pe->p.guid);
            ck_assert(x.pe->create_prec == NW_PREC_SECOND);
            /* Real Sysmon 3s come up to ~0.6 s before their process's
             * creation (procstore.h, NW_PROC_CLOCK_SKEW). */
            ck_assert(x.pe->p.create_time <= x.ev.time + NW_TICKS_PER_SEC);
        } else if (id == 1) {
            c1++;
            ck_assert(x.pe->create_prec == NW_PREC_MS);
            ck_assert_ptr_nonnull(x.pe->p.command_line);
            ck_assert(x.pe->p.has_parent);
        } else {
            ck_assert_int_eq(id, 5);
            c5++;
            ck_assert(x.pe->has_exit);
        }
        /* Never nxlog's host (the collector), never the Sysmon service's
         * pid (nxlog's "ProcessID" header: 2644 and 3140 in 2019). */
        if (x.pe) {
            ck_assert(strncmp(x.pe->p.host, "ip-172-18-39-102", 16) != 0);
            ck_assert(x.pe->p.pid != 2644 || x.pe->source == NW_PSRC_SYSMON_NETWORK);
            ck_assert(strcmp(x.pe->p.host, "DEFAULTHOST") != 0);
        }
        free(x.pe);
    }
    fclose(f);
    free(line);
    ck_assert_int_eq(c1, n1);
    ck_assert_int_eq(c3, n3);
    ck_assert_int_eq(c5, n5);
}

START_TEST(sysmon_every_real_line)
{
    every_line(SYSMON19, 17, 276, 13);
    every_line(SYSMON21, 13, 117, 12);
}
END_TEST

START_TEST(sysmon_2019_nxlog_fields_only_in_message)
{
    char *line = malloc(LINE_MAX_BYTES);
    /* Line 1: System (pid 4, only in Message) sends a NetBIOS datagram. */
    size_t n = line_of(SYSMON19, 0, line, LINE_MAX_BYTES);
    result x = dec(line, n);
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert(x.has_ev);
    ck_assert_uint_eq(x.ev.pid, 4);
    ck_assert_str_eq(x.ev.host, "HFDC01.shire.com");
    ck_assert(x.ev.proto == NW_PROTO_UDP && x.ev.kind == NW_EV_SEND && x.ev.ip_version == 4);
    ck_ip(&x.ev.local_ip, "172.18.39.5");
    ck_assert_uint_eq(x.ev.local_port, 138);
    ck_ip(&x.ev.remote_ip, "172.18.39.255");
    ck_assert(x.ev.time == t_of("2019-12-05T01:49:28.817Z"));
    ck_assert_str_eq(x.pe->p.image, "System");
    ck_assert_str_eq(x.pe->p.user, "NT AUTHORITY\\SYSTEM");
    ck_assert_str_eq(x.pe->p.guid, "{d14e8c55-47af-5de8-0000-0010eb030000}");
    ck_assert(x.pe->p.create_time == 0x5de847afLL * NW_TICKS_PER_SEC);
    free(x.pe);

    /* Line 3: Sysmon 1 of gpupdate.exe, ProcessId 4892 only in Message. */
    n = line_of(SYSMON19, 2, line, LINE_MAX_BYTES);
    x = dec(line, n);
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert(!x.has_ev);
    ck_assert_int_eq(x.pe->source, NW_PSRC_SYSMON_CREATE);
    ck_assert_uint_eq(x.pe->p.pid, 4892);
    ck_assert_uint_eq(x.pe->p.parent_pid, 1444);
    ck_assert_str_eq(x.pe->p.host, "IT001.shire.com");
    ck_assert_str_eq(x.pe->p.image, "C:\\Windows\\System32\\gpupdate.exe");
    ck_assert_str_eq(x.pe->p.parent_image, "C:\\Windows\\System32\\svchost.exe");
    ck_assert_str_eq(x.pe->p.command_line, "gpupdate.exe /target:computer");
    ck_assert_str_eq(x.pe->p.user, "NT AUTHORITY\\NETWORK SERVICE");
    ck_assert_str_eq(x.pe->p.guid, "{a158f72c-623c-5de8-0000-0010b14b7400}");
    ck_assert(x.pe->p.create_time == t_of("2019-12-05T01:49:48.016Z"));
    free(x.pe);

    /* Line 29: Sysmon 5, the exit of conhost.exe. */
    n = line_of(SYSMON19, 28, line, LINE_MAX_BYTES);
    x = dec(line, n);
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert_int_eq(x.pe->source, NW_PSRC_SYSMON_EXIT);
    ck_assert_uint_eq(x.pe->p.pid, 5844);
    ck_assert(x.pe->has_exit && x.pe->p.exit_time == t_of("2019-12-05T01:49:54.665Z"));
    ck_assert(x.pe->p.create_time == 0x5de8623cLL * NW_TICKS_PER_SEC);
    free(x.pe);
    free(line);
}
END_TEST

START_TEST(sysmon_2021_dash_values_and_ipv6)
{
    char *line = malloc(LINE_MAX_BYTES);
    /* Line 1: an Exchange worker connects to 127.0.0.1:443. */
    size_t n = line_of(SYSMON21, 0, line, LINE_MAX_BYTES);
    result x = dec(line, n);
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert(x.ev.kind == NW_EV_CONNECT && x.ev.proto == NW_PROTO_TCP);
    ck_assert_uint_eq(x.ev.pid, 12252);
    ck_assert_uint_eq(x.ev.local_port, 30000);
    ck_assert_uint_eq(x.ev.remote_port, 443);
    ck_assert_str_eq(x.ev.host, "MXS01.azsentinel.local");
    ck_assert(x.ev.time == t_of("2021-03-14T06:39:30.227Z"));   /* UtcTime */
    ck_assert_str_eq(x.pe->p.image,
                     "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\"
                     "MSExchangeHMWorker.exe");
    free(x.pe);
    /* Line 2: the other end of it -- System accepts on :443. */
    n = line_of(SYSMON21, 1, line, LINE_MAX_BYTES);
    x = dec(line, n);
    ck_assert(x.r == NW_ACCEPTED && x.ev.kind == NW_EV_ACCEPT);
    ck_assert_uint_eq(x.ev.pid, 4);
    ck_assert_uint_eq(x.ev.local_port, 443);
    ck_assert_uint_eq(x.ev.remote_port, 30000);
    free(x.pe);
    /* Line 3: IPv6 loopback written uncompressed. */
    n = line_of(SYSMON21, 2, line, LINE_MAX_BYTES);
    x = dec(line, n);
    ck_assert(x.r == NW_ACCEPTED && x.ev.ip_version == 6);
    ck_ip(&x.ev.local_ip, "::1");
    ck_assert_uint_eq(x.ev.local_port, 30001);
    free(x.pe);
    free(line);
}
END_TEST

START_TEST(sysmon_rejects)
{
    struct {
        const char *json;
        nw_reject want;
    } cases[] = {
        /* not Sysmon: unknown_provider, as before */
        {"{\"EventID\":3,\"SourceName\":\"Microsoft-Windows-Security-Auditing\"}",
         NW_REJ_UNKNOWN_PROVIDER},
        {"{\"EventID\":7,\"SourceName\":\"Microsoft-Windows-Sysmon\","
         "\"UtcTime\":\"2021-03-14 06:39:30.227\",\"ProcessId\":\"1\"}",
         NW_REJ_UNKNOWN_EVENT_ID},
        {"{\"EventID\":3,\"SourceName\":\"Microsoft-Windows-Sysmon\","
         "\"UtcTime\":\"2021-03-14 06:39:30.227\",\"ProcessID\":2644,"
         "\"Message\":\"Network connection detected:\\r\\nProcessId: -\"}",
         NW_REJ_BAD_PID},
        {"{\"EventID\":1,\"SourceName\":\"Microsoft-Windows-Sysmon\","
         "\"UtcTime\":\"-\",\"ProcessId\":\"1\"}",
         NW_REJ_BAD_TIME},
        {"{\"EventID\":\"3\",\"Channel\":\"Microsoft-Windows-Sysmon/Operational\","
         "\"UtcTime\":\"2021-03-14 06:39:30.227\",\"ProcessId\":\"1\",\"Protocol\":\"icmp\"}",
         NW_REJ_BAD_FIELD},
        {"{\"EventID\":3,\"SourceName\":\"Microsoft-Windows-Sysmon\","
         "\"UtcTime\":\"2021-03-14 06:39:30.227\",\"ProcessId\":\"1\",\"Protocol\":\"tcp\","
         "\"Initiated\":\"true\",\"SourceIp\":\"10.0.0.300\",\"DestinationIp\":\"10.0.0.1\"}",
         NW_REJ_BAD_ADDRESS},
        {"{\"EventID\":3,\"SourceName\":\"Microsoft-Windows-Sysmon\","
         "\"UtcTime\":\"2021-03-14 06:39:30.227\",\"ProcessId\":\"1\",\"Protocol\":\"tcp\","
         "\"Initiated\":\"true\",\"SourceIp\":\"10.0.0.3\",\"DestinationIp\":\"10.0.0.1\","
         "\"SourcePort\":\"70000\",\"DestinationPort\":\"1\"}",
         NW_REJ_BAD_PORT},
        /* what the Kernel-Network decoder says about other objects stays */
        {"{\"a\":1}", NW_REJ_NO_SYSTEM},
        {"{\"system\":{\"provider\":\"Microsoft-Windows-DNS-Client\"},\"event_data\":{}}",
         NW_REJ_UNKNOWN_PROVIDER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result x = dec(cases[i].json, strlen(cases[i].json));
        ck_assert_msg(x.r == cases[i].want, "case %zu: %s (%s)", i, nw_reject_name(x.r),
                      x.detail);
        ck_assert_ptr_null(x.pe);
        ck_assert(!x.has_ev);
    }
}
END_TEST

START_TEST(sysmon_in_envelope_and_winlogbeat)
{
    const char *env =
        "{\"system\":{\"provider\":\"Microsoft-Windows-Sysmon\",\"event_id\":5,"
        "\"computer\":\"WS02\"},\"event_data\":{\"UtcTime\":\"2026-03-16 00:00:01.500\","
        "\"ProcessGuid\":\"{6004D249-AFAB-604D-2327-000000000900}\",\"ProcessId\":\"77\","
        "\"Image\":\"C:\\\\x.exe\"}}";
    result x = dec(env, strlen(env));
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert_str_eq(x.pe->p.host, "WS02");
    ck_assert_uint_eq(x.pe->p.pid, 77);
    free(x.pe);
    const char *wlb =
        "{\"@timestamp\":\"2026-03-16T00:00:01.5Z\",\"winlog\":{\"event_id\":1,"
        "\"provider_name\":\"Microsoft-Windows-Sysmon\",\"computer_name\":\"WS03\","
        "\"event_data\":{\"UtcTime\":\"2026-03-16 00:00:01.500\",\"ProcessId\":\"78\","
        "\"Image\":\"C:\\\\y.exe\",\"CommandLine\":\"y\",\"ParentProcessId\":\"1\"}}}";
    x = dec(wlb, strlen(wlb));
    ck_assert_msg(x.r == NW_ACCEPTED, "%s", x.detail);
    ck_assert_str_eq(x.pe->p.host, "WS03");
    ck_assert_str_eq(x.pe->p.command_line, "y");
    free(x.pe);
}
END_TEST

START_TEST(guid_time)
{
    nw_time t;
    ck_assert_int_eq(nw_sysmon_guid_time("{6004D249-0957-604D-6019-000000000900}", &t), 0);
    ck_assert(t == 0x604D0957LL * NW_TICKS_PER_SEC);
    ck_assert_int_eq(nw_sysmon_guid_time("{6004D249-0957-604D-6019-00000000090}", &t), -1);
    ck_assert_int_eq(nw_sysmon_guid_time("6004D249-0957-604D-6019-000000000900", &t), -1);
    ck_assert_int_eq(nw_sysmon_guid_time(NULL, &t), -1);
}
END_TEST

/* ---- through the pipeline: order, counts, and no leak on a stop ------- */

typedef struct pctx {
    int procs, events, stop_at;
    uint32_t last_pid;
    int in_order;
} pctx;

static int p_on_process(void *c, const nw_proc_event *pe)
{
    pctx *x = c;
    x->procs++;
    if (pe->p.pid != x->last_pid + 1)
        x->in_order = 0;
    x->last_pid = pe->p.pid;
    return x->stop_at && x->procs == x->stop_at;
}

static int p_on_event(void *c, const nw_event *ev)
{
    (void)ev;
    ((pctx *)c)->events++;
    return 0;
}

/* n ProcessStart lines, pids 1..n, every 10th followed by a network event:
 * over a megabyte, so several batches on several threads. */
static char *many(int n, size_t *len)
{
    size_t cap = (size_t)n * 600 + 1;
    char *b = malloc(cap), line[2048];
    *len = 0;
    for (int i = 1; i <= n; i++) {
        char data[512];
        snprintf(data, sizeof data,
                 "\"ProcessID\":\"%8d\",\"CreateTime\":\"2026-03-16T00:21:34.692334100Z\","
                 "\"ImageName\":\"\\\\Device\\\\HarddiskVolume4\\\\x.exe\"", i);
        kp(line, sizeof line, "1", data);
        size_t l = strlen(line);
        memcpy(b + *len, line, l);
        *len += l;
        b[(*len)++] = '\n';
    }
    return b;
}

START_TEST(pipeline_delivers_process_events_in_order)
{
    size_t len;
    char *buf = many(4000, &len);
    ck_assert(len > NW_PIPELINE_BATCH_BYTES);
    nw_pipeline_opts o = {.threads = 3, .source = "test"};
    nw_pipeline_cbs cbs = {.on_event = p_on_event, .on_process = p_on_process};
    pctx x = {.in_order = 1};
    nw_pipeline_stats st;
    nw_err err = {{0}};
    /* run_buf decodes inline below one batch; above, on the threads */
    ck_assert(nw_pipeline_run_buf(buf, len, &o, &cbs, &x, &st, &err) == NW_OK);
    ck_assert_int_eq(x.procs, 4000);
    ck_assert(x.in_order);
    ck_assert_uint_eq(st.processes, 4000);
    ck_assert_uint_eq(st.accepted, 4000);
    ck_assert_uint_eq(st.rejected, 0);
    /* A stop in the middle leaves decoded process events undelivered:
     * the pipeline frees them (ASan's leak check says so). */
    pctx y = {.in_order = 1, .stop_at = 100};
    ck_assert(nw_pipeline_run_buf(buf, len, &o, &cbs, &y, &st, &err) == NW_ERR_INVALID);
    ck_assert_int_eq(y.procs, 100);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("decode_process");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, kernel_process_start_real);
    tcase_add_test(tc, kernel_process_stop_and_rundown);
    tcase_add_test(tc, kernel_process_rejects);
    tcase_add_test(tc, sysmon_every_real_line);
    tcase_add_test(tc, sysmon_2019_nxlog_fields_only_in_message);
    tcase_add_test(tc, sysmon_2021_dash_values_and_ipv6);
    tcase_add_test(tc, sysmon_rejects);
    tcase_add_test(tc, sysmon_in_envelope_and_winlogbeat);
    tcase_add_test(tc, guid_time);
    tcase_add_test(tc, pipeline_delivers_process_events_in_order);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
