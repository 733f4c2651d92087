/* test_sysmon.c -- Sysmon Event ID 3 and ECS encoders: real Sysmon events
 * reproduced field for field, the exact XML of one event, escaping, and
 * the JSON shapes checked by parsing them. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/procguid.h"
#include "netwho/sysmon.h"
#include "tests/unit/check_main.h"

static nw_addr ip(const char *s)
{
    nw_addr a;
    ck_assert_msg(nw_addr_parse(s, strlen(s), 0, &a, NULL) == 0, "%s", s);
    return a;
}

/* "2021-03-14 06:39:30.227" + extra 100 ns ticks */
#define T2021 (1615703970LL * NW_TICKS_PER_SEC + 2271234)

static nw_conn conn(const char *host, uint32_t pid, int proto, int ver, int dir,
                    const char *lip, int lport, const char *rip, int rport, nw_time t)
{
    nw_conn c;
    memset(&c, 0, sizeof c);
    c.id = 11750109;
    c.host = host;
    c.pid = pid;
    c.proto = (uint8_t)proto;
    c.ip_version = (uint8_t)ver;
    c.direction = (uint8_t)dir;
    c.state = NW_STATE_CLOSED;
    c.local_ip = ip(lip);
    c.remote_ip = ip(rip);
    c.local_port = (uint16_t)lport;
    c.remote_port = (uint16_t)rport;
    c.first_seen = t;
    c.last_seen = t + 5 * NW_TICKS_PER_SEC;
    c.bytes_sent = 100;
    c.bytes_received = 2000;
    return c;
}

static nw_process proc(const char *host, uint32_t pid, const char *guid, const char *image)
{
    nw_process p;
    memset(&p, 0, sizeof p);
    p.host = host;
    p.pid = pid;
    p.create_time = T2021 - 3600 * NW_TICKS_PER_SEC;
    p.exit_time = NW_TIME_MAX;
    p.guid = guid;
    p.image = image;
    p.user = "NT AUTHORITY\\SYSTEM";
    return p;
}

typedef struct expect {
    const char *utc, *guid, *pid, *image, *proto, *init, *v6, *sip, *shost, *sport, *spn, *dip,
        *dhost, *dport, *dpn;
} expect;

static void check_fields(const nw_sysmon_event *ev, const expect *x)
{
    char num[16];
    ck_assert_str_eq(ev->utc_time, x->utc);
    ck_assert_str_eq(ev->process_guid, x->guid);
    snprintf(num, sizeof num, "%u", ev->process_id);
    ck_assert_str_eq(num, x->pid);
    ck_assert_str_eq(ev->image, x->image);
    ck_assert_str_eq(ev->protocol, x->proto);
    ck_assert_str_eq(ev->initiated ? "true" : "false", x->init);
    ck_assert_str_eq(ev->is_ipv6 ? "true" : "false", x->v6);
    ck_assert_str_eq(ev->source_ip, x->sip);
    ck_assert_str_eq(ev->source_hostname, x->shost);
    snprintf(num, sizeof num, "%u", ev->source_port);
    ck_assert_str_eq(num, x->sport);
    ck_assert_str_eq(ev->source_port_name, x->spn);
    ck_assert_str_eq(ev->destination_ip, x->dip);
    ck_assert_str_eq(ev->destination_hostname, x->dhost);
    snprintf(num, sizeof num, "%u", ev->destination_port);
    ck_assert_str_eq(num, x->dport);
    ck_assert_str_eq(ev->destination_port_name, x->dpn);
}

/*
 * The first four event 3 records of
 * ../shared/data/sysmon_otrf_2021_proxylogon_ssrf_rce_poc.jsonl (OTRF,
 * MIT), values copied: both ends of one IPv4 and one IPv6 loopback
 * connection -- the connect (Initiated true, local end in Source) and the
 * accept in System (Initiated false, the remote initiator in Source) give
 * the same Source and Destination.  That Sysmon had name lookups off.
 */
