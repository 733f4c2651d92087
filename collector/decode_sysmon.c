/*
 * decode_sysmon.c -- Sysmon events 1, 3 and 5 as SOC pipelines ship them
 * (see procevent.h).
 *
 * Defects of the real exports (tests/data/sysmon_*.jsonl) and what is done:
 *   - nxlog writes the event's own fields flat, next to its header fields:
 *     "ProcessID" (header: the Sysmon service) beside "ProcessId" (the
 *     event's process) -- names are therefore matched case-sensitively.
 *   - nxlog leaves empty fields out, and in the 2019 export "ProcessId" is
 *     missing from every event: a field absent, "" or "-" is looked up in
 *     the Message text ("Key: value" lines after a title line).
 *   - the 2021 export writes empty values as "-" (unknown, like absent).
 *   - "Hostname" is the Windows computer; nxlog's "host" is the collector.
 *   - UtcTime is "YYYY-MM-DD HH:MM:SS.mmm" UTC without a zone; TimeCreated
 *     is local time and is never read.
 *   - IPv6 is written uncompressed ("0:0:0:0:0:0:0:1"); inet_pton reads it.
 *   - EventID may be a number or a string; Initiated/SourceIsIpv6 strings.
 * Winlogbeat nests the same fields under winlog.event_data (event id in
 * winlog.event_id, computer in winlog.computer_name); the ETW envelope has
 * them in event_data with system.event_id and system.computer.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "decode_int.h"

#define SYSMON_GUID "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"

/* Longest scalar value read into a stack buffer (times, numbers, ips). */
#define SHORT_VALUE_MAX 128

typedef struct src {
    const cJSON *flat;      /* the object holding the event's fields   */
    const cJSON *hdr;       /* where EventID/Hostname live (flat, or NULL) */
    const char *msg;        /* Message text, or NULL                   */
} src;

/* A JSON value as text into buf: strings as they are, integers printed,
 * booleans as true/false.  1 if it gave a value that is not "" or "-". */
static int json_text(const cJSON *v, char *buf, size_t cap)
{
    if (!v)
        return 0;
    if (cJSON_IsString(v) && v->valuestring) {
        const char *s = v->valuestring;
        if (!s[0] || strcmp(s, "-") == 0)
            return 0;
        nw__copy_cut(buf, cap, s, strlen(s));
        return 1;
    }
    if (cJSON_IsNumber(v)) {
        snprintf(buf, cap, "%.0f", v->valuedouble);
        return 1;
    }
    if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
        return 1;
    }
    return 0;
}

/* The value of "Key: value" in the Message text.  1 if found, not empty
 * and not "-". */
static int msg_text(const char *msg, const char *key, char *buf, size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = msg; p && (p = strstr(p, key)) != NULL; p += kl) {
        if (p != msg && p[-1] != '\n')
            continue;
        if (p[kl] != ':')
            continue;
        const char *v = p + kl + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "\r\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n == 0 || (n == 1 && v[0] == '-'))
            return 0;
        nw__copy_cut(buf, cap, v, n);
        return 1;
    }
    return 0;
}

/* Field key of the event: its own field, else the Message's line. */
static int get(const src *s, const char *key, char *buf, size_t cap)
{
    if (json_text(nw__get_cs(s->flat, key), buf, cap))
        return 1;
    return s->msg ? msg_text(s->msg, key, buf, cap) : 0;
}

static int get_time(const src *s, const char *key, nw_time *out)
{
    char t[SHORT_VALUE_MAX];
    if (!get(s, key, t, sizeof t))
        return -1;
    size_t n = strlen(t);
    /* "2019-12-05 01:49:28.817" is UTC without a zone: add one. */
    if (n > 10 && n + 1 < sizeof t && t[n - 1] != 'Z' && t[n - 1] != 'z' &&
        !strchr(t + 10, '+') && !strchr(t + 10, '-')) {
        t[n] = 'Z';
        t[n + 1] = '\0';
    }
    return nw_time_parse_rfc3339(t, strlen(t), out);
}

static int get_u32(const src *s, const char *key, uint32_t *out)
{
    char t[SHORT_VALUE_MAX];
    uint64_t u;
    if (!get(s, key, t, sizeof t))
        return 1;     /* absent */
    if (nw__text_uint(t, strlen(t), UINT32_MAX, &u))
        return -1;    /* not a number */
    *out = (uint32_t)u;
    return 0;
}

