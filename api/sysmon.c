/*
 * sysmon.c -- Sysmon Event ID 3 and ECS encoders (see sysmon.h).
 *
 * Written by hand, like encode.c: the shape is fixed and an export may run
 * to millions of events.  Free text (host, image, user, index) goes through
 * xml_str or nw_buf_add_json_str; everything else is built from numbers.
 */
#include "netwho/sysmon.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "netwho/addr.h"
#include "netwho/event.h"
#include "netwho/nwtime.h"
#include "netwho/procguid.h"
#include "netwho/services.h"

static const char *const format_names[] = {"xml", "json", "ndjson", "ecs"};

int nw_sysmon_format_from_name(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, format_names[i]) == 0)
            return i;
    return -1;
}

const char *nw_sysmon_format_name(nw_sysmon_format f)
{
    return (unsigned)f < 4 ? format_names[f] : "xml";
}

const nw_process *nw_sysmon_process_for(nw_store *store, const nw_conn *c,
                                        nw_process *scratch)
{
    (void)store;
    (void)scratch;
    /* The query engine attributed c as it yielded it (procstore.h). */
    return c->process;
}

/* ------------------------------------------------------------- fields */

/* Sysmon's address text: dotted quad, or IPv6 with all 8 groups. */
static void sysmon_ip(const nw_addr *a, int version, char *out)
{
    if (version == 4 && nw_addr_is_v4(a)) {
        nw_addr_format(a, 4, out, NW_SYSMON_IP_MAX);
        return;
    }
    size_t n = 0;
    for (int i = 0; i < 8; i++)
        n += (size_t)snprintf(out + n, NW_SYSMON_IP_MAX - n, "%s%x", i ? ":" : "",
                              (unsigned)(a->b[2 * i] << 8 | a->b[2 * i + 1]));
}

/* Is the local end the initiator (Source)?  Direction when known, else
 * the ports: a named service port, then the lower port, is the server's. */
static int local_initiated(const nw_conn *c)
{
    if (c->direction == NW_DIR_OUTBOUND)
        return 1;
    if (c->direction == NW_DIR_INBOUND)
        return 0;
    int lnamed = nw_service_name(c->local_port, c->proto) != NULL;
    int rnamed = nw_service_name(c->remote_port, c->proto) != NULL;
    if (lnamed != rnamed)
        return rnamed;
    return c->local_port >= c->remote_port;
}

static const char *dash(const char *s)
{
    return s && s[0] ? s : "-";
}

void nw_sysmon_fields(const nw_conn *c, const nw_process *p, const nw_sysmon_opts *o,
                      nw_sysmon_event *ev)
{
    static const nw_sysmon_opts none;
    if (!o)
        o = &none;
    memset(ev, 0, sizeof *ev);
    char ts[NW_TIME_STRLEN];
    size_t n = nw_time_format(c->first_seen, ts, sizeof ts);
    if (n == 28) {
        /* "2026-03-16T00:21:36.4231059Z": milliseconds are cut, not rounded,
         * as Sysmon's UtcTime; SystemTime has 9 digits as Windows writes. */
        memcpy(ev->utc_time, ts, 23);
        ev->utc_time[10] = ' ';
        ev->utc_time[23] = '\0';
        memcpy(ev->system_time, ts, 27);
        memcpy(ev->system_time + 27, "00Z", 4);
    } else {
        strcpy(ev->utc_time, "-");
    }
    strcpy(ev->process_guid, "-");
    if (p && p->guid && p->guid[0])
        snprintf(ev->process_guid, sizeof ev->process_guid, "%s", p->guid);
    else if (p && nw_process_guid(p, ev->process_guid, sizeof ev->process_guid) < 0)
        strcpy(ev->process_guid, "-");
    ev->process_id = c->pid;
    ev->image = dash(p ? p->image : NULL);
    ev->user = dash(p ? p->user : NULL);
    ev->protocol = nw_proto_name(c->proto);
    ev->is_ipv6 = c->ip_version == 6;

    int li = local_initiated(c);
    ev->initiated = li;
    ev->source_is_local = li;
    const char *local_name = o->no_hostnames ? "-" : dash(c->host);
    const char *lpn = o->no_port_names ? NULL : nw_service_name(c->local_port, c->proto);
    const char *rpn = o->no_port_names ? NULL : nw_service_name(c->remote_port, c->proto);
    const nw_addr *sip = li ? &c->local_ip : &c->remote_ip;
    const nw_addr *dip = li ? &c->remote_ip : &c->local_ip;
    sysmon_ip(sip, c->ip_version, ev->source_ip);
    sysmon_ip(dip, c->ip_version, ev->destination_ip);
    ev->source_hostname = li ? local_name : "-";
    ev->destination_hostname = li ? "-" : local_name;
    ev->source_port = li ? c->local_port : c->remote_port;
    ev->destination_port = li ? c->remote_port : c->local_port;
    ev->source_port_name = dash(li ? lpn : rpn);
    ev->destination_port_name = dash(li ? rpn : lpn);
    if (nw_conn_community_id(c, o->community_id_seed, ev->community_id,
                             sizeof ev->community_id) < 0)
        ev->community_id[0] = '\0';
}