START_TEST(real_2021_loopback_pairs)
{
    const char *host = "MXS01.azsentinel.local";
    const char *worker = "C:\\Program Files\\Microsoft\\Exchange Server\\V15\\Bin\\"
                         "MSExchangeHMWorker.exe";
    nw_sysmon_opts o = {.no_port_names = 1, .no_hostnames = 1};
    nw_process pw = proc(host, 12252, "{6004D249-0957-604D-6019-000000000900}", worker);
    nw_process ps = proc(host, 4, "{6004D249-FD90-604C-0100-000000000900}", "System");
    nw_sysmon_event ev;

    nw_conn c = conn(host, 12252, NW_PROTO_TCP, 4, NW_DIR_OUTBOUND, "127.0.0.1", 30000,
                     "127.0.0.1", 443, T2021);
    nw_sysmon_fields(&c, &pw, &o, &ev);
    expect x1 = {"2021-03-14 06:39:30.227", "{6004D249-0957-604D-6019-000000000900}", "12252",
                 worker, "tcp", "true", "false", "127.0.0.1", "-", "30000", "-", "127.0.0.1",
                 "-", "443", "-"};
    check_fields(&ev, &x1);

    c = conn(host, 4, NW_PROTO_TCP, 4, NW_DIR_INBOUND, "127.0.0.1", 443, "127.0.0.1", 30000,
             T2021);
    nw_sysmon_fields(&c, &ps, &o, &ev);
    expect x2 = {"2021-03-14 06:39:30.227", "{6004D249-FD90-604C-0100-000000000900}", "4",
                 "System", "tcp", "false", "false", "127.0.0.1", "-", "30000", "-",
                 "127.0.0.1", "-", "443", "-"};
    check_fields(&ev, &x2);

    nw_time t = 1615703971LL * NW_TICKS_PER_SEC + 3829999;       /* 06:39:31.382 */
    c = conn(host, 12252, NW_PROTO_TCP, 6, NW_DIR_OUTBOUND, "::1", 30001, "::1", 443, t);
    nw_sysmon_fields(&c, &pw, &o, &ev);
    expect x3 = {"2021-03-14 06:39:31.382", "{6004D249-0957-604D-6019-000000000900}", "12252",
                 worker, "tcp", "true", "true", "0:0:0:0:0:0:0:1", "-", "30001", "-",
                 "0:0:0:0:0:0:0:1", "-", "443", "-"};
    check_fields(&ev, &x3);

    c = conn(host, 4, NW_PROTO_TCP, 6, NW_DIR_INBOUND, "::1", 443, "::1", 30001, t);
    nw_sysmon_fields(&c, &ps, &o, &ev);
    expect x4 = {"2021-03-14 06:39:31.382", "{6004D249-FD90-604C-0100-000000000900}", "4",
                 "System", "tcp", "false", "true", "0:0:0:0:0:0:0:1", "-", "30001", "-",
                 "0:0:0:0:0:0:0:1", "-", "443", "-"};
    check_fields(&ev, &x4);

    /* A link-local peer, written uncompressed as in the file's later events. */
    c = conn(host, 16036, NW_PROTO_TCP, 6, NW_DIR_OUTBOUND, "fe80::b14f:e9ef:a6b2:f79f", 30002,
             "fe80::b14f:e9ef:a6b2:f79f", 444, t);
    nw_sysmon_fields(&c, NULL, &o, &ev);
    ck_assert_str_eq(ev.source_ip, "fe80:0:0:0:b14f:e9ef:a6b2:f79f");
    ck_assert_str_eq(ev.process_guid, "-");
    ck_assert_str_eq(ev.image, "-");
    ck_assert_str_eq(ev.user, "-");
}
END_TEST

/*
 * The first event 3 of ../shared/data/sysmon_otrf_2019_covenant_psremoting_grunt.jsonl:
 * System on HFDC01 sends NetBIOS datagrams to the subnet broadcast, with port
 * names and the local host name (that Sysmon resolved names; the broadcast
 * address had none, shipped as an absent field: "-" here).
 */
START_TEST(real_2019_netbios_broadcast)
{
    const char *host = "HFDC01.shire.com";
    nw_process ps = proc(host, 4, "{d14e8c55-47af-5de8-0000-0010eb030000}", "System");
    nw_conn c = conn(host, 4, NW_PROTO_UDP, 4, NW_DIR_OUTBOUND, "172.18.39.5", 138,
                     "172.18.39.255", 138, 1575510568LL * NW_TICKS_PER_SEC + 8170000);
    nw_sysmon_event ev;
    nw_sysmon_fields(&c, &ps, NULL, &ev);
    expect x = {"2019-12-05 01:49:28.817", "{d14e8c55-47af-5de8-0000-0010eb030000}", "4",
                "System", "udp", "true", "false", "172.18.39.5", "HFDC01.shire.com", "138",
                "netbios-dgm", "172.18.39.255", "-", "138", "netbios-dgm"};
    check_fields(&ev, &x);
    /* inbound: the local name moves to Destination with the local end */
    c = conn(host, 780, NW_PROTO_TCP, 4, NW_DIR_INBOUND, "172.18.39.5", 389, "172.18.39.100",
             50017, c.first_seen);
    nw_sysmon_fields(&c, NULL, NULL, &ev);
    ck_assert_str_eq(ev.source_ip, "172.18.39.100");
    ck_assert_str_eq(ev.source_hostname, "-");
    ck_assert_str_eq(ev.source_port_name, "-");
    ck_assert_str_eq(ev.destination_ip, "172.18.39.5");
    ck_assert_str_eq(ev.destination_hostname, "HFDC01.shire.com");
    ck_assert_str_eq(ev.destination_port_name, "ldap");
    ck_assert_int_eq(ev.initiated, 0);
}
END_TEST

