/*
 * params.c -- filter values from text (see params.h).
 *
 * Strict on purpose: "80abc" is not port 80, and "-1" is not a pid.  A
 * script that sends a wrong value must hear about it, not get an answer to
 * a different question.
 */
#include "netwho/params.h"
#include "netwho/process.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netwho/addr.h"
#include "netwho/addrclass.h"
#include "netwho/flowid.h"
#include "netwho/nwtime.h"

/* Most rows one query may ask for: answers bigger than this are streamed
 * page by page with a cursor. */
#define NW_LIMIT_MAX 100000000LL

/* The bad value, cut to 64 bytes and with non-printing bytes as '?', so an
 * error message never carries an attacker's payload back in full. */
static void shown(const char *v, char *out, size_t cap)
{
    size_t i = 0;
    for (; v[i] && i + 4 < cap && i < 64; i++)
        out[i] = isprint((unsigned char)v[i]) && v[i] != '"' ? v[i] : '?';
    out[i] = '\0';
    if (v[i])
        strcat(out, "...");
}

static nw_status bad(const char *name, const char *value, const char *expected,
                     const char **bad_param, nw_err *err)
{
    char v[80];
    shown(value, v, sizeof v);
    if (bad_param)
        *bad_param = name;
    return nw_fail(err, NW_ERR_INVALID, "%s: expected %s, got \"%s\"", name, expected, v);
}