/* ---------------------------------------------------------- escaping */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
        return 0;
    return len;
}

/* s as XML character data / attribute value: markup characters as
 * entities, characters XML 1.0 forbids and broken UTF-8 as U+FFFD. */
static int xml_str(nw_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    int rc = 0;
    while (n > 0 && !rc) {
        size_t run = 0;                 /* plain bytes copied in one go */
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '&' &&
               p[run] != '<' && p[run] != '>' && p[run] != '"' && p[run] != '\'')
            run++;
        if (run) {
            rc = nw_buf_add(b, p, run);
            p += run;
            n -= run;
            continue;
        }
        unsigned char c = *p;
        size_t len = 1;
        switch (c) {
        case '&': rc = nw_buf_adds(b, "&amp;"); break;
        case '<': rc = nw_buf_adds(b, "&lt;"); break;
        case '>': rc = nw_buf_adds(b, "&gt;"); break;
        case '"': rc = nw_buf_adds(b, "&quot;"); break;
        case '\'': rc = nw_buf_adds(b, "&apos;"); break;
        case '\t': rc = nw_buf_adds(b, "&#9;"); break;
        case '\n': rc = nw_buf_adds(b, "&#10;"); break;
        case '\r': rc = nw_buf_adds(b, "&#13;"); break;
        default:
            len = c < 0x20 ? 0 : utf8_len(p, n);
            if (len)
                rc = nw_buf_add(b, p, len);
            else {
                rc = nw_buf_adds(b, "\xef\xbf\xbd");
                len = 1;
            }
        }
        p += len;
        n -= len;
    }
    return rc;
}

static int json_str(nw_buf *b, const char *s)
{
    return nw_buf_add_json_str(b, s, strlen(s));
}

/* ---------------------------------------------------------------- XML */

#define XML_NS "http://schemas.microsoft.com/win/2004/08/events/event"

static int xml_data(nw_buf *b, const char *name, const char *value)
{
    int rc = nw_buf_addf(b, "<Data Name=\"%s\">", name);
    rc |= xml_str(b, value);
    return rc | nw_buf_adds(b, "</Data>");
}

static int xml_event(nw_sysmon_enc *e, const nw_conn *c, const nw_sysmon_event *ev)
{
    nw_buf *b = e->out;
    char num[24];
    int rc = nw_buf_adds(b,
                         "<Event xmlns=\"" XML_NS "\"><System>"
                         "<Provider Name=\"Microsoft-Windows-Sysmon\" "
                         "Guid=\"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}\"/>"
                         "<EventID>3</EventID><Version>5</Version><Level>4</Level>"
                         "<Task>3</Task><Opcode>0</Opcode>"
                         "<Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime=\"");
    rc |= nw_buf_adds(b, ev->system_time);
    rc |= nw_buf_addf(b,
                      "\"/><EventRecordID>%" PRId64 "</EventRecordID><Correlation/>"
                      "<Execution ProcessID=\"%" PRIu32 "\" ThreadID=\"%" PRIu32 "\"/>"
                      "<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>",
                      c->id, e->opts.exporter_pid, e->opts.exporter_tid);
    rc |= xml_str(b, dash(c->host));
    rc |= nw_buf_adds(b, "</Computer><Security UserID=\"S-1-5-18\"/></System><EventData>");
    rc |= xml_data(b, "RuleName", "-");
    rc |= xml_data(b, "UtcTime", ev->utc_time);
    rc |= xml_data(b, "ProcessGuid", ev->process_guid);
    snprintf(num, sizeof num, "%" PRIu32, ev->process_id);
    rc |= xml_data(b, "ProcessId", num);
    rc |= xml_data(b, "Image", ev->image);
    rc |= xml_data(b, "User", ev->user);
    rc |= xml_data(b, "Protocol", ev->protocol);
    rc |= xml_data(b, "Initiated", ev->initiated ? "true" : "false");
    rc |= xml_data(b, "SourceIsIpv6", ev->is_ipv6 ? "true" : "false");
    rc |= xml_data(b, "SourceIp", ev->source_ip);
    rc |= xml_data(b, "SourceHostname", ev->source_hostname);
    snprintf(num, sizeof num, "%u", ev->source_port);
    rc |= xml_data(b, "SourcePort", num);
    rc |= xml_data(b, "SourcePortName", ev->source_port_name);
    rc |= xml_data(b, "DestinationIsIpv6", ev->is_ipv6 ? "true" : "false");
    rc |= xml_data(b, "DestinationIp", ev->destination_ip);
    rc |= xml_data(b, "DestinationHostname", ev->destination_hostname);
    snprintf(num, sizeof num, "%u", ev->destination_port);
    rc |= xml_data(b, "DestinationPort", num);
    rc |= xml_data(b, "DestinationPortName", ev->destination_port_name);
    return rc | nw_buf_adds(b, "</EventData></Event>\n");
}