/* Unknown direction: the named or lower port is the server's. */
START_TEST(unknown_direction_by_ports)
{
    nw_sysmon_event ev;
    nw_conn c = conn("h", 1, NW_PROTO_TCP, 4, NW_DIR_UNKNOWN, "10.0.0.1", 50993, "10.0.0.2",
                     5044, 0);
    nw_sysmon_fields(&c, NULL, NULL, &ev);       /* neither named: lower port serves */
    ck_assert_int_eq(ev.initiated, 1);
    ck_assert_str_eq(ev.source_ip, "10.0.0.1");
    c = conn("h", 1, NW_PROTO_TCP, 4, NW_DIR_UNKNOWN, "10.0.0.1", 5985, "10.0.0.2", 61000, 0);
    nw_sysmon_fields(&c, NULL, NULL, &ev);
    ck_assert_int_eq(ev.initiated, 0);
    ck_assert_str_eq(ev.source_ip, "10.0.0.2");
    c = conn("h", 1, NW_PROTO_TCP, 4, NW_DIR_UNKNOWN, "10.0.0.1", 3000, "10.0.0.2", 443, 0);
    nw_sysmon_fields(&c, NULL, NULL, &ev);       /* 443 named, 3000 not */
    ck_assert_int_eq(ev.initiated, 1);
    ck_assert_str_eq(ev.destination_port_name, "https");
}
END_TEST

/* The whole XML of one event, byte for byte, in the seed's shape. */
START_TEST(xml_exact)
{
    nw_buf b;
    nw_buf_init(&b, 1 << 16);
    nw_sysmon_enc e;
    nw_sysmon_opts o = {.exporter_pid = 2152, .exporter_tid = 3236};
    nw_conn c = conn("DESKTOP-WARDOG", 4, NW_PROTO_UDP, 4, NW_DIR_INBOUND, "192.168.64.135",
                     138, "192.168.64.255", 138, 1523424575LL * NW_TICKS_PER_SEC + 3948635);
    nw_process p = proc("DESKTOP-WARDOG", 4, "{A98268C1-957F-5ACD-0000-0010EB030000}", "System");
    ck_assert_int_eq(nw_sysmon_begin(&e, NW_SYSMON_XML, &o, &b), 0);
    ck_assert_int_eq(nw_sysmon_conn(&e, &c, &p), 0);
    ck_assert_int_eq(nw_sysmon_end(&e), 0);
    ck_assert_str_eq(
        b.data,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Events>\n"
        "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System>"
        "<Provider Name=\"Microsoft-Windows-Sysmon\" "
        "Guid=\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\"/><EventID>3</EventID>"
        "<Version>5</Version><Level>4</Level><Task>3</Task><Opcode>0</Opcode>"
        "<Keywords>0x8000000000000000</Keywords>"
        "<TimeCreated SystemTime=\"2018-04-11T05:29:35.394863500Z\"/>"
        "<EventRecordID>11750109</EventRecordID><Correlation/>"
        "<Execution ProcessID=\"2152\" ThreadID=\"3236\"/>"
        "<Channel>Microsoft-Windows-Sysmon/Operational</Channel>"
        "<Computer>DESKTOP-WARDOG</Computer><Security UserID=\"S-1-5-18\"/></System>"
        "<EventData><Data Name=\"RuleName\">-</Data>"
        "<Data Name=\"UtcTime\">2018-04-11 05:29:35.394</Data>"
        "<Data Name=\"ProcessGuid\">{A98268C1-957F-5ACD-0000-0010EB030000}</Data>"
        "<Data Name=\"ProcessId\">4</Data><Data Name=\"Image\">System</Data>"
        "<Data Name=\"User\">NT AUTHORITY\\SYSTEM</Data><Data Name=\"Protocol\">udp</Data>"
        "<Data Name=\"Initiated\">false</Data><Data Name=\"SourceIsIpv6\">false</Data>"
        "<Data Name=\"SourceIp\">192.168.64.255</Data>"
        "<Data Name=\"SourceHostname\">-</Data><Data Name=\"SourcePort\">138</Data>"
        "<Data Name=\"SourcePortName\">netbios-dgm</Data>"
        "<Data Name=\"DestinationIsIpv6\">false</Data>"
        "<Data Name=\"DestinationIp\">192.168.64.135</Data>"
        "<Data Name=\"DestinationHostname\">DESKTOP-WARDOG</Data>"
        "<Data Name=\"DestinationPort\">138</Data>"
        "<Data Name=\"DestinationPortName\">netbios-dgm</Data></EventData></Event>\n"
        "</Events>\n");
    nw_buf_free(&b);
}
END_TEST