/* A decimal integer in [lo, hi] with nothing else around it. */
static int parse_int(const char *s, long long lo, long long hi, long long *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* A Community ID v1 ("1:" and the base64 of a 20-byte SHA-1: 27 characters
 * and one '=') into out[NW_COMMUNITY_ID_STRLEN].  A space stands for '+':
 * an unencoded '+' in a URL query arrives as one, and base64 has no space.
 * 0, or -1 if s has another shape (it could never match). */
static int parse_community_id(const char *s, char *out)
{
    if (strlen(s) != NW_COMMUNITY_ID_LEN || s[0] != '1' || s[1] != ':' ||
        s[NW_COMMUNITY_ID_LEN - 1] != '=')
        return -1;
    for (int i = 2; i < NW_COMMUNITY_ID_LEN - 1; i++) {
        char c = s[i] == ' ' ? '+' : s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return -1;
        out[i] = c;
    }
    out[0] = '1';
    out[1] = ':';
    out[NW_COMMUNITY_ID_LEN - 1] = '=';
    out[NW_COMMUNITY_ID_LEN] = '\0';
    return 0;
}

int nw_params_id(const char *s, int64_t *id)
{
    long long v;
    if (parse_int(s, 1, INT64_MAX, &v))
        return -1;
    *id = v;
    return 0;
}

nw_status nw_params_apply(nw_query *q, const char *name, const char *value,
                          const char **bad_param, nw_err *err)
{
    long long v;
    if (strlen(value) > NW_PARAM_MAX_VALUE)
        return bad(name, value, "a value of at most 512 bytes", bad_param, err);

    if (strcmp(name, "ip") == 0) {
        if (nw_cidr_parse(value, &q->ip_lo, &q->ip_hi, NULL))
            return bad("ip", value, "an IPv4 or IPv6 address or CIDR block", bad_param, err);
        q->has_ip = 1;
    } else if (strcmp(name, "port") == 0 || strcmp(name, "local_port") == 0 ||
               strcmp(name, "remote_port") == 0) {
        const char *canon = name[0] == 'p' ? "port" : name[0] == 'l' ? "local_port" : "remote_port";
        if (parse_int(value, 0, 65535, &v))
            return bad(canon, value, "a number from 0 to 65535", bad_param, err);
        if (name[0] == 'p')
            q->port = (int)v;
        else if (name[0] == 'l')
            q->local_port = (int)v;
        else
            q->remote_port = (int)v;
    } else if (strcmp(name, "pid") == 0) {
        if (parse_int(value, 0, 4294967295LL, &v))
            return bad("pid", value, "a number from 0 to 4294967295", bad_param, err);
        q->pid = v;
    } else if (strcmp(name, "host") == 0) {
        if (value[0] == '\0' || strlen(value) >= 256)
            return bad("host", value, "a host name of 1 to 255 bytes", bad_param, err);
        q->host = value;
    } else if (strcmp(name, "process") == 0) {
        if (value[0] == '\0' || strlen(value) >= NW_IMAGE_MAX)
            return bad("process", value, "an image name or path of 1 to 1023 bytes", bad_param,
                       err);
        q->process = value;
    } else if (strcmp(name, "proto") == 0) {
        int p = nw_proto_from_name(value);
        if (p < 0)
            return bad("proto", value, "tcp or udp", bad_param, err);
        q->proto = p;
    } else if (strcmp(name, "direction") == 0) {
        int d = nw_direction_from_name(value);
        if (d < 0)
            return bad("direction", value, "outbound, inbound or unknown", bad_param, err);
        q->direction = d;
    } else if (strcmp(name, "state") == 0) {
        int s = nw_state_from_name(value);
        if (s < 0)
            return bad("state", value, "attempted, established, closed or failed", bad_param,
                       err);
        q->state = s;
    } else if (strcmp(name, "from") == 0 || strcmp(name, "to") == 0) {
        nw_time t;
        if (nw_time_parse_user(value, &t))
            return bad(name[0] == 'f' ? "from" : "to", value,
                       "an RFC 3339 time (2026-03-16T00:21:36Z) or epoch seconds", bad_param,
                       err);
        if (name[0] == 'f')
            q->from = t;
        else
            q->to = t;
    } else if (strcmp(name, "community_id") == 0) {
        char id[NW_COMMUNITY_ID_STRLEN];
        if (parse_community_id(value, id))
            return bad("community_id", value,
                       "a Community ID v1: \"1:\" and 28 base64 characters", bad_param, err);
        memcpy(q->community_id, id, sizeof id);
    } else if (strcmp(name, "exclude_loopback") == 0) {
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            q->exclude_loopback = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            q->exclude_loopback = 0;
        else
            return bad("exclude_loopback", value, "true or false", bad_param, err);
    } else if (strcmp(name, "scope") == 0) {
        int c = nw_addr_class_from_name(value);
        if (c < 0)
            return bad("scope", value,
                       "public, private, loopback, link-local, multicast, broadcast or "
                       "unspecified", bad_param, err);
        q->scope = c;
    } else if (strcmp(name, "limit") == 0) {
        if (parse_int(value, 1, NW_LIMIT_MAX, &v))
            return bad("limit", value, "a number from 1 to 100000000", bad_param, err);
        q->limit = v;
    } else {
        if (bad_param)
            *bad_param = name;
        char n[80];
        shown(name, n, sizeof n);
        return nw_fail(err, NW_ERR_INVALID,
                       "unknown parameter \"%s\" (known: ip, port, local_port, remote_port, "
                       "pid, host, process, proto, direction, state, from, to, "
                       "community_id, exclude_loopback, scope, limit)",
                       n);
    }
    return NW_OK;
}

nw_status nw_params_check(const nw_query *q, const char **bad_param, nw_err *err)
{
    if (q->from != NW_TIME_MIN && q->to != NW_TIME_MAX && q->from >= q->to) {
        if (bad_param)
            *bad_param = "to";
        return nw_fail(err, NW_ERR_INVALID, "to: must be later than from");
    }
    return NW_OK;
}

nw_status nw_params_hourly(nw_hourly_query *h, const char *name, const char *value,
                           const char **bad_param, nw_err *err)
{
    static const char *const names[] = {"ip", "host", "pid", "port", "from", "to", "limit"};
    if (strcmp(name, "by") == 0) {
        if (strcmp(value, "hour") == 0)
            h->by_hour = 1;
        else if (strcmp(value, "total") == 0)
            h->by_hour = 0;
        else
            return bad("by", value, "hour or total", bad_param, err);
        return NW_OK;
    }
    size_t i = 0;
    while (i < sizeof names / sizeof names[0] && strcmp(name, names[i]) != 0)
        i++;
    if (i == sizeof names / sizeof names[0]) {
        if (bad_param)
            *bad_param = name;
        char n[80];
        shown(name, n, sizeof n);
        return nw_fail(err, NW_ERR_INVALID,
                       "unknown parameter '%s' (expected ip, host, pid, port, from, to, "
                       "by, limit)", n);
    }
    /* The connection filters' parsing, so a value means one thing. */
    nw_query q;
    nw_query_init(&q);
    nw_status st = nw_params_apply(&q, name, value, bad_param, err);
    if (st != NW_OK)
        return st;
    switch (i) {
    case 0:
        h->has_ip = 1;
        h->ip_lo = q.ip_lo;
        h->ip_hi = q.ip_hi;
        break;
    case 1: h->host = q.host; break;
    case 2: h->pid = q.pid; break;
    case 3: h->remote_port = q.port; break;
    case 4: h->from = q.from; break;
    case 5: h->to = q.to; break;
    default: h->limit = q.limit; break;
    }
    return NW_OK;
}

nw_status nw_params_hourly_check(const nw_hourly_query *h, const char **bad_param,
                                 nw_err *err)
{
    nw_query q;
    nw_query_init(&q);
    q.from = h->from;
    q.to = h->to;
    return nw_params_check(&q, bad_param, err);
}