/* --------------------------------------------------------------- JSON */

static int json_kv(nw_buf *b, const char *key, const char *value)
{
    int rc = nw_buf_addf(b, ",\"%s\":", key);
    return rc | json_str(b, value);
}

/* An OSSEM string value: null for Sysmon's "-". */
static int ossem_str(nw_buf *b, const char *key, const char *value)
{
    if (strcmp(value, "-") == 0)
        return nw_buf_addf(b, ",\"%s\":null", key);
    return json_kv(b, key, value);
}

static int json_event(nw_sysmon_enc *e, const nw_conn *c, const nw_sysmon_event *ev)
{
    nw_buf *b = e->out;
    int rc = nw_buf_adds(b, "{\"EventID\":3,\"Computer\":");
    rc |= json_str(b, dash(c->host));
    rc |= nw_buf_addf(b, ",\"EventRecordID\":%" PRId64 ",\"TimeCreated\":", c->id);
    rc |= ev->system_time[0] ? nw_buf_addf(b, "\"%s\"", ev->system_time)
                             : nw_buf_adds(b, "null");
    rc |= json_kv(b, "RuleName", "-");
    rc |= json_kv(b, "UtcTime", ev->utc_time);
    rc |= json_kv(b, "ProcessGuid", ev->process_guid);
    rc |= nw_buf_addf(b, ",\"ProcessId\":\"%" PRIu32 "\"", ev->process_id);
    rc |= json_kv(b, "Image", ev->image);
    rc |= json_kv(b, "User", ev->user);
    rc |= json_kv(b, "Protocol", ev->protocol);
    const char *init = ev->initiated ? "true" : "false";
    const char *v6 = ev->is_ipv6 ? "true" : "false";
    rc |= json_kv(b, "Initiated", init);
    rc |= json_kv(b, "SourceIsIpv6", v6);
    rc |= json_kv(b, "SourceIp", ev->source_ip);
    rc |= json_kv(b, "SourceHostname", ev->source_hostname);
    rc |= nw_buf_addf(b, ",\"SourcePort\":\"%u\"", ev->source_port);
    rc |= json_kv(b, "SourcePortName", ev->source_port_name);
    rc |= json_kv(b, "DestinationIsIpv6", v6);
    rc |= json_kv(b, "DestinationIp", ev->destination_ip);
    rc |= json_kv(b, "DestinationHostname", ev->destination_hostname);
    rc |= nw_buf_addf(b, ",\"DestinationPort\":\"%u\"", ev->destination_port);
    rc |= json_kv(b, "DestinationPortName", ev->destination_port_name);
    rc |= ev->community_id[0] ? json_kv(b, "community_id", ev->community_id)
                              : nw_buf_adds(b, ",\"community_id\":null");
    if (e->opts.ossem) {
        /* The OSSEM data dictionary of Sysmon event 3 (the seed), typed. */
        rc |= ossem_str(b, "event_creation_time", ev->utc_time);
        rc |= ossem_str(b, "process_guid", ev->process_guid);
        rc |= nw_buf_addf(b, ",\"process_id\":%" PRIu32, ev->process_id);
        rc |= ossem_str(b, "process_name", ev->image);
        rc |= ossem_str(b, "user_name", ev->user);
        rc |= ossem_str(b, "network_protocol", ev->protocol);
        rc |= nw_buf_addf(b, ",\"network_connection_initiated\":%s", init);
        rc |= nw_buf_addf(b, ",\"src_is_ipv6\":%s", v6);
        rc |= ossem_str(b, "src_ip", ev->source_ip);
        rc |= ossem_str(b, "src_host_name", ev->source_hostname);
        rc |= nw_buf_addf(b, ",\"src_port\":%u", ev->source_port);
        rc |= ossem_str(b, "src_port_name", ev->source_port_name);
        rc |= nw_buf_addf(b, ",\"dst_is_ipv6\":%s", v6);
        rc |= ossem_str(b, "dst_ip", ev->destination_ip);
        rc |= ossem_str(b, "dst_host_name", ev->destination_hostname);
        rc |= nw_buf_addf(b, ",\"dst_port\":%u", ev->destination_port);
        rc |= ossem_str(b, "dst_port_name", ev->destination_port_name);
    }
    return rc | nw_buf_adds(b, "}");
}