START_TEST(xml_escaping)
{
    nw_buf b;
    nw_buf_init(&b, 1 << 16);
    nw_sysmon_enc e;
    nw_conn c = conn("a<b>&\"c'", 9, NW_PROTO_TCP, 4, NW_DIR_OUTBOUND, "10.0.0.1", 50000,
                     "10.0.0.2", 80, T2021);
    nw_process p = proc("a<b>&\"c'", 9, NULL, "C:\\x\x01y\xff\xc3\xa9\tz.exe");
    p.create_time = -5;                     /* no derivable GUID: "-" */
    nw_sysmon_begin(&e, NW_SYSMON_XML, NULL, &b);
    ck_assert_int_eq(nw_sysmon_conn(&e, &c, &p), 0);
    ck_assert_ptr_nonnull(strstr(b.data, "<Computer>a&lt;b&gt;&amp;&quot;c&apos;</Computer>"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "<Data Name=\"Image\">C:\\x\xef\xbf\xbdy\xef\xbf\xbd\xc3\xa9&#9;z.exe</Data>"));
    ck_assert_ptr_nonnull(strstr(b.data, "<Data Name=\"ProcessGuid\">-</Data>"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "<Data Name=\"SourceHostname\">a&lt;b&gt;&amp;&quot;c&apos;</Data>"));
    nw_buf_free(&b);
}
END_TEST

static cJSON *obj_at(cJSON *arr, int i)
{
    cJSON *o = cJSON_GetArrayItem(arr, i);
    ck_assert_ptr_nonnull(o);
    return o;
}

static const char *jstr(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", k);
    return v->valuestring;
}