/* 1 if a string field of o equals want, ignoring case. */
static int str_is(const cJSON *o, const char *k, const char *want)
{
    const cJSON *v = nw__get_ci(o, k);
    return cJSON_IsString(v) && v->valuestring && strcasecmp(v->valuestring, want) == 0;
}

static int is_sysmon_flat(const cJSON *o)
{
    return str_is(o, "SourceName", "Microsoft-Windows-Sysmon") ||
           str_is(o, "Channel", "Microsoft-Windows-Sysmon/Operational") ||
           str_is(o, "ProviderGuid", SYSMON_GUID) ||
           str_is(o, "provider_name", "Microsoft-Windows-Sysmon") ||
           str_is(o, "provider_guid", SYSMON_GUID) ||
           str_is(o, "channel", "Microsoft-Windows-Sysmon/Operational");
}

/* The local and remote ends of a Sysmon 3 into ev. */
static nw_reject network_event(const src *s, nw_proc_event *pe, nw_event *ev,
                               const nw__detail *d)
{
    char proto[16], init[16], sip[SHORT_VALUE_MAX], dip[SHORT_VALUE_MAX];
    if (!get(s, "Protocol", proto, sizeof proto) ||
        (strcasecmp(proto, "tcp") != 0 && strcasecmp(proto, "udp") != 0))
        return nw__dfail(d, NW_REJ_BAD_FIELD, "Protocol is not tcp or udp");
    if (!get(s, "Initiated", init, sizeof init) ||
        (strcasecmp(init, "true") != 0 && strcasecmp(init, "false") != 0))
        return nw__dfail(d, NW_REJ_BAD_FIELD, "Initiated is not true or false");
    int tcp = strcasecmp(proto, "tcp") == 0;
    int initiated = strcasecmp(init, "true") == 0;

    nw_addr sa, da;
    int sv = 0, dv = 0;
    if (!get(s, "SourceIp", sip, sizeof sip) ||
        nw_addr_parse(sip, strlen(sip), 0, &sa, &sv))
        return nw__dfail(d, NW_REJ_BAD_ADDRESS, "SourceIp is not an address");
    if (!get(s, "DestinationIp", dip, sizeof dip) ||
        nw_addr_parse(dip, strlen(dip), 0, &da, &dv))
        return nw__dfail(d, NW_REJ_BAD_ADDRESS, "DestinationIp is not an address");
    uint32_t sp = 0, dp = 0;
    if (get_u32(s, "SourcePort", &sp) || sp > 65535)
        return nw__dfail(d, NW_REJ_BAD_PORT, "SourcePort is not a port");
    if (get_u32(s, "DestinationPort", &dp) || dp > 65535)
        return nw__dfail(d, NW_REJ_BAD_PORT, "DestinationPort is not a port");

    memset(ev, 0, sizeof *ev);
    ev->time = pe->time;
    ev->pid = pe->p.pid;
    ev->proto = tcp ? NW_PROTO_TCP : NW_PROTO_UDP;
    ev->ip_version = (uint8_t)(sv == 6 || dv == 6 ? 6 : 4);
    int v6 = ev->ip_version == 6;
    /* The Kernel-Network id of what Sysmon saw: a connect or an accept for
     * TCP; for UDP the first packet, sent (initiated) or received. */
    if (tcp) {
        ev->kind = initiated ? NW_EV_CONNECT : NW_EV_ACCEPT;
        ev->event_id = (uint16_t)(initiated ? (v6 ? 28 : 12) : (v6 ? 31 : 15));
    } else {
        ev->kind = initiated ? NW_EV_SEND : NW_EV_RECV;
        ev->event_id = (uint16_t)(initiated ? (v6 ? 58 : 42) : (v6 ? 59 : 43));
    }
    /* Initiated: Source is this host's end; an accept (or a datagram that
     * arrived) has the remote initiator in Source. */
    ev->local_ip = initiated ? sa : da;
    ev->local_port = (uint16_t)(initiated ? sp : dp);
    ev->remote_ip = initiated ? da : sa;
    ev->remote_port = (uint16_t)(initiated ? dp : sp);
    memcpy(ev->host, pe->host, NW_HOST_MAX);
    return NW_ACCEPTED;
}