/* ---------------------------------------------------------------- ECS */

static int ecs_time(nw_buf *b, const char *key, nw_time t)
{
    char ts[NW_TIME_STRLEN];
    if (nw_time_format(t, ts, sizeof ts) == 0)
        return 0;
    return nw_buf_addf(b, "%s\"%s\"", key, ts);
}

/* The last component of a Windows or POSIX path. */
static const char *basename_of(const char *path)
{
    const char *name = path;
    for (const char *s = path; *s; s++)
        if (*s == '\\' || *s == '/')
            name = s + 1;
    return name;
}

static int ecs_end(nw_buf *b, const char *key, const nw_addr *ip, int version, uint16_t port,
                   uint64_t bytes)
{
    char txt[NW_ADDR_STRLEN];
    nw_addr_format(ip, version, txt, sizeof txt);
    return nw_buf_addf(b, ",\"%s\":{\"ip\":\"%s\",\"port\":%u,\"bytes\":%" PRIu64 "}", key, txt,
                       port, bytes);
}

static int ecs_event(nw_sysmon_enc *e, const nw_conn *c, const nw_process *p,
                     const nw_sysmon_event *ev)
{
    nw_buf *b = e->out;
    int rc = 0;
    if (e->opts.ecs_bulk) {
        rc |= nw_buf_adds(b, "{\"create\":{");
        if (e->opts.ecs_index) {
            rc |= nw_buf_adds(b, "\"_index\":");
            rc |= json_str(b, e->opts.ecs_index);
        }
        rc |= nw_buf_adds(b, "}}\n");
    }
    rc |= nw_buf_adds(b, "{");
    char ts[NW_TIME_STRLEN];
    rc |= nw_time_format(c->first_seen, ts, sizeof ts) ? nw_buf_addf(b, "\"@timestamp\":\"%s\",", ts)
                                                       : 0;
    static const char *const action[] = {"network_flow", "connection_attempted",
                                         "connection_accepted"};
    static const char *const outcome[] = {"unknown", "success", "success", "failure"};
    rc |= nw_buf_addf(b,
                      "\"event\":{\"kind\":\"event\",\"category\":[\"network\"],"
                      "\"type\":[\"connection\"],\"action\":\"%s\",\"outcome\":\"%s\","
                      "\"dataset\":\"netwho.connection\",\"id\":\"%" PRId64 "\"",
                      action[c->direction < 3 ? c->direction : 0],
                      outcome[c->state < 4 ? c->state : 0], c->id);
    rc |= ecs_time(b, ",\"start\":", c->first_seen);
    if (c->state == NW_STATE_CLOSED || c->state == NW_STATE_FAILED)
        rc |= ecs_time(b, ",\"end\":", c->last_seen);
    rc |= nw_buf_adds(b, "},\"host\":{\"name\":");
    rc |= json_str(b, dash(c->host));
    rc |= nw_buf_adds(b, "}");
    int li = ev->source_is_local;
    rc |= ecs_end(b, "source", li ? &c->local_ip : &c->remote_ip, c->ip_version,
                  ev->source_port, li ? c->bytes_sent : c->bytes_received);
    rc |= ecs_end(b, "destination", li ? &c->remote_ip : &c->local_ip, c->ip_version,
                  ev->destination_port, li ? c->bytes_received : c->bytes_sent);
    static const char *const direction[] = {"unknown", "egress", "ingress"};
    rc |= nw_buf_addf(b,
                      ",\"network\":{\"transport\":\"%s\",\"iana_number\":\"%u\","
                      "\"type\":\"ipv%d\",\"direction\":\"%s\",\"bytes\":%" PRIu64,
                      ev->protocol, c->proto, c->ip_version == 6 ? 6 : 4,
                      direction[c->direction < 3 ? c->direction : 0],
                      c->bytes_sent + c->bytes_received);
    if (ev->community_id[0])
        rc |= nw_buf_addf(b, ",\"community_id\":\"%s\"", ev->community_id);
    rc |= nw_buf_addf(b, "},\"process\":{\"pid\":%" PRIu32, c->pid);
    if (p && p->image) {
        rc |= nw_buf_adds(b, ",\"executable\":");
        rc |= json_str(b, p->image);
        rc |= nw_buf_adds(b, ",\"name\":");
        rc |= json_str(b, basename_of(p->image));
    }
    if (p && p->command_line) {
        rc |= nw_buf_adds(b, ",\"command_line\":");
        rc |= json_str(b, p->command_line);
    }
    if (strcmp(ev->process_guid, "-") != 0)
        rc |= nw_buf_addf(b, ",\"entity_id\":\"%s\"", ev->process_guid);
    if (p && p->create_time > 0)
        rc |= ecs_time(b, ",\"start\":", p->create_time);
    if (p && p->has_parent) {
        rc |= nw_buf_addf(b, ",\"parent\":{\"pid\":%" PRIu32, p->parent_pid);
        if (p->parent_image) {
            rc |= nw_buf_adds(b, ",\"executable\":");
            rc |= json_str(b, p->parent_image);
        }
        rc |= nw_buf_adds(b, "}");
    }
    rc |= nw_buf_adds(b, "}");
    if (p && p->user) {
        /* DOMAIN\user -> user.domain, user.name */
        const char *bs = strrchr(p->user, '\\');
        rc |= nw_buf_adds(b, ",\"user\":{\"name\":");
        rc |= json_str(b, bs ? bs + 1 : p->user);
        if (bs) {
            rc |= nw_buf_adds(b, ",\"domain\":");
            rc |= nw_buf_add_json_str(b, p->user, (size_t)(bs - p->user));
        }
        rc |= nw_buf_adds(b, "}");
    }
    return rc | nw_buf_adds(b, "}\n");
}