START_TEST(json_and_ossem)
{
    nw_buf b;
    nw_buf_init(&b, 1 << 16);
    nw_sysmon_enc e;
    nw_sysmon_opts o = {.ossem = 1};
    nw_conn c1 = conn("HR001", 3300, NW_PROTO_TCP, 4, NW_DIR_OUTBOUND, "172.18.39.106", 50017,
                      "172.18.39.102", 5985, T2021);
    nw_conn c2 = conn("HR001", 3300, NW_PROTO_UDP, 6, NW_DIR_INBOUND, "fe80::1", 53,
                      "fe80::2", 61000, T2021);
    nw_process p = proc("HR001", 3300, NULL, "C:\\Windows\\System32\\svchost.exe");
    nw_sysmon_begin(&e, NW_SYSMON_JSON, &o, &b);
    ck_assert_int_eq(nw_sysmon_conn(&e, &c1, &p), 0);
    ck_assert_int_eq(nw_sysmon_conn(&e, &c2, NULL), 0);
    nw_sysmon_end(&e);
    cJSON *arr = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(arr);
    ck_assert_int_eq(cJSON_GetArraySize(arr), 2);
    cJSON *a = obj_at(arr, 0);
    ck_assert_str_eq(jstr(a, "ProcessId"), "3300");
    ck_assert_str_eq(jstr(a, "SourcePort"), "50017");
    ck_assert_str_eq(jstr(a, "DestinationPortName"), "-");
    ck_assert_str_eq(jstr(a, "Initiated"), "true");
    ck_assert_str_eq(jstr(a, "Computer"), "HR001");
    ck_assert_str_eq(jstr(a, "TimeCreated"), "2021-03-14T06:39:30.227123400Z");
    ck_assert_int_eq(cJSON_GetObjectItem(a, "EventRecordID")->valuedouble, 11750109);
    ck_assert_str_eq(jstr(a, "community_id"), jstr(a, "community_id"));
    ck_assert_uint_eq(strlen(jstr(a, "community_id")), NW_COMMUNITY_ID_LEN);
    /* the derived GUID: the same one procguid gives */
    char g[NW_GUID_MAX];
    nw_process_guid(&p, g, sizeof g);
    ck_assert_str_eq(jstr(a, "ProcessGuid"), g);
    ck_assert_str_eq(jstr(a, "process_guid"), g);
    ck_assert_int_eq(cJSON_GetObjectItem(a, "dst_port")->valueint, 5985);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(a, "network_connection_initiated")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(a, "src_is_ipv6")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(a, "dst_port_name")));
    ck_assert_str_eq(jstr(a, "process_name"), "C:\\Windows\\System32\\svchost.exe");
    ck_assert_str_eq(jstr(a, "src_ip"), "172.18.39.106");
    cJSON *d = obj_at(arr, 1);
    ck_assert_str_eq(jstr(d, "SourceIp"), "fe80:0:0:0:0:0:0:2");
    ck_assert_str_eq(jstr(d, "DestinationPortName"), "domain");
    ck_assert_str_eq(jstr(d, "Image"), "-");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "process_name")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "dst_is_ipv6")));
    cJSON_Delete(arr);

    /* ndjson: one object per line, no OSSEM names unless asked */
    nw_buf_reset(&b);
    nw_sysmon_begin(&e, NW_SYSMON_NDJSON, NULL, &b);
    nw_sysmon_conn(&e, &c1, NULL);
    nw_sysmon_conn(&e, &c2, NULL);
    nw_sysmon_end(&e);
    char *nl = strchr(b.data, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_ptr_eq(strchr(nl + 1, '\n'), b.data + b.len - 1);
    *nl = '\0';
    cJSON *first = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_null(cJSON_GetObjectItem(first, "src_ip"));
    cJSON_Delete(first);
    nw_buf_free(&b);
}
END_TEST

static cJSON *path(cJSON *o, const char *a, const char *b)
{
    cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    ck_assert_msg(x != NULL, "%s missing", a);
    if (!b)
        return x;
    cJSON *y = cJSON_GetObjectItemCaseSensitive(x, b);
    ck_assert_msg(y != NULL, "%s.%s missing", a, b);
    return y;
}