nw_reject nw__decode_sysmon(const cJSON *root, const cJSON *sys, const cJSON *data,
                            const char *default_host, nw_event *ev, int *has_ev,
                            nw_proc_event *pe, int *want_proc, const nw__detail *d)
{
    src s = {root, root, NULL};
    const cJSON *winlog = nw__get_ci(root, "winlog");
    const cJSON *idv, *hostv;
    if (sys) {                          /* the ETW envelope */
        s.flat = data;
        idv = nw__get_ci(sys, "event_id");
        hostv = nw__get_ci(sys, "computer");
    } else if (cJSON_IsObject(winlog) && !nw__get_cs(root, "EventID")) {
        s.flat = nw__get_ci(winlog, "event_data");   /* Winlogbeat */
        idv = nw__get_ci(winlog, "event_id");
        hostv = nw__get_ci(winlog, "computer_name");
        if (!is_sysmon_flat(winlog))
            return nw__dfail(d, NW_REJ_UNKNOWN_PROVIDER,
                             "winlog is not a Microsoft-Windows-Sysmon event");
    } else {                            /* nxlog and the like, flat */
        idv = nw__get_cs(root, "EventID");
        hostv = nw__get_cs(root, "Hostname");
        if (!hostv)
            hostv = nw__get_cs(root, "Computer");
        if (!is_sysmon_flat(root))
            return nw__dfail(d, NW_REJ_UNKNOWN_PROVIDER,
                             "an event log record that is not Microsoft-Windows-Sysmon");
    }
    const cJSON *msgv = nw__get_cs(root, "Message");
    if (!msgv)
        msgv = nw__get_ci(root, "message");
    s.msg = cJSON_IsString(msgv) ? msgv->valuestring : NULL;

    uint64_t id;
    if (!idv || nw__val_uint(idv, 65535, &id) || (id != 1 && id != 3 && id != 5))
        return nw__dfail(d, NW_REJ_UNKNOWN_EVENT_ID,
                         "EventID is not a Sysmon process create (1), network "
                         "connection (3) or process terminated (5)");
    pe->source = (int)(100 + id);
    nw__copy_host(pe->host, cJSON_IsString(hostv) ? hostv->valuestring : NULL, default_host);

    if (get_time(&s, "UtcTime", &pe->time))
        return nw__dfail(d, NW_REJ_BAD_TIME, "UtcTime is missing or not a time");
    nw_process *p = &pe->p;
    p->exit_time = NW_TIME_MAX;
    int rc = get_u32(&s, "ProcessId", &p->pid);
    if (rc)
        return nw__dfail(d, NW_REJ_BAD_PID, "ProcessId %s",
                         rc > 0 ? "is missing (and not in Message)" : "is not a number");

    get(&s, "ProcessGuid", pe->guid, sizeof pe->guid);
    get(&s, "Image", pe->image, sizeof pe->image);
    get(&s, "User", pe->user, sizeof pe->user);
    nw_time gtime = 0;
    int has_gtime = pe->guid[0] && nw_sysmon_guid_time(pe->guid, &gtime) == 0 &&
                    gtime <= pe->time + 2 * NW_TICKS_PER_SEC;

    if (id == 1) {
        /* The creation itself: UtcTime is the create time. */
        p->create_time = pe->time;
        pe->create_prec = NW_PREC_MS;
        get(&s, "CommandLine", pe->command_line, sizeof pe->command_line);
        get(&s, "ParentImage", pe->parent_image, sizeof pe->parent_image);
        rc = get_u32(&s, "ParentProcessId", &p->parent_pid);
        if (rc < 0)
            return nw__dfail(d, NW_REJ_BAD_FIELD, "ParentProcessId is not a number");
        p->has_parent = rc == 0;
        uint32_t sess;
        if (get_u32(&s, "TerminalSessionId", &sess) == 0) {
            p->session_id = sess;
            p->has_session = 1;
        }
        return NW_ACCEPTED;
    }
    if (has_gtime) {
        p->create_time = gtime;
        pe->create_prec = NW_PREC_SECOND;
    }
    if (id == 5) {
        p->exit_time = pe->time;
        pe->has_exit = 1;
        return NW_ACCEPTED;
    }
    nw_reject r = network_event(&s, pe, ev, d);
    if (r != NW_ACCEPTED)
        return r;
    *has_ev = 1;
    /* Without a creation time the process cannot be placed among the
     * holders of its pid: the connection is kept, the process is not. */
    *want_proc = has_gtime;
    return NW_ACCEPTED;
}