/* ------------------------------------------------------------ framing */

int nw_sysmon_begin(nw_sysmon_enc *e, nw_sysmon_format f, const nw_sysmon_opts *o,
                    nw_buf *out)
{
    memset(e, 0, sizeof *e);
    e->format = f;
    if (o)
        e->opts = *o;
    e->out = out;
    if (f == NW_SYSMON_XML)
        return nw_buf_adds(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Events>\n");
    if (f == NW_SYSMON_JSON)
        return nw_buf_adds(out, "[");
    return 0;
}

int nw_sysmon_conn(nw_sysmon_enc *e, const nw_conn *c, const nw_process *p)
{
    nw_sysmon_event ev;
    nw_sysmon_fields(c, p, &e->opts, &ev);
    int rc;
    switch (e->format) {
    case NW_SYSMON_XML: rc = xml_event(e, c, &ev); break;
    case NW_SYSMON_JSON:
        rc = (e->rows ? nw_buf_adds(e->out, ",\n") : 0) | json_event(e, c, &ev);
        break;
    case NW_SYSMON_NDJSON: rc = json_event(e, c, &ev) | nw_buf_adds(e->out, "\n"); break;
    case NW_SYSMON_ECS: rc = ecs_event(e, c, p, &ev); break;
    default: rc = -1;
    }
    e->rows++;
    return rc ? -1 : 0;
}

int nw_sysmon_end(nw_sysmon_enc *e)
{
    if (e->format == NW_SYSMON_XML)
        return nw_buf_adds(e->out, "</Events>\n");
    if (e->format == NW_SYSMON_JSON)
        return nw_buf_adds(e->out, "]\n");
    return 0;
}