START_TEST(ecs_documents)
{
    nw_buf b;
    nw_buf_init(&b, 1 << 16);
    nw_sysmon_enc e;
    nw_sysmon_opts o = {.ecs_bulk = 1, .ecs_index = "netwho-conn"};
    /* The spec's 8.8.8.8 DNS flow, seen inbound on the resolver. */
    nw_conn c = conn("DNS01", 2680, NW_PROTO_UDP, 4, NW_DIR_INBOUND, "8.8.8.8", 53,
                     "192.168.1.52", 54585, T2021);
    nw_process p = proc("DNS01", 2680, NULL, "C:\\Windows\\System32\\dns.exe");
    p.has_parent = 1;
    p.parent_pid = 600;
    nw_sysmon_begin(&e, NW_SYSMON_ECS, &o, &b);
    ck_assert_int_eq(nw_sysmon_conn(&e, &c, &p), 0);
    nw_sysmon_end(&e);
    char *nl = strchr(b.data, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    ck_assert_str_eq(b.data, "{\"create\":{\"_index\":\"netwho-conn\"}}");
    cJSON *d = cJSON_Parse(nl + 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(path(d, "network", "community_id")->valuestring,
                     "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
    ck_assert_str_eq(path(d, "network", "transport")->valuestring, "udp");
    ck_assert_str_eq(path(d, "network", "type")->valuestring, "ipv4");
    ck_assert_str_eq(path(d, "network", "direction")->valuestring, "ingress");
    ck_assert_int_eq(path(d, "network", "bytes")->valueint, 2100);
    ck_assert_str_eq(path(d, "source", "ip")->valuestring, "192.168.1.52");
    ck_assert_int_eq(path(d, "source", "port")->valueint, 54585);
    ck_assert_int_eq(path(d, "source", "bytes")->valueint, 2000);   /* what we received */
    ck_assert_str_eq(path(d, "destination", "ip")->valuestring, "8.8.8.8");
    ck_assert_int_eq(path(d, "destination", "bytes")->valueint, 100);
    ck_assert_int_eq(path(d, "process", "pid")->valueint, 2680);
    ck_assert_str_eq(path(d, "process", "name")->valuestring, "dns.exe");
    ck_assert_str_eq(path(d, "process", "executable")->valuestring,
                     "C:\\Windows\\System32\\dns.exe");
    ck_assert_uint_eq(strlen(path(d, "process", "entity_id")->valuestring),
                      NW_PROCESS_GUID_LEN);
    ck_assert_int_eq(path(path(d, "process", "parent"), "pid", NULL)->valueint, 600);
    ck_assert_str_eq(path(d, "user", "name")->valuestring, "SYSTEM");
    ck_assert_str_eq(path(d, "user", "domain")->valuestring, "NT AUTHORITY");
    ck_assert_str_eq(path(d, "host", "name")->valuestring, "DNS01");
    ck_assert_str_eq(path(d, "event", "kind")->valuestring, "event");
    ck_assert_str_eq(cJSON_GetArrayItem(path(d, "event", "category"), 0)->valuestring,
                     "network");
    ck_assert_str_eq(cJSON_GetArrayItem(path(d, "event", "type"), 0)->valuestring,
                     "connection");
    ck_assert_str_eq(path(d, "event", "action")->valuestring, "connection_accepted");
    ck_assert_str_eq(path(d, "event", "start")->valuestring, "2021-03-14T06:39:30.2271234Z");
    ck_assert_str_eq(path(d, "event", "end")->valuestring, "2021-03-14T06:39:35.2271234Z");
    ck_assert_str_eq(path(d, "@timestamp", NULL)->valuestring, "2021-03-14T06:39:30.2271234Z");
    cJSON_Delete(d);

    /* Without a process: only the pid; IPv6 with an open connection. */
    nw_buf_reset(&b);
    c = conn("WS1", 77, NW_PROTO_TCP, 6, NW_DIR_UNKNOWN, "2001:db8::5", 50000, "2001:db8::9",
             443, T2021);
    c.state = NW_STATE_ESTABLISHED;
    nw_sysmon_begin(&e, NW_SYSMON_ECS, NULL, &b);
    nw_sysmon_conn(&e, &c, NULL);
    d = cJSON_Parse(b.data);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(path(d, "network", "direction")->valuestring, "unknown");
    ck_assert_str_eq(path(d, "network", "type")->valuestring, "ipv6");
    ck_assert_str_eq(path(d, "source", "ip")->valuestring, "2001:db8::5");
    ck_assert_ptr_null(cJSON_GetObjectItem(path(d, "event", NULL), "end"));
    ck_assert_ptr_null(cJSON_GetObjectItem(path(d, "process", NULL), "entity_id"));
    ck_assert_ptr_null(cJSON_GetObjectItem(d, "user"));
    cJSON_Delete(d);
    nw_buf_free(&b);
}
END_TEST

START_TEST(full_buffer_fails)
{
    nw_buf b;
    nw_buf_init(&b, 300);
    nw_sysmon_enc e;
    nw_conn c = conn("h", 1, NW_PROTO_TCP, 4, NW_DIR_OUTBOUND, "10.0.0.1", 1, "10.0.0.2", 2, 0);
    for (int f = 0; f < 4; f++) {
        nw_buf_reset(&b);
        nw_sysmon_begin(&e, (nw_sysmon_format)f, NULL, &b);
        ck_assert_int_eq(nw_sysmon_conn(&e, &c, NULL), -1);
    }
    nw_buf_free(&b);
    ck_assert_int_eq(nw_sysmon_format_from_name("ecs"), NW_SYSMON_ECS);
    ck_assert_int_eq(nw_sysmon_format_from_name("csv"), -1);
    ck_assert_str_eq(nw_sysmon_format_name(NW_SYSMON_NDJSON), "ndjson");
    nw_process scratch;
    ck_assert_ptr_null(nw_sysmon_process_for(NULL, &c, &scratch));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sysmon");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, real_2021_loopback_pairs);
    tcase_add_test(tc, real_2019_netbios_broadcast);
    tcase_add_test(tc, unknown_direction_by_ports);
    tcase_add_test(tc, xml_exact);
    tcase_add_test(tc, xml_escaping);
    tcase_add_test(tc, json_and_ossem);
    tcase_add_test(tc, ecs_documents);
    tcase_add_test(tc, full_buffer_fails);
    suite_add_tcase(s, tc);
    return nw_check_run(s);
}
